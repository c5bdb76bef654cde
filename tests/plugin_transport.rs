//! go-plugin transport of the built binary: cookie check, handshake, health, infrastructure
//! services, hclog log format, shutdown.

mod common;

use common::*;
use futures::StreamExt;

#[test]
fn without_cookie_explains_and_exits_1() {
    for cookie in [None, Some("wrong")] {
        let mut cmd = std::process::Command::new(BIN);
        cmd.env_remove(COOKIE_KEY);
        if let Some(c) = cookie {
            cmd.env(COOKIE_KEY, c);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "cookie {cookie:?}");
        assert!(
            out.stdout.is_empty(),
            "stdout must stay empty: {:?}",
            out.stdout
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Nomad task-driver plugin"), "{err}");
        assert!(err.contains("plugin_dir"), "{err}");
        assert!(err.contains(COOKIE_KEY), "{err}");
    }
}

#[tokio::test]
async fn handshake_health_and_shutdown() {
    let plugin = Plugin::start(&[]).await;
    let meta = std::fs::metadata(plugin.socket.parent().unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);

    let resp = plugin
        .health()
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resp.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // stdio: a stream that stays open (no message, no end) while we do other calls.
    let mut stdio = pb::plugin::grpc_stdio_client::GrpcStdioClient::new(plugin.channel.clone())
        .stream_stdio(())
        .await
        .unwrap()
        .into_inner();
    // broker: accepted and ignored.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut broker = pb::plugin::grpc_broker_client::GrpcBrokerClient::new(plugin.channel.clone())
        .start_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(pb::plugin::ConnInfo {
        service_id: 1,
        network: "unix".into(),
        address: "/nonexistent".into(),
        knock: None,
    })
    .await
    .unwrap();
    // Both streams are still open after another round trip.
    plugin
        .health()
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .unwrap();
    assert!(futures::poll!(stdio.next()).is_pending());
    assert!(futures::poll!(broker.next()).is_pending());

    let extra = plugin.extra_stdout.clone();
    let stderr = plugin.stderr.clone();
    let (status, socket) = plugin.shutdown().await;
    assert!(
        status.success(),
        "exit status {status:?}, stderr {:?}",
        stderr.lock().unwrap()
    );
    assert!(!socket.exists(), "socket {} removed", socket.display());
    assert!(!socket.parent().unwrap().exists(), "socket dir removed");
    assert!(
        extra.lock().unwrap().is_empty(),
        "nothing on stdout after the handshake"
    );
}

#[tokio::test]
async fn serving_continues_after_a_client_disconnects() {
    let plugin = Plugin::start(&[]).await;
    {
        let other = connect(plugin.socket.clone()).await;
        tonic_health::pb::health_client::HealthClient::new(other)
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .unwrap();
    } // dropped: that connection closes
    let again = connect(plugin.socket.clone()).await;
    tonic_health::pb::health_client::HealthClient::new(again)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
    let (status, _) = plugin.shutdown().await;
    assert!(status.success());
}

#[tokio::test]
async fn sigint_is_ignored_and_sigterm_cleans_up() {
    let plugin = Plugin::start(&[]).await;
    let pid = nix::unistd::Pid::from_raw(plugin.child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    // Still serving after SIGINT.
    plugin
        .health()
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let mut plugin = plugin;
    let status = tokio::time::timeout(PATIENCE, plugin.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!plugin.socket.exists());
}

#[tokio::test]
async fn stderr_is_hclog_json() {
    let plugin = Plugin::start(&[("NOMAD_PLEDGE_DRIVER_LOG_LEVEL", "debug")]).await;
    let stderr = plugin.stderr.clone();
    let (status, _) = plugin.shutdown().await;
    assert!(status.success());
    let lines = stderr.lock().unwrap().clone();
    assert!(
        lines.len() >= 2,
        "expected start and stop records: {lines:?}"
    );
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let level = v["@level"].as_str().expect("@level string");
        assert!(
            ["trace", "debug", "info", "warn", "error"].contains(&level),
            "{line}"
        );
        assert!(v["@message"].is_string(), "{line}");
        assert!(v["@module"].is_string(), "{line}");
        let ts = v["@timestamp"].as_str().expect("@timestamp string");
        // 2006-01-02T15:04:05.000000Z
        assert_eq!(ts.len(), 27, "{ts}");
        assert_eq!(&ts[19..20], ".", "{ts}");
        assert!(ts[20..26].bytes().all(|b| b.is_ascii_digit()), "{ts}");
        assert!(ts.ends_with('Z'), "{ts}");
    }
    assert!(lines.iter().any(|l| l.contains("plugin serving")));
}
