package aiproxy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchExchange runs one complete exchange: request translation, response headers, the upstream
// body fed in the given chunks, usage.
func benchExchange(b *testing.B, c *Config, path string, reqBody []byte, respHeaders []Header, chunks [][]byte) int {
	x, err := c.NewExchange()
	if err != nil {
		b.Fatal(err)
	}
	r, err := x.OnRequest("POST", path, jsonHeaders, reqBody)
	if err != nil || r.Action != Forward {
		b.Fatalf("OnRequest: %v %v", r.Action, err)
	}
	if _, err := x.OnResponseHeaders(200, respHeaders); err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, chunk := range chunks {
		out, err := x.OnResponseBody(chunk, false)
		if err != nil {
			b.Fatal(err)
		}
		n += len(out.Data)
	}
	out, err := x.OnResponseBody(nil, true)
	if err != nil {
		b.Fatal(err)
	}
	n += len(out.Data)
	if _, ok := x.Usage(); !ok {
		b.Fatal("no usage")
	}
	x.Close()
	return n
}

// streamEvents splits an SSE body into one chunk per event, as a provider flushes them.
func streamEvents(body []byte) [][]byte {
	var out [][]byte
	for _, ev := range strings.SplitAfter(string(body), "\n\n") {
		if ev != "" {
			out = append(out, []byte(ev))
		}
	}
	return out
}

const claudeConfig = `{"provider":{"type":"claude","apiTokens":["sk-ant-test"]}}`

// claudeMessage is an Anthropic Messages API reply.
func claudeMessage(text string, in, out int) []byte {
	t, _ := json.Marshal(text)
	return fmt.Appendf(nil, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022",`+
		`"content":[{"type":"text","text":%s}],"stop_reason":"end_turn","stop_sequence":null,`+
		`"usage":{"input_tokens":%d,"output_tokens":%d}}`, t, in, out)
}

// claudeStream is an Anthropic Messages stream with one text delta per word: words+5 events.
func claudeStream(words []string, in int) []byte {
	var b strings.Builder
	ev := func(name, data string) { fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", name, data) }
	ev("message_start", fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",`+
		`"content":[],"model":"claude-3-5-haiku-20241022","stop_reason":null,"stop_sequence":null,`+
		`"usage":{"input_tokens":%d,"output_tokens":1}}}`, in))
	ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	for i, w := range words {
		if i > 0 {
			w = " " + w
		}
		t, _ := json.Marshal(w)
		ev("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%s}}`, t))
	}
	ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
	ev("message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, len(words)))
	ev("message_stop", `{"type":"message_stop"}`)
	return []byte(b.String())
}

// Request translation plus a buffered reply (about 400 bytes of text), one complete exchange per op.
func BenchmarkChatBuffered(b *testing.B) {
	answer := strings.Repeat("The capital of Mockland is Testville. ", 10)
	for _, p := range []struct {
		name, config string
		resp         []byte
	}{
		{"openai", openaiConfig, openaiCompletion("gpt-4o", answer, 12, 80)},
		{"claude", claudeConfig, claudeMessage(answer, 12, 80)},
	} {
		b.Run(p.name, func(b *testing.B) {
			c := mustConfig(b, p.config)
			req := chatRequest("gpt-4o", false, "What is the capital of Mockland? Answer briefly.")
			b.SetBytes(int64(len(req) + len(p.resp)))
			b.ReportAllocs()
			for b.Loop() {
				benchExchange(b, c, "/v1/chat/completions", req, []Header{{Name: "content-type", Value: "application/json"}}, [][]byte{p.resp})
			}
		})
	}
}

func BenchmarkEmbeddings(b *testing.B) {
	c := mustConfig(b, openaiConfig)
	req := []byte(`{"model":"text-embedding-3-small","input":["first text","second text"]}`)
	resp := openaiEmbeddings("text-embedding-3-small", 2)
	b.SetBytes(int64(len(req) + len(resp)))
	b.ReportAllocs()
	for b.Loop() {
		benchExchange(b, c, "/v1/embeddings", req, []Header{{Name: "content-type", Value: "application/json"}}, [][]byte{resp})
	}
}

// A 1,000-event stream, fed one event per OnResponseBody call, as a provider flushes them.
func BenchmarkChatStream1000(b *testing.B) {
	words := func(n int) []string {
		w := make([]string, n)
		for i := range w {
			w[i] = fmt.Sprint("w", i)
		}
		return w
	}
	for _, p := range []struct {
		name, config string
		body         []byte
	}{
		{"openai", openaiConfig, openaiStream("gpt-4o", words(996), 5)}, // role + 996 + finish + usage + [DONE]
		{"zhipuai", zhipuConfig, openaiStream("gpt-4o", words(996), 5)},
		{"claude", claudeConfig, claudeStream(words(995), 5)}, // 995 deltas + 5 framing events
	} {
		b.Run(p.name, func(b *testing.B) {
			c := mustConfig(b, p.config)
			req := chatRequest("gpt-4o", true, "Count to one thousand.")
			chunks := streamEvents(p.body)
			if len(chunks) != 1000 {
				b.Fatalf("%d events, want 1000", len(chunks))
			}
			b.SetBytes(int64(len(req) + len(p.body)))
			b.ReportAllocs()
			for b.Loop() {
				benchExchange(b, c, "/v1/chat/completions", req, sseHeaders, chunks)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/event")
		})
	}
}

// Buffered exchanges from all Ps at once on one shared Config.
func BenchmarkChatBufferedParallel(b *testing.B) {
	c := mustConfig(b, openaiConfig)
	req := chatRequest("gpt-4o", false, "What is the capital of Mockland? Answer briefly.")
	resp := openaiCompletion("gpt-4o", strings.Repeat("The capital of Mockland is Testville. ", 10), 12, 80)
	b.SetBytes(int64(len(req) + len(resp)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchExchange(b, c, "/v1/chat/completions", req, []Header{{Name: "content-type", Value: "application/json"}}, [][]byte{resp})
		}
	})
}

// The cost of one trivial call through the binding (mutex, cgo transition, copy-out): the floor
// under every per-chunk call.
func BenchmarkCallOverhead(b *testing.B) {
	c := mustConfig(b, openaiConfig)
	x := mustExchange(b, c)
	b.ReportAllocs()
	for b.Loop() {
		x.Usage()
	}
}
