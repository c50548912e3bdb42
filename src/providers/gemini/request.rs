//! OpenAI chat and embeddings requests → Gemini's `generateContent` and `batchEmbedContents`.

use super::{unsupported, NAME};
use crate::error::ProxyError;
use crate::openai::request::{
    body_object, content_parts, function_tools, parse_data_url, stop_sequences, take, DataUrl,
    Param, ParamTable, Part, ToolChoice,
};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Google's documented placeholder for a replayed Gemini 3 function call whose signature is lost.
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

const DEPRECATED_FUNCTIONS: &str =
    "the deprecated 'functions'/'function_call' parameters (use 'tools')";

/// OpenAI parameters Gemini cannot express (a 400 unless neutral) and the ones that carry nothing
/// Gemini acts on (dropped; `stream` and `stream_options` are the core's). Every other parameter
/// is mapped in [`translate_chat`]; one it does not know is a 400.
const PARAMS: ParamTable = ParamTable(&[
    ("logprobs", Param::RejectUnlessNeutral("logprobs")),
    ("top_logprobs", Param::Reject("top_logprobs")),
    ("logit_bias", Param::RejectUnlessNeutral("logit_bias")),
    (
        "parallel_tool_calls",
        Param::RejectUnlessNeutral("parallel_tool_calls=false"),
    ),
    (
        "modalities",
        Param::RejectUnlessNeutral("output modalities other than text"),
    ),
    ("functions", Param::Reject(DEPRECATED_FUNCTIONS)),
    ("function_call", Param::Reject(DEPRECATED_FUNCTIONS)),
    ("model", Param::Drop),
    ("stream", Param::Drop),
    ("stream_options", Param::Drop),
    ("user", Param::Drop),
    ("store", Param::Drop),
    ("metadata", Param::Drop),
    ("service_tier", Param::Drop),
    ("safety_identifier", Param::Drop),
    ("prompt_cache_key", Param::Drop),
]);

/// Takes the request object out of `body` (the caller replaces `body` wholesale).
fn take_object(body: &mut Value) -> Result<Map<String, Value>, ProxyError> {
    body_object(body).map(std::mem::take)
}

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

/// `reasoning_effort` → `generationConfig.thinkingConfig`: the budgets Gemini's own OpenAI
/// compatibility layer uses (ai.google.dev/gemini-api/docs/openai, "Thinking"), with thought
/// summaries on so they come back as `reasoning_content`; `none` turns thinking off.
fn thinking_config(effort: &Value) -> Result<Value, ProxyError> {
    let effort = effort.as_str().unwrap_or("");
    match thinking_budget(effort) {
        Some(0) => Ok(json!({"thinkingBudget": 0})),
        Some(budget) => Ok(json!({"thinkingBudget": budget, "includeThoughts": true})),
        None => Err(ProxyError::bad_request(format!(
            "unknown reasoning_effort '{effort}' (none, minimal, low, medium or high)"
        ))
        .with_param("reasoning_effort")),
    }
}

/// The thinking budget for a `reasoning_effort` (0: thinking off); `None` for an unknown one.
fn thinking_budget(effort: &str) -> Option<u64> {
    match effort {
        "none" => Some(0),
        "minimal" | "low" => Some(1024),
        "medium" => Some(8192),
        "high" => Some(24576),
        _ => None,
    }
}

pub(super) fn translate_chat(model: &str, body: &mut Value) -> Result<Value, ProxyError> {
    let mut obj = take_object(body)?;
    PARAMS.apply(&mut obj, NAME)?;
    let mut gen = Map::new();
    // One pass over the request's own keys (a `take` per known field hashes each name whether
    // the request has it or not); the checks then run in their usual order.
    let (mut messages, mut tools, mut tool_choice, mut stop) = (None, None, None, None);
    let (mut max_completion_tokens, mut max_tokens) = (None, None);
    let mut rest = Vec::with_capacity(obj.len());
    for (key, value) in obj {
        if value.is_null() {
            continue;
        }
        let slot = match key.as_str() {
            "messages" => &mut messages,
            "tools" => &mut tools,
            "tool_choice" => &mut tool_choice,
            "stop" => &mut stop,
            "max_completion_tokens" => &mut max_completion_tokens,
            "max_tokens" => &mut max_tokens,
            _ => {
                rest.push((key, value));
                continue;
            }
        };
        *slot = Some(value);
    }
    let tool_choice = ToolChoice::parse(tool_choice.as_ref())?;
    let stop = stop_sequences(stop)?;
    if !stop.is_empty() {
        gen.insert("stopSequences".into(), stop.into());
    }
    for (key, value) in rest {
        let field = match key.as_str() {
            "temperature" => "temperature",
            "top_p" => "topP",
            "top_k" => "topK",
            "n" => "candidateCount",
            "seed" => "seed",
            "presence_penalty" => "presencePenalty",
            "frequency_penalty" => "frequencyPenalty",
            "response_format" => {
                response_format(value, &mut gen)?;
                continue;
            }
            "reasoning_effort" => {
                gen.insert("thinkingConfig".into(), thinking_config(&value)?);
                continue;
            }
            other => return Err(unsupported(&format!("the '{other}' parameter"))),
        };
        gen.insert(field.into(), value);
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
    // Objects built by hand: `json!` would serialise the parts over again (`to_value`).
    out.insert(
        "contents".into(),
        Value::Array(
            contents
                .into_iter()
                .map(|t| {
                    let mut turn = Map::new();
                    turn.insert("role".into(), t.role.into());
                    turn.insert("parts".into(), Value::Array(t.parts));
                    Value::Object(turn)
                })
                .collect(),
        ),
    );
    if !system.is_empty() {
        out.insert(
            "system_instruction".into(),
            object("parts", Value::Array(system)),
        );
    }
    if !gen.is_empty() {
        out.insert("generation_config".into(), Value::Object(gen));
    }
    let decls = function_declarations(tools.as_ref())?;
    if !decls.is_empty() {
        out.insert("tools".into(), json!([{ "function_declarations": decls }]));
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

/// `{key: value}`, without `json!`'s copy of the value.
fn object(key: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.into(), value);
    Value::Object(m)
}

/// A `{"text": ...}` part.
fn text_part(text: String) -> Value {
    object("text", Value::String(text))
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
        let content = take(&mut m, "content");
        match role.as_str() {
            "system" | "developer" => {
                for text in text_pieces(content, i, &role)? {
                    system.push(text_part(text));
                }
            }
            "user" => {
                let parts = user_parts(content.as_ref(), i)?;
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
                    .map(text_part)
                    .collect();
                if let Some(calls) = take(&mut m, "tool_calls") {
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

fn user_parts(content: Option<&Value>, i: usize) -> Result<Vec<Value>, ProxyError> {
    // A plain string is one text part (as `content_parts` reads it), without building the
    // parameter name its errors would use.
    if let Some(Value::String(s)) = content {
        return Ok(vec![text_part(s.clone())]);
    }
    let param = format!("messages[{i}].content");
    let bad = |what: &str| ProxyError::bad_request(format!("{param}: {what}"));
    content_parts(content, &param)?
        .into_iter()
        .map(|part| match part {
            Part::Text(s) => Ok(json!({ "text": s })),
            Part::Image { url, .. } => {
                if url.starts_with("data:") {
                    inline_data(url).ok_or_else(|| {
                        bad("image data URLs must look like data:<media type>;base64,<data>")
                    })
                } else if is_files_api_uri(url) {
                    Ok(json!({"file_data": {"file_uri": url}}))
                } else {
                    Err(unsupported(
                        "image_url with an http(s) URL (Gemini takes inline base64 data URLs, or \
                         a Files API URI via file_data; upload the image with the Files API first)",
                    ))
                }
            }
            Part::InputAudio { data, format } => {
                if data.is_empty() || format.is_empty() {
                    return Err(bad("input_audio needs string 'data' and 'format'"));
                }
                Ok(json!({"inline_data": {"mime_type": format!("audio/{format}"), "data": data}}))
            }
            Part::File { data, file_id, .. } => match (data, file_id) {
                (Some(url), _) => inline_data(url)
                    .ok_or_else(|| bad("file_data must look like data:<media type>;base64,<data>")),
                (None, Some(_)) => Err(unsupported("file parts by file_id")),
                (None, None) => Err(bad("a file part needs 'file_data' or 'file_id'")),
            },
            Part::Other(other) => Err(unsupported(&format!("content part type '{other}'"))),
        })
        .collect()
}

/// `data:<media type>[;params];base64,<data>` → `inline_data`.
fn inline_data(url: &str) -> Option<Value> {
    let DataUrl { media_type, data } = parse_data_url(url)?;
    Some(json!({"inline_data": {"mime_type": media_type, "data": data}}))
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

fn function_declarations(tools: Option<&Value>) -> Result<Vec<Value>, ProxyError> {
    Ok(function_tools(tools, NAME)?
        .into_iter()
        .map(|f| {
            let mut decl = Map::new();
            decl.insert("name".into(), f.name.into());
            if let Some(d) = f.description {
                decl.insert("description".into(), d.into());
            }
            // `parametersJsonSchema` takes JSON Schema as OpenAI tools write it (strict tools'
            // `additionalProperties: false` included), where `parameters` takes only Google's
            // OpenAPI subset and rejects it (ai.google.dev, "Function calling": FunctionDeclaration).
            // A function without arguments leaves it unset.
            if let Some(params) = f.parameters.filter(|p| {
                p.get("properties")
                    .and_then(Value::as_object)
                    .is_some_and(|props| !props.is_empty())
            }) {
                decl.insert("parametersJsonSchema".into(), params.clone());
            }
            Value::Object(decl)
        })
        .collect())
}

fn tool_config(choice: ToolChoice) -> Result<Value, ProxyError> {
    let config = match choice {
        ToolChoice::Auto => json!({"mode": "AUTO"}),
        ToolChoice::None => json!({"mode": "NONE"}),
        ToolChoice::Required => json!({"mode": "ANY"}),
        ToolChoice::Function(name) => json!({"mode": "ANY", "allowed_function_names": [name]}),
        ToolChoice::Allowed {
            names,
            required: true,
        } => json!({"mode": "ANY", "allowed_function_names": names}),
        ToolChoice::Allowed {
            required: false, ..
        } => {
            return Err(unsupported(
                "tool_choice allowed_tools with mode 'auto' (Gemini restricts function names \
                 only in mode ANY)",
            ))
        }
    };
    Ok(json!({ "function_calling_config": config }))
}

pub(super) fn translate_embeddings(resource: &str, body: &mut Value) -> Result<Value, ProxyError> {
    let obj = take_object(body)?;
    let mut input = None;
    let mut dimensions = None;
    for (key, value) in obj {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            // `encoding_format` is the core's: it checks it, and the writer encodes Gemini's floats
            // as the client asked.
            "model" | "user" | "encoding_format" => {}
            "input" => input = Some(value),
            "dimensions" => dimensions = Some(value),
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

// ---- Request fast path (`openai::chat_read`) ------------------------------------------------
// The same translation as `translate_chat`, from the typed reading straight to bytes; anything
// it does not handle here (file parts, http images, thought signatures sent back, ...), and
// whatever `translate_chat` would refuse, answers `None` and takes `translate_chat`, the
// reference (the property test in `openai/chat_read_tests.rs` compares the two).

use crate::custom_settings::{CustomSetting, SettingsProtocol};
use crate::json_write::{write_array, write_str, write_str_object, write_u64, write_value};
use crate::openai::chat_read::{
    write_number, Arguments, Canon, ChatRequest, Content, Key, Message, ObjectOut,
};
use std::borrow::Cow;

enum FastPart<'r> {
    Text(&'r str),
    Inline {
        mime: &'r str,
        data: &'r str,
    },
    /// A replayed tool call; `skip` adds the Gemini 3 placeholder signature.
    Call {
        name: &'r str,
        /// The arguments object, as JSON.
        args: Cow<'r, [u8]>,
        skip: bool,
    },
    /// A `tool` message's result.
    Response {
        name: &'r str,
        response: ToolResponse<'r>,
    },
}

/// A function response: the tool's text when it is a JSON object (as JSON), else
/// `{"output": text}`.
enum ToolResponse<'r> {
    Object(Vec<u8>),
    Output(Cow<'r, str>),
}

type Contents<'r> = Vec<(&'static str, Vec<FastPart<'r>>)>;

fn push_fast<'r>(contents: &mut Contents<'r>, role: &'static str, parts: Vec<FastPart<'r>>) {
    if parts.is_empty() {
        return;
    }
    match contents.last_mut() {
        Some(last) if last.0 == role => last.1.extend(parts),
        _ => contents.push((role, parts)),
    }
}

/// The Gemini body for a chat request the typed reader took, for `model` (the resource without
/// `models/`), with `safety` as `safetySettings` and customSettings applied; `None` when
/// `translate_chat` must decide.
pub(super) fn fast_chat(
    model: &str,
    chat: &ChatRequest<'_>,
    safety: &[(String, String)],
    settings: &[CustomSetting],
) -> Option<Vec<u8>> {
    // Refused unless neutral (`PARAMS`).
    if chat.parallel_tool_calls == Some(false) || chat.logprobs == Some(true) {
        return None;
    }
    let tool_choice = ToolChoice::parse(chat.tool_choice.as_ref()).ok()?;
    let (contents, system) = fast_messages(chat, model.starts_with("gemini-3"))?;
    let decls = fast_declarations(chat)?;
    let tool_config = match tool_choice {
        None => None,
        Some(choice) => Some(tool_config(choice).ok()?),
    };

    let mut out = ObjectOut::with_capacity(256);
    out.field("contents", |b| {
        write_array(b, contents.iter(), |b, (role, parts)| {
            b.extend_from_slice(br#"{"role":"#);
            write_str(b, role);
            b.extend_from_slice(br#","parts":"#);
            write_parts(b, parts);
            b.push(b'}');
        });
    });
    if !system.is_empty() {
        out.field("system_instruction", |b| {
            b.extend_from_slice(br#"{"parts":"#);
            let parts: Vec<_> = system.iter().map(|t| FastPart::Text(t)).collect();
            write_parts(b, &parts);
            b.push(b'}');
        });
    }
    let gen = fast_generation_config(chat)?;
    if !gen.is_empty() {
        out.object("generation_config", gen);
    }
    if !decls.is_empty() {
        out.field("tools", |b| {
            b.extend_from_slice(br#"[{"function_declarations":"#);
            write_array(b, decls.iter(), |b, (name, description, params)| {
                b.extend_from_slice(br#"{"name":"#);
                write_str(b, name);
                if let Some(d) = description {
                    b.extend_from_slice(br#","description":"#);
                    write_str(b, d);
                }
                if let Some(p) = params {
                    b.extend_from_slice(br#","parametersJsonSchema":"#);
                    b.extend_from_slice(p);
                }
                b.push(b'}');
            });
            b.extend_from_slice(b"}]");
        });
    }
    if let Some(config) = &tool_config {
        out.field("tool_config", |b| write_value(b, config));
    }
    if !safety.is_empty() {
        out.field("safetySettings", |b| {
            write_array(b, safety.iter(), |b, (category, threshold)| {
                write_str_object(b, &[("category", category), ("threshold", threshold)]);
            });
        });
    }
    Some(out.finish(settings, SettingsProtocol::Gemini))
}

/// `generation_config` as `translate_chat` fills it: stop sequences, then the sampling fields in
/// the order the request map has them once `PARAMS.apply` removed its keys, then the token limit.
fn fast_generation_config<'k>(chat: &ChatRequest<'_>) -> Option<ObjectOut<'k>> {
    let mut gen = ObjectOut::with_capacity(64);
    if let Some(stop) = &chat.stop {
        let seqs = stop.sequences();
        if !seqs.is_empty() {
            gen.field("stopSequences", |b| {
                write_array(b, seqs.iter(), |b, s| write_str(b, s));
            });
        }
    }
    // `PARAMS.apply` removes these (in its row order) before `translate_chat` walks the map.
    let removed = [
        Key::Logprobs,
        Key::ParallelToolCalls,
        Key::Model,
        Key::Stream,
        Key::StreamOptions,
        Key::User,
        Key::SafetyIdentifier,
    ];
    for key in chat.keys_after_removing(&removed) {
        let (field, value) = match key {
            Key::Temperature => ("temperature", &chat.temperature),
            Key::TopP => ("topP", &chat.top_p),
            Key::TopK => ("topK", &chat.top_k),
            Key::N => ("candidateCount", &chat.n),
            Key::Seed => ("seed", &chat.seed),
            Key::PresencePenalty => ("presencePenalty", &chat.presence_penalty),
            Key::FrequencyPenalty => ("frequencyPenalty", &chat.frequency_penalty),
            Key::ResponseFormat => {
                if let Some(rf) = &chat.response_format {
                    fast_response_format(rf, &mut gen)?;
                }
                continue;
            }
            Key::ReasoningEffort => {
                if let Some(effort) = &chat.reasoning_effort {
                    let budget = thinking_budget(&effort.0)?;
                    gen.field("thinkingConfig", |b| {
                        b.extend_from_slice(br#"{"thinkingBudget":"#);
                        write_u64(b, budget);
                        if budget > 0 {
                            b.extend_from_slice(br#","includeThoughts":true"#);
                        }
                        b.push(b'}');
                    });
                }
                continue;
            }
            _ => continue,
        };
        if let Some(n) = value {
            gen.field(field, |b| write_number(b, n));
        }
    }
    if let Some(n) = chat
        .max_completion_tokens
        .as_ref()
        .or(chat.max_tokens.as_ref())
    {
        gen.field("maxOutputTokens", |b| write_number(b, n));
    }
    Some(gen)
}

/// `response_format` as [`response_format`] maps it.
fn fast_response_format(rf: &Value, gen: &mut ObjectOut<'_>) -> Option<()> {
    let rf = rf.as_object()?;
    match rf.get("type").and_then(Value::as_str)? {
        "text" => {}
        "json_object" => gen.field("responseMimeType", |b| write_str(b, "application/json")),
        "json_schema" => {
            let schema = rf
                .get("json_schema")
                .and_then(Value::as_object)
                .and_then(|js| js.get("schema"))
                .filter(|s| !s.is_null())?;
            gen.field("responseMimeType", |b| write_str(b, "application/json"));
            gen.field("responseJsonSchema", |b| write_value(b, schema));
        }
        _ => return None,
    }
    Some(())
}

/// `translate_messages`: (`contents`, system texts).
fn fast_messages<'r>(
    chat: &'r ChatRequest<'_>,
    replay_sentinel: bool,
) -> Option<(Contents<'r>, Vec<&'r str>)> {
    let mut contents: Contents<'r> = Vec::with_capacity(4);
    let mut system: Vec<&str> = Vec::new();
    // tool_call_id → function name, latest last (a later call with the same id wins).
    let mut call_names: Vec<(&str, &str)> = Vec::new();
    for m in chat.messages.as_ref()? {
        let m = &m.0;
        let role = m.role.as_ref().map(|r| &*r.0)?;
        // Only assistant messages' tool calls mean something; elsewhere `translate_chat`
        // ignores them, which is left to it.
        if m.tool_calls.is_some() && role != "assistant" {
            return None;
        }
        match role {
            "system" | "developer" => system.extend(fast_text_pieces(m.content.as_ref(), false)?),
            "user" => {
                let mut parts = fast_user_parts(m)?;
                if parts.is_empty() {
                    parts.push(FastPart::Text(""));
                }
                push_fast(&mut contents, "user", parts);
            }
            "assistant" => {
                let mut parts: Vec<FastPart<'_>> = fast_text_pieces(m.content.as_ref(), true)?
                    .into_iter()
                    .filter(|t| !t.is_empty())
                    .map(FastPart::Text)
                    .collect();
                // Thought signatures (`extra_content`) are not read: the reader refuses them.
                let mut skip = replay_sentinel;
                for call in m.tool_calls.iter().flatten() {
                    let call = &call.0;
                    if call.kind.as_ref().is_some_and(|k| k.0 != "function") {
                        return None;
                    }
                    let f = &call.function.as_ref()?.0;
                    let name: &str = &f.name.as_ref()?.0;
                    let args = Arguments::object(f.arguments.as_ref())?;
                    let id = call.id.as_ref().map_or("", |s| &*s.0);
                    call_names.push((id, name));
                    parts.push(FastPart::Call { name, args, skip });
                    skip = false;
                }
                push_fast(&mut contents, "model", parts);
            }
            "tool" => {
                let id: &str = &m.tool_call_id.as_ref()?.0;
                let name = call_names.iter().rev().find(|(i, _)| *i == id)?.1;
                let pieces = fast_text_pieces(m.content.as_ref(), false)?;
                let text = match pieces.as_slice() {
                    [one] => Cow::Borrowed(*one),
                    _ => Cow::Owned(pieces.concat()),
                };
                let response = match serde_json::from_str::<Canon>(&text) {
                    Ok(c) if c.shape.object => ToolResponse::Object(c.bytes),
                    Ok(_) => ToolResponse::Output(text),
                    // Not JSON, or an object with a repeated key, which the `Value` reading
                    // takes (keeping the last): that case is left to it.
                    Err(_) => match serde_json::from_str::<Value>(&text) {
                        Ok(Value::Object(_)) => return None,
                        _ => ToolResponse::Output(text),
                    },
                };
                push_fast(
                    &mut contents,
                    "user",
                    vec![FastPart::Response { name, response }],
                );
            }
            _ => return None,
        }
    }
    if contents.is_empty() {
        return None;
    }
    Some((contents, system))
}

/// `user_parts` for text and inline-data images.
fn fast_user_parts<'r>(m: &'r Message<'_>) -> Option<Vec<FastPart<'r>>> {
    match &m.content {
        None => Some(Vec::new()),
        Some(Content::Text(s)) => Some(vec![FastPart::Text(s)]),
        Some(Content::Parts(ps)) => ps
            .iter()
            .map(|p| {
                let p = &p.0;
                match p.kind() {
                    "text" => Some(FastPart::Text(&p.text.as_ref()?.0)),
                    "image_url" => {
                        let url = p.image_url.as_ref()?.url.as_deref()?;
                        let DataUrl { media_type, data } = parse_data_url(url)?;
                        Some(FastPart::Inline {
                            mime: media_type,
                            data,
                        })
                    }
                    _ => None,
                }
            })
            .collect(),
    }
}

/// `function_declarations`: (name, description, parameters when they have properties).
type Declaration<'r> = (&'r str, Option<&'r str>, Option<&'r [u8]>);

fn fast_declarations<'r>(chat: &'r ChatRequest<'_>) -> Option<Vec<Declaration<'r>>> {
    chat.map_functions(|kind, f| {
        if kind != Some("function") {
            return None;
        }
        let params = f
            .parameters
            .as_ref()
            .filter(|p| p.shape.properties)
            .map(|p| &p.bytes[..]);
        Some((
            &*f.name.as_ref()?.0,
            f.description.as_ref().map(|d| &*d.0),
            params,
        ))
    })
}

/// `text_pieces`: a string, or text parts (and refusals in assistant messages).
fn fast_text_pieces<'r>(content: Option<&'r Content<'_>>, assistant: bool) -> Option<Vec<&'r str>> {
    match content {
        None => Some(Vec::new()),
        Some(Content::Text(s)) => Some(vec![s]),
        Some(Content::Parts(parts)) => parts
            .iter()
            .map(|p| {
                let p = &p.0;
                match p.kind() {
                    "text" => p.text.as_ref().map(|t| &*t.0),
                    "refusal" if assistant => p.refusal.as_ref().map(|t| &*t.0),
                    _ => None,
                }
            })
            .collect(),
    }
}

fn write_parts(b: &mut Vec<u8>, parts: &[FastPart<'_>]) {
    write_array(b, parts.iter(), |b, p| match p {
        FastPart::Text(t) => {
            b.extend_from_slice(br#"{"text":"#);
            write_str(b, t);
            b.push(b'}');
        }
        FastPart::Inline { mime, data } => {
            b.extend_from_slice(br#"{"inline_data":{"mime_type":"#);
            write_str(b, mime);
            b.extend_from_slice(br#","data":"#);
            write_str(b, data);
            b.extend_from_slice(b"}}");
        }
        FastPart::Call { name, args, skip } => {
            b.extend_from_slice(br#"{"functionCall":{"name":"#);
            write_str(b, name);
            b.extend_from_slice(br#","args":"#);
            b.extend_from_slice(args);
            b.push(b'}');
            if *skip {
                b.extend_from_slice(br#","thoughtSignature":"#);
                write_str(b, SKIP_SIGNATURE);
            }
            b.push(b'}');
        }
        FastPart::Response { name, response } => {
            b.extend_from_slice(br#"{"functionResponse":{"name":"#);
            write_str(b, name);
            b.extend_from_slice(br#","response":"#);
            match response {
                ToolResponse::Object(v) => b.extend_from_slice(v),
                ToolResponse::Output(text) => write_str_object(b, &[("output", &**text)]),
            }
            b.extend_from_slice(b"}}");
        }
    });
}
