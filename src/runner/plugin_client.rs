//! Launches this binary as a Nomad plugin over the real go-plugin handshake and connects to it,
//! exactly as a Nomad client does (nomad-plugin-protocol.md §1).

use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::plugin::cookie::{MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};
use crate::proto::base::base_plugin_client::BasePluginClient;
use crate::proto::drivers::driver_client::DriverClient;
use crate::proto::plugin::{grpc_controller_client::GrpcControllerClient, Empty};

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot start the plugin {path}")]
    Spawn { path: PathBuf, source: io::Error },
    #[error("the plugin exited before its handshake; its log above says why")]
    NoHandshake,
    #[error("the plugin sent no handshake within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("the plugin's handshake {0:?} is not `1|2|unix|PATH|grpc`")]
    BadHandshake(String),
    #[error("cannot connect to the plugin socket {path}")]
    Connect {
        path: PathBuf,
        source: tonic::transport::Error,
    },
}

/// A running plugin process.
pub struct PluginProcess {
    child: Child,
    pub channel: Channel,
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

impl PluginProcess {
    /// Starts `exe` as a plugin; its hclog lines are shown on our stderr (warnings and errors
    /// always, everything when `verbose`).
    pub async fn start(exe: PathBuf, verbose: bool) -> Result<PluginProcess, ClientError> {
        let mut child = Command::new(&exe)
            .env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
            .env("PLUGIN_PROTOCOL_VERSIONS", "2")
            .env("PLUGIN_MIN_PORT", "10000")
            .env("PLUGIN_MAX_PORT", "25000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ClientError::Spawn { path: exe, source })?;
        let stderr = child.stderr.take().expect("stderr is piped");
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                show_log_line(&line, verbose);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let line = tokio::time::timeout(HANDSHAKE_TIMEOUT, stdout.next_line())
            .await
            .map_err(|_| ClientError::HandshakeTimeout(HANDSHAKE_TIMEOUT))?
            .ok()
            .flatten()
            .ok_or(ClientError::NoHandshake)?;
        let socket = parse_handshake(&line)?;
        let channel = connect(socket.clone())
            .await
            .map_err(|source| ClientError::Connect {
                path: socket,
                source,
            })?;
        Ok(PluginProcess { child, channel })
    }

    pub fn base(&self) -> BasePluginClient<Channel> {
        BasePluginClient::new(self.channel.clone())
    }

    pub fn driver(&self) -> DriverClient<Channel> {
        DriverClient::new(self.channel.clone())
    }

    /// go-plugin's shutdown: the controller's Shutdown, then up to 2 s, then SIGKILL.
    pub async fn shutdown(mut self) {
        let _ = GrpcControllerClient::new(self.channel.clone())
            .shutdown(Empty {})
            .await;
        if tokio::time::timeout(Duration::from_secs(2), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

fn parse_handshake(line: &str) -> Result<PathBuf, ClientError> {
    match line.trim_end().split('|').collect::<Vec<_>>().as_slice() {
        ["1", "2", "unix", path, "grpc", ..] => Ok(PathBuf::from(path)),
        _ => Err(ClientError::BadHandshake(line.to_string())),
    }
}

async fn connect(socket: PathBuf) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_static("http://plugin")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, io::Error>(TokioIo::new(tokio::net::UnixStream::connect(socket).await?))
            }
        }))
        .await
}

/// Renders one hclog JSON line as `plugin: LEVEL message key=value ...`.
fn show_log_line(line: &str, verbose: bool) {
    let Ok(serde_json::Value::Object(record)) = serde_json::from_str::<serde_json::Value>(line)
    else {
        super::term::status_line(format_args!("plugin: {line}"));
        return;
    };
    let level = record
        .get("@level")
        .and_then(|v| v.as_str())
        .unwrap_or("info");
    if !verbose && !matches!(level, "warn" | "error") {
        return;
    }
    let message = record
        .get("@message")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let fields: Vec<String> = record
        .iter()
        .filter(|(k, _)| !k.starts_with('@'))
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s:?}"),
            other => format!("{k}={other}"),
        })
        .collect();
    super::term::status_line(format_args!(
        "plugin: {} {message} {}",
        level.to_uppercase(),
        fields.join(" ")
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_lines() {
        assert_eq!(
            parse_handshake("1|2|unix|/tmp/x/plugin.sock|grpc\n").unwrap(),
            PathBuf::from("/tmp/x/plugin.sock")
        );
        assert!(parse_handshake("1|1|unix|/tmp/x|grpc").is_err());
        assert!(parse_handshake("hello").is_err());
    }
}
