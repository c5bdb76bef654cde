//! Every subcommand answers `--help`/`-h` with its full usage on stdout and exit 0; the
//! top-level usage lists every `run` option; `version` prints version, commit and target;
//! `make help` lists every target of the Makefile.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_nomad-pledge-driver");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("NOMAD_PLUGIN_MAGIC_COOKIE")
        .output()
        .expect("run the binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn helped(args: &[&str]) -> String {
    let o = run(args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: stderr {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = stdout(&o);
    assert!(out.starts_with("usage: "), "{args:?}: {out}");
    out
}

/// The options `run`'s parser knows, as listed in its own usage.
fn run_options() -> Vec<String> {
    let usage = helped(&["run", "--help"]);
    usage
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .flat_map(|l| {
            l.split_whitespace()
                .take_while(|w| w.starts_with('-'))
                .map(|w| w.trim_end_matches(',').to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_subcommand_answers_help() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["run", "--help"],
        &["run", "-h"],
        &["run", "job.hcl", "--help"],
        &["pledge", "--help"],
        &["pledge", "-h"],
        &["version", "--help"],
        &["version", "-h"],
    ] {
        helped(args);
    }
    // pledge.com's own `-h` behaviour is kept: usage on stdout, nothing on stderr; and
    // `--help` no longer complains about an illegal option.
    let o = run(&["pledge", "--help"]);
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout(&o).contains("-p PROMISES"));
    let o = run(&["pledge", "-z"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("illegal option -- z"));
}

#[test]
fn top_level_usage_lists_every_run_option() {
    let top = helped(&["--help"]);
    let options = run_options();
    for needed in [
        "--task",
        "--plugin-config",
        "--alloc-dir",
        "--keep",
        "-v",
        "--verbose",
    ] {
        assert!(options.iter().any(|o| o == needed), "{options:?}");
    }
    for o in &options {
        assert!(
            top.contains(o.as_str()),
            "top-level usage lacks {o}:\n{top}"
        );
    }
    for cmd in ["run JOB.hcl", "pledge", "version", "help"] {
        assert!(top.contains(cmd), "{cmd}: {top}");
    }
    // An unknown command gets the same usage on stderr and exit 2.
    let o = run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--alloc-dir"));
}

#[test]
fn version_names_commit_and_target() {
    for flag in ["version", "--version"] {
        let out = stdout(&run(&[flag]));
        let line = out.trim();
        assert!(
            line.starts_with(&format!(
                "nomad-pledge-driver {} (commit ",
                env!("CARGO_PKG_VERSION")
            )),
            "{line}"
        );
        let commit = line
            .split("(commit ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap();
        assert!(
            commit == "unknown"
                || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
            "{line}"
        );
        assert!(
            line.ends_with("target x86_64-unknown-linux-gnu)") || !cfg!(target_arch = "x86_64"),
            "{line}"
        );
    }
}

#[test]
fn make_help_lists_every_target() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let Ok(o) = Command::new("make")
        .args(["-s", "--no-print-directory", "-C", dir, "help"])
        .output()
    else {
        eprintln!("SKIP: make is not installed");
        return;
    };
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let help = stdout(&o);
    let makefile = std::fs::read_to_string(format!("{dir}/Makefile")).unwrap();
    let phony = makefile
        .lines()
        .find_map(|l| l.strip_prefix(".PHONY:"))
        .expect("Makefile has a .PHONY line");
    for target in phony.split_whitespace() {
        assert!(
            help.lines()
                .any(|l| l.split_whitespace().next() == Some(target)),
            "make help does not list `{target}`:\n{help}"
        );
    }
}
