/*
 * The C API contract, from C: every function of include/aiproxy.h, each argument's documented
 * behaviour and error path, and one config shared by several threads. Exits 0 when every check
 * passes; prints each failure. Run under valgrind by tests/c/run_valgrind.sh (zero errors, zero
 * leaks), and plainly by `cargo test --test c_example`.
 */
#include "aiproxy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        checks++;                                                                \
        if (!(cond)) {                                                           \
            failures++;                                                          \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define S(lit) (const uint8_t *)(lit), (sizeof(lit) - 1)

static const char OPENAI_CFG[] =
    "{\"provider\": {\"type\": \"openai\", \"apiTokens\": [\"sk-CONTRACT-SECRET\"],"
    " \"modelMapping\": {\"*\": \"gpt-4o-mini\"}}}";
static const char MOONSHOT_CFG[] =
    "{\"provider\": {\"type\": \"moonshot\", \"apiTokens\": [\"sk-MOON-SECRET\"],"
    " \"moonshotFileId\": \"file-abc\"}}";
static const char CHAT[] = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
static const char STREAM_CHAT[] =
    "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
static const char COMPLETION[] =
    "{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello\"},"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}";
static const char CHUNK1[] =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n";

/* Takes an error: checks its code, that message/field are non-null strings, frees it. */
static void expect_err(AiproxyError *err, int32_t code) {
    CHECK(err != NULL);
    if (!err) return;
    CHECK(aiproxy_error_code(err) == code);
    const char *msg = aiproxy_error_message(err);
    const char *field = aiproxy_error_field(err);
    CHECK(msg != NULL && strlen(msg) > 0);
    CHECK(field != NULL);
    CHECK(strstr(msg, "SECRET") == NULL);
    aiproxy_error_free(err);
}

static int contains(AiproxyStr s, const char *needle) {
    size_t n = strlen(needle);
    if (s.len < n || s.ptr == NULL) return 0;
    for (size_t i = 0; i + n <= s.len; i++)
        if (memcmp(s.ptr + i, needle, n) == 0) return 1;
    return 0;
}

static AiproxyConfig *load(const char *json) {
    AiproxyError *err = NULL;
    AiproxyConfig *c = aiproxy_config_new((const uint8_t *)json, strlen(json), &err);
    CHECK(c != NULL && err == NULL);
    return c;
}

static void test_version_and_errors(void) {
    const char *v = aiproxy_version();
    CHECK(v != NULL && strlen(v) > 0);
    /* Accessors on a null error. */
    CHECK(aiproxy_error_code(NULL) == AIPROXY_ERR_NULL_POINTER);
    CHECK(strcmp(aiproxy_error_message(NULL), "") == 0);
    CHECK(strcmp(aiproxy_error_field(NULL), "") == 0);
    aiproxy_error_free(NULL);
    aiproxy_config_free(NULL);
    aiproxy_exchange_free(NULL);
}

static void test_config_new(void) {
    AiproxyError *err = (AiproxyError *)0x1; /* must be cleared or overwritten */
    /* NULL with length 0 is an empty document: CONFIG_JSON (as the header says). */
    CHECK(aiproxy_config_new(NULL, 0, &err) == NULL);
    expect_err(err, AIPROXY_ERR_CONFIG_JSON);
    err = NULL;
    CHECK(aiproxy_config_new(NULL, 5, &err) == NULL);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    err = NULL;
    CHECK(aiproxy_config_new(S(""), &err) == NULL);
    expect_err(err, AIPROXY_ERR_CONFIG_JSON);
    err = NULL;
    CHECK(aiproxy_config_new(S("{not json"), &err) == NULL);
    expect_err(err, AIPROXY_ERR_CONFIG_JSON);
    err = NULL;
    CHECK(aiproxy_config_new(S("\xff\xfe"), &err) == NULL);
    expect_err(err, AIPROXY_ERR_CONFIG_JSON);
    /* Invalid config: the field path, and never the token. */
    err = NULL;
    CHECK(aiproxy_config_new(S("{\"provider\": {\"type\": \"azure\", \"apiTokens\": [\"sk-AZ-SECRET\"]}}"), &err) == NULL);
    CHECK(err != NULL && aiproxy_error_code(err) == AIPROXY_ERR_CONFIG_INVALID);
    CHECK(err != NULL && strcmp(aiproxy_error_field(err), "provider.azureServiceUrl") == 0);
    expect_err(err, AIPROXY_ERR_CONFIG_INVALID);
    err = NULL;
    CHECK(aiproxy_config_new(S("{\"provider\": {\"type\": \"no-such-provider\"}}"), &err) == NULL);
    expect_err(err, AIPROXY_ERR_CONFIG_INVALID);
    /* A null err pointer is allowed: only the return value reports. */
    CHECK(aiproxy_config_new(S("{"), NULL) == NULL);
    /* Success clears *err. */
    err = (AiproxyError *)0x1;
    AiproxyConfig *c = aiproxy_config_new(S(OPENAI_CFG), &err);
    CHECK(c != NULL && err == NULL);
    aiproxy_config_free(c);
}

static void test_config_questions(void) {
    AiproxyConfig *c = load(OPENAI_CFG);
    AiproxyError *err = NULL;
    bool out = false;
    CHECK(aiproxy_config_translates(c, S("POST"), S("/v1/chat/completions"), &out, &err) == AIPROXY_OK);
    CHECK(out == true && err == NULL);
    CHECK(aiproxy_config_translates(c, S("GET"), S("/v1/models"), &out, &err) == AIPROXY_OK);
    CHECK(out == false);
    out = false;
    CHECK(aiproxy_config_needs_request_body(c, S("POST"), S("/v1/embeddings"), &out, &err) == AIPROXY_OK);
    CHECK(out == true);
    CHECK(aiproxy_config_needs_request_body(c, S("GET"), S("/v1/models"), &out, NULL) == AIPROXY_OK);
    CHECK(out == false);
    /* Every error path, for both functions. */
    for (int which = 0; which < 2; which++) {
        int32_t (*fn)(const AiproxyConfig *, const uint8_t *, size_t, const uint8_t *, size_t, bool *,
                      AiproxyError **) =
            which == 0 ? aiproxy_config_translates : aiproxy_config_needs_request_body;
        out = true;
        CHECK(fn(NULL, S("POST"), S("/v1/chat/completions"), &out, &err) == AIPROXY_ERR_NULL_POINTER);
        expect_err(err, AIPROXY_ERR_NULL_POINTER);
        CHECK(fn(c, S("POST"), S("/v1/chat/completions"), NULL, &err) == AIPROXY_ERR_NULL_POINTER);
        expect_err(err, AIPROXY_ERR_NULL_POINTER);
        CHECK(fn(c, NULL, 4, S("/v1/chat/completions"), &out, &err) == AIPROXY_ERR_NULL_POINTER);
        expect_err(err, AIPROXY_ERR_NULL_POINTER);
        CHECK(fn(c, S("POST"), S("/v1/\xff"), &out, &err) == AIPROXY_ERR_INVALID_UTF8);
        expect_err(err, AIPROXY_ERR_INVALID_UTF8);
        CHECK(out == true); /* untouched on error */
        /* Empty method or path (NULL, 0): valid, never translated. */
        CHECK(fn(c, NULL, 0, S("/v1/chat/completions"), &out, &err) == AIPROXY_OK && err == NULL);
        CHECK(out == false);
        out = true;
        CHECK(fn(c, S("POST"), NULL, 0, &out, &err) == AIPROXY_OK && out == false);
    }
    aiproxy_config_free(c);
}

static int32_t request(AiproxyExchange *ex, const char *body, AiproxyRequestResult *r, AiproxyError **err) {
    static const AiproxyHeader hs[] = {
        {{(const uint8_t *)"content-type", 12}, {(const uint8_t *)"application/json", 16}},
        {{(const uint8_t *)"authorization", 13}, {(const uint8_t *)"Bearer client", 13}},
    };
    return aiproxy_exchange_on_request(ex, S("POST"), S("/v1/chat/completions"), hs, 2,
                                       (const uint8_t *)body, strlen(body), r, err);
}

static void test_request_errors(void) {
    AiproxyConfig *c = load(OPENAI_CFG);
    AiproxyError *err = NULL;
    CHECK(aiproxy_exchange_new(NULL, &err) == NULL);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_new(NULL, NULL) == NULL);
    AiproxyExchange *ex = aiproxy_exchange_new(c, &err);
    CHECK(ex != NULL && err == NULL);
    AiproxyRequestResult r;
    memset(&r, 0xAB, sizeof r);
    AiproxyHeader bad_hdr[] = {{{(const uint8_t *)"x\xff", 2}, {(const uint8_t *)"v", 1}}};
    AiproxyHeader null_val[] = {{{(const uint8_t *)"x", 1}, {NULL, 3}}};
    AiproxyHeader empty_val[] = {{{(const uint8_t *)"x-empty", 7}, {NULL, 0}}};

    CHECK(aiproxy_exchange_on_request(NULL, S("POST"), S("/v1/chat/completions"), NULL, 0, S(CHAT), &r, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_request(ex, S("POST"), S("/v1/chat/completions"), NULL, 0, S(CHAT), NULL, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_request(ex, NULL, 4, S("/v1/chat/completions"), NULL, 0, S(CHAT), &r, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_request(ex, S("POST"), NULL, 9, NULL, 0, S(CHAT), &r, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_request(ex, S("P\xffST"), S("/v1/chat/completions"), NULL, 0, S(CHAT), &r, &err) == AIPROXY_ERR_INVALID_UTF8);
    expect_err(err, AIPROXY_ERR_INVALID_UTF8);
    CHECK(aiproxy_exchange_on_request(ex, S("POST"), S("/v1/\xfe"), NULL, 0, S(CHAT), &r, &err) == AIPROXY_ERR_INVALID_UTF8);
    expect_err(err, AIPROXY_ERR_INVALID_UTF8);
    CHECK(aiproxy_exchange_on_request(ex, S("POST"), S("/v1/chat/completions"), NULL, 2, S(CHAT), &r, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_request(ex, S("POST"), S("/v1/chat/completions"), bad_hdr, 1, S(CHAT), &r, &err) == AIPROXY_ERR_INVALID_UTF8);
    expect_err(err, AIPROXY_ERR_INVALID_UTF8);
    CHECK(aiproxy_exchange_on_request(ex, S("POST"), S("/v1/chat/completions"), null_val, 1, S(CHAT), &r, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_request(ex, S("POST"), S("/v1/chat/completions"), NULL, 0, NULL, 10, &r, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    /* Out of order before the request. */
    AiproxyResponseHeadersResult rh;
    AiproxyBodyResult b;
    CHECK(aiproxy_exchange_on_response_headers(ex, 200, NULL, 0, &rh, &err) == AIPROXY_ERR_BAD_STATE);
    expect_err(err, AIPROXY_ERR_BAD_STATE);
    CHECK(aiproxy_exchange_on_response_body(ex, NULL, 0, true, &b, &err) == AIPROXY_ERR_BAD_STATE);
    expect_err(err, AIPROXY_ERR_BAD_STATE);
    CHECK(aiproxy_exchange_on_callout_response(ex, 200, NULL, 0, &r, &err) == AIPROXY_ERR_BAD_STATE);
    expect_err(err, AIPROXY_ERR_BAD_STATE);
    CHECK(aiproxy_exchange_on_upstream_abort(ex, &b, &err) == AIPROXY_ERR_BAD_STATE);
    expect_err(err, AIPROXY_ERR_BAD_STATE);
    /* After all those errors the exchange still works: an empty header value (NULL, 0) is fine. */
    CHECK(aiproxy_exchange_on_request(ex, S("POST"), S("/v1/chat/completions"), empty_val, 1, S(CHAT), &r, &err) == AIPROXY_OK);
    CHECK(err == NULL && r.action == AIPROXY_ACTION_FORWARD);
    CHECK(request(ex, CHAT, &r, &err) == AIPROXY_ERR_BAD_STATE);
    expect_err(err, AIPROXY_ERR_BAD_STATE);
    aiproxy_exchange_free(ex);
    /* Empty method and path (NULL, 0) are valid: not translated, forwarded as is. */
    ex = aiproxy_exchange_new(c, NULL);
    CHECK(aiproxy_exchange_on_request(ex, NULL, 0, NULL, 0, NULL, 0, NULL, 0, &r, &err) == AIPROXY_OK);
    CHECK(err == NULL && r.action == AIPROXY_ACTION_FORWARD && !r.body_replaced);
    aiproxy_exchange_free(ex);
    aiproxy_config_free(c);
}

static void test_buffered_flow(void) {
    AiproxyConfig *c = load(OPENAI_CFG);
    AiproxyExchange *ex = aiproxy_exchange_new(c, NULL);
    aiproxy_config_free(c); /* the exchange keeps its own reference */
    AiproxyError *err = NULL;
    AiproxyRequestResult r;
    CHECK(request(ex, CHAT, &r, &err) == AIPROXY_OK);
    CHECK(r.action == AIPROXY_ACTION_FORWARD && r.body_replaced);
    CHECK(contains(r.authority, "api.openai.com"));
    CHECK(contains(r.model, "gpt-4o-mini"));
    int saw_auth = 0;
    for (size_t i = 0; i < r.headers_len; i++)
        if (contains(r.headers[i].name, "authorization")) saw_auth = 1;
    CHECK(saw_auth);
    AiproxyUsage u;
    CHECK(aiproxy_exchange_usage(ex, &u) == AIPROXY_OK && !u.present);
    CHECK(aiproxy_exchange_usage(NULL, &u) == AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_usage(ex, NULL) == AIPROXY_ERR_NULL_POINTER);

    AiproxyHeader ct[] = {{{(const uint8_t *)"content-type", 12}, {(const uint8_t *)"application/json", 16}}};
    AiproxyResponseHeadersResult rh;
    CHECK(aiproxy_exchange_on_response_headers(ex, 200, ct, 1, NULL, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_response_headers(ex, 200, NULL, 1, &rh, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_response_headers(NULL, 200, ct, 1, &rh, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_response_headers(ex, 200, ct, 1, &rh, &err) == AIPROXY_OK);
    CHECK(rh.mode == AIPROXY_MODE_BUFFER);
    CHECK(aiproxy_exchange_on_response_headers(ex, 200, ct, 1, &rh, &err) == AIPROXY_ERR_BAD_STATE);
    expect_err(err, AIPROXY_ERR_BAD_STATE);

    AiproxyBodyResult b;
    size_t half = strlen(COMPLETION) / 2;
    CHECK(aiproxy_exchange_on_response_body(ex, (const uint8_t *)COMPLETION, half, false, NULL, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_response_body(ex, NULL, 3, false, &b, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_response_body(NULL, NULL, 0, false, &b, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_response_body(ex, (const uint8_t *)COMPLETION, half, false, &b, &err) == AIPROXY_OK);
    CHECK(!b.unchanged && b.data.len == 0 && b.status == 0);
    CHECK(aiproxy_exchange_on_response_body(ex, (const uint8_t *)COMPLETION + half, strlen(COMPLETION) - half, true, &b, &err) == AIPROXY_OK);
    CHECK(b.status == 200 && contains(b.data, "\"Hello\""));
    CHECK(aiproxy_exchange_on_response_body(ex, NULL, 0, true, &b, &err) == AIPROXY_ERR_BAD_STATE);
    expect_err(err, AIPROXY_ERR_BAD_STATE);
    CHECK(aiproxy_exchange_usage(ex, &u) == AIPROXY_OK);
    CHECK(u.present && u.prompt_tokens == 3 && u.completion_tokens == 2 && u.total_tokens == 5);
    /* Abort after the end adds nothing. */
    CHECK(aiproxy_exchange_on_upstream_abort(ex, &b, &err) == AIPROXY_OK && b.unchanged);
    aiproxy_exchange_free(ex);
}

static void test_stream_abort_and_content_type(void) {
    AiproxyConfig *c = load(OPENAI_CFG);
    AiproxyError *err = NULL;
    AiproxyRequestResult r;
    AiproxyResponseHeadersResult rh;
    AiproxyBodyResult b;
    AiproxyHeader sse[] = {{{(const uint8_t *)"content-type", 12}, {(const uint8_t *)"text/event-stream", 17}}};
    AiproxyHeader html[] = {{{(const uint8_t *)"content-type", 12}, {(const uint8_t *)"text/html", 9}}};

    /* Reset mid-stream: an in-stream error event, then [DONE]. */
    AiproxyExchange *ex = aiproxy_exchange_new(c, NULL);
    CHECK(request(ex, STREAM_CHAT, &r, &err) == AIPROXY_OK);
    CHECK(aiproxy_exchange_on_response_headers(ex, 200, sse, 1, &rh, &err) == AIPROXY_OK);
    CHECK(rh.mode == AIPROXY_MODE_STREAM);
    CHECK(aiproxy_exchange_on_response_body(ex, S(CHUNK1), false, &b, &err) == AIPROXY_OK);
    CHECK(contains(b.data, "\"Hi\""));
    CHECK(aiproxy_exchange_on_upstream_abort(NULL, &b, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_upstream_abort(ex, NULL, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_upstream_abort(ex, &b, &err) == AIPROXY_OK);
    CHECK(!b.unchanged && b.status == 0);
    CHECK(contains(b.data, "\"error\"") && contains(b.data, "upstream_reset") && contains(b.data, "data: [DONE]"));
    CHECK(aiproxy_exchange_on_upstream_abort(ex, &b, &err) == AIPROXY_OK && b.unchanged);
    aiproxy_exchange_free(ex);

    /* Reset before the response headers: a 502 body. */
    ex = aiproxy_exchange_new(c, NULL);
    CHECK(request(ex, CHAT, &r, &err) == AIPROXY_OK);
    CHECK(aiproxy_exchange_on_upstream_abort(ex, &b, &err) == AIPROXY_OK);
    CHECK(b.status == 502 && contains(b.data, "\"error\""));
    aiproxy_exchange_free(ex);

    /* HTML with 200 on a stream request: buffered, then an OpenAI-shaped 502. */
    ex = aiproxy_exchange_new(c, NULL);
    CHECK(request(ex, STREAM_CHAT, &r, &err) == AIPROXY_OK);
    CHECK(aiproxy_exchange_on_response_headers(ex, 200, html, 1, &rh, &err) == AIPROXY_OK);
    CHECK(rh.mode == AIPROXY_MODE_BUFFER);
    CHECK(aiproxy_exchange_on_response_body(ex, S("<html>oops</html>"), true, &b, &err) == AIPROXY_OK);
    CHECK(b.status == 502 && contains(b.data, "upstream_bad_content_type"));
    aiproxy_exchange_free(ex);

    /* A client error is a local reply, not an API error. */
    ex = aiproxy_exchange_new(c, NULL);
    CHECK(request(ex, "{not json", &r, &err) == AIPROXY_OK);
    CHECK(r.action == AIPROXY_ACTION_LOCAL_REPLY && r.status == 400 && contains(r.body, "invalid_request_error"));
    CHECK(aiproxy_exchange_on_response_headers(ex, 400, NULL, 0, &rh, &err) == AIPROXY_OK);
    CHECK(rh.mode == AIPROXY_MODE_PASSTHROUGH);
    CHECK(aiproxy_exchange_on_response_body(ex, NULL, 0, true, &b, &err) == AIPROXY_OK && b.unchanged);
    aiproxy_exchange_free(ex);
    aiproxy_config_free(c);
}

static void test_callout(void) {
    AiproxyConfig *c = load(MOONSHOT_CFG);
    AiproxyError *err = NULL;
    AiproxyRequestResult r;
    AiproxyExchange *ex = aiproxy_exchange_new(c, NULL);
    CHECK(request(ex, CHAT, &r, &err) == AIPROXY_OK);
    CHECK(r.action == AIPROXY_ACTION_CALLOUT);
    CHECK(contains(r.path, "file-abc") && contains(r.callout_method, "GET") && r.callout_port == 443);
    CHECK(aiproxy_exchange_on_upstream_abort(ex, NULL, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_callout_response(NULL, 200, NULL, 0, &r, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_callout_response(ex, 200, S("ctx"), NULL, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_callout_response(ex, 200, NULL, 4, &r, &err) == AIPROXY_ERR_NULL_POINTER);
    expect_err(err, AIPROXY_ERR_NULL_POINTER);
    CHECK(aiproxy_exchange_on_callout_response(ex, 200, S("The file says hello."), &r, &err) == AIPROXY_OK);
    CHECK(r.action == AIPROXY_ACTION_FORWARD && contains(r.body, "The file says hello."));
    CHECK(aiproxy_exchange_on_callout_response(ex, 200, S("again"), &r, &err) == AIPROXY_ERR_BAD_STATE);
    expect_err(err, AIPROXY_ERR_BAD_STATE);
    aiproxy_exchange_free(ex);
    /* A failed callout (status 0) is a local reply with an OpenAI error. */
    ex = aiproxy_exchange_new(c, NULL);
    CHECK(request(ex, CHAT, &r, &err) == AIPROXY_OK);
    CHECK(aiproxy_exchange_on_callout_response(ex, 0, NULL, 0, &r, &err) == AIPROXY_OK);
    CHECK(r.action == AIPROXY_ACTION_LOCAL_REPLY && r.status >= 400 && contains(r.body, "\"error\""));
    aiproxy_exchange_free(ex);
    /* Freed with a callout outstanding: no leak. */
    ex = aiproxy_exchange_new(c, NULL);
    CHECK(request(ex, CHAT, &r, &err) == AIPROXY_OK);
    aiproxy_exchange_free(ex);
    aiproxy_config_free(c);
}

/* One config, many threads: exchanges, questions and full responses at once. */
#define THREADS 4
#define ROUNDS 50
static void *worker(void *arg) {
    const AiproxyConfig *c = arg;
    long bad = 0;
    for (int i = 0; i < ROUNDS; i++) {
        bool t = false;
        if (aiproxy_config_translates(c, S("POST"), S("/v1/chat/completions"), &t, NULL) != AIPROXY_OK || !t) bad++;
        AiproxyExchange *ex = aiproxy_exchange_new(c, NULL);
        AiproxyRequestResult r;
        AiproxyResponseHeadersResult rh;
        AiproxyBodyResult b;
        AiproxyHeader ct[] = {{{(const uint8_t *)"content-type", 12}, {(const uint8_t *)"application/json", 16}}};
        if (request(ex, CHAT, &r, NULL) != AIPROXY_OK || !contains(r.model, "gpt-4o-mini")) bad++;
        if (aiproxy_exchange_on_response_headers(ex, 200, ct, 1, &rh, NULL) != AIPROXY_OK) bad++;
        if (aiproxy_exchange_on_response_body(ex, S(COMPLETION), true, &b, NULL) != AIPROXY_OK || b.status != 200) bad++;
        AiproxyUsage u;
        if (aiproxy_exchange_usage(ex, &u) != AIPROXY_OK || u.total_tokens != 5) bad++;
        aiproxy_exchange_free(ex);
    }
    return (void *)bad;
}

static void test_threads(void) {
    AiproxyConfig *c = load(OPENAI_CFG);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&th[i], NULL, worker, c) == 0);
    for (int i = 0; i < THREADS; i++) {
        void *bad = NULL;
        CHECK(pthread_join(th[i], &bad) == 0);
        CHECK(bad == NULL);
    }
    aiproxy_config_free(c);
}

int main(void) {
    test_version_and_errors();
    test_config_new();
    test_config_questions();
    test_request_errors();
    test_buffered_flow();
    test_stream_abort_and_content_type();
    test_callout();
    test_threads();
    printf("api_contract: %d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
