//! Kernel audit for the Landlock denial tests: enabling it is host-wide, so a test takes
//! [`take`], which serialises the tests of one binary and puts audit's enabled flag back as it
//! was, whatever happens in the test.

use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use super::BIN;

/// Kernel audit's enabled flag, read and written over audit netlink (`AUDIT_GET`/`AUDIT_SET`),
/// so that the Landlock test can put back the state it found: enabling audit is host-wide.
mod netlink {
    use nix::sys::socket::{
        recv, send, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType,
    };
    use std::os::fd::AsRawFd;

    fn request(ty: u16, flags: u16, payload: &[u8]) -> Option<Vec<u8>> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkAudit,
        )
        .ok()?;
        let mut m = Vec::new();
        m.extend_from_slice(&(16 + payload.len() as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&[0u8; 8]);
        m.extend_from_slice(payload);
        send(fd.as_raw_fd(), &m, MsgFlags::empty()).ok()?;
        let mut buf = vec![0u8; 8192];
        for _ in 0..8 {
            let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).ok()?;
            let t = u16::from_ne_bytes([buf[4], buf[5]]);
            if t == ty || t == 2 {
                return Some(buf[16..n].to_vec());
            }
        }
        None
    }

    /// `enabled` (0 off, 1 on, 2 locked), None where audit netlink is unusable.
    pub fn enabled() -> Option<u32> {
        let p = request(1000, 1, &[])?;
        Some(u32::from_ne_bytes(p.get(4..8)?.try_into().ok()?))
    }

    pub fn set_enabled(v: u32) {
        let mut p = vec![0u8; 40];
        p[0..4].copy_from_slice(&1u32.to_ne_bytes());
        p[4..8].copy_from_slice(&v.to_ne_bytes());
        let _ = request(1001, 1 | 4, &p);
    }
}

pub use netlink::enabled;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Puts kernel audit's enabled flag back as it was when dropped.
pub struct RestoreAudit {
    before: u32,
    _one: MutexGuard<'static, ()>,
}

impl RestoreAudit {
    pub fn before(&self) -> u32 {
        self.before
    }
}

impl Drop for RestoreAudit {
    fn drop(&mut self) {
        if netlink::enabled() != Some(self.before) && self.before < 2 {
            netlink::set_enabled(self.before);
        }
    }
}

/// The right to turn audit on in this test, or None (with a printed SKIP) where Landlock
/// writes no audit records (ABI < 7) or audit netlink is unusable.
pub fn take() -> Option<RestoreAudit> {
    let one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let abi = Command::new(BIN)
        .args(["pledge", "-T", "unveil", "true"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let abi: u32 = abi
        .lines()
        .find_map(|l| l.strip_prefix("landlock: available, ABI "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let reason = "Landlock writes audit records from ABI 7 on";
    super::host_features::landlock_abi((abi > 0).then_some(abi as i32), reason);
    if abi < 7 {
        eprintln!("SKIP: Landlock ABI {abi} < 7 writes no audit records");
        return None;
    }
    let Some(before) = netlink::enabled() else {
        eprintln!("SKIP: kernel audit netlink is not usable here");
        return None;
    };
    Some(RestoreAudit { before, _one: one })
}
