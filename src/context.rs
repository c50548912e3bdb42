//! Conversation context fetched before the request goes upstream: `context.fileUrl` (a plain-text
//! file from a host-side service) or a provider's own fetch (`Provider::callout`, e.g. Moonshot's
//! file content). The host performs the fetch; the text becomes a leading system message.

use crate::config::ProviderConfig;
use crate::error::ProxyError;
use crate::providers::Provider;
use serde_json::Value;
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
    /// The request body (empty for GET; a form for Vertex's OAuth token exchange).
    pub body: Vec<u8>,
    pub timeout_ms: u64,
}

/// The callout this configuration needs before each chat request, if any: the shared
/// `context` first, else the provider's own.
pub fn callout_for(config: &ProviderConfig, imp: &dyn Provider, token: &str) -> Option<Callout> {
    if let Some(ctx) = &config.context {
        return Some(Callout {
            cluster: ctx.service_name.clone(),
            port: ctx.service_port,
            authority: ctx.authority.clone(),
            path: ctx.path.clone(),
            method: "GET",
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: config.timeout_ms,
        });
    }
    imp.callout(config, token)
}

/// The text a successful callout contributes (the provider reads its own answer's shape).
pub fn context_text(
    config: &ProviderConfig,
    imp: &dyn Provider,
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
    if config.context.is_some() {
        return Ok(text.to_string());
    }
    Ok(imp.callout_text(text))
}

/// Puts the context first in `messages` as a system message.
pub fn prepend_system(body: &mut Value, text: String) {
    if let Some(Value::Array(msgs)) = body.get_mut("messages") {
        msgs.insert(0, serde_json::json!({"role": "system", "content": text}));
    }
}
