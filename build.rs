//! Compiles our own `.proto` files (proto/) with protox (pure Rust, no system `protoc`)
//! and generates prost messages plus tonic servers and clients; records the git commit and the
//! target for `nomad-pledge-driver version`.

use std::path::Path;
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const FILES: &[&str] = &[
        "proto/go_plugin.proto",
        "proto/google_rpc_status.proto",
        "proto/structs.proto",
        "proto/hclspec.proto",
        "proto/base.proto",
        "proto/driver.proto",
    ];
    let fds = protox::compile(FILES, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .include_file("protos.rs")
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto");
    version_info();
    Ok(())
}

/// `git` in the package directory; None when it fails or is not installed.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// (The variable names avoid `_PLEDGE`: cargo also exports them to `cargo test` processes, and
/// the launcher's tests check that no `_PLEDGE` variable reaches a program.)
///
/// The commit (12 hex digits) when this package directory is a git checkout (a `.git` here:
/// a release tarball unpacked inside some other repository is not one), else "unknown".
fn version_info() {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join(".git").exists();
    let commit = if checkout {
        git(&["rev-parse", "--short=12", "HEAD"])
    } else {
        None
    };
    println!(
        "cargo:rustc-env=BUILD_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    println!(
        "cargo:rustc-env=BUILD_TARGET_TRIPLE={}",
        std::env::var("TARGET").unwrap_or_else(|_| "unknown".into())
    );
    println!("cargo:rerun-if-changed=.git");
    if checkout {
        // HEAD moves with checkouts, the branch ref with commits (worktrees keep both elsewhere).
        for p in ["HEAD", "packed-refs"] {
            if let Some(path) = git(&["rev-parse", "--git-path", p]) {
                println!("cargo:rerun-if-changed={path}");
            }
        }
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            if let Some(path) = git(&["rev-parse", "--git-path", &r]) {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}
