//! Task executor: runs, supervises, stops and recovers pledge tasks.
//!
//! Process model (design.md §2): for each task the executor's fork server (`forkserver.rs`, our
//! binary exec'd once as `__forkserver`) clones a supervisor straight into the task cgroup and
//! new PID/mount/IPC namespaces (`spawn.rs`, `sys.rs`); the supervisor (`supervisor.rs`) is
//! PID 1 there, forks the task child,
//! forwards signals, reaps, and records the exit status in a root-only state directory
//! (`state.rs`). The plugin holds a pidfd per supervisor, so `wait` is event-driven, and a new
//! plugin process reattaches with the serialized [`RecoveryState`].

pub mod cgroup;
mod child;
pub mod denial_log;
mod denial_watch;
pub mod exec;
pub mod forkserver;
pub mod learn_task;
pub mod limits;
pub mod mounts;
mod resolve;
pub mod rlimit;
pub mod signal;
pub mod spawn;
mod start_guard;
pub mod state;
pub mod stats;
pub mod supervisor;
mod sys;
pub mod user;

#[cfg(test)]
mod tests;

#[allow(unused_imports)]
pub use cgroup::Resources;
#[allow(unused_imports)]
pub use exec::{ExecMode, ExecProcess, EXEC_MODE};
#[allow(unused_imports)]
pub use signal::{parse_signal, Signal, SignalError};
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

/// How long `start` waits for Nomad's log reader to open the stdout/stderr FIFOs.
pub const LOG_OPEN_TIMEOUT: Duration = Duration::from_secs(60);

pub use forkserver::FORKSERVER_MODE;

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

pub use crate::events::TaskEvent;

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
    #[error("cannot send {signal} to task `{id}`: {source}")]
    Deliver {
        id: String,
        signal: Signal,
        source: std::io::Error,
    },
    #[error("executor state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("task `{0}` is not running: exec only works while the task runs (check `nomad alloc status`)")]
    NotRunning(String),
    #[error("exec `command` is empty: give the program to run and its arguments")]
    EmptyExecCommand,
    #[error("cannot start exec helper `{exe}` for task `{id}`: {source}")]
    ExecSpawn {
        id: String,
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot watch supervisor of task `{id}`: {source}")]
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

    /// Task events (missing cgroup controllers, OOM kills, ...).
    #[cfg(test)]
    pub fn subscribe_events(&self) -> broadcast::Receiver<TaskEvent> {
        self.events.subscribe()
    }

    fn emit(&self, spec: &TaskSpec, message: String, annotations: &[(&str, String)]) {
        let _ = self.events.send(TaskEvent {
            task_id: spec.id.clone(),
            alloc_id: spec.alloc_id.clone(),
            task_name: spec.task_name.clone(),
            timestamp: SystemTime::now(),
            message,
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        });
    }

    fn cgroup_root(&self) -> Result<PathBuf, ExecError> {
        match &self.cfg.cgroup_root {
            Some(r) => Ok(r.clone()),
            None => Ok(cgroup::host_cgroup_root()?),
        }
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

    /// Starts a task; the returned state goes into Nomad's `driver_state`.
    pub async fn start(&self, spec: TaskSpec) -> Result<RecoveryState, ExecError> {
        if spec.id.is_empty() {
            return Err(ExecError::BadState {
                id: String::new(),
                reason: "the task `id` is empty".into(),
            });
        }
        if self.get(&spec.id).is_some() {
            return Err(ExecError::Duplicate(spec.id));
        }
        let user = user::resolve_user(&spec.user, &self.cfg.default_user, self.cfg.allow_root)?;
        let state_path = self.task_state_path(&spec.id);
        let plan = spawn::build_plan(&spec, &self.cfg.self_exe, user, &state_path)?;
        self.check_command(&spec, &plan).await?;
        let root = self.cgroup_root()?;
        self.kill_interrupted_start(&spec, &root, &state_path)
            .await?;
        let cg = cgroup::prepare(
            &root,
            spec.nomad_cgroup.as_deref(),
            &spec.alloc_id,
            &spec.task_name,
        )?;
        // From here on every error return (and a dropped start future) undoes the start.
        let mut guard = start_guard::StartGuard::new(cg, state_path.clone());
        let cg = guard.cgroup().clone();
        let missing = cgroup::apply_limits(&root, &cg.path, &spec.resources)?;
        if !missing.is_empty() {
            self.emit(
                &spec,
                format!(
                    "cgroup controllers not available on this host: {}; the task's limits for them are not enforced",
                    missing.join(", ")
                ),
                &[("missing_controllers", missing.join(","))],
            );
        }
        let _ = std::fs::remove_dir_all(&state_path);
        let oom_kills_before = cgroup::oom_kills(&cg.path);
        let server = self.forkserver.clone();
        let (spec2, plan2, cgpath) = (spec.clone(), plan.clone(), cg.path.clone());
        let spawned = async {
            // A FIFO open blocks until logmon reads: bounded, so StartTask cannot hang forever
            // (a thread still blocked after the timeout only drops the file when it returns).
            let logs = tokio::time::timeout(
                LOG_OPEN_TIMEOUT,
                tokio::task::spawn_blocking(move || spawn::open_logs(&spec2)),
            )
            .await
            .map_err(|_| spawn::SpawnError::LogTimeout {
                path: spec.stdout_path.clone(),
                secs: LOG_OPEN_TIMEOUT.as_secs(),
            })?
            .map_err(|e| ExecError::Internal(e.to_string()))??;
            tokio::task::spawn_blocking(move || {
                spawn::spawn_supervisor(&server, &plan2, &logs, &cgpath)
            })
            .await
            .map_err(|e| ExecError::Internal(e.to_string()))?
            .map_err(ExecError::from)
        }
        .await;
        let (pid, pidfd) = spawned?;
        guard.spawned();
        if let Err(e) = state::write_atomic(
            &state_path,
            state::CGROUP_FILE,
            &serde_json::to_vec(&cg).expect("a TaskCgroup always serializes"),
        ) {
            tracing::warn!(task_id = %spec.id, error = %e, "cannot record the task's cgroup; a DestroyTask after a plugin restart will not remove it");
        }
        let state = RecoveryState {
            version: state::STATE_VERSION,
            pid,
            start_time: state::proc_start_time(pid).unwrap_or(0),
            cgroup: cg,
            state_path,
            oom_kills_before,
            started_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            spec,
        };
        // A failure here kills the task (the guard): never leave an untracked task running.
        self.track(state.clone(), Some(pidfd), None)?;
        guard.commit();
        Ok(state)
    }

    /// Refuses a `command` the task user cannot run or a `work_dir` that is not a directory
    /// now, with the directories searched, instead of a failed task after the start.
    async fn check_command(
        &self,
        spec: &TaskSpec,
        plan: &spawn::SupervisorPlan,
    ) -> Result<(), ExecError> {
        let (command, path_var) = (spec.command.clone(), spec.env.get("PATH").cloned());
        let (cwd, user) = (plan.cwd.clone(), plan.user.clone());
        tokio::task::spawn_blocking(move || {
            resolve::check(&command, path_var.as_deref(), &cwd, &user)
        })
        .await
        .map_err(|e| ExecError::Internal(e.to_string()))??;
        Ok(())
    }

    /// A plugin that died before answering `StartTask` may have started this task already, and
    /// Nomad then retries the start with the same config: that attempt's supervisor (this
    /// binary in supervisor mode with this task's plan path) still runs in the task cgroup,
    /// unknown to Nomad. It is killed with everything in the cgroup so that exactly one
    /// instance of the task runs, and the retry proceeds. Processes of any other origin are
    /// left alone (`prepare` refuses the busy cgroup).
    async fn kill_interrupted_start(
        &self,
        spec: &TaskSpec,
        root: &Path,
        state_path: &Path,
    ) -> Result<(), ExecError> {
        let cg = cgroup::task_cgroup(
            root,
            spec.nomad_cgroup.as_deref(),
            &spec.alloc_id,
            &spec.task_name,
        )?;
        if !cgroup::procs(&cg.path)
            .into_iter()
            .any(|pid| spawn::is_supervisor_for(pid, state_path))
        {
            return Ok(());
        }
        let pids = cgroup::kill_leftovers(&cg.path).await?;
        if !pids.is_empty() {
            tracing::warn!(
                task_id = %spec.id,
                cgroup = %cg.path.display(),
                ?pids,
                "killed the processes of an interrupted start of this task (the plugin stopped before answering StartTask)"
            );
            self.emit(
                spec,
                "killed the leftover of an interrupted start of this task (the plugin stopped before answering StartTask); starting it again".into(),
                &[("killed_pids", format!("{pids:?}"))],
            );
        }
        Ok(())
    }

    /// Registers a task and, if it runs, starts its exit monitor.
    fn track(
        &self,
        state: RecoveryState,
        pidfd: Option<OwnedFd>,
        exited: Option<ExitStatus>,
    ) -> Result<(), ExecError> {
        let afd = match pidfd {
            Some(fd) => Some(Arc::new(sys::watch_pidfd(fd).map_err(|source| {
                ExecError::Watch {
                    id: state.spec.id.clone(),
                    source,
                }
            })?)),
            None => None,
        };
        let (exit_tx, _) = watch::channel(exited.map(|s| (s, SystemTime::now())));
        let task = Arc::new(Task {
            state,
            pidfd: afd,
            exit_tx,
            killed: AtomicBool::new(false),
            stats: Mutex::new(None),
        });
        self.tasks
            .lock()
            .expect("task table lock")
            .insert(task.state.spec.id.clone(), task.clone());
        if task.pidfd.is_some() {
            let events = self.events.clone();
            let watch = if task.state.spec.report_denials {
                self.denial_watch
                    .get_or_init(denial_watch::DenialWatch::start)
                    .as_ref()
                    .and_then(|w| w.watch(&task.state.state_path))
            } else {
                None
            };
            let mut monitors = self.monitors.lock().expect("monitor set lock");
            while monitors.try_join_next().is_some() {}
            monitors.spawn(monitor(task, events, watch));
        }
        Ok(())
    }

    /// Reattaches to a task started by an earlier executor (no-op if already tracked).
    pub async fn recover(&self, state: RecoveryState) -> Result<(), ExecError> {
        let id = state.spec.id.clone();
        if self.get(&id).is_some() {
            return Ok(());
        }
        let bad = |reason: String| ExecError::BadState {
            id: id.clone(),
            reason,
        };
        if id.is_empty() {
            return Err(bad("the task id is empty".into()));
        }
        if state.version != state::STATE_VERSION {
            return Err(state::StateError::Version(state.version).into());
        }
        if state.state_path != self.task_state_path(&id) {
            return Err(bad(format!(
                "state path {} is not this executor's ({}): was the plugin's state_dir changed?",
                state.state_path.display(),
                self.task_state_path(&id).display()
            )));
        }
        // The cgroup is what stop/destroy kill: it must be the task's own scope, never an
        // ancestor (a garbage state must not be able to kill the whole machine).
        let root = self.cgroup_root()?;
        let cg = &state.cgroup.path;
        let own = cg.parent() == Some(root.join(cgroup::OWN_SLICE).as_path());
        let nomads = state.spec.nomad_cgroup.as_deref() == Some(cg.as_path()) && cg != &root;
        let plain = cg.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::RootDir
            )
        });
        if !plain || !cg.starts_with(&root) || !(own || (nomads && !state.cgroup.created)) {
            return Err(bad(format!(
                "cgroup {} is not a task scope under {}",
                cg.display(),
                root.display()
            )));
        }
        if state.pid <= 1 {
            return Err(bad(format!("pid {} is not a supervisor", state.pid)));
        }
        // A zombie has exited: supervisors orphaned by a dead fork server are reaped by init,
        // which may take its time, and its exit record is what counts.
        let alive = match sys::pidfd_open(state.pid) {
            Ok(fd)
                if state::proc_start_time(state.pid) == Some(state.start_time)
                    && !state::proc_is_zombie(state.pid) =>
            {
                Some(fd)
            }
            _ => None,
        };
        if let Some(fd) = alive {
            return self.track(state, Some(fd), None);
        }
        match state::read_exit(&state.state_path)? {
            Some(mut st) => {
                st.oom_killed |= oom_grew(&state);
                self.track(state, None, Some(st))
            }
            None => Err(ExecError::Gone {
                id,
                pid: state.pid,
                path: state.state_path,
            }),
        }
    }

    /// Waits for the task to exit (repeatable, concurrent; immediate once exited).
    pub async fn wait(&self, id: &str) -> Result<ExitStatus, ExecError> {
        let task = self.get(id).ok_or_else(|| ExecError::NotFound(id.into()))?;
        let mut rx = task.exit_tx.subscribe();
        let v = rx
            .wait_for(|v| v.is_some())
            .await
            .map_err(|e| ExecError::Internal(e.to_string()))?;
        Ok(v.as_ref().map(|(s, _)| s.clone()).unwrap_or_default())
    }

    /// Sends `signal` (default SIGTERM) to the task command, waits up to `timeout` for the
    /// supervisor to exit, then kills the whole cgroup. Unknown id → Ok.
    pub async fn stop(&self, id: &str, signal: &str, timeout: Duration) -> Result<(), ExecError> {
        let sig = parse_signal(signal)?;
        let Some(task) = self.get(id) else {
            return Ok(());
        };
        if task.exit().is_some() {
            return Ok(());
        }
        if !timeout.is_zero() {
            if let Some(fd) = &task.pidfd {
                let _ = sys::pidfd_send_signal(fd.get_ref(), sig as i32);
            }
            let mut rx = task.exit_tx.subscribe();
            if tokio::time::timeout(timeout, rx.wait_for(|v| v.is_some()))
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        self.kill(&task).await
    }

    async fn kill(&self, task: &Task) -> Result<(), ExecError> {
        task.killed.store(true, Ordering::SeqCst);
        cgroup::kill_all(&task.state.cgroup.path);
        if let Some(fd) = &task.pidfd {
            let _ = sys::pidfd_send_signal(fd.get_ref(), libc::SIGKILL);
        }
        let mut rx = task.exit_tx.subscribe();
        let _ = rx.wait_for(|v| v.is_some()).await;
        Ok(())
    }

    /// Delivers a signal to the task command (through its supervisor).
    pub async fn signal(&self, id: &str, signal: &str) -> Result<(), ExecError> {
        let sig = parse_signal(signal)?;
        let task = self.get(id).ok_or_else(|| ExecError::NotFound(id.into()))?;
        match (&task.pidfd, task.exit()) {
            (Some(fd), None) => {
                sys::pidfd_send_signal(fd.get_ref(), sig as i32).map_err(|source| {
                    ExecError::Deliver {
                        id: id.into(),
                        signal: sig,
                        source,
                    }
                })
            }
            _ => Err(ExecError::Exited(id.into())),
        }
    }

    /// Forgets the task and removes its cgroup (if ours) and state files. A running task is an
    /// error unless `force`, which kills it first. Unknown id → Ok.
    pub async fn destroy(&self, id: &str, force: bool) -> Result<(), ExecError> {
        let Some(task) = self.get(id) else {
            return self.destroy_untracked(id, force).await;
        };
        if task.exit().is_none() {
            if !force {
                return Err(ExecError::Running(id.into()));
            }
            self.kill(&task).await?;
        }
        if task.state.cgroup.created {
            cgroup::remove(&task.state.cgroup.path).await?;
        }
        match std::fs::remove_dir_all(&task.state.state_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ExecError::StateDir {
                    path: task.state.state_path.clone(),
                    source,
                })
            }
        }
        self.tasks.lock().expect("task table lock").remove(id);
        Ok(())
    }

    /// DestroyTask of a task this plugin instance does not track: Nomad saw it end (or gave up
    /// on it) while the plugin was down and never recovered it. What it left is removed: with
    /// `force` its supervisor if it still runs (found by its plan path; its death kills the
    /// task's PID namespace), then our own cgroup scope and its state directory. A supervisor
    /// still running without `force` keeps everything, as for a tracked task.
    async fn destroy_untracked(&self, id: &str, force: bool) -> Result<(), ExecError> {
        let state_path = self.task_state_path(id);
        if id.is_empty() || !state_path.is_dir() {
            return Ok(());
        }
        let supervisors = spawn::supervisors_for(&state_path);
        if !supervisors.is_empty() {
            if !force {
                return Err(ExecError::Running(id.into()));
            }
            for pid in &supervisors {
                // Through a pidfd taken before re-checking the process: a pid reused since the
                // scan is never signalled.
                if let Ok(fd) = sys::pidfd_open(*pid) {
                    if spawn::is_supervisor_for(*pid, &state_path) {
                        let _ = sys::pidfd_send_signal(&fd, libc::SIGKILL);
                    }
                }
            }
            tracing::warn!(task_id = %id, ?supervisors, "killed the supervisor of a task this plugin was not tracking (DestroyTask with force)");
        }
        let recorded: Option<cgroup::TaskCgroup> =
            std::fs::read(state_path.join(state::CGROUP_FILE))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
        if let (Some(cg), Ok(root)) = (recorded, self.cgroup_root()) {
            // Only a scope we created, directly under our own slice.
            if cg.created && cg.path.parent() == Some(root.join(cgroup::OWN_SLICE).as_path()) {
                cgroup::remove(&cg.path).await?;
            }
        }
        std::fs::remove_dir_all(&state_path).map_err(|source| ExecError::StateDir {
            path: state_path,
            source,
        })
    }

    /// Current state of a task.
    pub fn inspect(&self, id: &str) -> Result<TaskInfo, ExecError> {
        let task = self.get(id).ok_or_else(|| ExecError::NotFound(id.into()))?;
        let exit = task.exit();
        Ok(TaskInfo {
            id: id.into(),
            state: if exit.is_some() {
                TaskState::Exited
            } else {
                TaskState::Running
            },
            pid: task.state.pid,
            cgroup: task.state.cgroup.path.clone(),
            started_at: task.started_at(),
            completed_at: exit.as_ref().map(|(_, t)| *t),
            exit: exit.map(|(s, _)| s),
        })
    }

    /// Resource usage; CPU percent is relative to the previous call (or the start).
    pub async fn stats(&self, id: &str) -> Result<TaskStats, ExecError> {
        let task = self.get(id).ok_or_else(|| ExecError::NotFound(id.into()))?;
        let mut reader = task.stats.lock().expect("stats lock");
        let reader = reader.get_or_insert_with(|| {
            stats::Reader::new(&task.state.cgroup.path, task.started_at()).excluding(task.state.pid)
        });
        Ok(reader.sample(self.core_mhz))
    }
}

fn oom_grew(state: &RecoveryState) -> bool {
    match (
        state.oom_kills_before,
        cgroup::oom_kills(&state.cgroup.path),
    ) {
        (Some(before), Some(now)) => now > before,
        (None, Some(now)) => now > 0,
        _ => false,
    }
}

/// How often a running task's denial records are looked at.
const DENIAL_POLL: Duration = Duration::from_millis(500);

/// Publishes the task's denial records not published yet, each as a task event and an info
/// line in the plugin log, and saves how far it got.
fn publish_denials(task: &Task, events: &broadcast::Sender<TaskEvent>) {
    let dir = &task.state.state_path;
    let (records, offset) = denial_log::read_new(dir);
    if records.is_empty() {
        return;
    }
    let spec = &task.state.spec;
    for r in records {
        let message = r.message();
        tracing::info!(task_id = %spec.id, alloc_id = %spec.alloc_id, "seccomp denial: {message}");
        let _ = events.send(TaskEvent {
            task_id: spec.id.clone(),
            alloc_id: spec.alloc_id.clone(),
            task_name: spec.task_name.clone(),
            timestamp: SystemTime::now(),
            message,
            annotations: BTreeMap::new(),
        });
    }
    denial_log::save_offset(dir, offset);
}

/// Waits for the supervisor's pidfd, reaps it, and publishes the recorded exit status.
async fn monitor(
    task: Arc<Task>,
    events: broadcast::Sender<TaskEvent>,
    watch: Option<denial_watch::Watch>,
) {
    let Some(afd) = task.pidfd.clone() else {
        return;
    };
    // The supervisor's denial records (see `denial_log.rs`): looked at whenever the task's
    // state directory is written (inotify, `denial_watch.rs`), or twice a second where no
    // watch could be added, and once more after the task ended, before the exit is published.
    let follow = task.state.spec.report_denials;
    if follow {
        // Records written before the watch existed.
        publish_denials(&task, &events);
    }
    let poll = follow && watch.is_none();
    let mut tick = tokio::time::interval(DENIAL_POLL);
    loop {
        tokio::select! {
            _ = afd.readable() => break,
            _ = async { watch.as_ref().expect("guarded").changed.notified().await }, if watch.is_some() => {
                publish_denials(&task, &events)
            }
            _ = tick.tick(), if poll => publish_denials(&task, &events),
        }
    }
    drop(watch);
    sys::reap_pidfd(afd.get_ref());
    if follow {
        publish_denials(&task, &events);
    }
    let path: &Path = &task.state.state_path;
    let mut st = match state::read_exit(path) {
        Ok(Some(s)) => s,
        Ok(None) => {
            let mut s = ExitStatus {
                exit_code: 128 + libc::SIGKILL,
                signal: libc::SIGKILL,
                oom_killed: false,
                err: None,
            };
            if !task.killed.load(Ordering::SeqCst) {
                s.err = Some("the task's supervisor was killed before it recorded an exit status (SIGKILL from outside: the OOM killer or an operator)".into());
            }
            s
        }
        Err(e) => ExitStatus {
            exit_code: 1,
            err: Some(e.to_string()),
            ..Default::default()
        },
    };
    st.oom_killed |= oom_grew(&task.state);
    if let Some(err) = &st.err {
        // Why the task could not run (the sandbox refused it, the supervisor failed): an event
        // Nomad shows next to the task, besides WaitTask's `err`.
        let spec = &task.state.spec;
        let _ = events.send(TaskEvent {
            task_id: spec.id.clone(),
            alloc_id: spec.alloc_id.clone(),
            task_name: spec.task_name.clone(),
            timestamp: SystemTime::now(),
            message: err.clone(),
            annotations: BTreeMap::new(),
        });
    }
    if st.oom_killed {
        let spec = &task.state.spec;
        let _ = events.send(TaskEvent {
            task_id: spec.id.clone(),
            alloc_id: spec.alloc_id.clone(),
            task_name: spec.task_name.clone(),
            timestamp: SystemTime::now(),
            message: "task was killed by the OOM killer: raise its memory limit".into(),
            annotations: BTreeMap::new(),
        });
    }
    if let Some(l) = learn_task::read_outcome(path) {
        // Learn mode (`run --learn`): the policy the task needed, ready to paste.
        let spec = &task.state.spec;
        tracing::info!(task_id = %spec.id, alloc_id = %spec.alloc_id, promises = %l.promises, unveil = ?l.unveil, "learn mode: the task needed this policy");
        let mut annotations = BTreeMap::new();
        annotations.insert("learn_fragment".to_string(), l.fragment.clone());
        annotations.insert("learn_promises".to_string(), l.promises.clone());
        annotations.insert("learn_warnings".to_string(), l.warnings.join("\n"));
        let _ = events.send(TaskEvent {
            task_id: spec.id.clone(),
            alloc_id: spec.alloc_id.clone(),
            task_name: spec.task_name.clone(),
            timestamp: SystemTime::now(),
            message: format!(
                "learn mode: the task needed promises = \"{}\", unveil = {:?}",
                l.promises, l.unveil
            ),
            annotations,
        });
    }
    if path.is_dir() {
        let _ = state::write_exit(path, &st);
    }
    task.exit_tx.send_replace(Some((st, SystemTime::now())));
}
