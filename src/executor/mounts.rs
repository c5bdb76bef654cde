//! Bind mounts into the task's private mount namespace: Nomad's host and CSI volume `mounts`,
//! its `devices`, and the generated `resolv.conf`. Done by the supervisor (root, in the task's
//! new mount namespace, before it forks the task), so nothing is visible on the host.
//!
//! A destination inside the task directory is created when missing (a directory, or an empty
//! file when the source is not a directory), as Nomad's other drivers do, and must not reach
//! outside the task directory through a symlink (the task owns that directory and could plant
//! one). A destination elsewhere is a host path: the driver runs tasks without a chroot, so it
//! would have to create it on the host, and it refuses instead.

use nix::mount::{mount, MsFlags};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// How mounts below the source propagate into the task (Nomad's `propagation_mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Propagation {
    /// Nomad's `private` (its default): the task sees the source as it was at start.
    #[default]
    Private,
    /// `host-to-task`: mounts made on the host later appear in the task, never the reverse.
    HostToTask,
}

/// One bind mount, with an absolute destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub readonly: bool,
    #[serde(default)]
    pub propagation: Propagation,
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("volume source {} is not usable (check the host volume's path on this client)", path.display())]
    Source {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mount destination {} does not exist: tasks run without a chroot, so a destination outside the task directory is a host path and must already exist (or use a destination relative to the task directory, e.g. \"local/data\")", path.display())]
    MissingTarget { path: PathBuf },
    #[error("mount destination {} leaves the task directory {} through a symlink or `..`: use a plain path inside the task directory", path.display(), task_dir.display())]
    Escapes { path: PathBuf, task_dir: PathBuf },
    #[error("cannot {step} {}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MountError {
    let path = path.to_path_buf();
    move |source| MountError::Io { step, path, source }
}

/// Whether any mount wants host mounts to propagate in (the namespace's root is then made a
/// slave of the host's instead of private).
pub fn wants_host_propagation(mounts: &[BindMount]) -> bool {
    mounts
        .iter()
        .any(|m| m.propagation == Propagation::HostToTask)
}

/// Where the task sees its generated resolv.conf.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Writes the generated resolv.conf into the task's state directory (root-only, but the file
/// is reached through the mount, not through that directory) and returns its bind mount.
pub fn resolv_conf_mount(text: &str, state_dir: &Path) -> Result<BindMount, MountError> {
    let path = state_dir.join("resolv.conf");
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .map_err(io("write the task's resolv.conf", &path))?;
    Ok(BindMount {
        source: path,
        target: PathBuf::from(RESOLV_CONF),
        readonly: true,
        propagation: Propagation::Private,
    })
}

/// Makes every bind mount, in order (a later one may sit inside an earlier one).
pub fn setup(mounts: &[BindMount], task_dir: &Path) -> Result<(), MountError> {
    for m in mounts {
        bind(m, task_dir)?;
    }
    Ok(())
}

fn bind(m: &BindMount, task_dir: &Path) -> Result<(), MountError> {
    let meta = std::fs::metadata(&m.source).map_err(|source| MountError::Source {
        path: m.source.clone(),
        source,
    })?;
    let inside = m.target.starts_with(task_dir);
    if inside {
        create_inside(&m.target, task_dir, meta.is_dir())?;
    } else if std::fs::metadata(&m.target).is_err() {
        return Err(MountError::MissingTarget {
            path: m.target.clone(),
        });
    }
    // Inside the task directory the destination is pinned (no symlink at the last component)
    // and mounted through its descriptor, so it cannot be swapped for a symlink in between.
    let pinned = if inside {
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&m.target)
            .map_err(io("open the mount destination", &m.target))?;
        let kind = f
            .metadata()
            .map_err(io("inspect the mount destination", &m.target))?;
        if kind.file_type().is_symlink() {
            return Err(MountError::Escapes {
                path: m.target.clone(),
                task_dir: task_dir.to_path_buf(),
            });
        }
        Some(f)
    } else {
        None
    };
    let target = match &pinned {
        Some(f) => PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd())),
        None => m.target.clone(),
    };
    let err = |step| {
        let path = m.target.clone();
        move |e: nix::Error| MountError::Io {
            step,
            path,
            source: e.into(),
        }
    };
    mount(
        Some(&m.source),
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(err("bind-mount the volume on"))?;
    if m.readonly {
        // The new mount now sits at the path; a remount changes only its own flags.
        mount(
            None::<&str>,
            &m.target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(err("make read-only the mount at"))?;
    }
    Ok(())
}

/// Creates `target` (and its missing parents) below `task_dir`, refusing any path that
/// leaves the task directory through `..` or a symlink.
fn create_inside(target: &Path, task_dir: &Path, dir: bool) -> Result<(), MountError> {
    let escapes = || MountError::Escapes {
        path: target.to_path_buf(),
        task_dir: task_dir.to_path_buf(),
    };
    let rel = target.strip_prefix(task_dir).map_err(|_| escapes())?;
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(escapes());
    }
    let real_task_dir = std::fs::canonicalize(task_dir).map_err(io("open", task_dir))?;
    let mut at = task_dir.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let last = i + 1 == parts.len();
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(escapes()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !last || dir {
                    std::fs::create_dir(&at).map_err(io("create the mount destination", &at))?;
                } else {
                    OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o644)
                        .open(&at)
                        .map_err(io("create the mount destination", &at))?;
                }
            }
            Err(e) => return Err(io("inspect the mount destination", &at)(e)),
        }
        let real = std::fs::canonicalize(&at).map_err(io("resolve", &at))?;
        if !real.starts_with(&real_task_dir) {
            return Err(escapes());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_created_inside_the_task_dir_only() {
        let t = tempfile::tempdir().unwrap();
        let task = t.path().join("task");
        std::fs::create_dir(&task).unwrap();
        create_inside(&task.join("local/data"), &task, true).unwrap();
        assert!(task.join("local/data").is_dir());
        create_inside(&task.join("local/conf.txt"), &task, false).unwrap();
        assert!(task.join("local/conf.txt").is_file());
        // Existing destinations are fine.
        create_inside(&task.join("local/data"), &task, true).unwrap();

        std::os::unix::fs::symlink("/etc", task.join("evil")).unwrap();
        for bad in [
            task.join("evil/x"),
            task.join("evil"),
            task.join("a/../../x"),
        ] {
            assert!(
                matches!(
                    create_inside(&bad, &task, true),
                    Err(MountError::Escapes { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(!Path::new("/etc/x").exists());
    }

    #[test]
    fn missing_sources_and_host_destinations_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let m = BindMount {
            source: t.path().join("nope"),
            target: t.path().join("task/x"),
            readonly: false,
            propagation: Propagation::Private,
        };
        let e = setup(std::slice::from_ref(&m), &t.path().join("task")).unwrap_err();
        assert!(matches!(e, MountError::Source { .. }), "{e}");
        let m = BindMount {
            source: t.path().to_path_buf(),
            target: "/nonexistent-pledge-volume-target".into(),
            ..m
        };
        let e = setup(&[m], &t.path().join("task")).unwrap_err();
        assert!(e.to_string().contains("must already exist"), "{e}");
    }
}
