//! Errors: configuration errors (with the field path), client-facing errors (an HTTP status and an
//! OpenAI-shaped body), and the numeric codes the C API reports.

use serde_json::{json, Value};
use std::fmt;

/// Stable numeric codes shared by the Rust API, the C API and the bindings: the single source of
/// the header's `AIPROXY_ERR_*` constants (cbindgen exports this enum as `AiproxyErr`, each
/// variant as `AIPROXY_ERR_<NAME>`). Values never change and are never reused; new codes are
/// appended. `AIPROXY_OK` (0) is success and is not a variant.
///
/// cbindgen:prefix-with-name
/// cbindgen:rename-all=ScreamingSnakeCase
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// A required pointer argument was null (or a data pointer was null with a non-zero length).
    NullPointer = 1,
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 2,
    /// The configuration is not valid JSON (an empty document included).
    ConfigJson = 3,
    /// The configuration is invalid; the error's field names the offending path.
    ConfigInvalid = 4,
    /// The call does not fit the exchange's state (e.g. a body before headers, or a second request).
    BadState = 5,
    /// A panic was caught inside the library; the exchange is poisoned and every later call on it
    /// returns this code.
    Internal = 6,
    /// An argument is out of range.
    InvalidArgument = 7,
}

impl ErrorCode {
    /// The numeric value the C API returns.
    pub const fn code(self) -> i32 {
        self as i32
    }
}

/// A configuration error: where in the JSON it is, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub code: ErrorCode,
    /// Dotted path of the offending field, e.g. `provider.azureServiceUrl`.
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    pub fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::ConfigInvalid,
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// An error that becomes an HTTP reply in OpenAI's error shape
/// (`{"error": {"message", "type", "param", "code"}}`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyError {
    pub status: u16,
    pub kind: &'static str,
    pub code: Option<String>,
    pub param: Option<String>,
    pub message: String,
}

impl ProxyError {
    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code: None,
            param: None,
            message: message.into(),
        }
    }

    /// 400: the client's request cannot be translated.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", message)
    }

    /// 400 naming a feature the provider cannot express.
    pub fn unsupported(feature: &str, provider: &str) -> Self {
        let mut e = Self::bad_request(format!(
            "{feature} is not supported by provider '{provider}'"
        ));
        e.code = Some("unsupported_feature".into());
        e
    }

    /// 502: the upstream answered something we cannot translate.
    pub fn bad_upstream(message: impl Into<String>) -> Self {
        Self::new(502, "upstream_error", message)
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn to_json(&self) -> Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }

    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_json()).expect("error JSON serialises")
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.kind, self.message)
    }
}

impl std::error::Error for ProxyError {}

/// OpenAI's `type` for an upstream HTTP status, so SDKs raise the matching exception class.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 | 404 | 409 | 413 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        500..=599 => "api_error",
        _ => "upstream_error",
    }
}
