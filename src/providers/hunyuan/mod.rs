//! hunyuan: Tencent Cloud API 3.0 (`hunyuan.tencentcloudapi.com`, version 2023-09-01), signed with
//! TC3-HMAC-SHA256.
//!
//! Facts used (looked up in Tencent's public API docs and SDK models):
//! - Every call is `POST /` on `hunyuan.tencentcloudapi.com` with headers `X-TC-Action`,
//!   `X-TC-Version: 2023-09-01`, `X-TC-Timestamp`, `Content-Type` and `Authorization`
//!   (cloud.tencent.com/document/api/1729/101837 "对话", common parameters page 1729/105701).
//! - Signature v3 (tencentcloud.com "Signature v3", e.g. document/api/1150/49447): canonical request
//!   `POST\n/\n\n<canonical headers>\n<signed headers>\n<hex sha256(payload)>` (canonical URI fixed to
//!   `/` and canonical query fixed to "" for POST in API 3.0), string to sign
//!   `TC3-HMAC-SHA256\n<timestamp>\n<date>/<service>/tc3_request\n<hex sha256(canonical request)>`,
//!   key chain `HMAC("TC3"+SecretKey, date)` → service → `tc3_request`, hex signature. `date` is the
//!   UTC date of the timestamp. We sign `content-type;host`.
//! - ChatCompletions request (TencentCloud/tencentcloud-sdk-go `hunyuan/v20230901/models.go`):
//!   `Model`, `Messages[{Role, Content, Contents[{Type text|image_url, Text, ImageUrl{Url}}],
//!   ToolCallId, ToolCalls}]`, `Stream`, `Temperature`, `TopP`, `Seed`, `Stop`, `Tools[{Type,
//!   Function{Name, Parameters (a JSON string), Description}}]`, `ToolChoice` (none|auto|custom),
//!   `CustomTool`. No max-tokens parameter exists.
//! - Responses are wrapped in `{"Response": {...}}`: `Id`, `Created`, `Choices[{Message|Delta{Role,
//!   Content, ToolCalls, ReasoningContent}, FinishReason (stop|sensitive|tool_calls), Index}]`,
//!   `Usage{PromptTokens, CompletionTokens, TotalTokens}`, `ErrorMsg{Msg, Code}`, `RequestId`.
//!   Streams are SSE `data: {...}` events carrying the unwrapped object (sample in alibaba/higress
//!   ai-proxy `provider/hunyuan.go`), cumulative `Usage` in every event, `FinishReason` "" until the end.
//! - Errors: HTTP 200 with `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`.
//! - GetEmbedding: `Input` (string) or `InputList` (strings) → `Data[{Embedding, Index, Object}]`,
//!   `Usage{PromptTokens, TotalTokens}`; no model parameter (fixed 1024-dimension model).
//!
//! Layout: `request` (OpenAI → Hunyuan bodies), `signing` (TC3), `response` (buffered answers,
//! errors, the translator), `stream` (stream events), `tests`.

mod request;
mod response;
mod signing;
mod stream;
#[cfg(test)]
mod tests;

use super::{Api, Auth, Profile, Provider, ProviderType};
use super::{RequestInfo, ResponseTranslator, Upstream};
use crate::config::{ProviderConfig, Secret};
use crate::custom_settings::SettingsProtocol;
use crate::error::{ConfigError, ProxyError};
use crate::openai;
use serde_json::Value;
use signing::{tc3_sign, Tc3Request};

const PROVIDER: &str = "hunyuan";
const HOST: &str = "hunyuan.tencentcloudapi.com";
const SERVICE: &str = "hunyuan";
const VERSION: &str = "2023-09-01";
/// The exact value matters: it is part of the signature.
const CONTENT_TYPE: &str = "application/json";
const ACTION_CHAT: &str = "ChatCompletions";
const ACTION_EMBEDDING: &str = "GetEmbedding";

/// hunyuan's own configuration fields: the TC3 signing pair (no `apiTokens`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub auth_id: Secret,
    pub auth_key: Secret,
}

impl Settings {
    pub fn parse(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let f = config.fields();
        let why = "for provider type 'hunyuan'";
        let auth_id = f.require("hunyuanAuthId", f.nonempty_str("hunyuanAuthId")?, why)?;
        let auth_key = f.require("hunyuanAuthKey", f.nonempty_str("hunyuanAuthKey")?, why)?;
        Ok(Self {
            auth_id: Secret::new(auth_id),
            auth_key: Secret::new(auth_key),
        })
    }
}

const PROFILE: Profile = Profile {
    kind: ProviderType::Hunyuan,
    settings: SettingsProtocol::Hunyuan,
    host: HOST,
    auth: Auth::None,
    unsupported: &[],
};

/// Hunyuan's whole state is its signing pair.
impl Provider for Settings {
    fn profile(&self) -> Profile {
        PROFILE
    }

    /// Only the content type we sign with: the signature is set in `finalize`, over the body.
    /// On passthrough the client sends X-TC-Action / X-TC-Version itself.
    fn authorize(&self, up: Upstream, _token: &str) -> Result<Upstream, ProxyError> {
        Ok(up.header("content-type", CONTENT_TYPE))
    }

    fn translate_request(
        &self,
        req: &RequestInfo<'_>,
        body: &mut Value,
    ) -> Result<Upstream, ProxyError> {
        let (action, translated) = match req.api {
            Api::ChatCompletions => (ACTION_CHAT, request::chat_body(req, body)?),
            Api::Embeddings => (ACTION_EMBEDDING, request::embedding_body(body)?),
        };
        *body = translated;
        self.authorize(
            Upstream::new(HOST, "/")
                .header("x-tc-action", action)
                .header("x-tc-version", VERSION),
            req.token,
        )
    }

    fn signs_body(&self) -> bool {
        true
    }

    fn finalize(
        &self,
        _config: &ProviderConfig,
        upstream: &mut Upstream,
        body: &[u8],
    ) -> Result<(), ProxyError> {
        let (id, key) = (self.auth_id.expose(), self.auth_key.expose());
        let timestamp = openai::now_secs();
        let signed = tc3_sign(
            id,
            key,
            SERVICE,
            timestamp,
            &Tc3Request {
                host: &upstream.authority,
                content_type: CONTENT_TYPE,
                payload: body,
            },
        );
        upstream.set_header("content-type", CONTENT_TYPE.to_string());
        upstream.set_header("x-tc-timestamp", timestamp.to_string());
        upstream.set_header("authorization", signed.authorization);
        Ok(())
    }

    fn response_translator(&self, req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        Box::new(response::Translator::new(req.api, Vec::new()))
    }

    /// Hunyuan keeps the stop sequence it stopped at in the text; OpenAI does not. The
    /// translator trims the request's `Stop` sequences from the end of the reply.
    fn response_translator_for(
        &self,
        req: &RequestInfo<'_>,
        body: &Value,
    ) -> Box<dyn ResponseTranslator> {
        let stops: Vec<String> = body
            .get("Stop")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Box::new(response::Translator::new(req.api, stops))
    }
}
