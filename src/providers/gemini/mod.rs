//! gemini: Google's Generative Language API (`generateContent`, `streamGenerateContent`,
//! `batchEmbedContents`), translated to and from OpenAI's chat completions and embeddings.
//!
//! Facts used (Gemini API reference, https://ai.google.dev/api):
//! - Host `generativelanguage.googleapis.com`, key in header `x-goog-api-key`.
//! - Chat: `POST /v1beta/models/{model}:generateContent`; streaming
//!   `POST /v1beta/models/{model}:streamGenerateContent?alt=sse`, where every SSE `data:` is a whole
//!   `GenerateContentResponse` and the stream ends without a `[DONE]` sentinel
//!   (https://ai.google.dev/api/generate-content, REST streaming quickstart in google-gemini/cookbook).
//! - Request: `contents[{role: user|model, parts[]}]`, `system_instruction{parts[{text}]}`,
//!   `generation_config{temperature, topP, topK, maxOutputTokens, stopSequences, candidateCount, seed,
//!   presencePenalty, frequencyPenalty, responseMimeType, responseJsonSchema}`, `safetySettings
//!   [{category, threshold}]`, `tools[{function_declarations[{name, description, parameters}]}]`,
//!   `tool_config{function_calling_config{mode: AUTO|ANY|NONE, allowed_function_names}}`. Parts are
//!   `text`, `inline_data{mime_type, data}`, `file_data{file_uri}` (a Files API URI), `functionCall
//!   {name, args}` and `functionResponse{name, response}`; the response object uses the key `output`
//!   for the function's output ("FunctionResponse" reference). The REST function-calling guide sends
//!   function responses in a `user` turn. Field names are accepted in snake_case or lowerCamelCase
//!   (proto3 JSON); `generation_config` is the key the seed's customSettings use.
//! - Gemini 3 models attach `thoughtSignature` to `functionCall` parts and reject a replayed call
//!   without it (https://ai.google.dev/gemini-api/docs/thought-signatures). Gemini's own OpenAI
//!   compatibility layer carries it as `extra_content.google.thought_signature` on each tool call;
//!   we do the same, and for a replayed Gemini 3 call without one we send the documented sentinel
//!   `skip_thought_signature_validator`.
//! - Response: `candidates[{content{parts}, finishReason, index}]`, `usageMetadata{promptTokenCount,
//!   candidatesTokenCount, thoughtsTokenCount, totalTokenCount}`, `modelVersion`,
//!   `promptFeedback{blockReason}` (no candidates when the prompt is blocked). `finishReason` values:
//!   STOP, MAX_TOKENS, SAFETY, RECITATION, LANGUAGE, OTHER, BLOCKLIST, PROHIBITED_CONTENT, SPII,
//!   MALFORMED_FUNCTION_CALL, IMAGE_SAFETY.
//! - Embeddings: `POST /v1beta/models/{model}:batchEmbedContents` with `requests[{model:
//!   "models/{model}", content{parts[{text}]}, outputDimensionality?}]` → `embeddings[{values}]`; the
//!   Gemini API reports no token usage for embeddings (https://ai.google.dev/api/embeddings).
//! - Errors: Google's error model `{"error": {"code", "message", "status"}}`, sometimes wrapped in a
//!   one-element array by the streaming endpoint.

use super::{Api, Auth, Profile, Provider, ProviderType};
use super::{RequestInfo, ResponseTranslator, Upstream};
use crate::config::ProviderConfig;
use crate::custom_settings::SettingsProtocol;
use crate::error::{ConfigError, ProxyError};
use serde_json::{json, Value};

mod request;
mod response;
mod scan;
mod stream;
#[cfg(test)]
mod tests;
mod typed;

const NAME: &str = "gemini";
const HOST: &str = "generativelanguage.googleapis.com";
const AUTH_HEADER: &str = "x-goog-api-key";

/// gemini's own configuration fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `geminiSafetySetting`, category → threshold, in the order given.
    pub safety_setting: Vec<(String, String)>,
}

impl Settings {
    pub fn parse(config: &ProviderConfig) -> Result<Self, ConfigError> {
        config.require_token()?;
        Ok(Self {
            safety_setting: config.fields().str_map("geminiSafetySetting")?,
        })
    }
}

const PROFILE: Profile = Profile {
    kind: ProviderType::Gemini,
    settings: SettingsProtocol::Gemini,
    host: HOST,
    auth: Auth::Header(AUTH_HEADER),
    unsupported: &[],
};

/// Gemini's whole state is its settings.
impl Provider for Settings {
    fn profile(&self) -> Profile {
        PROFILE
    }

    fn translate_request(
        &self,
        req: &RequestInfo<'_>,
        body: &mut Value,
    ) -> Result<Upstream, ProxyError> {
        let resource = model_resource(req.model)?;
        let model = resource.strip_prefix("models/").unwrap_or(&resource);
        let path = match req.api {
            Api::ChatCompletions => {
                chat_body(model, body, &self.safety_setting)?;
                if req.stream {
                    format!("/v1beta/{resource}:streamGenerateContent?alt=sse")
                } else {
                    format!("/v1beta/{resource}:generateContent")
                }
            }
            Api::Embeddings => {
                *body = request::translate_embeddings(&resource, body)?;
                format!("/v1beta/{resource}:batchEmbedContents")
            }
        };
        self.authorize(Upstream::new(HOST, path), req.token)
    }

    fn chat_fast(
        &self,
        req: &RequestInfo<'_>,
        chat: &crate::openai::chat_read::ChatRequest<'_>,
    ) -> Option<(Upstream, Vec<u8>)> {
        if req.api != Api::ChatCompletions {
            return None;
        }
        let resource = model_resource(req.model).ok()?;
        let model = resource.strip_prefix("models/").unwrap_or(&resource);
        let body = request::fast_chat(
            model,
            chat,
            &self.safety_setting,
            &req.config.custom_settings,
        )?;
        let path = if req.stream {
            format!("/v1beta/{resource}:streamGenerateContent?alt=sse")
        } else {
            format!("/v1beta/{resource}:generateContent")
        };
        Some((
            self.authorize(Upstream::new(HOST, path), req.token).ok()?,
            body,
        ))
    }

    fn has_chat_fast(&self) -> bool {
        true
    }

    fn response_translator(&self, req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        translator(req.api)
    }
}

/// The model's resource name, `models/{model}` (or a tuned model's `tunedModels/{id}`). The model
/// becomes part of the upstream path, so anything but a plain model id is refused.
fn model_resource(model: &str) -> Result<String, ProxyError> {
    let (prefix, id) = match model.strip_prefix("tunedModels/") {
        Some(id) => ("tunedModels", id),
        None => ("models", model.strip_prefix("models/").unwrap_or(model)),
    };
    super::plain_model_id(id, model, b"", "Gemini")?;
    Ok(format!("{prefix}/{id}"))
}

fn unsupported(feature: &str) -> ProxyError {
    ProxyError::unsupported(feature, NAME)
}

/// The chat body for `model`, with `safety` (`geminiSafetySetting`, or Vertex's
/// `vertexGeminiSafetySetting`: Vertex AI takes the same `GenerateContentRequest`) as
/// `safetySettings`.
pub(crate) fn chat_body(
    model: &str,
    body: &mut Value,
    safety: &[(String, String)],
) -> Result<(), ProxyError> {
    *body = request::translate_chat(model, body)?;
    if !safety.is_empty() {
        let settings: Vec<Value> = safety
            .iter()
            .map(|(category, threshold)| json!({"category": category, "threshold": threshold}))
            .collect();
        if let Some(obj) = body.as_object_mut() {
            obj.insert("safetySettings".into(), Value::Array(settings));
        }
    }
    Ok(())
}

/// [`chat_body`] on the request fast path (Vertex's Gemini models): the body for `model`, with
/// `safety` and customSettings applied; `None` when the `Value` path must decide.
pub(crate) fn fast_chat_body(
    model: &str,
    chat: &crate::openai::chat_read::ChatRequest<'_>,
    safety: &[(String, String)],
    settings: &[crate::custom_settings::CustomSetting],
) -> Option<Vec<u8>> {
    request::fast_chat(model, chat, safety, settings)
}

/// The response translator (Vertex AI answers in Gemini's shape too).
pub(crate) fn translator(api: Api) -> Box<dyn ResponseTranslator> {
    Box::new(response::GeminiTranslator::new(api))
}
