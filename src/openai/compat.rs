//! Normalisation of the bodies and chunks of OpenAI-compatible providers, so that what we forward
//! validates against OpenAI's spec.

use super::{new_completion_id, now_secs, StreamMeta, FINISH_REASONS};
use crate::error::{error_type_for_status, ProxyError};
use crate::usage::Usage;
use serde_json::{Map, Value};

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

/// Content given as an array of blocks (Mistral's reasoning models: `text` blocks and
/// `thinking` blocks holding text blocks) becomes OpenAI's string `content`, with the thinking
/// text as `reasoning_content`.
fn flatten_content_blocks(msg: &mut Map<String, Value>) {
    let Some(Value::Array(blocks)) = msg.get("content") else {
        return;
    };
    let mut text = String::new();
    let mut thinking = String::new();
    fn texts(v: &Value, into: &mut String) {
        match v {
            Value::String(s) => into.push_str(s),
            Value::Array(items) => items.iter().for_each(|i| texts(i, into)),
            Value::Object(o) => {
                if let Some(Value::String(t)) = o.get("text") {
                    into.push_str(t);
                }
            }
            _ => {}
        }
    }
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("thinking") => texts(b.get("thinking").unwrap_or(&Value::Null), &mut thinking),
            _ => texts(b, &mut text),
        }
    }
    msg.insert("content".into(), text.into());
    if !thinking.is_empty() {
        let merged = match msg.get("reasoning_content").and_then(Value::as_str) {
            Some(r) => format!("{r}{thinking}"),
            None => thinking,
        };
        msg.insert("reasoning_content".into(), merged.into());
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
                flatten_content_blocks(m);
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
                                && c.get("delta").is_some_and(|d| {
                                    d.is_object()
                                        && d.get("content")
                                            .is_none_or(|x| x.is_string() || x.is_null())
                                })
                                && !c.contains_key("usage")
                                && c.get("finish_reason").is_some_and(|r| {
                                    r.is_null()
                                        || r.as_str().is_some_and(|r| FINISH_REASONS.contains(&r))
                                })
                        })
                    })
            })
}

/// Brings one stream chunk into OpenAI's shape, filling what it lacks from the stream's
/// identity (the first id/created/model seen, so every chunk agrees: Azure's first chunk has
/// empty ones). Returns the usage it carries, if any.
pub fn normalize_chunk(obj: &mut Map<String, Value>, meta: &StreamMeta) -> Option<Usage> {
    let usage = find_usage(obj);
    if obj
        .get("id")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        obj.insert("id".into(), meta.id.clone().into());
    }
    drop_null(obj, "system_fingerprint");
    obj.insert("object".into(), "chat.completion.chunk".into());
    match obj.get("created").and_then(Value::as_u64) {
        Some(c) if c > 0 => {}
        _ => {
            obj.insert("created".into(), meta.created.into());
        }
    }
    match obj.get("model").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => {}
        _ => {
            obj.insert("model".into(), meta.model.clone().into());
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
            if let Some(d) = c.get_mut("delta").and_then(Value::as_object_mut) {
                flatten_content_blocks(d);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Mistral's reasoning (Magistral) replies give `content` as blocks (docs.mistral.ai,
    /// "Reasoning"): a `thinking` block of text chunks, then a `text` block.
    #[test]
    fn content_blocks_become_text_and_reasoning() {
        let mut body = json!({"id": "x", "object": "chat.completion", "created": 1, "model": "magistral-medium-latest",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": [
                {"type": "thinking", "thinking": [{"type": "text", "text": "Two and two."}]},
                {"type": "text", "text": "4"}]}}]});
        normalize_completion(body.as_object_mut().unwrap(), "m");
        let m = &body["choices"][0]["message"];
        assert_eq!(m["content"], "4");
        assert_eq!(m["reasoning_content"], "Two and two.");
        let chunk = json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": null, "delta": {"content": [{"type": "text", "text": "hi"}]}}]});
        assert!(!chunk_is_conformant(chunk.as_object().unwrap()));
        let mut chunk = chunk;
        normalize_chunk(chunk.as_object_mut().unwrap(), &StreamMeta::new("m"));
        assert_eq!(chunk["choices"][0]["delta"]["content"], "hi");
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
}
