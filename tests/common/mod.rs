//! Test support shared by every integration test that drives the built binary the way a Nomad
//! client does: spawn with the magic cookie, read the go-plugin handshake, connect over the unix
//! socket, and collect stderr (hclog JSON lines).
#![allow(dead_code, unused_imports, clippy::all)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::{Channel, Endpoint, Uri};

pub mod audit;
pub mod tasks;

/// Which host features this machine must have (`NOMAD_PLEDGE_TEST_REQUIRE`); see `require_host!`.
#[path = "../../src/host_features.rs"]
pub mod host_features;

/// Generated protocol types and clients (the same protos the binary is built from).
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
    pub use hashicorp::nomad::plugins::base::proto as base;
    pub use hashicorp::nomad::plugins::drivers::proto as drivers;
    pub use hashicorp::nomad::plugins::shared::hclspec;
}

pub const COOKIE_KEY: &str = "NOMAD_PLUGIN_MAGIC_COOKIE";
pub const COOKIE_VALUE: &str = "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255";
pub const BIN: &str = env!("CARGO_BIN_EXE_nomad-pledge-driver");

/// Generous upper bound for things that should happen "at once" (not a timing assertion: only a
/// guard against hanging forever).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running plugin process and a gRPC channel to it.
pub struct Plugin {
    pub child: Child,
    pub socket: PathBuf,
    pub channel: Channel,
    pub stderr: Arc<Mutex<Vec<String>>>,
    /// Lines written to stdout after the handshake (must stay empty).
    pub extra_stdout: Arc<Mutex<Vec<String>>>,
    /// Finishes when stderr reaches EOF (the process exited and every line was collected).
    stderr_done: tokio::task::JoinHandle<()>,
}

impl Plugin {
    /// Spawns the binary with the cookie and extra environment, completes the handshake and
    /// connects.
    pub async fn start(envs: &[(&str, &str)]) -> Plugin {
        Plugin::start_under(&[], envs).await
    }

    /// The same, run through `wrapper` (a command that execs its arguments, e.g. `prlimit`).
    pub async fn start_under(wrapper: &[&str], envs: &[(&str, &str)]) -> Plugin {
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.env(COOKIE_KEY, COOKIE_VALUE)
            .env("PLUGIN_PROTOCOL_VERSIONS", "2")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn plugin binary");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_done = {
            let stderr = stderr.clone();
            let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    stderr.lock().unwrap().push(line);
                }
            })
        };
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(PATIENCE, stdout.next_line())
            .await
            .expect("handshake line in time")
            .expect("read stdout")
            .unwrap_or_else(|| panic!("plugin exited before the handshake: {:?}", stderr));
        let socket = parse_handshake(&line);
        let extra_stdout = Arc::new(Mutex::new(Vec::new()));
        {
            let extra = extra_stdout.clone();
            tokio::spawn(async move {
                while let Ok(Some(line)) = stdout.next_line().await {
                    extra.lock().unwrap().push(line);
                }
            });
        }
        let channel = connect(socket.clone()).await;
        Plugin {
            child,
            socket,
            channel,
            stderr,
            extra_stdout,
            stderr_done,
        }
    }

    pub fn base(&self) -> pb::base::base_plugin_client::BasePluginClient<Channel> {
        pb::base::base_plugin_client::BasePluginClient::new(self.channel.clone())
    }

    pub fn driver(&self) -> pb::drivers::driver_client::DriverClient<Channel> {
        pb::drivers::driver_client::DriverClient::new(self.channel.clone())
    }

    pub fn health(&self) -> tonic_health::pb::health_client::HealthClient<Channel> {
        tonic_health::pb::health_client::HealthClient::new(self.channel.clone())
    }

    pub fn controller(&self) -> pb::plugin::grpc_controller_client::GrpcControllerClient<Channel> {
        pb::plugin::grpc_controller_client::GrpcControllerClient::new(self.channel.clone())
    }

    /// stderr lines so far, parsed as JSON (panics on a non-JSON line).
    pub fn log_records(&self) -> Vec<serde_json::Value> {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stderr line {l:?} is not JSON: {e}"))
            })
            .collect()
    }

    /// Asks the plugin to stop through go-plugin's controller and waits for the exit status and
    /// for every stderr line to be collected.
    pub async fn shutdown(mut self) -> (std::process::ExitStatus, PathBuf) {
        let _ = self.controller().shutdown(pb::plugin::Empty {}).await;
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("plugin exits after Shutdown")
            .expect("wait plugin");
        let _ = tokio::time::timeout(PATIENCE, &mut self.stderr_done).await;
        (status, self.socket.clone())
    }
}

/// Parses `1|2|unix|<path>|grpc` and returns the socket path.
pub fn parse_handshake(line: &str) -> PathBuf {
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    assert!(fields.len() >= 5, "handshake line {line:?}");
    assert_eq!(fields[0], "1", "core protocol in {line:?}");
    assert_eq!(fields[1], "2", "app protocol in {line:?}");
    assert_eq!(fields[2], "unix", "network in {line:?}");
    assert_eq!(fields[4], "grpc", "protocol in {line:?}");
    PathBuf::from(fields[3])
}

/// A tonic channel over a unix socket (the authority is meaningless, as with Nomad).
pub async fn connect(socket: PathBuf) -> Channel {
    Endpoint::try_from("http://unused")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }))
        .await
        .expect("connect to the plugin socket")
}

/// A value of a flat task or plugin config, for [`msgpack`].
#[derive(Clone, Copy)]
pub enum V<'a> {
    S(&'a str),
    B(bool),
    Nil,
    L(&'a [&'a str]),
    /// A map of strings (`map(string)` attributes such as `ulimit`).
    M(&'a [(&'a str, &'a str)]),
}

/// Encodes a flat map of string / bool / nil / list-of-string values as cty msgpack (keys sorted,
/// like go-cty).
pub fn msgpack(fields: &[(&str, V)]) -> Vec<u8> {
    let mut sorted: Vec<_> = fields.iter().collect();
    sorted.sort_by_key(|(k, _)| *k);
    let mut out = vec![0x80 | sorted.len() as u8];
    fn s(out: &mut Vec<u8>, v: &str) {
        assert!(v.len() < 256, "test strings are short");
        out.push(0xd9);
        out.push(v.len() as u8);
        out.extend_from_slice(v.as_bytes());
    }
    for (k, v) in sorted {
        s(&mut out, k);
        match v {
            V::S(v) => s(&mut out, v),
            V::B(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
            V::Nil => out.push(0xc0),
            V::L(items) => {
                out.push(0x90 | items.len() as u8);
                for i in *items {
                    s(&mut out, i);
                }
            }
            V::M(entries) => {
                out.push(0x80 | entries.len() as u8);
                for (k, v) in *entries {
                    s(&mut out, k);
                    s(&mut out, v);
                }
            }
        }
    }
    out
}

/// A SetConfig request; `nomad` = the long-lived instance (nomad_config set).
pub fn set_config(bytes: Vec<u8>, nomad: bool) -> pb::base::SetConfigRequest {
    pb::base::SetConfigRequest {
        msgpack_config: bytes,
        nomad_config: nomad.then_some(pb::base::NomadConfig {
            driver: Some(pb::base::NomadDriverConfig {
                client_max_port: 14512,
                client_min_port: 14000,
                topology: None,
            }),
        }),
        plugin_api_version: "v0.1.0".into(),
    }
}
