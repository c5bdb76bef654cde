//! Process measurements from /proc: resident memory (VmRSS, Pss) and CPU time (utime + stime).

use std::fs;

/// Resident memory of one process in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// `VmRSS` from /proc/PID/status (counts shared library pages in full).
    pub rss_kib: u64,
    /// `Pss` from /proc/PID/smaps_rollup (shared pages divided among their users).
    pub pss_kib: u64,
}

pub fn memory(pid: u32) -> Result<Memory, String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("read /proc/{pid}/status: {e}"))?;
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .map_err(|e| format!("read /proc/{pid}/smaps_rollup: {e}"))?;
    Ok(Memory {
        rss_kib: kib_field(&status, "VmRSS:")
            .ok_or_else(|| format!("/proc/{pid}/status has no VmRSS"))?,
        pss_kib: kib_field(&rollup, "Pss:")
            .ok_or_else(|| format!("/proc/{pid}/smaps_rollup has no Pss"))?,
    })
}

fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The fields of /proc/PID/stat after the command name (`(comm)` may contain spaces).
fn stat_fields(pid: u32) -> Result<Vec<String>, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("read /proc/{pid}/stat: {e}"))?;
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| format!("/proc/{pid}/stat: no `)`"))?;
    // after[0] is field 3 (state).
    Ok(after.split_whitespace().map(str::to_string).collect())
}

/// utime + stime of a process in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let f = stat_fields(pid)?;
    // Fields 14 (utime) and 15 (stime), 1-based; `f[0]` is field 3.
    let get = |i: usize| -> Result<u64, String> {
        f.get(i - 3)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: field {i} missing"))
    };
    Ok(get(14)? + get(15)?)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Every process whose executable is `exe` (compared after resolving symlinks).
pub fn pids_with_exe(exe: &std::path::Path) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read_link(format!("/proc/{pid}/exe")).ok().as_deref() == Some(exe))
        .collect()
}

/// Direct children of `parent` (from the PPid field of each process's stat).
pub fn children(parent: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat_fields(pid)
                .ok()
                .and_then(|f| f.get(1).and_then(|p| p.parse::<u32>().ok()))
                == Some(parent)
        })
        .collect()
}
