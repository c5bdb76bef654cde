//! go-plugin transport: magic cookie, handshake, unix socket, health, controller, stdio, broker,
//! and hclog-JSON logging on stderr.

pub mod cookie;
mod infra;
pub mod logging;
mod server;
mod shutdown;
mod signals;
mod socket;

pub use shutdown::Shutdown;

use std::io::Write;

/// go-plugin core protocol version.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// Nomad's application protocol version (gRPC plugins).
pub const APP_PROTOCOL_VERSION: u32 = 2;

/// Entry point of the plugin server (the binary started by Nomad).
pub fn main() -> i32 {
    let program = std::env::args()
        .next()
        .unwrap_or_else(|| "nomad-pledge-driver".to_string());
    if !cookie::is_valid(std::env::var_os(cookie::MAGIC_COOKIE_KEY).as_deref()) {
        let _ = writeln!(std::io::stderr(), "{}", cookie::explanation(&program));
        return 1;
    }
    if let Err(e) = signals::ignore_sigint_and_sigpipe() {
        let _ = writeln!(
            std::io::stderr(),
            "[ERROR] nomad-pledge-driver: cannot ignore SIGINT/SIGPIPE: {e}"
        );
        return 1;
    }
    let (level, bad_level) = logging::level_from_env();
    let level = logging::LogLevelHandle::new(level);
    logging::init(level.clone());
    if let Some(e) = bad_level {
        tracing::warn!(env = logging::LOG_LEVEL_ENV, "{e}; using info");
    }
    check_protocol_versions();
    match crate::executor::limits::raise_nofile() {
        Ok(Some((from, to))) => tracing::debug!(from, to, "raised the open-file limit"),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit (RLIMIT_NOFILE); many tasks may exhaust it")
        }
    }

    if !crate::executor::memory::one_malloc_arena() {
        tracing::debug!("glibc refused M_ARENA_MAX=1: each thread may get its own malloc arena");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("pledge-plugin")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return 1;
        }
    };
    let code = match runtime.block_on(server::run(level)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{}", crate::errors::Chain(&e));
            1
        }
    };
    // Long-lived streams may still hold tasks; do not wait for them.
    runtime.shutdown_background();
    code
}

/// Nomad only speaks app protocol 2; warn (but carry on) if the host asked for something else.
fn check_protocol_versions() {
    if let Ok(list) = std::env::var("PLUGIN_PROTOCOL_VERSIONS") {
        let wanted = APP_PROTOCOL_VERSION.to_string();
        if !list.split(',').any(|v| v.trim() == wanted) {
            tracing::warn!(
                offered = %list,
                "host does not offer go-plugin app protocol {wanted}; answering with it anyway"
            );
        }
    }
}
