//! The raw system calls of the launcher, each in one small function. All `unsafe` of the
//! launcher lives here; everything else uses these safe wrappers.

// One of the three modules allowed `unsafe` (see the crate docs in src/lib.rs).
#![allow(unsafe_code)]

use std::ffi::{c_char, CStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`: the ABI version or errno.
pub fn landlock_abi_version() -> Result<i32, i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_ulong = 1;
    // SAFETY: with a NULL attribute pointer and size 0 the kernel reads no memory; the call has
    // no side effect besides returning the ABI version.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(ret as i32)
    }
}

/// `prctl(PR_GET_SECCOMP)`: does the kernel know seccomp? (`EINVAL` = no.)
pub fn seccomp_available() -> bool {
    // SAFETY: PR_GET_SECCOMP takes no pointer arguments and only reads the calling thread's mode.
    let ret = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    !(ret < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL))
}

/// Open `path` with `O_PATH | O_NOFOLLOW | O_CLOEXEC` (no read permission needed).
pub fn open_path_nofollow(path: &Path) -> io::Result<OwnedFd> {
    open(
        path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// `close_range(first, ~0, 0)`; falls back to closing each fd below the soft NOFILE limit.
pub fn close_from(first: u32) {
    // SAFETY: closing descriptors does not touch memory; the caller owns no Rust object that
    // refers to a descriptor ≥ `first` (called at start-up, before any is created).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    if ret < 0 {
        let max = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(s, _)| s.min(65536))
            .unwrap_or(1024);
        for fd in first as u64..max {
            // SAFETY: as above; errors (EBADF) are irrelevant.
            unsafe { libc::close(fd as RawFd) };
        }
    }
}

/// Is `fd` open? (`fcntl(F_GETFD)`.)
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only inspects the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Drop every capability from the bounding set, as pledge.com does: stops at EINVAL (past the
/// last capability); EPERM means we are not privileged, so nothing can be dropped (harmless).
pub fn drop_bounding_set() -> io::Result<()> {
    for cap in 0..=63 {
        // SAFETY: PR_CAPBSET_DROP takes an integer and touches no user memory.
        let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if ret < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::EPERM) => Ok(()),
                _ => Err(e),
            };
        }
    }
    Ok(())
}

/// `-n`: idle I/O class and SCHED_IDLE (errors ignored, as pledge v1.9).
pub fn very_nice() {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    const IOPRIO_CLASS_IDLE: libc::c_int = 3;
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: the ioprio_set call passes integers only; sched_setscheduler reads `param`, which
    // lives across the call.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            IOPRIO_CLASS_IDLE << 13,
        );
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

/// `pidfd_open(getpid(), 0)` — a close-on-exec pidfd of the calling process.
pub fn pidfd_self() -> io::Result<OwnedFd> {
    // SAFETY: integers only; on success the kernel returns a fresh descriptor nobody else owns.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) })?;
    // SAFETY: see above: `fd` is new and owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_open(pid, 0)` — a close-on-exec pidfd of process `pid`.
pub fn pidfd_of(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: integers only; on success the kernel returns a fresh descriptor nobody else owns.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: see above: `fd` is new and owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Outcome of [`fork`].
pub enum Forked {
    Parent(libc::pid_t),
    Child,
}

/// `fork()`. The launcher is single-threaded when it calls this, so the child may run ordinary
/// code; it still only makes system calls and leaves with [`exit_now`].
pub fn fork() -> io::Result<Forked> {
    // SAFETY: the launcher process is single-threaded (it runs before any runtime or thread is
    // started), so no lock can be held by another thread in the child.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        p => Ok(Forked::Parent(p)),
    }
}

/// `_exit(code)`: leave without running destructors or atexit handlers (for forked children).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// `close(fd)` for a raw descriptor the caller no longer uses through any Rust object.
pub fn close_raw(fd: RawFd) {
    // SAFETY: the callers pass descriptors they own and never use again.
    unsafe { libc::close(fd) };
}

/// `poll` on two descriptors for input, forever (retries EINTR). Returns (first, second) ready.
pub fn poll_two(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> io::Result<(bool, bool)> {
    let mut fds = [
        libc::pollfd {
            fd: a.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: b.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: `fds` is a live array of two pollfd for the duration of the call.
        let ret = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if ret < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        return Ok((fds[0].revents != 0, fds[1].revents != 0));
    }
}

/// `execve(path, argv, envp)` with pointer arrays prepared in advance (NULL-terminated), so
/// that nothing is allocated after the seccomp filter is installed. Returns the errno on failure.
pub fn execve(path: &CStr, argv: &[*const c_char], envp: &[*const c_char]) -> io::Error {
    debug_assert!(argv.last().is_some_and(|p| p.is_null()));
    debug_assert!(envp.last().is_some_and(|p| p.is_null()));
    // SAFETY: `path` is a valid C string; `argv`/`envp` are NULL-terminated arrays of pointers to
    // C strings that the caller keeps alive across the call (see `launch::ExecPlan`).
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// `ttyname(0)` when stdin is a terminal.
pub fn stdin_tty_name() -> Option<std::path::PathBuf> {
    use std::os::fd::AsFd;
    nix::unistd::ttyname(std::io::stdin().as_fd()).ok()
}

/// The lowest descriptor number that is not open (what the next new descriptor will get),
/// found by duplicating `any` (no filesystem access, which Landlock may already forbid).
pub fn lowest_free_fd(any: BorrowedFd<'_>) -> io::Result<RawFd> {
    let dup = nix::fcntl::fcntl(any, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(0))?;
    close_raw(dup);
    Ok(dup)
}

/// `prctl(PR_SET_DUMPABLE, 1)`.
pub fn set_dumpable() -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) } as libc::c_long).map(drop)
}

/// `prctl(PR_SET_DUMPABLE, 0)`: no ptrace, `/proc/PID/mem` or `pidfd_getfd` by processes of the
/// same uid without CAP_SYS_PTRACE (the helpers that hold a seccomp listener).
pub fn set_undumpable() -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } as libc::c_long).map(drop)
}

/// `pidfd_getfd(pidfd, fd, 0)`: a copy of another process's descriptor.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only; on success the kernel returns a new descriptor we own.
    let ret = check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) })?;
    // SAFETY: see above.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// Write all of `buf`.
pub fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Read exactly `buf.len()` bytes.
pub fn read_exact(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<()> {
    let mut off = 0;
    while off < buf.len() {
        match nix::unistd::read(fd, &mut buf[off..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => off += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Best-effort write of one message to fd 2.
pub fn write_stderr(msg: &str) {
    // SAFETY: fd 2 is borrowed only for this call.
    let fd = unsafe { BorrowedFd::borrow_raw(2) };
    let _ = write_all(fd, msg.as_bytes());
}

/// `poll` one descriptor for input forever (retries EINTR); returns its revents.
pub fn poll_one(a: BorrowedFd<'_>) -> io::Result<libc::c_short> {
    let mut fds = [libc::pollfd {
        fd: a.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    loop {
        // SAFETY: `fds` is a live array of one pollfd for the duration of the call.
        let ret = unsafe { libc::poll(fds.as_mut_ptr(), 1, -1) };
        if ret < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        return Ok(fds[0].revents);
    }
}

/// Is `a` readable right now (`poll` with a zero timeout)?
pub fn poll_readable_now(a: BorrowedFd<'_>) -> bool {
    let mut fds = [libc::pollfd {
        fd: a.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: `fds` is a live array of one pollfd for the duration of the call.
    let ret = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
    ret > 0 && fds[0].revents != 0
}

/// `pidfd_send_signal(pidfd, SIGKILL)` (errors ignored).
pub fn pidfd_kill(pidfd: BorrowedFd<'_>) {
    // SAFETY: integer arguments and a NULL siginfo pointer.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
}

/// `prctl(PR_SET_PTRACER, pid)` (Yama); errors ignored (EINVAL when Yama is absent).
pub fn set_ptracer(pid: libc::pid_t) {
    // SAFETY: integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PTRACER, pid as libc::c_ulong, 0, 0, 0) };
}

/// `signal(SIGPIPE, SIG_DFL)`. Rust's runtime ignores SIGPIPE before `main`, which would turn a
/// closed stdout into a panic in `println!` and hand PROG an ignored SIGPIPE across execve.
pub fn default_sigpipe() {
    // SAFETY: setting SIG_DFL installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// `prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)` (Linux 6.3): from now on, and across fork and
/// execve, no mapping may be writable and executable at once or become executable later.
/// `Ok(false)`: the kernel does not know the prctl (EINVAL), nothing changed.
pub fn set_mdwe_refuse_exec_gain() -> io::Result<bool> {
    const PR_SET_MDWE: libc::c_int = 65;
    const PR_MDWE_REFUSE_EXEC_GAIN: libc::c_ulong = 1;
    // SAFETY: integer arguments only; the prctl changes a flag of our own mm.
    let r = unsafe {
        libc::prctl(
            PR_SET_MDWE,
            PR_MDWE_REFUSE_EXEC_GAIN,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINVAL) {
        Ok(false)
    } else {
        Err(e)
    }
}
/// `landlock_restrict_self(ruleset, flags)`: enter the domain of a ruleset built beforehand (by
/// the supervisor, or by the CLI itself); `flags` from `unveil::restrict_flags`.
/// `PR_SET_NO_NEW_PRIVS` must be set. Irreversible.
pub fn landlock_restrict_self(ruleset: BorrowedFd<'_>, flags: u32) -> io::Result<()> {
    // SAFETY: integer arguments only; the kernel validates the descriptor and the flags.
    check(unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), flags) })
        .map(drop)
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } as libc::c_long).map(drop)
}

/// Sends `tag` and one descriptor (`SCM_RIGHTS`) on the connected socket `sock`. Allocates
/// nothing (the control buffer is on the stack), so a child may call it between fork and exec.
pub fn send_fd(sock: BorrowedFd<'_>, tag: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    // Room for one cmsghdr carrying one int, 8-byte aligned.
    #[repr(C, align(8))]
    struct Control([u8; 32]);
    let mut control = Control([0; 32]);
    let mut iov = libc::iovec {
        iov_base: tag.as_ptr() as *mut libc::c_void,
        iov_len: tag.len(),
    };
    // SAFETY: msghdr is plain data; every pointer set below outlives the sendmsg call, and
    // CMSG_SPACE(sizeof(int)) = 24 fits the 32-byte control buffer.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd.as_raw_fd());
        check(libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) as libc::c_long).map(drop)
    }
}

/// Receives one message of at most `buf.len()` bytes and the descriptor it carries, if any.
/// `Ok((0, None))`: the peer closed the socket. Allocates nothing.
pub fn recv_fd(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    #[repr(C, align(8))]
    struct Control([u8; 32]);
    let mut control = Control([0; 32]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    loop {
        // SAFETY: as in `send_fd`; the kernel writes at most msg_controllen bytes of control
        // data and at most buf.len() bytes of payload, and sets CLOEXEC on received fds.
        let (n, fd) = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.0.as_mut_ptr().cast();
            msg.msg_controllen = control.0.len();
            let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e);
            }
            let mut fd = None;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            if !cmsg.is_null()
                && (*cmsg).cmsg_level == libc::SOL_SOCKET
                && (*cmsg).cmsg_type == libc::SCM_RIGHTS
            {
                let raw = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                fd = Some(OwnedFd::from_raw_fd(raw));
            }
            (n as usize, fd)
        };
        return Ok((n, fd));
    }
}

/// `setrlimit(res, {n, n})`; when the hard limit is lower and may not be raised, both are capped
/// at it (v1.9). Allocates nothing.
pub fn set_rlimit(res: libc::__rlimit_resource_t, n: u64) -> io::Result<()> {
    let want = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: `want` outlives the call; the kernel only reads it.
    if unsafe { libc::setrlimit(res, &want) } == 0 {
        return Ok(());
    }
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `cur` is a valid out-pointer for the duration of the call.
    check(unsafe { libc::getrlimit(res, &mut cur) } as libc::c_long)?;
    let capped = libc::rlimit {
        rlim_cur: n.min(cur.rlim_max),
        rlim_max: n.min(cur.rlim_max),
    };
    // SAFETY: as above.
    check(unsafe { libc::setrlimit(res, &capped) } as libc::c_long).map(drop)
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &sock_fprog)` on the calling thread. With
/// `new_listener` (the caller put `SECCOMP_FILTER_FLAG_NEW_LISTENER` in `flags`) the returned fd
/// is the listener. Allocates nothing: callable between fork and execve.
pub fn seccomp_set_mode_filter(
    insns: &[crate::sandbox::seccomp::bpf::Insn],
    flags: u32,
    new_listener: bool,
) -> io::Result<Option<OwnedFd>> {
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    let len = u16::try_from(insns.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fprog = libc::sock_fprog {
        len,
        // `Insn` is #[repr(C)] with the same fields as `struct sock_filter`; the kernel only reads.
        filter: insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points to `len` valid instructions that outlive the call; the kernel copies
    // the program and does not keep the pointer. No Rust memory is modified.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &fprog as *const libc::sock_fprog,
        )
    })?;
    if new_listener {
        // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returned a new fd that nobody
        // else owns.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }))
    } else {
        Ok(None)
    }
}

/// `ioctl(SECCOMP_IOCTL_NOTIF_RECV)`: block until `listener` has a notification (EINTR is the
/// caller's to retry).
pub fn seccomp_notif_recv(listener: BorrowedFd<'_>) -> io::Result<libc::seccomp_notif> {
    // SAFETY: seccomp_notif is plain data; all-zero is a valid value (and what the kernel
    // requires on input).
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: `listener` is open for the call; the request writes one `seccomp_notif` into `n`,
    // a live, exclusively borrowed value of that type.
    check(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut n as *mut libc::seccomp_notif,
        )
    } as libc::c_long)?;
    Ok(n)
}

/// `ioctl(SECCOMP_IOCTL_NOTIF_SEND)`: answer a notification.
pub fn seccomp_notif_send(
    listener: BorrowedFd<'_>,
    mut resp: libc::seccomp_notif_resp,
) -> io::Result<()> {
    // SAFETY: `listener` is open for the call; the request reads one `seccomp_notif_resp` from
    // `resp`, a live local of that type.
    check(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut resp as *mut libc::seccomp_notif_resp,
        )
    } as libc::c_long)
    .map(drop)
}

/// `ioctl(SECCOMP_IOCTL_NOTIF_ID_VALID)`: is notification `id` still pending?
pub fn seccomp_notif_id_valid(listener: BorrowedFd<'_>, mut id: u64) -> io::Result<()> {
    // SAFETY: `listener` is open for the call; the request reads one `u64` from `id`, a live
    // local.
    check(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &mut id as *mut u64,
        )
    } as libc::c_long)
    .map(drop)
}

/// Ignore `sig` (`SIG_IGN`) process-wide.
pub fn ignore_signal(sig: nix::sys::signal::Signal) -> nix::Result<()> {
    use nix::sys::signal::{signal, SigHandler};
    // SAFETY: installing SIG_IGN runs no handler code, so there is no async-signal-safety
    // concern.
    unsafe { signal(sig, SigHandler::SigIgn) }.map(drop)
}

/// `pidfd_open(pid, 0)`.
#[cfg(test)]
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    let ret = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: on success the kernel returned a new descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// Test-only (the seccomp kernel tests): any syscall with six raw arguments; the errno on
/// failure. Every caller passes integers or pointers to memory that stays alive (statics or the
/// calling frame's) for the duration of the call, and expects the filter under test to decide —
/// which is why this is not a general-purpose wrapper.
#[cfg(test)]
pub fn test_syscall(nr: libc::c_long, a: [u64; 6]) -> Result<i64, i32> {
    // SAFETY: see the contract above (test code only).
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(255))
    } else {
        Ok(r)
    }
}

/// `waitpid(pid, &status, 0)` for our own child, retrying EINTR: the raw wait status.
#[cfg(test)]
pub fn waitpid_status(pid: libc::pid_t) -> io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a live, writable int.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}
