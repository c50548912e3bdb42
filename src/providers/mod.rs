//! Providers. The OpenAI-protocol family are rows of one table (`openai_compat`); every provider
//! with its own protocol implements [`Provider`] in a file of its own.

use crate::config::ProviderConfig;
use crate::custom_settings::SettingsProtocol;
use crate::error::{ConfigError, ProxyError};
use crate::openai::OpenAiWriter;
pub use crate::provider_type::ProviderType;
use crate::sse::SseEvent;
use serde_json::Value;

pub mod bedrock;
pub mod claude;
pub mod cohere;
pub mod deepl;
pub mod gemini;
pub mod hunyuan;
pub mod minimax;
pub mod moonshot;
pub mod openai_compat;
pub mod qwen;
pub mod unsupported;
pub mod vertex;

/// The OpenAI APIs we translate, chosen by path suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    ChatCompletions,
    Embeddings,
}

impl Api {
    /// `/v1/chat/completions` and `/v1/embeddings`, matched as suffixes of the path (query ignored).
    pub fn from_path(path: &str) -> Option<Self> {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        if path.ends_with("/v1/chat/completions") {
            Some(Self::ChatCompletions)
        } else if path.ends_with("/v1/embeddings") {
            Some(Self::Embeddings)
        } else {
            None
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat completions",
            Self::Embeddings => "embeddings",
        }
    }
}

/// Everything a provider needs to translate one request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    pub config: &'a ProviderConfig,
    pub api: Api,
    /// The model sent upstream, after `modelMapping`.
    pub model: &'a str,
    pub stream: bool,
    /// The client asked for a final usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// The API token chosen for this request ("" when the provider has none).
    pub token: &'a str,
    /// The client's request path with its query (after `basePath` removal).
    pub path: &'a str,
}

/// Where the request goes and which headers to set; the core adds the body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upstream {
    pub authority: String,
    /// Path with query.
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Upstream {
    pub fn new(authority: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            authority: authority.into(),
            path: path.into(),
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        // Not `format!`: this runs for every request and the formatter costs more than the copy.
        let mut value = String::with_capacity("Bearer ".len() + token.len());
        value.push_str("Bearer ");
        value.push_str(token);
        self.header("authorization", value)
    }
}

/// A provider with a protocol of its own (or the compat table, which implements it once).
pub trait Provider: Send + Sync {
    fn kind(&self) -> ProviderType;

    /// The customSettings column for this request.
    fn settings_protocol(&self, _req: &RequestInfo<'_>) -> SettingsProtocol {
        SettingsProtocol::OpenAi
    }

    /// Rewrites the parsed, model-mapped OpenAI body in place into the provider's body and says
    /// where it goes. Unsupported features are a 400 naming the feature.
    fn translate_request(
        &self,
        req: &RequestInfo<'_>,
        body: &mut Value,
    ) -> Result<Upstream, ProxyError>;

    /// `protocol: original`, or a path we do not translate: host and auth for the client's own
    /// path; the body is not touched.
    fn passthrough_target(
        &self,
        config: &ProviderConfig,
        token: &str,
        path: &str,
    ) -> Result<Upstream, ProxyError>;

    /// The OpenAI family's request fast path (`openai::body_scan::splice_request`): `Some` when,
    /// for `api`, [`Provider::translate_request`] only sets `model` on a body that has none of the
    /// rules' blocker keys, and [`Provider::response_translator_for`] does not read the body. The
    /// exchange then splices the client's bytes instead of parsing them. Default: never.
    fn request_splice(&self, _api: Api) -> Option<crate::openai::body_scan::SpliceRules> {
        None
    }

    /// Where a request taken by the fast path goes: what [`Provider::translate_request`] returns
    /// for such a body. Called only when [`Provider::request_splice`] said `Some`.
    fn splice_target(&self, _req: &RequestInfo<'_>) -> Result<Upstream, ProxyError> {
        Err(ProxyError::new(
            500,
            "api_error",
            "request fast path without a target",
        ))
    }

    /// The translating providers' request fast path: the provider's body (customSettings
    /// applied) for a chat request read by `openai::chat_read`, and where it goes, as
    /// [`Provider::translate_request`] would give them; `None` leaves the request to that
    /// reference. Only for providers whose [`Provider::response_translator_for`] does not read
    /// the body. Default: never.
    fn chat_fast(
        &self,
        _req: &RequestInfo<'_>,
        _chat: &crate::openai::chat_read::ChatRequest<'_>,
    ) -> Option<(Upstream, Vec<u8>)> {
        None
    }

    /// Whether [`Provider::chat_fast`] can answer at all (the exchange then reads the body).
    fn has_chat_fast(&self) -> bool {
        false
    }

    /// Last step with the final body bytes (request signing). Default: nothing.
    fn finalize(
        &self,
        _config: &ProviderConfig,
        _upstream: &mut Upstream,
        _body: &[u8],
    ) -> Result<(), ProxyError> {
        Ok(())
    }

    /// A fetch the provider needs before each chat request (Moonshot's file content), made by the
    /// host like the `context` callout. Default: none.
    fn callout(&self, _config: &ProviderConfig, _token: &str) -> Option<crate::context::Callout> {
        None
    }

    /// A credential to fetch before any request (Vertex's OAuth access token, from a signed JWT),
    /// made by the host like the `context` callout; `None` when a cached one is still good.
    fn auth_callout(
        &self,
        _config: &ProviderConfig,
    ) -> Result<Option<crate::context::Callout>, ProxyError> {
        Ok(None)
    }

    /// The answer to [`Provider::auth_callout`] (the provider caches what it needs).
    fn on_auth_response(&self, _status: u16, _body: &[u8]) -> Result<(), ProxyError> {
        Ok(())
    }

    /// The context text of a successful [`Provider::callout`] answer. Default: the body as is.
    fn callout_text(&self, text: &str) -> String {
        text.to_string()
    }

    /// The provider's embeddings API takes OpenAI's `encoding_format` itself. Otherwise the core
    /// removes it from the request and encodes the reply as the client asked.
    fn native_embedding_encoding(&self) -> bool {
        false
    }

    /// The provider signs every request over its body bytes (so hosts must hand the body over even
    /// on untranslated paths).
    fn signs_body(&self) -> bool {
        false
    }

    /// A fresh translator for this exchange's response.
    fn response_translator(&self, req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator>;

    /// Like [`Provider::response_translator`], given the translated request body too, for
    /// translators that need a request field to read the reply (Hunyuan trims the stop sequence
    /// it keeps in the text).
    fn response_translator_for(
        &self,
        req: &RequestInfo<'_>,
        _body: &Value,
    ) -> Box<dyn ResponseTranslator> {
        self.response_translator(req)
    }
}

/// Turns one upstream response into OpenAI's shape by calling the exchange's [`OpenAiWriter`]:
/// translators parse; the writer owns the OpenAI side (identity, role, finish, usage chunk, errors,
/// `[DONE]`). Streams arrive as SSE events (the core does the framing); buffered bodies arrive
/// whole, once.
pub trait ResponseTranslator: Send {
    /// One upstream SSE event. Not called once the writer is closed (error or end written).
    fn on_event(&mut self, event: SseEvent<'_>, w: &mut OpenAiWriter) -> Result<(), ProxyError>;

    /// The upstream stream ended. Translators that need a provider-specific closing check (an end
    /// marker that never came) report it here; the core then calls [`OpenAiWriter::end`].
    fn on_stream_end(&mut self, _w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        Ok(())
    }

    /// A whole 2xx body. An `Err` becomes the client's error reply (providers that report errors
    /// inside a 200 use this).
    fn on_body(&mut self, body: &[u8], w: &mut OpenAiWriter) -> Result<(), ProxyError>;

    /// An upstream error status with its body, as an OpenAI error keeping the upstream status.
    fn on_error(&mut self, status: u16, body: &[u8]) -> ProxyError {
        crate::openai::upstream_error(status, body)
    }

    /// For a stream request whose upstream answers with one buffered body (a provider without
    /// streaming), `on_body` writes an OpenAI SSE stream: the core then labels the reply
    /// `text/event-stream` and reports errors as an in-stream error event.
    fn buffered_as_stream(&self) -> bool {
        false
    }

    /// The provider streams a binary framing of its own (AWS event-stream), not SSE: the core
    /// then hands raw body chunks to [`ResponseTranslator::on_raw_chunk`] instead of SSE events.
    fn raw_stream(&self) -> bool {
        false
    }

    /// One raw upstream body chunk of a [`ResponseTranslator::raw_stream`] translator, split
    /// anywhere; the translator does its own (bounded) framing. Not called once the writer is
    /// closed.
    fn on_raw_chunk(&mut self, _chunk: &[u8], _w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        Ok(())
    }

    /// Buffer capacity the translator keeps between events (counted in `Exchange::held_bytes`).
    fn held_capacity(&self) -> usize {
        0
    }
}

/// The provider implementation for a configuration: each provider reads and validates its own
/// fields. A new translating provider is one module plus one line here.
pub fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    match config.kind {
        ProviderType::Claude => claude::build(config),
        ProviderType::Gemini => gemini::build(config),
        ProviderType::Qwen => qwen::build(config),
        ProviderType::Hunyuan => hunyuan::build(config),
        ProviderType::Minimax => minimax::build(config),
        ProviderType::Deepl => deepl::build(config),
        ProviderType::Cohere => cohere::build(config),
        ProviderType::Dify | ProviderType::Triton => unsupported::refuse(config),
        ProviderType::Bedrock => bedrock::build(config),
        ProviderType::Vertex => vertex::build(config),
        kind => openai_compat::build(kind, config),
    }
}
