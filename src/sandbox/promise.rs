//! Pledge promises: the names, their bit numbers and the promise-string parser.
//!
//! The promise set is the one of cosmopolitan's `pledge` at HEAD (v1.9 CLI, libc policy of
//! 2025-11-16): 23 promises, bit `i` = promise `i` as in `libc/intrin/promises.h`. The policy each
//! promise grants lives in [`crate::sandbox::seccomp`] (one named rule table per promise).
//!
//! # Differences from pledge.com (HEAD)
//!
//! Deliberate, all on the safe side; everything else follows pledge-semantics.md §2 exactly:
//!
//! * **x32 syscalls are killed, not ENOSYS.** pledge.com returns ENOSYS for every syscall number
//!   ≥ 447, which includes the x32 ABI (bit 0x40000000). We kill the process instead, exactly like a
//!   foreign audit arch: an x86-64 program never makes x32 calls by accident.
//! * **Exec gate (optional, `FilterOptions::exec_gate`).** pledge.com must keep `exec` (and, for
//!   dynamic programs, `rpath prot_exec`) in the launcher's filter and relies on an LD_PRELOAD
//!   re-pledge to drop them. With the gate, `execve`/`execveat` return `SECCOMP_RET_USER_NOTIF` so
//!   the launcher's supervisor can let exactly the launcher's own execve through; afterwards the
//!   kernel fails execve with ENOSYS. File-backed `mmap(PROT_EXEC)` without `PROT_WRITE` is allowed
//!   for the dynamic loader; anonymous executable memory and `mprotect(PROT_EXEC)` stay denied
//!   unless `prot_exec` is promised.
//! * **Audit mode (`Penalty::Log`).** pledge.com v1.9 has no working logging; we offer
//!   `SECCOMP_RET_LOG` as the default action (violations are allowed and logged by the kernel).
//! * **Forced ENOSYS and the arch check are independent of the penalty**, as in pledge.com.
//! * **Installed with `seccomp(2)`**, not `prctl(PR_SET_SECCOMP)`, so flags (listener, LOG, TSYNC)
//!   are available; the filter dispatches by binary search on the syscall number instead of
//!   pledge.com's linear chain (same decisions, fewer instructions per syscall).
//! * **x86-64 only**, like pledge.com's Linux policy: on other architectures `build_filter`
//!   returns `SeccompError::UnsupportedArch` instead of a filter with the wrong numbers.
//!
//! * **Process-targeting calls reach only the process itself without `proc`** (issue 12):
//!   `tkill`, `sched_setaffinity`, `migrate_pages`, `get_robust_list` (stdio) and `prlimit64`,
//!   `setpriority` (id) take 0 or the sandboxed process's own pid; `proc` grants the any-pid forms.
//! * **With unveil active, metadata changes by path are refused** (chmod, chown, utimes and
//!   their `*at` forms; Landlock cannot confine them); descriptor forms stay
//!   ([`crate::sandbox::seccomp::policy::UNVEILED_METADATA`]).
//!
//! Everything else that pledge.com permits and is arguably a footgun (cpath allowing
//! non-creating opens in any mode, `kill`/`tgkill` of any pid in proc, `dns` allowing read-only
//! opens of any file) is reproduced for compatibility; unveil (Landlock) is what limits paths.

use std::fmt;
use std::str::FromStr;

/// Exit status pledge.com uses when the promise list is bad (pledge-semantics.md §1.9).
pub const BAD_PROMISES_EXIT_STATUS: i32 = 21;

/// Longest promise string pledge.com's parser accepts (it rejects 256 bytes or more).
pub const MAX_PROMISES_LEN: usize = 255;

/// One pledge promise. The discriminant is the promise's bit number in the granted mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Promise {
    Stdio = 0,
    Rpath = 1,
    Wpath = 2,
    Cpath = 3,
    Dpath = 4,
    Flock = 5,
    Fattr = 6,
    Inet = 7,
    Unix = 8,
    Dns = 9,
    Tty = 10,
    Recvfd = 11,
    Proc = 12,
    Exec = 13,
    Id = 14,
    Unveil = 15,
    Sendfd = 16,
    Settime = 17,
    ProtExec = 18,
    Vminfo = 19,
    Tmppath = 20,
    Chown = 21,
    Anet = 22,
}

impl Promise {
    /// Every promise, in bit order.
    pub const ALL: [Promise; 23] = [
        Promise::Stdio,
        Promise::Rpath,
        Promise::Wpath,
        Promise::Cpath,
        Promise::Dpath,
        Promise::Flock,
        Promise::Fattr,
        Promise::Inet,
        Promise::Unix,
        Promise::Dns,
        Promise::Tty,
        Promise::Recvfd,
        Promise::Proc,
        Promise::Exec,
        Promise::Id,
        Promise::Unveil,
        Promise::Sendfd,
        Promise::Settime,
        Promise::ProtExec,
        Promise::Vminfo,
        Promise::Tmppath,
        Promise::Chown,
        Promise::Anet,
    ];

    /// The promise's name as written in a promise string.
    pub const fn name(self) -> &'static str {
        match self {
            Promise::Stdio => "stdio",
            Promise::Rpath => "rpath",
            Promise::Wpath => "wpath",
            Promise::Cpath => "cpath",
            Promise::Dpath => "dpath",
            Promise::Flock => "flock",
            Promise::Fattr => "fattr",
            Promise::Inet => "inet",
            Promise::Unix => "unix",
            Promise::Dns => "dns",
            Promise::Tty => "tty",
            Promise::Recvfd => "recvfd",
            Promise::Proc => "proc",
            Promise::Exec => "exec",
            Promise::Id => "id",
            Promise::Unveil => "unveil",
            Promise::Sendfd => "sendfd",
            Promise::Settime => "settime",
            Promise::ProtExec => "prot_exec",
            Promise::Vminfo => "vminfo",
            Promise::Tmppath => "tmppath",
            Promise::Chown => "chown",
            Promise::Anet => "anet",
        }
    }

    /// All accepted names, space separated (for error messages and help text).
    pub fn accepted_names() -> String {
        Promise::ALL.map(Promise::name).join(" ")
    }
}

impl fmt::Display for Promise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a promise or promise string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromiseError {
    #[error(
        "unknown promise `{name}`: accepted promises are {}; a pledge CLI reports this as a bad promises list and exits with status {}",
        Promise::accepted_names(),
        BAD_PROMISES_EXIT_STATUS
    )]
    Unknown { name: String },
    #[error(
        "promise string is {len} bytes long: at most {} bytes are accepted, remove duplicate promises; a pledge CLI exits with status {}",
        MAX_PROMISES_LEN,
        BAD_PROMISES_EXIT_STATUS
    )]
    TooLong { len: usize },
}

impl PromiseError {
    #[cfg(test)]
    /// The exit status a pledge-compatible CLI uses for this error.
    pub fn exit_status(&self) -> i32 {
        BAD_PROMISES_EXIT_STATUS
    }
}

impl FromStr for Promise {
    type Err = PromiseError;

    /// Parse one promise name, case-insensitively (`STDIO` = `stdio`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Promise::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| PromiseError::Unknown { name: s.to_owned() })
    }
}

/// A set of promises (the granted mask).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PromiseSet {
    mask: u32,
}

impl PromiseSet {
    /// The empty set: `pledge("")`, only `exit` (and `arch_prctl`) allowed.
    pub const fn empty() -> Self {
        PromiseSet { mask: 0 }
    }

    #[cfg(test)]
    /// Every promise.
    pub fn all() -> Self {
        Promise::ALL.into_iter().collect()
    }

    #[cfg(test)]
    /// Build from a granted mask (bit `i` = promise `i`); unknown bits are an error naming them.
    pub fn from_mask(mask: u32) -> Result<Self, PromiseError> {
        let all = PromiseSet::all().mask;
        if mask & !all != 0 {
            return Err(PromiseError::Unknown {
                name: format!("bit {}", (mask & !all).trailing_zeros()),
            });
        }
        Ok(PromiseSet { mask })
    }

    #[cfg(test)]
    /// The granted mask (bit `i` = promise `i` granted), as in pledge's `_PLEDGE` variable.
    pub const fn mask(self) -> u32 {
        self.mask
    }

    /// Parse a promise string exactly as pledge.com does: tokens separated by space, tab, CR or
    /// LF, case-insensitive, duplicates allowed, the empty string is the empty set, and one
    /// unknown token (or a string of 256 bytes or more) rejects the whole list.
    pub fn parse(s: &str) -> Result<Self, PromiseError> {
        if s.len() > MAX_PROMISES_LEN {
            return Err(PromiseError::TooLong { len: s.len() });
        }
        s.split([' ', '\t', '\r', '\n'])
            .filter(|t| !t.is_empty())
            .map(Promise::from_str)
            .collect()
    }

    pub const fn contains(self, p: Promise) -> bool {
        self.mask & (1 << p as u32) != 0
    }

    pub fn insert(&mut self, p: Promise) {
        self.mask |= 1 << p as u32;
    }

    pub fn remove(&mut self, p: Promise) {
        self.mask &= !(1 << p as u32);
    }

    /// This set plus `p`.
    #[cfg(test)]
    pub fn with(mut self, p: Promise) -> Self {
        self.insert(p);
        self
    }

    /// This set minus `p`.
    pub fn without(mut self, p: Promise) -> Self {
        self.remove(p);
        self
    }

    pub const fn is_empty(self) -> bool {
        self.mask == 0
    }

    #[cfg(test)]
    pub const fn len(self) -> usize {
        self.mask.count_ones() as usize
    }

    /// The granted promises in bit order.
    pub fn iter(self) -> impl Iterator<Item = Promise> {
        Promise::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

impl FromStr for PromiseSet {
    type Err = PromiseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PromiseSet::parse(s)
    }
}

impl FromIterator<Promise> for PromiseSet {
    fn from_iter<I: IntoIterator<Item = Promise>>(iter: I) -> Self {
        let mut set = PromiseSet::empty();
        for p in iter {
            set.insert(p);
        }
        set
    }
}

impl IntoIterator for PromiseSet {
    type Item = Promise;
    type IntoIter = std::vec::IntoIter<Promise>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter().collect::<Vec<_>>().into_iter()
    }
}

/// Space-separated names in bit order; parsing the output gives the same set back.
impl fmt::Display for PromiseSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(p.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_promise_parses_by_name_and_bit_matches_position() {
        for (i, p) in Promise::ALL.into_iter().enumerate() {
            assert_eq!(p as usize, i, "{p}");
            assert_eq!(p.name().parse::<Promise>().unwrap(), p);
            assert_eq!(p.name().to_uppercase().parse::<Promise>().unwrap(), p);
            assert_eq!(p.to_string(), p.name());
        }
        assert_eq!(Promise::ALL.len(), 23);
    }

    #[test]
    fn head_names_are_exactly_the_cosmopolitan_ones() {
        assert_eq!(
            Promise::accepted_names(),
            "stdio rpath wpath cpath dpath flock fattr inet unix dns tty recvfd proc exec id \
             unveil sendfd settime prot_exec vminfo tmppath chown anet"
        );
    }

    #[test]
    fn unknown_promise_is_named_and_lists_accepted_names() {
        for bad in [
            "thread",
            "error",
            "audio",
            "wroute",
            "ps",
            "stdio,rpath",
            "std io",
        ] {
            let err = PromiseSet::parse(bad).unwrap_err();
            let msg = err.to_string();
            assert_eq!(err.exit_status(), 21);
            assert!(msg.contains("status 21"), "{msg}");
            assert!(msg.contains("prot_exec"), "{msg}");
        }
        let err = PromiseSet::parse("stdio thread rpath").unwrap_err();
        assert_eq!(
            err,
            PromiseError::Unknown {
                name: "thread".into()
            }
        );
        assert!(err.to_string().starts_with("unknown promise `thread`"));
    }

    #[test]
    fn separators_case_and_duplicates() {
        let set = PromiseSet::parse(" stdio\tRPATH\r\ninet  stdio ").unwrap();
        assert_eq!(set.len(), 3);
        assert!(set.contains(Promise::Stdio));
        assert!(set.contains(Promise::Rpath));
        assert!(set.contains(Promise::Inet));
        assert!(!set.contains(Promise::Dns));
        assert_eq!(set.to_string(), "stdio rpath inet");
        assert_eq!(set.mask(), 0b1000_0011);
    }

    #[test]
    fn empty_string_is_empty_set() {
        assert!(PromiseSet::parse("").unwrap().is_empty());
        assert!(PromiseSet::parse(" \t\n").unwrap().is_empty());
        assert_eq!(PromiseSet::empty().to_string(), "");
    }

    #[test]
    fn length_limit() {
        let ok = "stdio ".repeat(42) + "rpa"; // 255 bytes
        assert_eq!(ok.len(), 255);
        assert!(PromiseSet::parse(&ok).is_err()); // `rpa` is unknown, but length was accepted
        let ok = format!("{:<255}", "stdio");
        assert!(PromiseSet::parse(&ok).is_ok());
        let long = format!("{:<256}", "stdio");
        assert_eq!(
            PromiseSet::parse(&long).unwrap_err(),
            PromiseError::TooLong { len: 256 }
        );
    }

    #[test]
    fn display_round_trips_for_every_single_promise_and_the_full_set() {
        for p in Promise::ALL {
            let set = PromiseSet::empty().with(p);
            assert_eq!(PromiseSet::parse(&set.to_string()).unwrap(), set);
        }
        let all = PromiseSet::all();
        assert_eq!(all.len(), 23);
        assert_eq!(PromiseSet::parse(&all.to_string()).unwrap(), all);
        assert_eq!(all.iter().collect::<Vec<_>>(), Promise::ALL.to_vec());
    }

    #[test]
    fn mask_round_trip_and_unknown_bits() {
        let set = PromiseSet::parse("stdio rpath").unwrap();
        assert_eq!(set.mask(), 3);
        assert_eq!(PromiseSet::from_mask(3).unwrap(), set);
        assert!(PromiseSet::from_mask(1 << 23).is_err());
        let mut s = set;
        s.remove(Promise::Stdio);
        assert_eq!(s.to_string(), "rpath");
    }
}
