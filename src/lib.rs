//! nomad-pledge-driver: the library behind one multi-call binary (`src/main.rs` only calls
//! [`main`]).
//!
//! * started by Nomad (magic cookie in the environment) → the go-plugin server (`plugin`);
//! * `nomad-pledge-driver pledge ...` or invoked as `pledge` → the pledge-compatible launcher (`sandbox`);
//! * `nomad-pledge-driver run JOB.hcl` → run a job file's pledge tasks locally (`runner`);
//! * internal modes (the fork server that clones the per-task supervisors, exec) used by the
//!   executor.
//!
//! Modes that sandbox or supervise a process are dispatched here, before any async runtime or
//! thread exists, so that they run single-threaded.
//!
//! `unsafe` is denied crate-wide. Only the three raw-syscall modules allow it —
//! `sandbox::sys` (the launcher's, the seccomp and signal wrappers), `executor::sys` (spawning
//! the supervisor, pidfds, ttys) and `executor::resolve::sys` (the forked command probe) — each
//! a list of small safe wrappers; every block there carries a `// SAFETY:` comment
//! (`clippy::undocumented_unsafe_blocks`), and `unsafe fn` bodies spell out their unsafe
//! operations (`unsafe_op_in_unsafe_fn`).

#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod driver;
mod errors;
mod events;
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

/// Run the binary: dispatch on argv[0] and the first argument; returns the exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    let argv0 = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();

    // Invoked through a link named `pledge` (or `pledge.com`): behave exactly like the launcher.
    if argv0 == "pledge" || argv0 == "pledge.com" {
        sandbox::sys::default_sigpipe();
        return sandbox::cli::main(&args);
    }

    let mode = args.get(1).map(|a| a.to_string_lossy().into_owned());
    // Command-line modes die by SIGPIPE on a closed stdout/stderr, as Unix tools do (and PROG
    // starts with SIGPIPE at its default). The plugin ignores SIGPIPE (its own handler), the
    // internal supervisor/exec modes keep the executor's handling, and `run` stays alive to stop
    // its tasks (its messages never panic on EPIPE).
    let cli_mode = !matches!(
        mode.as_deref(),
        None | Some(executor::FORKSERVER_MODE) | Some(executor::EXEC_MODE) | Some("run")
    );
    if cli_mode {
        sandbox::sys::default_sigpipe();
    }
    match mode.as_deref() {
        Some("pledge") => sandbox::cli::main(&args[1..]),
        Some(executor::FORKSERVER_MODE) => executor::forkserver_main(),
        Some(executor::EXEC_MODE) => executor::exec::exec_main(&args[2..]),
        Some("run") => runner::main(&args[2..]),
        Some("--version") | Some("version") => version_main(&args[2..]),
        Some("-h") | Some("--help") | Some("help") => {
            print!("{}", usage());
            0
        }
        None => plugin::main(),
        Some(other) => {
            eprint!(
                "nomad-pledge-driver: unknown command `{other}`\n\n{}",
                usage()
            );
            2
        }
    }
}

/// `version` / `--version`: version, git commit and target (from build.rs).
fn version_main(rest: &[OsString]) -> i32 {
    match rest.first().and_then(|a| a.to_str()) {
        None => {
            println!("{}", version_line());
            0
        }
        Some("-h") | Some("--help") => {
            println!("usage: nomad-pledge-driver version (or --version)\n\nPrints the version, the git commit it was built from (\"unknown\" outside a git checkout)\nand the target it was built for.");
            0
        }
        Some(other) => {
            eprintln!("nomad-pledge-driver version: unexpected argument `{other}`");
            2
        }
    }
}

fn version_line() -> String {
    format!(
        "nomad-pledge-driver {} (commit {}, target {})",
        env!("CARGO_PKG_VERSION"),
        env!("BUILD_GIT_COMMIT"),
        env!("BUILD_TARGET_TRIPLE")
    )
}

fn usage() -> String {
    format!(
        "usage: nomad-pledge-driver [COMMAND [ARGS...]]

commands:
  (none)        run as a Nomad task-driver plugin: a Nomad agent starts it from its plugin_dir
  run JOB.hcl [--task NAME] [--plugin-config FILE] [--alloc-dir DIR] [--keep] [-v]
                run a job file's pledge tasks on this machine, through the plugin, without a
                Nomad agent (as root)
{}
  pledge [-hnqkNV] [-p PROMISES] [-v [PERM:]PATH]... [OPTIONS] [--] PROG [ARGS...]
                run PROG sandboxed with pledge promises (seccomp) and unveil paths (Landlock),
                like pledge.com; `nomad-pledge-driver pledge -h` lists every option
  version       print the version, git commit and target (also --version)
  help          print this help (also -h, --help)

`nomad-pledge-driver COMMAND --help` shows a command's full usage.
",
        runner::OPTIONS_HELP
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
            .trim_end_matches('\n')
    )
}
