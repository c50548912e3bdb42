//! hunyuan: Tencent Cloud API 3.0 (`hunyuan.tencentcloudapi.com`, version 2023-09-01), signed with
//! TC3-HMAC-SHA256.
//!
//! Facts used (looked up in Tencent's public API docs and SDK models):
//! - Every call is `POST /` on `hunyuan.tencentcloudapi.com` with headers `X-TC-Action`,
//!   `X-TC-Version: 2023-09-01`, `X-TC-Timestamp`, `Content-Type` and `Authorization`
//!   (cloud.tencent.com/document/api/1729/101837 "对话", common parameters page 1729/105701).
//! - Signature v3 (tencentcloud.com "Signature v3", e.g. document/api/1150/49447): canonical request
//!   `POST\n/\n\n<canonical headers>\n<signed headers>\n<hex sha256(payload)>` (canonical URI fixed to
//!   `/` and canonical query fixed to "" for POST in API 3.0), string to sign
//!   `TC3-HMAC-SHA256\n<timestamp>\n<date>/<service>/tc3_request\n<hex sha256(canonical request)>`,
//!   key chain `HMAC("TC3"+SecretKey, date)` → service → `tc3_request`, hex signature. `date` is the
//!   UTC date of the timestamp. We sign `content-type;host`.
//! - ChatCompletions request (TencentCloud/tencentcloud-sdk-go `hunyuan/v20230901/models.go`):
//!   `Model`, `Messages[{Role, Content, Contents[{Type text|image_url, Text, ImageUrl{Url}}],
//!   ToolCallId, ToolCalls}]`, `Stream`, `Temperature`, `TopP`, `Seed`, `Stop`, `Tools[{Type,
//!   Function{Name, Parameters (a JSON string), Description}}]`, `ToolChoice` (none|auto|custom),
//!   `CustomTool`. No max-tokens parameter exists.
//! - Responses are wrapped in `{"Response": {...}}`: `Id`, `Created`, `Choices[{Message|Delta{Role,
//!   Content, ToolCalls, ReasoningContent}, FinishReason (stop|sensitive|tool_calls), Index}]`,
//!   `Usage{PromptTokens, CompletionTokens, TotalTokens}`, `ErrorMsg{Msg, Code}`, `RequestId`.
//!   Streams are SSE `data: {...}` events carrying the unwrapped object (sample in alibaba/higress
//!   ai-proxy `provider/hunyuan.go`), cumulative `Usage` in every event, `FinishReason` "" until the end.
//! - Errors: HTTP 200 with `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`.
//! - GetEmbedding: `Input` (string) or `InputList` (strings) → `Data[{Embedding, Index, Object}]`,
//!   `Usage{PromptTokens, TotalTokens}`; no model parameter (fixed 1024-dimension model).

use super::{Api, Provider, ProviderType, RequestInfo, ResponseTranslator, Upstream};
use crate::config::{ProviderConfig, Secret};
use crate::custom_settings::SettingsProtocol;
use crate::error::{error_type_for_status, ConfigError, ProxyError};
use crate::openai::{self, Delta, StreamMeta};
use crate::sse::{self, SseEvent};
use crate::usage::Usage;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

const PROVIDER: &str = "hunyuan";
const HOST: &str = "hunyuan.tencentcloudapi.com";
const SERVICE: &str = "hunyuan";
const VERSION: &str = "2023-09-01";
/// The exact value matters: it is part of the signature.
const CONTENT_TYPE: &str = "application/json";
const ACTION_CHAT: &str = "ChatCompletions";
const ACTION_EMBEDDING: &str = "GetEmbedding";
const ALGORITHM: &str = "TC3-HMAC-SHA256";
const SIGNED_HEADERS: &str = "content-type;host";

/// hunyuan's own configuration fields: the TC3 signing pair (no `apiTokens`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub auth_id: Secret,
    pub auth_key: Secret,
}

impl Settings {
    pub fn parse(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let f = config.fields();
        let why = "for provider type 'hunyuan'";
        let auth_id = f.require("hunyuanAuthId", f.nonempty_str("hunyuanAuthId")?, why)?;
        let auth_key = f.require("hunyuanAuthKey", f.nonempty_str("hunyuanAuthKey")?, why)?;
        Ok(Self {
            auth_id: Secret::new(auth_id),
            auth_key: Secret::new(auth_key),
        })
    }
}

pub fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(Hunyuan {
        settings: Settings::parse(config)?,
    }))
}

struct Hunyuan {
    settings: Settings,
}

impl Provider for Hunyuan {
    fn kind(&self) -> ProviderType {
        ProviderType::Hunyuan
    }

    fn settings_protocol(&self, _req: &RequestInfo<'_>) -> SettingsProtocol {
        SettingsProtocol::Hunyuan
    }

    fn translate_request(
        &self,
        req: &RequestInfo<'_>,
        body: &mut Value,
    ) -> Result<Upstream, ProxyError> {
        let (action, translated) = match req.api {
            Api::ChatCompletions => (ACTION_CHAT, chat_body(req, body)?),
            Api::Embeddings => (ACTION_EMBEDDING, embedding_body(body)?),
        };
        *body = translated;
        Ok(Upstream::new(HOST, "/")
            .header("x-tc-action", action)
            .header("x-tc-version", VERSION)
            .header("content-type", CONTENT_TYPE))
    }

    fn passthrough_target(
        &self,
        _config: &ProviderConfig,
        _token: &str,
        path: &str,
    ) -> Result<Upstream, ProxyError> {
        // The client sends X-TC-Action / X-TC-Version itself; we only set the content type we
        // sign with, then timestamp and signature in `finalize`.
        Ok(Upstream::new(HOST, path).header("content-type", CONTENT_TYPE))
    }

    fn signs_body(&self) -> bool {
        true
    }

    fn finalize(
        &self,
        _config: &ProviderConfig,
        upstream: &mut Upstream,
        body: &[u8],
    ) -> Result<(), ProxyError> {
        let (id, key) = (
            self.settings.auth_id.expose(),
            self.settings.auth_key.expose(),
        );
        let timestamp = openai::now_secs();
        let signed = tc3_sign(
            id,
            key,
            SERVICE,
            timestamp,
            &Tc3Request {
                host: &upstream.authority,
                content_type: CONTENT_TYPE,
                payload: body,
            },
        );
        set_header(upstream, "content-type", CONTENT_TYPE.to_string());
        set_header(upstream, "x-tc-timestamp", timestamp.to_string());
        set_header(upstream, "authorization", signed.authorization);
        Ok(())
    }

    fn response_translator(&self, req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        Box::new(Translator {
            api: req.api,
            model: req.model.to_string(),
            include_usage: req.include_usage,
            meta: None,
            usage: None,
            role_sent: false,
            failed: false,
            tool_keys: Vec::new(),
        })
    }
}

fn set_header(up: &mut Upstream, name: &str, value: String) {
    up.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    up.headers.push((name.to_string(), value));
}

// ---------------------------------------------------------------------------------------------
// TC3-HMAC-SHA256: a pure function of (credentials, service, timestamp, request).

type HmacSha256 = Hmac<Sha256>;

/// What of the request the signature covers.
struct Tc3Request<'a> {
    host: &'a str,
    content_type: &'a str,
    payload: &'a [u8],
}

#[derive(Debug)]
struct Tc3Signature {
    #[cfg_attr(not(test), allow(dead_code))]
    canonical_request: String,
    #[cfg_attr(not(test), allow(dead_code))]
    string_to_sign: String,
    #[cfg_attr(not(test), allow(dead_code))]
    signature: String,
    authorization: String,
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// `YYYY-MM-DD` (UTC) of a Unix timestamp (proleptic Gregorian civil-from-days).
fn utc_date(timestamp: u64) -> String {
    let days = (timestamp / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn tc3_sign(
    secret_id: &str,
    secret_key: &str,
    service: &str,
    timestamp: u64,
    req: &Tc3Request<'_>,
) -> Tc3Signature {
    let canonical_headers = format!(
        "content-type:{}\nhost:{}\n",
        req.content_type.trim().to_ascii_lowercase(),
        req.host.trim().to_ascii_lowercase()
    );
    // API 3.0: canonical URI is always "/", the canonical query string is "" for POST.
    let canonical_request = format!(
        "POST\n/\n\n{canonical_headers}\n{SIGNED_HEADERS}\n{}",
        sha256_hex(req.payload)
    );
    let date = utc_date(timestamp);
    let scope = format!("{date}/{service}/tc3_request");
    let string_to_sign = format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    let signature = hex(&hmac_sha256(&k_signing, string_to_sign.as_bytes()));
    let authorization = format!(
        "{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={SIGNED_HEADERS}, Signature={signature}"
    );
    Tc3Signature {
        canonical_request,
        string_to_sign,
        signature,
        authorization,
    }
}

// ---------------------------------------------------------------------------------------------
// Requests.

fn is_unset(v: Option<&Value>) -> bool {
    v.is_none_or(Value::is_null)
}

/// OpenAI parameters Hunyuan cannot express: a 400 naming them unless they hold their default.
fn reject_unsupported(obj: &Map<String, Value>) -> Result<(), ProxyError> {
    openai::reject_params(
        obj,
        &[
            "n",
            "logprobs",
            "top_logprobs",
            "logit_bias",
            "presence_penalty",
            "frequency_penalty",
            "response_format",
            "max_tokens",
            "max_completion_tokens",
            "audio",
            "modalities",
            "prediction",
            "functions",
            "function_call",
            "parallel_tool_calls",
            "reasoning_effort",
        ],
        PROVIDER,
    )
}

fn chat_body(req: &RequestInfo<'_>, body: &Value) -> Result<Value, ProxyError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ProxyError::bad_request("request body must be a JSON object"))?;
    reject_unsupported(obj)?;
    let mut out = Map::new();
    out.insert("Model".into(), req.model.into());
    out.insert(
        "Messages".into(),
        Value::Array(messages(obj.get("messages"))?),
    );
    out.insert("Stream".into(), req.stream.into());
    for (from, to) in [("temperature", "Temperature"), ("top_p", "TopP")] {
        match obj.get(from) {
            None | Some(Value::Null) => {}
            Some(v @ Value::Number(_)) => {
                out.insert(to.into(), v.clone());
            }
            Some(_) => {
                return Err(
                    ProxyError::bad_request(format!("'{from}' must be a number")).with_param(from),
                )
            }
        }
    }
    match obj.get("seed") {
        None | Some(Value::Null) => {}
        Some(v) if v.is_i64() || v.is_u64() => {
            out.insert("Seed".into(), v.clone());
        }
        Some(_) => {
            return Err(ProxyError::bad_request("'seed' must be an integer").with_param("seed"))
        }
    }
    match obj.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            out.insert("Stop".into(), json!([s]));
        }
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            if !items.is_empty() {
                out.insert("Stop".into(), Value::Array(items.clone()));
            }
        }
        Some(_) => {
            return Err(
                ProxyError::bad_request("'stop' must be a string or an array of strings")
                    .with_param("stop"),
            )
        }
    }
    let tools = tools(obj.get("tools"))?;
    match obj.get("tool_choice") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "none" || s == "auto" => {
            out.insert("ToolChoice".into(), s.as_str().into());
        }
        Some(Value::String(s)) if s == "required" => {
            return Err(ProxyError::unsupported("tool_choice 'required'", PROVIDER))
        }
        Some(Value::Object(choice)) if choice.get("type") == Some(&json!("function")) => {
            let name = choice
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ProxyError::bad_request("'tool_choice.function.name' is required")
                        .with_param("tool_choice")
                })?;
            let tool = tools
                .iter()
                .find(|t| t["Function"]["Name"] == name)
                .cloned()
                .ok_or_else(|| {
                    ProxyError::bad_request(format!(
                        "'tool_choice' names function '{name}', which is not in 'tools'"
                    ))
                    .with_param("tool_choice")
                })?;
            out.insert("ToolChoice".into(), "custom".into());
            out.insert("CustomTool".into(), tool);
        }
        Some(_) => {
            return Err(
                ProxyError::bad_request("'tool_choice' is not valid").with_param("tool_choice")
            )
        }
    }
    if !tools.is_empty() {
        out.insert("Tools".into(), Value::Array(tools));
    }
    Ok(Value::Object(out))
}

fn tools(v: Option<&Value>) -> Result<Vec<Value>, ProxyError> {
    let tools = openai::function_tools(v, PROVIDER)?;
    Ok(tools
        .into_iter()
        .map(|t| {
            let mut function = Map::new();
            function.insert("Name".into(), t.name.into());
            if let Some(params) = t.parameters {
                // Hunyuan takes the JSON schema as a JSON string.
                function.insert("Parameters".into(), params.to_string().into());
            }
            if let Some(d) = t.description {
                function.insert("Description".into(), d.into());
            }
            json!({"Type": "function", "Function": function})
        })
        .collect())
}

/// A message's content as Hunyuan takes it.
enum Content {
    Text(String),
    /// `Contents` parts (text and images).
    Parts(Vec<Value>),
}

fn part_type(p: &Value) -> &str {
    p.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Content of any role; images are allowed only where `images` is true.
fn content(v: Option<&Value>, role: &str, images: bool) -> Result<Content, ProxyError> {
    let parts = match v {
        None | Some(Value::Null) => return Ok(Content::Text(String::new())),
        Some(Value::String(s)) => return Ok(Content::Text(s.clone())),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(
                ProxyError::bad_request("message 'content' must be a string or an array")
                    .with_param("messages"),
            )
        }
    };
    for p in parts {
        match part_type(p) {
            "text" | "refusal" => {}
            "image_url" if images => {}
            "image_url" => {
                return Err(ProxyError::unsupported(
                    &format!("image content in '{role}' messages"),
                    PROVIDER,
                ))
            }
            other => {
                return Err(ProxyError::unsupported(
                    &format!("'{other}' content parts"),
                    PROVIDER,
                ))
            }
        }
    }
    let text_of = |p: &Value| {
        p.get("text")
            .or_else(|| p.get("refusal"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if !parts.iter().any(|p| part_type(p) == "image_url") {
        return Ok(Content::Text(
            parts.iter().map(text_of).collect::<Vec<_>>().join("\n"),
        ));
    }
    parts
        .iter()
        .map(|p| {
            if part_type(p) == "image_url" {
                let url = p
                    .get("image_url")
                    .and_then(|u| u.get("url").or(Some(u)))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ProxyError::bad_request("'image_url.url' must be a string")
                            .with_param("messages")
                    })?;
                Ok(json!({"Type": "image_url", "ImageUrl": {"Url": url}}))
            } else {
                Ok(json!({"Type": "text", "Text": text_of(p)}))
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Content::Parts)
}

fn text(v: Option<&Value>, role: &str) -> Result<String, ProxyError> {
    match content(v, role, false)? {
        Content::Text(t) => Ok(t),
        Content::Parts(_) => unreachable!("images are rejected when not allowed"),
    }
}

fn messages(v: Option<&Value>) -> Result<Vec<Value>, ProxyError> {
    let items = v.and_then(Value::as_array).ok_or_else(|| {
        ProxyError::bad_request("'messages' must be an array").with_param("messages")
    })?;
    let mut out = Vec::with_capacity(items.len() + 1);
    let mut system: Option<String> = None;
    for (i, m) in items.iter().enumerate() {
        let m = m.as_object().ok_or_else(|| {
            ProxyError::bad_request(format!("messages[{i}] must be an object"))
                .with_param("messages")
        })?;
        let role = m.get("role").and_then(Value::as_str).ok_or_else(|| {
            ProxyError::bad_request(format!("messages[{i}].role must be a string"))
                .with_param("messages")
        })?;
        if !is_unset(m.get("function_call")) {
            return Err(ProxyError::unsupported(
                "'function_call' in messages",
                PROVIDER,
            ));
        }
        match role {
            "system" | "developer" => {
                if !out.is_empty() {
                    // Hunyuan takes one system message, first.
                    return Err(ProxyError::unsupported(
                        "system messages after the first user message",
                        PROVIDER,
                    ));
                }
                let t = text(m.get("content"), role)?;
                system = Some(match system {
                    Some(s) => format!("{s}\n\n{t}"),
                    None => t,
                });
            }
            "user" => {
                let msg = match content(m.get("content"), role, true)? {
                    Content::Text(t) => json!({"Role": "user", "Content": t}),
                    Content::Parts(p) => json!({"Role": "user", "Contents": p}),
                };
                out.push(msg);
            }
            "assistant" => {
                let mut msg = Map::new();
                msg.insert("Role".into(), "assistant".into());
                msg.insert("Content".into(), text(m.get("content"), role)?.into());
                if let Some(calls) = m.get("tool_calls").filter(|v| !v.is_null()) {
                    let calls = calls.as_array().ok_or_else(|| {
                        ProxyError::bad_request("'tool_calls' must be an array")
                            .with_param("messages")
                    })?;
                    if !calls.is_empty() {
                        let mapped = calls
                            .iter()
                            .map(|c| {
                                let f = c.get("function").unwrap_or(&Value::Null);
                                json!({
                                    "Id": c.get("id").and_then(Value::as_str).unwrap_or(""),
                                    "Type": "function",
                                    "Function": {
                                        "Name": f.get("name").and_then(Value::as_str).unwrap_or(""),
                                        "Arguments": f.get("arguments").and_then(Value::as_str).unwrap_or(""),
                                    },
                                })
                            })
                            .collect();
                        msg.insert("ToolCalls".into(), Value::Array(mapped));
                    }
                }
                out.push(Value::Object(msg));
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ProxyError::bad_request(format!("messages[{i}].tool_call_id is required"))
                            .with_param("messages")
                    })?;
                out.push(json!({
                    "Role": "tool",
                    "Content": text(m.get("content"), role)?,
                    "ToolCallId": id,
                }));
            }
            other => {
                return Err(ProxyError::unsupported(
                    &format!("'{other}' role messages"),
                    PROVIDER,
                ))
            }
        }
    }
    if let Some(s) = system {
        out.insert(0, json!({"Role": "system", "Content": s}));
    }
    Ok(out)
}

fn embedding_body(body: &Value) -> Result<Value, ProxyError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ProxyError::bad_request("request body must be a JSON object"))?;
    if !is_unset(obj.get("dimensions")) {
        return Err(ProxyError::unsupported("'dimensions'", PROVIDER));
    }
    if obj
        .get("encoding_format")
        .and_then(Value::as_str)
        .is_some_and(|f| f != "float")
    {
        return Err(ProxyError::unsupported(
            "'encoding_format' other than 'float'",
            PROVIDER,
        ));
    }
    match obj.get("input") {
        Some(Value::String(s)) => Ok(json!({"Input": s})),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            Ok(json!({"InputList": items}))
        }
        Some(Value::Array(_)) => Err(ProxyError::unsupported(
            "token-array embedding input",
            PROVIDER,
        )),
        _ => {
            Err(ProxyError::bad_request("'input' must be a string or an array").with_param("input"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Responses.

/// HTTP status for a Tencent Cloud API 3.0 error code.
fn tc_error_status(code: &str) -> u16 {
    let starts = |p: &str| code.starts_with(p);
    if starts("AuthFailure") {
        401
    } else if starts("UnauthorizedOperation") || starts("OperationDenied") {
        403
    } else if starts("RequestLimitExceeded")
        || starts("LimitExceeded")
        || starts("ResourceInsufficient")
    {
        429
    } else if starts("InternalError") || starts("ServiceUnavailable") || starts("FailedOperation") {
        500
    } else {
        400
    }
}

/// `{"Error": {"Code", "Message"}, "RequestId"}` inside `Response`.
fn envelope_error(resp: &Map<String, Value>) -> Option<ProxyError> {
    let err = resp.get("Error")?.as_object()?;
    let code = err
        .get("Code")
        .and_then(Value::as_str)
        .unwrap_or("InternalError");
    let mut msg = err
        .get("Message")
        .and_then(Value::as_str)
        .unwrap_or("upstream error")
        .to_string();
    if let Some(rid) = resp.get("RequestId").and_then(Value::as_str) {
        msg = format!("{msg} (RequestId: {rid})");
    }
    let status = tc_error_status(code);
    Some(ProxyError::new(status, error_type_for_status(status), msg).with_code(code))
}

/// `ErrorMsg{Msg, Code}`: a failure reported inside a (streamed) answer.
fn error_msg(resp: &Map<String, Value>) -> Option<ProxyError> {
    let e = resp.get("ErrorMsg")?.as_object()?;
    let code = match e.get("Code") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let msg = e.get("Msg").and_then(Value::as_str).unwrap_or("");
    if msg.is_empty() && code.is_empty() {
        return None;
    }
    let msg = if msg.is_empty() {
        "upstream error"
    } else {
        msg
    };
    let err = ProxyError::new(500, "api_error", msg);
    Some(if code.is_empty() {
        err
    } else {
        err.with_code(code)
    })
}

fn usage_of(v: Option<&Value>) -> Option<Usage> {
    let u = v?.as_object()?;
    let get = |k: &str| u.get(k).and_then(Value::as_u64);
    let (p, c, t) = (
        get("PromptTokens"),
        get("CompletionTokens"),
        get("TotalTokens"),
    );
    if p.is_none() && c.is_none() && t.is_none() {
        return None;
    }
    Some(Usage::new(p.unwrap_or(0), c.unwrap_or(0), t))
}

fn finish_reason(upstream: &str, had_tool_calls: bool) -> &'static str {
    match upstream {
        "tool_calls" => "tool_calls",
        "sensitive" => "content_filter",
        "length" => "length",
        _ if had_tool_calls => "tool_calls",
        _ => "stop",
    }
}

fn nonempty_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Unwraps `{"Response": {...}}` (buffered answers and errors); stream events come unwrapped.
fn unwrap_response(v: &Value) -> Option<&Map<String, Value>> {
    let obj = v.as_object()?;
    Some(match obj.get("Response").and_then(Value::as_object) {
        Some(r) => r,
        None => obj,
    })
}

/// Identity and usage of one exchange; the stream state is the chunk identity, a role flag and
/// the ids of the tool calls seen (their position is the OpenAI `index`).
struct Translator {
    api: Api,
    model: String,
    include_usage: bool,
    meta: Option<StreamMeta>,
    usage: Option<Usage>,
    role_sent: bool,
    failed: bool,
    tool_keys: Vec<String>,
}

/// A chunk carrying `reasoning_content` (Hunyuan-T1), which `openai::Delta` does not model.
#[derive(Serialize)]
struct ReasoningChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ReasoningChoice<'a>; 1],
}

#[derive(Serialize)]
struct ReasoningChoice<'a> {
    index: u32,
    delta: ReasoningDelta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct ReasoningDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    reasoning_content: &'a str,
}

impl Translator {
    /// OpenAI tool-call deltas for Hunyuan's `ToolCalls`, merged by `Id` as the docs prescribe.
    fn stream_tool_calls(&mut self, calls: &[Value]) -> Value {
        let mut out = Vec::with_capacity(calls.len());
        for c in calls {
            let f = c.get("Function").unwrap_or(&Value::Null);
            let name = f.get("Name").and_then(Value::as_str).unwrap_or("");
            let args = f.get("Arguments").and_then(Value::as_str).unwrap_or("");
            let id = c.get("Id").and_then(Value::as_str).unwrap_or("");
            let key = if id.is_empty() {
                format!("#{}", c.get("Index").and_then(Value::as_u64).unwrap_or(0))
            } else {
                id.to_string()
            };
            match self.tool_keys.iter().position(|k| *k == key) {
                Some(index) => out.push(json!({"index": index, "function": {"arguments": args}})),
                None => {
                    let index = self.tool_keys.len();
                    let id = if id.is_empty() {
                        format!("call_{}", &openai::new_completion_id()[9..])
                    } else {
                        id.to_string()
                    };
                    self.tool_keys.push(key);
                    out.push(json!({
                        "index": index,
                        "id": id,
                        "type": "function",
                        "function": {"name": name, "arguments": args},
                    }));
                }
            }
        }
        Value::Array(out)
    }

    fn completion(&self, resp: &Map<String, Value>) -> (Value, Option<Usage>) {
        let usage = usage_of(resp.get("Usage"));
        let mut choices = Vec::new();
        if let Some(Value::Array(items)) = resp.get("Choices") {
            for (i, c) in items.iter().enumerate() {
                let Some(c) = c.as_object() else { continue };
                let empty = Map::new();
                let msg = c
                    .get("Message")
                    .or_else(|| c.get("Delta"))
                    .and_then(Value::as_object)
                    .unwrap_or(&empty);
                let calls: Vec<Value> = msg
                    .get("ToolCalls")
                    .and_then(Value::as_array)
                    .map(|calls| {
                        calls
                            .iter()
                            .map(|tc| {
                                let f = tc.get("Function").unwrap_or(&Value::Null);
                                json!({
                                    "id": tc.get("Id").and_then(Value::as_str).unwrap_or(""),
                                    "type": "function",
                                    "function": {
                                        "name": f.get("Name").and_then(Value::as_str).unwrap_or(""),
                                        "arguments": f.get("Arguments").and_then(Value::as_str).unwrap_or(""),
                                    },
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let text = msg.get("Content").and_then(Value::as_str).unwrap_or("");
                let content = if text.is_empty() && !calls.is_empty() {
                    None
                } else {
                    Some(text.to_string())
                };
                let had_calls = !calls.is_empty();
                let mut message =
                    openai::assistant_message(content, had_calls.then_some(Value::Array(calls)));
                if let Some(r) = nonempty_str(msg, "ReasoningContent") {
                    message["reasoning_content"] = r.into();
                }
                let index = c
                    .get("Index")
                    .and_then(Value::as_u64)
                    .map_or(i, |n| n as usize);
                let reason = c.get("FinishReason").and_then(Value::as_str).unwrap_or("");
                choices.push(openai::completion_choice(
                    index,
                    message,
                    finish_reason(reason, had_calls),
                ));
            }
        }
        let id = nonempty_str(resp, "Id").map_or_else(openai::new_completion_id, str::to_string);
        let created = resp
            .get("Created")
            .and_then(Value::as_u64)
            .filter(|c| *c > 0)
            .unwrap_or_else(openai::now_secs);
        (
            openai::completion(id, created, &self.model, choices, usage.as_ref()),
            usage,
        )
    }

    fn embeddings(&self, resp: &Map<String, Value>) -> (Value, Usage) {
        let mut items: Vec<(u64, Value)> = resp
            .get("Data")
            .and_then(Value::as_array)
            .map(|data| {
                data.iter()
                    .enumerate()
                    .map(|(i, d)| {
                        (
                            d.get("Index").and_then(Value::as_u64).unwrap_or(i as u64),
                            d.get("Embedding").cloned().unwrap_or_else(|| json!([])),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        items.sort_by_key(|(i, _)| *i);
        let usage = usage_of(resp.get("Usage")).unwrap_or_default();
        let list = openai::embedding_list(
            &self.model,
            items.into_iter().map(|(_, v)| v).collect(),
            &usage,
        );
        (list, usage)
    }
}

impl ResponseTranslator for Translator {
    fn legacy_on_event(
        &mut self,
        event: SseEvent<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), ProxyError> {
        let data = event.data.trim_ascii();
        if data.is_empty() || data == b"[DONE]" || self.failed {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(data).map_err(|e| {
            ProxyError::bad_upstream(format!("upstream stream event is not JSON: {e}"))
        })?;
        let obj = unwrap_response(&v).ok_or_else(|| {
            ProxyError::bad_upstream("upstream stream event is not a JSON object")
        })?;
        if let Some(err) = envelope_error(obj).or_else(|| error_msg(obj)) {
            self.failed = true;
            openai::write_stream_error(out, &err);
            return Ok(());
        }
        if let Some(u) = usage_of(obj.get("Usage")) {
            self.usage = Some(u);
        }
        if self.meta.is_none() {
            let mut meta = StreamMeta::new(&self.model);
            if let Some(id) = nonempty_str(obj, "Id") {
                id.clone_into(&mut meta.id);
            }
            if let Some(c) = obj
                .get("Created")
                .and_then(Value::as_u64)
                .filter(|c| *c > 0)
            {
                meta.created = c;
            }
            self.meta = Some(meta);
        }
        let Some(Value::Array(choices)) = obj.get("Choices") else {
            return Ok(());
        };
        for (i, c) in choices.iter().enumerate() {
            let Some(c) = c.as_object() else { continue };
            let index = c
                .get("Index")
                .and_then(Value::as_u64)
                .map_or(i as u32, |n| n as u32);
            let empty = Map::new();
            let delta = c
                .get("Delta")
                .or_else(|| c.get("Message"))
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            if let Some(r) = nonempty_str(delta, "ReasoningContent") {
                let meta = self.meta.as_ref().expect("set above");
                let chunk = ReasoningChunk {
                    id: &meta.id,
                    object: "chat.completion.chunk",
                    created: meta.created,
                    model: &meta.model,
                    choices: [ReasoningChoice {
                        index,
                        delta: ReasoningDelta {
                            role: (!self.role_sent).then_some("assistant"),
                            reasoning_content: r,
                        },
                        logprobs: None,
                        finish_reason: None,
                    }],
                };
                sse::write_data(out, &chunk);
                self.role_sent = true;
            }
            let calls = delta
                .get("ToolCalls")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty())
                .map(|a| self.stream_tool_calls(a));
            let content = delta.get("Content").and_then(Value::as_str).unwrap_or("");
            let meta = self.meta.as_ref().expect("set above");
            if !self.role_sent || !content.is_empty() || calls.is_some() {
                let role = (!self.role_sent).then_some("assistant");
                let content = (!content.is_empty() || calls.is_none()).then_some(content);
                meta.write_chunk(
                    out,
                    index,
                    &Delta {
                        role,
                        content,
                        tool_calls: calls.as_ref(),
                    },
                    None,
                );
                self.role_sent = true;
            }
            if let Some(reason) = nonempty_str(c, "FinishReason") {
                meta.write_chunk(
                    out,
                    index,
                    &Delta::default(),
                    Some(finish_reason(reason, !self.tool_keys.is_empty())),
                );
            }
        }
        Ok(())
    }

    fn legacy_on_stream_end(&mut self, out: &mut Vec<u8>) -> Result<(), ProxyError> {
        if self.include_usage && !self.failed {
            if let Some(u) = &self.usage {
                let meta = self
                    .meta
                    .get_or_insert_with(|| StreamMeta::new(&self.model));
                meta.write_usage_chunk(out, u);
            }
        }
        sse::write_done(out);
        Ok(())
    }

    fn legacy_on_body(&mut self, body: &[u8], out: &mut Vec<u8>) -> Result<(), ProxyError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ProxyError::bad_upstream(format!("upstream body is not JSON: {e}")))?;
        let resp = unwrap_response(&v)
            .ok_or_else(|| ProxyError::bad_upstream("upstream body is not a JSON object"))?;
        if let Some(err) = envelope_error(resp).or_else(|| error_msg(resp)) {
            return Err(err);
        }
        let value = match self.api {
            Api::ChatCompletions => {
                let (value, usage) = self.completion(resp);
                self.usage = usage;
                value
            }
            Api::Embeddings => {
                let (value, usage) = self.embeddings(resp);
                self.usage = Some(usage);
                value
            }
        };
        serde_json::to_writer(&mut *out, &value).expect("serialising to a Vec cannot fail");
        Ok(())
    }

    fn on_error(&mut self, status: u16, body: &[u8]) -> ProxyError {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        match parsed
            .as_ref()
            .and_then(unwrap_response)
            .and_then(envelope_error)
        {
            Some(mut e) => {
                e.status = status;
                e.kind = error_type_for_status(status);
                e
            }
            None => openai::upstream_error(status, body),
        }
    }

    fn legacy_usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Exchange, RequestAction, ResponseMode};
    use crate::testutil::{self, forward, header, respond, upstream_json};
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::sync::Arc;

    const SECRET_ID: &str = "AKIDhunyuanTestSecretId0000000000000";
    const SECRET_KEY: &str = "hunyuanTestSecretKey000000000000";

    fn cfg_with(extra: &str) -> Arc<crate::exchange::Config> {
        testutil::config(&format!(
            r#"{{"provider": {{"type": "hunyuan", "hunyuanAuthId": "{SECRET_ID}",
                "hunyuanAuthKey": "{SECRET_KEY}", "modelMapping": {{"*": "hunyuan-lite"}}{extra}}}}}"#
        ))
    }

    fn cfg() -> Arc<crate::exchange::Config> {
        cfg_with("")
    }

    fn chat(body: &str) -> (Exchange, crate::exchange::UpstreamRequest) {
        forward(&cfg(), "/v1/chat/completions", body)
    }

    /// Independent TC3-HMAC-SHA256 reference, written from Tencent's "Signature v3" page and run
    /// with Python's own `hmac`/`hashlib`: argv = secret id, secret key, service, host,
    /// content type, timestamp; stdin = payload. Prints the Authorization header.
    const PY_TC3: &str = r#"
import sys, hmac, hashlib, datetime
sid, skey, service, host, ctype, ts = sys.argv[1:7]
payload = sys.stdin.buffer.read()
date = datetime.datetime.fromtimestamp(int(ts), datetime.timezone.utc).strftime('%Y-%m-%d')
canonical = '\n'.join(['POST', '/', '', 'content-type:' + ctype + '\nhost:' + host + '\n',
                       'content-type;host', hashlib.sha256(payload).hexdigest()])
scope = date + '/' + service + '/tc3_request'
to_sign = '\n'.join(['TC3-HMAC-SHA256', ts, scope, hashlib.sha256(canonical.encode()).hexdigest()])
def mac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()
k = mac(mac(mac(('TC3' + skey).encode(), date), service), 'tc3_request')
sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
sys.stdout.write('TC3-HMAC-SHA256 Credential=' + sid + '/' + scope
                 + ', SignedHeaders=content-type;host, Signature=' + sig)
"#;

    fn python_authorization(
        id: &str,
        key: &str,
        service: &str,
        host: &str,
        ctype: &str,
        ts: &str,
        payload: &[u8],
    ) -> String {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(PY_TC3)
            .args([id, key, service, host, ctype, ts])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed for the independent signature check");
        child.stdin.take().unwrap().write_all(payload).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "python reference failed");
        String::from_utf8(out.stdout).unwrap()
    }

    // Tencent Cloud "Signature v3" worked example (CVM DescribeInstances; e.g.
    // tencentcloud.com/document/api/1150/49447, values also reproduced by several SDK test suites):
    // SecretId/SecretKey below are the docs' masked example credentials.
    const DOC_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******";
    const DOC_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3*******";
    const DOC_PAYLOAD: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
    const DOC_TS: u64 = 1_551_113_065;

    #[test]
    fn signature_matches_tencent_documentation_example() {
        let s = tc3_sign(
            DOC_ID,
            DOC_KEY,
            "cvm",
            DOC_TS,
            &Tc3Request {
                host: "cvm.tencentcloudapi.com",
                content_type: "application/json; charset=utf-8",
                payload: DOC_PAYLOAD.as_bytes(),
            },
        );
        assert_eq!(
            s.canonical_request,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            s.string_to_sign,
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            s.signature,
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
        assert_eq!(
            s.authorization,
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
        // The Python reference agrees with the published example too.
        assert_eq!(
            python_authorization(
                DOC_ID,
                DOC_KEY,
                "cvm",
                "cvm.tencentcloudapi.com",
                "application/json; charset=utf-8",
                "1551113065",
                DOC_PAYLOAD.as_bytes()
            ),
            s.authorization
        );
    }

    #[test]
    fn signature_matches_python_reference_for_hunyuan_inputs() {
        let payload = r#"{"Model":"hunyuan-lite","Messages":[{"Role":"user","Content":"你好"}],"Stream":false}"#;
        // Around a UTC midnight, a leap day and "now": the date in the scope follows the timestamp.
        for ts in [
            1_709_164_799u64,
            1_709_164_800,
            1_717_493_117,
            openai::now_secs(),
        ] {
            let ours = tc3_sign(
                SECRET_ID,
                SECRET_KEY,
                SERVICE,
                ts,
                &Tc3Request {
                    host: HOST,
                    content_type: CONTENT_TYPE,
                    payload: payload.as_bytes(),
                },
            );
            let reference = python_authorization(
                SECRET_ID,
                SECRET_KEY,
                SERVICE,
                HOST,
                CONTENT_TYPE,
                &ts.to_string(),
                payload.as_bytes(),
            );
            assert_eq!(ours.authorization, reference, "timestamp {ts}");
        }
    }

    #[test]
    fn utc_dates() {
        for (ts, date) in [
            (0, "1970-01-01"),
            (DOC_TS, "2019-02-25"),
            (951_782_400, "2000-02-29"),
            (1_709_164_799, "2024-02-28"),
            (1_709_164_800, "2024-02-29"),
            (4_102_444_800, "2100-01-01"),
        ] {
            assert_eq!(utc_date(ts), date, "{ts}");
        }
    }

    /// The forwarded request carries a timestamp from the clock and a signature over exactly the
    /// body sent, as recomputed by the Python reference.
    fn assert_signed(up: &crate::exchange::UpstreamRequest, payload: &[u8]) {
        let ts = header(up, "x-tc-timestamp").expect("timestamp header");
        let now = openai::now_secs();
        let t: u64 = ts.parse().unwrap();
        assert!(
            t <= now && now - t < 60,
            "timestamp {t} is not from the clock"
        );
        assert_eq!(header(up, "content-type"), Some(CONTENT_TYPE));
        let expected = python_authorization(
            SECRET_ID,
            SECRET_KEY,
            SERVICE,
            HOST,
            CONTENT_TYPE,
            ts,
            payload,
        );
        assert_eq!(header(up, "authorization"), Some(expected.as_str()));
        assert!(!expected.contains(SECRET_KEY));
    }

    #[test]
    fn chat_request_is_translated_and_signed() {
        let (_, up) = chat(
            r#"{"model": "gpt-3", "messages": [{"role": "user", "content": "Hello, who are you?"}],
                "temperature": 0.3, "top_p": 0.9, "stream": false, "user": "u1"}"#,
        );
        assert_eq!(up.authority, HOST);
        assert_eq!(up.path, "/");
        assert_eq!(header(&up, "x-tc-action"), Some("ChatCompletions"));
        assert_eq!(header(&up, "x-tc-version"), Some("2023-09-01"));
        assert!(up.remove_headers.contains(&"authorization"));
        assert_eq!(
            upstream_json(&up),
            json!({"Model": "hunyuan-lite", "Messages": [{"Role": "user", "Content": "Hello, who are you?"}],
                   "Stream": false, "Temperature": 0.3, "TopP": 0.9})
        );
        assert_signed(&up, up.body.as_deref().unwrap());
    }

    #[test]
    fn multi_turn_with_system_messages() {
        let (_, up) = chat(
            r#"{"model": "m", "messages": [
                {"role": "system", "content": "You are a professional developer!"},
                {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": [{"type": "text", "text": "Who"}, {"type": "text", "text": "are you?"}]}],
                "seed": 42, "stop": "END"}"#,
        );
        let body = upstream_json(&up);
        assert_eq!(
            body["Messages"],
            json!([
                {"Role": "system", "Content": "You are a professional developer!\n\nBe brief."},
                {"Role": "user", "Content": "Hi"},
                {"Role": "assistant", "Content": "Hello!"},
                {"Role": "user", "Content": "Who\nare you?"}
            ])
        );
        assert_eq!(
            (body["Seed"].clone(), body["Stop"].clone()),
            (json!(42), json!(["END"]))
        );
        let (status, err) = testutil::local_reply(
            &cfg(),
            "/v1/chat/completions",
            r#"{"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]}"#,
        );
        assert_eq!(status, 400);
        assert!(err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("system messages"));
    }

    #[test]
    fn images_become_contents() {
        let (_, up) = chat(
            r#"{"model": "hunyuan-vision", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/1.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}]}]}"#,
        );
        assert_eq!(
            upstream_json(&up)["Messages"],
            json!([{"Role": "user", "Contents": [
                {"Type": "text", "Text": "What is this?"},
                {"Type": "image_url", "ImageUrl": {"Url": "https://example.com/1.png"}},
                {"Type": "image_url", "ImageUrl": {"Url": "data:image/jpeg;base64,AAAA"}}]}])
        );
        let (status, err) = testutil::local_reply(
            &cfg(),
            "/v1/chat/completions",
            r#"{"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}"#,
        );
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (400, Some("unsupported_feature"))
        );
    }

    #[test]
    fn unsupported_parameters_are_400_naming_them() {
        for (param, extra) in [
            ("max_tokens", r#""max_tokens": 100"#),
            ("n", r#""n": 2"#),
            (
                "response_format",
                r#""response_format": {"type": "json_object"}"#,
            ),
            ("presence_penalty", r#""presence_penalty": 0.5"#),
            (
                "tool_choice 'required'",
                r#""tool_choice": "required", "tools": []"#,
            ),
        ] {
            let (status, err) = testutil::local_reply(
                &cfg(),
                "/v1/chat/completions",
                &format!(
                    r#"{{"model": "m", "messages": [{{"role": "user", "content": "x"}}], {extra}}}"#
                ),
            );
            assert_eq!(status, 400, "{param}");
            let msg = err["error"]["message"].as_str().unwrap();
            assert!(msg.contains(param) && msg.contains("hunyuan"), "{msg}");
        }
        // Defaults are accepted.
        chat(
            r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 1,
                 "presence_penalty": 0, "response_format": {"type": "text"}, "logprobs": false}"#,
        );
    }

    const TOOLS: &str = r#"[{"type": "function", "function": {"name": "get_weather",
        "description": "Weather of a city", "parameters": {"type": "object",
        "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]"#;

    #[test]
    fn tools_and_tool_messages_are_translated() {
        let (_, up) = chat(&format!(
            r#"{{"model": "hunyuan-functioncall", "tools": {TOOLS},
                "tool_choice": {{"type": "function", "function": {{"name": "get_weather"}}}},
                "messages": [
                {{"role": "user", "content": "Weather in Paris?"}},
                {{"role": "assistant", "content": null, "tool_calls": [{{"id": "call_1", "type": "function",
                   "function": {{"name": "get_weather", "arguments": "{{\"city\":\"Paris\"}}"}}}}]}},
                {{"role": "tool", "tool_call_id": "call_1", "content": "sunny"}}]}}"#
        ));
        let body = upstream_json(&up);
        let tool = json!({"Type": "function", "Function": {"Name": "get_weather",
            "Parameters": "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}",
            "Description": "Weather of a city"}});
        assert_eq!(body["Tools"], json!([tool.clone()]));
        assert_eq!(body["ToolChoice"], "custom");
        assert_eq!(body["CustomTool"], tool);
        assert_eq!(
            body["Messages"],
            json!([
                {"Role": "user", "Content": "Weather in Paris?"},
                {"Role": "assistant", "Content": "", "ToolCalls": [{"Id": "call_1", "Type": "function",
                  "Function": {"Name": "get_weather", "Arguments": "{\"city\":\"Paris\"}"}}]},
                {"Role": "tool", "Content": "sunny", "ToolCallId": "call_1"}
            ])
        );
        let (_, up) = chat(&format!(
            r#"{{"model": "m", "tools": {TOOLS}, "tool_choice": "auto", "messages": [{{"role": "user", "content": "x"}}]}}"#
        ));
        assert_eq!(upstream_json(&up)["ToolChoice"], "auto");
    }

    // Mirrors the ChatCompletions non-streamed answer of cloud.tencent.com/document/api/1729/101837
    // (Response{Id, Created, Note, Choices[{Index, Message{Role, Content}, FinishReason}], Usage,
    // RequestId}); the text is the seed README's Hunyuan example.
    const BUFFERED: &str = r#"{"Response": {"RequestId": "fd140c3e-0b69-4b19-849b-d354d32a6162",
        "Note": "以上内容为AI生成，不代表开发者立场，请勿删除或修改本标记",
        "Choices": [{"Index": 0, "Message": {"Role": "assistant", "Content": "你好！我是腾讯混元大模型。"},
        "FinishReason": "stop"}], "Created": 1717493117, "Id": "fd140c3e-0b69-4b19-849b-d354d32a6162",
        "Usage": {"PromptTokens": 15, "CompletionTokens": 9, "TotalTokens": 24}}}"#;

    #[test]
    fn buffered_response_and_usage() {
        let (mut ex, _) =
            chat(r#"{"model": "gpt-3", "messages": [{"role": "user", "content": "Hello"}]}"#);
        let (status, out, mode) = respond(&mut ex, 200, "application/json", BUFFERED.as_bytes());
        assert_eq!((status, mode), (200, ResponseMode::Buffer));
        let v: Value = serde_json::from_slice(&out).unwrap();
        testutil::validate_chat_completion(&v);
        assert_eq!(v["id"], "fd140c3e-0b69-4b19-849b-d354d32a6162");
        assert_eq!(v["created"], 1717493117);
        assert_eq!(v["model"], "hunyuan-lite");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "你好！我是腾讯混元大模型。"
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 15, "completion_tokens": 9, "total_tokens": 24})
        );
        assert_eq!(ex.usage(), Some(Usage::new(15, 9, Some(24))));
    }

    // Mirrors the function-calling answer shape (Message.ToolCalls[{Id, Type, Function{Name,
    // Arguments}}], FinishReason "tool_calls") of the tencentcloud-sdk-go hunyuan models.
    const TOOL_ANSWER: &str = r#"{"Response": {"Id": "t1", "Created": 1717493117, "Choices": [{"Index": 0,
        "Message": {"Role": "assistant", "Content": "", "ToolCalls": [{"Id": "call_abc", "Type": "function",
        "Function": {"Name": "get_weather", "Arguments": "{\"city\":\"Paris\"}"}, "Index": 0}]},
        "FinishReason": "tool_calls"}], "Usage": {"PromptTokens": 50, "CompletionTokens": 10, "TotalTokens": 60},
        "RequestId": "r1"}}"#;

    #[test]
    fn buffered_tool_calls() {
        let (mut ex, _) = chat(&format!(
            r#"{{"model": "m", "tools": {TOOLS}, "messages": [{{"role": "user", "content": "Paris?"}}]}}"#
        ));
        let (_, out, _) = respond(&mut ex, 200, "application/json", TOOL_ANSWER.as_bytes());
        let v: Value = serde_json::from_slice(&out).unwrap();
        testutil::validate_chat_completion(&v);
        let choice = &v["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], Value::Null);
        assert_eq!(
            choice["message"]["tool_calls"],
            json!([{"id": "call_abc", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}])
        );
    }

    // Mirrors the streamed ChatCompletions events (SSE "data: {...}" with Choices[].Delta,
    // cumulative Usage, FinishReason "" until "stop"), as in the sample quoted in alibaba/higress
    // ai-proxy provider/hunyuan.go and the SDK's Choice/Delta models.
    const STREAM: &str = "data: {\"Note\":\"以上内容为AI生成，不代表开发者立场，请勿删除或修改本标记\",\"Choices\":[{\"Index\":0,\"Delta\":{\"Role\":\"assistant\",\"Content\":\"你好\"},\"FinishReason\":\"\"}],\"Created\":1716359713,\"Id\":\"086b6b19-8b2c-4def-a65c-db6a7bc86acd\",\"Usage\":{\"PromptTokens\":7,\"CompletionTokens\":1,\"TotalTokens\":8}}\n\n\
data: {\"Note\":\"以上内容为AI生成，不代表开发者立场，请勿删除或修改本标记\",\"Choices\":[{\"Index\":0,\"Delta\":{\"Role\":\"assistant\",\"Content\":\"，世界！\"},\"FinishReason\":\"\"}],\"Created\":1716359713,\"Id\":\"086b6b19-8b2c-4def-a65c-db6a7bc86acd\",\"Usage\":{\"PromptTokens\":7,\"CompletionTokens\":3,\"TotalTokens\":10}}\n\n\
data: {\"Note\":\"以上内容为AI生成，不代表开发者立场，请勿删除或修改本标记\",\"Choices\":[{\"Index\":0,\"Delta\":{\"Role\":\"assistant\",\"Content\":\"\"},\"FinishReason\":\"stop\"}],\"Created\":1716359713,\"Id\":\"086b6b19-8b2c-4def-a65c-db6a7bc86acd\",\"Usage\":{\"PromptTokens\":7,\"CompletionTokens\":4,\"TotalTokens\":11}}\n\n";

    fn stream_request(include_usage: bool) -> (Exchange, crate::exchange::UpstreamRequest) {
        chat(&format!(
            r#"{{"model": "gpt-3", "stream": true, "stream_options": {{"include_usage": {include_usage}}},
                "messages": [{{"role": "user", "content": "Hello"}}]}}"#
        ))
    }

    #[test]
    fn streamed_response_with_and_without_usage_chunk() {
        let (mut ex, up) = stream_request(true);
        assert_eq!(upstream_json(&up)["Stream"], true);
        let (status, out, mode) = respond(&mut ex, 200, "text/event-stream", STREAM.as_bytes());
        assert_eq!((status, mode), (200, ResponseMode::Stream));
        let events = testutil::validate_sse_stream(&out);
        assert_eq!(testutil::stream_text(&events), "你好，世界！");
        assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(events[0]["id"], "086b6b19-8b2c-4def-a65c-db6a7bc86acd");
        let finish: Vec<&Value> = events
            .iter()
            .filter_map(|e| e["choices"].get(0))
            .map(|c| &c["finish_reason"])
            .filter(|f| !f.is_null())
            .collect();
        assert_eq!(finish, vec!["stop"]);
        let last = events.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(
            last["usage"],
            json!({"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11})
        );
        assert_eq!(ex.usage(), Some(Usage::new(7, 4, Some(11))));

        let (mut ex, _) = stream_request(false);
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", STREAM.as_bytes());
        let events = testutil::validate_sse_stream(&out);
        assert!(events.iter().all(|e| e.get("usage").is_none()));
        assert_eq!(
            ex.usage(),
            Some(Usage::new(7, 4, Some(11))),
            "usage is recorded anyway"
        );
    }

    #[test]
    fn stream_translation_is_chunking_invariant() {
        testutil::assert_chunking_invariant(
            || stream_request(true).0,
            "text/event-stream",
            STREAM.as_bytes(),
        );
    }

    // Streamed function call and Hunyuan-T1 reasoning (Delta.ToolCalls merged by Id and
    // Delta.ReasoningContent, per the SDK's Delta model).
    const TOOL_STREAM: &str = "data: {\"Choices\":[{\"Index\":0,\"Delta\":{\"Role\":\"assistant\",\"Content\":\"\",\"ReasoningContent\":\"需要查天气\"},\"FinishReason\":\"\"}],\"Created\":1,\"Id\":\"s2\",\"Usage\":{\"PromptTokens\":5,\"CompletionTokens\":1,\"TotalTokens\":6}}\n\n\
data: {\"Choices\":[{\"Index\":0,\"Delta\":{\"Role\":\"assistant\",\"Content\":\"\",\"ToolCalls\":[{\"Id\":\"call_x\",\"Type\":\"function\",\"Function\":{\"Name\":\"get_weather\",\"Arguments\":\"{\\\"city\\\":\"},\"Index\":0}]},\"FinishReason\":\"\"}],\"Created\":1,\"Id\":\"s2\"}\n\n\
data: {\"Choices\":[{\"Index\":0,\"Delta\":{\"Role\":\"assistant\",\"Content\":\"\",\"ToolCalls\":[{\"Id\":\"call_x\",\"Type\":\"function\",\"Function\":{\"Name\":\"get_weather\",\"Arguments\":\"\\\"Paris\\\"}\"},\"Index\":0}]},\"FinishReason\":\"\"}],\"Created\":1,\"Id\":\"s2\"}\n\n\
data: {\"Choices\":[{\"Index\":0,\"Delta\":{\"Role\":\"assistant\",\"Content\":\"\"},\"FinishReason\":\"tool_calls\"}],\"Created\":1,\"Id\":\"s2\",\"Usage\":{\"PromptTokens\":5,\"CompletionTokens\":9,\"TotalTokens\":14}}\n\n";

    #[test]
    fn streamed_tool_calls_and_reasoning() {
        let (mut ex, _) = chat(&format!(
            r#"{{"model": "m", "stream": true, "tools": {TOOLS}, "messages": [{{"role": "user", "content": "Paris?"}}]}}"#
        ));
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", TOOL_STREAM.as_bytes());
        let events = testutil::validate_sse_stream(&out);
        assert_eq!(
            events[0]["choices"][0]["delta"]["reasoning_content"],
            "需要查天气"
        );
        assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
        let calls: Vec<&Value> = events
            .iter()
            .filter_map(|e| e["choices"][0]["delta"].get("tool_calls"))
            .collect();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls[0],
            &json!([{"index": 0, "id": "call_x", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":"}}])
        );
        assert_eq!(
            calls[1],
            &json!([{"index": 0, "function": {"arguments": "\"Paris\"}"}}])
        );
        assert_eq!(
            events.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls"
        );
        testutil::assert_chunking_invariant(
            || {
                chat(r#"{"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}"#).0
            },
            "text/event-stream",
            TOOL_STREAM.as_bytes(),
        );
    }

    // Tencent Cloud API 3.0 error envelope (HTTP 200; common error codes page, e.g.
    // cloud.tencent.com/document/api/1729/101839).
    fn api_error(code: &str) -> String {
        format!(
            r#"{{"Response": {{"Error": {{"Code": "{code}", "Message": "something failed"}}, "RequestId": "req-1"}}}}"#
        )
    }

    #[test]
    fn upstream_errors_in_a_200_and_in_error_statuses() {
        for (code, status, kind) in [
            ("AuthFailure.SignatureFailure", 401, "authentication_error"),
            ("AuthFailure.SecretIdNotFound", 401, "authentication_error"),
            ("RequestLimitExceeded", 429, "rate_limit_error"),
            ("LimitExceeded", 429, "rate_limit_error"),
            ("UnauthorizedOperation", 403, "permission_error"),
            ("InternalError", 500, "api_error"),
            ("InvalidParameter", 400, "invalid_request_error"),
        ] {
            let (mut ex, _) =
                chat(r#"{"model": "m", "messages": [{"role": "user", "content": "x"}]}"#);
            let (got, out, _) =
                respond(&mut ex, 200, "application/json", api_error(code).as_bytes());
            let v: Value = serde_json::from_slice(&out).unwrap();
            testutil::validate_error(&v);
            assert_eq!(
                (got, v["error"]["type"].as_str()),
                (status, Some(kind)),
                "{code}"
            );
            assert_eq!(v["error"]["code"], code);
            assert_eq!(v["error"]["message"], "something failed (RequestId: req-1)");
        }
        // An error status keeps the status and still reads the envelope.
        let (mut ex, _) = chat(r#"{"model": "m", "messages": [{"role": "user", "content": "x"}]}"#);
        let (got, out, _) = respond(
            &mut ex,
            503,
            "application/json",
            api_error("InternalError").as_bytes(),
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        testutil::validate_error(&v);
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (503, Some("InternalError"))
        );
        // A streamed request answered with a JSON error body.
        let (mut ex, _) = stream_request(false);
        let (got, out, mode) = respond(
            &mut ex,
            200,
            "application/json",
            api_error("AuthFailure.SignatureExpire").as_bytes(),
        );
        assert_eq!((got, mode), (401, ResponseMode::Buffer));
        testutil::validate_error(&serde_json::from_slice(&out).unwrap());
    }

    #[test]
    fn in_stream_errors_end_the_stream() {
        // ErrorMsg{Msg, Code} inside a streamed answer (SDK ChatCompletionsResponseParams.ErrorMsg).
        let body = format!(
            "{}data: {{\"Choices\":[],\"ErrorMsg\":{{\"Msg\":\"请求模型超时\",\"Code\":4001}},\"Id\":\"x\",\"Created\":1}}\n\n{}",
            STREAM.split("\n\n").next().unwrap().to_string() + "\n\n",
            STREAM
        );
        let (mut ex, _) = stream_request(true);
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", body.as_bytes());
        let events = testutil::validate_sse_stream(&out);
        let err = events
            .iter()
            .find(|e| e.get("error").is_some())
            .expect("error event");
        assert_eq!(err["error"]["code"], "4001");
        assert_eq!(err["error"]["message"], "请求模型超时");
        assert!(
            events.last().unwrap().get("error").is_some(),
            "nothing after the error"
        );
        // An API 3.0 envelope as an event.
        let body = format!("data: {}\n\n", api_error("InternalError").replace('\n', ""));
        let (mut ex, _) = stream_request(false);
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", body.as_bytes());
        let events = testutil::validate_sse_stream(&out);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["error"]["code"], "InternalError");
    }

    // Mirrors GetEmbedding (SDK GetEmbeddingResponseParams: Data[{Embedding, Index, Object}],
    // Usage{PromptTokens, TotalTokens}, RequestId).
    const EMBEDDINGS: &str = r#"{"Response": {"Data": [
        {"Embedding": [0.3, 0.4], "Index": 1, "Object": "embedding"},
        {"Embedding": [0.1, 0.2], "Index": 0, "Object": "embedding"}],
        "Usage": {"PromptTokens": 6, "TotalTokens": 6}, "RequestId": "e1"}}"#;

    #[test]
    fn embeddings() {
        let cfg = cfg();
        let (_, up) = forward(
            &cfg,
            "/v1/embeddings",
            r#"{"model": "text-embedding-3-small", "input": "hi"}"#,
        );
        assert_eq!(header(&up, "x-tc-action"), Some("GetEmbedding"));
        assert_eq!(upstream_json(&up), json!({"Input": "hi"}));
        assert_signed(&up, up.body.as_deref().unwrap());
        let (mut ex, up) = forward(
            &cfg,
            "/v1/embeddings",
            r#"{"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "float"}"#,
        );
        assert_eq!(upstream_json(&up), json!({"InputList": ["a", "b"]}));
        let (status, out, _) = respond(&mut ex, 200, "application/json", EMBEDDINGS.as_bytes());
        assert_eq!(status, 200);
        let v: Value = serde_json::from_slice(&out).unwrap();
        testutil::validate_embeddings(&v);
        assert_eq!(v["data"][0]["embedding"], json!([0.1, 0.2]));
        assert_eq!(v["data"][1]["embedding"], json!([0.3, 0.4]));
        assert_eq!(v["usage"], json!({"prompt_tokens": 6, "total_tokens": 6}));
        assert_eq!(ex.usage().map(|u| u.total_tokens), Some(6));
        let (status, err) = testutil::local_reply(
            &cfg,
            "/v1/embeddings",
            r#"{"model": "m", "input": "x", "dimensions": 256}"#,
        );
        assert_eq!(status, 400);
        assert!(err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dimensions"));
        let (status, _) = testutil::local_reply(
            &cfg,
            "/v1/embeddings",
            r#"{"model": "m", "input": [[1, 2]]}"#,
        );
        assert_eq!(status, 400);
    }

    #[test]
    fn original_protocol_signs_the_clients_body() {
        let cfg = cfg_with(r#", "protocol": "original""#);
        let body = r#"{"Model":"hunyuan-lite","Messages":[{"Role":"user","Content":"你好"}]}"#;
        let mut ex = Exchange::new(Arc::clone(&cfg));
        let up = match ex
            .on_request(
                "POST",
                "/",
                &[
                    ("content-type", "application/json"),
                    ("x-tc-action", "ChatCompletions"),
                ],
                body.as_bytes(),
            )
            .unwrap()
        {
            RequestAction::Forward(up) => up,
            other => panic!("expected a forward, got {other:?}"),
        };
        assert_eq!((up.authority.as_str(), up.path.as_str()), (HOST, "/"));
        assert!(up.body.is_none(), "the client's body is sent untouched");
        assert!(
            header(&up, "x-tc-action").is_none(),
            "the client's own X-TC-Action is kept"
        );
        assert_signed(&up, body.as_bytes());
        // Responses pass through untranslated.
        let (_, out, mode) = respond(&mut ex, 200, "application/json", BUFFERED.as_bytes());
        assert_eq!(
            (mode, out.as_slice()),
            (ResponseMode::Passthrough, BUFFERED.as_bytes())
        );
    }

    #[test]
    fn custom_settings_use_the_hunyuan_column() {
        let cfg = cfg_with(
            r#", "customSettings": [{"name": "temperature", "value": 0.2},
                {"name": "top_p", "value": 0.7, "overwrite": false},
                {"name": "max_tokens", "value": 100},
                {"name": "EnableEnhancement", "value": false, "mode": "raw"}]"#,
        );
        let (_, up) = forward(
            &cfg,
            "/v1/chat/completions",
            r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.9, "top_p": 0.5}"#,
        );
        let body = upstream_json(&up);
        assert_eq!(body["Temperature"], 0.2);
        assert_eq!(
            body["TopP"], 0.5,
            "overwrite: false keeps the request's value"
        );
        assert_eq!(body["EnableEnhancement"], false);
        assert!(body.get("max_tokens").is_none() && body.get("temperature").is_none());
        // The signature covers the body after customSettings.
        assert_signed(&up, up.body.as_deref().unwrap());
    }

    #[test]
    fn missing_credentials_are_a_clear_error_without_secrets() {
        // A configuration without the key is refused at load time, naming the field only.
        let json = format!(r#"{{"provider":{{"type":"hunyuan","hunyuanAuthId":"{SECRET_ID}"}}}}"#);
        let err = crate::Config::from_json(json.as_bytes()).unwrap_err();
        assert_eq!(err.path, "provider.hunyuanAuthKey");
        assert!(err.to_string().contains("hunyuanAuthKey"));
        assert!(!err.to_string().contains(SECRET_ID));
    }
}
