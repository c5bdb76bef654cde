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

#[tokio::test]
async fn many_concurrent_long_lived_streams_on_one_connection() {
    let plugin = Plugin::start(&[]).await;
    let mut streams = Vec::new();
    for _ in 0..150 {
        let mut driver = plugin.driver();
        let mut fp = driver
            .fingerprint(pb::drivers::FingerprintRequest {})
            .await
            .unwrap()
            .into_inner();
        // Each stream delivers its first message while all earlier ones stay open.
        fp.next().await.unwrap().unwrap();
        let events = driver
            .task_events(pb::drivers::TaskEventsRequest {})
            .await
            .unwrap()
            .into_inner();
        streams.push((fp, events));
    }
    // Unary calls still go through with 300 open streams on the same HTTP/2 connection.
    plugin
        .base()
        .plugin_info(pb::base::PluginInfoRequest {})
        .await
        .unwrap();
    for (fp, ev) in streams.iter_mut() {
        assert!(futures::poll!(fp.next()).is_pending());
        assert!(futures::poll!(ev.next()).is_pending());
    }
    let (status, _) = plugin.shutdown().await;
    assert!(status.success());
}

#[tokio::test]
async fn broken_stderr_pipe_does_not_kill_the_plugin() {
    use std::process::Stdio;
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(BIN)
        .env(COOKIE_KEY, COOKIE_VALUE)
        .env("NOMAD_PLEDGE_DRIVER_LOG_LEVEL", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(PATIENCE, stdout.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let socket = parse_handshake(&line);
    // The agent "dies": the read end of our stderr goes away.
    drop(child.stderr.take());
    let channel = connect(socket.clone()).await;
    let mut base = pb::base::base_plugin_client::BasePluginClient::new(channel.clone());
    // Every call logs (trace level); each write now fails with EPIPE.
    for _ in 0..20 {
        base.plugin_info(pb::base::PluginInfoRequest {})
            .await
            .unwrap();
        base.set_config(pb::base::SetConfigRequest::default())
            .await
            .unwrap();
    }
    pb::plugin::grpc_controller_client::GrpcControllerClient::new(channel)
        .shutdown(pb::plugin::Empty {})
        .await
        .unwrap();
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "plugin must exit cleanly, got {status:?}");
    assert!(!socket.exists());
}
