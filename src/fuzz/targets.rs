//! One test per parser of untrusted bytes. Each runs [`runner::run`] (`FUZZ_CASES` inputs; a
//! smoke run by default) and checks properties beyond "no panic": valid encodings decode to the
//! value they encode, accepted configs re-encode to the same config, parsers that overlap agree.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use arbitrary::Unstructured;

use super::cty::{self, Item, DECODER_MAX_DEPTH};
use super::runner::{run, Outcome};
use super::text;
use crate::driver::config::{Launcher, PluginConfig};
use crate::driver::msgpack::{decode, MsgpackError, Object, Value};
use crate::driver::task_config::{Importance, TaskDriverConfig};
use crate::sandbox::cli::{self, Parsed};
use crate::sandbox::promise::{Promise, PromiseError, PromiseSet, MAX_PROMISES_LEN};
use crate::sandbox::unveil::UnveilRule;

fn outcome<T, E>(r: &Result<T, E>) -> Outcome {
    if r.is_ok() {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}

/// Reads every field of a decoded object through each typed getter (none may panic).
fn read_all_fields(bytes: &[u8]) {
    let Ok(obj) = Object::from_bytes(bytes) else {
        return;
    };
    for k in text::CONFIG_KEYS.iter().chain(&["k", ""]) {
        let _ = obj.string(k).map_err(|e| e.to_string());
        let _ = obj.bool(k).map_err(|e| e.to_string());
        let _ = obj.string_list(k).map_err(|e| e.to_string());
        let _ = obj.integer(k).map_err(|e| e.to_string());
        let _ = obj.float(k).map_err(|e| e.to_string());
    }
}

#[test]
fn msgpack_decode() {
    run("msgpack_decode", |u| {
        let mut bytes = Vec::new();
        let result = match u.int_in_range(0..=5)? {
            // Raw bytes.
            0 => {
                let n = u.len();
                bytes.extend(u.bytes(n)?);
                decode(&bytes)
            }
            // A valid encoding decodes to exactly its value; any strict prefix is an error;
            // trailing bytes are an error.
            1 | 2 => {
                let it = cty::item(u, 5)?;
                cty::encode(u, &it, &mut bytes)?;
                let got = decode(&bytes);
                if cty::depth(&it, 0) > DECODER_MAX_DEPTH {
                    assert_eq!(got, Err(MsgpackError::TooDeep), "{it:?}");
                } else {
                    assert_eq!(
                        got.as_ref(),
                        Ok(&cty::expected(&it)),
                        "{it:?} as {bytes:02x?}"
                    );
                    let cut = u.int_in_range(0..=bytes.len() - 1)?;
                    assert!(
                        decode(&bytes[..cut]).is_err(),
                        "prefix {cut} of {bytes:02x?}"
                    );
                    let mut longer = bytes.clone();
                    longer.push(u.arbitrary()?);
                    assert_eq!(
                        decode(&longer),
                        Err(MsgpackError::Trailing { count: 1 }),
                        "{longer:02x?}"
                    );
                }
                got
            }
            // A valid encoding, damaged.
            3 | 4 => {
                let it = cty::item(u, 5)?;
                cty::encode(u, &it, &mut bytes)?;
                cty::mutate(u, &mut bytes)?;
                decode(&bytes)
            }
            // Deep nesting, at and past the limit.
            _ => {
                let n = cty::deep(u, &mut bytes)?;
                let got = decode(&bytes);
                assert_eq!(got.is_ok(), n <= DECODER_MAX_DEPTH, "{n} levels: {got:?}");
                got
            }
        };
        if let Err(e) = &result {
            let _ = e.to_string();
        }
        read_all_fields(&bytes);
        Ok(outcome(&result))
    });
}

/// A cty object with some of `keys`, each either of the right shape (`good`) or any item,
/// plus unknown keys; encoded, and sometimes damaged.
fn config_object(
    u: &mut Unstructured,
    keys: &[&str],
    good: impl Fn(&mut Unstructured, &str) -> arbitrary::Result<Item>,
) -> arbitrary::Result<Vec<u8>> {
    let mut fields = Vec::new();
    for k in keys {
        if u.ratio(3, 4)? {
            let v = if u.ratio(9, 10)? {
                good(u, k)?
            } else {
                cty::item(u, 3)?
            };
            fields.push((Item::Str(k.to_string()), v));
        }
    }
    for _ in 0..u.int_in_range(0..=2)? {
        fields.push((cty::key(u)?, cty::item(u, 2)?));
    }
    let mut bytes = Vec::new();
    let top = if u.ratio(1, 30)? {
        cty::item(u, 2)?
    } else {
        Item::Map(fields)
    };
    cty::encode(u, &top, &mut bytes)?;
    if u.ratio(1, 10)? {
        cty::mutate(u, &mut bytes)?;
    }
    Ok(bytes)
}

fn str_list(
    u: &mut Unstructured,
    each: fn(&mut Unstructured<'_>) -> arbitrary::Result<String>,
) -> arbitrary::Result<Item> {
    let mut v = Vec::new();
    for _ in 0..u.int_in_range(0..=5)? {
        v.push(Item::Str(each(u)?));
    }
    Ok(Item::Array(v))
}

fn unveil_str(u: &mut Unstructured) -> arbitrary::Result<String> {
    Ok(String::from_utf8_lossy(&text::unveil(u)?).into_owned())
}

fn plausible_unveil(u: &mut Unstructured) -> arbitrary::Result<String> {
    let perms = *u.choose(&["", "r:", "rw:", "rwxc:", "x:", "c:", "wr:"])?;
    let path = *u.choose(&["/etc", "local/out", "/a:b", "/tmp/x y", "é/", "/"])?;
    Ok(format!("{perms}{path}"))
}

fn plausible_promises(u: &mut Unstructured) -> arbitrary::Result<String> {
    let mut names = Vec::new();
    for _ in 0..u.int_in_range(0..=6)? {
        names.push(u.choose(&Promise::ALL)?.name());
    }
    Ok(names.join(*u.choose(&[" ", "  ", "\t", "\n"])?))
}

fn importance_name(i: Importance) -> &'static str {
    match i {
        Importance::Lowest => "lowest",
        Importance::Low => "low",
        Importance::Normal => "normal",
        Importance::High => "high",
        Importance::Highest => "highest",
    }
}

/// The config as a Nomad client would send it, from the typed value.
fn encode_task_config(u: &mut Unstructured, c: &TaskDriverConfig) -> arbitrary::Result<Vec<u8>> {
    let s = |v: &str| Item::Str(v.to_string());
    let opt = |v: &Option<String>| v.as_deref().map_or(Item::Nil, s);
    let it = Item::Map(vec![
        (s("command"), s(&c.command)),
        (
            s("args"),
            Item::Array(c.args.iter().map(|a| s(a)).collect()),
        ),
        (
            s("promises"),
            c.promises.as_ref().map_or(Item::Nil, |p| s(&p.to_string())),
        ),
        (
            s("unveil"),
            Item::Array(c.unveil.iter().map(|r| s(&r.to_string())).collect()),
        ),
        (s("importance"), s(importance_name(c.importance))),
        (s("work_dir"), opt(&c.work_dir)),
    ]);
    let mut bytes = Vec::new();
    cty::encode(u, &it, &mut bytes)?;
    Ok(bytes)
}

#[test]
fn task_config() {
    const KEYS: &[&str] = &[
        "command",
        "args",
        "promises",
        "unveil",
        "importance",
        "work_dir",
    ];
    run("task_config", |u| {
        let bytes = config_object(u, KEYS, |u, k| {
            // Mostly plausible values (so that many configs are accepted and round-tripped),
            // otherwise anything of the right shape.
            let plausible = u.ratio(3, 4)?;
            Ok(match (k, plausible) {
                ("args", _) => str_list(u, text::string)?,
                ("unveil", true) => str_list(u, plausible_unveil)?,
                ("unveil", false) => str_list(u, unveil_str)?,
                ("promises", true) => Item::Str(plausible_promises(u)?),
                ("promises", false) => Item::Str(text::promises(u)?),
                ("command", true) => Item::Str(u.choose(&["/bin/sh", "cat", " x "])?.to_string()),
                ("importance", true) => Item::Str(
                    u.choose(&["lowest", "low", "", "normal", " high", "highest"])?
                        .to_string(),
                ),
                _ => Item::Str(text::string(u)?),
            })
        })?;
        let result = TaskDriverConfig::from_msgpack(&bytes);
        match &result {
            Ok(c) => {
                assert!(!c.command.trim().is_empty(), "{c:?}");
                let nul = |s: &str| s.contains('\0');
                assert!(!nul(&c.command) && !c.args.iter().any(|a| nul(a)), "{c:?}");
                assert!(c
                    .work_dir
                    .as_deref()
                    .is_none_or(|w| !nul(w) && !w.contains("${")));
                for r in &c.unveil {
                    let path = r.path.to_string_lossy();
                    assert!(!path.is_empty() && !nul(&path) && !path.contains("${"));
                    assert!(!r.perms.to_string().is_empty(), "{r:?}");
                }
                if let Some(p) = &c.promises {
                    assert_eq!(PromiseSet::parse(&p.to_string()).as_ref(), Ok(p));
                }
                let again = encode_task_config(u, c)?;
                assert_eq!(TaskDriverConfig::from_msgpack(&again).as_ref(), Ok(c));
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        Ok(outcome(&result))
    });
}

#[test]
fn plugin_config() {
    const KEYS: &[&str] = &[
        "pledge_executable",
        "allow_root",
        "default_user",
        "unveil_best_effort",
        "state_dir",
        "cgroup_root",
        "log_level",
    ];
    run("plugin_config", |u| {
        let bytes = config_object(u, KEYS, |u, k| {
            Ok(match k {
                "allow_root" | "unveil_best_effort" => match u.int_in_range(0..=2)? {
                    0 => Item::Bool(u.arbitrary()?),
                    1 => Item::Str(u.choose(&["true", "false", "yes"])?.to_string()),
                    _ => Item::Str(text::string(u)?),
                },
                "pledge_executable" => Item::Str(
                    u.choose(&["", "/bin/sh", "/etc", "/etc/hostname", "sh", "/nonexistent"])?
                        .to_string(),
                ),
                _ => Item::Str(text::string(u)?),
            })
        })?;
        let result = PluginConfig::from_msgpack(&bytes);
        match &result {
            Ok(c) => {
                assert!(c.state_dir.is_absolute(), "{c:?}");
                assert!(c.cgroup_root.as_ref().is_none_or(|p| p.is_absolute()));
                if let Launcher::External(p) = &c.launcher {
                    assert!(p.is_absolute() && p.is_file(), "{p:?}");
                }
                let user_ok = |b: u8| b.is_ascii_alphanumeric() || b"._-$".contains(&b);
                assert!(c.default_user.bytes().all(user_ok), "{:?}", c.default_user);
                assert!(!c.default_user.starts_with('-'));
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        Ok(outcome(&result))
    });
}

/// `strtol`'s reference: decimal, `0x` hex or leading-`0` octal, with a sign.
fn int_forms(n: i64) -> Vec<String> {
    let (sign, m) = if n < 0 {
        ("-", n.unsigned_abs())
    } else {
        ("", n as u64)
    };
    vec![
        format!("{n}"),
        format!("{sign}{m:#x}"),
        format!("{sign}0{m:o}"),
        format!(" {sign}{m}"),
    ]
}

#[test]
fn pledge_cli() {
    run("pledge_cli", |u| {
        let args = text::argv(u)?;
        let parsed = cli::parse("pledge", &args);
        // Numbers: every strtol form of a number parses back to it; sizes multiply exactly.
        let n = cty::interesting_int(u)?;
        for form in int_forms(n) {
            assert_eq!(cli::parse_int("p", &form), Ok(n), "{form:?}");
        }
        let (m, unit): (u64, u32) = (u.arbitrary::<u32>()?.into(), u.int_in_range(0..=6)?);
        let letter = ["", "k", "M", "g", "T", "p", "E"][unit as usize];
        let want = m.checked_mul(1024u64.pow(unit));
        assert_eq!(cli::parse_size("p", &format!("{m}{letter}")).ok(), want);
        Ok(match parsed {
            Parsed::Run(o) => {
                assert!(args.ends_with(&o.command), "{args:?} → {o:?}");
                assert!(o
                    .promises
                    .as_ref()
                    .is_none_or(|p| p.len() <= MAX_PROMISES_LEN));
                for v in &o.unveils {
                    let b = v.as_bytes();
                    assert!(args.iter().any(|a| a.as_bytes().ends_with(b)), "{v:?}");
                }
                Outcome::Accepted
            }
            Parsed::Help | Parsed::Fail(..) => Outcome::Rejected,
        })
    });
}

#[test]
fn unveil_rule() {
    run("unveil_rule", |u| {
        let arg = text::unveil(u)?;
        let result = UnveilRule::parse_os(OsStr::from_bytes(&arg));
        match &result {
            Ok(r) => {
                assert!(!r.perms.is_empty(), "{r:?}");
                let path = r.path.as_os_str().as_bytes();
                let after = arg
                    .iter()
                    .position(|&b| b == b':')
                    .map_or(&arg[..], |i| &arg[i + 1..]);
                assert!(!path.is_empty() && path == after, "{arg:02x?} → {r:?}");
                if let Ok(s) = std::str::from_utf8(&arg) {
                    let back: UnveilRule = r.to_string().parse().expect("Display parses back");
                    assert_eq!(&back, r, "{s:?}");
                }
            }
            Err(e) => {
                let _ = (e.to_string(), e.exit_status());
            }
        }
        Ok(outcome(&result))
    });
}

#[test]
fn promise_parser() {
    run("promise_parser", |u| {
        let s = text::promises(u)?;
        let result = PromiseSet::parse(&s);
        // The rule (pledge-semantics.md §2): at most 255 bytes; tokens split at space, tab,
        // CR, LF; each a promise name in any ASCII case.
        let model = if s.len() > MAX_PROMISES_LEN {
            Err(PromiseError::TooLong { len: s.len() })
        } else {
            s.split([' ', '\t', '\r', '\n'])
                .filter(|t| !t.is_empty())
                .map(|t| {
                    Promise::ALL
                        .into_iter()
                        .find(|p| p.name().eq_ignore_ascii_case(t))
                        .ok_or(PromiseError::Unknown {
                            name: t.to_string(),
                        })
                })
                .collect::<Result<PromiseSet, _>>()
        };
        assert_eq!(result, model, "{s:?}");
        if let Ok(set) = &result {
            assert_eq!(PromiseSet::parse(&set.to_string()).as_ref(), Ok(set));
        }
        Ok(outcome(&result))
    });
}

#[test]
fn value_getters_never_panic_on_odd_numbers() {
    // A few fixed extremes the getters convert (floats near i64 range, NaN, huge strings).
    for f in [f64::NAN, f64::INFINITY, -0.0, 9.2e18, -9.3e18, 1e300, 0.5] {
        let mut b = vec![0x81, 0xa1, b'n', 0xcb];
        b.extend(f.to_be_bytes());
        let o = Object::from_bytes(&b).unwrap();
        let _ = (o.integer("n"), o.float("n"), o.string("n"));
    }
    assert!(matches!(decode(&[0x90]), Ok(Value::Array(v)) if v.is_empty()));
}
