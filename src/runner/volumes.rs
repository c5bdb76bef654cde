//! The host volumes of `run`: a task's `volume_mount` blocks resolved against its group's
//! `volume` blocks and the client's host volumes (`--host-volume`), into the TaskConfig `mounts`
//! a Nomad client sends, with Nomad's errors for what does not resolve.

use super::args::HostVolume;
use super::job::{Group, Task};
use crate::proto::drivers::{DnsConfig, Mount};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VolumeError {
    #[error("task {task:?}: volume_mount ({index}) references undefined volume {volume:?} (Nomad: \"Volume Mount ({index}) references undefined volume {volume}\"); add `volume {volume:?} {{ type = \"host\" source = \"NAME\" }}` to group {group:?}")]
    Undefined {
        task: String,
        group: String,
        index: usize,
        volume: String,
    },
    #[error("task {task:?}: volume_mount ({index}) has no `destination`: give the path the volume appears at (relative to the task directory, or an existing absolute path)")]
    NoDestination { task: String, index: usize },
    #[error("group {group:?} volume {volume:?}: type {kind:?} is not supported by `run` (only \"host\" volumes; CSI volumes need a Nomad cluster)")]
    Kind {
        group: String,
        volume: String,
        kind: String,
    },
    #[error("group {group:?} volume {volume:?}: no host volume {source_name:?} on this client (Nomad: \"missing compatible host volumes\"); give it with --host-volume {source_name}=PATH")]
    Missing {
        group: String,
        volume: String,
        source_name: String,
    },
    #[error("group {group:?} volume {volume:?}: host volume {source_name:?} is read-only on this client (Nomad: \"missing compatible host volumes\"); set `read_only = true` in the volume block")]
    ReadOnly {
        group: String,
        volume: String,
        source_name: String,
    },
}

/// The TaskConfig `mounts` for `task` of `group`.
pub fn task_mounts(
    group: &Group,
    task: &Task,
    host: &[HostVolume],
) -> Result<Vec<Mount>, VolumeError> {
    task.volume_mounts
        .iter()
        .enumerate()
        .map(|(index, vm)| {
            let vol = group
                .volumes
                .iter()
                .find(|v| v.name == vm.volume)
                .ok_or_else(|| VolumeError::Undefined {
                    task: task.name.clone(),
                    group: group.name.clone(),
                    index,
                    volume: vm.volume.clone(),
                })?;
            if vol.kind != "host" {
                return Err(VolumeError::Kind {
                    group: group.name.clone(),
                    volume: vol.name.clone(),
                    kind: vol.kind.clone(),
                });
            }
            let hv =
                host.iter()
                    .find(|h| h.name == vol.source)
                    .ok_or_else(|| VolumeError::Missing {
                        group: group.name.clone(),
                        volume: vol.name.clone(),
                        source_name: vol.source.clone(),
                    })?;
            if hv.read_only && !vol.read_only {
                return Err(VolumeError::ReadOnly {
                    group: group.name.clone(),
                    volume: vol.name.clone(),
                    source_name: vol.source.clone(),
                });
            }
            if vm.destination.is_empty() {
                return Err(VolumeError::NoDestination {
                    task: task.name.clone(),
                    index,
                });
            }
            Ok(Mount {
                task_path: vm.destination.clone(),
                host_path: hv.path.display().to_string(),
                readonly: vol.read_only || vm.read_only,
                propagation_mode: vm.propagation_mode.clone(),
                ..Default::default()
            })
        })
        .collect()
}

/// The TaskConfig `dns` for the group's `network { dns { ... } }`.
pub fn task_dns(group: &Group) -> Option<DnsConfig> {
    group.dns.as_ref().map(|d| DnsConfig {
        servers: d.servers.clone(),
        searches: d.searches.clone(),
        options: d.options.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::job::Job;

    const JOB: &str = r#"
job "j" {
  group "g" {
    volume "data" {
      type   = "host"
      source = "shared"
    }
    volume "ro" {
      source    = "etc"
      read_only = true
    }
    volume "c" {
      type   = "csi"
      source = "disk"
    }
    task "ok" {
      driver = "pledge"
      config { command = "true" }
      volume_mount {
        volume      = "data"
        destination = "local/data"
      }
      volume_mount {
        volume      = "ro"
        destination = "/srv"
      }
    }
    task "undefined" {
      driver = "pledge"
      config { command = "true" }
      volume_mount {
        volume      = "nope"
        destination = "x"
      }
    }
    task "csi" {
      driver = "pledge"
      config { command = "true" }
      volume_mount {
        volume      = "c"
        destination = "x"
      }
    }
  }
}
"#;

    fn hv(spec: &str) -> HostVolume {
        HostVolume::parse(spec).unwrap()
    }

    #[test]
    fn mounts_resolve_like_a_client() {
        let job = Job::parse(JOB).unwrap();
        let g = &job.groups[0];
        let host = [hv("shared=/tmp/shared"), hv("etc=/etc,read_only")];
        let m = task_mounts(g, &g.tasks[0], &host).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            (
                m[0].task_path.as_str(),
                m[0].host_path.as_str(),
                m[0].readonly
            ),
            ("local/data", "/tmp/shared", false)
        );
        assert_eq!(
            (
                m[1].task_path.as_str(),
                m[1].host_path.as_str(),
                m[1].readonly
            ),
            ("/srv", "/etc", true)
        );
        assert_eq!(m[0].propagation_mode, "private");

        let e = task_mounts(g, &g.tasks[1], &host).unwrap_err().to_string();
        assert!(e.contains("references undefined volume \"nope\""), "{e}");
        let e = task_mounts(g, &g.tasks[2], &host).unwrap_err().to_string();
        assert!(e.contains("only \"host\" volumes"), "{e}");
        let e = task_mounts(g, &g.tasks[0], &host[1..])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing compatible host volumes")
                && e.contains("--host-volume shared=PATH"),
            "{e}"
        );
        let e = task_mounts(
            g,
            &g.tasks[0],
            &[hv("shared=/tmp,read_only"), hv("etc=/etc")],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("is read-only on this client"), "{e}");
    }
}
