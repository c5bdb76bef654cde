//! Nomad's `mounts` (host and CSI volumes) and `devices` of a TaskConfig, as the executor's bind
//! mounts, plus the unveil rules that let the task reach them (`r`, and `w`/`c` when writable).

use std::path::{Component, Path, PathBuf};

use crate::executor::mounts::{BindMount, Propagation};
use crate::policy::UnveilRule;
use crate::proto::drivers::{Device, Mount};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VolumeError {
    #[error("mounts[{index}]: `{field}` is empty: Nomad must give both the host path and the task path of a volume")]
    Empty { index: usize, field: &'static str },
    #[error("mounts[{index}] {task_path}: `{field}` must not contain `..` or NUL bytes: give a plain path")]
    BadPath {
        index: usize,
        task_path: String,
        field: &'static str,
    },
    #[error("mounts[{index}] {task_path}: propagation_mode `{mode}` is not supported: use \"private\" or \"host-to-task\" (\"bidirectional\" would let the task's mounts appear on the host)")]
    Propagation {
        index: usize,
        task_path: String,
        mode: String,
    },
    #[error("mounts[{index}]: destination {} does not exist: tasks run without a chroot, so a destination outside the task directory is a host path and must already exist; use a destination relative to the task directory (e.g. \"local/data\") instead", target.display())]
    MissingTarget { index: usize, target: PathBuf },
    #[error("devices[{index}]: `host_path` must be an absolute path, got `{host_path}`")]
    Device { index: usize, host_path: String },
}

fn plain(p: &str) -> bool {
    !p.contains('\0') && !Path::new(p).components().any(|c| c == Component::ParentDir)
}

/// A destination relative to the task directory is resolved against it; absolute stays.
fn destination(task_dir: &Path, task_path: &str) -> PathBuf {
    task_dir.join(task_path.trim_start_matches("./"))
}

/// The bind mounts for `mounts` then `devices`, in Nomad's order.
pub fn bind_mounts(
    mounts: &[Mount],
    devices: &[Device],
    task_dir: &Path,
) -> Result<Vec<BindMount>, VolumeError> {
    let mut out = Vec::new();
    for (index, m) in mounts.iter().enumerate() {
        for (field, v) in [("host_path", &m.host_path), ("task_path", &m.task_path)] {
            if v.is_empty() {
                return Err(VolumeError::Empty { index, field });
            }
            if !plain(v) {
                return Err(VolumeError::BadPath {
                    index,
                    task_path: m.task_path.clone(),
                    field,
                });
            }
        }
        let propagation = match m.propagation_mode.as_str() {
            "" | "private" => Propagation::Private,
            "host-to-task" => Propagation::HostToTask,
            other => {
                return Err(VolumeError::Propagation {
                    index,
                    task_path: m.task_path.clone(),
                    mode: other.to_string(),
                })
            }
        };
        let target = destination(task_dir, &m.task_path);
        if !target.starts_with(task_dir) && std::fs::metadata(&target).is_err() {
            return Err(VolumeError::MissingTarget { index, target });
        }
        out.push(BindMount {
            source: PathBuf::from(&m.host_path),
            target,
            readonly: m.readonly,
            propagation,
        });
    }
    for (index, d) in devices.iter().enumerate() {
        if !d.host_path.starts_with('/') || !plain(&d.host_path) || !plain(&d.task_path) {
            return Err(VolumeError::Device {
                index,
                host_path: d.host_path.clone(),
            });
        }
        let task_path = if d.task_path.is_empty() {
            &d.host_path
        } else {
            &d.task_path
        };
        out.push(BindMount {
            source: PathBuf::from(&d.host_path),
            target: destination(task_dir, task_path),
            // Nomad's cgroup permissions: `r`, `w`, `m` (mknod); without `w` the node is read-only.
            readonly: !d.cgroup_permissions.contains('w'),
            propagation: Propagation::Private,
        });
    }
    Ok(out)
}

/// The unveil rule that opens a mount to the task: `r`, plus `w` (and `c` for a directory)
/// when writable. A source that cannot be inspected now counts as a directory; the supervisor
/// reports it when it mounts.
pub fn unveil_rule(m: &BindMount) -> UnveilRule {
    let dir = std::fs::metadata(&m.source).map_or(true, |meta| meta.is_dir());
    let perms = match (m.readonly, dir) {
        (true, _) => "r",
        (false, true) => "rwc",
        (false, false) => "rw",
    };
    UnveilRule::new(
        perms.parse().expect("constant permissions parse"),
        m.target.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(task_path: &str, host_path: &str, readonly: bool) -> Mount {
        Mount {
            task_path: task_path.into(),
            host_path: host_path.into(),
            readonly,
            ..Default::default()
        }
    }

    #[test]
    fn nomads_mounts_and_devices_become_bind_mounts_and_rules() {
        let task = Path::new("/alloc/a/web");
        let devices = [Device {
            task_path: String::new(),
            host_path: "/dev/null".into(),
            cgroup_permissions: "rwm".into(),
        }];
        let m = bind_mounts(
            &[
                mount("local/data", "/tmp", false),
                mount("/etc/hostname", "/etc/hostname", true),
            ],
            &devices,
            task,
        )
        .unwrap();
        assert_eq!(m[0].target, PathBuf::from("/alloc/a/web/local/data"));
        assert_eq!(m[1].target, PathBuf::from("/etc/hostname"));
        assert!(m[1].readonly && !m[0].readonly);
        assert_eq!(m[2].target, PathBuf::from("/dev/null"));
        assert!(!m[2].readonly);
        let rules: Vec<String> = m.iter().map(|m| unveil_rule(m).to_string()).collect();
        assert_eq!(
            rules,
            [
                "rwc:/alloc/a/web/local/data",
                "r:/etc/hostname",
                "rw:/dev/null"
            ]
        );
    }

    #[test]
    fn bad_mounts_name_the_entry_and_the_fix() {
        let task = Path::new("/alloc/a/web");
        let e = bind_mounts(&[mount("", "/tmp", false)], &[], task).unwrap_err();
        assert_eq!(
            e,
            VolumeError::Empty {
                index: 0,
                field: "task_path"
            }
        );
        let e = bind_mounts(&[mount("../../etc", "/tmp", false)], &[], task).unwrap_err();
        assert!(
            e.to_string().contains("`task_path` must not contain `..`"),
            "{e}"
        );
        let e = bind_mounts(&[mount("/nonexistent/srv", "/tmp", false)], &[], task).unwrap_err();
        assert!(e.to_string().contains("must already exist"), "{e}");
        let mut shared = mount("x", "/tmp", false);
        shared.propagation_mode = "bidirectional".into();
        let e = bind_mounts(&[shared], &[], task).unwrap_err();
        assert!(e.to_string().contains("\"host-to-task\""), "{e}");
        let mut slave = mount("x", "/tmp", false);
        slave.propagation_mode = "host-to-task".into();
        let m = bind_mounts(&[slave], &[], task).unwrap();
        assert_eq!(m[0].propagation, Propagation::HostToTask);
        let dev = Device {
            host_path: "dev/fuse".into(),
            ..Default::default()
        };
        assert!(bind_mounts(&[], &[dev], task).is_err());
    }
}
