//! Anthropic Messages request → OpenAI chat completions request (for every provider but claude).
//!
//! Policy for fields OpenAI's chat API cannot carry: a field that only tunes or annotates the
//! request (`cache_control`, `service_tier`, `container`, `context_management`, unknown top-level
//! fields, `top_k` and `thinking` where the provider has no such knob) is dropped and its name
//! listed in [`Converted::dropped`] (the exchange exposes the list); a request whose meaning
//! cannot be kept (server tools, URL documents, malformed blocks) is a 400.

use crate::error::ProxyError;
use crate::openai::request::{bad_param as bad, not_an_object};
use crate::providers::ProviderType;
use serde_json::{json, Map, Value};

/// Most names we keep in the dropped list (the count is still exact).
const MAX_DROPPED_NAMES: usize = 16;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Converted {
    /// The OpenAI chat completions body.
    pub body: Value,
    pub stream: bool,
    /// `stop_sequences`, to tell which one ended the reply when the upstream says.
    pub stop_sequences: Vec<String>,
    /// Names of the request fields that were dropped (first [`MAX_DROPPED_NAMES`]).
    pub dropped: Vec<String>,
    pub dropped_count: usize,
}

impl Converted {
    fn drop_field(&mut self, name: &str) {
        self.dropped_count += 1;
        if self.dropped.len() < MAX_DROPPED_NAMES && !self.dropped.iter().any(|d| d == name) {
            self.dropped.push(name.to_string());
        }
    }
}

/// Providers whose OpenAI-side translation takes `top_k` (Gemini `topK`, DashScope `top_k`).
fn takes_top_k(kind: ProviderType) -> bool {
    matches!(kind, ProviderType::Gemini | ProviderType::Qwen)
}

/// Converts a parsed Messages request. `kind` only decides which optional knobs the target takes.
pub fn to_openai(body: Value, kind: ProviderType) -> Result<Converted, ProxyError> {
    let Value::Object(src) = body else {
        return Err(not_an_object());
    };
    let mut conv = Converted::default();
    let mut out = Map::new();
    let mut system: Option<Value> = None;
    let mut messages: Option<Value> = None;
    for (key, value) in src {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "model" => match value {
                Value::String(_) => {
                    out.insert("model".into(), value);
                }
                _ => return Err(bad("model", "'model' must be a string")),
            },
            "max_tokens" => match value.as_u64() {
                Some(n) if n > 0 => {
                    out.insert("max_tokens".into(), n.into());
                }
                _ => return Err(bad("max_tokens", "'max_tokens' must be a positive integer")),
            },
            "messages" => messages = Some(value),
            "system" => system = Some(value),
            "stream" => match value {
                Value::Bool(b) => conv.stream = b,
                _ => return Err(bad("stream", "'stream' must be a boolean")),
            },
            "temperature" | "top_p" => {
                if !value.is_number() {
                    return Err(bad(&key, format!("'{key}' must be a number")));
                }
                out.insert(key, value);
            }
            "top_k" => {
                if !value.is_u64() {
                    return Err(bad("top_k", "'top_k' must be a non-negative integer"));
                }
                if takes_top_k(kind) {
                    out.insert(key, value);
                } else {
                    conv.drop_field("top_k");
                }
            }
            "stop_sequences" => {
                let seqs = value
                    .as_array()
                    .and_then(|a| {
                        a.iter()
                            .map(|s| s.as_str().map(str::to_string))
                            .collect::<Option<Vec<_>>>()
                    })
                    .ok_or_else(|| {
                        bad(
                            "stop_sequences",
                            "'stop_sequences' must be an array of strings",
                        )
                    })?;
                if !seqs.is_empty() {
                    out.insert("stop".into(), json!(seqs));
                }
                conv.stop_sequences = seqs;
            }
            "metadata" => {
                let Value::Object(mut m) = value else {
                    return Err(bad("metadata", "'metadata' must be an object"));
                };
                match m.remove("user_id") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(u)) => {
                        out.insert("user".into(), u.into());
                    }
                    Some(_) => {
                        return Err(bad(
                            "metadata.user_id",
                            "'metadata.user_id' must be a string",
                        ))
                    }
                }
                for k in m.keys() {
                    conv.drop_field(&format!("metadata.{k}"));
                }
            }
            "tools" => {
                let Value::Array(tools) = value else {
                    return Err(bad("tools", "'tools' must be an array"));
                };
                let tools = tools
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| convert_tool(t, i, kind))
                    .collect::<Result<Vec<_>, _>>()?;
                if !tools.is_empty() {
                    out.insert("tools".into(), Value::Array(tools));
                }
            }
            "tool_choice" => convert_tool_choice(value, &mut out)?,
            "thinking" => convert_thinking(value, kind, &mut out, &mut conv)?,
            _ => conv.drop_field(&key),
        }
    }
    if !out.contains_key("model") {
        return Err(bad("model", "'model' is required"));
    }
    if !out.contains_key("max_tokens") {
        return Err(bad("max_tokens", "'max_tokens' is required"));
    }
    let Some(Value::Array(messages)) = messages else {
        return Err(bad("messages", "'messages' must be an array"));
    };
    let mut msgs = Vec::with_capacity(messages.len() + 1);
    if let Some(s) = system {
        let text = system_text(s)?;
        if !text.is_empty() {
            msgs.push(json!({"role": "system", "content": text}));
        }
    }
    for (i, m) in messages.into_iter().enumerate() {
        convert_message(m, i, &mut msgs)?;
    }
    out.insert("messages".into(), Value::Array(msgs));
    if conv.stream {
        out.insert("stream".into(), true.into());
        // The Anthropic stream ends with usage; ask every OpenAI-side stream for it.
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    conv.body = Value::Object(out);
    Ok(conv)
}

/// `system`: a string, or text blocks (their `cache_control` is an Anthropic caching hint).
fn system_text(v: Value) -> Result<String, ProxyError> {
    match v {
        Value::String(s) => Ok(s),
        Value::Array(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for b in &blocks {
                if b.get("type").and_then(Value::as_str) != Some("text") {
                    return Err(bad("system", "'system' blocks must be text blocks"));
                }
                let t = b
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("system", "every 'system' block needs 'text'"))?;
                parts.push(t);
            }
            Ok(parts.join("\n\n"))
        }
        _ => Err(bad(
            "system",
            "'system' must be a string or an array of text blocks",
        )),
    }
}

fn block_type(b: &Value) -> &str {
    b.get("type").and_then(Value::as_str).unwrap_or("")
}

fn str_field<'a>(b: &'a Value, key: &str, param: &str) -> Result<&'a str, ProxyError> {
    b.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(param, format!("'{param}.{key}' must be a string")))
}

/// An `image` block's source as an OpenAI `image_url` part.
fn image_part(b: &Value, param: &str) -> Result<Value, ProxyError> {
    let src = b
        .get("source")
        .ok_or_else(|| bad(param, "an image block needs 'source'"))?;
    let url = match block_type(src) {
        "base64" => format!(
            "data:{};base64,{}",
            str_field(src, "media_type", param)?,
            str_field(src, "data", param)?
        ),
        "url" => str_field(src, "url", param)?.to_string(),
        other => {
            return Err(bad(
                param,
                format!("image source type '{other}' cannot be sent to this provider"),
            ))
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// A `document` block: plain text as text, a base64 PDF as an OpenAI `file` part.
fn document_part(b: &Value, param: &str) -> Result<Value, ProxyError> {
    let src = b
        .get("source")
        .ok_or_else(|| bad(param, "a document block needs 'source'"))?;
    let title = b.get("title").and_then(Value::as_str);
    match block_type(src) {
        "text" => {
            let data = str_field(src, "data", param)?;
            let text = match title {
                Some(t) => format!("{t}\n\n{data}"),
                None => data.to_string(),
            };
            Ok(json!({"type": "text", "text": text}))
        }
        "base64" => {
            let media = str_field(src, "media_type", param)?;
            let data = str_field(src, "data", param)?;
            Ok(json!({"type": "file", "file": {
                "filename": title.unwrap_or("document.pdf"),
                "file_data": format!("data:{media};base64,{data}"),
            }}))
        }
        "content" => {
            let texts = match src.get("content") {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|i| i.get("text").and_then(Value::as_str).map(str::to_string))
                    .collect(),
                _ => return Err(bad(param, "a content document needs 'content'")),
            };
            Ok(json!({"type": "text", "text": texts.join("\n")}))
        }
        other => Err(bad(
            param,
            format!("document source type '{other}' cannot be sent to this provider"),
        )),
    }
}

/// Joins text parts into one string when there is nothing else (several OpenAI-compatible
/// providers take only string content); keeps the parts otherwise.
fn user_content(parts: Vec<Value>) -> Value {
    if parts.iter().all(|p| block_type(p) == "text") {
        let texts: Vec<&str> = parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect();
        Value::String(texts.join("\n"))
    } else {
        Value::Array(parts)
    }
}

fn convert_message(m: Value, i: usize, msgs: &mut Vec<Value>) -> Result<(), ProxyError> {
    let param = format!("messages[{i}]");
    let role = m
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&param, format!("'{param}.role' must be a string")))?;
    let content = m.get("content").cloned().unwrap_or(Value::Null);
    match (role, content) {
        ("user" | "assistant", Value::String(s)) => {
            msgs.push(json!({"role": role, "content": s}));
            Ok(())
        }
        ("user", Value::Array(blocks)) => user_blocks(blocks, &param, msgs),
        ("assistant", Value::Array(blocks)) => assistant_blocks(blocks, &param, msgs),
        ("user" | "assistant", _) => Err(bad(
            &param,
            format!("'{param}.content' must be a string or an array of blocks"),
        )),
        (other, _) => Err(bad(
            &param,
            format!("'{param}.role' must be 'user' or 'assistant', not '{other}'"),
        )),
    }
}

fn user_blocks(blocks: Vec<Value>, param: &str, msgs: &mut Vec<Value>) -> Result<(), ProxyError> {
    let mut parts = Vec::new();
    // Images a tool returned: OpenAI tool messages carry text only, so they follow as user parts.
    let mut tool_images = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bp = format!("{param}.content[{j}]");
        match block_type(b) {
            "text" => {
                parts.push(json!({"type": "text", "text": str_field(b, "text", &bp)?}));
            }
            "image" => parts.push(image_part(b, &bp)?),
            "document" => parts.push(document_part(b, &bp)?),
            "tool_result" => {
                let id = str_field(b, "tool_use_id", &bp)?;
                let mut texts = Vec::new();
                match b.get("content") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => texts.push(s.clone()),
                    Some(Value::Array(items)) => {
                        for (k, item) in items.iter().enumerate() {
                            let ip = format!("{bp}.content[{k}]");
                            match block_type(item) {
                                "text" => texts.push(str_field(item, "text", &ip)?.to_string()),
                                "image" => tool_images.push(image_part(item, &ip)?),
                                "document" => match document_part(item, &ip)? {
                                    p if block_type(&p) == "text" => texts
                                        .push(p["text"].as_str().unwrap_or_default().to_string()),
                                    p => tool_images.push(p),
                                },
                                other => {
                                    return Err(bad(
                                        &ip,
                                        format!(
                                        "tool_result content of type '{other}' is not supported"
                                    ),
                                    ))
                                }
                            }
                        }
                    }
                    Some(_) => return Err(bad(&bp, "'content' must be a string or blocks")),
                }
                let mut text = texts.join("\n");
                if b.get("is_error").and_then(Value::as_bool) == Some(true) {
                    text = format!("Error: {text}");
                }
                msgs.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
            }
            // Replayed reasoning has no place in an OpenAI user turn (Anthropic's own API ignores
            // it outside the current tool loop).
            "thinking" | "redacted_thinking" => {}
            other => {
                return Err(bad(
                    &bp,
                    format!("content blocks of type '{other}' are not supported for this provider"),
                ))
            }
        }
    }
    parts.extend(tool_images);
    if !parts.is_empty() {
        msgs.push(json!({"role": "user", "content": user_content(parts)}));
    }
    Ok(())
}

fn assistant_blocks(
    blocks: Vec<Value>,
    param: &str,
    msgs: &mut Vec<Value>,
) -> Result<(), ProxyError> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bp = format!("{param}.content[{j}]");
        match block_type(b) {
            "text" => text.push_str(str_field(b, "text", &bp)?),
            "tool_use" => {
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({
                    "id": str_field(b, "id", &bp)?,
                    "type": "function",
                    "function": {
                        "name": str_field(b, "name", &bp)?,
                        "arguments": input.to_string(),
                    },
                }));
            }
            // Previous reasoning is not replayed to OpenAI-family providers (some reject it).
            "thinking" | "redacted_thinking" => {}
            other => {
                return Err(bad(
                    &bp,
                    format!("content blocks of type '{other}' are not supported for this provider"),
                ))
            }
        }
    }
    let mut msg = Map::new();
    msg.insert("role".into(), "assistant".into());
    if calls.is_empty() {
        msg.insert("content".into(), text.into());
    } else {
        msg.insert(
            "content".into(),
            if text.is_empty() {
                Value::Null
            } else {
                text.into()
            },
        );
        msg.insert("tool_calls".into(), Value::Array(calls));
    }
    msgs.push(Value::Object(msg));
    Ok(())
}

/// A client tool `{name, description, input_schema}` as an OpenAI function tool. Anthropic's
/// server tools (a `type` such as `web_search_20250305`) run on Anthropic's side: a 400 elsewhere.
fn convert_tool(t: Value, i: usize, kind: ProviderType) -> Result<Value, ProxyError> {
    let param = format!("tools[{i}]");
    let ty = block_type(&t);
    if !ty.is_empty() && ty != "custom" {
        return Err(ProxyError::unsupported(
            &format!("the Anthropic server tool '{ty}'"),
            kind.name(),
        )
        .with_param(param));
    }
    let name = str_field(&t, "name", &param)?;
    let mut f = Map::new();
    f.insert("name".into(), name.into());
    if let Some(d) = t.get("description").and_then(Value::as_str) {
        f.insert("description".into(), d.into());
    }
    let schema = t
        .get("input_schema")
        .filter(|s| s.is_object())
        .ok_or_else(|| bad(&param, format!("'{param}.input_schema' must be an object")))?;
    f.insert("parameters".into(), schema.clone());
    Ok(json!({"type": "function", "function": f}))
}

fn convert_tool_choice(tc: Value, out: &mut Map<String, Value>) -> Result<(), ProxyError> {
    let choice = match block_type(&tc) {
        "auto" => json!("auto"),
        "any" => json!("required"),
        "none" => json!("none"),
        "tool" => {
            let name = str_field(&tc, "name", "tool_choice")?;
            json!({"type": "function", "function": {"name": name}})
        }
        other => {
            return Err(bad(
                "tool_choice",
                format!("'tool_choice.type' '{other}' is not one of auto, any, tool, none"),
            ))
        }
    };
    out.insert("tool_choice".into(), choice);
    if tc.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
        out.insert("parallel_tool_calls".into(), false.into());
    }
    Ok(())
}

/// `thinking`: DashScope (qwen) has a documented switch and budget; OpenAI's chat API has no
/// budgeted-thinking switch every model accepts, so elsewhere it is dropped (reasoning models
/// reason anyway, and their reasoning comes back as thinking blocks).
fn convert_thinking(
    v: Value,
    kind: ProviderType,
    out: &mut Map<String, Value>,
    conv: &mut Converted,
) -> Result<(), ProxyError> {
    let ty = block_type(&v);
    if !matches!(ty, "enabled" | "disabled" | "adaptive") {
        return Err(bad(
            "thinking",
            "'thinking.type' must be 'enabled', 'disabled' or 'adaptive'",
        ));
    }
    if kind != ProviderType::Qwen {
        conv.drop_field("thinking");
        return Ok(());
    }
    out.insert("enable_thinking".into(), (ty != "disabled").into());
    if let Some(b) = v.get("budget_tokens").and_then(Value::as_u64) {
        if ty == "enabled" {
            out.insert("thinking_budget".into(), b.into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(body: Value) -> Converted {
        to_openai(body, ProviderType::OpenAi).expect("converts")
    }

    fn err(body: Value, kind: ProviderType) -> ProxyError {
        to_openai(body, kind).expect_err("rejected")
    }

    #[test]
    fn text_request_with_every_sampling_field() {
        let c = conv(json!({
            "model": "claude-sonnet-4-5", "max_tokens": 256,
            "system": "Be brief.",
            "messages": [{"role": "user", "content": "Hello"}],
            "temperature": 0.5, "top_p": 0.9, "top_k": 40,
            "stop_sequences": ["\n\nHuman:"],
            "metadata": {"user_id": "u-1"},
            "stream": true,
            "service_tier": "auto",
        }));
        assert_eq!(
            c.body,
            json!({
                "model": "claude-sonnet-4-5", "max_tokens": 256,
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
                "temperature": 0.5, "top_p": 0.9, "stop": ["\n\nHuman:"], "user": "u-1",
                "stream": true, "stream_options": {"include_usage": true},
            })
        );
        assert!(c.stream);
        assert_eq!(c.stop_sequences, vec!["\n\nHuman:".to_string()]);
        assert_eq!(
            c.dropped,
            vec!["top_k".to_string(), "service_tier".to_string()]
        );
        // Gemini and qwen take top_k.
        let g = to_openai(
            json!({"model": "m", "max_tokens": 1, "top_k": 5, "messages": []}),
            ProviderType::Gemini,
        )
        .unwrap();
        assert_eq!(g.body["top_k"], 5);
        assert!(g.dropped.is_empty());
    }

    #[test]
    fn system_blocks_with_cache_control_and_user_blocks() {
        let c = conv(json!({
            "model": "m", "max_tokens": 10,
            "system": [
                {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Rules."},
            ],
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>x</system-reminder>"},
                {"type": "text", "text": "List files", "cache_control": {"type": "ephemeral"}},
            ]}],
        }));
        assert_eq!(
            c.body["messages"],
            json!([
                {"role": "system", "content": "You are Claude Code.\n\nRules."},
                {"role": "user", "content": "<system-reminder>x</system-reminder>\nList files"},
            ])
        );
    }

    #[test]
    fn images_and_documents() {
        let c = conv(
            json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc body"}, "title": "T"},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
                {"type": "text", "text": "Describe."},
            ]}]}),
        );
        assert_eq!(
            c.body["messages"][0]["content"],
            json!([
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
                {"type": "text", "text": "T\n\ndoc body"},
                {"type": "file", "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
                {"type": "text", "text": "Describe."},
            ])
        );
        let e = err(
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [
                {"type": "document", "source": {"type": "url", "url": "https://x/y.pdf"}}]}]}),
            ProviderType::OpenAi,
        );
        assert_eq!(e.status, 400);
        assert_eq!(e.param.as_deref(), Some("messages[0].content[0]"));
    }

    #[test]
    fn tool_use_and_tool_result_round_trip() {
        let c = conv(json!({
            "model": "m", "max_tokens": 100,
            "tools": [{"name": "get_weather", "description": "Weather", "cache_control": {"type": "ephemeral"},
                       "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "need tool", "signature": "sig"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                        {"type": "text", "text": "18C"},
                        {"type": "image", "source": {"type": "url", "url": "https://x/map.png"}}]},
                    {"type": "text", "text": "And tomorrow?"},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": true}]},
            ],
        }));
        assert_eq!(
            c.body["tools"],
            json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
        );
        assert_eq!(c.body["tool_choice"], "required");
        assert_eq!(c.body["parallel_tool_calls"], false);
        assert_eq!(
            c.body["messages"],
            json!([
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                {"role": "user", "content": [
                    {"type": "text", "text": "And tomorrow?"},
                    {"type": "image_url", "image_url": {"url": "https://x/map.png"}}]},
                {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: boom"},
            ])
        );
        for (tc, want) in [
            (json!({"type": "auto"}), json!("auto")),
            (json!({"type": "none"}), json!("none")),
            (
                json!({"type": "tool", "name": "f"}),
                json!({"type": "function", "function": {"name": "f"}}),
            ),
        ] {
            let c = conv(json!({"model": "m", "max_tokens": 1, "messages": [], "tool_choice": tc}));
            assert_eq!(c.body["tool_choice"], want);
        }
    }

    #[test]
    fn thinking_policy() {
        let body = json!({"model": "m", "max_tokens": 2048, "messages": [],
                          "thinking": {"type": "enabled", "budget_tokens": 1024}});
        let q = to_openai(body.clone(), ProviderType::Qwen).unwrap();
        assert_eq!(q.body["enable_thinking"], true);
        assert_eq!(q.body["thinking_budget"], 1024);
        let o = to_openai(body, ProviderType::Deepseek).unwrap();
        assert!(o.body.get("enable_thinking").is_none());
        assert_eq!(o.dropped, vec!["thinking".to_string()]);
        let e = err(
            json!({"model": "m", "max_tokens": 1, "messages": [], "thinking": {"type": "maybe"}}),
            ProviderType::Qwen,
        );
        assert_eq!(e.param.as_deref(), Some("thinking"));
    }

    #[test]
    fn invalid_requests_are_400s_naming_the_field() {
        let cases = [
            (json!({"max_tokens": 1, "messages": []}), "model"),
            (json!({"model": "m", "messages": []}), "max_tokens"),
            (
                json!({"model": "m", "max_tokens": 0, "messages": []}),
                "max_tokens",
            ),
            (json!({"model": "m", "max_tokens": 1}), "messages"),
            (
                json!({"model": "m", "max_tokens": 1, "messages": [], "system": 3}),
                "system",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "messages": [{"role": "system", "content": "x"}]}),
                "messages[0]",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "messages": [], "stop_sequences": "x"}),
                "stop_sequences",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "messages": [], "tools": [{"name": "f"}]}),
                "tools[0]",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "messages": [], "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
                "tools[0]",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "messages": [], "tool_choice": {"type": "sometimes"}}),
                "tool_choice",
            ),
        ];
        for (body, param) in cases {
            let e = err(body.clone(), ProviderType::Gemini);
            assert_eq!(e.status, 400, "{body}");
            assert_eq!(e.param.as_deref(), Some(param), "{body}");
        }
        assert_eq!(err(json!([1]), ProviderType::OpenAi).status, 400);
    }

    #[test]
    fn dropped_names_are_bounded_but_counted() {
        let mut body = json!({"model": "m", "max_tokens": 1, "messages": []});
        for i in 0..40 {
            body[format!("x{i}")] = json!(1);
        }
        let c = conv(body);
        assert_eq!(c.dropped.len(), MAX_DROPPED_NAMES);
        assert_eq!(c.dropped_count, 40);
    }
}
