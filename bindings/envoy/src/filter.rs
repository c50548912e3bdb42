//! Safe wrapper over [`crate::abi`]: the [`HttpFilterConfig`] / [`HttpFilter`] traits a filter
//! implements, the [`EnvoyHttpFilter`] handle it talks to Envoy through, and the hook runtime
//! that owns module-side objects and stops every panic at the FFI boundary.
//!
//! Lifetimes: an [`EnvoyHttpFilter`] only exists for the duration of one hook call (it is handed
//! out as `&mut` and is neither `Clone` nor `Send`), which is exactly how long Envoy guarantees
//! the `filter_envoy_ptr` and every Envoy-owned buffer it returns. Everything read from Envoy is
//! copied into owned `Vec`s before the hook returns.
//!
//! Body model of Envoy 1.40 (per direction):
//! * the **received** body is the data frame of the current `on_*_body` hook; it can be read,
//!   drained and appended to in place, and whatever it holds when the hook returns `Continue` is
//!   what flows on. This is how a streamed response chunk is replaced as it passes.
//! * the **buffered** body is what earlier `StopIterationAndBuffer` returns accumulated. At
//!   `end_of_stream`, the whole body is buffered + received (unless Envoy re-delivers the buffer
//!   itself as the received data, which `received_buffered_*_body` reports).

use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use crate::abi;

// ------------------------------------------------------------------------------------------
// Public types
// ------------------------------------------------------------------------------------------

/// Result of a headers hook (Envoy's `FilterHeadersStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadersStatus {
    Continue,
    /// Hold the headers (they stay mutable) until a later hook returns `Continue`.
    StopIteration,
    /// Hold headers and buffer the body until `continue_decoding`/`continue_encoding`.
    StopAllIterationAndBuffer,
}

/// Result of a body hook (Envoy's `FilterDataStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyStatus {
    Continue,
    /// Keep this chunk in the buffered body and wait for more (request-body accumulation).
    StopIterationAndBuffer,
    /// Hold without buffering (e.g. waiting for a callout); resume with `continue_*`.
    StopIterationNoBuffer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrailersStatus {
    Continue,
    StopIteration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalReplyStatus {
    Continue,
    ContinueAndResetStream,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl LogLevel {
    fn raw(self) -> abi::LogLevel {
        match self {
            LogLevel::Trace => abi::LOG_TRACE,
            LogLevel::Debug => abi::LOG_DEBUG,
            LogLevel::Info => abi::LOG_INFO,
            LogLevel::Warn => abi::LOG_WARN,
            LogLevel::Error => abi::LOG_ERROR,
            LogLevel::Critical => abi::LOG_CRITICAL,
        }
    }
}

/// Which direction of the stream a header/body call addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

/// An owned header list.
pub type Headers = Vec<(Vec<u8>, Vec<u8>)>;

/// A counter defined in [`EnvoyFilterConfig::define_counter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterId(usize);

/// A labelled counter family defined in [`EnvoyFilterConfig::define_counter_vec`]; each
/// increment names one value per label, in the order the labels were defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterVecId {
    id: usize,
    labels: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsError {
    NotFound,
    InvalidLabels,
    /// Stats can only be defined inside `HttpFilterConfig` creation.
    Frozen,
    Other(u32),
}

fn metrics_result(r: abi::MetricsResult) -> Result<(), MetricsError> {
    match r {
        abi::METRICS_SUCCESS => Ok(()),
        abi::METRICS_NOT_FOUND => Err(MetricsError::NotFound),
        abi::METRICS_INVALID_LABELS => Err(MetricsError::InvalidLabels),
        abi::METRICS_FROZEN => Err(MetricsError::Frozen),
        other => Err(MetricsError::Other(other)),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalloutError {
    MissingRequiredHeaders,
    ClusterNotFound,
    DuplicateCalloutId,
    CannotCreateRequest,
    Other(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalloutResult {
    Success,
    Reset,
    ExceedResponseBufferLimit,
    Other(u32),
}

/// The answer to [`EnvoyHttpFilter::callout`], copied out of Envoy.
#[derive(Clone, Debug)]
pub struct CalloutResponse {
    pub result: CalloutResult,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl CalloutResponse {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }
}

// ------------------------------------------------------------------------------------------
// Traits implemented by the filter
// ------------------------------------------------------------------------------------------

/// One per Envoy filter configuration; shared by all worker threads.
pub trait HttpFilterConfig: Send + Sync + 'static {
    /// Called for each HTTP stream, on the worker thread that serves it.
    fn new_filter(&self) -> Box<dyn HttpFilter>;
    /// An event committed with [`ConfigScheduler::commit`], on the main thread.
    fn on_scheduled(&self, _envoy: &mut EnvoyConfigHandle, _event_id: u64) {}
    /// The answer to [`EnvoyConfigHandle::callout`], on the main thread.
    fn on_callout_done(
        &self,
        _envoy: &mut EnvoyConfigHandle,
        _callout_id: u64,
        _response: CalloutResponse,
    ) {
    }
}

/// One per HTTP stream. Every method has a pass-through default.
#[allow(unused_variables)]
pub trait HttpFilter: 'static {
    fn on_request_headers(
        &mut self,
        envoy: &mut EnvoyHttpFilter,
        end_of_stream: bool,
    ) -> HeadersStatus {
        HeadersStatus::Continue
    }
    fn on_request_body(&mut self, envoy: &mut EnvoyHttpFilter, end_of_stream: bool) -> BodyStatus {
        BodyStatus::Continue
    }
    fn on_request_trailers(&mut self, envoy: &mut EnvoyHttpFilter) -> TrailersStatus {
        TrailersStatus::Continue
    }
    fn on_response_headers(
        &mut self,
        envoy: &mut EnvoyHttpFilter,
        end_of_stream: bool,
    ) -> HeadersStatus {
        HeadersStatus::Continue
    }
    fn on_response_body(&mut self, envoy: &mut EnvoyHttpFilter, end_of_stream: bool) -> BodyStatus {
        BodyStatus::Continue
    }
    fn on_response_trailers(&mut self, envoy: &mut EnvoyHttpFilter) -> TrailersStatus {
        TrailersStatus::Continue
    }
    fn on_stream_complete(&mut self, envoy: &mut EnvoyHttpFilter) {}
    fn on_callout_done(
        &mut self,
        envoy: &mut EnvoyHttpFilter,
        callout_id: u64,
        response: CalloutResponse,
    ) {
    }
    fn on_local_reply(
        &mut self,
        envoy: &mut EnvoyHttpFilter,
        status: u32,
        details: &str,
        reset_imminent: bool,
    ) -> LocalReplyStatus {
        LocalReplyStatus::Continue
    }
}

// ------------------------------------------------------------------------------------------
// Handles
// ------------------------------------------------------------------------------------------

/// Envoy's side of a filter configuration, valid during `HttpFilterConfig` creation.
pub struct EnvoyFilterConfig {
    ptr: abi::HttpFilterConfigEnvoyPtr,
    _not_send: PhantomData<*mut ()>,
}

impl EnvoyFilterConfig {
    /// Defines a label-less counter. Envoy exposes it as `<metrics_namespace>.<name>`
    /// (namespace default: `dynamicmodulescustom`).
    pub fn define_counter(&mut self, name: &str) -> Result<CounterId, MetricsError> {
        let mut id: usize = 0;
        // SAFETY: ptr is the live config pointer of the current config_new hook; `name` outlives
        // the call; no labels (null, 0) is allowed.
        let r = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_define_counter(
                self.ptr,
                abi::ModuleBuffer::from_bytes(name.as_bytes()),
                std::ptr::null_mut(),
                0,
                &mut id,
            )
        };
        metrics_result(r).map(|()| CounterId(id))
    }

    /// Defines a counter with labels (Envoy tags): `<namespace>.<name>` with one tag per label,
    /// shown as Prometheus labels by `/stats/prometheus`.
    pub fn define_counter_vec(
        &mut self,
        name: &str,
        labels: &[&str],
    ) -> Result<CounterVecId, MetricsError> {
        let mut names: Vec<abi::ModuleBuffer> = labels
            .iter()
            .map(|l| abi::ModuleBuffer::from_bytes(l.as_bytes()))
            .collect();
        let mut id: usize = 0;
        // SAFETY: ptr is the live config pointer of the current config_new hook; `name` and the
        // label buffers outlive the call (Envoy copies them into its stat name pool).
        let r = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_define_counter(
                self.ptr,
                abi::ModuleBuffer::from_bytes(name.as_bytes()),
                if names.is_empty() {
                    std::ptr::null_mut()
                } else {
                    names.as_mut_ptr()
                },
                names.len(),
                &mut id,
            )
        };
        metrics_result(r).map(|()| CounterVecId {
            id,
            labels: labels.len(),
        })
    }
}

/// Envoy's side of one HTTP stream, valid during one hook call.
pub struct EnvoyHttpFilter {
    ptr: abi::HttpFilterEnvoyPtr,
    _not_send: PhantomData<*mut ()>,
}

fn header_type(d: Direction) -> abi::HttpHeaderType {
    match d {
        Direction::Request => abi::HEADER_REQUEST,
        Direction::Response => abi::HEADER_RESPONSE,
    }
}

fn received(d: Direction) -> abi::HttpBodyType {
    match d {
        Direction::Request => abi::BODY_RECEIVED_REQUEST,
        Direction::Response => abi::BODY_RECEIVED_RESPONSE,
    }
}

fn buffered(d: Direction) -> abi::HttpBodyType {
    match d {
        Direction::Request => abi::BODY_BUFFERED_REQUEST,
        Direction::Response => abi::BODY_BUFFERED_RESPONSE,
    }
}

/// Copies an Envoy-owned buffer.
///
/// SAFETY: `b` must come from Envoy during the current hook (valid ptr/length, or null).
unsafe fn copy_envoy_buffer(b: &abi::EnvoyBuffer) -> Vec<u8> {
    if b.ptr.is_null() || b.length == 0 {
        Vec::new()
    } else {
        std::slice::from_raw_parts(b.ptr.cast::<u8>(), b.length).to_vec()
    }
}

fn module_headers(headers: &[(&str, &[u8])]) -> Vec<abi::ModuleHttpHeader> {
    headers
        .iter()
        .map(|(k, v)| abi::ModuleHttpHeader {
            key_ptr: k.as_ptr().cast(),
            key_length: k.len(),
            value_ptr: v.as_ptr().cast(),
            value_length: v.len(),
        })
        .collect()
}

impl EnvoyHttpFilter {
    // ---------------------------------------------------------------- headers (generic)

    /// All values of header `name` (lower-case names; pseudo-headers such as `:path` included).
    pub fn header_values(&self, dir: Direction, name: &str) -> Vec<Vec<u8>> {
        let key = abi::ModuleBuffer::from_bytes(name.as_bytes());
        let mut out = Vec::new();
        let mut count: usize = 0;
        let mut buf = abi::EnvoyBuffer::null();
        // SAFETY: live filter ptr; key/out pointers valid for the call.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_get_header(
                self.ptr,
                header_type(dir),
                key,
                &mut buf,
                0,
                &mut count,
            )
        };
        if !ok || count == 0 {
            return out;
        }
        // SAFETY: buffer returned by Envoy during this hook.
        out.push(unsafe { copy_envoy_buffer(&buf) });
        for i in 1..count {
            let mut buf = abi::EnvoyBuffer::null();
            // SAFETY: as above; optional_size may be null.
            let ok = unsafe {
                abi::envoy_dynamic_module_callback_http_get_header(
                    self.ptr,
                    header_type(dir),
                    key,
                    &mut buf,
                    i,
                    std::ptr::null_mut(),
                )
            };
            if ok && !buf.ptr.is_null() {
                // SAFETY: as above.
                out.push(unsafe { copy_envoy_buffer(&buf) });
            }
        }
        out
    }

    /// First value of header `name`.
    pub fn header(&self, dir: Direction, name: &str) -> Option<Vec<u8>> {
        self.header_values(dir, name).into_iter().next()
    }

    /// The whole header map, in order.
    pub fn headers(&self, dir: Direction) -> Headers {
        // SAFETY: live filter ptr.
        let n = unsafe {
            abi::envoy_dynamic_module_callback_http_get_headers_size(self.ptr, header_type(dir))
        };
        if n == 0 {
            return Vec::new();
        }
        let mut raw = vec![
            abi::EnvoyHttpHeader {
                key_ptr: std::ptr::null(),
                key_length: 0,
                value_ptr: std::ptr::null(),
                value_length: 0,
            };
            n
        ];
        // SAFETY: `raw` has room for the `n` entries Envoy just reported.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_get_headers(
                self.ptr,
                header_type(dir),
                raw.as_mut_ptr(),
            )
        };
        if !ok {
            return Vec::new();
        }
        raw.iter()
            .map(|h| {
                // SAFETY: Envoy-owned buffers valid during this hook.
                unsafe {
                    (
                        copy_envoy_buffer(&abi::EnvoyBuffer {
                            ptr: h.key_ptr,
                            length: h.key_length,
                        }),
                        copy_envoy_buffer(&abi::EnvoyBuffer {
                            ptr: h.value_ptr,
                            length: h.value_length,
                        }),
                    )
                }
            })
            .collect()
    }

    /// Replaces every value of `name` with `value` (creates the header if absent).
    pub fn set_header(&mut self, dir: Direction, name: &str, value: impl AsRef<[u8]>) -> bool {
        let value = value.as_ref();
        // SAFETY: live filter ptr; buffers valid for the call.
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_header(
                self.ptr,
                header_type(dir),
                abi::ModuleBuffer::from_bytes(name.as_bytes()),
                abi::ModuleBuffer::from_bytes(value),
            )
        }
    }

    /// Appends one more value of `name`.
    pub fn add_header(&mut self, dir: Direction, name: &str, value: impl AsRef<[u8]>) -> bool {
        let value = value.as_ref();
        // SAFETY: as in set_header.
        unsafe {
            abi::envoy_dynamic_module_callback_http_add_header(
                self.ptr,
                header_type(dir),
                abi::ModuleBuffer::from_bytes(name.as_bytes()),
                abi::ModuleBuffer::from_bytes(value),
            )
        }
    }

    /// Removes every value of `name`.
    pub fn remove_header(&mut self, dir: Direction, name: &str) -> bool {
        // SAFETY: a null value buffer means "remove" in this callback.
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_header(
                self.ptr,
                header_type(dir),
                abi::ModuleBuffer::from_bytes(name.as_bytes()),
                abi::ModuleBuffer::null(),
            )
        }
    }

    // ---------------------------------------------------------------- headers (shorthands)

    pub fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.header(Direction::Request, name)
    }
    /// First value as UTF-8 text (None if absent or not UTF-8).
    pub fn request_header_str(&self, name: &str) -> Option<String> {
        self.request_header(name)
            .and_then(|v| String::from_utf8(v).ok())
    }
    pub fn request_headers(&self) -> Headers {
        self.headers(Direction::Request)
    }
    pub fn set_request_header(&mut self, name: &str, value: impl AsRef<[u8]>) -> bool {
        self.set_header(Direction::Request, name, value)
    }
    pub fn remove_request_header(&mut self, name: &str) -> bool {
        self.remove_header(Direction::Request, name)
    }
    pub fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        self.header(Direction::Response, name)
    }
    pub fn response_headers(&self) -> Headers {
        self.headers(Direction::Response)
    }
    pub fn set_response_header(&mut self, name: &str, value: impl AsRef<[u8]>) -> bool {
        self.set_header(Direction::Response, name, value)
    }
    pub fn remove_response_header(&mut self, name: &str) -> bool {
        self.remove_header(Direction::Response, name)
    }

    // ---------------------------------------------------------------- bodies

    fn read_body(&self, body_type: abi::HttpBodyType) -> Vec<u8> {
        // SAFETY: live filter ptr.
        let n = unsafe {
            abi::envoy_dynamic_module_callback_http_get_body_chunks_size(self.ptr, body_type)
        };
        if n == 0 {
            return Vec::new();
        }
        // SAFETY: live filter ptr.
        let total =
            unsafe { abi::envoy_dynamic_module_callback_http_get_body_size(self.ptr, body_type) };
        let mut chunks = vec![abi::EnvoyBuffer::null(); n];
        // SAFETY: `chunks` has room for the `n` slices Envoy just reported.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_get_body_chunks(
                self.ptr,
                body_type,
                chunks.as_mut_ptr(),
            )
        };
        if !ok {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(total);
        for c in &chunks {
            if !c.ptr.is_null() && c.length > 0 {
                // SAFETY: Envoy-owned slices valid during this hook.
                out.extend_from_slice(unsafe {
                    std::slice::from_raw_parts(c.ptr.cast::<u8>(), c.length)
                });
            }
        }
        out
    }

    fn body_size(&self, body_type: abi::HttpBodyType) -> usize {
        // SAFETY: live filter ptr.
        unsafe { abi::envoy_dynamic_module_callback_http_get_body_size(self.ptr, body_type) }
    }

    fn drain_all(&mut self, body_type: abi::HttpBodyType) -> bool {
        let n = self.body_size(body_type);
        // SAFETY: live filter ptr. Returns false if that body does not exist (yet).
        unsafe { abi::envoy_dynamic_module_callback_http_drain_body(self.ptr, body_type, n) }
    }

    fn append(&mut self, body_type: abi::HttpBodyType, data: &[u8]) -> bool {
        // SAFETY: live filter ptr; data valid for the call (Envoy copies it).
        unsafe {
            abi::envoy_dynamic_module_callback_http_append_body(
                self.ptr,
                body_type,
                abi::ModuleBuffer::from_bytes(data),
            )
        }
    }

    fn received_is_buffered(&self, dir: Direction) -> bool {
        // SAFETY: live filter ptr.
        unsafe {
            match dir {
                Direction::Request => {
                    abi::envoy_dynamic_module_callback_http_received_buffered_request_body(self.ptr)
                }
                Direction::Response => {
                    abi::envoy_dynamic_module_callback_http_received_buffered_response_body(
                        self.ptr,
                    )
                }
            }
        }
    }

    /// The data frame of the current body hook (empty outside body hooks).
    pub fn received_body(&self, dir: Direction) -> Vec<u8> {
        self.read_body(received(dir))
    }

    /// Replaces the data frame of the current body hook in place: what it holds when the hook
    /// returns `Continue` is what flows on. Returns false outside a body hook.
    pub fn replace_received_body(&mut self, dir: Direction, data: &[u8]) -> bool {
        if !self.drain_all(received(dir)) {
            return false;
        }
        data.is_empty() || self.append(received(dir), data)
    }

    /// Everything of this direction's body seen so far: buffered (earlier chunks held with
    /// `StopIterationAndBuffer`) followed by the current chunk.
    pub fn body(&self, dir: Direction) -> Vec<u8> {
        let mut out = self.read_body(buffered(dir));
        if !self.received_is_buffered(dir) {
            out.extend_from_slice(&self.read_body(received(dir)));
        }
        out
    }

    /// Replaces the whole body of this direction (buffered + current chunk). Inside a body hook
    /// the new bytes go into the current chunk; otherwise into the buffered body. The caller
    /// adjusts `content-length` (see [`Self::set_request_body`]).
    pub fn set_body(&mut self, dir: Direction, data: &[u8]) -> bool {
        let in_body_hook = self.drain_all(received(dir));
        self.drain_all(buffered(dir));
        if data.is_empty() {
            return true;
        }
        if in_body_hook {
            self.append(received(dir), data)
        } else {
            self.append(buffered(dir), data)
        }
    }

    /// The request body accumulated so far (whole body at `end_of_stream` when earlier chunks
    /// returned `StopIterationAndBuffer`).
    pub fn request_body(&self) -> Vec<u8> {
        self.body(Direction::Request)
    }

    /// Replaces the whole request body and sets `content-length` to match. Call it from
    /// `on_request_body(end_of_stream = true)` while the headers are still held
    /// (`on_request_headers` returned `StopIteration`).
    pub fn set_request_body(&mut self, data: &[u8]) -> bool {
        let ok = self.set_body(Direction::Request, data);
        self.set_request_header("content-length", data.len().to_string());
        ok
    }

    /// The response chunk passing through the current `on_response_body` call.
    pub fn response_chunk(&self) -> Vec<u8> {
        self.received_body(Direction::Response)
    }

    /// Replaces the response chunk passing through the current `on_response_body` call.
    pub fn replace_response_chunk(&mut self, data: &[u8]) -> bool {
        self.replace_received_body(Direction::Response, data)
    }

    /// Sends `data` downstream as response body outside a body hook (the response headers must
    /// already be out), ending the stream when `end_stream`.
    pub fn send_response_data(&mut self, data: &[u8], end_stream: bool) {
        // SAFETY: live filter ptr; Envoy copies the buffer during the call.
        unsafe {
            abi::envoy_dynamic_module_callback_http_send_response_data(
                self.ptr,
                abi::ModuleBuffer::from_bytes(data),
                end_stream,
            )
        }
    }

    /// Current per-stream buffer limit (bytes; 0 = none).
    pub fn buffer_limit(&self) -> u64 {
        // SAFETY: live filter ptr.
        unsafe { abi::envoy_dynamic_module_callback_http_get_buffer_limit(self.ptr) }
    }

    /// Raises the per-stream buffer limit, e.g. to buffer a large request body.
    pub fn set_buffer_limit(&mut self, limit: u64) {
        // SAFETY: live filter ptr.
        unsafe { abi::envoy_dynamic_module_callback_http_set_buffer_limit(self.ptr, limit) }
    }

    // ---------------------------------------------------------------- control

    /// Sends a local reply downstream (the upstream request, if any, is abandoned).
    /// Return `StopIteration` from the current hook afterwards.
    pub fn send_local_reply(
        &mut self,
        status: u32,
        headers: &[(&str, &[u8])],
        body: &[u8],
        details: Option<&str>,
    ) {
        let mut hs = module_headers(headers);
        let details = details
            .map(|d| abi::ModuleBuffer::from_bytes(d.as_bytes()))
            .unwrap_or(abi::ModuleBuffer::null());
        // SAFETY: live filter ptr; header/body buffers outlive the call (Envoy copies them).
        unsafe {
            abi::envoy_dynamic_module_callback_http_send_response(
                self.ptr,
                status,
                if hs.is_empty() {
                    std::ptr::null_mut()
                } else {
                    hs.as_mut_ptr()
                },
                hs.len(),
                abi::ModuleBuffer::from_bytes(body),
                details,
            )
        }
    }

    /// Makes Envoy re-pick the route after `:authority`/`:path`/headers changed.
    pub fn clear_route_cache(&mut self) {
        // SAFETY: live filter ptr.
        unsafe { abi::envoy_dynamic_module_callback_http_clear_route_cache(self.ptr) }
    }

    /// Resumes a request held by a `Stop*` status (e.g. after a callout).
    pub fn continue_decoding(&mut self) {
        // SAFETY: live filter ptr.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_continue_decoding(self.ptr) }
    }

    /// Resumes a response held by a `Stop*` status.
    pub fn continue_encoding(&mut self) {
        // SAFETY: live filter ptr.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_continue_encoding(self.ptr) }
    }

    pub fn increment_counter(&mut self, id: CounterId, by: u64) -> Result<(), MetricsError> {
        // SAFETY: live filter ptr; no labels.
        let r = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_increment_counter(
                self.ptr,
                id.0,
                std::ptr::null_mut(),
                0,
                by,
            )
        };
        metrics_result(r)
    }

    /// Adds `by` to the counter of `id` with these label values (one per defined label).
    pub fn increment_counter_vec(
        &mut self,
        id: CounterVecId,
        values: &[&str],
        by: u64,
    ) -> Result<(), MetricsError> {
        if values.len() != id.labels {
            return Err(MetricsError::InvalidLabels);
        }
        let mut vals: Vec<abi::ModuleBuffer> = values
            .iter()
            .map(|v| abi::ModuleBuffer::from_bytes(v.as_bytes()))
            .collect();
        // SAFETY: live filter ptr; the label buffers outlive the call and their count matches
        // the definition (checked above), as the ABI requires.
        let r = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_increment_counter(
                self.ptr,
                id.id,
                if vals.is_empty() {
                    std::ptr::null_mut()
                } else {
                    vals.as_mut_ptr()
                },
                vals.len(),
                by,
            )
        };
        metrics_result(r)
    }

    /// Sets `ns.key` in the stream's dynamic metadata (visible to access logs, later filters).
    pub fn set_metadata_string(&mut self, ns: &str, key: &str, value: &str) {
        // SAFETY: live filter ptr; buffers valid for the call.
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_dynamic_metadata_string(
                self.ptr,
                abi::ModuleBuffer::from_bytes(ns.as_bytes()),
                abi::ModuleBuffer::from_bytes(key.as_bytes()),
                abi::ModuleBuffer::from_bytes(value.as_bytes()),
            )
        }
    }

    pub fn set_metadata_number(&mut self, ns: &str, key: &str, value: f64) {
        // SAFETY: live filter ptr; buffers valid for the call.
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_dynamic_metadata_number(
                self.ptr,
                abi::ModuleBuffer::from_bytes(ns.as_bytes()),
                abi::ModuleBuffer::from_bytes(key.as_bytes()),
                value,
            )
        }
    }

    /// Starts a one-shot HTTP request to `cluster` (headers must include `:method`, `:path`,
    /// `host`). The answer arrives in [`HttpFilter::on_callout_done`] with the returned id.
    pub fn callout(
        &mut self,
        cluster: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u64, CalloutError> {
        let mut hs = module_headers(headers);
        let mut id: u64 = 0;
        // SAFETY: live filter ptr; buffers valid for the call (Envoy copies them).
        let r = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_http_callout(
                self.ptr,
                &mut id,
                abi::ModuleBuffer::from_bytes(cluster.as_bytes()),
                if hs.is_empty() {
                    std::ptr::null_mut()
                } else {
                    hs.as_mut_ptr()
                },
                hs.len(),
                abi::ModuleBuffer::from_bytes(body),
                timeout_ms,
            )
        };
        match r {
            abi::CALLOUT_INIT_SUCCESS => Ok(id),
            abi::CALLOUT_INIT_MISSING_REQUIRED_HEADERS => Err(CalloutError::MissingRequiredHeaders),
            abi::CALLOUT_INIT_CLUSTER_NOT_FOUND => Err(CalloutError::ClusterNotFound),
            abi::CALLOUT_INIT_DUPLICATE_CALLOUT_ID => Err(CalloutError::DuplicateCalloutId),
            abi::CALLOUT_INIT_CANNOT_CREATE_REQUEST => Err(CalloutError::CannotCreateRequest),
            other => Err(CalloutError::Other(other)),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Logging
// ------------------------------------------------------------------------------------------

/// Logs through Envoy's `dynamic_modules` logger, with the caller's source location.
#[track_caller]
pub fn log(level: LogLevel, message: &str) {
    let loc = std::panic::Location::caller();
    // SAFETY: module-wide callbacks; buffers valid for the call.
    unsafe {
        if !abi::envoy_dynamic_module_callback_log_enabled(level.raw()) {
            return;
        }
        abi::envoy_dynamic_module_callback_log_v2(
            level.raw(),
            abi::ModuleBuffer::from_bytes(message.as_bytes()),
            abi::ModuleBuffer::from_bytes(loc.file().as_bytes()),
            loc.line(),
        );
    }
}

// ------------------------------------------------------------------------------------------
// Hook runtime (called from abi.rs). Every entry point catches panics.
// ------------------------------------------------------------------------------------------

struct ConfigState {
    config: Box<dyn HttpFilterConfig>,
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
        let mut handle = EnvoyFilterConfig {
            ptr: envoy_ptr,
            _not_send: PhantomData,
        };
        match crate::new_filter_config(&mut handle, &name, &config) {
            Ok(config) => {
                Box::into_raw(Box::new(ConfigState { config })) as abi::HttpFilterConfigModulePtr
            }
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
            drop(unsafe { Box::from_raw(ptr as *mut ConfigState) });
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
    let mut envoy = EnvoyHttpFilter {
        ptr: envoy_ptr,
        _not_send: PhantomData,
    };
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
        let mut response = CalloutResponse {
            result: match result {
                abi::CALLOUT_SUCCESS => CalloutResult::Success,
                abi::CALLOUT_RESET => CalloutResult::Reset,
                abi::CALLOUT_EXCEED_RESPONSE_BUFFER_LIMIT => {
                    CalloutResult::ExceedResponseBufferLimit
                }
                other => CalloutResult::Other(other),
            },
            headers: Vec::new(),
            body: Vec::new(),
        };
        if !headers.is_null() {
            // SAFETY: Envoy passes `headers_size` valid entries, alive during this hook.
            for h in unsafe { std::slice::from_raw_parts(headers, headers_size) } {
                // SAFETY: as above.
                response.headers.push(unsafe {
                    (
                        copy_envoy_buffer(&abi::EnvoyBuffer {
                            ptr: h.key_ptr,
                            length: h.key_length,
                        }),
                        copy_envoy_buffer(&abi::EnvoyBuffer {
                            ptr: h.value_ptr,
                            length: h.value_length,
                        }),
                    )
                });
            }
        }
        if !body_chunks.is_null() {
            // SAFETY: Envoy passes `body_chunks_size` valid slices, alive during this hook.
            for c in unsafe { std::slice::from_raw_parts(body_chunks, body_chunks_size) } {
                // SAFETY: as above.
                response
                    .body
                    .extend_from_slice(&unsafe { copy_envoy_buffer(c) });
            }
        }
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

/// Keeps `CStr` in the public surface for callers that need the compiled-in ABI version.
pub fn abi_version() -> &'static CStr {
    abi::ABI_VERSION
}

// ------------------------------------------------------------------------------------------
// Configuration-level scheduler and callouts (failover health checks), and the route's cluster
// ------------------------------------------------------------------------------------------

/// Posts events to [`HttpFilterConfig::on_scheduled`] on Envoy's main thread. Any thread may
/// commit; Envoy drops events for a configuration that is gone.
pub struct ConfigScheduler {
    ptr: abi::HttpFilterConfigSchedulerPtr,
}

// SAFETY: Envoy's configuration scheduler only posts to the main dispatcher, which is
// thread-safe, and holds a weak reference to the configuration.
unsafe impl Send for ConfigScheduler {}
// SAFETY: as above; `commit` takes `&self` and Envoy's commit is thread-safe.
unsafe impl Sync for ConfigScheduler {}

impl ConfigScheduler {
    pub fn commit(&self, event_id: u64) {
        // SAFETY: ptr came from scheduler_new and is deleted only in Drop.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
                self.ptr, event_id,
            )
        }
    }
}

impl Drop for ConfigScheduler {
    fn drop(&mut self) {
        // SAFETY: ptr came from scheduler_new; deleted once.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(self.ptr) }
    }
}

impl EnvoyFilterConfig {
    /// A scheduler for this configuration (`None` if Envoy returned none).
    pub fn new_scheduler(&mut self) -> Option<ConfigScheduler> {
        // SAFETY: ptr is the live config pointer of the current config_new hook.
        let ptr = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_scheduler_new(self.ptr)
        };
        (!ptr.is_null()).then_some(ConfigScheduler { ptr })
    }
}

/// Envoy's side of a filter configuration inside a main-thread configuration hook.
pub struct EnvoyConfigHandle {
    ptr: abi::HttpFilterConfigEnvoyPtr,
    _not_send: PhantomData<*mut ()>,
}

fn callout_result(r: abi::CalloutInitResult) -> Result<(), CalloutError> {
    match r {
        abi::CALLOUT_INIT_SUCCESS => Ok(()),
        abi::CALLOUT_INIT_MISSING_REQUIRED_HEADERS => Err(CalloutError::MissingRequiredHeaders),
        abi::CALLOUT_INIT_CLUSTER_NOT_FOUND => Err(CalloutError::ClusterNotFound),
        abi::CALLOUT_INIT_DUPLICATE_CALLOUT_ID => Err(CalloutError::DuplicateCalloutId),
        abi::CALLOUT_INIT_CANNOT_CREATE_REQUEST => Err(CalloutError::CannotCreateRequest),
        other => Err(CalloutError::Other(other)),
    }
}

impl EnvoyConfigHandle {
    /// A one-shot HTTP request to `cluster` owned by the configuration (headers must include
    /// `:method`, `:path`, `host`); the answer arrives in [`HttpFilterConfig::on_callout_done`].
    pub fn callout(
        &mut self,
        cluster: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u64, CalloutError> {
        let mut hs = module_headers(headers);
        let mut id: u64 = 0;
        // SAFETY: live config pointer of the current main-thread hook; buffers valid for the
        // call (Envoy copies them).
        let r = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_http_callout(
                self.ptr,
                &mut id,
                abi::ModuleBuffer::from_bytes(cluster.as_bytes()),
                if hs.is_empty() {
                    std::ptr::null_mut()
                } else {
                    hs.as_mut_ptr()
                },
                hs.len(),
                abi::ModuleBuffer::from_bytes(body),
                timeout_ms,
            )
        };
        callout_result(r).map(|()| id)
    }
}

impl EnvoyHttpFilter {
    /// The name of the cluster the stream's route points at.
    pub fn cluster_name(&self) -> Option<String> {
        let mut buf = abi::EnvoyBuffer::null();
        // SAFETY: live filter ptr; buf is written by Envoy and valid during this hook.
        let ok =
            unsafe { abi::envoy_dynamic_module_callback_http_get_cluster_name(self.ptr, &mut buf) };
        if !ok || buf.ptr.is_null() {
            return None;
        }
        // SAFETY: as above.
        String::from_utf8(unsafe { copy_envoy_buffer(&buf) }).ok()
    }
}

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
        let mut handle = EnvoyConfigHandle {
            ptr: envoy_ptr,
            _not_send: PhantomData,
        };
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

/// A labelled gauge family defined in [`EnvoyFilterConfig::define_gauge_vec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GaugeVecId {
    id: usize,
    labels: usize,
}

impl EnvoyFilterConfig {
    /// Defines a gauge with labels: `<namespace>.<name>`, one tag per label.
    pub fn define_gauge_vec(
        &mut self,
        name: &str,
        labels: &[&str],
    ) -> Result<GaugeVecId, MetricsError> {
        let mut names: Vec<abi::ModuleBuffer> = labels
            .iter()
            .map(|l| abi::ModuleBuffer::from_bytes(l.as_bytes()))
            .collect();
        let mut id: usize = 0;
        // SAFETY: ptr is the live config pointer of the current config_new hook; name and label
        // buffers outlive the call.
        let r = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_define_gauge(
                self.ptr,
                abi::ModuleBuffer::from_bytes(name.as_bytes()),
                if names.is_empty() {
                    std::ptr::null_mut()
                } else {
                    names.as_mut_ptr()
                },
                names.len(),
                &mut id,
            )
        };
        metrics_result(r).map(|()| GaugeVecId {
            id,
            labels: labels.len(),
        })
    }
}

impl EnvoyHttpFilter {
    /// Sets one gauge of a family (one value per label, in definition order).
    pub fn set_gauge_vec(
        &mut self,
        id: GaugeVecId,
        values: &[&str],
        value: u64,
    ) -> Result<(), MetricsError> {
        if values.len() != id.labels {
            return Err(MetricsError::InvalidLabels);
        }
        let mut vs: Vec<abi::ModuleBuffer> = values
            .iter()
            .map(|v| abi::ModuleBuffer::from_bytes(v.as_bytes()))
            .collect();
        // SAFETY: live filter ptr; label buffers valid for the call.
        let r = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_set_gauge(
                self.ptr,
                id.id,
                if vs.is_empty() {
                    std::ptr::null_mut()
                } else {
                    vs.as_mut_ptr()
                },
                vs.len(),
                value,
            )
        };
        metrics_result(r)
    }
}
