//! Shape checks for Anthropic Messages API output, written from Anthropic's public API reference
//! ("Messages" response object, "Streaming Messages" event types, "Errors"). Every body and event
//! the front emits in tests goes through these.

use serde_json::Value;

pub const STOP_REASONS: &[&str] = &[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
];

pub const ERROR_TYPES: &[&str] = &[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
];

type R = Result<(), String>;

fn obj<'a>(v: &'a Value, at: &str) -> Result<&'a serde_json::Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{at}: not an object: {v}"))
}

fn string(v: &Value, key: &str, at: &str) -> R {
    match v.get(key) {
        Some(Value::String(_)) => Ok(()),
        other => Err(format!("{at}.{key}: expected a string, got {other:?}")),
    }
}

fn uint(v: &Value, key: &str, at: &str) -> R {
    match v.get(key) {
        Some(n) if n.is_u64() => Ok(()),
        other => Err(format!(
            "{at}.{key}: expected a non-negative integer, got {other:?}"
        )),
    }
}

fn opt_uint(v: &Value, key: &str, at: &str) -> R {
    match v.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(n) if n.is_u64() => Ok(()),
        other => Err(format!(
            "{at}.{key}: expected an integer or null, got {other:?}"
        )),
    }
}

fn exact_type(v: &Value, ty: &str, at: &str) -> R {
    if v.get("type").and_then(Value::as_str) == Some(ty) {
        Ok(())
    } else {
        Err(format!("{at}.type: expected {ty:?} in {v}"))
    }
}

pub fn check_usage(u: &Value, at: &str, delta: bool) -> R {
    obj(u, at)?;
    if delta {
        opt_uint(u, "input_tokens", at)?;
    } else {
        uint(u, "input_tokens", at)?;
    }
    uint(u, "output_tokens", at)?;
    opt_uint(u, "cache_creation_input_tokens", at)?;
    opt_uint(u, "cache_read_input_tokens", at)
}

pub fn check_block(b: &Value, at: &str) -> R {
    obj(b, at)?;
    match b.get("type").and_then(Value::as_str) {
        Some("text") => string(b, "text", at),
        Some("thinking") => {
            string(b, "thinking", at)?;
            string(b, "signature", at)
        }
        Some("redacted_thinking") => string(b, "data", at),
        Some("tool_use") => {
            string(b, "id", at)?;
            string(b, "name", at)?;
            obj(
                b.get("input").unwrap_or(&Value::Null),
                &format!("{at}.input"),
            )
            .map(|_| ())
        }
        other => Err(format!("{at}.type: unknown content block type {other:?}")),
    }
}

fn check_stop(v: &Value, at: &str, allow_null: bool) -> R {
    match v.get("stop_reason") {
        Some(Value::Null) if allow_null => {}
        Some(Value::String(s)) if STOP_REASONS.contains(&s.as_str()) => {}
        other => return Err(format!("{at}.stop_reason: {other:?}")),
    }
    match v.get("stop_sequence") {
        Some(Value::Null) | Some(Value::String(_)) => Ok(()),
        other => Err(format!("{at}.stop_sequence: {other:?}")),
    }
}

/// A whole `Message` (non-streaming response, or `message_start.message` when `started`).
pub fn check_message(m: &Value, started: bool) -> R {
    let at = "message";
    obj(m, at)?;
    string(m, "id", at)?;
    exact_type(m, "message", at)?;
    if m.get("role").and_then(Value::as_str) != Some("assistant") {
        return Err(format!("{at}.role must be assistant: {m}"));
    }
    string(m, "model", at)?;
    let content = m
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{at}.content must be an array"))?;
    if started && !content.is_empty() {
        return Err("message_start content must be empty".into());
    }
    for (i, b) in content.iter().enumerate() {
        check_block(b, &format!("{at}.content[{i}]"))?;
    }
    check_stop(m, at, started)?;
    check_usage(
        m.get("usage").unwrap_or(&Value::Null),
        &format!("{at}.usage"),
        false,
    )
}

/// An error body `{"type":"error","error":{"type","message"}}`.
pub fn check_error(v: &Value) -> R {
    exact_type(v, "error", "error body")?;
    let e = v.get("error").unwrap_or(&Value::Null);
    obj(e, "error")?;
    string(e, "message", "error")?;
    match e.get("type").and_then(Value::as_str) {
        Some(t) if ERROR_TYPES.contains(&t) => Ok(()),
        other => Err(format!("error.type: {other:?}")),
    }
}

/// One event (`event:` name and its data).
pub fn check_event(name: &str, d: &Value) -> R {
    exact_type(d, name, &format!("event {name}"))?;
    match name {
        "message_start" => check_message(d.get("message").unwrap_or(&Value::Null), true),
        "content_block_start" => {
            uint(d, "index", name)?;
            check_block(d.get("content_block").unwrap_or(&Value::Null), name)
        }
        "content_block_delta" => {
            uint(d, "index", name)?;
            let delta = d.get("delta").unwrap_or(&Value::Null);
            match delta.get("type").and_then(Value::as_str) {
                Some("text_delta") => string(delta, "text", name),
                Some("input_json_delta") => string(delta, "partial_json", name),
                Some("thinking_delta") => string(delta, "thinking", name),
                Some("signature_delta") => string(delta, "signature", name),
                Some("citations_delta") => Ok(()),
                other => Err(format!("{name}.delta.type: {other:?}")),
            }
        }
        "content_block_stop" => uint(d, "index", name),
        "message_delta" => {
            check_stop(
                d.get("delta").unwrap_or(&Value::Null),
                "message_delta.delta",
                true,
            )?;
            check_usage(
                d.get("usage").unwrap_or(&Value::Null),
                "message_delta.usage",
                true,
            )
        }
        "message_stop" | "ping" => Ok(()),
        "error" => check_error(d),
        other => Err(format!("unknown event type {other}")),
    }
}

/// Parses an Anthropic SSE body into (name, data) pairs, checking each event.
pub fn parse_events(body: &[u8]) -> Result<Vec<(String, Value)>, String> {
    let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
    let mut events = Vec::new();
    for raw in text.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let mut name = None;
        let mut data = String::new();
        for line in raw.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = Some(n.to_string());
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.push_str(d);
            } else {
                return Err(format!("unexpected line {line:?}"));
            }
        }
        let name = name.ok_or_else(|| format!("event without a name: {raw:?}"))?;
        let d: Value = serde_json::from_str(&data).map_err(|e| format!("{name}: {e}"))?;
        check_event(&name, &d)?;
        events.push((name, d));
    }
    Ok(events)
}

/// The order rules of a stream; returns the message it accumulates (as the SDKs do). A stream
/// may end with an `error` event instead.
pub fn check_sequence(events: &[(String, Value)]) -> Result<Value, String> {
    let mut iter = events.iter().filter(|(n, _)| n != "ping");
    let first = iter.next().ok_or("empty stream")?;
    if first.0 == "error" {
        return Ok(first.1.clone());
    }
    if first.0 != "message_start" {
        return Err(format!(
            "stream must start with message_start, got {}",
            first.0
        ));
    }
    let mut msg = first.1["message"].clone();
    let mut open: Option<(u64, String, String)> = None; // index, block type, accumulated
    let mut next = 0u64;
    let mut saw_delta = false;
    let mut ended = false;
    for (name, d) in iter {
        if ended {
            return Err(format!("{name} after the end of the stream"));
        }
        match name.as_str() {
            "content_block_start" => {
                if open.is_some() || saw_delta {
                    return Err(
                        "block started while another is open, or after message_delta".into(),
                    );
                }
                let i = d["index"].as_u64().unwrap();
                if i != next {
                    return Err(format!("block index {i}, expected {next}"));
                }
                let block = d["content_block"].clone();
                let ty = block["type"].as_str().unwrap().to_string();
                msg["content"].as_array_mut().unwrap().push(block);
                open = Some((i, ty, String::new()));
            }
            "content_block_delta" => {
                let (i, ty, acc) = open.as_mut().ok_or("delta outside a block")?;
                if d["index"].as_u64() != Some(*i) {
                    return Err("delta index differs from the open block".into());
                }
                let dt = d["delta"]["type"].as_str().unwrap();
                let (want, key) = match ty.as_str() {
                    "text" => ("text_delta", "text"),
                    "tool_use" => ("input_json_delta", "partial_json"),
                    "thinking" if dt == "signature_delta" => ("signature_delta", "signature"),
                    "thinking" => ("thinking_delta", "thinking"),
                    other => return Err(format!("delta for a {other} block")),
                };
                if dt != want {
                    return Err(format!("{dt} inside a {ty} block"));
                }
                let piece = d["delta"][key].as_str().unwrap();
                let block = msg["content"].as_array_mut().unwrap().last_mut().unwrap();
                match key {
                    "partial_json" => acc.push_str(piece),
                    "signature" => block["signature"] = piece.into(),
                    _ => {
                        let prev = block[key].as_str().unwrap_or_default().to_string();
                        block[key] = (prev + piece).into();
                    }
                }
            }
            "content_block_stop" => {
                let (i, ty, acc) = open.take().ok_or("stop outside a block")?;
                if d["index"].as_u64() != Some(i) {
                    return Err("stop index differs from the open block".into());
                }
                if ty == "tool_use" {
                    let input: Value = if acc.is_empty() {
                        serde_json::json!({})
                    } else {
                        serde_json::from_str(&acc)
                            .map_err(|e| format!("tool input JSON {acc:?}: {e}"))?
                    };
                    if !input.is_object() {
                        return Err("tool input is not an object".into());
                    }
                    msg["content"].as_array_mut().unwrap().last_mut().unwrap()["input"] = input;
                }
                next += 1;
            }
            "message_delta" => {
                if open.is_some() {
                    return Err("message_delta while a block is open".into());
                }
                saw_delta = true;
                msg["stop_reason"] = d["delta"]["stop_reason"].clone();
                msg["stop_sequence"] = d["delta"]["stop_sequence"].clone();
                for (k, v) in d["usage"].as_object().unwrap() {
                    if !v.is_null() {
                        msg["usage"][k] = v.clone();
                    }
                }
            }
            "message_stop" => {
                if !saw_delta {
                    return Err("message_stop before message_delta".into());
                }
                ended = true;
            }
            "error" => return Ok(d.clone()),
            other => return Err(format!("unexpected event {other}")),
        }
    }
    if !ended {
        return Err("stream did not end with message_stop".into());
    }
    check_message(&msg, false)?;
    Ok(msg)
}
