//! `nomad-pledge-driver run JOB.hcl`: a minimal Nomad-client stand-in.

mod alloc;
mod interp;
mod job;
mod msgpack;

/// Entry point of `nomad-pledge-driver run`.
pub fn main(_args: &[std::ffi::OsString]) -> i32 {
    eprintln!("nomad-pledge-driver run: not implemented yet");
    1
}
