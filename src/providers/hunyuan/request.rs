//! OpenAI requests → Hunyuan's ChatCompletions and GetEmbedding bodies.

use super::PROVIDER;
use crate::error::ProxyError;
use crate::openai::request::{
    bad_image_url, body_object, content_parts, function_tools, parse_data_url, stop_sequences,
    take, unsupported_part, Param, ParamTable, Part, ToolChoice, NO_SAMPLING_EXTRAS,
};
use crate::providers::RequestInfo;
use serde_json::{json, Map, Value};

/// OpenAI parameters Hunyuan cannot express: a 400 naming them unless they hold their default.
/// Everything else the body is built from explicitly, so unknown fields never reach Hunyuan.
const PARAMS: ParamTable = ParamTable(&[
    ("max_tokens", Param::Reject("'max_tokens'")),
    (
        "max_completion_tokens",
        Param::Reject("'max_completion_tokens'"),
    ),
    ("audio", Param::Reject("'audio'")),
    ("modalities", Param::RejectUnlessNeutral("'modalities'")),
    ("prediction", Param::Reject("'prediction'")),
    ("functions", Param::Reject("'functions'")),
    ("function_call", Param::Reject("'function_call'")),
    (
        "parallel_tool_calls",
        Param::RejectUnlessNeutral("'parallel_tool_calls'"),
    ),
    // ChatCompletions (API 2023-09-01) has no thinking switch or budget: whether a reply
    // carries reasoning is fixed by the model chosen, so an effort asked for cannot be honoured.
    ("reasoning_effort", Param::Reject("'reasoning_effort'")),
]);

/// GetEmbedding has one fixed model and dimension. (`encoding_format` never gets here: the core
/// removes it and the writer encodes the floats as the client asked.)
const EMBEDDING_PARAMS: ParamTable = ParamTable(&[("dimensions", Param::Reject("'dimensions'"))]);

pub(super) fn chat_body(req: &RequestInfo<'_>, body: &mut Value) -> Result<Value, ProxyError> {
    let obj = body_object(body)?;
    NO_SAMPLING_EXTRAS.apply(obj, PROVIDER)?;
    PARAMS.apply(obj, PROVIDER)?;
    let mut out = Map::new();
    out.insert("Model".into(), req.model.into());
    out.insert(
        "Messages".into(),
        Value::Array(messages(obj.get("messages"))?),
    );
    out.insert("Stream".into(), req.stream.into());
    for (from, to) in [("temperature", "Temperature"), ("top_p", "TopP")] {
        match take(obj, from) {
            None => {}
            Some(v @ Value::Number(_)) => {
                out.insert(to.into(), v);
            }
            Some(_) => {
                return Err(
                    ProxyError::bad_request(format!("'{from}' must be a number")).with_param(from),
                )
            }
        }
    }
    match take(obj, "seed") {
        None => {}
        Some(v) if v.is_i64() || v.is_u64() => {
            out.insert("Seed".into(), v);
        }
        Some(_) => {
            return Err(ProxyError::bad_request("'seed' must be an integer").with_param("seed"))
        }
    }
    let stop = stop_sequences(take(obj, "stop"))?;
    if !stop.is_empty() {
        out.insert("Stop".into(), stop.into());
    }
    let tools = tools(obj.get("tools"))?;
    match ToolChoice::parse(obj.get("tool_choice"))? {
        None => {}
        Some(ToolChoice::Auto) => {
            out.insert("ToolChoice".into(), "auto".into());
        }
        Some(ToolChoice::None) => {
            out.insert("ToolChoice".into(), "none".into());
        }
        Some(ToolChoice::Required) => {
            return Err(ProxyError::unsupported("tool_choice 'required'", PROVIDER)
                .with_param("tool_choice"))
        }
        Some(ToolChoice::Allowed { .. }) => {
            return Err(
                ProxyError::unsupported("tool_choice 'allowed_tools'", PROVIDER)
                    .with_param("tool_choice"),
            )
        }
        Some(ToolChoice::Function(name)) => {
            let tool = tools
                .iter()
                .find(|t| t["Function"]["Name"] == name.as_str())
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
    }
    if !tools.is_empty() {
        out.insert("Tools".into(), Value::Array(tools));
    }
    Ok(Value::Object(out))
}

fn tools(v: Option<&Value>) -> Result<Vec<Value>, ProxyError> {
    let tools = function_tools(v, PROVIDER)?;
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

/// Content of message `i` of any role; images are allowed only where `images` is true. Image
/// URLs go through as given (Hunyuan takes http(s) and base64 data URLs).
fn content(v: Option<&Value>, i: usize, role: &str, images: bool) -> Result<Content, ProxyError> {
    let param = format!("messages[{i}].content");
    let raw = v.and_then(Value::as_array);
    let mut parts = content_parts(v, &param)?;
    for (j, part) in parts.iter_mut().enumerate() {
        match *part {
            Part::Text(_) => {}
            // Earlier assistant turns may carry a refusal: its text is the turn's text.
            Part::Other("refusal") => {
                *part = Part::Text(
                    raw.and_then(|r| r[j].get("refusal"))
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                );
            }
            Part::Image { url, .. } if images => {
                if url.starts_with("data:") && parse_data_url(url).is_none() {
                    return Err(bad_image_url(
                        &param,
                        "an http(s) URL or a data:<media type>;base64,<data> URL",
                    ));
                }
            }
            Part::Image { .. } => {
                return Err(ProxyError::unsupported(
                    &format!("image content in '{role}' messages"),
                    PROVIDER,
                ))
            }
            Part::File { .. } | Part::InputAudio { .. } | Part::Other(_) => {
                return Err(unsupported_part(part, PROVIDER))
            }
        }
    }
    if !parts.iter().any(|p| matches!(p, Part::Image { .. })) {
        let texts: Vec<&str> = parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => *t,
                _ => "",
            })
            .collect();
        return Ok(Content::Text(texts.join("\n")));
    }
    Ok(Content::Parts(
        parts
            .iter()
            .map(|p| match p {
                Part::Image { url, .. } => json!({"Type": "image_url", "ImageUrl": {"Url": url}}),
                Part::Text(t) => json!({"Type": "text", "Text": t}),
                _ => unreachable!("other parts are rejected above"),
            })
            .collect(),
    ))
}

fn text(v: Option<&Value>, i: usize, role: &str) -> Result<String, ProxyError> {
    match content(v, i, role, false)? {
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
        if m.get("function_call").is_some_and(|v| !v.is_null()) {
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
                let t = text(m.get("content"), i, role)?;
                system = Some(match system {
                    Some(s) => format!("{s}\n\n{t}"),
                    None => t,
                });
            }
            "user" => {
                let msg = match content(m.get("content"), i, role, true)? {
                    Content::Text(t) => json!({"Role": "user", "Content": t}),
                    Content::Parts(p) => json!({"Role": "user", "Contents": p}),
                };
                out.push(msg);
            }
            "assistant" => {
                let mut msg = Map::new();
                msg.insert("Role".into(), "assistant".into());
                msg.insert("Content".into(), text(m.get("content"), i, role)?.into());
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
                                let s = |v: Option<&Value>| {
                                    v.and_then(Value::as_str).unwrap_or("").to_string()
                                };
                                json!({
                                    "Id": s(c.get("id")),
                                    "Type": "function",
                                    "Function": {
                                        "Name": s(f.get("name")),
                                        "Arguments": s(f.get("arguments")),
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
                    "Content": text(m.get("content"), i, role)?,
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

pub(super) fn embedding_body(body: &mut Value) -> Result<Value, ProxyError> {
    let obj = body_object(body)?;
    EMBEDDING_PARAMS.apply(obj, PROVIDER)?;
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
