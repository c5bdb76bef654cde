//! Decoder for the cty-msgpack values Nomad sends as `msgpack_config` / `msgpack_driver_config`
//! (protocol §4.3–4.5). Decodes into a generic [`Value`] first; typed configs then read fields by
//! name, ignoring unknown keys and treating missing keys as null. Never panics on bad input.

use std::collections::BTreeMap;

/// Nesting limit: deeper input is rejected instead of risking the stack.
const MAX_DEPTH: usize = 64;
/// Most values one config may hold. A decoded value takes about 32 bytes for one byte on the
/// wire, so without a cap a 64 MiB message of nils would cost 2 GiB; real configs hold a few
/// hundred values.
const MAX_VALUES: usize = 1 << 20;

/// A decoded cty value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// An unknown value (msgpack ext): Nomad never sends one for configs.
    Unknown,
    Bool(bool),
    Number(Number),
    String(String),
    /// Raw bytes (bin); cty never produces them except inside the dynamic wrapper.
    Bytes(Vec<u8>),
    /// list, set or tuple.
    Array(Vec<Value>),
    /// map or object.
    Map(BTreeMap<String, Value>),
}

/// A cty number as it may appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    UInt(u64),
    Float(f64),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MsgpackError {
    #[error("config bytes end early at offset {offset} (truncated msgpack)")]
    Truncated { offset: usize },
    #[error("unsupported msgpack type byte 0x{byte:02x} at offset {offset}")]
    BadType { byte: u8, offset: usize },
    #[error("invalid UTF-8 in a string at offset {offset}")]
    BadUtf8 { offset: usize },
    #[error("map key at offset {offset} is not a string")]
    BadKey { offset: usize },
    #[error("config nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("config holds more than {MAX_VALUES} values")]
    TooMany,
    #[error("{count} unexpected trailing bytes after the config value")]
    Trailing { count: usize },
}

/// Decodes one complete value; trailing bytes are an error.
pub fn decode(bytes: &[u8]) -> Result<Value, MsgpackError> {
    let mut r = Reader {
        bytes,
        pos: 0,
        values: 0,
    };
    let v = r.value(0)?;
    if r.pos != bytes.len() {
        return Err(MsgpackError::Trailing {
            count: bytes.len() - r.pos,
        });
    }
    Ok(v)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Values read so far (see [`MAX_VALUES`]).
    values: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MsgpackError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(MsgpackError::Truncated {
                offset: self.bytes.len(),
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, MsgpackError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], MsgpackError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len(&mut self, width: usize) -> Result<usize, MsgpackError> {
        Ok(match width {
            1 => usize::from(self.byte()?),
            2 => usize::from(u16::from_be_bytes(self.be()?)),
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    /// Every element needs at least one byte: reject counts the input cannot hold before
    /// allocating for them.
    fn check_count(&self, count: usize, per_item: usize) -> Result<(), MsgpackError> {
        if count.saturating_mul(per_item) > self.bytes.len() - self.pos {
            return Err(MsgpackError::Truncated {
                offset: self.bytes.len(),
            });
        }
        Ok(())
    }

    fn str(&mut self, len: usize) -> Result<String, MsgpackError> {
        let offset = self.pos;
        let b = self.take(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| MsgpackError::BadUtf8 { offset })
    }

    fn array(&mut self, count: usize, depth: usize) -> Result<Value, MsgpackError> {
        self.check_count(count, 1)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(self.value(depth + 1)?);
        }
        // The dynamic wrapper `[bin(type JSON), value]`: keep the value, drop the type.
        if count == 2 && matches!(items[0], Value::Bytes(_)) {
            return Ok(items.pop().unwrap_or(Value::Null));
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, count: usize, depth: usize) -> Result<Value, MsgpackError> {
        self.check_count(count, 2)?;
        let mut m = BTreeMap::new();
        for _ in 0..count {
            let offset = self.pos;
            let key = match self.value(depth + 1)? {
                Value::String(s) => s,
                Value::Bytes(b) => {
                    String::from_utf8(b).map_err(|_| MsgpackError::BadUtf8 { offset })?
                }
                _ => return Err(MsgpackError::BadKey { offset }),
            };
            let v = self.value(depth + 1)?;
            m.insert(key, v);
        }
        Ok(Value::Map(m))
    }

    fn ext(&mut self, data_len: usize) -> Result<Value, MsgpackError> {
        self.take(1 + data_len)?; // type byte + payload
        Ok(Value::Unknown)
    }

    fn value(&mut self, depth: usize) -> Result<Value, MsgpackError> {
        if depth > MAX_DEPTH {
            return Err(MsgpackError::TooDeep);
        }
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(MsgpackError::TooMany);
        }
        let offset = self.pos;
        let b = self.byte()?;
        Ok(match b {
            0x00..=0x7f => Value::Number(Number::Int(i64::from(b))),
            0x80..=0x8f => return self.map(usize::from(b & 0x0f), depth),
            0x90..=0x9f => return self.array(usize::from(b & 0x0f), depth),
            0xa0..=0xbf => Value::String(self.str(usize::from(b & 0x1f))?),
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4..=0xc6 => {
                let n = self.len(1 << (b - 0xc4))?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            0xc7..=0xc9 => {
                let n = self.len(1 << (b - 0xc7))?;
                return self.ext(n);
            }
            0xca => Value::Number(Number::Float(f64::from(f32::from_be_bytes(self.be()?)))),
            0xcb => Value::Number(Number::Float(f64::from_be_bytes(self.be()?))),
            0xcc => Value::Number(Number::Int(i64::from(self.byte()?))),
            0xcd => Value::Number(Number::Int(i64::from(u16::from_be_bytes(self.be()?)))),
            0xce => Value::Number(Number::Int(i64::from(u32::from_be_bytes(self.be()?)))),
            0xcf => {
                let v = u64::from_be_bytes(self.be()?);
                Value::Number(i64::try_from(v).map_or(Number::UInt(v), Number::Int))
            }
            0xd0 => Value::Number(Number::Int(i64::from(i8::from_be_bytes(self.be()?)))),
            0xd1 => Value::Number(Number::Int(i64::from(i16::from_be_bytes(self.be()?)))),
            0xd2 => Value::Number(Number::Int(i64::from(i32::from_be_bytes(self.be()?)))),
            0xd3 => Value::Number(Number::Int(i64::from_be_bytes(self.be()?))),
            0xd4..=0xd8 => return self.ext(1 << (b - 0xd4)),
            0xd9..=0xdb => {
                let n = self.len(1 << (b - 0xd9))?;
                Value::String(self.str(n)?)
            }
            0xdc | 0xdd => {
                let n = self.len(if b == 0xdc { 2 } else { 4 })?;
                return self.array(n, depth);
            }
            0xde | 0xdf => {
                let n = self.len(if b == 0xde { 2 } else { 4 })?;
                return self.map(n, depth);
            }
            0xe0..=0xff => Value::Number(Number::Int(i64::from(b as i8))),
            0xc1 => return Err(MsgpackError::BadType { byte: b, offset }),
        })
    }
}

impl Value {
    /// A short description of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unknown => "an unknown value",
            Value::Bool(_) => "a bool",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "a list",
            Value::Map(_) => "a map",
        }
    }
}

/// Why a field could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FieldError {
    #[error("`{field}` must be {expected}, got {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("`{field}` must be {expected}, got `{text}`")]
    BadNumber {
        field: String,
        expected: &'static str,
        text: String,
    },
    #[error("config must be a map of attributes, got {found}")]
    NotAMap { found: &'static str },
}

/// A decoded object (cty object or map) read field by field; unknown keys are ignored and
/// missing keys read as null.
#[derive(Debug, Default)]
pub struct Object(BTreeMap<String, Value>);

impl Object {
    /// Decodes `bytes`; empty input is an empty object.
    pub fn from_bytes(bytes: &[u8]) -> Result<Object, ConfigDecodeError> {
        if bytes.is_empty() {
            return Ok(Object::default());
        }
        match decode(bytes)? {
            Value::Map(m) => Ok(Object(m)),
            Value::Null => Ok(Object::default()),
            other => Err(FieldError::NotAMap {
                found: other.kind(),
            }
            .into()),
        }
    }

    fn get(&self, field: &str) -> Option<&Value> {
        match self.0.get(field) {
            None | Some(Value::Null) | Some(Value::Unknown) => None,
            Some(v) => Some(v),
        }
    }

    pub fn string(&self, field: &str) -> Result<Option<String>, FieldError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => as_string(field, v).map(Some),
        }
    }

    pub fn bool(&self, field: &str) -> Result<Option<bool>, FieldError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(v) => Err(FieldError::WrongType {
                field: field.into(),
                expected: "a bool (true or false)",
                found: v.kind(),
            }),
        }
    }

    /// A map of strings (an HCL `map(string)`), in key order.
    pub fn string_map(&self, field: &str) -> Result<Option<Vec<(String, String)>>, FieldError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Map(m)) => m
                .iter()
                .map(|(k, v)| Ok((k.clone(), as_string(&format!("{field}.{k}"), v)?)))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(FieldError::WrongType {
                field: field.into(),
                expected: "a map of strings, e.g. { nofile = \"1024:4096\" }",
                found: v.kind(),
            }),
        }
    }

    pub fn string_list(&self, field: &str) -> Result<Option<Vec<String>>, FieldError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| as_string(&format!("{field}[{i}]"), v))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(FieldError::WrongType {
                field: field.into(),
                expected: "a list of strings",
                found: v.kind(),
            }),
        }
    }

    /// A whole number (any int width, an integral float, or a decimal string).
    pub fn integer(&self, field: &str) -> Result<Option<i64>, FieldError> {
        let bad = |text: String| FieldError::BadNumber {
            field: field.into(),
            expected: "a whole number",
            text,
        };
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(Number::Int(i))) => Ok(Some(*i)),
            Some(Value::Number(Number::UInt(u))) => Err(bad(u.to_string())),
            Some(Value::Number(Number::Float(f))) => {
                if f.fract() == 0.0 && f.abs() < 9.2e18 {
                    Ok(Some(*f as i64))
                } else {
                    Err(bad(f.to_string()))
                }
            }
            Some(Value::String(s)) => parse_decimal_integer(s)
                .ok_or_else(|| bad(s.clone()))
                .map(Some),
            Some(v) => Err(FieldError::WrongType {
                field: field.into(),
                expected: "a number",
                found: v.kind(),
            }),
        }
    }

    #[allow(dead_code)] // for numeric knobs; exercised by the tests
    /// Any number (int, float or a decimal string such as `"1.1"`).
    pub fn float(&self, field: &str) -> Result<Option<f64>, FieldError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(Number::Int(i))) => Ok(Some(*i as f64)),
            Some(Value::Number(Number::UInt(u))) => Ok(Some(*u as f64)),
            Some(Value::Number(Number::Float(f))) => Ok(Some(*f)),
            Some(Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| FieldError::BadNumber {
                    field: field.into(),
                    expected: "a number",
                    text: s.clone(),
                }),
            Some(v) => Err(FieldError::WrongType {
                field: field.into(),
                expected: "a number",
                found: v.kind(),
            }),
        }
    }
}

#[allow(dead_code)]
/// `"42"`, `"-7"`, `"3.0"` → integers; `"1.5"` or out-of-range → None.
fn parse_decimal_integer(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Some(i);
    }
    let (int, frac) = s.split_once('.')?;
    if !frac.is_empty() && frac.bytes().all(|b| b == b'0') {
        return int.parse().ok();
    }
    None
}

fn as_string(field: &str, v: &Value) -> Result<String, FieldError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bytes(b) => String::from_utf8(b.clone()).map_err(|_| FieldError::WrongType {
            field: field.into(),
            expected: "a string",
            found: "non-UTF-8 bytes",
        }),
        // HCL converts numbers and bools to strings; accept them the same way.
        Value::Number(Number::Int(i)) => Ok(i.to_string()),
        Value::Number(Number::UInt(u)) => Ok(u.to_string()),
        Value::Number(Number::Float(f)) => Ok(f.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(FieldError::WrongType {
            field: field.into(),
            expected: "a string",
            found: other.kind(),
        }),
    }
}

/// Decoding a config blob failed, either in msgpack or in one field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigDecodeError {
    #[error("config is not valid cty msgpack")]
    Msgpack(#[from] MsgpackError),
    #[error(transparent)]
    Field(#[from] FieldError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn num(s: &str) -> Number {
        match decode(&hex(s)).unwrap() {
            Value::Number(n) => n,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn task_config_example_from_the_protocol_doc() {
        let b = hex("84 a4 61 72 67 73 91 a1 31 a7 63 6f 6d 6d 61 6e 64 a5 73 6c 65 65 70 a8 70 72 6f 6d 69 73 65 73 a5 73 74 64 69 6f a6 75 6e 76 65 69 6c 90");
        let o = Object::from_bytes(&b).unwrap();
        assert_eq!(o.string("command").unwrap().as_deref(), Some("sleep"));
        assert_eq!(o.string_list("args").unwrap(), Some(vec!["1".to_string()]));
        assert_eq!(o.string("promises").unwrap().as_deref(), Some("stdio"));
        assert_eq!(o.string_list("unveil").unwrap(), Some(vec![]));
        assert_eq!(o.string("importance").unwrap(), None);
    }

    #[test]
    fn null_importance_example() {
        let b = hex("85 a4 61 72 67 73 91 a1 31 a7 63 6f 6d 6d 61 6e 64 a5 73 6c 65 65 70 aa 69 6d 70 6f 72 74 61 6e 63 65 c0 a8 70 72 6f 6d 69 73 65 73 a5 73 74 64 69 6f a6 75 6e 76 65 69 6c 90");
        let v = decode(&b).unwrap();
        let Value::Map(m) = &v else { panic!() };
        assert_eq!(m.get("importance"), Some(&Value::Null));
        let o = Object::from_bytes(&b).unwrap();
        assert_eq!(o.string("importance").unwrap(), None);
    }

    #[test]
    fn every_integer_width() {
        assert_eq!(num("01"), Number::Int(1));
        assert_eq!(num("7f"), Number::Int(127));
        assert_eq!(num("cc ff"), Number::Int(255));
        assert_eq!(num("cd 01 2c"), Number::Int(300));
        assert_eq!(num("ce 00 01 00 00"), Number::Int(65536));
        assert_eq!(num("cf 00 00 00 01 00 00 00 00"), Number::Int(1 << 32));
        assert_eq!(num("cf ff ff ff ff ff ff ff ff"), Number::UInt(u64::MAX));
        assert_eq!(num("ff"), Number::Int(-1));
        assert_eq!(num("e0"), Number::Int(-32));
        assert_eq!(num("d0 80"), Number::Int(-128));
        assert_eq!(num("d1 ff 38"), Number::Int(-200));
        assert_eq!(num("d2 ff ff 00 00"), Number::Int(-65536));
        assert_eq!(num("d3 80 00 00 00 00 00 00 00"), Number::Int(i64::MIN));
        assert_eq!(num("cb 3f f8 00 00 00 00 00 00"), Number::Float(1.5));
        assert_eq!(num("ca 3f c0 00 00"), Number::Float(1.5));
        assert_eq!(
            num("cb 43 f0 00 00 00 00 00 00"),
            Number::Float(18446744073709551616.0)
        );
    }

    #[test]
    fn numbers_through_typed_fields() {
        // {"n": X}
        let obj = |x: &str| Object::from_bytes(&hex(&format!("81 a1 6e {x}"))).unwrap();
        assert_eq!(obj("cd 01 2c").integer("n").unwrap(), Some(300));
        assert_eq!(obj("d1 ff 38").integer("n").unwrap(), Some(-200));
        assert_eq!(
            obj("cb 40 00 00 00 00 00 00 00").integer("n").unwrap(),
            Some(2)
        );
        assert_eq!(
            obj("cb 3f f8 00 00 00 00 00 00").float("n").unwrap(),
            Some(1.5)
        );
        // 1.1 arrives as the decimal string "1.1".
        assert_eq!(obj("a3 31 2e 31").float("n").unwrap(), Some(1.1));
        assert_eq!(obj("a2 34 32").integer("n").unwrap(), Some(42));
        assert_eq!(obj("a3 34 2e 30").integer("n").unwrap(), Some(4));
        let e = obj("a3 31 2e 31").integer("n").unwrap_err();
        assert!(e.to_string().contains("`n` must be a whole number"), "{e}");
        let big = format!(
            "b4 {}",
            "18446744073709551616"
                .bytes()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert!(obj(&big).integer("n").is_err());
        assert_eq!(obj(&big).float("n").unwrap(), Some(18446744073709551616.0));
        assert_eq!(obj("c0").integer("n").unwrap(), None);
        let e = obj("c3").integer("n").unwrap_err();
        assert!(e.to_string().contains("got a bool"), "{e}");
    }

    #[test]
    fn scalars_and_collections() {
        assert_eq!(decode(&hex("c3")).unwrap(), Value::Bool(true));
        assert_eq!(decode(&hex("c0")).unwrap(), Value::Null);
        assert_eq!(decode(&hex("d4 00 00")).unwrap(), Value::Unknown);
        assert_eq!(decode(&hex("c7 02 0c 01 02")).unwrap(), Value::Unknown);
        let m = decode(&hex("82 a1 61 a1 31 a1 62 a1 32")).unwrap();
        let Value::Map(m) = m else { panic!() };
        assert_eq!(m["a"], Value::String("1".into()));
        assert_eq!(m["b"], Value::String("2".into()));
        assert_eq!(
            decode(&hex("92 a1 61 01")).unwrap(),
            Value::Array(vec![
                Value::String("a".into()),
                Value::Number(Number::Int(1))
            ])
        );
        assert_eq!(decode(&hex("80")).unwrap(), Value::Map(BTreeMap::new()));
        let v = decode(&hex("91 81 a1 6b a1 76")).unwrap();
        let Value::Array(items) = v else { panic!() };
        assert!(matches!(&items[0], Value::Map(m) if m["k"] == Value::String("v".into())));
        // str8 / str16 / bin
        assert_eq!(decode(&hex("d9 01 78")).unwrap(), Value::String("x".into()));
        assert_eq!(
            decode(&hex("da 00 01 78")).unwrap(),
            Value::String("x".into())
        );
        assert_eq!(
            decode(&hex("db 00 00 00 01 78")).unwrap(),
            Value::String("x".into())
        );
        assert_eq!(decode(&hex("c4 01 78")).unwrap(), Value::Bytes(vec![b'x']));
        // array16 / map16
        assert_eq!(
            decode(&hex("dc 00 01 c3")).unwrap(),
            Value::Array(vec![Value::Bool(true)])
        );
        assert!(matches!(
            decode(&hex("de 00 01 a1 61 c2")).unwrap(),
            Value::Map(_)
        ));
    }

    #[test]
    fn dynamic_wrapper_is_unwrapped() {
        assert_eq!(
            decode(&hex("92 c4 08 22 73 74 72 69 6e 67 22 a1 78")).unwrap(),
            Value::String("x".into())
        );
        assert_eq!(
            decode(&hex(
                "92 c4 11 5b 22 6c 69 73 74 22 2c 22 73 74 72 69 6e 67 22 5d 91 a1 61"
            ))
            .unwrap(),
            Value::Array(vec![Value::String("a".into())])
        );
        let o =
            Object::from_bytes(&hex("81 a1 61 92 c4 08 22 73 74 72 69 6e 67 22 a1 78")).unwrap();
        assert_eq!(o.string("a").unwrap().as_deref(), Some("x"));
    }

    #[test]
    fn unknown_keys_are_ignored_and_missing_are_null() {
        let o = Object::from_bytes(&hex("82 a5 65 78 74 72 61 c3 a1 61 a1 78")).unwrap();
        assert_eq!(o.string("a").unwrap().as_deref(), Some("x"));
        assert_eq!(o.string("zzz").unwrap(), None);
        assert_eq!(Object::from_bytes(&[]).unwrap().bool("x").unwrap(), None);
    }

    /// Found while fuzzing (memory, not a panic): every element costs a `Value` (≈ 32 bytes) for
    /// one byte of input, so a large list of nils made the plugin allocate 32× the message.
    #[test]
    fn value_count_is_capped() {
        let list = |n: usize| {
            let mut b = vec![0xdd];
            b.extend((n as u32).to_be_bytes());
            b.resize(5 + n, 0xc0);
            b
        };
        // The list itself is one value.
        assert!(decode(&list(MAX_VALUES - 1)).is_ok());
        // (matches!, not assert_eq!: a failure must not print a million nulls)
        assert!(matches!(
            decode(&list(MAX_VALUES)),
            Err(MsgpackError::TooMany)
        ));
        assert!(matches!(decode(&list(4 << 20)), Err(MsgpackError::TooMany)));
        // Maps count keys and values.
        let mut m = vec![0xdf];
        m.extend(((MAX_VALUES / 2) as u32).to_be_bytes());
        for i in 0..MAX_VALUES / 2 {
            m.extend([0xa1, b'a' + (i % 26) as u8, 0xc0]);
        }
        assert!(matches!(decode(&m), Err(MsgpackError::TooMany)));
        let e = Object::from_bytes(&list(MAX_VALUES)).unwrap_err();
        let e = crate::errors::error_chain(&e);
        assert!(e.contains("more than 1048576 values"), "{e}");
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        for bad in [
            "c1",
            "a3 31",
            "cd 01",
            "cb 00",
            "92 01",
            "81 a1 61",
            "dc 00",
            "dd ff ff ff ff",
            "df ff ff ff ff",
            "db ff ff ff ff",
            "c4 05 00",
            "d4 00",
            "c9 ff ff ff ff 00",
            "81 01 02",
            "a2 ff fe",
            "01 02",
        ] {
            assert!(decode(&hex(bad)).is_err(), "{bad} must fail");
        }
        let deep = vec![0x91u8; 10_000];
        assert_eq!(decode(&deep), Err(MsgpackError::TooDeep));
        // Not a map at the top.
        let e = Object::from_bytes(&hex("91 01")).unwrap_err();
        assert!(e.to_string().contains("must be a map"), "{e}");
        // Every prefix of a valid document and every single-byte input: no panic.
        let good = hex("85 a4 61 72 67 73 91 a1 31 a7 63 6f 6d 6d 61 6e 64 a5 73 6c 65 65 70 aa 69 6d 70 6f 72 74 61 6e 63 65 c0 a8 70 72 6f 6d 69 73 65 73 a5 73 74 64 69 6f a6 75 6e 76 65 69 6c 90");
        for n in 0..good.len() {
            assert!(decode(&good[..n]).is_err());
        }
        for b in 0..=255u8 {
            let _ = decode(&[b]);
            let _ = decode(&[b, 0xff, 0xff, 0xff, 0xff, 0xff]);
        }
    }
}
