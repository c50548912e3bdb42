//! Claude: request and response translation, fixtures shaped like Anthropic's documented API.

use super::response::ClaudeTranslator;
use super::*;
use crate::exchange::{Config, Exchange, ResponseMode};
use crate::openai::OpenAiWriter;
use crate::sse::SseEvent;
use crate::testutil::{
    self, assert_chunking_invariant, forward, header, respond, stream_text, upstream_json,
    validate_chat_completion, validate_error, validate_sse_stream,
};
use crate::usage::Usage;
use serde_json::json;
use std::sync::Arc;

const KEY: &str = "sk-ant-test-secret-0001";
const CHAT: &str = "/v1/chat/completions";

fn cfg_with(extra: &str) -> Arc<Config> {
    testutil::token_config("claude", KEY, extra)
}

fn cfg() -> Arc<Config> {
    cfg_with("")
}

/// Translated upstream body for a chat request.
fn translate(cfg: &Arc<Config>, body: Value) -> Value {
    let (_, up) = forward(cfg, CHAT, &body.to_string());
    upstream_json(&up)
}

/// Expects the request to be answered locally; returns (status, validated error body).
fn local_reply(cfg: &Arc<Config>, path: &str, body: &str) -> (u16, Value) {
    let (status, v) = crate::testutil::local_reply(cfg, path, body);
    assert!(!v.to_string().contains(KEY), "secret leaked: {v}");
    (status, v)
}

fn rejected(body: Value) -> Value {
    let (status, v) = local_reply(&cfg(), CHAT, &body.to_string());
    assert_eq!(status, 400, "{v}");
    v
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap()
}

// -- Fixtures -------------------------------------------------------------------------

/// Mirrors the Messages API response shape ("Messages" API reference,
/// https://platform.claude.com/docs/en/api/messages): text block, end_turn, usage.
const TEXT_BODY: &str = r#"{"id":"msg_01AbCdEf","type":"message","role":"assistant","model":"claude-3-5-sonnet-20241022","content":[{"type":"text","text":"Hello"},{"type":"text","text":", world."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":6}}"#;

/// Mirrors the tool-use response in "How to implement tool use"
/// (https://platform.claude.com/docs/en/agents-and-tools/tool-use/implement-tool-use):
/// a text block and a tool_use block, stop_reason tool_use; usage with prompt-cache
/// counters as documented in "Prompt caching".
const TOOL_BODY: &str = r#"{"id":"msg_02Tool","type":"message","role":"assistant","model":"claude-3-5-sonnet-20241022","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"location":"Paris","unit":"celsius"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":100,"cache_creation_input_tokens":20,"cache_read_input_tokens":30,"output_tokens":40}}"#;

/// Mirrors the basic example in "Streaming Messages"
/// (https://platform.claude.com/docs/en/build-with-claude/streaming): message_start,
/// a text block with a ping in between, message_delta with cumulative output usage,
/// message_stop.
const TEXT_STREAM: &str = "event: message_start\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01Stream\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-3-5-sonnet-20241022\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n\
event: content_block_start\n\
data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: ping\n\
data: {\"type\": \"ping\"}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo \u{e9}t\u{e9}!\"}}\n\n\
event: content_block_stop\n\
data: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\n\
data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n\
event: message_stop\n\
data: {\"type\":\"message_stop\"}\n\n";

/// Mirrors "Streaming request with tool use" in "Streaming Messages"
/// (https://platform.claude.com/docs/en/build-with-claude/streaming): a text block, then a
/// tool_use block whose input arrives as input_json_delta fragments (the first one empty),
/// stop_reason tool_use. CRLF line endings, as SSE allows.
const TOOL_STREAM: &str = "event: message_start\r\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_03Tools\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-3-5-sonnet-20241022\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"output_tokens\":2}}}\r\n\r\n\
event: content_block_start\r\n\
data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\r\n\r\n\
event: content_block_delta\r\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me check.\"}}\r\n\r\n\
event: content_block_stop\r\n\
data: {\"type\":\"content_block_stop\",\"index\":0}\r\n\r\n\
event: content_block_start\r\n\
data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1\",\"name\":\"get_weather\",\"input\":{}}}\r\n\r\n\
event: content_block_delta\r\n\
data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\r\n\r\n\
event: content_block_delta\r\n\
data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\": \\\"San\"}}\r\n\r\n\
event: content_block_delta\r\n\
data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" Francisco\\\"}\"}}\r\n\r\n\
event: content_block_stop\r\n\
data: {\"type\":\"content_block_stop\",\"index\":1}\r\n\r\n\
event: content_block_start\r\n\
data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T2\",\"name\":\"get_time\",\"input\":{}}}\r\n\r\n\
event: content_block_delta\r\n\
data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"tz\\\":\\\"PST\\\"}\"}}\r\n\r\n\
event: content_block_stop\r\n\
data: {\"type\":\"content_block_stop\",\"index\":2}\r\n\r\n\
event: message_delta\r\n\
data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\r\n\r\n\
event: message_stop\r\n\
data: {\"type\":\"message_stop\"}\r\n\r\n";

/// Mirrors "Error events" in "Streaming Messages"
/// (https://platform.claude.com/docs/en/build-with-claude/streaming): an `error` event
/// (overloaded_error) after the 200 and some content.
const ERROR_STREAM: &str = "event: message_start\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_04Err\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-3-5-sonnet-20241022\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n\
event: content_block_start\n\
data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Par\"}}\n\n\
event: error\n\
data: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";

/// Mirrors the error shape in "Errors" (https://platform.claude.com/docs/en/api/errors).
const OVERLOADED_BODY: &str = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#;
const AUTH_BODY: &str =
    r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;

fn stream_exchange(cfg: &Arc<Config>, include_usage: bool) -> Exchange {
    let body = json!({
        "model": "claude-3-5-sonnet-20241022",
        "stream": true,
        "stream_options": {"include_usage": include_usage},
        "messages": [{"role": "user", "content": "Hi"}],
    });
    let (ex, up) = forward(cfg, CHAT, &body.to_string());
    let sent = upstream_json(&up);
    assert_eq!(sent["stream"], true);
    assert!(sent.get("stream_options").is_none());
    ex
}

fn buffered_exchange(cfg: &Arc<Config>) -> Exchange {
    let body = json!({"model": "claude-3-5-sonnet-20241022", "messages": [{"role": "user", "content": "Hi"}]});
    forward(cfg, CHAT, &body.to_string()).0
}

// -- Request --------------------------------------------------------------------------

#[test]
fn chat_text_request_target_headers_and_default_max_tokens() {
    let cfg = cfg();
    let body = json!({"model": "claude-3-opus-20240229", "messages": [{"role": "user", "content": "Hello, who are you?"}]});
    let (_, up) = forward(&cfg, CHAT, &body.to_string());
    assert_eq!(up.authority, "api.anthropic.com");
    assert_eq!(up.path, "/v1/messages");
    assert_eq!(header(&up, "x-api-key"), Some(KEY));
    assert_eq!(header(&up, "anthropic-version"), Some("2023-06-01"));
    assert_eq!(header(&up, "content-type"), Some("application/json"));
    assert!(header(&up, "authorization").is_none());
    assert!(up.remove_headers.contains(&"authorization"));
    assert_eq!(
        upstream_json(&up),
        json!({
            "model": "claude-3-opus-20240229",
            "messages": [{"role": "user", "content": "Hello, who are you?"}],
            "max_tokens": 4096,
        })
    );
}

#[test]
fn claude_version_and_model_mapping_are_used() {
    let cfg = cfg_with(
        r#","claudeVersion":"2024-01-01","modelMapping":{"gpt-4o":"claude-3-5-haiku-20241022"}"#,
    );
    let (_, up) = forward(
            &cfg,
            CHAT,
            &json!({"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}).to_string(),
        );
    assert_eq!(header(&up, "anthropic-version"), Some("2024-01-01"));
    let sent = upstream_json(&up);
    assert_eq!(sent["model"], "claude-3-5-haiku-20241022");
    assert_eq!(sent["max_tokens"], 10);
}

#[test]
fn multi_turn_with_system_parameters_and_merged_turns() {
    let sent = translate(
        &cfg(),
        json!({
            "model": "claude-3-5-sonnet-20241022",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "user", "content": "Weather?"},
                {"role": "user", "content": [{"type": "text", "text": "In Paris."}]},
            ],
            "max_completion_tokens": 256,
            "max_tokens": 99,
            "stop": ["\n\nHuman:", "END"],
            "temperature": 0.3,
            "top_p": 0.9,
            "top_k": 40,
            "user": "user-123",
            "n": 1,
            "presence_penalty": 0,
            "store": false,
            "stream": false,
        }),
    );
    assert_eq!(
        sent,
        json!({
            "model": "claude-3-5-sonnet-20241022",
            "system": [
                {"type": "text", "text": "You are terse."},
                {"type": "text", "text": "Answer in French."},
            ],
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather?"},
                    {"type": "text", "text": "In Paris."},
                ]},
            ],
            "max_tokens": 256,
            "stop_sequences": ["\n\nHuman:", "END"],
            "temperature": 0.3,
            "top_p": 0.9,
            "top_k": 40,
            "metadata": {"user_id": "user-123"},
        })
    );
}

#[test]
fn single_system_is_a_string_and_stop_string_becomes_a_list() {
    let sent = translate(
        &cfg(),
        json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
                {"role": "user", "content": "Hi"},
            ],
            "stop": "STOP",
        }),
    );
    assert_eq!(sent["system"], "Be kind.");
    assert_eq!(sent["stop_sequences"], json!(["STOP"]));
    assert_eq!(sent["max_tokens"], 4096);
}

#[test]
fn images_from_data_urls_and_http_urls() {
    let sent = translate(
        &cfg(),
        json!({
            "model": "claude-3-5-sonnet-20241022",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Compare these."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
            ]}],
        }),
    );
    assert_eq!(
        sent["messages"][0]["content"],
        json!([
            {"type": "text", "text": "Compare these."},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
        ])
    );
    let v = rejected(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}}]}]}),
    );
    assert_eq!(v["error"]["param"], "messages[0].content[0]");
    let v = rejected(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "ftp://example.com/x.png"}}]}]}),
    );
    assert!(crate::testutil::error_message(&v).contains("http"));
    let v = rejected(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}]}]}),
    );
    assert_eq!(v["error"]["code"], "unsupported_feature");
    assert!(crate::testutil::error_message(&v).contains("audio input"));
}

#[test]
fn tools_and_every_tool_choice() {
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}},
        {"type": "function", "function": {"name": "ping"}},
    ]);
    let base = |extra: Value| {
        let mut b =
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": tools});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        translate(&cfg(), b)
    };
    let sent = base(json!({}));
    assert_eq!(
        sent["tools"],
        json!([
            {"name": "get_weather", "description": "Weather by city",
             "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}},
            {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
        ])
    );
    assert!(sent.get("tool_choice").is_none());
    assert_eq!(
        base(json!({"tool_choice": "auto"}))["tool_choice"],
        json!({"type": "auto"})
    );
    assert_eq!(
        base(json!({"tool_choice": "none"}))["tool_choice"],
        json!({"type": "none"})
    );
    assert_eq!(
        base(json!({"tool_choice": "required"}))["tool_choice"],
        json!({"type": "any"})
    );
    assert_eq!(
        base(json!({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}))
            ["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );
    assert_eq!(
        base(json!({"parallel_tool_calls": false}))["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        base(json!({"parallel_tool_calls": false, "tool_choice": "required"}))["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert!(base(json!({"parallel_tool_calls": true}))
        .get("tool_choice")
        .is_none());
    let v = rejected(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "custom", "custom": {"name": "x"}}]}),
    );
    assert_eq!(v["error"]["code"], "unsupported_feature");
}

#[test]
fn assistant_tool_calls_and_tool_results_round_trip() {
    let sent = translate(
        &cfg(),
        json!({
            "model": "m",
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
                ]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "21C"}]},
                {"role": "user", "content": "Which is warmer?"},
            ],
        }),
    );
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "21C"}]},
                {"type": "text", "text": "Which is warmer?"},
            ]},
        ])
    );
}

#[test]
fn invalid_tool_messages_are_400() {
    let v = rejected(json!({"model": "m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]},
    ]}));
    assert_eq!(
        v["error"]["param"],
        "messages[1].tool_calls[0].function.arguments"
    );
    let v = rejected(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}));
    assert_eq!(v["error"]["param"], "messages[0].tool_call_id");
    let v = rejected(
        json!({"model": "m", "messages": [{"role": "function", "name": "f", "content": "x"}]}),
    );
    assert_eq!(v["error"]["code"], "unsupported_feature");
}

#[test]
fn unsupported_openai_features_are_named_400s() {
    let cases = [
        ("n", json!(2), "n other than 1"),
        ("logprobs", json!(true), "logprobs"),
        ("top_logprobs", json!(3), "top_logprobs"),
        ("logit_bias", json!({"50256": -100}), "logit_bias"),
        ("frequency_penalty", json!(0.5), "frequency_penalty"),
        ("seed", json!(7), "seed"),
        (
            "response_format",
            json!({"type": "json_object"}),
            "response_format 'json_object'",
        ),
        ("functions", json!([{"name": "f"}]), "legacy 'functions'"),
        ("audio", json!({"voice": "alloy"}), "audio output"),
    ];
    for (key, value, feature) in cases {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        body[key] = value;
        let v = rejected(body);
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(feature) && msg.contains("'claude'"),
            "{key}: {msg}"
        );
        assert_eq!(v["error"]["code"], "unsupported_feature");
        assert_eq!(v["error"]["param"], key);
    }
    // Neutral values are accepted and not forwarded.
    let sent = translate(
        &cfg(),
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 1, "logprobs": false,
                   "frequency_penalty": 0.0, "response_format": {"type": "text"}, "logit_bias": {}}),
    );
    assert_eq!(
        sent,
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 4096})
    );
    // Fields we do not know are Claude's to judge, not dropped.
    let sent = translate(
        &cfg(),
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "thinking": {"type": "enabled", "budget_tokens": 1024}}),
    );
    assert_eq!(
        sent["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    // A configured responseJsonSchema cannot be honoured.
    let cfg = cfg_with(r#","responseJsonSchema":{"type":"object"}"#);
    testutil::assert_unsupported(&local_reply(
        &cfg,
        CHAT,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
    ));
}

#[test]
fn embeddings_are_unsupported() {
    let (status, v) = local_reply(
        &cfg(),
        "/v1/embeddings",
        r#"{"model":"voyage-3","input":"hello"}"#,
    );
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "unsupported_feature");
    assert!(crate::testutil::error_message(&v).contains("embeddings"));
}

#[test]
fn custom_settings_use_the_claude_column() {
    let cfg = cfg_with(
        r#","customSettings":[
                {"name":"top_k","value":30},
                {"name":"seed","value":1},
                {"name":"temperature","value":0.2,"overwrite":false},
                {"name":"max_tokens","value":1000,"overwrite":false}
            ]"#,
    );
    // No max_tokens from the client: customSettings fills it (our 4096 default stays out of
    // the way); temperature from the client is kept; seed has no Claude column.
    let sent = translate(
        &cfg,
        json!({"model": "m", "temperature": 0.9, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(sent["max_tokens"], 1000);
    assert_eq!(sent["top_k"], 30);
    assert_eq!(sent["temperature"], 0.9);
    assert!(sent.get("seed").is_none());
    // The client's max_tokens wins over overwrite:false.
    let sent = translate(
        &cfg,
        json!({"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(sent["max_tokens"], 50);
    let cfg = cfg_with(r#","customSettings":[{"name":"max_tokens","value":777}]"#);
    let sent = translate(
        &cfg,
        json!({"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(sent["max_tokens"], 777);
}

#[test]
fn protocol_original_passes_the_client_path_through() {
    let original = cfg_with(r#","protocol":"original""#);
    let body = r#"{"model":"claude-3-5-sonnet-20241022","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}"#;
    let (mut ex, up) = forward(&original, "/v1/messages?beta=true", body);
    assert_eq!(up.authority, "api.anthropic.com");
    assert_eq!(up.path, "/v1/messages?beta=true");
    assert_eq!(up.body, None);
    assert_eq!(header(&up, "x-api-key"), Some(KEY));
    assert_eq!(header(&up, "anthropic-version"), Some("2023-06-01"));
    assert!(up.remove_headers.contains(&"authorization"));
    let (status, out, mode) = respond(&mut ex, 200, "application/json", TEXT_BODY.as_bytes());
    assert_eq!((status, mode), (200, ResponseMode::Passthrough));
    assert_eq!(out, TEXT_BODY.as_bytes());
    // The same for a Claude-native path under the default OpenAI protocol.
    let (_, up) = forward(&cfg(), "/v1/messages", body);
    assert_eq!(
        (up.path.as_str(), up.body.is_none()),
        ("/v1/messages", true)
    );
    assert_eq!(header(&up, "x-api-key"), Some(KEY));
}

// -- Buffered responses ---------------------------------------------------------------

#[test]
fn buffered_text_response_and_usage() {
    let mut ex = buffered_exchange(&cfg());
    let v = testutil::buffered_completion(&mut ex, TEXT_BODY.as_bytes());
    assert_eq!(v["id"], "msg_01AbCdEf");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "claude-3-5-sonnet-20241022");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello, world.");
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18})
    );
    assert_eq!(ex.usage(), Some(Usage::new(12, 6, None)));
}

#[test]
fn buffered_tool_use_response() {
    let mut ex = buffered_exchange(&cfg());
    let (status, v) = testutil::respond_json(&mut ex, 200, TOOL_BODY.as_bytes());
    assert_eq!(status, 200);
    validate_chat_completion(&v);
    let msg = &v["choices"][0]["message"];
    assert_eq!(msg["content"], "Checking.");
    assert_eq!(msg["tool_calls"][0]["id"], "toolu_01A");
    assert_eq!(msg["tool_calls"][0]["type"], "function");
    assert_eq!(msg["tool_calls"][0]["function"]["name"], "get_weather");
    let args: Value = serde_json::from_str(
        msg["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(args, json!({"location": "Paris", "unit": "celsius"}));
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    // Cached prompt tokens count as prompt tokens, and the cache reads are OpenAI's cached_tokens.
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 150, "completion_tokens": 40, "total_tokens": 190,
               "prompt_tokens_details": {"cached_tokens": 30}})
    );
}

#[test]
fn buffered_tool_only_response_has_null_content() {
    let body = r#"{"id":"msg_x","type":"message","role":"assistant","model":"m","content":[{"type":"tool_use","id":"toolu_9","name":"ping","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2}}"#;
    let mut ex = buffered_exchange(&cfg());
    let v = json_of(&respond(&mut ex, 200, "application/json", body.as_bytes()).1);
    validate_chat_completion(&v);
    assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{}"
    );
}

#[test]
fn stop_reasons_map_to_finish_reasons() {
    for (claude, openai) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
    ] {
        let body = format!(
            r#"{{"id":"msg_x","type":"message","role":"assistant","model":"m","content":[{{"type":"text","text":"t"}}],"stop_reason":"{claude}","usage":{{"input_tokens":1,"output_tokens":1}}}}"#
        );
        let mut ex = buffered_exchange(&cfg());
        let v = json_of(&respond(&mut ex, 200, "application/json", body.as_bytes()).1);
        validate_chat_completion(&v);
        assert_eq!(v["choices"][0]["finish_reason"], openai, "{claude}");
    }
}

#[test]
fn buffered_upstream_errors_keep_status() {
    let cases: [(u16, &str, &str, Option<&str>); 4] = [
        (529, OVERLOADED_BODY, "api_error", Some("overloaded_error")),
        (
            401,
            AUTH_BODY,
            "authentication_error",
            Some("authentication_error"),
        ),
        (
            404,
            r#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-9"}}"#,
            "invalid_request_error",
            Some("not_found_error"),
        ),
        (
            503,
            "<html>upstream connect error</html>",
            "api_error",
            None,
        ),
    ];
    for (status, body, kind, code) in cases {
        let mut ex = buffered_exchange(&cfg());
        let (got, out, mode) = respond(&mut ex, status, "application/json", body.as_bytes());
        assert_eq!((got, mode), (status, ResponseMode::Buffer));
        let v = json_of(&out);
        validate_error(&v);
        assert_eq!(v["error"]["type"], kind, "{body}");
        assert_eq!(v["error"]["code"].as_str(), code, "{body}");
    }
    let mut ex = buffered_exchange(&cfg());
    let v = json_of(&respond(&mut ex, 529, "application/json", OVERLOADED_BODY.as_bytes()).1);
    assert_eq!(v["error"]["message"], "Overloaded");
}

#[test]
fn error_inside_a_200_and_malformed_bodies() {
    let mut ex = buffered_exchange(&cfg());
    let (status, _) = testutil::respond_error(&mut ex, 200, OVERLOADED_BODY.as_bytes());
    assert_eq!(status, 529);
    let mut ex = buffered_exchange(&cfg());
    let (status, _) = testutil::respond_error(&mut ex, 200, b"{not json");
    assert_eq!(status, 502);
}

// -- Streams --------------------------------------------------------------------------

#[test]
fn stream_text_with_usage_chunk() {
    let mut ex = stream_exchange(&cfg(), true);
    let (status, out, mode) = respond(&mut ex, 200, "text/event-stream", TEXT_STREAM.as_bytes());
    assert_eq!((status, mode), (200, ResponseMode::Stream));
    let events = validate_sse_stream(&out);
    assert_eq!(stream_text(&events), "Hello été!");
    // First chunk carries the role; identity comes from message_start.
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    for e in &events {
        assert_eq!(e["id"], "msg_01Stream");
        assert_eq!(e["model"], "claude-3-5-sonnet-20241022");
    }
    assert_eq!(testutil::stream_finishes(&events), vec!["stop"]);
    testutil::assert_usage_chunk(&events, 25, 15, 40);
    assert_eq!(
        events.iter().filter(|e| e.get("usage").is_some()).count(),
        1
    );
    assert_eq!(ex.usage(), Some(Usage::new(25, 15, None)));
}

#[test]
fn stream_without_include_usage_has_no_usage_chunk_but_records_usage() {
    let mut ex = stream_exchange(&cfg(), false);
    let events = testutil::stream_events(&mut ex, TEXT_STREAM.as_bytes());
    assert!(events.iter().all(|e| e.get("usage").is_none()));
    assert_eq!(
        events.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(ex.usage(), Some(Usage::new(25, 15, None)));
}

#[test]
fn stream_tool_calls() {
    let mut ex = stream_exchange(&cfg(), false);
    let events = testutil::stream_events(&mut ex, TOOL_STREAM.as_bytes());
    assert_eq!(stream_text(&events), "Let me check.");
    let calls: Vec<&Value> = events
        .iter()
        .filter_map(|e| e["choices"].get(0)?.get("delta")?.get("tool_calls"))
        .map(|tc| &tc[0])
        .collect();
    // Starts carry id, type, name and empty arguments; deltas carry the same index.
    assert_eq!(
        calls[0],
        &json!({"index": 0, "id": "toolu_01T1", "type": "function", "function": {"name": "get_weather", "arguments": ""}})
    );
    let args = |idx: u64| -> String {
        calls
            .iter()
            .filter(|c| c["index"] == idx)
            .filter_map(|c| c["function"]["arguments"].as_str())
            .collect()
    };
    assert_eq!(
        serde_json::from_str::<Value>(&args(0)).unwrap(),
        json!({"location": "San Francisco"})
    );
    assert_eq!(calls.iter().filter(|c| c["index"] == 1).count(), 2);
    assert_eq!(
        calls.iter().find(|c| c["index"] == 1).unwrap()["id"],
        "toolu_01T2"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&args(1)).unwrap(),
        json!({"tz": "PST"})
    );
    assert_eq!(
        events.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
    assert_eq!(ex.usage(), Some(Usage::new(472, 89, None)));
}

#[test]
fn stream_translation_is_chunking_invariant() {
    let cfg = cfg();
    for (body, usage) in [
        (TEXT_STREAM, true),
        (TOOL_STREAM, true),
        (ERROR_STREAM, false),
    ] {
        assert_chunking_invariant(
            || stream_exchange(&cfg, usage),
            "text/event-stream",
            body.as_bytes(),
        );
    }
}

#[test]
fn in_stream_error_event_becomes_an_openai_error_then_done() {
    let mut ex = stream_exchange(&cfg(), true);
    let (status, out, _) = respond(&mut ex, 200, "text/event-stream", ERROR_STREAM.as_bytes());
    assert_eq!(status, 200);
    let events = validate_sse_stream(&out);
    assert_eq!(stream_text(&events), "Par");
    let err = events.last().unwrap();
    assert_eq!(err["error"]["message"], "Overloaded");
    assert_eq!(err["error"]["code"], "overloaded_error");
    assert_eq!(err["error"]["type"], "api_error");
    assert!(events.iter().all(|e| e.get("usage").is_none()));
}

#[test]
fn truncated_or_garbled_streams_end_with_an_error_and_done() {
    let cut = TEXT_STREAM.find("event: message_delta").unwrap();
    let mut ex = stream_exchange(&cfg(), false);
    let events = testutil::stream_events(&mut ex, &TEXT_STREAM.as_bytes()[..cut]);
    assert_eq!(stream_text(&events), "Hello été!");
    assert!(events.last().unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("message_stop"));

    let mut ex = stream_exchange(&cfg(), false);
    testutil::stream_error(&mut ex, b"event: message_start\ndata: {oops\n\n");
}

#[test]
fn stream_usage_counts_cache_tokens_and_cumulative_message_delta() {
    // Usage fields per "Streaming Messages" and "Prompt caching": message_delta may repeat
    // input_tokens without the cache counters; counts are cumulative, not increments.
    let mut t = ClaudeTranslator::new();
    let mut w = OpenAiWriter::new("m", true);
    for data in [
        r#"{"type":"message_start","message":{"id":"msg_u","model":"m","usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}}}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"input_tokens":10,"output_tokens":7}}"#,
        r#"{"type":"message_stop"}"#,
    ] {
        t.on_event(
            SseEvent {
                event: "",
                data: data.as_bytes(),
            },
            &mut w,
        )
        .unwrap();
    }
    t.on_stream_end(&mut w).unwrap();
    w.end();
    let events = validate_sse_stream(w.output());
    assert_eq!(
        w.usage(),
        Some(Usage::new(15, 7, None).with_cached(Some(5)))
    );
    assert_eq!(events[1]["choices"][0]["finish_reason"], "length");
    assert_eq!(events[2]["usage"]["total_tokens"], 22);
}

#[test]
fn stream_request_answered_with_an_http_error_is_buffered() {
    let mut ex = stream_exchange(&cfg(), true);
    let (status, out, mode) = respond(&mut ex, 429, "application/json",
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#);
    assert_eq!((status, mode), (429, ResponseMode::Buffer));
    let v = json_of(&out);
    validate_error(&v);
    assert_eq!(v["error"]["type"], "rate_limit_error");
}

// -- Agent traffic ---------------------------------------------------------------------

#[test]
fn structured_output_reasoning_effort_and_the_field_policy() {
    let base = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
    // response_format json_schema → output_config.format ("Structured outputs" guide).
    let mut body = base.clone();
    body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "r", "strict": true,
        "schema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false}}});
    let sent = translate(&cfg(), body);
    assert_eq!(
        sent["output_config"]["format"]["type"], "json_schema",
        "{sent}"
    );
    assert_eq!(
        sent["output_config"]["format"]["schema"]["required"],
        json!(["a"])
    );
    assert!(sent.get("response_format").is_none());
    // reasoning_effort → thinking with a budget below max_tokens ("Extended thinking" guide).
    let mut body = base.clone();
    body["reasoning_effort"] = json!("medium");
    let sent = translate(&cfg(), body);
    assert_eq!(
        sent["thinking"],
        json!({"type": "enabled", "budget_tokens": 4096})
    );
    assert!(sent["max_tokens"].as_u64().unwrap() > 4096);
    // Claude 4.6 and later: adaptive thinking with output_config.effort, beside a structured
    // output format ("Adaptive thinking" guide; the SDK's OutputConfigParam holds both).
    let mut body = base.clone();
    body["model"] = json!("claude-opus-4-7");
    body["reasoning_effort"] = json!("low");
    body["response_format"] =
        json!({"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}});
    let sent = translate(&cfg(), body);
    assert_eq!(
        sent["thinking"],
        json!({"type": "adaptive", "display": "summarized"})
    );
    assert_eq!(sent["output_config"]["effort"], "low", "{sent}");
    assert_eq!(sent["output_config"]["format"]["type"], "json_schema");
    assert_eq!(sent["max_tokens"], 4096);
    let mut body = base.clone();
    body["model"] = json!("claude-opus-4-7");
    body["reasoning_effort"] = json!("none");
    let sent = translate(&cfg(), body);
    assert!(sent.get("thinking").is_none() && sent.get("output_config").is_none());
    // New OpenAI fields never reach Anthropic; safety_identifier is the user id.
    let mut body = base;
    body["safety_identifier"] = json!("user-7");
    body["prompt_cache_key"] = json!("k");
    body["some_future_openai_field"] = json!(1);
    let sent = translate(&cfg(), body);
    assert_eq!(sent["metadata"], json!({"user_id": "user-7"}));
    assert!(sent.get("prompt_cache_key").is_none());
    assert!(sent.get("some_future_openai_field").is_none());
    assert!(sent.get("safety_identifier").is_none());
}

/// Thinking blocks, streamed and buffered, shaped as in Anthropic's "Extended thinking" guide
/// (thinking block with thinking_delta and signature_delta, then the text block).
#[test]
fn thinking_becomes_reasoning_content() {
    let stream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_t\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me add.\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQB\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"4\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let mut ex = stream_exchange(&cfg(), false);
    let events = testutil::stream_events(&mut ex, stream.as_bytes());
    let reasoning: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "Let me add.");
    assert_eq!(stream_text(&events), "4");
    let body = r#"{"id":"msg_b","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"thinking","thinking":"2+2","signature":"EqQB"},{"type":"text","text":"4"}],"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":9}}"#;
    let mut ex = buffered_exchange(&cfg());
    let v = testutil::buffered_completion(&mut ex, body.as_bytes());
    assert_eq!(v["choices"][0]["message"]["reasoning_content"], "2+2");
    assert_eq!(v["choices"][0]["message"]["content"], "4");
}

// Prompt caching from an OpenAI-format request: a content part's `cache_control` marks the
// Claude block (docs.claude.com/en/docs/build-with-claude/prompt-caching).
#[test]
fn cache_control_on_content_parts_reaches_claude() {
    let b = translate(
        &cfg(),
        json!({"model": "claude-3-5-sonnet-20241022", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "long context", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            {"type": "text", "text": "question"}]}]}),
    );
    assert_eq!(
        b["messages"][0]["content"],
        json!([{"type": "text", "text": "long context", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
               {"type": "text", "text": "question"}])
    );
}

// -- The typed views agree with the Value path ----------------------------------------

/// One run of `events` through a translator with the typed views on or off: per event its
/// result and output, then the end check, the closing output and the usage.
fn run_events(typed: bool, events: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut t = ClaudeTranslator::new();
    t.typed = typed;
    let mut w = OpenAiWriter::new("m", true);
    w.identify(Some("chatcmpl-fixed"), None);
    w.set_created(1);
    let mut log = Vec::new();
    for (name, data) in events {
        let r = t.on_event(SseEvent { event: name, data }, &mut w);
        log.push(format!("{r:?} {}", String::from_utf8_lossy(w.output())));
        w.clear();
    }
    let r = t.on_stream_end(&mut w);
    w.end();
    log.push(format!(
        "{r:?} {} {:?}",
        String::from_utf8_lossy(w.output()),
        w.usage()
    ));
    log
}

/// The events of an SSE text (event name, data).
fn sse_events(stream: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    crate::sse::SseParser::default()
        .feed(stream.as_bytes(), |e| {
            out.push((e.event.to_string(), e.data.to_vec()));
            Ok::<(), crate::sse::SseError>(())
        })
        .unwrap();
    out
}

/// Extended thinking, redacted thinking and a citation, shaped as in Anthropic's "Extended
/// thinking" and "Citations" guides (redacted_thinking carries `data`; citations_delta a
/// `citation` object).
const THINKING_STREAM: &str = "event: message_start\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_t\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":2,\"output_tokens\":1}}}\n\n\
event: content_block_start\n\
data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me \\\"add\\\".\\n\"}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQBCgIYAhIM\"}}\n\n\
event: content_block_stop\n\
data: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: content_block_start\n\
data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"EmwKAhgBEgy3va\"}}\n\n\
event: content_block_stop\n\
data: {\"type\":\"content_block_stop\",\"index\":1}\n\n\
event: ping\n\
data: {\"type\": \"ping\"}\n\n\
event: content_block_start\n\
data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"citations_delta\",\"citation\":{\"type\":\"char_location\",\"cited_text\":\"x\",\"document_index\":0,\"start_char_index\":0,\"end_char_index\":1}}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"text_delta\",\"text\":\"4 \\u00e9\\ud83d\\ude00 \u{4e2d}\"}}\n\n\
event: content_block_stop\n\
data: {\"type\":\"content_block_stop\",\"index\":2}\n\n\
event: message_delta\n\
data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":9}}\n\n\
event: message_stop\n\
data: {\"type\":\"message_stop\"}\n\n";

fn assert_paths_agree(events: &[(String, Vec<u8>)]) {
    let (typed, value) = (run_events(true, events), run_events(false, events));
    assert_eq!(typed, value, "{events:?}");
}

#[test]
fn typed_events_take_the_fast_path_and_agree_on_the_fixtures() {
    for stream in [TEXT_STREAM, TOOL_STREAM, ERROR_STREAM, THINKING_STREAM] {
        let events = sse_events(stream);
        assert_paths_agree(&events);
        // The per-token events have typed views, the events around them their scan.
        for (name, data) in &events {
            if matches!(
                name.as_str(),
                "content_block_delta" | "content_block_stop" | "ping"
            ) {
                assert!(typed::event(data).is_some(), "{name}");
            }
            if matches!(
                name.as_str(),
                "message_start" | "content_block_start" | "message_delta" | "message_stop"
            ) {
                assert!(typed::bookend(data, name).is_some(), "{name}");
            }
        }
    }
}

/// Event data the views must leave to the Value path, or read exactly as it does: escapes,
/// unicode, odd types, huge numbers, duplicate keys, unknown fields, malformed JSON.
#[test]
fn typed_events_agree_on_edge_cases() {
    let delta =
        |d: &str| format!(r#"{{"type":"content_block_delta","index":1,"delta":{d}}}"#).into_bytes();
    let start = sse_events(TOOL_STREAM);
    let mut cases: Vec<Vec<u8>> = [
        r#"{"type":"text_delta","text":"a\"b\\c\/\n\t\u0001\u00e9\ud83d\ude00"}"#,
        r#"{"type":"text_delta","text":"\ud800"}"#,
        r#"{"type":"text_delta","text":"\udc00\ud800x"}"#,
        r#"{"type":"text_delta","text":null}"#,
        r#"{"type":"text_delta","text":5}"#,
        r#"{"type":"text_delta"}"#,
        r#"{"type":"text_delta","text":"a","text":"b"}"#,
        r#"{"type":"text_delta","text":"a","type":"thinking_delta","thinking":"t"}"#,
        r#"{"type":"text_delta","text":"a","x":1e400}"#,
        r#"{"type":"text_delta","text":"a","x":1}"#,
        r#"{"type":"signature_delta","signature":1e400}"#,
        r#"{"type":"signature_delta","signature":"\ud800"}"#,
        r#"{"type":"signature_delta","signature":[1,{"a":null}]}"#,
        r#"{"type":"citations_delta","citation":99999999999999999999999}"#,
        r#"{"type":"input_json_delta","partial_json":"{\"a\":"}"#,
        r#"{"type":"input_json_delta","partial_json":""}"#,
        r#"{"type":"input_json_delta","partial_json":null}"#,
        r#"{"type":null,"text":"x"}"#,
        r#"{"type":7}"#,
        r#"null"#,
        r#""text_delta""#,
        r#"[]"#,
        r#"{}"#,
        r#"{"type":"text\u005fdelta","text":"esc"}"#,
        r#"{"type":"text_delta","text":"a"} "#,
    ]
    .iter()
    .map(|d| delta(d))
    .collect();
    let deep = format!(
        r#"{{"type":"citations_delta","citation":{}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    cases.push(delta(&deep));
    for raw in [
        r#"{"type":"content_block_delta","index":-1,"delta":{"type":"input_json_delta","partial_json":"x"}}"#,
        r#"{"type":"content_block_delta","index":1.0,"delta":{"type":"input_json_delta","partial_json":"x"}}"#,
        r#"{"type":"content_block_delta","index":18446744073709551616,"delta":{"type":"text_delta","text":"x"}}"#,
        r#"{"type":"content_block_delta","index":"1","delta":{"type":"input_json_delta","partial_json":"x"}}"#,
        r#"{"type":"content_block_delta","index":1,"index":2,"delta":{"type":"input_json_delta","partial_json":"x"}}"#,
        r#"{"index":1,"delta":{"type":"input_json_delta","partial_json":"noname"}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"content_block_stop","index":null}"#,
        r#"{"type":"content_block_stop"}"#,
        r#"{"type":"content_block_stop","index":1,"extra":true}"#,
        r#"{"type":"ping"}"#,
        r#"{"type":"ping","index":1e999}"#,
        r#"{"type":"message_stop"}"#,
        r#"{"type":"message_delta","delta":{"type":"text_delta","text":"not a block delta"}}"#,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        r#"{"type":"later_event","index":1}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"x"}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"x"}} x"#,
        r#"{"type":"content_block_delta","index":01,"delta":{}}"#,
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\u{1}\"}}",
    ] {
        cases.push(raw.as_bytes().to_vec());
    }
    let mut bad_utf8 = delta(r#"{"type":"text_delta","text":"ab"}"#);
    let at = bad_utf8.len() - 4;
    bad_utf8.insert(at, 0xff);
    cases.push(bad_utf8);
    // After the tool block opened (index 1), before its own input_json_delta events.
    let open = start
        .iter()
        .position(|(n, d)| n == "content_block_start" && d.windows(9).any(|w| w == b"\"index\":1"))
        .unwrap();
    for data in cases {
        for name in ["content_block_delta", "", "ping"] {
            let mut events = start[..=open].to_vec();
            events.push((name.to_string(), data.clone()));
            events.extend_from_slice(&start[open + 1..]);
            assert_paths_agree(&events);
        }
    }
}

/// The events around the deltas, in the spellings the scan must read exactly as the `Value`
/// path does or leave to it: Anthropic's current usage objects, indices of every JSON type, tool
/// inputs of every shape, odd types, repeated and escaped keys, names that disagree with the
/// data's type, malformed JSON.
#[test]
fn bookend_events_agree_on_edge_cases() {
    let start = sse_events(TOOL_STREAM);
    let block =
        |b: &str| format!(r#"{{"type":"content_block_start","index":1,"content_block":{b}}}"#);
    let mut cases: Vec<String> = [
        // Anthropic's message_start as of 2025 (usage with the cache breakdown and tier).
        r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"cache_creation_input_tokens":1,"cache_read_input_tokens":2,"cache_creation":{"ephemeral_5m_input_tokens":1,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard"}}}"#,
        r#"{"type":"message_start","message":{"id":"msg_\u0031","model":"m\"x","usage":{"input_tokens":1.5,"output_tokens":-1}}}"#,
        r#"{"type":"message_start","message":{"id":null,"model":null,"usage":null}}"#,
        r#"{"type":"message_start","message":{"id":7}}"#,
        r#"{"type":"message_start","message":null}"#,
        r#"{"type":"message_start","message":[]}"#,
        r#"{"type":"message_start"}"#,
        r#"{"type":"message_start","message":{"id":"a","id":"b"}}"#,
        r#"{"type":"message_start","message":{"usage":{"input_tokens":1,"input_tokens":2}}}"#,
        r#"{"type":"message_start","message":{"usage":{"input_tokens":1e400}}}"#,
        r#"{"type":"message_start","message":{"usage":{"input_tokens":18446744073709551616}}}"#,
        r#"{"type":"message_start","message":{"usage":"many"}}"#,
        r#"{"type":"message_start","message":{"id":"x"},"usage":{"output_tokens":3}}"#,
        r#"{"message":{"id":"no type"}}"#,
        r#"{"type":"message_\u0073tart","message":{"id":"escaped type"}}"#,
        r#"{"type":"message_start","message":{"id":"x"}} trailing"#,
        r#"{"type":"message_start","message":{"id":"x"}"#,
        r#"{"type":"message_start","message":{"\u0069d":"escaped key"}}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"input_tokens":3,"cache_read_input_tokens":4,"output_tokens":5}}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":null},"usage":null}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":5}}"#,
        r#"{"type":"message_delta","delta":null}"#,
        r#"{"type":"message_delta","delta":"end_turn"}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"a","stop_reason":"b"}}"#,
        r#"{"type":"message_delta"}"#,
        r#"{"type":"message_stop"}"#,
        r#"{"type":"message_stop","index":1,"usage":{"output_tokens":1}}"#,
        r#"{"type":"message_stop","extra":[1,{"a":1e400}]}"#,
        r#"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"t","name":"n","input":{}}}"#,
        r#"{"type":"content_block_start","index":-1}"#,
        r#"{"type":"content_block_start","index":1.5,"content_block":{"type":"text","text":"x"}}"#,
        r#"{"type":"content_block_start","index":"1","content_block":{"type":"text","text":"x"}}"#,
        r#"{"type":"content_block_start","index":null,"content_block":{"type":"text","text":"x"}}"#,
        r#"{"type":"content_block_start","index":1,"content_block":null}"#,
        r#"{"type":"content_block_start","index":1,"content_block":5}"#,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"named message_start"}}"#,
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    for b in [
        r#"{"type":"tool_use","id":"toolu_2","name":"get_weather","input":{}}"#,
        r#"{"type":"tool_use","id":"toolu_2","name":"get_weather","input":{ }}"#,
        r#"{"type":"tool_use","id":"toolu_2","name":"get_weather","input":{"city": "Paris", "n": 1.50, "u": "\u00e9\/"}}"#,
        r#"{"type":"tool_use","id":"toolu_2","name":"get_weather","input":{"a":1,"a":2}}"#,
        r#"{"type":"tool_use","id":"toolu_2","name":"get_weather","input":[1]}"#,
        r#"{"type":"tool_use","id":"toolu_2","name":"get_weather","input":null}"#,
        r#"{"type":"tool_use","id":"toolu_2","name":"get_weather","input":"{}"}"#,
        r#"{"type":"tool_use","id":"toolu_2","name":"get_weather"}"#,
        r#"{"type":"tool_use","id":null,"name":7,"input":{}}"#,
        r#"{"type":"text","text":"starts with text \ud83d\ude00","citations":[]}"#,
        r#"{"type":"text","text":null}"#,
        r#"{"type":"thinking","thinking":"","signature":""}"#,
        r#"{"type":"redacted_thinking","data":"EmwK"}"#,
        r#"{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"x"}}"#,
        r#"{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[{"type":"web_search_result","url":"u"}]}"#,
        r#"{"type":7}"#,
        r#"{}"#,
    ] {
        cases.push(block(b));
    }
    // After the tool block opened (index 1), before its own input_json_delta events.
    let open = start
        .iter()
        .position(|(n, d)| n == "content_block_start" && d.windows(9).any(|w| w == b"\"index\":1"))
        .unwrap();
    let mut scanned = 0;
    for data in &cases {
        for name in [
            "message_start",
            "content_block_start",
            "message_delta",
            "message_stop",
            "",
        ] {
            scanned += usize::from(typed::bookend(data.as_bytes(), name).is_some());
            let mut events = start[..=open].to_vec();
            events.push((name.to_string(), data.clone().into_bytes()));
            events.extend_from_slice(&start[open + 1..]);
            assert_paths_agree(&events);
        }
    }
    // Most of these spellings are read by the scan, not left to the `Value` path.
    assert!(
        scanned > cases.len() * 5 / 3,
        "{scanned} of {}",
        cases.len() * 5
    );
}

/// Random byte edits of the fixture streams' events: the two paths give the same output, the
/// same errors and the same usage, event by event.
#[test]
fn typed_events_agree_on_random_edits() {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let streams: Vec<_> = [TEXT_STREAM, TOOL_STREAM, THINKING_STREAM]
        .iter()
        .map(|s| sse_events(s))
        .collect();
    let alphabet: &[u8] = b"{}[]\":,\\ \tnulltrue0123456789-+.eEabcdefuxtyp_\x01\xc3\xa9";
    let mut rng = StdRng::seed_from_u64(13);
    let (mut typed_read, mut total) = (0, 0);
    for stream in &streams {
        for _ in 0..1500 {
            let mut events = stream.clone();
            for _ in 0..rng.gen_range(1..3) {
                let e = rng.gen_range(0..events.len());
                let (name, b) = &mut events[e];
                crate::testutil::random_edits(&mut rng, b, alphabet);
                total += 1;
                typed_read +=
                    usize::from(typed::event(b).is_some() || typed::bookend(b, name).is_some());
            }
            assert_paths_agree(&events);
        }
    }
    // Edited events still reach the typed path often enough for the comparison to mean much.
    assert!(typed_read > total / 10, "{typed_read} of {total}");
}

/// One buffered body through a translator with the typed view on or off: the result, the output
/// (with a generated id and the clock's `created` made comparable) and the usage.
fn run_body(typed: bool, body: &[u8]) -> String {
    let mut t = ClaudeTranslator::new();
    t.typed = typed;
    let mut w = OpenAiWriter::new("m", false);
    let r = t.on_body(body, &mut w);
    let out = match serde_json::from_slice::<Value>(w.output()) {
        Ok(mut v) => {
            if v["id"].as_str().is_some_and(|s| s.starts_with("chatcmpl-")) {
                v["id"] = "generated".into();
            }
            v["created"] = 0.into();
            v.to_string()
        }
        Err(_) => String::from_utf8_lossy(w.output()).into_owned(),
    };
    format!("{r:?} {out} {:?}", w.usage())
}

#[test]
fn typed_message_bodies_agree_with_the_value_path() {
    use rand::{rngs::StdRng, SeedableRng};
    let thinking = r#"{"id":"msg_b","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"thinking","thinking":"2+2","signature":"EqQB"},{"type":"redacted_thinking","data":"EmwK"},{"type":"text","text":"4 \u00e9\n","citations":[{"type":"char_location","cited_text":"x","document_index":0,"start_char_index":0,"end_char_index":1}]}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":5,"cache_creation_input_tokens":1,"cache_read_input_tokens":2,"cache_creation":{"ephemeral_5m_input_tokens":1,"ephemeral_1h_input_tokens":0},"output_tokens":9,"server_tool_use":{"web_search_requests":0},"service_tier":"standard"},"container":null}"#;
    // tool_use inputs of every JSON shape, spelled as serde_json would not write them (spaces,
    // `\/`, `\u` escapes, exponents, `-0`, integers past u64), several calls, absent input.
    let tools = r#"{"id":"msg_c","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"x"},{"type":"tool_use","id":"toolu_1","name":"f","input":{ "a" : [1, -0, 1.50, 1e5, -3, 18446744073709551616, true, null], "s": "\u00e9\/\"\n\u0001 中😀", "o": {"n": {}}, "e": []},"cache_control":null},{"type":"tool_use","id":"toolu_2","name":"g","input":"x"},{"type":"tool_use","id":"toolu_3","name":"h"},{"type":"text","text":"y"}],"stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}}"#;
    // Texts past sixteen bytes, for the plain-string scan's wide steps.
    let long = r#"{"id":"msg_d","type":"message","content":[{"type":"thinking","thinking":"Sixteen bytes and more: é 中 😀, then plain ASCII again."},{"type":"text","text":"The quick brown fox jumps over the lazy dog; \"quoted\" after thirty-two bytes."}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":2}}"#;
    let seeds = [TEXT_BODY, TOOL_BODY, thinking, OVERLOADED_BODY, tools, long];
    let fixed = [
        r#"{"type":"message","content":[{"type":"tool_use","id":null,"name":7,"input":null}],"stop_reason":"tool_use"}"#,
        r#"{"type":"message","content":[{"type":"tool_use","input":{"a":1,"a":2}}],"stop_reason":"tool_use"}"#,
        r#"{"type":"message","content":[{"type":"tool_use","input":{"s":"\ud83d\ude00"}}],"stop_reason":"tool_use"}"#,
        r#"{"type":"message","content":[{"type":"tool_use","input":{"\u0061":1,"b":{"c":0.1}}}],"stop_reason":"tool_use"}"#,
        r#"{"type":"message","content":[{"type":"tool_use","input":[{"a":1},{"a":2}]},{"type":"tool_use","input":{}}]}"#,
        r#"{"type":"message","content":[{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"q"}},{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]},{"type":"text","text":"a"}],"stop_reason":"end_turn"}"#,
        r#"{"type":"message","content":[{"type":"text","text":"a"},{"type":"text","text":"b\u00e9"},{"type":"thinking","thinking":null},{"type":"thinking"}]}"#,
        r#"{"type":"message","content":[{"type":"text","text":"a"},"b",7],"stop_reason":"end_turn"}"#,
        r#"{"type":"message","content":[{"type":"text","text":"a"}],"stop_reason":"end_turn","usage":{"input_tokens":-1,"output_tokens":1e2,"cache_read_input_tokens":0}}"#,
        r#"{"type":"message","content":[{"type":"text","text":"a"}],"stop_reason":"end_turn","usage":{"input_tokens":18446744073709551615,"output_tokens":18446744073709551616}}"#,
        r#" {"type":"message","content":[{"type":"text","text":"a"}],"usage":[]} "#,
        r#"{"type":"message","content":[{"type":"tool_use"}],"stop_reason":"tool_use"}"#,
        r#"{"type":"message","content":[{"type":"text"}],"stop_reason":null}"#,
        r#"{"type":"message","content":[],"stop_reason":"max_tokens","usage":null}"#,
        r#"{"type":"message","content":[{"type":"text","text":"a"}],"usage":{"input_tokens":1.5,"output_tokens":null}}"#,
        r#"{"type":"message","content":[{"type":"text","text":"a"}],"usage":{"input_tokens":1},"usage":{"output_tokens":2}}"#,
        r#"{"type":"message","id":"","model":"","content":[{"type":"text","text":"a"}],"stop_reason":"refusal"}"#,
        r#"{"type":"message","content":null}"#,
        r#"{"type":"message"}"#,
        r#"{"type":"error","content":[]}"#,
        r#"{"type":"message","content":[],"error":{"type":"api_error","message":"x"}}"#,
        r#"{"type":"message","content":[],"error":null,"stop_reason":"end_turn"}"#,
        r#"{"type":"message","content":[{"type":"text","text":"\ud800"}],"stop_reason":"end_turn"}"#,
        r#"{"type":"message","content":[{"type":"text","text":"a","citations":1e400}],"stop_reason":"end_turn"}"#,
        r#"{"content":[{"type":"text","text":"a","text":"b"}],"stop_reason":"end_turn"}"#,
    ];
    for body in seeds.iter().chain(&fixed) {
        assert_eq!(
            run_body(true, body.as_bytes()),
            run_body(false, body.as_bytes()),
            "{body}"
        );
    }
    for body in [TEXT_BODY, TOOL_BODY, thinking, tools, long] {
        assert!(typed::message(body.as_bytes()).is_some(), "{body}");
    }
    // The input is written as `Value::to_string` writes it.
    let m = typed::message(tools.as_bytes()).unwrap();
    let v: Value = serde_json::from_str(tools).unwrap();
    assert_eq!(
        m.tool_uses[0].arguments,
        v["content"][1]["input"].to_string()
    );
    assert_eq!(m.tool_uses[1].arguments, r#""x""#);
    assert_eq!(m.tool_uses[2].arguments, "{}");
    let alphabet: &[u8] = b"{}[]\":,\\ \tnulltrue0123456789-+.eEabcdefuxtyp_\x01\xc3\xa9";
    let mut rng = StdRng::seed_from_u64(14);
    let (mut typed_read, mut total) = (0, 0);
    for seed in seeds {
        for _ in 0..3000 {
            let mut b = seed.as_bytes().to_vec();
            crate::testutil::random_edits(&mut rng, &mut b, alphabet);
            total += 1;
            typed_read += usize::from(typed::message(&b).is_some());
            assert_eq!(
                run_body(true, &b),
                run_body(false, &b),
                "{}",
                String::from_utf8_lossy(&b)
            );
        }
    }
    // One of the six seeds (an error) never has a view; about a third of all edits keep one.
    assert!(typed_read > total / 4, "{typed_read} of {total}");
}

/// The canonical-delta reader gives what `Value` reads from the same bytes (kind, index, text),
/// for generated texts with every escape serde_json writes, `\/`, and unicode; it declines `\u`
/// escapes, raw control characters and anything off the canonical spelling.
#[test]
fn canonical_deltas_read_as_value_reads_them() {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let alphabet = [
        "a", " ", "\"", "\\", "\n", "\r", "\t", "\u{8}", "\u{c}", "\u{1}", "é", "中", "😀", "/",
        "}}", "\\/",
    ];
    let mut rng = StdRng::seed_from_u64(15);
    let mut scratch = String::new();
    let (mut accepted, mut total) = (0, 0);
    for _ in 0..5000 {
        let text: String = (0..rng.gen_range(0..12))
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
            .collect();
        let mut quoted = serde_json::to_string(&text).unwrap();
        if rng.gen_bool(0.2) {
            quoted = quoted.replace('/', "\\/");
        }
        let (kind, field, want) = [
            ("text_delta", "text", typed::DeltaKind::Text),
            ("thinking_delta", "thinking", typed::DeltaKind::Thinking),
            (
                "input_json_delta",
                "partial_json",
                typed::DeltaKind::InputJson,
            ),
        ][rng.gen_range(0..3)];
        let index = [0u64, 7, 10, u64::MAX / 2][rng.gen_range(0..4)];
        let data = format!(
            r#"{{"type":"content_block_delta","index":{index},"delta":{{"type":"{kind}","{field}":{quoted}}}}}"#
        );
        total += 1;
        let v: Value = serde_json::from_str(&data).unwrap();
        match typed::canonical_delta(data.as_bytes(), &mut scratch) {
            Some((k, i, s)) => {
                accepted += 1;
                assert_eq!(
                    (k, i, s),
                    (want, index, v["delta"][field].as_str().unwrap())
                );
                assert_eq!(s, text);
            }
            None => assert!(
                text.contains(|c: char| c < ' ' && !"\n\r\t\u{8}\u{c}".contains(c)),
                "{data}"
            ),
        }
    }
    assert!(accepted > total / 2, "{accepted} of {total}");
    for off in [
        r#"{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"x"}}"#,
        r#"{"type":"content_block_delta","index":-1,"delta":{"type":"text_delta","text":"x"}}"#,
        r#"{"type":"content_block_delta","index":18446744073709551616,"delta":{"type":"text_delta","text":"x"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x\u0041"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x\"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x\\\"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x\q"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}},"x":"b"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"},"index":1}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"x"}}"#,
        r#"{"type":"content_block_delta", "index":0,"delta":{"type":"text_delta","text":"x"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}} "#,
    ] {
        assert_eq!(
            typed::canonical_delta(off.as_bytes(), &mut scratch),
            None,
            "{off}"
        );
    }
    let mut bad =
        br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}"#
            .to_vec();
    bad.insert(bad.len() - 4, 0xc3);
    assert_eq!(typed::canonical_delta(&bad, &mut scratch), None);
    // Escapes decode into the scratch buffer; plain text is borrowed.
    let data = br#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"a\\\/\": \"b\nc\"}"}}"#;
    assert_eq!(
        typed::canonical_delta(data, &mut scratch),
        Some((typed::DeltaKind::InputJson, 3, "{\"a\\/\": \"b\nc\"}"))
    );
}
