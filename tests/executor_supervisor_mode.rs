//! The internal supervisor mode refuses to run without a valid plan (and, as an integration
//! test, makes cargo build the binary that the executor's unit tests re-execute).

use std::process::Command;

#[test]
fn supervisor_mode_without_a_plan_fails_clearly() {
    let exe = env!("CARGO_BIN_EXE_nomad-pledge-driver");
    let out = Command::new(exe).arg("__supervise").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing plan path"));

    let out = Command::new(exe)
        .args(["__supervise", "/nonexistent/plan.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the supervisor plan"));
}
