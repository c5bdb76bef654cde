//! The fork server: one small single-threaded root process per executor that clones every
//! task's supervisor, so that supervisors share its pages copy-on-write instead of each being a
//! fresh exec of the multi-megabyte driver binary (README "How tasks run").
//!
//! The executor starts it once (this binary exec'd as `__forkserver`, with no environment but
//! [`MALLOC_TUNABLES`], before it has touched any task) and keeps a `SOCK_SEQPACKET` socket to
//! it on its stdin. A
//! request is one message: a 4-byte header (magic, version, flags) and six descriptors (the
//! task's stdin, stdout, stderr, its cgroup directory, its state directory and the read end of a
//! pipe the plan will come through). The server clones the supervisor into the cgroup and its
//! new namespaces, writes the supervisor record (pid and start time) into the state directory,
//! and answers with the pid (or an errno) and the pidfd. The plugin then writes the plan into
//! the pipe: the plan (the task environment, tokens included) never passes through the fork
//! server's memory, so no task's supervisor inherits another task's plan.
//!
//! The server exits when its socket closes (the executor dropped it or the plugin died). Its
//! supervisors do not depend on it: they run in their own sessions, with no parent-death signal,
//! and the kernel reparents them when it exits. A dead server is started again by the next
//! request.

use super::state;
use super::sys;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// argv[1] of the fork server mode.
pub const FORKSERVER_MODE: &str = "__forkserver";

const MAGIC: u8 = b'F';
const VERSION: u8 = 1;
const FLAG_HOST_PID: u8 = 1;
const FLAG_HOST_IPC: u8 = 2;
/// The fork server's only environment variable: glibc's allocator without its per-thread
/// cache and fast bins, so that every block the supervisor's set-up frees merges with its
/// neighbours at once and `malloc_trim` can give whole pages back after the set-up (with
/// them, freed blocks stay cached, scattered over the heap, and keep every page they sit on
/// resident: the copy-on-write copies of most of a supervisor's heap). A handful of
/// allocations per task: the caches buy nothing here.
pub const MALLOC_TUNABLES: &str = "glibc.malloc.tcache_count=0:glibc.malloc.mxfast=0";
/// stdin, stdout, stderr, cgroup dir, state dir, plan pipe.
const FDS: usize = 6;

#[derive(Debug, thiserror::Error)]
pub enum ForkServerError {
    #[error("cannot start the fork server `{exe} {FORKSERVER_MODE}` (the plugin could not execute its own binary: check the process limits and that its directory is not mounted noexec)")]
    Start {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot talk to the fork server")]
    Talk(#[source] nix::Error),
    #[error("the fork server exited twice in a row while starting a supervisor: see the plugin's log for its message")]
    Died,
    #[error("the fork server cannot clone the supervisor")]
    Clone(#[source] std::io::Error),
}

/// The task's descriptors handed to the fork server for one supervisor.
pub struct Request<'a> {
    pub stdin: BorrowedFd<'a>,
    pub stdout: BorrowedFd<'a>,
    pub stderr: BorrowedFd<'a>,
    pub cgroup_dir: BorrowedFd<'a>,
    pub state_dir: BorrowedFd<'a>,
    /// Read end of the pipe the plan is written into after the answer.
    pub plan: BorrowedFd<'a>,
    pub host_pid: bool,
    pub host_ipc: bool,
}

/// The executor's handle on its fork server (started on first use, restarted when it died).
pub struct ForkServer {
    exe: PathBuf,
    conn: Mutex<Option<Conn>>,
}

/// How long a fork server that has cloned supervisors stays up without another request: a
/// burst of starts shares one server, and an idle plugin keeps no helper process (nothing of
/// the plugin's but the plugin outlives what it was asked to do).
pub const IDLE: std::time::Duration = std::time::Duration::from_millis(500);

struct Conn {
    child: std::process::Child,
    sock: OwnedFd,
    /// Supervisors this server cloned (0: started ahead of the first task, see `warm`).
    clones: u64,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Closing the socket ends the server; reap it (it exits at once on EOF).
        let sock = std::mem::replace(&mut self.sock, dev_null());
        drop(sock);
        let _ = self.child.wait();
    }
}

fn dev_null() -> OwnedFd {
    std::fs::File::open("/dev/null")
        .map(OwnedFd::from)
        .unwrap_or_else(|_| {
            // A descriptor that is certainly ours to close: one end of a fresh socket pair.
            socketpair(
                AddressFamily::Unix,
                SockType::SeqPacket,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .expect("a socket pair")
            .0
        })
}

/// Whether an error means the server is gone (then it is restarted and the request retried:
/// a supervisor it may have cloned first gets EOF instead of a plan and exits).
fn is_gone(e: nix::Error) -> bool {
    matches!(
        e,
        nix::Error::EPIPE | nix::Error::ECONNRESET | nix::Error::ENOTCONN
    )
}

enum Answer {
    Started(i32, OwnedFd),
    Failed(i32),
    Gone,
}

impl ForkServer {
    pub fn new(exe: &Path) -> Self {
        ForkServer {
            exe: exe.to_path_buf(),
            conn: Mutex::new(None),
        }
    }

    /// Pid of the running server, if one runs (for tests).
    #[cfg(test)]
    pub fn pid(&self) -> Option<u32> {
        let mut conn = self.conn.lock().expect("fork server lock");
        let c = conn.as_mut()?;
        matches!(c.child.try_wait(), Ok(None)).then(|| c.child.id())
    }

    fn start(&self) -> Result<Conn, ForkServerError> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| ForkServerError::Start {
            exe: self.exe.clone(),
            source: e.into(),
        })?;
        use std::os::unix::process::CommandExt;
        let child = std::process::Command::new(&self.exe)
            .arg0(super::HELPER_ARGV0)
            .arg(FORKSERVER_MODE)
            .env_clear()
            .env("GLIBC_TUNABLES", MALLOC_TUNABLES)
            .stdin(std::process::Stdio::from(theirs))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            // Not in the plugin's process group: a terminal's ^C (`run`) is for the plugin.
            .process_group(0)
            .spawn()
            .map_err(|source| ForkServerError::Start {
                exe: self.exe.clone(),
                source,
            })?;
        Ok(Conn {
            child,
            sock: ours,
            clones: 0,
        })
    }

    /// Starts the server unless it runs. Blocking (a fork and exec). The plugin calls it at
    /// SetConfig, so that the server exists before the first task: a process that appears
    /// outside the task's cgroup during StartTask looks like a task process that escaped.
    pub fn warm(&self) -> Result<(), ForkServerError> {
        let mut conn = self.conn.lock().expect("fork server lock");
        if let Some(c) = conn.as_mut() {
            if matches!(c.child.try_wait(), Ok(None)) {
                return Ok(());
            }
        }
        *conn = Some(self.start()?);
        Ok(())
    }

    /// The number of supervisors the running server has cloned (None: no server), to pass to
    /// [`ForkServer::stop_if_idle`] after [`IDLE`].
    pub fn clones(&self) -> Option<u64> {
        self.conn
            .lock()
            .expect("fork server lock")
            .as_ref()
            .map(|c| c.clones)
    }

    /// Ends the server if it has cloned nothing since it had cloned `seen` (no request came
    /// meanwhile) and reaps it; its supervisors do not depend on it. Blocking, briefly: the
    /// server exits as soon as its socket closes.
    pub fn stop_if_idle(&self, seen: u64) {
        let mut conn = self.conn.lock().expect("fork server lock");
        if conn.as_ref().is_some_and(|c| c.clones == seen) {
            drop(conn.take());
        }
    }

    /// Clones a supervisor for `req`: its pid and pidfd. Blocking: call it on a blocking thread.
    pub fn spawn(&self, req: &Request<'_>) -> Result<(i32, OwnedFd), ForkServerError> {
        let mut conn = self.conn.lock().expect("fork server lock");
        for _ in 0..2 {
            if let Some(c) = conn.as_mut() {
                if !matches!(c.child.try_wait(), Ok(None)) {
                    *conn = None;
                }
            }
            let c = match conn.as_mut() {
                Some(c) => c,
                None => conn.insert(self.start()?),
            };
            match ask(c.sock.as_raw_fd(), req)? {
                Answer::Started(pid, pidfd) => {
                    c.clones += 1;
                    return Ok((pid, pidfd));
                }
                Answer::Failed(errno) => {
                    return Err(ForkServerError::Clone(std::io::Error::from_raw_os_error(
                        errno,
                    )))
                }
                Answer::Gone => *conn = None,
            }
        }
        Err(ForkServerError::Died)
    }
}

fn ask(sock: RawFd, req: &Request<'_>) -> Result<Answer, ForkServerError> {
    let flags =
        if req.host_pid { FLAG_HOST_PID } else { 0 } | if req.host_ipc { FLAG_HOST_IPC } else { 0 };
    let header = [MAGIC, VERSION, flags, 0];
    let fds: [RawFd; FDS] = [
        req.stdin.as_raw_fd(),
        req.stdout.as_raw_fd(),
        req.stderr.as_raw_fd(),
        req.cgroup_dir.as_raw_fd(),
        req.state_dir.as_raw_fd(),
        req.plan.as_raw_fd(),
    ];
    let sent = sendmsg::<()>(
        sock,
        &[IoSlice::new(&header)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    );
    match sent {
        Ok(_) => {}
        Err(e) if is_gone(e) => return Ok(Answer::Gone),
        Err(e) => return Err(ForkServerError::Talk(e)),
    }
    let mut reply = [0u8; 8];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let (n, pidfd) = loop {
        let mut iov = [IoSliceMut::new(&mut reply)];
        match recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(msg) => {
                let mut pidfd = None;
                for c in msg.cmsgs().map_err(ForkServerError::Talk)? {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        for fd in fds {
                            let owned = own(fd);
                            pidfd.get_or_insert(owned);
                        }
                    }
                }
                break (msg.bytes, pidfd);
            }
            Err(nix::Error::EINTR) => continue,
            Err(e) if is_gone(e) => return Ok(Answer::Gone),
            Err(e) => return Err(ForkServerError::Talk(e)),
        }
    };
    if n == 0 {
        return Ok(Answer::Gone);
    }
    let pid = i32::from_ne_bytes(reply[..4].try_into().expect("4 bytes"));
    let errno = i32::from_ne_bytes(reply[4..].try_into().expect("4 bytes"));
    match (n, pid, pidfd) {
        (8, pid, Some(fd)) if pid > 0 => Ok(Answer::Started(pid, fd)),
        (8, _, _) if errno > 0 => Ok(Answer::Failed(errno)),
        _ => Ok(Answer::Failed(libc::EPROTO)),
    }
}

/// Takes ownership of a descriptor the kernel just passed us with `SCM_RIGHTS`.
fn own(fd: RawFd) -> OwnedFd {
    sys::own_received_fd(fd)
}

/// `nomad-pledge-driver __forkserver`: serve requests on stdin until it closes.
pub fn server_main() -> i32 {
    // Supervisors are cloned from this process: nothing the plugin inherited reaches them.
    sys::close_inherited_fds();
    sys::name_helper();
    if let Err(e) = sys::set_undumpable() {
        eprintln!("nomad-pledge-driver fork server: cannot make itself undumpable: {e}");
        return 2;
    }
    sys::ignore_sigchld_and_sigpipe();
    // Its start-up's code and heap are not needed again: each supervisor maps what it runs.
    let _ = sys::drop_unwritten_file_pages();
    sys::malloc_trim();
    let sock: RawFd = 0;
    if nix::sys::socket::getsockopt(&sys::borrow_fd(sock), nix::sys::socket::sockopt::SockType)
        != Ok(SockType::SeqPacket)
    {
        eprintln!("nomad-pledge-driver {FORKSERVER_MODE}: stdin is not the executor's socket (internal mode used by the executor)");
        return 2;
    }
    loop {
        let mut header = [0u8; 4];
        let mut space = nix::cmsg_space!([RawFd; FDS]);
        let mut iov = [IoSliceMut::new(&mut header)];
        let msg = match recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        {
            Ok(m) => m,
            Err(nix::Error::EINTR) => continue,
            Err(_) => return 0,
        };
        let n = msg.bytes;
        let mut fds: [Option<OwnedFd>; FDS] = Default::default();
        let mut count = 0;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(got) = c {
                    for fd in got {
                        let owned = own(fd);
                        if count < FDS {
                            fds[count] = Some(owned);
                        }
                        count += 1;
                    }
                }
            }
        }
        if n == 0 {
            return 0;
        }
        let reply = if n != 4 || header[0] != MAGIC || header[1] != VERSION || count != FDS {
            (0, libc::EPROTO, None)
        } else {
            let fds: [OwnedFd; FDS] = fds.map(|f| f.expect("FDS descriptors"));
            serve(&fds, header[2])
        };
        let bytes: Vec<u8> = reply
            .0
            .to_ne_bytes()
            .into_iter()
            .chain(reply.1.to_ne_bytes())
            .collect();
        let pidfd = reply.2.as_ref().map(|f| f.as_raw_fd());
        let pidfds: Vec<RawFd> = pidfd.into_iter().collect();
        let cmsg = [ControlMessage::ScmRights(&pidfds)];
        let cmsgs: &[ControlMessage] = if pidfds.is_empty() { &[] } else { &cmsg };
        if sendmsg::<()>(
            sock,
            &[IoSlice::new(&bytes)],
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .is_err()
        {
            return 0;
        }
    }
}

/// Clones one supervisor; in the clone, runs it and never returns.
fn serve(fds: &[OwnedFd; FDS], flags: u8) -> (i32, i32, Option<OwnedFd>) {
    let [stdin, stdout, stderr, cgroup, state_dir, plan] = fds;
    match sys::clone_into_cgroup(
        cgroup.as_raw_fd(),
        flags & FLAG_HOST_PID != 0,
        flags & FLAG_HOST_IPC != 0,
    ) {
        Ok(sys::Cloned::Child) => {
            let code = match sys::become_supervisor(&[
                stdin.as_raw_fd(),
                stdout.as_raw_fd(),
                stderr.as_raw_fd(),
                plan.as_raw_fd(),
            ]) {
                // fd 3 is now the plan pipe; every other descriptor is closed.
                Ok(()) => super::supervisor::forked_main(own(3)),
                Err(e) => {
                    // stderr may already be the task's: say it there.
                    eprintln!("nomad-pledge-driver supervisor: cannot set itself up: {e}");
                    127
                }
            };
            sys::exit_now(code)
        }
        Ok(sys::Cloned::Parent { pid, pidfd }) => {
            record_supervisor(state_dir, pid);
            (pid, 0, Some(pidfd))
        }
        Err(e) => (0, e.raw_os_error().unwrap_or(libc::EIO), None),
    }
}

/// Writes `<state dir>/supervisor` (pid and start time), which identifies the supervisor of a
/// task even when the plugin that asked for it died before it learnt the pid.
fn record_supervisor(state_dir: &OwnedFd, pid: i32) {
    let start = state::proc_start_time(pid).unwrap_or(0);
    let _ = state::write_supervisor_record_at(state_dir, pid, start);
}

impl From<ForkServerError> for std::io::Error {
    fn from(e: ForkServerError) -> Self {
        match e {
            ForkServerError::Clone(e) => e,
            other => std::io::Error::other(other.to_string()),
        }
    }
}
