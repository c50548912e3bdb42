//! gemini: Google's Generative Language API (`generateContent`, `streamGenerateContent`,
//! `batchEmbedContents`), translated to and from OpenAI's chat completions and embeddings.
//!
//! Facts used (Gemini API reference, https://ai.google.dev/api):
//! - Host `generativelanguage.googleapis.com`, key in header `x-goog-api-key`.
//! - Chat: `POST /v1beta/models/{model}:generateContent`; streaming
//!   `POST /v1beta/models/{model}:streamGenerateContent?alt=sse`, where every SSE `data:` is a whole
//!   `GenerateContentResponse` and the stream ends without a `[DONE]` sentinel
//!   (https://ai.google.dev/api/generate-content, REST streaming quickstart in google-gemini/cookbook).
//! - Request: `contents[{role: user|model, parts[]}]`, `system_instruction{parts[{text}]}`,
//!   `generation_config{temperature, topP, topK, maxOutputTokens, stopSequences, candidateCount, seed,
//!   presencePenalty, frequencyPenalty, responseMimeType, responseJsonSchema}`, `safetySettings
//!   [{category, threshold}]`, `tools[{function_declarations[{name, description, parameters}]}]`,
//!   `tool_config{function_calling_config{mode: AUTO|ANY|NONE, allowed_function_names}}`. Parts are
//!   `text`, `inline_data{mime_type, data}`, `file_data{file_uri}` (a Files API URI), `functionCall
//!   {name, args}` and `functionResponse{name, response}`; the response object uses the key `output`
//!   for the function's output ("FunctionResponse" reference). The REST function-calling guide sends
//!   function responses in a `user` turn. Field names are accepted in snake_case or lowerCamelCase
//!   (proto3 JSON); `generation_config` is the key the seed's customSettings use.
//! - Gemini 3 models attach `thoughtSignature` to `functionCall` parts and reject a replayed call
//!   without it (https://ai.google.dev/gemini-api/docs/thought-signatures). Gemini's own OpenAI
//!   compatibility layer carries it as `extra_content.google.thought_signature` on each tool call;
//!   we do the same, and for a replayed Gemini 3 call without one we send the documented sentinel
//!   `skip_thought_signature_validator`.
//! - Response: `candidates[{content{parts}, finishReason, index}]`, `usageMetadata{promptTokenCount,
//!   candidatesTokenCount, thoughtsTokenCount, totalTokenCount}`, `modelVersion`,
//!   `promptFeedback{blockReason}` (no candidates when the prompt is blocked). `finishReason` values:
//!   STOP, MAX_TOKENS, SAFETY, RECITATION, LANGUAGE, OTHER, BLOCKLIST, PROHIBITED_CONTENT, SPII,
//!   MALFORMED_FUNCTION_CALL, IMAGE_SAFETY.
//! - Embeddings: `POST /v1beta/models/{model}:batchEmbedContents` with `requests[{model:
//!   "models/{model}", content{parts[{text}]}, outputDimensionality?}]` → `embeddings[{values}]`; the
//!   Gemini API reports no token usage for embeddings (https://ai.google.dev/api/embeddings).
//! - Errors: Google's error model `{"error": {"code", "message", "status"}}`, sometimes wrapped in a
//!   one-element array by the streaming endpoint.

use super::{Api, Provider, ProviderType, RequestInfo, ResponseTranslator, Upstream};
use crate::config::ProviderConfig;
use crate::custom_settings::SettingsProtocol;
use crate::error::{error_type_for_status, ConfigError, ProxyError};
use crate::openai::{self, Delta, StreamMeta};
use crate::sse::{self, SseEvent};
use crate::usage::Usage;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

const NAME: &str = "gemini";
const HOST: &str = "generativelanguage.googleapis.com";
const AUTH_HEADER: &str = "x-goog-api-key";
/// Google's documented placeholder for a replayed Gemini 3 function call whose signature is lost.
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";
/// Upper bound on candidate indexes we track in a stream (OpenAI's `n` is small).
const MAX_CANDIDATES: usize = 128;

/// gemini's own configuration fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `geminiSafetySetting`, category → threshold, in the order given.
    pub safety_setting: Vec<(String, String)>,
}

impl Settings {
    pub fn parse(config: &ProviderConfig) -> Result<Self, ConfigError> {
        config.require_token()?;
        Ok(Self {
            safety_setting: config.fields().str_map("geminiSafetySetting")?,
        })
    }
}

pub fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(Gemini {
        settings: Settings::parse(config)?,
    }))
}

pub struct Gemini {
    settings: Settings,
}

impl Provider for Gemini {
    fn kind(&self) -> ProviderType {
        ProviderType::Gemini
    }

    fn settings_protocol(&self, _req: &RequestInfo<'_>) -> SettingsProtocol {
        SettingsProtocol::Gemini
    }

    fn translate_request(
        &self,
        req: &RequestInfo<'_>,
        body: &mut Value,
    ) -> Result<Upstream, ProxyError> {
        let resource = model_resource(req.model)?;
        let model = resource.strip_prefix("models/").unwrap_or(&resource);
        let path = match req.api {
            Api::ChatCompletions => {
                *body = translate_chat(model, body)?;
                if req.stream {
                    format!("/v1beta/{resource}:streamGenerateContent?alt=sse")
                } else {
                    format!("/v1beta/{resource}:generateContent")
                }
            }
            Api::Embeddings => {
                *body = translate_embeddings(&resource, body)?;
                format!("/v1beta/{resource}:batchEmbedContents")
            }
        };
        if req.api == Api::ChatCompletions && !self.settings.safety_setting.is_empty() {
            let settings: Vec<Value> = self
                .settings
                .safety_setting
                .iter()
                .map(|(category, threshold)| json!({"category": category, "threshold": threshold}))
                .collect();
            if let Some(obj) = body.as_object_mut() {
                obj.insert("safetySettings".into(), Value::Array(settings));
            }
        }
        Ok(Upstream::new(HOST, path).header(AUTH_HEADER, req.token))
    }

    fn passthrough_target(
        &self,
        _config: &ProviderConfig,
        token: &str,
        path: &str,
    ) -> Result<Upstream, ProxyError> {
        Ok(Upstream::new(HOST, path).header(AUTH_HEADER, token))
    }

    fn response_translator(&self, req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        Box::new(GeminiTranslator {
            api: req.api,
            model: req.model.to_string(),
            include_usage: req.include_usage,
            meta: None,
            candidates: Vec::new(),
            next_call: 0,
            usage: None,
            done: false,
        })
    }
}

/// The model's resource name, `models/{model}` (or a tuned model's `tunedModels/{id}`). The model
/// becomes part of the upstream path, so anything but a plain model id is refused.
fn model_resource(model: &str) -> Result<String, ProxyError> {
    let (prefix, id) = match model.strip_prefix("tunedModels/") {
        Some(id) => ("tunedModels", id),
        None => ("models", model.strip_prefix("models/").unwrap_or(model)),
    };
    let plain = !id.is_empty()
        && !id.contains("..")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !plain {
        return Err(
            ProxyError::bad_request(format!("'{model}' is not a valid Gemini model name"))
                .with_param("model"),
        );
    }
    Ok(format!("{prefix}/{id}"))
}

fn unsupported(feature: &str) -> ProxyError {
    ProxyError::unsupported(feature, NAME)
}

/// Takes the request object out of `body` (the caller replaces `body` wholesale).
fn take_object(body: &mut Value) -> Result<Map<String, Value>, ProxyError> {
    match std::mem::take(body) {
        Value::Object(m) => Ok(m),
        _ => Err(ProxyError::bad_request(
            "request body must be a JSON object",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Chat request
// ---------------------------------------------------------------------------------------------

/// One `contents[]` entry being built; consecutive messages of the same role are merged.
struct Turn {
    role: &'static str,
    parts: Vec<Value>,
}

fn push_turn(contents: &mut Vec<Turn>, role: &'static str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    match contents.last_mut() {
        Some(last) if last.role == role => last.parts.extend(parts),
        _ => contents.push(Turn { role, parts }),
    }
}

fn translate_chat(model: &str, body: &mut Value) -> Result<Value, ProxyError> {
    let obj = take_object(body)?;
    let mut gen = Map::new();
    let mut messages = None;
    let mut tools = None;
    let mut tool_choice = None;
    let mut max_tokens = None;
    let mut max_completion_tokens = None;
    for (key, value) in obj {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            // Handled by the core, or carry nothing Gemini acts on.
            "model" | "stream" | "stream_options" | "user" | "store" | "metadata"
            | "service_tier" | "safety_identifier" | "prompt_cache_key" => {}
            "messages" => messages = Some(value),
            "temperature" => {
                gen.insert("temperature".into(), value);
            }
            "top_p" => {
                gen.insert("topP".into(), value);
            }
            "top_k" => {
                gen.insert("topK".into(), value);
            }
            "max_tokens" => max_tokens = Some(value),
            "max_completion_tokens" => max_completion_tokens = Some(value),
            "stop" => match value {
                Value::String(s) => {
                    gen.insert("stopSequences".into(), json!([s]));
                }
                Value::Array(a) if a.iter().all(Value::is_string) => {
                    if !a.is_empty() {
                        gen.insert("stopSequences".into(), Value::Array(a));
                    }
                }
                _ => {
                    return Err(ProxyError::bad_request(
                        "'stop' must be a string or an array of strings",
                    )
                    .with_param("stop"))
                }
            },
            "n" => {
                gen.insert("candidateCount".into(), value);
            }
            "seed" => {
                gen.insert("seed".into(), value);
            }
            "presence_penalty" => {
                gen.insert("presencePenalty".into(), value);
            }
            "frequency_penalty" => {
                gen.insert("frequencyPenalty".into(), value);
            }
            "response_format" => response_format(value, &mut gen)?,
            "tools" => tools = Some(value),
            "tool_choice" => tool_choice = Some(value),
            "parallel_tool_calls" => {
                if value == Value::Bool(false) {
                    return Err(unsupported("parallel_tool_calls=false"));
                }
            }
            "logprobs" => {
                if value == Value::Bool(true) {
                    return Err(unsupported("logprobs"));
                }
            }
            "top_logprobs" => return Err(unsupported("top_logprobs")),
            "logit_bias" => {
                if !value.as_object().is_some_and(Map::is_empty) {
                    return Err(unsupported("logit_bias"));
                }
            }
            "modalities" => {
                let text_only = value
                    .as_array()
                    .is_some_and(|a| a.iter().all(|m| m.as_str() == Some("text")));
                if !text_only {
                    return Err(unsupported("output modalities other than text"));
                }
            }
            "functions" | "function_call" => {
                return Err(unsupported(
                    "the deprecated 'functions'/'function_call' parameters (use 'tools')",
                ))
            }
            other => return Err(unsupported(&format!("the '{other}' parameter"))),
        }
    }
    if let Some(max) = max_completion_tokens.or(max_tokens) {
        gen.insert("maxOutputTokens".into(), max);
    }

    let Some(Value::Array(messages)) = messages else {
        return Err(ProxyError::bad_request("'messages' must be an array").with_param("messages"));
    };
    let replay_sentinel = model.starts_with("gemini-3");
    let (contents, system) = translate_messages(messages, replay_sentinel)?;

    let mut out = Map::new();
    out.insert(
        "contents".into(),
        Value::Array(
            contents
                .into_iter()
                .map(|t| json!({"role": t.role, "parts": t.parts}))
                .collect(),
        ),
    );
    if !system.is_empty() {
        out.insert("system_instruction".into(), json!({ "parts": system }));
    }
    if !gen.is_empty() {
        out.insert("generation_config".into(), Value::Object(gen));
    }
    if let Some(tools) = tools {
        let decls = function_declarations(tools)?;
        if !decls.is_empty() {
            out.insert("tools".into(), json!([{ "function_declarations": decls }]));
        }
    }
    if let Some(choice) = tool_choice {
        out.insert("tool_config".into(), tool_config(choice)?);
    }
    Ok(Value::Object(out))
}

fn response_format(value: Value, gen: &mut Map<String, Value>) -> Result<(), ProxyError> {
    let Value::Object(mut rf) = value else {
        return Err(
            ProxyError::bad_request("'response_format' must be an object")
                .with_param("response_format"),
        );
    };
    match rf.get("type").and_then(Value::as_str) {
        Some("text") => {}
        Some("json_object") => {
            gen.insert("responseMimeType".into(), "application/json".into());
        }
        Some("json_schema") => {
            let schema = rf
                .remove("json_schema")
                .and_then(|mut js| js.as_object_mut().and_then(|o| o.remove("schema")))
                .filter(|s| !s.is_null())
                .ok_or_else(|| {
                    ProxyError::bad_request("'response_format.json_schema.schema' is required")
                        .with_param("response_format")
                })?;
            gen.insert("responseMimeType".into(), "application/json".into());
            gen.insert("responseJsonSchema".into(), schema);
        }
        Some(other) => return Err(unsupported(&format!("response_format type '{other}'"))),
        None => {
            return Err(
                ProxyError::bad_request("'response_format.type' is required")
                    .with_param("response_format"),
            )
        }
    }
    Ok(())
}

/// Messages → (`contents`, `system_instruction.parts`).
fn translate_messages(
    messages: Vec<Value>,
    replay_sentinel: bool,
) -> Result<(Vec<Turn>, Vec<Value>), ProxyError> {
    let mut contents: Vec<Turn> = Vec::new();
    let mut system: Vec<Value> = Vec::new();
    // tool_call_id → function name, from the assistant messages of this request.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for (i, msg) in messages.into_iter().enumerate() {
        let Value::Object(mut m) = msg else {
            return Err(ProxyError::bad_request(format!(
                "messages[{i}] must be an object"
            )));
        };
        let role = match m.get("role").and_then(Value::as_str) {
            Some(r) => r.to_string(),
            None => {
                return Err(ProxyError::bad_request(format!(
                    "messages[{i}].role must be a string"
                )))
            }
        };
        let content = m.remove("content").filter(|c| !c.is_null());
        match role.as_str() {
            "system" | "developer" => {
                for text in text_pieces(content, i, &role)? {
                    system.push(json!({ "text": text }));
                }
            }
            "user" => {
                let parts = user_parts(content, i)?;
                let parts = if parts.is_empty() {
                    vec![json!({"text": ""})]
                } else {
                    parts
                };
                push_turn(&mut contents, "user", parts);
            }
            "assistant" => {
                if m.get("function_call").is_some_and(|v| !v.is_null()) {
                    return Err(unsupported(
                        "the deprecated assistant 'function_call' field",
                    ));
                }
                if m.get("audio").is_some_and(|v| !v.is_null()) {
                    return Err(unsupported("assistant audio in messages"));
                }
                let mut parts: Vec<Value> = text_pieces(content, i, &role)?
                    .into_iter()
                    .filter(|t| !t.is_empty())
                    .map(|t| json!({ "text": t }))
                    .collect();
                if let Some(calls) = m.remove("tool_calls").filter(|v| !v.is_null()) {
                    function_call_parts(calls, i, replay_sentinel, &mut call_names, &mut parts)?;
                }
                push_turn(&mut contents, "model", parts);
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ProxyError::bad_request(format!(
                            "messages[{i}].tool_call_id must be a string"
                        ))
                    })?;
                let name = call_names.get(id).cloned().ok_or_else(|| {
                    ProxyError::bad_request(format!(
                        "messages[{i}].tool_call_id '{id}' matches no tool call of an earlier assistant message"
                    ))
                })?;
                let text: String = text_pieces(content, i, &role)?.concat();
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({ "output": text }),
                };
                push_turn(
                    &mut contents,
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                );
            }
            "function" => return Err(unsupported("the deprecated 'function' message role")),
            other => {
                return Err(ProxyError::bad_request(format!(
                    "messages[{i}].role '{other}' is not a chat message role"
                )))
            }
        }
    }
    if contents.is_empty() {
        return Err(
            ProxyError::bad_request("at least one user or assistant message is required")
                .with_param("messages"),
        );
    }
    Ok((contents, system))
}

/// The text of a system/assistant/tool message: a string, or an array of text (or refusal) parts.
fn text_pieces(content: Option<Value>, i: usize, role: &str) -> Result<Vec<String>, ProxyError> {
    match content {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(parts)) => parts
            .into_iter()
            .map(|p| {
                let kind = p
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let key = match kind.as_str() {
                    "text" => "text",
                    "refusal" if role == "assistant" => "refusal",
                    other => {
                        return Err(unsupported(&format!(
                            "content part type '{other}' in a {role} message"
                        )))
                    }
                };
                match p {
                    Value::Object(mut o) => match o.remove(key) {
                        Some(Value::String(s)) => Ok(s),
                        _ => Err(ProxyError::bad_request(format!(
                            "messages[{i}].content has a '{kind}' part without a string '{key}'"
                        ))),
                    },
                    _ => Err(ProxyError::bad_request(format!(
                        "messages[{i}].content parts must be objects"
                    ))),
                }
            })
            .collect(),
        Some(_) => Err(ProxyError::bad_request(format!(
            "messages[{i}].content must be a string or an array"
        ))),
    }
}

fn user_parts(content: Option<Value>, i: usize) -> Result<Vec<Value>, ProxyError> {
    match content {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![json!({ "text": s })]),
        Some(Value::Array(parts)) => parts.into_iter().map(|p| user_part(p, i)).collect(),
        Some(_) => Err(ProxyError::bad_request(format!(
            "messages[{i}].content must be a string or an array"
        ))),
    }
}

fn user_part(part: Value, i: usize) -> Result<Value, ProxyError> {
    let Value::Object(mut p) = part else {
        return Err(ProxyError::bad_request(format!(
            "messages[{i}].content parts must be objects"
        )));
    };
    let bad = |what: &str| ProxyError::bad_request(format!("messages[{i}].content: {what}"));
    let kind = p
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match kind.as_str() {
        "text" => match p.remove("text") {
            Some(Value::String(s)) => Ok(json!({ "text": s })),
            _ => Err(bad("a text part needs a string 'text'")),
        },
        "image_url" => {
            let url = match p.remove("image_url") {
                Some(Value::Object(mut o)) => o.remove("url"),
                Some(Value::String(s)) => Some(Value::String(s)),
                _ => None,
            };
            let Some(Value::String(url)) = url else {
                return Err(bad("an image_url part needs 'image_url.url'"));
            };
            if url.starts_with("data:") {
                inline_data_from_data_url(url).ok_or_else(|| {
                    bad("image data URLs must look like data:<mime type>;base64,<data>")
                })
            } else if is_files_api_uri(&url) {
                Ok(json!({"file_data": {"file_uri": url}}))
            } else {
                Err(unsupported(
                    "image_url with an http(s) URL (Gemini takes inline base64 data URLs, or a \
                     Files API URI via file_data; upload the image with the Files API first)",
                ))
            }
        }
        "input_audio" => {
            let Some(Value::Object(mut a)) = p.remove("input_audio") else {
                return Err(bad("an input_audio part needs 'input_audio'"));
            };
            let (Some(Value::String(data)), Some(Value::String(format))) =
                (a.remove("data"), a.remove("format"))
            else {
                return Err(bad("input_audio needs string 'data' and 'format'"));
            };
            Ok(json!({"inline_data": {"mime_type": format!("audio/{format}"), "data": data}}))
        }
        "file" => {
            let Some(Value::Object(mut f)) = p.remove("file") else {
                return Err(bad("a file part needs 'file'"));
            };
            match f.remove("file_data") {
                Some(Value::String(url)) if url.starts_with("data:") => {
                    inline_data_from_data_url(url).ok_or_else(|| {
                        bad("file_data must look like data:<mime type>;base64,<data>")
                    })
                }
                Some(_) => Err(bad(
                    "file_data must be a data:<mime type>;base64,<data> URL",
                )),
                None => Err(unsupported("file parts by file_id")),
            }
        }
        other => Err(unsupported(&format!("content part type '{other}'"))),
    }
}

/// `data:<mime>[;params];base64,<data>` → `inline_data`, reusing the URL's buffer for the data.
fn inline_data_from_data_url(mut url: String) -> Option<Value> {
    let comma = url.find(',')?;
    let header = &url["data:".len()..comma];
    let mut params = header.split(';');
    let mime = params.next()?.trim().to_string();
    if mime.is_empty() || !params.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
        return None;
    }
    url.replace_range(..=comma, "");
    Some(json!({"inline_data": {"mime_type": mime, "data": url}}))
}

/// A file uploaded through the Gemini Files API (`https://generativelanguage.googleapis.com/
/// v1beta/files/<id>`), the only kind of URI `file_data` accepts here.
fn is_files_api_uri(url: &str) -> bool {
    url.strip_prefix("https://generativelanguage.googleapis.com/")
        .is_some_and(|rest| rest.contains("files/"))
}

fn function_call_parts(
    calls: Value,
    i: usize,
    replay_sentinel: bool,
    call_names: &mut HashMap<String, String>,
    parts: &mut Vec<Value>,
) -> Result<(), ProxyError> {
    let Value::Array(calls) = calls else {
        return Err(ProxyError::bad_request(format!(
            "messages[{i}].tool_calls must be an array"
        )));
    };
    let first = parts.len();
    let mut any_signature = false;
    for call in calls {
        let bad = |what: &str| ProxyError::bad_request(format!("messages[{i}].tool_calls: {what}"));
        let kind = call
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("function");
        if kind != "function" {
            return Err(unsupported(&format!("tool call type '{kind}'")));
        }
        let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
        let func = call
            .get("function")
            .ok_or_else(|| bad("a call needs 'function'"))?;
        let name = func
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a call needs 'function.name'"))?;
        let args = match func.get("arguments") {
            None | Some(Value::Null) => json!({}),
            Some(Value::String(s)) if s.trim().is_empty() => json!({}),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(v @ Value::Object(_)) => v,
                _ => return Err(bad("'function.arguments' must be a JSON object string")),
            },
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Err(bad("'function.arguments' must be a JSON object string")),
        };
        let mut part = Map::new();
        part.insert("functionCall".into(), json!({"name": name, "args": args}));
        if let Some(sig) = call
            .pointer("/extra_content/google/thought_signature")
            .and_then(Value::as_str)
        {
            any_signature = true;
            part.insert("thoughtSignature".into(), sig.into());
        }
        call_names.insert(id.to_string(), name.to_string());
        parts.push(Value::Object(part));
    }
    if replay_sentinel && !any_signature {
        if let Some(Value::Object(p)) = parts.get_mut(first) {
            p.insert("thoughtSignature".into(), SKIP_SIGNATURE.into());
        }
    }
    Ok(())
}

fn function_declarations(tools: Value) -> Result<Vec<Value>, ProxyError> {
    let Value::Array(tools) = tools else {
        return Err(ProxyError::bad_request("'tools' must be an array").with_param("tools"));
    };
    tools
        .into_iter()
        .map(|tool| {
            let Value::Object(mut t) = tool else {
                return Err(ProxyError::bad_request("'tools' entries must be objects"));
            };
            match t.get("type").and_then(Value::as_str) {
                Some("function") => {}
                Some(other) => return Err(unsupported(&format!("tool type '{other}'"))),
                None => return Err(ProxyError::bad_request("a tool needs a 'type'")),
            }
            let Some(Value::Object(mut f)) = t.remove("function") else {
                return Err(ProxyError::bad_request("a function tool needs 'function'"));
            };
            let name = match f.remove("name") {
                Some(Value::String(n)) => n,
                _ => return Err(ProxyError::bad_request("a function tool needs a 'name'")),
            };
            let mut decl = Map::new();
            decl.insert("name".into(), name.into());
            if let Some(d) = f.remove("description").filter(|d| !d.is_null()) {
                decl.insert("description".into(), d);
            }
            // A function without arguments: Gemini rejects an OBJECT schema with no properties.
            if let Some(params) = f.remove("parameters").filter(|p| {
                !p.is_null()
                    && p.get("properties")
                        .and_then(Value::as_object)
                        .is_some_and(|props| !props.is_empty())
            }) {
                decl.insert("parameters".into(), params);
            }
            Ok(Value::Object(decl))
        })
        .collect()
}

fn tool_config(choice: Value) -> Result<Value, ProxyError> {
    let config = match &choice {
        Value::String(s) => match s.as_str() {
            "auto" => json!({"mode": "AUTO"}),
            "none" => json!({"mode": "NONE"}),
            "required" => json!({"mode": "ANY"}),
            other => {
                return Err(ProxyError::bad_request(format!(
                    "tool_choice '{other}' is not one of auto, none, required"
                ))
                .with_param("tool_choice"))
            }
        },
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = choice
                    .pointer("/function/name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ProxyError::bad_request("tool_choice.function.name is required")
                            .with_param("tool_choice")
                    })?;
                json!({"mode": "ANY", "allowed_function_names": [name]})
            }
            Some("allowed_tools") => {
                let at = choice.get("allowed_tools");
                if at.and_then(|a| a.get("mode")).and_then(Value::as_str) != Some("required") {
                    return Err(unsupported(
                        "tool_choice allowed_tools with mode 'auto' (Gemini restricts function \
                         names only in mode ANY)",
                    ));
                }
                let names: Vec<Value> = at
                    .and_then(|a| a.get("tools"))
                    .and_then(Value::as_array)
                    .map(|ts| {
                        ts.iter()
                            .filter_map(|t| t.pointer("/function/name").cloned())
                            .collect()
                    })
                    .unwrap_or_default();
                json!({"mode": "ANY", "allowed_function_names": names})
            }
            Some(other) => return Err(unsupported(&format!("tool_choice type '{other}'"))),
            None => {
                return Err(ProxyError::bad_request("tool_choice.type is required")
                    .with_param("tool_choice"))
            }
        },
        _ => {
            return Err(
                ProxyError::bad_request("'tool_choice' must be a string or an object")
                    .with_param("tool_choice"),
            )
        }
    };
    Ok(json!({ "function_calling_config": config }))
}

// ---------------------------------------------------------------------------------------------
// Embeddings request
// ---------------------------------------------------------------------------------------------

fn translate_embeddings(resource: &str, body: &mut Value) -> Result<Value, ProxyError> {
    let obj = take_object(body)?;
    let mut input = None;
    let mut dimensions = None;
    for (key, value) in obj {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "model" | "user" => {}
            "input" => input = Some(value),
            "dimensions" => dimensions = Some(value),
            // The core gives the translator no request fields, so base64 cannot be honoured;
            // floats are returned, which the OpenAI SDKs (which ask for base64 by default) accept.
            "encoding_format" => match value.as_str() {
                Some("float" | "base64") => {}
                _ => {
                    return Err(ProxyError::bad_request(
                        "'encoding_format' must be 'float' or 'base64'",
                    )
                    .with_param("encoding_format"))
                }
            },
            other => return Err(unsupported(&format!("the '{other}' embeddings parameter"))),
        }
    }
    let texts: Vec<String> = match input {
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(unsupported("token-array embeddings input")),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(
                ProxyError::bad_request("'input' must be a string or an array of strings")
                    .with_param("input"),
            )
        }
    };
    if texts.is_empty() {
        return Err(ProxyError::bad_request("'input' must not be empty").with_param("input"));
    }
    let requests: Vec<Value> = texts
        .into_iter()
        .map(|text| {
            let mut r = Map::new();
            r.insert("model".into(), resource.into());
            r.insert("content".into(), json!({"parts": [{"text": text}]}));
            if let Some(d) = &dimensions {
                r.insert("outputDimensionality".into(), d.clone());
            }
            Value::Object(r)
        })
        .collect();
    Ok(json!({ "requests": requests }))
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// The `error` object of a Google error body (`{"error":{...}}` or `[{"error":{...}}]`).
fn error_object(v: &Value) -> Option<&Map<String, Value>> {
    match v {
        Value::Object(o) => o.get("error")?.as_object(),
        Value::Array(a) => a.first()?.get("error")?.as_object(),
        _ => None,
    }
}

/// Google's error model → OpenAI's error, with `status` (e.g. `INVALID_ARGUMENT`) as the code.
fn google_error(status: u16, e: &Map<String, Value>) -> ProxyError {
    let message = match e.get("message") {
        Some(Value::String(s)) if !s.is_empty() => openai::truncate(s, 4096),
        _ => format!("upstream returned HTTP {status}"),
    };
    let mut err = ProxyError::new(status, error_type_for_status(status), message);
    err.code = match (e.get("status"), e.get("code")) {
        (Some(Value::String(s)), _) if !s.is_empty() => Some(s.clone()),
        (_, Some(Value::Number(n))) => Some(n.to_string()),
        _ => None,
    };
    err
}

/// An error carried inside a 2xx body or stream event: its own `code` is the status when it is one.
fn embedded_error(e: &Map<String, Value>) -> ProxyError {
    let status = e
        .get("code")
        .and_then(Value::as_u64)
        .filter(|c| (400..600).contains(c))
        .map_or(500, |c| c as u16);
    google_error(status, e)
}

fn prompt_blocked(v: &Value) -> Option<ProxyError> {
    let reason = v.pointer("/promptFeedback/blockReason")?.as_str()?;
    Some(
        ProxyError::bad_request(format!(
            "the prompt was blocked by Gemini (blockReason {reason})"
        ))
        .with_code("prompt_blocked"),
    )
}

fn finish_reason(gemini: &str, has_tool_calls: bool) -> &'static str {
    if has_tool_calls {
        return "tool_calls";
    }
    match gemini {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ => "stop",
    }
}

/// `usageMetadata` → usage; thinking tokens count as completion tokens, as in OpenAI's usage.
fn usage_of(v: &Value) -> Option<Usage> {
    let um = v.get("usageMetadata")?.as_object()?;
    let get = |k: &str| um.get(k).and_then(Value::as_u64);
    let prompt = get("promptTokenCount").unwrap_or(0);
    let completion =
        get("candidatesTokenCount").unwrap_or(0) + get("thoughtsTokenCount").unwrap_or(0);
    Some(Usage::new(prompt, completion, get("totalTokenCount")))
}

fn response_model<'a>(v: &'a Value, fallback: &'a str) -> &'a str {
    v.get("modelVersion")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .unwrap_or(fallback)
}

/// An OpenAI tool call from a Gemini `functionCall` part.
fn tool_call(part: &Value, call: &Value, id: String, index: Option<usize>) -> Value {
    let name = call.get("name").and_then(Value::as_str).unwrap_or_default();
    let args = call
        .get("args")
        .filter(|a| !a.is_null())
        .map_or_else(|| "{}".to_string(), Value::to_string);
    let mut tc = Map::new();
    if let Some(i) = index {
        tc.insert("index".into(), i.into());
    }
    tc.insert("id".into(), id.into());
    tc.insert("type".into(), "function".into());
    tc.insert("function".into(), json!({"name": name, "arguments": args}));
    if let Some(sig) = part.get("thoughtSignature").and_then(Value::as_str) {
        tc.insert(
            "extra_content".into(),
            json!({"google": {"thought_signature": sig}}),
        );
    }
    Value::Object(tc)
}

/// The visible parts of a candidate (thought summaries are not part of the answer).
fn answer_parts(candidate: &Value) -> impl Iterator<Item = &Value> {
    candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
}

#[derive(Debug, Default, Clone)]
struct CandidateState {
    started: bool,
    tool_calls: usize,
    finished: bool,
}

/// Per-exchange state: the stream identity, one small record per candidate, the call counter and
/// the latest (cumulative) usage. Never the stream's content.
struct GeminiTranslator {
    api: Api,
    model: String,
    include_usage: bool,
    meta: Option<StreamMeta>,
    candidates: Vec<CandidateState>,
    next_call: u64,
    usage: Option<Usage>,
    done: bool,
}

impl GeminiTranslator {
    fn new_call_id(&mut self) -> String {
        self.next_call += 1;
        format!("call_{}", self.next_call)
    }

    fn chat_body(&mut self, v: &Value, out: &mut Vec<u8>) -> Result<(), ProxyError> {
        self.usage = usage_of(v);
        let candidates = v
            .get("candidates")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if candidates.is_empty() {
            return Err(prompt_blocked(v)
                .unwrap_or_else(|| ProxyError::bad_upstream("Gemini returned no candidates")));
        }
        let mut choices: Vec<(usize, Value)> = Vec::with_capacity(candidates.len());
        for (pos, cand) in candidates.iter().enumerate() {
            let index = cand
                .get("index")
                .and_then(Value::as_u64)
                .map_or(pos, |i| i as usize);
            let mut text: Option<String> = None;
            let mut calls = Vec::new();
            for part in answer_parts(cand) {
                if let Some(t) = part.get("text").and_then(Value::as_str) {
                    text.get_or_insert_with(String::new).push_str(t);
                } else if let Some(call) = part.get("functionCall") {
                    let id = self.new_call_id();
                    calls.push(tool_call(part, call, id, None));
                }
            }
            let reason = finish_reason(
                cand.get("finishReason")
                    .and_then(Value::as_str)
                    .unwrap_or("STOP"),
                !calls.is_empty(),
            );
            let content = match (text, calls.is_empty()) {
                (Some(t), _) => Some(t),
                (None, true) => Some(String::new()),
                (None, false) => None,
            };
            let tool_calls = (!calls.is_empty()).then_some(Value::Array(calls));
            let message = openai::assistant_message(content, tool_calls);
            choices.push((index, openai::completion_choice(index, message, reason)));
        }
        choices.sort_by_key(|(i, _)| *i);
        let body = openai::completion(
            openai::new_completion_id(),
            openai::now_secs(),
            response_model(v, &self.model),
            choices.into_iter().map(|(_, c)| c).collect(),
            Some(&self.usage.unwrap_or_default()),
        );
        serde_json::to_writer(&mut *out, &body).expect("serialising to a Vec cannot fail");
        Ok(())
    }

    fn embeddings_body(&mut self, v: &Value, out: &mut Vec<u8>) -> Result<(), ProxyError> {
        let Some(items) = v.get("embeddings").and_then(Value::as_array) else {
            return Err(ProxyError::bad_upstream(
                "Gemini embeddings response has no 'embeddings' array",
            ));
        };
        let vectors: Vec<Value> = items
            .iter()
            .map(|e| e.get("values").cloned().unwrap_or_else(|| json!([])))
            .collect();
        // The Gemini API sends no usage for embeddings (Vertex-style `usageMetadata` is read if
        // present); the body then says 0 and `usage()` stays unknown.
        self.usage = v
            .pointer("/usageMetadata/promptTokenCount")
            .and_then(Value::as_u64)
            .map(|p| Usage::new(p, 0, Some(p)));
        let body = openai::embedding_list(
            response_model(v, &self.model),
            vectors,
            &self.usage.unwrap_or_default(),
        );
        serde_json::to_writer(&mut *out, &body).expect("serialising to a Vec cannot fail");
        Ok(())
    }

    fn stream_response(&mut self, v: &Value, out: &mut Vec<u8>) -> Result<(), ProxyError> {
        if let Some(e) = error_object(v) {
            openai::write_stream_error(out, &embedded_error(e));
            return Ok(());
        }
        if let Some(u) = usage_of(v) {
            self.usage = Some(u);
        }
        if self.meta.is_none() {
            self.meta = Some(StreamMeta::new(response_model(v, &self.model)));
        }
        let candidates = v
            .get("candidates")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if candidates.is_empty() {
            if let Some(err) = prompt_blocked(v) {
                openai::write_stream_error(out, &err);
            }
            return Ok(());
        }
        for (pos, cand) in candidates.iter().enumerate() {
            let index = cand
                .get("index")
                .and_then(Value::as_u64)
                .map_or(pos, |i| i as usize);
            if index >= MAX_CANDIDATES {
                return Err(ProxyError::bad_upstream(format!(
                    "Gemini stream candidate index {index} is out of range"
                )));
            }
            if self.candidates.len() <= index {
                self.candidates.resize(index + 1, CandidateState::default());
            }
            if self.candidates[index].finished {
                continue;
            }
            let meta = self.meta.as_ref().expect("set above");
            let choice = index as u32;
            if !self.candidates[index].started {
                self.candidates[index].started = true;
                meta.write_chunk(
                    out,
                    choice,
                    &Delta {
                        role: Some("assistant"),
                        content: Some(""),
                        ..Default::default()
                    },
                    None,
                );
            }
            for part in answer_parts(cand) {
                if let Some(t) = part.get("text").and_then(Value::as_str) {
                    if !t.is_empty() {
                        meta.write_chunk(
                            out,
                            choice,
                            &Delta {
                                content: Some(t),
                                ..Default::default()
                            },
                            None,
                        );
                    }
                } else if let Some(call) = part.get("functionCall") {
                    self.next_call += 1;
                    let id = format!("call_{}", self.next_call);
                    let state = &mut self.candidates[index];
                    let tc = tool_call(part, call, id, Some(state.tool_calls));
                    state.tool_calls += 1;
                    let calls = Value::Array(vec![tc]);
                    meta.write_chunk(
                        out,
                        choice,
                        &Delta {
                            tool_calls: Some(&calls),
                            ..Default::default()
                        },
                        None,
                    );
                }
            }
            if let Some(reason) = cand.get("finishReason").and_then(Value::as_str) {
                let state = &mut self.candidates[index];
                state.finished = true;
                let reason = finish_reason(reason, state.tool_calls > 0);
                meta.write_chunk(out, choice, &Delta::default(), Some(reason));
            }
        }
        Ok(())
    }
}

impl ResponseTranslator for GeminiTranslator {
    fn legacy_on_event(
        &mut self,
        event: SseEvent<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), ProxyError> {
        let data = event.data.trim_ascii();
        if data.is_empty() || data == b"[DONE]" || self.done {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(data).map_err(|e| {
            ProxyError::bad_upstream(format!("Gemini stream event is not JSON: {e}"))
        })?;
        self.stream_response(&v, out)
    }

    fn legacy_on_stream_end(&mut self, out: &mut Vec<u8>) -> Result<(), ProxyError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        if self.include_usage {
            if let Some(usage) = self.usage {
                let meta = self
                    .meta
                    .get_or_insert_with(|| StreamMeta::new(&self.model));
                meta.write_usage_chunk(out, &usage);
            }
        }
        sse::write_done(out);
        Ok(())
    }

    fn legacy_on_body(&mut self, body: &[u8], out: &mut Vec<u8>) -> Result<(), ProxyError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ProxyError::bad_upstream(format!("Gemini body is not JSON: {e}")))?;
        if let Some(e) = error_object(&v) {
            return Err(embedded_error(e));
        }
        if !v.is_object() {
            return Err(ProxyError::bad_upstream("Gemini body is not a JSON object"));
        }
        match self.api {
            Api::ChatCompletions => self.chat_body(&v, out),
            Api::Embeddings => self.embeddings_body(&v, out),
        }
    }

    fn on_error(&mut self, status: u16, body: &[u8]) -> ProxyError {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => match error_object(&v) {
                Some(e) => google_error(status, e),
                None => openai::upstream_error(status, body),
            },
            Err(_) => openai::upstream_error(status, body),
        }
    }

    fn legacy_usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use crate::exchange::{Config, Exchange, RequestAction, ResponseMode};
    use crate::testutil::*;
    use serde_json::{json, Value};
    use std::sync::Arc;

    const KEY: &str = "AIza-test-secret-key";

    fn cfg(extra: Value) -> Arc<Config> {
        let mut p = json!({
            "type": "gemini",
            "apiTokens": [KEY],
            "modelMapping": {"*": "gemini-2.0-flash"},
        });
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        config(&json!({ "provider": p }).to_string())
    }

    fn chat(body: Value) -> (Exchange, crate::exchange::UpstreamRequest, Value) {
        let (ex, up) = forward(&cfg(json!({})), "/v1/chat/completions", &body.to_string());
        let b = upstream_json(&up);
        (ex, up, b)
    }

    /// The request's local reply (an OpenAI error), validated.
    fn rejected(c: &Arc<Config>, path: &str, body: Value) -> (u16, Value) {
        let (status, v) = crate::testutil::local_reply(c, path, &body.to_string());
        assert!(!v.to_string().contains(KEY));
        (status, v)
    }

    fn parse(out: &[u8]) -> Value {
        serde_json::from_slice(out).unwrap()
    }

    // Mirrors GenerateContentResponse in https://ai.google.dev/api/generate-content (REST
    // "Response body" and the text-generation guide's curl output).
    const TEXT_RESPONSE: &str = r#"{
      "candidates": [{
        "content": {"parts": [{"text": "I am a large language model, "}, {"text": "trained by Google."}], "role": "model"},
        "finishReason": "STOP",
        "index": 0,
        "safetyRatings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"}]
      }],
      "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 29, "totalTokenCount": 34},
      "modelVersion": "gemini-2.0-flash-001",
      "responseId": "abc123"
    }"#;

    // Mirrors the function-calling guide's REST response (https://ai.google.dev/gemini-api/docs/
    // function-calling): a model turn whose part is {"functionCall": {"name", "args"}}, plus the
    // Gemini 3 `thoughtSignature` sibling (https://ai.google.dev/gemini-api/docs/thought-signatures).
    const CALL_RESPONSE: &str = r#"{
      "candidates": [{
        "content": {"role": "model", "parts": [
          {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "c"}}, "thoughtSignature": "c2lnLTE="},
          {"functionCall": {"name": "get_time", "args": {"tz": "CET"}}}
        ]},
        "finishReason": "STOP",
        "index": 0
      }],
      "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 12, "thoughtsTokenCount": 8, "totalTokenCount": 60}
    }"#;

    // Mirrors streamGenerateContent?alt=sse as shown in the REST streaming quickstart
    // (google-gemini/cookbook quickstarts/rest/Streaming_REST): one GenerateContentResponse per
    // `data:` event, CRLF framing, usageMetadata cumulative on every event, no [DONE].
    const STREAM: &str = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 3,\"candidatesTokenCount\": 1,\"totalTokenCount\": 4},\"modelVersion\": \"gemini-2.0-flash-001\"}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"lo, wörld\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 3,\"candidatesTokenCount\": 3,\"totalTokenCount\": 6},\"modelVersion\": \"gemini-2.0-flash-001\"}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"!\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 3,\"candidatesTokenCount\": 4,\"totalTokenCount\": 7},\"modelVersion\": \"gemini-2.0-flash-001\"}\r\n\r\n";

    // Same framing, with a whole functionCall part in the last event (the function-calling guide's
    // streaming behaviour: calls arrive complete, never split across events).
    const STREAM_CALL: &str = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Checking.\"}],\"role\": \"model\"},\"index\": 0}]}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\",\"args\": {\"city\": \"Paris\"}},\"thoughtSignature\": \"c2ln\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 20,\"candidatesTokenCount\": 6,\"totalTokenCount\": 26}}\r\n\r\n";

    // Google's error model as the Gemini troubleshooting page documents it
    // (https://ai.google.dev/gemini-api/docs/troubleshooting).
    const ERROR_400: &str = r#"{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}"#;

    #[test]
    fn chat_text_request_host_path_auth_and_generation_config() {
        let c = cfg(json!({"geminiSafetySetting": {
            "HARM_CATEGORY_SEXUALLY_EXPLICIT": "BLOCK_NONE",
            "HARM_CATEGORY_HATE_SPEECH": "BLOCK_ONLY_HIGH",
            "HARM_CATEGORY_HARASSMENT": "BLOCK_NONE"
        }}));
        let body = json!({
            "model": "gpt-4o", "messages": [{"role": "user", "content": "Who are you?"}],
            "temperature": 0.2, "top_p": 0.9, "top_k": 40, "max_tokens": 100, "stop": "END",
            "n": 2, "seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.25, "user": "u1",
            "stream": false
        });
        let (ex, up) = forward(&c, "/v1/chat/completions", &body.to_string());
        assert_eq!(up.authority, "generativelanguage.googleapis.com");
        assert_eq!(up.path, "/v1beta/models/gemini-2.0-flash:generateContent");
        assert_eq!(header(&up, "x-goog-api-key"), Some(KEY));
        assert!(header(&up, "authorization").is_none());
        assert!(up.remove_headers.contains(&"authorization"));
        assert_eq!(ex.model_sent(), "gemini-2.0-flash");
        let b = upstream_json(&up);
        assert_eq!(
            b["contents"],
            json!([{"role": "user", "parts": [{"text": "Who are you?"}]}])
        );
        assert_eq!(
            b["generation_config"],
            json!({"temperature": 0.2, "topP": 0.9, "topK": 40, "stopSequences": ["END"],
                   "candidateCount": 2, "seed": 7, "presencePenalty": 0.5,
                   "frequencyPenalty": 0.25, "maxOutputTokens": 100})
        );
        assert_eq!(
            b["safetySettings"],
            json!([
                {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "threshold": "BLOCK_NONE"},
                {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"},
                {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
            ])
        );
        assert!(b.get("model").is_none() && b.get("messages").is_none());

        // max_completion_tokens wins over max_tokens; stop arrays pass through; streaming path.
        let (_, up, b) = chat(json!({"model": "m", "stream": true, "max_tokens": 5,
            "max_completion_tokens": 9, "stop": ["a", "b"],
            "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(
            up.path,
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(b["generation_config"]["maxOutputTokens"], 9);
        assert_eq!(b["generation_config"]["stopSequences"], json!(["a", "b"]));
        assert!(b.get("safetySettings").is_none());
    }

    #[test]
    fn model_names_become_resource_paths() {
        for (mapped, path) in [
            (
                "models/gemini-1.5-pro",
                "/v1beta/models/gemini-1.5-pro:generateContent",
            ),
            (
                "tunedModels/my-tune-01",
                "/v1beta/tunedModels/my-tune-01:generateContent",
            ),
        ] {
            let c = cfg(json!({"modelMapping": {"*": mapped}}));
            let (_, up) = forward(
                &c,
                "/v1/chat/completions",
                r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
            );
            assert_eq!(up.path, path);
        }
        for bad in ["../files", "gemini:generateContent?x=1", "a/b", "models/"] {
            let c = cfg(json!({"modelMapping": {"*": bad}}));
            let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
            let (status, err) = rejected(&c, "/v1/chat/completions", body);
            assert_eq!(
                (status, err["error"]["param"].as_str()),
                (400, Some("model")),
                "{bad}"
            );
        }
    }

    #[test]
    fn multi_turn_with_system_and_developer_messages() {
        let (_, _, b) = chat(json!({"model": "m", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Bonjour !"},
            {"role": "user", "content": "How are you?"},
            {"role": "user", "content": [{"type": "text", "text": "And the weather?"}]}
        ]}));
        assert_eq!(
            b["system_instruction"],
            json!({"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]})
        );
        assert_eq!(
            b["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Bonjour !"}]},
                {"role": "user", "parts": [{"text": "How are you?"}, {"text": "And the weather?"}]}
            ])
        );
        let (status, err) = rejected(
            &cfg(json!({})),
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "system", "content": "only"}]}),
        );
        assert_eq!(status, 400);
        assert!(err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("user or assistant"));
    }

    #[test]
    fn images_and_audio_become_inline_data() {
        let (_, _, b) = chat(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://generativelanguage.googleapis.com/v1beta/files/abc123"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}}
            ]}]}),
        );
        assert_eq!(
            b["contents"][0]["parts"],
            json!([
                {"text": "What is this?"},
                {"inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgo="}},
                {"file_data": {"file_uri": "https://generativelanguage.googleapis.com/v1beta/files/abc123"}},
                {"inline_data": {"mime_type": "audio/wav", "data": "UklGRg=="}},
                {"inline_data": {"mime_type": "application/pdf", "data": "JVBERi0="}}
            ])
        );
        let c = cfg(json!({}));
        let (status, err) = rejected(
            &c,
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}),
        );
        assert_eq!(status, 400);
        assert_eq!(err["error"]["code"], "unsupported_feature");
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("image_url with an http(s) URL") && msg.contains("gemini"),
            "{msg}"
        );
        let (status, _) = rejected(
            &c,
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}}]}]}),
        );
        assert_eq!(status, 400);
    }

    #[test]
    fn tools_tool_choice_calls_and_results() {
        let (_, _, b) = chat(json!({"model": "m",
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
            {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "messages": [
            {"role": "user", "content": "Weather in Paris and time?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp\": 21}"},
            {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
            {"role": "user", "content": "Thanks"}
        ]}));
        assert_eq!(
            b["tools"],
            json!([{"function_declarations": [
                {"name": "get_weather", "description": "Weather",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                {"name": "now"}
            ]}])
        );
        assert_eq!(
            b["tool_config"],
            json!({"function_calling_config": {"mode": "ANY", "allowed_function_names": ["get_weather"]}})
        );
        assert_eq!(
            b["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Weather in Paris and time?"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "now", "args": {}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                    {"functionResponse": {"name": "now", "response": {"output": "12:00"}}},
                    {"text": "Thanks"}
                ]}
            ])
        );
        for (choice, want) in [
            (json!("auto"), json!({"mode": "AUTO"})),
            (json!("none"), json!({"mode": "NONE"})),
            (json!("required"), json!({"mode": "ANY"})),
        ] {
            let (_, _, b) = chat(json!({"model": "m", "tool_choice": choice,
                "messages": [{"role": "user", "content": "x"}]}));
            assert_eq!(b["tool_config"]["function_calling_config"], want);
        }
        let (status, err) = rejected(
            &cfg(json!({})),
            "/v1/chat/completions",
            json!({"model": "m", "messages": [
                {"role": "user", "content": "x"},
                {"role": "tool", "tool_call_id": "nope", "content": "1"}]}),
        );
        assert_eq!(status, 400);
        assert!(err["error"]["message"].as_str().unwrap().contains("nope"));
    }

    #[test]
    fn thought_signatures_round_trip_and_gemini3_sentinel() {
        let msgs = json!([
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{}"},
                 "extra_content": {"google": {"thought_signature": "c2lnLTE="}}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "assistant", "tool_calls": [
                {"id": "call_2", "type": "function", "function": {"name": "w", "arguments": "{}"}},
                {"id": "call_3", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
            {"role": "tool", "tool_call_id": "call_3", "content": "snow"}
        ]);
        let c3 = cfg(json!({"modelMapping": {"*": "gemini-3-pro-preview"}}));
        let (_, up) = forward(
            &c3,
            "/v1/chat/completions",
            &json!({"model": "m", "messages": msgs}).to_string(),
        );
        let b = upstream_json(&up);
        assert_eq!(b["contents"][1]["parts"][0]["thoughtSignature"], "c2lnLTE=");
        assert_eq!(
            b["contents"][3]["parts"][0]["thoughtSignature"],
            "skip_thought_signature_validator"
        );
        assert!(b["contents"][3]["parts"][1]
            .get("thoughtSignature")
            .is_none());
        // Older models get only what the client sent back.
        let (_, _, b) = chat(json!({"model": "m", "messages": msgs}));
        assert_eq!(b["contents"][1]["parts"][0]["thoughtSignature"], "c2lnLTE=");
        assert!(b["contents"][3]["parts"][0]
            .get("thoughtSignature")
            .is_none());
    }

    #[test]
    fn response_format_maps_to_json_mime_type_and_schema() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}},
            "required": ["a"], "additionalProperties": false});
        let (_, _, b) = chat(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": true, "schema": schema}}}),
        );
        assert_eq!(
            b["generation_config"],
            json!({"responseMimeType": "application/json", "responseJsonSchema": schema})
        );
        let (_, _, b) = chat(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_object"}}),
        );
        assert_eq!(
            b["generation_config"],
            json!({"responseMimeType": "application/json"})
        );
    }

    #[test]
    fn unsupported_parameters_are_400s_naming_the_feature() {
        let c = cfg(json!({}));
        let base = |extra: Value| {
            let mut b = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            b
        };
        for (extra, needle) in [
            (json!({"logprobs": true}), "logprobs"),
            (json!({"top_logprobs": 2}), "top_logprobs"),
            (json!({"logit_bias": {"50256": -100}}), "logit_bias"),
            (json!({"parallel_tool_calls": false}), "parallel_tool_calls"),
            (json!({"functions": [{"name": "f"}]}), "functions"),
            (json!({"modalities": ["text", "audio"]}), "modalities"),
            (json!({"reasoning_effort": "low"}), "reasoning_effort"),
            (
                json!({"tools": [{"type": "custom", "custom": {"name": "c"}}]}),
                "tool type 'custom'",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f1"}}]}]}),
                "file_id",
            ),
        ] {
            let (status, err) = rejected(&c, "/v1/chat/completions", base(extra.clone()));
            assert_eq!(status, 400, "{extra}");
            assert_eq!(err["error"]["code"], "unsupported_feature", "{extra}");
            let msg = err["error"]["message"].as_str().unwrap();
            assert!(msg.contains(needle) && msg.contains("'gemini'"), "{msg}");
        }
        // Harmless defaults are accepted.
        let (_, _, b) = chat(base(json!({"logprobs": false, "parallel_tool_calls": true,
            "logit_bias": {}, "modalities": ["text"], "store": false, "metadata": {"k": "v"}})));
        assert!(b.get("generation_config").is_none());
    }

    #[test]
    fn buffered_text_response() {
        let (mut ex, _, _) = chat(
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Who are you?"}]}),
        );
        let (status, out, mode) = respond(
            &mut ex,
            200,
            "application/json; charset=UTF-8",
            TEXT_RESPONSE.as_bytes(),
        );
        assert_eq!((status, mode), (200, ResponseMode::Buffer));
        let v = parse(&out);
        validate_chat_completion(&v);
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], "gemini-2.0-flash-001");
        assert_eq!(
            v["choices"][0]["message"],
            json!({"role": "assistant", "content": "I am a large language model, trained by Google.", "refusal": null})
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["choices"][0]["logprobs"], Value::Null);
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 5, "completion_tokens": 29, "total_tokens": 34})
        );
        let u = ex.usage().unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (5, 29, 34)
        );
    }

    #[test]
    fn buffered_tool_calls_multiple_candidates_and_finish_reasons() {
        let (mut ex, _, _) =
            chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
        let (_, out, _) = respond(&mut ex, 200, "application/json", CALL_RESPONSE.as_bytes());
        let v = parse(&out);
        validate_chat_completion(&v);
        let msg = &v["choices"][0]["message"];
        assert_eq!(msg["content"], Value::Null);
        assert_eq!(
            msg["tool_calls"],
            json!([
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"unit\":\"c\"}"},
                 "extra_content": {"google": {"thought_signature": "c2lnLTE="}}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{\"tz\":\"CET\"}"}}
            ])
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["model"], "gemini-2.0-flash");
        // Thinking tokens are completion tokens; the total is Gemini's.
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60})
        );

        // n=2: candidates by index (given out of order); a safety stop is content_filter.
        let two = r#"{"candidates": [
            {"content": {"parts": [{"text": "B"}], "role": "model"}, "finishReason": "MAX_TOKENS", "index": 1},
            {"finishReason": "SAFETY", "index": 0, "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": true}]}
        ], "usageMetadata": {"promptTokenCount": 2, "totalTokenCount": 2}}"#;
        let (mut ex, _, _) =
            chat(json!({"model": "m", "n": 2, "messages": [{"role": "user", "content": "x"}]}));
        let (_, out, _) = respond(&mut ex, 200, "application/json", two.as_bytes());
        let v = parse(&out);
        validate_chat_completion(&v);
        assert_eq!(v["choices"][0]["index"], 0);
        assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(v["choices"][0]["message"]["content"], "");
        assert_eq!(v["choices"][1]["message"]["content"], "B");
        assert_eq!(v["choices"][1]["finish_reason"], "length");
    }

    #[test]
    fn finish_reason_table() {
        for (g, want) in [
            ("STOP", "stop"),
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("RECITATION", "content_filter"),
            ("BLOCKLIST", "content_filter"),
            ("PROHIBITED_CONTENT", "content_filter"),
            ("SPII", "content_filter"),
            ("IMAGE_SAFETY", "content_filter"),
            ("OTHER", "stop"),
            ("MALFORMED_FUNCTION_CALL", "stop"),
        ] {
            assert_eq!(super::finish_reason(g, false), want, "{g}");
            assert_eq!(super::finish_reason(g, true), "tool_calls", "{g}");
        }
    }

    #[test]
    fn blocked_prompt_is_an_openai_error() {
        // Mirrors GenerateContentResponse.promptFeedback (https://ai.google.dev/api/generate-content
        // #PromptFeedback): no candidates, blockReason set.
        let blocked = r#"{"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]}, "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}}"#;
        let (mut ex, _, _) =
            chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
        let (status, out, _) = respond(&mut ex, 200, "application/json", blocked.as_bytes());
        assert_eq!(status, 400);
        let v = parse(&out);
        validate_error(&v);
        assert_eq!(v["error"]["code"], "prompt_blocked");
        assert!(v["error"]["message"].as_str().unwrap().contains("SAFETY"));

        let (mut ex, _, _) = chat(
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
        );
        let sse = format!("data: {blocked}\r\n\r\n");
        let (_, out, mode) = respond(&mut ex, 200, "text/event-stream", sse.as_bytes());
        assert_eq!(mode, ResponseMode::Stream);
        let evs = validate_sse_stream(&out);
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0]["error"]["code"], "prompt_blocked");
    }

    #[test]
    fn streamed_text_with_and_without_usage_chunk() {
        let (mut ex, _, _) = chat(json!({"model": "m", "stream": true,
            "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Hi"}]}));
        let (status, out, mode) = respond(&mut ex, 200, "text/event-stream", STREAM.as_bytes());
        assert_eq!((status, mode), (200, ResponseMode::Stream));
        let evs = validate_sse_stream(&out);
        assert_eq!(
            evs[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(stream_text(&evs), "Hello, wörld!");
        let finish: Vec<&Value> = evs
            .iter()
            .filter(|e| !e["choices"][0]["finish_reason"].is_null())
            .collect();
        assert_eq!(finish.len(), 1);
        assert_eq!(finish[0]["choices"][0]["finish_reason"], "stop");
        let last = evs.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(
            last["usage"],
            json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
        );
        assert!(evs.iter().all(|e| e["model"] == "gemini-2.0-flash-001"));
        let id = evs[0]["id"].as_str().unwrap();
        assert!(id.starts_with("chatcmpl-") && evs.iter().all(|e| e["id"] == id));

        let (mut ex, _, _) = chat(
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
        );
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", STREAM.as_bytes());
        let evs = validate_sse_stream(&out);
        assert!(evs.iter().all(|e| e.get("usage").is_none()));
        assert_eq!(
            ex.usage().unwrap().total_tokens,
            7,
            "usage is recorded anyway"
        );
    }

    #[test]
    fn streamed_tool_call_is_one_complete_delta() {
        let (mut ex, _, _) = chat(
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
        );
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", STREAM_CALL.as_bytes());
        let evs = validate_sse_stream(&out);
        assert_eq!(stream_text(&evs), "Checking.");
        let calls: Vec<&Value> = evs
            .iter()
            .filter_map(|e| e["choices"][0]["delta"].get("tool_calls"))
            .collect();
        assert_eq!(
            calls,
            vec![&json!([{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                "extra_content": {"google": {"thought_signature": "c2ln"}}}])]
        );
        assert_eq!(
            evs.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls"
        );
        assert_eq!(ex.usage().unwrap().total_tokens, 26);
    }

    #[test]
    fn stream_chunking_invariance() {
        let c = cfg(json!({}));
        let body = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Hi"}]})
        .to_string();
        for upstream in [STREAM, STREAM_CALL] {
            assert_chunking_invariant(
                || forward(&c, "/v1/chat/completions", &body).0,
                "text/event-stream",
                upstream.as_bytes(),
            );
        }
    }

    #[test]
    fn upstream_errors_keep_status_and_use_google_status_as_code() {
        let (mut ex, _, _) =
            chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
        let (status, out, mode) = respond(&mut ex, 400, "application/json", ERROR_400.as_bytes());
        assert_eq!((status, mode), (400, ResponseMode::Buffer));
        let v = parse(&out);
        validate_error(&v);
        assert_eq!(v["error"]["code"], "INVALID_ARGUMENT");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(
            v["error"]["message"],
            "API key not valid. Please pass a valid API key."
        );

        // A stream request answered with an error status is buffered and translated the same
        // way; the streaming endpoint may wrap the error in an array.
        let wrapped = r#"[{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}]"#;
        let (mut ex, _, _) = chat(
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
        );
        let (status, out, mode) = respond(&mut ex, 429, "application/json", wrapped.as_bytes());
        assert_eq!((status, mode), (429, ResponseMode::Buffer));
        let v = parse(&out);
        validate_error(&v);
        assert_eq!(
            (v["error"]["code"].as_str(), v["error"]["type"].as_str()),
            (Some("RESOURCE_EXHAUSTED"), Some("rate_limit_error"))
        );

        let (mut ex, _, _) =
            chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
        let (status, out, _) = respond(&mut ex, 503, "text/html", b"<html>overloaded</html>");
        assert_eq!(status, 503);
        validate_error(&parse(&out));

        // An error inside a 200 body keeps its own code as the status.
        let (mut ex, _, _) =
            chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
        let in_200 = r#"{"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}"#;
        let (status, out, _) = respond(&mut ex, 200, "application/json", in_200.as_bytes());
        assert_eq!(status, 500);
        assert_eq!(parse(&out)["error"]["code"], "INTERNAL");
    }

    #[test]
    fn in_stream_error_then_done() {
        let err = r#"{"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}"#;
        let sse = format!(
            "data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"text\": \"Hi\"}}],\"role\": \"model\"}},\"index\": 0}}]}}\r\n\r\ndata: {err}\r\n\r\n"
        );
        let (mut ex, _, _) = chat(
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
        );
        let (status, out, _) = respond(&mut ex, 200, "text/event-stream", sse.as_bytes());
        assert_eq!(status, 200);
        let evs = validate_sse_stream(&out);
        assert_eq!(stream_text(&evs), "Hi");
        let last = evs.last().unwrap();
        assert_eq!(last["error"]["code"], "UNAVAILABLE");
        assert_eq!(last["error"]["type"], "api_error");

        // Garbage mid-stream: an error event and a single [DONE].
        let (mut ex, _, _) = chat(
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
        );
        let (_, out, _) = respond(
            &mut ex,
            200,
            "text/event-stream",
            b"data: {not json\r\n\r\n",
        );
        let evs = validate_sse_stream(&out);
        assert_eq!(evs.len(), 1);
        assert!(evs[0].get("error").is_some());
    }

    #[test]
    fn embeddings_request_and_response() {
        let c = cfg(json!({"modelMapping": {"*": "text-embedding-004"}}));
        let body = json!({"model": "text-embedding-3-small", "input": ["Hello", "World"],
            "dimensions": 256, "encoding_format": "float"});
        let (mut ex, up) = forward(&c, "/v1/embeddings", &body.to_string());
        assert_eq!(up.authority, "generativelanguage.googleapis.com");
        assert_eq!(
            up.path,
            "/v1beta/models/text-embedding-004:batchEmbedContents"
        );
        assert_eq!(header(&up, "x-goog-api-key"), Some(KEY));
        assert_eq!(
            upstream_json(&up),
            json!({"requests": [
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "Hello"}]}, "outputDimensionality": 256},
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "World"}]}, "outputDimensionality": 256}
            ]})
        );
        // Mirrors BatchEmbedContentsResponse (https://ai.google.dev/api/embeddings): embeddings[].values.
        let resp =
            r#"{"embeddings": [{"values": [0.1, -0.2, 0.3]}, {"values": [0.4, 0.5, -0.6]}]}"#;
        let (status, out, _) = respond(&mut ex, 200, "application/json", resp.as_bytes());
        assert_eq!(status, 200);
        let v = parse(&out);
        validate_embeddings(&v);
        assert_eq!(v["data"][1]["embedding"], json!([0.4, 0.5, -0.6]));
        assert_eq!(v["data"][1]["index"], 1);
        assert_eq!(v["model"], "text-embedding-004");
        assert_eq!(v["usage"], json!({"prompt_tokens": 0, "total_tokens": 0}));
        assert!(ex.usage().is_none(), "Gemini reports no embeddings usage");

        let (_, up) = forward(&c, "/v1/embeddings", r#"{"model":"e","input":"one"}"#);
        assert_eq!(
            upstream_json(&up)["requests"],
            json!([{"model": "models/text-embedding-004", "content": {"parts": [{"text": "one"}]}}])
        );
        let (status, err) = rejected(
            &c,
            "/v1/embeddings",
            json!({"model": "e", "input": [[1, 2, 3]]}),
        );
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (400, Some("unsupported_feature"))
        );

        let (mut ex, _) = forward(&c, "/v1/embeddings", r#"{"model":"e","input":"one"}"#);
        let (status, out, _) = respond(&mut ex, 404, "application/json",
            br#"{"error": {"code": 404, "message": "models/x is not found for API version v1beta.", "status": "NOT_FOUND"}}"#);
        assert_eq!(status, 404);
        assert_eq!(parse(&out)["error"]["code"], "NOT_FOUND");
    }

    #[test]
    fn protocol_original_passes_the_client_path_with_the_key() {
        let c = cfg(json!({"protocol": "original"}));
        let native = r#"{"contents":[{"role":"user","parts":[{"text":"Hi"}]}]}"#;
        let mut ex = Exchange::new(Arc::clone(&c));
        let path = "/v1beta/models/gemini-2.0-flash:generateContent";
        let RequestAction::Forward(up) = ex
            .on_request(
                "POST",
                path,
                &[("authorization", "Bearer client")],
                native.as_bytes(),
            )
            .unwrap()
        else {
            panic!("expected a forward")
        };
        assert_eq!(up.authority, "generativelanguage.googleapis.com");
        assert_eq!(up.path, path);
        assert_eq!(header(&up, "x-goog-api-key"), Some(KEY));
        assert!(up.body.is_none());
        assert!(up.remove_headers.contains(&"authorization"));
        let rh = ex
            .on_response_headers(200, &[("content-type", "application/json")])
            .unwrap();
        assert_eq!(rh.mode, ResponseMode::Passthrough);

        // protocol openai with an untranslated path passes through too.
        let mut ex = Exchange::new(cfg(json!({})));
        let RequestAction::Forward(up) = ex
            .on_request(
                "POST",
                "/v1beta/models/gemini-2.0-flash:countTokens",
                &[],
                native.as_bytes(),
            )
            .unwrap()
        else {
            panic!("expected a forward")
        };
        assert_eq!(up.path, "/v1beta/models/gemini-2.0-flash:countTokens");
        assert_eq!(header(&up, "x-goog-api-key"), Some(KEY));
    }

    #[test]
    fn custom_settings_land_under_generation_config() {
        let c = cfg(json!({"customSettings": [
            {"name": "max_tokens", "value": 2048},
            {"name": "top_p", "value": 0.5, "overwrite": false},
            {"name": "top_k", "value": 20},
            {"name": "seed", "value": 3},
            {"name": "responseMimeType", "value": "text/plain", "mode": "raw"}
        ]}));
        let body = json!({"model": "m", "top_p": 0.9, "max_tokens": 10,
            "messages": [{"role": "user", "content": "x"}]});
        let (_, up) = forward(&c, "/v1/chat/completions", &body.to_string());
        let b = upstream_json(&up);
        assert_eq!(
            b["generation_config"],
            json!({"topP": 0.9, "maxOutputTokens": 2048, "topK": 20, "responseMimeType": "text/plain"})
        );
        assert!(b.get("seed").is_none() && b["generation_config"].get("seed").is_none());
    }
}
