//! The fastest reading of a `GenerateContentResponse`: a validating, allocation-free walk of the
//! JSON text (the same approach as `openai::chunk_scan`) into the borrowed [`typed::Event`].
//!
//! Conservative like that scan: it answers `None` ("read it another way") for anything it is not
//! sure serde_json would read the same, e.g. escaped keys, duplicate keys it looks at, numbers
//! near `f64`'s range, deep nesting, `\u` escapes of surrogates, function calls (read by the
//! serde typed reading), an `error` key. Strings with escapes are decoded by serde_json.

use super::typed::{Candidate, Event, Part, UsageCounts};
use std::borrow::Cow;

/// Nesting deeper than this is left to serde_json (its own limit is 128).
const MAX_DEPTH: usize = 64;

/// Reads one event's data (or a whole reply body); `None` when another reading must decide.
pub(super) fn scan(data: &[u8]) -> Option<Event<'_>> {
    let mut s = Scanner {
        b: data,
        i: 0,
        depth: 0,
    };
    let ev = s.event()?;
    s.ws();
    (s.i == data.len()).then_some(ev)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
}

/// A string token: its raw bytes between the quotes and whether it had escapes.
#[derive(Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
    escaped: bool,
}

/// Marks `bit` in `seen`; `None` for a key given twice (the last one wins in serde_json).
#[inline]
fn once(seen: &mut u8, bit: u8) -> Option<()> {
    if *seen & bit != 0 {
        return None;
    }
    *seen |= bit;
    Some(())
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// JSON whitespace.
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.peek() {
            self.i += 1;
        }
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// `,` (true) or the closing `close` (false).
    #[inline]
    fn next_or_close(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let c = self.peek()?;
        self.i += 1;
        match c {
            b',' => Some(true),
            c if c == close => Some(false),
            _ => None,
        }
    }

    fn string(&mut self) -> Option<Token> {
        self.ws();
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        let mut non_ascii = false;
        loop {
            // Plain bytes eight at a time; the lowest flagged byte of a word is exact.
            if let Some(chunk) = self.b.get(self.i..self.i + 8) {
                let m = special8(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
                if m == 0 {
                    self.i += 8;
                    continue;
                }
                self.i += (m.trailing_zeros() / 8) as usize;
            }
            match self.peek()? {
                b'"' => {
                    let end = self.i;
                    self.i += 1;
                    // serde_json validates every string's UTF-8 (text outside strings is ASCII).
                    if non_ascii {
                        std::str::from_utf8(&self.b[start..end]).ok()?;
                    }
                    return Some(Token {
                        start,
                        end,
                        escaped,
                    });
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                0..=0x1f => return None, // serde_json refuses control characters in strings
                0x80.. => {
                    non_ascii = true;
                    self.i += 1;
                }
                _ => self.i += 1,
            }
        }
    }

    /// One escape after its backslash; `\u` escapes of surrogates are left to serde_json.
    fn escape(&mut self) -> Option<()> {
        let c = *self.b.get(self.i + 1)?;
        self.i += 2;
        match c {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(()),
            b'u' => {
                let hex = self.b.get(self.i..self.i + 4)?;
                let mut v = 0u32;
                for &h in hex {
                    v = v * 16 + (h as char).to_digit(16)?;
                }
                self.i += 4;
                (!(0xD800..=0xDFFF).contains(&v)).then_some(())
            }
            _ => None,
        }
    }

    /// A string value: borrowed when it has no escapes, else decoded by serde_json.
    fn str_value(&mut self) -> Option<Cow<'a, str>> {
        let t = self.string()?;
        if t.escaped {
            let quoted = &self.b[t.start - 1..t.end + 1];
            return serde_json::from_slice::<String>(quoted)
                .ok()
                .map(Cow::Owned);
        }
        std::str::from_utf8(&self.b[t.start..t.end])
            .ok()
            .map(Cow::Borrowed)
    }

    /// A number token: `Some(Some(n))` for a non-negative integer that fits `u64` (what
    /// `Value::as_u64` accepts), `Some(None)` for another valid number well inside `f64`'s range.
    fn number(&mut self) -> Option<Option<u64>> {
        self.ws();
        let neg = self.peek() == Some(b'-');
        if neg {
            self.i += 1;
        }
        let int_start = self.i;
        let mut value = Some(0u64);
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    value = value
                        .and_then(|v| v.checked_mul(10))
                        .and_then(|v| v.checked_add(u64::from(d - b'0')));
                    self.i += 1;
                }
            }
            _ => return None,
        }
        let int_len = self.i - int_start;
        let mut integral = !neg;
        if self.peek() == Some(b'.') {
            self.i += 1;
            integral = false;
            let from = self.i;
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
            if self.i == from {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            integral = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            let from = self.i;
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
            // Large exponents (overflow is an error in serde_json) go to serde_json.
            if self.i == from || self.i - from > 2 {
                return None;
            }
        }
        if int_len > 100 {
            return None;
        }
        // An integer beyond u64 becomes an f64 in serde_json: valid, but not `as_u64`.
        Some(value.filter(|_| integral))
    }

    /// A count: a non-negative integer that fits `u64`, or `None` (serde_json decides).
    fn count(&mut self) -> Option<u64> {
        self.number()?
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.ws();
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// Any JSON value, validated and skipped.
    fn skip(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => {
                self.enter()?;
                if !self.empty(b'}') {
                    loop {
                        self.string()?;
                        self.eat(b':')?;
                        self.skip()?;
                        if !self.next_or_close(b'}')? {
                            break;
                        }
                    }
                }
                self.depth -= 1;
                Some(())
            }
            b'[' => {
                self.enter()?;
                if !self.empty(b']') {
                    loop {
                        self.skip()?;
                        if !self.next_or_close(b']')? {
                            break;
                        }
                    }
                }
                self.depth -= 1;
                Some(())
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(drop),
        }
    }

    /// Consumes `open` and counts the depth.
    fn open(&mut self, open: u8) -> Option<()> {
        self.eat(open)?;
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// Consumes the opening bracket (already peeked) and counts the depth.
    fn enter(&mut self) -> Option<()> {
        self.i += 1;
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// An empty object or array right after its opening bracket.
    fn empty(&mut self, close: u8) -> bool {
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// A key: its raw bytes, or `None` when escaped (serde_json compares unescaped keys).
    fn key(&mut self) -> Option<&'a [u8]> {
        let k = self.string()?;
        self.eat(b':')?;
        (!k.escaped).then(|| &self.b[k.start..k.end])
    }

    /// An object whose keys `field` reads (it returns whether it knew the key); others skipped.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<bool>) -> Option<()> {
        self.open(b'{')?;
        if !self.empty(b'}') {
            loop {
                let key = self.key()?;
                if !field(self, key)? {
                    self.skip()?;
                }
                if !self.next_or_close(b'}')? {
                    break;
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// An array whose items `item` reads.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.open(b'[')?;
        if !self.empty(b']') {
            loop {
                item(self)?;
                if !self.next_or_close(b']')? {
                    break;
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    fn event(&mut self) -> Option<Event<'a>> {
        let mut ev = Event::default();
        let mut seen = 0u8;
        self.object(|s, key| {
            match key {
                b"candidates" => {
                    once(&mut seen, 1)?;
                    s.array(|s| {
                        let c = s.candidate()?;
                        ev.candidates.push(c);
                        Some(())
                    })?;
                }
                b"usageMetadata" => {
                    once(&mut seen, 2)?;
                    ev.usage = Some(s.usage()?);
                }
                b"modelVersion" => {
                    once(&mut seen, 4)?;
                    ev.model_version = Some(s.str_value()?);
                }
                b"error" => return None,
                _ => return Some(false),
            }
            Some(true)
        })?;
        Some(ev)
    }

    fn candidate(&mut self) -> Option<Candidate<'a>> {
        let mut c = Candidate::default();
        let mut seen = 0u8;
        self.object(|s, key| {
            match key {
                b"index" => {
                    once(&mut seen, 1)?;
                    c.index = Some(s.count()?);
                }
                b"content" => {
                    once(&mut seen, 2)?;
                    let mut seen_parts = 0u8;
                    s.object(|s, key| {
                        if key != b"parts" {
                            return Some(false);
                        }
                        once(&mut seen_parts, 1)?;
                        s.array(|s| {
                            let p = s.part()?;
                            c.parts.push(p);
                            Some(())
                        })?;
                        Some(true)
                    })?;
                }
                b"finishReason" => {
                    once(&mut seen, 4)?;
                    c.finish_reason = Some(s.str_value()?);
                }
                _ => return Some(false),
            }
            Some(true)
        })?;
        Some(c)
    }

    fn part(&mut self) -> Option<Part<'a>> {
        let mut p = Part::default();
        let mut seen = 0u8;
        self.object(|s, key| {
            match key {
                b"text" => {
                    once(&mut seen, 1)?;
                    p.text = Some(s.str_value()?);
                }
                b"thought" => {
                    once(&mut seen, 2)?;
                    s.ws();
                    p.thought = Some(match s.peek()? {
                        b't' => s.literal(b"true").map(|()| true)?,
                        _ => s.literal(b"false").map(|()| false)?,
                    });
                }
                b"thoughtSignature" => {
                    once(&mut seen, 4)?;
                    p.thought_signature = Some(s.str_value()?);
                }
                // Read by the serde typed reading.
                b"functionCall" => return None,
                _ => return Some(false),
            }
            Some(true)
        })?;
        Some(p)
    }

    fn usage(&mut self) -> Option<UsageCounts> {
        let mut u = UsageCounts::default();
        let mut seen = 0u8;
        self.object(|s, key| {
            let (bit, slot) = match key {
                b"promptTokenCount" => (1, &mut u.prompt),
                b"candidatesTokenCount" => (2, &mut u.candidates),
                b"thoughtsTokenCount" => (4, &mut u.thoughts),
                b"totalTokenCount" => (8, &mut u.total),
                b"cachedContentTokenCount" => (16, &mut u.cached),
                _ => return Some(false),
            };
            once(&mut seen, bit)?;
            *slot = Some(s.count()?);
            Some(true)
        })?;
        Some(u)
    }
}

/// The high bit of each of eight bytes (little-endian) that is `"`, `\`, a control character or
/// non-ASCII; bits above the lowest may be spurious (borrows), the lowest is exact.
#[inline]
fn special8(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let quote = has_zero(w ^ (ONES * b'"' as u64));
    let backslash = has_zero(w ^ (ONES * b'\\' as u64));
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    quote | backslash | control | (w & HIGH)
}
