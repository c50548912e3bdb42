package aiproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiproxy/aiproxy/bindings/go/internal/cheap"
)

func TestVersion(t *testing.T) {
	if v := Version(); v == "" || !strings.Contains(v, ".") {
		t.Fatalf("Version() = %q", v)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name  string
		json  string
		code  Code
		field string
	}{
		{"not json", `{"provider":`, ErrConfigJSON, ""},
		{"empty", ``, ErrConfigJSON, ""},
		{"not an object", `[1]`, ErrConfigInvalid, ""},
		{"no provider", `{}`, ErrConfigInvalid, "provider"},
		{"unknown type", `{"provider":{"type":"nope","apiTokens":["k"]}}`, ErrConfigInvalid, "provider.type"},
		{"missing token", `{"provider":{"type":"openai"}}`, ErrConfigInvalid, "provider.apiTokens"},
		{"azure without url", `{"provider":{"type":"azure","apiTokens":["sk-test-secret"]}}`, ErrConfigInvalid, "provider.azureServiceUrl"},
		{"azure without api-version", `{"provider":{"type":"azure","apiTokens":["sk-test-secret"],"azureServiceUrl":"https://x.openai.azure.com/openai/deployments/d/chat/completions"}}`, ErrConfigInvalid, "provider.azureServiceUrl"},
		{"bad timeout", `{"provider":{"type":"openai","apiTokens":["sk-test-secret"],"timeout":"soon"}}`, ErrConfigInvalid, "provider.timeout"},
		{"bad context port", `{"provider":{"type":"openai","apiTokens":["sk-test-secret"],"context":{"fileUrl":"http://h/f","serviceName":"s","servicePort":70000}}}`, ErrConfigInvalid, "provider.context.servicePort"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewConfig([]byte(tc.json))
			if err == nil {
				c.Close()
				t.Fatal("NewConfig succeeded")
			}
			if c != nil {
				t.Fatal("non-nil config with an error")
			}
			if !errors.Is(err, tc.code) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.code)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err %T is not *Error", err)
			}
			if e.Code != tc.code || e.Field != tc.field || e.Message == "" {
				t.Fatalf("got %#v, want code %v field %q", e, tc.code, tc.field)
			}
			if strings.Contains(err.Error(), "sk-test-secret") {
				t.Fatalf("error leaks the API token: %v", err)
			}
			if errors.Is(err, ErrClosed) || errors.Is(err, ErrBadState) {
				t.Fatalf("config error matches the wrong sentinel: %v", err)
			}
		})
	}
}

func TestChatBuffered(t *testing.T) {
	c := mustConfig(t, openaiConfig)
	req, start, out, status := roundTrip(t, c, false, "hello there")

	if req.Authority != "api.openai.com" || req.Path != "/v1/chat/completions" || req.Model != "gpt-4o" {
		t.Fatalf("forward target = %q %q model %q", req.Authority, req.Path, req.Model)
	}
	if v, _ := header(req.Headers, "authorization"); v != "Bearer sk-test-secret" {
		t.Fatalf("authorization = %q", v)
	}
	if !reflect.DeepEqual(req.RemoveHeaders, []string{"authorization", "content-length", "accept-encoding"}) {
		t.Fatalf("remove headers = %q", req.RemoveHeaders)
	}
	if !req.BodyReplaced || !json.Valid(req.Body) || req.Timeout <= 0 {
		t.Fatalf("body replaced %v, body %q, timeout %v", req.BodyReplaced, req.Body, req.Timeout)
	}
	if start.Mode != Buffer {
		t.Fatalf("mode = %v, want buffer", start.Mode)
	}
	if v, _ := header(start.Headers, "content-type"); v != "application/json" {
		t.Fatalf("content-type = %q", v)
	}
	if status != 200 {
		t.Fatalf("status = %d", status)
	}
	var resp struct {
		Object  string `json:"object"`
		Model   string `json:"model"`
		Choices []struct {
			Message struct{ Role, Content string } `json:"message"`
		} `json:"choices"`
		Usage struct {
			TotalTokens int `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("body %q: %v", out, err)
	}
	if resp.Object != "chat.completion" || len(resp.Choices) != 1 ||
		resp.Choices[0].Message.Content != "mock reply to: hello there" || resp.Usage.TotalTokens != 8 {
		t.Fatalf("unexpected completion: %s", out)
	}
}

func TestModelMapping(t *testing.T) {
	c := mustConfig(t, openaiConfig)
	x := mustExchange(t, c)
	req, err := x.OnRequest("POST", "/v1/chat/completions", jsonHeaders, chatRequest("gpt-alias", false, "hi"))
	if err != nil || req.Action != Forward {
		t.Fatalf("OnRequest: %v %v", req.Action, err)
	}
	var body struct{ Model string }
	if err := json.Unmarshal(req.Body, &body); err != nil || body.Model != "gpt-4o-mini" || req.Model != "gpt-4o-mini" {
		t.Fatalf("mapped model: result %q body %s (%v)", req.Model, req.Body, err)
	}
}

func TestChatStream(t *testing.T) {
	for _, cfg := range []string{openaiConfig, zhipuConfig} {
		c := mustConfig(t, cfg)
		_, start, out, status := roundTrip(t, c, true, "tell me a story about streams")
		if start.Mode != Stream || status != 0 {
			t.Fatalf("mode %v status %d, want stream and 0", start.Mode, status)
		}
		if v, _ := header(start.Headers, "content-type"); v != "text/event-stream" {
			t.Fatalf("content-type = %q", v)
		}
		text, usage := streamText(t, out)
		if text != "mock reply to: tell me a story about streams" {
			t.Fatalf("streamed text = %q", text)
		}
		if usage == nil || usage["total_tokens"] != float64(3+9) {
			t.Fatalf("usage chunk = %v", usage)
		}
	}
}

// Each translated chunk comes back as soon as its event is complete.
func TestStreamIsIncremental(t *testing.T) {
	c := mustConfig(t, openaiConfig)
	x := mustExchange(t, c)
	if _, err := x.OnRequest("POST", "/v1/chat/completions", jsonHeaders, chatRequest("gpt-4o", true, "a b")); err != nil {
		t.Fatal(err)
	}
	if _, err := x.OnResponseHeaders(200, sseHeaders); err != nil {
		t.Fatal(err)
	}
	events := strings.SplitAfter(string(openaiStream("gpt-4o", []string{"one", "two", "three"}, 2)), "\n\n")
	for _, ev := range events {
		if ev == "" {
			continue
		}
		half := len(ev) / 2
		bc, err := x.OnResponseBody([]byte(ev[:half]), false)
		if err != nil || len(bc.Data) != 0 || bc.Unchanged {
			t.Fatalf("half event gave %q, %v", bc.Data, err)
		}
		bc, err = x.OnResponseBody([]byte(ev[half:]), false)
		if err != nil || len(bc.Data) == 0 {
			t.Fatalf("complete event %q gave nothing (%v)", ev, err)
		}
	}
	if _, err := x.OnResponseBody(nil, true); err != nil {
		t.Fatal(err)
	}
}

func TestEmbeddings(t *testing.T) {
	c := mustConfig(t, openaiConfig)
	x := mustExchange(t, c)
	req, err := x.OnRequest("POST", "/v1/embeddings", jsonHeaders,
		[]byte(`{"model":"text-embedding-3-small","input":["a","b"]}`))
	if err != nil || req.Action != Forward || req.Path != "/v1/embeddings" {
		t.Fatalf("OnRequest: %+v %v", req, err)
	}
	start, err := x.OnResponseHeaders(200, []Header{{Name: "content-type", Value: "application/json"}})
	if err != nil || start.Mode != Buffer {
		t.Fatalf("OnResponseHeaders: %v %v", start.Mode, err)
	}
	bc, err := x.OnResponseBody(openaiEmbeddings("text-embedding-3-small", 2), true)
	if err != nil || bc.Status != 200 {
		t.Fatalf("OnResponseBody: %v %v", bc.Status, err)
	}
	var resp struct {
		Object string
		Data   []struct {
			Object    string
			Index     int
			Embedding []float64
		}
	}
	if err := json.Unmarshal(bc.Data, &resp); err != nil || resp.Object != "list" || len(resp.Data) != 2 ||
		resp.Data[1].Index != 1 || len(resp.Data[1].Embedding) != 3 {
		t.Fatalf("embeddings body %s (%v)", bc.Data, err)
	}
	if u, ok := x.Usage(); !ok || u.PromptTokens != 4 || u.TotalTokens != 4 {
		t.Fatalf("usage = %+v %v", u, ok)
	}

	// An invalid embeddings request is answered locally.
	y := mustExchange(t, c)
	req, err = y.OnRequest("POST", "/v1/embeddings", jsonHeaders, []byte(`{"model":"m","input":5}`))
	if err != nil || req.Action != LocalReply || req.Status != 400 || !strings.Contains(string(req.Body), `"param":"input"`) {
		t.Fatalf("invalid input: %+v %s %v", req, req.Body, err)
	}
}

func TestUpstreamError(t *testing.T) {
	c := mustConfig(t, openaiConfig)
	x := mustExchange(t, c)
	if _, err := x.OnRequest("POST", "/v1/chat/completions", jsonHeaders, chatRequest("gpt-4o", true, "hi")); err != nil {
		t.Fatal(err)
	}
	start, err := x.OnResponseHeaders(401, []Header{{Name: "content-type", Value: "application/json"}})
	if err != nil || start.Mode != Buffer {
		t.Fatalf("mode %v %v, want buffer", start.Mode, err)
	}
	body := []byte(`{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
	bc, err := x.OnResponseBody(body, true)
	if err != nil || bc.Status != 401 {
		t.Fatalf("status %d %v", bc.Status, err)
	}
	var e struct {
		Error struct{ Message, Type string } `json:"error"`
	}
	if err := json.Unmarshal(bc.Data, &e); err != nil || e.Error.Message == "" {
		t.Fatalf("error body %s (%v)", bc.Data, err)
	}
	if _, ok := x.Usage(); ok {
		t.Fatal("usage reported for an error")
	}
}

func TestLocalReply(t *testing.T) {
	c := mustConfig(t, openaiConfig)
	for _, body := range []string{`not json`, `{"messages":[]}`, `{"model":"m","messages":"x"}`} {
		x := mustExchange(t, c)
		r, err := x.OnRequest("POST", "/v1/chat/completions", jsonHeaders, []byte(body))
		if err != nil || r.Action != LocalReply || r.Status != 400 {
			t.Fatalf("%s: %+v %v", body, r, err)
		}
		if v, _ := header(r.Headers, "content-type"); v != "application/json" {
			t.Fatalf("content-type %q", v)
		}
		var e struct {
			Error struct{ Message, Type string } `json:"error"`
		}
		if err := json.Unmarshal(r.Body, &e); err != nil || e.Error.Type != "invalid_request_error" {
			t.Fatalf("reply body %s (%v)", r.Body, err)
		}
		// After a local reply the response side passes bytes through.
		start, err := x.OnResponseHeaders(400, nil)
		if err != nil || start.Mode != Passthrough {
			t.Fatalf("after local reply: %v %v", start.Mode, err)
		}
	}
}

func TestPassthrough(t *testing.T) {
	c := mustConfig(t, openaiConfig)
	x := mustExchange(t, c)
	r, err := x.OnRequest("GET", "/v1/models", []Header{{Name: "authorization", Value: "Bearer client"}}, nil)
	if err != nil || r.Action != Forward || r.BodyReplaced || r.Path != "/v1/models" || r.Model != "" {
		t.Fatalf("%+v %v", r, err)
	}
	start, err := x.OnResponseHeaders(200, []Header{{Name: "content-type", Value: "application/json"}})
	if err != nil || start.Mode != Passthrough || len(start.Headers) != 0 {
		t.Fatalf("%+v %v", start, err)
	}
	in := []byte(`{"object":"list","data":[]}`)
	bc, err := x.OnResponseBody(in, true)
	if err != nil || !bc.Unchanged || len(bc.Data) != 0 || string(bc.Output(in)) != string(in) {
		t.Fatalf("%+v %v", bc, err)
	}
}

func TestCallout(t *testing.T) {
	cfg := `{"provider":{"type":"openai","apiTokens":["sk-test-secret"],` +
		`"context":{"fileUrl":"http://files.internal/ai/context.txt","serviceName":"files.svc","servicePort":8080}}}`
	c := mustConfig(t, cfg)

	x := mustExchange(t, c)
	r, err := x.OnRequest("POST", "/v1/chat/completions", jsonHeaders, chatRequest("gpt-4o", false, "hi"))
	if err != nil || r.Action != Callout {
		t.Fatalf("%+v %v", r, err)
	}
	if r.Authority != "files.internal" || r.Path != "/ai/context.txt" || r.Cluster != "files.svc" ||
		r.Port != 8080 || r.Method != "GET" || r.Timeout <= 0 {
		t.Fatalf("callout = %+v", r)
	}
	if _, err := x.OnResponseHeaders(200, nil); !errors.Is(err, ErrBadState) {
		t.Fatalf("response before the callout finished: %v", err)
	}
	r, err = x.OnCalloutResponse(200, []byte("The capital of Mockland is Testville."))
	if err != nil || r.Action != Forward {
		t.Fatalf("%+v %v", r, err)
	}
	var body struct {
		Messages []struct{ Role, Content string }
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || len(body.Messages) != 2 ||
		body.Messages[0].Role != "system" || !strings.Contains(body.Messages[0].Content, "Testville") {
		t.Fatalf("body with context: %s (%v)", r.Body, err)
	}
	if _, err := x.OnCalloutResponse(200, nil); !errors.Is(err, ErrBadState) {
		t.Fatalf("second callout response: %v", err)
	}

	// A failed callout (status 0) becomes a 502 local reply.
	y := mustExchange(t, c)
	if _, err := y.OnRequest("POST", "/v1/chat/completions", jsonHeaders, chatRequest("gpt-4o", false, "hi")); err != nil {
		t.Fatal(err)
	}
	r, err = y.OnCalloutResponse(0, nil)
	if err != nil || r.Action != LocalReply || r.Status != 502 {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestResultsAreCopies(t *testing.T) {
	c := mustConfig(t, openaiConfig)
	x, err := c.NewExchange()
	if err != nil {
		t.Fatal(err)
	}
	r, err := x.OnRequest("POST", "/v1/chat/completions", jsonHeaders, chatRequest("gpt-4o", false, "keep me"))
	if err != nil {
		t.Fatal(err)
	}
	saved := string(r.Body)
	savedHeaders := append([]Header(nil), r.Headers...)
	start, _ := x.OnResponseHeaders(200, []Header{{Name: "content-type", Value: "application/json"}})
	bc, _ := x.OnResponseBody(openaiCompletion("gpt-4o", "x", 1, 1), true)
	x.Close()
	runtime.GC()
	if string(r.Body) != saved || !reflect.DeepEqual(r.Headers, savedHeaders) || !strings.Contains(saved, "keep me") {
		t.Fatal("request result changed after later calls")
	}
	if start.Mode != Buffer || !json.Valid(bc.Data) {
		t.Fatalf("results after close: %v %s", start.Mode, bc.Data)
	}
}

func TestMisuse(t *testing.T) {
	c := mustConfig(t, openaiConfig)

	t.Run("body before headers", func(t *testing.T) {
		x := mustExchange(t, c)
		if _, err := x.OnResponseBody([]byte("x"), false); !errors.Is(err, ErrBadState) {
			t.Fatalf("err = %v", err)
		}
		if _, err := x.OnResponseHeaders(200, nil); !errors.Is(err, ErrBadState) {
			t.Fatalf("headers before request: %v", err)
		}
	})
	t.Run("second request", func(t *testing.T) {
		x := mustExchange(t, c)
		body := chatRequest("gpt-4o", false, "hi")
		if _, err := x.OnRequest("POST", "/v1/chat/completions", nil, body); err != nil {
			t.Fatal(err)
		}
		_, err := x.OnRequest("POST", "/v1/chat/completions", nil, body)
		var e *Error
		if !errors.As(err, &e) || e.Code != ErrBadState || e.Message == "" || errors.Is(err, ErrClosed) {
			t.Fatalf("err = %#v", err)
		}
	})
	t.Run("callout response without callout", func(t *testing.T) {
		x := mustExchange(t, c)
		if _, err := x.OnCalloutResponse(200, nil); !errors.Is(err, ErrBadState) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("body after end", func(t *testing.T) {
		x := mustExchange(t, c)
		x.OnRequest("POST", "/v1/chat/completions", nil, chatRequest("gpt-4o", false, "hi"))
		x.OnResponseHeaders(200, []Header{{Name: "content-type", Value: "application/json"}})
		if _, err := x.OnResponseBody(openaiCompletion("gpt-4o", "a", 1, 1), true); err != nil {
			t.Fatal(err)
		}
		if _, err := x.OnResponseBody(nil, true); !errors.Is(err, ErrBadState) {
			t.Fatalf("err = %v", err)
		}
		if _, err := x.OnResponseHeaders(200, nil); !errors.Is(err, ErrBadState) {
			t.Fatalf("headers twice: %v", err)
		}
	})
	t.Run("invalid arguments", func(t *testing.T) {
		x := mustExchange(t, c)
		if _, err := x.OnRequest("POST", "/v1/chat/completions", []Header{{Name: "x", Value: "\xff\xfe"}}, nil); !errors.Is(err, ErrInvalidUTF8) {
			t.Fatalf("invalid UTF-8 header: %v", err)
		}
		if _, err := x.OnRequest("POST\xff", "/v1/chat/completions", nil, nil); !errors.Is(err, ErrInvalidUTF8) {
			t.Fatalf("invalid UTF-8 method: %v", err)
		}
		if _, err := x.OnResponseHeaders(70000, nil); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("status 70000: %v", err)
		}
		if _, err := x.OnCalloutResponse(-1, nil); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("status -1: %v", err)
		}
		// Empty method and path are accepted (and passed through, not translated).
		if r, err := x.OnRequest("", "", nil, nil); err != nil || r.Action != Forward {
			t.Fatalf("empty method/path: %+v %v", r, err)
		}
	})
	t.Run("use after close", func(t *testing.T) {
		x, err := c.NewExchange()
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		if err := x.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		checks := map[string]error{}
		_, checks["OnRequest"] = x.OnRequest("POST", "/v1/chat/completions", nil, nil)
		_, checks["OnCalloutResponse"] = x.OnCalloutResponse(200, nil)
		_, checks["OnResponseHeaders"] = x.OnResponseHeaders(200, nil)
		_, checks["OnResponseBody"] = x.OnResponseBody(nil, true)
		for name, err := range checks {
			if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrBadState) {
				t.Errorf("%s after Close: %v", name, err)
			}
		}
		if _, ok := x.Usage(); ok {
			t.Error("Usage after Close reported usage")
		}
	})
	t.Run("config closed", func(t *testing.T) {
		c2, err := NewConfig([]byte(openaiConfig))
		if err != nil {
			t.Fatal(err)
		}
		x, err := c2.NewExchange()
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		c2.Close()
		c2.Close()
		if _, err := c2.NewExchange(); !errors.Is(err, ErrClosed) {
			t.Fatalf("NewExchange after Close: %v", err)
		}
		// The exchange holds its own reference to the configuration.
		r, err := x.OnRequest("POST", "/v1/chat/completions", nil, chatRequest("gpt-4o", false, "hi"))
		if err != nil || r.Action != Forward || r.Authority != "api.openai.com" {
			t.Fatalf("exchange after config Close: %+v %v", r, err)
		}
	})
}

// One Config shared by many goroutines, each running complete exchanges.
func TestConcurrentConfig(t *testing.T) {
	c := mustConfig(t, openaiConfig)
	const goroutines, perG = 32, 20
	var wg sync.WaitGroup
	errs := make(chan string, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				stream := (g+i)%2 == 0
				text := strings.Repeat("word ", 1+(g+i)%5) + "end"
				_, _, out, _, err := exchange(c, stream, text)
				if err != nil {
					errs <- err.Error()
					return
				}
				want := "mock reply to: " + text
				var got string
				if stream {
					if got, _, err = parseStream(out); err != nil {
						errs <- err.Error()
						return
					}
				} else {
					var resp struct {
						Choices []struct{ Message struct{ Content string } }
					}
					if err := json.Unmarshal(out, &resp); err != nil || len(resp.Choices) != 1 {
						errs <- "bad body " + string(out)
						return
					}
					got = resp.Choices[0].Message.Content
				}
				if got != strings.Join(strings.Fields(want), " ") {
					errs <- "got " + got + " want " + want
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// Misuse: many goroutines drive one Exchange at once. Calls are serialised, so the state machine
// sees them one at a time: exactly one OnRequest wins and every other call succeeds or fails with
// ErrBadState / ErrClosed, never a crash or a race.
func TestConcurrentExchangeMisuse(t *testing.T) {
	c := mustConfig(t, openaiConfig)
	for round := range 20 {
		x, err := c.NewExchange()
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		forwards := 0
		body := chatRequest("gpt-4o", true, "race")
		stream := openaiStream("gpt-4o", []string{"a", "b"}, 1)
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				switch g % 4 {
				case 0:
					var r RequestResult
					r, err = x.OnRequest("POST", "/v1/chat/completions", jsonHeaders, body)
					if err == nil && r.Action == Forward {
						mu.Lock()
						forwards++
						mu.Unlock()
					}
				case 1:
					_, err = x.OnResponseHeaders(200, sseHeaders)
				case 2:
					_, err = x.OnResponseBody(stream, g == 14)
				case 3:
					x.Usage()
					if g == 15 && round%2 == 0 {
						err = x.Close()
					}
				}
				if err != nil && !errors.Is(err, ErrBadState) {
					t.Errorf("unexpected error: %v", err)
				}
			}()
		}
		wg.Wait()
		x.Close()
		if forwards > 1 {
			t.Fatalf("%d requests were forwarded on one exchange", forwards)
		}
	}
}

// Handles that callers forget to Close are released by cleanups.
func TestCleanupReleasesForgottenHandles(t *testing.T) {
	before := cleanedUp.Load()
	for range 100 {
		c, err := NewConfig([]byte(openaiConfig))
		if err != nil {
			t.Fatal(err)
		}
		x, err := c.NewExchange()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := x.OnRequest("POST", "/v1/chat/completions", nil, chatRequest("gpt-4o", false, "x")); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for cleanedUp.Load()-before < 200 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := cleanedUp.Load() - before; n < 200 {
		t.Fatalf("only %d of 200 forgotten handles were released", n)
	}
}

func TestHTTPHelpers(t *testing.T) {
	h := http.Header{"Authorization": {"Bearer client"}, "Content-Length": {"10"}, "X-Multi": {"a", "b"}}
	hs := HeadersFromHTTP(h)
	if len(hs) != 4 {
		t.Fatalf("HeadersFromHTTP = %v", hs)
	}
	if v, _ := header(hs, "authorization"); v != "Bearer client" {
		t.Fatalf("authorization = %q", v)
	}
	r := RequestResult{
		RemoveHeaders: []string{"authorization", "content-length"},
		Headers:       []Header{{Name: "authorization", Value: "Bearer upstream"}, {Name: "x-multi", Value: "c"}, {Name: "x-multi", Value: "d"}},
	}
	r.ApplyTo(h)
	want := http.Header{"Authorization": {"Bearer upstream"}, "X-Multi": {"c", "d"}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("after ApplyTo: %v", h)
	}
}

// Closing a Config while other goroutines create exchanges from it: each NewExchange either
// succeeds (and the exchange works) or fails with ErrClosed.
func TestConfigCloseWhileInUse(t *testing.T) {
	for range 10 {
		c, err := NewConfig([]byte(openaiConfig))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					x, err := c.NewExchange()
					if err != nil {
						if !errors.Is(err, ErrClosed) {
							errs <- err
						}
						return
					}
					r, err := x.OnRequest("POST", "/v1/chat/completions", nil, chatRequest("gpt-4o", false, "x"))
					x.Close()
					if err != nil || r.Action != Forward {
						errs <- fmt.Errorf("exchange from a closing config: %v %v", r.Action, err)
						return
					}
				}
			}()
		}
		time.Sleep(time.Millisecond)
		c.Close()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

// Forgetting to Close thousands of handles does not leak: cleanups free the C side, so the C heap
// in use returns to where it was. The measurement runs in a child process with glibc's per-thread
// caches off (freed chunks parked there would count as in use).
func TestNoLeakWhenHandlesAreForgotten(t *testing.T) {
	if _, ok := cheap.InUse(); !ok {
		t.Skip("C heap statistics need glibc (mallinfo2 or mallinfo)")
	}
	if os.Getenv("AIPROXY_LEAK_CHILD") != "1" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestNoLeakWhenHandlesAreForgotten$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "AIPROXY_LEAK_CHILD=1", "GLIBC_TUNABLES=glibc.malloc.tcache_count=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("leak check: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "C heap") {
				t.Log(strings.TrimSpace(line))
			}
		}
		return
	}
	before := cleanedUp.Load()
	settle := func() int64 {
		for range 10 {
			runtime.GC()
			time.Sleep(5 * time.Millisecond)
		}
		n, _ := cheap.InUse()
		return n
	}
	round := func() {
		for range 2000 {
			c, _ := NewConfig([]byte(openaiConfig))
			x, _ := c.NewExchange()
			x.OnRequest("POST", "/v1/chat/completions", jsonHeaders, chatRequest("gpt-4o", true, "leak check"))
			x.OnResponseHeaders(200, sseHeaders)
			x.OnResponseBody(openaiStream("gpt-4o", []string{"a", "b", "c"}, 2), true)
		}
	}
	round()
	base := settle()
	for range 4 {
		round()
	}
	after := settle()
	t.Logf("C heap in use: %d KiB after 2,000 forgotten exchanges, %d KiB after 10,000", base>>10, after>>10)
	// One leaked exchange per iteration would be megabytes.
	if grown := after - base; grown > 64<<10 {
		t.Fatalf("C heap grew by %d KiB over 8,000 forgotten exchanges", grown>>10)
	}
	if n := cleanedUp.Load() - before; n < 2*10000 {
		t.Fatalf("only %d of %d forgotten handles were released", n, 2*10000)
	}
}
