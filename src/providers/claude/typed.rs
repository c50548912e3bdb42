//! Typed, borrowed views of Claude's most frequent stream events and of a buffered Message, read
//! without building a `serde_json::Value` (whose preserve_order maps and owned strings were most
//! of the cost of a `content_block_delta`).
//!
//! The views are strict so that the `Value` path stays the reference for every behaviour: every
//! struct denies unknown fields, every field we do not use is still read as `Value` would read it
//! ([`Checked`]: numbers parsed, string escapes decoded, nesting counted), and a duplicate key is
//! a serde error. So a view parses only when `serde_json::from_slice::<Value>` would accept the
//! same bytes, and it sees exactly what the `Value` would hold; anything else (unknown fields,
//! other types, malformed JSON, invalid UTF-8) answers `None` and the caller takes the `Value`
//! path, which also words the errors.

use crate::typed_json::read;
use serde::Deserialize;

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

/// `usage` of a Message or a `message_delta` (Anthropic's Usage object).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MessageUsage {
    pub input_tokens: Option<u64>,
    pub cache_creation_input_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    #[allow(dead_code)] // read to be validated, not used
    pub cache_creation: Option<Checked>,
    #[allow(dead_code)] // read to be validated, not used
    pub server_tool_use: Option<Checked>,
    #[allow(dead_code)] // read to be validated, not used
    pub service_tier: Option<Checked>,
}

/// A buffered reply (Anthropic's Message object).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Message<'a> {
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(rename = "type", borrow)]
    pub kind: Option<Text<'a>>,
    #[allow(dead_code)] // read to be validated, not used
    pub role: Option<Checked>,
    #[serde(borrow)]
    pub model: Option<Text<'a>>,
    #[serde(borrow)]
    pub content: Vec<Block<'a>>,
    #[serde(borrow)]
    pub stop_reason: Option<Text<'a>>,
    #[allow(dead_code)] // read to be validated, not used
    pub stop_sequence: Option<Checked>,
    pub usage: Option<MessageUsage>,
    #[allow(dead_code)] // read to be validated, not used
    pub container: Option<Checked>,
}

/// A content block of a buffered reply; `tool_use` input stays for the `Value` path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Block<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Option<Text<'a>>,
    #[serde(borrow)]
    pub text: Option<Text<'a>>,
    #[serde(borrow)]
    pub thinking: Option<Text<'a>>,
    #[allow(dead_code)] // read to be validated, not used
    pub signature: Option<Checked>,
    #[allow(dead_code)] // read to be validated, not used
    pub citations: Option<Checked>,
    /// `redacted_thinking`'s encrypted thinking.
    #[allow(dead_code)] // read to be validated, not used
    pub data: Option<Checked>,
}

/// The typed view of a buffered reply, when it has one (see the module doc).
pub(super) fn message(body: &[u8]) -> Option<Message<'_>> {
    read(body)
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
    let raw = std::str::from_utf8(body.strip_suffix(br#""}}"#)?).ok()?;
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
