//! Landlock's kernel audit records (Linux 6.15+, Landlock ABI 7), parsed, and the task event
//! each denial becomes: `read /etc/hostname needs unveil "r:/etc/hostname"`.
//!
//! `AUDIT_LANDLOCK_ACCESS` (1423): `domain=HEX blockers=fs.read_file path="/etc/hostname" ...`;
//! `AUDIT_LANDLOCK_DOMAIN` (1424): `domain=HEX status=allocated mode=enforcing pid=N uid=N
//! exe="..." comm="..."` (the process that called `landlock_restrict_self`), or
//! `status=deallocated`. Values with unusual bytes are hex-encoded without quotes.

use std::path::{Path, PathBuf};

use crate::sandbox::learn::summary::by_name;

/// Audit message types.
pub const AUDIT_LANDLOCK_ACCESS: u16 = 1423;
pub const AUDIT_LANDLOCK_DOMAIN: u16 = 1424;

/// One parsed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Access(Access),
    /// A domain was allocated by process `pid` (`exe`).
    Domain {
        domain: u64,
        pid: i32,
        exe: String,
    },
    /// Anything else (deallocation, other types): ignored.
    Other,
}

/// A refused access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub domain: u64,
    /// `fs.read_file`, `fs.make_reg`, `net.connect_tcp`, ...
    pub blockers: Vec<String>,
    /// The path, when the access names one.
    pub path: Option<String>,
}

/// Parses one netlink audit message of type `ty` (text `audit(T:S): k=v ...`).
pub fn parse(ty: u16, text: &str) -> Record {
    let body = text
        .split_once("): ")
        .map_or(text, |(_, b)| b)
        .trim_end_matches('\0');
    let fields = fields(body);
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(domain) = get("domain").and_then(|d| u64::from_str_radix(&d, 16).ok()) else {
        return Record::Other;
    };
    match ty {
        AUDIT_LANDLOCK_ACCESS => Record::Access(Access {
            domain,
            blockers: get("blockers")
                .map(|b| b.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
            path: get("path"),
        }),
        AUDIT_LANDLOCK_DOMAIN if get("status").as_deref() == Some("allocated") => {
            match get("pid").and_then(|p| p.parse().ok()) {
                Some(pid) => Record::Domain {
                    domain,
                    pid,
                    exe: get("exe").unwrap_or_default(),
                },
                None => Record::Other,
            }
        }
        _ => Record::Other,
    }
}

/// `k=v` pairs; `"quoted"` values unquoted, hex-encoded path-like values decoded.
fn fields(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = body.trim_start();
    while let Some((k, after)) = rest.split_once('=') {
        let k = k.trim().to_string();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            match q.split_once('"') {
                Some((v, n)) => (v.to_string(), n),
                None => (q.to_string(), ""),
            }
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            let raw = &after[..end];
            let v = if matches!(k.as_str(), "path" | "exe" | "comm" | "name") {
                unhex(raw).unwrap_or_else(|| raw.to_string())
            } else {
                raw.to_string()
            };
            (v, &after[end..])
        };
        out.push((k, v));
        rest = next.trim_start();
    }
    out
}

fn unhex(s: &str) -> Option<String> {
    if s.is_empty() || s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect();
    Some(String::from_utf8_lossy(&bytes?).into_owned())
}

/// What was refused, in words, and the unveil permission letter that grants it (the same
/// table as `Perms::rights`; rights no letter grants have no entry).
fn access_words(blocker: &str) -> Option<(&'static str, char)> {
    Some(match blocker {
        "fs.read_file" => ("read", 'r'),
        "fs.read_dir" => ("list directory", 'r'),
        "fs.write_file" => ("write", 'w'),
        "fs.truncate" => ("truncate", 'w'),
        "fs.resolve_unix" => ("connect to", 'w'),
        "fs.execute" => ("execute", 'x'),
        "fs.make_reg" | "fs.make_dir" | "fs.make_sym" | "fs.make_fifo" | "fs.make_sock"
        | "fs.make_char" | "fs.make_block" => ("create in", 'c'),
        "fs.remove_file" | "fs.remove_dir" => ("remove in", 'c'),
        // Granted with `r` on a directory (see `Perms::rights`).
        "fs.refer" => ("link or rename across directories in", 'r'),
        _ => return None,
    })
}

impl Access {
    /// The dedup key: the path and the blockers.
    pub fn key(&self) -> String {
        format!(
            "{} {}",
            self.blockers.join(","),
            self.path.as_deref().unwrap_or("")
        )
    }

    /// The task event text: `read /etc/hostname needs unveil "r:/etc/hostname"`; in the entry a
    /// path below one of the task's `named` directories is written by its name
    /// (`"r:${NOMAD_TASK_DIR}/conf"`), as a job writes it.
    pub fn message(&self, named: &[(PathBuf, String)]) -> String {
        let path = self.path.as_deref().unwrap_or("(no path)");
        let known: Vec<(&str, char)> = self
            .blockers
            .iter()
            .filter_map(|b| access_words(b))
            .collect();
        if known.is_empty() || self.path.is_none() {
            return format!(
                "landlock denied {} on {path} (no unveil entry allows it)",
                self.blockers.join(",")
            );
        }
        let mut what: Vec<&str> = known.iter().map(|(w, _)| *w).collect();
        what.dedup();
        let mut perms: Vec<char> = Vec::new();
        for c in ['r', 'w', 'x', 'c'] {
            if known.iter().any(|(_, p)| *p == c) {
                perms.push(c);
            }
        }
        let perms: String = perms.into_iter().collect();
        let entry = by_name(Path::new(path), named);
        format!(
            "{} {path} needs unveil \"{perms}:{entry}\"",
            what.join(" and ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_records_become_the_fix() {
        let r = parse(
            AUDIT_LANDLOCK_ACCESS,
            "audit(1733.100:42): domain=1a2b3c blockers=fs.read_file path=\"/etc/hostname\" dev=\"vda1\" ino=123",
        );
        let Record::Access(a) = r else {
            panic!("{r:?}")
        };
        assert_eq!(a.domain, 0x1a2b3c);
        assert_eq!(
            a.message(&[]),
            "read /etc/hostname needs unveil \"r:/etc/hostname\""
        );
        let r = parse(
            AUDIT_LANDLOCK_ACCESS,
            "audit(1.2:3): domain=9 blockers=fs.write_file,fs.truncate path=2F746D702F6120620A dev=\"x\"",
        );
        let Record::Access(a) = r else {
            panic!("{r:?}")
        };
        assert_eq!(a.path.as_deref(), Some("/tmp/a b\n"));
        assert!(
            a.message(&[]).starts_with("write and truncate /tmp/a b"),
            "{}",
            a.message(&[])
        );
        assert!(a.message(&[]).ends_with("needs unveil \"w:/tmp/a b\n\""));
    }

    #[test]
    fn domain_records_name_the_process() {
        let r = parse(
            AUDIT_LANDLOCK_DOMAIN,
            "audit(1.2:3): domain=1a2b3c status=allocated mode=enforcing pid=4242 uid=65534 exe=\"/usr/bin/cat\" comm=\"cat\"",
        );
        assert_eq!(
            r,
            Record::Domain {
                domain: 0x1a2b3c,
                pid: 4242,
                exe: "/usr/bin/cat".into()
            }
        );
        let r = parse(
            AUDIT_LANDLOCK_DOMAIN,
            "audit(1.2:3): domain=1a2b3c status=deallocated denials=3",
        );
        assert_eq!(r, Record::Other);
        assert_eq!(parse(AUDIT_LANDLOCK_ACCESS, "garbage"), Record::Other);
        assert_eq!(parse(AUDIT_LANDLOCK_ACCESS, ""), Record::Other);
    }

    #[test]
    fn accesses_without_an_unveil_fix_say_so() {
        let a = Access {
            domain: 1,
            blockers: vec!["net.connect_tcp".into()],
            path: None,
        };
        assert!(
            a.message(&[]).contains("no unveil entry"),
            "{}",
            a.message(&[])
        );
    }
}
