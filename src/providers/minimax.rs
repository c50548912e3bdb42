//! minimax: ChatCompletion Pro for the models in `PRO_MODELS` (translated here);
//! every other model, embeddings and `protocol: original` go to the OpenAI-compatible
//! chatcompletion_v2 row of `openai_compat` (delegated per request, not copied).
//!
//! Facts used for ChatCompletion Pro (MiniMax docs "ChatCompletion Pro API",
//! platform.minimaxi.com/document/guides/chat-model/pro/api, mirrored at 5cetebcrn8.apifox.cn
//! api-138450738; request/response types in langchain-ai/langchainjs `chat_models/minimax.ts`;
//! stream samples quoted in alibaba/higress ai-proxy `provider/minimax.go`):
//! - `POST https://api.minimax.chat/v1/text/chatcompletion_pro?GroupId=<group id>`, Bearer key.
//! - Request: `model`, `messages[{sender_type USER|BOT|FUNCTION, sender_name, text,
//!   function_call?}]`, `bot_setting[{bot_name, content}]` (required), `reply_constraints
//!   {sender_type: "BOT", sender_name}`, `tokens_to_generate`, `temperature`, `top_p`, `stream`,
//!   `functions[{name, description, parameters}]`.
//! - Response: `{created, model, reply, choices[{finish_reason, messages[{sender_type, sender_name,
//!   text, function_call?{name, arguments}}]}], usage{total_tokens}, input_sensitive,
//!   output_sensitive, id, base_resp{status_code, status_msg}}`; errors are HTTP 200 with
//!   `base_resp.status_code != 0`.
//! - Stream: SSE `data: {...}` events whose `choices[0].messages[].text` is the increment; the last
//!   event carries `finish_reason`, the whole `reply` (and the whole text again in `messages`),
//!   `usage` and `base_resp`. Only `total_tokens` is reported.

use super::openai_compat::{self, CompatProvider, Host};
use super::{Api, Provider, ProviderType, RequestInfo, ResponseTranslator, Upstream};
use crate::config::ProviderConfig;
use crate::custom_settings::SettingsProtocol;
use crate::error::ConfigError;
use crate::error::ProxyError;
use crate::openai::{self, Delta, StreamMeta};
use crate::sse::{self, SseEvent};
use crate::usage::Usage;
use serde_json::{json, Map, Value};

const PROVIDER: &str = "minimax";
const PRO_PATH: &str = "/v1/text/chatcompletion_pro";
const FALLBACK_HOST: &str = "api.minimax.chat";
/// The bot name MiniMax's own examples use.
const DEFAULT_BOT_NAME: &str = "MM智能助理";
/// Used when the request has no system message (`bot_setting` is required by Pro).
const DEFAULT_BOT_CONTENT: &str = "MM智能助理是MiniMax的AI助手，负责回答用户的问题。";
const DEFAULT_USER_NAME: &str = "用户";

/// MiniMax models that use ChatCompletion Pro (and need `minimaxGroupId`), per the seed.
pub const PRO_MODELS: &[&str] = &[
    "abab6.5-chat",
    "abab6.5s-chat",
    "abab5.5s-chat",
    "abab5.5-chat",
];

/// minimax's own configuration fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `minimaxGroupId`: required by ChatCompletion Pro.
    pub group_id: Option<String>,
}

impl Settings {
    pub fn parse(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let group_id = config
            .fields()
            .nonempty_str("minimaxGroupId")?
            .map(str::to_string);
        if group_id.is_none() {
            if let Some(m) = config
                .model_mapping
                .targets()
                .find(|t| PRO_MODELS.contains(t))
            {
                return Err(ConfigError::invalid(
                    "provider.minimaxGroupId",
                    format!(
                        "required when modelMapping targets the ChatCompletion Pro model '{m}'"
                    ),
                ));
            }
        }
        Ok(Self { group_id })
    }
}

pub fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    let row = openai_compat::row(config.kind).expect("minimax has a compat row");
    let host = match row.host {
        Host::Fixed(h) => h,
        _ => FALLBACK_HOST,
    };
    Ok(Box::new(Minimax {
        compat: openai_compat::CompatProvider::for_row(row, config)?,
        host,
        settings: Settings::parse(config)?,
    }))
}

fn is_pro(req: &RequestInfo<'_>) -> bool {
    req.api == Api::ChatCompletions && PRO_MODELS.contains(&req.model)
}

struct Minimax {
    compat: CompatProvider,
    host: &'static str,
    settings: Settings,
}

impl Provider for Minimax {
    fn kind(&self) -> ProviderType {
        ProviderType::Minimax
    }

    fn settings_protocol(&self, req: &RequestInfo<'_>) -> SettingsProtocol {
        if is_pro(req) {
            SettingsProtocol::Minimax
        } else {
            self.compat.settings_protocol(req)
        }
    }

    fn translate_request(
        &self,
        req: &RequestInfo<'_>,
        body: &mut Value,
    ) -> Result<Upstream, ProxyError> {
        if !is_pro(req) {
            return self.compat.translate_request(req, body);
        }
        let group = self.settings.group_id.as_deref().ok_or_else(|| {
            ProxyError::bad_request(format!(
                "model '{}' uses MiniMax ChatCompletion Pro, which needs 'minimaxGroupId' in the provider configuration",
                req.model
            ))
            .with_code("provider_misconfigured")
        })?;
        *body = pro_body(req, body)?;
        let path = format!("{PRO_PATH}?GroupId={}", query_escape(group));
        Ok(Upstream::new(self.host, path).bearer(req.token))
    }

    fn passthrough_target(
        &self,
        config: &ProviderConfig,
        token: &str,
        path: &str,
    ) -> Result<Upstream, ProxyError> {
        self.compat.passthrough_target(config, token, path)
    }

    fn finalize(
        &self,
        config: &ProviderConfig,
        upstream: &mut Upstream,
        body: &[u8],
    ) -> Result<(), ProxyError> {
        self.compat.finalize(config, upstream, body)
    }

    fn response_translator(&self, req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        if !is_pro(req) {
            return self.compat.response_translator(req);
        }
        Box::new(ProTranslator {
            model: req.model.to_string(),
            include_usage: req.include_usage,
            meta: None,
            usage: None,
            role_sent: false,
            emitted: 0,
            finished: false,
            failed: false,
        })
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Requests.

fn is_unset(v: Option<&Value>) -> bool {
    v.is_none_or(Value::is_null)
}

/// OpenAI parameters ChatCompletion Pro cannot express: a 400 naming them unless they hold their
/// default value.
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
            "stop",
            "seed",
            "audio",
            "modalities",
            "prediction",
            "functions",
            "function_call",
            "parallel_tool_calls",
        ],
        PROVIDER,
    )
}

/// Text of a message; Pro messages carry text only.
fn text(v: Option<&Value>) -> Result<String, ProxyError> {
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for p in parts {
                match p.get("type").and_then(Value::as_str).unwrap_or("") {
                    "text" => texts.push(p.get("text").and_then(Value::as_str).unwrap_or("")),
                    "refusal" => texts.push(p.get("refusal").and_then(Value::as_str).unwrap_or("")),
                    "image_url" => {
                        return Err(ProxyError::unsupported(
                            "image content (ChatCompletion Pro)",
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
            Ok(texts.join("\n"))
        }
        Some(_) => Err(
            ProxyError::bad_request("message 'content' must be a string or an array")
                .with_param("messages"),
        ),
    }
}

fn name_of(m: &Map<String, Value>) -> Option<&str> {
    m.get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn pro_body(req: &RequestInfo<'_>, body: &Value) -> Result<Value, ProxyError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ProxyError::bad_request("request body must be a JSON object"))?;
    reject_unsupported(obj)?;
    let items = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ProxyError::bad_request("'messages' must be an array").with_param("messages")
        })?;

    // System messages become the bot's setting; the first one's `name` names the bot.
    let mut bot_name: Option<&str> = None;
    let mut bot_content: Vec<String> = Vec::new();
    for m in items.iter().filter_map(Value::as_object) {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role == "system" || role == "developer" {
            bot_name = bot_name.or_else(|| name_of(m));
            bot_content.push(text(m.get("content"))?);
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
        if !is_unset(m.get("function_call")) {
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
                "text": text(m.get("content"))?,
            })),
            "assistant" => {
                let mut msg = Map::new();
                msg.insert("sender_type".into(), "BOT".into());
                msg.insert("sender_name".into(), bot_name.into());
                msg.insert("text".into(), text(m.get("content"))?.into());
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
                    "text": text(m.get("content"))?,
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
    let offer_functions = match obj.get("tool_choice") {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) if s == "auto" => true,
        // The model may not call any: do not offer them.
        Some(Value::String(s)) if s == "none" => false,
        Some(Value::String(s)) if s == "required" => {
            return Err(ProxyError::unsupported("tool_choice 'required'", PROVIDER))
        }
        Some(Value::Object(_)) => {
            return Err(ProxyError::unsupported(
                "'tool_choice' naming a function",
                PROVIDER,
            ))
        }
        Some(_) => {
            return Err(
                ProxyError::bad_request("'tool_choice' is not valid").with_param("tool_choice")
            )
        }
    };
    if offer_functions && !functions.is_empty() {
        out.insert("functions".into(), Value::Array(functions));
    }
    Ok(Value::Object(out))
}

fn functions(v: Option<&Value>) -> Result<Vec<Value>, ProxyError> {
    let tools = openai::function_tools(v, PROVIDER)?;
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

// ---------------------------------------------------------------------------------------------
// Responses.

fn finish_reason(upstream: &str, had_tool_calls: bool, output_sensitive: bool) -> &'static str {
    if had_tool_calls {
        return "tool_calls";
    }
    if output_sensitive {
        return "content_filter";
    }
    match upstream {
        "length" | "max_output" | "max_tokens" => "length",
        "sensitive" | "content_filter" => "content_filter",
        "function_call" | "tool_calls" => "tool_calls",
        _ => "stop",
    }
}

fn usage_of(obj: &Map<String, Value>) -> Option<Usage> {
    let u = obj.get("usage")?.as_object()?;
    let get = |k: &str| u.get(k).and_then(Value::as_u64);
    let total = get("total_tokens");
    let (p, c) = (get("prompt_tokens"), get("completion_tokens"));
    if total.is_none() && p.is_none() && c.is_none() {
        return None;
    }
    // Pro reports only the total; the split stays 0 when unknown.
    Some(Usage::new(p.unwrap_or(0), c.unwrap_or(0), total))
}

fn bot_messages(choice: &Value) -> impl Iterator<Item = &Map<String, Value>> {
    choice
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter_map(Value::as_object)
        .filter(|m| {
            m.get("sender_type")
                .and_then(Value::as_str)
                .unwrap_or("BOT")
                == "BOT"
        })
}

/// OpenAI tool calls for the BOT messages' `function_call`s (Pro gives them no id).
fn tool_calls(choice: &Value) -> Vec<Value> {
    bot_messages(choice)
        .filter_map(|m| m.get("function_call").and_then(Value::as_object))
        .map(|fc| {
            let args = match fc.get("arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            json!({
                "id": format!("call_{}", &openai::new_completion_id()[9..]),
                "type": "function",
                "function": {
                    "name": fc.get("name").and_then(Value::as_str).unwrap_or(""),
                    "arguments": args,
                },
            })
        })
        .collect()
}

/// The answer's text: the last BOT message without a function call, else `reply`.
fn answer_text<'a>(choice: &'a Value, reply: &'a str) -> &'a str {
    bot_messages(choice)
        .filter(|m| is_unset(m.get("function_call")))
        .filter_map(|m| m.get("text").and_then(Value::as_str))
        .last()
        .filter(|t| !t.is_empty())
        .unwrap_or(reply)
}

/// Bounded stream state: the chunk identity, usage, and how many bytes of the reply were sent.
struct ProTranslator {
    model: String,
    include_usage: bool,
    meta: Option<StreamMeta>,
    usage: Option<Usage>,
    role_sent: bool,
    emitted: usize,
    finished: bool,
    failed: bool,
}

impl ProTranslator {
    fn write_text(&mut self, out: &mut Vec<u8>, text: &str) {
        if text.is_empty() && self.role_sent {
            return;
        }
        let meta = self.meta.as_ref().expect("set before writing");
        meta.write_chunk(
            out,
            0,
            &Delta {
                role: (!self.role_sent).then_some("assistant"),
                content: Some(text),
                tool_calls: None,
            },
            None,
        );
        self.role_sent = true;
        self.emitted += text.len();
    }
}

impl ResponseTranslator for ProTranslator {
    fn legacy_on_event(
        &mut self,
        event: SseEvent<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), ProxyError> {
        let data = event.data.trim_ascii();
        if data.is_empty() || data == b"[DONE]" || self.failed || self.finished {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(data).map_err(|e| {
            ProxyError::bad_upstream(format!("upstream stream event is not JSON: {e}"))
        })?;
        let obj = v.as_object().ok_or_else(|| {
            ProxyError::bad_upstream("upstream stream event is not a JSON object")
        })?;
        if let Some(err) = openai::error_in_success_body(obj) {
            self.failed = true;
            openai::write_stream_error(out, &err);
            return Ok(());
        }
        if let Some(u) = usage_of(obj) {
            self.usage = Some(u);
        }
        if self.meta.is_none() {
            let mut meta = StreamMeta::new(&self.model);
            if let Some(c) = obj
                .get("created")
                .and_then(Value::as_u64)
                .filter(|c| *c > 0)
            {
                meta.created = c;
            }
            self.meta = Some(meta);
        }
        let choice = obj
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .cloned()
            .unwrap_or(Value::Null);
        let reason = choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .unwrap_or("");
        if reason.is_empty() {
            // An increment: the text of its BOT messages.
            let texts: Vec<String> = bot_messages(&choice)
                .filter_map(|m| m.get("text").and_then(Value::as_str))
                .map(str::to_string)
                .collect();
            for t in texts {
                self.write_text(out, &t);
            }
            return Ok(());
        }
        // The last event repeats the whole answer: send only what was not sent yet.
        let reply = obj.get("reply").and_then(Value::as_str).unwrap_or("");
        let full = if reply.is_empty() {
            answer_text(&choice, reply).to_string()
        } else {
            reply.to_string()
        };
        let tail = full.get(self.emitted..).unwrap_or("").to_string();
        if !tail.is_empty() || !self.role_sent {
            self.write_text(out, &tail);
        }
        let calls = tool_calls(&choice);
        let meta = self.meta.as_ref().expect("set above");
        for (index, mut call) in calls.iter().cloned().enumerate() {
            call["index"] = index.into();
            let calls = Value::Array(vec![call]);
            meta.write_chunk(
                out,
                0,
                &Delta {
                    tool_calls: Some(&calls),
                    ..Default::default()
                },
                None,
            );
        }
        let sensitive = obj
            .get("output_sensitive")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        meta.write_chunk(
            out,
            0,
            &Delta::default(),
            Some(finish_reason(reason, !calls.is_empty(), sensitive)),
        );
        self.finished = true;
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
        let obj = v
            .as_object()
            .ok_or_else(|| ProxyError::bad_upstream("upstream body is not a JSON object"))?;
        if let Some(err) = openai::error_in_success_body(obj) {
            return Err(err);
        }
        let reply = obj.get("reply").and_then(Value::as_str).unwrap_or("");
        let sensitive = obj
            .get("output_sensitive")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut choices = Vec::new();
        if let Some(Value::Array(items)) = obj.get("choices") {
            for (i, choice) in items.iter().enumerate() {
                let calls = tool_calls(choice);
                let text = answer_text(choice, if i == 0 { reply } else { "" });
                let content = (!text.is_empty() || calls.is_empty()).then(|| text.to_string());
                let had_calls = !calls.is_empty();
                let reason = choice
                    .get("finish_reason")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let index = choice
                    .get("index")
                    .and_then(Value::as_u64)
                    .map_or(i, |n| n as usize);
                choices.push(openai::completion_choice(
                    index,
                    openai::assistant_message(content, had_calls.then_some(Value::Array(calls))),
                    finish_reason(reason, had_calls, sensitive),
                ));
            }
        }
        if choices.is_empty() && !reply.is_empty() {
            choices.push(openai::completion_choice(
                0,
                openai::assistant_message(Some(reply.to_string()), None),
                finish_reason("", false, sensitive),
            ));
        }
        self.usage = usage_of(obj);
        let id = obj
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map_or_else(openai::new_completion_id, str::to_string);
        let created = obj
            .get("created")
            .and_then(Value::as_u64)
            .filter(|c| *c > 0)
            .unwrap_or_else(openai::now_secs);
        let value = openai::completion(id, created, &self.model, choices, self.usage.as_ref());
        serde_json::to_writer(&mut *out, &value).expect("serialising to a Vec cannot fail");
        Ok(())
    }

    fn legacy_usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Config, Exchange, RequestAction, ResponseMode, UpstreamRequest};
    use crate::testutil::{self, forward, header, respond, upstream_json};
    use std::sync::Arc;

    const TOKEN: &str = "mm-test-token";

    fn cfg_with(extra: &str) -> Arc<Config> {
        testutil::config(&format!(
            r#"{{"provider": {{"type": "minimax", "apiTokens": ["{TOKEN}"],
                "modelMapping": {{"gpt-4": "abab6.5-chat", "gpt-4o": "abab6.5s-chat", "*": "abab6.5g-chat"}},
                "minimaxGroupId": "1782658868262748467"{extra}}}}}"#
        ))
    }

    fn cfg() -> Arc<Config> {
        cfg_with("")
    }

    fn pro(body: &str) -> (Exchange, UpstreamRequest) {
        forward(&cfg(), "/v1/chat/completions", body)
    }

    #[test]
    fn other_models_go_to_chatcompletion_v2() {
        let cfg = cfg_with(r#", "customSettings": [{"name": "max_tokens", "value": 77}]"#);
        let (_, up) = forward(
            &cfg,
            "/v1/chat/completions",
            r#"{"model": "gpt-3.5", "messages": [{"role": "user", "content": "hi"}]}"#,
        );
        assert_eq!(
            (up.authority.as_str(), up.path.as_str()),
            ("api.minimax.chat", "/v1/text/chatcompletion_v2")
        );
        assert_eq!(header(&up, "authorization"), Some("Bearer mm-test-token"));
        let body = upstream_json(&up);
        assert_eq!(body["model"], "abab6.5g-chat");
        assert_eq!(body["messages"], json!([{"role": "user", "content": "hi"}]));
        assert_eq!(body["max_tokens"], 77, "OpenAI column for v2");
        assert!(body.get("tokens_to_generate").is_none());
    }

    #[test]
    fn pro_request_shape() {
        let (_, up) = pro(
            r#"{"model": "gpt-4", "stream": false, "max_tokens": 256, "temperature": 0.7, "top_p": 0.95,
                "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi! How can I help?"},
                {"role": "user", "name": "Bob", "content": [{"type": "text", "text": "Who are you?"}]}]}"#,
        );
        assert_eq!(up.authority, "api.minimax.chat");
        assert_eq!(
            up.path,
            "/v1/text/chatcompletion_pro?GroupId=1782658868262748467"
        );
        assert_eq!(header(&up, "authorization"), Some("Bearer mm-test-token"));
        assert_eq!(
            upstream_json(&up),
            json!({
                "model": "abab6.5-chat",
                "stream": false,
                "bot_setting": [{"bot_name": "MM智能助理", "content": "You are a helpful assistant."}],
                "reply_constraints": {"sender_type": "BOT", "sender_name": "MM智能助理"},
                "messages": [
                    {"sender_type": "USER", "sender_name": "用户", "text": "Hello"},
                    {"sender_type": "BOT", "sender_name": "MM智能助理", "text": "Hi! How can I help?"},
                    {"sender_type": "USER", "sender_name": "Bob", "text": "Who are you?"}
                ],
                "tokens_to_generate": 256,
                "temperature": 0.7,
                "top_p": 0.95
            })
        );
    }

    #[test]
    fn pro_default_bot_and_named_system() {
        let (_, up) =
            pro(r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#);
        let body = upstream_json(&up);
        assert_eq!(
            body["bot_setting"],
            json!([{"bot_name": DEFAULT_BOT_NAME, "content": DEFAULT_BOT_CONTENT}])
        );
        assert_eq!(body["model"], "abab6.5s-chat");
        let (_, up) = pro(
            r#"{"model": "gpt-4o", "messages": [{"role": "system", "name": "Ada", "content": "Be terse."},
                {"role": "system", "content": "Answer in English."}, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}]}"#,
        );
        let body = upstream_json(&up);
        assert_eq!(
            body["bot_setting"],
            json!([{"bot_name": "Ada", "content": "Be terse.\n\nAnswer in English."}])
        );
        assert_eq!(body["reply_constraints"]["sender_name"], "Ada");
        assert_eq!(body["messages"][1]["sender_name"], "Ada");
    }

    #[test]
    fn pro_model_without_group_id_is_a_400() {
        let cfg = testutil::config(&format!(
            r#"{{"provider": {{"type": "minimax", "apiTokens": ["{TOKEN}"]}}}}"#
        ));
        let (status, err) = testutil::local_reply(
            &cfg,
            "/v1/chat/completions",
            r#"{"model": "abab5.5s-chat", "messages": [{"role": "user", "content": "hi"}]}"#,
        );
        assert_eq!(status, 400);
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("minimaxGroupId") && msg.contains("abab5.5s-chat"),
            "{msg}"
        );
        assert!(!msg.contains(TOKEN));
        // v2 models still work without it.
        forward(
            &cfg,
            "/v1/chat/completions",
            r#"{"model": "abab6.5g-chat", "messages": [{"role": "user", "content": "hi"}]}"#,
        );
    }

    #[test]
    fn pro_rejects_what_it_cannot_express() {
        for (needle, body) in [
            (
                "image content",
                r#""messages": [{"role": "user", "content": [{"type": "text", "text": "what?"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]"#,
            ),
            (
                "'stop'",
                r#""stop": ["x"], "messages": [{"role": "user", "content": "x"}]"#,
            ),
            (
                "'n'",
                r#""n": 3, "messages": [{"role": "user", "content": "x"}]"#,
            ),
            (
                "tool_choice 'required'",
                r#""tool_choice": "required", "messages": [{"role": "user", "content": "x"}]"#,
            ),
        ] {
            let (status, err) = testutil::local_reply(
                &cfg(),
                "/v1/chat/completions",
                &format!(r#"{{"model": "gpt-4", {body}}}"#),
            );
            assert_eq!(status, 400, "{needle}");
            let msg = err["error"]["message"].as_str().unwrap();
            assert!(msg.contains(needle) && msg.contains("minimax"), "{msg}");
        }
    }

    // Mirrors the ChatCompletion Pro non-streamed answer (docs "ChatCompletion Pro API" response
    // example: created, model, reply, choices[{finish_reason, messages[{sender_type BOT,
    // sender_name, text}]}], usage{total_tokens}, input/output_sensitive, id, base_resp).
    const BUFFERED: &str = r#"{"created": 1689747645, "model": "abab6.5-chat",
        "reply": "Hello! I am MM Intelligent Assistant.",
        "choices": [{"finish_reason": "stop", "messages": [{"sender_type": "BOT",
        "sender_name": "MM智能助理", "text": "Hello! I am MM Intelligent Assistant."}]}],
        "usage": {"total_tokens": 106}, "input_sensitive": false, "output_sensitive": false,
        "id": "0106b3bc9fd844a9f3de1aa06004e2ab", "base_resp": {"status_code": 0, "status_msg": ""}}"#;

    #[test]
    fn pro_buffered_response() {
        let (mut ex, _) =
            pro(r#"{"model": "gpt-4", "messages": [{"role": "user", "content": "Hello"}]}"#);
        let (status, out, mode) = respond(&mut ex, 200, "application/json", BUFFERED.as_bytes());
        assert_eq!((status, mode), (200, ResponseMode::Buffer));
        let v: Value = serde_json::from_slice(&out).unwrap();
        testutil::validate_chat_completion(&v);
        assert_eq!(v["id"], "0106b3bc9fd844a9f3de1aa06004e2ab");
        assert_eq!(v["model"], "abab6.5-chat");
        assert_eq!(v["created"], 1689747645);
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "Hello! I am MM Intelligent Assistant."
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 106})
        );
        assert_eq!(ex.usage().map(|u| u.total_tokens), Some(106));
    }

    // Mirrors the Pro stream: increments in choices[0].messages[].text, then a final event with
    // finish_reason, the whole reply (repeated in messages), usage and base_resp (samples quoted
    // in alibaba/higress ai-proxy provider/minimax.go).
    const STREAM: &str = "data: {\"created\":1689747645,\"model\":\"abab6.5s-chat\",\"reply\":\"\",\"choices\":[{\"messages\":[{\"sender_type\":\"BOT\",\"sender_name\":\"MM智能助理\",\"text\":\"I \"}]}],\"output_sensitive\":false}\n\n\
data: {\"created\":1689747645,\"model\":\"abab6.5s-chat\",\"reply\":\"\",\"choices\":[{\"messages\":[{\"sender_type\":\"BOT\",\"sender_name\":\"MM智能助理\",\"text\":\"am from 中国.\"}]}],\"output_sensitive\":false}\n\n\
data: {\"created\":1689747645,\"model\":\"abab6.5s-chat\",\"reply\":\"I am from 中国.\",\"choices\":[{\"finish_reason\":\"stop\",\"messages\":[{\"sender_type\":\"BOT\",\"sender_name\":\"MM智能助理\",\"text\":\"I am from 中国.\"}]}],\"usage\":{\"total_tokens\":187},\"input_sensitive\":false,\"output_sensitive\":false,\"id\":\"0106b3bc9fd844a9f3de1aa06004e2ab\",\"base_resp\":{\"status_code\":0,\"status_msg\":\"\"}}\n\n";

    fn stream_request(include_usage: bool) -> Exchange {
        pro(&format!(
            r#"{{"model": "gpt-4o", "stream": true, "stream_options": {{"include_usage": {include_usage}}},
                "messages": [{{"role": "user", "content": "Where are you from?"}}]}}"#
        ))
        .0
    }

    #[test]
    fn pro_streamed_response() {
        let mut ex = stream_request(true);
        let (status, out, mode) = respond(&mut ex, 200, "text/event-stream", STREAM.as_bytes());
        assert_eq!((status, mode), (200, ResponseMode::Stream));
        let events = testutil::validate_sse_stream(&out);
        assert_eq!(
            testutil::stream_text(&events),
            "I am from 中国.",
            "final repeat not re-sent"
        );
        assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
        let n = events.len();
        assert_eq!(events[n - 2]["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            events[n - 1]["usage"],
            json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 187})
        );
        assert_eq!(events[n - 1]["choices"], json!([]));
        assert_eq!(ex.usage().map(|u| u.total_tokens), Some(187));

        let mut ex = stream_request(false);
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", STREAM.as_bytes());
        let events = testutil::validate_sse_stream(&out);
        assert!(events.iter().all(|e| e.get("usage").is_none()));
        assert_eq!(ex.usage().map(|u| u.total_tokens), Some(187));
    }

    #[test]
    fn pro_final_event_text_beyond_the_increments_is_sent() {
        // Only the final event: everything comes from `reply`.
        let last = STREAM.split("\n\n").nth(2).unwrap().to_string() + "\n\n";
        let mut ex = stream_request(false);
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", last.as_bytes());
        let events = testutil::validate_sse_stream(&out);
        assert_eq!(testutil::stream_text(&events), "I am from 中国.");
    }

    #[test]
    fn pro_stream_is_chunking_invariant() {
        testutil::assert_chunking_invariant(
            || stream_request(true),
            "text/event-stream",
            STREAM.as_bytes(),
        );
    }

    // base_resp.status_code != 0 with HTTP 200 (docs "错误码": 1004 authentication failure,
    // 1002 rate limit, 2013 invalid parameters).
    fn base_resp(code: i64, msg: &str) -> String {
        format!(
            r#"{{"created": 0, "model": "", "reply": "", "choices": null, "base_resp": {{"status_code": {code}, "status_msg": "{msg}"}}}}"#
        )
    }

    #[test]
    fn pro_errors_in_a_200_and_in_stream() {
        for (code, status) in [(1004, 401), (1002, 429), (2013, 400)] {
            let (mut ex, _) =
                pro(r#"{"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}"#);
            let (got, out, _) = respond(
                &mut ex,
                200,
                "application/json",
                base_resp(code, "failed").as_bytes(),
            );
            let v: Value = serde_json::from_slice(&out).unwrap();
            testutil::validate_error(&v);
            assert_eq!(got, status, "{code}");
            assert_eq!(v["error"]["code"], code.to_string());
            assert_eq!(v["error"]["message"], "failed");
        }
        // HTTP error statuses keep their status.
        let (mut ex, _) =
            pro(r#"{"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}"#);
        let (got, out, _) = respond(
            &mut ex,
            500,
            "application/json",
            base_resp(1013, "internal").as_bytes(),
        );
        testutil::validate_error(&serde_json::from_slice(&out).unwrap());
        assert_eq!(got, 500);
        // In a stream: the error event, then [DONE].
        let body = STREAM.split("\n\n").next().unwrap().to_string()
            + "\n\ndata: "
            + &base_resp(1002, "rate limited")
            + "\n\n";
        let mut ex = stream_request(true);
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", body.as_bytes());
        let events = testutil::validate_sse_stream(&out);
        let last = events.last().unwrap();
        assert_eq!(last["error"]["code"], "1002");
        assert_eq!(last["error"]["message"], "rate limited");
    }

    const TOOLS: &str = r#"[{"type": "function", "function": {"name": "get_weather",
        "description": "Weather of a city", "parameters": {"type": "object",
        "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]"#;

    #[test]
    fn pro_tool_calls_round_trip() {
        let (mut ex, up) = pro(&format!(
            r#"{{"model": "gpt-4", "tools": {TOOLS}, "messages": [
                {{"role": "user", "content": "Weather in Paris?"}},
                {{"role": "assistant", "content": null, "tool_calls": [{{"id": "call_1", "type": "function",
                   "function": {{"name": "get_weather", "arguments": "{{\"city\":\"Paris\"}}"}}}}]}},
                {{"role": "tool", "tool_call_id": "call_1", "content": "sunny"}},
                {{"role": "user", "content": "And Rome?"}}]}}"#
        ));
        let body = upstream_json(&up);
        assert_eq!(
            body["functions"],
            json!([{"name": "get_weather", "description": "Weather of a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
        );
        assert_eq!(
            body["messages"],
            json!([
                {"sender_type": "USER", "sender_name": "用户", "text": "Weather in Paris?"},
                {"sender_type": "BOT", "sender_name": "MM智能助理", "text": "",
                 "function_call": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"sender_type": "FUNCTION", "sender_name": "get_weather", "text": "sunny"},
                {"sender_type": "USER", "sender_name": "用户", "text": "And Rome?"}
            ])
        );
        // Function-calling answer (docs "函数调用功能": a BOT message with function_call).
        let answer = r#"{"created": 1, "model": "abab6.5-chat", "reply": "",
            "choices": [{"finish_reason": "stop", "messages": [{"sender_type": "BOT", "sender_name": "MM智能助理",
            "text": "", "function_call": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]}],
            "usage": {"total_tokens": 80}, "id": "f1", "base_resp": {"status_code": 0, "status_msg": "success"}}"#;
        let (_, out, _) = respond(&mut ex, 200, "application/json", answer.as_bytes());
        let v: Value = serde_json::from_slice(&out).unwrap();
        testutil::validate_chat_completion(&v);
        let choice = &v["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], Value::Null);
        let call = &choice["message"]["tool_calls"][0];
        assert_eq!(call["type"], "function");
        assert_eq!(
            call["function"],
            json!({"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"})
        );
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        // Streamed: the call comes with the final event.
        let stream = format!("data: {}\n\n", answer.replace('\n', ""));
        let mut ex = stream_request(false);
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", stream.as_bytes());
        let events = testutil::validate_sse_stream(&out);
        let calls: Vec<&Value> = events
            .iter()
            .filter_map(|e| e["choices"][0]["delta"].get("tool_calls"))
            .collect();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0][0]["index"], 0);
        assert_eq!(calls[0][0]["function"]["name"], "get_weather");
        assert_eq!(
            events.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls"
        );
        // tool_choice "none": functions are not offered.
        let (_, up) = pro(&format!(
            r#"{{"model": "gpt-4", "tools": {TOOLS}, "tool_choice": "none", "messages": [{{"role": "user", "content": "x"}}]}}"#
        ));
        assert!(upstream_json(&up).get("functions").is_none());
    }

    #[test]
    fn original_protocol_is_the_compat_passthrough() {
        let cfg = cfg_with(r#", "protocol": "original""#);
        let mut ex = Exchange::new(Arc::clone(&cfg));
        let body = r#"{"model": "abab6.5-chat", "messages": [{"sender_type": "USER", "sender_name": "a", "text": "hi"}]}"#;
        let up = match ex
            .on_request(
                "POST",
                "/v1/text/chatcompletion_pro?GroupId=1",
                &[("content-type", "application/json")],
                body.as_bytes(),
            )
            .unwrap()
        {
            RequestAction::Forward(up) => up,
            other => panic!("expected a forward, got {other:?}"),
        };
        assert_eq!(up.authority, "api.minimax.chat");
        assert_eq!(up.path, "/v1/text/chatcompletion_pro?GroupId=1");
        assert_eq!(header(&up, "authorization"), Some("Bearer mm-test-token"));
        assert!(up.body.is_none());
        let (_, out, mode) = respond(&mut ex, 200, "application/json", BUFFERED.as_bytes());
        assert_eq!(
            (mode, out.as_slice()),
            (ResponseMode::Passthrough, BUFFERED.as_bytes())
        );
    }

    #[test]
    fn custom_settings_use_the_minimax_column_for_pro() {
        let cfg = cfg_with(
            r#", "customSettings": [{"name": "max_tokens", "value": 512},
                {"name": "temperature", "value": 0.1}, {"name": "top_k", "value": 5},
                {"name": "mask_sensitive_info", "value": false, "mode": "raw"}]"#,
        );
        let (_, up) = forward(
            &cfg,
            "/v1/chat/completions",
            r#"{"model": "gpt-4", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}"#,
        );
        let body = upstream_json(&up);
        assert_eq!(body["tokens_to_generate"], 512);
        assert_eq!(body["temperature"], 0.1);
        assert_eq!(body["mask_sensitive_info"], false);
        assert!(body.get("max_tokens").is_none() && body.get("top_k").is_none());
    }

    #[test]
    fn embeddings_are_delegated_and_unsupported() {
        let (status, err) = testutil::local_reply(
            &cfg(),
            "/v1/embeddings",
            r#"{"model": "embo-01", "input": "x"}"#,
        );
        assert_eq!(status, 400);
        assert_eq!(err["error"]["code"], "unsupported_feature");
    }

    #[test]
    fn group_id_is_query_escaped() {
        assert_eq!(query_escape("12ab-_.~"), "12ab-_.~");
        assert_eq!(query_escape("a b&c"), "a%20b%26c");
    }
}
