//! TROUBLESHOOT.md quotes the binary's error messages so that a user can search for what they
//! see. This provokes each quoted message and checks the quote still matches what is printed:
//! a documented text (verbatim in TROUBLESHOOT.md) is a pattern in which `...` and the
//! placeholder words listed with it stand for any text. When a message changes, this fails
//! until TROUBLESHOOT.md follows (and the other way round). The hack/ examples' documented
//! outputs are checked where they are produced: tests/e2e_examples.rs (through `run`) and
//! tests/hack_examples.rs (static).

mod common;

use common::pb::base::SetConfigRequest;
use common::pb::drivers::{StartTaskRequest, TaskConfig};
use common::*;
use std::process::Command;

/// A documented text, its placeholders, and the config fields that provoke it.
type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, V<'a>)]);

fn troubleshoot() -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/TROUBLESHOOT.md"))
        .expect("TROUBLESHOOT.md");
    squash(&text)
}

/// Collapses whitespace runs (the docs wrap lines) and markdown's escaped backticks.
fn squash(s: &str) -> String {
    s.replace("\\`", "`")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `text` contains the pattern's literal pieces in order (placeholders and `...` are
/// wildcards).
fn matches(pattern: &str, placeholders: &[&str], text: &str) -> bool {
    let mut p = pattern.replace("...", "\u{0}");
    // Longest first, so that `N` does not eat the N of `ENTRY`.
    let mut placeholders = placeholders.to_vec();
    placeholders.sort_by_key(|ph| std::cmp::Reverse(ph.len()));
    for ph in placeholders {
        p = p.replace(ph, "\u{0}");
    }
    let mut rest = text;
    for piece in p.split('\u{0}').filter(|s| !s.is_empty()) {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    true
}

/// Asserts that `documented` is quoted in TROUBLESHOOT.md and matches `actual`.
fn check(doc: &str, documented: &str, placeholders: &[&str], actual: &str) {
    let documented = squash(documented);
    assert!(
        doc.contains(&documented),
        "TROUBLESHOOT.md no longer quotes {documented:?} (the binary prints {actual:?})"
    );
    let actual = squash(actual);
    assert!(
        matches(&documented, placeholders, &actual),
        "TROUBLESHOOT.md quotes {documented:?}, but the binary prints {actual:?}"
    );
}

#[test]
fn pattern_matching() {
    assert!(matches("a `X` b ...", &["X"], "pre a `q` b c"));
    assert!(!matches("a `X` b", &["X"], "a `q` c"));
    assert!(matches(
        "`x[N]` `ENTRY`: unknown",
        &["N", "ENTRY"],
        "`x[0]` `e`: unknown"
    ));
}

#[test]
fn the_cookie_message_is_quoted() {
    let o = Command::new(BIN).env_remove(COOKIE_KEY).output().unwrap();
    check(
        &troubleshoot(),
        "...: this is a Nomad task-driver plugin, meant to be started by a Nomad agent, not run directly (NOMAD_PLUGIN_MAGIC_COOKIE is missing or wrong).",
        &[],
        &String::from_utf8_lossy(&o.stderr),
    );
}

async fn set_config_error(plugin: &Plugin, fields: &[(&str, V<'_>)]) -> String {
    let req: SetConfigRequest = set_config(msgpack(fields), true);
    plugin
        .base()
        .set_config(req)
        .await
        .expect_err("SetConfig must refuse the config")
        .message()
        .to_string()
}

#[tokio::test]
async fn plugin_config_errors_are_quoted() {
    let doc = troubleshoot();
    let plugin = Plugin::start(&[]).await;
    let cases: &[Case] = &[
        (
            "plugin config: `FIELD` must be a bool (true or false), got a string",
            &["FIELD"],
            &[("allow_root", V::S("yes"))],
        ),
        (
            "plugin config: `log_level`: unknown log level `X`: use one of trace, debug, info, warn, error",
            &["X"],
            &[("log_level", V::S("loud"))],
        ),
        (
            "plugin config: `state_dir` must be an absolute path, got `X`",
            &["X"],
            &[("state_dir", V::S("relative/dir"))],
        ),
        (
            "plugin config: `default_user` must be a user name or numeric uid, got `X`",
            &["X"],
            &[("default_user", V::S("two words"))],
        ),
        (
            "plugin config: `pledge_executable` PATH: is not an absolute path (...)",
            &["PATH"],
            &[("pledge_executable", V::S("bin/pledge"))],
        ),
        (
            "plugin config: `pledge_executable` PATH: No such file or directory ...",
            &["PATH"],
            &[("pledge_executable", V::S("/nonexistent/pledge.com"))],
        ),
    ];
    for (documented, placeholders, fields) in cases {
        let actual = set_config_error(&plugin, fields).await;
        check(&doc, documented, placeholders, &actual);
    }
    plugin.shutdown().await;
}

fn task(config: Vec<u8>) -> TaskConfig {
    TaskConfig {
        id: "alloc1/docs/00000000".into(),
        name: "docs".into(),
        alloc_id: "alloc1".into(),
        msgpack_driver_config: config,
        ..Default::default()
    }
}

#[tokio::test]
async fn task_config_errors_are_quoted() {
    let doc = troubleshoot();
    let plugin = Plugin::start(&[]).await;
    let cases: &[Case] = &[
        ("task config: `command` is required (...)", &[], &[("args", V::L(&[]))]),
        (
            "task config: `importance` is `X`; use one of lowest, low, normal, high, highest",
            &["X"],
            &[("command", V::S("true")), ("importance", V::S("urgent"))],
        ),
        (
            "task config: `unveil[N]` `ENTRY`: unknown permission `q` (use letters from r, w, x, c); ...",
            &["N", "ENTRY"],
            &[("command", V::S("true")), ("unveil", V::L(&["q:/etc"]))],
        ),
        (
            "task config: `unveil[N]` `ENTRY`: empty path after the permissions; ...",
            &["N", "ENTRY"],
            &[("command", V::S("true")), ("unveil", V::L(&["r:"]))],
        ),
        (
            "task config: `unveil[N]` `ENTRY`: empty permission before `:` (use letters from r, w, x, c); ...",
            &["N", "ENTRY"],
            &[("command", V::S("true")), ("unveil", V::L(&[":/etc"]))],
        ),
        (
            "task config: `promises` `P`: `W` is not a promise; accepted promises: ...",
            &["P", "W"],
            &[("command", V::S("true")), ("promises", V::S("stdio,rpath"))],
        ),
        (
            "task config: `args` must be a list of strings, got a string",
            &[],
            &[("command", V::S("true")), ("args", V::S("-l"))],
        ),
    ];
    for (documented, placeholders, fields) in cases {
        let actual = plugin
            .driver()
            .start_task(StartTaskRequest {
                task: Some(task(msgpack(fields))),
            })
            .await
            .expect_err("StartTask must refuse the config")
            .message()
            .to_string();
        check(&doc, documented, placeholders, &actual);
    }
    plugin.shutdown().await;
}

/// The StartTask checks of `command` and `work_dir` (need root: they run as the task user).
#[tokio::test]
async fn start_task_command_errors_are_quoted() {
    require_host!();
    let doc = troubleshoot();
    let alloc = tasks::Alloc::new("docs");
    let plugin = tasks::plugin(&alloc).await;
    let refuse = |t: TaskConfig| {
        let plugin = &plugin;
        async move {
            plugin
                .driver()
                .start_task(StartTaskRequest { task: Some(t) })
                .await
                .expect_err("StartTask must refuse the task")
                .message()
                .to_string()
        }
    };
    let actual = refuse(alloc.task("typo", "catt", &[], "stdio")).await;
    check(
        &doc,
        "task config: `command` `X` is not an executable file for the task user `U` (uid N) in any directory of the task's PATH: searched DIRS...",
        &["X", "U", "N", "DIRS"],
        &actual,
    );
    let actual = refuse(alloc.task("abs", "/nonexistent/prog", &[], "stdio")).await;
    check(
        &doc,
        "task config: `command` `X`: No such file or directory for the task user `U` (uid N)",
        &["X", "U", "N"],
        &actual,
    );
    let mut t = alloc.task("wd", "true", &[], "stdio");
    t.msgpack_driver_config = msgpack(&[("command", V::S("true")), ("work_dir", V::S("nope"))]);
    let actual = refuse(t).await;
    check(
        &doc,
        "task config: `work_dir` W: does not exist",
        &["W"],
        &actual,
    );
    plugin.shutdown().await;
}

/// `run`'s own errors (the job file is checked before anything runs).
#[test]
fn run_errors_are_quoted() {
    let doc = troubleshoot();
    let dir = tempfile::tempdir().unwrap();
    let job = |name: &str, task_body: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!("job \"j\" {{\n  group \"g\" {{\n    task \"t\" {{\n{task_body}\n    }}\n  }}\n}}\n"),
        )
        .unwrap();
        path.display().to_string()
    };
    let run = |args: &[&str]| {
        let o = Command::new(BIN)
            .arg("run")
            .args(args)
            .env_remove(COOKIE_KEY)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let cases: Vec<(&str, &[&str], String)> = vec![
        (
            "cannot read JOB.hcl: ...",
            &["JOB.hcl"],
            run(&["/nonexistent/job.hcl"]),
        ),
        (
            "the job has no task with `driver = \"pledge\"`",
            &[],
            run(&[&job("exec.hcl", "driver = \"exec\"")]),
        ),
        (
            "... `kill_timeout` = \"soon\" is not a duration",
            &[],
            run(&[&job(
                "kt.hcl",
                "driver = \"pledge\"\nkill_timeout = \"soon\"\nconfig {\ncommand = \"true\"\n}",
            )]),
        ),
        (
            "task \"t\": unsupported argument `X` in config; the pledge driver accepts: ...",
            &["X"],
            run(&[&job(
                "bogus.hcl",
                "driver = \"pledge\"\nconfig {\ncommand = \"true\"\nbogus = 1\n}",
            )]),
        ),
        (
            "plugin config: config `FIELD`: must be a bool, not a string",
            &["FIELD"],
            {
                let conf = dir.path().join("plugin.hcl");
                std::fs::write(&conf, "allow_root = \"yes\"\n").unwrap();
                run(&[
                    &job(
                        "ok.hcl",
                        "driver = \"pledge\"\nconfig {\ncommand = \"true\"\n}",
                    ),
                    "--plugin-config",
                    conf.to_str().unwrap(),
                ])
            },
        ),
        (
            "task \"t\": missing required argument `command` in config",
            &[],
            run(&[&job(
                "nocmd.hcl",
                "driver = \"pledge\"\nconfig {\nargs = []\n}",
            )]),
        ),
    ];
    for (documented, placeholders, actual) in cases {
        check(&doc, documented, placeholders, &actual);
    }
}
