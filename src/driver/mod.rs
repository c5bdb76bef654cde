//! Nomad `BasePlugin` and `Driver` gRPC services: config schemas, cty-msgpack decoding,
//! fingerprint, task store, lifecycle RPCs, stats, events and exec.

mod base;
mod ceiling;
pub mod config;
pub mod denials;
pub mod dns;
pub mod error;
mod exec;
pub mod fingerprint;
pub mod msgpack;
mod ports;
pub mod schema;
mod service;
mod startup;
mod stats_ticks;
pub mod task_config;
mod tasks;
pub mod volumes;
pub mod wire;

#[cfg(test)]
mod error_tests;

use std::sync::Arc;

use tokio::sync::{broadcast, watch};
use tonic::transport::server::Router;

use crate::plugin::logging::LogLevelHandle;
use crate::plugin::Shutdown;
use crate::proto::base::base_plugin_server::BasePluginServer;
use crate::proto::drivers::driver_server::DriverServer;
use config::PluginConfig;

/// The name jobs use: `driver = "pledge"`.
pub const DRIVER_NAME: &str = "pledge";
/// Nomad's driver plugin API version.
pub const PLUGIN_API_VERSION: &str = "v0.1.0";
/// Largest gRPC message we accept (env maps and handles can be large).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

pub use crate::events::TaskEvent;

/// Shared driver state; the services are thin handlers over it.
pub struct State {
    config: watch::Sender<PluginConfig>,
    level: LogLevelHandle,
    shutdown: Shutdown,
    events: broadcast::Sender<TaskEvent>,
    probe: fingerprint::Probe,
    /// Created at the long-lived SetConfig or the first task RPC (see `tasks.rs`).
    executor: std::sync::Mutex<Option<Arc<crate::executor::Executor>>>,
    /// Landlock denial reporting, decided on first use (first fingerprint or task).
    denials: std::sync::OnceLock<denials::Denials>,
    /// The shared tickers of the TaskStats streams.
    stats_ticks: stats_ticks::StatsTicks,
    /// Gives the start-up's memory back after the first fingerprint of the configured plugin.
    startup_memory: Arc<startup::StartupMemory>,
}

impl State {
    pub fn new(level: LogLevelHandle, shutdown: Shutdown) -> Arc<Self> {
        Arc::new(State {
            config: watch::Sender::new(PluginConfig::default()),
            level,
            shutdown,
            events: broadcast::channel(256).0,
            probe: fingerprint::Probe::host(),
            executor: std::sync::Mutex::new(None),
            denials: std::sync::OnceLock::new(),
            stats_ticks: stats_ticks::StatsTicks::default(),
            startup_memory: Arc::default(),
        })
    }

    /// Installs a validated config (SetConfig may be called more than once).
    fn apply_config(&self, config: PluginConfig, long_lived: bool) {
        if let Some(level) = config.log_level {
            self.level.set(level);
        }
        tracing::info!(
            long_lived,
            launcher = ?config.launcher,
            allow_root = config.allow_root,
            "plugin config accepted"
        );
        self.config.send_replace(config);
        if long_lived {
            self.startup_memory.configured();
        }
    }

    /// Landlock denial reporting, started with the current config on first use.
    pub fn denials(&self) -> &denials::Denials {
        self.denials.get_or_init(|| {
            denials::Denials::start(
                self.config().landlock_audit,
                (self.probe.landlock_abi)(),
                self.events.clone(),
            )
        })
    }

    /// Current plugin config.
    pub fn config(&self) -> PluginConfig {
        self.config.borrow().clone()
    }

    /// Sends a task event to every open TaskEvents stream (none open: dropped).
    #[cfg(test)]
    pub fn publish(&self, event: TaskEvent) {
        let _ = self.events.send(event);
    }
}

/// The driver's gRPC services, ready to be added to the plugin server.
pub struct Services {
    state: Arc<State>,
}

impl Services {
    pub fn new(level: LogLevelHandle, shutdown: Shutdown) -> Self {
        Self {
            state: State::new(level, shutdown),
        }
    }

    /// Adds the BasePlugin and Driver services to `router`.
    pub fn register(self, router: Router) -> Router {
        router
            .add_service(
                BasePluginServer::from_arc(self.state.clone())
                    .max_decoding_message_size(MAX_MESSAGE),
            )
            .add_service(
                DriverServer::from_arc(self.state)
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(usize::MAX),
            )
    }
}
