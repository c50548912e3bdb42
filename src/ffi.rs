//! The stable C API. Rules kept by every function here:
//! - no panic crosses the boundary: each body runs under `catch_unwind`; a caught panic returns
//!   `AIPROXY_ERR_INTERNAL` and poisons the exchange;
//! - every pointer argument is checked; a null pointer is `AIPROXY_ERR_NULL_POINTER` (a null data
//!   pointer is accepted only with length 0); strings must be UTF-8 (`AIPROXY_ERR_INVALID_UTF8`);
//! - every error has a code and, through the optional `AiproxyError **` out-parameter, a message and
//!   a field path;
//! - ownership: handles returned by `*_new` are owned by the caller and released with the matching
//!   `*_free`; every pointer inside a result struct is borrowed from the exchange and stays valid
//!   until the next `aiproxy_exchange_on_*` call on that exchange or `aiproxy_exchange_free`.
//!
//! Threads: an `AiproxyConfig` is immutable and may be used from any number of threads at once;
//! an `AiproxyExchange` may move between threads but must not be used by two at the same time.

use crate::error::ConfigError;
use crate::exchange::{Config, Exchange, RequestAction};
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// An API error before it is boxed for C: code, message, field path.
type FfiErr = (i32, String, String);
type FfiResult = Result<(), FfiErr>;

/// Success.
pub const AIPROXY_OK: i32 = 0;
/// A required pointer argument was null.
pub const AIPROXY_ERR_NULL_POINTER: i32 = 1;
/// A string argument was not valid UTF-8.
pub const AIPROXY_ERR_INVALID_UTF8: i32 = 2;
/// The configuration is not valid JSON.
pub const AIPROXY_ERR_CONFIG_JSON: i32 = 3;
/// The configuration is invalid; the error's field names the offending path.
pub const AIPROXY_ERR_CONFIG_INVALID: i32 = 4;
/// The call does not fit the exchange's state (e.g. a body before headers, or a second request).
pub const AIPROXY_ERR_BAD_STATE: i32 = 5;
/// A panic was caught inside the library; the exchange can no longer be used.
pub const AIPROXY_ERR_INTERNAL: i32 = 6;
/// An argument is out of range.
pub const AIPROXY_ERR_INVALID_ARGUMENT: i32 = 7;

/// Request result: forward the (rewritten) request upstream.
pub const AIPROXY_ACTION_FORWARD: i32 = 0;
/// Request result: reply to the client with `status`, `headers` and `body`; do not go upstream.
pub const AIPROXY_ACTION_LOCAL_REPLY: i32 = 1;
/// Request result: perform the HTTP callout described, then call
/// `aiproxy_exchange_on_callout_response`.
pub const AIPROXY_ACTION_CALLOUT: i32 = 2;

/// Response mode: forward the body unchanged.
pub const AIPROXY_MODE_PASSTHROUGH: i32 = 0;
/// Response mode: SSE; send headers now and each chunk's output as it returns.
pub const AIPROXY_MODE_STREAM: i32 = 1;
/// Response mode: hold headers and body until end of stream, then send the returned status/body.
pub const AIPROXY_MODE_BUFFER: i32 = 2;

/// A byte string: `ptr` points at `len` bytes (not NUL-terminated); `ptr` may be null when `len`
/// is 0.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct AiproxyStr {
    pub ptr: *const u8,
    pub len: usize,
}

impl AiproxyStr {
    const EMPTY: AiproxyStr = AiproxyStr {
        ptr: std::ptr::null(),
        len: 0,
    };

    fn of(s: &[u8]) -> Self {
        Self {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct AiproxyHeader {
    pub name: AiproxyStr,
    pub value: AiproxyStr,
}

/// Result of `aiproxy_exchange_on_request` / `aiproxy_exchange_on_callout_response`.
/// All pointers are borrowed from the exchange (see the ownership rule above).
#[repr(C)]
pub struct AiproxyRequestResult {
    /// One of `AIPROXY_ACTION_*`.
    pub action: i32,
    /// LOCAL_REPLY: the HTTP status to answer with.
    pub status: u16,
    /// FORWARD: new `:authority`; CALLOUT: the callout's authority.
    pub authority: AiproxyStr,
    /// FORWARD: new `:path` (with query); CALLOUT: the callout's path.
    pub path: AiproxyStr,
    /// FORWARD: request headers to remove, applied before `headers`.
    pub remove_headers: *const AiproxyStr,
    pub remove_headers_len: usize,
    /// FORWARD: request headers to set (replace); LOCAL_REPLY and CALLOUT: the headers to send.
    pub headers: *const AiproxyHeader,
    pub headers_len: usize,
    /// FORWARD: whether `body` replaces the client's body (false: leave it unchanged).
    pub body_replaced: bool,
    /// FORWARD (when replaced): the new body; LOCAL_REPLY: the reply body.
    pub body: AiproxyStr,
    /// The model sent upstream after `modelMapping` (empty when not translated).
    pub model: AiproxyStr,
    /// CALLOUT: host-side service (Envoy cluster) and port, HTTP method and timeout.
    pub callout_cluster: AiproxyStr,
    pub callout_port: u16,
    pub callout_method: AiproxyStr,
    pub timeout_ms: u64,
}

/// Result of `aiproxy_exchange_on_response_headers`.
#[repr(C)]
pub struct AiproxyResponseHeadersResult {
    /// One of `AIPROXY_MODE_*`.
    pub mode: i32,
    pub remove_headers: *const AiproxyStr,
    pub remove_headers_len: usize,
    pub headers: *const AiproxyHeader,
    pub headers_len: usize,
}

/// Result of `aiproxy_exchange_on_response_body`.
#[repr(C)]
pub struct AiproxyBodyResult {
    /// true: forward the input chunk unchanged and ignore `data`.
    pub unchanged: bool,
    /// Otherwise: send these bytes instead of the input chunk (may be empty).
    pub data: AiproxyStr,
    /// BUFFER mode at end of stream: the response status to send; 0 otherwise.
    pub status: u16,
}

#[repr(C)]
pub struct AiproxyUsage {
    /// false when the response carried no usage (yet).
    pub present: bool,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// An error: code, message and field path. Owned by the caller; free with `aiproxy_error_free`.
pub struct AiproxyError {
    code: i32,
    message: CString,
    field: CString,
}

/// A loaded configuration. Immutable and thread-safe.
pub struct AiproxyConfig {
    inner: Arc<Config>,
}

/// One request/response exchange.
pub struct AiproxyExchange {
    ex: Exchange,
    poisoned: bool,
    // Storage that the borrowed result views point into.
    action: Option<RequestAction>,
    resp_set: Vec<(String, String)>,
    resp_remove: Vec<&'static str>,
    header_views: Vec<AiproxyHeader>,
    remove_views: Vec<AiproxyStr>,
}

fn cstring_lossy(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).expect("NULs removed")
}

fn make_error(code: i32, message: &str, field: &str) -> AiproxyError {
    AiproxyError {
        code,
        message: cstring_lossy(message),
        field: cstring_lossy(field),
    }
}

/// Stores an error in `*err` when `err` is non-null and returns `code`.
unsafe fn fail(err: *mut *mut AiproxyError, code: i32, message: &str, field: &str) -> i32 {
    if !err.is_null() {
        *err = Box::into_raw(Box::new(make_error(code, message, field)));
    }
    code
}

unsafe fn clear_err(err: *mut *mut AiproxyError) {
    if !err.is_null() {
        *err = std::ptr::null_mut();
    }
}

/// Runs `f`, turning a panic into `AIPROXY_ERR_INTERNAL`.
fn guard(f: impl FnOnce() -> FfiResult) -> FfiResult {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err((
            AIPROXY_ERR_INTERNAL,
            "internal error: a panic was caught in aiproxy".into(),
            String::new(),
        ))
    })
}

fn e(code: i32, msg: impl Into<String>) -> FfiErr {
    (code, msg.into(), String::new())
}

unsafe fn bytes<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8], FfiErr> {
    if ptr.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(e(AIPROXY_ERR_NULL_POINTER, format!("{what} is null")));
    }
    Ok(std::slice::from_raw_parts(ptr, len))
}

unsafe fn utf8<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a str, FfiErr> {
    std::str::from_utf8(bytes(ptr, len, what)?).map_err(|_| {
        e(
            AIPROXY_ERR_INVALID_UTF8,
            format!("{what} is not valid UTF-8"),
        )
    })
}

unsafe fn headers_in<'a>(
    ptr: *const AiproxyHeader,
    len: usize,
) -> Result<Vec<(&'a str, &'a str)>, FfiErr> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(e(AIPROXY_ERR_NULL_POINTER, "headers is null"));
    }
    std::slice::from_raw_parts(ptr, len)
        .iter()
        .map(|h| {
            Ok((
                utf8(h.name.ptr, h.name.len, "header name")?,
                utf8(h.value.ptr, h.value.len, "header value")?,
            ))
        })
        .collect()
}

fn finish(err: *mut *mut AiproxyError, r: FfiResult) -> i32 {
    match r {
        Ok(()) => AIPROXY_OK,
        Err((code, msg, field)) => unsafe { fail(err, code, &msg, &field) },
    }
}

/// The library version, a static NUL-terminated string (never free it).
#[no_mangle]
pub extern "C" fn aiproxy_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Loads a configuration from `len` bytes of JSON (the plugin's `{"provider": {...}}` form).
/// Returns a new handle (free with `aiproxy_config_free`), or null with `*err` set (if `err` is
/// non-null; free it with `aiproxy_error_free`).
///
/// # Safety
/// `json` must point at `len` readable bytes; `err` must be null or point at writable storage.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_config_new(
    json: *const u8,
    len: usize,
    err: *mut *mut AiproxyError,
) -> *mut AiproxyConfig {
    clear_err(err);
    let mut out = std::ptr::null_mut();
    let r = guard(|| {
        if json.is_null() {
            return Err(e(AIPROXY_ERR_NULL_POINTER, "json is null"));
        }
        let bytes = std::slice::from_raw_parts(json, len);
        match Config::from_json(bytes) {
            Ok(cfg) => {
                out = Box::into_raw(Box::new(AiproxyConfig { inner: cfg }));
                Ok(())
            }
            Err(ConfigError { code, path, reason }) => {
                let msg = if path.is_empty() {
                    reason
                } else {
                    format!("{path}: {reason}")
                };
                Err((code as i32, msg, path))
            }
        }
    });
    finish(err, r);
    out
}

/// Releases a configuration. Exchanges created from it stay valid (they hold their own reference).
/// Null is ignored.
///
/// # Safety
/// `cfg` must be null or a handle from `aiproxy_config_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_config_free(cfg: *mut AiproxyConfig) {
    if !cfg.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(cfg))));
    }
}

/// Starts an exchange (one client request and its response) under `cfg`. Returns a new handle (free
/// with `aiproxy_exchange_free`) or null with `*err` set.
///
/// # Safety
/// `cfg` must be a live handle; `err` null or writable.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_exchange_new(
    cfg: *const AiproxyConfig,
    err: *mut *mut AiproxyError,
) -> *mut AiproxyExchange {
    clear_err(err);
    let mut out = std::ptr::null_mut();
    let r = guard(|| {
        let cfg = cfg
            .as_ref()
            .ok_or_else(|| e(AIPROXY_ERR_NULL_POINTER, "config is null"))?;
        out = Box::into_raw(Box::new(AiproxyExchange {
            ex: Exchange::new(Arc::clone(&cfg.inner)),
            poisoned: false,
            action: None,
            resp_set: Vec::new(),
            resp_remove: Vec::new(),
            header_views: Vec::new(),
            remove_views: Vec::new(),
        }));
        Ok(())
    });
    finish(err, r);
    out
}

/// Releases an exchange and everything its results point to. Null is ignored.
///
/// # Safety
/// `ex` must be null or a handle from `aiproxy_exchange_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_exchange_free(ex: *mut AiproxyExchange) {
    if !ex.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(ex))));
    }
}

/// Runs `f` on a live, unpoisoned exchange; a panic poisons it.
unsafe fn with_exchange(
    ex: *mut AiproxyExchange,
    err: *mut *mut AiproxyError,
    f: impl FnOnce(&mut AiproxyExchange) -> FfiResult,
) -> i32 {
    clear_err(err);
    let Some(x) = ex.as_mut() else {
        return fail(err, AIPROXY_ERR_NULL_POINTER, "exchange is null", "");
    };
    if x.poisoned {
        return fail(
            err,
            AIPROXY_ERR_INTERNAL,
            "exchange is unusable after an internal error",
            "",
        );
    }
    let r = guard(|| f(&mut *x));
    if matches!(r, Err((AIPROXY_ERR_INTERNAL, _, _))) {
        x.poisoned = true;
    }
    finish(err, r)
}

impl AiproxyExchange {
    fn fill_request_result(&mut self, out: &mut AiproxyRequestResult) {
        self.header_views.clear();
        self.remove_views.clear();
        let action = self.action.as_ref().expect("set before filling");
        let model = AiproxyStr::of(self.ex.model_sent().as_bytes());
        let mut r = AiproxyRequestResult {
            action: AIPROXY_ACTION_FORWARD,
            status: 0,
            authority: AiproxyStr::EMPTY,
            path: AiproxyStr::EMPTY,
            remove_headers: std::ptr::null(),
            remove_headers_len: 0,
            headers: std::ptr::null(),
            headers_len: 0,
            body_replaced: false,
            body: AiproxyStr::EMPTY,
            model,
            callout_cluster: AiproxyStr::EMPTY,
            callout_port: 0,
            callout_method: AiproxyStr::EMPTY,
            timeout_ms: self.ex.config().provider.timeout_ms,
        };
        let headers: &[(String, String)] = match action {
            RequestAction::Forward(up) => {
                r.authority = AiproxyStr::of(up.authority.as_bytes());
                r.path = AiproxyStr::of(up.path.as_bytes());
                self.remove_views.extend(
                    up.remove_headers
                        .iter()
                        .map(|h| AiproxyStr::of(h.as_bytes())),
                );
                if let Some(b) = &up.body {
                    r.body_replaced = true;
                    r.body = AiproxyStr::of(b);
                }
                &up.set_headers
            }
            RequestAction::LocalReply(lr) => {
                r.action = AIPROXY_ACTION_LOCAL_REPLY;
                r.status = lr.status;
                r.body = AiproxyStr::of(&lr.body);
                &lr.headers
            }
            RequestAction::Callout(c) => {
                r.action = AIPROXY_ACTION_CALLOUT;
                r.authority = AiproxyStr::of(c.authority.as_bytes());
                r.path = AiproxyStr::of(c.path.as_bytes());
                r.callout_cluster = AiproxyStr::of(c.cluster.as_bytes());
                r.callout_port = c.port;
                r.callout_method = AiproxyStr::of(c.method.as_bytes());
                r.timeout_ms = c.timeout_ms;
                &c.headers
            }
        };
        self.header_views
            .extend(headers.iter().map(|(k, v)| AiproxyHeader {
                name: AiproxyStr::of(k.as_bytes()),
                value: AiproxyStr::of(v.as_bytes()),
            }));
        r.headers = self.header_views.as_ptr();
        r.headers_len = self.header_views.len();
        r.remove_headers = self.remove_views.as_ptr();
        r.remove_headers_len = self.remove_views.len();
        *out = r;
    }
}

/// Feeds the client's request (method, path with query, headers, whole body) and fills `*out` with
/// what to do. Returns `AIPROXY_OK` or an error code.
///
/// # Safety
/// Every pointer must be null (where its length is 0) or valid for its length; `out` must be
/// writable; `err` null or writable.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_exchange_on_request(
    ex: *mut AiproxyExchange,
    method: *const u8,
    method_len: usize,
    path: *const u8,
    path_len: usize,
    headers: *const AiproxyHeader,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
    out: *mut AiproxyRequestResult,
    err: *mut *mut AiproxyError,
) -> i32 {
    with_exchange(ex, err, |x| {
        let out = out
            .as_mut()
            .ok_or_else(|| e(AIPROXY_ERR_NULL_POINTER, "out is null"))?;
        if method.is_null() || path.is_null() {
            return Err(e(AIPROXY_ERR_NULL_POINTER, "method or path is null"));
        }
        let method = utf8(method, method_len, "method")?;
        let path = utf8(path, path_len, "path")?;
        let headers = headers_in(headers, headers_len)?;
        let body = bytes(body, body_len, "body")?;
        let action =
            x.ex.on_request(method, path, &headers, body)
                .map_err(|s| e(AIPROXY_ERR_BAD_STATE, s.0))?;
        x.action = Some(action);
        x.fill_request_result(out);
        Ok(())
    })
}

/// Feeds the result of the callout requested by `AIPROXY_ACTION_CALLOUT` (its HTTP status, 0 if it
/// failed, and body) and fills `*out` with what to do next.
///
/// # Safety
/// As for `aiproxy_exchange_on_request`.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_exchange_on_callout_response(
    ex: *mut AiproxyExchange,
    status: u16,
    body: *const u8,
    body_len: usize,
    out: *mut AiproxyRequestResult,
    err: *mut *mut AiproxyError,
) -> i32 {
    with_exchange(ex, err, |x| {
        let out = out
            .as_mut()
            .ok_or_else(|| e(AIPROXY_ERR_NULL_POINTER, "out is null"))?;
        let body = bytes(body, body_len, "body")?;
        let action =
            x.ex.on_callout_response(status, body)
                .map_err(|s| e(AIPROXY_ERR_BAD_STATE, s.0))?;
        x.action = Some(action);
        x.fill_request_result(out);
        Ok(())
    })
}

/// Feeds the upstream response status and headers; fills `*out` with the body mode and the header
/// changes to apply (remove first, then set).
///
/// # Safety
/// As for `aiproxy_exchange_on_request`.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_exchange_on_response_headers(
    ex: *mut AiproxyExchange,
    status: u16,
    headers: *const AiproxyHeader,
    headers_len: usize,
    out: *mut AiproxyResponseHeadersResult,
    err: *mut *mut AiproxyError,
) -> i32 {
    with_exchange(ex, err, |x| {
        let out = out
            .as_mut()
            .ok_or_else(|| e(AIPROXY_ERR_NULL_POINTER, "out is null"))?;
        let headers = headers_in(headers, headers_len)?;
        let rh =
            x.ex.on_response_headers(status, &headers)
                .map_err(|s| e(AIPROXY_ERR_BAD_STATE, s.0))?;
        x.resp_set = rh.set_headers;
        x.resp_remove = rh.remove_headers;
        x.header_views.clear();
        x.remove_views.clear();
        x.header_views
            .extend(x.resp_set.iter().map(|(k, v)| AiproxyHeader {
                name: AiproxyStr::of(k.as_bytes()),
                value: AiproxyStr::of(v.as_bytes()),
            }));
        x.remove_views
            .extend(x.resp_remove.iter().map(|h| AiproxyStr::of(h.as_bytes())));
        *out = AiproxyResponseHeadersResult {
            mode: rh.mode as i32,
            remove_headers: x.remove_views.as_ptr(),
            remove_headers_len: x.remove_views.len(),
            headers: x.header_views.as_ptr(),
            headers_len: x.header_views.len(),
        };
        Ok(())
    })
}

/// Feeds one upstream body chunk (`end_of_stream` on the last, which may be empty) and fills `*out`
/// with the bytes to send instead. STREAM mode yields output per chunk; BUFFER mode yields nothing
/// until end of stream, then the whole body and the status.
///
/// # Safety
/// As for `aiproxy_exchange_on_request`.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_exchange_on_response_body(
    ex: *mut AiproxyExchange,
    chunk: *const u8,
    chunk_len: usize,
    end_of_stream: bool,
    out: *mut AiproxyBodyResult,
    err: *mut *mut AiproxyError,
) -> i32 {
    with_exchange(ex, err, |x| {
        let out = out
            .as_mut()
            .ok_or_else(|| e(AIPROXY_ERR_NULL_POINTER, "out is null"))?;
        let chunk = bytes(chunk, chunk_len, "chunk")?;
        let r =
            x.ex.on_response_body(chunk, end_of_stream)
                .map_err(|s| e(AIPROXY_ERR_BAD_STATE, s.0))?;
        *out = AiproxyBodyResult {
            unchanged: r.unchanged,
            data: AiproxyStr::of(r.data),
            status: r.status.unwrap_or(0),
        };
        Ok(())
    })
}

/// Reads the token usage seen so far (complete after the last body chunk).
///
/// # Safety
/// `ex` must be a live handle and `out` writable.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_exchange_usage(
    ex: *const AiproxyExchange,
    out: *mut AiproxyUsage,
) -> i32 {
    let (Some(x), Some(out)) = (ex.as_ref(), out.as_mut()) else {
        return AIPROXY_ERR_NULL_POINTER;
    };
    let u = catch_unwind(AssertUnwindSafe(|| x.ex.usage())).unwrap_or(None);
    *out = AiproxyUsage {
        present: u.is_some(),
        prompt_tokens: u.map_or(0, |u| u.prompt_tokens),
        completion_tokens: u.map_or(0, |u| u.completion_tokens),
        total_tokens: u.map_or(0, |u| u.total_tokens),
    };
    AIPROXY_OK
}

/// The error's code (`AIPROXY_ERR_*`); `AIPROXY_ERR_NULL_POINTER` for a null error.
///
/// # Safety
/// `err` must be null or a live error.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_error_code(err: *const AiproxyError) -> i32 {
    err.as_ref().map_or(AIPROXY_ERR_NULL_POINTER, |e| e.code)
}

/// The error's message, NUL-terminated UTF-8, owned by the error (valid until `aiproxy_error_free`).
/// Never contains API tokens or keys. Empty string for a null error.
///
/// # Safety
/// `err` must be null or a live error.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_error_message(err: *const AiproxyError) -> *const c_char {
    err.as_ref().map_or(c"".as_ptr(), |e| e.message.as_ptr())
}

/// The configuration field path the error is about (e.g. `provider.azureServiceUrl`), or an empty
/// string; owned by the error.
///
/// # Safety
/// `err` must be null or a live error.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_error_field(err: *const AiproxyError) -> *const c_char {
    err.as_ref().map_or(c"".as_ptr(), |e| e.field.as_ptr())
}

/// Releases an error. Null is ignored.
///
/// # Safety
/// `err` must be null or an error returned through an `err` out-parameter, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_error_free(err: *mut AiproxyError) {
    if !err.is_null() {
        drop(Box::from_raw(err));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::exchange::ResponseMode;

    /// The header's literal constants must match the Rust enums they mirror.
    #[test]
    fn constants_match_rust_enums() {
        assert_eq!(AIPROXY_ERR_NULL_POINTER, ErrorCode::NullPointer as i32);
        assert_eq!(AIPROXY_ERR_INVALID_UTF8, ErrorCode::InvalidUtf8 as i32);
        assert_eq!(AIPROXY_ERR_CONFIG_JSON, ErrorCode::ConfigJson as i32);
        assert_eq!(AIPROXY_ERR_CONFIG_INVALID, ErrorCode::ConfigInvalid as i32);
        assert_eq!(AIPROXY_ERR_BAD_STATE, ErrorCode::BadState as i32);
        assert_eq!(AIPROXY_ERR_INTERNAL, ErrorCode::Internal as i32);
        assert_eq!(
            AIPROXY_ERR_INVALID_ARGUMENT,
            ErrorCode::InvalidArgument as i32
        );
        assert_eq!(AIPROXY_MODE_PASSTHROUGH, ResponseMode::Passthrough as i32);
        assert_eq!(AIPROXY_MODE_STREAM, ResponseMode::Stream as i32);
        assert_eq!(AIPROXY_MODE_BUFFER, ResponseMode::Buffer as i32);
    }
}
