//! OpenAI's side of every exchange, split by job: [`writer`] produces every response we emit
//! (streamed and buffered), [`compat`] normalises what OpenAI-family providers send,
//! [`upstream_error`] reads upstream error bodies, and [`request`] is the toolkit translators use
//! to read OpenAI requests.

pub mod compat;
pub mod request;
pub mod upstream_error;
pub mod writer;

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
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err(crate::error::ProxyError::bad_upstream(
            "upstream body is not a JSON object",
        )),
        Err(e) => Err(crate::error::ProxyError::bad_upstream(format!(
            "upstream body is not JSON: {e}"
        ))),
    }
}

/// The data of one upstream stream event, which must be a JSON object.
pub fn parse_event(data: &[u8]) -> Result<serde_json::Value, crate::error::ProxyError> {
    match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err(crate::error::ProxyError::bad_upstream(
            "upstream stream event is not a JSON object",
        )),
        Err(e) => Err(crate::error::ProxyError::bad_upstream(format!(
            "upstream stream event is not JSON: {e}"
        ))),
    }
}
