//! unveil → Landlock (pledge-semantics.md §4).
//!
//! * [`UnveilRule`] parses `PERM:PATH` exactly like pledge.com's `-v` (split at the first `:`, no
//!   colon = `r`); [`Perms`] are the letters `r w x c`.
//! * [`implicit_rules`] are the paths pledge.com unveils by itself for the program and for each
//!   promise (§4.5).
//! * [`plan`] opens every path (as the final user, after any chroot) and computes the Landlock
//!   rights for the running ABI; [`LandlockPlan::enforce`] is the irreversible last step.
//!
//! Rights per letter (ours; pledge.com differences marked *):
//!
//! | letter | directory rule | file rule |
//! |---|---|---|
//! | `r` | READ_FILE, READ_DIR, REFER (ABI ≥ 2) | READ_FILE |
//! | `w` | WRITE_FILE, TRUNCATE (ABI ≥ 3) | WRITE_FILE, TRUNCATE (ABI ≥ 3) * |
//! | `x` | EXECUTE | EXECUTE |
//! | `c` | MAKE_{CHAR,DIR,REG,SOCK,FIFO,BLOCK,SYM}, REMOVE_FILE, REMOVE_DIR * | (none) |
//!
//! pledge.com strips TRUNCATE from file rules (a single file unveiled `rw` cannot be opened with
//! O_TRUNC) and never handles REMOVE_*, so deleting is unrestricted; we follow OpenBSD instead:
//! removing needs `c` on the directory. With ABI ≥ 6 the sandbox is also scoped: no signals to
//! and no abstract-unix-socket connections with processes outside the Landlock domain.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use landlock::{
    make_bitflags, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort,
    PathBeneath, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, ABI,
};

use super::promise::{Promise, PromiseSet};
use super::sys;

/// Exit status of pledge.com when unveiling fails (§1.9).
pub const UNVEIL_EXIT_STATUS: i32 = 20;

/// How many symlink hops are followed in the last component (as cosmopolitan).
const MAX_SYMLINK_HOPS: usize = 64;

/// A set of unveil permission letters.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Perms(u8);

impl Perms {
    pub const R: Perms = Perms(1);
    pub const W: Perms = Perms(2);
    pub const X: Perms = Perms(4);
    pub const C: Perms = Perms(8);

    pub const fn union(self, o: Perms) -> Perms {
        Perms(self.0 | o.0)
    }
    pub const fn contains(self, o: Perms) -> bool {
        self.0 & o.0 == o.0
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Landlock rights for these letters on a directory (`dir`) or a single file, masked to `abi`.
    pub fn rights(self, abi: ABI, dir: bool) -> BitFlags<AccessFs> {
        let mut a = BitFlags::<AccessFs>::empty();
        if self.contains(Perms::R) {
            a |= AccessFs::ReadFile;
            if dir {
                a |= AccessFs::ReadDir;
                if abi >= ABI::V2 {
                    a |= AccessFs::Refer;
                }
            }
        }
        if self.contains(Perms::W) {
            a |= AccessFs::WriteFile;
            if abi >= ABI::V3 {
                a |= AccessFs::Truncate;
            }
        }
        if self.contains(Perms::X) {
            a |= AccessFs::Execute;
        }
        if self.contains(Perms::C) && dir {
            a |= make_bitflags!(AccessFs::{MakeChar | MakeDir | MakeReg | MakeSock | MakeFifo
                | MakeBlock | MakeSym | RemoveFile | RemoveDir});
        }
        a
    }
}

/// Every right we handle (i.e. deny unless a rule grants it) on `abi`.
pub fn handled_rights(abi: ABI) -> BitFlags<AccessFs> {
    Perms::R
        .union(Perms::W)
        .union(Perms::X)
        .union(Perms::C)
        .rights(abi, true)
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (p, c) in [
            (Perms::R, 'r'),
            (Perms::W, 'w'),
            (Perms::X, 'x'),
            (Perms::C, 'c'),
        ] {
            if self.contains(p) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Perms({self})")
    }
}

impl FromStr for Perms {
    type Err = UnveilError;
    fn from_str(s: &str) -> Result<Self, UnveilError> {
        let mut p = Perms::default();
        for ch in s.chars() {
            p = p.union(match ch {
                'r' => Perms::R,
                'w' => Perms::W,
                'x' => Perms::X,
                'c' => Perms::C,
                other => {
                    return Err(UnveilError::BadPermLetter {
                        perms: s.to_owned(),
                        letter: other,
                    })
                }
            });
        }
        if p.is_empty() {
            return Err(UnveilError::EmptyPerms);
        }
        Ok(p)
    }
}

/// One `-v` argument: `[PERM:]PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnveilRule {
    pub perms: Perms,
    pub path: PathBuf,
}

impl UnveilRule {
    pub fn new(perms: Perms, path: impl Into<PathBuf>) -> Self {
        UnveilRule {
            perms,
            path: path.into(),
        }
    }

    /// Parse a `-v` argument that may not be UTF-8: split at the first `:`; without a colon the
    /// whole argument is the path and the permission is `r`.
    pub fn parse_os(arg: &OsStr) -> Result<Self, UnveilError> {
        let b = arg.as_bytes();
        let (perms, path) = match b.iter().position(|&c| c == b':') {
            Some(i) => {
                let perms =
                    std::str::from_utf8(&b[..i]).map_err(|_| UnveilError::BadPermLetter {
                        perms: String::from_utf8_lossy(&b[..i]).into_owned(),
                        letter: '\u{fffd}',
                    })?;
                (perms.parse()?, OsStr::from_bytes(&b[i + 1..]))
            }
            None => (Perms::R, arg),
        };
        if path.is_empty() {
            return Err(UnveilError::EmptyPath {
                arg: arg.to_owned(),
            });
        }
        Ok(UnveilRule::new(perms, path))
    }
}

impl FromStr for UnveilRule {
    type Err = UnveilError;
    fn from_str(s: &str) -> Result<Self, UnveilError> {
        UnveilRule::parse_os(OsStr::new(s))
    }
}

impl fmt::Display for UnveilRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.perms, self.path.display())
    }
}

/// Errors of this module. Every variant names the path or argument and the fix.
#[derive(Debug, thiserror::Error)]
pub enum UnveilError {
    #[error("bad unveil permission `{letter}` in `{perms}`: use letters r (read), w (write), x (execute), c (create/remove)")]
    BadPermLetter { perms: String, letter: char },
    #[error("empty unveil permission: write at least one of r, w, x, c before the colon (e.g. `r:/etc/hosts`)")]
    EmptyPerms,
    #[error("unveil argument {arg:?} has no path: write PERM:PATH, e.g. `rw:/var/tmp`")]
    EmptyPath { arg: OsString },
    #[error("{path}: cannot unveil ({origin}): {source}")]
    Open {
        path: PathBuf,
        origin: String,
        source: std::io::Error,
    },
    #[error("{path}: symlink chain longer than {MAX_SYMLINK_HOPS} hops: unveil the final target instead")]
    SymlinkLoop { path: PathBuf },
    #[error("{path}: required by the launcher ({origin}) but does not exist")]
    RequiredMissing { path: PathBuf, origin: String },
    #[error("landlock is not available on this kernel ({reason}) but unveil rules were given: boot with `lsm=...,landlock`, use -V to run without unveil, or pass --unveil-best-effort to run with the filesystem unrestricted")]
    Unavailable { reason: String },
    #[error("landlock ruleset for {what} failed: {source}")]
    Landlock {
        what: String,
        source: landlock::RulesetError,
    },
    #[error("--tcp-bind/--tcp-connect need landlock network rules (ABI 4, Linux 6.7), this kernel has ABI {abi}: drop the port options or upgrade the kernel")]
    NoNetworkRules { abi: i32 },
    #[error("landlock only partially enforced the unveil rules (ABI {abi}): pass --unveil-best-effort to accept this")]
    Partial { abi: i32 },
}

impl UnveilError {
    pub fn exit_status(&self) -> i32 {
        UNVEIL_EXIT_STATUS
    }
}

/// Why a path is unveiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Given with `-v`.
    User,
    /// Added by the launcher; the text names the promise or reason.
    Implicit(&'static str),
    /// Added by the launcher and must exist (the program itself, its interpreter).
    Required(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::User => f.write_str("-v"),
            Origin::Implicit(w) => write!(f, "implicit for {w}"),
            Origin::Required(w) => write!(f, "required for {w}"),
        }
    }
}

/// What the launcher knows about the program when it adds implicit unveils.
#[derive(Clone, Debug, Default)]
pub struct ProgramFacts {
    /// The resolved program path.
    pub path: PathBuf,
    /// The `#!` interpreter, if the program is a script.
    pub interpreter: Option<PathBuf>,
    /// The program (or its interpreter) is a dynamically linked ELF.
    pub dynamic: bool,
    /// `TMPPATH` from the environment (pledge.com unveils it for `tmppath`).
    pub tmppath: Option<OsString>,
}

const LIB_DIRS: &[&str] = &[
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/usr/local/lib64",
];
const LD_CONFIG: &[&str] = &[
    "/etc/ld-musl-x86_64.path",
    "/etc/ld.so.conf",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf.d",
    "/etc/ld.so.preload",
];
const STDIO_PATHS: &[(&str, &str)] = &[
    ("/dev/fd", "r"),
    ("/dev/log", "w"),
    ("/dev/zero", "r"),
    ("/dev/null", "rw"),
    ("/dev/full", "rw"),
    ("/dev/stdin", "rw"),
    ("/dev/stdout", "rw"),
    ("/dev/stderr", "rw"),
    ("/dev/urandom", "r"),
    ("/etc/localtime", "r"),
    ("/proc/self/fd", "rw"),
    ("/proc/self/stat", "r"),
    ("/proc/self/status", "r"),
    ("/usr/share/locale", "r"),
    ("/proc/self/cmdline", "r"),
    ("/usr/share/zoneinfo", "r"),
    ("/proc/sys/kernel/version", "r"),
    ("/usr/share/common-licenses", "r"),
    ("/proc/sys/kernel/ngroups_max", "r"),
    ("/proc/sys/kernel/cap_last_cap", "r"),
    ("/proc/sys/vm/overcommit_memory", "r"),
];
const DNS_PATHS: &[&str] = &[
    "/etc/hosts",
    "/etc/hostname",
    "/etc/services",
    "/etc/protocols",
    "/etc/resolv.conf",
];
const TTY_DIRS: &[&str] = &["/etc/terminfo", "/usr/lib/terminfo", "/usr/share/terminfo"];
const VMINFO_PATHS: &[&str] = &[
    "/proc/stat",
    "/proc/meminfo",
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/self/maps",
    "/sys/devices/system/cpu",
];

fn perms(s: &str) -> Perms {
    s.parse().expect("static permission strings are valid")
}

/// The paths pledge.com unveils by itself (§4.5), in its order, before the `-v` rules.
/// `tty` is the terminal on stdin, if any.
pub fn implicit_rules(
    promises: PromiseSet,
    prog: &ProgramFacts,
    tty: Option<PathBuf>,
) -> Vec<(UnveilRule, Origin)> {
    let mut v = Vec::new();
    let mut add = |p: &str, path: &Path, o: Origin| v.push((UnveilRule::new(perms(p), path), o));
    add("rx", &prog.path, Origin::Required("the program"));
    if let Some(i) = &prog.interpreter {
        add("rx", i, Origin::Required("the script interpreter"));
    }
    if prog.dynamic {
        for d in LIB_DIRS {
            add("rx", Path::new(d), Origin::Implicit("dynamic linking"));
        }
        for f in LD_CONFIG {
            add("r", Path::new(f), Origin::Implicit("dynamic linking"));
        }
        add(
            "rx",
            Path::new("/lib/ld-musl-x86_64.so.1"),
            Origin::Implicit("dynamic linking"),
        );
    }
    if promises.contains(Promise::Stdio) {
        for (p, m) in STDIO_PATHS {
            add(m, Path::new(p), Origin::Implicit("stdio"));
        }
    }
    if promises.contains(Promise::Inet) {
        add(
            "r",
            Path::new("/etc/ssl/certs/ca-certificates.crt"),
            Origin::Implicit("inet"),
        );
    }
    if promises.contains(Promise::Rpath) {
        add(
            "r",
            Path::new("/proc/filesystems"),
            Origin::Implicit("rpath"),
        );
    }
    if promises.contains(Promise::Dns) {
        for p in DNS_PATHS {
            add("r", Path::new(p), Origin::Implicit("dns"));
        }
    }
    if promises.contains(Promise::Tty) {
        if let Some(t) = &tty {
            add("rw", t, Origin::Implicit("tty"));
        }
        add("rw", Path::new("/dev/tty"), Origin::Implicit("tty"));
        add("rw", Path::new("/dev/console"), Origin::Implicit("tty"));
        for d in TTY_DIRS {
            add("r", Path::new(d), Origin::Implicit("tty"));
        }
    }
    if promises.contains(Promise::Vminfo) {
        for p in VMINFO_PATHS {
            add("r", Path::new(p), Origin::Implicit("vminfo"));
        }
    }
    if promises.contains(Promise::Tmppath) {
        add("rwc", Path::new("/tmp"), Origin::Implicit("tmppath"));
        if let Some(t) = &prog.tmppath {
            if !t.is_empty() {
                add("rwc", Path::new(t), Origin::Implicit("tmppath"));
            }
        }
    }
    v
}

/// What happened to one rule when its path was opened.
#[derive(Debug)]
pub enum Target {
    Dir(OwnedFd),
    File(OwnedFd),
    /// The path does not exist: the rule is skipped (pledge.com's "if exists" semantics).
    Missing,
}

/// One rule, resolved.
#[derive(Debug)]
pub struct PlannedRule {
    pub rule: UnveilRule,
    pub origin: Origin,
    pub target: Target,
    pub rights: BitFlags<AccessFs>,
}

/// TCP rules (Landlock ABI 4) beyond the filesystem rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetPolicy {
    /// Handle TCP connect (deny unless a port is listed). Set for `anet` without `inet`/`dns`.
    pub deny_connect: bool,
    /// `--tcp-bind PORT`: if any, TCP bind is allowed to these ports only.
    pub bind_ports: Vec<u16>,
    /// `--tcp-connect PORT`: if any, TCP connect is allowed to these ports only.
    pub connect_ports: Vec<u16>,
}

impl NetPolicy {
    fn handles_bind(&self) -> bool {
        !self.bind_ports.is_empty()
    }
    fn handles_connect(&self) -> bool {
        self.deny_connect || !self.connect_ports.is_empty()
    }
    /// Port allow-lists were requested explicitly (these need ABI 4).
    pub fn has_port_rules(&self) -> bool {
        !self.bind_ports.is_empty() || !self.connect_ports.is_empty()
    }
}

/// Everything to give Landlock, built before anything is enforced.
#[derive(Debug)]
pub struct LandlockPlan {
    /// Kernel Landlock ABI (0 = unavailable).
    pub abi: i32,
    /// Why Landlock is unavailable, when `abi == 0`.
    pub unavailable: Option<String>,
    pub handled: BitFlags<AccessFs>,
    pub scopes: BitFlags<Scope>,
    pub net: NetPolicy,
    pub rules: Vec<PlannedRule>,
}

/// Test hook (debug builds only): pretend the kernel's Landlock ABI is at most this value
/// (0 = no Landlock), to exercise degradation and fail-closed paths on a modern kernel.
pub const TEST_ABI_ENV: &str = "PLEDGE_TEST_LANDLOCK_ABI";

/// The Landlock ABI of the running kernel: `Ok(version)` or `Err(reason)`.
pub fn kernel_abi() -> Result<i32, String> {
    let real = real_kernel_abi();
    let cap = if cfg!(debug_assertions) {
        std::env::var(TEST_ABI_ENV)
            .ok()
            .and_then(|v| v.parse::<i32>().ok())
    } else {
        None
    };
    match (real, cap) {
        (Ok(_), Some(c)) if c <= 0 => Err(format!("simulated by {TEST_ABI_ENV}={c}")),
        (Ok(v), Some(c)) => Ok(v.min(c)),
        (r, _) => r,
    }
}

fn real_kernel_abi() -> Result<i32, String> {
    match sys::landlock_abi_version() {
        Ok(v) => Ok(v),
        Err(libc::EOPNOTSUPP) => Err("landlock is built in but not enabled at boot".into()),
        Err(libc::ENOSYS) => Err("the kernel has no landlock (needs Linux 5.13+)".into()),
        Err(e) => Err(format!(
            "landlock_create_ruleset: {}",
            std::io::Error::from_raw_os_error(e)
        )),
    }
}

/// Resolve a path for a rule: follow symlinks in the last component ourselves; a dangling chain
/// (after at least one hop) puts the rule on the last existing link, as cosmopolitan does for
/// magic links like `/dev/stdin`.
fn resolve(path: &Path, origin: &Origin, proc_self: Option<i32>) -> Result<Target, UnveilError> {
    let open_err = |p: &Path, source| UnveilError::Open {
        path: p.to_owned(),
        origin: origin.to_string(),
        source,
    };
    let mut cur = path.to_owned();
    let mut last_link: Option<OwnedFd> = None;
    for _ in 0..=MAX_SYMLINK_HOPS {
        let real = for_process(&cur, proc_self);
        let fd = match sys::open_path_nofollow(&real) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                return Ok(match last_link {
                    Some(l) => Target::File(l),
                    None => Target::Missing,
                })
            }
            Err(e) => return Err(open_err(&cur, e)),
        };
        let st = nix::sys::stat::fstat(fd.as_fd()).map_err(|e| open_err(&cur, e.into()))?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => return Ok(Target::Dir(fd)),
            libc::S_IFLNK => {
                let target = std::fs::read_link(&real).map_err(|e| open_err(&cur, e))?;
                cur = if target.is_absolute() {
                    target
                } else {
                    cur.parent().unwrap_or(Path::new("/")).join(target)
                };
                last_link = Some(fd);
            }
            _ => return Ok(Target::File(fd)),
        }
    }
    Err(UnveilError::SymlinkLoop {
        path: path.to_owned(),
    })
}

/// `/proc/self/...` as process `pid` sees it (`/proc/PID/...`); other paths unchanged.
fn for_process(path: &Path, pid: Option<i32>) -> PathBuf {
    match (pid, path.strip_prefix("/proc/self")) {
        (Some(pid), Ok(rest)) => Path::new("/proc").join(pid.to_string()).join(rest),
        _ => path.to_owned(),
    }
}

/// Open every path and compute the rights. Run as the final user, after any chroot, so that
/// the same permission checks apply as for the program.
pub fn plan(
    rules: Vec<(UnveilRule, Origin)>,
    net: NetPolicy,
    abi: Result<i32, String>,
) -> Result<LandlockPlan, UnveilError> {
    plan_for(rules, net, abi, None)
}

/// [`plan`] for another process `proc_self` (the task child, whose supervisor opens the paths):
/// `/proc/self` in a rule, or in a symlink it leads through (`/dev/stdin`), means that process.
pub fn plan_for(
    rules: Vec<(UnveilRule, Origin)>,
    net: NetPolicy,
    abi: Result<i32, String>,
    proc_self: Option<i32>,
) -> Result<LandlockPlan, UnveilError> {
    let (abi_n, unavailable) = match abi {
        Ok(v) => (v, None),
        Err(r) => (0, Some(r)),
    };
    let abi_l = ABI::from(abi_n);
    let mut planned = Vec::with_capacity(rules.len());
    for (rule, origin) in rules {
        let target = resolve(&rule.path, &origin, proc_self)?;
        if let (Target::Missing, Origin::Required(_)) = (&target, &origin) {
            return Err(UnveilError::RequiredMissing {
                path: rule.path,
                origin: origin.to_string(),
            });
        }
        let rights = match &target {
            Target::Dir(_) => rule.perms.rights(abi_l, true),
            Target::File(_) => rule.perms.rights(abi_l, false),
            Target::Missing => BitFlags::empty(),
        };
        planned.push(PlannedRule {
            rule,
            origin,
            target,
            rights,
        });
    }
    let scopes = if abi_l >= ABI::V6 {
        Scope::from_all(abi_l)
    } else {
        BitFlags::empty()
    };
    Ok(LandlockPlan {
        abi: abi_n,
        unavailable,
        handled: if abi_n > 0 {
            handled_rights(abi_l)
        } else {
            BitFlags::empty()
        },
        scopes,
        net,
        rules: planned,
    })
}

impl LandlockPlan {
    /// Whether any `-v` rule is present (these require Landlock unless best effort was chosen).
    pub fn has_user_rules(&self) -> bool {
        self.rules.iter().any(|r| r.origin == Origin::User)
    }

    /// The ruleset with every rule added, not yet enforced: `None` when Landlock is missing and
    /// that is allowed (Landlock missing, no `-v` rules or best effort). Whoever holds the descriptor enters the
    /// domain with `landlock_restrict_self` (a task child gets it from its supervisor).
    pub fn ruleset(&self, best_effort: bool) -> Result<Option<OwnedFd>, UnveilError> {
        if self.abi <= 0 {
            let reason = self.unavailable.clone().unwrap_or_default();
            if self.has_user_rules() && !best_effort {
                return Err(UnveilError::Unavailable { reason });
            }
            return Ok(None);
        }
        let ll = |what: &str| {
            let what = what.to_owned();
            move |source| UnveilError::Landlock { what, source }
        };
        let mut rs = Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(self.handled)
            .map_err(ll("the handled filesystem rights"))?;
        if !self.scopes.is_empty() {
            rs = rs.scope(self.scopes).map_err(ll("scoping"))?;
        }
        if self.net.has_port_rules() && self.abi < 4 {
            return Err(UnveilError::NoNetworkRules { abi: self.abi });
        }
        if self.net.handles_bind() {
            rs = rs
                .handle_access(AccessNet::BindTcp)
                .map_err(ll("TCP bind (--tcp-bind)"))?;
        }
        if self.net.handles_connect() {
            rs = rs
                .handle_access(AccessNet::ConnectTcp)
                .map_err(ll("TCP connect (anet, --tcp-connect)"))?;
        }
        let mut created = rs.create().map_err(ll("creating the ruleset"))?;
        for p in &self.net.bind_ports {
            created = created
                .add_rule(NetPort::new(*p, AccessNet::BindTcp))
                .map_err(ll(&format!("--tcp-bind {p}")))?;
        }
        for p in &self.net.connect_ports {
            created = created
                .add_rule(NetPort::new(*p, AccessNet::ConnectTcp))
                .map_err(ll(&format!("--tcp-connect {p}")))?;
        }
        for r in &self.rules {
            let fd = match &r.target {
                Target::Dir(fd) | Target::File(fd) => fd,
                Target::Missing => continue,
            };
            if r.rights.is_empty() {
                continue;
            }
            created = created
                .add_rule(PathBeneath::new(fd.as_fd(), r.rights))
                .map_err(ll(&format!("{} ({})", r.rule, r.origin)))?;
        }
        // HardRequirement: every handled right is supported, or `create` failed above.
        let fd: Option<OwnedFd> = created.into();
        fd.map(Some).ok_or(UnveilError::Partial { abi: self.abi })
    }

    /// Human-readable description for `-T unveil` and `--explain`.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if self.abi > 0 {
            s += &format!(
                "landlock ABI {} (handled: {})\n",
                self.abi,
                fmt_rights(self.handled)
            );
        } else {
            s += &format!(
                "landlock unavailable: {}\n",
                self.unavailable.as_deref().unwrap_or("unknown")
            );
        }
        if !self.scopes.is_empty() {
            s += "scoped: signals and abstract unix sockets stay inside the sandbox\n";
        }
        if self.net.handles_bind() {
            s += &format!("tcp bind only to ports {:?}\n", self.net.bind_ports);
        }
        if self.net.handles_connect() {
            s += &format!("tcp connect only to ports {:?}\n", self.net.connect_ports);
        }
        for r in &self.rules {
            let state = match &r.target {
                Target::Dir(_) => "dir",
                Target::File(_) => "file",
                Target::Missing => "missing, skipped",
            };
            s += &format!(
                "unveil {:<4} {} [{}; {}] {}\n",
                r.rule.perms.to_string(),
                r.rule.path.display(),
                r.origin,
                state,
                fmt_rights(r.rights)
            );
        }
        s
    }
}

fn fmt_rights(r: BitFlags<AccessFs>) -> String {
    let names: Vec<String> = r.iter().map(|a| format!("{a:?}")).collect();
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_parsing_splits_at_first_colon() {
        let r: UnveilRule = "rw:/a:b".parse().unwrap();
        assert_eq!(r.perms, Perms::R.union(Perms::W));
        assert_eq!(r.path, PathBuf::from("/a:b"));
        let r: UnveilRule = "/etc/hosts".parse().unwrap();
        assert_eq!(r.perms, Perms::R);
        assert_eq!(r.path, PathBuf::from("/etc/hosts"));
        let r: UnveilRule = "rwxc:rel/dir".parse().unwrap();
        assert_eq!(r.to_string(), "rwxc:rel/dir");
    }

    #[test]
    fn rule_parsing_errors_name_the_problem() {
        let e = "rz:/x".parse::<UnveilRule>().unwrap_err();
        assert!(e.to_string().contains("`z`"), "{e}");
        assert!(matches!(
            ":/x".parse::<UnveilRule>(),
            Err(UnveilError::EmptyPerms)
        ));
        assert!(matches!(
            "r:".parse::<UnveilRule>(),
            Err(UnveilError::EmptyPath { .. })
        ));
    }

    #[test]
    fn rights_follow_the_table() {
        let all = Perms::R.union(Perms::W).union(Perms::X).union(Perms::C);
        // ABI 1: no REFER, no TRUNCATE.
        let r1 = all.rights(ABI::V1, true);
        assert!(!r1.contains(AccessFs::Refer));
        assert!(!r1.contains(AccessFs::Truncate));
        assert!(r1.contains(AccessFs::MakeReg | AccessFs::RemoveFile));
        // ABI 3: both, and a file rule keeps TRUNCATE but no directory rights.
        let f3 = all.rights(ABI::V3, false);
        assert_eq!(
            f3,
            AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Execute | AccessFs::Truncate
        );
        assert!(all.rights(ABI::V3, true).contains(AccessFs::Refer));
        assert_eq!(Perms::X.rights(ABI::V1, true), AccessFs::Execute);
        // Every right of a rule is handled.
        for abi in [ABI::V1, ABI::V2, ABI::V3, ABI::V6] {
            assert!(handled_rights(abi).contains(all.rights(abi, true)));
        }
    }

    #[test]
    fn implicit_rules_follow_promises() {
        let prog = ProgramFacts {
            path: "/bin/cat".into(),
            dynamic: true,
            ..Default::default()
        };
        let p = PromiseSet::parse("stdio rpath dns tmppath").unwrap();
        let rules = implicit_rules(p, &prog, None);
        let has = |path: &str, perms: &str| {
            rules
                .iter()
                .any(|(r, _)| r.path == Path::new(path) && r.perms == perms.parse().unwrap())
        };
        assert!(matches!(rules[0].1, Origin::Required(_)));
        assert!(has("/bin/cat", "rx"));
        assert!(has("/usr/lib", "rx"));
        assert!(has("/dev/null", "rw"));
        assert!(has("/proc/filesystems", "r"));
        assert!(has("/etc/resolv.conf", "r"));
        assert!(has("/tmp", "rwc"));
        assert!(!has("/etc/ssl/certs/ca-certificates.crt", "r"));
        let none = implicit_rules(PromiseSet::empty(), &ProgramFacts::default(), None);
        assert_eq!(none.len(), 1, "only the program itself");
    }
}
