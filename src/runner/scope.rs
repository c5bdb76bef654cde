//! Host resources a Nomad client creates for an allocation before it starts the tasks: the
//! task's cgroup scope (Nomad ≥ 1.7 on cgroup v2, nomad-plugin-protocol.md §6.1) and, for a
//! `bridge` group, a network namespace bind-mounted at `/var/run/netns/<alloc_id>` (§5.5).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

use crate::executor::cgroup::host_cgroup_root;

#[derive(Debug, Error)]
pub enum ScopeError {
    #[error("cannot create the cgroup {path}")]
    Cgroup { path: PathBuf, source: io::Error },
    #[error("cannot create the network namespace {name} with `ip netns add`: {detail}; install iproute2 and run as root")]
    Netns { name: String, detail: String },
}

/// A task's cgroup scope, removed on drop (once the driver has emptied it).
pub struct CgroupScope {
    pub path: PathBuf,
}

impl CgroupScope {
    /// Creates `<cgroup v2 mount>/nomad.slice/{share,reserve}.slice/<alloc>.<task>.scope`, like a
    /// Nomad 1.7+ client. `None` when the machine has no cgroup v2 mount: the driver then uses
    /// its own fallback, as with an older Nomad.
    pub fn create(
        alloc_id: &str,
        task: &str,
        reserved_cores: bool,
    ) -> Result<Option<Self>, ScopeError> {
        let Ok(mount) = host_cgroup_root() else {
            return Ok(None);
        };
        let slice = if reserved_cores {
            "reserve.slice"
        } else {
            "share.slice"
        };
        let path = mount
            .join("nomad.slice")
            .join(slice)
            .join(format!("{alloc_id}.{task}.scope"));
        fs::create_dir_all(&path).map_err(|source| ScopeError::Cgroup {
            path: path.clone(),
            source,
        })?;
        Ok(Some(CgroupScope { path }))
    }
}

impl Drop for CgroupScope {
    fn drop(&mut self) {
        // The scope itself; the slices stay, as they do on a Nomad client.
        remove_cgroup_tree(&self.path);
    }
}

/// Removes a cgroup directory and any child cgroups left inside it (deepest first).
fn remove_cgroup_tree(path: &Path) {
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(path);
}

/// A network namespace for a `bridge` group: it has only a loopback interface (no bridge or
/// veth to the host: `run` never routes traffic off the machine).
pub struct Netns {
    pub name: String,
    pub path: PathBuf,
}

impl Netns {
    pub fn create(alloc_id: &str) -> Result<Netns, ScopeError> {
        let name = alloc_id.to_string();
        ip(&["netns", "add", &name]).map_err(|detail| ScopeError::Netns {
            name: name.clone(),
            detail,
        })?;
        let ns = Netns {
            path: PathBuf::from("/var/run/netns").join(&name),
            name,
        };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]).map_err(|detail| ScopeError::Netns {
            name: ns.name.clone(),
            detail,
        })?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "delete", &self.name]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}
