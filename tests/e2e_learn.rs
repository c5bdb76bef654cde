//! `run --learn` round trips (issue 16 item 5): run a job learning, paste the printed fragment's
//! `promises` and `unveil` into the job, run it again normally: it must succeed with the same
//! output. And the plugin refuses `learn = true` unless its operator allows it. Needs root and a
//! cgroup v2 mount; skips with a printed reason (fails instead where NOMAD_PLEDGE_TEST_REQUIRE
//! lists them).

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_nomad-pledge-driver");

mod common;
use common::tasks::skip_reason;

fn run(dir: &Path, job: &str, learn: bool) -> Output {
    let path = dir.join("job.hcl");
    std::fs::write(&path, job).unwrap();
    let mut c = Command::new(BIN);
    c.arg("run").arg(&path);
    if learn {
        c.arg("--learn");
    }
    c.stdin(Stdio::null()).output().expect("run")
}

/// `promises = "..."` and the `unveil = [...]` list text of the fragment for task `name`.
fn fragment(out: &str, name: &str) -> (String, String) {
    let start = out
        .find(&format!("task \"{name}\" {{\n  config {{\n"))
        .unwrap_or_else(|| panic!("no fragment for {name} in:\n{out}"));
    let f = &out[start..];
    let line = |key: &str| {
        f.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim_start().trim_start_matches('=').trim().to_string())
            .unwrap_or_else(|| panic!("no {key} in {f}"))
    };
    (line("promises"), line("unveil"))
}

/// The job with `PROMISES` and `UNVEIL` replaced.
fn job(template: &str, promises: &str, unveil: &str) -> String {
    template
        .replace("PROMISES", promises)
        .replace("UNVEIL", unveil)
}

fn round_trip(template: &str, expect: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let learning = run(dir.path(), &job(template, "\"stdio\"", "[]"), true);
    let (out, err) = (
        String::from_utf8_lossy(&learning.stdout).into_owned(),
        String::from_utf8_lossy(&learning.stderr).into_owned(),
    );
    assert_eq!(learning.status.code(), Some(0), "learn run: {err}\n{out}");
    assert!(out.contains(expect), "learn run: {out}\n{err}");
    let (promises, unveil) = fragment(&out, "t");
    let again = run(dir.path(), &job(template, &promises, &unveil), false);
    let (out2, err2) = (
        String::from_utf8_lossy(&again.stdout).into_owned(),
        String::from_utf8_lossy(&again.stderr).into_owned(),
    );
    assert_eq!(
        again.status.code(),
        Some(0),
        "rerun with promises = {promises}, unveil = {unveil}: {err2}\n{out2}"
    );
    assert!(out2.contains(expect), "rerun: {out2}\n{err2}");
    // Not a single denial in the rerun (seccomp denials are task events, on by default).
    assert!(
        !err2.contains("event: seccomp:"),
        "the rerun with promises = {promises}, unveil = {unveil} had denials: {err2}"
    );
    (promises, unveil)
}

#[test]
fn a_script_running_programs_and_writing_into_its_task_directory() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let template = r#"job "j" {
  type = "batch"
  group "g" {
    task "t" {
      driver = "pledge"
      config {
        command  = "/bin/sh"
        args     = ["-c", "echo learned-out > $NOMAD_TASK_DIR/out.txt && ls /usr/share > /dev/null && cat $NOMAD_TASK_DIR/out.txt | tr a-z A-Z"]
        promises = PROMISES
        unveil   = UNVEIL
      }
    }
  }
}
"#;
    let (promises, unveil) = round_trip(template, "LEARNED-OUT");
    assert!(
        promises.contains("exec") && promises.contains("proc"),
        "{promises}"
    );
    assert!(unveil.contains("${NOMAD_TASK_DIR}"), "{unveil}");
    // The learned policy is needed: without it the job fails.
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &job(template, "\"stdio\"", "[]"), false);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("LEARNED-OUT"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn the_plugin_refuses_learn_mode_unless_allow_learn_is_set() {
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
        command = "/bin/true"
        learn   = true
      }
    }
  }
}
"#;
    let o = run(dir.path(), job, false);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("allow_learn = true"), "{err}");
}

/// python's http.server fetched by curl, both in the task, on loopback. The group declares the
/// port: with `inet` the driver lets a task bind only its allocated ports (Landlock), which
/// learn mode (no Landlock) cannot see, so a job must declare the ports it listens on.
#[test]
fn python_http_server_fetched_by_curl_on_loopback() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    for tool in ["/usr/bin/python3", "/usr/bin/curl"] {
        if !Path::new(tool).exists() {
            eprintln!("SKIP: {tool} is not installed");
            return;
        }
    }
    let port = 20000 + std::process::id() % 10000;
    let template = r#"job "j" {
  type = "batch"
  group "g" {
    network {
      port "http" {
        static = PORT
      }
    }
    task "t" {
      driver = "pledge"
      config {
        command  = "/bin/sh"
        args     = ["-c", "cd $NOMAD_TASK_DIR && echo hello-learn > index.html && { python3 -m http.server PORT --bind 127.0.0.1 & pid=$!; }; for i in $(seq 1 50); do curl -sf http://127.0.0.1:PORT/index.html && break; sleep 0.2; done; kill $pid"]
        promises = PROMISES
        unveil   = UNVEIL
      }
    }
  }
}
"#
    .replace("PORT", &port.to_string());
    let (promises, _) = round_trip(&template, "hello-learn");
    assert!(promises.contains("inet"), "{promises}");
}

/// Ctrl-C (SIGINT to `run`) stops a learning task that would run forever, and the fragment
/// for what it did until then is still printed.
#[test]
fn ctrl_c_stops_a_learning_task_and_prints_its_fragment() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    use std::io::{BufRead, BufReader, Read};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.hcl");
    std::fs::write(
        &path,
        r#"job "j" {
  group "g" {
    task "t" {
      driver = "pledge"
      config {
        command  = "/bin/sh"
        args     = ["-c", "cat /etc/hostname > /dev/null; echo started; while :; do sleep 0.1; done"]
        promises = "stdio"
      }
    }
  }
}
"#,
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(&path)
        .arg("--learn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            panic!("run ended before the task started: {seen}");
        }
        seen.push_str(&line);
        if line.trim() == "started" {
            break;
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    out.read_to_string(&mut seen).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    // `run` exits once it has stopped the task (its exit status after Ctrl-C is its own matter).
    child.wait().unwrap();
    let (promises, unveil) = fragment(&seen, "t");
    assert!(
        promises.contains("rpath") && promises.contains("proc"),
        "{promises}\n{err}"
    );
    assert!(
        unveil.contains("/etc/hostname") || unveil.contains("/etc"),
        "{unveil}"
    );
}
