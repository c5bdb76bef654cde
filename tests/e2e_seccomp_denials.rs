//! Issue 16 item 1 (seccomp side): every distinct seccomp denial of a task is a task event that
//! names the program, the decoded call and the promise that would allow it; repeats are counted,
//! not re-sent; terminal probes are grouped after what matters; the plugin option
//! `seccomp_denials = false` turns it off; a plugin restart (RecoverTask) loses nothing and
//! repeats nothing. The program's own view is unchanged (EPERM). Needs root and a cgroup v2
//! mount; skips with a printed reason. Run under the cgroup test lock (tests/plugin_*,
//! tests/e2e_*).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use futures::StreamExt;

const BIN: &str = env!("CARGO_BIN_EXE_nomad-pledge-driver");
const PYTHON: &str = "/usr/bin/python3";

mod common;
use common::pb::drivers::{
    DestroyTaskRequest, StartTaskRequest, TaskEventsRequest, WaitTaskRequest,
};
use common::tasks::{
    crash, destroy, next_event, plugin_with, recover, skip_reason, start, task_events, Alloc,
};
use common::{msgpack, set_config, Plugin, PATIENCE, V};

fn python_job(dir: &Path, script: &str) -> PathBuf {
    let path = dir.join("job.hcl");
    let script_path = dir.join("probe.py");
    std::fs::write(&script_path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&script_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(
        &path,
        format!(
            r#"job "seccomp" {{
  type = "batch"
  group "group" {{
    task "probe" {{
      driver = "pledge"
      config {{
        command  = "{PYTHON}"
        args     = ["{}"]
        promises = "stdio rpath"
        unveil   = ["r:/usr", "r:/etc", "r:{}"]
      }}
    }}
    restart {{
      attempts = 0
      mode     = "fail"
    }}
  }}
}}
"#,
            script_path.display(),
            dir.display()
        ),
    )
    .unwrap();
    path
}

fn run(job: &Path, plugin_config: Option<&Path>) -> Output {
    let mut c = Command::new(BIN);
    // -v: the plugin's info lines too (each denial is one).
    c.arg("run").arg("-v").arg(job);
    if let Some(p) = plugin_config {
        c.arg("--plugin-config").arg(p);
    }
    c.stdin(Stdio::null())
        .output()
        .expect("run nomad-pledge-driver run")
}

/// The `==> task "probe" event: ...` lines about seccomp denials.
fn denial_events(err: &str) -> Vec<&str> {
    err.lines()
        .filter(|l| l.starts_with("==> task \"probe\" event: ") && l.contains("needs promise"))
        .collect()
}

const SOCKET: &str = r#"
import socket, sys
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    print("socket: allowed")
except OSError as e:
    print("socket: errno", e.errno)
sys.stdout.flush()
"#;

#[test]
fn a_denied_socket_is_a_task_event_naming_the_call_and_the_promise() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = run(&python_job(dir.path(), SOCKET), None);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    // The program's view is unchanged: EPERM.
    assert!(out.contains("socket: errno 1"), "{out}\n{err}");
    let events = denial_events(&err);
    let socket = events
        .iter()
        .find(|l| l.contains("socket(AF_INET, SOCK_STREAM"))
        .unwrap_or_else(|| panic!("no socket denial event in:\n{err}"));
    assert!(socket.contains("needs promise inet"), "{socket}");
    assert!(
        socket.contains("python3") && socket.contains("pid "),
        "{socket}"
    );
    // Not buried: python's terminal probes (stdout is not a tty) come after, grouped.
    assert!(
        events[0].contains("socket(AF_INET"),
        "the socket denial must be the first denial event:\n{err}"
    );
    let probes: Vec<_> = events.iter().filter(|l| l.contains("TCGETS")).collect();
    assert!(
        probes.len() <= 1,
        "terminal probes must be grouped into one event:\n{err}"
    );
    // Logged at info by the plugin with the task and alloc ids.
    assert!(
        err.lines().any(|l| !l.starts_with("==>")
            && l.contains("seccomp denial")
            && l.contains("alloc_id")
            && l.contains("socket(AF_INET")),
        "no plugin log line for the denial in:\n{err}"
    );
}

#[test]
fn a_task_hammering_a_denied_call_yields_a_bounded_number_of_events_with_a_count() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import socket, sys
n = 0
for i in range(200000):
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        n += 1
print("denied", n)
"#;
    let o = run(&python_job(dir.path(), script), None);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("denied 200000"), "{out}");
    let events: Vec<_> = denial_events(&err)
        .into_iter()
        .filter(|l| l.contains("socket(AF_INET"))
        .collect();
    assert!(
        !events.is_empty() && events.len() <= 12,
        "a bounded number of socket events: {events:#?}"
    );
    assert!(
        events.iter().any(|l| l.contains("200000 times")),
        "the final count is reported: {events:#?}"
    );
    assert!(
        err.len() < 200_000,
        "run's output is bounded: {} bytes",
        err.len()
    );
}

#[test]
fn seccomp_denials_false_reports_nothing_and_keeps_the_old_behaviour() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("plugin.hcl");
    std::fs::write(&conf, "seccomp_denials = false\n").unwrap();
    let o = run(&python_job(dir.path(), SOCKET), Some(&conf));
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("socket: errno 1"), "{out}\n{err}");
    assert!(denial_events(&err).is_empty(), "{err}");
}

/// A plugin restart in the middle of a task: denials reported before are not reported again,
/// denials made while no plugin ran and after the new plugin recovered the task are reported,
/// each once.
#[tokio::test]
async fn denials_survive_a_plugin_restart_and_are_reported_once() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let alloc = Alloc::new("seccomp-denials");

    let go1 = alloc.path().join("go1");
    let go2 = alloc.path().join("go2");
    let script = format!(
        r#"
import os, socket, time
def deny(family):
    try:
        socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        pass
deny(socket.AF_INET)
while not os.path.exists("{go1}"):
    time.sleep(0.05)
deny(socket.AF_INET)
deny(socket.AF_UNIX)
while not os.path.exists("{go2}"):
    time.sleep(0.05)
deny(17)  # AF_PACKET: another fix than AF_INET/AF_INET6 (which count as one denial)
"#,
        go1 = go1.display(),
        go2 = go2.display()
    );
    let script_path = alloc.path().join("probe.py");
    std::fs::write(&script_path, script).unwrap();
    let dir = alloc.path().display().to_string();
    let unveil = ["r:/usr", "r:/etc", &format!("r:{dir}")];
    let task = alloc.task_unveiling(
        "probe",
        PYTHON,
        &[&script_path.display().to_string()],
        "stdio rpath",
        &unveil,
    );
    let id = task.id.clone();

    let plugin1 = plugin_with(&alloc, &[]).await;
    let mut events1 = task_events(&plugin1).await;
    let handle = start(&plugin1, task).await;
    let first = next_event(&mut events1, "socket(AF_INET,").await;
    assert_eq!(first.task_id, id);
    crash(plugin1).await;
    // Made while no plugin runs.
    std::fs::write(&go1, "").unwrap();

    let plugin2 = plugin_with(&alloc, &[]).await;
    let mut events2 = task_events(&plugin2).await;
    recover(&plugin2, handle).await;
    let mut seen = vec![next_event(&mut events2, "socket(AF_UNIX,").await.message];
    // Made after the recovery.
    std::fs::write(&go2, "").unwrap();
    seen.push(next_event(&mut events2, "socket(AF_PACKET,").await.message);
    let r = plugin2
        .driver()
        .wait_task(WaitTaskRequest {
            task_id: id.clone(),
        })
        .await
        .expect("WaitTask")
        .into_inner();
    assert_eq!(r.result.unwrap().exit_code, 0, "{}", r.err);
    // Whatever else plugin2 published: never the AF_INET denial as a new one.
    while let Ok(Some(Ok(e))) = tokio::time::timeout(Duration::from_secs(2), events2.next()).await {
        seen.push(e.message);
    }
    assert!(
        !seen.iter().any(|m| m.contains("socket(AF_INET,")
            && m.contains("needs promise inet")
            && !m.contains("times")),
        "the AF_INET denial was reported again after the restart: {seen:#?}"
    );
    destroy(&plugin2, &id).await;
    plugin2.shutdown().await;
}

/// The listener's holder is out of the task's reach: the task cannot signal, trace or take
/// descriptors from its supervisor (PID 1 of its namespace), and its attempts are reported.
#[test]
fn the_task_cannot_reach_the_supervisor_that_holds_the_listener() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
def call(*a):
    r = libc.syscall(*a)
    return "ok" if r >= 0 else "errno %d" % ctypes.get_errno()
print("ptrace", call(101, 16, 1, 0, 0))            # PTRACE_ATTACH to pid 1
print("pidfd_open", call(434, 1, 0))
print("pidfd_getfd", call(438, 0, 3, 0))
try:
    os.kill(1, signal.SIGKILL)
    print("kill ok")
except OSError as e:
    print("kill errno", e.errno)
print("alive")
"#;
    let o = run(&python_job(dir.path(), script), None);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    for what in [
        "ptrace errno",
        "pidfd_open errno",
        "pidfd_getfd errno",
        "kill errno",
    ] {
        assert!(out.contains(what), "{what}: {out}");
    }
    assert!(out.contains("alive"), "{out}");
    assert!(err.contains("exited: exit_code=0"), "{err}");
    assert!(
        denial_events(&err).iter().any(|l| l.contains("kill(1, 9)")),
        "the attempt on the supervisor is reported:\n{err}"
    );
}

/// `nomad alloc exec` (ExecTask) runs its command in the task's sandbox; the command's seccomp
/// denials are task events too, naming the call and the promise.
#[tokio::test]
async fn an_exec_sessions_denials_are_task_events() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let alloc = Alloc::new("seccomp-denials");
    let p = Plugin::start(&[]).await;
    let state = alloc.state.path().display().to_string();
    p.base()
        .set_config(set_config(msgpack(&[("state_dir", V::S(&state))]), true))
        .await
        .expect("SetConfig");
    let mut events = p
        .driver()
        .task_events(TaskEventsRequest {})
        .await
        .expect("TaskEvents")
        .into_inner();
    let task = alloc.task_unveiling(
        "execd",
        "/bin/sleep",
        &["600"],
        "stdio rpath",
        &["r:/usr", "r:/etc"],
    );
    let id = task.id.clone();
    p.driver()
        .start_task(StartTaskRequest { task: Some(task) })
        .await
        .unwrap_or_else(|e| panic!("StartTask: {}", e.message()));
    let r = tokio::time::timeout(
        PATIENCE,
        p.driver().exec_task(common::pb::drivers::ExecTaskRequest {
            task_id: id.clone(),
            command: vec![
                PYTHON.into(),
                "-c".into(),
                "import socket\ntry:\n    socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\nexcept OSError as e:\n    print('errno', e.errno)".into(),
            ],
            timeout: None,
        }),
    )
    .await
    .expect("ExecTask answers in time")
    .unwrap_or_else(|e| panic!("ExecTask: {}", e.message()))
    .into_inner();
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(
        out.contains("errno 1"),
        "the command still sees EPERM: {out}"
    );
    let e = next_event(&mut events, "socket(AF_INET6, SOCK_DGRAM").await;
    assert_eq!(e.task_id, id);
    assert!(e.message.contains("needs promise inet"), "{}", e.message);
    p.driver()
        .destroy_task(DestroyTaskRequest {
            task_id: id,
            force: true,
        })
        .await
        .expect("DestroyTask");
    p.shutdown().await;
}
