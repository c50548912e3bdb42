//! The OpenAI-protocol family: one table row per provider (host, paths, auth), one implementation.
//!
//! Facts used for the rows (looked up in each provider's public API docs):
//! - openai: `api.openai.com`, `/v1/chat/completions`, `/v1/embeddings`, `Authorization: Bearer`.
//! - azure: host and deployment path from `azureServiceUrl` (`/openai/deployments/{dep}/chat/completions`
//!   with a required `api-version` query); embeddings at `/openai/deployments/{dep}/embeddings`;
//!   header `api-key`.
//! - moonshot: `api.moonshot.cn/v1/chat/completions`, Bearer; no embeddings API. Stream usage can
//!   arrive in `choices[0].usage` (lifted by `openai::find_usage`).
//! - baichuan: `api.baichuan-ai.com/v1/chat/completions` and `/v1/embeddings`, Bearer.
//! - yi (01.AI): `api.lingyiwanwu.com/v1/chat/completions`, Bearer; no embeddings API.
//! - zhipuai: `open.bigmodel.cn/api/paas/v4/chat/completions` and `/api/paas/v4/embeddings`, Bearer
//!   with the API key. Stream chunks have no `object` (added by normalisation).
//! - deepseek: `api.deepseek.com/chat/completions` (the `/v1` prefix is optional), Bearer; no embeddings.
//! - groq: `api.groq.com/openai/v1/chat/completions`, Bearer; no embeddings. Usage may be in `x_groq.usage`.
//! - mistral: `api.mistral.ai/v1/chat/completions` and `/v1/embeddings`, Bearer. Rejects
//!   `stream_options` with 422, so it is stripped; its errors are unwrapped `{"object":"error",...}`.
//! - stepfun: `api.stepfun.com/v1/chat/completions`, Bearer; no embeddings.
//! - ai360: `api.360.cn/v1/chat/completions` and `/v1/embeddings`, `Authorization: Bearer`.
//! - ollama: `{ollamaServerHost}:{ollamaServerPort}` (default 11434), OpenAI-compatible
//!   `/v1/chat/completions` and `/v1/embeddings`, no auth.
//! - cloudflare: `api.cloudflare.com/client/v4/accounts/{cloudflareAccountId}/ai/v1/chat/completions`
//!   and `.../ai/v1/embeddings`, Bearer; errors in Cloudflare's `{"errors":[...]}` envelope.
//! - spark: `spark-api-open.xf-yun.com/v1/chat/completions`, `Authorization: Bearer APIKey:APISecret`;
//!   responses lack `object`/`model`/`finish_reason` (added); business errors as `code != 0`.
//! - baidu: Qianfan v2 `qianfan.baidubce.com/v2/chat/completions` and `/v2/embeddings`, Bearer.
//! - minimax: `api.minimax.chat/v1/text/chatcompletion_v2`, Bearer; errors may come as HTTP 200
//!   with `base_resp.status_code != 0`. (ChatCompletion Pro models are handled in `minimax.rs`.)
//!
//! Rows added for today's Higress types (issue 14; docs first, Higress's plugin for field names):
//! - github (GitHub Models docs): `models.github.ai/inference/chat/completions` and
//!   `/inference/embeddings`, Bearer with a GitHub token. (Higress still targets the retired
//!   `models.inference.ai.azure.com`; `providerDomain`/`capabilities` reach it if needed.)
//! - grok (xAI docs): `api.x.ai/v1/chat/completions`, Bearer; no embeddings.
//! - together-ai (Together docs): `api.together.xyz/v1/chat/completions` and `/v1/embeddings`, Bearer.
//! - openrouter (OpenRouter docs): `openrouter.ai/api/v1/chat/completions`, Bearer. Higress maps a
//!   client's `reasoning_max_tokens` to OpenRouter's `reasoning.max_tokens` (done here too).
//! - fireworks (Fireworks docs, base URL `https://api.fireworks.ai/inference/v1`):
//!   `/inference/v1/chat/completions` and `/inference/v1/embeddings`, Bearer.
//! - longcat (LongCat API docs): `api.longcat.chat/openai/v1/chat/completions`, Bearer; no
//!   embeddings documented.
//! - doubao (Volcengine Ark docs): `ark.cn-beijing.volces.com/api/v3/chat/completions` and
//!   `/api/v3/embeddings`, Bearer; `doubaoDomain` replaces the host.
//! - vllm (vLLM OpenAI-compatible server): `vllmCustomUrl` (host and base path; a path ending in
//!   `/completions` is used as is for every request), else `vllmServerHost` (default
//!   `vllm-service.cluster.local`) with `/v1/chat/completions`, `/v1/embeddings`; Bearer only when
//!   `apiTokens` are set.
//! - generic (Higress's vendor-agnostic type): the client's path is kept, the host is
//!   `genericHost` (else the client's), Bearer only when `apiTokens` are set.

pub use super::Auth;
use super::{Api, Profile, Provider, ProviderType, RequestInfo, ResponseTranslator, Upstream};
use crate::config::{Fields, ProviderConfig, SplitUrl};
use crate::context::Callout;
use crate::custom_settings::SettingsProtocol;
use crate::error::ConfigError;
use crate::error::ProxyError;
use crate::openai::body_scan::{self, SpliceRules};
use crate::openai::request::body_object;
use crate::openai::writer::{apply_reasoning_mode, ReasoningMode};
use crate::openai::{self, OpenAiWriter};
use crate::sse::SseEvent;
use crate::usage::Usage;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Where a row's host comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    Fixed(&'static str),
    /// `openaiCustomUrl` when set, else the fixed host.
    OpenAiOrCustom(&'static str),
    /// From `azureServiceUrl`.
    Azure,
    /// `ollamaServerHost:ollamaServerPort`.
    Ollama,
    /// `doubaoDomain` when set, else the fixed host.
    Doubao(&'static str),
    /// `vllmCustomUrl`'s host, else `vllmServerHost`, else the fixed default.
    Vllm(&'static str),
    /// `genericHost`, else the client's own host (empty authority: the core keeps the client's).
    Generic,
}

#[derive(Debug, Clone, Copy)]
pub struct CompatRow {
    pub kind: ProviderType,
    pub host: Host,
    /// `{account}` is replaced by `cloudflareAccountId`.
    pub chat_path: &'static str,
    pub embeddings_path: Option<&'static str>,
    pub auth: Auth,
    pub settings: SettingsProtocol,
    /// The provider rejects `stream_options` (Mistral answers 422).
    pub strip_stream_options: bool,
    /// The client's path is forwarded unchanged (generic).
    pub keep_client_path: bool,
    /// The provider has JSON mode but no JSON-schema structured output (DeepSeek's "JSON
    /// Output" takes only `json_object`): `json_schema` is a 400 here, not an upstream error.
    pub json_object_only: bool,
}

const fn entry(
    kind: ProviderType,
    host: Host,
    chat_path: &'static str,
    embeddings_path: Option<&'static str>,
    auth: Auth,
) -> CompatRow {
    CompatRow {
        kind,
        host,
        chat_path,
        embeddings_path,
        auth,
        settings: SettingsProtocol::OpenAi,
        strip_stream_options: false,
        keep_client_path: false,
        json_object_only: false,
    }
}

use ProviderType as T;

/// The table. Azure's and openaiCustomUrl's paths come from the configuration.
pub const TABLE: &[CompatRow] = &[
    entry(
        T::OpenAi,
        Host::OpenAiOrCustom("api.openai.com"),
        "/v1/chat/completions",
        Some("/v1/embeddings"),
        Auth::Bearer,
    ),
    entry(T::Azure, Host::Azure, "", Some(""), Auth::Header("api-key")),
    entry(
        T::Moonshot,
        Host::Fixed("api.moonshot.cn"),
        "/v1/chat/completions",
        None,
        Auth::Bearer,
    ),
    entry(
        T::Baichuan,
        Host::Fixed("api.baichuan-ai.com"),
        "/v1/chat/completions",
        Some("/v1/embeddings"),
        Auth::Bearer,
    ),
    entry(
        T::Yi,
        Host::Fixed("api.lingyiwanwu.com"),
        "/v1/chat/completions",
        None,
        Auth::Bearer,
    ),
    entry(
        T::Zhipuai,
        Host::Fixed("open.bigmodel.cn"),
        "/api/paas/v4/chat/completions",
        Some("/api/paas/v4/embeddings"),
        Auth::Bearer,
    ),
    CompatRow {
        json_object_only: true,
        ..entry(
            T::Deepseek,
            Host::Fixed("api.deepseek.com"),
            "/chat/completions",
            None,
            Auth::Bearer,
        )
    },
    entry(
        T::Groq,
        Host::Fixed("api.groq.com"),
        "/openai/v1/chat/completions",
        None,
        Auth::Bearer,
    ),
    CompatRow {
        strip_stream_options: true,
        ..entry(
            T::Mistral,
            Host::Fixed("api.mistral.ai"),
            "/v1/chat/completions",
            Some("/v1/embeddings"),
            Auth::Bearer,
        )
    },
    entry(
        T::Stepfun,
        Host::Fixed("api.stepfun.com"),
        "/v1/chat/completions",
        None,
        Auth::Bearer,
    ),
    entry(
        T::Ai360,
        Host::Fixed("api.360.cn"),
        "/v1/chat/completions",
        Some("/v1/embeddings"),
        Auth::Bearer,
    ),
    entry(
        T::Ollama,
        Host::Ollama,
        "/v1/chat/completions",
        Some("/v1/embeddings"),
        Auth::None,
    ),
    entry(
        T::Cloudflare,
        Host::Fixed("api.cloudflare.com"),
        "/client/v4/accounts/{account}/ai/v1/chat/completions",
        Some("/client/v4/accounts/{account}/ai/v1/embeddings"),
        Auth::Bearer,
    ),
    CompatRow {
        settings: SettingsProtocol::Spark,
        ..entry(
            T::Spark,
            Host::Fixed("spark-api-open.xf-yun.com"),
            "/v1/chat/completions",
            None,
            Auth::Bearer,
        )
    },
    CompatRow {
        settings: SettingsProtocol::Baidu,
        ..entry(
            T::Baidu,
            Host::Fixed("qianfan.baidubce.com"),
            "/v2/chat/completions",
            Some("/v2/embeddings"),
            Auth::Bearer,
        )
    },
    entry(
        T::Minimax,
        Host::Fixed("api.minimax.chat"),
        "/v1/text/chatcompletion_v2",
        None,
        Auth::Bearer,
    ),
    entry(
        T::Github,
        Host::Fixed("models.github.ai"),
        "/inference/chat/completions",
        Some("/inference/embeddings"),
        Auth::Bearer,
    ),
    entry(
        T::Grok,
        Host::Fixed("api.x.ai"),
        "/v1/chat/completions",
        None,
        Auth::Bearer,
    ),
    entry(
        T::TogetherAi,
        Host::Fixed("api.together.xyz"),
        "/v1/chat/completions",
        Some("/v1/embeddings"),
        Auth::Bearer,
    ),
    entry(
        T::Openrouter,
        Host::Fixed("openrouter.ai"),
        "/api/v1/chat/completions",
        None,
        Auth::Bearer,
    ),
    entry(
        T::Fireworks,
        Host::Fixed("api.fireworks.ai"),
        "/inference/v1/chat/completions",
        Some("/inference/v1/embeddings"),
        Auth::Bearer,
    ),
    entry(
        T::Longcat,
        Host::Fixed("api.longcat.chat"),
        "/openai/v1/chat/completions",
        None,
        Auth::Bearer,
    ),
    entry(
        T::Doubao,
        Host::Doubao("ark.cn-beijing.volces.com"),
        "/api/v3/chat/completions",
        Some("/api/v3/embeddings"),
        Auth::Bearer,
    ),
    entry(
        T::Vllm,
        Host::Vllm("vllm-service.cluster.local"),
        "/v1/chat/completions",
        Some("/v1/embeddings"),
        Auth::BearerIfToken,
    ),
    // Coze's bot API is not OpenAI's: only `protocol: original` (host and auth) is offered.
    entry(T::Coze, Host::Fixed("api.coze.cn"), "", None, Auth::Bearer),
    CompatRow {
        keep_client_path: true,
        ..entry(T::Generic, Host::Generic, "", Some(""), Auth::BearerIfToken)
    },
];

pub fn row(kind: ProviderType) -> Option<&'static CompatRow> {
    TABLE.iter().find(|r| r.kind == kind)
}

/// Splits a configured URL path into the chat and embeddings paths: a path ending in one API's
/// suffix yields the sibling for the other; any other path is a base both are appended to.
fn sibling_paths(path: &str) -> (String, String) {
    let base = path
        .strip_suffix("/chat/completions")
        .or_else(|| path.strip_suffix("/embeddings"))
        .unwrap_or_else(|| path.trim_end_matches('/'));
    (
        format!("{base}/chat/completions"),
        format!("{base}/embeddings"),
    )
}

fn with_query(path: String, query: &str) -> String {
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

/// vLLM's `vllmCustomUrl` path (Higress's rule): a path ending in `/completions` or `/rerank` is
/// the endpoint itself; any other path is a base for the API's path without its `/v1`.
fn vllm_custom_path(url: &SplitUrl, api: Api) -> String {
    let direct = url.path.ends_with("/completions") || url.path.ends_with("/rerank");
    let path = if direct {
        url.path.clone()
    } else {
        let suffix = match api {
            Api::ChatCompletions => "/chat/completions",
            Api::Embeddings => "/embeddings",
        };
        format!("{}{suffix}", url.path.trim_end_matches('/'))
    };
    with_query(path, &url.query)
}

/// OpenRouter takes a reasoning budget as `reasoning.max_tokens`; Higress maps a client's
/// `reasoning_max_tokens` there (dropping `reasoning_effort`, which OpenRouter would read too).
fn openrouter_reasoning_budget(obj: &mut Map<String, Value>) {
    let Some(n) = obj
        .get("reasoning_max_tokens")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
    else {
        return;
    };
    obj.remove("reasoning_max_tokens");
    obj.remove("reasoning_effort");
    match obj.get_mut("reasoning").and_then(Value::as_object_mut) {
        Some(r) => {
            r.insert("max_tokens".into(), n.into());
        }
        None => {
            obj.insert("reasoning".into(), serde_json::json!({ "max_tokens": n }));
        }
    }
}

/// DeepSeek reads `reasoning_effort` itself (api-docs.deepseek.com "Thinking Mode": low, high,
/// max, with minimal and medium folded in) but turns thinking off only through
/// `thinking: {type: disabled}`; OpenAI's `none` becomes that (a client's own `thinking` wins).
fn deepseek_thinking_off(obj: &mut Map<String, Value>) {
    if obj.get("reasoning_effort").and_then(Value::as_str) == Some("none") {
        obj.remove("reasoning_effort");
        obj.entry("thinking")
            .or_insert_with(|| serde_json::json!({"type": "disabled"}));
    }
}

/// The configuration fields the family's rows read (each only where its row needs it).
#[derive(Debug, Clone, Default)]
pub struct CompatSettings {
    pub openai_custom_url: Option<SplitUrl>,
    pub response_json_schema: Option<Value>,
    pub azure_service_url: Option<SplitUrl>,
    pub ollama_server_host: Option<String>,
    pub ollama_server_port: u16,
    pub cloudflare_account_id: Option<String>,
    pub moonshot_file_id: Option<String>,
    pub doubao_domain: Option<String>,
    pub vllm_custom_url: Option<SplitUrl>,
    pub vllm_server_host: Option<String>,
    pub generic_host: Option<String>,
}

/// Ollama's documented default port.
pub const DEFAULT_OLLAMA_PORT: u16 = 11434;

fn url_field(f: &Fields<'_>, key: &str) -> Result<Option<SplitUrl>, ConfigError> {
    f.nonempty_str(key)?
        .map(|u| {
            SplitUrl::parse(u).ok_or_else(|| ConfigError::invalid(f.at(key), "not a valid URL"))
        })
        .transpose()
}

impl CompatSettings {
    /// Reads and validates the fields of `kind`'s row.
    pub fn parse(kind: ProviderType, config: &ProviderConfig) -> Result<Self, ConfigError> {
        let f = config.fields();
        let need = |key: &str, v: bool| -> Result<(), ConfigError> {
            if v {
                Ok(())
            } else {
                Err(ConfigError::invalid(
                    f.at(key),
                    format!("required for provider type '{}'", kind.name()),
                ))
            }
        };
        let mut s = Self {
            openai_custom_url: url_field(&f, "openaiCustomUrl")?,
            ollama_server_port: DEFAULT_OLLAMA_PORT,
            ..Self::default()
        };
        s.response_json_schema = match f.get("responseJsonSchema") {
            None => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(v) => return Err(f.wrong("responseJsonSchema", "an object", v)),
        };
        s.azure_service_url = url_field(&f, "azureServiceUrl")?;
        if let Some(u) = &s.azure_service_url {
            if u.query_param("api-version").is_none_or(str::is_empty) {
                return Err(ConfigError::invalid(
                    "provider.azureServiceUrl",
                    "must include the api-version query parameter",
                ));
            }
        }
        s.ollama_server_host = f.nonempty_str("ollamaServerHost")?.map(str::to_string);
        if let Some(p) = f.u64("ollamaServerPort")? {
            s.ollama_server_port = u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                ConfigError::invalid("provider.ollamaServerPort", "must be between 1 and 65535")
            })?;
        }
        s.cloudflare_account_id = f.nonempty_str("cloudflareAccountId")?.map(str::to_string);
        s.moonshot_file_id = f.nonempty_str("moonshotFileId")?.map(str::to_string);
        config.forbid_context_with("moonshotFileId", s.moonshot_file_id.is_some())?;
        s.doubao_domain = f.nonempty_str("doubaoDomain")?.map(str::to_string);
        s.vllm_custom_url = url_field(&f, "vllmCustomUrl")?;
        s.vllm_server_host = f.nonempty_str("vllmServerHost")?.map(str::to_string);
        s.generic_host = f.nonempty_str("genericHost")?.map(str::to_string);
        let needs_token = match kind {
            ProviderType::Ollama | ProviderType::Vllm | ProviderType::Generic => false,
            ProviderType::OpenAi => s.openai_custom_url.is_none(),
            _ => true,
        };
        if needs_token {
            config.require_token()?;
        }
        match kind {
            ProviderType::Azure => {
                need("azureServiceUrl", s.azure_service_url.is_some())?;
                if config.api_tokens.len() > 1 {
                    return Err(ConfigError::invalid(
                        "provider.apiTokens",
                        "azure supports exactly one API token",
                    ));
                }
            }
            ProviderType::Ollama => need("ollamaServerHost", s.ollama_server_host.is_some())?,
            ProviderType::Coze if config.protocol != crate::config::Protocol::Original => {
                return Err(ConfigError::invalid(
                    "provider.protocol",
                    "coze needs protocol 'original': Coze's bot chat API (/v3/chat, bot_id, \
                     additional_messages, its own event stream) is not OpenAI's and aiproxy does \
                     not translate it; with 'original' requests keep Coze's API and get host and auth",
                ))
            }
            ProviderType::Cloudflare => {
                need("cloudflareAccountId", s.cloudflare_account_id.is_some())?
            }
            _ => {}
        }
        Ok(s)
    }
}

/// The provider for one of the table's types.
pub fn build(
    kind: ProviderType,
    config: &ProviderConfig,
) -> Result<Box<dyn Provider>, ConfigError> {
    let row = row(kind).unwrap_or_else(|| unreachable!("every non-translating type has a row"));
    Ok(Box::new(CompatProvider::for_row(row, config)?))
}

pub struct CompatProvider {
    row: &'static CompatRow,
    settings: CompatSettings,
}

impl CompatProvider {
    pub fn for_row(row: &'static CompatRow, config: &ProviderConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            row,
            settings: CompatSettings::parse(row.kind, config)?,
        })
    }

    pub fn row(&self) -> &'static CompatRow {
        self.row
    }

    fn authority(&self) -> Cow<'_, str> {
        let config = &self.settings;
        let host: &str = match self.row.host {
            Host::Fixed(h) => h,
            Host::OpenAiOrCustom(h) => config
                .openai_custom_url
                .as_ref()
                .map_or(h, |u| u.authority.as_str()),
            Host::Azure => config
                .azure_service_url
                .as_ref()
                .map_or("", |u| u.authority.as_str()),
            Host::Ollama => {
                return Cow::Owned(format!(
                    "{}:{}",
                    config.ollama_server_host.as_deref().unwrap_or("localhost"),
                    config.ollama_server_port
                ))
            }
            Host::Doubao(h) => config.doubao_domain.as_deref().unwrap_or(h),
            Host::Vllm(h) => match (&config.vllm_custom_url, &config.vllm_server_host) {
                (Some(u), _) => &u.authority,
                (None, Some(host)) => host,
                (None, None) => h,
            },
            Host::Generic => config.generic_host.as_deref().unwrap_or_default(),
        };
        Cow::Borrowed(host)
    }

    fn path(&self, api: Api, client_path: &str) -> Result<String, ProxyError> {
        let config = &self.settings;
        if self.row.keep_client_path {
            return Ok(client_path.to_string());
        }
        if let (Host::Vllm(_), Some(url)) = (self.row.host, &config.vllm_custom_url) {
            return Ok(vllm_custom_path(url, api));
        }
        let configured = match self.row.host {
            Host::Azure => config.azure_service_url.as_ref(),
            Host::OpenAiOrCustom(_) => config.openai_custom_url.as_ref(),
            _ => None,
        };
        if let Some(url) = configured {
            let (chat, emb) = sibling_paths(&url.path);
            let p = if api == Api::ChatCompletions {
                chat
            } else {
                emb
            };
            return Ok(with_query(p, &url.query));
        }
        let template = match api {
            Api::ChatCompletions => self.row.chat_path,
            Api::Embeddings => self.row.embeddings_path.ok_or_else(|| {
                ProxyError::unsupported("the embeddings API", self.row.kind.name())
            })?,
        };
        Ok(match &config.cloudflare_account_id {
            Some(acct) if template.contains("{account}") => template.replace("{account}", acct),
            _ => template.to_string(),
        })
    }
}

impl Provider for CompatProvider {
    /// The row's declaration. An API without a path is refused by [`CompatProvider::path`]: a
    /// `capabilities` path may enable it.
    fn profile(&self) -> Profile {
        Profile {
            kind: self.row.kind,
            settings: self.row.settings,
            host: "",
            auth: self.row.auth,
            unsupported: &[],
        }
    }

    fn host(&self, _token: &str) -> Cow<'_, str> {
        self.authority()
    }

    fn translate_request(
        &self,
        req: &RequestInfo<'_>,
        body: &mut Value,
    ) -> Result<Upstream, ProxyError> {
        let obj = body_object(body)?;
        obj.insert("model".into(), req.model.into());
        if self.row.strip_stream_options {
            obj.remove("stream_options");
        }
        if self.row.kind == ProviderType::Openrouter && req.api == Api::ChatCompletions {
            openrouter_reasoning_budget(obj);
        }
        if self.row.kind == ProviderType::Deepseek {
            deepseek_thinking_off(obj);
        }
        if self.row.json_object_only
            && obj
                .get("response_format")
                .and_then(|f| f.get("type"))
                .and_then(Value::as_str)
                == Some("json_schema")
        {
            return Err(ProxyError::unsupported(
                "response_format 'json_schema' (use json_object)",
                self.row.kind.name(),
            )
            .with_param("response_format"));
        }
        if req.api == Api::ChatCompletions {
            if let Some(schema) = &self.settings.response_json_schema {
                obj.insert(
                    "response_format".into(),
                    serde_json::json!({"type": "json_schema", "json_schema": schema}),
                );
            }
        }
        self.splice_target(req)
    }

    fn request_splice(&self, api: Api) -> Option<SpliceRules> {
        if api == Api::ChatCompletions && self.settings.response_json_schema.is_some() {
            return None;
        }
        // The keys `translate_request` acts on for this row.
        let blockers: &'static [&'static str] = match self.row.kind {
            ProviderType::Deepseek => &["reasoning_effort", "response_format"],
            ProviderType::Openrouter if api == Api::ChatCompletions => &["reasoning_max_tokens"],
            _ if self.row.strip_stream_options => &["stream_options"],
            _ if self.row.json_object_only => &["response_format"],
            _ => &[],
        };
        debug_assert!(!(self.row.strip_stream_options && self.row.json_object_only));
        Some(SpliceRules {
            protocol: self.row.settings,
            blockers,
        })
    }

    fn splice_target(&self, req: &RequestInfo<'_>) -> Result<Upstream, ProxyError> {
        // A `capabilities` path also enables an API the row has no default path for.
        let capability = req.config.capability(match req.api {
            Api::ChatCompletions => crate::config::CAPABILITY_CHAT,
            Api::Embeddings => crate::config::CAPABILITY_EMBEDDINGS,
        });
        let path = match capability {
            Some(p) => p.to_string(),
            None => self.path(req.api, req.path)?,
        };
        self.authorize(Upstream::new(self.authority(), path), req.token)
    }

    fn callout(&self, config: &ProviderConfig, token: &str) -> Option<Callout> {
        let id = self.settings.moonshot_file_id.as_deref()?;
        (self.row.kind == ProviderType::Moonshot)
            .then(|| super::moonshot::file_callout(id, token, config.timeout_ms))
    }

    fn callout_text(&self, text: &str) -> String {
        super::moonshot::file_text(text)
    }

    fn native_embedding_encoding(&self) -> bool {
        true
    }

    fn response_translator(&self, req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        // A streamed chat request gets the scanner that remembers the last chunk's layout (its
        // buffer allocated by the first stream chunk); anything else gets the stateless scan,
        // a zero-sized translator whose box allocates nothing.
        match req.api {
            Api::ChatCompletions if req.stream => Box::new(CompatTranslator::<false, _> {
                scan: openai::ChunkScanner::default(),
                identified: false,
            }),
            Api::ChatCompletions => Box::new(CompatTranslator::<false, _> {
                scan: NoLayout,
                identified: false,
            }),
            Api::Embeddings => Box::new(CompatTranslator::<true, _> {
                scan: NoLayout,
                identified: false,
            }),
        }
    }
}

/// The stream fast path's scan (`scan_conformant_chunk`'s answer either way), and whether the
/// chunk has the layout of the one accepted last (see `ChunkScanner::scan_repeat`).
pub trait ChunkScan: Send {
    fn scan<'s>(&'s mut self, data: &'s [u8]) -> Option<(openai::ConformantChunk<'s>, bool)>;
    /// Memory held between events.
    fn held_capacity(&self) -> usize;
}

impl ChunkScan for openai::ChunkScanner {
    #[inline]
    fn scan<'s>(&'s mut self, data: &'s [u8]) -> Option<(openai::ConformantChunk<'s>, bool)> {
        openai::ChunkScanner::scan_repeat(self, data)
    }

    fn held_capacity(&self) -> usize {
        openai::ChunkScanner::held_capacity(self)
    }
}

/// No remembered layout: every chunk scanned afresh (replies to requests that did not ask for a
/// stream, where a stream is the exception).
pub struct NoLayout;

impl ChunkScan for NoLayout {
    #[inline]
    fn scan<'s>(&'s mut self, data: &'s [u8]) -> Option<(openai::ConformantChunk<'s>, bool)> {
        openai::scan_conformant_chunk(data).map(|chunk| (chunk, false))
    }

    fn held_capacity(&self) -> usize {
        0
    }
}

#[cfg(test)]
thread_local! {
    /// Tests: every stream event takes the full parse, the reference the fast paths are
    /// compared with.
    pub(crate) static FULL_PARSE_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the stream fast paths may be tried (always, but in tests that ask for the reference).
#[inline(always)]
fn fast_paths() -> bool {
    #[cfg(test)]
    return !FULL_PARSE_ONLY.with(std::cell::Cell::get);
    #[cfg(not(test))]
    true
}

/// Normalises an OpenAI-compatible response. The stream identity and usage are the writer's;
/// the only state is the stream fast path's scan (see [`ChunkScan`]).
pub struct CompatTranslator<const EMBEDDINGS: bool, S> {
    scan: S,
    /// The writer's stream id is the id of the chunk the scan accepted last: the fast path
    /// identified with it, and no event since went to the full parse (which identifies with
    /// whatever id it reads). A chunk with that chunk's layout then has nothing to identify.
    identified: bool,
}

impl<const EMBEDDINGS: bool, S> CompatTranslator<EMBEDDINGS, S> {
    const API: Api = if EMBEDDINGS {
        Api::Embeddings
    } else {
        Api::ChatCompletions
    };
}

/// Whether any choice of a chunk carries a finish reason.
fn has_finish(obj: &Map<String, Value>) -> bool {
    obj.get("choices")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.get("finish_reason").is_some_and(Value::is_string))
        })
}

impl<const EMBEDDINGS: bool, S: ChunkScan> ResponseTranslator for CompatTranslator<EMBEDDINGS, S> {
    fn on_event(&mut self, event: SseEvent<'_>, w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        let data = event.data.trim_ascii();
        if data.is_empty() {
            return Ok(());
        }
        if data == b"[DONE]" {
            w.end();
            return Ok(());
        }
        let reasoning_mode = w.reasoning_mode();
        let rewrite_reasoning = reasoning_mode != ReasoningMode::Passthrough
            && data.windows(17).any(|x| x == b"reasoning_content");
        let fast = !rewrite_reasoning && fast_paths();
        if fast {
            // Most events: already OpenAI's shape with nothing to act on, found without building
            // a `Value`; the full parse below stays the reference for everything else.
            if let Some((chunk, repeat)) = self.scan.scan(data) {
                if !(repeat && self.identified) {
                    w.identify(Some(chunk.id), None);
                    self.identified = true;
                }
                w.raw_event(data, chunk.has_finish, None);
                return Ok(());
            }
        }
        self.identified = false;
        if fast {
            // The usage chunk of `include_usage` (no choices): its usage read and its object
            // rewritten as the full parse below would, without building a `Value`.
            if let Some(chunk) = openai::scan_usage_chunk(data) {
                w.identify(Some(chunk.id), None);
                let mut out = Vec::with_capacity(data.len() + 64);
                chunk.write(data, &mut out);
                w.raw_event(&out, false, Some(chunk.usage));
                return Ok(());
            }
        }
        let mut v = openai::parse_event(data)?;
        let obj = v.as_object_mut().expect("parse_event gives an object");
        let in_stream_error = openai::error_in_success_body(obj).or_else(|| {
            obj.contains_key("error")
                .then(|| openai::upstream_error(500, data))
        });
        if let Some(err) = in_stream_error {
            w.error(&err);
            return Ok(());
        }
        if rewrite_reasoning {
            for c in obj
                .get_mut("choices")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(d) = c.get_mut("delta").and_then(Value::as_object_mut) {
                    apply_reasoning_mode(d, reasoning_mode);
                }
            }
        }
        let usage_beside_choices = obj.get("usage").is_some_and(Value::is_object)
            && obj
                .get("choices")
                .and_then(Value::as_array)
                .is_some_and(|c| !c.is_empty());
        if usage_beside_choices {
            // Mistral reports usage on its finishing chunk (it has no `stream_options`); OpenAI
            // sends it alone in a last chunk with no choices, only when asked: the writer's
            // `end` writes that chunk from the usage kept here.
            if let Some(u) = obj.remove("usage").as_ref().and_then(Usage::from_openai) {
                w.set_usage(u);
            }
            if w.include_usage() {
                obj.insert("usage".into(), Value::Null);
            }
        }
        if !usage_beside_choices
            && !rewrite_reasoning
            && !data.contains(&b'\n')
            && openai::chunk_is_conformant(obj)
        {
            // Already OpenAI's shape: forward the upstream bytes, skip re-serialising.
            w.identify(obj.get("id").and_then(Value::as_str), None);
            let usage = obj.get("usage").and_then(Usage::from_openai);
            w.raw_event(data, has_finish(obj), usage);
            return Ok(());
        }
        let meta = w.identify(obj.get("id").and_then(Value::as_str), None);
        let usage = openai::normalize_chunk(obj, meta);
        if usage.is_none()
            && obj
                .get("choices")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
        {
            // Nothing an OpenAI client can use (Azure's leading prompt-filter chunk has no
            // choices and empty ids): skip it rather than emit an empty chunk.
            return Ok(());
        }
        w.json_event(&v);
        Ok(())
    }

    fn held_capacity(&self) -> usize {
        self.scan.held_capacity()
    }

    fn on_body(&mut self, body: &[u8], w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        if Self::API == Api::ChatCompletions {
            // Most replies: OpenAI's shape already, copied with the few fixes the scan makes
            // itself; the full parse below stays the reference for everything else.
            let rewrite_reasoning = w.reasoning_mode() != ReasoningMode::Passthrough;
            let (model, out) = w.model_and_output();
            if let Some(usage) = body_scan::scan_completion(body, model, rewrite_reasoning, out) {
                if let Some(u) = usage {
                    w.set_usage(u);
                }
                return Ok(());
            }
        }
        let mut v = openai::parse_body(body)?;
        let obj = v.as_object_mut().expect("parse_body gives an object");
        if let Some(err) = openai::error_in_success_body(obj) {
            return Err(err);
        }
        let usage = match Self::API {
            Api::ChatCompletions => {
                if obj
                    .get("choices")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
                {
                    return Err(ProxyError::bad_upstream("upstream reply has no choices"));
                }
                let usage = openai::normalize_completion(obj, w.model());
                let mode = w.reasoning_mode();
                for c in obj
                    .get_mut("choices")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if let Some(m) = c.get_mut("message").and_then(Value::as_object_mut) {
                        apply_reasoning_mode(m, mode);
                    }
                }
                usage
            }
            Api::Embeddings => {
                if !obj.get("data").is_some_and(Value::is_array) {
                    return Err(ProxyError::bad_upstream(
                        "upstream embeddings reply has no 'data' array",
                    ));
                }
                openai::normalize_embeddings(obj, w.model())
            }
        };
        if let Some(u) = usage {
            w.set_usage(u);
        }
        w.json(&v);
        Ok(())
    }
}

#[cfg(test)]
#[path = "openai_compat_tests.rs"]
mod tests;
