/*
 * Translates one chat request and a streamed response with the aiproxy C API.
 * Build: cc -I include examples/c/translate_demo.c -L target/release -laiproxy -Wl,-rpath,target/release
 * Usage: translate_demo [config.json]   (default: a Claude-free OpenAI config, see below)
 */
#include "aiproxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *DEFAULT_CONFIG =
    "{\"provider\": {\"type\": \"deepseek\", \"apiTokens\": [\"sk-demo\"],"
    " \"modelMapping\": {\"gpt-4o\": \"deepseek-chat\"}}}";

static const char *REQUEST =
    "{\"model\": \"gpt-4o\", \"stream\": true, \"stream_options\": {\"include_usage\": true},"
    " \"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}]}";

/* An upstream SSE stream, fed in awkward slices to show incremental translation. */
static const char *UPSTREAM =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"deepseek-chat\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"deepseek-chat\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n"
    "data: [DONE]\n\n";

static AiproxyStr str_of(const char *s) {
    AiproxyStr r = {(const uint8_t *)s, strlen(s)};
    return r;
}

static int check(int32_t rc, AiproxyError *err, const char *what) {
    if (rc == AIPROXY_OK) return 0;
    fprintf(stderr, "%s failed: code %d: %s\n", what, aiproxy_error_code(err), aiproxy_error_message(err));
    aiproxy_error_free(err);
    return 1;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[n] = '\0'; *len = (size_t)n; }
    return buf;
}

int main(int argc, char **argv) {
    printf("aiproxy %s\n", aiproxy_version());
    size_t cfg_len = strlen(DEFAULT_CONFIG);
    char *cfg_text = NULL;
    if (argc > 1) {
        cfg_text = read_file(argv[1], &cfg_len);
        if (!cfg_text) { perror(argv[1]); return 2; }
    }
    AiproxyError *err = NULL;
    AiproxyConfig *cfg = aiproxy_config_new((const uint8_t *)(cfg_text ? cfg_text : DEFAULT_CONFIG), cfg_len, &err);
    free(cfg_text);
    if (!cfg) {
        fprintf(stderr, "config error [%s]: %s\n", aiproxy_error_field(err), aiproxy_error_message(err));
        aiproxy_error_free(err);
        return 1;
    }
    AiproxyExchange *ex = aiproxy_exchange_new(cfg, &err);
    aiproxy_config_free(cfg); /* the exchange keeps its own reference */
    if (!ex) return check(1, err, "exchange_new");

    AiproxyHeader headers[] = {{str_of("content-type"), str_of("application/json")},
                               {str_of("authorization"), str_of("Bearer client-key")}};
    AiproxyRequestResult req;
    if (check(aiproxy_exchange_on_request(ex, (const uint8_t *)"POST", 4, (const uint8_t *)"/v1/chat/completions", 20,
                                          headers, 2, (const uint8_t *)REQUEST, strlen(REQUEST), &req, &err),
              err, "on_request"))
        return 1;
    if (req.action != AIPROXY_ACTION_FORWARD) { fprintf(stderr, "expected a forward\n"); return 1; }
    printf("upstream: %.*s%.*s (model %.*s)\n", (int)req.authority.len, (const char *)req.authority.ptr,
           (int)req.path.len, (const char *)req.path.ptr, (int)req.model.len, (const char *)req.model.ptr);
    for (size_t i = 0; i < req.headers_len; i++) {
        const AiproxyHeader *h = &req.headers[i];
        /* Print header names only: values carry the provider key. */
        printf("set header: %.*s\n", (int)h->name.len, (const char *)h->name.ptr);
    }
    printf("body: %.*s\n", (int)req.body.len, (const char *)req.body.ptr);

    AiproxyHeader resp_headers[] = {{str_of("content-type"), str_of("text/event-stream")}};
    AiproxyResponseHeadersResult rh;
    if (check(aiproxy_exchange_on_response_headers(ex, 200, resp_headers, 1, &rh, &err), err, "on_response_headers"))
        return 1;
    printf("mode: %s\n", rh.mode == AIPROXY_MODE_STREAM ? "stream" : rh.mode == AIPROXY_MODE_BUFFER ? "buffer" : "passthrough");

    size_t total = strlen(UPSTREAM), off = 0, slice = 7;
    while (off < total) {
        size_t n = total - off < slice ? total - off : slice;
        int eos = off + n == total;
        AiproxyBodyResult out;
        if (check(aiproxy_exchange_on_response_body(ex, (const uint8_t *)UPSTREAM + off, n, eos, &out, &err), err,
                  "on_response_body"))
            return 1;
        if (out.unchanged) fwrite(UPSTREAM + off, 1, n, stdout);
        else fwrite(out.data.ptr, 1, out.data.len, stdout);
        off += n;
    }
    AiproxyUsage usage;
    aiproxy_exchange_usage(ex, &usage);
    if (usage.present)
        printf("usage: prompt=%llu completion=%llu total=%llu\n", (unsigned long long)usage.prompt_tokens,
               (unsigned long long)usage.completion_tokens, (unsigned long long)usage.total_tokens);
    aiproxy_exchange_free(ex);
    return usage.present ? 0 : 1;
}
