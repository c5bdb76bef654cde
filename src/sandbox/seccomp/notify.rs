//! Serving a user-notification listener (`SECCOMP_RET_USER_NOTIF`): find and take the listener
//! of a sandboxed process, receive a notification, let the call continue or fail it.
//!
//! # The exec gate recipe
//!
//! The launcher cannot hand its listener to anybody once its own filter is installed (sendmsg is
//! usually not promised), so its **parent** (the supervisor, which has ptrace access to its
//! child) takes it:
//!
//! 1. launcher: `install(&prog, InstallFlags::NEW_LISTENER)`, keep the fd open, `execve(prog)`;
//!    the execve blocks in the kernel waiting for an answer;
//! 2. supervisor: [`find_listener`]`(pid)` (poll until it appears), [`take_listener`]`(pid, fd)`,
//!    [`receive`] — check `nr` is execve/execveat and `pid` is the launcher — then
//!    [`respond_continue`] and drop the listener. The kernel's listener fd is close-on-exec, so
//!    after the execve nobody holds it and every later execve fails with ENOSYS.
//!
//! Nothing but the launcher runs under the filter before that first execve completes, so the
//! continued call is the launcher's own (its arguments live in memory only it controls).

use std::os::fd::BorrowedFd;
#[cfg(test)]
use std::os::fd::{AsFd, OwnedFd};

use super::SeccompError;
use crate::sandbox::sys;

/// One notified syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Cookie to answer with.
    pub id: u64,
    /// Thread id of the caller, in the listener's PID namespace (0 if not visible).
    pub pid: u32,
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl Notification {
    #[cfg(test)]
    /// Which promise would allow this call; `self_pid` is the PID the filter treats as "self".
    pub fn explain(&self, self_pid: Option<i32>) -> super::explain::Explanation {
        super::explain_with_pid(i64::from(self.nr), &self.args, self_pid)
    }
}

const SECCOMP_USER_NOTIF_FLAG_CONTINUE: u32 = 1;

/// Block until a notification arrives (retries on EINTR). Fails with ENOENT when the notifying
/// task died before it was received.
pub fn receive(listener: BorrowedFd<'_>) -> Result<Notification, SeccompError> {
    loop {
        match sys::seccomp_notif_recv(listener) {
            Ok(n) => {
                return Ok(Notification {
                    id: n.id,
                    pid: n.pid,
                    nr: n.data.nr,
                    arch: n.data.arch,
                    instruction_pointer: n.data.instruction_pointer,
                    args: n.data.args,
                })
            }
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(source) => {
                return Err(SeccompError::Notify {
                    op: "receive",
                    source,
                })
            }
        }
    }
}

/// Let the notified syscall run as if the filter had allowed it. Only safe as a policy decision
/// when nothing else can change the call's memory arguments (e.g. the single-threaded launcher
/// blocked in its own execve).
pub fn respond_continue(listener: BorrowedFd<'_>, id: u64) -> Result<(), SeccompError> {
    respond(listener, id, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE)
}

/// Fail the notified syscall with `errno`.
pub fn respond_errno(listener: BorrowedFd<'_>, id: u64, errno: i32) -> Result<(), SeccompError> {
    respond(listener, id, -errno.abs(), 0)
}

fn respond(listener: BorrowedFd<'_>, id: u64, error: i32, flags: u32) -> Result<(), SeccompError> {
    let r = libc::seccomp_notif_resp {
        id,
        val: 0,
        error,
        flags,
    };
    sys::seccomp_notif_send(listener, r)
        .map_err(|source| SeccompError::Notify { op: "send", source })
}

/// Is the notification still pending (its task alive and waiting)?
pub fn id_valid(listener: BorrowedFd<'_>, id: u64) -> bool {
    sys::seccomp_notif_id_valid(listener, id).is_ok()
}

#[cfg(test)]
/// What `/proc/PID/fd/N` points to for a seccomp listener.
const LISTENER_LINK: &str = "anon_inode:seccomp notify";

#[cfg(test)]
/// The fd number of a seccomp listener held by process `pid`, if it has one yet (lowest first).
pub fn find_listener(pid: i32) -> Result<Option<i32>, SeccompError> {
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).map_err(|source| SeccompError::Notify {
        op: "listing /proc/PID/fd to find the listener",
        source,
    })?;
    let mut found: Option<i32> = None;
    for e in entries.flatten() {
        let Some(n) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == LISTENER_LINK) {
            found = Some(found.map_or(n, |f| f.min(n)));
        }
    }
    Ok(found)
}

#[cfg(test)]
/// Duplicate fd `fd` of process `pid` into this process (`pidfd_open` + `pidfd_getfd`, Linux
/// 5.6; needs ptrace access to `pid`, e.g. being its parent with the same uid, or root).
pub fn take_listener(pid: i32, fd: i32) -> Result<OwnedFd, SeccompError> {
    let err = |op| move |source| SeccompError::Notify { op, source };
    let pidfd = sys::pidfd_open(pid).map_err(err("pidfd_open"))?;
    sys::pidfd_getfd(pidfd.as_fd(), fd).map_err(err("pidfd_getfd"))
}
