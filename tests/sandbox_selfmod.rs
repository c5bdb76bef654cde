//! Self-modifying code without `prot_exec` (issue 12 item 8): the probe rewrites its own
//! read-only code through /proc/self/mem and runs it; unveil entries that allow this are
//! refused unless `prot_exec` is promised, and the kernel's W^X switch (PR_SET_MDWE) holds
//! where the filter does not decide (audit mode).

mod sandbox_support;
use sandbox_support::*;

fn mdwe_available() -> bool {
    // PR_SET_MDWE appeared in Linux 6.3.
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = rel
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (major, minor) >= (6, 3)
}

#[test]
fn unveils_that_make_proc_mem_writable_are_refused_without_prot_exec() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    skip_unless!(landlock_abi().is_some(), "kernel without Landlock");
    for entry in ["rw:/proc", "rw:/proc/self", "w:/proc/self/mem", "rwc:/"] {
        let o = pledge(&[
            "-p",
            "stdio rpath wpath",
            "-v",
            entry,
            "--",
            PROBE,
            "selfmem-patch",
        ]);
        // The effect: the probe's patched code ran ("OK").
        assert_ne!(
            stdout(&o),
            "OK",
            "{entry}: the program rewrote its own code"
        );
        assert_eq!(o.status.code(), Some(20), "{entry}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(&format!("unveil `{entry}`")), "{e}");
        assert!(e.contains("prot_exec"), "{e}");
    }
    // -T unveil shows the refusal instead of a plan.
    let o = pledge(&["-T", "unveil", "-p", "stdio wpath", "-v", "rw:/proc", "cat"]);
    assert!(
        stdout(&o).contains("error: unveil `rw:/proc`"),
        "{}",
        stdout(&o)
    );
    // Read-only /proc is fine (and the write then fails).
    let got = probe("stdio rpath wpath", &["-v", "r:/proc"], &["selfmem-patch"]);
    assert_eq!(got, "EACCES");
    // With prot_exec promised, self-modifying code is what was asked for.
    let got = probe(
        "stdio rpath wpath prot_exec",
        &["-v", "rw:/proc/self"],
        &["selfmem-patch"],
    );
    assert_eq!(got, "OK");
}

#[test]
fn mdwe_refuses_executable_memory_where_the_filter_allows_it() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    skip_unless!(mdwe_available(), "kernel older than 6.3 (no PR_SET_MDWE)");
    // --audit lets every syscall through (and logs it): only the kernel's MDWE stands.
    assert_eq!(
        probe("stdio rpath", &["-V", "--audit"], &["mprotect-exec"]),
        "EACCES"
    );
    assert_eq!(
        probe(
            "stdio rpath prot_exec",
            &["-V", "--audit"],
            &["mprotect-exec"]
        ),
        "OK"
    );
}

#[test]
fn dynamic_programs_still_load_under_mdwe() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    let o = pledge(&["-p", "stdio rpath", "--", "/bin/sh", "-c", "echo ok"]);
    assert_eq!(stdout(&o), "ok", "{}", stderr(&o));
    let py = "/usr/bin/python3";
    skip_unless!(std::path::Path::new(py).exists(), "no {py}");
    let o = pledge(&[
        "-p",
        "stdio rpath",
        "--",
        py,
        "-S",
        "-c",
        "import math; print(math.sqrt(49))",
    ]);
    assert_eq!(stdout(&o), "7.0", "{}", stderr(&o));
}
