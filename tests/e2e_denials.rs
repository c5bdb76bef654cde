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
use common::tasks::skip_reason;

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

/// Kernel audit's enabled flag, read and written over audit netlink (`AUDIT_GET`/`AUDIT_SET`),
/// so that the Landlock test can put back the state it found: enabling audit is host-wide.
mod audit {
    use nix::sys::socket::{
        recv, send, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType,
    };
    use std::os::fd::AsRawFd;

    fn request(ty: u16, flags: u16, payload: &[u8]) -> Option<Vec<u8>> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkAudit,
        )
        .ok()?;
        let mut m = Vec::new();
        m.extend_from_slice(&(16 + payload.len() as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&[0u8; 8]);
        m.extend_from_slice(payload);
        send(fd.as_raw_fd(), &m, MsgFlags::empty()).ok()?;
        let mut buf = vec![0u8; 8192];
        for _ in 0..8 {
            let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).ok()?;
            let t = u16::from_ne_bytes([buf[4], buf[5]]);
            if t == ty || t == 2 {
                return Some(buf[16..n].to_vec());
            }
        }
        None
    }

    /// `enabled` (0 off, 1 on, 2 locked), None where audit netlink is unusable.
    pub fn enabled() -> Option<u32> {
        let p = request(1000, 1, &[])?;
        Some(u32::from_ne_bytes(p.get(4..8)?.try_into().ok()?))
    }

    pub fn set_enabled(v: u32) {
        let mut p = vec![0u8; 40];
        p[0..4].copy_from_slice(&1u32.to_ne_bytes());
        p[4..8].copy_from_slice(&v.to_ne_bytes());
        let _ = request(1001, 1 | 4, &p);
    }
}

/// Puts kernel audit's enabled flag back as it was, whatever happens in the test.
struct RestoreAudit(u32);

impl Drop for RestoreAudit {
    fn drop(&mut self) {
        if audit::enabled() != Some(self.0) && self.0 < 2 {
            audit::set_enabled(self.0);
        }
    }
}

#[test]
fn a_landlock_denial_is_a_task_event_under_landlock_audit_enable() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP: {reason}");
        return;
    }
    let abi = Command::new(BIN)
        .args(["pledge", "-T", "unveil", "true"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let abi: u32 = abi
        .lines()
        .find_map(|l| l.strip_prefix("landlock: available, ABI "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if abi < 7 {
        eprintln!("SKIP: Landlock ABI {abi} < 7 writes no audit records");
        return;
    }
    let Some(before) = audit::enabled() else {
        eprintln!("SKIP: kernel audit netlink is not usable here");
        return;
    };
    let restore = RestoreAudit(before);
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
