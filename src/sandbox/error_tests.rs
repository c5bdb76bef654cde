//! Each error of the sandbox that wraps another says what failed once and returns its cause
//! from `source()` (see `crate::errors`).

use std::path::PathBuf;

use super::cli::UsageError;
use super::exe::ExeError;
use super::gate::GateError;
use super::launch::{IdentityError, LaunchError};
use super::prepared::PrepareError;
use super::promise::PromiseError;
use super::seccomp::SeccompError;
use super::unveil::{PortRangeError, UnveilError};
use crate::errors::assert_says_each_thing_once as check;
use crate::errors::fixtures::{errno, io};
use crate::policy::PolicyError;

fn seccomp() -> SeccompError {
    SeccompError::Install {
        flags: 1,
        source: io(),
    }
}

fn unveil_open() -> UnveilError {
    UnveilError::Open {
        path: PathBuf::from("/srv"),
        origin: "-v rw:/srv".into(),
        source: io(),
    }
}

#[test]
fn seccomp_errors_say_each_thing_once() {
    check(&SeccompError::NoNewPrivs { source: io() });
    check(&seccomp());
    check(&SeccompError::Notify {
        op: "recv",
        source: io(),
    });
}

#[test]
fn unveil_errors_say_each_thing_once() {
    check(&unveil_open());
    let landlock = landlock::Ruleset::default().create().unwrap_err();
    check(&UnveilError::Landlock {
        what: "the task".into(),
        source: landlock.into(),
    });
}

#[test]
fn gate_and_prepare_errors_say_each_thing_once() {
    check(&GateError::Seccomp(seccomp()));
    check(&GateError::Sys {
        what: "pidfd_open",
        source: io(),
    });
    check(&PrepareError::Filter(seccomp()));
    check(&PrepareError::Unveil(unveil_open()));
    // ExeError has no source: a transparent wrapper of it is one link, said once.
    let e = PrepareError::Program(ExeError::NotFound {
        name: "prog".into(),
        errno: libc::ENOENT,
    });
    assert!(std::error::Error::source(&e).is_none(), "{e:?}");
}

#[test]
fn launch_errors_say_each_thing_once() {
    check(&LaunchError::Promises {
        list: "stdio thread".into(),
        source: PromiseError::Unknown {
            name: "thread".into(),
        },
    });
    check(&LaunchError::Unveil(unveil_open()));
    check(&LaunchError::Chdir {
        dir: PathBuf::from("/jail"),
        source: errno(),
    });
    check(&LaunchError::Chroot {
        dir: PathBuf::from("/jail"),
        source: errno(),
    });
    check(&LaunchError::Policy {
        path: PathBuf::from("rel"),
        source: PolicyError::RelativeUnveil {
            path: PathBuf::from("rel"),
        },
    });
    check(&LaunchError::Prepare(PrepareError::Filter(seccomp())));
    check(&LaunchError::Explainer(GateError::Sys {
        what: "pidfd_open",
        source: io(),
    }));
    check(&LaunchError::Identity(IdentityError::Setuid {
        uid: 1000,
        source: errno(),
    }));
}

#[test]
fn identity_and_usage_errors_say_each_thing_once() {
    check(&IdentityError::Caps(io()));
    check(&IdentityError::Groups {
        groups: vec![1, 2],
        source: errno(),
    });
    check(&IdentityError::Setgid {
        gid: 1000,
        source: errno(),
    });
    check(&IdentityError::Setuid {
        uid: 1000,
        source: errno(),
    });
    check(&UsageError::Port {
        prog: "pledge".into(),
        option: "tcp-bind".into(),
        reason: PortRangeError("x".into()),
    });
}
