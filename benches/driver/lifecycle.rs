//! The plugin side: spawns the built binary as a Nomad client would (go-plugin handshake, SetConfig,
//! Fingerprint and TaskEvents streams), builds TaskConfigs like a Nomad ≥ 1.7 client (alloc dir,
//! log FIFOs read by a thread, a cgroup v2 scope) and drives StartTask/WaitTask/StopTask/
//! DestroyTask/TaskStats.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tonic::Code;

use crate::common::pb::base::{NomadConfig, NomadDriverConfig, SetConfigRequest};
use crate::common::pb::drivers::{
    AllocatedCpuResources, AllocatedMemoryResources, AllocatedTaskResources, DestroyTaskRequest,
    FingerprintRequest, LinuxResources, Resources, StartTaskRequest, StopTaskRequest, TaskConfig,
    TaskEventsRequest, TaskStatsRequest, WaitTaskRequest,
};
use crate::common::Plugin;
use crate::msgpack::{self, Value};

/// Upper bound for anything that should happen soon (a guard against hanging, not a measurement).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// What a task runs and where its output goes.
pub struct TaskSpec {
    pub name: &'static str,
    pub command: &'static str,
    pub args: Vec<String>,
    pub promises: &'static str,
    pub unveil: Vec<String>,
    /// true: stdout/stderr are FIFOs read by the benchmark (as Nomad's logmon does); false:
    /// /dev/null (a task with `logs { disabled = true }`).
    pub fifos: bool,
}

/// A started task.
pub struct Task {
    pub id: String,
    alloc_dir: PathBuf,
    scope: Option<PathBuf>,
    fifo_paths: Vec<PathBuf>,
    /// Receives the instant of the first stdout byte.
    first_byte: Option<mpsc::Receiver<Instant>>,
    /// What the task wrote to stderr so far (for error messages).
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Task {
    /// The task's stderr so far, first line, for error messages.
    pub fn stderr_text(&self) -> String {
        let bytes = self.stderr.lock().unwrap().clone();
        crate::baseline::first_line(&String::from_utf8_lossy(&bytes))
    }
}

/// A plugin process under test and the state of the simulated Nomad client.
pub struct Bench {
    pub plugin: Plugin,
    pub pid: u32,
    root: tempfile::TempDir,
    /// `<cgroup v2 mount>/nomad.slice/share.slice`, when a cgroup v2 mount exists.
    cgroup_parent: Option<PathBuf>,
    /// Cgroup directories this benchmark created (removed at the end, deepest first).
    created_cgroups: Vec<PathBuf>,
    counter: AtomicU64,
    /// First fingerprint: (health, description).
    pub health: String,
}

fn rpc_err(call: &str, s: tonic::Status) -> String {
    if s.code() == Code::Unimplemented {
        format!("{call} answers UNIMPLEMENTED on this build")
    } else {
        format!("{call}: {:?}: {}", s.code(), s.message())
    }
}

impl Bench {
    /// Starts the plugin, sends SetConfig, and opens the Fingerprint and TaskEvents streams
    /// like a Nomad client.
    pub async fn start() -> Result<Bench, String> {
        Bench::start_with(Vec::new()).await
    }

    /// [`Bench::start`] with extra plugin options (e.g. `seccomp_denials = false`).
    pub async fn start_with(extra: Vec<(&str, Value)>) -> Result<Bench, String> {
        let plugin = Plugin::start(&[]).await;
        let pid = plugin.child.id().ok_or("plugin exited at once")?;
        let root = tempfile::Builder::new()
            .prefix("nomad-pledge-bench.")
            .tempdir()
            .map_err(|e| format!("create temp dir: {e}"))?;
        // The task user (nobody) must be able to reach its task directory.
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", root.path().display()))?;
        let state = root.path().join("state");
        let mut fields = vec![
            ("allow_root", Value::Nil),
            ("cgroup_root", Value::Nil),
            ("default_user", Value::Nil),
            ("log_level", Value::Str("warn".into())),
            ("pledge_executable", Value::Nil),
            (
                "state_dir",
                Value::Str(state.to_string_lossy().into_owned()),
            ),
            ("unveil_best_effort", Value::Nil),
        ];
        for (k, v) in extra {
            fields.retain(|(f, _)| *f != k);
            fields.push((k, v));
        }
        let config = msgpack::object(fields);
        plugin
            .base()
            .set_config(SetConfigRequest {
                msgpack_config: config,
                nomad_config: Some(NomadConfig {
                    driver: Some(NomadDriverConfig {
                        client_max_port: 14512,
                        client_min_port: 14000,
                        topology: None,
                    }),
                }),
                plugin_api_version: "v0.1.0".into(),
            })
            .await
            .map_err(|s| rpc_err("SetConfig", s))?;
        // A Go server sends a stream's response headers only with its first message, and a tonic
        // client waits for them: open both streams on their own tasks, like a Nomad client that
        // never blocks on them.
        let (fp_tx, fp_rx) = tokio::sync::oneshot::channel();
        let mut driver = plugin.driver();
        tokio::spawn(async move {
            let mut stream = match driver.fingerprint(FingerprintRequest {}).await {
                Ok(s) => s.into_inner(),
                Err(s) => {
                    let _ = fp_tx.send(Err(rpc_err("Fingerprint", s)));
                    return;
                }
            };
            let first = match stream.next().await {
                Some(Ok(m)) => Ok(format!("{:?}: {}", m.health(), m.health_description)),
                Some(Err(s)) => Err(rpc_err("Fingerprint", s)),
                None => Err("fingerprint stream ended at once".to_string()),
            };
            let _ = fp_tx.send(first);
            while let Some(Ok(_)) = stream.next().await {}
        });
        let mut driver = plugin.driver();
        tokio::spawn(async move {
            if let Ok(s) = driver.task_events(TaskEventsRequest {}).await {
                let mut events = s.into_inner();
                while let Some(Ok(_)) = events.next().await {}
            }
        });
        let health = match tokio::time::timeout(PATIENCE, fp_rx).await {
            Ok(Ok(Ok(h))) => h,
            Ok(Ok(Err(e))) => return Err(e),
            Ok(Err(_)) => return Err("fingerprint task ended".into()),
            Err(_) => "no fingerprint within 30 s".into(),
        };
        Ok(Bench {
            plugin,
            pid,
            root,
            cgroup_parent: cgroup2_mount().map(|m| m.join("nomad.slice").join("share.slice")),
            created_cgroups: Vec::new(),
            counter: AtomicU64::new(0),
            health,
        })
    }

    fn next_alloc_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!(
            "{:08x}-{:04x}-4{:03x}-8000-{:012x}",
            t,
            std::process::id() & 0xffff,
            n & 0xfff,
            n
        )
    }

    /// Creates a cgroup directory, remembering it (and any parent it had to create) for removal.
    fn make_cgroup(&mut self, path: &Path) -> Result<(), String> {
        let mut missing = Vec::new();
        let mut p = path.to_path_buf();
        while !p.exists() {
            missing.push(p.clone());
            if !p.pop() {
                break;
            }
        }
        for dir in missing.iter().rev() {
            fs::create_dir(dir).map_err(|e| format!("create cgroup {}: {e}", dir.display()))?;
            if dir != path {
                self.created_cgroups.push(dir.clone());
            }
        }
        Ok(())
    }

    /// Builds the alloc dir, FIFOs (with reader threads) and cgroup scope, then calls StartTask.
    /// Returns the task and the instant just before the StartTask request was sent.
    pub async fn start_task(&mut self, spec: &TaskSpec) -> Result<(Task, Instant), String> {
        let alloc_id = self.next_alloc_id();
        let alloc_dir = self.root.path().join(&alloc_id);
        let task_dir = alloc_dir.join(spec.name);
        for (dir, mode) in [
            (alloc_dir.clone(), 0o755),
            (alloc_dir.join("alloc"), 0o755),
            (alloc_dir.join("alloc/logs"), 0o755),
            (alloc_dir.join("alloc/data"), 0o777),
            (alloc_dir.join("alloc/tmp"), 0o777),
            (task_dir.clone(), 0o777),
            (task_dir.join("local"), 0o777),
            (task_dir.join("tmp"), 0o1777),
            (task_dir.join("secrets"), 0o777),
        ] {
            fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
                .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
        }
        let mut task = Task {
            id: format!("{alloc_id}/{}/{:08x}", spec.name, rand32()),
            alloc_dir: alloc_dir.clone(),
            scope: None,
            fifo_paths: Vec::new(),
            first_byte: None,
            stderr: Arc::new(Mutex::new(Vec::new())),
        };
        let (stdout_path, stderr_path) = if spec.fifos {
            let logs = alloc_dir.join("alloc/logs");
            let out = logs.join(format!(".{}.stdout.fifo", spec.name));
            let err = logs.join(format!(".{}.stderr.fifo", spec.name));
            for p in [&out, &err] {
                nix::unistd::mkfifo(p.as_path(), nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|e| format!("mkfifo {}: {e}", p.display()))?;
            }
            let (tx, rx) = mpsc::channel();
            spawn_reader(out.clone(), Some(tx), None);
            spawn_reader(err.clone(), None, Some(task.stderr.clone()));
            task.first_byte = Some(rx);
            task.fifo_paths = vec![out.clone(), err.clone()];
            (out, err)
        } else {
            (PathBuf::from("/dev/null"), PathBuf::from("/dev/null"))
        };
        let scope = match self.cgroup_parent.clone() {
            Some(parent) => {
                let scope = parent.join(format!("{alloc_id}.{}.scope", spec.name));
                self.make_cgroup(&scope)?;
                task.scope = Some(scope.clone());
                scope.to_string_lossy().into_owned()
            }
            None => String::new(),
        };
        let driver_config = msgpack::object(vec![
            ("command", Value::Str(spec.command.into())),
            ("args", Value::List(spec.args.clone())),
            ("promises", Value::Str(spec.promises.into())),
            ("unveil", Value::List(spec.unveil.clone())),
            ("importance", Value::Nil),
            ("work_dir", Value::Nil),
        ]);
        let env: HashMap<String, String> = [
            ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string()),
            ("NOMAD_ALLOC_ID", alloc_id.clone()),
            ("NOMAD_TASK_NAME", spec.name.to_string()),
            (
                "NOMAD_ALLOC_DIR",
                alloc_dir.join("alloc").to_string_lossy().into_owned(),
            ),
            (
                "NOMAD_TASK_DIR",
                task_dir.join("local").to_string_lossy().into_owned(),
            ),
            (
                "NOMAD_SECRETS_DIR",
                task_dir.join("secrets").to_string_lossy().into_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let config = TaskConfig {
            id: task.id.clone(),
            name: spec.name.into(),
            msgpack_driver_config: driver_config,
            env,
            resources: Some(Resources {
                allocated_resources: Some(AllocatedTaskResources {
                    cpu: Some(AllocatedCpuResources { cpu_shares: 100 }),
                    memory: Some(AllocatedMemoryResources {
                        memory_mb: 64,
                        memory_max_mb: 0,
                    }),
                    networks: Vec::new(),
                }),
                linux_resources: Some(LinuxResources {
                    cpu_shares: 100,
                    memory_limit_bytes: 64 << 20,
                    cpuset_cgroup: scope,
                    ..Default::default()
                }),
                ports: Vec::new(),
            }),
            alloc_dir: alloc_dir.to_string_lossy().into_owned(),
            stdout_path: stdout_path.to_string_lossy().into_owned(),
            stderr_path: stderr_path.to_string_lossy().into_owned(),
            task_group_name: "bench".into(),
            job_name: "bench".into(),
            job_id: "bench".into(),
            alloc_id,
            namespace: "default".into(),
            node_name: "bench-node".into(),
            node_id: "00000000-0000-4000-8000-000000000000".into(),
            ..Default::default()
        };
        let t0 = Instant::now();
        let res = self
            .plugin
            .driver()
            .start_task(StartTaskRequest { task: Some(config) })
            .await;
        if let Err(s) = res {
            self.forget(task);
            return Err(rpc_err("StartTask", s));
        }
        Ok((task, t0))
    }

    /// Waits for the first stdout byte of a FIFO task.
    pub async fn first_byte(&self, task: &mut Task) -> Result<Instant, String> {
        let rx = task.first_byte.take().ok_or("task has no stdout FIFO")?;
        tokio::task::spawn_blocking(move || rx.recv_timeout(PATIENCE))
            .await
            .map_err(|e| format!("join: {e}"))?
            .map_err(|_| format!("no stdout byte within {PATIENCE:?}"))
    }

    /// Starts a WaitTask call in the background; the handle yields the instant it returned.
    pub fn wait_task(&self, task: &Task) -> tokio::task::JoinHandle<Result<Instant, String>> {
        let mut driver = self.plugin.driver();
        let id = task.id.clone();
        tokio::spawn(async move {
            let r = driver
                .wait_task(WaitTaskRequest { task_id: id })
                .await
                .map_err(|s| rpc_err("WaitTask", s))?
                .into_inner();
            if !r.err.is_empty() {
                return Err(format!("WaitTask err: {}", r.err));
            }
            Ok(Instant::now())
        })
    }

    pub async fn stop_task(&self, task: &Task, timeout: Duration) -> Result<(), String> {
        self.plugin
            .driver()
            .stop_task(StopTaskRequest {
                task_id: task.id.clone(),
                timeout: Some(prost_types::Duration {
                    seconds: timeout.as_secs() as i64,
                    nanos: timeout.subsec_nanos() as i32,
                }),
                signal: "SIGTERM".into(),
            })
            .await
            .map_err(|s| rpc_err("StopTask", s))?;
        Ok(())
    }

    /// DestroyTask(force) and removal of the task's directories, FIFOs and scope.
    pub async fn destroy(&self, task: Task) -> Result<(), String> {
        let r = self
            .plugin
            .driver()
            .destroy_task(DestroyTaskRequest {
                task_id: task.id.clone(),
                force: true,
            })
            .await
            .map(|_| ())
            .map_err(|s| rpc_err("DestroyTask", s));
        self.forget(task);
        r
    }

    /// Removes what the simulated client created for a task (unblocking FIFO readers first).
    fn forget(&self, task: Task) {
        release_fifos(&task.fifo_paths);
        if let Some(scope) = &task.scope {
            remove_cgroup_tree(scope);
        }
        let _ = fs::remove_dir_all(&task.alloc_dir);
    }

    /// Opens a TaskStats stream at `interval` on its own task; counts messages into `count` and
    /// records a failure (opening or mid-stream) in `errors`.
    pub fn stats_stream(
        &self,
        task: &Task,
        interval: Duration,
        count: Arc<AtomicU64>,
        errors: Arc<Mutex<Vec<String>>>,
    ) -> tokio::task::JoinHandle<()> {
        let mut driver = self.plugin.driver();
        let request = TaskStatsRequest {
            task_id: task.id.clone(),
            collection_interval: Some(prost_types::Duration {
                seconds: interval.as_secs() as i64,
                nanos: interval.subsec_nanos() as i32,
            }),
        };
        tokio::spawn(async move {
            let mut stream = match driver.task_stats(request).await {
                Ok(s) => s.into_inner(),
                Err(s) => {
                    errors.lock().unwrap().push(rpc_err("TaskStats", s));
                    return;
                }
            };
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(_) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(s) => {
                        errors.lock().unwrap().push(rpc_err("TaskStats stream", s));
                        return;
                    }
                }
            }
        })
    }

    /// Shuts the plugin down and removes the cgroups this benchmark created.
    pub async fn finish(self) {
        let Bench {
            plugin,
            created_cgroups,
            ..
        } = self;
        let _ = tokio::time::timeout(PATIENCE, plugin.shutdown()).await;
        for dir in created_cgroups.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// A random 32-bit number (task id suffix) from the kernel.
fn rand32() -> u32 {
    let mut b = [0u8; 4];
    if let Ok(mut f) = File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    u32::from_ne_bytes(b)
}

/// Reads a FIFO to EOF on a thread (the driver opens it for writing); reports the first byte.
fn spawn_reader(
    path: PathBuf,
    first: Option<mpsc::Sender<Instant>>,
    keep: Option<Arc<Mutex<Vec<u8>>>>,
) {
    // One small thread per FIFO (the 1,000-task row has 2,000 of them), like logmon's readers.
    let spawned = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || {
            let Ok(mut f) = File::open(&path) else { return };
            let mut buf = [0u8; 4096];
            let mut first = first;
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Some(tx) = first.take() {
                    let _ = tx.send(Instant::now());
                }
                if let Some(keep) = &keep {
                    let mut k = keep.lock().unwrap();
                    if k.len() < 4096 {
                        k.extend_from_slice(&buf[..n]);
                    }
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("cannot start a FIFO reader thread: {e}");
    }
}

/// Opens and closes the write side of each FIFO so a reader still blocked in open() returns.
fn release_fifos(paths: &[PathBuf]) {
    for p in paths {
        let _ = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(p);
    }
}

/// The cgroup v2 mount: /sys/fs/cgroup/unified on hybrid hosts, else /sys/fs/cgroup.
fn cgroup2_mount() -> Option<PathBuf> {
    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists())
}

/// Removes a cgroup and any child cgroups left inside it (deepest first).
fn remove_cgroup_tree(path: &Path) {
    if let Ok(entries) = fs::read_dir(path) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(path);
}
