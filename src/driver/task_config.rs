//! The job's task configuration (`config { ... }` of a `driver = "pledge"` task): typed,
//! decoded from `TaskConfig.msgpack_driver_config`, validated field by field.

use std::ffi::OsStr;
use std::str::FromStr;

use super::msgpack::{ConfigDecodeError, Object};
use crate::executor::rlimit::{Ulimit, UlimitError};
use crate::sandbox::promise::{Promise, PromiseError, PromiseSet};
use crate::sandbox::unveil::{PortRange, UnveilError, UnveilRule};

/// Scheduling importance, mapped to a nice value by the executor.
/// Scheduling importance (`importance` in the task config); the executor maps it to nice.
pub use crate::executor::Importance;

impl Importance {
    pub const ACCEPTED: &'static str = "lowest, low, normal, high, highest";
}

impl FromStr for Importance {
    type Err = TaskConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim() {
            "lowest" => Importance::Lowest,
            "low" => Importance::Low,
            "" | "normal" => Importance::Normal,
            "high" => Importance::High,
            "highest" => Importance::Highest,
            other => return Err(TaskConfigError::Importance(other.to_string())),
        })
    }
}

/// One `[PERM:]PATH` entry of `unveil`, parsed by the launcher's own parser (split at the first
/// `:`, no colon = `r`); the path is absolute or relative to the task directory. The problems are
/// worded for the task config (the entry is named by [`TaskConfigError::Unveil`]).
fn unveil_entry(entry: &str) -> Result<UnveilRule, String> {
    let rule = UnveilRule::parse_os(OsStr::new(entry)).map_err(|e| match e {
        UnveilError::BadPermLetter { letter, .. } => {
            format!("unknown permission `{letter}` (use letters from r, w, x, c)")
        }
        UnveilError::EmptyPerms => {
            "empty permission before `:` (use letters from r, w, x, c)".to_string()
        }
        UnveilError::EmptyPath { .. } => "empty path after the permissions".to_string(),
        other => other.to_string(),
    })?;
    let path = rule.path.to_string_lossy();
    if path.contains("${") {
        return Err(format!(
            "path `{path}` contains an uninterpolated `${{...}}` variable"
        ));
    }
    if path.contains('\0') {
        return Err("path contains a NUL byte".into());
    }
    Ok(rule)
}

/// Validated task configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDriverConfig {
    pub command: String,
    pub args: Vec<String>,
    /// `promises`; None (absent or blank) = the launcher's default.
    pub promises: Option<PromiseSet>,
    pub unveil: Vec<UnveilRule>,
    pub importance: Importance,
    /// Working directory (absolute, or relative to the task dir); None = the task dir.
    pub work_dir: Option<String>,
    /// `connect_ports`: TCP connect only to these (Landlock ABI 4); None = unrestricted.
    pub connect_ports: Option<Vec<PortRange>>,
    /// `pids_limit` (cgroup `pids.max`); None = the plugin's default.
    pub pids_limit: Option<u64>,
    /// `ulimit` entries, in name order.
    pub ulimits: Vec<Ulimit>,
    /// `oom_score_adj`, -1000..=1000 (negative only where the plugin allows it).
    pub oom_score_adj: i32,
    /// `pid_mode = "host"` (default `private`).
    pub pid_host: bool,
    /// `ipc_mode = "host"` (default `private`).
    pub ipc_host: bool,
    /// `cap_add` / `cap_drop`, as written (names checked; granted against `allow_caps` later).
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `learn = true`: learn mode (refused unless the plugin's `allow_learn`).
    pub learn: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TaskConfigError {
    #[error("task config")]
    Decode(#[from] ConfigDecodeError),
    #[error(
        "task config: `command` is required (the program to run, e.g. command = \"/bin/cat\")"
    )]
    MissingCommand,
    #[error("task config: `{field}` must not contain NUL bytes")]
    Nul { field: String },
    #[error("task config: `importance` is `{0}`; use one of {accepted}", accepted = Importance::ACCEPTED)]
    Importance(String),
    #[error("task config: `unveil[{index}]` `{entry}`: {problem}; entries look like \"PERM:PATH\" with PERM from r, w, x, c (e.g. \"rx:/usr/bin\")")]
    Unveil {
        index: usize,
        entry: String,
        problem: String,
    },
    #[error("task config: `promises` `{promises}`: {problem}")]
    Promises { promises: String, problem: String },
    #[error("task config: `{field}[{index}]`")]
    Cap {
        field: &'static str,
        index: usize,
        source: crate::sandbox::caps::CapNameError,
    },
    #[error("task config: `work_dir` `{0}` contains an uninterpolated `${{...}}` variable")]
    WorkDir(String),
    #[error("task config: `connect_ports[{index}]`")]
    ConnectPorts {
        index: usize,
        source: crate::sandbox::unveil::PortRangeError,
    },
    #[error("task config: `pids_limit` is {0}: give a whole number ≥ 1 (the most processes and threads the task may have at once), or leave it out for the plugin's default")]
    PidsLimit(i64),
    #[error("task config: `ulimit` `{name} = \"{value}\"`")]
    Ulimit {
        name: String,
        value: String,
        #[source]
        problem: UlimitError,
    },
    #[error("task config: `oom_score_adj` is {0}: give a whole number from -1000 to 1000 (higher = killed first when memory runs out)")]
    OomScoreAdj(i64),
    #[error("task config: `pids_limit` {task} is above the plugin's `pids_limit` {max}: lower it, or ask the operator to raise the plugin's")]
    PidsAboveCeiling { task: u64, max: u64 },
    #[error("task config: `oom_score_adj` {0} is negative, which makes the OOM killer spare this task at the expense of others: use 0 to 1000, or ask the operator to set the plugin's `allow_negative_oom_score_adj = true`")]
    NegativeOomScoreAdj(i32),
    #[error("task config: `{field}` is `{value}`: use \"private\" (the default) or \"host\"")]
    NamespaceMode { field: &'static str, value: String },
    #[error("task config: `learn = true` is not allowed on this client: learn mode runs the task with nothing denied (it records what the sandbox would refuse); ask the operator to set the plugin's `allow_learn = true` (as `run --learn` does), or remove `learn`")]
    LearnNotAllowed,
    #[error("task config: `{field} = \"host\"` is not allowed on this client: the task would see (and may signal) {what}; ask the operator to set the plugin's `{option} = true`, or use \"private\"")]
    HostNamespace {
        field: &'static str,
        what: &'static str,
        option: &'static str,
    },
    #[error("task env `{name}`: the plugin's external launcher (`pledge_executable`) would run with it before it sandboxes the command (the dynamic loader and libc read it), and pledge.com cannot hand the environment to the command alone; remove `{name}` from the task's env, or use the built-in sandbox (pledge_executable = \"\"), which applies it only to the sandboxed command")]
    LauncherEnv { name: String },
}

impl TaskDriverConfig {
    /// Decodes and validates `msgpack_driver_config`.
    pub fn from_msgpack(bytes: &[u8]) -> Result<Self, TaskConfigError> {
        let obj = Object::from_bytes(bytes)?;
        let field = |e| TaskConfigError::Decode(ConfigDecodeError::Field(e));
        let field_err = field;

        let command = obj.string("command").map_err(field)?.unwrap_or_default();
        if command.trim().is_empty() {
            return Err(TaskConfigError::MissingCommand);
        }
        no_nul("command", &command)?;
        let args = obj.string_list("args").map_err(field)?.unwrap_or_default();
        for (i, a) in args.iter().enumerate() {
            no_nul(&format!("args[{i}]"), a)?;
        }
        let promises = match obj.string("promises").map_err(field)? {
            Some(p) => parse_promises(&p)?,
            None => None,
        };
        let unveil = obj
            .string_list("unveil")
            .map_err(field)?
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                unveil_entry(entry).map_err(|problem| TaskConfigError::Unveil {
                    index,
                    entry: entry.clone(),
                    problem,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let importance = obj
            .string("importance")
            .map_err(field)?
            .unwrap_or_default()
            .parse()?;
        let work_dir = obj
            .string("work_dir")
            .map_err(field)?
            .filter(|w| !w.is_empty());
        if let Some(w) = &work_dir {
            no_nul("work_dir", w)?;
            if w.contains("${") {
                return Err(TaskConfigError::WorkDir(w.clone()));
            }
        }
        let connect_ports = obj
            .string_list("connect_ports")
            .map_err(field)?
            .map(|list| {
                list.iter()
                    .enumerate()
                    .map(|(index, p)| {
                        p.parse()
                            .map_err(|source| TaskConfigError::ConnectPorts { index, source })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let pids_limit = match obj.integer("pids_limit").map_err(field)? {
            None => None,
            Some(n) if n >= 1 => Some(n as u64),
            Some(n) => return Err(TaskConfigError::PidsLimit(n)),
        };
        let ulimits = obj
            .string_map("ulimit")
            .map_err(field)?
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| {
                Ulimit::parse(&name, &value).map_err(|problem| TaskConfigError::Ulimit {
                    name,
                    value,
                    problem,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let oom_score_adj = match obj.integer("oom_score_adj").map_err(field)? {
            None => 0,
            Some(n) if (-1000..=1000).contains(&n) => n as i32,
            Some(n) => return Err(TaskConfigError::OomScoreAdj(n)),
        };
        let mode = |field: &'static str| -> Result<bool, TaskConfigError> {
            match obj
                .string(field)
                .map_err(field_err)?
                .as_deref()
                .map(str::trim)
            {
                None | Some("") | Some("private") => Ok(false),
                Some("host") => Ok(true),
                Some(other) => Err(TaskConfigError::NamespaceMode {
                    field,
                    value: other.to_string(),
                }),
            }
        };
        let pid_host = mode("pid_mode")?;
        let ipc_host = mode("ipc_mode")?;
        let caps = |name: &'static str| -> Result<Vec<String>, TaskConfigError> {
            let list = obj.string_list(name).map_err(field)?.unwrap_or_default();
            for (index, c) in list.iter().enumerate() {
                crate::sandbox::caps::CapName::parse(c).map_err(|source| TaskConfigError::Cap {
                    field: name,
                    index,
                    source,
                })?;
            }
            Ok(list)
        };
        let cap_add = caps("cap_add")?;
        let cap_drop = caps("cap_drop")?;
        let learn = obj.bool("learn").map_err(field)?.unwrap_or(false);
        Ok(TaskDriverConfig {
            learn,
            pid_host,
            ipc_host,
            command,
            args,
            promises,
            unveil,
            importance,
            work_dir,
            connect_ports,
            pids_limit,
            ulimits,
            oom_score_adj,
            cap_add,
            cap_drop,
        })
    }
}

fn no_nul(field: &str, v: &str) -> Result<(), TaskConfigError> {
    if v.contains('\0') {
        return Err(TaskConfigError::Nul {
            field: field.to_string(),
        });
    }
    Ok(())
}

/// Parses a promise string exactly as the launcher would, so that a typo fails the task at
/// StartTask with a message naming the field instead of inside the sandbox. Blank = None (the
/// launcher's default), as the original driver passes no `-p` then.
fn parse_promises(promises: &str) -> Result<Option<PromiseSet>, TaskConfigError> {
    if promises.trim().is_empty() {
        return Ok(None);
    }
    PromiseSet::parse(promises)
        .map(Some)
        .map_err(|e| TaskConfigError::Promises {
            promises: promises.to_string(),
            problem: match e {
                PromiseError::Unknown { name } => format!(
                    "`{name}` is not a promise; accepted promises: {}",
                    Promise::accepted_names()
                ),
                other => other.to_string(),
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// {command, args, promises, unveil, importance, work_dir} with strings only.
    fn encode(fields: &[(&str, Result<&str, &[&str]>)]) -> Vec<u8> {
        let mut out = vec![0x80 | fields.len() as u8];
        let s = |out: &mut Vec<u8>, v: &str| {
            out.push(0xd9);
            out.push(v.len() as u8);
            out.extend_from_slice(v.as_bytes());
        };
        for (k, v) in fields {
            s(&mut out, k);
            match v {
                Ok(v) => s(&mut out, v),
                Err(list) => {
                    out.push(0x90 | list.len() as u8);
                    for i in *list {
                        s(&mut out, i);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn protocol_doc_example_decodes() {
        let b = hex("85 a4 61 72 67 73 91 a1 31 a7 63 6f 6d 6d 61 6e 64 a5 73 6c 65 65 70 aa 69 6d 70 6f 72 74 61 6e 63 65 c0 a8 70 72 6f 6d 69 73 65 73 a5 73 74 64 69 6f a6 75 6e 76 65 69 6c 90");
        let c = TaskDriverConfig::from_msgpack(&b).unwrap();
        assert_eq!(c.command, "sleep");
        assert_eq!(c.args, vec!["1"]);
        assert_eq!(c.promises.unwrap().to_string(), "stdio");
        assert!(c.unveil.is_empty());
        assert_eq!(c.importance, Importance::Normal);
        assert_eq!(c.work_dir, None);
    }

    /// Bytes go-cty produced for a job config with every field, numbers inside `args` and an
    /// interpolated path (captured with nomadsim's `encode`, which runs HashiCorp's hcl/cty code).
    #[test]
    fn decodes_bytes_from_go_cty() {
        let hex = "86a46172677394a22d6ed94a2f746d702f6e6f6d616473696d2d333132323935383333342f64373438366264352d393734642d346239392d393664312d3365366433343265653530352f66756c6c2f6c6f63616c2f78a135a3312e31a7636f6d6d616e64a82f62696e2f636174aa696d706f7274616e6365a468696768a870726f6d69736573ab737464696f207270617468a6756e7665696c92a6723a2f657463a97277633a6c6f63616ca8776f726b5f646972a56c6f63616c";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let c = TaskDriverConfig::from_msgpack(&bytes).unwrap();
        assert_eq!(c.command, "/bin/cat");
        assert_eq!(c.args.len(), 4);
        assert_eq!(c.args[0], "-n");
        assert!(c.args[1].ends_with("/full/local/x"), "{}", c.args[1]);
        assert_eq!(&c.args[2..], ["5", "1.1"]);
        assert_eq!(c.promises.unwrap().to_string(), "stdio rpath");
        assert_eq!(c.unveil[0].path, Path::new("/etc"));
        assert_eq!(c.unveil[1].perms.to_string(), "rwc");
        assert_eq!(c.importance, Importance::High);
        assert_eq!(c.work_dir.as_deref(), Some("local"));
    }

    /// `{command = "x", ulimit = {k = v, ...}}`.
    fn with_ulimit(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut out = encode(&[("command", Ok("x"))]);
        out[0] += 1;
        let s = |out: &mut Vec<u8>, v: &str| {
            out.push(0xd9);
            out.push(v.len() as u8);
            out.extend_from_slice(v.as_bytes());
        };
        s(&mut out, "ulimit");
        out.push(0x80 | entries.len() as u8);
        for (k, v) in entries {
            s(&mut out, k);
            s(&mut out, v);
        }
        out
    }

    #[test]
    fn limits_are_read_and_checked() {
        use crate::executor::rlimit::RlimitName;
        let b = encode(&[
            ("command", Ok("x")),
            ("pids_limit", Ok("64")),
            ("oom_score_adj", Ok("-500")),
        ]);
        let c = TaskDriverConfig::from_msgpack(&b).unwrap();
        assert_eq!(c.pids_limit, Some(64));
        assert_eq!(c.oom_score_adj, -500);
        assert!(c.ulimits.is_empty());
        let c =
            TaskDriverConfig::from_msgpack(&with_ulimit(&[("nofile", "512:1024"), ("core", "0")]))
                .unwrap();
        assert_eq!(c.ulimits.len(), 2);
        let nofile = c.ulimits.iter().find(|u| u.name == RlimitName::Nofile);
        assert_eq!(nofile.map(|u| (u.soft, u.hard)), Some((512, 1024)));
        let e = TaskDriverConfig::from_msgpack(&with_ulimit(&[("nofiles", "1")]))
            .map_err(|e| crate::errors::error_chain(&e))
            .unwrap_err();
        assert!(
            e.contains(
                "`ulimit` `nofiles = \"1\"`: `nofiles` is not a resource; use one of nofile, nproc"
            ),
            "{e}"
        );
        let e = TaskDriverConfig::from_msgpack(&with_ulimit(&[("nproc", "9:3")]))
            .map_err(|e| crate::errors::error_chain(&e))
            .unwrap_err();
        assert!(e.contains("soft limit 9 is above hard limit 3"), "{e}");
        let e = TaskDriverConfig::from_msgpack(&encode(&[
            ("command", Ok("x")),
            ("ulimit", Ok("nofile=1")),
        ]))
        .map_err(|e| crate::errors::error_chain(&e))
        .unwrap_err();
        assert!(e.contains("`ulimit` must be a map of strings"), "{e}");
    }

    #[test]
    fn full_config() {
        let b = encode(&[
            ("command", Ok("/bin/cat")),
            ("args", Err(&["/etc/os-release"])),
            ("promises", Ok("stdio rpath")),
            ("unveil", Err(&["r:/etc", "rwc:local/out", "/usr"])),
            ("importance", Ok("high")),
            ("work_dir", Ok("local")),
        ]);
        let c = TaskDriverConfig::from_msgpack(&b).unwrap();
        assert_eq!(c.unveil.len(), 3);
        assert_eq!(c.unveil[1].perms.to_string(), "rwc");
        assert_eq!(c.unveil[1].path, Path::new("local/out"));
        assert_eq!(c.unveil[2].perms.to_string(), "r");
        assert_eq!(c.importance, Importance::High);
        assert_eq!(c.work_dir.as_deref(), Some("local"));
        assert_eq!(c.connect_ports, None);
        let b = encode(&[
            ("command", Ok("/bin/cat")),
            ("connect_ports", Err(&["443", "8000-8099"])),
        ]);
        let c = TaskDriverConfig::from_msgpack(&b).unwrap();
        let ports: Vec<String> = c
            .connect_ports
            .unwrap()
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(ports, ["443", "8000-8099"]);
    }

    #[test]
    fn errors_name_field_and_accepted_values() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (encode(&[("args", Err(&["x"]))]), "`command` is required"),
            (encode(&[("command", Ok(""))]), "`command` is required"),
            (
                encode(&[("command", Ok("x")), ("importance", Ok("urgent"))]),
                "lowest, low, normal, high, highest",
            ),
            (
                encode(&[("command", Ok("x")), ("unveil", Err(&["q:/etc"]))]),
                "`unveil[0]`",
            ),
            (
                encode(&[("command", Ok("x")), ("unveil", Err(&["r:/a", ":/etc"]))]),
                "`unveil[1]`",
            ),
            (
                encode(&[("command", Ok("x")), ("unveil", Err(&["r:"]))]),
                "empty path",
            ),
            (
                encode(&[("command", Ok("x")), ("unveil", Err(&["rq:/etc"]))]),
                "`unveil[0]` `rq:/etc`: unknown permission `q` (use letters from r, w, x, c); entries look like",
            ),
            (
                encode(&[("command", Ok("x")), ("unveil", Err(&[":/etc"]))]),
                "empty permission before `:` (use letters from r, w, x, c)",
            ),
            (
                encode(&[("command", Ok("x")), ("unveil", Err(&["r:"]))]),
                "empty path after the permissions",
            ),
            (
                encode(&[("command", Ok("x")), ("unveil", Err(&["r:/a\0b"]))]),
                "path contains a NUL byte",
            ),
            (
                encode(&[
                    ("command", Ok("x")),
                    ("unveil", Err(&["r:${NOMAD_TASK_DIR}/x"])),
                ]),
                "uninterpolated",
            ),
            (
                encode(&[("command", Ok("x")), ("promises", Ok("stdio rpth"))]),
                "`promises`",
            ),
            (
                encode(&[("command", Ok("x")), ("promises", Ok("stdio rpth"))]),
                "`rpth` is not a promise; accepted promises: stdio",
            ),
            (
                encode(&[("command", Ok("x")), ("args", Ok("notalist"))]),
                "`args`",
            ),
            (
                encode(&[("command", Ok("x")), ("connect_ports", Err(&["443", "9-1"]))]),
                "`connect_ports[1]`: `9-1` is not a TCP port or port range",
            ),
        ];
        for (bytes, want) in cases {
            let e = TaskDriverConfig::from_msgpack(&bytes)
                .map_err(|e| crate::errors::error_chain(&e))
                .unwrap_err();
            assert!(e.contains(want), "want {want:?} in {e}");
        }
        let limits = [
            (("pids_limit", "0"), "`pids_limit` is 0"),
            (("pids_limit", "-3"), "`pids_limit` is -3"),
            (("pids_limit", "lots"), "`pids_limit`"),
            (("oom_score_adj", "1001"), "`oom_score_adj` is 1001"),
            (("oom_score_adj", "-1001"), "from -1000 to 1000"),
        ];
        for ((k, v), want) in limits {
            let e = TaskDriverConfig::from_msgpack(&encode(&[("command", Ok("x")), (k, Ok(v))]))
                .map_err(|e| crate::errors::error_chain(&e))
                .unwrap_err();
            assert!(e.contains(want), "want {want:?} in {e}");
        }
        let modes = encode(&[
            ("command", Ok("x")),
            ("pid_mode", Ok("host")),
            ("ipc_mode", Ok("private")),
        ]);
        let c = TaskDriverConfig::from_msgpack(&modes).unwrap();
        assert!(c.pid_host && !c.ipc_host);
        let e = TaskDriverConfig::from_msgpack(&encode(&[
            ("command", Ok("x")),
            ("ipc_mode", Ok("shareable")),
        ]))
        .map_err(|e| crate::errors::error_chain(&e))
        .unwrap_err();
        assert!(
            e.contains("`ipc_mode` is `shareable`: use \"private\""),
            "{e}"
        );
        // A blank promise list is the launcher's default, as in the original driver.
        let blank = encode(&[("command", Ok("x")), ("promises", Ok("  "))]);
        assert_eq!(
            TaskDriverConfig::from_msgpack(&blank).unwrap().promises,
            None
        );
        let upper = encode(&[("command", Ok("x")), ("promises", Ok("RPATH stdio"))]);
        let p = TaskDriverConfig::from_msgpack(&upper).unwrap().promises;
        assert_eq!(p.unwrap().to_string(), "stdio rpath");
        let e = TaskDriverConfig::from_msgpack(&[0xc1])
            .map_err(|e| crate::errors::error_chain(&e))
            .unwrap_err();
        assert!(e.contains("not valid cty msgpack"), "{e}");
    }
}
