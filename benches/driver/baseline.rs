//! Measurements that do not need the plugin: a bare fork/exec of a command, the launch chain of
//! the original driver (`unshare ... -- <launcher> -p ... -- cmd`), and the seccomp overhead of the
//! launcher on a syscall-heavy loop.

use std::fs::File;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Spawns `argv` with stdout on a pipe and returns the time until its first stdout byte.
pub fn first_byte(argv: &[String]) -> Result<Duration, String> {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t0 = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("spawn {}: {e}", argv[0]))?;
    let mut out = child.stdout.take().expect("piped stdout");
    let mut byte = [0u8; 1];
    let n = out
        .read(&mut byte)
        .map_err(|e| format!("read stdout: {e}"))?;
    let elapsed = t0.elapsed();
    let mut rest = Vec::new();
    let _ = out.read_to_end(&mut rest);
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    if n == 0 || !status.success() {
        return Err(format!(
            "`{}` wrote nothing or failed ({status}): {}",
            argv.join(" "),
            first_line(&err)
        ));
    }
    Ok(elapsed)
}

/// The launch chain of the original driver: new IPC and PID namespaces with a private /proc,
/// the given uid/gid, then `inner` (the pledge launcher and the command).
pub fn unshare_chain(uid: u32, gid: u32, inner: &[String]) -> Vec<String> {
    let mut v: Vec<String> = [
        "unshare",
        "--ipc",
        "--pid",
        "--mount-proc",
        "--fork",
        "--kill-child=SIGKILL",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend([
        "--setuid".into(),
        uid.to_string(),
        "--setgid".into(),
        gid.to_string(),
        "--".into(),
    ]);
    v.extend_from_slice(inner);
    v
}

/// Runs `argv` to completion with stdout on /dev/null; returns its wall time.
pub fn timed_run(argv: &[String]) -> Result<Duration, String> {
    let null = File::create("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?;
    let t0 = Instant::now();
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(null)
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("spawn {}: {e}", argv[0]))?;
    let elapsed = t0.elapsed();
    if !out.status.success() {
        return Err(format!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            out.status,
            first_line(&String::from_utf8_lossy(&out.stderr))
        ));
    }
    Ok(elapsed)
}

/// Whether the built-in launcher works on this build: `BIN pledge -p 'stdio rpath' -- true`.
pub fn launcher_available(bin: &str) -> Result<(), String> {
    let out = Command::new(bin)
        .args(["pledge", "-p", "stdio rpath", "--", "/usr/bin/true"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("spawn {bin} pledge: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "the built-in launcher fails on this build ({}): {}",
            out.status,
            first_line(&String::from_utf8_lossy(&out.stderr))
        ))
    }
}

pub fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no output)")
        .trim()
        .to_string()
}

pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
