//! The launcher: pledge.com's order of operations (pledge-semantics.md §1.6), native.
//!
//! Everything that can fail for a reason the user can fix (promises, unveil paths, the program,
//! the filters) is parsed, opened and built before anything irreversible happens; then Landlock,
//! the gate and the promise filter are installed and the process becomes PROG with execve (same
//! PID, no fork), exactly like pledge.com.

use std::ffi::{c_char, CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::sys::resource::{getrlimit, setrlimit, Resource};

use super::cli::Options;
use super::exe::{self, Kind};
use super::gate::{self, LauncherFilter};
use super::promise::{Promise, PromiseSet};
use super::seccomp::{self, FilterOptions, Penalty};
use super::sys;
use super::unveil::{self, Enforcement, NetPolicy, Origin, ProgramFacts, UnveilRule};

/// Default promises when no `-p` is given.
pub const DEFAULT_PROMISES: &str = "stdio rpath";

/// Exit statuses (§1.9).
mod status {
    pub const RLIMIT: i32 = 1;
    pub const DEV_NULL: i32 = 2;
    pub const SETUID_INSTALL: i32 = 6;
    pub const CHDIR: i32 = 8;
    pub const CHROOT: i32 = 9;
    pub const SETGID: i32 = 13;
    pub const SETGID_VERIFY: i32 = 14;
    pub const SETUID: i32 = 17;
    pub const SETUID_VERIFY: i32 = 18;
    pub const PLEDGE: i32 = 19;
    pub const CAPS: i32 = 25;
    pub const EXEC: i32 = 127;
}

/// `-T pledge|unveil`: feature test; prints what would be applied for the rest of the command
/// line to stdout, exits 0 (available) / 1 (not) / 2 (unknown test).
pub fn feature_test(prog: &str, test: &OsStr, opts: &Options) -> i32 {
    match test.as_bytes() {
        b"pledge" => {
            if !sys::seccomp_available() {
                println!("seccomp: not available (kernel without CONFIG_SECCOMP_FILTER)");
                return 1;
            }
            println!("seccomp: available");
            match promises_of(opts) {
                Ok(p) => {
                    let kind = opts
                        .command
                        .first()
                        .and_then(|c| {
                            exe::find_program(c, std::env::var_os("PATH").as_deref()).ok()
                        })
                        .map(|p| effective_kind(&p));
                    let dynamic = kind.as_ref().is_some_and(|k| k.1);
                    let plan = FilterPlan::new(p, dynamic, opts);
                    print!("{}", plan.describe());
                    if let Err(e) = plan.build(false, 3) {
                        println!("error: {e}");
                    }
                }
                Err(msg) => println!("{msg}"),
            }
            0
        }
        b"unveil" => {
            let abi = unveil::kernel_abi();
            let ok = abi.is_ok();
            match &abi {
                Ok(v) => println!("landlock: available, ABI {v}"),
                Err(r) => println!("landlock: not available: {r}"),
            }
            if opts.no_unveil {
                print!("{}", unveil::domain_only(abi).describe());
            } else {
                let rules = promises_of(opts).and_then(|p| unveil_rules(opts, p, prog));
                match rules.and_then(|r| {
                    unveil::plan(r, NetPolicy::default(), abi).map_err(|e| e.to_string())
                }) {
                    Ok(plan) => print!("{}", plan.describe()),
                    Err(msg) => println!("error: {msg}"),
                }
            }
            i32::from(!ok)
        }
        _ => {
            eprintln!("{}: unknown test", test.to_string_lossy());
            2
        }
    }
}

/// `--why SYSCALL[,ARG...]`: the policy's explanation of one syscall (the kernel audit log of
/// `--audit` and `-k` names syscalls by number: `syscall=41`). Exit 0, or 2 on bad input.
pub fn why(prog: &str, spec: &str) -> i32 {
    let mut parts = spec.split(',');
    let name = parts.next().unwrap_or_default().trim();
    let nr = match name.parse::<i64>() {
        Ok(n) => n,
        Err(_) => match super::syscalls::number(name) {
            Some(n) => n,
            None => {
                eprintln!("{prog}: --why: unknown syscall `{name}`: give a name such as `openat` or a number");
                return 2;
            }
        },
    };
    let mut args = [0u64; 6];
    for (i, a) in parts.enumerate() {
        let v = match super::cli::parse_int(prog, a.trim()) {
            Ok(v) if i < 6 => v as u64,
            _ => {
                eprintln!(
                    "{prog}: --why: bad argument {} `{a}`: give up to 6 integers (0x.. for hex)",
                    i + 1
                );
                return 2;
            }
        };
        args[i] = v;
    }
    println!("{}", seccomp::explain(nr, &args));
    0
}

fn promises_of(opts: &Options) -> Result<PromiseSet, String> {
    let list = opts.promises.as_deref().unwrap_or(DEFAULT_PROMISES);
    PromiseSet::parse(list).map_err(|e| format!("bad promises list: {list}: {e}"))
}

/// Program facts for `-T` (no error if the command is missing).
fn effective_kind(path: &Path) -> (Option<PathBuf>, bool) {
    match exe::classify(path) {
        Kind::DynamicElf => (None, true),
        Kind::Script { interpreter } => {
            let d = exe::classify(&interpreter) == Kind::DynamicElf;
            (Some(interpreter), d)
        }
        _ => (None, false),
    }
}

fn unveil_rules(
    opts: &Options,
    promises: PromiseSet,
    prog: &str,
) -> Result<Vec<(UnveilRule, Origin)>, String> {
    let mut rules = Vec::new();
    if let Some(cmd) = opts.command.first() {
        let path = exe::find_program(cmd, std::env::var_os("PATH").as_deref())
            .map_err(|e| e.to_string())?;
        let (interpreter, dynamic) = effective_kind(&path);
        let facts = ProgramFacts {
            path,
            interpreter,
            dynamic,
            tmppath: std::env::var_os("TMPPATH"),
        };
        rules = unveil::implicit_rules(promises, &facts, sys::stdin_tty_name());
    }
    for v in &opts.operator_unveils {
        let r = UnveilRule::parse_os(v).map_err(|e| format!("{prog}: {e}"))?;
        rules.push((r, Origin::Operator));
    }
    for v in &opts.unveils {
        let r = UnveilRule::parse_os(v).map_err(|e| format!("{prog}: {e}"))?;
        rules.push((r, Origin::User));
    }
    super::procmem::check(&rules, promises).map_err(|e| e.to_string())?;
    Ok(rules)
}

/// The seccomp side of the plan.
struct FilterPlan {
    /// What the user promised.
    user: PromiseSet,
    /// What the promise filter grants (user + rpath for dynamic programs).
    effective: PromiseSet,
    gate: bool,
    penalty: Penalty,
}

impl FilterPlan {
    fn new(user: PromiseSet, dynamic: bool, opts: &Options) -> Self {
        let mut effective = user;
        if dynamic {
            // The dynamic loader opens the libraries after execve (pledge v1.9 adds it too).
            effective.insert(Promise::Rpath);
        }
        let penalty = if opts.audit {
            Penalty::Log
        } else if opts.kill {
            Penalty::KillProcess
        } else {
            Penalty::Errno(libc::EPERM)
        };
        FilterPlan {
            user,
            effective,
            gate: !user.contains(Promise::Exec),
            penalty,
        }
    }

    /// (launcher filter, promise filter).
    fn build(
        &self,
        unveiled: bool,
        abi: i32,
    ) -> Result<(LauncherFilter, seccomp::BpfProgram, seccomp::BpfProgram), seccomp::SeccompError>
    {
        let launcher = LauncherFilter {
            gate: self.gate,
            deny_setxattr: unveiled,
            deny_truncate: unveiled && abi < 3,
        };
        let f0 = launcher.build()?;
        // The promise filter is always built "gated" (execve → USER_NOTIF, file-backed
        // mmap(PROT_EXEC) allowed for the dynamic loader) and its execve verdict is then handed
        // to the launcher filter: with `exec` promised there is no gate and execve is allowed for
        // good, and the programs it starts can still be loaded without granting `prot_exec`.
        let opts = FilterOptions {
            penalty: self.penalty,
            exec_gate: true,
            self_pid: None,
            unveiled,
        };
        let f1 = seccomp::build_filter(&self.effective.without(Promise::Exec), &opts)?;
        let f1 = gate::defer_exec_to_gate(&f1)?;
        Ok((launcher, f0, f1))
    }

    /// The promise filter for the live explainer: gated execve and the penalty both notify.
    fn build_explaining(
        &self,
        unveiled: bool,
    ) -> Result<seccomp::BpfProgram, seccomp::SeccompError> {
        let opts = FilterOptions {
            penalty: self.penalty,
            exec_gate: true,
            self_pid: None,
            unveiled,
        };
        let f1 = seccomp::build_filter(&self.effective, &opts)?;
        gate::penalty_to_notify(&f1)
    }

    fn describe(&self) -> String {
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

/// Everything execve needs, prepared before the filter is installed (no allocation after).
struct ExecPlan {
    path: CString,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    envp_ptrs: Vec<*const c_char>,
}

impl ExecPlan {
    fn new(path: &Path, argv: &[OsString], env: Vec<OsString>) -> Result<Self, String> {
        let c = |s: &OsStr| {
            CString::new(s.as_bytes().to_vec())
                .map_err(|_| format!("{:?} contains a NUL byte", s.to_string_lossy()))
        };
        let path = c(path.as_os_str())?;
        let argv: Vec<CString> = argv.iter().map(|a| c(a)).collect::<Result<_, _>>()?;
        let envp: Vec<CString> = env.iter().map(|a| c(a)).collect::<Result<_, _>>()?;
        let mut argv_ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const c_char> = envp.iter().map(|a| a.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());
        Ok(ExecPlan {
            path,
            _argv: argv,
            _envp: envp,
            argv_ptrs,
            envp_ptrs,
        })
    }
}

/// The child's environment: ours minus `_PLEDGE` and `LD_PRELOAD` (v1.9), and our report pipe's
/// variable.
fn child_env() -> Vec<OsString> {
    std::env::vars_os()
        .filter(|(k, _)| k != "_PLEDGE" && k != "LD_PRELOAD" && k != REPORT_FD_ENV)
        .map(|(k, v)| {
            let mut e = k.into_vec();
            e.push(b'=');
            e.extend(v.into_vec());
            OsString::from_vec(e)
        })
        .collect()
}

/// Step 4: close fds ≥ 3 and make sure 0–2 are open (on /dev/null).
fn normalize_fds() -> Result<(), i32> {
    sys::close_from_except(3, report_fd());
    for fd in 0..3 {
        if !sys::fd_is_open(fd) {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|_| status::DEV_NULL)?;
            // Opening returns the lowest free descriptor, which is `fd`.
            let raw = std::os::fd::IntoRawFd::into_raw_fd(f);
            if raw != fd {
                return Err(3);
            }
        }
    }
    Ok(())
}

fn set_limit(prog: &str, res: Resource, name: &str, soft: u64, hard: u64) -> Result<(), String> {
    if setrlimit(res, soft, hard).is_ok() {
        return Ok(());
    }
    let (_, cur_hard) = getrlimit(res).map_err(|e| format!("{prog}: getrlimit({name}): {e}"))?;
    setrlimit(res, soft.min(cur_hard), hard.min(cur_hard))
        .map_err(|e| format!("{prog}: setrlimit({name}): {e}"))
}

/// Steps 5–6: niceness and the limits that were asked for (we never impose defaults).
/// RLIMIT_NPROC comes later, after the exec gate has forked its listener.
fn apply_limits(prog: &str, opts: &Options) {
    if opts.nice {
        sys::very_nice();
    }
    let mut todo: Vec<(Resource, &str, u64, u64)> = Vec::new();
    if let Some(c) = opts.cpu.filter(|c| *c > 0) {
        todo.push((Resource::RLIMIT_CPU, "RLIMIT_CPU", c as u64, c as u64));
    }
    if let Some(f) = opts.fsize {
        let hard = f.saturating_add(f / 2);
        todo.push((Resource::RLIMIT_FSIZE, "RLIMIT_FSIZE", f, hard));
    }
    if let Some(m) = opts.mem {
        todo.push((Resource::RLIMIT_AS, "RLIMIT_AS", m, m));
    }
    for (res, name, soft, hard) in todo {
        if let Err(msg) = set_limit(prog, res, name, soft, hard) {
            // v1.9: report and continue.
            eprintln!("{msg}");
        }
    }
}

/// RLIMIT_NPROC, applied after the exec gate forked its helper.
fn apply_nproc(prog: &str, opts: &Options) {
    if let Some(n) = opts.nproc {
        if let Err(msg) = set_limit(prog, Resource::RLIMIT_NPROC, "RLIMIT_NPROC", n, n) {
            eprintln!("{msg}");
        }
    }
}

/// Steps 12–14: capability bounding set, gid, uid.
fn switch_identity(prog: &str, opts: &Options) -> Result<(), (String, i32)> {
    if !opts.keep_caps {
        sys::drop_bounding_set()
            .map_err(|e| (format!("{prog}: dropping capabilities: {e}"), status::CAPS))?;
    }
    if let Some(g) = opts.gid {
        let gid = nix::unistd::Gid::from_raw(g);
        nix::unistd::setresgid(gid, gid, gid)
            .map_err(|e| (format!("{prog}: setgid({g}): {e}"), status::SETGID))?;
        if nix::unistd::getgid() != gid || nix::unistd::getegid() != gid {
            return Err((
                format!("{prog}: setgid({g}) not effective"),
                status::SETGID_VERIFY,
            ));
        }
    }
    if let Some(u) = opts.uid {
        let uid = nix::unistd::Uid::from_raw(u);
        nix::unistd::setresuid(uid, uid, uid)
            .map_err(|e| (format!("{prog}: setuid({u}): {e}"), status::SETUID))?;
        if nix::unistd::getuid() != uid || nix::unistd::geteuid() != uid {
            return Err((
                format!("{prog}: setuid({u}) not effective"),
                status::SETUID_VERIFY,
            ));
        }
    }
    Ok(())
}

/// Environment variable through which the driver's supervisor hands the launcher a pipe for its
/// failure message (the driver turns it into a task event and WaitTask's `err`). Not passed on
/// to PROG; the pipe is closed on execve.
pub const REPORT_FD_ENV: &str = "NOMAD_PLEDGE_REPORT_FD";

/// The report pipe's fd (-1: none). The launcher is single-threaded; a static lets step 4
/// (closing inherited fds) spare it without threading it through every step.
static REPORT_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Takes the report pipe named by [`REPORT_FD_ENV`], if it really is an inherited pipe (never
/// stdin/stdout/stderr), and makes it close-on-exec.
fn take_report_fd() {
    let Some(fd) = std::env::var(REPORT_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<std::os::fd::RawFd>().ok())
        .filter(|&fd| fd >= 3 && sys::fd_is_open(fd))
    else {
        return;
    };
    // SAFETY: `fd` is open (checked above) and stays open while borrowed here.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let is_pipe = nix::sys::stat::fstat(borrowed)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO)
        .unwrap_or(false);
    let cloexec = nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC);
    if is_pipe && nix::fcntl::fcntl(borrowed, cloexec).is_ok() {
        REPORT_FD.store(fd, std::sync::atomic::Ordering::Relaxed);
    }
}

fn report_fd() -> Option<std::os::fd::RawFd> {
    Some(REPORT_FD.load(std::sync::atomic::Ordering::Relaxed)).filter(|&fd| fd >= 0)
}

/// Writes a failure message to the report pipe, if the driver gave us one.
fn report(msg: &str) {
    if let Some(fd) = report_fd() {
        // SAFETY: the fd was validated by `take_report_fd` and step 4 keeps it open.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let _ = sys::write_all(fd, msg.as_bytes());
    }
}

/// Run PROG sandboxed. Returns an exit status only on failure.
pub fn run(prog: &str, opts: &Options) -> i32 {
    take_report_fd();
    match run_inner(prog, opts) {
        Ok(never) => match never {},
        Err((msg, code)) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
                report(&msg);
            }
            code
        }
    }
}

fn run_inner(prog: &str, opts: &Options) -> Result<std::convert::Infallible, (String, i32)> {
    // Parse what the user gave before any side effect.
    let list = opts.promises.as_deref().unwrap_or(DEFAULT_PROMISES);
    let user = PromiseSet::parse(list)
        .map_err(|e| (format!("{prog}: bad promises list: {list} ({e})"), 21))?;
    let mut user_rules = Vec::new();
    let given = (opts.operator_unveils.iter().map(|v| (v, Origin::Operator)))
        .chain(opts.unveils.iter().map(|v| (v, Origin::User)));
    for (v, origin) in given {
        let r = UnveilRule::parse_os(v)
            .map_err(|e| (format!("{prog}: {e}"), unveil::UNVEIL_EXIT_STATUS))?;
        user_rules.push((r, origin));
    }

    // 4. fd normalization.
    if !opts.no_normalize {
        normalize_fds().map_err(|c| (format!("{prog}: cannot set up fds 0-2 on /dev/null"), c))?;
    }
    // 5–6. niceness, limits.
    apply_limits(prog, opts);
    // 7. We are never installed setuid: refuse rather than half-support it.
    if nix::unistd::getuid() != nix::unistd::geteuid()
        || nix::unistd::getgid() != nix::unistd::getegid()
    {
        return Err((
            format!(
                "{prog}: running setuid/setgid is not supported: install without the set-id bit"
            ),
            status::SETUID_INSTALL,
        ));
    }
    // 8. chroot.
    if let Some(dir) = &opts.chroot {
        nix::unistd::chdir(Path::new(dir)).map_err(|e| {
            (
                format!("{prog}: chdir {}: {e}", dir.to_string_lossy()),
                status::CHDIR,
            )
        })?;
        nix::unistd::chroot(Path::new(dir)).map_err(|e| {
            (
                format!("{prog}: chroot {}: {e}", dir.to_string_lossy()),
                status::CHROOT,
            )
        })?;
    }
    // 9. find PROG.
    let name = &opts.command[0];
    let path = exe::find_program(name, std::env::var_os("PATH").as_deref())
        .map_err(|e| (e.to_string(), exe::NOT_FOUND_EXIT_STATUS))?;
    // 10–11. environment and classification.
    let env = child_env();
    let (interpreter, dynamic) = effective_kind(&path);
    let exec = ExecPlan::new(&path, &opts.command, env)
        .map_err(|e| (format!("{prog}: {e}"), status::EXEC))?;
    // 12–14. identity.
    switch_identity(prog, opts)?;

    // 16. unveil plan (opened as the final user, inside the chroot).
    let abi = unveil::kernel_abi();
    let abi_n = *abi.as_ref().unwrap_or(&0);
    if opts.no_unveil && (opts.tcp_bind.is_some() || opts.tcp_connect.is_some()) {
        return Err((
            format!("{prog}: --tcp-bind/--tcp-connect are landlock rules: drop -V to use them"),
            unveil::UNVEIL_EXIT_STATUS,
        ));
    }
    let landlock_plan = if opts.no_unveil {
        // No filesystem rules, but still a Landlock domain: scopes and ptrace confinement.
        Some(unveil::domain_only(abi))
    } else {
        // Inside the chroot and as the final user, like the rules themselves.
        super::procmem::check(&user_rules, user)
            .map_err(|e| (format!("{prog}: {e}"), unveil::UNVEIL_EXIT_STATUS))?;
        let facts = ProgramFacts {
            path: path.clone(),
            interpreter,
            dynamic,
            tmppath: std::env::var_os("TMPPATH"),
        };
        let mut rules = unveil::implicit_rules(user, &facts, sys::stdin_tty_name());
        rules.extend(user_rules);
        let net = NetPolicy {
            deny_connect: abi_n >= 4
                && user.contains(Promise::Anet)
                && !user.contains(Promise::Inet)
                && !user.contains(Promise::Dns),
            bind_ports: opts.tcp_bind.clone(),
            connect_ports: opts.tcp_connect.clone(),
        };
        Some(unveil::plan(rules, net, abi).map_err(|e| {
            let c = e.exit_status();
            (format!("{prog}: {e}"), c)
        })?)
    };
    let landlock_active = landlock_plan
        .as_ref()
        .is_some_and(|p| p.abi > 0 && p.has_fs_rules());

    // 17. promise filters (built now, installed last).
    let fplan = FilterPlan::new(user, dynamic, opts);
    let (launcher, f0, f1) = fplan
        .build(landlock_active, abi_n)
        .map_err(|e| (format!("{prog}: pledge: {e}"), status::PLEDGE))?;

    if opts.explain {
        eprint!(
            "{prog}: sandbox plan for {}\n{}",
            path.display(),
            fplan.describe()
        );
        if let Some(p) = &landlock_plan {
            eprint!("{}", p.describe());
        }
    }

    // The helpers that will hold a seccomp listener are forked now, before the Landlock domain
    // exists, so that the program cannot reach them (see gate.rs).
    // Live explanations (--explain with the EPERM penalty): the promise filter carries the only
    // listener (the kernel allows one per filter chain), see gate::Explainer.
    let live = opts.explain && fplan.penalty == Penalty::Errno(libc::EPERM);
    let pledge_err = |e: gate::GateError| (format!("{prog}: pledge: {e}"), status::PLEDGE);
    let explainer = if live {
        Some(gate::Explainer::start(prog).map_err(pledge_err)?)
    } else {
        None
    };
    let exec_gate = if !live && launcher.gate {
        Some(gate::Gate::start().map_err(pledge_err)?)
    } else {
        None
    };

    // Irreversible from here on. Landlock first (its rules need open fds and syscalls the
    // promises may not allow).
    if let Some(p) = &landlock_plan {
        match p.enforce(opts.unveil_best_effort) {
            Ok(Enforcement::Full) => {}
            Ok(Enforcement::None) if !p.has_fs_rules() => {}
            Ok(Enforcement::None) => {
                // Degraded security is never silent (pledge.com says nothing here).
                let what = if p.has_user_rules() {
                    "the -v rules are NOT enforced (--unveil-best-effort)"
                } else {
                    "the filesystem is not restricted"
                };
                eprintln!(
                    "{prog}: warning: landlock unavailable ({}): {what}",
                    p.unavailable.as_deref().unwrap_or("unknown")
                );
            }
            Err(e) => return Err((format!("{prog}: {e}"), e.exit_status())),
        }
        drop(landlock_plan);
    }
    // 18. RLIMIT_NOFILE last (unveil needed descriptors).
    if let Some(n) = opts.nofile {
        set_limit(prog, Resource::RLIMIT_NOFILE, "RLIMIT_NOFILE", n, n)
            .map_err(|m| (m, status::RLIMIT))?;
    }
    // Kernel W^X (PR_SET_MDWE) when code may not be made executable; see procmem.rs.
    if !user.contains(Promise::ProtExec) {
        if let Err(e) = sys::set_mdwe_refuse_exec_gain() {
            eprintln!("{prog}: warning: prctl(PR_SET_MDWE) failed: {e}");
        }
    }
    // 19. the gate (and unveil extras), then the promise filter.
    if let Some(x) = explainer {
        let no_gate = LauncherFilter {
            gate: false,
            ..launcher
        };
        if no_gate.is_needed() {
            gate::install(&no_gate, &f0).map_err(pledge_err)?;
        }
        apply_nproc(prog, opts);
        let f1 = fplan
            .build_explaining(landlock_active)
            .map_err(|e| (format!("{prog}: pledge: {e}"), status::PLEDGE))?;
        x.install_promise_filter(&f1).map_err(pledge_err)?;
    } else {
        match exec_gate {
            Some(g) => g.install(&launcher, &f0).map_err(pledge_err)?,
            None if launcher.is_needed() => gate::install(&launcher, &f0).map_err(pledge_err)?,
            None => {}
        }
        apply_nproc(prog, opts);
        seccomp::install(&f1, seccomp::InstallFlags::NONE)
            .map_err(|e| (format!("{prog}: pledge: {e}"), status::PLEDGE))?;
    }
    // 20. become PROG. Nothing below may allocate before execve.
    let err = sys::execve(&exec.path, &exec.argv_ptrs, &exec.envp_ptrs);
    let hint = match err.raw_os_error() {
        Some(libc::ENOSYS) if fplan.gate => " (the exec gate's listener is gone)",
        Some(libc::EACCES) if landlock_active => " (unveil the program and its interpreter with x)",
        _ => "",
    };
    Err((
        format!(
            "{}: {}{hint}",
            name.to_string_lossy(),
            exe::errno_text(&err.raw_os_error().unwrap_or(0))
        ),
        status::EXEC,
    ))
}
