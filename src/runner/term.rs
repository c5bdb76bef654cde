//! The terminal `run` shares with its tasks: task output is copied to our stdout/stderr a line
//! at a time, and `run`'s own lines (`==> ...`, plugin log lines) start at a line boundary.
//!
//! Each copier ([`LineCopier`]) writes complete lines as they come and holds back a trailing
//! partial line until it is completed, the writer closes, or the task has been quiet for
//! [`PARTIAL_LINE_GRACE`] (a prompt without newline must still show). A partial line that was
//! written leaves its stream "in the middle of a line, by copier N"; whoever writes next to
//! that stream (a status line, another task's copier) first ends it with a newline.

use std::fmt::Display;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How long a partial line waits for its newline before it is shown anyway.
pub const PARTIAL_LINE_GRACE: Duration = Duration::from_millis(200);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// For each stream, the writer that left it in the middle of a line (None: at a line start).
static MID_LINE: Mutex<[Option<u64>; 2]> = Mutex::new([None, None]);
static NEXT_WRITER: AtomicU64 = AtomicU64::new(1);
/// Status lines are written as this writer.
const STATUS: u64 = 0;

fn index(s: Stream) -> usize {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

/// Writes `bytes` to `out` as `writer`, ending another writer's partial line first; returns the
/// new mid-line owner of the stream.
fn write_as(
    mid: Option<u64>,
    writer: u64,
    bytes: &[u8],
    out: &mut dyn Write,
) -> io::Result<Option<u64>> {
    if bytes.is_empty() {
        return Ok(mid);
    }
    if mid.is_some_and(|m| m != writer) {
        out.write_all(b"\n")?;
    }
    out.write_all(bytes)?;
    out.flush()?;
    Ok(if bytes.ends_with(b"\n") {
        None
    } else {
        Some(writer)
    })
}

fn write_stream(stream: Stream, writer: u64, bytes: &[u8]) -> io::Result<()> {
    let mut mid = MID_LINE.lock().unwrap_or_else(|p| p.into_inner());
    let i = index(stream);
    let r = match stream {
        Stream::Stdout => write_as(mid[i], writer, bytes, &mut io::stdout().lock()),
        Stream::Stderr => write_as(mid[i], writer, bytes, &mut io::stderr().lock()),
    };
    if let Ok(m) = r {
        mid[i] = m;
    }
    r.map(|_| ())
}

/// `status!("...", args)`: [`status_line`] with `format!` arguments.
macro_rules! status {
    ($($arg:tt)*) => {
        $crate::runner::term::status_line(format_args!($($arg)*))
    };
}
pub(crate) use status;

/// Prints one of `run`'s own lines on stderr, at a line boundary.
pub fn status_line(line: impl Display) {
    let _ = write_stream(Stream::Stderr, STATUS, format!("{line}\n").as_bytes());
}

/// Where a copier writes.
pub enum Target {
    /// Our stdout or stderr, shared with status lines and other copiers.
    Terminal(Stream),
    /// Any other writer (tests), not shared.
    #[cfg_attr(not(test), allow(dead_code))]
    Writer(Box<dyn Write + Send>),
}

/// Copies one task stream to ours a line at a time.
pub struct LineCopier {
    target: Target,
    writer: u64,
    /// The trailing partial line held back.
    pending: Vec<u8>,
}

impl LineCopier {
    pub fn new(target: Target) -> LineCopier {
        LineCopier {
            target,
            writer: NEXT_WRITER.fetch_add(1, Ordering::Relaxed),
            pending: Vec::new(),
        }
    }

    /// Data the task wrote: every complete line is written now, the rest held back.
    pub fn push(&mut self, data: &[u8]) -> io::Result<()> {
        let (now, rest) = split_lines(&mut self.pending, data);
        self.pending = rest;
        self.write(&now)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.target {
            Target::Terminal(stream) => write_stream(*stream, self.writer, bytes),
            Target::Writer(w) if !bytes.is_empty() => {
                w.write_all(bytes)?;
                w.flush()
            }
            Target::Writer(_) => Ok(()),
        }
    }

    /// Whether a partial line is held back.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes the held-back partial line (the task was quiet, or closed its end).
    pub fn flush_partial(&mut self) -> io::Result<()> {
        let bytes = std::mem::take(&mut self.pending);
        self.write(&bytes)
    }
}

/// `pending` + `data` split into what ends with the last newline and the remainder.
fn split_lines(pending: &mut Vec<u8>, data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    match data.iter().rposition(|&b| b == b'\n') {
        Some(last) => {
            let mut now = std::mem::take(pending);
            now.extend_from_slice(&data[..=last]);
            (now, data[last + 1..].to_vec())
        }
        None => {
            let mut rest = std::mem::take(pending);
            rest.extend_from_slice(data);
            (Vec::new(), rest)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_lines_go_out_and_the_tail_waits() {
        let mut pending = Vec::new();
        let (now, rest) = split_lines(&mut pending, b"a\nb");
        assert_eq!((now.as_slice(), rest.as_slice()), (&b"a\n"[..], &b"b"[..]));
        let mut pending = rest;
        let (now, rest) = split_lines(&mut pending, b"c");
        assert_eq!((now.as_slice(), rest.as_slice()), (&b""[..], &b"bc"[..]));
        let mut pending = rest;
        let (now, rest) = split_lines(&mut pending, b"d\n");
        assert_eq!((now.as_slice(), rest.as_slice()), (&b"bcd\n"[..], &b""[..]));
    }

    #[test]
    fn another_writer_ends_a_partial_line_first() {
        let mut out = Vec::new();
        let mid = write_as(None, 7, b"prompt: ", &mut out).unwrap();
        assert_eq!(mid, Some(7));
        let mid = write_as(mid, STATUS, b"==> task \"t\" exited\n", &mut out).unwrap();
        assert_eq!(mid, None);
        let mid = write_as(mid, 7, b"more", &mut out).unwrap();
        let mid = write_as(mid, 7, b" of it\n", &mut out).unwrap();
        assert_eq!(mid, None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "prompt: \n==> task \"t\" exited\nmore of it\n"
        );
    }
}
