//! Providers. The OpenAI-protocol family are rows of one table (`openai_compat`); every provider
//! with its own protocol implements [`Provider`] in a file of its own.

use crate::config::ProviderConfig;
use crate::custom_settings::SettingsProtocol;
use crate::error::{ConfigError, ProxyError};
use crate::openai::OpenAiWriter;
pub use crate::provider_type::ProviderType;
use crate::sse::SseEvent;
use serde_json::Value;
use std::borrow::Cow;

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

    /// Sets a header, replacing any of that name (request signing's last word).
    pub fn set_header(&mut self, name: &str, value: String) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value));
    }

    pub fn bearer(self, token: &str) -> Self {
        // Not `format!`: this runs for every request and the formatter costs more than the copy.
        let mut value = String::with_capacity("Bearer ".len() + token.len());
        value.push_str("Bearer ");
        value.push_str(token);
        self.header("authorization", value)
    }
}

/// How a provider's API token goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Bearer,
    /// The token in a header of this name, e.g. Azure's `api-key`.
    Header(&'static str),
    None,
    /// Bearer when `apiTokens` are configured, nothing otherwise (self-hosted servers).
    BearerIfToken,
    /// `authorization: <scheme> <token>` for another scheme, e.g. DeepL's `DeepL-Auth-Key`.
    Scheme(&'static str),
}

impl Auth {
    pub fn apply(self, up: Upstream, token: &str) -> Upstream {
        match self {
            Auth::Bearer => up.bearer(token),
            Auth::Header(name) => up.header(name, token),
            Auth::None => up,
            Auth::BearerIfToken if token.is_empty() => up,
            Auth::BearerIfToken => up.bearer(token),
            Auth::Scheme(scheme) => up.header("authorization", format!("{scheme} {token}")),
        }
    }
}

/// What a provider declares once; [`Provider`]'s defaults read it.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub kind: ProviderType,
    /// The customSettings column (a provider that chooses per request overrides
    /// [`Provider::settings_protocol`]).
    pub settings: SettingsProtocol,
    /// The upstream host ("" for a provider whose host comes from its configuration: it
    /// overrides [`Provider::host`]).
    pub host: &'static str,
    pub auth: Auth,
    /// The APIs it does not translate, each with the feature its 400 names.
    pub unsupported: &'static [(Api, &'static str)],
}

impl Profile {
    /// `<feature> is not supported by provider '<kind>'` (400) for an API in `unsupported`.
    pub fn check(&self, api: Api) -> Result<(), ProxyError> {
        match self.unsupported.iter().find(|(a, _)| *a == api) {
            Some((_, feature)) => Err(ProxyError::unsupported(feature, self.kind.name())),
            None => Ok(()),
        }
    }
}

/// A provider with a protocol of its own (or the compat table, which implements it once).
pub trait Provider: Send + Sync {
    fn profile(&self) -> Profile;

    fn kind(&self) -> ProviderType {
        self.profile().kind
    }

    /// The customSettings column for this request.
    fn settings_protocol(&self, _req: &RequestInfo<'_>) -> SettingsProtocol {
        self.profile().settings
    }

    /// Refuses an API the provider does not translate; the core asks before
    /// [`Provider::translate_request`].
    fn check_api(&self, api: Api) -> Result<(), ProxyError> {
        self.profile().check(api)
    }

    /// The host requests go to (DeepL picks its tier by the key's form).
    fn host(&self, _token: &str) -> Cow<'_, str> {
        Cow::Borrowed(self.profile().host)
    }

    /// Sets the provider's credentials on a request to [`Provider::host`].
    fn authorize(&self, up: Upstream, token: &str) -> Result<Upstream, ProxyError> {
        Ok(self.profile().auth.apply(up, token))
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
        _config: &ProviderConfig,
        token: &str,
        path: &str,
    ) -> Result<Upstream, ProxyError> {
        self.authorize(Upstream::new(self.host(token), path), token)
    }

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

    /// Whether [`Provider::chat_fast`] handles the provider parameters of
    /// `chat_read::EXTRA_KEYS`; when not, a request with any takes the full path.
    fn chat_fast_extras(&self) -> bool {
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
        ProviderType::Claude => boxed(claude::Settings::parse(config)),
        ProviderType::Gemini => boxed(gemini::Settings::parse(config)),
        ProviderType::Qwen => boxed(qwen::Settings::parse(config)),
        ProviderType::Hunyuan => boxed(hunyuan::Settings::parse(config)),
        ProviderType::Minimax => minimax::build(config),
        ProviderType::Deepl => boxed(deepl::Settings::parse(config)),
        ProviderType::Cohere => boxed(cohere::Settings::parse(config)),
        ProviderType::Dify | ProviderType::Triton => unsupported::refuse(config),
        ProviderType::Bedrock => bedrock::build(config),
        ProviderType::Vertex => vertex::build(config),
        kind => openai_compat::build(kind, config),
    }
}

/// A model id that becomes part of an upstream path: ASCII letters, digits, `-._` and `extra`,
/// without `..`; anything else is a 400 naming the client's `model` as not a valid `whose` model
/// name.
pub(crate) fn plain_model_id(
    id: &str,
    model: &str,
    extra: &[u8],
    whose: &str,
) -> Result<(), ProxyError> {
    let plain = !id.is_empty()
        && !id.contains("..")
        && id.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') || extra.contains(&b)
        });
    if plain {
        Ok(())
    } else {
        Err(
            ProxyError::bad_request(format!("'{model}' is not a valid {whose} model name"))
                .with_param("model"),
        )
    }
}

/// Providers whose whole state is their parsed settings implement [`Provider`] on them.
fn boxed<P: Provider + 'static>(
    p: Result<P, ConfigError>,
) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(p?))
}
