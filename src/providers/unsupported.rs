//! Provider types today's Higress registers that cannot be offered honestly as an OpenAI
//! translation in a library: their configuration is refused with the reason, rather than loaded
//! and then failing (or answering wrongly) per request.
//!
//! Facts used:
//! - dify (Dify's app API docs): `POST /v1/chat-messages`, `/v1/completion-messages` or
//!   `/v1/workflows/run` per app type, with `inputs`, `query`, `user`, `conversation_id` and a
//!   server-side conversation; the app (configured in Dify's console) owns the model, prompt and
//!   history, so an OpenAI `messages` history and its sampling parameters cannot be mapped.
//! - triton (NVIDIA Triton generate extension): `POST /v2/models/{model}/generate` takes
//!   model-specific input tensors (`text_input` for the common backends) and returns
//!   `text_output` without roles, tool calls, finish reasons or token usage. Triton's own
//!   OpenAI-compatible frontend serves `/v1/chat/completions` and is reached with `vllm` or
//!   `generic`.

use super::Provider;
use crate::config::ProviderConfig;
use crate::error::ConfigError;
use crate::provider_type::ProviderType;

/// Why a type is refused, in the words its `ConfigError` uses.
pub fn reason(kind: ProviderType) -> Option<&'static str> {
    Some(match kind {
        ProviderType::Dify => {
            "provider type 'dify' is not supported: a Dify app (chat-messages, completion-messages \
             or workflows/run) owns its model, prompt and conversation in Dify's console, so an \
             OpenAI chat request cannot be translated to it faithfully; point type 'generic' \
             (genericHost) at Dify with protocol 'original' to forward Dify's own API"
        }
        ProviderType::Triton => {
            "provider type 'triton' is not supported: Triton's generate endpoint takes \
             model-specific input tensors and returns text without roles, tool calls, finish \
             reasons or token usage, so OpenAI chat cannot be mapped onto it honestly; use type \
             'vllm' (vllmCustomUrl) or 'generic' with Triton's OpenAI-compatible frontend"
        }
        _ => return None,
    })
}

pub fn refuse(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    let why = reason(config.kind).unwrap_or("provider type is not supported");
    Err(ConfigError::invalid("provider.type", why))
}
