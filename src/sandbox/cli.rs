//! The `pledge` command line, compatible with pledge.com.

/// Entry point of `nomad-pledge-driver pledge ...`; `args[0]` is the program name.
pub fn main(_args: &[std::ffi::OsString]) -> i32 {
    eprintln!("pledge: the sandbox launcher is not implemented yet");
    1
}
