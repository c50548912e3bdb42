//! OpenAI chat and embeddings requests → DashScope's `{"model", "input", "parameters"}` bodies.

use super::{Settings, NAME};
use crate::error::ProxyError;
use crate::openai::request::{body_object, take, Param, ParamTable};
use crate::providers::RequestInfo;
use serde_json::{json, Map, Value};

const TEXT_PATH: &str = "/api/v1/services/aigc/text-generation/generation";
const MULTIMODAL_PATH: &str = "/api/v1/services/aigc/multimodal-generation/generation";
const TOP_P_MIN: f64 = 0.000_001;
const TOP_P_MAX: f64 = 0.999_999;

/// What DashScope does with OpenAI's parameters: features it cannot express are a 400 naming
/// them (neutral values pass); `Keep` ones go into `parameters` unchanged, since DashScope names
/// and shapes them the same (`stop` included: DashScope also takes token-id lists, so it is not
/// rewritten). `top_p` and the token limits are mapped in [`translate_chat`]; anything else is
/// left out of the DashScope body.
const PARAMS: ParamTable = ParamTable(&[
    (
        "frequency_penalty",
        Param::RejectUnlessNeutral("frequency_penalty"),
    ),
    ("logit_bias", Param::RejectUnlessNeutral("logit_bias")),
    ("logprobs", Param::RejectUnlessNeutral("logprobs")),
    ("top_logprobs", Param::Reject("logprobs")),
    (
        "functions",
        Param::Reject("the legacy 'functions' field (use 'tools')"),
    ),
    (
        "function_call",
        Param::Reject("the legacy 'function_call' field (use 'tool_choice')"),
    ),
    ("audio", Param::Reject("audio output")),
    ("prediction", Param::Reject("predicted outputs")),
    (
        "web_search_options",
        Param::Reject("web_search_options (configure qwenEnableSearch)"),
    ),
    (
        "modalities",
        Param::RejectUnlessNeutral("non-text output modalities"),
    ),
    ("temperature", Param::Keep),
    ("top_k", Param::Keep),
    ("seed", Param::Keep),
    ("stop", Param::Keep),
    ("presence_penalty", Param::Keep),
    ("repetition_penalty", Param::Keep),
    ("n", Param::Keep),
    ("response_format", Param::Keep),
    ("tools", Param::Keep),
    ("tool_choice", Param::Keep),
    ("parallel_tool_calls", Param::Keep),
    ("enable_thinking", Param::Keep),
    ("thinking_budget", Param::Keep),
    ("enable_search", Param::Keep),
    ("search_options", Param::Keep),
    ("vl_high_resolution_images", Param::Keep),
    ("translation_options", Param::Keep),
]);

/// Models served by the multimodal-generation API: the qwen-vl family (the seed's rule),
/// plus the newer `qwen3-vl-*` / `qwen2.5-vl-*` names and QVQ.
fn is_multimodal(model: &str) -> bool {
    // ASCII case-insensitive, without a lowercased copy.
    let m = model.as_bytes();
    let at = |i: usize, p: &str| {
        m.get(i..i + p.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(p.as_bytes()))
    };
    at(0, "qwen-vl")
        || at(0, "qvq")
        || (0..m.len()).any(|i| at(i, "-vl-"))
        || m.len().checked_sub(3).is_some_and(|i| at(i, "-vl"))
}

fn is_set(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// Rewrites an OpenAI chat body into DashScope's; returns the path.
pub(super) fn translate_chat(
    req: &RequestInfo<'_>,
    settings: &Settings,
    body: &mut Value,
) -> Result<&'static str, ProxyError> {
    let obj = body_object(body)?;
    PARAMS.apply(obj, NAME)?;
    let multimodal = is_multimodal(req.model);
    // The client body is replaced whole: one walk over its fields takes what the DashScope
    // body needs (as `take` would, `null` counting as absent), without a hashed removal each.
    let mut fields = Fields::default();
    for (key, v) in std::mem::take(obj) {
        fields.put(&key, v);
    }
    let messages = match fields.messages {
        Some(Value::Array(m)) => m,
        _ => {
            return Err(
                ProxyError::bad_request("'messages' must be an array").with_param("messages")
            )
        }
    };
    let mut out = Vec::with_capacity(messages.len() + 1);
    for (i, m) in messages.into_iter().enumerate() {
        out.push(convert_message(m, i, multimodal, req.model)?);
    }
    if !settings.file_ids.is_empty() {
        let ids: Vec<String> = settings
            .file_ids
            .iter()
            .map(|id| format!("fileid://{id}"))
            .collect();
        let text = ids.join(",");
        let content = if multimodal {
            json!([{ "text": text }])
        } else {
            Value::String(text)
        };
        // After the client's leading system messages (the documented order), else first.
        let at = out
            .iter()
            .position(|m| m.get("role").and_then(Value::as_str) != Some("system"))
            .unwrap_or(out.len());
        out.insert(at, json!({"role": "system", "content": content}));
    }

    let mut params = Map::with_capacity(8);
    params.insert("result_format".into(), "message".into());
    if req.stream {
        params.insert("incremental_output".into(), true.into());
    }
    if settings.enable_search {
        params.insert("enable_search".into(), true.into());
    }
    for (i, (key, _)) in PARAMS.0.iter().enumerate() {
        if let Some(v) = fields.keep[i].take() {
            params.insert((*key).to_string(), v);
        }
    }
    if let Some(effort) = fields.reasoning_effort {
        apply_reasoning_effort(&effort, &mut params)?;
    }
    if let Some(v) = fields.top_p {
        let p = v.as_f64().ok_or_else(|| {
            ProxyError::bad_request("'top_p' must be a number").with_param("top_p")
        })?;
        params.insert("top_p".into(), json!(p.clamp(TOP_P_MIN, TOP_P_MAX)));
    }
    if let Some(v) = fields.max_tokens.or(fields.max_completion_tokens) {
        params.insert("max_tokens".into(), v);
    }
    // Built in place rather than with `json!`, which would copy the messages and parameters.
    let mut input = Map::with_capacity(1);
    input.insert("messages".into(), Value::Array(out));
    let mut top = Map::with_capacity(3);
    top.insert("model".into(), Value::String(req.model.to_string()));
    top.insert("input".into(), Value::Object(input));
    top.insert("parameters".into(), Value::Object(params));
    *body = Value::Object(top);
    Ok(if multimodal {
        MULTIMODAL_PATH
    } else {
        TEXT_PATH
    })
}

/// The client fields a DashScope chat body takes, gathered in one walk (non-null values only,
/// except `messages`, whose absence or `null` is an error).
#[derive(Default)]
struct Fields {
    messages: Option<Value>,
    /// The values of `PARAMS`' `Keep` rows, by row.
    keep: [Option<Value>; PARAMS.0.len()],
    reasoning_effort: Option<Value>,
    top_p: Option<Value>,
    max_tokens: Option<Value>,
    max_completion_tokens: Option<Value>,
}

impl Fields {
    fn put(&mut self, key: &str, v: Value) {
        if key == "messages" {
            self.messages = Some(v);
            return;
        }
        if v.is_null() {
            return;
        }
        let slot = match key {
            "reasoning_effort" => &mut self.reasoning_effort,
            "top_p" => &mut self.top_p,
            "max_tokens" => &mut self.max_tokens,
            "max_completion_tokens" => &mut self.max_completion_tokens,
            _ => match PARAMS
                .0
                .iter()
                .position(|(k, rule)| *k == key && *rule == Param::Keep)
            {
                Some(i) => &mut self.keep[i],
                None => return,
            },
        };
        *slot = Some(v);
    }
}

/// Thinking budgets for OpenAI's `reasoning_effort`: the ones Google's OpenAI compatibility layer
/// uses for Gemini (OpenAI publishes no token figures), within every Qwen3 model's budget range.
fn thinking_budget(effort: &str) -> Option<u64> {
    match effort {
        "minimal" | "low" => Some(1024),
        "medium" => Some(8192),
        "high" => Some(24576),
        _ => None,
    }
}

/// `reasoning_effort` → DashScope's hybrid-thinking switch (Model Studio "Deep thinking":
/// `enable_thinking`, `thinking_budget` in `parameters`); `none` turns thinking off. The
/// client's own `enable_thinking` / `thinking_budget` (sent as extra fields) win over it.
fn apply_reasoning_effort(
    effort: &Value,
    params: &mut Map<String, Value>,
) -> Result<(), ProxyError> {
    let bad = |msg: String| ProxyError::bad_request(msg).with_param("reasoning_effort");
    let effort = effort
        .as_str()
        .ok_or_else(|| bad("'reasoning_effort' must be a string".into()))?;
    if effort == "none" {
        params.entry("enable_thinking").or_insert(false.into());
        return Ok(());
    }
    let budget = thinking_budget(effort).ok_or_else(|| {
        bad(format!(
            "unknown reasoning_effort '{effort}' (none, minimal, low, medium or high)"
        ))
    })?;
    params.entry("enable_thinking").or_insert(true.into());
    params.entry("thinking_budget").or_insert(budget.into());
    Ok(())
}

fn convert_message(m: Value, i: usize, multimodal: bool, model: &str) -> Result<Value, ProxyError> {
    let param = || format!("messages[{i}]");
    let Value::Object(mut m) = m else {
        return Err(
            ProxyError::bad_request(format!("{} must be an object", param())).with_param(param()),
        );
    };
    // `role` usually comes first: no hashed lookup then.
    let role_value = match m.iter().next() {
        Some((k, v)) if k == "role" => Some(v),
        _ => m.get("role"),
    };
    let role: &'static str = match role_value.and_then(Value::as_str) {
        // OpenAI's newer name for system instructions.
        Some("developer") | Some("system") => "system",
        Some("user") => "user",
        Some("assistant") => "assistant",
        Some("tool") => "tool",
        Some("function") => {
            return Err(
                ProxyError::unsupported("the legacy 'function' role (use 'tool')", NAME)
                    .with_param(format!("{}.role", param())),
            )
        }
        Some(other) => {
            return Err(
                ProxyError::bad_request(format!("unknown role '{other}' in {}", param()))
                    .with_param(format!("{}.role", param())),
            )
        }
        None => {
            return Err(
                ProxyError::bad_request(format!("{}.role is required", param()))
                    .with_param(format!("{}.role", param())),
            )
        }
    };
    // The common `{"role", "content"}` message (in that order) is rewritten in place: the same
    // keys and order the map built below would have, without rehashing them.
    if m.len() == 2 {
        let mut it = m.iter_mut();
        if let (Some((k0, r)), Some((k1, c))) = (it.next(), it.next()) {
            if k0 == "role" && k1 == "content" {
                let content = convert_content(c.take(), multimodal, model, i)?;
                *c = content;
                if r.as_str() != Some(role) {
                    *r = Value::String(role.to_string());
                }
                return Ok(Value::Object(m));
            }
        }
    }
    let content = convert_content(m.remove("content"), multimodal, model, i)?;
    let mut out = Map::new();
    out.insert("role".into(), role.into());
    out.insert("content".into(), content);
    match role {
        "assistant" => {
            if let Some(tc) = m.remove("tool_calls").filter(|v| is_set(Some(v))) {
                out.insert("tool_calls".into(), tc);
            }
            if is_set(m.get("function_call")) {
                return Err(ProxyError::unsupported(
                    "the legacy 'function_call' message field (use 'tool_calls')",
                    NAME,
                )
                .with_param(format!("{}.function_call", param())));
            }
        }
        "tool" => {
            for key in ["tool_call_id", "name"] {
                if let Some(v) = m.remove(key).filter(|v| v.is_string()) {
                    out.insert(key.into(), v);
                }
            }
        }
        _ => {}
    }
    Ok(Value::Object(out))
}

/// OpenAI content (string, null or parts) → a string for text models, a part list for
/// multimodal ones. Images go as they are (a public URL or a base64 data URL, both of which
/// DashScope takes).
fn convert_content(
    content: impl Into<Option<Value>>,
    multimodal: bool,
    model: &str,
    i: usize,
) -> Result<Value, ProxyError> {
    let content = content.into();
    // Only errors name the message; no formatting on the way through.
    let param = format_args!("messages[{i}]");
    let parts = match content {
        None | Some(Value::Null) => {
            return Ok(if multimodal {
                json!([{ "text": "" }])
            } else {
                Value::String(String::new())
            })
        }
        Some(Value::String(s)) => {
            return Ok(if multimodal {
                json!([{ "text": s }])
            } else {
                Value::String(s)
            })
        }
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(ProxyError::bad_request(format!(
                "{param}.content must be a string or an array of parts"
            ))
            .with_param(format!("{param}.content")))
        }
    };
    let mut text = String::new();
    let mut list = Vec::with_capacity(parts.len());
    for part in parts {
        let kind = part.get("type").and_then(Value::as_str).unwrap_or("text");
        match kind {
            "text" | "refusal" => {
                let t = part.get(kind).and_then(Value::as_str).ok_or_else(|| {
                    ProxyError::bad_request(format!("{param}: a '{kind}' part needs '{kind}'"))
                        .with_param(format!("{param}.content"))
                })?;
                if multimodal {
                    list.push(json!({ "text": t }));
                } else {
                    text.push_str(t);
                }
            }
            "image_url" => {
                if !multimodal {
                    return Err(ProxyError::unsupported(
                        &format!(
                            "image input for the text model '{model}' (map it to a qwen-vl model)"
                        ),
                        NAME,
                    )
                    .with_param(format!("{param}.content")));
                }
                let url = match part.get("image_url") {
                    Some(Value::String(u)) => Some(u.as_str()),
                    Some(o) => o.get("url").and_then(Value::as_str),
                    None => None,
                }
                .ok_or_else(|| {
                    ProxyError::bad_request(format!("{param}: an image_url part needs a url"))
                        .with_param(format!("{param}.content"))
                })?;
                list.push(json!({ "image": url }));
            }
            "input_audio" => {
                return Err(ProxyError::unsupported("audio input", NAME)
                    .with_param(format!("{param}.content")))
            }
            "file" => {
                return Err(ProxyError::unsupported(
                    "file content parts (configure qwenFileIds)",
                    NAME,
                )
                .with_param(format!("{param}.content")))
            }
            other => {
                return Err(
                    ProxyError::unsupported(&format!("content part type '{other}'"), NAME)
                        .with_param(format!("{param}.content")),
                )
            }
        }
    }
    Ok(if multimodal {
        Value::Array(list)
    } else {
        Value::String(text)
    })
}

pub(super) fn translate_embeddings(
    req: &RequestInfo<'_>,
    body: &mut Value,
) -> Result<(), ProxyError> {
    let obj = body_object(body)?;
    let texts: Vec<Value> = match obj.remove("input") {
        Some(Value::String(s)) => vec![Value::String(s)],
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(
                    ProxyError::bad_request("'input' must not be empty").with_param("input")
                );
            }
            if !items.iter().all(Value::is_string) {
                return Err(ProxyError::unsupported("token-array embedding input", NAME)
                    .with_param("input"));
            }
            items
        }
        _ => {
            return Err(
                ProxyError::bad_request("'input' must be a string or an array").with_param("input"),
            )
        }
    };
    // `encoding_format` is the core's: it checks it, and the writer encodes DashScope's floats as
    // the client asked.
    let mut params = Map::new();
    if let Some(d) = take(obj, "dimensions") {
        params.insert("dimension".into(), d);
    }
    let mut out = json!({
        "model": req.model,
        "input": {"texts": texts},
    });
    if !params.is_empty() {
        out["parameters"] = Value::Object(params);
    }
    *body = out;
    Ok(())
}

// ---- Request fast path (`openai::chat_read`) ------------------------------------------------
// The same translation as `translate_chat`, from the typed reading straight to bytes (tools and
// tool calls are written back as sent, DashScope's own parameters as their canonical bytes);
// whatever `translate_chat` would refuse answers `None` and takes `translate_chat`, the
// reference (the property test in `openai/chat_read_tests.rs` compares the two).

use crate::custom_settings::{CustomSetting, SettingsProtocol};
use crate::json_write::{write_array, write_str, write_u64, write_value};
use crate::openai::chat_read::{
    write_number, ChatRequest, Content, Obj, ObjectOut, Stop, ToolCall, EXTRA_KEYS,
};
use std::borrow::Cow;

// Indices into `EXTRA_KEYS` (a test checks them).
const X_REPETITION_PENALTY: usize = 0;
const X_ENABLE_THINKING: usize = 1;
const X_THINKING_BUDGET: usize = 2;
const X_ENABLE_SEARCH: usize = 3;

/// `PARAMS`' `Keep` rows in row order, the order `fast_chat` writes them in (a test checks it).
#[cfg(test)]
const KEEP_ORDER: [&str; 17] = [
    "temperature",
    "top_k",
    "seed",
    "stop",
    "presence_penalty",
    "repetition_penalty",
    "n",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "enable_thinking",
    "thinking_budget",
    "enable_search",
    "search_options",
    "vl_high_resolution_images",
    "translation_options",
];

/// A message's content as `convert_content` makes it: one string (text models; a multimodal
/// model gets it as a single text part), or a multimodal model's parts.
enum FastContent<'r> {
    Text(Cow<'r, str>),
    /// (`"text"` or `"image"`, its string) per part.
    Parts(Vec<(&'static str, &'r str)>),
}

/// One message as `convert_message` writes it.
struct FastMessage<'r> {
    role: &'static str,
    content: FastContent<'r>,
    tool_call_id: Option<&'r str>,
    name: Option<&'r str>,
    /// An assistant's tool calls (empty when none or an empty list, which is left out).
    calls: &'r [Obj<ToolCall<'r>>],
}

/// The DashScope body and path for a chat request the typed reader took (customSettings
/// applied); `None` when `translate_chat` must decide.
pub(super) fn fast_chat(
    req: &RequestInfo<'_>,
    settings: &Settings,
    chat: &ChatRequest<'_>,
    custom: &[CustomSetting],
) -> Option<(Vec<u8>, &'static str)> {
    // Refused unless neutral (`PARAMS`): `frequency_penalty: 0`, `logprobs: false`.
    if chat.logprobs == Some(true)
        || chat
            .frequency_penalty
            .as_ref()
            .is_some_and(|n| n.as_f64() != Some(0.0))
    {
        return None;
    }
    let multimodal = is_multimodal(req.model);
    // `reasoning_effort` → (enable_thinking, thinking_budget), as `apply_reasoning_effort`.
    let thinking = match &chat.reasoning_effort {
        None => None,
        Some(e) if e.0 == "none" => Some((false, None)),
        Some(e) => Some((true, Some(thinking_budget(&e.0)?))),
    };
    let mut messages: Vec<FastMessage<'_>> = Vec::with_capacity(chat.messages.as_ref()?.len());
    for m in chat.messages.as_ref()? {
        messages.push(fast_message(&m.0, multimodal)?);
    }
    // `qwenFileIds`' system message goes after the leading system messages, as in
    // `translate_chat`.
    let files = (!settings.file_ids.is_empty()).then(|| {
        let at = messages
            .iter()
            .position(|m| m.role != "system")
            .unwrap_or(messages.len());
        let ids: Vec<String> = settings
            .file_ids
            .iter()
            .map(|id| format!("fileid://{id}"))
            .collect();
        (at, ids.join(","))
    });

    let mut out = ObjectOut::with_capacity(64 + req.model.len());
    out.field("model", |b| write_str(b, req.model));
    out.field("input", |b| {
        b.extend_from_slice(br#"{"messages":["#);
        let mut first = true;
        let mut sep = |b: &mut Vec<u8>| {
            if !std::mem::take(&mut first) {
                b.push(b',');
            }
        };
        for (i, m) in messages.iter().enumerate() {
            if let Some((at, ids)) = &files {
                if *at == i {
                    sep(b);
                    write_file_message(b, ids, multimodal);
                }
            }
            sep(b);
            write_message(b, m, multimodal);
        }
        if let Some((at, ids)) = &files {
            if *at == messages.len() {
                sep(b);
                write_file_message(b, ids, multimodal);
            }
        }
        b.extend_from_slice(b"]}");
    });
    let mut params = ObjectOut::with_capacity(128);
    params.field("result_format", |b| b.extend_from_slice(b"\"message\""));
    if req.stream {
        params.field("incremental_output", |b| b.extend_from_slice(b"true"));
    }
    let extra = |i: usize| chat.extra(i);
    // The client's `enable_search` replaces the configured one in its place.
    if settings.enable_search {
        params.field("enable_search", |b| match extra(X_ENABLE_SEARCH) {
            Some(v) => b.extend_from_slice(&v.bytes),
            None => b.extend_from_slice(b"true"),
        });
    }
    // `PARAMS`' `Keep` rows, in row order (`KEEP_ORDER`), as the client sent them.
    for (key, n) in [
        ("temperature", &chat.temperature),
        ("top_k", &chat.top_k),
        ("seed", &chat.seed),
    ] {
        if let Some(n) = n {
            params.field(key, |b| write_number(b, n));
        }
    }
    if let Some(stop) = &chat.stop {
        params.field("stop", |b| match stop {
            Stop::One(s) => write_str(b, s),
            Stop::Many(items) => {
                write_array(b, items.iter(), |b, s| write_str(b, s));
            }
        });
    }
    if let Some(n) = &chat.presence_penalty {
        params.field("presence_penalty", |b| write_number(b, n));
    }
    if let Some(v) = extra(X_REPETITION_PENALTY) {
        params.field(EXTRA_KEYS[X_REPETITION_PENALTY], |b| {
            b.extend_from_slice(&v.bytes)
        });
    }
    if let Some(n) = &chat.n {
        params.field("n", |b| write_number(b, n));
    }
    if let Some(v) = &chat.response_format {
        params.field("response_format", |b| write_value(b, v));
    }
    if let Some(tools) = &chat.tools {
        params.field("tools", |b| {
            write_array(b, tools.iter(), |b, t| t.0.write_as_sent(b));
        });
    }
    if let Some(v) = &chat.tool_choice {
        params.field("tool_choice", |b| write_value(b, v));
    }
    if let Some(v) = chat.parallel_tool_calls {
        params.field("parallel_tool_calls", |b| {
            b.extend_from_slice(if v { b"true" } else { b"false" })
        });
    }
    if chat.has_extras() {
        // The rows after `parallel_tool_calls` are `EXTRA_KEYS[1..]`, in order.
        for (i, key) in EXTRA_KEYS.iter().enumerate().skip(1) {
            if i == X_ENABLE_SEARCH && settings.enable_search {
                continue;
            }
            if let Some(v) = extra(i) {
                params.field(key, |b| b.extend_from_slice(&v.bytes));
            }
        }
    }
    // After the rows, and only where the client set none (`apply_reasoning_effort`).
    if let Some((enable, budget)) = thinking {
        if extra(X_ENABLE_THINKING).is_none() {
            params.field("enable_thinking", |b| {
                b.extend_from_slice(if enable { b"true" } else { b"false" })
            });
        }
        if let Some(budget) = budget.filter(|_| extra(X_THINKING_BUDGET).is_none()) {
            params.field("thinking_budget", |b| write_u64(b, budget));
        }
    }
    if let Some(n) = &chat.top_p {
        let p = n.as_f64()?.clamp(TOP_P_MIN, TOP_P_MAX);
        params.field("top_p", |b| write_value(b, &json!(p)));
    }
    if let Some(n) = chat
        .max_tokens
        .as_ref()
        .or(chat.max_completion_tokens.as_ref())
    {
        params.field("max_tokens", |b| write_number(b, n));
    }
    out.object("parameters", params);
    let path = if multimodal {
        MULTIMODAL_PATH
    } else {
        TEXT_PATH
    };
    Some((out.finish(custom, SettingsProtocol::Qwen), path))
}

/// One message as `convert_message` would convert it; `None` where it refuses (or where the
/// typed reading holds something it treats otherwise).
fn fast_message<'r>(
    m: &'r crate::openai::chat_read::Message<'r>,
    multimodal: bool,
) -> Option<FastMessage<'r>> {
    let role = match m.role.as_ref().map(|r| &*r.0)? {
        "developer" | "system" => "system",
        "user" => "user",
        "assistant" => "assistant",
        "tool" => "tool",
        _ => return None,
    };
    // Only an assistant's tool calls are kept (an empty list is left out); `translate_chat`
    // drops them elsewhere, which is left to it.
    let calls = match &m.tool_calls {
        None => &[][..],
        Some(calls) if role == "assistant" => calls.as_slice(),
        Some(_) => return None,
    };
    let content = match &m.content {
        None => FastContent::Text(Cow::Borrowed("")),
        Some(Content::Text(s)) => FastContent::Text(Cow::Borrowed(&**s)),
        Some(Content::Parts(parts)) if multimodal => {
            let mut list = Vec::with_capacity(parts.len());
            for p in parts {
                let p = &p.0;
                let part = match p.kind.as_ref().map_or("text", |k| &*k.0) {
                    "text" => ("text", &*p.text.as_ref()?.0),
                    "refusal" => ("text", &*p.refusal.as_ref()?.0),
                    "image_url" => ("image", p.image_url.as_ref()?.url.as_deref()?),
                    _ => return None,
                };
                list.push(part);
            }
            FastContent::Parts(list)
        }
        Some(Content::Parts(parts)) => {
            let mut text = String::new();
            for p in parts {
                let p = &p.0;
                let t = match p.kind.as_ref().map_or("text", |k| &*k.0) {
                    "text" => p.text.as_ref(),
                    "refusal" => p.refusal.as_ref(),
                    _ => None,
                }?;
                text.push_str(&t.0);
            }
            FastContent::Text(Cow::Owned(text))
        }
    };
    let (tool_call_id, name) = match role {
        "tool" => (
            m.tool_call_id.as_ref().map(|s| &*s.0),
            m.name.as_ref().map(|s| &*s.0),
        ),
        _ => (None, None),
    };
    Some(FastMessage {
        role,
        content,
        tool_call_id,
        name,
        calls,
    })
}

fn write_message(b: &mut Vec<u8>, m: &FastMessage<'_>, multimodal: bool) {
    b.extend_from_slice(br#"{"role":"#);
    write_str(b, m.role);
    b.extend_from_slice(br#","content":"#);
    match &m.content {
        FastContent::Text(s) => write_text(b, s, multimodal),
        FastContent::Parts(parts) => {
            write_array(b, parts.iter(), |b, (kind, s)| {
                b.extend_from_slice(b"{\"");
                b.extend_from_slice(kind.as_bytes());
                b.extend_from_slice(b"\":");
                write_str(b, s);
                b.push(b'}');
            });
        }
    }
    for (key, v) in [("tool_call_id", m.tool_call_id), ("name", m.name)] {
        if let Some(v) = v {
            b.extend_from_slice(b",\"");
            b.extend_from_slice(key.as_bytes());
            b.extend_from_slice(b"\":");
            write_str(b, v);
        }
    }
    if !m.calls.is_empty() {
        b.extend_from_slice(br#","tool_calls":"#);
        write_array(b, m.calls.iter(), |b, c| c.0.write_as_sent(b));
    }
    b.push(b'}');
}

/// A string content: as it is for text models, one text part for multimodal ones.
fn write_text(b: &mut Vec<u8>, s: &str, multimodal: bool) {
    if multimodal {
        b.extend_from_slice(br#"[{"text":"#);
        write_str(b, s);
        b.extend_from_slice(b"}]");
    } else {
        write_str(b, s);
    }
}

fn write_file_message(b: &mut Vec<u8>, ids: &str, multimodal: bool) {
    b.extend_from_slice(br#"{"role":"system","content":"#);
    write_text(b, ids, multimodal);
    b.push(b'}');
}

#[cfg(test)]
mod fast_order_tests {
    use super::*;

    #[test]
    fn fast_chat_writes_the_keep_rows_in_row_order() {
        let keep: Vec<&str> = PARAMS
            .0
            .iter()
            .filter(|(_, rule)| *rule == Param::Keep)
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(keep, KEEP_ORDER);
        // Where `fast_chat` writes `EXTRA_KEYS`: the first after `presence_penalty`, the rest
        // after `parallel_tool_calls`.
        assert_eq!(KEEP_ORDER[5], EXTRA_KEYS[0]);
        assert_eq!(KEEP_ORDER[11..], EXTRA_KEYS[1..]);
        assert_eq!(EXTRA_KEYS[X_REPETITION_PENALTY], "repetition_penalty");
        assert_eq!(EXTRA_KEYS[X_ENABLE_THINKING], "enable_thinking");
        assert_eq!(EXTRA_KEYS[X_THINKING_BUDGET], "thinking_budget");
        assert_eq!(EXTRA_KEYS[X_ENABLE_SEARCH], "enable_search");
    }
}
