//! OpenAI chat requests → ChatCompletion Pro bodies.

use super::{DEFAULT_BOT_CONTENT, DEFAULT_BOT_NAME, DEFAULT_USER_NAME, PROVIDER};
use crate::error::ProxyError;
use crate::openai::request::{
    body_object, content_parts, function_tools, unsupported_part, Param, ParamTable, Part,
    ToolChoice, NO_SAMPLING_EXTRAS,
};
use crate::providers::RequestInfo;
use serde_json::{json, Map, Value};

/// OpenAI parameters ChatCompletion Pro cannot express: a 400 naming them unless they hold their
/// default value. The Pro body is built field by field, so nothing else reaches MiniMax.
const PARAMS: ParamTable = ParamTable(&[
    ("stop", Param::Reject("'stop'")),
    ("seed", Param::Reject("'seed'")),
    ("audio", Param::Reject("'audio'")),
    ("modalities", Param::RejectUnlessNeutral("'modalities'")),
    ("prediction", Param::Reject("'prediction'")),
    ("functions", Param::Reject("'functions'")),
    ("function_call", Param::Reject("'function_call'")),
    (
        "parallel_tool_calls",
        Param::RejectUnlessNeutral("'parallel_tool_calls'"),
    ),
]);

/// Text of message `i`; Pro messages carry text only.
fn text(v: Option<&Value>, i: usize) -> Result<String, ProxyError> {
    let param = format!("messages[{i}].content");
    let raw = v.and_then(Value::as_array);
    let mut texts = Vec::new();
    for (j, part) in content_parts(v, &param)?.into_iter().enumerate() {
        match part {
            Part::Text(t) => texts.push(t),
            // Earlier assistant turns may carry a refusal: its text is the turn's text.
            Part::Other("refusal") => texts.push(
                raw.and_then(|r| r[j].get("refusal"))
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            ),
            Part::Image { .. } => {
                return Err(ProxyError::unsupported(
                    "image content (ChatCompletion Pro)",
                    PROVIDER,
                ))
            }
            Part::File { .. } | Part::InputAudio { .. } | Part::Other(_) => {
                return Err(unsupported_part(&part, PROVIDER))
            }
        }
    }
    Ok(texts.join("\n"))
}

fn name_of(m: &Map<String, Value>) -> Option<&str> {
    m.get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(super) fn pro_body(req: &RequestInfo<'_>, body: &mut Value) -> Result<Value, ProxyError> {
    let obj = body_object(body)?;
    NO_SAMPLING_EXTRAS.apply(obj, PROVIDER)?;
    PARAMS.apply(obj, PROVIDER)?;
    let items = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ProxyError::bad_request("'messages' must be an array").with_param("messages")
        })?;

    // System messages become the bot's setting; the first one's `name` names the bot.
    let mut bot_name: Option<&str> = None;
    let mut bot_content: Vec<String> = Vec::new();
    for (i, m) in items.iter().enumerate() {
        let Some(m) = m.as_object() else { continue };
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role == "system" || role == "developer" {
            bot_name = bot_name.or_else(|| name_of(m));
            bot_content.push(text(m.get("content"), i)?);
        }
    }
    let bot_name = bot_name.unwrap_or(DEFAULT_BOT_NAME);
    let bot_content = if bot_content.is_empty() {
        DEFAULT_BOT_CONTENT.to_string()
    } else {
        bot_content.join("\n\n")
    };

    let mut messages = Vec::with_capacity(items.len());
    // tool_call_id → function name, for FUNCTION messages (bounded by the request).
    let mut call_names: Vec<(String, String)> = Vec::new();
    for (i, m) in items.iter().enumerate() {
        let m = m.as_object().ok_or_else(|| {
            ProxyError::bad_request(format!("messages[{i}] must be an object"))
                .with_param("messages")
        })?;
        if m.get("function_call").is_some_and(|v| !v.is_null()) {
            return Err(ProxyError::unsupported(
                "'function_call' in messages",
                PROVIDER,
            ));
        }
        match m.get("role").and_then(Value::as_str).unwrap_or("") {
            "system" | "developer" => {}
            "user" => messages.push(json!({
                "sender_type": "USER",
                "sender_name": name_of(m).unwrap_or(DEFAULT_USER_NAME),
                "text": text(m.get("content"), i)?,
            })),
            "assistant" => {
                let mut msg = Map::new();
                msg.insert("sender_type".into(), "BOT".into());
                msg.insert("sender_name".into(), bot_name.into());
                msg.insert("text".into(), text(m.get("content"), i)?.into());
                let calls = m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .map_or(&[][..], Vec::as_slice);
                match calls {
                    [] => {}
                    [call] => {
                        let f = call.get("function").unwrap_or(&Value::Null);
                        let name = f.get("name").and_then(Value::as_str).unwrap_or("");
                        let args = f.get("arguments").and_then(Value::as_str).unwrap_or("");
                        if let Some(id) = call.get("id").and_then(Value::as_str) {
                            call_names.push((id.to_string(), name.to_string()));
                        }
                        msg.insert(
                            "function_call".into(),
                            json!({"name": name, "arguments": args}),
                        );
                    }
                    _ => {
                        return Err(ProxyError::unsupported(
                            "several tool calls in one assistant message (ChatCompletion Pro)",
                            PROVIDER,
                        ))
                    }
                }
                messages.push(Value::Object(msg));
            }
            "tool" => {
                let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
                let name = call_names
                    .iter()
                    .find(|(k, _)| k == id)
                    .map(|(_, n)| n.as_str())
                    .or_else(|| name_of(m))
                    .ok_or_else(|| {
                        ProxyError::bad_request(format!(
                            "messages[{i}]: tool_call_id '{id}' matches no earlier assistant tool call"
                        ))
                        .with_param("messages")
                    })?;
                messages.push(json!({
                    "sender_type": "FUNCTION",
                    "sender_name": name,
                    "text": text(m.get("content"), i)?,
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

    let mut out = Map::new();
    out.insert("model".into(), req.model.into());
    out.insert("stream".into(), req.stream.into());
    out.insert(
        "bot_setting".into(),
        json!([{"bot_name": bot_name, "content": bot_content}]),
    );
    out.insert(
        "reply_constraints".into(),
        json!({"sender_type": "BOT", "sender_name": bot_name}),
    );
    out.insert("messages".into(), Value::Array(messages));
    let max = obj
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| obj.get("max_tokens").filter(|v| !v.is_null()));
    if let Some(v) = max {
        if !v.is_u64() {
            return Err(
                ProxyError::bad_request("'max_tokens' must be a positive integer")
                    .with_param("max_tokens"),
            );
        }
        out.insert("tokens_to_generate".into(), v.clone());
    }
    for key in ["temperature", "top_p"] {
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(v @ Value::Number(_)) => {
                out.insert(key.into(), v.clone());
            }
            Some(_) => {
                return Err(
                    ProxyError::bad_request(format!("'{key}' must be a number")).with_param(key)
                )
            }
        }
    }
    let functions = functions(obj.get("tools"))?;
    let offer_functions = match ToolChoice::parse(obj.get("tool_choice"))? {
        None | Some(ToolChoice::Auto) => true,
        // The model may not call any: do not offer them.
        Some(ToolChoice::None) => false,
        Some(ToolChoice::Required) => {
            return Err(ProxyError::unsupported("tool_choice 'required'", PROVIDER)
                .with_param("tool_choice"))
        }
        Some(ToolChoice::Function(_)) => {
            return Err(
                ProxyError::unsupported("'tool_choice' naming a function", PROVIDER)
                    .with_param("tool_choice"),
            )
        }
        Some(ToolChoice::Allowed { .. }) => {
            return Err(
                ProxyError::unsupported("tool_choice 'allowed_tools'", PROVIDER)
                    .with_param("tool_choice"),
            )
        }
    };
    if offer_functions && !functions.is_empty() {
        out.insert("functions".into(), Value::Array(functions));
    }
    Ok(Value::Object(out))
}

fn functions(v: Option<&Value>) -> Result<Vec<Value>, ProxyError> {
    let tools = function_tools(v, PROVIDER)?;
    Ok(tools
        .into_iter()
        .map(|t| {
            let mut function = Map::new();
            function.insert("name".into(), t.name.into());
            if let Some(d) = t.description {
                function.insert("description".into(), d.into());
            }
            if let Some(p) = t.parameters {
                function.insert("parameters".into(), p.clone());
            }
            Value::Object(function)
        })
        .collect())
}
