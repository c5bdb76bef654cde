//! The plugin's open-file limit. Each running task holds a pidfd in the plugin, and a few open
//! stats files while Nomad streams its stats, so a thousand tasks need thousands of descriptors;
//! a plugin started with the common soft limit of 1,024 would fail to start or watch tasks long
//! before that. Like every Go plugin (the Go runtime does the same at start-up), the plugin
//! raises its soft `RLIMIT_NOFILE` to the hard limit, and gives tasks back the limit it was
//! started with.

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use std::sync::OnceLock;

/// (soft, hard) as the plugin was started, recorded when it raised its own.
static STARTED_WITH: OnceLock<(u64, u64)> = OnceLock::new();

/// Raises the soft open-file limit to the hard one; returns (old soft, new soft) when it
/// changed. The original limit is what `task_nofile` returns from then on.
pub fn raise_nofile() -> nix::Result<Option<(u64, u64)>> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= hard {
        return Ok(None);
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    let _ = STARTED_WITH.set((soft, hard));
    Ok(Some((soft, hard)))
}

/// The open-file limit tasks should run with, when the plugin raised its own.
pub fn task_nofile() -> Option<(u64, u64)> {
    STARTED_WITH.get().copied()
}

/// Sets the open-file limit (in a task child before exec: a plain syscall, fork-safe).
pub fn restore_nofile((soft, hard): (u64, u64)) -> nix::Result<()> {
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard)
}
