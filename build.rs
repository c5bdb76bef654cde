//! Compiles our own `.proto` files (proto/) with protox (pure Rust, no system `protoc`)
//! and generates prost messages plus tonic servers and clients.

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
    Ok(())
}
