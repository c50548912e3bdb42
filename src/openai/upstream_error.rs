//! Upstream error bodies, in whatever envelope a provider uses, as OpenAI-shaped errors.

use super::compat::error_in_success_body;
use crate::error::{error_type_for_status, ProxyError};
use serde_json::Value;

/// Converts any upstream error body into OpenAI's error shape, keeping the upstream status.
/// Understands OpenAI's `{"error":{...}}`, `{"error":"msg"}`, Mistral's unwrapped
/// `{"object":"error","message":...}`, Cloudflare's `{"errors":[{"code","message"}]}`,
/// MiniMax's `base_resp`, and falls back to the raw text.
pub fn upstream_error(status: u16, body: &[u8]) -> ProxyError {
    let kind = error_type_for_status(status);
    let fallback = || {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let msg = if text.is_empty() {
            format!("upstream returned HTTP {status}")
        } else {
            truncate(text, 1024)
        };
        ProxyError::new(status, kind, msg)
    };
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return fallback();
    };
    let code_str = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let msg_str = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut err = if let Some(e) = obj.get("error") {
        match e {
            Value::Object(eo) => {
                let mut pe = ProxyError::new(
                    status,
                    kind,
                    eo.get("message").map_or_else(|| e.to_string(), msg_str),
                );
                pe.code = code_str(eo.get("code")).or_else(|| code_str(eo.get("status")));
                pe.param = eo.get("param").and_then(Value::as_str).map(str::to_string);
                pe
            }
            other => ProxyError::new(status, kind, msg_str(other)),
        }
    } else if let Some(Value::Array(errs)) = obj.get("errors") {
        let first = errs.first();
        let mut pe = ProxyError::new(
            status,
            kind,
            first
                .and_then(|e| e.get("message"))
                .map_or_else(|| "upstream error".to_string(), msg_str),
        );
        pe.code = code_str(first.and_then(|e| e.get("code")));
        pe
    } else if let Some(m) = obj.get("message") {
        let mut pe = ProxyError::new(status, kind, msg_str(m));
        pe.code = code_str(obj.get("code"));
        pe
    } else if let Some(mut pe) = error_in_success_body(&obj) {
        pe.status = status;
        pe.kind = kind;
        pe
    } else {
        return fallback();
    };
    err.message = truncate(&err.message, 4096);
    err
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_error_shapes() {
        let e = upstream_error(401, br#"{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}"#);
        assert_eq!(
            (e.status, e.kind, e.message.as_str(), e.code.as_deref()),
            (
                401,
                "authentication_error",
                "bad key",
                Some("invalid_api_key")
            )
        );
        let e = upstream_error(
            422,
            br#"{"object":"error","message":{"detail":[1]},"type":"x"}"#,
        );
        assert_eq!(e.message, r#"{"detail":[1]}"#);
        let e = upstream_error(
            400,
            br#"{"result":null,"success":false,"errors":[{"code":7003,"message":"No route"}]}"#,
        );
        assert_eq!(
            (e.message.as_str(), e.code.as_deref()),
            ("No route", Some("7003"))
        );
        let e = upstream_error(503, b"<html>down</html>");
        assert_eq!(
            (e.status, e.kind, e.message.as_str()),
            (503, "api_error", "<html>down</html>")
        );
        let e = upstream_error(500, b"");
        assert_eq!(e.message, "upstream returned HTTP 500");
    }
}
