package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	aiproxy "github.com/aiproxy/aiproxy/bindings/go"
)

// Proxy is an http.Handler that accepts OpenAI-API requests, translates them with aiproxy for the
// configured provider, forwards them, and translates the provider's answer back, streaming
// server-sent events chunk by chunk.
type Proxy struct {
	Config *aiproxy.Config
	Client *http.Client
	// Scheme of upstream requests ("https" unless testing against a plain-HTTP provider).
	Scheme string
	// Override, when set (host:port), receives every upstream request and callout over plain
	// HTTP, with the provider's authority kept in the Host header.
	Override string
	// MaxRequestBytes caps the client's body (larger gets 413).
	MaxRequestBytes int64
	Log             *slog.Logger
}

// maxCallouts bounds Callout actions per request (the core asks for at most one).
const maxCallouts = 4

// hopHeaders are connection-level headers a proxy must not forward (RFC 9110, section 7.6.1).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func removeHopHeaders(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// writeError answers with an OpenAI-shaped error body.
func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"message": msg, "type": typ, "param": nil, "code": code,
	}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	begin := time.Now()
	log := p.Log.With("method", r.Method, "path", r.URL.Path)

	body, err := io.ReadAll(io.LimitReader(r.Body, p.MaxRequestBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "reading the request body failed")
		return
	}
	if int64(len(body)) > p.MaxRequestBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large",
			fmt.Sprintf("request body exceeds %d bytes", p.MaxRequestBytes))
		return
	}

	ex, err := p.Config.NewExchange()
	if err != nil {
		log.Error("new exchange", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "", "internal error")
		return
	}
	defer ex.Close()

	uri := r.RequestURI
	if !strings.HasPrefix(uri, "/") {
		uri = r.URL.RequestURI()
	}
	res, err := ex.OnRequest(r.Method, uri, aiproxy.HeadersFromHTTP(r.Header), body)
	for i := 0; err == nil && res.Action == aiproxy.Callout; i++ {
		if i == maxCallouts {
			err = errors.New("too many callouts")
			break
		}
		status, cbody := p.callout(r.Context(), &res, log)
		res, err = ex.OnCalloutResponse(status, cbody)
	}
	if err != nil {
		log.Error("request translation", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "", "internal error")
		return
	}

	if res.Action == aiproxy.LocalReply {
		res.ApplyTo(w.Header())
		w.Header().Set("Content-Length", fmt.Sprint(len(res.Body)))
		w.WriteHeader(res.Status)
		w.Write(res.Body)
		log.Info("local reply", "status", res.Status, "duration", time.Since(begin))
		return
	}

	// Forward.
	if res.BodyReplaced {
		body = res.Body
	}
	resp, err := p.forward(r, &res, body)
	if err != nil {
		log.Warn("upstream request failed", "authority", res.Authority, "err", err)
		if r.Context().Err() != nil {
			return // the client went away
		}
		writeError(w, http.StatusBadGateway, "upstream_error", "upstream_unavailable",
			"the upstream provider could not be reached")
		return
	}
	defer resp.Body.Close()

	start, err := ex.OnResponseHeaders(resp.StatusCode, aiproxy.HeadersFromHTTP(resp.Header))
	if err != nil {
		log.Error("response translation", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "", "internal error")
		return
	}
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	removeHopHeaders(h)
	start.ApplyTo(h)

	status := resp.StatusCode
	switch start.Mode {
	case aiproxy.Buffer:
		status, err = p.buffer(w, resp, ex)
	default: // Stream, Passthrough: send headers now, then each chunk as it arrives.
		err = p.stream(w, resp, ex, start.Mode)
	}
	if err != nil {
		log.Warn("response", "mode", start.Mode, "err", err)
		if errors.Is(err, errUpstreamBody) && start.Mode != aiproxy.Buffer {
			// Headers are out: cut the connection so the client sees a truncated response.
			panic(http.ErrAbortHandler)
		}
		return
	}
	attrs := []any{"status", status, "mode", start.Mode.String(), "model", res.Model,
		"duration", time.Since(begin)}
	if u, ok := ex.Usage(); ok {
		attrs = append(attrs, "prompt_tokens", u.PromptTokens, "completion_tokens", u.CompletionTokens,
			"total_tokens", u.TotalTokens)
	}
	log.Info("exchange done", attrs...)
}

// errUpstreamBody marks a failure reading the upstream body (as opposed to writing to the client).
var errUpstreamBody = errors.New("reading the upstream body failed")

// target returns the URL prefix (scheme://host) and the Host header for a request to authority.
func (p *Proxy) target(authority string) (prefix, host string) {
	if p.Override != "" {
		return "http://" + p.Override, authority
	}
	return p.Scheme + "://" + authority, authority
}

func (p *Proxy) forward(r *http.Request, res *aiproxy.RequestResult, body []byte) (*http.Response, error) {
	prefix, host := p.target(res.Authority)
	// The request lives as long as the client's; res.Timeout bounds the wait for upstream headers.
	ctx, cancel := context.WithCancelCause(r.Context())
	timer := time.AfterFunc(res.Timeout, func() { cancel(fmt.Errorf("no upstream response within %v", res.Timeout)) })
	var rd io.Reader = http.NoBody
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, prefix+res.Path, rd)
	if err != nil {
		timer.Stop()
		cancel(nil)
		return nil, err
	}
	out.Host = host
	out.Header = r.Header.Clone()
	removeHopHeaders(out.Header)
	res.ApplyTo(out.Header)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // no Go default
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		out.Header.Add("X-Forwarded-For", ip)
	}
	resp, err := p.Client.Do(out)
	timer.Stop()
	if err != nil {
		cancel(nil)
		if cause := context.Cause(ctx); cause != nil && r.Context().Err() == nil {
			return nil, cause
		}
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// callout performs a Callout action: dial the callout's service (Cluster:Port, TLS on 443, or the
// override) with the callout's authority as Host. It returns status 0 when the fetch failed.
func (p *Proxy) callout(ctx context.Context, res *aiproxy.RequestResult, log *slog.Logger) (int, []byte) {
	prefix := "http://" + p.Override
	if p.Override == "" {
		scheme := "http"
		if res.Port == 443 {
			scheme = "https"
		}
		prefix = scheme + "://" + net.JoinHostPort(res.Cluster, fmt.Sprint(res.Port))
	}
	ctx, cancel := context.WithTimeout(ctx, res.Timeout)
	defer cancel()
	method := res.Method
	if method == "" {
		method = http.MethodGet
	}
	var payload io.Reader
	if len(res.Body) > 0 {
		payload = bytes.NewReader(res.Body) // e.g. a Vertex service account's token exchange
	}
	req, err := http.NewRequestWithContext(ctx, method, prefix+res.Path, payload)
	if err != nil {
		log.Warn("callout", "err", err)
		return 0, nil
	}
	req.Host = res.Authority
	res.ApplyTo(req.Header)
	resp, err := p.Client.Do(req)
	if err != nil {
		log.Warn("callout", "authority", res.Authority, "err", err)
		return 0, nil
	}
	defer resp.Body.Close()
	// The core rejects context text above 8 MiB; read one byte more so it can tell.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20+1))
	if err != nil {
		log.Warn("callout body", "err", err)
		return 0, nil
	}
	log.Info("callout", "authority", res.Authority, "path", res.Path, "status", resp.StatusCode)
	return resp.StatusCode, body
}

// stream sends the headers at once and then each chunk's output as the upstream delivers it,
// flushing after every write (Stream mode: translated SSE; Passthrough: the bytes unchanged).
func (p *Proxy) stream(w http.ResponseWriter, resp *http.Response, ex *aiproxy.Exchange, mode aiproxy.Mode) error {
	rc := http.NewResponseController(w)
	if mode == aiproxy.Stream {
		w.Header().Del("Content-Length")
	}
	w.WriteHeader(resp.StatusCode)
	if err := rc.Flush(); err != nil {
		return err
	}
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		eos := rerr == io.EOF
		if rerr != nil && !eos {
			return fmt.Errorf("%w: %v", errUpstreamBody, rerr)
		}
		if n == 0 && !eos {
			continue
		}
		out, err := ex.OnResponseBody(buf[:n], eos)
		if err != nil {
			return err
		}
		if data := out.Output(buf[:n]); len(data) > 0 {
			if _, err := w.Write(data); err != nil {
				return err
			}
			if err := rc.Flush(); err != nil {
				return err
			}
		}
		if eos {
			return nil
		}
	}
}

// buffer feeds the whole upstream body to the exchange and sends the translated body with the
// status the core returns.
func (p *Proxy) buffer(w http.ResponseWriter, resp *http.Response, ex *aiproxy.Exchange) (int, error) {
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		eos := rerr == io.EOF
		if rerr != nil && !eos {
			writeError(w, http.StatusBadGateway, "upstream_error", "upstream_body_failed",
				"reading the upstream response failed")
			return http.StatusBadGateway, fmt.Errorf("%w: %v", errUpstreamBody, rerr)
		}
		out, err := ex.OnResponseBody(buf[:n], eos)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "server_error", "", "internal error")
			return http.StatusInternalServerError, err
		}
		if !eos {
			continue
		}
		status := out.Status
		if status == 0 {
			status = resp.StatusCode
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(out.Data)))
		w.WriteHeader(status)
		_, err = w.Write(out.Data)
		return status, err
	}
}
