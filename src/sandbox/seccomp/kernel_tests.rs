//! Real-kernel tests: install a filter in a forked child, make one syscall, report the errno
//! through the exit status. The child runs only raw syscalls after the fork (the test harness
//! is multi-threaded), and everything it needs (paths, fds, the program) exists before the fork.

#![cfg(target_arch = "x86_64")]

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd};

use super::{build_filter, install, notify, BpfProgram, FilterOptions, InstallFlags, Penalty};
use crate::sandbox::promise::PromiseSet;

/// Exit status of a child whose filter could not be installed.
const INSTALL_FAILED: i32 = 100;

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The syscall succeeded (exit 0) or failed with this errno.
    Exited(i32),
    Signaled(i32),
}

const OK: Outcome = Outcome::Exited(0);
const EPERM: Outcome = Outcome::Exited(libc::EPERM);

// `sys`: a raw syscall, `Ok(return value)` or `Err(errno)`, async-signal-safe.
use crate::sandbox::sys::{exit_now, test_syscall as sys};

/// Is seccomp filtering available at all? (If not, the kernel tests skip.)
fn seccomp_available() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Seccomp:")))
        .unwrap_or(false)
}

macro_rules! require_seccomp {
    () => {
        if crate::host_features::skip_unless(
            "seccomp",
            seccomp_available(),
            "kernel without seccomp filter support (/proc/self/status has no Seccomp line)",
        ) {
            return;
        }
    };
}

/// Fork (optionally into a new PID namespace, where the child is PID 1), install `prog` in the
/// child, run `body` there and exit with its result: 0 on success, else the errno.
fn in_child(
    prog: &BpfProgram,
    flags: InstallFlags,
    new_pid_ns: bool,
    body: impl FnOnce() -> Result<i64, i32>,
) -> Result<Outcome, i32> {
    let clone_flags = libc::SIGCHLD as u64
        | if new_pid_ns {
            libc::CLONE_NEWPID as u64
        } else {
            0
        };
    // A raw clone without a new stack behaves like fork(); the child only makes raw syscalls.
    let pid = sys(libc::SYS_clone, [clone_flags, 0, 0, 0, 0, 0])?;
    if pid == 0 {
        if install(prog, flags).is_err() {
            exit_now(INSTALL_FAILED);
        }
        exit_now(match body() {
            Ok(_) => 0,
            Err(e) => e,
        });
    }
    Ok(wait(pid as i32))
}

fn wait(pid: i32) -> Outcome {
    let status = crate::sandbox::sys::waitpid_status(pid).expect("waitpid on our own child");
    if libc::WIFEXITED(status) {
        let code = libc::WEXITSTATUS(status);
        assert_ne!(
            code, INSTALL_FAILED,
            "the child could not install the filter"
        );
        Outcome::Exited(code)
    } else {
        Outcome::Signaled(libc::WTERMSIG(status))
    }
}

fn filter(promises: &str, opts: FilterOptions) -> BpfProgram {
    build_filter(&PromiseSet::parse(promises).unwrap(), &opts).unwrap()
}

fn run(promises: &str, body: impl FnOnce() -> Result<i64, i32>) -> Outcome {
    run_with(promises, FilterOptions::default(), body)
}

fn run_with(
    promises: &str,
    opts: FilterOptions,
    body: impl FnOnce() -> Result<i64, i32>,
) -> Outcome {
    in_child(&filter(promises, opts), InstallFlags::NONE, false, body).expect("fork")
}

const PASSWD: &CStr = c"/etc/passwd";
const AT_FDCWD: u64 = libc::AT_FDCWD as i64 as u64;

fn openat(path: &CStr, flags: i32, mode: u32) -> Result<i64, i32> {
    sys(
        libc::SYS_openat,
        [
            AT_FDCWD,
            path.as_ptr() as u64,
            flags as u64,
            mode as u64,
            0,
            0,
        ],
    )
}

#[test]
fn stdio_allows_write_and_getpid_but_not_open() {
    require_seccomp!();
    assert_eq!(run("stdio", || sys(libc::SYS_getpid, [0; 6])), OK);
    let devnull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let fd = devnull.as_raw_fd() as u64;
    let buf = b"x";
    assert_eq!(
        run("stdio", || sys(
            libc::SYS_write,
            [fd, buf.as_ptr() as u64, 1, 0, 0, 0]
        )),
        OK
    );
    assert_eq!(run("stdio", || openat(PASSWD, libc::O_RDONLY, 0)), EPERM);
    assert_eq!(
        run("stdio", || sys(
            libc::SYS_open,
            [PASSWD.as_ptr() as u64, 0, 0, 0, 0, 0]
        )),
        EPERM
    );
    // glibc's fstat is newfstatat: not in stdio (pledge-semantics §2.7)
    let empty = c"";
    let mut st = [0u8; 256];
    assert_eq!(
        run("stdio", || sys(
            libc::SYS_newfstatat,
            [
                fd,
                empty.as_ptr() as u64,
                st.as_mut_ptr() as u64,
                libc::AT_EMPTY_PATH as u64,
                0,
                0
            ]
        )),
        EPERM
    );
    // ... but it is in rpath
    assert_eq!(
        run("stdio rpath", || sys(
            libc::SYS_newfstatat,
            [
                fd,
                empty.as_ptr() as u64,
                st.as_mut_ptr() as u64,
                libc::AT_EMPTY_PATH as u64,
                0,
                0
            ]
        )),
        OK
    );
}

#[test]
fn rpath_allows_read_only_opens_only() {
    require_seccomp!();
    let dir = tempfile::tempdir().unwrap();
    let path = std::ffi::CString::new(dir.path().join("new").to_str().unwrap()).unwrap();
    assert_eq!(run("stdio rpath", || openat(PASSWD, libc::O_RDONLY, 0)), OK);
    assert_eq!(
        run("stdio rpath", || openat(
            &path,
            libc::O_WRONLY | libc::O_CREAT,
            0o644
        )),
        EPERM
    );
    assert!(
        !dir.path().join("new").exists(),
        "denied open must have no effect"
    );
    assert_eq!(
        run("stdio rpath", || openat(PASSWD, libc::O_RDWR, 0)),
        EPERM
    );
    // cpath creates without setid bits, and (as pledge.com) opens existing files in any mode
    assert_eq!(
        run("stdio cpath", || openat(
            &path,
            libc::O_WRONLY | libc::O_CREAT,
            0o4644
        )),
        EPERM
    );
    assert_eq!(
        run("stdio cpath", || openat(
            &path,
            libc::O_WRONLY | libc::O_CREAT,
            0o644
        )),
        OK
    );
    assert!(dir.path().join("new").exists());
    assert_eq!(
        run("stdio cpath", || openat(
            &path,
            libc::O_RDWR | libc::O_TRUNC,
            0
        )),
        OK
    );
    assert_eq!(run("stdio wpath", || openat(&path, libc::O_RDWR, 0)), OK);
    assert_eq!(
        run("stdio wpath", || openat(&path, libc::O_RDONLY, 0)),
        EPERM
    );
}

fn socket(family: i32, ty: i32) -> Result<i64, i32> {
    sys(libc::SYS_socket, [family as u64, ty as u64, 0, 0, 0, 0])
}

#[test]
fn socket_families_follow_inet_unix_anet() {
    require_seccomp!();
    assert_eq!(
        run("stdio inet", || socket(libc::AF_INET, libc::SOCK_STREAM)),
        OK
    );
    assert_eq!(
        run("stdio inet", || socket(
            libc::AF_INET6,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC
        )),
        OK
    );
    assert_eq!(
        run("stdio unix", || socket(libc::AF_INET, libc::SOCK_STREAM)),
        EPERM
    );
    assert_eq!(
        run("stdio unix", || socket(libc::AF_UNIX, libc::SOCK_STREAM)),
        OK
    );
    assert_eq!(
        run("stdio inet", || socket(libc::AF_UNIX, libc::SOCK_STREAM)),
        EPERM
    );
    assert_eq!(
        run("stdio anet", || socket(libc::AF_INET, libc::SOCK_DGRAM)),
        EPERM
    );
    assert_eq!(
        run("stdio anet", || socket(libc::AF_INET, libc::SOCK_STREAM)),
        OK
    );
    assert_eq!(
        run("stdio", || socket(libc::AF_INET, libc::SOCK_STREAM)),
        EPERM
    );
}

fn mmap(prot: i32, flags: i32, fd: i32) -> Result<i64, i32> {
    sys(
        libc::SYS_mmap,
        [0, 4096, prot as u64, flags as u64, fd as i64 as u64, 0],
    )
}

#[test]
fn executable_memory_needs_prot_exec_except_file_backed_under_the_exec_gate() {
    require_seccomp!();
    let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    let rx = libc::PROT_READ | libc::PROT_EXEC;
    let gate = FilterOptions {
        exec_gate: true,
        ..Default::default()
    };
    let bin = std::fs::File::open("/bin/sh").unwrap();
    let fd = bin.as_raw_fd();

    assert_eq!(run("stdio", || mmap(libc::PROT_READ, anon, -1)), OK);
    assert_eq!(run("stdio", || mmap(rx, anon, -1)), EPERM);
    assert_eq!(run("stdio prot_exec", || mmap(rx, anon, -1)), OK);
    assert_eq!(run("stdio", || mmap(rx, libc::MAP_PRIVATE, fd)), EPERM);
    assert_eq!(
        run_with("stdio", gate, || mmap(rx, libc::MAP_PRIVATE, fd)),
        OK
    );
    assert_eq!(run_with("stdio", gate, || mmap(rx, anon, -1)), EPERM);
    assert_eq!(
        run_with("stdio", gate, || mmap(
            rx | libc::PROT_WRITE,
            libc::MAP_PRIVATE,
            fd
        )),
        EPERM
    );
    // mprotect(PROT_EXEC) stays denied under the gate
    assert_eq!(
        run_with("stdio", gate, || {
            let addr = mmap(libc::PROT_READ, libc::MAP_PRIVATE, fd)?;
            sys(libc::SYS_mprotect, [addr as u64, 4096, rx as u64, 0, 0, 0])
        }),
        EPERM
    );
    assert_eq!(
        run("stdio prot_exec", || {
            let addr = mmap(libc::PROT_READ, anon, -1)?;
            sys(libc::SYS_mprotect, [addr as u64, 4096, rx as u64, 0, 0, 0])
        }),
        OK
    );
}

#[test]
fn ioctl_whitelists_stdio_and_tty() {
    require_seccomp!();
    // fd -1: an allowed request reaches the kernel and fails with EBADF; a denied one is EPERM.
    let ioctl = |req: u64| move || sys(libc::SYS_ioctl, [u64::MAX, req, 0, 0, 0, 0]);
    let ebadf = Outcome::Exited(libc::EBADF);
    assert_eq!(run("stdio", ioctl(libc::FIONREAD)), ebadf);
    assert_eq!(run("stdio", ioctl(libc::TIOCGWINSZ)), EPERM);
    assert_eq!(run("stdio tty", ioctl(libc::TIOCGWINSZ)), ebadf);
    assert_eq!(run("stdio tty", ioctl(libc::TCGETS)), ebadf);
    assert_eq!(run("stdio tty", ioctl(libc::TIOCSTI)), EPERM);
}

#[test]
fn kill_penalty_kills_with_sigsys() {
    require_seccomp!();
    let k = FilterOptions {
        penalty: Penalty::KillProcess,
        ..Default::default()
    };
    assert_eq!(
        run_with("stdio", k, || openat(PASSWD, libc::O_RDONLY, 0)),
        Outcome::Signaled(libc::SIGSYS)
    );
    assert_eq!(run_with("stdio", k, || sys(libc::SYS_getpid, [0; 6])), OK);
    // a custom errno penalty
    let e = FilterOptions {
        penalty: Penalty::Errno(libc::EACCES),
        ..Default::default()
    };
    assert_eq!(
        run_with("stdio", e, || openat(PASSWD, libc::O_RDONLY, 0)),
        Outcome::Exited(libc::EACCES)
    );
}

#[test]
fn enosys_set_returns_enosys_even_with_kill_penalty() {
    require_seccomp!();
    let k = FilterOptions {
        penalty: Penalty::KillProcess,
        ..Default::default()
    };
    let enosys = Outcome::Exited(libc::ENOSYS);
    let name = c"x";
    assert_eq!(
        run_with("stdio", k, || sys(
            libc::SYS_memfd_create,
            [name.as_ptr() as u64, 0, 0, 0, 0, 0]
        )),
        enosys
    );
    assert_eq!(
        run_with("stdio proc", k, || sys(libc::SYS_clone3, [0; 6])),
        enosys
    );
    assert_eq!(
        run_with("stdio rpath", k, || sys(libc::SYS_openat2, [0; 6])),
        enosys
    );
    assert_eq!(run_with("stdio fattr", k, || sys(452, [0; 6])), enosys); // fchmodat2
    assert_eq!(run_with("stdio", k, || sys(1000, [0; 6])), enosys);
}

#[test]
fn x32_syscalls_are_killed() {
    require_seccomp!();
    // x32 getpid: 0x40000000 | 39
    assert_eq!(
        run("stdio", || sys(0x4000_0000 | 39, [0; 6])),
        Outcome::Signaled(libc::SIGSYS)
    );
}

#[test]
fn empty_promises_refuse_exit_group_but_allow_exit() {
    require_seccomp!();
    let out = run("", || {
        let e = sys(libc::SYS_exit_group, [3, 0, 0, 0, 0, 0]).unwrap_err();
        // report exit_group's errno through the per-thread exit, which is always allowed
        sys(libc::SYS_exit, [e as u64 + 10, 0, 0, 0, 0, 0])
    });
    assert_eq!(out, Outcome::Exited(libc::EPERM + 10));
}

#[test]
fn log_penalty_allows_and_only_logs() {
    require_seccomp!();
    let log = FilterOptions {
        penalty: Penalty::Log,
        ..Default::default()
    };
    assert_eq!(
        run_with("stdio", log, || openat(PASSWD, libc::O_RDONLY, 0)),
        OK
    );
    // the ENOSYS set is not affected by audit mode
    assert_eq!(
        run_with("stdio", log, || sys(libc::SYS_clone3, [0; 6])),
        Outcome::Exited(libc::ENOSYS)
    );
}

#[test]
fn kill_and_tgkill_reach_only_self_under_stdio() {
    require_seccomp!();
    // In a new PID namespace the child is PID 1, so "self" is known before the fork.
    let opts = FilterOptions {
        self_pid: Some(1),
        ..Default::default()
    };
    let prog = filter("stdio", opts);
    let probe = in_child(&prog, InstallFlags::NONE, true, || {
        sys(libc::SYS_getpid, [0; 6])
    });
    let pidns = probe != Err(libc::EPERM) && probe != Err(libc::EINVAL);
    let reason = "cannot create a PID namespace here (needs root / CAP_SYS_ADMIN)";
    if crate::host_features::skip_unless("pidns", pidns, reason) {
        return;
    }
    assert_eq!(probe, Ok(OK));
    let kill = |pid: u64| move || sys(libc::SYS_kill, [pid, 0, 0, 0, 0, 0]);
    assert_eq!(in_child(&prog, InstallFlags::NONE, true, kill(1)), Ok(OK));
    // pid 2 does not exist in the namespace: ESRCH if allowed, EPERM from the filter
    assert_eq!(
        in_child(&prog, InstallFlags::NONE, true, kill(2)),
        Ok(EPERM)
    );
    let proc = filter("stdio proc", opts);
    assert_eq!(
        in_child(&proc, InstallFlags::NONE, true, kill(2)),
        Ok(Outcome::Exited(libc::ESRCH))
    );
    let tgkill = |tgid: u64| move || sys(libc::SYS_tgkill, [tgid, 1, 0, 0, 0, 0]);
    assert_eq!(in_child(&prog, InstallFlags::NONE, true, tgkill(1)), Ok(OK));
    assert_eq!(
        in_child(&prog, InstallFlags::NONE, true, tgkill(2)),
        Ok(EPERM)
    );
}

#[test]
fn exec_is_denied_without_the_promise_and_allowed_with_it() {
    require_seccomp!();
    let path = c"/bin/true";
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let exec = || {
        sys(
            libc::SYS_execve,
            [
                path.as_ptr() as u64,
                argv.as_ptr() as u64,
                envp.as_ptr() as u64,
                0,
                0,
                0,
            ],
        )
    };
    assert_eq!(run("stdio rpath prot_exec", exec), EPERM);
    // /bin/true is dynamic: the loader needs rpath and executable file mappings
    assert_eq!(run("stdio rpath prot_exec exec", exec), OK);
    // without prot_exec (and without the gate) the loader cannot map libc executable
    assert_ne!(run("stdio rpath exec", exec), OK);
    // with the gate's file-backed rule it can, and `exec` lets the execve through directly
    let gate = FilterOptions {
        exec_gate: true,
        ..Default::default()
    };
    assert_eq!(run_with("stdio rpath exec", gate, exec), OK);
}

#[test]
fn exec_gate_without_a_listener_fails_execve_with_enosys() {
    require_seccomp!();
    let gate = FilterOptions {
        exec_gate: true,
        ..Default::default()
    };
    let path = c"/bin/true";
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let exec = || {
        sys(
            libc::SYS_execve,
            [
                path.as_ptr() as u64,
                argv.as_ptr() as u64,
                envp.as_ptr() as u64,
                0,
                0,
                0,
            ],
        )
    };
    // installed without a listener
    assert_eq!(
        run_with("stdio rpath", gate, exec),
        Outcome::Exited(libc::ENOSYS)
    );
    // installed with a listener that is closed again (in_child drops it) before the execve
    let prog = filter("stdio rpath", gate);
    let out = in_child(&prog, InstallFlags::NEW_LISTENER, false, exec);
    assert_eq!(out, Ok(Outcome::Exited(libc::ENOSYS)));
}

/// The full gate: the child installs with a listener and execs a dynamic program; the parent
/// finds and takes the listener, sees the execve notification and lets it continue. The
/// program then loads its libraries through file-backed executable mappings without
/// `prot_exec` and exits 0.
#[test]
fn exec_gate_lets_exactly_the_supervised_execve_through() {
    require_seccomp!();
    let gate = FilterOptions {
        exec_gate: true,
        ..Default::default()
    };
    let prog = filter("stdio rpath", gate);
    let path = c"/bin/true";
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];

    let pid = sys(libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]).expect("fork");
    if pid == 0 {
        let Ok(Some(_listener)) = install(&prog, InstallFlags::NEW_LISTENER) else {
            exit_now(INSTALL_FAILED);
        };
        let r = sys(
            libc::SYS_execve,
            [
                path.as_ptr() as u64,
                argv.as_ptr() as u64,
                envp.as_ptr() as u64,
                0,
                0,
                0,
            ],
        );
        exit_now(50 + r.err().unwrap_or(0));
    }
    let pid = pid as i32;
    let kill_child = || {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        wait(pid)
    };
    let mut child_fd = None;
    for _ in 0..10_000 {
        child_fd = notify::find_listener(pid).unwrap();
        if child_fd.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let Some(child_fd) = child_fd else {
        let out = kill_child();
        panic!("the child never showed a listener ({out:?})");
    };
    let listener = match notify::take_listener(pid, child_fd) {
        Ok(fd) => fd,
        Err(e) => {
            kill_child();
            let reason = format!(
                "cannot take the child's listener ({e}); needs Linux 5.6 and ptrace access"
            );
            crate::host_features::skip_unless("seccomp-notify", false, &reason);
            return;
        }
    };
    let note = notify::receive(listener.as_fd()).unwrap();
    assert_eq!(i64::from(note.nr), libc::SYS_execve);
    assert_eq!(note.pid as i32, pid);
    assert_eq!(
        note.explain(Some(pid)).promises(),
        vec![crate::sandbox::promise::Promise::Exec]
    );
    assert!(notify::id_valid(listener.as_fd(), note.id));
    notify::respond_continue(listener.as_fd(), note.id).unwrap();
    drop(listener);
    assert_eq!(wait(pid), OK, "/bin/true should run under the gate");
}

/// After the supervised execve, the listener is gone (close-on-exec in the new image, dropped by
/// the supervisor), so a second execve fails with ENOSYS: a shell that tries to exec gets ENOSYS.
#[test]
fn exec_gate_denies_execs_after_the_first() {
    require_seccomp!();
    let gate = FilterOptions {
        exec_gate: true,
        ..Default::default()
    };
    // the first exec (this one, promised) runs /bin/sh; sh's own exec of /bin/true is the second
    let prog = filter("stdio rpath", gate);
    let sh = c"/bin/sh";
    let (c, script) = (c"-c", c"exec /bin/true");
    let argv = [sh.as_ptr(), c.as_ptr(), script.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let pid = sys(libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]).expect("fork");
    if pid == 0 {
        let Ok(Some(_listener)) = install(&prog, InstallFlags::NEW_LISTENER) else {
            exit_now(INSTALL_FAILED);
        };
        let r = sys(
            libc::SYS_execve,
            [
                sh.as_ptr() as u64,
                argv.as_ptr() as u64,
                envp.as_ptr() as u64,
                0,
                0,
                0,
            ],
        );
        exit_now(50 + r.err().unwrap_or(0));
    }
    let pid = pid as i32;
    let mut child_fd = None;
    for _ in 0..10_000 {
        child_fd = notify::find_listener(pid).unwrap();
        if child_fd.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let listener = match child_fd.map(|fd| notify::take_listener(pid, fd)) {
        Some(Ok(l)) => l,
        other => {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            wait(pid);
            let reason = format!("cannot take the child's listener ({other:?})");
            crate::host_features::skip_unless("seccomp-notify", false, &reason);
            return;
        }
    };
    let note = notify::receive(listener.as_fd()).unwrap();
    notify::respond_continue(listener.as_fd(), note.id).unwrap();
    drop(listener);
    // dash reports a failed exec with status 126 (ENOSYS is not ENOENT)
    let out = wait(pid);
    assert_ne!(out, OK, "the second execve must not succeed");
    assert!(
        matches!(out, Outcome::Exited(126) | Outcome::Exited(127)),
        "{out:?}"
    );
}

#[test]
fn a_program_the_kernel_rejects_is_an_install_error() {
    require_seccomp!();
    // BPF_LDX|BPF_W|BPF_MSH is not allowed in seccomp filters; then `ret ALLOW`.
    let mut bytes = Vec::new();
    for (code, k) in [(0xb1u16, 0u32), (0x06, 0x7fff_0000)] {
        bytes.extend_from_slice(&code.to_ne_bytes());
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&k.to_ne_bytes());
    }
    let prog = BpfProgram::from_bytes(&bytes).unwrap();
    let pid = sys(libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]).expect("fork");
    if pid == 0 {
        exit_now(match install(&prog, InstallFlags::NONE) {
            Err(super::SeccompError::Install { source, .. }) => source.raw_os_error().unwrap_or(0),
            _ => 0,
        });
    }
    assert_eq!(wait(pid as i32), Outcome::Exited(libc::EINVAL));
}

/// Run `argv` (absolute path first) in a child under the filter, stdout/stderr to /dev/null.
fn exec_under(promises: &str, opts: FilterOptions, argv: &[&CStr]) -> Outcome {
    let prog = filter(promises, opts);
    let devnull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let null = devnull.as_raw_fd() as u64;
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    in_child(&prog, InstallFlags::NONE, false, || {
        sys(libc::SYS_dup2, [null, 1, 0, 0, 0, 0])?;
        sys(libc::SYS_dup2, [null, 2, 0, 0, 0, 0])?;
        sys(
            libc::SYS_execve,
            [
                ptrs[0] as u64,
                ptrs.as_ptr() as u64,
                envp.as_ptr() as u64,
                0,
                0,
                0,
            ],
        )
    })
    .expect("fork")
}

/// Ordinary glibc programs under the CLI's default promises (pledge-semantics §3.3), with
/// `exec` for the test's own execve and the gate's file-backed mmap rule instead of prot_exec.
#[test]
fn real_programs_run_under_stdio_rpath() {
    require_seccomp!();
    let gate = FilterOptions {
        exec_gate: true,
        ..Default::default()
    };
    let cat = [c"/bin/cat", c"/etc/passwd"];
    let ls = [c"/bin/ls", c"-la", c"/"];
    let sh = [c"/bin/sh", c"-c", c"read x < /etc/passwd; echo \"$x\""];
    for argv in [&cat[..], &ls[..], &sh[..]] {
        assert_eq!(exec_under("stdio rpath exec", gate, argv), OK, "{argv:?}");
    }
    // glibc fstat is newfstatat and openat needs rpath: cat fails under stdio alone (§6.4)
    assert_ne!(exec_under("stdio exec", gate, &cat), OK);
    // a shell that forks needs proc
    let fork = [c"/bin/sh", c"-c", c"/bin/true; echo done"];
    assert_ne!(exec_under("stdio rpath exec", gate, &fork), OK);
    assert_eq!(exec_under("stdio rpath exec proc", gate, &fork), OK);
}
