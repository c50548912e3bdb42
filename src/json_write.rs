//! Compact JSON output of a `serde_json::Value`, byte for byte what `serde_json::to_writer`
//! writes, with strings copied in runs instead of byte by byte (serde_json's escaper was the
//! largest single cost of serialising a request or a buffered reply: their bulk is text).

use serde_json::Value;

/// Appends `v` as compact JSON.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            serde_json::to_writer(&mut *out, n).expect("serialising to a Vec cannot fail")
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// `v` as compact JSON in a new buffer.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, v);
    out
}

/// A JSON string with serde_json's escapes (`\"`, `\\`, `\b\f\n\r\t`, else `\u00xx`).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        if let Some(word) = b.get(i..i + 8) {
            let m = needs_escape8(u64::from_le_bytes(word.try_into().expect("8 bytes")));
            if m == 0 {
                i += 8;
                continue;
            }
            i += (m.trailing_zeros() / 8) as usize;
        }
        let c = b[i];
        if c < 0x20 || c == b'"' || c == b'\\' {
            out.extend_from_slice(&b[start..i]);
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                _ => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(c >> 4)]);
                    out.push(HEX[usize::from(c & 0xf)]);
                }
            }
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// High bits of the bytes of a little-endian word that need escaping; the lowest is exact.
#[inline]
fn needs_escape8(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    has_zero(w ^ (ONES * u64::from(b'"')))
        | has_zero(w ^ (ONES * u64::from(b'\\')))
        | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use serde_json::json;

    fn same(v: &Value) {
        assert_eq!(
            String::from_utf8(to_vec(v)).unwrap(),
            serde_json::to_string(v).unwrap()
        );
    }

    #[test]
    fn every_byte_and_shape_matches_serde_json() {
        let all: String = (0u8..0x80).map(char::from).collect();
        same(&json!(all));
        same(
            &json!({"a": [1, -2, 1.5, 1e300, -0.0, u64::MAX, i64::MIN, null, true, false, {}, []],
            "é中😀\u{7f}\u{80}": "x\"y\\z\u{2028}", "": {"n": {"m": [[]]}}}),
        );
        let mut rng = StdRng::seed_from_u64(13);
        let alphabet = [
            'a', '"', '\\', '\n', '\u{1}', '\u{1f}', ' ', 'é', '中', '😀', '\u{7f}',
        ];
        for _ in 0..2000 {
            let len = rng.gen_range(0..40);
            let s: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            same(&json!({ s.clone(): [s] }));
        }
    }
}
