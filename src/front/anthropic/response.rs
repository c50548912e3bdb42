//! OpenAI chat completion (what the pipeline produced) → Anthropic message.

use serde_json::{json, Map, Value};

/// `msg_` ids: Anthropic's prefix, keeping the upstream's id when there is one.
pub fn message_id(openai_id: Option<&str>) -> String {
    match openai_id.filter(|s| !s.is_empty()) {
        Some(id) => format!("msg_{}", id.strip_prefix("chatcmpl-").unwrap_or(id)),
        None => {
            use rand::Rng;
            let n: u128 = rand::thread_rng().gen();
            format!("msg_{:024x}", n & ((1u128 << 96) - 1))
        }
    }
}

/// `toolu_` id for a tool call the upstream left without one.
pub fn tool_use_id() -> String {
    use rand::Rng;
    let n: u128 = rand::thread_rng().gen();
    format!("toolu_{:024x}", n & ((1u128 << 96) - 1))
}

/// Anthropic `stop_reason` (and `stop_sequence`) for an OpenAI choice. OpenAI does not say which
/// stop sequence matched; vLLM-style servers put it in the choice's `stop_reason`, SGLang in
/// `matched_stop`, and we report it when it is one the client asked for.
pub fn stop_reason(
    finish_reason: Option<&str>,
    matched: Option<&str>,
    stop_sequences: &[String],
) -> (&'static str, Option<String>) {
    match finish_reason {
        Some("length") => ("max_tokens", None),
        Some("tool_calls" | "function_call") => ("tool_use", None),
        Some("content_filter") => ("refusal", None),
        _ => match matched.filter(|m| stop_sequences.iter().any(|s| s == m)) {
            Some(m) => ("stop_sequence", Some(m.to_string())),
            None => ("end_turn", None),
        },
    }
}

/// The matched stop string of a choice, where the upstream reports one.
pub fn matched_stop(choice: &Value) -> Option<&str> {
    choice
        .get("stop_reason")
        .and_then(Value::as_str)
        .or_else(|| choice.get("matched_stop").and_then(Value::as_str))
}

/// Anthropic usage from OpenAI's: `input_tokens` excludes cached prompt tokens, which are
/// `cache_read_input_tokens`.
pub fn usage_json(u: Option<&Value>) -> Value {
    let get = |k: &str| {
        u.and_then(|u| u.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let cached = u
        .and_then(|u| u.get("prompt_tokens_details"))
        .and_then(|d| d.get("cached_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let prompt = get("prompt_tokens");
    json!({
        "input_tokens": prompt.saturating_sub(cached),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": get("completion_tokens"),
    })
}

/// Tool arguments as the `input` object. Arguments that are not a JSON object are kept under
/// `arguments` rather than dropped, since `input` must be an object.
pub fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "arguments": arguments }),
    }
}

/// Converts a whole OpenAI chat completion body. `None` when it is not one.
pub fn completion_to_message(body: &[u8], stop_sequences: &[String]) -> Option<Vec<u8>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    let choice = obj.get("choices")?.as_array()?.first()?;
    let msg = choice.get("message").unwrap_or(&Value::Null);
    let mut content = Vec::new();
    for key in ["reasoning_content", "reasoning"] {
        if let Some(t) = msg
            .get(key)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            content.push(json!({"type": "thinking", "thinking": t, "signature": ""}));
            break;
        }
    }
    match msg.get("content") {
        Some(Value::String(t)) if !t.is_empty() => {
            content.push(json!({"type": "text", "text": t}));
        }
        Some(Value::Array(parts)) => {
            let text: String = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            if !text.is_empty() {
                content.push(json!({"type": "text", "text": text}));
            }
        }
        _ => {}
    }
    if let Some(Value::Array(calls)) = msg.get("tool_calls") {
        for c in calls {
            let f = c.get("function").unwrap_or(&Value::Null);
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(tool_use_id, str::to_string);
            content.push(json!({
                "type": "tool_use",
                "id": id,
                "name": f.get("name").and_then(Value::as_str).unwrap_or_default(),
                "input": tool_input(f.get("arguments").and_then(Value::as_str).unwrap_or_default()),
            }));
        }
    }
    let (reason, seq) = stop_reason(
        choice.get("finish_reason").and_then(Value::as_str),
        matched_stop(choice),
        stop_sequences,
    );
    let mut out = Map::new();
    out.insert(
        "id".into(),
        message_id(obj.get("id").and_then(Value::as_str)).into(),
    );
    out.insert("type".into(), "message".into());
    out.insert("role".into(), "assistant".into());
    out.insert(
        "model".into(),
        obj.get("model").cloned().unwrap_or_else(|| "".into()),
    );
    out.insert("content".into(), Value::Array(content));
    out.insert("stop_reason".into(), reason.into());
    out.insert("stop_sequence".into(), seq.map_or(Value::Null, Value::from));
    out.insert("usage".into(), usage_json(obj.get("usage")));
    Some(serde_json::to_vec(&Value::Object(out)).expect("serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Body shape: OpenAI's "The chat completion object" (validated against the spec elsewhere).
    #[test]
    fn text_tool_and_reasoning_completion() {
        let body = json!({
            "id": "chatcmpl-abc", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Checking.", "reasoning_content": "think",
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35,
                      "prompt_tokens_details": {"cached_tokens": 10}},
        });
        let out = completion_to_message(body.to_string().as_bytes(), &[]).unwrap();
        let m: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            m,
            json!({
                "id": "msg_abc", "type": "message", "role": "assistant", "model": "gpt-4o",
                "content": [
                    {"type": "thinking", "thinking": "think", "signature": ""},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 20, "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": 10, "output_tokens": 5},
            })
        );
    }

    #[test]
    fn stop_reasons() {
        let seqs = vec!["END".to_string()];
        assert_eq!(stop_reason(Some("stop"), None, &seqs), ("end_turn", None));
        assert_eq!(
            stop_reason(Some("stop"), Some("END"), &seqs),
            ("stop_sequence", Some("END".into()))
        );
        assert_eq!(
            stop_reason(Some("stop"), Some("other"), &seqs),
            ("end_turn", None)
        );
        assert_eq!(
            stop_reason(Some("length"), None, &seqs),
            ("max_tokens", None)
        );
        assert_eq!(
            stop_reason(Some("tool_calls"), None, &seqs),
            ("tool_use", None)
        );
        assert_eq!(
            stop_reason(Some("content_filter"), None, &seqs),
            ("refusal", None)
        );
        assert_eq!(stop_reason(None, None, &seqs), ("end_turn", None));
        let body = json!({"id": "x", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
            "stop_reason": "END", "message": {"role": "assistant", "content": "a"}}]});
        let m: Value = serde_json::from_slice(
            &completion_to_message(body.to_string().as_bytes(), &seqs).unwrap(),
        )
        .unwrap();
        assert_eq!(m["stop_reason"], "stop_sequence");
        assert_eq!(m["stop_sequence"], "END");
        assert_eq!(m["usage"]["input_tokens"], 0);
    }

    #[test]
    fn odd_tool_arguments_and_non_completions() {
        assert_eq!(tool_input(""), json!({}));
        assert_eq!(tool_input("[1]"), json!({"arguments": "[1]"}));
        assert!(completion_to_message(b"{}", &[]).is_none());
        assert!(completion_to_message(b"nope", &[]).is_none());
        let body = json!({"choices": [{"message": {"content": null, "tool_calls": [
            {"type": "function", "function": {"name": "f", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}]});
        let m: Value = serde_json::from_slice(
            &completion_to_message(body.to_string().as_bytes(), &[]).unwrap(),
        )
        .unwrap();
        assert!(m["id"].as_str().unwrap().starts_with("msg_"));
        assert!(m["content"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("toolu_"));
    }
}
