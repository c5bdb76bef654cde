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
//!
//! The kernel names a domain's process only once (its first denial), so what the reader learnt
//! of a task (its domains, the denials it reported) is kept in the task's root-only state
//! directory ([`JOURNAL`]): a plugin restarted while the task runs reads it back at RecoverTask,
//! attributes the task's later denials and does not report an earlier one again.

mod netlink;
pub mod record;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::broadcast;

use super::config::LandlockAudit;
use super::fingerprint::{attr, AttrValue, Fingerprint, Health};
use super::TaskEvent;
use crate::errors::{error_chain, Chain};
use crate::sandbox::learn::summary::task_dirs_by_name;
use record::{Record, AUDIT_LANDLOCK_ACCESS, AUDIT_LANDLOCK_DOMAIN};

/// Distinct denials reported per task before it is cut off.
pub const MAX_EVENTS_PER_TASK: usize = 32;

/// In a task's state directory: one JSON line per domain of the task and per denial reported.
pub const JOURNAL: &str = "landlock-denials.jsonl";

/// A line of [`JOURNAL`].
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Journal {
    Domain(u64),
    Reported(String),
}

/// The Landlock ABI whose kernels write audit records.
const AUDIT_ABI: u32 = 7;

/// Who a task is, for its events, and where its journal and directories are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskIds {
    pub task_id: String,
    pub alloc_id: String,
    pub task_name: String,
    /// The task's state directory (holds [`JOURNAL`]).
    pub state_path: PathBuf,
    /// The task's directories as a job writes them (`${NOMAD_TASK_DIR}`, ...), for the unveil
    /// entries the events suggest; filled by [`Denials::add_task`].
    pub named_dirs: Arc<[(PathBuf, String)]>,
}

impl TaskIds {
    fn journal(&self, entry: &Journal) {
        let path = self.state_path.join(JOURNAL);
        let line = serde_json::to_string(entry).unwrap_or_default() + "\n";
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            tracing::warn!(task_id = %self.task_id, path = %path.display(), error = %e, "cannot record a Landlock denial for recovery; after a plugin restart it may be reported again or not at all");
        }
    }
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

/// How long a domain in no known task's cgroup waits for its task to be registered.
const UNCLAIMED_FOR: Duration = Duration::from_secs(30);
/// Most domains waiting for their task at once, and denials kept per waiting domain.
const MAX_UNCLAIMED: usize = 64;
const MAX_WAITING: usize = 8;
/// Denials kept while their domain's record has not come yet (the newest; it follows at once).
const MAX_UNNAMED: usize = 64;
/// Landlock domains followed per task. A task with the `unveil` promise can make new domains
/// (each process that restricts itself again); past this many, the newer ones' denials are not
/// reported, so that it cannot grow the plugin's memory or its journal without bound.
const MAX_DOMAINS_PER_TASK: usize = 64;

/// A domain whose process was in no known task's cgroup when the kernel named it. StartTask
/// registers a task once its supervisor is cloned, and a fast program can be refused before
/// that: its denials wait here, briefly, for a task of that cgroup.
struct Unclaimed {
    cgroup: String,
    since: Instant,
    waiting: Vec<record::Access>,
}

impl Unclaimed {
    fn new(cgroup: String) -> Unclaimed {
        Unclaimed {
            cgroup,
            since: Instant::now(),
            waiting: Vec::new(),
        }
    }

    /// Keep `a` (distinct denials only, at most [`MAX_WAITING`]).
    fn wait(&mut self, a: record::Access) {
        if self.waiting.len() < MAX_WAITING && !self.waiting.iter().any(|w| w.key() == a.key()) {
            self.waiting.push(a);
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Task cgroup directory → task.
    tasks: HashMap<PathBuf, TaskIds>,
    /// Landlock domain → its task.
    domains: HashMap<u64, TaskIds>,
    /// Task id → domains followed.
    domain_count: HashMap<String, usize>,
    /// Landlock domains of no task (yet).
    unclaimed: HashMap<u64, Unclaimed>,
    /// Denials of domains not named yet, newest last: the kernel writes a domain's record right
    /// after the access record of its first denial (same event), so that one waits for it here.
    /// The oldest is dropped when full, so domains that are never named (made before the plugin
    /// started, or past a task's [`MAX_DOMAINS_PER_TASK`]) cannot keep others out.
    unnamed: VecDeque<record::Access>,
    /// (task id, access key) of the denials reported.
    seen: HashSet<(String, String)>,
    /// Task id → distinct denials reported.
    reported: HashMap<String, usize>,
}

/// The denial reporter: decides at start whether it can report, then follows tasks.
pub struct Denials {
    reporting: Reporting,
    turned_on: bool,
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<TaskEvent>,
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
                    let (shared, events) = (inner.clone(), events.clone());
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
            events,
        }
    }

    /// Whether the plugin turned kernel audit on (`landlock_audit = "enable"`).
    pub fn turned_audit_on(&self) -> bool {
        self.turned_on
    }

    pub fn reporting(&self) -> &Reporting {
        &self.reporting
    }

    /// Follow a started or recovered task (its cgroup directory), with what its journal says.
    /// On the blocking pool: it resolves the task's directories and reads the journal, and the
    /// reader thread holds the lock while it appends to one.
    pub async fn add_task(&self, cgroup: PathBuf, mut ids: TaskIds, task_dir: PathBuf) {
        let (inner, events) = (self.inner.clone(), self.events.clone());
        let added = tokio::task::spawn_blocking(move || {
            ids.named_dirs = task_dirs_by_name(&task_dir).into();
            let journal = std::fs::read_to_string(ids.state_path.join(JOURNAL)).unwrap_or_default();
            let waited = lock(&inner).add_task(&cgroup, ids, &journal);
            for (task, msg) in waited {
                publish(&events, task, msg);
            }
        });
        if let Err(e) = added.await {
            tracing::warn!(error = %e, "following a task's Landlock denials failed");
        }
    }

    /// Forget a destroyed task.
    pub fn remove_task(&self, task_id: &str) {
        let mut g = lock(&self.inner);
        g.tasks.retain(|_, t| t.task_id != task_id);
        g.domains.retain(|_, t| t.task_id != task_id);
        g.domain_count.remove(task_id);
        g.seen.retain(|(t, _)| t != task_id);
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
        let denials = lock(&inner).handle(record::parse(ty, &text), cgroup_of);
        for (task, msg) in denials {
            publish(&events, task, msg);
        }
    }
}

/// One denial: an info line in the plugin log and a task event.
fn publish(events: &broadcast::Sender<TaskEvent>, task: TaskIds, msg: String) {
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

impl Inner {
    /// Follow a task, with what its journal says; the denials of its domains that were
    /// waiting for it (see [`Unclaimed`]), to publish.
    fn add_task(&mut self, cgroup: &Path, ids: TaskIds, journal: &str) -> Vec<(TaskIds, String)> {
        // A second RecoverTask of a running task: the journal is what this reader did.
        let followed = self.tasks.values().any(|t| t.task_id == ids.task_id);
        for line in journal.lines().filter(|_| !followed) {
            match serde_json::from_str(line) {
                Ok(Journal::Domain(d)) => {
                    self.claim(d, &ids, false);
                }
                Ok(Journal::Reported(key)) => {
                    self.seen.insert((ids.task_id.clone(), key));
                    *self.reported.entry(ids.task_id.clone()).or_insert(0) += 1;
                }
                // A line cut short by a crash mid-write.
                Err(_) => {}
            }
        }
        let this = HashMap::from([(cgroup.to_path_buf(), ids.clone())]);
        self.tasks.insert(cgroup.to_path_buf(), ids.clone());
        let claimed: Vec<u64> = self
            .unclaimed
            .iter()
            .filter(|(_, u)| task_for(&this, &u.cgroup).is_some())
            .map(|(d, _)| *d)
            .collect();
        let mut out = Vec::new();
        for d in claimed {
            let Some(u) = self.unclaimed.remove(&d) else {
                continue;
            };
            if self.claim(d, &ids, true) {
                out.extend(u.waiting.iter().filter_map(|a| self.report(&ids, a)));
            }
        }
        out
    }

    /// Take one record; the denials to publish, with their tasks.
    fn handle(
        &mut self,
        record: Record,
        cgroup_of: impl Fn(i32) -> Option<String>,
    ) -> Vec<(TaskIds, String)> {
        match record {
            Record::Domain { domain, pid, .. } => {
                let (waiting, rest): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.unnamed)
                    .into_iter()
                    .partition(|a| a.domain == domain);
                self.unnamed = rest;
                let Some(cgroup) = cgroup_of(pid) else {
                    return Vec::new();
                };
                if let Some(task) = task_for(&self.tasks, &cgroup) {
                    if !self.claim(domain, &task, true) {
                        return Vec::new();
                    }
                    return waiting
                        .iter()
                        .filter_map(|a| self.report(&task, a))
                        .collect();
                }
                self.unclaimed
                    .retain(|_, u| u.since.elapsed() < UNCLAIMED_FOR);
                if self.unclaimed.len() < MAX_UNCLAIMED {
                    let u = self
                        .unclaimed
                        .entry(domain)
                        .or_insert(Unclaimed::new(cgroup));
                    waiting.into_iter().for_each(|a| u.wait(a));
                }
                Vec::new()
            }
            Record::Access(a) => {
                if let Some(task) = self.domains.get(&a.domain).cloned() {
                    return self.report(&task, &a).into_iter().collect();
                }
                match self.unclaimed.get_mut(&a.domain) {
                    Some(u) => u.wait(a),
                    None => {
                        if self.unnamed.len() == MAX_UNNAMED {
                            self.unnamed.pop_front();
                        }
                        self.unnamed.push_back(a);
                    }
                }
                Vec::new()
            }
            Record::Other => Vec::new(),
        }
    }

    /// Follow `domain` as `task`'s (journalled when `journal`), unless the task has
    /// [`MAX_DOMAINS_PER_TASK`] already.
    fn claim(&mut self, domain: u64, task: &TaskIds, journal: bool) -> bool {
        if self.domains.contains_key(&domain) {
            return true;
        }
        let n = self.domain_count.entry(task.task_id.clone()).or_insert(0);
        if *n >= MAX_DOMAINS_PER_TASK {
            if *n == MAX_DOMAINS_PER_TASK {
                *n += 1;
                tracing::info!(task_id = %task.task_id, alloc_id = %task.alloc_id, "the task made more than {MAX_DOMAINS_PER_TASK} Landlock domains: the denials of newer ones are not reported");
            }
            return false;
        }
        *n += 1;
        if journal {
            task.journal(&Journal::Domain(domain));
        }
        self.domains.insert(domain, task.clone());
        true
    }

    /// The event text for `a` of `task`, unless it is a repeat or past the task's cap.
    fn report(&mut self, task: &TaskIds, a: &record::Access) -> Option<(TaskIds, String)> {
        // Past the cap nothing is kept, whatever the task tries.
        if self.reported.get(&task.task_id).copied().unwrap_or(0) > MAX_EVENTS_PER_TASK {
            return None;
        }
        if !self.seen.insert((task.task_id.clone(), a.key())) {
            return None;
        }
        let count = self.reported.entry(task.task_id.clone()).or_insert(0);
        *count += 1;
        let msg = match *count {
            c if c <= MAX_EVENTS_PER_TASK => a.message(&task.named_dirs),
            c if c == MAX_EVENTS_PER_TASK + 1 => format!(
                "more than {MAX_EVENTS_PER_TASK} distinct Landlock denials: the rest are not reported"
            ),
            _ => return None,
        };
        task.journal(&Journal::Reported(a.key()));
        Some((task.clone(), msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn ids(n: &str) -> TaskIds {
        TaskIds {
            task_id: n.into(),
            alloc_id: "a".into(),
            task_name: n.into(),
            state_path: PathBuf::from("/nonexistent"),
            named_dirs: Arc::from([]),
        }
    }

    fn access(domain: &str, path: &str) -> Record {
        record::parse(
            AUDIT_LANDLOCK_ACCESS,
            &format!(
                "audit(1.2:3): domain={domain} blockers=fs.read_file path=\"{path}\" dev=\"x\" ino=1"
            ),
        )
    }

    fn domain(d: &str, pid: i32) -> Record {
        record::parse(
            AUDIT_LANDLOCK_DOMAIN,
            &format!("audit(1.2:3): domain={d} status=allocated mode=enforcing pid={pid} uid=1 exe=\"/bin/sh\""),
        )
    }

    /// Pid 1 is in the task `web`'s cgroup, every other pid elsewhere.
    fn cgroup_of(pid: i32) -> Option<String> {
        Some(match pid {
            1 => "/nomad.slice/a.web.scope".to_string(),
            _ => "/user.slice/other".to_string(),
        })
    }

    const WEB: &str = "/sys/fs/cgroup/unified/nomad.slice/a.web.scope";

    /// `web` with a journal in a fresh state directory.
    fn web() -> (TaskIds, tempfile::TempDir) {
        let state = tempfile::tempdir().unwrap();
        let task = TaskIds {
            state_path: state.path().to_path_buf(),
            ..ids("web")
        };
        (task, state)
    }

    fn texts(v: Vec<(TaskIds, String)>) -> Vec<String> {
        v.into_iter()
            .map(|(t, m)| format!("{}: {m}", t.task_id))
            .collect()
    }

    /// The kernel writes the access record of a domain's first denial before the record that
    /// names the domain (same event): that first denial is reported once the domain is known.
    /// Failed before: a task's first Landlock denial was never reported.
    #[test]
    fn the_first_denial_of_a_domain_is_reported() {
        let (task, _state) = web();
        let mut g = Inner::default();
        assert!(g.add_task(Path::new(WEB), task, "").is_empty());
        assert!(g.handle(access("1f", "/etc/a"), cgroup_of).is_empty());
        assert_eq!(
            texts(g.handle(domain("1f", 1), cgroup_of)),
            ["web: read /etc/a needs unveil \"r:/etc/a\""]
        );
        assert_eq!(
            texts(g.handle(access("1f", "/etc/b"), cgroup_of)),
            ["web: read /etc/b needs unveil \"r:/etc/b\""]
        );
        // A domain of no task: its denial is dropped, and what waits is bounded.
        assert!(g.handle(access("2e", "/etc/c"), cgroup_of).is_empty());
        assert!(g.handle(domain("2e", 2), cgroup_of).is_empty());
        for d in 0..(MAX_UNCLAIMED as u64 * 2) {
            let d = format!("{:x}", 0x1000 + d);
            g.handle(access(&d, "/x"), cgroup_of);
        }
        assert!(g.unnamed.len() <= MAX_UNCLAIMED && g.unclaimed.len() <= MAX_UNCLAIMED);
    }

    /// A task that keeps making Landlock domains (promise `unveil`) is followed for
    /// [`MAX_DOMAINS_PER_TASK`] of them, no more: the plugin's memory and the journal stay bounded.
    #[test]
    fn the_domains_followed_per_task_are_bounded() {
        let (task, state) = web();
        let mut g = Inner::default();
        g.add_task(Path::new(WEB), task, "");
        let mut reported = 0;
        for d in 0..(MAX_DOMAINS_PER_TASK as u64 + 10) {
            let d = format!("{:x}", 0x100 + d);
            g.handle(access(&d, &format!("/etc/{d}")), cgroup_of);
            reported += g.handle(domain(&d, 1), cgroup_of).len();
        }
        assert_eq!(g.domains.len(), MAX_DOMAINS_PER_TASK);
        assert_eq!(
            reported,
            MAX_EVENTS_PER_TASK + 1,
            "the cap's last event included"
        );
        let journal = fs::read_to_string(state.path().join(JOURNAL)).unwrap();
        let domains = journal.lines().filter(|l| l.contains("domain")).count();
        assert_eq!(domains, MAX_DOMAINS_PER_TASK);
    }

    /// What one task does cannot crowd the reader: a second RecoverTask of a running task
    /// replays nothing (it would count every denial twice), a task past its cap keeps nothing
    /// per new path, and a flood of denials of domains never named does not keep another
    /// task's first denial from being reported.
    #[test]
    fn a_task_cannot_crowd_the_reader() {
        let (task, state) = web();
        let mut g = Inner::default();
        g.add_task(Path::new(WEB), task.clone(), "");
        g.handle(access("1f", "/etc/first"), cgroup_of);
        assert_eq!(g.handle(domain("1f", 1), cgroup_of).len(), 1);
        let journal = fs::read_to_string(state.path().join(JOURNAL)).unwrap();
        g.add_task(Path::new(WEB), task, &journal);
        assert_eq!(g.reported["web"], 1);
        assert_eq!(g.domain_count["web"], 1);

        for i in 0..(MAX_EVENTS_PER_TASK + 100) {
            g.handle(access("1f", &format!("/p{i}")), cgroup_of);
        }
        assert_eq!(g.seen.len(), MAX_EVENTS_PER_TASK + 1);

        for i in 0..(MAX_UNNAMED * 4) {
            g.handle(access(&format!("{:x}", 0x5000 + i), "/x"), cgroup_of);
        }
        assert_eq!(g.unnamed.len(), MAX_UNNAMED);
        let (other, _s) = web();
        let other = TaskIds {
            task_id: "api".into(),
            ..other
        };
        let api = "/sys/fs/cgroup/unified/nomad.slice/a.api.scope";
        g.add_task(Path::new(api), other, "");
        g.handle(access("2a", "/etc/api"), cgroup_of);
        let api_of = |_: i32| Some("/nomad.slice/a.api.scope".to_string());
        assert_eq!(texts(g.handle(domain("2a", 7), api_of)).len(), 1);
    }

    /// What a plugin learnt of a task's domain before it was restarted is what the next one
    /// knows at RecoverTask: the kernel names a domain only at its first denial, so without the
    /// journal a recovered task's later denials were never attributed to it.
    #[test]
    fn a_restarted_reader_knows_the_tasks_domains_and_what_it_reported() {
        let (task, state) = web();
        let cgroup = Path::new(WEB);
        let mut first = Inner::default();
        assert!(first.add_task(cgroup, task.clone(), "").is_empty());
        first.handle(access("1f", "/etc/a"), cgroup_of);
        assert_eq!(texts(first.handle(domain("1f", 1), cgroup_of)).len(), 1);

        // The next plugin: no domain record comes again.
        let journal = fs::read_to_string(state.path().join(JOURNAL)).unwrap();
        let mut second = Inner::default();
        assert!(second.add_task(cgroup, task.clone(), &journal).is_empty());
        assert!(
            second.handle(access("1f", "/etc/a"), cgroup_of).is_empty(),
            "reported again"
        );
        assert_eq!(
            texts(second.handle(access("1f", "/etc/b"), cgroup_of)),
            ["web: read /etc/b needs unveil \"r:/etc/b\""]
        );

        // Without the journal the denial belongs to nobody.
        let mut forgetful = Inner::default();
        forgetful.add_task(cgroup, task.clone(), "");
        assert!(forgetful
            .handle(access("1f", "/etc/c"), cgroup_of)
            .is_empty());
        // A torn last line is skipped.
        let mut torn = Inner::default();
        torn.add_task(cgroup, task, &(journal + "{\"domain\":"));
        assert_eq!(torn.handle(access("1f", "/etc/d"), cgroup_of).len(), 1);
    }

    /// A program refused before StartTask registered its task: the denial waits and is
    /// published when the task is registered; a domain of another cgroup is never claimed by
    /// it. Failed before: the domain was marked as no task's and every later denial of the task
    /// was dropped.
    #[test]
    fn a_denial_before_the_task_is_registered_is_published_when_it_is() {
        let (task, _state) = web();
        let mut g = Inner::default();
        assert!(g.handle(access("1f", "/etc/a"), cgroup_of).is_empty());
        assert!(g.handle(domain("1f", 1), cgroup_of).is_empty());
        assert!(g.handle(access("1f", "/etc/a"), cgroup_of).is_empty());
        assert!(g.handle(access("2e", "/etc/b"), cgroup_of).is_empty());
        assert!(g.handle(domain("2e", 2), cgroup_of).is_empty());
        assert_eq!(
            texts(g.add_task(Path::new(WEB), task, "")),
            ["web: read /etc/a needs unveil \"r:/etc/a\""]
        );
        assert_eq!(texts(g.handle(access("1f", "/etc/c"), cgroup_of)).len(), 1);
        assert!(g.handle(access("2e", "/etc/d"), cgroup_of).is_empty());
        assert_eq!(
            g.unclaimed.len(),
            1,
            "the other cgroup's domain still waits"
        );
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
