//! End-to-end tests of the executor as root on the real cgroup2 mount, with a test launcher that
//! drops pledge's flags (`... -- command args`) and execs the command. They skip with a printed
//! reason without root, cgroup2, or the built binary.

use super::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

/// `promises` and `r:/`, applied by `launcher`.
fn test_policy(promises: &str, launcher: crate::policy::Launcher) -> crate::policy::Policy {
    crate::policy::Policy::new(
        promises.parse().unwrap(),
        vec!["r:/".parse().unwrap()],
        launcher,
    )
    .unwrap()
}

struct Env {
    dir: tempfile::TempDir,
    exe: PathBuf,
    root: PathBuf,
}

const LAUNCHER: &str = "#!/bin/sh\n# test launcher: drop pledge flags up to `--`, then exec the command\nwhile [ $# -gt 0 ]; do a=$1; shift; [ \"$a\" = -- ] && break; done\nexec \"$@\"\n";

fn setup() -> Option<Env> {
    use crate::host_features::skip_unless;
    if skip_unless("root", user::is_root(), "executor tests need root") {
        return None;
    }
    let root = cgroup::host_cgroup_root();
    if skip_unless("cgroup2", root.is_ok(), "no cgroup2 mount") {
        return None;
    }
    let root = root.ok()?;
    let usable = root.join("cgroup.kill").exists() || root.join("cgroup.procs").exists();
    let reason = format!("cgroup2 at {} is not usable", root.display());
    if skip_unless("cgroup2", usable, &reason) {
        return None;
    }
    // The unit-test binary lives in target/<profile>/deps; the real binary one level up (cargo
    // builds it for `cargo test --all-targets` because tests/ has integration tests).
    let exe = std::env::current_exe()
        .ok()?
        .parent()?
        .parent()?
        .join("nomad-pledge-driver");
    let reason = format!(
        "{} is not built (run `cargo build` or `cargo test --all-targets`)",
        exe.display()
    );
    if crate::host_features::skip_unless("binary", exe.is_file(), &reason) {
        return None;
    }
    // Past the feature checks a failure is a failure, not a silent skip.
    let dir = tempfile::tempdir().expect("temporary directory");
    let mode = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    mode(dir.path(), 0o755);
    let launcher = dir.path().join("launcher");
    fs::write(&launcher, LAUNCHER).unwrap();
    mode(&launcher, 0o755);
    let task = dir.path().join("task");
    fs::create_dir(&task).unwrap();
    mode(&task, 0o777);
    Some(Env { dir, exe, root })
}

impl Env {
    fn executor(&self) -> Executor {
        Executor::new(ExecutorConfig {
            state_dir: self.dir.path().join("state"),
            cgroup_root: Some(self.root.clone()),
            self_exe: self.exe.clone(),
            allow_root: false,
            default_user: "nobody".into(),
        })
        .unwrap()
    }

    fn spec(&self, name: &str, command: &str, args: &[&str]) -> TaskSpec {
        let out = self.dir.path().join(format!("{name}.stdout"));
        let err = self.dir.path().join(format!("{name}.stderr"));
        fs::write(&out, "").unwrap();
        fs::write(&err, "").unwrap();
        let alloc = format!("test-{}-{}", std::process::id(), name);
        TaskSpec {
            id: format!("{alloc}/{name}/0000abcd"),
            alloc_id: alloc,
            task_name: name.into(),
            policy: test_policy(
                "stdio rpath proc",
                crate::policy::Launcher::External(self.dir.path().join("launcher")),
            ),
            command: command.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::from([("A".to_string(), "1".to_string())]),
            task_dir: self.dir.path().join("task"),
            stdout_path: out,
            stderr_path: err,
            ..Default::default()
        }
    }

    fn sh(&self, name: &str, script: &str) -> TaskSpec {
        self.spec(name, "/bin/sh", &["-c", script])
    }

    fn stdout(&self, name: &str) -> String {
        fs::read_to_string(self.dir.path().join(format!("{name}.stdout"))).unwrap()
    }

    /// Waits (generously; not a timing assertion) until the task printed `needle`.
    async fn until_printed(&self, name: &str, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.stdout(name).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "task {name} never printed {needle:?}: {:?}",
                self.stdout(name)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The supervisor is gone; a zombie whose parent is someone else (init reaps orphans lazily on
/// some hosts) counts as gone.
fn supervisor_gone(pid: i32, start_time: u64) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let after = &stat[stat.rfind(')').map(|i| i + 1).unwrap_or(0)..];
    state::proc_start_time(pid) != Some(start_time) || after.split_whitespace().next() == Some("Z")
}

/// Nothing is left behind: no cgroup, no state files, no supervisor.
fn assert_clean(state: &RecoveryState) {
    assert!(
        !state.cgroup.path.exists(),
        "cgroup {} leaked",
        state.cgroup.path.display()
    );
    assert!(
        !state.state_path.exists(),
        "state {} leaked",
        state.state_path.display()
    );
    assert!(
        supervisor_gone(state.pid, state.start_time),
        "supervisor {} still exists",
        state.pid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_signal_deaths() {
    let Some(env) = setup() else { return };
    let ex = env.executor();
    let st = ex.start(env.sh("exit3", "exit 3")).await.unwrap();
    let id = &st.spec.id;
    let (a, b) = tokio::join!(ex.wait(id), ex.wait(id));
    assert_eq!(a.unwrap().exit_code, 3);
    assert_eq!(b.unwrap().exit_code, 3);
    let again = ex.wait(id).await.unwrap();
    assert_eq!((again.exit_code, again.signal, again.err), (3, 0, None));
    assert_eq!(ex.inspect(id).unwrap().state, TaskState::Exited);
    ex.destroy(id, false).await.unwrap();
    assert_clean(&st);
    assert!(matches!(ex.wait(id).await, Err(ExecError::NotFound(_))));

    let st = ex.start(env.sh("killed", "kill -TERM $$")).await.unwrap();
    let e = ex.wait(&st.spec.id).await.unwrap();
    assert_eq!((e.exit_code, e.signal), (143, 15));
    ex.destroy(&st.spec.id, true).await.unwrap();
    assert_clean(&st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_honoured_and_ignored_sigterm() {
    let Some(env) = setup() else { return };
    let ex = env.executor();
    let st = ex
        .start(env.sh(
            "polite",
            "trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done",
        ))
        .await
        .unwrap();
    env.until_printed("polite", "ready").await;
    ex.stop(&st.spec.id, "sigterm", Duration::from_secs(60))
        .await
        .unwrap();
    let e = ex.wait(&st.spec.id).await.unwrap();
    assert_eq!((e.exit_code, e.signal, e.err), (7, 0, None));
    ex.destroy(&st.spec.id, false).await.unwrap();
    assert_clean(&st);

    // Ignores SIGTERM and leaves a background child: both die when the cgroup is killed.
    let st = ex
        .start(env.sh(
            "rude",
            "trap '' TERM; (sleep 1000 &); echo ready; while :; do sleep 0.05; done",
        ))
        .await
        .unwrap();
    env.until_printed("rude", "ready").await;
    let pids = cgroup::procs(&st.cgroup.path);
    assert!(
        pids.len() >= 3,
        "supervisor, sh and sleep expected in the cgroup: {pids:?}"
    );
    ex.stop(&st.spec.id, "TERM", Duration::from_millis(300))
        .await
        .unwrap();
    let e = ex.wait(&st.spec.id).await.unwrap();
    assert_eq!((e.exit_code, e.signal, e.err), (137, 9, None));
    assert!(cgroup::procs(&st.cgroup.path).is_empty());
    ex.destroy(&st.spec.id, false).await.unwrap();
    assert_clean(&st);
    // Stop of an unknown or destroyed task is OK (Nomad retries errors).
    ex.stop(&st.spec.id, "", Duration::from_secs(1))
        .await
        .unwrap();
}

/// `mnt:[inode]` of a process's mount namespace.
fn mount_ns_of(pid: i32) -> String {
    fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .unwrap()
        .display()
        .to_string()
}

/// Whether this process (the plugin, in these tests) has a descriptor open on namespace `ns`.
fn holds_namespace(ns: &str) -> bool {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .any(|e| fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == std::ffi::OsStr::new(ns)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_ends_everything_before_wait_returns_and_releases_the_mount_namespace() {
    let Some(env) = setup() else { return };
    let ex = env.executor();
    // A background child the supervisor inherits, and the command `exec sleep` (as in the bench).
    let st = ex
        .start(env.sh("graceful", "(sleep 1000 &); echo ready; exec sleep 3600"))
        .await
        .unwrap();
    env.until_printed("graceful", "ready").await;
    let ns = mount_ns_of(st.pid);
    assert_ne!(
        ns,
        mount_ns_of(std::process::id() as i32),
        "no mount namespace of its own"
    );
    // The executor holds the task's mount namespace while it runs, so that the namespace's
    // teardown is not part of the supervisor's exit (and of the stop's latency).
    assert!(
        holds_namespace(&ns),
        "the executor holds no descriptor of {ns}"
    );
    let wait = ex.wait(&st.spec.id);
    let (stopped, e) = tokio::join!(
        ex.stop(&st.spec.id, "SIGTERM", Duration::from_secs(60)),
        wait
    );
    stopped.unwrap();
    let e = e.unwrap();
    assert_eq!((e.exit_code, e.signal, e.err), (143, 15, None));
    // Nothing of the task runs once WaitTask has its answer: not the command, not the
    // background child, not the supervisor.
    let left = cgroup::procs(&st.cgroup.path);
    assert!(
        left.is_empty(),
        "processes left in the task's cgroup: {left:?}"
    );
    assert!(
        supervisor_gone(st.pid, st.start_time),
        "supervisor {} still exists",
        st.pid
    );
    // The namespace is released after the exit was published (not held until DestroyTask).
    let deadline = Instant::now() + Duration::from_secs(60);
    while holds_namespace(&ns) {
        assert!(
            Instant::now() < deadline,
            "{ns} is still held after the task exited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ex.destroy(&st.spec.id, false).await.unwrap();
    assert_clean(&st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_killed_before_its_record_leaves_a_status_a_new_plugin_recovers() {
    let Some(env) = setup() else { return };
    let first = env.executor();
    let st = first
        .start(env.sh("sigkilled", "echo ready; exec sleep 3600"))
        .await
        .unwrap();
    env.until_printed("sigkilled", "ready").await;
    // From outside (an operator, the OOM killer): no exit record of the supervisor's own.
    let fd = sys::pidfd_open(st.pid).unwrap();
    sys::pidfd_send_signal(&fd, libc::SIGKILL).unwrap();
    let e = first.wait(&st.spec.id).await.unwrap();
    assert_eq!((e.exit_code, e.signal), (137, 9));
    assert!(e.err.is_some(), "no reason given: {e:?}");
    // The status the first plugin found is recorded for a successor.
    drop(first);
    let second = env.executor();
    second.recover(st.clone()).await.unwrap();
    assert_eq!(second.wait(&st.spec.id).await.unwrap(), e);
    second.destroy(&st.spec.id, false).await.unwrap();
    assert_clean(&st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_reach_the_command() {
    let Some(env) = setup() else { return };
    let ex = env.executor();
    let st = ex
        .start(env.sh(
            "sig",
            "trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.05; done",
        ))
        .await
        .unwrap();
    env.until_printed("sig", "ready").await;
    ex.signal(&st.spec.id, "usr1").await.unwrap();
    env.until_printed("sig", "got-usr1").await;
    assert!(matches!(
        ex.signal(&st.spec.id, "SIGFOO").await,
        Err(ExecError::Signal(_))
    ));
    assert!(matches!(
        ex.signal("nope", "TERM").await,
        Err(ExecError::NotFound(_))
    ));
    assert!(matches!(
        ex.destroy(&st.spec.id, false).await,
        Err(ExecError::Running(_))
    ));
    ex.destroy(&st.spec.id, true).await.unwrap();
    assert_clean(&st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_namespaces_cgroup_and_env() {
    let Some(env) = setup() else { return };
    let ex = env.executor();
    let script = "id -u; id -g; echo pid=$$; echo procs $(ls /proc | grep -E '^[0-9]+$'); \
                  grep '^0::' /proc/self/cgroup; pwd; cat /proc/self/oom_score_adj; \
                  id -G; cut -d' ' -f19 /proc/self/stat";
    let mut events = ex.subscribe_events();
    let mut spec = env.sh("who", script);
    spec.importance = Importance::Low;
    spec.resources.memory_mb = 64;
    let st = ex.start(spec).await.unwrap();
    let e = ex.wait(&st.spec.id).await.unwrap();
    assert_eq!(e.exit_code, 0, "{e:?} {}", env.stdout("who"));
    let out = env.stdout("who");
    let lines: Vec<&str> = out.lines().collect();
    let nobody = user::resolve_user("nobody", "nobody", false).unwrap();
    assert_eq!(lines[0], nobody.uid.to_string());
    assert_eq!(lines[1], nobody.gid.to_string());
    assert_eq!(
        lines[2], "pid=2",
        "the command is PID 2, the supervisor PID 1"
    );
    let procs: Vec<u32> = lines[3]
        .trim_start_matches("procs")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(
        procs.contains(&1) && procs.iter().all(|p| *p < 20),
        "{procs:?}"
    );
    let rel = st.cgroup.path.strip_prefix(&env.root).unwrap();
    assert_eq!(lines[4], format!("0::/{}", rel.display()));
    assert_eq!(lines[5], env.dir.path().join("task").display().to_string());
    assert_eq!(lines[6], "0");
    let groups: Vec<String> = nobody.groups.iter().map(|g| g.to_string()).collect();
    assert_eq!(lines[7], groups.join(" "));
    assert_eq!(lines[8], "10", "importance low → nice 10");
    // Missing controllers are reported, never silently skipped.
    let controllers = std::fs::read_to_string(env.root.join("cgroup.controllers")).unwrap();
    if !controllers.split_whitespace().any(|c| c == "memory") {
        let ev = events
            .try_recv()
            .expect("an event naming the missing memory controller");
        assert!(ev.message.contains("memory"), "{ev:?}");
        assert_eq!(
            (ev.task_id.as_str(), ev.task_name.as_str()),
            (st.spec.id.as_str(), "who")
        );
    }
    ex.destroy(&st.spec.id, true).await.unwrap();
    assert_clean(&st);

    // The environment is exactly TaskSpec.env plus USER and HOME.
    let st = ex
        .start(env.spec("env", "/usr/bin/env", &[]))
        .await
        .unwrap();
    assert_eq!(ex.wait(&st.spec.id).await.unwrap().exit_code, 0);
    let mut got: Vec<String> = env.stdout("env").lines().map(str::to_string).collect();
    got.retain(|l| !l.starts_with("PWD=")); // added by the /bin/sh test launcher
    got.sort();
    assert_eq!(
        got,
        ["A=1", &format!("HOME={}", nobody.home), "USER=nobody"]
    );
    ex.destroy(&st.spec.id, true).await.unwrap();
    assert_clean(&st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_running_task_in_a_new_executor() {
    let Some(env) = setup() else { return };
    let first = env.executor();
    let st = first
        .start(env.sh(
            "rec",
            "trap 'exit 9' TERM; echo ready; while :; do sleep 0.05; done",
        ))
        .await
        .unwrap();
    env.until_printed("rec", "ready").await;
    // The supervisor is in its own session, outside the plugin's, so it outlives the plugin.
    let sid = nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(st.pid))).unwrap();
    assert_eq!(sid.as_raw(), st.pid);
    assert!(
        !st.state_path.join("plan.json").exists(),
        "plan (with env) left on disk"
    );
    let bytes = st.to_bytes();
    drop(first);

    let second = env.executor();
    let state = RecoveryState::from_bytes(&bytes).unwrap();
    second.recover(state.clone()).await.unwrap();
    second.recover(state.clone()).await.unwrap(); // already known → no-op
    assert_eq!(
        second.inspect(&st.spec.id).unwrap().state,
        TaskState::Running
    );
    second
        .stop(&st.spec.id, "SIGTERM", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(second.wait(&st.spec.id).await.unwrap().exit_code, 9);
    second.destroy(&st.spec.id, false).await.unwrap();
    assert_clean(&st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_task_that_exited_while_no_plugin_ran() {
    let Some(env) = setup() else { return };
    let go = env.dir.path().join("task/go");
    let first = env.executor();
    let st = first
        .start(env.sh(
            "gone",
            &format!(
                "while [ ! -e {} ]; do sleep 0.05; done; exit 42",
                go.display()
            ),
        ))
        .await
        .unwrap();
    drop(first);
    fs::write(&go, "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !st.state_path.join(state::EXIT_FILE).exists() {
        assert!(
            Instant::now() < deadline,
            "the supervisor never recorded the exit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let second = env.executor();
    second.recover(st.clone()).await.unwrap();
    let e = second.wait(&st.spec.id).await.unwrap();
    assert_eq!((e.exit_code, e.signal), (42, 0));
    assert_eq!(
        second.inspect(&st.spec.id).unwrap().state,
        TaskState::Exited
    );
    second.destroy(&st.spec.id, true).await.unwrap();
    assert_clean(&st);

    // Gone without a record, or a foreign state path → errors.
    let third = env.executor();
    let r = third.recover(st.clone()).await;
    assert!(matches!(r, Err(ExecError::Gone { .. })), "{r:?}");
    let mut foreign = st.clone();
    foreign.state_path = "/etc".into();
    assert!(matches!(
        third.recover(foreign).await,
        Err(ExecError::BadState { .. })
    ));
    for cg in [
        env.root.clone(),
        env.root.join(cgroup::OWN_SLICE),
        env.root.join("nomad-pledge.slice/../x.scope"),
    ] {
        let mut hostile = st.clone();
        hostile.cgroup.path = cg;
        let r = third.recover(hostile).await;
        assert!(matches!(r, Err(ExecError::BadState { .. })), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_are_sane() {
    let Some(env) = setup() else { return };
    let ex = env.executor();
    let st = ex
        .start(env.sh("busy", "echo ready; while :; do :; done"))
        .await
        .unwrap();
    env.until_printed("busy", "ready").await;
    let a = ex.stats(&st.spec.id).await.unwrap();
    let b = ex.stats(&st.spec.id).await.unwrap();
    for s in [&a, &b] {
        assert!(s.pids >= 2, "{s:?}");
        assert!(s.cpu.percent.is_finite() && s.cpu.percent >= 0.0, "{s:?}");
        assert!(s.cpu.measured.contains(&"Percent"));
        assert!(!s.memory.measured.is_empty());
        assert!(s.memory.rss > 0 || s.memory.usage > 0, "{s:?}");
    }
    assert!(b.cpu.usage_usec >= a.cpu.usage_usec);
    ex.stop(&st.spec.id, "", Duration::ZERO).await.unwrap();
    assert_eq!(ex.wait(&st.spec.id).await.unwrap().signal, 9);
    ex.destroy(&st.spec.id, false).await.unwrap();
    assert_clean(&st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_an_error_and_leaks_nothing() {
    let Some(env) = setup() else { return };
    let ex = env.executor();
    let mut spec = env.sh("baduser", "true");
    spec.user = "no-such-user-xyz".into();
    let e = ex.start(spec.clone()).await.unwrap_err();
    assert!(e.to_string().contains("`user`"), "{e}");
    spec.user = "root".into();
    assert!(ex
        .start(spec.clone())
        .await
        .unwrap_err()
        .to_string()
        .contains("allow_root"));
    assert!(!env
        .root
        .join(cgroup::OWN_SLICE)
        .join(format!("{}.baduser.scope", spec.alloc_id))
        .exists());
    assert!(matches!(
        ex.stop("nope", "SIGNOPE", Duration::ZERO).await,
        Err(ExecError::Signal(_))
    ));
    ex.stop("nope", "TERM", Duration::ZERO).await.unwrap();
    ex.destroy("nope", true).await.unwrap();

    // A launcher that cannot be executed is reported through wait().
    let mut spec = env.sh("noexec", "true");
    spec.policy = test_policy(
        "stdio",
        crate::policy::Launcher::External("/nonexistent/pledge.com".into()),
    );
    let st = ex.start(spec).await.unwrap();
    let e = ex.wait(&st.spec.id).await.unwrap();
    assert!(
        e.err
            .as_deref()
            .unwrap_or("")
            .contains("/nonexistent/pledge.com"),
        "{e:?}"
    );
    assert_ne!(e.exit_code, 0);
    ex.destroy(&st.spec.id, true).await.unwrap();
    assert_clean(&st);

    // A symlinked stdout is refused (O_NOFOLLOW).
    let mut spec = env.sh("link", "true");
    let link = env.dir.path().join("link.out");
    std::os::unix::fs::symlink(&spec.stdout_path, &link).unwrap();
    spec.stdout_path = link;
    let e = ex.start(spec.clone()).await.unwrap_err();
    assert!(e.to_string().contains("stdout_path"), "{e}");
    assert!(!env
        .root
        .join(cgroup::OWN_SLICE)
        .join(format!("{}.link.scope", spec.alloc_id))
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_fifos_carry_stdout_and_stderr() {
    let Some(env) = setup() else { return };
    let ex = env.executor();
    let mut spec = env.sh("fifo", "echo hello; echo oops >&2");
    for p in [&spec.stdout_path, &spec.stderr_path] {
        fs::remove_file(p).unwrap();
        nix::unistd::mkfifo(p.as_path(), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }
    let readers: Vec<_> = [spec.stdout_path.clone(), spec.stderr_path.clone()]
        .into_iter()
        .map(|p| std::thread::spawn(move || fs::read_to_string(p).unwrap()))
        .collect();
    spec.id.push('f');
    let st = ex.start(spec).await.unwrap();
    assert_eq!(ex.wait(&st.spec.id).await.unwrap().exit_code, 0);
    let outs: Vec<String> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(outs, ["hello\n", "oops\n"]);
    ex.destroy(&st.spec.id, true).await.unwrap();
    assert_clean(&st);
}

const HELPER_ENV: &str = "NPD_EXECUTOR_PLUGIN_HELPER_DIR";

/// Stands in for a plugin process in `tasks_survive_a_sigkilled_plugin`: starts the task in
/// `$NPD_EXECUTOR_PLUGIN_HELPER_DIR/spec.json`, writes the recovery state, then hangs.
#[test]
#[ignore = "helper process, run by tasks_survive_a_sigkilled_plugin"]
fn plugin_helper_process() {
    let Ok(dir) = std::env::var(HELPER_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let spec: TaskSpec = serde_json::from_slice(&fs::read(dir.join("spec.json")).unwrap()).unwrap();
    let exe = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("nomad-pledge-driver");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ex = Executor::new(ExecutorConfig {
            state_dir: dir.join("state"),
            cgroup_root: Some(cgroup::host_cgroup_root().unwrap()),
            self_exe: exe,
            allow_root: false,
            default_user: "nobody".into(),
        })
        .unwrap();
        let st = ex.start(spec).await.unwrap();
        state::write_atomic(&dir, "recovery.json", &st.to_bytes()).unwrap();
        std::future::pending::<()>().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_survive_a_sigkilled_plugin() {
    let Some(env) = setup() else { return };
    let spec = env.sh(
        "orphan",
        "trap 'exit 5' TERM; echo ready; while :; do sleep 0.05; done",
    );
    fs::write(
        env.dir.path().join("spec.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    let mut plugin = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "executor::tests::plugin_helper_process",
            "--ignored",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, env.dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let rec = env.dir.path().join("recovery.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !rec.exists() {
        assert!(
            Instant::now() < deadline,
            "helper plugin never started the task"
        );
        assert!(plugin.try_wait().unwrap().is_none(), "helper plugin died");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    env.until_printed("orphan", "ready").await;
    plugin.kill().unwrap(); // SIGKILL
    plugin.wait().unwrap();

    let st = RecoveryState::from_bytes(&fs::read(&rec).unwrap()).unwrap();
    assert_eq!(
        state::proc_start_time(st.pid),
        Some(st.start_time),
        "supervisor died with the plugin"
    );
    let ex = env.executor();
    ex.recover(st.clone()).await.unwrap();
    assert_eq!(ex.inspect(&st.spec.id).unwrap().state, TaskState::Running);
    ex.stop(&st.spec.id, "TERM", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(ex.wait(&st.spec.id).await.unwrap().exit_code, 5);
    ex.destroy(&st.spec.id, true).await.unwrap();
    assert_clean(&st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_joins_the_network_namespace() {
    let Some(env) = setup() else { return };
    let name = format!("npd-test-{}", std::process::id());
    let ok = std::process::Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if crate::host_features::skip_unless("netns", ok, "`ip netns add` is not available") {
        return;
    }
    let ex = env.executor();
    let mut spec = env.sh("netns", "cat /proc/net/dev");
    spec.netns_path = Some(PathBuf::from(format!("/var/run/netns/{name}")));
    let st = ex.start(spec).await;
    let e = match &st {
        Ok(st) => Some(ex.wait(&st.spec.id).await),
        Err(_) => None,
    };
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", &name])
        .status();
    let st = st.unwrap();
    let e = e.unwrap().unwrap();
    assert_eq!(e.exit_code, 0, "{e:?}");
    let out = env.stdout("netns");
    let ifaces: Vec<&str> = out
        .lines()
        .skip(2)
        .map(|l| l.split(':').next().unwrap().trim())
        .collect();
    assert_eq!(ifaces, ["lo"], "{out}");
    ex.destroy(&st.spec.id, true).await.unwrap();
    assert_clean(&st);
}

/// The supervisor knows from the task's policy that the launcher is the built-in one, and hands
/// it the report pipe, even when the executor's path to the binary is not the supervisor's own
/// `/proc/self/exe` (a symlink here; a binary replaced by an upgrade does the same): guessing
/// the kind by comparing argv[0] with that path took the built-in launcher for pledge.com, and
/// its failure reached WaitTask with no message (`err: None`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_launcher_failures_are_reported_through_a_symlinked_self_exe() {
    let Some(env) = setup() else { return };
    let link = env.dir.path().join("npd-link");
    std::os::unix::fs::symlink(&env.exe, &link).unwrap();
    let ex = Executor::new(ExecutorConfig {
        self_exe: link,
        ..env.executor().cfg.clone()
    })
    .unwrap();
    // An executable the kernel cannot run: StartTask's command check passes (a missing program
    // is refused there), the launcher's execve fails inside the sandbox and reports it.
    let junk = env.dir.path().join("task").join("prog-xyz");
    std::fs::create_dir_all(junk.parent().unwrap()).unwrap();
    std::fs::write(&junk, "not a program\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut spec = env.spec("reported", junk.to_str().unwrap(), &[]);
    spec.policy = test_policy("stdio rpath", crate::policy::Launcher::default());
    let st = ex.start(spec).await.unwrap();
    let e = ex.wait(&st.spec.id).await.unwrap();
    assert_ne!(e.exit_code, 0, "{e:?}");
    let err = e.err.as_deref().unwrap_or_default();
    assert!(
        err.contains("the sandbox could not start the task") && err.contains("prog-xyz"),
        "{e:?}"
    );
    ex.destroy(&st.spec.id, true).await.unwrap();
    assert_clean(&st);
}

/// With the real launcher (`self_exe pledge`, or `$NPD_PLEDGE_LAUNCHER`): the argv the executor
/// builds is accepted and the task runs sandboxed. Skips while the launcher is not built in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_pledge_launcher_runs_the_task() {
    let Some(env) = setup() else { return };
    use crate::policy::{Launcher, Policy};
    let launcher = match std::env::var_os("NPD_PLEDGE_LAUNCHER") {
        Some(l) => Launcher::External(l.into()),
        None => Launcher::default(),
    };
    let policy = Policy::new(
        "stdio rpath".parse().unwrap(),
        vec!["r:/etc".parse().unwrap()],
        launcher,
    )
    .unwrap();
    let probe_argv = policy.launcher_argv(&env.exe, "/bin/true", &[]);
    let probe = std::process::Command::new(&probe_argv[0])
        .args(&probe_argv[1..])
        .output();
    let ok = probe.map(|o| o.status.success()).unwrap_or(false);
    let reason = format!("the pledge launcher {probe_argv:?} cannot run /bin/true sandboxed");
    if crate::host_features::skip_unless("seccomp", ok, &reason) {
        return;
    }
    let ex = env.executor();
    let mut spec = env.spec("real", "/bin/cat", &["/etc/hostname"]);
    spec.policy = policy.clone();
    let st = ex.start(spec).await.unwrap();
    let e = ex.wait(&st.spec.id).await.unwrap();
    let stderr = fs::read_to_string(env.dir.path().join("real.stderr")).unwrap();
    assert_eq!(e.exit_code, 0, "{e:?} stderr: {stderr}");
    assert_eq!(
        env.stdout("real"),
        fs::read_to_string("/etc/hostname").unwrap()
    );
    ex.destroy(&st.spec.id, true).await.unwrap();
    assert_clean(&st);

    // A readable file outside the unveil list is hidden from the task.
    let secret = env.dir.path().join("secret");
    fs::write(&secret, "s3cret").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
    let mut spec = env.spec("veiled", "/bin/cat", &[secret.to_str().unwrap()]);
    spec.policy = policy;
    let st = ex.start(spec).await.unwrap();
    let e = ex.wait(&st.spec.id).await.unwrap();
    assert_ne!(e.exit_code, 0, "{e:?}");
    assert!(!env.stdout("veiled").contains("s3cret"));
    ex.destroy(&st.spec.id, true).await.unwrap();
    assert_clean(&st);
}

/// The gRPC handlers run these futures on a multi-threaded runtime: they must be `Send`, and the
/// executor shareable. (Compile-time check.)
#[test]
fn executor_futures_are_send_and_executor_is_sync() {
    fn is_send<T: Send>(_: &T) {}
    fn is_sync<T: Sync + Send>() {}
    is_sync::<Executor>();
    #[allow(dead_code)]
    fn check(ex: &'static Executor, st: RecoveryState) {
        is_send(&ex.start(TaskSpec::default()));
        is_send(&ex.recover(st));
        is_send(&ex.wait(""));
        is_send(&ex.stop("", "", Duration::ZERO));
        is_send(&ex.signal("", ""));
        is_send(&ex.destroy("", true));
        is_send(&ex.stats(""));
    }
}

#[test]
fn oom_kill_growth_is_detected_from_memory_events() {
    let d = tempfile::tempdir().unwrap();
    let mut st = RecoveryState {
        version: state::STATE_VERSION,
        pid: 0,
        start_time: 0,
        cgroup: cgroup::TaskCgroup {
            path: d.path().to_path_buf(),
            created: true,
        },
        state_path: d.path().to_path_buf(),
        oom_kills_before: Some(1),
        started_at_ms: 0,
        spec: TaskSpec::default(),
    };
    assert!(!oom_grew(&st), "no memory controller → not OOM");
    fs::write(d.path().join("memory.events"), "oom 1\noom_kill 1\n").unwrap();
    assert!(!oom_grew(&st));
    fs::write(d.path().join("memory.events"), "oom 2\noom_kill 2\n").unwrap();
    assert!(oom_grew(&st));
    st.oom_kills_before = None;
    assert!(oom_grew(&st));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ulimits_and_oom_score_adj_reach_the_task() {
    let Some(env) = setup() else { return };
    let ex = env.executor();
    let mut spec = env.sh(
        "limits",
        "cat /proc/self/oom_score_adj; grep -E '^Max (open files|core file size|processes|cpu time)' /proc/self/limits",
    );
    spec.limits = rlimit::TaskLimits {
        ulimits: vec![
            rlimit::Ulimit::parse("nofile", "100:200").unwrap(),
            rlimit::Ulimit::parse("core", "0").unwrap(),
            rlimit::Ulimit::parse("nproc", "3000:4000").unwrap(),
            rlimit::Ulimit::parse("cpu", "50:unlimited").unwrap(),
        ],
        oom_score_adj: 345,
    };
    let st = ex.start(spec).await.unwrap();
    let e = ex.wait(&st.spec.id).await.unwrap();
    let out = env.stdout("limits");
    assert_eq!((e.exit_code, e.err), (0, None), "{out}");
    let words = |prefix: &str| -> Vec<String> {
        let line = out
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {out}"));
        line[prefix.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(out.lines().next(), Some("345"), "{out}");
    assert_eq!(words("Max open files")[..2], ["100", "200"], "{out}");
    assert_eq!(words("Max core file size")[..2], ["0", "0"], "{out}");
    assert_eq!(words("Max processes")[..2], ["3000", "4000"], "{out}");
    assert_eq!(words("Max cpu time")[..2], ["50", "unlimited"], "{out}");
    ex.destroy(&st.spec.id, false).await.unwrap();
    assert_clean(&st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_are_bind_mounted_in_the_task_only() {
    let Some(env) = setup() else { return };
    let ex = env.executor();
    let vol = tempfile::tempdir().unwrap();
    fs::set_permissions(vol.path(), fs::Permissions::from_mode(0o777)).unwrap();
    fs::write(vol.path().join("hello"), "from-volume\n").unwrap();
    let ro = env.dir.path().join("ro-source.txt");
    fs::write(&ro, "read-only-file\n").unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o666)).unwrap();
    let task_dir = env.dir.path().join("task");
    let mut spec = env.sh(
        "vols",
        "cat local/vol/hello; echo written > local/vol/new && echo wrote; cat ro.txt; \
         (echo x > ro.txt) 2>/dev/null || echo ro-refused",
    );
    spec.mounts = vec![
        mounts::BindMount {
            source: vol.path().to_path_buf(),
            target: task_dir.join("local/vol"),
            readonly: false,
            propagation: mounts::Propagation::Private,
        },
        mounts::BindMount {
            source: ro.clone(),
            target: task_dir.join("ro.txt"),
            readonly: true,
            propagation: mounts::Propagation::Private,
        },
    ];
    let st = ex.start(spec).await.unwrap();
    let e = ex.wait(&st.spec.id).await.unwrap();
    let out = env.stdout("vols");
    assert_eq!((e.exit_code, e.err), (0, None), "{out}");
    assert_eq!(
        out, "from-volume\nwrote\nread-only-file\nro-refused\n",
        "{out}"
    );
    // The write went to the volume; the mounts themselves never reached the host.
    assert_eq!(
        fs::read_to_string(vol.path().join("new")).unwrap(),
        "written\n"
    );
    assert!(task_dir.join("local/vol").is_dir());
    assert!(!task_dir.join("local/vol/hello").exists());
    assert_eq!(fs::read_to_string(task_dir.join("ro.txt")).unwrap(), "");
    assert_eq!(fs::read_to_string(&ro).unwrap(), "read-only-file\n");
    ex.destroy(&st.spec.id, false).await.unwrap();
    assert_clean(&st);

    // A symlink planted in the task directory cannot redirect a mount onto the host.
    std::os::unix::fs::symlink("/etc", task_dir.join("planted")).unwrap();
    let mut spec = env.sh("planted", "echo ran");
    spec.mounts = vec![mounts::BindMount {
        source: vol.path().to_path_buf(),
        target: task_dir.join("planted/x"),
        readonly: false,
        propagation: mounts::Propagation::Private,
    }];
    let st = ex.start(spec).await.unwrap();
    let e = ex.wait(&st.spec.id).await.unwrap();
    assert_eq!(e.exit_code, 127);
    assert!(
        e.err
            .as_deref()
            .unwrap_or("")
            .contains("leaves the task directory"),
        "{e:?}"
    );
    assert!(!Path::new("/etc/x").exists());
    ex.destroy(&st.spec.id, false).await.unwrap();
    assert_clean(&st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pid_and_ipc_host_modes_record_exits_and_recover() {
    let Some(env) = setup() else { return };
    let host_pid_ns = fs::read_link("/proc/self/ns/pid").unwrap();
    let host_ipc_ns = fs::read_link("/proc/self/ns/ipc").unwrap();
    let first = env.executor();
    let mut spec = env.sh(
        "hostns",
        "readlink /proc/self/ns/pid /proc/self/ns/ipc; (sleep 1000 &); \
         trap 'exit 9' TERM; echo ready; while :; do sleep 0.05; done",
    );
    spec.host_pid = true;
    spec.host_ipc = true;
    let st = first.start(spec).await.unwrap();
    env.until_printed("hostns", "ready").await;
    let out = env.stdout("hostns");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(host_pid_ns.to_str().unwrap()), "{out}");
    assert_eq!(lines.next(), Some(host_ipc_ns.to_str().unwrap()), "{out}");
    // The background sleep runs in the cgroup, visible from the host.
    let before = cgroup::procs(&st.cgroup.path);
    assert!(before.len() >= 3, "supervisor, sh, sleep: {before:?}");

    let bytes = st.to_bytes();
    drop(first);
    let second = env.executor();
    second
        .recover(RecoveryState::from_bytes(&bytes).unwrap())
        .await
        .unwrap();
    assert_eq!(
        second.inspect(&st.spec.id).unwrap().state,
        TaskState::Running
    );
    second
        .stop(&st.spec.id, "SIGTERM", Duration::from_secs(60))
        .await
        .unwrap();
    let e = second.wait(&st.spec.id).await.unwrap();
    assert_eq!((e.exit_code, e.err), (9, None));
    // The supervisor killed what the task left before it exited: no PID namespace does it.
    assert!(
        cgroup::procs(&st.cgroup.path).is_empty(),
        "{:?}",
        cgroup::procs(&st.cgroup.path)
    );
    second.destroy(&st.spec.id, false).await.unwrap();
    assert_clean(&st);

    // A plain exit code is recorded as well.
    let mut spec = env.sh("hostexit", "exit 4");
    spec.host_pid = true;
    let st = env.executor().start(spec).await;
    let st = st.unwrap();
    let ex = env.executor();
    ex.recover(st.clone()).await.unwrap();
    assert_eq!(ex.wait(&st.spec.id).await.unwrap().exit_code, 4);
    ex.destroy(&st.spec.id, false).await.unwrap();
    assert_clean(&st);
}

/// The executor's events land on the broadcast it was given (the driver's), as the one
/// `TaskEvent` type, timestamped: no second type and no forwarding task in between.
#[tokio::test]
async fn events_are_published_on_the_given_broadcast() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = broadcast::channel(4);
    let ex = Executor::with_events(
        ExecutorConfig {
            state_dir: dir.path().join("state"),
            cgroup_root: None,
            self_exe: PathBuf::from("/nonexistent"),
            allow_root: false,
            default_user: "nobody".into(),
        },
        tx,
    )
    .unwrap();
    let spec = TaskSpec {
        id: "t1".into(),
        alloc_id: "a1".into(),
        task_name: "web".into(),
        ..Default::default()
    };
    let before = SystemTime::now();
    ex.emit(&spec, "hello".into(), &[("k", "v".into())]);
    let e: crate::driver::TaskEvent = rx.recv().await.unwrap();
    assert_eq!(
        (
            e.task_id.as_str(),
            e.alloc_id.as_str(),
            e.task_name.as_str()
        ),
        ("t1", "a1", "web")
    );
    assert_eq!(e.message, "hello");
    assert_eq!(e.annotations.get("k").map(String::as_str), Some("v"));
    assert!(e.timestamp >= before);
}

/// The fork server is not needed by running tasks: SIGKILLed, it leaves them running (stop,
/// exit status and all), and the next start gets a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_fork_server_leaves_tasks_running_and_is_restarted() {
    let Some(env) = setup() else { return };
    let ex = env.executor();
    let a = ex
        .start(env.sh(
            "fsa",
            "trap 'exit 6' TERM; echo ready; while :; do sleep 0.05; done",
        ))
        .await
        .unwrap();
    env.until_printed("fsa", "ready").await;
    let server = ex
        .forkserver
        .pid()
        .expect("a fork server runs after a start");
    let sup_parent = |pid: i32| {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 1..];
        after
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    assert_eq!(
        sup_parent(a.pid),
        server,
        "the supervisor is the fork server's child"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ex.forkserver.pid() == Some(server) {
        assert!(Instant::now() < deadline, "fork server never died");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ex.inspect(&a.spec.id).unwrap().state, TaskState::Running);
    assert_eq!(state::proc_start_time(a.pid), Some(a.start_time));

    let b = ex
        .start(env.sh(
            "fsb",
            "trap 'exit 8' TERM; echo ready; while :; do sleep 0.05; done",
        ))
        .await
        .unwrap();
    env.until_printed("fsb", "ready").await;
    let again = ex.forkserver.pid().expect("restarted");
    assert_ne!(again, server);
    for (st, code) in [(&a, 6), (&b, 8)] {
        ex.stop(&st.spec.id, "SIGTERM", Duration::from_secs(60))
            .await
            .unwrap();
        let e = ex.wait(&st.spec.id).await.unwrap();
        assert_eq!((e.exit_code, e.err), (code, None));
        ex.destroy(&st.spec.id, false).await.unwrap();
        assert_clean(st);
    }
}

/// Neither the fork server nor a supervisor can be reached from a task: the task (as `nobody`,
/// even with `pid_mode = "host"`, where it sees their pids) cannot signal them, and both are
/// undumpable, so even a root process without CAP_SYS_PTRACE cannot trace them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_cannot_signal_or_trace_the_fork_server_or_the_supervisor() {
    let Some(env) = setup() else { return };
    if !Path::new("/usr/bin/setpriv").is_file() || !Path::new("/usr/bin/strace").is_file() {
        eprintln!("SKIP: /usr/bin/setpriv or /usr/bin/strace is missing (the ptrace probe)");
        return;
    }
    let ex = env.executor();
    let st = ex
        .start(env.sh("reach0", "echo ready; exec sleep 3600"))
        .await
        .unwrap();
    env.until_printed("reach0", "ready").await;
    let server = ex.forkserver.pid().unwrap();
    let mut spec = env.sh(
        "reach",
        "kill -0 \"$FS\" 2>/dev/null; echo fs=$?; kill -0 \"$SUP\" 2>/dev/null; echo sup=$?",
    );
    spec.host_pid = true;
    spec.env.insert("FS".into(), server.to_string());
    spec.env.insert("SUP".into(), st.pid.to_string());
    let probe = ex.start(spec).await.unwrap();
    assert_eq!(ex.wait(&probe.spec.id).await.unwrap().exit_code, 0);
    let out = env.stdout("reach");
    assert!(out.contains("fs=1") && out.contains("sup=1"), "{out}");

    for pid in [server as i32, st.pid] {
        // `timeout` only bounds a wrongly successful attach (strace would then trace forever).
        let out = std::process::Command::new("/usr/bin/timeout")
            .args(["20", "/usr/bin/setpriv", "--bounding-set=-sys_ptrace"])
            .args([
                "--inh-caps=-sys_ptrace",
                "--",
                "strace",
                "-e",
                "trace=none",
                "-p",
            ])
            .arg(pid.to_string())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("Operation not permitted"),
            "root without CAP_SYS_PTRACE attached to {pid}: {out:?}"
        );
    }
    for id in [&st.spec.id, &probe.spec.id] {
        ex.destroy(id, true).await.unwrap();
    }
    assert_clean(&st);
}

/// Both ways of taking a process's mount namespace give its own, and neither takes one of a
/// process that is gone (so a pid reused since cannot lend its namespace).
#[test]
fn mount_namespace_of_a_live_process_and_not_of_a_reaped_one() {
    let me = std::process::id() as i32;
    let fd = sys::pidfd_open(me).unwrap();
    let own = fs::read_link("/proc/self/ns/mnt").unwrap();
    let link = |ns: &OwnedFd| {
        use std::os::fd::AsRawFd;
        fs::read_link(format!("/proc/self/fd/{}", ns.as_raw_fd())).unwrap()
    };
    assert_eq!(link(&sys::mount_namespace_of(&fd, me).unwrap()), own);
    assert_eq!(link(&sys::mount_namespace_from_proc(&fd, me).unwrap()), own);

    let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
    let pid = child.id() as i32;
    let fd = sys::pidfd_open(pid).unwrap();
    child.wait().unwrap();
    assert!(sys::mount_namespace_of(&fd, pid).is_err());
    assert!(sys::mount_namespace_from_proc(&fd, pid).is_err());
}

/// The fork server's whole environment is the allocator tunables that let a supervisor give
/// its set-up's heap back (`forkserver::MALLOC_TUNABLES`), and a task never sees them: its
/// environment is its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fork_server_has_only_the_allocator_tunables_and_tasks_do_not_inherit_them() {
    let Some(env) = setup() else { return };
    let ex = env.executor();
    let st = ex
        .start(env.sh("tun", "env; echo ready; exec sleep 3600"))
        .await
        .unwrap();
    env.until_printed("tun", "ready").await;
    let server = ex
        .forkserver
        .pid()
        .expect("a fork server runs after a start");
    let environ = fs::read_to_string(format!("/proc/{server}/environ")).unwrap();
    // glibc cuts the variable at each `:` in place while it parses it.
    assert_eq!(
        environ.trim_end_matches('\0').replace('\0', ":"),
        format!("GLIBC_TUNABLES={}", super::forkserver::MALLOC_TUNABLES)
    );
    let out = env.stdout("tun");
    assert!(!out.contains("GLIBC_TUNABLES"), "{out}");
    ex.destroy(&st.spec.id, true).await.unwrap();
    assert_clean(&st);
}
