//! The byte-level JSON scanning shared by the allocation-free fast readers
//! (`openai::chunk_scan`, `providers::gemini::scan`, `providers::qwen::event`): one [`Cursor`]
//! over the text with whitespace, punctuation, strings, escapes, numbers and literals, validated
//! as serde_json would validate them, and the object / array walks the readers build on.
//!
//! Every reader is conservative: `None` means "not sure serde_json reads it the same, take the
//! reference path", never "invalid". A [`Mode`] says whether a raw `\n` is whitespace and what
//! happens to the string values a walk skips (the OpenAI chunk scan notes them, see there).

use std::borrow::Cow;

/// Nesting deeper than this is left to serde_json (its own limit is 128).
pub(crate) const MAX_DEPTH: usize = 64;

/// A string token: its raw bytes between the quotes and whether it had escapes.
#[derive(Clone, Copy)]
pub(crate) struct Token {
    pub start: usize,
    pub end: usize,
    pub escaped: bool,
}

/// How a reader scans: whether a raw `\n` counts as whitespace, and what it does with the
/// string values that [`Cursor::skip`] and [`Cursor::free_string`] only validate.
pub(crate) trait Mode {
    const NL: bool;
    #[inline(always)]
    fn free(&mut self, _s: Token) {}
}

/// Plain JSON: `\n` is whitespace, skipped strings are only validated.
pub(crate) struct Plain;

impl Mode for Plain {
    const NL: bool = true;
}

/// The position in one JSON text, with the nesting depth of the walk.
pub(crate) struct Cursor<'a, M: Mode = Plain> {
    pub b: &'a [u8],
    pub i: usize,
    pub depth: usize,
    pub mode: M,
}

impl<'a> Cursor<'a, Plain> {
    pub fn plain(b: &'a [u8]) -> Self {
        Self::new(b, Plain)
    }
}

impl<'a, M: Mode> Cursor<'a, M> {
    pub fn new(b: &'a [u8], mode: M) -> Self {
        Self {
            b,
            i: 0,
            depth: 0,
            mode,
        }
    }

    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// JSON whitespace (with `\n` only when `M::NL`).
    #[inline]
    pub fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !(c == b' ' || c == b'\t' || c == b'\r' || (M::NL && c == b'\n')) {
                break;
            }
            self.i += 1;
        }
    }

    /// Only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    #[inline]
    pub fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// `,` (true) or the closing `close` (false).
    #[inline]
    pub fn next_or_close(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let c = self.peek()?;
        self.i += 1;
        match c {
            b',' => Some(true),
            c if c == close => Some(false),
            _ => None,
        }
    }

    /// An empty object or array right after its opening bracket.
    #[inline]
    pub fn empty(&mut self, close: u8) -> bool {
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    pub fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.ws();
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// Consumes a `null` if one comes next.
    #[inline]
    pub fn is_null(&mut self) -> bool {
        self.ws();
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            true
        } else {
            false
        }
    }

    /// `true` or `false`.
    pub fn boolean(&mut self) -> Option<bool> {
        self.ws();
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| true),
            _ => self.literal(b"false").map(|()| false),
        }
    }

    /// The raw bytes of a string token (between the quotes).
    #[inline]
    pub fn raw(&self, s: Token) -> &'a [u8] {
        &self.b[s.start..s.end]
    }

    pub fn string(&mut self) -> Option<Token> {
        self.ws();
        scan_string(self.b, &mut self.i)
    }

    /// A string whose content the reader only validates (see [`Mode::free`]).
    #[inline]
    pub fn free_string(&mut self) -> Option<()> {
        let s = self.string()?;
        self.mode.free(s);
        Some(())
    }

    /// [`Cursor::str_value`], with the usual value (plain ASCII: no escape, control or non-ASCII
    /// byte, its quote at the cursor) read inline, to the text's last byte: the stream layouts'
    /// hot path.
    #[inline(always)]
    pub(crate) fn plain_str_value(&mut self) -> Option<Cow<'a, str>> {
        let b = self.b;
        if b.get(self.i) == Some(&b'"') {
            let start = self.i + 1;
            if let Some(end) = plain_string_end(b, start) {
                self.i = end + 1;
                // SAFETY: `plain_string_end` saw only ASCII in `start..end`.
                return Some(Cow::Borrowed(unsafe {
                    std::str::from_utf8_unchecked(&b[start..end])
                }));
            }
        }
        self.str_value()
    }

    /// [`Cursor::count`], with the usual value (up to nineteen digits, no leading zero, fraction
    /// or exponent: always a `u64`) read inline.
    #[inline(always)]
    pub(crate) fn short_count(&mut self) -> Option<u64> {
        let d = self.b;
        if !matches!(d.get(self.i), Some(b'1'..=b'9')) {
            return self.count();
        }
        let (mut j, mut n) = (self.i, 0u64);
        while let Some(&c @ b'0'..=b'9') = d.get(j) {
            if j - self.i == 19 {
                return self.count();
            }
            n = n * 10 + u64::from(c - b'0');
            j += 1;
        }
        if matches!(d.get(j), Some(b'.' | b'e' | b'E')) {
            return self.count();
        }
        self.i = j;
        Some(n)
    }

    /// A string value: borrowed when it has no escapes, else decoded by serde_json.
    pub fn str_value(&mut self) -> Option<Cow<'a, str>> {
        let t = self.string()?;
        if t.escaped {
            let quoted = &self.b[t.start - 1..t.end + 1];
            return serde_json::from_slice::<String>(quoted)
                .ok()
                .map(Cow::Owned);
        }
        let raw = self.raw(t);
        // SAFETY: `scan_string` accepted these bytes: ASCII, or checked with `from_utf8`.
        Some(Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(raw) }))
    }

    /// `null` (`Some(None)`) or a string value.
    pub fn opt_str(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.is_null() {
            return Some(None);
        }
        self.str_value().map(Some)
    }

    /// A number token: `Some(Some(n))` for a non-negative integer that fits `u64` (what
    /// `Value::as_u64` accepts), `Some(None)` for another valid number well inside `f64`'s range.
    #[inline]
    pub fn number(&mut self) -> Option<Option<u64>> {
        self.ws();
        scan_number(self.b, &mut self.i)
    }

    /// A count: a non-negative integer that fits `u64`, or `None` (serde_json decides).
    #[inline]
    pub fn count(&mut self) -> Option<u64> {
        self.number()?
    }

    /// `null` (`Some(None)`) or a count.
    pub fn opt_count(&mut self) -> Option<Option<u64>> {
        if self.is_null() {
            return Some(None);
        }
        self.count().map(Some)
    }

    /// A key and its colon: its raw bytes, or `None` when escaped (serde_json compares
    /// unescaped keys).
    #[inline]
    pub fn key(&mut self) -> Option<&'a [u8]> {
        let k = self.string()?;
        self.eat(b':')?;
        (!k.escaped).then(|| self.raw(k))
    }

    /// Consumes the opening bracket (already peeked) and counts the depth.
    #[inline]
    fn enter(&mut self) -> Option<()> {
        self.i += 1;
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// Consumes `open` and counts the depth.
    #[inline]
    fn open(&mut self, open: u8) -> Option<()> {
        self.eat(open)?;
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// Any JSON value, validated and skipped; its strings go to [`Mode::free`].
    pub fn skip(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.free_string(),
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

    /// An object whose keys `field` reads (it answers whether it knew the key); the values of
    /// other keys are skipped.
    #[inline]
    pub fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<bool>,
    ) -> Option<()> {
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

    /// An object whose keys in `names` `on` reads, by position (a key given twice is refused:
    /// the last one wins in serde_json); the values of other keys are skipped. Answers the keys
    /// seen, as bits by position.
    #[inline]
    pub fn fields(
        &mut self,
        names: &[&[u8]],
        mut on: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<u32> {
        let mut seen = 0u32;
        self.object(|s, key| {
            let Some(at) = names.iter().position(|n| *n == key) else {
                return Some(false);
            };
            once(&mut seen, 1 << at)?;
            on(s, at)?;
            Some(true)
        })?;
        Some(seen)
    }

    /// An array whose items `item` reads.
    #[inline]
    pub fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
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
}

/// Marks `bit` in `seen`; `None` for a key given twice (the last one wins in serde_json, the
/// readers leave that to it).
#[inline]
pub(crate) fn once(seen: &mut u32, bit: u32) -> Option<()> {
    if *seen & bit != 0 {
        return None;
    }
    *seen |= bit;
    Some(())
}

/// One item inline, more in a `Vec`: the usual one candidate (choice) with one part costs no
/// allocation.
#[derive(Debug, PartialEq)]
pub(crate) struct List<T> {
    first: Option<T>,
    rest: Vec<T>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<T> List<T> {
    pub fn push(&mut self, item: T) {
        if self.first.is_none() {
            self.first = Some(item);
        } else {
            self.rest.push(item);
        }
    }

    /// A new default item, filled in place (no move of a large item).
    pub fn push_default(&mut self) -> &mut T
    where
        T: Default,
    {
        if self.first.is_none() {
            self.first.insert(T::default())
        } else {
            self.rest.push(T::default());
            self.rest.last_mut().expect("just pushed")
        }
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        match i {
            0 => self.first.as_mut(),
            _ => self.rest.get_mut(i - 1),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.first.iter().chain(self.rest.iter())
    }
}

/// A JSON array read item by item into a [`List`] (the serde typed readings' counterpart).
pub(crate) struct Items<T>(pub List<T>);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Items<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = Items<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut list = List::default();
                while let Some(item) = seq.next_element()? {
                    list.push(item);
                }
                Ok(Items(list))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// A kept JSON text with the values a scan read cut out: its fixed bytes, and where each value
/// (a hole) was, with a tag saying what it holds. The stream layouts of Gemini and Qwen: a later
/// text with the same fixed bytes around tokens its reader accepts is read from those tokens
/// only (see each layout's doc for why that reads as the scan would).
#[derive(Debug)]
pub(crate) struct Template<H> {
    /// The fixed bytes, concatenated (empty: nothing kept).
    fixed: Vec<u8>,
    /// Each hole: where it is cut in `fixed`, and its tag.
    holes: Vec<(u32, H)>,
}

impl<H> Default for Template<H> {
    fn default() -> Self {
        Self {
            fixed: Vec::new(),
            holes: Vec::new(),
        }
    }
}

impl<H: Copy> Template<H> {
    /// Largest fixed part kept: the memory a stream's layout holds.
    pub(crate) const MAX_FIXED: usize = 1024;

    pub(crate) fn is_empty(&self) -> bool {
        self.fixed.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.fixed.clear();
        self.holes.clear();
    }

    /// Memory held between texts.
    pub(crate) fn held_capacity(&self) -> usize {
        self.fixed.capacity() + self.holes.capacity() * std::mem::size_of::<(u32, H)>()
    }

    /// Keeps `data` with its `holes` (`(start, end, tag)`, in text order) cut out; `false`, with
    /// nothing kept, when the fixed bytes would exceed [`Self::MAX_FIXED`] or `data` outgrows
    /// `u32` offsets. `max_holes` sizes the one allocation of the hole list.
    pub(crate) fn keep(
        &mut self,
        data: &[u8],
        holes: impl Iterator<Item = (u32, u32, H)> + Clone,
        max_holes: usize,
    ) -> bool {
        self.clear();
        let open: usize = holes.clone().map(|(s, e, _)| (e - s) as usize).sum();
        if u32::try_from(data.len()).is_err() || data.len() - open > Self::MAX_FIXED {
            return false;
        }
        if self.fixed.capacity() == 0 {
            self.fixed.reserve_exact(Self::MAX_FIXED);
            self.holes.reserve_exact(max_holes);
        }
        let mut from = 0;
        for (start, end, tag) in holes {
            self.fixed.extend_from_slice(&data[from..start as usize]);
            self.holes.push((self.fixed.len() as u32, tag));
            from = end as usize;
        }
        self.fixed.extend_from_slice(&data[from..]);
        true
    }

    /// Walks `data` along the kept text: every fixed run must be equal, and at each hole `read`
    /// takes the token at the cursor. `None` at the first difference, or when nothing is kept.
    #[inline(always)]
    pub(crate) fn walk<'a>(
        &self,
        data: &'a [u8],
        mut read: impl FnMut(&mut Cursor<'a>, H) -> Option<()>,
    ) -> Option<()> {
        if self.fixed.is_empty() {
            return None;
        }
        let f = &self.fixed[..];
        let mut s = Cursor::plain(data);
        let mut from = 0;
        for &(at, tag) in &self.holes {
            let at = at as usize;
            let fixed = &f[from..at];
            if data.get(s.i..s.i + fixed.len())? != fixed {
                return None;
            }
            s.i += fixed.len();
            from = at;
            read(&mut s, tag)?;
        }
        (data.get(s.i..)? == &f[from..]).then_some(())
    }
}

/// The closing quote of a string whose content from `i` is plain ASCII (no escape, no control
/// byte), eight bytes at a time; `None` for anything else (the full string rules decide).
#[inline(always)]
pub(crate) fn plain_string_end(d: &[u8], mut i: usize) -> Option<usize> {
    while let Some(chunk) = d.get(i..i + 8) {
        let m = special8(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        if m != 0 {
            i += (m.trailing_zeros() / 8) as usize;
            return (d[i] == b'"').then_some(i);
        }
        i += 8;
    }
    loop {
        match *d.get(i)? {
            b'"' => return Some(i),
            b'\\' | 0..=0x1f | 0x80.. => return None,
            _ => i += 1,
        }
    }
}

/// A string token from its opening quote at `i` (whitespace already skipped).
///
/// Inline, the usual string: plain ASCII whose closing quote is the first special byte of its
/// eight-byte words (keys and short values, no call); anything else (escapes, non-ASCII, the
/// last bytes of the text) takes [`string_rest`] from the opening quote.
#[inline(always)]
pub(crate) fn scan_string(b: &[u8], i: &mut usize) -> Option<Token> {
    if b.get(*i) != Some(&b'"') {
        return None;
    }
    let start = *i + 1;
    let mut j = start;
    while let Some(chunk) = b.get(j..j + 8) {
        let m = special8(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        if m != 0 {
            j += (m.trailing_zeros() / 8) as usize;
            if b[j] == b'"' {
                *i = j + 1;
                return Some(Token {
                    start,
                    end: j,
                    escaped: false,
                });
            }
            break;
        }
        j += 8;
    }
    string_rest(b, i, start)
}

/// [`scan_string`] in full, from the content's start (`i` at the opening quote). The index
/// moves on in a local (not through `i`) so the loop keeps it in a register.
#[inline(never)]
pub(crate) fn string_rest(b: &[u8], i: &mut usize, start: usize) -> Option<Token> {
    let mut j = start;
    let mut escaped = false;
    let mut non_ascii = false;
    loop {
        // Plain bytes eight at a time; the lowest flagged byte of a word is exact.
        while let Some(chunk) = b.get(j..j + 8) {
            let m = special8(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
            if m != 0 {
                j += (m.trailing_zeros() / 8) as usize;
                break;
            }
            j += 8;
        }
        match *b.get(j)? {
            b'"' => {
                *i = j + 1;
                // serde_json validates every string's UTF-8 (text outside strings is ASCII).
                if non_ascii {
                    std::str::from_utf8(&b[start..j]).ok()?;
                }
                return Some(Token {
                    start,
                    end: j,
                    escaped,
                });
            }
            b'\\' => {
                escaped = true;
                escape(b, &mut j)?;
            }
            0..=0x1f => return None, // serde_json refuses control characters in strings
            0x80.. => {
                non_ascii = true;
                j += 1;
            }
            _ => j += 1,
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

/// A number token at `i` (whitespace already skipped), see [`Cursor::number`].
fn scan_number(b: &[u8], i: &mut usize) -> Option<Option<u64>> {
    let peek = |j: usize| b.get(j).copied();
    let mut j = *i;
    let neg = peek(j) == Some(b'-');
    if neg {
        j += 1;
    }
    let int_start = j;
    // The integer part's value, exact while it fits u64 (checked below by its length).
    let mut value = 0u64;
    match peek(j)? {
        b'0' => j += 1,
        b'1'..=b'9' => {
            while let Some(d @ b'0'..=b'9') = peek(j) {
                value = value.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                j += 1;
            }
        }
        _ => return None,
    }
    let int_len = j - int_start;
    // Nineteen digits always fit u64; twenty fit up to u64::MAX (same length: compared as
    // text); more never do. (An integer beyond u64 becomes an f64 in serde_json: valid, but
    // not `as_u64`.)
    let fits = int_len < 20 || (int_len == 20 && b[int_start..j] <= b"18446744073709551615"[..]);
    let mut integral = !neg;
    if peek(j) == Some(b'.') {
        j += 1;
        integral = false;
        let from = j;
        while let Some(b'0'..=b'9') = peek(j) {
            j += 1;
        }
        if j == from {
            return None;
        }
    }
    if let Some(b'e' | b'E') = peek(j) {
        j += 1;
        integral = false;
        if let Some(b'+' | b'-') = peek(j) {
            j += 1;
        }
        let from = j;
        while let Some(b'0'..=b'9') = peek(j) {
            j += 1;
        }
        // Large exponents (overflow is an error in serde_json) go to serde_json.
        if j == from || j - from > 2 {
            return None;
        }
    }
    if int_len > 100 {
        return None;
    }
    *i = j;
    Some((integral && fits).then_some(value))
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
