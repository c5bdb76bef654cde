//! Task users: `""` → the configured default user, `nomad-<N>` → uid = gid = N (Nomad dynamic
//! workload users, no NSS lookup), otherwise a passwd lookup. Root only when allowed.

use nix::unistd::{Gid, User};
use serde::{Deserialize, Serialize};
use std::ffi::CString;

/// A resolved task identity, ready to be applied in the task child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (including `gid`).
    pub groups: Vec<u32>,
    pub home: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user `{0}` does not exist on this host: set the task's `user` to an existing account or `nomad-<uid>`")]
    Unknown(String),
    #[error("looking up user `{user}` failed")]
    Lookup { user: String, source: nix::Error },
    #[error("user `{0}` is root and the plugin option `allow_root` is false: run the task as an unprivileged `user` or set allow_root = true")]
    RootNotAllowed(String),
    #[error("user `{0}` is not valid: the name contains a NUL byte")]
    Invalid(String),
}

/// Resolves `user` (empty → `default_user`).
pub fn resolve_user(
    user: &str,
    default_user: &str,
    allow_root: bool,
) -> Result<TaskUser, UserError> {
    let name = if user.is_empty() { default_user } else { user };
    let resolved = if let Some(id) = dynamic_id(name) {
        TaskUser {
            name: name.to_string(),
            uid: id,
            gid: id,
            groups: vec![id],
            home: "/nonexistent".to_string(),
        }
    } else {
        if name.contains('\0') || name.is_empty() {
            return Err(UserError::Invalid(name.to_string()));
        }
        let u = User::from_name(name)
            .map_err(|source| UserError::Lookup {
                user: name.to_string(),
                source,
            })?
            .ok_or_else(|| UserError::Unknown(name.to_string()))?;
        let cname = CString::new(name).map_err(|_| UserError::Invalid(name.to_string()))?;
        let mut groups: Vec<u32> = nix::unistd::getgrouplist(&cname, u.gid)
            .map(|g| g.into_iter().map(Gid::as_raw).collect())
            .unwrap_or_else(|_| vec![u.gid.as_raw()]);
        groups.sort_unstable();
        groups.dedup();
        TaskUser {
            name: name.to_string(),
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            groups,
            home: u.dir.to_string_lossy().into_owned(),
        }
    };
    if resolved.uid == 0 && !allow_root {
        return Err(UserError::RootNotAllowed(name.to_string()));
    }
    Ok(resolved)
}

/// `nomad-<N>` with N a decimal uid (Nomad's dynamic workload users).
fn dynamic_id(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("nomad-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether the current process is root (tests skip otherwise).
#[cfg(test)]
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_user_is_the_default() {
        let u = resolve_user("", "nobody", false).unwrap();
        assert_eq!(u.name, "nobody");
        assert_ne!(u.uid, 0);
    }

    #[test]
    fn dynamic_users_need_no_lookup() {
        let u = resolve_user("nomad-80123", "nobody", false).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.home.as_str()),
            (80123, 80123, "/nonexistent")
        );
        assert!(dynamic_id("nomad-").is_none());
        assert!(dynamic_id("nomad-12a").is_none());
    }

    #[test]
    fn root_needs_allow_root() {
        let e = resolve_user("root", "nobody", false).unwrap_err();
        assert!(e.to_string().contains("allow_root"), "{e}");
        assert!(resolve_user("nomad-0", "nobody", false).is_err());
        assert_eq!(resolve_user("root", "nobody", true).unwrap().uid, 0);
    }

    #[test]
    fn unknown_users_name_the_field() {
        let e = resolve_user("no-such-user-xyz", "nobody", false).unwrap_err();
        assert!(e.to_string().contains("`user`"), "{e}");
        assert!(resolve_user("a\0b", "nobody", false).is_err());
    }
}
