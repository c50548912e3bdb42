//! Anthropic's Messages API in front of every provider.
//!
//! Facts used (Anthropic's public API reference, docs.anthropic.com / platform.claude.com:
//! "Messages", "Streaming Messages", "Errors", "Token counting"):
//! - `POST /v1/messages`, `POST /v1/messages/count_tokens`; auth `x-api-key`, version header
//!   `anthropic-version`.
//! - Errors are `{"type":"error","error":{"type","message"}}` with 400 invalid_request_error, 401
//!   authentication_error, 402 billing_error, 403 permission_error, 404 not_found_error, 413
//!   request_too_large, 429 rate_limit_error, 500 api_error, 504 timeout_error, 529
//!   overloaded_error; other 4xx use invalid_request_error. In a stream an error arrives as an
//!   `error` event with the same body.
//! - Usage: `input_tokens` (not counting cache reads/writes), `output_tokens`,
//!   `cache_creation_input_tokens`, `cache_read_input_tokens`; `message_start` carries the message
//!   with its initial usage, `message_delta` the cumulative usage.
//!
//! To provider `claude` the request is forwarded natively (only the model is mapped) and usage is
//! read from the reply as it passes; to every other provider it goes through the OpenAI pipeline
//! ([`request`] in, [`response`] / [`stream`] out).

pub mod request;
pub mod response;
pub mod stream;

use crate::error::ProxyError;
use crate::sse::{SseEvent, SseParser};
use crate::usage::Usage;
use serde_json::{json, Value};

/// Request headers of the Anthropic client that never reach a non-Anthropic provider (the client's
/// key, and Anthropic-only protocol switches).
pub const CLIENT_HEADERS: [&str; 3] = ["x-api-key", "anthropic-version", "anthropic-beta"];

/// The two Anthropic endpoints we serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Messages,
    CountTokens,
}

impl Endpoint {
    /// Each endpoint's path suffix (none is a suffix of another).
    const SUFFIXES: [(&'static str, Self); 2] = [
        ("/v1/messages", Self::Messages),
        ("/v1/messages/count_tokens", Self::CountTokens),
    ];

    /// `/v1/messages` or `/v1/messages/count_tokens` as a path suffix (query ignored).
    pub fn from_path(path: &str) -> Option<Self> {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        Self::SUFFIXES
            .iter()
            .find(|(suffix, _)| path.ends_with(suffix))
            .map(|&(_, e)| e)
    }
}

/// Anthropic's error `type` for an HTTP status.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// Anthropic's error `type` for an OpenAI error `type` seen inside a stream (no status there).
fn error_type_for_openai_kind(kind: &str) -> &'static str {
    match kind {
        "invalid_request_error" => "invalid_request_error",
        "authentication_error" => "authentication_error",
        "permission_error" => "permission_error",
        "not_found_error" => "not_found_error",
        "rate_limit_error" | "rate_limit_exceeded" => "rate_limit_error",
        "overloaded_error" => "overloaded_error",
        "timeout_error" => "timeout_error",
        _ => "api_error",
    }
}

/// The Anthropic error body for an error of ours.
pub fn error_body(status: u16, message: &str) -> Vec<u8> {
    serde_json::to_vec(&error_json(error_type_for_status(status), message))
        .expect("error JSON serialises")
}

fn error_json(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// A [`ProxyError`] as an Anthropic error body (the status stays the error's).
pub fn proxy_error_body(err: &ProxyError) -> Vec<u8> {
    error_body(err.status, &err.message)
}

/// Rewrites the OpenAI error body the pipeline produced (`{"error":{"message",...}}`) into
/// Anthropic's shape for `status`.
pub fn convert_error_body(status: u16, openai: &[u8], out: &mut Vec<u8>) {
    let message = serde_json::from_slice::<Value>(openai)
        .ok()
        .and_then(|v| {
            v.get("error")
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("upstream returned HTTP {status}"));
    out.clear();
    out.extend_from_slice(&error_body(status, &message));
}

/// Writes one Anthropic SSE event: `event: <name>` and its JSON data.
pub(crate) fn write_event<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, name: &str, data: &T) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(&mut *out, data).expect("serialising to a Vec cannot fail");
    out.extend_from_slice(b"\n\n");
}

/// Anthropic's usage object, read from a message, `message_start.message` or `message_delta`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnthropicUsage {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
}

impl AnthropicUsage {
    /// Updates with the fields present in `u` (a `message_delta` repeats only some of them).
    fn merge(&mut self, u: &Value) -> bool {
        let Some(o) = u.as_object() else {
            return false;
        };
        let mut seen = false;
        for (key, slot) in [
            ("input_tokens", &mut self.input),
            ("output_tokens", &mut self.output),
            ("cache_creation_input_tokens", &mut self.cache_creation),
            ("cache_read_input_tokens", &mut self.cache_read),
        ] {
            if let Some(n) = o.get(key).and_then(Value::as_u64) {
                *slot = n;
                seen = true;
            }
        }
        seen
    }

    /// In OpenAI's terms the prompt is every input token, cached or not.
    pub fn to_usage(self) -> Usage {
        Usage::new(
            self.input + self.cache_creation + self.cache_read,
            self.output,
            None,
        )
    }
}

/// Native (provider `claude`) replies pass through untouched; this reads their usage on the way.
/// State: the SSE parser's partial event, or for a JSON body the body so far (bounded).
#[derive(Debug, Default)]
pub struct NativeObserver {
    active: bool,
    sse: Option<SseParser>,
    body: Vec<u8>,
    max_body: usize,
    usage: Option<AnthropicUsage>,
}

impl NativeObserver {
    pub fn new(max_body: usize) -> Self {
        Self {
            max_body,
            ..Self::default()
        }
    }

    /// Only successful replies carry usage; `is_sse` picks the reader.
    pub fn on_headers(&mut self, status: u16, is_sse: bool) {
        self.active = (200..300).contains(&status);
        self.sse = is_sse.then(SseParser::default);
    }

    pub fn on_chunk(&mut self, chunk: &[u8], end_of_stream: bool) {
        if !self.active {
            return;
        }
        let usage = &mut self.usage;
        if let Some(parser) = self.sse.as_mut() {
            let mut on_event = |ev: SseEvent<'_>| -> Result<(), crate::sse::SseError> {
                observe_event(ev, usage);
                Ok(())
            };
            let mut r = parser.feed(chunk, &mut on_event);
            if r.is_ok() && end_of_stream {
                r = parser.finish(&mut on_event);
            }
            if r.is_err() {
                // The client sees the same bytes; we only lose the usage.
                self.active = false;
            }
            return;
        }
        if self.body.len() + chunk.len() > self.max_body {
            self.active = false;
            self.body = Vec::new();
            return;
        }
        self.body.extend_from_slice(chunk);
        if end_of_stream {
            if let Ok(v) = serde_json::from_slice::<Value>(&self.body) {
                if let Some(u) = v.get("usage") {
                    let mut acc = AnthropicUsage::default();
                    if acc.merge(u) {
                        *usage = Some(acc);
                    }
                }
            }
            self.body = Vec::new();
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage.map(AnthropicUsage::to_usage)
    }
}

fn observe_event(ev: SseEvent<'_>, usage: &mut Option<AnthropicUsage>) {
    // Only two event types carry usage; skip parsing the (many) delta events.
    let name = ev.event;
    if name != "message_start" && name != "message_delta" {
        return;
    }
    let Ok(v) = serde_json::from_slice::<Value>(ev.data) else {
        return;
    };
    let u = if name == "message_start" {
        v.get("message").and_then(|m| m.get("usage"))
    } else {
        v.get("usage")
    };
    if let Some(u) = u {
        let acc = usage.get_or_insert_with(AnthropicUsage::default);
        acc.merge(u);
    }
}

/// Per-exchange state of the Anthropic front, owned by the [`crate::Exchange`].
#[derive(Debug)]
pub struct Front {
    route: Route,
    /// Request fields dropped by the conversion (see [`request`]'s policy).
    pub dropped: Vec<String>,
    pub dropped_count: usize,
    /// Reused output buffer for conversions.
    buf: Vec<u8>,
}

#[derive(Debug)]
enum Route {
    /// Provider `claude`: bytes pass through; usage is observed.
    Native(NativeObserver),
    /// Every other provider: the OpenAI pipeline's output is converted.
    Converted {
        model: String,
        stop_sequences: Vec<String>,
        stream: Option<stream::StreamConverter>,
    },
}

impl Front {
    pub fn native(max_body: usize) -> Self {
        Self {
            route: Route::Native(NativeObserver::new(max_body)),
            dropped: Vec::new(),
            dropped_count: 0,
            buf: Vec::new(),
        }
    }

    /// `model` is the one sent upstream (used when the reply names none).
    pub fn converted(conv: &request::Converted, model: &str) -> Self {
        Self {
            route: Route::Converted {
                model: model.to_string(),
                stop_sequences: conv.stop_sequences.clone(),
                stream: None,
            },
            dropped: conv.dropped.clone(),
            dropped_count: conv.dropped_count,
            buf: Vec::new(),
        }
    }

    pub fn is_native(&self) -> bool {
        matches!(self.route, Route::Native(_))
    }

    /// Usage read natively (provider `claude`); `None` on the converted route, where the
    /// provider's translator reports it.
    pub fn native_usage(&self) -> Option<Usage> {
        match &self.route {
            Route::Native(o) => o.usage(),
            Route::Converted { .. } => None,
        }
    }

    /// The upstream's status; `is_sse`: the upstream (native) or the pipeline's output
    /// (converted) is an event stream.
    pub fn on_response_headers(&mut self, status: u16, is_sse: bool) {
        match &mut self.route {
            Route::Native(o) => o.on_headers(status, is_sse),
            Route::Converted {
                model,
                stop_sequences,
                stream,
            } => {
                *stream = is_sse
                    .then(|| stream::StreamConverter::new(model, std::mem::take(stop_sequences)));
            }
        }
    }

    /// One response body call. `chunk` is the upstream's bytes; `openai` what the OpenAI pipeline
    /// made of them, `unchanged` when it passes the chunk through. Returns whether the reply is
    /// now [`Front::output`] (converted) rather than `openai`, and the status to send (buffered
    /// replies at their end).
    pub fn on_output(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
        unchanged: bool,
        openai: &[u8],
        status: Option<u16>,
    ) -> (bool, Option<u16>) {
        match &mut self.route {
            Route::Native(o) => {
                o.on_chunk(chunk, end_of_stream);
                (false, status)
            }
            // A local reply of ours passing through is already Anthropic-shaped.
            Route::Converted { .. } if unchanged => (false, status),
            Route::Converted {
                stream: Some(conv), ..
            } => {
                self.buf.clear();
                conv.feed(openai, end_of_stream, &mut self.buf);
                (true, status)
            }
            Route::Converted { stop_sequences, .. } => {
                let Some(s) = status else {
                    return (false, None);
                };
                if (200..300).contains(&s) {
                    match response::completion_to_message(openai, stop_sequences) {
                        Some(body) => self.buf = body,
                        None => {
                            self.buf =
                                error_body(502, "the upstream reply is not a chat completion");
                            return (true, Some(502));
                        }
                    }
                } else {
                    convert_error_body(s, openai, &mut self.buf);
                }
                (true, Some(s))
            }
        }
    }

    /// The converted bytes of the last [`Front::on_output`] that returned `true`.
    pub fn output(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_error_types() {
        assert_eq!(
            Endpoint::from_path("/v1/messages"),
            Some(Endpoint::Messages)
        );
        assert_eq!(
            Endpoint::from_path("/v1/messages/count_tokens?x=1"),
            Some(Endpoint::CountTokens)
        );
        assert_eq!(Endpoint::from_path("/v1/chat/completions"), None);
        assert_eq!(error_type_for_status(400), "invalid_request_error");
        assert_eq!(error_type_for_status(422), "invalid_request_error");
        assert_eq!(error_type_for_status(401), "authentication_error");
        assert_eq!(error_type_for_status(529), "overloaded_error");
        assert_eq!(error_type_for_status(502), "api_error");
        assert_eq!(error_type_for_openai_kind("upstream_error"), "api_error");
    }

    #[test]
    fn openai_error_bodies_become_anthropic_errors() {
        let mut out = Vec::new();
        convert_error_body(
            429,
            br#"{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":null}}"#,
            &mut out,
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}})
        );
        convert_error_body(502, b"not json", &mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["type"], "api_error");
        assert_eq!(v["error"]["message"], "upstream returned HTTP 502");
    }

    /// Shapes from Anthropic's "Streaming Messages" reference.
    const NATIVE_STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-x\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":3,\"cache_read_input_tokens\":7,\"output_tokens\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    #[test]
    fn native_stream_usage_is_read_in_any_chunking() {
        for size in [1, 2, 7, 64, NATIVE_STREAM.len()] {
            let mut o = NativeObserver::new(1 << 20);
            o.on_headers(200, true);
            let chunks: Vec<&[u8]> = NATIVE_STREAM.as_bytes().chunks(size).collect();
            for (i, c) in chunks.iter().enumerate() {
                o.on_chunk(c, i + 1 == chunks.len());
            }
            assert_eq!(
                o.usage(),
                Some(Usage::new(35, 15, None)),
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn native_json_usage_and_errors() {
        let mut o = NativeObserver::new(1 << 20);
        o.on_headers(200, false);
        o.on_chunk(
            br#"{"id":"msg_1","type":"message","usage":{"input_tokens":3,"#,
            false,
        );
        o.on_chunk(br#""output_tokens":4}}"#, true);
        assert_eq!(o.usage(), Some(Usage::new(3, 4, None)));
        let mut o = NativeObserver::new(1 << 20);
        o.on_headers(401, false);
        o.on_chunk(
            br#"{"type":"error","error":{"type":"authentication_error","message":"x"}}"#,
            true,
        );
        assert_eq!(o.usage(), None);
        let mut o = NativeObserver::new(8);
        o.on_headers(200, false);
        o.on_chunk(br#"{"usage":{"input_tokens":3,"output_tokens":4}}"#, true);
        assert_eq!(
            o.usage(),
            None,
            "over the bound: usage is given up, never buffered"
        );
    }
}
