//! The one install path of the built-in sandbox, shared by the `pledge` command and the task
//! child of the driver's supervisor.
//!
//! [`Sandbox::new`] turns a [`Policy`] and a resolved [`Program`] into everything the kernel
//! will be given: the execve arguments as C strings, the exec gate and promise filters as BPF
//! programs, and the unveil rules. [`Sandbox::ruleset`] opens the rule paths and builds the
//! Landlock ruleset (as a descriptor). All of that may allocate and fail with a message; it runs
//! in the `pledge` process before anything irreversible, or in the single-threaded supervisor.
//! [`Sandbox::install`] is what runs last, in the process that becomes the program: it only
//! makes system calls on memory prepared before (no allocation, no environment, nothing
//! dynamically linked), so a forked task child can call it between fork and execve:
//! Landlock `restrict_self`, the open-file limit, the exec gate, the process limit, the promise
//! filter, `execve`.

use std::ffi::{c_char, CString, OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::exe::{self, ExeError, Kind};
use super::gate::{self, LauncherFilter};
use super::procmem::{self, ProcMemError};
use super::promise::{Promise, PromiseSet};
use super::seccomp::{self, FilterOptions, Penalty, SeccompError};
use super::sys;
use super::unveil::{self, NetPolicy, Origin, PortRange, ProgramFacts, UnveilError, UnveilRule};
use crate::policy::{Launcher, Policy};

pub use super::gate::let_first_exec_through;
pub use super::sys::{pidfd_getfd, recv_fd, send_fd};

/// The terminal on stdin, if any (unveiled for `tty`).
pub fn stdin_tty() -> Option<PathBuf> {
    sys::stdin_tty_name()
}

/// The program to run, found and classified before anything is installed.
#[derive(Clone, Debug)]
pub struct Program {
    pub path: PathBuf,
    /// The `#!` interpreter of a script.
    pub interpreter: Option<PathBuf>,
    /// The program (or its interpreter) is a dynamically linked ELF.
    pub dynamic: bool,
}

impl Program {
    /// Looks `name` up like pledge.com (a name with `/` as is, else each `path_var` entry).
    pub fn find(name: &OsStr, path_var: Option<&OsStr>) -> Result<Program, ExeError> {
        Ok(Program::classify(exe::find_program(name, path_var)?))
    }

    pub fn classify(path: PathBuf) -> Program {
        let (interpreter, dynamic) = match exe::classify(&path) {
            Kind::DynamicElf => (None, true),
            Kind::Script { interpreter } => {
                let d = exe::classify(&interpreter) == Kind::DynamicElf;
                (Some(interpreter), d)
            }
            _ => (None, false),
        };
        Program {
            path,
            interpreter,
            dynamic,
        }
    }

    fn facts(&self, tmppath: Option<OsString>) -> ProgramFacts {
        ProgramFacts {
            path: self.path.clone(),
            interpreter: self.interpreter.clone(),
            dynamic: self.dynamic,
            tmppath,
        }
    }
}

/// What the sandbox needs beyond the [`Policy`]: the `pledge` command's extra switches, and
/// what the process environment says (`TMPPATH`, the terminal on stdin).
#[derive(Clone, Debug)]
pub struct Extras {
    pub penalty: Penalty,
    /// `--tcp-bind` (or the policy's allocated ports when `None`).
    pub tcp_bind: Option<Vec<PortRange>>,
    /// `--tcp-connect` (or the policy's `connect_ports` when `None`).
    pub tcp_connect: Option<Vec<PortRange>>,
    /// The sandbox is installed by a child forked after it is built (the task child): the
    /// filter's "self" PID is put in by the child itself ([`seccomp::install_as_self`]).
    pub for_child: bool,
    /// `-O`: RLIMIT_NOFILE, set after Landlock (which needs descriptors).
    pub nofile: Option<u64>,
    /// `-P`: RLIMIT_NPROC, set after the exec gate (which forks its helper in `pledge`).
    pub nproc: Option<u64>,
    /// `TMPPATH` (unveiled for `tmppath`).
    pub tmppath: Option<OsString>,
    /// The terminal on stdin (unveiled for `tty`).
    pub tty: Option<PathBuf>,
    /// Seccomp denials are reported (task child only): the promise filter's penalty and its
    /// execve gate notify, and the supervisor holds that listener for the task's life
    /// ([`Sandbox::install`] announces it with [`DENIALS_TAG`]).
    pub report_denials: bool,
}

impl Default for Extras {
    fn default() -> Self {
        Extras {
            penalty: Penalty::Errno(libc::EPERM),
            tcp_bind: None,
            tcp_connect: None,
            for_child: false,
            nofile: None,
            nproc: None,
            tmppath: None,
            tty: None,
            report_denials: false,
        }
    }
}

/// Why the sandbox cannot be prepared (nothing irreversible has happened yet).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Program(#[from] ExeError),
    #[error("the {what} contains a NUL byte: remove it")]
    Nul { what: &'static str },
    #[error("--tcp-bind/--tcp-connect are landlock rules: drop -V to use them")]
    PortsWithoutUnveil,
    #[error("pledge")]
    Filter(#[from] SeccompError),
    #[error(transparent)]
    Unveil(#[from] UnveilError),
    #[error(transparent)]
    ProcMem(#[from] ProcMemError),
}

impl PrepareError {
    /// pledge.com's exit status for the step that failed (§1.9).
    pub fn exit_status(&self) -> i32 {
        match self {
            PrepareError::Program(_) => exe::NOT_FOUND_EXIT_STATUS,
            PrepareError::Nul { .. } => status::EXEC,
            PrepareError::PortsWithoutUnveil => unveil::UNVEIL_EXIT_STATUS,
            PrepareError::Filter(_) => status::PLEDGE,
            PrepareError::Unveil(e) => e.exit_status(),
            PrepareError::ProcMem(_) => unveil::UNVEIL_EXIT_STATUS,
        }
    }
}

/// pledge.com's exit statuses (§1.9) for the install steps.
pub mod status {
    pub const RLIMIT: i32 = 1;
    pub const PLEDGE: i32 = 19;
    pub const EXEC: i32 = 127;
}

/// One irreversible step of [`Sandbox::install`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallStep {
    Landlock,
    OpenFileLimit,
    ExecGate,
    HandOverListener,
    ProcessLimit,
    PromiseFilter,
    Exec,
}

impl InstallStep {
    const ALL: [InstallStep; 7] = [
        InstallStep::Landlock,
        InstallStep::OpenFileLimit,
        InstallStep::ExecGate,
        InstallStep::HandOverListener,
        InstallStep::ProcessLimit,
        InstallStep::PromiseFilter,
        InstallStep::Exec,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<InstallStep> {
        InstallStep::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn exit_status(self) -> i32 {
        match self {
            InstallStep::Landlock => unveil::UNVEIL_EXIT_STATUS,
            InstallStep::OpenFileLimit | InstallStep::ProcessLimit => status::RLIMIT,
            InstallStep::ExecGate | InstallStep::HandOverListener | InstallStep::PromiseFilter => {
                status::PLEDGE
            }
            InstallStep::Exec => status::EXEC,
        }
    }

    pub fn what(self) -> &'static str {
        match self {
            InstallStep::Landlock => "entering the landlock domain (unveil)",
            InstallStep::OpenFileLimit => "setting RLIMIT_NOFILE",
            InstallStep::ExecGate => "installing the exec gate filter",
            InstallStep::HandOverListener => "handing the exec gate's listener to the supervisor",
            InstallStep::ProcessLimit => "setting RLIMIT_NPROC",
            InstallStep::PromiseFilter => "installing the promise filter",
            InstallStep::Exec => "exec",
        }
    }
}

/// A failed install step and its errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} failed: {}", step.what(), exe::errno_text(errno))]
pub struct InstallFailure {
    pub step: InstallStep,
    pub errno: i32,
}

impl InstallFailure {
    fn io(step: InstallStep, e: &std::io::Error) -> InstallFailure {
        InstallFailure {
            step,
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        }
    }

    fn seccomp(step: InstallStep, e: &SeccompError) -> InstallFailure {
        let errno = match e {
            SeccompError::NoNewPrivs { source } | SeccompError::Install { source, .. } => {
                source.raw_os_error().unwrap_or(libc::EIO)
            }
            _ => libc::EINVAL,
        };
        InstallFailure { step, errno }
    }
}

/// Who answers the exec gate's notification for the program's own execve.
#[derive(Clone, Copy, Debug)]
pub enum GateHandoff<'a> {
    /// A detached helper forked here (the `pledge` command: there is nobody else).
    Detached,
    /// The listener is sent (SCM_RIGHTS) on this socket to the supervisor, which answers it:
    /// a root process outside the sandbox that the task cannot signal, trace or write to.
    Send(BorrowedFd<'a>),
}

/// The seccomp side: the filters for a promise set.
pub(super) struct FilterPlan {
    /// What the user promised.
    pub user: PromiseSet,
    /// What the promise filter grants (user + rpath for dynamic programs).
    pub effective: PromiseSet,
    pub gate: bool,
    pub penalty: Penalty,
}

impl FilterPlan {
    pub fn new(user: PromiseSet, dynamic: bool, penalty: Penalty) -> Self {
        let mut effective = user;
        if dynamic {
            // The dynamic loader opens the libraries after execve (pledge v1.9 adds it too).
            effective.insert(Promise::Rpath);
        }
        FilterPlan {
            user,
            effective,
            gate: !user.contains(Promise::Exec),
            penalty,
        }
    }

    /// (launcher filter, its program, promise filter).
    pub fn build(
        &self,
        unveiled: bool,
        abi: i32,
        self_pid: Option<i32>,
    ) -> Result<(LauncherFilter, seccomp::BpfProgram, seccomp::BpfProgram), SeccompError> {
        // The promise filter's execve verdict is handed to the launcher filter: with `exec`
        // promised there is no gate and execve is allowed for good, and the programs it starts
        // can still be loaded without granting `prot_exec`.
        let (launcher, f0, f1) = self.filters(self.gate, unveiled, abi, self_pid)?;
        Ok((launcher, f0, gate::defer_exec_to_gate(&f1)?))
    }

    /// The launcher filter (with the gate or not), its program, and the promise filter, always
    /// built "gated" (execve → USER_NOTIF, file-backed mmap(PROT_EXEC) allowed for the dynamic
    /// loader); the callers decide where its execve verdict and its penalty go.
    fn filters(
        &self,
        gate: bool,
        unveiled: bool,
        abi: i32,
        self_pid: Option<i32>,
    ) -> Result<(LauncherFilter, seccomp::BpfProgram, seccomp::BpfProgram), SeccompError> {
        let launcher = LauncherFilter {
            gate,
            deny_setxattr: unveiled,
            deny_truncate: unveiled && abi < 3,
        };
        let f0 = launcher.build()?;
        let opts = FilterOptions {
            penalty: self.penalty,
            exec_gate: true,
            self_pid,
            unveiled,
        };
        let f1 = seccomp::build_filter(&self.effective.without(Promise::Exec), &opts)?;
        Ok((launcher, f0, f1))
    }

    /// The filters of a task whose supervisor reports denials: no gate in the launcher filter
    /// (the kernel allows one listener per filter chain), and the promise filter's execve (even
    /// with `exec` promised: the supervisor must take the listener before the first execve
    /// completes, and then lets every execve of an `exec` task continue) and its penalty notify.
    /// Allowed syscalls take the same path as without reporting: only the return value of the
    /// deny branches changes.
    pub fn build_reporting(
        &self,
        unveiled: bool,
        abi: i32,
        self_pid: Option<i32>,
    ) -> Result<(LauncherFilter, seccomp::BpfProgram, seccomp::BpfProgram), SeccompError> {
        let (launcher, f0, f1) = self.filters(false, unveiled, abi, self_pid)?;
        Ok((launcher, f0, gate::penalty_to_notify(&f1)?))
    }

    /// The promise filter for the live explainer: gated execve and the penalty both notify.
    pub fn build_explaining(&self, unveiled: bool) -> Result<seccomp::BpfProgram, SeccompError> {
        let opts = FilterOptions {
            penalty: self.penalty,
            exec_gate: true,
            self_pid: None,
            unveiled,
        };
        let f1 = seccomp::build_filter(&self.effective, &opts)?;
        gate::penalty_to_notify(&f1)
    }

    pub fn describe(&self) -> String {
        let names = |p: PromiseSet| p.iter().map(|x| x.name()).collect::<Vec<_>>().join(" ");
        let mut s = format!("promises: {}\n", names(self.user));
        if self.effective != self.user {
            s += &format!(
                "promise filter grants: {} (rpath added for the dynamic loader)\n",
                names(self.effective)
            );
        }
        s += &format!("penalty: {:?}\n", self.penalty);
        if self.gate {
            s += "exec: only the launcher's own execve (exec gate); later execve fails with ENOSYS; \
                  file-backed mmap(PROT_EXEC) allowed for the loader\n";
        } else {
            s += "exec: allowed (promise exec); file-backed mmap(PROT_EXEC) allowed for the loader\n";
        }
        if !self.user.contains(Promise::ProtExec) {
            s += "memory: PR_SET_MDWE refuse-exec-gain where the kernel has it (Linux 6.3+); \
                  no unveil may make /proc/PID/mem writable\n";
        }
        s
    }
}

/// Everything execve needs, as C strings and NULL-terminated pointer arrays.
struct ExecArgs {
    path: CString,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    envp_ptrs: Vec<*const c_char>,
}

impl ExecArgs {
    fn new(path: &Path, argv: Vec<CString>, envp: Vec<CString>) -> Result<Self, PrepareError> {
        let path = CString::new(path.as_os_str().as_bytes()).map_err(|_| PrepareError::Nul {
            what: "program path",
        })?;
        let mut argv_ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const c_char> = envp.iter().map(|a| a.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());
        Ok(ExecArgs {
            path,
            _argv: argv,
            _envp: envp,
            argv_ptrs,
            envp_ptrs,
        })
    }
}

/// C strings for execve from OS strings (the `pledge` command's argv and environment).
pub fn c_strings(v: &[OsString], what: &'static str) -> Result<Vec<CString>, PrepareError> {
    v.iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| PrepareError::Nul { what }))
        .collect()
}

/// The landlock ruleset, built (or knowingly skipped) before the install.
pub struct Ruleset {
    /// `None`: no landlock domain (`-V`, or landlock missing and that is allowed).
    pub fd: Option<OwnedFd>,
    /// Degraded security is never silent: what to print when the rules are not enforced.
    pub warning: Option<String>,
}

/// A sandbox ready to be installed.
pub struct Sandbox {
    pub(super) program: Program,
    pub(super) fplan: FilterPlan,
    launcher: LauncherFilter,
    f0: seccomp::BpfProgram,
    f1: seccomp::BpfProgram,
    exec: ExecArgs,
    /// Implicit and policy rules (`None`: `-V`).
    rules: Option<Vec<(UnveilRule, Origin)>>,
    net: NetPolicy,
    abi: Result<i32, String>,
    best_effort: bool,
    nofile: Option<u64>,
    nproc: Option<u64>,
    /// Landlock filesystem rules will be enforced (the filter limits metadata calls then).
    unveiled: bool,
    for_child: bool,
    /// The promise filter notifies its denials to the supervisor ([`Extras::report_denials`]).
    reporting: bool,
    /// Learn mode: the learn filter (see `learn`), installed instead of everything else.
    learn: Option<seccomp::BpfProgram>,
}

impl Sandbox {
    /// Builds the filters, the rule list and the execve arguments (`argv` = the program's,
    /// argv[0] first; `envp` = exactly what the program gets).
    pub fn new(
        policy: &Policy,
        program: Program,
        argv: Vec<CString>,
        envp: Vec<CString>,
        extras: Extras,
    ) -> Result<Sandbox, PrepareError> {
        let user = policy.promises();
        let abi = unveil::kernel_abi();
        let abi_n = *abi.as_ref().unwrap_or(&0);
        let tcp_bind = extras.tcp_bind.or(policy.tcp_bind().map(<[_]>::to_vec));
        let tcp_connect = extras
            .tcp_connect
            .or(policy.tcp_connect().map(<[_]>::to_vec));
        if policy.no_unveil() && (tcp_bind.is_some() || tcp_connect.is_some()) {
            return Err(PrepareError::PortsWithoutUnveil);
        }
        let rules = if policy.no_unveil() {
            None
        } else {
            let facts = program.facts(extras.tmppath.clone());
            let mut rules = unveil::implicit_rules(user, &facts, extras.tty.clone());
            rules.extend(
                policy
                    .operator_unveil()
                    .iter()
                    .map(|r| (r.clone(), Origin::Operator)),
            );
            rules.extend(policy.unveil().iter().map(|r| (r.clone(), Origin::User)));
            // No unveil may make /proc/PID/mem writable without prot_exec (exit 20).
            procmem::check(&rules, user)?;
            Some(rules)
        };
        let net = NetPolicy {
            deny_connect: abi_n >= 4
                && user.contains(Promise::Anet)
                && !user.contains(Promise::Inet)
                && !user.contains(Promise::Dns),
            bind_ports: tcp_bind,
            connect_ports: tcp_connect,
        };
        let landlock_active = rules.is_some() && abi_n > 0;
        let fplan = FilterPlan::new(user, program.dynamic, extras.penalty);
        let self_pid = extras.for_child.then_some(seccomp::SELF_PID_PLACEHOLDER);
        let reporting = extras.report_denials && extras.for_child;
        let (launcher, f0, f1) = if reporting {
            fplan.build_reporting(landlock_active, abi_n, self_pid)?
        } else {
            fplan.build(landlock_active, abi_n, self_pid)?
        };
        let exec = ExecArgs::new(&program.path, argv, envp)?;
        let best_effort = matches!(
            policy.launcher(),
            Launcher::BuiltIn {
                unveil_best_effort: true
            }
        );
        Ok(Sandbox {
            program,
            fplan,
            launcher,
            f0,
            f1,
            exec,
            rules,
            net,
            abi,
            best_effort,
            nofile: extras.nofile,
            nproc: extras.nproc,
            unveiled: landlock_active,
            for_child: extras.for_child,
            reporting,
            learn: None,
        })
    }

    /// The same sandbox in learn mode (`learn`): nothing denied, every would-be denial and
    /// every path access notified to the recorder the listener is sent to.
    pub fn into_learning(mut self) -> Result<Sandbox, PrepareError> {
        let self_pid = self.for_child.then_some(seccomp::SELF_PID_PLACEHOLDER);
        self.learn = Some(super::learn::build_filter(self_pid)?);
        Ok(self)
    }

    /// What learn mode's summary leaves out: the program's facts and the operator's rules.
    pub fn learn_context(&self, tmppath: Option<OsString>) -> super::learn::summary::Context {
        super::learn::summary::Context {
            facts: self.program.facts(tmppath),
            tty: sys::stdin_tty_name(),
            named_dirs: Vec::new(),
            operator: self
                .rules
                .iter()
                .flatten()
                .filter(|(_, o)| matches!(o, Origin::Operator))
                .map(|(r, _)| r.clone())
                .collect(),
        }
    }

    /// Learn mode's install: the open-file and process limits, the learn filter with its
    /// listener sent on `sock` (tag [`LEARN_TAG`]), execve. No Landlock domain, no kernel
    /// W^X. Returns only on failure; allocates nothing.
    fn install_learning(&self, prog: &seccomp::BpfProgram, sock: BorrowedFd<'_>) -> InstallFailure {
        use InstallStep as S;
        if let Some(n) = self.nofile {
            if let Err(e) = sys::set_rlimit(libc::RLIMIT_NOFILE, n) {
                return InstallFailure::io(S::OpenFileLimit, &e);
            }
        }
        if let Some(n) = self.nproc {
            if let Err(e) = sys::set_rlimit(libc::RLIMIT_NPROC, n) {
                return InstallFailure::io(S::ProcessLimit, &e);
            }
        }
        let flags = seccomp::InstallFlags::NEW_LISTENER;
        let installed = if self.for_child {
            seccomp::install_as_self(prog, flags, nix::unistd::getpid().as_raw())
        } else {
            seccomp::install(prog, flags)
        };
        let listener = match installed {
            Ok(Some(l)) => l,
            Ok(None) => {
                return InstallFailure {
                    step: S::PromiseFilter,
                    errno: libc::EINVAL,
                }
            }
            Err(e) => return InstallFailure::seccomp(S::PromiseFilter, &e),
        };
        // sendmsg is itself a call the learn filter notifies, so the recorder takes the
        // listener with pidfd_getfd: we say which descriptor it is (write and read are
        // `stdio`) and wait until it holds its copy.
        let fd = std::os::fd::AsRawFd::as_raw_fd(&listener).to_ne_bytes();
        let msg = [LEARN_TAG, fd[0], fd[1], fd[2], fd[3]];
        if let Err(e) = sys::write_all(sock, &msg) {
            return InstallFailure::io(S::HandOverListener, &e);
        }
        let mut ack = [0u8; 1];
        if let Err(e) = sys::read_exact(sock, &mut ack) {
            return InstallFailure::io(S::HandOverListener, &e);
        }
        drop(listener);
        let err = sys::execve(&self.exec.path, &self.exec.argv_ptrs, &self.exec.envp_ptrs);
        InstallFailure::io(S::Exec, &err)
    }

    /// Opens the rule paths (as `proc_self` sees `/proc/self`: the task child, when its
    /// supervisor builds the ruleset; `None`: this process) and builds the Landlock ruleset.
    pub fn ruleset(&self, proc_self: Option<i32>) -> Result<Ruleset, PrepareError> {
        if self.learn.is_some() {
            // Learn mode has no Landlock domain (see `learn`).
            return Ok(Ruleset {
                fd: None,
                warning: None,
            });
        }
        let plan = match &self.rules {
            // No filesystem rules, but still a Landlock domain: scopes and ptrace confinement.
            None => unveil::domain_only(self.abi.clone()),
            Some(rules) => {
                unveil::plan_for(rules.clone(), self.net.clone(), self.abi.clone(), proc_self)?
            }
        };
        let fd = plan.ruleset(self.best_effort)?;
        let warning = (fd.is_none() && plan.has_fs_rules()).then(|| {
            let what = if plan.has_user_rules() {
                "the unveil rules are NOT enforced (--unveil-best-effort)"
            } else {
                "the filesystem is not restricted"
            };
            format!(
                "warning: landlock unavailable ({}): {what}\n",
                plan.unavailable.as_deref().unwrap_or("unknown")
            )
        });
        Ok(Ruleset { fd, warning })
    }

    /// The plan as `--explain` prints it.
    pub fn describe(&self, proc_self: Option<i32>) -> String {
        let mut s = self.fplan.describe();
        match &self.rules {
            None => s += &unveil::domain_only(self.abi.clone()).describe(),
            Some(rules) => {
                match unveil::plan_for(rules.clone(), self.net.clone(), self.abi.clone(), proc_self)
                {
                    Ok(p) => s += &p.describe(),
                    Err(e) => s += &format!("unveil: {}\n", crate::errors::Chain(&e)),
                }
            }
        }
        s
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    /// `exec` is promised: every execve may run (the reporting supervisor continues them all).
    pub fn exec_promised(&self) -> bool {
        self.fplan.user.contains(Promise::Exec)
    }

    /// A hint for a failed install, for messages.
    pub fn hint(&self, f: &InstallFailure) -> &'static str {
        match (f.step, f.errno) {
            (InstallStep::Exec, libc::ENOSYS) if self.launcher.gate => {
                " (the exec gate's listener is gone)"
            }
            (InstallStep::Exec, libc::EACCES) if self.rules.is_some() => {
                " (unveil the program and its interpreter with x)"
            }
            _ => "",
        }
    }

    /// Installs the sandbox on the calling process and execs the program. Returns only on
    /// failure. Irreversible. Makes only system calls on memory prepared before (callable in a
    /// forked child of a single-threaded process).
    pub fn install(
        &self,
        ruleset: Option<BorrowedFd<'_>>,
        gate: GateHandoff<'_>,
    ) -> InstallFailure {
        if let (Some(prog), GateHandoff::Send(sock)) = (&self.learn, gate) {
            return self.install_learning(prog, sock);
        }
        match self.install_filters(ruleset, gate) {
            Ok(()) => {}
            Err(f) => return f,
        }
        let err = sys::execve(&self.exec.path, &self.exec.argv_ptrs, &self.exec.envp_ptrs);
        InstallFailure::io(InstallStep::Exec, &err)
    }

    fn install_filters(
        &self,
        ruleset: Option<BorrowedFd<'_>>,
        gate: GateHandoff<'_>,
    ) -> Result<(), InstallFailure> {
        use InstallStep as S;
        let gate_err = |e: gate::GateError| match e {
            gate::GateError::Seccomp(e) => InstallFailure::seccomp(S::ExecGate, &e),
            gate::GateError::Sys { source, .. } => InstallFailure::io(S::ExecGate, &source),
        };
        // The `pledge` command's gate helper, which will hold a listener, is forked before the
        // Landlock domain exists, so that the program cannot reach it (see gate.rs).
        let detached_gate = match gate {
            GateHandoff::Detached if self.launcher.gate => {
                Some(gate::Gate::start().map_err(gate_err)?)
            }
            _ => None,
        };
        if let Some(fd) = ruleset {
            sys::set_no_new_privs().map_err(|e| InstallFailure::io(S::Landlock, &e))?;
            sys::landlock_restrict_self(fd, self.restrict_flags())
                .map_err(|e| InstallFailure::io(S::Landlock, &e))?;
        }
        if let Some(n) = self.nofile {
            sys::set_rlimit(libc::RLIMIT_NOFILE, n)
                .map_err(|e| InstallFailure::io(S::OpenFileLimit, &e))?;
        }
        self.refuse_exec_gain();
        if let Some(g) = detached_gate {
            g.install(&self.launcher, &self.f0).map_err(gate_err)?;
        } else if self.launcher.is_needed() {
            match (self.launcher.gate, gate) {
                (true, GateHandoff::Send(sock)) => {
                    let listener = seccomp::install(&self.f0, seccomp::InstallFlags::NEW_LISTENER)
                        .map_err(|e| InstallFailure::seccomp(S::ExecGate, &e))?
                        .ok_or(InstallFailure {
                            step: S::ExecGate,
                            errno: libc::EINVAL,
                        })?;
                    sys::send_fd(sock, &[GATE_TAG], listener.as_fd())
                        .map_err(|e| InstallFailure::io(S::HandOverListener, &e))?;
                    // Our copy must go: if the supervisor's goes, execve fails (ENOSYS)
                    // instead of waiting forever.
                    drop(listener);
                }
                (true, GateHandoff::Detached) | (false, _) => {
                    gate::install(&self.launcher, &self.f0).map_err(gate_err)?;
                }
            }
        }
        if let Some(n) = self.nproc {
            sys::set_rlimit(libc::RLIMIT_NPROC, n)
                .map_err(|e| InstallFailure::io(S::ProcessLimit, &e))?;
        }
        if self.reporting {
            let GateHandoff::Send(sock) = gate else {
                return Err(InstallFailure {
                    step: S::HandOverListener,
                    errno: libc::EINVAL,
                });
            };
            return self.install_reporting(sock);
        }
        let installed = if self.for_child {
            // The filter was built before the fork: "self" is this child.
            let me = nix::unistd::getpid().as_raw();
            seccomp::install_as_self(&self.f1, seccomp::InstallFlags::NONE, me)
        } else {
            seccomp::install(&self.f1, seccomp::InstallFlags::NONE)
        };
        installed.map_err(|e| InstallFailure::seccomp(S::PromiseFilter, &e))?;
        Ok(())
    }

    /// The reporting promise filter, whose listener the supervisor takes with `pidfd_getfd`:
    /// it cannot be sent once the filter is in force (sendmsg may be denied, and a denied call
    /// would wait for a listener nobody else holds). So the child first tells the supervisor
    /// which descriptor number the listener will get ([`DENIALS_TAG`] + the number), installs the
    /// filter, and then makes no other call than its execve, which notifies and waits until the
    /// supervisor, holding its copy, lets it continue.
    fn install_reporting(&self, sock: BorrowedFd<'_>) -> Result<(), InstallFailure> {
        use InstallStep as S;
        let expect =
            sys::lowest_free_fd(sock).map_err(|e| InstallFailure::io(S::HandOverListener, &e))?;
        let n = expect.to_ne_bytes();
        sys::write_all(sock, &[DENIALS_TAG, n[0], n[1], n[2], n[3]])
            .map_err(|e| InstallFailure::io(S::HandOverListener, &e))?;
        let me = nix::unistd::getpid().as_raw();
        let l = seccomp::install_as_self(&self.f1, seccomp::InstallFlags::NEW_LISTENER, me)
            .map_err(|e| InstallFailure::seccomp(S::PromiseFilter, &e))?
            .ok_or(InstallFailure {
                step: S::PromiseFilter,
                errno: libc::EINVAL,
            })?;
        // Kept open (close-on-exec): closing it now would be a call under the filter.
        let got = std::os::fd::IntoRawFd::into_raw_fd(l);
        if got != expect {
            return Err(InstallFailure {
                step: S::HandOverListener,
                errno: libc::EBADF,
            });
        }
        Ok(())
    }

    /// The `landlock_restrict_self` flags for the kernel's ABI ([`unveil::restrict_flags`]).
    fn restrict_flags(&self) -> u32 {
        unveil::restrict_flags(*self.abi.as_ref().unwrap_or(&0))
    }

    /// Kernel W^X (`PR_SET_MDWE`) when code may not be made executable (see procmem.rs); where
    /// the kernel lacks it (before 6.3) nothing changes, as the explanation says.
    fn refuse_exec_gain(&self) {
        if !self.fplan.user.contains(Promise::ProtExec) {
            let _ = sys::set_mdwe_refuse_exec_gain();
        }
    }

    /// [`Sandbox::install`] with the live explainer of `pledge --explain` (EPERM penalty): the
    /// promise filter carries the only listener (the kernel allows one per filter chain), see
    /// `gate::Explainer`. Returns only on failure.
    pub(super) fn install_explaining(
        &self,
        ruleset: Option<BorrowedFd<'_>>,
        name: &str,
    ) -> Result<InstallFailure, gate::GateError> {
        use InstallStep as S;
        // Forked before the Landlock domain exists (see gate.rs).
        let x = gate::Explainer::start(name)?;
        if let Some(fd) = ruleset {
            let flags = self.restrict_flags();
            if let Err(e) =
                sys::set_no_new_privs().and_then(|()| sys::landlock_restrict_self(fd, flags))
            {
                return Ok(InstallFailure::io(S::Landlock, &e));
            }
        }
        if let Some(n) = self.nofile {
            if let Err(e) = sys::set_rlimit(libc::RLIMIT_NOFILE, n) {
                return Ok(InstallFailure::io(S::OpenFileLimit, &e));
            }
        }
        self.refuse_exec_gain();
        let no_gate = LauncherFilter {
            gate: false,
            ..self.launcher
        };
        if no_gate.is_needed() {
            gate::install(&no_gate, &self.f0)?;
        }
        if let Some(n) = self.nproc {
            if let Err(e) = sys::set_rlimit(libc::RLIMIT_NPROC, n) {
                return Ok(InstallFailure::io(S::ProcessLimit, &e));
            }
        }
        let f1 = self.fplan.build_explaining(self.unveiled)?;
        x.install_promise_filter(&f1)?;
        let err = sys::execve(&self.exec.path, &self.exec.argv_ptrs, &self.exec.envp_ptrs);
        Ok(InstallFailure::io(S::Exec, &err))
    }
}

/// The first byte of the message that carries the exec gate's listener.
pub const GATE_TAG: u8 = b'G';

/// The first byte of the message that announces the reporting promise filter's listener: the
/// descriptor number (4 bytes, native endian) it will have in the child.
pub const DENIALS_TAG: u8 = b'X';
/// The first byte of the message that names learn mode's listener (then its descriptor number,
/// native-endian i32; the recorder takes it with `pidfd_getfd` and answers one byte).
pub const LEARN_TAG: u8 = b'W';

/// The recorder's side of the learn handoff: read the message on `sock`, take the listener
/// from `pid`, acknowledge. `Ok(None)`: the child closed the socket first (it failed).
pub fn take_learn_listener(
    sock: BorrowedFd<'_>,
    pid: libc::pid_t,
) -> std::io::Result<Option<OwnedFd>> {
    let mut buf = [0u8; 8];
    let (n, _) = sys::recv_fd(sock, &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if n != 5 || buf[0] != LEARN_TAG {
        return Err(std::io::Error::from_raw_os_error(libc::EPROTO));
    }
    Ok(Some(take_named_listener(sock, pid, &buf[1..5])?))
}

/// Take the listener whose descriptor number is `fd` (4 native-endian bytes) from `pid`, then
/// acknowledge on `sock`.
pub fn take_named_listener(
    sock: BorrowedFd<'_>,
    pid: libc::pid_t,
    fd: &[u8],
) -> std::io::Result<OwnedFd> {
    let fd = i32::from_ne_bytes([fd[0], fd[1], fd[2], fd[3]]);
    let pidfd = sys::pidfd_of(pid)?;
    let l = sys::pidfd_getfd(pidfd.as_fd(), fd)?;
    sys::write_all(sock, &[1])?;
    Ok(l)
}
