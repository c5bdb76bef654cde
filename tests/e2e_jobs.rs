//! Issue 14 through `nomad-pledge-driver run` (the plugin side is tests/plugin_jobs.rs): a group's
//! `network { dns { ... } }` reaches the task as its /etc/resolv.conf, and `pid_mode = "host"`
//! works where the plugin allows it and is refused where it does not. Needs root and a cgroup v2
//! mount; skips with a printed reason (fails instead where NOMAD_PLEDGE_TEST_REQUIRE lists them).

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_nomad-pledge-driver");

mod common;
// Through host_features: fails instead of skipping where NOMAD_PLEDGE_TEST_REQUIRE lists it.
use common::tasks::skip_reason;

/// Runs `job` (HCL text) with an optional plugin config (attributes of the config block).
fn run(dir: &Path, job: &str, plugin_config: Option<&str>) -> Output {
    let path = dir.join("job.hcl");
    std::fs::write(&path, job).unwrap();
    let mut c = Command::new(BIN);
    c.arg("run").arg(&path);
    if let Some(conf) = plugin_config {
        let p = dir.join("plugin.hcl");
        std::fs::write(&p, conf).unwrap();
        c.arg("--plugin-config").arg(p);
    }
    c.stdin(Stdio::null()).output().expect("run")
}

#[test]
fn a_groups_dns_block_is_the_tasks_resolv_conf() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // No unveil of /etc: the `dns` promise's implicit rule must follow the generated file.
    let job = r#"job "j" {
  type = "batch"
  group "g" {
    network {
      dns {
        servers  = ["192.0.2.53", "192.0.2.54"]
        searches = ["svc.example"]
        options  = ["ndots:2"]
      }
    }
    task "t" {
      driver = "pledge"
      config {
        command  = "/bin/cat"
        args     = ["/etc/resolv.conf"]
        promises = "stdio rpath dns"
      }
    }
  }
}
"#;
    let o = run(dir.path(), job, None);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "stderr: {err}");
    for want in [
        "nameserver 192.0.2.53",
        "nameserver 192.0.2.54",
        "search svc.example",
        "options ndots:2",
    ] {
        assert!(
            out.lines().any(|l| l.trim() == want),
            "no `{want}` in the task's /etc/resolv.conf:\n{out}\nstderr: {err}"
        );
    }
    // The host's own file is untouched.
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    assert!(!host.contains("192.0.2.53"), "{host}");
}

#[test]
fn pid_mode_host_needs_the_plugins_consent() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let job = r#"job "j" {
  type = "batch"
  group "g" {
    task "t" {
      driver = "pledge"
      config {
        command  = "/bin/cat"
        args     = ["/proc/1/comm"]
        promises = "stdio rpath"
        unveil   = ["r:/proc"]
        pid_mode = "host"
      }
    }
  }
}
"#;
    // Refused without allow_pid_host, naming the option.
    let o = run(dir.path(), job, None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("allow_pid_host"), "{err}");

    // Allowed: the task sees the host's PID 1, not its supervisor.
    let o = run(dir.path(), job, Some("allow_pid_host = true\n"));
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "stderr: {err}");
    let host_init = std::fs::read_to_string("/proc/1/comm").unwrap();
    assert_eq!(out.trim(), host_init.trim(), "stderr: {err}");
    assert!(
        err.contains("exited: exit_code=0"),
        "the exit code is recorded in host PID mode: {err}"
    );
}
