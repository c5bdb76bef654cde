//! Installing a built program: `PR_SET_NO_NEW_PRIVS`, then the raw `seccomp(2)` syscall.
//!
//! Everything here is async-signal-safe (no allocation), so it can run in a child between fork
//! and execve.

use std::os::fd::OwnedFd;

use super::bpf::Insn;
use super::{BpfProgram, SeccompError};
use crate::sandbox::sys;

/// `SECCOMP_FILTER_FLAG_*` bits for [`install`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstallFlags(u32);

impl InstallFlags {
    pub const NONE: InstallFlags = InstallFlags(0);
    #[cfg(test)]
    /// Apply to every thread of the process (not together with NEW_LISTENER).
    pub const TSYNC: InstallFlags = InstallFlags(1);
    #[cfg(test)]
    /// Log every action except ALLOW (kernel audit log).
    pub const LOG: InstallFlags = InstallFlags(2);
    /// Return a user-notification listener fd (Linux 5.0+).
    pub const NEW_LISTENER: InstallFlags = InstallFlags(8);

    pub const fn bits(self) -> u32 {
        self.0
    }

    pub const fn contains(self, other: InstallFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for InstallFlags {
    type Output = InstallFlags;
    fn bitor(self, rhs: Self) -> Self {
        InstallFlags(self.0 | rhs.0)
    }
}

/// Install `prog` on the calling thread (and what it later creates or execs). Sets
/// NO_NEW_PRIVS first, as unprivileged seccomp requires. Returns the listener fd when
/// [`InstallFlags::NEW_LISTENER`] was asked for. Irreversible.
pub fn install(prog: &BpfProgram, flags: InstallFlags) -> Result<Option<OwnedFd>, SeccompError> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| SeccompError::NoNewPrivs {
        source: std::io::Error::from(e),
    })?;
    set_mode_filter(prog.instructions(), flags)
}

/// A PID no process can have (above the kernel's `PID_MAX_LIMIT`, 2^22): a filter built for a
/// child that is not forked yet uses it as "self" (`FilterOptions::self_pid`), and the child
/// installs it with [`install_as_self`], which puts its own PID in its place.
pub const SELF_PID_PLACEHOLDER: i32 = 0x7fff_fff3;

/// [`install`] with every `jeq SELF_PID_PLACEHOLDER` replaced by `pid`. The program is copied
/// to the stack (no allocation: callable between fork and execve).
pub fn install_as_self(
    prog: &BpfProgram,
    flags: InstallFlags,
    pid: i32,
) -> Result<Option<OwnedFd>, SeccompError> {
    const JEQ_K: u16 = 0x05 | 0x10;
    let src = prog.instructions();
    let mut buf = [Insn {
        code: 0,
        jt: 0,
        jf: 0,
        k: 0,
    }; super::bpf::MAX_INSNS];
    let Some(dst) = buf.get_mut(..src.len()) else {
        return Err(SeccompError::Internal {
            what: "a filter longer than BPF_MAXINSNS",
        });
    };
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
        if s.code == JEQ_K && s.k == SELF_PID_PLACEHOLDER as u32 {
            d.k = pid as u32;
        }
    }
    nix::sys::prctl::set_no_new_privs().map_err(|e| SeccompError::NoNewPrivs {
        source: std::io::Error::from(e),
    })?;
    set_mode_filter(dst, flags)
}

/// The raw `seccomp(SECCOMP_SET_MODE_FILTER, ...)` (in `sandbox::sys`), its error typed.
fn set_mode_filter(insns: &[Insn], flags: InstallFlags) -> Result<Option<OwnedFd>, SeccompError> {
    sys::seccomp_set_mode_filter(
        insns,
        flags.bits(),
        flags.contains(InstallFlags::NEW_LISTENER),
    )
    .map_err(|source| SeccompError::Install {
        flags: flags.bits(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insn_has_the_kernel_layout() {
        assert_eq!(
            std::mem::size_of::<Insn>(),
            std::mem::size_of::<libc::sock_filter>()
        );
        assert_eq!(
            std::mem::align_of::<Insn>(),
            std::mem::align_of::<libc::sock_filter>()
        );
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn flags_compose() {
        let f = InstallFlags::NEW_LISTENER | InstallFlags::LOG;
        assert_eq!(f.bits(), 10);
        assert!(f.contains(InstallFlags::LOG));
        assert!(!f.contains(InstallFlags::TSYNC));
        assert_eq!(
            InstallFlags::TSYNC.bits() as libc::c_ulong,
            libc::SECCOMP_FILTER_FLAG_TSYNC
        );
        assert_eq!(
            InstallFlags::NEW_LISTENER.bits() as libc::c_ulong,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
        );
    }
}
