//! `pledge --learn` round trips (issue 16 item 5): run a real program learning, take the flags
//! it prints, run the program again sandboxed with exactly those flags: it must succeed with
//! the same output. Each case also checks that the program fails under the default
//! `stdio rpath` without the learned unveil, so the flags are what makes it work.

mod sandbox_support;
use sandbox_support::*;

use std::path::{Path, PathBuf};

/// Split what `Learned::pledge_flags` prints (words, single-quoted where needed).
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ' ' if in_word => {
                out.push(std::mem::take(&mut cur));
                in_word = false;
            }
            ' ' => {}
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// `pledge --learn -- CMD`: its output and the learned flags.
fn learn(dir: &Path, cmd: &[&str]) -> (std::process::Output, Vec<String>) {
    let mut args = vec!["--learn", "--"];
    args.extend_from_slice(cmd);
    let o = pledge_in(Some(dir), &args);
    let err = stderr(&o);
    let line = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("pledge: --learn: -p"))
        .unwrap_or_else(|| panic!("no learned flags in: {err}"));
    (o, shell_words(&format!("-p{line}")))
}

fn rerun(dir: &Path, flags: &[String], cmd: &[&str]) -> std::process::Output {
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.push("--");
    args.extend_from_slice(cmd);
    pledge_in(Some(dir), &args)
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pledge-learn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ready() -> bool {
    seccomp_available() && landlock_abi().is_some_and(|a| a >= 1)
}

/// Learn, check the learn run worked, rerun with the flags: same output, exit 0.
fn round_trip(dir: &Path, cmd: &[&str], expect: &str) -> Vec<String> {
    let (o, flags) = learn(dir, cmd);
    assert_eq!(o.status.code(), Some(0), "learn run: {}", stderr(&o));
    assert!(stdout(&o).contains(expect), "learn run: {}", stdout(&o));
    let again = rerun(dir, &flags, cmd);
    assert_eq!(
        again.status.code(),
        Some(0),
        "rerun with {flags:?}: {}",
        stderr(&again)
    );
    assert_eq!(stdout(&again), stdout(&o), "rerun with {flags:?}");
    assert!(
        !stderr(&again).contains("denied") && !stderr(&again).contains("not permitted"),
        "{}",
        stderr(&again)
    );
    flags
}

#[test]
fn a_shell_script_that_runs_other_programs() {
    skip_unless!(ready(), "needs seccomp and Landlock");
    let d = scratch("script");
    std::fs::write(d.join("data.txt"), "one\ntwo\nthree\n").unwrap();
    let script = d.join("run.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nset -e\nls /etc > /dev/null\nwc -l < data.txt\ncat /etc/hostname > /dev/null\nhead -n 1 data.txt | tr a-z A-Z\n",
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&script).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let s = script.to_str().unwrap();
    let flags = round_trip(&d, &[s], "ONE");
    let joined = flags.join(" ");
    assert!(
        joined.contains("exec") && joined.contains("proc"),
        "{joined}"
    );
    // Without the learned policy the same script fails.
    let o = pledge_in(Some(&d), &["--", s]);
    assert_ne!(o.status.code(), Some(0), "{}", stdout(&o));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_program_writing_into_its_directory() {
    skip_unless!(ready(), "needs seccomp and Landlock");
    let d = scratch("write");
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let cmd = format!(
        "echo hello > {0}/a.txt && mkdir -p {0}/sub && cp {0}/a.txt {0}/sub/b.txt && rm {0}/a.txt && cat {0}/sub/b.txt",
        out.display()
    );
    let flags = round_trip(&d, &["/bin/sh", "-c", &cmd], "hello");
    let joined = flags.join(" ");
    assert!(
        joined.contains(&format!("rwc:{}", out.display())),
        "{joined}"
    );
    assert!(joined.contains("cpath"), "{joined}");
    assert!(
        !joined.contains("c:/ ") && !joined.ends_with("c:/"),
        "never `/`: {joined}"
    );
    let o = pledge_in(
        Some(&d),
        &["-p", "stdio rpath proc exec", "--", "/bin/sh", "-c", &cmd],
    );
    assert_ne!(o.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&d);
}

fn have(prog: &str) -> Option<String> {
    let o = std::process::Command::new("/bin/sh")
        .args(["-c", &format!("command -v {prog}")])
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (o.status.success() && !p.is_empty()).then_some(p)
}

#[test]
fn python_http_server_fetched_by_curl_on_loopback() {
    skip_unless!(ready(), "needs seccomp and Landlock");
    let (Some(py), Some(curl)) = (have("python3"), have("curl")) else {
        eprintln!("SKIP: needs python3 and curl");
        return;
    };
    let d = scratch("http");
    let www = d.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "learned-page\n").unwrap();
    let port = 20000 + (std::process::id() % 20000);
    // The server runs until the client got the page (retries until it listens), then stops.
    let script = format!(
        "{py} -m http.server {port} --bind 127.0.0.1 --directory {www} 2>/dev/null & \
         pid=$!; i=0; \
         until {curl} -sf http://127.0.0.1:{port}/index.html; do i=$((i+1)); [ $i -gt 300 ] && break; sleep 0.1; done; \
         kill $pid; wait $pid; true",
        www = www.display()
    );
    let flags = round_trip(&d, &["/bin/sh", "-c", &script], "learned-page");
    let joined = flags.join(" ");
    assert!(joined.contains("inet"), "{joined}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn learn_mode_prints_warnings_for_what_no_promise_allows_and_keeps_the_exit_status() {
    skip_unless!(seccomp_available(), "needs seccomp");
    let d = scratch("status");
    let (o, flags) = learn(&d, &["/bin/sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(flags[0], "-p");
    let _ = std::fs::remove_dir_all(&d);
}
