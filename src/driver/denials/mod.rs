//! Landlock denials as task events (issue 16 item 2).
//!
//! Where the kernel has Landlock audit records (ABI ≥ 7) and kernel audit is enabled, a thread
//! of the plugin reads the read-only audit multicast group (coexisting with auditd), attributes
//! each `AUDIT_LANDLOCK_ACCESS` record to a task by its Landlock domain (the domain's
//! `AUDIT_LANDLOCK_DOMAIN` record names the process that restricted itself; that process's
//! cgroup is the task's) and publishes one task event per distinct path and access
//! (`read /etc/hostname needs unveil "r:/etc/hostname"`), logged at info with the task and
//! alloc ids. Repeats are counted, not re-sent; past [`MAX_EVENTS_PER_TASK`] distinct denials
//! a task gets one last event and nothing more. The task cannot reach this thread: it runs in
//! the root plugin, outside every task's domain.

mod netlink;
pub mod record;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::broadcast;

use super::config::LandlockAudit;
use super::fingerprint::{attr, AttrValue, Fingerprint, Health};
use super::TaskEvent;
use crate::errors::{error_chain, Chain};
use record::{Record, AUDIT_LANDLOCK_ACCESS, AUDIT_LANDLOCK_DOMAIN};

/// Distinct denials reported per task before it is cut off.
pub const MAX_EVENTS_PER_TASK: usize = 32;

/// The Landlock ABI whose kernels write audit records.
const AUDIT_ABI: u32 = 7;

/// Who a task is, for its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskIds {
    pub task_id: String,
    pub alloc_id: String,
    pub task_name: String,
}

/// Whether Landlock denials are reported, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reporting {
    Landlock,
    Off(String),
}

impl Reporting {
    /// The Landlock part of `driver.pledge.denials` ([`denials_attribute`]).
    pub fn attribute(&self) -> &'static str {
        match self {
            Reporting::Landlock => "landlock",
            Reporting::Off(_) => "none",
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Task cgroup directory → task.
    tasks: HashMap<PathBuf, TaskIds>,
    /// Landlock domain → its task (None: not a task's).
    domains: HashMap<u64, Option<TaskIds>>,
    /// (task id, access key) → times seen.
    seen: HashMap<(String, String), u64>,
    /// Task id → distinct denials reported.
    reported: HashMap<String, usize>,
}

/// The denial reporter: decides at start whether it can report, then follows tasks.
pub struct Denials {
    reporting: Reporting,
    turned_on: bool,
    inner: Arc<Mutex<Inner>>,
}

impl Denials {
    /// Decide per `mode` (turning kernel audit on for `Enable`) and start the reader thread.
    pub fn start(
        mode: LandlockAudit,
        landlock_abi: Option<u32>,
        events: broadcast::Sender<TaskEvent>,
    ) -> Denials {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let mut turned_on = false;
        let reporting = match decide(mode, landlock_abi) {
            Err(reason) => Reporting::Off(reason),
            Ok(on) => match netlink::Reader::open() {
                Err(e) => Reporting::Off(error_chain(&e)),
                Ok(reader) => {
                    turned_on = on;
                    let shared = inner.clone();
                    let spawned = std::thread::Builder::new()
                        .name("landlock-denials".into())
                        .spawn(move || read_loop(reader, shared, events));
                    match spawned {
                        Ok(_) => Reporting::Landlock,
                        Err(e) => Reporting::Off(format!("cannot start the reader thread: {e}")),
                    }
                }
            },
        };
        match &reporting {
            Reporting::Landlock => tracing::info!("Landlock denials are reported as task events"),
            Reporting::Off(why) => {
                tracing::info!(reason = %why, "Landlock denials are not reported")
            }
        }
        Denials {
            reporting,
            turned_on,
            inner,
        }
    }

    /// Whether the plugin turned kernel audit on (`landlock_audit = "enable"`).
    pub fn turned_audit_on(&self) -> bool {
        self.turned_on
    }

    pub fn reporting(&self) -> &Reporting {
        &self.reporting
    }

    /// Follow a started task (its cgroup directory).
    pub fn add_task(&self, cgroup: &Path, ids: TaskIds) {
        lock(&self.inner).tasks.insert(cgroup.to_path_buf(), ids);
    }

    /// Forget a destroyed task.
    pub fn remove_task(&self, task_id: &str) {
        let mut g = lock(&self.inner);
        g.tasks.retain(|_, t| t.task_id != task_id);
        g.domains
            .retain(|_, t| t.as_ref().is_none_or(|t| t.task_id != task_id));
        g.seen.retain(|(t, _), _| t != task_id);
        g.reported.remove(task_id);
    }

    /// The once-per-task event text when Landlock denials cannot be reported.
    pub fn unreported_notice(&self) -> Option<String> {
        match &self.reporting {
            Reporting::Landlock => None,
            Reporting::Off(why) => Some(format!(
                "Landlock denials of this task are not reported on this node ({why}); a refused file access shows only as the program's own error (EACCES)"
            )),
        }
    }
}

/// `driver.pledge.denials`: what is reported as task events (`seccomp,landlock`, `seccomp`,
/// `landlock` or `none`).
pub fn denials_attribute(seccomp: bool, landlock: &Reporting) -> String {
    match (seccomp, landlock) {
        (true, Reporting::Landlock) => "seccomp,landlock".into(),
        (true, Reporting::Off(_)) => "seccomp".into(),
        (false, l) => l.attribute().into(),
    }
}

/// Adds `driver.pledge.denials` (and `driver.pledge.kernel_audit` when the plugin turned
/// audit on) to a fingerprint, with a note in the description for the latter.
pub fn fingerprint_attributes(fp: &mut Fingerprint, denials: &str, audit_on: bool) {
    fp.attributes
        .insert(attr::DENIALS.into(), AttrValue::String(denials.into()));
    if audit_on {
        fp.attributes.insert(
            attr::KERNEL_AUDIT.into(),
            AttrValue::String("enabled by the plugin (landlock_audit = \"enable\")".into()),
        );
        if fp.health == Health::Healthy {
            fp.description
                .push_str("; kernel audit turned on by the plugin for Landlock denial reports");
        }
    }
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Ok(true): audit was off and the plugin turned it on.
fn decide(mode: LandlockAudit, abi: Option<u32>) -> Result<bool, String> {
    if mode == LandlockAudit::Off {
        return Err("plugin option landlock_audit = \"off\"".into());
    }
    match abi {
        Some(v) if v >= AUDIT_ABI => {}
        Some(v) => {
            return Err(format!(
                "Landlock ABI {v} has no audit records; needs ABI 7, Linux 6.15+"
            ))
        }
        None => return Err("no Landlock".into()),
    }
    let st = netlink::status().map_err(|e| error_chain(&e))?;
    if st.enabled != 0 {
        return Ok(false);
    }
    match mode {
        LandlockAudit::Enable if st.pid != 0 => Err(format!(
            "kernel audit is off and auditd (pid {}) is registered: its settings are left alone",
            st.pid
        )),
        LandlockAudit::Enable => {
            netlink::set_enabled(true).map_err(|e| error_chain(&e))?;
            tracing::info!("kernel audit was off: turned it on (host-wide) for Landlock denial reports (landlock_audit = \"enable\")");
            Ok(true)
        }
        _ => Err("kernel audit is disabled: run auditd or set the plugin option landlock_audit = \"enable\"".into()),
    }
}

/// The cgroup (v2 line `0::/path`) of `pid`.
fn cgroup_of(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// The task whose cgroup directory is `rel` (relative to the cgroup2 mount) or an ancestor.
fn task_for(tasks: &HashMap<PathBuf, TaskIds>, rel: &str) -> Option<TaskIds> {
    let rel = Path::new(rel.trim_start_matches('/'));
    let mut cur = Some(rel);
    while let Some(c) = cur.filter(|c| !c.as_os_str().is_empty()) {
        if let Some(t) = tasks.iter().find(|(p, _)| p.ends_with(c)).map(|(_, t)| t) {
            return Some(t.clone());
        }
        cur = c.parent();
    }
    None
}

fn read_loop(
    mut reader: netlink::Reader,
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<TaskEvent>,
) {
    loop {
        let (ty, text) = match reader.next() {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "Landlock denial reader stopped");
                return;
            }
        };
        if ty != AUDIT_LANDLOCK_ACCESS && ty != AUDIT_LANDLOCK_DOMAIN {
            continue;
        }
        match record::parse(ty, &text) {
            Record::Domain { domain, pid, .. } => {
                let rel = cgroup_of(pid);
                let mut g = lock(&inner);
                let task = rel.and_then(|r| task_for(&g.tasks, &r));
                g.domains.insert(domain, task);
            }
            Record::Access(a) => {
                let message = {
                    let mut g = lock(&inner);
                    let Some(Some(task)) = g.domains.get(&a.domain).cloned() else {
                        continue;
                    };
                    let key = (task.task_id.clone(), a.key());
                    let n = g.seen.entry(key).or_insert(0);
                    *n += 1;
                    if *n > 1 {
                        continue;
                    }
                    let count = g.reported.entry(task.task_id.clone()).or_insert(0);
                    *count += 1;
                    let msg = match *count {
                        c if c <= MAX_EVENTS_PER_TASK => a.message(),
                        c if c == MAX_EVENTS_PER_TASK + 1 => format!(
                            "more than {MAX_EVENTS_PER_TASK} distinct Landlock denials: the rest are not reported"
                        ),
                        _ => continue,
                    };
                    (task, msg)
                };
                let (task, msg) = message;
                tracing::info!(task_id = %task.task_id, alloc_id = %task.alloc_id, "landlock denial: {msg}");
                let _ = events.send(TaskEvent {
                    task_id: task.task_id,
                    alloc_id: task.alloc_id,
                    task_name: task.task_name,
                    timestamp: SystemTime::now(),
                    message: msg,
                    annotations: Default::default(),
                });
            }
            Record::Other => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: &str) -> TaskIds {
        TaskIds {
            task_id: n.into(),
            alloc_id: "a".into(),
            task_name: n.into(),
        }
    }

    #[test]
    fn tasks_are_found_by_cgroup_or_an_ancestor() {
        let mut t = HashMap::new();
        t.insert(
            PathBuf::from("/sys/fs/cgroup/unified/nomad.slice/share.slice/a.web.scope"),
            ids("web"),
        );
        assert_eq!(
            task_for(&t, "/nomad.slice/share.slice/a.web.scope"),
            Some(ids("web"))
        );
        assert_eq!(
            task_for(&t, "/nomad.slice/share.slice/a.web.scope/sub"),
            Some(ids("web"))
        );
        assert_eq!(task_for(&t, "/user.slice"), None);
        assert_eq!(task_for(&t, "/"), None);
    }

    #[test]
    fn the_fingerprint_says_what_is_reported() {
        let mut fp = crate::driver::fingerprint::fingerprint(
            &crate::driver::fingerprint::Probe::host(),
            &Default::default(),
        );
        fingerprint_attributes(&mut fp, Reporting::Off("x".into()).attribute(), false);
        assert_eq!(
            fp.attributes[attr::DENIALS],
            AttrValue::String("none".into())
        );
        assert!(!fp.attributes.contains_key(attr::KERNEL_AUDIT));
        fingerprint_attributes(&mut fp, Reporting::Landlock.attribute(), true);
        assert_eq!(
            fp.attributes[attr::DENIALS],
            AttrValue::String("landlock".into())
        );
        assert!(fp.attributes.contains_key(attr::KERNEL_AUDIT));
    }

    #[test]
    fn off_and_old_kernels_do_not_report() {
        assert!(decide(LandlockAudit::Off, Some(7))
            .unwrap_err()
            .contains("off"));
        assert!(decide(LandlockAudit::Auto, Some(6))
            .unwrap_err()
            .contains("ABI 6"));
        assert!(decide(LandlockAudit::Enable, None).is_err());
    }
}
