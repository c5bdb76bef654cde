//! `Executor::wait` and the exit monitor: it publishes each task's exit status, the OOM check,
//! and the task's seccomp denials and learn-mode outcome as task events.

use super::*;

impl Executor {
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
}

pub(super) fn oom_grew(state: &RecoveryState) -> bool {
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
pub(super) async fn monitor(
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
    let recorded = state::read_exit(path);
    let mut st = match recorded.as_ref() {
        Ok(Some(s)) => s.clone(),
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
            err: Some(crate::errors::error_chain(&e)),
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
    // The record a recovering plugin reads: rewritten only where it lacks what was found here
    // (no record, an OOM kill), not in every exit's path.
    if path.is_dir() && !matches!(&recorded, Ok(Some(r)) if *r == st) {
        let _ = state::write_exit(path, &st);
    }
    task.exit_tx.send_replace(Some((st, SystemTime::now())));
    // Only now, after WaitTask can answer: the last reference to the task's mount namespace
    // goes, and with it the namespace (its teardown waits for an RCU grace period).
    let ns = task.mount_ns.lock().expect("mount namespace lock").take();
    if let Some(ns) = ns {
        tokio::task::spawn_blocking(move || drop(ns));
    }
}
