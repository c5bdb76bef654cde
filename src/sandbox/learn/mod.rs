//! Learn mode (`pledge --learn`, `run --learn`): the sandbox observes instead of denying.
//!
//! The program runs under a **learn filter**: the promise filter of `stdio` alone whose deny
//! branch returns `SECCOMP_RET_USER_NOTIF` instead of EPERM, preceded by a few instructions that
//! notify every path-taking call Landlock would check (open, exec, create, remove, rename,
//! link, truncate: [`PATH_SYSCALLS`]). A recorder outside the program's reach (the `pledge`
//! process itself, or a root helper of the task's supervisor) holds the listener, records for
//! each notification which promise(s) would allow the call and which path was accessed how
//! ([`observe`]), and answers CONTINUE: the call runs as if unsandboxed. There is no Landlock
//! domain in learn mode (every filesystem access the user may make works), no kernel W^X, and
//! the filter is inherited across fork and exec, so the programs the program starts are
//! learned too (a later execve then needs `exec` in the result).
//!
//! When the last process using the filter is gone (or the task ended), [`summary`] turns the
//! record into the smallest promise set that allows every recorded call and unveil entries
//! collapsed to sensible directories.
//!
//! Learn mode weakens the sandbox on purpose: nothing is denied while it runs. The plugin
//! refuses it unless the operator sets `allow_learn = true`.

pub mod cli;
pub mod observe;
pub mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::gate;
use super::promise::PromiseSet;
use super::seccomp::{self, BpfProgram, FilterOptions, Penalty, SeccompError};
use super::syscalls;

/// The promises whose calls never notify in learn mode (every program needs them; notifying
/// each read and write would make learning slow). They are always part of the result.
pub const BASE: &str = "stdio";

/// How a path-taking syscall touches the filesystem (what Landlock checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathCall {
    /// `open`-like: path argument, dirfd argument (None = relative to the cwd), flags argument
    /// (None: `creat`, i.e. `O_CREAT|O_WRONLY|O_TRUNC`).
    Open {
        dirfd: Option<usize>,
        path: usize,
        flags: Option<usize>,
    },
    /// `openat2`: the flags are the first field of the `open_how` at argument 2.
    Openat2,
    /// `execve`/`execveat`: the file is executed.
    Exec { dirfd: Option<usize>, path: usize },
    /// An entry is created or removed in the path's directory.
    Entry { dirfd: Option<usize>, path: usize },
    /// `rename`-like: entries change in both directories.
    Rename {
        olddir: Option<usize>,
        old: usize,
        newdir: Option<usize>,
        new: usize,
    },
    /// `link`-like: the new entry is created (the old file stays where it is).
    Link { newdir: Option<usize>, new: usize },
    /// `truncate`: the file is written.
    Truncate { path: usize },
}

/// The path-taking syscalls the learn filter always notifies, by name (those the running
/// architecture lacks are skipped).
pub const PATH_SYSCALLS: &[(&str, PathCall)] = &[
    (
        "open",
        PathCall::Open {
            dirfd: None,
            path: 0,
            flags: Some(1),
        },
    ),
    (
        "openat",
        PathCall::Open {
            dirfd: Some(0),
            path: 1,
            flags: Some(2),
        },
    ),
    ("openat2", PathCall::Openat2),
    (
        "creat",
        PathCall::Open {
            dirfd: None,
            path: 0,
            flags: None,
        },
    ),
    (
        "execve",
        PathCall::Exec {
            dirfd: None,
            path: 0,
        },
    ),
    (
        "execveat",
        PathCall::Exec {
            dirfd: Some(0),
            path: 1,
        },
    ),
    (
        "mkdir",
        PathCall::Entry {
            dirfd: None,
            path: 0,
        },
    ),
    (
        "mkdirat",
        PathCall::Entry {
            dirfd: Some(0),
            path: 1,
        },
    ),
    (
        "mknod",
        PathCall::Entry {
            dirfd: None,
            path: 0,
        },
    ),
    (
        "mknodat",
        PathCall::Entry {
            dirfd: Some(0),
            path: 1,
        },
    ),
    (
        "unlink",
        PathCall::Entry {
            dirfd: None,
            path: 0,
        },
    ),
    (
        "unlinkat",
        PathCall::Entry {
            dirfd: Some(0),
            path: 1,
        },
    ),
    (
        "rmdir",
        PathCall::Entry {
            dirfd: None,
            path: 0,
        },
    ),
    (
        "symlink",
        PathCall::Entry {
            dirfd: None,
            path: 1,
        },
    ),
    (
        "symlinkat",
        PathCall::Entry {
            dirfd: Some(1),
            path: 2,
        },
    ),
    (
        "rename",
        PathCall::Rename {
            olddir: None,
            old: 0,
            newdir: None,
            new: 1,
        },
    ),
    (
        "renameat",
        PathCall::Rename {
            olddir: Some(0),
            old: 1,
            newdir: Some(2),
            new: 3,
        },
    ),
    (
        "renameat2",
        PathCall::Rename {
            olddir: Some(0),
            old: 1,
            newdir: Some(2),
            new: 3,
        },
    ),
    (
        "link",
        PathCall::Link {
            newdir: None,
            new: 1,
        },
    ),
    (
        "linkat",
        PathCall::Link {
            newdir: Some(2),
            new: 3,
        },
    ),
    ("truncate", PathCall::Truncate { path: 0 }),
];

/// The [`PathCall`] of syscall `nr`, if it is one the learn filter notifies.
pub fn path_call(nr: i64) -> Option<PathCall> {
    let name = syscalls::name(nr)?;
    PATH_SYSCALLS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
}

/// Unveil permission letters, as a small bit set (`r`, `w`, `x`, `c`).
pub type Perm = super::unveil::Perms;

/// What one learn run saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Each distinct denied call (syscall name with the arguments the policy looks at) → the
    /// promises any one of which would allow it (empty: no promise allows it).
    pub calls: BTreeMap<String, Vec<String>>,
    /// Absolute path (symlinks resolved) → unveil letters it needed (`"rw"`, `"c"`, ...).
    pub paths: BTreeMap<PathBuf, String>,
    /// Paths that were directories when accessed (read of a directory = listing it).
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// The program exec'd something after its own start: `exec` is needed.
    #[serde(default)]
    pub exec: bool,
    /// Things no policy can allow, said once each (the rerun will see them denied).
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Record {
    /// Add `perms` for `path`.
    pub fn access(&mut self, path: PathBuf, perms: Perm, dir: bool) {
        if dir && !self.dirs.contains(&path) {
            self.dirs.push(path.clone());
        }
        let e = self.paths.entry(path).or_default();
        let merged: Perm = e.parse::<Perm>().unwrap_or_default().union(perms);
        *e = merged.to_string();
    }

    /// Add a warning once.
    pub fn warn(&mut self, w: String) {
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }
}

/// The learn filter for a program (see the module docs). `self_pid` as in [`FilterOptions`].
pub fn build_filter(self_pid: Option<i32>) -> Result<BpfProgram, SeccompError> {
    let base = PromiseSet::parse(BASE).map_err(|_| SeccompError::Internal {
        what: "the learn base promises do not parse",
    })?;
    let opts = FilterOptions {
        penalty: Penalty::Errno(libc::EPERM),
        exec_gate: true,
        self_pid,
        unveiled: false,
    };
    let promise = gate::penalty_to_notify(&seccomp::build_filter(&base, &opts)?)?;
    let nrs: Vec<u32> = PATH_SYSCALLS
        .iter()
        .filter_map(|(n, _)| syscalls::number(n))
        .filter_map(|n| u32::try_from(n).ok())
        .collect();
    let mut bytes = prefix(&nrs)?;
    bytes.extend(promise.to_bytes());
    BpfProgram::from_bytes(&bytes)
}

/// `ld arch; jne ARCH → promise filter; ld nr; jeq NR_i → notify; ...; ja +1; ret NOTIFY`, as
/// raw instructions (the promise filter follows, and starts with its own arch check).
fn prefix(nrs: &[u32]) -> Result<Vec<u8>, SeccompError> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JA: u16 = 0x05;
    const RET_K: u16 = 0x06;
    let n = nrs.len();
    if n + 3 > usize::from(u8::MAX) {
        return Err(SeccompError::Internal {
            what: "too many path syscalls for the learn prefix",
        });
    }
    let arch = syscalls::AUDIT_ARCH.ok_or(SeccompError::UnsupportedArch {
        arch: std::env::consts::ARCH,
    })?;
    let mut out = Vec::new();
    let mut insn = |code: u16, jt: u8, jf: u8, k: u32| {
        out.extend(code.to_ne_bytes());
        out.push(jt);
        out.push(jf);
        out.extend(k.to_ne_bytes());
    };
    insn(LD_W_ABS, 0, 0, 4);
    // Foreign arch: straight to the promise filter (which kills it); skip ld, n jeq, ja, ret.
    insn(JEQ_K, 0, (n + 3) as u8, arch);
    insn(LD_W_ABS, 0, 0, 0);
    for (i, nr) in nrs.iter().enumerate() {
        insn(JEQ_K, (n - i) as u8, 0, *nr);
    }
    insn(JA, 0, 0, 1);
    insn(RET_K, 0, 0, seccomp::SECCOMP_RET_USER_NOTIF);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::seccomp::bpf::{run, SeccompData};
    use crate::sandbox::seccomp::{SECCOMP_RET_ALLOW, SECCOMP_RET_USER_NOTIF};

    fn data(nr: i64, args: [u64; 6]) -> SeccompData {
        SeccompData {
            nr: nr as i32,
            arch: syscalls::AUDIT_ARCH.unwrap(),
            instruction_pointer: 0,
            args,
        }
    }

    #[test]
    fn learn_filter_notifies_denials_and_paths_and_allows_stdio() {
        let f = build_filter(None).unwrap();
        let notify = SECCOMP_RET_USER_NOTIF;
        assert_eq!(
            run(&f, &data(libc::SYS_read, [0; 6])).unwrap(),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            run(&f, &data(libc::SYS_write, [1, 0, 0, 0, 0, 0])).unwrap(),
            SECCOMP_RET_ALLOW
        );
        // Denied by stdio: notified, not failed.
        assert_eq!(
            run(&f, &data(libc::SYS_socket, [2, 1, 0, 0, 0, 0])).unwrap(),
            notify
        );
        assert_eq!(run(&f, &data(libc::SYS_execve, [0; 6])).unwrap(), notify);
        // Path calls always notify, even where stdio would allow or deny.
        assert_eq!(run(&f, &data(libc::SYS_openat, [0; 6])).unwrap(), notify);
        assert_eq!(run(&f, &data(libc::SYS_unlinkat, [0; 6])).unwrap(), notify);
        // Nothing in it fails a call.
        for nr in 0..450 {
            let r = run(&f, &data(nr, [0; 6])).unwrap();
            assert!(
                r == SECCOMP_RET_ALLOW
                    || r == notify
                    || r == (seccomp::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
                "syscall {nr}: {r:#x}"
            );
        }
        // A foreign architecture is still killed by the promise filter.
        let mut d = data(libc::SYS_openat, [0; 6]);
        d.arch = 0x4000_0003;
        assert_eq!(run(&f, &d).unwrap(), seccomp::SECCOMP_RET_KILL_PROCESS);
    }

    #[test]
    fn record_merges_permissions() {
        let mut r = Record::default();
        r.access("/a".into(), "r".parse().unwrap(), false);
        r.access("/a".into(), "w".parse().unwrap(), false);
        assert_eq!(r.paths[&PathBuf::from("/a")], "rw");
    }
}
