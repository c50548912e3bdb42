//! Cohere v2 replies → OpenAI: buffered chat, embeddings, usage and finish reasons. Stream
//! events are read in `stream.rs`.

use super::super::{Api, ResponseTranslator};
use crate::error::ProxyError;
use crate::openai;
use crate::openai::writer::{tool_call, Choice, Completion, OpenAiWriter};
use crate::sse::SseEvent;
use crate::usage::Usage;
use serde_json::Value;

/// Cohere's finish reason as OpenAI's; `None` for `ERROR` (a failed generation, reported as an
/// error rather than a finished reply).
pub(super) fn finish_reason(reason: &str) -> Option<&'static str> {
    match reason {
        "MAX_TOKENS" => Some("length"),
        "TOOL_CALL" => Some("tool_calls"),
        "ERROR" | "TIMEOUT" => None,
        // COMPLETE, STOP_SEQUENCE, or anything new.
        _ => Some("stop"),
    }
}

pub(super) fn generation_failed(reason: &str) -> ProxyError {
    ProxyError::bad_upstream(format!(
        "upstream generation ended with finish_reason {reason}"
    ))
}

/// `usage.tokens` (what the model processed), else `usage.billed_units`. `usage.cached_tokens`
/// (prompt tokens served from Cohere's inference cache, part of the input count) is OpenAI's
/// `cached_tokens`; absent on replies without it.
pub(super) fn usage(u: Option<&Value>) -> Option<Usage> {
    let u = u?;
    let counts = u
        .get("tokens")
        .filter(|t| t.get("input_tokens").is_some())
        .or_else(|| u.get("billed_units"))?;
    let n = |k: &str| {
        counts
            .get(k)
            .and_then(Value::as_f64)
            .map_or(0, |f| f as u64)
    };
    // Cohere's API definition types it as a number: read it like the counts above.
    let cached = u
        .get("cached_tokens")
        .and_then(Value::as_f64)
        .map(|f| f as u64);
    Some(Usage::saturating(&[n("input_tokens")], &[n("output_tokens")], None).with_cached(cached))
}

/// Bounded state: the API, the open tool calls (Cohere index → OpenAI index) and whether
/// `message-end` came.
pub(super) struct CohereTranslator {
    api: Api,
    pub(super) tools: Vec<(u64, u32)>,
    pub(super) next_tool: u32,
    pub(super) ended: bool,
}

impl CohereTranslator {
    pub(super) fn new(api: Api) -> Self {
        Self {
            api,
            tools: Vec::new(),
            next_tool: 0,
            ended: false,
        }
    }

    fn chat_body(&mut self, v: &Value, w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        let msg = v
            .get("message")
            .filter(|m| m.is_object())
            .ok_or_else(|| ProxyError::bad_upstream("upstream reply has no 'message'"))?;
        let reason = v["finish_reason"].as_str().unwrap_or("COMPLETE");
        let finish = finish_reason(reason).ok_or_else(|| generation_failed(reason))?;
        let mut choice = Choice {
            finish_reason: Some(finish),
            ..Choice::default()
        };
        for block in msg["content"].as_array().into_iter().flatten() {
            match block["type"].as_str() {
                Some("text") => choice
                    .content
                    .get_or_insert_with(String::new)
                    .push_str(block["text"].as_str().unwrap_or("")),
                Some("thinking") => choice
                    .reasoning
                    .get_or_insert_with(String::new)
                    .push_str(block["thinking"].as_str().unwrap_or("")),
                _ => {}
            }
        }
        // The plan Cohere writes before calling tools is the model's reasoning.
        if let Some(plan) = msg["tool_plan"].as_str().filter(|p| !p.is_empty()) {
            choice
                .reasoning
                .get_or_insert_with(String::new)
                .push_str(plan);
        }
        for call in msg["tool_calls"].as_array().into_iter().flatten() {
            let f = &call["function"];
            let args = match &f["arguments"] {
                Value::String(s) => s.clone(),
                Value::Null => "{}".to_string(),
                other => other.to_string(),
            };
            choice.tool_calls.push(tool_call(
                call["id"].as_str().unwrap_or(""),
                f["name"].as_str().unwrap_or(""),
                args,
            ));
        }
        w.completion(Completion {
            id: v["id"].as_str().map(str::to_string),
            choices: vec![choice],
            usage: usage(v.get("usage")),
            ..Completion::default()
        })
    }

    fn embed_body(v: &Value, w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        // `embeddings_by_type` keeps floats under `float`; the older single-type reply is the
        // array itself.
        let vectors = match &v["embeddings"] {
            Value::Object(o) => o.get("float").and_then(Value::as_array),
            Value::Array(a) => Some(a),
            _ => None,
        }
        .ok_or_else(|| ProxyError::bad_upstream("upstream embed reply has no float embeddings"))?;
        let billed = &v["meta"]["billed_units"]["input_tokens"];
        match billed.as_f64() {
            Some(n) => w.embeddings(vectors.clone(), Usage::new(n as u64, 0, None)),
            None => w.embeddings_without_usage(vectors.clone()),
        }
        Ok(())
    }
}

impl ResponseTranslator for CohereTranslator {
    fn on_event(&mut self, event: SseEvent<'_>, w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        self.stream_event(event, w)
    }

    fn on_stream_end(&mut self, _w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        openai::require_end(self.ended, "message-end")
    }

    fn on_body(&mut self, body: &[u8], w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        let v = openai::parse_body(body)?;
        match self.api {
            Api::ChatCompletions => self.chat_body(&v, w),
            Api::Embeddings => Self::embed_body(&v, w),
        }
    }
}
