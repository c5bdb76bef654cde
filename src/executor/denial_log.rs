//! Seccomp denials of a task, from the supervisor to the plugin (issue 16 item 1).
//!
//! The supervisor (root, PID 1 of the task's namespaces, outside its Landlock domain) serves the
//! promise filter's listener: it answers each denied call with the filter's errno, decodes it
//! ([`decode`](crate::sandbox::seccomp::decode)) and gives it to a [`Tracker`], which decides
//! what is worth a record:
//!
//! * **dedup**: the first occurrence of each syscall + fix (`socket needs promise inet`) is a
//!   [`Record::Denial`]; repeats are counted, and a [`Record::Count`] is written when the count
//!   reaches 10, 100, 1000, … and once more, with the total, when the task ends;
//! * **rate limit**: at most [`MAX_DISTINCT`] distinct denials per task (then one
//!   [`Record::Cut`]), and the file never grows past [`MAX_BYTES`] (then one
//!   [`Record::Truncated`]): a task making a million denied calls writes a few dozen lines;
//! * **rank**: terminal probes (`ioctl(fd, TCGETS)` on a pipe: isatty) are not written one by
//!   one but grouped in one [`Record::Probes`], [`PROBE_DELAY`] after the first (or when the
//!   task ends), so they come after, and never bury, the denial that made the program fail.
//!
//! Records are JSON lines appended to [`FILE`] in the task's state directory (root only, never
//! unveiled). The plugin follows the file ([`read_new`]) and remembers how far it published in
//! [`OFFSET_FILE`], so a restarted plugin that recovers the task publishes what came while it
//! was down, and nothing twice.

use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::sandbox::seccomp::{decode, Explanation};

/// The records, in the task's state directory.
pub const FILE: &str = "denials.jsonl";
/// How far the plugin has published (decimal byte offset into [`FILE`]).
pub const OFFSET_FILE: &str = "denials.offset";
/// Distinct denials recorded per task.
pub const MAX_DISTINCT: usize = 32;
/// Largest size of [`FILE`].
pub const MAX_BYTES: u64 = 256 * 1024;
/// How long terminal probes are held back before they are written, grouped.
pub const PROBE_DELAY: Duration = Duration::from_secs(2);

/// One line of [`FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// The first occurrence of a denial.
    Denial {
        pid: i32,
        comm: String,
        call: String,
        fix: String,
        errno: String,
    },
    /// How often a denial happened so far (`last`: when the task ended).
    Count {
        call: String,
        fix: String,
        count: u64,
        last: bool,
    },
    /// Terminal probes, grouped.
    Probes { items: Vec<Probe> },
    /// More than [`MAX_DISTINCT`] distinct denials.
    Cut,
    /// [`FILE`] reached [`MAX_BYTES`].
    Truncated,
}

/// One grouped terminal probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub pid: i32,
    pub comm: String,
    pub call: String,
    pub fix: String,
    pub count: u64,
}

impl Record {
    /// The task event's text.
    pub fn message(&self) -> String {
        match self {
            Record::Denial {
                pid,
                comm,
                call,
                fix,
                errno,
            } => format!("seccomp: {comm} (pid {pid}): {call} {fix} (denied with {errno})"),
            Record::Count {
                call,
                fix,
                count,
                last,
            } => {
                let when = if *last { "in all" } else { "so far" };
                format!("seccomp: {call} {fix}: denied {count} times {when}")
            }
            Record::Probes { items } => {
                let list: Vec<String> = items
                    .iter()
                    .map(|p| {
                        format!(
                            "{} (pid {}): {} {} ×{}",
                            p.comm, p.pid, p.call, p.fix, p.count
                        )
                    })
                    .collect();
                format!(
                    "seccomp: terminal probes denied (usually harmless: the program asked whether a descriptor is a terminal): {}",
                    list.join("; ")
                )
            }
            Record::Cut => format!(
                "seccomp: more than {MAX_DISTINCT} distinct denials: the rest are not reported"
            ),
            Record::Truncated => format!(
                "seccomp: the denial log reached {} KiB: later counts are not reported",
                MAX_BYTES / 1024
            ),
        }
    }
}

struct Entry {
    pid: i32,
    comm: String,
    call: String,
    fix: String,
    count: u64,
    /// The count last written (0: not written yet).
    written: u64,
    probe: bool,
}

/// Dedup, rate limit and rank (see the module docs).
#[derive(Default)]
pub struct Tracker {
    entries: HashMap<String, Entry>,
    order: Vec<String>,
    pending_probes: Vec<String>,
    probe_deadline: Option<Instant>,
    cut: bool,
}

fn is_threshold(n: u64) -> bool {
    n >= 10 && {
        let mut m = n;
        while m % 10 == 0 {
            m /= 10;
        }
        m == 1
    }
}

impl Tracker {
    /// Whether a denial with this key was seen (the caller then needs no program name).
    pub fn knows(&self, key: &str) -> bool {
        self.entries.contains_key(key) || self.entries.len() >= MAX_DISTINCT
    }

    /// One denied call (`comm` is asked for only for a new denial). Returns what to write now.
    pub fn observe(
        &mut self,
        e: &Explanation,
        pid: i32,
        comm: impl FnOnce() -> String,
        errno: &str,
        now: Instant,
    ) -> Vec<Record> {
        let key = decode::key(e);
        if let Some(en) = self.entries.get_mut(&key) {
            en.count += 1;
            if en.written > 0 && is_threshold(en.count) && !(en.probe && en.count < 1000) {
                en.written = en.count;
                return vec![Record::Count {
                    call: en.call.clone(),
                    fix: en.fix.clone(),
                    count: en.count,
                    last: false,
                }];
            }
            return Vec::new();
        }
        if self.entries.len() >= MAX_DISTINCT {
            if self.cut {
                return Vec::new();
            }
            self.cut = true;
            return vec![Record::Cut];
        }
        let probe = decode::is_terminal_probe(e);
        let en = Entry {
            pid,
            comm: comm(),
            call: decode::call(e),
            fix: decode::fix(e),
            count: 1,
            written: 0,
            probe,
        };
        let out = if probe {
            self.pending_probes.push(key.clone());
            self.probe_deadline.get_or_insert(now + PROBE_DELAY);
            Vec::new()
        } else {
            vec![Record::Denial {
                pid,
                comm: en.comm.clone(),
                call: en.call.clone(),
                fix: en.fix.clone(),
                errno: errno.to_string(),
            }]
        };
        let mut en = en;
        if !probe {
            en.written = 1;
        }
        self.entries.insert(key.clone(), en);
        self.order.push(key);
        out
    }

    /// How long the caller may wait before [`Tracker::tick`] has something to do.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        self.probe_deadline
            .map(|d| d.saturating_duration_since(now))
    }

    /// The grouped probes, once their delay is over.
    pub fn tick(&mut self, now: Instant) -> Vec<Record> {
        match self.probe_deadline {
            Some(d) if d <= now => self.flush_probes(),
            _ => Vec::new(),
        }
    }

    fn flush_probes(&mut self) -> Vec<Record> {
        self.probe_deadline = None;
        let keys = std::mem::take(&mut self.pending_probes);
        let mut items: Vec<Probe> = Vec::new();
        for k in &keys {
            if let Some(en) = self.entries.get_mut(k) {
                en.written = en.count;
                items.push(Probe {
                    pid: en.pid,
                    comm: en.comm.clone(),
                    call: en.call.clone(),
                    fix: en.fix.clone(),
                    count: en.count,
                });
            }
        }
        if items.is_empty() {
            Vec::new()
        } else {
            vec![Record::Probes { items }]
        }
    }

    /// When the task ends: the probes still held back, then the totals not written yet.
    pub fn finish(&mut self) -> Vec<Record> {
        let mut out = self.flush_probes();
        for k in &self.order {
            let en = &self.entries[k];
            if en.written > 0 && en.count > en.written && !(en.probe && en.count < 10) {
                out.push(Record::Count {
                    call: en.call.clone(),
                    fix: en.fix.clone(),
                    count: en.count,
                    last: true,
                });
            }
        }
        out
    }
}

/// Appends records to [`FILE`], never past [`MAX_BYTES`].
pub struct Writer {
    file: Option<std::fs::File>,
    size: u64,
}

impl Writer {
    /// Opens (creates, 0600) the file in `state_dir`; a file that cannot be opened makes a
    /// writer that drops everything (the task runs on; the plugin log has the supervisor's
    /// stderr line).
    pub fn open(state_dir: &Path) -> Writer {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(state_dir.join(FILE));
        match file {
            Ok(f) => {
                let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                Writer {
                    file: Some(f),
                    size,
                }
            }
            Err(e) => {
                eprintln!(
                    "nomad-pledge-driver supervisor: cannot open the denial log in {}: {e}; seccomp denials of this task are not reported",
                    state_dir.display()
                );
                Writer {
                    file: None,
                    size: 0,
                }
            }
        }
    }

    pub fn write(&mut self, records: &[Record]) {
        for r in records {
            let Some(f) = self.file.as_mut() else { return };
            let mut line = serde_json::to_vec(r).unwrap_or_default();
            line.push(b'\n');
            // Room is kept for the one Truncated line.
            if self.size + line.len() as u64 > MAX_BYTES - 64 {
                let mut last = serde_json::to_vec(&Record::Truncated).unwrap_or_default();
                last.push(b'\n');
                let _ = f.write_all(&last);
                self.file = None;
                return;
            }
            if f.write_all(&line).is_err() {
                self.file = None;
                return;
            }
            self.size += line.len() as u64;
        }
    }
}

/// The records in `state_dir` the plugin has not published yet (complete lines after the
/// offset it saved), and the offset to save once they are published ([`save_offset`]).
pub fn read_new(state_dir: &Path) -> (Vec<Record>, u64) {
    let offset: u64 = std::fs::read_to_string(state_dir.join(OFFSET_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let Ok(mut f) = std::fs::File::open(state_dir.join(FILE)) else {
        return (Vec::new(), offset);
    };
    if f.seek(std::io::SeekFrom::Start(offset)).is_err() {
        return (Vec::new(), offset);
    }
    let mut buf = Vec::new();
    if f.take(MAX_BYTES).read_to_end(&mut buf).is_err() {
        return (Vec::new(), offset);
    }
    let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
        return (Vec::new(), offset);
    };
    let records = buf[..end]
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    (records, offset + end as u64 + 1)
}

/// Records that everything before `offset` was published.
pub fn save_offset(state_dir: &Path, offset: u64) {
    let _ = super::state::write_atomic(state_dir, OFFSET_FILE, offset.to_string().as_bytes());
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::sandbox::seccomp::explain;
    use crate::sandbox::syscalls;

    fn ex(name: &str, args: [u64; 6]) -> Explanation {
        explain(syscalls::number(name).unwrap(), &args)
    }

    #[test]
    fn first_occurrences_then_counts_at_powers_of_ten_then_the_total() {
        let mut t = Tracker::default();
        let now = Instant::now();
        let sock = ex("socket", [2, 1, 0, 0, 0, 0]);
        let mut all = Vec::new();
        for _ in 0..1_000_000 {
            all.extend(t.observe(&sock, 7, || "python3".into(), "EPERM", now));
        }
        all.extend(t.observe(&sock, 7, || unreachable!(), "EPERM", now));
        all.extend(t.finish());
        assert_eq!(all.len(), 1 + 6 + 1, "{all:#?}");
        assert!(
            matches!(&all[0], Record::Denial { call, .. } if call == "socket(AF_INET, SOCK_STREAM)")
        );
        assert!(all[0].message().contains("needs promise inet"));
        assert!(all[0].message().contains("python3 (pid 7)"));
        assert_eq!(
            all.last().unwrap().message(),
            "seccomp: socket(AF_INET, SOCK_STREAM) needs promise inet (or dns, anet): denied 1000001 times in all"
        );
    }

    #[test]
    fn terminal_probes_come_grouped_after_what_matters() {
        let mut t = Tracker::default();
        let now = Instant::now();
        let mut out = Vec::new();
        for fd in 0..3 {
            for _ in 0..7 {
                out.extend(t.observe(
                    &ex("ioctl", [fd, 0x5401, 0, 0, 0, 0]),
                    7,
                    || "python3".into(),
                    "EPERM",
                    now,
                ));
            }
        }
        assert!(out.is_empty(), "probes are held back: {out:#?}");
        out.extend(t.observe(
            &ex("socket", [2, 1, 0, 0, 0, 0]),
            7,
            || "python3".into(),
            "EPERM",
            now,
        ));
        assert_eq!(t.timeout(now), Some(PROBE_DELAY));
        assert!(t.tick(now).is_empty());
        out.extend(t.tick(now + PROBE_DELAY));
        out.extend(t.finish());
        assert_eq!(out.len(), 2, "{out:#?}");
        assert!(matches!(out[0], Record::Denial { .. }));
        let Record::Probes { items } = &out[1] else {
            panic!("{out:#?}")
        };
        assert_eq!(items.len(), 1, "one key for all TCGETS");
        assert_eq!(items[0].count, 21);
        assert!(out[1]
            .message()
            .contains("ioctl(0, TCGETS) needs promise tty ×21"));
    }

    #[test]
    fn distinct_denials_are_capped() {
        let mut t = Tracker::default();
        let now = Instant::now();
        let mut out = Vec::new();
        for nr in 0..400i64 {
            let e = explain(nr, &[0x1234_5678, 0x5401, 0, 0, 0, 0]);
            if decode::fix(&e).starts_with("needs promise") {
                out.extend(t.observe(&e, 1, String::new, "EPERM", now));
            }
        }
        out.extend(t.finish());
        let denials = out
            .iter()
            .filter(|r| matches!(r, Record::Denial { .. }))
            .count();
        assert!(denials <= MAX_DISTINCT, "{denials}");
        assert_eq!(out.iter().filter(|r| **r == Record::Cut).count(), 1);
    }

    #[test]
    fn the_file_is_bounded_and_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::open(dir.path());
        let r = Record::Count {
            call: "x".repeat(200),
            fix: "needs promise inet".into(),
            count: 10,
            last: false,
        };
        for _ in 0..10_000 {
            w.write(std::slice::from_ref(&r));
        }
        let size = std::fs::metadata(dir.path().join(FILE)).unwrap().len();
        assert!(size <= MAX_BYTES, "{size}");
        let (recs, off) = read_new(dir.path());
        assert_eq!(recs.last(), Some(&Record::Truncated));
        assert!(recs.len() > 100);
        save_offset(dir.path(), off);
        assert!(read_new(dir.path()).0.is_empty());
        // A torn last line waits for its end.
        let mut w = Writer {
            file: Some(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(dir.path().join(FILE))
                    .unwrap(),
            ),
            size: 0,
        };
        w.file
            .as_mut()
            .unwrap()
            .write_all(b"{\"kind\":\"cut\"")
            .unwrap();
        assert!(read_new(dir.path()).0.is_empty());
        w.file.as_mut().unwrap().write_all(b"}\n").unwrap();
        assert_eq!(read_new(dir.path()).0, vec![Record::Cut]);
    }
}
