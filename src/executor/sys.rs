//! The executor's only `unsafe` code: raw syscalls the safe wrappers do not cover (clone3 with
//! CLONE_INTO_CGROUP and CLONE_PIDFD, pidfd_open, pidfd_send_signal, waitid(P_PIDFD), fork in the
//! single-threaded supervisor, signal dispositions, setpriority).

// One of the three modules allowed `unsafe` (see the crate docs in src/lib.rs).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::raw::c_char;

/// `struct clone_args` (linux/sched.h, version 2 with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_NEWNS: u64 = 0x0002_0000;
const CLONE_NEWIPC: u64 = 0x0800_0000;
const CLONE_NEWPID: u64 = 0x2000_0000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Everything the child half of [`spawn_in_cgroup`] needs, prepared in the parent.
pub struct SpawnPlan<'a> {
    pub path: &'a CStr,
    pub argv: &'a [CString],
    pub cgroup_dir: RawFd,
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    /// Stay in our PID namespace (task `pid_mode = "host"`) instead of a new one.
    pub host_pid: bool,
    /// Stay in our IPC namespace (task `ipc_mode = "host"`).
    pub host_ipc: bool,
}

/// Starts `plan.path` as PID 1 of new PID, mount and IPC namespaces, born inside the cgroup
/// `plan.cgroup_dir`, in its own session, with an empty environment and fds 0-2 from the plan.
/// Returns its pid (in our namespace) and a pidfd. The child half only makes syscalls.
pub fn spawn_in_cgroup(plan: &SpawnPlan<'_>) -> io::Result<(i32, OwnedFd)> {
    let mut argv: Vec<*const c_char> = plan.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let envp: [*const c_char; 1] = [std::ptr::null()];
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let mut pidfd: libc::c_int = -1;
    let args = CloneArgs {
        flags: CLONE_PIDFD
            | CLONE_INTO_CGROUP
            | CLONE_NEWNS
            | if plan.host_pid { 0 } else { CLONE_NEWPID }
            | if plan.host_ipc { 0 } else { CLONE_NEWIPC },
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: plan.cgroup_dir as u64,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM has fork semantics: the child gets a copy of our memory and
    // only the calling thread. `args` and `pidfd` outlive the call. The child branch below calls
    // only async-signal-safe syscalls on memory prepared before the clone, then execs or exits.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret == 0 {
        // SAFETY: we are the freshly cloned child; see `child_exec`.
        unsafe { child_exec(plan, argv.as_ptr(), envp.as_ptr(), err_w.as_raw_fd()) }
    }
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    drop(err_w);
    let pid = ret as i32;
    // SAFETY: the kernel stored a new pidfd in `pidfd` because CLONE_PIDFD was set and clone3 succeeded.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let mut buf = [0u8; 4];
    let n = read_full(&err_r, &mut buf)?;
    if n == 4 {
        let errno = i32::from_ne_bytes(buf);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        return Err(io::Error::from_raw_os_error(errno));
    }
    Ok((pid, pidfd))
}

fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(got)
}

/// Child half of [`spawn_in_cgroup`]: fds, session, signals blocked with default dispositions,
/// exec; errno to `err_w`.
///
/// # Safety
/// Must only be called in the child of a fork-like clone; never returns.
unsafe fn child_exec(
    plan: &SpawnPlan<'_>,
    argv: *const *const c_char,
    envp: *const *const c_char,
    err_w: RawFd,
) -> ! {
    // SAFETY: we are the only thread of a fresh clone (the caller's contract); every call below
    // is a raw syscall on fds the plan names or on `all`, a live local sigset, and `plan.path`,
    // `argv` and `envp` are NUL-terminated arrays built before the clone that are still mapped.
    unsafe {
        for (src, dst) in [(plan.stdin, 0), (plan.stdout, 1), (plan.stderr, 2)] {
            if src == dst {
                libc::fcntl(dst, libc::F_SETFD, 0);
            } else if libc::dup2(src, dst) < 0 {
                fail(err_w);
            }
        }
        libc::setsid();
        // The supervisor starts with every signal blocked: as PID 1 of its namespace it would drop a
        // stop signal that arrives (from the plugin) before it blocks them itself, while a blocked
        // signal stays pending until its sigwait loop takes it and forwards it to the task.
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        libc::execve(plan.path.as_ptr(), argv, envp);
        fail(err_w)
    }
}

/// Reports errno on `err_w` and exits with 127.
///
/// # Safety
/// Only in the child of [`spawn_in_cgroup`].
unsafe fn fail(err_w: RawFd) -> ! {
    // SAFETY: errno is this thread's; `bytes` is a live local buffer; `_exit` runs no user code.
    unsafe {
        let errno = *libc::__errno_location();
        let bytes = errno.to_ne_bytes();
        libc::write(err_w, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
}

/// `pidfd_open(pid, 0)`.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`: cannot hit a reused pid.
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall; a null siginfo is allowed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reaps the process behind `pidfd` if it is our exited child (ECHILD otherwise is ignored).
pub fn reap_pidfd(pidfd: &OwnedFd) {
    // SAFETY: `info` is a valid out-pointer; waitid(P_PIDFD) with WNOHANG never blocks.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        );
    }
}

/// `fork()` for the single-threaded supervisor.
/// Makes orphaned descendants of this process its children (the supervisor outside a PID
/// namespace of its own, `pid_mode = "host"`, still reaps everything the task leaves).
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn fork_single_threaded() -> io::Result<nix::unistd::ForkResult> {
    // SAFETY: only the supervisor calls this; it is a single-threaded process (no runtime, no
    // threads were started), so the child may run ordinary code before exec.
    unsafe { nix::unistd::fork() }.map_err(io::Error::from)
}

/// Resets every catchable signal to its default disposition (before exec of the task).
pub fn default_signal_dispositions() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: setting SIG_DFL installs no handler code.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// `setpriority(PRIO_PROCESS, 0, nice)`.
pub fn set_nice(nice: i32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `_exit(code)`: leave a forked child without running atexit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// Registers a pidfd with the tokio reactor (readable = the process exited).
pub fn watch_pidfd(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` owns a valid open descriptor, keeps it open until dropped, and always
    // returns the same number from `as_raw_fd`; the AsyncFd takes ownership of it.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)
}

/// `ioctl(fd, TIOCSCTTY, 0)`: makes the terminal on `fd` the controlling tty of this session
/// leader (the exec'd process after `setsid`).
pub fn set_controlling_tty(fd: RawFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument; an invalid fd only yields an error.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioctl(fd, TIOCSWINSZ, {rows, cols})` on a pty master.
pub fn set_window_size(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer, which outlives the call.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws as *const libc::winsize) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Is `fd` a seccomp user-notification listener (`/proc/self/fd/N` names its anon inode)?
pub fn is_seccomp_listener(fd: &OwnedFd) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .is_ok_and(|t| t.as_os_str() == "anon_inode:seccomp notify")
}
