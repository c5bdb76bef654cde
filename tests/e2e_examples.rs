//! End-to-end: every `hack/` example through `nomad-pledge-driver run`, which launches the
//! plugin over the go-plugin handshake and drives it as a Nomad client would. Output and exit
//! status are asserted as `hack/README.md` documents them. Needs root and a cgroup v2 mount;
//! skips with a printed reason otherwise.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nomad-pledge-driver");
/// Only a guard against hanging forever; never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(120);

/// Which host features this machine must have (`NOMAD_PLEDGE_TEST_REQUIRE`).
#[path = "../src/host_features.rs"]
mod host_features;

fn skip_reason() -> Option<String> {
    let root = "needs root (the driver switches users and creates namespaces)";
    if !host_features::present("root", nix::unistd::geteuid().is_root(), root) {
        return Some(root.into());
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let cgroup2 = mountinfo.lines().any(|l| l.contains(" - cgroup2 "));
    if !host_features::present("cgroup2", cgroup2, "no cgroup v2 mount") {
        return Some("no cgroup v2 mount".into());
    }
    None
}

macro_rules! require_host {
    () => {
        if let Some(reason) = skip_reason() {
            eprintln!("SKIP: {reason}");
            return;
        }
    };
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("hack")
        .join(format!("{name}.hcl"))
        .display()
        .to_string()
}

/// Lines a child wrote so far, with a way to wait for one.
#[derive(Clone, Default)]
struct Lines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Lines {
    fn follow(&self, stream: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<()> {
        let me = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let (lock, cv) = &*me.0;
                lock.lock().unwrap().push(line);
                cv.notify_all();
            }
        })
    }

    fn wait_for(&self, what: &str) -> String {
        let (lock, cv) = &*self.0;
        let deadline = Instant::now() + PATIENCE;
        let mut lines = lock.lock().unwrap();
        loop {
            if let Some(l) = lines.iter().find(|l| l.contains(what)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "never saw {what:?}; got {:#?}", *lines);
            lines = cv.wait_timeout(lines, left).unwrap().0;
        }
    }

    fn all(&self) -> Vec<String> {
        self.0 .0.lock().unwrap().clone()
    }
}

/// A running `nomad-pledge-driver run`.
struct Run {
    child: Child,
    stdout: Lines,
    stderr: Lines,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Run {
    fn start(name: &str) -> Run {
        Run::start_file(&example(name), &[])
    }

    /// `run JOB` with extra agent environment.
    fn start_file(job: &str, envs: &[(&str, &str)]) -> Run {
        Run::start_cmd(job, envs, &[])
    }

    /// `run JOB EXTRA...` with extra agent environment.
    fn start_cmd(job: &str, envs: &[(&str, &str)], extra: &[&str]) -> Run {
        let mut child = Command::new(BIN)
            .arg("run")
            .arg(job)
            .args(extra)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nomad-pledge-driver run");
        let (stdout, stderr) = (Lines::default(), Lines::default());
        let readers = vec![
            stdout.follow(child.stdout.take().unwrap()),
            stderr.follow(child.stderr.take().unwrap()),
        ];
        Run {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    /// Ctrl-C, as a user would type it.
    fn interrupt(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
    }

    /// Waits for the run to end; returns its exit code.
    fn finish(mut self) -> (i32, Vec<String>, Vec<String>) {
        self.wait_end()
    }

    fn wait_end(&mut self) -> (i32, Vec<String>, Vec<String>) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("run did not finish; stderr: {:#?}", self.stderr.all());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        (
            status.code().unwrap_or(-1),
            self.stdout.all(),
            self.stderr.all(),
        )
    }
}

impl Drop for Run {
    /// A failed assertion must not leave the example's tasks running: stop them as Ctrl-C would.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.interrupt();
            let deadline = Instant::now() + PATIENCE;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
    }
}

fn run_to_end(name: &str) -> (i32, Vec<String>, Vec<String>) {
    Run::start(name).finish()
}

fn result_line<'a>(stderr: &'a [String], task: &str) -> &'a str {
    let prefix = format!("==> task \"{task}\" exited:");
    stderr
        .iter()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no exit result for {task}; stderr: {stderr:#?}"))
}

#[test]
fn env_shows_the_task_environment() {
    require_host!();
    // As hack/env.hcl and hack/README.md say: the agent's environment reaches the task, less
    // Nomad's deny-list, then the NOMAD_* variables and the job's env {}.
    let (code, out, err) = Run::start_file(
        &example("env"),
        &[
            ("PLEDGE_EXAMPLE_FROM_AGENT", "yes"),
            ("VAULT_TOKEN", "secret"),
            ("GREETING", "from the agent"),
        ],
    )
    .finish();
    assert_eq!(code, 0, "stderr: {err:#?}");
    assert!(
        out.iter().any(|l| l == "PLEDGE_EXAMPLE_FROM_AGENT=yes"),
        "{out:#?}"
    );
    assert!(
        !out.iter().any(|l| l.starts_with("VAULT_TOKEN=")),
        "{out:#?}"
    );
    assert!(
        out.iter().any(|l| l == "GREETING=hello from the job"),
        "the job's env {{}} wins: {out:#?}"
    );
    assert!(out.iter().any(|l| l == "NOMAD_TASK_NAME=env"), "{out:#?}");
    assert!(out.iter().any(|l| l == "USER=nobody"), "{out:#?}");
    let short = out
        .iter()
        .find_map(|l| l.strip_prefix("NOMAD_SHORT_ALLOC_ID="))
        .expect("NOMAD_SHORT_ALLOC_ID");
    assert_eq!(short.len(), 8);
    assert!(!out
        .iter()
        .any(|l| l.starts_with("NOMAD_PLUGIN_MAGIC_COOKIE")));
    assert!(result_line(&err, "env").contains("exit_code=0 signal=0"));
}

#[test]
fn passwd_is_not_unveiled() {
    require_host!();
    let (code, _out, err) = run_to_end("passwd");
    assert_eq!(code, 1, "stderr: {err:#?}");
    assert!(
        err.iter()
            .any(|l| l.contains("/etc/passwd") && l.contains("Permission denied")),
        "{err:#?}"
    );
    assert!(result_line(&err, "cat").contains("exit_code=1"), "{err:#?}");
}

#[test]
fn cgroup_shows_the_task_scope() {
    require_host!();
    let (code, out, err) = run_to_end("cgroup");
    assert_eq!(code, 0, "stderr: {err:#?}");
    let alloc_id = err
        .iter()
        .find_map(|l| l.strip_prefix("==> allocation "))
        .and_then(|l| l.split_whitespace().next())
        .expect("allocation line")
        .to_string();
    let line = out
        .iter()
        .find(|l| l.starts_with("0::/"))
        .expect("cgroup v2 line");
    assert!(
        line.contains(&alloc_id) && line.ends_with(".scope"),
        "{line}"
    );
    // As hack/cgroup.hcl says: one line on a pure cgroup v2 host, plus one per v1 hierarchy
    // on a hybrid host (the task sees the same hierarchies we do).
    let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(out.len(), ours.lines().count(), "{out:#?}");
}

#[test]
fn ps_sees_only_its_own_pid_namespace() {
    require_host!();
    let (code, out, err) = run_to_end("ps");
    assert_eq!(code, 0, "stderr: {err:#?}");
    assert_eq!(out.len(), 3, "header, supervisor, ps: {out:#?}");
    assert!(out[0].contains("PID"), "{out:#?}");
    assert!(out.iter().any(|l| l.contains("ps aux")), "{out:#?}");
}

#[test]
fn workdir_starts_in_the_task_dir() {
    require_host!();
    let (code, out, err) = run_to_end("workdir");
    assert_eq!(code, 0, "stderr: {err:#?}");
    assert!(out.iter().any(|l| l.ends_with("/pwd/local")), "{out:#?}");
}

#[test]
fn curl_fetches_from_a_loopback_sidecar() {
    require_host!();
    let (code, out, err) = run_to_end("curl");
    assert_eq!(code, 0, "stderr: {err:#?}");
    assert!(
        out.iter().any(|l| l.contains("Directory listing for /")),
        "{out:#?}"
    );
    assert!(result_line(&err, "curl").contains("exit_code=0"));
    // The sidecar was stopped once curl was done.
    result_line(&err, "server");
}

#[test]
fn sleep_stops_on_sigterm() {
    require_host!();
    let run = Run::start("sleep");
    run.stderr.wait_for("==> task \"sleep\" started");
    run.interrupt();
    let (code, _out, err) = run.finish();
    assert_eq!(code, 0, "stderr: {err:#?}");
    assert!(result_line(&err, "sleep").contains("signal=15"), "{err:#?}");
}

#[test]
fn ignore_is_killed_after_its_kill_timeout() {
    require_host!();
    let run = Run::start("ignore");
    run.stdout.wait_for("ignoring SIGINT and SIGTERM");
    run.interrupt();
    let (code, _out, err) = run.finish();
    assert_eq!(code, 0, "stderr: {err:#?}");
    assert!(result_line(&err, "ignore").contains("signal=9"), "{err:#?}");
}

#[test]
fn http_serves_on_loopback() {
    require_host!();
    let run = Run::start("http");
    run.stderr.wait_for("==> task \"server\" started");
    let page = fetch("127.0.0.1:8181");
    assert!(page.contains("Directory listing for /"), "{page}");
    run.stderr.wait_for("\"GET / HTTP/1.0\" 200");
    run.interrupt();
    let (code, _out, err) = run.finish();
    assert_eq!(code, 0, "stderr: {err:#?}");
}

#[test]
fn bridge_tasks_share_the_group_netns() {
    require_host!();
    let ip = Command::new("ip").arg("-V").output().is_ok();
    let reason = "iproute2 (`ip`) is not installed";
    if !host_features::present("netns", ip, reason) {
        eprintln!("SKIP: {reason}");
        return;
    }
    let run = Run::start("bridge");
    run.stdout.wait_for("Directory listing for /");
    run.stderr
        .wait_for("==> task \"probe\" exited: exit_code=0");
    run.interrupt();
    let (code, _out, err) = run.finish();
    assert_eq!(code, 0, "stderr: {err:#?}");
}

/// `run` allocates a group's static and dynamic ports like a client: the `NOMAD_*` port
/// variables, and the TaskConfig's ports, which the task (with Landlock network rules) may bind.
#[test]
fn run_allocates_group_ports() {
    require_host!();
    let probe = env!("CARGO_BIN_EXE_pledge-probe");
    let dir = Path::new(probe).parent().unwrap().display().to_string();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (static_port, lo) = (free(), free());
    let hi = lo.saturating_add(20);
    let tmp = tempfile::tempdir().unwrap();
    let job = tmp.path().join("ports.hcl");
    std::fs::write(
        &job,
        format!(
            r#"job "ports" {{
  group "g" {{
    network {{
      port "http" {{
        static = {static_port}
      }}
      port "dyn" {{}}
    }}
    task "serve" {{
      driver = "pledge"
      config {{
        command  = "{probe}"
        args     = ["serve", "${{NOMAD_PORT_dyn}}"]
        promises = "stdio rpath inet"
        unveil   = ["rx:{dir}"]
      }}
    }}
    task "env" {{
      driver = "pledge"
      config {{
        command = "env"
      }}
    }}
  }}
}}
"#
        ),
    )
    .unwrap();
    let range = format!("{lo}-{hi}");
    let run = Run::start_cmd(&job.display().to_string(), &[], &["--port-range", &range]);
    let line = run
        .stderr
        .wait_for("==> group \"g\" port \"dyn\": 127.0.0.1:");
    let dyn_port: u16 = line.rsplit(':').next().unwrap().trim().parse().unwrap();
    assert!((lo..=hi).contains(&dyn_port), "{line}");
    run.stdout
        .wait_for(&format!("NOMAD_PORT_http={static_port}"));
    run.stdout
        .wait_for(&format!("NOMAD_HOST_PORT_dyn={dyn_port}"));
    run.stdout
        .wait_for(&format!("NOMAD_ADDR_dyn=127.0.0.1:{dyn_port}"));
    run.stdout.wait_for("NOMAD_IP_http=127.0.0.1");
    // The server listens on its dynamic port (allowed by the bind rule) and exits after one
    // connection.
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(("127.0.0.1", dyn_port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {dyn_port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, _out, err) = run.finish();
    assert_eq!(code, 0, "stderr: {err:#?}");
}

/// GET / over loopback, retrying while the server starts.
fn fetch(addr: &str) -> String {
    use std::io::{Read, Write};
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut page = String::new();
            let _ = s.read_to_string(&mut page);
            return page;
        }
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A job file written for one test.
fn job_file(dir: &Path, hcl: &str) -> String {
    let path = dir.join("job.hcl");
    std::fs::write(&path, hcl).unwrap();
    path.display().to_string()
}

fn one_task_job(command: &str, args: &str) -> String {
    format!(
        r#"job "j" {{
  type = "batch"
  group "g" {{
    task "t" {{
      driver = "pledge"
      config {{
        command  = "{command}"
        args     = {args}
        promises = "stdio rpath"
      }}
    }}
  }}
}}
"#
    )
}

/// `run`'s own lines start at a line boundary even when the task's output does not end with a
/// newline (they used to be glued to the task's last partial line).
#[test]
fn run_status_lines_start_at_line_boundaries() {
    require_host!();
    let dir = tempfile::tempdir().unwrap();
    let job = job_file(
        dir.path(),
        &one_task_job("/bin/sh", r#"["-c", "printf 'no newline at the end' >&2"]"#),
    );
    let (code, _out, err) = Run::start_file(&job, &[]).finish();
    assert_eq!(code, 0, "stderr: {err:#?}");
    assert!(
        err.iter().any(|l| l == "no newline at the end"),
        "the task's partial line must stay on its own line: {err:#?}"
    );
    assert!(result_line(&err, "t").contains("exit_code=0"), "{err:#?}");
}

/// A command that is not in the task's PATH is refused at StartTask, naming the directories
/// searched and the one the task user cannot search (the agent's PATH is the task's, under
/// `run` as under a Nomad client with filesystem isolation `none`).
#[test]
fn run_refuses_a_command_not_in_the_tasks_path() {
    require_host!();
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let private = dir.path().join("root-only");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let job = job_file(dir.path(), &one_task_job("catt", "[]"));
    let path = format!("{}:/usr/bin:/bin", private.display());
    let (code, _out, err) = Run::start_file(&job, &[("PATH", &path)]).finish();
    assert_eq!(code, 1, "stderr: {err:#?}");
    let refused = err
        .iter()
        .find(|l| l.contains("the plugin refused StartTask"))
        .unwrap_or_else(|| panic!("{err:#?}"));
    assert!(refused.contains("`command` `catt`"), "{refused}");
    assert!(
        refused.contains(&format!("searched {}, /usr/bin, /bin", private.display())),
        "{refused}"
    );
    assert!(
        refused.contains(&format!(
            "not searchable by the task user (skipped): {}",
            private.display()
        )),
        "{refused}"
    );
}

#[test]
fn volume_mounts_a_host_volume() {
    require_host!();
    let shared = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = Command::new(BIN)
        .arg("run")
        .arg(example("volume"))
        .arg("--host-volume")
        .arg(format!("shared={}", shared.path().display()))
        .stdin(Stdio::null())
        .output()
        .expect("run hack/volume.hcl");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(stdout, "hello from write\nread-only\n", "stderr: {stderr}");
    assert_eq!(
        std::fs::read_to_string(shared.path().join("greeting")).unwrap(),
        "hello from write\n"
    );

    // Without the host volume, the run fails as a Nomad client would place it: nowhere.
    let out = Command::new(BIN)
        .arg("run")
        .arg(example("volume"))
        .stdin(Stdio::null())
        .output()
        .expect("run hack/volume.hcl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr.contains("missing compatible host volumes")
            && stderr.contains("--host-volume shared=PATH"),
        "{stderr}"
    );
}
