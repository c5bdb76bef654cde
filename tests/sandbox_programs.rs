//! Real programs under the launcher, with the promises the README documents.

mod sandbox_support;
use sandbox_support::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn cat_with_unveiled_file() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    let o = pledge(&[
        "-p",
        "stdio rpath",
        "-v",
        "r:/etc/os-release",
        "cat",
        "/etc/os-release",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("ID="));
}

#[test]
fn sh_runs_builtins_and_children_with_proc_exec() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    // Builtins only: stdio rpath suffices.
    let o = pledge(&["-p", "stdio rpath", "sh", "-c", "echo hello; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello");
    // Running another program needs proc + exec, and x on it.
    let o = pledge(&[
        "-p",
        "stdio rpath proc exec",
        "-v",
        "rx:/usr/bin",
        "-v",
        "rx:/bin",
        "-v",
        "r:/etc/hostname",
        "sh",
        "-c",
        "cat /etc/hostname && echo ran",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let host = std::fs::read_to_string("/etc/hostname").unwrap();
    assert_eq!(stdout(&o), format!("{}\nran", host.trim()));
}

#[test]
fn dynamic_program_without_exec_cannot_exec() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    // sh is dynamic; with proc but no exec its child's execve fails (ENOSYS from the gate).
    let o = pledge(&[
        "-p",
        "stdio rpath proc",
        "-v",
        "rx:/usr/bin",
        "-v",
        "rx:/bin",
        "sh",
        "-c",
        "/bin/true && echo BAD || echo refused",
    ]);
    assert_eq!(stdout(&o), "refused", "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Function not implemented"),
        "{}",
        stderr(&o)
    );
    // exec in place is refused too.
    let o = pledge(&[
        "-p",
        "stdio rpath",
        "-v",
        "rx:/bin",
        "sh",
        "-c",
        "exec /bin/true",
    ]);
    assert_ne!(o.status.code(), Some(0));
}

#[test]
fn env_prints_the_environment() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    let o = Command::new(BIN)
        .args(["pledge", "-p", "stdio rpath", "env"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("A", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    lines.sort();
    assert_eq!(lines, ["A=1", "PATH=/usr/bin:/bin"]);
}

#[test]
fn script_with_shebang_gets_its_interpreter_unveiled() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("s.sh");
    std::fs::write(&s, "#!/bin/sh\necho from-script\n").unwrap();
    std::fs::set_permissions(&s, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let o = pledge(&["-p", "stdio rpath", s.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "from-script");
}

fn python() -> Option<&'static str> {
    let py = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let reason = "python3 not installed in /usr/bin or /usr/local/bin";
    host_features::present("python3", py.is_some(), reason).then_some(py?)
}

#[test]
fn python_http_server_serves_on_loopback() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    let py = python();
    skip_unless!(
        py.is_some(),
        "python3 not installed in /usr/bin or /usr/local/bin"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.txt"), "served-from-sandbox\n").unwrap();
    // Pick a free port, then release it for the server.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let www = format!("r:{}", dir.path().display());
    let mut child = Command::new(BIN)
        .args([
            "pledge",
            "-p",
            "stdio rpath inet",
            "-v",
            "r:/etc/mime.types",
            "-v",
            &www,
            "--",
            py.unwrap(),
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port,
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the server to accept (readiness, not a timing assertion).
    let mut stream = None;
    for _ in 0..300 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())) {
            stream = Some(s);
            break;
        }
        if let Ok(Some(st)) = child.try_wait() {
            let mut e = String::new();
            child.stderr.take().unwrap().read_to_string(&mut e).unwrap();
            panic!("server exited early: {st:?}: {e}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut s = stream.expect("server never accepted a connection");
    s.write_all(b"GET /index.txt HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(resp.starts_with("HTTP/1.0 200"), "{resp}");
    assert!(resp.contains("served-from-sandbox"), "{resp}");
}

#[test]
fn python_without_inet_cannot_listen() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    let py = python();
    skip_unless!(py.is_some(), "python3 not installed");
    let o = pledge(&[
        "-p", "stdio rpath", "--", py.unwrap(), "-c",
        "import socket\ntry:\n socket.socket()\n print('BAD')\nexcept PermissionError:\n print('denied')",
    ]);
    assert_eq!(stdout(&o), "denied", "{}", stderr(&o));
}

#[test]
fn curl_fetches_from_loopback_by_name() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    skip_unless!(
        host_features::present(
            "curl",
            Path::new("/usr/bin/curl").exists(),
            "curl not installed"
        ),
        "curl not installed"
    );
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).unwrap();
        s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 13\r\n\r\nfrom-loopback")
            .unwrap();
    });
    let url = format!("http://localhost:{port}/");
    // `localhost` is resolved through /etc/hosts, which `dns` unveils.
    let o = pledge(&[
        "-p",
        "stdio rpath inet dns",
        "--",
        "/usr/bin/curl",
        "-sS",
        &url,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "from-loopback");
    server.join().unwrap();
}
