//! Job features through the built plugin binary, as a Nomad client hands them over: host and
//! CSI volume `mounts` and `devices`, `pids_limit`/`ulimit`/`oom_score_adj`, DNS, and the
//! namespace modes. Tasks run through the built-in launcher (with Landlock, so the automatic
//! unveil rules of volumes are exercised). Needs root and cgroup v2; skips otherwise.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::pb::drivers::{Device, Mount, StartTaskRequest, TaskConfig};
use common::tasks::*;
use common::*;

/// A task config with extra `config {}` fields on top of command/args/promises/unveil.
fn task_with(
    alloc: &Alloc,
    task: &str,
    script: &str,
    promises: &str,
    extra: &[(&str, V)],
) -> TaskConfig {
    let mut cfg = alloc.task_unveiling(task, "sh", &["-c", script], promises, SHELL_TOOLS);
    let args = ["-c", script];
    let mut fields: Vec<(&str, V)> = vec![
        ("command", V::S("sh")),
        ("args", V::L(&args)),
        ("promises", V::S(promises)),
        ("unveil", V::L(SHELL_TOOLS)),
    ];
    for (k, v) in extra {
        let v = match v {
            V::S(s) => V::S(s),
            V::B(b) => V::B(*b),
            V::Nil => V::Nil,
            V::L(l) => V::L(l),
            V::M(m) => V::M(m),
        };
        fields.push((k, v));
    }
    cfg.msgpack_driver_config = msgpack(&fields);
    cfg
}

/// What `task` wrote to stderr.
fn err(alloc: &Alloc, task: &str) -> String {
    std::fs::read_to_string(alloc.path().join(format!("{task}.stderr"))).unwrap_or_default()
}

async fn start_err(plugin: &Plugin, task: TaskConfig) -> String {
    plugin
        .driver()
        .start_task(StartTaskRequest { task: Some(task) })
        .await
        .expect_err("StartTask must refuse")
        .message()
        .to_string()
}

#[tokio::test]
async fn volumes_are_mounted_and_unveiled() {
    require_host!();
    let alloc = Alloc::new("jobs-volumes");
    let plugin = plugin(&alloc).await;
    let vol = tempfile::tempdir().unwrap();
    std::fs::set_permissions(vol.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(vol.path().join("hello"), "rw-volume\n").unwrap();
    let ro = tempfile::tempdir().unwrap();
    std::fs::set_permissions(ro.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(ro.path().join("hello"), "ro-volume\n").unwrap();

    let mut task = task_with(
        &alloc,
        "vol",
        "cat local/vol/hello /srv/hello; echo new > local/vol/new && echo wrote; \
         (echo x > /srv/new) 2>/dev/null || echo ro-refused; echo dev > /dev/null && echo dev-ok",
        "stdio rpath wpath cpath proc exec",
        &[],
    );
    task.mounts = vec![
        Mount {
            task_path: "local/vol".into(),
            host_path: vol.path().display().to_string(),
            readonly: false,
            ..Default::default()
        },
        // An absolute destination that exists on the host (an empty directory on Debian).
        Mount {
            task_path: "/srv".into(),
            host_path: ro.path().display().to_string(),
            readonly: true,
            propagation_mode: "private".into(),
            ..Default::default()
        },
    ];
    task.devices = vec![Device {
        task_path: "/dev/null".into(),
        host_path: "/dev/null".into(),
        cgroup_permissions: "rw".into(),
    }];
    let (id, r) = run_to_exit(&plugin, task).await;
    let out = alloc.out("vol");
    assert_eq!(r.exit_code, 0, "{out}\n{}", err(&alloc, "vol"));
    assert_eq!(out, "rw-volume\nro-volume\nwrote\nro-refused\ndev-ok\n");
    assert_eq!(
        std::fs::read_to_string(vol.path().join("new")).unwrap(),
        "new\n"
    );
    assert!(!ro.path().join("new").exists());
    assert!(
        !Path::new("/srv/hello").exists(),
        "the mount leaked to the host"
    );
    destroy(&plugin, &id).await;

    // An absolute destination that does not exist is refused at StartTask.
    let mut task = task_with(&alloc, "missing", "true", "stdio", &[]);
    task.mounts = vec![Mount {
        task_path: "/nonexistent-pledge-dest".into(),
        host_path: vol.path().display().to_string(),
        ..Default::default()
    }];
    let e = start_err(&plugin, task).await;
    assert!(e.contains("/nonexistent-pledge-dest does not exist"), "{e}");
    plugin.shutdown().await;
}

#[tokio::test]
async fn limits_reach_the_task_and_are_checked() {
    require_host!();
    let alloc = Alloc::new("jobs-limits");
    let plugin = plugin(&alloc).await;
    let task = task_with(
        &alloc,
        "lim",
        "cat /proc/self/oom_score_adj; grep '^Max open files' /proc/self/limits",
        "stdio rpath proc exec",
        &[
            ("ulimit", V::M(&[("nofile", "64:128")])),
            ("oom_score_adj", V::S("250")),
            ("pids_limit", V::S("50")),
        ],
    );
    let (id, r) = run_to_exit(&plugin, task).await;
    let out = alloc.out("lim");
    assert_eq!(r.exit_code, 0, "{out}\n{}", err(&alloc, "lim"));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("250"), "{out}");
    let nofile: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(nofile[3..5], ["64", "128"], "{out}");
    destroy(&plugin, &id).await;

    let negative = task_with(
        &alloc,
        "neg",
        "true",
        "stdio",
        &[("oom_score_adj", V::S("-10"))],
    );
    let e = start_err(&plugin, negative).await;
    assert!(e.contains("allow_negative_oom_score_adj"), "{e}");
    let bad = task_with(
        &alloc,
        "bad",
        "true",
        "stdio",
        &[("ulimit", V::M(&[("files", "1")]))],
    );
    let e = start_err(&plugin, bad).await;
    assert!(e.contains("`files` is not a resource"), "{e}");
    plugin.shutdown().await;
}

#[tokio::test]
async fn dns_config_becomes_the_tasks_resolv_conf() {
    require_host!();
    let Ok(host_resolv) = std::fs::read_to_string("/etc/resolv.conf") else {
        eprintln!("SKIP: the host has no readable /etc/resolv.conf to mount over");
        return;
    };
    let alloc = Alloc::new("jobs-dns");
    let plugin = plugin(&alloc).await;
    // Under `dns` (no unveil of /etc): the promise's implicit rule reaches the mounted file.
    let mut task = task_with(
        &alloc,
        "dns",
        "cat /etc/resolv.conf",
        "stdio rpath dns proc exec",
        &[],
    );
    task.dns = Some(common::pb::drivers::DnsConfig {
        servers: vec!["192.0.2.53".into()],
        searches: vec!["svc.example".into()],
        options: vec!["ndots:2".into()],
    });
    let (id, r) = run_to_exit(&plugin, task).await;
    let out = alloc.out("dns");
    assert_eq!(r.exit_code, 0, "{out}\n{}", err(&alloc, "dns"));
    assert!(
        out.ends_with("nameserver 192.0.2.53\nsearch svc.example\noptions ndots:2\n"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string("/etc/resolv.conf").unwrap(),
        host_resolv,
        "the host's file is untouched"
    );
    destroy(&plugin, &id).await;

    // Without a DNS configuration the task reads the host's file.
    let task = task_with(
        &alloc,
        "hostdns",
        "cat /etc/resolv.conf",
        "stdio rpath dns proc exec",
        &[],
    );
    let (id, r) = run_to_exit(&plugin, task).await;
    assert_eq!(r.exit_code, 0, "{}", err(&alloc, "hostdns"));
    assert_eq!(alloc.out("hostdns"), host_resolv);
    destroy(&plugin, &id).await;

    let mut bad = task_with(&alloc, "baddns", "true", "stdio", &[]);
    bad.dns = Some(common::pb::drivers::DnsConfig {
        servers: vec!["dns.example".into()],
        ..Default::default()
    });
    let e = start_err(&plugin, bad).await;
    assert!(
        e.contains("server `dns.example` is not an IP address"),
        "{e}"
    );
    plugin.shutdown().await;
}

#[tokio::test]
async fn host_namespaces_need_the_plugins_consent() {
    require_host!();
    let alloc = Alloc::new("jobs-ns");
    let plugin = plugin(&alloc).await;
    let task = task_with(
        &alloc,
        "pidhost",
        "true",
        "stdio",
        &[("pid_mode", V::S("host"))],
    );
    let e = start_err(&plugin, task).await;
    assert!(e.contains("allow_pid_host"), "{e}");
    plugin.shutdown().await;

    // Allowed: the task sees the host's PID namespace, and its exit code arrives as usual.
    let plugin = Plugin::start(&[]).await;
    let state_dir = alloc.state.path().display().to_string();
    plugin
        .base()
        .set_config(set_config(
            msgpack(&[
                ("state_dir", V::S(&state_dir)),
                ("allow_pid_host", V::B(true)),
            ]),
            true,
        ))
        .await
        .expect("SetConfig");
    let host_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let task = task_with(
        &alloc,
        "pidhost2",
        "readlink /proc/self/ns/pid; exit 5",
        "stdio rpath proc exec",
        &[("pid_mode", V::S("host"))],
    );
    let (id, r) = run_to_exit(&plugin, task).await;
    assert_eq!(r.exit_code, 5, "{}", err(&alloc, "pidhost2"));
    assert_eq!(
        alloc.out("pidhost2").trim(),
        host_ns.to_str().unwrap(),
        "{}",
        err(&alloc, "pidhost2")
    );
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}
