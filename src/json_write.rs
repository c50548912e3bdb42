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
        Value::Array(items) => write_array(out, items, write_value),
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

/// A JSON array: `[`, each item written by `item`, with commas between, `]`.
#[inline]
pub fn write_array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut item: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, x) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, x);
    }
    out.push(b']');
}

/// A JSON object of string fields, in the order given: `{"k":"v",…}` (keys are written as they
/// are: callers pass plain ASCII names).
pub fn write_str_object(out: &mut Vec<u8>, fields: &[(&str, &str)]) {
    out.push(b'{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        write_str(out, v);
    }
    out.push(b'}');
}

/// `n` in decimal, as JSON writes an unsigned integer.
#[inline]
pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(digits(n, &mut buf));
}

/// The decimal digits of `n`, written at the end of `buf` (two at a time, as itoa does).
pub fn digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    const PAIRS: &[u8; 200] = b"\
        0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut i = buf.len();
    while n >= 100 {
        let d = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[d..d + 2]);
    }
    if n >= 10 {
        let d = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[d..d + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    &buf[i..]
}

/// `v` as compact JSON in a new buffer.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, v);
    out
}

/// A JSON string with serde_json's escapes (`\"`, `\\`, `\b\f\n\r\t`, else `\u00xx`): plain runs
/// found by [`scan_plain`] (sixteen bytes a step on x86_64) and copied whole.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut start = 0;
    loop {
        let (i, _) = scan_plain(b, start);
        out.extend_from_slice(&b[start..i]);
        let Some(&c) = b.get(i) else { break };
        write_escape(out, c);
        start = i + 1;
    }
    out.push(b'"');
}

/// Whether JSON text must escape byte `c` in a string: `"`, `\\` and control characters.
#[inline]
pub fn needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

/// serde_json's escape of one byte that needs one (`"`, `\\`, a control character).
fn write_escape(out: &mut Vec<u8>, c: u8) {
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
}

/// From `i`, the index of the first byte that is `"`, `\\` or a control character (or the end),
/// and whether a non-ASCII byte came before it.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn scan_plain(b: &[u8], mut i: usize) -> (usize, bool) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let mut high = 0;
    while i + 16 <= b.len() {
        // SAFETY: SSE2 is part of the x86_64 baseline; the unaligned load reads b[i..i + 16],
        // which is in bounds (checked above).
        let (special, h) = unsafe {
            let v = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
            let ctrl = _mm_set1_epi8(0x1f);
            // c <= 0x1f (unsigned) exactly when max(c, 0x1f) == 0x1f.
            let m = _mm_or_si128(
                _mm_or_si128(
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
                ),
                _mm_cmpeq_epi8(_mm_max_epu8(v, ctrl), ctrl),
            );
            (_mm_movemask_epi8(m), _mm_movemask_epi8(v))
        };
        if special != 0 {
            let n = special.trailing_zeros();
            high |= h & ((1 << n) - 1);
            return (i + n as usize, high != 0);
        }
        high |= h;
        i += 16;
    }
    scan_plain_tail(b, i, high != 0)
}

/// From `i`, the index of the first byte that is `"`, `\\` or a control character (or the end),
/// and whether a non-ASCII byte came before it.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn scan_plain(b: &[u8], mut i: usize) -> (usize, bool) {
    let mut high = 0u64;
    while let Some(word) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let m = needs_escape8(w);
        if m != 0 {
            let n = m.trailing_zeros() / 8;
            high |= w & ((1u64 << (n * 8)) - 1);
            return (i + n as usize, high & 0x8080_8080_8080_8080 != 0);
        }
        high |= w;
        i += 8;
    }
    scan_plain_tail(b, i, high & 0x8080_8080_8080_8080 != 0)
}

/// [`scan_plain`]'s byte-at-a-time end, from `i` with what was found before it.
#[inline]
fn scan_plain_tail(b: &[u8], mut i: usize, mut non_ascii: bool) -> (usize, bool) {
    while let Some(&c) = b.get(i) {
        if needs_escape(c) {
            break;
        }
        non_ascii |= c >= 0x80;
        i += 1;
    }
    (i, non_ascii)
}

/// High bits of the bytes of a little-endian word that need escaping; the lowest is exact.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn needs_escape8(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    has_zero(w ^ (ONES * u64::from(b'"')))
        | has_zero(w ^ (ONES * u64::from(b'\\')))
        | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
}

// ---- Canonical copy of JSON text ---------------------------------------------------------------

/// Keys of all open objects at once (for the duplicate check); more sends the body to the full
/// parse.
const MAX_OPEN_KEYS: usize = 128;
/// Nesting deeper than this is left to serde_json (its own limit is 128).
const MAX_DEPTH: usize = 64;

/// A validating copy of JSON text that writes what `to_vec(&serde_json::from_slice(text)?)`
/// writes, without building a `Value`: whitespace dropped, strings and numbers in serde_json's
/// output form. The caller walks the structure it cares about (objects, arrays, keys) and copies
/// the rest with [`Copier::value`]; it may replace a value or append members on the way.
///
/// It is conservative: every method answers `None` ("take the full parse") where the copy could
/// differ from the parse-and-serialise it stands for or where serde_json refuses the text:
/// duplicate or escaped keys (the parse keeps the last value at the first place), lone
/// surrogates, invalid UTF-8, control characters, nesting deeper than 64, malformed JSON.
pub(crate) struct Copier<'a, 'o> {
    b: &'a [u8],
    i: usize,
    depth: usize,
    out: &'o mut Vec<u8>,
    /// Input spans of the keys of every open object, innermost last.
    keys: [(u32, u32); MAX_OPEN_KEYS],
    nkeys: usize,
}

/// An open object: where its keys start in the key stack, and how many members were written.
pub(crate) struct Obj {
    keys_from: usize,
    members: usize,
    /// A one-bit-per-key filter of the keys read: only a key whose bit is set already is
    /// compared with the others.
    filter: u64,
}

/// An open array: how many items were written.
pub(crate) struct Arr {
    items: usize,
}

/// A string token: its raw bytes between the quotes (valid UTF-8) and whether it had escapes.
#[derive(Clone, Copy)]
pub(crate) struct Str<'a> {
    pub raw: &'a [u8],
    pub escaped: bool,
}

impl<'a> Str<'a> {
    /// The string itself when it had no escapes.
    pub fn plain(&self) -> Option<&'a str> {
        if self.escaped {
            return None;
        }
        // Validated by `Copier::string`.
        std::str::from_utf8(self.raw).ok()
    }
}

impl<'a, 'o> Copier<'a, 'o> {
    /// `None` for text beyond 4 GiB (key spans are kept as `u32`).
    pub fn new(b: &'a [u8], out: &'o mut Vec<u8>) -> Option<Self> {
        u32::try_from(b.len()).ok()?;
        Some(Self {
            b,
            i: 0,
            depth: 0,
            out,
            keys: [(0, 0); MAX_OPEN_KEYS],
            nkeys: 0,
        })
    }

    /// The output written so far (callers write replacement values and appended members here).
    pub fn out(&mut self) -> &mut Vec<u8> {
        self.out
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The first byte of the next token (whitespace skipped).
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// After the top-level value: only whitespace may follow.
    pub fn finish(&mut self) -> Option<()> {
        self.ws();
        (self.i == self.b.len()).then_some(())
    }

    pub fn begin_object(&mut self) -> Option<Obj> {
        if self.peek()? != b'{' {
            return None;
        }
        self.enter()?;
        self.out.push(b'{');
        Some(Obj {
            keys_from: self.nkeys,
            members: 0,
            filter: 0,
        })
    }

    /// The next member's key, written with its `:` (the caller then copies or replaces the
    /// value); `Some(None)` at the closing brace, which is left for [`Copier::end_object`] so
    /// members can be appended first.
    pub fn key(&mut self, obj: &mut Obj) -> Option<Option<&'a [u8]>> {
        self.ws();
        let c = *self.b.get(self.i)?;
        if c == b'}' {
            return Some(None);
        }
        // Where `,"key":` starts in the input: copied in one piece when it has no whitespace.
        let lead = self.i;
        // Not the first key read (read keys stay on the stack until the object ends).
        let comma = self.nkeys > obj.keys_from;
        if comma {
            if c != b',' {
                return None;
            }
            self.i += 1;
            self.ws();
        }
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i + 1;
        let (j, non_ascii) = scan_plain(self.b, start);
        // Escaped keys would need unescaping to compare: the full parse does that.
        if self.b.get(j) != Some(&b'"') {
            return None;
        }
        let key = &self.b[start..j];
        if non_ascii {
            std::str::from_utf8(key).ok()?;
        }
        let bit = 1u64
            << ((key.len() * 7
                + key.first().map_or(0, |&c| usize::from(c)) * 3
                + key.last().map_or(0, |&c| usize::from(c)))
                % 64);
        if obj.filter & bit != 0 {
            let open = &self.keys[obj.keys_from..self.nkeys];
            if open
                .iter()
                .any(|&(s, e)| &self.b[s as usize..e as usize] == key)
            {
                return None;
            }
        }
        obj.filter |= bit;
        if self.nkeys == MAX_OPEN_KEYS {
            return None;
        }
        self.keys[self.nkeys] = (start as u32, j as u32);
        self.nkeys += 1;
        self.i = j + 1;
        if self.b.get(self.i) != Some(&b':') {
            self.ws();
            if self.b.get(self.i) != Some(&b':') {
                return None;
            }
        }
        self.i += 1;
        // The key as it came (no escapes: already in serde_json's form). Members are written
        // for every member read, so the separators match the input's.
        debug_assert_eq!(comma, obj.members > 0);
        obj.members += 1;
        if self.i - lead == key.len() + 3 + usize::from(comma) {
            self.out.extend_from_slice(&self.b[lead..self.i]);
        } else {
            if comma {
                self.out.push(b',');
            }
            self.out.extend_from_slice(&self.b[start - 1..=j]);
            self.out.push(b':');
        }
        Some(Some(key))
    }

    /// Writes the key of an appended member (the caller writes its value next). The caller
    /// knows the key is not in the object.
    pub fn append_key(&mut self, obj: &mut Obj, key: &str) {
        if obj.members > 0 {
            self.out.push(b',');
        }
        obj.members += 1;
        write_str(self.out, key);
        self.out.push(b':');
    }

    /// Appends, in order, the members of `defaults` (`(bit, key, JSON value)`) whose bit is not
    /// in `seen`: the defaults of the members the object was read without.
    #[inline]
    pub fn append_missing(&mut self, obj: &mut Obj, seen: u8, defaults: &[(u8, &str, &[u8])]) {
        for &(bit, key, value) in defaults {
            if seen & bit == 0 {
                self.append_key(obj, key);
                self.out.extend_from_slice(value);
            }
        }
    }

    /// Closes the object [`Copier::key`] reached the end of.
    pub fn end_object(&mut self, obj: Obj) {
        debug_assert_eq!(self.b.get(self.i), Some(&b'}'));
        self.i += 1;
        self.out.push(b'}');
        self.nkeys = obj.keys_from;
        self.depth -= 1;
    }

    pub fn begin_array(&mut self) -> Option<Arr> {
        if self.peek()? != b'[' {
            return None;
        }
        self.enter()?;
        self.out.push(b'[');
        Some(Arr { items: 0 })
    }

    /// Whether another item follows (its separator written); `false` at the closing bracket,
    /// which it consumes and writes.
    pub fn next_item(&mut self, arr: &mut Arr) -> Option<bool> {
        self.ws();
        let c = *self.b.get(self.i)?;
        if c == b']' {
            self.i += 1;
            self.out.push(b']');
            self.depth -= 1;
            return Some(false);
        }
        if arr.items > 0 {
            if c != b',' {
                return None;
            }
            self.i += 1;
            self.out.push(b',');
        }
        arr.items += 1;
        Some(true)
    }

    fn enter(&mut self) -> Option<()> {
        self.i += 1;
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// Any value, copied.
    pub fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => {
                let mut obj = self.begin_object()?;
                while self.key(&mut obj)?.is_some() {
                    self.value()?;
                }
                self.end_object(obj);
                Some(())
            }
            b'[' => {
                let mut arr = self.begin_array()?;
                while self.next_item(&mut arr)? {
                    self.value()?;
                }
                Some(())
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(drop),
        }
    }

    /// Any value, validated and not written (it is being replaced).
    pub fn skip(&mut self) -> Option<()> {
        let mark = self.out.len();
        self.value()?;
        self.out.truncate(mark);
        Some(())
    }

    /// `true`, `false` or `null`, as given.
    pub fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.ws();
        if self.b.get(self.i..self.i + word.len())? != word {
            return None;
        }
        self.i += word.len();
        self.out.extend_from_slice(word);
        Some(())
    }

    /// A string, written in serde_json's form (escapes it does not write are decoded).
    pub fn string(&mut self) -> Option<Str<'a>> {
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        let start = self.i;
        let mut run = start;
        let mut non_ascii = false;
        let mut escaped = false;
        // The opening quote goes out with the first run copied (`run` starts on it).
        run -= 1;
        loop {
            let (j, high) = scan_plain(self.b, self.i);
            non_ascii |= high;
            self.i = j;
            match *self.b.get(self.i)? {
                b'"' => {
                    self.out.extend_from_slice(&self.b[run..=j]);
                    self.i += 1;
                    // serde_json validates every string's UTF-8 (its escapes are ASCII here).
                    if non_ascii {
                        std::str::from_utf8(&self.b[start..j]).ok()?;
                    }
                    return Some(Str {
                        raw: &self.b[start..j],
                        escaped,
                    });
                }
                b'\\' => {
                    self.out.extend_from_slice(&self.b[run..j]);
                    escaped = true;
                    self.escape()?;
                    run = self.i;
                }
                // A control character: serde_json refuses it.
                _ => return None,
            }
        }
    }

    /// One escape (at its backslash), written as serde_json writes the character it stands for.
    fn escape(&mut self) -> Option<()> {
        let c = *self.b.get(self.i + 1)?;
        self.i += 2;
        let byte = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut v = self.hex4()?;
                if (0xDC00..=0xDFFF).contains(&v) {
                    return None;
                }
                if (0xD800..=0xDBFF).contains(&v) {
                    // Only a pair makes a character; serde_json refuses a lone surrogate.
                    if self.b.get(self.i..self.i + 2)? != b"\\u" {
                        return None;
                    }
                    self.i += 2;
                    let lo = self.hex4()?;
                    if !(0xDC00..=0xDFFF).contains(&lo) {
                        return None;
                    }
                    v = 0x1_0000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                }
                let ch = char::from_u32(v)?;
                if v >= 0x80 {
                    let mut buf = [0u8; 4];
                    self.out
                        .extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    return Some(());
                }
                v as u8
            }
            _ => return None,
        };
        if needs_escape(byte) {
            write_escape(self.out, byte);
        } else {
            self.out.push(byte);
        }
        Some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let hex = self.b.get(self.i..self.i + 4)?;
        let mut v = 0u32;
        for &h in hex {
            v = v * 16 + (h as char).to_digit(16)?;
        }
        self.i += 4;
        Some(v)
    }

    /// A number, written as serde_json writes the number it parses; `Some(Some(n))` for one
    /// that `Value::as_u64` accepts.
    pub fn number(&mut self) -> Option<Option<u64>> {
        self.ws();
        let start = self.i;
        let neg = self.b.get(self.i) == Some(&b'-');
        if neg {
            self.i += 1;
        }
        let int_start = self.i;
        let mut value = Some(0u64);
        match *self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                while let Some(&d @ b'0'..=b'9') = self.b.get(self.i) {
                    value = value
                        .and_then(|v| v.checked_mul(10))
                        .and_then(|v| v.checked_add(u64::from(d - b'0')));
                    self.i += 1;
                }
            }
            _ => return None,
        }
        let int_len = self.i - int_start;
        let mut frac_len = 0;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            let from = self.i;
            while let Some(b'0'..=b'9') = self.b.get(self.i) {
                self.i += 1;
            }
            frac_len = self.i - from;
            if frac_len == 0 {
                return None;
            }
        }
        let mut exp = false;
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            exp = true;
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            let from = self.i;
            while let Some(b'0'..=b'9') = self.b.get(self.i) {
                self.i += 1;
            }
            if self.i == from {
                return None;
            }
        }
        let tok = &self.b[start..self.i];
        if !exp && frac_len == 0 {
            match value {
                // serde_json keeps a u64, or an i64 for a negative (but `-0` is a float).
                Some(v) if !neg => {
                    self.out.extend_from_slice(tok);
                    return Some(Some(v));
                }
                Some(v) if v != 0 && v <= 1 << 63 => {
                    self.out.extend_from_slice(tok);
                    return Some(None);
                }
                _ => {}
            }
        } else if !exp && int_len + frac_len <= 15 && tok.last() != Some(&b'0') {
            // A decimal of at most 15 digits without trailing zeros is exact in serde_json's
            // parse (significand below 2^53, one division by an exact power of ten) and is the
            // shortest form of its f64, which is what serde_json writes (in plain notation for
            // 1e-4 <= |x| < 1e15).
            let int_digits = &self.b[int_start..int_start + int_len];
            let frac = &self.b[self.i - frac_len..self.i];
            let zeros = frac.iter().take_while(|&&d| d == b'0').count();
            if int_digits != b"0" || zeros <= 3 {
                self.out.extend_from_slice(tok);
                return Some(None);
            }
        }
        // Anything else (exponents, long or out-of-range numbers, `-0`): serde_json's own parse
        // and output.
        let v: Value = serde_json::from_slice(tok).ok()?;
        write_value(self.out, &v);
        Some(v.as_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use serde_json::json;

    fn copy_all(text: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut c = Copier::new(text, &mut out)?;
        c.value()?;
        c.finish()?;
        Some(out)
    }

    /// What the copy stands for: serde_json's parse, then `to_vec`.
    fn reference(text: &[u8]) -> Option<Vec<u8>> {
        serde_json::from_slice::<Value>(text)
            .ok()
            .map(|v| to_vec(&v))
    }

    fn agree(text: &[u8]) -> bool {
        match copy_all(text) {
            Some(out) => {
                assert_eq!(
                    Some(&out),
                    reference(text).as_ref(),
                    "{}",
                    String::from_utf8_lossy(text)
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn the_copy_is_the_parse_and_serialisation() {
        let accepted: &[&str] = &[
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
            " {\n \"a\" : [ 1 , 2 ] ,\t\"b\":\r{} , \"c\":[]} ",
            r#"{"s":"\u00e9\u4E2D\ud83d\ude00 \/ \" \\ \b\f\n\r\t \u0001\u001F\u007f \u0022 \u005c"}"#,
            "{\"s\":\"é中😀\u{7f}\"}",
            r#"[0,-1,1.5,-0.25,0.1,0.0001,0.00001,123456789012345.5,1.0,-0,-0.0,1e5,1E-7,2.5e+3,12345678901234567890,18446744073709551615,18446744073709551616,-9223372036854775808,-9223372036854775809,1.7976931348623157e308,5e-324,0.30000000000000004,100,1.10,3.14159265358979]"#,
            r#""top-level string""#,
            "123",
        ];
        for text in accepted {
            assert!(agree(text.as_bytes()), "refused: {text}");
        }
        let refused: &[&[u8]] = &[
            br#"{"a":1,"a":2}"#,
            br#"{"a":{"b":1,"b":1}}"#,
            br#"{"\u0061":1}"#,
            br#"{"s":"\ud800"}"#,
            br#"{"s":"\udc00"}"#,
            br#"{"s":"\ud800\u0041"}"#,
            b"{\"s\":\"\x01\"}",
            b"{\"s\":\"\xff\"}",
            br#"{"a":01}"#,
            br#"{"a":1e400}"#,
            br#"{"a":[1,]}"#,
            br#"{"a":1,}"#,
            br#"{"a" 1}"#,
            br#"{"a":1} x"#,
            br#"{"a":tru}"#,
            br#"{"a":"\x"}"#,
            b"\xef\xbb\xbf{}",
        ];
        for text in refused {
            assert!(
                copy_all(text).is_none(),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        let deep = format!("{}1{}", "[".repeat(70), "]".repeat(70));
        assert!(copy_all(deep.as_bytes()).is_none());
        // Duplicate keys in sibling objects are not duplicates.
        assert!(agree(br#"[{"a":1},{"a":2},{"b":{"a":3}}]"#));
    }

    /// `write_u64` and `digits` write what `to_string` writes, at every digit count and edge.
    #[test]
    fn decimal_digits_are_to_string() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut cases = vec![0, 9, 10, 99, 100, 101, 999, u64::from(u16::MAX), u64::MAX];
        for k in 0..20 {
            let p = 10u64.pow(k);
            cases.extend([p - 1, p, p + 1, rng.gen_range(p..p.saturating_mul(10))]);
        }
        for n in cases {
            let mut out = b"x".to_vec();
            write_u64(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
            let mut buf = [0u8; 20];
            assert_eq!(digits(n, &mut buf), n.to_string().as_bytes());
        }
    }

    #[test]
    fn numbers_are_written_as_serde_json_writes_them() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..20_000 {
            let int_len = rng.gen_range(1..18);
            let frac_len = rng.gen_range(0..18);
            let mut s = String::new();
            if rng.gen_bool(0.3) {
                s.push('-');
            }
            for k in 0..int_len {
                let d = if k == 0 && int_len > 1 {
                    rng.gen_range(1..10)
                } else {
                    rng.gen_range(0..10)
                };
                s.push(char::from(b'0' + d));
            }
            if frac_len > 0 {
                s.push('.');
                for _ in 0..frac_len {
                    let d = if rng.gen_bool(0.3) {
                        0
                    } else {
                        rng.gen_range(0..10)
                    };
                    s.push(char::from(b'0' + d));
                }
            }
            if rng.gen_bool(0.1) {
                s.push_str(&format!("e{}", rng.gen_range(-30..30)));
            }
            let text = format!("[{s}]");
            assert!(agree(text.as_bytes()), "refused {text}");
        }
    }

    /// Random edits of realistic bodies: whatever the copy accepts is byte for byte the parse and
    /// serialisation; and it accepts most valid edits.
    #[test]
    fn random_edits_agree_with_the_parse() {
        let seeds = [
            r#"{"model":"gpt-4o","temperature":0.7,"messages":[{"role":"user","content":"h\u00e9 \"x\" \ud83d\ude00"}],"stream":true,"n":12345678901234567890}"#,
            "{ \"id\": \"c\", \"choices\": [ { \"index\": 0, \"message\": { \"content\": \"a\\nb é\" } } ], \"usage\": {\"total_tokens\": 3.50} }",
        ];
        let alphabet: &[u8] = b"{}[]\":,\\ \t\nnulltrue0123456789-+.eEabcdefu/\x01\xc3\xa9";
        let mut rng = StdRng::seed_from_u64(13);
        let (mut accepted, mut valid) = (0, 0);
        for seed in seeds {
            for _ in 0..20_000 {
                let mut b = seed.as_bytes().to_vec();
                crate::testutil::random_edits(&mut rng, &mut b, alphabet);
                valid += usize::from(reference(&b).is_some());
                accepted += usize::from(agree(&b));
            }
        }
        assert!(accepted * 10 > valid * 9, "{accepted} of {valid} valid");
    }

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
            let len = rng.gen_range(0..80);
            let s: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            same(&json!({ s.clone(): [s] }));
        }
    }
}
