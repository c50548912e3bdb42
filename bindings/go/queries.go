package aiproxy

// Read-only questions a host asks a Config or an Exchange besides the main request/response
// calls: configuration warnings, routing predicates, the first-byte timeout, the client's API
// dialect, usage details, and the end of a response whose upstream connection broke.

/*
#include "aiproxy.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"
)

// Warnings returns the configuration's warnings: fields that were accepted but have no effect
// (unknown names, Higress fields aiproxy does not implement), e.g.
// "provider.foo: unknown field; ignored". They name fields, never their values; hosts log them
// once at load. The result is nil when there are none or the Config is closed.
func (c *Config) Warnings() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr == nil {
		return nil
	}
	var n C.size_t
	if C.aiproxy_config_warning_count(c.ptr, &n, nil) != C.AIPROXY_OK || n == 0 {
		return nil
	}
	out := make([]string, 0, int(n))
	for i := range n {
		var s C.AiproxyStr
		// The bytes are owned by the config: copy them before the lock is released.
		if C.aiproxy_config_warning(c.ptr, i, &s, nil) == C.AIPROXY_OK {
			out = append(out, goString(s))
		}
	}
	return out
}

// Translates reports whether the core translates requests with this method and path (reads and
// rewrites their OpenAI or Anthropic body): POST to a chat, embeddings or messages endpoint under
// the OpenAI protocol. An empty method or path is never translated. Errors: ErrInvalidUTF8, and
// ErrClosed after Close.
func (c *Config) Translates(method, path string) (bool, error) {
	return c.askMethodPath(method, path, func(m *C.uint8_t, ml C.size_t, p *C.uint8_t, pl C.size_t, out *C.bool,
		cerr **C.AiproxyError) C.int32_t {
		return C.aiproxy_config_translates(c.ptr, m, ml, p, pl, out, cerr)
	})
}

// NeedsRequestBody reports whether the core needs this request's body before it can decide: it
// translates the body, or the provider signs every request over its bytes. When false, a host
// may call Exchange.OnRequest as soon as the headers arrive, with an empty body. Errors as for
// Translates.
func (c *Config) NeedsRequestBody(method, path string) (bool, error) {
	return c.askMethodPath(method, path, func(m *C.uint8_t, ml C.size_t, p *C.uint8_t, pl C.size_t, out *C.bool,
		cerr **C.AiproxyError) C.int32_t {
		return C.aiproxy_config_needs_request_body(c.ptr, m, ml, p, pl, out, cerr)
	})
}

// methodPathQuery is the shape of the C API's (method, path) -> bool questions.
type methodPathQuery func(m *C.uint8_t, ml C.size_t, p *C.uint8_t, pl C.size_t, out *C.bool,
	cerr **C.AiproxyError) C.int32_t

// askMethodPath asks one of those questions under the read lock.
func (c *Config) askMethodPath(method, path string, ask methodPathQuery) (bool, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr == nil {
		return false, closedError("config")
	}
	var out C.bool
	var cerr *C.AiproxyError
	rc := ask(stringPtr(method), C.size_t(len(method)), stringPtr(path), C.size_t(len(path)), &out, &cerr)
	runtime.KeepAlive(method)
	runtime.KeepAlive(path)
	if rc != C.AIPROXY_OK {
		return false, takeError(rc, cerr)
	}
	return bool(out), nil
}

// FirstByteTimeout returns the configuration's firstByteTimeout: how long to wait for the first
// byte of a streamed upstream response. Zero when unset or the Config is closed. The library
// applies no timers; hosts that can set a per-request first-byte timeout use it.
func (c *Config) FirstByteTimeout() time.Duration {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr == nil {
		return 0
	}
	var ms C.uint64_t
	if C.aiproxy_config_first_byte_timeout_ms(c.ptr, &ms, nil) != C.AIPROXY_OK {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// ClientProtocol is the API dialect the client spoke, decided by the request path.
type ClientProtocol int

const (
	// ProtocolOpenAI: OpenAI's API (chat completions, embeddings); also before OnRequest.
	ProtocolOpenAI ClientProtocol = C.AIPROXY_CLIENT_PROTOCOL_OPENAI
	// ProtocolAnthropic: Anthropic's Messages API (/v1/messages); replies and errors are
	// Anthropic-shaped.
	ProtocolAnthropic ClientProtocol = C.AIPROXY_CLIENT_PROTOCOL_ANTHROPIC
)

func (p ClientProtocol) String() string {
	switch p {
	case ProtocolOpenAI:
		return "openai"
	case ProtocolAnthropic:
		return "anthropic"
	}
	return fmt.Sprintf("ClientProtocol(%d)", int(p))
}

// ClientProtocol returns the API dialect of the exchange's client, known after OnRequest
// (ProtocolOpenAI before). Errors: ErrClosed after Close.
func (x *Exchange) ClientProtocol() (ClientProtocol, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ptr == nil {
		return ProtocolOpenAI, closedError("exchange")
	}
	var out C.int32_t
	if rc := C.aiproxy_exchange_client_protocol(x.ptr, &out); rc != C.AIPROXY_OK {
		return ProtocolOpenAI, takeError(rc, nil)
	}
	return ClientProtocol(out), nil
}

// OnUpstreamAbort is called when the upstream connection failed (reset, timeout) before its
// body ended. It returns what to send to end the client's response properly, and ends the
// exchange:
//   - Stream mode (headers already sent): an in-stream error event then the end-of-stream
//     marker in Data, Status 0; append Data to the client's stream and end it;
//   - Buffer mode, or before the response headers: an error body in Data with Status 502;
//   - Passthrough, or when the response already ended: Unchanged (nothing to add).
//
// Calling it again adds nothing. Errors: ErrBadState before the request was forwarded.
func (x *Exchange) OnUpstreamAbort() (BodyChunk, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ptr == nil {
		return BodyChunk{}, closedError("exchange")
	}
	var out C.AiproxyBodyResult
	var cerr *C.AiproxyError
	if rc := C.aiproxy_exchange_on_upstream_abort(x.ptr, &out, &cerr); rc != C.AIPROXY_OK {
		return BodyChunk{}, takeError(rc, cerr)
	}
	return bodyChunk(&out), nil
}

// UsageDetails are the token-usage details the upstream reported, each with a presence flag.
type UsageDetails struct {
	// CachedTokens are prompt tokens served from the provider's cache (OpenAI's
	// prompt_tokens_details.cached_tokens, Claude's cache reads, Gemini's cached content).
	CachedTokens    uint64
	HasCachedTokens bool
	// ReasoningTokens are completion tokens spent on reasoning (OpenAI's
	// completion_tokens_details.reasoning_tokens, Gemini's thoughts, DashScope's).
	ReasoningTokens    uint64
	HasReasoningTokens bool
}

// UsageDetails returns the usage details seen so far (complete after the last body chunk).
// Errors: ErrClosed after Close; ErrInternal for an exchange poisoned by an internal error.
func (x *Exchange) UsageDetails() (UsageDetails, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ptr == nil {
		return UsageDetails{}, closedError("exchange")
	}
	// struct_size tells the library which fields this binding was compiled against.
	out := C.AiproxyUsageDetails{struct_size: C.size_t(unsafe.Sizeof(C.AiproxyUsageDetails{}))}
	if rc := C.aiproxy_exchange_usage_details(x.ptr, &out); rc != C.AIPROXY_OK {
		return UsageDetails{}, takeError(rc, nil)
	}
	return UsageDetails{
		CachedTokens:       uint64(out.cached_tokens),
		HasCachedTokens:    bool(out.cached_tokens_present),
		ReasoningTokens:    uint64(out.reasoning_tokens),
		HasReasoningTokens: bool(out.reasoning_tokens_present),
	}, nil
}
