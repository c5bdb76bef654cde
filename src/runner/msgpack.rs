//! Encodes evaluated job-file values as cty-msgpack, the way a Nomad client marshals a task's
//! `config {}` block (nomad-plugin-protocol.md §4.3): compact integers, float64 for other numbers,
//! maps with sorted keys. (`spec::decode` has already put every schema attribute in the object,
//! null when the job leaves it out.)

use hcl::Value;

/// Encodes `value`.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(0xc0),
        Value::Bool(false) => out.push(0xc2),
        Value::Bool(true) => out.push(0xc3),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                write_int(out, i);
            } else if let Some(u) = n.as_u64() {
                out.push(0xcf);
                out.extend_from_slice(&u.to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_be_bytes());
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            write_len(out, items.len(), 0x90, 0xdc, 0xdd);
            for item in items {
                write_value(out, item);
            }
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            write_map_len(out, entries.len());
            for (k, v) in entries {
                write_str(out, k);
                write_value(out, v);
            }
        }
    }
}

fn write_int(out: &mut Vec<u8>, i: i64) {
    match i {
        0..=0x7f => out.push(i as u8),
        -32..=-1 => out.push(i as i8 as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, i as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(i as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(i as u32).to_be_bytes());
        }
        -128..=-33 => out.extend_from_slice(&[0xd0, i as i8 as u8]),
        -32768..=-129 => {
            out.push(0xd1);
            out.extend_from_slice(&(i as i16).to_be_bytes());
        }
        -2_147_483_648..=-32769 => {
            out.push(0xd2);
            out.extend_from_slice(&(i as i32).to_be_bytes());
        }
        _ if i > 0 => {
            out.push(0xcf);
            out.extend_from_slice(&(i as u64).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend_from_slice(&i.to_be_bytes());
        }
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n < 256 {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

fn write_map_len(out: &mut Vec<u8>, n: usize) {
    write_len(out, n, 0x80, 0xde, 0xdf)
}

fn write_len(out: &mut Vec<u8>, n: usize, fix: u8, b16: u8, b32: u8) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn matches_the_protocol_reference_vectors() {
        // nomad-plugin-protocol.md §4.4: the task config with `importance` left out.
        let mut fields = hcl::Map::new();
        fields.insert("command".into(), Value::from("sleep"));
        fields.insert("args".into(), Value::Array(vec![Value::from("1")]));
        fields.insert("promises".into(), Value::from("stdio"));
        fields.insert("unveil".into(), Value::Array(vec![]));
        fields.insert("importance".into(), Value::Null);
        assert_eq!(
            hex(&encode(&Value::Object(fields))),
            "85 a4 61 72 67 73 91 a1 31 a7 63 6f 6d 6d 61 6e 64 a5 73 6c 65 65 70 aa 69 6d 70 6f \
             72 74 61 6e 63 65 c0 a8 70 72 6f 6d 69 73 65 73 a5 73 74 64 69 6f a6 75 6e 76 65 69 \
             6c 90"
        );
    }

    #[test]
    fn scalars_use_the_smallest_form() {
        assert_eq!(hex(&encode(&Value::from(1))), "01");
        assert_eq!(hex(&encode(&Value::from(300))), "cd 01 2c");
        assert_eq!(hex(&encode(&Value::from(-1))), "ff");
        assert_eq!(hex(&encode(&Value::from(-200))), "d1 ff 38");
        assert_eq!(
            hex(&encode(&Value::from(1.5))),
            "cb 3f f8 00 00 00 00 00 00"
        );
        assert_eq!(hex(&encode(&Value::Bool(true))), "c3");
        assert_eq!(hex(&encode(&Value::Null)), "c0");
        assert_eq!(
            hex(&encode(&Value::from(u64::MAX))),
            "cf ff ff ff ff ff ff ff ff"
        );
        let long = "x".repeat(40);
        assert_eq!(&encode(&Value::from(long.as_str()))[..2], &[0xd9, 40]);
    }

    #[test]
    fn maps_are_sorted() {
        let mut m = hcl::Map::new();
        m.insert("b".into(), Value::from("2"));
        m.insert("a".into(), Value::from("1"));
        assert_eq!(
            hex(&encode(&Value::Object(m))),
            "82 a1 61 a1 31 a1 62 a1 32"
        );
    }
}
