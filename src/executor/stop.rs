//! `Executor::stop` and `Executor::signal`: signals through the supervisor, then the cgroup.

use super::*;

impl Executor {
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

    pub(super) async fn kill(&self, task: &Task) -> Result<(), ExecError> {
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
}
