package aiproxy

// Retries (provider.retryOnFailure) and token failover with host-sent health checks
// (provider.failover).

/*
#include "aiproxy.h"
*/
import "C"

import (
	"math"
	"time"
)

// Retry asks, with the upstream's status, whether to send the request again with another API
// token. Call it before OnResponseHeaders, while nothing of the response reached the client.
// The result's Action is Retry, with the new request's edits as for Forward (applied to the
// request that went upstream) and Timeout the configured retryTimeout, or NoRetry. After sending
// a Retry, call Retry again with the new answer's status, then OnResponseHeaders for the answer
// kept; if the retry cannot be sent, call RetryNotSent and go on with the answer at hand.
func (x *Exchange) Retry(status int) (RequestResult, error) {
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
	if rc := C.aiproxy_exchange_retry(x.ptr, C.uint16_t(status), &out, &cerr); rc != C.AIPROXY_OK {
		return RequestResult{}, takeError(rc, cerr)
	}
	return requestResult(&out), nil
}

// RetryNotSent tells the exchange that the request Retry returned was not sent: the host goes
// on with the answer it has (whose status was already counted).
func (x *Exchange) RetryNotSent() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ptr == nil {
		return closedError("exchange")
	}
	var cerr *C.AiproxyError
	if rc := C.aiproxy_exchange_retry_not_sent(x.ptr, &cerr); rc != C.AIPROXY_OK {
		return takeError(rc, cerr)
	}
	return nil
}

// TokensOut returns the number of API tokens currently out of the rotation (failover); 0 when
// failover is off or the Config is closed.
func (c *Config) TokensOut() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr == nil {
		return 0
	}
	return int(C.aiproxy_config_tokens_out(c.ptr))
}

// HealthCheck is a health check for the host to send: a POST to Authority + Path (through the
// host's route to the provider) with Headers and Body, within Timeout. Report its outcome with
// Config.OnHealthCheckResult(TokenIndex, status).
type HealthCheck struct {
	// TokenIndex is the position of the checked token in provider.apiTokens.
	TokenIndex int
	Authority  string
	// Path is the path with query.
	Path string
	// Headers are every header to send besides :method, :path and :authority (the token's
	// credential included).
	Headers []Header
	Body    []byte
	Timeout time.Duration
}

// DueHealthChecks claims the health checks due now: one per out token whose
// healthCheckInterval passed (often none). A claimed check is not returned again before its
// result is reported or its timeout passes. Calling this tells the library that the host sends
// checks, which turns half-open trials on live traffic off. The checks are copied into Go
// memory; the library's list is freed before this returns.
func (c *Config) DueHealthChecks() ([]HealthCheck, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr == nil {
		return nil, closedError("config")
	}
	var list *C.AiproxyHealthChecks
	var cerr *C.AiproxyError
	if rc := C.aiproxy_config_due_health_checks(c.ptr, &list, &cerr); rc != C.AIPROXY_OK {
		return nil, takeError(rc, cerr)
	}
	defer C.aiproxy_health_checks_free(list)
	n := C.aiproxy_health_checks_len(list)
	if n == 0 {
		return nil, nil
	}
	out := make([]HealthCheck, 0, int(n))
	for i := range n {
		var hc C.AiproxyHealthCheck
		if rc := C.aiproxy_health_checks_get(list, i, &hc, &cerr); rc != C.AIPROXY_OK {
			return nil, takeError(rc, cerr)
		}
		out = append(out, HealthCheck{
			TokenIndex: int(hc.token_index),
			Authority:  goString(hc.authority),
			Path:       goString(hc.path),
			Headers:    goHeaders(hc.headers, hc.headers_len),
			Body:       goBytes(hc.body),
			Timeout:    time.Duration(hc.timeout_ms) * time.Millisecond,
		})
	}
	return out, nil
}

// OnHealthCheckResult reports the HTTP status of the health check of token tokenIndex (0: it
// failed without a status). Only 200 passes; successThreshold passes in a row bring the token
// back into the rotation. Errors: ErrInvalidArgument for a token index or status out of range.
func (c *Config) OnHealthCheckResult(tokenIndex, status int) error {
	if status < 0 || status > math.MaxUint16 {
		return invalidStatus(status)
	}
	if tokenIndex < 0 {
		return &Error{Code: ErrInvalidArgument, Message: "token index is negative"}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr == nil {
		return closedError("config")
	}
	var cerr *C.AiproxyError
	rc := C.aiproxy_config_on_health_check_result(c.ptr, C.size_t(tokenIndex), C.uint16_t(status), &cerr)
	if rc != C.AIPROXY_OK {
		return takeError(rc, cerr)
	}
	return nil
}
