//! `Executor::destroy`: forget a task and remove what it left (tracked or not).

use super::*;

impl Executor {
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
        let idle = {
            let mut tasks = self.tasks.lock().expect("task table lock");
            tasks.remove(id);
            tasks.is_empty()
        };
        if idle {
            self.idle_forkserver().await;
        }
        Ok(())
    }

    /// With no task left, a fork server that never cloned (started at SetConfig, then only
    /// recovered tasks) goes now; one that cloned goes [`forkserver::IDLE`] after its last
    /// clone (see `start.rs`). The next StartTask starts one again.
    async fn idle_forkserver(&self) {
        let server = self.forkserver.clone();
        let _ = tokio::task::spawn_blocking(move || server.stop_if_idle(0)).await;
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
}
