//! OpenAI's response shapes: builders for translated output and normalisation of the bodies and
//! chunks of OpenAI-compatible providers, so that what we emit validates against OpenAI's spec.

use crate::error::{error_type_for_status, ProxyError};
use crate::sse;
use crate::usage::Usage;
use serde::Serialize;
use serde_json::{Map, Value};
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

/// Identity shared by every chunk of one streamed completion.
#[derive(Debug, Clone)]
pub struct StreamMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
}

impl StreamMeta {
    pub fn new(model: &str) -> Self {
        Self {
            id: new_completion_id(),
            created: now_secs(),
            model: model.to_string(),
        }
    }
}

/// The `delta` of a chunk; `None` fields are omitted.
#[derive(Debug, Default, Serialize)]
pub struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<&'a Value>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: &'a Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct UsageJson {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

#[derive(Serialize)]
struct Chunk<'a, C: Serialize> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: C,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageJson>,
}

impl StreamMeta {
    /// Appends one `chat.completion.chunk` event with a single choice. Serialised straight into
    /// `out`: no intermediate JSON tree.
    pub fn write_chunk(
        &self,
        out: &mut Vec<u8>,
        index: u32,
        delta: &Delta<'_>,
        finish_reason: Option<&str>,
    ) {
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: [ChunkChoice {
                index,
                delta,
                logprobs: None,
                finish_reason,
            }],
            usage: None,
        };
        sse::write_data(out, &chunk);
    }

    /// Appends the usage chunk OpenAI sends for `stream_options.include_usage` (empty choices).
    pub fn write_usage_chunk(&self, out: &mut Vec<u8>, usage: &Usage) {
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: [(); 0],
            usage: Some(UsageJson {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
                total_tokens: usage.total_tokens,
            }),
        };
        sse::write_data(out, &chunk);
    }
}

/// An error event inside a stream: the openai SDKs raise on a `data:` event carrying `error`.
pub fn write_stream_error(out: &mut Vec<u8>, err: &ProxyError) {
    sse::write_data(out, &err.to_json());
}

/// One choice of a buffered chat completion, as translating providers produce it.
pub fn completion_choice(index: usize, message: Value, finish_reason: &str) -> Value {
    serde_json::json!({
        "index": index,
        "message": message,
        "logprobs": null,
        "finish_reason": finish_reason,
    })
}

/// An assistant message with content (possibly null) and optional tool calls.
pub fn assistant_message(content: Option<String>, tool_calls: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("role".into(), "assistant".into());
    m.insert("content".into(), content.map_or(Value::Null, Value::String));
    m.insert("refusal".into(), Value::Null);
    if let Some(tc) = tool_calls {
        m.insert("tool_calls".into(), tc);
    }
    Value::Object(m)
}

/// A whole chat completion body.
pub fn completion(
    id: String,
    created: u64,
    model: &str,
    choices: Vec<Value>,
    usage: Option<&Usage>,
) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), id.into());
    m.insert("object".into(), "chat.completion".into());
    m.insert("created".into(), created.into());
    m.insert("model".into(), model.into());
    m.insert("choices".into(), Value::Array(choices));
    if let Some(u) = usage {
        m.insert("usage".into(), u.to_json());
    }
    Value::Object(m)
}

/// An embeddings list body.
pub fn embedding_list(model: &str, vectors: Vec<Value>, usage: &Usage) -> Value {
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| serde_json::json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    serde_json::json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens},
    })
}

fn set_if_missing(
    obj: &mut Map<String, Value>,
    key: &str,
    f: impl FnOnce() -> Value,
    ok: impl Fn(&Value) -> bool,
) {
    if !obj.get(key).is_some_and(&ok) {
        obj.insert(key.to_string(), f());
    }
}

/// Providers send `null` for some optional string fields that OpenAI's schema types as string.
fn drop_null(obj: &mut Map<String, Value>, key: &str) {
    if obj.get(key).is_some_and(Value::is_null) {
        obj.remove(key);
    }
}

/// Usage from an OpenAI-compatible body or chunk: top-level `usage`, or where some providers put
/// it instead (Moonshot: `choices[0].usage`; Groq: `x_groq.usage`).
pub fn find_usage(obj: &Map<String, Value>) -> Option<Usage> {
    obj.get("usage")
        .and_then(Usage::from_openai)
        .or_else(|| {
            obj.get("choices")?
                .as_array()?
                .first()?
                .get("usage")
                .and_then(Usage::from_openai)
        })
        .or_else(|| obj.get("x_groq")?.get("usage").and_then(Usage::from_openai))
}

/// Errors that OpenAI-compatible providers report inside a 2xx body: MiniMax's non-zero
/// `base_resp.status_code`, Spark's non-zero `code` without choices.
pub fn error_in_success_body(obj: &Map<String, Value>) -> Option<ProxyError> {
    if let Some(base) = obj.get("base_resp") {
        let code = base.get("status_code").and_then(Value::as_i64).unwrap_or(0);
        if code != 0 {
            let msg = base
                .get("status_msg")
                .and_then(Value::as_str)
                .unwrap_or("upstream error");
            let status = match code {
                1004 => 401,
                1002 | 1039 => 429,
                1008 => 402,
                _ => 400,
            };
            return Some(
                ProxyError::new(status, error_type_for_status(status), msg)
                    .with_code(code.to_string()),
            );
        }
    }
    if !obj.contains_key("choices") && !obj.contains_key("data") {
        if let Some(code) = obj.get("code").and_then(Value::as_i64).filter(|c| *c != 0) {
            let msg = obj
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("upstream error");
            return Some(
                ProxyError::new(400, "invalid_request_error", msg).with_code(code.to_string()),
            );
        }
    }
    None
}

fn fix_finish_reason(choice: &mut Map<String, Value>, default: Option<&str>) {
    let ok = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .is_some_and(|r| FINISH_REASONS.contains(&r));
    if !ok {
        let mapped = match choice.get("finish_reason").and_then(Value::as_str) {
            Some("max_tokens" | "length_limit") => Some("length"),
            Some("tool_call" | "function_call_v2") => Some("tool_calls"),
            Some("sensitive" | "content_filter") => Some("content_filter"),
            Some("stop_sequence" | "end_turn" | "eos") => Some("stop"),
            _ => default,
        };
        choice.insert(
            "finish_reason".into(),
            mapped.map_or(Value::Null, Into::into),
        );
    }
}

/// Brings a buffered chat completion from an OpenAI-compatible provider into OpenAI's exact shape
/// (providers omit `object`, `id`, `created`, `finish_reason`, `logprobs`, `refusal`, or put
/// usage elsewhere). Returns the usage found.
pub fn normalize_completion(obj: &mut Map<String, Value>, model: &str) -> Option<Usage> {
    let usage = find_usage(obj);
    set_if_missing(
        obj,
        "id",
        || new_completion_id().into(),
        |v| v.as_str().is_some_and(|s| !s.is_empty()),
    );
    obj.insert("object".into(), "chat.completion".into());
    set_if_missing(obj, "created", || now_secs().into(), Value::is_u64);
    set_if_missing(
        obj,
        "model",
        || model.into(),
        |v| v.as_str().is_some_and(|s| !s.is_empty()),
    );
    drop_null(obj, "system_fingerprint");
    if let Some(Value::Array(choices)) = obj.get_mut("choices") {
        for (i, choice) in choices.iter_mut().enumerate() {
            let Some(c) = choice.as_object_mut() else {
                continue;
            };
            set_if_missing(c, "index", || i.into(), Value::is_u64);
            fix_finish_reason(c, Some("stop"));
            set_if_missing(c, "logprobs", || Value::Null, |_| true);
            c.remove("usage");
            // Some providers answer with `delta` in a non-streamed body (the seed's Hunyuan example).
            if !c.contains_key("message") {
                if let Some(d) = c.remove("delta") {
                    c.insert("message".into(), d);
                }
            }
            let msg = c
                .entry("message")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(m) = msg.as_object_mut() {
                set_if_missing(m, "role", || "assistant".into(), Value::is_string);
                set_if_missing(
                    m,
                    "content",
                    || Value::Null,
                    |v| v.is_string() || v.is_null(),
                );
                set_if_missing(
                    m,
                    "refusal",
                    || Value::Null,
                    |v| v.is_string() || v.is_null(),
                );
            }
        }
    } else {
        obj.insert("choices".into(), Value::Array(Vec::new()));
    }
    if let Some(u) = &usage {
        obj.insert("usage".into(), u.to_json());
    }
    usage
}

/// Whether a stream chunk from an OpenAI-compatible provider already has OpenAI's exact shape, so
/// its bytes can be forwarded as they are (most events of OpenAI-protocol providers). Usage, when
/// present, is at the top level only.
pub fn chunk_is_conformant(obj: &Map<String, Value>) -> bool {
    let nonempty = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    obj.get("object").and_then(Value::as_str) == Some("chat.completion.chunk")
        && nonempty("id")
        && nonempty("model")
        && obj
            .get("created")
            .and_then(Value::as_u64)
            .is_some_and(|c| c > 0)
        && obj.get("system_fingerprint").is_none_or(Value::is_string)
        && obj
            .get("usage")
            .is_none_or(|u| u.is_null() || Usage::from_openai(u).is_some())
        && !obj.contains_key("x_groq")
        && !obj.contains_key("base_resp")
        && obj
            .get("choices")
            .and_then(Value::as_array)
            .is_some_and(|choices| {
                !choices.is_empty()
                    && choices.iter().all(|c| {
                        c.as_object().is_some_and(|c| {
                            c.get("index").is_some_and(Value::is_u64)
                                && c.get("delta").is_some_and(Value::is_object)
                                && !c.contains_key("usage")
                                && c.get("finish_reason").is_some_and(|r| {
                                    r.is_null()
                                        || r.as_str().is_some_and(|r| FINISH_REASONS.contains(&r))
                                })
                        })
                    })
            })
}

/// Brings one stream chunk into OpenAI's shape. Returns the usage it carries, if any.
pub fn normalize_chunk(
    obj: &mut Map<String, Value>,
    meta: &mut Option<StreamMeta>,
    model: &str,
) -> Option<Usage> {
    let usage = find_usage(obj);
    // Keep the first id/created/model we see so every chunk agrees (Azure's first chunk has
    // empty ones).
    let m = meta.get_or_insert_with(|| StreamMeta::new(model));
    match obj.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => {
            if m.id != id {
                m.id = id.to_string();
            }
        }
        _ => {
            obj.insert("id".into(), m.id.clone().into());
        }
    }
    drop_null(obj, "system_fingerprint");
    obj.insert("object".into(), "chat.completion.chunk".into());
    match obj.get("created").and_then(Value::as_u64) {
        Some(c) if c > 0 => {}
        _ => {
            obj.insert("created".into(), m.created.into());
        }
    }
    match obj.get("model").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => {}
        _ => {
            obj.insert("model".into(), m.model.clone().into());
        }
    }
    if let Some(Value::Array(choices)) = obj.get_mut("choices") {
        for (i, choice) in choices.iter_mut().enumerate() {
            let Some(c) = choice.as_object_mut() else {
                continue;
            };
            set_if_missing(c, "index", || i.into(), Value::is_u64);
            fix_finish_reason(c, None);
            c.remove("usage");
            if !c.get("delta").is_some_and(Value::is_object) {
                let d = c
                    .remove("message")
                    .filter(Value::is_object)
                    .unwrap_or_else(|| Value::Object(Map::new()));
                c.insert("delta".into(), d);
            }
        }
    } else {
        obj.insert("choices".into(), Value::Array(Vec::new()));
    }
    match &usage {
        Some(u) => {
            obj.insert("usage".into(), u.to_json());
        }
        None => {
            obj.remove("usage");
        }
    }
    usage
}

/// Brings an embeddings body into OpenAI's shape (some providers send `object: ""`).
pub fn normalize_embeddings(obj: &mut Map<String, Value>, model: &str) -> Option<Usage> {
    obj.insert("object".into(), "list".into());
    set_if_missing(
        obj,
        "model",
        || model.into(),
        |v| v.as_str().is_some_and(|s| !s.is_empty()),
    );
    if let Some(Value::Array(items)) = obj.get_mut("data") {
        for (i, item) in items.iter_mut().enumerate() {
            if let Some(it) = item.as_object_mut() {
                it.insert("object".into(), "embedding".into());
                set_if_missing(it, "index", || i.into(), Value::is_u64);
            }
        }
    }
    let usage = obj.get("usage").and_then(Usage::from_openai);
    let u = usage.unwrap_or_default();
    obj.insert(
        "usage".into(),
        serde_json::json!({"prompt_tokens": u.prompt_tokens, "total_tokens": u.total_tokens}),
    );
    usage
}

/// Converts any upstream error body into OpenAI's error shape, keeping the upstream status.
/// Understands OpenAI's `{"error":{...}}`, `{"error":"msg"}`, Mistral's unwrapped
/// `{"object":"error","message":...}`, Cloudflare's `{"errors":[{"code","message"}]}`,
/// MiniMax's `base_resp`, and falls back to the raw text.
pub fn upstream_error(status: u16, body: &[u8]) -> ProxyError {
    let kind = error_type_for_status(status);
    let fallback = || {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let msg = if text.is_empty() {
            format!("upstream returned HTTP {status}")
        } else {
            truncate(text, 1024)
        };
        ProxyError::new(status, kind, msg)
    };
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return fallback();
    };
    let code_str = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let msg_str = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut err = if let Some(e) = obj.get("error") {
        match e {
            Value::Object(eo) => {
                let mut pe = ProxyError::new(
                    status,
                    kind,
                    eo.get("message").map_or_else(|| e.to_string(), msg_str),
                );
                pe.code = code_str(eo.get("code")).or_else(|| code_str(eo.get("status")));
                pe.param = eo.get("param").and_then(Value::as_str).map(str::to_string);
                pe
            }
            other => ProxyError::new(status, kind, msg_str(other)),
        }
    } else if let Some(Value::Array(errs)) = obj.get("errors") {
        let first = errs.first();
        let mut pe = ProxyError::new(
            status,
            kind,
            first
                .and_then(|e| e.get("message"))
                .map_or_else(|| "upstream error".to_string(), msg_str),
        );
        pe.code = code_str(first.and_then(|e| e.get("code")));
        pe
    } else if let Some(m) = obj.get("message") {
        let mut pe = ProxyError::new(status, kind, msg_str(m));
        pe.code = code_str(obj.get("code"));
        pe
    } else if let Some(mut pe) = error_in_success_body(&obj) {
        pe.status = status;
        pe.kind = kind;
        pe
    } else {
        return fallback();
    };
    err.message = truncate(&err.message, 4096);
    err
}

/// Whether an OpenAI request parameter asks for something, i.e. is set to other than its neutral
/// value (`n: 1`, `logprobs: false`, an empty `logit_bias`, zero penalties, a text
/// `response_format`, text-only `modalities`, `parallel_tool_calls: true`). Null never does.
pub fn requests_feature(key: &str, v: &Value) -> bool {
    match key {
        _ if v.is_null() => false,
        "n" => v.as_f64() != Some(1.0),
        "logprobs" => v != &Value::Bool(false),
        "logit_bias" => !v.as_object().is_some_and(Map::is_empty),
        "presence_penalty" | "frequency_penalty" => v.as_f64() != Some(0.0),
        "response_format" => v.get("type").and_then(Value::as_str) != Some("text"),
        "modalities" => v != &serde_json::json!(["text"]),
        "parallel_tool_calls" => v != &Value::Bool(true),
        _ => true,
    }
}

/// The first of `params` that the request sets to a non-neutral value, as a 400 naming it: for
/// providers whose API cannot express those OpenAI parameters.
pub fn reject_params(
    obj: &Map<String, Value>,
    params: &[&str],
    provider: &str,
) -> Result<(), ProxyError> {
    match params
        .iter()
        .find(|k| obj.get(**k).is_some_and(|v| requests_feature(k, v)))
    {
        Some(k) => Err(ProxyError::unsupported(&format!("'{k}'"), provider).with_param(*k)),
        None => Ok(()),
    }
}

/// One function tool of an OpenAI request (`{"type": "function", "function": {...}}`).
#[derive(Debug, Clone, Copy)]
pub struct FunctionTool<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    /// The JSON schema of the arguments, when given.
    pub parameters: Option<&'a Value>,
}

/// The request's `tools`, checked: an array of function tools each with a name; other tool types
/// are a 400 naming the provider that cannot take them.
pub fn function_tools<'a>(
    v: Option<&'a Value>,
    provider: &str,
) -> Result<Vec<FunctionTool<'a>>, ProxyError> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ProxyError::bad_request("'tools' must be an array").with_param("tools"))
        }
    };
    items
        .iter()
        .map(|t| {
            let kind = t.get("type").and_then(Value::as_str).unwrap_or("");
            if kind != "function" {
                return Err(ProxyError::unsupported(
                    &format!("tools of type '{kind}'"),
                    provider,
                ));
            }
            let f = t.get("function").unwrap_or(&Value::Null);
            let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                ProxyError::bad_request("every tool needs 'function.name'").with_param("tools")
            })?;
            Ok(FunctionTool {
                name,
                description: f.get("description").and_then(Value::as_str),
                parameters: f.get("parameters").filter(|p| !p.is_null()),
            })
        })
        .collect()
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn upstream_error_shapes() {
        let e = upstream_error(401, br#"{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}"#);
        assert_eq!(
            (e.status, e.kind, e.message.as_str(), e.code.as_deref()),
            (
                401,
                "authentication_error",
                "bad key",
                Some("invalid_api_key")
            )
        );
        let e = upstream_error(
            422,
            br#"{"object":"error","message":{"detail":[1]},"type":"x"}"#,
        );
        assert_eq!(e.message, r#"{"detail":[1]}"#);
        let e = upstream_error(
            400,
            br#"{"result":null,"success":false,"errors":[{"code":7003,"message":"No route"}]}"#,
        );
        assert_eq!(
            (e.message.as_str(), e.code.as_deref()),
            ("No route", Some("7003"))
        );
        let e = upstream_error(503, b"<html>down</html>");
        assert_eq!(
            (e.status, e.kind, e.message.as_str()),
            (503, "api_error", "<html>down</html>")
        );
        let e = upstream_error(500, b"");
        assert_eq!(e.message, "upstream returned HTTP 500");
    }

    #[test]
    fn minimax_base_resp_error_in_200() {
        let v = json!({"base_resp": {"status_code": 1004, "status_msg": "login fail"}});
        let e = error_in_success_body(v.as_object().unwrap()).unwrap();
        assert_eq!(
            (e.status, e.message.as_str(), e.code.as_deref()),
            (401, "login fail", Some("1004"))
        );
        let ok = json!({"choices": [], "base_resp": {"status_code": 0, "status_msg": ""}});
        assert!(error_in_success_body(ok.as_object().unwrap()).is_none());
    }

    #[test]
    fn chunk_writer_shape() {
        let meta = StreamMeta {
            id: "chatcmpl-1".into(),
            created: 5,
            model: "m".into(),
        };
        let mut out = Vec::new();
        meta.write_chunk(
            &mut out,
            0,
            &Delta {
                content: Some("hi"),
                ..Default::default()
            },
            None,
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        );
    }
}
