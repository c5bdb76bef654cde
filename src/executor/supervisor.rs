//! The per-task supervisor: cloned by the fork server (`forkserver.rs`), PID 1 of the task's
//! PID/mount/IPC namespaces inside the task cgroup. Single-threaded.
//!
//! It joins the network namespace, mounts a private `/proc`, forks the task child (which drops
//! to the task user, installs the sandbox and execs the command, see `child.rs`), forwards every signal it receives to the task,
//! reaps every zombie, and records the task's exit status in the state directory before exiting
//! (which makes the kernel kill whatever is left in the namespace).

use super::denial_log;
use super::spawn::SupervisorPlan;
use super::state::{self, ExitStatus};
use super::sys;
use crate::errors::{error_chain, Chain};
use crate::sandbox::seccomp::{self, notify};
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::OwnedFd;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("cannot read the supervisor plan: {reason}")]
    Plan { reason: String },
    #[error(
        "cannot join network namespace {path} (check the allocation's network_isolation_spec)"
    )]
    Netns {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot mount a private /proc for the task")]
    Proc(#[source] nix::Error),
    #[error(transparent)]
    Mount(#[from] super::mounts::MountError),
    #[error("cannot {step} for the task")]
    Setup {
        step: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Launch(#[from] super::child::LaunchError),
}

impl SupervisorError {
    /// The exit status of a task whose supervisor failed this way.
    fn exit_status(&self) -> i32 {
        match self {
            SupervisorError::Launch(e) => e.exit_status(),
            _ => 127,
        }
    }
}

/// Entry point of a supervisor cloned by the fork server: the plan comes through `plan` (a
/// pipe from the plugin). Returns the supervisor's exit code.
pub fn forked_main(plan: OwnedFd) -> i32 {
    let plan = match read_plan(plan) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nomad-pledge-driver supervisor: {}", Chain(&e));
            return 2;
        }
    };
    let state_path = plan.state_path.clone();
    let status = match supervise(plan) {
        Ok(st) => st,
        Err(e) => {
            eprintln!("nomad-pledge-driver supervisor: {}", Chain(&e));
            ExitStatus {
                exit_code: e.exit_status(),
                signal: 0,
                oom_killed: false,
                err: Some(error_chain(&e)),
            }
        }
    };
    if let Err(e) = state::write_exit(&state_path, &status) {
        eprintln!("nomad-pledge-driver supervisor: {}", Chain(&e));
        return 1;
    }
    0
}

fn read_plan(fd: OwnedFd) -> Result<SupervisorPlan, SupervisorError> {
    use std::io::Read;
    let err = |reason: String| SupervisorError::Plan { reason };
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    if bytes.is_empty() {
        return Err(err(
            "the plugin closed the pipe without sending it (it stopped during StartTask)".into(),
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))
}

fn setup_err(step: &'static str) -> impl FnOnce(nix::Error) -> SupervisorError {
    move |e| SupervisorError::Setup {
        step,
        source: e.into(),
    }
}

fn supervise(plan: SupervisorPlan) -> Result<ExitStatus, SupervisorError> {
    // All signals are taken synchronously with sigwait; the task child restores them.
    let all = SigSet::all();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&all), None)
        .map_err(setup_err("block signals"))?;

    if let Some(ns) = &plan.netns {
        let f = std::fs::File::open(ns).map_err(|source| SupervisorError::Netns {
            path: ns.display().to_string(),
            source,
        })?;
        setns(f, CloneFlags::CLONE_NEWNET).map_err(|e| SupervisorError::Netns {
            path: ns.display().to_string(),
            source: e.into(),
        })?;
    }
    // Private, so that nothing mounted here reaches the host; a slave when a volume asks for
    // host mounts to propagate into the task (`host-to-task`).
    let propagation = if super::mounts::wants_host_propagation(&plan.mounts) {
        MsFlags::MS_SLAVE
    } else {
        MsFlags::MS_PRIVATE
    };
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | propagation,
        None::<&str>,
    )
    .map_err(SupervisorError::Proc)?;
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(SupervisorError::Proc)?;
    super::mounts::setup(&plan.mounts, &plan.task_dir)?;
    if plan.host_pid {
        sys::set_child_subreaper().map_err(|source| SupervisorError::Setup {
            step: "become the child subreaper",
            source,
        })?;
    }
    if let Some(text) = &plan.resolv_conf {
        let m = super::mounts::resolv_conf_mount(text, &plan.state_path)?;
        super::mounts::setup(std::slice::from_ref(&m), &plan.task_dir)?;
    }

    if plan.learn {
        super::learn_task::configure(&plan);
    }
    // Everything the child needs is prepared here, before the fork (see `child.rs`).
    let prep = super::child::prepare(&plan)?;
    let spawned = super::child::spawn(&plan, &prep, false)?;
    let child = spawned.pid;
    let reporter = spawned.listener.map(|listener| {
        Reporter::new(
            listener,
            spawned.exec_promised,
            child.as_raw(),
            &plan.state_path,
        )
    });
    // From here on the supervisor only waits (and serves its listener): give back everything
    // the set-up used, so that its memory is the fork server's shared pages plus a few of its own.
    let host_pid = plan.host_pid;
    drop(prep);
    drop(plan);
    // And the set-up's code: the pages of the binary and libc it mapped (the kernel maps 64
    // KiB around each fault) would stay mapped, and counted, for the task's whole life.
    let _ = sys::drop_code_pages();
    sys::malloc_trim();
    let status = match reporter {
        Some(r) => serve_loop(child, &all, r, &mut |sig| {
            let _ = kill(child, sig);
        })
        .unwrap_or_else(|| wait_loop(child, &all)),
        None => wait_loop(child, &all),
    };
    super::learn_task::finish();
    if host_pid {
        kill_leftovers();
    }
    Ok(status)
}

/// `pid_mode = "host"`: no PID namespace dies with us, so what the task left in its cgroup
/// (background children, daemons) is killed here, and our own descendants reaped, before the
/// exit status is recorded: the task ends with its main process, as in its own namespace.
fn kill_leftovers() {
    let me = std::process::id() as i32;
    let own = super::cgroup::host_cgroup_root().ok().and_then(|root| {
        let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let rel = text.lines().find_map(|l| l.strip_prefix("0::/"))?;
        Some(root.join(rel.trim()))
    });
    for _ in 0..3 {
        let Some(cg) = &own else { break };
        let pids: Vec<i32> = super::cgroup::procs(cg)
            .into_iter()
            .filter(|p| *p != me)
            .collect();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // Orphans are ours (subreaper): reap until none are left.
        while waitpid(None, None).is_ok() {}
    }
    while waitpid(None, None).is_ok() {}
}

/// The promise filter's listener, served for the task's whole life (see `denial_log.rs`).
pub(super) struct Reporter {
    /// None once no process uses the filter any more.
    listener: Option<std::os::fd::OwnedFd>,
    exec_promised: bool,
    /// The task's main process ("self" for `kill` under `stdio`).
    task_pid: i32,
    tracker: denial_log::Tracker,
    writer: denial_log::Writer,
}

impl Reporter {
    /// The reporter for a child whose promise filter notifies its denials (`listener`), writing
    /// to `denials.jsonl` in `state_path` (the supervisor's, or an exec session's: both append).
    pub(super) fn new(
        listener: std::os::fd::OwnedFd,
        exec_promised: bool,
        task_pid: i32,
        state_path: &std::path::Path,
    ) -> Reporter {
        Reporter {
            listener: Some(listener),
            exec_promised,
            task_pid,
            tracker: denial_log::Tracker::default(),
            writer: denial_log::Writer::open(state_path),
        }
    }

    /// Answers one notification exactly as the filter without reporting would have (EPERM for
    /// a denial, ENOSYS for an execve without `exec`; an execve with `exec` continues), then
    /// records it.
    fn serve_one(&mut self) {
        use std::os::fd::AsFd;
        let Some(l) = self.listener.as_ref() else {
            return;
        };
        let l = l.as_fd();
        // ENOENT: the caller died before we received it.
        let Ok(n) = notify::receive(l) else { return };
        let nr = i64::from(n.nr);
        let is_exec = nr == libc::SYS_execve || nr == libc::SYS_execveat;
        if is_exec && self.exec_promised {
            let _ = notify::respond_continue(l, n.id);
            return;
        }
        let (errno, name) = if is_exec {
            (libc::ENOSYS, "ENOSYS")
        } else {
            (libc::EPERM, "EPERM")
        };
        let e = seccomp::explain_for_pid(nr, &n.args, Some(self.task_pid));
        let pid = n.pid as i32;
        // The program's name is read while the caller still waits for our answer.
        let comm = (!self.tracker.knows(&seccomp::decode::key(&e))).then(|| comm_of(pid));
        let _ = notify::respond_errno(l, n.id, errno);
        let records =
            self.tracker
                .observe(&e, pid, || comm.unwrap_or_default(), name, Instant::now());
        self.writer.write(&records);
    }

    fn tick(&mut self) {
        let r = self.tracker.tick(Instant::now());
        self.writer.write(&r);
    }

    fn finish(&mut self) {
        let r = self.tracker.finish();
        self.writer.write(&r);
    }
}

/// `/proc/PID/comm`, or `?`.
fn comm_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// [`wait_loop`] that also serves the denial listener: one `poll` on a signalfd (every
/// signal, blocked) and the listener, single-threaded. `on_signal` gets every signal but
/// SIGCHLD (the supervisor forwards it to the task; an exec session kills its command). None
/// (after saying so on stderr, listener dropped) when no signalfd can be made: the caller waits
/// its usual way.
pub(super) fn serve_loop(
    child: Pid,
    all: &SigSet,
    mut rep: Reporter,
    on_signal: &mut dyn FnMut(Signal),
) -> Option<ExitStatus> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use std::os::fd::AsFd;
    let sfd = match SignalFd::with_flags(all, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("nomad-pledge-driver supervisor: signalfd failed ({e}): seccomp denials of this task are not reported");
            // Denials then fail with ENOSYS instead of EPERM: no listener, no answer.
            drop(rep.listener.take());
            return None;
        }
    };
    loop {
        if let Some(st) = reap(child) {
            rep.finish();
            return Some(st);
        }
        let timeout = rep
            .tracker
            .timeout(Instant::now())
            .map_or(PollTimeout::NONE, |d| {
                PollTimeout::try_from(d.as_millis().min(60_000) as i32 + 1)
                    .unwrap_or(PollTimeout::NONE)
            });
        let (sig_ready, l_ready, l_gone) = {
            let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            if let Some(l) = rep.listener.as_ref() {
                fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => (),
            }
            let ev = |i: usize| {
                fds.get(i)
                    .and_then(|f| f.revents())
                    .unwrap_or(PollFlags::empty())
            };
            (
                !ev(0).is_empty(),
                ev(1).contains(PollFlags::POLLIN),
                ev(1).intersects(PollFlags::POLLHUP | PollFlags::POLLERR),
            )
        };
        if l_ready {
            rep.serve_one();
        } else if l_gone {
            // No process uses the filter any more.
            rep.listener = None;
        }
        if sig_ready {
            while let Ok(Some(si)) = sfd.read_signal() {
                match Signal::try_from(si.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) | Err(_) => {}
                    Ok(sig) => on_signal(sig),
                }
            }
        }
        rep.tick();
    }
}

/// The task child's exit status once it is gone (reaping every other zombie on the way).
fn reap(child: Pid) -> Option<ExitStatus> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => {
                return Some(ExitStatus {
                    exit_code: code,
                    ..Default::default()
                })
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                return Some(ExitStatus {
                    exit_code: 128 + sig as i32,
                    signal: sig as i32,
                    ..Default::default()
                })
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Forward signals, reap zombies, return when the task child is gone.
fn wait_loop(child: Pid, all: &SigSet) -> ExitStatus {
    loop {
        // Reap first: SIGCHLD may have arrived before we started waiting.
        if let Some(st) = reap(child) {
            return st;
        }
        match all.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(sig) => {
                let _ = kill(child, sig);
            }
            Err(_) => {}
        }
    }
}
