//! Strings, byte strings and argument vectors that look like what the parsers expect, with the
//! characters that matter to them (`:`, NUL, `${`, separators, non-ASCII, non-UTF-8) mixed in.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use arbitrary::{Result, Unstructured};

use crate::sandbox::promise::Promise;

/// Attribute names of the task config and the plugin config (and one near miss).
pub const CONFIG_KEYS: &[&str] = &[
    "command",
    "args",
    "promises",
    "unveil",
    "importance",
    "work_dir",
    "pledge_executable",
    "allow_root",
    "default_user",
    "unveil_best_effort",
    "state_dir",
    "cgroup_root",
    "log_level",
    "Command",
];

/// Fragments the parsers treat specially.
const PIECES: &[&str] = &[
    "",
    " ",
    "\t",
    "\n",
    "\r",
    "\0",
    ":",
    "::",
    "/",
    "..",
    "${",
    "${NOMAD_TASK_DIR}",
    "}",
    "-",
    "--",
    "r",
    "w",
    "x",
    "c",
    "rwxc",
    "r:",
    "rwc:/tmp",
    "q:",
    "/bin/sh",
    "/etc",
    "local/out",
    "/nonexistent",
    "/proc/self/mem",
    "0",
    "-1",
    "0x10",
    "077",
    "09",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1k",
    "4GiB",
    "16e",
    "17e",
    "+5",
    "1.5",
    "true",
    "false",
    "nobody",
    "root",
    "$1",
    "debug",
    "TRACE",
    "warning",
    "lowest",
    "highest",
    "é",
    "\u{feff}",
    "\u{a0}",
    "\u{2028}",
    "𝕏",
];

fn piece(u: &mut Unstructured) -> Result<String> {
    Ok(match u.int_in_range(0..=9)? {
        0..=4 => u.choose(PIECES)?.to_string(),
        5 | 6 => u.choose(&Promise::ALL)?.name().to_string(),
        7 => {
            let name = u.choose(&Promise::ALL)?.name();
            name.to_uppercase()
        }
        8 => char::from(u.int_in_range(0x20..=0x7e)?).to_string(),
        _ => u.arbitrary::<char>()?.to_string(),
    })
}

/// A string of a few pieces; now and then one piece repeated past the 255-byte limits.
pub fn string(u: &mut Unstructured) -> Result<String> {
    let mut s = String::new();
    if u.ratio(1, 20)? {
        let p = piece(u)?;
        let n = u.int_in_range(1..=400)?;
        s.push_str(&p.repeat(n));
        return Ok(s);
    }
    for _ in 0..u.int_in_range(0..=6)? {
        s.push_str(&piece(u)?);
        if u.ratio(1, 3)? {
            s.push(' ');
        }
    }
    Ok(s)
}

/// Raw bytes, often not UTF-8.
pub fn bytes(u: &mut Unstructured) -> Result<Vec<u8>> {
    if u.ratio(1, 2)? {
        let mut b = string(u)?.into_bytes();
        if u.ratio(1, 3)? {
            b.push(*u.choose(&[0x80, 0xff, 0xc3, 0xed])?);
        }
        return Ok(b);
    }
    let n = u.int_in_range(0..=64)?;
    Ok(u.bytes(n.min(u.len()))?.to_vec())
}

/// A promise string: names (any case), separators pledge.com accepts and some it does not.
pub fn promises(u: &mut Unstructured) -> Result<String> {
    let mut s = String::new();
    for _ in 0..u.int_in_range(0..=12)? {
        match u.int_in_range(0..=9)? {
            0..=5 => s.push_str(u.choose(&Promise::ALL)?.name()),
            6 => s.push_str(&u.choose(&Promise::ALL)?.name().to_uppercase()),
            7 => s.push_str(&piece(u)?),
            _ => {}
        }
        s.push_str(u.choose(&[" ", " ", "\t", "\r\n", "  ", ",", "\u{a0}", "\u{b}"])?);
    }
    if u.ratio(1, 25)? {
        s = s.repeat(u.int_in_range(2..=60)?);
    }
    Ok(s)
}

/// One unveil argument `[PERM:]PATH` as bytes (sometimes not UTF-8).
pub fn unveil(u: &mut Unstructured) -> Result<Vec<u8>> {
    let mut b = Vec::new();
    if u.ratio(3, 4)? {
        for _ in 0..u.int_in_range(0..=5)? {
            b.push(*u.choose(b"rwxcrwxqR:\xff")?);
        }
        b.push(b':');
    }
    b.extend(bytes(u)?);
    Ok(b)
}

const OPTIONS: &[&str] = &[
    "-p",
    "-v",
    "-V",
    "-k",
    "-q",
    "-n",
    "-N",
    "-D",
    "-u",
    "-g",
    "-c",
    "-C",
    "-M",
    "-F",
    "-P",
    "-O",
    "-T",
    "-h",
    "-z",
    "--",
    "-",
    "--unveil-best-effort",
    "--audit",
    "--explain",
    "--tcp-bind",
    "--tcp-connect",
    "--why",
    "--bogus",
    "-npk",
    "-np",
    "-pstdio",
    "-vrw:/tmp",
    "-u65534",
    "-M4g",
    "-Tunveil",
];

/// A pledge command line (without the program name): options, values and a command.
pub fn argv(u: &mut Unstructured) -> Result<Vec<OsString>> {
    let mut v = Vec::new();
    for _ in 0..u.int_in_range(0..=10)? {
        v.push(match u.int_in_range(0..=9)? {
            0..=3 => OsString::from(*u.choose(OPTIONS)?),
            4 => {
                // A cluster of option letters, maybe with an attached value.
                let mut s = String::from("-");
                for _ in 0..u.int_in_range(1..=4)? {
                    s.push(*u.choose(&['n', 'q', 'k', 'N', 'V', 'p', 'v', 'u', 'M', 'h', 'Z'])?);
                }
                if u.ratio(1, 2)? {
                    s.push_str(&piece(u)?);
                }
                OsString::from(s)
            }
            5 => OsString::from(promises(u)?),
            6 => OsString::from_vec(unveil(u)?),
            7 => OsString::from_vec(bytes(u)?),
            _ => OsString::from(string(u)?),
        });
    }
    Ok(v)
}
