//! The allocation directory a Nomad client lays out before starting a task
//! (nomad-plugin-protocol.md §5.2–5.3), the task's `NOMAD_*` environment, and the log FIFOs.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use thiserror::Error;

use super::job::{Group, Job, Task};
use super::term::{LineCopier, Target, PARTIAL_LINE_GRACE};

#[derive(Debug, Error)]
pub enum AllocError {
    #[error("cannot create {path} (check that the parent directory is writable)")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot create the log FIFO {path}")]
    Fifo { path: PathBuf, source: nix::Error },
}

/// `<base>/<alloc_id>` with `alloc/{data,logs,tmp}` and one directory per task.
pub struct AllocDir {
    pub alloc_id: String,
    pub path: PathBuf,
}

/// Environment variables of the agent that Nomad's default `env.denylist` keeps from tasks.
const ENV_DENYLIST: &[&str] = &[
    "CONSUL_TOKEN",
    "CONSUL_HTTP_TOKEN",
    "CONSUL_HTTP_TOKEN_FILE",
    "NOMAD_TOKEN",
    "VAULT_TOKEN",
    "NOMAD_LICENSE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "NOMAD_PLUGIN_MAGIC_COOKIE",
    "PLUGIN_PROTOCOL_VERSIONS",
];

fn mkdir(path: &Path, mode: u32) -> Result<(), AllocError> {
    let err = |source| AllocError::Create {
        path: path.to_path_buf(),
        source,
    };
    fs::create_dir_all(path).map_err(err)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(err)
}

impl AllocDir {
    /// Lays out the allocation directory for `tasks` under `base`.
    pub fn create(base: &Path, alloc_id: &str, tasks: &[&str]) -> Result<AllocDir, AllocError> {
        let path = base.join(alloc_id);
        mkdir(&path, 0o755)?;
        for sub in ["alloc", "alloc/data", "alloc/logs"] {
            mkdir(&path.join(sub), 0o755)?;
        }
        mkdir(&path.join("alloc/tmp"), 0o1777)?;
        for task in tasks {
            let dir = path.join(task);
            mkdir(&dir, 0o777)?;
            mkdir(&dir.join("local"), 0o777)?;
            mkdir(&dir.join("secrets"), 0o777)?;
            mkdir(&dir.join("private"), 0o700)?;
            mkdir(&dir.join("tmp"), 0o1777)?;
        }
        Ok(AllocDir {
            alloc_id: alloc_id.to_string(),
            path,
        })
    }

    pub fn task_dir(&self, task: &str) -> PathBuf {
        self.path.join(task)
    }

    /// The stdout and stderr FIFO paths of `task`, as logmon names them.
    pub fn fifo_paths(&self, task: &str) -> (PathBuf, PathBuf) {
        let logs = self.path.join("alloc/logs");
        (
            logs.join(format!(".{task}.stdout.fifo")),
            logs.join(format!(".{task}.stderr.fifo")),
        )
    }

    /// The environment a Nomad client gives a task with `fs_isolation = NONE`: the agent's own
    /// environment less the deny-list, the `NOMAD_*` variables, then the job's `env {}`.
    pub fn task_env(
        &self,
        job: &Job,
        group: &Group,
        task: &Task,
        host_env: impl IntoIterator<Item = (String, String)>,
    ) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = host_env
            .into_iter()
            .filter(|(k, _)| !ENV_DENYLIST.contains(&k.as_str()) && !k.starts_with("NOMAD_"))
            .collect();
        let task_dir = self.task_dir(&task.name);
        let r = &task.resources;
        let short = self.alloc_id.chars().take(8).collect::<String>();
        let vars: [(&str, String); 18] = [
            (
                "NOMAD_ALLOC_DIR",
                self.path.join("alloc").display().to_string(),
            ),
            (
                "NOMAD_TASK_DIR",
                task_dir.join("local").display().to_string(),
            ),
            (
                "NOMAD_SECRETS_DIR",
                task_dir.join("secrets").display().to_string(),
            ),
            ("NOMAD_ALLOC_ID", self.alloc_id.clone()),
            ("NOMAD_SHORT_ALLOC_ID", short),
            (
                "NOMAD_ALLOC_NAME",
                format!("{}.{}[0]", job.name, group.name),
            ),
            ("NOMAD_ALLOC_INDEX", "0".into()),
            ("NOMAD_TASK_NAME", task.name.clone()),
            ("NOMAD_GROUP_NAME", group.name.clone()),
            ("NOMAD_JOB_ID", job.name.clone()),
            ("NOMAD_JOB_NAME", job.name.clone()),
            ("NOMAD_NAMESPACE", "default".into()),
            ("NOMAD_REGION", "global".into()),
            ("NOMAD_DC", "dc1".into()),
            ("NOMAD_CPU_LIMIT", r.cpu.to_string()),
            (
                "NOMAD_CPU_CORES",
                if r.cores > 0 {
                    r.cores.to_string()
                } else {
                    String::new()
                },
            ),
            ("NOMAD_MEMORY_LIMIT", r.memory.to_string()),
            ("NOMAD_MEMORY_MAX_LIMIT", r.memory_max.max(0).to_string()),
        ];
        for (k, v) in vars {
            if !v.is_empty() {
                env.insert(k.to_string(), v);
            }
        }
        env
    }

    /// Removes the whole allocation directory.
    pub fn remove(&self) -> io::Result<()> {
        fs::remove_dir_all(&self.path)
    }
}

/// Creates a log FIFO (mode 0600, as logmon does) and copies what the task writes into it to
/// `sink` on a thread, until every writer has closed it.
pub struct LogPipe {
    path: PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl LogPipe {
    pub fn start(path: PathBuf, target: Target) -> Result<LogPipe, AllocError> {
        match nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(source) => return Err(AllocError::Fifo { path, source }),
        }
        // Opened without blocking, so that `finish` can always wake the reader; on Linux a FIFO
        // reader does not see a hang-up before the first writer has come and gone.
        let mut fifo = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .map_err(|source| AllocError::Create {
                path: path.clone(),
                source,
            })?;
        let thread = std::thread::spawn(move || {
            let mut copier = LineCopier::new(target);
            let mut buf = [0u8; 8192];
            let grace = PollTimeout::try_from(PARTIAL_LINE_GRACE).unwrap_or(PollTimeout::NONE);
            loop {
                let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
                let timeout = if copier.has_pending() {
                    grace
                } else {
                    PollTimeout::NONE
                };
                match poll(&mut fds, timeout) {
                    // Quiet for the grace period: show the partial line.
                    Ok(0) => {
                        if copier.flush_partial().is_err() {
                            break;
                        }
                        continue;
                    }
                    Ok(_) | Err(nix::Error::EINTR) => {}
                    Err(_) => break,
                }
                match fifo.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if copier.push(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                        ) => {}
                    Err(_) => break,
                }
            }
            let _ = copier.flush_partial();
        });
        Ok(LogPipe {
            path,
            thread: Some(thread),
        })
    }

    /// Waits until the task's writers are gone and everything is copied. If no writer ever
    /// opened the FIFO (the task failed to start), opens and closes a write end so the reader
    /// thread sees the hang-up instead of waiting forever.
    pub fn finish(mut self) {
        if let Some(thread) = self.thread.take() {
            if !thread.is_finished() {
                // O_NONBLOCK: never blocks; our own reader end is open, so this succeeds.
                let _ = fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&self.path);
            }
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lays_out_the_alloc_dir_and_env() {
        let base = tempfile::tempdir().unwrap();
        let job = Job::parse(
            "job \"j\" {\n group \"g\" {\n task \"t\" {\n driver = \"pledge\"\n }\n }\n }",
        )
        .unwrap();
        let alloc = AllocDir::create(base.path(), "0123456789abcdef", &["t"]).unwrap();
        for sub in [
            "alloc/data",
            "alloc/logs",
            "alloc/tmp",
            "t/local",
            "t/secrets",
            "t/tmp",
        ] {
            assert!(alloc.path.join(sub).is_dir(), "{sub}");
        }
        let mode = fs::metadata(alloc.path.join("t/tmp"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o1777);
        let (g, t) = (&job.groups[0], &job.groups[0].tasks[0]);
        let env = alloc.task_env(
            &job,
            g,
            t,
            [
                ("PATH".to_string(), "/bin".to_string()),
                ("VAULT_TOKEN".to_string(), "secret".to_string()),
                ("NOMAD_PLUGIN_MAGIC_COOKIE".to_string(), "x".to_string()),
            ],
        );
        assert_eq!(env["PATH"], "/bin");
        assert!(!env.contains_key("VAULT_TOKEN"));
        assert!(!env.contains_key("NOMAD_PLUGIN_MAGIC_COOKIE"));
        assert_eq!(
            env["NOMAD_TASK_DIR"],
            alloc.path.join("t/local").display().to_string()
        );
        assert_eq!(env["NOMAD_SHORT_ALLOC_ID"], "01234567");
        assert_eq!(env["NOMAD_MEMORY_LIMIT"], "300");
        alloc.remove().unwrap();
        assert!(!alloc.path.exists());
    }

    #[test]
    fn log_pipe_copies_until_the_writer_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".t.stdout.fifo");
        let sink = Sink::default();
        let pipe = LogPipe::start(path.clone(), Target::Writer(Box::new(sink.clone()))).unwrap();
        {
            let mut w = fs::OpenOptions::new().write(true).open(&path).unwrap();
            w.write_all(b"hello\n").unwrap();
            // A partial line is held back, then copied when the writer closes.
            w.write_all(b"no newline").unwrap();
        }
        pipe.finish();
        assert_eq!(&*sink.0.lock().unwrap(), b"hello\nno newline");
    }

    #[test]
    fn log_pipe_finishes_when_nobody_ever_writes() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = LogPipe::start(
            dir.path().join("f"),
            Target::Writer(Box::new(Sink::default())),
        )
        .unwrap();
        pipe.finish();
    }
}
