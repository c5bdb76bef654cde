//! `nomad alloc exec` and script checks: run a command inside a running task's sandbox.
//!
//! The plugin writes an [`ExecPlan`] (the task's own launch plan with the command replaced) and
//! starts our binary as `__exec <plan.json>`. That helper moves itself into the task cgroup,
//! joins the supervisor's PID, mount, IPC and network namespaces through a pidfd, and forks the
//! command with the supervisor's task-child code (`child.rs`: same session setup, user, groups,
//! capabilities, env, cwd and policy, hence the same sandbox installed the same way). It waits for the command, kills the
//! rest of its process group, and exits with the command's code (128+N for signal N). SIGTERM,
//! SIGINT or SIGHUP to the helper (timeout, cancelled stream) kill the command's process group.

use super::spawn::SupervisorPlan;
use super::state;
use super::sys;
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Internal mode of our binary that runs one exec'd command (dispatched in `main.rs`).
pub const EXEC_MODE: &str = "__exec";

/// What the `__exec` helper needs; written 0600 into the task's private state directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecPlan {
    /// The task's plan with the exec'd command in place of the task's command.
    pub plan: SupervisorPlan,
    /// Supervisor pid and start time (guards against pid reuse).
    pub supervisor_pid: i32,
    pub supervisor_start_time: u64,
    /// The task cgroup directory.
    pub cgroup: PathBuf,
    /// fd 0 is a pty slave that becomes the controlling terminal.
    pub tty: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecHelperError {
    #[error("cannot read the exec plan {path}: {reason}")]
    Plan { path: String, reason: String },
    #[error("the task's supervisor (pid {0}) is gone: the task is no longer running")]
    SupervisorGone(i32),
    #[error("cannot join the task cgroup {path}")]
    Cgroup {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot join the task's namespaces (pid {pid}; needs root and kernel >= 5.8 for setns with a pidfd)")]
    Setns { pid: i32, source: std::io::Error },
    #[error("cannot {step} for the exec'd command")]
    Setup {
        step: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Launch(#[from] super::child::LaunchError),
}

/// Entry point (`nomad-pledge-driver __exec PLAN`); the exit code is the command's.
pub fn exec_main(args: &[OsString]) -> i32 {
    // What the plugin inherited (a terminal of another session, Nomad's files) is not the
    // command's.
    sys::close_inherited_fds();
    sys::name_helper();
    let Some(plan_path) = args.first() else {
        eprintln!(
            "nomad-pledge-driver __exec: missing plan path (internal mode used by the executor)"
        );
        return 2;
    };
    match run(Path::new(plan_path)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nomad-pledge-driver exec: {}", crate::errors::Chain(&e));
            match e {
                ExecHelperError::Launch(e) => e.exit_status(),
                _ => 127,
            }
        }
    }
}

fn load(path: &Path) -> Result<ExecPlan, ExecHelperError> {
    let err = |reason: String| ExecHelperError::Plan {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    // The plan holds the task environment: keep it on disk no longer than needed.
    let _ = std::fs::remove_file(path);
    serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))
}

fn setup(step: &'static str) -> impl FnOnce(nix::Error) -> ExecHelperError {
    move |e| ExecHelperError::Setup {
        step,
        source: e.into(),
    }
}

fn run(plan_path: &Path) -> Result<i32, ExecHelperError> {
    let ep = load(plan_path)?;
    // Signals are taken synchronously (sigwait) so a kill request is never lost.
    let all = SigSet::all();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&all), None)
        .map_err(setup("block signals"))?;

    let pid = ep.supervisor_pid;
    let pidfd = sys::pidfd_open(pid).map_err(|_| ExecHelperError::SupervisorGone(pid))?;
    if state::proc_start_time(pid) != Some(ep.supervisor_start_time) {
        return Err(ExecHelperError::SupervisorGone(pid));
    }
    std::fs::write(
        ep.cgroup.join("cgroup.procs"),
        std::process::id().to_string(),
    )
    .map_err(|source| ExecHelperError::Cgroup {
        path: ep.cgroup.display().to_string(),
        source,
    })?;
    setns(
        &pidfd,
        CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWNET,
    )
    .map_err(|e| ExecHelperError::Setns {
        pid,
        source: e.into(),
    })?;

    // setns(CLONE_NEWNS) moved us to the namespace's root: the command is resolved from the
    // task directory, as the task sees it. A PID namespace joined with setns applies to
    // children only: the command is forked.
    let prep = super::child::prepare(&ep.plan)?;
    let spawned = super::child::spawn(&ep.plan, &prep, ep.tty)?;
    let child = spawned.pid;
    drop(prep);
    // With denial reporting the helper (root, outside the command's Landlock domain, another
    // user) serves the command's listener as the supervisor serves the task's, appending to the
    // task's denial records, which the plugin publishes as the task's events.
    let served = spawned.listener.and_then(|listener| {
        let rep = super::supervisor::Reporter::new(
            listener,
            spawned.exec_promised,
            child.as_raw(),
            &ep.plan.state_path,
        );
        super::supervisor::serve_loop(child, &all, rep, &mut |sig| {
            if matches!(sig, Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP) {
                let _ = kill(Pid::from_raw(-child.as_raw()), Signal::SIGKILL);
            }
        })
    });
    let code = match served {
        Some(st) => st.exit_code,
        None => wait_for(child, &all),
    };
    // Whatever the command left in its process group goes with it.
    let _ = kill(Pid::from_raw(-child.as_raw()), Signal::SIGKILL);
    Ok(code)
}

/// Waits for `child`; a termination request kills its process group (it is a session leader).
fn wait_for(child: Pid, all: &SigSet) -> i32 {
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 127,
        }
        if let Ok(Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP) = all.wait() {
            let _ = kill(Pid::from_raw(-child.as_raw()), Signal::SIGKILL);
        }
    }
}

/// How the exec'd command's stdio is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecMode {
    /// stdin, stdout and stderr are three pipes.
    Pipes,
    /// One pty (rows, cols); stdout carries both output streams.
    Tty { rows: u16, cols: u16 },
}

/// A running exec'd command (the `__exec` helper, our child).
pub struct ExecProcess {
    pub child: tokio::process::Child,
    /// The pty master (tty mode): read it for output, write it for input.
    pub pty: Option<std::fs::File>,
}

impl ExecProcess {
    /// Asks the helper to kill the command's process group (timeout, cancelled stream).
    /// A no-op once the helper has been reaped.
    pub fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }
}

impl Drop for ExecProcess {
    fn drop(&mut self) {
        // Never leave a command running behind a dropped session.
        self.terminate();
    }
}

static EXEC_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl super::Executor {
    /// Runs `argv` inside running task `id`'s sandbox (see the module docs).
    pub async fn exec(
        &self,
        id: &str,
        argv: &[String],
        mode: ExecMode,
    ) -> Result<ExecProcess, super::ExecError> {
        use super::ExecError;
        use std::os::fd::OwnedFd;
        use std::process::Stdio;
        let task = self.get(id).ok_or_else(|| ExecError::NotFound(id.into()))?;
        if task.pidfd.is_none() || task.exit().is_some() {
            return Err(ExecError::NotRunning(id.into()));
        }
        let Some((cmd, args)) = argv.split_first() else {
            return Err(ExecError::EmptyExecCommand);
        };
        if cmd.is_empty() {
            return Err(ExecError::EmptyExecCommand);
        }
        let st = &task.state;
        let mut spec = st.spec.clone();
        spec.command = cmd.clone();
        spec.args = args.to_vec();
        let user =
            super::user::resolve_user(&spec.user, &self.cfg.default_user, self.cfg.allow_root)?;
        let plan = super::spawn::build_plan(&spec, &self.cfg.self_exe, user, &st.state_path)?;
        let ep = ExecPlan {
            plan,
            supervisor_pid: st.pid,
            supervisor_start_time: st.start_time,
            cgroup: st.cgroup.path.clone(),
            tty: matches!(mode, ExecMode::Tty { .. }),
        };
        let name = format!(
            "exec-{}-{}.json",
            std::process::id(),
            EXEC_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let bytes = serde_json::to_vec(&ep).expect("an ExecPlan always serializes");
        state::write_atomic(&st.state_path, &name, &bytes)?;
        let plan_path = st.state_path.join(&name);

        let spawn_err = |source: std::io::Error| ExecError::ExecSpawn {
            id: id.into(),
            exe: self.cfg.self_exe.clone(),
            source,
        };
        let mut command = tokio::process::Command::new(&self.cfg.self_exe);
        command
            .arg0(super::HELPER_ARGV0)
            .arg(EXEC_MODE)
            .arg(&plan_path)
            .env_clear()
            .kill_on_drop(true);
        let mut pty = None;
        match mode {
            ExecMode::Pipes => {
                command
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
            }
            ExecMode::Tty { rows, cols } => {
                let p = nix::pty::openpty(None, None).map_err(|e| spawn_err(e.into()))?;
                // openpty does not set close-on-exec. Helpers close every inherited descriptor
                // when they start (`sys::close_inherited_fds`), which is the protection; this
                // keeps the terminal from any other program the plugin execs meanwhile.
                for fd in [&p.master, &p.slave] {
                    nix::fcntl::fcntl(
                        fd,
                        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
                    )
                    .map_err(|e| spawn_err(e.into()))?;
                }
                sys::set_window_size(std::os::fd::AsRawFd::as_raw_fd(&p.master), rows, cols)
                    .map_err(spawn_err)?;
                let slave: OwnedFd = p.slave;
                let dup = |f: &OwnedFd| f.try_clone().map_err(spawn_err);
                command
                    .stdin(Stdio::from(dup(&slave)?))
                    .stdout(Stdio::from(dup(&slave)?))
                    .stderr(Stdio::from(slave));
                pty = Some(std::fs::File::from(p.master));
            }
        }
        let child = command.spawn();
        drop(command); // closes our copies of the pty slave
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&plan_path);
                return Err(spawn_err(e));
            }
        };
        Ok(ExecProcess { child, pty })
    }
}

/// Sets a pty master's window size (TIOCSWINSZ); the command gets SIGWINCH.
pub fn resize_pty(master: &std::fs::File, rows: u16, cols: u16) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    sys::set_window_size(master.as_raw_fd(), rows, cols)
}
