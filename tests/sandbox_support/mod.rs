//! Shared helpers for the sandbox tests: run the built launcher and the probe.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Which host features this machine must have (`NOMAD_PLEDGE_TEST_REQUIRE`): every probe below
/// asks it, so a feature CI lists fails the test instead of skipping it.
#[path = "../../src/host_features.rs"]
pub mod host_features;

pub const BIN: &str = env!("CARGO_BIN_EXE_nomad-pledge-driver");
pub const PROBE: &str = env!("CARGO_BIN_EXE_pledge-probe");

/// Print the reason and return from the test when a condition is not met.
#[macro_export]
macro_rules! skip_unless {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            eprintln!("SKIP: {}", format!($($why)+));
            return;
        }
    };
}

/// `nomad-pledge-driver pledge ARGS...` with stdin from /dev/null.
pub fn pledge(args: &[&str]) -> Output {
    pledge_in(None, args)
}

/// Same, in directory `dir`.
pub fn pledge_in(dir: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.arg("pledge").args(args).stdin(Stdio::null());
    if let Some(d) = dir {
        c.current_dir(d);
    }
    c.output().expect("run nomad-pledge-driver")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

/// Run the probe with `OP ARGS...` under `-p promises` plus `extra` launcher options; return
/// what it printed (`OK` or an errno name), or a description of how it died.
pub fn probe(promises: &str, extra: &[&str], op: &[&str]) -> String {
    let mut args = vec!["-p", promises];
    args.extend_from_slice(extra);
    args.push("--");
    args.push(PROBE);
    args.extend_from_slice(op);
    let o = pledge(&args);
    let out = stdout(&o);
    if out.is_empty() {
        format!("no output: {:?}; stderr: {}", o.status, stderr(&o))
    } else {
        out
    }
}

pub fn seccomp_available() -> bool {
    let ok = pledge(&["-T", "pledge"]).status.code() == Some(0);
    host_features::present(
        "seccomp",
        ok,
        "`pledge -T pledge` fails: kernel without seccomp filters",
    )
}

/// The kernel's Landlock ABI, if any.
pub fn landlock_abi() -> Option<i32> {
    let o = pledge(&["-T", "unveil"]);
    let abi = if o.status.code() == Some(0) {
        let s = stdout(&o);
        s.lines()
            .next()
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
    } else {
        None
    };
    host_features::landlock_abi(abi, "`pledge -T unveil` fails: landlock is not enabled")
}

pub fn is_root() -> bool {
    host_features::present("root", euid_is_root(), "not running as root")
}

fn euid_is_root() -> bool {
    // Read the effective uid from /proc (no unsafe, no nix in this helper).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The directory holding the probe (unveil it `rx` when the probe execs itself).
pub fn probe_dir() -> String {
    Path::new(PROBE).parent().unwrap().display().to_string()
}
