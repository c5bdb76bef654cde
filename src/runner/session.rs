//! One `run`: plugin up, tasks started, logs streamed, waited or stopped, everything cleaned up.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures::future::join_all;
use hcl::Value;
use thiserror::Error;
use tokio::sync::watch;

use super::alloc::{AllocDir, AllocError, LogPipe};
use super::args::Args;
use super::interp::{InterpError, Scope};
use super::job::{Group, Hook, Job, JobError, Task};
use super::plugin_client::{ClientError, PluginProcess};
use super::scope::{CgroupScope, Netns, ScopeError};
use super::term::{status, Stream, Target};
use super::{msgpack, ports, spec};
use crate::proto::base::{
    ConfigSchemaRequest, NomadConfig, NomadDriverConfig, PluginInfoRequest, SetConfigRequest,
};
use crate::proto::drivers::{
    fingerprint_response::HealthState, network_isolation_spec::NetworkIsolationMode,
    AllocatedCpuResources, AllocatedMemoryResources, AllocatedTaskResources, DestroyTaskRequest,
    ExitResult, FingerprintRequest, LinuxResources, NetworkIsolationSpec, Resources,
    StartTaskRequest, StopTaskRequest, TaskConfig, TaskConfigSchemaRequest, WaitTaskRequest,
};

#[derive(Debug, Error)]
pub enum RunError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}")]
    Job { path: PathBuf, source: JobError },
    #[error(transparent)]
    Interp(#[from] InterpError),
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    Alloc(#[from] AllocError),
    #[error(transparent)]
    Volume(#[from] super::volumes::VolumeError),
    #[error(transparent)]
    Scope(#[from] ScopeError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Ports(#[from] ports::PortError),
    #[error("the plugin refused {call}: {message}")]
    Rpc { call: &'static str, message: String },
    #[error("the plugin reports itself unhealthy: {0}; see TROUBLESHOOT.md")]
    Unhealthy(String),
}

fn rpc(call: &'static str) -> impl FnOnce(tonic::Status) -> RunError {
    move |s| RunError::Rpc {
        call,
        message: s.message().to_string(),
    }
}

/// Runs the job's pledge tasks; returns the process exit code (the first failing task's).
pub async fn run(args: Args) -> Result<i32, RunError> {
    let text = std::fs::read_to_string(&args.job).map_err(|source| RunError::Read {
        path: args.job.clone(),
        source,
    })?;
    let job = Job::parse(&text).map_err(|source| RunError::Job {
        path: args.job.clone(),
        source,
    })?;
    let selected = job
        .pledge_tasks(args.task.as_deref())
        .map_err(|source| RunError::Job {
            path: args.job.clone(),
            source,
        })?;
    let mut plugin_attrs = match &args.plugin_config {
        None => Vec::new(),
        Some(path) => load_plugin_config(path)?,
    };
    if args.learn {
        // Learn mode is refused unless the operator allows it: `run --learn` is that operator.
        plugin_attrs.retain(|(k, _)| k != "allow_learn");
        plugin_attrs.push(("allow_learn".into(), Value::Bool(true)));
    }

    let exe = std::env::current_exe().map_err(|source| RunError::Read {
        path: "/proc/self/exe".into(),
        source,
    })?;
    let plugin = PluginProcess::start(exe, args.verbose).await?;
    let result = configure_and_run(&args, &job, &selected, plugin_attrs, &plugin).await;
    plugin.shutdown().await;
    result
}

async fn configure_and_run(
    args: &Args,
    job: &Job,
    selected: &[(&Group, &Task)],
    plugin_attrs: Vec<(String, Value)>,
    plugin: &PluginProcess,
) -> Result<i32, RunError> {
    let info = plugin
        .base()
        .plugin_info(PluginInfoRequest {})
        .await
        .map_err(rpc("PluginInfo"))?
        .into_inner();
    let config_spec = plugin
        .base()
        .config_schema(ConfigSchemaRequest {})
        .await
        .map_err(rpc("ConfigSchema"))?
        .into_inner()
        .spec;
    let msgpack_config = match config_spec {
        Some(s) => msgpack::encode(&Value::Object(spec::decode(
            "plugin config",
            &s,
            plugin_attrs,
        )?)),
        None => Vec::new(),
    };
    plugin
        .base()
        .set_config(SetConfigRequest {
            msgpack_config,
            nomad_config: Some(NomadConfig {
                driver: Some(NomadDriverConfig {
                    client_max_port: 14512,
                    client_min_port: 14000,
                    topology: None,
                }),
            }),
            plugin_api_version: info
                .plugin_api_versions
                .first()
                .cloned()
                .unwrap_or_default(),
        })
        .await
        .map_err(rpc("SetConfig"))?;

    let mut driver = plugin.driver();
    let mut fingerprints = driver
        .fingerprint(FingerprintRequest {})
        .await
        .map_err(rpc("Fingerprint"))?
        .into_inner();
    if let Ok(Some(first)) = fingerprints.message().await {
        if first.health != HealthState::Healthy as i32 {
            return Err(RunError::Unhealthy(first.health_description));
        }
        if let Some(line) = super::events::health_line(first.health, &first.health_description) {
            super::term::status_line(line);
        }
    }
    let task_spec = driver
        .task_config_schema(TaskConfigSchemaRequest {})
        .await
        .map_err(rpc("TaskConfigSchema"))?
        .into_inner()
        .spec
        .ok_or(RunError::Rpc {
            call: "TaskConfigSchema",
            message: "no schema returned".into(),
        })?;

    let alloc_id = random_uuid();
    let events = super::events::follow(plugin.driver(), alloc_id.clone())
        .await
        .map_err(rpc("TaskEvents"))?;
    let base = match &args.alloc_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("nomad-pledge-run-{}", &alloc_id[..8])),
    };
    let names: Vec<&str> = selected.iter().map(|(_, t)| t.name.as_str()).collect();
    let alloc = AllocDir::create(&base, &alloc_id, &names)?;
    status!("==> allocation {alloc_id} in {}", alloc.path.display());

    let netns = if selected
        .iter()
        .any(|(g, _)| g.network_mode.as_deref() == Some("bridge"))
    {
        Some(Netns::create(&alloc_id)?)
    } else {
        None
    };

    // Each group's ports, allocated once and shared by its tasks (as a client does).
    let range = args.port_range.unwrap_or(ports::DEFAULT_RANGE);
    let mut group_ports: Vec<(&str, Vec<ports::Allocated>)> = Vec::new();
    for (group, _) in selected {
        if !group_ports.iter().any(|(g, _)| *g == group.name) {
            let a = ports::allocate(&group.name, &group.ports, range, ports::is_free)?;
            for p in &a {
                eprintln!(
                    "==> group \"{}\" port \"{}\": {}:{}",
                    group.name,
                    p.label,
                    ports::HOST_IP,
                    p.value
                );
            }
            group_ports.push((&group.name, a));
        }
    }
    let ports_of = |g: &Group| -> &[ports::Allocated] {
        group_ports
            .iter()
            .find(|(n, _)| *n == g.name)
            .map(|(_, p)| p.as_slice())
            .unwrap_or_default()
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    // Ctrl-C or SIGTERM: stop the tasks as `nomad job stop` would (tasks otherwise outlive us,
    // as they outlive a Nomad client).
    let ctrl_c = tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_err() { return },
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        status!("==> interrupted: stopping the tasks");
        let _ = stop_tx.send(true);
    });
    let ctxs: Vec<TaskCtx> = selected
        .iter()
        .map(|(group, task)| TaskCtx {
            job,
            group,
            task,
            alloc: &alloc,
            netns: netns.as_ref(),
            spec: &task_spec,
            ports: ports_of(group),
            host_volumes: &args.host_volumes,
            learn: args.learn,
        })
        .collect();
    let results = run_lifecycle(&ctxs, plugin, stop_rx.clone()).await;
    ctrl_c.abort();
    if args.learn {
        // The plugin sends each task's learned policy as a task event before it answers
        // WaitTask; the event stream may deliver it a moment later.
        events.wait_for_learned(ctxs.len()).await;
    }
    events.abort();
    let interrupted = *stop_rx.borrow();

    // Each task's result was printed when it ended. The exit code is the first failure's; a task
    // stopped on request (Ctrl-C, or a sidecar once the main tasks were done) has not failed,
    // as with `nomad job stop`.
    let mut code = 0;
    for (ctx, result) in ctxs.iter().zip(&results) {
        let failed = match result {
            None => {
                status!("==> task \"{}\" did not run", ctx.task.name);
                0
            }
            Some(Ok(end)) if !end.stopped => end.exit.exit_code,
            Some(Ok(_)) => 0,
            Some(Err(_)) => 1,
        };
        if code == 0 {
            code = failed;
        }
    }
    if interrupted {
        status!("==> stopped on request");
    }
    drop(netns);
    if args.keep {
        status!("==> kept {}", alloc.path.display());
    } else {
        let _ = alloc.remove();
        if args.alloc_dir.is_none() {
            let _ = std::fs::remove_dir(&base);
        }
    }
    Ok(code)
}

struct TaskCtx<'a> {
    job: &'a Job,
    group: &'a Group,
    task: &'a Task,
    alloc: &'a AllocDir,
    netns: Option<&'a Netns>,
    spec: &'a crate::proto::hclspec::Spec,
    /// The group's allocated ports.
    ports: &'a [ports::Allocated],
    host_volumes: &'a [super::args::HostVolume],
    /// `run --learn`: the task's config gets `learn = true`.
    learn: bool,
}

/// How a task ended: its exit result, and whether `run` had asked it to stop.
struct Ended {
    exit: ExitResult,
    stopped: bool,
}

type Outcome = Option<Result<Ended, RunError>>;

/// Runs the tasks in Nomad's lifecycle order: prestart tasks (non-sidecars to completion,
/// sidecars started), then the main and poststart tasks; once the main tasks and the
/// non-sidecar poststart tasks are done, the sidecars are stopped; then poststop tasks run.
/// A failed prestart task keeps the main tasks from starting. `stop` (Ctrl-C) stops everything
/// that runs. Returns one outcome per task, in `ctxs` order (`None`: never started).
async fn run_lifecycle(
    ctxs: &[TaskCtx<'_>],
    plugin: &PluginProcess,
    stop: watch::Receiver<bool>,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = ctxs.iter().map(|_| None).collect();
    let phase = |hook: Option<Hook>, sidecar: bool| -> Vec<usize> {
        ctxs.iter()
            .enumerate()
            .filter(|(_, c)| {
                c.task.lifecycle.map(|l| l.hook) == hook
                    && c.task.lifecycle.is_some_and(|l| l.sidecar) == sidecar
            })
            .map(|(i, _)| i)
            .collect()
    };
    let (side_tx, side_rx) = watch::channel(false);
    let forward = {
        let mut stop = stop.clone();
        let side_tx = side_tx.clone();
        tokio::spawn(async move {
            if stop.wait_for(|s| *s).await.is_ok() {
                let _ = side_tx.send(true);
            }
        })
    };

    // Prestart, non-sidecar: to completion, all of them at once.
    let pre = phase(Some(Hook::Prestart), false);
    let done = join_all(
        pre.iter()
            .map(|&i| run_to_end(&ctxs[i], plugin, stop.clone())),
    )
    .await;
    let mut failed = false;
    for (&i, r) in pre.iter().zip(done) {
        failed |= !matches!(&r, Ok(e) if e.exit.exit_code == 0);
        outcomes[i] = Some(r);
    }
    let interrupted = *stop.borrow();
    if !failed && !interrupted {
        let sidecars: Vec<usize> = phase(Some(Hook::Prestart), true)
            .into_iter()
            .chain(phase(Some(Hook::Poststart), true))
            .collect();
        let mains: Vec<usize> = phase(None, false)
            .into_iter()
            .chain(phase(Some(Hook::Poststart), false))
            .collect();
        // Prestart sidecars first, then main tasks, then poststart tasks.
        let mut started = Vec::new();
        for &i in phase(Some(Hook::Prestart), true)
            .iter()
            .chain(&phase(None, false))
            .chain(&phase(Some(Hook::Poststart), true))
            .chain(&phase(Some(Hook::Poststart), false))
        {
            match start_task(&ctxs[i], plugin).await {
                Ok(running) => started.push((i, running)),
                Err(e) => outcomes[i] = Some(Err(e)),
            }
        }
        let (mut main_runs, mut side_runs) = (Vec::new(), Vec::new());
        for (i, running) in started {
            if sidecars.contains(&i) {
                side_runs.push((i, running));
            } else if mains.contains(&i) {
                main_runs.push((i, running));
            }
        }
        let side_futures = join_all(side_runs.into_iter().map(|(i, r)| {
            let rx = side_rx.clone();
            async move { (i, wait_task(&ctxs[i], plugin, r, rx).await) }
        }));
        let main_futures = async {
            let out = join_all(main_runs.into_iter().map(|(i, r)| {
                let rx = stop.clone();
                async move { (i, wait_task(&ctxs[i], plugin, r, rx).await) }
            }))
            .await;
            // The main tasks are done: sidecars are no longer needed.
            let _ = side_tx.send(true);
            out
        };
        let (mains_done, sides_done) = tokio::join!(main_futures, side_futures);
        for (i, r) in mains_done.into_iter().chain(sides_done) {
            outcomes[i] = Some(r);
        }
    }
    forward.abort();
    // Poststop tasks run even after a failure or an interruption, as in Nomad.
    let post = phase(Some(Hook::Poststop), false)
        .into_iter()
        .chain(phase(Some(Hook::Poststop), true))
        .collect::<Vec<_>>();
    let (_never_tx, never_rx) = watch::channel(false);
    let done = join_all(
        post.iter()
            .map(|&i| run_to_end(&ctxs[i], plugin, never_rx.clone())),
    )
    .await;
    for (&i, r) in post.iter().zip(done) {
        outcomes[i] = Some(r);
    }
    outcomes
}

async fn run_to_end(
    ctx: &TaskCtx<'_>,
    plugin: &PluginProcess,
    stop: watch::Receiver<bool>,
) -> Result<Ended, RunError> {
    let running = start_task(ctx, plugin).await?;
    wait_task(ctx, plugin, running, stop).await
}

/// A started task and what must outlive it until it is destroyed.
struct Running {
    task_id: String,
    pipes: [LogPipe; 2],
    cgroup: Option<CgroupScope>,
}

/// Starts a task; a failure is reported at once.
async fn start_task(ctx: &TaskCtx<'_>, plugin: &PluginProcess) -> Result<Running, RunError> {
    let started = try_start_task(ctx, plugin).await;
    if let Err(e) = &started {
        status!(
            "==> task \"{}\" failed: {}",
            ctx.task.name,
            crate::errors::Chain(e)
        );
    }
    started
}

/// Builds the task's TaskConfig as a Nomad client does and starts it.
async fn try_start_task(ctx: &TaskCtx<'_>, plugin: &PluginProcess) -> Result<Running, RunError> {
    let TaskCtx {
        job,
        group,
        task,
        alloc,
        netns,
        spec: task_spec,
        ports: group_ports,
        host_volumes,
        learn,
    } = *ctx;
    let mounts = super::volumes::task_mounts(group, task, host_volumes)?;
    let place = format!("task {:?}", task.name);
    let node_name = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    let mut env = alloc.task_env(job, group, task, std::env::vars());
    let bridge = netns.is_some() && group.network_mode.as_deref() == Some("bridge");
    env.extend(ports::env(group_ports, bridge));
    let scope = Scope::new(&env, &node_name);
    env.extend(scope.eval_strings(&format!("{place} env"), &task.env)?);
    let scope = Scope::new(&env, &node_name);
    let mut given = task
        .config
        .iter()
        .map(|(k, e)| Ok((k.clone(), scope.eval(&place, k, e)?)))
        .collect::<Result<Vec<_>, InterpError>>()?;
    if learn {
        given.retain(|(k, _)| k != "learn");
        given.push(("learn".into(), Value::Bool(true)));
    }
    let config = spec::decode(&place, task_spec, given)?;

    let cgroup = CgroupScope::create(&alloc.alloc_id, &task.name, task.resources.cores > 0)?;
    let (stdout_path, stderr_path) = alloc.fifo_paths(&task.name);
    let out_pipe = LogPipe::start(stdout_path.clone(), Target::Terminal(Stream::Stdout))?;
    let err_pipe = LogPipe::start(stderr_path.clone(), Target::Terminal(Stream::Stderr))?;

    let r = &task.resources;
    let memory_max = if r.memory_max > 0 { r.memory_max } else { 0 };
    let task_config = TaskConfig {
        id: format!("{}/{}/{}", alloc.alloc_id, task.name, &random_uuid()[..8]),
        name: task.name.clone(),
        msgpack_driver_config: msgpack::encode(&Value::Object(config)),
        env: env
            .into_iter()
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect(),
        user: task.user.clone(),
        alloc_dir: alloc.path.display().to_string(),
        stdout_path: stdout_path.display().to_string(),
        stderr_path: stderr_path.display().to_string(),
        task_group_name: group.name.clone(),
        job_name: job.name.clone(),
        job_id: job.name.clone(),
        alloc_id: alloc.alloc_id.clone(),
        namespace: "default".into(),
        node_name,
        resources: Some(Resources {
            allocated_resources: Some(AllocatedTaskResources {
                cpu: Some(AllocatedCpuResources {
                    cpu_shares: r.cpu as i64,
                }),
                memory: Some(AllocatedMemoryResources {
                    memory_mb: r.memory as i64,
                    memory_max_mb: r.memory_max,
                }),
                networks: vec![],
            }),
            linux_resources: Some(LinuxResources {
                cpu_shares: r.cpu as i64,
                memory_limit_bytes: (r.memory as i64).max(memory_max) * 1024 * 1024,
                cpuset_cpus: (0..r.cores)
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                cpuset_cgroup: cgroup
                    .as_ref()
                    .map(|c| c.path.display().to_string())
                    .unwrap_or_default(),
                ..Default::default()
            }),
            ports: ports::mappings(group_ports),
        }),
        network_isolation_spec: netns.map(|ns| NetworkIsolationSpec {
            mode: NetworkIsolationMode::Group as i32,
            path: ns.path.display().to_string(),
            labels: Default::default(),
            hosts_config: None,
        }),
        mounts,
        dns: super::volumes::task_dns(group),
        ..Default::default()
    };

    let started = plugin
        .driver()
        .start_task(StartTaskRequest {
            task: Some(task_config.clone()),
        })
        .await;
    let pipes = [out_pipe, err_pipe];
    match started {
        Ok(_) => {
            status!("==> task \"{}\" started", task.name);
            Ok(Running {
                task_id: task_config.id,
                pipes,
                cgroup,
            })
        }
        Err(status) => {
            pipes.into_iter().for_each(LogPipe::finish);
            drop(cgroup);
            Err(rpc("StartTask")(status))
        }
    }
}

/// Waits for a started task; when `stop` turns true first, stops it with its kill_signal and
/// kill_timeout and waits for that. Destroys it and cleans up afterwards.
async fn wait_task(
    ctx: &TaskCtx<'_>,
    plugin: &PluginProcess,
    running: Running,
    mut stop: watch::Receiver<bool>,
) -> Result<Ended, RunError> {
    let task = ctx.task;
    let mut driver = plugin.driver();
    let task_id = running.task_id.clone();
    let mut waiter = driver.clone();
    let wait = waiter.wait_task(WaitTaskRequest {
        task_id: task_id.clone(),
    });
    tokio::pin!(wait);
    let mut stopping = false;
    let result = loop {
        tokio::select! {
            res = &mut wait => break res,
            changed = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    let _ = driver
                        .stop_task(StopTaskRequest {
                            task_id: task_id.clone(),
                            timeout: Some(duration(task.kill_timeout)),
                            signal: task.kill_signal.clone(),
                        })
                        .await;
                }
            }
        }
    };
    let _ = driver
        .destroy_task(DestroyTaskRequest {
            task_id,
            force: true,
        })
        .await;
    let Running { pipes, cgroup, .. } = running;
    pipes.into_iter().for_each(LogPipe::finish);
    drop(cgroup);
    match result {
        Err(status) => {
            let e = rpc("WaitTask")(status);
            status!(
                "==> task \"{}\" failed: {}",
                task.name,
                crate::errors::Chain(&e)
            );
            Err(e)
        }
        Ok(resp) => {
            let resp = resp.into_inner();
            if !resp.err.is_empty() {
                status!("==> task \"{}\": {}", task.name, resp.err);
            }
            let exit = resp.result.unwrap_or_default();
            status!(
                "==> task \"{}\" exited: exit_code={} signal={} oom_killed={}",
                task.name,
                exit.exit_code,
                exit.signal,
                exit.oom_killed
            );
            Ok(Ended {
                exit,
                stopped: stopping,
            })
        }
    }
}

fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// The plugin config file: an agent config with `plugin "..." { config { ... } }`, or the bare
/// attributes of a config block. Plugin config has no variables.
fn load_plugin_config(path: &PathBuf) -> Result<Vec<(String, Value)>, RunError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunError::Read {
        path: path.clone(),
        source,
    })?;
    let body = hcl::parse(&text).map_err(|e| RunError::Job {
        path: path.clone(),
        source: JobError::Parse(e),
    })?;
    let config_body = body
        .blocks()
        .find(|b| b.identifier() == "plugin")
        .and_then(|p| p.body().blocks().find(|b| b.identifier() == "config"))
        .map(|c| c.body().clone())
        .unwrap_or(body);
    let scope = Scope::new(&BTreeMap::new(), "");
    config_body
        .attributes()
        .map(|a| {
            Ok((
                a.key().to_string(),
                scope.eval("plugin config", a.key(), a.expr())?,
            ))
        })
        .collect()
}

/// A random UUID (version 4 layout), as Nomad uses for allocation ids.
fn random_uuid() -> String {
    let mut b = [0u8; 16];
    if getrandom(&mut b).is_err() {
        // Fall back to time and pid: unique enough for a local directory name.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b[..16].copy_from_slice(&(t ^ u128::from(std::process::id())).to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}
