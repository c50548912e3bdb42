// Package aiproxy is the Go binding of libaiproxy, the library that translates OpenAI-API traffic
// (chat completions and embeddings) to and from twenty-odd LLM providers.
//
// A Config is loaded once from the plugin's JSON configuration ({"provider": {...}}) and shared by
// any number of goroutines. Each client request gets its own Exchange, driven in this order:
//
//	ex, _ := cfg.NewExchange()
//	defer ex.Close()
//	res, _ := ex.OnRequest(method, path, headers, body)    // Forward, LocalReply or Callout
//	for res.Action == aiproxy.Callout {                      // fetch, then feed the answer back
//		res, _ = ex.OnCalloutResponse(status, calloutBody)
//	}
//	// Forward: send res.Body (when res.BodyReplaced) to res.Authority + res.Path.
//	// retryOnFailure: ex.Retry(upstreamStatus) here may hand out a request with another token.
//	start, _ := ex.OnResponseHeaders(upstreamStatus, upstreamHeaders) // Passthrough, Stream, Buffer
//	out, _ := ex.OnResponseBody(chunk, false)             // per chunk; eos=true on the last
//	usage, ok := ex.Usage()
//
// Everything returned is copied into Go memory, so results stay valid after later calls.
//
// Handles are released by Close; a Config or Exchange that is dropped without Close is released
// by a cleanup when the garbage collector finds it. Using a handle after Close returns an error
// matching ErrClosed. An Exchange serialises concurrent calls with a mutex (calling it from two
// goroutines at once is still a logic error: the second call usually fails with ErrBadState).
//
// Linking (see link_repo.go and link_system.go): by default the package links
// target/release/libaiproxy.so of this repository (built by `cargo build --release`) with that
// directory as an rpath, so binaries and tests run without LD_LIBRARY_PATH; a library installed
// in the linker's default paths (/usr/local/lib) is found too. With the build tag aiproxy_system,
// it links the installed library that pkg-config describes (scripts/install.sh installs
// aiproxy.pc; set PKG_CONFIG_PATH for a non-standard PREFIX):
//
//	go build -tags aiproxy_system ./...
package aiproxy

/*
#include <stdlib.h>
#include "aiproxy.h"
*/
import "C"

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Version returns the version of the linked libaiproxy.
func Version() string { return C.GoString(C.aiproxy_version()) }

// Header is one HTTP header field. Names are matched case-insensitively by the core.
type Header struct {
	Name  string
	Value string
}

// Action says what to do with the client's request.
type Action int

const (
	// Forward: send the rewritten request upstream.
	Forward Action = C.AIPROXY_ACTION_FORWARD
	// LocalReply: answer the client with Status, Headers and Body; do not go upstream.
	LocalReply Action = C.AIPROXY_ACTION_LOCAL_REPLY
	// Callout: perform the described HTTP request, then call Exchange.OnCalloutResponse.
	Callout Action = C.AIPROXY_ACTION_CALLOUT
	// Retry (from Exchange.Retry only): send this request upstream instead of the failed one,
	// fields as for Forward, with Timeout the configured retryTimeout.
	Retry Action = C.AIPROXY_ACTION_RETRY
	// NoRetry (from Exchange.Retry only): keep the answer at hand; go on with OnResponseHeaders.
	NoRetry Action = C.AIPROXY_ACTION_NO_RETRY
)

func (a Action) String() string {
	switch a {
	case Forward:
		return "forward"
	case LocalReply:
		return "local reply"
	case Callout:
		return "callout"
	case Retry:
		return "retry"
	case NoRetry:
		return "no retry"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Mode says how to handle the response body.
type Mode int

const (
	// Passthrough: forward the body unchanged.
	Passthrough Mode = C.AIPROXY_MODE_PASSTHROUGH
	// Stream: server-sent events; send the headers now and each chunk's Data as it is returned.
	Stream Mode = C.AIPROXY_MODE_STREAM
	// Buffer: hold headers and body until the end of the stream, then send the returned Status
	// and Data.
	Buffer Mode = C.AIPROXY_MODE_BUFFER
)

func (m Mode) String() string {
	switch m {
	case Passthrough:
		return "passthrough"
	case Stream:
		return "stream"
	case Buffer:
		return "buffer"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// RequestResult is the outcome of Exchange.OnRequest and Exchange.OnCalloutResponse.
type RequestResult struct {
	Action Action

	// Status is the HTTP status of a LocalReply.
	Status int
	// Authority is the new :authority (Forward) or the callout's authority (Callout).
	Authority string
	// Path is the new :path with query (Forward) or the callout's path (Callout).
	Path string
	// RemoveHeaders lists request headers to delete before Headers are set (Forward).
	RemoveHeaders []string
	// Headers are the request headers to set, replacing existing values (Forward), or the headers
	// to send (LocalReply, Callout).
	Headers []Header
	// BodyReplaced reports whether Body replaces the client's body (Forward); when false the
	// client's body goes upstream unchanged.
	BodyReplaced bool
	// Body is the new request body (Forward, when BodyReplaced), the reply body (LocalReply) or
	// the body to send with the callout (Callout: empty for a GET; a Vertex service account's
	// token exchange is a form-encoded POST).
	Body []byte
	// Model is the model sent upstream after modelMapping; empty when the request is not
	// translated.
	Model string

	// Cluster and Port name the host-side service to send a Callout to (an Envoy cluster in the
	// Envoy module; hosts without clusters use Authority), Method is its HTTP method.
	Cluster string
	Port    int
	Method  string
	// Timeout is the provider's configured timeout (Forward) or the callout's timeout (Callout).
	Timeout time.Duration
}

// ResponseStart is the outcome of Exchange.OnResponseHeaders: the body mode and the header edits
// to apply to the upstream response (RemoveHeaders first, then Headers).
type ResponseStart struct {
	Mode          Mode
	RemoveHeaders []string
	Headers       []Header
}

// BodyChunk is the outcome of Exchange.OnResponseBody.
type BodyChunk struct {
	// Unchanged: forward the input chunk as it is (Passthrough mode); Data is empty.
	Unchanged bool
	// Data are the bytes to send instead of the input chunk (may be empty).
	Data []byte
	// Status is, in Buffer mode at the end of the stream, the response status to send (it may
	// differ from the upstream's, e.g. when a 200 carried an error); 0 otherwise.
	Status int
}

// Output returns the bytes to send for the input chunk in: in itself when Unchanged, else Data.
func (b BodyChunk) Output(in []byte) []byte {
	if b.Unchanged {
		return in
	}
	return b.Data
}

// Usage is the token usage reported by the upstream response.
type Usage struct {
	PromptTokens     uint64
	CompletionTokens uint64
	TotalTokens      uint64
}

// Config is a loaded configuration. It is immutable and safe for concurrent use by any number of
// goroutines. Exchanges created from it stay valid after the Config is closed.
type Config struct {
	mu      sync.RWMutex
	ptr     *C.AiproxyConfig
	cleanup runtime.Cleanup
}

// NewConfig loads a configuration from JSON (the plugin's {"provider": {...}} form). Errors are
// *Error values matching ErrConfigJSON or ErrConfigInvalid (with Field set).
func NewConfig(json []byte) (*Config, error) {
	var cerr *C.AiproxyError
	p := C.aiproxy_config_new(bytesPtr(json), C.size_t(len(json)), &cerr)
	runtime.KeepAlive(json)
	if p == nil {
		return nil, takeError(C.AIPROXY_ERR_INTERNAL, cerr)
	}
	c := &Config{ptr: p}
	c.cleanup = runtime.AddCleanup(c, freeConfig, p)
	return c, nil
}

// Close releases the configuration. It is idempotent and safe to call concurrently with other
// methods; exchanges already created are unaffected.
func (c *Config) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ptr != nil {
		c.cleanup.Stop()
		C.aiproxy_config_free(c.ptr)
		c.ptr = nil
	}
	return nil
}

// NewExchange starts an exchange: one client request and its response.
func (c *Config) NewExchange() (*Exchange, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr == nil {
		return nil, closedError("config")
	}
	var cerr *C.AiproxyError
	p := C.aiproxy_exchange_new(c.ptr, &cerr)
	if p == nil {
		return nil, takeError(C.AIPROXY_ERR_INTERNAL, cerr)
	}
	x := &Exchange{ptr: p}
	x.cleanup = runtime.AddCleanup(x, freeExchange, p)
	return x, nil
}

// Exchange is one request/response exchange. Its methods must be called in order: OnRequest,
// (OnCalloutResponse while the action is Callout), (Retry while it hands out retries),
// OnResponseHeaders, OnResponseBody for each chunk with eos on the last (or OnUpstreamAbort when
// the upstream connection breaks), and Usage / UsageDetails; a call out of order returns an
// error matching ErrBadState. Concurrent calls are serialised.
type Exchange struct {
	mu      sync.Mutex
	ptr     *C.AiproxyExchange
	cleanup runtime.Cleanup
}

// Close releases the exchange. It is idempotent.
func (x *Exchange) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ptr != nil {
		x.cleanup.Stop()
		C.aiproxy_exchange_free(x.ptr)
		x.ptr = nil
	}
	return nil
}

// OnRequest feeds the client's request: method, path with query, headers and the whole body.
// Client-facing problems (bad JSON, a missing model, an oversized body) are not errors: they come
// back as a LocalReply with an OpenAI-shaped error body.
func (x *Exchange) OnRequest(method, path string, headers []Header, body []byte) (RequestResult, error) {
	hs, n, mem := marshalHeaders(headers)
	defer C.free(mem)
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ptr == nil {
		return RequestResult{}, closedError("exchange")
	}
	var out C.AiproxyRequestResult
	var cerr *C.AiproxyError
	rc := C.aiproxy_exchange_on_request(x.ptr,
		stringPtr(method), C.size_t(len(method)),
		stringPtr(path), C.size_t(len(path)),
		hs, n,
		bytesPtr(body), C.size_t(len(body)),
		&out, &cerr)
	runtime.KeepAlive(method)
	runtime.KeepAlive(path)
	runtime.KeepAlive(body)
	if rc != C.AIPROXY_OK {
		return RequestResult{}, takeError(rc, cerr)
	}
	return requestResult(&out), nil
}

// OnCalloutResponse feeds the answer to the callout requested by a Callout action: its HTTP status
// (0 if the callout failed) and body.
func (x *Exchange) OnCalloutResponse(status int, body []byte) (RequestResult, error) {
	if status < 0 || status > math.MaxUint16 {
		return RequestResult{}, invalidStatus(status)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ptr == nil {
		return RequestResult{}, closedError("exchange")
	}
	var out C.AiproxyRequestResult
	var cerr *C.AiproxyError
	rc := C.aiproxy_exchange_on_callout_response(x.ptr, C.uint16_t(status),
		bytesPtr(body), C.size_t(len(body)), &out, &cerr)
	runtime.KeepAlive(body)
	if rc != C.AIPROXY_OK {
		return RequestResult{}, takeError(rc, cerr)
	}
	return requestResult(&out), nil
}

// OnResponseHeaders feeds the upstream response status and headers and returns the body mode and
// the header edits to apply.
func (x *Exchange) OnResponseHeaders(status int, headers []Header) (ResponseStart, error) {
	if status < 0 || status > math.MaxUint16 {
		return ResponseStart{}, invalidStatus(status)
	}
	hs, n, mem := marshalHeaders(headers)
	defer C.free(mem)
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ptr == nil {
		return ResponseStart{}, closedError("exchange")
	}
	var out C.AiproxyResponseHeadersResult
	var cerr *C.AiproxyError
	rc := C.aiproxy_exchange_on_response_headers(x.ptr, C.uint16_t(status), hs, n, &out, &cerr)
	if rc != C.AIPROXY_OK {
		return ResponseStart{}, takeError(rc, cerr)
	}
	return ResponseStart{
		Mode:          Mode(out.mode),
		RemoveHeaders: goStrings(out.remove_headers, out.remove_headers_len),
		Headers:       goHeaders(out.headers, out.headers_len),
	}, nil
}

// OnResponseBody feeds one upstream body chunk; eos marks the last one (which may be empty).
// Stream mode returns translated bytes for every chunk; Buffer mode returns nothing until eos,
// then the whole body and the status to send.
func (x *Exchange) OnResponseBody(chunk []byte, eos bool) (BodyChunk, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ptr == nil {
		return BodyChunk{}, closedError("exchange")
	}
	var out C.AiproxyBodyResult
	var cerr *C.AiproxyError
	rc := C.aiproxy_exchange_on_response_body(x.ptr, bytesPtr(chunk), C.size_t(len(chunk)),
		C.bool(eos), &out, &cerr)
	runtime.KeepAlive(chunk)
	if rc != C.AIPROXY_OK {
		return BodyChunk{}, takeError(rc, cerr)
	}
	return bodyChunk(&out), nil
}

// bodyChunk copies a body result (its data is borrowed until the next call) into Go memory.
func bodyChunk(out *C.AiproxyBodyResult) BodyChunk {
	return BodyChunk{
		Unchanged: bool(out.unchanged),
		Data:      goBytes(out.data),
		Status:    int(out.status),
	}
}

// Usage returns the token usage seen so far (complete after the last body chunk); ok is false
// when the response carried none, or the exchange is closed.
func (x *Exchange) Usage() (u Usage, ok bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ptr == nil {
		return Usage{}, false
	}
	var out C.AiproxyUsage
	if C.aiproxy_exchange_usage(x.ptr, &out) != C.AIPROXY_OK || !bool(out.present) {
		return Usage{}, false
	}
	return Usage{
		PromptTokens:     uint64(out.prompt_tokens),
		CompletionTokens: uint64(out.completion_tokens),
		TotalTokens:      uint64(out.total_tokens),
	}, true
}

// cleanedUp counts handles released by a cleanup rather than Close (observed by tests).
var cleanedUp atomic.Int64

func freeConfig(p *C.AiproxyConfig) {
	C.aiproxy_config_free(p)
	cleanedUp.Add(1)
}

func freeExchange(p *C.AiproxyExchange) {
	C.aiproxy_exchange_free(p)
	cleanedUp.Add(1)
}

func invalidStatus(status int) error {
	return &Error{Code: ErrInvalidArgument, Message: fmt.Sprintf("HTTP status %d is out of range", status)}
}

// takeError converts (and frees) a C error; rc is used when the library gave no error object.
func takeError(rc C.int32_t, cerr *C.AiproxyError) error {
	if cerr == nil {
		return &Error{Code: Code(rc)}
	}
	defer C.aiproxy_error_free(cerr)
	return &Error{
		Code:    Code(C.aiproxy_error_code(cerr)),
		Message: C.GoString(C.aiproxy_error_message(cerr)),
		Field:   C.GoString(C.aiproxy_error_field(cerr)),
	}
}

// nonNull stands in for the data pointer of empty strings, which the C API requires to be
// non-null for method and path.
var nonNull byte

// stringPtr points C at a Go string's bytes for the duration of a call (Go memory without Go
// pointers may be passed to C).
func stringPtr(s string) *C.uint8_t {
	if len(s) == 0 {
		return (*C.uint8_t)(unsafe.Pointer(&nonNull))
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s)))
}

func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return (*C.uint8_t)(unsafe.Pointer(&nonNull))
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b)))
}

// marshalHeaders copies headers into one C allocation: the AiproxyHeader array followed by the
// name and value bytes. The caller frees mem with C.free (C.free(nil) is a no-op).
func marshalHeaders(hs []Header) (arr *C.AiproxyHeader, n C.size_t, mem unsafe.Pointer) {
	if len(hs) == 0 {
		return nil, 0, nil
	}
	total := 0
	for _, h := range hs {
		total += len(h.Name) + len(h.Value)
	}
	hsize := len(hs) * int(unsafe.Sizeof(C.AiproxyHeader{}))
	// calloc, not malloc: the stores below write pointer-typed fields (AiproxyStr.ptr), and
	// while the GC is marking, Go's write barrier reads and shades the *old* value of each slot.
	// Uninitialised malloc memory can still hold stale Go heap addresses (the library's freed
	// allocations held views of Go strings and bodies passed to it), and shading those makes
	// the GC mark freed or unallocated objects: "found pointer to free object" / "found bad
	// pointer in Go heap". Zeroed slots give the barrier nothing to shade.
	mem = C.calloc(1, C.size_t(hsize+total))
	views := unsafe.Slice((*C.AiproxyHeader)(mem), len(hs))
	buf := unsafe.Slice((*byte)(unsafe.Add(mem, hsize)), total)
	off := 0
	put := func(s string) C.AiproxyStr {
		if len(s) == 0 {
			return C.AiproxyStr{}
		}
		p := &buf[off]
		off += copy(buf[off:], s)
		return C.AiproxyStr{ptr: (*C.uint8_t)(unsafe.Pointer(p)), len: C.size_t(len(s))}
	}
	for i, h := range hs {
		views[i].name = put(h.Name)
		views[i].value = put(h.Value)
	}
	return (*C.AiproxyHeader)(mem), C.size_t(len(hs)), mem
}

// borrowed views the bytes of a borrowed C string without copying.
func borrowed(s C.AiproxyStr) []byte {
	if s.len == 0 || s.ptr == nil {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(s.ptr)), int(s.len))
}

func goString(s C.AiproxyStr) string { return strings.Clone(string(borrowed(s))) }

func goBytes(s C.AiproxyStr) []byte { return bytes.Clone(borrowed(s)) }

func goStrings(p *C.AiproxyStr, n C.size_t) []string {
	if n == 0 || p == nil {
		return nil
	}
	views := unsafe.Slice(p, int(n))
	out := make([]string, len(views))
	for i, v := range views {
		out[i] = goString(v)
	}
	return out
}

func goHeaders(p *C.AiproxyHeader, n C.size_t) []Header {
	if n == 0 || p == nil {
		return nil
	}
	views := unsafe.Slice(p, int(n))
	out := make([]Header, len(views))
	for i, v := range views {
		out[i] = Header{Name: goString(v.name), Value: goString(v.value)}
	}
	return out
}

func requestResult(out *C.AiproxyRequestResult) RequestResult {
	r := RequestResult{
		Action:        Action(out.action),
		Status:        int(out.status),
		Authority:     goString(out.authority),
		Path:          goString(out.path),
		RemoveHeaders: goStrings(out.remove_headers, out.remove_headers_len),
		Headers:       goHeaders(out.headers, out.headers_len),
		BodyReplaced:  bool(out.body_replaced),
		Model:         goString(out.model),
		Cluster:       goString(out.callout_cluster),
		Port:          int(out.callout_port),
		Method:        goString(out.callout_method),
		Timeout:       time.Duration(out.timeout_ms) * time.Millisecond,
	}
	if r.Action == LocalReply || r.Action == Callout || r.BodyReplaced {
		r.Body = goBytes(out.body)
	}
	return r
}
