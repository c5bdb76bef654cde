//! The subset of a Nomad job file that `run` understands, parsed with hcl-rs.
//!
//! Only what a single client needs to start a pledge task is read: groups, their network mode,
//! and each task's driver, user, config, env, resources, kill_signal and kill_timeout. Everything
//! else (constraints, services, update, ...) is accepted and ignored, as a client would.
//! Expressions stay unevaluated until the task environment exists, because Nomad interpolates
//! `${NOMAD_TASK_DIR}` and friends on the client.

use std::time::Duration;

use hcl::{Block, Body, Expression};
use thiserror::Error;

/// What went wrong reading a job file; every message names the place and the fix.
#[derive(Debug, Error)]
pub enum JobError {
    #[error("cannot parse the job file")]
    Parse(#[from] hcl::Error),
    #[error("the job file has no `job \"NAME\" {{ ... }}` block")]
    NoJob,
    #[error("the job file has {0} `job` blocks; write one job per file")]
    SeveralJobs(usize),
    #[error("`{block}` block needs exactly one label, e.g. `{block} \"name\" {{ ... }}`")]
    Label { block: String },
    #[error("{place}: `{field}` must be {expected}")]
    Type {
        place: String,
        field: &'static str,
        expected: &'static str,
    },
    #[error("{place}: `{field}` = {value:?} is not a duration; use a number with a unit, e.g. \"5s\", \"250ms\" or \"1m\"")]
    Duration {
        place: String,
        field: &'static str,
        value: String,
    },
    #[error("the job has no task with `driver = \"pledge\"`")]
    NoPledgeTask,
    #[error("the job has no pledge task named `{0}`; pledge tasks: {1}")]
    NoSuchTask(String, String),
}

/// A parsed job file.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    /// `network { mode = "..." }` of the group; `None` means host networking.
    pub network_mode: Option<String>,
    /// `network { port "LABEL" { static = N, to = M } }` blocks, in order.
    pub ports: Vec<PortSpec>,
    /// `network { dns { ... } }` of the group.
    pub dns: Option<Dns>,
    /// The group's `volume "NAME" { ... }` blocks.
    pub volumes: Vec<Volume>,
    pub tasks: Vec<Task>,
}

/// `network { dns { servers = [...] searches = [...] options = [...] } }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dns {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// A group's `volume "NAME" { type = "host" source = "..." read_only = ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    /// `type`: `host` (the default) or `csi`.
    pub kind: String,
    pub source: String,
    pub read_only: bool,
}

/// A task's `volume_mount { volume = "..." destination = "..." read_only = ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    pub volume: String,
    pub destination: String,
    pub read_only: bool,
    pub propagation_mode: String,
}

/// One `port "LABEL" { ... }` block of a group's network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub label: String,
    /// `static`: this host port; None = a dynamic port.
    pub static_port: Option<u16>,
    /// `to`: the port inside the allocation's network namespace (-1 = same as the host port).
    pub to: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub driver: String,
    pub user: String,
    /// The `config {}` block's attributes, evaluated later against the task environment.
    pub config: Vec<(String, Expression)>,
    /// The `env {}` block's attributes, evaluated later.
    pub env: Vec<(String, Expression)>,
    pub resources: Resources,
    /// `kill_signal`, verbatim (Nomad passes it unnormalised; empty when absent).
    pub kill_signal: String,
    pub kill_timeout: Duration,
    /// The `lifecycle {}` block; `None` for a main task.
    pub lifecycle: Option<Lifecycle>,
    /// The task's `volume_mount {}` blocks.
    pub volume_mounts: Vec<VolumeMount>,
}

/// When a task runs relative to the group's main tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Prestart,
    Poststart,
    Poststop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    pub hook: Hook,
    /// Keeps running alongside the main tasks and is stopped once they are done.
    pub sidecar: bool,
}

/// The task's `resources {}` block, with Nomad's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// MHz (`cpu`), default 100.
    pub cpu: u64,
    /// Reserved cores (`cores`); 0 when the task uses `cpu`.
    pub cores: u64,
    /// MiB (`memory`), default 300.
    pub memory: u64,
    /// MiB (`memory_max`), 0 when unset, -1 for "no hard limit".
    pub memory_max: i64,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpu: 100,
            cores: 0,
            memory: 300,
            memory_max: 0,
        }
    }
}

/// Nomad's default `kill_timeout`.
pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(5);

impl Job {
    /// Parses a job file's text.
    pub fn parse(text: &str) -> Result<Job, JobError> {
        let body: Body = hcl::parse(text)?;
        let jobs: Vec<&Block> = body.blocks().filter(|b| b.identifier() == "job").collect();
        let job = match jobs.as_slice() {
            [] => return Err(JobError::NoJob),
            [one] => *one,
            many => return Err(JobError::SeveralJobs(many.len())),
        };
        let name = label(job)?;
        let groups = job
            .body()
            .blocks()
            .filter(|b| b.identifier() == "group")
            .map(|g| Group::parse(g, &name))
            .collect::<Result<_, _>>()?;
        Ok(Job { name, groups })
    }

    /// The pledge tasks to run: all of them, or the one named `only`.
    pub fn pledge_tasks(&self, only: Option<&str>) -> Result<Vec<(&Group, &Task)>, JobError> {
        let all: Vec<(&Group, &Task)> = self
            .groups
            .iter()
            .flat_map(|g| g.tasks.iter().map(move |t| (g, t)))
            .filter(|(_, t)| t.driver == "pledge")
            .collect();
        if all.is_empty() {
            return Err(JobError::NoPledgeTask);
        }
        match only {
            None => Ok(all),
            Some(name) => {
                let picked: Vec<_> = all
                    .iter()
                    .copied()
                    .filter(|(_, t)| t.name == name)
                    .collect();
                if picked.is_empty() {
                    let names: Vec<&str> = all.iter().map(|(_, t)| t.name.as_str()).collect();
                    Err(JobError::NoSuchTask(name.to_string(), names.join(", ")))
                } else {
                    Ok(picked)
                }
            }
        }
    }
}

impl Group {
    fn parse(block: &Block, job: &str) -> Result<Group, JobError> {
        let name = label(block)?;
        let place = format!("job {job:?} group {name:?}");
        let mut network_mode = None;
        let mut ports = Vec::new();
        let mut dns = None;
        for net in block
            .body()
            .blocks()
            .filter(|b| b.identifier() == "network")
        {
            let nplace = format!("{place} network");
            network_mode = opt_string(net.body(), "mode", &nplace)?;
            for port in net.body().blocks().filter(|b| b.identifier() == "port") {
                let label = label(port)?;
                let pplace = format!("{nplace} port {label:?}");
                let port_number = |key: &'static str, min: i64| -> Result<Option<i64>, JobError> {
                    match opt_i64(port.body(), key, &pplace)? {
                        Some(v) if !(min..=65535).contains(&v) => Err(JobError::Type {
                            place: pplace.clone(),
                            field: key,
                            expected: if min < 0 {
                                "a port number 1-65535 (or -1)"
                            } else {
                                "a port number 1-65535"
                            },
                        }),
                        other => Ok(other),
                    }
                };
                let static_port = port_number("static", 1)?.map(|v| v as u16);
                let to = port_number("to", -1)?.map(|v| v as i32);
                ports.push(PortSpec {
                    label,
                    static_port,
                    to,
                });
            }
            for d in net.body().blocks().filter(|b| b.identifier() == "dns") {
                let dplace = format!("{nplace} dns");
                dns = Some(Dns {
                    servers: string_list(d.body(), "servers", &dplace)?,
                    searches: string_list(d.body(), "searches", &dplace)?,
                    options: string_list(d.body(), "options", &dplace)?,
                });
            }
        }
        let mut volumes = Vec::new();
        for v in block.body().blocks().filter(|b| b.identifier() == "volume") {
            let name = label(v)?;
            let vplace = format!("{place} volume {name:?}");
            volumes.push(Volume {
                kind: opt_string(v.body(), "type", &vplace)?.unwrap_or_else(|| "host".into()),
                source: opt_string(v.body(), "source", &vplace)?.unwrap_or_default(),
                read_only: opt_bool(v.body(), "read_only", &vplace)?.unwrap_or(false),
                name,
            });
        }
        let tasks = block
            .body()
            .blocks()
            .filter(|b| b.identifier() == "task")
            .map(|t| Task::parse(t, &place))
            .collect::<Result<_, _>>()?;
        Ok(Group {
            name,
            network_mode,
            ports,
            dns,
            volumes,
            tasks,
        })
    }
}

impl Task {
    fn parse(block: &Block, group_place: &str) -> Result<Task, JobError> {
        let name = label(block)?;
        let place = format!("{group_place} task {name:?}");
        let body = block.body();
        let attrs_of = |ident: &str| -> Vec<(String, Expression)> {
            body.blocks()
                .filter(|b| b.identifier() == ident)
                .flat_map(|b| b.body().attributes())
                .map(|a| (a.key().to_string(), a.expr().clone()))
                .collect()
        };
        let mut resources = Resources::default();
        for res in body.blocks().filter(|b| b.identifier() == "resources") {
            let rplace = format!("{place} resources");
            let rb = res.body();
            if let Some(v) = opt_u64(rb, "cpu", &rplace)? {
                resources.cpu = v;
            }
            if let Some(v) = opt_u64(rb, "cores", &rplace)? {
                resources.cores = v;
            }
            if let Some(v) = opt_u64(rb, "memory", &rplace)? {
                resources.memory = v;
            }
            if let Some(v) = opt_i64(rb, "memory_max", &rplace)? {
                resources.memory_max = v;
            }
        }
        let kill_timeout = match opt_string(body, "kill_timeout", &place)? {
            None => DEFAULT_KILL_TIMEOUT,
            Some(text) => parse_duration(&text).ok_or_else(|| JobError::Duration {
                place: place.clone(),
                field: "kill_timeout",
                value: text,
            })?,
        };
        let mut lifecycle = None;
        for block in body.blocks().filter(|b| b.identifier() == "lifecycle") {
            let lplace = format!("{place} lifecycle");
            let hook = match opt_string(block.body(), "hook", &lplace)?.as_deref() {
                Some("prestart") => Hook::Prestart,
                Some("poststart") => Hook::Poststart,
                Some("poststop") => Hook::Poststop,
                _ => {
                    return Err(JobError::Type {
                        place: lplace,
                        field: "hook",
                        expected: "one of \"prestart\", \"poststart\", \"poststop\"",
                    })
                }
            };
            let sidecar = match attr(block.body(), "sidecar") {
                None => false,
                Some(Expression::Bool(b)) => *b,
                Some(_) => {
                    return Err(JobError::Type {
                        place: lplace,
                        field: "sidecar",
                        expected: "true or false",
                    })
                }
            };
            lifecycle = Some(Lifecycle { hook, sidecar });
        }
        let mut volume_mounts = Vec::new();
        for (i, vm) in body
            .blocks()
            .filter(|b| b.identifier() == "volume_mount")
            .enumerate()
        {
            let mplace = format!("{place} volume_mount ({i})");
            let b = vm.body();
            volume_mounts.push(VolumeMount {
                volume: opt_string(b, "volume", &mplace)?.unwrap_or_default(),
                destination: opt_string(b, "destination", &mplace)?.unwrap_or_default(),
                read_only: opt_bool(b, "read_only", &mplace)?.unwrap_or(false),
                propagation_mode: opt_string(b, "propagation_mode", &mplace)?
                    .unwrap_or_else(|| "private".into()),
            });
        }
        Ok(Task {
            lifecycle,
            volume_mounts,
            driver: opt_string(body, "driver", &place)?.unwrap_or_default(),
            user: opt_string(body, "user", &place)?.unwrap_or_default(),
            config: attrs_of("config"),
            env: attrs_of("env"),
            resources,
            kill_signal: opt_string(body, "kill_signal", &place)?.unwrap_or_default(),
            kill_timeout,
            name,
        })
    }
}

fn label(block: &Block) -> Result<String, JobError> {
    match block.labels() {
        [one] => Ok(one.as_str().to_string()),
        _ => Err(JobError::Label {
            block: block.identifier().to_string(),
        }),
    }
}

fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

fn opt_string(body: &Body, key: &'static str, place: &str) -> Result<Option<String>, JobError> {
    match attr(body, key) {
        None => Ok(None),
        Some(Expression::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JobError::Type {
            place: place.to_string(),
            field: key,
            expected: "a plain string",
        }),
    }
}

fn opt_bool(body: &Body, key: &'static str, place: &str) -> Result<Option<bool>, JobError> {
    match attr(body, key) {
        None => Ok(None),
        Some(Expression::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(JobError::Type {
            place: place.to_string(),
            field: key,
            expected: "true or false",
        }),
    }
}

fn string_list(body: &Body, key: &'static str, place: &str) -> Result<Vec<String>, JobError> {
    let bad = || JobError::Type {
        place: place.to_string(),
        field: key,
        expected: "a list of plain strings, e.g. [\"1.1.1.1\"]",
    };
    match attr(body, key) {
        None => Ok(Vec::new()),
        Some(Expression::Array(items)) => items
            .iter()
            .map(|e| match e {
                Expression::String(s) => Ok(s.clone()),
                _ => Err(bad()),
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}

fn opt_i64(body: &Body, key: &'static str, place: &str) -> Result<Option<i64>, JobError> {
    let negative = |e: &Expression| match e {
        Expression::Operation(op) => match op.as_ref() {
            hcl::expr::Operation::Unary(u) if u.operator == hcl::expr::UnaryOperator::Neg => {
                match &u.expr {
                    Expression::Number(n) => n.as_i64().map(|v| -v),
                    _ => None,
                }
            }
            _ => None,
        },
        _ => None,
    };
    match attr(body, key) {
        None => Ok(None),
        Some(Expression::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
        Some(e) if negative(e).is_some() => Ok(negative(e)),
        Some(_) => Err(JobError::Type {
            place: place.to_string(),
            field: key,
            expected: "a whole number",
        }),
    }
}

fn opt_u64(body: &Body, key: &'static str, place: &str) -> Result<Option<u64>, JobError> {
    match attr(body, key) {
        None => Ok(None),
        Some(Expression::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(_) => Err(JobError::Type {
            place: place.to_string(),
            field: key,
            expected: "a whole number ≥ 0",
        }),
    }
}

/// Parses Go-style durations as Nomad accepts them: `5s`, `250ms`, `1m30s`, `2h`, `1.5s`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = r#"
job "demo" {
  datacenters = ["dc1"]
  group "g" {
    network { mode = "bridge" }
    task "web" {
      driver = "pledge"
      user   = "nobody"
      config {
        command  = "python3"
        args     = ["-m", "http.server", "${NOMAD_PORT_http}"]
        promises = "stdio rpath inet"
        unveil   = ["r:/usr", "rwc:${NOMAD_TASK_DIR}"]
      }
      env { GREETING = "hi" }
      resources {
        cpu        = 250
        memory     = 64
        memory_max = -1
      }
      kill_signal  = "SIGINT"
      kill_timeout = "1m30s"
    }
    task "other" {
      driver = "exec"
      config { command = "true" }
    }
  }
}
"#;

    #[test]
    fn parses_the_fields_run_needs() {
        let job = Job::parse(JOB).unwrap();
        assert_eq!(job.name, "demo");
        let group = &job.groups[0];
        assert_eq!(group.network_mode.as_deref(), Some("bridge"));
        let task = &group.tasks[0];
        assert_eq!(task.driver, "pledge");
        assert_eq!(task.user, "nobody");
        assert_eq!(
            task.resources,
            Resources {
                cpu: 250,
                cores: 0,
                memory: 64,
                memory_max: -1
            }
        );
        assert_eq!(task.kill_signal, "SIGINT");
        assert_eq!(task.kill_timeout, Duration::from_secs(90));
        let keys: Vec<&str> = task.config.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["command", "args", "promises", "unveil"]);
        assert_eq!(task.env[0].0, "GREETING");
    }

    #[test]
    fn parses_port_blocks() {
        let job = Job::parse(
            r#"job "j" {
  group "g" {
    network {
      port "http" { static = 8080 }
      port "dyn" {}
      port "web" { to = 80 }
      port "same" { to = -1 }
    }
  }
}"#,
        )
        .unwrap();
        let p = |label: &str, static_port, to| PortSpec {
            label: label.into(),
            static_port,
            to,
        };
        assert_eq!(
            job.groups[0].ports,
            [
                p("http", Some(8080), None),
                p("dyn", None, None),
                p("web", None, Some(80)),
                p("same", None, Some(-1))
            ]
        );
        assert_eq!(job.groups[0].network_mode, None);
        for bad in ["static = 70000", "static = \"x\"", "to = -2"] {
            let text =
                format!("job \"j\" {{ group \"g\" {{ network {{ port \"p\" {{ {bad} }} }} }} }}");
            let e = crate::errors::error_chain(&Job::parse(&text).unwrap_err());
            assert!(e.contains("port \"p\""), "{bad}: {e}");
        }
    }

    #[test]
    fn volumes_and_dns() {
        let job = Job::parse(
            r#"
job "j" {
  group "g" {
    network {
      mode = "bridge"
      dns {
        servers  = ["10.0.0.53", "10.0.0.54"]
        searches = ["svc.local"]
        options  = ["ndots:2"]
      }
    }
    volume "data" {
      type      = "host"
      source    = "shared"
      read_only = true
    }
    volume "other" { source = "x" }
    task "t" {
      driver = "pledge"
      config { command = "true" }
      volume_mount {
        volume      = "data"
        destination = "local/data"
      }
      volume_mount {
        volume      = "other"
        destination = "/srv"
        read_only   = true
      }
    }
  }
}
"#,
        )
        .unwrap();
        let g = &job.groups[0];
        let dns = g.dns.as_ref().unwrap();
        assert_eq!(dns.servers, ["10.0.0.53", "10.0.0.54"]);
        assert_eq!(dns.searches, ["svc.local"]);
        assert_eq!(dns.options, ["ndots:2"]);
        assert_eq!(
            g.volumes[0],
            Volume {
                name: "data".into(),
                kind: "host".into(),
                source: "shared".into(),
                read_only: true
            }
        );
        assert_eq!(g.volumes[1].kind, "host");
        let t = &g.tasks[0];
        assert_eq!(t.volume_mounts.len(), 2);
        assert_eq!(t.volume_mounts[0].destination, "local/data");
        assert!(!t.volume_mounts[0].read_only && t.volume_mounts[1].read_only);
        assert_eq!(t.volume_mounts[0].propagation_mode, "private");
        let e = Job::parse(
            r#"job "j" {
  group "g" {
    volume "v" { read_only = "yes" }
  }
}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`read_only` must be true or false"), "{e}");
    }

    #[test]
    fn picks_pledge_tasks_only() {
        let job = Job::parse(JOB).unwrap();
        let tasks = job.pledge_tasks(None).unwrap();
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].1.name, "web");
        let err = job.pledge_tasks(Some("other")).unwrap_err().to_string();
        assert!(
            err.contains("no pledge task named `other`") && err.contains("web"),
            "{err}"
        );
    }

    #[test]
    fn defaults_apply() {
        let job = Job::parse(
            r#"job "j" {
  group "g" {
    task "t" {
      driver = "pledge"
      config { command = "true" }
    }
  }
}"#,
        )
        .unwrap();
        let task = &job.groups[0].tasks[0];
        assert_eq!(task.resources, Resources::default());
        assert_eq!(task.kill_timeout, DEFAULT_KILL_TIMEOUT);
        assert_eq!(task.kill_signal, "");
        assert_eq!(job.groups[0].network_mode, None);
    }

    #[test]
    fn bad_files_name_the_problem() {
        assert!(matches!(Job::parse("group \"g\" {}"), Err(JobError::NoJob)));
        assert!(matches!(Job::parse("job {"), Err(JobError::Parse(_))));
        assert!(matches!(Job::parse("job {}"), Err(JobError::Label { .. })));
        let err = Job::parse(
            r#"job "j" {
  group "g" {
    task "t" {
      driver       = "pledge"
      kill_timeout = "soon"
    }
  }
}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("kill_timeout") && err.contains("\"soon\""),
            "{err}"
        );
        let err = Job::parse(
            r#"job "j" {
  group "g" {
    task "t" {
      driver = "pledge"
      resources { memory = "lots" }
    }
  }
}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`memory`") && err.contains("whole number"),
            "{err}"
        );
        assert!(matches!(
            Job::parse(
                "job \"j\" {\n group \"g\" {\n task \"t\" {\n driver = \"exec\"\n }\n }\n }"
            )
            .unwrap()
            .pledge_tasks(None),
            Err(JobError::NoPledgeTask)
        ));
    }

    #[test]
    fn lifecycle_hooks() {
        let job = Job::parse(
            r#"job "j" {
  group "g" {
    task "side" {
      driver = "pledge"
      lifecycle {
        hook    = "prestart"
        sidecar = true
      }
    }
    task "main" {
      driver = "pledge"
    }
    task "bad" {
      driver = "pledge"
      lifecycle {
        hook = "later"
      }
    }
  }
}"#,
        );
        let err = job.unwrap_err().to_string();
        assert!(err.contains("hook") && err.contains("poststart"), "{err}");
        let job = Job::parse(
            r#"job "j" {
  group "g" {
    task "side" {
      driver = "pledge"
      lifecycle {
        hook    = "prestart"
        sidecar = true
      }
    }
    task "main" {
      driver = "pledge"
    }
  }
}"#,
        )
        .unwrap();
        let tasks = &job.groups[0].tasks;
        assert_eq!(
            tasks[0].lifecycle,
            Some(Lifecycle {
                hook: Hook::Prestart,
                sidecar: true
            })
        );
        assert_eq!(tasks[1].lifecycle, None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
    }
}
