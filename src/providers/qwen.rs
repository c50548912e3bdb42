//! qwen: OpenAI chat completions and embeddings ⇄ Alibaba Cloud DashScope's native API.
//!
//! Facts used (Alibaba Cloud Model Studio docs "DashScope API reference"
//! help.aliyun.com/en/model-studio/qwen-api-via-dashscope, "Function calling"
//! alibabacloud.com/help/en/model-studio/qwen-function-calling, "Long context (Qwen-Long)"
//! help.aliyun.com/zh/model-studio/user-guide/long-context-qwen-long, "Text embedding synchronous
//! API" alibabacloud.com/help/en/model-studio/text-embedding-synchronous-api; cross-checked with
//! the DashScope SDK docs quoted in the code corpus and `alibaba/higress` ai-proxy `qwen.go`):
//! - Host `dashscope.aliyuncs.com`, header `Authorization: Bearer <key>`.
//! - Text models: `POST /api/v1/services/aigc/text-generation/generation`; multimodal models
//!   (qwen-vl, qwen3-vl, qvq): `POST /api/v1/services/aigc/multimodal-generation/generation`,
//!   where message content is a list of `{"image": url}` / `{"text": ...}` parts (an image may
//!   be a public URL or a base64 data URL).
//! - Body `{"model", "input": {"messages": [...]}, "parameters": {...}}`. Parameters used:
//!   `result_format: "message"`, `incremental_output` (streaming), `enable_search`, `temperature`,
//!   `top_p` (clamped into (0, 1) as higress does; DashScope needs top_p > 0), `top_k`,
//!   `max_tokens`, `seed`, `stop`, `presence_penalty`, `repetition_penalty`, `n`,
//!   `response_format`, `tools` (the OpenAI function-tool array), `tool_choice`,
//!   `parallel_tool_calls`, `enable_thinking`, `thinking_budget`, `search_options`,
//!   `vl_high_resolution_images`, `translation_options`.
//! - Messages keep OpenAI's roles (`system`, `user`, `assistant` with `tool_calls`, `tool` with
//!   `tool_call_id`). qwen-long reads uploaded files from a system message whose content is
//!   `fileid://id1,fileid://id2`; the docs place it after the role-setting system message.
//! - Streaming: header `X-DashScope-SSE: enable`; SSE events `id:N`, `event:result`, a comment
//!   `:HTTP_STATUS/200`, `data:{output, usage, request_id}`. `finish_reason` is the string
//!   `"null"` until the last event; usage is cumulative on every event. With
//!   `incremental_output` each event carries only the new text; tool calls arrive as
//!   `tool_calls[{index, id, type, function{name, arguments}}]` where the first piece of a call
//!   has its id and name and later pieces only more `arguments`. Errors after the 200 arrive as
//!   `event:error` with `data:{code, message, request_id}`.
//! - Response: `output.choices[].{message{role, content, tool_calls}, finish_reason}` (or the
//!   older `output.{text, finish_reason}`); multimodal content is a list of `{text}` parts;
//!   `usage.{input_tokens, output_tokens, total_tokens}` (no total for image input);
//!   `request_id`.
//! - Embeddings: `POST /api/v1/services/embeddings/text-embedding/text-embedding` with
//!   `{"model", "input": {"texts": [...]}, "parameters": {"dimension"?}}`; response
//!   `output.embeddings[].{embedding, text_index}`, `usage.total_tokens`.
//! - Errors: `{"code", "message", "request_id"}` with the HTTP status (e.g. 401 InvalidApiKey,
//!   429 Throttling.RateQuota, 400 InvalidParameter / DataInspectionFailed).

use super::{Api, Provider, ProviderType, RequestInfo, ResponseTranslator, Upstream};
use crate::config::ProviderConfig;
use crate::custom_settings::SettingsProtocol;
use crate::error::{error_type_for_status, ConfigError, ProxyError};
use crate::openai::{self, Delta, StreamMeta};
use crate::sse::{self, SseEvent};
use crate::usage::Usage;
use serde_json::{json, Map, Value};

const NAME: &str = "qwen";
const HOST: &str = "dashscope.aliyuncs.com";
const TEXT_PATH: &str = "/api/v1/services/aigc/text-generation/generation";
const MULTIMODAL_PATH: &str = "/api/v1/services/aigc/multimodal-generation/generation";
const EMBEDDING_PATH: &str = "/api/v1/services/embeddings/text-embedding/text-embedding";
const TOP_P_MIN: f64 = 0.000_001;
const TOP_P_MAX: f64 = 0.999_999;

/// OpenAI request fields copied into `parameters` unchanged (DashScope names them the same).
const PASS_PARAMS: &[&str] = &[
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

/// qwen's own configuration fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `qwenEnableSearch`: DashScope's built-in internet search.
    pub enable_search: bool,
    /// `qwenFileIds`: files uploaded to DashScope, referenced as `fileid://` system messages.
    pub file_ids: Vec<String>,
}

impl Settings {
    pub fn parse(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let f = config.fields();
        let s = Self {
            enable_search: f.bool("qwenEnableSearch")?.unwrap_or(false),
            file_ids: f.str_array("qwenFileIds")?,
        };
        config.forbid_context_with("qwenFileIds", !s.file_ids.is_empty())?;
        config.require_token()?;
        Ok(s)
    }
}

pub fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(Qwen {
        settings: Settings::parse(config)?,
    }))
}

struct Qwen {
    settings: Settings,
}

/// Models served by the multimodal-generation API: the qwen-vl family (the seed's rule),
/// plus the newer `qwen3-vl-*` / `qwen2.5-vl-*` names and QVQ.
fn is_multimodal(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    m.starts_with("qwen-vl") || m.starts_with("qvq") || m.contains("-vl-") || m.ends_with("-vl")
}

impl Provider for Qwen {
    fn kind(&self) -> ProviderType {
        ProviderType::Qwen
    }

    fn settings_protocol(&self, _req: &RequestInfo<'_>) -> SettingsProtocol {
        SettingsProtocol::Qwen
    }

    fn translate_request(
        &self,
        req: &RequestInfo<'_>,
        body: &mut Value,
    ) -> Result<Upstream, ProxyError> {
        let up = match req.api {
            Api::ChatCompletions => {
                let path = translate_chat(req, &self.settings, body)?;
                let up = Upstream::new(HOST, path).bearer(req.token);
                if req.stream {
                    up.header("x-dashscope-sse", "enable")
                        .header("accept", "text/event-stream")
                } else {
                    up
                }
            }
            Api::Embeddings => {
                translate_embeddings(req, body)?;
                Upstream::new(HOST, EMBEDDING_PATH).bearer(req.token)
            }
        };
        Ok(up)
    }

    fn passthrough_target(
        &self,
        _config: &ProviderConfig,
        token: &str,
        path: &str,
    ) -> Result<Upstream, ProxyError> {
        Ok(Upstream::new(HOST, path).bearer(token))
    }

    fn response_translator(&self, req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        Box::new(QwenTranslator {
            api: req.api,
            model: req.model.to_string(),
            include_usage: req.include_usage,
            meta: StreamMeta::new(req.model),
            id_from_upstream: false,
            roles_sent: Vec::new(),
            tools_seen: Vec::new(),
            usage: None,
            failed: false,
            done: false,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

fn is_set(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// OpenAI features DashScope cannot express: a 400 naming them instead of dropping them.
fn reject_unsupported(obj: &Map<String, Value>) -> Result<(), ProxyError> {
    if obj
        .get("frequency_penalty")
        .and_then(Value::as_f64)
        .is_some_and(|f| f != 0.0)
    {
        return Err(
            ProxyError::unsupported("frequency_penalty", NAME).with_param("frequency_penalty")
        );
    }
    let checks: &[(&str, &str)] = &[
        ("logit_bias", "logit_bias"),
        ("logprobs", "logprobs"),
        ("top_logprobs", "logprobs"),
        ("functions", "the legacy 'functions' field (use 'tools')"),
        (
            "function_call",
            "the legacy 'function_call' field (use 'tool_choice')",
        ),
        ("audio", "audio output"),
        ("prediction", "predicted outputs"),
        (
            "web_search_options",
            "web_search_options (configure qwenEnableSearch)",
        ),
    ];
    for (field, feature) in checks {
        if is_set(obj.get(*field)) {
            return Err(ProxyError::unsupported(feature, NAME).with_param(*field));
        }
    }
    if let Some(Value::Array(mods)) = obj.get("modalities") {
        if mods.iter().any(|m| m.as_str() != Some("text")) {
            return Err(ProxyError::unsupported("non-text output modalities", NAME)
                .with_param("modalities"));
        }
    }
    Ok(())
}

/// Rewrites an OpenAI chat body into DashScope's; returns the path.
fn translate_chat(
    req: &RequestInfo<'_>,
    settings: &Settings,
    body: &mut Value,
) -> Result<&'static str, ProxyError> {
    let obj = body
        .as_object_mut()
        .ok_or_else(|| ProxyError::bad_request("request body must be a JSON object"))?;
    reject_unsupported(obj)?;
    let multimodal = is_multimodal(req.model);
    let messages = match obj.remove("messages") {
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

    let mut params = Map::new();
    params.insert("result_format".into(), "message".into());
    if req.stream {
        params.insert("incremental_output".into(), true.into());
    }
    if settings.enable_search {
        params.insert("enable_search".into(), true.into());
    }
    for key in PASS_PARAMS {
        if let Some(v) = obj.remove(*key).filter(|v| !v.is_null()) {
            params.insert((*key).to_string(), v);
        }
    }
    if let Some(v) = obj.remove("top_p").filter(|v| !v.is_null()) {
        let p = v.as_f64().ok_or_else(|| {
            ProxyError::bad_request("'top_p' must be a number").with_param("top_p")
        })?;
        params.insert("top_p".into(), json!(p.clamp(TOP_P_MIN, TOP_P_MAX)));
    }
    let max_tokens = obj
        .remove("max_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| obj.remove("max_completion_tokens").filter(|v| !v.is_null()));
    if let Some(v) = max_tokens {
        params.insert("max_tokens".into(), v);
    }
    *body = json!({
        "model": req.model,
        "input": {"messages": out},
        "parameters": params,
    });
    Ok(if multimodal {
        MULTIMODAL_PATH
    } else {
        TEXT_PATH
    })
}

fn convert_message(m: Value, i: usize, multimodal: bool, model: &str) -> Result<Value, ProxyError> {
    let param = || format!("messages[{i}]");
    let Value::Object(mut m) = m else {
        return Err(
            ProxyError::bad_request(format!("{} must be an object", param())).with_param(param()),
        );
    };
    let role: &'static str = match m.get("role").and_then(Value::as_str) {
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
    let content = convert_content(m.remove("content"), multimodal, model, &param())?;
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
/// multimodal ones.
fn convert_content(
    content: Option<Value>,
    multimodal: bool,
    model: &str,
    param: &str,
) -> Result<Value, ProxyError> {
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

fn translate_embeddings(req: &RequestInfo<'_>, body: &mut Value) -> Result<(), ProxyError> {
    let obj = body
        .as_object_mut()
        .ok_or_else(|| ProxyError::bad_request("request body must be a JSON object"))?;
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
    match obj.get("encoding_format").and_then(Value::as_str) {
        // base64 is what the OpenAI SDKs ask for by default; they accept float lists too.
        None | Some("float") | Some("base64") => {}
        Some(other) => {
            return Err(ProxyError::bad_request(format!(
                "unknown encoding_format '{other}' (expected 'float' or 'base64')"
            ))
            .with_param("encoding_format"))
        }
    }
    let mut params = Map::new();
    if let Some(d) = obj.remove("dimensions").filter(|v| !v.is_null()) {
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

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// A DashScope error object (`{"code", "message", "request_id"}`) as an OpenAI error. `status`
/// 0 means unknown (errors inside a stream): it is inferred from the code.
fn dashscope_error(status: u16, obj: &Map<String, Value>) -> ProxyError {
    let code = obj.get("code").and_then(Value::as_str).unwrap_or("");
    let status = if status != 0 {
        status
    } else if code == "InvalidApiKey" {
        401
    } else if code.starts_with("Throttling") {
        429
    } else if code.starts_with("AccessDenied") || code == "Arrearage" {
        403
    } else if code.starts_with("Invalid") || code == "DataInspectionFailed" {
        400
    } else {
        500
    };
    let msg = obj
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .unwrap_or("upstream error");
    let mut e = ProxyError::new(status, error_type_for_status(status), msg);
    if !code.is_empty() {
        e.code = Some(code.to_string());
    }
    e
}

/// A body that carries an error code instead of output.
fn error_in_body(obj: &Map<String, Value>) -> Option<ProxyError> {
    let has_code = obj
        .get("code")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty());
    (has_code && !obj.contains_key("output")).then(|| dashscope_error(0, obj))
}

fn usage_of(v: Option<&Value>) -> Option<Usage> {
    let u = v?.as_object()?;
    let get = |k: &str| u.get(k).and_then(Value::as_u64);
    let (i, o, t) = (
        get("input_tokens"),
        get("output_tokens"),
        get("total_tokens"),
    );
    if i.is_none() && o.is_none() && t.is_none() {
        return None;
    }
    Some(Usage::new(i.unwrap_or(0), o.unwrap_or(0), t))
}

/// Message content as text: a string, or the concatenated `text` of a part list (multimodal).
fn content_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

fn new_call_id() -> String {
    use rand::Rng;
    format!(
        "call_{:024x}",
        rand::thread_rng().gen::<u128>() & ((1u128 << 96) - 1)
    )
}

fn arguments_of(f: Option<&Value>) -> Option<String> {
    match f?.get("arguments")? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Whole tool calls of a buffered message in OpenAI's shape.
fn tool_calls_of(v: Option<&Value>) -> Option<Value> {
    let calls = v?.as_array().filter(|a| !a.is_empty())?;
    let out: Vec<Value> = calls
        .iter()
        .map(|tc| {
            let id = tc
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(new_call_id, str::to_string);
            let f = tc.get("function");
            let name = f
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            json!({
                "id": id,
                "type": "function",
                "function": {"name": name, "arguments": arguments_of(f).unwrap_or_default()},
            })
        })
        .collect();
    Some(Value::Array(out))
}

/// DashScope's finish reason → OpenAI's; `None` while the choice is not finished.
fn finish_reason(raw: Option<&Value>, has_tools: bool) -> Option<&'static str> {
    let r = raw?.as_str()?;
    match r {
        "" | "null" => None,
        "stop" => Some("stop"),
        "length" | "max_tokens" => Some("length"),
        "tool_calls" => Some("tool_calls"),
        "content_filter" => Some("content_filter"),
        "function_call" => Some("function_call"),
        _ if has_tools => Some("tool_calls"),
        _ => Some("stop"),
    }
}

/// Response translation. Bounded state: the stream identity, which choices have sent their
/// role, which (choice, tool-call index) pairs have started, and the last usage.
struct QwenTranslator {
    api: Api,
    model: String,
    include_usage: bool,
    meta: StreamMeta,
    id_from_upstream: bool,
    roles_sent: Vec<u32>,
    tools_seen: Vec<(u32, u64)>,
    usage: Option<Usage>,
    failed: bool,
    done: bool,
}

impl QwenTranslator {
    fn chat_body(&mut self, obj: &Map<String, Value>) -> Result<Value, ProxyError> {
        let output = obj
            .get("output")
            .and_then(Value::as_object)
            .ok_or_else(|| ProxyError::bad_upstream("upstream body has no 'output'"))?;
        let mut choices = Vec::new();
        if let Some(Value::Array(cs)) = output.get("choices") {
            for (i, c) in cs.iter().enumerate() {
                let index = c
                    .get("index")
                    .and_then(Value::as_u64)
                    .map_or(i, |n| n as usize);
                let msg = c.get("message");
                let tool_calls = tool_calls_of(msg.and_then(|m| m.get("tool_calls")));
                let mut content = content_text(msg.and_then(|m| m.get("content")));
                if tool_calls.is_some() && content.as_deref() == Some("") {
                    content = None;
                }
                let reason = finish_reason(c.get("finish_reason"), tool_calls.is_some()).unwrap_or(
                    if tool_calls.is_some() {
                        "tool_calls"
                    } else {
                        "stop"
                    },
                );
                choices.push(openai::completion_choice(
                    index,
                    openai::assistant_message(content, tool_calls),
                    reason,
                ));
            }
        } else if let Some(text) = output.get("text").and_then(Value::as_str) {
            let reason = finish_reason(output.get("finish_reason"), false).unwrap_or("stop");
            choices.push(openai::completion_choice(
                0,
                openai::assistant_message(Some(text.to_string()), None),
                reason,
            ));
        } else {
            return Err(ProxyError::bad_upstream(
                "upstream output has neither 'choices' nor 'text'",
            ));
        }
        self.usage = usage_of(obj.get("usage"));
        let id = obj
            .get("request_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map_or_else(openai::new_completion_id, str::to_string);
        Ok(openai::completion(
            id,
            openai::now_secs(),
            &self.model,
            choices,
            self.usage.as_ref(),
        ))
    }

    fn embeddings_body(&mut self, obj: &Map<String, Value>) -> Result<Value, ProxyError> {
        let items = obj
            .get("output")
            .and_then(|o| o.get("embeddings"))
            .and_then(Value::as_array)
            .ok_or_else(|| ProxyError::bad_upstream("upstream body has no 'output.embeddings'"))?;
        let mut rows: Vec<(u64, Value)> = items
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let idx = e
                    .get("text_index")
                    .and_then(Value::as_u64)
                    .unwrap_or(i as u64);
                (
                    idx,
                    e.get("embedding")
                        .cloned()
                        .unwrap_or(Value::Array(Vec::new())),
                )
            })
            .collect();
        rows.sort_by_key(|(i, _)| *i);
        let total = obj
            .get("usage")
            .and_then(|u| u.get("total_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let usage = Usage::new(total, 0, Some(total));
        self.usage = Some(usage);
        Ok(openai::embedding_list(
            &self.model,
            rows.into_iter().map(|(_, v)| v).collect(),
            &usage,
        ))
    }

    fn role_delta(&mut self, index: u32) -> Option<&'static str> {
        if self.roles_sent.contains(&index) {
            None
        } else {
            self.roles_sent.push(index);
            Some("assistant")
        }
    }

    /// The OpenAI tool-call deltas for one event's `tool_calls` of choice `choice`.
    fn tool_deltas(&mut self, choice: u32, calls: Option<&Value>) -> Vec<Value> {
        let Some(calls) = calls.and_then(Value::as_array) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (pos, tc) in calls.iter().enumerate() {
            let idx = tc
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(pos as u64);
            let f = tc.get("function");
            let name = f
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            let args = arguments_of(f).unwrap_or_default();
            if !self.tools_seen.contains(&(choice, idx)) {
                self.tools_seen.push((choice, idx));
                let id = tc
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map_or_else(new_call_id, str::to_string);
                out.push(json!({
                    "index": idx,
                    "id": id,
                    "type": "function",
                    "function": {"name": name.unwrap_or(""), "arguments": args},
                }));
            } else if name.is_some() || !args.is_empty() {
                let mut func = Map::new();
                if let Some(n) = name {
                    func.insert("name".into(), n.into());
                }
                func.insert("arguments".into(), args.into());
                out.push(json!({"index": idx, "function": func}));
            }
        }
        out
    }

    fn emit_choice(
        &mut self,
        index: u32,
        msg: Option<&Value>,
        raw_finish: Option<&Value>,
        out: &mut Vec<u8>,
    ) {
        let text = content_text(msg.and_then(|m| m.get("content"))).unwrap_or_default();
        let tools = self.tool_deltas(index, msg.and_then(|m| m.get("tool_calls")));
        let has_tools = !tools.is_empty() || self.tools_seen.iter().any(|(c, _)| *c == index);
        if !text.is_empty() || !tools.is_empty() {
            let tools = (!tools.is_empty()).then(|| Value::Array(tools));
            let delta = Delta {
                role: self.role_delta(index),
                content: (!text.is_empty()).then_some(text.as_str()),
                tool_calls: tools.as_ref(),
            };
            self.meta.write_chunk(out, index, &delta, None);
        }
        if let Some(reason) = finish_reason(raw_finish, has_tools) {
            let delta = Delta {
                role: self.role_delta(index),
                ..Default::default()
            };
            self.meta.write_chunk(out, index, &delta, Some(reason));
        }
    }
}

impl ResponseTranslator for QwenTranslator {
    fn legacy_on_event(
        &mut self,
        event: SseEvent<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), ProxyError> {
        let data = event.data.trim_ascii();
        if self.done || data.is_empty() || data == b"[DONE]" {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(data).map_err(|e| {
            ProxyError::bad_upstream(format!("upstream stream event is not JSON: {e}"))
        })?;
        let obj = v.as_object().ok_or_else(|| {
            ProxyError::bad_upstream("upstream stream event is not a JSON object")
        })?;
        let error = if event.event == "error" {
            Some(dashscope_error(0, obj))
        } else {
            error_in_body(obj)
        };
        if let Some(err) = error {
            openai::write_stream_error(out, &err);
            self.failed = true;
            self.done = true;
            return Ok(());
        }
        if !self.id_from_upstream {
            if let Some(id) = obj
                .get("request_id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                self.meta.id = id.to_string();
                self.id_from_upstream = true;
            }
        }
        if let Some(u) = usage_of(obj.get("usage")) {
            self.usage = Some(u);
        }
        let Some(output) = obj.get("output") else {
            return Ok(());
        };
        if let Some(Value::Array(choices)) = output.get("choices") {
            for (i, c) in choices.iter().enumerate() {
                let index = c
                    .get("index")
                    .and_then(Value::as_u64)
                    .map_or(i as u32, |n| n as u32);
                self.emit_choice(index, c.get("message"), c.get("finish_reason"), out);
            }
        } else if output.get("text").is_some() {
            // The older `output.text` format: the output object itself carries content/finish.
            let msg = json!({ "content": output.get("text").cloned().unwrap_or(Value::Null) });
            self.emit_choice(0, Some(&msg), output.get("finish_reason"), out);
        }
        Ok(())
    }

    fn legacy_on_stream_end(&mut self, out: &mut Vec<u8>) -> Result<(), ProxyError> {
        if self.include_usage && !self.failed {
            self.meta
                .write_usage_chunk(out, &self.usage.unwrap_or_default());
        }
        self.done = true;
        sse::write_done(out);
        Ok(())
    }

    fn legacy_on_body(&mut self, body: &[u8], out: &mut Vec<u8>) -> Result<(), ProxyError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ProxyError::bad_upstream(format!("upstream body is not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ProxyError::bad_upstream("upstream body is not a JSON object"))?;
        if let Some(err) = error_in_body(obj) {
            return Err(err);
        }
        let result = match self.api {
            Api::ChatCompletions => self.chat_body(obj)?,
            Api::Embeddings => self.embeddings_body(obj)?,
        };
        serde_json::to_writer(&mut *out, &result).expect("serialising to a Vec cannot fail");
        Ok(())
    }

    fn on_error(&mut self, status: u16, body: &[u8]) -> ProxyError {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(obj)) if obj.get("message").is_some_and(Value::is_string) => {
                dashscope_error(status, &obj)
            }
            _ => openai::upstream_error(status, body),
        }
    }

    fn legacy_usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use crate::exchange::{Exchange, RequestAction, ResponseMode};
    use crate::testutil::{self, header, respond, upstream_json};
    use serde_json::{json, Value};
    use std::sync::Arc;

    const TOKEN: &str = "sk-qwen-secret-token";

    fn cfg(extra: &str) -> Arc<crate::exchange::Config> {
        testutil::config(&format!(
            r#"{{"provider": {{"type": "qwen", "apiTokens": ["{TOKEN}"],
                "modelMapping": {{"gpt-3": "qwen-turbo", "gpt-4o": "qwen-vl-plus",
                                  "text-embedding-v1": "text-embedding-v1", "*": "qwen-max"}}{extra}}}}}"#
        ))
    }

    fn chat(
        cfg: &Arc<crate::exchange::Config>,
        body: Value,
    ) -> (Exchange, crate::exchange::UpstreamRequest) {
        testutil::forward(cfg, "/v1/chat/completions", &body.to_string())
    }

    fn local_error(cfg: &Arc<crate::exchange::Config>, path: &str, body: Value) -> (u16, Value) {
        let mut ex = Exchange::new(Arc::clone(cfg));
        match ex
            .on_request(
                "POST",
                path,
                &[("content-type", "application/json")],
                body.to_string().as_bytes(),
            )
            .unwrap()
        {
            RequestAction::LocalReply(r) => {
                let v: Value = serde_json::from_slice(&r.body).unwrap();
                testutil::validate_error(&v);
                (r.status, v)
            }
            other => panic!("expected a local reply, got {other:?}"),
        }
    }

    fn json_of(out: &[u8]) -> Value {
        serde_json::from_slice(out)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
    }

    // Mirrors the seed README's Qwen request example and the DashScope API reference's
    // result_format=message response (help.aliyun.com/en/model-studio/qwen-api-via-dashscope).
    const TEXT_RESPONSE: &str = r#"{
        "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant",
            "content": "I am Qwen, an AI assistant developed by Alibaba Cloud."}}]},
        "usage": {"total_tokens": 57, "output_tokens": 33, "input_tokens": 24},
        "request_id": "c2518bd3-0f46-97d1-be34-bb5777cb3108"}"#;

    #[test]
    fn chat_text_buffered() {
        let c = cfg("");
        let (mut ex, up) = chat(
            &c,
            json!({"model": "gpt-3", "temperature": 0.3, "top_p": 1.0,
            "max_completion_tokens": 64, "seed": 7, "stop": ["END"], "user": "u-1",
            "messages": [{"role": "user", "content": "Hello, who are you?"}]}),
        );
        assert_eq!(up.authority, "dashscope.aliyuncs.com");
        assert_eq!(up.path, "/api/v1/services/aigc/text-generation/generation");
        assert_eq!(
            header(&up, "authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(header(&up, "x-dashscope-sse"), None);
        assert!(up.remove_headers.contains(&"authorization"));
        let b = upstream_json(&up);
        assert_eq!(
            b,
            json!({"model": "qwen-turbo",
                   "input": {"messages": [{"role": "user", "content": "Hello, who are you?"}]},
                   "parameters": {"result_format": "message", "temperature": 0.3, "seed": 7,
                                  "stop": ["END"], "top_p": 0.999999, "max_tokens": 64}})
        );
        let (status, out, mode) =
            respond(&mut ex, 200, "application/json", TEXT_RESPONSE.as_bytes());
        assert_eq!((status, mode), (200, ResponseMode::Buffer));
        let v = json_of(&out);
        testutil::validate_chat_completion(&v);
        assert_eq!(v["id"], "c2518bd3-0f46-97d1-be34-bb5777cb3108");
        assert_eq!(v["model"], "qwen-turbo");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "I am Qwen, an AI assistant developed by Alibaba Cloud."
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 24, "completion_tokens": 33, "total_tokens": 57})
        );
        let u = ex.usage().unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (24, 33, 57)
        );
    }

    #[test]
    fn multi_turn_with_system_and_developer() {
        let c = cfg("");
        let (_, up) = chat(
            &c,
            json!({"model": "gpt-3", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in "}, {"type": "text", "text": "English."}]},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Who are you?"}]}),
        );
        let b = upstream_json(&up);
        assert_eq!(
            b["input"]["messages"],
            json!([{"role": "system", "content": "Be brief."},
                   {"role": "system", "content": "Answer in English."},
                   {"role": "user", "content": "Hi"},
                   {"role": "assistant", "content": "Hello!"},
                   {"role": "user", "content": "Who are you?"}])
        );
    }

    // Mirrors the seed README's multimodal example (qwen-vl-plus) and DashScope's
    // multimodal-generation response, whose content is a list of {"text"} parts and whose usage
    // has no total for image input (help.aliyun.com/zh/model-studio/qwen-vl-api).
    #[test]
    fn images_use_the_multimodal_api() {
        let c = cfg("");
        let (mut ex, up) = chat(
            &c,
            json!({"model": "gpt-4o", "temperature": 0.3, "messages": [
            {"role": "system", "content": "You describe photos."},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://dashscope.oss-cn-beijing.aliyuncs.com/images/dog_and_girl.jpeg"}},
                {"type": "text", "text": "Where is this picture from?"}]}]}),
        );
        assert_eq!(
            up.path,
            "/api/v1/services/aigc/multimodal-generation/generation"
        );
        let b = upstream_json(&up);
        assert_eq!(b["model"], "qwen-vl-plus");
        assert_eq!(
            b["input"]["messages"],
            json!([{"role": "system", "content": [{"text": "You describe photos."}]},
                   {"role": "user", "content": [
                       {"image": "https://dashscope.oss-cn-beijing.aliyuncs.com/images/dog_and_girl.jpeg"},
                       {"text": "Where is this picture from?"}]}])
        );
        let resp = br#"{"output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant",
            "content": [{"text": "This photo depicts a woman and a dog "}, {"text": "on a beach."}]}}]},
            "usage": {"output_tokens": 78, "input_tokens": 1279, "image_tokens": 1200},
            "request_id": "17c5955d-af9c-9f28-bbde-293a9c9a3515"}"#;
        let (_, out, _) = respond(&mut ex, 200, "application/json", resp);
        let v = json_of(&out);
        testutil::validate_chat_completion(&v);
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "This photo depicts a woman and a dog on a beach."
        );
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 1279, "completion_tokens": 78, "total_tokens": 1357})
        );
    }

    #[test]
    fn image_for_a_text_model_is_unsupported() {
        let (status, v) = local_error(
            &cfg(""),
            "/v1/chat/completions",
            json!({"model": "gpt-3", "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
        );
        assert_eq!(status, 400);
        assert_eq!(v["error"]["code"], "unsupported_feature");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("image input"));
    }

    #[test]
    fn unsupported_openai_features_are_400s() {
        for (field, value) in [
            ("frequency_penalty", json!(0.5)),
            ("logprobs", json!(true)),
            ("logit_bias", json!({"50256": -100})),
            ("functions", json!([{"name": "f"}])),
            ("audio", json!({"voice": "alloy", "format": "wav"})),
        ] {
            let mut body =
                json!({"model": "gpt-3", "messages": [{"role": "user", "content": "x"}]});
            body[field] = value;
            let (status, v) = local_error(&cfg(""), "/v1/chat/completions", body);
            assert_eq!(status, 400, "{field}");
            assert_eq!(v["error"]["code"], "unsupported_feature", "{field}");
            assert_eq!(v["error"]["param"], field);
        }
        // Harmless defaults are not rejected.
        let (_, up) = chat(
            &cfg(""),
            json!({"model": "gpt-3", "frequency_penalty": 0, "logprobs": false,
            "messages": [{"role": "user", "content": "x"}]}),
        );
        assert!(upstream_json(&up)["parameters"].get("logprobs").is_none());
    }

    const WEATHER_TOOL: &str = r#"{"type": "function", "function": {"name": "get_current_weather",
        "description": "Weather of a city", "parameters": {"type": "object",
        "properties": {"location": {"type": "string"}}, "required": ["location"]}}}"#;

    // Tool calling in DashScope's message format (alibabacloud.com/help/en/model-studio/qwen-function-calling):
    // the assistant turn carries OpenAI-shaped tool_calls and the tool turn a tool_call_id.
    #[test]
    fn tool_calls_buffered() {
        let c = cfg("");
        let tool: Value = serde_json::from_str(WEATHER_TOOL).unwrap();
        let (mut ex, up) = chat(
            &c,
            json!({"model": "gpt-3", "tools": [tool.clone()], "tool_choice": "auto",
            "parallel_tool_calls": true, "messages": [
                {"role": "user", "content": "Weather in Hangzhou?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "get_current_weather", "arguments": "{\"location\":\"Hangzhou\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 25C"},
                {"role": "user", "content": "And Shanghai?"}]}),
        );
        let b = upstream_json(&up);
        assert_eq!(b["parameters"]["tools"], json!([tool]));
        assert_eq!(b["parameters"]["tool_choice"], "auto");
        assert_eq!(b["parameters"]["parallel_tool_calls"], true);
        assert_eq!(b["input"]["messages"][1]["content"], "");
        assert_eq!(b["input"]["messages"][1]["tool_calls"][0]["id"], "call_1");
        assert_eq!(
            b["input"]["messages"][2],
            json!({"role": "tool", "content": "Sunny, 25C", "tool_call_id": "call_1"})
        );
        let resp = br#"{"output": {"choices": [{"finish_reason": "tool_calls", "message": {"role": "assistant",
            "content": "", "tool_calls": [{"index": 0, "id": "call_30817ba5d0b349ed88ddcc", "type": "function",
            "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Shanghai\"}"}}]}}]},
            "usage": {"total_tokens": 250, "output_tokens": 54, "input_tokens": 196},
            "request_id": "a75a1b22-e512-957d-891b-37db858ae738"}"#;
        let (_, out, _) = respond(&mut ex, 200, "application/json", resp);
        let v = json_of(&out);
        testutil::validate_chat_completion(&v);
        let choice = &v["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], Value::Null);
        assert_eq!(
            choice["message"]["tool_calls"],
            json!([{"id": "call_30817ba5d0b349ed88ddcc", "type": "function",
                    "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Shanghai\"}"}}])
        );
    }

    // The older result format (output.text / output.finish_reason) from the DashScope reference.
    #[test]
    fn older_text_result_format() {
        let (mut ex, _) = chat(
            &cfg(""),
            json!({"model": "gpt-3", "messages": [{"role": "user", "content": "hi"}]}),
        );
        let resp = br#"{"output": {"text": "Hello there", "finish_reason": "length"},
            "usage": {"input_tokens": 3, "output_tokens": 2}, "request_id": "r-1"}"#;
        let (_, out, _) = respond(&mut ex, 200, "application/json", resp);
        let v = json_of(&out);
        testutil::validate_chat_completion(&v);
        assert_eq!(v["choices"][0]["message"]["content"], "Hello there");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["total_tokens"], 5);
    }

    // DashScope SSE as documented for streaming output (alibabacloud.com/help/en/model-studio/stream):
    // id / event:result / :HTTP_STATUS/200 / data:{...}, "null" finish_reason until the end,
    // incremental text, cumulative usage.
    const TEXT_STREAM: &str = "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"I am\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":26,\"input_tokens\":25,\"output_tokens\":1},\"request_id\":\"5bef2386-ce2c-9a1f-8b56-a1e7a7bc3b74\"}\n\n\
id:2\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\" Qwen, \",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":29,\"input_tokens\":25,\"output_tokens\":4},\"request_id\":\"5bef2386-ce2c-9a1f-8b56-a1e7a7bc3b74\"}\n\n\
id:3\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"nice to meet you.\",\"role\":\"assistant\"},\"finish_reason\":\"stop\"}]},\"usage\":{\"total_tokens\":33,\"input_tokens\":25,\"output_tokens\":8},\"request_id\":\"5bef2386-ce2c-9a1f-8b56-a1e7a7bc3b74\"}\n\n";

    fn stream_exchange(include_usage: bool) -> Exchange {
        let (ex, up) = chat(
            &cfg(""),
            json!({"model": "gpt-3", "stream": true,
            "stream_options": {"include_usage": include_usage},
            "messages": [{"role": "user", "content": "Who are you?"}]}),
        );
        assert_eq!(header(&up, "x-dashscope-sse"), Some("enable"));
        assert_eq!(header(&up, "accept"), Some("text/event-stream"));
        let b = upstream_json(&up);
        assert_eq!(b["parameters"]["incremental_output"], true);
        assert!(b.get("stream").is_none() && b.get("stream_options").is_none());
        ex
    }

    #[test]
    fn stream_text_with_usage() {
        let mut ex = stream_exchange(true);
        let (status, out, mode) = respond(
            &mut ex,
            200,
            "text/event-stream;charset=UTF-8",
            TEXT_STREAM.as_bytes(),
        );
        assert_eq!((status, mode), (200, ResponseMode::Stream));
        let events = testutil::validate_sse_stream(&out);
        assert_eq!(
            testutil::stream_text(&events),
            "I am Qwen, nice to meet you."
        );
        assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(events[0]["id"], "5bef2386-ce2c-9a1f-8b56-a1e7a7bc3b74");
        assert!(events
            .iter()
            .all(|e| e["id"] == events[0]["id"] && e["model"] == "qwen-turbo"));
        let finishes: Vec<&Value> = events
            .iter()
            .filter_map(|e| e["choices"].get(0).map(|c| &c["finish_reason"]))
            .filter(|f| !f.is_null())
            .collect();
        assert_eq!(finishes, vec![&json!("stop")]);
        let last = events.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(
            last["usage"],
            json!({"prompt_tokens": 25, "completion_tokens": 8, "total_tokens": 33})
        );
        assert_eq!(ex.usage().unwrap().total_tokens, 33);
    }

    #[test]
    fn stream_without_include_usage_still_records_usage() {
        let mut ex = stream_exchange(false);
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", TEXT_STREAM.as_bytes());
        let events = testutil::validate_sse_stream(&out);
        assert!(events.iter().all(|e| e.get("usage").is_none()));
        assert_eq!(ex.usage().unwrap().completion_tokens, 8);
    }

    // Incremental tool-call streaming as shown in the DashScope SDK documentation: the first piece
    // of each call carries index, id and name; later pieces only more arguments (id ""); the last
    // event has an empty function and finish_reason "tool_calls".
    const TOOL_STREAM: &str = "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"tool_calls\":[{\"index\":0,\"id\":\"call_30817ba5d0b349ed88ddcc\",\"type\":\"function\",\"function\":{\"name\":\"get_current_weather\",\"arguments\":\"{\\\"location\\\":\"}}],\"role\":\"assistant\"},\"index\":0,\"finish_reason\":\"null\"}]},\"usage\":{\"input_tokens\":196,\"output_tokens\":10,\"total_tokens\":206},\"request_id\":\"r-tools\"}\n\n\
id:2\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"tool_calls\":[{\"index\":0,\"id\":\"\",\"type\":\"function\",\"function\":{\"arguments\":\" \\\"Hangzhou\\\"}\"}}],\"role\":\"assistant\"},\"index\":0,\"finish_reason\":\"null\"}]},\"usage\":{\"input_tokens\":196,\"output_tokens\":20,\"total_tokens\":216},\"request_id\":\"r-tools\"}\n\n\
id:3\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"tool_calls\":[{\"index\":1,\"id\":\"call_566994452aec418d930430\",\"type\":\"function\",\"function\":{\"name\":\"get_current_weather\",\"arguments\":\"{\\\"location\\\": \\\"Shanghai\\\"}\"}}],\"role\":\"assistant\"},\"index\":0,\"finish_reason\":\"null\"}]},\"usage\":{\"input_tokens\":196,\"output_tokens\":40,\"total_tokens\":236},\"request_id\":\"r-tools\"}\n\n\
id:4\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"tool_calls\":[{\"index\":1,\"id\":\"\",\"type\":\"function\",\"function\":{}}],\"role\":\"assistant\"},\"index\":0,\"finish_reason\":\"tool_calls\"}]},\"usage\":{\"input_tokens\":196,\"output_tokens\":54,\"total_tokens\":250},\"request_id\":\"r-tools\"}\n\n";

    fn tool_stream_exchange() -> Exchange {
        let tool: Value = serde_json::from_str(WEATHER_TOOL).unwrap();
        let (ex, up) = chat(
            &cfg(""),
            json!({"model": "gpt-3", "stream": true, "tools": [tool],
            "messages": [{"role": "user", "content": "Weather in Hangzhou and Shanghai?"}]}),
        );
        assert_eq!(upstream_json(&up)["parameters"]["incremental_output"], true);
        ex
    }

    #[test]
    fn stream_tool_calls() {
        let mut ex = tool_stream_exchange();
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", TOOL_STREAM.as_bytes());
        let events = testutil::validate_sse_stream(&out);
        // Reassemble the calls the way OpenAI clients do.
        let mut calls: Vec<(String, String, String)> = Vec::new();
        for e in &events {
            let Some(tcs) = e["choices"]
                .get(0)
                .and_then(|c| c["delta"]["tool_calls"].as_array())
            else {
                continue;
            };
            for tc in tcs {
                let i = tc["index"].as_u64().unwrap() as usize;
                if calls.len() <= i {
                    calls.resize(i + 1, Default::default());
                }
                if let Some(id) = tc["id"].as_str() {
                    calls[i].0 = id.to_string();
                }
                if let Some(n) = tc["function"]["name"].as_str() {
                    calls[i].1.push_str(n);
                }
                if let Some(a) = tc["function"]["arguments"].as_str() {
                    calls[i].2.push_str(a);
                }
            }
        }
        assert_eq!(
            calls,
            vec![
                (
                    "call_30817ba5d0b349ed88ddcc".into(),
                    "get_current_weather".into(),
                    "{\"location\": \"Hangzhou\"}".into()
                ),
                (
                    "call_566994452aec418d930430".into(),
                    "get_current_weather".into(),
                    "{\"location\": \"Shanghai\"}".into()
                ),
            ]
        );
        let last_choice = events
            .iter()
            .rev()
            .find_map(|e| e["choices"].get(0))
            .unwrap();
        assert_eq!(last_choice["finish_reason"], "tool_calls");
        assert_eq!(testutil::stream_text(&events), "");
        assert_eq!(ex.usage().unwrap().total_tokens, 250);
    }

    // A multimodal stream: content is a list of {"text"} parts per event (erda-project's recorded
    // qwen-vl stream, in incremental form).
    #[test]
    fn stream_multimodal_parts() {
        let (mut ex, _) = chat(
            &cfg(""),
            json!({"model": "gpt-4o", "stream": true, "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                                          {"type": "text", "text": "What is it?"}]}]}),
        );
        let body = "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":[{\"text\":\"Hello\"}],\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"input_tokens\":92,\"output_tokens\":1},\"request_id\":\"e2edfd5d\"}\n\n\
id:2\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":[{\"text\":\"! A dog.\"}],\"role\":\"assistant\"},\"finish_reason\":\"stop\"}]},\"usage\":{\"input_tokens\":92,\"output_tokens\":10},\"request_id\":\"e2edfd5d\"}\n\n";
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", body.as_bytes());
        let events = testutil::validate_sse_stream(&out);
        assert_eq!(testutil::stream_text(&events), "Hello! A dog.");
        assert_eq!(ex.usage().unwrap().total_tokens, 102);
    }

    #[test]
    fn stream_chunking_invariance() {
        testutil::assert_chunking_invariant(
            || stream_exchange(true),
            "text/event-stream",
            TEXT_STREAM.as_bytes(),
        );
        testutil::assert_chunking_invariant(
            tool_stream_exchange,
            "text/event-stream",
            TOOL_STREAM.as_bytes(),
        );
    }

    // In-stream error as DashScope sends it after a 200 (event:error, :HTTP_STATUS/400, data with
    // code/message/request_id; sample in alibaba/higress ai-proxy qwen.go).
    #[test]
    fn stream_error_event() {
        let mut ex = stream_exchange(true);
        let body = "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"Par\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":3,\"input_tokens\":2,\"output_tokens\":1},\"request_id\":\"r-err\"}\n\n\
id:2\nevent:error\n:HTTP_STATUS/400\ndata:{\"code\":\"DataInspectionFailed\",\"message\":\"Output data may contain inappropriate content.\",\"request_id\":\"r-err\"}\n\n";
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", body.as_bytes());
        let events = testutil::validate_sse_stream(&out);
        let err = events.last().unwrap();
        assert_eq!(err["error"]["code"], "DataInspectionFailed");
        assert_eq!(err["error"]["type"], "invalid_request_error");
        assert_eq!(
            err["error"]["message"],
            "Output data may contain inappropriate content."
        );
        assert_eq!(testutil::stream_text(&events), "Par");
    }

    // DashScope error bodies ({"code","message","request_id"} with the HTTP status), per the
    // error-code reference (help.aliyun.com/zh/model-studio/error-code).
    #[test]
    fn buffered_errors_keep_status_and_code() {
        for (status, code, kind) in [
            (401, "InvalidApiKey", "authentication_error"),
            (429, "Throttling.RateQuota", "rate_limit_error"),
            (400, "InvalidParameter", "invalid_request_error"),
            (500, "InternalError", "api_error"),
        ] {
            let (mut ex, _) = chat(
                &cfg(""),
                json!({"model": "gpt-3", "stream": true,
                "messages": [{"role": "user", "content": "x"}]}),
            );
            let body = format!(
                r#"{{"code":"{code}","message":"Mock {code}.","request_id":"0cbe6006-faec"}}"#
            );
            let (st, out, mode) = respond(&mut ex, status, "application/json", body.as_bytes());
            assert_eq!((st, mode), (status, ResponseMode::Buffer));
            let v = json_of(&out);
            testutil::validate_error(&v);
            assert_eq!(v["error"]["code"], code);
            assert_eq!(v["error"]["type"], kind);
            assert_eq!(v["error"]["message"], format!("Mock {code}."));
            assert!(!String::from_utf8_lossy(&out).contains(TOKEN));
        }
        // An error code inside a 2xx body.
        let (mut ex, _) = chat(
            &cfg(""),
            json!({"model": "gpt-3", "messages": [{"role": "user", "content": "x"}]}),
        );
        let (st, out, _) = respond(
            &mut ex,
            200,
            "application/json",
            br#"{"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":"r"}"#,
        );
        assert_eq!(st, 401);
        testutil::validate_error(&json_of(&out));
    }

    // text-embedding request/response per the synchronous API reference
    // (alibabacloud.com/help/en/model-studio/text-embedding-synchronous-api), rows out of order.
    #[test]
    fn embeddings() {
        let c = cfg("");
        let (mut ex, up) = testutil::forward(
            &c,
            "/v1/embeddings",
            &json!({"model": "text-embedding-v1", "input": ["Hello", "World"], "dimensions": 512,
                    "encoding_format": "float"})
            .to_string(),
        );
        assert_eq!(up.authority, "dashscope.aliyuncs.com");
        assert_eq!(
            up.path,
            "/api/v1/services/embeddings/text-embedding/text-embedding"
        );
        assert_eq!(
            header(&up, "authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(
            upstream_json(&up),
            json!({"model": "text-embedding-v1", "input": {"texts": ["Hello", "World"]},
                   "parameters": {"dimension": 512}})
        );
        let resp = br#"{"output": {"embeddings": [{"text_index": 1, "embedding": [0.5, -0.25]},
            {"text_index": 0, "embedding": [-1.04, 5.2]}]}, "usage": {"total_tokens": 2},
            "request_id": "b5e87f2b"}"#;
        let (_, out, _) = respond(&mut ex, 200, "application/json", resp);
        let v = json_of(&out);
        testutil::validate_embeddings(&v);
        assert_eq!(v["data"][0]["embedding"], json!([-1.04, 5.2]));
        assert_eq!(v["data"][1]["embedding"], json!([0.5, -0.25]));
        assert_eq!(v["data"][1]["index"], 1);
        assert_eq!(v["model"], "text-embedding-v1");
        assert_eq!(v["usage"], json!({"prompt_tokens": 2, "total_tokens": 2}));
        assert_eq!(ex.usage().unwrap().prompt_tokens, 2);

        let (_, up) = testutil::forward(
            &c,
            "/v1/embeddings",
            r#"{"model": "text-embedding-v1", "input": "Hello"}"#,
        );
        assert_eq!(
            upstream_json(&up),
            json!({"model": "text-embedding-v1", "input": {"texts": ["Hello"]}})
        );
        let (status, v) = local_error(
            &c,
            "/v1/embeddings",
            json!({"model": "text-embedding-v1", "input": [[1, 2, 3]]}),
        );
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some("unsupported_feature"))
        );
    }

    #[test]
    fn protocol_original_passthrough() {
        let c = cfg(r#", "protocol": "original""#);
        let mut ex = Exchange::new(Arc::clone(&c));
        let body = br#"{"model":"qwen-max","input":{"messages":[]}}"#;
        let up = match ex
            .on_request(
                "POST",
                "/api/v1/services/aigc/text-generation/generation",
                &[],
                body,
            )
            .unwrap()
        {
            RequestAction::Forward(up) => up,
            other => panic!("{other:?}"),
        };
        assert_eq!(up.authority, "dashscope.aliyuncs.com");
        assert_eq!(up.path, "/api/v1/services/aigc/text-generation/generation");
        assert_eq!(
            header(&up, "authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert!(up.body.is_none());
        let rh = ex
            .on_response_headers(200, &[("content-type", "application/json")])
            .unwrap();
        assert_eq!(rh.mode, ResponseMode::Passthrough);
    }

    // customSettings go under `parameters` for qwen (seed README: "For the qwen protocol,
    // ai-proxy configures under the parameters subpath").
    #[test]
    fn custom_settings_under_parameters() {
        let c = cfg(r#", "customSettings": [
            {"name": "max_tokens", "value": 99},
            {"name": "top_k", "value": 5},
            {"name": "temperature", "value": 0.9, "overwrite": false},
            {"name": "enable_thinking", "value": false, "mode": "raw"}]"#);
        let (_, up) = chat(
            &c,
            json!({"model": "gpt-3", "max_tokens": 10, "temperature": 0.1,
            "messages": [{"role": "user", "content": "x"}]}),
        );
        let p = &upstream_json(&up)["parameters"];
        assert_eq!(p["max_tokens"], 99);
        assert_eq!(p["temperature"], 0.1);
        assert!(
            p.get("top_k").is_none(),
            "top_k is 'none' in the seed's qwen column"
        );
        assert_eq!(p["enable_thinking"], false);
        assert_eq!(p["result_format"], "message");
    }

    // qwen-long file context: one system message "fileid://a,fileid://b" after the role-setting
    // system message (help.aliyun.com/zh/model-studio/user-guide/long-context-qwen-long).
    #[test]
    fn search_and_file_ids() {
        let c = testutil::config(&format!(
            r#"{{"provider": {{"type": "qwen", "apiTokens": ["{TOKEN}"], "modelMapping": {{"*": "qwen-long"}},
                "qwenEnableSearch": true, "qwenFileIds": ["file-fe-xxx", "file-fe-yyy"]}}}}"#
        ));
        let (_, up) = chat(
            &c,
            json!({"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "Please summarize the content"}]}),
        );
        let b = upstream_json(&up);
        assert_eq!(b["model"], "qwen-long");
        assert_eq!(b["parameters"]["enable_search"], true);
        assert_eq!(
            b["input"]["messages"],
            json!([{"role": "system", "content": "fileid://file-fe-xxx,fileid://file-fe-yyy"},
                   {"role": "user", "content": "Please summarize the content"}])
        );
        let (_, up) = chat(
            &c,
            json!({"model": "x", "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Summarize"}]}),
        );
        let msgs = &upstream_json(&up)["input"]["messages"];
        assert_eq!(msgs[0]["content"], "You are a helpful assistant.");
        assert_eq!(
            msgs[1]["content"],
            "fileid://file-fe-xxx,fileid://file-fe-yyy"
        );
        assert_eq!(msgs[2]["role"], "user");
        // Without the option, enable_search is not sent.
        let (_, up) = chat(
            &cfg(""),
            json!({"model": "gpt-3", "messages": [{"role": "user", "content": "x"}]}),
        );
        assert!(upstream_json(&up)["parameters"]
            .get("enable_search")
            .is_none());
    }
}
