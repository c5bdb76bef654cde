//! Running tasks through the plugin in tests: an allocation directory with plain files standing
//! in for Nomad's log FIFOs, a private state dir, TaskConfigs, and the usual RPC steps.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::pb::drivers::{
    DestroyTaskRequest, ExitResult, StartTaskRequest, StopTaskRequest, TaskConfig, TaskHandle,
    WaitTaskRequest,
};
use super::{msgpack, set_config, Plugin, PATIENCE, V};

/// Returns from the test with a printed reason when this host cannot run tasks.
#[macro_export]
macro_rules! require_host {
    () => {
        if let Some(reason) = $crate::common::tasks::skip_reason() {
            eprintln!("SKIP: {reason}");
            return;
        }
    };
}

/// Why this host cannot run tasks (not root, no cgroup v2), or None. A reason for a feature
/// that `NOMAD_PLEDGE_TEST_REQUIRE` lists is a failure instead (`host_features`).
pub fn skip_reason() -> Option<&'static str> {
    use super::host_features::present;
    let root = "needs root (users, namespaces, cgroups)";
    if !present("root", nix::unistd::geteuid().is_root(), root) {
        return Some(root);
    }
    if !present("cgroup2", cgroup2_mount().is_some(), "no cgroup v2 mount") {
        return Some("no cgroup v2 mount");
    }
    None
}

/// Where cgroup v2 is mounted (`/sys/fs/cgroup/unified` on hybrid hosts).
pub fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo
        .lines()
        .find(|l| l.contains(" - cgroup2 "))
        .and_then(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
}

/// What a shell running the usual tools needs unveiled.
pub const SHELL_TOOLS: &[&str] = &["rx:/usr/bin", "rx:/bin", "r:/proc"];

/// An allocation directory with task dirs, plain files for stdout/stderr, and a private state
/// dir for the plugin.
pub struct Alloc {
    dir: tempfile::TempDir,
    pub state: tempfile::TempDir,
}

impl Alloc {
    pub fn new(prefix: &str) -> Alloc {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Alloc {
            dir,
            state: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// What `task` wrote to its stdout so far.
    pub fn out(&self, task: &str) -> String {
        std::fs::read_to_string(self.path().join(format!("{task}.stdout"))).unwrap_or_default()
    }

    /// A TaskConfig for `task` running `command args` with `promises`.
    pub fn task(&self, task: &str, command: &str, args: &[&str], promises: &str) -> TaskConfig {
        self.task_unveiling(task, command, args, promises, &[])
    }

    /// The same with an unveil list.
    pub fn task_unveiling(
        &self,
        task: &str,
        command: &str,
        args: &[&str],
        promises: &str,
        unveil: &[&str],
    ) -> TaskConfig {
        let task_dir = self.path().join(task);
        std::fs::create_dir_all(task_dir.join("local")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&task_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let out = self.path().join(format!("{task}.stdout"));
        let err = self.path().join(format!("{task}.stderr"));
        // Nomad creates the log FIFOs before StartTask; plain files stand in for them here.
        std::fs::write(&out, "").unwrap();
        std::fs::write(&err, "").unwrap();
        TaskConfig {
            id: format!("alloc1/{task}/{:08x}", rand_u32()),
            name: task.into(),
            alloc_id: "alloc1".into(),
            alloc_dir: self.path().display().to_string(),
            stdout_path: out.display().to_string(),
            stderr_path: err.display().to_string(),
            env: [("PATH", "/usr/local/bin:/usr/bin:/bin")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            msgpack_driver_config: msgpack(&[
                ("command", V::S(command)),
                ("args", V::L(args)),
                ("promises", V::S(promises)),
                ("unveil", V::L(unveil)),
            ]),
            ..Default::default()
        }
    }
}

pub fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    u32::from_le_bytes(b)
}

/// A plugin configured as the long-lived instance, with the alloc's private state dir.
pub async fn plugin(alloc: &Alloc) -> Plugin {
    plugin_under(alloc, &[]).await
}

/// The same, started through `wrapper` (see `Plugin::start_under`).
pub async fn plugin_under(alloc: &Alloc, wrapper: &[&str]) -> Plugin {
    configured(Plugin::start_under(wrapper, &[]).await, alloc, &[]).await
}

/// A plugin with the alloc's private state dir and the plugin options `fields`.
pub async fn plugin_with(alloc: &Alloc, fields: &[(&str, V<'_>)]) -> Plugin {
    configured(Plugin::start(&[]).await, alloc, fields).await
}

async fn configured(plugin: Plugin, alloc: &Alloc, fields: &[(&str, V<'_>)]) -> Plugin {
    let state_dir = alloc.state.path().display().to_string();
    let mut all = vec![("state_dir", V::S(&state_dir))];
    all.extend_from_slice(fields);
    plugin
        .base()
        .set_config(set_config(msgpack(&all), true))
        .await
        .expect("SetConfig");
    plugin
}

/// The plugin's TaskEvents stream.
pub async fn task_events(plugin: &Plugin) -> tonic::Streaming<super::pb::drivers::DriverTaskEvent> {
    plugin
        .driver()
        .task_events(super::pb::drivers::TaskEventsRequest {})
        .await
        .expect("TaskEvents")
        .into_inner()
}

/// SIGKILL the plugin (its tasks keep running) and reap it.
pub async fn crash(plugin: Plugin) {
    let mut child = plugin.child;
    child.kill().await.unwrap();
    child.wait().await.unwrap();
}

/// RecoverTask from `handle`, as a restarted Nomad client does.
pub async fn recover(plugin: &Plugin, handle: TaskHandle) {
    plugin
        .driver()
        .recover_task(super::pb::drivers::RecoverTaskRequest {
            task_id: String::new(),
            handle: Some(handle),
        })
        .await
        .unwrap_or_else(|e| panic!("RecoverTask: {}", e.message()));
}

pub async fn start(plugin: &Plugin, task: TaskConfig) -> TaskHandle {
    plugin
        .driver()
        .start_task(StartTaskRequest { task: Some(task) })
        .await
        .unwrap_or_else(|e| panic!("StartTask: {}", e.message()))
        .into_inner()
        .handle
        .expect("a handle")
}

/// StartTask that must be refused as invalid: the error's message.
pub async fn refused(plugin: &Plugin, task: TaskConfig) -> String {
    let e = plugin
        .driver()
        .start_task(StartTaskRequest { task: Some(task) })
        .await
        .expect_err("StartTask must refuse the task");
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());
    e.message().to_string()
}

/// StartTask, then WaitTask: the task's id and how it ended.
pub async fn run_to_exit(plugin: &Plugin, task: TaskConfig) -> (String, ExitResult) {
    let id = start(plugin, task).await.config.expect("a task config").id;
    let r = wait(plugin, &id).await;
    (id, r)
}

/// WaitTask, bounded by `PATIENCE`.
pub async fn wait(plugin: &Plugin, id: &str) -> ExitResult {
    let resp = tokio::time::timeout(
        PATIENCE,
        plugin
            .driver()
            .wait_task(WaitTaskRequest { task_id: id.into() }),
    )
    .await
    .expect("task exits in time")
    .expect("WaitTask")
    .into_inner();
    resp.result.expect("WaitTask always sets result")
}

pub fn pb_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

pub async fn stop(plugin: &Plugin, id: &str, signal: &str, timeout: Duration) {
    plugin
        .driver()
        .stop_task(StopTaskRequest {
            task_id: id.into(),
            timeout: Some(pb_duration(timeout)),
            signal: signal.into(),
        })
        .await
        .expect("StopTask");
}

pub async fn destroy(plugin: &Plugin, id: &str) {
    plugin
        .driver()
        .destroy_task(DestroyTaskRequest {
            task_id: id.into(),
            force: true,
        })
        .await
        .expect("DestroyTask");
}

/// Waits (bounded) until `cond` holds; only a guard against hanging.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next event on `events` whose message contains `text` (the others are skipped), bounded
/// by `PATIENCE`.
pub async fn next_event(
    events: &mut tonic::Streaming<super::pb::drivers::DriverTaskEvent>,
    text: &str,
) -> super::pb::drivers::DriverTaskEvent {
    let mut seen = Vec::new();
    loop {
        let e = tokio::time::timeout(PATIENCE, futures::StreamExt::next(events))
            .await
            .unwrap_or_else(|_| panic!("no event containing `{text}` in time; got {seen:#?}"))
            .expect("event stream ended")
            .expect("event");
        if e.message.contains(text) {
            return e;
        }
        seen.push(e.message);
    }
}
