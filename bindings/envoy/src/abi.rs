//! Raw C ABI between Envoy 1.40.0 and this dynamic module.
//!
//! Only the part of Envoy's dynamic-module ABI (`source/extensions/dynamic_modules/abi/abi.h`)
//! that an HTTP filter needs is declared here, by hand, from the documented signatures:
//!
//! * **hooks** (`envoy_dynamic_module_on_*`): exported by this module (see [`crate::hooks`]);
//! * **callbacks** (`envoy_dynamic_module_callback_*`): exported by the envoy binary, resolved
//!   by the dynamic loader when Envoy `dlopen`s `libaiproxy_envoy.so`.
//!
//! Every callback declared in the `extern "C"` block below must exist in `nm -D` of the Envoy
//! 1.40.0 binary; `tests/e2e/envoy_abi/test_envoy_abi.py` checks that list against the binary.
//!
//! This file holds declarations only (types, constants, the callbacks' `extern "C"` block); the
//! hooks this module exports, and the runtime behind them, are in [`crate::hooks`].
#![allow(non_camel_case_types, dead_code)]

use std::ffi::{c_char, c_void, CStr};

/// ABI version string Envoy 1.40.0 was built with (`ENVOY_DYNAMIC_MODULES_ABI_VERSION`). Any
/// other string still loads, with a "Dynamic module ABI version {} is deprecated" warning.
pub const ABI_VERSION: &CStr = c"v0.2.0";

// ------------------------------------------------------------------------------------------
// Types
// ------------------------------------------------------------------------------------------

/// `envoy_dynamic_module_type_envoy_buffer`: bytes owned by Envoy, valid for the current hook.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EnvoyBuffer {
    pub ptr: *const c_char,
    pub length: usize,
}

impl EnvoyBuffer {
    pub const fn null() -> Self {
        EnvoyBuffer {
            ptr: std::ptr::null(),
            length: 0,
        }
    }
}

/// `envoy_dynamic_module_type_module_buffer`: bytes owned by the module, read during the call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ModuleBuffer {
    pub ptr: *const c_char,
    pub length: usize,
}

impl ModuleBuffer {
    pub fn from_bytes(b: &[u8]) -> Self {
        ModuleBuffer {
            ptr: b.as_ptr().cast(),
            length: b.len(),
        }
    }
    /// A null buffer: "no value" (e.g. removes a header in `http_set_header`).
    pub const fn null() -> Self {
        ModuleBuffer {
            ptr: std::ptr::null(),
            length: 0,
        }
    }
}

/// `envoy_dynamic_module_type_module_key_value_pair`: a key and a value, both owned by the module.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ModuleKeyValue {
    pub key: ModuleBuffer,
    pub value: ModuleBuffer,
}

/// `envoy_dynamic_module_type_module_http_header`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ModuleHttpHeader {
    pub key_ptr: *const c_char,
    pub key_length: usize,
    pub value_ptr: *const c_char,
    pub value_length: usize,
}

/// `envoy_dynamic_module_type_envoy_http_header`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EnvoyHttpHeader {
    pub key_ptr: *const c_char,
    pub key_length: usize,
    pub value_ptr: *const c_char,
    pub value_length: usize,
}

pub type HttpFilterConfigEnvoyPtr = *mut c_void;
pub type HttpFilterConfigModulePtr = *const c_void;
pub type HttpFilterEnvoyPtr = *mut c_void;
pub type HttpFilterModulePtr = *const c_void;
pub type AbiVersionModulePtr = *const c_char;
/// `envoy_dynamic_module_type_http_filter_config_scheduler_module_ptr`.
pub type HttpFilterConfigSchedulerPtr = *mut c_void;

// C enums are `int`-sized; they cross the boundary as u32 so that an enumerator this module does
// not know (appended by a later Envoy) is never undefined behaviour on the Rust side.

/// `envoy_dynamic_module_type_http_header_type`
pub type HttpHeaderType = u32;
pub const HEADER_REQUEST: HttpHeaderType = 0;
pub const HEADER_REQUEST_TRAILER: HttpHeaderType = 1;
pub const HEADER_RESPONSE: HttpHeaderType = 2;
pub const HEADER_RESPONSE_TRAILER: HttpHeaderType = 3;

/// `envoy_dynamic_module_type_http_body_type`
pub type HttpBodyType = u32;
pub const BODY_RECEIVED_REQUEST: HttpBodyType = 0;
pub const BODY_BUFFERED_REQUEST: HttpBodyType = 1;
pub const BODY_RECEIVED_RESPONSE: HttpBodyType = 2;
pub const BODY_BUFFERED_RESPONSE: HttpBodyType = 3;

/// `envoy_dynamic_module_type_log_level`
pub type LogLevel = u32;
pub const LOG_TRACE: LogLevel = 0;
pub const LOG_DEBUG: LogLevel = 1;
pub const LOG_INFO: LogLevel = 2;
pub const LOG_WARN: LogLevel = 3;
pub const LOG_ERROR: LogLevel = 4;
pub const LOG_CRITICAL: LogLevel = 5;

/// `envoy_dynamic_module_type_on_http_filter_{request,response}_headers_status`
pub type HeadersStatusRaw = u32;
pub const HEADERS_CONTINUE: HeadersStatusRaw = 0;
pub const HEADERS_STOP_ITERATION: HeadersStatusRaw = 1;
pub const HEADERS_CONTINUE_AND_DONT_END_STREAM: HeadersStatusRaw = 2;
pub const HEADERS_STOP_ALL_ITERATION_AND_BUFFER: HeadersStatusRaw = 3;
pub const HEADERS_STOP_ALL_ITERATION_AND_WATERMARK: HeadersStatusRaw = 4;

/// `envoy_dynamic_module_type_on_http_filter_{request,response}_body_status`
pub type BodyStatusRaw = u32;
pub const BODY_CONTINUE: BodyStatusRaw = 0;
pub const BODY_STOP_ITERATION_AND_BUFFER: BodyStatusRaw = 1;
pub const BODY_STOP_ITERATION_AND_WATERMARK: BodyStatusRaw = 2;
pub const BODY_STOP_ITERATION_NO_BUFFER: BodyStatusRaw = 3;

/// `envoy_dynamic_module_type_on_http_filter_{request,response}_trailers_status`
pub type TrailersStatusRaw = u32;
pub const TRAILERS_CONTINUE: TrailersStatusRaw = 0;
pub const TRAILERS_STOP_ITERATION: TrailersStatusRaw = 1;

/// `envoy_dynamic_module_type_on_http_filter_local_reply_status`
pub type LocalReplyStatusRaw = u32;
pub const LOCAL_REPLY_CONTINUE: LocalReplyStatusRaw = 0;
pub const LOCAL_REPLY_CONTINUE_AND_RESET_STREAM: LocalReplyStatusRaw = 1;

/// `envoy_dynamic_module_type_metrics_result`
pub type MetricsResult = u32;
pub const METRICS_SUCCESS: MetricsResult = 0;
pub const METRICS_NOT_FOUND: MetricsResult = 1;
pub const METRICS_INVALID_LABELS: MetricsResult = 2;
pub const METRICS_FROZEN: MetricsResult = 3;

/// `envoy_dynamic_module_type_http_callout_init_result`
pub type CalloutInitResult = u32;
pub const CALLOUT_INIT_SUCCESS: CalloutInitResult = 0;
pub const CALLOUT_INIT_MISSING_REQUIRED_HEADERS: CalloutInitResult = 1;
pub const CALLOUT_INIT_CLUSTER_NOT_FOUND: CalloutInitResult = 2;
pub const CALLOUT_INIT_DUPLICATE_CALLOUT_ID: CalloutInitResult = 3;
pub const CALLOUT_INIT_CANNOT_CREATE_REQUEST: CalloutInitResult = 4;

/// `envoy_dynamic_module_type_http_callout_result`
pub type CalloutResultRaw = u32;
pub const CALLOUT_SUCCESS: CalloutResultRaw = 0;
pub const CALLOUT_RESET: CalloutResultRaw = 1;
pub const CALLOUT_EXCEED_RESPONSE_BUFFER_LIMIT: CalloutResultRaw = 2;

/// `envoy_dynamic_module_type_http_stream_reset_reason` (callout streams; unused).
pub type HttpStreamResetReason = u32;

// ------------------------------------------------------------------------------------------
// Callbacks: implemented by the envoy binary.
// ------------------------------------------------------------------------------------------

extern "C" {
    // ---- logging ([dynamic_modules] logger id). `callback_log` (v1) is deprecated in 1.40.
    pub fn envoy_dynamic_module_callback_log_v2(
        level: LogLevel,
        message: ModuleBuffer,
        source_file: ModuleBuffer,
        source_line: u32,
    );
    pub fn envoy_dynamic_module_callback_log_enabled(level: LogLevel) -> bool;

    // ---- headers / trailers
    pub fn envoy_dynamic_module_callback_http_get_header(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        header_type: HttpHeaderType,
        key: ModuleBuffer,
        result_buffer: *mut EnvoyBuffer,
        index: usize,
        optional_size: *mut usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_headers_size(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        header_type: HttpHeaderType,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        header_type: HttpHeaderType,
        result_headers: *mut EnvoyHttpHeader,
    ) -> bool;
    /// Replaces all values of `key`; a null `value` removes the header.
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        header_type: HttpHeaderType,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_add_header(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        header_type: HttpHeaderType,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;

    // ---- local reply
    pub fn envoy_dynamic_module_callback_http_send_response(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        status_code: u32,
        headers_vector: *mut ModuleHttpHeader,
        headers_vector_size: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );

    /// Sends response data downstream through the encoder chain (used to end a stream whose
    /// upstream reset after the headers went out).
    pub fn envoy_dynamic_module_callback_http_send_response_data(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        data: ModuleBuffer,
        end_stream: bool,
    );

    // ---- bodies (received = the chunk of the current body hook; buffered = what earlier
    // StopIterationAndBuffer returns accumulated)
    pub fn envoy_dynamic_module_callback_http_get_body_size(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        body_type: HttpBodyType,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        body_type: HttpBodyType,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        body_type: HttpBodyType,
        result_buffer_vector: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_append_body(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        body_type: HttpBodyType,
        data: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_drain_body(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        body_type: HttpBodyType,
        number_of_bytes: usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_received_buffered_request_body(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_received_buffered_response_body(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_buffer_limit(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
    ) -> u64;
    pub fn envoy_dynamic_module_callback_http_set_buffer_limit(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        limit: u64,
    );

    // ---- routing / flow control
    pub fn envoy_dynamic_module_callback_http_clear_route_cache(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
    );
    pub fn envoy_dynamic_module_callback_http_filter_continue_decoding(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
    );
    pub fn envoy_dynamic_module_callback_http_filter_continue_encoding(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
    );

    // ---- dynamic metadata
    pub fn envoy_dynamic_module_callback_http_set_dynamic_metadata_string(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        ns: ModuleBuffer,
        key: ModuleBuffer,
        value: ModuleBuffer,
    );
    pub fn envoy_dynamic_module_callback_http_set_dynamic_metadata_number(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        ns: ModuleBuffer,
        key: ModuleBuffer,
        value: f64,
    );
    /// Sets several string values of namespace `ns` (created if absent) in one call: Envoy
    /// resolves the namespace and merges once, where the per-key setter above does both per key.
    /// Each key replaces that key's value, as the per-key setter does.
    pub fn envoy_dynamic_module_callback_http_set_dynamic_metadata_string_batch(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        ns: ModuleBuffer,
        entries: *const ModuleKeyValue,
        entries_length: usize,
    );

    // ---- metrics (define only inside on_http_filter_config_new: stat creation freezes after)
    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        filter_config_envoy_ptr: HttpFilterConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        counter_id_ptr: *mut usize,
    ) -> MetricsResult;
    pub fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> MetricsResult;
    /// As above, with the configuration's pointer: for configuration-level hooks.
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        filter_config_envoy_ptr: HttpFilterConfigEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> MetricsResult;

    // ---- one-shot HTTP callout; answer arrives in on_http_filter_http_callout_done
    pub fn envoy_dynamic_module_callback_http_filter_http_callout(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        callout_id_out: *mut u64,
        cluster_name: ModuleBuffer,
        headers: *mut ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        timeout_milliseconds: u64,
    ) -> CalloutInitResult;

    // ---- failover and retries: gauges, the route's cluster (retry callouts), and the
    // configuration scheduler + configuration-level callouts (health checks, on the main thread)
    pub fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
        filter_config_envoy_ptr: HttpFilterConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        gauge_id_ptr: *mut usize,
    ) -> MetricsResult;
    pub fn envoy_dynamic_module_callback_http_filter_set_gauge(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> MetricsResult;
    pub fn envoy_dynamic_module_callback_http_get_cluster_name(
        filter_envoy_ptr: HttpFilterEnvoyPtr,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        filter_config_envoy_ptr: HttpFilterConfigEnvoyPtr,
    ) -> HttpFilterConfigSchedulerPtr;
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
        scheduler: HttpFilterConfigSchedulerPtr,
    );
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: HttpFilterConfigSchedulerPtr,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        filter_config_envoy_ptr: HttpFilterConfigEnvoyPtr,
        callout_id_out: *mut u64,
        cluster_name: ModuleBuffer,
        headers: *mut ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        timeout_milliseconds: u64,
    ) -> CalloutInitResult;
}

/// Unit tests run without Envoy: the Envoy functions the tested code can reach (dropping or
/// committing a configuration scheduler) are defined here as no-ops so the test binary links.
#[cfg(test)]
mod test_doubles {
    use super::HttpFilterConfigSchedulerPtr;

    #[no_mangle]
    extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        _scheduler: HttpFilterConfigSchedulerPtr,
        _event_id: u64,
    ) {
    }

    #[no_mangle]
    extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
        _scheduler: HttpFilterConfigSchedulerPtr,
    ) {
    }
}
