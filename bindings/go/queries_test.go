package aiproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tests of the calls beyond the main request/response path: retries, failover and health checks,
// configuration queries, client protocol, upstream aborts and usage details.

const (
	tokenA = "sk-token-a"
	tokenB = "sk-token-b"
)

// twoTokenConfig is an openai configuration with two API tokens plus extra provider fields.
func twoTokenConfig(t testing.TB, extra string) *Config {
	t.Helper()
	return mustConfig(t, fmt.Sprintf(`{"provider":{"type":"openai","apiTokens":[%q,%q]%s}}`, tokenA, tokenB, extra))
}

func bearerOf(hs []Header) string {
	v, _ := header(hs, "authorization")
	return v
}

// forwardChat starts a chat exchange and returns it with its Forward result.
func forwardChat(t testing.TB, c *Config, stream bool) (*Exchange, RequestResult) {
	t.Helper()
	x := mustExchange(t, c)
	res, err := x.OnRequest("POST", "/v1/chat/completions", jsonHeaders, chatRequest("gpt-4o", stream, "hi"))
	if err != nil || res.Action != Forward {
		t.Fatalf("OnRequest = %v, %v: %s", res.Action, err, res.Body)
	}
	return x, res
}

func TestRetryUsesTheOtherToken(t *testing.T) {
	c := twoTokenConfig(t, `,"retryOnFailure":{"enabled":true,"maxRetries":3,"retryTimeout":1234}`)
	x, first := forwardChat(t, c, false)
	firstTok := bearerOf(first.Headers)
	if firstTok != "Bearer "+tokenA && firstTok != "Bearer "+tokenB {
		t.Fatalf("first token = %q", firstTok)
	}

	retry, err := x.Retry(429)
	if err != nil {
		t.Fatal(err)
	}
	if retry.Action != Retry || retry.Action.String() != "retry" {
		t.Fatalf("action = %v, want retry", retry.Action)
	}
	if tok := bearerOf(retry.Headers); tok == firstTok || !strings.HasPrefix(tok, "Bearer sk-token-") {
		t.Fatalf("retry token = %q, first %q", tok, firstTok)
	}
	if retry.Authority != first.Authority || retry.Path != first.Path || retry.Model != "gpt-4o" {
		t.Fatalf("retry target = %q %q %q, first %q %q", retry.Authority, retry.Path, retry.Model, first.Authority, first.Path)
	}
	if !retry.BodyReplaced || string(retry.Body) != string(first.Body) {
		t.Fatalf("retry body %v %q, first %q", retry.BodyReplaced, retry.Body, first.Body)
	}
	if !reflect.DeepEqual(retry.RemoveHeaders, first.RemoveHeaders) {
		t.Fatalf("retry removes %q, first %q", retry.RemoveHeaders, first.RemoveHeaders)
	}
	if retry.Timeout != 1234*time.Millisecond {
		t.Fatalf("retry timeout = %v, want retryTimeout 1.234s", retry.Timeout)
	}

	// Both tokens tried: no third attempt although maxRetries allows it.
	again, err := x.Retry(429)
	if err != nil || again.Action != NoRetry || again.Action.String() != "no retry" {
		t.Fatalf("second Retry = %v, %v; want no retry", again.Action, err)
	}
	if again.Authority != "" || again.Headers != nil || again.Body != nil {
		t.Fatalf("NoRetry carries a request: %+v", again)
	}
	// The retry's answer is then handled as the first one.
	if _, err := x.OnResponseHeaders(200, []Header{{Name: "content-type", Value: "application/json"}}); err != nil {
		t.Fatal(err)
	}
	out, err := x.OnResponseBody(openaiCompletion("gpt-4o", "second try", 2, 2), true)
	if err != nil || out.Status != 200 || !strings.Contains(string(out.Data), "second try") {
		t.Fatalf("body = %d %q, %v", out.Status, out.Data, err)
	}
	if r, err := x.Retry(503); err != nil || r.Action != NoRetry {
		t.Fatalf("Retry after the response = %v, %v", r.Action, err)
	}

	// A status that is not retryable, and retries switched off.
	x2, _ := forwardChat(t, c, false)
	if r, err := x2.Retry(200); err != nil || r.Action != NoRetry {
		t.Fatalf("Retry(200) = %v, %v", r.Action, err)
	}
	off := twoTokenConfig(t, "")
	x3, _ := forwardChat(t, off, false)
	if r, err := x3.Retry(503); err != nil || r.Action != NoRetry {
		t.Fatalf("Retry without retryOnFailure = %v, %v", r.Action, err)
	}
	if _, err := x3.Retry(70000); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Retry(70000) err = %v", err)
	}
	x3.Close()
	if _, err := x3.Retry(503); !errors.Is(err, ErrClosed) {
		t.Fatalf("Retry after Close err = %v", err)
	}
}

// RetryNotSent keeps the first answer's status from being charged to the retry's token: with
// failureThreshold 1 and failover on, that token would otherwise leave the rotation too.
func TestRetryNotSent(t *testing.T) {
	for _, notSent := range []bool{true, false} {
		t.Run(fmt.Sprintf("notSent=%v", notSent), func(t *testing.T) {
			c := twoTokenConfig(t, `,"retryOnFailure":{"enabled":true},`+
				`"failover":{"enabled":true,"healthCheckModel":"gpt-4o-mini","failureThreshold":1}`)
			x, first := forwardChat(t, c, false)
			retry, err := x.Retry(429)
			if err != nil || retry.Action != Retry || bearerOf(retry.Headers) == bearerOf(first.Headers) {
				t.Fatalf("Retry = %v, %v", retry.Action, err)
			}
			if got := c.TokensOut(); got != 1 {
				t.Fatalf("tokens out after the first 429 = %d, want 1", got)
			}
			if notSent {
				if err := x.RetryNotSent(); err != nil {
					t.Fatal(err)
				}
			}
			// The host goes on with the answer it has: the first 429.
			if _, err := x.OnResponseHeaders(429, []Header{{Name: "content-type", Value: "application/json"}}); err != nil {
				t.Fatal(err)
			}
			out, err := x.OnResponseBody([]byte(`{"error":{"message":"rate limited","type":"rate_limit"}}`), true)
			if err != nil || out.Status != 429 {
				t.Fatalf("body = %d %q, %v", out.Status, out.Data, err)
			}
			want := 2
			if notSent {
				want = 1
			}
			if got := c.TokensOut(); got != want {
				t.Fatalf("tokens out = %d, want %d", got, want)
			}
		})
	}
	x := mustExchange(t, mustConfig(t, openaiConfig))
	x.Close()
	if err := x.RetryNotSent(); !errors.Is(err, ErrClosed) {
		t.Fatalf("RetryNotSent after Close err = %v", err)
	}
}

func TestTokensOutAndHealthChecks(t *testing.T) {
	c := twoTokenConfig(t, `,"modelMapping":{"probe":"gpt-4o-mini"},"failover":{"enabled":true,`+
		`"healthCheckModel":"probe","failureThreshold":2,"healthCheckInterval":1,"healthCheckTimeout":700}`)
	// The host sends checks: no half-open trials on live traffic.
	if hcs, err := c.DueHealthChecks(); err != nil || hcs != nil {
		t.Fatalf("DueHealthChecks with every token in = %v, %v", hcs, err)
	}
	if got := c.TokensOut(); got != 0 {
		t.Fatalf("TokensOut = %d at start", got)
	}
	// Token a fails every time, b succeeds: a leaves after two failures in a row.
	for i := 0; c.TokensOut() == 0; i++ {
		if i == 200 {
			t.Fatal("token a never left the rotation")
		}
		x, res := forwardChat(t, c, false)
		status := 200
		if bearerOf(res.Headers) == "Bearer "+tokenA {
			status = 503
		}
		if _, err := x.OnResponseHeaders(status, []Header{{Name: "content-type", Value: "application/json"}}); err != nil {
			t.Fatal(err)
		}
		x.Close()
	}
	if got := c.TokensOut(); got != 1 {
		t.Fatalf("TokensOut = %d, want 1", got)
	}
	for range 20 {
		x, res := forwardChat(t, c, false)
		if tok := bearerOf(res.Headers); tok != "Bearer "+tokenB {
			t.Fatalf("token %q used while a is out", tok)
		}
		x.Close()
	}

	due := func() []HealthCheck {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			hcs, err := c.DueHealthChecks()
			if err != nil {
				t.Fatal(err)
			}
			if len(hcs) > 0 || time.Now().After(deadline) {
				return hcs
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	hcs := due()
	if len(hcs) != 1 {
		t.Fatalf("due checks = %+v, want one", hcs)
	}
	hc := hcs[0]
	if hc.TokenIndex != 0 || hc.Authority != "api.openai.com" || hc.Path != "/v1/chat/completions" ||
		hc.Timeout != 700*time.Millisecond {
		t.Fatalf("check = %+v", hc)
	}
	if tok := bearerOf(hc.Headers); tok != "Bearer "+tokenA {
		t.Fatalf("check authorization = %q", tok)
	}
	if ct, _ := header(hc.Headers, "content-type"); ct != "application/json" {
		t.Fatalf("check content-type = %q", ct)
	}
	var body struct {
		Model    string `json:"model"`
		Messages []struct{ Role, Content string }
	}
	if err := json.Unmarshal(hc.Body, &body); err != nil || body.Model != "gpt-4o-mini" ||
		len(body.Messages) != 1 || body.Messages[0].Content != "who are you?" {
		t.Fatalf("check body %q: %v", hc.Body, err)
	}
	// Claimed: not handed out again before its result.
	if again, err := c.DueHealthChecks(); err != nil || len(again) != 0 {
		t.Fatalf("claimed check returned again: %+v, %v", again, err)
	}

	// A failed check keeps the token out; the next one is due after the interval.
	if err := c.OnHealthCheckResult(0, 503); err != nil {
		t.Fatal(err)
	}
	if got := c.TokensOut(); got != 1 {
		t.Fatalf("TokensOut after a failed check = %d", got)
	}
	hcs = due()
	if len(hcs) != 1 || hcs[0].TokenIndex != 0 {
		t.Fatalf("second due checks = %+v", hcs)
	}
	if err := c.OnHealthCheckResult(0, 200); err != nil {
		t.Fatal(err)
	}
	if got := c.TokensOut(); got != 0 {
		t.Fatalf("TokensOut after a passed check = %d, want 0", got)
	}

	for _, bad := range [][2]int{{2, 200}, {-1, 200}, {0, 70000}} {
		if err := c.OnHealthCheckResult(bad[0], bad[1]); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("OnHealthCheckResult(%d, %d) err = %v", bad[0], bad[1], err)
		}
	}
	c.Close()
	if got := c.TokensOut(); got != 0 {
		t.Fatalf("TokensOut after Close = %d", got)
	}
	if _, err := c.DueHealthChecks(); !errors.Is(err, ErrClosed) {
		t.Fatalf("DueHealthChecks after Close err = %v", err)
	}
	if err := c.OnHealthCheckResult(0, 200); !errors.Is(err, ErrClosed) {
		t.Fatalf("OnHealthCheckResult after Close err = %v", err)
	}
}

func TestWarnings(t *testing.T) {
	c := mustConfig(t, `{"provider":{"type":"openai","apiTokens":["sk-test-secret"],`+
		`"notAField":"value-not-logged","subPath":"/x"}}`)
	ws := c.Warnings()
	if len(ws) != 2 {
		t.Fatalf("warnings = %q, want 2", ws)
	}
	joined := strings.Join(ws, "\n")
	if !strings.Contains(joined, "provider.notAField: unknown field") ||
		!strings.Contains(joined, "provider.subPath: a Higress field") {
		t.Fatalf("warnings = %q", ws)
	}
	if strings.Contains(joined, "value-not-logged") || strings.Contains(joined, "sk-test-secret") {
		t.Fatalf("warnings show values: %q", ws)
	}
	if ws := mustConfig(t, openaiConfig).Warnings(); ws != nil {
		t.Fatalf("warnings of a clean config = %q", ws)
	}
	c.Close()
	if ws := c.Warnings(); ws != nil {
		t.Fatalf("warnings after Close = %q", ws)
	}
}

func TestTranslates(t *testing.T) {
	c := mustConfig(t, openaiConfig)
	cases := []struct {
		method, path string
		want         bool
	}{
		{"POST", "/v1/chat/completions", true},
		{"POST", "/v1/chat/completions?x=1", true},
		{"POST", "/v1/embeddings", true},
		{"POST", "/v1/messages", true},
		{"GET", "/v1/chat/completions", false},
		{"POST", "/v1/models", false},
		{"GET", "/v1/models", false},
		{"", "/v1/chat/completions", false},
		{"POST", "", false},
	}
	for _, tc := range cases {
		got, err := c.Translates(tc.method, tc.path)
		if err != nil || got != tc.want {
			t.Errorf("Translates(%q, %q) = %v, %v; want %v", tc.method, tc.path, got, err, tc.want)
		}
	}
	orig := mustConfig(t, `{"provider":{"type":"openai","apiTokens":["sk-test-secret"],"protocol":"original"}}`)
	if got, err := orig.Translates("POST", "/v1/chat/completions"); err != nil || got {
		t.Fatalf("Translates with protocol original = %v, %v", got, err)
	}
	if _, err := c.Translates("PO\xffST", "/v1/chat/completions"); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("non-UTF-8 method err = %v", err)
	}
	c.Close()
	if _, err := c.Translates("POST", "/v1/chat/completions"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Translates after Close err = %v", err)
	}
}

func TestNeedsRequestBody(t *testing.T) {
	openai := mustConfig(t, openaiConfig)
	// Hunyuan signs every request over its body bytes.
	hunyuan := mustConfig(t, `{"provider":{"type":"hunyuan","hunyuanAuthId":"id","hunyuanAuthKey":"key"}}`)
	cases := []struct {
		c            *Config
		method, path string
		want         bool
	}{
		{openai, "POST", "/v1/chat/completions", true},
		{openai, "GET", "/v1/models", false},
		{openai, "POST", "/v1/files", false},
		{hunyuan, "POST", "/v1/chat/completions", true},
		{hunyuan, "GET", "/v1/models", true},
	}
	for i, tc := range cases {
		got, err := tc.c.NeedsRequestBody(tc.method, tc.path)
		if err != nil || got != tc.want {
			t.Errorf("case %d: NeedsRequestBody(%q, %q) = %v, %v; want %v", i, tc.method, tc.path, got, err, tc.want)
		}
	}
	if _, err := openai.NeedsRequestBody("POST", "/v1/\xfe"); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("non-UTF-8 path err = %v", err)
	}
	openai.Close()
	if _, err := openai.NeedsRequestBody("POST", "/v1/chat/completions"); !errors.Is(err, ErrClosed) {
		t.Fatalf("NeedsRequestBody after Close err = %v", err)
	}
}

func TestFirstByteTimeout(t *testing.T) {
	c := mustConfig(t, `{"provider":{"type":"openai","apiTokens":["sk-test-secret"],"firstByteTimeout":1500}}`)
	if got := c.FirstByteTimeout(); got != 1500*time.Millisecond {
		t.Fatalf("FirstByteTimeout = %v, want 1.5s", got)
	}
	if got := mustConfig(t, openaiConfig).FirstByteTimeout(); got != 0 {
		t.Fatalf("FirstByteTimeout unset = %v", got)
	}
	c.Close()
	if got := c.FirstByteTimeout(); got != 0 {
		t.Fatalf("FirstByteTimeout after Close = %v", got)
	}
}

func TestClientProtocol(t *testing.T) {
	c := mustConfig(t, openaiConfig)
	x := mustExchange(t, c)
	if p, err := x.ClientProtocol(); err != nil || p != ProtocolOpenAI {
		t.Fatalf("before the request = %v, %v", p, err)
	}
	msg := []byte(`{"model":"gpt-4o","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`)
	res, err := x.OnRequest("POST", "/v1/messages", []Header{
		{Name: "content-type", Value: "application/json"},
		{Name: "anthropic-version", Value: "2023-06-01"},
	}, msg)
	if err != nil || res.Action != Forward || res.Path != "/v1/chat/completions" {
		t.Fatalf("messages request = %v %q, %v: %s", res.Action, res.Path, err, res.Body)
	}
	if p, err := x.ClientProtocol(); err != nil || p != ProtocolAnthropic || p.String() != "anthropic" {
		t.Fatalf("Anthropic front = %v, %v", p, err)
	}
	y, _ := forwardChat(t, c, false)
	if p, err := y.ClientProtocol(); err != nil || p != ProtocolOpenAI || p.String() != "openai" {
		t.Fatalf("chat completions = %v, %v", p, err)
	}
	x.Close()
	if _, err := x.ClientProtocol(); !errors.Is(err, ErrClosed) {
		t.Fatalf("ClientProtocol after Close err = %v", err)
	}
}

func TestOnUpstreamAbort(t *testing.T) {
	c := mustConfig(t, openaiConfig)

	t.Run("stream", func(t *testing.T) {
		x, _ := forwardChat(t, c, true)
		start, err := x.OnResponseHeaders(200, sseHeaders)
		if err != nil || start.Mode != Stream {
			t.Fatalf("mode = %v, %v", start.Mode, err)
		}
		up := openaiStream("gpt-4o", []string{"partial", "answer", "cut"}, 3)
		cut := strings.Index(string(up), "\n\n") + 2 // first event only
		first, err := x.OnResponseBody(up[:cut], false)
		if err != nil {
			t.Fatal(err)
		}
		abort, err := x.OnUpstreamAbort()
		if err != nil || abort.Unchanged || abort.Status != 0 {
			t.Fatalf("abort = %+v, %v", abort, err)
		}
		events := sseData(abort.Data)
		if len(events) != 2 || events[1] != "[DONE]" {
			t.Fatalf("abort events = %q", events)
		}
		var ev struct {
			Error struct{ Message, Type, Code string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(events[0]), &ev); err != nil || ev.Error.Code != "upstream_reset" || ev.Error.Message == "" {
			t.Fatalf("error event %q: %v", events[0], err)
		}
		// The client sees one well-formed stream ending in [DONE].
		all := append(first.Output(up[:cut]), abort.Data...)
		if got := sseData(all); got[len(got)-1] != "[DONE]" || strings.Count(string(all), "[DONE]") != 1 {
			t.Fatalf("client stream = %q", all)
		}
		again, err := x.OnUpstreamAbort()
		if err != nil || !(again.Unchanged || len(again.Data) == 0) {
			t.Fatalf("second abort = %+v, %v", again, err)
		}
	})

	t.Run("buffer", func(t *testing.T) {
		x, _ := forwardChat(t, c, false)
		if _, err := x.OnResponseHeaders(200, []Header{{Name: "content-type", Value: "application/json"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := x.OnResponseBody([]byte(`{"id":"chatcmpl-1","choi`), false); err != nil {
			t.Fatal(err)
		}
		abort, err := x.OnUpstreamAbort()
		if err != nil || abort.Unchanged || abort.Status != 502 {
			t.Fatalf("abort = %+v, %v", abort, err)
		}
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		if err := json.Unmarshal(abort.Data, &body); err != nil || body.Error.Code != "upstream_reset" {
			t.Fatalf("abort body %q: %v", abort.Data, err)
		}
	})

	t.Run("misuse", func(t *testing.T) {
		x := mustExchange(t, c)
		if _, err := x.OnUpstreamAbort(); !errors.Is(err, ErrBadState) || errors.Is(err, ErrClosed) {
			t.Fatalf("abort before the request err = %v", err)
		}
		x.Close()
		if _, err := x.OnUpstreamAbort(); !errors.Is(err, ErrClosed) {
			t.Fatalf("abort after Close err = %v", err)
		}
	})
}

func TestUsageDetails(t *testing.T) {
	c := mustConfig(t, openaiConfig)
	reply := func(usage string) UsageDetails {
		t.Helper()
		x, _ := forwardChat(t, c, false)
		if d, err := x.UsageDetails(); err != nil || d != (UsageDetails{}) {
			t.Fatalf("details before the reply = %+v, %v", d, err)
		}
		if _, err := x.OnResponseHeaders(200, []Header{{Name: "content-type", Value: "application/json"}}); err != nil {
			t.Fatal(err)
		}
		body := `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o",` +
			`"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],` +
			`"usage":` + usage + `}`
		if _, err := x.OnResponseBody([]byte(body), true); err != nil {
			t.Fatal(err)
		}
		d, err := x.UsageDetails()
		if err != nil {
			t.Fatal(err)
		}
		x.Close()
		if _, err := x.UsageDetails(); !errors.Is(err, ErrClosed) {
			t.Fatalf("UsageDetails after Close err = %v", err)
		}
		return d
	}
	got := reply(`{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,` +
		`"prompt_tokens_details":{"cached_tokens":3},"completion_tokens_details":{"reasoning_tokens":4}}`)
	if want := (UsageDetails{CachedTokens: 3, HasCachedTokens: true, ReasoningTokens: 4, HasReasoningTokens: true}); got != want {
		t.Fatalf("details = %+v, want %+v", got, want)
	}
	got = reply(`{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0}}`)
	if want := (UsageDetails{HasCachedTokens: true}); got != want {
		t.Fatalf("details = %+v, want %+v", got, want)
	}
	if got = reply(`{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}`); got != (UsageDetails{}) {
		t.Fatalf("details without them = %+v", got)
	}
}

// The new Config methods from many goroutines at once (run with -race), while exchanges move
// tokens in and out of the rotation, then Close racing with them.
func TestConfigQueriesConcurrently(t *testing.T) {
	c, err := NewConfig([]byte(fmt.Sprintf(`{"provider":{"type":"openai","apiTokens":[%q,%q],`+
		`"firstByteTimeout":250,"unknownKnob":1,"retryOnFailure":{"enabled":true},`+
		`"failover":{"enabled":true,"healthCheckModel":"gpt-4o-mini","failureThreshold":1,"healthCheckInterval":1}}}`,
		tokenA, tokenB)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const workers, rounds = 8, 150
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(format string, args ...any) {
				errs <- fmt.Errorf("worker %d: "+format, append([]any{w}, args...)...)
			}
			for i := range rounds {
				if ws := c.Warnings(); len(ws) != 1 || !strings.HasPrefix(ws[0], "provider.unknownKnob") {
					fail("warnings = %q", ws)
					return
				}
				if ok, err := c.Translates("POST", "/v1/chat/completions"); err != nil || !ok {
					fail("Translates = %v, %v", ok, err)
					return
				}
				if ok, err := c.NeedsRequestBody("GET", "/v1/models"); err != nil || ok {
					fail("NeedsRequestBody = %v, %v", ok, err)
					return
				}
				if d := c.FirstByteTimeout(); d != 250*time.Millisecond {
					fail("FirstByteTimeout = %v", d)
					return
				}
				if n := c.TokensOut(); n < 0 || n > 2 {
					fail("TokensOut = %d", n)
					return
				}
				hcs, err := c.DueHealthChecks()
				if err != nil {
					fail("DueHealthChecks: %v", err)
					return
				}
				for _, hc := range hcs {
					if hc.TokenIndex < 0 || hc.TokenIndex > 1 || !strings.HasPrefix(bearerOf(hc.Headers), "Bearer sk-token-") {
						fail("check = %+v", hc)
						return
					}
					if err := c.OnHealthCheckResult(hc.TokenIndex, 200); err != nil {
						fail("OnHealthCheckResult: %v", err)
						return
					}
				}
				// Every fourth exchange fails, so tokens leave and come back while others read.
				x, err := c.NewExchange()
				if err != nil {
					fail("NewExchange: %v", err)
					return
				}
				_, err = x.OnRequest("POST", "/v1/chat/completions", jsonHeaders, chatRequest("gpt-4o", false, "hi"))
				var r RequestResult
				if err == nil && i%4 == 0 {
					r, err = x.Retry(503)
				}
				x.Close()
				if err != nil || (i%4 == 0 && r.Action != Retry && r.Action != NoRetry) {
					fail("exchange %d: %v, %v", i, r.Action, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Close while readers run: each call either answers or reports a closed config.
	var wg2 sync.WaitGroup
	for range 4 {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			for range 200 {
				if _, err := c.Translates("POST", "/v1/embeddings"); err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("Translates: %v", err)
					return
				}
				if _, err := c.DueHealthChecks(); err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("DueHealthChecks: %v", err)
					return
				}
				_ = c.Warnings()
				_ = c.TokensOut()
				_ = c.FirstByteTimeout()
			}
		}()
	}
	c.Close()
	wg2.Wait()
}
