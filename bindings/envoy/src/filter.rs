//! Safe wrapper over [`crate::abi`]: the [`HttpFilterConfig`] / [`HttpFilter`] traits a filter
//! implements and the [`EnvoyHttpFilter`] handle it talks to Envoy through. The hooks and the
//! runtime that calls these traits are in [`crate::hooks`].
//!
//! Lifetimes: an [`EnvoyHttpFilter`] only exists for the duration of one hook call (it is handed
//! out as `&mut` and is neither `Clone` nor `Send`), which is exactly how long Envoy guarantees
//! the `filter_envoy_ptr` and every Envoy-owned buffer it returns. Headers and bodies are read
//! without copying: [`Headers`] and [`Body`] borrow Envoy's memory through `&self`, so the borrow
//! checker ends them before any call that could change that memory (every such call takes
//! `&mut self`), and none outlives the hook.
//!
//! Body model of Envoy 1.40 (per direction):
//! * the **received** body is the data frame of the current `on_*_body` hook; it can be read,
//!   drained and appended to in place, and whatever it holds when the hook returns `Continue` is
//!   what flows on. This is how a streamed response chunk is replaced as it passes.
//! * the **buffered** body is what earlier `StopIterationAndBuffer` returns accumulated. At
//!   `end_of_stream`, the whole body is buffered + received (unless Envoy re-delivers the buffer
//!   itself as the received data, which `received_buffered_*_body` reports).

use std::marker::PhantomData;

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

/// A header list borrowed from Envoy (valid while the `&EnvoyHttpFilter` it came from is).
pub type Headers<'a> = Vec<(&'a [u8], &'a [u8])>;

/// An owned header list (callout answers, which are copied out of their hook).
pub type OwnedHeaders = Vec<(Vec<u8>, Vec<u8>)>;

/// A body (or the current chunk of one) as Envoy holds it: a few slices of its buffer, borrowed
/// without copying. Most chunks are one slice; up to [`Body::INLINE`] are kept without allocating.
pub struct Body<'a> {
    inline: [abi::EnvoyBuffer; Body::INLINE],
    heap: Vec<abi::EnvoyBuffer>,
    count: usize,
    len: usize,
    _envoy: PhantomData<&'a EnvoyHttpFilter>,
}

impl Default for Body<'_> {
    fn default() -> Self {
        Body::empty()
    }
}

impl<'a> Body<'a> {
    pub const INLINE: usize = 4;

    fn empty() -> Self {
        Body {
            inline: [abi::EnvoyBuffer::null(); Body::INLINE],
            heap: Vec::new(),
            count: 0,
            len: 0,
            _envoy: PhantomData,
        }
    }

    fn raw(&self) -> &[abi::EnvoyBuffer] {
        if self.heap.is_empty() {
            &self.inline[..self.count]
        } else {
            &self.heap
        }
    }

    /// Total bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The non-empty slices, in order.
    pub fn slices(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.raw().iter().filter_map(|b| {
            // SAFETY: slices Envoy returned for this hook; `'a` ties them to the filter handle
            // borrowed for reading, so no mutation of the body can happen while they live.
            unsafe { envoy_slice(b) }
        })
    }

    /// The body as one slice when it is one (or none): the common case, no copy.
    pub fn single(&self) -> Option<&'a [u8]> {
        let mut it = self.slices();
        match (it.next(), it.next()) {
            (None, _) => Some(&[]),
            (Some(s), None) => Some(s),
            _ => None,
        }
    }

    /// Appends every byte to `out`.
    pub fn copy_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.len);
        for s in self.slices() {
            out.extend_from_slice(s);
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.copy_into(&mut v);
        v
    }

    /// Whether the body holds exactly `data`.
    pub fn equals(&self, data: &[u8]) -> bool {
        if data.len() != self.len {
            return false;
        }
        let mut rest = data;
        for s in self.slices() {
            let (head, tail) = rest.split_at(s.len());
            if head != s {
                return false;
            }
            rest = tail;
        }
        true
    }
}

/// An unsigned integer as decimal text, formatted on the stack (header values such as
/// `content-length` and `:status`, set per request).
pub struct Decimal {
    buf: [u8; 20],
    start: usize,
}

impl Decimal {
    pub fn new(mut n: u64) -> Self {
        let mut buf = [0u8; 20];
        let mut start = buf.len();
        loop {
            start -= 1;
            buf[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Decimal { buf, start }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// SAFETY: `b` must come from Envoy during the current hook (valid ptr/length, or null), and the
/// slice must not be used after that memory can change.
unsafe fn envoy_slice<'a>(b: &abi::EnvoyBuffer) -> Option<&'a [u8]> {
    if b.ptr.is_null() || b.length == 0 {
        None
    } else {
        Some(std::slice::from_raw_parts(b.ptr.cast::<u8>(), b.length))
    }
}

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

#[cfg(test)]
impl CounterVecId {
    pub(crate) fn for_test(id: usize, labels: usize) -> Self {
        Self { id, labels }
    }

    pub(crate) fn raw(self) -> usize {
        self.id
    }
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

/// Calls `f` with `values` as ABI label buffers (on the stack for up to four: increments run per
/// request, so no allocation) after checking their count against the definition of `id`.
fn with_label_values(
    id: CounterVecId,
    values: &[&str],
    f: impl FnOnce(*mut abi::ModuleBuffer, usize) -> abi::MetricsResult,
) -> Result<(), MetricsError> {
    if values.len() != id.labels {
        return Err(MetricsError::InvalidLabels);
    }
    let mut inline = [abi::ModuleBuffer::null(); 4];
    let mut heap = Vec::new();
    let vals: &mut [abi::ModuleBuffer] = if values.len() <= inline.len() {
        for (slot, v) in inline.iter_mut().zip(values) {
            *slot = abi::ModuleBuffer::from_bytes(v.as_bytes());
        }
        &mut inline[..values.len()]
    } else {
        heap.extend(
            values
                .iter()
                .map(|v| abi::ModuleBuffer::from_bytes(v.as_bytes())),
        );
        &mut heap
    };
    let ptr = if vals.is_empty() {
        std::ptr::null_mut()
    } else {
        vals.as_mut_ptr()
    };
    metrics_result(f(ptr, vals.len()))
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
    pub headers: OwnedHeaders,
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
    /// The configuration is being destroyed (from Envoy's destructor of its configuration).
    fn on_destroy(&self, _envoy: &mut EnvoyConfigHandle) {}
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
    pub(crate) fn from_raw(ptr: abi::HttpFilterConfigEnvoyPtr) -> Self {
        Self {
            ptr,
            _not_send: PhantomData,
        }
    }

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
pub(crate) unsafe fn copy_envoy_buffer(b: &abi::EnvoyBuffer) -> Vec<u8> {
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
    pub(crate) fn from_raw(ptr: abi::HttpFilterEnvoyPtr) -> Self {
        Self {
            ptr,
            _not_send: PhantomData,
        }
    }

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

    /// The whole header map, in order, borrowed from Envoy (one ABI call for the list; names and
    /// values are not copied).
    pub fn headers(&self, dir: Direction) -> Headers<'_> {
        // SAFETY: live filter ptr.
        let n = unsafe {
            abi::envoy_dynamic_module_callback_http_get_headers_size(self.ptr, header_type(dir))
        };
        if n == 0 {
            return Vec::new();
        }
        const EMPTY: abi::EnvoyHttpHeader = abi::EnvoyHttpHeader {
            key_ptr: std::ptr::null(),
            key_length: 0,
            value_ptr: std::ptr::null(),
            value_length: 0,
        };
        // Envoy writes the entries into a stack array (a heap one for an unusually long list).
        let mut inline = [EMPTY; 32];
        let mut heap = Vec::new();
        let raw: &mut [abi::EnvoyHttpHeader] = if n <= inline.len() {
            &mut inline[..n]
        } else {
            heap.resize(n, EMPTY);
            &mut heap
        };
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
                // SAFETY: Envoy-owned buffers valid during this hook; the result borrows `self`,
                // and every call that changes headers takes `&mut self`.
                unsafe {
                    (
                        envoy_slice(&abi::EnvoyBuffer {
                            ptr: h.key_ptr,
                            length: h.key_length,
                        })
                        .unwrap_or_default(),
                        envoy_slice(&abi::EnvoyBuffer {
                            ptr: h.value_ptr,
                            length: h.value_length,
                        })
                        .unwrap_or_default(),
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
    pub fn request_headers(&self) -> Headers<'_> {
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
    pub fn response_headers(&self) -> Headers<'_> {
        self.headers(Direction::Response)
    }
    pub fn set_response_header(&mut self, name: &str, value: impl AsRef<[u8]>) -> bool {
        self.set_header(Direction::Response, name, value)
    }
    pub fn remove_response_header(&mut self, name: &str) -> bool {
        self.remove_header(Direction::Response, name)
    }

    // ---------------------------------------------------------------- bodies

    /// The slices of one of Envoy's bodies: two ABI calls, no copy.
    fn read_body(&self, body_type: abi::HttpBodyType) -> Body<'_> {
        let mut body = Body::empty();
        // SAFETY: live filter ptr.
        let n = unsafe {
            abi::envoy_dynamic_module_callback_http_get_body_chunks_size(self.ptr, body_type)
        };
        if n == 0 {
            return body;
        }
        let dest = if n <= Body::INLINE {
            &mut body.inline[..n]
        } else {
            body.heap = vec![abi::EnvoyBuffer::null(); n];
            &mut body.heap[..]
        };
        // SAFETY: `dest` has room for the `n` slices Envoy just reported.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_get_body_chunks(
                self.ptr,
                body_type,
                dest.as_mut_ptr(),
            )
        };
        if !ok {
            return Body::empty();
        }
        body.count = n;
        body.len = body.raw().iter().map(|b| b.length).sum();
        body
    }

    fn body_size(&self, body_type: abi::HttpBodyType) -> usize {
        // SAFETY: live filter ptr.
        unsafe { abi::envoy_dynamic_module_callback_http_get_body_size(self.ptr, body_type) }
    }

    fn drain(&mut self, body_type: abi::HttpBodyType, n: usize) -> bool {
        // SAFETY: live filter ptr. Returns false if that body does not exist (yet).
        unsafe { abi::envoy_dynamic_module_callback_http_drain_body(self.ptr, body_type, n) }
    }

    fn drain_all(&mut self, body_type: abi::HttpBodyType) -> bool {
        let n = self.body_size(body_type);
        self.drain(body_type, n)
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

    /// The data frame of the current body hook (empty outside body hooks), borrowed.
    pub fn received_body(&self, dir: Direction) -> Body<'_> {
        self.read_body(received(dir))
    }

    /// Replaces the data frame of the current body hook in place: what it holds when the hook
    /// returns `Continue` is what flows on. `current_len` is its length as last read (saves
    /// asking Envoy again). Returns false outside a body hook.
    pub fn replace_received_body(
        &mut self,
        dir: Direction,
        current_len: usize,
        data: &[u8],
    ) -> bool {
        if !self.drain(received(dir), current_len) {
            return false;
        }
        data.is_empty() || self.append(received(dir), data)
    }

    /// Everything of this direction's body seen so far, copied: buffered (earlier chunks held
    /// with `StopIterationAndBuffer`) followed by the current chunk.
    pub fn body(&self, dir: Direction) -> Vec<u8> {
        let mut out = self.read_body(buffered(dir)).to_vec();
        if !self.received_is_buffered(dir) {
            self.read_body(received(dir)).copy_into(&mut out);
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
    /// returned `StopIterationAndBuffer`), copied. Single-slice bodies can be borrowed instead
    /// with [`Self::request_body_parts`].
    pub fn request_body(&self) -> Vec<u8> {
        self.body(Direction::Request)
    }

    /// The request body as Envoy holds it: the buffered part and, unless Envoy re-delivers its
    /// buffer as the current chunk, the current chunk; both borrowed.
    pub fn request_body_parts(&self) -> (Body<'_>, Body<'_>) {
        let buffered = self.read_body(buffered(Direction::Request));
        let received = if self.received_is_buffered(Direction::Request) {
            Body::empty()
        } else {
            self.read_body(received(Direction::Request))
        };
        (buffered, received)
    }

    /// Replaces the whole request body and sets `content-length` to match. Call it from
    /// `on_request_body(end_of_stream = true)` while the headers are still held
    /// (`on_request_headers` returned `StopIteration`).
    pub fn set_request_body(&mut self, data: &[u8]) -> bool {
        let ok = self.set_body(Direction::Request, data);
        self.set_request_header("content-length", Decimal::new(data.len() as u64).as_bytes());
        ok
    }

    /// The response chunk passing through the current `on_response_body` call, borrowed.
    pub fn response_chunk(&self) -> Body<'_> {
        self.received_body(Direction::Response)
    }

    /// Replaces the response chunk passing through the current `on_response_body` call
    /// (`current_len`: its length as read with [`Self::response_chunk`]).
    pub fn replace_response_chunk(&mut self, current_len: usize, data: &[u8]) -> bool {
        self.replace_received_body(Direction::Response, current_len, data)
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
        with_label_values(id, values, |vals, len| {
            // SAFETY: live filter ptr; the label buffers outlive the call and their count
            // matches the definition, as the ABI requires.
            unsafe {
                abi::envoy_dynamic_module_callback_http_filter_increment_counter(
                    self.ptr, id.id, vals, len, by,
                )
            }
        })
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

    /// Sets several string values of namespace `ns` in the stream's dynamic metadata with one
    /// ABI call (one namespace lookup and one merge in Envoy, where [`Self::set_metadata_string`]
    /// pays both per key). Same result as setting each key in turn with that setter.
    pub fn set_metadata_strings(&mut self, ns: &str, entries: &[(&str, &str)]) {
        let mut inline = [abi::ModuleKeyValue {
            key: abi::ModuleBuffer::null(),
            value: abi::ModuleBuffer::null(),
        }; 8];
        for chunk in entries.chunks(inline.len()) {
            for (slot, (k, v)) in inline.iter_mut().zip(chunk) {
                *slot = abi::ModuleKeyValue {
                    key: abi::ModuleBuffer::from_bytes(k.as_bytes()),
                    value: abi::ModuleBuffer::from_bytes(v.as_bytes()),
                };
            }
            // SAFETY: live filter ptr; `inline[..chunk.len()]` holds valid buffers that outlive
            // the call (Envoy copies them).
            unsafe {
                abi::envoy_dynamic_module_callback_http_set_dynamic_metadata_string_batch(
                    self.ptr,
                    abi::ModuleBuffer::from_bytes(ns.as_bytes()),
                    inline.as_ptr(),
                    chunk.len(),
                )
            }
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
        callout_result(r).map(|()| id)
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
    pub(crate) fn from_raw(ptr: abi::HttpFilterConfigEnvoyPtr) -> Self {
        Self {
            ptr,
            _not_send: PhantomData,
        }
    }

    /// Adds `by` to the counter of `id` with these label values, from a configuration-level
    /// hook (main thread, or the configuration's destruction).
    pub fn increment_counter_vec(
        &mut self,
        id: CounterVecId,
        values: &[&str],
        by: u64,
    ) -> Result<(), MetricsError> {
        with_label_values(id, values, |vals, len| {
            // SAFETY: live config pointer of the current configuration hook; the label buffers
            // outlive the call and their count matches the definition.
            unsafe {
                abi::envoy_dynamic_module_callback_http_filter_config_increment_counter(
                    self.ptr, id.id, vals, len, by,
                )
            }
        })
    }

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
