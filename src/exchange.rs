//! One client request/response exchange: the host feeds it the request, then the response headers
//! and body chunks, and applies what it returns. Host-independent; the C API and the Envoy module
//! are thin layers over it.

use crate::config::{
    BasePathHandling, Protocol, ProviderConfig, CAPABILITY_CHAT, CAPABILITY_EMBEDDINGS,
};
use crate::context::{self, Callout};
use crate::custom_settings;
use crate::error::{ConfigError, ProxyError};
use crate::front::{anthropic, ClientProtocol};
use crate::openai::body_scan::{self, SpliceRules};
use crate::openai::{chat_read, OpenAiWriter};
use crate::providers::{self, Api, Provider, ProviderType, RequestInfo, ResponseTranslator};
use crate::sse::{Absorb, LineEnd, SseError, SseParser};
use crate::usage::Usage;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// Largest client request body we translate (larger gets 413).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 32 << 20;
/// Largest buffered (non-streamed) upstream body we translate.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 << 20;

/// A loaded configuration: validated settings plus the provider implementation. Immutable,
/// `Send + Sync`; share one `Arc<Config>` across all worker threads.
pub struct Config {
    pub provider: ProviderConfig,
    pub(crate) imp: Box<dyn Provider>,
    /// Token health for `failover`, shared by every exchange of this configuration.
    pub(crate) tokens: crate::failover::TokenPool,
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn from_json(bytes: &[u8]) -> Result<Arc<Self>, ConfigError> {
        Ok(Arc::new(Self::new(ProviderConfig::from_json(bytes)?)?))
    }

    /// The provider implementation for validated shared settings: the provider reads and
    /// validates its own fields here.
    pub fn new(provider: ProviderConfig) -> Result<Self, ConfigError> {
        let imp = providers::build(&provider)?;
        let tokens = crate::failover::TokenPool::new(provider.api_tokens.len(), &provider.failover);
        Ok(Self {
            provider,
            imp,
            tokens,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// `firstByteTimeout` in milliseconds (0: unset): how long the host should wait for the
    /// first byte of a streamed upstream response. The core applies no timers; hosts do.
    pub fn first_byte_timeout_ms(&self) -> u64 {
        self.provider.first_byte_timeout_ms
    }

    /// Configuration fields that were ignored (unknown or not implemented), one sentence each;
    /// hosts log them at load.
    pub fn warnings(&self) -> &[String] {
        self.provider.warnings()
    }

    /// Whether requests with this method and path are translated (OpenAI body read and rewritten).
    /// Hosts ask this instead of re-deriving the rule.
    pub fn translates(&self, method: &str, path: &str) -> bool {
        self.provider.protocol == Protocol::OpenAi
            && method.eq_ignore_ascii_case("POST")
            && (Api::from_path(path).is_some() || anthropic::Endpoint::from_path(path).is_some())
    }

    /// Whether the core needs this request's body before it can decide: it translates the body,
    /// or the provider signs every request over its bytes. A host that gets `false` may call
    /// [`Exchange::on_request`] as soon as the headers arrive, with an empty body.
    pub fn needs_request_body(&self, method: &str, path: &str) -> bool {
        self.translates(method, path) || self.imp.signs_body()
    }
}

/// What the host does with the client's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestAction {
    Forward(UpstreamRequest),
    /// Answer the client directly (an OpenAI-shaped error).
    LocalReply(LocalReply),
    /// Fetch this first, then call [`Exchange::on_callout_response`].
    Callout(Callout),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    pub authority: String,
    /// Path with query.
    pub path: String,
    /// Remove these request headers first...
    pub remove_headers: Vec<&'static str>,
    /// ...then set these (replacing any existing value).
    pub set_headers: Vec<(String, String)>,
    /// The new body; `None` leaves the client's body untouched.
    pub body: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl LocalReply {
    pub fn from_error(err: &ProxyError) -> Self {
        Self {
            status: err.status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: err.to_body(),
        }
    }
}

/// How the host handles the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub enum ResponseMode {
    /// Forward bytes unchanged (untranslated request, or after a local reply).
    Passthrough = 0,
    /// SSE: send headers now; send each chunk's translated output as it returns.
    Stream = 1,
    /// Hold headers and body until end of stream; then send the status and body returned.
    Buffer = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeaders {
    pub mode: ResponseMode,
    pub remove_headers: Vec<&'static str>,
    pub set_headers: Vec<(String, String)>,
}

/// Output of one response body call. `data` is valid until the next call.
#[derive(Debug, PartialEq, Eq)]
pub struct BodyOutput<'a> {
    /// Passthrough mode: leave the chunk as it is (`data` is empty).
    pub unchanged: bool,
    pub data: &'a [u8],
    /// Buffer mode at end of stream: the status to send (may differ from upstream's when a 200
    /// carried an error).
    pub status: Option<u16>,
}

/// A call that does not fit the exchange's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateError(pub &'static str);

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for StateError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    New,
    AwaitingCallout,
    Forwarded,
    LocalReplied,
    ResponseHeaders,
    Done,
}

/// What we learnt from the request that the response side needs.
#[derive(Debug, Default, Clone)]
struct RequestState {
    api: Option<Api>,
    translated: bool,
    stream: bool,
    include_usage: bool,
    /// Embeddings: the client asked for base64 vectors.
    embeddings_base64: bool,
    model_requested: String,
    model_sent: String,
    token: String,
}

impl RequestState {
    /// A request the core translates (`api` set): every path that parses or reads the body.
    fn translated(
        api: Api,
        stream: bool,
        include_usage: bool,
        embeddings_base64: bool,
        requested: &str,
        sent: &str,
        token: &str,
    ) -> Self {
        Self {
            api: Some(api),
            translated: true,
            stream,
            include_usage,
            embeddings_base64,
            model_requested: requested.to_string(),
            model_sent: sent.to_string(),
            token: token.to_string(),
        }
    }
}

pub struct Exchange {
    config: Arc<Config>,
    stage: Stage,
    req: RequestState,
    /// The parsed body while a callout is outstanding.
    pending_body: Option<Value>,
    /// The outstanding callout is the provider's credential fetch (`Provider::auth_callout`).
    awaiting_auth: bool,
    /// An untranslated request held for that fetch: (path, body, token).
    pending_passthrough: Option<(String, Vec<u8>, String)>,
    translator: Option<Box<dyn ResponseTranslator>>,
    /// Every OpenAI byte we emit for a translated response goes through it.
    writer: OpenAiWriter,
    mode: ResponseMode,
    upstream_status: u16,
    /// Upstream sent an encoding we cannot decode.
    undecodable: Option<String>,
    sse: SseParser,
    /// Buffer mode only: the body so far.
    buffered: Vec<u8>,
    /// Decided at the response headers: the reply is this error whatever the body holds (the body
    /// is then not buffered).
    rejected: Option<ProxyError>,
    /// Buffer mode producing an SSE stream (see `ResponseTranslator::buffered_as_stream`).
    buffer_as_sse: bool,
    /// Token choice, failover reports and retries.
    attempt: crate::failover::Attempt,
    /// The client's path after `basePath` removal, and its host (a provider without a host of
    /// its own, `generic`, keeps it).
    client_path: String,
    client_authority: String,
    /// The API dialect the client spoke.
    protocol: ClientProtocol,
    /// Anthropic front state (`/v1/messages`), see [`crate::front`].
    front: Option<Box<anthropic::Front>>,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("stage", &self.stage)
            .field("mode", &self.mode)
            .field("model_sent", &self.req.model_sent)
            .finish_non_exhaustive()
    }
}

impl From<SseError> for ProxyError {
    fn from(e: SseError) -> Self {
        ProxyError::bad_upstream(e.message)
    }
}

/// The error type of a stream chunk's events: boxed, so that the parser's result is one word
/// (the unboxed error was moved through every event's dispatch).
impl From<SseError> for Box<ProxyError> {
    fn from(e: SseError) -> Self {
        Box::new(e.into())
    }
}

fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// `basePath` with removePrefix (Higress): the prefix is taken off the client's path first.
fn strip_base_path<'p>(pc: &ProviderConfig, path: &'p str) -> &'p str {
    match &pc.base_path {
        Some((base, BasePathHandling::RemovePrefix)) => match path.strip_prefix(base.as_str()) {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') || rest.starts_with('?') => rest,
            _ => path,
        },
        _ => path,
    }
}

/// The key to forward for `openai` without `apiTokens` (Higress's order): the `authHeaderKey`
/// header, then `x-api-key`, `x-authorization`, then `Authorization` without its `Bearer `.
fn client_key(pc: &ProviderConfig, headers: &[(&str, &str)]) -> String {
    let named = pc
        .auth_header_key
        .as_deref()
        .and_then(|k| header(headers, k))
        .filter(|v| !v.is_empty());
    named
        .or_else(|| header(headers, "x-api-key").filter(|v| !v.is_empty()))
        .or_else(|| header(headers, "x-authorization").filter(|v| !v.is_empty()))
        .or_else(|| {
            header(headers, "authorization").map(|a| a.strip_prefix("Bearer ").unwrap_or(a))
        })
        .unwrap_or("")
        .to_string()
}

/// The shared routing fields, applied to where the provider sends a request (before signing):
/// `capabilities` (translated APIs), `basePath` prepend, `providerBasePath`, `providerDomain`;
/// a provider without a host of its own (generic) keeps the client's.
pub(crate) fn route(
    pc: &ProviderConfig,
    api: Option<Api>,
    up: &mut providers::Upstream,
    client_authority: &str,
) {
    let capability = api.and_then(|a| {
        pc.capability(match a {
            Api::ChatCompletions => CAPABILITY_CHAT,
            Api::Embeddings => CAPABILITY_EMBEDDINGS,
        })
    });
    if let Some(p) = capability {
        up.path = match up.path.split_once('?') {
            Some((_, q)) if !p.contains('?') => format!("{p}?{q}"),
            _ => p.to_string(),
        };
    }
    if let Some((base, BasePathHandling::Prepend)) = &pc.base_path {
        if !up.path.starts_with(base.as_str()) {
            up.path = format!("{base}{}", up.path);
        }
    }
    if let Some(base) = &pc.provider_base_path {
        if !up.path.starts_with(base.as_str()) {
            up.path = format!("{base}{}", up.path);
        }
    }
    if let Some(domain) = &pc.provider_domain {
        up.authority = domain.clone();
    }
    if up.authority.is_empty() {
        up.authority = client_authority.to_string();
    }
}

impl Exchange {
    pub fn new(config: Arc<Config>) -> Self {
        Self {
            config,
            stage: Stage::New,
            req: RequestState::default(),
            pending_body: None,
            awaiting_auth: false,
            pending_passthrough: None,
            translator: None,
            writer: OpenAiWriter::new("", false),
            mode: ResponseMode::Passthrough,
            upstream_status: 0,
            undecodable: None,
            sse: SseParser::default(),
            buffered: Vec::new(),
            rejected: None,
            buffer_as_sse: false,
            attempt: Default::default(),
            client_path: String::new(),
            client_authority: String::new(),
            protocol: ClientProtocol::OpenAi,
            front: None,
        }
    }

    /// The API dialect the client spoke (decided by the request path).
    pub fn client_protocol(&self) -> ClientProtocol {
        self.protocol
    }

    /// Anthropic front: the request fields dropped because the provider's OpenAI-side API cannot
    /// carry them (names of the first few, and how many in all).
    pub fn dropped_fields(&self) -> (&[String], usize) {
        self.front
            .as_ref()
            .map_or((&[], 0), |f| (f.dropped.as_slice(), f.dropped_count))
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The API translated, if any.
    pub fn api(&self) -> Option<Api> {
        self.req.api
    }

    pub fn is_stream(&self) -> bool {
        self.req.stream
    }

    pub fn model_requested(&self) -> &str {
        &self.req.model_requested
    }

    /// The model actually sent upstream (after `modelMapping`); empty when not translated.
    pub fn model_sent(&self) -> &str {
        &self.req.model_sent
    }

    /// Memory a live response holds between body calls: `(pending, beyond)`, where `pending` is
    /// the partial upstream event not yet complete and `beyond` is every other byte of buffer
    /// capacity kept (SSE parser buffers, the translator's, buffered body). The output of the
    /// last call (valid until the next) is not counted: the host owns what it does with it.
    pub fn held_bytes(&self) -> (usize, usize) {
        let pending = self.sse.buffered_len();
        let translator = self.translator.as_ref().map_or(0, |t| t.held_capacity());
        let beyond = self.sse.held_capacity() - pending + translator + self.buffered.capacity();
        (pending, beyond)
    }

    /// Token usage; complete once the response has ended.
    pub fn usage(&self) -> Option<Usage> {
        if let Some(f) = self.front.as_ref().filter(|f| f.is_native()) {
            return f.native_usage();
        }
        self.writer.usage()
    }

    /// Step 1: the client's request, with its whole body.
    pub fn on_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<RequestAction, StateError> {
        if self.stage != Stage::New {
            return Err(StateError("the request was already processed"));
        }
        let cfg = Arc::clone(&self.config);
        let pc = &cfg.provider;
        let path = strip_base_path(pc, path);
        let client_token;
        let token = if pc.kind == ProviderType::OpenAi && pc.api_tokens.is_empty() {
            // Higress: openai without apiTokens forwards the client's own key.
            client_token = client_key(pc, headers);
            client_token.as_str()
        } else {
            self.attempt.first(&cfg)
        };
        self.protocol = ClientProtocol::from_path(path);
        self.client_path = path.to_string();
        self.client_authority = header(headers, ":authority")
            .or_else(|| header(headers, "host"))
            .unwrap_or("")
            .to_string();
        if !cfg.translates(method, path) {
            return Ok(match cfg.imp.auth_callout(pc) {
                Ok(None) => self.passthrough(path, body, token),
                Ok(Some(c)) => {
                    self.pending_passthrough =
                        Some((path.to_string(), body.to_vec(), token.to_string()));
                    self.awaiting_auth = true;
                    self.stage = Stage::AwaitingCallout;
                    RequestAction::Callout(c)
                }
                Err(e) => self.local_reply(&e),
            });
        }
        if let Some(endpoint) = anthropic::Endpoint::from_path(path) {
            return Ok(self.on_anthropic_request(endpoint, path, headers, body, token));
        }
        let api = Api::from_path(path).expect("translates() checked the path");
        if let Some(action) = self.fast_request(api, headers, body, token) {
            return Ok(action);
        }
        let action = match self.parse_request(api, headers, body, token) {
            Ok(value) => match cfg.imp.auth_callout(pc) {
                Ok(Some(c)) => {
                    self.pending_body = Some(value);
                    self.awaiting_auth = true;
                    self.stage = Stage::AwaitingCallout;
                    return Ok(RequestAction::Callout(c));
                }
                Ok(None) => return Ok(self.after_auth(value)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        Ok(self.finish_request(action))
    }

    /// A parsed request once any credential is in hand: the context callout, or the upstream.
    fn after_auth(&mut self, mut value: Value) -> RequestAction {
        let cfg = Arc::clone(&self.config);
        let pc = &cfg.provider;
        let api = self.req.api.expect("set by parse_request");
        let action = match context::callout_for(pc, cfg.imp.as_ref(), &self.req.token)
            .filter(|_| api == Api::ChatCompletions)
        {
            Some(c) => {
                self.pending_body = Some(value);
                self.stage = Stage::AwaitingCallout;
                return RequestAction::Callout(c);
            }
            None => self.build_upstream(&mut value),
        };
        self.finish_request(action)
    }

    /// Step 1b: the result of the callout requested by `on_request`.
    pub fn on_callout_response(
        &mut self,
        status: u16,
        body: &[u8],
    ) -> Result<RequestAction, StateError> {
        if self.stage != Stage::AwaitingCallout {
            return Err(StateError("no callout is outstanding"));
        }
        if std::mem::take(&mut self.awaiting_auth) {
            let cfg = Arc::clone(&self.config);
            if let Err(e) = cfg.imp.on_auth_response(status, body) {
                self.pending_body = None;
                self.pending_passthrough = None;
                return Ok(self.local_reply(&e));
            }
            if let Some((path, body, token)) = self.pending_passthrough.take() {
                return Ok(self.passthrough(&path, &body, &token));
            }
            let value = self.pending_body.take().expect("set with the stage");
            return Ok(self.after_auth(value));
        }
        let mut value = self.pending_body.take().expect("set with the stage");
        let action = context::context_text(
            &self.config.provider,
            self.config.imp.as_ref(),
            status,
            body,
        )
        .and_then(|text| {
            context::prepend_system(&mut value, text);
            self.build_upstream(&mut value)
        });
        Ok(self.finish_request(action))
    }

    fn finish_request(&mut self, action: Result<UpstreamRequest, ProxyError>) -> RequestAction {
        match action {
            Ok(mut up) => {
                if self.front.as_ref().is_some_and(|f| !f.is_native()) {
                    // The Anthropic client's key and protocol headers stop here.
                    up.remove_headers.extend(anthropic::CLIENT_HEADERS);
                }
                self.stage = Stage::Forwarded;
                RequestAction::Forward(up)
            }
            Err(e) => self.local_reply(&e),
        }
    }

    fn local_reply(&mut self, err: &ProxyError) -> RequestAction {
        self.stage = Stage::LocalReplied;
        if self.protocol == ClientProtocol::Anthropic {
            return RequestAction::LocalReply(LocalReply {
                status: err.status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: anthropic::proxy_error_body(err),
            });
        }
        RequestAction::LocalReply(LocalReply::from_error(err))
    }

    // ---- Anthropic Messages front (src/front/anthropic) --------------------------------------
    // A client-protocol layer: provider `claude` gets the request natively; every other provider
    // gets it converted to an OpenAI chat request, which then takes the ordinary path below, and
    // the response side converts the pipeline's OpenAI output back (see `on_response_body`).

    fn on_anthropic_request(
        &mut self,
        endpoint: anthropic::Endpoint,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        token: &str,
    ) -> RequestAction {
        let cfg = Arc::clone(&self.config);
        let parsed = self.check_body(headers, body).and_then(|()| {
            serde_json::from_slice::<Value>(body).map_err(|e| {
                ProxyError::bad_request(format!("request body is not valid JSON: {e}"))
            })
        });
        let value = match parsed {
            Ok(v) => v,
            Err(e) => return self.local_reply(&e),
        };
        let kind = cfg.provider.kind;
        if kind == ProviderType::Claude {
            let up = self.anthropic_native(endpoint, path, value, token);
            return self.finish_request(up);
        }
        if endpoint == anthropic::Endpoint::CountTokens {
            return self.local_reply(&ProxyError::new(
                404,
                "not_found_error",
                format!(
                    "/v1/messages/count_tokens is served for provider 'claude' only; provider '{}' has no token counting API",
                    kind.name()
                ),
            ));
        }
        // The converted request is an OpenAI chat request: a provider that keeps the client's
        // path (generic) gets the chat path under the same prefix.
        if let Some(i) = self.client_path.find("/v1/messages") {
            self.client_path = format!("{}/v1/chat/completions", &self.client_path[..i]);
        }
        let mut conv = match anthropic::request::to_openai(value, kind) {
            Ok(c) => c,
            Err(e) => return self.local_reply(&e),
        };
        let value = std::mem::take(&mut conv.body);
        let value = match self.accept_request(Api::ChatCompletions, value, token) {
            Ok(v) => v,
            Err(e) => return self.local_reply(&e),
        };
        self.front = Some(Box::new(anthropic::Front::converted(
            &conv,
            &self.req.model_sent,
        )));
        match cfg.imp.auth_callout(&cfg.provider) {
            Ok(Some(c)) => {
                self.pending_body = Some(value);
                self.awaiting_auth = true;
                self.stage = Stage::AwaitingCallout;
                RequestAction::Callout(c)
            }
            Ok(None) => self.after_auth(value),
            Err(e) => self.local_reply(&e),
        }
    }

    /// Provider `claude`: the client's Messages request goes to Anthropic as it is, with the
    /// configured key and version and the model mapped; the reply passes through untouched.
    fn anthropic_native(
        &mut self,
        endpoint: anthropic::Endpoint,
        path: &str,
        mut value: Value,
        token: &str,
    ) -> Result<UpstreamRequest, ProxyError> {
        let cfg = Arc::clone(&self.config);
        let obj = crate::openai::request::body_object(&mut value)?;
        let requested = match obj.get("model") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(ProxyError::bad_request("'model' must be a string").with_param("model"))
            }
        };
        let sent = cfg.provider.model_mapping.map(&requested).to_string();
        if sent.is_empty() {
            return Err(ProxyError::bad_request("'model' is required").with_param("model"));
        }
        let stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(false);
        // Only a mapped model needs a new body; otherwise the client's bytes go as they are.
        let body = if sent != requested {
            obj.insert("model".into(), sent.clone().into());
            Some(serde_json::to_vec(&value).expect("serialising a JSON value cannot fail"))
        } else {
            None
        };
        // Anthropic's own path, whatever prefix the gateway route had; the query is kept.
        let query = path.split_once('?').map(|(_, q)| q);
        let native_path = match (endpoint, query) {
            (anthropic::Endpoint::Messages, None) => "/v1/messages".to_string(),
            (anthropic::Endpoint::CountTokens, None) => "/v1/messages/count_tokens".to_string(),
            (anthropic::Endpoint::Messages, Some(q)) => format!("/v1/messages?{q}"),
            (anthropic::Endpoint::CountTokens, Some(q)) => {
                format!("/v1/messages/count_tokens?{q}")
            }
        };
        let mut up = cfg
            .imp
            .passthrough_target(&cfg.provider, token, &native_path)?;
        cfg.imp
            .finalize(&cfg.provider, &mut up, body.as_deref().unwrap_or_default())?;
        self.req = RequestState {
            api: None,
            translated: false,
            stream,
            include_usage: false,
            embeddings_base64: false,
            model_requested: requested,
            model_sent: sent,
            token: token.to_string(),
        };
        self.front = Some(Box::new(anthropic::Front::native(cfg.max_response_bytes)));
        let mut remove_headers = vec!["authorization", "x-api-key", "anthropic-version"];
        // We read usage from the reply, so it must come uncompressed.
        remove_headers.push("accept-encoding");
        if body.is_some() {
            remove_headers.push("content-length");
        }
        Ok(UpstreamRequest {
            authority: up.authority,
            path: up.path,
            remove_headers,
            set_headers: up.headers,
            body,
        })
    }

    fn passthrough(&mut self, path: &str, body: &[u8], token: &str) -> RequestAction {
        let cfg = Arc::clone(&self.config);
        let result = cfg
            .imp
            .passthrough_target(&cfg.provider, token, path)
            .and_then(|mut up| {
                route(&cfg.provider, None, &mut up, &self.client_authority);
                cfg.imp.finalize(&cfg.provider, &mut up, body)?;
                Ok(up)
            });
        match result {
            Ok(up) => {
                self.stage = Stage::Forwarded;
                RequestAction::Forward(UpstreamRequest {
                    authority: up.authority,
                    path: up.path,
                    remove_headers: vec!["authorization"],
                    set_headers: up.headers,
                    body: None,
                })
            }
            Err(e) => self.local_reply(&e),
        }
    }

    fn parse_request(
        &mut self,
        api: Api,
        headers: &[(&str, &str)],
        body: &[u8],
        token: &str,
    ) -> Result<Value, ProxyError> {
        self.check_body(headers, body)?;
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ProxyError::bad_request(format!("request body is not valid JSON: {e}")))?;
        self.accept_request(api, value, token)
    }

    /// Size and encoding limits of a client body we are to read.
    fn check_body(&self, headers: &[(&str, &str)], body: &[u8]) -> Result<(), ProxyError> {
        if body.len() > self.config.max_request_bytes {
            return Err(ProxyError::new(
                413,
                "invalid_request_error",
                format!(
                    "request body exceeds {} bytes",
                    self.config.max_request_bytes
                ),
            )
            .with_code("request_too_large"));
        }
        if let Some(enc) =
            header(headers, "content-encoding").filter(|e| !e.eq_ignore_ascii_case("identity"))
        {
            return Err(ProxyError::new(
                415,
                "invalid_request_error",
                format!("request content-encoding '{enc}' is not supported"),
            ));
        }
        Ok(())
    }

    /// Checks a parsed OpenAI request and records what the response side needs.
    fn accept_request(&mut self, api: Api, value: Value, token: &str) -> Result<Value, ProxyError> {
        let obj = value
            .as_object()
            .ok_or_else(crate::openai::request::not_an_object)?;
        let requested = match obj.get("model") {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => {
                return Err(ProxyError::bad_request("'model' must be a string").with_param("model"))
            }
        };
        let sent = self.config.provider.model_mapping.map(requested);
        if sent.is_empty() {
            return Err(ProxyError::bad_request("'model' is required").with_param("model"));
        }
        match api {
            Api::ChatCompletions if !obj.get("messages").is_some_and(Value::is_array) => {
                return Err(
                    ProxyError::bad_request("'messages' must be an array").with_param("messages")
                );
            }
            Api::Embeddings
                if !obj
                    .get("input")
                    .is_some_and(|v| v.is_string() || v.is_array()) =>
            {
                return Err(
                    ProxyError::bad_request("'input' must be a string or an array")
                        .with_param("input"),
                );
            }
            _ => {}
        }
        let embeddings_base64 = match obj
            .get("encoding_format")
            .filter(|_| api == Api::Embeddings)
        {
            None | Some(Value::Null) => false,
            Some(Value::String(f)) if f == "float" => false,
            Some(Value::String(f)) if f == "base64" => true,
            Some(_) => {
                return Err(ProxyError::bad_request(
                    "'encoding_format' must be 'float' or 'base64'",
                )
                .with_param("encoding_format"))
            }
        };
        let stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(false);
        let include_usage = obj
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        self.req = RequestState::translated(
            api,
            stream && api == Api::ChatCompletions,
            include_usage,
            embeddings_base64,
            requested,
            sent,
            token,
        );
        Ok(value)
    }

    /// The request fast paths, tried before the full path: the OpenAI family's splice, or a
    /// translating provider's typed reading. `None` takes the full path, which stays the
    /// reference and gives every error. Neither runs with retries (a retry rebuilds the request
    /// from the parsed body), a callout or an auth callout (they hold the parsed body), or a body
    /// `check_body` refuses.
    fn fast_request(
        &mut self,
        api: Api,
        headers: &[(&str, &str)],
        body: &[u8],
        token: &str,
    ) -> Option<RequestAction> {
        let cfg = Arc::clone(&self.config);
        let pc = &cfg.provider;
        let splice = cfg.imp.request_splice(api);
        let typed = api == Api::ChatCompletions && cfg.imp.has_chat_fast() && chat_read::enabled();
        if (splice.is_none() && !typed)
            || pc.retry_on_failure.enabled
            || (api == Api::ChatCompletions
                && context::callout_for(pc, cfg.imp.as_ref(), token).is_some())
            || !matches!(cfg.imp.auth_callout(pc), Ok(None))
            || self.check_body(headers, body).is_err()
        {
            return None;
        }
        let action = match splice {
            Some(rules) => self.splice_request(&cfg, api, body, token, &rules)?,
            None => self.chat_fast_request(&cfg, body, token)?,
        };
        Some(self.finish_request(action))
    }

    /// The OpenAI family's fast path (`openai::body_scan::splice_request`): the client's body
    /// copied with the model mapped and customSettings added, without building a `Value`.
    fn splice_request(
        &mut self,
        cfg: &Config,
        api: Api,
        body: &[u8],
        token: &str,
        rules: &SpliceRules,
    ) -> Option<Result<UpstreamRequest, ProxyError>> {
        let pc = &cfg.provider;
        let settings = match api {
            Api::ChatCompletions => pc.custom_settings.as_slice(),
            Api::Embeddings => &[],
        };
        let spliced = body_scan::splice_request(body, api, &pc.model_mapping, settings, rules)?;
        self.req = RequestState::translated(
            api,
            spliced.stream,
            spliced.include_usage,
            spliced.embeddings_base64,
            spliced.requested,
            spliced.sent,
            token,
        );
        let target = {
            let info = self.request_info(cfg, api);
            cfg.imp
                .splice_target(&info)
                .map(|up| (up, cfg.imp.response_translator(&info)))
        };
        Some(target.and_then(|(up, translator)| {
            self.upstream_with_body(cfg, api, up, spliced.body, translator)
        }))
    }

    /// The translating providers' fast path (`openai::chat_read`, `Provider::chat_fast`): the
    /// client's chat request read typed and borrowed, the provider's body written from it.
    fn chat_fast_request(
        &mut self,
        cfg: &Config,
        body: &[u8],
        token: &str,
    ) -> Option<Result<UpstreamRequest, ProxyError>> {
        let pc = &cfg.provider;
        let chat = chat_read::read(body)?;
        chat.messages.as_ref()?;
        if chat.has_extras() && !cfg.imp.chat_fast_extras() {
            return None;
        }
        let requested = chat.model();
        let sent = pc.model_mapping.map(requested);
        if sent.is_empty() {
            return None;
        }
        let stream = chat.stream.unwrap_or(false);
        let include_usage = chat.include_usage();
        let api = Api::ChatCompletions;
        let info = RequestInfo {
            config: pc,
            api,
            model: sent,
            stream,
            include_usage,
            token,
            path: &self.client_path,
        };
        let (up, bytes) = cfg.imp.chat_fast(&info, &chat)?;
        let translator = cfg.imp.response_translator(&info);
        chat_read::taken();
        self.req =
            RequestState::translated(api, stream, include_usage, false, requested, sent, token);
        Some(self.upstream_with_body(cfg, api, up, bytes, translator))
    }

    fn request_info<'s>(&'s self, cfg: &'s Config, api: Api) -> RequestInfo<'s> {
        RequestInfo {
            config: &cfg.provider,
            api,
            model: &self.req.model_sent,
            stream: self.req.stream,
            include_usage: self.req.include_usage,
            token: &self.req.token,
            path: &self.client_path,
        }
    }

    fn build_upstream(&mut self, body: &mut Value) -> Result<UpstreamRequest, ProxyError> {
        let cfg = Arc::clone(&self.config);
        self.attempt.keep_body(&cfg, body);
        let api = self.req.api.expect("set by parse_request");
        let info = self.request_info(&cfg, api);
        if info.api == Api::Embeddings && !cfg.imp.native_embedding_encoding() {
            // The provider answers with floats; the writer encodes them as the client asked.
            if let Some(o) = body.as_object_mut() {
                o.remove("encoding_format");
            }
        }
        cfg.imp.check_api(info.api)?;
        let up = cfg.imp.translate_request(&info, body)?;
        // The settings table holds sampling parameters: they mean nothing to embeddings.
        if info.api == Api::ChatCompletions {
            custom_settings::apply(
                &cfg.provider.custom_settings,
                cfg.imp.settings_protocol(&info),
                body,
            );
        }
        let bytes = crate::json_write::to_vec(body);
        let translator = cfg.imp.response_translator_for(&info, body);
        self.upstream_with_body(&cfg, api, up, bytes, translator)
    }

    /// The upstream request for a translated body: routing, signing, and the response side set up.
    fn upstream_with_body(
        &mut self,
        cfg: &Config,
        api: Api,
        mut up: providers::Upstream,
        bytes: Vec<u8>,
        translator: Box<dyn ResponseTranslator>,
    ) -> Result<UpstreamRequest, ProxyError> {
        route(&cfg.provider, Some(api), &mut up, &self.client_authority);
        cfg.imp.finalize(&cfg.provider, &mut up, &bytes)?;
        self.translator = Some(translator);
        self.writer = OpenAiWriter::new(&self.req.model_sent, self.req.include_usage);
        self.writer
            .set_embeddings_base64(self.req.embeddings_base64);
        self.writer.set_reasoning_mode(cfg.provider.reasoning_mode);
        let mut set_headers = up.headers;
        if !set_headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            set_headers.push(("content-type".into(), "application/json".into()));
        }
        Ok(UpstreamRequest {
            authority: up.authority,
            path: up.path,
            // Upstream must answer uncompressed for us to translate; the host sets the new length.
            remove_headers: vec!["authorization", "content-length", "accept-encoding"],
            set_headers,
            body: Some(bytes),
        })
    }

    /// Step 2a, for hosts that retry (`retryOnFailure`): call with the upstream's status before
    /// [`Exchange::on_response_headers`]. `Some` is the request to send instead, with another
    /// token: apply it to the request that went upstream (like `Forward`), send it, and treat its
    /// answer as if it were the first (this method, then `on_response_headers`). `None`: go on
    /// with this response. Only translated requests are retried, and only before any response
    /// byte was handed to the core, so a stream is retried only before its first byte.
    pub fn retry_request(&mut self, status: u16) -> Option<UpstreamRequest> {
        if self.stage != Stage::Forwarded || !self.req.translated {
            return None;
        }
        let cfg = Arc::clone(&self.config);
        self.attempt.report(&cfg, status);
        let token = self.attempt.next(&cfg, status)?;
        self.req.token = token.to_string();
        let mut body = self.attempt.body.clone()?;
        match self.build_upstream(&mut body) {
            Ok(up) => Some(up),
            Err(_) => {
                // Cannot happen for a request that was built once; keep the first answer.
                self.attempt.retry_not_sent();
                None
            }
        }
    }

    /// The host could not send the request [`Exchange::retry_request`] returned; it goes on
    /// with the previous answer.
    pub fn retry_not_sent(&mut self) {
        self.attempt.retry_not_sent();
    }

    /// Retries handed out so far.
    pub fn retries(&self) -> u32 {
        self.attempt.retries
    }

    /// Step 2: the upstream's status and headers.
    pub fn on_response_headers(
        &mut self,
        status: u16,
        headers: &[(&str, &str)],
    ) -> Result<ResponseHeaders, StateError> {
        match self.stage {
            Stage::Forwarded => {}
            Stage::LocalReplied => {
                self.stage = Stage::ResponseHeaders;
                self.mode = ResponseMode::Passthrough;
                return Ok(ResponseHeaders {
                    mode: self.mode,
                    remove_headers: vec![],
                    set_headers: vec![],
                });
            }
            _ => {
                return Err(StateError(
                    "response headers arrived before the request was forwarded, or twice",
                ))
            }
        }
        self.attempt.report(&self.config, status);
        self.stage = Stage::ResponseHeaders;
        self.upstream_status = status;
        if let Some(front) = self.front.as_mut().filter(|f| f.is_native()) {
            let ctype = header(headers, "content-type").unwrap_or("");
            front.on_response_headers(
                status,
                ctype.to_ascii_lowercase().contains("text/event-stream"),
            );
            // Stream mode makes hosts hand every chunk to the core, which reads the usage and
            // returns each chunk unchanged.
            self.mode = if (200..300).contains(&status) {
                ResponseMode::Stream
            } else {
                ResponseMode::Passthrough
            };
            return Ok(ResponseHeaders {
                mode: self.mode,
                remove_headers: vec![],
                set_headers: vec![],
            });
        }
        if !self.req.translated || self.translator.is_none() {
            self.mode = ResponseMode::Passthrough;
            return Ok(ResponseHeaders {
                mode: self.mode,
                remove_headers: vec![],
                set_headers: vec![],
            });
        }
        if let Some(enc) =
            header(headers, "content-encoding").filter(|e| !e.eq_ignore_ascii_case("identity"))
        {
            self.undecodable = Some(enc.to_string());
        }
        // The content type decides the mode, explicitly: SSE streams, JSON buffers (translators
        // that answer a stream request from one JSON body turn it into SSE), and anything else
        // (an HTML error page with status 200, a missing type) cannot be a stream.
        let ctype = header(headers, "content-type").unwrap_or("");
        let lower = ctype.to_ascii_lowercase();
        // A translator with a binary framing of its own (AWS event-stream) streams too.
        let is_sse = lower.contains("text/event-stream")
            || (lower.contains("application/vnd.amazon.eventstream")
                && self.translator.as_ref().is_some_and(|t| t.raw_stream()));
        let is_json = lower.contains("json");
        let ok = (200..300).contains(&status) && self.undecodable.is_none();
        self.mode = if ok && is_sse {
            ResponseMode::Stream
        } else {
            ResponseMode::Buffer
        };
        if ok && self.req.stream && !is_sse && !is_json {
            let shown: String = ctype.chars().take(64).collect();
            self.rejected = Some(
                ProxyError::bad_upstream(format!(
                    "upstream answered a streaming request with content-type '{shown}', \
                     expected text/event-stream or JSON"
                ))
                .with_code("upstream_bad_content_type"),
            );
        }
        self.buffer_as_sse = self.mode == ResponseMode::Buffer
            && self.req.stream
            && ok
            && self.rejected.is_none()
            && self
                .translator
                .as_ref()
                .is_some_and(|t| t.buffered_as_stream());
        let ctype_out = match self.mode {
            ResponseMode::Stream => "text/event-stream",
            _ if self.buffer_as_sse => "text/event-stream",
            _ => "application/json",
        };
        if let Some(front) = self.front.as_mut() {
            front.on_response_headers(status, ctype_out == "text/event-stream");
        }
        // Stream mode through `sse` to a translator, with no front: a chunk that ends no line
        // only extends the parser's partial line (see `on_response_body`).
        let sse_stream = self.mode == ResponseMode::Stream
            && self.front.is_none()
            && self.translator.as_ref().is_some_and(|t| !t.raw_stream());
        self.sse.set_absorbing(sse_stream);
        let mut set_headers = vec![("content-type".to_string(), ctype_out.to_string())];
        if self.mode == ResponseMode::Stream {
            set_headers.push(("cache-control".into(), "no-cache".into()));
        }
        Ok(ResponseHeaders {
            mode: self.mode,
            remove_headers: vec!["content-length", "content-encoding"],
            set_headers,
        })
    }

    /// Step 3: each upstream body chunk as it arrives; `end_of_stream` on the last (possibly empty).
    /// Stream mode returns translated bytes for every chunk; Buffer mode returns nothing until the
    /// end, then the whole body and the status to send.
    #[inline]
    pub fn on_response_body(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<BodyOutput<'_>, StateError> {
        // A trickled stream's usual chunk completes no line: it is kept, nothing is emitted, and
        // none of the bookkeeping below has anything to do (the writer's output is not cleared:
        // nothing reads it before the next call that writes, which clears it first). The parser
        // absorbs only while this exchange streams through it to a translator, until the
        // response ends, so a chunk it declines with a line end needs no state check either.
        if !end_of_stream {
            match self.sse.absorb(chunk) {
                Absorb::Taken => {
                    return Ok(BodyOutput {
                        unchanged: false,
                        data: &[],
                        status: None,
                    })
                }
                Absorb::LineEnd(at) => return Ok(self.sse_lines(chunk, at)),
                Absorb::Declined => {}
            }
        }
        self.response_body(chunk, end_of_stream)
    }

    /// A chunk [`SseParser::absorb`] declined at a line end: fed from there to the translator.
    #[inline(never)]
    fn sse_lines(&mut self, chunk: &[u8], at: LineEnd) -> BodyOutput<'_> {
        debug_assert!(
            self.stage == Stage::ResponseHeaders
                && self.mode == ResponseMode::Stream
                && self.front.is_none()
                && self.translator.as_ref().is_some_and(|t| !t.raw_stream())
        );
        self.writer.clear();
        self.sse_chunk(chunk, Some(at), false);
        BodyOutput {
            unchanged: false,
            data: self.writer.output(),
            status: None,
        }
    }

    #[inline(never)]
    fn response_body(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<BodyOutput<'_>, StateError> {
        if self.stage != Stage::ResponseHeaders {
            return Err(StateError(if self.stage == Stage::Done {
                "the response already ended"
            } else {
                "response body arrived before response headers"
            }));
        }
        if end_of_stream {
            self.stage = Stage::Done;
            self.sse.set_absorbing(false);
        }
        self.writer.clear();
        let (unchanged, status) = match self.mode {
            ResponseMode::Passthrough => (true, None),
            // A native Anthropic reply: observed by the front below, never rewritten.
            ResponseMode::Stream if self.translator.is_none() => (true, None),
            ResponseMode::Stream => {
                self.stream_chunk(chunk, end_of_stream);
                (false, None)
            }
            ResponseMode::Buffer => {
                if self.rejected.is_some() {
                    // The reply is already decided; keep nothing.
                } else if self.buffered.len() + chunk.len() > self.config.max_response_bytes {
                    self.undecodable.get_or_insert_with(|| "oversized".into());
                } else {
                    self.buffered.extend_from_slice(chunk);
                }
                if end_of_stream {
                    (false, Some(self.finish_buffered()))
                } else {
                    (false, None)
                }
            }
        };
        Ok(self.front_output(chunk, end_of_stream, unchanged, status))
    }

    /// What the host sends: the writer's OpenAI output, or for the Anthropic front what it made
    /// of it (converted, or observed and left unchanged for claude).
    fn front_output(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
        unchanged: bool,
        status: Option<u16>,
    ) -> BodyOutput<'_> {
        if let Some(front) = self.front.as_mut() {
            let (converted, status) = front.on_output(
                chunk,
                end_of_stream,
                unchanged,
                self.writer.output(),
                status,
            );
            if converted {
                return BodyOutput {
                    unchanged: false,
                    data: front.output(),
                    status,
                };
            }
            return BodyOutput {
                unchanged,
                data: if unchanged { &[] } else { self.writer.output() },
                status,
            };
        }
        BodyOutput {
            unchanged,
            data: if unchanged { &[] } else { self.writer.output() },
            status,
        }
    }

    fn stream_chunk(&mut self, chunk: &[u8], end_of_stream: bool) {
        let translator = self
            .translator
            .as_mut()
            .expect("stream mode has a translator");
        if translator.raw_stream() {
            let mut result = Ok(());
            if !self.writer.is_closed() {
                result = translator.on_raw_chunk(chunk, &mut self.writer);
            }
            if result.is_ok() && end_of_stream && !self.writer.is_closed() {
                result = translator.on_stream_end(&mut self.writer);
            }
            match result {
                Err(e) => self.writer.error(&e),
                Ok(()) if end_of_stream => self.writer.end(),
                Ok(()) => {}
            }
            return;
        }
        self.sse_chunk(chunk, None, end_of_stream);
    }

    /// A stream chunk through the SSE parser to the translator; `at` when `absorb` found its
    /// first line end.
    #[inline]
    fn sse_chunk(&mut self, chunk: &[u8], at: Option<LineEnd>, end_of_stream: bool) {
        let translator = self
            .translator
            .as_mut()
            .expect("stream mode has a translator");
        self.writer.reserve(chunk.len());
        let w = &mut self.writer;
        let mut on_event = |ev: crate::sse::SseEvent<'_>| -> Result<(), Box<ProxyError>> {
            if w.is_closed() {
                Ok(())
            } else {
                translator.on_event(ev, w).map_err(Box::new)
            }
        };
        let mut result = match at {
            Some(at) => self.sse.feed_from(chunk, at, &mut on_event),
            None => self.sse.feed(chunk, &mut on_event),
        };
        if result.is_ok() && end_of_stream {
            result = self.sse.finish(&mut on_event);
            if result.is_ok() && !self.writer.is_closed() {
                result = translator.on_stream_end(&mut self.writer).map_err(Box::new);
            }
        }
        match result {
            // Malformed upstream stream: tell the client and end the stream cleanly.
            Err(e) => self.writer.error(&e),
            Ok(()) if end_of_stream => self.writer.end(),
            Ok(()) => {}
        }
    }

    /// The upstream connection failed (reset, timeout) before its body ended. Returns what ends
    /// the client's response properly, and ends the exchange: in Stream mode an OpenAI in-stream
    /// error event then `data: [DONE]` (unless the stream already ended); in Buffer mode, or
    /// before the response headers, a 502 with an OpenAI error body (an error event when the
    /// client expects SSE from a buffered upstream); otherwise nothing (`unchanged`). Safe to call
    /// twice.
    pub fn on_upstream_abort(&mut self) -> Result<BodyOutput<'_>, StateError> {
        if self.front.is_none() {
            return self.upstream_abort_openai();
        }
        let (unchanged, status) = {
            let out = self.upstream_abort_openai()?;
            (out.unchanged, out.status)
        };
        // Anthropic front: the end of the reply, converted like any other.
        Ok(self.front_output(&[], true, unchanged, status))
    }

    fn upstream_abort_openai(&mut self) -> Result<BodyOutput<'_>, StateError> {
        self.writer.clear();
        let unchanged = BodyOutput {
            unchanged: true,
            data: &[],
            status: None,
        };
        let translated = self.req.translated && self.translator.is_some();
        match self.stage {
            Stage::New | Stage::AwaitingCallout => {
                return Err(StateError("the request was not forwarded upstream"))
            }
            Stage::LocalReplied | Stage::Done => return Ok(unchanged),
            Stage::Forwarded | Stage::ResponseHeaders if !translated => {
                self.stage = Stage::Done;
                return Ok(unchanged);
            }
            Stage::Forwarded | Stage::ResponseHeaders => {}
        }
        let before_headers = self.stage == Stage::Forwarded;
        self.stage = Stage::Done;
        self.sse.set_absorbing(false);
        self.buffered = Vec::new();
        let err = ProxyError::bad_upstream(
            "the upstream connection ended before the response was complete",
        )
        .with_code("upstream_reset");
        if before_headers {
            self.writer.json(&err.to_json());
            return Ok(BodyOutput {
                unchanged: false,
                data: self.writer.output(),
                status: Some(err.status),
            });
        }
        match self.mode {
            ResponseMode::Passthrough => Ok(unchanged),
            ResponseMode::Stream => {
                // Nothing is added after a stream that already ended or failed.
                self.writer.error(&err);
                Ok(BodyOutput {
                    unchanged: false,
                    data: self.writer.output(),
                    status: None,
                })
            }
            ResponseMode::Buffer if self.buffer_as_sse => {
                self.writer.error(&err);
                Ok(BodyOutput {
                    unchanged: false,
                    data: self.writer.output(),
                    status: Some(self.upstream_status),
                })
            }
            ResponseMode::Buffer => {
                self.writer.json(&err.to_json());
                Ok(BodyOutput {
                    unchanged: false,
                    data: self.writer.output(),
                    status: Some(err.status),
                })
            }
        }
    }

    fn finish_buffered(&mut self) -> u16 {
        let body = std::mem::take(&mut self.buffered);
        let translator = self
            .translator
            .as_mut()
            .expect("buffer mode has a translator");
        let status = self.upstream_status;
        let result = if let Some(e) = &self.rejected {
            Err(e.clone())
        } else if let Some(enc) = &self.undecodable {
            Err(if enc == "oversized" {
                ProxyError::bad_upstream(format!(
                    "upstream body exceeds {} bytes",
                    self.config.max_response_bytes
                ))
            } else {
                ProxyError::bad_upstream(format!(
                    "upstream content-encoding '{enc}' cannot be translated"
                ))
            })
        } else if (200..300).contains(&status) {
            translator.on_body(&body, &mut self.writer)
        } else {
            Err(translator.on_error(status, &body))
        };
        match result {
            Ok(()) => status,
            Err(e) if self.buffer_as_sse => {
                // The client already expects an event stream: report the error inside it.
                self.writer.clear();
                self.writer.error(&e);
                status
            }
            Err(e) => {
                self.writer.clear();
                self.writer.json(&e.to_json());
                // Only a 4xx/5xx reads as a failure to clients: an upstream 1xx/3xx (the host
                // follows no redirect) or out-of-range status is a bad gateway (fuzz finding).
                if (400..=599).contains(&e.status) {
                    e.status
                } else {
                    502
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "exchange_tests.rs"]
mod tests;

#[cfg(test)]
mod response_side_tests {
    //! The response side owned here: the content type decides the mode, and an upstream abort
    //! ends the client's response properly in every mode.
    use super::*;
    use crate::testutil::{self, validate_error, validate_sse_stream};

    const CFG: &str = r#"{"provider": {"type": "openai", "apiTokens": ["sk-test"]}}"#;
    const CLAUDE: &str = r#"{"provider": {"type": "claude", "apiTokens": ["sk-ant"]}}"#;
    const STREAM: &str =
        r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    const PLAIN: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    const CHUNK: &[u8] = b"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n";

    fn ex(cfg: &str, body: &str) -> Exchange {
        testutil::forward(&testutil::config(cfg), "/v1/chat/completions", body).0
    }

    fn error_of(body: &[u8]) -> Value {
        let v: Value = serde_json::from_slice(body).expect("error body is JSON");
        validate_error(&v);
        v
    }

    #[test]
    fn html_with_200_on_a_stream_request_is_a_502() {
        for ctype in ["text/html; charset=utf-8", "", "text/plain"] {
            let mut x = ex(CFG, STREAM);
            let (status, out, mode) =
                testutil::respond(&mut x, 200, ctype, b"<html><body>gateway</body></html>");
            assert_eq!(mode, ResponseMode::Buffer, "{ctype}");
            assert_eq!(status, 502, "{ctype}");
            let v = error_of(&out);
            assert_eq!(v["error"]["code"], "upstream_bad_content_type");
            assert!(crate::testutil::error_message(&v).contains("content-type"));
        }
    }

    #[test]
    fn content_type_decides_the_mode() {
        let mut x = ex(CFG, STREAM);
        let rh = x
            .on_response_headers(200, &[("content-type", "text/event-stream; charset=utf-8")])
            .unwrap();
        assert_eq!(rh.mode, ResponseMode::Stream);
        let mut x = ex(CFG, STREAM);
        let rh = x
            .on_response_headers(200, &[("content-type", "application/json")])
            .unwrap();
        assert_eq!(rh.mode, ResponseMode::Buffer);
        // A non-stream request with SSE, and any error status, are handled as before.
        let mut x = ex(CFG, PLAIN);
        let rh = x
            .on_response_headers(503, &[("content-type", "text/html")])
            .unwrap();
        assert_eq!(rh.mode, ResponseMode::Buffer);
        let out = x.on_response_body(b"<html>busy</html>", true).unwrap();
        assert_eq!(out.status, Some(503));
        error_of(out.data);
    }

    #[test]
    fn abort_mid_stream_ends_with_an_error_event_then_done() {
        let mut x = ex(CFG, STREAM);
        x.on_response_headers(200, &[("content-type", "text/event-stream")])
            .unwrap();
        let mut client = x.on_response_body(CHUNK, false).unwrap().data.to_vec();
        let out = x.on_upstream_abort().unwrap();
        assert!(!out.unchanged && out.status.is_none());
        client.extend_from_slice(out.data);
        let events = validate_sse_stream(&client);
        let last = events.last().unwrap();
        assert_eq!(last["error"]["code"], "upstream_reset");
        // Twice is safe and adds nothing; the exchange is over.
        let again = x.on_upstream_abort().unwrap();
        assert!(again.unchanged && again.data.is_empty());
        assert!(x.on_response_body(b"", true).is_err());
    }

    #[test]
    fn abort_after_done_adds_nothing() {
        let mut x = ex(CFG, STREAM);
        x.on_response_headers(200, &[("content-type", "text/event-stream")])
            .unwrap();
        let mut body = CHUNK.to_vec();
        body.extend_from_slice(b"data: [DONE]\n\n");
        let mut client = x.on_response_body(&body, false).unwrap().data.to_vec();
        let out = x.on_upstream_abort().unwrap();
        client.extend_from_slice(out.data);
        validate_sse_stream(&client);
    }

    #[test]
    fn abort_before_headers_or_in_buffer_mode_is_a_502() {
        let mut x = ex(CFG, PLAIN);
        let out = x.on_upstream_abort().unwrap();
        assert_eq!(out.status, Some(502));
        assert_eq!(error_of(out.data)["error"]["code"], "upstream_reset");

        let mut x = ex(CFG, PLAIN);
        x.on_response_headers(200, &[("content-type", "application/json")])
            .unwrap();
        x.on_response_body(b"{\"id\":", false).unwrap();
        let out = x.on_upstream_abort().unwrap();
        assert_eq!(out.status, Some(502));
        error_of(out.data);
        // Translating provider, streamed: same shape.
        let mut x = ex(CLAUDE, STREAM);
        x.on_response_headers(200, &[("content-type", "text/event-stream")])
            .unwrap();
        let out = x.on_upstream_abort().unwrap();
        let events = validate_sse_stream(out.data);
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn abort_out_of_order_or_untranslated() {
        let cfg = testutil::config(CFG);
        let mut x = Exchange::new(Arc::clone(&cfg));
        assert!(x.on_upstream_abort().is_err());
        // An untranslated (passthrough) request: nothing to add.
        let mut x = Exchange::new(cfg);
        x.on_request("GET", "/v1/models", &[], b"").unwrap();
        assert!(x.on_upstream_abort().unwrap().unchanged);
    }
}

#[cfg(test)]
mod held_tests {
    use super::*;

    /// Issue 13: a live stream holds at most 4 KB beyond its pending partial event, whatever the
    /// slicing, for a stream with one event larger than that.
    #[test]
    fn live_stream_holds_at_most_4kb_beyond_its_pending_event() {
        let cfg = Config::from_json(br#"{"provider": {"type": "openai", "apiTokens": ["sk-t"]}}"#)
            .unwrap();
        let body = br#"{"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}"#;
        let mut stream = String::new();
        for i in 0..300 {
            let text = if i == 150 {
                "y".repeat(20_000)
            } else {
                format!("tok{i} ")
            };
            stream.push_str(&format!(
                "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":null}}]}}\n\n"
            ));
        }
        stream.push_str("data: [DONE]\n\n");
        for slice in [1, 7, 64, 4096, stream.len()] {
            let mut ex = Exchange::new(Arc::clone(&cfg));
            assert!(matches!(
                ex.on_request("POST", "/v1/chat/completions", &[], body)
                    .unwrap(),
                RequestAction::Forward(_)
            ));
            ex.on_response_headers(200, &[("content-type", "text/event-stream")])
                .unwrap();
            let mut worst = 0;
            let mut out_len = 0;
            for chunk in stream.as_bytes().chunks(slice) {
                out_len += ex.on_response_body(chunk, false).unwrap().data.len();
                worst = worst.max(ex.held_bytes().1);
            }
            out_len += ex.on_response_body(&[], true).unwrap().data.len();
            assert!(
                out_len > stream.len() / 2,
                "slice {slice}: output {out_len}"
            );
            assert!(
                worst <= 4096,
                "slice {slice}: held {worst} bytes beyond the pending event"
            );
            assert_eq!(ex.held_bytes().0, 0);
        }
    }
}
