//! The task lifecycle through the built plugin binary, driven over gRPC as a Nomad client does:
//! start, wait, stop, signal, stats, inspect, destroy, and recovery after the plugin is
//! SIGKILLed. Tasks run through the default (built-in) pledge launcher. Needs root and a cgroup
//! v2 mount; skips with a printed reason otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::pb::drivers::{
    DestroyTaskRequest, ExitResult, InspectTaskRequest, RecoverTaskRequest, SignalTaskRequest,
    StartTaskRequest, StopTaskRequest, TaskConfig, TaskHandle, TaskState, TaskStatsRequest,
    WaitTaskRequest,
};
use common::*;
use futures::StreamExt;

fn skip_reason() -> Option<&'static str> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (users, namespaces, cgroups)");
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if !mountinfo.lines().any(|l| l.contains(" - cgroup2 ")) {
        return Some("no cgroup v2 mount");
    }
    None
}

macro_rules! require_host {
    () => {
        if let Some(reason) = skip_reason() {
            eprintln!("SKIP: {reason}");
            return;
        }
    };
}

/// An allocation directory with one task dir, plain files for stdout/stderr, and a private
/// state dir for the plugin.
struct Alloc {
    dir: tempfile::TempDir,
    state: tempfile::TempDir,
}

impl Alloc {
    fn new() -> Alloc {
        let dir = tempfile::Builder::new()
            .prefix("lifecycle")
            .tempdir()
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Alloc {
            dir,
            state: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn out(&self, task: &str) -> String {
        std::fs::read_to_string(self.path().join(format!("{task}.stdout"))).unwrap_or_default()
    }

    /// A TaskConfig for `task` running `command args` with `promises`.
    fn task(&self, task: &str, command: &str, args: &[&str], promises: &str) -> TaskConfig {
        self.task_unveiling(task, command, args, promises, &[])
    }

    /// The same with an unveil list.
    fn task_unveiling(
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

/// What a shell running the usual tools needs unveiled.
const SHELL_TOOLS: &[&str] = &["rx:/usr/bin", "rx:/bin", "r:/proc"];

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    u32::from_le_bytes(b)
}

async fn plugin(alloc: &Alloc) -> Plugin {
    let plugin = Plugin::start(&[]).await;
    let state_dir = alloc.state.path().display().to_string();
    plugin
        .base()
        .set_config(set_config(
            msgpack(&[("state_dir", V::S(&state_dir))]),
            true,
        ))
        .await
        .expect("SetConfig");
    plugin
}

async fn start(plugin: &Plugin, task: TaskConfig) -> TaskHandle {
    plugin
        .driver()
        .start_task(StartTaskRequest { task: Some(task) })
        .await
        .unwrap_or_else(|e| panic!("StartTask: {}", e.message()))
        .into_inner()
        .handle
        .expect("a handle")
}

async fn wait(plugin: &Plugin, id: &str) -> ExitResult {
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

async fn destroy(plugin: &Plugin, id: &str) {
    plugin
        .driver()
        .destroy_task(DestroyTaskRequest {
            task_id: id.into(),
            force: true,
        })
        .await
        .expect("DestroyTask");
}

fn pb_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

async fn stop(plugin: &Plugin, id: &str, signal: &str, timeout: Duration) {
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

/// Waits (bounded) until `cond` holds; only a guard against hanging.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn exit_codes_and_signal_deaths() {
    require_host!();
    let alloc = Alloc::new();
    let plugin = plugin(&alloc).await;

    let h = start(
        &plugin,
        alloc.task("three", "sh", &["-c", "echo hi; exit 3"], "stdio rpath"),
    )
    .await;
    assert!(h.version >= 1 && !h.driver_state.is_empty());
    assert_eq!(h.state, TaskState::Running as i32);
    let id = h.config.unwrap().id;
    let r = wait(&plugin, &id).await;
    assert_eq!((r.exit_code, r.signal, r.oom_killed), (3, 0, false));
    // Repeated waits get the same result.
    assert_eq!(wait(&plugin, &id).await, r);
    assert_eq!(alloc.out("three"), "hi\n");
    destroy(&plugin, &id).await;

    let h = start(
        &plugin,
        alloc.task("killed", "sh", &["-c", "kill -KILL $$"], "stdio rpath proc"),
    )
    .await;
    let id = h.config.unwrap().id;
    let r = wait(&plugin, &id).await;
    assert_eq!((r.exit_code, r.signal), (137, 9));
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}

#[tokio::test]
async fn runs_as_nobody_in_its_own_pid_namespace_and_cgroup() {
    require_host!();
    let alloc = Alloc::new();
    let plugin = plugin(&alloc).await;
    let h = start(
        &plugin,
        alloc.task_unveiling(
            "who",
            "sh",
            &[
                "-c",
                "id -u; echo $USER; ls /proc | grep -c '^[0-9]'; grep '^0::' /proc/self/cgroup",
            ],
            "stdio rpath proc exec",
            SHELL_TOOLS,
        ),
    )
    .await;
    let id = h.config.unwrap().id;
    let r = wait(&plugin, &id).await;
    let out = alloc.out("who");
    assert_eq!(r.exit_code, 0, "stdout {out:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "65534", "{out}");
    assert_eq!(lines[1], "nobody", "{out}");
    // supervisor, sh, ls, grep (the pipeline) — never the host's processes.
    let visible: u32 = lines[2].parse().unwrap();
    assert!((2..=5).contains(&visible), "{out}");
    assert!(
        lines[3].starts_with("0::/") && lines[3].contains("alloc1"),
        "{out}"
    );
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}

#[tokio::test]
async fn stop_honoured_and_ignored_sigterm() {
    require_host!();
    let alloc = Alloc::new();
    let plugin = plugin(&alloc).await;

    let h = start(&plugin, alloc.task("polite", "sleep", &["1000"], "stdio")).await;
    let id = h.config.unwrap().id;
    stop(&plugin, &id, "", Duration::from_secs(30)).await;
    let r = wait(&plugin, &id).await;
    assert_eq!(
        (r.exit_code, r.signal),
        (143, 15),
        "stderr: {:?}",
        std::fs::read_to_string(alloc.path().join("polite.stderr")),
    );
    destroy(&plugin, &id).await;

    // Ignores SIGTERM and forks a background child: both die by SIGKILL after the timeout.
    let h = start(
        &plugin,
        alloc.task_unveiling(
            "stubborn",
            "sh",
            &[
                "-c",
                "trap '' TERM; sleep 1000 & echo ready; while :; do sleep 1; done",
            ],
            "stdio rpath proc exec",
            SHELL_TOOLS,
        ),
    )
    .await;
    let task = h.config.unwrap();
    eventually("the task printed ready", || {
        alloc.out("stubborn").contains("ready")
    })
    .await;
    stop(&plugin, &task.id, "SIGTERM", Duration::from_millis(500)).await;
    let r = wait(&plugin, &task.id).await;
    assert_eq!(r.signal, 9, "{r:?}");
    // Nothing of the task is left: no process references its alloc dir's stdout file.
    let pgrep = std::process::Command::new("pgrep")
        .args(["-f", "sleep 1000"])
        .output()
        .unwrap();
    let leftovers: Vec<_> = String::from_utf8_lossy(&pgrep.stdout)
        .lines()
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/fd/1"))
                .map(|p| p.starts_with(alloc.path()))
                .unwrap_or(false)
        })
        .map(String::from)
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    destroy(&plugin, &task.id).await;
    // Stopping an unknown task is fine (Nomad retries otherwise).
    stop(&plugin, "alloc1/nope/0", "", Duration::from_secs(1)).await;
    plugin.shutdown().await;
}

#[tokio::test]
async fn signals_reach_the_command() {
    require_host!();
    let alloc = Alloc::new();
    let plugin = plugin(&alloc).await;
    let h = start(
        &plugin,
        alloc.task_unveiling(
            "trap",
            "sh",
            &[
                "-c",
                "trap 'echo got USR1; exit 7' USR1; echo ready; while :; do sleep 0.1; done",
            ],
            "stdio rpath proc exec",
            SHELL_TOOLS,
        ),
    )
    .await;
    let id = h.config.unwrap().id;
    eventually("ready", || alloc.out("trap").contains("ready")).await;
    let e = plugin
        .driver()
        .signal_task(SignalTaskRequest {
            task_id: id.clone(),
            signal: "NOT-A-SIGNAL".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());
    plugin
        .driver()
        .signal_task(SignalTaskRequest {
            task_id: id.clone(),
            signal: "usr1".into(),
        })
        .await
        .expect("SignalTask");
    let r = wait(&plugin, &id).await;
    assert_eq!(r.exit_code, 7);
    assert!(alloc.out("trap").contains("got USR1"));
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}

#[tokio::test]
async fn stats_and_inspect() {
    require_host!();
    let alloc = Alloc::new();
    let plugin = plugin(&alloc).await;
    let h = start(&plugin, alloc.task("idle", "sleep", &["1000"], "stdio")).await;
    let id = h.config.unwrap().id;
    let mut stream = plugin
        .driver()
        .task_stats(TaskStatsRequest {
            task_id: id.clone(),
            collection_interval: Some(pb_duration(Duration::from_millis(200))),
        })
        .await
        .expect("TaskStats")
        .into_inner();
    for _ in 0..2 {
        let s = stream.next().await.unwrap().expect("stats").stats.unwrap();
        assert_eq!(s.id, id);
        assert!(s.timestamp.is_some());
        let usage = s.agg_resource_usage.unwrap();
        let mem = usage.memory.unwrap();
        assert!(!mem.measured_fields.is_empty());
        assert!(mem.rss > 0 || mem.usage > 0, "{mem:?}");
        assert!(!usage.cpu.unwrap().measured_fields.is_empty());
    }
    let info = plugin
        .driver()
        .inspect_task(InspectTaskRequest {
            task_id: id.clone(),
        })
        .await
        .expect("InspectTask")
        .into_inner();
    let status = info.task.unwrap();
    assert_eq!(status.state, TaskState::Running as i32);
    assert!(status.started_at.is_some());
    stop(&plugin, &id, "SIGKILL", Duration::from_secs(1)).await;
    wait(&plugin, &id).await;
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}

#[tokio::test]
async fn bad_users_are_refused() {
    require_host!();
    let alloc = Alloc::new();
    let plugin = plugin(&alloc).await;
    let mut task = alloc.task("u", "true", &[], "stdio");
    task.user = "no-such-user-here".into();
    let e = plugin
        .driver()
        .start_task(StartTaskRequest { task: Some(task) })
        .await
        .unwrap_err();
    assert!(e.message().contains("no-such-user-here"), "{}", e.message());
    let mut task = alloc.task("r", "true", &[], "stdio");
    task.user = "root".into();
    let e = plugin
        .driver()
        .start_task(StartTaskRequest { task: Some(task) })
        .await
        .unwrap_err();
    assert!(e.message().contains("allow_root"), "{}", e.message());
    plugin.shutdown().await;
}

#[tokio::test]
async fn tasks_survive_a_plugin_crash_and_report_exact_exits() {
    require_host!();
    let alloc = Alloc::new();
    let go = alloc.path().join("go");
    let plugin1 = plugin(&alloc).await;
    // One task keeps running; the other exits (code 5) while no plugin runs.
    let running = start(&plugin1, alloc.task("keeps", "sleep", &["1000"], "stdio")).await;
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.1; done; exit 5",
        go.display()
    );
    let exits = start(
        &plugin1,
        alloc.task_unveiling(
            "exits",
            "sh",
            &["-c", &script],
            "stdio rpath proc exec",
            &[
                &format!("r:{}", alloc.path().display()),
                "rx:/usr/bin",
                "rx:/bin",
            ],
        ),
    )
    .await;
    let exits_id = exits.config.clone().unwrap().id;
    let pid: i32 = plugin1
        .driver()
        .inspect_task(InspectTaskRequest {
            task_id: exits_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .driver
        .unwrap()
        .attributes["pid"]
        .parse()
        .unwrap();

    let mut child = plugin1.child;
    child.kill().await.unwrap();
    child.wait().await.unwrap();
    std::fs::write(&go, "").unwrap();
    eventually("the supervisor of the exiting task is gone", || {
        !PathBuf::from(format!("/proc/{pid}")).exists()
    })
    .await;

    let plugin2 = plugin(&alloc).await;
    for h in [&running, &exits] {
        plugin2
            .driver()
            .recover_task(RecoverTaskRequest {
                task_id: String::new(),
                handle: Some(h.clone()),
            })
            .await
            .unwrap_or_else(|e| panic!("RecoverTask: {}", e.message()));
    }
    // Recovering a known task again is fine.
    plugin2
        .driver()
        .recover_task(RecoverTaskRequest {
            task_id: String::new(),
            handle: Some(running.clone()),
        })
        .await
        .expect("RecoverTask of a known task");
    let r = wait(&plugin2, &exits_id).await;
    assert_eq!((r.exit_code, r.signal), (5, 0));

    let running_id = running.config.clone().unwrap().id;
    stop(&plugin2, &running_id, "SIGTERM", Duration::from_secs(30)).await;
    let r = wait(&plugin2, &running_id).await;
    assert_eq!(r.signal, 15);
    destroy(&plugin2, &running_id).await;
    destroy(&plugin2, &exits_id).await;

    // Garbage handles are refused.
    let mut bad = running.clone();
    bad.driver_state = b"not json".to_vec();
    let e = plugin2
        .driver()
        .recover_task(RecoverTaskRequest {
            task_id: String::new(),
            handle: Some(bad),
        })
        .await
        .unwrap_err();
    assert!(e.message().contains("handle"), "{}", e.message());
    // Nothing is left in the state dir after destroy.
    let left: Vec<_> = walk(alloc.state.path());
    assert!(left.is_empty(), "state left behind: {left:?}");
    plugin2.shutdown().await;
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
