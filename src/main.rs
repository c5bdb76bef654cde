//! nomad-pledge-driver: one multi-call binary.
//!
//! * started by Nomad (magic cookie in the environment) → the go-plugin server (`plugin`);
//! * `nomad-pledge-driver pledge ...` or invoked as `pledge` → the pledge-compatible launcher (`sandbox`);
//! * `nomad-pledge-driver run JOB.hcl` → run a job file's pledge tasks locally (`runner`);
//! * internal modes (the per-task supervisor) used by the executor.
//!
//! Modes that sandbox or supervise a process are dispatched here, before any async runtime or
//! thread exists, so that they run single-threaded.

mod driver;
mod executor;
#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod host_features;
mod plugin;
mod policy;
mod proto;
mod runner;
mod sandbox;

use std::ffi::OsString;
use std::path::Path;

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();

    // Invoked through a link named `pledge` (or `pledge.com`): behave exactly like the launcher.
    if argv0 == "pledge" || argv0 == "pledge.com" {
        sandbox::sys::default_sigpipe();
        std::process::exit(sandbox::cli::main(&args));
    }

    let mode = args.get(1).map(|a| a.to_string_lossy().into_owned());
    // Command-line modes die by SIGPIPE on a closed stdout/stderr, as Unix tools do (and PROG
    // starts with SIGPIPE at its default). The plugin ignores SIGPIPE (its own handler), the
    // internal supervisor/exec modes keep the executor's handling, and `run` stays alive to stop
    // its tasks (its messages never panic on EPIPE).
    let cli_mode = !matches!(
        mode.as_deref(),
        None | Some(executor::SUPERVISOR_MODE) | Some(executor::EXEC_MODE) | Some("run")
    );
    if cli_mode {
        sandbox::sys::default_sigpipe();
    }
    let code = match mode.as_deref() {
        Some("pledge") => sandbox::cli::main(&args[1..]),
        Some(executor::SUPERVISOR_MODE) => executor::supervisor_main(&args[2..]),
        Some(executor::EXEC_MODE) => executor::exec::exec_main(&args[2..]),
        Some("run") => runner::main(&args[2..]),
        Some("--version") | Some("version") => {
            println!("nomad-pledge-driver {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Some("-h") | Some("--help") | Some("help") => {
            print_usage();
            0
        }
        None => plugin::main(),
        Some(other) => {
            eprintln!("nomad-pledge-driver: unknown command `{other}`\n");
            print_usage();
            2
        }
    };
    std::process::exit(code);
}

fn print_usage() {
    eprintln!(
        "usage:
  nomad-pledge-driver                      run as a Nomad task-driver plugin (started by Nomad from plugin_dir)
  nomad-pledge-driver pledge [OPTIONS] -- PROG [ARGS...]
                                           run PROG sandboxed with pledge promises and unveil paths
  nomad-pledge-driver run JOB.hcl [--task NAME] [--plugin-config FILE]
                                           run a job file's pledge tasks on this machine
  nomad-pledge-driver --version            print the version"
    );
}
