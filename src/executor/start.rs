//! `Executor::start`: resolve the user, plan, check the command, prepare the cgroup, spawn the
//! supervisor and track the task (a [`super::start_guard::StartGuard`] undoes a half-done start).
//!
//! Everything that touches the filesystem (the user database, the command's search path, the
//! cgroup tree, the state directory, the log FIFOs, `/proc`) runs on the blocking pool, never on
//! the async runtime: a slow disk or a busy cgroupfs then delays only this start, not the other
//! RPCs and stats streams the plugin serves meanwhile.

use super::*;

/// What the blocking first half of a start made, handed back to the async side.
struct Prepared {
    spec: TaskSpec,
    plan: spawn::SupervisorPlan,
    /// Owns the task's cgroup and state directory until the start commits.
    guard: start_guard::StartGuard,
    /// Controllers the task's limits needed but the host does not offer.
    missing: Vec<String>,
    oom_kills_before: Option<u64>,
}

/// Runs `f` on the blocking pool (StartTask's filesystem work, here and in the driver). A
/// dropped caller does not stop `f`; what it returns is then dropped when it ends (a
/// [`start_guard::StartGuard`] inside still undoes its start).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ExecError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ExecError::Internal(format!("a blocking step of StartTask failed: {e}")))
}

/// Undoes a half-done start (the guard's drop removes the cgroup and the state directory, or
/// kills what was spawned) on the blocking pool, and returns why the start failed.
async fn undo(guard: start_guard::StartGuard, why: ExecError) -> ExecError {
    // The undo itself cannot fail to run: a panic in it is the only error here.
    let _ = blocking(move || drop(guard)).await;
    why
}

impl Executor {
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
        let state_path = self.task_state_path(&spec.id);
        let (cfg, events, path) = (self.cfg.clone(), self.events.clone(), state_path.clone());
        let Prepared {
            spec,
            plan,
            guard,
            missing,
            oom_kills_before,
        } = blocking(move || prepare(&cfg, &events, spec, path)).await??;
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
        // A FIFO open blocks until logmon reads: bounded, so StartTask cannot hang forever
        // (a thread still blocked after the timeout only drops the file when it returns).
        let spec2 = spec.clone();
        let logs = async {
            Ok::<_, ExecError>(
                tokio::time::timeout(LOG_OPEN_TIMEOUT, blocking(move || spawn::open_logs(&spec2)))
                    .await
                    .map_err(|_| spawn::SpawnError::LogTimeout {
                        path: spec.stdout_path.clone(),
                        secs: LOG_OPEN_TIMEOUT.as_secs(),
                    })???,
            )
        }
        .await;
        let logs = match logs {
            Ok(logs) => logs,
            Err(e) => return Err(undo(guard, e).await),
        };
        // The guard goes along: should this future be dropped while the supervisor is being
        // spawned, the guard is dropped with the finished step's result and kills it.
        let server = self.forkserver.clone();
        let id = spec.id.clone();
        let (guard, spawned) = blocking(move || {
            let mut guard = guard;
            let spawned = spawn_and_record(&server, &plan, &logs, &mut guard, &id);
            (guard, spawned)
        })
        .await?;
        let (pid, pidfd, start_time) = match spawned {
            Ok(spawned) => spawned,
            Err(e) => return Err(undo(guard, e).await),
        };
        self.stop_forkserver_when_idle();
        let state = RecoveryState {
            version: state::STATE_VERSION,
            pid,
            start_time,
            cgroup: guard.cgroup().clone(),
            state_path,
            oom_kills_before,
            started_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            spec,
        };
        // A failure here kills the task (the guard): never leave an untracked task running.
        if let Err(e) = self.track(state.clone(), Some(pidfd), None) {
            return Err(undo(guard, e).await);
        }
        guard.commit();
        Ok(state)
    }

    /// Ends the fork server [`forkserver::IDLE`] from now unless another start used it.
    fn stop_forkserver_when_idle(&self) {
        let server = self.forkserver.clone();
        let Some(seen) = server.clones() else {
            return;
        };
        tokio::spawn(async move {
            tokio::time::sleep(forkserver::IDLE).await;
            let _ = tokio::task::spawn_blocking(move || server.stop_if_idle(seen)).await;
        });
    }
}

/// The blocking first half of a start: the user, the plan, the command check, an interrupted
/// start's leftovers, the cgroup and its limits. From the cgroup on, the returned guard (or, on
/// an error, its drop here) undoes what was made.
fn prepare(
    cfg: &ExecutorConfig,
    events: &broadcast::Sender<TaskEvent>,
    spec: TaskSpec,
    state_path: PathBuf,
) -> Result<Prepared, ExecError> {
    let user = user::resolve_user(&spec.user, &cfg.default_user, cfg.allow_root)?;
    let plan = spawn::build_plan(&spec, &cfg.self_exe, user, &state_path)?;
    // A `command` the task user cannot run or a `work_dir` that is not a directory is refused
    // now, with the directories searched, instead of a failed task after the start.
    resolve::check(
        &spec.command,
        spec.env.get("PATH").map(String::as_str),
        &plan.cwd,
        &plan.user,
    )?;
    let root = cfg.cgroup_root()?;
    kill_interrupted_start(events, &spec, &root, &state_path)?;
    let cg = cgroup::prepare(
        &root,
        spec.nomad_cgroup.as_deref(),
        &spec.alloc_id,
        &spec.task_name,
    )?;
    // From here on every error return (and a dropped start) undoes the start.
    let guard = start_guard::StartGuard::new(cg, state_path.clone());
    let cg = guard.cgroup().path.clone();
    let missing = cgroup::apply_limits(&root, &cg, &spec.resources)?;
    let _ = std::fs::remove_dir_all(&state_path);
    Ok(Prepared {
        oom_kills_before: cgroup::oom_kills(&cg),
        spec,
        plan,
        guard,
        missing,
    })
}

/// Spawns the supervisor into the guard's cgroup (marking the guard spawned), records the
/// cgroup for a DestroyTask after a plugin restart, and reads the supervisor's start time.
fn spawn_and_record(
    server: &forkserver::ForkServer,
    plan: &spawn::SupervisorPlan,
    logs: &spawn::LogFiles,
    guard: &mut start_guard::StartGuard,
    id: &str,
) -> Result<(i32, OwnedFd, u64), ExecError> {
    let cg = guard.cgroup().clone();
    let (pid, pidfd) = spawn::spawn_supervisor(server, plan, logs, &cg.path)?;
    guard.spawned();
    if let Err(e) = state::write_atomic(
        &plan.state_path,
        state::CGROUP_FILE,
        &serde_json::to_vec(&cg).expect("a TaskCgroup always serializes"),
    ) {
        tracing::warn!(task_id = %id, error = %crate::errors::Chain(&e), "cannot record the task's cgroup; a DestroyTask after a plugin restart will not remove it");
    }
    Ok((pid, pidfd, state::proc_start_time(pid).unwrap_or(0)))
}

/// A plugin that died before answering `StartTask` may have started this task already, and
/// Nomad then retries the start with the same config: that attempt's supervisor (this binary in
/// supervisor mode with this task's plan path) still runs in the task cgroup, unknown to Nomad.
/// It is killed with everything in the cgroup so that exactly one instance of the task runs,
/// and the retry proceeds. Processes of any other origin are left alone (`prepare` refuses the
/// busy cgroup).
fn kill_interrupted_start(
    events: &broadcast::Sender<TaskEvent>,
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
    let pids = cgroup::kill_leftovers(&cg.path)?;
    if !pids.is_empty() {
        tracing::warn!(
            task_id = %spec.id,
            cgroup = %cg.path.display(),
            ?pids,
            "killed the processes of an interrupted start of this task (the plugin stopped before answering StartTask)"
        );
        let _ = events.send(task_event(
            spec,
            "killed the leftover of an interrupted start of this task (the plugin stopped before answering StartTask); starting it again".into(),
            &[("killed_pids", format!("{pids:?}"))],
        ));
    }
    Ok(())
}

impl Executor {
    /// Registers a task and, if it runs, starts its exit monitor.
    pub(super) fn track(
        &self,
        state: RecoveryState,
        pidfd: Option<OwnedFd>,
        exited: Option<ExitStatus>,
    ) -> Result<(), ExecError> {
        let mount_ns = pidfd
            .as_ref()
            .and_then(|fd| sys::mount_namespace_of(fd, state.pid).ok());
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
            mount_ns: Mutex::new(mount_ns),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::mpsc;

    /// Opens `fifo` for writing without blocking and closes it again: a reader blocked in its
    /// open (or read) gets end-of-file. False when no reader has it open.
    fn release(fifo: &Path) -> bool {
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
            .is_ok()
    }

    /// While a start is stuck in the filesystem (the task cgroup's `cgroup.procs` is a FIFO
    /// here, standing in for a hung cgroupfs or NFS mount), a single-threaded runtime still
    /// runs its other tasks: this test's loop, which releases the stuck reads. Were the reads
    /// on the runtime, only the watchdog thread could release them.
    #[tokio::test]
    async fn a_start_stuck_on_the_filesystem_does_not_stall_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cgroup");
        let scope = root.join(cgroup::OWN_SLICE).join("stuck.web.scope");
        std::fs::create_dir_all(&scope).unwrap();
        let fifo = scope.join("cgroup.procs");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let ex = Arc::new(
            Executor::new(ExecutorConfig {
                state_dir: dir.path().join("state"),
                cgroup_root: Some(root),
                self_exe: dir.path().join("no-driver-binary-here"),
                allow_root: false,
                default_user: "nobody".into(),
            })
            .unwrap(),
        );
        let spec = TaskSpec {
            id: "stuck/web/1".into(),
            alloc_id: "stuck".into(),
            task_name: "web".into(),
            command: "/bin/true".into(),
            task_dir: "/".into(),
            stdout_path: "/dev/null".into(),
            stderr_path: "/dev/null".into(),
            ..Default::default()
        };
        // Not a timing assertion: a deadlock breaker. Only if this runtime is stuck for 30 s
        // does the watchdog release the reads itself (so the test fails instead of hanging).
        let (done, finished) = mpsc::channel::<()>();
        let watchdog = std::thread::spawn({
            let fifo = fifo.clone();
            move || {
                let mut fired = false;
                loop {
                    let wait = if fired { 10 } else { 30_000 };
                    match finished.recv_timeout(Duration::from_millis(wait)) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            fired = true;
                            release(&fifo);
                        }
                        _ => return fired,
                    }
                }
            }
        });
        let start = tokio::spawn({
            let ex = ex.clone();
            async move { ex.start(spec).await }
        });
        let mut released = 0;
        while !start.is_finished() {
            if release(&fifo) {
                released += 1;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        done.send(()).unwrap();
        let fired = watchdog.join().unwrap();
        // No real cgroup and no driver binary: the start fails at the spawn, after the reads.
        let result = start.await.unwrap();
        assert!(
            !fired,
            "StartTask blocked the runtime in a cgroup read (released by the watchdog)"
        );
        assert!(released >= 1, "the start never read the cgroup");
        assert!(result.is_err(), "{result:?}");
        assert!(ex.get("stuck/web/1").is_none());
    }
}
