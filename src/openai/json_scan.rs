//! The byte-level JSON scanning shared by the allocation-free fast readers
//! (`openai::chunk_scan`, `providers::gemini::scan`): whitespace, punctuation, strings, escapes,
//! numbers and literals, validated as serde_json would validate them.
//!
//! Free functions over the text and a cursor so each reader keeps its own state. `NL` says
//! whether a raw `\n` counts as whitespace (the OpenAI chunk scan refuses it, see there).

/// A string token: its raw bytes between the quotes and whether it had escapes.
#[derive(Clone, Copy)]
pub(crate) struct Token {
    pub start: usize,
    pub end: usize,
    pub escaped: bool,
}

/// JSON whitespace (with `\n` only when `NL`).
#[inline]
pub(crate) fn ws<const NL: bool>(b: &[u8], i: &mut usize) {
    while let Some(&c) = b.get(*i) {
        if !(c == b' ' || c == b'\t' || c == b'\r' || (NL && c == b'\n')) {
            break;
        }
        *i += 1;
    }
}

#[inline]
pub(crate) fn eat<const NL: bool>(b: &[u8], i: &mut usize, c: u8) -> Option<()> {
    ws::<NL>(b, i);
    (*b.get(*i)? == c).then(|| *i += 1)
}

/// `,` (true) or the closing `close` (false).
#[inline]
pub(crate) fn next_or_close<const NL: bool>(b: &[u8], i: &mut usize, close: u8) -> Option<bool> {
    ws::<NL>(b, i);
    let c = *b.get(*i)?;
    *i += 1;
    match c {
        b',' => Some(true),
        c if c == close => Some(false),
        _ => None,
    }
}

/// An empty object or array right after its opening bracket.
pub(crate) fn empty<const NL: bool>(b: &[u8], i: &mut usize, close: u8) -> bool {
    ws::<NL>(b, i);
    if b.get(*i) == Some(&close) {
        *i += 1;
        true
    } else {
        false
    }
}

pub(crate) fn literal<const NL: bool>(b: &[u8], i: &mut usize, word: &[u8]) -> Option<()> {
    ws::<NL>(b, i);
    if b.get(*i..*i + word.len())? == word {
        *i += word.len();
        Some(())
    } else {
        None
    }
}

pub(crate) fn string<const NL: bool>(b: &[u8], i: &mut usize) -> Option<Token> {
    ws::<NL>(b, i);
    if *b.get(*i)? != b'"' {
        return None;
    }
    *i += 1;
    let start = *i;
    let mut escaped = false;
    let mut non_ascii = false;
    loop {
        // Plain bytes eight at a time; the lowest flagged byte of a word is exact.
        if let Some(chunk) = b.get(*i..*i + 8) {
            let m = special8(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
            if m == 0 {
                *i += 8;
                continue;
            }
            *i += (m.trailing_zeros() / 8) as usize;
        }
        match *b.get(*i)? {
            b'"' => {
                let end = *i;
                *i += 1;
                // serde_json validates every string's UTF-8 (text outside strings is ASCII).
                if non_ascii {
                    std::str::from_utf8(&b[start..end]).ok()?;
                }
                return Some(Token {
                    start,
                    end,
                    escaped,
                });
            }
            b'\\' => {
                escaped = true;
                escape(b, i)?;
            }
            0..=0x1f => return None, // serde_json refuses control characters in strings
            0x80.. => {
                non_ascii = true;
                *i += 1;
            }
            _ => *i += 1,
        }
    }
}

/// One escape after its backslash; `\u` escapes of surrogates are left to serde_json.
fn escape(b: &[u8], i: &mut usize) -> Option<()> {
    let c = *b.get(*i + 1)?;
    *i += 2;
    match c {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(()),
        b'u' => {
            let hex = b.get(*i..*i + 4)?;
            let mut v = 0u32;
            for &h in hex {
                v = v * 16 + (h as char).to_digit(16)?;
            }
            *i += 4;
            (!(0xD800..=0xDFFF).contains(&v)).then_some(())
        }
        _ => None,
    }
}

/// A number token: `Some(Some(n))` for a non-negative integer that fits `u64` (what
/// `Value::as_u64` accepts), `Some(None)` for another valid number well inside `f64`'s range.
pub(crate) fn number<const NL: bool>(b: &[u8], i: &mut usize) -> Option<Option<u64>> {
    ws::<NL>(b, i);
    let peek = |i: usize| b.get(i).copied();
    let neg = peek(*i) == Some(b'-');
    if neg {
        *i += 1;
    }
    let int_start = *i;
    // The integer part's value while it fits u64 (what `Value::as_u64` accepts).
    let mut value = Some(0u64);
    match peek(*i)? {
        b'0' => *i += 1,
        b'1'..=b'9' => {
            while let Some(d @ b'0'..=b'9') = peek(*i) {
                value = value
                    .and_then(|v| v.checked_mul(10))
                    .and_then(|v| v.checked_add(u64::from(d - b'0')));
                *i += 1;
            }
        }
        _ => return None,
    }
    let int_len = *i - int_start;
    let mut integral = !neg;
    if peek(*i) == Some(b'.') {
        *i += 1;
        integral = false;
        let from = *i;
        while let Some(b'0'..=b'9') = peek(*i) {
            *i += 1;
        }
        if *i == from {
            return None;
        }
    }
    if let Some(b'e' | b'E') = peek(*i) {
        *i += 1;
        integral = false;
        if let Some(b'+' | b'-') = peek(*i) {
            *i += 1;
        }
        let from = *i;
        while let Some(b'0'..=b'9') = peek(*i) {
            *i += 1;
        }
        // Large exponents (overflow is an error in serde_json) go to serde_json.
        if *i == from || *i - from > 2 {
            return None;
        }
    }
    if int_len > 100 {
        return None;
    }
    // An integer beyond u64 becomes an f64 in serde_json: valid, but not `as_u64`.
    Some(value.filter(|_| integral))
}

/// The high bit of each of eight bytes (little-endian) that is `"`, `\`, a control character or
/// non-ASCII; bits above the lowest may be spurious (borrows), the lowest is exact.
#[inline]
pub(crate) fn special8(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let quote = has_zero(w ^ (ONES * b'"' as u64));
    let backslash = has_zero(w ^ (ONES * b'\\' as u64));
    // Bytes below 0x20, or with the high bit set (checked byte by byte, not an error).
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    quote | backslash | control | (w & HIGH)
}
