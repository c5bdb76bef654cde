//! Each error of `run` that wraps another says what failed once and returns its cause from
//! `source()` (see `crate::errors`).

use std::path::PathBuf;

use super::alloc::AllocError;
use super::interp::InterpError;
use super::job::{Job, JobError};
use super::plugin_client::ClientError;
use super::scope::ScopeError;
use super::session::RunError;
use crate::errors::assert_says_each_thing_once as check;
use crate::errors::fixtures::{errno, io, transport};

fn parse_error() -> JobError {
    match Job::parse("job \"x\" {") {
        Err(e @ JobError::Parse(_)) => e,
        other => panic!("want a parse error, got {other:?}"),
    }
}

#[test]
fn run_errors_say_each_thing_once() {
    check(&ClientError::Spawn {
        path: PathBuf::from("/bin/plugin"),
        source: io(),
    });
    check(&ClientError::Connect {
        path: PathBuf::from("/tmp/plugin.sock"),
        source: transport(),
    });
    check(&AllocError::Create {
        path: PathBuf::from("/alloc"),
        source: io(),
    });
    check(&AllocError::Fifo {
        path: PathBuf::from("/alloc/fifo"),
        source: errno(),
    });
    check(&parse_error());
    check(&ScopeError::Cgroup {
        path: PathBuf::from("/sys/fs/cgroup/x"),
        source: io(),
    });
    check(&RunError::Read {
        path: PathBuf::from("job.hcl"),
        source: io(),
    });
    check(&RunError::Job {
        path: PathBuf::from("job.hcl"),
        source: parse_error(),
    });
    check(&RunError::Alloc(AllocError::Create {
        path: PathBuf::from("/alloc"),
        source: io(),
    }));
    check(&RunError::Client(ClientError::Spawn {
        path: PathBuf::from("/bin/plugin"),
        source: io(),
    }));
    // A transparent wrapper of an error without a source is that one message.
    let e = RunError::Interp(InterpError {
        place: "task".into(),
        field: "command".into(),
        message: "bad".into(),
    });
    assert!(std::error::Error::source(&e).is_none(), "{e:?}");
}
