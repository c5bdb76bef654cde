//! The operator's ceiling: plugin options bounding what a job's policy may ask for
//! (`allowed_promises`, `allowed_unveil`, `require_unveil`, `denied_host_uids`/`_gids`), and the
//! rules the operator adds to every task (`default_unveil`, carried by the policy itself).
//!
//! Checked at StartTask and again for every exec session, against the plugin config of the
//! moment. A violation names the task option, the value and the plugin option that forbids it.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use super::{Policy, PromiseSet, UnveilRule};

/// Inclusive ranges of numeric ids, written like Nomad's `exec` driver: `"0-999,1234"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdRanges(Vec<(u32, u32)>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{part}` is not an id or an id range: write numbers and LO-HI ranges separated by commas, e.g. \"0-999,1234\"")]
pub struct IdRangesError {
    pub part: String,
}

impl IdRanges {
    pub fn contains(&self, id: u32) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= id && id <= hi)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for IdRanges {
    type Err = IdRangesError;
    fn from_str(s: &str) -> Result<Self, IdRangesError> {
        let mut v = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let err = || IdRangesError {
                part: part.to_string(),
            };
            let num = |t: &str| t.trim().parse::<u32>().map_err(|_| err());
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => (num(part)?, num(part)?),
            };
            if lo > hi {
                return Err(err());
            }
            v.push((lo, hi));
        }
        Ok(IdRanges(v))
    }
}

impl fmt::Display for IdRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// What the operator allows (defaults: everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ceiling {
    /// `allowed_promises`; None = every promise.
    pub allowed_promises: Option<PromiseSet>,
    /// `allowed_unveil` (absolute `PERM:PREFIX` entries); None = any entry.
    pub allowed_unveil: Option<Vec<UnveilRule>>,
    /// `require_unveil`: a task must name at least one unveil entry of its own.
    pub require_unveil: bool,
    /// `denied_host_uids`.
    pub denied_uids: IdRanges,
    /// `denied_host_gids`.
    pub denied_gids: IdRanges,
}

/// A task asks for more than the ceiling allows.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CeilingError {
    #[error("task config `promises`: `{promise}` is not allowed by the plugin option `allowed_promises` (allowed: \"{allowed}\"); drop it from the task or ask the operator to allow it")]
    Promise { promise: String, allowed: String },
    #[error("task config `{option}`: `{entry}` is not allowed by the plugin option `allowed_unveil` ({allowed}); unveil a path under one of them with at most its permissions")]
    Unveil {
        option: String,
        entry: String,
        allowed: String,
    },
    #[error("task config `unveil` is empty but the plugin option `require_unveil` is true: list the paths the task needs, e.g. unveil = [\"r:/etc/mime.types\"]")]
    UnveilRequired,
    #[error("task `env` sets `{var}`, a test hook of the launcher that can weaken the sandbox: remove it from the job (jobs may not set it)")]
    Env { var: String },
    #[error("task `user` `{user}` has uid {uid}, which the plugin option `denied_host_uids` (\"{denied}\") forbids: run the task as another user")]
    DeniedUid {
        user: String,
        uid: u32,
        denied: String,
    },
    #[error("task `user` `{user}` has group {gid}, which the plugin option `denied_host_gids` (\"{denied}\") forbids: run the task as a user outside those groups")]
    DeniedGid {
        user: String,
        gid: u32,
        denied: String,
    },
}

/// `path` without `.` components and with `..` applied lexically (never above `/`).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

impl Ceiling {
    /// Checks the job's part of `policy` (operator rules are exempt), plus `extra` unveil
    /// entries the launcher will add on the job's behalf (named by the option they come from,
    /// e.g. `env TMPPATH`).
    pub fn check_policy(
        &self,
        policy: &Policy,
        extra: &[(String, UnveilRule)],
    ) -> Result<(), CeilingError> {
        if let Some(allowed) = self.allowed_promises {
            if let Some(p) = policy.promises().iter().find(|p| !allowed.contains(*p)) {
                return Err(CeilingError::Promise {
                    promise: p.name().to_string(),
                    allowed: allowed.to_string(),
                });
            }
        }
        if self.require_unveil && policy.unveil().is_empty() {
            return Err(CeilingError::UnveilRequired);
        }
        let own = policy
            .unveil()
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("unveil[{i}]"), r.clone()));
        for (option, rule) in own.chain(extra.iter().cloned()) {
            self.check_unveil(&option, &rule)?;
        }
        Ok(())
    }

    /// One rule must fall under an `allowed_unveil` entry with at most that entry's letters.
    /// Paths are compared component-wise after lexical normalization (`/srv/../etc` is `/etc`),
    /// and where the path exists, its symlinks resolved must land under the entry too (a link
    /// inside an allowed directory cannot point the rule elsewhere). An entry's own symlinks
    /// (`/lib` → `/usr/lib`) are resolved for the comparison.
    pub fn check_unveil(&self, option: &str, rule: &UnveilRule) -> Result<(), CeilingError> {
        let Some(allowed) = &self.allowed_unveil else {
            return Ok(());
        };
        let path = normalize(&rule.path);
        let real = std::fs::canonicalize(&path).ok();
        let under = |p: &Path, prefix: &Path| {
            p.starts_with(normalize(prefix))
                || std::fs::canonicalize(prefix).is_ok_and(|c| p.starts_with(c))
        };
        let ok = path.is_absolute()
            && allowed.iter().any(|a| {
                a.perms.contains(rule.perms)
                    && under(&path, &a.path)
                    && real.as_deref().is_none_or(|r| under(r, &a.path))
            });
        if ok {
            return Ok(());
        }
        let list: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
        Err(CeilingError::Unveil {
            option: option.to_string(),
            entry: rule.to_string(),
            allowed: if list.is_empty() {
                "an empty list: no entry".to_string()
            } else {
                list.join(", ")
            },
        })
    }

    /// The task's user (its uid and every group it runs with) must not be denied.
    pub fn check_user(&self, user: &str, uid: u32, gids: &[u32]) -> Result<(), CeilingError> {
        if self.denied_uids.contains(uid) {
            return Err(CeilingError::DeniedUid {
                user: user.to_string(),
                uid,
                denied: self.denied_uids.to_string(),
            });
        }
        if let Some(&gid) = gids.iter().find(|g| self.denied_gids.contains(**g)) {
            return Err(CeilingError::DeniedGid {
                user: user.to_string(),
                gid,
                denied: self.denied_gids.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Launcher;
    use super::*;

    fn policy(promises: &str, unveil: &[&str]) -> Policy {
        Policy::new(
            PromiseSet::parse(promises).unwrap(),
            unveil.iter().map(|u| u.parse().unwrap()).collect(),
            Launcher::default(),
        )
        .unwrap()
    }

    #[test]
    fn id_ranges_parse_like_nomads() {
        let r: IdRanges = "0-999, 1234,2000-2000".parse().unwrap();
        assert!(r.contains(0) && r.contains(999) && r.contains(1234) && r.contains(2000));
        assert!(!r.contains(1000) && !r.contains(65534));
        assert_eq!(r.to_string(), "0-999,1234,2000");
        assert!("".parse::<IdRanges>().unwrap().is_empty());
        for bad in ["x", "5-1", "1-", "-3", "1--2", "4294967296"] {
            let e = bad.parse::<IdRanges>().unwrap_err();
            assert!(e.to_string().contains("LO-HI"), "{bad}: {e}");
        }
    }

    #[test]
    fn promises_outside_the_allowed_set_are_refused() {
        let c = Ceiling {
            allowed_promises: Some(PromiseSet::parse("stdio rpath inet").unwrap()),
            ..Default::default()
        };
        c.check_policy(&policy("stdio inet", &[]), &[]).unwrap();
        let e = c
            .check_policy(&policy("stdio rpath proc exec", &[]), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("task config `promises`"), "{e}");
        assert!(e.contains("`proc`"), "{e}");
        assert!(e.contains("`allowed_promises`"), "{e}");
        assert!(Ceiling::default()
            .check_policy(&policy("stdio proc exec id", &[]), &[])
            .is_ok());
    }

    #[test]
    fn unveil_entries_must_fall_under_an_allowed_prefix_with_fewer_letters() {
        let c = Ceiling {
            allowed_unveil: Some(vec![
                "rwc:/srv/data".parse().unwrap(),
                "rx:/usr".parse().unwrap(),
            ]),
            ..Default::default()
        };
        c.check_policy(
            &policy("stdio", &["r:/srv/data/x", "rw:/srv/data", "x:/usr/bin"]),
            &[],
        )
        .unwrap();
        for (entries, bad) in [
            (&["rwx:/srv/data/x"][..], "rwx:/srv/data/x"),
            (&["r:/srv/database"], "r:/srv/database"),
            (&["r:/srv/data/../../etc"], "r:/srv/data/../../etc"),
            (&["r:/usr/bin", "w:/usr/local"], "w:/usr/local"),
            (&["r:/"], "r:/"),
        ] {
            let e = c
                .check_policy(&policy("stdio", entries), &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("`{bad}`")), "{entries:?}: {e}");
            assert!(e.contains("`allowed_unveil`"), "{e}");
            assert!(e.contains("\"rwc:/srv/data\""), "{e}");
        }
        let e = c
            .check_policy(
                &policy("stdio", &["r:/usr"]),
                &[("env TMPPATH".into(), "rwc:/".parse().unwrap())],
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("task config `env TMPPATH`"), "{e}");
        let none = Ceiling {
            allowed_unveil: Some(vec![]),
            ..Default::default()
        };
        let e = none
            .check_policy(&policy("stdio", &["r:/etc"]), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty list"), "{e}");
    }

    #[test]
    fn symlinks_cannot_lead_out_of_an_allowed_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("data");
        std::fs::create_dir(&allowed).unwrap();
        std::os::unix::fs::symlink("/etc", allowed.join("out")).unwrap();
        std::fs::create_dir(allowed.join("in")).unwrap();
        let alias = dir.path().join("alias");
        std::os::unix::fs::symlink(&allowed, &alias).unwrap();
        let c = Ceiling {
            allowed_unveil: Some(vec![UnveilRule::new("rwc".parse().unwrap(), &alias)]),
            ..Default::default()
        };
        let r = |p: &Path| UnveilRule::new("r".parse().unwrap(), p);
        // Through the allowed alias, and the real directory it names: fine.
        c.check_unveil("unveil[0]", &r(&alias.join("in"))).unwrap();
        c.check_unveil("unveil[0]", &r(&allowed.join("in")))
            .unwrap();
        c.check_unveil("unveil[0]", &r(&alias.join("not-yet")))
            .unwrap();
        // A link inside it to /etc: refused.
        let e = c
            .check_unveil("unveil[0]", &r(&alias.join("out")))
            .unwrap_err();
        assert!(e.to_string().contains("`allowed_unveil`"), "{e}");
        let e = c.check_unveil("unveil[0]", &r(&alias.join("out/passwd")));
        assert!(e.is_err());
    }

    #[test]
    fn require_unveil_refuses_a_task_without_entries() {
        let c = Ceiling {
            require_unveil: true,
            ..Default::default()
        };
        let e = c.check_policy(&policy("stdio", &[]), &[]).unwrap_err();
        assert_eq!(e, CeilingError::UnveilRequired);
        assert!(e.to_string().contains("`require_unveil`"), "{e}");
        c.check_policy(&policy("stdio", &["r:/etc/hosts"]), &[])
            .unwrap();
    }

    #[test]
    fn denied_ids_are_refused() {
        let c = Ceiling {
            denied_uids: "0-999".parse().unwrap(),
            denied_gids: "0,27".parse().unwrap(),
            ..Default::default()
        };
        c.check_user("nobody", 65534, &[65534]).unwrap();
        let e = c.check_user("daemon", 1, &[1]).unwrap_err().to_string();
        assert!(
            e.contains("uid 1") && e.contains("`denied_host_uids`"),
            "{e}"
        );
        let e = c
            .check_user("alice", 1000, &[1000, 27])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("group 27") && e.contains("`denied_host_gids`"),
            "{e}"
        );
    }
}
