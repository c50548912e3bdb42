//! The request toolkit every translator shares: parameter rules, tools, tool choice, stop
//! sequences, data URLs and content parts, each with one wording for its 400.

use crate::error::ProxyError;
use serde_json::{Map, Value};

/// Whether an OpenAI request parameter asks for something, i.e. is set to other than its neutral
/// value (`n: 1`, `logprobs: false`, an empty `logit_bias`, zero penalties, a text
/// `response_format`, text-only `modalities`, `parallel_tool_calls: true`). Null never does.
pub fn requests_feature(key: &str, v: &Value) -> bool {
    match key {
        _ if v.is_null() => false,
        "n" => v.as_f64() != Some(1.0),
        "logprobs" => v != &Value::Bool(false),
        "logit_bias" => !v.as_object().is_some_and(Map::is_empty),
        "presence_penalty" | "frequency_penalty" => v.as_f64() != Some(0.0),
        "response_format" => v.get("type").and_then(Value::as_str) != Some("text"),
        "modalities" => v != &serde_json::json!(["text"]),
        "parallel_tool_calls" => v != &Value::Bool(true),
        _ => true,
    }
}

/// The first of `params` that the request sets to a non-neutral value, as a 400 naming it: for
/// providers whose API cannot express those OpenAI parameters.
pub fn reject_params(
    obj: &Map<String, Value>,
    params: &[&str],
    provider: &str,
) -> Result<(), ProxyError> {
    match params
        .iter()
        .find(|k| obj.get(**k).is_some_and(|v| requests_feature(k, v)))
    {
        Some(k) => Err(ProxyError::unsupported(&format!("'{k}'"), provider).with_param(*k)),
        None => Ok(()),
    }
}

/// One function tool of an OpenAI request (`{"type": "function", "function": {...}}`).
#[derive(Debug, Clone, Copy)]
pub struct FunctionTool<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    /// The JSON schema of the arguments, when given.
    pub parameters: Option<&'a Value>,
}

/// The request's `tools`, checked: an array of function tools each with a name; other tool types
/// are a 400 naming the provider that cannot take them.
pub fn function_tools<'a>(
    v: Option<&'a Value>,
    provider: &str,
) -> Result<Vec<FunctionTool<'a>>, ProxyError> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ProxyError::bad_request("'tools' must be an array").with_param("tools"))
        }
    };
    items
        .iter()
        .map(|t| {
            let kind = t.get("type").and_then(Value::as_str).unwrap_or("");
            if kind != "function" {
                return Err(ProxyError::unsupported(
                    &format!("tools of type '{kind}'"),
                    provider,
                ));
            }
            let f = t.get("function").unwrap_or(&Value::Null);
            let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                ProxyError::bad_request("every tool needs 'function.name'").with_param("tools")
            })?;
            Ok(FunctionTool {
                name,
                description: f.get("description").and_then(Value::as_str),
                parameters: f.get("parameters").filter(|p| !p.is_null()),
            })
        })
        .collect()
}
