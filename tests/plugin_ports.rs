//! Landlock TCP port rules through the built plugin: a task with TCP promises may bind only the
//! ports Nomad allocated to it, `connect_ports` limits where it connects, and where Landlock has
//! no network rules a task event says so. Needs root, a cgroup v2 mount and Landlock ABI ≥ 4
//! (the not-enforced case simulates ABI 3); skips with a printed reason otherwise.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::pb::drivers::{PortMapping, Resources, TaskConfig, TaskEventsRequest};
use common::tasks::*;
use common::*;
use futures::StreamExt;

const PROBE: &str = env!("CARGO_BIN_EXE_pledge-probe");

/// The kernel's Landlock ABI as the launcher reports it (0 = none).
fn landlock_abi() -> i32 {
    let o = std::process::Command::new(BIN)
        .args(["pledge", "-T", "unveil"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    out.lines()
        .next()
        .and_then(|l| l.strip_prefix("landlock: available, ABI "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A probe task running `op args` with `promises`, the group's `ports` allocated to it and
/// `connect_ports` (when given) in its config.
fn probe_task(
    alloc: &Alloc,
    name: &str,
    op: &[&str],
    ports: &[u16],
    connect_ports: Option<&[&str]>,
) -> TaskConfig {
    let mut t = alloc.task(name, PROBE, op, "stdio rpath inet");
    let dir = Path::new(PROBE).parent().unwrap().display().to_string();
    let unveil = [format!("rx:{dir}")];
    let unveil: Vec<&str> = unveil.iter().map(String::as_str).collect();
    let mut fields = vec![
        ("command", V::S(PROBE)),
        ("args", V::L(op)),
        ("promises", V::S("stdio rpath inet")),
        ("unveil", V::L(&unveil)),
    ];
    if let Some(c) = connect_ports {
        fields.push(("connect_ports", V::L(c)));
    }
    t.msgpack_driver_config = msgpack(&fields);
    t.resources = Some(Resources {
        ports: ports
            .iter()
            .map(|&p| PortMapping {
                label: format!("p{p}"),
                value: i32::from(p),
                to: 0,
                host_ip: "127.0.0.1".into(),
            })
            .collect(),
        ..Default::default()
    });
    t
}

macro_rules! require_landlock_net {
    () => {
        require_host!();
        let abi = landlock_abi();
        if abi < 4 {
            eprintln!("SKIP: landlock ABI {abi} has no network rules (needs 4, Linux 6.7)");
            return;
        }
    };
}

#[tokio::test]
async fn tasks_bind_only_their_allocated_ports() {
    require_landlock_net!();
    let alloc = Alloc::new("ports");
    let plugin = plugin(&alloc).await;
    let (allocated, other) = (free_port(), free_port());
    let a = allocated.to_string();
    let o = other.to_string();

    // The allocated port: it listens, and a client gets through.
    let id = start(
        &plugin,
        probe_task(&alloc, "ok", &["serve", &a], &[allocated], None),
    )
    .await
    .config
    .unwrap()
    .id;
    eventually("the task listens", || alloc.out("ok").starts_with("OK")).await;
    TcpStream::connect(("127.0.0.1", allocated)).expect("the allocated port is served");
    let r = wait(&plugin, &id).await;
    assert_eq!(r.exit_code, 0, "{}", alloc.out("ok"));
    destroy(&plugin, &id).await;

    // Another port: bind fails with EACCES, and nothing listens there.
    let t = probe_task(&alloc, "no", &["serve", &o], &[allocated], None);
    let (id, r) = run_to_exit(&plugin, t).await;
    assert_eq!(alloc.out("no").trim(), "EACCES", "exit {r:?}");
    assert!(
        TcpStream::connect_timeout(&([127, 0, 0, 1], other).into(), Duration::from_secs(2))
            .is_err(),
        "something listens on the refused port {other}"
    );
    destroy(&plugin, &id).await;

    // No ports allocated at all: no TCP bind.
    let (id, _) = run_to_exit(
        &plugin,
        probe_task(&alloc, "none", &["bind", &a], &[], None),
    )
    .await;
    assert_eq!(alloc.out("none").trim(), "EACCES");
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}

#[tokio::test]
async fn connect_ports_limit_outgoing_connections() {
    require_landlock_net!();
    let alloc = Alloc::new("ports");
    let plugin = plugin(&alloc).await;
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let range = format!("{}-{}", port.saturating_sub(1), port);
    let cases: [(&str, Option<&[&str]>, &str); 3] = [
        ("unset", None, "OK"),
        ("listed", Some(&["1", &range]), "OK"),
        ("other", Some(&["1"]), "EACCES"),
    ];
    for (name, connect, want) in cases {
        let t = probe_task(&alloc, name, &["connect", &addr], &[], connect);
        let (id, _) = run_to_exit(&plugin, t).await;
        assert_eq!(alloc.out(name).trim(), want, "{name}");
        destroy(&plugin, &id).await;
    }
    plugin.shutdown().await;
}

/// Without Landlock network rules (simulated: the plugin's debug-build test hook caps the ABI
/// at 3) the task runs unrestricted and a task event says so.
#[tokio::test]
async fn without_landlock_net_a_task_event_says_ports_are_not_enforced() {
    require_host!();
    if !cfg!(debug_assertions) {
        eprintln!("SKIP: release builds ignore PLEDGE_TEST_LANDLOCK_ABI");
        return;
    }
    let alloc = Alloc::new("ports");
    let plugin = Plugin::start(&[("PLEDGE_TEST_LANDLOCK_ABI", "3")]).await;
    let state_dir = alloc.state.path().display().to_string();
    plugin
        .base()
        .set_config(set_config(
            msgpack(&[("state_dir", V::S(&state_dir))]),
            true,
        ))
        .await
        .expect("SetConfig");
    let mut events = plugin
        .driver()
        .task_events(TaskEventsRequest {})
        .await
        .expect("TaskEvents")
        .into_inner();
    let p = free_port().to_string();
    let t = probe_task(&alloc, "open", &["bind", &p], &[], None);
    let (id, _) = run_to_exit(&plugin, t).await;
    assert_eq!(alloc.out("open").trim(), "OK", "not restricted");
    // Other events may come first (e.g. cgroup controllers missing on this host).
    let event = tokio::time::timeout(PATIENCE, async {
        loop {
            let e = events.next().await.expect("the stream stays open").unwrap();
            if e.message.contains("TCP port") {
                break e;
            }
        }
    })
    .await
    .expect("the port event in time");
    assert_eq!(event.task_id, id);
    assert!(
        event.message.contains("TCP port restriction")
            && event.message.contains("is not enforced")
            && event.message.contains("ABI is 3"),
        "{}",
        event.message
    );
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}
