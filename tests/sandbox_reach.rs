//! The sandbox's reach over processes (issue 12 item 1): the probe, run inside the sandbox,
//! tries an effect on another process and the test checks from outside that the effect did not
//! happen, not only the errno.

mod sandbox_support;
use sandbox_support::*;

use std::process::{Child, Command, Stdio};

/// A process outside the sandbox (a child of the test, not of the launcher).
struct Outsider(Child);

impl Outsider {
    fn start() -> Outsider {
        Outsider(
            Command::new("sleep")
                .arg("1000")
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn sleep"),
        )
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }

    fn status_field(&self, name: &str) -> String {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// Field `n` (1-based, as in proc(5)) of /proc/PID/stat.
    fn stat_field(&self, n: usize) -> String {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.0.id())).unwrap();
        let after = &s[s.rfind(')').unwrap() + 2..];
        after.split(' ').nth(n - 3).unwrap().to_string()
    }

    fn nofile_limit(&self) -> String {
        let s = std::fs::read_to_string(format!("/proc/{}/limits", self.0.id())).unwrap();
        s.lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap()
            .to_string()
    }

    fn ioprio(&self) -> String {
        let o = Command::new("ionice").arg("-p").arg(self.pid()).output();
        o.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }

    /// Everything the probes below could change.
    fn snapshot(&mut self) -> Vec<String> {
        if let Some(status) = self.0.try_wait().unwrap() {
            return vec![format!("gone: {status}")];
        }
        vec![
            self.nofile_limit(),
            format!("nice {}", self.stat_field(19)),
            format!("policy {}", self.stat_field(41)),
            format!("rt_priority {}", self.stat_field(40)),
            format!("cpus {}", self.status_field("Cpus_allowed_list:")),
            format!("ioprio {}", self.ioprio()),
        ]
    }
}

impl Drop for Outsider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Every process-targeting operation of the probe, aimed at `pid`.
fn attacks(pid: &str) -> Vec<Vec<String>> {
    let ops: Vec<Vec<&str>> = vec![
        vec!["prlimit", pid],
        vec!["setpriority", pid, "7"],
        vec!["setaffinity", pid],
        vec!["setscheduler", pid],
        vec!["setparam", pid, "0"],
        vec!["ioprio", pid],
        vec!["migrate-pages", pid],
        vec!["kill", pid, "15"],
        vec!["tkill", pid, "15"],
        vec!["tgkill", pid, pid, "15"],
        vec!["sigqueue", pid, "15"],
        vec!["tgsigqueue", pid, pid, "15"],
        vec!["pidfd-signal", pid, "15"],
    ];
    ops.into_iter()
        .map(|o| o.into_iter().map(String::from).collect())
        .collect()
}

#[test]
fn without_proc_no_call_reaches_another_process() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    skip_unless!(
        cpus() > 1,
        "one CPU: an affinity change would not be visible"
    );
    // As root, keep the capabilities (-D): then the kernel's own permission checks
    // (CAP_SYS_NICE, CAP_SYS_RESOURCE) would let every call through and only the promise filter
    // stands between the program and the outside process.
    let keep: &[&str] = if is_root() { &["-D", "x"] } else { &[] };
    for promises in ["stdio rpath", "stdio rpath id", "stdio rpath id tty"] {
        for unveil in [&["-V"][..], &[][..]] {
            let extra = [keep, unveil].concat();
            let extra = extra.as_slice();
            let mut target = Outsider::start();
            let pid = target.pid();
            let before = target.snapshot();
            for op in attacks(&pid) {
                let op: Vec<&str> = op.iter().map(String::as_str).collect();
                let got = probe(promises, extra, &op);
                // Let a signal, if one was sent, be delivered before looking.
                std::thread::sleep(std::time::Duration::from_millis(20));
                let after = target.snapshot();
                assert_eq!(
                    before, after,
                    "`{promises}` {extra:?}: {op:?} changed the outside process (probe: {got})"
                );
                assert_ne!(got, "OK", "`{promises}` {extra:?}: {op:?}");
            }
        }
    }
}

#[test]
fn without_proc_the_calls_still_work_on_the_process_itself() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    // pid 0 = self for the scheduler and priority calls. The probe is the launcher's pid.
    for op in [
        &["setaffinity", "0"][..],
        &["migrate-pages", "0"],
        &["robust-list", "0"],
    ] {
        assert_eq!(probe("stdio rpath", &["-V"], op), "OK", "{op:?}");
    }
    for op in [&["prlimit", "0"][..], &["setpriority", "0", "5"]] {
        assert_eq!(probe("stdio rpath id", &["-V"], op), "OK", "{op:?}");
        assert_eq!(probe("stdio rpath", &["-V"], op), "EPERM", "{op:?}");
    }
}

#[test]
fn tkill_and_tgkill_of_own_pid_are_allowed() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    // The probe runs as the launcher's pid; `self` is resolved by the probe itself.
    assert_eq!(
        probe("stdio rpath", &["-V"], &["kill", "self", "0"]),
        "OK",
        "kill(self, 0)"
    );
    assert_eq!(probe("stdio rpath", &["-V"], &["tkill", "self", "0"]), "OK");
    assert_eq!(
        probe("stdio rpath", &["-V"], &["tgkill", "self", "self", "0"]),
        "OK"
    );
}

#[test]
fn own_process_group_priority_needs_proc() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    // PRIO_PGRP 0 = the caller's process group, which holds processes outside the sandbox (the
    // test harness). Nice 0 is what they have, so even a success would change nothing; with the
    // capabilities kept (-D) the kernel itself would allow it.
    let mut extra = vec!["-V"];
    if is_root() {
        extra.extend(["-D", "x"]);
    }
    assert_eq!(
        probe("stdio rpath id", &extra, &["setpriority-pgrp", "0"]),
        "EPERM"
    );
    assert_eq!(
        probe("stdio rpath proc", &extra, &["setpriority-pgrp", "0"]),
        "OK"
    );
}
