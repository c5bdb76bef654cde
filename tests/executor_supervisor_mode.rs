//! The internal fork server mode refuses to run without the executor's socket on stdin (and,
//! as an integration test, makes cargo build the binary that the executor's unit tests run).

use std::process::{Command, Stdio};

#[test]
fn forkserver_mode_without_the_executor_socket_fails_clearly() {
    let exe = env!("CARGO_BIN_EXE_nomad-pledge-driver");
    let out = Command::new(exe)
        .arg("__forkserver")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stdin is not the executor's socket"),
        "{out:?}"
    );
}

/// The old re-exec'd supervisor mode is gone: supervisors are cloned by the fork server.
#[test]
fn there_is_no_supervisor_mode_to_exec() {
    let exe = env!("CARGO_BIN_EXE_nomad-pledge-driver");
    let out = Command::new(exe).arg("__supervise").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown command"));
}
