//! pledge-probe: perform one named operation and print `OK` or the errno name (`EPERM`,
//! `EACCES`, ...) on stdout. Run under `nomad-pledge-driver pledge` by the sandbox tests to check
//! the sandbox from inside (style.md item 11). Exit status 0 whatever the outcome, 2 on bad usage.
//!
//! Usage: `pledge-probe OP [ARGS...]`; `pledge-probe help` lists the operations.
//!
//! `unsafe` is allowed in this whole file: a probe must issue exactly the raw syscall under test
//! (often with arguments no safe wrapper would pass, e.g. `mprotect(PROT_EXEC)`, `tkill`,
//! `migrate_pages`), and it is a separate test-helper binary, not part of the library, whose
//! `unsafe` stays fenced in its `sys` modules.

#![allow(
    unsafe_code,
    reason = "a raw-syscall probe for the sandbox tests; see the file docs"
)]

use std::ffi::CString;
use std::io::Write;

const OPS: &str = "\
noop                    print OK
read PATH               open O_RDONLY and read
write PATH              open O_WRONLY (no create, no trunc) and write one byte
append PATH             open O_WRONLY|O_APPEND and write one byte
create PATH             open O_WRONLY|O_CREAT|O_EXCL 0644
trunc PATH              open O_WRONLY|O_TRUNC
truncate PATH           truncate(2) to 0
unlink PATH             unlink(2)
mkdir PATH              mkdir(2) 0755
rmdir PATH              rmdir(2)
symlink TARGET LINK     symlink(2)
rename FROM TO          rename(2)
readdir PATH            open the directory and list it
stat PATH               stat(2)
exec PATH [ARGS...]     execve(2) (on success PATH runs instead)
mmap-anon-exec          mmap(PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS)
mmap-file-exec PATH     mmap(PROT_READ|PROT_EXEC, MAP_PRIVATE) of PATH
mprotect-exec           mprotect(PROT_READ|PROT_EXEC) of an anonymous page
fork                    fork(2); the child exits at once
socket-inet             socket(AF_INET, SOCK_STREAM)
socket-unix             socket(AF_UNIX, SOCK_STREAM)
connect HOST:PORT       TCP connect
bind PORT               TCP bind on 127.0.0.1:PORT
serve PORT              TCP bind + listen on 127.0.0.1:PORT, print OK, accept one connection
kill-self               kill(getpid(), 0)
kill-parent             kill(getppid(), 0)
setuid UID              setuid(2)
chmod PATH MODE         chmod(2), MODE in octal
setxattr PATH           setxattr(user.probe)
tcgets                  ioctl(0, TCGETS)
getpid                  getpid(2) (always allowed by stdio)
prlimit PID             prlimit64(PID, RLIMIT_NOFILE, {77, 77})
setpriority PID NICE    setpriority(PRIO_PROCESS, PID, NICE)
setpriority-pgrp NICE   setpriority(PRIO_PGRP, 0, NICE) (own process group)
setaffinity PID         sched_setaffinity(PID) to CPU 0 only
setscheduler PID        sched_setscheduler(PID, SCHED_BATCH)
setparam PID PRIO       sched_setparam(PID, PRIO)
ioprio PID              ioprio_set(IOPRIO_WHO_PROCESS, PID, IOPRIO_CLASS_IDLE)
migrate-pages PID       migrate_pages(PID, node 0 -> node 0)
robust-list PID         get_robust_list(PID)
kill PID SIG            kill(2)
tkill TID SIG           tkill(2)
tgkill TGID TID SIG     tgkill(2)
sigqueue PID SIG        rt_sigqueueinfo(2)
tgsigqueue TGID TID SIG rt_tgsigqueueinfo(2)
pidfd-signal PID SIG    pidfd_open(PID) then pidfd_send_signal(2)
chown PATH UID GID      chown(2)
lchown PATH UID GID     lchown(2)
fchownat PATH UID GID   fchownat(AT_FDCWD, PATH, UID, GID, 0)
fchown PATH UID GID     open O_RDONLY, then fchown(2)
fchmod PATH MODE        open O_RDONLY, then fchmod(2)
fchmodat PATH MODE      fchmodat(AT_FDCWD, PATH, MODE)
utimensat PATH          utimensat(AT_FDCWD, PATH, {1, 1}) (atime and mtime = 1 s)
utimes PATH             utimes(2) to 1 s
utime PATH              utime(2) to 1 s
futimesat PATH          futimesat(AT_FDCWD, PATH, 1 s)
futimens PATH           open O_RDONLY, then futimens (utimensat(fd, NULL, ...)) to 1 s
selfmem-patch           write a function's code through /proc/self/mem, call it, OK if patched
";

/// Operations that try to reach outside the sandbox (issue 12, Landlock seams).
const REACH_OPS: &str = "\
readback PATH           read up to 256 bytes of PATH and copy them to stderr
poke-mem PID ADDR       write 8 bytes at ADDR (hex) of PID through /proc/PID/mem
ptrace-attach PID       ptrace(PTRACE_ATTACH, PID)
unix-connect PATH       connect(2) an AF_UNIX stream socket to the socket file PATH
reach-helper FILE       wait for FILE to hold `PID ADDR`, then poke-mem, ptrace-attach and
                        kill -9 PID, then try socket(AF_INET) and execve(/bin/true);
                        prints `mem=E ptrace=E kill=E after=E exec=E`, then waits for
                        FILE.done
";

fn errno_name(e: i32) -> String {
    format!("{:?}", nix::errno::Errno::from_raw(e))
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn ret(r: libc::c_long) -> Result<libc::c_long, i32> {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r)
    }
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap_or_else(|_| usage("argument contains a NUL byte"))
}

fn usage(msg: &str) -> ! {
    eprintln!("pledge-probe: {msg}\nusage: pledge-probe OP [ARGS...]\n{OPS}{REACH_OPS}");
    std::process::exit(2)
}

fn open(path: &str, flags: i32) -> Result<i32, i32> {
    let p = cstr(path);
    // SAFETY: `p` is a valid C string for the duration of the call.
    ret(unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC, 0o644) } as libc::c_long)
        .map(|fd| fd as i32)
}

fn write_byte(fd: i32) -> Result<(), i32> {
    // SAFETY: writes one byte from a static buffer.
    ret(unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) } as libc::c_long).map(drop)
}

fn path_call(path: &str, f: impl FnOnce(*const libc::c_char) -> libc::c_int) -> Result<(), i32> {
    let p = cstr(path);
    ret(f(p.as_ptr()) as libc::c_long).map(drop)
}

fn run(op: &str, args: &[String]) -> Result<(), i32> {
    let arg = |i: usize| -> &str {
        args.get(i)
            .map(String::as_str)
            .unwrap_or_else(|| usage(&format!("{op}: missing argument {}", i + 1)))
    };
    match op {
        "noop" | "getpid" => {
            // SAFETY: getpid has no arguments.
            unsafe { libc::getpid() };
            Ok(())
        }
        "read" => {
            let fd = open(arg(0), libc::O_RDONLY)?;
            let mut b = [0u8; 16];
            // SAFETY: reads into a live 16-byte buffer.
            ret(unsafe { libc::read(fd, b.as_mut_ptr().cast(), b.len()) } as libc::c_long).map(drop)
        }
        "write" => write_byte(open(arg(0), libc::O_WRONLY)?),
        "append" => write_byte(open(arg(0), libc::O_WRONLY | libc::O_APPEND)?),
        "create" => open(arg(0), libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL).map(drop),
        "trunc" => open(arg(0), libc::O_WRONLY | libc::O_TRUNC).map(drop),
        // SAFETY (all path calls below): the pointer is a valid C string during the call.
        "truncate" => path_call(arg(0), |p| unsafe { libc::truncate(p, 0) }),
        "unlink" => path_call(arg(0), |p| unsafe { libc::unlink(p) }),
        "mkdir" => path_call(arg(0), |p| unsafe { libc::mkdir(p, 0o755) }),
        "rmdir" => path_call(arg(0), |p| unsafe { libc::rmdir(p) }),
        "stat" => path_call(arg(0), |p| {
            // SAFETY: `st` is a live, writable stat buffer.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            unsafe { libc::stat(p, &mut st) }
        }),
        "symlink" => {
            let t = cstr(arg(0));
            path_call(arg(1), |l| unsafe { libc::symlink(t.as_ptr(), l) })
        }
        "rename" => {
            let from = cstr(arg(0));
            path_call(arg(1), |to| unsafe { libc::rename(from.as_ptr(), to) })
        }
        "readdir" => std::fs::read_dir(arg(0))
            .and_then(|d| d.collect::<Result<Vec<_>, _>>())
            .map(drop)
            .map_err(|e| e.raw_os_error().unwrap_or(0)),
        "setxattr" => path_call(arg(0), |p| unsafe {
            libc::setxattr(p, c"user.probe".as_ptr(), b"1".as_ptr().cast(), 1, 0)
        }),
        "chmod" => {
            let mode = u32::from_str_radix(arg(1), 8).unwrap_or_else(|_| usage("bad mode"));
            path_call(arg(0), |p| unsafe { libc::chmod(p, mode) })
        }
        "exec" => {
            let path = cstr(arg(0));
            let argv: Vec<CString> = args.iter().map(|a| cstr(a)).collect();
            let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
            ptrs.push(std::ptr::null());
            // SAFETY: NULL-terminated argv of live C strings; `environ` is the process's own.
            unsafe { libc::execv(path.as_ptr(), ptrs.as_ptr()) };
            Err(last_errno())
        }
        "mmap-anon-exec" | "mprotect-exec" => {
            let prot = if op == "mmap-anon-exec" {
                libc::PROT_READ | libc::PROT_EXEC
            } else {
                libc::PROT_READ
            };
            // SAFETY: an anonymous private mapping touches no existing memory.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    prot,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(last_errno());
            }
            if op == "mprotect-exec" {
                // SAFETY: `p` is the page we just mapped and nobody else uses.
                return ret(
                    unsafe { libc::mprotect(p, 4096, libc::PROT_READ | libc::PROT_EXEC) }
                        as libc::c_long,
                )
                .map(drop);
            }
            Ok(())
        }
        "mmap-file-exec" => {
            let fd = open(arg(0), libc::O_RDONLY)?;
            // SAFETY: a new private read-only mapping of a file we opened.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_EXEC,
                    libc::MAP_PRIVATE,
                    fd,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                Err(last_errno())
            } else {
                Ok(())
            }
        }
        "fork" => {
            // SAFETY: the probe is single-threaded; the child only calls _exit.
            match unsafe { libc::fork() } {
                -1 => Err(last_errno()),
                0 => unsafe { libc::_exit(0) },
                pid => {
                    let mut st = 0;
                    // SAFETY: waits for our own child.
                    unsafe { libc::waitpid(pid, &mut st, 0) };
                    Ok(())
                }
            }
        }
        "socket-inet" | "socket-unix" => {
            let fam = if op == "socket-inet" {
                libc::AF_INET
            } else {
                libc::AF_UNIX
            };
            // SAFETY: integers only.
            ret(unsafe { libc::socket(fam, libc::SOCK_STREAM, 0) } as libc::c_long).map(drop)
        }
        "connect" => std::net::TcpStream::connect(arg(0))
            .map(drop)
            .map_err(|e| e.raw_os_error().unwrap_or(0)),
        "bind" => std::net::TcpListener::bind(("127.0.0.1", arg(0).parse().unwrap_or(0)))
            .map(drop)
            .map_err(|e| e.raw_os_error().unwrap_or(0)),
        "serve" => {
            let l = std::net::TcpListener::bind(("127.0.0.1", arg(0).parse().unwrap_or(0)))
                .map_err(|e| e.raw_os_error().unwrap_or(0))?;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "OK");
            let _ = out.flush();
            l.accept()
                .map(drop)
                .map_err(|e| e.raw_os_error().unwrap_or(0))
        }
        // SAFETY: integers only.
        "kill-self" => ret(unsafe { libc::kill(libc::getpid(), 0) } as libc::c_long).map(drop),
        "kill-parent" => ret(unsafe { libc::kill(libc::getppid(), 0) } as libc::c_long).map(drop),
        "setuid" => {
            let uid: u32 = arg(0).parse().unwrap_or_else(|_| usage("bad uid"));
            // SAFETY: integer only. (Raw syscall: glibc's setuid broadcasts to threads.)
            ret(unsafe { libc::syscall(libc::SYS_setuid, uid as libc::c_long) }).map(drop)
        }
        "tcgets" => {
            // SAFETY: `t` is a live termios buffer.
            let mut t: libc::termios = unsafe { std::mem::zeroed() };
            ret(unsafe { libc::ioctl(0, libc::TCGETS, &mut t) } as libc::c_long).map(drop)
        }
        "prlimit" => {
            let lim = libc::rlimit {
                rlim_cur: 77,
                rlim_max: 77,
            };
            // SAFETY: `lim` is a live rlimit; the old-limit pointer is NULL.
            ret(unsafe {
                libc::syscall(
                    libc::SYS_prlimit64,
                    num(arg(0)),
                    libc::RLIMIT_NOFILE,
                    &lim as *const libc::rlimit,
                    std::ptr::null_mut::<libc::rlimit>(),
                )
            })
            .map(drop)
        }
        // SAFETY (the raw calls below): integer arguments, or pointers to live local buffers.
        "setpriority" => ret(unsafe {
            libc::syscall(
                libc::SYS_setpriority,
                libc::PRIO_PROCESS,
                num(arg(0)),
                num(arg(1)),
            )
        })
        .map(drop),
        "setpriority-pgrp" => {
            ret(unsafe { libc::syscall(libc::SYS_setpriority, libc::PRIO_PGRP, 0, num(arg(0))) })
                .map(drop)
        }
        "setaffinity" => {
            let mask: u64 = 1;
            ret(unsafe {
                libc::syscall(
                    libc::SYS_sched_setaffinity,
                    num(arg(0)),
                    std::mem::size_of::<u64>(),
                    &mask as *const u64,
                )
            })
            .map(drop)
        }
        "setscheduler" => {
            let p = libc::sched_param { sched_priority: 0 };
            ret(unsafe {
                libc::syscall(
                    libc::SYS_sched_setscheduler,
                    num(arg(0)),
                    libc::SCHED_BATCH,
                    &p as *const libc::sched_param,
                )
            })
            .map(drop)
        }
        "setparam" => {
            let p = libc::sched_param {
                sched_priority: num(arg(1)) as i32,
            };
            ret(unsafe {
                libc::syscall(
                    libc::SYS_sched_setparam,
                    num(arg(0)),
                    &p as *const libc::sched_param,
                )
            })
            .map(drop)
        }
        "ioprio" => {
            const IOPRIO_WHO_PROCESS: libc::c_long = 1;
            const IDLE: libc::c_long = 3 << 13;
            ret(unsafe {
                libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, num(arg(0)), IDLE)
            })
            .map(drop)
        }
        "migrate-pages" => {
            let nodes: u64 = 1;
            ret(unsafe {
                libc::syscall(
                    libc::SYS_migrate_pages,
                    num(arg(0)),
                    64 as libc::c_long,
                    &nodes as *const u64,
                    &nodes as *const u64,
                )
            })
            .map(drop)
        }
        "robust-list" => {
            let mut head: usize = 0;
            let mut len: usize = 0;
            ret(unsafe {
                libc::syscall(
                    libc::SYS_get_robust_list,
                    num(arg(0)),
                    &mut head as *mut usize,
                    &mut len as *mut usize,
                )
            })
            .map(drop)
        }
        "kill" => ret(unsafe { libc::syscall(libc::SYS_kill, num(arg(0)), num(arg(1))) }).map(drop),
        "tkill" => {
            ret(unsafe { libc::syscall(libc::SYS_tkill, num(arg(0)), num(arg(1))) }).map(drop)
        }
        "tgkill" => {
            ret(unsafe { libc::syscall(libc::SYS_tgkill, num(arg(0)), num(arg(1)), num(arg(2))) })
                .map(drop)
        }
        "sigqueue" | "tgsigqueue" => {
            // SAFETY: a zeroed siginfo is a valid buffer; si_code SI_QUEUE as sigqueue(3) sends.
            let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
            si.si_code = -1; // SI_QUEUE
            if op == "sigqueue" {
                si.si_signo = num(arg(1)) as i32;
                ret(unsafe {
                    libc::syscall(
                        libc::SYS_rt_sigqueueinfo,
                        num(arg(0)),
                        num(arg(1)),
                        &si as *const libc::siginfo_t,
                    )
                })
                .map(drop)
            } else {
                si.si_signo = num(arg(2)) as i32;
                ret(unsafe {
                    libc::syscall(
                        libc::SYS_rt_tgsigqueueinfo,
                        num(arg(0)),
                        num(arg(1)),
                        num(arg(2)),
                        &si as *const libc::siginfo_t,
                    )
                })
                .map(drop)
            }
        }
        "pidfd-signal" => {
            let fd = ret(unsafe { libc::syscall(libc::SYS_pidfd_open, num(arg(0)), 0) })?;
            ret(unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd,
                    num(arg(1)),
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            })
            .map(drop)
        }
        "chown" | "lchown" | "fchownat" | "fchown" => {
            let (u, g) = (num(arg(1)) as u32, num(arg(2)) as u32);
            match op {
                "chown" => path_call(arg(0), |p| unsafe { libc::chown(p, u, g) }),
                "lchown" => path_call(arg(0), |p| unsafe { libc::lchown(p, u, g) }),
                "fchownat" => path_call(arg(0), |p| unsafe {
                    libc::syscall(libc::SYS_fchownat, libc::AT_FDCWD, p, u, g, 0) as libc::c_int
                }),
                _ => {
                    let fd = open(arg(0), libc::O_RDONLY)?;
                    ret(unsafe { libc::fchown(fd, u, g) } as libc::c_long).map(drop)
                }
            }
        }
        "fchmod" => {
            let mode = u32::from_str_radix(arg(1), 8).unwrap_or_else(|_| usage("bad mode"));
            let fd = open(arg(0), libc::O_RDONLY)?;
            ret(unsafe { libc::fchmod(fd, mode) } as libc::c_long).map(drop)
        }
        "fchmodat" => {
            let mode = u32::from_str_radix(arg(1), 8).unwrap_or_else(|_| usage("bad mode"));
            path_call(arg(0), |p| unsafe {
                libc::syscall(libc::SYS_fchmodat, libc::AT_FDCWD, p, mode) as libc::c_int
            })
        }
        "utimensat" | "futimens" => {
            let ts = [
                libc::timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                },
                libc::timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                },
            ];
            if op == "utimensat" {
                path_call(arg(0), |p| unsafe {
                    libc::syscall(libc::SYS_utimensat, libc::AT_FDCWD, p, ts.as_ptr(), 0)
                        as libc::c_int
                })
            } else {
                let fd = open(arg(0), libc::O_RDONLY)?;
                ret(unsafe {
                    libc::syscall(
                        libc::SYS_utimensat,
                        fd,
                        std::ptr::null::<libc::c_char>(),
                        ts.as_ptr(),
                        0,
                    )
                })
                .map(drop)
            }
        }
        "utimes" | "futimesat" => {
            let tv = [
                libc::timeval {
                    tv_sec: 1,
                    tv_usec: 0,
                },
                libc::timeval {
                    tv_sec: 1,
                    tv_usec: 0,
                },
            ];
            path_call(arg(0), |p| unsafe {
                if op == "utimes" {
                    libc::syscall(libc::SYS_utimes, p, tv.as_ptr()) as libc::c_int
                } else {
                    libc::syscall(libc::SYS_futimesat, libc::AT_FDCWD, p, tv.as_ptr())
                        as libc::c_int
                }
            })
        }
        "utime" => {
            let t = libc::utimbuf {
                actime: 1,
                modtime: 1,
            };
            path_call(arg(0), |p| unsafe {
                libc::syscall(libc::SYS_utime, p, &t as *const libc::utimbuf) as libc::c_int
            })
        }
        "selfmem-patch" => selfmem_patch(),
        "help" => {
            print!("{OPS}{REACH_OPS}");
            std::process::exit(0)
        }
        other => {
            reach(other, args).unwrap_or_else(|| usage(&format!("unknown operation `{other}`")))
        }
    }
}

/// A number argument (decimal, or negative; `self` = our own pid).
fn num(s: &str) -> libc::c_long {
    if s == "self" {
        // SAFETY: getpid has no arguments.
        return libc::c_long::from(unsafe { libc::getpid() });
    }
    s.parse()
        .unwrap_or_else(|_| usage(&format!("bad number `{s}`")))
}

/// The function `selfmem-patch` rewrites: returns 1 unless its code was changed.
#[inline(never)]
extern "C" fn patch_target() -> u32 {
    std::hint::black_box(1)
}

/// Overwrite `patch_target`'s (read-only, executable) code with `mov eax, 42; ret` through
/// /proc/self/mem and call it: Ok when the patched code ran (self-modifying code without
/// `prot_exec`), the errno of the open or write otherwise; EFAULT if the write "succeeded" but
/// the old code still runs.
fn selfmem_patch() -> Result<(), i32> {
    const CODE: [u8; 6] = [0xb8, 42, 0, 0, 0, 0xc3];
    let fd = open("/proc/self/mem", libc::O_RDWR)?;
    let addr = patch_target as extern "C" fn() -> u32 as usize;
    // SAFETY: pwrite from a live 6-byte buffer; the kernel writes into our own code page.
    ret(
        unsafe { libc::pwrite(fd, CODE.as_ptr().cast(), CODE.len(), addr as libc::off_t) }
            as libc::c_long,
    )?;
    let f: extern "C" fn() -> u32 = std::hint::black_box(patch_target);
    if f() == 42 {
        Ok(())
    } else {
        Err(libc::EFAULT)
    }
}

fn errno_of(r: Result<(), i32>) -> String {
    match r {
        Ok(()) => "OK".into(),
        Err(e) => errno_name(e),
    }
}

fn poke_mem(pid: &str, addr: &str) -> Result<(), i32> {
    let addr = u64::from_str_radix(addr.trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| usage("bad address"));
    let fd = open(&format!("/proc/{pid}/mem"), libc::O_RDWR)?;
    // SAFETY: writes 8 bytes from a static buffer through our own descriptor.
    ret(
        unsafe { libc::pwrite(fd, b"PLEDGE!!".as_ptr().cast(), 8, addr as libc::off_t) }
            as libc::c_long,
    )
    .map(drop)
}

fn ptrace_attach(pid: i32) -> Result<(), i32> {
    // SAFETY: integers only.
    ret(unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) }).map(drop)
}

fn kill(pid: i32, sig: i32) -> Result<(), i32> {
    // SAFETY: integers only.
    ret(unsafe { libc::kill(pid, sig) } as libc::c_long).map(drop)
}

/// The operations of [`REACH_OPS`]; `None` for an unknown name.
fn reach(op: &str, args: &[String]) -> Option<Result<(), i32>> {
    let arg = |i: usize| -> &str {
        args.get(i)
            .map(String::as_str)
            .unwrap_or_else(|| usage(&format!("{op}: missing argument {}", i + 1)))
    };
    let int = |i: usize| -> i32 { arg(i).parse().unwrap_or_else(|_| usage("bad number")) };
    Some(match op {
        "readback" => (|| {
            let fd = open(arg(0), libc::O_RDONLY)?;
            let mut b = [0u8; 256];
            // SAFETY: reads into a live 256-byte buffer.
            let n = ret(unsafe { libc::read(fd, b.as_mut_ptr().cast(), b.len()) } as libc::c_long)?;
            let _ = std::io::stderr().write_all(&b[..n as usize]);
            Ok(())
        })(),
        "poke-mem" => poke_mem(arg(0), arg(1)),
        "ptrace-attach" => ptrace_attach(int(0)),
        "kill" => kill(int(0), int(1)),
        "unix-connect" => std::os::unix::net::UnixStream::connect(arg(0))
            .map(drop)
            .map_err(|e| e.raw_os_error().unwrap_or(0)),
        "reach-helper" => {
            let text = loop {
                match std::fs::read_to_string(arg(0)) {
                    Ok(t) if t.ends_with('\n') => break t,
                    _ => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            };
            let mut w = text.split_whitespace();
            let (pid, addr) = (w.next().unwrap_or("0"), w.next().unwrap_or("0"));
            let pid_n: i32 = pid.parse().unwrap_or(0);
            let mem = errno_of(poke_mem(pid, addr));
            let trace = errno_of(ptrace_attach(pid_n));
            let killed = errno_of(kill(pid_n, libc::SIGKILL));
            // SAFETY: integers only.
            let after = errno_of(
                ret(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) } as libc::c_long)
                    .map(drop),
            );
            let exec = errno_of({
                let t = cstr("/bin/true");
                let argv = [t.as_ptr(), std::ptr::null()];
                // SAFETY: NULL-terminated argv of a live C string.
                unsafe { libc::execv(t.as_ptr(), argv.as_ptr()) };
                Err(last_errno())
            });
            println!("mem={mem} ptrace={trace} kill={killed} after={after} exec={exec}");
            let _ = std::io::stdout().flush();
            // Stay alive (and so keep the helper serving) until the test has looked at it.
            let done = format!("{}.done", arg(0));
            while std::fs::metadata(&done).is_err() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            std::process::exit(0)
        }
        _ => return None,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(op) = args.first() else {
        usage("missing operation")
    };
    let line = match run(op, &args[1..]) {
        Ok(()) => "OK".to_string(),
        Err(e) => errno_name(e),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
