//! One ticker per TaskStats collection interval, shared by every stream with that interval.
//!
//! With a timer and a shutdown waiter of their own, a thousand streams cost a thousand timer
//! entries and a thousand shutdown waiters re-registered at every message. Here one task per
//! interval ticks on the grid of [`super::tasks::stats_grid_start`], publishes the tick's
//! instant on a `watch` channel and so wakes every stream of that interval at once (their
//! messages then leave in the same HTTP/2 writes); the instant is also the key by which a task
//! with several streams is sampled once per tick. The ticker ends when its last stream is gone
//! or the plugin shuts down; dropping its sender then ends the streams waiting on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::plugin::Shutdown;

type Tickers = Arc<Mutex<HashMap<Duration, watch::Sender<Instant>>>>;

/// The running tickers, by interval.
#[derive(Debug, Default)]
pub struct StatsTicks {
    tickers: Tickers,
}

impl StatsTicks {
    /// The ticks of `interval` (started when no stream uses it yet). `changed()` resolves at
    /// each tick and fails once the ticker has stopped (shutdown).
    pub fn subscribe(&self, interval: Duration, shutdown: &Shutdown) -> watch::Receiver<Instant> {
        let mut tickers = self.tickers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = tickers.get(&interval) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(Instant::now());
        tickers.insert(interval, tx);
        tokio::spawn(run(self.tickers.clone(), interval, shutdown.clone()));
        rx
    }

    /// How many tickers run (for tests).
    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.tickers.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

async fn run(tickers: Tickers, interval: Duration, shutdown: Shutdown) {
    let mut ticker = tokio::time::interval_at(super::tasks::stats_grid_start(interval), interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        let at = tokio::select! {
            at = ticker.tick() => at,
            () = &mut stop => break,
        };
        let mut tickers = tickers.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = tickers.get(&interval) else {
            return;
        };
        if tx.receiver_count() == 0 {
            tickers.remove(&interval);
            return;
        }
        tx.send_replace(at);
    }
    tickers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&interval);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (generously; not a timing assertion) until `ok` holds.
    async fn until(what: &str, ok: impl Fn() -> bool) {
        for _ in 0..3000 {
            if ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never: {what}");
    }

    #[tokio::test]
    async fn streams_of_one_interval_share_a_ticker_that_stops_with_them() {
        let (ticks, shutdown) = (StatsTicks::default(), Shutdown::new());
        let fast = Duration::from_millis(20);
        let mut a = ticks.subscribe(fast, &shutdown);
        let mut b = ticks.subscribe(fast, &shutdown);
        let c = ticks.subscribe(Duration::from_secs(3600), &shutdown);
        assert_eq!(ticks.running(), 2);
        a.changed().await.unwrap();
        b.changed().await.unwrap();
        // Both streams see the same tick instant: the key of the shared sample.
        assert_eq!(*a.borrow_and_update(), *b.borrow_and_update());
        drop((a, b));
        // The fast ticker notices at its next tick that nobody listens and stops.
        until("the unused ticker stops", || ticks.running() == 1).await;
        drop(c);
    }

    #[tokio::test]
    async fn shutdown_ends_the_streams_waiting_for_a_tick() {
        let (ticks, shutdown) = (StatsTicks::default(), Shutdown::new());
        let mut a = ticks.subscribe(Duration::from_secs(3600), &shutdown);
        shutdown.trigger();
        // No tick comes in an hour: the wait ends because the ticker stopped.
        assert!(a.changed().await.is_err());
        assert_eq!(ticks.running(), 0);
    }
}
