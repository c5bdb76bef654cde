//! The exec gate: let exactly the launcher's own `execve` through, then no execve ever again.
//!
//! pledge.com has to keep `exec` allowed in the filter it installs before its execve (and, for
//! dynamic programs, `rpath prot_exec`), and relies on an LD_PRELOAD'ed `sandbox.so` from
//! `$TMPDIR` to drop them again. We use seccomp user notification instead:
//!
//! 1. Before the promise filter, the launcher installs a tiny **gate filter** that returns
//!    `SECCOMP_RET_USER_NOTIF` for `execve`/`execveat` and allows everything else, with
//!    `SECCOMP_FILTER_FLAG_NEW_LISTENER`. (It also carries pledge.com's unveil extras: `setxattr`
//!    → EPERM, and `truncate` → EPERM when Landlock cannot control truncation.)
//! 2. It forks a listener (double fork, so the program never sees it as a child) that keeps the
//!    listener fd; the launcher closes its copy.
//! 3. It installs the **promise filter**, built with `exec_gate` so that `mmap(PROT_EXEC)` of
//!    files works for the dynamic loader, and with its execve verdict turned into ALLOW (the
//!    decision belongs to the gate; filters are combined by the kernel, most restrictive wins,
//!    so the gate's USER_NOTIF is what execve gets).
//! 4. The launcher calls execve. The listener receives the notification, checks it comes from the
//!    launcher's PID and is still valid (`SECCOMP_IOCTL_NOTIF_ID_VALID`), answers
//!    `SECCOMP_USER_NOTIF_FLAG_CONTINUE`, closes the listener and exits.
//! 5. From then on a USER_NOTIF filter without a listener makes the kernel fail every execve and
//!    execveat with ENOSYS (seccomp_unotify(2)).
//!
//! With `--explain` the roles change, because the kernel allows only one listener per filter
//! chain (EBUSY otherwise): the promise filter carries the listener (gate and penalty both
//! notify) and [`Explainer`] both lets the launcher's execve through and reports denials.
//!
//! CONTINUE is safe here because the caller is the single-threaded launcher blocked in its own
//! execve with arguments it prepared: nothing untrusted runs before the one allowed execve. If
//! the launcher dies before its execve, the listener sees its pidfd become readable and exits.
//!
//! # The helpers are out of the program's reach
//!
//! Whoever holds a listener decides what a notified syscall does (CONTINUE runs it), so a
//! sandboxed program that could ptrace, write the memory of, or signal the helper would be out.
//! Both helpers ([`Gate`], [`Explainer`]) are therefore:
//!
//! * forked **before** the launcher enters its Landlock domain, so they are outside it: the
//!   kernel denies the program ptrace-class access to them (`ptrace`, `/proc/PID/mem`,
//!   `process_vm_writev`, `pidfd_getfd`) whatever its uid or capabilities, and with Landlock
//!   ABI ≥ 6 every signal to them (the launcher always enters a domain, even with `-V`);
//! * not dumpable (`PR_SET_DUMPABLE 0`), which also denies that access to same-uid processes
//!   without CAP_SYS_PTRACE where Landlock is missing;
//! * under their own small seccomp filter ([`helper_filter`]) once they hold the listener:
//!   poll, read, write, the three notification ioctls, memory management and exit; anything
//!   else (socket, open, execve, ptrace, kill, ...) fails with EPERM.
//!
//! They take the listener from the launcher with `pidfd_getfd` (the launcher stays dumpable
//! for that, and names the helper as its Yama ptracer). Killing a helper (possible only without
//! Landlock scopes) fails closed: a USER_NOTIF filter without a listener answers ENOSYS.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::seccomp::bpf::{self, Asm, Target};
use super::seccomp::{notify, BpfProgram, InstallFlags, SeccompError};
use super::seccomp::{SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_USER_NOTIF};
use super::sys::{self, Forked};

/// What the launcher filter does besides the gate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LauncherFilter {
    /// execve/execveat → USER_NOTIF (the gate).
    pub gate: bool,
    /// setxattr → EPERM (pledge.com does this whenever unveil is committed).
    pub deny_setxattr: bool,
    /// truncate → EPERM (when Landlock's ABI < 3 cannot control truncation).
    pub deny_truncate: bool,
}

impl LauncherFilter {
    pub fn is_needed(&self) -> bool {
        self.gate || self.deny_setxattr || self.deny_truncate
    }

    /// The gate filter program.
    pub fn build(&self) -> Result<BpfProgram, SeccompError> {
        let mut a = Asm::new();
        let native = a.label();
        a.ld(bpf::OFF_ARCH);
        a.jeq(
            super::syscalls::AUDIT_ARCH.unwrap_or(0),
            Target::Label(native),
            Target::Next,
        );
        // Foreign arch: the promise filter kills it; nothing to decide here.
        a.ret(SECCOMP_RET_ALLOW);
        a.bind(native);
        a.ld(bpf::OFF_NR);
        let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let mut rules: Vec<(i64, u32)> = Vec::new();
        if self.gate {
            rules.push((libc::SYS_execve, SECCOMP_RET_USER_NOTIF));
            rules.push((libc::SYS_execveat, SECCOMP_RET_USER_NOTIF));
        }
        if self.deny_setxattr {
            rules.push((libc::SYS_setxattr, eperm));
        }
        if self.deny_truncate {
            rules.push((libc::SYS_truncate, eperm));
        }
        for (nr, ret) in rules {
            let next = a.label();
            a.jeq(nr as u32, Target::Next, Target::Label(next));
            a.ret(ret);
            a.bind(next);
        }
        a.ret(SECCOMP_RET_ALLOW);
        a.finish()
    }
}

/// Turn the promise filter's USER_NOTIF verdicts (its execve gate) into ALLOW, leaving the
/// decision to the outer gate filter installed before it (see the module docs: a USER_NOTIF in
/// the newest filter would win over the gate's and, having no listener, fail with ENOSYS).
pub fn defer_exec_to_gate(prog: &BpfProgram) -> Result<BpfProgram, SeccompError> {
    const BPF_RET_K: u16 = 0x06;
    let mut bytes = prog.to_bytes();
    for insn in bytes.chunks_exact_mut(8) {
        let code = u16::from_ne_bytes([insn[0], insn[1]]);
        let k = u32::from_ne_bytes([insn[4], insn[5], insn[6], insn[7]]);
        if code == BPF_RET_K && k & 0xffff_0000 == SECCOMP_RET_USER_NOTIF {
            insn[4..8].copy_from_slice(&SECCOMP_RET_ALLOW.to_ne_bytes());
        }
    }
    BpfProgram::from_bytes(&bytes)
}

/// Errors of the gate.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("exec gate")]
    Seccomp(#[from] SeccompError),
    #[error("exec gate: {what} failed (needs Linux 5.5+ with pidfd_open and seccomp user notification; promise `exec` to run without the gate)")]
    Sys {
        what: &'static str,
        source: std::io::Error,
    },
}

/// Turn the promise filter's EPERM penalty into USER_NOTIF, for the live explainer (`--explain`):
/// the listener then reports each denial and answers EPERM itself.
pub fn penalty_to_notify(prog: &BpfProgram) -> Result<BpfProgram, SeccompError> {
    const BPF_RET_K: u16 = 0x06;
    let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let mut bytes = prog.to_bytes();
    for insn in bytes.chunks_exact_mut(8) {
        let code = u16::from_ne_bytes([insn[0], insn[1]]);
        let k = u32::from_ne_bytes([insn[4], insn[5], insn[6], insn[7]]);
        if code == BPF_RET_K && k == eperm {
            insn[4..8].copy_from_slice(&SECCOMP_RET_USER_NOTIF.to_ne_bytes());
        }
    }
    BpfProgram::from_bytes(&bytes)
}

/// Install the launcher filter without a gate (`filter.gate` false; see [`Gate`] otherwise).
/// Irreversible.
pub fn install(filter: &LauncherFilter, prog: &BpfProgram) -> Result<(), GateError> {
    if filter.gate {
        return Err(GateError::Seccomp(SeccompError::Internal {
            what: "a gated launcher filter is installed with Gate::install",
        }));
    }
    super::seccomp::install(prog, InstallFlags::NONE)?;
    Ok(())
}

/// The exec gate's helper, forked by [`Gate::start`] before the launcher's Landlock domain
/// exists, then handed the listener by [`Gate::install`].
pub struct Gate {
    /// Launcher → helper: the listener's descriptor number.
    announce: OwnedFd,
    /// Helper → launcher: one byte once it holds its own copy.
    ack: OwnedFd,
}

/// Test hook (debug builds only): with `1`, the gate helper keeps serving after the launcher's
/// execve (answering EPERM) until the program exits, so that tests can aim at it from inside
/// the sandbox; normally it exits right after letting the execve through.
pub const TEST_LINGER_ENV: &str = "PLEDGE_TEST_GATE_LINGER";

impl Gate {
    /// Fork the helper. Call before enforcing Landlock (see the module docs).
    pub fn start() -> Result<Gate, GateError> {
        let linger =
            cfg!(debug_assertions) && std::env::var_os(TEST_LINGER_ENV).is_some_and(|v| v == "1");
        // pidfd_getfd needs ptrace access to the launcher, which a setuid cleared.
        sys::set_dumpable().map_err(sys_err("prctl(PR_SET_DUMPABLE)"))?;
        let pidfd = sys::pidfd_self().map_err(sys_err("pidfd_open"))?;
        let launcher = std::process::id();
        let pipe_err = |e: nix::errno::Errno| GateError::Sys {
            what: "pipe",
            source: e.into(),
        };
        let (ar, aw) = nix::unistd::pipe().map_err(pipe_err)?;
        let (kr, kw) = nix::unistd::pipe().map_err(pipe_err)?;
        let (aw_raw, kr_raw) = (aw.as_raw_fd(), kr.as_raw_fd());
        let helper = spawn_detached(|| {
            sys::close_raw(aw_raw);
            sys::close_raw(kr_raw);
            gate_serve(ar.as_fd(), kw.as_fd(), pidfd.as_fd(), launcher, linger)
        })?;
        sys::set_ptracer(helper);
        Ok(Gate {
            announce: aw,
            ack: kr,
        })
    }

    /// Install the gated launcher filter and hand its listener to the helper. Irreversible.
    pub fn install(self, filter: &LauncherFilter, prog: &BpfProgram) -> Result<(), GateError> {
        debug_assert!(filter.gate);
        let listener = super::seccomp::install(prog, InstallFlags::NEW_LISTENER)?.ok_or(
            SeccompError::Internal {
                what: "NEW_LISTENER returned no fd",
            },
        )?;
        sys::write_all(self.announce.as_fd(), &listener.as_raw_fd().to_ne_bytes())
            .map_err(sys_err("handing the listener to the gate helper"))?;
        let mut b = [0u8; 1];
        sys::read_exact(self.ack.as_fd(), &mut b)
            .map_err(sys_err("waiting for the gate helper to take the listener"))?;
        // The launcher must not hold the listener: if the helper dies, our execve then fails
        // (ENOSYS) instead of waiting forever.
        drop(listener);
        Ok(())
    }
}

/// Syscalls a helper needs once it holds its listener: wait, read its pipe and pidfd, serve the
/// listener, write its report, allocate, sleep, stop the launcher, exit.
const HELPER_SYSCALLS: &[i64] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_close,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_getpid,
    libc::SYS_pidfd_send_signal,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// The notification ioctls (`SECCOMP_IOCTL_NOTIF_RECV`, `_SEND`, `_ID_VALID`).
const HELPER_IOCTLS: [libc::Ioctl; 3] = [
    libc::SECCOMP_IOCTL_NOTIF_RECV,
    libc::SECCOMP_IOCTL_NOTIF_SEND,
    libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
];

/// A helper's own filter (see the module docs): [`HELPER_SYSCALLS`], `ioctl` with the
/// notification requests only; everything else EPERM; a foreign architecture or an x32 number
/// kills it.
pub fn helper_filter() -> Result<BpfProgram, SeccompError> {
    let mut a = Asm::new();
    let native = a.label();
    a.ld(bpf::OFF_ARCH);
    a.jeq(
        super::syscalls::AUDIT_ARCH.unwrap_or(0),
        Target::Label(native),
        Target::Next,
    );
    a.ret(super::seccomp::SECCOMP_RET_KILL_PROCESS);
    a.bind(native);
    a.ld(bpf::OFF_NR);
    let not_x32 = a.label();
    a.jge(
        super::syscalls::X32_SYSCALL_BIT,
        Target::Next,
        Target::Label(not_x32),
    );
    a.ret(super::seccomp::SECCOMP_RET_KILL_PROCESS);
    a.bind(not_x32);
    let allow = a.label();
    let deny = a.label();
    for nr in HELPER_SYSCALLS {
        a.jeq(*nr as u32, Target::Label(allow), Target::Next);
    }
    let not_ioctl = a.label();
    a.jeq(
        libc::SYS_ioctl as u32,
        Target::Next,
        Target::Label(not_ioctl),
    );
    a.ld(bpf::off_arg(1, true));
    a.jeq(0, Target::Next, Target::Label(deny));
    a.ld(bpf::off_arg(1, false));
    for req in HELPER_IOCTLS {
        a.jeq(req as u32, Target::Label(allow), Target::Next);
    }
    a.bind(not_ioctl);
    a.bind(deny);
    a.ret(SECCOMP_RET_ERRNO | libc::EPERM as u32);
    a.bind(allow);
    a.ret(SECCOMP_RET_ALLOW);
    a.finish()
}

/// First thing in a helper: not dumpable (see the module docs).
fn helper_undumpable() {
    if sys::set_undumpable().is_err() {
        sys::exit_now(1);
    }
}

/// Once the helper holds its listener: its own filter. A helper that cannot confine itself
/// exits (the launcher's execve then fails instead of running with a reachable helper).
fn helper_confine() {
    match helper_filter() {
        Ok(f) if super::seccomp::install(&f, InstallFlags::NONE).is_ok() => {}
        _ => sys::exit_now(1),
    }
}

fn sys_err(what: &'static str) -> impl Fn(std::io::Error) -> GateError {
    move |source| GateError::Sys { what, source }
}

/// Double fork: run `child` in a grandchild (which never returns from it); the launcher waits
/// for the intermediate only, so the program never has the helper as its child. Returns the
/// helper's PID (the intermediate reports it through a pipe).
fn spawn_detached(child: impl FnOnce()) -> Result<libc::pid_t, GateError> {
    let (r, w) = nix::unistd::pipe().map_err(|e| GateError::Sys {
        what: "pipe",
        source: e.into(),
    })?;
    match sys::fork().map_err(sys_err("fork"))? {
        Forked::Child => match sys::fork() {
            Ok(Forked::Child) => {
                drop(r);
                drop(w);
                child();
                sys::exit_now(0)
            }
            Ok(Forked::Parent(pid)) => {
                let ok = sys::write_all(w.as_fd(), &pid.to_ne_bytes()).is_ok();
                sys::exit_now(if ok { 0 } else { 1 })
            }
            Err(_) => sys::exit_now(1),
        },
        Forked::Parent(pid) => {
            drop(w);
            let mut b = [0u8; 4];
            let got = sys::read_exact(r.as_fd(), &mut b);
            match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) if got.is_ok() => {
                    Ok(libc::pid_t::from_ne_bytes(b))
                }
                other => Err(GateError::Sys {
                    what: "starting the listener",
                    source: std::io::Error::other(format!("{other:?}")),
                }),
            }
        }
    }
}

/// Close stdio in a helper (do not keep the task's pipes open), optionally keeping stderr.
fn close_stdio(keep: &[i32], keep_stderr: bool) {
    for fd in 0..3 {
        let kept = keep.contains(&fd) || (keep_stderr && fd == 2);
        if !kept {
            sys::close_raw(fd);
        }
    }
}

/// The gate helper: take the listener the launcher announces, answer the launcher's execve with
/// CONTINUE, then exit.
fn gate_serve(
    announce: BorrowedFd<'_>,
    ack: BorrowedFd<'_>,
    launcher_pidfd: BorrowedFd<'_>,
    launcher: u32,
    linger: bool,
) {
    helper_undumpable();
    close_stdio(
        &[
            announce.as_raw_fd(),
            ack.as_raw_fd(),
            launcher_pidfd.as_raw_fd(),
        ],
        false,
    );
    let mut b = [0u8; 4];
    if sys::read_exact(announce, &mut b).is_err() {
        // The launcher failed before installing its filter.
        sys::exit_now(0);
    }
    let listener = match sys::pidfd_getfd(launcher_pidfd, i32::from_ne_bytes(b)) {
        Ok(l) => l,
        // The launcher sees EOF instead of the acknowledgement and fails.
        Err(_) => sys::exit_now(1),
    };
    helper_confine();
    if sys::write_all(ack, &[1]).is_err() {
        sys::exit_now(1);
    }
    let listener = listener.as_fd();
    let mut launched = false;
    loop {
        let (notif_ready, launcher_gone) = match sys::poll_two(listener, launcher_pidfd) {
            Ok(r) => r,
            Err(_) => sys::exit_now(1),
        };
        if notif_ready {
            let n = match notify::receive(listener) {
                Ok(n) => n,
                // ENOENT: the launcher died between the notification and our receive.
                Err(_) => sys::exit_now(0),
            };
            if !launched && n.pid == launcher && notify::id_valid(listener, n.id) {
                let _ = notify::respond_continue(listener, n.id);
                if !linger {
                    sys::exit_now(0);
                }
                launched = true;
                continue;
            }
            // Nobody else holds this filter and execs, but refuse anything else regardless.
            let _ = notify::respond_errno(listener, n.id, libc::EPERM);
        } else if launcher_gone {
            sys::exit_now(0);
        }
    }
}

/// The supervisor's side of a task child's gate: wait for the notification of `pid`'s execve on
/// `listener` and let it continue (anything else is refused). `Ok(false)`: the child died first.
/// The caller then drops the listener, so every later execve fails with ENOSYS.
pub fn let_first_exec_through(
    listener: BorrowedFd<'_>,
    child: BorrowedFd<'_>,
    pid: u32,
) -> Result<bool, GateError> {
    loop {
        let (notif_ready, child_gone) = sys::poll_two(listener, child).map_err(sys_err("poll"))?;
        if notif_ready {
            let n = match notify::receive(listener) {
                Ok(n) => n,
                // ENOENT: the child died between the notification and our receive.
                Err(_) => return Ok(false),
            };
            if n.pid == pid && notify::id_valid(listener, n.id) {
                notify::respond_continue(listener, n.id)?;
                return Ok(true);
            }
            let _ = notify::respond_errno(listener, n.id, libc::EPERM);
        } else if child_gone {
            return Ok(false);
        }
    }
}

/// The live explainer (`--explain`), started before the promise filter. The kernel allows only
/// one listener per filter chain, so in this mode the *promise filter* carries the listener: its
/// execve gate (USER_NOTIF) and its penalty (turned into USER_NOTIF by [`penalty_to_notify`]).
/// The launcher tells the explainer which descriptor number the listener will get; the
/// explainer takes a copy with `pidfd_getfd` as soon as it exists, lets the launcher's own
/// execve continue, then reports every denial on stderr and fails it with EPERM (later execve
/// calls get ENOSYS, as with the plain gate) until no process uses the filter any more.
pub struct Explainer {
    announce: OwnedFd,
}

impl Explainer {
    /// Fork the explainer. `name` prefixes its lines. Call before enforcing Landlock (see the
    /// module docs).
    pub fn start(name: &str) -> Result<Explainer, GateError> {
        // pidfd_getfd needs ptrace access to the launcher, which a setuid cleared.
        sys::set_dumpable().map_err(sys_err("prctl(PR_SET_DUMPABLE)"))?;
        let pidfd = sys::pidfd_self().map_err(sys_err("pidfd_open"))?;
        let launcher = std::process::id();
        let (r, w) = nix::unistd::pipe().map_err(|e| GateError::Sys {
            what: "pipe",
            source: e.into(),
        })?;
        let w_raw = w.as_raw_fd();
        let helper = spawn_detached(|| {
            // Only the launcher writes: without this the explainer would never see EOF.
            sys::close_raw(w_raw);
            explain_serve(r.as_fd(), pidfd.as_fd(), launcher, name)
        })?;
        // Under Yama ptrace_scope 1 only ancestors may attach: name the helper as our tracer
        // (for pidfd_getfd; EINVAL = no Yama, nothing to do).
        sys::set_ptracer(helper);
        drop(r);
        drop(pidfd);
        Ok(Explainer { announce: w })
    }

    /// Install the promise filter `prog` (gated, penalty = USER_NOTIF) with the listener.
    /// Irreversible.
    pub fn install_promise_filter(self, prog: &BpfProgram) -> Result<(), GateError> {
        let w = self.announce.as_raw_fd();
        // Lowest free descriptor once `w` is closed: the kernel gives the listener exactly that.
        let expect = sys::lowest_free_fd(self.announce.as_fd())
            .map_err(sys_err("finding a free descriptor"))?
            .min(w);
        sys::write_all(self.announce.as_fd(), &expect.to_ne_bytes())
            .map_err(sys_err("telling the explainer"))?;
        drop(self.announce);
        let l = super::seccomp::install(prog, InstallFlags::NEW_LISTENER)?.ok_or(
            SeccompError::Internal {
                what: "NEW_LISTENER returned no fd",
            },
        )?;
        // Close-on-exec; never closed by hand (close may itself be a denied syscall now).
        let got = std::os::fd::IntoRawFd::into_raw_fd(l);
        if got != expect {
            return Err(GateError::Sys {
                what: "listener descriptor",
                source: std::io::Error::other(format!("expected fd {expect}, got {got}")),
            });
        }
        Ok(())
    }
}

fn explain_serve(
    announce: BorrowedFd<'_>,
    launcher_pidfd: BorrowedFd<'_>,
    launcher: u32,
    name: &str,
) {
    helper_undumpable();
    close_stdio(&[announce.as_raw_fd(), launcher_pidfd.as_raw_fd()], true);
    let mut b = [0u8; 4];
    if sys::read_exact(announce, &mut b).is_err() {
        // The launcher failed before installing its filter.
        sys::exit_now(0);
    }
    let want = i32::from_ne_bytes(b);
    // The filter is installed right after the announcement; wait for the descriptor to exist
    // (the launcher then blocks in execve until we answer, so it cannot vanish under us).
    let l = loop {
        match sys::pidfd_getfd(launcher_pidfd, want) {
            Ok(l) => break l,
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
                if sys::poll_readable_now(launcher_pidfd) {
                    sys::exit_now(0);
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => {
                // The launcher holds the only other copy and would wait in its execve forever:
                // stop it rather than hang.
                sys::write_stderr(&format!(
                    "{name}: --explain: cannot attach to the promise filter ({e}); stopping: run without --explain\n"
                ));
                sys::pidfd_kill(launcher_pidfd);
                sys::exit_now(1)
            }
        }
    };
    helper_confine();
    let mut launched = false;
    loop {
        match sys::poll_one(l.as_fd()) {
            Ok(ev) if ev & libc::POLLIN != 0 => {}
            Ok(_) | Err(_) => sys::exit_now(0),
        }
        let n = match notify::receive(l.as_fd()) {
            Ok(n) => n,
            Err(_) => continue,
        };
        let is_exec = i64::from(n.nr) == libc::SYS_execve || i64::from(n.nr) == libc::SYS_execveat;
        if is_exec && !launched && n.pid == launcher && notify::id_valid(l.as_fd(), n.id) {
            launched = true;
            let _ = notify::respond_continue(l.as_fd(), n.id);
            continue;
        }
        if is_exec {
            let _ = notify::respond_errno(l.as_fd(), n.id, libc::ENOSYS);
            continue;
        }
        let e = super::seccomp::explain(i64::from(n.nr), &n.args);
        sys::write_stderr(&format!(
            "{name}: violation: pid {} nr {}: {e}\n",
            n.pid, n.nr
        ));
        let _ = notify::respond_errno(l.as_fd(), n.id, libc::EPERM);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::seccomp::bpf::{run, SeccompData};

    fn data(nr: i64) -> SeccompData {
        SeccompData {
            nr: nr as i32,
            arch: crate::sandbox::syscalls::AUDIT_ARCH.unwrap(),
            instruction_pointer: 0,
            args: [0; 6],
        }
    }

    #[test]
    fn gate_filter_notifies_exec_only() {
        let f = LauncherFilter {
            gate: true,
            deny_setxattr: true,
            deny_truncate: false,
        };
        let p = f.build().unwrap();
        assert_eq!(
            run(&p, &data(libc::SYS_execve)).unwrap(),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            run(&p, &data(libc::SYS_execveat)).unwrap(),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            run(&p, &data(libc::SYS_setxattr)).unwrap(),
            SECCOMP_RET_ERRNO | libc::EPERM as u32
        );
        assert_eq!(
            run(&p, &data(libc::SYS_truncate)).unwrap(),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(run(&p, &data(libc::SYS_ioctl)).unwrap(), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn promise_filter_defers_exec() {
        use crate::sandbox::promise::PromiseSet;
        use crate::sandbox::seccomp::{build_filter, FilterOptions};
        let opts = FilterOptions {
            exec_gate: true,
            ..Default::default()
        };
        let p = build_filter(&PromiseSet::parse("stdio").unwrap(), &opts).unwrap();
        assert_eq!(
            run(&p, &data(libc::SYS_execve)).unwrap(),
            SECCOMP_RET_USER_NOTIF
        );
        let d = defer_exec_to_gate(&p).unwrap();
        assert_eq!(run(&d, &data(libc::SYS_execve)).unwrap(), SECCOMP_RET_ALLOW);
        // Everything else is unchanged.
        assert_eq!(
            run(&d, &data(libc::SYS_socket)).unwrap(),
            run(&p, &data(libc::SYS_socket)).unwrap()
        );
        assert_eq!(d.len(), p.len());
    }

    #[test]
    fn helper_filter_allows_serving_only() {
        let p = helper_filter().unwrap();
        let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
        for nr in [
            libc::SYS_read,
            libc::SYS_poll,
            libc::SYS_exit_group,
            libc::SYS_mmap,
        ] {
            assert_eq!(run(&p, &data(nr)).unwrap(), SECCOMP_RET_ALLOW, "{nr}");
        }
        for nr in [
            libc::SYS_socket,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_ptrace,
            libc::SYS_kill,
            libc::SYS_process_vm_writev,
        ] {
            assert_eq!(run(&p, &data(nr)).unwrap(), eperm, "{nr}");
        }
        let mut d = data(libc::SYS_ioctl);
        d.args[1] = libc::SECCOMP_IOCTL_NOTIF_SEND;
        assert_eq!(run(&p, &d).unwrap(), SECCOMP_RET_ALLOW);
        d.args[1] = libc::TIOCSTI;
        assert_eq!(run(&p, &d).unwrap(), eperm);
        d.args[1] = (1u64 << 32) | libc::SECCOMP_IOCTL_NOTIF_SEND;
        assert_eq!(run(&p, &d).unwrap(), eperm);
        assert_eq!(
            run(&p, &data(0x4000_0000 | libc::SYS_read)).unwrap(),
            crate::sandbox::seccomp::SECCOMP_RET_KILL_PROCESS
        );
    }

    #[test]
    fn gated_filters_are_not_installed_without_the_helper() {
        let f = LauncherFilter {
            gate: true,
            ..Default::default()
        };
        assert!(install(&f, &f.build().unwrap()).is_err());
    }
}
