//! bedrock: OpenAI chat completions ⇄ Amazon Bedrock Runtime's Converse API.
//!
//! Facts used (AWS Bedrock docs: API reference "Converse", "ConverseStream", "Use an API key";
//! the Higress ai-proxy README for the config field names):
//! - `POST https://bedrock-runtime.{region}.amazonaws.com/model/{modelId}/converse` and
//!   `/model/{modelId}/converse-stream` (the model id URI-encoded in the path).
//! - Auth: SigV4 with service `bedrock` (`awsAccessKey`, `awsSecretKey`, `awsRegion`), or a
//!   Bedrock API key sent as `Authorization: Bearer <key>` (`apiTokens`; wins when both are set,
//!   as in Higress). `bedrockAdditionalFields` → `additionalModelRequestFields`.
//! - Request: `messages[{role: user|assistant, content: [ContentBlock]}]` (roles alternate),
//!   `system[{text}]`, `inferenceConfig{maxTokens, temperature, topP, stopSequences}`,
//!   `toolConfig{tools[{toolSpec{name, description, inputSchema{json}}}], toolChoice{auto|any|
//!   tool{name}}}`. Blocks: `text`, `image{format: png|jpeg|gif|webp, source{bytes (base64 in
//!   JSON)}}`, `document{format, name, source{bytes}}`, `toolUse{toolUseId, name, input}`,
//!   `toolResult{toolUseId, content[{text}|...], status}`, `reasoningContent`.
//! - Response: `{output{message{role, content[...]}}, stopReason (end_turn|tool_use|max_tokens|
//!   stop_sequence|guardrail_intervened|content_filtered|model_context_window_exceeded),
//!   usage{inputTokens, outputTokens, totalTokens, cacheReadInputTokens, cacheWriteInputTokens},
//!   metrics{latencyMs}}`.
//! - Stream: `application/vnd.amazon.eventstream` messages with `:event-type` messageStart
//!   `{role}`, contentBlockStart `{contentBlockIndex, start{toolUse{toolUseId, name}}}`,
//!   contentBlockDelta `{contentBlockIndex, delta{text | toolUse{input} | reasoningContent{text,
//!   signature}}}`, contentBlockStop, messageStop `{stopReason}`, metadata `{usage, metrics}`;
//!   errors as `:message-type: exception` with `:exception-type` (validationException,
//!   throttlingException, modelStreamErrorException, internalServerException,
//!   serviceUnavailableException) and a `{message}` payload.
//! - Errors: HTTP status with `{"message": ...}` (and the `x-amzn-ErrorType` header).
//! - No embeddings through Converse (Titan/Cohere embeddings use InvokeModel): a 400.

mod eventstream;
mod request;
mod response;
mod sigv4;
mod stream;
#[cfg(test)]
mod tests;

pub use eventstream::{encode_event, Decoder as EventStreamDecoder};

use super::{Api, Auth, Profile, Provider, ProviderType};
use super::{RequestInfo, ResponseTranslator, Upstream};
use crate::config::{ProviderConfig, Secret};
use crate::custom_settings::SettingsProtocol;
use crate::error::{ConfigError, ProxyError};
use crate::openai;
use serde_json::{Map, Value};
use std::borrow::Cow;

const NAME: &str = "bedrock";
const SERVICE: &str = "bedrock";

/// bedrock's own configuration fields.
#[derive(Debug, Clone)]
pub struct Settings {
    /// SigV4 key pair; `None` in bearer-token mode.
    pub keys: Option<(Secret, Secret)>,
    pub region: String,
    pub additional_fields: Map<String, Value>,
    /// `apiTokens` are set: Bedrock API keys, sent as bearer tokens.
    pub bearer: bool,
}

impl Settings {
    pub fn parse(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let f = config.fields();
        let why = "for provider type 'bedrock'";
        let region = f
            .require("awsRegion", f.nonempty_str("awsRegion")?, why)?
            .trim();
        // The region becomes part of the host name.
        if !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(ConfigError::invalid(
                f.at("awsRegion"),
                "must be an AWS region name such as us-east-1",
            ));
        }
        let access = f.nonempty_str("awsAccessKey")?.map(str::trim);
        let secret = f.nonempty_str("awsSecretKey")?.map(str::trim);
        let bearer = config.api_tokens.iter().any(|t| !t.expose().is_empty());
        let keys = match (access, secret) {
            (Some(a), Some(s)) => Some((Secret::new(a), Secret::new(s))),
            (None, None) => None,
            _ => {
                return Err(ConfigError::invalid(
                    "provider.awsAccessKey",
                    "awsAccessKey and awsSecretKey must be set together",
                ))
            }
        };
        if keys.is_none() && !bearer {
            return Err(ConfigError::invalid(
                "provider.apiTokens",
                "required for provider type 'bedrock': apiTokens (Bedrock API keys) or \
                 awsAccessKey + awsSecretKey",
            ));
        }
        let additional_fields = match f.get("bedrockAdditionalFields") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(o)) => o.clone(),
            Some(other) => return Err(f.wrong("bedrockAdditionalFields", "an object", other)),
        };
        Ok(Self {
            keys,
            region: region.to_string(),
            additional_fields,
            bearer,
        })
    }
}

pub fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    let settings = Settings::parse(config)?;
    Ok(Box::new(Bedrock {
        host: format!("bedrock-runtime.{}.amazonaws.com", settings.region),
        settings,
    }))
}

struct Bedrock {
    settings: Settings,
    host: String,
}

/// `/model/{modelId}/converse[-stream]`, the model id URI-encoded (ids hold `:`, ARNs `/`).
fn converse_path(model: &str, stream: bool) -> String {
    let mut p = String::from("/model/");
    sigv4::uri_encode(model, &mut p);
    p.push_str(if stream {
        "/converse-stream"
    } else {
        "/converse"
    });
    p
}

const PROFILE: Profile = Profile {
    kind: ProviderType::Bedrock,
    settings: SettingsProtocol::OpenAi,
    host: "",
    auth: Auth::Bearer,
    unsupported: &[(Api::Embeddings, "the embeddings API (Converse has none)")],
};

impl Provider for Bedrock {
    fn profile(&self) -> Profile {
        PROFILE
    }

    fn host(&self, _token: &str) -> Cow<'_, str> {
        Cow::Borrowed(&self.host)
    }

    /// A Bedrock API key as a bearer token; SigV4 signing happens in `finalize`.
    fn authorize(&self, up: Upstream, token: &str) -> Result<Upstream, ProxyError> {
        Ok(if self.settings.bearer {
            PROFILE.auth.apply(up, token)
        } else {
            up
        })
    }

    fn translate_request(
        &self,
        req: &RequestInfo<'_>,
        body: &mut Value,
    ) -> Result<Upstream, ProxyError> {
        request::converse_body(body, req.model, &self.settings.additional_fields)?;
        let up = Upstream::new(self.host.as_str(), converse_path(req.model, req.stream));
        let up = if req.stream {
            up.header("accept", "application/vnd.amazon.eventstream")
        } else {
            up.header("accept", "application/json")
        };
        self.authorize(up, req.token)
    }

    fn signs_body(&self) -> bool {
        !self.settings.bearer
    }

    fn finalize(
        &self,
        _config: &ProviderConfig,
        upstream: &mut Upstream,
        body: &[u8],
    ) -> Result<(), ProxyError> {
        let Some((access, secret)) = self
            .settings
            .keys
            .as_ref()
            .filter(|_| !self.settings.bearer)
        else {
            return Ok(());
        };
        let amz_date = sigv4::amz_date(openai::now_secs());
        // Every Bedrock Runtime operation we forward (Converse, InvokeModel and their stream
        // forms) is a POST.
        let signed = sigv4::sign(
            &sigv4::Credentials {
                access_key: access.expose(),
                secret_key: secret.expose(),
            },
            &sigv4::SignRequest {
                method: "POST",
                path: &upstream.path,
                headers: &[("host", &upstream.authority), ("x-amz-date", &amz_date)],
                body,
                region: &self.settings.region,
                service: SERVICE,
                amz_date: &amz_date,
            },
        );
        upstream.set_header("x-amz-date", amz_date);
        upstream.set_header("authorization", signed.authorization);
        Ok(())
    }

    fn response_translator(&self, _req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        Box::new(response::BedrockTranslator::new())
    }
}
