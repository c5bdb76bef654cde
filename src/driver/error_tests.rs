//! Each error of the driver that wraps another says what failed once and returns its cause
//! from `source()`, and the gRPC status joins the chain (see `crate::errors`).

use std::path::PathBuf;

use super::config::ConfigError;
use super::dns::DnsError;
use super::error::DriverError;
use super::msgpack::{ConfigDecodeError, MsgpackError};
use super::task_config::TaskConfigError;
use super::volumes::VolumeError;
use crate::errors::assert_says_each_thing_once as check;
use crate::errors::fixtures::io;
use crate::executor::rlimit::UlimitError;
use crate::executor::ExecError;
use crate::plugin::logging::UnknownLogLevel;
use crate::policy::ceiling::IdRangesError;
use crate::policy::PolicyError;
use crate::sandbox::caps::CapNameError;
use crate::sandbox::unveil::PortRangeError;

fn decode() -> ConfigDecodeError {
    ConfigDecodeError::Msgpack(MsgpackError::Truncated { offset: 3 })
}

fn cap() -> CapNameError {
    CapNameError {
        name: "net_bind".into(),
    }
}

#[test]
fn config_errors_say_each_thing_once() {
    check(&decode());
    check(&ConfigError::Decode(decode()));
    check(&ConfigError::AllowCaps(cap()));
    check(&ConfigError::LogLevel(UnknownLogLevel("loud".into())));
    check(&ConfigError::IdRanges {
        field: "denied_host_uids",
        source: IdRangesError { part: "x".into() },
    });
}

#[test]
fn task_config_errors_say_each_thing_once() {
    check(&TaskConfigError::Decode(decode()));
    check(&TaskConfigError::Cap {
        field: "cap_add",
        index: 0,
        source: cap(),
    });
    check(&TaskConfigError::ConnectPorts {
        index: 1,
        source: PortRangeError("x".into()),
    });
    check(&TaskConfigError::Ulimit {
        name: "nofile".into(),
        value: "lots".into(),
        problem: UlimitError::Value("lots".into()),
    });
}

#[test]
fn driver_errors_say_each_thing_once() {
    check(&DriverError::Config(ConfigError::Decode(decode())));
    check(&DriverError::TaskConfig(TaskConfigError::Decode(decode())));
    check(&DriverError::Dns(DnsError::Server("x".into())));
    check(&DriverError::Volume(VolumeError::Device {
        index: 0,
        host_path: "dev".into(),
    }));
    check(&DriverError::Policy(PolicyError::RelativeUnveil {
        path: PathBuf::from("rel"),
    }));
    check(&DriverError::SelfExe { source: io() });
    check(&DriverError::Exec(ExecError::Watch {
        id: "t1".into(),
        source: io(),
    }));
}

#[test]
fn the_status_message_says_each_cause_once() {
    let s: tonic::Status = DriverError::Dns(DnsError::Server("x".into())).into();
    assert_eq!(
        s.message(),
        format!("task network: {}", DnsError::Server("x".into()))
    );
    let s: tonic::Status = DriverError::SelfExe { source: io() }.into();
    assert_eq!(
        s.message(),
        format!(
            "cannot find this plugin's own executable (/proc/self/exe): {}",
            io()
        )
    );
}
