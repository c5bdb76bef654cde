//! A task's sandbox, typed: the promises, the unveil rules and the launcher that applies them.
//!
//! StartTask builds one [`Policy`] from the task config and the plugin config (`driver::tasks`);
//! the executor carries it in its `TaskSpec` and in the supervisor plan, exec sessions reuse the
//! task's, and the launcher's command line is rendered from it by one function
//! ([`Policy::launcher_argv`], in `argv.rs`). Nothing downstream parses promise strings or
//! unveil entries again, and nothing guesses the launcher from an argv.
//!
//! Invariants, checked by [`Policy::new`] and again when a policy is deserialized (it travels in
//! Nomad's `driver_state`): every unveil path and the external launcher's path are absolute.

mod argv;
pub mod ceiling;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::sandbox::caps::CapSet;
use crate::sandbox::launch::DEFAULT_PROMISES;
use crate::sandbox::promise::PromiseError;
pub use crate::sandbox::promise::PromiseSet;
use crate::sandbox::unveil::{parse_port_list, port_list, PortRangeError, UnveilError};
pub use crate::sandbox::unveil::{PortRange, UnveilRule};

/// Which program installs the sandbox around the task's command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Launcher {
    /// This binary's own `pledge` mode.
    BuiltIn {
        /// Run tasks with unveil rules even where Landlock cannot enforce them
        /// (`--unveil-best-effort`; plugin option `unveil_best_effort`).
        unveil_best_effort: bool,
    },
    /// An operator-supplied pledge.com-compatible executable (`pledge_executable`), absolute.
    External(PathBuf),
}

impl Launcher {
    pub fn is_built_in(&self) -> bool {
        matches!(self, Launcher::BuiltIn { .. })
    }
}

impl Default for Launcher {
    fn default() -> Self {
        Launcher::BuiltIn {
            unveil_best_effort: false,
        }
    }
}

/// The sandbox of one task: built once, validated once, consumed by every later stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PolicyRepr", into = "PolicyRepr")]
pub struct Policy {
    promises: PromiseSet,
    unveil: Vec<UnveilRule>,
    no_unveil: bool,
    launcher: Launcher,
    /// The operator's `default_unveil` rules (absolute), exempt from the ceiling.
    operator_unveil: Vec<UnveilRule>,
    /// Landlock TCP bind allow-list (the task's allocated ports); None = bind unrestricted.
    tcp_bind: Option<Vec<PortRange>>,
    /// Landlock TCP connect allow-list (`connect_ports`); None = connect unrestricted.
    tcp_connect: Option<Vec<PortRange>>,
    /// Capabilities the command keeps (ambient for a non-root task); empty by default.
    caps: CapSet,
}

/// Why a [`Policy`] cannot be built (or read back from a recovery state).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("unveil path `{}` is relative: resolve it against the task directory first (is the allocation directory absolute?)", path.display())]
    RelativeUnveil { path: PathBuf },
    #[error("launcher `{}` is not an absolute path: set `pledge_executable` to an absolute path", path.display())]
    RelativeLauncher { path: PathBuf },
    #[error("the stored policy's promises `{promises}` do not parse")]
    Promises {
        promises: String,
        source: PromiseError,
    },
    #[error("task `cap_add` asks for `{cap}`, which the plugin option `allow_caps` does not allow: add \"{cap}\" to `allow_caps` in the plugin config, or remove it from the task's `cap_add`")]
    CapNotAllowed { cap: String },
    #[error("task `{field}`")]
    CapName {
        field: &'static str,
        source: crate::sandbox::caps::CapNameError,
    },
    #[error("the stored policy's capabilities do not parse")]
    Caps {
        source: crate::sandbox::caps::CapNameError,
    },
    #[error("the stored policy's unveil permissions `{perms}` do not parse")]
    Perms { perms: String, source: UnveilError },
    #[error("the stored policy's TCP ports `{ports}` do not parse")]
    Ports {
        ports: String,
        source: PortRangeError,
    },
}

impl Default for Policy {
    /// The launcher's defaults: built-in, `stdio rpath`, no unveil rules beyond the implicit ones.
    fn default() -> Self {
        Policy {
            promises: Policy::default_promises(),
            unveil: Vec::new(),
            no_unveil: false,
            launcher: Launcher::default(),
            operator_unveil: Vec::new(),
            tcp_bind: None,
            tcp_connect: None,
            caps: CapSet::new(),
        }
    }
}

impl Policy {
    /// A policy granting `promises`, with `unveil` (absolute paths) on top of the launcher's
    /// implicit rules, applied by `launcher`.
    pub fn new(
        promises: PromiseSet,
        unveil: Vec<UnveilRule>,
        launcher: Launcher,
    ) -> Result<Self, PolicyError> {
        if let Some(r) = unveil.iter().find(|r| !r.path.is_absolute()) {
            return Err(PolicyError::RelativeUnveil {
                path: r.path.clone(),
            });
        }
        if let Launcher::External(path) = &launcher {
            if !path.is_absolute() {
                return Err(PolicyError::RelativeLauncher { path: path.clone() });
            }
        }
        Ok(Policy {
            promises,
            unveil,
            no_unveil: false,
            launcher,
            operator_unveil: Vec::new(),
            tcp_bind: None,
            tcp_connect: None,
            caps: CapSet::new(),
        })
    }

    /// This policy with TCP bind allowed to `ports` only (Landlock ABI 4, built-in launcher).
    pub fn with_tcp_bind(mut self, ports: Vec<PortRange>) -> Self {
        self.tcp_bind = Some(ports);
        self
    }

    /// This policy with TCP connect allowed to `ports` only (Landlock ABI 4, built-in launcher).
    pub fn with_tcp_connect(mut self, ports: Vec<PortRange>) -> Self {
        self.tcp_connect = Some(ports);
        self
    }

    pub fn tcp_bind(&self) -> Option<&[PortRange]> {
        self.tcp_bind.as_deref()
    }

    pub fn tcp_connect(&self) -> Option<&[PortRange]> {
        self.tcp_connect.as_deref()
    }

    /// This policy plus the operator's `default_unveil` rules (absolute paths).
    pub fn with_operator_unveil(mut self, rules: Vec<UnveilRule>) -> Result<Self, PolicyError> {
        if let Some(r) = rules.iter().find(|r| !r.path.is_absolute()) {
            return Err(PolicyError::RelativeUnveil {
                path: r.path.clone(),
            });
        }
        self.operator_unveil = rules;
        Ok(self)
    }

    /// The operator's rules (`default_unveil`), added to every task.
    pub fn operator_unveil(&self) -> &[UnveilRule] {
        &self.operator_unveil
    }

    /// The promises a task gets when its config names none (pledge.com's default).
    pub fn default_promises() -> PromiseSet {
        PromiseSet::parse(DEFAULT_PROMISES).expect("the default promise list parses")
    }

    /// This policy without Landlock at all (`-V`: seccomp only, not even the implicit rules).
    pub fn without_unveil(mut self) -> Self {
        self.no_unveil = true;
        self
    }

    pub fn promises(&self) -> PromiseSet {
        self.promises
    }

    /// The task's own rules, in config order (the launcher adds its implicit ones).
    pub fn unveil(&self) -> &[UnveilRule] {
        &self.unveil
    }

    /// `-V`: no Landlock domain at all.
    pub fn no_unveil(&self) -> bool {
        self.no_unveil
    }

    pub fn launcher(&self) -> &Launcher {
        &self.launcher
    }

    /// This policy granting the task's `cap_add` minus its `cap_drop` (`all` allowed in both),
    /// each of which the operator's `allow_caps` must contain. Tasks get no capability by
    /// default, root or not (stricter than Nomad's `exec`, which keeps a docker-like set).
    pub fn grant_caps<S: AsRef<str>>(
        self,
        cap_add: &[S],
        cap_drop: &[S],
        allow: &CapSet,
    ) -> Result<Self, PolicyError> {
        let parse = |field, list: &[S]| {
            CapSet::parse_list(list).map_err(|source| PolicyError::CapName { field, source })
        };
        let add = parse("cap_add", cap_add)?;
        let drop = parse("cap_drop", cap_drop)?;
        let granted = add.without(&drop);
        if let Some(cap) = granted
            .names()
            .into_iter()
            .find(|n| !allow.names().contains(n))
        {
            return Err(PolicyError::CapNotAllowed { cap });
        }
        Ok(self.with_caps(granted))
    }

    /// This policy granting `caps` to the command (checked by [`Policy::grant_caps`]).
    pub fn with_caps(mut self, caps: CapSet) -> Self {
        self.caps = caps;
        self
    }

    /// The capabilities the command keeps (and no others).
    pub fn caps(&self) -> &CapSet {
        &self.caps
    }
}

/// The serialized form: promises and permissions as the strings a user writes.
#[derive(Serialize, Deserialize)]
struct PolicyRepr {
    promises: String,
    unveil: Vec<RuleRepr>,
    #[serde(default)]
    no_unveil: bool,
    launcher: Launcher,
    #[serde(default)]
    operator_unveil: Vec<RuleRepr>,
    #[serde(default)]
    tcp_bind: Option<String>,
    #[serde(default)]
    tcp_connect: Option<String>,
    /// Capability names (`net_bind_service`); absent in states written before capabilities.
    #[serde(default)]
    caps: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct RuleRepr {
    perms: String,
    path: PathBuf,
}

fn rules_repr(rules: Vec<UnveilRule>) -> Vec<RuleRepr> {
    rules
        .into_iter()
        .map(|r| RuleRepr {
            perms: r.perms.to_string(),
            path: r.path,
        })
        .collect()
}

fn rules_from_repr(rules: Vec<RuleRepr>) -> Result<Vec<UnveilRule>, PolicyError> {
    rules
        .into_iter()
        .map(|u| {
            let perms = u.perms.parse().map_err(|source| PolicyError::Perms {
                perms: u.perms.clone(),
                source,
            })?;
            Ok(UnveilRule::new(perms, u.path))
        })
        .collect()
}

impl From<Policy> for PolicyRepr {
    fn from(p: Policy) -> Self {
        PolicyRepr {
            promises: p.promises.to_string(),
            unveil: rules_repr(p.unveil),
            no_unveil: p.no_unveil,
            launcher: p.launcher,
            operator_unveil: rules_repr(p.operator_unveil),
            tcp_bind: p.tcp_bind.as_deref().map(port_list),
            tcp_connect: p.tcp_connect.as_deref().map(port_list),
            caps: p.caps.names(),
        }
    }
}

impl TryFrom<PolicyRepr> for Policy {
    type Error = PolicyError;
    fn try_from(r: PolicyRepr) -> Result<Self, PolicyError> {
        let promises = PromiseSet::parse(&r.promises).map_err(|source| PolicyError::Promises {
            promises: r.promises.clone(),
            source,
        })?;
        let unveil = rules_from_repr(r.unveil)?;
        let ports = |l: Option<String>| -> Result<Option<Vec<PortRange>>, PolicyError> {
            l.map(|l| parse_port_list(&l).map_err(|source| PolicyError::Ports { ports: l, source }))
                .transpose()
        };
        let mut policy = Policy::new(promises, unveil, r.launcher)?
            .with_operator_unveil(rules_from_repr(r.operator_unveil)?)?;
        policy.tcp_bind = ports(r.tcp_bind)?;
        policy.tcp_connect = ports(r.tcp_connect)?;
        let caps = CapSet::parse_list(&r.caps).map_err(|source| PolicyError::Caps { source })?;
        let policy = policy.with_caps(caps);
        Ok(if r.no_unveil {
            policy.without_unveil()
        } else {
            policy
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> UnveilRule {
        s.parse().unwrap()
    }

    #[test]
    fn policy_errors_say_each_thing_once() {
        use crate::errors::assert_says_each_thing_once as check;
        let cap = || crate::sandbox::caps::CapNameError { name: "x".into() };
        check(&PolicyError::Promises {
            promises: "stdio thread".into(),
            source: PromiseError::Unknown {
                name: "thread".into(),
            },
        });
        check(&PolicyError::CapName {
            field: "cap_add",
            source: cap(),
        });
        check(&PolicyError::Caps { source: cap() });
        check(&PolicyError::Perms {
            perms: "q".into(),
            source: UnveilError::EmptyPerms,
        });
        check(&PolicyError::Ports {
            ports: "x".into(),
            source: PortRangeError("x".into()),
        });
    }

    #[test]
    fn paths_must_be_absolute() {
        let p = PromiseSet::parse("stdio").unwrap();
        let e = Policy::new(p, vec![rule("r:etc")], Launcher::default()).unwrap_err();
        assert!(matches!(e, PolicyError::RelativeUnveil { .. }), "{e}");
        let e = Policy::new(p, vec![], Launcher::External("pledge.com".into())).unwrap_err();
        assert!(e.to_string().contains("`pledge_executable`"), "{e}");
        Policy::new(p, vec![rule("rwc:/tmp/a b:c")], Launcher::default()).unwrap();
    }

    #[test]
    fn serde_keeps_every_field_and_revalidates() {
        let policy = Policy::new(
            PromiseSet::parse("stdio inet rpath").unwrap(),
            vec![rule("rx:/usr/bin"), rule("rwc:/alloc/x:y z")],
            Launcher::External("/opt/pledge.com".into()),
        )
        .unwrap()
        .with_operator_unveil(vec![rule("r:/usr/share/zoneinfo")])
        .unwrap()
        .with_tcp_bind(vec![PortRange::single(8080), "9000-9001".parse().unwrap()])
        .with_tcp_connect(vec![])
        .without_unveil();
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), policy);
        let built_in = Policy::new(
            PromiseSet::empty(),
            vec![],
            Launcher::BuiltIn {
                unveil_best_effort: true,
            },
        )
        .unwrap();
        let json = serde_json::to_string(&built_in).unwrap();
        assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), built_in);

        // A stored policy goes through the same checks as a new one.
        let tampered = json.replace(
            "\"unveil\":[]",
            "\"unveil\":[{\"perms\":\"r\",\"path\":\"etc\"}]",
        );
        assert_ne!(tampered, json);
        let e = serde_json::from_str::<Policy>(&tampered).unwrap_err();
        assert!(e.to_string().contains("relative"), "{e}");
        let bad = json.replace("\"promises\":\"\"", "\"promises\":\"stdio rpth\"");
        assert_ne!(bad, json);
        assert!(serde_json::from_str::<Policy>(&bad).is_err());
    }

    #[test]
    fn capabilities_must_be_allowed_by_the_operator() {
        let allow = CapSet::parse_list(&["net_bind_service"]).unwrap();
        let p = Policy::default()
            .grant_caps(&["CAP_NET_BIND_SERVICE"], &[], &allow)
            .unwrap();
        assert_eq!(p.caps().names(), ["net_bind_service"]);
        // Stored states keep the set.
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), p);
        // Outside the allow-list (the default is empty): the error names the cap and the option.
        let e = Policy::default()
            .grant_caps(&["net_raw"], &[], &CapSet::new())
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("`net_raw`") && msg.contains("`allow_caps`"),
            "{msg}"
        );
        // `all` minus what is dropped; `all` in cap_drop leaves nothing.
        let e = Policy::default()
            .grant_caps(&["all"], &["net_raw"], &allow)
            .unwrap_err();
        assert!(matches!(e, PolicyError::CapNotAllowed { .. }), "{e}");
        let p = Policy::default()
            .grant_caps(&["net_bind_service"], &["ALL"], &CapSet::new())
            .unwrap();
        assert!(p.caps().is_empty());
        assert!(Policy::default()
            .grant_caps(&["bogus"], &[], &allow)
            .unwrap_err()
            .to_string()
            .contains("`cap_add`"));
    }

    #[test]
    fn default_is_the_launchers_default() {
        let d = Policy::default();
        assert_eq!(d.promises().to_string(), "stdio rpath");
        assert!(d.launcher().is_built_in() && d.unveil().is_empty() && !d.no_unveil());
    }
}
