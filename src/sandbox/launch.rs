//! The `pledge` command: pledge.com's order of operations (pledge-semantics.md §1.6), native.
//!
//! Everything that can fail for a reason the user can fix (promises, unveil paths, the program,
//! the filters) is parsed, opened and built before anything irreversible happens; then the
//! sandbox is installed by the same code the driver's task child uses (`prepared.rs`) and the
//! process becomes PROG with execve (same PID, no fork), exactly like pledge.com.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::sys::resource::{getrlimit, setrlimit, Resource};

use super::cli::Options;
use super::gate::GateError;
use super::prepared::{self, Extras, GateHandoff, InstallFailure, PrepareError, Program, Sandbox};
use super::promise::{PromiseError, PromiseSet};
use super::seccomp::{self, Penalty};
use super::sys;
use super::unveil::{self, NetPolicy, Origin, ProgramFacts, UnveilError, UnveilRule};
use crate::errors::{error_chain, Chain};
use crate::policy::{Launcher, Policy, PolicyError};

/// Default promises when no `-p` is given.
pub const DEFAULT_PROMISES: &str = "stdio rpath";

/// Exit statuses (§1.9) of the steps before the sandbox is installed.
mod status {
    pub const DEV_NULL: i32 = 2;
    pub const FD_NUMBER: i32 = 3;
    pub const SETUID_INSTALL: i32 = 6;
    pub const CHDIR: i32 = 8;
    pub const CHROOT: i32 = 9;
    pub const SETGID: i32 = 13;
    pub const SETGID_VERIFY: i32 = 14;
    pub const SETUID: i32 = 17;
    pub const SETUID_VERIFY: i32 = 18;
    pub const PLEDGE: i32 = 19;
    pub const BAD_PROMISES: i32 = 21;
    pub const CAPS: i32 = 25;
}

/// Why `pledge` could not run PROG sandboxed: one variant per failing step, the exit status
/// derived from it.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("bad promises list: {list}")]
    Promises { list: String, source: PromiseError },
    #[error(transparent)]
    Unveil(#[from] UnveilError),
    #[error("cannot set up fds 0-2 on /dev/null")]
    Fds { status: i32 },
    #[error("running setuid/setgid is not supported: install without the set-id bit")]
    SetIdInstall,
    #[error("chdir {}", dir.display())]
    Chdir { dir: PathBuf, source: nix::Error },
    #[error("chroot {}", dir.display())]
    Chroot { dir: PathBuf, source: nix::Error },
    #[error("unveil {}", path.display())]
    Policy { path: PathBuf, source: PolicyError },
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("pledge")]
    Explainer(#[from] GateError),
    #[error("{program}: {}{hint}", install_text(.failure))]
    Install {
        program: String,
        failure: InstallFailure,
        hint: &'static str,
    },
}

fn install_text(f: &InstallFailure) -> String {
    match f.step {
        prepared::InstallStep::Exec => super::exe::errno_text(&f.errno).to_string(),
        _ => format!("pledge: {f}"),
    }
}

impl LaunchError {
    pub fn exit_status(&self) -> i32 {
        match self {
            LaunchError::Promises { .. } => status::BAD_PROMISES,
            LaunchError::Unveil(e) => e.exit_status(),
            LaunchError::Fds { status } => *status,
            LaunchError::SetIdInstall => status::SETUID_INSTALL,
            LaunchError::Chdir { .. } => status::CHDIR,
            LaunchError::Chroot { .. } => status::CHROOT,
            LaunchError::Policy { .. } => unveil::UNVEIL_EXIT_STATUS,
            LaunchError::Prepare(e) => e.exit_status(),
            LaunchError::Identity(e) => e.exit_status(),
            LaunchError::Explainer(_) => status::PLEDGE,
            LaunchError::Install { failure, .. } => failure.step.exit_status(),
        }
    }
}

/// `-u`/`-g`: the identity switch and the capability sets.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("dropping capabilities")]
    Caps(#[source] std::io::Error),
    #[error(
        "clearing the inheritable, ambient and (for a non-root uid) permitted capabilities: {0}"
    )]
    CapSets(String),
    #[error("setgroups({groups:?}) for -u/-g")]
    Groups {
        groups: Vec<u32>,
        source: nix::Error,
    },
    #[error("setgid({gid})")]
    Setgid { gid: u32, source: nix::Error },
    #[error("setgid({gid}) not effective")]
    SetgidVerify { gid: u32 },
    #[error("setuid({uid})")]
    Setuid { uid: u32, source: nix::Error },
    #[error("setuid({uid}) not effective")]
    SetuidVerify { uid: u32 },
}

impl IdentityError {
    pub fn exit_status(&self) -> i32 {
        match self {
            IdentityError::Caps(_) | IdentityError::CapSets(_) => status::CAPS,
            IdentityError::Groups { .. } | IdentityError::Setgid { .. } => status::SETGID,
            IdentityError::SetgidVerify { .. } => status::SETGID_VERIFY,
            IdentityError::Setuid { .. } => status::SETUID,
            IdentityError::SetuidVerify { .. } => status::SETUID_VERIFY,
        }
    }
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
                    let dynamic = program_of(opts).is_some_and(|p| p.dynamic);
                    let plan = prepared::FilterPlan::new(p, dynamic, penalty_of(opts));
                    print!("{}", plan.describe());
                    if let Err(e) = plan.build(false, 3, None) {
                        println!("error: {}", Chain(&e));
                    }
                }
                Err(e) => println!("{}", Chain(&e)),
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
                let rules = promises_of(opts)
                    .map_err(|e| error_chain(&e))
                    .and_then(|p| unveil_rules(opts, p, prog));
                match rules.and_then(|r| {
                    unveil::plan(r, NetPolicy::default(), abi).map_err(|e| error_chain(&e))
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

fn promises_of(opts: &Options) -> Result<PromiseSet, LaunchError> {
    let list = opts.promises.as_deref().unwrap_or(DEFAULT_PROMISES);
    PromiseSet::parse(list).map_err(|source| LaunchError::Promises {
        list: list.to_string(),
        source,
    })
}

fn penalty_of(opts: &Options) -> Penalty {
    if opts.audit {
        Penalty::Log
    } else if opts.kill {
        Penalty::KillProcess
    } else {
        Penalty::Errno(libc::EPERM)
    }
}

/// PROG for `-T` (no error if the command is missing).
fn program_of(opts: &Options) -> Option<Program> {
    let c = opts.command.first()?;
    Program::find(c, std::env::var_os("PATH").as_deref()).ok()
}

fn unveil_rules(
    opts: &Options,
    promises: PromiseSet,
    prog: &str,
) -> Result<Vec<(UnveilRule, Origin)>, String> {
    let mut rules = Vec::new();
    if let Some(cmd) = opts.command.first() {
        let p =
            Program::find(cmd, std::env::var_os("PATH").as_deref()).map_err(|e| e.to_string())?;
        let facts = ProgramFacts {
            path: p.path,
            interpreter: p.interpreter,
            dynamic: p.dynamic,
            tmppath: std::env::var_os("TMPPATH"),
        };
        rules = unveil::implicit_rules(promises, &facts, sys::stdin_tty_name());
    }
    for v in &opts.operator_unveils {
        let r = UnveilRule::parse_os(v).map_err(|e| format!("{prog}: {}", Chain(&e)))?;
        rules.push((r, Origin::Operator));
    }
    for v in &opts.unveils {
        let r = UnveilRule::parse_os(v).map_err(|e| format!("{prog}: {}", Chain(&e)))?;
        rules.push((r, Origin::User));
    }
    super::procmem::check(&rules, promises).map_err(|e| e.to_string())?;
    Ok(rules)
}

/// The child's environment: ours minus `_PLEDGE` and `LD_PRELOAD` (v1.9).
fn child_env() -> Vec<OsString> {
    std::env::vars_os()
        .filter(|(k, _)| k != "_PLEDGE" && k != "LD_PRELOAD")
        .map(|(k, v)| {
            let mut e = k.into_vec();
            e.push(b'=');
            e.extend(v.into_vec());
            OsString::from_vec(e)
        })
        .collect()
}

/// Step 4: close fds ≥ 3 and make sure 0–2 are open (on /dev/null).
fn normalize_fds() -> Result<(), LaunchError> {
    sys::close_from(3);
    for fd in 0..3 {
        if !sys::fd_is_open(fd) {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|_| LaunchError::Fds {
                    status: status::DEV_NULL,
                })?;
            // Opening returns the lowest free descriptor, which is `fd`.
            let raw = std::os::fd::IntoRawFd::into_raw_fd(f);
            if raw != fd {
                return Err(LaunchError::Fds {
                    status: status::FD_NUMBER,
                });
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
/// RLIMIT_NOFILE and RLIMIT_NPROC come later, in the install.
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

/// The supplementary groups of the identity `-u`/`-g` select: those of the passwd entry of the
/// uid (with the `-g` group as the primary one), or just the group when there is no entry.
/// `None` without `-u`/`-g` (the caller's groups stay: pledge.com switches nothing then).
fn target_groups(opts: &Options) -> Option<Vec<u32>> {
    if opts.uid.is_none() && opts.gid.is_none() {
        return None;
    }
    let gid = opts.gid.unwrap_or_else(|| nix::unistd::getgid().as_raw());
    let entry = opts
        .uid
        .and_then(|u| nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(u)).ok())
        .flatten();
    let mut groups = match entry.and_then(|u| CString::new(u.name).ok()) {
        Some(name) => nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid))
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_else(|_| vec![gid]),
        None => vec![gid],
    };
    groups.sort_unstable();
    groups.dedup();
    Some(groups)
}

/// Steps 12–14: capability bounding set, supplementary groups, gid, uid; then the capability
/// sets: inheritable and ambient cleared, effective and permitted too unless the final uid is 0.
fn switch_identity(opts: &Options, groups: Option<&[u32]>) -> Result<(), IdentityError> {
    if !opts.keep_caps {
        sys::drop_bounding_set().map_err(IdentityError::Caps)?;
    }
    if let Some(groups) = groups {
        let gids: Vec<nix::unistd::Gid> = groups
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&gids).map_err(|source| IdentityError::Groups {
            groups: groups.to_vec(),
            source,
        })?;
    }
    if let Some(g) = opts.gid {
        let gid = nix::unistd::Gid::from_raw(g);
        nix::unistd::setresgid(gid, gid, gid)
            .map_err(|source| IdentityError::Setgid { gid: g, source })?;
        if nix::unistd::getgid() != gid || nix::unistd::getegid() != gid {
            return Err(IdentityError::SetgidVerify { gid: g });
        }
    }
    if let Some(u) = opts.uid {
        let uid = nix::unistd::Uid::from_raw(u);
        nix::unistd::setresuid(uid, uid, uid)
            .map_err(|source| IdentityError::Setuid { uid: u, source })?;
        if nix::unistd::getuid() != uid || nix::unistd::geteuid() != uid {
            return Err(IdentityError::SetuidVerify { uid: u });
        }
    }
    let root = nix::unistd::geteuid().is_root();
    super::caps::restrict_to(&super::caps::CapSet::new(), root)
        .map_err(|e| IdentityError::CapSets(e.to_string()))
}

/// Run PROG sandboxed. Returns an exit status only on failure.
pub fn run(prog: &str, opts: &Options) -> i32 {
    match run_inner(prog, opts) {
        Ok(never) => match never {},
        Err(e) => {
            let msg = match &e {
                // perror style, as pledge.com: `PROG: No such file or directory`.
                LaunchError::Install { .. } | LaunchError::Prepare(PrepareError::Program(_)) => {
                    error_chain(&e)
                }
                _ => format!("{prog}: {}", Chain(&e)),
            };
            eprintln!("{msg}");
            e.exit_status()
        }
    }
}

fn run_inner(prog: &str, opts: &Options) -> Result<std::convert::Infallible, LaunchError> {
    // Parse what the user gave before any side effect.
    let promises = promises_of(opts)?;
    let mut user_rules = Vec::new();
    let mut operator_rules = Vec::new();
    for v in &opts.operator_unveils {
        operator_rules.push(UnveilRule::parse_os(v)?);
    }
    for v in &opts.unveils {
        user_rules.push(UnveilRule::parse_os(v)?);
    }

    // 4. fd normalization.
    if !opts.no_normalize {
        normalize_fds()?;
    }
    // 5–6. niceness, limits.
    apply_limits(prog, opts);
    // 7. We are never installed setuid: refuse rather than half-support it.
    if nix::unistd::getuid() != nix::unistd::geteuid()
        || nix::unistd::getgid() != nix::unistd::getegid()
    {
        return Err(LaunchError::SetIdInstall);
    }
    // 8. chroot.
    if let Some(dir) = &opts.chroot {
        let dir = Path::new(dir);
        nix::unistd::chdir(dir).map_err(|source| LaunchError::Chdir {
            dir: dir.to_owned(),
            source,
        })?;
        nix::unistd::chroot(dir).map_err(|source| LaunchError::Chroot {
            dir: dir.to_owned(),
            source,
        })?;
    }
    // 9. find PROG.
    let program = Program::find(&opts.command[0], std::env::var_os("PATH").as_deref())
        .map_err(PrepareError::from)?;
    // The policy: relative unveil paths are relative to the working directory (inside the
    // chroot), as pledge.com opens them.
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let user_rules = user_rules
        .into_iter()
        .map(|r| UnveilRule::new(r.perms, cwd.join(&r.path)))
        .collect();
    let launcher = Launcher::BuiltIn {
        unveil_best_effort: opts.unveil_best_effort,
    };
    let policy =
        Policy::new(promises, user_rules, launcher).map_err(|source| LaunchError::Policy {
            path: cwd.clone(),
            source,
        })?;
    let operator_rules = operator_rules
        .into_iter()
        .map(|r| UnveilRule::new(r.perms, cwd.join(&r.path)))
        .collect();
    let policy = policy
        .with_operator_unveil(operator_rules)
        .map_err(|source| LaunchError::Policy {
            path: cwd.clone(),
            source,
        })?;
    let policy = if opts.no_unveil {
        policy.without_unveil()
    } else {
        policy
    };
    // 10–11, 17. environment, classification, filters.
    let extras = Extras {
        penalty: penalty_of(opts),
        tcp_bind: opts.tcp_bind.clone(),
        tcp_connect: opts.tcp_connect.clone(),
        nofile: opts.nofile,
        nproc: opts.nproc,
        tmppath: std::env::var_os("TMPPATH"),
        tty: sys::stdin_tty_name(),
        for_child: false,
        report_denials: false,
    };
    let argv = prepared::c_strings(&opts.command, "command")?;
    let envp = prepared::c_strings(&child_env(), "environment")?;
    let sandbox = Sandbox::new(&policy, program, argv, envp, extras)?;
    // 12–14. identity.
    let groups = target_groups(opts);
    switch_identity(opts, groups.as_deref())?;
    if opts.learn {
        let sandbox = sandbox.into_learning()?;
        let ctx = sandbox.learn_context(std::env::var_os("TMPPATH"));
        std::process::exit(super::learn::cli::run(prog, &sandbox, &ctx));
    }
    // 16. the landlock ruleset (paths opened as the final user, inside the chroot).
    let ruleset = sandbox.ruleset(None)?;

    if opts.explain {
        eprint!(
            "{prog}: sandbox plan for {}\n{}",
            sandbox.program().path.display(),
            sandbox.describe(None)
        );
    }
    if let Some(w) = &ruleset.warning {
        eprint!("{prog}: {w}");
    }
    let fd = ruleset.fd.as_ref().map(|f| f.as_fd());
    // 18–20. landlock, RLIMIT_NOFILE, the gate, RLIMIT_NPROC, the promise filter, execve.
    let live = opts.explain && penalty_of(opts) == Penalty::Errno(libc::EPERM);
    let failure = if live {
        sandbox.install_explaining(fd, prog)?
    } else {
        sandbox.install(fd, GateHandoff::Detached)
    };
    Err(LaunchError::Install {
        program: opts.command[0].to_string_lossy().into_owned(),
        hint: sandbox.hint(&failure),
        failure,
    })
}
