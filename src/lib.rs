//! aiproxy: speak OpenAI's API to clients while talking to twenty-odd LLM providers in their own
//! protocols. The [`Exchange`] state machine is host-independent; [`ffi`] exposes it as a C API.

pub mod config;
pub mod context;
pub mod custom_settings;
pub mod error;
pub mod exchange;
pub mod failover;
pub mod ffi;
pub mod front;
pub mod json_write;
pub mod model_mapping;
pub mod openai;
pub mod provider_type;
pub mod providers;
pub mod sse;
pub(crate) mod typed_json;
pub mod usage;

#[cfg(test)]
pub mod testutil;

pub use config::{Protocol, ProviderConfig};
pub use error::{ConfigError, ErrorCode, ProxyError};
pub use exchange::{
    BodyOutput, Config, Exchange, LocalReply, RequestAction, ResponseHeaders, ResponseMode,
    StateError, UpstreamRequest,
};
pub use front::ClientProtocol;
pub use providers::{Api, ProviderType};
pub use usage::Usage;

/// The library version (the crate version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
