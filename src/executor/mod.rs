//! Task executor: cgroups, namespaces, users, the per-task supervisor, signals and recovery state.

/// argv[1] of the internal supervisor mode.
pub const SUPERVISOR_MODE: &str = "__supervise";

/// Entry point of the per-task supervisor (an internal mode; users never call it).
pub fn supervisor_main(_args: &[std::ffi::OsString]) -> i32 {
    eprintln!("nomad-pledge-driver: the supervisor is not implemented yet");
    1
}
