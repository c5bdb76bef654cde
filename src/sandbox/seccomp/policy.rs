//! The policy as data: one named rule table per promise (pledge-semantics.md §2.2–2.4, HEAD).
//!
//! A [`Rule`] allows one syscall, either always or when its argument [`Cond`]ition holds, and says
//! why. The filter is the union of the rules of the granted promises (a call is allowed when any
//! granted rule allows it), plus [`ALWAYS`], minus [`FORCED_ENOSYS`].
//!
//! Argument checks compare the low 32 bits of an argument unless the check is [`Check::Null`]
//! (both halves). Every argument checked on its low half is an `int`/`unsigned int` in the kernel
//! (or, for clone, only the low 32 bits are used), so this is exact. seccomp cannot read memory:
//! paths, sockaddrs and msghdrs are invisible to the filter; where a rule would need them we take
//! the side pledge.com takes and say so in the reason.

use crate::sandbox::promise::Promise;

/// One check on one syscall argument (0-based argument index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// `(arg & mask) == value`
    MaskedEq { arg: u8, mask: u32, value: u32 },
    /// `(arg & mask) != value`
    MaskedNe { arg: u8, mask: u32, value: u32 },
    /// `(arg & mask)` is one of `values`
    MaskedIn {
        arg: u8,
        mask: u32,
        values: &'static [u32],
    },
    /// the full 64-bit argument is 0 (a NULL pointer)
    Null { arg: u8 },
    /// the argument is the PID of the sandboxed process (fixed when the filter is built)
    SelfPid { arg: u8 },
    /// the argument is 0 ("the caller", for the scheduler, priority and limit calls) or the PID
    /// of the sandboxed process
    SelfOrZero { arg: u8 },
}

impl Check {
    /// Does the check hold for these arguments? (`self_pid` = None: no PID counts as self.)
    pub fn holds(&self, args: &[u64; 6], self_pid: Option<i32>) -> bool {
        let lo = |a: u8| args[a as usize] as u32;
        match *self {
            Check::MaskedEq { arg, mask, value } => lo(arg) & mask == value,
            Check::MaskedNe { arg, mask, value } => lo(arg) & mask != value,
            Check::MaskedIn { arg, mask, values } => values.contains(&(lo(arg) & mask)),
            Check::Null { arg } => args[arg as usize] == 0,
            Check::SelfPid { arg } => self_pid.is_some_and(|p| lo(arg) == p as u32),
            Check::SelfOrZero { arg } => {
                lo(arg) == 0 || self_pid.is_some_and(|p| lo(arg) == p as u32)
            }
        }
    }
}

/// When a rule allows its syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Always,
    /// All checks must hold; `text` says it in words ("flags are read-only ...").
    When {
        checks: &'static [Check],
        text: &'static str,
    },
}

impl Cond {
    pub fn holds(&self, args: &[u64; 6], self_pid: Option<i32>) -> bool {
        match self {
            Cond::Always => true,
            Cond::When { checks, .. } => checks.iter().all(|c| c.holds(args, self_pid)),
        }
    }
}

/// One allowed syscall of a promise, with the reason it is there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub syscall: &'static str,
    pub when: Cond,
    pub reason: &'static str,
}

const fn allow(syscall: &'static str, reason: &'static str) -> Rule {
    Rule {
        syscall,
        when: Cond::Always,
        reason,
    }
}

const fn allow_if(syscall: &'static str, when: Cond, reason: &'static str) -> Rule {
    Rule {
        syscall,
        when,
        reason,
    }
}

const fn when(checks: &'static [Check], text: &'static str) -> Cond {
    Cond::When { checks, text }
}

const fn eq(arg: u8, value: u32) -> Check {
    Check::MaskedEq {
        arg,
        mask: u32::MAX,
        value,
    }
}

const fn any_of(arg: u8, values: &'static [u32]) -> Check {
    Check::MaskedIn {
        arg,
        mask: u32::MAX,
        values,
    }
}

const fn none_of_bits(arg: u8, bits: u32) -> Check {
    Check::MaskedEq {
        arg,
        mask: bits,
        value: 0,
    }
}

// ---- constants (x86-64 / asm-generic values) ----------------------------------------------------

const O_ACCMODE: u32 = 0o3;
const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_CREAT: u32 = 0o100;
const O_TRUNC: u32 = 0o1000;
const O___TMPFILE: u32 = 0o20000000;
const O_TMPFILE: u32 = 0o20200000; // __O_TMPFILE | O_DIRECTORY
const SETID_BITS: u32 = 0o7000; // S_ISUID | S_ISGID | S_ISVTX

const PROT_READ: u32 = 0x1;
const PROT_WRITE: u32 = 0x2;
const PROT_EXEC: u32 = 0x4;
const MAP_ANONYMOUS: u32 = 0x20;
const MAP_LOCKED: u32 = 0x2000;
const MAP_NONBLOCK: u32 = 0x10000;
const MAP_HUGETLB: u32 = 0x40000;

const CLONE_THREAD_FLAGS: u32 = 0x0001_0F00; // VM | FS | FILES | SIGHAND | THREAD
const CLONE_FORBIDDEN: u32 = 0x0002_0000 | 0x0000_2000 | 0x0080_0000; // NEWNS | PTRACE | UNTRACED

const SOCK_TYPE_FLAGS: u32 = 0o4000 | 0o2000000; // SOCK_NONBLOCK | SOCK_CLOEXEC
const AF_UNIX: u32 = 1;
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
const SOCK_STREAM: u32 = 1;
const SOCK_DGRAM: u32 = 2;

// ---- named conditions (§2.4) ----------------------------------------------------------------------

const FCNTL_STDIO: Cond = when(
    &[any_of(1, &[0, 1, 2, 3, 4, 1030])],
    "cmd is F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL or F_DUPFD_CLOEXEC",
);
const FCNTL_LOCK: Cond = when(
    &[any_of(1, &[5, 6, 7, 36, 37, 38])],
    "cmd is F_GETLK, F_SETLK, F_SETLKW or an F_OFD_* lock command",
);
const IOCTL_STDIO: Cond = when(
    &[any_of(1, &[0x541B, 0x5421, 0x5451, 0x5450])],
    "request is FIONREAD, FIONBIO, FIOCLEX or FIONCLEX",
);
const IOCTL_TTY: Cond = when(
    &[any_of(
        1,
        &[
            0x5401, 0x5402, 0x5403, 0x5404, 0x5413, 0x5414, 0x540F, 0x5410, 0x540B, 0x540A,
            0x5409, 0x5427,
        ],
    )],
    "request is TCGETS, TCSETS[WF], TIOCGWINSZ, TIOCSWINSZ, TIOCGPGRP, TIOCSPGRP, TCFLSH, TCXONC, TCSBRK or TIOCSBRK (not TIOCSTI)",
);
const IOCTL_INET: Cond = when(&[eq(1, 0x8905)], "request is SIOCATMARK");

const MMAP_NOEXEC: Cond = when(
    &[
        none_of_bits(2, !(PROT_READ | PROT_WRITE)),
        none_of_bits(3, MAP_LOCKED | MAP_NONBLOCK),
    ],
    "prot is at most PROT_READ|PROT_WRITE and flags have no MAP_LOCKED or MAP_NONBLOCK",
);
const MPROTECT_NOEXEC: Cond = when(
    &[none_of_bits(2, !(PROT_READ | PROT_WRITE))],
    "prot is at most PROT_READ|PROT_WRITE (no PROT_EXEC, no PROT_GROWSDOWN/UP)",
);
const MMAP_EXEC: Cond = when(
    &[none_of_bits(3, MAP_LOCKED | MAP_NONBLOCK | MAP_HUGETLB)],
    "flags have no MAP_LOCKED, MAP_NONBLOCK or MAP_HUGETLB",
);
/// The exec gate's extra mmap rule (not a promise): file-backed, never writable and executable.
pub const MMAP_FILE_EXEC: Cond = when(
    &[
        none_of_bits(2, !(PROT_READ | PROT_WRITE | PROT_EXEC)),
        Check::MaskedNe {
            arg: 2,
            mask: PROT_WRITE | PROT_EXEC,
            value: PROT_WRITE | PROT_EXEC,
        },
        none_of_bits(3, MAP_ANONYMOUS | MAP_LOCKED | MAP_NONBLOCK | MAP_HUGETLB),
        Check::MaskedNe {
            arg: 4,
            mask: u32::MAX,
            value: u32::MAX,
        },
    ],
    "the mapping is file-backed (fd != -1, no MAP_ANONYMOUS), not both writable and executable, without MAP_LOCKED/MAP_NONBLOCK/MAP_HUGETLB",
);

const READONLY_TEXT: &str = "flags are O_RDONLY without O_CREAT, O_TRUNC or O_TMPFILE";
const OPEN_READONLY: Cond = when(
    &[none_of_bits(1, O_ACCMODE | O_CREAT | O_TRUNC | O___TMPFILE)],
    READONLY_TEXT,
);
const OPENAT_READONLY: Cond = when(
    &[none_of_bits(2, O_ACCMODE | O_CREAT | O_TRUNC | O___TMPFILE)],
    READONLY_TEXT,
);
const WRITEONLY_TEXT: &str = "flags are O_WRONLY or O_RDWR without O_CREAT or O_TMPFILE";
const OPEN_WRITEONLY: Cond = when(
    &[
        Check::MaskedIn {
            arg: 1,
            mask: O_ACCMODE,
            values: &[O_WRONLY, O_RDWR],
        },
        none_of_bits(1, O_CREAT | O___TMPFILE),
    ],
    WRITEONLY_TEXT,
);
const OPENAT_WRITEONLY: Cond = when(
    &[
        Check::MaskedIn {
            arg: 2,
            mask: O_ACCMODE,
            values: &[O_WRONLY, O_RDWR],
        },
        none_of_bits(2, O_CREAT | O___TMPFILE),
    ],
    WRITEONLY_TEXT,
);
// Creatonly is "if O_CREAT or O_TMPFILE then the mode has no setid bits"; as a union of two
// rules: "not creating" (any flags!, §2.7) or "mode has no setid bits".
const NOT_CREATING_TEXT: &str = "flags have neither O_CREAT nor O_TMPFILE (any access mode)";
const OPEN_NOT_CREATING: Cond = when(
    &[
        none_of_bits(1, O_CREAT),
        Check::MaskedNe {
            arg: 1,
            mask: O_TMPFILE,
            value: O_TMPFILE,
        },
    ],
    NOT_CREATING_TEXT,
);
const OPENAT_NOT_CREATING: Cond = when(
    &[
        none_of_bits(2, O_CREAT),
        Check::MaskedNe {
            arg: 2,
            mask: O_TMPFILE,
            value: O_TMPFILE,
        },
    ],
    NOT_CREATING_TEXT,
);
const NOBITS_TEXT: &str = "mode has no setuid, setgid or sticky bit";
const MODE_ARG1_NOBITS: Cond = when(&[none_of_bits(1, SETID_BITS)], NOBITS_TEXT);
const MODE_ARG2_NOBITS: Cond = when(&[none_of_bits(2, SETID_BITS)], NOBITS_TEXT);
const MODE_ARG3_NOBITS: Cond = when(&[none_of_bits(3, SETID_BITS)], NOBITS_TEXT);

const SENDTO_ADDRLESS: Cond = when(
    &[Check::Null { arg: 4 }],
    "dest_addr is NULL (a connected socket)",
);
const PRLIMIT_GET: Cond = when(
    &[Check::Null { arg: 2 }],
    "new_limit is NULL (read the limit only)",
);
const PID_IS_SELF: Cond = when(
    &[Check::SelfPid { arg: 0 }],
    "the target is the sandboxed process itself",
);
// Process-targeting calls without `proc` (issue 12): only the caller. A pid of 0 means the
// calling thread (affinity, robust list) or process (prlimit, migrate_pages, setpriority); the
// sandboxed process's own pid is its main thread. Other threads of the program are addressed
// by tid, which seccomp cannot tell from a foreign pid: they are refused (README).
const TARGET_IS_SELF: Cond = when(
    &[Check::SelfOrZero { arg: 0 }],
    "the target (pid argument) is 0 or the sandboxed process itself; other processes need proc",
);
const PRIO_SELF: Cond = when(
    &[eq(0, 0), Check::SelfOrZero { arg: 1 }],
    "which is PRIO_PROCESS and who is 0 or the sandboxed process itself (process groups, users and other processes need proc)",
);
const PRCTL_STDIO: Cond = when(
    &[any_of(0, &[15, 16, 21, 22, 23, 24, 38])],
    "option is PR_SET_NAME, PR_GET_NAME, PR_GET_SECCOMP, PR_SET_SECCOMP, PR_CAPBSET_READ, PR_CAPBSET_DROP or PR_SET_NO_NEW_PRIVS",
);
const CLONE_THREAD: Cond = when(
    &[
        Check::MaskedEq {
            arg: 0,
            mask: CLONE_THREAD_FLAGS,
            value: CLONE_THREAD_FLAGS,
        },
        none_of_bits(0, CLONE_FORBIDDEN),
    ],
    "flags create a thread (CLONE_VM|FS|FILES|SIGHAND|THREAD) without CLONE_NEWNS, CLONE_PTRACE or CLONE_UNTRACED",
);
const CLONE_RESTRICT: Cond = when(
    &[none_of_bits(0, CLONE_FORBIDDEN)],
    "flags have no CLONE_NEWNS, CLONE_PTRACE or CLONE_UNTRACED",
);
const SOCKET_INET: Cond = when(
    &[
        any_of(0, &[AF_INET, AF_INET6]),
        Check::MaskedIn {
            arg: 1,
            mask: !SOCK_TYPE_FLAGS,
            values: &[SOCK_STREAM, SOCK_DGRAM],
        },
        any_of(2, &[0, 1, 6, 17]),
    ],
    "family is AF_INET/AF_INET6, type SOCK_STREAM/SOCK_DGRAM, protocol 0, ICMP, TCP or UDP",
);
const SOCKET_ANET: Cond = when(
    &[
        any_of(0, &[AF_INET, AF_INET6]),
        Check::MaskedIn {
            arg: 1,
            mask: !SOCK_TYPE_FLAGS,
            values: &[SOCK_STREAM],
        },
        any_of(2, &[0, 1, 6]),
    ],
    "family is AF_INET/AF_INET6, type SOCK_STREAM, protocol 0, ICMP or TCP",
);
const SOCKET_UNIX: Cond = when(
    &[
        eq(0, AF_UNIX),
        Check::MaskedIn {
            arg: 1,
            mask: !SOCK_TYPE_FLAGS,
            values: &[SOCK_STREAM, SOCK_DGRAM],
        },
        eq(2, 0),
    ],
    "family is AF_UNIX, type SOCK_STREAM/SOCK_DGRAM, protocol 0",
);
// Level and optname are checked independently, as in pledge.com.
const SETSOCKOPT: Cond = when(
    &[
        any_of(1, &[0, 1, 6, 41]),
        any_of(
            2,
            &[1, 2, 3, 4, 5, 6, 9, 11, 12, 15, 19, 20, 21, 23, 26, 30],
        ),
    ],
    "level is SOL_IP, SOL_SOCKET, IPPROTO_TCP or IPPROTO_IPV6 and optname one of the common options (not SO_SNDBUF, SO_RCVBUF, SO_LINGER, SO_BINDTODEVICE)",
);
const GETSOCKOPT: Cond = when(
    &[any_of(1, &[1, 6]), any_of(2, &[2, 3, 4, 9, 15, 20, 21])],
    "level is SOL_SOCKET or IPPROTO_TCP and optname SO_REUSEADDR, SO_TYPE, SO_ERROR, SO_KEEPALIVE, SO_REUSEPORT, SO_RCVTIMEO or SO_SNDTIMEO",
);

// ---- special sets ------------------------------------------------------------------------------------

/// Allowed whatever the promises (§2.3).
pub const ALWAYS: &[Rule] = &[
    allow("exit", "ending the calling thread is always possible"),
    allow(
        "arch_prctl",
        "needed by every x86-64 program start (musl crashes without it; v1.9+)",
    ),
];

/// Syscalls below [`ENOSYS_FROM`] answered with ENOSYS so that libcs fall back to older calls.
pub const FORCED_ENOSYS: &[(&str, &str)] = &[
    (
        "memfd_create",
        "anonymous executable files would bypass prot_exec; callers fall back to temp files",
    ),
    (
        "openat2",
        "its flags live in a struct seccomp cannot read; libcs fall back to openat",
    ),
    (
        "clone3",
        "its flags live in a struct seccomp cannot read; glibc falls back to clone",
    ),
];

/// Every syscall number at or above this one (memfd_secret, 447) gets ENOSYS: newer calls are
/// unknown to the policy, and libcs fall back (fchmodat2 → fchmodat).
pub const ENOSYS_FROM: u32 = 447;

/// Path-based metadata changes when unveil (Landlock) is active (issue 12 item 5). Landlock has
/// no access right for chmod, chown or utimes, so by path they would reach files outside the
/// unveiled set. Each listed syscall's rules are dropped (`None`) or replaced by the condition
/// given, which selects the descriptor form; descriptor calls (`fchmod`, `fchown`, futimens)
/// act on files the program could open under Landlock, or inherited. `fchownat` and `fchmodat`
/// go: their `AT_EMPTY_PATH` form cannot be told from a path by seccomp (it cannot read the
/// path), and `fchownat(AT_EMPTY_PATH)` would reach any file through an `O_PATH` descriptor.
/// The xattr setters are in no promise at all.
pub const UNVEILED_METADATA: &[(&str, Option<Cond>)] = &[
    ("chmod", None),
    ("fchmodat", None),
    ("chown", None),
    ("lchown", None),
    ("fchownat", None),
    ("utime", None),
    ("utimes", None),
    ("futimesat", Some(PATH_IS_NULL)),
    ("utimensat", Some(PATH_IS_NULL)),
];

const PATH_IS_NULL: Cond = when(
    &[Check::Null { arg: 1 }],
    "the path is NULL (futimens: the descriptor itself)",
);

// ---- per-promise rule tables (§2.2) -----------------------------------------------------------------

const STDIO: &[Rule] = &[
    allow("rt_sigreturn", "return from a signal handler"),
    allow(
        "restart_syscall",
        "resume a syscall interrupted by a signal",
    ),
    allow("exit_group", "end the process"),
    allow("sched_yield", "give up the CPU"),
    allow("sched_getaffinity", "read which CPUs the thread may use"),
    allow_if(
        "sched_setaffinity",
        TARGET_IS_SELF,
        "pin the calling thread (or the main thread) to CPUs",
    ),
    allow("clock_getres", "clock resolution"),
    allow("clock_gettime", "read clocks"),
    allow("clock_nanosleep", "sleep"),
    allow("nanosleep", "sleep"),
    allow("gettimeofday", "read the wall clock"),
    allow("close", "close a descriptor"),
    allow("close_range", "close many descriptors"),
    allow("read", "read from an open descriptor"),
    allow("readv", "vectored read"),
    allow("pread64", "positioned read"),
    allow("preadv", "positioned vectored read"),
    allow("preadv2", "positioned vectored read with flags"),
    allow("write", "write to an open descriptor"),
    allow("writev", "vectored write"),
    allow("pwrite64", "positioned write"),
    allow("pwritev", "positioned vectored write"),
    allow("pwritev2", "positioned vectored write with flags"),
    allow("lseek", "move a file offset"),
    allow("dup", "duplicate a descriptor"),
    allow("dup2", "duplicate a descriptor"),
    allow("dup3", "duplicate a descriptor"),
    allow("fchdir", "change directory to an already open directory"),
    allow_if("fcntl", FCNTL_STDIO, "descriptor flags and duplication"),
    allow("fstat", "stat an open descriptor"),
    allow("fsync", "flush a file"),
    allow("fdatasync", "flush file data"),
    allow("ftruncate", "resize an open file"),
    allow("sysinfo", "memory and uptime figures"),
    allow("getrandom", "random bytes"),
    allow("getgroups", "read own supplementary groups"),
    allow("getpgid", "read a process group"),
    allow("getpgrp", "read own process group"),
    allow("getpid", "read own pid"),
    allow("gettid", "read own thread id"),
    allow("getuid", "read own uid"),
    allow("getgid", "read own gid"),
    allow("getsid", "read a session id"),
    allow("getppid", "read parent pid"),
    allow("geteuid", "read own effective uid"),
    allow("getegid", "read own effective gid"),
    allow("getrlimit", "read resource limits"),
    allow("getresgid", "read own gids"),
    allow("getresuid", "read own uids"),
    allow("getitimer", "read interval timers"),
    allow("setitimer", "set interval timers"),
    allow("alarm", "set an alarm signal"),
    allow("pause", "wait for a signal"),
    allow("timerfd_create", "timer descriptors"),
    allow("timerfd_settime", "timer descriptors"),
    allow("timerfd_gettime", "timer descriptors"),
    allow("copy_file_range", "copy between open descriptors"),
    allow("sendfile", "copy between open descriptors"),
    allow("splice", "move data between open descriptors"),
    allow("vmsplice", "move data between memory and a pipe"),
    allow("tee", "duplicate pipe data"),
    allow("brk", "grow the heap"),
    allow("msync", "flush a mapping"),
    allow_if("mmap", MMAP_NOEXEC, "map memory that is not executable"),
    allow_if(
        "mprotect",
        MPROTECT_NOEXEC,
        "change protection, never to executable",
    ),
    allow("mlock", "lock memory"),
    allow("mlock2", "lock memory"),
    allow("munlock", "unlock memory"),
    allow("mremap", "resize a mapping"),
    allow("munmap", "unmap memory"),
    allow("mincore", "query page residency"),
    allow("madvise", "memory usage hints"),
    allow("fadvise64", "file access hints"),
    allow("arch_prctl", "thread-local storage setup"),
    allow_if(
        "migrate_pages",
        TARGET_IS_SELF,
        "NUMA page placement of the process itself",
    ),
    allow("sync_file_range", "flush part of a file"),
    allow("set_tid_address", "thread start-up"),
    allow("membarrier", "memory barriers across threads"),
    allow("pipe", "create a pipe"),
    allow("pipe2", "create a pipe"),
    allow("poll", "wait for descriptors"),
    allow("ppoll", "wait for descriptors"),
    allow("select", "wait for descriptors"),
    allow("pselect6", "wait for descriptors"),
    allow("epoll_create", "event polling"),
    allow("epoll_create1", "event polling"),
    allow("epoll_ctl", "event polling"),
    allow("epoll_wait", "event polling"),
    allow("epoll_pwait", "event polling"),
    allow("epoll_pwait2", "event polling"),
    allow("eventfd", "event descriptors"),
    allow("eventfd2", "event descriptors"),
    allow("signalfd", "signal descriptors"),
    allow("signalfd4", "signal descriptors"),
    allow("recvfrom", "receive on an already open socket"),
    allow_if(
        "sendto",
        SENDTO_ADDRLESS,
        "send on a connected socket (an address needs a network promise)",
    ),
    allow("shutdown", "shut down a socket direction"),
    allow("socketpair", "connected socket pairs (no network access)"),
    allow_if("ioctl", IOCTL_STDIO, "harmless descriptor ioctls"),
    allow("rt_sigaction", "install signal handlers"),
    allow("sigaltstack", "signal stacks"),
    allow("rt_sigprocmask", "block and unblock signals"),
    allow("rt_sigsuspend", "wait for a signal"),
    allow("rt_sigpending", "read pending signals"),
    allow("rt_sigtimedwait", "wait for a signal"),
    allow_if(
        "kill",
        PID_IS_SELF,
        "signal oneself (raise); other processes need proc",
    ),
    allow_if(
        "tkill",
        PID_IS_SELF,
        "signal the main thread (tid = own pid); other threads: tgkill, other processes: proc",
    ),
    allow_if(
        "tgkill",
        PID_IS_SELF,
        "signal one of own threads; other processes need proc",
    ),
    allow("getrusage", "resource usage"),
    allow("times", "process times"),
    allow("umask", "file creation mask"),
    allow("wait4", "reap children"),
    allow("uname", "system name"),
    allow_if(
        "prctl",
        PRCTL_STDIO,
        "thread name, seccomp and no_new_privs (re-pledging)",
    ),
    allow_if("clone", CLONE_THREAD, "create threads; processes need proc"),
    allow("futex", "thread synchronisation"),
    allow("set_robust_list", "thread start-up"),
    allow_if(
        "get_robust_list",
        TARGET_IS_SELF,
        "thread bookkeeping of the process itself",
    ),
    allow_if(
        "prlimit64",
        PRLIMIT_GET,
        "read resource limits (glibc getrlimit); setting needs proc or id",
    ),
    allow("getcpu", "current CPU"),
    allow("rseq", "restartable sequences (glibc thread start-up)"),
];

const RPATH: &[Rule] = &[
    allow("chdir", "change directory by path"),
    allow("getcwd", "read the working directory"),
    allow_if("open", OPEN_READONLY, "open files for reading"),
    allow_if("openat", OPENAT_READONLY, "open files for reading"),
    allow("stat", "file metadata by path"),
    allow("lstat", "link metadata by path"),
    allow("fstat", "file metadata"),
    allow("newfstatat", "file metadata (glibc fstat uses it)"),
    allow("statx", "file metadata"),
    allow("access", "check file access"),
    allow("faccessat", "check file access"),
    allow("faccessat2", "check file access"),
    allow("readlink", "read symlinks"),
    allow("readlinkat", "read symlinks"),
    allow("statfs", "file system metadata"),
    allow("fstatfs", "file system metadata"),
    allow("getdents64", "list directories"),
    allow("getdents", "list directories (legacy)"),
];

const WPATH: &[Rule] = &[
    allow("getcwd", "read the working directory"),
    allow_if(
        "open",
        OPEN_WRITEONLY,
        "open existing files for writing (O_RDWR included)",
    ),
    allow_if(
        "openat",
        OPENAT_WRITEONLY,
        "open existing files for writing (O_RDWR included)",
    ),
    allow("stat", "file metadata by path"),
    allow("fstat", "file metadata"),
    allow("lstat", "link metadata by path"),
    allow("newfstatat", "file metadata"),
    allow("statx", "file metadata"),
    allow("access", "check file access"),
    allow("faccessat", "check file access"),
    allow("faccessat2", "check file access"),
    allow("readlinkat", "read symlinks"),
    allow("truncate", "resize a file by path"),
    allow_if("chmod", MODE_ARG1_NOBITS, "change permissions"),
    allow_if("fchmod", MODE_ARG1_NOBITS, "change permissions"),
    allow_if("fchmodat", MODE_ARG2_NOBITS, "change permissions"),
];

const CPATH: &[Rule] = &[
    allow_if(
        "open",
        OPEN_NOT_CREATING,
        "pledge.com's Creatonly rule lets non-creating opens through in any mode",
    ),
    allow_if(
        "open",
        MODE_ARG2_NOBITS,
        "create files (O_CREAT/O_TMPFILE) without setid bits",
    ),
    allow_if(
        "openat",
        OPENAT_NOT_CREATING,
        "pledge.com's Creatonly rule lets non-creating opens through in any mode",
    ),
    allow_if(
        "openat",
        MODE_ARG3_NOBITS,
        "create files (O_CREAT/O_TMPFILE) without setid bits",
    ),
    allow_if("creat", MODE_ARG1_NOBITS, "create files without setid bits"),
    allow("rename", "rename files"),
    allow("renameat", "rename files"),
    allow("renameat2", "rename files"),
    allow("link", "hard links"),
    allow("linkat", "hard links"),
    allow("symlink", "symbolic links"),
    allow("symlinkat", "symbolic links"),
    allow("rmdir", "remove directories"),
    allow("unlink", "remove files"),
    allow("unlinkat", "remove files"),
    allow("mkdir", "create directories"),
    allow("mkdirat", "create directories"),
];

const DPATH: &[Rule] = &[
    allow("mknod", "create special files"),
    allow("mknodat", "create special files"),
];

const FLOCK: &[Rule] = &[
    allow("flock", "whole-file locks"),
    allow_if("fcntl", FCNTL_LOCK, "record locks"),
];

const FATTR: &[Rule] = &[
    allow_if("chmod", MODE_ARG1_NOBITS, "change permissions"),
    allow_if("fchmod", MODE_ARG1_NOBITS, "change permissions"),
    allow_if("fchmodat", MODE_ARG2_NOBITS, "change permissions"),
    allow("utime", "change timestamps"),
    allow("utimes", "change timestamps"),
    allow("futimesat", "change timestamps"),
    allow("utimensat", "change timestamps"),
];

const CHOWN: &[Rule] = &[
    allow("chown", "change owner (ids are not checked)"),
    allow("fchown", "change owner (ids are not checked)"),
    allow("lchown", "change owner (ids are not checked)"),
    allow("fchownat", "change owner (ids are not checked)"),
];

const INET: &[Rule] = &[
    allow_if("socket", SOCKET_INET, "open TCP/UDP/ICMP sockets"),
    allow("listen", "accept connections"),
    allow(
        "bind",
        "bind a local address (addresses are not visible to seccomp)",
    ),
    allow(
        "connect",
        "connect anywhere (addresses are not visible to seccomp)",
    ),
    allow("accept", "accept connections"),
    allow("accept4", "accept connections"),
    allow("sendto", "send datagrams to an address"),
    allow_if("ioctl", IOCTL_INET, "out-of-band mark"),
    allow_if("getsockopt", GETSOCKOPT, "read common socket options"),
    allow_if("setsockopt", SETSOCKOPT, "set common socket options"),
    allow("getpeername", "peer address"),
    allow("getsockname", "local address"),
];

const ANET: &[Rule] = &[
    allow_if("socket", SOCKET_ANET, "open TCP server sockets"),
    allow("listen", "accept connections"),
    allow("bind", "bind a local address"),
    allow("accept", "accept connections"),
    allow("accept4", "accept connections"),
    allow("sendto", "reply on accepted connections"),
    allow_if("ioctl", IOCTL_INET, "out-of-band mark"),
    allow_if("getsockopt", GETSOCKOPT, "read common socket options"),
    allow_if("setsockopt", SETSOCKOPT, "set common socket options"),
    allow("getpeername", "peer address"),
    allow("getsockname", "local address"),
];

const UNIX: &[Rule] = &[
    allow_if("socket", SOCKET_UNIX, "open unix-domain sockets"),
    allow("listen", "accept connections"),
    allow("bind", "bind a socket path"),
    allow("connect", "connect to a socket path"),
    allow("sendto", "send datagrams to a socket path"),
    allow("accept", "accept connections"),
    allow("accept4", "accept connections"),
    allow_if("getsockopt", GETSOCKOPT, "read common socket options"),
    allow_if("setsockopt", SETSOCKOPT, "set common socket options"),
    allow("getpeername", "peer address"),
    allow("getsockname", "local address"),
];

const DNS: &[Rule] = &[
    allow_if("socket", SOCKET_INET, "sockets to talk to name servers"),
    allow("bind", "bind the resolver socket"),
    allow("connect", "connect to a name server"),
    allow("sendto", "send queries"),
    allow("recvfrom", "receive answers"),
    allow_if("setsockopt", SETSOCKOPT, "resolver socket options"),
    allow("newfstatat", "stat resolv.conf and hosts"),
    allow_if(
        "openat",
        OPENAT_READONLY,
        "read resolv.conf and hosts (any file, without unveil)",
    ),
    allow("read", "read resolver files"),
    allow("close", "close resolver files"),
    allow("recvmsg", "receive answers (since 2025-11)"),
    allow("sendmsg", "send queries (since 2025-11)"),
];

const TTY: &[Rule] = &[allow_if(
    "ioctl",
    IOCTL_TTY,
    "terminal attributes and window size",
)];

const RECVFD: &[Rule] = &[
    allow(
        "recvmsg",
        "receive messages, including descriptors (msghdr is not visible to seccomp)",
    ),
    allow("recvmmsg", "receive many messages"),
];

const SENDFD: &[Rule] = &[
    allow(
        "sendmsg",
        "send messages, including descriptors (msghdr is not visible to seccomp)",
    ),
    allow("sendmmsg", "send many messages (glibc's resolver uses it)"),
];

const PROC: &[Rule] = &[
    allow("fork", "create processes"),
    allow("vfork", "create processes"),
    allow_if("clone", CLONE_RESTRICT, "create processes and threads"),
    allow("kill", "signal any process the uid may signal"),
    allow("tgkill", "signal any thread the uid may signal"),
    allow(
        "tkill",
        "signal any thread (stdio's tkill reaches only the main thread; musl's raise and pthread_kill use tkill)",
    ),
    allow(
        "sched_setaffinity",
        "pin any thread (stdio: only the caller or the main thread)",
    ),
    allow("migrate_pages", "NUMA page placement of any process"),
    allow("get_robust_list", "thread bookkeeping of any thread"),
    allow("setsid", "new session"),
    allow("setpgid", "process groups"),
    allow("prlimit64", "set resource limits"),
    allow("setrlimit", "set resource limits"),
    allow("getpriority", "scheduling priority"),
    allow("setpriority", "scheduling priority"),
    allow("ioprio_get", "I/O priority"),
    allow("ioprio_set", "I/O priority"),
    allow("sched_getscheduler", "scheduling policy"),
    allow("sched_setscheduler", "scheduling policy"),
    allow("sched_get_priority_min", "scheduling policy"),
    allow("sched_get_priority_max", "scheduling policy"),
    allow("sched_getparam", "scheduling policy"),
    allow("sched_setparam", "scheduling policy"),
];

const ID: &[Rule] = &[
    allow("setuid", "change user id"),
    allow("setreuid", "change user id"),
    allow("setresuid", "change user id"),
    allow("setgid", "change group id"),
    allow("setregid", "change group id"),
    allow("setresgid", "change group id"),
    allow("setgroups", "change supplementary groups"),
    allow("setfsuid", "change file system uid"),
    allow("setfsgid", "change file system gid"),
    allow_if(
        "prlimit64",
        TARGET_IS_SELF,
        "set own resource limits (other processes need proc)",
    ),
    allow("setrlimit", "set resource limits"),
    allow("getpriority", "scheduling priority"),
    allow_if(
        "setpriority",
        PRIO_SELF,
        "own scheduling priority (other processes need proc)",
    ),
];

const SETTIME: &[Rule] = &[
    allow("settimeofday", "set the clock"),
    allow("clock_adjtime", "adjust the clock"),
];

const EXEC: &[Rule] = &[
    allow("execve", "run programs"),
    allow("execveat", "run programs"),
];

const PROT_EXEC_RULES: &[Rule] = &[
    allow_if(
        "mmap",
        MMAP_EXEC,
        "executable mappings (JITs, dlopen, the dynamic loader)",
    ),
    allow("mprotect", "make memory executable"),
];

const UNVEIL: &[Rule] = &[
    allow("landlock_create_ruleset", "further unveil calls"),
    allow("landlock_add_rule", "further unveil calls"),
    allow("landlock_restrict_self", "further unveil calls"),
];

const VMINFO: &[Rule] = &[allow(
    "sched_yield",
    "placeholder (its real effect is the CLI's auto-unveil of /proc files)",
)];

const TMPPATH: &[Rule] = &[
    allow("lstat", "inspect temporary files"),
    allow(
        "unlink",
        "remove temporary files (anywhere: seccomp cannot see paths)",
    ),
    allow(
        "unlinkat",
        "remove temporary files (anywhere: seccomp cannot see paths)",
    ),
];

impl Promise {
    /// The rule table of this promise.
    pub fn rules(self) -> &'static [Rule] {
        match self {
            Promise::Stdio => STDIO,
            Promise::Rpath => RPATH,
            Promise::Wpath => WPATH,
            Promise::Cpath => CPATH,
            Promise::Dpath => DPATH,
            Promise::Flock => FLOCK,
            Promise::Fattr => FATTR,
            Promise::Inet => INET,
            Promise::Unix => UNIX,
            Promise::Dns => DNS,
            Promise::Tty => TTY,
            Promise::Recvfd => RECVFD,
            Promise::Proc => PROC,
            Promise::Exec => EXEC,
            Promise::Id => ID,
            Promise::Unveil => UNVEIL,
            Promise::Sendfd => SENDFD,
            Promise::Settime => SETTIME,
            Promise::ProtExec => PROT_EXEC_RULES,
            Promise::Vminfo => VMINFO,
            Promise::Tmppath => TMPPATH,
            Promise::Chown => CHOWN,
            Promise::Anet => ANET,
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::sandbox::syscalls;

    fn all_rules() -> impl Iterator<Item = (Option<Promise>, &'static Rule)> {
        ALWAYS.iter().map(|r| (None, r)).chain(
            Promise::ALL
                .into_iter()
                .flat_map(|p| p.rules().iter().map(move |r| (Some(p), r))),
        )
    }

    #[test]
    fn every_rule_names_a_real_syscall_and_has_a_reason() {
        for (p, r) in all_rules() {
            let nr = syscalls::number(r.syscall)
                .unwrap_or_else(|| panic!("{p:?}: unknown syscall {}", r.syscall));
            assert!(
                nr < i64::from(ENOSYS_FROM),
                "{p:?} {} is shadowed by ENOSYS",
                r.syscall
            );
            assert!(
                !FORCED_ENOSYS.iter().any(|(n, _)| *n == r.syscall),
                "{p:?} {} is shadowed by ENOSYS",
                r.syscall
            );
            assert!(
                r.reason.trim().len() > 3,
                "{p:?} {} has no reason",
                r.syscall
            );
            if let Cond::When { checks, text } = r.when {
                assert!(!checks.is_empty() && text.len() > 5, "{p:?} {}", r.syscall);
                for c in checks {
                    let (Check::MaskedEq { arg, .. }
                    | Check::MaskedNe { arg, .. }
                    | Check::MaskedIn { arg, .. }
                    | Check::Null { arg }
                    | Check::SelfPid { arg }
                    | Check::SelfOrZero { arg }) = *c;
                    assert!(arg < 6, "{p:?} {}", r.syscall);
                    if let Check::MaskedIn { values, .. } = c {
                        assert!(!values.is_empty(), "{p:?} {}", r.syscall);
                    }
                }
            }
        }
        for (n, reason) in FORCED_ENOSYS {
            assert!(syscalls::number(n).is_some() && !reason.is_empty(), "{n}");
        }
    }

    /// Within one promise a syscall is either unconditional (listed once) or only conditional:
    /// an unconditional entry next to a conditional one would silently void the condition.
    #[test]
    fn no_promise_lists_a_syscall_both_ways_or_twice() {
        for p in Promise::ALL {
            let rules = p.rules();
            for (i, r) in rules.iter().enumerate() {
                for other in &rules[i + 1..] {
                    if other.syscall != r.syscall {
                        continue;
                    }
                    assert!(
                        r.when != Cond::Always && other.when != Cond::Always,
                        "promise `{p}` lists {} unconditionally and again",
                        r.syscall
                    );
                    assert_ne!(r.when, other.when, "promise `{p}` repeats {}", r.syscall);
                }
            }
        }
    }

    /// Spot checks of §2.2 facts that are easy to get wrong.
    #[test]
    fn table_facts() {
        let has = |p: Promise, s: &str| p.rules().iter().any(|r| r.syscall == s);
        let uncond = |p: Promise, s: &str| {
            p.rules()
                .iter()
                .any(|r| r.syscall == s && r.when == Cond::Always)
        };
        assert!(!uncond(Promise::Stdio, "tkill") && has(Promise::Stdio, "tkill"));
        for s in ["sched_setaffinity", "migrate_pages", "get_robust_list"] {
            assert!(!uncond(Promise::Stdio, s) && has(Promise::Stdio, s), "{s}");
        }
        assert!(!uncond(Promise::Id, "prlimit64") && !uncond(Promise::Id, "setpriority"));
        assert!(uncond(Promise::Proc, "prlimit64") && uncond(Promise::Proc, "setpriority"));
        for s in [
            "tkill",
            "sched_setaffinity",
            "migrate_pages",
            "get_robust_list",
        ] {
            assert!(uncond(Promise::Proc, s), "{s}");
        }
        assert!(!uncond(Promise::Stdio, "kill") && has(Promise::Stdio, "kill"));
        assert!(uncond(Promise::Proc, "kill"));
        assert!(!has(Promise::Stdio, "newfstatat"));
        assert!(!has(Promise::Stdio, "sendmsg") && !has(Promise::Stdio, "recvmsg"));
        assert!(uncond(Promise::Dns, "sendmsg") && uncond(Promise::Dns, "recvmsg"));
        assert!(!has(Promise::Anet, "connect"));
        assert!(!has(Promise::Dns, "getsockopt"));
        assert!(uncond(Promise::ProtExec, "mprotect"));
        assert!(uncond(Promise::Rpath, "getdents"));
        assert!(uncond(Promise::Stdio, "rseq") && uncond(Promise::Stdio, "getcpu"));
        let everywhere: Vec<&str> = ["waitid", "ptrace", "mount", "unshare", "seccomp", "bpf"]
            .into_iter()
            .filter(|s| Promise::ALL.iter().any(|p| has(*p, s)))
            .collect();
        assert!(everywhere.is_empty(), "{everywhere:?}");
        assert_eq!(STDIO.len(), 121);
    }
}
