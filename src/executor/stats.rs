//! Task resource usage: cgroup v2 files where the controller exists, `/proc` accounting of the
//! cgroup's processes where it does not. `measured` lists only what was really read.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
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
    pub measured: Vec<&'static str>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryStats {
    pub rss: u64,
    pub cache: u64,
    pub usage: u64,
    pub max_usage: u64,
    pub swap: u64,
    /// Nomad field names actually measured ("RSS", "Usage", ...).
    pub measured: Vec<&'static str>,
}

/// Cumulative CPU counters at an instant (kept per task to compute percentages).
#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuSample {
    at: SystemTime,
    usage_usec: u64,
    user_usec: u64,
    system_usec: u64,
}

fn kv_text(text: &str) -> Vec<(&str, u64)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k, v.trim().parse().ok()?))
        })
        .collect()
}

fn get(kv: &[(&str, u64)], key: &str) -> Option<u64> {
    kv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn parse_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
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
    /// Reads the whole file into `buf` (cleared first); false when it cannot be read.
    /// `path` is only built when the file has to be opened.
    fn read(&mut self, path: impl FnOnce() -> PathBuf, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        if let StatFile::Unopened = self {
            let path = path();
            match File::open(&path) {
                Ok(f) => *self = StatFile::Open(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => *self = StatFile::Missing,
                // Out of descriptors or similar: read it the slow way this time.
                Err(_) => {
                    return File::open(path)
                        .and_then(|mut f| f.read_to_end(buf))
                        .is_ok()
                }
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
fn pread_all(f: &File, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
        let start = buf.len();
        let room = buf.capacity() - start;
        buf.resize(buf.capacity(), 0);
        let n = match f.read_at(&mut buf[start..], start as u64) {
            Ok(n) => n,
            Err(e) => {
                buf.truncate(start);
                return Err(e);
            }
        };
        buf.truncate(start + n);
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
    prev: Option<CpuSample>,
    files: CgroupFiles,
    /// `/proc/PID/stat` of the processes seen in the last sample. An open file stays bound to
    /// its process: once that process is gone reads fail (and the file is reopened next
    /// time), so a reused PID is never misread as the old process.
    pid_stat: HashMap<i32, StatFile>,
    /// Our supervisor: in the cgroup, but driver overhead, not the task's usage.
    supervisor: Option<i32>,
    /// The last read of the processes, reused for [`PROC_REFRESH`] where allowed.
    procs: Option<ProcSample>,
    buf: Vec<u8>,
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
            prev: None,
            files: CgroupFiles::default(),
            pid_stat: HashMap::new(),
            supervisor: None,
            procs: None,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Leaves the supervisor out of the `/proc` fallback: its memory (the driver binary's pages)
    /// and its CPU are the driver's, not the task's. It still counts in `pids`.
    pub fn excluding(mut self, supervisor: i32) -> Self {
        self.supervisor = Some(supervisor);
        self
    }

    fn read(&mut self, which: fn(&mut CgroupFiles) -> &mut StatFile, name: &str) -> Option<String> {
        let ok = which(&mut self.files).read(|| self.cg.join(name), &mut self.buf);
        ok.then(|| String::from_utf8_lossy(&self.buf).into_owned())
    }

    fn pids(&mut self) -> Vec<i32> {
        self.read(|r| &mut r.procs, "cgroup.procs")
            .map(|s| {
                s.split_ascii_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
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
                if let Some(u) = std::str::from_utf8(&self.buf)
                    .ok()
                    .and_then(parse_proc_stat)
                {
                    out.push(u);
                }
            }
        }
        out
    }

    /// Takes a sample (Nomad units); CPU percentages are relative to the previous sample.
    pub fn sample(&mut self, core_mhz: Option<f64>) -> TaskStats {
        self.sample_at(core_mhz, Instant::now())
    }

    /// [`Reader::sample`] with the monotonic clock given (the age of the process list).
    fn sample_at(&mut self, core_mhz: Option<f64>, mono: Instant) -> TaskStats {
        let now = SystemTime::now();
        // Only the fallbacks need the processes' own accounting.
        let cpu_stat = self.read(|r| &mut r.cpu_stat, "cpu.stat");
        let memory_current = self
            .read(|r| &mut r.memory_current, "memory.current")
            .and_then(|t| parse_u64(&t));
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

        let mut cpu = CpuStats::default();
        let mut sample = CpuSample {
            at: now,
            usage_usec: 0,
            user_usec: 0,
            system_usec: 0,
        };
        cpu.measured = vec!["Percent", "User Mode", "System Mode"];
        if let Some(text) = &cpu_stat {
            let kv = kv_text(text);
            sample.usage_usec = get(&kv, "usage_usec").unwrap_or(0);
            sample.user_usec = get(&kv, "user_usec").unwrap_or(0);
            sample.system_usec = get(&kv, "system_usec").unwrap_or(0);
            if let (Some(n), Some(t)) = (get(&kv, "nr_throttled"), get(&kv, "throttled_usec")) {
                cpu.throttled_periods = n;
                cpu.throttled_time = t;
                cpu.measured.extend(["Throttled Periods", "Throttled Time"]);
            }
        } else {
            let ticks = clock_ticks();
            for (u, s, _) in &per_proc {
                sample.user_usec += u * 1_000_000 / ticks;
                sample.system_usec += s * 1_000_000 / ticks;
            }
            sample.usage_usec = sample.user_usec + sample.system_usec;
        }
        cpu.usage_usec = sample.usage_usec;
        cpu.user_usec = sample.user_usec;
        cpu.system_usec = sample.system_usec;
        let base = self.prev.unwrap_or(CpuSample {
            at: self.started,
            usage_usec: 0,
            user_usec: 0,
            system_usec: 0,
        });
        let wall = now
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
        self.prev = Some(sample);

        let mut mem = MemoryStats::default();
        if let Some(current) = memory_current {
            mem.usage = current;
            mem.measured.push("Usage");
            if let Some(text) = self.read(|r| &mut r.memory_stat, "memory.stat") {
                let kv = kv_text(&text);
                mem.rss = get(&kv, "anon").unwrap_or(0);
                mem.cache = get(&kv, "file").unwrap_or(0);
                mem.measured.extend(["RSS", "Cache"]);
            }
            if let Some(peak) = self
                .read(|r| &mut r.memory_peak, "memory.peak")
                .and_then(|t| parse_u64(&t))
            {
                mem.max_usage = peak;
                mem.measured.push("Max Usage");
            }
            if let Some(swap) = self
                .read(|r| &mut r.memory_swap, "memory.swap.current")
                .and_then(|t| parse_u64(&t))
            {
                mem.swap = swap;
                mem.measured.push("Swap");
            }
        } else {
            // Without the memory controller: the processes' resident memory (swap is not known).
            mem.rss = procs.rss_pages * page_size();
            mem.measured = vec!["RSS"];
        }
        TaskStats {
            timestamp: now,
            cpu,
            memory: mem,
            pids: procs.pids,
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
        let mut buf = Vec::new();
        assert!(file.read(|| path(old.id()), &mut buf));
        drop(old);
        // The process behind the open file is gone: the read fails ...
        assert!(!file.read(|| path(new.id()), &mut buf));
        // ... and the next one opens the path again (here: another process, as with a reused
        // pid), instead of failing for good.
        assert!(file.read(|| path(new.id()), &mut buf));
        let text = String::from_utf8(buf).unwrap();
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
        let mut buf = Vec::new();
        for len in [0usize, 1, 1023, 1024, 4095, 4096, 4097, 8192, 20_000] {
            let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let p = d.path().join(format!("f{len}"));
            fs::write(&p, &text).unwrap();
            let f = File::open(&p).unwrap();
            pread_all(&f, &mut buf).unwrap();
            assert_eq!(buf, text, "length {len}");
            // Re-read (shorter content now) from offset 0 into the same buffer.
            fs::write(&p, b"x").unwrap();
            pread_all(&f, &mut buf).unwrap();
            assert_eq!(buf, b"x", "length {len}");
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

        /// Resource usage; CPU percent is relative to the previous call (or the start).
        pub async fn stats(&self, id: &str) -> Result<TaskStats, ExecError> {
            let task = self.get(id).ok_or_else(|| ExecError::NotFound(id.into()))?;
            let mut reader = task.stats.lock().expect("stats lock");
            let reader = reader.get_or_insert_with(|| {
                stats::Reader::new(&task.state.cgroup.path, task.started_at())
                    .excluding(task.state.pid)
            });
            Ok(reader.sample(self.core_mhz))
        }
    }
}
