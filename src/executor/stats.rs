//! Task resource usage: cgroup v2 files where the controller exists, `/proc` accounting of the
//! cgroup's processes where it does not. `measured` lists only what was really read.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How long the process list (`cgroup.procs`) and the `/proc` fallback's per-process memory
/// are reused between samples when CPU time comes from the cgroup's `cpu.stat`: a process that
/// joins or leaves the cgroup, and a change of its resident memory, show in a sample at most
/// this much later. Without `cpu.stat` the processes are read at every sample (their CPU time
/// is needed each time), and so they are while the cgroup holds no process of the task's own
/// (before the supervisor forked the command, or after it ended).
pub const PROC_REFRESH: Duration = Duration::from_secs(5);

/// The cgroup's process list and, where needed, their resident memory, as of `at`.
#[derive(Debug, Clone, Copy)]
struct ProcSample {
    at: Instant,
    pids: u64,
    rss_pages: u64,
    /// A process other than the supervisor was listed.
    own: bool,
}

/// One stats sample (Nomad units: percent of one core; bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskStats {
    pub timestamp: SystemTime,
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    /// Number of processes in the task cgroup.
    pub pids: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuStats {
    /// Percent of one core since the previous sample (or since the start for the first).
    pub percent: f64,
    pub user_percent: f64,
    pub system_percent: f64,
    /// MHz consumed: percent/100 × MHz of one core (when the core speed is known).
    pub total_ticks: f64,
    pub throttled_periods: u64,
    /// Microseconds (cgroup v2 `throttled_usec`).
    pub throttled_time: u64,
    /// Cumulative CPU time in µs.
    pub usage_usec: u64,
    pub user_usec: u64,
    pub system_usec: u64,
    /// Nomad field names actually measured ("Percent", "User Mode", ...).
    pub measured: Fields,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryStats {
    pub rss: u64,
    pub cache: u64,
    pub usage: u64,
    pub max_usage: u64,
    pub swap: u64,
    /// Nomad field names actually measured ("RSS", "Usage", ...).
    pub measured: Fields,
}

/// Nomad field names, in the order measured, kept inline: a sample allocates nothing for them.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Fields {
    names: [&'static str; Fields::MAX],
    len: usize,
}

impl Fields {
    /// More than either usage struct of Nomad has.
    const MAX: usize = 8;

    pub fn push(&mut self, name: &'static str) {
        assert!(self.len < Self::MAX, "more than {} fields", Self::MAX);
        self.names[self.len] = name;
        self.len += 1;
    }
}

impl std::ops::Deref for Fields {
    type Target = [&'static str];
    fn deref(&self) -> &[&'static str] {
        &self.names[..self.len]
    }
}

impl Extend<&'static str> for Fields {
    fn extend<I: IntoIterator<Item = &'static str>>(&mut self, names: I) {
        names.into_iter().for_each(|n| self.push(n));
    }
}

impl<const N: usize> From<[&'static str; N]> for Fields {
    fn from(names: [&'static str; N]) -> Self {
        let mut f = Fields::default();
        f.extend(names);
        f
    }
}

impl PartialEq<Vec<&str>> for Fields {
    fn eq(&self, other: &Vec<&str>) -> bool {
        **self == other[..]
    }
}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Cumulative CPU counters at an instant (kept per consumer to compute percentages).
#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuSample {
    at: SystemTime,
    usage_usec: u64,
    user_usec: u64,
    system_usec: u64,
}

/// Where a consumer of a task's samples (one TaskStats stream) left off: its CPU percentages
/// are relative to its own previous sample, whoever else samples the task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cursor(Option<CpuSample>);

/// What one read of a task's files gives, before percentages: shared by every stream that
/// asks for the same stats tick.
#[derive(Debug, Clone)]
struct Reading {
    cpu: CpuSample,
    /// (`nr_throttled`, `throttled_usec`) where the cpu controller reports them.
    throttled: Option<(u64, u64)>,
    memory: MemoryStats,
    pids: u64,
}

/// The counters of a cgroup's `cpu.stat` that Nomad reports.
#[derive(Debug, Default, PartialEq)]
struct CpuStatFile {
    usage_usec: u64,
    user_usec: u64,
    system_usec: u64,
    throttled: Option<(u64, u64)>,
}

/// Parses `cpu.stat` in one pass, without building a table of its lines.
fn parse_cpu_stat(text: &str) -> CpuStatFile {
    let mut c = CpuStatFile::default();
    let (mut periods, mut time) = (None, None);
    for (key, value) in key_values(text) {
        match key {
            "usage_usec" => c.usage_usec = value,
            "user_usec" => c.user_usec = value,
            "system_usec" => c.system_usec = value,
            "nr_throttled" => periods = Some(value),
            "throttled_usec" => time = Some(value),
            _ => {}
        }
    }
    c.throttled = periods.zip(time);
    c
}

/// (`anon`, `file`) of `memory.stat` (0 where missing).
fn parse_memory_stat(text: &str) -> (u64, u64) {
    let (mut anon, mut file) = (0, 0);
    for (key, value) in key_values(text) {
        match key {
            "anon" => anon = value,
            "file" => file = value,
            _ => {}
        }
    }
    (anon, file)
}

/// The `key value` lines of a flat-keyed cgroup file whose value is a number.
fn key_values(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|l| {
        let (k, v) = l.split_once(' ')?;
        Some((k, v.trim().parse().ok()?))
    })
}

fn parse_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A reusable read buffer. Its bytes are zeroed once, when it grows, and never again: a read
/// fills a prefix and records how much, so a sample costs no memset of the whole buffer.
#[derive(Debug, Default)]
struct ReadBuf {
    bytes: Vec<u8>,
    filled: usize,
}

impl ReadBuf {
    fn with_capacity(n: usize) -> Self {
        ReadBuf {
            bytes: vec![0; n],
            filled: 0,
        }
    }

    /// What the last read put in.
    fn filled(&self) -> &[u8] {
        &self.bytes[..self.filled]
    }
}

/// A small kernel-generated file (cgroup or `/proc`) kept open between samples and re-read from
/// offset 0 with `pread`: no path walk and no open/close per sample, which dominates the cost
/// of many tasks' stats streams. Falls back to open-read-close when it cannot stay open (for
/// example when the plugin is out of file descriptors).
#[derive(Debug, Default)]
enum StatFile {
    #[default]
    Unopened,
    /// The file does not exist (the controller is absent): not looked up again.
    Missing,
    Open(File),
}

impl StatFile {
    /// Reads the whole file into `buf`; false when it cannot be read. `path` is only built
    /// when the file has to be opened.
    fn read(&mut self, path: impl FnOnce() -> PathBuf, buf: &mut ReadBuf) -> bool {
        buf.filled = 0;
        if let StatFile::Unopened = self {
            let path = path();
            match File::open(&path) {
                Ok(f) => *self = StatFile::Open(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => *self = StatFile::Missing,
                // Out of descriptors or similar: read it the slow way this time.
                Err(_) => return File::open(path).and_then(|f| pread_all(&f, buf)).is_ok(),
            }
        }
        let StatFile::Open(f) = self else {
            return false;
        };
        if pread_all(f, buf).is_ok() {
            return true;
        }
        // Its process is gone (or the cgroup was removed): opened afresh next time, so a
        // process that reuses the pid is read, not skipped.
        *self = StatFile::Unopened;
        false
    }
}

/// Reads a seq_file-backed file from offset 0 to its end (the kernel regenerates it).
///
/// A read that does not fill the space offered is the end of the file (seq_file fills the
/// buffer until its records run out; a regular file returns short only at its end), so the
/// usual small file costs one `pread`, not a second one to see end-of-file: on a kernel file
/// that second call at a non-zero offset makes the kernel generate the whole text again.
fn pread_all(f: &File, buf: &mut ReadBuf) -> std::io::Result<()> {
    buf.filled = 0;
    loop {
        if buf.bytes.len() - buf.filled < 1024 {
            buf.bytes.resize(buf.bytes.len() + 4096, 0);
        }
        let room = buf.bytes.len() - buf.filled;
        let n = f.read_at(&mut buf.bytes[buf.filled..], buf.filled as u64)?;
        buf.filled += n;
        if n < room {
            return Ok(());
        }
    }
}

/// One task's stats source: its cgroup files and its processes' `/proc/PID/stat`, kept open
/// between samples, and the previous CPU sample for percentages. Dropped with the task.
#[derive(Debug)]
pub struct Reader {
    cg: PathBuf,
    started: SystemTime,
    /// Where [`Reader::sample`] left off (tests; streams keep their own).
    #[cfg(test)]
    cursor: Cursor,
    files: CgroupFiles,
    /// `/proc/PID/stat` of the processes seen in the last sample. An open file stays bound to
    /// its process: once that process is gone reads fail (and the file is reopened next
    /// time), so a reused PID is never misread as the old process.
    pid_stat: HashMap<i32, StatFile>,
    /// Our supervisor: in the cgroup, but driver overhead, not the task's usage.
    supervisor: Option<i32>,
    /// The last read of the processes, reused for [`PROC_REFRESH`] where allowed.
    procs: Option<ProcSample>,
    /// The reading taken for the latest stats tick, handed to every stream of that tick.
    tick: Option<(Instant, Reading)>,
    buf: ReadBuf,
}

/// The task cgroup's files, each opened on first use.
#[derive(Debug, Default)]
struct CgroupFiles {
    procs: StatFile,
    cpu_stat: StatFile,
    memory_current: StatFile,
    memory_stat: StatFile,
    memory_peak: StatFile,
    memory_swap: StatFile,
}

impl Reader {
    /// A reader for cgroup `cg`; the first sample's CPU percentage is relative to `started`.
    pub fn new(cg: &Path, started: SystemTime) -> Self {
        Reader {
            cg: cg.to_path_buf(),
            started,
            #[cfg(test)]
            cursor: Cursor::default(),
            files: CgroupFiles::default(),
            pid_stat: HashMap::new(),
            supervisor: None,
            procs: None,
            tick: None,
            buf: ReadBuf::with_capacity(4096),
        }
    }

    /// Leaves the supervisor out of the `/proc` fallback: its memory (the driver binary's pages)
    /// and its CPU are the driver's, not the task's. It still counts in `pids`.
    pub fn excluding(mut self, supervisor: i32) -> Self {
        self.supervisor = Some(supervisor);
        self
    }

    /// Reads one of the cgroup's files and parses its text (None when it cannot be read).
    fn parse<T>(
        &mut self,
        which: fn(&mut CgroupFiles) -> &mut StatFile,
        name: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        let cg = &self.cg;
        if !which(&mut self.files).read(|| cg.join(name), &mut self.buf) {
            return None;
        }
        parse(&String::from_utf8_lossy(self.buf.filled()))
    }

    fn pids(&mut self) -> Vec<i32> {
        self.parse(
            |r| &mut r.procs,
            "cgroup.procs",
            |s| {
                Some(
                    s.split_ascii_whitespace()
                        .filter_map(|p| p.parse().ok())
                        .collect(),
                )
            },
        )
        .unwrap_or_default()
    }

    /// (utime, stime, rss pages) of each process, from `/proc/PID/stat`.
    fn proc_usage(&mut self, pids: &[i32]) -> Vec<(u64, u64, u64)> {
        self.pid_stat.retain(|pid, _| pids.contains(pid));
        let mut out = Vec::with_capacity(pids.len());
        for pid in pids.iter().filter(|p| Some(**p) != self.supervisor) {
            let file = self.pid_stat.entry(*pid).or_default();
            let path = || PathBuf::from(format!("/proc/{pid}/stat"));
            if file.read(path, &mut self.buf) {
                if let Some(u) = std::str::from_utf8(self.buf.filled())
                    .ok()
                    .and_then(parse_proc_stat)
                {
                    out.push(u);
                }
            }
        }
        out
    }

    /// Takes a sample (Nomad units); CPU percentages are relative to the previous call.
    #[cfg(test)]
    pub fn sample(&mut self, core_mhz: Option<f64>) -> TaskStats {
        self.sample_at(core_mhz, Instant::now())
    }

    /// [`Reader::sample`] with the monotonic clock given (the age of the process list).
    #[cfg(test)]
    fn sample_at(&mut self, core_mhz: Option<f64>, mono: Instant) -> TaskStats {
        let reading = self.read_at(mono);
        let mut cursor = self.cursor;
        let stats = self.derive(&reading, &mut cursor, core_mhz);
        self.cursor = cursor;
        stats
    }

    /// A sample for one consumer (a TaskStats stream), percentages relative to its `cursor`.
    /// With a `tick` (the instant of the shared stats tick this sample answers), the files are
    /// read once per tick: every stream of the task that asks for the same tick gets the same
    /// reading. Without one (a stream's first sample, taken when it opens) they are read now.
    pub fn sample_for(
        &mut self,
        core_mhz: Option<f64>,
        tick: Option<Instant>,
        cursor: &mut Cursor,
    ) -> TaskStats {
        let reading = match (tick, &self.tick) {
            (Some(t), Some((at, r))) if *at == t => r.clone(),
            _ => {
                let r = self.read_at(Instant::now());
                if let Some(t) = tick {
                    self.tick = Some((t, r.clone()));
                }
                r
            }
        };
        self.derive(&reading, cursor, core_mhz)
    }

    /// Reads the task's counters now (`mono` dates the process list).
    fn read_at(&mut self, mono: Instant) -> Reading {
        let now = SystemTime::now();
        // Only the fallbacks need the processes' own accounting.
        let cpu_stat = self.parse(|r| &mut r.cpu_stat, "cpu.stat", |t| Some(parse_cpu_stat(t)));
        let memory_current = self.parse(|r| &mut r.memory_current, "memory.current", parse_u64);
        let reusable = self.procs.filter(|p| {
            p.own && cpu_stat.is_some() && mono.saturating_duration_since(p.at) < PROC_REFRESH
        });
        let mut per_proc = Vec::new();
        let procs = match reusable {
            Some(p) => p,
            None => {
                let pids = self.pids();
                if cpu_stat.is_none() || memory_current.is_none() {
                    per_proc = self.proc_usage(&pids);
                } else {
                    self.pid_stat.clear();
                }
                let p = ProcSample {
                    at: mono,
                    pids: pids.len() as u64,
                    rss_pages: per_proc.iter().map(|(_, _, rss)| rss).sum(),
                    own: pids.iter().any(|p| Some(*p) != self.supervisor),
                };
                self.procs = Some(p);
                p
            }
        };

        let mut cpu = CpuSample {
            at: now,
            usage_usec: 0,
            user_usec: 0,
            system_usec: 0,
        };
        let mut throttled = None;
        if let Some(c) = &cpu_stat {
            cpu.usage_usec = c.usage_usec;
            cpu.user_usec = c.user_usec;
            cpu.system_usec = c.system_usec;
            throttled = c.throttled;
        } else {
            let ticks = clock_ticks();
            for (u, s, _) in &per_proc {
                cpu.user_usec += u * 1_000_000 / ticks;
                cpu.system_usec += s * 1_000_000 / ticks;
            }
            cpu.usage_usec = cpu.user_usec + cpu.system_usec;
        }

        let mut mem = MemoryStats::default();
        if let Some(current) = memory_current {
            mem.usage = current;
            mem.measured.push("Usage");
            if let Some((anon, file)) = self.parse(
                |r| &mut r.memory_stat,
                "memory.stat",
                |t| Some(parse_memory_stat(t)),
            ) {
                mem.rss = anon;
                mem.cache = file;
                mem.measured.extend(["RSS", "Cache"]);
            }
            if let Some(peak) = self.parse(|r| &mut r.memory_peak, "memory.peak", parse_u64) {
                mem.max_usage = peak;
                mem.measured.push("Max Usage");
            }
            if let Some(swap) = self.parse(|r| &mut r.memory_swap, "memory.swap.current", parse_u64)
            {
                mem.swap = swap;
                mem.measured.push("Swap");
            }
        } else {
            // Without the memory controller: the processes' resident memory (swap is not known).
            mem.rss = procs.rss_pages * page_size();
            mem.measured = Fields::from(["RSS"]);
        }
        Reading {
            cpu,
            throttled,
            memory: mem,
            pids: procs.pids,
        }
    }

    /// The sample of `reading` in Nomad units, CPU relative to `cursor` (then moved on to it).
    fn derive(&self, reading: &Reading, cursor: &mut Cursor, core_mhz: Option<f64>) -> TaskStats {
        let sample = reading.cpu;
        let mut cpu = CpuStats {
            usage_usec: sample.usage_usec,
            user_usec: sample.user_usec,
            system_usec: sample.system_usec,
            measured: Fields::from(["Percent", "User Mode", "System Mode"]),
            ..CpuStats::default()
        };
        if let Some((periods, time)) = reading.throttled {
            cpu.throttled_periods = periods;
            cpu.throttled_time = time;
            cpu.measured.extend(["Throttled Periods", "Throttled Time"]);
        }
        let base = cursor.0.unwrap_or(CpuSample {
            at: self.started,
            usage_usec: 0,
            user_usec: 0,
            system_usec: 0,
        });
        let wall = sample
            .at
            .duration_since(base.at)
            .map(|d| d.as_micros() as f64)
            .unwrap_or(0.0);
        if wall > 0.0 {
            let pct = |a: u64, b: u64| a.saturating_sub(b) as f64 / wall * 100.0;
            cpu.percent = pct(sample.usage_usec, base.usage_usec);
            cpu.user_percent = pct(sample.user_usec, base.user_usec);
            cpu.system_percent = pct(sample.system_usec, base.system_usec);
        }
        if let Some(mhz) = core_mhz {
            cpu.total_ticks = cpu.percent / 100.0 * mhz;
            cpu.measured.push("Total Ticks");
        }
        *cursor = Cursor(Some(sample));
        TaskStats {
            timestamp: sample.at,
            cpu,
            memory: reading.memory.clone(),
            pids: reading.pids,
        }
    }
}

fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .unwrap_or(100) as u64
}

/// (utime, stime, rss) from the text of `/proc/<pid>/stat`: clock ticks, clock ticks, pages.
/// One file gives both CPU and memory, and it is cheap for the kernel to produce.
fn parse_proc_stat(text: &str) -> Option<(u64, u64, u64)> {
    // Fields after the command name, which may itself contain spaces and parentheses;
    // `state` (field 3) is index 0 here.
    let mut f = text[text.rfind(')')? + 1..].split_ascii_whitespace();
    let utime = f.nth(11)?.parse().ok()?;
    let stime = f.next()?.parse().ok()?;
    let rss = f.nth(8)?.parse().ok()?;
    Some((utime, stime, rss))
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .filter(|p| *p > 0)
        .unwrap_or(4096) as u64
}

/// MHz of one core from `/proc/cpuinfo` (None when the kernel does not report it).
pub fn core_mhz() -> Option<f64> {
    let text = fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("cpu MHz"))
        .and_then(|l| l.split(':').nth(1)?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cgroup_files_are_used_when_present() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        fs::write(p.join("cgroup.procs"), "").unwrap();
        fs::write(
            p.join("cpu.stat"),
            "usage_usec 1000000\nuser_usec 600000\nsystem_usec 400000\nnr_periods 5\nnr_throttled 2\nthrottled_usec 300\n",
        )
        .unwrap();
        fs::write(p.join("memory.current"), "4096\n").unwrap();
        fs::write(p.join("memory.stat"), "anon 1024\nfile 2048\n").unwrap();
        fs::write(p.join("memory.peak"), "8192\n").unwrap();
        let start = SystemTime::now() - Duration::from_secs(2);
        let mut reader = Reader::new(p, start);
        let s = reader.sample(Some(2000.0));
        assert_eq!(s.cpu.usage_usec, 1_000_000);
        assert!(
            s.cpu.percent > 40.0 && s.cpu.percent <= 50.0,
            "{}",
            s.cpu.percent
        );
        assert_eq!((s.cpu.throttled_periods, s.cpu.throttled_time), (2, 300));
        assert_eq!(
            (
                s.memory.usage,
                s.memory.rss,
                s.memory.cache,
                s.memory.max_usage
            ),
            (4096, 1024, 2048, 8192)
        );
        assert!(s.memory.measured.contains(&"Max Usage"));
        assert!(!s.memory.measured.contains(&"Swap"));
        assert!(s.cpu.measured.contains(&"Total Ticks"));

        // The files stay open and are re-read: new contents show, percent is relative to the
        // previous sample (0.5 s of CPU since then).
        fs::write(
            p.join("cpu.stat"),
            "usage_usec 1500000\nuser_usec 900000\nsystem_usec 600000\n",
        )
        .unwrap();
        fs::write(p.join("memory.current"), "12288\n").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let s = reader.sample(None);
        assert_eq!((s.cpu.usage_usec, s.memory.usage), (1_500_000, 12288));
        assert!(s.cpu.percent > 0.0);
        assert!(!s.cpu.measured.contains(&"Throttled Periods"));
    }

    #[test]
    fn a_file_whose_process_died_is_reopened() {
        /// A `sleep` killed when dropped, even when an assertion fails.
        struct Sleeper(std::process::Child);
        impl Drop for Sleeper {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        impl Sleeper {
            fn id(&self) -> u32 {
                self.0.id()
            }
        }
        let spawn = || {
            Sleeper(
                std::process::Command::new("sleep")
                    .arg("1000")
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        };
        let (old, new) = (spawn(), spawn());
        let path = |pid: u32| PathBuf::from(format!("/proc/{pid}/stat"));
        let mut file = StatFile::default();
        let mut buf = ReadBuf::default();
        assert!(file.read(|| path(old.id()), &mut buf));
        drop(old);
        // The process behind the open file is gone: the read fails ...
        assert!(!file.read(|| path(new.id()), &mut buf));
        // ... and the next one opens the path again (here: another process, as with a reused
        // pid), instead of failing for good.
        assert!(file.read(|| path(new.id()), &mut buf));
        let text = String::from_utf8(buf.filled().to_vec()).unwrap();
        assert!(text.starts_with(&format!("{} (sleep)", new.id())), "{text}");
    }

    #[test]
    fn a_missing_controller_file_is_not_looked_up_again() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("cgroup.procs"), "").unwrap();
        let mut reader = Reader::new(d.path(), SystemTime::now());
        assert_eq!(reader.sample(None).memory.measured, vec!["RSS"]);
        // Appearing later does not matter: controllers are fixed when the task starts.
        fs::write(d.path().join("memory.current"), "1\n").unwrap();
        assert_eq!(reader.sample(None).memory.measured, vec!["RSS"]);
    }

    #[test]
    fn a_process_joining_the_cgroup_counts_within_the_refresh_delay() {
        let d = tempfile::tempdir().unwrap();
        let (me, parent) = (std::process::id(), std::os::unix::process::parent_id());
        fs::write(d.path().join("cgroup.procs"), format!("{parent}\n")).unwrap();
        fs::write(d.path().join("cpu.stat"), "usage_usec 0\n").unwrap();
        // `me` stands for the supervisor: not counted in memory.
        let mut reader = Reader::new(d.path(), SystemTime::now()).excluding(me as i32);
        let t0 = Instant::now();
        let first = reader.sample_at(None, t0);
        assert_eq!(first.pids, 1);
        fs::write(d.path().join("cgroup.procs"), format!("{parent}\n{me}\n")).unwrap();
        // Within the delay the process list and its memory are reused (CPU is read each time) ...
        let s = reader.sample_at(None, t0 + PROC_REFRESH / 2);
        assert_eq!((s.pids, s.memory.rss), (1, first.memory.rss));
        // ... and once it has passed the new process is counted.
        let s = reader.sample_at(None, t0 + PROC_REFRESH);
        assert_eq!(s.pids, 2);
        // Leaving is seen the same way.
        fs::write(d.path().join("cgroup.procs"), format!("{me}\n")).unwrap();
        let s = reader.sample_at(None, t0 + PROC_REFRESH * 2);
        assert_eq!((s.pids, s.memory.rss), (1, 0));
        // With only the supervisor left nothing is reused: the task's command shows at once.
        fs::write(d.path().join("cgroup.procs"), format!("{parent}\n{me}\n")).unwrap();
        let s = reader.sample_at(None, t0 + PROC_REFRESH * 2);
        assert_eq!(s.pids, 2);
        assert!(s.memory.rss > 0, "{s:?}");
    }

    #[test]
    fn without_cpu_stat_processes_are_read_every_sample() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("cgroup.procs"), "").unwrap();
        let mut reader = Reader::new(d.path(), SystemTime::now());
        let t0 = Instant::now();
        assert_eq!(reader.sample_at(None, t0).pids, 0);
        fs::write(
            d.path().join("cgroup.procs"),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        let s = reader.sample_at(None, t0);
        assert_eq!(s.pids, 1);
        assert!(s.memory.rss > 0, "{s:?}");
    }

    #[test]
    fn files_of_any_size_are_read_whole() {
        let d = tempfile::tempdir().unwrap();
        let mut buf = ReadBuf::default();
        for len in [0usize, 1, 1023, 1024, 4095, 4096, 4097, 8192, 20_000] {
            let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let p = d.path().join(format!("f{len}"));
            fs::write(&p, &text).unwrap();
            let f = File::open(&p).unwrap();
            pread_all(&f, &mut buf).unwrap();
            assert_eq!(buf.filled(), text, "length {len}");
            // Re-read (shorter content now) from offset 0 into the same buffer.
            fs::write(&p, b"x").unwrap();
            pread_all(&f, &mut buf).unwrap();
            assert_eq!(buf.filled(), b"x", "length {len}");
        }
    }

    #[test]
    fn proc_stat_fields_survive_odd_command_names() {
        let mut line = String::from("42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 ");
        line.push_str("7 3 0 0 20 0 1 0 123 4096000 250 18446744073709551615");
        assert_eq!(parse_proc_stat(&line), Some((7, 3, 250)));
        assert_eq!(parse_proc_stat("42 (x) S 1"), None);
    }

    #[test]
    fn proc_fallback_counts_listed_pids() {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("cgroup.procs"),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        let mut reader = Reader::new(d.path(), SystemTime::now());
        let s = reader.sample(None);
        assert!(s.memory.rss > 0);
        assert_eq!(s.memory.measured, vec!["RSS"]);
        assert_eq!(s.pids, 1);
        assert!(!s.cpu.measured.contains(&"Throttled Periods"));
        let me = std::process::id() as i32;
        let s = Reader::new(d.path(), SystemTime::now())
            .excluding(me)
            .sample(None);
        assert_eq!(
            (s.pids, s.memory.rss),
            (1, 0),
            "the supervisor is not the task's usage"
        );
        // A process that left the cgroup is no longer read (its file is closed).
        fs::write(d.path().join("cgroup.procs"), "").unwrap();
        let s = reader.sample(None);
        assert_eq!((s.pids, s.memory.rss), (0, 0));
        assert!(reader.pid_stat.is_empty());
    }
}

/// The `inspect` and `stats` verbs.
mod verb {
    use super::super::*;

    impl Executor {
        /// Current state of a task.
        pub fn inspect(&self, id: &str) -> Result<TaskInfo, ExecError> {
            let task = self.get(id).ok_or_else(|| ExecError::NotFound(id.into()))?;
            let exit = task.exit();
            Ok(TaskInfo {
                id: id.into(),
                state: if exit.is_some() {
                    TaskState::Exited
                } else {
                    TaskState::Running
                },
                pid: task.state.pid,
                cgroup: task.state.cgroup.path.clone(),
                started_at: task.started_at(),
                completed_at: exit.as_ref().map(|(_, t)| *t),
                exit: exit.map(|(s, _)| s),
            })
        }

        /// Resource usage; CPU percent is relative to the previous call (or the start). The
        /// tests' view; TaskStats streams use [`Executor::stream_stats`].
        #[cfg(test)]
        pub async fn stats(&self, id: &str) -> Result<TaskStats, ExecError> {
            self.with_reader(id, |r, mhz| r.sample(mhz))
        }

        /// Resource usage for one TaskStats stream: CPU percent relative to the stream's own
        /// previous sample (`cursor`), the task's files read once per stats `tick` however
        /// many streams ask (see [`stats::Reader::sample_for`]).
        pub fn stream_stats(
            &self,
            id: &str,
            tick: Option<std::time::Instant>,
            cursor: &mut stats::Cursor,
        ) -> Result<TaskStats, ExecError> {
            self.with_reader(id, |r, mhz| r.sample_for(mhz, tick, cursor))
        }

        fn with_reader(
            &self,
            id: &str,
            f: impl FnOnce(&mut stats::Reader, Option<f64>) -> TaskStats,
        ) -> Result<TaskStats, ExecError> {
            let task = self.get(id).ok_or_else(|| ExecError::NotFound(id.into()))?;
            let mut reader = task.stats.lock().expect("stats lock");
            let reader = reader.get_or_insert_with(|| {
                stats::Reader::new(&task.state.cgroup.path, task.started_at())
                    .excluding(task.state.pid)
            });
            Ok(f(reader, self.core_mhz))
        }
    }
}
