//! The hooks this module exports to Envoy (`envoy_dynamic_module_on_*`, declared by Envoy's
//! `abi.h`) and the runtime behind them: it owns the module-side objects (one `ConfigState` per
//! filter configuration, one `FilterState` per stream), hands the filter an
//! [`EnvoyHttpFilter`] for the duration of one hook, and stops every panic at the boundary.
//!
//! The 20 hooks Envoy 1.40 requires for an HTTP filter are all exported, even those the filter does
//! not use (callout streams, per-stream scheduler, watermarks); a missing one makes Envoy reject
//! the config. Two configuration-level hooks (config scheduler, config callouts) serve failover.

use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use crate::abi::{self, *};
use crate::filter::{
    copy_envoy_buffer, log, BodyStatus, CalloutResponse, CalloutResult, EnvoyConfigHandle,
    EnvoyFilterConfig, EnvoyHttpFilter, HeadersStatus, HttpFilter, HttpFilterConfig,
    LocalReplyStatus, LogLevel, TrailersStatus,
};

// ------------------------------------------------------------------------------------------
// Runtime
// ------------------------------------------------------------------------------------------

struct ConfigState {
    config: Box<dyn HttpFilterConfig>,
    /// Envoy's configuration object: valid until its destructor has called our destroy hook.
    envoy: abi::HttpFilterConfigEnvoyPtr,
}

struct FilterState {
    filter: Box<dyn HttpFilter>,
    /// Set after a panic: the stream got a 500 (if still possible) and the filter is bypassed.
    failed: bool,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Runs `f`; on panic logs and returns `fallback`. Never unwinds.
fn guard<R>(hook: &str, fallback: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = panic_message(p.as_ref());
            let _ =
                catch_unwind(|| log(LogLevel::Error, &format!("aiproxy: panic in {hook}: {msg}")));
            fallback
        }
    }
}

static ABI_VERSION_OVERRIDE: OnceLock<Option<CString>> = OnceLock::new();

/// Name of a diagnostic environment variable: when set, `on_program_init` reports its value as
/// the ABI version instead of [`abi::ABI_VERSION`] (used by the e2e test to probe which string
/// Envoy accepts without a warning).
pub const ABI_VERSION_OVERRIDE_ENV: &str = "AIPROXY_ENVOY_ABI_VERSION_OVERRIDE";

pub(crate) fn on_program_init() -> abi::AbiVersionModulePtr {
    guard("on_program_init", std::ptr::null(), || {
        let over = ABI_VERSION_OVERRIDE.get_or_init(|| {
            std::env::var(ABI_VERSION_OVERRIDE_ENV)
                .ok()
                .and_then(|v| CString::new(v).ok())
        });
        match over {
            Some(v) => v.as_ptr(),
            None => abi::ABI_VERSION.as_ptr(),
        }
    })
}

pub(crate) fn on_config_new(
    envoy_ptr: abi::HttpFilterConfigEnvoyPtr,
    name: abi::EnvoyBuffer,
    config: abi::EnvoyBuffer,
) -> abi::HttpFilterConfigModulePtr {
    guard("on_http_filter_config_new", std::ptr::null(), || {
        // SAFETY: both buffers are Envoy-owned and valid during this hook.
        let (name, config) = unsafe { (copy_envoy_buffer(&name), copy_envoy_buffer(&config)) };
        let name = String::from_utf8_lossy(&name);
        let mut handle = EnvoyFilterConfig::from_raw(envoy_ptr);
        match crate::new_filter_config(&mut handle, &name, &config) {
            Ok(config) => Box::into_raw(Box::new(ConfigState {
                config,
                envoy: envoy_ptr,
            })) as abi::HttpFilterConfigModulePtr,
            Err(e) => {
                log(
                    LogLevel::Error,
                    &format!("aiproxy: rejecting filter config {name:?}: {e}"),
                );
                std::ptr::null()
            }
        }
    })
}

pub(crate) fn on_config_destroy(ptr: abi::HttpFilterConfigModulePtr) {
    guard("on_http_filter_config_destroy", (), || {
        if !ptr.is_null() {
            // SAFETY: ptr came from Box::into_raw in on_config_new; Envoy destroys it once.
            let state = unsafe { Box::from_raw(ptr as *mut ConfigState) };
            // Envoy calls this hook from its configuration's destructor, whose stats scope is
            // still alive: the last counts can go out.
            state
                .config
                .on_destroy(&mut EnvoyConfigHandle::from_raw(state.envoy));
        }
    })
}

pub(crate) fn on_filter_new(
    config_ptr: abi::HttpFilterConfigModulePtr,
    _envoy_ptr: abi::HttpFilterEnvoyPtr,
) -> abi::HttpFilterModulePtr {
    guard("on_http_filter_new", std::ptr::null(), || {
        if config_ptr.is_null() {
            return std::ptr::null();
        }
        // SAFETY: config_ptr is a live ConfigState (Envoy keeps the config alive while streams
        // use it); HttpFilterConfig is Sync, so a shared reference across workers is fine.
        let state = unsafe { &*(config_ptr as *const ConfigState) };
        let filter = state.config.new_filter();
        Box::into_raw(Box::new(FilterState {
            filter,
            failed: false,
        })) as abi::HttpFilterModulePtr
    })
}

pub(crate) fn on_filter_destroy(ptr: abi::HttpFilterModulePtr) {
    guard("on_http_filter_destroy", (), || {
        if !ptr.is_null() {
            // SAFETY: ptr came from Box::into_raw in on_filter_new; Envoy destroys it once.
            drop(unsafe { Box::from_raw(ptr as *mut FilterState) });
        }
    })
}

/// Runs a per-stream hook: `pass` is returned for a missing/failed filter, `stop` after a panic
/// (which also sends a 500 local reply when `reply_on_panic`).
fn with_filter<R: Copy>(
    hook: &str,
    envoy_ptr: abi::HttpFilterEnvoyPtr,
    module_ptr: abi::HttpFilterModulePtr,
    pass: R,
    stop: R,
    reply_on_panic: bool,
    f: impl FnOnce(&mut dyn HttpFilter, &mut EnvoyHttpFilter) -> R,
) -> R {
    if module_ptr.is_null() || envoy_ptr.is_null() {
        return pass;
    }
    // SAFETY: module_ptr is a live FilterState; hooks of one stream run on one thread, one at a
    // time, so this is the only reference.
    let state = unsafe { &mut *(module_ptr as *mut FilterState) };
    if state.failed {
        return pass;
    }
    let mut envoy = EnvoyHttpFilter::from_raw(envoy_ptr);
    match catch_unwind(AssertUnwindSafe(|| f(state.filter.as_mut(), &mut envoy))) {
        Ok(r) => r,
        Err(p) => {
            state.failed = true;
            let msg = panic_message(p.as_ref());
            let _ = catch_unwind(AssertUnwindSafe(|| {
                log(LogLevel::Error, &format!("aiproxy: panic in {hook}: {msg}"));
                if reply_on_panic {
                    envoy.send_local_reply(
                        500,
                        &[("content-type", b"application/json")],
                        PANIC_REPLY_BODY,
                        Some("aiproxy_panic"),
                    );
                }
            }));
            if reply_on_panic {
                stop
            } else {
                pass
            }
        }
    }
}

/// Body of the 500 sent when a hook panics (OpenAI's error shape).
const PANIC_REPLY_BODY: &[u8] =
    br#"{"error":{"message":"aiproxy filter error","type":"server_error","param":null,"code":"internal_error"}}"#;

fn headers_raw(s: HeadersStatus) -> abi::HeadersStatusRaw {
    match s {
        HeadersStatus::Continue => abi::HEADERS_CONTINUE,
        HeadersStatus::StopIteration => abi::HEADERS_STOP_ITERATION,
        HeadersStatus::StopAllIterationAndBuffer => abi::HEADERS_STOP_ALL_ITERATION_AND_BUFFER,
    }
}

fn body_raw(s: BodyStatus) -> abi::BodyStatusRaw {
    match s {
        BodyStatus::Continue => abi::BODY_CONTINUE,
        BodyStatus::StopIterationAndBuffer => abi::BODY_STOP_ITERATION_AND_BUFFER,
        BodyStatus::StopIterationNoBuffer => abi::BODY_STOP_ITERATION_NO_BUFFER,
    }
}

fn trailers_raw(s: TrailersStatus) -> abi::TrailersStatusRaw {
    match s {
        TrailersStatus::Continue => abi::TRAILERS_CONTINUE,
        TrailersStatus::StopIteration => abi::TRAILERS_STOP_ITERATION,
    }
}

pub(crate) fn on_request_headers(
    e: abi::HttpFilterEnvoyPtr,
    m: abi::HttpFilterModulePtr,
    eos: bool,
) -> u32 {
    with_filter(
        "on_request_headers",
        e,
        m,
        abi::HEADERS_CONTINUE,
        abi::HEADERS_STOP_ITERATION,
        true,
        |f, env| headers_raw(f.on_request_headers(env, eos)),
    )
}

pub(crate) fn on_request_body(
    e: abi::HttpFilterEnvoyPtr,
    m: abi::HttpFilterModulePtr,
    eos: bool,
) -> u32 {
    with_filter(
        "on_request_body",
        e,
        m,
        abi::BODY_CONTINUE,
        abi::BODY_STOP_ITERATION_NO_BUFFER,
        true,
        |f, env| body_raw(f.on_request_body(env, eos)),
    )
}

pub(crate) fn on_request_trailers(e: abi::HttpFilterEnvoyPtr, m: abi::HttpFilterModulePtr) -> u32 {
    with_filter(
        "on_request_trailers",
        e,
        m,
        abi::TRAILERS_CONTINUE,
        abi::TRAILERS_STOP_ITERATION,
        true,
        |f, env| trailers_raw(f.on_request_trailers(env)),
    )
}

pub(crate) fn on_response_headers(
    e: abi::HttpFilterEnvoyPtr,
    m: abi::HttpFilterModulePtr,
    eos: bool,
) -> u32 {
    with_filter(
        "on_response_headers",
        e,
        m,
        abi::HEADERS_CONTINUE,
        abi::HEADERS_STOP_ITERATION,
        true,
        |f, env| headers_raw(f.on_response_headers(env, eos)),
    )
}

pub(crate) fn on_response_body(
    e: abi::HttpFilterEnvoyPtr,
    m: abi::HttpFilterModulePtr,
    eos: bool,
) -> u32 {
    with_filter(
        "on_response_body",
        e,
        m,
        abi::BODY_CONTINUE,
        abi::BODY_STOP_ITERATION_NO_BUFFER,
        true,
        |f, env| body_raw(f.on_response_body(env, eos)),
    )
}

pub(crate) fn on_response_trailers(e: abi::HttpFilterEnvoyPtr, m: abi::HttpFilterModulePtr) -> u32 {
    with_filter(
        "on_response_trailers",
        e,
        m,
        abi::TRAILERS_CONTINUE,
        abi::TRAILERS_STOP_ITERATION,
        true,
        |f, env| trailers_raw(f.on_response_trailers(env)),
    )
}

pub(crate) fn on_stream_complete(e: abi::HttpFilterEnvoyPtr, m: abi::HttpFilterModulePtr) {
    with_filter("on_stream_complete", e, m, (), (), false, |f, env| {
        f.on_stream_complete(env)
    })
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn on_callout_done(
    e: abi::HttpFilterEnvoyPtr,
    m: abi::HttpFilterModulePtr,
    callout_id: u64,
    result: abi::CalloutResultRaw,
    headers: *mut abi::EnvoyHttpHeader,
    headers_size: usize,
    body_chunks: *mut abi::EnvoyBuffer,
    body_chunks_size: usize,
) {
    with_filter("on_http_callout_done", e, m, (), (), true, |f, env| {
        // SAFETY: Envoy passes valid arrays of the given sizes for this hook.
        let response = unsafe {
            copy_callout_response(result, headers, headers_size, body_chunks, body_chunks_size)
        };
        f.on_callout_done(env, callout_id, response)
    })
}

pub(crate) fn on_local_reply(
    e: abi::HttpFilterEnvoyPtr,
    m: abi::HttpFilterModulePtr,
    status: u32,
    details: abi::EnvoyBuffer,
    reset_imminent: bool,
) -> u32 {
    // No local reply from inside the local-reply hook: a panic just lets the reply go on.
    with_filter(
        "on_local_reply",
        e,
        m,
        abi::LOCAL_REPLY_CONTINUE,
        abi::LOCAL_REPLY_CONTINUE,
        false,
        |f, env| {
            // SAFETY: Envoy-owned buffer valid during this hook.
            let details = unsafe { copy_envoy_buffer(&details) };
            match f.on_local_reply(
                env,
                status,
                &String::from_utf8_lossy(&details),
                reset_imminent,
            ) {
                LocalReplyStatus::Continue => abi::LOCAL_REPLY_CONTINUE,
                LocalReplyStatus::ContinueAndResetStream => {
                    abi::LOCAL_REPLY_CONTINUE_AND_RESET_STREAM
                }
            }
        },
    )
}

// ------------------------------------------------------------------------------------------
// Configuration-level hooks (failover health checks, on the main thread): the configuration
// scheduler's events and the answers to configuration-level callouts.
// ------------------------------------------------------------------------------------------

/// Copies a callout answer out of Envoy's buffers.
///
/// SAFETY: the pointers come from Envoy during the current hook, with the given sizes.
unsafe fn copy_callout_response(
    result: abi::CalloutResultRaw,
    headers: *mut abi::EnvoyHttpHeader,
    headers_size: usize,
    body_chunks: *mut abi::EnvoyBuffer,
    body_chunks_size: usize,
) -> CalloutResponse {
    let mut response = CalloutResponse {
        result: match result {
            abi::CALLOUT_SUCCESS => CalloutResult::Success,
            abi::CALLOUT_RESET => CalloutResult::Reset,
            abi::CALLOUT_EXCEED_RESPONSE_BUFFER_LIMIT => CalloutResult::ExceedResponseBufferLimit,
            other => CalloutResult::Other(other),
        },
        headers: Vec::new(),
        body: Vec::new(),
    };
    if !headers.is_null() {
        for h in std::slice::from_raw_parts(headers, headers_size) {
            response.headers.push((
                copy_envoy_buffer(&abi::EnvoyBuffer {
                    ptr: h.key_ptr,
                    length: h.key_length,
                }),
                copy_envoy_buffer(&abi::EnvoyBuffer {
                    ptr: h.value_ptr,
                    length: h.value_length,
                }),
            ));
        }
    }
    if !body_chunks.is_null() {
        for c in std::slice::from_raw_parts(body_chunks, body_chunks_size) {
            response.body.extend_from_slice(&copy_envoy_buffer(c));
        }
    }
    response
}

fn with_config(
    hook: &str,
    envoy_ptr: abi::HttpFilterConfigEnvoyPtr,
    module_ptr: abi::HttpFilterConfigModulePtr,
    f: impl FnOnce(&dyn HttpFilterConfig, &mut EnvoyConfigHandle),
) {
    guard(hook, (), || {
        if module_ptr.is_null() || envoy_ptr.is_null() {
            return;
        }
        // SAFETY: module_ptr is a live ConfigState (from on_config_new; Envoy runs config hooks
        // only while the configuration exists); shared access, as for worker threads.
        let state = unsafe { &*(module_ptr as *const ConfigState) };
        let mut handle = EnvoyConfigHandle::from_raw(envoy_ptr);
        f(state.config.as_ref(), &mut handle)
    })
}

pub(crate) fn on_config_scheduled(
    envoy_ptr: abi::HttpFilterConfigEnvoyPtr,
    module_ptr: abi::HttpFilterConfigModulePtr,
    event_id: u64,
) {
    with_config(
        "on_http_filter_config_scheduled",
        envoy_ptr,
        module_ptr,
        |c, h| c.on_scheduled(h, event_id),
    )
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn on_config_callout_done(
    envoy_ptr: abi::HttpFilterConfigEnvoyPtr,
    module_ptr: abi::HttpFilterConfigModulePtr,
    callout_id: u64,
    result: abi::CalloutResultRaw,
    headers: *mut abi::EnvoyHttpHeader,
    headers_size: usize,
    body_chunks: *mut abi::EnvoyBuffer,
    body_chunks_size: usize,
) {
    with_config(
        "on_http_filter_config_http_callout_done",
        envoy_ptr,
        module_ptr,
        |c, h| {
            // SAFETY: Envoy passes valid arrays of the given sizes for this hook.
            let response = unsafe {
                copy_callout_response(result, headers, headers_size, body_chunks, body_chunks_size)
            };
            c.on_callout_done(h, callout_id, response)
        },
    )
}

// ------------------------------------------------------------------------------------------
// Exported hooks. Each forwards to the runtime above, which catches panics.
// ------------------------------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> AbiVersionModulePtr {
    on_program_init()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    filter_config_envoy_ptr: HttpFilterConfigEnvoyPtr,
    name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> HttpFilterConfigModulePtr {
    on_config_new(filter_config_envoy_ptr, name, config)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(
    filter_config_ptr: HttpFilterConfigModulePtr,
) {
    on_config_destroy(filter_config_ptr)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    filter_config_ptr: HttpFilterConfigModulePtr,
    filter_envoy_ptr: HttpFilterEnvoyPtr,
) -> HttpFilterModulePtr {
    on_filter_new(filter_config_ptr, filter_envoy_ptr)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    filter_envoy_ptr: HttpFilterEnvoyPtr,
    filter_module_ptr: HttpFilterModulePtr,
    end_of_stream: bool,
) -> HeadersStatusRaw {
    on_request_headers(filter_envoy_ptr, filter_module_ptr, end_of_stream)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    filter_envoy_ptr: HttpFilterEnvoyPtr,
    filter_module_ptr: HttpFilterModulePtr,
    end_of_stream: bool,
) -> BodyStatusRaw {
    on_request_body(filter_envoy_ptr, filter_module_ptr, end_of_stream)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    filter_envoy_ptr: HttpFilterEnvoyPtr,
    filter_module_ptr: HttpFilterModulePtr,
) -> TrailersStatusRaw {
    on_request_trailers(filter_envoy_ptr, filter_module_ptr)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    filter_envoy_ptr: HttpFilterEnvoyPtr,
    filter_module_ptr: HttpFilterModulePtr,
    end_of_stream: bool,
) -> HeadersStatusRaw {
    on_response_headers(filter_envoy_ptr, filter_module_ptr, end_of_stream)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    filter_envoy_ptr: HttpFilterEnvoyPtr,
    filter_module_ptr: HttpFilterModulePtr,
    end_of_stream: bool,
) -> BodyStatusRaw {
    on_response_body(filter_envoy_ptr, filter_module_ptr, end_of_stream)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    filter_envoy_ptr: HttpFilterEnvoyPtr,
    filter_module_ptr: HttpFilterModulePtr,
) -> TrailersStatusRaw {
    on_response_trailers(filter_envoy_ptr, filter_module_ptr)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    filter_envoy_ptr: HttpFilterEnvoyPtr,
    filter_module_ptr: HttpFilterModulePtr,
) {
    on_stream_complete(filter_envoy_ptr, filter_module_ptr)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(
    filter_module_ptr: HttpFilterModulePtr,
) {
    on_filter_destroy(filter_module_ptr)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    filter_envoy_ptr: HttpFilterEnvoyPtr,
    filter_module_ptr: HttpFilterModulePtr,
    callout_id: u64,
    result: CalloutResultRaw,
    headers: *mut EnvoyHttpHeader,
    headers_size: usize,
    body_chunks: *mut EnvoyBuffer,
    body_chunks_size: usize,
) {
    on_callout_done(
        filter_envoy_ptr,
        filter_module_ptr,
        callout_id,
        result,
        headers,
        headers_size,
        body_chunks,
        body_chunks_size,
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_local_reply(
    filter_envoy_ptr: HttpFilterEnvoyPtr,
    filter_module_ptr: HttpFilterModulePtr,
    response_code: u32,
    details: EnvoyBuffer,
    reset_imminent: bool,
) -> LocalReplyStatusRaw {
    on_local_reply(
        filter_envoy_ptr,
        filter_module_ptr,
        response_code,
        details,
        reset_imminent,
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    filter_config_envoy_ptr: HttpFilterConfigEnvoyPtr,
    filter_config_ptr: HttpFilterConfigModulePtr,
    event_id: u64,
) {
    on_config_scheduled(filter_config_envoy_ptr, filter_config_ptr, event_id)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    filter_config_envoy_ptr: HttpFilterConfigEnvoyPtr,
    filter_config_ptr: HttpFilterConfigModulePtr,
    callout_id: u64,
    result: CalloutResultRaw,
    headers: *mut EnvoyHttpHeader,
    headers_size: usize,
    body_chunks: *mut EnvoyBuffer,
    body_chunks_size: usize,
) {
    on_config_callout_done(
        filter_config_envoy_ptr,
        filter_config_ptr,
        callout_id,
        result,
        headers,
        headers_size,
        body_chunks,
        body_chunks_size,
    )
}

// Required by Envoy 1.40 but unused by aiproxy: streamed callouts, the per-filter scheduler and
// downstream watermarks. They do nothing (no Rust code runs, so nothing can panic).

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _filter_envoy_ptr: HttpFilterEnvoyPtr,
    _filter_module_ptr: HttpFilterModulePtr,
    _stream_id: u64,
    _headers: *mut EnvoyHttpHeader,
    _headers_size: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _filter_envoy_ptr: HttpFilterEnvoyPtr,
    _filter_module_ptr: HttpFilterModulePtr,
    _stream_id: u64,
    _data: *const EnvoyBuffer,
    _data_count: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _filter_envoy_ptr: HttpFilterEnvoyPtr,
    _filter_module_ptr: HttpFilterModulePtr,
    _stream_id: u64,
    _trailers: *mut EnvoyHttpHeader,
    _trailers_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _filter_envoy_ptr: HttpFilterEnvoyPtr,
    _filter_module_ptr: HttpFilterModulePtr,
    _stream_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _filter_envoy_ptr: HttpFilterEnvoyPtr,
    _filter_module_ptr: HttpFilterModulePtr,
    _stream_id: u64,
    _reason: HttpStreamResetReason,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    _filter_envoy_ptr: HttpFilterEnvoyPtr,
    _filter_module_ptr: HttpFilterModulePtr,
    _event_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _filter_envoy_ptr: HttpFilterEnvoyPtr,
    _filter_module_ptr: HttpFilterModulePtr,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _filter_envoy_ptr: HttpFilterEnvoyPtr,
    _filter_module_ptr: HttpFilterModulePtr,
) {
}
