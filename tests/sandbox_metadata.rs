//! Metadata outside the unveiled set (issue 12 item 5): with unveil active, the probe tries to
//! change the mode, owner or timestamps of a file that is not unveiled, and the test checks the
//! file from outside.

mod sandbox_support;
use sandbox_support::*;

use std::os::unix::fs::MetadataExt;

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    atime: i64,
}

fn meta(p: &std::path::Path) -> Meta {
    let m = std::fs::symlink_metadata(p).unwrap();
    Meta {
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        mtime: m.mtime(),
        atime: m.atime(),
    }
}

fn same(a: &Meta, b: &Meta) -> bool {
    (a.mode, a.uid, a.gid, a.mtime, a.atime) == (b.mode, b.uid, b.gid, b.mtime, b.atime)
}

#[test]
fn path_based_metadata_changes_stay_inside_the_unveiled_set() {
    skip_unless!(seccomp_available(), "kernel without seccomp filters");
    skip_unless!(landlock_abi().is_some(), "kernel without Landlock");
    let outside = tempfile::tempdir().unwrap();
    let inside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "x").unwrap();
    let mine = inside.path().join("mine");
    std::fs::write(&mine, "x").unwrap();
    let v = victim.to_str().unwrap();
    let unveil = format!("rwc:{}", inside.path().display());
    let promises = "stdio rpath wpath fattr chown";
    let chown_to = if is_root() { "65534" } else { "-1" };
    // As root keep the capabilities (-D): the kernel would then allow every change (CAP_CHOWN,
    // CAP_FOWNER) and only the sandbox decides.
    let mut extra = vec!["-v", unveil.as_str()];
    if is_root() {
        extra.extend(["-D", "x"]);
    }
    let extra = extra.as_slice();
    let ops: Vec<Vec<&str>> = vec![
        vec!["chmod", v, "600"],
        vec!["fchmodat", v, "600"],
        vec!["chown", v, chown_to, chown_to],
        vec!["lchown", v, chown_to, chown_to],
        vec!["fchownat", v, chown_to, chown_to],
        vec!["utimensat", v],
        vec!["utimes", v],
        vec!["utime", v],
        vec!["futimesat", v],
    ];
    for op in &ops {
        let before = meta(&victim);
        let got = probe(promises, extra, op);
        let after = meta(&victim);
        assert!(
            same(&before, &after),
            "{op:?} changed the metadata of a file that is not unveiled (probe: {got})"
        );
        assert_ne!(got, "OK", "{op:?}");
    }
    // Descriptor-based forms on a file the program can open under Landlock still work.
    let m = mine.to_str().unwrap();
    for op in [
        vec!["fchmod", m, "600"],
        vec!["futimens", m],
        vec!["fchown", m, chown_to, chown_to],
    ] {
        assert_eq!(probe(promises, extra, &op), "OK", "{op:?}");
    }
    assert_eq!(meta(&mine).mode & 0o777, 0o600);
    assert_eq!(meta(&mine).mtime, 1);
    // Without unveil (-V) the path-based forms are pledge.com's: allowed.
    let mut no_unveil = vec!["-V"];
    no_unveil.extend_from_slice(&extra[2..]);
    assert_eq!(probe(promises, &no_unveil, &["chmod", m, "640"]), "OK");
    assert_eq!(probe(promises, &no_unveil, &["utimensat", m]), "OK");
    assert_eq!(meta(&mine).mode & 0o777, 0o640);
}
