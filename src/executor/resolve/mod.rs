//! StartTask-time checks that the task can start: its `work_dir` is a directory and its
//! `command` resolves to a file the task user may execute, found exactly as the launcher
//! (pledge.com's `commandv`, `sandbox::exe::find_program`) will find it: a name with `/` is used
//! as is (relative to the working directory); a bare name is looked up in the `PATH` of the
//! *task's* environment (pledge.com's default when it has none), an empty element meaning the
//! working directory, skipping what the user cannot search, taking the first regular file with
//! execute permission.
//!
//! The lookup runs as the task user (its uid, gid and supplementary groups) in a short-lived
//! forked child ([`sys::probe`]), after changing into the working directory as root, in the
//! order the supervisor's task child does. The launcher still does its own lookup at exec, so a
//! file removed after StartTask fails the task the way it always did.

mod sys;

use std::ffi::{CString, OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::user::TaskUser;

/// Why StartTask refuses to start the task.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("task config: `work_dir` {path}: {what}: set `work_dir` to an existing directory (absolute, or relative to the task directory)")]
    WorkDir { path: PathBuf, what: String },
    #[error("task config: `command` `{command}`: {what} for the task user `{user}` (uid {uid}): give the path of an existing program the task user may execute")]
    CommandPath {
        command: String,
        what: String,
        user: String,
        uid: u32,
    },
    #[error("task config: `command` `{command}` is not an executable file for the task user `{user}` (uid {uid}) in any directory of the task's PATH: searched {searched}{details}; use an absolute path, or set PATH in the job's `env`")]
    NotInPath {
        command: String,
        user: String,
        uid: u32,
        searched: String,
        details: String,
    },
    #[error("task config: `command`, `work_dir` or an environment PATH contains a NUL byte")]
    Nul,
    #[error("cannot check the task's `command` as the task user")]
    Probe(#[from] sys::ProbeError),
}

/// Checks `command` and `cwd` as `user` with the task environment's `PATH` (`None` = unset).
/// Returns the path the launcher will run. Blocks on a short-lived child: call it from a
/// blocking thread.
pub fn check(
    command: &str,
    path_var: Option<&str>,
    cwd: &Path,
    user: &TaskUser,
) -> Result<PathBuf, ResolveError> {
    let dirs = search_dirs(command, path_var);
    let candidates: Vec<PathBuf> = match &dirs {
        None => vec![PathBuf::from(command)],
        Some(dirs) => dirs.iter().map(|d| candidate(d, command)).collect(),
    };
    let c_candidates = candidates
        .iter()
        .map(|p| CString::new(p.as_os_str().as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ResolveError::Nul)?;
    let c_cwd = CString::new(cwd.as_os_str().as_bytes()).map_err(|_| ResolveError::Nul)?;
    let groups: Vec<libc::gid_t> = user.groups.clone();
    let identity = sys::Identity {
        uid: user.uid,
        gid: user.gid,
        groups: &groups,
    };
    // Without root the identity cannot be switched (and the start fails later anyway).
    let root = nix::unistd::geteuid().is_root();
    let found = sys::probe(&c_cwd, root.then_some(&identity), &c_candidates)?;
    if found.chdir_errno != 0 {
        return Err(ResolveError::WorkDir {
            path: cwd.to_path_buf(),
            what: match found.chdir_errno {
                libc::ENOENT => "does not exist".into(),
                libc::ENOTDIR => "is not a directory".into(),
                e => errno_text(e),
            },
        });
    }
    if let Some(i) = found.candidates.iter().position(|&r| r == sys::EXECUTABLE) {
        return Ok(candidates[i].clone());
    }
    let (name, uid) = (user.name.clone(), user.uid);
    let Some(dirs) = dirs else {
        return Err(ResolveError::CommandPath {
            command: command.to_string(),
            what: describe(found.candidates[0]),
            user: name,
            uid,
        });
    };
    let mut unsearchable = Vec::new();
    let mut unusable = Vec::new();
    for ((dir, cand), r) in dirs.iter().zip(&candidates).zip(&found.candidates) {
        match *r {
            libc::EACCES => unsearchable.push(shown_dir(dir)),
            libc::ENOENT | libc::ENOTDIR => {}
            r => unusable.push(format!("{} ({})", cand.display(), describe(r))),
        }
    }
    let mut details = String::new();
    if !unsearchable.is_empty() {
        let _ = write!(
            details,
            "; not searchable by the task user (skipped): {}",
            unsearchable.join(", ")
        );
    }
    if !unusable.is_empty() {
        let _ = write!(details, "; found but not usable: {}", unusable.join(", "));
    }
    Err(ResolveError::NotInPath {
        command: command.to_string(),
        user: name,
        uid,
        searched: dirs
            .iter()
            .map(|d| shown_dir(d))
            .collect::<Vec<_>>()
            .join(", "),
        details,
    })
}

/// The PATH elements searched for `command`, or None when it names a path (has a `/`).
fn search_dirs(command: &str, path_var: Option<&str>) -> Option<Vec<OsString>> {
    if command.contains('/') {
        return None;
    }
    let path_var = path_var.unwrap_or(crate::sandbox::exe::DEFAULT_PATH);
    Some(
        path_var
            .as_bytes()
            .split(|&c| c == b':')
            .map(|d| OsString::from_vec(d.to_vec()))
            .collect(),
    )
}

/// The file tried for `command` in PATH element `dir` (empty = the working directory), as
/// `find_program` builds it.
fn candidate(dir: &OsStr, command: &str) -> PathBuf {
    if dir.is_empty() {
        PathBuf::from(command)
    } else {
        Path::new(dir).join(command)
    }
}

fn shown_dir(dir: &OsStr) -> String {
    if dir.is_empty() {
        "(empty element: the working directory)".into()
    } else {
        dir.to_string_lossy().into_owned()
    }
}

fn describe(r: i32) -> String {
    match r {
        sys::NOT_REGULAR => "not a regular file".into(),
        sys::NOT_EXECUTABLE => "no execute permission".into(),
        libc::EACCES => "a directory on the way is not searchable (Permission denied)".into(),
        e => errno_text(e),
    }
}

fn errno_text(e: i32) -> String {
    nix::errno::Errno::from_raw(e).desc().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn resolve_errors_say_each_thing_once() {
        use crate::errors::assert_says_each_thing_once as check;
        use crate::errors::fixtures::{errno, io};
        check(&sys::ProbeError::Fork(io()));
        check(&sys::ProbeError::Pipe(errno()));
        check(&sys::ProbeError::Identity {
            uid: 1,
            gid: 1,
            source: io(),
        });
        check(&ResolveError::Probe(sys::ProbeError::Identity {
            uid: 1,
            gid: 1,
            source: io(),
        }));
    }

    fn me() -> TaskUser {
        TaskUser {
            name: "me".into(),
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            groups: vec![nix::unistd::getegid().as_raw()],
            home: "/".into(),
        }
    }

    fn nobody() -> Option<TaskUser> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: needs root to check as another user");
            return None;
        }
        super::super::user::resolve_user("nobody", "nobody", false).ok()
    }

    #[test]
    fn finds_the_first_executable_in_the_tasks_path() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("prog"), "x").unwrap(); // not executable: skipped
        std::fs::write(b.join("prog"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(b.join("prog"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:{}", a.display(), b.display());
        let got = check("prog", Some(&path), d.path(), &me()).unwrap();
        assert_eq!(got, b.join("prog"));
        // The task's PATH, not ours: with the default PATH there is no `prog`.
        let e = check("prog", None, d.path(), &me())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`prog`") && e.contains("/usr/local/bin, /bin, /usr/bin"),
            "{e}"
        );
        assert!(check("sh", None, d.path(), &me()).is_ok());
    }

    #[test]
    fn missing_commands_name_the_command_and_the_directories() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("prog"), "x").unwrap();
        let path = format!("/usr/bin:{}", d.path().display());
        let e = check("prog", Some(&path), Path::new("/"), &me())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`command` `prog`"), "{e}");
        assert!(
            e.contains(&format!("searched /usr/bin, {}", d.path().display())),
            "{e}"
        );
        assert!(
            e.contains("found but not usable") && e.contains("no execute permission"),
            "{e}"
        );
        let e = check("/no/such/prog", None, Path::new("/"), &me())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/no/such/prog") && e.contains("No such file"),
            "{e}"
        );
    }

    #[test]
    fn work_dir_must_be_a_directory() {
        let d = tempfile::tempdir().unwrap();
        let e = check("sh", None, &d.path().join("nope"), &me())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`work_dir`") && e.contains("does not exist"),
            "{e}"
        );
        std::fs::write(d.path().join("file"), "").unwrap();
        let e = check("sh", None, &d.path().join("file"), &me())
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a directory"), "{e}");
        // A relative command is relative to the working directory.
        std::fs::create_dir(d.path().join("bin")).unwrap();
        std::fs::copy("/bin/true", d.path().join("bin/t")).unwrap();
        assert_eq!(
            check("bin/t", None, d.path(), &me()).unwrap(),
            PathBuf::from("bin/t")
        );
    }

    #[test]
    fn directories_the_task_user_cannot_search_are_skipped_and_named() {
        let Some(nobody) = nobody() else { return };
        let d = tempfile::tempdir().unwrap(); // 0700, root's
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let private = d.path().join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::copy("/bin/true", private.join("catt")).unwrap();
        // Root could run private/catt; the task user cannot search `private`.
        let path = format!("{}:/usr/bin:/bin", private.display());
        let e = check("catt", Some(&path), Path::new("/"), &nobody)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`catt`") && e.contains("`nobody`"), "{e}");
        assert!(
            e.contains(&format!(
                "not searchable by the task user (skipped): {}",
                private.display()
            )),
            "{e}"
        );
        // Found later in PATH: the unsearchable directory is skipped, as execvp does.
        let path = format!("{}:/usr/bin:/bin", private.display());
        assert!(check("true", Some(&path), Path::new("/"), &nobody).is_ok());
        // An absolute path below it is refused for the task user.
        let e = check(
            private.join("catt").to_str().unwrap(),
            None,
            Path::new("/"),
            &nobody,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not searchable"), "{e}");
    }
}
