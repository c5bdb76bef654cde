//! Issue 16 through `nomad-pledge-driver run`: what the sandbox refuses or skips is shown where
//! users look. An unveil entry that matches nothing is a task event (printed by `run`) and a
//! plugin log line, or refuses the task under `unveil_missing = "fail"`; `run` prints the
//! plugin's health description when it is degraded. Needs root and a cgroup v2 mount; skips
//! with a printed reason. Run under the cgroup test lock (tests/plugin_*, tests/e2e_*).

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_nomad-pledge-driver");

mod common;
// Through host_features: fails instead of skipping where NOMAD_PLEDGE_TEST_REQUIRE lists it.
use common::audit;
use common::pb::drivers::WaitTaskRequest;
use common::tasks::{
    crash, destroy, next_event, plugin_with, recover, skip_reason, start, task_events, Alloc,
};
use common::V;

fn cgroup2_mount() -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| left.split_whitespace().nth(4).map(str::to_string))?
    })
}

fn job(dir: &Path, command: &str, args: &[&str], unveil: &[&str]) -> std::path::PathBuf {
    let quote = |v: &[&str]| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let path = dir.join("job.hcl");
    std::fs::write(
        &path,
        format!(
            r#"job "denials" {{
  type = "batch"
  group "group" {{
    task "probe" {{
      driver = "pledge"
      config {{
        command  = "{command}"
        args     = [{}]
        promises = "stdio rpath"
        unveil   = [{}]
      }}
    }}
    restart {{
      attempts = 0
      mode     = "fail"
    }}
  }}
}}
"#,
            quote(args),
            quote(unveil)
        ),
    )
    .unwrap();
    path
}

fn run(job: &Path, plugin_config: Option<&Path>) -> Output {
    let mut c = Command::new(BIN);
    c.arg("run").arg(job);
    if let Some(p) = plugin_config {
        c.arg("--plugin-config").arg(p);
    }
    c.stdin(Stdio::null())
        .output()
        .expect("run nomad-pledge-driver run")
}

#[test]
fn an_unveil_entry_that_matches_nothing_is_a_task_event_in_run() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path(), "/bin/true", &[], &["r:/etc/hostnme"]);
    let o = run(&job, None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "the task must still run: {err}");
    let want = "==> task \"probe\" event: unveil \"r:/etc/hostnme\": no such file; skipped";
    assert!(err.contains(want), "no event line `{want}` in:\n{err}");
    // The plugin's warning log line is shown by `run` too (warnings are, without -v).
    assert!(
        err.lines()
            .any(|l| !l.starts_with("==>") && l.contains("r:/etc/hostnme")),
        "no plugin log line naming the entry in:\n{err}"
    );
}

#[test]
fn unveil_missing_fail_refuses_the_task() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path(), "/bin/true", &[], &["r:/etc/hostnme"]);
    let conf = dir.path().join("plugin.hcl");
    std::fs::write(&conf, "unveil_missing = \"fail\"\n").unwrap();
    let o = run(&job, Some(&conf));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("unveil \"r:/etc/hostnme\": no such file")
            && err.contains("unveil_missing = \"fail\""),
        "{err}"
    );
}

#[test]
fn run_prints_a_degraded_health_description() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let mount = cgroup2_mount().unwrap();
    let controllers =
        std::fs::read_to_string(Path::new(&mount).join("cgroup.controllers")).unwrap_or_default();
    let degraded = !["cpu", "memory"]
        .iter()
        .all(|c| controllers.split_whitespace().any(|x| x == *c));
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path(), "/bin/true", &[], &[]);
    let o = run(&job, None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    if degraded {
        let line = err
            .lines()
            .find(|l| l.starts_with("==> plugin health: Healthy; "))
            .unwrap_or_else(|| panic!("no health line (controllers: {controllers}):\n{err}"));
        let started = err.find("==> task \"probe\" started").unwrap_or(usize::MAX);
        assert!(err.find(line).unwrap() < started, "{err}");
    } else {
        eprintln!("NOTE: all controllers present, the plugin is fully healthy");
        assert!(!err.contains("==> plugin health"), "{err}");
    }
}

#[test]
fn a_landlock_denial_is_a_task_event_under_landlock_audit_enable() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let Some(restore) = audit::take() else {
        return;
    };
    let before = restore.before();
    let dir = tempfile::tempdir().unwrap();
    // The shell that restricted itself stays alive while cat is refused, so that the plugin
    // finds its cgroup.
    let job = job(
        dir.path(),
        "/bin/sh",
        &["-c", "cat /etc/hostname; sleep 1"],
        &["rx:/usr"],
    );
    let text = std::fs::read_to_string(&job)
        .unwrap()
        .replace("\"stdio rpath\"", "\"stdio rpath proc exec\"");
    std::fs::write(&job, text).unwrap();
    let conf = dir.path().join("plugin.hcl");
    std::fs::write(&conf, "landlock_audit = \"enable\"\n").unwrap();
    let o = run(&job, Some(&conf));
    let err = String::from_utf8_lossy(&o.stderr);
    let want = "==> task \"probe\" event: read /etc/hostname needs unveil \"r:/etc/hostname\"";
    assert!(err.contains(want), "no `{want}` in:\n{err}");
    assert_eq!(err.matches(want).count(), 1, "deduplicated: {err}");
    drop(restore);
    assert_eq!(audit::enabled(), Some(before), "audit state not restored");
}

/// A plugin killed while a task runs, then RecoverTask in a new one: the kernel named the
/// task's Landlock domain once, to the old plugin, yet the new one attributes the task's later
/// denials to it and does not report an earlier one again. The fix for a path in the task's
/// directory is written as a job writes it (`${NOMAD_TASK_DIR}/...`, not this allocation's
/// path). Failed before: the recovered task's denials were reported nowhere.
#[tokio::test]
async fn landlock_denials_survive_a_plugin_restart() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let Some(_audit) = audit::take() else {
        return;
    };
    let alloc = Alloc::new("landlock-denials");
    let options = [("landlock_audit", V::S("enable"))];
    let go = alloc.path().join("go");
    let script = format!(
        "cat /etc/hostname; until [ -e {go} ]; do sleep 0.05; done; \
         cat /etc/hostname; cat local/conf.txt; cat /etc/passwd",
        go = go.display()
    );
    let task = alloc.task_unveiling(
        "probe",
        "/bin/sh",
        &["-c", &script],
        "stdio rpath proc exec",
        &["rx:/usr"],
    );
    std::fs::write(alloc.path().join("probe/local/conf.txt"), "x\n").unwrap();
    let id = task.id.clone();

    let plugin1 = plugin_with(&alloc, &options).await;
    let mut events1 = task_events(&plugin1).await;
    let handle = start(&plugin1, task).await;
    let first = next_event(&mut events1, "read /etc/hostname needs unveil").await;
    assert_eq!(first.task_id, id);
    crash(plugin1).await;

    let plugin2 = plugin_with(&alloc, &options).await;
    let mut events2 = task_events(&plugin2).await;
    recover(&plugin2, handle).await;
    std::fs::write(&go, "").unwrap();
    // Everything the new plugin publishes for the task, up to its last denial (published in
    // the order the task made them).
    let mut seen = Vec::new();
    while !seen.iter().any(|m: &String| m.contains("/etc/passwd")) {
        let e = next_event(&mut events2, "").await;
        assert_eq!(e.task_id, id, "{}", e.message);
        seen.push(e.message);
    }
    let local = seen.iter().find(|m| m.contains("conf.txt"));
    assert!(
        local.is_some_and(|m| m.ends_with("needs unveil \"r:${NOMAD_TASK_DIR}/conf.txt\"")),
        "no ${{NOMAD_TASK_DIR}} fix for conf.txt: {seen:#?}"
    );
    assert!(
        !seen.iter().any(|m| m.contains("/etc/hostname")),
        "reported again after the restart: {seen:#?}"
    );
    plugin2
        .driver()
        .wait_task(WaitTaskRequest {
            task_id: id.clone(),
        })
        .await
        .expect("WaitTask");
    destroy(&plugin2, &id).await;
    plugin2.shutdown().await;
}
