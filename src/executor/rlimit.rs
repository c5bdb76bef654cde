//! Per-task process limits: the task config's `ulimit` map (resource limits, docker/podman
//! style `"soft:hard"` values) and `oom_score_adj`, applied by the task child before it drops
//! privileges (root may raise a hard limit; the task user may then only lower it).

use nix::sys::resource::{setrlimit, Resource};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The resources `ulimit` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RlimitName {
    Nofile,
    Nproc,
    Core,
    Fsize,
    Memlock,
    Stack,
    Cpu,
    As,
}

impl RlimitName {
    pub const ACCEPTED: &'static str = "nofile, nproc, core, fsize, memlock, stack, cpu, as";
    const ALL: [(RlimitName, &'static str); 8] = [
        (RlimitName::Nofile, "nofile"),
        (RlimitName::Nproc, "nproc"),
        (RlimitName::Core, "core"),
        (RlimitName::Fsize, "fsize"),
        (RlimitName::Memlock, "memlock"),
        (RlimitName::Stack, "stack"),
        (RlimitName::Cpu, "cpu"),
        (RlimitName::As, "as"),
    ];

    fn resource(self) -> Resource {
        match self {
            RlimitName::Nofile => Resource::RLIMIT_NOFILE,
            RlimitName::Nproc => Resource::RLIMIT_NPROC,
            RlimitName::Core => Resource::RLIMIT_CORE,
            RlimitName::Fsize => Resource::RLIMIT_FSIZE,
            RlimitName::Memlock => Resource::RLIMIT_MEMLOCK,
            RlimitName::Stack => Resource::RLIMIT_STACK,
            RlimitName::Cpu => Resource::RLIMIT_CPU,
            RlimitName::As => Resource::RLIMIT_AS,
        }
    }
}

impl fmt::Display for RlimitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = RlimitName::ALL
            .iter()
            .find(|(n, _)| n == self)
            .map_or("?", |(_, s)| s);
        f.write_str(name)
    }
}

impl FromStr for RlimitName {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        RlimitName::ALL
            .iter()
            .find(|(_, name)| *name == s.trim())
            .map(|(n, _)| *n)
            .ok_or(())
    }
}

/// One resource limit: soft and hard value (`u64::MAX` = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: RlimitName,
    pub soft: u64,
    pub hard: u64,
}

/// The task's process limits (task config `ulimit` and `oom_score_adj`; `pids_limit` is a
/// cgroup limit, in `Resources`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLimits {
    /// Applied in order, after the plugin's own open-file limit is given back.
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    /// -1000..=1000; 0 = the kernel's default.
    #[serde(default)]
    pub oom_score_adj: i32,
}

/// Why a `ulimit` value does not parse (worded for the task config, which names the entry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UlimitError {
    #[error("`{0}` is not a resource; use one of {accepted}", accepted = RlimitName::ACCEPTED)]
    Name(String),
    #[error("`{0}` is not a limit: write a number, \"unlimited\", or \"SOFT:HARD\" (e.g. \"1024:4096\")")]
    Value(String),
    #[error(
        "soft limit {soft} is above hard limit {hard}: the soft limit must be at most the hard one"
    )]
    SoftAboveHard { soft: u64, hard: u64 },
}

fn limit_value(text: &str) -> Result<u64, ()> {
    match text.trim() {
        "unlimited" | "-1" => Ok(u64::MAX),
        t => t.parse().map_err(|_| ()),
    }
}

impl Ulimit {
    /// `name = "SOFT:HARD"` or `name = "N"` (soft = hard = N); `unlimited` for either.
    pub fn parse(name: &str, value: &str) -> Result<Ulimit, UlimitError> {
        let rname = name
            .parse()
            .map_err(|()| UlimitError::Name(name.to_string()))?;
        let bad = |_| UlimitError::Value(value.to_string());
        let (soft, hard) = match value.split_once(':') {
            Some((s, h)) => (limit_value(s).map_err(bad)?, limit_value(h).map_err(bad)?),
            None => {
                let v = limit_value(value).map_err(bad)?;
                (v, v)
            }
        };
        if soft > hard {
            return Err(UlimitError::SoftAboveHard { soft, hard });
        }
        Ok(Ulimit {
            name: rname,
            soft,
            hard,
        })
    }

    /// Sets the limit (a plain syscall: fork-safe). `u64::MAX` is RLIM_INFINITY.
    pub fn apply(&self) -> nix::Result<()> {
        setrlimit(self.name.resource(), self.soft, self.hard)
    }
}

/// The task child's `oom_score_adj` (written before exec; -1000..=1000).
pub fn set_oom_score_adj(value: i32) -> nix::Result<()> {
    // Formatted on the stack and written with plain system calls: the task child may not
    // allocate.
    let mut buf = [0u8; 12];
    let text = format_i32(value, &mut buf);
    let fd = nix::fcntl::open(
        c"/proc/self/oom_score_adj",
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    nix::unistd::write(&fd, text).map(drop)
}

fn format_i32(value: i32, buf: &mut [u8; 12]) -> &[u8] {
    let mut n = value.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if value < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_soft_hard_single_and_unlimited() {
        let u = Ulimit::parse("nofile", "1024:4096").unwrap();
        assert_eq!((u.name, u.soft, u.hard), (RlimitName::Nofile, 1024, 4096));
        let u = Ulimit::parse("core", "0").unwrap();
        assert_eq!((u.soft, u.hard), (0, 0));
        let u = Ulimit::parse("as", "unlimited").unwrap();
        assert_eq!((u.soft, u.hard), (u64::MAX, u64::MAX));
        let u = Ulimit::parse("stack", "8388608:unlimited").unwrap();
        assert_eq!((u.soft, u.hard), (8388608, u64::MAX));
        for name in [
            "nofile", "nproc", "core", "fsize", "memlock", "stack", "cpu", "as",
        ] {
            let u = Ulimit::parse(name, "1").unwrap();
            assert_eq!(u.name.to_string(), name);
        }
    }

    #[test]
    fn errors_name_the_fix() {
        assert!(Ulimit::parse("files", "1")
            .unwrap_err()
            .to_string()
            .contains("nofile, nproc, core"));
        assert!(Ulimit::parse("nofile", "many")
            .unwrap_err()
            .to_string()
            .contains("SOFT:HARD"));
        assert!(Ulimit::parse("nofile", "1:2:3").is_err());
        assert_eq!(
            Ulimit::parse("nofile", "10:5").unwrap_err(),
            UlimitError::SoftAboveHard { soft: 10, hard: 5 }
        );
    }

    #[test]
    fn formats_oom_scores_without_allocating() {
        let mut b = [0u8; 12];
        assert_eq!(format_i32(0, &mut b), b"0");
        assert_eq!(format_i32(500, &mut b), b"500");
        assert_eq!(format_i32(-1000, &mut b), b"-1000");
        assert_eq!(format_i32(i32::MIN, &mut b), b"-2147483648");
    }
}
