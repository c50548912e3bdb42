//! claude: OpenAI chat completions ⇄ Anthropic's Messages API.
//!
//! Facts used (looked up in Anthropic's public docs, platform.claude.com / docs.anthropic.com):
//! - `POST https://api.anthropic.com/v1/messages` with headers `x-api-key: <key>` and
//!   `anthropic-version` (`claudeVersion`, default 2023-06-01). `max_tokens` is required.
//! - Request: `system` is a top-level string or array of text blocks; `messages` alternate
//!   `user`/`assistant` with string content or content blocks (`text`, `image` with a
//!   `source` of `{"type":"base64","media_type","data"}` or `{"type":"url","url"}`, `document`,
//!   `tool_use {id,name,input}` in assistant turns, `tool_result {tool_use_id,content}` in user
//!   turns, placed first). `stop_sequences`, `temperature`, `top_p`, `top_k`, `stream`,
//!   `metadata.user_id`. Tools are `{name, description, input_schema}`; `tool_choice` is
//!   `{"type":"auto"|"any"|"none"}` or `{"type":"tool","name"}`, with
//!   `disable_parallel_tool_use` on auto/any/tool.
//! - Response: `{id, type:"message", role, model, content:[blocks], stop_reason, usage:
//!   {input_tokens, output_tokens, cache_creation_input_tokens?, cache_read_input_tokens?}}`;
//!   stop reasons `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn`,
//!   `refusal`, `model_context_window_exceeded` (docs: "Handling stop reasons").
//! - Stream (docs: "Streaming Messages"): `message_start`, then per block `content_block_start`
//!   / `content_block_delta` (`text_delta`, `input_json_delta` with `partial_json`) /
//!   `content_block_stop`, then `message_delta` (stop_reason, cumulative `usage.output_tokens`)
//!   and `message_stop`; `ping` keep-alives; `error` events may arrive after the 200.
//! - Errors (docs: "Errors"): `{"type":"error","error":{"type","message"}}` with 400
//!   invalid_request_error, 401 authentication_error, 402 billing_error, 403 permission_error,
//!   404 not_found_error, 413 request_too_large, 429 rate_limit_error, 500 api_error,
//!   504 timeout_error, 529 overloaded_error.
//! - Claude has no embeddings API (Anthropic points to Voyage AI), so embeddings are a 400.

use super::{Api, Provider, ProviderType, RequestInfo, ResponseTranslator, Upstream};
use crate::config::ProviderConfig;
use crate::custom_settings::{self, SettingsProtocol};
use crate::error::{error_type_for_status, ProxyError};
use crate::openai::{self, Delta, StreamMeta};
use crate::sse::{self, SseEvent};
use crate::usage::Usage;
use serde_json::{json, Map, Value};

const HOST: &str = "api.anthropic.com";
const MESSAGES_PATH: &str = "/v1/messages";
const NAME: &str = "claude";
/// `max_tokens` is required by Claude; used when neither the client nor customSettings set it.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

pub fn build(_config: &ProviderConfig) -> Box<dyn Provider> {
    Box::new(Claude)
}

struct Claude;

fn with_auth(up: Upstream, config: &ProviderConfig, token: &str) -> Upstream {
    up.header("x-api-key", token)
        .header("anthropic-version", config.claude_version.as_str())
}

impl Provider for Claude {
    fn kind(&self) -> ProviderType {
        ProviderType::Claude
    }

    fn settings_protocol(&self, _req: &RequestInfo<'_>) -> SettingsProtocol {
        SettingsProtocol::Claude
    }

    fn translate_request(
        &self,
        req: &RequestInfo<'_>,
        body: &mut Value,
    ) -> Result<Upstream, ProxyError> {
        if req.api == Api::Embeddings {
            return Err(ProxyError::unsupported("the embeddings API", NAME));
        }
        translate_chat(req, body)?;
        Ok(with_auth(
            Upstream::new(HOST, MESSAGES_PATH),
            req.config,
            req.token,
        ))
    }

    fn passthrough_target(
        &self,
        config: &ProviderConfig,
        token: &str,
        path: &str,
    ) -> Result<Upstream, ProxyError> {
        Ok(with_auth(Upstream::new(HOST, path), config, token))
    }

    fn response_translator(&self, req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        Box::new(ClaudeTranslator::new(req.model, req.include_usage))
    }
}

// ---------------------------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------------------------

fn bad(param: &str, msg: impl Into<String>) -> ProxyError {
    ProxyError::bad_request(msg).with_param(param)
}

fn unsupported(feature: &str, param: &str) -> ProxyError {
    ProxyError::unsupported(feature, NAME).with_param(param)
}

/// Takes a field out of the request, treating `null` as absent.
fn take(src: &mut Map<String, Value>, key: &str) -> Option<Value> {
    src.remove(key).filter(|v| !v.is_null())
}

fn translate_chat(req: &RequestInfo<'_>, body: &mut Value) -> Result<(), ProxyError> {
    let obj = body
        .as_object_mut()
        .ok_or_else(|| ProxyError::bad_request("request body must be a JSON object"))?;
    if req.config.response_json_schema.is_some() {
        return Err(ProxyError::unsupported(
            "responseJsonSchema (response_format json_schema)",
            NAME,
        ));
    }
    let mut src = std::mem::take(obj);
    src.remove("model");
    reject_unsupported(&mut src)?;

    let mut out = Map::new();
    out.insert("model".into(), req.model.into());

    let messages = match take(&mut src, "messages") {
        Some(Value::Array(m)) => m,
        _ => return Err(bad("messages", "'messages' must be an array")),
    };
    let (system, messages) = convert_messages(messages)?;
    if let Some(s) = system {
        out.insert("system".into(), s);
    }
    out.insert("messages".into(), Value::Array(messages));

    let max_completion = take(&mut src, "max_completion_tokens");
    let max_tokens = take(&mut src, "max_tokens");
    match max_completion.or(max_tokens) {
        Some(v @ Value::Number(_)) => {
            out.insert("max_tokens".into(), v);
        }
        Some(_) => return Err(bad("max_tokens", "'max_tokens' must be an integer")),
        None if customsettings_set_max_tokens(req.config) => {}
        None => {
            out.insert("max_tokens".into(), DEFAULT_MAX_TOKENS.into());
        }
    }

    match take(&mut src, "stop") {
        None => {}
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(items)) if items.is_empty() => {}
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            out.insert("stop_sequences".into(), Value::Array(items));
        }
        Some(_) => {
            return Err(bad(
                "stop",
                "'stop' must be a string or an array of strings",
            ))
        }
    }
    for key in ["temperature", "top_p", "top_k"] {
        match take(&mut src, key) {
            None => {}
            Some(v @ Value::Number(_)) => {
                out.insert(key.into(), v);
            }
            Some(_) => return Err(bad(key, format!("'{key}' must be a number"))),
        }
    }
    src.remove("stream");
    src.remove("stream_options");
    if req.stream {
        out.insert("stream".into(), true.into());
    }
    match take(&mut src, "user") {
        None => {}
        Some(Value::String(u)) => {
            out.insert("metadata".into(), json!({ "user_id": u }));
        }
        Some(_) => return Err(bad("user", "'user' must be a string")),
    }

    let tools = match take(&mut src, "tools") {
        None => Vec::new(),
        Some(Value::Array(t)) => t
            .into_iter()
            .map(convert_tool)
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(bad("tools", "'tools' must be an array")),
    };
    let parallel = take(&mut src, "parallel_tool_calls");
    let mut tool_choice = match take(&mut src, "tool_choice") {
        None => None,
        Some(tc) => Some(convert_tool_choice(tc)?),
    };
    if tools.is_empty() {
        // Without tools, "auto"/"none" mean the same as sending nothing.
        if tool_choice
            .as_ref()
            .is_some_and(|tc| matches!(tc["type"].as_str(), Some("auto" | "none")))
        {
            tool_choice = None;
        }
    } else {
        if parallel == Some(Value::Bool(false)) {
            let tc = tool_choice.get_or_insert_with(|| json!({"type": "auto"}));
            if tc["type"] != "none" {
                tc["disable_parallel_tool_use"] = true.into();
            }
        }
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(tc) = tool_choice {
        out.insert("tool_choice".into(), tc);
    }

    // Anything left is not an OpenAI field we know: pass it on for Claude to judge (e.g. a
    // Claude-native `thinking`), so nothing is dropped silently.
    for (k, v) in src {
        if !v.is_null() {
            out.insert(k, v);
        }
    }
    *obj = out;
    Ok(())
}

/// Whether customSettings will set Claude's `max_tokens` (then the core fills it, and our
/// default must not pre-empt an `overwrite: false` setting).
fn customsettings_set_max_tokens(config: &ProviderConfig) -> bool {
    config
        .custom_settings
        .iter()
        .any(|s| custom_settings::resolve_name(s, SettingsProtocol::Claude) == Some("max_tokens"))
}

/// OpenAI request fields Claude cannot honour: a 400 naming them when they ask for something;
/// fields that only carry OpenAI-side bookkeeping (`store`, `metadata`, `service_tier`) and
/// neutral values (`n: 1`, `logprobs: false`, zero penalties, text format) are removed.
fn reject_unsupported(src: &mut Map<String, Value>) -> Result<(), ProxyError> {
    if let Some(n) = take(src, "n") {
        if n.as_f64() != Some(1.0) {
            return Err(unsupported("n other than 1 (multiple choices)", "n"));
        }
    }
    if let Some(l) = take(src, "logprobs") {
        if l != Value::Bool(false) {
            return Err(unsupported("logprobs", "logprobs"));
        }
    }
    if take(src, "top_logprobs").is_some() {
        return Err(unsupported("top_logprobs", "top_logprobs"));
    }
    if let Some(b) = take(src, "logit_bias") {
        if !b.as_object().is_some_and(Map::is_empty) {
            return Err(unsupported("logit_bias", "logit_bias"));
        }
    }
    for key in ["frequency_penalty", "presence_penalty"] {
        if let Some(p) = take(src, key) {
            if p.as_f64() != Some(0.0) {
                return Err(unsupported(key, key));
            }
        }
    }
    if let Some(rf) = take(src, "response_format") {
        let kind = rf.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "text" {
            return Err(unsupported(
                &format!("response_format '{kind}'"),
                "response_format",
            ));
        }
    }
    if let Some(m) = take(src, "modalities") {
        if m != json!(["text"]) {
            return Err(unsupported("modalities other than text", "modalities"));
        }
    }
    for (key, feature) in [
        ("seed", "seed"),
        ("audio", "audio output"),
        ("functions", "legacy 'functions' (use 'tools')"),
        (
            "function_call",
            "legacy 'function_call' (use 'tool_choice')",
        ),
        ("reasoning_effort", "reasoning_effort"),
        ("verbosity", "verbosity"),
        ("prediction", "prediction"),
        ("web_search_options", "web_search_options"),
    ] {
        if take(src, key).is_some() {
            return Err(unsupported(feature, key));
        }
    }
    for key in ["store", "metadata", "service_tier"] {
        src.remove(key);
    }
    Ok(())
}

/// One Claude turn being assembled; consecutive same-role turns are merged into one.
struct Turn {
    role: &'static str,
    blocks: Vec<Value>,
}

fn push_turn(turns: &mut Vec<Turn>, role: &'static str, blocks: Vec<Value>) {
    match turns.last_mut() {
        Some(last) if last.role == role => last.blocks.extend(blocks),
        _ => turns.push(Turn { role, blocks }),
    }
}

fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

/// Splits OpenAI messages into Claude's `system` and alternating `messages`.
fn convert_messages(messages: Vec<Value>) -> Result<(Option<Value>, Vec<Value>), ProxyError> {
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, msg) in messages.into_iter().enumerate() {
        let Value::Object(mut m) = msg else {
            return Err(bad(
                &format!("messages[{i}]"),
                "each message must be an object",
            ));
        };
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let param = format!("messages[{i}].content");
        match role {
            "system" | "developer" => {
                system.extend(system_texts(take(&mut m, "content"), &param)?);
            }
            "user" => {
                let blocks = user_blocks(take(&mut m, "content"), &param)?;
                push_turn(&mut turns, "user", blocks);
            }
            "assistant" => {
                let mut blocks = assistant_blocks(take(&mut m, "content"), &param)?;
                if let Some(calls) = take(&mut m, "tool_calls") {
                    blocks.extend(tool_use_blocks(calls, i)?);
                }
                if take(&mut m, "function_call").is_some() {
                    return Err(unsupported(
                        "legacy assistant 'function_call' (use 'tool_calls')",
                        &format!("messages[{i}].function_call"),
                    ));
                }
                push_turn(&mut turns, "assistant", blocks);
            }
            "tool" => {
                let id = match take(&mut m, "tool_call_id") {
                    Some(Value::String(s)) => s,
                    _ => {
                        return Err(bad(
                            &format!("messages[{i}].tool_call_id"),
                            "tool messages need a string 'tool_call_id'",
                        ))
                    }
                };
                let content = match take(&mut m, "content") {
                    None => Value::String(String::new()),
                    Some(Value::String(s)) => Value::String(s),
                    Some(other) => Value::Array(user_blocks(Some(other), &param)?),
                };
                push_turn(
                    &mut turns,
                    "user",
                    vec![json!({"type": "tool_result", "tool_use_id": id, "content": content})],
                );
            }
            "function" => {
                return Err(unsupported(
                    "the legacy 'function' role (use 'tool')",
                    &format!("messages[{i}].role"),
                ))
            }
            other => {
                return Err(bad(
                    &format!("messages[{i}].role"),
                    format!("unknown message role '{other}'"),
                ))
            }
        }
    }
    let system = match system.len() {
        0 => None,
        1 => system.pop().map(Value::String),
        _ => Some(Value::Array(system.iter().map(|t| text_block(t)).collect())),
    };
    let messages = turns
        .into_iter()
        .map(|t| json!({"role": t.role, "content": collapse(t.blocks)}))
        .collect();
    Ok((system, messages))
}

/// A lone text block becomes plain string content (Claude's simple form); no blocks becomes
/// "" so Claude reports the empty message itself.
fn collapse(mut blocks: Vec<Value>) -> Value {
    let lone_text = blocks.len() == 1
        && blocks[0]
            .as_object()
            .is_some_and(|b| b.len() == 2 && b.get("type").and_then(Value::as_str) == Some("text"));
    if lone_text {
        return blocks.pop().expect("one block")["text"].take();
    }
    if blocks.is_empty() {
        return Value::String(String::new());
    }
    Value::Array(blocks)
}

fn system_texts(content: Option<Value>, param: &str) -> Result<Vec<String>, ProxyError> {
    match content {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(parts)) => parts
            .into_iter()
            .map(
                |p| match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => Ok(t.clone()),
                    _ => Err(bad(param, "system messages may only contain text parts")),
                },
            )
            .collect(),
        Some(_) => Err(bad(param, "content must be a string or an array of parts")),
    }
}

fn user_blocks(content: Option<Value>, param: &str) -> Result<Vec<Value>, ProxyError> {
    match content {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![text_block(&s)]),
        Some(Value::Array(parts)) => parts
            .into_iter()
            .enumerate()
            .map(|(j, p)| user_part(p, &format!("{param}[{j}]")))
            .collect(),
        Some(_) => Err(bad(param, "content must be a string or an array of parts")),
    }
}

fn user_part(part: Value, param: &str) -> Result<Value, ProxyError> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "text" => match part.get("text") {
            Some(Value::String(t)) => Ok(text_block(t)),
            _ => Err(bad(param, "text parts need a string 'text'")),
        },
        "image_url" => {
            let url = match part.get("image_url") {
                Some(Value::String(u)) => u.as_str(),
                Some(Value::Object(o)) => o.get("url").and_then(Value::as_str).unwrap_or(""),
                _ => "",
            };
            image_block(url, param)
        }
        "file" => file_block(part.get("file"), param),
        "input_audio" => Err(unsupported("audio input", param)),
        other => Err(bad(param, format!("unknown content part type '{other}'"))),
    }
}

/// `data:<media type>;base64,<data>` → (media type, data).
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    (!media_type.is_empty()).then_some((media_type, data))
}

fn image_block(url: &str, param: &str) -> Result<Value, ProxyError> {
    if url.starts_with("data:") {
        let (media_type, data) = parse_data_url(url).ok_or_else(|| {
            bad(
                param,
                "image data URLs must look like data:<media type>;base64,<data>",
            )
        })?;
        return Ok(json!({
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }));
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(bad(param, "image_url must be a data URL or an http(s) URL"))
}

/// OpenAI `file` parts with inline data: PDFs become Claude `document` blocks, images `image`
/// blocks. Uploaded-file references cannot be resolved here.
fn file_block(file: Option<&Value>, param: &str) -> Result<Value, ProxyError> {
    let file = file.and_then(Value::as_object);
    if let Some(data_url) = file
        .and_then(|f| f.get("file_data"))
        .and_then(Value::as_str)
    {
        let (media_type, data) = parse_data_url(data_url).ok_or_else(|| {
            bad(
                param,
                "file_data must look like data:<media type>;base64,<data>",
            )
        })?;
        if media_type == "application/pdf" {
            return Ok(json!({
                "type": "document",
                "source": {"type": "base64", "media_type": media_type, "data": data},
            }));
        }
        if media_type.starts_with("image/") {
            return image_block(data_url, param);
        }
        return Err(unsupported(
            &format!("file input of type '{media_type}'"),
            param,
        ));
    }
    Err(unsupported("file inputs by file_id", param))
}

fn assistant_blocks(content: Option<Value>, param: &str) -> Result<Vec<Value>, ProxyError> {
    let non_empty = |t: &str| (!t.is_empty()).then(|| text_block(t));
    match content {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(non_empty(&s).into_iter().collect()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for p in parts {
                let text = match p.get("type").and_then(Value::as_str) {
                    Some("text") => p.get("text"),
                    Some("refusal") => p.get("refusal"),
                    _ => None,
                };
                match text {
                    Some(Value::String(t)) => out.extend(non_empty(t)),
                    _ => {
                        return Err(bad(
                            param,
                            "assistant content parts must be text or refusal",
                        ))
                    }
                }
            }
            Ok(out)
        }
        Some(_) => Err(bad(param, "content must be a string or an array of parts")),
    }
}

fn tool_use_blocks(calls: Value, i: usize) -> Result<Vec<Value>, ProxyError> {
    let Value::Array(calls) = calls else {
        return Err(bad(
            &format!("messages[{i}].tool_calls"),
            "'tool_calls' must be an array",
        ));
    };
    calls
        .into_iter()
        .enumerate()
        .map(|(j, call)| {
            let param = format!("messages[{i}].tool_calls[{j}]");
            let id = call.get("id").and_then(Value::as_str);
            let f = call.get("function");
            let name = f.and_then(|f| f.get("name")).and_then(Value::as_str);
            let (Some(id), Some(name)) = (id, name) else {
                return Err(bad(&param, "tool calls need an 'id' and a 'function.name'"));
            };
            let input = match f.and_then(|f| f.get("arguments")) {
                None | Some(Value::Null) => json!({}),
                Some(Value::String(s)) if s.trim().is_empty() => json!({}),
                Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => {
                        return Err(bad(
                            &format!("{param}.function.arguments"),
                            "tool call arguments must be a JSON object encoded as a string",
                        ))
                    }
                },
                Some(v @ Value::Object(_)) => v.clone(),
                Some(_) => {
                    return Err(bad(
                        &format!("{param}.function.arguments"),
                        "tool call arguments must be a JSON object encoded as a string",
                    ))
                }
            };
            Ok(json!({"type": "tool_use", "id": id, "name": name, "input": input}))
        })
        .collect()
}

fn convert_tool(tool: Value) -> Result<Value, ProxyError> {
    let kind = tool
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("function");
    if kind != "function" {
        return Err(unsupported(&format!("tool type '{kind}'"), "tools"));
    }
    let f = tool
        .get("function")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("tools", "function tools need a 'function' object"))?;
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("tools", "function tools need a 'function.name'"))?;
    let mut t = Map::new();
    t.insert("name".into(), name.into());
    if let Some(Value::String(d)) = f.get("description") {
        t.insert("description".into(), d.as_str().into());
    }
    let schema = match f.get("parameters") {
        Some(p @ Value::Object(_)) => p.clone(),
        _ => json!({"type": "object", "properties": {}}),
    };
    t.insert("input_schema".into(), schema);
    if f.get("strict") == Some(&Value::Bool(true)) {
        t.insert("strict".into(), true.into());
    }
    Ok(Value::Object(t))
}

fn convert_tool_choice(tc: Value) -> Result<Value, ProxyError> {
    match &tc {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(json!({"type": "auto"})),
            "none" => Ok(json!({"type": "none"})),
            "required" => Ok(json!({"type": "any"})),
            other => Err(bad("tool_choice", format!("unknown tool_choice '{other}'"))),
        },
        Value::Object(o) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str);
            match (o.get("type").and_then(Value::as_str), name) {
                (Some("function") | None, Some(name)) => Ok(json!({"type": "tool", "name": name})),
                _ => Err(bad(
                    "tool_choice",
                    "tool_choice objects must name a function",
                )),
            }
        }
        _ => Err(bad(
            "tool_choice",
            "tool_choice must be a string or an object",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------------------------

/// Claude's stop reason as OpenAI's finish_reason.
fn finish_reason(stop_reason: Option<&str>) -> &'static str {
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
fn claude_error(status: Option<u16>, v: &Value) -> Option<ProxyError> {
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

/// Bounded state: the stream identity, usage counts, the Claude block index of each open
/// tool_use block with its OpenAI tool-call index, and a few flags.
struct ClaudeTranslator {
    model: String,
    include_usage: bool,
    meta: Option<StreamMeta>,
    /// (Claude content block index, OpenAI tool_calls index) for open tool_use blocks.
    open_tools: Vec<(u64, u32)>,
    next_tool: u32,
    /// Claude's `input_tokens`, `cache_creation_input_tokens`, `cache_read_input_tokens`:
    /// OpenAI's prompt tokens are their sum (Claude counts cached prompt tokens apart).
    prompt: [u64; 3],
    completion: u64,
    usage_seen: bool,
    finish_sent: bool,
    /// `[DONE]` written.
    done: bool,
    /// An in-stream error was reported; the rest of the stream is ignored.
    failed: bool,
}

impl ClaudeTranslator {
    fn new(model: &str, include_usage: bool) -> Self {
        Self {
            model: model.to_string(),
            include_usage,
            meta: None,
            open_tools: Vec::new(),
            next_tool: 0,
            prompt: [0; 3],
            completion: 0,
            usage_seen: false,
            finish_sent: false,
            done: false,
            failed: false,
        }
    }

    fn current_usage(&self) -> Usage {
        Usage::saturating(&self.prompt, &[self.completion], None)
    }

    fn read_usage(&mut self, u: Option<&Value>) {
        let Some(u) = u.filter(|u| u.is_object()) else {
            return;
        };
        // Counts are cumulative; a later event (message_delta) may repeat some of them.
        const PROMPT: [&str; 3] = [
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ];
        for (slot, key) in self.prompt.iter_mut().zip(PROMPT) {
            if let Some(n) = u.get(key).and_then(Value::as_u64) {
                *slot = n;
                self.usage_seen = true;
            }
        }
        if let Some(c) = u.get("output_tokens").and_then(Value::as_u64) {
            self.completion = c;
            self.usage_seen = true;
        }
    }

    /// The stream identity, emitting the `role: assistant` chunk the first time.
    fn started(&mut self, out: &mut Vec<u8>, id: Option<&str>, model: Option<&str>) -> &StreamMeta {
        if self.meta.is_none() {
            let mut meta = StreamMeta::new(&self.model);
            if let Some(id) = id.filter(|s| !s.is_empty()) {
                meta.id = id.to_string();
            }
            if let Some(m) = model.filter(|s| !s.is_empty()) {
                meta.model = m.to_string();
            }
            let first = Delta {
                role: Some("assistant"),
                content: Some(""),
                ..Default::default()
            };
            meta.write_chunk(out, 0, &first, None);
            self.meta = Some(meta);
        }
        self.meta.as_ref().expect("set above")
    }

    fn write_text(&mut self, out: &mut Vec<u8>, text: &str) {
        if text.is_empty() {
            return;
        }
        let delta = Delta {
            content: Some(text),
            ..Default::default()
        };
        self.started(out, None, None)
            .write_chunk(out, 0, &delta, None);
    }

    fn write_tool_delta(&mut self, out: &mut Vec<u8>, call: &Value) {
        let calls = Value::Array(vec![call.clone()]);
        let delta = Delta {
            tool_calls: Some(&calls),
            ..Default::default()
        };
        self.started(out, None, None)
            .write_chunk(out, 0, &delta, None);
    }

    fn message_stop(&mut self, out: &mut Vec<u8>) {
        if !self.finish_sent {
            self.finish_sent = true;
            self.started(out, None, None)
                .write_chunk(out, 0, &Delta::default(), Some("stop"));
        }
        if self.include_usage {
            let usage = self.current_usage();
            self.started(out, None, None).write_usage_chunk(out, &usage);
        }
        self.done = true;
        sse::write_done(out);
    }
}

impl ResponseTranslator for ClaudeTranslator {
    fn on_event(&mut self, event: SseEvent<'_>, out: &mut Vec<u8>) -> Result<(), ProxyError> {
        let data = event.data.trim_ascii();
        if self.done || self.failed || data.is_empty() {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(data).map_err(|e| {
            ProxyError::bad_upstream(format!("upstream stream event is not JSON: {e}"))
        })?;
        let kind = v.get("type").and_then(Value::as_str).unwrap_or(event.event);
        match kind {
            "message_start" => {
                let m = &v["message"];
                self.read_usage(m.get("usage"));
                self.started(out, m["id"].as_str(), m["model"].as_str());
            }
            "content_block_start" => {
                let block = &v["content_block"];
                let index = v["index"].as_u64().unwrap_or(0);
                match block["type"].as_str() {
                    Some("text") => self.write_text(out, block["text"].as_str().unwrap_or("")),
                    Some("tool_use") => {
                        let ti = self.next_tool;
                        self.next_tool += 1;
                        self.open_tools.push((index, ti));
                        // The input normally streams as input_json_delta; a block that starts
                        // with a non-empty input carries it whole.
                        let args = match &block["input"] {
                            Value::Object(o) if !o.is_empty() => block["input"].to_string(),
                            _ => String::new(),
                        };
                        let call = json!({
                            "index": ti,
                            "id": block["id"].as_str().unwrap_or(""),
                            "type": "function",
                            "function": {"name": block["name"].as_str().unwrap_or(""), "arguments": args},
                        });
                        self.write_tool_delta(out, &call);
                    }
                    // thinking, redacted_thinking, server tool blocks: not part of OpenAI's
                    // chat completion shape.
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = &v["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        self.write_text(out, delta["text"].as_str().unwrap_or(""))
                    }
                    Some("input_json_delta") => {
                        let index = v["index"].as_u64().unwrap_or(0);
                        let part = delta["partial_json"].as_str().unwrap_or("");
                        let tool = self
                            .open_tools
                            .iter()
                            .find(|(b, _)| *b == index)
                            .map(|(_, t)| *t);
                        if let (Some(ti), false) = (tool, part.is_empty()) {
                            let call = json!({"index": ti, "function": {"arguments": part}});
                            self.write_tool_delta(out, &call);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                let index = v["index"].as_u64().unwrap_or(0);
                self.open_tools.retain(|(b, _)| *b != index);
            }
            "message_delta" => {
                self.read_usage(v.get("usage"));
                if let Some(reason) = v["delta"]["stop_reason"].as_str() {
                    if !self.finish_sent {
                        self.finish_sent = true;
                        let fr = finish_reason(Some(reason));
                        self.started(out, None, None).write_chunk(
                            out,
                            0,
                            &Delta::default(),
                            Some(fr),
                        );
                    }
                }
            }
            "message_stop" => self.message_stop(out),
            "error" => {
                let err = claude_error(None, &v).unwrap_or_else(|| {
                    ProxyError::bad_upstream("upstream sent an error event without details")
                });
                openai::write_stream_error(out, &err);
                self.failed = true;
            }
            // `ping` and event types added later.
            _ => {}
        }
        Ok(())
    }

    fn on_stream_end(&mut self, out: &mut Vec<u8>) -> Result<(), ProxyError> {
        if self.done {
            return Ok(());
        }
        if !self.failed {
            openai::write_stream_error(
                out,
                &ProxyError::bad_upstream("upstream stream ended before message_stop"),
            );
        }
        self.done = true;
        sse::write_done(out);
        Ok(())
    }

    fn on_body(&mut self, body: &[u8], out: &mut Vec<u8>) -> Result<(), ProxyError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ProxyError::bad_upstream(format!("upstream body is not JSON: {e}")))?;
        if !v.is_object() {
            return Err(ProxyError::bad_upstream(
                "upstream body is not a JSON object",
            ));
        }
        if v["type"] == "error" || v.get("error").is_some_and(Value::is_object) {
            return Err(claude_error(None, &v)
                .unwrap_or_else(|| ProxyError::bad_upstream("upstream reported an error")));
        }
        let mut text: Option<String> = None;
        let mut calls = Vec::new();
        for block in v["content"].as_array().into_iter().flatten() {
            match block["type"].as_str() {
                Some("text") => text
                    .get_or_insert_with(String::new)
                    .push_str(block["text"].as_str().unwrap_or("")),
                Some("tool_use") => calls.push(json!({
                    "id": block["id"].as_str().unwrap_or(""),
                    "type": "function",
                    "function": {
                        "name": block["name"].as_str().unwrap_or(""),
                        "arguments": block.get("input").map_or_else(|| "{}".to_string(), Value::to_string),
                    },
                })),
                _ => {}
            }
        }
        if text.is_none() && calls.is_empty() {
            text = Some(String::new());
        }
        let tool_calls = (!calls.is_empty()).then_some(Value::Array(calls));
        self.read_usage(v.get("usage"));
        let usage = self.usage_seen.then(|| self.current_usage());
        let id = v["id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map_or_else(openai::new_completion_id, str::to_string);
        let model = v["model"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.model);
        let choice = openai::completion_choice(
            0,
            openai::assistant_message(text, tool_calls),
            finish_reason(v["stop_reason"].as_str()),
        );
        let body = openai::completion(id, openai::now_secs(), model, vec![choice], usage.as_ref());
        serde_json::to_writer(&mut *out, &body).expect("serialising to a Vec cannot fail");
        Ok(())
    }

    fn on_error(&mut self, status: u16, body: &[u8]) -> ProxyError {
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| claude_error(Some(status), &v))
            .unwrap_or_else(|| openai::upstream_error(status, body))
    }

    fn usage(&self) -> Option<Usage> {
        self.usage_seen.then(|| self.current_usage())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Config, Exchange, ResponseMode};
    use crate::testutil::{
        self, assert_chunking_invariant, forward, header, respond, stream_text, upstream_json,
        validate_chat_completion, validate_error, validate_sse_stream,
    };
    use std::sync::Arc;

    const KEY: &str = "sk-ant-test-secret-0001";
    const CHAT: &str = "/v1/chat/completions";

    fn cfg_with(extra: &str) -> Arc<Config> {
        testutil::config(&format!(
            r#"{{"provider":{{"type":"claude","apiTokens":["{KEY}"]{extra}}}}}"#
        ))
    }

    fn cfg() -> Arc<Config> {
        cfg_with("")
    }

    /// Translated upstream body for a chat request.
    fn translate(cfg: &Arc<Config>, body: Value) -> Value {
        let (_, up) = forward(cfg, CHAT, &body.to_string());
        upstream_json(&up)
    }

    /// Expects the request to be answered locally; returns (status, validated error body).
    fn local_reply(cfg: &Arc<Config>, path: &str, body: &str) -> (u16, Value) {
        let (status, v) = crate::testutil::local_reply(cfg, path, body);
        assert!(!v.to_string().contains(KEY), "secret leaked: {v}");
        (status, v)
    }

    fn rejected(body: Value) -> Value {
        let (status, v) = local_reply(&cfg(), CHAT, &body.to_string());
        assert_eq!(status, 400, "{v}");
        v
    }

    fn json_of(out: &[u8]) -> Value {
        serde_json::from_slice(out).unwrap()
    }

    // -- Fixtures -------------------------------------------------------------------------

    /// Mirrors the Messages API response shape ("Messages" API reference,
    /// https://platform.claude.com/docs/en/api/messages): text block, end_turn, usage.
    const TEXT_BODY: &str = r#"{"id":"msg_01AbCdEf","type":"message","role":"assistant","model":"claude-3-5-sonnet-20241022","content":[{"type":"text","text":"Hello"},{"type":"text","text":", world."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":6}}"#;

    /// Mirrors the tool-use response in "How to implement tool use"
    /// (https://platform.claude.com/docs/en/agents-and-tools/tool-use/implement-tool-use):
    /// a text block and a tool_use block, stop_reason tool_use; usage with prompt-cache
    /// counters as documented in "Prompt caching".
    const TOOL_BODY: &str = r#"{"id":"msg_02Tool","type":"message","role":"assistant","model":"claude-3-5-sonnet-20241022","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"location":"Paris","unit":"celsius"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":100,"cache_creation_input_tokens":20,"cache_read_input_tokens":30,"output_tokens":40}}"#;

    /// Mirrors the basic example in "Streaming Messages"
    /// (https://platform.claude.com/docs/en/build-with-claude/streaming): message_start,
    /// a text block with a ping in between, message_delta with cumulative output usage,
    /// message_stop.
    const TEXT_STREAM: &str = "event: message_start\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01Stream\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-3-5-sonnet-20241022\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n\
event: content_block_start\n\
data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: ping\n\
data: {\"type\": \"ping\"}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo \u{e9}t\u{e9}!\"}}\n\n\
event: content_block_stop\n\
data: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\n\
data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n\
event: message_stop\n\
data: {\"type\":\"message_stop\"}\n\n";

    /// Mirrors "Streaming request with tool use" in "Streaming Messages"
    /// (https://platform.claude.com/docs/en/build-with-claude/streaming): a text block, then a
    /// tool_use block whose input arrives as input_json_delta fragments (the first one empty),
    /// stop_reason tool_use. CRLF line endings, as SSE allows.
    const TOOL_STREAM: &str = "event: message_start\r\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_03Tools\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-3-5-sonnet-20241022\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"output_tokens\":2}}}\r\n\r\n\
event: content_block_start\r\n\
data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\r\n\r\n\
event: content_block_delta\r\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me check.\"}}\r\n\r\n\
event: content_block_stop\r\n\
data: {\"type\":\"content_block_stop\",\"index\":0}\r\n\r\n\
event: content_block_start\r\n\
data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1\",\"name\":\"get_weather\",\"input\":{}}}\r\n\r\n\
event: content_block_delta\r\n\
data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\r\n\r\n\
event: content_block_delta\r\n\
data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\": \\\"San\"}}\r\n\r\n\
event: content_block_delta\r\n\
data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" Francisco\\\"}\"}}\r\n\r\n\
event: content_block_stop\r\n\
data: {\"type\":\"content_block_stop\",\"index\":1}\r\n\r\n\
event: content_block_start\r\n\
data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T2\",\"name\":\"get_time\",\"input\":{}}}\r\n\r\n\
event: content_block_delta\r\n\
data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"tz\\\":\\\"PST\\\"}\"}}\r\n\r\n\
event: content_block_stop\r\n\
data: {\"type\":\"content_block_stop\",\"index\":2}\r\n\r\n\
event: message_delta\r\n\
data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\r\n\r\n\
event: message_stop\r\n\
data: {\"type\":\"message_stop\"}\r\n\r\n";

    /// Mirrors "Error events" in "Streaming Messages"
    /// (https://platform.claude.com/docs/en/build-with-claude/streaming): an `error` event
    /// (overloaded_error) after the 200 and some content.
    const ERROR_STREAM: &str = "event: message_start\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_04Err\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-3-5-sonnet-20241022\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n\
event: content_block_start\n\
data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Par\"}}\n\n\
event: error\n\
data: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";

    /// Mirrors the error shape in "Errors" (https://platform.claude.com/docs/en/api/errors).
    const OVERLOADED_BODY: &str = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#;
    const AUTH_BODY: &str =
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;

    fn stream_exchange(cfg: &Arc<Config>, include_usage: bool) -> Exchange {
        let body = json!({
            "model": "claude-3-5-sonnet-20241022",
            "stream": true,
            "stream_options": {"include_usage": include_usage},
            "messages": [{"role": "user", "content": "Hi"}],
        });
        let (ex, up) = forward(cfg, CHAT, &body.to_string());
        let sent = upstream_json(&up);
        assert_eq!(sent["stream"], true);
        assert!(sent.get("stream_options").is_none());
        ex
    }

    fn buffered_exchange(cfg: &Arc<Config>) -> Exchange {
        let body = json!({"model": "claude-3-5-sonnet-20241022", "messages": [{"role": "user", "content": "Hi"}]});
        forward(cfg, CHAT, &body.to_string()).0
    }

    // -- Request --------------------------------------------------------------------------

    #[test]
    fn chat_text_request_target_headers_and_default_max_tokens() {
        let cfg = cfg();
        let body = json!({"model": "claude-3-opus-20240229", "messages": [{"role": "user", "content": "Hello, who are you?"}]});
        let (_, up) = forward(&cfg, CHAT, &body.to_string());
        assert_eq!(up.authority, "api.anthropic.com");
        assert_eq!(up.path, "/v1/messages");
        assert_eq!(header(&up, "x-api-key"), Some(KEY));
        assert_eq!(header(&up, "anthropic-version"), Some("2023-06-01"));
        assert_eq!(header(&up, "content-type"), Some("application/json"));
        assert!(header(&up, "authorization").is_none());
        assert!(up.remove_headers.contains(&"authorization"));
        assert_eq!(
            upstream_json(&up),
            json!({
                "model": "claude-3-opus-20240229",
                "messages": [{"role": "user", "content": "Hello, who are you?"}],
                "max_tokens": 4096,
            })
        );
    }

    #[test]
    fn claude_version_and_model_mapping_are_used() {
        let cfg = cfg_with(
            r#","claudeVersion":"2024-01-01","modelMapping":{"gpt-4o":"claude-3-5-haiku-20241022"}"#,
        );
        let (_, up) = forward(
            &cfg,
            CHAT,
            &json!({"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}).to_string(),
        );
        assert_eq!(header(&up, "anthropic-version"), Some("2024-01-01"));
        let sent = upstream_json(&up);
        assert_eq!(sent["model"], "claude-3-5-haiku-20241022");
        assert_eq!(sent["max_tokens"], 10);
    }

    #[test]
    fn multi_turn_with_system_parameters_and_merged_turns() {
        let sent = translate(
            &cfg(),
            json!({
                "model": "claude-3-5-sonnet-20241022",
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello."},
                    {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                    {"role": "user", "content": "Weather?"},
                    {"role": "user", "content": [{"type": "text", "text": "In Paris."}]},
                ],
                "max_completion_tokens": 256,
                "max_tokens": 99,
                "stop": ["\n\nHuman:", "END"],
                "temperature": 0.3,
                "top_p": 0.9,
                "top_k": 40,
                "user": "user-123",
                "n": 1,
                "presence_penalty": 0,
                "store": false,
                "stream": false,
            }),
        );
        assert_eq!(
            sent,
            json!({
                "model": "claude-3-5-sonnet-20241022",
                "system": [
                    {"type": "text", "text": "You are terse."},
                    {"type": "text", "text": "Answer in French."},
                ],
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello."},
                    {"role": "user", "content": [
                        {"type": "text", "text": "Weather?"},
                        {"type": "text", "text": "In Paris."},
                    ]},
                ],
                "max_tokens": 256,
                "stop_sequences": ["\n\nHuman:", "END"],
                "temperature": 0.3,
                "top_p": 0.9,
                "top_k": 40,
                "metadata": {"user_id": "user-123"},
            })
        );
    }

    #[test]
    fn single_system_is_a_string_and_stop_string_becomes_a_list() {
        let sent = translate(
            &cfg(),
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
                    {"role": "user", "content": "Hi"},
                ],
                "stop": "STOP",
            }),
        );
        assert_eq!(sent["system"], "Be kind.");
        assert_eq!(sent["stop_sequences"], json!(["STOP"]));
        assert_eq!(sent["max_tokens"], 4096);
    }

    #[test]
    fn images_from_data_urls_and_http_urls() {
        let sent = translate(
            &cfg(),
            json!({
                "model": "claude-3-5-sonnet-20241022",
                "messages": [{"role": "user", "content": [
                    {"type": "text", "text": "Compare these."},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
                ]}],
            }),
        );
        assert_eq!(
            sent["messages"][0]["content"],
            json!([
                {"type": "text", "text": "Compare these."},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
            ])
        );
        let v = rejected(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}}]}]}),
        );
        assert_eq!(v["error"]["param"], "messages[0].content[0]");
        let v = rejected(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "ftp://example.com/x.png"}}]}]}),
        );
        assert!(v["error"]["message"].as_str().unwrap().contains("http"));
        let v = rejected(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}]}]}),
        );
        assert_eq!(v["error"]["code"], "unsupported_feature");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("audio input"));
    }

    #[test]
    fn tools_and_every_tool_choice() {
        let tools = json!([
            {"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}},
            {"type": "function", "function": {"name": "ping"}},
        ]);
        let base = |extra: Value| {
            let mut b = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": tools});
            for (k, v) in extra.as_object().unwrap() {
                b[k] = v.clone();
            }
            translate(&cfg(), b)
        };
        let sent = base(json!({}));
        assert_eq!(
            sent["tools"],
            json!([
                {"name": "get_weather", "description": "Weather by city",
                 "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}},
                {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
            ])
        );
        assert!(sent.get("tool_choice").is_none());
        assert_eq!(
            base(json!({"tool_choice": "auto"}))["tool_choice"],
            json!({"type": "auto"})
        );
        assert_eq!(
            base(json!({"tool_choice": "none"}))["tool_choice"],
            json!({"type": "none"})
        );
        assert_eq!(
            base(json!({"tool_choice": "required"}))["tool_choice"],
            json!({"type": "any"})
        );
        assert_eq!(
            base(json!({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}))
                ["tool_choice"],
            json!({"type": "tool", "name": "get_weather"})
        );
        assert_eq!(
            base(json!({"parallel_tool_calls": false}))["tool_choice"],
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            base(json!({"parallel_tool_calls": false, "tool_choice": "required"}))["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
        assert!(base(json!({"parallel_tool_calls": true}))
            .get("tool_choice")
            .is_none());
        let v = rejected(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "custom", "custom": {"name": "x"}}]}),
        );
        assert_eq!(v["error"]["code"], "unsupported_feature");
    }

    #[test]
    fn assistant_tool_calls_and_tool_results_round_trip() {
        let sent = translate(
            &cfg(),
            json!({
                "model": "m",
                "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
                "messages": [
                    {"role": "user", "content": "Weather in Paris and Rome?"},
                    {"role": "assistant", "content": "", "tool_calls": [
                        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
                    ]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                    {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "21C"}]},
                    {"role": "user", "content": "Which is warmer?"},
                ],
            }),
        );
        assert_eq!(
            sent["messages"],
            json!([
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "21C"}]},
                    {"type": "text", "text": "Which is warmer?"},
                ]},
            ])
        );
    }

    #[test]
    fn invalid_tool_messages_are_400() {
        let v = rejected(json!({"model": "m", "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]},
        ]}));
        assert_eq!(
            v["error"]["param"],
            "messages[1].tool_calls[0].function.arguments"
        );
        let v = rejected(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}));
        assert_eq!(v["error"]["param"], "messages[0].tool_call_id");
        let v = rejected(
            json!({"model": "m", "messages": [{"role": "function", "name": "f", "content": "x"}]}),
        );
        assert_eq!(v["error"]["code"], "unsupported_feature");
    }

    #[test]
    fn unsupported_openai_features_are_named_400s() {
        let cases = [
            ("n", json!(2), "n other than 1"),
            ("logprobs", json!(true), "logprobs"),
            ("top_logprobs", json!(3), "top_logprobs"),
            ("logit_bias", json!({"50256": -100}), "logit_bias"),
            ("frequency_penalty", json!(0.5), "frequency_penalty"),
            ("seed", json!(7), "seed"),
            (
                "response_format",
                json!({"type": "json_object"}),
                "response_format 'json_object'",
            ),
            ("functions", json!([{"name": "f"}]), "legacy 'functions'"),
            ("audio", json!({"voice": "alloy"}), "audio output"),
        ];
        for (key, value, feature) in cases {
            let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
            body[key] = value;
            let v = rejected(body);
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(
                msg.contains(feature) && msg.contains("'claude'"),
                "{key}: {msg}"
            );
            assert_eq!(v["error"]["code"], "unsupported_feature");
            assert_eq!(v["error"]["param"], key);
        }
        // Neutral values are accepted and not forwarded.
        let sent = translate(
            &cfg(),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 1, "logprobs": false,
                   "frequency_penalty": 0.0, "response_format": {"type": "text"}, "logit_bias": {}}),
        );
        assert_eq!(
            sent,
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 4096})
        );
        // Fields we do not know are Claude's to judge, not dropped.
        let sent = translate(
            &cfg(),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "thinking": {"type": "enabled", "budget_tokens": 1024}}),
        );
        assert_eq!(
            sent["thinking"],
            json!({"type": "enabled", "budget_tokens": 1024})
        );
        // A configured responseJsonSchema cannot be honoured.
        let cfg = cfg_with(r#","responseJsonSchema":{"type":"object"}"#);
        let (status, v) = local_reply(
            &cfg,
            CHAT,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
        );
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some("unsupported_feature"))
        );
    }

    #[test]
    fn embeddings_are_unsupported() {
        let (status, v) = local_reply(
            &cfg(),
            "/v1/embeddings",
            r#"{"model":"voyage-3","input":"hello"}"#,
        );
        assert_eq!(status, 400);
        assert_eq!(v["error"]["code"], "unsupported_feature");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("embeddings"));
    }

    #[test]
    fn custom_settings_use_the_claude_column() {
        let cfg = cfg_with(
            r#","customSettings":[
                {"name":"top_k","value":30},
                {"name":"seed","value":1},
                {"name":"temperature","value":0.2,"overwrite":false},
                {"name":"max_tokens","value":1000,"overwrite":false}
            ]"#,
        );
        // No max_tokens from the client: customSettings fills it (our 4096 default stays out of
        // the way); temperature from the client is kept; seed has no Claude column.
        let sent = translate(
            &cfg,
            json!({"model": "m", "temperature": 0.9, "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(sent["max_tokens"], 1000);
        assert_eq!(sent["top_k"], 30);
        assert_eq!(sent["temperature"], 0.9);
        assert!(sent.get("seed").is_none());
        // The client's max_tokens wins over overwrite:false.
        let sent = translate(
            &cfg,
            json!({"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(sent["max_tokens"], 50);
        let cfg = cfg_with(r#","customSettings":[{"name":"max_tokens","value":777}]"#);
        let sent = translate(
            &cfg,
            json!({"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(sent["max_tokens"], 777);
    }

    #[test]
    fn protocol_original_passes_the_client_path_through() {
        let original = cfg_with(r#","protocol":"original""#);
        let body = r#"{"model":"claude-3-5-sonnet-20241022","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}"#;
        let (mut ex, up) = forward(&original, "/v1/messages?beta=true", body);
        assert_eq!(up.authority, "api.anthropic.com");
        assert_eq!(up.path, "/v1/messages?beta=true");
        assert_eq!(up.body, None);
        assert_eq!(header(&up, "x-api-key"), Some(KEY));
        assert_eq!(header(&up, "anthropic-version"), Some("2023-06-01"));
        assert!(up.remove_headers.contains(&"authorization"));
        let (status, out, mode) = respond(&mut ex, 200, "application/json", TEXT_BODY.as_bytes());
        assert_eq!((status, mode), (200, ResponseMode::Passthrough));
        assert_eq!(out, TEXT_BODY.as_bytes());
        // The same for a Claude-native path under the default OpenAI protocol.
        let (_, up) = forward(&cfg(), "/v1/messages", body);
        assert_eq!(
            (up.path.as_str(), up.body.is_none()),
            ("/v1/messages", true)
        );
        assert_eq!(header(&up, "x-api-key"), Some(KEY));
    }

    // -- Buffered responses ---------------------------------------------------------------

    #[test]
    fn buffered_text_response_and_usage() {
        let mut ex = buffered_exchange(&cfg());
        let (status, out, mode) = respond(&mut ex, 200, "application/json", TEXT_BODY.as_bytes());
        assert_eq!((status, mode), (200, ResponseMode::Buffer));
        let v = json_of(&out);
        validate_chat_completion(&v);
        assert_eq!(v["id"], "msg_01AbCdEf");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], "claude-3-5-sonnet-20241022");
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert_eq!(v["choices"][0]["message"]["content"], "Hello, world.");
        assert!(v["choices"][0]["message"].get("tool_calls").is_none());
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18})
        );
        assert_eq!(ex.usage(), Some(Usage::new(12, 6, None)));
    }

    #[test]
    fn buffered_tool_use_response() {
        let mut ex = buffered_exchange(&cfg());
        let (status, out, _) = respond(&mut ex, 200, "application/json", TOOL_BODY.as_bytes());
        assert_eq!(status, 200);
        let v = json_of(&out);
        validate_chat_completion(&v);
        let msg = &v["choices"][0]["message"];
        assert_eq!(msg["content"], "Checking.");
        assert_eq!(msg["tool_calls"][0]["id"], "toolu_01A");
        assert_eq!(msg["tool_calls"][0]["type"], "function");
        assert_eq!(msg["tool_calls"][0]["function"]["name"], "get_weather");
        let args: Value = serde_json::from_str(
            msg["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(args, json!({"location": "Paris", "unit": "celsius"}));
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        // Cached prompt tokens count as prompt tokens.
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 150, "completion_tokens": 40, "total_tokens": 190})
        );
    }

    #[test]
    fn buffered_tool_only_response_has_null_content() {
        let body = r#"{"id":"msg_x","type":"message","role":"assistant","model":"m","content":[{"type":"tool_use","id":"toolu_9","name":"ping","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2}}"#;
        let mut ex = buffered_exchange(&cfg());
        let v = json_of(&respond(&mut ex, 200, "application/json", body.as_bytes()).1);
        validate_chat_completion(&v);
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{}"
        );
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        for (claude, openai) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("pause_turn", "stop"),
            ("model_context_window_exceeded", "length"),
        ] {
            let body = format!(
                r#"{{"id":"msg_x","type":"message","role":"assistant","model":"m","content":[{{"type":"text","text":"t"}}],"stop_reason":"{claude}","usage":{{"input_tokens":1,"output_tokens":1}}}}"#
            );
            let mut ex = buffered_exchange(&cfg());
            let v = json_of(&respond(&mut ex, 200, "application/json", body.as_bytes()).1);
            validate_chat_completion(&v);
            assert_eq!(v["choices"][0]["finish_reason"], openai, "{claude}");
        }
    }

    #[test]
    fn buffered_upstream_errors_keep_status() {
        let cases: [(u16, &str, &str, Option<&str>); 4] = [
            (529, OVERLOADED_BODY, "api_error", Some("overloaded_error")),
            (
                401,
                AUTH_BODY,
                "authentication_error",
                Some("authentication_error"),
            ),
            (
                404,
                r#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-9"}}"#,
                "invalid_request_error",
                Some("not_found_error"),
            ),
            (
                503,
                "<html>upstream connect error</html>",
                "api_error",
                None,
            ),
        ];
        for (status, body, kind, code) in cases {
            let mut ex = buffered_exchange(&cfg());
            let (got, out, mode) = respond(&mut ex, status, "application/json", body.as_bytes());
            assert_eq!((got, mode), (status, ResponseMode::Buffer));
            let v = json_of(&out);
            validate_error(&v);
            assert_eq!(v["error"]["type"], kind, "{body}");
            assert_eq!(v["error"]["code"].as_str(), code, "{body}");
        }
        let mut ex = buffered_exchange(&cfg());
        let v = json_of(&respond(&mut ex, 529, "application/json", OVERLOADED_BODY.as_bytes()).1);
        assert_eq!(v["error"]["message"], "Overloaded");
    }

    #[test]
    fn error_inside_a_200_and_malformed_bodies() {
        let mut ex = buffered_exchange(&cfg());
        let (status, out, _) =
            respond(&mut ex, 200, "application/json", OVERLOADED_BODY.as_bytes());
        assert_eq!(status, 529);
        validate_error(&json_of(&out));
        let mut ex = buffered_exchange(&cfg());
        let (status, out, _) = respond(&mut ex, 200, "application/json", b"{not json");
        assert_eq!(status, 502);
        validate_error(&json_of(&out));
    }

    // -- Streams --------------------------------------------------------------------------

    #[test]
    fn stream_text_with_usage_chunk() {
        let mut ex = stream_exchange(&cfg(), true);
        let (status, out, mode) =
            respond(&mut ex, 200, "text/event-stream", TEXT_STREAM.as_bytes());
        assert_eq!((status, mode), (200, ResponseMode::Stream));
        let events = validate_sse_stream(&out);
        assert_eq!(stream_text(&events), "Hello été!");
        // First chunk carries the role; identity comes from message_start.
        assert_eq!(
            events[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        for e in &events {
            assert_eq!(e["id"], "msg_01Stream");
            assert_eq!(e["model"], "claude-3-5-sonnet-20241022");
        }
        let finishes: Vec<&Value> = events
            .iter()
            .filter_map(|e| {
                e["choices"]
                    .get(0)?
                    .get("finish_reason")
                    .filter(|f| !f.is_null())
            })
            .collect();
        assert_eq!(finishes, vec![&json!("stop")]);
        let last = events.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(
            last["usage"],
            json!({"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40})
        );
        assert_eq!(
            events.iter().filter(|e| e.get("usage").is_some()).count(),
            1
        );
        assert_eq!(ex.usage(), Some(Usage::new(25, 15, None)));
    }

    #[test]
    fn stream_without_include_usage_has_no_usage_chunk_but_records_usage() {
        let mut ex = stream_exchange(&cfg(), false);
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", TEXT_STREAM.as_bytes());
        let events = validate_sse_stream(&out);
        assert!(events.iter().all(|e| e.get("usage").is_none()));
        assert_eq!(
            events.last().unwrap()["choices"][0]["finish_reason"],
            "stop"
        );
        assert_eq!(ex.usage(), Some(Usage::new(25, 15, None)));
    }

    #[test]
    fn stream_tool_calls() {
        let mut ex = stream_exchange(&cfg(), false);
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", TOOL_STREAM.as_bytes());
        let events = validate_sse_stream(&out);
        assert_eq!(stream_text(&events), "Let me check.");
        let calls: Vec<&Value> = events
            .iter()
            .filter_map(|e| e["choices"].get(0)?.get("delta")?.get("tool_calls"))
            .map(|tc| &tc[0])
            .collect();
        // Starts carry id, type, name and empty arguments; deltas carry the same index.
        assert_eq!(
            calls[0],
            &json!({"index": 0, "id": "toolu_01T1", "type": "function", "function": {"name": "get_weather", "arguments": ""}})
        );
        let args = |idx: u64| -> String {
            calls
                .iter()
                .filter(|c| c["index"] == idx)
                .filter_map(|c| c["function"]["arguments"].as_str())
                .collect()
        };
        assert_eq!(
            serde_json::from_str::<Value>(&args(0)).unwrap(),
            json!({"location": "San Francisco"})
        );
        assert_eq!(calls.iter().filter(|c| c["index"] == 1).count(), 2);
        assert_eq!(
            calls.iter().find(|c| c["index"] == 1).unwrap()["id"],
            "toolu_01T2"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&args(1)).unwrap(),
            json!({"tz": "PST"})
        );
        assert_eq!(
            events.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls"
        );
        assert_eq!(ex.usage(), Some(Usage::new(472, 89, None)));
    }

    #[test]
    fn stream_translation_is_chunking_invariant() {
        let cfg = cfg();
        for (body, usage) in [
            (TEXT_STREAM, true),
            (TOOL_STREAM, true),
            (ERROR_STREAM, false),
        ] {
            assert_chunking_invariant(
                || stream_exchange(&cfg, usage),
                "text/event-stream",
                body.as_bytes(),
            );
        }
    }

    #[test]
    fn in_stream_error_event_becomes_an_openai_error_then_done() {
        let mut ex = stream_exchange(&cfg(), true);
        let (status, out, _) = respond(&mut ex, 200, "text/event-stream", ERROR_STREAM.as_bytes());
        assert_eq!(status, 200);
        let events = validate_sse_stream(&out);
        assert_eq!(stream_text(&events), "Par");
        let err = events.last().unwrap();
        assert_eq!(err["error"]["message"], "Overloaded");
        assert_eq!(err["error"]["code"], "overloaded_error");
        assert_eq!(err["error"]["type"], "api_error");
        assert!(events.iter().all(|e| e.get("usage").is_none()));
    }

    #[test]
    fn truncated_or_garbled_streams_end_with_an_error_and_done() {
        let cut = TEXT_STREAM.find("event: message_delta").unwrap();
        let mut ex = stream_exchange(&cfg(), false);
        let (_, out, _) = respond(
            &mut ex,
            200,
            "text/event-stream",
            &TEXT_STREAM.as_bytes()[..cut],
        );
        let events = validate_sse_stream(&out);
        assert_eq!(stream_text(&events), "Hello été!");
        assert!(events.last().unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("message_stop"));

        let mut ex = stream_exchange(&cfg(), false);
        let (_, out, _) = respond(
            &mut ex,
            200,
            "text/event-stream",
            b"event: message_start\ndata: {oops\n\n",
        );
        let events = validate_sse_stream(&out);
        assert_eq!(events.len(), 1);
        assert!(events[0].get("error").is_some());
    }

    #[test]
    fn stream_usage_counts_cache_tokens_and_cumulative_message_delta() {
        // Usage fields per "Streaming Messages" and "Prompt caching": message_delta may repeat
        // input_tokens without the cache counters; counts are cumulative, not increments.
        let mut t = ClaudeTranslator::new("m", true);
        let mut out = Vec::new();
        for data in [
            r#"{"type":"message_start","message":{"id":"msg_u","model":"m","usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"input_tokens":10,"output_tokens":7}}"#,
            r#"{"type":"message_stop"}"#,
        ] {
            t.on_event(
                SseEvent {
                    event: "",
                    data: data.as_bytes(),
                },
                &mut out,
            )
            .unwrap();
        }
        t.on_stream_end(&mut out).unwrap();
        let events = validate_sse_stream(&out);
        assert_eq!(t.usage(), Some(Usage::new(15, 7, None)));
        assert_eq!(events[1]["choices"][0]["finish_reason"], "length");
        assert_eq!(events[2]["usage"]["total_tokens"], 22);
    }

    #[test]
    fn stream_request_answered_with_an_http_error_is_buffered() {
        let mut ex = stream_exchange(&cfg(), true);
        let (status, out, mode) = respond(&mut ex, 429, "application/json",
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#);
        assert_eq!((status, mode), (429, ResponseMode::Buffer));
        let v = json_of(&out);
        validate_error(&v);
        assert_eq!(v["error"]["type"], "rate_limit_error");
    }
}
