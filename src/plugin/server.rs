//! Serving: bind, handshake line, gRPC services, shutdown and cleanup.

use std::io::Write;
use std::time::Duration;

use tokio_stream::wrappers::UnixListenerStream;

use super::infra::GoPluginServices;
use super::logging::LogLevelHandle;
use super::shutdown::Shutdown;
use super::socket::{SocketDir, SocketError};
use super::{APP_PROTOCOL_VERSION, CORE_PROTOCOL_VERSION};
use crate::proto::plugin::{
    grpc_broker_server::GrpcBrokerServer, grpc_controller_server::GrpcControllerServer,
    grpc_stdio_server::GrpcStdioServer,
};

/// How long in-flight calls get to finish after a shutdown request before we exit anyway
/// (the host SIGKILLs us 2 s after asking).
const GRACE: Duration = Duration::from_millis(1000);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("cannot write the go-plugin handshake line to stdout")]
    Handshake(#[source] std::io::Error),
    #[error("gRPC server failed")]
    Serve(#[from] tonic::transport::Error),
    #[error("cannot install the SIGTERM handler")]
    Signal(#[source] std::io::Error),
}

/// The handshake line go-plugin reads from our stdout.
pub fn handshake_line(socket: &std::path::Path) -> String {
    format!(
        "{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|unix|{}|grpc\n",
        socket.display()
    )
}

pub async fn run(level: LogLevelHandle) -> Result<(), ServeError> {
    let shutdown = Shutdown::new();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(ServeError::Signal)?;
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            if sigterm.recv().await.is_some() {
                tracing::info!("SIGTERM received, shutting down");
                shutdown.trigger();
            }
        });
    }

    let socket_dir = SocketDir::create(&SocketDir::base_from_env())?;
    let listener = socket_dir.bind()?;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let go_plugin = GoPluginServices::new(shutdown.clone());
    let driver = crate::driver::Services::new(level, shutdown.clone());

    let router = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(u32::MAX))
        .http2_keepalive_interval(None)
        .add_service(health_service)
        .add_service(GrpcControllerServer::new(go_plugin.clone()))
        .add_service(GrpcStdioServer::new(go_plugin.clone()))
        .add_service(GrpcBrokerServer::new(go_plugin));
    let router = driver.register(router);

    // The listener is bound and listening: the host may connect as soon as it reads the line.
    {
        let mut out = std::io::stdout().lock();
        out.write_all(handshake_line(socket_dir.socket_path()).as_bytes())
            .and_then(|()| out.flush())
            .map_err(ServeError::Handshake)?;
    }
    tracing::info!(socket = %socket_dir.socket_path().display(), "plugin serving");

    let stop = shutdown.clone();
    let mut server = tokio::spawn(
        router.serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
            stop.wait().await
        }),
    );
    let result = tokio::select! {
        r = &mut server => r,
        () = shutdown.wait() => match tokio::time::timeout(GRACE, &mut server).await {
            Ok(r) => r,
            Err(_) => {
                tracing::debug!("streams still open after the grace period; exiting anyway");
                server.abort();
                Ok(Ok(()))
            }
        },
    };
    drop(socket_dir);
    tracing::info!("plugin stopped");
    match result {
        Ok(r) => r.map_err(ServeError::from),
        // The server task panicked or was aborted: nothing more to clean up.
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn serve_errors_say_each_thing_once() {
        use super::ServeError;
        use crate::errors::assert_says_each_thing_once as check;
        use crate::errors::fixtures::{io, transport};
        check(&ServeError::Handshake(io()));
        check(&ServeError::Serve(transport()));
        check(&ServeError::Signal(io()));
    }

    #[test]
    fn handshake_line_format() {
        assert_eq!(
            super::handshake_line(std::path::Path::new("/tmp/x/plugin.sock")),
            "1|2|unix|/tmp/x/plugin.sock|grpc\n"
        );
    }
}
