//! Cohere v2: request and response translation, fixtures shaped like Cohere's documented API.

use crate::exchange::{Config, ResponseMode};
use crate::testutil::{
    self, assert_chunking_invariant, forward, header, respond, stream_text, upstream_json,
    validate_embeddings, validate_error, validate_sse_stream,
};
use serde_json::{json, Value};
use std::sync::Arc;

const KEY: &str = "co-test-secret-0001";
const CHAT: &str = "/v1/chat/completions";
const EMB: &str = "/v1/embeddings";

fn cfg_with(extra: &str) -> Arc<Config> {
    testutil::token_config("cohere", KEY, extra)
}

fn cfg() -> Arc<Config> {
    cfg_with("")
}

/// An exchange past a minimal (buffered) chat request.
fn chat_exchange() -> crate::exchange::Exchange {
    forward(
        &cfg(),
        CHAT,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
    )
    .0
}

fn translate(body: Value) -> Value {
    let (_, up) = forward(&cfg(), CHAT, &body.to_string());
    upstream_json(&up)
}

fn rejected(body: Value) -> Value {
    let (status, v) = testutil::local_reply(&cfg(), CHAT, &body.to_string());
    assert_eq!(status, 400, "{v}");
    assert!(!v.to_string().contains(KEY));
    v
}

// -- Fixtures -------------------------------------------------------------------------

/// Shaped like the response example of Cohere's Chat API reference
/// (https://docs.cohere.com/v2/reference/chat): text content, COMPLETE, usage with billed_units
/// and tokens.
const TEXT_BODY: &str = r#"{"id":"c14c80c3-18eb-4519-9460-6c92edd8cfb4","finish_reason":"COMPLETE","message":{"role":"assistant","content":[{"type":"text","text":"LLMs are neural networks trained on text."}]},"usage":{"billed_units":{"input_tokens":5,"output_tokens":9},"tokens":{"input_tokens":71,"output_tokens":9}}}"#;

/// Shaped like the tool-calling response in Cohere's "Tool use" guide
/// (https://docs.cohere.com/v2/docs/tool-use-overview): tool_plan plus tool_calls, TOOL_CALL.
const TOOL_BODY: &str = r#"{"id":"7f2c","finish_reason":"TOOL_CALL","message":{"role":"assistant","tool_plan":"I will look up the weather in Toronto.","tool_calls":[{"id":"get_weather_1byjy32y4hvq","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Toronto\"}"}}]},"usage":{"billed_units":{"input_tokens":37,"output_tokens":28},"tokens":{"input_tokens":1224,"output_tokens":62}}}"#;

/// The event sequence of Cohere's "Streaming" guide (https://docs.cohere.com/v2/docs/streaming):
/// message-start, content-start, content-delta..., content-end, message-end with usage; SSE
/// `event:` lines name the type, as Cohere's stream does.
const TEXT_STREAM: &str = concat!(
    "event: message-start\ndata: {\"id\":\"29f14a5a-11de-4cae-9800-25e4747408ea\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\",\"content\":[],\"tool_plan\":\"\",\"tool_calls\":[],\"citations\":[]}}}\n\n",
    "event: content-start\ndata: {\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"type\":\"text\",\"text\":\"\"}}}}\n\n",
    "event: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"A large\"}}}}\n\n",
    "event: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\" language model.\"}}}}\n\n",
    "event: content-end\ndata: {\"type\":\"content-end\",\"index\":0}\n\n",
    "event: message-end\ndata: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":{\"billed_units\":{\"input_tokens\":5,\"output_tokens\":4},\"tokens\":{\"input_tokens\":71,\"output_tokens\":4}}}}\n\n",
);

/// The tool-calling step of Cohere's "Streaming for tool use" guide
/// (https://docs.cohere.com/v2/docs/tool-use-streaming): tool-plan-delta, tool-call-start,
/// tool-call-delta fragments, tool-call-end, message-end TOOL_CALL.
const TOOL_STREAM: &str = concat!(
    "event: message-start\ndata: {\"id\":\"d3d1\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\",\"content\":[],\"tool_plan\":\"\",\"tool_calls\":[],\"citations\":[]}}}\n\n",
    "event: tool-plan-delta\ndata: {\"type\":\"tool-plan-delta\",\"delta\":{\"message\":{\"tool_plan\":\"I will check\"}}}\n\n",
    "event: tool-plan-delta\ndata: {\"type\":\"tool-plan-delta\",\"delta\":{\"message\":{\"tool_plan\":\" the weather.\"}}}\n\n",
    "event: tool-call-start\ndata: {\"type\":\"tool-call-start\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"get_weather_nsz5zm3w56q3\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}}}}\n\n",
    "event: tool-call-delta\ndata: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"{\\\"location\\\":\"}}}}}\n\n",
    "event: tool-call-delta\ndata: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"\\\"Toronto\\\"}\"}}}}}\n\n",
    "event: tool-call-end\ndata: {\"type\":\"tool-call-end\",\"index\":0}\n\n",
    "event: message-end\ndata: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"TOOL_CALL\",\"usage\":{\"billed_units\":{\"input_tokens\":37,\"output_tokens\":28},\"tokens\":{\"input_tokens\":1224,\"output_tokens\":62}}}}\n\n",
);

/// Shaped like the Embed API (v2) reference response (https://docs.cohere.com/v2/reference/embed)
/// with `embedding_types: ["float"]`.
const EMBED_BODY: &str = r#"{"id":"da6e531f-54c6-4a73-bf92-f60566d8d753","embeddings":{"float":[[0.016296387,-0.008354187,-0.04699707],[0.25,0.5,-0.125]]},"texts":["hello","goodbye"],"meta":{"api_version":{"version":"2"},"billed_units":{"input_tokens":2}},"response_type":"embeddings_by_type"}"#;

// -- Requests -------------------------------------------------------------------------

#[test]
fn chat_request_target_auth_and_body() {
    let (_, up) = forward(
        &cfg(),
        CHAT,
        &json!({
            "model": "command-a-03-2025",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
            ],
            "max_tokens": 100, "temperature": 0.2, "top_p": 0.9, "stop": "END", "seed": 7,
            "user": "u1", "store": false,
        })
        .to_string(),
    );
    assert_eq!(up.authority, "api.cohere.com");
    assert_eq!(up.path, "/v2/chat");
    assert_eq!(
        header(&up, "authorization"),
        Some(&*format!("Bearer {KEY}"))
    );
    let b = upstream_json(&up);
    assert_eq!(
        b,
        json!({
            "model": "command-a-03-2025",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
            ],
            "max_tokens": 100, "temperature": 0.2, "p": 0.9, "stop_sequences": ["END"], "seed": 7,
        })
    );
}

#[test]
fn stream_request_and_images_and_tools() {
    let b = translate(json!({
        "model": "command-a-vision-07-2025", "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}],
        "tools": [{"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
                  {"type": "function", "function": {"name": "b"}}],
        "tool_choice": {"type": "function", "function": {"name": "b"}},
        "response_format": {"type": "json_object"},
    }));
    assert_eq!(b["stream"], true);
    assert!(b.get("stream_options").is_none());
    assert_eq!(
        b["messages"][0]["content"][1]["image_url"]["url"],
        "data:image/png;base64,AAAA"
    );
    assert_eq!(b["tools"].as_array().unwrap().len(), 1);
    assert_eq!(b["tools"][0]["function"]["name"], "b");
    assert_eq!(b["tool_choice"], "REQUIRED");
    assert_eq!(b["response_format"], json!({"type": "json_object"}));
}

#[test]
fn unsupported_parameters_are_400s_naming_cohere() {
    let v = rejected(json!({"model": "m", "n": 2, "messages": [{"role": "user", "content": "x"}]}));
    assert!(crate::testutil::error_message(&v).contains("cohere"), "{v}");
    assert_eq!(v["error"]["param"], "n");
    rejected(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}]}),
    );
}

#[test]
fn embeddings_request() {
    let (_, up) = forward(
        &cfg(),
        EMB,
        r#"{"model":"embed-v4.0","input":["hello","goodbye"],"dimensions":256,"encoding_format":"base64"}"#,
    );
    assert_eq!(up.path, "/v2/embed");
    assert_eq!(
        upstream_json(&up),
        json!({"model": "embed-v4.0", "texts": ["hello", "goodbye"],
               "input_type": "search_document", "embedding_types": ["float"],
               "output_dimension": 256})
    );
    let (status, v) = testutil::local_reply(&cfg(), EMB, r#"{"model":"e","input":[[1,2]]}"#);
    assert_eq!(status, 400, "{v}");
}

// -- Responses ------------------------------------------------------------------------

#[test]
fn buffered_text_reply() {
    let (mut ex, _) = forward(
        &cfg(),
        CHAT,
        r#"{"model":"command-a-03-2025","messages":[{"role":"user","content":"x"}]}"#,
    );
    let v = testutil::buffered_completion(&mut ex, TEXT_BODY.as_bytes());
    testutil::assert_text_reply(&v, "LLMs are neural networks trained on text.");
    assert_eq!(v["model"], "command-a-03-2025");
    assert_eq!(v["usage"]["prompt_tokens"], 71);
    assert_eq!(v["usage"]["completion_tokens"], 9);
    assert_eq!(v["usage"]["total_tokens"], 80);
}

#[test]
fn buffered_tool_reply() {
    let mut ex = chat_exchange();
    let v = testutil::buffered_completion(&mut ex, TOOL_BODY.as_bytes());
    let m = &v["choices"][0]["message"];
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(m["tool_calls"][0]["id"], "get_weather_1byjy32y4hvq");
    assert_eq!(
        m["tool_calls"][0]["function"]["arguments"],
        "{\"location\":\"Toronto\"}"
    );
    assert_eq!(
        m["reasoning_content"],
        "I will look up the weather in Toronto."
    );
}

#[test]
fn buffered_error_finish_is_502() {
    let mut ex = chat_exchange();
    let body = r#"{"id":"x","finish_reason":"ERROR","message":{"role":"assistant","content":[]}}"#;
    let (status, _) = testutil::respond_error(&mut ex, 200, body.as_bytes());
    assert_eq!(status, 502);
}

#[test]
fn streamed_text_reply_with_usage() {
    let c = cfg();
    let body = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}"#;
    let (mut ex, _) = forward(&c, CHAT, body);
    let (_, out, mode) = respond(&mut ex, 200, "text/event-stream", TEXT_STREAM.as_bytes());
    assert_eq!(mode, ResponseMode::Stream);
    let events = validate_sse_stream(&out);
    assert_eq!(stream_text(&events), "A large language model.");
    assert!(events
        .iter()
        .any(|e| e["choices"][0]["finish_reason"] == "stop"));
    let last = events.last().unwrap();
    assert_eq!(last["usage"]["prompt_tokens"], 71);
    assert_eq!(last["usage"]["completion_tokens"], 4);
    assert!(out.ends_with(b"data: [DONE]\n\n"));
    assert_chunking_invariant(
        || forward(&c, CHAT, body).0,
        "text/event-stream",
        TEXT_STREAM.as_bytes(),
    );
}

#[test]
fn streamed_tool_call() {
    let c = cfg();
    let body = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}"#;
    let (mut ex, _) = forward(&c, CHAT, body);
    let events = testutil::stream_events(&mut ex, TOOL_STREAM.as_bytes());
    let mut args = String::new();
    let mut reasoning = String::new();
    for e in &events {
        let d = &e["choices"][0]["delta"];
        if let Some(r) = d["reasoning_content"].as_str() {
            reasoning.push_str(r);
        }
        for tc in d["tool_calls"].as_array().into_iter().flatten() {
            if let Some(id) = tc["id"].as_str() {
                assert_eq!(id, "get_weather_nsz5zm3w56q3");
                assert_eq!(tc["function"]["name"], "get_weather");
            }
            args.push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert_eq!(args, "{\"location\":\"Toronto\"}");
    assert_eq!(reasoning, "I will check the weather.");
    assert!(events
        .iter()
        .any(|e| e["choices"][0]["finish_reason"] == "tool_calls"));
    assert_chunking_invariant(
        || forward(&c, CHAT, body).0,
        "text/event-stream",
        TOOL_STREAM.as_bytes(),
    );
}

#[test]
fn cut_stream_ends_with_an_error_event() {
    let cut = &TEXT_STREAM[..TEXT_STREAM.find("event: message-end").unwrap()];
    let (mut ex, _) = forward(
        &cfg(),
        CHAT,
        r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}"#,
    );
    let (_, out, _) = respond(&mut ex, 200, "text/event-stream", cut.as_bytes());
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("message-end"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[test]
fn embeddings_reply() {
    let (mut ex, _) = forward(
        &cfg(),
        EMB,
        r#"{"model":"embed-v4.0","input":["hello","goodbye"]}"#,
    );
    let (status, v) = testutil::respond_json(&mut ex, 200, EMBED_BODY.as_bytes());
    assert_eq!(status, 200);
    validate_embeddings(&v);
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["embedding"], json!([0.25, 0.5, -0.125]));
    assert_eq!(v["usage"]["prompt_tokens"], 2);
}

#[test]
fn upstream_error_keeps_status_and_message() {
    // Cohere's documented error body: {"id", "message"} with the HTTP status.
    let mut ex = chat_exchange();
    let body = r#"{"id":"0d3f","message":"invalid api token"}"#;
    let (status, v) = testutil::respond_json(&mut ex, 401, body.as_bytes());
    assert_eq!(status, 401);
    validate_error(&v);
    assert_eq!(v["error"]["message"], "invalid api token");
}

#[test]
fn config_requires_a_token() {
    let e = Config::from_json(br#"{"provider":{"type":"cohere"}}"#).unwrap_err();
    assert_eq!(e.path, "provider.apiTokens");
}

/// `reasoning_effort` → the v2 chat request's `thinking` object (docs.cohere.com/docs/reasoning;
/// Cohere's API definition: `type` "enabled" | "disabled", `token_budget` a positive integer).
#[test]
fn reasoning_effort_maps_to_thinking() {
    let base = || json!({"model": "command-a-reasoning-08-2025", "messages": [{"role": "user", "content": "x"}]});
    for (effort, budget) in [
        ("minimal", 1024),
        ("low", 1024),
        ("medium", 8192),
        ("high", 24576),
    ] {
        let mut body = base();
        body["reasoning_effort"] = effort.into();
        let b = translate(body);
        assert_eq!(
            b["thinking"],
            json!({"type": "enabled", "token_budget": budget})
        );
        assert!(b.get("reasoning_effort").is_none());
    }
    let mut body = base();
    body["reasoning_effort"] = "none".into();
    assert_eq!(translate(body)["thinking"], json!({"type": "disabled"}));
    // A client's own Cohere `thinking` wins.
    let mut body = base();
    body["reasoning_effort"] = "high".into();
    body["thinking"] = json!({"type": "enabled", "token_budget": 300});
    assert_eq!(translate(body)["thinking"]["token_budget"], 300);
    assert!(translate(base()).get("thinking").is_none());

    let mut body = base();
    body["reasoning_effort"] = "max".into();
    let v = rejected(body);
    assert_eq!(v["error"]["param"], "reasoning_effort");
}

/// `usage.cached_tokens` of Cohere's v2 Chat reply and of the stream's `message-end` delta
/// (docs.cohere.com/v2/reference/chat and /v2/reference/chat-stream, `usage`: the prompt tokens
/// served from Cohere's inference cache, a number; the same field in the `Usage` type of Cohere's
/// SDK generated from its API definition) → OpenAI's `prompt_tokens_details.cached_tokens`.
/// Replies without it (the fixtures above) keep no details.
#[test]
fn cached_prompt_tokens_are_openai_cached_tokens() {
    let cached_usage = r#""usage":{"billed_units":{"input_tokens":5,"output_tokens":9},"tokens":{"input_tokens":71,"output_tokens":9},"cached_tokens":64}"#;
    let body = TEXT_BODY.replace(
        r#""usage":{"billed_units":{"input_tokens":5,"output_tokens":9},"tokens":{"input_tokens":71,"output_tokens":9}}"#,
        cached_usage,
    );
    assert_ne!(body, TEXT_BODY);
    let v = testutil::buffered_completion(&mut chat_exchange(), body.as_bytes());
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 71, "completion_tokens": 9, "total_tokens": 80,
               "prompt_tokens_details": {"cached_tokens": 64}})
    );
    let v = testutil::buffered_completion(&mut chat_exchange(), TEXT_BODY.as_bytes());
    assert!(v["usage"].get("prompt_tokens_details").is_none(), "{v}");

    let c = cfg();
    let req = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}"#;
    let stream = TEXT_STREAM.replace(
        r#""tokens":{"input_tokens":71,"output_tokens":4}}"#,
        r#""tokens":{"input_tokens":71,"output_tokens":4},"cached_tokens":64}"#,
    );
    assert_ne!(stream, TEXT_STREAM);
    let (mut ex, _) = forward(&c, CHAT, req);
    let (_, out, _) = respond(&mut ex, 200, "text/event-stream", stream.as_bytes());
    let events = validate_sse_stream(&out);
    let last = events.last().unwrap();
    assert_eq!(last["usage"]["prompt_tokens"], 71);
    assert_eq!(last["usage"]["prompt_tokens_details"]["cached_tokens"], 64);
    assert_chunking_invariant(
        || forward(&c, CHAT, req).0,
        "text/event-stream",
        stream.as_bytes(),
    );
}
