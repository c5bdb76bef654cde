//! `tracing` → hclog JSON lines on stderr, exactly as go-plugin parses them (protocol §1.5):
//! `@level` (trace/debug/info/warn/error), `@message`, `@timestamp` with six fractional digits,
//! `@module`, plus the event's fields. Write errors (EPIPE once the agent is gone) are ignored.

use std::fmt;
use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Environment variable that sets the initial log level (the plugin config's `log_level` wins once
/// SetConfig arrives).
pub const LOG_LEVEL_ENV: &str = "NOMAD_PLEDGE_DRIVER_LOG_LEVEL";

const OUR_TARGET: &str = "nomad_pledge_driver";

/// A log level as hclog names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// A log level string that is not one of the accepted words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown log level `{0}`: use one of trace, debug, info, warn, error")]
pub struct UnknownLogLevel(pub String);

impl FromStr for LogLevel {
    type Err = UnknownLogLevel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "trace" => Ok(Self::Trace),
            "debug" => Ok(Self::Debug),
            "info" => Ok(Self::Info),
            "warn" | "warning" => Ok(Self::Warn),
            "error" => Ok(Self::Error),
            _ => Err(UnknownLogLevel(s.to_string())),
        }
    }
}

impl LogLevel {
    fn from_tracing(level: &Level) -> Self {
        match *level {
            Level::ERROR => Self::Error,
            Level::WARN => Self::Warn,
            Level::INFO => Self::Info,
            Level::DEBUG => Self::Debug,
            Level::TRACE => Self::Trace,
        }
    }

    /// The word hclog uses (`warn`, never `warning`).
    pub fn as_hclog(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Error,
            2 => Self::Warn,
            4 => Self::Debug,
            5 => Self::Trace,
            _ => Self::Info,
        }
    }
}

/// Shared, changeable maximum level (SetConfig may change it at run time).
#[derive(Debug, Clone)]
pub struct LogLevelHandle(Arc<AtomicU8>);

impl LogLevelHandle {
    pub fn new(level: LogLevel) -> Self {
        Self(Arc::new(AtomicU8::new(level as u8)))
    }
    pub fn set(&self, level: LogLevel) {
        let old = self.0.swap(level as u8, Ordering::Relaxed);
        if old != level as u8 {
            // The layer's `max_level_hint` changed: let `tracing` recompute its global maximum,
            // which lets the macros of a disabled level skip the subscriber entirely.
            tracing::callsite::rebuild_interest_cache();
        }
    }
    pub fn get(&self) -> LogLevel {
        LogLevel::from_u8(self.0.load(Ordering::Relaxed))
    }
}

/// The initial level from [`LOG_LEVEL_ENV`]; an unusable value falls back to info (and is
/// reported once logging is up).
pub fn level_from_env() -> (LogLevel, Option<UnknownLogLevel>) {
    match std::env::var(LOG_LEVEL_ENV) {
        Ok(v) if !v.trim().is_empty() => match v.parse() {
            Ok(level) => (level, None),
            Err(e) => (LogLevel::Info, Some(e)),
        },
        _ => (LogLevel::Info, None),
    }
}

/// Installs the hclog layer as the global subscriber, writing to stderr.
pub fn init(handle: LogLevelHandle) {
    let layer = HclogLayer::new(handle, StderrSink);
    // A second init (only possible in tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Where formatted lines go. Implementations must never panic.
pub trait LineSink: Send + Sync + 'static {
    fn write_line(&self, line: &[u8]);
}

/// stderr, one `write` per line, errors ignored.
pub struct StderrSink;

impl LineSink for StderrSink {
    fn write_line(&self, line: &[u8]) {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line);
    }
}

/// A `tracing` layer that formats each event as one hclog JSON line.
pub struct HclogLayer<S> {
    level: LogLevelHandle,
    sink: S,
}

impl<S: LineSink> HclogLayer<S> {
    pub fn new(level: LogLevelHandle, sink: S) -> Self {
        Self { level, sink }
    }

    fn wanted(&self, meta: &Metadata<'_>) -> bool {
        let level = LogLevel::from_tracing(meta.level());
        let max = self.level.get();
        if level > max {
            return false;
        }
        // Dependencies (h2, hyper, tonic) only get through at warn or above, unless tracing.
        meta.target().starts_with(OUR_TARGET) || level <= LogLevel::Warn || max == LogLevel::Trace
    }
}

impl<S: LineSink, Sub: Subscriber> Layer<Sub> for HclogLayer<S> {
    fn register_callsite(
        &self,
        _meta: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // The level can change at run time: ask `enabled` every time.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, Sub>) -> bool {
        self.wanted(meta)
    }

    /// Nothing above the current level is ever logged. Without this hint every `trace!` and
    /// `debug!` of h2 and hyper (several per HTTP/2 frame, thousands a second with many stats
    /// streams) asked `enabled` first.
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        use tracing::level_filters::LevelFilter;
        Some(match self.level.get() {
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        })
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, Sub>) {
        let meta = event.metadata();
        if !self.wanted(meta) {
            return;
        }
        let mut line = format_record(
            LogLevel::from_tracing(meta.level()),
            &module_name(meta.target()),
            &hclog_timestamp(time::OffsetDateTime::now_utc()),
            event,
        );
        line.push('\n');
        self.sink.write_line(line.as_bytes());
    }
}

/// `nomad_pledge_driver::plugin::server` → `pledge.plugin.server`; foreign targets keep their
/// name with `::` → `.`.
pub fn module_name(target: &str) -> String {
    let rest = target
        .strip_prefix(OUR_TARGET)
        .map(|r| r.trim_start_matches("::"));
    match rest {
        Some("") => "pledge".to_string(),
        Some(r) => format!("pledge.{}", r.replace("::", ".")),
        None => target.replace("::", "."),
    }
}

/// RFC 3339 UTC with exactly six fractional digits (Go layout `2006-01-02T15:04:05.000000Z07:00`).
pub fn hclog_timestamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year().clamp(0, 9999),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

fn format_record(level: LogLevel, module: &str, timestamp: &str, event: &Event<'_>) -> String {
    let mut visitor = JsonVisitor::default();
    event.record(&mut visitor);
    let mut obj = Map::new();
    obj.insert("@level".into(), Value::String(level.as_hclog().into()));
    obj.insert(
        "@message".into(),
        Value::String(visitor.message.unwrap_or_default()),
    );
    obj.insert("@module".into(), Value::String(module.into()));
    obj.insert("@timestamp".into(), Value::String(timestamp.into()));
    for (k, v) in visitor.fields {
        obj.insert(k, v);
    }
    // serde_json never fails on a Map of Values; fall back to a plain line just in case.
    serde_json::to_string(&Value::Object(obj))
        .unwrap_or_else(|_| format!("[ERROR] unformattable log record at {timestamp}"))
}

#[derive(Default)]
struct JsonVisitor {
    message: Option<String>,
    fields: Vec<(String, Value)>,
}

impl JsonVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
            return;
        }
        // Keys starting with `@` are reserved by hclog: the host type-asserts some of them.
        let name = if field.name().starts_with('@') {
            format!("_{}", field.name())
        } else {
            field.name().to_string()
        };
        self.fields.push((name, value));
    }
}

impl Visit for JsonVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // NaN/inf are not JSON numbers: keep them readable as strings.
        let v = serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(value.to_string()));
        self.put(field, v);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(crate::errors::error_chain(value)));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<String>>>);
    impl LineSink for Capture {
        fn write_line(&self, line: &[u8]) {
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(line).into_owned());
        }
    }

    fn capture(level: LogLevel, f: impl FnOnce()) -> Vec<Value> {
        let sink = Capture::default();
        let sub = tracing_subscriber::registry()
            .with(HclogLayer::new(LogLevelHandle::new(level), sink.clone()));
        tracing::subscriber::with_default(sub, f);
        let lines = sink.0.lock().unwrap().clone();
        lines
            .iter()
            .map(|l| {
                assert!(l.ends_with('\n') && l.matches('\n').count() == 1, "{l:?}");
                serde_json::from_str(l).unwrap()
            })
            .collect()
    }

    #[test]
    fn record_has_hclog_keys_and_fields() {
        let recs = capture(LogLevel::Info, || {
            tracing::warn!(
                task_id = "a/b/c",
                pid = 42u32,
                ok = true,
                "task \"x\"\nstarted"
            );
        });
        assert_eq!(recs.len(), 1);
        let r = &recs[0];
        assert_eq!(r["@level"], "warn");
        assert_eq!(r["@message"], "task \"x\"\nstarted");
        assert_eq!(r["@module"], "pledge.plugin.logging.tests");
        assert_eq!(r["task_id"], "a/b/c");
        assert_eq!(r["pid"], 42);
        assert_eq!(r["ok"], true);
        let ts = r["@timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), "2024-05-01T10:00:00.123456Z".len(), "{ts}");
        assert_eq!(&ts[19..20], ".");
        assert!(ts[20..26].bytes().all(|b| b.is_ascii_digit()), "{ts}");
        assert!(ts.ends_with('Z'));
    }

    #[test]
    fn level_filter_applies_and_can_change() {
        let recs = capture(LogLevel::Info, || {
            tracing::debug!("hidden");
            tracing::info!("shown");
            tracing::trace!(target: "h2::proto", "hidden foreign");
        });
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0]["@message"], "shown");

        let handle = LogLevelHandle::new(LogLevel::Error);
        let sink = Capture::default();
        let sub =
            tracing_subscriber::registry().with(HclogLayer::new(handle.clone(), sink.clone()));
        tracing::subscriber::with_default(sub, || {
            tracing::info!("before");
            handle.set(LogLevel::Debug);
            tracing::debug!("after");
        });
        let lines = sink.0.lock().unwrap().clone();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("\"after\""));
    }

    /// The level is announced to `tracing` as the maximum, so the macros of finer levels (h2's
    /// and hyper's per-frame `trace!`) never reach the subscriber; it follows a change.
    #[test]
    fn the_level_is_announced_as_the_maximum() {
        use tracing::level_filters::LevelFilter;
        let handle = LogLevelHandle::new(LogLevel::Info);
        let layer = HclogLayer::new(handle.clone(), Capture::default());
        let hint = || Layer::<tracing_subscriber::Registry>::max_level_hint(&layer);
        assert_eq!(hint(), Some(LevelFilter::INFO));
        handle.set(LogLevel::Trace);
        assert_eq!(hint(), Some(LevelFilter::TRACE));
        handle.set(LogLevel::Error);
        assert_eq!(hint(), Some(LevelFilter::ERROR));
    }

    #[test]
    fn reserved_keys_cannot_be_overwritten() {
        let recs = capture(LogLevel::Info, || {
            tracing::info!("@level" = 5, "m");
        });
        assert_eq!(recs[0]["@level"], "info");
        assert_eq!(recs[0]["_@level"], 5);
    }

    #[test]
    fn timestamp_always_has_six_digits() {
        let t = time::OffsetDateTime::from_unix_timestamp(0).unwrap();
        assert_eq!(hclog_timestamp(t), "1970-01-01T00:00:00.000000Z");
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_714_557_600_123_456_789).unwrap();
        assert_eq!(hclog_timestamp(t), "2024-05-01T10:00:00.123456Z");
    }

    #[test]
    fn levels_parse() {
        assert_eq!("WARN".parse(), Ok(LogLevel::Warn));
        assert_eq!(" debug ".parse(), Ok(LogLevel::Debug));
        assert!("loud"
            .parse::<LogLevel>()
            .unwrap_err()
            .to_string()
            .contains("trace, debug"));
        assert_eq!(module_name("nomad_pledge_driver"), "pledge");
        assert_eq!(module_name("tonic::transport"), "tonic.transport");
    }
}
