//! The BasePlugin service: identity, plugin config schema, SetConfig.

use tonic::{Request, Response, Status};

use super::config::PluginConfig;
use super::error::DriverError;
use super::{schema, wire, State, DRIVER_NAME, PLUGIN_API_VERSION};
use crate::proto::base::{
    base_plugin_server::BasePlugin, ConfigSchemaRequest, ConfigSchemaResponse, PluginInfoRequest,
    PluginInfoResponse, PluginType, SetConfigRequest, SetConfigResponse,
};

#[tonic::async_trait]
impl BasePlugin for State {
    async fn plugin_info(
        &self,
        _req: Request<PluginInfoRequest>,
    ) -> Result<Response<PluginInfoResponse>, Status> {
        Ok(Response::new(PluginInfoResponse {
            r#type: PluginType::Driver as i32,
            plugin_api_versions: vec![PLUGIN_API_VERSION.to_string()],
            plugin_version: env!("CARGO_PKG_VERSION").to_string(),
            name: DRIVER_NAME.to_string(),
        }))
    }

    async fn config_schema(
        &self,
        _req: Request<ConfigSchemaRequest>,
    ) -> Result<Response<ConfigSchemaResponse>, Status> {
        Ok(Response::new(ConfigSchemaResponse {
            spec: Some(wire::spec(&schema::plugin_config_spec())),
        }))
    }

    async fn set_config(
        &self,
        req: Request<SetConfigRequest>,
    ) -> Result<Response<SetConfigResponse>, Status> {
        let req = req.into_inner();
        let config = PluginConfig::from_msgpack(&req.msgpack_config).map_err(DriverError::from)?;
        // Only the launch that carries nomad_config is the long-lived instance; validation
        // launches (no nomad_config) just check the config and start nothing.
        let long_lived = req.nomad_config.is_some();
        self.apply_config(config, long_lived);
        let first = self.executor.lock().map_or(false, |e| e.is_none());
        if long_lived && first {
            // The executor and its fork server exist before the first task (only once: a fork
            // server that went idle is started again by the next StartTask, not by SetConfig).
            match self.executor() {
                Ok(ex) => ex.warm_up(),
                Err(e) => {
                    tracing::warn!(error = %crate::errors::Chain(&e), "cannot prepare the executor yet; the first task RPC will report why")
                }
            }
        }
        Ok(Response::new(SetConfigResponse {}))
    }
}
