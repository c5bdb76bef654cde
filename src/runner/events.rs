//! What `run` shows that Nomad would show (issue 16 item 4): every task event as it arrives,
//! and the plugin's health description when the plugin is healthy but degraded.

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
) -> Result<JoinHandle<()>, tonic::Status> {
    let mut stream = driver.task_events(TaskEventsRequest {}).await?.into_inner();
    Ok(tokio::spawn(async move {
        while let Ok(Some(e)) = stream.message().await {
            if e.alloc_id == alloc_id {
                super::term::status_line(event_line(&e));
            }
        }
    }))
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
