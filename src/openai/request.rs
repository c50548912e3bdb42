//! The request toolkit every translator shares: parameter rules, tools, tool choice, stop
//! sequences, data URLs and content parts, each with one wording for its 400.

use crate::error::ProxyError;
use serde_json::{Map, Value};

/// A 400 about one request parameter.
pub fn bad_param(param: &str, msg: impl Into<String>) -> ProxyError {
    ProxyError::bad_request(msg).with_param(param)
}

/// The 400 for a request body that is JSON but not an object, in one wording.
pub fn not_an_object() -> ProxyError {
    ProxyError::bad_request("request body must be a JSON object")
}

/// The request body as the object every translator starts from.
pub fn body_object(body: &mut Value) -> Result<&mut Map<String, Value>, ProxyError> {
    body.as_object_mut().ok_or_else(not_an_object)
}

/// The 400 for message `i`'s role when a translator has no mapping for it: the legacy `function`
/// role is named as unsupported, anything else as unknown.
pub fn role_error(role: &str, i: usize, provider: &str) -> ProxyError {
    let param = format!("messages[{i}].role");
    match role {
        "function" => ProxyError::unsupported("the legacy 'function' role (use 'tool')", provider)
            .with_param(param),
        other => bad_param(&param, format!("unknown message role '{other}'")),
    }
}

/// The schema of a `{"type": "json_schema"}` `response_format` (`json_schema.schema`, an object).
pub fn json_schema(rf: &Value) -> Result<&Value, ProxyError> {
    rf.get("json_schema")
        .and_then(|j| j.get("schema"))
        .filter(|s| s.is_object())
        .ok_or_else(|| {
            bad_param(
                "response_format",
                "response_format json_schema needs 'json_schema.schema'",
            )
        })
}

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

/// Takes a field out of a request object, treating `null` as absent.
pub fn take(src: &mut Map<String, Value>, key: &str) -> Option<Value> {
    src.remove(key).filter(|v| !v.is_null())
}

/// What a provider does with one OpenAI request parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// Left in the body for the translator to map or pass on.
    Keep,
    /// Removed silently: OpenAI-side bookkeeping the provider has no use for (`store`,
    /// `service_tier`, `user` where there is no user field, ...).
    Drop,
    /// Removed when neutral (`n: 1`, `logprobs: false`, zero penalties, a text format); any
    /// other value is a 400 naming this feature and the provider.
    RejectUnlessNeutral(&'static str),
    /// Any non-null value is a 400 naming this feature and the provider.
    Reject(&'static str),
}

/// A provider's declarative table of OpenAI parameters: what it cannot take is refused with one
/// wording, what it ignores is dropped, the rest is left for its translator.
#[derive(Debug, Clone, Copy)]
pub struct ParamTable(pub &'static [(&'static str, Param)]);

impl ParamTable {
    /// Applies the table to a request object, in table order: the parameter refused is the first
    /// offending row, and keys are removed in row order (as one removal after another would).
    pub fn apply(&self, src: &mut Map<String, Value>, provider: &str) -> Result<(), ProxyError> {
        let rows = self.0;
        if rows.len() > 64 {
            return self.apply_by_rows(src, provider);
        }
        // Walk the request's few keys against the table instead of looking every row up in the
        // map: rows the request does not set cost no hashing and no removal.
        let mut present = 0u64;
        let mut refused: Option<(usize, &str)> = None;
        for (key, v) in src.iter() {
            let Some(i) = rows.iter().position(|(k, _)| k == key) else {
                continue;
            };
            let refusal = match rows[i].1 {
                Param::Keep => continue,
                Param::Drop => None,
                Param::RejectUnlessNeutral(feature) => requests_feature(key, v).then_some(feature),
                Param::Reject(feature) => (!v.is_null()).then_some(feature),
            };
            present |= 1 << i;
            if let Some(feature) = refusal {
                if refused.is_none_or(|(r, _)| i < r) {
                    refused = Some((i, feature));
                }
            }
        }
        if let Some((i, feature)) = refused {
            return Err(ProxyError::unsupported(feature, provider).with_param(rows[i].0));
        }
        while present != 0 {
            let i = present.trailing_zeros() as usize;
            present &= present - 1;
            src.remove(rows[i].0);
        }
        Ok(())
    }

    /// [`ParamTable::apply`] row by row, for tables longer than its bit set.
    fn apply_by_rows(
        &self,
        src: &mut Map<String, Value>,
        provider: &str,
    ) -> Result<(), ProxyError> {
        for (key, rule) in self.0 {
            match rule {
                Param::Keep => {}
                Param::Drop => {
                    src.remove(*key);
                }
                Param::RejectUnlessNeutral(feature) => {
                    if src.get(*key).is_some_and(|v| requests_feature(key, v)) {
                        return Err(ProxyError::unsupported(feature, provider).with_param(*key));
                    }
                    src.remove(*key);
                }
                Param::Reject(feature) => {
                    if src.get(*key).is_some_and(|v| !v.is_null()) {
                        return Err(ProxyError::unsupported(feature, provider).with_param(*key));
                    }
                    src.remove(*key);
                }
            }
        }
        Ok(())
    }

    /// The rule for one parameter (`Keep` when the table does not name it).
    pub fn rule(&self, key: &str) -> Param {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(Param::Keep, |(_, r)| *r)
    }
}

/// OpenAI's sampling extras that providers without them (Hunyuan, MiniMax Pro) refuse unless
/// neutral: one list, applied before each provider's own table.
pub const NO_SAMPLING_EXTRAS: ParamTable = ParamTable(&[
    ("n", Param::RejectUnlessNeutral("'n'")),
    ("logprobs", Param::RejectUnlessNeutral("'logprobs'")),
    ("top_logprobs", Param::Reject("'top_logprobs'")),
    ("logit_bias", Param::RejectUnlessNeutral("'logit_bias'")),
    (
        "presence_penalty",
        Param::RejectUnlessNeutral("'presence_penalty'"),
    ),
    (
        "frequency_penalty",
        Param::RejectUnlessNeutral("'frequency_penalty'"),
    ),
    (
        "response_format",
        Param::RejectUnlessNeutral("'response_format'"),
    ),
]);

/// OpenAI features and bookkeeping that Messages-style APIs (Claude, Bedrock Converse, Cohere v2)
/// have no field for, in one wording: applied before each of those providers' own table.
pub const OPENAI_ONLY: ParamTable = ParamTable(&[
    (
        "n",
        Param::RejectUnlessNeutral("n other than 1 (multiple choices)"),
    ),
    ("logprobs", Param::RejectUnlessNeutral("logprobs")),
    ("top_logprobs", Param::Reject("top_logprobs")),
    ("logit_bias", Param::RejectUnlessNeutral("logit_bias")),
    (
        "modalities",
        Param::RejectUnlessNeutral("modalities other than text"),
    ),
    ("audio", Param::Reject("audio output")),
    (
        "functions",
        Param::Reject("legacy 'functions' (use 'tools')"),
    ),
    (
        "function_call",
        Param::Reject("legacy 'function_call' (use 'tool_choice')"),
    ),
    ("verbosity", Param::Reject("verbosity")),
    ("prediction", Param::Reject("prediction")),
    ("web_search_options", Param::Reject("web_search_options")),
    ("store", Param::Drop),
    ("metadata", Param::Drop),
    ("service_tier", Param::Drop),
    ("prompt_cache_key", Param::Drop),
    ("prompt_cache_retention", Param::Drop),
]);

/// `stop`: a string or an array of strings, as a list (empty when absent or `[]`).
pub fn stop_sequences(v: Option<Value>) -> Result<Vec<String>, ProxyError> {
    let bad = || {
        ProxyError::bad_request("'stop' must be a string or an array of strings").with_param("stop")
    };
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(s),
                _ => Err(bad()),
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// OpenAI's `tool_choice`, read once for every provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// `required`: some tool must be called.
    Required,
    /// `{"type": "function", "function": {"name"}}`: this tool must be called.
    Function(String),
    /// `{"type": "allowed_tools", "allowed_tools": {"mode", "tools"}}`: only these, with
    /// `required` saying whether one must be called.
    Allowed {
        names: Vec<String>,
        required: bool,
    },
}

impl ToolChoice {
    /// Parses `tool_choice`; `None` when absent or null.
    pub fn parse(v: Option<&Value>) -> Result<Option<Self>, ProxyError> {
        let bad = |msg: &str| ProxyError::bad_request(msg).with_param("tool_choice");
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let tc = match v {
            Value::String(s) => match s.as_str() {
                "auto" => Self::Auto,
                "none" => Self::None,
                "required" => Self::Required,
                other => {
                    return Err(bad(&format!(
                        "tool_choice '{other}' is not one of auto, none, required"
                    )))
                }
            },
            Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                Some("function") | None => {
                    let name = o
                        .get("function")
                        .and_then(|f| f.get("name"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("tool_choice objects must name a function"))?;
                    Self::Function(name.to_string())
                }
                Some("allowed_tools") => {
                    let at = o.get("allowed_tools").unwrap_or(&Value::Null);
                    let required = match at.get("mode").and_then(Value::as_str) {
                        Some("required") => true,
                        Some("auto") | None => false,
                        Some(m) => return Err(bad(&format!("unknown allowed_tools mode '{m}'"))),
                    };
                    let names = at
                        .get("tools")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|t| {
                            t.get("function")
                                .and_then(|f| f.get("name"))
                                .or_else(|| t.get("name"))
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        })
                        .collect();
                    Self::Allowed { names, required }
                }
                Some(other) => return Err(bad(&format!("unknown tool_choice type '{other}'"))),
            },
            _ => return Err(bad("tool_choice must be a string or an object")),
        };
        Ok(Some(tc))
    }
}

/// A `data:` URL's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataUrl<'a> {
    pub media_type: &'a str,
    /// Base64 payload, as given.
    pub data: &'a str,
}

/// `data:<media type>[;params];base64,<data>`; `None` for anything else (plain `data:` URLs
/// without base64 included, which no provider takes).
pub fn parse_data_url(url: &str) -> Option<DataUrl<'_>> {
    let rest = url.strip_prefix("data:")?;
    let (header, data) = rest.split_once(',')?;
    let mut params = header.split(';');
    let media_type = params.next()?.trim();
    if media_type.is_empty() || !params.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
        return None;
    }
    Some(DataUrl { media_type, data })
}

/// The 400 for an image URL a provider cannot take, in one wording.
pub fn bad_image_url(param: &str, accepted: &str) -> ProxyError {
    ProxyError::bad_request(format!("image_url must be {accepted}")).with_param(param)
}

/// One content part of an OpenAI message.
#[derive(Debug, Clone, Copy)]
pub enum Part<'a> {
    Text(&'a str),
    /// `image_url.url` and its `detail`.
    Image {
        url: &'a str,
        detail: Option<&'a str>,
    },
    /// `file` parts: inline `file_data` (a data URL) or an uploaded `file_id`.
    File {
        data: Option<&'a str>,
        file_id: Option<&'a str>,
        filename: Option<&'a str>,
    },
    InputAudio {
        data: &'a str,
        format: &'a str,
    },
    /// Anything else, by its `type`.
    Other(&'a str),
}

impl<'a> Part<'a> {
    /// The part's OpenAI `type` (`text`, `image_url`, `file`, `input_audio`, or the other's).
    pub fn type_name(&self) -> &'a str {
        match self {
            Part::Text(_) => "text",
            Part::Image { .. } => "image_url",
            Part::File { .. } => "file",
            Part::InputAudio { .. } => "input_audio",
            Part::Other(kind) => kind,
        }
    }
}

/// The 400 for a content part a provider cannot take, in one wording (`'file' content parts`).
pub fn unsupported_part(part: &Part<'_>, provider: &str) -> ProxyError {
    ProxyError::unsupported(&format!("'{}' content parts", part.type_name()), provider)
}

/// A message's content as parts: a string is one text part, `null` none; an array is read part
/// by part. `param` names the message in errors (`messages[2].content`).
pub fn content_parts<'a>(
    content: Option<&'a Value>,
    param: &str,
) -> Result<Vec<Part<'a>>, ProxyError> {
    let bad = |msg: String| ProxyError::bad_request(msg).with_param(param.to_string());
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![Part::Text(s)]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|p| {
                let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
                Ok(match kind {
                    "text" => Part::Text(
                        p.get("text")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("{param}: text parts need 'text'")))?,
                    ),
                    "image_url" => {
                        let iu = p.get("image_url");
                        let url = iu
                            .and_then(|i| i.get("url").or(Some(i)))
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("{param}: image_url parts need a url")))?;
                        Part::Image {
                            url,
                            detail: iu.and_then(|i| i.get("detail")).and_then(Value::as_str),
                        }
                    }
                    "file" => {
                        let f = p.get("file").unwrap_or(&Value::Null);
                        let s = |k: &str| f.get(k).and_then(Value::as_str);
                        Part::File {
                            data: s("file_data"),
                            file_id: s("file_id"),
                            filename: s("filename"),
                        }
                    }
                    "input_audio" => {
                        let a = p.get("input_audio").unwrap_or(&Value::Null);
                        let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("");
                        Part::InputAudio {
                            data: s("data"),
                            format: s("format"),
                        }
                    }
                    other => Part::Other(other),
                })
            })
            .collect(),
        Some(_) => Err(bad(format!("{param} must be a string or an array"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn param_table_drops_rejects_and_keeps() {
        const T: ParamTable = ParamTable(&[
            ("store", Param::Drop),
            ("n", Param::RejectUnlessNeutral("n other than 1")),
            ("audio", Param::Reject("audio output")),
        ]);
        let mut o = json!({"store": true, "n": 1, "temperature": 1})
            .as_object()
            .unwrap()
            .clone();
        T.apply(&mut o, "p").unwrap();
        assert_eq!(Value::Object(o), json!({"temperature": 1}));
        let mut o = json!({"n": 2}).as_object().unwrap().clone();
        let e = T.apply(&mut o, "p").unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some("n")));
        let mut o = json!({"audio": {}}).as_object().unwrap().clone();
        let e = T.apply(&mut o, "p").unwrap_err();
        assert!(e.message.contains("audio output"), "{}", e.message);
        assert_eq!(T.rule("temperature"), Param::Keep);
    }

    #[test]
    fn param_table_by_keys_matches_row_by_row() {
        const T: ParamTable = ParamTable(&[
            ("store", Param::Drop),
            ("n", Param::RejectUnlessNeutral("n other than 1")),
            ("temperature", Param::Keep),
            ("audio", Param::Reject("audio output")),
            ("user", Param::Drop),
            ("logprobs", Param::RejectUnlessNeutral("logprobs")),
        ]);
        for body in [
            json!({"user": "u", "a": 1, "store": true, "n": 1, "b": 2, "logprobs": false, "c": 3}),
            json!({"temperature": 1, "audio": null, "z": 0, "user": "u"}),
            json!({"logprobs": true, "audio": {}, "n": 2}),
            json!({"logprobs": true, "store": true}),
            json!({}),
        ] {
            let mut fast = body.as_object().unwrap().clone();
            let mut slow = fast.clone();
            let a = T.apply(&mut fast, "p").map_err(|e| (e.message, e.param));
            let b = T
                .apply_by_rows(&mut slow, "p")
                .map_err(|e| (e.message, e.param));
            assert_eq!(a, b, "{body}");
            if a.is_ok() {
                // The same keys left, in the same order.
                let keys = |m: &Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
                assert_eq!(keys(&fast), keys(&slow), "{body}");
            }
        }
        // Two refused parameters: the first row in table order is named.
        let mut o = json!({"logprobs": true, "n": 3})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            T.apply(&mut o, "p").unwrap_err().param.as_deref(),
            Some("n")
        );
    }

    #[test]
    fn stop_and_tool_choice() {
        assert_eq!(stop_sequences(Some(json!("x"))).unwrap(), vec!["x"]);
        assert_eq!(
            stop_sequences(Some(json!(["a", "b"]))).unwrap(),
            vec!["a", "b"]
        );
        assert!(stop_sequences(Some(json!([1]))).is_err());
        assert_eq!(
            ToolChoice::parse(Some(&json!("required"))).unwrap(),
            Some(ToolChoice::Required)
        );
        assert_eq!(
            ToolChoice::parse(Some(
                &json!({"type": "function", "function": {"name": "f"}})
            ))
            .unwrap(),
            Some(ToolChoice::Function("f".into()))
        );
        assert_eq!(
            ToolChoice::parse(Some(&json!({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "g"}}]}}))).unwrap(),
            Some(ToolChoice::Allowed { names: vec!["g".into()], required: true })
        );
        assert!(ToolChoice::parse(Some(&json!("sometimes"))).is_err());
        assert_eq!(ToolChoice::parse(None).unwrap(), None);
    }

    #[test]
    fn data_urls_and_parts() {
        let d = parse_data_url("data:image/png;base64,AAAA").unwrap();
        assert_eq!((d.media_type, d.data), ("image/png", "AAAA"));
        assert!(parse_data_url("data:image/png,AAAA").is_none());
        assert!(parse_data_url("https://x").is_none());
        let c = json!([{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "u", "detail": "low"}}]);
        let parts = content_parts(Some(&c), "messages[0].content").unwrap();
        assert!(matches!(parts[0], Part::Text("hi")));
        assert!(matches!(
            parts[1],
            Part::Image {
                url: "u",
                detail: Some("low")
            }
        ));
        assert!(content_parts(Some(&json!(5)), "m").is_err());
    }
}
