//! OpenAI chat and embeddings requests → Cohere v2 `chat` and `embed` requests.

use super::super::RequestInfo;
use super::NAME;
use crate::error::ProxyError;
use crate::openai::request::{
    bad_param as bad, body_object, content_parts, function_tools, json_schema, role_error,
    stop_sequences, take, Param, ParamTable, Part, ToolChoice, OPENAI_ONLY,
};
use serde_json::{json, Map, Value};

fn unsupported(feature: &str, param: &str) -> ProxyError {
    ProxyError::unsupported(feature, NAME).with_param(param)
}

/// OpenAI chat parameters Cohere's v2 chat cannot express beyond [`OPENAI_ONLY`], and
/// OpenAI-side bookkeeping it has no field for.
const PARAMS: ParamTable = ParamTable(&[
    (
        "parallel_tool_calls",
        Param::RejectUnlessNeutral("parallel_tool_calls: false"),
    ),
    ("user", Param::Drop),
    ("safety_identifier", Param::Drop),
    ("stream_options", Param::Drop),
]);

/// Sampling parameters with the same meaning under Cohere's name.
const RENAMED: &[(&str, &str)] = &[
    ("temperature", "temperature"),
    ("top_p", "p"),
    ("top_k", "k"),
    ("seed", "seed"),
    ("frequency_penalty", "frequency_penalty"),
    ("presence_penalty", "presence_penalty"),
];

/// Cohere chat fields with no OpenAI counterpart, passed through when a client sends them.
const COHERE_NATIVE: &[&str] = &[
    "documents",
    "citation_options",
    "safety_mode",
    "strict_tools",
    "thinking",
    "k",
    "p",
];

pub(super) fn translate_chat(
    req: &RequestInfo<'_>,
    json_schema: Option<&Value>,
    body: &mut Value,
) -> Result<(), ProxyError> {
    let obj = body_object(body)?;
    let mut src = std::mem::take(obj);
    src.remove("model");
    src.remove("stream");
    OPENAI_ONLY.apply(&mut src, NAME)?;
    PARAMS.apply(&mut src, NAME)?;

    let mut out = Map::new();
    out.insert("model".into(), req.model.into());
    let messages = match take(&mut src, "messages") {
        Some(Value::Array(m)) => m,
        _ => return Err(bad("messages", "'messages' must be an array")),
    };
    out.insert(
        "messages".into(),
        Value::Array(convert_messages(&messages)?),
    );

    match take(&mut src, "max_completion_tokens").or_else(|| take(&mut src, "max_tokens")) {
        None => {}
        Some(v @ Value::Number(_)) => {
            out.insert("max_tokens".into(), v);
        }
        Some(_) => return Err(bad("max_tokens", "'max_tokens' must be an integer")),
    }
    src.remove("max_tokens");
    let stop = stop_sequences(take(&mut src, "stop"))?;
    if !stop.is_empty() {
        out.insert("stop_sequences".into(), stop.into());
    }
    for (from, to) in RENAMED {
        match take(&mut src, from) {
            None => {}
            Some(v @ Value::Number(_)) => {
                out.insert((*to).into(), v);
            }
            Some(_) => return Err(bad(from, format!("'{from}' must be a number"))),
        }
    }
    if let Some(rf) = response_format(take(&mut src, "response_format"), json_schema)? {
        out.insert("response_format".into(), rf);
    }
    let tools_value = take(&mut src, "tools");
    let choice = ToolChoice::parse(src.get("tool_choice"))?;
    src.remove("tool_choice");
    let tools = function_tools(tools_value.as_ref(), NAME)?;
    let (keep, cohere_choice): (Option<Vec<String>>, Option<&str>) = match choice {
        None | Some(ToolChoice::Auto) => (None, None),
        Some(ToolChoice::None) => (None, Some("NONE")),
        Some(ToolChoice::Required) => (None, Some("REQUIRED")),
        // Cohere cannot force one named tool; offering only that tool and requiring a call is
        // the same request.
        Some(ToolChoice::Function(name)) => (Some(vec![name]), Some("REQUIRED")),
        Some(ToolChoice::Allowed { names, required }) => {
            (Some(names), required.then_some("REQUIRED"))
        }
    };
    let tools: Vec<Value> = tools
        .iter()
        .filter(|t| keep.as_ref().is_none_or(|k| k.iter().any(|n| n == t.name)))
        .map(|t| {
            let mut f = Map::new();
            f.insert("name".into(), t.name.into());
            if let Some(d) = t.description {
                f.insert("description".into(), d.into());
            }
            f.insert(
                "parameters".into(),
                t.parameters
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            );
            json!({"type": "function", "function": f})
        })
        .collect();
    if keep.is_some() && tools.is_empty() {
        return Err(bad(
            "tool_choice",
            "tool_choice names a tool that is not in 'tools'",
        ));
    }
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(c) = cohere_choice {
            out.insert("tool_choice".into(), c.into());
        }
    } else if cohere_choice == Some("REQUIRED") {
        return Err(bad("tool_choice", "tool_choice 'required' needs 'tools'"));
    }
    if req.stream {
        out.insert("stream".into(), true.into());
    }
    let effort = take(&mut src, "reasoning_effort");
    for (k, v) in src {
        if !v.is_null() && COHERE_NATIVE.contains(&k.as_str()) && !out.contains_key(&k) {
            out.insert(k, v);
        }
    }
    // A client's own `thinking` object wins over the mapping.
    if let Some(effort) = effort.filter(|_| !out.contains_key("thinking")) {
        out.insert("thinking".into(), thinking(&effort)?);
    }
    *obj = out;
    Ok(())
}

/// `reasoning_effort` → Cohere's `thinking` (docs.cohere.com/docs/reasoning; the v2 chat
/// request's `thinking: {type: enabled | disabled, token_budget}`); `none` turns reasoning off.
/// The budgets are the ones Google's OpenAI compatibility layer uses for Gemini (OpenAI publishes
/// no token figures).
fn thinking(effort: &Value) -> Result<Value, ProxyError> {
    let budget = match effort.as_str() {
        Some("none") => return Ok(json!({"type": "disabled"})),
        Some("minimal" | "low") => 1024,
        Some("medium") => 8192,
        Some("high") => 24576,
        Some(other) => {
            return Err(bad(
                "reasoning_effort",
                format!("unknown reasoning_effort '{other}' (none, minimal, low, medium or high)"),
            ))
        }
        None => {
            return Err(bad(
                "reasoning_effort",
                "'reasoning_effort' must be a string",
            ))
        }
    };
    Ok(json!({"type": "enabled", "token_budget": budget}))
}

/// `response_format` (or the configured `responseJsonSchema`) → Cohere's JSON mode.
fn response_format(
    rf: Option<Value>,
    configured: Option<&Value>,
) -> Result<Option<Value>, ProxyError> {
    if let Some(schema) = configured {
        let schema = schema.get("schema").unwrap_or(schema);
        return Ok(Some(json!({"type": "json_object", "json_schema": schema})));
    }
    let Some(rf) = rf else {
        return Ok(None);
    };
    match rf.get("type").and_then(Value::as_str).unwrap_or("") {
        "text" => Ok(None),
        "json_object" => Ok(Some(json!({"type": "json_object"}))),
        "json_schema" => {
            let schema = json_schema(&rf)?;
            Ok(Some(json!({"type": "json_object", "json_schema": schema})))
        }
        kind => Err(unsupported(
            &format!("response_format '{kind}'"),
            "response_format",
        )),
    }
}

fn text_of(parts: &[Part<'_>], param: &str, role: &str) -> Result<String, ProxyError> {
    let mut text = String::new();
    for p in parts {
        match p {
            Part::Text(t) => text.push_str(t),
            _ => return Err(bad(param, format!("{role} messages may only contain text"))),
        }
    }
    Ok(text)
}

fn convert_messages(messages: &[Value]) -> Result<Vec<Value>, ProxyError> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let param = format!("messages[{i}].content");
            let role = m.get("role").and_then(Value::as_str).unwrap_or("");
            let parts = content_parts(m.get("content"), &param)?;
            match role {
                "system" | "developer" => {
                    Ok(json!({"role": "system", "content": text_of(&parts, &param, "system")?}))
                }
                "user" => Ok(json!({"role": "user", "content": user_content(&parts, &param)?})),
                "assistant" => assistant_message(m, &parts, i),
                "tool" => {
                    let id = m
                        .get("tool_call_id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            bad(
                                &format!("messages[{i}].tool_call_id"),
                                "tool messages need a string 'tool_call_id'",
                            )
                        })?;
                    Ok(json!({
                        "role": "tool",
                        "tool_call_id": id,
                        "content": text_of(&parts, &param, "tool")?,
                    }))
                }
                other => Err(role_error(other, i, NAME)),
            }
        })
        .collect()
}

/// A user message: plain text stays a string; images make it an array of Cohere content parts.
fn user_content(parts: &[Part<'_>], param: &str) -> Result<Value, ProxyError> {
    if let [Part::Text(t)] = parts {
        return Ok(Value::String((*t).to_string()));
    }
    parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => Ok(json!({"type": "text", "text": t})),
            Part::Image { url, detail } => {
                let mut iu = json!({ "url": url });
                if let Some(d) = detail {
                    iu["detail"] = (*d).into();
                }
                Ok(json!({"type": "image_url", "image_url": iu}))
            }
            Part::File { .. } => Err(unsupported("file inputs", param)),
            Part::InputAudio { .. } => Err(unsupported("audio input", param)),
            Part::Other(kind) => Err(bad(param, format!("unknown content part type '{kind}'"))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn assistant_message(m: &Value, parts: &[Part<'_>], i: usize) -> Result<Value, ProxyError> {
    let param = format!("messages[{i}].content");
    let mut text = String::new();
    for p in parts {
        match p {
            Part::Text(t) => text.push_str(t),
            Part::Other("refusal") => {}
            _ => return Err(bad(&param, "assistant content parts must be text")),
        }
    }
    let mut out = Map::new();
    out.insert("role".into(), "assistant".into());
    if let Some(calls) = m.get("tool_calls").filter(|c| !c.is_null()) {
        let calls = calls.as_array().ok_or_else(|| {
            bad(
                &format!("messages[{i}].tool_calls"),
                "'tool_calls' must be an array",
            )
        })?;
        let calls = calls
            .iter()
            .enumerate()
            .map(|(j, c)| {
                let f = c.get("function");
                let id = c.get("id").and_then(Value::as_str);
                let name = f.and_then(|f| f.get("name")).and_then(Value::as_str);
                let (Some(id), Some(name)) = (id, name) else {
                    return Err(bad(
                        &format!("messages[{i}].tool_calls[{j}]"),
                        "tool calls need an 'id' and a 'function.name'",
                    ));
                };
                let args = match f.and_then(|f| f.get("arguments")) {
                    Some(Value::String(s)) => s.clone(),
                    None | Some(Value::Null) => "{}".to_string(),
                    Some(other) => other.to_string(),
                };
                Ok(json!({"id": id, "type": "function",
                          "function": {"name": name, "arguments": args}}))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !calls.is_empty() {
            out.insert("tool_calls".into(), Value::Array(calls));
        }
    }
    if m.get("function_call").is_some_and(|v| !v.is_null()) {
        return Err(unsupported(
            "legacy assistant 'function_call' (use 'tool_calls')",
            &format!("messages[{i}].function_call"),
        ));
    }
    if !text.is_empty() || !out.contains_key("tool_calls") {
        out.insert("content".into(), text.into());
    }
    Ok(Value::Object(out))
}

/// Cohere's `input_type` when the client names none: documents for a search index, the most
/// common use of an embeddings endpoint (Cohere requires one for its v3+ models).
pub(super) const DEFAULT_INPUT_TYPE: &str = "search_document";

pub(super) fn translate_embeddings(
    req: &RequestInfo<'_>,
    body: &mut Value,
) -> Result<(), ProxyError> {
    let obj = body_object(body)?;
    let texts: Vec<Value> = match obj.get("input") {
        Some(Value::String(s)) => vec![Value::String(s.clone())],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items.clone(),
        Some(Value::Array(_)) => {
            return Err(unsupported("token-array embeddings input", "input"));
        }
        _ => return Err(bad("input", "'input' must be a string or an array")),
    };
    let mut out = Map::new();
    out.insert("model".into(), req.model.into());
    out.insert("texts".into(), Value::Array(texts));
    let input_type = match obj.get("input_type") {
        None | Some(Value::Null) => Value::from(DEFAULT_INPUT_TYPE),
        Some(v @ Value::String(_)) => v.clone(),
        Some(_) => return Err(bad("input_type", "'input_type' must be a string")),
    };
    out.insert("input_type".into(), input_type);
    out.insert("embedding_types".into(), json!(["float"]));
    match obj.get("dimensions") {
        None | Some(Value::Null) => {}
        Some(v @ Value::Number(_)) => {
            out.insert("output_dimension".into(), v.clone());
        }
        Some(_) => return Err(bad("dimensions", "'dimensions' must be an integer")),
    }
    if let Some(t) = obj.get("truncate").filter(|v| v.is_string()) {
        out.insert("truncate".into(), t.clone());
    }
    *obj = out;
    Ok(())
}
