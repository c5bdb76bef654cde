//! Promises checked from inside: the probe performs one operation under a promise set and
//! reports the errno. Unveil is off (-V) so that only seccomp decides.

mod sandbox_support;
use sandbox_support::*;

fn v(promises: &str, op: &[&str]) -> String {
    probe(promises, &["-V"], op)
}

#[test]
fn stdio_allows_basics_and_denies_the_rest() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    assert_eq!(v("stdio rpath", &["noop"]), "OK");
    assert_eq!(v("stdio rpath", &["kill-self"]), "OK");
    assert_eq!(v("stdio rpath", &["kill-parent"]), "EPERM");
    assert_eq!(v("stdio rpath", &["fork"]), "EPERM");
    assert_eq!(v("stdio rpath", &["socket-inet"]), "EPERM");
    assert_eq!(v("stdio rpath", &["socket-unix"]), "EPERM");
    assert_eq!(v("stdio rpath", &["setuid", "1"]), "EPERM");
    assert_eq!(v("stdio rpath", &["tcgets"]), "EPERM");
}

#[test]
fn rpath_wpath_cpath() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, "data").unwrap();
    let f = f.to_str().unwrap();
    let new = dir.path().join("new");
    let new = new.to_str().unwrap();
    let d = dir.path().to_str().unwrap();

    assert_eq!(v("stdio rpath", &["read", f]), "OK");
    assert_eq!(v("stdio rpath", &["readdir", d]), "OK");
    assert_eq!(v("stdio rpath", &["write", f]), "EPERM");
    assert_eq!(v("stdio rpath", &["create", new]), "EPERM");
    assert_eq!(v("stdio rpath", &["unlink", f]), "EPERM");
    assert_eq!(v("stdio rpath", &["mkdir", new]), "EPERM");

    assert_eq!(v("stdio rpath wpath", &["write", f]), "OK");
    assert_eq!(v("stdio rpath wpath", &["trunc", f]), "OK");
    assert_eq!(v("stdio rpath wpath", &["create", new]), "EPERM");
    assert_eq!(v("stdio rpath wpath", &["chmod", f, "644"]), "OK");
    assert_eq!(v("stdio rpath wpath", &["chmod", f, "4755"]), "EPERM");

    assert_eq!(v("stdio rpath cpath", &["create", new]), "OK");
    assert_eq!(v("stdio rpath cpath", &["unlink", new]), "OK");
    assert_eq!(v("stdio rpath cpath", &["mkdir", new]), "OK");
    assert_eq!(v("stdio rpath cpath", &["rmdir", new]), "OK");
}

#[test]
fn inet_unix_and_dns_sockets() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    assert_eq!(v("stdio rpath inet", &["socket-inet"]), "OK");
    assert_eq!(v("stdio rpath inet", &["socket-unix"]), "EPERM");
    assert_eq!(v("stdio rpath unix", &["socket-unix"]), "OK");
    assert_eq!(v("stdio rpath unix", &["socket-inet"]), "EPERM");
    assert_eq!(v("stdio rpath dns", &["socket-inet"]), "OK");
    // Bind on loopback with an ephemeral port.
    assert_eq!(v("stdio rpath inet", &["bind", "0"]), "OK");
    assert_eq!(v("stdio rpath anet", &["bind", "0"]), "OK");
}

#[test]
fn proc_allows_fork_and_signals() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    assert_eq!(v("stdio rpath proc", &["fork"]), "OK");
    assert_eq!(v("stdio rpath proc", &["kill-self"]), "OK");
    // The parent is outside the sandbox: Landlock's signal scope (ABI ≥ 6) refuses it even
    // with -V, which still enters a Landlock domain.
    let outside = if landlock_abi().is_some_and(|a| a >= 6) {
        "EPERM"
    } else {
        "OK"
    };
    assert_eq!(v("stdio rpath proc", &["kill-parent"]), outside);
}

#[test]
fn id_allows_setuid() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    skip_unless!(is_root(), "needs root to setuid");
    assert_eq!(v("stdio rpath id", &["setuid", "0"]), "OK");
}

#[test]
fn tty_allows_terminal_ioctls() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    // stdin is /dev/null: the ioctl is allowed and fails with ENOTTY instead of EPERM.
    assert_eq!(v("stdio rpath tty", &["tcgets"]), "ENOTTY");
}

#[test]
fn executable_memory() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    let libc_path = "/proc/self/exe";
    // No prot_exec: anonymous executable memory is refused, file-backed is allowed (the loader
    // needs it), mprotect(PROT_EXEC) is refused.
    assert_eq!(v("stdio rpath", &["mmap-anon-exec"]), "EPERM");
    assert_eq!(v("stdio rpath", &["mprotect-exec"]), "EPERM");
    assert_eq!(v("stdio rpath", &["mmap-file-exec", libc_path]), "OK");
    assert_eq!(v("stdio rpath prot_exec", &["mmap-anon-exec"]), "OK");
    assert_eq!(v("stdio rpath prot_exec", &["mprotect-exec"]), "OK");
}

#[test]
fn exec_gate_lets_only_the_launcher_exec() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    // Without `exec`, the probe (a dynamic program) starts, but cannot exec anything: ENOSYS
    // because the gate's listener is gone.
    assert_eq!(v("stdio rpath", &["exec", PROBE, "noop"]), "ENOSYS");
    assert_eq!(v("stdio rpath exec", &["exec", PROBE, "noop"]), "OK");
}

#[test]
fn kill_penalty_and_audit_penalty() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    use std::os::unix::process::ExitStatusExt;
    let o = pledge(&["-V", "-k", "-p", "stdio rpath", "--", PROBE, "socket-inet"]);
    assert_eq!(o.status.signal(), Some(libc::SIGSYS), "{:?}", o.status);
    // --audit: the violation is allowed (and logged by the kernel).
    assert_eq!(
        probe("stdio rpath", &["-V", "--audit"], &["socket-inet"]),
        "OK"
    );
}

#[test]
fn forced_enosys_for_unknown_new_syscalls() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    // A dynamic program under stdio alone: rpath is added for the loader, so it runs.
    assert_eq!(v("stdio", &["noop"]), "OK");
}
