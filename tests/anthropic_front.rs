//! The Anthropic Messages front through the public `Exchange` API: conversion to and from the
//! OpenAI pipeline for OpenAI-family, gemini and qwen providers, native forwarding to claude,
//! errors, headers, and chunk-split invariance. Every emitted body and event is checked against
//! Anthropic's documented shapes (tests/anthropic/schema.rs).

#[path = "anthropic/schema.rs"]
mod schema;

use aiproxy::ffi::{
    aiproxy_config_free, aiproxy_config_new, aiproxy_exchange_client_protocol,
    aiproxy_exchange_free, aiproxy_exchange_new, aiproxy_exchange_on_request, AiproxyHeader,
    AiproxyRequestResult, AiproxyStr, AIPROXY_CLIENT_PROTOCOL_ANTHROPIC,
    AIPROXY_CLIENT_PROTOCOL_OPENAI, AIPROXY_ERR_NULL_POINTER, AIPROXY_OK,
};
use aiproxy::{ClientProtocol, Config, Exchange, RequestAction, ResponseMode, UpstreamRequest};
use serde_json::{json, Value};
use std::ptr::{null, null_mut};
use std::sync::Arc;

const CLIENT_KEY: &str = "sk-ant-client-key-must-not-travel";

fn cfg(provider: &str, extra: Value) -> Arc<Config> {
    let mut p = json!({"type": provider, "apiTokens": [format!("sk-secret-{provider}")]});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    Config::from_json(json!({ "provider": p }).to_string().as_bytes()).unwrap()
}

fn client_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("content-type", "application/json"),
        ("x-api-key", CLIENT_KEY),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "interleaved-thinking-2025-05-14"),
    ]
}

fn forward(ex: &mut Exchange, path: &str, body: &Value) -> UpstreamRequest {
    match ex
        .on_request("POST", path, &client_headers(), body.to_string().as_bytes())
        .unwrap()
    {
        RequestAction::Forward(up) => up,
        other => panic!("expected a forward, got {other:?}"),
    }
}

fn local(ex: &mut Exchange, path: &str, body: &[u8]) -> (u16, Value) {
    match ex
        .on_request("POST", path, &client_headers(), body)
        .unwrap()
    {
        RequestAction::LocalReply(r) => (r.status, serde_json::from_slice(&r.body).unwrap()),
        other => panic!("expected a local reply, got {other:?}"),
    }
}

fn assert_no_client_key(up: &UpstreamRequest) {
    for (k, v) in &up.set_headers {
        assert!(!v.contains(CLIENT_KEY), "client key in header {k}");
    }
    if let Some(b) = &up.body {
        assert!(!String::from_utf8_lossy(b).contains(CLIENT_KEY));
    }
}

fn header<'a>(up: &'a UpstreamRequest, name: &str) -> Option<&'a str> {
    up.set_headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Feeds a response in chunks of `split` bytes; returns (status, content-type, body).
fn respond(
    ex: &mut Exchange,
    status: u16,
    ctype: &str,
    body: &[u8],
    split: usize,
) -> (u16, String, Vec<u8>) {
    let h = ex
        .on_response_headers(status, &[("content-type", ctype)])
        .unwrap();
    let out_ctype = h
        .set_headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map_or_else(|| ctype.to_string(), |(_, v)| v.clone());
    let mut out = Vec::new();
    let mut final_status = status;
    let chunks: Vec<&[u8]> = if body.is_empty() {
        vec![body]
    } else {
        body.chunks(split.max(1)).collect()
    };
    for (i, c) in chunks.iter().enumerate() {
        let r = ex.on_response_body(c, i + 1 == chunks.len()).unwrap();
        if r.unchanged {
            out.extend_from_slice(c);
        } else {
            out.extend_from_slice(r.data);
        }
        if let Some(s) = r.status {
            final_status = s;
        }
    }
    (final_status, out_ctype, out)
}

fn message_request(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are helpful.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [{"name": "get_weather", "description": "Current weather",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
        "metadata": {"user_id": "user-7"},
        "stream": stream,
    })
}

// ---- OpenAI-family upstream (fixture shapes: OpenAI API reference, chat completion object and
// chunk object with `stream_options.include_usage`).

const OPENAI_COMPLETION: &str = r#"{"id":"chatcmpl-9x","object":"chat.completion","created":1717171717,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Let me check.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":40,"completion_tokens":12,"total_tokens":52,"prompt_tokens_details":{"cached_tokens":8}}}"#;

fn openai_stream() -> String {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-9x", "object": "chat.completion.chunk", "created": 1717171717, "model": "gpt-4o",
                   "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        )
    };
    let mut s = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
    for w in ["Let ", "me ", "check."] {
        s += &chunk(json!({"content": w}), Value::Null);
    }
    s += &chunk(
        json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
        Value::Null,
    );
    s += &chunk(
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\""}}]}),
        Value::Null,
    );
    s += &chunk(
        json!({"tool_calls": [{"index": 0, "function": {"arguments": ":\"Paris\"}"}}]}),
        Value::Null,
    );
    s += &chunk(json!({}), json!("tool_calls"));
    s += &format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-9x", "object": "chat.completion.chunk", "created": 1717171717, "model": "gpt-4o",
               "choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52,
                                         "prompt_tokens_details": {"cached_tokens": 8}}})
    );
    s + "data: [DONE]\n\n"
}

#[test]
fn openai_request_is_converted_and_headers_are_replaced() {
    let c = cfg("openai", json!({"modelMapping": {"claude-*": "gpt-4o"}}));
    let mut ex = Exchange::new(c);
    let up = forward(&mut ex, "/v1/messages", &message_request(true));
    assert_eq!(ex.client_protocol(), ClientProtocol::Anthropic);
    assert_eq!(up.authority, "api.openai.com");
    assert_eq!(up.path, "/v1/chat/completions");
    assert_eq!(
        header(&up, "authorization"),
        Some("Bearer sk-secret-openai")
    );
    for h in [
        "x-api-key",
        "anthropic-version",
        "anthropic-beta",
        "authorization",
    ] {
        assert!(up.remove_headers.contains(&h), "{h} removed");
    }
    assert_no_client_key(&up);
    let body: Value = serde_json::from_slice(up.body.as_ref().unwrap()).unwrap();
    assert_eq!(body["model"], "gpt-4o");
    assert_eq!(ex.model_requested(), "claude-sonnet-4-5");
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "You are helpful."})
    );
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(body["user"], "user-7");
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(ex.dropped_fields(), (&[][..], 0));
}

#[test]
fn openai_buffered_reply_becomes_a_message() {
    let mut ex = Exchange::new(cfg("openai", json!({})));
    forward(&mut ex, "/v1/messages", &message_request(false));
    let (status, ctype, body) = respond(
        &mut ex,
        200,
        "application/json",
        OPENAI_COMPLETION.as_bytes(),
        7,
    );
    assert_eq!(status, 200);
    assert_eq!(ctype, "application/json");
    let m: Value = serde_json::from_slice(&body).unwrap();
    schema::check_message(&m, false).unwrap();
    assert_eq!(m["stop_reason"], "tool_use");
    assert_eq!(
        m["content"][0],
        json!({"type": "text", "text": "Let me check."})
    );
    assert_eq!(
        m["content"][1],
        json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}})
    );
    // Cached prompt tokens are not input_tokens in Anthropic's accounting.
    assert_eq!(m["usage"]["input_tokens"], 32);
    assert_eq!(m["usage"]["cache_read_input_tokens"], 8);
    assert_eq!(m["usage"]["output_tokens"], 12);
    assert_eq!(ex.usage().unwrap().prompt_tokens, 40);
}

#[test]
fn openai_stream_is_converted_identically_for_every_chunk_split() {
    let input = openai_stream();
    let mut reference: Option<Vec<u8>> = None;
    for split in [1, 3, 10, 64, 333, usize::MAX] {
        let mut ex = Exchange::new(cfg("openai", json!({})));
        forward(&mut ex, "/v1/messages", &message_request(true));
        let (status, ctype, body) =
            respond(&mut ex, 200, "text/event-stream", input.as_bytes(), split);
        assert_eq!(status, 200);
        assert_eq!(ctype, "text/event-stream");
        let events = schema::parse_events(&body).unwrap();
        let m = schema::check_sequence(&events).unwrap();
        assert_eq!(m["content"][0]["text"], "Let me check.");
        assert_eq!(m["content"][1]["input"], json!({"city": "Paris"}));
        assert_eq!(m["stop_reason"], "tool_use");
        assert_eq!(m["usage"]["output_tokens"], 12);
        assert_eq!(m["usage"]["input_tokens"], 32);
        assert_eq!(m["usage"]["cache_read_input_tokens"], 8);
        assert!(events
            .iter()
            .filter(|(n, _)| n == "content_block_delta")
            .any(|(_, d)| d["delta"]["type"] == "input_json_delta"));
        assert_eq!(ex.usage().unwrap().completion_tokens, 12);
        match &reference {
            None => reference = Some(body),
            Some(r) => assert_eq!(&body, r, "split {split}"),
        }
    }
}

#[test]
fn upstream_errors_are_anthropic_errors_with_the_status() {
    for (status, kind) in [
        (429, "rate_limit_error"),
        (401, "authentication_error"),
        (500, "api_error"),
        (400, "invalid_request_error"),
    ] {
        let mut ex = Exchange::new(cfg("openai", json!({})));
        forward(&mut ex, "/v1/messages", &message_request(true));
        let body = json!({"error": {"message": "upstream says no", "type": "x", "param": null, "code": null}});
        let (s, ctype, out) = respond(
            &mut ex,
            status,
            "application/json",
            body.to_string().as_bytes(),
            5,
        );
        assert_eq!(s, status);
        assert_eq!(ctype, "application/json");
        let v: Value = serde_json::from_slice(&out).unwrap();
        schema::check_error(&v).unwrap();
        assert_eq!(v["error"]["type"], kind);
        assert_eq!(v["error"]["message"], "upstream says no");
    }
}

#[test]
fn malformed_upstream_stream_ends_with_an_error_event() {
    let mut ex = Exchange::new(cfg("deepseek", json!({})));
    forward(&mut ex, "/v1/messages", &message_request(true));
    let input = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\ndata: {broken\n\n";
    let (_, _, body) = respond(&mut ex, 200, "text/event-stream", input.as_bytes(), 9);
    let events = schema::parse_events(&body).unwrap();
    assert_eq!(events.last().unwrap().0, "error");
    assert_eq!(schema::check_sequence(&events).unwrap()["type"], "error");
}

#[test]
fn deepseek_reasoning_becomes_thinking_blocks() {
    let mut ex = Exchange::new(cfg("deepseek", json!({})));
    let mut req = message_request(true);
    req["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    let up = forward(&mut ex, "/v1/messages", &req);
    assert_eq!(up.authority, "api.deepseek.com");
    assert_eq!(ex.dropped_fields(), (&["thinking".to_string()][..], 1));
    // DeepSeek streams `reasoning_content` before `content` (DeepSeek API docs, "Reasoning Model").
    let c = |d: Value, f: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "deepseek-reasoner", "choices": [{"index": 0, "delta": d, "logprobs": null, "finish_reason": f}]})
        )
    };
    let input = c(
        json!({"role": "assistant", "reasoning_content": "Hmm, "}),
        Value::Null,
    ) + &c(json!({"reasoning_content": "Paris."}), Value::Null)
        + &c(json!({"content": "Sunny."}), Value::Null)
        + &c(json!({}), json!("stop"))
        + "data: [DONE]\n\n";
    let (_, _, body) = respond(&mut ex, 200, "text/event-stream", input.as_bytes(), 11);
    let m = schema::check_sequence(&schema::parse_events(&body).unwrap()).unwrap();
    assert_eq!(m["content"][0]["type"], "thinking");
    assert_eq!(m["content"][0]["thinking"], "Hmm, Paris.");
    assert_eq!(m["content"][1], json!({"type": "text", "text": "Sunny."}));
    assert_eq!(m["stop_reason"], "end_turn");
}

// ---- gemini upstream (fixture shapes: Gemini API reference, GenerateContentResponse; the
// streaming endpoint sends one whole response per SSE `data:`).

#[test]
fn gemini_stream_with_a_tool_call() {
    let mut ex = Exchange::new(cfg(
        "gemini",
        json!({"modelMapping": {"claude-*": "gemini-2.0-flash"}}),
    ));
    let mut req = message_request(true);
    req["top_k"] = json!(20);
    let up = forward(&mut ex, "/v1/messages", &req);
    assert_eq!(up.authority, "generativelanguage.googleapis.com");
    assert!(
        up.path.contains("gemini-2.0-flash:streamGenerateContent"),
        "{}",
        up.path
    );
    assert_no_client_key(&up);
    let body: Value = serde_json::from_slice(up.body.as_ref().unwrap()).unwrap();
    assert_eq!(
        body["generation_config"]["topK"]
            .as_u64()
            .or(body["generationConfig"]["topK"].as_u64()),
        Some(20),
        "{body}"
    );
    let input = concat!(
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Checking \"}],\"role\":\"model\"},\"index\":0}],\"modelVersion\":\"gemini-2.0-flash\"}\r\n\r\n",
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"now.\"},{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\"}}}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],",
        "\"usageMetadata\":{\"promptTokenCount\":30,\"candidatesTokenCount\":9,\"totalTokenCount\":39},\"modelVersion\":\"gemini-2.0-flash\"}\r\n\r\n",
    );
    for split in [1, 17, usize::MAX] {
        let mut ex = Exchange::new(cfg("gemini", json!({})));
        forward(&mut ex, "/v1/messages", &message_request(true));
        let (status, _, body) = respond(&mut ex, 200, "text/event-stream", input.as_bytes(), split);
        assert_eq!(status, 200);
        let m = schema::check_sequence(&schema::parse_events(&body).unwrap()).unwrap();
        assert_eq!(m["content"][0]["text"], "Checking now.");
        assert_eq!(m["content"][1]["name"], "get_weather");
        assert_eq!(m["content"][1]["input"], json!({"city": "Paris"}));
        assert_eq!(m["stop_reason"], "tool_use");
        assert_eq!(m["usage"]["input_tokens"], 30);
        assert_eq!(m["usage"]["output_tokens"], 9);
    }
}

#[test]
fn gemini_buffered_text_and_error() {
    let mut ex = Exchange::new(cfg("gemini", json!({})));
    let mut req = message_request(false);
    req["model"] = json!("gemini-2.0-flash");
    forward(&mut ex, "/v1/messages", &req);
    let reply = r#"{"candidates":[{"content":{"parts":[{"text":"Hello there"}],"role":"model"},"finishReason":"MAX_TOKENS","index":0}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":2,"totalTokenCount":7},"modelVersion":"gemini-2.0-flash"}"#;
    let (status, _, body) = respond(&mut ex, 200, "application/json", reply.as_bytes(), 13);
    assert_eq!(status, 200);
    let m: Value = serde_json::from_slice(&body).unwrap();
    schema::check_message(&m, false).unwrap();
    assert_eq!(m["stop_reason"], "max_tokens");
    assert_eq!(
        m["content"],
        json!([{"type": "text", "text": "Hello there"}])
    );

    let mut ex = Exchange::new(cfg("gemini", json!({})));
    forward(&mut ex, "/v1/messages", &req);
    let err =
        r#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}"#;
    let (status, _, body) = respond(&mut ex, 400, "application/json", err.as_bytes(), 4);
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    schema::check_error(&v).unwrap();
    assert_eq!(v["error"]["message"], "API key not valid.");
}

#[test]
fn qwen_gets_thinking_switch_and_top_k() {
    let mut ex = Exchange::new(cfg("qwen", json!({})));
    let mut req = message_request(false);
    req["model"] = json!("qwen-plus");
    req["top_k"] = json!(10);
    req["thinking"] = json!({"type": "enabled", "budget_tokens": 500});
    let up = forward(&mut ex, "/v1/messages", &req);
    assert_eq!(up.authority, "dashscope.aliyuncs.com");
    let body: Value = serde_json::from_slice(up.body.as_ref().unwrap()).unwrap();
    assert_eq!(body["parameters"]["enable_thinking"], true, "{body}");
    assert_eq!(body["parameters"]["thinking_budget"], 500);
    assert_eq!(body["parameters"]["top_k"], 10);
    assert_eq!(ex.dropped_fields().1, 0);
}

#[test]
fn request_errors_are_local_anthropic_errors() {
    let mut ex = Exchange::new(cfg("openai", json!({})));
    let (status, v) = local(&mut ex, "/v1/messages", b"{not json");
    assert_eq!(status, 400);
    schema::check_error(&v).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let mut ex = Exchange::new(cfg("openai", json!({})));
    let (status, v) = local(&mut ex, "/v1/messages", br#"{"model":"m","messages":[]}"#);
    assert_eq!(status, 400);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_tokens"));
    let mut ex = Exchange::new(cfg("gemini", json!({})));
    let mut req = message_request(false);
    req["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}]);
    let (status, v) = local(&mut ex, "/v1/messages", req.to_string().as_bytes());
    assert_eq!(status, 400);
    schema::check_error(&v).unwrap();
    // The response side of a local reply passes it through untouched.
    let h = ex.on_response_headers(400, &[]).unwrap();
    assert_eq!(h.mode, ResponseMode::Passthrough);
}

#[test]
fn count_tokens_is_claude_only() {
    let mut ex = Exchange::new(cfg("openai", json!({})));
    let (status, v) = local(
        &mut ex,
        "/v1/messages/count_tokens",
        br#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(status, 404);
    schema::check_error(&v).unwrap();
    assert_eq!(v["error"]["type"], "not_found_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("count_tokens"));

    let c = cfg(
        "claude",
        json!({"modelMapping": {"claude-*": "claude-sonnet-4-5-20250929"}}),
    );
    let mut ex = Exchange::new(c);
    let up = forward(
        &mut ex,
        "/v1/messages/count_tokens",
        &json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(up.path, "/v1/messages/count_tokens");
    let body: Value = serde_json::from_slice(up.body.as_ref().unwrap()).unwrap();
    assert_eq!(body["model"], "claude-sonnet-4-5-20250929");
    let (status, _, out) = respond(
        &mut ex,
        200,
        "application/json",
        br#"{"input_tokens":14}"#,
        3,
    );
    assert_eq!(
        (status, out.as_slice()),
        (200, &br#"{"input_tokens":14}"#[..])
    );
}

// ---- claude: native forwarding.

/// Shapes from Anthropic's "Streaming Messages" reference.
const CLAUDE_STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5-20250929\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: ping\ndata: {\"type\":\"ping\"}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

#[test]
fn claude_is_forwarded_natively_with_usage_from_the_stream() {
    let c = cfg(
        "claude",
        json!({"modelMapping": {"claude-*": "claude-sonnet-4-5-20250929"}, "claudeVersion": "2023-06-01"}),
    );
    let mut ex = Exchange::new(c);
    let req = message_request(true);
    let up = forward(&mut ex, "/gateway/v1/messages?beta=true", &req);
    assert_eq!(up.authority, "api.anthropic.com");
    assert_eq!(up.path, "/v1/messages?beta=true");
    assert_eq!(header(&up, "x-api-key"), Some("sk-secret-claude"));
    assert_eq!(header(&up, "anthropic-version"), Some("2023-06-01"));
    assert!(up.remove_headers.contains(&"x-api-key"));
    assert!(
        !up.remove_headers.contains(&"anthropic-beta"),
        "Anthropic betas reach Anthropic"
    );
    assert_no_client_key(&up);
    let mut sent: Value = serde_json::from_slice(up.body.as_ref().unwrap()).unwrap();
    assert_eq!(sent["model"], "claude-sonnet-4-5-20250929");
    // Nothing else changed: system blocks, cache_control, tools, metadata pass as they are.
    sent["model"] = req["model"].clone();
    assert_eq!(sent, req);
    let h = ex
        .on_response_headers(200, &[("content-type", "text/event-stream")])
        .unwrap();
    // Stream mode with unchanged chunks: hosts hand every chunk over (for usage), send it as is.
    assert_eq!(h.mode, ResponseMode::Stream);
    assert!(h.set_headers.is_empty() && h.remove_headers.is_empty());
    let mut ex = Exchange::new(Arc::clone(ex.config()));
    forward(&mut ex, "/gateway/v1/messages?beta=true", &req);
    let (status, _, body) = respond(
        &mut ex,
        200,
        "text/event-stream",
        CLAUDE_STREAM.as_bytes(),
        5,
    );
    assert_eq!(status, 200);
    assert_eq!(
        body,
        CLAUDE_STREAM.as_bytes(),
        "native bytes pass untouched"
    );
    schema::check_sequence(&schema::parse_events(&body).unwrap()).unwrap();
    let u = ex.usage().unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (125, 15));
}

#[test]
fn claude_unmapped_model_keeps_the_client_body_and_reads_buffered_usage() {
    let mut ex = Exchange::new(cfg("claude", json!({})));
    let up = forward(&mut ex, "/v1/messages", &message_request(false));
    assert!(
        up.body.is_none(),
        "no mapping: the client's bytes are forwarded as they are"
    );
    assert!(!up.remove_headers.contains(&"content-length"));
    let reply = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":2}}"#;
    let (status, _, body) = respond(&mut ex, 200, "application/json", reply.as_bytes(), 6);
    assert_eq!(status, 200);
    assert_eq!(body, reply.as_bytes());
    assert_eq!(ex.usage().unwrap().total_tokens, 5);
    // Errors from Anthropic are already Anthropic-shaped: passed through.
    let mut ex = Exchange::new(cfg("claude", json!({})));
    forward(&mut ex, "/v1/messages", &message_request(false));
    let err = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let h = ex
        .on_response_headers(529, &[("content-type", "application/json")])
        .unwrap();
    assert_eq!(h.mode, ResponseMode::Passthrough);
    assert!(ex.on_response_body(err.as_bytes(), true).unwrap().unchanged);
    assert!(ex.usage().is_none());
}

#[test]
fn protocol_original_passes_messages_through_and_openai_paths_are_unchanged() {
    let mut ex = Exchange::new(cfg("openai", json!({})));
    let up = forward(
        &mut ex,
        "/v1/chat/completions",
        &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(ex.client_protocol(), ClientProtocol::OpenAi);
    assert!(!up.remove_headers.contains(&"x-api-key"));
    let mut ex = Exchange::new(cfg("claude", json!({"protocol": "original"})));
    let up = forward(&mut ex, "/v1/messages", &message_request(false));
    assert_eq!(ex.client_protocol(), ClientProtocol::Anthropic);
    assert!(up.body.is_none());
    assert_eq!(header(&up, "x-api-key"), Some("sk-secret-claude"));
}

#[test]
fn c_api_reports_the_client_protocol() {
    let json = r#"{"provider": {"type": "openai", "apiTokens": ["sk-SECRET"]}}"#;
    unsafe {
        let mut p = -1;
        assert_eq!(
            aiproxy_exchange_client_protocol(null(), &mut p),
            AIPROXY_ERR_NULL_POINTER
        );
        let mut err = null_mut();
        let c = aiproxy_config_new(json.as_ptr(), json.len(), &mut err);
        assert!(!c.is_null());
        for (path, want) in [
            ("/v1/messages", AIPROXY_CLIENT_PROTOCOL_ANTHROPIC),
            ("/v1/chat/completions", AIPROXY_CLIENT_PROTOCOL_OPENAI),
        ] {
            let ex = aiproxy_exchange_new(c, &mut err);
            assert!(!ex.is_null());
            assert_eq!(
                aiproxy_exchange_client_protocol(ex, null_mut()),
                AIPROXY_ERR_NULL_POINTER
            );
            assert_eq!(aiproxy_exchange_client_protocol(ex, &mut p), AIPROXY_OK);
            assert_eq!(p, AIPROXY_CLIENT_PROTOCOL_OPENAI);
            let body = message_request(false).to_string();
            let s = |x: &str| AiproxyStr {
                ptr: x.as_ptr(),
                len: x.len(),
            };
            let hdrs = [AiproxyHeader {
                name: s("content-type"),
                value: s("application/json"),
            }];
            let mut r: AiproxyRequestResult = std::mem::zeroed();
            let rc = aiproxy_exchange_on_request(
                ex,
                "POST".as_ptr(),
                4,
                path.as_ptr(),
                path.len(),
                hdrs.as_ptr(),
                1,
                body.as_ptr(),
                body.len(),
                &mut r,
                &mut err,
            );
            assert_eq!(rc, AIPROXY_OK);
            assert_eq!(aiproxy_exchange_client_protocol(ex, &mut p), AIPROXY_OK);
            assert_eq!(p, want, "{path}");
            aiproxy_exchange_free(ex);
        }
        aiproxy_config_free(c);
    }
    assert_eq!(
        ClientProtocol::OpenAi as i32,
        AIPROXY_CLIENT_PROTOCOL_OPENAI
    );
    assert_eq!(
        ClientProtocol::Anthropic as i32,
        AIPROXY_CLIENT_PROTOCOL_ANTHROPIC
    );
}

#[test]
fn hosts_are_told_to_read_the_body() {
    let c = cfg("openai", json!({}));
    assert!(c.translates("POST", "/v1/messages"));
    assert!(c.needs_request_body("POST", "/v1/messages/count_tokens"));
    assert!(!c.translates("GET", "/v1/messages"));
    let original = cfg("claude", json!({"protocol": "original"}));
    assert!(!original.translates("POST", "/v1/messages"));
}
