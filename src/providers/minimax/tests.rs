use super::*;
use crate::exchange::{Config, Exchange, ResponseMode, UpstreamRequest};
use crate::testutil::{self, forward, header, respond, upstream_json};
use serde_json::{json, Value};
use std::sync::Arc;

const TOKEN: &str = "mm-test-token";

fn cfg_with(extra: &str) -> Arc<Config> {
    testutil::config(&format!(
        r#"{{"provider": {{"type": "minimax", "apiTokens": ["{TOKEN}"],
            "modelMapping": {{"gpt-4": "abab6.5-chat", "gpt-4o": "abab6.5s-chat", "*": "abab6.5g-chat"}},
            "minimaxGroupId": "1782658868262748467"{extra}}}}}"#
    ))
}

fn cfg() -> Arc<Config> {
    cfg_with("")
}

fn pro(body: &str) -> (Exchange, UpstreamRequest) {
    forward(&cfg(), "/v1/chat/completions", body)
}

#[test]
fn other_models_go_to_chatcompletion_v2() {
    let cfg = cfg_with(r#", "customSettings": [{"name": "max_tokens", "value": 77}]"#);
    let (_, up) = forward(
        &cfg,
        "/v1/chat/completions",
        r#"{"model": "gpt-3.5", "messages": [{"role": "user", "content": "hi"}]}"#,
    );
    assert_eq!(
        (up.authority.as_str(), up.path.as_str()),
        ("api.minimax.chat", "/v1/text/chatcompletion_v2")
    );
    assert_eq!(header(&up, "authorization"), Some("Bearer mm-test-token"));
    let body = upstream_json(&up);
    assert_eq!(body["model"], "abab6.5g-chat");
    assert_eq!(body["messages"], json!([{"role": "user", "content": "hi"}]));
    assert_eq!(body["max_tokens"], 77, "OpenAI column for v2");
    assert!(body.get("tokens_to_generate").is_none());
}

#[test]
fn pro_request_shape() {
    let (_, up) = pro(
        r#"{"model": "gpt-4", "stream": false, "max_tokens": 256, "temperature": 0.7, "top_p": 0.95,
            "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi! How can I help?"},
            {"role": "user", "name": "Bob", "content": [{"type": "text", "text": "Who are you?"}]}]}"#,
    );
    assert_eq!(up.authority, "api.minimax.chat");
    assert_eq!(
        up.path,
        "/v1/text/chatcompletion_pro?GroupId=1782658868262748467"
    );
    assert_eq!(header(&up, "authorization"), Some("Bearer mm-test-token"));
    assert_eq!(
        upstream_json(&up),
        json!({
            "model": "abab6.5-chat",
            "stream": false,
            "bot_setting": [{"bot_name": "MM智能助理", "content": "You are a helpful assistant."}],
            "reply_constraints": {"sender_type": "BOT", "sender_name": "MM智能助理"},
            "messages": [
                {"sender_type": "USER", "sender_name": "用户", "text": "Hello"},
                {"sender_type": "BOT", "sender_name": "MM智能助理", "text": "Hi! How can I help?"},
                {"sender_type": "USER", "sender_name": "Bob", "text": "Who are you?"}
            ],
            "tokens_to_generate": 256,
            "temperature": 0.7,
            "top_p": 0.95
        })
    );
}

#[test]
fn pro_default_bot_and_named_system() {
    let (_, up) = pro(r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#);
    let body = upstream_json(&up);
    assert_eq!(
        body["bot_setting"],
        json!([{"bot_name": DEFAULT_BOT_NAME, "content": DEFAULT_BOT_CONTENT}])
    );
    assert_eq!(body["model"], "abab6.5s-chat");
    let (_, up) = pro(
        r#"{"model": "gpt-4o", "messages": [{"role": "system", "name": "Ada", "content": "Be terse."},
            {"role": "system", "content": "Answer in English."}, {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}]}"#,
    );
    let body = upstream_json(&up);
    assert_eq!(
        body["bot_setting"],
        json!([{"bot_name": "Ada", "content": "Be terse.\n\nAnswer in English."}])
    );
    assert_eq!(body["reply_constraints"]["sender_name"], "Ada");
    assert_eq!(body["messages"][1]["sender_name"], "Ada");
}

#[test]
fn pro_model_without_group_id_is_a_400() {
    let cfg = testutil::config(&format!(
        r#"{{"provider": {{"type": "minimax", "apiTokens": ["{TOKEN}"]}}}}"#
    ));
    let err = testutil::rejected_chat(
        &cfg,
        r#"{"model": "abab5.5s-chat", "messages": [{"role": "user", "content": "hi"}]}"#,
    );
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("minimaxGroupId") && msg.contains("abab5.5s-chat"),
        "{msg}"
    );
    assert!(!msg.contains(TOKEN));
    // v2 models still work without it.
    forward(
        &cfg,
        "/v1/chat/completions",
        r#"{"model": "abab6.5g-chat", "messages": [{"role": "user", "content": "hi"}]}"#,
    );
}

#[test]
fn pro_rejects_what_it_cannot_express() {
    for (needle, body) in [
        (
            "image content",
            r#""messages": [{"role": "user", "content": [{"type": "text", "text": "what?"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]"#,
        ),
        (
            "'stop'",
            r#""stop": ["x"], "messages": [{"role": "user", "content": "x"}]"#,
        ),
        (
            "'n'",
            r#""n": 3, "messages": [{"role": "user", "content": "x"}]"#,
        ),
        (
            "tool_choice 'required'",
            r#""tool_choice": "required", "messages": [{"role": "user", "content": "x"}]"#,
        ),
    ] {
        let err = testutil::rejected_chat(&cfg(), &format!(r#"{{"model": "gpt-4", {body}}}"#));
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle) && msg.contains("minimax"), "{msg}");
    }
}

// Mirrors the ChatCompletion Pro non-streamed answer (docs "ChatCompletion Pro API" response
// example: created, model, reply, choices[{finish_reason, messages[{sender_type BOT,
// sender_name, text}]}], usage{total_tokens}, input/output_sensitive, id, base_resp).
const BUFFERED: &str = r#"{"created": 1689747645, "model": "abab6.5-chat",
    "reply": "Hello! I am MM Intelligent Assistant.",
    "choices": [{"finish_reason": "stop", "messages": [{"sender_type": "BOT",
    "sender_name": "MM智能助理", "text": "Hello! I am MM Intelligent Assistant."}]}],
    "usage": {"total_tokens": 106}, "input_sensitive": false, "output_sensitive": false,
    "id": "0106b3bc9fd844a9f3de1aa06004e2ab", "base_resp": {"status_code": 0, "status_msg": ""}}"#;

#[test]
fn pro_buffered_response() {
    let (mut ex, _) =
        pro(r#"{"model": "gpt-4", "messages": [{"role": "user", "content": "Hello"}]}"#);
    let v = testutil::buffered_completion(&mut ex, BUFFERED.as_bytes());
    assert_eq!(v["id"], "0106b3bc9fd844a9f3de1aa06004e2ab");
    assert_eq!(v["model"], "abab6.5-chat");
    assert_eq!(v["created"], 1689747645);
    testutil::assert_text_reply(&v, "Hello! I am MM Intelligent Assistant.");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 106})
    );
    assert_eq!(ex.usage().map(|u| u.total_tokens), Some(106));
}

// Mirrors the Pro stream: increments in choices[0].messages[].text, then a final event with
// finish_reason, the whole reply (repeated in messages), usage and base_resp (samples quoted
// in alibaba/higress ai-proxy provider/minimax.go).
const STREAM: &str = "data: {\"created\":1689747645,\"model\":\"abab6.5s-chat\",\"reply\":\"\",\"choices\":[{\"messages\":[{\"sender_type\":\"BOT\",\"sender_name\":\"MM智能助理\",\"text\":\"I \"}]}],\"output_sensitive\":false}\n\n\
data: {\"created\":1689747645,\"model\":\"abab6.5s-chat\",\"reply\":\"\",\"choices\":[{\"messages\":[{\"sender_type\":\"BOT\",\"sender_name\":\"MM智能助理\",\"text\":\"am from 中国.\"}]}],\"output_sensitive\":false}\n\n\
data: {\"created\":1689747645,\"model\":\"abab6.5s-chat\",\"reply\":\"I am from 中国.\",\"choices\":[{\"finish_reason\":\"stop\",\"messages\":[{\"sender_type\":\"BOT\",\"sender_name\":\"MM智能助理\",\"text\":\"I am from 中国.\"}]}],\"usage\":{\"total_tokens\":187},\"input_sensitive\":false,\"output_sensitive\":false,\"id\":\"0106b3bc9fd844a9f3de1aa06004e2ab\",\"base_resp\":{\"status_code\":0,\"status_msg\":\"\"}}\n\n";

fn stream_request(include_usage: bool) -> Exchange {
    pro(&format!(
        r#"{{"model": "gpt-4o", "stream": true, "stream_options": {{"include_usage": {include_usage}}},
            "messages": [{{"role": "user", "content": "Where are you from?"}}]}}"#
    ))
    .0
}

#[test]
fn pro_streamed_response() {
    let mut ex = stream_request(true);
    let (status, out, mode) = respond(&mut ex, 200, "text/event-stream", STREAM.as_bytes());
    assert_eq!((status, mode), (200, ResponseMode::Stream));
    let events = testutil::validate_sse_stream(&out);
    assert_eq!(
        testutil::stream_text(&events),
        "I am from 中国.",
        "final repeat not re-sent"
    );
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    let n = events.len();
    assert_eq!(events[n - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        events[n - 1]["usage"],
        json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 187})
    );
    assert_eq!(events[n - 1]["choices"], json!([]));
    assert_eq!(ex.usage().map(|u| u.total_tokens), Some(187));

    let mut ex = stream_request(false);
    let events = testutil::stream_events(&mut ex, STREAM.as_bytes());
    assert!(events.iter().all(|e| e.get("usage").is_none()));
    assert_eq!(ex.usage().map(|u| u.total_tokens), Some(187));
}

#[test]
fn pro_final_event_text_beyond_the_increments_is_sent() {
    // Only the final event: everything comes from `reply`.
    let last = STREAM.split("\n\n").nth(2).unwrap().to_string() + "\n\n";
    let mut ex = stream_request(false);
    let events = testutil::stream_events(&mut ex, last.as_bytes());
    assert_eq!(testutil::stream_text(&events), "I am from 中国.");
}

#[test]
fn pro_stream_is_chunking_invariant() {
    testutil::assert_chunking_invariant(
        || stream_request(true),
        "text/event-stream",
        STREAM.as_bytes(),
    );
}

// base_resp.status_code != 0 with HTTP 200 (docs "错误码": 1004 authentication failure,
// 1002 rate limit, 2013 invalid parameters).
fn base_resp(code: i64, msg: &str) -> String {
    format!(
        r#"{{"created": 0, "model": "", "reply": "", "choices": null, "base_resp": {{"status_code": {code}, "status_msg": "{msg}"}}}}"#
    )
}

#[test]
fn pro_errors_in_a_200_and_in_stream() {
    for (code, status) in [(1004, 401), (1002, 429), (2013, 400)] {
        let (mut ex, _) =
            pro(r#"{"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}"#);
        let (got, out, _) = respond(
            &mut ex,
            200,
            "application/json",
            base_resp(code, "failed").as_bytes(),
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        testutil::validate_error(&v);
        assert_eq!(got, status, "{code}");
        assert_eq!(v["error"]["code"], code.to_string());
        assert_eq!(v["error"]["message"], "failed");
    }
    // HTTP error statuses keep their status.
    let (mut ex, _) = pro(r#"{"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}"#);
    let (got, _) = testutil::respond_error(&mut ex, 500, base_resp(1013, "internal").as_bytes());
    assert_eq!(got, 500);
    // In a stream: the error event, then [DONE].
    let body = STREAM.split("\n\n").next().unwrap().to_string()
        + "\n\ndata: "
        + &base_resp(1002, "rate limited")
        + "\n\n";
    let mut ex = stream_request(true);
    let events = testutil::stream_events(&mut ex, body.as_bytes());
    let last = events.last().unwrap();
    assert_eq!(last["error"]["code"], "1002");
    assert_eq!(last["error"]["message"], "rate limited");
}

const TOOLS: &str = r#"[{"type": "function", "function": {"name": "get_weather",
    "description": "Weather of a city", "parameters": {"type": "object",
    "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]"#;

#[test]
fn pro_tool_calls_round_trip() {
    let (mut ex, up) = pro(&format!(
        r#"{{"model": "gpt-4", "tools": {TOOLS}, "messages": [
            {{"role": "user", "content": "Weather in Paris?"}},
            {{"role": "assistant", "content": null, "tool_calls": [{{"id": "call_1", "type": "function",
               "function": {{"name": "get_weather", "arguments": "{{\"city\":\"Paris\"}}"}}}}]}},
            {{"role": "tool", "tool_call_id": "call_1", "content": "sunny"}},
            {{"role": "user", "content": "And Rome?"}}]}}"#
    ));
    let body = upstream_json(&up);
    assert_eq!(
        body["functions"],
        json!([{"name": "get_weather", "description": "Weather of a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
    );
    assert_eq!(
        body["messages"],
        json!([
            {"sender_type": "USER", "sender_name": "用户", "text": "Weather in Paris?"},
            {"sender_type": "BOT", "sender_name": "MM智能助理", "text": "",
             "function_call": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"sender_type": "FUNCTION", "sender_name": "get_weather", "text": "sunny"},
            {"sender_type": "USER", "sender_name": "用户", "text": "And Rome?"}
        ])
    );
    // Function-calling answer (docs "函数调用功能": a BOT message with function_call).
    let answer = r#"{"created": 1, "model": "abab6.5-chat", "reply": "",
        "choices": [{"finish_reason": "stop", "messages": [{"sender_type": "BOT", "sender_name": "MM智能助理",
        "text": "", "function_call": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]}],
        "usage": {"total_tokens": 80}, "id": "f1", "base_resp": {"status_code": 0, "status_msg": "success"}}"#;
    let v = testutil::buffered_completion(&mut ex, answer.as_bytes());
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(
        call["function"],
        json!({"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"})
    );
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    // Streamed: the call comes with the final event.
    let stream = format!("data: {}\n\n", answer.replace('\n', ""));
    let mut ex = stream_request(false);
    let events = testutil::stream_events(&mut ex, stream.as_bytes());
    let calls: Vec<&Value> = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0][0]["index"], 0);
    assert_eq!(calls[0][0]["function"]["name"], "get_weather");
    assert_eq!(
        events.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
    // tool_choice "none": functions are not offered.
    let (_, up) = pro(&format!(
        r#"{{"model": "gpt-4", "tools": {TOOLS}, "tool_choice": "none", "messages": [{{"role": "user", "content": "x"}}]}}"#
    ));
    assert!(upstream_json(&up).get("functions").is_none());
}

#[test]
fn original_protocol_is_the_compat_passthrough() {
    let cfg = cfg_with(r#", "protocol": "original""#);
    let body = r#"{"model": "abab6.5-chat", "messages": [{"sender_type": "USER", "sender_name": "a", "text": "hi"}]}"#;
    let (mut ex, up) = forward(&cfg, "/v1/text/chatcompletion_pro?GroupId=1", body);
    assert_eq!(up.authority, "api.minimax.chat");
    assert_eq!(up.path, "/v1/text/chatcompletion_pro?GroupId=1");
    assert_eq!(header(&up, "authorization"), Some("Bearer mm-test-token"));
    assert!(up.body.is_none());
    testutil::assert_passthrough(&mut ex, BUFFERED.as_bytes());
}

#[test]
fn custom_settings_use_the_minimax_column_for_pro() {
    let cfg = cfg_with(
        r#", "customSettings": [{"name": "max_tokens", "value": 512},
            {"name": "temperature", "value": 0.1}, {"name": "top_k", "value": 5},
            {"name": "mask_sensitive_info", "value": false, "mode": "raw"}]"#,
    );
    let (_, up) = forward(
        &cfg,
        "/v1/chat/completions",
        r#"{"model": "gpt-4", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}"#,
    );
    let body = upstream_json(&up);
    assert_eq!(body["tokens_to_generate"], 512);
    assert_eq!(body["temperature"], 0.1);
    assert_eq!(body["mask_sensitive_info"], false);
    assert!(body.get("max_tokens").is_none() && body.get("top_k").is_none());
}

#[test]
fn embeddings_are_delegated_and_unsupported() {
    let (status, err) = testutil::local_reply(
        &cfg(),
        "/v1/embeddings",
        r#"{"model": "embo-01", "input": "x"}"#,
    );
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "unsupported_feature");
}

#[test]
fn group_id_is_query_escaped() {
    assert_eq!(query_escape("12ab-_.~"), "12ab-_.~");
    assert_eq!(query_escape("a b&c"), "a%20b%26c");
}

// The writer's rules: a Pro stream that ends before its final event (the one with
// finish_reason) ends with an error event; a reply without choices or reply text is a 502.
#[test]
fn pro_stream_cut_before_the_final_event_ends_with_an_error() {
    let cut: String = STREAM.split_inclusive("\n\n").take(2).collect();
    let mut ex = stream_request(true);
    let events = testutil::stream_events(&mut ex, cut.as_bytes());
    assert_eq!(testutil::stream_text(&events), "I am from 中国.");
    assert_eq!(events.last().unwrap()["error"]["type"], "upstream_error");
    assert!(events[..events.len() - 1]
        .iter()
        .all(|e| e["created"] == 1689747645 && e["model"] == "abab6.5s-chat"));
}

#[test]
fn pro_empty_reply_is_a_502() {
    let body = r#"{"created": 1, "model": "abab6.5-chat", "reply": "", "choices": [],
        "base_resp": {"status_code": 0, "status_msg": ""}}"#;
    let (mut ex, _) = pro(r#"{"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}"#);
    let (status, _) = testutil::respond_error(&mut ex, 200, body.as_bytes());
    assert_eq!(status, 502);
}

#[test]
fn pro_output_sensitive_is_content_filter() {
    let body = BUFFERED.replace(
        r#""output_sensitive": false"#,
        r#""output_sensitive": true"#,
    );
    let (mut ex, _) = pro(r#"{"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}"#);
    let (_, v) = testutil::respond_json(&mut ex, 200, body.as_bytes());
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
}
