//! The driver's one error type, rendered once at the gRPC edge (style.md item 7).
//!
//! Errors in this crate return their cause from `source()` and never print it themselves (see
//! `crate::errors`); the status message is the chain joined by `: ` ([`error_chain`]), so each
//! cause appears exactly once.

use prost::Message;

use super::config::ConfigError;
use super::task_config::TaskConfigError;
use crate::errors::error_chain;
use crate::proto::google_rpc;
use crate::proto::structs::RecoverableError;

const RECOVERABLE_TYPE_URL: &str =
    "type.googleapis.com/hashicorp.nomad.plugins.shared.structs.RecoverableError";

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    TaskConfig(#[from] TaskConfigError),
    #[error("task network")]
    Dns(#[from] super::dns::DnsError),
    #[error("task volumes")]
    Volume(#[from] super::volumes::VolumeError),
    #[error("task sandbox policy")]
    Policy(#[from] crate::policy::PolicyError),
    #[error(transparent)]
    Ceiling(#[from] crate::policy::ceiling::CeilingError),
    #[error("{rpc} is not implemented yet by the pledge driver")]
    Unimplemented { rpc: &'static str },
    #[error(transparent)]
    Exec(#[from] crate::executor::ExecError),
    #[error("cannot find this plugin's own executable (/proc/self/exe)")]
    SelfExe { source: std::io::Error },
    #[error("cannot recover the task from its handle: {0}; Nomad will restart the task")]
    BadHandle(String),
    #[error("{}; the plugin option unveil_missing = \"fail\" refuses such tasks: fix the path (or set unveil_missing = \"warn\")", .0.join("; "))]
    UnveilMissing(Vec<String>),
}

impl DriverError {
    /// Whether Nomad should retry (restart policy) — only meaningful for StartTask and TaskStats,
    /// the two RPCs whose `RecoverableError` detail Nomad reads (protocol §3.19).
    pub fn recoverable(&self) -> Option<bool> {
        match self {
            // A bad config stays bad: retrying cannot help.
            DriverError::TaskConfig(_)
            | DriverError::Policy(_)
            | DriverError::Ceiling(_)
            | DriverError::Volume(_)
            | DriverError::Dns(_)
            | DriverError::UnveilMissing(_) => Some(false),
            DriverError::Config(_) | DriverError::Unimplemented { .. } => None,
            DriverError::BadHandle(_) => Some(false),
            DriverError::SelfExe { .. } => Some(true),
            DriverError::Exec(e) => {
                use crate::executor::ExecError as E;
                match e {
                    // Wrong input: the same task config fails the same way again.
                    E::User(_)
                    | E::Signal(_)
                    | E::BadState { .. }
                    | E::State(_)
                    | E::Resolve(_) => Some(false),
                    // Host conditions (fork, cgroups, state dir) may be transient.
                    _ => Some(true),
                }
            }
        }
    }

    fn code(&self) -> tonic::Code {
        match self {
            DriverError::Config(_)
            | DriverError::TaskConfig(_)
            | DriverError::Policy(_)
            | DriverError::Ceiling(_)
            | DriverError::Volume(_)
            | DriverError::Dns(_)
            | DriverError::UnveilMissing(_) => tonic::Code::InvalidArgument,
            DriverError::Unimplemented { .. } => tonic::Code::Unimplemented,
            DriverError::BadHandle(_) => tonic::Code::InvalidArgument,
            DriverError::SelfExe { .. } => tonic::Code::Internal,
            DriverError::Exec(e) => {
                use crate::executor::ExecError as E;
                match e {
                    E::NotFound(_) | E::Gone { .. } => tonic::Code::NotFound,
                    E::User(_)
                    | E::Signal(_)
                    | E::BadState { .. }
                    | E::State(_)
                    | E::Resolve(_) => tonic::Code::InvalidArgument,
                    E::Duplicate(_) => tonic::Code::AlreadyExists,
                    E::Running(_) | E::Exited(_) | E::NotRunning(_) => {
                        tonic::Code::FailedPrecondition
                    }
                    E::EmptyExecCommand => tonic::Code::InvalidArgument,
                    _ => tonic::Code::Internal,
                }
            }
        }
    }
}

impl From<DriverError> for tonic::Status {
    fn from(e: DriverError) -> Self {
        let code = e.code();
        let message = error_chain(&e);
        match e.recoverable() {
            None => tonic::Status::new(code, message),
            Some(recoverable) => {
                let detail = prost_types::Any {
                    type_url: RECOVERABLE_TYPE_URL.to_string(),
                    value: RecoverableError { recoverable }.encode_to_vec(),
                };
                let status = google_rpc::Status {
                    code: code as i32,
                    message: message.clone(),
                    details: vec![detail],
                };
                tonic::Status::with_details(code, message, status.encode_to_vec().into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unimplemented_maps_to_code_without_details() {
        let s: tonic::Status = DriverError::Unimplemented { rpc: "StartTask" }.into();
        assert_eq!(s.code(), tonic::Code::Unimplemented);
        assert!(s.message().contains("StartTask"));
        assert!(s.details().is_empty());
    }

    #[test]
    fn task_config_error_carries_recoverable_false() {
        let s: tonic::Status = DriverError::from(TaskConfigError::MissingCommand).into();
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        let st = google_rpc::Status::decode(s.details()).unwrap();
        assert_eq!(st.code, tonic::Code::InvalidArgument as i32);
        assert_eq!(st.message, s.message());
        assert_eq!(st.details[0].type_url, RECOVERABLE_TYPE_URL);
        let r = RecoverableError::decode(st.details[0].value.as_slice()).unwrap();
        assert!(!r.recoverable);
    }
}
