//! The Driver service. Handlers are thin: decode, ask the state (later: the executor), encode.
//! Task lifecycle RPCs answer UNIMPLEMENTED until the executor lands.

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status, Streaming};

use super::error::DriverError;
use super::{schema, wire, State};
use crate::proto::drivers::{
    driver_capabilities::{FsIsolation, MountConfigs},
    driver_server::Driver,
    network_isolation_spec::NetworkIsolationMode,
    CapabilitiesRequest, CapabilitiesResponse, CreateNetworkRequest, CreateNetworkResponse,
    DestroyNetworkRequest, DestroyNetworkResponse, DestroyTaskRequest, DestroyTaskResponse,
    DriverCapabilities, DriverTaskEvent, ExecTaskRequest, ExecTaskResponse,
    ExecTaskStreamingRequest, ExecTaskStreamingResponse, FingerprintRequest, FingerprintResponse,
    InitRequest, InitResponse, InspectTaskRequest, InspectTaskResponse, RecoverTaskRequest,
    RecoverTaskResponse, ShutdownRequest, ShutdownResponse, SignalTaskRequest, SignalTaskResponse,
    StartTaskRequest, StartTaskResponse, StopTaskRequest, StopTaskResponse,
    TaskConfigSchemaRequest, TaskConfigSchemaResponse, TaskStatsRequest, TaskStatsResponse,
    WaitTaskRequest, WaitTaskResponse,
};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Built-in drivers re-send their fingerprint every 30 s.
const FINGERPRINT_PERIOD: Duration = Duration::from_secs(30);

fn unimplemented<T>(rpc: &'static str) -> Result<T, Status> {
    Err(DriverError::Unimplemented { rpc }.into())
}

/// What the driver can do today, stated truthfully (see README "Capabilities").
pub fn capabilities() -> DriverCapabilities {
    DriverCapabilities {
        send_signals: true,
        exec: false,
        // Nomad builds the task dir on host paths; our Landlock rules are per task and opt-in,
        // so we do not claim UNVEIL (which also needs Nomad >= 1.8 and alloc_mounts).
        fs_isolation: FsIsolation::None as i32,
        network_isolation_modes: vec![NetworkIsolationMode::Host as i32],
        must_create_network: false,
        mount_configs: MountConfigs::NoMounts as i32,
        disable_log_collection: false,
        dynamic_workload_users: true,
    }
}

#[tonic::async_trait]
impl Driver for State {
    async fn init(&self, _req: Request<InitRequest>) -> Result<Response<InitResponse>, Status> {
        Ok(Response::new(InitResponse {}))
    }

    async fn task_config_schema(
        &self,
        _req: Request<TaskConfigSchemaRequest>,
    ) -> Result<Response<TaskConfigSchemaResponse>, Status> {
        Ok(Response::new(TaskConfigSchemaResponse {
            spec: Some(wire::spec(&schema::task_config_spec())),
        }))
    }

    async fn capabilities(
        &self,
        _req: Request<CapabilitiesRequest>,
    ) -> Result<Response<CapabilitiesResponse>, Status> {
        Ok(Response::new(CapabilitiesResponse {
            capabilities: Some(capabilities()),
        }))
    }

    type FingerprintStream = BoxStream<FingerprintResponse>;

    async fn fingerprint(
        &self,
        _req: Request<FingerprintRequest>,
    ) -> Result<Response<Self::FingerprintStream>, Status> {
        tracing::debug!("fingerprint stream opened");
        let mut config = self.config.subscribe();
        let probe = self.probe.clone();
        let shutdown = self.shutdown.clone();
        let stream = async_stream(move |tx| async move {
            // The first message goes out at once; the periodic re-send starts one period later.
            let start = tokio::time::Instant::now() + FINGERPRINT_PERIOD;
            let mut tick = tokio::time::interval_at(start, FINGERPRINT_PERIOD);
            loop {
                let cfg = config.borrow_and_update().clone();
                let fp = super::fingerprint::fingerprint(&probe, &cfg);
                if tx.send(Ok(wire::fingerprint(&fp))).await.is_err() {
                    return; // the client went away
                }
                tokio::select! {
                    _ = tick.tick() => {}
                    changed = config.changed() => if changed.is_err() { return },
                    () = shutdown.wait() => return,
                }
            }
        });
        Ok(Response::new(stream))
    }

    type TaskEventsStream = BoxStream<DriverTaskEvent>;

    async fn task_events(
        &self,
        _req: Request<crate::proto::drivers::TaskEventsRequest>,
    ) -> Result<Response<Self::TaskEventsStream>, Status> {
        tracing::debug!("task events stream opened");
        let mut events = self.events.subscribe();
        let shutdown = self.shutdown.clone();
        let stream = async_stream(move |tx| async move {
            loop {
                let event = tokio::select! {
                    e = events.recv() => e,
                    () = shutdown.wait() => return,
                };
                match event {
                    Ok(e) => {
                        if tx.send(Ok(wire::task_event(&e))).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(dropped = n, "task events stream lagged; events dropped");
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn shutdown(
        &self,
        _req: Request<ShutdownRequest>,
    ) -> Result<Response<ShutdownResponse>, Status> {
        // A notice only: go-plugin's controller Shutdown follows and actually stops us.
        tracing::info!("driver shutdown notice from the host");
        Ok(Response::new(ShutdownResponse {}))
    }

    async fn recover_task(
        &self,
        _req: Request<RecoverTaskRequest>,
    ) -> Result<Response<RecoverTaskResponse>, Status> {
        unimplemented("RecoverTask")
    }

    async fn start_task(
        &self,
        req: Request<StartTaskRequest>,
    ) -> Result<Response<StartTaskResponse>, Status> {
        // Validate the task config already, so job authors get field-level errors today.
        if let Some(task) = req.into_inner().task {
            super::task_config::TaskDriverConfig::from_msgpack(&task.msgpack_driver_config)
                .map_err(DriverError::from)?;
        }
        unimplemented("StartTask")
    }

    async fn wait_task(
        &self,
        _req: Request<WaitTaskRequest>,
    ) -> Result<Response<WaitTaskResponse>, Status> {
        unimplemented("WaitTask")
    }

    async fn stop_task(
        &self,
        _req: Request<StopTaskRequest>,
    ) -> Result<Response<StopTaskResponse>, Status> {
        unimplemented("StopTask")
    }

    async fn destroy_task(
        &self,
        _req: Request<DestroyTaskRequest>,
    ) -> Result<Response<DestroyTaskResponse>, Status> {
        unimplemented("DestroyTask")
    }

    async fn inspect_task(
        &self,
        _req: Request<InspectTaskRequest>,
    ) -> Result<Response<InspectTaskResponse>, Status> {
        unimplemented("InspectTask")
    }

    type TaskStatsStream = BoxStream<TaskStatsResponse>;

    async fn task_stats(
        &self,
        _req: Request<TaskStatsRequest>,
    ) -> Result<Response<Self::TaskStatsStream>, Status> {
        unimplemented("TaskStats")
    }

    async fn signal_task(
        &self,
        _req: Request<SignalTaskRequest>,
    ) -> Result<Response<SignalTaskResponse>, Status> {
        unimplemented("SignalTask")
    }

    async fn exec_task(
        &self,
        _req: Request<ExecTaskRequest>,
    ) -> Result<Response<ExecTaskResponse>, Status> {
        unimplemented("ExecTask")
    }

    type ExecTaskStreamingStream = BoxStream<ExecTaskStreamingResponse>;

    async fn exec_task_streaming(
        &self,
        _req: Request<Streaming<ExecTaskStreamingRequest>>,
    ) -> Result<Response<Self::ExecTaskStreamingStream>, Status> {
        unimplemented("ExecTaskStreaming")
    }

    async fn create_network(
        &self,
        _req: Request<CreateNetworkRequest>,
    ) -> Result<Response<CreateNetworkResponse>, Status> {
        unimplemented("CreateNetwork")
    }

    async fn destroy_network(
        &self,
        _req: Request<DestroyNetworkRequest>,
    ) -> Result<Response<DestroyNetworkResponse>, Status> {
        unimplemented("DestroyNetwork")
    }
}

/// A server stream fed by a spawned producer through a small channel; the producer notices a
/// gone client when `send` fails.
fn async_stream<T, F, Fut>(producer: F) -> BoxStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(producer(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::logging::{LogLevel, LogLevelHandle};
    use crate::plugin::Shutdown;
    use futures::StreamExt;

    fn state() -> std::sync::Arc<State> {
        State::new(LogLevelHandle::new(LogLevel::Info), Shutdown::new())
    }

    #[tokio::test]
    async fn task_rpcs_are_unimplemented_with_a_message() {
        let s = state();
        let e = s
            .wait_task(Request::new(WaitTaskRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unimplemented);
        assert!(e.message().contains("WaitTask"), "{}", e.message());
        assert!(s.init(Request::new(InitRequest {})).await.is_ok());
        assert!(s.shutdown(Request::new(ShutdownRequest {})).await.is_ok());
    }

    #[tokio::test]
    async fn events_are_forwarded_and_stream_stays_open() {
        let s = state();
        let mut stream = s
            .task_events(Request::new(Default::default()))
            .await
            .unwrap()
            .into_inner();
        s.publish(super::super::TaskEvent {
            task_id: "a/t/1".into(),
            alloc_id: "a".into(),
            task_name: "t".into(),
            timestamp: std::time::SystemTime::now(),
            message: "hello".into(),
            annotations: Default::default(),
        });
        let e = stream.next().await.unwrap().unwrap();
        assert_eq!(
            (
                e.alloc_id.as_str(),
                e.task_name.as_str(),
                e.message.as_str()
            ),
            ("a", "t", "hello")
        );
        assert!(e.timestamp.is_some());
        assert!(futures::poll!(stream.next()).is_pending());
        s.shutdown.trigger();
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn fingerprint_resends_on_config_change() {
        let s = state();
        let mut stream = s
            .fingerprint(Request::new(FingerprintRequest {}))
            .await
            .unwrap()
            .into_inner();
        let first = stream.next().await.unwrap().unwrap();
        assert!(first.attributes.contains_key("driver.pledge.version"));
        let cfg = super::super::config::PluginConfig {
            launcher: super::super::config::Launcher::External("/nonexistent/pledge".into()),
            ..Default::default()
        };
        s.apply_config(cfg, true);
        let second = stream.next().await.unwrap().unwrap();
        assert_eq!(
            second.health,
            crate::proto::drivers::fingerprint_response::HealthState::Unhealthy as i32
        );
        assert!(
            second.health_description.contains("launcher"),
            "{}",
            second.health_description
        );
    }
}
