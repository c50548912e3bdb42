//! OpenAI chat request → Bedrock Converse request body.

use super::NAME;
use crate::error::ProxyError;
use crate::openai::request::{
    bad_param as bad, body_object, content_parts, function_tools, parse_data_url, role_error,
    stop_sequences, take, Param, ParamTable, Part, ToolChoice, OPENAI_ONLY,
};
use crate::providers::claude::thinking::{self, Thinking};
use serde_json::{json, Map, Value};

fn unsupported(feature: &str, param: &str) -> ProxyError {
    ProxyError::unsupported(feature, NAME).with_param(param)
}

/// OpenAI parameters Converse cannot express beyond [`OPENAI_ONLY`] are refused; OpenAI-side
/// bookkeeping is dropped.
const PARAMS: ParamTable = ParamTable(&[
    (
        "frequency_penalty",
        Param::RejectUnlessNeutral("frequency_penalty"),
    ),
    (
        "presence_penalty",
        Param::RejectUnlessNeutral("presence_penalty"),
    ),
    (
        "response_format",
        Param::RejectUnlessNeutral("response_format other than text"),
    ),
    ("seed", Param::Reject("seed")),
    ("user", Param::Drop),
    ("safety_identifier", Param::Drop),
    ("parallel_tool_calls", Param::Drop),
    ("stream", Param::Drop),
    ("stream_options", Param::Drop),
    ("model", Param::Drop),
]);

/// Rewrites the OpenAI body into a Converse body (the model goes in the path). `additional` is
/// `bedrockAdditionalFields`, sent as `additionalModelRequestFields`.
pub(super) fn converse_body(
    body: &mut Value,
    model: &str,
    additional: &Map<String, Value>,
) -> Result<(), ProxyError> {
    let obj = body_object(body)?;
    let mut src = std::mem::take(obj);
    OPENAI_ONLY.apply(&mut src, NAME)?;
    PARAMS.apply(&mut src, NAME)?;
    let mut out = Map::new();

    let messages = match take(&mut src, "messages") {
        Some(Value::Array(m)) => m,
        _ => return Err(bad("messages", "'messages' must be an array")),
    };
    let (system, messages, uses_tools) = convert_messages(&messages)?;
    out.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }

    let mut inference = Map::new();
    let max_completion = take(&mut src, "max_completion_tokens");
    match max_completion.or(take(&mut src, "max_tokens")) {
        None => {}
        Some(v) if v.is_u64() => {
            inference.insert("maxTokens".into(), v);
        }
        Some(_) => return Err(bad("max_tokens", "'max_tokens' must be a positive integer")),
    }
    for (key, name) in [("temperature", "temperature"), ("top_p", "topP")] {
        match take(&mut src, key) {
            None => {}
            Some(v @ Value::Number(_)) => {
                inference.insert(name.into(), v);
            }
            Some(_) => return Err(bad(key, format!("'{key}' must be a number"))),
        }
    }
    let stop = stop_sequences(take(&mut src, "stop"))?;
    if !stop.is_empty() {
        inference.insert("stopSequences".into(), stop.into());
    }
    // Claude's thinking fields for `reasoning_effort`, unless bedrockAdditionalFields set them.
    let mut thinking_fields = Map::new();
    if let Some(effort) = take(&mut src, "reasoning_effort") {
        if !additional.contains_key("thinking") {
            claude_thinking(model, &effort, &mut inference, &mut thinking_fields)?;
        }
    }
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }

    let tools_v = take(&mut src, "tools");
    let choice = ToolChoice::parse(take(&mut src, "tool_choice").as_ref())?;
    if let Some(tc) = tool_config(tools_v.as_ref(), choice, uses_tools)? {
        out.insert("toolConfig".into(), tc);
    }

    // `top_k` and model-specific fields travel in additionalModelRequestFields.
    let mut extra = additional.clone();
    if let Some(k) = take(&mut src, "top_k") {
        extra.insert("top_k".into(), k);
    }
    for (k, v) in thinking_fields {
        extra.entry(k).or_insert(v);
    }
    if !extra.is_empty() {
        out.insert("additionalModelRequestFields".into(), Value::Object(extra));
    }
    // Converse-native fields a client may send on purpose go through for Bedrock to judge; any
    // other leftover OpenAI field would be refused by Bedrock as unknown, so it is dropped.
    for key in [
        "guardrailConfig",
        "additionalModelResponseFieldPaths",
        "promptVariables",
        "performanceConfig",
        "requestMetadata",
    ] {
        if let Some(v) = take(&mut src, key) {
            out.insert(key.into(), v);
        }
    }
    *obj = out;
    Ok(())
}

/// `reasoning_effort` → Claude's thinking in `additionalModelRequestFields`, the same control
/// as the claude provider's (`claude/thinking.rs`; Bedrock user guide, "Extended thinking" and
/// "Adaptive thinking": `thinking` and `output_config.effort` go there as in Anthropic's API).
/// A fixed budget stays below `maxTokens`. Other Bedrock models have no common thinking field:
/// there it is a 400 pointing at `bedrockAdditionalFields`.
fn claude_thinking(
    model: &str,
    effort: &Value,
    inference: &mut Map<String, Value>,
    extra: &mut Map<String, Value>,
) -> Result<(), ProxyError> {
    // Model ids, cross-region inference profiles (`us.anthropic.claude-…`) and their ARNs.
    if !model.contains("anthropic.claude") {
        return Err(ProxyError::unsupported(
            "reasoning_effort for this model (set its reasoning fields in bedrockAdditionalFields)",
            NAME,
        )
        .with_param("reasoning_effort"));
    }
    let thinking = thinking::for_effort(model, effort)?;
    if let Some(field) = thinking.field() {
        extra.insert("thinking".into(), field);
    }
    match thinking {
        Thinking::Budget(budget) => {
            let max = inference
                .get("maxTokens")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if max <= budget {
                inference.insert(
                    "maxTokens".into(),
                    (budget + crate::providers::claude::DEFAULT_MAX_TOKENS).into(),
                );
            }
        }
        Thinking::Adaptive(level) => {
            extra.insert("output_config".into(), json!({ "effort": level }));
        }
        Thinking::Omit | Thinking::Disabled => {}
    }
    Ok(())
}

fn tool_config(
    tools: Option<&Value>,
    choice: Option<ToolChoice>,
    history_uses_tools: bool,
) -> Result<Option<Value>, ProxyError> {
    let tools = function_tools(tools, NAME)?;
    let spec = |name: &str| {
        tools.iter().find(|t| t.name == name).map(|t| {
            let mut s = Map::new();
            s.insert("name".into(), t.name.into());
            if let Some(d) = t.description.filter(|d| !d.is_empty()) {
                s.insert("description".into(), d.into());
            }
            let schema = t
                .parameters
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            s.insert("inputSchema".into(), json!({ "json": schema }));
            json!({ "toolSpec": s })
        })
    };
    if tools.is_empty() {
        return match choice {
            None | Some(ToolChoice::Auto | ToolChoice::None) => Ok(None),
            Some(_) => Err(bad("tool_choice", "tool_choice needs 'tools'")),
        };
    }
    let (names, converse_choice): (Vec<&str>, Option<Value>) = match &choice {
        None | Some(ToolChoice::Auto) => (tools.iter().map(|t| t.name).collect(), None),
        Some(ToolChoice::Required) => (
            tools.iter().map(|t| t.name).collect(),
            Some(json!({"any": {}})),
        ),
        Some(ToolChoice::Function(n)) => {
            if spec(n).is_none() {
                return Err(bad(
                    "tool_choice",
                    format!("tool_choice names '{n}', which is not in 'tools'"),
                ));
            }
            (
                tools.iter().map(|t| t.name).collect(),
                Some(json!({"tool": {"name": n}})),
            )
        }
        Some(ToolChoice::Allowed { names, required }) => (
            names.iter().map(String::as_str).collect(),
            required.then(|| json!({"any": {}})),
        ),
        Some(ToolChoice::None) => {
            // Converse has no "none": leaving the tools out says the same, unless the
            // conversation already holds tool calls (Bedrock then requires the tool config).
            if history_uses_tools {
                return Err(unsupported(
                    "tool_choice 'none' in a conversation with tool calls",
                    "tool_choice",
                ));
            }
            return Ok(None);
        }
    };
    let specs: Vec<Value> = names.iter().filter_map(|n| spec(n)).collect();
    let mut tc = Map::new();
    tc.insert("tools".into(), Value::Array(specs));
    if let Some(c) = converse_choice {
        tc.insert("toolChoice".into(), c);
    }
    Ok(Some(Value::Object(tc)))
}

/// Converse's image formats, by media type.
fn image_format(media_type: &str) -> Option<&'static str> {
    match media_type.to_ascii_lowercase().as_str() {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

fn document_format(media_type: &str) -> Option<&'static str> {
    Some(match media_type.to_ascii_lowercase().as_str() {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        _ => return None,
    })
}

/// Converse document names allow letters, digits, whitespace, hyphens, parentheses, brackets.
fn document_name(filename: Option<&str>) -> String {
    let stem = filename
        .map(|f| f.rsplit_once('.').map_or(f, |(s, _)| s))
        .unwrap_or("");
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '(' | ')' | '[' | ']') {
                c
            } else {
                ' '
            }
        })
        .collect();
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        "document".into()
    } else {
        name
    }
}

fn content_blocks(content: Option<&Value>, param: &str) -> Result<Vec<Value>, ProxyError> {
    let mut out = Vec::new();
    for (j, part) in content_parts(content, param)?.into_iter().enumerate() {
        let p = format!("{param}[{j}]");
        match part {
            Part::Text(t) => {
                if !t.is_empty() {
                    out.push(json!({ "text": t }));
                }
            }
            Part::Image { url, .. } => {
                let d = parse_data_url(url).ok_or_else(|| {
                    unsupported(
                        "image URLs other than data URLs (Converse takes image bytes)",
                        &p,
                    )
                })?;
                let format = image_format(d.media_type).ok_or_else(|| {
                    unsupported(&format!("images of type '{}'", d.media_type), &p)
                })?;
                out.push(json!({"image": {"format": format, "source": {"bytes": d.data}}}));
            }
            Part::File {
                data: Some(data),
                filename,
                ..
            } => {
                let d = parse_data_url(data).ok_or_else(|| {
                    bad(
                        &p,
                        "file_data must look like data:<media type>;base64,<data>",
                    )
                })?;
                if let Some(format) = image_format(d.media_type) {
                    out.push(json!({"image": {"format": format, "source": {"bytes": d.data}}}));
                } else {
                    let format = document_format(d.media_type).ok_or_else(|| {
                        unsupported(&format!("file input of type '{}'", d.media_type), &p)
                    })?;
                    out.push(json!({"document": {
                        "format": format,
                        "name": document_name(filename),
                        "source": {"bytes": d.data},
                    }}));
                }
            }
            Part::File { .. } => return Err(unsupported("file inputs by file_id", &p)),
            Part::InputAudio { .. } => return Err(unsupported("audio input", &p)),
            Part::Other("refusal") => {}
            Part::Other(kind) => {
                return Err(bad(&p, format!("unknown content part type '{kind}'")))
            }
        }
    }
    Ok(out)
}

fn refusal_text(content: Option<&Value>) -> Vec<Value> {
    // Assistant refusal parts are text the model said.
    content
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("type").and_then(Value::as_str) == Some("refusal"))
        .filter_map(|p| p.get("refusal").and_then(Value::as_str))
        .map(|t| json!({ "text": t }))
        .collect()
}

fn push_turn(turns: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    // Converse wants alternating roles: consecutive same-role turns merge.
    if let Some(last) = turns.last_mut() {
        if last["role"] == role {
            if let Some(Value::Array(c)) = last.get_mut("content") {
                c.extend(blocks);
                return;
            }
        }
    }
    turns.push(json!({"role": role, "content": blocks}));
}

/// OpenAI messages → (system blocks, Converse messages, whether tool calls or results appear).
fn convert_messages(messages: &[Value]) -> Result<(Vec<Value>, Vec<Value>, bool), ProxyError> {
    let mut system = Vec::new();
    let mut turns = Vec::new();
    let mut uses_tools = false;
    for (i, m) in messages.iter().enumerate() {
        let Some(m) = m.as_object() else {
            return Err(bad(
                &format!("messages[{i}]"),
                "each message must be an object",
            ));
        };
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let param = format!("messages[{i}].content");
        let content = m.get("content");
        match role {
            "system" | "developer" => {
                for part in content_parts(content, &param)? {
                    match part {
                        Part::Text(t) if !t.is_empty() => system.push(json!({ "text": t })),
                        Part::Text(_) => {}
                        _ => {
                            return Err(bad(&param, "system messages may only contain text parts"))
                        }
                    }
                }
            }
            "user" => {
                let blocks = content_blocks(content, &param)?;
                push_turn(&mut turns, "user", blocks);
            }
            "assistant" => {
                let mut blocks = content_blocks(content, &param)?;
                blocks.extend(refusal_text(content));
                if let Some(calls) = m.get("tool_calls").filter(|c| !c.is_null()) {
                    let calls = calls.as_array().ok_or_else(|| {
                        bad(
                            &format!("messages[{i}].tool_calls"),
                            "'tool_calls' must be an array",
                        )
                    })?;
                    for (j, call) in calls.iter().enumerate() {
                        blocks.push(tool_use(call, &format!("messages[{i}].tool_calls[{j}]"))?);
                        uses_tools = true;
                    }
                }
                push_turn(&mut turns, "assistant", blocks);
            }
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
                let mut result = content_blocks(content, &param)?;
                if result.is_empty() {
                    result.push(json!({"text": ""}));
                }
                uses_tools = true;
                push_turn(
                    &mut turns,
                    "user",
                    vec![json!({"toolResult": {"toolUseId": id, "content": result}})],
                );
            }
            other => return Err(role_error(other, i, NAME)),
        }
    }
    Ok((system, turns, uses_tools))
}

fn tool_use(call: &Value, param: &str) -> Result<Value, ProxyError> {
    let id = call.get("id").and_then(Value::as_str);
    let f = call.get("function");
    let name = f.and_then(|f| f.get("name")).and_then(Value::as_str);
    let (Some(id), Some(name)) = (id, name) else {
        return Err(bad(param, "tool calls need an 'id' and a 'function.name'"));
    };
    let bad_args = || {
        bad(
            &format!("{param}.function.arguments"),
            "tool call arguments must be a JSON object encoded as a string",
        )
    };
    let input = match f.and_then(|f| f.get("arguments")) {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Err(bad_args()),
        },
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(bad_args()),
    };
    Ok(json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}))
}
