//! The operator's ceiling applied to a task (StartTask) and to every exec session: the policy
//! against `allowed_promises`/`allowed_unveil`/`require_unveil`, the task user against
//! `denied_host_uids`/`denied_host_gids`, and the task environment, which must not be able to
//! change what the launcher enforces.

use std::path::Path;

use super::config::PluginConfig;
use super::error::DriverError;
use crate::executor::{user, TaskSpec};
use crate::policy::ceiling::CeilingError;
use crate::policy::UnveilRule;
use crate::sandbox::promise::Promise;
use crate::sandbox::unveil::TEST_ABI_ENV;

/// Variables of the task environment the launcher reads that could weaken the sandbox; a job
/// may not set them.
pub const FORBIDDEN_ENV: &[&str] = &[TEST_ABI_ENV];

/// Checks `spec` against the plugin's ceiling as configured now.
pub fn check(plugin: &PluginConfig, spec: &TaskSpec) -> Result<(), DriverError> {
    if let Some(var) = FORBIDDEN_ENV.iter().find(|v| spec.env.contains_key(**v)) {
        return Err(CeilingError::Env {
            var: var.to_string(),
        }
        .into());
    }
    let ceiling = &plugin.ceiling;
    let mut extra = Vec::new();
    // `tmppath` makes the launcher unveil `$TMPPATH` rwc: the job's env chooses that path, so
    // it is held to `allowed_unveil` like an entry of `unveil`.
    if spec.policy.promises().contains(Promise::Tmppath) {
        if let Some(t) = spec.env.get("TMPPATH").filter(|t| !t.is_empty()) {
            let cwd = spec.work_dir.as_deref().unwrap_or(&spec.task_dir);
            let path = cwd.join(Path::new(t));
            extra.push((
                "env TMPPATH".to_string(),
                UnveilRule::new("rwc".parse().expect("static perms"), path),
            ));
        }
    }
    ceiling.check_policy(&spec.policy, &extra)?;
    if !ceiling.denied_uids.is_empty() || !ceiling.denied_gids.is_empty() {
        let u = user::resolve_user(&spec.user, &plugin.default_user, plugin.allow_root)
            .map_err(crate::executor::ExecError::from)?;
        let mut gids = u.groups.clone();
        gids.push(u.gid);
        ceiling.check_user(&u.name, u.uid, &gids)?;
    }
    Ok(())
}
