//! Learn mode for tasks (`run --learn`; plugin option `allow_learn`): the root recorder.
//!
//! The task child installs the learn filter (`sandbox::learn`) instead of its sandbox and names
//! its listener to the supervisor, which takes it (`pidfd_getfd`) and forks this recorder: a
//! root process outside the task's reach as far as a root process can be (the task runs as its
//! own user; in learn mode nothing is denied, so a root task could reach it: learn mode is not a
//! sandbox). The recorder lets every notified call continue and records it. When the task's
//! main process has exited the supervisor closes the recorder's stop pipe; the recorder answers
//! what is still queued, summarises the record and writes it to [`LEARN_FILE`] in the task's
//! state directory, which the plugin turns into a task event when it reads the exit status.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Mutex;

use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::spawn::SupervisorPlan;
use super::sys;
use crate::sandbox::learn::{observe, summary};
use crate::sandbox::prepared::Sandbox;

/// The summary's file in the task's state directory.
pub const LEARN_FILE: &str = "learn.json";

/// What a learn run of a task found, as the recorder writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The job fragment (`task "NAME" { config { promises = ... unveil = [...] } }`).
    pub fragment: String,
    pub promises: String,
    pub unveil: Vec<String>,
    pub warnings: Vec<String>,
}

struct Config {
    out: PathBuf,
    task: String,
    named: Vec<(PathBuf, String)>,
}

static CONFIG: Mutex<Option<Config>> = Mutex::new(None);
static RUNNING: Mutex<Option<(OwnedFd, Pid)>> = Mutex::new(None);

/// Where the supervisor of `plan` has its recorder write, and how the task's directories are
/// written (most specific first).
pub fn configure(plan: &SupervisorPlan) {
    let t = &plan.task_dir;
    let named = crate::sandbox::learn::summary::task_dirs_by_name(t);
    let task = t
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    *CONFIG.lock().unwrap_or_else(|e| e.into_inner()) = Some(Config {
        out: plan.state_path.join(LEARN_FILE),
        task,
        named,
    });
}

/// Fork the recorder for `listener` (the task child `child` is blocked in its first execve).
pub fn start(listener: OwnedFd, child: Pid, sandbox: &Sandbox) -> std::io::Result<()> {
    let mut ctx = sandbox.learn_context(None);
    let cfg = CONFIG.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(c) = &cfg {
        ctx.named_dirs = c.named.clone();
    }
    let (r, w) = nix::unistd::pipe()?;
    match sys::fork_single_threaded()? {
        nix::unistd::ForkResult::Child => {
            drop(w);
            let rec = observe::serve(listener.as_fd(), child.as_raw() as u32, Some(r.as_fd()));
            if let Some(c) = cfg {
                let learned = summary::summarize(&rec, &ctx);
                let outcome = Outcome {
                    fragment: learned.hcl(&c.task),
                    promises: learned
                        .promises
                        .iter()
                        .map(|p| p.name())
                        .collect::<Vec<_>>()
                        .join(" "),
                    unveil: learned.unveil.clone(),
                    warnings: learned.warnings.clone(),
                };
                if let Ok(bytes) = serde_json::to_vec(&outcome) {
                    let _ = std::fs::write(&c.out, bytes);
                }
            }
            sys::exit_now(0)
        }
        nix::unistd::ForkResult::Parent { child: pid } => {
            drop(r);
            drop(listener);
            *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) = Some((w, pid));
            Ok(())
        }
    }
}

/// The task's main process is gone: stop the recorder and wait until it wrote its summary.
pub fn finish() {
    let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some((w, pid)) = running {
        drop(w);
        let _ = nix::sys::wait::waitpid(pid, None);
    }
}

/// The outcome the recorder left in `state_path`, if any.
pub fn read_outcome(state_path: &std::path::Path) -> Option<Outcome> {
    let bytes = std::fs::read(state_path.join(LEARN_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}
