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

//!
//! Layout: `request` (OpenAI → Pro bodies), `response` (buffered answers, the translator),
//! `stream` (stream events), `tests`.

mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

use super::openai_compat::{self, CompatProvider, Host};
use super::{Api, Profile, Provider, RequestInfo, ResponseTranslator, Upstream};
use crate::config::ProviderConfig;
use crate::custom_settings::SettingsProtocol;
use crate::error::ConfigError;
use crate::error::ProxyError;
use serde_json::Value;
use std::borrow::Cow;

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
    fn profile(&self) -> Profile {
        self.compat.profile()
    }

    fn host(&self, token: &str) -> Cow<'_, str> {
        self.compat.host(token)
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
        *body = request::pro_body(req, body)?;
        let path = format!("{PRO_PATH}?GroupId={}", query_escape(group));
        Ok(Upstream::new(self.host, path).bearer(req.token))
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
        Box::<response::ProTranslator>::default()
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
