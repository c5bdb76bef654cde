//! Plain-Rust description of the hcldec specs we hand to Nomad (converted to the wire type in
//! `wire.rs`), plus the two schemas themselves.

/// A subset of Nomad's hclspec tree: all we need for flat configs (protocol §4.2).
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    /// An object whose attributes are (output key, spec) pairs.
    Object(Vec<(&'static str, Spec)>),
    /// `name = expr` converted to the HCL type expression `ty`.
    Attr {
        name: &'static str,
        ty: &'static str,
        required: bool,
    },
    /// `primary` unless it is null, else `default`.
    Default {
        primary: Box<Spec>,
        default: Box<Spec>,
    },
    /// A constant HCL expression (string literals include their quotes).
    Literal(&'static str),
}

fn attr(name: &'static str, ty: &'static str) -> Spec {
    Spec::Attr {
        name,
        ty,
        required: false,
    }
}

fn with_default(primary: Spec, literal: &'static str) -> Spec {
    Spec::Default {
        primary: Box::new(primary),
        default: Box::new(Spec::Literal(literal)),
    }
}

/// `plugin "nomad-pledge-driver" { config { ... } }` (defaults also in README.md).
pub fn plugin_config_spec() -> Spec {
    Spec::Object(vec![
        (
            "pledge_executable",
            with_default(attr("pledge_executable", "string"), "\"\""),
        ),
        (
            "allow_root",
            with_default(attr("allow_root", "bool"), "false"),
        ),
        (
            "default_user",
            with_default(attr("default_user", "string"), "\"nobody\""),
        ),
        (
            "unveil_best_effort",
            with_default(attr("unveil_best_effort", "bool"), "false"),
        ),
        (
            "state_dir",
            with_default(attr("state_dir", "string"), "\"/run/nomad-pledge-driver\""),
        ),
        (
            "cgroup_root",
            with_default(attr("cgroup_root", "string"), "\"\""),
        ),
        ("log_level", attr("log_level", "string")),
        ("allowed_promises", attr("allowed_promises", "string")),
        ("allowed_unveil", attr("allowed_unveil", "list(string)")),
        ("default_unveil", attr("default_unveil", "list(string)")),
        (
            "require_unveil",
            with_default(attr("require_unveil", "bool"), "false"),
        ),
        (
            "denied_host_uids",
            with_default(attr("denied_host_uids", "string"), "\"\""),
        ),
        (
            "denied_host_gids",
            with_default(attr("denied_host_gids", "string"), "\"\""),
        ),
        (
            "pids_limit",
            with_default(attr("pids_limit", "number"), "0"),
        ),
        (
            "allow_negative_oom_score_adj",
            with_default(attr("allow_negative_oom_score_adj", "bool"), "false"),
        ),
        (
            "allow_pid_host",
            with_default(attr("allow_pid_host", "bool"), "false"),
        ),
        (
            "allow_ipc_host",
            with_default(attr("allow_ipc_host", "bool"), "false"),
        ),
        (
            "allow_learn",
            with_default(attr("allow_learn", "bool"), "false"),
        ),
        (
            "unveil_missing",
            with_default(attr("unveil_missing", "string"), "\"warn\""),
        ),
        (
            "landlock_audit",
            with_default(attr("landlock_audit", "string"), "\"auto\""),
        ),
        (
            "seccomp_denials",
            with_default(attr("seccomp_denials", "bool"), "true"),
        ),
        ("allow_caps", attr("allow_caps", "list(string)")),
    ])
}

/// The job's `config { ... }` for `driver = "pledge"`.
pub fn task_config_spec() -> Spec {
    Spec::Object(vec![
        (
            "command",
            Spec::Attr {
                name: "command",
                ty: "string",
                required: true,
            },
        ),
        ("args", attr("args", "list(string)")),
        ("promises", attr("promises", "string")),
        ("unveil", attr("unveil", "list(string)")),
        (
            "importance",
            with_default(attr("importance", "string"), "\"normal\""),
        ),
        ("work_dir", attr("work_dir", "string")),
        ("connect_ports", attr("connect_ports", "list(string)")),
        ("pids_limit", attr("pids_limit", "number")),
        ("ulimit", attr("ulimit", "map(string)")),
        ("oom_score_adj", attr("oom_score_adj", "number")),
        (
            "pid_mode",
            with_default(attr("pid_mode", "string"), "\"private\""),
        ),
        (
            "ipc_mode",
            with_default(attr("ipc_mode", "string"), "\"private\""),
        ),
        ("learn", with_default(attr("learn", "bool"), "false")),
        ("cap_add", attr("cap_add", "list(string)")),
        ("cap_drop", attr("cap_drop", "list(string)")),
    ])
}
