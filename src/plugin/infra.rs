//! go-plugin's own services: GRPCController (shutdown), GRPCStdio (an idle stream: we never
//! redirect our stdout/stderr through gRPC), GRPCBroker (accepted and ignored: Nomad drivers never
//! use it).

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::shutdown::Shutdown;
use crate::proto::plugin::{
    grpc_broker_server::GrpcBroker, grpc_controller_server::GrpcController,
    grpc_stdio_server::GrpcStdio, ConnInfo, Empty, StdioData,
};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Implements the three go-plugin services on one shared shutdown latch.
#[derive(Debug, Clone)]
pub struct GoPluginServices {
    shutdown: Shutdown,
}

impl GoPluginServices {
    pub fn new(shutdown: Shutdown) -> Self {
        Self { shutdown }
    }
}

#[tonic::async_trait]
impl GrpcController for GoPluginServices {
    async fn shutdown(&self, _req: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::info!("shutdown requested by the host");
        self.shutdown.trigger();
        Ok(Response::new(Empty {}))
    }
}

#[tonic::async_trait]
impl GrpcStdio for GoPluginServices {
    type StreamStdioStream = BoxStream<StdioData>;

    async fn stream_stdio(
        &self,
        _req: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(Box::pin(self.shutdown.idle_stream())))
    }
}

#[tonic::async_trait]
impl GrpcBroker for GoPluginServices {
    type StartStreamStream = BoxStream<ConnInfo>;

    async fn start_stream(
        &self,
        req: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut inbound = req.into_inner();
        tokio::spawn(async move {
            while let Some(Ok(info)) = inbound.next().await {
                tracing::debug!(
                    service_id = info.service_id,
                    "ignoring go-plugin broker message"
                );
            }
        });
        Ok(Response::new(Box::pin(self.shutdown.idle_stream())))
    }
}
