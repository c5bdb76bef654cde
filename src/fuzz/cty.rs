//! Inputs for the cty-msgpack decoder: a value tree, an encoder that picks a random (valid)
//! width for every length and number, the value the decoder must return for it, and mutations
//! that break the encoding (truncation, flipped bytes, huge length prefixes, spliced garbage,
//! deep nesting).

use std::collections::BTreeMap;

use arbitrary::{Result, Unstructured};

use super::text;
use crate::driver::msgpack::{Number, Value};

/// One msgpack item as we generate it (richer than [`Value`]: it keeps the wire form).
#[derive(Debug, Clone)]
pub enum Item {
    Nil,
    Bool(bool),
    Int(i64),
    UInt(u64),
    F32(f32),
    F64(f64),
    Str(String),
    Bin(Vec<u8>),
    Ext(i8, Vec<u8>),
    Array(Vec<Item>),
    Map(Vec<(Item, Item)>),
}

/// The decoder's nesting limit (`msgpack::MAX_DEPTH`), crossed on purpose now and then.
pub const DECODER_MAX_DEPTH: usize = 64;

/// A random item, at most `depth` levels of containers deep.
pub fn item(u: &mut Unstructured, depth: usize) -> Result<Item> {
    let kinds = if depth == 0 { 9 } else { 12 };
    Ok(match u.int_in_range(0..=kinds)? {
        0 => Item::Nil,
        1 => Item::Bool(u.arbitrary()?),
        2 => Item::Int(interesting_int(u)?),
        3 => Item::UInt(u.arbitrary()?),
        4 => Item::F32(finite(u.arbitrary::<f32>()? as f64) as f32),
        5 => Item::F64(finite(u.arbitrary()?)),
        6 | 7 => Item::Str(text::string(u)?),
        8 => Item::Bin(text::bytes(u)?),
        9 => Item::Ext(u.arbitrary()?, text::bytes(u)?),
        10 => {
            let n = u.int_in_range(0..=6)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(item(u, depth - 1)?);
            }
            // Sometimes the dynamic wrapper `[bin(type JSON), value]`.
            if n == 2 && u.ratio(1, 2)? {
                v[0] = Item::Bin(b"\"string\"".to_vec());
            }
            Item::Array(v)
        }
        _ => {
            let n = u.int_in_range(0..=6)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push((key(u)?, item(u, depth - 1)?));
            }
            Item::Map(v)
        }
    })
}

/// NaN never equals itself; the round-trip check compares values, so use finite numbers there.
fn finite(f: f64) -> f64 {
    if f.is_nan() {
        0.5
    } else {
        f
    }
}

/// Small numbers, the edges of every integer width, or anything.
pub fn interesting_int(u: &mut Unstructured) -> Result<i64> {
    Ok(match u.int_in_range(0..=3)? {
        0 => u.int_in_range(-40..=140)?,
        1 => *u.choose(&[
            i64::MIN,
            i64::MAX,
            i64::from(i32::MIN),
            i64::from(u32::MAX),
            i64::from(u16::MAX) + 1,
            -129,
            -33,
            255,
            256,
        ])?,
        _ => u.arbitrary()?,
    })
}

/// A map key: mostly strings (the task/plugin config names included), sometimes valid-UTF-8 bin.
pub fn key(u: &mut Unstructured) -> Result<Item> {
    let s = if u.ratio(1, 2)? {
        u.choose(text::CONFIG_KEYS)?.to_string()
    } else {
        text::string(u)?
    };
    Ok(if u.ratio(1, 8)? {
        Item::Bin(s.into_bytes())
    } else {
        Item::Str(s)
    })
}

/// How deep the decoder recurses for `it` at depth `d` (keys are read one level down).
pub fn depth(it: &Item, d: usize) -> usize {
    match it {
        Item::Array(v) => v.iter().map(|x| depth(x, d + 1)).fold(d, usize::max),
        Item::Map(v) => v
            .iter()
            .map(|(k, x)| depth(k, d + 1).max(depth(x, d + 1)))
            .fold(d, usize::max),
        _ => d,
    }
}

/// The value the decoder must produce for `it` (within the depth limit).
pub fn expected(it: &Item) -> Value {
    match it {
        Item::Nil => Value::Null,
        Item::Bool(b) => Value::Bool(*b),
        Item::Int(i) => Value::Number(Number::Int(*i)),
        Item::UInt(v) => Value::Number(i64::try_from(*v).map_or(Number::UInt(*v), Number::Int)),
        Item::F32(f) => Value::Number(Number::Float(f64::from(*f))),
        Item::F64(f) => Value::Number(Number::Float(*f)),
        Item::Str(s) => Value::String(s.clone()),
        Item::Bin(b) => Value::Bytes(b.clone()),
        Item::Ext(..) => Value::Unknown,
        Item::Array(v) => {
            let mut items: Vec<Value> = v.iter().map(expected).collect();
            // The decoder looks at the decoded first element (a nested wrapper may yield bytes).
            if items.len() == 2 && matches!(items[0], Value::Bytes(_)) {
                return items.pop().unwrap_or(Value::Null);
            }
            Value::Array(items)
        }
        Item::Map(v) => {
            let mut m = BTreeMap::new();
            for (k, x) in v {
                let k = match k {
                    Item::Str(s) => s.clone(),
                    Item::Bin(b) => String::from_utf8(b.clone()).expect("keys are UTF-8"),
                    other => unreachable!("generated keys are strings, got {other:?}"),
                };
                m.insert(k, expected(x));
            }
            Value::Map(m)
        }
    }
}

/// Appends a length-prefixed header: the smallest form that fits, or (randomly) a wider one.
fn header(
    u: &mut Unstructured,
    out: &mut Vec<u8>,
    len: usize,
    fix: Option<(u8, usize)>,
    wide: [u8; 3],
) -> Result<()> {
    let mut forms: Vec<u8> = Vec::new();
    if let Some((_, max)) = fix {
        if len <= max {
            forms.push(0);
        }
    }
    for (i, &code) in wide.iter().enumerate() {
        let max = [u8::MAX as usize, u16::MAX as usize, u32::MAX as usize][i];
        if code != 0 && len <= max {
            forms.push(i as u8 + 1);
        }
    }
    let form = if u.ratio(3, 4)? {
        forms[0]
    } else {
        *u.choose(&forms)?
    };
    match form {
        0 => out.push(fix.map_or(0, |(base, _)| base) | len as u8),
        1 => out.extend([wide[0], len as u8]),
        2 => {
            out.push(wide[1]);
            out.extend((len as u16).to_be_bytes());
        }
        _ => {
            out.push(wide[2]);
            out.extend((len as u32).to_be_bytes());
        }
    }
    Ok(())
}

/// Encodes `it`, choosing among the valid widths at random.
pub fn encode(u: &mut Unstructured, it: &Item, out: &mut Vec<u8>) -> Result<()> {
    match it {
        Item::Nil => out.push(0xc0),
        Item::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Item::Int(i) => encode_int(u, *i, out)?,
        Item::UInt(v) => match i64::try_from(*v) {
            Ok(i) if u.ratio(1, 2)? => encode_int(u, i, out)?,
            _ => {
                out.push(0xcf);
                out.extend(v.to_be_bytes());
            }
        },
        Item::F32(f) => {
            out.push(0xca);
            out.extend(f.to_be_bytes());
        }
        Item::F64(f) => {
            out.push(0xcb);
            out.extend(f.to_be_bytes());
        }
        Item::Str(s) => {
            header(u, out, s.len(), Some((0xa0, 31)), [0xd9, 0xda, 0xdb])?;
            out.extend(s.as_bytes());
        }
        Item::Bin(b) => {
            header(u, out, b.len(), None, [0xc4, 0xc5, 0xc6])?;
            out.extend(b);
        }
        Item::Ext(t, data) => {
            let fixed = [1usize, 2, 4, 8, 16].iter().position(|&n| n == data.len());
            match fixed {
                Some(i) if u.ratio(1, 2)? => out.push(0xd4 + i as u8),
                _ => header(u, out, data.len(), None, [0xc7, 0xc8, 0xc9])?,
            }
            out.push(*t as u8);
            out.extend(data);
        }
        Item::Array(v) => {
            header(u, out, v.len(), Some((0x90, 15)), [0, 0xdc, 0xdd])?;
            for x in v {
                encode(u, x, out)?;
            }
        }
        Item::Map(v) => {
            header(u, out, v.len(), Some((0x80, 15)), [0, 0xde, 0xdf])?;
            for (k, x) in v {
                encode(u, k, out)?;
                encode(u, x, out)?;
            }
        }
    }
    Ok(())
}

/// Every msgpack integer form that holds `i`; one of them at random.
fn encode_int(u: &mut Unstructured, i: i64, out: &mut Vec<u8>) -> Result<()> {
    let mut forms: Vec<u8> = Vec::new();
    if (0..=127).contains(&i) {
        forms.push(0x00);
    }
    if (-32..0).contains(&i) {
        forms.push(0xe0);
    }
    let fits = |lo: i64, hi: i64| (lo..=hi).contains(&i);
    for (code, ok) in [
        (0xcc, fits(0, u8::MAX.into())),
        (0xcd, fits(0, u16::MAX.into())),
        (0xce, fits(0, u32::MAX.into())),
        (0xcf, i >= 0),
        (0xd0, fits(i8::MIN.into(), i8::MAX.into())),
        (0xd1, fits(i16::MIN.into(), i16::MAX.into())),
        (0xd2, fits(i32::MIN.into(), i32::MAX.into())),
        (0xd3, true),
    ] {
        if ok {
            forms.push(code);
        }
    }
    match *u.choose(&forms)? {
        0x00 | 0xe0 => out.push(i as u8),
        0xcc => out.extend([0xcc, i as u8]),
        0xcd => {
            out.push(0xcd);
            out.extend((i as u16).to_be_bytes());
        }
        0xce => {
            out.push(0xce);
            out.extend((i as u32).to_be_bytes());
        }
        0xcf => {
            out.push(0xcf);
            out.extend((i as u64).to_be_bytes());
        }
        0xd0 => out.extend([0xd0, i as u8]),
        0xd1 => {
            out.push(0xd1);
            out.extend((i as i16).to_be_bytes());
        }
        0xd2 => {
            out.push(0xd2);
            out.extend((i as i32).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend(i.to_be_bytes());
        }
    }
    Ok(())
}

/// `n` one-element arrays or maps around a scalar: nesting right at and past the limit.
pub fn deep(u: &mut Unstructured, out: &mut Vec<u8>) -> Result<usize> {
    let n = u.int_in_range(DECODER_MAX_DEPTH - 2..=DECODER_MAX_DEPTH + 200)?;
    for _ in 0..n {
        if u.ratio(1, 2)? {
            out.push(0x91);
        } else {
            out.extend([0x81, 0xa1, b'k']);
        }
    }
    out.push(0xc0);
    Ok(n)
}

/// Damages an encoding in one of several ways.
pub fn mutate(u: &mut Unstructured, bytes: &mut Vec<u8>) -> Result<()> {
    let pos = |u: &mut Unstructured, len: usize| u.int_in_range(0..=len);
    for _ in 0..u.int_in_range(1..=4)? {
        let len = bytes.len();
        match u.int_in_range(0..=6)? {
            0 => {
                let at = pos(u, len)?;
                bytes.truncate(at);
            }
            1 if len > 0 => {
                let at = u.int_in_range(0..=len - 1)?;
                bytes[at] ^= 1 << u.int_in_range(0..=7)?;
            }
            2 if len > 0 => {
                let at = u.int_in_range(0..=len - 1)?;
                bytes[at] = u.arbitrary()?;
            }
            3 => {
                // A length prefix claiming far more than the input holds.
                let at = pos(u, len)?;
                let code = *u.choose(&[0xdb, 0xc6, 0xc9, 0xdd, 0xdf, 0xdc, 0xde, 0xda, 0xc5])?;
                let mut ins = vec![code];
                let wide = matches!(code, 0xdb | 0xc6 | 0xc9 | 0xdd | 0xdf);
                let n: u32 = *u.choose(&[u32::MAX, 0x7fff_ffff, 0x10_0000, 0xffff, 0x8000])?;
                if wide {
                    ins.extend(n.to_be_bytes());
                } else {
                    ins.extend((n as u16).to_be_bytes());
                }
                bytes.splice(at..at, ins);
            }
            4 => {
                let at = pos(u, len)?;
                let junk = text::bytes(u)?;
                bytes.splice(at..at, junk);
            }
            5 if len > 0 => {
                let a = u.int_in_range(0..=len - 1)?;
                let b = u.int_in_range(a..=len)?;
                bytes.drain(a..b);
            }
            _ => bytes.push(u.arbitrary()?),
        }
    }
    Ok(())
}
