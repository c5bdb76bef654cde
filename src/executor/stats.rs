//! Task resource usage: cgroup v2 files where the controller exists, `/proc` accounting of the
//! cgroup's processes where it does not. `measured` lists only what was really read.

use std::fs;
use std::path::Path;
use std::time::SystemTime;

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
pub struct CpuSample {
    pub at: SystemTime,
    pub usage_usec: u64,
    pub user_usec: u64,
    pub system_usec: u64,
}

fn kv_file(path: &Path) -> Option<Vec<(String, u64)>> {
    let text = fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect(),
    )
}

fn get(kv: &[(String, u64)], key: &str) -> Option<u64> {
    kv.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Reads usage of cgroup `cg`; `prev` is the previous sample (None → the task start with zero
/// usage at `started`). Returns the stats and the new sample to keep.
pub fn collect(
    cg: &Path,
    prev: Option<CpuSample>,
    started: SystemTime,
    core_mhz: Option<f64>,
) -> (TaskStats, CpuSample) {
    let now = SystemTime::now();
    let pids = super::cgroup::procs(cg);
    let mut cpu = CpuStats::default();
    let mut sample = CpuSample {
        at: now,
        usage_usec: 0,
        user_usec: 0,
        system_usec: 0,
    };
    if let Some(kv) = kv_file(&cg.join("cpu.stat")) {
        sample.usage_usec = get(&kv, "usage_usec").unwrap_or(0);
        sample.user_usec = get(&kv, "user_usec").unwrap_or(0);
        sample.system_usec = get(&kv, "system_usec").unwrap_or(0);
        cpu.measured = vec!["Percent", "User Mode", "System Mode"];
        if let (Some(n), Some(t)) = (get(&kv, "nr_throttled"), get(&kv, "throttled_usec")) {
            cpu.throttled_periods = n;
            cpu.throttled_time = t;
            cpu.measured.extend(["Throttled Periods", "Throttled Time"]);
        }
    } else {
        let ticks = clock_ticks();
        for pid in &pids {
            if let Some((u, s)) = proc_cpu(*pid) {
                sample.user_usec += u * 1_000_000 / ticks;
                sample.system_usec += s * 1_000_000 / ticks;
            }
        }
        sample.usage_usec = sample.user_usec + sample.system_usec;
        cpu.measured = vec!["Percent", "User Mode", "System Mode"];
    }
    cpu.usage_usec = sample.usage_usec;
    cpu.user_usec = sample.user_usec;
    cpu.system_usec = sample.system_usec;
    let base = prev.unwrap_or(CpuSample {
        at: started,
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

    let mut mem = MemoryStats::default();
    if let Some(current) = read_u64(&cg.join("memory.current")) {
        mem.usage = current;
        mem.measured.push("Usage");
        if let Some(kv) = kv_file(&cg.join("memory.stat")) {
            mem.rss = get(&kv, "anon").unwrap_or(0);
            mem.cache = get(&kv, "file").unwrap_or(0);
            mem.measured.extend(["RSS", "Cache"]);
        }
        if let Some(peak) = read_u64(&cg.join("memory.peak")) {
            mem.max_usage = peak;
            mem.measured.push("Max Usage");
        }
        if let Some(swap) = read_u64(&cg.join("memory.swap.current")) {
            mem.swap = swap;
            mem.measured.push("Swap");
        }
    } else {
        // Without the memory controller: the processes' resident memory (swap is not known).
        mem.rss = pids.iter().filter_map(|pid| proc_rss(*pid)).sum();
        mem.measured = vec!["RSS"];
    }
    (
        TaskStats {
            timestamp: now,
            cpu,
            memory: mem,
            pids: pids.len() as u64,
        },
        sample,
    )
}

fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .unwrap_or(100) as u64
}

/// (utime, stime) in clock ticks from `/proc/<pid>/stat`.
fn proc_cpu(pid: i32) -> Option<(u64, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    Some((f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?))
}

/// Resident set size in bytes from `/proc/<pid>/statm` (a few numbers: much cheaper for the
/// kernel to produce than `/proc/<pid>/status`, which matters with many tasks' stats streams).
fn proc_rss(pid: i32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
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
        let (s, sample) = collect(p, None, start, Some(2000.0));
        assert_eq!(sample.usage_usec, 1_000_000);
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
    }

    #[test]
    fn proc_fallback_counts_listed_pids() {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("cgroup.procs"),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        let (s, _) = collect(d.path(), None, SystemTime::now(), None);
        assert!(s.memory.rss > 0);
        assert_eq!(s.memory.measured, vec!["RSS"]);
        assert_eq!(s.pids, 1);
        assert!(!s.cpu.measured.contains(&"Throttled Periods"));
    }
}
