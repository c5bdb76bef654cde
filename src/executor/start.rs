//! `Executor::start`: resolve the user, plan, check the command, prepare the cgroup, spawn the
//! supervisor and track the task (a [`super::start_guard::StartGuard`] undoes a half-done start).

use super::*;

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
        self.stop_forkserver_when_idle();
        if let Err(e) = state::write_atomic(
            &state_path,
            state::CGROUP_FILE,
            &serde_json::to_vec(&cg).expect("a TaskCgroup always serializes"),
        ) {
            tracing::warn!(task_id = %spec.id, error = %crate::errors::Chain(&e), "cannot record the task's cgroup; a DestroyTask after a plugin restart will not remove it");
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
