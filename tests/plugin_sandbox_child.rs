//! The built-in sandbox is installed in the task child itself: nothing that reads the task's
//! environment runs between the identity switch and the sandbox. Driven through the built
//! plugin over gRPC. Needs root and a cgroup v2 mount (and `cc` for the preload library);
//! skips with a printed reason otherwise.

mod common;

use std::path::Path;

use common::tasks::*;

/// A preload library whose constructor appends a line to `$MARK_IN` and to `$MARK_OUT`.
const PAYLOAD_C: &str = r#"
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
static void mark(const char *var) {
    const char *p = getenv(var);
    if (!p) return;
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0666);
    if (fd >= 0) { (void)write(fd, "ran\n", 4); close(fd); }
}
__attribute__((constructor)) static void payload(void) {
    mark("MARK_IN");
    mark("MARK_OUT");
}
"#;

/// Builds the payload library at `so`; None (with the reason printed) without a C compiler.
fn build_payload(so: &Path) -> Option<()> {
    let src = so.with_extension("c");
    std::fs::write(&src, PAYLOAD_C).unwrap();
    match std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(so)
        .arg(&src)
        .status()
    {
        Ok(s) if s.success() => Some(()),
        Ok(s) => {
            eprintln!("SKIP: cc failed to build the preload library ({s})");
            None
        }
        Err(e) => {
            eprintln!("SKIP: no C compiler `cc` to build the preload library: {e}");
            None
        }
    }
}

#[tokio::test]
async fn ld_preload_from_the_job_env_runs_only_inside_the_sandbox() {
    require_host!();
    let alloc = Alloc::new("inchild");
    let task_dir = alloc.path().join("preload");
    std::fs::create_dir_all(&task_dir).unwrap();
    let so = task_dir.join("x.so");
    if build_payload(&so).is_none() {
        return;
    }
    // Outside the unveil set, but writable by the task user: only Landlock can stop the write.
    let outside = tempfile::Builder::new()
        .prefix("inchild-outside")
        .tempdir()
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mark_in = task_dir.join("marker-in");
    let mark_out = outside.path().join("marker-out");

    let plugin = plugin(&alloc).await;
    let unveil = format!("rwc:{}", task_dir.display());
    let mut task = alloc.task_unveiling(
        "preload",
        "/bin/true",
        &[],
        "stdio rpath wpath cpath",
        &[&unveil],
    );
    for (k, v) in [
        ("LD_PRELOAD", so.display().to_string()),
        ("MARK_IN", mark_in.display().to_string()),
        ("MARK_OUT", mark_out.display().to_string()),
    ] {
        task.env.insert(k.into(), v);
    }
    let (id, r) = run_to_exit(&plugin, task).await;
    assert_eq!(r.exit_code, 0, "{r:?}");
    destroy(&plugin, &id).await;
    plugin.shutdown().await;

    // The payload ran (the command's own loader honours LD_PRELOAD) ...
    let ran = std::fs::read_to_string(&mark_in).unwrap_or_default();
    assert!(!ran.is_empty(), "the preload payload never ran");
    // ... and only inside the sandbox: no process wrote outside the unveil set.
    assert!(
        !mark_out.exists(),
        "the preload payload ran outside the sandbox (it wrote {})",
        mark_out.display()
    );
}

fn setpriv_available() -> bool {
    std::process::Command::new("setpriv")
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The Cap* lines of a `/proc/self/status` dump, as numbers.
fn cap_lines(status: &str) -> Vec<(String, u64)> {
    status
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let v = u64::from_str_radix(v.trim(), 16).ok()?;
            k.starts_with("Cap").then(|| (k.to_string(), v))
        })
        .collect()
}

#[tokio::test]
async fn a_nobody_task_has_only_its_own_groups_and_no_capabilities() {
    require_host!();
    if !setpriv_available() {
        eprintln!("SKIP: no setpriv (util-linux) to give the plugin groups and capabilities");
        return;
    }
    let alloc = Alloc::new("inchild");
    // root:root 0660: only uid 0 and members of group 0 may write it.
    let file = alloc.path().join("root-only");
    std::fs::write(&file, "").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o660)).unwrap();
    std::os::unix::fs::chown(&file, Some(0), Some(0)).unwrap();
    // A plugin started by a root parent with groups 0 and 4 and inheritable/ambient caps.
    let plugin = plugin_under(
        &alloc,
        &[
            "setpriv",
            "--groups",
            "0,4",
            "--inh-caps",
            "+net_bind_service,+chown",
            "--ambient-caps",
            "+net_bind_service",
            "--",
        ],
    )
    .await;
    let script = format!(
        "id -G; cat /proc/self/status; echo pwned >> {} && echo WROTE",
        file.display()
    );
    let unveil = format!("rw:{}", file.display());
    let (id, r) = run_to_exit(
        &plugin,
        alloc.task_unveiling(
            "who",
            "sh",
            &["-c", &script],
            "stdio rpath wpath cpath proc exec",
            &["rx:/usr/bin", "rx:/bin", "r:/proc", &unveil],
        ),
    )
    .await;
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
    let out = alloc.out("who");
    let err = std::fs::read_to_string(alloc.path().join("who.stderr")).unwrap_or_default();
    assert_ne!(r.exit_code, 0, "{r:?} {out} {err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(!out.contains("WROTE"), "{out}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "");
    let groups: Vec<&str> = out.lines().next().unwrap_or("").split(' ').collect();
    assert!(
        !groups.contains(&"0") && !groups.contains(&"4"),
        "{groups:?}"
    );
    let caps = cap_lines(&out);
    assert_eq!(caps.len(), 5, "{out}");
    for (k, v) in &caps {
        assert_eq!(*v, 0, "{k} of a nobody task is {v:#x}: {caps:?}");
    }
}

/// A plugin whose config allows `allow_caps`.
async fn plugin_allowing(alloc: &Alloc, allow_caps: &[&str]) -> common::Plugin {
    let plugin = common::Plugin::start(&[]).await;
    let state_dir = alloc.state.path().display().to_string();
    plugin
        .base()
        .set_config(common::set_config(
            common::msgpack(&[
                ("state_dir", common::V::S(&state_dir)),
                ("allow_caps", common::V::L(allow_caps)),
            ]),
            true,
        ))
        .await
        .expect("SetConfig");
    plugin
}

fn http_task(alloc: &Alloc, cap_add: &[&str]) -> common::pb::drivers::TaskConfig {
    let dir = alloc.path().join("web");
    std::fs::create_dir_all(&dir).unwrap();
    let unveil = format!("r:{}", dir.display());
    let dir_s = dir.display().to_string();
    let args = [
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        "--directory",
        &dir_s,
        "80",
    ];
    let mut t = alloc.task_unveiling(
        "web",
        "python3",
        &args,
        "stdio rpath inet",
        &["r:/etc/mime.types", &unveil],
    );
    t.msgpack_driver_config = common::msgpack(&[
        ("command", common::V::S("python3")),
        ("args", common::V::L(&args)),
        ("promises", common::V::S("stdio rpath inet")),
        ("unveil", common::V::L(&["r:/etc/mime.types", &unveil])),
        ("cap_add", common::V::L(cap_add)),
    ]);
    // Port 80 is the task's allocated port: with Landlock network rules a task binds only those.
    t.resources = Some(common::pb::drivers::Resources {
        ports: vec![common::pb::drivers::PortMapping {
            label: "http".into(),
            value: 80,
            to: 0,
            host_ip: "127.0.0.1".into(),
        }],
        ..Default::default()
    });
    t
}

#[tokio::test]
async fn a_nobody_task_binds_port_80_with_an_allowed_cap_add() {
    require_host!();
    if std::net::TcpStream::connect("127.0.0.1:80").is_ok() {
        eprintln!("SKIP: something already listens on 127.0.0.1:80");
        return;
    }
    let alloc = Alloc::new("inchild");
    // Not in allow_caps (the default): StartTask is refused, naming the cap and the option.
    let plugin = plugin(&alloc).await;
    let e = plugin
        .driver()
        .start_task(common::pb::drivers::StartTaskRequest {
            task: Some(http_task(&alloc, &["net_bind_service"])),
        })
        .await
        .expect_err("a cap outside allow_caps is refused");
    assert!(
        e.message().contains("`net_bind_service`") && e.message().contains("`allow_caps`"),
        "{}",
        e.message()
    );
    plugin.shutdown().await;

    let plugin = plugin_allowing(&alloc, &["net_bind_service"]).await;
    let id = start(&plugin, http_task(&alloc, &["CAP_NET_BIND_SERVICE"]))
        .await
        .config
        .unwrap()
        .id;
    let mut page = String::new();
    eventually("python3 serves on 127.0.0.1:80", || {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect("127.0.0.1:80") else {
            return false;
        };
        let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
        page.clear();
        let _ = s.read_to_string(&mut page);
        !page.is_empty()
    })
    .await;
    assert!(page.contains("Directory listing"), "{page}");
    stop(&plugin, &id, "SIGTERM", std::time::Duration::from_secs(5)).await;
    destroy(&plugin, &id).await;
    plugin.shutdown().await;
}

/// Under `stdio`, kill/tgkill reach only the process itself. The task child's filter is built
/// by the supervisor before the fork: "self" must be the child's PID (put in by the child),
/// not the supervisor's (PID 1 of the task's namespace), which the task must not signal.
#[tokio::test]
async fn stdio_kill_reaches_the_task_itself_not_its_supervisor() {
    require_host!();
    const PROBE: &str = env!("CARGO_BIN_EXE_pledge-probe");
    let alloc = Alloc::new("inchild");
    let plugin = plugin(&alloc).await;
    let dir = Path::new(PROBE).parent().unwrap().display().to_string();
    let unveil = format!("rx:{dir}");
    let mut outs = Vec::new();
    for (name, op) in [
        ("self", &["kill-self"][..]),
        ("sup", &["kill", "1", "0"][..]),
    ] {
        let (id, _r) = run_to_exit(
            &plugin,
            alloc.task_unveiling(name, PROBE, op, "stdio", &[&unveil]),
        )
        .await;
        destroy(&plugin, &id).await;
        outs.push(alloc.out(name));
    }
    plugin.shutdown().await;
    assert!(outs[0].starts_with("OK"), "kill(getpid(), 0): {}", outs[0]);
    assert!(outs[1].starts_with("EPERM"), "kill(1, 0): {}", outs[1]);
}

/// With an external `pledge_executable` the launcher runs with the task's environment before it
/// sandboxes anything (pledge.com passes its own environment on to the command). A job's loader
/// variables must therefore not reach it: StartTask refuses them, naming the variable.
#[tokio::test]
async fn ld_preload_is_refused_with_an_external_launcher() {
    require_host!();
    let alloc = Alloc::new("inchild");
    let task_dir = alloc.path().join("preload");
    std::fs::create_dir_all(&task_dir).unwrap();
    let so = task_dir.join("x.so");
    if build_payload(&so).is_none() {
        return;
    }
    // Our own `pledge` mode as the operator's launcher: a dynamically linked program, like a
    // pledge.com built against glibc would be.
    let bin_dir = tempfile::tempdir().unwrap();
    let launcher = bin_dir.path().join("pledge");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_nomad-pledge-driver"), &launcher).unwrap();
    let outside = tempfile::Builder::new()
        .prefix("inchild-outside")
        .tempdir()
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mark_out = outside.path().join("marker-out");

    let plugin = common::Plugin::start(&[]).await;
    let state_dir = alloc.state.path().display().to_string();
    let exe = launcher.display().to_string();
    plugin
        .base()
        .set_config(common::set_config(
            common::msgpack(&[
                ("state_dir", common::V::S(&state_dir)),
                ("pledge_executable", common::V::S(&exe)),
            ]),
            true,
        ))
        .await
        .expect("SetConfig");
    let unveil = format!("rwc:{}", task_dir.display());
    let mut task = alloc.task_unveiling(
        "preload",
        "/bin/true",
        &[],
        "stdio rpath wpath cpath",
        &[&unveil],
    );
    for (k, v) in [
        ("LD_PRELOAD", so.display().to_string()),
        ("MARK_OUT", mark_out.display().to_string()),
    ] {
        task.env.insert(k.into(), v);
    }
    let err = plugin
        .driver()
        .start_task(common::pb::drivers::StartTaskRequest { task: Some(task) })
        .await
        .expect_err("StartTask must refuse LD_PRELOAD with an external launcher");
    plugin.shutdown().await;
    assert!(
        err.message().contains("task env `LD_PRELOAD`")
            && err.message().contains("pledge_executable"),
        "{}",
        err.message()
    );
    assert!(
        !mark_out.exists(),
        "the preload payload ran in the launcher, before the sandbox"
    );
}
