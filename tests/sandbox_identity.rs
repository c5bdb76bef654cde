//! `-u`/`-g` take exactly the target identity: its supplementary groups, and no capability the
//! caller had in its inheritable or ambient sets. Run through `setpriv` as a root parent that
//! has groups 0 and 4 and inheritable/ambient capabilities. Needs root and setpriv; skips with
//! a printed reason otherwise.

mod sandbox_support;
use sandbox_support::*;

use std::process::Command;

fn setpriv_available() -> bool {
    Command::new("setpriv")
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `setpriv WRAPPER... -- nomad-pledge-driver pledge ARGS...`.
fn pledge_under(wrapper: &[&str], args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(wrapper)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_nomad-pledge-driver"))
        .arg("pledge")
        .args(args)
        .output()
        .expect("run setpriv")
}

#[test]
fn a_nobody_command_does_not_keep_the_callers_groups() {
    skip_unless!(is_root(), "needs root (-u/-g)");
    skip_unless!(
        setpriv_available(),
        "no setpriv (util-linux) to give the caller groups"
    );
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // root:root 0660: only uid 0 and members of group 0 may write it.
    let file = dir.path().join("root-only");
    std::fs::write(&file, "").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o660)).unwrap();
    std::os::unix::fs::chown(&file, Some(0), Some(0)).unwrap();

    let script = format!("echo pwned >> {}", file.display());
    let o = pledge_under(
        &["--groups", "0,4"],
        &[
            "-u",
            "65534",
            "-g",
            "65534",
            "-V",
            "-p",
            "stdio rpath wpath cpath",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    assert_ne!(
        o.status.code(),
        Some(0),
        "the write succeeded: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "");

    // The groups the command has are nobody's own.
    let o = pledge_under(
        &["--groups", "0,4"],
        &["-u", "65534", "-g", "65534", "-V", "--", "id", "-G"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let groups: Vec<&str> = out.split_whitespace().collect();
    assert!(
        !groups.contains(&"0") && !groups.contains(&"4"),
        "{groups:?}"
    );
}

/// The Cap* lines of `/proc/self/status` as the sandboxed command sees them.
fn caps_of(wrapper: &[&str], identity: &[&str]) -> Vec<(String, u64)> {
    let mut args: Vec<&str> = identity.to_vec();
    args.extend(["-V", "-p", "stdio rpath", "--", "cat", "/proc/self/status"]);
    let o = pledge_under(wrapper, &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let v = u64::from_str_radix(v.trim(), 16).ok()?;
            k.starts_with("Cap").then(|| (k.to_string(), v))
        })
        .collect()
}

#[test]
fn inheritable_and_ambient_capabilities_do_not_reach_the_command() {
    skip_unless!(is_root(), "needs root (capabilities, -u/-g)");
    skip_unless!(
        setpriv_available(),
        "no setpriv (util-linux) to set the caller's caps"
    );
    let wrapper = [
        "--inh-caps",
        "+net_bind_service,+chown",
        "--ambient-caps",
        "+net_bind_service",
    ];
    // As nobody: nothing at all.
    let caps = caps_of(&wrapper, &["-u", "65534", "-g", "65534"]);
    assert_eq!(caps.len(), 5, "{caps:?}");
    for (k, v) in &caps {
        assert_eq!(*v, 0, "{k} of a nobody command is {v:#x}: {caps:?}");
    }
    // As root (no -u): no inheritable or ambient capability, an empty bounding set.
    let caps = caps_of(&wrapper, &[]);
    for (k, v) in &caps {
        if k != "CapPrm" && k != "CapEff" {
            assert_eq!(*v, 0, "{k} of a root command is {v:#x}: {caps:?}");
        }
    }
}
