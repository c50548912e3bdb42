//! OpenAI's side of every exchange, split by job: [`writer`] produces every response we emit
//! (streamed and buffered), [`compat`] normalises what OpenAI-family providers send,
//! [`upstream_error`] reads upstream error bodies, and [`request`] is the toolkit translators use
//! to read OpenAI requests.

pub mod body_scan;
pub mod chat_read;
pub mod chunk_scan;
pub mod compat;
pub(crate) mod json_scan;
pub mod request;
pub mod upstream_error;
pub mod writer;

pub use chunk_scan::{
    scan_conformant_chunk, scan_usage_chunk, ChunkScanner, ConformantChunk, UsageChunk,
};
pub use compat::{
    chunk_is_conformant, error_in_success_body, find_usage, normalize_chunk, normalize_completion,
    normalize_embeddings,
};
pub use request::*;
pub(crate) use upstream_error::truncate;
pub use upstream_error::upstream_error;
pub use writer::{OpenAiWriter, StreamMeta};

use std::time::{SystemTime, UNIX_EPOCH};

pub const FINISH_REASONS: &[&str] = &[
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "function_call",
];

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `chatcmpl-` plus 24 random hex digits, for providers that send no id.
pub fn new_completion_id() -> String {
    use rand::Rng;
    let n: u128 = rand::thread_rng().gen();
    format!("chatcmpl-{:024x}", n & ((1u128 << 96) - 1))
}

/// `call_` plus 24 random hex digits, for providers that give tool calls no id: unique across
/// replies, since agents key multi-turn state on them.
pub fn new_tool_call_id() -> String {
    format!("call_{}", &new_completion_id()["chatcmpl-".len()..])
}

/// An upstream body that must be a JSON object: one wording for every provider's 502.
pub fn parse_body(body: &[u8]) -> Result<serde_json::Value, crate::error::ProxyError> {
    parse_object(body, "upstream body")
}

/// The data of one upstream stream event, which must be a JSON object.
pub fn parse_event(data: &[u8]) -> Result<serde_json::Value, crate::error::ProxyError> {
    parse_object(data, "upstream stream event")
}

fn parse_object(bytes: &[u8], what: &str) -> Result<serde_json::Value, crate::error::ProxyError> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err(crate::error::ProxyError::bad_upstream(format!(
            "{what} is not a JSON object"
        ))),
        Err(e) => Err(crate::error::ProxyError::bad_upstream(format!(
            "{what} is not JSON: {e}"
        ))),
    }
}

/// An event's data, trimmed; `None` when it has none (keep-alives, bare `event:` lines).
pub fn event_data<'a>(event: &crate::sse::SseEvent<'a>) -> Option<&'a [u8]> {
    Some(event.data.trim_ascii()).filter(|d| !d.is_empty())
}

/// A typed event's type (Claude, Cohere): its `type` field, else the SSE event name.
pub fn event_type<'a>(v: &'a serde_json::Value, event_name: &'a str) -> &'a str {
    v.get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(event_name)
}

/// The end check of a stream that closes with a marker event (Claude's `message_stop`, ...): a
/// 502 when the upstream stream ended without it.
pub fn require_end(seen: bool, marker: &str) -> Result<(), crate::error::ProxyError> {
    if seen {
        return Ok(());
    }
    Err(crate::error::ProxyError::bad_upstream(format!(
        "upstream stream ended before {marker}"
    )))
}
