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

use super::{Api, Provider, ProviderType, RequestInfo, ResponseTranslator, Upstream};
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

pub fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(Gemini {
        settings: Settings::parse(config)?,
    }))
}

pub struct Gemini {
    settings: Settings,
}

impl Provider for Gemini {
    fn kind(&self) -> ProviderType {
        ProviderType::Gemini
    }

    fn settings_protocol(&self, _req: &RequestInfo<'_>) -> SettingsProtocol {
        SettingsProtocol::Gemini
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
                *body = request::translate_chat(model, body)?;
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
        if req.api == Api::ChatCompletions && !self.settings.safety_setting.is_empty() {
            let settings: Vec<Value> = self
                .settings
                .safety_setting
                .iter()
                .map(|(category, threshold)| json!({"category": category, "threshold": threshold}))
                .collect();
            if let Some(obj) = body.as_object_mut() {
                obj.insert("safetySettings".into(), Value::Array(settings));
            }
        }
        Ok(Upstream::new(HOST, path).header(AUTH_HEADER, req.token))
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
        let body = request::fast_chat(
            chat,
            &self.settings.safety_setting,
            &req.config.custom_settings,
        )?;
        let path = if req.stream {
            format!("/v1beta/{resource}:streamGenerateContent?alt=sse")
        } else {
            format!("/v1beta/{resource}:generateContent")
        };
        Some((
            Upstream::new(HOST, path).header(AUTH_HEADER, req.token),
            body,
        ))
    }

    fn has_chat_fast(&self) -> bool {
        true
    }

    fn passthrough_target(
        &self,
        _config: &ProviderConfig,
        token: &str,
        path: &str,
    ) -> Result<Upstream, ProxyError> {
        Ok(Upstream::new(HOST, path).header(AUTH_HEADER, token))
    }

    fn response_translator(&self, req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        Box::new(response::GeminiTranslator::new(req.api))
    }
}

/// The model's resource name, `models/{model}` (or a tuned model's `tunedModels/{id}`). The model
/// becomes part of the upstream path, so anything but a plain model id is refused.
fn model_resource(model: &str) -> Result<String, ProxyError> {
    let (prefix, id) = match model.strip_prefix("tunedModels/") {
        Some(id) => ("tunedModels", id),
        None => ("models", model.strip_prefix("models/").unwrap_or(model)),
    };
    let plain = !id.is_empty()
        && !id.contains("..")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !plain {
        return Err(
            ProxyError::bad_request(format!("'{model}' is not a valid Gemini model name"))
                .with_param("model"),
        );
    }
    Ok(format!("{prefix}/{id}"))
}

fn unsupported(feature: &str) -> ProxyError {
    ProxyError::unsupported(feature, NAME)
}

/// For Gemini on Vertex AI (same `GenerateContentRequest` body): the chat body for `model`, with
/// `safety` (`vertexGeminiSafetySetting`) as `safetySettings`.
pub(crate) fn vertex_chat_body(
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

/// For Gemini on Vertex AI: the same response translator (Vertex answers in Gemini's shape).
pub(crate) fn translator(api: Api) -> Box<dyn ResponseTranslator> {
    Box::new(response::GeminiTranslator::new(api))
}
