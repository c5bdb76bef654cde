//! The recorder's side of learn mode: serve the learn filter's listener, record what each
//! notified call needed, and let it continue.
//!
//! Paths are read from the caller's memory (`/proc/TID/mem`) and resolved against its
//! descriptor or working directory (`/proc/TID/fd/N`, `/proc/TID/cwd`), then with symlinks
//! resolved (Landlock checks the file reached, not the name used). The recorder must be able
//! to read the caller's memory: the `pledge` process is the program's parent (same user), the
//! task's recorder is root.

use std::ffi::OsStr;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{path_call, PathCall, Perm, Record, BASE};
use crate::sandbox::seccomp::explain::{explain_with_pid, Verdict};
use crate::sandbox::seccomp::notify::{self, Notification};
use crate::sandbox::seccomp::policy;
use crate::sandbox::sys;

/// Longest path read from a caller's memory.
const PATH_MAX: usize = 4096;

/// Serve `listener` until no process uses the filter any more, or until `stop` becomes
/// readable (then what is already queued is still recorded). `launcher` is the PID (in our PID
/// namespace) whose first execve starts the program: that one is not recorded as needing
/// `exec`.
pub fn serve(listener: BorrowedFd<'_>, launcher: u32, stop: Option<BorrowedFd<'_>>) -> Record {
    let mut rec = Record::default();
    let mut launched = false;
    loop {
        let (ready, stopping) = match stop {
            Some(s) => match sys::poll_two(listener, s) {
                Ok(r) => r,
                Err(_) => break,
            },
            None => (true, false),
        };
        if stopping {
            while sys::poll_readable_now(listener)
                && answer(listener, launcher, &mut launched, &mut rec)
            {}
            break;
        }
        if !ready {
            continue;
        }
        match sys::poll_one(listener) {
            Ok(ev) if ev & libc::POLLIN != 0 => {
                answer(listener, launcher, &mut launched, &mut rec);
            }
            // POLLHUP: every process that had the filter is gone.
            _ => break,
        }
    }
    rec
}

/// Receive one notification, record it, let it continue. False when nothing could be received.
fn answer(listener: BorrowedFd<'_>, launcher: u32, launched: &mut bool, rec: &mut Record) -> bool {
    let n = match notify::receive(listener) {
        Ok(n) => n,
        // ENOENT: the caller died before we received it.
        Err(_) => return false,
    };
    let first = !*launched && n.pid == launcher && is_exec(n.nr);
    if first {
        *launched = true;
    } else {
        observe(&n, launcher, rec);
    }
    if notify::id_valid(listener, n.id) {
        let _ = notify::respond_continue(listener, n.id);
    }
    true
}

fn is_exec(nr: i32) -> bool {
    let nr = i64::from(nr);
    nr == libc::SYS_execve || nr == libc::SYS_execveat
}

/// Record what notification `n` needs (promises and path accesses).
pub fn observe(n: &Notification, launcher: u32, rec: &mut Record) {
    let nr = i64::from(n.nr);
    if let Some(call) = path_call(nr) {
        paths(n, call, e_name(nr), rec);
    }
    if is_exec(n.nr) {
        rec.exec = true;
        return;
    }
    let e = explain_with_pid(nr, &n.args, Some(launcher as i32));
    let name = e.syscall.unwrap_or("unknown");
    match &e.verdict {
        Verdict::NeedsPromise(alts) => {
            if alts.iter().any(|(p, _)| p.name() == BASE) {
                return;
            }
            // Terminal requests count too, even isatty() probes on a pipe: with `tty` they fail
            // with ENOTTY from the kernel (the same answer a non-terminal gives), without it they
            // are denials, and the rerun with the learned policy must see none.
            let mut names: Vec<String> = alts.iter().map(|(p, _)| p.name().to_string()).collect();
            names.sort();
            names.dedup();
            let key = format!("{name} [{}]", names.join(" "));
            if policy::UNVEILED_METADATA
                .iter()
                .any(|(m, fd_form)| *m == name && (fd_form.is_none() || n.args[1] != 0))
            {
                rec.warn(format!("{e}: with unveil on, the path form of {name} is always refused (Landlock cannot confine it): the program may fail there"));
            }
            rec.calls.entry(key).or_insert(names);
        }
        Verdict::ConditionNotMet(_) | Verdict::NoPromise => {
            rec.warn(format!("{e}"));
        }
        Verdict::AlwaysAllowed { .. } | Verdict::ForcedEnosys { .. } | Verdict::Killed => {}
    }
}

fn e_name(nr: i64) -> &'static str {
    crate::sandbox::syscalls::name(nr).unwrap_or("")
}

fn paths(n: &Notification, call: PathCall, name: &str, rec: &mut Record) {
    let r = Perm::R;
    let w = Perm::W;
    let c = Perm::C;
    match call {
        PathCall::Open { dirfd, path, flags } => {
            let flags = match flags {
                Some(i) => n.args[i] as i32,
                None => libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
            };
            if let Some(p) = resolve(n, dirfd, path) {
                open(rec, p, flags);
            }
        }
        PathCall::Openat2 => {
            let mut how = [0u8; 8];
            if read_mem(n.pid, n.args[2], &mut how) == Some(8) {
                let flags = u64::from_ne_bytes(how) as i32;
                if let Some(p) = resolve(n, Some(0), 1) {
                    open(rec, p, flags);
                }
            }
        }
        PathCall::Exec { dirfd, path } => {
            if let Some(p) = resolve(n, dirfd, path).and_then(|p| existing(&p)) {
                let prog = crate::sandbox::prepared::Program::classify(p.clone());
                // Landlock checks read as well as execute on the file the kernel opens for an
                // execve (measured: `x` alone fails with EACCES).
                let rx = Perm::R.union(Perm::X);
                rec.access(p, rx, false);
                if let Some(i) = prog.interpreter.and_then(|i| existing(&i)) {
                    // The kernel opens a script's interpreter for execution itself.
                    rec.access(i, rx, false);
                }
            }
        }
        PathCall::Entry { dirfd, path }
        | PathCall::Link {
            newdir: dirfd,
            new: path,
        } => {
            let Some(p) = resolve(n, dirfd, path) else {
                return;
            };
            // A creation of something that exists fails with EEXIST, a removal of something
            // missing with ENOENT, before Landlock is asked.
            let exists = std::fs::symlink_metadata(&p).is_ok();
            let removal = name.starts_with("unlink") || name == "rmdir";
            if exists != removal {
                return;
            }
            if let Some(d) = parent(&p) {
                rec.access(d, c, true);
            }
        }
        PathCall::Rename {
            olddir,
            old,
            newdir,
            new,
        } => {
            let a = resolve(n, olddir, old).and_then(|p| parent(&p));
            let b = resolve(n, newdir, new).and_then(|p| parent(&p));
            // Between directories Landlock also wants `refer`, which `r` on a directory gives.
            let extra = if a != b { r } else { Perm::default() };
            for d in [a, b].into_iter().flatten() {
                rec.access(d, c.union(extra), true);
            }
        }
        PathCall::Truncate { path } => {
            if let Some(p) = resolve(n, None, path).and_then(|p| existing(&p)) {
                rec.access(p, w, false);
            }
        }
    }
}

/// Record an `open` of `p` with `flags`.
fn open(rec: &mut Record, p: PathBuf, flags: i32) {
    if flags & libc::O_PATH != 0 {
        // Landlock checks nothing for O_PATH.
        return;
    }
    let mut perms = match flags & libc::O_ACCMODE {
        libc::O_RDONLY => Perm::R,
        libc::O_WRONLY => Perm::W,
        _ => Perm::R.union(Perm::W),
    };
    if flags & libc::O_TRUNC != 0 {
        perms = perms.union(Perm::W);
    }
    match existing(&p) {
        Some(real) => {
            let dir = real.is_dir();
            rec.access(real, perms, dir);
        }
        None if flags & libc::O_CREAT != 0 => {
            // A new file: created in its directory, then opened there.
            if let Some(d) = parent(&p) {
                rec.access(d, perms.union(Perm::C), true);
            }
        }
        // Fails with ENOENT under Landlock too.
        None => {}
    }
}

/// The path at argument `path` of `n`, made absolute against argument `dirfd` (None or
/// AT_FDCWD: the caller's working directory). Not canonical yet.
fn resolve(n: &Notification, dirfd: Option<usize>, path: usize) -> Option<PathBuf> {
    let mut buf = vec![0u8; PATH_MAX];
    let got = read_mem(n.pid, n.args[path], &mut buf)?;
    let end = buf[..got].iter().position(|b| *b == 0)?;
    let p = Path::new(OsStr::from_bytes(&buf[..end]));
    if p.is_absolute() {
        return Some(p.to_path_buf());
    }
    let base = match dirfd.map(|i| n.args[i] as i32) {
        None | Some(libc::AT_FDCWD) => format!("/proc/{}/cwd", n.pid),
        Some(fd) => format!("/proc/{}/fd/{fd}", n.pid),
    };
    let base = std::fs::read_link(base).ok()?;
    if p.as_os_str().is_empty() {
        // AT_EMPTY_PATH: the descriptor itself.
        return Some(base);
    }
    Some(base.join(p))
}

/// Read up to `buf.len()` bytes at `addr` of thread `pid`, a page at a time (a string may end
/// just before unmapped memory). Returns how many were read.
fn read_mem(pid: u32, addr: u64, buf: &mut [u8]) -> Option<usize> {
    const PAGE: u64 = 4096;
    let f = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut done = 0usize;
    while done < buf.len() {
        let at = addr.checked_add(done as u64)?;
        let room = (PAGE - at % PAGE) as usize;
        let want = room.min(buf.len() - done);
        match f.read_at(&mut buf[done..done + want], at) {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                let nul = buf[done..done + k].contains(&0);
                done += k;
                if nul {
                    break;
                }
            }
        }
    }
    (done > 0).then_some(done)
}

/// The canonical form of an existing `p`, with `/proc/PID/...` written `/proc/self/...` (the
/// rerun's process has another PID).
fn existing(p: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(p).ok()?;
    Some(proc_self(real))
}

/// The canonical directory `p` is (or would be) created in.
fn parent(p: &Path) -> Option<PathBuf> {
    let d = p.parent()?;
    let d = if d.as_os_str().is_empty() {
        Path::new("/")
    } else {
        d
    };
    existing(d)
}

/// `/proc/1234/x` → `/proc/self/x`.
pub fn proc_self(p: PathBuf) -> PathBuf {
    let mut it = p.components();
    let (Some(root), Some(proc_), Some(pid)) = (it.next(), it.next(), it.next()) else {
        return p;
    };
    let is_pid = pid.as_os_str().as_bytes().iter().all(u8::is_ascii_digit);
    if root.as_os_str() == "/" && proc_.as_os_str() == "proc" && is_pid {
        let mut out = PathBuf::from("/proc/self");
        out.extend(it);
        return out;
    }
    p
}

/// The test hook behind `observe`, for unit tests: the listener's fd is unused.
#[cfg(test)]
pub(crate) fn observe_for_test(n: &Notification, rec: &mut Record) {
    observe(n, std::process::id(), rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notif(nr: i64, args: [u64; 6]) -> Notification {
        Notification {
            id: 0,
            pid: std::process::id(),
            nr: nr as i32,
            arch: 0,
            instruction_pointer: 0,
            args,
        }
    }

    #[test]
    fn proc_pid_becomes_proc_self() {
        assert_eq!(
            proc_self("/proc/42/fd/3".into()),
            PathBuf::from("/proc/self/fd/3")
        );
        assert_eq!(
            proc_self("/proc/sys/kernel".into()),
            PathBuf::from("/proc/sys/kernel")
        );
        assert_eq!(proc_self("/etc/x".into()), PathBuf::from("/etc/x"));
    }

    #[test]
    fn observes_promises_and_paths_from_our_own_memory() {
        let mut rec = Record::default();
        // socket(AF_INET, SOCK_STREAM, 0): inet (or anet) needed.
        observe_for_test(&notif(libc::SYS_socket, [2, 1, 0, 0, 0, 0]), &mut rec);
        assert!(
            rec.calls.values().any(|v| v.contains(&"inet".to_string())),
            "{rec:?}"
        );
        // openat(AT_FDCWD, "/etc/hostname"-like relative path, O_RDONLY), resolved against our cwd.
        let dir = std::env::temp_dir().join(format!("learn-observe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f"), b"x").unwrap();
        let abs = std::ffi::CString::new(dir.join("f").as_os_str().as_bytes()).unwrap();
        observe_for_test(
            &notif(
                libc::SYS_openat,
                [
                    libc::AT_FDCWD as u64,
                    abs.as_ptr() as u64,
                    libc::O_RDONLY as u64,
                    0,
                    0,
                    0,
                ],
            ),
            &mut rec,
        );
        let real = std::fs::canonicalize(dir.join("f")).unwrap();
        assert_eq!(
            rec.paths.get(&real).map(String::as_str),
            Some("r"),
            "{rec:?}"
        );
        assert!(rec.calls.keys().any(|k| k.starts_with("openat")), "{rec:?}");
        // A new file: `wc` on its directory.
        let new = std::ffi::CString::new(dir.join("new").as_os_str().as_bytes()).unwrap();
        observe_for_test(
            &notif(
                libc::SYS_openat,
                [
                    libc::AT_FDCWD as u64,
                    new.as_ptr() as u64,
                    (libc::O_WRONLY | libc::O_CREAT) as u64,
                    0o644,
                    0,
                    0,
                ],
            ),
            &mut rec,
        );
        let real_dir = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(
            rec.paths.get(&real_dir).map(String::as_str),
            Some("wc"),
            "{rec:?}"
        );
        assert!(rec.dirs.contains(&real_dir));
        // A missing file opened for reading: nothing (ENOENT either way).
        let gone = std::ffi::CString::new(dir.join("gone").as_os_str().as_bytes()).unwrap();
        let before = rec.paths.len();
        observe_for_test(
            &notif(
                libc::SYS_openat,
                [libc::AT_FDCWD as u64, gone.as_ptr() as u64, 0, 0, 0, 0],
            ),
            &mut rec,
        );
        assert_eq!(rec.paths.len(), before);
        // A later execve: exec and x on the program.
        let sh = std::ffi::CString::new("/bin/sh").unwrap();
        observe_for_test(
            &notif(libc::SYS_execve, [sh.as_ptr() as u64, 0, 0, 0, 0, 0]),
            &mut rec,
        );
        assert!(rec.exec);
        let real_sh = std::fs::canonicalize("/bin/sh").unwrap();
        assert_eq!(rec.paths[&real_sh], "rx");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
