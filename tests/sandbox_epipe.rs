//! Closed pipes (issue 12 item 9): every subcommand whose output goes to a pipe nobody reads
//! (`nomad-pledge-driver pledge -T unveil | head -0`) exits quietly or by SIGPIPE, never with a
//! panic (Rust's exit status 101). And a program started by the pledge launcher starts with
//! SIGPIPE at its default disposition, as under pledge.com.

mod sandbox_support;
use sandbox_support::*;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};

/// A pipe whose read end is already closed: writing to it fails with EPIPE (or raises SIGPIPE).
fn broken_pipe() -> Stdio {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    drop(r);
    Stdio::from(w)
}

/// Run BIN ARGS with stdout (and, if `both`, stderr) on a broken pipe; return the status and
/// whatever reached stderr when stderr was captured.
fn run_broken(args: &[&str], both: bool) -> (ExitStatus, String) {
    let mut c = Command::new(BIN);
    c.args(args).stdin(Stdio::null()).stdout(broken_pipe());
    if both {
        c.stderr(broken_pipe());
    } else {
        c.stderr(Stdio::piped());
    }
    let o = c.output().expect("run nomad-pledge-driver");
    (o.status, String::from_utf8_lossy(&o.stderr).into_owned())
}

fn quiet_or_sigpipe(args: &[&str], status: ExitStatus, err: &str) {
    assert_ne!(status.code(), Some(101), "{args:?} panicked: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert!(!err.contains("Broken pipe"), "{args:?} complained: {err}");
    if let Some(sig) = status.signal() {
        assert_eq!(sig, libc::SIGPIPE, "{args:?} died by signal {sig}");
    }
}

#[test]
fn every_subcommand_exits_quietly_on_a_closed_stdout_or_stderr() {
    let probe = PROBE;
    let commands: Vec<Vec<&str>> = vec![
        vec!["pledge", "-T", "unveil"],
        vec!["pledge", "-T", "unveil", "-v", "rw:/tmp", "cat"],
        vec!["pledge", "-T", "pledge", "-p", "stdio inet", "cat"],
        vec!["pledge", "--why", "openat,0,0,0x241"],
        vec!["pledge", "-h"],
        vec!["pledge", "-z"],
        vec!["pledge"],
        vec!["pledge", "-p", "stdio thread", "true"],
        vec![
            "pledge",
            "-V",
            "-p",
            "stdio rpath",
            "--explain",
            "--",
            probe,
            "noop",
        ],
        vec!["version"],
        vec!["--version"],
        vec!["--help"],
        vec!["help"],
        vec!["no-such-subcommand"],
        vec!["run"],
        vec!["run", "/nonexistent/job.hcl"],
        vec!["run", "--bogus"],
        // Plugin mode without Nomad's cookie: explains itself on stderr, keeps its own SIGPIPE
        // handling (ignored), exits 1.
        vec![],
    ];
    for args in &commands {
        for both in [false, true] {
            let (status, err) = run_broken(args, both);
            quiet_or_sigpipe(args, status, &err);
        }
    }
}

#[test]
fn programs_start_with_sigpipe_at_its_default() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    // `cat /proc/self/status` under the launcher: SigIgn must not contain SIGPIPE (bit 13).
    let o = pledge(&["-V", "-p", "stdio rpath", "--", "cat", "/proc/self/status"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let ign = out
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap_or_else(|| panic!("no SigIgn in {out}"));
    assert_eq!(
        ign & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE ignored: {ign:#x}"
    );

    // And so `yes | head -0` ends `yes` by SIGPIPE rather than by an EPIPE error message.
    let mut c = Command::new(BIN);
    c.args(["pledge", "-V", "-p", "stdio rpath", "--", "yes"])
        .stdin(Stdio::null())
        .stdout(broken_pipe())
        .stderr(Stdio::piped());
    let o = c.output().unwrap();
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGPIPE),
        "{:?} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}
