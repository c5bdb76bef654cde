//! Host probing for the Fingerprint stream: seccomp, Landlock ABI, the cgroup v2 mount and its
//! controllers, and the launcher. Small functions over injectable paths so they run on fixtures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::config::{check_executable, Launcher, PluginConfig};
use crate::executor::cgroup::find_cgroup2_mount;
use crate::sandbox::promise::Promise;

/// cgroup v2 controllers whose absence means Nomad's resource limits are not enforced.
pub const LIMIT_CONTROLLERS: &[&str] = &["cpu", "memory"];

/// Attribute keys (merged verbatim into the node's attributes).
pub mod attr {
    pub const VERSION: &str = "driver.pledge.version";
    pub const LAUNCHER: &str = "driver.pledge.launcher";
    pub const CAPS_ALLOWLIST: &str = "driver.pledge.caps.allowlist";
    pub const LANDLOCK_ABI: &str = "driver.pledge.landlock_abi";
    /// What sandbox denials are reported as task events: `landlock` or `none`.
    pub const DENIALS: &str = "driver.pledge.denials";
    /// Set when the plugin turned kernel audit on (`landlock_audit = "enable"`).
    pub const KERNEL_AUDIT: &str = "driver.pledge.kernel_audit";
    /// `unmediated` (Landlock ABI < 9: connect(2) to pathname unix sockets is not restricted by
    /// unveil) or `unveil` (it needs `w` on the socket file or its directory).
    pub const LANDLOCK_UNIX_SOCKETS: &str = "driver.pledge.landlock.unix_sockets";
    /// Landlock TCP port rules (ABI ≥ 4): tasks bind only their allocated ports.
    pub const LANDLOCK_NET: &str = "driver.pledge.landlock_net";
    pub const SECCOMP: &str = "driver.pledge.seccomp";
    pub const CGROUP_V2_MOUNT: &str = "driver.pledge.cgroup_v2_mount";
    pub const CGROUP_CONTROLLERS: &str = "driver.pledge.cgroup_controllers";
    pub const CGROUP_MISSING: &str = "driver.pledge.cgroup_missing_controllers";
    /// The operator's ceiling (plugin options), for job `constraint`s.
    pub const ALLOWED_PROMISES: &str = "driver.pledge.ceiling.allowed_promises";
    pub const ALLOWED_UNVEIL: &str = "driver.pledge.ceiling.allowed_unveil";
    pub const DEFAULT_UNVEIL: &str = "driver.pledge.ceiling.default_unveil";
    pub const REQUIRE_UNVEIL: &str = "driver.pledge.ceiling.require_unveil";
    pub const DENIED_UIDS: &str = "driver.pledge.ceiling.denied_host_uids";
    pub const DENIED_GIDS: &str = "driver.pledge.ceiling.denied_host_gids";
}

/// The ceiling as node attributes: comma-separated lists (for `set_contains`), `any` where the
/// operator set no bound.
pub fn ceiling_attributes(config: &PluginConfig) -> Vec<(&'static str, AttrValue)> {
    let c = &config.ceiling;
    let promises: Vec<&str> = match c.allowed_promises {
        Some(p) => p.iter().map(|p| p.name()).collect(),
        None => Promise::ALL.iter().map(|p| p.name()).collect(),
    };
    let rules = |r: &[crate::policy::UnveilRule]| {
        r.iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        (
            attr::ALLOWED_PROMISES,
            AttrValue::String(promises.join(",")),
        ),
        (
            attr::ALLOWED_UNVEIL,
            AttrValue::String(match &c.allowed_unveil {
                Some(list) => rules(list),
                None => "any".into(),
            }),
        ),
        (
            attr::DEFAULT_UNVEIL,
            AttrValue::String(rules(&config.default_unveil)),
        ),
        (attr::REQUIRE_UNVEIL, AttrValue::Bool(c.require_unveil)),
        (
            attr::DENIED_UIDS,
            AttrValue::String(c.denied_uids.to_string()),
        ),
        (
            attr::DENIED_GIDS,
            AttrValue::String(c.denied_gids.to_string()),
        ),
    ]
}

/// Driver health as Nomad understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unhealthy,
    Healthy,
}

/// A node attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    String(String),
    Int(i64),
    Bool(bool),
}

/// One fingerprint result.
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint {
    pub health: Health,
    pub description: String,
    pub attributes: BTreeMap<String, AttrValue>,
}

/// Where the probes look; tests point them at fixtures.
#[derive(Debug, Clone)]
pub struct Probe {
    pub proc_status: PathBuf,
    /// `/proc/sys/kernel/seccomp/actions_avail` (kernels >= 4.14 with seccomp filters).
    pub seccomp_actions: PathBuf,
    pub mountinfo: PathBuf,
    /// The running binary (the built-in launcher).
    pub self_exe: Option<PathBuf>,
    pub landlock_abi: fn() -> Option<u32>,
}

impl Probe {
    /// The real host.
    pub fn host() -> Self {
        Probe {
            proc_status: "/proc/self/status".into(),
            seccomp_actions: "/proc/sys/kernel/seccomp/actions_avail".into(),
            mountinfo: "/proc/self/mountinfo".into(),
            self_exe: std::env::current_exe().ok(),
            landlock_abi: landlock_abi_version,
        }
    }
}

/// Whether the kernel supports seccomp: `/proc/<pid>/status` has a `Seccomp:` line only when
/// built with CONFIG_SECCOMP.
pub fn seccomp_available(status: &str) -> bool {
    status.lines().any(|l| l.starts_with("Seccomp:"))
}

/// Whether the filter return actions we rely on (`errno`, `kill_process`) are available, judged
/// from `actions_avail`; None when the file is absent (kernels before 4.14 do not have it).
pub fn seccomp_actions_ok(actions_avail: Option<&str>) -> Option<bool> {
    let text = actions_avail?;
    let words: Vec<&str> = text.split_whitespace().collect();
    Some(["errno", "kill_process"].iter().all(|a| words.contains(a)))
}

/// Controllers listed in `<mount>/cgroup.controllers`.
pub fn controllers(mount: &Path) -> std::io::Result<Vec<String>> {
    let text = std::fs::read_to_string(mount.join("cgroup.controllers"))?;
    Ok(text.split_whitespace().map(str::to_string).collect())
}

/// The Landlock ABI version the kernel offers (None = Landlock unavailable), as the launcher
/// sees it.
pub fn landlock_abi_version() -> Option<u32> {
    crate::sandbox::unveil::kernel_abi()
        .ok()
        .and_then(|v| u32::try_from(v).ok())
        .filter(|&v| v > 0)
}

/// Probes the host for `config` and decides health.
pub fn fingerprint(probe: &Probe, config: &PluginConfig) -> Fingerprint {
    let mut attributes = BTreeMap::new();
    let mut put = |k: &str, v: AttrValue| {
        attributes.insert(k.to_string(), v);
    };
    put(
        attr::VERSION,
        AttrValue::String(env!("CARGO_PKG_VERSION").into()),
    );

    for (k, v) in ceiling_attributes(config) {
        put(k, v);
    }

    let mut problems: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    let actions = std::fs::read_to_string(&probe.seccomp_actions).ok();
    let seccomp = std::fs::read_to_string(&probe.proc_status)
        .map(|s| seccomp_available(&s))
        .unwrap_or(false)
        && seccomp_actions_ok(actions.as_deref()) != Some(false);
    put(attr::SECCOMP, AttrValue::Bool(seccomp));
    if !seccomp {
        problems
            .push("seccomp is not available in this kernel, so promises cannot be enforced".into());
    }

    let abi = (probe.landlock_abi)();
    put(
        attr::LANDLOCK_ABI,
        AttrValue::Int(i64::from(abi.unwrap_or(0))),
    );
    put(
        attr::LANDLOCK_UNIX_SOCKETS,
        AttrValue::String(
            crate::sandbox::unveil::unix_socket_mediation(abi.map_or(0, |v| v as i32)).into(),
        ),
    );
    let net = abi.is_some_and(|v| v >= super::ports::LANDLOCK_NET_ABI as u32);
    put(attr::LANDLOCK_NET, AttrValue::Bool(net));
    if !net {
        notes.push(
            "Landlock has no network rules here (needs ABI 4, Linux 6.7): tasks' TCP ports are not restricted"
                .into(),
        );
    }
    if abi.is_none() {
        notes.push(if config.unveil_best_effort {
            "Landlock is unavailable: unveil rules are not enforced (unveil_best_effort = true)"
                .into()
        } else {
            "Landlock is unavailable: tasks with unveil rules are refused".into()
        });
    }

    let mount = match &config.cgroup_root {
        Some(root) => Some(root.clone()),
        None => std::fs::read_to_string(&probe.mountinfo)
            .ok()
            .and_then(|m| find_cgroup2_mount(&m)),
    };
    match mount.as_deref().map(|m| (m, controllers(m))) {
        None => problems.push("no cgroup v2 mount found in /proc/self/mountinfo".into()),
        Some((m, Err(e))) => problems.push(format!(
            "cgroup v2 mount {} is not usable ({e}); check cgroup_root",
            m.display()
        )),
        Some((m, Ok(list))) => {
            put(
                attr::CGROUP_V2_MOUNT,
                AttrValue::String(m.display().to_string()),
            );
            put(attr::CGROUP_CONTROLLERS, AttrValue::String(list.join(",")));
            let missing: Vec<&str> = LIMIT_CONTROLLERS
                .iter()
                .copied()
                .filter(|c| !list.iter().any(|l| l == c))
                .collect();
            put(attr::CGROUP_MISSING, AttrValue::String(missing.join(",")));
            if !missing.is_empty() {
                notes.push(format!(
                    "cgroup v2 controllers {} are not available at {}, so CPU and memory limits are not enforced",
                    missing.join(","),
                    m.display()
                ));
            }
        }
    }

    let launcher = match &config.launcher {
        Launcher::BuiltIn => probe.self_exe.clone().ok_or_else(|| {
            "cannot find this binary's own path for the built-in launcher".to_string()
        }),
        Launcher::External(p) => Ok(p.clone()),
    };
    match launcher.and_then(|p| check_executable(&p).map_err(|e| e.to_string())) {
        Ok(p) => put(
            attr::LAUNCHER,
            AttrValue::String(launcher_name(&config.launcher, &p)),
        ),
        Err(e) => problems.push(format!("launcher is not usable: {e}")),
    }

    put(
        attr::CAPS_ALLOWLIST,
        AttrValue::String(config.allow_caps.to_string()),
    );

    let (health, description) = if problems.is_empty() {
        let mut d = "Healthy".to_string();
        for n in &notes {
            d.push_str("; ");
            d.push_str(n);
        }
        (Health::Healthy, d)
    } else {
        (Health::Unhealthy, problems.join("; "))
    };
    Fingerprint {
        health,
        description,
        attributes,
    }
}

fn launcher_name(l: &Launcher, path: &Path) -> String {
    match l {
        Launcher::BuiltIn => "builtin".to_string(),
        Launcher::External(_) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seccomp_field() {
        assert!(seccomp_available(
            "Name:\tx\nSeccomp:\t0\nSeccomp_filters:\t0\n"
        ));
        assert!(!seccomp_available("Name:\tx\nNoNewPrivs:\t0\n"));
    }

    #[test]
    fn seccomp_actions() {
        assert_eq!(seccomp_actions_ok(None), None);
        assert_eq!(
            seccomp_actions_ok(Some("kill_process errno allow\n")),
            Some(true)
        );
        assert_eq!(
            seccomp_actions_ok(Some("kill_thread trap allow\n")),
            Some(false)
        );
    }

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new(seccomp: bool, controllers: Option<&str>) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let status = if seccomp {
                "Seccomp:\t0\n"
            } else {
                "Name:\tx\n"
            };
            std::fs::write(dir.path().join("status"), status).unwrap();
            std::fs::write(
                dir.path().join("actions_avail"),
                "kill_process kill_thread trap errno user_notif trace log allow\n",
            )
            .unwrap();
            let cg = dir.path().join("cg");
            let mountinfo = match controllers {
                Some(c) => {
                    std::fs::create_dir(&cg).unwrap();
                    std::fs::write(cg.join("cgroup.controllers"), c).unwrap();
                    format!("41 31 0:38 / {} rw - cgroup2 cgroup2 rw\n", cg.display())
                }
                None => "25 30 0:23 / /sys rw - sysfs sysfs rw\n".to_string(),
            };
            std::fs::write(dir.path().join("mountinfo"), mountinfo).unwrap();
            Fixture { dir }
        }

        fn probe(&self, landlock: fn() -> Option<u32>) -> Probe {
            Probe {
                proc_status: self.dir.path().join("status"),
                seccomp_actions: self.dir.path().join("actions_avail"),
                mountinfo: self.dir.path().join("mountinfo"),
                self_exe: Some("/bin/sh".into()),
                landlock_abi: landlock,
            }
        }
    }

    fn abi6() -> Option<u32> {
        Some(6)
    }
    fn no_landlock() -> Option<u32> {
        None
    }

    #[test]
    fn healthy_with_all_controllers() {
        let f = Fixture::new(true, Some("cpuset cpu io memory pids\n"));
        let fp = fingerprint(&f.probe(abi6), &PluginConfig::default());
        assert_eq!(fp.health, Health::Healthy);
        assert_eq!(fp.description, "Healthy");
        assert_eq!(fp.attributes[attr::LANDLOCK_ABI], AttrValue::Int(6));
        assert_eq!(
            fp.attributes[attr::LANDLOCK_UNIX_SOCKETS],
            AttrValue::String("unmediated".into())
        );
        assert_eq!(fp.attributes[attr::LANDLOCK_NET], AttrValue::Bool(true));
        assert_eq!(fp.attributes[attr::SECCOMP], AttrValue::Bool(true));
        assert_eq!(
            fp.attributes[attr::CGROUP_MISSING],
            AttrValue::String("".into())
        );
        assert_eq!(
            fp.attributes[attr::LAUNCHER],
            AttrValue::String("builtin".into())
        );
        assert_eq!(
            fp.attributes[attr::CGROUP_CONTROLLERS],
            AttrValue::String("cpuset,cpu,io,memory,pids".into())
        );
    }

    #[test]
    fn missing_controllers_is_degraded_but_healthy() {
        let f = Fixture::new(true, Some("hugetlb\n"));
        let fp = fingerprint(&f.probe(no_landlock), &PluginConfig::default());
        assert_eq!(fp.health, Health::Healthy);
        assert!(
            fp.description.starts_with("Healthy; "),
            "{}",
            fp.description
        );
        assert!(
            fp.description.contains("limits are not enforced"),
            "{}",
            fp.description
        );
        assert!(fp
            .description
            .contains("tasks with unveil rules are refused"));
        assert_eq!(
            fp.attributes[attr::CGROUP_MISSING],
            AttrValue::String("cpu,memory".into())
        );
        assert_eq!(fp.attributes[attr::LANDLOCK_ABI], AttrValue::Int(0));
        assert_eq!(
            fp.attributes[attr::LANDLOCK_UNIX_SOCKETS],
            AttrValue::String("unmediated".into())
        );
        assert_eq!(fp.attributes[attr::LANDLOCK_NET], AttrValue::Bool(false));
        assert!(
            fp.description.contains("TCP ports are not restricted"),
            "{}",
            fp.description
        );
        let abi3 = || Some(3);
        let fp = fingerprint(&f.probe(abi3), &PluginConfig::default());
        assert_eq!(fp.attributes[attr::LANDLOCK_NET], AttrValue::Bool(false));
    }

    #[test]
    fn unhealthy_conditions() {
        let f = Fixture::new(false, Some("cpu memory"));
        let fp = fingerprint(&f.probe(abi6), &PluginConfig::default());
        assert_eq!(fp.health, Health::Unhealthy);
        assert!(fp.description.contains("seccomp"), "{}", fp.description);

        let f = Fixture::new(true, None);
        let fp = fingerprint(&f.probe(abi6), &PluginConfig::default());
        assert_eq!(fp.health, Health::Unhealthy);
        assert!(
            fp.description.contains("no cgroup v2 mount"),
            "{}",
            fp.description
        );

        let f = Fixture::new(true, Some("cpu memory"));
        let cfg = PluginConfig {
            launcher: Launcher::External("/nonexistent/pledge.com".into()),
            ..PluginConfig::default()
        };
        let fp = fingerprint(&f.probe(abi6), &cfg);
        assert_eq!(fp.health, Health::Unhealthy);
        assert!(
            fp.description.contains("launcher is not usable"),
            "{}",
            fp.description
        );

        let cfg = PluginConfig {
            cgroup_root: Some(f.dir.path().join("nope")),
            ..PluginConfig::default()
        };
        let fp = fingerprint(&f.probe(abi6), &cfg);
        assert_eq!(fp.health, Health::Unhealthy);
        assert!(
            fp.description.contains("check cgroup_root"),
            "{}",
            fp.description
        );
    }

    #[test]
    fn the_ceiling_is_exposed() {
        let f = Fixture::new(true, Some("cpu memory"));
        let fp = fingerprint(&f.probe(abi6), &PluginConfig::default());
        let s = |k: &str| match &fp.attributes[k] {
            AttrValue::String(s) => s.clone(),
            other => panic!("{k}: {other:?}"),
        };
        assert!(s(attr::ALLOWED_PROMISES).starts_with("stdio,rpath,"));
        assert!(s(attr::ALLOWED_PROMISES).contains(",anet"));
        assert_eq!(s(attr::ALLOWED_UNVEIL), "any");
        assert_eq!(s(attr::DEFAULT_UNVEIL), "");
        assert_eq!(s(attr::DENIED_UIDS), "");
        assert_eq!(fp.attributes[attr::REQUIRE_UNVEIL], AttrValue::Bool(false));

        let mut cfg = PluginConfig::default();
        cfg.ceiling.allowed_promises = Some("inet stdio".parse().unwrap());
        cfg.ceiling.allowed_unveil = Some(vec!["rwc:/srv".parse().unwrap()]);
        cfg.ceiling.require_unveil = true;
        cfg.ceiling.denied_uids = "0-999".parse().unwrap();
        cfg.ceiling.denied_gids = "0,27".parse().unwrap();
        cfg.default_unveil = vec![
            "r:/usr/share/zoneinfo".parse().unwrap(),
            "r:/etc/ssl".parse().unwrap(),
        ];
        let fp = fingerprint(&f.probe(abi6), &cfg);
        let s = |k: &str| match &fp.attributes[k] {
            AttrValue::String(s) => s.clone(),
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(s(attr::ALLOWED_PROMISES), "stdio,inet");
        assert_eq!(s(attr::ALLOWED_UNVEIL), "rwc:/srv");
        assert_eq!(s(attr::DEFAULT_UNVEIL), "r:/usr/share/zoneinfo,r:/etc/ssl");
        assert_eq!(s(attr::DENIED_UIDS), "0-999");
        assert_eq!(s(attr::DENIED_GIDS), "0,27");
        assert_eq!(fp.attributes[attr::REQUIRE_UNVEIL], AttrValue::Bool(true));
    }

    #[test]
    fn host_probe_does_not_panic() {
        let fp = fingerprint(&Probe::host(), &PluginConfig::default());
        assert!(!fp.description.is_empty());
    }
}
