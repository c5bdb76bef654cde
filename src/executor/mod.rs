//! Task executor: runs, supervises, stops and recovers pledge tasks.
//!
//! Process model (design.md §2): for each task the executor's fork server (`forkserver.rs`, our
//! binary exec'd once as `__forkserver`) clones a supervisor straight into the task cgroup and
//! new PID/mount/IPC namespaces (`spawn.rs`, `sys.rs`); the supervisor (`supervisor.rs`) is
//! PID 1 there, forks the task child,
//! forwards signals, reaps, and records the exit status in a root-only state directory
//! (`state.rs`). The plugin holds a pidfd per supervisor, so `wait` is event-driven, and a new
//! plugin process reattaches with the serialized [`RecoveryState`].
//!
//! This file holds the types ([`TaskSpec`], [`ExecutorConfig`], [`ExecError`], the task table)
//! and the constructor; each verb is an `impl Executor` block of its own file, with its helpers:
//! `start.rs` (start, the command check, an interrupted start's cleanup, tracking), `stop.rs`
//! (stop, signal, kill), `destroy.rs` (destroy, also of untracked tasks), `recover.rs`,
//! `wait.rs` (wait and the exit monitor: OOM check, denial and learn-mode events) and
//! `stats.rs` (inspect, stats).

pub mod cgroup;
mod child;
pub mod denial_log;
mod denial_watch;
mod destroy;
pub mod exec;
pub mod forkserver;
pub mod learn_task;
pub mod limits;
pub mod memory;
pub mod mounts;
mod recover;
mod resolve;
pub mod rlimit;
pub mod signal;
pub mod spawn;
mod start;
mod start_guard;
pub mod state;
pub mod stats;
mod stop;
pub mod supervisor;
mod sys;
pub mod user;
mod wait;

#[cfg(test)]
mod error_tests;
#[cfg(test)]
mod tests;

#[allow(unused_imports)]
pub use cgroup::Resources;
#[allow(unused_imports)]
pub use exec::{ExecMode, ExecProcess, EXEC_MODE};
#[allow(unused_imports)]
pub use signal::{parse_signal, Signal, SignalError};
pub(crate) use start::blocking;
#[allow(unused_imports)]
pub use state::{ExitStatus, RecoveryState};
#[allow(unused_imports)]
pub use stats::TaskStats;

use crate::policy::Policy;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::unix::AsyncFd;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use wait::{monitor, oom_grew};

/// How long `start` waits for Nomad's log reader to open the stdout/stderr FIFOs.
pub const LOG_OPEN_TIMEOUT: Duration = Duration::from_secs(60);

pub use forkserver::FORKSERVER_MODE;

/// argv[0] of the helpers the executor starts (it execs them as `/proc/PID/exe`).
const HELPER_ARGV0: &str = "nomad-pledge-driver";

/// Entry point of the fork server that clones the per-task supervisors (an internal mode;
/// users never call it).
pub fn forkserver_main() -> i32 {
    forkserver::server_main()
}

/// Task scheduling importance → process nice value (lowest 19 … highest −20, normal 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Importance {
    Lowest,
    Low,
    #[default]
    Normal,
    High,
    Highest,
}

/// Everything needed to start one task (plain Rust, no wire types).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Nomad task id `<alloc_id>/<task>/<hex>`.
    pub id: String,
    pub alloc_id: String,
    pub task_name: String,
    /// The sandbox: promises, unveil rules (absolute), the launcher that applies them.
    pub policy: Policy,
    /// The program (never empty: StartTask and exec refuse an empty one) and its arguments.
    pub command: String,
    pub args: Vec<String>,
    /// The complete task environment (`USER`/`HOME` are set for the task user).
    pub env: BTreeMap<String, String>,
    /// `""` = the executor's default user; `nomad-<N>` = uid/gid N.
    pub user: String,
    pub task_dir: PathBuf,
    /// Working directory (default: `task_dir`).
    pub work_dir: Option<PathBuf>,
    /// Nomad's log FIFOs (or files, or /dev/null); opened without following symlinks.
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    /// `linux_resources.cpuset_cgroup`: Nomad's task scope, used when it exists.
    pub nomad_cgroup: Option<PathBuf>,
    /// `network_isolation_spec.path` (group network namespace).
    pub netns_path: Option<PathBuf>,
    pub resources: Resources,
    pub importance: Importance,
    /// `ulimit` and `oom_score_adj` (absent in states written before they existed).
    #[serde(default)]
    pub limits: rlimit::TaskLimits,
    /// Volumes and devices bind-mounted into the task's mount namespace, in order.
    #[serde(default)]
    pub mounts: Vec<mounts::BindMount>,
    /// The generated `/etc/resolv.conf` (Nomad's `network.dns`); None = the host's.
    #[serde(default)]
    pub resolv_conf: Option<String>,
    /// `pid_mode = "host"`: the task shares the host's PID namespace (the supervisor then
    /// reaps as a child subreaper and kills what the task leaves when it ends).
    #[serde(default)]
    pub host_pid: bool,
    /// `ipc_mode = "host"`: the task shares the host's IPC namespace.
    #[serde(default)]
    pub host_ipc: bool,
    /// Report the task's seccomp denials as task events (plugin option `seccomp_denials`).
    #[serde(default)]
    pub report_denials: bool,
    /// Learn mode (`run --learn`, plugin option `allow_learn`): nothing is denied, every
    /// would-be denial is recorded and summarised (see `learn_task`).
    #[serde(default)]
    pub learn: bool,
}

/// Executor settings (from the plugin config).
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Root-only directory for supervisor plans and exit records (created 0700).
    pub state_dir: PathBuf,
    /// cgroup v2 mount; None = find it in /proc/self/mountinfo.
    pub cgroup_root: Option<PathBuf>,
    /// This binary (exec'd once as the fork server, which clones the supervisors).
    pub self_exe: PathBuf,
    pub allow_root: bool,
    /// User for tasks without `user` (normally `nobody`).
    pub default_user: String,
}

impl ExecutorConfig {
    /// The configured cgroup v2 mount, else the host's (from `/proc/self/mountinfo`).
    fn cgroup_root(&self) -> Result<PathBuf, ExecError> {
        match &self.cgroup_root {
            Some(r) => Ok(r.clone()),
            None => Ok(cgroup::host_cgroup_root()?),
        }
    }
}

pub use crate::events::TaskEvent;

/// A task event about `spec`'s task, stamped now.
fn task_event(spec: &TaskSpec, message: String, annotations: &[(&str, String)]) -> TaskEvent {
    TaskEvent {
        task_id: spec.id.clone(),
        alloc_id: spec.alloc_id.clone(),
        task_name: spec.task_name.clone(),
        timestamp: SystemTime::now(),
        message,
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Running,
    Exited,
}

/// What `inspect` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInfo {
    pub id: String,
    pub state: TaskState,
    /// Supervisor pid.
    pub pid: i32,
    pub cgroup: PathBuf,
    pub started_at: SystemTime,
    pub completed_at: Option<SystemTime>,
    pub exit: Option<ExitStatus>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("task not found for given id `{0}`")]
    NotFound(String),
    #[error("task `{0}` is already running in this executor: use a new task id")]
    Duplicate(String),
    #[error("cannot destroy running task `{0}`: stop it first or destroy with force")]
    Running(String),
    #[error("task `{0}` has already exited: signals can only be sent to running tasks")]
    Exited(String),
    #[error("task `{id}` is gone: its supervisor (pid {pid}) is not running and left no exit status in {path}; Nomad will restart the task")]
    Gone { id: String, pid: i32, path: PathBuf },
    #[error("recovery state for task `{id}` is not usable: {reason}")]
    BadState { id: String, reason: String },
    #[error("cannot send {signal} to task `{id}`")]
    Deliver {
        id: String,
        signal: Signal,
        source: std::io::Error,
    },
    #[error("executor state directory {path}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("task `{0}` is not running: exec only works while the task runs (check `nomad alloc status`)")]
    NotRunning(String),
    #[error("exec `command` is empty: give the program to run and its arguments")]
    EmptyExecCommand,
    #[error("cannot start exec helper `{exe}` for task `{id}`")]
    ExecSpawn {
        id: String,
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot watch supervisor of task `{id}`")]
    Watch { id: String, source: std::io::Error },
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    User(#[from] user::UserError),
    #[error(transparent)]
    Signal(#[from] SignalError),
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
    #[error(transparent)]
    Spawn(#[from] spawn::SpawnError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Resolve(#[from] resolve::ResolveError),
}

type Exit = Option<(ExitStatus, SystemTime)>;

struct Task {
    state: RecoveryState,
    /// None when the task was recovered after its supervisor had already exited.
    pidfd: Option<Arc<AsyncFd<OwnedFd>>>,
    exit_tx: watch::Sender<Exit>,
    /// We killed it (stop timeout or forced destroy).
    killed: AtomicBool,
    /// Opened by the first stats request (tasks nobody watches hold no extra files).
    stats: Mutex<Option<stats::Reader>>,
    /// The task's mount namespace, held from the start until its exit is published, so that the
    /// namespace's teardown (unmounting the task's copy of the mount table, which waits for an
    /// RCU grace period: milliseconds on a busy host) is not part of the supervisor's exit and
    /// so not of the time until WaitTask answers; the monitor releases it on a blocking thread
    /// (`wait.rs`). None where it could not be taken: the task then only stops slower.
    mount_ns: Mutex<Option<OwnedFd>>,
}

impl Task {
    fn exit(&self) -> Exit {
        self.exit_tx.borrow().clone()
    }
    fn started_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.state.started_at_ms)
    }
}

/// Runs and tracks tasks. Cheap to share behind an `Arc`.
pub struct Executor {
    cfg: ExecutorConfig,
    tasks: Mutex<HashMap<String, Arc<Task>>>,
    events: broadcast::Sender<TaskEvent>,
    core_mhz: Option<f64>,
    /// One exit monitor per running task. Dropping the executor aborts them: a dropped executor
    /// no longer owns its tasks (a successor may have recovered them and remove their state).
    monitors: Mutex<JoinSet<()>>,
    /// Clones the supervisors (started on the first start, restarted when it died).
    forkserver: Arc<forkserver::ForkServer>,
    /// Wakes monitors when a supervisor writes denial records (made on first use, on the
    /// runtime the monitors run on).
    denial_watch: std::sync::OnceLock<Option<Arc<denial_watch::DenialWatch>>>,
}

impl Executor {
    /// Creates the state directory (0700) and the executor, with a task event channel of its
    /// own ([`Executor::subscribe_events`]; the tests' executors).
    #[cfg(test)]
    pub fn new(cfg: ExecutorConfig) -> Result<Self, ExecError> {
        Self::with_events(cfg, broadcast::channel(256).0)
    }

    /// [`Executor::new`] publishing its task events on `events` (the driver's broadcast).
    pub fn with_events(
        cfg: ExecutorConfig,
        events: broadcast::Sender<TaskEvent>,
    ) -> Result<Self, ExecError> {
        state::create_private_dir(&cfg.state_dir.join("tasks"))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cfg.state_dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| ExecError::StateDir {
                path: cfg.state_dir.clone(),
                source,
            },
        )?;
        Ok(Executor {
            tasks: Mutex::new(HashMap::new()),
            events,
            core_mhz: stats::core_mhz(),
            monitors: Mutex::new(JoinSet::new()),
            forkserver: Arc::new(forkserver::ForkServer::new(&cfg.self_exe)),
            denial_watch: std::sync::OnceLock::new(),
            cfg,
        })
    }

    /// Starts the fork server in the background (see [`forkserver::ForkServer::warm`]); a
    /// failure is logged, and the first StartTask tries again and reports it.
    pub fn warm_up(&self) {
        let server = self.forkserver.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = server.warm() {
                tracing::warn!(error = %crate::errors::Chain(&e), "cannot start the fork server yet; the first task start will try again");
            }
        });
    }

    /// Task events (missing cgroup controllers, OOM kills, ...).
    #[cfg(test)]
    pub fn subscribe_events(&self) -> broadcast::Receiver<TaskEvent> {
        self.events.subscribe()
    }

    fn emit(&self, spec: &TaskSpec, message: String, annotations: &[(&str, String)]) {
        let _ = self.events.send(task_event(spec, message, annotations));
    }

    fn cgroup_root(&self) -> Result<PathBuf, ExecError> {
        self.cfg.cgroup_root()
    }

    fn task_state_path(&self, id: &str) -> PathBuf {
        let key: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // FNV-1a of the exact id keeps ids that sanitize alike apart.
        let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        self.cfg
            .state_dir
            .join("tasks")
            .join(format!("{key}-{:08x}", hash as u32))
    }

    /// The spec a task was started (or recovered) with.
    pub fn task_spec(&self, id: &str) -> Option<TaskSpec> {
        self.get(id).map(|t| t.state.spec.clone())
    }

    fn get(&self, id: &str) -> Option<Arc<Task>> {
        self.tasks.lock().expect("task table lock").get(id).cloned()
    }
}
