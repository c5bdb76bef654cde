//! `pledge --learn`: the program runs in a forked child under the learn filter; this process
//! is the recorder. It receives the listener from the child, serves it until the last process
//! using the filter is gone, then prints the flags on stderr and exits with the program's
//! status.
//!
//! The recorder is the program's parent with the same user: in learn mode nothing is denied,
//! so the program could reach it (ptrace, signals). Learn mode is not a sandbox.

use std::os::fd::AsFd;

use super::observe;
use super::summary::{self, Context};
use crate::sandbox::prepared::{self, GateHandoff, Sandbox};
use crate::sandbox::sys::{self, Forked};

/// Run `sandbox`'s program learning; returns the exit status to exit with.
pub fn run(prog: &str, sandbox: &Sandbox, ctx: &Context) -> i32 {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let (ours, theirs) = match socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{prog}: --learn: socketpair: {e}");
            return 1;
        }
    };
    let child = match sys::fork() {
        Ok(Forked::Child) => {
            drop(ours);
            let f = sandbox.install(None, GateHandoff::Send(theirs.as_fd()));
            sys::write_stderr(&format!(
                "{prog}: --learn: {} failed: {}\n",
                f.step.what(),
                std::io::Error::from_raw_os_error(f.errno)
            ));
            sys::exit_now(f.step.exit_status())
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            eprintln!("{prog}: --learn: fork: {e}");
            return 1;
        }
    };
    drop(theirs);
    // Ctrl-C reaches the program (same process group); we stay to print what it needed.
    let _ = sys::ignore_signal(nix::sys::signal::Signal::SIGINT);
    let _ = sys::ignore_signal(nix::sys::signal::Signal::SIGTERM);
    let listener = match prepared::take_learn_listener(ours.as_fd(), child) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{prog}: --learn: cannot take the learn filter's listener: {e}");
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child),
                nix::sys::signal::Signal::SIGKILL,
            );
            None
        }
    };
    let rec = match &listener {
        Some(l) => observe::serve(l.as_fd(), child as u32, None),
        None => Default::default(),
    };
    let status = match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None) {
        Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => c,
        Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => 128 + s as i32,
        _ => 1,
    };
    if listener.is_none() {
        // The child failed before its filter (it said why).
        return status;
    }
    let learned = summary::summarize(&rec, ctx);
    for w in &learned.warnings {
        eprintln!("{prog}: --learn: warning: {w}");
    }
    eprintln!("{prog}: --learn: {}", learned.pledge_flags());
    status
}
