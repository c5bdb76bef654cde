//! The per-task supervisor: our binary re-executed as `__supervise <plan.json>`, PID 1 of the
//! task's PID/mount/IPC namespaces inside the task cgroup (see `spawn.rs`). Single-threaded.
//!
//! It joins the network namespace, mounts a private `/proc`, forks the task child (which drops
//! to the task user and execs the launcher), forwards every signal it receives to the task,
//! reaps every zombie, and records the task's exit status in the state directory before exiting
//! (which makes the kernel kill whatever is left in the namespace).

use super::spawn::{display_arg, SupervisorPlan};
use super::state::{self, ExitStatus};
use super::sys;
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execve, ForkResult, Gid, Pid, Uid};
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("cannot read the supervisor plan {path}: {reason}")]
    Plan { path: String, reason: String },
    #[error("cannot join network namespace {path}: {source}: check the allocation's network_isolation_spec")]
    Netns {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot mount a private /proc for the task: {0}")]
    Proc(nix::Error),
    #[error(transparent)]
    Mount(#[from] super::mounts::MountError),
    #[error("cannot {step} for the task: {source}")]
    Setup {
        step: &'static str,
        source: std::io::Error,
    },
    #[error("cannot start the task: {step} failed: {source} (argv[0] = `{argv0}`)")]
    Exec {
        step: String,
        argv0: String,
        source: std::io::Error,
    },
}

/// Entry point (`nomad-pledge-driver __supervise PLAN`).
pub fn supervisor_main(args: &[std::ffi::OsString]) -> i32 {
    let Some(plan_path) = args.first() else {
        eprintln!("nomad-pledge-driver __supervise: missing plan path (internal mode used by the executor)");
        return 2;
    };
    let plan = match load_plan(Path::new(plan_path)) {
        Ok(p) => {
            // The plan holds the task environment (tokens): keep it on disk no longer than needed.
            let _ = std::fs::remove_file(plan_path);
            p
        }
        Err(e) => {
            eprintln!("nomad-pledge-driver supervisor: {e}");
            return 2;
        }
    };
    let status = match supervise(&plan) {
        Ok(st) => st,
        Err(e) => {
            eprintln!("nomad-pledge-driver supervisor: {e}");
            ExitStatus {
                exit_code: 127,
                signal: 0,
                oom_killed: false,
                err: Some(e.to_string()),
            }
        }
    };
    if let Err(e) = state::write_exit(&plan.state_path, &status) {
        eprintln!("nomad-pledge-driver supervisor: {e}");
        return 1;
    }
    0
}

fn load_plan(path: &Path) -> Result<SupervisorPlan, SupervisorError> {
    let err = |reason: String| SupervisorError::Plan {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))
}

fn setup_err(step: &'static str) -> impl FnOnce(nix::Error) -> SupervisorError {
    move |e| SupervisorError::Setup {
        step,
        source: e.into(),
    }
}

fn supervise(plan: &SupervisorPlan) -> Result<ExitStatus, SupervisorError> {
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

    // Prepare everything the child needs before forking (the plan's argv and env are already
    // the C strings execve takes).
    let argv0 = plan
        .argv
        .first()
        .map(|a| display_arg(a))
        .unwrap_or_default();
    let (err_r, err_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(setup_err("create a pipe"))?;
    // Our own launcher reports why it could not sandbox the task through this pipe (named in its
    // environment); pledge.com knows nothing of it, so it gets neither.
    let (report_r, report_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .map_err(setup_err("create a pipe"))?;
    let mut env = plan.env.clone();
    let reports = plan.policy.launcher().is_built_in();
    if reports {
        let var = format!(
            "{}={}",
            crate::sandbox::launch::REPORT_FD_ENV,
            report_w.as_raw_fd()
        );
        env.push(CString::new(var).expect("a variable name and a number hold no NUL"));
    }

    let child = match sys::fork_single_threaded().map_err(|source| SupervisorError::Setup {
        step: "fork the task",
        source,
    })? {
        ForkResult::Child => {
            drop(err_r);
            if reports {
                // Inherited across the launcher's execve; it sets close-on-exec again itself.
                let _ = nix::fcntl::fcntl(
                    &report_w,
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
                );
            }
            let (step, e) = task_child(plan, &plan.argv, &env, false);
            let msg = format!("{step}\0{}", e as i32);
            let _ = nix::unistd::write(&err_w, msg.as_bytes());
            sys::exit_now(127);
        }
        ForkResult::Parent { child } => child,
    };
    drop(err_w);
    let mut report = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match nix::unistd::read(&err_r, &mut buf) {
            Ok(0) => break,
            Ok(n) => report.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    if !report.is_empty() {
        let text = String::from_utf8_lossy(&report).into_owned();
        let (step, errno) = text.split_once('\0').unwrap_or((&text, "0"));
        let _ = waitpid(child, None);
        return Err(SupervisorError::Exec {
            step: step.to_string(),
            argv0,
            source: std::io::Error::from_raw_os_error(errno.parse().unwrap_or(0)),
        });
    }
    drop(report_w);
    let mut status = wait_loop(child, &all);
    if plan.host_pid {
        kill_leftovers();
    }
    if let Some(msg) = read_report(&report_r) {
        status.err = Some(format!("the sandbox could not start the task: {msg}"));
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

/// What the launcher wrote to the report pipe (nothing when it exec'd the program).
fn read_report(r: &std::os::fd::OwnedFd) -> Option<String> {
    let mut report = Vec::new();
    let mut buf = [0u8; 1024];
    while report.len() < 8192 {
        match nix::unistd::read(r, &mut buf) {
            Ok(n) if n > 0 => report.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) => continue,
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&report).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Forward signals, reap zombies, return when the task child is gone.
fn wait_loop(child: Pid, all: &SigSet) -> ExitStatus {
    loop {
        // Reap first: SIGCHLD may have arrived before we started waiting.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => {
                    return ExitStatus {
                        exit_code: code,
                        ..Default::default()
                    }
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                    return ExitStatus {
                        exit_code: 128 + sig as i32,
                        signal: sig as i32,
                        ..Default::default()
                    }
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
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

/// The task child: session, oom score, nice, cwd, groups, gid, uid, signals, exec.
/// Returns only on failure, with the failing step.
/// With `ctty`, fd 0 (a pty slave) becomes the controlling terminal of the new session (exec).
pub(super) fn task_child(
    plan: &SupervisorPlan,
    argv: &[CString],
    env: &[CString],
    ctty: bool,
) -> (&'static str, nix::errno::Errno) {
    let errno = |e: std::io::Error| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0));
    if let Err(e) = nix::unistd::setsid() {
        return ("setsid", e);
    }
    if ctty {
        if let Err(e) = sys::set_controlling_tty(0) {
            return ("make the pty the controlling terminal", errno(e));
        }
    }
    if let Err(e) = super::rlimit::set_oom_score_adj(plan.limits.oom_score_adj) {
        return ("set oom_score_adj", errno(e));
    }
    if let Err(e) = sys::set_nice(plan.nice) {
        return ("set nice", errno(e));
    }
    if let Err(e) = nix::unistd::chdir(plan.cwd.as_os_str().as_bytes()) {
        return ("chdir to the task directory", e);
    }
    if let Some(limit) = plan.nofile {
        if let Err(e) = super::limits::restore_nofile(limit) {
            return ("restore the open-file limit", e);
        }
    }
    for u in &plan.limits.ulimits {
        if let Err(e) = u.apply() {
            return ("set a ulimit", e);
        }
    }
    let groups: Vec<Gid> = plan.user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    if let Err(e) = nix::unistd::setgroups(&groups) {
        return ("setgroups", e);
    }
    if let Err(e) = nix::unistd::setgid(Gid::from_raw(plan.user.gid)) {
        return ("setgid", e);
    }
    if let Err(e) = nix::unistd::setuid(Uid::from_raw(plan.user.uid)) {
        return ("setuid", e);
    }
    sys::default_signal_dispositions();
    if let Err(e) =
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
    {
        return ("unblock signals", e);
    }
    let Some(path) = argv.first() else {
        return ("exec (empty argv)", nix::errno::Errno::EINVAL);
    };
    match execve(path, argv, env) {
        Ok(never) => match never {},
        Err(e) => ("exec the launcher", e),
    }
}
