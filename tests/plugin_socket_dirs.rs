//! A SIGKILLed plugin cannot remove its socket directory; the next plugin that starts removes
//! it, and never the directory of a plugin that still runs.

mod common;

use common::*;

#[tokio::test]
async fn a_starting_plugin_removes_the_socket_dirs_of_dead_plugins_only() {
    let base = tempfile::tempdir().unwrap();
    let env = [("PLUGIN_UNIX_SOCKET_DIR", base.path().to_str().unwrap())];
    let mut killed = Plugin::start(&env).await;
    let live = Plugin::start(&env).await;
    let killed_dir = killed.socket.parent().unwrap().to_path_buf();
    let live_dir = live.socket.parent().unwrap().to_path_buf();
    killed.child.kill().await.expect("SIGKILL the plugin"); // also reaps it
    assert!(
        killed_dir.exists(),
        "a SIGKILLed plugin leaves its directory"
    );

    let next = Plugin::start(&env).await;
    assert!(
        !killed_dir.exists(),
        "the dead plugin's {} is still there",
        killed_dir.display()
    );
    assert!(live.socket.exists(), "the live plugin's socket was removed");
    // The live plugin still answers on it.
    live.health()
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .expect("the live plugin still serves");
    let next_dir = next.socket.parent().unwrap().to_path_buf();
    live.shutdown().await;
    next.shutdown().await;
    assert!(!live_dir.exists() && !next_dir.exists());
    let left: Vec<_> = std::fs::read_dir(base.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
}
