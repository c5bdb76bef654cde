//! Unveil entries that match nothing (issue 16 item 3).
//!
//! pledge.com skips an unveil entry whose path does not exist, silently; a mistyped path
//! (`r:/etc/hostnme`) then shows up only as the program's `Permission denied`. This module
//! decides, for one entry, whether it matches nothing, and words the warning that the plugin
//! (task event + log line), `run` (which prints task events) and `pledge -T unveil` show.
//!
//! An entry matches nothing when, and only when:
//! - its path does not exist (`ENOENT`, from a missing last component or a missing directory on
//!   the way): the launcher skips the entry;
//! - its path is a symlink whose chain ends at a path that does not exist (a dangling
//!   symlink): the launcher puts the rule on the link itself, which grants nothing a program
//!   can use, since opening the link follows it. Chains that pass through `/proc` are magic
//!   links (`/dev/stdin` → `/proc/self/fd/0` → `pipe:[…]`), whose targets are not paths: they
//!   are never reported.
//!
//! Any other error (`EACCES` on a directory on the way, `ENOTDIR`, a symlink loop) is not
//! "matches nothing": the launcher refuses the entry with that error and the task fails.

use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::unveil::UnveilRule;

/// The same bound as the launcher's resolution of an entry's symlinks.
const MAX_HOPS: usize = 64;

/// Why an entry matches nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoMatch {
    /// The path does not exist.
    NoSuchFile,
    /// The path is a symlink whose chain ends at `target`, which does not exist.
    Dangling { target: PathBuf },
}

/// One unveil entry that matches nothing, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    /// The entry as the user wrote it after resolution (`r:/etc/hostnme`).
    pub entry: String,
    pub why: NoMatch,
}

impl Unmatched {
    /// The problem without the consequence (`unveil "r:/x": no such file`), for an error.
    pub fn problem(&self) -> String {
        match &self.why {
            NoMatch::NoSuchFile => format!("unveil \"{}\": no such file", self.entry),
            NoMatch::Dangling { target } => format!(
                "unveil \"{}\": dangling symlink to {} (no such file)",
                self.entry,
                target.display()
            ),
        }
    }
}

impl fmt::Display for Unmatched {
    /// The warning: the problem and what the launcher does about it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let then = match self.why {
            NoMatch::NoSuchFile => "skipped",
            NoMatch::Dangling { .. } => "matches nothing",
        };
        write!(f, "{}; {then}", self.problem())
    }
}

/// Whether `rule` matches nothing on this file system (see the module docs for what counts).
pub fn check(rule: &UnveilRule) -> Option<Unmatched> {
    let why = no_match(&rule.path)?;
    Some(Unmatched {
        entry: rule.to_string(),
        why,
    })
}

/// Every entry of `rules` that matches nothing, in order.
pub fn check_all(rules: &[UnveilRule]) -> Vec<Unmatched> {
    rules.iter().filter_map(check).collect()
}

fn no_match(path: &Path) -> Option<NoMatch> {
    let mut cur = path.to_path_buf();
    let mut hops = 0;
    loop {
        if hops > 0 && cur.starts_with("/proc") {
            return None;
        }
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                if hops == MAX_HOPS {
                    return None;
                }
                let target = std::fs::read_link(&cur).ok()?;
                cur = if target.is_absolute() {
                    target
                } else {
                    cur.parent().unwrap_or(Path::new("/")).join(target)
                };
                hops += 1;
            }
            Ok(_) => return None,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Some(if hops == 0 {
                    NoMatch::NoSuchFile
                } else {
                    NoMatch::Dangling { target: cur }
                });
            }
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> UnveilRule {
        s.parse().unwrap()
    }

    #[test]
    fn missing_paths_and_dangling_links_match_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n).display().to_string();
        std::fs::write(d.path().join("f"), "x").unwrap();
        std::os::unix::fs::symlink(d.path().join("f"), d.path().join("good")).unwrap();
        std::os::unix::fs::symlink("nowhere", d.path().join("dangling")).unwrap();
        std::os::unix::fs::symlink(d.path().join("dangling"), d.path().join("chain")).unwrap();

        assert_eq!(check(&rule(&format!("r:{}", p("f")))), None);
        assert_eq!(check(&rule(&format!("r:{}", p("good")))), None);
        assert_eq!(check(&rule(&format!("r:{}", d.path().display()))), None);

        let w = check(&rule(&format!("r:{}", p("hostnme")))).unwrap();
        assert_eq!(w.why, NoMatch::NoSuchFile);
        assert_eq!(
            w.to_string(),
            format!("unveil \"r:{}\": no such file; skipped", p("hostnme"))
        );
        // A missing directory on the way is ENOENT too.
        let w = check(&rule(&format!("rw:{}", p("nodir/x")))).unwrap();
        assert_eq!(w.why, NoMatch::NoSuchFile);

        for link in ["dangling", "chain"] {
            let w = check(&rule(&format!("r:{}", p(link)))).unwrap();
            assert_eq!(
                w.why,
                NoMatch::Dangling {
                    target: d.path().join("nowhere")
                }
            );
            assert!(w.to_string().contains("dangling symlink to"), "{w}");
        }
    }

    #[test]
    fn other_errors_and_magic_links_are_not_reported() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), "x").unwrap();
        // ENOTDIR: the launcher refuses this entry itself.
        let r = rule(&format!("r:{}/f/x", d.path().display()));
        assert_eq!(check(&r), None);
        // /dev/stdin -> /proc/self/fd/0 -> pipe:[...] is a magic link, not a dangling one.
        if std::fs::symlink_metadata("/dev/stdin").is_ok() {
            assert_eq!(check(&rule("r:/dev/stdin")), None);
        }
        let all = check_all(&[
            rule(&format!("r:{}/f", d.path().display())),
            rule(&format!("r:{}/g", d.path().display())),
        ]);
        assert_eq!(all.len(), 1);
    }
}
