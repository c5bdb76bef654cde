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

/// The floor of a graceful stop in new namespaces, without the plugin: `unshare --ipc --pid
/// --mount --mount-proc --fork` runs a shell as PID 1 that starts `sh -c 'echo ready; exec sleep
/// 3600'` and waits for it; after "ready" (and a moment for the `exec`), SIGTERM goes straight to
/// the sleep, and the time runs until `unshare` has been reaped (PID 1 gone, the namespaces torn
/// down). With `hold_mount_ns`, a descriptor of the namespaces' mount namespace is held across
/// the wait (the driver's way: the mount table's teardown then happens at its close, after).
pub fn kill_in_namespaces(hold_mount_ns: bool) -> Result<Duration, String> {
    let inner = "/bin/sh -c 'echo ready; exec sleep 3600' & wait $!";
    let mut child = Command::new("unshare")
        .args([
            "--ipc",
            "--pid",
            "--mount",
            "--mount-proc",
            "--fork",
            "--kill-child=SIGKILL",
            "--",
            "/bin/sh",
            "-c",
            inner,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn unshare: {e}"))?;
    let result = (|| {
        let mut out = child.stdout.take().expect("piped stdout");
        let mut byte = [0u8; 1];
        match out.read(&mut byte) {
            Ok(1) => {}
            _ => return Err("the task in new namespaces printed nothing".to_string()),
        }
        std::thread::sleep(Duration::from_millis(50));
        let init = only_child(child.id() as i32)?;
        let sleep = only_child(init)?;
        let comm = std::fs::read_to_string(format!("/proc/{sleep}/comm")).unwrap_or_default();
        if comm.trim() != "sleep" {
            return Err(format!("pid {sleep} runs {:?}, not sleep", comm.trim()));
        }
        let ns = hold_mount_ns
            .then(|| File::open(format!("/proc/{}/ns/mnt", child.id())))
            .transpose()
            .map_err(|e| format!("open the mount namespace: {e}"))?;
        let t0 = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(sleep),
            nix::sys::signal::Signal::SIGTERM,
        )
        .map_err(|e| format!("kill {sleep}: {e}"))?;
        let status = child.wait().map_err(|e| format!("wait: {e}"))?;
        let elapsed = t0.elapsed();
        drop(ns);
        // The PID 1 shell exits with the status of the killed sleep: 128 + SIGTERM.
        if status.code() != Some(143) {
            return Err(format!("unshare ended with {status}, not 143"));
        }
        Ok(elapsed)
    })();
    if result.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

/// The single child of `pid` (from `/proc/PID/task/PID/children`).
fn only_child(pid: i32) -> Result<i32, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map_err(|e| format!("children of {pid}: {e}"))?;
    let pids: Vec<i32> = text
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    match pids.as_slice() {
        [one] => Ok(*one),
        other => Err(format!("pid {pid} has children {other:?}, expected one")),
    }
}
