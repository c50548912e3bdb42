//! The stable C API. Every exported function goes through one wrapper, [`boundary`] (directly or
//! through its shapes: [`exchange_call`], [`exchange_out`] and [`exchange_read`] for exchange
//! functions, [`config_call`] and [`config_out`] for config functions, [`free_handle`] for
//! `*_free`, [`infallible`] for getters without an `err` parameter), which gives these guarantees:
//! - no panic crosses the boundary: the body runs under `catch_unwind`; a caught panic returns
//!   `AIPROXY_ERR_INTERNAL` and poisons the exchange (every later call on it returns the same);
//! - `*err` is cleared on entry (when `err` is non-null) and set on every error, with a code, a
//!   message and a field path;
//! - every pointer argument is checked: a null handle or out-pointer is
//!   `AIPROXY_ERR_NULL_POINTER`; a null data pointer is the empty string when its length is 0 and
//!   `AIPROXY_ERR_NULL_POINTER` otherwise; strings must be UTF-8 (`AIPROXY_ERR_INVALID_UTF8`);
//! - ownership: handles returned by `*_new` are owned by the caller and released with the matching
//!   `*_free`; every pointer inside a result struct is borrowed from the exchange and stays valid
//!   until the next `aiproxy_exchange_on_*` call on that exchange or `aiproxy_exchange_free`.
//!
//! The numeric codes come from one enum, [`ErrorCode`] (exported as `AiproxyErr`); the `AIPROXY_ERR_*`
//! constants below are its values for Rust callers and are not exported again to C.
//!
//! Threads: an `AiproxyConfig` is immutable and may be used from any number of threads at once;
//! an `AiproxyExchange` may move between threads but must not be used by two at the same time.

use crate::error::{ConfigError, ErrorCode};
use crate::exchange::{BodyOutput, Config, Exchange, RequestAction};
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// An API error before it is boxed for C.
#[derive(Debug)]
struct FfiErr {
    code: ErrorCode,
    message: String,
    field: String,
}

type FfiResult<T> = Result<T, FfiErr>;

fn e(code: ErrorCode, msg: impl Into<String>) -> FfiErr {
    FfiErr {
        code,
        message: msg.into(),
        field: String::new(),
    }
}

/// Success (every function returning `int32_t` returns this or an `AIPROXY_ERR_*` code).
pub const AIPROXY_OK: i32 = 0;
// Rust mirrors of the `AiproxyErr` values (C gets them from the enum; excluded in cbindgen.toml).
pub const AIPROXY_ERR_NULL_POINTER: i32 = ErrorCode::NullPointer.code();
pub const AIPROXY_ERR_INVALID_UTF8: i32 = ErrorCode::InvalidUtf8.code();
pub const AIPROXY_ERR_CONFIG_JSON: i32 = ErrorCode::ConfigJson.code();
pub const AIPROXY_ERR_CONFIG_INVALID: i32 = ErrorCode::ConfigInvalid.code();
pub const AIPROXY_ERR_BAD_STATE: i32 = ErrorCode::BadState.code();
pub const AIPROXY_ERR_INTERNAL: i32 = ErrorCode::Internal.code();
pub const AIPROXY_ERR_INVALID_ARGUMENT: i32 = ErrorCode::InvalidArgument.code();

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
    /// FORWARD (when replaced): the new body; LOCAL_REPLY: the reply body; CALLOUT: the body to
    /// send (empty for GET).
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

/// Token-usage details (`aiproxy_exchange_usage_details`). The caller sets `struct_size` to
/// `sizeof(AiproxyUsageDetails)`; the library writes only the fields that fit in it, so fields
/// appended later do not break old callers.
#[repr(C)]
pub struct AiproxyUsageDetails {
    pub struct_size: usize,
    /// Whether the upstream reported cached prompt tokens (OpenAI's
    /// `prompt_tokens_details.cached_tokens`, Claude's cache reads, Gemini's cached content).
    pub cached_tokens_present: bool,
    pub cached_tokens: u64,
    /// Whether the upstream reported reasoning tokens (OpenAI's
    /// `completion_tokens_details.reasoning_tokens`, Gemini's thoughts, DashScope's).
    pub reasoning_tokens_present: bool,
    pub reasoning_tokens: u64,
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
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// The one wrapper of every exported function: clears `*err`, runs `body` under `catch_unwind`
/// (a panic becomes `AIPROXY_ERR_INTERNAL`), stores any error in `*err`. Returns the body's value
/// (or `on_error`) and the status code.
///
/// # Safety
/// `err` must be null or valid for a write.
unsafe fn boundary<T>(
    err: *mut *mut AiproxyError,
    on_error: T,
    body: impl FnOnce() -> FfiResult<T>,
) -> (T, i32) {
    if !err.is_null() {
        *err = std::ptr::null_mut();
    }
    let r = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| {
        Err(e(
            ErrorCode::Internal,
            "internal error: a panic was caught in aiproxy",
        ))
    });
    match r {
        Ok(v) => (v, AIPROXY_OK),
        Err(fe) => {
            if !err.is_null() {
                // Building the error allocates; if even that panics, the code alone is returned.
                if let Ok(b) = catch_unwind(|| {
                    Box::new(AiproxyError {
                        code: fe.code.code(),
                        message: cstring_lossy(&fe.message),
                        field: cstring_lossy(&fe.field),
                    })
                }) {
                    *err = Box::into_raw(b);
                }
            }
            (on_error, fe.code.code())
        }
    }
}

/// [`boundary`] for functions on an exchange: null and poison checks first; a panic inside `f`
/// poisons the exchange.
unsafe fn exchange_call(
    ex: *mut AiproxyExchange,
    err: *mut *mut AiproxyError,
    f: impl FnOnce(&mut AiproxyExchange) -> FfiResult<()>,
) -> i32 {
    boundary(err, (), || {
        let x = ex
            .as_mut()
            .ok_or_else(|| e(ErrorCode::NullPointer, "exchange is null"))?;
        if x.poisoned {
            return Err(e(
                ErrorCode::Internal,
                "exchange is unusable after an internal error",
            ));
        }
        match catch_unwind(AssertUnwindSafe(|| f(&mut *x))) {
            Ok(r) => r,
            Err(_) => {
                x.poisoned = true;
                Err(e(
                    ErrorCode::Internal,
                    "internal error: a panic was caught in aiproxy; the exchange is poisoned",
                ))
            }
        }
    })
    .1
}

/// [`exchange_call`] for the functions that fill a result struct `*out` (checked after the
/// exchange).
unsafe fn exchange_out<T>(
    ex: *mut AiproxyExchange,
    out: *mut T,
    err: *mut *mut AiproxyError,
    f: impl FnOnce(&mut AiproxyExchange, &mut T) -> FfiResult<()>,
) -> i32 {
    exchange_call(ex, err, |x| f(x, out_ref(out)?))
}

/// `ptr`/`len` as bytes: null is the empty slice when `len` is 0, an error otherwise.
unsafe fn bytes<'a>(ptr: *const u8, len: usize, what: &str) -> FfiResult<&'a [u8]> {
    if ptr.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(e(
            ErrorCode::NullPointer,
            format!("{what} is null with length {len}"),
        ));
    }
    Ok(std::slice::from_raw_parts(ptr, len))
}

unsafe fn utf8<'a>(ptr: *const u8, len: usize, what: &str) -> FfiResult<&'a str> {
    std::str::from_utf8(bytes(ptr, len, what)?)
        .map_err(|_| e(ErrorCode::InvalidUtf8, format!("{what} is not valid UTF-8")))
}

unsafe fn out_ref<'a, T>(out: *mut T) -> FfiResult<&'a mut T> {
    out.as_mut()
        .ok_or_else(|| e(ErrorCode::NullPointer, "out is null"))
}

/// A handle argument, or a null-pointer error naming it.
unsafe fn handle<'a, T>(p: *const T, what: &str) -> FfiResult<&'a T> {
    p.as_ref()
        .ok_or_else(|| e(ErrorCode::NullPointer, format!("{what} is null")))
}

/// The config handle's `Config`, or a null-pointer error.
unsafe fn config_arg<'a>(cfg: *const AiproxyConfig) -> FfiResult<&'a Config> {
    handle(cfg, "config").map(|c| &*c.inner)
}

/// [`boundary`] for functions on a config that return only a status: the null check first.
unsafe fn config_call(
    cfg: *const AiproxyConfig,
    err: *mut *mut AiproxyError,
    f: impl FnOnce(&Config) -> FfiResult<()>,
) -> i32 {
    boundary(err, (), || f(config_arg(cfg)?)).1
}

/// [`config_call`] for a plain value of the config written to `*out`.
unsafe fn config_out<T>(
    cfg: *const AiproxyConfig,
    out: *mut T,
    err: *mut *mut AiproxyError,
    value: impl FnOnce(&Config) -> T,
) -> i32 {
    config_call(cfg, err, |cfg| {
        *out_ref(out)? = value(cfg);
        Ok(())
    })
}

/// [`boundary`] for the read-only exchange accessors, which have no `err` parameter: the null
/// check first; the poison check is the accessor's (it zeroes `*out` before reporting it).
unsafe fn exchange_read(
    ex: *const AiproxyExchange,
    f: impl FnOnce(&AiproxyExchange) -> FfiResult<()>,
) -> i32 {
    boundary(std::ptr::null_mut(), (), || f(handle(ex, "exchange")?)).1
}

/// [`boundary`] for the functions that cannot fail and have no `err` parameter (getters that
/// answer a default for a null handle): `on_panic` is returned if `f` panics.
unsafe fn infallible<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    boundary(std::ptr::null_mut(), on_panic, || Ok(f())).0
}

/// Frees a handle made with `Box::into_raw` (null is ignored), panics contained.
unsafe fn free_handle<T>(p: *mut T) {
    boundary(std::ptr::null_mut(), (), || {
        if !p.is_null() {
            drop(Box::from_raw(p));
        }
        Ok(())
    });
}

/// A borrowed C view of one owned header.
fn header_view((name, value): &(String, String)) -> AiproxyHeader {
    AiproxyHeader {
        name: AiproxyStr::of(name.as_bytes()),
        value: AiproxyStr::of(value.as_bytes()),
    }
}

unsafe fn headers_in<'a>(
    ptr: *const AiproxyHeader,
    len: usize,
) -> FfiResult<Vec<(&'a str, &'a str)>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(e(
            ErrorCode::NullPointer,
            format!("headers is null with length {len}"),
        ));
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

fn state_err(s: crate::exchange::StateError) -> FfiErr {
    e(ErrorCode::BadState, s.0)
}

/// The library version, a static NUL-terminated string (never free it).
#[no_mangle]
pub extern "C" fn aiproxy_version() -> *const c_char {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    // SAFETY: `infallible` dereferences no pointer.
    unsafe { infallible(VERSION.as_ptr().cast(), || VERSION.as_ptr().cast()) }
}

/// Loads a configuration from `len` bytes of JSON (the plugin's `{"provider": {...}}` form).
/// Returns a new handle (free with `aiproxy_config_free`), or NULL with `*err` set (when `err` is
/// non-null; free it with `aiproxy_error_free`):
/// - `json` NULL with `len` > 0: `AIPROXY_ERR_NULL_POINTER`;
/// - `json` NULL with `len` 0, or any empty or non-JSON document: `AIPROXY_ERR_CONFIG_JSON`;
/// - JSON that violates the schema: `AIPROXY_ERR_CONFIG_INVALID` with the field path.
///
/// # Safety
/// `json` must be null or point at `len` readable bytes; `err` must be null or writable.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_config_new(
    json: *const u8,
    len: usize,
    err: *mut *mut AiproxyError,
) -> *mut AiproxyConfig {
    boundary(err, std::ptr::null_mut(), || {
        let bytes = bytes(json, len, "json")?;
        match Config::from_json(bytes) {
            Ok(cfg) => Ok(Box::into_raw(Box::new(AiproxyConfig { inner: cfg }))),
            Err(ConfigError { code, path, reason }) => {
                let message = if path.is_empty() {
                    reason
                } else {
                    format!("{path}: {reason}")
                };
                Err(FfiErr {
                    code,
                    message,
                    field: path,
                })
            }
        }
    })
    .0
}

/// Releases a configuration. Exchanges created from it stay valid (they hold their own reference).
/// NULL is ignored.
///
/// # Safety
/// `cfg` must be null or a handle from `aiproxy_config_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_config_free(cfg: *mut AiproxyConfig) {
    free_handle(cfg);
}

/// Shared body of the two config questions below.
#[allow(clippy::too_many_arguments)] // two (ptr, len) strings plus the C out-parameters
unsafe fn config_question(
    cfg: *const AiproxyConfig,
    (method, method_len): (*const u8, usize),
    (path, path_len): (*const u8, usize),
    out: *mut bool,
    err: *mut *mut AiproxyError,
    ask: fn(&Config, &str, &str) -> bool,
) -> i32 {
    config_call(cfg, err, |cfg| {
        let out = out_ref(out)?;
        let method = utf8(method, method_len, "method")?;
        let path = utf8(path, path_len, "path")?;
        *out = ask(cfg, method, path);
        Ok(())
    })
}

/// Sets `*out` to whether the core translates requests with this method and path (reads and
/// rewrites their OpenAI body). Hosts ask this instead of re-deriving the rule.
/// Returns `AIPROXY_OK`; `AIPROXY_ERR_NULL_POINTER` for a null `cfg` or `out` (or a null string
/// with a non-zero length); `AIPROXY_ERR_INVALID_UTF8`. An empty method or path is valid (and
/// never translated). `*out` is untouched on error.
///
/// # Safety
/// `cfg` must be null or a live handle; strings null or valid for their lengths; `out` null or
/// writable; `err` null or writable.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_config_translates(
    cfg: *const AiproxyConfig,
    method: *const u8,
    method_len: usize,
    path: *const u8,
    path_len: usize,
    out: *mut bool,
    err: *mut *mut AiproxyError,
) -> i32 {
    config_question(
        cfg,
        (method, method_len),
        (path, path_len),
        out,
        err,
        Config::translates,
    )
}

/// Sets `*out` to whether the core needs this request's body before it can decide (it translates
/// the body, or the provider signs every request over its bytes). With `false` a host may call
/// `aiproxy_exchange_on_request` as soon as the headers arrive, with an empty body.
/// Errors as for `aiproxy_config_translates`.
///
/// # Safety
/// As for `aiproxy_config_translates`.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_config_needs_request_body(
    cfg: *const AiproxyConfig,
    method: *const u8,
    method_len: usize,
    path: *const u8,
    path_len: usize,
    out: *mut bool,
    err: *mut *mut AiproxyError,
) -> i32 {
    config_question(
        cfg,
        (method, method_len),
        (path, path_len),
        out,
        err,
        Config::needs_request_body,
    )
}

/// Starts an exchange (one client request and its response) under `cfg`. Returns a new handle
/// (free with `aiproxy_exchange_free`) or NULL with `*err` set (`AIPROXY_ERR_NULL_POINTER` for a
/// null `cfg`).
///
/// # Safety
/// `cfg` must be null or a live handle; `err` null or writable.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_exchange_new(
    cfg: *const AiproxyConfig,
    err: *mut *mut AiproxyError,
) -> *mut AiproxyExchange {
    boundary(err, std::ptr::null_mut(), || {
        let cfg = handle(cfg, "config")?;
        Ok(Box::into_raw(Box::new(AiproxyExchange {
            ex: Exchange::new(Arc::clone(&cfg.inner)),
            poisoned: false,
            action: None,
            resp_set: Vec::new(),
            resp_remove: Vec::new(),
            header_views: Vec::new(),
            remove_views: Vec::new(),
        })))
    })
    .0
}

/// Releases an exchange and everything its results point to (a poisoned one too). NULL is
/// ignored.
///
/// # Safety
/// `ex` must be null or a handle from `aiproxy_exchange_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_exchange_free(ex: *mut AiproxyExchange) {
    free_handle(ex);
}

impl AiproxyExchange {
    /// A result with `action`, the model sent and nothing else set.
    fn empty_request_result(&self, action: i32) -> AiproxyRequestResult {
        AiproxyRequestResult {
            action,
            status: 0,
            authority: AiproxyStr::EMPTY,
            path: AiproxyStr::EMPTY,
            remove_headers: std::ptr::null(),
            remove_headers_len: 0,
            headers: std::ptr::null(),
            headers_len: 0,
            body_replaced: false,
            body: AiproxyStr::EMPTY,
            model: AiproxyStr::of(self.ex.model_sent().as_bytes()),
            callout_cluster: AiproxyStr::EMPTY,
            callout_port: 0,
            callout_method: AiproxyStr::EMPTY,
            timeout_ms: 0,
        }
    }

    /// Keeps `action` (the result points into it) and fills `*out` with its C view.
    fn fill_request_result(&mut self, action: RequestAction, out: &mut AiproxyRequestResult) {
        self.header_views.clear();
        self.remove_views.clear();
        let mut r = self.empty_request_result(AIPROXY_ACTION_FORWARD);
        r.timeout_ms = self.ex.config().provider.timeout_ms;
        let action = &*self.action.insert(action);
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
                r.body = AiproxyStr::of(&c.body);
                r.timeout_ms = c.timeout_ms;
                &c.headers
            }
        };
        self.header_views.extend(headers.iter().map(header_view));
        r.headers = self.header_views.as_ptr();
        r.headers_len = self.header_views.len();
        r.remove_headers = self.remove_views.as_ptr();
        r.remove_headers_len = self.remove_views.len();
        *out = r;
    }
}

fn body_result(r: BodyOutput<'_>) -> AiproxyBodyResult {
    AiproxyBodyResult {
        unchanged: r.unchanged,
        data: AiproxyStr::of(r.data),
        status: r.status.unwrap_or(0),
    }
}

/// Feeds the client's request (method, path with query, headers, whole body) and fills `*out` with
/// what to do. Returns `AIPROXY_OK`, or: `AIPROXY_ERR_NULL_POINTER` (null `ex` or `out`, or a null
/// pointer with a non-zero length); `AIPROXY_ERR_INVALID_UTF8` (method, path, a header name or value); `AIPROXY_ERR_BAD_STATE` (a
/// second request on the exchange). A request the client got wrong is not an API error: it is
/// `AIPROXY_ACTION_LOCAL_REPLY` with an OpenAI-shaped error body; an empty method or path is not
/// translated (forwarded as is). On error `*out` is untouched and
/// the exchange is unchanged (the call may be repeated with correct arguments).
///
/// # Safety
/// Every pointer must be null (where its length is 0) or valid for its length; `out` must be null
/// or writable; `err` null or writable.
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
    exchange_out(ex, out, err, |x, out| {
        let method = utf8(method, method_len, "method")?;
        let path = utf8(path, path_len, "path")?;
        let headers = headers_in(headers, headers_len)?;
        let body = bytes(body, body_len, "body")?;
        let action =
            x.ex.on_request(method, path, &headers, body)
                .map_err(state_err)?;
        x.fill_request_result(action, out);
        Ok(())
    })
}

/// Feeds the result of the callout requested by `AIPROXY_ACTION_CALLOUT` (its HTTP status, 0 if it
/// failed, and body) and fills `*out` with what to do next. Errors as for
/// `aiproxy_exchange_on_request`; `AIPROXY_ERR_BAD_STATE` when no callout is outstanding.
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
    exchange_out(ex, out, err, |x, out| {
        let body = bytes(body, body_len, "body")?;
        let action = x.ex.on_callout_response(status, body).map_err(state_err)?;
        x.fill_request_result(action, out);
        Ok(())
    })
}

/// Feeds the upstream response status (any value; non-2xx is translated as an upstream error) and
/// headers; fills `*out` with the body mode and the header changes to apply (remove first, then
/// set). The content type decides the mode: `text/event-stream` streams, JSON buffers, anything
/// else on a streaming request buffers and ends in an OpenAI-shaped 502.
/// Errors: `AIPROXY_ERR_NULL_POINTER`, `AIPROXY_ERR_INVALID_UTF8`, `AIPROXY_ERR_BAD_STATE` (before
/// the request was forwarded, or twice).
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
    exchange_out(ex, out, err, |x, out| {
        let headers = headers_in(headers, headers_len)?;
        let rh =
            x.ex.on_response_headers(status, &headers)
                .map_err(state_err)?;
        x.resp_set = rh.set_headers;
        x.resp_remove = rh.remove_headers;
        x.header_views.clear();
        x.remove_views.clear();
        x.header_views.extend(x.resp_set.iter().map(header_view));
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
/// Errors: `AIPROXY_ERR_NULL_POINTER`, `AIPROXY_ERR_BAD_STATE` (before the response headers, or
/// after the end).
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
    exchange_out(ex, out, err, |x, out| {
        let chunk = bytes(chunk, chunk_len, "chunk")?;
        let r =
            x.ex.on_response_body(chunk, end_of_stream)
                .map_err(state_err)?;
        *out = body_result(r);
        Ok(())
    })
}

/// The upstream connection failed (reset, timeout) before its body ended. Fills `*out` with what
/// to send to end the client's response properly, and ends the exchange:
/// - STREAM mode (headers already sent): an OpenAI in-stream error event then `data: [DONE]`
///   (`status` 0); append these bytes to the client's stream and end it;
/// - BUFFER mode, or before the response headers: an OpenAI-shaped error body with `status` 502;
/// - PASSTHROUGH, or when the response already ended: `unchanged` true (nothing to add).
///
/// Safe to call more than once (later calls add nothing). Errors: `AIPROXY_ERR_NULL_POINTER`;
/// `AIPROXY_ERR_BAD_STATE` before the request was forwarded.
///
/// # Safety
/// As for `aiproxy_exchange_on_request`.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_exchange_on_upstream_abort(
    ex: *mut AiproxyExchange,
    out: *mut AiproxyBodyResult,
    err: *mut *mut AiproxyError,
) -> i32 {
    exchange_out(ex, out, err, |x, out| {
        let r = x.ex.on_upstream_abort().map_err(state_err)?;
        *out = body_result(r);
        Ok(())
    })
}

/// Reads the token usage seen so far (complete after the last body chunk); `present` is false when
/// none was seen. Returns `AIPROXY_OK`, `AIPROXY_ERR_NULL_POINTER` (null `ex` or `out`) or
/// `AIPROXY_ERR_INTERNAL` (poisoned exchange; `*out` is then zeroed).
///
/// # Safety
/// `ex` must be null or a live handle and `out` null or writable.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_exchange_usage(
    ex: *const AiproxyExchange,
    out: *mut AiproxyUsage,
) -> i32 {
    exchange_read(ex, |x| {
        let out = out_ref(out)?;
        *out = AiproxyUsage {
            present: false,
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: 0,
        };
        if x.poisoned {
            return Err(e(ErrorCode::Internal, "exchange is poisoned"));
        }
        if let Some(u) = x.ex.usage() {
            *out = AiproxyUsage {
                present: true,
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                total_tokens: u.total_tokens,
            };
        }
        Ok(())
    })
}

/// The error's code (`AIPROXY_ERR_*`); `AIPROXY_ERR_NULL_POINTER` for a null error.
///
/// # Safety
/// `err` must be null or a live error.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_error_code(err: *const AiproxyError) -> i32 {
    infallible(AIPROXY_ERR_INTERNAL, || {
        err.as_ref().map_or(AIPROXY_ERR_NULL_POINTER, |e| e.code)
    })
}

/// The error's message, NUL-terminated UTF-8, owned by the error (valid until `aiproxy_error_free`).
/// Never contains API tokens or keys. Empty string for a null error.
///
/// # Safety
/// `err` must be null or a live error.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_error_message(err: *const AiproxyError) -> *const c_char {
    infallible(c"".as_ptr(), || {
        err.as_ref().map_or(c"".as_ptr(), |e| e.message.as_ptr())
    })
}

/// The configuration field path the error is about (e.g. `provider.azureServiceUrl`), or an empty
/// string; owned by the error. Empty string for a null error.
///
/// # Safety
/// `err` must be null or a live error.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_error_field(err: *const AiproxyError) -> *const c_char {
    infallible(c"".as_ptr(), || {
        err.as_ref().map_or(c"".as_ptr(), |e| e.field.as_ptr())
    })
}

/// Releases an error. NULL is ignored.
///
/// # Safety
/// `err` must be null or an error returned through an `err` out-parameter, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_error_free(err: *mut AiproxyError) {
    free_handle(err);
}

/// `aiproxy_exchange_client_protocol`: the client spoke OpenAI's API.
pub const AIPROXY_CLIENT_PROTOCOL_OPENAI: i32 = 0;
/// `aiproxy_exchange_client_protocol`: the client spoke Anthropic's Messages API.
pub const AIPROXY_CLIENT_PROTOCOL_ANTHROPIC: i32 = 1;

/// Writes the API dialect the exchange's client spoke to `*out` (`AIPROXY_CLIENT_PROTOCOL_*`,
/// decided by the request path in `aiproxy_exchange_on_request`; OpenAI before). Returns
/// `AIPROXY_OK` or `AIPROXY_ERR_NULL_POINTER` (null `ex` or `out`).
///
/// # Safety
/// `ex` must be null or a live handle and `out` null or writable.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_exchange_client_protocol(
    ex: *const AiproxyExchange,
    out: *mut i32,
) -> i32 {
    exchange_read(ex, |x| {
        *out_ref(out)? = match x.ex.client_protocol() {
            crate::front::ClientProtocol::OpenAi => AIPROXY_CLIENT_PROTOCOL_OPENAI,
            crate::front::ClientProtocol::Anthropic => AIPROXY_CLIENT_PROTOCOL_ANTHROPIC,
        };
        Ok(())
    })
}

/// Sets `*out` to the configuration's `firstByteTimeout` in milliseconds, 0 when unset: how long
/// the host should wait for the first byte of a streamed upstream response (Higress applies it to
/// requests with `stream: true`). The library applies no timers; hosts that can set a per-request
/// first-byte timeout use it, others ignore it.
/// Returns `AIPROXY_OK`; `AIPROXY_ERR_NULL_POINTER` for a null `cfg` or `out`.
///
/// # Safety
/// `cfg` must be null or a live handle; `out` null or writable; `err` null or writable.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_config_first_byte_timeout_ms(
    cfg: *const AiproxyConfig,
    out: *mut u64,
    err: *mut *mut AiproxyError,
) -> i32 {
    config_out(cfg, out, err, Config::first_byte_timeout_ms)
}

/// Sets `*out` to the number of configuration warnings: fields that were accepted but have no
/// effect (unknown names, Higress fields aiproxy does not implement). Hosts log them at load.
/// Returns `AIPROXY_OK`; `AIPROXY_ERR_NULL_POINTER` for a null `cfg` or `out`.
///
/// # Safety
/// As for `aiproxy_config_first_byte_timeout_ms`.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_config_warning_count(
    cfg: *const AiproxyConfig,
    out: *mut usize,
    err: *mut *mut AiproxyError,
) -> i32 {
    config_out(cfg, out, err, |cfg| cfg.warnings().len())
}

/// Sets `*out` to warning `index` (0-based, below `aiproxy_config_warning_count`) as UTF-8 bytes,
/// not NUL-terminated. The bytes are owned by the config and valid until
/// `aiproxy_config_free`; they name a field, never its value.
/// Returns `AIPROXY_OK`; `AIPROXY_ERR_NULL_POINTER` for a null `cfg` or `out`;
/// `AIPROXY_ERR_INVALID_ARGUMENT` for an index out of range (`*out` untouched).
///
/// # Safety
/// `cfg` must be null or a live handle; `out` null or writable; `err` null or writable.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_config_warning(
    cfg: *const AiproxyConfig,
    index: usize,
    out: *mut AiproxyStr,
    err: *mut *mut AiproxyError,
) -> i32 {
    config_call(cfg, err, |cfg| {
        let out = out_ref(out)?;
        let w = cfg.warnings().get(index).ok_or_else(|| {
            e(
                ErrorCode::InvalidArgument,
                format!("warning index {index} is out of range"),
            )
        })?;
        *out = AiproxyStr {
            ptr: w.as_ptr(),
            len: w.len(),
        };
        Ok(())
    })
}

/// Reads the usage details seen so far (complete after the last body chunk): cached prompt
/// tokens and reasoning tokens, each with a `_present` flag. `out->struct_size` must be set by
/// the caller (at least `sizeof(size_t)`); only the fields within it are written, all of them
/// zeroed first. Returns `AIPROXY_OK`, `AIPROXY_ERR_NULL_POINTER` (null `ex` or `out`),
/// `AIPROXY_ERR_INVALID_ARGUMENT` (`struct_size` too small) or `AIPROXY_ERR_INTERNAL` (poisoned
/// exchange; the fields are then zeroed).
///
/// # Safety
/// `ex` must be null or a live handle; `out` null or writable for `out->struct_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_exchange_usage_details(
    ex: *const AiproxyExchange,
    out: *mut AiproxyUsageDetails,
) -> i32 {
    exchange_read(ex, |x| {
        if out.is_null() {
            return Err(e(ErrorCode::NullPointer, "out is null"));
        }
        // Read the caller's size without assuming the whole struct is there.
        let size = std::ptr::read_unaligned(out.cast::<usize>());
        let head = std::mem::size_of::<usize>();
        if size < head {
            return Err(e(
                ErrorCode::InvalidArgument,
                "struct_size is smaller than sizeof(size_t)",
            ));
        }
        let mut full = AiproxyUsageDetails {
            struct_size: size,
            cached_tokens_present: false,
            cached_tokens: 0,
            reasoning_tokens_present: false,
            reasoning_tokens: 0,
        };
        let poisoned = x.poisoned;
        if !poisoned {
            if let Some(u) = x.ex.usage() {
                full.cached_tokens_present = u.cached_tokens.is_some();
                full.cached_tokens = u.cached_tokens.unwrap_or(0);
                full.reasoning_tokens_present = u.reasoning_tokens.is_some();
                full.reasoning_tokens = u.reasoning_tokens.unwrap_or(0);
            }
        }
        // Copy the fields after `struct_size` that fit in the caller's struct.
        let len = size.min(std::mem::size_of::<AiproxyUsageDetails>()) - head;
        std::ptr::copy_nonoverlapping(
            (&full as *const AiproxyUsageDetails).cast::<u8>().add(head),
            out.cast::<u8>().add(head),
            len,
        );
        if poisoned {
            return Err(e(ErrorCode::Internal, "exchange is poisoned"));
        }
        Ok(())
    })
}

// ------------------------------------------------------------------------------------------
// Retries (`retryOnFailure`)
// ------------------------------------------------------------------------------------------

/// Retry result: send this request upstream instead, fields as for `AIPROXY_ACTION_FORWARD`
/// (applied to the request that went upstream), with `timeout_ms` the `retryTimeout`; then treat
/// its answer as the first (`aiproxy_exchange_retry`, then `aiproxy_exchange_on_response_headers`).
pub const AIPROXY_ACTION_RETRY: i32 = 3;
/// Retry result: no retry; go on with `aiproxy_exchange_on_response_headers`.
pub const AIPROXY_ACTION_NO_RETRY: i32 = 4;

/// Call with the upstream's status before `aiproxy_exchange_on_response_headers`, when the host can
/// send the request again (nothing of the response reached the client yet). Fills `*out` with
/// `AIPROXY_ACTION_RETRY` and a new request using another API token, or `AIPROXY_ACTION_NO_RETRY`.
/// Pointers in `*out` are borrowed as for `aiproxy_exchange_on_request`.
///
/// # Safety
/// `ex` must be a live exchange; `out` writable; `err` null or writable.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_exchange_retry(
    ex: *mut AiproxyExchange,
    status: u16,
    out: *mut AiproxyRequestResult,
    err: *mut *mut AiproxyError,
) -> i32 {
    exchange_out(ex, out, err, |x, out| {
        match x.ex.retry_request(status) {
            Some(up) => {
                x.fill_request_result(RequestAction::Forward(up), out);
                out.action = AIPROXY_ACTION_RETRY;
                out.timeout_ms = x.ex.config().provider.retry_on_failure.retry_timeout_ms;
            }
            None => *out = x.empty_request_result(AIPROXY_ACTION_NO_RETRY),
        }
        Ok(())
    })
}

/// The host could not send the request `aiproxy_exchange_retry` returned and goes on with the
/// answer it has.
///
/// # Safety
/// `ex` must be a live exchange; `err` null or writable.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_exchange_retry_not_sent(
    ex: *mut AiproxyExchange,
    err: *mut *mut AiproxyError,
) -> i32 {
    exchange_call(ex, err, |x| {
        x.ex.retry_not_sent();
        Ok(())
    })
}

/// Number of API tokens currently out of the rotation (`failover`); 0 for a null config.
///
/// # Safety
/// `cfg` must be null or a live configuration.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_config_tokens_out(cfg: *const AiproxyConfig) -> u64 {
    infallible(0, || {
        cfg.as_ref()
            .map_or(0, |c| c.inner.token_pool().tokens_out() as u64)
    })
}

// ------------------------------------------------------------------------------------------
// Health checks (`failover`)
// ------------------------------------------------------------------------------------------

/// A list of due health checks from `aiproxy_config_due_health_checks`. Owned by the caller;
/// free with `aiproxy_health_checks_free`.
pub struct AiproxyHealthChecks {
    checks: Vec<crate::failover::HealthCheck>,
    views: Vec<Vec<AiproxyHeader>>,
}

/// One health check to send: `POST` to `authority` + `path` (through the host's route to the
/// provider) with `headers` and `body`, within `timeout_ms`; then report its status with
/// `aiproxy_config_on_health_check_result(cfg, token_index, status)`. Pointers are borrowed from
/// the list until `aiproxy_health_checks_free`.
#[repr(C)]
pub struct AiproxyHealthCheck {
    pub token_index: usize,
    pub authority: AiproxyStr,
    pub path: AiproxyStr,
    pub headers: *const AiproxyHeader,
    pub headers_len: usize,
    pub body: AiproxyStr,
    pub timeout_ms: u64,
}

/// Claims the health checks due now (one per out token whose `healthCheckInterval` passed) into a
/// new list in `*out` (possibly empty). Calling it tells the library that this host sends checks,
/// which turns half-open trials on live traffic off.
///
/// # Safety
/// `cfg` must be a live configuration; `out` writable; `err` null or writable.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_config_due_health_checks(
    cfg: *const AiproxyConfig,
    out: *mut *mut AiproxyHealthChecks,
    err: *mut *mut AiproxyError,
) -> i32 {
    config_call(cfg, err, |cfg| {
        let out = out_ref(out)?;
        let checks = cfg.due_health_checks();
        let views = checks
            .iter()
            .map(|c| c.headers.iter().map(header_view).collect())
            .collect();
        *out = Box::into_raw(Box::new(AiproxyHealthChecks { checks, views }));
        Ok(())
    })
}

/// Number of checks in `list` (0 for null).
///
/// # Safety
/// `list` must be null or a live list.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_health_checks_len(list: *const AiproxyHealthChecks) -> usize {
    infallible(0, || list.as_ref().map_or(0, |l| l.checks.len()))
}

/// Fills `*out` with check `index` of `list`.
///
/// # Safety
/// `list` must be a live list; `out` writable; `err` null or writable.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_health_checks_get(
    list: *const AiproxyHealthChecks,
    index: usize,
    out: *mut AiproxyHealthCheck,
    err: *mut *mut AiproxyError,
) -> i32 {
    boundary(err, (), || {
        let list = handle(list, "list")?;
        let out = out_ref(out)?;
        let (c, h) = list
            .checks
            .get(index)
            .zip(list.views.get(index))
            .ok_or_else(|| e(ErrorCode::InvalidArgument, "index out of range"))?;
        *out = AiproxyHealthCheck {
            token_index: c.token_index,
            authority: AiproxyStr::of(c.authority.as_bytes()),
            path: AiproxyStr::of(c.path.as_bytes()),
            headers: h.as_ptr(),
            headers_len: h.len(),
            body: AiproxyStr::of(&c.body),
            timeout_ms: c.timeout_ms,
        };
        Ok(())
    })
    .1
}

/// Frees a list from `aiproxy_config_due_health_checks` (null is a no-op).
///
/// # Safety
/// `list` must be null or a live list, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_health_checks_free(list: *mut AiproxyHealthChecks) {
    free_handle(list);
}

/// Reports the HTTP status of a health check of token `token_index` (0: it failed without a
/// status). Only 200 passes.
///
/// # Safety
/// `cfg` must be a live configuration; `err` null or writable.
#[no_mangle]
pub unsafe extern "C" fn aiproxy_config_on_health_check_result(
    cfg: *const AiproxyConfig,
    token_index: usize,
    status: u16,
    err: *mut *mut AiproxyError,
) -> i32 {
    config_call(cfg, err, |cfg| {
        if token_index >= cfg.provider.api_tokens.len() {
            return Err(e(ErrorCode::InvalidArgument, "token_index out of range"));
        }
        cfg.on_health_check_result(token_index, status);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::ResponseMode;
    use std::ffi::CStr;

    #[test]
    fn mode_constants_match_the_rust_enum() {
        assert_eq!(AIPROXY_MODE_PASSTHROUGH, ResponseMode::Passthrough as i32);
        assert_eq!(AIPROXY_MODE_STREAM, ResponseMode::Stream as i32);
        assert_eq!(AIPROXY_MODE_BUFFER, ResponseMode::Buffer as i32);
    }

    /// The codes are an ABI: Go, Python and Lua bindings hard-code these values.
    #[test]
    fn error_codes_keep_their_values() {
        let codes = [
            (ErrorCode::NullPointer, 1),
            (ErrorCode::InvalidUtf8, 2),
            (ErrorCode::ConfigJson, 3),
            (ErrorCode::ConfigInvalid, 4),
            (ErrorCode::BadState, 5),
            (ErrorCode::Internal, 6),
            (ErrorCode::InvalidArgument, 7),
        ];
        for (c, v) in codes {
            assert_eq!(c.code(), v, "{c:?}");
        }
        let header = include_str!("../include/aiproxy.h");
        for (name, v) in [
            ("AIPROXY_ERR_NULL_POINTER", 1),
            ("AIPROXY_ERR_INVALID_UTF8", 2),
            ("AIPROXY_ERR_CONFIG_JSON", 3),
            ("AIPROXY_ERR_CONFIG_INVALID", 4),
            ("AIPROXY_ERR_BAD_STATE", 5),
            ("AIPROXY_ERR_INTERNAL", 6),
            ("AIPROXY_ERR_INVALID_ARGUMENT", 7),
        ] {
            assert!(
                header.contains(&format!("{name} = {v},")),
                "{name} = {v} missing from the header"
            );
        }
        assert!(header.contains("#define AIPROXY_OK 0"));
    }

    fn exchange() -> *mut AiproxyExchange {
        let cfg = br#"{"provider": {"type": "openai", "apiTokens": ["sk-x"]}}"#;
        unsafe {
            let c = aiproxy_config_new(cfg.as_ptr(), cfg.len(), std::ptr::null_mut());
            assert!(!c.is_null());
            let x = aiproxy_exchange_new(c, std::ptr::null_mut());
            aiproxy_config_free(c);
            x
        }
    }

    /// A panic inside an exchange call is caught, reported as INTERNAL with a message, and
    /// poisons the exchange: every later call answers INTERNAL; freeing it still works.
    #[test]
    fn a_panic_is_caught_and_poisons_the_exchange() {
        unsafe {
            let x = exchange();
            let mut err = std::ptr::null_mut();
            let prev = std::panic::take_hook();
            std::panic::set_hook(Box::new(|_| {}));
            let rc = exchange_call(x, &mut err, |_| panic!("boom"));
            std::panic::set_hook(prev);
            assert_eq!(rc, AIPROXY_ERR_INTERNAL);
            assert!(!err.is_null());
            let msg = CStr::from_ptr(aiproxy_error_message(err)).to_str().unwrap();
            assert!(msg.contains("poisoned"), "{msg}");
            aiproxy_error_free(err);
            let mut r: AiproxyRequestResult = std::mem::zeroed();
            let mut err = std::ptr::null_mut();
            let rc = post(x, "/v1/chat/completions", &[], &[], &mut r, &mut err);
            assert_eq!(rc, AIPROXY_ERR_INTERNAL);
            assert_eq!(aiproxy_error_code(err), AIPROXY_ERR_INTERNAL);
            aiproxy_error_free(err);
            let mut u: AiproxyUsage = std::mem::zeroed();
            assert_eq!(aiproxy_exchange_usage(x, &mut u), AIPROXY_ERR_INTERNAL);
            assert!(!u.present);
            let mut d: AiproxyUsageDetails = std::mem::zeroed();
            d.struct_size = std::mem::size_of::<AiproxyUsageDetails>();
            d.cached_tokens = 9;
            assert_eq!(
                aiproxy_exchange_usage_details(x, &mut d),
                AIPROXY_ERR_INTERNAL
            );
            assert!(!d.cached_tokens_present && d.cached_tokens == 0);
            aiproxy_exchange_free(x);
        }
    }

    #[test]
    fn a_panic_outside_an_exchange_is_caught_too() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let (v, rc) = unsafe {
            boundary(std::ptr::null_mut(), 7u8, || -> FfiResult<u8> {
                panic!("boom")
            })
        };
        std::panic::set_hook(prev);
        assert_eq!((v, rc), (7, AIPROXY_ERR_INTERNAL));
    }

    #[test]
    fn first_byte_timeout_and_warnings_through_the_c_api() {
        unsafe {
            let json = br#"{"provider":{"type":"grok","apiTokens":["k"],"firstByteTimeout":1500,"typoField":1}}"#;
            let c = aiproxy_config_new(json.as_ptr(), json.len(), std::ptr::null_mut());
            assert!(!c.is_null());
            let mut ms = 0u64;
            let rc = aiproxy_config_first_byte_timeout_ms(c, &mut ms, std::ptr::null_mut());
            assert_eq!((rc, ms), (AIPROXY_OK, 1500));
            let mut n = 0usize;
            assert_eq!(
                aiproxy_config_warning_count(c, &mut n, std::ptr::null_mut()),
                AIPROXY_OK
            );
            assert_eq!(n, 1);
            let mut w = AiproxyStr::EMPTY;
            assert_eq!(
                aiproxy_config_warning(c, 0, &mut w, std::ptr::null_mut()),
                AIPROXY_OK
            );
            let text = std::str::from_utf8(std::slice::from_raw_parts(w.ptr, w.len)).unwrap();
            assert!(text.contains("provider.typoField"), "{text}");
            let mut err = std::ptr::null_mut();
            let rc = aiproxy_config_warning(c, 1, &mut w, &mut err);
            assert_eq!(rc, AIPROXY_ERR_INVALID_ARGUMENT);
            aiproxy_error_free(err);
            let rc = aiproxy_config_warning_count(std::ptr::null(), &mut n, std::ptr::null_mut());
            assert_eq!(rc, AIPROXY_ERR_NULL_POINTER);
            let rc =
                aiproxy_config_first_byte_timeout_ms(c, std::ptr::null_mut(), std::ptr::null_mut());
            assert_eq!(rc, AIPROXY_ERR_NULL_POINTER);
            aiproxy_config_free(c);
        }
    }

    fn hv(name: &'static str, value: &'static str) -> AiproxyHeader {
        AiproxyHeader {
            name: AiproxyStr::of(name.as_bytes()),
            value: AiproxyStr::of(value.as_bytes()),
        }
    }

    unsafe fn text<'a>(s: AiproxyStr) -> &'a str {
        std::str::from_utf8(std::slice::from_raw_parts(s.ptr, s.len)).unwrap()
    }

    /// `aiproxy_exchange_on_request` for a `POST` to `path`.
    unsafe fn post(
        x: *mut AiproxyExchange,
        path: &str,
        headers: &[AiproxyHeader],
        body: &[u8],
        out: &mut AiproxyRequestResult,
        err: &mut *mut AiproxyError,
    ) -> i32 {
        aiproxy_exchange_on_request(
            x,
            "POST".as_ptr(),
            4,
            path.as_ptr(),
            path.len(),
            headers.as_ptr(),
            headers.len(),
            body.as_ptr(),
            body.len(),
            out,
            err,
        )
    }

    unsafe fn auth(r: &AiproxyRequestResult) -> String {
        std::slice::from_raw_parts(r.headers, r.headers_len)
            .iter()
            .find(|h| text(h.name).eq_ignore_ascii_case("authorization"))
            .map(|h| text(h.value).to_string())
            .unwrap_or_default()
    }

    #[test]
    fn c_api_retry_and_health_checks() {
        let json = br#"{"provider": {"type": "openai", "apiTokens": ["t1", "t2"],
            "failover": {"enabled": true, "healthCheckModel": "m", "failureThreshold": 1,
                         "healthCheckInterval": 1},
            "retryOnFailure": {"enabled": true, "retryTimeout": 1234, "retryOnStatus": ["429"]}}}"#;
        unsafe {
            let mut err = std::ptr::null_mut();
            let cfg = aiproxy_config_new(json.as_ptr(), json.len(), &mut err);
            assert!(!cfg.is_null());
            let ex = aiproxy_exchange_new(cfg, &mut err);
            let body = br#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#;
            let headers = [hv("content-type", "application/json")];
            let mut out: AiproxyRequestResult = std::mem::zeroed();
            let path = "/v1/chat/completions";
            assert_eq!(
                post(ex, path, &headers, body, &mut out, &mut err),
                AIPROXY_OK
            );
            let first = auth(&out);
            assert_eq!(
                aiproxy_exchange_retry(ex, 400, &mut out, &mut err),
                AIPROXY_OK
            );
            assert_eq!(out.action, AIPROXY_ACTION_NO_RETRY);
            assert_eq!(
                aiproxy_exchange_retry(ex, 429, &mut out, &mut err),
                AIPROXY_OK
            );
            assert_eq!(out.action, AIPROXY_ACTION_RETRY);
            assert_eq!(out.timeout_ms, 1234);
            assert!(out.body_replaced);
            assert_ne!(auth(&out), first);
            assert_eq!(text(out.authority), "api.openai.com");
            assert_eq!(aiproxy_exchange_retry_not_sent(ex, &mut err), AIPROXY_OK);
            // The 429 took the first token out (failureThreshold 1).
            assert_eq!(aiproxy_config_tokens_out(cfg), 1);
            aiproxy_exchange_free(ex);

            std::thread::sleep(std::time::Duration::from_millis(5));
            let mut list = std::ptr::null_mut();
            assert_eq!(
                aiproxy_config_due_health_checks(cfg, &mut list, &mut err),
                AIPROXY_OK
            );
            assert_eq!(aiproxy_health_checks_len(list), 1);
            let mut check: AiproxyHealthCheck = std::mem::zeroed();
            assert_eq!(
                aiproxy_health_checks_get(list, 0, &mut check, &mut err),
                AIPROXY_OK
            );
            assert_eq!(text(check.path), "/v1/chat/completions");
            assert!(text(check.body).contains("who are you?"));
            assert_eq!(
                aiproxy_health_checks_get(list, 1, &mut check, &mut err),
                AIPROXY_ERR_INVALID_ARGUMENT
            );
            aiproxy_error_free(err);
            err = std::ptr::null_mut();
            let index = {
                let mut c: AiproxyHealthCheck = std::mem::zeroed();
                aiproxy_health_checks_get(list, 0, &mut c, &mut err);
                c.token_index
            };
            aiproxy_health_checks_free(list);
            assert_eq!(
                aiproxy_config_on_health_check_result(cfg, 9, 200, &mut err),
                AIPROXY_ERR_INVALID_ARGUMENT
            );
            aiproxy_error_free(err);
            err = std::ptr::null_mut();
            assert_eq!(
                aiproxy_config_on_health_check_result(cfg, index, 200, &mut err),
                AIPROXY_OK
            );
            assert_eq!(aiproxy_config_tokens_out(cfg), 0);
            assert_eq!(aiproxy_config_tokens_out(std::ptr::null()), 0);
            aiproxy_config_free(cfg);
        }
    }
}
