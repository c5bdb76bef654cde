//! The go-plugin listener: a unix socket inside a private (0700) directory, removed on drop.
//!
//! A plugin that is SIGKILLed cannot remove its directory, so the directory's name carries its
//! pid (`nomad-pledge-driver-<pid>-XXXXXX`) and an `owner` file its pid and start time; a
//! starting plugin removes the directories of plugins that are gone ([`remove_stale`]): only
//! directories of this naming scheme, owned by our uid, mode 0700, whose owner process no
//! longer runs (or whose pid now belongs to a process started at another time), and only the
//! files a plugin puts there.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where the socket directory is created: `PLUGIN_UNIX_SOCKET_DIR` if the host set it, else
/// `$TMPDIR` (or /tmp).
pub const SOCKET_DIR_ENV: &str = "PLUGIN_UNIX_SOCKET_DIR";

/// Longest usable `sun_path` (108 bytes including the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

const DIR_PREFIX: &str = "nomad-pledge-driver-";
const SOCKET_NAME: &str = "plugin.sock";
/// `<pid> <start time in clock ticks>` of the plugin owning the directory.
const OWNER_NAME: &str = "owner";

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot create the private socket directory under {base} (set TMPDIR or PLUGIN_UNIX_SOCKET_DIR to a writable directory)")]
    CreateDir { base: PathBuf, source: nix::Error },
    #[error("socket path {path} is longer than {MAX_SOCKET_PATH} bytes (set TMPDIR or PLUGIN_UNIX_SOCKET_DIR to a shorter directory)")]
    PathTooLong { path: PathBuf },
    #[error("cannot listen on unix socket {path}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A private directory holding the plugin socket. Dropping it removes both.
#[derive(Debug)]
pub struct SocketDir {
    dir: PathBuf,
    socket: PathBuf,
}

impl SocketDir {
    /// Removes the directories of dead plugins, then creates
    /// `<base>/nomad-pledge-driver-<pid>-XXXXXX` with mode 0700 and its `owner` file.
    pub fn create(base: &Path) -> Result<Self, SocketError> {
        let removed = remove_stale(base);
        if removed > 0 {
            tracing::info!(count = removed, base = %base.display(), "removed the socket directories of plugins that are gone");
        }
        let me = std::process::id();
        let template = base.join(format!("{DIR_PREFIX}{me}-XXXXXX"));
        let dir = nix::unistd::mkdtemp(&template).map_err(|source| SocketError::CreateDir {
            base: base.to_path_buf(),
            source,
        })?;
        let socket = dir.join(SOCKET_NAME);
        let owner = start_time(me).map(|t| format!("{me} {t}\n"));
        let this = Self { dir, socket };
        if let Some(owner) = owner {
            // Without it the directory is still cleaned up once our pid is gone.
            let _ = std::fs::write(this.dir.join(OWNER_NAME), owner);
        }
        if this.socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(SocketError::PathTooLong {
                path: this.socket.clone(),
            });
        }
        Ok(this)
    }

    /// The base directory from the environment.
    pub fn base_from_env() -> PathBuf {
        match std::env::var_os(SOCKET_DIR_ENV) {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => std::env::temp_dir(),
        }
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Binds and listens; connections are accepted (queued) from this moment on.
    pub fn bind(&self) -> Result<tokio::net::UnixListener, SocketError> {
        tokio::net::UnixListener::bind(&self.socket).map_err(|source| SocketError::Bind {
            path: self.socket.clone(),
            source,
        })
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(self.dir.join(OWNER_NAME));
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Field 22 of `/proc/<pid>/stat` (start time since boot, clock ticks): with the pid it names
/// one process, so a reused pid is not mistaken for the owner.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The pid in a directory name of ours (`nomad-pledge-driver-<pid>-XXXXXX`).
fn owner_pid_of(name: &str) -> Option<u32> {
    let (pid, suffix) = name.strip_prefix(DIR_PREFIX)?.split_once('-')?;
    if suffix.len() != 6 || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether the plugin that created `dir` (pid from its name) still runs.
fn owner_alive(dir: &Path, pid: u32) -> bool {
    let Some(now) = start_time(pid) else {
        return false; // no such process
    };
    match std::fs::read_to_string(dir.join(OWNER_NAME)) {
        Ok(text) => {
            let mut f = text.split_whitespace();
            let recorded = (f.next(), f.next().and_then(|t| t.parse::<u64>().ok()));
            // An unreadable record: be safe and keep the directory.
            !matches!(recorded, (Some(p), Some(t)) if p == pid.to_string() && t != now)
        }
        // The owner file is written just after the directory: it may be starting up.
        Err(_) => true,
    }
}

/// Removes the socket directories of plugins that are gone; returns how many. Never touches a
/// directory that is not ours (name, owner uid, mode 0700, not a symlink) or whose owner runs,
/// and removes only our two files before `rmdir` (anything else keeps the directory).
pub fn remove_stale(base: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(base) else {
        return 0;
    };
    let (me, uid) = (std::process::id(), nix::unistd::geteuid().as_raw());
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid_of) else {
            continue;
        };
        let dir = entry.path();
        let ours = std::fs::symlink_metadata(&dir).is_ok_and(|m| {
            m.file_type().is_dir() && m.uid() == uid && m.permissions().mode() & 0o777 == 0o700
        });
        if !ours || pid == me || owner_alive(&dir, pid) {
            continue;
        }
        let sock = dir.join(SOCKET_NAME);
        if std::fs::symlink_metadata(&sock).is_ok_and(|m| m.file_type().is_socket()) {
            let _ = std::fs::remove_file(&sock);
        }
        let owner = dir.join(OWNER_NAME);
        if std::fs::symlink_metadata(&owner).is_ok_and(|m| m.file_type().is_file()) {
            let _ = std::fs::remove_file(&owner);
        }
        if std::fs::remove_dir(&dir).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_errors_say_each_thing_once() {
        use crate::errors::assert_says_each_thing_once as check;
        use crate::errors::fixtures::{errno, io};
        check(&SocketError::CreateDir {
            base: PathBuf::from("/tmp"),
            source: errno(),
        });
        check(&SocketError::Bind {
            path: PathBuf::from("/tmp/x.sock"),
            source: io(),
        });
    }

    #[tokio::test]
    async fn private_dir_socket_and_cleanup() {
        let base = tempfile::tempdir().unwrap();
        let sd = SocketDir::create(base.path()).unwrap();
        let mode = std::fs::metadata(sd.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let _l = sd.bind().unwrap();
        assert!(sd.socket_path().exists());
        let (dir, sock) = (sd.dir().to_path_buf(), sd.socket_path().to_path_buf());
        drop(sd);
        assert!(!sock.exists() && !dir.exists());
    }

    #[test]
    fn missing_base_dir_is_a_clear_error() {
        let err = SocketDir::create(Path::new("/nonexistent/dir")).unwrap_err();
        assert!(err.to_string().contains("PLUGIN_UNIX_SOCKET_DIR"), "{err}");
    }

    #[test]
    fn only_dead_owners_directories_are_removed() {
        let base = tempfile::tempdir().unwrap();
        let mkdir = |name: &str, mode: u32| {
            let d = base.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
            d
        };
        // A pid that is not running: a child we started and reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let gone = mkdir(&format!("{DIR_PREFIX}{dead}-aaaaaa"), 0o700);
        std::fs::write(gone.join(OWNER_NAME), format!("{dead} 1\n")).unwrap();
        std::os::unix::net::UnixListener::bind(gone.join(SOCKET_NAME)).unwrap();
        // pid 1 runs, but not since the recorded start time: the pid was reused.
        let reused = mkdir(&format!("{DIR_PREFIX}1-bbbbbb"), 0o700);
        std::fs::write(reused.join(OWNER_NAME), "1 999999999999\n").unwrap();
        // Alive: our own parent's pid, with its real start time; and one without owner file.
        let ppid = std::os::unix::process::parent_id();
        let live = mkdir(&format!("{DIR_PREFIX}{ppid}-cccccc"), 0o700);
        let t = start_time(ppid).unwrap();
        std::fs::write(live.join(OWNER_NAME), format!("{ppid} {t}\n")).unwrap();
        let starting = mkdir(&format!("{DIR_PREFIX}{ppid}-dddddd"), 0o700);
        // Not ours: other names, modes, or extra content.
        let legacy = mkdir(&format!("{DIR_PREFIX}eeeeee"), 0o700);
        let open = mkdir(&format!("{DIR_PREFIX}{dead}-ffffff"), 0o755);
        let full = mkdir(&format!("{DIR_PREFIX}{dead}-gggggg"), 0o700);
        std::fs::write(full.join("data"), "keep").unwrap();

        assert_eq!(remove_stale(base.path()), 2);
        assert!(!gone.exists() && !reused.exists());
        for kept in [&live, &starting, &legacy, &open, &full] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
        assert!(full.join("data").exists());
    }

    #[test]
    fn names_carry_the_owner_pid() {
        assert_eq!(owner_pid_of("nomad-pledge-driver-42-AbC123"), Some(42));
        assert_eq!(owner_pid_of("nomad-pledge-driver-AbC123"), None);
        assert_eq!(owner_pid_of("nomad-pledge-driver-42-x"), None);
        assert_eq!(owner_pid_of("other-42-AbC123"), None);
        assert!(start_time(std::process::id()).is_some());
    }
}
