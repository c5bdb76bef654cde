//! Plugin side of a start: build the launch plan (argv in pledge.com's form, environment,
//! identity), open the log FIFOs without following symlinks, and have the fork server clone the
//! supervisor into the task cgroup and its new namespaces.

use super::forkserver::{ForkServer, Request};
use super::state::{self, StateError};
use super::user::TaskUser;
use super::{Importance, TaskSpec};
use crate::policy::Policy;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What the supervisor needs; sent to it through a pipe (never written to disk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupervisorPlan {
    /// Built-in sandbox: the command and its arguments (the task child installs the sandbox
    /// and execs them itself). External launcher: its argv, rendered from `policy` by
    /// [`Policy::launcher_argv`] (launcher, pledge flags, `--`, command, args).
    pub argv: Vec<CString>,
    /// `KEY=VALUE` entries, exactly the task environment.
    pub env: Vec<CString>,
    /// The task's sandbox (which launcher `argv` starts, among others).
    pub policy: Policy,
    pub cwd: PathBuf,
    pub user: TaskUser,
    pub nice: i32,
    pub netns: Option<PathBuf>,
    /// Where the supervisor writes `exit.json`.
    pub state_path: PathBuf,
    /// Open-file limit (soft, hard) for the task: the one the plugin was started with, when the
    /// plugin raised its own (see `limits`).
    #[serde(default)]
    pub nofile: Option<(u64, u64)>,
    /// The task's `ulimit` entries and `oom_score_adj`, set by the task child.
    #[serde(default)]
    pub limits: super::rlimit::TaskLimits,
    /// Bind mounts the supervisor makes in the task's mount namespace, and the task directory
    /// that destinations may be created in.
    #[serde(default)]
    pub mounts: Vec<super::mounts::BindMount>,
    #[serde(default)]
    pub task_dir: PathBuf,
    /// The task's `/etc/resolv.conf` (Nomad's `network.dns`); None = the host's.
    #[serde(default)]
    pub resolv_conf: Option<String>,
    /// `pid_mode`/`ipc_mode = "host"`: no PID / IPC namespace of the task's own.
    #[serde(default)]
    pub host_pid: bool,
    #[serde(default)]
    pub host_ipc: bool,
    /// The supervisor reports the task's seccomp denials (`denials.jsonl` in the state dir).
    #[serde(default)]
    pub report_denials: bool,
    /// Learn mode (see `learn_task`).
    #[serde(default)]
    pub learn: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("task {field} contains a NUL byte: remove it")]
    Nul { field: &'static str },
    #[error("cannot open {field} `{path}` (it must be the log FIFO Nomad created for the task, /dev/null, or a file inside the allocation directory; check that the allocation directory still exists)")]
    OpenLog {
        field: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("task {field} `{path}` is {what}: it must be Nomad's log FIFO, /dev/null (logging disabled), or a regular file inside the allocation directory")]
    BadLog {
        field: &'static str,
        path: PathBuf,
        what: &'static str,
    },
    #[error("nobody opened the log FIFO {path} for reading within {secs} s: check that Nomad's logmon is running for this task")]
    LogTimeout { path: PathBuf, secs: u64 },
    #[error("cannot open cgroup directory {path}")]
    OpenCgroup {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the supervisor in cgroup {cgroup} (needs root, kernel >= 5.7 for clone3 CLONE_INTO_CGROUP, and a writable cgroup2)")]
    Clone {
        cgroup: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

/// The task environment: exactly `spec.env`, with `USER`/`HOME` set for the task user.
pub fn task_env(spec: &TaskSpec, user: &TaskUser) -> Vec<Vec<u8>> {
    let mut env = spec.env.clone();
    env.insert("USER".into(), user.name.clone());
    env.insert("HOME".into(), user.home.clone());
    env.into_iter()
        .map(|(k, v)| format!("{k}={v}").into_bytes())
        .collect()
}

/// Process nice value for an importance level.
pub fn nice_for(importance: Importance) -> i32 {
    match importance {
        Importance::Lowest => 19,
        Importance::Low => 10,
        Importance::Normal => 0,
        Importance::High => -10,
        Importance::Highest => -20,
    }
}

/// The supervisor's plan for `spec`: the launcher argv rendered from the task's policy and the
/// environment, as the C strings execve takes. This is the one place where the task's strings
/// (and the paths Nomad gave) become C strings, so the one place that refuses a NUL byte.
pub fn build_plan(
    spec: &TaskSpec,
    self_exe: &Path,
    user: TaskUser,
    state_path: &Path,
) -> Result<SupervisorPlan, SpawnError> {
    let argv = if spec.policy.launcher().is_built_in() {
        std::iter::once(&spec.command)
            .chain(&spec.args)
            .map(std::ffi::OsString::from)
            .collect()
    } else {
        spec.policy
            .launcher_argv(self_exe, &spec.command, &spec.args)
    };
    let argv = argv
        .into_iter()
        .map(|a| CString::new(a.into_vec()))
        .collect::<Result<_, _>>()
        .map_err(|_| SpawnError::Nul {
            field: "command/args/unveil",
        })?;
    let env = task_env(spec, &user)
        .into_iter()
        .map(CString::new)
        .collect::<Result<_, _>>()
        .map_err(|_| SpawnError::Nul { field: "env" })?;
    let cwd = spec
        .work_dir
        .clone()
        .unwrap_or_else(|| spec.task_dir.clone());
    Ok(SupervisorPlan {
        argv,
        env,
        policy: spec.policy.clone(),
        cwd,
        user,
        nice: nice_for(spec.importance),
        netns: spec.netns_path.clone(),
        state_path: state_path.to_path_buf(),
        nofile: super::limits::task_nofile(),
        limits: spec.limits.clone(),
        mounts: spec.mounts.clone(),
        task_dir: spec.task_dir.clone(),
        resolv_conf: spec.resolv_conf.clone(),
        host_pid: spec.host_pid,
        learn: spec.learn,
        host_ipc: spec.host_ipc,
        report_denials: spec.report_denials,
    })
}

/// Opens a log path for writing. The path must be Nomad's FIFO, `/dev/null` (logging disabled),
/// or a regular file inside the allocation directory (for tools and tests; appended to, and only
/// with a single link), and never a symlink. The plugin runs as root and the task writes through
/// this descriptor, so anything else (`/etc/passwd`, a device, a file elsewhere) is refused. The
/// path is first opened with `O_PATH` to see what it is without opening it (opening a device
/// can have effects), then that very inode is reopened for writing through `/proc/self/fd`, so
/// it cannot be swapped in between. Blocks until a FIFO has a reader (call it from a blocking
/// thread).
fn open_log(field: &'static str, path: &Path, alloc_dir: &Path) -> Result<File, SpawnError> {
    let open_err = |source| SpawnError::OpenLog {
        field,
        path: path.to_path_buf(),
        source,
    };
    let bad = |what| SpawnError::BadLog {
        field,
        path: path.to_path_buf(),
        what,
    };
    let probe = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(open_err)?;
    let meta = probe.metadata().map_err(open_err)?;
    let kind = meta.file_type();
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let regular = kind.is_file();
    if kind.is_symlink() {
        return Err(bad("a symlink"));
    } else if kind.is_char_device() {
        if meta.rdev() != libc::makedev(1, 3) {
            return Err(bad("a device other than /dev/null"));
        }
    } else if regular {
        let real =
            std::fs::read_link(format!("/proc/self/fd/{}", probe.as_raw_fd())).map_err(open_err)?;
        let alloc = std::fs::canonicalize(alloc_dir).map_err(open_err)?;
        if !real.starts_with(&alloc) {
            return Err(bad("a regular file outside the allocation directory"));
        }
        if meta.nlink() != 1 {
            return Err(bad("a file with several hard links"));
        }
    } else if !kind.is_fifo() {
        return Err(bad("neither a FIFO nor a file"));
    }
    OpenOptions::new()
        .write(true)
        .append(regular)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(format!("/proc/self/fd/{}", probe.as_raw_fd()))
        .map_err(open_err)
}

/// The task's stdout/stderr, opened by the plugin and handed to the supervisor.
pub struct LogFiles {
    pub stdout: File,
    pub stderr: File,
}

/// Opens `stdout_path` and `stderr_path` for writing (no symlinks). Blocks until each FIFO has a
/// reader (Nomad's logmon): call it on a blocking thread, under a timeout.
pub fn open_logs(spec: &TaskSpec) -> Result<LogFiles, SpawnError> {
    // Nomad's task directory is `<alloc_dir>/<task>`.
    let alloc_dir = spec.task_dir.parent().unwrap_or(&spec.task_dir);
    Ok(LogFiles {
        stdout: open_log("stdout_path", &spec.stdout_path, alloc_dir)?,
        stderr: open_log("stderr_path", &spec.stderr_path, alloc_dir)?,
    })
}

/// Whether process `pid` is the supervisor recorded in the task state directory `state_path`
/// (the fork server's record: same pid, same start time, so never a reused pid).
pub fn is_supervisor_for(pid: i32, state_path: &Path) -> bool {
    state::read_supervisor_record(state_path)
        .is_some_and(|(p, start)| p == pid && state::proc_start_time(pid) == Some(start))
}

/// The running supervisor recorded in `state_path`, if it still runs (for the rare clean-up
/// of a task this plugin instance does not track).
pub fn supervisors_for(state_path: &Path) -> Vec<i32> {
    state::read_supervisor_record(state_path)
        .map(|(pid, _)| pid)
        .filter(|pid| is_supervisor_for(*pid, state_path))
        .into_iter()
        .collect()
}

/// Asks the fork server for the supervisor of `plan` in `cgroup` and hands it the plan through
/// a pipe (never written to disk). Blocking: run it on a blocking thread.
pub fn spawn_supervisor(
    server: &ForkServer,
    plan: &SupervisorPlan,
    logs: &LogFiles,
    cgroup: &Path,
) -> Result<(i32, OwnedFd), SpawnError> {
    state::create_private_dir(&plan.state_path)?;
    let state_dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&plan.state_path)
        .map_err(|source| state::StateError::Write {
            path: plan.state_path.clone(),
            source,
        })?;
    let stdin = File::open("/dev/null").map_err(|source| SpawnError::OpenLog {
        field: "stdin",
        path: "/dev/null".into(),
        source,
    })?;
    let cg_dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(cgroup)
        .map_err(|source| SpawnError::OpenCgroup {
            path: cgroup.to_path_buf(),
            source,
        })?;
    let clone_err = |source: std::io::Error| SpawnError::Clone {
        cgroup: cgroup.to_path_buf(),
        source,
    };
    let (plan_r, plan_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| clone_err(e.into()))?;
    let (pid, pidfd) = server
        .spawn(&Request {
            stdin: stdin.as_fd(),
            stdout: logs.stdout.as_fd(),
            stderr: logs.stderr.as_fd(),
            cgroup_dir: cg_dir.as_fd(),
            state_dir: state_dir.as_fd(),
            plan: plan_r.as_fd(),
            host_pid: plan.host_pid,
            host_ipc: plan.host_ipc,
        })
        .map_err(|e| clone_err(e.into()))?;
    drop(plan_r);
    let bytes = serde_json::to_vec(plan).expect("a SupervisorPlan always serializes");
    // A supervisor that died before reading its plan is seen by its pidfd (the task then ends
    // without an exit record); the start itself succeeded.
    let _ = File::from(plan_w).write_all(&bytes);
    Ok((pid, pidfd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TaskSpec {
        let policy = Policy::new(
            "stdio rpath".parse().unwrap(),
            vec!["r:/etc".parse().unwrap(), "rwc:/tmp".parse().unwrap()],
            crate::policy::Launcher::External("/opt/pledge.com".into()),
        )
        .unwrap();
        TaskSpec {
            id: "a/t/1".into(),
            policy,
            command: "/bin/cat".into(),
            args: vec!["-n".into(), "/etc/hostname".into()],
            ..Default::default()
        }
    }

    fn nobody() -> TaskUser {
        TaskUser {
            name: "nobody".into(),
            uid: 65534,
            gid: 65534,
            groups: vec![],
            home: "/nonexistent".into(),
        }
    }

    #[test]
    fn plan_argv_is_rendered_from_the_policy() {
        let s = spec();
        let dir = tempfile::tempdir().unwrap();
        let plan = build_plan(&s, Path::new("/self"), nobody(), dir.path()).unwrap();
        let want: Vec<CString> = s
            .policy
            .launcher_argv(Path::new("/self"), &s.command, &s.args)
            .into_iter()
            .map(|a| CString::new(a.into_vec()).unwrap())
            .collect();
        assert_eq!(plan.argv, want);
        assert_eq!(plan.argv[0].to_string_lossy(), "/opt/pledge.com");
        assert_eq!(plan.policy, s.policy);
        // The plan file round-trips, C strings and policy included.
        let json = serde_json::to_vec(&plan).unwrap();
        assert_eq!(
            serde_json::from_slice::<SupervisorPlan>(&json).unwrap(),
            plan
        );

        let mut bad = spec();
        bad.args.push("a\0b".into());
        let e = build_plan(&bad, Path::new("/self"), nobody(), dir.path()).unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
    }

    #[test]
    fn env_is_exactly_the_task_env_plus_user_and_home() {
        let mut s = spec();
        s.env.insert("A".into(), "1".into());
        s.env.insert("USER".into(), "root".into());
        let user = nobody();
        let env: Vec<String> = task_env(&s, &user)
            .into_iter()
            .map(|e| String::from_utf8(e).unwrap())
            .collect();
        assert_eq!(env, ["A=1", "HOME=/nonexistent", "USER=nobody"]);
        s.env.insert("B".into(), "x\0y".into());
        let p = tempfile::tempdir().unwrap();
        assert!(build_plan(&s, Path::new("/self"), user, p.path()).is_err());
    }

    #[test]
    fn log_paths_must_be_a_fifo_dev_null_or_a_file_in_the_alloc() {
        use std::fs;
        use std::io::{Read, Write};
        let alloc = tempfile::tempdir().unwrap();
        let a = alloc.path();
        let outside = tempfile::tempdir().unwrap();
        let refused = |path: &Path, what: &str| match open_log("stdout_path", path, a) {
            Err(SpawnError::BadLog { what: w, .. }) => assert_eq!(w, what, "{path:?}"),
            other => panic!("{path:?} accepted or other error: {other:?}"),
        };

        // Nomad's FIFO (a reader is there, as logmon would be).
        let fifo = a.join("t.stdout.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let mut reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        open_log("stdout_path", &fifo, a)
            .unwrap()
            .write_all(b"hi")
            .unwrap();
        let mut got = [0u8; 2];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");

        open_log("stdout_path", Path::new("/dev/null"), a).unwrap();

        // A regular file in the allocation is appended to, never overwritten.
        let file = a.join("t.stdout");
        fs::write(&file, "old\n").unwrap();
        open_log("stdout_path", &file, a)
            .unwrap()
            .write_all(b"new\n")
            .unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "old\nnew\n");

        refused(
            Path::new("/etc/passwd"),
            "a regular file outside the allocation directory",
        );
        let elsewhere = outside.path().join("canary");
        fs::write(&elsewhere, "").unwrap();
        refused(
            &elsewhere,
            "a regular file outside the allocation directory",
        );
        // ... also through a directory symlink inside the allocation.
        std::os::unix::fs::symlink(outside.path(), a.join("logs")).unwrap();
        refused(
            &a.join("logs/canary"),
            "a regular file outside the allocation directory",
        );
        std::os::unix::fs::symlink(&file, a.join("link")).unwrap();
        refused(&a.join("link"), "a symlink");
        fs::hard_link(&file, a.join("second-link")).unwrap();
        refused(&file, "a file with several hard links");
        refused(Path::new("/dev/zero"), "a device other than /dev/null");
        refused(a, "neither a FIFO nor a file");
        assert!(matches!(
            open_log("stdout_path", &a.join("missing"), a),
            Err(SpawnError::OpenLog { .. })
        ));
    }
}
