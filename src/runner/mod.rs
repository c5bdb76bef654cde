//! `nomad-pledge-driver run JOB.hcl`: a minimal Nomad-client stand-in. It parses a job file,
//! launches this binary as a plugin over the real go-plugin handshake, builds each pledge task's
//! TaskConfig the way a Nomad client does (alloc dir, `NOMAD_*` env, interpolation, log FIFOs,
//! resources, a cgroup scope, a network namespace for bridge groups), starts the tasks, streams
//! their logs, waits, stops them on Ctrl-C with their kill_signal/kill_timeout, prints each exit
//! result and cleans up.

mod alloc;
mod args;
mod events;
mod interp;
mod job;
mod msgpack;
mod plugin_client;
mod ports;
mod scope;
mod session;
mod spec;
mod term;
mod volumes;

#[cfg(test)]
mod error_tests;

use std::ffi::OsString;

pub use args::OPTIONS_HELP;

/// Entry point of `nomad-pledge-driver run`.
pub fn main(raw: &[OsString]) -> i32 {
    let args = match args::Args::parse(raw) {
        Ok(args) if args.help => {
            println!("{}", args::USAGE);
            return 0;
        }
        Ok(args) => args,
        Err(e) => {
            term::status_line(format_args!(
                "nomad-pledge-driver run: {e}\n\n{}",
                args::USAGE
            ));
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            term::status_line(format_args!(
                "nomad-pledge-driver run: cannot start the async runtime: {e}"
            ));
            return 1;
        }
    };
    match runtime.block_on(session::run(args)) {
        Ok(code) => code,
        Err(e) => {
            term::status_line(format_args!(
                "nomad-pledge-driver run: {}",
                crate::errors::Chain(&e)
            ));
            1
        }
    }
}
