package aiproxy_test

import (
	"errors"
	"fmt"

	aiproxy "github.com/aiproxy/aiproxy/bindings/go"
)

// One exchange: translate a chat request, then the provider's buffered answer.
func Example() {
	cfg, err := aiproxy.NewConfig([]byte(`{"provider":{"type":"openai","apiTokens":["sk-upstream"]}}`))
	if err != nil {
		panic(err)
	}
	defer cfg.Close()

	ex, err := cfg.NewExchange()
	if err != nil {
		panic(err)
	}
	defer ex.Close()

	req, err := ex.OnRequest("POST", "/v1/chat/completions",
		[]aiproxy.Header{{Name: "content-type", Value: "application/json"}},
		[]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(req.Action, req.Authority+req.Path, req.Model)

	// ... send req.Body upstream with req's header edits, then feed the answer back:
	start, _ := ex.OnResponseHeaders(200, []aiproxy.Header{{Name: "content-type", Value: "application/json"}})
	out, _ := ex.OnResponseBody([]byte(`{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o",`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`), true)
	usage, _ := ex.Usage()
	fmt.Println(start.Mode, out.Status, usage.TotalTokens)
	// Output:
	// forward api.openai.com/v1/chat/completions gpt-4o
	// buffer 200 2
}

// Configuration errors carry the core's code and the offending field.
func ExampleNewConfig_error() {
	_, err := aiproxy.NewConfig([]byte(`{"provider":{"type":"azure","apiTokens":["k"]}}`))
	var e *aiproxy.Error
	if errors.As(err, &e) {
		fmt.Println(errors.Is(err, aiproxy.ErrConfigInvalid), e.Field)
	}
	// Output: true provider.azureServiceUrl
}
