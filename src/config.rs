//! The plugin configuration: the seed's `{"provider": {...}}` JSON, parsed once into an immutable,
//! validated value. Every error names the field path and the reason.

use crate::custom_settings::{CustomSetting, SettingMode};
use crate::error::ConfigError;
use crate::model_mapping::ModelMapping;
use crate::openai::writer::ReasoningMode;
use crate::provider_type::ProviderType;
use serde_json::{Map, Value};
use std::fmt;

/// Default upstream timeout from the seed (2 minutes).
pub const DEFAULT_TIMEOUT_MS: u64 = 120_000;

/// A string that must never be printed: `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Clients speak OpenAI's API; bodies are translated.
    OpenAi,
    /// Clients speak the provider's own API; only host and auth are rewritten.
    Original,
}

/// `context`: a plain-text file fetched through the host and prepended as a system message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextConfig {
    pub file_url: String,
    /// Authority and path split out of `file_url`.
    pub authority: String,
    pub path: String,
    pub service_name: String,
    pub service_port: u16,
}

/// What `basePath` does to the client's path (Higress's `basePathHandling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasePathHandling {
    /// The prefix is removed from the client's path before anything else (the default).
    RemovePrefix,
    /// The prefix is put before the upstream path unless it already starts with it.
    Prepend,
}

/// The Higress API names of `capabilities` aiproxy acts on (the two it translates); other names
/// are accepted and warned about, as Higress itself drops names it does not know.
pub const CAPABILITY_CHAT: &str = "openai/v1/chatcompletions";
pub const CAPABILITY_EMBEDDINGS: &str = "openai/v1/embeddings";

/// `provider` fields aiproxy reads, shared or provider-specific (the Bedrock and Vertex ones
/// included). Anything else is reported by [`ProviderConfig::warnings`].
const KNOWN_FIELDS: &[&str] = &[
    "id",
    "type",
    "apiTokens",
    "timeout",
    "modelMapping",
    "protocol",
    "context",
    "customSettings",
    "reasoningContentMode",
    "capabilities",
    "basePath",
    "basePathHandling",
    "providerDomain",
    "providerBasePath",
    "authHeaderKey",
    "firstByteTimeout",
    "openaiCustomUrl",
    "responseJsonSchema",
    "azureServiceUrl",
    "ollamaServerHost",
    "ollamaServerPort",
    "cloudflareAccountId",
    "moonshotFileId",
    "doubaoDomain",
    "vllmCustomUrl",
    "vllmServerHost",
    "genericHost",
    "claudeVersion",
    "version",
    "hunyuanAuthId",
    "hunyuanAuthKey",
    "minimaxGroupId",
    "qwenFileIds",
    "qwenEnableSearch",
    "geminiSafetySetting",
    "targetLang",
    "awsAccessKey",
    "awsSecretKey",
    "awsRegion",
    "bedrockAdditionalFields",
    "vertexRegion",
    "vertexProjectId",
    "vertexAuthKey",
    "vertexAuthServiceName",
    "vertexTokenRefreshAhead",
    "vertexOpenAICompatible",
    "vertexGeminiSafetySetting",
    "geminiThinkingBudget",
    "apiVersion",
    "failover",
    "retryOnFailure",
];

/// Fields today's Higress documents that aiproxy does not implement: accepted (so a Higress
/// configuration loads) and reported by [`ProviderConfig::warnings`] as ignored.
const HIGRESS_ONLY_FIELDS: &[&str] = &[
    "subPath",
    "contextCleanupCommands",
    "claudeCodeMode",
    "zhipuDomain",
    "zhipuCodePlanMode",
    "mergeConsecutiveMessages",
    "promoteThinkingOnEmpty",
    "hiclawMode",
    "promptCacheRetention",
    "bedrockPromptCachePointPositions",
    "qwenDomain",
    "qwenEnableCompatible",
    "minimaxApiType",
    "difyApiUrl",
    "botType",
    "inputVariable",
    "outputVariable",
    "tritonModelVersion",
    "tritonDomain",
];

/// A URL split the way the request side needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitUrl {
    pub authority: String,
    /// Path without the query, always starting with `/`.
    pub path: String,
    /// Query without the `?`, possibly empty.
    pub query: String,
}

impl SplitUrl {
    /// Accepts `https://host/path?q`, `http://host/path` or `host/path`.
    pub fn parse(url: &str) -> Option<Self> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .unwrap_or(url);
        let (hostpath, query) = match rest.split_once('?') {
            Some((a, b)) => (a, b),
            None => (rest, ""),
        };
        let (authority, path) = match hostpath.find('/') {
            Some(i) => (&hostpath[..i], &hostpath[i..]),
            None => (hostpath, "/"),
        };
        // No whitespace or control characters anywhere: the path goes upstream as it is.
        if authority.is_empty() || url.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return None;
        }
        Some(Self {
            authority: authority.to_string(),
            path: path.to_string(),
            query: query.to_string(),
        })
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }
}

/// The validated `provider` object: the fields every provider shares. Provider-specific fields
/// are declared, parsed and validated by each provider (`providers::<name>::Settings`), which
/// reads them through [`ProviderConfig::fields`].
#[derive(Clone)]
pub struct ProviderConfig {
    pub kind: ProviderType,
    pub api_tokens: Vec<Secret>,
    pub timeout_ms: u64,
    pub model_mapping: ModelMapping,
    pub protocol: Protocol,
    pub context: Option<ContextConfig>,
    pub custom_settings: Vec<CustomSetting>,
    /// `reasoningContentMode`: passthrough (default), ignore or concat.
    pub reasoning_mode: ReasoningMode,
    /// `failover` and `retryOnFailure` (parsed in [`crate::failover`]).
    pub failover: crate::failover::FailoverConfig,
    pub retry_on_failure: crate::failover::RetryConfig,
    /// `capabilities`: Higress API name → upstream path, replacing the provider's path for that
    /// API (and enabling it where the provider has none by default).
    pub capabilities: Vec<(String, String)>,
    /// `basePath` with `basePathHandling` (default removePrefix when `basePath` is set).
    pub base_path: Option<(String, BasePathHandling)>,
    /// `providerDomain`: replaces the upstream host the provider chose.
    pub provider_domain: Option<String>,
    /// `providerBasePath`: prefixed to the upstream path unless it already starts with it.
    pub provider_base_path: Option<String>,
    /// `authHeaderKey` (openai without `apiTokens`): the client header carrying the key to forward.
    pub auth_header_key: Option<String>,
    /// `firstByteTimeout` in ms (0: unset). A value for the host to apply to streamed requests
    /// (Higress sets Envoy's first-byte timeout); the core does not time anything.
    pub first_byte_timeout_ms: u64,
    /// Fields that were ignored, one sentence each (see [`ProviderConfig::warnings`]).
    warnings: Vec<String>,
    /// The whole `provider` object, for the provider's own fields. Never printed: it may hold
    /// signing keys.
    raw: Map<String, Value>,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("api_tokens", &self.api_tokens)
            .field("timeout_ms", &self.timeout_ms)
            .field("model_mapping", &self.model_mapping)
            .field("protocol", &self.protocol)
            .field("context", &self.context)
            .field("custom_settings", &self.custom_settings)
            .field("reasoning_mode", &self.reasoning_mode)
            .field("failover", &self.failover)
            .field("retry_on_failure", &self.retry_on_failure)
            .field("capabilities", &self.capabilities)
            .field("base_path", &self.base_path)
            .field("provider_domain", &self.provider_domain)
            .field("provider_base_path", &self.provider_base_path)
            .field("auth_header_key", &self.auth_header_key)
            .field("first_byte_timeout_ms", &self.first_byte_timeout_ms)
            .finish_non_exhaustive()
    }
}

/// Reads typed fields out of one JSON object, producing errors that carry the full path.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    path: &'a str,
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl<'a> Fields<'a> {
    /// A reader over `obj`, whose errors name fields as `{path}.{key}`.
    pub fn new(obj: &'a Map<String, Value>, path: &'a str) -> Self {
        Self { obj, path }
    }

    pub fn at(&self, key: &str) -> String {
        format!("{}.{}", self.path, key)
    }

    pub fn wrong(&self, key: &str, want: &str, v: &Value) -> ConfigError {
        ConfigError::invalid(
            self.at(key),
            format!("expected {want}, found {}", type_name(v)),
        )
    }

    /// Present and non-null.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    pub fn str(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong(key, "a string", v)),
        }
    }

    /// Non-empty, and without control characters: these values (hosts, URLs, ids, versions,
    /// keys) end up in upstream headers and paths, where a CR/LF/NUL would break or inject
    /// (fuzz finding). The value itself is not echoed: some are secrets.
    pub fn nonempty_str(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.str(key)? {
            Some("") => Err(ConfigError::invalid(self.at(key), "must not be empty")),
            Some(s) if s.contains(char::is_control) => Err(ConfigError::invalid(
                self.at(key),
                "must not contain control characters",
            )),
            other => Ok(other),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong(key, "a boolean", v)),
        }
    }

    pub fn u64(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        self.whole_number(key, u64::MAX, || "expected a non-negative integer".into())
    }

    /// A whole number from 0 to `max` (`2.0` counts as 2).
    pub fn u64_at_most(&self, key: &str, max: u64) -> Result<Option<u64>, ConfigError> {
        self.whole_number(key, max, || {
            format!("expected an integer between 0 and {max}")
        })
    }

    fn whole_number(
        &self,
        key: &str,
        max: u64,
        expected: impl FnOnce() -> String,
    ) -> Result<Option<u64>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                        .map(|f| f as u64)
                })
                .filter(|v| *v <= max)
                .map(Some)
                .ok_or_else(|| ConfigError::invalid(self.at(key), expected())),
            Some(v) => Err(self.wrong(key, "a number", v)),
        }
    }

    pub fn str_array(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(ConfigError::invalid(
                        format!("{}[{i}]", self.at(key)),
                        format!("expected a string, found {}", type_name(other)),
                    )),
                })
                .collect(),
            Some(v) => Err(self.wrong(key, "an array of strings", v)),
        }
    }

    pub fn str_map(&self, key: &str) -> Result<Vec<(String, String)>, ConfigError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(ConfigError::invalid(
                        format!("{}.{k}", self.at(key)),
                        format!("expected a string, found {}", type_name(other)),
                    )),
                })
                .collect(),
            Some(v) => Err(self.wrong(key, "an object of strings", v)),
        }
    }

    pub fn require<T>(&self, key: &str, v: Option<T>, why: &str) -> Result<T, ConfigError> {
        v.ok_or_else(|| ConfigError::invalid(self.at(key), format!("required {why}")))
    }
}

impl ProviderConfig {
    /// Parses the whole plugin configuration (`{"provider": {...}}`) from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let root: Value = serde_json::from_slice(bytes).map_err(|e| ConfigError {
            code: crate::error::ErrorCode::ConfigJson,
            path: String::new(),
            reason: format!("configuration is not valid JSON: {e}"),
        })?;
        Self::from_value(&root)
    }

    pub fn from_value(root: &Value) -> Result<Self, ConfigError> {
        let root = root.as_object().ok_or_else(|| {
            ConfigError::invalid("", format!("expected an object, found {}", type_name(root)))
        })?;
        let provider = match root.get("provider") {
            Some(Value::Object(p)) => p,
            Some(v) => {
                return Err(ConfigError::invalid(
                    "provider",
                    format!("expected an object, found {}", type_name(v)),
                ))
            }
            None => {
                return Err(ConfigError::invalid(
                    "provider",
                    "required field is missing",
                ))
            }
        };
        Self::parse_provider(provider)
    }

    fn parse_provider(obj: &Map<String, Value>) -> Result<Self, ConfigError> {
        let f = Fields {
            obj,
            path: "provider",
        };
        let type_str = f.require("type", f.str("type")?, "field is missing")?;
        let kind = ProviderType::parse(type_str).ok_or_else(|| {
            ConfigError::invalid(
                "provider.type",
                format!(
                    "unknown provider type '{type_str}' (expected one of: {})",
                    ProviderType::ALL
                        .iter()
                        .map(|t| t.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;

        let api_tokens: Vec<Secret> = f.str_array("apiTokens")?.into_iter().map(Secret).collect();
        // Tokens go into auth headers (see nonempty_str).
        if let Some(i) = api_tokens
            .iter()
            .position(|t| t.expose().contains(char::is_control))
        {
            return Err(ConfigError::invalid(
                format!("provider.apiTokens[{i}]"),
                "must not contain control characters",
            ));
        }
        let timeout_ms = f.u64("timeout")?.unwrap_or(DEFAULT_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "provider.timeout",
                "must be greater than 0",
            ));
        }
        let model_mapping = ModelMapping::new(f.str_map("modelMapping")?);
        let protocol = match f.str("protocol")? {
            None | Some("openai") => Protocol::OpenAi,
            Some("original") => Protocol::Original,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "provider.protocol",
                    format!("unknown protocol '{other}' (expected 'openai' or 'original')"),
                ))
            }
        };
        let context = parse_context(obj.get("context").filter(|v| !v.is_null()))?;
        let custom_settings = parse_custom_settings(obj.get("customSettings"))?;
        let (failover, retry_on_failure) = crate::failover::parse(obj)?;

        let reasoning_mode = match f.str("reasoningContentMode")? {
            None | Some("passthrough") => ReasoningMode::Passthrough,
            Some("ignore") => ReasoningMode::Ignore,
            Some("concat") => ReasoningMode::Concat,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "provider.reasoningContentMode",
                    format!("unknown mode '{other}' (expected passthrough, ignore or concat)"),
                ))
            }
        };
        let mut warnings = Vec::new();
        for key in obj.keys() {
            if HIGRESS_ONLY_FIELDS.contains(&key.as_str()) {
                warnings.push(format!(
                    "provider.{key}: a Higress field aiproxy does not implement; ignored"
                ));
            } else if !KNOWN_FIELDS.contains(&key.as_str()) {
                warnings.push(format!("provider.{key}: unknown field; ignored"));
            }
        }
        let capabilities = f.str_map("capabilities")?;
        for (name, path) in &capabilities {
            if !path.starts_with('/') {
                return Err(ConfigError::invalid(
                    format!("provider.capabilities.{name}"),
                    "must be a path starting with '/'",
                ));
            }
            if name != CAPABILITY_CHAT && name != CAPABILITY_EMBEDDINGS {
                warnings.push(format!(
                    "provider.capabilities.{name}: aiproxy translates only {CAPABILITY_CHAT} and \
                     {CAPABILITY_EMBEDDINGS}; other APIs keep the client's path, mapping ignored"
                ));
            }
        }
        let base_path = match f.nonempty_str("basePath")? {
            None => None,
            Some(p) if !p.starts_with('/') => {
                return Err(ConfigError::invalid(
                    "provider.basePath",
                    "must start with '/'",
                ))
            }
            Some(p) => {
                let handling = match f.str("basePathHandling")? {
                    None | Some("" | "removePrefix") => BasePathHandling::RemovePrefix,
                    Some("prepend") => BasePathHandling::Prepend,
                    Some(other) => {
                        return Err(ConfigError::invalid(
                            "provider.basePathHandling",
                            format!(
                                "unknown handling '{other}' (expected removePrefix or prepend)"
                            ),
                        ))
                    }
                };
                Some((p.trim_end_matches('/').to_string(), handling))
            }
        };
        let provider_base_path = match f.nonempty_str("providerBasePath")? {
            Some(p) if !p.starts_with('/') => {
                return Err(ConfigError::invalid(
                    "provider.providerBasePath",
                    "must start with '/'",
                ))
            }
            p => p.map(|p| p.trim_end_matches('/').to_string()),
        };
        let provider_domain = f.nonempty_str("providerDomain")?.map(str::to_string);
        let auth_header_key = f
            .nonempty_str("authHeaderKey")?
            .map(str::to_ascii_lowercase);
        let first_byte_timeout_ms = f.u64("firstByteTimeout")?.unwrap_or(0);
        Ok(Self {
            capabilities,
            base_path,
            provider_domain,
            provider_base_path,
            auth_header_key,
            first_byte_timeout_ms,
            warnings,
            reasoning_mode,
            kind,
            api_tokens,
            timeout_ms,
            model_mapping,
            protocol,
            context,
            custom_settings,
            failover,
            retry_on_failure,
            raw: obj.clone(),
        })
    }

    /// A reader over the `provider` object, for the provider's own fields; its errors carry the
    /// full field path (`provider.azureServiceUrl`).
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            obj: &self.raw,
            path: "provider",
        }
    }

    /// Fields of the configuration that were accepted but have no effect (unknown names, Higress
    /// fields aiproxy does not implement), one sentence each naming the field. Hosts log them
    /// at configuration load; they never make a configuration fail.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The `capabilities` path configured for a Higress API name.
    pub fn capability(&self, api_name: &str) -> Option<&str> {
        self.capabilities
            .iter()
            .find(|(k, _)| k == api_name)
            .map(|(_, v)| v.as_str())
    }

    /// The `apiTokens` rule, for providers that authenticate with them.
    pub fn require_token(&self) -> Result<(), ConfigError> {
        if self.kind == ProviderType::OpenAi && self.auth_header_key.is_some() {
            // The client's own key (from `authHeaderKey`) is forwarded when no token is set.
            return Ok(());
        }
        if self.api_tokens.iter().all(|t| t.expose().is_empty()) {
            return Err(ConfigError::invalid(
                "provider.apiTokens",
                format!(
                    "required for provider type '{}': at least one non-empty token",
                    self.kind.name()
                ),
            ));
        }
        Ok(())
    }

    /// Refuses `context` alongside a provider field that supplies the context another way.
    pub fn forbid_context_with(&self, field: &str, set: bool) -> Result<(), ConfigError> {
        if set && self.context.is_some() {
            return Err(ConfigError::invalid(
                "provider.context",
                format!("cannot be combined with {field}"),
            ));
        }
        Ok(())
    }

    /// One of `apiTokens`, chosen at random per request; empty when none is configured.
    pub fn pick_token(&self) -> &str {
        use rand::Rng;
        match self.api_tokens.len() {
            0 => "",
            1 => self.api_tokens[0].expose(),
            n => self.api_tokens[rand::thread_rng().gen_range(0..n)].expose(),
        }
    }
}

fn parse_context(v: Option<&Value>) -> Result<Option<ContextConfig>, ConfigError> {
    // The seed documents an object; its YAML example writes a one-item list. Accept both.
    let (obj, path) = match v {
        None => return Ok(None),
        Some(Value::Object(o)) => (o, "provider.context".to_string()),
        Some(Value::Array(items)) if items.len() == 1 => match &items[0] {
            Value::Object(o) => (o, "provider.context[0]".to_string()),
            other => {
                return Err(ConfigError::invalid(
                    "provider.context[0]",
                    format!("expected an object, found {}", type_name(other)),
                ))
            }
        },
        Some(Value::Array(_)) => {
            return Err(ConfigError::invalid(
                "provider.context",
                "expected one context object",
            ))
        }
        Some(other) => {
            return Err(ConfigError::invalid(
                "provider.context",
                format!("expected an object, found {}", type_name(other)),
            ))
        }
    };
    let f = Fields { obj, path: &path };
    let file_url = f.require("fileUrl", f.nonempty_str("fileUrl")?, "field is missing")?;
    let service_name = f.require(
        "serviceName",
        f.nonempty_str("serviceName")?,
        "field is missing",
    )?;
    let port = f.require("servicePort", f.u64("servicePort")?, "field is missing")?;
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ConfigError::invalid(f.at("servicePort"), "must be between 1 and 65535"))?;
    let split = SplitUrl::parse(file_url)
        .ok_or_else(|| ConfigError::invalid(f.at("fileUrl"), "not a valid URL"))?;
    let path_q = if split.query.is_empty() {
        split.path.clone()
    } else {
        format!("{}?{}", split.path, split.query)
    };
    Ok(Some(ContextConfig {
        file_url: file_url.to_string(),
        authority: split.authority,
        path: path_q,
        service_name: service_name.to_string(),
        service_port: port,
    }))
}

fn parse_custom_settings(v: Option<&Value>) -> Result<Vec<CustomSetting>, ConfigError> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ConfigError::invalid(
                "provider.customSettings",
                format!("expected an array, found {}", type_name(other)),
            ))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("provider.customSettings[{i}]");
            let obj = item.as_object().ok_or_else(|| {
                ConfigError::invalid(
                    &path,
                    format!("expected an object, found {}", type_name(item)),
                )
            })?;
            let f = Fields { obj, path: &path };
            let name = f.require("name", f.nonempty_str("name")?, "field is missing")?;
            let value = match f.get("value") {
                None => {
                    return Err(ConfigError::invalid(
                        f.at("value"),
                        "required field is missing",
                    ))
                }
                Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => v.clone(),
                Some(v) => return Err(f.wrong("value", "a string, number or boolean", v)),
            };
            let mode = match f.str("mode")? {
                None | Some("auto") => SettingMode::Auto,
                Some("raw") => SettingMode::Raw,
                Some(other) => {
                    return Err(ConfigError::invalid(
                        f.at("mode"),
                        format!("unknown mode '{other}' (expected 'auto' or 'raw')"),
                    ))
                }
            };
            let overwrite = f.bool("overwrite")?.unwrap_or(true);
            Ok(CustomSetting {
                name: name.to_string(),
                value,
                mode,
                overwrite,
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
