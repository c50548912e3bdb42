//! OpenAI chat request → Claude Messages request.

use super::super::RequestInfo;
use super::thinking::Thinking;
use super::NAME;
use crate::config::ProviderConfig;
use crate::custom_settings::{self, SettingsProtocol};
use crate::error::ProxyError;
use crate::openai::request::{
    bad_param as bad, body_object, json_schema, parse_data_url, role_error, stop_sequences, take,
    DataUrl, Param, ParamTable, OPENAI_ONLY,
};
use serde_json::{json, Map, Value};

/// `max_tokens` is required by Claude; used when neither the client nor customSettings set it.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

fn unsupported(feature: &str, param: &str) -> ProxyError {
    ProxyError::unsupported(feature, NAME).with_param(param)
}

pub(super) fn translate_chat(req: &RequestInfo<'_>, body: &mut Value) -> Result<(), ProxyError> {
    let obj = body_object(body)?;
    let mut src = std::mem::take(obj);
    src.remove("model");
    let output_format = structured_output(&mut src)?;
    let effort = take(&mut src, "reasoning_effort");
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

    let stop = stop_sequences(take(&mut src, "stop"))?;
    if !stop.is_empty() {
        out.insert("stop_sequences".into(), stop.into());
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
    // `safety_identifier` is the newer name for what `user` carried: both identify the end user.
    let user = take(&mut src, "user");
    let safety = take(&mut src, "safety_identifier");
    match safety.or(user) {
        None => {}
        Some(Value::String(u)) => {
            out.insert("metadata".into(), json!({ "user_id": u }));
        }
        Some(_) => return Err(bad("user", "'user' must be a string")),
    }
    if let Some(format) = output_format {
        out.insert("output_config".into(), json!({ "format": format }));
    }
    if let Some(effort) = effort {
        apply_reasoning_effort(req.model, &effort, &mut out)?;
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

    // What is left: Claude-native fields a client may add on purpose go through for Claude to
    // judge; anything else is an OpenAI field Claude does not take (newer SDKs add fields such as
    // `prompt_cache_key`), which Anthropic would reject as an extra input, so it is dropped.
    for (k, v) in src {
        if !v.is_null() && CLAUDE_NATIVE.contains(&k.as_str()) {
            out.insert(k, v);
        }
    }
    *obj = out;
    Ok(())
}

/// Messages API request fields with no OpenAI counterpart, passed through when a client sends them.
const CLAUDE_NATIVE: &[&str] = &[
    "thinking",
    "output_config",
    "container",
    "mcp_servers",
    "context_management",
];

/// `response_format` → Claude's structured outputs (`output_config.format`, a JSON schema).
/// JSON mode without a schema has no Claude counterpart: a clear 400.
fn structured_output(src: &mut Map<String, Value>) -> Result<Option<Value>, ProxyError> {
    let Some(rf) = take(src, "response_format") else {
        return Ok(None);
    };
    match rf.get("type").and_then(Value::as_str).unwrap_or("") {
        "text" => Ok(None),
        "json_schema" => {
            let schema = json_schema(&rf)?;
            Ok(Some(json!({"type": "json_schema", "schema": schema})))
        }
        kind => Err(unsupported(
            &format!("response_format '{kind}' (use json_schema)"),
            "response_format",
        )),
    }
}

/// `reasoning_effort` → the model's thinking control (see `thinking.rs`). A fixed budget must
/// stay below `max_tokens`, so `max_tokens` grows to leave room for the answer; adaptive thinking
/// takes its depth from `output_config.effort`.
fn apply_reasoning_effort(
    model: &str,
    effort: &Value,
    out: &mut Map<String, Value>,
) -> Result<(), ProxyError> {
    let thinking = super::thinking::for_effort(model, effort)?;
    if let Some(field) = thinking.field() {
        out.insert("thinking".into(), field);
    }
    match thinking {
        Thinking::Budget(budget) => {
            let max = out.get("max_tokens").and_then(Value::as_u64).unwrap_or(0);
            if max <= budget {
                out.insert("max_tokens".into(), (budget + DEFAULT_MAX_TOKENS).into());
            }
        }
        Thinking::Adaptive(level) => {
            let config = out
                .entry("output_config")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(c) = config.as_object_mut() {
                c.insert("effort".into(), level.into());
            }
        }
        Thinking::Omit | Thinking::Disabled => {}
    }
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

/// OpenAI request fields Claude cannot honour beyond [`OPENAI_ONLY`]: a 400 naming them when they
/// ask for something; neutral values (zero penalties) are removed.
const PARAMS: ParamTable = ParamTable(&[
    (
        "frequency_penalty",
        Param::RejectUnlessNeutral("frequency_penalty"),
    ),
    (
        "presence_penalty",
        Param::RejectUnlessNeutral("presence_penalty"),
    ),
    ("seed", Param::Reject("seed")),
]);

fn reject_unsupported(src: &mut Map<String, Value>) -> Result<(), ProxyError> {
    OPENAI_ONLY.apply(src, NAME)?;
    PARAMS.apply(src, NAME)
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
            other => return Err(role_error(other, i, NAME)),
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
            .map(|(j, p)| {
                // Prompt caching: a part's `cache_control` marks Claude's block the same way
                // (docs.claude.com, "Prompt caching").
                let cache = p.get("cache_control").filter(|c| c.is_object()).cloned();
                let mut block = user_part(p, &format!("{param}[{j}]"))?;
                if let (Some(cache), Some(b)) = (cache, block.as_object_mut()) {
                    b.insert("cache_control".into(), cache);
                }
                Ok(block)
            })
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

fn image_block(url: &str, param: &str) -> Result<Value, ProxyError> {
    if url.starts_with("data:") {
        let DataUrl { media_type, data } = parse_data_url(url).ok_or_else(|| {
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
        let DataUrl { media_type, data } = parse_data_url(data_url).ok_or_else(|| {
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

// ---- Request fast path (`openai::chat_read`) ------------------------------------------------
// The same translation as `translate_chat`, from the typed reading straight to bytes. Whatever
// `translate_chat` would refuse, and every case it does not handle, answers `None`: the
// exchange then takes `translate_chat`, the reference (the property test in
// `fast_request_tests.rs` compares the two on many mutated requests).

use crate::custom_settings::CustomSetting;
use crate::json_write::{write_array, write_str, write_str_object, write_u64, write_value};
use crate::openai::chat_read::{write_number, Arguments, ChatRequest, Content, ObjectOut, Part};
use std::borrow::Cow;

/// A Claude content block as `translate_chat` builds it, with a part's `cache_control`.
struct Block<'r> {
    kind: BlockKind<'r>,
    cache: Option<&'r Value>,
}

enum BlockKind<'r> {
    Text(&'r str),
    Image64 {
        media_type: &'r str,
        data: &'r str,
    },
    ImageUrl(&'r str),
    ToolUse {
        id: &'r str,
        name: &'r str,
        /// The arguments object, as JSON.
        input: Cow<'r, [u8]>,
    },
    ToolResult {
        id: &'r str,
        content: ToolContent<'r>,
    },
}

enum ToolContent<'r> {
    Text(&'r str),
    Blocks(Vec<Block<'r>>),
}

fn plain(kind: BlockKind<'_>) -> Block<'_> {
    Block { kind, cache: None }
}

struct FastTurn<'r> {
    role: &'static str,
    blocks: Vec<Block<'r>>,
}

fn push_fast_turn<'r>(turns: &mut Vec<FastTurn<'r>>, role: &'static str, blocks: Vec<Block<'r>>) {
    match turns.last_mut() {
        Some(last) if last.role == role => last.blocks.extend(blocks),
        _ => turns.push(FastTurn { role, blocks }),
    }
}

/// The Claude body for a chat request the typed reader took, with customSettings applied;
/// `None` when `translate_chat` must decide (it would refuse, or the case is not handled here).
pub(super) fn fast_chat(
    req: &RequestInfo<'_>,
    chat: &ChatRequest<'_>,
    settings: &[CustomSetting],
) -> Option<Vec<u8>> {
    Some(fast_fields(req, chat)?.finish(settings, SettingsProtocol::Claude))
}

/// `fast_chat`'s fields before customSettings, so Vertex can edit them first as it edits the
/// `Value` (`vertex_fast_chat`).
pub(super) fn fast_fields<'k>(
    req: &RequestInfo<'_>,
    chat: &ChatRequest<'_>,
) -> Option<ObjectOut<'k>> {
    // Refused parameters (OPENAI_ONLY, PARAMS): neutral ones (`n: 1`, `logprobs: false`, zero
    // penalties) are dropped, anything else is a 400.
    if chat.seed.is_some()
        || chat.logprobs == Some(true)
        || chat.n.as_ref().is_some_and(|n| n.as_f64() != Some(1.0))
        || [&chat.presence_penalty, &chat.frequency_penalty]
            .iter()
            .any(|p| p.as_ref().is_some_and(|n| n.as_f64() != Some(0.0)))
    {
        return None;
    }
    let thinking = match &chat.reasoning_effort {
        None => None,
        Some(e) => Some(super::thinking::for_effort_str(req.model, &e.0).ok()?),
    };
    let output_format = match &chat.response_format {
        None => None,
        Some(rf) => match rf.get("type").and_then(Value::as_str) {
            Some("text") => None,
            Some("json_schema") => Some(json_schema(rf).ok()?),
            _ => return None,
        },
    };
    let (system, turns) = fast_messages(chat)?;
    let tools = fast_tools(chat)?;
    let mut tool_choice = match &chat.tool_choice {
        None => None,
        Some(tc) => Some(convert_tool_choice(tc.clone()).ok()?),
    };
    if tools.is_empty() {
        if tool_choice
            .as_ref()
            .is_some_and(|tc| matches!(tc["type"].as_str(), Some("auto" | "none")))
        {
            tool_choice = None;
        }
    } else if chat.parallel_tool_calls == Some(false) {
        let tc = tool_choice.get_or_insert_with(|| json!({"type": "auto"}));
        if tc["type"] != "none" {
            tc["disable_parallel_tool_use"] = true.into();
        }
    }

    let mut out = ObjectOut::with_capacity(256 + 2 * req.model.len());
    out.field("model", |b| write_str(b, req.model));
    match system.len() {
        0 => {}
        1 => out.field("system", |b| write_str(b, system[0])),
        _ => out.field("system", |b| {
            write_array(b, system.iter(), |b, t| {
                write_block(b, &plain(BlockKind::Text(t)));
            });
        }),
    }
    out.field("messages", |b| {
        write_array(b, turns.iter(), |b, t| {
            b.extend_from_slice(br#"{"role":"#);
            write_str(b, t.role);
            b.extend_from_slice(br#","content":"#);
            write_collapsed(b, &t.blocks);
            b.push(b'}');
        });
    });
    // A thinking budget must stay below `max_tokens` (`apply_reasoning_effort`): the limit is
    // raised where it stands, or added after `thinking` when customSettings set it.
    let budget = match thinking {
        Some(Thinking::Budget(b)) => Some(b),
        _ => None,
    };
    let raised = |max: u64| budget.filter(|&b| max <= b).map(|b| b + DEFAULT_MAX_TOKENS);
    let mut max_after_thinking = None;
    match chat
        .max_completion_tokens
        .as_ref()
        .or(chat.max_tokens.as_ref())
    {
        Some(n) => match raised(n.as_u64().unwrap_or(0)) {
            Some(m) => out.field("max_tokens", |b| write_u64(b, m)),
            None => out.field("max_tokens", |b| write_number(b, n)),
        },
        None if customsettings_set_max_tokens(req.config) => max_after_thinking = raised(0),
        None => {
            let m = raised(DEFAULT_MAX_TOKENS).unwrap_or(DEFAULT_MAX_TOKENS);
            out.field("max_tokens", |b| write_u64(b, m));
        }
    }
    if let Some(stop) = &chat.stop {
        let seqs = stop.sequences();
        if !seqs.is_empty() {
            out.field("stop_sequences", |b| {
                write_array(b, seqs.iter(), |b, s| write_str(b, s));
            });
        }
    }
    for (key, v) in [
        ("temperature", &chat.temperature),
        ("top_p", &chat.top_p),
        ("top_k", &chat.top_k),
    ] {
        if let Some(n) = v {
            out.field(key, |b| write_number(b, n));
        }
    }
    if req.stream {
        out.field("stream", |b| b.extend_from_slice(b"true"));
    }
    if let Some(u) = chat.safety_identifier.as_ref().or(chat.user.as_ref()) {
        out.field("metadata", |b| write_str_object(b, &[("user_id", &u.0)]));
    }
    let effort = match thinking {
        Some(Thinking::Adaptive(level)) => Some(level),
        _ => None,
    };
    if let Some(schema) = &output_format {
        out.field("output_config", |b| {
            b.extend_from_slice(br#"{"format":{"type":"json_schema","schema":"#);
            write_value(b, schema);
            b.push(b'}');
            if let Some(level) = effort {
                b.extend_from_slice(br#","effort":"#);
                write_str(b, level);
            }
            b.push(b'}');
        });
    }
    if let Some(field) = thinking.as_ref().and_then(Thinking::field) {
        out.field("thinking", |b| write_value(b, &field));
    }
    if let Some(m) = max_after_thinking {
        out.field("max_tokens", |b| write_u64(b, m));
    }
    if let (None, Some(level)) = (&output_format, effort) {
        out.field("output_config", |b| {
            write_str_object(b, &[("effort", level)])
        });
    }
    if !tools.is_empty() {
        out.field("tools", |b| {
            write_array(b, tools.iter(), |b, t| t.write(b));
        });
    }
    if let Some(tc) = &tool_choice {
        out.field("tool_choice", |b| write_value(b, tc));
    }
    Some(out)
}

type FastMessages<'r> = (Vec<&'r str>, Vec<FastTurn<'r>>);

fn fast_messages<'r>(chat: &'r ChatRequest<'_>) -> Option<FastMessages<'r>> {
    let mut system: Vec<&str> = Vec::new();
    let mut turns: Vec<FastTurn<'r>> = Vec::with_capacity(4);
    for m in chat.messages.as_ref()? {
        let m = &m.0;
        match m.role() {
            "system" | "developer" => match &m.content {
                None => {}
                Some(Content::Text(s)) => system.push(s),
                Some(Content::Parts(parts)) => {
                    for p in parts {
                        let p = &p.0;
                        if p.kind() != "text" {
                            return None;
                        }
                        system.push(&p.text.as_ref()?.0);
                    }
                }
            },
            "user" => {
                let blocks = fast_user_blocks(m.content.as_ref())?;
                push_fast_turn(&mut turns, "user", blocks);
            }
            "assistant" => {
                let mut blocks = Vec::new();
                match &m.content {
                    None => {}
                    Some(Content::Text(s)) if !s.is_empty() => {
                        blocks.push(plain(BlockKind::Text(s)));
                    }
                    Some(Content::Text(_)) => {}
                    Some(Content::Parts(parts)) => {
                        for p in parts {
                            let p = &p.0;
                            let text = match p.kind() {
                                "text" => p.text.as_ref(),
                                "refusal" => p.refusal.as_ref(),
                                _ => None,
                            }?;
                            if !text.0.is_empty() {
                                blocks.push(plain(BlockKind::Text(&text.0)));
                            }
                        }
                    }
                }
                for call in m.tool_calls.iter().flatten() {
                    let call = &call.0;
                    let f = &call.function.as_ref()?.0;
                    let (id, name) = (&call.id.as_ref()?.0, &f.name.as_ref()?.0);
                    let input = Arguments::object(f.arguments.as_ref())?;
                    blocks.push(plain(BlockKind::ToolUse { id, name, input }));
                }
                push_fast_turn(&mut turns, "assistant", blocks);
            }
            "tool" => {
                let id = &m.tool_call_id.as_ref()?.0;
                let content = match &m.content {
                    None => ToolContent::Text(""),
                    Some(Content::Text(s)) => ToolContent::Text(s),
                    Some(c) => ToolContent::Blocks(fast_user_blocks(Some(c))?),
                };
                push_fast_turn(
                    &mut turns,
                    "user",
                    vec![plain(BlockKind::ToolResult { id, content })],
                );
            }
            _ => return None,
        }
    }
    Some((system, turns))
}

fn fast_user_blocks<'r>(content: Option<&'r Content<'_>>) -> Option<Vec<Block<'r>>> {
    match content {
        None => Some(Vec::new()),
        Some(Content::Text(s)) => Some(vec![plain(BlockKind::Text(s))]),
        Some(Content::Parts(parts)) => parts
            .iter()
            .map(|p| {
                let p = &p.0;
                Some(Block {
                    kind: fast_user_part(p)?,
                    cache: p.cache_control.as_ref().filter(|c| c.is_object()),
                })
            })
            .collect(),
    }
}

fn fast_user_part<'r>(p: &'r Part<'_>) -> Option<BlockKind<'r>> {
    match p.kind() {
        "text" => Some(BlockKind::Text(&p.text.as_ref()?.0)),
        "image_url" => {
            let url: &str = p.image_url.as_ref()?.url.as_deref()?;
            if url.starts_with("data:") {
                let DataUrl { media_type, data } = parse_data_url(url)?;
                return Some(BlockKind::Image64 { media_type, data });
            }
            // As `image_block`: the scheme, in any case, from the first 8 bytes.
            let head = url.get(..8).unwrap_or(url).as_bytes();
            let http = (head.len() >= 8 && head[..8].eq_ignore_ascii_case(b"https://"))
                || (head.len() >= 7 && head[..7].eq_ignore_ascii_case(b"http://"));
            http.then_some(BlockKind::ImageUrl(url))
        }
        _ => None,
    }
}

/// One tool as `convert_tool` builds it.
struct FastTool<'r> {
    name: &'r str,
    description: Option<&'r str>,
    /// `parameters` when an object (as JSON), else an empty object schema.
    schema: &'r [u8],
    strict: bool,
}

impl FastTool<'_> {
    fn write(&self, b: &mut Vec<u8>) {
        b.extend_from_slice(br#"{"name":"#);
        write_str(b, self.name);
        if let Some(d) = self.description {
            b.extend_from_slice(br#","description":"#);
            write_str(b, d);
        }
        b.extend_from_slice(br#","input_schema":"#);
        b.extend_from_slice(self.schema);
        if self.strict {
            b.extend_from_slice(br#","strict":true"#);
        }
        b.push(b'}');
    }
}

fn fast_tools<'r>(chat: &'r ChatRequest<'_>) -> Option<Vec<FastTool<'r>>> {
    chat.map_functions(|kind, f| {
        if kind.is_some_and(|k| k != "function") {
            return None;
        }
        let schema: &[u8] = match &f.parameters {
            Some(p) if p.shape.object => &p.bytes,
            _ => br#"{"type":"object","properties":{}}"#,
        };
        Some(FastTool {
            name: &f.name.as_ref()?.0,
            description: f.description.as_ref().map(|d| &*d.0),
            schema,
            strict: f.strict == Some(true),
        })
    })
}

/// A turn's content as `collapse` leaves it.
fn write_collapsed(b: &mut Vec<u8>, blocks: &[Block<'_>]) {
    match blocks {
        [] => b.extend_from_slice(b"\"\""),
        [Block {
            kind: BlockKind::Text(t),
            cache: None,
        }] => write_str(b, t),
        _ => write_blocks(b, blocks),
    }
}

fn write_blocks(b: &mut Vec<u8>, blocks: &[Block<'_>]) {
    write_array(b, blocks.iter(), |b, block| write_block(b, block));
}

fn write_block(b: &mut Vec<u8>, block: &Block<'_>) {
    match &block.kind {
        BlockKind::Text(t) => {
            b.extend_from_slice(br#"{"type":"text","text":"#);
            write_str(b, t);
        }
        BlockKind::Image64 { media_type, data } => {
            b.extend_from_slice(br#"{"type":"image","source":{"type":"base64","media_type":"#);
            write_str(b, media_type);
            b.extend_from_slice(br#","data":"#);
            write_str(b, data);
            b.push(b'}');
        }
        BlockKind::ImageUrl(url) => {
            b.extend_from_slice(br#"{"type":"image","source":{"type":"url","url":"#);
            write_str(b, url);
            b.push(b'}');
        }
        BlockKind::ToolUse { id, name, input } => {
            b.extend_from_slice(br#"{"type":"tool_use","id":"#);
            write_str(b, id);
            b.extend_from_slice(br#","name":"#);
            write_str(b, name);
            b.extend_from_slice(br#","input":"#);
            b.extend_from_slice(input);
        }
        BlockKind::ToolResult { id, content } => {
            b.extend_from_slice(br#"{"type":"tool_result","tool_use_id":"#);
            write_str(b, id);
            b.extend_from_slice(br#","content":"#);
            match content {
                ToolContent::Text(t) => write_str(b, t),
                ToolContent::Blocks(blocks) => write_blocks(b, blocks),
            }
        }
    }
    if let Some(cache) = block.cache {
        b.extend_from_slice(br#","cache_control":"#);
        write_value(b, cache);
    }
    b.push(b'}');
}
