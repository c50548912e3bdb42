//! Claude replies → OpenAI: buffered messages, usage and errors. Stream events are read in
//! `stream.rs`.

use super::super::ResponseTranslator;
use super::typed;
use crate::error::{error_type_for_status, ProxyError};
use crate::openai;
use crate::openai::writer::{tool_call, Choice, Completion, OpenAiWriter};
use crate::sse::SseEvent;
use crate::usage::Usage;
use serde_json::Value;
use std::borrow::Cow;

/// Claude's stop reason as OpenAI's finish_reason.
pub(super) fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn, or anything new.
        _ => "stop",
    }
}

/// Claude's error type → (its documented HTTP status, the OpenAI error type).
fn error_kind(claude_type: &str) -> Option<(u16, &'static str)> {
    Some(match claude_type {
        "invalid_request_error" => (400, "invalid_request_error"),
        "authentication_error" => (401, "authentication_error"),
        "billing_error" => (402, "insufficient_quota"),
        "permission_error" => (403, "permission_error"),
        "not_found_error" => (404, "invalid_request_error"),
        "request_too_large" => (413, "invalid_request_error"),
        "rate_limit_error" => (429, "rate_limit_error"),
        "api_error" => (500, "api_error"),
        "timeout_error" => (504, "api_error"),
        "overloaded_error" => (529, "api_error"),
        _ => return None,
    })
}

/// Claude's `{"type":"error","error":{"type","message"}}` as an OpenAI error; `status` is the
/// HTTP status when there is one (kept), else the one Claude documents for the type.
pub(super) fn claude_error(status: Option<u16>, v: &Value) -> Option<ProxyError> {
    let e = v.get("error")?.as_object()?;
    let claude_type = e.get("type").and_then(Value::as_str).unwrap_or("");
    let known = error_kind(claude_type);
    let status = status.or(known.map(|k| k.0)).unwrap_or(500);
    let kind = known.map_or_else(|| error_type_for_status(status), |k| k.1);
    let message = match e.get("message") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => format!("upstream returned a {claude_type} error"),
    };
    let mut err = ProxyError::new(status, kind, message);
    if !claude_type.is_empty() {
        err = err.with_code(claude_type);
    }
    Some(err)
}

/// Bounded state: usage counts, the Claude block index of each open tool_use block with its
/// OpenAI tool-call index, and whether `message_stop` came. Everything OpenAI-side is the writer's.
pub(super) struct ClaudeTranslator {
    /// (Claude content block index, OpenAI tool_calls index) for open tool_use blocks.
    pub(super) open_tools: Vec<(u64, u32)>,
    pub(super) next_tool: u32,
    /// Claude's `input_tokens`, `cache_creation_input_tokens`, `cache_read_input_tokens`:
    /// OpenAI's prompt tokens are their sum (Claude counts cached prompt tokens apart).
    prompt: [u64; 3],
    completion: u64,
    usage_seen: bool,
    cache_read_seen: bool,
    pub(super) stopped: bool,
    /// Events and bodies are read through `typed`'s views first (off only in the tests that
    /// hold the typed path equal to the `Value` path).
    pub(super) typed: bool,
    /// Reused for a canonical delta's text when it has escapes.
    pub(super) scratch: String,
}

impl ClaudeTranslator {
    pub(super) fn new() -> Self {
        Self {
            open_tools: Vec::new(),
            next_tool: 0,
            prompt: [0; 3],
            completion: 0,
            usage_seen: false,
            cache_read_seen: false,
            stopped: false,
            typed: true,
            scratch: String::new(),
        }
    }

    /// OpenAI's prompt tokens are the sum of Claude's input, cache-write and cache-read tokens;
    /// the cache reads are OpenAI's `cached_tokens`.
    fn current_usage(&self) -> Option<Usage> {
        self.usage_seen.then(|| {
            Usage::saturating(&self.prompt, &[self.completion], None)
                .with_cached(self.cache_read_seen.then_some(self.prompt[2]))
        })
    }

    /// Reads a `usage` object into the counts and hands the total to the writer.
    /// Takes a `usage` object's four counts (see [`usage_counts`]), when it was one.
    pub(super) fn usage_of(&mut self, usage: Option<[Option<u64>; 4]>, w: &mut OpenAiWriter) {
        if let Some([input, cache_write, cache_read, output]) = usage {
            self.add_usage([input, cache_write, cache_read], output, w);
        }
    }

    /// Takes the counts a `usage` object has (input, cache-write, cache-read; output) and hands
    /// the total to the writer.
    pub(super) fn add_usage(
        &mut self,
        prompt: [Option<u64>; 3],
        output: Option<u64>,
        w: &mut OpenAiWriter,
    ) {
        // Counts are cumulative; a later event (message_delta) may repeat some of them.
        for (slot, n) in self.prompt.iter_mut().zip(prompt) {
            if let Some(n) = n {
                *slot = n;
                self.usage_seen = true;
            }
        }
        self.cache_read_seen |= prompt[2].is_some();
        if let Some(c) = output {
            self.completion = c;
            self.usage_seen = true;
        }
        if let Some(u) = self.current_usage() {
            w.set_usage(u);
        }
    }

    /// `on_body` through the scanned view of a Message (one without errors or anything the
    /// view leaves to the `Value` path): the same steps as that path.
    fn typed_body(
        &mut self,
        m: typed::Message<'_>,
        w: &mut OpenAiWriter,
    ) -> Result<(), ProxyError> {
        let own = |t: Option<Cow<'_, str>>| t.map(Cow::into_owned);
        let choice = Choice {
            finish_reason: m.stop_reason.as_deref().map(|r| finish_reason(Some(r))),
            content: own(m.text),
            reasoning: own(m.thinking),
            tool_calls: m
                .tool_uses
                .into_iter()
                .map(|t| {
                    tool_call(
                        t.id.as_deref().unwrap_or(""),
                        t.name.as_deref().unwrap_or(""),
                        t.arguments,
                    )
                })
                .collect(),
            ..Choice::default()
        };
        self.usage_of(m.usage, w);
        w.completion(Completion {
            id: own(m.id),
            model: own(m.model),
            choices: vec![choice],
            usage: self.current_usage(),
            ..Completion::default()
        })
    }
}

/// A `usage` value's counts as the scans read them: input, cache-write, cache-read and output
/// tokens, each as `Value::as_u64` reads it; `None` unless it is an object.
pub(super) fn usage_counts(u: Option<&Value>) -> Option<[Option<u64>; 4]> {
    let u = u.filter(|u| u.is_object())?;
    let count = |key| u.get(key).and_then(Value::as_u64);
    Some([
        count("input_tokens"),
        count("cache_creation_input_tokens"),
        count("cache_read_input_tokens"),
        count("output_tokens"),
    ])
}

impl ResponseTranslator for ClaudeTranslator {
    fn on_event(&mut self, event: SseEvent<'_>, w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        self.stream_event(event, w)
    }

    fn on_stream_end(&mut self, _w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        openai::require_end(self.stopped, "message_stop")
    }

    fn on_body(&mut self, body: &[u8], w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        if self.typed {
            // An error body (`type: error`) has no view: the `Value` path words it.
            if let Some(m) = typed::message(body) {
                return self.typed_body(m, w);
            }
        }
        let v = openai::parse_body(body)?;
        if v["type"] == "error" || v.get("error").is_some_and(Value::is_object) {
            return Err(claude_error(None, &v)
                .unwrap_or_else(|| ProxyError::bad_upstream("upstream reported an error")));
        }
        let blocks = v["content"]
            .as_array()
            .ok_or_else(|| ProxyError::bad_upstream("upstream reply has no 'content' array"))?;
        let mut choice = Choice {
            finish_reason: v["stop_reason"].as_str().map(|r| finish_reason(Some(r))),
            ..Choice::default()
        };
        for block in blocks {
            match block["type"].as_str() {
                Some("text") => choice
                    .content
                    .get_or_insert_with(String::new)
                    .push_str(block["text"].as_str().unwrap_or("")),
                Some("thinking") => choice
                    .reasoning
                    .get_or_insert_with(String::new)
                    .push_str(block["thinking"].as_str().unwrap_or("")),
                Some("tool_use") => choice.tool_calls.push(tool_call(
                    block["id"].as_str().unwrap_or(""),
                    block["name"].as_str().unwrap_or(""),
                    block
                        .get("input")
                        .map_or_else(|| "{}".to_string(), Value::to_string),
                )),
                _ => {}
            }
        }
        self.usage_of(usage_counts(v.get("usage")), w);
        w.completion(Completion {
            id: v["id"].as_str().map(str::to_string),
            model: v["model"].as_str().map(str::to_string),
            choices: vec![choice],
            usage: self.current_usage(),
            ..Completion::default()
        })
    }

    fn on_error(&mut self, status: u16, body: &[u8]) -> ProxyError {
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| claude_error(Some(status), &v))
            .unwrap_or_else(|| openai::upstream_error(status, body))
    }
}
