//! ExecTask and ExecTaskStreaming: wire types in, [`Executor::exec`] sessions out. The executor
//! runs the command inside the task's sandbox; this module pumps its stdio and applies timeouts
//! and cancellation (both kill the command).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::config::PluginConfig;
use super::error::DriverError;
use crate::executor::{exec::resize_pty, ExecMode, Executor};
use crate::proto::drivers::{
    ExecTaskRequest, ExecTaskResponse, ExecTaskStreamingIoOperation as IoOp,
    ExecTaskStreamingRequest, ExecTaskStreamingResponse, ExitResult,
};

/// ExecTask keeps at most this much of each stream (script checks show a short output; a
/// command that writes without end must not grow the plugin's memory). The rest is read and
/// dropped so the command never blocks on a full pipe.
pub const EXEC_OUTPUT_LIMIT: usize = 1 << 20;

/// Reads `r` to its end, keeping the first `limit` bytes.
async fn read_capped(mut r: impl AsyncRead + Unpin, limit: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = limit.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    kept
}

/// Default terminal size when a tty session gives none.
const DEFAULT_TTY: (u16, u16) = (24, 80);

fn result_of(status: std::io::Result<std::process::ExitStatus>) -> ExitResult {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(st) => match (st.code(), st.signal()) {
            (Some(code), _) => ExitResult {
                exit_code: code,
                signal: if code > 128 { code - 128 } else { 0 },
                oom_killed: false,
            },
            (None, sig) => ExitResult {
                exit_code: 128 + sig.unwrap_or(0),
                signal: sig.unwrap_or(0),
                oom_killed: false,
            },
        },
        Err(_) => ExitResult {
            exit_code: 127,
            signal: 0,
            oom_killed: false,
        },
    }
}

/// An exec session runs under the task's policy: it is held to the ceiling configured now
/// (the operator may have lowered it since the task started). Unknown tasks are left to
/// `Executor::exec`, which reports them.
fn check_ceiling(ex: &Executor, task_id: &str, plugin: &PluginConfig) -> Result<(), DriverError> {
    match ex.task_spec(task_id) {
        Some(spec) => super::ceiling::check(plugin, &spec),
        None => Ok(()),
    }
}

/// ExecTask: run, capture both streams, kill on `timeout`; `result` is always set.
pub async fn exec_task(
    ex: Arc<Executor>,
    req: ExecTaskRequest,
    plugin: &PluginConfig,
) -> Result<ExecTaskResponse, DriverError> {
    check_ceiling(&ex, &req.task_id, plugin)?;
    let mut p = ex.exec(&req.task_id, &req.command, ExecMode::Pipes).await?;
    drop(p.child.stdin.take());
    let out = p.child.stdout.take().expect("stdout is piped");
    let err = p.child.stderr.take().expect("stderr is piped");
    let timeout = req
        .timeout
        .and_then(|d| Duration::try_from(d).ok())
        .filter(|d| !d.is_zero());
    let io = async {
        tokio::join!(
            read_capped(out, EXEC_OUTPUT_LIMIT),
            read_capped(err, EXEC_OUTPUT_LIMIT)
        )
    };
    tokio::pin!(io);
    let (o, e) = match timeout {
        Some(t) => match tokio::time::timeout(t, &mut io).await {
            Ok(v) => v,
            Err(_) => {
                p.terminate();
                io.await
            }
        },
        None => io.await,
    };
    let status = p.child.wait().await;
    Ok(ExecTaskResponse {
        stdout: o,
        stderr: e,
        result: Some(result_of(status)),
    })
}

type BoxStream<T> = Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send + 'static>>;

#[derive(Clone, Copy)]
enum Which {
    Stdout,
    Stderr,
}

fn frame(which: Which, op: IoOp) -> ExecTaskStreamingResponse {
    let mut r = ExecTaskStreamingResponse::default();
    match which {
        Which::Stdout => r.stdout = Some(op),
        Which::Stderr => r.stderr = Some(op),
    }
    r
}

/// Sends `reader`'s bytes as frames, then its close frame.
async fn pump(
    mut reader: impl AsyncRead + Unpin,
    which: Which,
    tx: mpsc::Sender<Result<ExecTaskStreamingResponse, Status>>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // A pty master reports EIO once the command side is closed: that is its end of file.
        let n = reader.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        let op = IoOp {
            data: buf[..n].to_vec(),
            close: false,
        };
        if tx.send(Ok(frame(which, op))).await.is_err() {
            return;
        }
    }
    let close = IoOp {
        data: Vec::new(),
        close: true,
    };
    let _ = tx.send(Ok(frame(which, close))).await;
}

fn tty_size(req: &ExecTaskStreamingRequest) -> Option<(u16, u16)> {
    let t = req.tty_size.as_ref()?;
    let rows = u16::try_from(t.height).ok().filter(|r| *r > 0)?;
    let cols = u16::try_from(t.width).ok().filter(|c| *c > 0)?;
    Some((rows, cols))
}

/// ExecTaskStreaming: the first frame carries `setup`; later frames carry stdin, its close,
/// terminal sizes, or nothing (heartbeats). Dropping the response stream kills the command.
pub async fn exec_streaming(
    ex: Arc<Executor>,
    mut input: Streaming<ExecTaskStreamingRequest>,
    plugin: &PluginConfig,
) -> Result<BoxStream<ExecTaskStreamingResponse>, Status> {
    let first = input.message().await?.ok_or_else(|| {
        Status::invalid_argument("ExecTaskStreaming: the stream ended before the `setup` frame")
    })?;
    let setup = first.setup.clone().ok_or_else(|| {
        Status::invalid_argument(
            "ExecTaskStreaming: the first frame must carry `setup` (task_id, command, tty)",
        )
    })?;
    check_ceiling(&ex, &setup.task_id, plugin)?;
    let mode = if setup.tty {
        let (rows, cols) = tty_size(&first).unwrap_or(DEFAULT_TTY);
        ExecMode::Tty { rows, cols }
    } else {
        ExecMode::Pipes
    };
    let mut p = ex
        .exec(&setup.task_id, &setup.command, mode)
        .await
        .map_err(DriverError::from)?;
    let io_err = |e: std::io::Error| Status::internal(format!("exec: cannot use the pty: {e}"));
    let (tx, rx) = mpsc::channel(16);
    let mut pumps = Vec::new();
    let (stdin, pty): (Box<dyn AsyncWrite + Send + Unpin>, Option<std::fs::File>) =
        match p.pty.as_ref() {
            Some(master) => {
                let r = tokio::fs::File::from_std(master.try_clone().map_err(io_err)?);
                pumps.push(tokio::spawn(pump(r, Which::Stdout, tx.clone())));
                let w = tokio::fs::File::from_std(master.try_clone().map_err(io_err)?);
                (Box::new(w), Some(master.try_clone().map_err(io_err)?))
            }
            None => {
                let out = p.child.stdout.take().expect("stdout is piped");
                let err = p.child.stderr.take().expect("stderr is piped");
                pumps.push(tokio::spawn(pump(out, Which::Stdout, tx.clone())));
                pumps.push(tokio::spawn(pump(err, Which::Stderr, tx.clone())));
                (
                    Box::new(p.child.stdin.take().expect("stdin is piped")),
                    None,
                )
            }
        };
    let (kill_tx, mut kill_rx) = mpsc::channel::<()>(1);
    let input_task = tokio::spawn(read_input(input, stdin, pty, kill_tx));
    tokio::spawn(async move {
        let mut killed = false;
        let status = loop {
            tokio::select! {
                st = p.child.wait() => break st,
                Some(()) = kill_rx.recv(), if !killed => { killed = true; p.terminate(); }
                _ = tx.closed(), if !killed => { killed = true; p.terminate(); }
            }
        };
        input_task.abort();
        for h in pumps {
            let _ = h.await;
        }
        let last = ExecTaskStreamingResponse {
            exited: true,
            result: Some(result_of(status)),
            ..Default::default()
        };
        let _ = tx.send(Ok(last)).await;
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

/// Client frames after setup. A broken request stream kills the command; a half-closed one
/// only stops reading (the command runs on and its output is still sent).
async fn read_input(
    mut input: Streaming<ExecTaskStreamingRequest>,
    stdin: Box<dyn AsyncWrite + Send + Unpin>,
    pty: Option<std::fs::File>,
    kill: mpsc::Sender<()>,
) {
    let mut stdin = Some(stdin);
    loop {
        let msg = match input.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(_) => {
                let _ = kill.send(()).await;
                return;
            }
        };
        if let (Some(m), Some((rows, cols))) = (pty.as_ref(), tty_size(&msg)) {
            let _ = resize_pty(m, rows, cols);
        }
        if let Some(op) = msg.stdin {
            if let Some(w) = stdin.as_mut() {
                if !op.data.is_empty()
                    && (w.write_all(&op.data).await.is_err() || w.flush().await.is_err())
                {
                    stdin = None;
                }
            }
            if op.close {
                if let Some(mut w) = stdin.take() {
                    let _ = w.shutdown().await;
                }
                // A pty has no separate end of input: send the terminal's EOF character.
                if let Some(m) = pty.as_ref() {
                    let mut w = tokio::fs::File::from_std(match m.try_clone() {
                        Ok(f) => f,
                        Err(_) => continue,
                    });
                    let _ = w.write_all(&[4]).await;
                    let _ = w.flush().await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn capped_reads_keep_the_head_and_drain_the_rest() {
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let kept = read_capped(&data[..], 1000).await;
        assert_eq!(kept, &data[..1000]);
        assert_eq!(read_capped(&data[..10], 1000).await, &data[..10]);
    }

    #[test]
    fn results_report_signal_deaths() {
        use std::os::unix::process::ExitStatusExt;
        let r = result_of(Ok(std::process::ExitStatus::from_raw(137 << 8)));
        assert_eq!((r.exit_code, r.signal), (137, 9));
        let r = result_of(Ok(std::process::ExitStatus::from_raw(3 << 8)));
        assert_eq!((r.exit_code, r.signal), (3, 0));
        let r = result_of(Err(std::io::Error::other("x")));
        assert_eq!(r.exit_code, 127);
    }

    #[test]
    fn tty_sizes_must_be_positive() {
        let mut req = ExecTaskStreamingRequest::default();
        assert_eq!(tty_size(&req), None);
        req.tty_size = Some(
            crate::proto::drivers::exec_task_streaming_request::TerminalSize {
                height: 40,
                width: 120,
            },
        );
        assert_eq!(tty_size(&req), Some((40, 120)));
        req.tty_size.as_mut().unwrap().width = -1;
        assert_eq!(tty_size(&req), None);
    }
}
