//! Capability sets (with the `caps` crate): names as users write them (`net_bind_service`,
//! `CAP_NET_BIND_SERVICE`, any case, `all`), and the sets a sandboxed process is left with.
//!
//! The functions that change the calling process's sets ([`keep_across_setuid`],
//! [`limit_bounding`], [`restrict_to`]) only make `prctl`/`capset` calls on sets built before
//! (the `caps` crate allocates only for an error message), so a task child can call them
//! between fork and execve.

use std::collections::BTreeSet;
use std::fmt;

pub use caps::Capability;
use caps::CapsHashSet;

/// A set of capabilities.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapSet(CapsHashSet);

/// A capability name that is none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability `{name}`: write a Linux capability name such as `net_bind_service` or `CAP_NET_RAW` (see capabilities(7)), or `all`")]
pub struct CapNameError {
    pub name: String,
}

/// One entry of a `cap_add`/`cap_drop`/`allow_caps` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapName {
    All,
    One(Capability),
}

impl CapName {
    pub fn parse(name: &str) -> Result<CapName, CapNameError> {
        let trimmed = name.trim();
        if trimmed.eq_ignore_ascii_case("all") {
            return Ok(CapName::All);
        }
        caps::to_canonical(trimmed)
            .parse::<Capability>()
            .map(CapName::One)
            .map_err(|_| CapNameError {
                name: name.to_string(),
            })
    }
}

impl CapSet {
    pub fn new() -> CapSet {
        CapSet::default()
    }

    /// Every capability this crate knows.
    pub fn all() -> CapSet {
        CapSet(caps::all())
    }

    /// The set a list of names denotes (`all` = every capability).
    pub fn parse_list<S: AsRef<str>>(names: &[S]) -> Result<CapSet, CapNameError> {
        let mut set = CapSet::new();
        for n in names {
            match CapName::parse(n.as_ref())? {
                CapName::All => return Ok(CapSet::all()),
                CapName::One(c) => {
                    set.0.insert(c);
                }
            }
        }
        Ok(set)
    }

    /// The capabilities of `self` that are not in `other`.
    pub fn without(&self, other: &CapSet) -> CapSet {
        CapSet(self.0.difference(&other.0).copied().collect())
    }

    pub fn contains(&self, c: Capability) -> bool {
        self.0.contains(&c)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Lower-case names without `cap_`, sorted (`net_bind_service`).
    pub fn names(&self) -> Vec<String> {
        let names: BTreeSet<String> = self.0.iter().map(short_name).collect();
        names.into_iter().collect()
    }

    /// The bit mask (bit N = capability N), as `/proc/PID/status` shows it.
    #[cfg(test)]
    pub fn mask(&self) -> u64 {
        self.0.iter().fold(0, |m, c| m | c.bitmask())
    }
}

/// `net_bind_service` for CAP_NET_BIND_SERVICE.
pub fn short_name(c: &Capability) -> String {
    let s = c.to_string().to_lowercase();
    s.strip_prefix("cap_").map(str::to_string).unwrap_or(s)
}

impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

/// What the kernel refused while changing a capability set.
pub type CapsError = caps::errors::CapsError;

/// Before the uid switch of a root process that keeps `granted` for a non-root uid: keep the
/// permitted set across setuid (reduced to `granted` by [`restrict_to`] right after).
pub fn keep_across_setuid(granted: &CapSet) -> Result<(), CapsError> {
    if granted.is_empty() {
        return Ok(());
    }
    caps::securebits::set_keepcaps(true)
}

/// Drops every capability of `supported` (see [`supported`]) that is not in `granted` from the
/// bounding set. Needs CAP_SETPCAP; without it nothing can be dropped, which is harmless for an
/// unprivileged caller (its sets are already empty).
pub fn limit_bounding(granted: &CapSet, supported: &CapSet) -> Result<(), CapsError> {
    if !caps::has_cap(None, caps::CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false) {
        return Ok(());
    }
    for c in supported.0.iter() {
        if !granted.contains(*c) {
            caps::drop(None, caps::CapSet::Bounding, *c)?;
        }
    }
    Ok(())
}

/// The capabilities the running kernel knows (read before a fork: it reads /proc).
pub fn supported() -> CapSet {
    CapSet(caps::runtime::thread_all_supported())
}

/// After the uid switch: inheritable = `granted`, ambient = `granted` (so a non-root program
/// gets them at execve), and for a non-root process permitted = effective = `granted`. Nothing
/// else survives into the program. A root process keeps its permitted and effective sets (its
/// program's capabilities are bounded by the bounding set at execve).
pub fn restrict_to(granted: &CapSet, root: bool) -> Result<(), CapsError> {
    caps::clear(None, caps::CapSet::Ambient)?;
    caps::set(None, caps::CapSet::Inheritable, &granted.0)?;
    if !root {
        caps::set(None, caps::CapSet::Effective, &CapsHashSet::new())?;
        caps::set(None, caps::CapSet::Permitted, &granted.0)?;
        caps::set(None, caps::CapSet::Effective, &granted.0)?;
    }
    for c in granted.0.iter() {
        caps::raise(None, caps::CapSet::Ambient, *c)?;
    }
    if !granted.is_empty() {
        caps::securebits::set_keepcaps(false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_or_without_cap_in_any_case() {
        for n in [
            "net_bind_service",
            "CAP_NET_BIND_SERVICE",
            "Net_Bind_Service",
            " cap_net_bind_service ",
        ] {
            assert_eq!(
                CapName::parse(n).unwrap(),
                CapName::One(Capability::CAP_NET_BIND_SERVICE),
                "{n}"
            );
        }
        assert_eq!(CapName::parse("ALL").unwrap(), CapName::All);
        let e = CapName::parse("net_bind").unwrap_err();
        assert!(e.to_string().contains("`net_bind`"), "{e}");
        let s = CapSet::parse_list(&["net_raw", "chown"]).unwrap();
        assert_eq!(s.names(), ["chown", "net_raw"]);
        assert_eq!(s.to_string(), "chown,net_raw");
        assert_eq!(s.mask(), (1 << 0) | (1 << 13));
        assert_eq!(
            CapSet::parse_list(&["chown", "all"]).unwrap(),
            CapSet::all()
        );
    }
}
