//! Issue 16 through `nomad-pledge-driver run`: what the sandbox refuses or skips is shown where
//! users look. An unveil entry that matches nothing is a task event (printed by `run`) and a
//! plugin log line, or refuses the task under `unveil_missing = "fail"`; `run` prints the
//! plugin's health description when it is degraded. Needs root and a cgroup v2 mount; skips
//! with a printed reason. Run under the cgroup test lock (tests/plugin_*, tests/e2e_*).

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_nomad-pledge-driver");

fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (the driver switches users and creates namespaces)".into());
    }
    if cgroup2_mount().is_none() {
        return Some("no cgroup v2 mount".into());
    }
    None
}

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
