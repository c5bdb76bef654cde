//! Error messages through the built plugin, as Nomad shows them: each says what failed, the
//! cause and the fix exactly once (errors return their cause from `source()` and do not print
//! it; the gRPC status and the exit result join the chain once, see `src/errors.rs`). A failed
//! exec through the exit result: `plugin_lifecycle::sandbox_failures_are_reported`.

mod common;

use common::pb::base::SetConfigRequest;
use common::tasks::*;
use common::*;

/// Asserts that `piece` occurs exactly once in `message`.
fn once(message: &str, piece: &str) {
    assert_eq!(
        message.matches(piece).count(),
        1,
        "want {piece:?} exactly once in {message:?}"
    );
}

async fn set_config_error(plugin: &Plugin, fields: &[(&str, V<'_>)]) -> String {
    let req: SetConfigRequest = set_config(msgpack(fields), true);
    let e = plugin
        .base()
        .set_config(req)
        .await
        .expect_err("SetConfig must refuse the config");
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());
    e.message().to_string()
}

#[tokio::test]
async fn a_bad_plugin_config_gives_the_field_and_the_cause_once() {
    let plugin = Plugin::start(&[]).await;
    let e = set_config_error(&plugin, &[("log_level", V::S("loud"))]).await;
    assert_eq!(
        e,
        "plugin config: `log_level`: unknown log level `loud`: use one of trace, debug, info, warn, error"
    );
    let e = set_config_error(&plugin, &[("denied_host_uids", V::S("0-x"))]).await;
    once(&e, "plugin config: `denied_host_uids`: ");
    once(&e, "`0-x` is not an id or an id range");
    plugin.shutdown().await;
}

#[tokio::test]
async fn a_bad_task_config_gives_the_field_and_the_cause_once() {
    require_host!();
    let alloc = Alloc::new("errors");
    let plugin = plugin(&alloc).await;
    let refused = |config: Vec<u8>| {
        let mut task = alloc.task("bad", "true", &[], "stdio");
        task.msgpack_driver_config = config;
        refused(&plugin, task)
    };

    let e = refused(msgpack(&[
        ("command", V::S("true")),
        ("ulimit", V::M(&[("nofiles", "1")])),
    ]))
    .await;
    assert!(
        e.starts_with(
            "task config: `ulimit` `nofiles = \"1\"`: `nofiles` is not a resource; use one of "
        ),
        "{e}"
    );
    once(&e, "task config");
    once(&e, "is not a resource");

    let e = refused(msgpack(&[
        ("command", V::S("true")),
        ("connect_ports", V::L(&["443", "9-1"])),
    ]))
    .await;
    assert!(
        e.starts_with("task config: `connect_ports[1]`: `9-1` is not a TCP port or port range"),
        "{e}"
    );
    once(&e, "is not a TCP port");

    let e = refused(
        alloc
            .task("missing", "/nonexistent/program", &[], "stdio")
            .msgpack_driver_config,
    )
    .await;
    once(&e, "/nonexistent/program");
    once(&e, "No such file or directory");
    plugin.shutdown().await;
}
