//! The go-plugin listener: a unix socket inside a private (0700) directory, removed on drop.

use std::path::{Path, PathBuf};

/// Where the socket directory is created: `PLUGIN_UNIX_SOCKET_DIR` if the host set it, else
/// `$TMPDIR` (or /tmp).
pub const SOCKET_DIR_ENV: &str = "PLUGIN_UNIX_SOCKET_DIR";

/// Longest usable `sun_path` (108 bytes including the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot create the private socket directory under {base}: {source} (set TMPDIR or PLUGIN_UNIX_SOCKET_DIR to a writable directory)")]
    CreateDir { base: PathBuf, source: nix::Error },
    #[error("socket path {path} is longer than {MAX_SOCKET_PATH} bytes (set TMPDIR or PLUGIN_UNIX_SOCKET_DIR to a shorter directory)")]
    PathTooLong { path: PathBuf },
    #[error("cannot listen on unix socket {path}: {source}")]
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
    /// Creates `<base>/nomad-pledge-driver-XXXXXX` with mode 0700.
    pub fn create(base: &Path) -> Result<Self, SocketError> {
        let template = base.join("nomad-pledge-driver-XXXXXX");
        let dir = nix::unistd::mkdtemp(&template).map_err(|source| SocketError::CreateDir {
            base: base.to_path_buf(),
            source,
        })?;
        let socket = dir.join("plugin.sock");
        let this = Self { dir, socket };
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
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
}
