//! Typed, borrowed views of Claude's most frequent stream events and of a buffered Message, read
//! without building a `serde_json::Value` (whose preserve_order maps and owned strings were most
//! of the cost of a `content_block_delta`).
//!
//! The event views are strict so that the `Value` path stays the reference for every behaviour:
//! every struct denies unknown fields, every field we do not use is still read as `Value` would
//! read it ([`Checked`]: numbers parsed, string escapes decoded, nesting counted), and a duplicate
//! key is a serde error. So a view parses only when `serde_json::from_slice::<Value>` would accept
//! the same bytes, and it sees exactly what the `Value` would hold; anything else (unknown fields,
//! other types, malformed JSON, invalid UTF-8) answers `None` and the caller takes the `Value`
//! path, which also words the errors. A buffered Message is scanned instead ([`message`]), under
//! the same rule.

use crate::json_write::{scan_plain, Copier};
use crate::openai::json_scan::Cursor;
use crate::typed_json::read;
use serde::Deserialize;
use std::borrow::Cow;

/// `Text`: a JSON string, borrowed from the input when it has no escapes; `Checked`: a value read
/// only to be validated.
pub(super) use crate::typed_json::{Checked, Str as Text};

/// A string field's text, `""` when absent or null (as `as_str().unwrap_or("")` reads a `Value`).
pub(super) fn text<'s>(t: &'s Option<Text<'_>>) -> &'s str {
    t.as_ref().map_or("", Text::as_str)
}

/// One stream event of the shapes `content_block_delta`, `content_block_stop` and `ping` have
/// (Anthropic's "Streaming Messages": `{"type", "index", "delta": {"type", ...}}`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Event<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Option<Text<'a>>,
    pub index: Option<u64>,
    #[serde(borrow)]
    pub delta: Option<BlockDelta<'a>>,
}

/// A content block delta: `text_delta`, `thinking_delta`, `input_json_delta`, `signature_delta`
/// or `citations_delta`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BlockDelta<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Option<Text<'a>>,
    #[serde(borrow)]
    pub text: Option<Text<'a>>,
    #[serde(borrow)]
    pub thinking: Option<Text<'a>>,
    #[serde(borrow)]
    pub partial_json: Option<Text<'a>>,
    #[allow(dead_code)] // read to be validated, not used
    pub signature: Option<Checked>,
    #[allow(dead_code)] // read to be validated, not used
    pub citation: Option<Checked>,
}

/// The typed view of one event's data, when it has one (see the module doc).
pub(super) fn event(data: &[u8]) -> Option<Event<'_>> {
    read(data)
}

/// A buffered reply (Anthropic's Message object) as the `Value` path reads it: its content blocks
/// already joined the way that path joins them (texts into one answer, thinking into one
/// reasoning text, tool_use blocks in order).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Message<'a> {
    pub id: Option<Cow<'a, str>>,
    pub model: Option<Cow<'a, str>>,
    pub stop_reason: Option<Cow<'a, str>>,
    /// The `text` blocks' texts, joined; `None` when there is no text block.
    pub text: Option<Cow<'a, str>>,
    /// The `thinking` blocks' texts, joined; `None` when there is no thinking block.
    pub thinking: Option<Cow<'a, str>>,
    pub tool_uses: Vec<ToolUse<'a>>,
    /// `usage` when it is an object: input, cache-write, cache-read and output tokens, each as
    /// `Value::as_u64` reads it.
    pub usage: Option<[Option<u64>; 4]>,
}

/// A `tool_use` block: id and name as given, `input` as OpenAI `arguments` (serde_json's compact
/// bytes of the value, `{}` when absent).
#[derive(Debug, PartialEq)]
pub(super) struct ToolUse<'a> {
    pub id: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    pub arguments: String,
}

/// The scanned view of a buffered reply, when it has one: an allocation-light walk of the text
/// (`json_scan::Cursor`, as Gemini's and Qwen's readings) instead of a serde reading, whose
/// per-key dispatch and string decoding were most of the reply's cost.
///
/// Conservative like those scans: `None` (take the `Value` path, which also words the errors) for
/// anything it is not sure `Value` reads the same way: escaped keys, a key it reads given twice,
/// a field it reads holding another type than it expects (strings may be `null`), numbers near
/// `f64`'s range, deep nesting, `\u` escapes of surrogates, an `error` key or `type: error`, a
/// missing `content` array, a block that is not an object, a tool input the canonical copy
/// declines (`json_write::Copier`: escaped or duplicate keys in it, say). Keys it does not read
/// are validated and skipped, as `Value` would keep and ignore them.
pub(super) fn message(body: &[u8]) -> Option<Message<'_>> {
    let mut s = Cursor::plain(body);
    let mut m = Message::default();
    let mut has_content = false;
    let names: [&[u8]; 7] = [
        b"id",
        b"type",
        b"model",
        b"content",
        b"stop_reason",
        b"usage",
        b"error",
    ];
    s.fields(&names, |s, at| {
        match at {
            0 => m.id = s.opt_str()?,
            // An error reply is the reference's to word.
            1 => {
                if s.opt_str()?.as_deref() == Some("error") {
                    return None;
                }
            }
            2 => m.model = s.opt_str()?,
            3 => {
                s.array(|s| block(s, &mut m))?;
                has_content = true;
            }
            4 => m.stop_reason = s.opt_str()?,
            5 => m.usage = if s.is_null() { None } else { Some(usage(s)?) },
            _ => return None,
        }
        Some(())
    })?;
    (has_content && s.at_end()).then_some(m)
}

/// One content block, joined into `m` as the `Value` path joins it.
fn block<'a>(s: &mut Cursor<'a>, m: &mut Message<'a>) -> Option<()> {
    let (mut kind, mut text, mut thinking, mut id, mut name) = (None, None, None, None, None);
    let mut input: Option<&'a [u8]> = None;
    let names: [&[u8]; 6] = [b"type", b"text", b"thinking", b"id", b"name", b"input"];
    s.fields(&names, |s, at| {
        match at {
            0 => kind = s.opt_str()?,
            1 => text = long_str(s)?,
            2 => thinking = long_str(s)?,
            3 => id = s.opt_str()?,
            4 => name = s.opt_str()?,
            _ => {
                s.ws();
                let start = s.i;
                s.skip()?;
                input = Some(&s.b[start..s.i]);
            }
        }
        Some(())
    })?;
    match kind.as_deref() {
        Some("text") => join(&mut m.text, text),
        Some("thinking") => join(&mut m.thinking, thinking),
        Some("tool_use") => m.tool_uses.push(ToolUse {
            id,
            name,
            arguments: match input {
                Some(v) => canonical(v)?,
                None => "{}".to_string(),
            },
        }),
        _ => {}
    }
    Some(())
}

/// [`Cursor::opt_str`] for the long texts of a reply: a plain string (no escapes, the usual
/// answer) is found with `json_write::scan_plain`, sixteen bytes a step; anything else is read
/// by the cursor from the same place.
fn long_str<'a>(s: &mut Cursor<'a>) -> Option<Option<Cow<'a, str>>> {
    s.ws();
    if s.peek() == Some(b'"') {
        let (end, non_ascii) = scan_plain(s.b, s.i + 1);
        if s.b.get(end) == Some(&b'"') {
            let raw = &s.b[s.i + 1..end];
            // serde_json checks every string's UTF-8; ASCII needs no check.
            let text = if non_ascii {
                std::str::from_utf8(raw).ok()?
            } else {
                // SAFETY: every byte is ASCII.
                unsafe { std::str::from_utf8_unchecked(raw) }
            };
            s.i = end + 1;
            return Some(Some(Cow::Borrowed(text)));
        }
    }
    s.opt_str()
}

/// Appends a block's text (`""` when it has none) to what the blocks before it gave.
fn join<'a>(to: &mut Option<Cow<'a, str>>, text: Option<Cow<'a, str>>) {
    let text = text.unwrap_or(Cow::Borrowed(""));
    match to {
        None => *to = Some(text),
        Some(t) => t.to_mut().push_str(&text),
    }
}

/// A JSON value's text as `Value::to_string` writes the value it parses to.
fn canonical(value: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(value.len());
    let mut c = Copier::new(value, &mut out)?;
    c.value()?;
    c.finish()?;
    String::from_utf8(out).ok()
}

/// A `usage` object's counts (see [`Message::usage`]); other keys are skipped.
fn usage(s: &mut Cursor<'_>) -> Option<[Option<u64>; 4]> {
    let mut u = [None; 4];
    let names: [&[u8]; 4] = [
        b"input_tokens",
        b"cache_creation_input_tokens",
        b"cache_read_input_tokens",
        b"output_tokens",
    ];
    s.fields(&names, |s, at| {
        u[at] = if s.is_null() { None } else { s.number()? };
        Some(())
    })?;
    Some(u)
}

/// Claude's other stream events (`message_start`, `content_block_start`, `message_delta`,
/// `message_stop`), read by a scan as [`message`] reads a buffered reply. They come a few per
/// stream, but each cost a `Value` parse (and a refused serde view first): a third of a short
/// stream's reading.
#[derive(Debug, PartialEq)]
pub(super) enum Bookend<'a> {
    MessageStart {
        id: Option<Cow<'a, str>>,
        model: Option<Cow<'a, str>>,
        usage: Option<[Option<u64>; 4]>,
    },
    /// `block`: `None` when the event has none (or `null`).
    BlockStart {
        index: u64,
        block: Option<StartBlock<'a>>,
    },
    MessageDelta {
        usage: Option<[Option<u64>; 4]>,
        stop_reason: Option<Cow<'a, str>>,
    },
    MessageStop,
}

/// A `content_block_start`'s block: its string fields as given, and `arguments` the tool input
/// as the `Value` path passes it on (serde_json's compact bytes of a non-empty object, else `""`).
#[derive(Debug, Default, PartialEq)]
pub(super) struct StartBlock<'a> {
    pub kind: Option<Cow<'a, str>>,
    pub text: Option<Cow<'a, str>>,
    pub thinking: Option<Cow<'a, str>>,
    pub id: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    pub arguments: String,
}

/// The scanned view of one of those events, its type from its `type` field, else `event_name`
/// (as the `Value` path decides). Conservative as [`message`]: `None` for any other event type,
/// for a field it reads holding another type than the `Value` path reads (strings may be
/// `null`; `index` any number, as `as_u64` then gives 0), for escaped or repeated keys, a tool
/// input the canonical copy declines, and for anything malformed; the `Value` path then decides.
pub(super) fn bookend<'a>(data: &'a [u8], event_name: &str) -> Option<Bookend<'a>> {
    let mut s = Cursor::plain(data);
    let (mut kind, mut index, mut message, mut block) = (None, None, None, None);
    let (mut stop_reason, mut usage_counts) = (None, None);
    let names: [&[u8]; 6] = [
        b"type",
        b"index",
        b"message",
        b"content_block",
        b"delta",
        b"usage",
    ];
    s.fields(&names, |s, at| {
        match at {
            0 => kind = s.opt_str()?,
            1 => index = if s.is_null() { None } else { s.number()? },
            2 => {
                message = if s.is_null() {
                    None
                } else {
                    Some(start_message(s)?)
                }
            }
            3 => {
                block = if s.is_null() {
                    None
                } else {
                    Some(start_block(s)?)
                }
            }
            4 => stop_reason = if s.is_null() { None } else { stop_delta(s)? },
            _ => usage_counts = if s.is_null() { None } else { Some(usage(s)?) },
        }
        Some(())
    })?;
    if !s.at_end() {
        return None;
    }
    Some(match kind.as_deref().unwrap_or(event_name) {
        "message_start" => {
            let (id, model, usage) = message.unwrap_or_default();
            Bookend::MessageStart { id, model, usage }
        }
        "content_block_start" => Bookend::BlockStart {
            index: index.unwrap_or(0),
            block,
        },
        "message_delta" => Bookend::MessageDelta {
            usage: usage_counts,
            stop_reason,
        },
        "message_stop" => Bookend::MessageStop,
        _ => return None,
    })
}

type StartMessage<'a> = (
    Option<Cow<'a, str>>,
    Option<Cow<'a, str>>,
    Option<[Option<u64>; 4]>,
);

/// `message_start`'s message: id, model and usage; other keys validated and skipped.
fn start_message<'a>(s: &mut Cursor<'a>) -> Option<StartMessage<'a>> {
    let mut m = StartMessage::default();
    s.fields(&[b"id", b"model", b"usage"], |s, at| {
        match at {
            0 => m.0 = s.opt_str()?,
            1 => m.1 = s.opt_str()?,
            _ => m.2 = if s.is_null() { None } else { Some(usage(s)?) },
        }
        Some(())
    })?;
    Some(m)
}

fn start_block<'a>(s: &mut Cursor<'a>) -> Option<StartBlock<'a>> {
    let mut b = StartBlock::default();
    let names: [&[u8]; 6] = [b"type", b"text", b"thinking", b"id", b"name", b"input"];
    s.fields(&names, |s, at| {
        match at {
            0 => b.kind = s.opt_str()?,
            1 => b.text = long_str(s)?,
            2 => b.thinking = long_str(s)?,
            3 => b.id = s.opt_str()?,
            4 => b.name = s.opt_str()?,
            _ => {
                s.ws();
                let start = s.i;
                s.skip()?;
                let raw = &s.b[start..s.i];
                if raw.first() == Some(&b'{') {
                    let text = canonical(raw)?;
                    if text != "{}" {
                        b.arguments = text;
                    }
                }
            }
        }
        Some(())
    })?;
    Some(b)
}

/// `message_delta`'s delta: its `stop_reason`; other keys validated and skipped.
fn stop_delta<'a>(s: &mut Cursor<'a>) -> Option<Option<Cow<'a, str>>> {
    let mut reason = None;
    s.fields(&[b"stop_reason"], |s, _| {
        reason = s.opt_str()?;
        Some(())
    })?;
    Some(reason)
}

/// The delta kinds [`canonical_delta`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeltaKind {
    Text,
    Thinking,
    InputJson,
}

const DELTA_HEAD: &[u8] = br#"{"type":"content_block_delta","index":"#;
const DELTA_KINDS: [(&[u8], DeltaKind); 3] = [
    (
        br#","delta":{"type":"text_delta","text":""#,
        DeltaKind::Text,
    ),
    (
        br#","delta":{"type":"thinking_delta","thinking":""#,
        DeltaKind::Thinking,
    ),
    (
        br#","delta":{"type":"input_json_delta","partial_json":""#,
        DeltaKind::InputJson,
    ),
];

/// A `content_block_delta` exactly as Anthropic writes it (compact, keys in the documented
/// order, `{"type":"content_block_delta","index":N,"delta":{"type":"text_delta","text":"..."}}`
/// and the same for `thinking` and `partial_json`): its kind, index and decoded string, read
/// with a few comparisons. The string may hold the short escapes (`\"`, `\\`, `\/`, `\b`, `\f`,
/// `\n`, `\r`, `\t`), decoded into `scratch`; anything else (a `\u` escape, a raw control
/// character, invalid UTF-8, any other spelling of the event) answers `None` and the serde views
/// read it. Whatever this accepts is one JSON object that `Value` reads the same way.
pub(super) fn canonical_delta<'s>(
    data: &'s [u8],
    scratch: &'s mut String,
) -> Option<(DeltaKind, u64, &'s str)> {
    let rest = data.strip_prefix(DELTA_HEAD)?;
    // The index: `0` or up to 19 digits without a leading zero (always below u64::MAX).
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let index = rest[..digits]
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let rest = &rest[digits..];
    let (kind, body) = DELTA_KINDS
        .iter()
        .find_map(|(head, kind)| rest.strip_prefix(*head).map(|b| (*kind, b)))?;
    let body = body.strip_suffix(br#""}}"#)?;
    // Plain text (no quote, backslash or control character), the usual delta: one vectorised
    // scan, and a UTF-8 check only when it saw non-ASCII bytes.
    let (end, non_ascii) = scan_plain(body, 0);
    if end == body.len() {
        let raw = if non_ascii {
            std::str::from_utf8(body).ok()?
        } else {
            // SAFETY: every byte is ASCII.
            unsafe { std::str::from_utf8_unchecked(body) }
        };
        return Some((kind, index, raw));
    }
    let raw = std::str::from_utf8(body).ok()?;
    let bytes = raw.as_bytes();
    // Plain text (the usual case) is returned as it is; escapes are decoded into `scratch`.
    let (mut start, mut i) = (0, 0);
    let mut decoded = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let c = match bytes.get(i + 1)? {
                    b'"' => '"',
                    b'\\' => '\\',
                    b'/' => '/',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    _ => return None,
                };
                if !decoded {
                    scratch.clear();
                    decoded = true;
                }
                // `i` and `i + 2` sit on ASCII bytes, so both are char boundaries.
                scratch.push_str(&raw[start..i]);
                scratch.push(c);
                i += 2;
                start = i;
            }
            // An unescaped quote ends the string early: not the canonical shape.
            b'"' => return None,
            b if b < 0x20 => return None,
            _ => i += 1,
        }
    }
    if !decoded {
        return Some((kind, index, raw));
    }
    scratch.push_str(&raw[start..]);
    Some((kind, index, scratch.as_str()))
}
