//! The probe child of [`super::check`]: the only `unsafe` code of the resolution module.
//!
//! The plugin is multi-threaded, so the child of a fork may only make syscalls on memory that
//! was prepared before the fork (no allocation, no locks, no glibc `setuid` family, which
//! broadcasts to threads the child does not have). The child changes into the working
//! directory as root (as the supervisor's task child does), takes the task user's groups, gid
//! and uid with raw syscalls, `stat`s and `access`es every candidate path, writes one `i32`
//! per step to a pipe and `_exit`s.

// One of the three modules allowed `unsafe` (see the crate docs in src/lib.rs).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The candidate is a regular file the user may execute.
pub const EXECUTABLE: i32 = 0;
/// The candidate exists but is not a regular file.
pub const NOT_REGULAR: i32 = -1;
/// The candidate is a regular file without execute permission for the user.
pub const NOT_EXECUTABLE: i32 = -2;
/// The identity switch failed (`setgroups`/`setresgid`/`setresuid` errno follows as the value).
const SWITCH_FAILED: i32 = -3;

/// The identity the probe takes (None: keep ours, when the plugin is not root).
pub struct Identity<'a> {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: &'a [libc::gid_t],
}

/// What the probe found: the errno of `chdir(cwd)` (0 = fine), then per candidate
/// [`EXECUTABLE`], [`NOT_REGULAR`], [`NOT_EXECUTABLE`] or the errno of its `stat`.
#[derive(Debug, PartialEq, Eq)]
pub struct Findings {
    pub chdir_errno: i32,
    pub candidates: Vec<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot fork the probe child")]
    Fork(#[source] io::Error),
    #[error("cannot create the probe pipe")]
    Pipe(#[source] nix::Error),
    #[error("cannot take the task user's identity (uid {uid}, gid {gid})")]
    Identity {
        uid: u32,
        gid: u32,
        source: io::Error,
    },
    #[error("the probe child ended without reporting (read {got} of {want} bytes)")]
    Short { got: usize, want: usize },
}

/// Runs the probe in a short-lived child and returns its findings.
pub fn probe(
    cwd: &CStr,
    identity: Option<&Identity<'_>>,
    candidates: &[CString],
) -> Result<Findings, ProbeError> {
    // Everything the child touches is allocated here, before the fork.
    let words = 2 + candidates.len();
    let mut out = vec![0i32; words];
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ProbeError::Pipe)?;
    // SAFETY: clone(SIGCHLD) without CLONE_VM has fork semantics: the child gets a copy of our
    // memory and only this thread. The child branch calls only async-signal-safe functions
    // (chdir, raw set*id syscalls, stat, access, write, _exit) on memory prepared above.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        // SAFETY: we are the freshly forked child; see `child`.
        unsafe { child(cwd, identity, candidates, &mut out, w.as_raw_fd()) }
    }
    if pid < 0 {
        return Err(ProbeError::Fork(io::Error::last_os_error()));
    }
    drop(w);
    let bytes = read_all(&r, words * 4);
    reap(pid as libc::pid_t);
    let bytes = bytes.map_err(ProbeError::Fork)?;
    if bytes.len() != words * 4 {
        return Err(ProbeError::Short {
            got: bytes.len(),
            want: words * 4,
        });
    }
    let ints: Vec<i32> = bytes
        .chunks_exact(4)
        .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if ints[0] == SWITCH_FAILED {
        let (uid, gid) = identity.map(|i| (i.uid, i.gid)).unwrap_or((0, 0));
        return Err(ProbeError::Identity {
            uid,
            gid,
            source: io::Error::from_raw_os_error(ints[1]),
        });
    }
    Ok(Findings {
        chdir_errno: ints[1],
        candidates: ints[2..].to_vec(),
    })
}

fn read_all(fd: &OwnedFd, want: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; want];
    let mut got = 0;
    while got < want {
        match nix::unistd::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// Waits for the child (ECHILD, when something else reaped it, is fine: its report is read).
fn reap(pid: libc::pid_t) {
    loop {
        match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Err(nix::Error::EINTR) => continue,
            _ => return,
        }
    }
}

/// The probe child. Word 0 is a status (0, or [`SWITCH_FAILED`] with the errno in word 1),
/// word 1 the `chdir` errno, then one word per candidate.
///
/// # Safety
/// Must only be called in the child of a fork; never returns.
unsafe fn child(
    cwd: &CStr,
    identity: Option<&Identity<'_>>,
    candidates: &[CString],
    out: &mut [i32],
    w: RawFd,
) -> ! {
    // SAFETY: we are the only thread of a fresh fork (the caller's contract); every call below
    // is a raw syscall on C strings and group lists built before the fork, on `st`, a live local
    // stat buffer, or reads this thread's errno.
    unsafe {
        let errno = || *libc::__errno_location();
        if libc::chdir(cwd.as_ptr()) != 0 {
            out[1] = errno();
            report(out, w);
        }
        if let Some(id) = identity {
            // Raw syscalls: they change only this (the only) thread's credentials.
            if libc::syscall(libc::SYS_setgroups, id.groups.len(), id.groups.as_ptr()) != 0
                || libc::syscall(libc::SYS_setresgid, id.gid, id.gid, id.gid) != 0
                || libc::syscall(libc::SYS_setresuid, id.uid, id.uid, id.uid) != 0
            {
                out[0] = SWITCH_FAILED;
                out[1] = errno();
                report(out, w);
            }
        }
        for (i, c) in candidates.iter().enumerate() {
            let mut st: libc::stat = std::mem::zeroed();
            out[2 + i] = if libc::stat(c.as_ptr(), &mut st) != 0 {
                errno()
            } else if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                NOT_REGULAR
            } else if libc::access(c.as_ptr(), libc::X_OK) != 0 {
                NOT_EXECUTABLE
            } else {
                EXECUTABLE
            };
        }
        report(out, w)
    }
}

/// Writes `out` to `w` and exits.
///
/// # Safety
/// Only in the probe child.
unsafe fn report(out: &[i32], w: RawFd) -> ! {
    // SAFETY: `out` is a live slice of plain integers, viewed as its own bytes; `write` reads
    // only within it; `_exit` runs no user code.
    unsafe {
        let bytes =
            std::slice::from_raw_parts(out.as_ptr().cast::<u8>(), std::mem::size_of_val(out));
        let mut done = 0;
        while done < bytes.len() {
            let n = libc::write(w, bytes[done..].as_ptr().cast(), bytes.len() - done);
            if n < 0 {
                if errno_is_eintr() {
                    continue;
                }
                break;
            }
            done += n as usize;
        }
        libc::_exit(0)
    }
}

/// Was the last failing call interrupted by a signal?
fn errno_is_eintr() -> bool {
    // SAFETY: reads this thread's errno.
    unsafe { *libc::__errno_location() == libc::EINTR }
}
