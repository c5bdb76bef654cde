//! `Executor::recover`: reattach to a task an earlier plugin instance started.

use super::*;

impl Executor {
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
}
