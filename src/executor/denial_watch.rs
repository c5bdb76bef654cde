//! Wakes a task's exit monitor when its supervisor appends denial records (`denial_log.rs`):
//! one inotify instance per executor and one watch per reporting task's state directory, so
//! that 1,000 idle tasks cost nothing (a timer per task cost 7 % of a core at 1,000 tasks).
//! Where inotify is unavailable (no instance, or `max_user_watches` reached), the monitor falls
//! back to looking at the records on a timer.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::sync::{Arc, Mutex};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

/// `Inotify` for `AsyncFd` (which wants `AsRawFd`).
struct Fd(Inotify);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// The executor's inotify instance and who is waiting on which watch.
pub struct DenialWatch {
    fd: AsyncFd<Fd>,
    waiters: Mutex<HashMap<WatchDescriptor, Arc<Notify>>>,
}

/// One task's watch; removed on drop.
pub struct Watch {
    shared: Arc<DenialWatch>,
    wd: WatchDescriptor,
    pub changed: Arc<Notify>,
}

impl DenialWatch {
    /// A new instance with its reader task (on the current tokio runtime); None where the
    /// kernel gives no inotify instance (the caller polls instead).
    pub fn start() -> Option<Arc<DenialWatch>> {
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| tracing::debug!("no inotify for denial records ({e}): polling instead"))
            .ok()?;
        // `AsyncFd::new` is deprecated because a `T` could close its descriptor while it is
        // registered; `Fd` owns the inotify descriptor for as long as the AsyncFd lives.
        #[allow(deprecated)]
        let fd = AsyncFd::new(Fd(ino)).ok()?;
        let shared = Arc::new(DenialWatch {
            fd,
            waiters: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&shared);
        tokio::spawn(async move {
            loop {
                let Some(s) = weak.upgrade() else { return };
                let ready = s.fd.readable().await;
                let Ok(mut guard) = ready else { return };
                match guard.get_inner().0.read_events() {
                    Ok(events) => {
                        let waiters = s.waiters.lock().expect("denial watch lock");
                        for e in events {
                            if let Some(n) = waiters.get(&e.wd) {
                                n.notify_one();
                            }
                        }
                    }
                    Err(nix::errno::Errno::EAGAIN) => guard.clear_ready(),
                    Err(e) => {
                        tracing::warn!("reading inotify events for denial records: {e}");
                        return;
                    }
                }
            }
        });
        Some(shared)
    }

    /// Watches `dir` (a task's state directory) for writes; None if the watch cannot be added.
    pub fn watch(self: &Arc<Self>, dir: &Path) -> Option<Watch> {
        let wd = self
            .fd
            .get_ref()
            .0
            .add_watch(
                dir,
                AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CLOSE_WRITE,
            )
            .map_err(|e| {
                tracing::debug!(
                    "cannot watch {} for denial records ({e}): polling instead",
                    dir.display()
                )
            })
            .ok()?;
        let changed = Arc::new(Notify::new());
        self.waiters
            .lock()
            .expect("denial watch lock")
            .insert(wd, changed.clone());
        Some(Watch {
            shared: self.clone(),
            wd,
            changed,
        })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.shared
            .waiters
            .lock()
            .expect("denial watch lock")
            .remove(&self.wd);
        let _ = self.shared.fd.get_ref().0.rm_watch(self.wd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_write_in_the_watched_directory_wakes_the_waiter() {
        let dir = tempfile::tempdir().unwrap();
        let w = DenialWatch::start().expect("inotify");
        let watch = w.watch(dir.path()).expect("a watch");
        let other = tempfile::tempdir().unwrap();
        let watch_other = w.watch(other.path()).expect("a watch");
        std::fs::write(dir.path().join("denials.jsonl"), "{}\n").unwrap();
        tokio::time::timeout(Duration::from_secs(30), watch.changed.notified())
            .await
            .expect("woken by the write");
        // The other directory's waiter was not woken.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), watch_other.changed.notified())
                .await
                .is_err()
        );
        drop(watch);
        std::fs::write(dir.path().join("denials.jsonl"), "{}\n{}\n").unwrap();
    }
}
