//! The task lifecycle through the built plugin binary, driven over gRPC as a Nomad client does:
//! start, wait, stop, signal, stats, inspect, destroy, and recovery after the plugin is
//! SIGKILLed. Tasks run through the default (built-in) pledge launcher. Needs root and a cgroup
//! v2 mount; skips with a printed reason otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::pb::drivers::{
    InspectTaskRequest, RecoverTaskRequest, SignalTaskRequest, StartTaskRequest, TaskState,
    TaskStatsRequest, WaitTaskRequest,
};
use common::tasks::*;
use common::*;
use futures::StreamExt;

#[tokio::test]
async fn exit_codes_and_signal_deaths() {
    require_host!();
    let alloc = Alloc::new("lifecycle");
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

    let (id, r) = run_to_exit(
        &plugin,
        alloc.task("killed", "sh", &["-c", "kill -KILL $$"], "stdio rpath proc"),
    )
    .await;
    assert_eq!((r.exit_code, r.signal), (137, 9));
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}

#[tokio::test]
async fn runs_as_nobody_in_its_own_pid_namespace_and_cgroup() {
    require_host!();
    let alloc = Alloc::new("lifecycle");
    let plugin = plugin(&alloc).await;
    let (id, r) = run_to_exit(
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
    let alloc = Alloc::new("lifecycle");
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
    let alloc = Alloc::new("lifecycle");
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
    let alloc = Alloc::new("lifecycle");
    let plugin = plugin(&alloc).await;
    let h = start(&plugin, alloc.task("idle", "sleep", &["1000"], "stdio")).await;
    let id = h.config.unwrap().id;
    // StartTask answers once the task's supervisor runs; `sleep` starts a moment later. Until
    // then the task truly has no memory of its own (the supervisor is driver overhead and is not
    // counted), so the samples below are taken once it runs.
    let scope = tasks::cgroup2_mount()
        .unwrap()
        .join("nomad-pledge.slice/alloc1.idle.scope");
    eventually("sleep running in the task's cgroup", || {
        std::fs::read_to_string(scope.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .any(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default()
                    == "sleep\n"
            })
    })
    .await;
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
    // The stats stream is still open, holding the task's cgroup files: destroy still removes
    // the cgroup.
    assert!(scope.is_dir(), "{scope:?}");
    destroy(&plugin, &id).await;
    assert!(!scope.exists(), "{scope:?} left behind");
    drop(stream);
    plugin.shutdown().await;
}

/// The first task event whose message contains `text`, skipping the others a task may get
/// first (e.g. that this node cannot report Landlock denials, issue 16).
async fn event_containing(
    events: &mut tonic::Streaming<common::pb::drivers::DriverTaskEvent>,
    text: &str,
) -> common::pb::drivers::DriverTaskEvent {
    let mut seen = Vec::new();
    for _ in 0..8 {
        let event = tokio::time::timeout(PATIENCE, events.next())
            .await
            .unwrap_or_else(|_| panic!("no event containing `{text}` in time; got {seen:?}"))
            .unwrap()
            .unwrap();
        if event.message.contains(text) {
            return event;
        }
        seen.push(event.message);
    }
    panic!("no event containing `{text}` among {seen:?}");
}

#[tokio::test]
async fn sandbox_failures_are_reported() {
    require_host!();
    let alloc = Alloc::new("lifecycle");
    let plugin = plugin(&alloc).await;
    let mut events = plugin
        .driver()
        .task_events(common::pb::drivers::TaskEventsRequest {})
        .await
        .expect("TaskEvents")
        .into_inner();
    // An executable file the kernel cannot run: StartTask's checks pass (a missing program is
    // refused there, see `start_refuses_commands_the_task_user_cannot_run`), the launcher's
    // execve fails inside the sandbox.
    let junk = alloc.path().join("junk-program");
    std::fs::write(&junk, "not a program\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o755)).unwrap();
    let junk = junk.display().to_string();
    let h = start(&plugin, alloc.task("junk", &junk, &[], "stdio")).await;
    let id = h.config.unwrap().id;
    let resp = plugin
        .driver()
        .wait_task(WaitTaskRequest {
            task_id: id.clone(),
        })
        .await
        .expect("WaitTask")
        .into_inner();
    // pledge.com's status for a program it cannot execute.
    assert_eq!(resp.result.unwrap().exit_code, 127);
    // The step, the program and the errno, each exactly once (see src/errors.rs).
    for piece in [
        "the sandbox could not start the task",
        &junk,
        "Exec format error",
    ] {
        assert_eq!(
            resp.err.matches(piece).count(),
            1,
            "{piece:?} once in {:?}",
            resp.err
        );
    }
    let event = event_containing(&mut events, &junk).await;
    assert_eq!(event.task_id, id);
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}

/// StartTask refuses a `command` the task user cannot run, resolved with the task's PATH as
/// that user (a directory only root can search is skipped and named), and a `work_dir` that is
/// not a directory, instead of starting a task that fails.
#[tokio::test]
async fn start_refuses_commands_the_task_user_cannot_run() {
    require_host!();
    let alloc = Alloc::new("lifecycle");
    let plugin = plugin(&alloc).await;
    use std::os::unix::fs::PermissionsExt;
    let private = alloc.path().join("root-only-bin");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy("/bin/true", private.join("catt")).unwrap();
    let refused = |task: common::pb::drivers::TaskConfig| refused(&plugin, task);

    let mut t = alloc.task("typo", "catt", &[], "stdio");
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", private.display());
    t.env.insert("PATH".into(), path);
    let e = refused(t).await;
    assert!(
        e.contains("`command` `catt`") && e.contains("`nobody`"),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "searched {}, /usr/local/bin, /usr/bin, /bin",
            private.display()
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "not searchable by the task user (skipped): {}",
            private.display()
        )),
        "{e}"
    );

    let e = refused(alloc.task("missing", "/nonexistent/program", &[], "stdio")).await;
    assert!(
        e.contains("/nonexistent/program") && e.contains("No such file or directory"),
        "{e}"
    );

    let mut t = alloc.task("nowd", "true", &[], "stdio");
    t.msgpack_driver_config =
        msgpack(&[("command", V::S("true")), ("work_dir", V::S("no-such-dir"))]);
    let e = refused(t).await;
    assert!(
        e.contains("`work_dir`") && e.contains("no-such-dir") && e.contains("does not exist"),
        "{e}"
    );
    plugin.shutdown().await;
}

#[tokio::test]
async fn bad_users_are_refused() {
    require_host!();
    let alloc = Alloc::new("lifecycle");
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
    let alloc = Alloc::new("lifecycle");
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

#[tokio::test]
async fn open_file_limit_is_raised_for_the_plugin_and_restored_for_tasks() {
    require_host!();
    let alloc = Alloc::new("lifecycle");
    // Started like a plugin under a shell's usual soft limit.
    let plugin = plugin_under(&alloc, &["prlimit", "--nofile=512:4096", "--"]).await;
    let pid = plugin.child.id().expect("plugin pid");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        line.split_whitespace().skip(3).take(2).collect::<Vec<_>>(),
        ["4096", "4096"],
        "{line}"
    );
    let (id, r) = run_to_exit(
        &plugin,
        alloc.task_unveiling(
            "nofile",
            "sh",
            &["-c", "ulimit -Sn; ulimit -Hn"],
            "stdio rpath exec",
            SHELL_TOOLS,
        ),
    )
    .await;
    let out = alloc.out("nofile");
    assert_eq!(r.exit_code, 0, "{out}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["512", "4096"]);
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}

/// The pids in `cg` running `sleep 1000`.
fn sleepers(cg: &Path) -> Vec<i32> {
    std::fs::read_to_string(cg.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|pid: &i32| {
            std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
                == b"sleep\x001000\x00"
        })
        .collect()
}

#[tokio::test]
async fn a_start_retried_after_a_plugin_crash_runs_the_task_once() {
    require_host!();
    let alloc = Alloc::new("lifecycle");
    let name = format!("retried{:08x}", rand_u32());
    let cfg = alloc.task(&name, "sleep", &["1000"], "stdio");
    let cg = tasks::cgroup2_mount()
        .unwrap()
        .join(format!("nomad-pledge.slice/alloc1.{name}.scope"));
    // The first plugin starts the task and dies; Nomad never got the handle (as when the
    // crash hits before StartTask answers), so it retries StartTask with the same config.
    let plugin1 = plugin(&alloc).await;
    start(&plugin1, cfg.clone()).await;
    eventually("the first attempt runs", || sleepers(&cg).len() == 1).await;
    let first = sleepers(&cg);
    let mut child = plugin1.child;
    child.kill().await.unwrap();
    child.wait().await.unwrap();

    let plugin2 = plugin(&alloc).await;
    let h = start(&plugin2, cfg.clone()).await;
    let id = h.config.unwrap().id;
    eventually("the retry runs", || sleepers(&cg).len() == 1).await;
    let now = sleepers(&cg);
    assert_ne!(
        now, first,
        "the first attempt's task was killed, a new one runs"
    );
    assert!(!Path::new(&format!("/proc/{}", first[0])).exists());
    stop(&plugin2, &id, "SIGKILL", Duration::from_secs(1)).await;
    wait(&plugin2, &id).await;
    destroy(&plugin2, &id).await;
    plugin2.shutdown().await;
}

#[tokio::test]
async fn a_task_restarted_in_its_killed_scope_runs() {
    require_host!();
    let alloc = Alloc::new("lifecycle");
    // Nomad's scope for the task, kept across restarts of the task.
    let scope = tasks::cgroup2_mount()
        .unwrap()
        .join(format!("pledge-test-{:08x}.scope", rand_u32()));
    std::fs::create_dir(&scope).unwrap();
    let in_scope = |name: &str, args: &[&str]| {
        let mut cfg = alloc.task(name, "sleep", args, "stdio");
        cfg.resources = Some(common::pb::drivers::Resources {
            linux_resources: Some(common::pb::drivers::LinuxResources {
                cpuset_cgroup: scope.display().to_string(),
                ..Default::default()
            }),
            ..Default::default()
        });
        cfg
    };
    let plugin = plugin(&alloc).await;
    // The first run is killed (forced destroy kills the whole cgroup) ...
    let h = start(&plugin, in_scope("first", &["1000"])).await;
    destroy(&plugin, &h.config.unwrap().id).await;
    // ... and the restart in the same scope must run, not die at birth.
    let (id, r) = run_to_exit(&plugin, in_scope("again", &["0.2"])).await;
    assert_eq!(
        (r.exit_code, r.signal),
        (0, 0),
        "the restarted task was killed"
    );
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
    std::fs::remove_dir(&scope).unwrap();
}

#[tokio::test]
async fn destroy_cleans_up_tasks_a_restarted_plugin_never_recovered() {
    require_host!();
    let alloc = Alloc::new("lifecycle");
    let (done, left) = (
        format!("done{:08x}", rand_u32()),
        format!("left{:08x}", rand_u32()),
    );
    let scope = |name: &str| {
        tasks::cgroup2_mount()
            .unwrap()
            .join(format!("nomad-pledge.slice/alloc1.{name}.scope"))
    };
    let states = || {
        std::fs::read_dir(alloc.state.path().join("tasks"))
            .unwrap()
            .count()
    };
    let plugin1 = plugin(&alloc).await;
    let done_id = start(&plugin1, alloc.task(&done, "sleep", &["0"], "stdio"))
        .await
        .config
        .unwrap()
        .id;
    let left_id = start(&plugin1, alloc.task(&left, "sleep", &["1000"], "stdio"))
        .await
        .config
        .unwrap()
        .id;
    assert_eq!(wait(&plugin1, &done_id).await.exit_code, 0);
    // Nomad saw the first task end, then the plugin died before DestroyTask; the relaunched
    // plugin is never asked to recover either task, only to destroy them.
    let mut child = plugin1.child;
    child.kill().await.unwrap();
    child.wait().await.unwrap();
    assert_eq!(states(), 2);
    assert!(scope(&done).is_dir() && scope(&left).is_dir());

    let plugin2 = plugin(&alloc).await;
    destroy(&plugin2, &done_id).await;
    assert!(!scope(&done).exists(), "the ended task's scope is removed");
    assert_eq!(states(), 1, "the ended task's state is removed");

    // Still running: refused without force, killed and cleaned up with it.
    let err = plugin2
        .driver()
        .destroy_task(common::pb::drivers::DestroyTaskRequest {
            task_id: left_id.clone(),
            force: false,
        })
        .await
        .expect_err("DestroyTask without force of a running task");
    assert!(err.message().contains("running"), "{}", err.message());
    destroy(&plugin2, &left_id).await;
    assert!(
        !scope(&left).exists(),
        "the running task was killed, its scope removed"
    );
    assert_eq!(states(), 0);
    plugin2.shutdown().await;
}

#[tokio::test]
async fn unix_promise_gets_a_task_event_where_unix_sockets_are_unmediated() {
    require_host!();
    let abi = std::process::Command::new(env!("CARGO_BIN_EXE_nomad-pledge-driver"))
        .args(["pledge", "-T", "unveil"])
        .output()
        .ok()
        .and_then(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.lines().next()?.rsplit(' ').next()?.parse::<i32>().ok()
        })
        .unwrap_or(0);
    if abi >= 9 {
        eprintln!("SKIP: landlock ABI {abi} mediates pathname unix sockets (no notice expected)");
        return;
    }
    let alloc = Alloc::new("lifecycle");
    let plugin = plugin(&alloc).await;
    let mut events = plugin
        .driver()
        .task_events(common::pb::drivers::TaskEventsRequest {})
        .await
        .expect("TaskEvents")
        .into_inner();
    let (_, exit) = run_to_exit(&plugin, alloc.task("sock", "true", &[], "stdio rpath unix")).await;
    assert_eq!(exit.exit_code, 0);
    event_containing(&mut events, "pathname unix sockets is not restricted").await;
    plugin.shutdown().await;
}
