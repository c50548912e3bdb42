//! vertex: Gemini and Claude on Google Cloud Vertex AI.
//!
//! Facts used (Vertex AI docs: "Generative AI on Vertex AI" REST reference, "Vertex AI express
//! mode", "Use Anthropic's Claude models" (rawPredict / streamRawPredict); Higress ai-proxy
//! README for the config field names):
//! - Service-account mode (`vertexAuthKey`, `vertexRegion`, `vertexProjectId`,
//!   `vertexAuthServiceName`): `https://{region}-aiplatform.googleapis.com/v1/projects/{project}/
//!   locations/{region}/publishers/google/models/{model}:generateContent` (stream:
//!   `:streamGenerateContent?alt=sse`) with `Authorization: Bearer <access token>` (see `auth`);
//!   the `global` region's host is `aiplatform.googleapis.com`. The body and the answers are
//!   Gemini's `GenerateContentRequest` / `GenerateContentResponse`.
//! - Claude models: `.../publishers/anthropic/models/{model}:rawPredict` (stream:
//!   `:streamRawPredict`) with Anthropic's Messages body, no `model` field, and
//!   `"anthropic_version": "vertex-2023-10-16"`; answers are Anthropic's.
//! - Express mode (`apiTokens`: an API key): `https://aiplatform.googleapis.com/v1/publishers/
//!   google/models/{model}:generateContent`, key in `x-goog-api-key`; Gemini models only.
//! - `geminiSafetySetting` (the field Higress's vertex reads; `vertexGeminiSafetySetting`, the
//!   name in Higress's English README, is taken too) (category → threshold) → `safetySettings`;
//!   `vertexTokenRefreshAhead`: seconds before expiry at which a new token is fetched.

mod auth;
#[cfg(test)]
pub(crate) mod tests;

use super::{claude, gemini};
use super::{Api, Auth, Profile, Provider, ProviderType};
use super::{RequestInfo, ResponseTranslator, Upstream};
use crate::config::ProviderConfig;
use crate::context::Callout;
use crate::custom_settings::SettingsProtocol;
use crate::error::{ConfigError, ProxyError};
use crate::openai;
use auth::{ServiceAccount, TokenCache};
use serde_json::Value;
use std::borrow::Cow;

const NAME: &str = "vertex";
const EXPRESS_HOST: &str = "aiplatform.googleapis.com";
pub const CLAUDE_VERSION: &str = "vertex-2023-10-16";
/// Default `vertexTokenRefreshAhead`: fetch a new token this many seconds before expiry.
const DEFAULT_REFRESH_AHEAD: u64 = 300;

struct ServiceMode {
    account: ServiceAccount,
    region: String,
    project: String,
    /// `vertexAuthServiceName`: the host-side service the token callout goes to.
    auth_service: String,
    refresh_ahead: u64,
    tokens: TokenCache,
}

enum Mode {
    Express,
    Service(Box<ServiceMode>),
}

pub fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    let f = config.fields();
    // Higress's vertex provider reads `geminiSafetySetting` (its code and Chinese README); its
    // English README calls the field `vertexGeminiSafetySetting`. Either is taken; not both.
    let safety = match (
        f.str_map("geminiSafetySetting")?,
        f.str_map("vertexGeminiSafetySetting")?,
    ) {
        (a, b) if !a.is_empty() && !b.is_empty() => {
            return Err(ConfigError::invalid(
                f.at("vertexGeminiSafetySetting"),
                "set geminiSafetySetting or vertexGeminiSafetySetting, not both",
            ))
        }
        (a, b) if a.is_empty() => b,
        (a, _) => a,
    };
    if f.bool("vertexOpenAICompatible")? == Some(true) {
        return Err(ConfigError::invalid(
            f.at("vertexOpenAICompatible"),
            "Vertex's OpenAI-compatible endpoint is not supported by this version; leave it \
             unset to use the Gemini API on Vertex",
        ));
    }
    let plain = |key: &str, v: &str| -> Result<String, ConfigError> {
        // Region and project become part of the host and path.
        if v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            Ok(v.to_string())
        } else {
            Err(ConfigError::invalid(
                f.at(key),
                "may hold only lowercase letters, digits and '-'",
            ))
        }
    };
    let mode = match f.nonempty_str("vertexAuthKey")? {
        Some(key) => {
            let why = "for provider type 'vertex' with vertexAuthKey";
            let region = f.require("vertexRegion", f.nonempty_str("vertexRegion")?, why)?;
            let project = f.require("vertexProjectId", f.nonempty_str("vertexProjectId")?, why)?;
            let service = f.require(
                "vertexAuthServiceName",
                f.nonempty_str("vertexAuthServiceName")?,
                why,
            )?;
            Mode::Service(Box::new(ServiceMode {
                account: ServiceAccount::parse(key, &f.at("vertexAuthKey"))?,
                region: plain("vertexRegion", region)?,
                project: plain("vertexProjectId", project)?,
                auth_service: service.to_string(),
                refresh_ahead: f
                    .u64("vertexTokenRefreshAhead")?
                    .unwrap_or(DEFAULT_REFRESH_AHEAD),
                tokens: TokenCache::default(),
            }))
        }
        None => {
            if config.api_tokens.iter().all(|t| t.expose().is_empty()) {
                return Err(ConfigError::invalid(
                    "provider.vertexAuthKey",
                    "required for provider type 'vertex': vertexAuthKey (a service account key) \
                     or apiTokens (an express-mode API key)",
                ));
            }
            Mode::Express
        }
    };
    Ok(Box::new(Vertex { mode, safety }))
}

struct Vertex {
    mode: Mode,
    safety: Vec<(String, String)>,
}

fn is_claude(model: &str) -> bool {
    model.starts_with("claude")
}

/// The model becomes part of the path: plain ids only (Claude's carry `@version`).
fn check_model(model: &str) -> Result<&str, ProxyError> {
    let m = model.strip_prefix("models/").unwrap_or(model);
    super::plain_model_id(m, model, b"@", "Vertex")?;
    Ok(m)
}

impl ServiceMode {
    fn host(&self) -> Cow<'_, str> {
        if self.region == "global" {
            Cow::Borrowed(EXPRESS_HOST)
        } else {
            Cow::Owned(format!("{}-aiplatform.googleapis.com", self.region))
        }
    }

    fn bearer(&self, up: Upstream) -> Result<Upstream, ProxyError> {
        // The exchange fetched a token just before if none was cached (`auth_callout`).
        let token = self.tokens.get(openai::now_secs(), 0).ok_or_else(|| {
            ProxyError::new(
                503,
                "api_error",
                "no Vertex access token is available; retry the request",
            )
            .with_code("vertex_token_unavailable")
        })?;
        Ok(up.bearer(&token))
    }
}

const PROFILE: Profile = Profile {
    kind: ProviderType::Vertex,
    settings: SettingsProtocol::Gemini,
    host: EXPRESS_HOST,
    auth: Auth::Header("x-goog-api-key"),
    unsupported: &[(Api::Embeddings, "the embeddings API")],
};

impl Provider for Vertex {
    fn profile(&self) -> Profile {
        PROFILE
    }

    fn settings_protocol(&self, req: &RequestInfo<'_>) -> SettingsProtocol {
        if is_claude(req.model) {
            SettingsProtocol::Claude
        } else {
            SettingsProtocol::Gemini
        }
    }

    fn host(&self, _token: &str) -> Cow<'_, str> {
        match &self.mode {
            Mode::Express => Cow::Borrowed(EXPRESS_HOST),
            Mode::Service(s) => s.host(),
        }
    }

    /// Express mode: the API key. Service-account mode: the cached OAuth access token.
    fn authorize(&self, up: Upstream, token: &str) -> Result<Upstream, ProxyError> {
        match &self.mode {
            Mode::Express => Ok(PROFILE.auth.apply(up, token)),
            Mode::Service(s) => s.bearer(up),
        }
    }

    fn translate_request(
        &self,
        req: &RequestInfo<'_>,
        body: &mut Value,
    ) -> Result<Upstream, ProxyError> {
        let (model, family, path) = self.route(req)?;
        match family {
            Family::Claude => claude::vertex_chat_body(req, body, CLAUDE_VERSION)?,
            Family::Gemini => gemini::chat_body(model, body, &self.safety)?,
        }
        self.authorize(Upstream::new(self.host(req.token), path), req.token)
    }

    /// The gemini and claude providers' typed builders, with Vertex's edits (see
    /// `claude::vertex_fast_chat`); `None` leaves the request to `translate_request`.
    fn chat_fast(
        &self,
        req: &RequestInfo<'_>,
        chat: &openai::chat_read::ChatRequest<'_>,
    ) -> Option<(Upstream, Vec<u8>)> {
        if req.api != Api::ChatCompletions {
            return None;
        }
        let (model, family, path) = self.route(req).ok()?;
        let body = match family {
            // `settings_protocol` and `response_translator` read the unstripped model: a
            // `models/claude-…` body would take Gemini's customSettings, so it stays on the
            // `Value` path.
            Family::Claude if !is_claude(req.model) => return None,
            Family::Claude => claude::vertex_fast_chat(req, chat, CLAUDE_VERSION)?,
            Family::Gemini => {
                gemini::fast_chat_body(model, chat, &self.safety, &req.config.custom_settings)?
            }
        };
        let up = Upstream::new(self.host(req.token), path);
        Some((self.authorize(up, req.token).ok()?, body))
    }

    fn has_chat_fast(&self) -> bool {
        true
    }

    fn auth_callout(&self, config: &ProviderConfig) -> Result<Option<Callout>, ProxyError> {
        let Mode::Service(s) = &self.mode else {
            return Ok(None);
        };
        let now = openai::now_secs();
        if s.tokens.get(now, s.refresh_ahead).is_some() {
            return Ok(None);
        }
        Ok(Some(auth::token_callout(
            &s.account,
            &s.auth_service,
            now,
            config.timeout_ms,
        )))
    }

    fn on_auth_response(&self, status: u16, body: &[u8]) -> Result<(), ProxyError> {
        let Mode::Service(s) = &self.mode else {
            return Ok(());
        };
        let (token, ttl) = auth::read_token_reply(status, body)?;
        s.tokens.put(token, openai::now_secs().saturating_add(ttl));
        Ok(())
    }

    fn response_translator(&self, req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        if is_claude(req.model) && matches!(self.mode, Mode::Service(_)) {
            claude::translator()
        } else {
            gemini::translator(req.api)
        }
    }
}

/// Which body a model takes on Vertex.
enum Family {
    Gemini,
    Claude,
}

impl Vertex {
    /// The model as it goes in the path, its family and the upstream path; the errors
    /// `translate_request` gives before touching the body.
    fn route<'r>(&self, req: &RequestInfo<'r>) -> Result<(&'r str, Family, String), ProxyError> {
        let model = check_model(req.model)?;
        let claude = is_claude(model);
        let path = match &self.mode {
            Mode::Express => {
                if claude {
                    return Err(ProxyError::unsupported(
                        "Claude models in express mode (configure vertexAuthKey)",
                        NAME,
                    )
                    .with_param("model"));
                }
                format!(
                    "/v1/publishers/google/models/{model}:{}",
                    gemini_method(req)
                )
            }
            Mode::Service(s) => {
                let base = format!(
                    "/v1/projects/{}/locations/{}/publishers",
                    s.project, s.region
                );
                if claude {
                    let method = if req.stream {
                        "streamRawPredict"
                    } else {
                        "rawPredict"
                    };
                    format!("{base}/anthropic/models/{model}:{method}")
                } else {
                    format!("{base}/google/models/{model}:{}", gemini_method(req))
                }
            }
        };
        let family = if claude {
            Family::Claude
        } else {
            Family::Gemini
        };
        Ok((model, family, path))
    }
}

fn gemini_method(req: &RequestInfo<'_>) -> &'static str {
    if req.stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    }
}
