//! What `run` shows that Nomad would show (issue 16 item 4): every task event as it arrives,
//! and the plugin's health description when the plugin is healthy but degraded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::proto::drivers::driver_client::DriverClient;
use crate::proto::drivers::fingerprint_response::HealthState;
use crate::proto::drivers::{DriverTaskEvent, TaskEventsRequest};

/// The line for a fingerprint that is healthy but not fully (`Healthy; memory limits are not
/// enforced ...`): Nomad shows it as the driver's health description; `run` prints it before
/// the tasks start. None when fully healthy (an unhealthy plugin stops `run` with its own error).
pub fn health_line(health: i32, description: &str) -> Option<String> {
    let desc = description.trim();
    if health == HealthState::Healthy as i32 && (desc.is_empty() || desc == "Healthy") {
        return None;
    }
    Some(format!("==> plugin health: {desc}"))
}

/// The line for one task event.
pub fn event_line(e: &DriverTaskEvent) -> String {
    format!("==> task \"{}\" event: {}", e.task_name, e.message)
}

/// Opens the plugin's TaskEvents stream and prints every event of allocation `alloc_id` as it
/// arrives, until the stream ends or the returned task is aborted. Open it before the first
/// StartTask: events sent while no stream is open are not kept (as in Nomad).
pub async fn follow(
    mut driver: DriverClient<Channel>,
    alloc_id: String,
) -> Result<Following, tonic::Status> {
    let mut stream = driver.task_events(TaskEventsRequest {}).await?.into_inner();
    let learned = Arc::new(AtomicUsize::new(0));
    let count = learned.clone();
    let task = tokio::spawn(async move {
        while let Ok(Some(e)) = stream.message().await {
            if e.alloc_id == alloc_id {
                super::term::status_line(event_line(&e));
                if let Some(fragment) = learned_fragment(&e) {
                    // Learn mode: the job fragment, on stdout, to paste as it is.
                    print!("{fragment}");
                    let _ = std::io::Write::flush(&mut std::io::stdout());
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    });
    Ok(Following { task, learned })
}

/// The learn-mode job fragment an event carries (annotation `learn_fragment`), with its
/// warnings as HCL comments.
pub fn learned_fragment(e: &DriverTaskEvent) -> Option<String> {
    let f = e.annotations.get("learn_fragment")?;
    let mut out = String::new();
    for w in e
        .annotations
        .get("learn_warnings")
        .map(|w| w.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>())
        .unwrap_or_default()
    {
        out += &format!("# warning: {w}\n");
    }
    out += f;
    Some(out)
}

/// The event printer of [`follow`].
pub struct Following {
    task: JoinHandle<()>,
    learned: Arc<AtomicUsize>,
}

impl Following {
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Wait (at most a few seconds) until `n` learn fragments were printed.
    pub async fn wait_for_learned(&self, n: usize) {
        for _ in 0..100 {
            if self.learned.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        super::term::status_line(format!(
            "==> learn mode: {} of {n} task(s) reported what they needed (a task that never started reports nothing)",
            self.learned.load(Ordering::SeqCst)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_lines_only_when_degraded() {
        let h = HealthState::Healthy as i32;
        assert_eq!(health_line(h, "Healthy"), None);
        assert_eq!(health_line(h, ""), None);
        assert_eq!(
            health_line(h, "Healthy; memory limits are not enforced").as_deref(),
            Some("==> plugin health: Healthy; memory limits are not enforced")
        );
    }

    #[test]
    fn event_lines_name_the_task() {
        let e = DriverTaskEvent {
            task_name: "web".into(),
            message: "unveil \"r:/etc/hostnme\": no such file; skipped".into(),
            ..Default::default()
        };
        assert_eq!(
            event_line(&e),
            "==> task \"web\" event: unveil \"r:/etc/hostnme\": no such file; skipped"
        );
    }
}
