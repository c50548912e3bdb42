//! Conversation context fetched before the request goes upstream: `context.fileUrl` (a plain-text
//! file from a host-side service) or Moonshot's `moonshotFileId` (the file's extracted content from
//! Moonshot's files API). The host performs the fetch; the text becomes a leading system message.

use crate::config::ProviderConfig;
use crate::error::ProxyError;
use crate::providers::ProviderType;
use serde_json::Value;

/// Moonshot's files API host (the same host as its chat API).
const MOONSHOT_HOST: &str = "api.moonshot.cn";
/// Largest context text accepted from a callout.
pub const MAX_CONTEXT_BYTES: usize = 8 << 20;

/// An HTTP request the host must make for us before forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    /// Host-side service (Envoy: the cluster) to send it to.
    pub cluster: String,
    pub port: u16,
    pub authority: String,
    /// Path with query.
    pub path: String,
    pub method: &'static str,
    pub headers: Vec<(String, String)>,
    pub timeout_ms: u64,
}

/// The callout this configuration needs before each chat request, if any.
pub fn callout_for(config: &ProviderConfig, token: &str) -> Option<Callout> {
    if let Some(ctx) = &config.context {
        return Some(Callout {
            cluster: ctx.service_name.clone(),
            port: ctx.service_port,
            authority: ctx.authority.clone(),
            path: ctx.path.clone(),
            method: "GET",
            headers: Vec::new(),
            timeout_ms: config.timeout_ms,
        });
    }
    if config.kind == ProviderType::Moonshot {
        if let Some(id) = &config.moonshot_file_id {
            // GET /v1/files/{file_id}/content, Bearer auth (Moonshot files API).
            return Some(Callout {
                cluster: MOONSHOT_HOST.to_string(),
                port: 443,
                authority: MOONSHOT_HOST.to_string(),
                path: format!("/v1/files/{id}/content"),
                method: "GET",
                headers: vec![("authorization".into(), format!("Bearer {token}"))],
                timeout_ms: config.timeout_ms,
            });
        }
    }
    None
}

/// The text a successful callout contributes. Moonshot documents the content endpoint as the
/// file's extracted text; deployed versions wrap it as JSON with a `content` field, so that field is
/// used when present and the raw text otherwise.
pub fn context_text(
    config: &ProviderConfig,
    status: u16,
    body: &[u8],
) -> Result<String, ProxyError> {
    if !(200..300).contains(&status) {
        return Err(ProxyError::new(
            502,
            "upstream_error",
            format!("fetching the conversation context failed with HTTP {status}"),
        )
        .with_code("context_fetch_failed"));
    }
    if body.len() > MAX_CONTEXT_BYTES {
        return Err(
            ProxyError::new(502, "upstream_error", "conversation context is too large")
                .with_code("context_fetch_failed"),
        );
    }
    let text = std::str::from_utf8(body).map_err(|_| {
        ProxyError::new(
            502,
            "upstream_error",
            "conversation context is not UTF-8 text",
        )
        .with_code("context_fetch_failed")
    })?;
    if config.kind == ProviderType::Moonshot && config.moonshot_file_id.is_some() {
        if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text) {
            if let Some(Value::String(c)) = o.get("content") {
                return Ok(c.clone());
            }
        }
    }
    Ok(text.to_string())
}

/// Puts the context first in `messages` as a system message.
pub fn prepend_system(body: &mut Value, text: String) {
    if let Some(Value::Array(msgs)) = body.get_mut("messages") {
        msgs.insert(0, serde_json::json!({"role": "system", "content": text}));
    }
}
