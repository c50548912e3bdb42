//! Hunyuan answers → OpenAI: API 3.0 errors, usage, the finish-reason mapping, buffered chat
//! completions and embeddings, and the translator the exchange drives.

use super::stream::StreamState;
use crate::error::{error_type_for_status, ProxyError};
use crate::openai;
use crate::openai::writer::{tool_call, Choice, Completion, OpenAiWriter};
use crate::providers::{Api, ResponseTranslator};
use crate::sse::SseEvent;
use crate::usage::{Usage, UsageKeys};
use serde_json::{json, Map, Value};

/// HTTP status for a Tencent Cloud API 3.0 error code.
pub(super) fn tc_error_status(code: &str) -> u16 {
    let starts = |p: &str| code.starts_with(p);
    if starts("AuthFailure") {
        401
    } else if starts("UnauthorizedOperation") || starts("OperationDenied") {
        403
    } else if starts("RequestLimitExceeded")
        || starts("LimitExceeded")
        || starts("ResourceInsufficient")
    {
        429
    } else if starts("InternalError") || starts("ServiceUnavailable") || starts("FailedOperation") {
        500
    } else {
        400
    }
}

/// `{"Error": {"Code", "Message"}, "RequestId"}` inside `Response`.
pub(super) fn envelope_error(resp: &Map<String, Value>) -> Option<ProxyError> {
    let err = resp.get("Error")?.as_object()?;
    let code = err
        .get("Code")
        .and_then(Value::as_str)
        .unwrap_or("InternalError");
    let mut msg = err
        .get("Message")
        .and_then(Value::as_str)
        .unwrap_or("upstream error")
        .to_string();
    if let Some(rid) = resp.get("RequestId").and_then(Value::as_str) {
        msg = format!("{msg} (RequestId: {rid})");
    }
    let status = tc_error_status(code);
    Some(ProxyError::new(status, error_type_for_status(status), msg).with_code(code))
}

/// `ErrorMsg{Msg, Code}`: a failure reported inside a (streamed) answer.
pub(super) fn error_msg(resp: &Map<String, Value>) -> Option<ProxyError> {
    let e = resp.get("ErrorMsg")?.as_object()?;
    let code = match e.get("Code") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let msg = e.get("Msg").and_then(Value::as_str).unwrap_or("");
    if msg.is_empty() && code.is_empty() {
        return None;
    }
    let msg = if msg.is_empty() {
        "upstream error"
    } else {
        msg
    };
    let err = ProxyError::new(500, "api_error", msg);
    Some(if code.is_empty() {
        err
    } else {
        err.with_code(code)
    })
}

const USAGE: UsageKeys = UsageKeys {
    prompt: "PromptTokens",
    completion: "CompletionTokens",
    total: "TotalTokens",
    cached: None,
    reasoning: None,
};

pub(super) fn usage_of(v: Option<&Value>) -> Option<Usage> {
    USAGE.read(v?.as_object()?)
}

/// OpenAI's finish reason for Hunyuan's `FinishReason` (stop|sensitive|tool_calls|length).
pub(super) fn finish_reason(upstream: &str, had_tool_calls: bool) -> &'static str {
    match upstream {
        "tool_calls" => "tool_calls",
        "sensitive" => "content_filter",
        "length" => "length",
        _ if had_tool_calls => "tool_calls",
        _ => "stop",
    }
}

pub(super) fn nonempty_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Unwraps `{"Response": {...}}` (buffered answers and errors); stream events come unwrapped.
pub(super) fn unwrap_response(v: &Value) -> Option<&Map<String, Value>> {
    let obj = v.as_object()?;
    Some(match obj.get("Response").and_then(Value::as_object) {
        Some(r) => r,
        None => obj,
    })
}

/// The API 3.0 error envelope or an `ErrorMsg`, whichever the object carries.
pub(super) fn error_in(resp: &Map<String, Value>) -> Option<ProxyError> {
    envelope_error(resp).or_else(|| error_msg(resp))
}

/// A choice's `Message` or `Delta` (`first` tried first); empty when it has neither.
pub(super) fn message_of<'a>(
    c: &'a Map<String, Value>,
    first: &str,
    second: &str,
) -> &'a Map<String, Value> {
    static EMPTY: once_cell::sync::Lazy<Map<String, Value>> = once_cell::sync::Lazy::new(Map::new);
    c.get(first)
        .or_else(|| c.get(second))
        .and_then(Value::as_object)
        .unwrap_or(&EMPTY)
}

/// A Hunyuan tool call's `Function{Name, Arguments}`.
pub(super) fn function_of(call: &Value) -> (&str, &str) {
    let f = call.get("Function").unwrap_or(&Value::Null);
    let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("");
    (s("Name"), s("Arguments"))
}

fn completion(resp: &Map<String, Value>) -> Completion {
    let mut choices = Vec::new();
    for (i, c) in resp
        .get("Choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(c) = c.as_object() else { continue };
        let msg = message_of(c, "Message", "Delta");
        let tool_calls: Vec<Value> = msg
            .get("ToolCalls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|tc| {
                let (name, args) = function_of(tc);
                let id = tc.get("Id").and_then(Value::as_str).unwrap_or("");
                tool_call(id, name, args.to_string())
            })
            .collect();
        let had_calls = !tool_calls.is_empty();
        let reason = c.get("FinishReason").and_then(Value::as_str).unwrap_or("");
        choices.push(Choice {
            index: c
                .get("Index")
                .and_then(Value::as_u64)
                .map_or(i as u32, |n| n as u32),
            content: nonempty_str(msg, "Content").map(str::to_string),
            reasoning: nonempty_str(msg, "ReasoningContent").map(str::to_string),
            tool_calls,
            // No finish reason and nothing in the message: the writer refuses the reply.
            finish_reason: (!reason.is_empty() || had_calls)
                .then(|| finish_reason(reason, had_calls)),
            name: None,
        });
    }
    Completion {
        id: nonempty_str(resp, "Id").map(str::to_string),
        created: resp
            .get("Created")
            .and_then(Value::as_u64)
            .filter(|c| *c > 0),
        model: None,
        choices,
        usage: usage_of(resp.get("Usage")),
    }
}

fn embeddings(resp: &Map<String, Value>, w: &mut OpenAiWriter) {
    let mut items: Vec<(u64, Value)> = resp
        .get("Data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, d)| {
            (
                d.get("Index").and_then(Value::as_u64).unwrap_or(i as u64),
                d.get("Embedding").cloned().unwrap_or_else(|| json!([])),
            )
        })
        .collect();
    items.sort_by_key(|(i, _)| *i);
    let usage = usage_of(resp.get("Usage")).unwrap_or_default();
    w.embeddings(items.into_iter().map(|(_, v)| v).collect(), usage);
}

/// One exchange's response: the API decides the buffered shape; streams keep [`StreamState`].
pub(super) struct Translator {
    pub(super) api: Api,
    pub(super) stream: StreamState,
    /// The request's `Stop` sequences, trimmed from the end of a stopped reply.
    pub(super) stops: Vec<String>,
}

impl Translator {
    pub(super) fn new(api: Api, stops: Vec<String>) -> Self {
        Self {
            api,
            stream: StreamState::with_stops(stops.clone()),
            stops,
        }
    }
}

/// `text` without the stop sequence it ends with (Hunyuan keeps it, OpenAI does not).
pub(super) fn trim_stop<'a>(text: &'a str, stops: &[String]) -> &'a str {
    stops
        .iter()
        .find_map(|s| text.strip_suffix(s.as_str()))
        .unwrap_or(text)
}

impl ResponseTranslator for Translator {
    fn on_event(&mut self, event: SseEvent<'_>, w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        let data = event.data.trim_ascii();
        if data.is_empty() || data == b"[DONE]" {
            return Ok(());
        }
        let v = openai::parse_event(data)?;
        let obj = unwrap_response(&v).expect("parse_event returns objects");
        self.stream.event(obj, w);
        Ok(())
    }

    fn on_body(&mut self, body: &[u8], w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        let v = openai::parse_body(body)?;
        let resp = unwrap_response(&v).expect("parse_body returns objects");
        if let Some(err) = error_in(resp) {
            return Err(err);
        }
        match self.api {
            Api::ChatCompletions => {
                let mut reply = completion(resp);
                for c in &mut reply.choices {
                    if c.finish_reason == Some("stop") {
                        if let Some(text) = &mut c.content {
                            let keep = trim_stop(text, &self.stops).len();
                            text.truncate(keep);
                        }
                    }
                }
                w.completion(reply)
            }
            Api::Embeddings => {
                embeddings(resp, w);
                Ok(())
            }
        }
    }

    fn on_error(&mut self, status: u16, body: &[u8]) -> ProxyError {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        match parsed
            .as_ref()
            .and_then(unwrap_response)
            .and_then(envelope_error)
        {
            Some(mut e) => {
                e.status = status;
                e.kind = error_type_for_status(status);
                e
            }
            None => openai::upstream_error(status, body),
        }
    }
}
