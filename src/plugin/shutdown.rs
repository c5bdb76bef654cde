//! A one-way "stop serving" latch shared by the controller, signal handlers and long-lived streams.

use futures::Stream;
use tokio::sync::watch;

/// Cheap to clone; every clone observes the same latch.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: std::sync::Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Self {
            tx: std::sync::Arc::new(tx),
            rx,
        }
    }

    /// Requests shutdown (idempotent).
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Resolves once shutdown was requested.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        // An error means the sender is gone, which cannot happen while `self` holds it.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// A stream that yields nothing and ends when shutdown is requested: the body of streams
    /// that must merely stay open (go-plugin stdio, broker).
    pub fn idle_stream<T: Send + 'static>(&self) -> impl Stream<Item = T> + Send + 'static {
        let this = self.clone();
        futures::StreamExt::filter_map(
            futures::stream::once(async move { this.wait().await }),
            |()| futures::future::ready(None),
        )
    }
}
