//! Promises → one seccomp-BPF program (pledge-semantics.md §2, HEAD policy), installed last.
//!
//! * [`policy`]: the rules as data, one named table per promise, each rule with a reason;
//! * [`build_filter`]: the union of the granted rules compiled to classic BPF by our own small
//!   assembler ([`bpf`]);
//! * [`install`]: `PR_SET_NO_NEW_PRIVS` + the raw `seccomp(2)` call, optionally returning a
//!   user-notification listener; [`notify`] receives and answers notifications;
//! * [`explain`]: which promise would allow a denied syscall.
//!
//! # Program layout
//!
//! 1. `seccomp_data.arch` must be the build arch (x86-64), else `SECCOMP_RET_KILL_PROCESS`;
//! 2. x32 syscall numbers (bit 0x40000000) → KILL_PROCESS (pledge.com: ENOSYS; see `promise.rs`);
//! 3. nr ≥ 447, `memfd_create`, `openat2`, `clone3` → `ERRNO(ENOSYS)` whatever the penalty, so that
//!    libcs fall back to the older calls the policy knows;
//! 4. a binary search over the allowed syscall numbers (linear below 7 entries), then per
//!    syscall its alternatives in order (each either unconditional or a chain of argument
//!    checks): the first match returns its action, otherwise the penalty;
//! 5. any other syscall: the penalty ([`Penalty`], default `ERRNO(EPERM)`).
//!
//! # The exec gate
//!
//! A launcher must call `execve` after installing the filter, so pledge.com keeps `exec` allowed
//! (for dynamic programs also `rpath prot_exec`) and only an LD_PRELOAD re-pledge takes them away
//! again. With [`FilterOptions::exec_gate`] and `exec` not promised:
//!
//! * `execve`/`execveat` return `SECCOMP_RET_USER_NOTIF`. Install with
//!   [`InstallFlags::NEW_LISTENER`]; the supervisor holding the listener answers the launcher's own
//!   execve with "continue" (the kernel then runs it normally) and then closes the listener. From
//!   then on the kernel fails every execve with ENOSYS, because a USER_NOTIF filter without a
//!   listener answers ENOSYS. The program never gets to run before the one allowed execve has
//!   happened, so nothing untrusted can race for it.
//! * The dynamic loader needs `mmap(PROT_EXEC)` for the program's libraries after that execve, so
//!   `mmap` with PROT_EXEC is additionally allowed when the mapping is **file-backed** (fd ≠ -1, no
//!   MAP_ANONYMOUS) and not also writable. Anonymous executable memory (JIT, shellcode) and
//!   `mprotect(PROT_EXEC)` stay denied unless `prot_exec` is promised, and no mapping can be
//!   writable and executable at once. Which *files* may be mapped is not seccomp's business:
//!   Landlock's EXECUTE right does not govern mmap, so a program that can write a file (wpath/cpath
//!   and an unveiled writable directory) can map it executable; `memfd_create` is ENOSYS.
//!   `rpath` is still needed to open the libraries (pledge.com forces it for dynamic programs).
//!
//! If `exec` is promised, execve is simply allowed; the file-backed mmap rule still applies (so
//! dynamic programs exec'd later load without `prot_exec`).

pub mod bpf;
mod compile;
pub mod explain;
mod install;
pub mod notify;
pub mod policy;

#[cfg(test)]
mod kernel_tests;

pub use bpf::BpfProgram;
pub use compile::build_filter;
#[cfg(test)]
pub use explain::explain_with_pid;
pub use explain::{decode, explain, explain_with_pid as explain_for_pid, Explanation};
pub use install::{install, install_as_self, InstallFlags, SELF_PID_PLACEHOLDER};

/// What a denied syscall gets (the filter's default action).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Penalty {
    /// Fail with this errno and have no effect (pledge.com's default: EPERM).
    Errno(i32),
    /// Kill the whole process with SIGSYS (pledge.com `-k`).
    KillProcess,
    /// Audit mode: allow the call and have the kernel log it (`SECCOMP_RET_LOG`).
    Log,
}

impl Default for Penalty {
    fn default() -> Self {
        Penalty::Errno(libc::EPERM)
    }
}

/// How to build the filter besides the promises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterOptions {
    pub penalty: Penalty,
    /// Return USER_NOTIF for execve/execveat when `exec` is not promised, and allow file-backed,
    /// non-writable executable mmap when `prot_exec` is not (see the module documentation).
    pub exec_gate: bool,
    /// The PID that `kill`/`tgkill` may target under `stdio` ("self"). `None` = the PID of the
    /// process that calls [`build_filter`], which is right when the same process installs the
    /// filter and then execs in place (the pledge CLI). A caller that builds the filter for a
    /// child must pass the child's PID.
    pub self_pid: Option<i32>,
    /// Landlock filesystem rules (unveil) are enforced. Landlock has no right for metadata, so
    /// then the path-based mode, owner and timestamp changes are refused whatever the promises
    /// and only their descriptor forms stay ([`policy::UNVEILED_METADATA`]).
    pub unveiled: bool,
}

/// A filter action (`SECCOMP_RET_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Allow,
    Errno(u16),
    KillProcess,
    Log,
    UserNotif,
}

pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
pub const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

impl Action {
    /// The 32-bit return value of the filter.
    pub fn ret(self) -> u32 {
        match self {
            Action::Allow => SECCOMP_RET_ALLOW,
            Action::Errno(e) => SECCOMP_RET_ERRNO | u32::from(e),
            Action::KillProcess => SECCOMP_RET_KILL_PROCESS,
            Action::Log => SECCOMP_RET_LOG,
            Action::UserNotif => SECCOMP_RET_USER_NOTIF,
        }
    }

    /// Inverse of [`Action::ret`] for the values our filters return.
    #[cfg(test)]
    pub fn from_ret(ret: u32) -> Option<Action> {
        Some(match ret & 0xffff_0000 {
            SECCOMP_RET_ALLOW => Action::Allow,
            SECCOMP_RET_ERRNO => Action::Errno((ret & 0xffff) as u16),
            SECCOMP_RET_KILL_PROCESS => Action::KillProcess,
            SECCOMP_RET_LOG => Action::Log,
            SECCOMP_RET_USER_NOTIF => Action::UserNotif,
            _ => return None,
        })
    }
}

/// Errors building, installing or serving a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("the pledge syscall policy is defined for x86_64 only, this binary is built for {arch}: run the x86_64 build")]
    UnsupportedArch { arch: &'static str },
    #[error(
        "policy names syscall `{name}`, which this architecture does not have: fix the rule table"
    )]
    UnknownSyscall { name: &'static str },
    #[error("penalty errno {errno} is outside 1..=4095: use a real errno such as EPERM (1)")]
    BadErrno { errno: i32 },
    #[error(
        "conditional jump at instruction {pc} is longer than 255 instructions: split the rule"
    )]
    JumpTooFar { pc: usize },
    #[error("filter has {insns} instructions, more than the kernel's 4096: grant fewer promises")]
    ProgramTooLarge { insns: usize },
    #[error("{len} bytes are not a seccomp program (a multiple of 8 bytes, 1..=4096 instructions): pass the output of BpfProgram::to_bytes")]
    BadProgramBytes { len: usize },
    #[error("filter assembler bug: {what}")]
    Internal { what: &'static str },
    #[error("prctl(PR_SET_NO_NEW_PRIVS) failed")]
    NoNewPrivs { source: std::io::Error },
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}) refused the filter (needs a kernel with CONFIG_SECCOMP_FILTER; a listener needs Linux 5.0, and TSYNC cannot be combined with NEW_LISTENER)")]
    Install { flags: u32, source: std::io::Error },
    #[error("seccomp notification {op} on listener failed")]
    Notify {
        op: &'static str,
        source: std::io::Error,
    },
}
