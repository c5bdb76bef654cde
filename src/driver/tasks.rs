//! Task lifecycle RPCs: wire types in, the executor's plain types out (style.md items 13–14).
//! Each function decodes, calls the executor, encodes; the executor owns the processes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::config::{Launcher, PluginConfig, UnveilMissing};
use super::error::DriverError;
use super::task_config::{TaskConfigError, TaskDriverConfig};
use super::wire::timestamp;
use super::{State, TaskEvent};
use crate::errors::Chain;
use crate::executor::{
    self, ExecError, Executor, ExecutorConfig, ExitStatus, RecoveryState, Resources, TaskSpec,
};
use crate::policy::{self, Policy, UnveilRule};
use crate::proto::drivers::{
    cpu_usage, memory_usage, network_isolation_spec::NetworkIsolationMode, CpuUsage, ExitResult,
    MemoryUsage, TaskConfig, TaskHandle, TaskResourceUsage, TaskState, TaskStats, TaskStatus,
};

/// `TaskHandle.version` of the handles we return; `driver_state` is the executor's
/// `RecoveryState` as JSON.
pub const HANDLE_VERSION: i32 = 1;

impl State {
    /// The executor, created from the current plugin config by the long-lived instance's
    /// SetConfig or the first task RPC (validation launches, which never start tasks, create
    /// nothing).
    pub(super) fn executor(&self) -> Result<Arc<Executor>, DriverError> {
        let mut slot = self.executor.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ex) = slot.as_ref() {
            return Ok(ex.clone());
        }
        let config = self.config();
        // The executor publishes its task events straight to every TaskEvents stream.
        let ex = Arc::new(Executor::with_events(
            executor_config(&config)?,
            self.events.clone(),
        )?);
        *slot = Some(ex.clone());
        Ok(ex)
    }
}

fn executor_config(config: &PluginConfig) -> Result<ExecutorConfig, DriverError> {
    Ok(ExecutorConfig {
        state_dir: config.state_dir.clone(),
        cgroup_root: config.cgroup_root.clone(),
        self_exe: self_exe()?,
        allow_root: config.allow_root,
        default_user: config.default_user.clone(),
    })
}

/// The binary this plugin runs, by a path that keeps naming it when the file is replaced or
/// removed while the plugin runs (an upgrade by `mv`, a rebuild): the helpers it starts (the
/// fork server, `__exec`) are then always its own version, never whatever the path names now.
fn self_exe() -> Result<PathBuf, DriverError> {
    std::env::current_exe().map_err(|source| DriverError::SelfExe { source })?;
    Ok(PathBuf::from(format!("/proc/{}/exe", std::process::id())))
}

/// The launcher the plugin config names, as the policy carries it.
fn launcher(config: &PluginConfig) -> policy::Launcher {
    match &config.launcher {
        Launcher::BuiltIn => policy::Launcher::BuiltIn {
            unveil_best_effort: config.unveil_best_effort,
        },
        Launcher::External(path) => policy::Launcher::External(path.clone()),
    }
}

/// The task's [`Policy`]: its promises (the launcher's default when it names none), its unveil
/// rules with relative paths resolved against the task directory, then one rule per volume
/// (`mounts`), the plugin's launcher.
pub fn task_policy(
    cfg: &TaskDriverConfig,
    task_dir: &Path,
    mounts: &[executor::mounts::BindMount],
    plugin: &PluginConfig,
) -> Result<Policy, DriverError> {
    let unveil = cfg
        .unveil
        .iter()
        .map(|r| UnveilRule::new(r.perms, task_dir.join(&r.path)))
        .chain(mounts.iter().map(super::volumes::unveil_rule))
        .collect();
    let promises = cfg.promises.unwrap_or_else(Policy::default_promises);
    Ok(Policy::new(promises, unveil, launcher(plugin))?
        .with_operator_unveil(plugin.default_unveil.clone())?
        .grant_caps(&cfg.cap_add, &cfg.cap_drop, &plugin.allow_caps)?)
}

/// Environment variables that code running before an external launcher's sandbox would honour:
/// the dynamic loader's (`LD_*`), glibc's tunables and malloc settings (read by static glibc
/// programs too). These are the variables glibc itself drops for set-uid programs.
fn is_pre_sandbox_env(name: &str) -> bool {
    name.starts_with("LD_")
        || name.starts_with("MALLOC_")
        || matches!(
            name,
            "GLIBC_TUNABLES" | "GCONV_PATH" | "GETCONF_DIR" | "LOCPATH" | "NLSPATH"
        )
}

/// With an external launcher the task's environment is the launcher's too (pledge.com passes
/// its own environment to the command): refuse what would run code in it before the sandbox.
fn refuse_launcher_env<'a>(names: impl Iterator<Item = &'a String>) -> Result<(), DriverError> {
    let mut bad: Vec<&String> = names.filter(|n| is_pre_sandbox_env(n)).collect();
    bad.sort();
    match bad.first() {
        Some(name) => Err(TaskConfigError::LauncherEnv {
            name: (*name).clone(),
        }
        .into()),
        None => Ok(()),
    }
}

/// A host namespace is granted only where the plugin allows it.
fn host_namespace(wanted: bool, allowed: bool, field: &'static str) -> Result<bool, DriverError> {
    if wanted && !allowed {
        let (what, option) = match field {
            "pid_mode" => ("every process on the host", "allow_pid_host"),
            _ => (
                "the host's System V IPC objects and POSIX message queues",
                "allow_ipc_host",
            ),
        };
        return Err(TaskConfigError::HostNamespace {
            field,
            what,
            option,
        }
        .into());
    }
    Ok(wanted)
}

/// `pids.max`: the task's `pids_limit`, else the plugin's; never above the plugin's.
fn pids_max(cfg: &TaskDriverConfig, plugin: &PluginConfig) -> Result<Option<u64>, DriverError> {
    let ceiling = Some(plugin.pids_limit).filter(|p| *p > 0);
    match (cfg.pids_limit, ceiling) {
        (Some(task), Some(max)) if task > max => {
            Err(TaskConfigError::PidsAboveCeiling { task, max }.into())
        }
        (task, max) => Ok(task.or(max)),
    }
}

/// The task's `ulimit` and `oom_score_adj`; a negative score needs the plugin's consent.
fn task_limits(
    cfg: &TaskDriverConfig,
    plugin: &PluginConfig,
) -> Result<executor::rlimit::TaskLimits, DriverError> {
    if cfg.oom_score_adj < 0 && !plugin.allow_negative_oom_score_adj {
        return Err(TaskConfigError::NegativeOomScoreAdj(cfg.oom_score_adj).into());
    }
    Ok(executor::rlimit::TaskLimits {
        ulimits: cfg.ulimits.clone(),
        oom_score_adj: cfg.oom_score_adj,
    })
}

/// Builds the executor's spec from Nomad's TaskConfig and our decoded `config {}`.
pub fn task_spec(
    task: &TaskConfig,
    cfg: &TaskDriverConfig,
    plugin: &PluginConfig,
) -> Result<TaskSpec, DriverError> {
    let task_dir = Path::new(&task.alloc_dir).join(&task.name);
    let resolve = |p: &str| -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            task_dir.join(p)
        }
    };
    let mounts = super::volumes::bind_mounts(&task.mounts, &task.devices, &task_dir)?;
    let policy = task_policy(cfg, &task_dir, &mounts, plugin)?;
    if !policy.launcher().is_built_in() {
        refuse_launcher_env(task.env.keys())?;
    }
    let res = task.resources.clone().unwrap_or_default();
    let alloc = res.allocated_resources.unwrap_or_default();
    let linux = res.linux_resources.unwrap_or_default();
    let netns_path = task
        .network_isolation_spec
        .as_ref()
        .filter(|n| n.mode == NetworkIsolationMode::Group as i32 && !n.path.is_empty())
        .map(|n| PathBuf::from(&n.path));
    Ok(TaskSpec {
        id: task.id.clone(),
        alloc_id: task.alloc_id.clone(),
        task_name: task.name.clone(),
        policy,
        command: cfg.command.clone(),
        args: cfg.args.clone(),
        env: task
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        user: task.user.clone(),
        work_dir: cfg.work_dir.as_deref().map(resolve),
        task_dir,
        stdout_path: PathBuf::from(&task.stdout_path),
        stderr_path: PathBuf::from(&task.stderr_path),
        nomad_cgroup: Some(linux.cpuset_cgroup)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
        netns_path,
        resources: Resources {
            memory_mb: alloc.memory.as_ref().map_or(0, |m| m.memory_mb),
            memory_max_mb: alloc.memory.as_ref().map_or(0, |m| m.memory_max_mb),
            cpu_shares: alloc
                .cpu
                .as_ref()
                .map_or(linux.cpu_shares, |c| c.cpu_shares)
                .max(0) as u64,
            cpu_quota_us: None,
            cpu_period_us: None,
            cpuset_cpus: linux.cpuset_cpus,
            pids_max: pids_max(cfg, plugin)?,
        },
        importance: cfg.importance,
        limits: task_limits(cfg, plugin)?,
        mounts,
        resolv_conf: super::dns::resolv_conf(task.dns.as_ref())?,
        host_pid: host_namespace(cfg.pid_host, plugin.allow_pid_host, "pid_mode")?,
        host_ipc: host_namespace(cfg.ipc_host, plugin.allow_ipc_host, "ipc_mode")?,
        report_denials: plugin.seccomp_denials,
        learn: learn_mode(cfg, plugin)?,
    })
}

/// `learn = true` needs the operator's `allow_learn = true` (learn mode denies nothing).
fn learn_mode(cfg: &TaskDriverConfig, plugin: &PluginConfig) -> Result<bool, DriverError> {
    if cfg.learn && !plugin.allow_learn {
        return Err(TaskConfigError::LearnNotAllowed.into());
    }
    Ok(cfg.learn)
}

/// The task event for a task that promises `unix` where Landlock cannot restrict connections
/// to pathname unix sockets (`abi` = the probe's Landlock ABI function), else None.
fn unix_socket_notice(promises: &str, abi: fn() -> Option<u32>) -> Option<String> {
    if !promises.split_whitespace().any(|p| p == "unix") {
        return None;
    }
    let abi = abi().map_or(0, |v| v as i32);
    if crate::sandbox::unveil::unix_socket_mediation(abi) == "unveil" {
        return None;
    }
    Some(format!(
        "promise `unix`: connect(2) to pathname unix sockets is not restricted by unveil on this node (landlock ABI {abi}; {}): the task can reach any socket file its user may write, e.g. /run/dbus/system_bus_socket",
        crate::sandbox::unveil::UNIX_SOCKET_GAP
    ))
}

/// The warnings for the task's unveil entries that match nothing (`sandbox::unmatched`), or
/// the error refusing the task under `unveil_missing = "fail"`. Checked here, in the plugin,
/// before the task starts: whether a path exists does not depend on the user (a directory the
/// task user cannot search makes the launcher fail the task with EACCES instead), and the
/// task's mount namespace sees the same paths as the host.
fn unveil_warnings(policy: &Policy, mode: UnveilMissing) -> Result<Vec<String>, DriverError> {
    if policy.no_unveil() {
        return Ok(Vec::new());
    }
    let found = crate::sandbox::unmatched::check_all(policy.unveil());
    match mode {
        UnveilMissing::Fail if !found.is_empty() => Err(DriverError::UnveilMissing(
            found.iter().map(|u| u.problem()).collect(),
        )),
        _ => Ok(found.iter().map(ToString::to_string).collect()),
    }
}

/// What StartTask decided before asking the executor: the task's spec and the task events to
/// send once it runs.
struct Planned {
    spec: TaskSpec,
    events: Vec<TaskEvent>,
    unmatched: Vec<String>,
}

/// The first half of StartTask: decode and check the task's config. It reads the filesystem
/// (volume and unveil paths, the user database, `resolv.conf`), so it runs on the blocking
/// pool.
fn plan_task(
    task: &TaskConfig,
    plugin: &PluginConfig,
    landlock_abi: fn() -> Option<u32>,
) -> Result<Planned, DriverError> {
    let cfg = TaskDriverConfig::from_msgpack(&task.msgpack_driver_config)?;
    let mut spec = task_spec(task, &cfg, plugin)?;
    super::ceiling::check(plugin, &spec)?;
    let (policy, port_notice) = super::ports::net_rules(
        spec.policy,
        task,
        cfg.connect_ports.clone(),
        crate::sandbox::unveil::kernel_abi(),
    );
    spec.policy = policy;
    let policy = &spec.policy;
    tracing::debug!(
        task_id = %spec.id,
        promises = %policy.promises(),
        unveil_rules = policy.unveil().len(),
        operator_unveil_rules = policy.operator_unveil().len(),
        tcp_bind = ?policy.tcp_bind(),
        tcp_connect = ?policy.tcp_connect(),
        no_unveil = policy.no_unveil(),
        launcher = ?policy.launcher(),
        "starting task"
    );
    let unmatched = unveil_warnings(policy, plugin.unveil_missing)?;
    let notice = unix_socket_notice(&spec.policy.promises().to_string(), landlock_abi);
    let event = |message: String| TaskEvent {
        task_id: spec.id.clone(),
        alloc_id: spec.alloc_id.clone(),
        task_name: spec.task_name.clone(),
        timestamp: SystemTime::now(),
        message,
        annotations: BTreeMap::new(),
    };
    let events = port_notice.into_iter().chain(notice).map(event).collect();
    Ok(Planned {
        spec,
        events,
        unmatched,
    })
}

/// StartTask: returns the handle Nomad stores for RecoverTask.
pub async fn start(state: &State, task: TaskConfig) -> Result<TaskHandle, DriverError> {
    let (plugin, abi) = (state.config(), state.probe.landlock_abi);
    let (task, planned) = executor::blocking(move || {
        let planned = plan_task(&task, &plugin, abi);
        (task, planned)
    })
    .await?;
    let Planned {
        spec,
        mut events,
        unmatched,
    } = planned?;
    let ids = (
        spec.id.clone(),
        spec.alloc_id.clone(),
        spec.task_name.clone(),
    );
    let denials = state.denials();
    let recovery = state.executor()?.start(spec).await?;
    let (cgroup, task_dir) = (recovery.cgroup.path.clone(), recovery.spec.task_dir.clone());
    denials
        .add_task(cgroup, denial_ids(&recovery), task_dir)
        .await;
    let unreported = denials.unreported_notice();
    for message in unmatched.into_iter().chain(unreported) {
        events.push(TaskEvent {
            task_id: ids.0.clone(),
            alloc_id: ids.1.clone(),
            task_name: ids.2.clone(),
            timestamp: SystemTime::now(),
            message,
            annotations: BTreeMap::new(),
        });
    }
    for e in events {
        tracing::warn!(task_id = %e.task_id, alloc_id = %e.alloc_id, "{}", e.message);
        let _ = state.events.send(e);
    }
    let driver_state = serde_json::to_vec(&recovery)
        .map_err(|e| DriverError::Exec(ExecError::Internal(format!("encode handle: {e}"))))?;
    Ok(TaskHandle {
        version: HANDLE_VERSION,
        config: Some(task),
        state: TaskState::Running as i32,
        driver_state,
    })
}

/// RecoverTask: the task id comes from the handle's config (Nomad leaves `task_id` empty).
pub async fn recover(state: &State, handle: Option<TaskHandle>) -> Result<(), DriverError> {
    let handle = handle.ok_or(DriverError::BadHandle("no handle given".into()))?;
    if handle.version < 1 || handle.version > HANDLE_VERSION {
        return Err(DriverError::BadHandle(format!(
            "handle version {} is not one this plugin wrote (1..={HANDLE_VERSION})",
            handle.version
        )));
    }
    let recovery = RecoveryState::from_json(&handle.driver_state)
        .map_err(|e| DriverError::BadHandle(format!("driver_state is not ours: {}", Chain(&e))))?;
    if let Some(id) = handle.config.as_ref().map(|c| c.id.as_str()) {
        if !id.is_empty() && id != recovery.spec.id {
            return Err(DriverError::BadHandle(format!(
                "driver_state belongs to task {}, not {id}",
                recovery.spec.id
            )));
        }
    }
    let (cgroup, ids) = (recovery.cgroup.path.clone(), denial_ids(&recovery));
    let task_dir = recovery.spec.task_dir.clone();
    state.executor()?.recover(recovery).await?;
    state.denials().add_task(cgroup, ids, task_dir).await;
    Ok(())
}

/// Who the task is for the Landlock denial reader, and where it keeps its journal.
fn denial_ids(r: &RecoveryState) -> super::denials::TaskIds {
    super::denials::TaskIds {
        task_id: r.spec.id.clone(),
        alloc_id: r.spec.alloc_id.clone(),
        task_name: r.spec.task_name.clone(),
        state_path: r.state_path.clone(),
        named_dirs: Default::default(),
    }
}

pub fn exit_result(e: &ExitStatus) -> ExitResult {
    ExitResult {
        exit_code: e.exit_code,
        signal: e.signal,
        oom_killed: e.oom_killed,
    }
}

pub fn task_status(info: &executor::TaskInfo, name: &str) -> TaskStatus {
    TaskStatus {
        id: info.id.clone(),
        name: name.to_string(),
        state: match info.state {
            executor::TaskState::Running => TaskState::Running,
            executor::TaskState::Exited => TaskState::Exited,
        } as i32,
        started_at: Some(timestamp(info.started_at)),
        completed_at: info.completed_at.map(timestamp),
        result: info.exit.as_ref().map(exit_result),
    }
}

pub fn task_stats(id: &str, s: &executor::TaskStats) -> TaskStats {
    let cpu_field = |name: &str| -> Option<i32> {
        use cpu_usage::Fields as F;
        Some(match name {
            "System Mode" => F::SystemMode,
            "User Mode" => F::UserMode,
            "Total Ticks" => F::TotalTicks,
            "Throttled Periods" => F::ThrottledPeriods,
            "Throttled Time" => F::ThrottledTime,
            "Percent" => F::Percent,
            _ => return None,
        } as i32)
    };
    let mem_field = |name: &str| -> Option<i32> {
        use memory_usage::Fields as F;
        Some(match name {
            "RSS" => F::Rss,
            "Cache" => F::Cache,
            "Max Usage" => F::MaxUsage,
            "Kernel Usage" => F::KernelUsage,
            "Kernel Max Usage" => F::KernelMaxUsage,
            "Usage" => F::Usage,
            "Swap" => F::Swap,
            _ => return None,
        } as i32)
    };
    TaskStats {
        id: id.to_string(),
        timestamp: Some(timestamp(s.timestamp)),
        agg_resource_usage: Some(TaskResourceUsage {
            cpu: Some(CpuUsage {
                system_mode: s.cpu.system_percent,
                user_mode: s.cpu.user_percent,
                total_ticks: s.cpu.total_ticks,
                throttled_periods: s.cpu.throttled_periods,
                throttled_time: s.cpu.throttled_time,
                percent: s.cpu.percent,
                measured_fields: s.cpu.measured.iter().filter_map(|f| cpu_field(f)).collect(),
            }),
            memory: Some(MemoryUsage {
                rss: s.memory.rss,
                cache: s.memory.cache,
                max_usage: s.memory.max_usage,
                usage: s.memory.usage,
                swap: s.memory.swap,
                measured_fields: s
                    .memory
                    .measured
                    .iter()
                    .filter_map(|f| mem_field(f))
                    .collect(),
                ..Default::default()
            }),
        }),
        resource_usage_by_pid: Default::default(),
    }
}

/// Nomad's stats hook asks for an interval; never spin faster than this.
pub const MIN_STATS_INTERVAL: Duration = Duration::from_millis(100);

/// The next instant on a grid of `interval` steps counted from the plugin's first stats
/// request, so that every stream with the same interval ticks at the same moments.
pub fn stats_grid_start(interval: Duration) -> tokio::time::Instant {
    static ORIGIN: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(tokio::time::Instant::now);
    let now = tokio::time::Instant::now();
    let step = interval.as_nanos().max(1);
    let elapsed = now.duration_since(origin).as_nanos();
    let steps = elapsed / step + 1;
    origin + Duration::from_nanos((steps * step).min(u64::MAX as u128) as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn unix_promise_gets_a_notice_where_sockets_are_unmediated() {
        fn abi7() -> Option<u32> {
            Some(7)
        }
        fn abi9() -> Option<u32> {
            Some(9)
        }
        fn none() -> Option<u32> {
            None
        }
        let n = super::unix_socket_notice("stdio unix", abi7).unwrap();
        assert!(
            n.contains("landlock ABI 7") && n.contains("pathname unix"),
            "{n}"
        );
        assert!(super::unix_socket_notice("stdio unix", none).is_some());
        assert!(super::unix_socket_notice("stdio unix", abi9).is_none());
        assert!(super::unix_socket_notice("stdio inet", abi7).is_none());
        assert!(super::unix_socket_notice("", abi7).is_none());
    }

    use super::*;
    use crate::proto::drivers::{
        AllocatedCpuResources, AllocatedMemoryResources, AllocatedTaskResources, LinuxResources,
        NetworkIsolationSpec, Resources as WireResources,
    };

    #[test]
    fn spec_from_a_nomad_task_config() {
        let task = TaskConfig {
            id: "a1/web/0011aabb".into(),
            name: "web".into(),
            alloc_id: "a1".into(),
            alloc_dir: "/data/alloc/a1".into(),
            user: "nomad-80001".into(),
            stdout_path: "/data/alloc/a1/alloc/logs/.web.stdout.fifo".into(),
            stderr_path: "/data/alloc/a1/alloc/logs/.web.stderr.fifo".into(),
            env: [("A".to_string(), "1".to_string())].into_iter().collect(),
            resources: Some(WireResources {
                allocated_resources: Some(AllocatedTaskResources {
                    cpu: Some(AllocatedCpuResources { cpu_shares: 500 }),
                    memory: Some(AllocatedMemoryResources {
                        memory_mb: 128,
                        memory_max_mb: 256,
                    }),
                    networks: vec![],
                }),
                linux_resources: Some(LinuxResources {
                    cpuset_cpus: "1,2".into(),
                    cpuset_cgroup: "/sys/fs/cgroup/nomad.slice/share.slice/a1.web.scope".into(),
                    ..Default::default()
                }),
                ports: vec![],
            }),
            network_isolation_spec: Some(NetworkIsolationSpec {
                mode: NetworkIsolationMode::Group as i32,
                path: "/var/run/netns/a1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let cfg = TaskDriverConfig {
            command: "python3".into(),
            args: vec!["-m".into(), "http.server".into()],
            promises: Some("stdio rpath inet".parse().unwrap()),
            unveil: vec![
                "r:/etc/mime.types".parse().unwrap(),
                "rwc:local".parse().unwrap(),
            ],
            importance: executor::Importance::Low,
            work_dir: Some("local".into()),
            connect_ports: None,
            pids_limit: None,
            ulimits: vec![],
            oom_score_adj: 0,
            pid_host: false,
            ipc_host: false,
            cap_add: vec![],
            cap_drop: vec![],
            learn: false,
        };
        let spec = task_spec(&task, &cfg, &PluginConfig::default()).unwrap();
        assert_eq!(spec.task_dir, PathBuf::from("/data/alloc/a1/web"));
        assert_eq!(
            spec.work_dir,
            Some(PathBuf::from("/data/alloc/a1/web/local"))
        );
        let rules: Vec<String> = spec.policy.unveil().iter().map(|r| r.to_string()).collect();
        assert_eq!(rules, ["r:/etc/mime.types", "rwc:/data/alloc/a1/web/local"]);
        assert_eq!(spec.policy.promises().to_string(), "stdio rpath inet");
        assert_eq!(
            *spec.policy.launcher(),
            policy::Launcher::BuiltIn {
                unveil_best_effort: false
            }
        );
        assert_eq!(spec.resources.memory_mb, 128);
        assert_eq!(spec.resources.memory_max_mb, 256);
        assert_eq!(spec.resources.cpu_shares, 500);
        assert_eq!(spec.resources.cpuset_cpus, "1,2");
        assert_eq!(
            spec.nomad_cgroup,
            Some(PathBuf::from(
                "/sys/fs/cgroup/nomad.slice/share.slice/a1.web.scope"
            ))
        );
        assert_eq!(spec.netns_path, Some(PathBuf::from("/var/run/netns/a1")));
        assert_eq!(spec.importance, executor::Importance::Low);
        assert_eq!(spec.user, "nomad-80001");
        assert_eq!(spec.env["A"], "1");

        let external = PluginConfig {
            launcher: Launcher::External("/opt/pledge.com".into()),
            ..Default::default()
        };
        let spec = task_spec(&task, &cfg, &external).unwrap();
        assert_eq!(
            *spec.policy.launcher(),
            policy::Launcher::External("/opt/pledge.com".into())
        );
        let best_effort = PluginConfig {
            unveil_best_effort: true,
            ..Default::default()
        };
        let spec = task_spec(&task, &cfg, &best_effort).unwrap();
        assert_eq!(
            *spec.policy.launcher(),
            policy::Launcher::BuiltIn {
                unveil_best_effort: true
            }
        );

        // No promises in the config: the launcher's default, written out.
        let spec = task_spec(
            &task,
            &TaskDriverConfig {
                promises: None,
                ..cfg.clone()
            },
            &PluginConfig::default(),
        )
        .unwrap();
        assert_eq!(spec.policy.promises().to_string(), "stdio rpath");

        // A relative allocation directory cannot anchor relative unveil paths.
        let relative = TaskConfig {
            alloc_dir: "data/alloc/a1".into(),
            ..task.clone()
        };
        let e = task_spec(&relative, &cfg, &PluginConfig::default()).unwrap_err();
        assert!(matches!(e, DriverError::Policy(_)), "{e}");
        assert_eq!(e.recoverable(), Some(false));
    }

    #[test]
    fn loader_variables_are_refused_only_with_an_external_launcher() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for bad in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "LD_AUDIT",
            "GLIBC_TUNABLES",
            "MALLOC_CHECK_",
        ] {
            let e = refuse_launcher_env(names(&["PATH", bad]).iter()).unwrap_err();
            assert!(e.to_string().contains(&format!("task env `{bad}`")), "{e}");
        }
        assert!(refuse_launcher_env(names(&["PATH", "HOME", "OLD_PRELOAD"]).iter()).is_ok());
    }

    #[test]
    fn pids_limit_defaults_to_and_stays_under_the_plugins() {
        let task = TaskConfig {
            id: "a/t/1".into(),
            name: "t".into(),
            alloc_dir: "/data/alloc/a".into(),
            ..Default::default()
        };
        let cfg = TaskDriverConfig::from_msgpack(&[
            0x81, 0xa7, b'c', b'o', b'm', b'm', b'a', b'n', b'd', 0xa1, b'x',
        ])
        .unwrap();
        let plugin = |n| PluginConfig {
            pids_limit: n,
            ..Default::default()
        };
        let pids = |cfg: &TaskDriverConfig, p: &PluginConfig| {
            task_spec(&task, cfg, p).map(|s| s.resources.pids_max)
        };
        assert_eq!(pids(&cfg, &plugin(0)).unwrap(), None);
        assert_eq!(pids(&cfg, &plugin(100)).unwrap(), Some(100));
        let own = TaskDriverConfig {
            pids_limit: Some(50),
            ..cfg.clone()
        };
        assert_eq!(pids(&own, &plugin(0)).unwrap(), Some(50));
        assert_eq!(pids(&own, &plugin(100)).unwrap(), Some(50));
        let e = pids(&own, &plugin(10)).unwrap_err();
        assert!(
            e.to_string().contains("above the plugin's `pids_limit` 10"),
            "{e}"
        );
        assert_eq!(e.recoverable(), Some(false));

        let negative = TaskDriverConfig {
            oom_score_adj: -100,
            ..cfg.clone()
        };
        let e = task_spec(&task, &negative, &plugin(0)).unwrap_err();
        assert!(
            e.to_string().contains("allow_negative_oom_score_adj"),
            "{e}"
        );
        let allowed = PluginConfig {
            allow_negative_oom_score_adj: true,
            ..Default::default()
        };
        let spec = task_spec(&task, &negative, &allowed).unwrap();
        assert_eq!(spec.limits.oom_score_adj, -100);

        let host = TaskDriverConfig {
            pid_host: true,
            ipc_host: true,
            ..cfg.clone()
        };
        let e = task_spec(&task, &host, &plugin(0)).unwrap_err().to_string();
        assert!(
            e.contains("`pid_mode = \"host\"` is not allowed") && e.contains("allow_pid_host"),
            "{e}"
        );
        let pid_only = PluginConfig {
            allow_pid_host: true,
            ..Default::default()
        };
        let e = task_spec(&task, &host, &pid_only).unwrap_err().to_string();
        assert!(e.contains("allow_ipc_host"), "{e}");
        let both = PluginConfig {
            allow_pid_host: true,
            allow_ipc_host: true,
            ..Default::default()
        };
        let spec = task_spec(&task, &host, &both).unwrap();
        assert!(spec.host_pid && spec.host_ipc);

        // Learn mode only with the operator's `allow_learn`.
        let learn = TaskDriverConfig {
            learn: true,
            ..cfg.clone()
        };
        let e = task_spec(&task, &learn, &plugin(0)).unwrap_err();
        assert!(e.to_string().contains("`allow_learn = true`"), "{e}");
        assert_eq!(e.recoverable(), Some(false));
        let allowed = PluginConfig {
            allow_learn: true,
            ..Default::default()
        };
        assert!(task_spec(&task, &learn, &allowed).unwrap().learn);
        assert!(!task_spec(&task, &cfg, &allowed).unwrap().learn);
    }

    #[tokio::test]
    async fn stats_ticks_share_a_grid() {
        let i = Duration::from_millis(300);
        let before = tokio::time::Instant::now();
        let a = stats_grid_start(i);
        let after = tokio::time::Instant::now();
        assert!(a > before && a <= after + i, "the next grid point");
        tokio::time::sleep(Duration::from_millis(40)).await;
        let b = stats_grid_start(i);
        let apart = a.max(b) - a.min(b);
        // Both on the grid: equal, or a whole step apart if the first was close to a tick.
        assert!(apart.is_zero() || apart == i, "{apart:?}");
    }
}
