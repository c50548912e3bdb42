package aiproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const (
	openaiConfig = `{"provider":{"type":"openai","apiTokens":["sk-test-secret"],"modelMapping":{"gpt-alias":"gpt-4o-mini"}}}`
	zhipuConfig  = `{"provider":{"type":"zhipuai","apiTokens":["zp-test-secret"]}}`
)

var jsonHeaders = []Header{
	{Name: "content-type", Value: "application/json"},
	{Name: "authorization", Value: "Bearer client-key"},
}

var sseHeaders = []Header{
	{Name: "content-type", Value: "text/event-stream"},
	{Name: "transfer-encoding", Value: "chunked"},
}

func mustConfig(t testing.TB, js string) *Config {
	t.Helper()
	c, err := NewConfig([]byte(js))
	if err != nil {
		t.Fatalf("NewConfig: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustExchange(t testing.TB, c *Config) *Exchange {
	t.Helper()
	x, err := c.NewExchange()
	if err != nil {
		t.Fatalf("NewExchange: %v", err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func chatRequest(model string, stream bool, text string) []byte {
	req := map[string]any{
		"model":    model,
		"messages": []map[string]string{{"role": "user", "content": text}},
	}
	if stream {
		req["stream"] = true
		req["stream_options"] = map[string]bool{"include_usage": true}
	}
	b, _ := json.Marshal(req)
	return b
}

// openaiCompletion is an upstream chat completion as OpenAI sends it.
func openaiCompletion(model, text string, prompt, completion int) []byte {
	return fmt.Appendf(nil, `{"id":"chatcmpl-1","object":"chat.completion","created":1717171717,"model":%q,`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`,
		model, text, prompt, completion, prompt+completion)
}

// openaiStream is an upstream SSE stream: one content delta per word, a finish chunk, a usage
// chunk and [DONE].
func openaiStream(model string, words []string, prompt int) []byte {
	var b bytes.Buffer
	chunk := func(delta, finish, usage string) {
		fmt.Fprintf(&b, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1717171717,"model":%q,"choices":[`, model)
		if delta != "" || finish != "" {
			if finish == "" {
				finish = "null"
			}
			fmt.Fprintf(&b, `{"index":0,"delta":%s,"finish_reason":%s}`, delta, finish)
		}
		b.WriteString("]")
		if usage != "" {
			b.WriteString(`,"usage":` + usage)
		}
		b.WriteString("}\n\n")
	}
	chunk(`{"role":"assistant","content":""}`, "", "")
	for i, w := range words {
		if i > 0 {
			w = " " + w
		}
		d, _ := json.Marshal(map[string]string{"content": w})
		chunk(string(d), "", "")
	}
	chunk(`{}`, `"stop"`, "")
	chunk("", "", fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`,
		prompt, len(words), prompt+len(words)))
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

func openaiEmbeddings(model string, n int) []byte {
	var items []string
	for i := range n {
		items = append(items, fmt.Sprintf(`{"object":"embedding","index":%d,"embedding":[0.1,0.2,0.3]}`, i))
	}
	return fmt.Appendf(nil, `{"object":"list","data":[%s],"model":%q,"usage":{"prompt_tokens":4,"total_tokens":4}}`,
		strings.Join(items, ","), model)
}

// sseData returns the data fields of every event in an SSE body.
func sseData(body []byte) []string {
	var out []string
	for _, ev := range strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n\n") {
		if strings.TrimSpace(ev) == "" {
			continue
		}
		var data []string
		for _, line := range strings.Split(ev, "\n") {
			if v, ok := strings.CutPrefix(line, "data:"); ok {
				data = append(data, strings.TrimPrefix(v, " "))
			}
		}
		if len(data) > 0 {
			out = append(out, strings.Join(data, "\n"))
		}
	}
	return out
}

// streamText checks an OpenAI SSE body (every event a chat.completion.chunk, then [DONE]) and
// returns the concatenated content and the usage chunk, if any.
func streamText(t testing.TB, body []byte) (string, map[string]any) {
	t.Helper()
	text, usage, err := parseStream(body)
	if err != nil {
		t.Fatal(err)
	}
	return text, usage
}

func parseStream(body []byte) (string, map[string]any, error) {
	events := sseData(body)
	if len(events) == 0 || events[len(events)-1] != "[DONE]" {
		return "", nil, fmt.Errorf("stream does not end with [DONE]: %q", body)
	}
	var text strings.Builder
	var usage map[string]any
	for _, ev := range events[:len(events)-1] {
		var chunk struct {
			Object  string `json:"object"`
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Usage map[string]any `json:"usage"`
		}
		if err := json.Unmarshal([]byte(ev), &chunk); err != nil {
			return "", nil, fmt.Errorf("event is not JSON: %q: %v", ev, err)
		}
		if chunk.Object != "chat.completion.chunk" {
			return "", nil, fmt.Errorf("event object = %q, want chat.completion.chunk: %s", chunk.Object, ev)
		}
		for _, c := range chunk.Choices {
			text.WriteString(c.Delta.Content)
		}
		if chunk.Usage != nil {
			usage = chunk.Usage
		}
	}
	return text.String(), usage, nil
}

func header(hs []Header, name string) (string, bool) {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// splitEvery cuts b into pieces of n bytes (the last may be shorter).
func splitEvery(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// roundTrip drives one translated chat exchange end to end and returns the client-facing body.
func roundTrip(t testing.TB, c *Config, stream bool, text string) (RequestResult, ResponseStart, []byte, int) {
	t.Helper()
	req, start, out, status, err := exchange(c, stream, text)
	if err != nil {
		t.Fatal(err)
	}
	return req, start, out, status
}

// exchange is roundTrip for any goroutine: it reports failures as an error.
func exchange(c *Config, stream bool, text string) (req RequestResult, start ResponseStart, out []byte, status int, err error) {
	x, err := c.NewExchange()
	if err != nil {
		return req, start, nil, 0, fmt.Errorf("NewExchange: %w", err)
	}
	defer x.Close()
	req, err = x.OnRequest("POST", "/v1/chat/completions", jsonHeaders, chatRequest("gpt-4o", stream, text))
	if err != nil {
		return req, start, nil, 0, fmt.Errorf("OnRequest: %w", err)
	}
	if req.Action != Forward {
		return req, start, nil, 0, fmt.Errorf("action = %v, want forward: %s", req.Action, req.Body)
	}
	words := strings.Fields("mock reply to: " + text)
	var upstream []byte
	hdrs := []Header{{Name: "content-type", Value: "application/json"}}
	if stream {
		upstream = openaiStream("gpt-4o", words, 3)
		hdrs = sseHeaders
	} else {
		upstream = openaiCompletion("gpt-4o", strings.Join(words, " "), 3, len(words))
	}
	start, err = x.OnResponseHeaders(200, hdrs)
	if err != nil {
		return req, start, nil, 0, fmt.Errorf("OnResponseHeaders: %w", err)
	}
	for _, piece := range splitEvery(upstream, 37) {
		bc, err := x.OnResponseBody(piece, false)
		if err != nil {
			return req, start, nil, 0, fmt.Errorf("OnResponseBody: %w", err)
		}
		out = append(out, bc.Output(piece)...)
	}
	bc, err := x.OnResponseBody(nil, true)
	if err != nil {
		return req, start, nil, 0, fmt.Errorf("OnResponseBody(eos): %w", err)
	}
	out = append(out, bc.Data...)
	if u, ok := x.Usage(); !ok || u.PromptTokens != 3 || u.CompletionTokens != uint64(len(words)) {
		return req, start, nil, 0, fmt.Errorf("usage = %+v, %v; want prompt 3, completion %d", u, ok, len(words))
	}
	return req, start, out, bc.Status, nil
}
