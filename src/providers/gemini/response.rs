//! Gemini's buffered replies (`GenerateContentResponse`, `BatchEmbedContentsResponse`) and errors,
//! and the pieces the stream shares with them.

use super::stream::StreamState;
use super::typed::{self, UsageCounts};
use crate::error::{error_type_for_status, ProxyError};
use crate::openai;
use crate::openai::writer::{tool_call, Choice, Completion, OpenAiWriter};
use crate::providers::{Api, ResponseTranslator};
use crate::sse::SseEvent;
use crate::usage::Usage;
use serde_json::{json, Map, Value};

/// The `error` object of a Google error body (`{"error":{...}}` or `[{"error":{...}}]`).
fn error_object(v: &Value) -> Option<&Map<String, Value>> {
    match v {
        Value::Object(o) => o.get("error")?.as_object(),
        Value::Array(a) => a.first()?.get("error")?.as_object(),
        _ => None,
    }
}

/// Google's error model → OpenAI's error, with `status` (e.g. `INVALID_ARGUMENT`) as the code.
fn google_error(status: u16, e: &Map<String, Value>) -> ProxyError {
    let message = match e.get("message") {
        Some(Value::String(s)) if !s.is_empty() => openai::truncate(s, 4096),
        _ => format!("upstream returned HTTP {status}"),
    };
    let mut err = ProxyError::new(status, error_type_for_status(status), message);
    err.code = match (e.get("status"), e.get("code")) {
        (Some(Value::String(s)), _) if !s.is_empty() => Some(s.clone()),
        (_, Some(Value::Number(n))) => Some(n.to_string()),
        _ => None,
    };
    err
}

/// An error carried inside a 2xx body or stream event: its own `code` is the status when it is one.
fn embedded_error(e: &Map<String, Value>) -> ProxyError {
    let status = e
        .get("code")
        .and_then(Value::as_u64)
        .filter(|c| (400..600).contains(c))
        .map_or(500, |c| c as u16);
    google_error(status, e)
}

/// A 2xx body or stream event parsed with `parse` (the shared wording for what is not a JSON
/// object), unless it is Google's error model, which the streaming endpoint may wrap in a
/// one-element array: that is the error.
pub(super) fn parse_checked(
    bytes: &[u8],
    parse: fn(&[u8]) -> Result<Value, ProxyError>,
) -> Result<Value, ProxyError> {
    match parse(bytes) {
        Ok(v) => match error_object(&v) {
            Some(e) => Err(embedded_error(e)),
            None => Ok(v),
        },
        Err(not_object) => {
            let v = serde_json::from_slice::<Value>(bytes).ok();
            Err(v
                .as_ref()
                .and_then(error_object)
                .map_or(not_object, embedded_error))
        }
    }
}

/// No candidates because the prompt was blocked: a 400 naming Gemini's reason.
pub(super) fn prompt_blocked(v: &Value) -> Option<ProxyError> {
    let reason = v.pointer("/promptFeedback/blockReason")?.as_str()?;
    Some(
        ProxyError::bad_request(format!(
            "the prompt was blocked by Gemini (blockReason {reason})"
        ))
        .with_code("prompt_blocked"),
    )
}

/// Gemini's `finishReason` as OpenAI's finish_reason: a candidate that called functions
/// finished with `tool_calls`.
pub(super) fn finish_reason(gemini: &str, has_tool_calls: bool) -> &'static str {
    if has_tool_calls {
        return "tool_calls";
    }
    match gemini {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        // STOP, OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, or anything new.
        _ => "stop",
    }
}

/// `usageMetadata` → usage; thinking tokens count as completion tokens, as in OpenAI's usage,
/// and are its `reasoning_tokens`; `cachedContentTokenCount` is its `cached_tokens`.
pub(super) fn usage_of(v: &Value) -> Option<Usage> {
    let um = v.get("usageMetadata")?.as_object()?;
    let get = |k: &str| um.get(k).and_then(Value::as_u64);
    Some(
        UsageCounts {
            prompt: get("promptTokenCount"),
            candidates: get("candidatesTokenCount"),
            thoughts: get("thoughtsTokenCount"),
            total: get("totalTokenCount"),
            cached: get("cachedContentTokenCount"),
        }
        .usage(),
    )
}

impl UsageCounts {
    pub(super) fn usage(&self) -> Usage {
        let completion = [self.candidates.unwrap_or(0), self.thoughts.unwrap_or(0)];
        Usage::saturating(&[self.prompt.unwrap_or(0)], &completion, self.total)
            .with_reasoning(self.thoughts)
            .with_cached(self.cached)
    }
}

pub(super) fn candidates(v: &Value) -> &[Value] {
    v.get("candidates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A candidate's `index`, else its position.
pub(super) fn candidate_index(candidate: &Value, pos: usize) -> usize {
    candidate
        .get("index")
        .and_then(Value::as_u64)
        .map_or(pos, |i| usize::try_from(i).unwrap_or(usize::MAX))
}

/// The parts of a candidate.
pub(super) fn answer_parts(candidate: &Value) -> impl Iterator<Item = &Value> {
    candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
}

/// A thought summary part (`thought: true`, with `includeThoughts`): reasoning, not answer.
pub(super) fn is_thought(part: &Value) -> bool {
    part.get("thought").and_then(Value::as_bool) == Some(true)
}

/// A `functionCall` part read for OpenAI.
pub(super) struct FunctionCall<'a> {
    pub id: String,
    pub name: &'a str,
    pub arguments: String,
    /// `extra_content` carrying the part's thought signature, for the client to send back.
    pub extra_content: Option<Value>,
}

impl<'a> FunctionCall<'a> {
    /// Gemini gives calls no id (unless it sends one): each gets a fresh random one, so ids never
    /// repeat across replies. `signature` is the part's `thoughtSignature`.
    pub fn read(call: &'a Value, signature: Option<&str>) -> Self {
        Self {
            id: call
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(crate::openai::new_tool_call_id, str::to_string),
            name: call.get("name").and_then(Value::as_str).unwrap_or_default(),
            arguments: call
                .get("args")
                .filter(|a| !a.is_null())
                .map_or_else(|| "{}".to_string(), Value::to_string),
            extra_content: signature.map(|sig| json!({"google": {"thought_signature": sig}})),
        }
    }
}

/// What one part is for OpenAI, however it was read.
pub(super) enum PartView<'a> {
    Reasoning(&'a str),
    Text(&'a str),
    /// A `functionCall` and the part's `thoughtSignature`.
    Call(&'a Value, Option<&'a str>),
    /// Anything else (inline data, executable code, ...): nothing to say.
    Other,
}

impl<'a> PartView<'a> {
    /// A part read as `Value` (the reference).
    pub fn of_value(part: &'a Value) -> Self {
        if let Some(t) = part
            .get("text")
            .and_then(Value::as_str)
            .filter(|_| is_thought(part))
        {
            PartView::Reasoning(t)
        } else if let Some(t) = part.get("text").and_then(Value::as_str) {
            PartView::Text(t)
        } else if let Some(call) = part.get("functionCall") {
            PartView::Call(call, part.get("thoughtSignature").and_then(Value::as_str))
        } else {
            PartView::Other
        }
    }

    /// A part read the fast way: the same decisions.
    pub fn of_typed(part: &'a typed::Part<'_>) -> Self {
        match (&part.text, &part.function_call) {
            (Some(t), _) if part.thought == Some(true) => PartView::Reasoning(t),
            (Some(t), _) => PartView::Text(t),
            (None, Some(call)) => PartView::Call(call, part.thought_signature.as_deref()),
            (None, None) => PartView::Other,
        }
    }
}

/// Per exchange: which API answered, and the stream's bounded state.
pub(super) struct GeminiTranslator {
    api: Api,
    stream: StreamState,
}

impl GeminiTranslator {
    pub fn new(api: Api) -> Self {
        Self {
            api,
            stream: StreamState::default(),
        }
    }
}

fn chat_body(v: &Value, w: &mut OpenAiWriter) -> Result<(), ProxyError> {
    let candidates = candidates(v);
    if candidates.is_empty() {
        return Err(prompt_blocked(v)
            .unwrap_or_else(|| ProxyError::bad_upstream("Gemini returned no candidates")));
    }
    let candidates = candidates.iter().enumerate().map(|(pos, cand)| {
        (
            candidate_index(cand, pos),
            answer_parts(cand).map(PartView::of_value),
            cand.get("finishReason").and_then(Value::as_str),
        )
    });
    chat_reply(
        candidates,
        v.get("modelVersion").and_then(Value::as_str),
        usage_of(v),
        w,
    )
}

/// A chat reply as the `Value` reading translates it (the reference the fast path is tested
/// against).
#[cfg(test)]
pub(super) fn reference_body(body: &[u8], w: &mut OpenAiWriter) -> Result<(), ProxyError> {
    chat_body(&parse_checked(body, openai::parse_body)?, w)
}

/// A chat reply read the fast way ([`typed`]); `None` when it is for the reference reading.
fn typed_chat_body(body: &[u8], w: &mut OpenAiWriter) -> Option<Result<(), ProxyError>> {
    let ev = typed::read(body).filter(|ev| !ev.candidates.is_empty())?;
    let candidates = ev.candidates.iter().enumerate().map(|(pos, cand)| {
        (
            cand.index
                .map_or(pos, |i| usize::try_from(i).unwrap_or(usize::MAX)),
            cand.parts.iter().map(PartView::of_typed),
            cand.finish_reason.as_deref(),
        )
    });
    Some(chat_reply(
        candidates,
        ev.model_version.as_deref(),
        ev.usage.map(|u| u.usage()),
        w,
    ))
}

/// A chat reply's candidates (index, parts, finishReason) as one completion.
fn chat_reply<'a, P: Iterator<Item = PartView<'a>>>(
    candidates: impl Iterator<Item = (usize, P, Option<&'a str>)>,
    model: Option<&str>,
    usage: Option<Usage>,
    w: &mut OpenAiWriter,
) -> Result<(), ProxyError> {
    let mut choices = Vec::with_capacity(candidates.size_hint().0);
    for (index, parts, reason) in candidates {
        let mut choice = Choice {
            index: u32::try_from(index)
                .map_err(|_| ProxyError::bad_upstream("Gemini candidate index is out of range"))?,
            ..Choice::default()
        };
        for part in parts {
            match part {
                PartView::Reasoning(t) => {
                    choice.reasoning.get_or_insert_with(String::new).push_str(t)
                }
                PartView::Text(t) => choice.content.get_or_insert_with(String::new).push_str(t),
                PartView::Call(call, signature) => {
                    let call = FunctionCall::read(call, signature);
                    let mut tc = tool_call(&call.id, call.name, call.arguments);
                    if let Some(extra) = call.extra_content {
                        tc["extra_content"] = extra;
                    }
                    choice.tool_calls.push(tc);
                }
                PartView::Other => {}
            }
        }
        let reason = reason.unwrap_or("STOP");
        choice.finish_reason = Some(finish_reason(reason, !choice.tool_calls.is_empty()));
        choices.push(choice);
    }
    choices.sort_by_key(|c| c.index);
    w.completion(Completion {
        model: model.map(str::to_string),
        choices,
        usage,
        ..Completion::default()
    })
}

fn embeddings_body(v: &Value, w: &mut OpenAiWriter) -> Result<(), ProxyError> {
    let Some(items) = v.get("embeddings").and_then(Value::as_array) else {
        return Err(ProxyError::bad_upstream(
            "Gemini embeddings response has no 'embeddings' array",
        ));
    };
    let vectors: Vec<Value> = items
        .iter()
        .map(|e| e.get("values").cloned().unwrap_or_else(|| json!([])))
        .collect();
    // The Gemini API sends no usage for embeddings (Vertex-style `usageMetadata` is read if
    // present); the body then says 0 and the usage stays unknown.
    match v
        .pointer("/usageMetadata/promptTokenCount")
        .and_then(Value::as_u64)
    {
        Some(p) => w.embeddings(vectors, Usage::new(p, 0, Some(p))),
        None => w.embeddings_without_usage(vectors),
    }
    Ok(())
}

impl ResponseTranslator for GeminiTranslator {
    fn on_event(&mut self, event: SseEvent<'_>, w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        self.stream.on_event(event, w)
    }

    /// Gemini's stream has no end marker: the writer's check for a finish reason is the check.
    fn on_body(&mut self, body: &[u8], w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        if self.api == Api::ChatCompletions {
            if let Some(done) = typed_chat_body(body, w) {
                return done;
            }
        }
        let v = parse_checked(body, openai::parse_body)?;
        match self.api {
            Api::ChatCompletions => chat_body(&v, w),
            Api::Embeddings => embeddings_body(&v, w),
        }
    }

    fn held_capacity(&self) -> usize {
        self.stream.held_capacity()
    }

    fn on_error(&mut self, status: u16, body: &[u8]) -> ProxyError {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => match error_object(&v) {
                Some(e) => google_error(status, e),
                None => openai::upstream_error(status, body),
            },
            Err(_) => openai::upstream_error(status, body),
        }
    }
}
