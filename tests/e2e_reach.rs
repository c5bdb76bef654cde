//! Under the driver, a task that promises `proc` reaches only processes of its own sandbox
//! (issue 12 item 1): its PID namespace holds only the supervisor and the task's processes, so
//! a host process with the task's uid is out of reach of kill, tkill, prlimit, setpriority,
//! sched_setaffinity and ioprio_set. Runs a job through `nomad-pledge-driver run` and checks the
//! host process from outside. Needs root and a cgroup v2 mount; skips with a printed reason.
//! Run under the cgroup test lock (tests/plugin_*, tests/e2e_*).

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_nomad-pledge-driver");
const PROBE: &str = env!("CARGO_BIN_EXE_pledge-probe");
const NOBODY: u32 = 65534;

mod common;
// Through host_features: fails instead of skipping where NOMAD_PLEDGE_TEST_REQUIRE lists it.
use common::tasks::skip_reason;

/// A host process, killed and reaped at the end of the test whatever happens.
struct Outsider(std::process::Child);

impl Drop for Outsider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the task could change about process `pid`.
fn snapshot(pid: u32) -> Vec<String> {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return vec!["gone".into()];
    };
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Running or sleeping are both alive; a zombie was killed.
    let alive = f[0] != "Z" && f[0] != "X";
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let cpus = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .unwrap_or_default()
        .to_string();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_default()
        .to_string();
    let ioprio = Command::new("ionice")
        .arg("-p")
        .arg(pid.to_string())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    vec![
        format!("alive {alive}"),
        format!("nice {}", f[16]),
        format!("policy {}", f[38]),
        cpus,
        nofile,
        ioprio,
    ]
}

#[test]
fn a_task_with_proc_cannot_reach_a_host_process_of_its_own_uid() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    // The outsider runs as nobody, like the task: only the PID namespace keeps them apart (the
    // kernel would let a same-uid process signal it, renice it up and lower its limits).
    let outsider = Outsider(
        Command::new("sleep")
            .arg("1000")
            .uid(NOBODY)
            .gid(NOBODY)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep as nobody"),
    );
    let pid = outsider.0.id();
    let before = snapshot(pid);

    let ops = [
        format!("kill {pid} 15"),
        format!("tkill {pid} 15"),
        format!("tgkill {pid} {pid} 15"),
        format!("prlimit {pid}"),
        format!("setpriority {pid} 7"),
        format!("setaffinity {pid}"),
        format!("ioprio {pid}"),
    ];
    let script: String = ops
        .iter()
        .map(|op| format!("echo \"{op}: $({PROBE} {op})\"; "))
        .collect();
    let probe_dir = std::path::Path::new(PROBE).parent().unwrap().display();
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("reach.hcl");
    std::fs::write(
        &job,
        format!(
            r#"job "reach" {{
  type = "batch"
  group "group" {{
    task "reach" {{
      driver = "pledge"
      config {{
        command  = "/bin/sh"
        args     = ["-c", {script:?}]
        promises = "stdio rpath proc exec"
        unveil   = ["rx:{probe_dir}"]
      }}
    }}
    restart {{
      attempts = 0
      mode     = "fail"
    }}
  }}
}}
"#
        ),
    )
    .unwrap();
    // The probe directory must be reachable by nobody; skip where it is not (a private $HOME).
    let o = Command::new(BIN)
        .arg("run")
        .arg(&job)
        .stdin(Stdio::null())
        .output()
        .expect("run nomad-pledge-driver run");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    if out.contains("Permission denied") || err.contains("Permission denied") {
        drop(outsider);
        eprintln!("SKIP: nobody cannot reach {PROBE}: {out} {err}");
        return;
    }
    let after = snapshot(pid);
    drop(outsider);
    assert_eq!(
        before, after,
        "the task changed a host process\n{out}\n{err}"
    );
    for op in &ops {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{op}:")))
            .unwrap_or_else(|| panic!("no result for {op}\nstdout: {out}\nstderr: {err}"));
        assert!(line.ends_with("ESRCH"), "{line}");
    }
}

/// Under the driver, too, a task starts with SIGPIPE at its default disposition (issue 12
/// item 9: the launcher restores it, and the supervisor resets every signal before it).
#[test]
fn a_task_starts_with_sigpipe_at_its_default() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("sigpipe.hcl");
    std::fs::write(
        &job,
        r#"job "sigpipe" {
  type = "batch"
  group "group" {
    task "sigpipe" {
      driver = "pledge"
      config {
        command  = "/bin/grep"
        args     = ["^SigIgn:", "/proc/self/status"]
        promises = "stdio rpath"
      }
    }
    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
"#,
    )
    .unwrap();
    let o = Command::new(BIN)
        .arg("run")
        .arg(&job)
        .stdin(Stdio::null())
        .output()
        .expect("run nomad-pledge-driver run");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();

    // `run ... | head -0`: the task's output meets a closed pipe; run neither panics nor dies.
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    let closed = Command::new(BIN)
        .arg("run")
        .arg(&job)
        .stdin(Stdio::null())
        .stdout(Stdio::from(w))
        .output()
        .expect("run nomad-pledge-driver run");
    let closed_err = String::from_utf8_lossy(&closed.stderr);
    assert_eq!(closed.status.code(), Some(0), "{closed_err}");
    assert!(!closed_err.contains("panicked"), "{closed_err}");

    let ign = out
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap_or_else(|| panic!("no SigIgn line\nstdout: {out}\nstderr: {err}"));
    assert_eq!(
        ign & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE ignored: {ign:#x}"
    );
}
