//! The executor's only `unsafe` code: raw syscalls the safe wrappers do not cover (clone3 with
//! CLONE_INTO_CGROUP and CLONE_PIDFD in the fork server, pidfd_open, pidfd_send_signal,
//! waitid(P_PIDFD), fork in the single-threaded supervisor, signal dispositions, setpriority,
//! close_range, malloc_trim, mallopt, madvise of the plugin's unwritten file pages, PR_SET_DUMPABLE,
//! PIDFD_GET_MNT_NAMESPACE).

// One of the three modules allowed `unsafe` (see the crate docs in src/lib.rs).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `struct clone_args` (linux/sched.h, version 2 with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_NEWNS: u64 = 0x0002_0000;
const CLONE_NEWIPC: u64 = 0x0800_0000;
const CLONE_NEWPID: u64 = 0x2000_0000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What [`clone_into_cgroup`] returned in this process.
pub enum Cloned {
    /// We are the new process (PID 1 of its namespaces unless `host_pid`).
    Child,
    Parent {
        pid: i32,
        pidfd: OwnedFd,
    },
}

/// `clone3(CLONE_INTO_CGROUP | CLONE_PIDFD | CLONE_NEWNS [| CLONE_NEWPID] [| CLONE_NEWIPC])`
/// without exec: the fork server's way of starting a supervisor, which then shares the fork
/// server's pages copy-on-write. The child has no parent-death signal and reports to nobody
/// (the fork server ignores SIGCHLD, so the kernel reaps it).
///
/// Only the single-threaded fork server calls this: the child then runs ordinary code.
pub fn clone_into_cgroup(cgroup_dir: RawFd, host_pid: bool, host_ipc: bool) -> io::Result<Cloned> {
    let mut pidfd: libc::c_int = -1;
    let args = CloneArgs {
        flags: CLONE_PIDFD
            | CLONE_INTO_CGROUP
            | CLONE_NEWNS
            | if host_pid { 0 } else { CLONE_NEWPID }
            | if host_ipc { 0 } else { CLONE_NEWIPC },
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup_dir as u64,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM has fork semantics: the child gets a copy of our memory and
    // only the calling thread. The caller (the fork server) is single-threaded, so no lock can be
    // held by a thread that does not exist in the child, and the child may run ordinary code.
    // `args` and `pidfd` outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        0 => Ok(Cloned::Child),
        r if r < 0 => Err(io::Error::last_os_error()),
        pid => Ok(Cloned::Parent {
            pid: pid as i32,
            // SAFETY: CLONE_PIDFD was set and clone3 succeeded, so the kernel stored a new
            // descriptor that nothing else owns in `pidfd`.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// First steps of a supervisor cloned by the fork server: every signal blocked with its default
/// disposition (the fork server ignores SIGCHLD and SIGPIPE; the supervisor takes signals with
/// sigwait, and a stop signal sent before it does so stays pending), `fds` moved to 0, 1, 2, 3...
/// in order, every other descriptor closed (the fork server's socket included), a new session.
pub fn become_supervisor(fds: &[RawFd]) -> io::Result<()> {
    let all = nix::sys::signal::SigSet::all();
    nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&all), None)?;
    default_signal_dispositions();
    // Move every fd above the targets first, so that one move never overwrites a source.
    let base = 3 + fds.len() as RawFd;
    let mut high = Vec::with_capacity(fds.len());
    for &fd in fds {
        // SAFETY: F_DUPFD_CLOEXEC takes an integer and only creates a new descriptor.
        let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, base) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        high.push(r);
    }
    for (target, &fd) in high.iter().enumerate() {
        // SAFETY: dup2 only replaces descriptor `target` (not inherited by the task: the child
        // sets its own 0-2 and everything above is close-on-exec or closed below).
        if unsafe { libc::dup2(fd, target as RawFd) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    close_from(fds.len() as RawFd);
    nix::unistd::setsid()?;
    Ok(())
}

/// Closes every descriptor above stdio: the first step of a helper mode (`__exec`,
/// `__forkserver`), which must not hand anything its parent inherited (without close-on-exec,
/// from Nomad or whatever started the plugin) to the tasks it starts.
pub fn close_inherited_fds() {
    close_from(3);
}

/// What `ps` shows for a helper mode: the driver's name (it is exec'd as `/proc/PID/exe`,
/// which would make its name `exe`) and argv[0] is set by the spawner.
pub fn name_helper() {
    let _ = nix::sys::prctl::set_name(c"nomad-pledge-dr");
}

/// Closes every descriptor from `first` up (`close_range`, or one by one on old kernels).
fn close_from(first: RawFd) {
    // SAFETY: close_range takes integers; it only closes descriptors of this process, which the
    // callers (a freshly cloned supervisor, a helper mode before it opens anything) own and no
    // Rust object holds.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, 0u32) };
    if r < 0 {
        for fd in first..4096 {
            // SAFETY: as above; closing an unused number fails harmlessly with EBADF.
            unsafe { libc::close(fd) };
        }
    }
}

/// Makes this process undumpable: no core dumps, `/proc/<pid>/` owned by root, and
/// `ptrace` (and `process_vm_readv`, `pidfd_getfd`) need CAP_SYS_PTRACE even for root.
/// Inherited by the fork server's supervisors.
pub fn set_undumpable() -> io::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes an integer flag and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ignores SIGCHLD (the kernel reaps our children) and SIGPIPE (writes to a closed socket fail
/// with EPIPE instead): the fork server's dispositions.
pub fn ignore_sigchld_and_sigpipe() {
    for sig in [libc::SIGCHLD, libc::SIGPIPE] {
        // SAFETY: SIG_IGN installs no handler code.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
}

/// `malloc_trim(0)`: hands the heap's free pages back to the kernel (glibc also releases the
/// free pages in the middle of the heap), so a long-running supervisor keeps only what it uses.
pub fn malloc_trim() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe { libc::malloc_trim(0) };
}

/// `mallopt(M_ARENA_MAX, n)`: at most `n` malloc arenas, whatever the number of threads.
/// False when glibc refused it.
pub fn set_malloc_arena_max(n: i32) -> bool {
    // SAFETY: mallopt only sets one of the allocator's parameters.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, n) == 1 }
}

/// Drops this process's page-table entries for the pages of its read-only private file
/// mappings (code and read-only data of the binary and its libraries) that hold no page of
/// their own: the kernel maps such pages from the page cache, 64 KiB around each fault
/// ("fault-around"), so after start-up most of the binary is mapped although little of it
/// runs again. The next access maps the same bytes again from the file (a minor fault).
/// Returns the KiB that were mapped. Mappings with a copy-on-write page (relocated
/// read-only data, a debugger's breakpoint), a swapped-out one, or write permission are left
/// alone.
pub fn drop_unwritten_file_pages() -> io::Result<u64> {
    // Read line by line: the whole text is tens of KiB, which the supervisor's heap would
    // keep after its trim.
    let smaps = std::io::BufReader::new(std::fs::File::open("/proc/self/smaps")?);
    let mut dropped = 0;
    for m in file_mappings(smaps)? {
        if m.writable || m.shared || m.anonymous_kib != 0 || m.swap_kib != 0 || m.rss_kib == 0 {
            continue;
        }
        // SAFETY: [start, end) is a whole private, read-only mapping of a file with no
        // anonymous (copy-on-write) or swapped page, so every page in it holds exactly the
        // file's bytes and MADV_DONTNEED only unmaps them: the next access reads the same
        // bytes from the file (as after the kernel reclaimed them). Neither caller (the
        // plugin, a supervisor) unmaps a file mapping or unloads a library (glibc never
        // unloads its NSS modules), so the range read from /proc/self/smaps is still that
        // mapping.
        let r = unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            )
        };
        if r == 0 {
            dropped += m.rss_kib;
        }
    }
    Ok(dropped)
}

/// [`drop_unwritten_file_pages`] for the executable code alone, found in /proc/self/maps: a
/// small fraction of its cost (smaps walks every page of every mapping to count it), for the
/// supervisor, which runs it while the task's command starts.
pub fn drop_code_pages() -> io::Result<()> {
    let maps = std::io::BufReader::new(std::fs::File::open("/proc/self/maps")?);
    for m in file_mappings(maps)? {
        if !m.executable || m.writable || m.shared {
            continue;
        }
        // SAFETY: [start, end) is a whole private, read-only, executable mapping of a file.
        // Its pages hold exactly the file's bytes: the binary and libc have no text
        // relocations and this process never makes its code writable, so no page of it has
        // a private copy (only a tracer's breakpoint could make one, which needs
        // CAP_SYS_PTRACE, supervisors being undumpable, and would just be dropped). So
        // MADV_DONTNEED only unmaps them and the next access reads the same bytes from the
        // file. The process is single-threaded and unmaps nothing, so the range read from
        // /proc/self/maps is still that mapping.
        unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            )
        };
    }
    Ok(())
}

/// One file-backed mapping of `/proc/self/smaps`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct FileMapping {
    start: usize,
    end: usize,
    writable: bool,
    executable: bool,
    shared: bool,
    rss_kib: u64,
    anonymous_kib: u64,
    swap_kib: u64,
}

#[cfg(test)]
impl FileMapping {
    pub(crate) fn for_test(
        start: usize,
        end: usize,
        perms: &str,
        rss_kib: u64,
        anonymous_kib: u64,
    ) -> FileMapping {
        let p = perms.as_bytes();
        FileMapping {
            start,
            end,
            writable: p[1] == b'w',
            executable: p[2] == b'x',
            shared: p[3] == b's',
            rss_kib,
            anonymous_kib,
            swap_kib: 0,
        }
    }
}

/// The file-backed mappings (inode not 0) of a `/proc/PID/smaps` (or `maps`) text; a line that does not
/// parse ends the current mapping without it.
pub(crate) fn file_mappings(mut smaps: impl std::io::BufRead) -> io::Result<Vec<FileMapping>> {
    let mut out = Vec::new();
    let mut cur: Option<FileMapping> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if smaps.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if let Some(m) = mapping_header(line) {
            out.extend(cur.take());
            cur = m;
            continue;
        }
        let Some(m) = cur.as_mut() else { continue };
        let Some((key, rest)) = line.split_once(':') else {
            cur = None;
            continue;
        };
        let kib = rest.split_whitespace().next().and_then(|v| v.parse().ok());
        let field = match key {
            "Rss" => &mut m.rss_kib,
            "Anonymous" => &mut m.anonymous_kib,
            "Swap" => &mut m.swap_kib,
            _ => continue,
        };
        match kib {
            Some(v) => *field = v,
            None => cur = None,
        }
    }
    out.extend(cur);
    Ok(out)
}

/// `start-end perms offset dev inode [path]`: Some(Some(mapping)) for a file mapping,
/// Some(None) for another mapping, None for a field line.
fn mapping_header(line: &str) -> Option<Option<FileMapping>> {
    let mut f = line.split_whitespace();
    let (start, end) = f.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = f.next()?.as_bytes();
    let (_offset, _dev) = (f.next()?, f.next()?);
    let inode: u64 = f.next()?.parse().ok()?;
    if perms.len() != 4 || end <= start {
        return None;
    }
    Some((inode != 0).then_some(FileMapping {
        start,
        end,
        writable: perms[1] == b'w',
        executable: perms[2] == b'x',
        shared: perms[3] == b's',
        ..FileMapping::default()
    }))
}

/// Takes ownership of a descriptor the kernel just installed for us (`SCM_RIGHTS`), or of a
/// descriptor [`become_supervisor`] moved into place.
pub fn own_received_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the callers pass a descriptor that was just created for this process and that
    // nothing else owns (received in a control message, or dup2'ed by `become_supervisor`).
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Borrows descriptor `fd`, which stays open for the life of the process (the fork server's
/// socket on stdin).
pub fn borrow_fd(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: the only caller borrows fd 0, which the fork server never closes.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// `pidfd_open(pid, 0)`.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`: cannot hit a reused pid.
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall; a null siginfo is allowed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `PIDFD_GET_MNT_NAMESPACE` (linux/pidfd.h: `_IO(0xFF, 3)`, Linux 6.11).
const PIDFD_GET_MNT_NAMESPACE: libc::c_ulong = 0xFF03;

/// A descriptor of the mount namespace of the running process behind `pidfd` (whose pid is
/// `pid`): `ioctl(PIDFD_GET_MNT_NAMESPACE)`, or on kernels without it `/proc/PID/ns/mnt`
/// checked afterwards against the pidfd (a pid reused before the open is never taken).
pub fn mount_namespace_of(pidfd: &OwnedFd, pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: the ioctl takes no argument and returns a new descriptor (or -1); `pidfd` is open.
    let fd = unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_MNT_NAMESPACE as _, 0) };
    if fd >= 0 {
        // SAFETY: the kernel returned a new file descriptor that nothing else owns.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let e = io::Error::last_os_error();
    if !matches!(e.raw_os_error(), Some(libc::ENOTTY | libc::EINVAL)) {
        return Err(e);
    }
    mount_namespace_from_proc(pidfd, pid)
}

/// [`mount_namespace_of`] on kernels without `PIDFD_GET_MNT_NAMESPACE`.
pub fn mount_namespace_from_proc(pidfd: &OwnedFd, pid: i32) -> io::Result<OwnedFd> {
    let ns: OwnedFd = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))?.into();
    // The pid is only freed once the process is reaped, and a zombie has no namespaces to
    // open: if the pidfd's process still exists now, the file opened was its own.
    pidfd_send_signal(pidfd, 0)?;
    Ok(ns)
}

/// Reaps the process behind `pidfd` if it is our exited child (ECHILD otherwise is ignored).
pub fn reap_pidfd(pidfd: &OwnedFd) {
    // SAFETY: `info` is a valid out-pointer; waitid(P_PIDFD) with WNOHANG never blocks.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        );
    }
}

/// `fork()` for the single-threaded supervisor.
/// Makes orphaned descendants of this process its children (the supervisor outside a PID
/// namespace of its own, `pid_mode = "host"`, still reaps everything the task leaves).
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn fork_single_threaded() -> io::Result<nix::unistd::ForkResult> {
    // SAFETY: only the supervisor calls this; it is a single-threaded process (no runtime, no
    // threads were started), so the child may run ordinary code before exec.
    unsafe { nix::unistd::fork() }.map_err(io::Error::from)
}

/// Resets every catchable signal to its default disposition (before exec of the task).
pub fn default_signal_dispositions() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: setting SIG_DFL installs no handler code.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// `setpriority(PRIO_PROCESS, 0, nice)`.
pub fn set_nice(nice: i32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `_exit(code)`: leave a forked child without running atexit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// Registers a pidfd with the tokio reactor (readable = the process exited).
pub fn watch_pidfd(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` owns a valid open descriptor, keeps it open until dropped, and always
    // returns the same number from `as_raw_fd`; the AsyncFd takes ownership of it.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)
}

/// `ioctl(fd, TIOCSCTTY, 0)`: makes the terminal on `fd` the controlling tty of this session
/// leader (the exec'd process after `setsid`).
pub fn set_controlling_tty(fd: RawFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument; an invalid fd only yields an error.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioctl(fd, TIOCSWINSZ, {rows, cols})` on a pty master.
pub fn set_window_size(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer, which outlives the call.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws as *const libc::winsize) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Is `fd` a seccomp user-notification listener? Asked of the descriptor itself (a listener
/// answers `SECCOMP_IOCTL_NOTIF_ID_VALID` for an unknown id with ENOENT, anything else with
/// ENOTTY or EINVAL), not through `/proc/self/fd`: an exec session's helper has joined the
/// task's mount namespace, whose `/proc` belongs to the task's PID namespace, where the helper
/// has no `/proc/self`.
pub fn is_seccomp_listener(fd: &OwnedFd) -> bool {
    use std::os::fd::AsFd;
    match crate::sandbox::sys::seccomp_notif_id_valid(fd.as_fd(), 0) {
        Ok(()) => true,
        Err(e) => e.raw_os_error() == Some(libc::ENOENT),
    }
}
