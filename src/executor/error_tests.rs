//! Each error of the executor that wraps another says what failed once and returns its cause
//! from `source()` (see `crate::errors`). No cgroups or processes: the errors are constructed.

use std::path::PathBuf;

use super::cgroup::CgroupError;
use super::child::{ChildFailure, ChildStep, LaunchError, SetupStep};
use super::exec::ExecHelperError;
use super::forkserver::ForkServerError;
use super::mounts::MountError;
use super::spawn::SpawnError;
use super::state::StateError;
use super::supervisor::SupervisorError;
use super::user::UserError;
use super::{ExecError, Signal};
use crate::errors::assert_says_each_thing_once as check;
use crate::errors::fixtures::{errno, io, json};
use crate::sandbox::prepared::PrepareError;
use crate::sandbox::seccomp::SeccompError;

fn launch() -> LaunchError {
    LaunchError::Child {
        argv0: "/bin/prog".into(),
        failure: ChildFailure {
            step: ChildStep::Setup(SetupStep::Chdir),
            errno: libc::ENOENT,
        },
    }
}

fn cgroup() -> CgroupError {
    CgroupError::Create {
        path: PathBuf::from("/sys/fs/cgroup/nomad/t1"),
        source: io(),
    }
}

fn state() -> StateError {
    StateError::Write {
        path: PathBuf::from("/state/t1.json"),
        source: io(),
    }
}

#[test]
fn launch_errors_say_each_thing_once() {
    check(&LaunchError::Prepare(PrepareError::Filter(
        SeccompError::NoNewPrivs { source: io() },
    )));
    check(&LaunchError::Setup {
        step: "set up the tty",
        source: io(),
    });
    check(&launch());
    check(&ExecHelperError::Cgroup {
        path: "/sys/fs/cgroup/x".into(),
        source: io(),
    });
    check(&ExecHelperError::Setns {
        pid: 7,
        source: io(),
    });
    check(&ExecHelperError::Setup {
        step: "chdir",
        source: io(),
    });
    check(&ExecHelperError::Launch(launch()));
    check(&SupervisorError::Netns {
        path: "/var/run/netns/x".into(),
        source: io(),
    });
    check(&SupervisorError::Proc(errno()));
    check(&SupervisorError::Mount(MountError::Io {
        step: "bind-mount",
        path: PathBuf::from("/srv"),
        source: io(),
    }));
    check(&SupervisorError::Setup {
        step: "open the denial log",
        source: io(),
    });
    check(&SupervisorError::Launch(launch()));
}

#[test]
fn host_errors_say_each_thing_once() {
    check(&StateError::Decode(json()));
    check(&state());
    check(&StateError::Corrupt {
        path: PathBuf::from("/state/t1.exit"),
        source: json(),
    });
    check(&cgroup());
    check(&CgroupError::Write {
        path: PathBuf::from("/sys/fs/cgroup/x/memory.max"),
        value: "1".into(),
        source: io(),
    });
    check(&CgroupError::Read {
        path: PathBuf::from("/sys/fs/cgroup/x/memory.max"),
        source: io(),
    });
    check(&CgroupError::Remove {
        path: PathBuf::from("/sys/fs/cgroup/x"),
        source: io(),
    });
    check(&SpawnError::OpenLog {
        field: "stdout_path",
        path: PathBuf::from("/alloc/logs/x.fifo"),
        source: io(),
    });
    check(&SpawnError::OpenCgroup {
        path: PathBuf::from("/sys/fs/cgroup/x"),
        source: io(),
    });
    check(&SpawnError::Clone {
        cgroup: PathBuf::from("/sys/fs/cgroup/x"),
        source: io(),
    });
    check(&SpawnError::State(state()));
    check(&MountError::Source {
        path: PathBuf::from("/srv"),
        source: io(),
    });
    check(&UserError::Lookup {
        user: "nobody".into(),
        source: errno(),
    });
    check(&ForkServerError::Start {
        exe: PathBuf::from("/usr/bin/nomad-pledge-driver"),
        source: io(),
    });
    check(&ForkServerError::Talk(errno()));
    check(&ForkServerError::Clone(io()));
}

#[test]
fn exec_errors_say_each_thing_once() {
    check(&ExecError::Deliver {
        id: "t1".into(),
        signal: Signal::SIGTERM,
        source: io(),
    });
    check(&ExecError::StateDir {
        path: PathBuf::from("/state"),
        source: io(),
    });
    check(&ExecError::ExecSpawn {
        id: "t1".into(),
        exe: PathBuf::from("/usr/bin/nomad-pledge-driver"),
        source: io(),
    });
    check(&ExecError::Watch {
        id: "t1".into(),
        source: io(),
    });
    check(&ExecError::User(UserError::Lookup {
        user: "nobody".into(),
        source: errno(),
    }));
    check(&ExecError::Cgroup(cgroup()));
    check(&ExecError::Spawn(SpawnError::State(state())));
    check(&ExecError::State(state()));
}
