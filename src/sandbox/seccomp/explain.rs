//! Explaining a denied syscall: which promise would allow it, or which condition failed.

use std::fmt;

use super::policy::{self, Cond};
use crate::sandbox::promise::Promise;
use crate::sandbox::syscalls;

/// What the policy says about one syscall with given arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    pub nr: i64,
    pub syscall: Option<&'static str>,
    pub args: [u64; 6],
    pub verdict: Verdict,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed whatever the promises.
    AlwaysAllowed { reason: &'static str },
    /// Always fails with ENOSYS.
    ForcedEnosys { reason: &'static str },
    /// x32 or a number the filter cannot treat: the process is killed.
    Killed,
    /// These promises allow the call with these arguments (with each rule's reason).
    NeedsPromise(Vec<(Promise, &'static str)>),
    /// Promises allow the syscall, but none with these arguments: each promise and the condition
    /// its rule(s) require.
    ConditionNotMet(Vec<(Promise, Vec<&'static str>)>),
    /// No promise allows this syscall.
    NoPromise,
}

/// Explain syscall `nr` with `args` under the policy; `kill`/`tgkill` "to self" count as not
/// allowed by `stdio` (the target PID is unknown here; see [`explain_with_pid`]).
pub fn explain(nr: i64, args: &[u64; 6]) -> Explanation {
    explain_with_pid(nr, args, None)
}

/// [`explain`], knowing which PID counts as the sandboxed process itself.
pub fn explain_with_pid(nr: i64, args: &[u64; 6], self_pid: Option<i32>) -> Explanation {
    let syscall = syscalls::name(nr);
    let verdict = verdict(nr, syscall, args, self_pid);
    Explanation {
        nr,
        syscall,
        args: *args,
        verdict,
    }
}

fn verdict(nr: i64, name: Option<&'static str>, args: &[u64; 6], pid: Option<i32>) -> Verdict {
    if !(0..i64::from(syscalls::X32_SYSCALL_BIT)).contains(&nr) {
        return Verdict::Killed;
    }
    if nr >= i64::from(policy::ENOSYS_FROM) {
        return Verdict::ForcedEnosys {
            reason: "syscalls newer than the policy (447 and up) fail with ENOSYS so libcs fall back to older calls",
        };
    }
    let Some(name) = name else {
        return Verdict::NoPromise;
    };
    if let Some((_, reason)) = policy::FORCED_ENOSYS.iter().find(|(n, _)| *n == name) {
        return Verdict::ForcedEnosys { reason };
    }
    if let Some(r) = policy::ALWAYS.iter().find(|r| r.syscall == name) {
        return Verdict::AlwaysAllowed { reason: r.reason };
    }
    let mut allowed = Vec::new();
    let mut unmet: Vec<(Promise, Vec<&'static str>)> = Vec::new();
    for p in Promise::ALL {
        let rules: Vec<_> = p.rules().iter().filter(|r| r.syscall == name).collect();
        if let Some(r) = rules.iter().find(|r| r.when.holds(args, pid)) {
            allowed.push((p, r.reason));
        } else if !rules.is_empty() {
            let texts = rules
                .iter()
                .filter_map(|r| match r.when {
                    Cond::When { text, .. } => Some(text),
                    Cond::Always => None,
                })
                .collect();
            unmet.push((p, texts));
        }
    }
    if !allowed.is_empty() {
        Verdict::NeedsPromise(allowed)
    } else if !unmet.is_empty() {
        Verdict::ConditionNotMet(unmet)
    } else {
        Verdict::NoPromise
    }
}

impl Explanation {
    /// The promises that would allow the call as made (empty if none would).
    #[cfg(test)]
    pub fn promises(&self) -> Vec<Promise> {
        match &self.verdict {
            Verdict::NeedsPromise(v) => v.iter().map(|(p, _)| *p).collect(),
            _ => Vec::new(),
        }
    }
}

fn arg(f: &mut fmt::Formatter<'_>, v: u64) -> fmt::Result {
    if v < 4096 {
        write!(f, "{v}")
    } else if v > u64::MAX - 4096 {
        write!(f, "{}", v as i64)
    } else {
        write!(f, "{v:#x}")
    }
}

/// Symbolic names for the argument values the policy looks at, where they help a reader.
fn symbolic(syscall: &str, index: usize, v: u64) -> Option<String> {
    let v32 = v as u32;
    match (syscall, index) {
        ("socket" | "socketpair", 0) => Some(
            match v32 {
                1 => "AF_UNIX",
                2 => "AF_INET",
                10 => "AF_INET6",
                16 => "AF_NETLINK",
                17 => "AF_PACKET",
                _ => return None,
            }
            .to_owned(),
        ),
        ("open", 1) | ("openat", 2) => Some(format!("{v32:#o}")),
        ("ioctl", 1) | ("prctl", 0) if v32 >= 4096 => Some(format!("{v32:#x}")),
        ("mmap" | "mprotect", 2) => {
            let names: Vec<&str> = [(1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC")]
                .into_iter()
                .filter(|(bit, _)| v32 & bit != 0)
                .map(|(_, n)| n)
                .collect();
            Some(if names.is_empty() {
                "PROT_NONE".to_owned()
            } else {
                names.join("|")
            })
        }
        ("fchmod" | "chmod" | "creat", 1) | ("fchmodat", 2) | ("open", 2) | ("openat", 3) => {
            Some(format!("{v32:#o}"))
        }
        _ => None,
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.syscall {
            Some(n) => write!(f, "{n}(")?,
            None => write!(f, "syscall {}(", self.nr)?,
        }
        for (i, a) in self.args.iter().take(3).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match self.syscall.and_then(|n| symbolic(n, i, *a)) {
                Some(s) => f.write_str(&s)?,
                None => arg(f, *a)?,
            }
        }
        f.write_str(", …)")?;
        self.fmt_verdict(f)?;
        let confined = self.syscall.and_then(|n| {
            policy::UNVEILED_METADATA
                .iter()
                .find(|(name, _)| *name == n)
        });
        match confined {
            Some((_, Some(Cond::When { text, .. })))
                if matches!(self.verdict, Verdict::NeedsPromise(_)) =>
            {
                write!(f, "; with unveil active only when {text}")?;
            }
            Some((_, None)) if matches!(self.verdict, Verdict::NeedsPromise(_)) => f.write_str(
                "; with unveil active never by path (Landlock cannot confine metadata): use the descriptor form",
            )?,
            _ => {}
        }
        Ok(())
    }
}

impl Explanation {
    fn fmt_verdict(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Verdict::AlwaysAllowed { reason } => write!(f, " is always allowed ({reason})"),
            Verdict::ForcedEnosys { reason } => {
                write!(f, " always fails with ENOSYS under pledge: {reason}")
            }
            Verdict::Killed => f.write_str(
                " is not an x86-64 syscall (x32 or foreign ABI): the filter kills the process",
            ),
            Verdict::NeedsPromise(v) => {
                write!(f, " needs promise `{}`", v[0].0)?;
                for (p, _) in &v[1..] {
                    write!(f, " or `{p}`")?;
                }
                write!(f, " ({})", v[0].1)
            }
            Verdict::ConditionNotMet(v) => {
                f.write_str(" is not allowed with these arguments by any promise:")?;
                for (i, (p, texts)) in v.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ";" };
                    write!(f, "{sep} `{p}` allows it only when {}", texts.join(", or "))?;
                }
                Ok(())
            }
            Verdict::NoPromise => f.write_str(" is not allowed by any promise"),
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    #[test]
    fn metadata_calls_say_what_unveil_leaves() {
        let chmod = syscalls::number("chmod").unwrap();
        let text = explain(chmod, &[0x1000, 0o644, 0, 0, 0, 0]).to_string();
        assert!(text.contains("needs promise `wpath` or `fattr`"), "{text}");
        assert!(text.contains("with unveil active never by path"), "{text}");
        let ut = syscalls::number("utimensat").unwrap();
        let text = explain(ut, &[3, 0x1000, 0, 0, 0, 0]).to_string();
        assert!(
            text.contains("with unveil active only when the path is NULL"),
            "{text}"
        );
        let fchmod = syscalls::number("fchmod").unwrap();
        let text = explain(fchmod, &[3, 0o644, 0, 0, 0, 0]).to_string();
        assert!(!text.contains("unveil"), "{text}");
    }

    use super::*;

    fn ex(name: &str, args: [u64; 6]) -> Explanation {
        explain(syscalls::number(name).unwrap(), &args)
    }

    #[test]
    fn socket_inet_needs_inet_or_dns() {
        let e = ex("socket", [2, 1, 0, 0, 0, 0]);
        assert_eq!(
            e.promises(),
            vec![Promise::Inet, Promise::Dns, Promise::Anet]
        );
        let s = e.to_string();
        assert!(
            s.starts_with("socket(AF_INET, 1, 0, …) needs promise `inet` or `dns`"),
            "{s}"
        );
        let s = ex("mmap", [0, 4096, 5, 0x22, u64::MAX, 0]).to_string();
        assert!(
            s.starts_with("mmap(0, 0x1000, PROT_READ|PROT_EXEC, …) needs promise `prot_exec`"),
            "{s}"
        );
        assert_eq!(
            ex("socket", [1, 1, 0, 0, 0, 0]).promises(),
            vec![Promise::Unix]
        );
    }

    #[test]
    fn failed_conditions_are_named() {
        // AF_PACKET: socket is in inet/unix/dns/anet, but never for this family
        let e = ex("socket", [17, 3, 0, 0, 0, 0]);
        let s = e.to_string();
        assert!(matches!(e.verdict, Verdict::ConditionNotMet(_)), "{s}");
        assert!(
            s.contains("`inet` allows it only when family is AF_INET"),
            "{s}"
        );
        // open O_WRONLY|O_CREAT with setuid mode
        let e = ex("openat", [0, 0, 0o101, 0o4755, 0, 0]);
        let s = e.to_string();
        assert!(
            s.contains("`rpath` allows it only when flags are O_RDONLY"),
            "{s}"
        );
        assert!(
            s.contains("`cpath` allows it only when flags have neither O_CREAT"),
            "{s}"
        );
        assert!(s.contains("mode has no setuid"), "{s}");
        // open O_WRONLY|O_CREAT 0644: cpath
        assert_eq!(
            ex("openat", [0, 0, 0o101, 0o644, 0, 0]).promises(),
            vec![Promise::Cpath]
        );
        // O_RDONLY: rpath, cpath (non-creating), dns
        assert_eq!(
            ex("openat", [0, 0, 0, 0, 0, 0]).promises(),
            vec![Promise::Rpath, Promise::Cpath, Promise::Dns]
        );
    }

    #[test]
    fn special_sets() {
        assert!(matches!(
            ex("exit", [0; 6]).verdict,
            Verdict::AlwaysAllowed { .. }
        ));
        assert!(matches!(
            ex("clone3", [0; 6]).verdict,
            Verdict::ForcedEnosys { .. }
        ));
        assert!(matches!(
            ex("fchmodat2", [0; 6]).verdict,
            Verdict::ForcedEnosys { .. }
        ));
        assert_eq!(ex("waitid", [0; 6]).verdict, Verdict::NoPromise);
        assert_eq!(
            ex("waitid", [0; 6]).to_string(),
            "waitid(0, 0, 0, …) is not allowed by any promise"
        );
        assert_eq!(explain(0x4000_0001, &[0; 6]).verdict, Verdict::Killed);
        assert_eq!(explain(-1, &[0; 6]).verdict, Verdict::Killed);
        assert_eq!(explain(440, &[0; 6]).verdict, Verdict::NoPromise); // process_madvise
        assert_eq!(ex("execve", [0; 6]).promises(), vec![Promise::Exec]);
        assert_eq!(
            ex("mprotect", [0, 0, 5, 0, 0, 0]).promises(),
            vec![Promise::ProtExec]
        );
    }

    #[test]
    fn kill_to_self_depends_on_the_pid() {
        assert_eq!(
            ex("kill", [77, 9, 0, 0, 0, 0]).promises(),
            vec![Promise::Proc]
        );
        let e = explain_with_pid(62, &[77, 9, 0, 0, 0, 0], Some(77));
        assert_eq!(e.promises(), vec![Promise::Stdio, Promise::Proc]);
    }
}

/// A denied call as a task event shows it: the call with the arguments that matter decoded
/// (`socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC)`, `ioctl(1, TCGETS)`), and the fix.
pub mod decode {
    use super::{Explanation, Verdict};

    /// Terminal ioctls (`TCGETS` … the `0x54xx` group): a program asking whether a descriptor is
    /// a terminal (isatty) on a pipe or file is refused without `tty`, and normally copes.
    pub fn is_terminal_probe(e: &Explanation) -> bool {
        e.syscall == Some("ioctl") && (e.args[1] as u32) & 0xff00 == 0x5400
    }

    fn socket_type(v: u64) -> String {
        let v = v as u32;
        let base = match v & 0xf {
            1 => "SOCK_STREAM".to_string(),
            2 => "SOCK_DGRAM".to_string(),
            3 => "SOCK_RAW".to_string(),
            5 => "SOCK_SEQPACKET".to_string(),
            n => n.to_string(),
        };
        let mut s = base;
        if v & libc::SOCK_CLOEXEC as u32 != 0 {
            s += "|SOCK_CLOEXEC";
        }
        if v & libc::SOCK_NONBLOCK as u32 != 0 {
            s += "|SOCK_NONBLOCK";
        }
        s
    }

    fn family(v: u64) -> String {
        match v as u32 {
            1 => "AF_UNIX".into(),
            2 => "AF_INET".into(),
            10 => "AF_INET6".into(),
            16 => "AF_NETLINK".into(),
            17 => "AF_PACKET".into(),
            n => n.to_string(),
        }
    }

    fn ioctl_request(v: u64) -> String {
        let name = match v as u32 {
            0x5401 => "TCGETS",
            0x5402 => "TCSETS",
            0x5403 => "TCSETSW",
            0x5404 => "TCSETSF",
            0x540e => "TIOCSCTTY",
            0x540f => "TIOCGPGRP",
            0x5410 => "TIOCSPGRP",
            0x5412 => "TIOCSTI",
            0x5413 => "TIOCGWINSZ",
            0x5414 => "TIOCSWINSZ",
            0x541b => "FIONREAD",
            0x5421 => "FIONBIO",
            0x5429 => "TIOCGSID",
            0x5451 => "FIOCLEX",
            0x5450 => "FIONCLEX",
            0x802c542a => "TCGETS2",
            _ => return format!("{:#x}", v as u32),
        };
        name.to_string()
    }

    fn plain(v: u64) -> String {
        if v < 4096 {
            v.to_string()
        } else if v > u64::MAX - 4096 {
            (v as i64).to_string()
        } else {
            format!("{v:#x}")
        }
    }

    /// The call with its decoded arguments.
    pub fn call(e: &Explanation) -> String {
        let a = &e.args;
        let name = e
            .syscall
            .map(str::to_string)
            .unwrap_or_else(|| format!("syscall_{}", e.nr));
        let args: Vec<String> = match e.syscall {
            Some("socket") => {
                let mut v = vec![family(a[0]), socket_type(a[1])];
                if a[2] != 0 {
                    v.push(a[2].to_string());
                }
                v
            }
            Some("socketpair") => vec![family(a[0]), socket_type(a[1])],
            Some("ioctl") => vec![(a[0] as i32).to_string(), ioctl_request(a[1])],
            Some("kill" | "tkill") => vec![(a[0] as i32).to_string(), a[1].to_string()],
            Some(n) => (0..3)
                .map(|i| super::symbolic(n, i, a[i]).unwrap_or_else(|| plain(a[i])))
                .collect(),
            None => (0..3).map(|i| plain(a[i])).collect(),
        };
        format!("{name}({})", args.join(", "))
    }

    /// What would allow the call: `needs promise inet (or dns, anet)`.
    pub fn fix(e: &Explanation) -> String {
        match &e.verdict {
            Verdict::NeedsPromise(v) => {
                let mut s = format!("needs promise {}", v[0].0);
                if v.len() > 1 {
                    let rest: Vec<String> = v[1..].iter().map(|(p, _)| p.to_string()).collect();
                    s += &format!(" (or {})", rest.join(", "));
                }
                s
            }
            Verdict::ConditionNotMet(v) => {
                let parts: Vec<String> = v
                    .iter()
                    .map(|(p, t)| format!("promise {p} allows it only when {}", t.join(", or ")))
                    .collect();
                format!(
                    "is not allowed with these arguments by any promise ({})",
                    parts.join("; ")
                )
            }
            Verdict::NoPromise => "is not allowed by any promise".into(),
            Verdict::AlwaysAllowed { .. } => "is allowed by every promise set".into(),
            Verdict::ForcedEnosys { .. } => "always fails with ENOSYS under pledge".into(),
            Verdict::Killed => "is not an x86-64 syscall".into(),
        }
    }

    /// The dedup key: the syscall and what would allow it (`socket needs promise inet`), so
    /// `socket(AF_INET)` and `socket(AF_UNIX)` are two denials, 22 `ioctl(TCGETS)` one.
    pub fn key(e: &Explanation) -> String {
        let promises = match &e.verdict {
            Verdict::NeedsPromise(v) => v
                .iter()
                .map(|(p, _)| p.to_string())
                .collect::<Vec<_>>()
                .join(","),
            Verdict::ConditionNotMet(v) => format!(
                "cond:{}",
                v.iter()
                    .map(|(p, _)| p.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            other => format!("{:?}", std::mem::discriminant(other)),
        };
        let name = e.syscall.map_or_else(|| e.nr.to_string(), str::to_string);
        if is_terminal_probe(e) {
            return format!("{name} tty-probe {promises}");
        }
        format!("{name} {promises}")
    }

    #[cfg(all(test, target_arch = "x86_64"))]
    mod tests {
        use super::super::explain;
        use super::*;
        use crate::sandbox::syscalls;

        fn ex(name: &str, args: [u64; 6]) -> Explanation {
            explain(syscalls::number(name).unwrap(), &args)
        }

        #[test]
        fn calls_and_fixes_read_as_the_events_say() {
            let e = ex("socket", [2, 1 | libc::SOCK_CLOEXEC as u64, 0, 0, 0, 0]);
            assert_eq!(call(&e), "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC)");
            assert!(fix(&e).starts_with("needs promise inet"), "{}", fix(&e));
            let e = ex("ioctl", [1, 0x5401, 0x7ffd_0000, 0, 0, 0]);
            assert_eq!(call(&e), "ioctl(1, TCGETS)");
            assert!(is_terminal_probe(&e));
            assert!(fix(&e).contains("tty"), "{}", fix(&e));
            assert!(!is_terminal_probe(&ex("socket", [2, 1, 0, 0, 0, 0])));
            let e = ex("socket", [1, 1, 0, 0, 0, 0]);
            assert_eq!(fix(&e), "needs promise unix");
            assert_ne!(key(&e), key(&ex("socket", [2, 1, 0, 0, 0, 0])));
            assert_eq!(
                key(&ex("ioctl", [1, 0x5401, 0, 0, 0, 0])),
                key(&ex("ioctl", [2, 0x5401, 0, 0, 0, 0]))
            );
            let e = ex("socket", [17, 3, 0, 0, 0, 0]);
            assert!(fix(&e).contains("only when"), "{}", fix(&e));
        }
    }
}
