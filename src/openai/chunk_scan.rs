//! The stream fast path of the OpenAI family: decides, without building a `serde_json::Value`,
//! whether one event's data is a chunk that `openai::chunk_is_conformant` would accept and that
//! carries nothing the translator must act on (no error, no usage object, no `base_resp`, no
//! `x_groq`), so its bytes can be forwarded as they are.
//!
//! The scanner is a validating, allocation-free walk of the JSON text. It is conservative: it
//! answers `None` ("take the full parse") for anything it is not sure the full parse would
//! forward unchanged, e.g. escaped keys, duplicate keys it looks at, numbers near `f64`'s range,
//! deep nesting, lone surrogate escapes. So the full parse stays the reference for every
//! behaviour, and the fast path only ever skips work whose outcome is already known.

use super::json_scan::{once, plain_string_end, string_rest, Cursor, Mode, Token as Str};
use super::FINISH_REASONS;
use crate::usage::Usage;

/// What the translator needs from a chunk the fast path accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConformantChunk<'a> {
    /// The chunk's `id` (non-empty, no escapes, so the raw bytes are the string).
    pub id: &'a str,
    /// Some choice carries a finish reason.
    pub has_finish: bool,
}

/// Accepts `data` (one event's data, trimmed, one line) when it is a conformant OpenAI chunk
/// with `usage` absent or `null` and no `error`, `base_resp` or `x_groq` key. See the module doc.
pub fn scan_conformant_chunk(data: &[u8]) -> Option<ConformantChunk<'_>> {
    whole(&mut scanner(data, false))
}

/// Free strings a layout remembers; later ones are compared as fixed bytes.
const MAX_FREE: usize = 8;

/// Largest chunk kept as a layout: the memory a stream's scanner holds.
pub const LAYOUT_MAX_BYTES: usize = 1024;

/// [`scan_conformant_chunk`] for the events of one stream, which mostly repeat one layout: the
/// chunks of a stream differ in their text and little else. The last accepted chunk is kept with
/// the spans of its *free* strings, those whose content the scan only validates (the delta's
/// `content`, `system_fingerprint`, string values of keys it does not look at). A chunk that has
/// the same bytes outside those spans, and valid strings inside them, is one the scan accepts
/// with the same outcome: the scan reads the same tokens in the same order, and what it decides
/// does not depend on those strings' contents. So only the differing strings are validated, with
/// the scan's own string rules; the rest is compared. Anything else takes the scan, and a chunk
/// it accepts becomes the layout.
#[derive(Debug, Default)]
pub struct ChunkScanner {
    /// The layout's bytes (empty: none). An accepted chunk is UTF-8 (the scan validates every
    /// string, and the JSON around them is ASCII), so the id can be handed out from here.
    prev: String,
    /// Its free strings' contents (between the quotes), in order.
    free: [(u32, u32); MAX_FREE],
    n_free: usize,
    /// Its `id` string's content; never inside a free string.
    id: (u32, u32),
    has_finish: bool,
}

impl ChunkScanner {
    /// What [`scan_conformant_chunk`] answers for `data`.
    pub fn scan<'s>(&'s mut self, data: &'s [u8]) -> Option<ConformantChunk<'s>> {
        self.scan_repeat(data).map(|(chunk, _)| chunk)
    }

    /// [`ChunkScanner::scan`], and whether the chunk has the layout of the chunk this scanner
    /// accepted last (so the same id, byte for byte: no accepted chunk is left out of the
    /// layout but it forgets the layout).
    pub fn scan_repeat<'s>(&'s mut self, data: &'s [u8]) -> Option<(ConformantChunk<'s>, bool)> {
        if self.same_layout(data) {
            let chunk = ConformantChunk {
                id: &self.prev[self.id.0 as usize..self.id.1 as usize],
                has_finish: self.has_finish,
            };
            return Some((chunk, true));
        }
        let mut s = scanner(data, true);
        let chunk = whole(&mut s)?;
        self.prev.clear();
        if data.len() <= LAYOUT_MAX_BYTES {
            if let Ok(text) = std::str::from_utf8(data) {
                if self.prev.capacity() == 0 {
                    self.prev.reserve_exact(LAYOUT_MAX_BYTES);
                }
                self.prev.push_str(text);
                self.free = s.mode.free;
                self.n_free = s.mode.n_free;
                let at = chunk.id.as_ptr() as usize - data.as_ptr() as usize;
                self.id = (at as u32, (at + chunk.id.len()) as u32);
                self.has_finish = chunk.has_finish;
            }
        }
        Some((chunk, false))
    }

    /// Memory held (the layout's buffer).
    pub fn held_capacity(&self) -> usize {
        self.prev.capacity()
    }

    /// Whether `d` has the layout's bytes outside its free strings and valid strings in them
    /// (see the type's doc). Its id is then the layout's: the same bytes.
    #[inline]
    fn same_layout(&self, d: &[u8]) -> bool {
        let t = self.prev.as_bytes();
        if t.is_empty() {
            return false;
        }
        let (mut ti, mut di) = (0, 0);
        for &(start, end) in &self.free[..self.n_free] {
            let (start, end) = (start as usize, end as usize);
            // The fixed bytes up to and with the free string's opening quote.
            let fixed = &t[ti..start];
            if d.get(di..di + fixed.len()) != Some(fixed) {
                return false;
            }
            di += fixed.len();
            match plain_string_end(d, di) {
                Some(end) => di = end,
                None => {
                    // Escapes or non-ASCII: the scan's own string rules, from the opening quote.
                    let mut at = di - 1;
                    match string_rest(d, &mut at, di) {
                        Some(str) => di = str.end,
                        None => return false,
                    }
                }
            }
            ti = end;
        }
        d.get(di..) == Some(&t[ti..])
    }
}

/// The scan's [`Mode`]: a raw `\n` is not whitespace (an event whose data spans lines, the only
/// place one can be, is re-serialised by the full parse, so the fast path never accepts one), and
/// the free strings are noted when `record` (see [`ChunkScanner`]).
struct Layout {
    record: bool,
    free: [(u32, u32); MAX_FREE],
    n_free: usize,
}

impl Mode for Layout {
    const NL: bool = false;

    #[inline]
    fn free(&mut self, s: Str) {
        if self.record && self.n_free < MAX_FREE {
            self.free[self.n_free] = (s.start as u32, s.end as u32);
            self.n_free += 1;
        }
    }
}

type Scanner<'a> = Cursor<'a, Layout>;

fn scanner(b: &[u8], record: bool) -> Scanner<'_> {
    Cursor::new(
        b,
        Layout {
            record,
            free: [(0, 0); MAX_FREE],
            n_free: 0,
        },
    )
}

// Top-level keys the scan looks at, as bits (a second occurrence sends the event to the full
// parse, where the last one wins).
const K_ID: u32 = 1;
const K_OBJECT: u32 = 1 << 1;
const K_CREATED: u32 = 1 << 2;
const K_MODEL: u32 = 1 << 3;
const K_FINGERPRINT: u32 = 1 << 4;
const K_USAGE: u32 = 1 << 5;
const K_CHOICES: u32 = 1 << 6;
// Choice keys.
const C_INDEX: u32 = 1;
const C_DELTA: u32 = 1 << 1;
const C_FINISH: u32 = 1 << 2;

/// The whole of the data is one accepted chunk. Not inlined: it would crowd the layout check
/// in [`ChunkScanner::scan`], the stream's usual path.
#[inline(never)]
fn whole<'a>(s: &mut Scanner<'a>) -> Option<ConformantChunk<'a>> {
    let chunk = top(s)?;
    s.at_end().then_some(chunk)
}

/// A chunk's top-level keys both scans read, in the order of the `K_` bits; the translator acts
/// on the last three (errors, usage elsewhere): full parse.
const TOP_KEYS: [&[u8]; 10] = [
    b"id",
    b"object",
    b"created",
    b"model",
    b"system_fingerprint",
    b"usage",
    b"choices",
    b"error",
    b"base_resp",
    b"x_groq",
];

fn top<'a>(s: &mut Scanner<'a>) -> Option<ConformantChunk<'a>> {
    let mut id = None;
    let mut has_finish = false;
    let seen = s.fields(&TOP_KEYS, |s, at| {
        match 1 << at {
            K_ID => {
                let v = s.string()?;
                if v.escaped || v.start == v.end {
                    return None;
                }
                id = Some(std::str::from_utf8(s.raw(v)).ok()?);
            }
            K_OBJECT => chunk_object(s)?,
            K_CREATED => positive_created(s)?,
            K_MODEL => {
                // Any escape stands for at least one character: raw non-empty is enough.
                let v = s.string()?;
                if v.start == v.end {
                    return None;
                }
            }
            K_FINGERPRINT => s.free_string()?,
            K_USAGE => {
                // A usage object is read and moved by the translator: full parse.
                if !s.is_null() {
                    return None;
                }
            }
            K_CHOICES => has_finish = choices(s)?,
            _ => return None,
        }
        Some(())
    })?;
    let required = K_ID | K_OBJECT | K_CREATED | K_MODEL | K_CHOICES;
    (seen & required == required).then(|| ConformantChunk {
        id: id.expect("seen"),
        has_finish,
    })
}

/// What the translator needs from a usage chunk the fast path accepts (see [`scan_usage_chunk`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageChunk<'a> {
    /// The chunk's `id` (non-empty, no escapes).
    pub id: &'a str,
    /// What `Usage::from_openai` reads from its `usage` object.
    pub usage: Usage,
    /// Where the `usage` object is in the data (the full path writes `Usage::to_json` there).
    usage_at: (usize, usize),
}

impl UsageChunk<'_> {
    /// The chunk as the full path writes it: `data` (compact, see [`scan_usage_chunk`]) with its
    /// usage object in `Usage::to_json`'s form.
    pub fn write(&self, data: &[u8], out: &mut Vec<u8>) {
        let (start, end) = self.usage_at;
        out.extend_from_slice(&data[..start]);
        self.usage.write_json(out);
        out.extend_from_slice(&data[end..]);
    }
}

/// Accepts `data` (one event's data, trimmed) when it is the usage chunk of `include_usage`
/// (`"choices":[]` and a `usage` object with counts) in a form the full path writes back as it
/// is but for the usage object: compact, no escapes outside the usage object, every key once,
/// `id`, `object`, `created` and `model` as conformant chunks have them, other values plain
/// strings, counts or literals, no `error`, `base_resp` or `x_groq`. The full path parses it,
/// normalises nothing else (every field it would fill is there), rewrites the usage with
/// `Usage::to_json` in place and serialises: [`UsageChunk::write`]'s bytes.
pub fn scan_usage_chunk(data: &[u8]) -> Option<UsageChunk<'_>> {
    let mut s = scanner(data, false);
    let chunk = usage_top(&mut s)?;
    let (start, end) = chunk.usage_at;
    (s.at_end() && compact(&data[..start]) && compact(&data[end..])).then_some(chunk)
}

/// No whitespace outside strings. The bytes outside the usage object have no escapes, so every
/// quote opens or closes a string.
fn compact(b: &[u8]) -> bool {
    // Usually no byte is whitespace at all: one pass without branches settles it.
    if !b.iter().fold(false, |any, &c| any | (c <= b' ')) {
        return true;
    }
    let mut in_string = false;
    for &c in b {
        match c {
            b'"' => in_string = !in_string,
            b' ' | b'\t' | b'\r' | b'\n' if !in_string => return false,
            _ => {}
        }
    }
    true
}

/// Keys other than the named ones a usage chunk may have (`service_tier`, `obfuscation`, ...);
/// more goes to the full parse.
const MAX_OTHER_KEYS: usize = 8;

fn usage_top<'a>(s: &mut Scanner<'a>) -> Option<UsageChunk<'a>> {
    let (mut id, mut usage, mut usage_at) = (None, None, (0, 0));
    let mut seen = 0u32;
    // Unnamed keys, to refuse a repeated one (the full parse would keep its first place with
    // its last value).
    let mut others: [&[u8]; MAX_OTHER_KEYS] = [&[]; MAX_OTHER_KEYS];
    let mut n_others = 0;
    s.object(|s, key| {
        let Some(at) = TOP_KEYS.iter().position(|n| *n == key) else {
            if n_others == MAX_OTHER_KEYS || others[..n_others].contains(&key) {
                return None;
            }
            others[n_others] = key;
            n_others += 1;
            plain_value(s)?;
            return Some(true);
        };
        once(&mut seen, 1 << at)?;
        match 1 << at {
            K_ID | K_MODEL | K_FINGERPRINT => {
                // Written back as they are: no escapes; `id` and `model` non-empty (else
                // filled in), `system_fingerprint` a string (a null one is dropped).
                let v = s.string()?;
                if v.escaped || (1 << at != K_FINGERPRINT && v.start == v.end) {
                    return None;
                }
                if 1 << at == K_ID {
                    id = Some(std::str::from_utf8(s.raw(v)).ok()?);
                }
            }
            K_OBJECT => chunk_object(s)?,
            K_CREATED => positive_created(s)?,
            K_USAGE => {
                s.ws();
                let start = s.i;
                usage = Some(usage_object(s)?);
                usage_at = (start, s.i);
            }
            // Only an empty array.
            K_CHOICES => s.array(|_| None)?,
            _ => return None,
        }
        Some(true)
    })?;
    let required = K_ID | K_OBJECT | K_CREATED | K_MODEL | K_CHOICES | K_USAGE;
    (seen & required == required).then(|| UsageChunk {
        id: id.expect("seen"),
        usage: usage.expect("seen"),
        usage_at,
    })
}

/// A value serialised back as it is: a string without escapes, a count, `true`, `false`, `null`.
fn plain_value(s: &mut Scanner<'_>) -> Option<()> {
    s.ws();
    match s.peek()? {
        b'"' => (!s.string()?.escaped).then_some(()),
        b't' => s.literal(b"true"),
        b'f' => s.literal(b"false"),
        b'n' => s.literal(b"null"),
        _ => s.count().map(drop),
    }
}

/// What `Usage::from_openai` reads from a usage object (`None` when it reads nothing, or for
/// anything the full parse should decide).
fn usage_object(s: &mut Scanner<'_>) -> Option<Usage> {
    let mut n = [None; 5];
    let names: [&[u8]; 5] = [
        b"prompt_tokens",
        b"completion_tokens",
        b"total_tokens",
        b"prompt_tokens_details",
        b"completion_tokens_details",
    ];
    s.fields(&names, |s, at| {
        n[at] = match at {
            0..=2 => as_u64(s)?,
            3 => detail(s, b"cached_tokens")?,
            _ => detail(s, b"reasoning_tokens")?,
        };
        Some(())
    })?;
    Some(
        Usage::reported(n[0], n[1], n[2])?
            .with_cached(n[3])
            .with_reasoning(n[4]),
    )
}

/// Any value; its `Value::as_u64`.
fn as_u64(s: &mut Scanner<'_>) -> Option<Option<u64>> {
    s.ws();
    match s.peek()? {
        b'-' | b'0'..=b'9' => s.number(),
        _ => s.skip().map(|()| None),
    }
}

/// Any value; the `as_u64` of its member `inner` when it is an object.
fn detail(s: &mut Scanner<'_>, inner: &[u8]) -> Option<Option<u64>> {
    s.ws();
    if s.peek()? != b'{' {
        return s.skip().map(|()| None);
    }
    let mut got = None;
    s.fields(&[inner], |s, _| {
        got = as_u64(s)?;
        Some(())
    })?;
    Some(got)
}

/// A non-empty array of conformant choices; returns whether one has a finish reason.
fn choices(s: &mut Scanner<'_>) -> Option<bool> {
    let mut any_finish = false;
    let mut n = 0;
    s.array(|s| {
        any_finish |= choice(s)?;
        n += 1;
        Some(())
    })?;
    (n > 0).then_some(any_finish)
}

fn choice(s: &mut Scanner<'_>) -> Option<bool> {
    let mut finish = false;
    // In the order of the `C_` bits; a usage object in a choice: full parse.
    let names: [&[u8]; 4] = [b"index", b"delta", b"finish_reason", b"usage"];
    let seen = s.fields(&names, |s, at| {
        match 1 << at {
            C_INDEX => {
                s.number()??;
            }
            C_DELTA => delta(s)?,
            C_FINISH => {
                if !s.is_null() {
                    let r = s.string()?;
                    let r = s.raw(r);
                    if !FINISH_REASONS.iter().any(|f| f.as_bytes() == r) {
                        return None;
                    }
                    finish = true;
                }
            }
            _ => return None,
        }
        Some(())
    })?;
    let required = C_INDEX | C_DELTA | C_FINISH;
    (seen & required == required).then_some(finish)
}

/// A delta object whose `content`, if any, is a string or null.
fn delta(s: &mut Scanner<'_>) -> Option<()> {
    s.fields(&[b"content"], |s, _| {
        if !s.is_null() {
            s.free_string()?;
        }
        Some(())
    })
    .map(drop)
}

/// `object`, which must be `chat.completion.chunk` (as the full parse requires of a chunk).
fn chunk_object(s: &mut Scanner<'_>) -> Option<()> {
    let v = s.string()?;
    (s.raw(v) == b"chat.completion.chunk").then_some(())
}

/// `created`, which must be a positive integer (else the full parse fills it in).
fn positive_created(s: &mut Scanner<'_>) -> Option<()> {
    matches!(s.number()?, Some(c) if c > 0).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::{chunk_is_conformant, error_in_success_body, parse_event};
    use crate::testutil::{push_random_string_content, random_structural_edit};
    use crate::usage::Usage;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use serde_json::Value;

    /// What the full parse in `CompatTranslator::on_event` decides for the same data: `Some` when
    /// it forwards the bytes unchanged with no usage (the only case the fast path may take).
    fn reference(data: &[u8]) -> Option<(String, bool)> {
        let v = parse_event(data).ok()?;
        let obj = v.as_object()?;
        if error_in_success_body(obj).is_some() || obj.contains_key("error") {
            return None;
        }
        let choices = obj.get("choices").and_then(Value::as_array);
        if obj.get("usage").is_some_and(Value::is_object) && choices.is_some_and(|c| !c.is_empty())
        {
            return None;
        }
        if data.contains(&b'\n') || !chunk_is_conformant(obj) {
            return None;
        }
        if obj.get("usage").is_some_and(|u| !u.is_null()) {
            return None;
        }
        let finish = choices?
            .iter()
            .any(|c| c.get("finish_reason").is_some_and(Value::is_string));
        Some((obj["id"].as_str()?.to_string(), finish))
    }

    fn fast(data: &str) -> Option<(String, bool)> {
        scan_conformant_chunk(data.as_bytes()).map(|c| (c.id.to_string(), c.has_finish))
    }

    const BASE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"hi"},"logprobs":null,"finish_reason":null}],"usage":null}"#;

    #[test]
    fn conformant_chunks_take_the_fast_path() {
        let accepted = [
            BASE.to_string(),
            BASE.replace(r#""finish_reason":null"#, r#""finish_reason":"stop""#),
            BASE.replace(r#","usage":null"#, ""),
            BASE.replace(r#""created":1700000000"#, r#""created":18446744073709551615"#),
            BASE.replace(r#""content":"hi""#, r#""role":"assistant","content":"","refusal":null"#),
            BASE.replace(r#""content":"hi""#, r#""content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\": 1.5e3}"}}]"#),
            // Escapes, non-ASCII and numbers of every shape inside values the scan skips.
            BASE.replace(r#""content":"hi""#, r#""content":"a\"b\\c\/\n\u00e9 \u4e2d — ü","x":[1,-2,0.5,-0.0,1E+5,2e-3,true,false,{}]"#),
            // `"usage"` inside a string value, and a usage object nested in an unknown field.
            BASE.replace(r#""content":"hi""#, r#""content":"\"usage\":{\"prompt_tokens\":1}""#),
            BASE.replace(r#""usage":null"#, r#""extra":{"usage":{"prompt_tokens":1}},"usage":null"#),
            // Whitespace between tokens (not `\n`) and two choices.
            " {\t\"id\" : \"c\" ,\r\"object\":\"chat.completion.chunk\", \"created\":1,\"model\":\"m\",\"choices\":[ {\"index\":0,\"delta\":{},\"finish_reason\":null} , {\"index\":1,\"delta\":{\"content\":\"x\"},\"finish_reason\":\"length\"} ] } ".to_string(),
        ];
        for data in &accepted {
            let got = fast(data);
            assert!(got.is_some(), "not accepted: {data}");
            assert_eq!(got, reference(data.as_bytes()), "{data}");
        }
        assert!(fast(&accepted[1]).unwrap().1);
        assert_eq!(fast(&accepted[0]).unwrap(), ("chatcmpl-1".into(), false));
    }

    /// Everything the translator must act on, or that the full parse refuses, goes to it.
    #[test]
    fn anything_else_takes_the_full_parse() {
        let refused = [
            BASE.replace(r#""usage":null"#, r#""usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}"#),
            BASE.replace(r#""choices":[{"index":0,"delta":{"content":"hi"},"logprobs":null,"finish_reason":null}]"#, r#""choices":[]"#),
            BASE.replace(r#""usage":null"#, r#""error":{"message":"boom"}"#),
            BASE.replace(r#""usage":null"#, r#""base_resp":{"status_code":0}"#),
            BASE.replace(r#""usage":null"#, r#""x_groq":{"id":"x"}"#),
            BASE.replace(r#""logprobs":null"#, r#""usage":{"total_tokens":3}"#),
            BASE.replace(r#""finish_reason":null"#, r#""finish_reason":"end_turn""#),
            BASE.replace(r#","finish_reason":null"#, ""),
            BASE.replace(r#""content":"hi""#, r#""content":[{"type":"text","text":"hi"}]"#),
            BASE.replace(r#""id":"chatcmpl-1""#, r#""id":"""#),
            BASE.replace(r#""id":"chatcmpl-1""#, r#""id":"chat\u0063mpl""#),
            BASE.replace(r#""model":"gpt-4o""#, r#""model":"""#),
            BASE.replace(r#""created":1700000000"#, r#""created":0"#),
            BASE.replace(r#""created":1700000000"#, r#""created":1.5"#),
            BASE.replace(r#""created":1700000000"#, r#""created":18446744073709551616"#),
            BASE.replace(r#""created":1700000000"#, r#""created":99999999999999999999"#),
            BASE.replace(r#""object":"chat.completion.chunk""#, r#""object":"chat.completion""#),
            BASE.replace(r#""system_fingerprint":"fp_1""#, r#""system_fingerprint":null"#),
            BASE.replace(r#""index":0"#, r#""index":-1"#),
            // Duplicate keys (the last wins in the full parse), escaped keys.
            BASE.replace(r#""usage":null"#, r#""usage":null,"id":"other""#),
            BASE.replace(r#""usage":null"#, r#""usage":null,"usage":{"total_tokens":1}"#),
            BASE.replace(r#""model""#, r#""mod\u0065l""#),
            // Malformed JSON: the full parse reports it.
            BASE.replace(r#""usage":null"#, r#""usage":nul"#),
            BASE.replace(r#""content":"hi""#, r#""content":"h\i""#),
            BASE.replace(r#""content":"hi""#, "\"content\":\"h\u{1}i\""),
            BASE.replace(r#""content":"hi""#, r#""content":"\ud800""#),
            BASE.replace(r#""content":"hi""#, r#""x":01,"content":"hi""#),
            BASE.replace(r#""content":"hi""#, r#""x":1e400,"content":"hi""#),
            BASE.replace(r#""content":"hi""#, r#""x":[1,],"content":"hi""#),
            format!("{BASE} x"),
            format!("[{BASE}]"),
            BASE.replace(r#","usage":null"#, ",\n\"usage\":null"),
            BASE[..BASE.len() - 1].to_string(),
            BASE.replace(r#""content":"hi""#, &format!(r#""x":{}1{},"content":"hi""#, "[".repeat(70), "]".repeat(70))),
        ];
        for data in &refused {
            assert_eq!(fast(data), None, "accepted: {data}");
        }
        assert!(scan_conformant_chunk(b"{\"id\":\"\xff\"}").is_none());
        // Invalid UTF-8 in a string the scan skips: serde_json refuses it, so must the scan.
        for bad in [
            &b"\xff"[..],
            b"\xc3",
            b"\xe4\xb8",
            b"\xed\xa0\x80",
            b"abcdefgh\xc3(",
        ] {
            let mut data = BASE.as_bytes().to_vec();
            let at = BASE.find("\"hi\"").unwrap() + 2;
            data.splice(at..at, bad.iter().copied());
            assert!(parse_event(&data).is_err());
            assert_eq!(scan_conformant_chunk(&data), None, "{data:?}");
        }
    }

    /// Random edits of conformant chunks: whatever the fast path accepts, the full parse forwards
    /// unchanged with the same id and finish.
    #[test]
    fn the_fast_path_agrees_with_the_full_parse_on_random_edits() {
        let seeds = [
            BASE.to_string(),
            BASE.replace(r#""finish_reason":null"#, r#""finish_reason":"tool_calls""#),
            BASE.replace(
                r#""content":"hi""#,
                r#""content":"\"usage\":{}","reasoning_content":"r\u00e9""#,
            ),
        ];
        let alphabet: &[u8] = b"{}[]\":,\\ \tnulltrue0123456789-+.eEabcdefu\x01\xc3\xa9";
        let mut rng = StdRng::seed_from_u64(13);
        let mut layouts = ChunkScanner::default();
        let (mut accepted, mut total) = (0, 0);
        for seed in &seeds {
            for _ in 0..20_000 {
                let mut b = seed.as_bytes().to_vec();
                crate::testutil::random_edits(&mut rng, &mut b, alphabet);
                total += 1;
                // The stream's scanner (layout of the last accepted edit) answers the same.
                assert_eq!(
                    layouts.scan(&b),
                    scan_conformant_chunk(&b),
                    "{}",
                    String::from_utf8_lossy(&b)
                );
                if let Some(c) = scan_conformant_chunk(&b) {
                    accepted += 1;
                    assert_eq!(
                        Some((c.id.to_string(), c.has_finish)),
                        reference(&b),
                        "{}",
                        String::from_utf8_lossy(&b)
                    );
                }
            }
        }
        // The edits are not all rejections: the comparison covers accepted variants too.
        assert!(accepted > total / 50, "{accepted} of {total}");
    }

    /// Chunks of one layout whose free strings take every kind of content: escapes of every kind
    /// at every offset modulo 8 (padding before them), raw control bytes, UTF-8 of every length
    /// across word boundaries, invalid and truncated UTF-8, lone surrogates, raw quotes and
    /// backslashes; sometimes a random edit anywhere, sometimes another layout. The stream's
    /// scanner answers what the stateless scan answers for every chunk, and what it accepts the
    /// full parse forwards unchanged with the same id and finish.
    #[test]
    fn layouts_agree_with_the_scan_on_varied_strings() {
        let seeds = [
            BASE.to_string(),
            BASE.replace(r#""finish_reason":null"#, r#""finish_reason":"stop""#),
            // OpenAI's per-chunk `obfuscation` padding after the choices.
            BASE.replace(r#","usage":null"#, r#","usage":null,"obfuscation":"aB3x""#),
            // Azure: content filter results before the delta (more free strings than kept), the
            // id last, after every free string.
            r#"{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}},"delta":{"content":"hi"},"finish_reason":null,"index":0,"logprobs":null}],"created":1700000000,"model":"gpt-4o","object":"chat.completion.chunk","system_fingerprint":"fp_x","extra":["a","b","c","d","e"],"id":"chatcmpl-9"}"#.to_string(),
            // Tool calls: the arguments are free, the names too (values the scan skips).
            BASE.replace(r#""content":"hi""#, r#""tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]"#),
        ];
        let mut rng = StdRng::seed_from_u64(8);
        let mut scanner = ChunkScanner::default();
        let (mut hits, mut accepted, mut total) = (0, 0, 0);
        let mut last_id: Option<String> = None;
        let mut seed = 0;
        for round in 0..60_000 {
            if rng.gen_range(0..200) == 0 {
                seed = rng.gen_range(0..seeds.len());
            }
            let text = seeds[seed].as_bytes();
            let mut probe = super::scanner(text, true);
            whole(&mut probe).expect("seeds are accepted");
            let probe = probe.mode;
            // Free strings get new contents (the first few, or all but one).
            let mut b = Vec::new();
            let mut at = 0;
            for &(start, end) in &probe.free[..probe.n_free] {
                b.extend_from_slice(&text[at..start as usize]);
                if rng.gen_bool(0.7) {
                    push_random_string_content(&mut rng, &mut b);
                } else {
                    b.extend_from_slice(&text[start as usize..end as usize]);
                }
                at = end as usize;
            }
            b.extend_from_slice(&text[at..]);
            if round % 10 == 0 {
                random_structural_edit(&mut rng, &mut b);
            }
            total += 1;
            let from_layout = scanner.same_layout(&b);
            let (got, repeat) = match scanner.scan_repeat(&b) {
                Some((c, repeat)) => (Some((c.id.to_string(), c.has_finish)), repeat),
                None => (None, false),
            };
            let want = scan_conformant_chunk(&b).map(|c| (c.id.to_string(), c.has_finish));
            assert_eq!(got, want, "{}", String::from_utf8_lossy(&b));
            // A repeat has the id of the chunk accepted last (the translator skips `identify`).
            assert_eq!(repeat, from_layout);
            if repeat {
                assert_eq!(
                    last_id.as_deref(),
                    got.as_ref().map(|g| g.0.as_str()),
                    "{}",
                    String::from_utf8_lossy(&b)
                );
            }
            if let Some((id, _)) = &got {
                last_id = Some(id.clone());
            }
            if from_layout {
                hits += 1;
                assert!(want.is_some(), "{}", String::from_utf8_lossy(&b));
            }
            if want.is_some() {
                accepted += 1;
                assert_eq!(want, reference(&b), "{}", String::from_utf8_lossy(&b));
            }
        }
        // Every path is taken often: the layout, the scan, refusals.
        assert!(hits > total / 3, "{hits} layout hits of {total}");
        assert!(
            accepted > hits + total / 50,
            "{accepted} accepted, {hits} hits"
        );
        assert!(accepted < total * 9 / 10, "{accepted} of {total} accepted");
    }

    /// What the full parse in `CompatTranslator::on_event` writes for a usage chunk it does not
    /// forward as it is: `Some` with the id it identifies with, the usage the writer records
    /// (`json_event` reads it back from the chunk) and the chunk's bytes, when it writes one.
    fn usage_reference(data: &[u8]) -> Option<(String, Usage, Vec<u8>)> {
        let mut v = parse_event(data).ok()?;
        let obj = v.as_object_mut()?;
        if error_in_success_body(obj).is_some() || obj.contains_key("error") {
            return None;
        }
        let choices = obj.get("choices").and_then(Value::as_array);
        if obj.get("usage").is_some_and(Value::is_object) && choices.is_some_and(|c| !c.is_empty())
        {
            return None;
        }
        if !data.contains(&b'\n') && chunk_is_conformant(obj) {
            return None;
        }
        let id = obj.get("id").and_then(Value::as_str)?.to_string();
        crate::openai::normalize_chunk(obj, &crate::openai::StreamMeta::new("m"))?;
        let usage = Usage::from_openai(&v["usage"])?;
        let mut out = Vec::new();
        crate::sse::write_data(&mut out, &v);
        let out = out[b"data: ".len()..out.len() - 2].to_vec();
        Some((id, usage, out))
    }

    fn fast_usage(data: &[u8]) -> Option<(String, Usage, Vec<u8>)> {
        let c = scan_usage_chunk(data)?;
        let mut out = Vec::new();
        c.write(data, &mut out);
        Some((c.id.to_string(), c.usage, out))
    }

    const USAGE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":25,"completion_tokens":46,"total_tokens":71}}"#;
    /// As api.openai.com sends it: details with more counts than the translator keeps,
    /// `service_tier`, and `obfuscation` after the usage.
    const USAGE_OPENAI: &str = r#"{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_2","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"obfuscation":"dqK8"}"#;

    #[test]
    fn usage_chunks_take_the_fast_path() {
        let accepted = [
            USAGE.to_string(),
            USAGE_OPENAI.to_string(),
            // Written back unchanged: the usage object already in `to_json`'s form.
            USAGE.replace(r#","system_fingerprint":"fp_1""#, ""),
            // Usage first, a missing total, details that are not objects or not counts, and
            // values of every kind inside the usage (rewritten anyway).
            r#"{"usage":{"completion_tokens":4,"prompt_tokens":3,"x":[1.5,"\u00e9",{"a":null}],"prompt_tokens_details":null,"completion_tokens_details":{"reasoning_tokens":-1}},"choices":[],"id":"c","object":"chat.completion.chunk","created":1,"model":"m","a":true,"b":false,"c":null,"d":7,"e":"é x"}"#.to_string(),
            USAGE.replace(r#""total_tokens":71"#, r#""total_tokens":71.0,"prompt_tokens_details":{"cached_tokens":18446744073709551615}"#),
            USAGE.replace(r#""prompt_tokens":25,"completion_tokens":46,"#, ""),
        ];
        for data in &accepted {
            let got = fast_usage(data.as_bytes());
            assert!(got.is_some(), "not accepted: {data}");
            assert_eq!(got, usage_reference(data.as_bytes()), "{data}");
        }
        let (_, u, out) = fast_usage(USAGE.as_bytes()).unwrap();
        assert_eq!(out, USAGE.as_bytes());
        assert_eq!(u, Usage::new(25, 46, Some(71)));
        let (_, u, _) = fast_usage(USAGE_OPENAI.as_bytes()).unwrap();
        assert_eq!((u.cached_tokens, u.reasoning_tokens), (Some(0), Some(0)));
        // Not a chunk the conformant scan takes.
        assert!(accepted.iter().all(|d| fast(d).is_none()));
    }

    #[test]
    fn unusual_usage_chunks_take_the_full_parse() {
        let refused = [
            USAGE.replace(
                r#""choices":[]"#,
                r#""choices":[{"index":0,"delta":{},"finish_reason":"stop"}]"#,
            ),
            USAGE.replace(r#""choices":[],"#, ""),
            USAGE.replace(
                r#""usage":{"prompt_tokens":25,"completion_tokens":46,"total_tokens":71}"#,
                r#""usage":{}"#,
            ),
            USAGE.replace(
                r#""usage":{"prompt_tokens":25,"completion_tokens":46,"total_tokens":71}"#,
                r#""usage":null"#,
            ),
            USAGE.replace(
                r#""usage":{"prompt_tokens":25,"completion_tokens":46,"total_tokens":71}"#,
                r#""usage":{"total_tokens":"71"}"#,
            ),
            USAGE.replace(
                r#""total_tokens":71"#,
                r#""total_tokens":71,"total_tokens":72"#,
            ),
            // An escaped key in the usage (serde_json compares unescaped keys).
            USAGE.replace(r#""total_tokens":71"#, r#""t\u006ftal_tokens":71"#),
            USAGE.replace(r#""choices":[]"#, r#""choices":[],"error":{"message":"x"}"#),
            USAGE.replace(
                r#""choices":[]"#,
                r#""choices":[],"base_resp":{"status_code":0}"#,
            ),
            USAGE.replace(r#""choices":[]"#, r#""choices":[],"x_groq":{"id":"x"}"#),
            USAGE.replace(r#""choices":[]"#, r#""choices":[],"id":"other""#),
            USAGE.replace(r#""choices":[]"#, r#""choices":[],"a":1,"a":2"#),
            USAGE.replace(r#""choices":[]"#, r#""choices":[],"a":{"b":1}"#),
            USAGE.replace(r#""choices":[]"#, r#""choices":[],"a":[]"#),
            USAGE.replace(r#""choices":[]"#, r#""choices":[],"a":-1"#),
            USAGE.replace(r#""choices":[]"#, r#""choices":[],"a":1.5"#),
            USAGE.replace(r#""choices":[]"#, r#""choices":[],"a":"\/""#),
            USAGE.replace(r#""choices":[]"#, r#""choices":[],"\u0061":1"#),
            USAGE.replace(r#""choices":[]"#, r#""choices":[ ]"#),
            USAGE.replace(r#""choices":[]"#, r#""choices": []"#),
            USAGE.replace(r#","usage""#, ",\n\"usage\""),
            USAGE.replace(r#""fp_1""#, "null"),
            USAGE.replace(r#""fp_1""#, r#""fp\u005f1""#),
            USAGE.replace(r#""chatcmpl-1""#, r#""""#),
            USAGE.replace(r#""gpt-4o""#, r#""""#),
            USAGE.replace(r#""created":1700000000"#, r#""created":0"#),
            USAGE.replace(r#""chat.completion.chunk""#, r#""chat.completion""#),
            USAGE.replace(r#""object":"chat.completion.chunk","#, ""),
            format!(
                r#"{{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,{}"#,
                &USAGE[1..]
            ),
            format!("{USAGE} "),
            USAGE[..USAGE.len() - 1].to_string(),
        ];
        for data in &refused {
            assert_eq!(fast_usage(data.as_bytes()), None, "accepted: {data}");
        }
    }

    /// Random edits of usage chunks: whatever the usage fast path accepts, the full parse writes
    /// with the same bytes, id and usage; and the conformant scan still refuses them.
    #[test]
    fn the_usage_fast_path_agrees_with_the_full_parse_on_random_edits() {
        let seeds = [
            USAGE.to_string(),
            USAGE_OPENAI.to_string(),
            USAGE.replace(r#""choices":[]"#, r#""choices":[],"a":"\u00e9 x","b":null"#),
        ];
        let alphabet: &[u8] = b"{}[]\":,\\ \tnulltrue0123456789-+.eEabcdefu_\x01\xc3\xa9";
        let mut rng = StdRng::seed_from_u64(21);
        let (mut accepted, mut total) = (0, 0);
        for seed in &seeds {
            for _ in 0..20_000 {
                let mut b = seed.as_bytes().to_vec();
                crate::testutil::random_edits(&mut rng, &mut b, alphabet);
                total += 1;
                if let Some(got) = fast_usage(&b) {
                    accepted += 1;
                    assert_eq!(
                        Some(got),
                        usage_reference(&b),
                        "{}",
                        String::from_utf8_lossy(&b)
                    );
                }
            }
        }
        assert!(accepted > total / 50, "{accepted} of {total}");
    }

    /// The layout is bounded, and a chunk larger than it still gets the scan's answer.
    #[test]
    fn the_layout_is_bounded() {
        let mut scanner = ChunkScanner::default();
        let big = BASE.replace("\"hi\"", &format!("\"{}\"", "x".repeat(LAYOUT_MAX_BYTES)));
        assert!(scanner.scan(big.as_bytes()).is_some());
        assert!(scanner.scan(big.as_bytes()).is_some());
        assert!(scanner.held_capacity() <= LAYOUT_MAX_BYTES);
        for i in 0..50 {
            let small = BASE.replace("\"hi\"", &format!("\"{}\"", "y".repeat(i * 30)));
            assert_eq!(
                scanner.scan(small.as_bytes()),
                scan_conformant_chunk(small.as_bytes())
            );
            assert!(scanner.held_capacity() <= LAYOUT_MAX_BYTES);
        }
        // An accepted chunk too large to be the layout forgets the one before: the next chunk
        // with that layout is no repeat (its id may not be the last accepted one's).
        let other = BASE.replace("\"hi\"", "\"z\"");
        assert!(scanner.scan_repeat(other.as_bytes()).unwrap().1);
        let big_other = big.replace(r#""id":""#, r#""id":"other-"#);
        assert!(!scanner.scan_repeat(big_other.as_bytes()).unwrap().1);
        assert!(!scanner.scan_repeat(other.as_bytes()).unwrap().1);
        assert!(scanner.scan_repeat(other.as_bytes()).unwrap().1);
    }
}
