//! unveil → Landlock checked from inside with the probe.

mod sandbox_support;
use sandbox_support::*;

fn ready() -> Option<i32> {
    if !seccomp_available() {
        return None;
    }
    landlock_abi()
}

fn u(unveils: &[&str], op: &[&str]) -> String {
    let mut extra = Vec::new();
    for x in unveils {
        extra.push("-v");
        extra.push(*x);
    }
    probe("stdio rpath wpath cpath", &extra, op)
}

struct Tree {
    _tmp: tempfile::TempDir,
    root: String,
}

impl Tree {
    fn new() -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_str().unwrap().to_string();
        std::fs::create_dir(tmp.path().join("ro")).unwrap();
        std::fs::create_dir(tmp.path().join("rw")).unwrap();
        std::fs::write(tmp.path().join("ro/f"), "ro").unwrap();
        std::fs::write(tmp.path().join("rw/f"), "rw").unwrap();
        std::fs::write(tmp.path().join("secret"), "s").unwrap();
        Tree { _tmp: tmp, root }
    }
    fn p(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root)
    }
}

#[test]
fn read_needs_r() {
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    let t = Tree::new();
    let ro = format!("r:{}", t.p("ro"));
    assert_eq!(u(&[&ro], &["read", &t.p("ro/f")]), "OK");
    assert_eq!(u(&[&ro], &["readdir", &t.p("ro")]), "OK");
    assert_eq!(u(&[&ro], &["read", &t.p("secret")]), "EACCES");
    assert_eq!(u(&[&ro], &["readdir", &t.root]), "EACCES");
    // Metadata is not hidden.
    assert_eq!(u(&[&ro], &["stat", &t.p("secret")]), "OK");
    // Without a colon the permission is r.
    assert_eq!(u(&[&t.p("ro")], &["read", &t.p("ro/f")]), "OK");
    assert_eq!(u(&[&t.p("ro")], &["write", &t.p("ro/f")]), "EACCES");
}

#[test]
fn write_needs_w_and_create_needs_c() {
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    let t = Tree::new();
    let rw = format!("rw:{}", t.p("rw"));
    let rwc = format!("rwc:{}", t.p("rw"));
    assert_eq!(u(&[&rw], &["write", &t.p("rw/f")]), "OK");
    assert_eq!(u(&[&rw], &["create", &t.p("rw/new")]), "EACCES");
    assert_eq!(u(&[&rw], &["mkdir", &t.p("rw/d")]), "EACCES");
    assert_eq!(u(&[&rw], &["symlink", "f", &t.p("rw/l")]), "EACCES");
    // Deleting needs c too (pledge.com leaves deletion unrestricted; we follow OpenBSD).
    assert_eq!(u(&[&rw], &["unlink", &t.p("rw/f")]), "EACCES");
    assert_eq!(u(&[&rwc], &["create", &t.p("rw/new")]), "OK");
    assert_eq!(u(&[&rwc], &["mkdir", &t.p("rw/d")]), "OK");
    assert_eq!(u(&[&rwc], &["symlink", "f", &t.p("rw/l")]), "OK");
    assert_eq!(u(&[&rwc], &["unlink", &t.p("rw/new")]), "OK");
    // r only: no write.
    let r = format!("r:{}", t.p("rw"));
    assert_eq!(u(&[&r], &["write", &t.p("rw/f")]), "EACCES");
}

#[test]
fn truncate_needs_w() {
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    let t = Tree::new();
    let r = format!("r:{}", t.p("rw"));
    let rw = format!("rw:{}", t.p("rw"));
    if abi.unwrap() >= 3 {
        assert_eq!(u(&[&rw], &["truncate", &t.p("rw/f")]), "OK");
        assert_eq!(u(&[&rw], &["trunc", &t.p("rw/f")]), "OK");
        assert_eq!(u(&[&r], &["truncate", &t.p("rw/f")]), "EACCES");
        // A single file unveiled rw may be truncated (pledge.com refuses; see README).
        let file = format!("rw:{}", t.p("rw/f"));
        assert_eq!(u(&[&file], &["trunc", &t.p("rw/f")]), "OK");
    } else {
        // Landlock cannot control truncate(2): the launcher denies it with seccomp.
        assert_eq!(u(&[&rw], &["truncate", &t.p("rw/f")]), "EPERM");
    }
}

#[test]
fn exec_needs_x() {
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    let dir = probe_dir();
    let r = format!("r:{dir}");
    let rx = format!("rx:{dir}");
    let mut args = vec![
        "-p",
        "stdio rpath exec",
        "-v",
        &r,
        "--",
        PROBE,
        "exec",
        "/bin/true",
    ];
    let o = pledge(&args);
    assert_eq!(stdout(&o), "EACCES", "{}", stderr(&o));
    args[3] = &rx;
    let o = pledge(&[
        "-p",
        "stdio rpath exec",
        "-v",
        &rx,
        "--",
        PROBE,
        "exec",
        PROBE,
        "noop",
    ]);
    assert_eq!(stdout(&o), "OK", "{}", stderr(&o));
}

#[test]
fn file_rules_and_symlinks() {
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    let t = Tree::new();
    std::os::unix::fs::symlink(t.p("ro/f"), t.p("link")).unwrap();
    std::os::unix::fs::symlink(t.p("nowhere"), t.p("dangling")).unwrap();
    // A rule on a symlink applies to its target.
    let l = format!("r:{}", t.p("link"));
    assert_eq!(u(&[&l], &["read", &t.p("ro/f")]), "OK");
    assert_eq!(u(&[&l], &["read", &t.p("rw/f")]), "EACCES");
    // A file rule gives no directory rights.
    let f = format!("rwc:{}", t.p("ro/f"));
    assert_eq!(u(&[&f], &["readdir", &t.p("ro")]), "EACCES");
    assert_eq!(u(&[&f], &["write", &t.p("ro/f")]), "OK");
    // A dangling link is fine (rule on the link itself), and runs.
    let d = format!("r:{}", t.p("dangling"));
    assert_eq!(u(&[&d], &["noop"]), "OK");
}

#[test]
fn nonexistent_paths_are_skipped() {
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    let t = Tree::new();
    let missing = format!("rwc:{}", t.p("missing/dir"));
    assert_eq!(u(&[&missing], &["noop"]), "OK");
    assert_eq!(u(&[&missing], &["read", &t.p("ro/f")]), "EACCES");
}

#[test]
fn implicit_unveils_per_promise() {
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    // stdio: /dev/null rw, /etc/localtime r.
    assert_eq!(u(&[], &["read", "/dev/null"]), "OK");
    assert_eq!(u(&[], &["write", "/dev/null"]), "OK");
    // rpath: /proc/filesystems.
    assert_eq!(u(&[], &["read", "/proc/filesystems"]), "OK");
    assert_eq!(u(&[], &["read", "/etc/hostname"]), "EACCES");
    // dns: /etc/hosts.
    assert_eq!(probe("stdio rpath dns", &[], &["read", "/etc/hosts"]), "OK");
    assert_eq!(probe("stdio rpath", &[], &["read", "/etc/hosts"]), "EACCES");
    // tmppath: /tmp rwc.
    let name = format!("/tmp/pledge-probe-{}", std::process::id());
    assert_eq!(
        probe("stdio rpath wpath cpath tmppath", &[], &["create", &name]),
        "OK"
    );
    assert_eq!(
        probe("stdio rpath wpath cpath tmppath", &[], &["unlink", &name]),
        "OK"
    );
    assert_eq!(
        probe("stdio rpath wpath cpath", &[], &["create", &name]),
        "EACCES"
    );
}

#[test]
fn dash_v_capital_disables_unveil() {
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    assert_eq!(
        probe(
            "stdio rpath",
            &["-V", "-v", "r:/nonexistent"],
            &["read", "/etc/hostname"]
        ),
        "OK"
    );
}

#[test]
fn setxattr_is_denied_when_unveiled() {
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    let t = Tree::new();
    let rw = format!("rw:{}", t.p("rw"));
    assert_eq!(
        probe(
            "stdio rpath wpath fattr",
            &["-v", &rw],
            &["setxattr", &t.p("rw/f")]
        ),
        "EPERM"
    );
}

#[test]
fn fail_closed_without_landlock() {
    // Debug builds honour PLEDGE_TEST_LANDLOCK_ABI to simulate an older or absent Landlock.
    skip_unless!(
        host_features::present(
            "debug-build",
            cfg!(debug_assertions),
            "release build ignores PLEDGE_TEST_LANDLOCK_ABI"
        ),
        "release build ignores PLEDGE_TEST_LANDLOCK_ABI"
    );
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .arg("pledge")
            .args(args)
            .env("PLEDGE_TEST_LANDLOCK_ABI", "0")
            .output()
            .unwrap()
    };
    // -v given but Landlock missing: refuse (exit 20), naming the way out.
    let o = run(&[
        "-v",
        "r:/etc/hostname",
        "--",
        PROBE,
        "read",
        "/etc/hostname",
    ]);
    assert_eq!(o.status.code(), Some(20));
    assert!(
        stderr(&o).contains("--unveil-best-effort"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
    // Best effort explicitly chosen: runs unrestricted, with a warning.
    let o = run(&[
        "--unveil-best-effort",
        "-v",
        "r:/etc/hostname",
        "--",
        PROBE,
        "read",
        "/etc/passwd",
    ]);
    assert_eq!(stdout(&o), "OK");
    assert!(stderr(&o).contains("NOT enforced"), "{}", stderr(&o));
    // No -v: pledge.com's behaviour (run), but never silently.
    let o = run(&["--", PROBE, "read", "/etc/passwd"]);
    assert_eq!(stdout(&o), "OK");
    assert!(stderr(&o).contains("not restricted"), "{}", stderr(&o));
}

#[test]
fn old_abi_without_truncate_control_denies_truncate_with_seccomp() {
    skip_unless!(
        host_features::present(
            "debug-build",
            cfg!(debug_assertions),
            "release build ignores PLEDGE_TEST_LANDLOCK_ABI"
        ),
        "release build ignores PLEDGE_TEST_LANDLOCK_ABI"
    );
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    let t = Tree::new();
    let rw = format!("rw:{}", t.p("rw"));
    let o = std::process::Command::new(BIN)
        .args([
            "pledge",
            "-p",
            "stdio rpath wpath",
            "-v",
            &rw,
            "--",
            PROBE,
            "truncate",
        ])
        .arg(t.p("rw/f"))
        .env("PLEDGE_TEST_LANDLOCK_ABI", "2")
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "EPERM", "{}", stderr(&o));
    let o = std::process::Command::new(BIN)
        .args([
            "pledge",
            "-p",
            "stdio rpath wpath",
            "-v",
            &rw,
            "--",
            PROBE,
            "write",
        ])
        .arg(t.p("rw/f"))
        .env("PLEDGE_TEST_LANDLOCK_ABI", "1")
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "OK", "{}", stderr(&o));
}

#[test]
fn anet_cannot_connect_even_with_unix() {
    let abi = ready();
    skip_unless!(
        abi.is_some_and(|a| a >= 4),
        "landlock ABI < 4 has no network rules"
    );
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    // `unix` allows connect(2) and `anet` TCP sockets: seccomp alone would let it through.
    assert_eq!(
        probe("stdio rpath anet unix", &["-V"], &["connect", &addr]),
        "OK"
    );
    assert_eq!(
        probe("stdio rpath anet unix", &[], &["connect", &addr]),
        "EACCES"
    );
    assert_eq!(probe("stdio rpath inet", &[], &["connect", &addr]), "OK");
}

#[test]
fn signals_are_scoped_to_the_sandbox() {
    let abi = ready();
    skip_unless!(
        abi.is_some_and(|a| a >= 6),
        "landlock ABI < 6 has no scopes"
    );
    // proc allows kill(2) of any process; Landlock's signal scope refuses targets outside,
    // with -V too (a domain without filesystem rules).
    assert_eq!(
        probe("stdio rpath proc", &["-V"], &["kill-parent"]),
        "EPERM"
    );
    assert_eq!(probe("stdio rpath proc", &[], &["kill-parent"]), "EPERM");
}

#[test]
fn tcp_port_allow_lists() {
    let abi = ready();
    skip_unless!(
        abi.is_some_and(|a| a >= 4),
        "landlock ABI < 4 has no network rules"
    );
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let p = port.to_string();
    let other = if port == 1 { "2" } else { "1" };
    assert_eq!(
        probe(
            "stdio rpath inet",
            &["--tcp-connect", &p],
            &["connect", &addr]
        ),
        "OK"
    );
    assert_eq!(
        probe(
            "stdio rpath inet",
            &["--tcp-connect", other],
            &["connect", &addr]
        ),
        "EACCES"
    );
    // Bind: find a free port, release it, then bind it inside.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let f = free.to_string();
    assert_eq!(
        probe("stdio rpath inet", &["--tcp-bind", &f], &["bind", &f]),
        "OK"
    );
    assert_eq!(
        probe("stdio rpath inet", &["--tcp-bind", other], &["bind", &f]),
        "EACCES"
    );
    // With -V there is no Landlock to carry them: refused, not ignored.
    let o = pledge(&["-V", "--tcp-bind", &f, "--", PROBE, "noop"]);
    assert_eq!(o.status.code(), Some(20));
}

/// `pledge ... -- PROBE op` with the given stdin and stdout (stderr captured).
fn probe_redirected(
    promises: &str,
    extra: &[&str],
    op: &[&str],
    stdin: std::process::Stdio,
    stdout: std::process::Stdio,
) -> std::process::Output {
    let mut args = vec!["pledge", "-p", promises];
    args.extend_from_slice(extra);
    args.push("--");
    args.push(PROBE);
    args.extend_from_slice(op);
    std::process::Command::new(BIN)
        .args(&args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn stdin_redirected_from_a_file_is_not_writable() {
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    let t = Tree::new();
    let file = t.p("ro/f");
    for path in ["/dev/stdin", "/proc/self/fd/0", "/dev/fd/0"] {
        for op in ["trunc", "write", "append"] {
            let o = probe_redirected(
                "stdio rpath wpath cpath",
                &[],
                &[op, path],
                std::fs::File::open(&file).unwrap().into(),
                std::process::Stdio::piped(),
            );
            assert_eq!(stdout(&o), "EACCES", "{op} {path}: {}", stderr(&o));
            assert_eq!(
                std::fs::read_to_string(&file).unwrap(),
                "ro",
                "{op} {path} changed the file behind stdin"
            );
        }
    }
    // Reading it again through /dev/stdin is what the descriptor allows anyway.
    let o = probe_redirected(
        "stdio rpath",
        &[],
        &["readback", "/dev/stdin"],
        std::fs::File::open(&file).unwrap().into(),
        std::process::Stdio::piped(),
    );
    assert_eq!(stdout(&o), "OK", "{}", stderr(&o));
    assert_eq!(stderr(&o), "ro");
    // ... but nothing else in its directory.
    let o = probe_redirected(
        "stdio rpath",
        &[],
        &["read", &t.p("secret")],
        std::fs::File::open(&file).unwrap().into(),
        std::process::Stdio::piped(),
    );
    assert_eq!(stdout(&o), "EACCES", "{}", stderr(&o));
}

#[test]
fn stdin_redirected_from_a_directory_gives_no_access_to_the_tree() {
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    let t = Tree::new();
    let dir = t.p("rw");
    let new = t.p("rw/new");
    let o = probe_redirected(
        "stdio rpath wpath cpath",
        &[],
        &["create", &new],
        std::fs::File::open(&dir).unwrap().into(),
        std::process::Stdio::piped(),
    );
    assert_eq!(stdout(&o), "EACCES", "{}", stderr(&o));
    assert!(!std::path::Path::new(&new).exists(), "created {new}");
    let f = t.p("rw/f");
    let o = probe_redirected(
        "stdio rpath wpath cpath",
        &[],
        &["trunc", &f],
        std::fs::File::open(&dir).unwrap().into(),
        std::process::Stdio::piped(),
    );
    assert_eq!(stdout(&o), "EACCES", "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "rw");
    let o = probe_redirected(
        "stdio rpath",
        &[],
        &["readdir", "/dev/stdin"],
        std::fs::File::open(&dir).unwrap().into(),
        std::process::Stdio::piped(),
    );
    assert_eq!(stdout(&o), "EACCES", "{}", stderr(&o));
}

#[test]
fn stdout_appended_to_a_log_cannot_be_read_back() {
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    let t = Tree::new();
    let log = t.p("app.log");
    std::fs::write(&log, "SECRET-LOG-LINE\n").unwrap();
    let append = || std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    for path in ["/dev/stdout", "/dev/stderr", "/proc/self/fd/1", "/dev/fd/2"] {
        // `>> app.log 2>&1`: the probe would copy what it read back to stderr, i.e. the log.
        let o = std::process::Command::new(BIN)
            .args(["pledge", "-p", "stdio rpath", "--", PROBE, "readback", path])
            .stdin(std::process::Stdio::null())
            .stdout(append())
            .stderr(append())
            .output()
            .unwrap();
        assert!(o.status.success(), "{path}: {:?}", o.status);
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            text.matches("SECRET-LOG-LINE").count(),
            1,
            "{path}: read the log back: {text}"
        );
        assert!(text.ends_with("EACCES\n"), "{path}: {text}");
        // Nor can it be overwritten from the start through a new descriptor.
        let o = std::process::Command::new(BIN)
            .args([
                "pledge",
                "-p",
                "stdio rpath wpath",
                "--",
                PROBE,
                "write",
                path,
            ])
            .stdin(std::process::Stdio::null())
            .stdout(append())
            .stderr(append())
            .output()
            .unwrap();
        assert!(o.status.success(), "{path}: {:?}", o.status);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.starts_with("SECRET-LOG-LINE\n"),
            "{path}: overwrote the log: {text}"
        );
    }
    // The program's own output still reaches the log.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("EACCES"), "{text}");
}

#[test]
fn stdio_rules_keep_pipes_and_dev_null_usable() {
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    // stdout is a pipe (captured): reopening it for writing works, for reading does not.
    assert_eq!(
        probe("stdio rpath wpath", &[], &["write", "/dev/stdout"]),
        "xOK"
    );
    // stdin is /dev/null.
    assert_eq!(probe("stdio rpath", &[], &["read", "/dev/stdin"]), "OK");
}

/// A process outside the sandbox to aim at, and a writable address in it.
struct Target {
    child: std::process::Child,
    addr: u64,
}

impl Target {
    /// `sleep` with no more capabilities than a sandboxed program (the kernel refuses a
    /// tracer whose capabilities are not a superset of the target's anyway): started through
    /// the launcher with -V.
    fn new() -> Target {
        let child = std::process::Command::new(BIN)
            .args(["pledge", "-V", "-p", "stdio rpath", "--", "sleep", "600"])
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the launcher has become `sleep`.
        let exe = std::fs::canonicalize("/bin/sleep").unwrap();
        for _ in 0..1000 {
            if std::fs::read_link(format!("/proc/{}/exe", child.id())).ok() == Some(exe.clone()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let addr = writable_address(child.id());
        Target { child, addr }
    }
    fn pid(&self) -> String {
        self.child.id().to_string()
    }
    fn addr(&self) -> String {
        format!("{:x}", self.addr)
    }
    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The start of the first private writable mapping of `pid` (we may read its memory).
fn writable_address(pid: u32) -> u64 {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let line = maps
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("rw-p"))
        .expect("a writable mapping");
    u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap()
}

fn peek(pid: u32, addr: u64) -> Vec<u8> {
    try_peek(pid, addr).unwrap()
}

fn try_peek(pid: u32, addr: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(format!("/proc/{pid}/mem"))?;
    let mut b = vec![0u8; 8];
    f.read_exact_at(&mut b, addr)?;
    Ok(b)
}

#[test]
fn dash_v_capital_still_confines_ptrace_and_signals() {
    let abi = ready();
    skip_unless!(
        abi.is_some_and(|a| a >= 6),
        "landlock ABI < 6 has no scopes"
    );
    let mut t = Target::new();
    let pid = t.child.id();
    let before = peek(pid, t.addr);
    let p = "stdio rpath wpath proc";
    let mem = probe(p, &["-V"], &["poke-mem", &t.pid(), &t.addr()]);
    assert_ne!(mem, "OK", "wrote another process's memory with -V");
    assert_eq!(
        peek(pid, t.addr),
        before,
        "memory of the outside process changed"
    );
    let killed = probe(p, &["-V"], &["kill", &t.pid(), "9"]);
    assert_ne!(killed, "OK");
    assert!(t.alive(), "-V killed an outside process");
    // Same without -V.
    assert_ne!(probe(p, &[], &["poke-mem", &t.pid(), &t.addr()]), "OK");
    assert_eq!(peek(pid, t.addr), before);
}

#[test]
fn landlock_without_scopes_still_confines_ptrace() {
    skip_unless!(
        cfg!(debug_assertions),
        "release build ignores PLEDGE_TEST_LANDLOCK_ABI"
    );
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    let t = Target::new();
    let pid = t.child.id();
    let before = peek(pid, t.addr);
    for extra in [&["-V"][..], &[][..]] {
        let mut args = vec!["pledge", "-p", "stdio rpath wpath"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", PROBE, "poke-mem"]);
        let o = std::process::Command::new(BIN)
            .args(&args)
            .args([t.pid(), t.addr()])
            .env("PLEDGE_TEST_LANDLOCK_ABI", "5")
            .output()
            .unwrap();
        assert_eq!(stdout(&o), "EACCES", "{extra:?}: {}", stderr(&o));
        assert_eq!(peek(pid, t.addr), before);
    }
}

/// The pid of the `--explain` helper of the launcher started with `marker` in its arguments.
fn find_explainer(marker: &str, launcher: u32) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == launcher {
            continue;
        }
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
        // The intermediate child of the double fork (parent: the launcher) is not it.
        let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|st| {
                st.rsplit(')')
                    .next()?
                    .split_whitespace()
                    .nth(1)?
                    .parse::<u32>()
                    .ok()
            });
        if ppid.is_some_and(|p| p != launcher)
            && args.get(1) == Some(&&b"pledge"[..])
            && args.contains(&marker.as_bytes())
        {
            return Some(pid);
        }
    }
    None
}

#[test]
fn explain_helper_is_out_of_reach() {
    let Some((line, err)) = attack_listener_helper(&["--explain"], &[]) else {
        return;
    };
    // The helper kept working: the denied socket(2) after the attacks was reported and failed
    // with EPERM (not ENOSYS, what the kernel answers when the listener is gone).
    assert!(line.contains("after=EPERM"), "{line} {err}");
    assert!(err.contains("socket(AF_INET"), "{err}");
}

#[test]
fn exec_gate_helper_is_out_of_reach() {
    skip_unless!(
        cfg!(debug_assertions),
        "release build ignores PLEDGE_TEST_GATE_LINGER"
    );
    // The gate helper normally exits right after the launcher's execve; the hook keeps it
    // serving (answering EPERM) so that the program can aim at it.
    let Some((line, err)) = attack_listener_helper(&[], &[("PLEDGE_TEST_GATE_LINGER", "1")]) else {
        return;
    };
    // Still serving after the attacks: its EPERM, not the kernel's ENOSYS for a lost listener.
    assert!(line.contains("exec=EPERM"), "{line} {err}");
}

/// Run the probe's `reach-helper` against the helper holding the seccomp listener (found by
/// the launcher's arguments); check it stayed alive and unchanged and that every attack failed.
/// Returns the probe's line and stderr, or None when skipped.
fn attack_listener_helper(
    launcher_opts: &[&str],
    env: &[(&str, &str)],
) -> Option<(String, String)> {
    use std::io::BufRead;
    let abi = ready();
    if abi.is_none_or(|a| a < 6) {
        eprintln!("SKIP: landlock ABI < 6 has no scopes");
        return None;
    }
    if !is_root() {
        eprintln!("SKIP: reading the helper's memory from the test needs root");
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let file = tmp.path().join("target").display().to_string();
    let rw = format!("rwc:{}", tmp.path().display());
    // The setup: rw on /proc, proc to send signals, the helper of the same uid (not
    // root, whose capabilities the program would lack anyway). `prot_exec` because a writable
    // /proc/PID/mem is refused without it (self-modifying code, sandbox/procmem.rs).
    let mut child = std::process::Command::new(BIN)
        .args(["pledge", "-u", "65534", "-g", "65534"])
        .args(launcher_opts)
        .envs(env.iter().copied())
        .args([
            "-p",
            "stdio rpath wpath cpath proc prot_exec",
            "-v",
            "rw:/proc",
            "-v",
            &rw,
            "--",
            PROBE,
            "reach-helper",
            &file,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let launcher = child.id();
    let helper = (0..500)
        .find_map(|_| {
            let h = find_explainer(&file, launcher);
            if h.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            h
        })
        .expect("the explainer process");
    let addr = writable_address(helper);
    let before = peek(helper, addr);
    std::fs::write(format!("{file}.tmp"), format!("{helper} {addr:x}\n")).unwrap();
    std::fs::rename(format!("{file}.tmp"), &file).unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // Still alive and unchanged while the program runs.
    let after = try_peek(helper, addr);
    let alive = after.is_ok();
    let after = after.unwrap_or_default();
    std::fs::write(format!("{file}.done"), "").unwrap();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(alive, "the program killed the helper: {line} {err}");
    assert_eq!(
        after, before,
        "the program wrote the helper's memory: {line}"
    );
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(!fields.contains(&"mem=OK"), "{line}");
    assert!(!fields.contains(&"ptrace=OK"), "{line}");
    assert!(!fields.contains(&"kill=OK"), "{line}");
    Some((line, err))
}

#[test]
fn pathname_unix_sockets_need_an_unveil_where_landlock_mediates_them() {
    let abi = ready();
    skip_unless!(abi.is_some(), "seccomp or landlock missing");
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("host.sock");
    let server = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    server.set_nonblocking(true).unwrap();
    let s = sock.display().to_string();
    let o = pledge(&[
        "-p",
        "stdio rpath unix",
        "-T",
        "unveil",
        "--",
        PROBE,
        "noop",
    ]);
    let text = stdout(&o);
    if abi.unwrap() < 9 {
        // The gap is stated where users look; the connection itself cannot be refused here.
        assert!(
            text.contains("not enforced: connect(2) to pathname unix sockets"),
            "{text}"
        );
        eprintln!(
            "SKIP (partly): landlock ABI {} < 9 cannot mediate pathname unix sockets",
            abi.unwrap()
        );
        return;
    }
    assert!(
        text.contains("enforced: connect(2) to a pathname unix socket needs `w`"),
        "{text}"
    );
    assert_eq!(
        probe("stdio rpath unix", &[], &["unix-connect", &s]),
        "EACCES"
    );
    assert!(server.accept().is_err(), "the host server saw a connection");
    let w = format!("w:{s}");
    assert_eq!(
        probe("stdio rpath unix", &["-v", &w], &["unix-connect", &s]),
        "OK"
    );
}
