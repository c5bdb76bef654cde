//! The plugin configuration (`plugin "nomad-pledge-driver" { config { ... } }`): typed, with
//! defaults and validation. Decoded from SetConfig's cty-msgpack bytes.

use crate::sandbox::caps::{CapNameError, CapSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::msgpack::{ConfigDecodeError, Object};
use crate::plugin::logging::{LogLevel, UnknownLogLevel};
use crate::policy::ceiling::{Ceiling, IdRangesError};
use crate::policy::{PromiseSet, UnveilRule};

pub const DEFAULT_USER: &str = "nobody";
pub const DEFAULT_STATE_DIR: &str = "/run/nomad-pledge-driver";

/// Which pledge launcher runs tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launcher {
    /// This binary's own `pledge` mode.
    BuiltIn,
    /// An operator-supplied pledge.com-compatible executable.
    External(PathBuf),
}

/// Validated plugin configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    pub launcher: Launcher,
    /// Tasks may run as root only when true.
    pub allow_root: bool,
    /// User for tasks that name none (and get no dynamic workload user).
    pub default_user: String,
    /// Run tasks with `unveil` rules without Landlock instead of refusing them.
    pub unveil_best_effort: bool,
    /// Root-only directory for per-task state.
    pub state_dir: PathBuf,
    /// cgroup v2 mount to use; None = find it in /proc/self/mountinfo.
    pub cgroup_root: Option<PathBuf>,
    /// None = keep the level from the environment (default info).
    pub log_level: Option<LogLevel>,
    /// What jobs may ask for (`allowed_promises`, `allowed_unveil`, `require_unveil`,
    /// `denied_host_uids`, `denied_host_gids`).
    pub ceiling: Ceiling,
    /// `default_unveil`: rules added to every task (absolute paths).
    pub default_unveil: Vec<UnveilRule>,
    /// Default and ceiling of the tasks' `pids_limit` (cgroup `pids.max`); 0 = none.
    pub pids_limit: u64,
    /// Tasks may set a negative `oom_score_adj` (make the OOM killer spare them).
    pub allow_negative_oom_score_adj: bool,
    /// Tasks may set `pid_mode = "host"` / `ipc_mode = "host"`.
    pub allow_pid_host: bool,
    pub allow_ipc_host: bool,
    /// Tasks may ask for learn mode (`learn = true`), which denies nothing.
    pub allow_learn: bool,
    /// What an unveil entry that matches nothing does (`unveil_missing`).
    pub unveil_missing: UnveilMissing,
    /// Whether Landlock denials are read from kernel audit (`landlock_audit`).
    pub landlock_audit: LandlockAudit,
    /// Seccomp denials are task events (`seccomp_denials`, default true): the supervisor
    /// serves the promise filter's notifications.
    pub seccomp_denials: bool,
    /// `allow_caps`: the capabilities a task may add with `cap_add` (default none).
    pub allow_caps: CapSet,
}

/// `landlock_audit`: Landlock denial reports from kernel audit records (Landlock ABI ≥ 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LandlockAudit {
    /// Report denials when kernel audit is already enabled (auditd runs, or `audit=1`).
    #[default]
    Auto,
    /// Turn kernel audit on at start when it is off (host-wide), then report.
    Enable,
    /// Never report Landlock denials.
    Off,
}

/// `unveil_missing`: an unveil entry whose path does not exist (or is a dangling symlink).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnveilMissing {
    /// Warn (task event + log line) and start the task: pledge.com skips such entries.
    #[default]
    Warn,
    /// Refuse to start the task.
    Fail,
}

impl Default for PluginConfig {
    fn default() -> Self {
        Self {
            launcher: Launcher::BuiltIn,
            allow_root: false,
            default_user: DEFAULT_USER.to_string(),
            unveil_best_effort: false,
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            cgroup_root: None,
            log_level: None,
            ceiling: Ceiling::default(),
            default_unveil: Vec::new(),
            pids_limit: 0,
            allow_negative_oom_score_adj: false,
            allow_pid_host: false,
            allow_ipc_host: false,
            allow_learn: false,
            unveil_missing: UnveilMissing::Warn,
            landlock_audit: LandlockAudit::Auto,
            seccomp_denials: true,
            allow_caps: CapSet::new(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("plugin config")]
    Decode(#[from] ConfigDecodeError),
    #[error("plugin config: `pledge_executable` {path}: {problem} (give the absolute path of an executable pledge.com-compatible binary, or \"\" for the built-in launcher)")]
    PledgeExecutable { path: PathBuf, problem: String },
    #[error("plugin config: `{field}` must be an absolute path, got `{value}`")]
    NotAbsolute { field: &'static str, value: String },
    #[error("plugin config: `default_user` must be a user name or numeric uid, got `{0}`")]
    DefaultUser(String),
    #[error("plugin config: `allow_caps`")]
    AllowCaps(#[from] CapNameError),
    #[error("plugin config: `log_level`")]
    LogLevel(#[from] UnknownLogLevel),
    #[error("plugin config: `allowed_promises` `{value}`: {problem}")]
    AllowedPromises { value: String, problem: String },
    #[error("plugin config: `{field}[{index}]` `{entry}`: {problem}; entries look like \"PERM:/ABSOLUTE/PATH\" with PERM from r, w, x, c (e.g. \"r:/usr/share/zoneinfo\")")]
    UnveilEntry {
        field: &'static str,
        index: usize,
        entry: String,
        problem: String,
    },
    #[error("plugin config: `{field}`")]
    IdRanges {
        field: &'static str,
        source: IdRangesError,
    },
    #[error("plugin config: `pids_limit` is {0}: give a whole number ≥ 0 (0 = no default limit)")]
    PidsLimit(i64),
    #[error("plugin config: `{field}` must be one of {allowed}, got `{value}`")]
    Choice {
        field: &'static str,
        allowed: &'static str,
        value: String,
    },
}

impl PluginConfig {
    /// Decodes and validates SetConfig's `msgpack_config` (empty bytes = all defaults).
    pub fn from_msgpack(bytes: &[u8]) -> Result<Self, ConfigError> {
        let obj = Object::from_bytes(bytes)?;
        let field = |e| ConfigError::Decode(ConfigDecodeError::Field(e));
        let mut c = PluginConfig::default();

        let exe = obj
            .string("pledge_executable")
            .map_err(field)?
            .unwrap_or_default();
        if !exe.is_empty() {
            c.launcher = Launcher::External(check_executable(Path::new(&exe))?);
        }
        if let Some(v) = obj.bool("allow_root").map_err(field)? {
            c.allow_root = v;
        }
        if let Some(v) = obj.string("default_user").map_err(field)? {
            if !v.is_empty() {
                c.default_user = check_user(&v)?;
            }
        }
        if let Some(v) = obj.bool("unveil_best_effort").map_err(field)? {
            c.unveil_best_effort = v;
        }
        if let Some(v) = obj.string("state_dir").map_err(field)? {
            if !v.is_empty() {
                c.state_dir = absolute("state_dir", &v)?;
            }
        }
        if let Some(v) = obj.string("cgroup_root").map_err(field)? {
            if !v.is_empty() {
                c.cgroup_root = Some(absolute("cgroup_root", &v)?);
            }
        }
        if let Some(v) = obj.string_list("allow_caps").map_err(field)? {
            c.allow_caps = CapSet::parse_list(&v)?;
        }
        if let Some(v) = obj.string("log_level").map_err(field)? {
            if !v.trim().is_empty() {
                c.log_level = Some(v.parse()?);
            }
        }
        if let Some(v) = obj.string("allowed_promises").map_err(field)? {
            if !v.trim().is_empty() {
                let p = PromiseSet::parse(&v).map_err(|e| ConfigError::AllowedPromises {
                    value: v.clone(),
                    problem: e.to_string(),
                })?;
                c.ceiling.allowed_promises = Some(p);
            }
        }
        if let Some(list) = obj.string_list("allowed_unveil").map_err(field)? {
            c.ceiling.allowed_unveil = Some(unveil_entries("allowed_unveil", &list)?);
        }
        if let Some(list) = obj.string_list("default_unveil").map_err(field)? {
            c.default_unveil = unveil_entries("default_unveil", &list)?;
        }
        if let Some(v) = obj.bool("require_unveil").map_err(field)? {
            c.ceiling.require_unveil = v;
        }
        for (name, slot) in [
            ("denied_host_uids", &mut c.ceiling.denied_uids),
            ("denied_host_gids", &mut c.ceiling.denied_gids),
        ] {
            if let Some(v) = obj.string(name).map_err(field)? {
                *slot = v.parse().map_err(|source| ConfigError::IdRanges {
                    field: name,
                    source,
                })?;
            }
        }
        if let Some(v) = obj.integer("pids_limit").map_err(field)? {
            c.pids_limit = u64::try_from(v).map_err(|_| ConfigError::PidsLimit(v))?;
        }
        if let Some(v) = obj.bool("allow_negative_oom_score_adj").map_err(field)? {
            c.allow_negative_oom_score_adj = v;
        }
        if let Some(v) = obj.bool("allow_pid_host").map_err(field)? {
            c.allow_pid_host = v;
        }
        if let Some(v) = obj.bool("allow_ipc_host").map_err(field)? {
            c.allow_ipc_host = v;
        }
        if let Some(v) = obj.bool("allow_learn").map_err(field)? {
            c.allow_learn = v;
        }
        if let Some(v) = obj.string("unveil_missing").map_err(field)? {
            c.unveil_missing = match v.trim() {
                "" | "warn" => UnveilMissing::Warn,
                "fail" => UnveilMissing::Fail,
                _ => return Err(choice("unveil_missing", "\"warn\", \"fail\"", &v)),
            };
        }
        if let Some(v) = obj.bool("seccomp_denials").map_err(field)? {
            c.seccomp_denials = v;
        }
        if let Some(v) = obj.string("landlock_audit").map_err(field)? {
            c.landlock_audit = match v.trim() {
                "" | "auto" => LandlockAudit::Auto,
                "enable" => LandlockAudit::Enable,
                "off" => LandlockAudit::Off,
                _ => {
                    return Err(choice(
                        "landlock_audit",
                        "\"auto\", \"enable\", \"off\"",
                        &v,
                    ))
                }
            };
        }
        Ok(c)
    }
}

/// `PERM:PATH` entries of a plugin option: the launcher's syntax, absolute paths only.
fn unveil_entries(field: &'static str, list: &[String]) -> Result<Vec<UnveilRule>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(index, entry)| {
            let err = |problem: String| ConfigError::UnveilEntry {
                field,
                index,
                entry: entry.clone(),
                problem,
            };
            let rule: UnveilRule = entry.parse().map_err(|e| err(format!("{e}")))?;
            if !rule.path.is_absolute() || entry.contains('\0') {
                return Err(err("the path must be absolute, without NUL bytes".into()));
            }
            Ok(rule)
        })
        .collect()
}

fn choice(field: &'static str, allowed: &'static str, value: &str) -> ConfigError {
    ConfigError::Choice {
        field,
        allowed,
        value: value.to_string(),
    }
}

fn absolute(field: &'static str, value: &str) -> Result<PathBuf, ConfigError> {
    let p = PathBuf::from(value);
    if p.is_absolute() && !value.contains('\0') {
        Ok(p)
    } else {
        Err(ConfigError::NotAbsolute {
            field,
            value: value.to_string(),
        })
    }
}

fn check_user(v: &str) -> Result<String, ConfigError> {
    let ok = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-$".contains(&b))
        && !v.starts_with('-');
    if ok {
        Ok(v.to_string())
    } else {
        Err(ConfigError::DefaultUser(v.to_string()))
    }
}

/// The launcher must be an absolute path to an existing, executable regular file.
pub fn check_executable(path: &Path) -> Result<PathBuf, ConfigError> {
    let problem = |p: &str| ConfigError::PledgeExecutable {
        path: path.to_path_buf(),
        problem: p.to_string(),
    };
    if !path.is_absolute() {
        return Err(problem("is not an absolute path"));
    }
    let meta = std::fs::metadata(path).map_err(|e| problem(&e.to_string()))?;
    if !meta.is_file() {
        return Err(problem("is not a regular file"));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(problem("has no execute permission"));
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimal msgpack writer for a flat map of string/bool/nil values.
    pub(crate) fn encode(fields: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut out = vec![0x80 | fields.len() as u8];
        let s = |out: &mut Vec<u8>, v: &str| {
            out.push(0xd9);
            out.push(v.len() as u8);
            out.extend_from_slice(v.as_bytes());
        };
        for (k, v) in fields {
            s(&mut out, k);
            match v {
                None => out.push(0xc0),
                Some("true") => out.push(0xc3),
                Some("false") => out.push(0xc2),
                Some(v) => s(&mut out, v),
            }
        }
        out
    }

    #[test]
    fn empty_and_all_null_give_defaults() {
        assert_eq!(
            PluginConfig::from_msgpack(&[]).unwrap(),
            PluginConfig::default()
        );
        let b = encode(&[
            ("pledge_executable", None),
            ("allow_root", None),
            ("default_user", None),
            ("unveil_best_effort", None),
            ("state_dir", None),
            ("cgroup_root", None),
            ("log_level", None),
        ]);
        assert_eq!(
            PluginConfig::from_msgpack(&b).unwrap(),
            PluginConfig::default()
        );
    }

    /// Bytes go-cty produced for `config { log_level = "debug" }` with our schema (captured with
    /// nomadsim's `encode`, which runs HashiCorp's hcl/cty code): defaults applied by Literal.
    #[test]
    fn decodes_bytes_from_go_cty() {
        let hex = "87aa616c6c6f775f726f6f74c2ab6367726f75705f726f6f74a0ac64656661756c745f75736572a66e6f626f6479a96c6f675f6c6576656ca56465627567b1706c656467655f65786563757461626c65a0a973746174655f646972b82f72756e2f6e6f6d61642d706c656467652d647269766572b2756e7665696c5f626573745f6566666f7274c2";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let c = PluginConfig::from_msgpack(&bytes).unwrap();
        assert_eq!(
            c,
            PluginConfig {
                log_level: Some(LogLevel::Debug),
                ..PluginConfig::default()
            }
        );
    }

    #[test]
    fn values_are_read() {
        let b = encode(&[
            ("pledge_executable", Some("/bin/sh")),
            ("allow_root", Some("true")),
            ("default_user", Some("nomad-80001")),
            ("unveil_best_effort", Some("true")),
            ("state_dir", Some("/var/lib/pledge")),
            ("cgroup_root", Some("/sys/fs/cgroup/unified")),
            ("log_level", Some("debug")),
            ("pids_limit", Some("256")),
            ("allow_negative_oom_score_adj", Some("true")),
            ("allow_pid_host", Some("true")),
            ("allow_ipc_host", Some("false")),
            ("unveil_missing", Some("fail")),
            ("landlock_audit", Some("enable")),
            ("some_future_knob", Some("ignored")),
        ]);
        let c = PluginConfig::from_msgpack(&b).unwrap();
        assert_eq!(c.launcher, Launcher::External("/bin/sh".into()));
        assert!(c.allow_root && c.unveil_best_effort);
        assert_eq!(c.default_user, "nomad-80001");
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/pledge"));
        assert_eq!(c.cgroup_root, Some("/sys/fs/cgroup/unified".into()));
        assert_eq!(c.log_level, Some(LogLevel::Debug));
        assert_eq!(c.pids_limit, 256);
        assert!(c.allow_negative_oom_score_adj);
        assert!(c.allow_pid_host && !c.allow_ipc_host);
        assert_eq!(c.unveil_missing, UnveilMissing::Fail);
        assert_eq!(c.landlock_audit, LandlockAudit::Enable);
    }

    #[test]
    fn ceiling_options_are_read() {
        let mut b = encode(&[
            ("allowed_promises", Some("stdio rpath inet")),
            ("require_unveil", Some("true")),
            ("denied_host_uids", Some("0-999,1234")),
            ("denied_host_gids", Some("0")),
        ]);
        // Two list(string) fields appended by hand (the helper writes only scalars).
        b[0] += 2;
        for (k, items) in [
            ("allowed_unveil", &["rwc:/srv/data", "rx:/usr"][..]),
            ("default_unveil", &["r:/usr/share/zoneinfo"][..]),
        ] {
            b.push(0xa0 | k.len() as u8);
            b.extend_from_slice(k.as_bytes());
            b.push(0x90 | items.len() as u8);
            for i in items {
                b.push(0xa0 | i.len() as u8);
                b.extend_from_slice(i.as_bytes());
            }
        }
        let c = PluginConfig::from_msgpack(&b).unwrap();
        assert_eq!(
            c.ceiling.allowed_promises.unwrap().to_string(),
            "stdio rpath inet"
        );
        let allowed: Vec<String> = c
            .ceiling
            .allowed_unveil
            .as_ref()
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(allowed, ["rwc:/srv/data", "rx:/usr"]);
        assert_eq!(c.default_unveil[0].to_string(), "r:/usr/share/zoneinfo");
        assert!(c.ceiling.require_unveil);
        assert!(c.ceiling.denied_uids.contains(1234) && !c.ceiling.denied_uids.contains(1000));
        assert!(c.ceiling.denied_gids.contains(0));

        // Relative and malformed entries are refused, naming the option and the entry.
        for (k, entry, want) in [
            ("default_unveil", "r:etc", "`default_unveil[0]` `r:etc`"),
            ("allowed_unveil", "q:/etc", "`allowed_unveil[0]` `q:/etc`"),
        ] {
            let mut b = vec![0x81, 0xa0 | k.len() as u8];
            b.extend_from_slice(k.as_bytes());
            b.push(0x91);
            b.push(0xa0 | entry.len() as u8);
            b.extend_from_slice(entry.as_bytes());
            let e = PluginConfig::from_msgpack(&b).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        // An empty allowed_unveil allows no entry at all; absent allows any.
        let b = [&[0x81, 0xae][..], b"allowed_unveil", &[0x90]].concat();
        let c = PluginConfig::from_msgpack(&b).unwrap();
        assert_eq!(c.ceiling.allowed_unveil, Some(vec![]));
        assert_eq!(PluginConfig::default().ceiling.allowed_unveil, None);
    }

    #[test]
    fn errors_name_the_field() {
        type Fields<'a> = &'a [(&'a str, Option<&'a str>)];
        let cases: &[(Fields, &str)] = &[
            (
                &[("pledge_executable", Some("pledge.com"))],
                "`pledge_executable`",
            ),
            (
                &[("pledge_executable", Some("/nonexistent/pledge"))],
                "`pledge_executable`",
            ),
            (
                &[("pledge_executable", Some("/etc/passwd"))],
                "execute permission",
            ),
            (&[("pledge_executable", Some("/etc"))], "regular file"),
            (&[("state_dir", Some("relative/dir"))], "`state_dir`"),
            (&[("cgroup_root", Some("sys/fs"))], "`cgroup_root`"),
            (&[("log_level", Some("chatty"))], "`log_level`"),
            (&[("default_user", Some("a b"))], "`default_user`"),
            (&[("allow_root", Some("yes"))], "`allow_root`"),
            (
                &[("allowed_promises", Some("stdio rpth"))],
                "`allowed_promises` `stdio rpth`",
            ),
            (&[("denied_host_uids", Some("0-x"))], "`denied_host_uids`"),
            (&[("denied_host_gids", Some("9-1"))], "`denied_host_gids`"),
            (&[("require_unveil", Some("yes"))], "`require_unveil`"),
            (&[("pids_limit", Some("-5"))], "`pids_limit` is -5"),
            (&[("pids_limit", Some("many"))], "`pids_limit`"),
            (&[("unveil_missing", Some("ignore"))], "`unveil_missing`"),
            (&[("landlock_audit", Some("on"))], "`landlock_audit`"),
        ];
        for (fields, want) in cases {
            let e = PluginConfig::from_msgpack(&encode(fields))
                .map_err(|e| crate::errors::error_chain(&e))
                .unwrap_err();
            assert!(e.contains(want), "{fields:?}: {e}");
        }
        let e = PluginConfig::from_msgpack(&[0x81, 0xa1])
            .map_err(|e| crate::errors::error_chain(&e))
            .unwrap_err();
        assert!(e.contains("not valid cty msgpack"), "{e}");
    }
}
