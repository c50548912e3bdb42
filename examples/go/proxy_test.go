package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	aiproxy "github.com/aiproxy/aiproxy/bindings/go"
)

// These tests build the example proxy (with -race), start it on loopback in front of the mock
// provider (tests/mock_provider/mock_provider.py), and drive it with the official openai Python
// SDK (testdata/openai_client.py, run by the repository's venv or $AIPROXY_PYTHON) and with Go
// clients. Everything listens on 127.0.0.1 and every wait is bounded.

var repoRoot = func() string {
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return abs
}()

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// proxyBinary builds the example once per test run.
func proxyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, buildErr = os.MkdirTemp("", "aiproxy-go-example-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "aiproxy-go")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool, "build", "-race", "-o", binPath, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// portWatcher is a process's stdout: it records the output and reports the port of the first
// "LISTENING <port>" line.
type portWatcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	port chan int
	sent bool
}

func newPortWatcher() *portWatcher { return &portWatcher{port: make(chan int, 1)} }

var listeningRE = regexp.MustCompile(`(?m)^LISTENING (\d+)\s*$`)

func (w *portWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		if m := listeningRE.FindSubmatch(w.buf.Bytes()); m != nil {
			port, _ := strconv.Atoi(string(m[1]))
			w.port <- port
			w.sent = true
		}
	}
	return len(p), nil
}

func (w *portWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// syncBuffer collects a process's stderr.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type process struct {
	cmd    *exec.Cmd
	port   int
	stdout *portWatcher
	stderr *syncBuffer
	done   chan struct{}
}

// start runs a server process that prints "LISTENING <port>", waits for that line, and registers
// its shutdown (SIGTERM, then SIGKILL after 5 s).
func start(t *testing.T, name string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(name, args...), stdout: newPortWatcher(), stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	// Closed stdin lets a server that watches it (the mock's --exit-on-stdin-eof) exit with us.
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		stdin.Close()
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.port = <-p.stdout.port:
	case <-p.done:
		t.Fatalf("%s exited before listening:\n%s\n%s", name, p.stdout, p.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not print LISTENING within 30s:\n%s\n%s", name, p.stdout, p.stderr)
	}
	return p
}

func startMock(t *testing.T) *process {
	t.Helper()
	script := filepath.Join(repoRoot, "tests", "mock_provider", "mock_provider.py")
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("mock provider missing: %v", err)
	}
	return start(t, "python3", script, "--port", "0", "--exit-on-stdin-eof")
}

func startProxy(t *testing.T, mockPort int, config string) *process {
	t.Helper()
	cfgFile := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, proxyBinary(t), "-listen", "127.0.0.1:0", "-config", cfgFile,
		"-upstream-override", fmt.Sprintf("127.0.0.1:%d", mockPort))
	t.Cleanup(func() {
		if strings.Contains(p.stderr.String(), "DATA RACE") {
			t.Errorf("the proxy reported a data race:\n%s", p.stderr)
		}
	})
	return p
}

func python(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("AIPROXY_PYTHON"); p != "" {
		return p
	}
	p := filepath.Join(repoRoot, ".venv", "bin", "python")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no Python with the openai SDK: %s is missing (create the venv or set AIPROXY_PYTHON)", p)
	}
	return p
}

type mockRequest struct {
	Method  string            `json:"method"`
	Host    string            `json:"host"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func mockLog(t *testing.T, mockPort int, method string) []mockRequest {
	t.Helper()
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d/__mock/requests", mockPort), nil)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if method != http.MethodGet {
		return nil
	}
	var raw json.RawMessage = body
	var entries []mockRequest
	if err := json.Unmarshal(raw, &entries); err != nil {
		var wrapped struct {
			Requests []mockRequest `json:"requests"`
		}
		if err2 := json.Unmarshal(raw, &wrapped); err2 != nil {
			t.Fatalf("mock request log: %v: %.300s", err, body)
		}
		entries = wrapped.Requests
	}
	return entries
}

// implemented reports whether the core translates chat for this configuration yet (providers still
// being ported answer 501 provider_not_implemented).
func implemented(t *testing.T, config, model string) bool {
	t.Helper()
	cfg, err := aiproxy.NewConfig([]byte(config))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	defer cfg.Close()
	ex, err := cfg.NewExchange()
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"x"}]}`, model)
	res, err := ex.OnRequest("POST", "/v1/chat/completions", nil, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return !(res.Action == aiproxy.LocalReply && bytes.Contains(res.Body, []byte("provider_not_implemented")))
}

type providerCase struct {
	name           string
	config         string
	model          string
	embeddingModel string
	// noStreamUsage: the provider's stream carries no usage for this request (mistral: the core
	// strips stream_options, which Mistral rejects, so the mock sends none).
	noStreamUsage bool
}

var providerCases = []providerCase{
	{"openai", `{"provider":{"type":"openai","apiTokens":["sk-upstream-openai"]}}`, "gpt-4o-mini", "text-embedding-3-small", false},
	{"azure", `{"provider":{"type":"azure","apiTokens":["az-upstream-key"],` +
		`"azureServiceUrl":"https://mock.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-06-01"}}`, "gpt-4o", "", false},
	{"zhipuai", `{"provider":{"type":"zhipuai","apiTokens":["zp-upstream-key"]}}`, "glm-4", "embedding-3", false},
	{"deepseek", `{"provider":{"type":"deepseek","apiTokens":["ds-upstream-key"]}}`, "deepseek-chat", "", false},
	{"groq-mapped", `{"provider":{"type":"groq","apiTokens":["gq-upstream-key"],"modelMapping":{"*":"llama-3.1-8b-instant"}}}`, "gpt-4o", "", false},
	{"claude", `{"provider":{"type":"claude","apiTokens":["sk-ant-upstream"]}}`, "claude-3-5-haiku-20241022", "", false},
	{"gemini", `{"provider":{"type":"gemini","apiTokens":["gm-upstream-key"]}}`, "gemini-1.5-flash", "text-embedding-004", false},
	{"qwen", `{"provider":{"type":"qwen","apiTokens":["qw-upstream-key"]}}`, "qwen-turbo", "text-embedding-v2", false},
	{"mistral", `{"provider":{"type":"mistral","apiTokens":["ms-upstream-key"]}}`, "mistral-small-latest", "mistral-embed", true},
	{"moonshot-file", `{"provider":{"type":"moonshot","apiTokens":["ms-upstream-key"],"moonshotFileId":"file-abc123"}}`, "moonshot-v1-8k", "", false},
	{"hunyuan", `{"provider":{"type":"hunyuan","hunyuanAuthId":"AKIDmockid","hunyuanAuthKey":"mock-secret-key"}}`, "hunyuan-lite", "", false},
	{"minimax", `{"provider":{"type":"minimax","apiTokens":["mm-upstream-key"]}}`, "MiniMax-Text-01", "", false},
	{"minimax-pro", `{"provider":{"type":"minimax","apiTokens":["mm-upstream-key"],"minimaxGroupId":"g123"}}`, "abab6.5s-chat", "", false},
	{"ollama", `{"provider":{"type":"ollama","ollamaServerHost":"ollama.internal","ollamaServerPort":11434}}`, "llama3", "nomic-embed-text", false},
	{"cloudflare", `{"provider":{"type":"cloudflare","apiTokens":["cf-upstream-key"],"cloudflareAccountId":"acc123"}}`, "@cf/meta/llama-3-8b-instruct", "", false},
	{"baidu", `{"provider":{"type":"baidu","apiTokens":["bd-upstream-key"]}}`, "ernie-4.0-8k", "embedding-v1", false},
	{"spark", `{"provider":{"type":"spark","apiTokens":["key:secret"]}}`, "generalv3.5", "", false},
}

// The openai SDK gets correct buffered and streamed answers (and embeddings and errors) through
// the proxy, for each provider the core implements.
func TestOpenAISDKThroughProxy(t *testing.T) {
	py := python(t)
	mock := startMock(t)
	for _, pc := range providerCases {
		t.Run(pc.name, func(t *testing.T) {
			if !implemented(t, pc.config, pc.model) {
				t.Skipf("provider %s is not implemented in the core yet", pc.name)
			}
			mockLog(t, mock.port, http.MethodDelete)
			proxy := startProxy(t, mock.port, pc.config)
			args := []string{filepath.Join("testdata", "openai_client.py"),
				"--base-url", fmt.Sprintf("http://127.0.0.1:%d/v1", proxy.port), "--model", pc.model}
			if pc.embeddingModel != "" {
				args = append(args, "--embedding-model", pc.embeddingModel)
			}
			if pc.noStreamUsage {
				args = append(args, "--no-stream-usage")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, py, args...).CombinedOutput()
			t.Logf("openai SDK client:\n%s", out)
			if err != nil {
				t.Fatalf("client checks failed: %v\nproxy log:\n%s", err, proxy.stderr)
			}

			// Upstream saw the configured credentials, never the client's key.
			entries := mockLog(t, mock.port, http.MethodGet)
			if len(entries) < 4 {
				t.Fatalf("mock saw %d requests", len(entries))
			}
			for _, e := range entries {
				for k, v := range e.Headers {
					if strings.Contains(v, "sk-client-key-not-forwarded") {
						t.Errorf("client key forwarded upstream in %s: %s", k, e.Path)
					}
				}
				if strings.HasPrefix(e.Host, "127.0.0.1") {
					t.Errorf("upstream Host is the override address, not the provider's: %q", e.Host)
				}
			}
			// The proxy logged token usage for the streamed exchanges.
			if !pc.noStreamUsage && !regexp.MustCompile(`mode=stream .*total_tokens=\d+`).MatchString(proxy.stderr.String()) {
				t.Errorf("no usage logged for a streamed exchange:\n%s", proxy.stderr)
			}
		})
	}
}

// The proxy performs the context callout (routed to the mock) and the provider receives the
// fetched text as a leading system message.
func TestCalloutThroughProxy(t *testing.T) {
	mock := startMock(t)
	proxy := startProxy(t, mock.port, `{"provider":{"type":"openai","apiTokens":["sk-upstream-openai"],`+
		`"context":{"fileUrl":"http://files.mock.internal/ai/context.txt","serviceName":"files.mock.internal","servicePort":80}}}`)
	mockLog(t, mock.port, http.MethodDelete)
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"where is Testville"}]}`
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Post(
		fmt.Sprintf("http://127.0.0.1:%d/v1/chat/completions", proxy.port), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(out), "mock reply to: where is Testville") {
		t.Fatalf("%d %s\n%s", resp.StatusCode, out, proxy.stderr)
	}
	var sawContext bool
	for _, e := range mockLog(t, mock.port, http.MethodGet) {
		if strings.HasSuffix(e.Path, "/chat/completions") {
			var req struct {
				Messages []struct{ Role, Content string }
			}
			if err := json.Unmarshal([]byte(e.Body), &req); err != nil {
				t.Fatal(err)
			}
			sawContext = len(req.Messages) == 2 && req.Messages[0].Role == "system" &&
				strings.Contains(req.Messages[0].Content, "Testville")
		}
	}
	if !sawContext {
		t.Fatalf("the upstream request did not carry the context as a system message\n%s", proxy.stderr)
	}
}

// Each translated event reaches the client as the provider sends it, not at the end of the stream.
func TestStreamIsFlushedPerEvent(t *testing.T) {
	mock := startMock(t)
	proxy := startProxy(t, mock.port, providerCases[0].config)
	const delay = 150 * time.Millisecond
	body := `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"one two three four five"}]}`
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/v1/chat/completions", proxy.port), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Mock-Delay-Ms", fmt.Sprint(delay.Milliseconds()))
	begin := time.Now()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content-type %q", ct)
	}
	var arrivals []time.Duration
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			arrivals = append(arrivals, time.Since(begin))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// role chunk, 9 words, finish chunk, [DONE]: the events are ~delay apart.
	if len(arrivals) < 10 {
		t.Fatalf("only %d events", len(arrivals))
	}
	total := arrivals[len(arrivals)-1]
	if total < 5*delay {
		t.Fatalf("stream took %v: the mock's delay was not applied", total)
	}
	if first := arrivals[1]; first > total/2 {
		t.Fatalf("first content event arrived at %v of %v: events are not flushed as they arrive (%v)", first, total, arrivals)
	}
}

// A provider that resets the connection mid-stream leaves the client with a truncated stream (the
// proxy aborts the response) rather than a well-formed one.
func TestUpstreamResetMidStream(t *testing.T) {
	mock := startMock(t)
	proxy := startProxy(t, mock.port, providerCases[0].config)
	body := `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"one two three four five"}]}`
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/v1/chat/completions", proxy.port), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Mock-Scenario", "reset")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Logf("cut before the response headers: %v", err)
		return
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("a reset upstream produced a complete response (%d):\n%s", resp.StatusCode, out)
	}
	t.Logf("status %d, %d bytes, then: %v", resp.StatusCode, len(out), err)
	// The client can see the cut before the proxy's handler has written its log line.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(proxy.stderr.String(), "reading the upstream body failed") {
		if time.Now().After(deadline) {
			t.Fatalf("the proxy did not log the upstream failure:\n%s", proxy.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRemoveHopHeaders(t *testing.T) {
	h := http.Header{"Connection": {"close, X-Private"}, "X-Private": {"1"}, "Keep-Alive": {"5"}, "X-Kept": {"y"}}
	removeHopHeaders(h)
	if len(h) != 1 || h.Get("X-Kept") != "y" {
		t.Fatalf("after removeHopHeaders: %v", h)
	}
}
