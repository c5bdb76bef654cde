//! pledge-probe: perform one named operation and print `OK` or the errno name (`EPERM`,
//! `EACCES`, ...) on stdout. Run under `nomad-pledge-driver pledge` by the sandbox tests to check
//! the sandbox from inside (style.md item 11). Exit status 0 whatever the outcome, 2 on bad usage.
//!
//! Usage: `pledge-probe OP [ARGS...]`; `pledge-probe help` lists the operations.

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
    eprintln!("pledge-probe: {msg}\nusage: pledge-probe OP [ARGS...]\n{OPS}");
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
        "help" => {
            print!("{OPS}");
            std::process::exit(0)
        }
        other => usage(&format!("unknown operation `{other}`")),
    }
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
