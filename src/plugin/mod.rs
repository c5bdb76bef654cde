//! go-plugin transport: magic cookie, handshake, unix socket, health, controller, stdio, broker,
//! and hclog-JSON logging on stderr.

/// Entry point of the plugin server (the binary started by Nomad).
pub fn main() -> i32 {
    eprintln!("nomad-pledge-driver: the plugin server is not implemented yet");
    1
}
