//! The `pledge` command line, compatible with pledge.com (pledge-semantics.md §1).
//!
//! Parsing follows BSD getopt with the option string `hnqkNVT:p:u:g:c:C:D:P:M:F:O:v:`: no
//! permutation (scanning stops at the first non-option, which is PROG), `--` ends the options
//! and is consumed, options cluster (`-np stdio`), arguments may be attached (`-pstdio`).
//! `-p` and `-v` accumulate; for the rest the last one wins. Our extensions are long options,
//! accepted only before PROG: `--unveil-best-effort`, `--audit`, `--explain`,
//! `--operator-unveil`, `--tcp-bind`, `--tcp-connect`, `--why`, `--learn`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use super::launch;
use super::unveil::{parse_port_list, PortRange};

/// Options of one invocation, after parsing and before validation against the system.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `-p` values joined with a space; `None` = the default `stdio rpath`.
    pub promises: Option<String>,
    /// `-v` arguments in order.
    pub unveils: Vec<OsString>,
    /// `--operator-unveil PERM:PATH` (repeatable): rules the operator adds to every task
    /// (plugin option `default_unveil`); like `-v`, but shown as the operator's.
    pub operator_unveils: Vec<OsString>,
    /// `-V`.
    pub no_unveil: bool,
    /// `-k`.
    pub kill: bool,
    /// `-q` (accepted, no effect: we never log violations to the program's stderr).
    pub quiet: bool,
    /// `-n`.
    pub nice: bool,
    /// `-N`.
    pub no_normalize: bool,
    /// `-D ARG`.
    pub keep_caps: bool,
    /// `-u` (0 = unset).
    pub uid: Option<u32>,
    /// `-g` (0 = unset).
    pub gid: Option<u32>,
    /// `-c`.
    pub chroot: Option<OsString>,
    /// `-C` seconds of CPU time.
    pub cpu: Option<i64>,
    /// `-M` bytes of address space.
    pub mem: Option<u64>,
    /// `-F` bytes of file size.
    pub fsize: Option<u64>,
    /// `-P` processes.
    pub nproc: Option<u64>,
    /// `-O` open files.
    pub nofile: Option<u64>,
    /// `-T`.
    pub test: Option<OsString>,
    /// `--unveil-best-effort`: run even when Landlock cannot enforce the `-v` rules.
    pub unveil_best_effort: bool,
    /// `--audit`: penalty = SECCOMP_RET_LOG (allow and log to the kernel audit log).
    pub audit: bool,
    /// `--explain` (or `PLEDGE_EXPLAIN=1`): print the sandbox plan to stderr before the execve.
    pub explain: bool,
    /// `--tcp-bind LIST` (repeatable; ports and LO-HI ranges, comma-separated, may be empty):
    /// TCP bind only to these ports (Landlock ABI 4).
    pub tcp_bind: Option<Vec<PortRange>>,
    /// `--tcp-connect LIST` (the same): TCP connect only to these ports (Landlock ABI 4).
    pub tcp_connect: Option<Vec<PortRange>>,
    /// `--why SYSCALL[,ARG...]`: explain which promise allows a syscall, then exit.
    pub why: Option<String>,
    /// `--learn`: run observing instead of denying, then print the flags it needed.
    pub learn: bool,
    /// PROG and its arguments.
    pub command: Vec<OsString>,
}

/// Result of parsing.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Box<Options>),
    /// `-h`, or a getopt error (already reported): usage on stdout, exit 0.
    Help,
    /// A bad option value: the message names it; the exit status is [`UsageError::exit_status`].
    Fail(UsageError),
}

/// Why the command line was refused after getopt accepted its shape (one variant per check).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// `--tcp-bind`/`--tcp-connect` with a value that is not a port list.
    #[error("{prog}: invalid port for --{option}")]
    Port {
        prog: String,
        option: String,
        #[source]
        reason: crate::sandbox::unveil::PortRangeError,
    },
    /// More `--operator-unveil` paths than pledge.com accepts.
    #[error("{prog}: too many unveils (at most {MAX_UNVEILS}): unveil a parent directory instead")]
    TooManyUnveils { prog: String },
    /// A bad value of a one-letter option (number, size, id, promise list or unveil count); the
    /// message names the option's value and the fix.
    #[error("{message}")]
    Value { option: char, message: String },
}

impl UsageError {
    /// pledge.com exits 1 on every one of these.
    pub fn exit_status(&self) -> i32 {
        match self {
            UsageError::Port { .. }
            | UsageError::TooManyUnveils { .. }
            | UsageError::Value { .. } => 1,
        }
    }
}

/// Limits of v1.9 (exceeding them exits 1).
const MAX_PROMISES_LEN: usize = 255;
const MAX_UNVEILS: usize = 10000;

const TAKES_ARG: &[u8] = b"TpugcCDPMFOv";
const FLAGS: &[u8] = b"hnqkNV";

/// Parse `args` (without the program name). `prog` is used in messages.
pub fn parse(prog: &str, args: &[OsString]) -> Parsed {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_bytes();
        if a == b"--" {
            i += 1;
            break;
        }
        if a.len() < 2 || a[0] != b'-' {
            break;
        }
        if a.starts_with(b"--") {
            match a {
                b"--unveil-best-effort" => o.unveil_best_effort = true,
                b"--audit" => o.audit = true,
                b"--explain" => o.explain = true,
                b"--learn" => o.learn = true,
                b"--tcp-bind" | b"--tcp-connect" => {
                    let name = String::from_utf8_lossy(&a[2..]).into_owned();
                    let Some(v) = args.get(i + 1) else {
                        eprintln!("{prog}: option requires an argument -- {name}");
                        return Parsed::Help;
                    };
                    let ports = match parse_port_list(&v.to_string_lossy()) {
                        Ok(p) => p,
                        Err(reason) => {
                            return Parsed::Fail(UsageError::Port {
                                prog: prog.to_string(),
                                option: name,
                                reason,
                            })
                        }
                    };
                    let slot = if name == "tcp-bind" {
                        &mut o.tcp_bind
                    } else {
                        &mut o.tcp_connect
                    };
                    slot.get_or_insert_with(Vec::new).extend(ports);
                    i += 1;
                }
                // Not in pledge.com (which says "illegal option -- -" and prints the usage):
                // the same usage, without the complaint.
                b"--help" => return Parsed::Help,
                b"--operator-unveil" => match args.get(i + 1) {
                    Some(v) => {
                        if o.operator_unveils.len() >= MAX_UNVEILS {
                            return Parsed::Fail(UsageError::TooManyUnveils {
                                prog: prog.to_string(),
                            });
                        }
                        o.operator_unveils.push(v.clone());
                        i += 1;
                    }
                    None => {
                        eprintln!("{prog}: option requires an argument -- operator-unveil");
                        return Parsed::Help;
                    }
                },
                b"--why" => match args.get(i + 1) {
                    Some(v) => {
                        o.why = Some(v.to_string_lossy().into_owned());
                        i += 1;
                    }
                    None => {
                        eprintln!("{prog}: option requires an argument -- why");
                        return Parsed::Help;
                    }
                },
                _ => {
                    eprintln!("{prog}: illegal option -- -");
                    return Parsed::Help;
                }
            }
            i += 1;
            continue;
        }
        let mut j = 1;
        while j < a.len() {
            let c = a[j];
            if FLAGS.contains(&c) {
                match c {
                    b'h' => return Parsed::Help,
                    b'n' => o.nice = true,
                    b'q' => o.quiet = true,
                    b'k' => o.kill = true,
                    b'N' => o.no_normalize = true,
                    b'V' => o.no_unveil = true,
                    _ => unreachable!("FLAGS lists only the letters above"),
                }
                j += 1;
                continue;
            }
            if !TAKES_ARG.contains(&c) {
                eprintln!("{prog}: illegal option -- {}", c as char);
                return Parsed::Help;
            }
            let val: OsString = if j + 1 < a.len() {
                OsStr::from_bytes(&a[j + 1..]).to_owned()
            } else if i + 1 < args.len() {
                i += 1;
                args[i].clone()
            } else {
                eprintln!("{prog}: option requires an argument -- {}", c as char);
                return Parsed::Help;
            };
            if let Err(message) = apply(&mut o, c, val, prog) {
                return Parsed::Fail(UsageError::Value {
                    option: c as char,
                    message,
                });
            }
            break;
        }
        i += 1;
    }
    o.command = args[i.min(args.len())..].to_vec();
    Parsed::Run(Box::new(o))
}

fn apply(o: &mut Options, c: u8, val: OsString, prog: &str) -> Result<(), String> {
    let s = || val.to_string_lossy().into_owned();
    match c {
        b'T' => o.test = Some(val),
        b'p' => {
            let v = s();
            let joined = match o.promises.take() {
                Some(p) => format!("{p} {v}"),
                None => v,
            };
            if joined.len() > MAX_PROMISES_LEN {
                return Err(format!(
                    "{prog}: too many promises (more than {MAX_PROMISES_LEN} bytes): remove duplicates"
                ));
            }
            o.promises = Some(joined);
        }
        b'v' => {
            if o.unveils.len() >= MAX_UNVEILS {
                return Err(format!(
                    "{prog}: too many unveils (at most {MAX_UNVEILS}): unveil a parent directory instead"
                ));
            }
            o.unveils.push(val)
        }
        b'D' => o.keep_caps = true,
        b'c' => o.chroot = Some(val),
        b'u' => o.uid = nonzero_id(parse_int(prog, &s())?, prog, &s())?,
        b'g' => o.gid = nonzero_id(parse_int(prog, &s())?, prog, &s())?,
        b'C' => o.cpu = Some(parse_int(prog, &s())?),
        b'P' => o.nproc = Some(nonneg(parse_int(prog, &s())?, prog, &s())?),
        b'O' => o.nofile = Some(nonneg(parse_int(prog, &s())?, prog, &s())?),
        b'M' => o.mem = Some(parse_size(prog, &s())?),
        b'F' => o.fsize = Some(parse_size(prog, &s())?),
        _ => unreachable!("TAKES_ARG lists only the letters above"),
    }
    Ok(())
}

fn nonzero_id(v: i64, prog: &str, s: &str) -> Result<Option<u32>, String> {
    match v {
        0 => Ok(None),
        1..=0xffff_fffe => Ok(Some(v as u32)),
        _ => Err(format!(
            "{prog}: invalid id: {s} (give a numeric uid/gid between 1 and 4294967294)"
        )),
    }
}

fn nonneg(v: i64, prog: &str, s: &str) -> Result<u64, String> {
    u64::try_from(v)
        .map_err(|_| format!("{prog}: invalid integer: {s} (the limit must not be negative)"))
}

/// `strtol(s, 0)` with no trailing garbage: decimal, `0x` hex, leading-`0` octal, optional sign.
pub fn parse_int(prog: &str, s: &str) -> Result<i64, String> {
    let err = || format!("{prog}: invalid integer: {s}");
    let t = s.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(err());
    }
    // The magnitude as u64, so that the most negative long (`-9223372036854775808`) fits.
    let m = u64::from_str_radix(digits, radix).map_err(|_| err())?;
    if neg {
        0i64.checked_sub_unsigned(m).ok_or_else(err)
    } else {
        i64::try_from(m).map_err(|_| err())
    }
}

/// `sizetol` with base 1024 (v1.9): blanks, digits, then an optional unit `k m g t p e` (any
/// case); anything after the unit letter is ignored (`4GiB`, `10mb`).
pub fn parse_size(prog: &str, s: &str) -> Result<u64, String> {
    let err = || {
        format!("{prog}: invalid size: {s} (write a number with an optional unit k, m, g, t, p or e, e.g. 512m)")
    };
    let t = s.trim_start();
    let t = t.strip_prefix('+').unwrap_or(t);
    let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if end == 0 {
        return Err(err());
    }
    let n: u64 = t[..end].parse().map_err(|_| err())?;
    let exp = match t[end..].chars().next().map(|c| c.to_ascii_lowercase()) {
        None => 0,
        Some('k') => 1,
        Some('m') => 2,
        Some('g') => 3,
        Some('t') => 4,
        Some('p') => 5,
        Some('e') => 6,
        Some(_) => return Err(err()),
    };
    n.checked_mul(1024u64.pow(exp)).ok_or_else(err)
}

/// The usage text.
pub fn usage(prog: &str) -> String {
    format!(
        "usage: {prog} [-hnqkNV] [-p PROMISES] [-v [PERM:]PATH]... [-u UID] [-g GID] [-c DIR]
          [-C SECS] [-M BYTES] [-F BYTES] [-P PROCS] [-O FILES] [-T pledge|unveil]
          [--unveil-best-effort] [--audit] [--explain] [--tcp-bind PORTS] [--tcp-connect PORTS]
          [--why SYSCALL] [--learn] [--] PROG [ARGS...]

  -p PROMISES  space-separated promises (default: stdio rpath); repeatable
               stdio rpath wpath cpath dpath flock fattr inet unix dns tty recvfd sendfd
               proc exec id unveil settime prot_exec vminfo tmppath chown anet
  -v PERM:PATH unveil PATH with PERM from r w x c (default r); repeatable
  -V           no unveil at all (seccomp only)
  -k           kill the process (SIGSYS) on a violation instead of failing with EPERM
  -q           accepted for compatibility (no effect)
  -n           lowest CPU and I/O priority
  -N           keep inherited file descriptors above 2
  -D ARG       keep the capability bounding set (ARG is ignored, as in pledge.com)
  -u UID       setuid before sandboxing      -g GID  setgid before sandboxing
  -c DIR       chdir and chroot to DIR before looking up PROG
  -C SECS      CPU time limit in seconds     -M BYTES  address space limit
  -F BYTES     file size limit               -P PROCS  process limit
  -O FILES     open files limit (limits are inherited unless given)
  -T pledge    exit 0 if seccomp is available (and print the filter plan)
  -T unveil    exit 0 if landlock is available (and print the unveil plan)
  --unveil-best-effort  run even if landlock cannot enforce the -v rules
  --audit      allow violations but log them to the kernel audit log (SECCOMP_RET_LOG)
  --explain    print the sandbox plan to stderr (also PLEDGE_EXPLAIN=1)
  --operator-unveil PERM:PATH  like -v, shown as the operator's rule (plugin default_unveil)
  --tcp-bind PORTS, --tcp-connect PORTS  allow TCP bind/connect only to these ports
               (comma-separated ports and LO-HI ranges, '' = none; repeatable;
               landlock ABI 4, Linux 6.7+)
  --why SYSCALL[,ARG...]  say which promise allows a syscall (name or number, e.g.
               --why socket,2,1,0 or --why 41), then exit
  --learn      learn mode: run PROG with nothing denied (no sandbox!), record every call
               and file access -p/-v would refuse, then print the smallest -p/-v flags
               that allow them (on stderr, after the last process of PROG exits)
"
    )
}

/// Entry point of `nomad-pledge-driver pledge ...` and of a link named `pledge`; `args[0]` is
/// the program name. Returns the exit status (only on failure: on success the process has
/// become PROG).
pub fn main(args: &[OsString]) -> i32 {
    let prog = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pledge".into());
    let rest = args.get(1..).unwrap_or_default();
    let mut opts = match parse(&prog, rest) {
        Parsed::Run(o) => o,
        Parsed::Help => {
            print!("{}", usage(&prog));
            return 0;
        }
        Parsed::Fail(e) => {
            eprintln!("{}", crate::errors::Chain(&e));
            return e.exit_status();
        }
    };
    if std::env::var_os("PLEDGE_EXPLAIN").is_some_and(|v| v == "1") {
        opts.explain = true;
    }
    if let Some(w) = &opts.why {
        return launch::why(&prog, w);
    }
    if let Some(t) = &opts.test {
        return launch::feature_test(&prog, t, &opts);
    }
    if opts.command.is_empty() {
        eprintln!("{prog}: error: missing command");
        eprint!("{}", usage(&prog));
        return 64;
    }
    launch::run(&prog, &opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Parsed {
        let v: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse("pledge", &v)
    }
    /// Each refused value is its own variant, and the exit status comes from the variant.
    #[test]
    fn refused_values_are_typed() {
        let e = match p(&["--tcp-connect", "http", "true"]) {
            Parsed::Fail(e) => e,
            other => panic!("{other:?}"),
        };
        assert!(matches!(&e, UsageError::Port { option, .. } if option == "tcp-connect"));
        assert_eq!(e.exit_status(), 1);
        assert!(matches!(
            p(&["-u", "x", "true"]),
            Parsed::Fail(UsageError::Value { option: 'u', .. })
        ));
        let many: Vec<&str> = std::iter::repeat_n(["--operator-unveil", "/x"], MAX_UNVEILS + 1)
            .flatten()
            .chain(["true"])
            .collect();
        assert!(matches!(
            p(&many),
            Parsed::Fail(UsageError::TooManyUnveils { .. })
        ));
    }

    fn run(args: &[&str]) -> Options {
        match p(args) {
            Parsed::Run(o) => *o,
            other => panic!("{args:?} → {other:?}"),
        }
    }

    #[test]
    fn getopt_semantics() {
        let o = run(&[
            "-np",
            "stdio rpath",
            "-v",
            "r:/a",
            "-v/b",
            "--",
            "cat",
            "-v",
        ]);
        assert!(o.nice);
        assert_eq!(o.promises.as_deref(), Some("stdio rpath"));
        assert_eq!(
            o.unveils,
            vec![OsString::from("r:/a"), OsString::from("/b")]
        );
        assert_eq!(o.command, vec![OsString::from("cat"), OsString::from("-v")]);
        // No permutation: options after PROG belong to PROG.
        let o = run(&["ls", "-p", "x"]);
        assert_eq!(o.promises, None);
        assert_eq!(o.command.len(), 3);
        // Attached and accumulated -p.
        let o = run(&["-pstdio", "-p", "inet", "true"]);
        assert_eq!(o.promises.as_deref(), Some("stdio inet"));
        // -p '' is the empty set, not the default.
        assert_eq!(run(&["-p", "", "true"]).promises.as_deref(), Some(""));
        // Last one wins.
        assert_eq!(run(&["-u", "5", "-u", "7", "x"]).uid, Some(7));
        // A bare `-` is PROG.
        assert_eq!(run(&["-", "x"]).command[0], OsString::from("-"));
    }

    #[test]
    fn d_takes_an_argument_like_pledge_com() {
        let o = run(&["-D", "-p", "stdio", "ls"]);
        assert!(o.keep_caps);
        assert_eq!(o.promises, None);
        assert_eq!(
            o.command,
            vec![OsString::from("stdio"), OsString::from("ls")]
        );
    }

    #[test]
    fn errors_and_help() {
        assert_eq!(p(&["-h", "-p", "x"]), Parsed::Help);
        assert_eq!(p(&["-z"]), Parsed::Help);
        assert_eq!(p(&["-p"]), Parsed::Help);
        assert_eq!(p(&["--bogus"]), Parsed::Help);
        assert!(
            matches!(p(&["-u", "12x", "true"]), Parsed::Fail(e) if e.exit_status() == 1 && e.to_string().contains("invalid integer: 12x"))
        );
        assert!(
            matches!(p(&["-M", "lots", "true"]), Parsed::Fail(e) if e.exit_status() == 1 && e.to_string().contains("invalid size"))
        );
        let o = run(&["-T", "pledge"]);
        assert_eq!(o.test, Some(OsString::from("pledge")));
        assert!(o.command.is_empty());
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_int("p", "0x10"), Ok(16));
        assert_eq!(parse_int("p", "010"), Ok(8));
        assert_eq!(parse_int("p", "-3"), Ok(-3));
        assert_eq!(parse_int("p", "0"), Ok(0));
        assert!(parse_int("p", "").is_err());
        assert!(parse_int("p", "09").is_err());
        assert_eq!(parse_size("p", "4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("p", "10mb"), Ok(10 << 20));
        assert_eq!(parse_size("p", "512"), Ok(512));
        assert_eq!(parse_size("p", "2K"), Ok(2048));
        assert!(parse_size("p", "k").is_err());
        assert!(parse_size("p", "5q").is_err());
        assert_eq!(run(&["-u", "0", "x"]).uid, None);
    }

    /// Found by `make fuzz` (pledge_cli): strtol takes every long, the most negative included,
    /// in each base; the magnitude was parsed as a positive i64 and overflowed.
    #[test]
    fn parse_int_takes_the_whole_i64_range() {
        for s in [
            "-9223372036854775808",
            "-0x8000000000000000",
            "-01000000000000000000000",
        ] {
            assert_eq!(parse_int("p", s), Ok(i64::MIN), "{s}");
        }
        assert_eq!(parse_int("p", "9223372036854775807"), Ok(i64::MAX));
        assert!(parse_int("p", "9223372036854775808").is_err());
        assert!(parse_int("p", "-9223372036854775809").is_err());
        assert!(parse_int("p", "-0x8000000000000001").is_err());
        assert_eq!(
            run(&["-C", "-9223372036854775808", "x"]).cpu,
            Some(i64::MIN)
        );
    }

    #[test]
    fn extensions() {
        let o = run(&["--unveil-best-effort", "--audit", "--explain", "-k", "x"]);
        assert!(o.unveil_best_effort && o.audit && o.explain && o.kill);
        assert_eq!(
            run(&["--why", "socket,2", "-p", "x"]).why.as_deref(),
            Some("socket,2")
        );
        assert_eq!(p(&["--why"]), Parsed::Help);
        let o = run(&[
            "--tcp-bind",
            "8080",
            "--tcp-connect",
            "53",
            "--tcp-bind",
            "9",
            "x",
        ]);
        let one = |p| vec![PortRange::single(p)];
        assert_eq!(o.tcp_bind, Some([one(8080), one(9)].concat()));
        assert_eq!(o.tcp_connect, Some(one(53)));
        let o = run(&["--tcp-bind", "", "--tcp-connect", "1000-1002,80", "x"]);
        assert_eq!(o.tcp_bind, Some(vec![]), "an empty list: no port");
        assert_eq!(
            o.tcp_connect,
            Some(vec![
                PortRange { lo: 1000, hi: 1002 },
                PortRange::single(80)
            ])
        );
        assert_eq!(run(&["x"]).tcp_bind, None);
        assert!(
            matches!(p(&["--tcp-bind", "70000", "x"]), Parsed::Fail(e @ UsageError::Port { .. }) if e.exit_status() == 1 && e.to_string().contains("invalid port"))
        );
    }
}
