//! qwen: OpenAI chat completions and embeddings ⇄ Alibaba Cloud DashScope's native API.
//!
//! Facts used (Alibaba Cloud Model Studio docs "DashScope API reference"
//! help.aliyun.com/en/model-studio/qwen-api-via-dashscope, "Function calling"
//! alibabacloud.com/help/en/model-studio/qwen-function-calling, "Long context (Qwen-Long)"
//! help.aliyun.com/zh/model-studio/user-guide/long-context-qwen-long, "Text embedding synchronous
//! API" alibabacloud.com/help/en/model-studio/text-embedding-synchronous-api; cross-checked with
//! the DashScope SDK docs quoted in the code corpus and `alibaba/higress` ai-proxy `qwen.go`):
//! - Host `dashscope.aliyuncs.com`, header `Authorization: Bearer <key>`.
//! - Text models: `POST /api/v1/services/aigc/text-generation/generation`; multimodal models
//!   (qwen-vl, qwen3-vl, qvq): `POST /api/v1/services/aigc/multimodal-generation/generation`,
//!   where message content is a list of `{"image": url}` / `{"text": ...}` parts (an image may
//!   be a public URL or a base64 data URL).
//! - Body `{"model", "input": {"messages": [...]}, "parameters": {...}}`. Parameters used:
//!   `result_format: "message"`, `incremental_output` (streaming), `enable_search`, `temperature`,
//!   `top_p` (clamped into (0, 1) as higress does; DashScope needs top_p > 0), `top_k`,
//!   `max_tokens`, `seed`, `stop`, `presence_penalty`, `repetition_penalty`, `n`,
//!   `response_format`, `tools` (the OpenAI function-tool array), `tool_choice`,
//!   `parallel_tool_calls`, `enable_thinking`, `thinking_budget`, `search_options`,
//!   `vl_high_resolution_images`, `translation_options`.
//! - Messages keep OpenAI's roles (`system`, `user`, `assistant` with `tool_calls`, `tool` with
//!   `tool_call_id`). qwen-long reads uploaded files from a system message whose content is
//!   `fileid://id1,fileid://id2`; the docs place it after the role-setting system message.
//! - Streaming: header `X-DashScope-SSE: enable`; SSE events `id:N`, `event:result`, a comment
//!   `:HTTP_STATUS/200`, `data:{output, usage, request_id}`. `finish_reason` is the string
//!   `"null"` until the last event; usage is cumulative on every event. With
//!   `incremental_output` each event carries only the new text; tool calls arrive as
//!   `tool_calls[{index, id, type, function{name, arguments}}]` where the first piece of a call
//!   has its id and name and later pieces only more `arguments`. Errors after the 200 arrive as
//!   `event:error` with `data:{code, message, request_id}`.
//! - Response: `output.choices[].{message{role, content, tool_calls}, finish_reason}` (or the
//!   older `output.{text, finish_reason}`); multimodal content is a list of `{text}` parts;
//!   `usage.{input_tokens, output_tokens, total_tokens}` (no total for image input);
//!   `request_id`.
//! - Embeddings: `POST /api/v1/services/embeddings/text-embedding/text-embedding` with
//!   `{"model", "input": {"texts": [...]}, "parameters": {"dimension"?}}`; response
//!   `output.embeddings[].{embedding, text_index}`, `usage.total_tokens`.
//! - Errors: `{"code", "message", "request_id"}` with the HTTP status (e.g. 401 InvalidApiKey,
//!   429 Throttling.RateQuota, 400 InvalidParameter / DataInspectionFailed).

use super::{Api, Auth, Profile, Provider, ProviderType};
use super::{RequestInfo, ResponseTranslator, Upstream};
use crate::config::ProviderConfig;
use crate::custom_settings::SettingsProtocol;
use crate::error::{ConfigError, ProxyError};
use serde_json::Value;

mod event;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

const NAME: &str = "qwen";
const HOST: &str = "dashscope.aliyuncs.com";
const EMBEDDING_PATH: &str = "/api/v1/services/embeddings/text-embedding/text-embedding";

/// qwen's own configuration fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `qwenEnableSearch`: DashScope's built-in internet search.
    pub enable_search: bool,
    /// `qwenFileIds`: files uploaded to DashScope, referenced as `fileid://` system messages.
    pub file_ids: Vec<String>,
}

impl Settings {
    pub fn parse(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let f = config.fields();
        let s = Self {
            enable_search: f.bool("qwenEnableSearch")?.unwrap_or(false),
            file_ids: f.str_array("qwenFileIds")?,
        };
        config.forbid_context_with("qwenFileIds", !s.file_ids.is_empty())?;
        config.require_token()?;
        Ok(s)
    }
}

const PROFILE: Profile = Profile {
    kind: ProviderType::Qwen,
    settings: SettingsProtocol::Qwen,
    host: HOST,
    auth: Auth::Bearer,
    unsupported: &[],
};

/// Qwen's whole state is its settings.
impl Provider for Settings {
    fn profile(&self) -> Profile {
        PROFILE
    }

    fn translate_request(
        &self,
        req: &RequestInfo<'_>,
        body: &mut Value,
    ) -> Result<Upstream, ProxyError> {
        let path = match req.api {
            Api::ChatCompletions => request::translate_chat(req, self, body)?,
            Api::Embeddings => {
                request::translate_embeddings(req, body)?;
                EMBEDDING_PATH
            }
        };
        self.upstream(req, path)
    }

    fn chat_fast(
        &self,
        req: &RequestInfo<'_>,
        chat: &crate::openai::chat_read::ChatRequest<'_>,
    ) -> Option<(Upstream, Vec<u8>)> {
        if req.api != Api::ChatCompletions {
            return None;
        }
        let (body, path) = request::fast_chat(req, self, chat, &req.config.custom_settings)?;
        Some((self.upstream(req, path).ok()?, body))
    }

    fn has_chat_fast(&self) -> bool {
        true
    }

    fn chat_fast_extras(&self) -> bool {
        true
    }

    fn response_translator(&self, req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        Box::new(response::QwenTranslator::new(req.api))
    }
}

impl Settings {
    /// Host, auth, and for a streamed chat DashScope's SSE switch.
    fn upstream(
        &self,
        req: &RequestInfo<'_>,
        path: impl Into<String>,
    ) -> Result<Upstream, ProxyError> {
        let up = self.authorize(Upstream::new(HOST, path), req.token)?;
        Ok(if req.stream && req.api == Api::ChatCompletions {
            up.header("x-dashscope-sse", "enable")
                .header("accept", "text/event-stream")
        } else {
            up
        })
    }
}

/// A tool-call id for calls DashScope sent without one.
fn new_call_id() -> String {
    crate::openai::new_tool_call_id()
}
