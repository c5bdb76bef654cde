//! Serving a user-notification listener (`SECCOMP_RET_USER_NOTIF`): receive a notification,
//! let the call continue or fail it. Used by the exec gate's supervisor.

use std::os::fd::{AsRawFd, BorrowedFd};

use super::SeccompError;

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

const SECCOMP_USER_NOTIF_FLAG_CONTINUE: u32 = 1;

/// Block until a notification arrives (retries on EINTR). Fails with ENOENT when the notifying
/// task died before it was received.
pub fn receive(listener: BorrowedFd<'_>) -> Result<Notification, SeccompError> {
    loop {
        // SAFETY: seccomp_notif is plain data; all-zero is a valid value (and what the kernel
        // requires on input).
        let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        match ioctl(
            listener,
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut n as *mut _ as *mut _,
        ) {
            Ok(()) => {
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
    let mut r = libc::seccomp_notif_resp {
        id,
        val: 0,
        error,
        flags,
    };
    ioctl(
        listener,
        libc::SECCOMP_IOCTL_NOTIF_SEND,
        &mut r as *mut _ as *mut _,
    )
    .map_err(|source| SeccompError::Notify { op: "send", source })
}

/// Is the notification still pending (its task alive and waiting)?
pub fn id_valid(listener: BorrowedFd<'_>, id: u64) -> bool {
    let mut id = id;
    ioctl(
        listener,
        libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
        &mut id as *mut u64 as *mut _,
    )
    .is_ok()
}

/// The one raw call of this module.
fn ioctl(fd: BorrowedFd<'_>, request: libc::Ioctl, arg: *mut libc::c_void) -> std::io::Result<()> {
    // SAFETY: `fd` is open for the duration of the call; every caller passes a pointer to a live,
    // exclusively borrowed value of the type the request encodes.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request, arg) };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
