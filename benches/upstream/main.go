// Command upstream is the benchmarks' mock LLM provider: canned OpenAI and Anthropic answers,
// buffered or as an SSE stream, the stream either in one write or one event per write
// ("trickled", as real providers send tokens). Standard library only; listens on 127.0.0.1.
//
//	upstream -dir BODIES [-listen 127.0.0.1:0] [-trickle]
//
// BODIES holds oj.json, os.sse (OpenAI), aj.json, as.sse (Anthropic). A request is answered
// with the Anthropic body when its path is /v1/messages (or a Vertex ".../publishers/anthropic/"
// path), and streamed when it carries an x-bench-stream header or "stream": true in its body.
// It is trickled with -trickle or an x-bench-trickle header. With an x-bench-verify header the
// answer also echoes what the upstream saw (x-echo-* headers) for the harness's checks.
// "LISTENING <port>" is printed once it listens.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

type bodies struct {
	openaiJSON, anthropicJSON []byte
	openaiSSE, anthropicSSE   [][]byte // one element per event, "\n\n" included
}

func events(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\n\n"))
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i+2])
		b = b[i+2:]
	}
	return out
}

var (
	modelRe   = regexp.MustCompile(`"model"\s*:\s*"([^"]*)"`)
	streamRe  = regexp.MustCompile(`"stream"\s*:\s*true`)
	versionRe = regexp.MustCompile(`"anthropic_version"\s*:\s*"([^"]*)"`)
)

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func main() {
	dir := flag.String("dir", ".", "directory with oj.json, os.sse, aj.json, as.sse")
	listen := flag.String("listen", "127.0.0.1:0", "listen address")
	trickleAll := flag.Bool("trickle", false, "send every stream one event per write")
	flag.Parse()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(*dir, name))
		if err != nil {
			log.Fatal(err)
		}
		return b
	}
	bs := bodies{read("oj.json"), read("aj.json"), events(read("os.sse")), events(read("as.sse"))}
	whole := map[bool][]byte{false: bytes.Join(bs.openaiSSE, nil), true: bytes.Join(bs.anthropicSSE, nil)}

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		anthropic := strings.HasPrefix(r.URL.Path, "/v1/messages") || strings.Contains(r.URL.Path, "/publishers/anthropic/")
		stream := r.Header.Get("x-bench-stream") != "" || streamRe.Match(body)
		hd := w.Header()
		if r.Header.Get("x-bench-verify") != "" {
			m := modelRe.FindSubmatch(body)
			v := versionRe.FindSubmatch(body)
			hd.Set("x-echo-path", r.URL.RequestURI())
			hd.Set("x-echo-host", orDash(r.Host))
			hd.Set("x-echo-auth", orDash(r.Header.Get("authorization")))
			hd.Set("x-echo-api-key", orDash(r.Header.Get("x-api-key")))
			hd.Set("x-echo-anthropic-version", orDash(r.Header.Get("anthropic-version")))
			hd.Set("x-echo-model", "-")
			if m != nil {
				hd.Set("x-echo-model", string(m[1]))
			}
			hd.Set("x-echo-body-anthropic-version", "-")
			if v != nil {
				hd.Set("x-echo-body-anthropic-version", string(v[1]))
			}
			hd.Set("x-echo-stream", strconv.FormatBool(stream))
		}
		if !stream {
			b := bs.openaiJSON
			if anthropic {
				b = bs.anthropicJSON
			}
			hd.Set("content-type", "application/json")
			hd.Set("content-length", strconv.Itoa(len(b)))
			w.Write(b)
			return
		}
		hd.Set("content-type", "text/event-stream")
		if !*trickleAll && r.Header.Get("x-bench-trickle") == "" {
			b := whole[anthropic]
			hd.Set("content-length", strconv.Itoa(len(b)))
			w.Write(b)
			return
		}
		evs := bs.openaiSSE
		if anthropic {
			evs = bs.anthropicSSE
		}
		f, _ := w.(http.Flusher)
		for _, ev := range evs {
			w.Write(ev)
			if f != nil {
				f.Flush() // one chunked-encoding chunk, one socket write per event
			}
		}
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("LISTENING %d\n", ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	log.Fatal(http.Serve(ln, h))
}
