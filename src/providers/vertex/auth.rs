//! Vertex AI service-account auth: an RS256-signed JWT exchanged for an OAuth access token
//! through a host callout, cached per configuration until shortly before it expires.
//!
//! Facts used (Google Identity docs "Using OAuth 2.0 for Server to Server Applications"):
//! the service-account key JSON holds `client_email`, `private_key` (PEM PKCS#8),
//! `private_key_id` and `token_uri`; the JWT header is `{"alg":"RS256","typ":"JWT","kid"}`, the
//! claims `iss` (client email), `scope`, `aud` (token URI), `iat`, `exp` (at most an hour later);
//! `POST token_uri` with `application/x-www-form-urlencoded`
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>` answers
//! `{"access_token", "expires_in", "token_type": "Bearer"}`.

use crate::context::Callout;
use crate::error::{ConfigError, ProxyError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use parking_lot::Mutex;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{json, Value};
use sha2::Sha256;

pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Largest token answer we read.
const MAX_TOKEN_REPLY: usize = 64 << 10;

/// A parsed service-account key. Holds the private key: never printed.
pub struct ServiceAccount {
    pub client_email: String,
    key_id: String,
    signer: SigningKey<Sha256>,
    /// Token endpoint host and path.
    pub token_host: String,
    pub token_path: String,
}

impl ServiceAccount {
    /// Parses `vertexAuthKey`. Errors name the field, never the key material.
    pub fn parse(json_text: &str, field: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| ConfigError::invalid(field, why.to_string());
        let v: Value = serde_json::from_str(json_text)
            .map_err(|_| bad("must be a service account key (JSON)"))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let client_email = s("client_email").ok_or_else(|| bad("the key has no client_email"))?;
        let pem = s("private_key").ok_or_else(|| bad("the key has no private_key"))?;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
            .map_err(|_| bad("private_key is not a PEM PKCS#8 RSA private key"))?;
        let uri = s("token_uri").unwrap_or(DEFAULT_TOKEN_URI);
        let rest = uri
            .strip_prefix("https://")
            .ok_or_else(|| bad("token_uri must be an https URL"))?;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err(bad("token_uri must be an https URL"));
        }
        Ok(Self {
            client_email: client_email.to_string(),
            key_id: s("private_key_id").unwrap_or("").to_string(),
            signer: SigningKey::<Sha256>::new(key),
            token_host: host.to_string(),
            token_path: format!("/{path}"),
        })
    }

    pub fn token_uri(&self) -> String {
        format!("https://{}{}", self.token_host, self.token_path)
    }

    /// The signed JWT assertion for `now` (Unix seconds), valid for an hour.
    pub fn assertion(&self, now: u64) -> String {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if !self.key_id.is_empty() {
            header["kid"] = self.key_id.as_str().into();
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri(),
            "iat": now,
            "exp": now + 3600,
        });
        let mut jwt = URL_SAFE_NO_PAD.encode(header.to_string());
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = self.signer.sign(jwt.as_bytes()).to_vec();
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(sig));
        jwt
    }
}

/// The access token of one configuration and when it expires (Unix seconds).
#[derive(Default)]
pub struct TokenCache {
    slot: Mutex<Option<(String, u64)>>,
}

impl TokenCache {
    /// The cached token if it is still good for `margin` seconds.
    pub fn get(&self, now: u64, margin: u64) -> Option<String> {
        self.slot
            .lock()
            .as_ref()
            .filter(|(_, exp)| now.saturating_add(margin) < *exp)
            .map(|(t, _)| t.clone())
    }

    pub fn put(&self, token: String, expires_at: u64) {
        *self.slot.lock() = Some((token, expires_at));
    }
}

/// The token-exchange callout to the host-side service `cluster` (Envoy: a cluster for the
/// token endpoint).
pub fn token_callout(sa: &ServiceAccount, cluster: &str, now: u64, timeout_ms: u64) -> Callout {
    // The JWT is base64url and dots: nothing in it needs form encoding.
    let body = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
        sa.assertion(now)
    );
    Callout {
        cluster: cluster.to_string(),
        port: 443,
        authority: sa.token_host.clone(),
        path: sa.token_path.clone(),
        method: "POST",
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body: body.into_bytes(),
        timeout_ms,
    }
}

/// Reads the token endpoint's answer: (access token, lifetime in seconds).
pub fn read_token_reply(status: u16, body: &[u8]) -> Result<(String, u64), ProxyError> {
    let fail =
        |why: String| ProxyError::new(502, "upstream_error", why).with_code("vertex_token_failed");
    if body.len() > MAX_TOKEN_REPLY {
        return Err(fail("the Vertex access token answer is too large".into()));
    }
    let v: Option<Value> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        // OAuth errors say `error` (a code such as invalid_grant): safe to show.
        let code = v
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(Value::as_str)
            .map(|c| format!(" ({})", c.chars().take(64).collect::<String>()))
            .unwrap_or_default();
        return Err(fail(format!(
            "fetching the Vertex access token failed with HTTP {status}{code}"
        )));
    }
    let v = v.ok_or_else(|| fail("the Vertex access token answer is not JSON".into()))?;
    let token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| fail("the Vertex token answer has no access_token".into()))?;
    let ttl = v.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
    Ok((token.to_string(), ttl))
}
