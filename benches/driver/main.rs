//! `make bench` (`cargo bench --bench driver`): start/stop latency, memory, stats CPU and
//! seccomp overhead of nomad-pledge-driver, each against a baseline measured in the same run.
//!
//! The plugin is the release binary, spawned and driven over gRPC exactly like a Nomad client
//! does (tests/common/mod.rs). A row whose feature is missing on this build prints
//! `n/a (reason)`; nothing is estimated.
//!
//! Knobs (environment): BENCH_SCALE=full (100 latency samples, 100 and 1,000 tasks, longer
//! windows), BENCH_SAMPLES, BENCH_STOP_IGNORE_SAMPLES, BENCH_TASKS (e.g. "100,1000"),
//! BENCH_STATS_SECONDS, BENCH_KILL_TIMEOUT_MS, BENCH_SECCOMP_REPS, BENCH_DD_COUNT.
//!
//! `cargo test --all-targets` runs this binary without `--bench`: it then only checks its own
//! helpers (msgpack encoder, percentiles) and exits.

#[path = "../../tests/common/mod.rs"]
mod common;

mod baseline;
mod lifecycle;
mod msgpack;
mod procfs;
mod report;
mod sample;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baseline::strings;
use lifecycle::{Bench, TaskSpec, PATIENCE};
use msgpack::Value;
use report::Report;
use sample::{ms, p50_p99, Samples};

const BIN: &str = common::BIN;
/// uid/gid of `nobody`, the driver's default task user (used for the unshare chain too).
const NOBODY: u32 = 65534;

struct Settings {
    scale: &'static str,
    samples: usize,
    ignore_samples: usize,
    task_counts: Vec<usize>,
    stats_window: Duration,
    kill_timeout: Duration,
    seccomp_reps: usize,
    dd_count: u64,
    /// `BENCH_ONLY`: the sections to run (None: all). The start section always runs: the others
    /// need its lifecycle check.
    only: Option<Vec<String>>,
}

/// The sections `BENCH_ONLY` can pick.
const SECTIONS: [&str; 5] = ["memory", "denials", "stop", "tasks", "seccomp"];

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            eprintln!("{name}={v:?} is not a number; using the default");
            default
        }),
        Err(_) => default,
    }
}

impl Settings {
    fn from_env() -> Settings {
        let full = std::env::var("BENCH_SCALE").as_deref() == Ok("full");
        let counts_default = if full { "100,1000" } else { "100" };
        let task_counts = std::env::var("BENCH_TASKS")
            .unwrap_or_else(|_| counts_default.into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        Settings {
            scale: if full { "full" } else { "default" },
            samples: env_num("BENCH_SAMPLES", if full { 100 } else { 50 }),
            ignore_samples: env_num("BENCH_STOP_IGNORE_SAMPLES", if full { 20 } else { 10 }),
            task_counts,
            stats_window: Duration::from_secs(env_num(
                "BENCH_STATS_SECONDS",
                if full { 20 } else { 10 },
            )),
            kill_timeout: Duration::from_millis(env_num("BENCH_KILL_TIMEOUT_MS", 1000)),
            seccomp_reps: env_num("BENCH_SECCOMP_REPS", if full { 21 } else { 11 }),
            dd_count: env_num("BENCH_DD_COUNT", if full { 2_000_000 } else { 1_000_000 }),
            only: std::env::var("BENCH_ONLY")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.split(',').map(|p| p.trim().to_string()).collect()),
        }
    }

    /// Whether section `name` runs (`BENCH_ONLY=memory,denials,stop,tasks,seccomp` picks
    /// sections; unset runs all).
    fn runs(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|p| p == name))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        match msgpack::self_check().and_then(|()| sample::self_check()) {
            Ok(()) => {
                println!("driver bench: helper self-checks passed (measurements: make bench)")
            }
            Err(e) => {
                eprintln!("driver bench self-check failed: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let settings = Settings::from_env();
    for name in settings.only.iter().flatten() {
        if !SECTIONS.contains(&name.as_str()) {
            eprintln!(
                "BENCH_ONLY: unknown section {name:?} (known: {})",
                SECTIONS.join(",")
            );
            std::process::exit(2);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = rt.block_on(run(&settings));
    let header = machine_header(&settings);
    let md = report.markdown(&header);
    println!("\n{md}");
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-results.md");
    match std::fs::write(&out, &md) {
        Ok(()) => eprintln!("results written to {}", out.display()),
        Err(e) => eprintln!("cannot write {}: {e}", out.display()),
    }
}

async fn run(s: &Settings) -> Report {
    let mut r = Report::default();
    let root = nix::unistd::geteuid().is_root();
    let launcher = baseline::launcher_available(BIN);
    if let Err(e) = &launcher {
        r.notes.push(format!("Launcher: {e}."));
    }
    if !root {
        r.notes.push(
            "Not run as root: the unshare chain and the plugin's task rows need root.".into(),
        );
    }
    eprintln!("starting the plugin ({BIN})");
    let mut bench = match Bench::start().await {
        Ok(b) => {
            r.notes.push(format!("Plugin fingerprint: {}.", b.health));
            Some(b)
        }
        Err(e) => {
            r.notes
                .push(format!("Plugin could not be configured: {e}."));
            None
        }
    };

    if s.runs("memory") {
        r.section("Plugin memory (idle)");
        match &bench {
            Some(b) => idle_memory(&mut r, b).await,
            None => r.na("plugin RSS idle", "plugin not configured", "≤ 6 MiB"),
        }
    }

    r.section("Start: request → first stdout byte (`echo ready`)");
    let lifecycle_ok = start_latency(&mut r, bench.as_mut(), s, &launcher, root).await;

    if s.runs("denials") {
        r.section("Seccomp denial reporting: cost (plugin `seccomp_denials` on vs off, same run)");
        denial_reporting_cost(&mut r, bench.as_mut().filter(|_| lifecycle_ok.is_ok()), s).await;
    }

    if s.runs("stop") {
        r.section("Stop: StopTask → task exited (WaitTask returns)");
        stop_latency(
            &mut r,
            bench.as_mut().filter(|_| lifecycle_ok.is_ok()),
            s,
            &lifecycle_ok,
            root,
        )
        .await;
    }

    if s.runs("tasks") {
        r.section("Many tasks: memory and stats CPU");
        for &n in &s.task_counts {
            scale(
                &mut r,
                bench.as_mut().filter(|_| lifecycle_ok.is_ok()),
                s,
                n,
                &lifecycle_ok,
            )
            .await;
        }
    }

    if let Some(b) = bench.take() {
        b.finish().await;
    }

    if s.runs("seccomp") {
        r.section("seccomp filter overhead (`stdio rpath`)");
        tokio::task::block_in_place(|| seccomp(&mut r, s, &launcher));
    }
    r
}

fn machine_header(s: &Settings) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_string())
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kib| format!("{:.0} GiB RAM", kib as f64 / 1048576.0))
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "Machine: {nproc} CPUs ({cpu}), {mem}, Linux {kernel}; load average at the end {load}; \
         run {date}; scale `{}` ({} latency samples, tasks {:?}, stats window {} s, kill_timeout {} ms, \
         {} seccomp repetitions of {} bytes)",
        s.scale,
        s.samples,
        s.task_counts,
        s.stats_window.as_secs(),
        s.kill_timeout.as_millis(),
        s.seccomp_reps,
        s.dd_count
    )
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

async fn idle_memory(r: &mut Report, b: &Bench) {
    // Let start-up allocations settle (fingerprint, first stream messages).
    tokio::time::sleep(Duration::from_secs(2)).await;
    match procfs::memory(b.pid) {
        Ok(m) => r.row(
            "plugin RSS idle (after SetConfig, Fingerprint and TaskEvents streams open)",
            format!("{} RSS, {} Pss", mib(m.rss_kib), mib(m.pss_kib)),
            "",
            String::new(),
            "≤ 6 MiB",
        ),
        Err(e) => r.na("plugin RSS idle", &e, "≤ 6 MiB"),
    }
}

/// One StartTask sample.
/// Returns (request → first stdout byte, request → StartTask response).
async fn driver_start_sample(b: &mut Bench) -> Result<(Duration, Duration), String> {
    let spec = TaskSpec {
        name: "echo",
        command: "/usr/bin/echo",
        args: strings(&["ready"]),
        promises: "stdio rpath",
        unveil: Vec::new(),
        fifos: true,
    };
    let (mut task, t0) = b.start_task(&spec).await?;
    let rpc = t0.elapsed();
    let first = b.first_byte(&mut task).await;
    let waited = match tokio::time::timeout(PATIENCE, b.wait_task(&task)).await {
        Ok(Ok(r)) => r.map(|_| ()),
        Ok(Err(e)) => Err(format!("WaitTask join: {e}")),
        Err(_) => Err("WaitTask did not return within 30 s for `echo`".into()),
    };
    let destroyed = b.destroy(task).await;
    let first = first?;
    waited?;
    destroyed?;
    Ok((first - t0, rpc))
}

async fn start_latency(
    r: &mut Report,
    mut bench: Option<&mut Bench>,
    s: &Settings,
    launcher: &Result<(), String>,
    root: bool,
) -> Result<(), String> {
    let echo = strings(&["/usr/bin/echo", "ready"]);
    let mut pledged = strings(&[BIN, "pledge", "-p", "stdio rpath", "--"]);
    pledged.extend(echo.clone());
    let chain_plain = baseline::unshare_chain(NOBODY, NOBODY, &echo);
    let chain_launcher = baseline::unshare_chain(NOBODY, NOBODY, &pledged);

    let (mut bare, mut plain, mut full, mut drv) = (
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
    );
    let mut drv_rpc = Samples::default();
    let mut errs: [Option<String>; 4] = [None, None, None, None];
    if !root {
        errs[1] = Some("needs root for --setuid".into());
        errs[2] = errs[1].clone();
    }
    if let Err(e) = launcher {
        errs[2] = Some(e.clone());
    }
    if bench.is_none() {
        errs[3] = Some("plugin not configured".into());
    }
    eprintln!("start latency: {} samples", s.samples);
    for _ in 0..s.samples {
        let sets: [(&Vec<String>, &mut Samples); 3] = [
            (&echo, &mut bare),
            (&chain_plain, &mut plain),
            (&chain_launcher, &mut full),
        ];
        for (i, (argv, samples)) in sets.into_iter().enumerate() {
            if errs[i].is_none() {
                match tokio::task::block_in_place(|| baseline::first_byte(argv)) {
                    Ok(d) => samples.push(d),
                    Err(e) => errs[i] = Some(e),
                }
            }
        }
        if errs[3].is_none() {
            if let Some(b) = bench.as_deref_mut() {
                match driver_start_sample(b).await {
                    Ok((d, rpc)) => {
                        drv.push(d);
                        drv_rpc.push(rpc);
                    }
                    Err(e) => errs[3] = Some(e),
                }
            }
        }
    }
    let rows: [(&str, &Samples, &Option<String>); 3] = [
        ("bare fork/exec from the benchmark process", &bare, &errs[0]),
        (
            "unshare chain without launcher (`unshare --ipc --pid --mount-proc --fork --kill-child=SIGKILL --setuid --setgid -- echo`)",
            &plain,
            &errs[1],
        ),
        (
            "original driver's launch: unshare chain + `nomad-pledge-driver pledge -p 'stdio rpath' -- echo`",
            &full,
            &errs[2],
        ),
    ];
    for (what, samples, err) in rows {
        match err {
            Some(e) if samples.len() == 0 => r.na(what, e, ""),
            _ => {
                let ratio = if std::ptr::eq(samples, &bare) {
                    String::new()
                } else {
                    ratio_p50(samples, &bare, "bare")
                };
                r.row(
                    what,
                    format!("p50 / p99 {}", p50_p99(samples)),
                    "",
                    ratio,
                    "",
                );
            }
        }
    }
    let what = "**StartTask → first byte on the stdout FIFO** (plugin, gRPC)";
    match &errs[3] {
        Some(e) => {
            r.na(what, e, "≤ 1.5× bare fork/exec");
            Err(e.clone())
        }
        None => {
            let mut ratio = ratio_p50(&drv, &bare, "bare");
            if full.len() > 0 {
                ratio.push_str(&format!("; {}", ratio_p50(&drv, &full, "original chain")));
            }
            r.row(
                what,
                format!(
                    "p50 / p99 {} (StartTask response itself: {})",
                    p50_p99(&drv),
                    p50_p99(&drv_rpc)
                ),
                "bare fork/exec",
                ratio,
                "≤ 1.5× bare fork/exec",
            );
            Ok(())
        }
    }
}

/// Paired samples of two plugins: durations on each side and their per-pair ratios (a / b).
#[derive(Default)]
struct Paired {
    a: Samples,
    b: Samples,
    ratios: Vec<f64>,
    /// The first failure (sampling stops there).
    err: Option<String>,
}

/// `$n` pairs of `$sample` (a future built from `$bench: &mut Bench`, giving
/// `Result<Duration, String>`) on `$on` and `$off`, in alternating order so that drift hits both
/// sides alike.
macro_rules! paired {
    ($n:expr, $on:expr, $off:expr, |$bench:ident| $sample:expr) => {{
        let (on, off): (&mut Bench, &mut Bench) = ($on, $off);
        let mut p = Paired::default();
        for i in 0..$n {
            let pair = if i % 2 == 0 {
                let x = {
                    let $bench = &mut *on;
                    $sample
                }
                .await;
                match x {
                    Ok(x) => {
                        let $bench = &mut *off;
                        $sample
                    }
                    .await
                    .map(|y| (x, y)),
                    Err(e) => Err(e),
                }
            } else {
                let y = {
                    let $bench = &mut *off;
                    $sample
                }
                .await;
                match y {
                    Ok(y) => {
                        let $bench = &mut *on;
                        $sample
                    }
                    .await
                    .map(|x| (x, y)),
                    Err(e) => Err(e),
                }
            };
            match pair {
                Ok((x, y)) => {
                    p.a.push(x);
                    p.b.push(y);
                    p.ratios.push(x.as_secs_f64() / y.as_secs_f64());
                }
                Err(e) => {
                    p.err = Some(e);
                    break;
                }
            }
        }
        p
    }};
}

/// StartTask → WaitTask returned, for a task without FIFOs: the task's whole run.
async fn run_sample(b: &mut Bench, spec: &TaskSpec) -> Result<Duration, String> {
    let (task, t0) = b.start_task(spec).await?;
    let waited = match tokio::time::timeout(PATIENCE * 4, b.wait_task(&task)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(format!("WaitTask join: {e}")),
        Err(_) => Err(format!(
            "WaitTask did not return in time for `{}`",
            spec.name
        )),
    };
    let destroyed = b.destroy(task).await;
    let done = waited?;
    destroyed?;
    Ok(done - t0)
}

/// The cost of seccomp denial reporting (the root supervisor holding the promise filter's
/// listener): the default plugin (`seccomp_denials = true`) against a second plugin with it off,
/// sample by sample in alternating order. Start: StartTask → first stdout byte of `echo`.
/// Allowed syscalls: a `dd bs=1` task (two allowed syscalls per byte) from StartTask to WaitTask.
async fn denial_reporting_cost(r: &mut Report, on: Option<&mut Bench>, s: &Settings) {
    let start_what = "StartTask → first stdout byte, reporting on vs off";
    let dd_what = format!(
        "allowed syscalls: task `dd if=/dev/zero bs=1 count={}` (stdout is /dev/null), StartTask → WaitTask, reporting on vs off",
        s.dd_count
    );
    let Some(on) = on else {
        r.na(start_what, "plugin not configured", "≤ +5 %");
        r.na(&dd_what, "plugin not configured", "unchanged");
        return;
    };
    let mut off = match Bench::start_with(vec![("seccomp_denials", Value::Bool(false))]).await {
        Ok(b) => b,
        Err(e) => {
            r.na(start_what, &e, "≤ +5 %");
            r.na(&dd_what, &e, "unchanged");
            return;
        }
    };
    eprintln!("denial reporting: {} start samples", s.samples);
    let Paired { a, b, ratios, err } = paired!(s.samples, on, &mut off, |bench| async {
        driver_start_sample(bench).await.map(|(d, _)| d)
    });
    match (&err, sample::median(&ratios)) {
        (None, Some(m)) => r.row(
            start_what,
            format!("on: p50 / p99 {}", p50_p99(&a)),
            &format!("off: p50 / p99 {}", p50_p99(&b)),
            format!(
                "{m:.3}× (median of paired ratios); {}",
                ratio_p50(&a, &b, "off")
            ),
            "≤ 1.05× (+5 %)",
        ),
        (Some(e), _) => r.na(start_what, e, "≤ +5 %"),
        (None, None) => r.na(start_what, "no samples", "≤ +5 %"),
    }

    let count = format!("count={}", s.dd_count);
    let spec = TaskSpec {
        name: "dd",
        command: "/usr/bin/dd",
        args: strings(&["if=/dev/zero", "bs=1", &count, "status=none"]),
        promises: "stdio rpath",
        unveil: strings(&["r:/dev/zero"]),
        fifos: false,
    };
    eprintln!("denial reporting: dd, {} repetitions", s.seccomp_reps);
    let Paired { a, b, ratios, err } = paired!(s.seccomp_reps, on, &mut off, |bench| {
        run_sample(bench, &spec)
    });
    match (&err, a.p50(), b.p50(), sample::median(&ratios)) {
        (None, Some(x), Some(y), Some(m)) => r.row(
            &dd_what,
            format!("on: {} (median)", ms(x)),
            &format!("off: {} (median)", ms(y)),
            format!(
                "{m:.3}× (median of paired ratios); ≈ {:+.1} ns per syscall",
                (m - 1.0) * y.as_secs_f64() * 1e9 / (2.0 * s.dd_count as f64)
            ),
            "unchanged (≈ 1.00×)",
        ),
        (Some(e), ..) => r.na(&dd_what, e, "unchanged"),
        _ => r.na(&dd_what, "no samples", "unchanged"),
    }
    off.finish().await;
}

fn ratio_p50(a: &Samples, b: &Samples, name: &str) -> String {
    match (a.p50(), b.p50()) {
        (Some(x), Some(y)) if !y.is_zero() => {
            format!("{:.2}× {name} (p50)", x.as_secs_f64() / y.as_secs_f64())
        }
        _ => String::new(),
    }
}

/// One StopTask sample: returns (StopTask RPC time, time until WaitTask returned).
async fn stop_sample(
    b: &mut Bench,
    ignore: bool,
    timeout: Duration,
) -> Result<(Duration, Duration), String> {
    let script = if ignore {
        "trap '' TERM; echo ready; exec sleep 3600"
    } else {
        "echo ready; exec sleep 3600"
    };
    let spec = TaskSpec {
        name: if ignore { "ignore-term" } else { "sleep" },
        command: "/bin/sh",
        args: strings(&["-c", script]),
        promises: "stdio rpath proc exec",
        // `exec sleep` needs the binary unveiled with x (pledge.com semantics).
        unveil: strings(&["rx:/usr/bin"]),
        fifos: true,
    };
    let (mut task, _) = b.start_task(&spec).await?;
    let result = async {
        b.first_byte(&mut task).await?;
        let wait = b.wait_task(&task);
        // The shell has printed "ready" after installing its trap; give `exec sleep` a moment so
        // the signal meets sleep rather than the shell (the latency is measured from StopTask).
        tokio::time::sleep(Duration::from_millis(50)).await;
        if wait.is_finished() {
            return Err(format!(
                "task `sh -c \"{script}\"` exited before StopTask; its stderr: {}",
                task.stderr_text()
            ));
        }
        let t0 = Instant::now();
        b.stop_task(&task, timeout).await?;
        let rpc = t0.elapsed();
        let done = tokio::time::timeout(PATIENCE + timeout, wait)
            .await
            .map_err(|_| "WaitTask did not return within 30 s after StopTask".to_string())?
            .map_err(|e| format!("WaitTask join: {e}"))??;
        Ok((rpc, done.saturating_duration_since(t0).max(rpc)))
    }
    .await;
    let destroyed = b.destroy(task).await;
    let result = result?;
    destroyed?;
    Ok(result)
}

async fn stop_latency(
    r: &mut Report,
    mut bench: Option<&mut Bench>,
    s: &Settings,
    lifecycle: &Result<(), String>,
    root: bool,
) {
    let cases = [
        (
            false,
            s.samples,
            Duration::from_secs(5),
            "task that exits on SIGTERM (`sh -c 'echo ready; exec sleep 3600'`, timeout 5 s)",
            "p50 ≤ 1 ms",
        ),
        (
            true,
            s.ignore_samples,
            s.kill_timeout,
            "task that ignores SIGTERM (`trap '' TERM`), timeout = kill_timeout",
            "kill_timeout + a little",
        ),
    ];
    for (ignore, n, timeout, what, target) in cases {
        let Some(b) = bench.as_deref_mut() else {
            let reason = lifecycle
                .as_ref()
                .err()
                .cloned()
                .unwrap_or_else(|| "plugin not configured".into());
            r.na(what, &reason, target);
            continue;
        };
        eprintln!("stop latency ({what}): {n} samples");
        let (mut rpc, mut done) = (Samples::default(), Samples::default());
        let mut err = None;
        // The floor rows (graceful case only), sampled in turn with the plugin's.
        let mut floors = [
            (false, Samples::default(), None),
            (true, Samples::default(), None),
        ];
        for _ in 0..n {
            if !ignore && root {
                for (hold, samples, ferr) in floors.iter_mut() {
                    if ferr.is_none() {
                        match tokio::task::block_in_place(|| baseline::kill_in_namespaces(*hold)) {
                            Ok(d) => samples.push(d),
                            Err(e) => *ferr = Some(e),
                        }
                    }
                }
            }
            match stop_sample(b, ignore, timeout).await {
                Ok((a, d)) => {
                    rpc.push(a);
                    done.push(d);
                }
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        match err {
            Some(e) => r.na(what, &e, target),
            None => {
                let derived = if ignore {
                    done.p50()
                        .map(|p| format!("p50 − kill_timeout = {}", ms(p.saturating_sub(timeout))))
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                r.row(
                    what,
                    format!(
                        "p50 / p99 {} (StopTask RPC alone {})",
                        p50_p99(&done),
                        p50_p99(&rpc)
                    ),
                    "",
                    derived,
                    target,
                );
            }
        }
        if !ignore {
            for (hold, samples, ferr) in &floors {
                let what = if *hold {
                    "floor, the mount namespace held open across the wait (as the driver does): the same kill + reap"
                } else {
                    "floor: SIGTERM straight to the same `sleep` in new PID/mount/IPC namespaces (`unshare --fork`, a shell as PID 1), until `unshare` is reaped"
                };
                match (root, ferr) {
                    (false, _) => r.na(what, "needs root for unshare", ""),
                    (true, Some(e)) => r.na(what, e, ""),
                    (true, None) => r.row(what, p50_p99(samples), "", String::new(), ""),
                }
            }
        }
    }
}

async fn scale(
    r: &mut Report,
    bench: Option<&mut Bench>,
    s: &Settings,
    n: usize,
    lifecycle: &Result<(), String>,
) {
    let rows = [
        format!("plugin RSS with {n} running `sleep` tasks"),
        format!("supervisor RSS per task ({n} tasks)"),
        format!("plugin CPU, {n} tasks, no stats streams"),
        format!("plugin CPU, {n} TaskStats streams at 1 s"),
    ];
    let targets = [
        "≤ 10 MB + 1 MB per task",
        "≤ 100 KiB Pss per task",
        "",
        "≤ 1 % of one core (1,000 tasks)",
    ];
    let Some(b) = bench else {
        let reason = lifecycle
            .as_ref()
            .err()
            .cloned()
            .unwrap_or_else(|| "plugin not configured".into());
        for (what, target) in rows.iter().zip(targets) {
            r.na(what, &reason, target);
        }
        return;
    };
    eprintln!("scale: starting {n} sleep tasks");
    let before = procfs::memory(b.pid);
    let spec = TaskSpec {
        name: "sleep",
        command: "/usr/bin/sleep",
        args: strings(&["3600"]),
        promises: "stdio rpath",
        unveil: Vec::new(),
        // Log FIFOs read by a thread each, as with Nomad's logmon (drivers must also accept
        // /dev/null, but a Nomad client only sends it for tasks with logging disabled).
        fifos: true,
    };
    let mut tasks = Vec::with_capacity(n);
    let mut waits = Vec::with_capacity(n);
    let mut failure = None;
    let t_start = Instant::now();
    for i in 0..n {
        match b.start_task(&spec).await {
            Ok((task, _)) => {
                waits.push(b.wait_task(&task));
                tasks.push(task);
            }
            Err(e) => {
                failure = Some(format!("task {} of {n} failed to start: {e}", i + 1));
                break;
            }
        }
    }
    let start_all = t_start.elapsed();
    if let Some(e) = failure {
        for (what, target) in rows.iter().zip(targets) {
            r.na(what, &e, target);
        }
    } else {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let exited = waits.iter().filter(|w| w.is_finished()).count();
        if exited > 0 {
            r.notes.push(format!(
                "{exited} of {n} `sleep` tasks had already exited before the measurements."
            ));
        }
        measure_scale(r, b, s, n, &tasks, before, start_all, &rows, &targets).await;
    }
    eprintln!("scale: stopping {} tasks", tasks.len());
    for chunk in tasks.chunks(64) {
        let stops = chunk.iter().map(|t| b.stop_task(t, Duration::from_secs(5)));
        for res in futures::future::join_all(stops).await {
            if let Err(e) = res {
                r.notes.push(format!("StopTask during clean-up: {e}"));
                break;
            }
        }
    }
    for w in waits {
        let _ = tokio::time::timeout(PATIENCE, w).await;
    }
    for t in tasks {
        if let Err(e) = b.destroy(t).await {
            r.notes.push(format!("DestroyTask during clean-up: {e}"));
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn measure_scale(
    r: &mut Report,
    b: &Bench,
    s: &Settings,
    n: usize,
    tasks: &[lifecycle::Task],
    before: Result<procfs::Memory, String>,
    start_all: Duration,
    rows: &[String; 4],
    targets: &[&str; 4],
) {
    match (procfs::memory(b.pid), before) {
        (Ok(m), Ok(before)) => r.row(
            &rows[0],
            format!("{} RSS, {} Pss", mib(m.rss_kib), mib(m.pss_kib)),
            &format!("{} RSS before starting them", mib(before.rss_kib)),
            format!(
                "{:.0} KiB RSS per task; {n} StartTasks took {:.1} s",
                m.rss_kib.saturating_sub(before.rss_kib) as f64 / n as f64,
                start_all.as_secs_f64()
            ),
            targets[0],
        ),
        (Err(e), _) | (_, Err(e)) => r.na(&rows[0], &e, targets[0]),
    }
    let exe = std::fs::canonicalize(BIN).unwrap_or_else(|_| PathBuf::from(BIN));
    // Supervisors: our binary re-executed; if the plugin runs them from another file (a copy,
    // a memfd), its direct children instead.
    let mut sups: Vec<u32> = procfs::pids_with_exe(&exe)
        .into_iter()
        .filter(|&p| p != b.pid)
        .collect();
    let mut how = "processes running the driver binary";
    if sups.is_empty() {
        sups = procfs::children(b.pid);
        how = "direct children of the plugin";
    }
    let mems: Vec<procfs::Memory> = sups
        .iter()
        .filter_map(|&p| procfs::memory(p).ok())
        .collect();
    if mems.is_empty() {
        r.na(
            &rows[1],
            "the plugin has no child and no other process runs the driver binary",
            targets[1],
        );
    } else {
        let rss: u64 = mems.iter().map(|m| m.rss_kib).sum();
        let pss: u64 = mems.iter().map(|m| m.pss_kib).sum();
        r.row(
            &rows[1],
            format!(
                "{:.0} KiB RSS, {:.0} KiB Pss per task",
                rss as f64 / n as f64,
                pss as f64 / n as f64
            ),
            "",
            format!("{} {how} for {n} tasks", mems.len()),
            targets[1],
        );
    }
    let tps = procfs::ticks_per_second();
    let window = s.stats_window;
    let cpu =
        |t0: u64, t1: u64| (t1.saturating_sub(t0)) as f64 / tps / window.as_secs_f64() * 100.0;
    let sup_ticks = || -> u64 { sups.iter().filter_map(|&p| procfs::cpu_ticks(p).ok()).sum() };

    let (Ok(p0), s0) = (procfs::cpu_ticks(b.pid), sup_ticks()) else {
        r.na(
            &rows[2],
            "cannot read the plugin's /proc/PID/stat",
            targets[2],
        );
        return;
    };
    tokio::time::sleep(window).await;
    let (p1, s1) = (procfs::cpu_ticks(b.pid).unwrap_or(p0), sup_ticks());
    let idle_pct = cpu(p0, p1);
    r.row(
        &rows[2],
        format!("{idle_pct:.2} % of one core"),
        "",
        format!("supervisors together {:.2} %", cpu(s0, s1)),
        targets[2],
    );

    eprintln!("scale: opening {n} TaskStats streams");
    let count = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = tasks
        .iter()
        .map(|t| b.stats_stream(t, Duration::from_secs(1), count.clone(), errors.clone()))
        .collect();
    // Warm-up: every stream should have delivered its first message.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let early = errors.lock().unwrap().clone();
    if early.len() == n {
        r.na(&rows[3], &early[0], targets[3]);
    } else {
        let p0 = procfs::cpu_ticks(b.pid).unwrap_or(0);
        let (s0, c0) = (sup_ticks(), count.load(Ordering::Relaxed));
        tokio::time::sleep(window).await;
        let p1 = procfs::cpu_ticks(b.pid).unwrap_or(0);
        let (s1, c1) = (sup_ticks(), count.load(Ordering::Relaxed));
        let rate = (c1 - c0) as f64 / window.as_secs_f64();
        let errs = errors.lock().unwrap().clone();
        let pct = cpu(p0, p1);
        let mut derived = format!(
            "{rate:.0} stats messages/s received (expected ≈ {n}); supervisors {:.2} %; \
             without streams {idle_pct:.2} %",
            cpu(s0, s1)
        );
        if let Some(e) = errs.first() {
            derived.push_str(&format!(
                "; {} of {n} streams failed, first: {e}",
                errs.len()
            ));
        }
        r.row(
            &rows[3],
            format!("{pct:.2} % of one core"),
            "",
            derived,
            targets[3],
        );
    }
    for h in handles {
        h.abort();
    }
}

fn seccomp(r: &mut Report, s: &Settings, launcher: &Result<(), String>) {
    let dd_what = format!(
        "`dd if=/dev/zero bs=1 count={}` (2 syscalls per byte)",
        s.dd_count
    );
    let true_what = "launcher start-up: `pledge -p 'stdio rpath' -- true` vs `true`";
    if let Err(e) = launcher {
        r.na(&dd_what, e, "≤ 1.2× unsandboxed");
        r.na(true_what, e, "");
        return;
    }
    let count = format!("count={}", s.dd_count);
    let dd = strings(&["/usr/bin/dd", "if=/dev/zero", "bs=1", &count, "status=none"]);
    let truth = strings(&["/usr/bin/true"]);
    let pledged = |argv: &[String]| {
        let mut v = strings(&[BIN, "pledge", "-p", "stdio rpath", "--"]);
        v.extend_from_slice(argv);
        v
    };
    for (what, argv, target) in [
        (dd_what.as_str(), &dd, "≤ 1.2× unsandboxed"),
        (true_what, &truth, ""),
    ] {
        eprintln!("seccomp: {what}, {} repetitions", s.seccomp_reps);
        let (mut plain, mut sandboxed, mut ratios) =
            (Samples::default(), Samples::default(), Vec::new());
        let mut err = None;
        let wrapped = pledged(argv);
        for i in 0..s.seccomp_reps {
            // Alternate the order so drift affects both sides alike.
            let pair = if i % 2 == 0 {
                baseline::timed_run(argv).and_then(|a| Ok((a, baseline::timed_run(&wrapped)?)))
            } else {
                baseline::timed_run(&wrapped).and_then(|b| Ok((baseline::timed_run(argv)?, b)))
            };
            match pair {
                Ok((a, b)) => {
                    plain.push(a);
                    sandboxed.push(b);
                    ratios.push(b.as_secs_f64() / a.as_secs_f64());
                }
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = err {
            r.na(what, &e, target);
            continue;
        }
        let (Some(a), Some(b), Some(m)) = (plain.p50(), sandboxed.p50(), sample::median(&ratios))
        else {
            r.na(what, "no repetitions", target);
            continue;
        };
        let derived = if argv[0].ends_with("dd") {
            format!(
                "{m:.2}× (median of paired ratios); ≈ {:.0} ns extra per syscall at that ratio",
                (m - 1.0) * a.as_secs_f64() * 1e9 / (2.0 * s.dd_count as f64)
            )
        } else {
            format!(
                "{m:.2}× (median of paired ratios); +{}",
                ms(b.saturating_sub(a))
            )
        };
        r.row(
            what,
            format!("{} sandboxed (median)", ms(b)),
            &format!("{} unsandboxed", ms(a)),
            derived,
            target,
        );
    }
}
