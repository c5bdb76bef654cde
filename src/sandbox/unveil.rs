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
//! and no abstract-unix-socket connections with processes outside the Landlock domain. With
//! ABI ≥ 9, `w` also grants RESOLVE_UNIX (connecting to a pathname unix socket); below, such
//! connections are not mediated ([`reach_lines`], [`unix_socket_mediation`]).
//!
//! `-V` drops the filesystem rules, not the domain: [`domain_only`] still confines ptrace-class
//! access and (ABI ≥ 6) signals and abstract unix sockets to the sandbox.

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
            if abi >= ABI::V9 {
                // connect(2)/sendmsg(2) to a pathname unix socket: the kernel checks write
                // permission on the socket file, so `w` on it (or its directory) allows it.
                a |= AccessFs::ResolveUnix;
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
    #[error("{path}: cannot unveil ({origin})")]
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
    #[error("landlock ruleset for {what} failed")]
    Landlock {
        what: String,
        source: crate::errors::Flat<landlock::RulesetError>,
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
    /// Given with `--operator-unveil` (the plugin option `default_unveil`).
    Operator,
    /// Added by the launcher; the text names the promise or reason.
    Implicit(&'static str),
    /// Added by the launcher and must exist (the program itself, its interpreter).
    Required(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::User => f.write_str("-v"),
            Origin::Operator => f.write_str("operator: default_unveil"),
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

/// What a standard descriptor (0–2) refers to, for its implicit `/dev/std*` rule. pledge.com
/// unveils `/dev/stdin`, `/dev/stdout` and `/dev/stderr` `rw`, and the rule lands on whatever the
/// descriptor points at: `< file` made the file writable, `< dir` the whole tree, `>> log`
/// readable. We add the rule only for what these descriptors are meant to be, with the
/// descriptor's direction (read for stdin, write for stdout/stderr). A regular file on stdin
/// gets a read-only file rule (what the descriptor already allows: `cat /dev/stdin < file`
/// keeps working); a regular file on stdout/stderr gets none (reopening it would allow
/// overwriting or truncating what was opened for appending); a directory never gets one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdioKind {
    Terminal,
    /// A pipe or a FIFO.
    Pipe,
    Socket,
    /// `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random`, `/dev/urandom`.
    NullDevice,
    /// A regular file: a read-only rule on stdin, none on stdout/stderr.
    File,
    /// A directory, any other device, or a closed descriptor: no rule.
    Other,
}

impl StdioKind {
    /// Classify what `fd` refers to.
    pub fn of(fd: std::os::fd::BorrowedFd<'_>) -> StdioKind {
        let Ok(st) = nix::sys::stat::fstat(fd) else {
            return StdioKind::Other;
        };
        match st.st_mode & libc::S_IFMT {
            libc::S_IFIFO => StdioKind::Pipe,
            libc::S_IFSOCK => StdioKind::Socket,
            libc::S_IFREG => StdioKind::File,
            libc::S_IFCHR => {
                let (maj, min) = (
                    nix::sys::stat::major(st.st_rdev),
                    nix::sys::stat::minor(st.st_rdev),
                );
                // Memory devices (major 1): null 3, zero 5, full 7, random 8, urandom 9
                // (devices.txt); never mem, kmem or port.
                if maj == 1 && [3, 5, 7, 8, 9].contains(&min) {
                    StdioKind::NullDevice
                } else if nix::unistd::isatty(fd).unwrap_or(false) {
                    StdioKind::Terminal
                } else {
                    StdioKind::Other
                }
            }
            _ => StdioKind::Other,
        }
    }

    /// The kinds of this process's descriptors 0, 1 and 2.
    pub fn current() -> [StdioKind; 3] {
        use std::os::fd::AsFd;
        [
            StdioKind::of(std::io::stdin().as_fd()),
            StdioKind::of(std::io::stdout().as_fd()),
            StdioKind::of(std::io::stderr().as_fd()),
        ]
    }
}

/// The implicit rules for `/dev/stdin`, `/dev/stdout`, `/dev/stderr` given what descriptors
/// 0–2 are (see [`StdioKind`]).
pub fn stdio_fd_rules(kinds: [StdioKind; 3]) -> Vec<(UnveilRule, Origin)> {
    let names = [
        ("/dev/stdin", "r"),
        ("/dev/stdout", "w"),
        ("/dev/stderr", "w"),
    ];
    names
        .iter()
        .zip(kinds)
        .enumerate()
        .filter(|(i, (_, k))| match k {
            StdioKind::Other => false,
            StdioKind::File => *i == 0,
            _ => true,
        })
        .map(|(_, r)| r)
        .map(|((path, p), _)| (UnveilRule::new(perms(p), *path), Origin::Implicit("stdio")))
        .collect()
}

fn perms(s: &str) -> Perms {
    s.parse().expect("static permission strings are valid")
}

/// The paths pledge.com unveils by itself (§4.5), in its order, before the `-v` rules.
/// `tty` is the terminal on stdin, if any. The `/dev/std*` rules depend on what this process's
/// descriptors 0–2 are ([`stdio_fd_rules`]).
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
        for (r, o) in stdio_fd_rules(StdioKind::current()) {
            add(&r.perms.to_string(), &r.path, o);
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

/// An inclusive TCP port range, written `PORT` or `LO-HI`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub const fn single(p: u16) -> Self {
        PortRange { lo: p, hi: p }
    }
    pub fn ports(self) -> impl Iterator<Item = u16> {
        self.lo..=self.hi
    }
}

/// A port or range that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a TCP port or port range: write a number 0-65535 or LO-HI (e.g. 8080 or 8000-8099)")]
pub struct PortRangeError(pub String);

impl FromStr for PortRange {
    type Err = PortRangeError;
    fn from_str(s: &str) -> Result<Self, PortRangeError> {
        let err = || PortRangeError(s.to_string());
        let num = |t: &str| {
            let t = t.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            t.parse::<u16>().map_err(|_| err())
        };
        let (lo, hi) = match s.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(s)?, num(s)?),
        };
        if lo > hi {
            return Err(err());
        }
        Ok(PortRange { lo, hi })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// A comma-separated list of [`PortRange`]s (empty = no port), as `--tcp-bind` takes it.
pub fn parse_port_list(s: &str) -> Result<Vec<PortRange>, PortRangeError> {
    s.split(',')
        .filter(|t| !t.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// The inverse of [`parse_port_list`].
pub fn port_list(ranges: &[PortRange]) -> String {
    ranges
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// TCP rules (Landlock ABI 4) beyond the filesystem rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetPolicy {
    /// Handle TCP connect (deny unless a port is listed). Set for `anet` without `inet`/`dns`.
    pub deny_connect: bool,
    /// `--tcp-bind LIST`: when given (even empty), TCP bind is allowed to these ports only.
    pub bind_ports: Option<Vec<PortRange>>,
    /// `--tcp-connect LIST`: when given (even empty), TCP connect is allowed to these only.
    pub connect_ports: Option<Vec<PortRange>>,
}

impl NetPolicy {
    fn handles_bind(&self) -> bool {
        self.bind_ports.is_some()
    }
    fn handles_connect(&self) -> bool {
        self.deny_connect || self.connect_ports.is_some()
    }
    /// Port allow-lists were requested explicitly (these need ABI 4).
    pub fn has_port_rules(&self) -> bool {
        self.bind_ports.is_some() || self.connect_ports.is_some()
    }
}

/// Everything to give Landlock, built before anything is enforced.
#[derive(Debug)]
pub struct LandlockPlan {
    /// Kernel Landlock ABI (0 = unavailable).
    pub abi: i32,
    /// Filesystem rules are enforced (false: `-V`, a domain for scopes and ptrace only).
    pub fs: bool,
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
        fs: true,
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

/// The plan for `-V`: no filesystem rules, but still a Landlock domain, so that the program
/// cannot ptrace (or write the memory of) processes outside it and, with ABI ≥ 6, cannot
/// signal them or connect to their abstract unix sockets. Below ABI 6 a ruleset must handle
/// some access: it handles MAKE_BLOCK and grants it on `/`, which changes nothing.
pub fn domain_only(abi: Result<i32, String>) -> LandlockPlan {
    let (abi_n, unavailable) = match abi {
        Ok(v) => (v, None),
        Err(r) => (0, Some(r)),
    };
    let abi_l = ABI::from(abi_n);
    LandlockPlan {
        abi: abi_n,
        fs: false,
        unavailable,
        handled: BitFlags::empty(),
        scopes: if abi_l >= ABI::V6 {
            Scope::from_all(abi_l)
        } else {
            BitFlags::empty()
        },
        net: NetPolicy::default(),
        rules: Vec::new(),
    }
}

/// What a Landlock domain of `abi` enforces beyond the filesystem rules, one line each
/// (`enforced: ...` / `not enforced: ...`), for `-T unveil` and `--explain`.
pub fn reach_lines(abi: i32, fs: bool) -> Vec<String> {
    let mut v = Vec::new();
    if abi <= 0 {
        v.push("not enforced: unveil rules, ptrace confinement, signal and abstract unix socket scopes (no landlock)".into());
        v.push(format!("not enforced: connect(2) to pathname unix sockets (promise `unix`) reaches any socket file the user may write ({UNIX_SOCKET_GAP})"));
        return v;
    }
    if !fs {
        v.push("not enforced: filesystem rules (-V)".into());
    }
    v.push("enforced: no ptrace, /proc/PID/mem, process_vm_writev or pidfd_getfd on processes outside the sandbox".into());
    if abi >= 6 {
        v.push(
            "enforced: signals and abstract unix sockets stay inside the sandbox (scoped)".into(),
        );
    } else {
        v.push("not enforced: signals and abstract unix socket connections to processes outside (scopes need landlock ABI 6, Linux 6.12)".into());
    }
    if fs && abi >= 9 {
        v.push("enforced: connect(2) to a pathname unix socket needs `w` on the socket file or its directory".into());
    } else {
        v.push(format!("not enforced: connect(2) to pathname unix sockets (promise `unix`) reaches any socket file the user may write ({UNIX_SOCKET_GAP})"));
    }
    v
}

/// Why pathname unix sockets are not mediated (landlock ABI 9, Linux 7.1, adds RESOLVE_UNIX).
pub const UNIX_SOCKET_GAP: &str =
    "landlock mediates them from ABI 9, Linux 7.1, and only with filesystem rules";

/// `driver.pledge.landlock.unix_sockets`: `unveil` when pathname unix socket connections
/// need an unveil (ABI ≥ 9), else `unmediated`.
pub fn unix_socket_mediation(abi: i32) -> &'static str {
    if abi >= 9 {
        "unveil"
    } else {
        "unmediated"
    }
}

impl LandlockPlan {
    /// Whether any `-v` or operator rule is present (these require Landlock unless best effort
    /// was chosen).
    pub fn has_user_rules(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.origin, Origin::User | Origin::Operator))
    }

    /// Whether filesystem rules are part of the plan (false for [`domain_only`]).
    pub fn has_fs_rules(&self) -> bool {
        self.fs
    }

    /// The ruleset of a domain without filesystem rules ([`domain_only`]).
    fn domain_only_ruleset(&self) -> Result<Option<OwnedFd>, UnveilError> {
        let ll = |what: &'static str| {
            move |source: landlock::RulesetError| UnveilError::Landlock {
                what: what.to_owned(),
                source: source.into(),
            }
        };
        let rs = Ruleset::default().set_compatibility(CompatLevel::HardRequirement);
        let created = if !self.scopes.is_empty() {
            rs.scope(self.scopes)
                .map_err(ll("scoping"))?
                .create()
                .map_err(ll("creating the ruleset"))?
        } else {
            let root =
                sys::open_path_nofollow(Path::new("/")).map_err(|source| UnveilError::Open {
                    path: "/".into(),
                    origin: "the landlock domain of -V".into(),
                    source,
                })?;
            rs.handle_access(AccessFs::MakeBlock)
                .map_err(ll("the handled filesystem rights"))?
                .create()
                .map_err(ll("creating the ruleset"))?
                .add_rule(PathBeneath::new(root.as_fd(), AccessFs::MakeBlock))
                .map_err(ll("MAKE_BLOCK on /"))?
        };
        let fd: Option<OwnedFd> = created.into();
        fd.map(Some).ok_or(UnveilError::Partial { abi: self.abi })
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
        if !self.fs {
            return self.domain_only_ruleset();
        }
        let ll = |what: &str| {
            let what = what.to_owned();
            move |source: landlock::RulesetError| UnveilError::Landlock {
                what,
                source: source.into(),
            }
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
        let ports = |list: &Option<Vec<PortRange>>| {
            let mut v: Vec<u16> = list.iter().flatten().flat_map(|r| r.ports()).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        for p in ports(&self.net.bind_ports) {
            created = created
                .add_rule(NetPort::new(p, AccessNet::BindTcp))
                .map_err(ll(&format!("--tcp-bind {p}")))?;
        }
        for p in ports(&self.net.connect_ports) {
            created = created
                .add_rule(NetPort::new(p, AccessNet::ConnectTcp))
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
        if self.abi > 0 && !self.fs {
            s += &format!(
                "landlock ABI {}: unveil disabled (-V), a domain without filesystem rules\n",
                self.abi
            );
        } else if self.abi > 0 {
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
        for l in reach_lines(self.abi, self.fs) {
            s += &l;
            s.push('\n');
        }
        let list = |l: &Option<Vec<PortRange>>| match l.as_deref() {
            Some(r) if !r.is_empty() => port_list(r),
            _ => "(none)".to_string(),
        };
        if self.net.handles_bind() {
            s += &format!("tcp bind only to ports {}\n", list(&self.net.bind_ports));
        }
        if self.net.handles_connect() {
            s += &format!(
                "tcp connect only to ports {}\n",
                list(&self.net.connect_ports)
            );
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
        for r in self.rules.iter().filter(|r| r.origin == Origin::User) {
            if let Some(w) = super::unmatched::check(&r.rule) {
                s += &format!("warning: {w}\n");
            }
        }
        s
    }
}

/// From Landlock ABI 7, ask the kernel to audit the denials of the programs exec'd after
/// `landlock_restrict_self` (`LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON`, 1 << 1): by default only
/// the restricting program's own denials are logged, and the launcher (or the task child) is
/// not the program to watch. Records are written only where kernel audit is enabled; the plugin
/// reads them as task events. Every `landlock_restrict_self` of the sandbox passes these flags.
pub const fn restrict_flags(abi: i32) -> u32 {
    const LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON: u32 = 1 << 1;
    if abi >= 7 {
        LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON
    } else {
        0
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
    fn port_ranges_parse() {
        assert_eq!(
            parse_port_list("80, 8000-8010,,443").unwrap(),
            [
                PortRange::single(80),
                PortRange { lo: 8000, hi: 8010 },
                PortRange::single(443)
            ]
        );
        assert_eq!(parse_port_list("").unwrap(), []);
        assert_eq!(port_list(&parse_port_list("1-2,3").unwrap()), "1-2,3");
        for bad in ["x", "70000", "9-1", "-1", "1-", "+5", "1 2"] {
            let e = bad.parse::<PortRange>().unwrap_err();
            assert!(e.to_string().contains("LO-HI"), "{bad}: {e}");
        }
    }

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

    #[test]
    fn stdio_rules_follow_what_the_descriptors_are() {
        use StdioKind::*;
        let show = |k| {
            stdio_fd_rules(k)
                .iter()
                .map(|(r, _)| r.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            show([Terminal, Pipe, Socket]),
            ["r:/dev/stdin", "w:/dev/stdout", "w:/dev/stderr"]
        );
        assert_eq!(show([NullDevice, NullDevice, Terminal]).len(), 3);
        // `< file > out 2> err`: read-only on stdin, nothing for the outputs.
        assert_eq!(show([File, File, File]), ["r:/dev/stdin"]);
        // `< dir`: nothing.
        assert!(show([Other, Other, Other]).is_empty());
        let dev_null = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(
            StdioKind::of(std::os::fd::AsFd::as_fd(&dev_null)),
            NullDevice
        );
        let dir = std::fs::File::open("/").unwrap();
        assert_eq!(StdioKind::of(std::os::fd::AsFd::as_fd(&dir)), Other);
    }
}
