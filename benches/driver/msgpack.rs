//! A tiny cty-msgpack encoder for the two configs the benchmark sends (plugin config and task
//! config): objects with string, bool, null and list-of-string attributes, keys sorted the way
//! go-cty writes them (nomad-plugin-protocol.md §4.3).

/// One attribute value.
pub enum Value {
    Str(String),
    Bool(bool),
    Nil,
    List(Vec<String>),
}

/// Encodes an object: a map with every attribute, keys in byte order.
pub fn object(fields: Vec<(&str, Value)>) -> Vec<u8> {
    let mut fields = fields;
    fields.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = Vec::new();
    header(&mut out, fields.len(), 0x80, 0xde);
    for (key, value) in &fields {
        string(&mut out, key);
        match value {
            Value::Str(s) => string(&mut out, s),
            Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
            Value::Nil => out.push(0xc0),
            Value::List(items) => {
                header(&mut out, items.len(), 0x90, 0xdc);
                for item in items {
                    string(&mut out, item);
                }
            }
        }
    }
    out
}

/// Map or array header: fix form below 16 entries, else the 16-bit form (32-bit never needed).
fn header(out: &mut Vec<u8>, len: usize, fix: u8, b16: u8) {
    if len < 16 {
        out.push(fix | len as u8);
    } else {
        let len = u16::try_from(len).expect("fewer than 65536 entries");
        out.push(b16);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// A string in its smallest form (fixstr, str8, str16, str32).
fn string(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len < 256 {
        out.push(0xd9);
        out.push(len as u8);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

/// Checks the encoder against the reference vector of nomad-plugin-protocol.md §4.4 (run by
/// `cargo test`, which executes this bench binary without `--bench`).
pub fn self_check() -> Result<(), String> {
    let got = object(vec![
        ("unveil", Value::List(vec![])),
        ("command", Value::Str("sleep".into())),
        ("importance", Value::Nil),
        ("promises", Value::Str("stdio".into())),
        ("args", Value::List(vec!["1".into()])),
    ]);
    // The second vector of §4.4, spaces as printed there.
    let want = "85 a4 61 72 67 73 91 a1 31 a7 63 6f 6d 6d 61 6e 64 a5 73 6c 65 65 70 aa 69 6d 70 6f \
                72 74 61 6e 63 65 c0 a8 70 72 6f 6d 69 73 65 73 a5 73 74 64 69 6f a6 75 6e 76 65 69 \
                6c 90"
        .replace(' ', "");
    let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
    if hex != want {
        return Err(format!("msgpack encoder: got {hex}, want {want}"));
    }
    let long = "x".repeat(40);
    let got = object(vec![
        ("k", Value::Str(long.clone())),
        ("b", Value::Bool(true)),
    ]);
    let mut want = vec![0x82, 0xa1, b'b', 0xc3, 0xa1, b'k', 0xd9, 40];
    want.extend_from_slice(long.as_bytes());
    if got != want {
        return Err(format!("msgpack encoder: str8/bool case gave {got:02x?}"));
    }
    Ok(())
}
