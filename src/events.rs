//! The one task event type: published by the executor (missing controllers, OOM kills, why a
//! task could not run), the driver (port and ceiling notices) and the denial reporter straight
//! to the driver's broadcast, and turned into Nomad's `DriverTaskEvent` only at the wire
//! (`driver::wire::task_event`).

use std::collections::BTreeMap;
use std::time::SystemTime;

/// A "Driver" task event for Nomad's task event list (routed by alloc id + task name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEvent {
    pub task_id: String,
    pub alloc_id: String,
    pub task_name: String,
    pub timestamp: SystemTime,
    pub message: String,
    pub annotations: BTreeMap<String, String>,
}
