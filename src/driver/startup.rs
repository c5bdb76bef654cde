//! When the plugin gives back what only its start-up used (`executor::memory`): once, half a
//! second after the first fingerprint sent with the long-lived config. A Nomad client starts a plugin with
//! SetConfig, then opens the Fingerprint and TaskEvents streams; by the first fingerprint the
//! handshake, the config decoding and the host probes are done, and an idle plugin runs only
//! its event loop from then on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long after the first fingerprint the release waits.
const SETTLE: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
pub struct StartupMemory {
    configured: AtomicBool,
    released: AtomicBool,
}

impl StartupMemory {
    /// SetConfig with the long-lived instance's config (not a validation launch).
    pub fn configured(&self) {
        self.configured.store(true, Ordering::Release);
    }

    /// A fingerprint went out: once the plugin is configured, the first call schedules the
    /// release (on a blocking thread, [`SETTLE`] later) and returns true; every other call
    /// returns false.
    pub fn fingerprint_sent(&self) -> bool {
        if !self.configured.load(Ordering::Acquire) || self.released.swap(true, Ordering::AcqRel) {
            return false;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        rt.spawn(async {
            // The client's next start-up calls (TaskEvents, Capabilities) follow at once.
            tokio::time::sleep(SETTLE).await;
            let released =
                tokio::task::spawn_blocking(crate::executor::memory::release_startup_memory).await;
            match released {
                Ok(Ok(r)) => tracing::debug!(
                    unmapped_kib = r.unmapped_kib,
                    "gave back the start-up's memory"
                ),
                Ok(Err(e)) => tracing::debug!(error = %e, "cannot read /proc/self/smaps"),
                Err(_) => {}
            }
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn released_once_after_the_first_fingerprint_of_a_configured_plugin() {
        let m = StartupMemory::default();
        assert!(!m.fingerprint_sent(), "not configured yet");
        m.configured();
        assert!(m.fingerprint_sent());
        assert!(!m.fingerprint_sent(), "only once");
        m.configured();
        assert!(!m.fingerprint_sent(), "a new config does not release again");
    }
}
