//! The kernel audit netlink socket, through nix (no unsafe here): the status (`AUDIT_GET`),
//! turning audit on (`AUDIT_SET`), and the read-only multicast group `AUDIT_NLGRP_READLOG`
//! that any number of readers may join next to auditd (never auditd's unicast channel).

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

const AUDIT_GET: u16 = 1000;
const AUDIT_SET: u16 = 1001;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const AUDIT_STATUS_ENABLED: u32 = 1;
/// `AUDIT_NLGRP_READLOG` is group 1: bit 0 of `nl_groups`.
const READLOG_GROUPS: u32 = 1;
const HDR: usize = 16;

/// Why the audit socket failed (each names the step; root with CAP_AUDIT_* is needed).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit netlink socket (needs root in the initial network namespace and a kernel with CONFIG_AUDIT)")]
    Socket(#[source] nix::Error),
    #[error("audit netlink {what}")]
    Io {
        what: &'static str,
        source: nix::Error,
    },
    #[error("audit netlink {what}: the kernel answered {detail}")]
    Reply { what: &'static str, detail: String },
}

/// The part of `struct audit_status` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// 0 off, 1 on, 2 on and locked.
    pub enabled: u32,
    /// The registered audit daemon's pid (0: none).
    pub pid: u32,
}

fn open() -> Result<OwnedFd, AuditError> {
    socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkAudit,
    )
    .map_err(AuditError::Socket)
}

fn header(ty: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(HDR + payload.len());
    m.extend_from_slice(&((HDR + payload.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
    m.extend_from_slice(payload);
    m
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

/// One request, one reply (the first message of type `want` or an error).
fn request(what: &'static str, msg: &[u8], want: u16) -> Result<Vec<u8>, AuditError> {
    let fd = open()?;
    send(fd.as_raw_fd(), msg, MsgFlags::empty())
        .map_err(|source| AuditError::Io { what, source })?;
    let mut buf = vec![0u8; 8192];
    for _ in 0..8 {
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())
            .map_err(|source| AuditError::Io { what, source })?;
        let b = &buf[..n];
        let ty = u16_at(b, 4).unwrap_or(0);
        if ty == NLMSG_ERROR {
            let err = u32_at(b, HDR).map_or(0, |e| e as i32);
            if err == 0 && want == NLMSG_ERROR {
                return Ok(Vec::new());
            }
            if err != 0 {
                return Err(AuditError::Io {
                    what,
                    source: nix::Error::from_raw(-err),
                });
            }
            continue;
        }
        if ty == want {
            return Ok(b.get(HDR..).unwrap_or_default().to_vec());
        }
    }
    Err(AuditError::Reply {
        what,
        detail: "no reply of the expected type".into(),
    })
}

/// `AUDIT_GET`.
pub fn status() -> Result<Status, AuditError> {
    let p = request(
        "AUDIT_GET",
        &header(AUDIT_GET, NLM_F_REQUEST, &[]),
        AUDIT_GET,
    )?;
    match (u32_at(&p, 4), u32_at(&p, 12)) {
        (Some(enabled), Some(pid)) => Ok(Status { enabled, pid }),
        _ => Err(AuditError::Reply {
            what: "AUDIT_GET",
            detail: format!("a {}-byte status", p.len()),
        }),
    }
}

/// `AUDIT_SET` of the enabled flag only (0 or 1); every other setting is left alone.
pub fn set_enabled(on: bool) -> Result<(), AuditError> {
    let mut payload = vec![0u8; 40];
    payload[0..4].copy_from_slice(&AUDIT_STATUS_ENABLED.to_ne_bytes());
    payload[4..8].copy_from_slice(&u32::from(on).to_ne_bytes());
    request(
        "AUDIT_SET",
        &header(AUDIT_SET, NLM_F_REQUEST | NLM_F_ACK, &payload),
        NLMSG_ERROR,
    )
    .map(|_| ())
}

/// A reader bound to the read-only multicast group.
pub struct Reader {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Reader {
    pub fn open() -> Result<Reader, AuditError> {
        let fd = open()?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, READLOG_GROUPS)).map_err(|source| {
            AuditError::Io {
                what: "bind to AUDIT_NLGRP_READLOG",
                source,
            }
        })?;
        Ok(Reader {
            fd,
            buf: vec![0u8; 16384],
        })
    }

    /// Blocks for the next message: (type, text).
    pub fn next(&mut self) -> Result<(u16, String), AuditError> {
        loop {
            let n = match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
                Ok(n) => n,
                // Overrun (ENOBUFS): records were lost; keep reading.
                Err(nix::Error::ENOBUFS) | Err(nix::Error::EINTR) => continue,
                Err(source) => {
                    return Err(AuditError::Io {
                        what: "recv",
                        source,
                    })
                }
            };
            let b = &self.buf[..n];
            let (Some(len), Some(ty)) = (u32_at(b, 0), u16_at(b, 4)) else {
                continue;
            };
            let end = (len as usize).clamp(HDR, n);
            let text = String::from_utf8_lossy(b.get(HDR..end).unwrap_or_default()).into_owned();
            return Ok((ty, text));
        }
    }
}

#[cfg(test)]
mod error_tests {
    use super::AuditError;
    use crate::errors::assert_says_each_thing_once as check;
    use crate::errors::fixtures::errno;

    #[test]
    fn audit_errors_say_each_thing_once() {
        check(&AuditError::Socket(errno()));
        check(&AuditError::Io {
            what: "recv",
            source: errno(),
        });
    }
}
