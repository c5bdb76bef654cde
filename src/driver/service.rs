//! The Driver service. Handlers are thin: decode, ask the executor (via `tasks.rs`), encode.
//! Network RPCs answer UNIMPLEMENTED until they land; exec lives in `exec.rs`.

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status, Streaming};

use super::error::DriverError;
use super::{schema, tasks, wire, State};
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
    TaskConfigSchemaRequest, TaskConfigSchemaResponse, TaskDriverStatus, TaskStatsRequest,
    TaskStatsResponse, WaitTaskRequest, WaitTaskResponse,
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
        exec: true,
        // Nomad builds the task dir on host paths; our Landlock rules are per task and opt-in,
        // so we do not claim UNVEIL (which also needs Nomad >= 1.8 and alloc_mounts).
        fs_isolation: FsIsolation::None as i32,
        // GROUP: tasks join the allocation's network namespace (bridge/CNI networking).
        network_isolation_modes: vec![
            NetworkIsolationMode::Host as i32,
            NetworkIsolationMode::Group as i32,
        ],
        must_create_network: false,
        // ANY_MOUNTS (an alias of 0): host and CSI volumes and devices are bind-mounted in the
        // task's mount namespace.
        mount_configs: MountConfigs::UnknownMounts as i32,
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
        let denials = self.denials();
        let landlock = denials.reporting().clone();
        let audit_on = denials.turned_audit_on();
        let startup_memory = self.startup_memory.clone();
        let stream = async_stream(move |tx| async move {
            // The first message goes out at once; the periodic re-send starts one period later.
            let start = tokio::time::Instant::now() + FINGERPRINT_PERIOD;
            let mut tick = tokio::time::interval_at(start, FINGERPRINT_PERIOD);
            loop {
                let cfg = config.borrow_and_update().clone();
                let mut fp = super::fingerprint::fingerprint(&probe, &cfg);
                // Seccomp denials are reported where tasks can run at all (seccomp with user
                // notification, which the exec gate needs too) unless the operator turned it off.
                let seccomp = cfg.seccomp_denials
                    && fp.attributes.get(super::fingerprint::attr::SECCOMP)
                        == Some(&super::fingerprint::AttrValue::Bool(true));
                let attr = super::denials::denials_attribute(seccomp, &landlock);
                super::denials::fingerprint_attributes(&mut fp, &attr, audit_on);
                if tx.send(Ok(wire::fingerprint(&fp))).await.is_err() {
                    return; // the client went away
                }
                startup_memory.fingerprint_sent();
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
        req: Request<RecoverTaskRequest>,
    ) -> Result<Response<RecoverTaskResponse>, Status> {
        tasks::recover(self, req.into_inner().handle).await?;
        Ok(Response::new(RecoverTaskResponse {}))
    }

    async fn start_task(
        &self,
        req: Request<StartTaskRequest>,
    ) -> Result<Response<StartTaskResponse>, Status> {
        let task = req
            .into_inner()
            .task
            .ok_or_else(|| Status::invalid_argument("StartTask without a task config"))?;
        let handle = tasks::start(self, task).await?;
        Ok(Response::new(StartTaskResponse {
            handle: Some(handle),
            ..Default::default()
        }))
    }

    async fn wait_task(
        &self,
        req: Request<WaitTaskRequest>,
    ) -> Result<Response<WaitTaskResponse>, Status> {
        let exit = self
            .executor()?
            .wait(&req.into_inner().task_id)
            .await
            .map_err(DriverError::from)?;
        Ok(Response::new(WaitTaskResponse {
            result: Some(tasks::exit_result(&exit)),
            err: exit.err.clone().unwrap_or_default(),
        }))
    }

    async fn stop_task(
        &self,
        req: Request<StopTaskRequest>,
    ) -> Result<Response<StopTaskResponse>, Status> {
        let req = req.into_inner();
        let timeout = req
            .timeout
            .map(|d| Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32))
            .unwrap_or_default();
        self.executor()?
            .stop(&req.task_id, &req.signal, timeout)
            .await
            .map_err(DriverError::from)?;
        Ok(Response::new(StopTaskResponse {}))
    }

    async fn destroy_task(
        &self,
        req: Request<DestroyTaskRequest>,
    ) -> Result<Response<DestroyTaskResponse>, Status> {
        let req = req.into_inner();
        self.executor()?
            .destroy(&req.task_id, req.force)
            .await
            .map_err(DriverError::from)?;
        if let Some(d) = self.denials.get() {
            d.remove_task(&req.task_id);
        }
        Ok(Response::new(DestroyTaskResponse {}))
    }

    async fn inspect_task(
        &self,
        req: Request<InspectTaskRequest>,
    ) -> Result<Response<InspectTaskResponse>, Status> {
        let id = req.into_inner().task_id;
        let info = self.executor()?.inspect(&id).map_err(DriverError::from)?;
        let name = id.split('/').nth(1).unwrap_or_default();
        let attributes = [
            ("pid".to_string(), info.pid.to_string()),
            ("cgroup".to_string(), info.cgroup.display().to_string()),
        ];
        Ok(Response::new(InspectTaskResponse {
            task: Some(tasks::task_status(&info, name)),
            driver: Some(TaskDriverStatus {
                attributes: attributes.into_iter().collect(),
            }),
            network_override: None,
        }))
    }

    type TaskStatsStream = BoxStream<TaskStatsResponse>;

    async fn task_stats(
        &self,
        req: Request<TaskStatsRequest>,
    ) -> Result<Response<Self::TaskStatsStream>, Status> {
        let req = req.into_inner();
        let executor = self.executor()?;
        // Unknown task: an error now, not an empty stream.
        executor.inspect(&req.task_id).map_err(DriverError::from)?;
        let interval = req
            .collection_interval
            .map(|d| Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32))
            .unwrap_or(Duration::from_secs(1))
            .max(tasks::MIN_STATS_INTERVAL);
        // The first sample at once, then at the ticks of the ticker shared by all streams of
        // this interval (`stats_ticks.rs`): many tasks' streams wake and write together (one
        // flush for all of them) instead of one wake-up and one socket write per task spread
        // over the second, and a task with several streams is read once per tick. The stream
        // samples when the server polls it for the next message (no producer task and channel
        // between them); a client that goes away drops it.
        let stream = StatsStream {
            executor,
            task_id: req.task_id,
            ticks: self.stats_ticks.subscribe(interval, &self.shutdown),
            cursor: Default::default(),
            first: true,
            done: false,
        };
        Ok(Response::new(Box::pin(futures::stream::unfold(
            stream,
            StatsStream::next,
        ))))
    }

    async fn signal_task(
        &self,
        req: Request<SignalTaskRequest>,
    ) -> Result<Response<SignalTaskResponse>, Status> {
        let req = req.into_inner();
        self.executor()?
            .signal(&req.task_id, &req.signal)
            .await
            .map_err(DriverError::from)?;
        Ok(Response::new(SignalTaskResponse {}))
    }

    async fn exec_task(
        &self,
        req: Request<ExecTaskRequest>,
    ) -> Result<Response<ExecTaskResponse>, Status> {
        let ex = self.executor()?;
        Ok(Response::new(
            super::exec::exec_task(ex, req.into_inner(), &self.config()).await?,
        ))
    }

    type ExecTaskStreamingStream = BoxStream<ExecTaskStreamingResponse>;

    async fn exec_task_streaming(
        &self,
        req: Request<Streaming<ExecTaskStreamingRequest>>,
    ) -> Result<Response<Self::ExecTaskStreamingStream>, Status> {
        let ex = self.executor()?;
        Ok(Response::new(
            super::exec::exec_streaming(ex, req.into_inner(), &self.config()).await?,
        ))
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

/// State of one TaskStats stream between messages.
struct StatsStream {
    executor: std::sync::Arc<crate::executor::Executor>,
    task_id: String,
    /// The shared ticker of this stream's interval; closed at shutdown.
    ticks: tokio::sync::watch::Receiver<tokio::time::Instant>,
    /// This stream's previous sample: its CPU percentages are relative to it.
    cursor: crate::executor::stats::Cursor,
    first: bool,
    /// An error was sent: the stream ends.
    done: bool,
}

impl StatsStream {
    async fn next(mut self) -> Option<(Result<TaskStatsResponse, Status>, Self)> {
        if self.done {
            return None;
        }
        let tick = if self.first {
            None
        } else {
            // The ticker stopped: the plugin shuts down.
            self.ticks.changed().await.ok()?;
            Some(self.ticks.borrow_and_update().into_std())
        };
        self.first = false;
        let msg = match self
            .executor
            .stream_stats(&self.task_id, tick, &mut self.cursor)
        {
            Ok(s) => Ok(TaskStatsResponse {
                stats: Some(tasks::task_stats(&self.task_id, &s)),
            }),
            // The task is gone (destroyed): end the stream, as built-in drivers do.
            Err(crate::executor::ExecError::NotFound(_)) => return None,
            Err(e) => {
                self.done = true;
                Err(Status::from(DriverError::from(e)))
            }
        };
        Some((msg, self))
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
    async fn network_rpcs_are_unimplemented_with_a_message() {
        let s = state();
        let e = s
            .create_network(Request::new(CreateNetworkRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unimplemented);
        assert!(e.message().contains("CreateNetwork"), "{}", e.message());
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
