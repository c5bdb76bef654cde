//! The task child, for the supervisor (the task) and the `__exec` helper (exec sessions) alike.
//!
//! The parent (root, single-threaded) prepares everything from the plan before it forks: the
//! program found with the task's PATH, the built-in sandbox's filters and execve arguments
//! ([`Sandbox`]), the supplementary groups, the capability sets. The child then only makes
//! system calls: session, oom score, nice, cwd, open-file limit, bounding set, groups, gid, uid,
//! capability sets, signals; then it tells the parent its pid, receives the Landlock ruleset
//! the parent built for it (its `/proc/self` paths need the child's pid), installs the sandbox
//! (Landlock, exec gate, promise filter) and execs the command itself. Nothing dynamically
//! linked and nothing reading the task's environment runs in between. The exec gate's listener
//! is handed to the parent, which lets exactly that execve through: a root process the task
//! cannot signal, trace or write to.
//!
//! With an external `pledge_executable` the child execs the launcher argv instead.
//!
//! Child → parent messages on a SOCK_SEQPACKET pair (close-on-exec: EOF = exec succeeded):
//! `R` + pid (ready for the ruleset), `G` + the listener (SCM_RIGHTS), `F` + a [`ChildFailure`].
//! Parent → child: `L` + the ruleset (SCM_RIGHTS) or `N` (no landlock domain).

use super::spawn::SupervisorPlan;
use super::sys;
use crate::sandbox::caps::{self, CapSet};
use crate::sandbox::prepared::{
    self, Extras, GateHandoff, InstallFailure, InstallStep, PrepareError, Program, Sandbox,
};
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::unistd::{Gid, Pid, Uid};
use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// A step of the task child before the sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupStep {
    Setsid,
    ControllingTty,
    OomScore,
    Nice,
    Chdir,
    OpenFileLimit,
    Ulimit,
    BoundingSet,
    KeepCaps,
    Groups,
    Setgid,
    Setuid,
    CapSets,
    Signals,
    Handshake,
    ExecLauncher,
}

const SETUP_STEPS: [SetupStep; 16] = [
    SetupStep::Setsid,
    SetupStep::ControllingTty,
    SetupStep::OomScore,
    SetupStep::Nice,
    SetupStep::Chdir,
    SetupStep::OpenFileLimit,
    SetupStep::Ulimit,
    SetupStep::BoundingSet,
    SetupStep::KeepCaps,
    SetupStep::Groups,
    SetupStep::Setgid,
    SetupStep::Setuid,
    SetupStep::CapSets,
    SetupStep::Signals,
    SetupStep::Handshake,
    SetupStep::ExecLauncher,
];

impl SetupStep {
    fn what(self) -> &'static str {
        match self {
            SetupStep::Setsid => "setsid",
            SetupStep::ControllingTty => "make the pty the controlling terminal",
            SetupStep::OomScore => "set oom_score_adj",
            SetupStep::Nice => "set nice",
            SetupStep::Chdir => "chdir to the task directory",
            SetupStep::OpenFileLimit => "restore the open-file limit",
            SetupStep::Ulimit => "set a ulimit",
            SetupStep::BoundingSet => "limit the capability bounding set",
            SetupStep::KeepCaps => "keep the granted capabilities across setuid",
            SetupStep::Groups => "setgroups",
            SetupStep::Setgid => "setgid",
            SetupStep::Setuid => "setuid",
            SetupStep::CapSets => "set the capability sets",
            SetupStep::Signals => "unblock signals",
            SetupStep::Handshake => "receive the landlock ruleset from the supervisor",
            SetupStep::ExecLauncher => "exec the launcher",
        }
    }

    fn exit_status(self) -> i32 {
        // pledge.com's statuses where it has the step (§1.9), 127 otherwise.
        match self {
            SetupStep::Groups | SetupStep::Setgid => 13,
            SetupStep::Setuid => 17,
            SetupStep::BoundingSet | SetupStep::KeepCaps | SetupStep::CapSets => 25,
            _ => 127,
        }
    }
}

/// The step a task child failed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildStep {
    Setup(SetupStep),
    Sandbox(InstallStep),
}

/// A task child's failure: the step and the errno, as the child reports it to its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} failed: {}", self.what(), std::io::Error::from_raw_os_error(*errno))]
pub struct ChildFailure {
    pub step: ChildStep,
    pub errno: i32,
}

impl ChildFailure {
    fn setup(step: SetupStep, errno: nix::Error) -> ChildFailure {
        ChildFailure {
            step: ChildStep::Setup(step),
            errno: errno as i32,
        }
    }

    /// How a failure of this step starts its message: the sandbox's own steps (Landlock, the
    /// filters, the program's execve) as the launcher's failures always read.
    fn prefix(&self) -> &'static str {
        match self.step {
            ChildStep::Setup(_) => "cannot start the task",
            ChildStep::Sandbox(_) => "the sandbox could not start the task",
        }
    }

    fn what(&self) -> &'static str {
        match self.step {
            ChildStep::Setup(s) => s.what(),
            ChildStep::Sandbox(s) => s.what(),
        }
    }

    /// The task's exit status for this failure.
    pub fn exit_status(&self) -> i32 {
        match self.step {
            ChildStep::Setup(s) => s.exit_status(),
            ChildStep::Sandbox(s) => s.exit_status(),
        }
    }

    /// The wire form: `F`, kind (0 setup, 1 sandbox), step code, 0, errno (native endian).
    pub fn to_bytes(self) -> [u8; 8] {
        let (kind, code) = match self.step {
            ChildStep::Setup(s) => (0, s as u8),
            ChildStep::Sandbox(s) => (1, s.code()),
        };
        let e = self.errno.to_ne_bytes();
        [b'F', kind, code, 0, e[0], e[1], e[2], e[3]]
    }

    pub fn from_bytes(b: &[u8]) -> Option<ChildFailure> {
        let &[b'F', kind, code, 0, e0, e1, e2, e3] = b else {
            return None;
        };
        let step = match kind {
            0 => ChildStep::Setup(*SETUP_STEPS.iter().find(|s| **s as u8 == code)?),
            1 => ChildStep::Sandbox(InstallStep::from_code(code)?),
            _ => return None,
        };
        Some(ChildFailure {
            step,
            errno: i32::from_ne_bytes([e0, e1, e2, e3]),
        })
    }
}

impl From<InstallFailure> for ChildFailure {
    fn from(f: InstallFailure) -> Self {
        ChildFailure {
            step: ChildStep::Sandbox(f.step),
            errno: f.errno,
        }
    }
}

/// Why a task (or exec'd command) could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("the sandbox could not start the task")]
    Prepare(#[from] PrepareError),
    #[error("cannot {step} for the task")]
    Setup {
        step: &'static str,
        source: std::io::Error,
    },
    #[error("{} (argv[0] = `{argv0}`)", failure.prefix())]
    Child {
        argv0: String,
        #[source]
        failure: ChildFailure,
    },
}

impl LaunchError {
    /// The exit status a task that failed this way reports.
    pub fn exit_status(&self) -> i32 {
        match self {
            LaunchError::Prepare(e) => e.exit_status(),
            LaunchError::Setup { .. } => 127,
            LaunchError::Child { failure, .. } => failure.exit_status(),
        }
    }
}

fn setup_err(step: &'static str) -> impl FnOnce(std::io::Error) -> LaunchError {
    move |source| LaunchError::Setup { step, source }
}

/// What the child runs, prepared by the parent.
enum Launch {
    Sandboxed(Box<Sandbox>),
    /// An external launcher: its argv and the environment.
    Exec {
        argv: Vec<CString>,
        env: Vec<CString>,
    },
}

/// Everything the child needs, built before the fork.
pub struct Prepared {
    launch: Launch,
    cwd: CString,
    groups: Vec<Gid>,
    granted: CapSet,
    supported: CapSet,
}

/// Prepares the child of `plan` (in the parent, before forking).
pub fn prepare(plan: &SupervisorPlan) -> Result<Prepared, LaunchError> {
    let cwd = CString::new(plan.cwd.as_os_str().as_bytes()).map_err(|_| LaunchError::Setup {
        step: "use the task directory",
        source: std::io::Error::from_raw_os_error(libc::EINVAL),
    })?;
    let launch = if plan.policy.launcher().is_built_in() {
        // The command is resolved as the task sees it: its PATH, relative to its directory.
        std::env::set_current_dir(&plan.cwd).map_err(setup_err("chdir to the task directory"))?;
        let var = |name: &[u8]| {
            plan.env.iter().find_map(|e| {
                let e = e.as_bytes();
                (e.len() > name.len() && e.starts_with(name) && e[name.len()] == b'=')
                    .then(|| OsStr::from_bytes(&e[name.len() + 1..]).to_owned())
            })
        };
        let name = plan.argv.first().ok_or(LaunchError::Setup {
            step: "find the command (empty argv)",
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        })?;
        let program = as_task_user(plan, || {
            Program::find(OsStr::from_bytes(name.as_bytes()), var(b"PATH").as_deref())
        })?
        .map_err(PrepareError::from)?;
        let extras = Extras {
            tmppath: var(b"TMPPATH"),
            tty: prepared::stdin_tty(),
            for_child: true,
            report_denials: plan.report_denials,
            ..Extras::default()
        };
        let sandbox = Sandbox::new(
            &plan.policy,
            program,
            plan.argv.clone(),
            plan.env.clone(),
            extras,
        )?;
        let sandbox = if plan.learn {
            sandbox.into_learning()?
        } else {
            sandbox
        };
        Launch::Sandboxed(Box::new(sandbox))
    } else {
        Launch::Exec {
            argv: plan.argv.clone(),
            env: plan.env.clone(),
        }
    };
    Ok(Prepared {
        launch,
        cwd,
        groups: plan.user.groups.iter().map(|g| Gid::from_raw(*g)).collect(),
        granted: plan.policy.caps().clone(),
        supported: caps::supported(),
    })
}

/// Runs `f` with the task user's real and effective ids and groups (the saved uid stays 0, so
/// the parent gets root back afterwards): the command is looked up with the permission checks
/// the task will get (a PATH entry the task cannot enter, such as `/root/...`, is skipped as it
/// would be by the task). The parent is single-threaded.
fn as_task_user<T>(plan: &SupervisorPlan, f: impl FnOnce() -> T) -> Result<T, LaunchError> {
    use nix::unistd::{getgroups, setgroups, setresgid, setresuid};
    let err = |e: nix::Error| LaunchError::Setup {
        step: "take the task user's identity to resolve the command",
        source: e.into(),
    };
    let root_uid = Uid::from_raw(0);
    let root_gid = Gid::from_raw(0);
    if !Uid::effective().is_root() || plan.user.uid == 0 {
        return Ok(f());
    }
    let saved_groups = getgroups().map_err(err)?;
    let groups: Vec<Gid> = plan.user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&groups).map_err(err)?;
    let gid = Gid::from_raw(plan.user.gid);
    setresgid(gid, gid, root_gid).map_err(err)?;
    let uid = Uid::from_raw(plan.user.uid);
    setresuid(uid, uid, root_uid).map_err(err)?;
    let out = f();
    setresuid(root_uid, root_uid, root_uid).map_err(err)?;
    setresgid(root_gid, root_gid, root_gid).map_err(err)?;
    setgroups(&saved_groups).map_err(err)?;
    Ok(out)
}

/// The running command: its pid and, when its supervisor reports denials, the promise
/// filter's listener (to be served for the task's whole life, see `supervisor.rs`).
pub struct Spawned {
    pub pid: Pid,
    pub listener: Option<OwnedFd>,
    /// `exec` is promised: every execve the listener sees may continue.
    pub exec_promised: bool,
}

/// Forks the task child of `plan` (with `ctty`, fd 0, a pty slave, becomes its controlling
/// terminal) and sees it through to its execve.
pub fn spawn(plan: &SupervisorPlan, prep: &Prepared, ctty: bool) -> Result<Spawned, LaunchError> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let (parent, child_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| LaunchError::Setup {
        step: "create the task's socket pair",
        source: e.into(),
    })?;
    let child = match sys::fork_single_threaded().map_err(setup_err("fork the task"))? {
        nix::unistd::ForkResult::Child => {
            drop(parent);
            let f = task_child(plan, prep, ctty, child_end.as_fd());
            let _ = nix::unistd::write(&child_end, &f.to_bytes());
            sys::exit_now(127);
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop(child_end);
    let exec_promised = match &prep.launch {
        Launch::Sandboxed(s) => s.exec_promised(),
        Launch::Exec { .. } => true,
    };
    match see_through(prep, &parent, child) {
        Ok(listener) => Ok(Spawned {
            pid: child,
            listener,
            exec_promised,
        }),
        Err(e) => {
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(child, None);
            Err(e)
        }
    }
}

/// The parent's half of the handshake (see the module docs). Returns the reporting promise
/// filter's listener when there is one.
fn see_through(
    prep: &Prepared,
    sock: &OwnedFd,
    child: Pid,
) -> Result<Option<OwnedFd>, LaunchError> {
    let argv0 = |plan_argv0: &str| plan_argv0.to_string();
    let mut buf = [0u8; 16];
    let mut kept: Option<OwnedFd> = None;
    loop {
        let (n, fd) = crate::sandbox::prepared::recv_fd(sock.as_fd(), &mut buf)
            .map_err(setup_err("hear from the task child"))?;
        let msg = &buf[..n];
        match msg.first() {
            None => return Ok(kept),
            Some(&prepared::DENIALS_TAG) if msg.len() == 5 => {
                let n = i32::from_ne_bytes([msg[1], msg[2], msg[3], msg[4]]);
                let pidfd = sys::pidfd_open(child.as_raw())
                    .map_err(setup_err("open a pidfd for the task child"))?;
                let Some(listener) = take_listener(sock, &pidfd, n)? else {
                    // The child failed (its message is next) or died (EOF).
                    continue;
                };
                crate::sandbox::prepared::let_first_exec_through(
                    listener.as_fd(),
                    pidfd.as_fd(),
                    child.as_raw() as u32,
                )
                .map_err(|e| LaunchError::Setup {
                    step: "answer the task's first execve",
                    source: std::io::Error::other(e),
                })?;
                kept = Some(listener);
            }
            Some(b'R') if msg.len() == 5 => {
                let Launch::Sandboxed(sandbox) = &prep.launch else {
                    return Err(setup_err("hand over the ruleset")(
                        std::io::Error::from_raw_os_error(libc::EPROTO),
                    ));
                };
                let pid = i32::from_ne_bytes([msg[1], msg[2], msg[3], msg[4]]);
                // Opened as root: the child's /proc/PID entries are not accessible to the task
                // user (a process that changed uid is not dumpable). The rules only ever take
                // access away; the task's own permission checks still apply.
                let ruleset = sandbox.ruleset(Some(pid))?;
                if let Some(w) = &ruleset.warning {
                    eprint!("nomad-pledge-driver: {w}");
                }
                let sent = match &ruleset.fd {
                    Some(fd) => crate::sandbox::prepared::send_fd(sock.as_fd(), b"L", fd.as_fd()),
                    None => nix::unistd::write(sock, b"N").map(drop).map_err(Into::into),
                };
                sent.map_err(setup_err("hand the ruleset to the task child"))?;
            }
            Some(&prepared::GATE_TAG) => {
                let listener = fd.ok_or_else(|| {
                    setup_err("receive the exec gate")(std::io::Error::from_raw_os_error(
                        libc::EPROTO,
                    ))
                })?;
                let pidfd = sys::pidfd_open(child.as_raw())
                    .map_err(setup_err("open a pidfd for the task child"))?;
                crate::sandbox::prepared::let_first_exec_through(
                    listener.as_fd(),
                    pidfd.as_fd(),
                    child.as_raw() as u32,
                )
                .map_err(|e| LaunchError::Setup {
                    step: "answer the exec gate",
                    source: std::io::Error::other(e),
                })?;
                // Dropping the listener here: every later execve fails with ENOSYS.
            }
            Some(&prepared::LEARN_TAG) if msg.len() == 5 => {
                let Launch::Sandboxed(sandbox) = &prep.launch else {
                    return Err(setup_err("take the learn listener")(
                        std::io::Error::from_raw_os_error(libc::EPROTO),
                    ));
                };
                let listener =
                    prepared::take_named_listener(sock.as_fd(), child.as_raw(), &msg[1..5])
                        .map_err(setup_err("take the learn filter's listener"))?;
                super::learn_task::start(listener, child, sandbox)
                    .map_err(setup_err("start the learn recorder"))?;
            }
            Some(b'F') => {
                let failure = ChildFailure::from_bytes(msg).ok_or_else(|| {
                    setup_err("read the task child's failure")(std::io::Error::from_raw_os_error(
                        libc::EPROTO,
                    ))
                })?;
                let _ = nix::sys::wait::waitpid(child, None);
                let name = match &prep.launch {
                    Launch::Sandboxed(s) => s.program().path.display().to_string(),
                    Launch::Exec { argv, .. } => argv
                        .first()
                        .map(|a| a.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                };
                return Err(LaunchError::Child {
                    argv0: argv0(&name),
                    failure,
                });
            }
            Some(_) => {
                return Err(setup_err("hear from the task child")(
                    std::io::Error::from_raw_os_error(libc::EPROTO),
                ))
            }
        }
    }
}

/// A copy of descriptor `n` of the child, once it exists and is a seccomp listener (the child
/// installs its reporting promise filter right after announcing the number, then waits in its
/// execve). `None`: a message from the child (its failure) or EOF came first.
fn take_listener(sock: &OwnedFd, pidfd: &OwnedFd, n: i32) -> Result<Option<OwnedFd>, LaunchError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        match crate::sandbox::prepared::pidfd_getfd(pidfd.as_fd(), n) {
            Ok(fd) if sys::is_seccomp_listener(&fd) => return Ok(Some(fd)),
            // Another descriptor (the filter is not installed yet): look again.
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => {}
            Err(e) => return Err(setup_err("take the promise filter's listener")(e)),
        }
        let mut fds = [
            PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        // Not there yet: the child is between its announcement and the filter's installation
        // (tens of microseconds). Look for a message or its exit, then retry shortly; a 1 ms poll
        // timeout here cost every task start most of a millisecond.
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_)
                if fds
                    .iter()
                    .any(|f| f.revents().is_some_and(|r| !r.is_empty())) =>
            {
                return Ok(None)
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {
                std::thread::sleep(std::time::Duration::from_micros(20))
            }
            Err(e) => return Err(setup_err("wait for the task child")(e.into())),
        }
    }
}

/// The task child. Only system calls on memory prepared before the fork. Returns only on
/// failure.
fn task_child(
    plan: &SupervisorPlan,
    prep: &Prepared,
    ctty: bool,
    sock: BorrowedFd<'_>,
) -> ChildFailure {
    match setup(plan, prep, ctty) {
        Ok(()) => {}
        Err(f) => return f,
    }
    match &prep.launch {
        Launch::Exec { argv, env } => match nix::unistd::execve(&argv[0], argv, env) {
            Ok(never) => match never {},
            Err(e) => ChildFailure::setup(SetupStep::ExecLauncher, e),
        },
        Launch::Sandboxed(sandbox) => {
            let pid = nix::unistd::getpid().as_raw().to_ne_bytes();
            let ready = [b'R', pid[0], pid[1], pid[2], pid[3]];
            if let Err(e) = nix::unistd::write(sock, &ready) {
                return ChildFailure::setup(SetupStep::Handshake, e);
            }
            let mut buf = [0u8; 4];
            let ruleset = match crate::sandbox::prepared::recv_fd(sock, &mut buf) {
                Ok((1, fd)) if buf[0] == b'L' && fd.is_some() => fd,
                Ok((1, None)) if buf[0] == b'N' => None,
                // The supervisor could not build the ruleset (it reports why) or is gone.
                Ok(_) => sys::exit_now(127),
                Err(e) => {
                    return ChildFailure {
                        step: ChildStep::Setup(SetupStep::Handshake),
                        errno: e.raw_os_error().unwrap_or(libc::EIO),
                    }
                }
            };
            let fd = ruleset.as_ref().map(|f| f.as_fd());
            sandbox.install(fd, GateHandoff::Send(sock)).into()
        }
    }
}

fn setup(plan: &SupervisorPlan, prep: &Prepared, ctty: bool) -> Result<(), ChildFailure> {
    use SetupStep as S;
    let fail = |s| move |e| ChildFailure::setup(s, e);
    let io_fail = |s| {
        move |e: std::io::Error| ChildFailure {
            step: ChildStep::Setup(s),
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        }
    };
    nix::unistd::setsid().map_err(fail(S::Setsid))?;
    if ctty {
        sys::set_controlling_tty(0).map_err(io_fail(S::ControllingTty))?;
    }
    super::rlimit::set_oom_score_adj(plan.limits.oom_score_adj).map_err(fail(S::OomScore))?;
    sys::set_nice(plan.nice).map_err(io_fail(S::Nice))?;
    nix::unistd::chdir(prep.cwd.as_c_str()).map_err(fail(S::Chdir))?;
    if let Some(limit) = plan.nofile {
        super::limits::restore_nofile(limit).map_err(fail(S::OpenFileLimit))?;
    }
    for u in &plan.limits.ulimits {
        u.apply().map_err(fail(S::Ulimit))?;
    }
    let caps_errno = |s| {
        move |_: caps::CapsError| ChildFailure {
            step: ChildStep::Setup(s),
            errno: nix::errno::Errno::last() as i32,
        }
    };
    // Identity: exactly the target's groups, then gid, uid; the capabilities are those granted
    // and no others (bounding set too), for root and non-root tasks alike.
    caps::limit_bounding(&prep.granted, &prep.supported).map_err(caps_errno(S::BoundingSet))?;
    let root = plan.user.uid == 0;
    if !root {
        caps::keep_across_setuid(&prep.granted).map_err(caps_errno(S::KeepCaps))?;
    }
    nix::unistd::setgroups(&prep.groups).map_err(fail(S::Groups))?;
    nix::unistd::setgid(Gid::from_raw(plan.user.gid)).map_err(fail(S::Setgid))?;
    nix::unistd::setuid(Uid::from_raw(plan.user.uid)).map_err(fail(S::Setuid))?;
    caps::restrict_to(&prep.granted, root).map_err(caps_errno(S::CapSets))?;
    sys::default_signal_dispositions();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(fail(S::Signals))?;
    Ok(())
}
