//! Undoing a half-done start: [`StartGuard`] owns what `Executor::start` has made so far and
//! removes it on drop — on every error arm, and when the start future is dropped (a cancelled
//! StartTask) — unless the start reached the end and called [`StartGuard::commit`].

use std::path::PathBuf;

use super::cgroup::{self, TaskCgroup};

/// What a start has made so far.
pub(super) struct StartGuard {
    /// The task's cgroup (removed when we created it, with our own slice if it is empty).
    cgroup: TaskCgroup,
    /// The task's state directory (FIFOs, recovery files).
    state_path: PathBuf,
    /// The supervisor is running: from here on a failed start kills the cgroup's processes
    /// (the cgroup and state stay, as `destroy` expects them for an untracked task).
    spawned: bool,
    committed: bool,
}

impl StartGuard {
    pub(super) fn new(cgroup: TaskCgroup, state_path: PathBuf) -> StartGuard {
        StartGuard {
            cgroup,
            state_path,
            spawned: false,
            committed: false,
        }
    }

    pub(super) fn cgroup(&self) -> &TaskCgroup {
        &self.cgroup
    }

    /// The supervisor was spawned into the cgroup.
    pub(super) fn spawned(&mut self) {
        self.spawned = true;
    }

    /// The start succeeded: keep everything.
    pub(super) fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for StartGuard {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if self.spawned {
            // Never leave an untracked task running.
            cgroup::kill_all(&self.cgroup.path);
            return;
        }
        if self.cgroup.created {
            let _ = std::fs::remove_dir(&self.cgroup.path);
            cgroup::remove_own_slice(&self.cgroup.path);
        }
        let _ = std::fs::remove_dir_all(&self.state_path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A created cgroup directory (a plain directory here) and a state directory with a file.
    fn made(dir: &std::path::Path, created: bool) -> (TaskCgroup, PathBuf) {
        let cg = dir.join("cg");
        std::fs::create_dir(&cg).unwrap();
        let state = dir.join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::write(state.join("stdout.fifo"), b"").unwrap();
        (TaskCgroup { path: cg, created }, state)
    }

    #[test]
    fn a_failed_start_leaves_no_cgroup_or_state() {
        let dir = tempfile::tempdir().unwrap();
        let (cg, state) = made(dir.path(), true);
        let guard = StartGuard::new(cg.clone(), state.clone());
        let failed_late_step: Result<(), ()> = Err(());
        if failed_late_step.is_ok() {
            guard.commit();
        } else {
            drop(guard);
        }
        assert!(!cg.path.exists(), "the cgroup we created is removed");
        assert!(!state.exists(), "the state directory is removed");
    }

    #[test]
    fn a_cgroup_we_did_not_create_stays() {
        let dir = tempfile::tempdir().unwrap();
        let (cg, state) = made(dir.path(), false);
        drop(StartGuard::new(cg.clone(), state.clone()));
        assert!(cg.path.exists(), "Nomad's own cgroup is not ours to remove");
        assert!(!state.exists());
    }

    #[test]
    fn a_committed_start_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let (cg, state) = made(dir.path(), true);
        StartGuard::new(cg.clone(), state.clone()).commit();
        assert!(cg.path.exists() && state.join("stdout.fifo").exists());
    }
}
