//! Finding the program (PATH lookup, pledge-semantics.md §1.7) and classifying it (§3.2).

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use nix::unistd::{access, AccessFlags};

/// Exit status when the program is not found (§1.9).
pub const NOT_FOUND_EXIT_STATUS: i32 = 10;

/// `strerror` text without Rust's "(os error N)" suffix, as pledge.com prints it.
pub fn errno_text(errno: &i32) -> &'static str {
    nix::errno::Errno::from_raw(*errno).desc()
}

/// PATH used when `PATH` is unset (v1.9).
pub const DEFAULT_PATH: &str = "/usr/local/bin:/bin:/usr/bin";

#[derive(Debug, thiserror::Error)]
pub enum ExeError {
    #[error("{name}: {}", errno_text(.errno))]
    NotFound { name: String, errno: i32 },
}

/// Find `name` like v1.9's `commandv`: a name with `/` is used as is; otherwise each element of
/// `path_var` (empty element = cwd) is tried; a candidate must be a regular file with `X_OK`.
/// Not found → ENOENT, or EACCES if a candidate existed but was not executable.
pub fn find_program(name: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, ExeError> {
    let err = |errno| ExeError::NotFound {
        name: name.to_string_lossy().into_owned(),
        errno,
    };
    if name.is_empty() {
        return Err(err(libc::ENOENT));
    }
    let check = |p: &Path| -> Result<(), i32> {
        let md = std::fs::metadata(p).map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))?;
        if !md.file_type().is_file() {
            return Err(libc::EACCES);
        }
        access(p, AccessFlags::X_OK).map_err(|e| e as i32)
    };
    if name.as_bytes().contains(&b'/') {
        let p = PathBuf::from(name);
        return check(&p).map(|()| p).map_err(err);
    }
    let path_var = path_var.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut saw_eacces = false;
    for dir in path_var.as_bytes().split(|&c| c == b':') {
        let cand = if dir.is_empty() {
            PathBuf::from(name)
        } else {
            Path::new(OsStr::from_bytes(dir)).join(name)
        };
        match check(&cand) {
            Ok(()) => return Ok(cand),
            Err(libc::EACCES) => saw_eacces = true,
            Err(_) => {}
        }
    }
    Err(err(if saw_eacces {
        libc::EACCES
    } else {
        libc::ENOENT
    }))
}

/// What kind of file the program is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// ELF that needs the dynamic loader (PT_INTERP/PT_DYNAMIC or ET_DYN, as pledge.com).
    DynamicElf,
    StaticElf,
    /// `#!` script with its interpreter (absolute path as written).
    Script {
        interpreter: PathBuf,
    },
    /// Anything else (unreadable, unknown format).
    Other,
}

/// Classify by reading the header (first 64 bytes + up to 64 program headers).
pub fn classify(path: &Path) -> Kind {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(_) => return Kind::Other,
    };
    if f.metadata()
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(true)
    {
        return Kind::Other;
    }
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return Kind::Other,
        }
    }
    classify_bytes(&buf[..n])
}

fn classify_bytes(b: &[u8]) -> Kind {
    if b.starts_with(b"#!") {
        let line = b[2..].split(|&c| c == b'\n').next().unwrap_or_default();
        let interp = line
            .split(|&c| c == b' ' || c == b'\t')
            .find(|t| !t.is_empty())
            .unwrap_or_default();
        if interp.starts_with(b"/") {
            return Kind::Script {
                interpreter: PathBuf::from(OsString::from(OsStr::from_bytes(interp))),
            };
        }
        return Kind::Other;
    }
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        // Only 64-bit little-endian ELF is classified; the rest is treated as static.
        return if b.starts_with(b"\x7fELF") {
            Kind::StaticElf
        } else {
            Kind::Other
        };
    }
    let u16at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u64at = |o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(a)
    };
    const ET_DYN: u16 = 3;
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    if u16at(16) == ET_DYN {
        return Kind::DynamicElf;
    }
    let phoff = u64at(32) as usize;
    let phentsize = u16at(54) as usize;
    let phnum = (u16at(56) as usize).min(64);
    for i in 0..phnum {
        let o = phoff.saturating_add(i * phentsize);
        if phentsize < 4 || o + 4 > b.len() {
            break;
        }
        let t = u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        if t == PT_INTERP || t == PT_DYNAMIC {
            return Kind::DynamicElf;
        }
    }
    Kind::StaticElf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lookup() {
        let sh = find_program(OsStr::new("sh"), Some(OsStr::new("/nonexistent:/bin"))).unwrap();
        assert_eq!(sh, PathBuf::from("/bin/sh"));
        let e = find_program(OsStr::new("no-such-prog-xyz"), Some(OsStr::new("/bin"))).unwrap_err();
        assert_eq!(e.to_string(), "no-such-prog-xyz: No such file or directory");
        // A directory is not a program.
        let e = find_program(OsStr::new("/tmp"), None).unwrap_err();
        assert!(e.to_string().starts_with("/tmp: "), "{e}");
        // A regular file without any execute bit: EACCES.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("noexec"), "x").unwrap();
        let e = find_program(OsStr::new("noexec"), Some(dir.path().as_os_str())).unwrap_err();
        assert!(e.to_string().contains("Permission denied"), "{e}");
    }

    #[test]
    fn classification() {
        assert_eq!(classify(Path::new("/bin/sh")), Kind::DynamicElf);
        assert_eq!(
            classify_bytes(b"#!/bin/sh -e\necho hi\n"),
            Kind::Script {
                interpreter: "/bin/sh".into()
            }
        );
        assert_eq!(classify_bytes(b"#!env python\n"), Kind::Other);
        assert_eq!(classify_bytes(b"hello"), Kind::Other);
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[16] = 2; // ET_EXEC, no program headers
        assert_eq!(classify_bytes(&elf), Kind::StaticElf);
        elf[16] = 3;
        assert_eq!(classify_bytes(&elf), Kind::DynamicElf);
    }
}
