//! What survives the plugin: the recovery state (in Nomad's `driver_state`) and the exit status
//! record the supervisor writes into the root-only state directory.

use super::cgroup::TaskCgroup;
use super::TaskSpec;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Version of the [`RecoveryState`] format.
pub const STATE_VERSION: u32 = 1;
/// File name of the exit record inside a task's state directory.
pub const EXIT_FILE: &str = "exit.json";
/// File name of the supervisor plan inside a task's state directory.
pub const PLAN_FILE: &str = "plan.json";
/// File name of the task's cgroup record (path, whether we created it) inside its state
/// directory, for cleaning up after a task this plugin instance never tracked.
pub const CGROUP_FILE: &str = "cgroup.json";

/// How a task ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// Exit code; 128 + signal number when killed by a signal.
    pub exit_code: i32,
    /// Signal that killed the task, 0 otherwise.
    pub signal: i32,
    /// The task cgroup's `oom_kill` counter grew while the task ran.
    pub oom_killed: bool,
    /// Why the task could not run or be supervised (None for a normal exit).
    pub err: Option<String>,
}

/// Everything needed to reattach to a running task (goes into Nomad's `driver_state`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryState {
    pub version: u32,
    /// Supervisor pid in the plugin's PID namespace.
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat` (defeats pid reuse).
    pub start_time: u64,
    pub cgroup: TaskCgroup,
    /// The task's directory under the executor's state dir (plan + exit record).
    pub state_path: PathBuf,
    /// `oom_kill` before the start (None without the memory controller).
    pub oom_kills_before: Option<u64>,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    pub spec: TaskSpec,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("task recovery state is not valid: {0}: it must be the driver_state this plugin returned from StartTask")]
    Decode(serde_json::Error),
    #[error("task recovery state has version {0}, this plugin understands version {STATE_VERSION}: upgrade the plugin or let Nomad restart the task")]
    Version(u32),
    #[error("cannot write {path}: {source}: check that the executor's state_dir is on a writable file system")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("exit record {path} is corrupt: {source}: remove it and restart the task")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

#[cfg(test)]
impl RecoveryState {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a RecoveryState always serializes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        let s: RecoveryState = serde_json::from_slice(bytes).map_err(StateError::Decode)?;
        if s.version != STATE_VERSION {
            return Err(StateError::Version(s.version));
        }
        Ok(s)
    }
}

/// Creates `dir` (and parents) with mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StateError::Write {
            path: dir.to_path_buf(),
            source,
        })
}

/// Writes `bytes` to `dir/name` atomically (temporary file, rename), mode 0600.
///
/// No fsync: these records must survive the plugin (a process crash keeps the page cache, and
/// the rename makes the whole file appear at once), not the machine: no task survives a reboot,
/// and an fsync costs milliseconds on a disk-backed state directory (2 ms here) in every
/// `StartTask` and every task exit.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StateError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let dst = dir.join(name);
    let err = |source| StateError::Write {
        path: dst.clone(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    fs::rename(&tmp, &dst).map_err(err)
}

/// Records `status` in `dir/exit.json`.
pub fn write_exit(dir: &Path, status: &ExitStatus) -> Result<(), StateError> {
    let bytes = serde_json::to_vec(status).expect("an ExitStatus always serializes");
    write_atomic(dir, EXIT_FILE, &bytes)
}

/// Reads `dir/exit.json` (None if the supervisor has not written it).
pub fn read_exit(dir: &Path) -> Result<Option<ExitStatus>, StateError> {
    let path = dir.join(EXIT_FILE);
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| StateError::Corrupt { path, source }),
        Err(_) => Ok(None),
    }
}

/// Start time (clock ticks since boot, field 22 of `/proc/<pid>/stat`).
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&text)
}

fn parse_start_time(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_survives_odd_comm() {
        let stat = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert!(proc_start_time(std::process::id() as i32).is_some());
    }

    #[test]
    fn exit_record_roundtrip_and_garbage() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read_exit(d.path()).unwrap(), None);
        let st = ExitStatus {
            exit_code: 143,
            signal: 15,
            oom_killed: false,
            err: None,
        };
        write_exit(d.path(), &st).unwrap();
        assert_eq!(read_exit(d.path()).unwrap(), Some(st));
        fs::write(d.path().join(EXIT_FILE), b"{nope").unwrap();
        assert!(read_exit(d.path()).is_err());
    }

    #[test]
    fn garbage_recovery_state_is_an_error() {
        let e = RecoveryState::from_bytes(b"\x00garbage").unwrap_err();
        assert!(e.to_string().contains("driver_state"), "{e}");
    }
}
