//! cgroup v2: find the mount, pick or create the task's cgroup, write limits, kill, remove.
//!
//! Every function takes the cgroup paths as parameters, so the limit writing is tested on a fake
//! tree (a tempdir with fake control files).
//!
//! CPU limit choice: `cpu.weight` (proportional, work-conserving) from Nomad's `cpu` MHz, as the
//! built-in drivers do; a hard `cpu.max` bandwidth cap only when the task asks for one.

use serde::{Deserialize, Serialize};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Our own parent when Nomad gives us no usable task cgroup.
pub const OWN_SLICE: &str = "nomad-pledge.slice";

/// Task resources (plain copy of Nomad's allocated/linux resources).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Soft (or hard, when `memory_max_mb` is 0) memory in MiB; 0 = unset.
    pub memory_mb: i64,
    /// Hard memory limit in MiB; 0 = unset, -1 = unlimited.
    pub memory_max_mb: i64,
    /// Nomad `cpu` in MHz, converted to `cpu.weight`; 0 = unset.
    pub cpu_shares: u64,
    /// Hard CPU cap: `cpu.max` quota in µs per period (None = no cap).
    pub cpu_quota_us: Option<u64>,
    /// `cpu.max` period in µs (default 100000).
    pub cpu_period_us: Option<u64>,
    /// Reserved cores, e.g. `2,3`; empty = inherit.
    pub cpuset_cpus: String,
    /// `pids.max`: most tasks and threads at once (None = no limit).
    #[serde(default)]
    pub pids_max: Option<u64>,
}

/// The cgroup a task runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCgroup {
    pub path: PathBuf,
    /// We created it (and remove it on destroy); false for Nomad's own scope.
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup2 file system is mounted (checked /proc/self/mountinfo): mount cgroup2 or set the executor's cgroup_root")]
    NoMount,
    #[error("cannot create cgroup {path} (check that {parent} is a writable cgroup2 directory: are we root?)", parent = path.parent().unwrap_or(Path::new("/")).display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cgroup {path} still has processes {pids:?} from an earlier run: stop them or remove the cgroup before starting the task")]
    Busy { path: PathBuf, pids: Vec<i32> },
    #[error("cannot write `{value}` to {path} (check the task's resources: memory, cpu, cores)")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove cgroup {path} (processes may still be running in it)")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("task name `{0}` cannot be used in a cgroup name: it must not be empty, `.`/`..` or contain `/`")]
    BadName(String),
}

/// The cgroup2 mount point listed in a `/proc/self/mountinfo` text.
pub fn find_cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        if fstype != "cgroup2" {
            return None;
        }
        let mount_point = left.split_whitespace().nth(4)?;
        Some(PathBuf::from(unescape_mountinfo(mount_point)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|d| (b'0'..=b'7').contains(d)));
        if let (b'\\', Some(digits)) = (b[i], octal) {
            out.push(
                digits
                    .iter()
                    .fold(0u8, |acc, d| acc.wrapping_mul(8) + (d - b'0')),
            );
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup2 mount of this host.
pub fn host_cgroup_root() -> Result<PathBuf, CgroupError> {
    let text = fs::read_to_string("/proc/self/mountinfo").map_err(|source| CgroupError::Read {
        path: "/proc/self/mountinfo".into(),
        source,
    })?;
    find_cgroup2_mount(&text).ok_or(CgroupError::NoMount)
}

fn read_controllers(file: &Path) -> Vec<String> {
    fs::read_to_string(file)
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Pids listed in `<cg>/cgroup.procs` (empty if unreadable).
pub fn procs(cg: &Path) -> Vec<i32> {
    fs::read_to_string(cg.join("cgroup.procs"))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn safe_component(s: &str) -> Result<&str, CgroupError> {
    if s.is_empty() || s == "." || s == ".." || s.contains('/') || s.contains('\0') {
        return Err(CgroupError::BadName(s.to_string()));
    }
    Ok(s)
}

/// Where the task's cgroup is: Nomad's scope when it exists (`created` false), else our own
/// `<root>/nomad-pledge.slice/<alloc>.<task>.scope` (`created` true; not created here).
pub fn task_cgroup(
    root: &Path,
    nomad_cgroup: Option<&Path>,
    alloc_id: &str,
    task_name: &str,
) -> Result<TaskCgroup, CgroupError> {
    if let Some(n) = nomad_cgroup {
        // Only a cgroup v2 directory under our mount can be used (on v1 hosts Nomad passes a
        // cpuset path, which CLONE_INTO_CGROUP cannot take).
        if n.starts_with(root) && n.join("cgroup.procs").is_file() {
            return Ok(TaskCgroup {
                path: n.to_path_buf(),
                created: false,
            });
        }
    }
    let scope = format!(
        "{}.{}.scope",
        safe_component(alloc_id)?,
        safe_component(task_name)?
    );
    Ok(TaskCgroup {
        path: root.join(OWN_SLICE).join(scope),
        created: true,
    })
}

/// Picks the task's cgroup (see `task_cgroup`), creates our own scope when needed, and checks
/// that it is empty.
pub fn prepare(
    root: &Path,
    nomad_cgroup: Option<&Path>,
    alloc_id: &str,
    task_name: &str,
) -> Result<TaskCgroup, CgroupError> {
    let cg = task_cgroup(root, nomad_cgroup, alloc_id, task_name)?;
    if !cg.created {
        ensure_empty(&cg.path)?;
        return Ok(cg);
    }
    let path = cg.path;
    let slice = root.join(OWN_SLICE);
    // A concurrent destroy may remove the (empty) slice between the two mkdirs: retry once.
    for attempt in 0..2 {
        mkdir(&slice)?;
        match mkdir(&path) {
            Err(CgroupError::Create { source, .. })
                if source.kind() == ErrorKind::NotFound && attempt == 0 => {}
            other => {
                other?;
                break;
            }
        }
    }
    ensure_empty(&path)?;
    Ok(TaskCgroup {
        path,
        created: true,
    })
}

fn mkdir(path: &Path) -> Result<(), CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(CgroupError::Create {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn ensure_empty(cg: &Path) -> Result<(), CgroupError> {
    let pids = procs(cg);
    if pids.is_empty() {
        Ok(())
    } else {
        Err(CgroupError::Busy {
            path: cg.to_path_buf(),
            pids,
        })
    }
}

fn write(path: PathBuf, value: &str) -> Result<(), CgroupError> {
    fs::write(&path, value).map_err(|source| CgroupError::Write {
        path,
        value: value.to_string(),
        source,
    })
}

/// Nomad MHz → `cpu.weight` with the log-quadratic mapping of current runc/Nomad (1024 → 100).
pub fn cpu_weight(shares: u64) -> Option<u64> {
    match shares {
        0 => None,
        1..=2 => Some(1),
        s if s >= 262_144 => Some(10_000),
        s => {
            let l = (s as f64).log2();
            let w = 10f64.powf((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0).ceil();
            Some((w as u64).clamp(1, 10_000))
        }
    }
}

/// The control-file writes a task's resources ask for, with the controller each needs.
pub fn limit_writes(res: &Resources) -> Vec<(&'static str, &'static str, String)> {
    const MIB: i64 = 1024 * 1024;
    let mut w = Vec::new();
    if res.memory_max_mb == -1 {
        w.push(("memory", "memory.max", "max".to_string()));
    } else if res.memory_max_mb > 0 {
        w.push((
            "memory",
            "memory.max",
            (res.memory_max_mb * MIB).to_string(),
        ));
    } else if res.memory_mb > 0 {
        w.push(("memory", "memory.max", (res.memory_mb * MIB).to_string()));
    }
    if res.memory_max_mb != 0 && res.memory_mb > 0 {
        w.push(("memory", "memory.low", (res.memory_mb * MIB).to_string()));
    }
    if let Some(weight) = cpu_weight(res.cpu_shares) {
        w.push(("cpu", "cpu.weight", weight.to_string()));
    }
    if let Some(q) = res.cpu_quota_us.filter(|q| *q > 0) {
        let period = res.cpu_period_us.filter(|p| *p > 0).unwrap_or(100_000);
        w.push(("cpu", "cpu.max", format!("{q} {period}")));
    }
    if !res.cpuset_cpus.trim().is_empty() {
        w.push(("cpuset", "cpuset.cpus", res.cpuset_cpus.trim().to_string()));
    }
    if let Some(max) = res.pids_max.filter(|m| *m > 0) {
        w.push(("pids", "pids.max", max.to_string()));
    }
    w
}

/// Writes the task's limits into `cg` (a descendant of `root`), enabling the controllers in the
/// ancestors' `cgroup.subtree_control` first. Returns the controllers that were needed but are
/// not available (the caller reports them in a task event; nothing is skipped silently).
pub fn apply_limits(root: &Path, cg: &Path, res: &Resources) -> Result<Vec<String>, CgroupError> {
    let writes = limit_writes(res);
    let mut needed: Vec<&str> = writes.iter().map(|(c, _, _)| *c).collect();
    needed.dedup();
    enable_controllers(root, cg, &needed);
    let mut missing: Vec<String> = Vec::new();
    for (controller, file, value) in writes {
        let path = cg.join(file);
        if !path.exists() {
            if !missing.iter().any(|m| m == controller) {
                missing.push(controller.to_string());
            }
            continue;
        }
        write(path, &value)?;
    }
    Ok(missing)
}

/// For each ancestor of `cg` from `root` down, enable the `needed` controllers it offers.
fn enable_controllers(root: &Path, cg: &Path, needed: &[&str]) {
    let Ok(rel) = cg.strip_prefix(root) else {
        return;
    };
    let mut dir = root.to_path_buf();
    for comp in rel.components() {
        let available = read_controllers(&dir.join("cgroup.controllers"));
        let enabled = read_controllers(&dir.join("cgroup.subtree_control"));
        for c in needed {
            if available.iter().any(|a| a == c) && !enabled.iter().any(|e| e == c) {
                // Best effort: a delegated parent that holds processes refuses (EBUSY, "no
                // internal processes"); the limit file is then absent and reported missing.
                let _ = fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
            }
        }
        dir.push(comp);
    }
}

/// The `oom_kill` counter of `<cg>/memory.events` (None without the memory controller).
pub fn oom_kills(cg: &Path) -> Option<u64> {
    let text = fs::read_to_string(cg.join("memory.events")).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == "oom_kill").then(|| v.trim().parse().ok()).flatten()
    })
}

/// Kills every process in `cg` with SIGKILL, pid by pid.
///
/// Not through `cgroup.kill`: on some kernels (reproduced on 6.18) a cgroup that was once killed
/// through `cgroup.kill` SIGKILLs every process cloned into it afterwards with
/// `CLONE_INTO_CGROUP`, and Nomad reuses a task's scope when it restarts the task, so the
/// restarted task would die at birth. Pid by pid is race-free here anyway: the supervisor is
/// PID 1 of the task's PID namespace, and when it dies the kernel kills everything in that
/// namespace and refuses new forks there. A second pass catches an exec helper that entered
/// the cgroup meanwhile.
pub fn kill_all(cg: &Path) {
    for _ in 0..2 {
        for pid in procs(cg) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Kills every process in `cg` and waits (up to 5 s) until it is empty; returns the pids that
/// were there. For the leftovers of an interrupted start of the same task, never for a cgroup
/// of unknown origin. Blocks: call it from a blocking thread.
pub fn kill_leftovers(cg: &Path) -> Result<Vec<i32>, CgroupError> {
    let pids = procs(cg);
    if pids.is_empty() {
        return Ok(pids);
    }
    kill_all(cg);
    for _ in 0..500 {
        if procs(cg).is_empty() {
            return Ok(pids);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(CgroupError::Busy {
        path: cg.to_path_buf(),
        pids: procs(cg),
    })
}

/// Removes a cgroup we created. The kernel may report EBUSY for a short while after the last
/// process exited (exit bookkeeping is asynchronous), so EBUSY is retried for up to 5 s.
pub async fn remove(cg: &Path) -> Result<(), CgroupError> {
    let mut tries = 0;
    loop {
        match fs::remove_dir(cg) {
            Ok(()) => {
                remove_own_slice(cg);
                return Ok(());
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                remove_own_slice(cg);
                return Ok(());
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 500 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: cg.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Removes our shared slice once its last scope is gone (errors mean another task uses it).
pub fn remove_own_slice(cg: &Path) {
    if let Some(slice) = cg.parent().filter(|p| p.ends_with(OWN_SLICE)) {
        let _ = fs::remove_dir(slice);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_tree(controllers: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("cgroup.controllers"), controllers).unwrap();
        fs::write(t.path().join("cgroup.subtree_control"), "").unwrap();
        t
    }

    #[test]
    fn finds_the_cgroup2_mount() {
        let mi = "25 30 0:22 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755\n\
                  26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            find_cgroup2_mount(mi),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            find_cgroup2_mount("1 2 0:1 / / rw - ext4 /dev/sda rw\n"),
            None
        );
        let spaced = "30 25 0:27 / /mnt/cg\\040two\\134x rw - cgroup2 none rw\n";
        assert_eq!(
            find_cgroup2_mount(spaced),
            Some(PathBuf::from("/mnt/cg two\\x"))
        );
        assert_eq!(find_cgroup2_mount("garbage\n\n1 2 3\n"), None);
    }

    #[test]
    fn cpu_weight_matches_runc() {
        assert_eq!(cpu_weight(0), None);
        assert_eq!(cpu_weight(2), Some(1));
        assert_eq!(cpu_weight(1024), Some(100));
        assert_eq!(cpu_weight(262_144), Some(10_000));
    }

    #[test]
    fn limits_are_written_and_controllers_enabled() {
        let t = fake_tree("cpu memory cpuset pids\n");
        let cg = prepare(t.path(), None, "a1", "web").unwrap();
        assert!(cg.created);
        assert_eq!(cg.path, t.path().join("nomad-pledge.slice/a1.web.scope"));
        let slice = t.path().join(OWN_SLICE);
        fs::write(slice.join("cgroup.controllers"), "cpu memory cpuset pids").unwrap();
        fs::write(slice.join("cgroup.subtree_control"), "").unwrap();
        for f in [
            "memory.max",
            "memory.low",
            "cpu.weight",
            "cpu.max",
            "cpuset.cpus",
            "pids.max",
        ] {
            fs::write(cg.path.join(f), "").unwrap();
        }
        let res = Resources {
            memory_mb: 256,
            memory_max_mb: 512,
            cpu_shares: 1024,
            cpu_quota_us: Some(50_000),
            cpu_period_us: None,
            cpuset_cpus: "2,3".into(),
            pids_max: Some(64),
        };
        let missing = apply_limits(t.path(), &cg.path, &res).unwrap();
        assert!(missing.is_empty(), "{missing:?}");
        let read = |f: &str| fs::read_to_string(cg.path.join(f)).unwrap();
        assert_eq!(read("memory.max"), (512u64 << 20).to_string());
        assert_eq!(read("memory.low"), (256u64 << 20).to_string());
        assert_eq!(read("cpu.weight"), "100");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(read("cpuset.cpus"), "2,3");
        assert_eq!(read("pids.max"), "64");
        // A real kernel accumulates "+c" writes; the fake file keeps the last one written.
        assert!(fs::read_to_string(t.path().join("cgroup.subtree_control"))
            .unwrap()
            .starts_with('+'));
        assert!(fs::read_to_string(slice.join("cgroup.subtree_control"))
            .unwrap()
            .starts_with('+'));
    }

    #[test]
    fn missing_controllers_are_reported_not_hidden() {
        let t = fake_tree("pids\n");
        let cg = prepare(t.path(), None, "a1", "web").unwrap();
        let res = Resources {
            memory_mb: 64,
            cpu_shares: 100,
            pids_max: Some(10),
            ..Default::default()
        };
        let missing = apply_limits(t.path(), &cg.path, &res).unwrap();
        assert_eq!(missing, vec!["memory", "cpu", "pids"]);
    }

    #[test]
    fn unlimited_memory_and_soft_limit_rules() {
        let w = limit_writes(&Resources {
            memory_mb: 100,
            memory_max_mb: -1,
            ..Default::default()
        });
        assert_eq!(w[0].2, "max");
        assert_eq!(w[1].1, "memory.low");
        let w = limit_writes(&Resources {
            memory_mb: 100,
            ..Default::default()
        });
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].2, (100u64 << 20).to_string());
    }

    #[test]
    fn nomad_scope_is_used_when_present_and_must_be_empty() {
        let t = fake_tree("");
        let scope = t.path().join("nomad.slice/share.slice/a.t.scope");
        fs::create_dir_all(&scope).unwrap();
        fs::write(scope.join("cgroup.procs"), "").unwrap();
        let cg = prepare(t.path(), Some(&scope), "a", "t").unwrap();
        assert_eq!(
            cg,
            TaskCgroup {
                path: scope.clone(),
                created: false
            }
        );
        fs::write(scope.join("cgroup.procs"), "4242\n").unwrap();
        let e = prepare(t.path(), Some(&scope), "a", "t").unwrap_err();
        assert!(e.to_string().contains("4242"), "{e}");
        // A scope path that does not exist (Nomad in OFF mode) → our own.
        let cg = prepare(t.path(), Some(&t.path().join("nope")), "a", "t").unwrap();
        assert!(cg.created);
        assert!(prepare(t.path(), None, "a", "../x").is_err());
    }

    #[test]
    fn oom_kill_counter_is_parsed() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(oom_kills(t.path()), None);
        fs::write(
            t.path().join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(oom_kills(t.path()), Some(2));
    }

    #[test]
    fn kill_sends_sigkill_to_each_pid() {
        let t = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        fs::write(t.path().join("cgroup.procs"), format!("{}\n", child.id())).unwrap();
        kill_all(t.path());
        let st = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(libc::SIGKILL));
    }
}
