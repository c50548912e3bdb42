//! cohere: OpenAI chat completions and embeddings ⇄ Cohere's v2 API.
//!
//! Facts used (Cohere's public API reference, docs.cohere.com/v2/reference/chat, chat-stream,
//! embed; guides "Streaming" and "Streaming for tool use"):
//! - `POST https://api.cohere.com/v2/chat` and `/v2/embed`, `Authorization: Bearer <key>`.
//! - Chat request: `model`, `messages` with roles `system`, `user`, `assistant`, `tool`;
//!   content a string or an array of `{"type":"text","text"}` / `{"type":"image_url",
//!   "image_url":{"url"}}` parts; assistant `tool_calls` `[{id, type:"function",
//!   function:{name, arguments}}]`; tool messages carry `tool_call_id`. Tools are OpenAI-shaped
//!   `{"type":"function","function":{name, description, parameters}}`; `tool_choice` is
//!   `REQUIRED` or `NONE`. Sampling: `max_tokens`, `stop_sequences`, `temperature`, `p`, `k`,
//!   `seed`, `frequency_penalty`, `presence_penalty`; `response_format`
//!   `{"type":"json_object","json_schema"?}`; `stream`.
//! - Chat response: `{id, finish_reason, message:{role, content:[{type:"text",text}],
//!   tool_plan?, tool_calls?}, usage:{billed_units:{input_tokens, output_tokens},
//!   tokens:{input_tokens, output_tokens}}}`; finish reasons `COMPLETE`, `STOP_SEQUENCE`,
//!   `MAX_TOKENS`, `TOOL_CALL`, `ERROR`, `TIMEOUT`.
//! - Stream: SSE events whose data carry `type`: `message-start` (id), `content-start`,
//!   `content-delta` (`delta.message.content.text`), `content-end`, `tool-plan-delta`
//!   (`delta.message.tool_plan`), `tool-call-start` (`delta.message.tool_calls` with id and
//!   name), `tool-call-delta` (`...function.arguments`), `tool-call-end`, `citation-start/end`,
//!   `message-end` (`delta.finish_reason`, `delta.usage`).
//! - Embed request: `model`, `texts`, `input_type` (required for v3+ models:
//!   `search_document`, `search_query`, `classification`, `clustering`), `embedding_types`,
//!   `output_dimension`, `truncate`; response `{id, embeddings:{float:[[...]]}, texts,
//!   meta:{billed_units:{input_tokens}}, response_type:"embeddings_by_type"}`.
//! - Errors: HTTP status with `{"id"?, "message"}`.

mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

use super::{Api, Auth, Profile, Provider, ProviderType};
use super::{RequestInfo, ResponseTranslator, Upstream};
use crate::config::ProviderConfig;
use crate::custom_settings::SettingsProtocol;
use crate::error::{ConfigError, ProxyError};
use serde_json::Value;

const HOST: &str = "api.cohere.com";
const CHAT_PATH: &str = "/v2/chat";
const EMBED_PATH: &str = "/v2/embed";
const NAME: &str = "cohere";

/// cohere's own configuration fields: none beyond the shared ones; the key is required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `responseJsonSchema`: sent as Cohere's `response_format.json_schema`.
    pub response_json_schema: Option<Value>,
}

impl Settings {
    pub fn parse(config: &ProviderConfig) -> Result<Self, ConfigError> {
        config.require_token()?;
        let f = config.fields();
        let response_json_schema = match f.get("responseJsonSchema") {
            None => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(v) => return Err(f.wrong("responseJsonSchema", "an object", v)),
        };
        Ok(Self {
            response_json_schema,
        })
    }
}

const PROFILE: Profile = Profile {
    kind: ProviderType::Cohere,
    settings: SettingsProtocol::OpenAi,
    host: HOST,
    auth: Auth::Bearer,
    unsupported: &[],
};

/// Cohere's whole state is its settings.
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
            Api::ChatCompletions => {
                request::translate_chat(req, self.response_json_schema.as_ref(), body)?;
                CHAT_PATH
            }
            Api::Embeddings => {
                request::translate_embeddings(req, body)?;
                EMBED_PATH
            }
        };
        let up = self.authorize(Upstream::new(HOST, path), req.token)?;
        Ok(if req.stream {
            up.header("accept", "text/event-stream")
        } else {
            up
        })
    }

    fn response_translator(&self, req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        Box::new(response::CohereTranslator::new(req.api))
    }
}
