//! Self-modifying code without `prot_exec` (issue 12 item 8).
//!
//! The promise filter keeps memory from becoming executable (`mprotect(PROT_EXEC)`, anonymous
//! or writable executable mappings) unless `prot_exec` is promised. Two other doors exist:
//!
//! * `/proc/PID/mem`: the kernel writes through it into read-only pages (FOLL_FORCE), so a
//!   program that can open its own `mem` file for writing rewrites its code. Landlock decides
//!   that open: [`check`] refuses unveil entries with `w` that cover a process's `mem` file
//!   (`/`, `/proc`, `/proc/self`, `/proc/PID`, `/proc/PID/task/TID`, the file itself) unless
//!   `prot_exec` is promised. With `-V` there is no Landlock and only the promises decide: the
//!   open needs `wpath` or `cpath` (README, Differences from pledge.com).
//! * The kernel's own W^X switch, `PR_SET_MDWE` (Linux 6.3): applied by the launcher when
//!   `prot_exec` is not promised, so the rule holds for whatever the filter cannot see
//!   (it is inherited across fork and execve).

use std::path::{Component, Path, PathBuf};

use super::promise::{Promise, PromiseSet};
use super::unveil::{Origin, Perms, UnveilRule};

/// An unveil entry that would make a `/proc/PID/mem` file writable.
#[derive(Debug, thiserror::Error)]
#[error(
    "unveil `{entry}` gives write access to {reach}, through which a program can rewrite its own \
     code (self-modifying code needs promise `prot_exec`): unveil a narrower path, e.g. `r` on \
     {proc} or `w` on only the /proc files the program writes, or promise prot_exec"
)]
pub struct ProcMemError {
    /// The entry as the user wrote it (`PERM:PATH`).
    pub entry: String,
    /// What it reaches, in words.
    pub reach: String,
    /// The procfs mount point concerned.
    pub proc: String,
}

/// Refuse user unveil entries that make a `/proc/PID/mem` file writable while `prot_exec` is
/// not promised.
pub fn check(rules: &[(UnveilRule, Origin)], promises: PromiseSet) -> Result<(), ProcMemError> {
    if promises.contains(Promise::ProtExec) {
        return Ok(());
    }
    let mounts = proc_mounts();
    for (rule, origin) in rules {
        if *origin != Origin::User || !rule.perms.contains(Perms::W) {
            continue;
        }
        let path = std::fs::canonicalize(&rule.path).unwrap_or_else(|_| rule.path.clone());
        if let Some((reach, proc)) = reaches_mem(&path, &mounts) {
            return Err(ProcMemError {
                entry: format!("{}:{}", perm_letters(rule.perms), rule.path.display()),
                reach,
                proc: proc.display().to_string(),
            });
        }
    }
    Ok(())
}

fn perm_letters(p: Perms) -> String {
    [
        (Perms::R, 'r'),
        (Perms::W, 'w'),
        (Perms::X, 'x'),
        (Perms::C, 'c'),
    ]
    .iter()
    .filter(|(bit, _)| p.contains(*bit))
    .map(|(_, c)| *c)
    .collect()
}

/// The mount points of procfs, from /proc/self/mountinfo (`/proc` if it cannot be read).
fn proc_mounts() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = text.lines().filter_map(proc_mount_point).collect();
    if out.is_empty() {
        out.push(PathBuf::from("/proc"));
    }
    out
}

/// The mount point of one mountinfo line if its filesystem type is `proc`.
fn proc_mount_point(line: &str) -> Option<PathBuf> {
    let (left, right) = line.split_once(" - ")?;
    if right.split(' ').next()? != "proc" {
        return None;
    }
    let mount_point = left.split(' ').nth(4)?;
    Some(PathBuf::from(unescape_octal(mount_point)))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Does a `w` rule on `path` (canonical) cover some process's `mem` file under one of the
/// procfs `mounts`? Returns what it reaches and the mount.
fn reaches_mem(path: &Path, mounts: &[PathBuf]) -> Option<(String, PathBuf)> {
    for m in mounts {
        if m.starts_with(path) {
            let reach = format!("every process's {}/PID/mem", m.display());
            return Some((reach, m.clone()));
        }
        let Ok(rel) = path.strip_prefix(m) else {
            continue;
        };
        let parts: Vec<String> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let is_pid = |s: &str| {
            s == "self"
                || s == "thread-self"
                || (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
        };
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let shown = path.display();
        let reach = match parts.as_slice() {
            [pid] if is_pid(pid) => format!("{shown}/mem"),
            [pid, "task"] if is_pid(pid) => format!("{shown}/TID/mem"),
            [pid, "task", tid] if is_pid(pid) && is_pid(tid) => format!("{shown}/mem"),
            [pid, "mem"] if is_pid(pid) => shown.to_string(),
            [pid, "task", tid, "mem"] if is_pid(pid) && is_pid(tid) => shown.to_string(),
            _ => continue,
        };
        return Some((reach, m.clone()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> (UnveilRule, Origin) {
        (s.parse().unwrap(), Origin::User)
    }

    fn mounts() -> Vec<PathBuf> {
        vec![PathBuf::from("/proc")]
    }

    #[test]
    fn paths_that_cover_a_mem_file() {
        for p in [
            "/",
            "/proc",
            "/proc/1",
            "/proc/123/mem",
            "/proc/123/task",
            "/proc/123/task/124",
            "/proc/123/task/124/mem",
            "/proc/self",
            "/proc/thread-self",
        ] {
            assert!(reaches_mem(Path::new(p), &mounts()).is_some(), "{p}");
        }
        for p in [
            "/tmp",
            "/proc/sys/kernel",
            "/proc/123/fd",
            "/proc/123/task/124/comm",
            "/proc/self/attr",
            "/procfs",
            "/proc/12x",
        ] {
            assert!(reaches_mem(Path::new(p), &mounts()).is_none(), "{p}");
        }
        // A second procfs mount elsewhere counts too.
        let two = vec![PathBuf::from("/proc"), PathBuf::from("/srv/jail/proc")];
        assert!(reaches_mem(Path::new("/srv/jail"), &two).is_some());
        assert!(reaches_mem(Path::new("/srv/jail/proc/9"), &two).is_some());
        assert!(reaches_mem(Path::new("/srv/other"), &two).is_none());
    }

    #[test]
    fn refused_without_prot_exec_and_names_entry_and_fix() {
        let p = PromiseSet::parse("stdio rpath wpath").unwrap();
        let err = check(&[rule("r:/tmp"), rule("rw:/proc/self")], p).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("unveil `rw:/proc/self`"), "{msg}");
        assert!(msg.contains("prot_exec"), "{msg}");
        assert!(msg.contains("/mem"), "{msg}");
        // Read-only, create-only, prot_exec promised, implicit rules: accepted.
        assert!(check(&[rule("r:/proc"), rule("rc:/proc/self")], p).is_ok());
        let pe = PromiseSet::parse("stdio rpath wpath prot_exec").unwrap();
        assert!(check(&[rule("rw:/")], pe).is_ok());
        let implicit = ("rw:/proc/self".parse().unwrap(), Origin::Implicit("test"));
        assert!(check(&[implicit], p).is_ok());
    }

    #[test]
    fn mountinfo_lines() {
        let l = "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw";
        assert_eq!(proc_mount_point(l), Some(PathBuf::from("/proc")));
        let l = "30 1 0:21 / /a\\040b rw - proc proc rw";
        assert_eq!(proc_mount_point(l), Some(PathBuf::from("/a b")));
        let l = "23 1 0:22 / /sys rw - sysfs sysfs rw";
        assert_eq!(proc_mount_point(l), None);
        assert_eq!(proc_mount_point("garbage"), None);
    }
}
