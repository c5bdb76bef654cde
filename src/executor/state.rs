//! What survives the plugin: the recovery state (in Nomad's `driver_state`) and the exit status
//! record the supervisor writes into the root-only state directory.

use super::cgroup::TaskCgroup;
use super::TaskSpec;
use crate::errors::{error_chain, Chain};
use crate::policy::{Launcher, Policy, PromiseSet, UnveilRule};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Version of the [`RecoveryState`] format. Version 1 (its spec held the launcher argv prefix and
/// the promise and unveil strings instead of a `Policy`) is still read, see
/// [`RecoveryState::from_json`].
pub const STATE_VERSION: u32 = 2;
/// File name of the exit record inside a task's state directory.
pub const EXIT_FILE: &str = "exit.json";
/// File name of the supervisor record (`<pid> <start time>`) inside a task's state directory,
/// written by the fork server when it clones the supervisor: it identifies the supervisor of
/// an interrupted start or of a task the plugin never recovered.
pub const SUPERVISOR_FILE: &str = "supervisor";
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
    #[error("task recovery state is not valid (it must be the driver_state this plugin returned from StartTask)")]
    Decode(#[source] serde_json::Error),
    #[error("task recovery state has version {0}, this plugin understands version {STATE_VERSION}: upgrade the plugin or let Nomad restart the task")]
    Version(u32),
    #[error(
        "cannot write {path} (check that the executor's state_dir is on a writable file system)"
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "task recovery state of version 1 cannot be converted: {0}; let Nomad restart the task"
    )]
    Legacy(String),
    #[error("exit record {path} is corrupt (remove it and restart the task)")]
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
        let s = RecoveryState::from_json(bytes)?;
        if s.version != STATE_VERSION {
            return Err(StateError::Version(s.version));
        }
        Ok(s)
    }
}

impl RecoveryState {
    /// Decodes Nomad's `driver_state`. A version-1 state (written by a plugin before the typed
    /// policy, for a task that still runs across a plugin upgrade) is converted: its sandbox
    /// strings become the [`Policy`] they stood for. Other versions decode as they are and are
    /// refused by the executor's version check.
    pub fn from_json(bytes: &[u8]) -> Result<Self, StateError> {
        let mut v: serde_json::Value = serde_json::from_slice(bytes).map_err(StateError::Decode)?;
        if v.get("version").and_then(serde_json::Value::as_u64) == Some(1) {
            let spec = v
                .get_mut("spec")
                .and_then(serde_json::Value::as_object_mut)
                .ok_or_else(|| StateError::Legacy("it has no task spec".into()))?;
            let mut legacy = serde_json::Map::new();
            for key in ["launcher", "promises", "unveil"] {
                if let Some(val) = spec.remove(key) {
                    legacy.insert(key.into(), val);
                }
            }
            let legacy: LegacySandboxV1 = serde_json::from_value(legacy.into())
                .map_err(|e| StateError::Legacy(e.to_string()))?;
            let policy = serde_json::to_value(legacy.into_policy()?)
                .map_err(|e| StateError::Legacy(e.to_string()))?;
            spec.insert("policy".into(), policy);
            v["version"] = STATE_VERSION.into();
        }
        serde_json::from_value(v).map_err(StateError::Decode)
    }
}

/// The sandbox fields of a version-1 task spec.
#[derive(Deserialize)]
struct LegacySandboxV1 {
    /// `[self_exe, "pledge", flags...]` (built-in) or `[pledge.com]`.
    launcher: Vec<std::ffi::OsString>,
    /// Empty = the launcher's default.
    promises: String,
    /// `PERM:PATH`, absolute.
    unveil: Vec<String>,
}

impl LegacySandboxV1 {
    /// Version 1 wrote exactly these two launcher shapes; this reads them back (it is the
    /// only place a launcher kind is taken from an argv, and only for states of that version).
    fn into_policy(self) -> Result<Policy, StateError> {
        let err = |what: String| StateError::Legacy(what);
        let launcher = match self.launcher.as_slice() {
            [_, mode, flags @ ..] if mode == "pledge" => Launcher::BuiltIn {
                unveil_best_effort: flags.iter().any(|f| f == "--unveil-best-effort"),
            },
            [path] => Launcher::External(path.into()),
            other => {
                return Err(err(format!(
                    "launcher {other:?} is neither ours nor one path"
                )))
            }
        };
        let promises = if self.promises.trim().is_empty() {
            Policy::default_promises()
        } else {
            PromiseSet::parse(&self.promises)
                .map_err(|e| err(format!("promises `{}`: {e}", self.promises)))?
        };
        let unveil = self
            .unveil
            .iter()
            .map(|u| {
                u.parse()
                    .map_err(|e| err(format!("unveil `{u}`: {}", Chain(&e))))
            })
            .collect::<Result<Vec<UnveilRule>, _>>()?;
        Policy::new(promises, unveil, launcher).map_err(|e| err(error_chain(&e)))
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

/// Writes the supervisor record into the state directory `dir` (atomically, 0600).
pub fn write_supervisor_record_at(
    dir: &std::os::fd::OwnedFd,
    pid: i32,
    start_time: u64,
) -> nix::Result<()> {
    use nix::fcntl::{openat, renameat, OFlag};
    use nix::sys::stat::Mode;
    let tmp = ".supervisor.tmp";
    let fd = openat(
        dir,
        tmp,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(0o600),
    )?;
    let text = format!("{pid} {start_time}\n");
    nix::unistd::write(&fd, text.as_bytes())?;
    drop(fd);
    renameat(dir, tmp, dir, SUPERVISOR_FILE)
}

/// The supervisor record of the task state directory `dir`: (pid, start time).
pub fn read_supervisor_record(dir: &Path) -> Option<(i32, u64)> {
    let text = fs::read_to_string(dir.join(SUPERVISOR_FILE)).ok()?;
    let mut it = text.split_whitespace();
    let pid = it.next()?.parse().ok()?;
    let start = it.next()?.parse().ok()?;
    Some((pid, start))
}

/// Whether process `pid` has exited and waits to be reaped (state `Z` or `X` in its stat).
pub fn proc_is_zombie(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let after = &stat[stat.rfind(')').map(|i| i + 1).unwrap_or(0)..];
    matches!(after.split_whitespace().next(), Some("Z" | "X"))
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

    /// A version-1 `driver_state` as that plugin wrote it: `spec.launcher` an argv prefix of
    /// OsStrings (serde's `{"Unix": [bytes]}`), `spec.promises` and `spec.unveil` strings.
    fn v1_state(launcher: &[&str], promises: &str, unveil: &[&str]) -> Vec<u8> {
        let current = RecoveryState {
            version: STATE_VERSION,
            pid: 42,
            start_time: 7,
            cgroup: TaskCgroup {
                path: "/sys/fs/cgroup/x.scope".into(),
                created: true,
            },
            state_path: "/run/npd/tasks/x".into(),
            oom_kills_before: None,
            started_at_ms: 1,
            spec: TaskSpec {
                id: "a/t/1".into(),
                command: "/bin/cat".into(),
                ..Default::default()
            },
        };
        let mut v = serde_json::to_value(&current).unwrap();
        v["version"] = 1.into();
        let spec = v["spec"].as_object_mut().unwrap();
        assert!(spec.remove("policy").is_some());
        let os = |s: &&str| serde_json::json!({ "Unix": s.as_bytes() });
        spec.insert("launcher".into(), launcher.iter().map(os).collect());
        spec.insert("promises".into(), promises.into());
        spec.insert("unveil".into(), unveil.to_vec().into());
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn version_1_states_are_converted_to_a_policy() {
        let st = RecoveryState::from_bytes(&v1_state(
            &[
                "/usr/bin/nomad-pledge-driver",
                "pledge",
                "--unveil-best-effort",
            ],
            "stdio rpath inet",
            &["r:/etc", "rwc:/alloc/a:b c"],
        ))
        .unwrap();
        assert_eq!(st.version, STATE_VERSION);
        assert_eq!((st.pid, st.start_time), (42, 7));
        assert_eq!(st.spec.command, "/bin/cat");
        let p = &st.spec.policy;
        assert_eq!(
            *p.launcher(),
            Launcher::BuiltIn {
                unveil_best_effort: true
            }
        );
        assert_eq!(p.promises().to_string(), "stdio rpath inet");
        let rules: Vec<String> = p.unveil().iter().map(|r| r.to_string()).collect();
        assert_eq!(rules, ["r:/etc", "rwc:/alloc/a:b c"]);

        let st = RecoveryState::from_bytes(&v1_state(&["/opt/pledge.com"], "", &[])).unwrap();
        let p = &st.spec.policy;
        assert_eq!(*p.launcher(), Launcher::External("/opt/pledge.com".into()));
        assert_eq!(p.promises(), Policy::default_promises());

        for (launcher, promises, unveil) in [
            (&[][..], "stdio", &[][..]),
            (&["/opt/pledge.com"][..], "stdio rpth", &[][..]),
            (&["/opt/pledge.com"][..], "stdio", &["q:/etc"][..]),
        ] {
            let e = RecoveryState::from_bytes(&v1_state(launcher, promises, unveil)).unwrap_err();
            assert!(matches!(e, StateError::Legacy(_)), "{e}");
        }
        // The current version round-trips as it is.
        let st2 = RecoveryState::from_bytes(&st.to_bytes()).unwrap();
        assert_eq!(st2, st);
    }
}
