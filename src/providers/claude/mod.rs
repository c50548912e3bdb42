//! claude: OpenAI chat completions ⇄ Anthropic's Messages API.
//!
//! Facts used (looked up in Anthropic's public docs, platform.claude.com / docs.anthropic.com):
//! - `POST https://api.anthropic.com/v1/messages` with headers `x-api-key: <key>` and
//!   `anthropic-version` (`claudeVersion`, default 2023-06-01). `max_tokens` is required.
//! - Request: `system` is a top-level string or array of text blocks; `messages` alternate
//!   `user`/`assistant` with string content or content blocks (`text`, `image` with a
//!   `source` of `{"type":"base64","media_type","data"}` or `{"type":"url","url"}`, `document`,
//!   `tool_use {id,name,input}` in assistant turns, `tool_result {tool_use_id,content}` in user
//!   turns, placed first). `stop_sequences`, `temperature`, `top_p`, `top_k`, `stream`,
//!   `metadata.user_id`. Tools are `{name, description, input_schema}`; `tool_choice` is
//!   `{"type":"auto"|"any"|"none"}` or `{"type":"tool","name"}`, with
//!   `disable_parallel_tool_use` on auto/any/tool.
//! - Response: `{id, type:"message", role, model, content:[blocks], stop_reason, usage:
//!   {input_tokens, output_tokens, cache_creation_input_tokens?, cache_read_input_tokens?}}`;
//!   stop reasons `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn`,
//!   `refusal`, `model_context_window_exceeded` (docs: "Handling stop reasons").
//! - Stream (docs: "Streaming Messages"): `message_start`, then per block `content_block_start`
//!   / `content_block_delta` (`text_delta`, `input_json_delta` with `partial_json`) /
//!   `content_block_stop`, then `message_delta` (stop_reason, cumulative `usage.output_tokens`)
//!   and `message_stop`; `ping` keep-alives; `error` events may arrive after the 200.
//! - Errors (docs: "Errors"): `{"type":"error","error":{"type","message"}}` with 400
//!   invalid_request_error, 401 authentication_error, 402 billing_error, 403 permission_error,
//!   404 not_found_error, 413 request_too_large, 429 rate_limit_error, 500 api_error,
//!   504 timeout_error, 529 overloaded_error.
//! - Claude has no embeddings API (Anthropic points to Voyage AI), so embeddings are a 400.

mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;
pub mod thinking;
mod typed;

use super::{Api, Auth, Profile, Provider, ProviderType};
use super::{RequestInfo, ResponseTranslator, Upstream};
use crate::config::ProviderConfig;
use crate::custom_settings::SettingsProtocol;
use crate::error::{ConfigError, ProxyError};
use request::translate_chat;
use response::ClaudeTranslator;
use serde_json::Value;

const HOST: &str = "api.anthropic.com";
const MESSAGES_PATH: &str = "/v1/messages";
const NAME: &str = "claude";
pub use request::DEFAULT_MAX_TOKENS;

/// Default `anthropic-version` header from the seed.
pub const DEFAULT_VERSION: &str = "2023-06-01";

/// claude's own configuration fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `claudeVersion` (the seed's example spells it `version`; `claudeVersion` wins).
    pub version: String,
    /// `responseJsonSchema` is set (an OpenAI-only field Claude cannot honour).
    pub response_json_schema: bool,
}

impl Settings {
    pub fn parse(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let f = config.fields();
        config.require_token()?;
        let version = f
            .nonempty_str("claudeVersion")?
            .or(f.nonempty_str("version")?)
            .unwrap_or(DEFAULT_VERSION)
            .to_string();
        Ok(Self {
            version,
            response_json_schema: f.get("responseJsonSchema").is_some(),
        })
    }
}

const PROFILE: Profile = Profile {
    kind: ProviderType::Claude,
    settings: SettingsProtocol::Claude,
    host: HOST,
    auth: Auth::Header("x-api-key"),
    unsupported: &[(Api::Embeddings, "the embeddings API")],
};

/// Claude's whole state is its settings.
impl Provider for Settings {
    fn profile(&self) -> Profile {
        PROFILE
    }

    fn authorize(&self, up: Upstream, token: &str) -> Result<Upstream, ProxyError> {
        Ok(PROFILE
            .auth
            .apply(up, token)
            .header("anthropic-version", self.version.as_str()))
    }

    fn translate_request(
        &self,
        req: &RequestInfo<'_>,
        body: &mut Value,
    ) -> Result<Upstream, ProxyError> {
        if self.response_json_schema {
            return Err(ProxyError::unsupported(
                "responseJsonSchema (response_format json_schema)",
                NAME,
            ));
        }
        translate_chat(req, body)?;
        self.authorize(Upstream::new(HOST, MESSAGES_PATH), req.token)
    }

    fn chat_fast(
        &self,
        req: &RequestInfo<'_>,
        chat: &crate::openai::chat_read::ChatRequest<'_>,
    ) -> Option<(Upstream, Vec<u8>)> {
        if req.api != Api::ChatCompletions || self.response_json_schema {
            return None;
        }
        let body = request::fast_chat(req, chat, &req.config.custom_settings)?;
        let up = self
            .authorize(Upstream::new(HOST, MESSAGES_PATH), req.token)
            .ok()?;
        Some((up, body))
    }

    fn has_chat_fast(&self) -> bool {
        true
    }

    fn response_translator(&self, _req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        translator()
    }
}

/// For Claude on Vertex AI (`rawPredict` / `streamRawPredict`): the Messages body without
/// `model` (it is in the path) and with Vertex's `anthropic_version`.
pub(crate) fn vertex_chat_body(
    req: &RequestInfo<'_>,
    body: &mut Value,
    anthropic_version: &str,
) -> Result<(), ProxyError> {
    translate_chat(req, body)?;
    if let Some(obj) = body.as_object_mut() {
        obj.remove("model");
        obj.insert("anthropic_version".into(), anthropic_version.into());
    }
    Ok(())
}

/// [`vertex_chat_body`] on the request fast path: the same edits, on the typed body's fields
/// (the `model` swap-removed as the `Value`'s map removes it), then customSettings; `None` when
/// the `Value` path must decide.
pub(crate) fn vertex_fast_chat(
    req: &RequestInfo<'_>,
    chat: &crate::openai::chat_read::ChatRequest<'_>,
    anthropic_version: &str,
) -> Option<Vec<u8>> {
    let mut out = request::fast_fields(req, chat)?;
    out.swap_remove("model");
    out.field("anthropic_version", |b| {
        crate::json_write::write_str(b, anthropic_version);
    });
    Some(out.finish(&req.config.custom_settings, SettingsProtocol::Claude))
}

/// The response translator (Claude on Vertex AI answers in Claude's shape too).
pub(crate) fn translator() -> Box<dyn ResponseTranslator> {
    Box::new(ClaudeTranslator::new())
}
