//! BasePlugin and Driver services of the built binary, driven through tonic clients exactly as a
//! Nomad client would after the handshake.

mod common;

use common::pb::base::{ConfigSchemaRequest, PluginInfoRequest, PluginType};
use common::pb::drivers::{
    fingerprint_response::HealthState, CapabilitiesRequest, FingerprintRequest, StartTaskRequest,
    TaskConfig, TaskConfigSchemaRequest, WaitTaskRequest,
};
use common::pb::hclspec::spec::Block;
use common::*;
use futures::StreamExt;

fn object_keys(spec: Option<common::pb::hclspec::Spec>) -> Vec<String> {
    match spec.and_then(|s| s.block) {
        Some(Block::Object(o)) => {
            let mut k: Vec<_> = o.attributes.keys().cloned().collect();
            k.sort();
            k
        }
        other => panic!("expected an object spec, got {other:?}"),
    }
}

#[tokio::test]
async fn plugin_info_and_schemas() {
    let plugin = Plugin::start(&[]).await;
    let info = plugin
        .base()
        .plugin_info(PluginInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.r#type, PluginType::Driver as i32);
    assert_eq!(info.name, "pledge");
    assert_eq!(info.plugin_api_versions, vec!["v0.1.0"]);
    assert_eq!(info.plugin_version, env!("CARGO_PKG_VERSION"));

    let schema = plugin
        .base()
        .config_schema(ConfigSchemaRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        object_keys(schema.spec),
        [
            "allow_caps",
            "allow_ipc_host",
            "allow_learn",
            "allow_negative_oom_score_adj",
            "allow_pid_host",
            "allow_root",
            "allowed_promises",
            "allowed_unveil",
            "cgroup_root",
            "default_unveil",
            "default_user",
            "denied_host_gids",
            "denied_host_uids",
            "landlock_audit",
            "log_level",
            "pids_limit",
            "pledge_executable",
            "require_unveil",
            "seccomp_denials",
            "state_dir",
            "unveil_best_effort",
            "unveil_missing"
        ]
    );
    let task = plugin
        .driver()
        .task_config_schema(TaskConfigSchemaRequest {})
        .await
        .unwrap()
        .into_inner();
    let spec = task.spec.clone();
    assert_eq!(
        object_keys(task.spec),
        [
            "args",
            "cap_add",
            "cap_drop",
            "command",
            "connect_ports",
            "importance",
            "ipc_mode",
            "learn",
            "oom_score_adj",
            "pid_mode",
            "pids_limit",
            "promises",
            "ulimit",
            "unveil",
            "work_dir"
        ]
    );
    let Some(Block::Object(o)) = spec.and_then(|s| s.block) else {
        unreachable!()
    };
    match o.attributes["command"].block.as_ref() {
        Some(Block::Attr(a)) => assert!(a.required && a.r#type == "string"),
        other => panic!("command: {other:?}"),
    }

    let caps = plugin
        .driver()
        .capabilities(CapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .capabilities
        .unwrap();
    assert!(caps.send_signals && caps.exec && caps.dynamic_workload_users);
    assert!(!caps.disable_log_collection && !caps.must_create_network);
    assert_eq!(caps.network_isolation_modes, vec![0, 1]); // HOST, GROUP
    assert_eq!(caps.mount_configs, 0); // ANY_MOUNTS: volumes are bind-mounted
    assert_eq!(caps.fs_isolation, 0); // NONE
    plugin.shutdown().await;
}

#[tokio::test]
async fn set_config_valid_twice_invalid_and_garbage() {
    let plugin = Plugin::start(&[]).await;
    let mut base = plugin.base();
    let all_null = msgpack(&[
        ("pledge_executable", V::Nil),
        ("allow_root", V::Nil),
        ("default_user", V::Nil),
        ("unveil_best_effort", V::Nil),
        ("state_dir", V::Nil),
        ("cgroup_root", V::Nil),
        ("log_level", V::Nil),
    ]);
    // Validation launch: SetConfig twice without nomad_config.
    base.set_config(set_config(all_null.clone(), false))
        .await
        .unwrap();
    base.set_config(set_config(all_null, false)).await.unwrap();
    let valid = msgpack(&[
        ("pledge_executable", V::S("")),
        ("allow_root", V::B(false)),
        ("default_user", V::S("nobody")),
        ("unveil_best_effort", V::B(true)),
        ("state_dir", V::S("/run/nomad-pledge-driver")),
        ("cgroup_root", V::S("")),
        ("log_level", V::S("debug")),
        ("unknown_future_key", V::S("ignored")),
    ]);
    base.set_config(set_config(valid, true)).await.unwrap();

    let bad = msgpack(&[("pledge_executable", V::S("relative/pledge.com"))]);
    let e = base.set_config(set_config(bad, true)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().contains("`pledge_executable`"),
        "{}",
        e.message()
    );

    let bad = msgpack(&[("allow_root", V::S("maybe"))]);
    let e = base.set_config(set_config(bad, true)).await.unwrap_err();
    assert!(e.message().contains("`allow_root`"), "{}", e.message());

    for garbage in [
        vec![0xc1],
        vec![0x85, 0xa1],
        vec![0xff; 64],
        vec![0xdf, 0xff, 0xff, 0xff, 0xff],
    ] {
        let e = base
            .set_config(set_config(garbage, true))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("plugin config"), "{}", e.message());
    }
    // Still alive and serving after all that.
    base.plugin_info(PluginInfoRequest {}).await.unwrap();
    let (status, _) = plugin.shutdown().await;
    assert!(status.success());
}

#[tokio::test]
async fn first_fingerprint_arrives_and_stream_stays_open() {
    let plugin = Plugin::start(&[]).await;
    let mut driver = plugin.driver();
    let mut fp = driver
        .fingerprint(FingerprintRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(PATIENCE, fp.next())
        .await
        .expect("first fingerprint without delay")
        .unwrap()
        .unwrap();
    for key in [
        "driver.pledge.version",
        "driver.pledge.seccomp",
        "driver.pledge.landlock_abi",
    ] {
        assert!(
            first.attributes.contains_key(key),
            "{key} in {:?}",
            first.attributes.keys()
        );
    }
    assert!(
        first.health == HealthState::Healthy as i32
            || first.health == HealthState::Unhealthy as i32
    );
    assert!(!first.health_description.is_empty());
    // The task events stream opens and stays open alongside.
    let mut events = driver
        .task_events(common::pb::drivers::TaskEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    plugin
        .base()
        .plugin_info(PluginInfoRequest {})
        .await
        .unwrap();
    assert!(futures::poll!(fp.next()).is_pending());
    assert!(futures::poll!(events.next()).is_pending());
    let (status, _) = plugin.shutdown().await;
    assert!(status.success());
}

#[tokio::test]
async fn task_rpcs_validate_config_and_ids() {
    let plugin = Plugin::start(&[]).await;
    let mut driver = plugin.driver();
    let e = driver
        .wait_task(WaitTaskRequest {
            task_id: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert!(e.message().contains("`x`"), "{}", e.message());

    let task = |cfg: Vec<u8>| StartTaskRequest {
        task: Some(TaskConfig {
            id: "a/t/1".into(),
            msgpack_driver_config: cfg,
            ..Default::default()
        }),
    };
    let e = driver
        .start_task(task(msgpack(&[
            ("command", V::S("/bin/true")),
            ("importance", V::S("urgent")),
        ])))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("`importance`"), "{}", e.message());
    assert!(!e.details().is_empty(), "RecoverableError detail attached");
    let e = driver
        .start_task(task(msgpack(&[
            ("command", V::S("/bin/true")),
            ("unveil", V::L(&["q:/x"])),
        ])))
        .await
        .unwrap_err();
    assert!(e.message().contains("`unveil[0]`"), "{}", e.message());
    let records = plugin.log_records();
    assert!(!records.is_empty());
    plugin.shutdown().await;
}

#[tokio::test]
async fn log_level_knob_takes_effect() {
    let plugin = Plugin::start(&[]).await;
    let mut driver = plugin.driver();
    // Default level info: the debug record of opening a stream is not written.
    let mut fp = driver
        .fingerprint(FingerprintRequest {})
        .await
        .unwrap()
        .into_inner();
    fp.next().await.unwrap().unwrap();
    plugin
        .base()
        .set_config(set_config(msgpack(&[("log_level", V::S("debug"))]), true))
        .await
        .unwrap();
    let mut fp2 = driver
        .fingerprint(FingerprintRequest {})
        .await
        .unwrap()
        .into_inner();
    fp2.next().await.unwrap().unwrap();
    let stderr = plugin.stderr.clone();
    let (status, _) = plugin.shutdown().await;
    assert!(status.success());
    let lines = stderr.lock().unwrap().clone();
    let opened: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["@message"] == "fingerprint stream opened")
        .collect();
    assert_eq!(
        opened.len(),
        1,
        "only the stream opened after log_level=debug logs: {lines:?}"
    );
    assert_eq!(opened[0]["@level"], "debug");
}
