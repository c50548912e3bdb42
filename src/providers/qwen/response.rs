//! DashScope's buffered replies (chat in `result_format: message` or the older `text` form,
//! embeddings) and errors, and the pieces the stream shares with them.

use super::new_call_id;
use super::stream::StreamState;
use crate::error::{error_type_for_status, ProxyError};
use crate::openai;
use crate::openai::writer::{tool_call, Choice, Completion, OpenAiWriter};
use crate::providers::{Api, ResponseTranslator};
use crate::sse::SseEvent;
use crate::usage::{Usage, UsageKeys};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// A DashScope error object (`{"code", "message", "request_id"}`) as an OpenAI error. `status`
/// 0 means unknown (errors inside a stream): it is inferred from the code.
pub(super) fn dashscope_error(status: u16, obj: &Map<String, Value>) -> ProxyError {
    let code = obj.get("code").and_then(Value::as_str).unwrap_or("");
    let status = if status != 0 {
        status
    } else if code == "InvalidApiKey" {
        401
    } else if code.starts_with("Throttling") {
        429
    } else if code.starts_with("AccessDenied") || code == "Arrearage" {
        403
    } else if code.starts_with("Invalid") || code == "DataInspectionFailed" {
        400
    } else {
        500
    };
    let msg = obj
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .unwrap_or("upstream error");
    let mut e = ProxyError::new(status, error_type_for_status(status), msg);
    if !code.is_empty() {
        e.code = Some(code.to_string());
    }
    e
}

/// A body that carries an error code instead of output.
pub(super) fn error_in_body(obj: &Map<String, Value>) -> Option<ProxyError> {
    let has_code = obj
        .get("code")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty());
    (has_code && !obj.contains_key("output")).then(|| dashscope_error(0, obj))
}

/// DashScope's `usage`, with context cache hits and thinking tokens (Model Studio "Context
/// cache", "Deep thinking").
const USAGE: UsageKeys = UsageKeys {
    prompt: "input_tokens",
    completion: "output_tokens",
    total: "total_tokens",
    cached: Some(("prompt_tokens_details", "cached_tokens")),
    reasoning: Some(("output_tokens_details", "reasoning_tokens")),
};

pub(super) fn usage_of(v: Option<&Value>) -> Option<Usage> {
    USAGE.read(v?.as_object()?)
}

/// A thinking model's `reasoning_content` (Model Studio "Deep thinking"), when not empty.
pub(super) fn reasoning_of(msg: Option<&Value>) -> Option<&str> {
    msg?.get("reasoning_content")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Message content as text: a string, or the concatenated `text` of a part list (multimodal).
pub(super) fn content_text(v: Option<&Value>) -> Option<Cow<'_, str>> {
    match v? {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Array(parts) => Some(Cow::Owned(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        )),
        _ => None,
    }
}

/// A tool call's `function.arguments` (a string, or JSON DashScope sent unencoded).
pub(super) fn arguments_of(f: Option<&Value>) -> Option<Cow<'_, str>> {
    match f?.get("arguments")? {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Null => None,
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// DashScope's finish reason → OpenAI's; `None` while the choice is not finished (DashScope
/// streams the string `"null"` until then).
pub(super) fn finish_reason(raw: Option<&Value>, has_tools: bool) -> Option<&'static str> {
    finish_reason_of(raw.and_then(Value::as_str), has_tools)
}

/// [`finish_reason`] of a finish reason already read as a string.
pub(super) fn finish_reason_of(raw: Option<&str>, has_tools: bool) -> Option<&'static str> {
    match raw? {
        "" | "null" => None,
        "stop" => Some("stop"),
        "length" | "max_tokens" => Some("length"),
        "tool_calls" => Some("tool_calls"),
        "content_filter" => Some("content_filter"),
        "function_call" => Some("function_call"),
        _ if has_tools => Some("tool_calls"),
        _ => Some("stop"),
    }
}

/// Whole tool calls of a buffered message in OpenAI's shape.
fn tool_calls_of(v: Option<&Value>) -> Vec<Value> {
    let calls = v.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    calls
        .iter()
        .map(|tc| {
            let id = tc
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(new_call_id, str::to_string);
            let f = tc.get("function");
            let name = f
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            tool_call(&id, name, arguments_of(f).unwrap_or_default().into_owned())
        })
        .collect()
}

/// One `output.choices[]` entry (or the older `output` itself) as a buffered choice. A choice
/// DashScope left unfinished counts as finished: the reply is whole.
fn choice_of(index: u32, msg: Option<&Value>, raw_finish: Option<&Value>) -> Choice {
    let tool_calls = tool_calls_of(msg.and_then(|m| m.get("tool_calls")));
    let has_tools = !tool_calls.is_empty();
    let mut content = content_text(msg.and_then(|m| m.get("content"))).map(Cow::into_owned);
    if has_tools && content.as_deref() == Some("") {
        content = None;
    }
    let fallback = if has_tools { "tool_calls" } else { "stop" };
    Choice {
        index,
        content,
        reasoning: reasoning_of(msg).map(str::to_string),
        tool_calls,
        finish_reason: Some(finish_reason(raw_finish, has_tools).unwrap_or(fallback)),
        ..Choice::default()
    }
}

fn chat_body(obj: &Map<String, Value>, w: &mut OpenAiWriter) -> Result<(), ProxyError> {
    let output = obj
        .get("output")
        .and_then(Value::as_object)
        .ok_or_else(|| ProxyError::bad_upstream("upstream body has no 'output'"))?;
    let choices = if let Some(Value::Array(cs)) = output.get("choices") {
        cs.iter()
            .enumerate()
            .map(|(i, c)| {
                let index = c
                    .get("index")
                    .and_then(Value::as_u64)
                    .map_or(i as u32, |n| n as u32);
                choice_of(index, c.get("message"), c.get("finish_reason"))
            })
            .collect()
    } else if let Some(text) = output.get("text").filter(|t| t.is_string()) {
        let msg = serde_json::json!({ "content": text });
        vec![choice_of(0, Some(&msg), output.get("finish_reason"))]
    } else {
        return Err(ProxyError::bad_upstream(
            "upstream output has neither 'choices' nor 'text'",
        ));
    };
    w.completion(Completion {
        id: obj
            .get("request_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        choices,
        usage: usage_of(obj.get("usage")),
        ..Completion::default()
    })
}

fn embeddings_body(obj: &Map<String, Value>, w: &mut OpenAiWriter) -> Result<(), ProxyError> {
    let items = obj
        .get("output")
        .and_then(|o| o.get("embeddings"))
        .and_then(Value::as_array)
        .ok_or_else(|| ProxyError::bad_upstream("upstream body has no 'output.embeddings'"))?;
    let mut rows: Vec<(u64, Value)> = items
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let idx = e
                .get("text_index")
                .and_then(Value::as_u64)
                .unwrap_or(i as u64);
            (
                idx,
                e.get("embedding")
                    .cloned()
                    .unwrap_or(Value::Array(Vec::new())),
            )
        })
        .collect();
    rows.sort_by_key(|(i, _)| *i);
    let total = obj
        .get("usage")
        .and_then(|u| u.get("total_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    w.embeddings(
        rows.into_iter().map(|(_, v)| v).collect(),
        Usage::new(total, 0, Some(total)),
    );
    Ok(())
}

/// Per exchange: which API answered, and the stream's bounded state.
pub(super) struct QwenTranslator {
    api: Api,
    stream: StreamState,
}

impl QwenTranslator {
    pub fn new(api: Api) -> Self {
        Self {
            api,
            stream: StreamState::default(),
        }
    }
}

impl ResponseTranslator for QwenTranslator {
    fn on_event(&mut self, event: SseEvent<'_>, w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        self.stream.on_event(event, w)
    }

    /// DashScope's stream has no end marker beyond the last finish_reason, which the writer
    /// checks.
    fn on_body(&mut self, body: &[u8], w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        let v = openai::parse_body(body)?;
        let Some(obj) = v.as_object() else {
            return Err(ProxyError::bad_upstream(
                "upstream body is not a JSON object",
            ));
        };
        if let Some(err) = error_in_body(obj) {
            return Err(err);
        }
        match self.api {
            Api::ChatCompletions => chat_body(obj, w),
            Api::Embeddings => embeddings_body(obj, w),
        }
    }

    fn held_capacity(&self) -> usize {
        self.stream.held_capacity()
    }

    fn on_error(&mut self, status: u16, body: &[u8]) -> ProxyError {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(obj)) if obj.get("message").is_some_and(Value::is_string) => {
                dashscope_error(status, &obj)
            }
            _ => openai::upstream_error(status, body),
        }
    }
}
