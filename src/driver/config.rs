//! The plugin configuration (`plugin "nomad-pledge-driver" { config { ... } }`): typed, with
//! defaults and validation. Decoded from SetConfig's cty-msgpack bytes.

use crate::sandbox::caps::{CapNameError, CapSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::msgpack::{ConfigDecodeError, Object};
use crate::plugin::logging::{LogLevel, UnknownLogLevel};

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
    /// `allow_caps`: the capabilities a task may add with `cap_add` (default none).
    pub allow_caps: CapSet,
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
            allow_caps: CapSet::new(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("plugin config: {0}")]
    Decode(#[from] ConfigDecodeError),
    #[error("plugin config: `pledge_executable` {path}: {problem} (give the absolute path of an executable pledge.com-compatible binary, or \"\" for the built-in launcher)")]
    PledgeExecutable { path: PathBuf, problem: String },
    #[error("plugin config: `{field}` must be an absolute path, got `{value}`")]
    NotAbsolute { field: &'static str, value: String },
    #[error("plugin config: `default_user` must be a user name or numeric uid, got `{0}`")]
    DefaultUser(String),
    #[error("plugin config: `allow_caps`: {0}")]
    AllowCaps(#[from] CapNameError),
    #[error("plugin config: `log_level`: {0}")]
    LogLevel(#[from] UnknownLogLevel),
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
        Ok(c)
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
            ("some_future_knob", Some("ignored")),
        ]);
        let c = PluginConfig::from_msgpack(&b).unwrap();
        assert_eq!(c.launcher, Launcher::External("/bin/sh".into()));
        assert!(c.allow_root && c.unveil_best_effort);
        assert_eq!(c.default_user, "nomad-80001");
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/pledge"));
        assert_eq!(c.cgroup_root, Some("/sys/fs/cgroup/unified".into()));
        assert_eq!(c.log_level, Some(LogLevel::Debug));
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
        ];
        for (fields, want) in cases {
            let e = PluginConfig::from_msgpack(&encode(fields))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{fields:?}: {e}");
        }
        let e = PluginConfig::from_msgpack(&[0x81, 0xa1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not valid cty msgpack"), "{e}");
    }
}
