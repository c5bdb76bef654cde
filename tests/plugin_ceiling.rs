//! The operator's ceiling through the built plugin over gRPC: StartTask and exec sessions are
//! refused beyond `allowed_promises` / `allowed_unveil` / `require_unveil` /
//! `denied_host_uids` / `denied_host_gids` and for sandbox-weakening env vars, and
//! `default_unveil` reaches every task. Refusals need no root; running tasks does (skips with a
//! printed reason otherwise).

mod common;

use common::pb::drivers::{ExecTaskRequest, StartTaskRequest, TaskConfig};
use common::tasks::*;
use common::*;

/// The plugin with `fields` added to the usual test config.
async fn ceiling_plugin(alloc: &Alloc, fields: &[(&str, V<'_>)]) -> Plugin {
    let plugin = Plugin::start(&[]).await;
    set(&plugin, alloc, fields).await;
    plugin
}

async fn set(plugin: &Plugin, alloc: &Alloc, fields: &[(&str, V<'_>)]) {
    let state_dir = alloc.state.path().display().to_string();
    let mut all = vec![("state_dir", V::S(&state_dir))];
    all.extend(fields.iter().map(|(k, v)| (*k, *v)));
    plugin
        .base()
        .set_config(set_config(msgpack(&all), true))
        .await
        .expect("SetConfig");
}

/// StartTask's error message (the task must be refused).
async fn refused(plugin: &Plugin, task: TaskConfig) -> String {
    let e = plugin
        .driver()
        .start_task(StartTaskRequest { task: Some(task) })
        .await
        .expect_err("StartTask must be refused");
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());
    e.message().to_string()
}

#[tokio::test]
async fn start_task_is_held_to_the_ceiling() {
    let alloc = Alloc::new("ceiling");
    let plugin = ceiling_plugin(
        &alloc,
        &[
            ("allowed_promises", V::S("stdio rpath")),
            ("allowed_unveil", V::L(&["rx:/usr", "rwc:/srv/data"])),
        ],
    )
    .await;
    let e = refused(&plugin, alloc.task("p", "true", &[], "stdio rpath inet")).await;
    assert!(
        e.contains("`promises`") && e.contains("`inet`") && e.contains("`allowed_promises`"),
        "{e}"
    );
    let t = alloc.task_unveiling("u", "true", &[], "stdio", &["r:/usr/bin", "r:/etc"]);
    let e = refused(&plugin, t).await;
    assert!(
        e.contains("`unveil[1]`") && e.contains("`r:/etc`") && e.contains("`allowed_unveil`"),
        "{e}"
    );
    let t = alloc.task_unveiling("w", "true", &[], "stdio", &["rwx:/usr/../etc"]);
    let e = refused(&plugin, t).await;
    assert!(e.contains("`allowed_unveil`"), "{e}");
    // A relative entry resolves against the task directory, which is outside the allow-list.
    let t = alloc.task_unveiling("r", "true", &[], "stdio", &["r:local"]);
    let e = refused(&plugin, t).await;
    assert!(e.contains("`allowed_unveil`"), "{e}");
    plugin.shutdown().await;
}

#[tokio::test]
async fn require_unveil_and_denied_ids() {
    let alloc = Alloc::new("ceiling");
    let plugin = ceiling_plugin(
        &alloc,
        &[
            ("require_unveil", V::B(true)),
            ("denied_host_uids", V::S("0-999,65534")),
        ],
    )
    .await;
    let e = refused(&plugin, alloc.task("n", "true", &[], "stdio")).await;
    assert!(e.contains("`require_unveil`"), "{e}");
    // `nobody` (the default user) is 65534.
    let t = alloc.task_unveiling("d", "true", &[], "stdio", &["r:/etc/hosts"]);
    let e = refused(&plugin, t).await;
    assert!(
        e.contains("uid 65534") && e.contains("`denied_host_uids`"),
        "{e}"
    );
    set(&plugin, &alloc, &[("denied_host_gids", V::S("65534"))]).await;
    let t = alloc.task_unveiling("g", "true", &[], "stdio", &["r:/etc/hosts"]);
    let e = refused(&plugin, t).await;
    assert!(
        e.contains("group 65534") && e.contains("`denied_host_gids`"),
        "{e}"
    );
    plugin.shutdown().await;
}

/// Nothing in a job's env can widen the sandbox: the launcher's test hook is refused, and
/// `TMPPATH` (unveiled rwc with `tmppath`) is held to `allowed_unveil`.
#[tokio::test]
async fn the_task_env_cannot_widen_the_sandbox() {
    let alloc = Alloc::new("ceiling");
    let plugin = ceiling_plugin(&alloc, &[("allowed_unveil", V::L(&["rwc:/tmp"]))]).await;
    let mut t = alloc.task("t", "true", &[], "stdio tmppath");
    t.env.insert("TMPPATH".into(), "/".into());
    let e = refused(&plugin, t).await;
    assert!(
        e.contains("`env TMPPATH`") && e.contains("`rwc:/`") && e.contains("`allowed_unveil`"),
        "{e}"
    );
    let mut t = alloc.task("h", "true", &[], "stdio");
    t.env.insert("PLEDGE_TEST_LANDLOCK_ABI".into(), "0".into());
    let e = refused(&plugin, t).await;
    assert!(e.contains("`PLEDGE_TEST_LANDLOCK_ABI`"), "{e}");
    plugin.shutdown().await;
}

/// `default_unveil` reaches the task: a file only the operator unveiled is readable.
#[tokio::test]
async fn default_unveil_is_added_to_every_task() {
    require_host!();
    let alloc = Alloc::new("ceiling");
    let shared = alloc.path().join("operator.txt");
    std::fs::write(&shared, "from the operator\n").unwrap();
    let entry = format!("r:{}", shared.display());
    let path = shared.display().to_string();
    let plugin = ceiling_plugin(&alloc, &[("default_unveil", V::L(&[&entry]))]).await;
    let (_, r) = run_to_exit(&plugin, alloc.task("cat", "cat", &[&path], "stdio rpath")).await;
    assert_eq!(r.exit_code, 0, "{}", alloc.out("cat"));
    assert_eq!(alloc.out("cat"), "from the operator\n");
    // Without it the same task cannot read the file (Landlock is on with implicit rules only).
    set(&plugin, &alloc, &[]).await;
    let (_, r) = run_to_exit(&plugin, alloc.task("cat2", "cat", &[&path], "stdio rpath")).await;
    assert_ne!(r.exit_code, 0, "{}", alloc.out("cat2"));
    plugin.shutdown().await;
}

/// An exec session is checked against the ceiling configured now.
#[tokio::test]
async fn exec_sessions_are_held_to_the_current_ceiling() {
    require_host!();
    let alloc = Alloc::new("ceiling");
    let plugin = ceiling_plugin(&alloc, &[]).await;
    let t = alloc.task_unveiling(
        "s",
        "sh",
        &["-c", "sleep 600"],
        "stdio rpath proc exec",
        SHELL_TOOLS,
    );
    let id = start(&plugin, t).await.config.expect("config").id;
    let exec = |id: String| ExecTaskRequest {
        task_id: id,
        command: vec!["true".into()],
        timeout: None,
    };
    let ok = plugin.driver().exec_task(exec(id.clone())).await;
    assert!(ok.is_ok(), "{ok:?}");
    set(
        &plugin,
        &alloc,
        &[("allowed_promises", V::S("stdio rpath"))],
    )
    .await;
    let e = plugin
        .driver()
        .exec_task(exec(id.clone()))
        .await
        .expect_err("exec beyond the ceiling is refused");
    assert!(
        e.message().contains("`proc`") && e.message().contains("`allowed_promises`"),
        "{}",
        e.message()
    );
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}
