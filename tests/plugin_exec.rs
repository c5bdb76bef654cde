//! `nomad alloc exec` and script checks through the built plugin binary over gRPC: ExecTask and
//! ExecTaskStreaming run inside the task's sandbox (user, cgroup, namespaces, promises, unveil).
//! Needs root and a cgroup v2 mount; skips with a printed reason otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::pb::drivers::{
    exec_task_streaming_request::{Setup, TerminalSize},
    ExecTaskRequest, ExecTaskResponse, ExecTaskStreamingIoOperation, ExecTaskStreamingRequest,
    ExitResult,
};
use common::tasks::*;
use common::*;
use futures::StreamExt;

async fn start_sleeper(plugin: &Plugin, alloc: &Alloc, name: &str, promises: &str) -> String {
    start_unveiling(plugin, alloc, name, promises, &[]).await
}

/// The same, unveiling `extra` besides the shell tools.
async fn start_unveiling(
    plugin: &Plugin,
    alloc: &Alloc,
    name: &str,
    promises: &str,
    extra: &[&str],
) -> String {
    let unveil: Vec<&str> = SHELL_TOOLS.iter().chain(extra).copied().collect();
    let task = alloc.task_unveiling(name, "sh", &["-c", "sleep 600"], promises, &unveil);
    start(plugin, task).await.config.expect("config").id
}

async fn exec(
    plugin: &Plugin,
    id: &str,
    argv: &[&str],
    timeout: Option<Duration>,
) -> ExecTaskResponse {
    let req = ExecTaskRequest {
        task_id: id.into(),
        command: argv.iter().map(|s| s.to_string()).collect(),
        timeout: timeout.map(|d| prost_types::Duration {
            seconds: d.as_secs() as i64,
            nanos: 0,
        }),
    };
    tokio::time::timeout(PATIENCE, plugin.driver().exec_task(req))
        .await
        .expect("ExecTask answers in time")
        .unwrap_or_else(|e| panic!("ExecTask {argv:?}: {}", e.message()))
        .into_inner()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The task cgroup's directory, as seen by a command exec'd in the task.
async fn task_cgroup(plugin: &Plugin, id: &str) -> PathBuf {
    let r = exec(plugin, id, &["grep", "^0::", "/proc/self/cgroup"], None).await;
    let out = text(&r.stdout);
    let rel = out.trim().strip_prefix("0::/").expect("a cgroup v2 line");
    let cg = cgroup2_mount().unwrap().join(rel);
    // StartTask answers once the supervisor has its plan; it forks the task's command a moment
    // later, and `sh` forks `sleep` later still. Counts taken earlier would never match again.
    // The task is its supervisor, `sh -c 'sleep 600'` and the `sleep 600` it forks.
    eventually("the task's `sleep 600` runs", || {
        pids(&cg).iter().any(|p| {
            p.split_once("] ")
                .is_some_and(|(_, cmd)| cmd == "sleep 600 ")
        })
    })
    .await;
    cg
}

/// Waits (bounded) until `cgroup` holds as many processes as `before` again; the failure
/// lists them.
async fn back_to(cgroup: &Path, before: &[String], what: &str) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while pids(cgroup).len() != before.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} is not gone: before {before:?}, now {:?}",
            pids(cgroup)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The cgroup's processes, each with its command line (for failure messages).
fn pids(cgroup: &Path) -> Vec<String> {
    std::fs::read_to_string(cgroup.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = state
                .rsplit(") ")
                .next()
                .unwrap_or("")
                .split(' ')
                .next()
                .unwrap_or("");
            format!(
                "{pid} [{state}] {}",
                String::from_utf8_lossy(&cmd).replace('\0', " ")
            )
        })
        .collect()
}

#[tokio::test]
async fn exec_runs_in_the_task_sandbox() {
    require_host!();
    let alloc = Alloc::new("exec");
    let plugin = plugin(&alloc).await;
    let box_dir = format!("rwc:{}", alloc.path().join("box").display());
    let id = start_unveiling(&plugin, &alloc, "box", "stdio rpath proc exec", &[&box_dir]).await;

    let r = exec(&plugin, &id, &["id", "-u"], None).await;
    assert_eq!(
        r.result,
        Some(ExitResult::default()),
        "stderr {}",
        text(&r.stderr)
    );
    assert_eq!(text(&r.stdout), "65534\n");

    // Same environment and cgroup as the task, and its PID namespace (few processes visible).
    let r = exec(
        &plugin,
        &id,
        &["sh", "-c", "echo $USER; ls /proc | grep -c '^[0-9]'"],
        None,
    )
    .await;
    let out = text(&r.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"nobody"), "{out} {}", text(&r.stderr));
    let visible: u32 = lines[1].parse().unwrap();
    assert!(visible < 12, "the host's processes are visible: {out}");
    let cg = task_cgroup(&plugin, &id).await;
    assert!(cg.to_string_lossy().contains("alloc1"), "{}", cg.display());

    // /etc is not unveiled for this task.
    let r = exec(&plugin, &id, &["cat", "/etc/passwd"], None).await;
    assert_ne!(
        r.result.unwrap().exit_code,
        0,
        "read a path the task did not unveil"
    );
    assert!(r.stdout.is_empty());

    // Writing needs wpath/cpath, which the task did not promise (its dir is world-writable).
    let target = alloc.path().join("box/local/x");
    let script = format!("echo hi > {}", target.display());
    let r = exec(&plugin, &id, &["sh", "-c", &script], None).await;
    assert_ne!(r.result.unwrap().exit_code, 0);
    assert!(
        !target.exists(),
        "a write without the wpath/cpath promises succeeded"
    );

    // Unknown task: NotFound.
    let e = plugin
        .driver()
        .exec_task(ExecTaskRequest {
            task_id: "no-such-task".into(),
            command: vec!["true".into()],
            timeout: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{}", e.message());

    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}

#[tokio::test]
async fn exec_in_an_exited_task_is_a_failed_precondition() {
    require_host!();
    let alloc = Alloc::new("exec");
    let plugin = plugin(&alloc).await;
    let task = alloc.task_unveiling(
        "done",
        "sh",
        &["-c", "exit 0"],
        "stdio rpath exec",
        SHELL_TOOLS,
    );
    let (id, _) = run_to_exit(&plugin, task).await;
    let e = plugin
        .driver()
        .exec_task(ExecTaskRequest {
            task_id: id.clone(),
            command: vec!["true".into()],
            timeout: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{}", e.message());
    assert!(e.message().contains("not running"), "{}", e.message());
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}

#[tokio::test]
async fn exec_timeout_kills_the_command() {
    require_host!();
    let alloc = Alloc::new("exec");
    let plugin = plugin(&alloc).await;
    let id = start_sleeper(&plugin, &alloc, "slow", "stdio rpath proc exec").await;
    let cg = task_cgroup(&plugin, &id).await;
    let before = pids(&cg);
    let r = exec(
        &plugin,
        &id,
        &["sh", "-c", "echo started; sleep 600"],
        Some(Duration::from_secs(1)),
    )
    .await;
    let res = r.result.expect("result is always set");
    assert_eq!(res.signal, 9, "{res:?}");
    assert_eq!(text(&r.stdout), "started\n");
    back_to(&cg, &before, "the timed-out command").await;
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}

type Frames = tokio::sync::mpsc::Sender<ExecTaskStreamingRequest>;

async fn open_stream(
    plugin: &Plugin,
    setup: ExecTaskStreamingRequest,
) -> (
    Frames,
    tonic::Streaming<common::pb::drivers::ExecTaskStreamingResponse>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(setup).await.unwrap();
    let resp = plugin
        .driver()
        .exec_task_streaming(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap_or_else(|e| panic!("ExecTaskStreaming: {}", e.message()))
        .into_inner();
    (tx, resp)
}

fn setup(id: &str, argv: &[&str], tty: Option<(i32, i32)>) -> ExecTaskStreamingRequest {
    ExecTaskStreamingRequest {
        setup: Some(Setup {
            task_id: id.into(),
            command: argv.iter().map(|s| s.to_string()).collect(),
            tty: tty.is_some(),
        }),
        tty_size: tty.map(|(height, width)| TerminalSize { height, width }),
        stdin: None,
    }
}

fn stdin(data: &[u8], close: bool) -> ExecTaskStreamingRequest {
    ExecTaskStreamingRequest {
        stdin: Some(ExecTaskStreamingIoOperation {
            data: data.to_vec(),
            close,
        }),
        ..Default::default()
    }
}

/// Reads frames to the end: (stdout, stderr, stdout closed, result).
async fn drain(
    resp: &mut tonic::Streaming<common::pb::drivers::ExecTaskStreamingResponse>,
) -> (Vec<u8>, Vec<u8>, bool, ExitResult) {
    let (mut out, mut err, mut closed) = (Vec::new(), Vec::new(), false);
    loop {
        let f = tokio::time::timeout(PATIENCE, resp.next())
            .await
            .expect("a frame in time")
            .expect("the stream ends with an exited frame")
            .expect("frame");
        if let Some(o) = f.stdout {
            out.extend_from_slice(&o.data);
            closed |= o.close;
        }
        if let Some(e) = f.stderr {
            err.extend_from_slice(&e.data);
        }
        if f.exited {
            return (
                out,
                err,
                closed,
                f.result.expect("exited frame has a result"),
            );
        }
    }
}

#[tokio::test]
async fn streaming_stdin_tty_and_cancel() {
    require_host!();
    let alloc = Alloc::new("exec");
    let plugin = plugin(&alloc).await;
    let id = start_sleeper(&plugin, &alloc, "shell", "stdio rpath proc exec tty").await;
    let cg = task_cgroup(&plugin, &id).await;
    let before = pids(&cg);

    // stdin round trip, with a heartbeat in between; two sessions at once.
    let (tx1, mut rx1) = open_stream(&plugin, setup(&id, &["cat"], None)).await;
    let (tx2, mut rx2) = open_stream(
        &plugin,
        setup(&id, &["sh", "-c", "cat; echo oops >&2; exit 5"], None),
    )
    .await;
    tx1.send(stdin(b"hello ", false)).await.unwrap();
    tx1.send(ExecTaskStreamingRequest::default()).await.unwrap();
    tx2.send(stdin(b"second", true)).await.unwrap();
    tx1.send(stdin(b"world\n", true)).await.unwrap();
    let (out, err, closed, res) = drain(&mut rx1).await;
    assert_eq!(text(&out), "hello world\n", "stderr {}", text(&err));
    assert!(closed, "stdout close frame");
    assert_eq!(res, ExitResult::default());
    let (out, err, _, res) = drain(&mut rx2).await;
    assert_eq!(text(&out), "second");
    assert_eq!(text(&err), "oops\n");
    assert_eq!(res.exit_code, 5);

    // A tty session: the size is applied and the exit code comes back.
    let (tx, mut rx) = open_stream(
        &plugin,
        setup(
            &id,
            &["sh", "-c", "test -t 0 && stty size; exit 7"],
            Some((33, 101)),
        ),
    )
    .await;
    let (out, _, _, res) = drain(&mut rx).await;
    assert!(text(&out).contains("33 101"), "{:?}", text(&out));
    assert_eq!(res.exit_code, 7);
    drop(tx);

    // A resize frame reaches the terminal before the input that follows it.
    let (tx, mut rx) = open_stream(
        &plugin,
        setup(&id, &["sh", "-c", "read x; stty size"], Some((24, 80))),
    )
    .await;
    let resize = ExecTaskStreamingRequest {
        tty_size: Some(TerminalSize {
            height: 50,
            width: 132,
        }),
        ..Default::default()
    };
    tx.send(resize).await.unwrap();
    tx.send(stdin(b"go\n", false)).await.unwrap();
    let (out, _, _, res) = drain(&mut rx).await;
    assert!(text(&out).contains("50 132"), "{:?}", text(&out));
    assert_eq!(res.exit_code, 0);
    drop(tx);

    // Cancelling a stream kills its command: nothing is left in the task cgroup.
    let (tx, rx) = open_stream(&plugin, setup(&id, &["sh", "-c", "sleep 600"], None)).await;
    eventually("the exec session started", || {
        pids(&cg).len() > before.len()
    })
    .await;
    drop(rx);
    drop(tx);
    back_to(&cg, &before, "the cancelled command").await;

    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}

/// A descriptor the plugin inherited without close-on-exec (from Nomad, or whatever started
/// it) is the plugin's, never the task's: neither the task nor an exec'd command sees it.
#[tokio::test]
async fn inherited_descriptors_reach_neither_tasks_nor_exec_sessions() {
    require_host!();
    let alloc = Alloc::new("exec");
    let secret = alloc.path().join("secret");
    std::fs::write(&secret, "the plugin's\n").unwrap();
    // fd 7 stays open, without close-on-exec, across the exec of the plugin.
    let script = format!("exec 7<{}; exec \"$0\" \"$@\"", secret.display());
    let plugin = plugin_under(&alloc, &["sh", "-c", &script]).await;
    let unveil: Vec<&str> = SHELL_TOOLS.iter().copied().chain(["r:/proc"]).collect();
    let task = alloc.task_unveiling(
        "fds",
        "sh",
        &["-c", "ls /proc/self/fd; exec sleep 600"],
        "stdio rpath proc exec",
        &unveil,
    );
    let id = start(&plugin, task).await.config.expect("config").id;
    eventually("the task listed its descriptors", || {
        alloc.out("fds").lines().count() >= 4
    })
    .await;
    // 3 is the directory `ls` reads.
    assert_eq!(alloc.out("fds"), "0\n1\n2\n3\n");
    let r = exec(&plugin, &id, &["ls", "/proc/self/fd"], None).await;
    assert_eq!(
        text(&r.stdout),
        "0\n1\n2\n3\n",
        "stderr {}",
        text(&r.stderr)
    );
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}

/// The plugin's binary replaced while it runs (an upgrade by `mv`, or a rebuild): the helpers
/// the plugin starts later (the `__exec` helper, a restarted fork server) are the binary the
/// plugin runs, not whatever the path names now, and not a failure.
#[tokio::test]
async fn replacing_the_binary_in_place_breaks_neither_exec_nor_new_tasks() {
    require_host!();
    let alloc = Alloc::new("exec");
    let bin_dir = alloc.path().join("plugins");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let bin = bin_dir.join("nomad-pledge-driver");
    std::fs::copy(BIN, &bin).unwrap();
    // The wrapper ignores the BIN it is given and runs the copy.
    let run_copy = format!("exec {}", bin.display());
    let plugin = plugin_under(&alloc, &["sh", "-c", &run_copy, "sh"]).await;
    let id = start_sleeper(&plugin, &alloc, "first", "stdio rpath proc exec").await;

    // The path now names another file; the old inode is unlinked.
    let next = bin_dir.join("next");
    std::fs::write(
        &next,
        "#!/bin/sh\necho not the plugin's binary >&2\nexit 99\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&next, &bin).unwrap();

    let r = exec(&plugin, &id, &["echo", "still here"], None).await;
    assert_eq!(
        text(&r.stdout),
        "still here\n",
        "stderr {}",
        text(&r.stderr)
    );

    // A fork server that died is started again, from the same binary.
    let server = forkserver_of(plugin.child.id().expect("plugin pid")).expect("a fork server");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let second = start_sleeper(&plugin, &alloc, "second", "stdio rpath proc exec").await;
    let r = exec(&plugin, &second, &["echo", "second"], None).await;
    assert_eq!(text(&r.stdout), "second\n", "stderr {}", text(&r.stderr));
    destroy(&plugin, &id).await;
    destroy(&plugin, &second).await;
    plugin.shutdown().await;
}

/// The pid of `plugin`'s fork server (its child running `__forkserver`), if it runs.
fn forkserver_of(plugin: u32) -> Option<i32> {
    // A child is listed under the thread that forked it.
    let children: String = std::fs::read_dir(format!("/proc/{plugin}/task"))
        .unwrap()
        .flatten()
        .map(|t| std::fs::read_to_string(t.path().join("children")).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ");
    children
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .split(|&b| b == 0)
                .any(|a| a == b"__forkserver")
        })
}

/// The fork server exists from the long-lived SetConfig on (a helper that appeared during a
/// StartTask, outside the task's cgroup, would look like an escaped task process), serves a
/// burst of starts, and is gone once idle (nothing of the plugin's but the plugin outlives what
/// it was asked to do); the next StartTask starts it again.
#[tokio::test]
async fn the_fork_server_runs_from_set_config_until_it_is_idle() {
    require_host!();
    let alloc = Alloc::new("exec");
    let plugin = plugin(&alloc).await;
    let pid = plugin.child.id().expect("plugin pid");
    eventually("a fork server after SetConfig", || {
        forkserver_of(pid).is_some()
    })
    .await;
    let server = forkserver_of(pid).unwrap();
    // What ps shows, once the server has named itself (it is exec'd as /proc/PID/exe).
    eventually("the fork server is named nomad-pledge-dr", || {
        std::fs::read_to_string(format!("/proc/{server}/comm")).unwrap_or_default()
            == "nomad-pledge-dr\n"
    })
    .await;
    let one = start_sleeper(&plugin, &alloc, "one", "stdio rpath proc exec").await;
    let two = start_sleeper(&plugin, &alloc, "two", "stdio rpath proc exec").await;
    assert_eq!(
        forkserver_of(pid),
        Some(server),
        "one server for every task"
    );
    destroy(&plugin, &one).await;
    assert_eq!(forkserver_of(pid), Some(server), "a task is left");
    destroy(&plugin, &two).await;
    // Half a second after its last clone.
    eventually("no fork server once idle", || forkserver_of(pid).is_none()).await;
    let three = start_sleeper(&plugin, &alloc, "three", "stdio rpath proc exec").await;
    let r = exec(&plugin, &three, &["echo", "three"], None).await;
    assert_eq!(text(&r.stdout), "three\n", "stderr {}", text(&r.stderr));
    destroy(&plugin, &three).await;
    plugin.shutdown().await;
}
