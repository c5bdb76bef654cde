//! Process-wide signal dispositions for the plugin server (protocol §1.8).

use nix::sys::signal::Signal;

/// Ignore SIGINT (we share the agent's process group, so a Ctrl-C aimed at the agent reaches us
/// too) and SIGPIPE (a dead agent turns stderr/stdout into broken pipes; writes must fail with
/// EPIPE instead of killing us). Must run before the tokio runtime starts threads.
pub fn ignore_sigint_and_sigpipe() -> nix::Result<()> {
    for sig in [Signal::SIGINT, Signal::SIGPIPE] {
        // Still single-threaded, so no other thread races on the disposition.
        crate::sandbox::sys::ignore_signal(sig)?;
    }
    Ok(())
}
