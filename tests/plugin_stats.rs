//! TaskStats streams through the built plugin binary: several streams of one task share each
//! tick's sample, and a stream ends when its task is destroyed. Needs root and a cgroup v2
//! mount; skips with a printed reason otherwise.

mod common;

use std::time::Duration;

use common::pb::drivers::{TaskStats, TaskStatsRequest};
use common::tasks::*;
use common::*;
use futures::StreamExt;
use tonic::Streaming;

use common::pb::drivers::TaskStatsResponse;

async fn open(plugin: &Plugin, id: &str, every: Duration) -> Streaming<TaskStatsResponse> {
    plugin
        .driver()
        .task_stats(TaskStatsRequest {
            task_id: id.into(),
            collection_interval: Some(pb_duration(every)),
        })
        .await
        .expect("TaskStats")
        .into_inner()
}

/// The next message, bounded by `PATIENCE` (a guard against hanging, not a timing check).
async fn next(stream: &mut Streaming<TaskStatsResponse>) -> Option<TaskStats> {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("a stats message or the stream's end in time")
        .map(|m| m.expect("stats").stats.expect("stats set"))
}

fn stamp(s: &TaskStats) -> (i64, i32) {
    let t = s.timestamp.as_ref().expect("timestamp");
    (t.seconds, t.nanos)
}

/// Two streams on one task read its cgroup once per tick: they report the very same sample
/// (same timestamp), and each stream's samples are fresh (their timestamps advance). Each
/// stream's CPU percentage is relative to its own previous sample, so a second stream no longer
/// measures the microseconds since the first one's read.
#[tokio::test]
async fn two_streams_on_one_task_get_the_same_fresh_sample_each_tick() {
    require_host!();
    let alloc = Alloc::new("stats");
    let plugin = plugin(&alloc).await;
    let h = start(&plugin, alloc.task("pair", "sleep", &["1000"], "stdio")).await;
    let id = h.config.unwrap().id;
    let every = Duration::from_millis(300);
    let (mut a, mut b) = (
        open(&plugin, &id, every).await,
        open(&plugin, &id, every).await,
    );
    // The first message of each is taken when it opens; the ticks' follow.
    next(&mut a).await.expect("a first sample");
    next(&mut b).await.expect("b first sample");
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        sa.push(stamp(&next(&mut a).await.expect("a sample")));
        sb.push(stamp(&next(&mut b).await.expect("b sample")));
    }
    for s in [&sa, &sb] {
        assert!(s.windows(2).all(|w| w[0] < w[1]), "not fresh: {s:?}");
    }
    // A stream that falls a tick behind skips it, so ask for a shared tick, not all four.
    let shared = sa.iter().filter(|t| sb.contains(t)).count();
    assert!(
        shared >= 1,
        "no tick sampled once for both: {sa:?} vs {sb:?}"
    );
    destroy(&plugin, &id).await;
    drop((a, b));
    plugin.shutdown().await;
}

/// A stream on a task that exits and is destroyed ends (no error), and a later stream on the
/// same id is refused.
#[tokio::test]
async fn a_stream_ends_when_its_task_is_destroyed() {
    require_host!();
    let alloc = Alloc::new("stats");
    let plugin = plugin(&alloc).await;
    let h = start(&plugin, alloc.task("brief", "sleep", &["1000"], "stdio")).await;
    let id = h.config.unwrap().id;
    let mut s = open(&plugin, &id, Duration::from_millis(100)).await;
    next(&mut s).await.expect("a first sample");
    stop(&plugin, &id, "SIGKILL", Duration::from_secs(1)).await;
    wait(&plugin, &id).await;
    // The exited task is still reported (its cgroup stays until DestroyTask).
    next(&mut s).await.expect("a sample after the exit");
    destroy(&plugin, &id).await;
    let mut after = 0;
    while next(&mut s).await.is_some() {
        after += 1;
        assert!(after < 100, "the stream goes on after DestroyTask");
    }
    let again = plugin
        .driver()
        .task_stats(TaskStatsRequest {
            task_id: id.clone(),
            collection_interval: Some(pb_duration(Duration::from_millis(100))),
        })
        .await;
    assert!(again.is_err(), "a stream on a destroyed task was opened");
    plugin.shutdown().await;
}
