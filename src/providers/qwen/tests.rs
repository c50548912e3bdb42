use crate::exchange::{Exchange, RequestAction, ResponseMode};
use crate::testutil::{self, header, respond, upstream_json};
use serde_json::{json, Value};
use std::sync::Arc;

const TOKEN: &str = "sk-qwen-secret-token";

fn cfg(extra: &str) -> Arc<crate::exchange::Config> {
    testutil::config(&format!(
        r#"{{"provider": {{"type": "qwen", "apiTokens": ["{TOKEN}"],
            "modelMapping": {{"gpt-3": "qwen-turbo", "gpt-4o": "qwen-vl-plus",
                              "text-embedding-v1": "text-embedding-v1", "*": "qwen-max"}}{extra}}}}}"#
    ))
}

fn chat(
    cfg: &Arc<crate::exchange::Config>,
    body: Value,
) -> (Exchange, crate::exchange::UpstreamRequest) {
    testutil::forward(cfg, "/v1/chat/completions", &body.to_string())
}

fn local_error(cfg: &Arc<crate::exchange::Config>, path: &str, body: Value) -> (u16, Value) {
    testutil::local_reply(cfg, path, &body.to_string())
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

// Mirrors the seed README's Qwen request example and the DashScope API reference's
// result_format=message response (help.aliyun.com/en/model-studio/qwen-api-via-dashscope).
const TEXT_RESPONSE: &str = r#"{
    "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant",
        "content": "I am Qwen, an AI assistant developed by Alibaba Cloud."}}]},
    "usage": {"total_tokens": 57, "output_tokens": 33, "input_tokens": 24},
    "request_id": "c2518bd3-0f46-97d1-be34-bb5777cb3108"}"#;

#[test]
fn chat_text_buffered() {
    let c = cfg("");
    let (mut ex, up) = chat(
        &c,
        json!({"model": "gpt-3", "temperature": 0.3, "top_p": 1.0,
        "max_completion_tokens": 64, "seed": 7, "stop": ["END"], "user": "u-1",
        "messages": [{"role": "user", "content": "Hello, who are you?"}]}),
    );
    assert_eq!(up.authority, "dashscope.aliyuncs.com");
    assert_eq!(up.path, "/api/v1/services/aigc/text-generation/generation");
    assert_eq!(
        header(&up, "authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(header(&up, "x-dashscope-sse"), None);
    assert!(up.remove_headers.contains(&"authorization"));
    let b = upstream_json(&up);
    assert_eq!(
        b,
        json!({"model": "qwen-turbo",
               "input": {"messages": [{"role": "user", "content": "Hello, who are you?"}]},
               "parameters": {"result_format": "message", "temperature": 0.3, "seed": 7,
                              "stop": ["END"], "top_p": 0.999999, "max_tokens": 64}})
    );
    let v = testutil::buffered_completion(&mut ex, TEXT_RESPONSE.as_bytes());
    assert_eq!(v["id"], "c2518bd3-0f46-97d1-be34-bb5777cb3108");
    assert_eq!(v["model"], "qwen-turbo");
    testutil::assert_text_reply(&v, "I am Qwen, an AI assistant developed by Alibaba Cloud.");
    testutil::assert_usage(&v, &ex, 24, 33, 57);
}

#[test]
fn multi_turn_with_system_and_developer() {
    let c = cfg("");
    let (_, up) = chat(
        &c,
        json!({"model": "gpt-3", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in "}, {"type": "text", "text": "English."}]},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Who are you?"}]}),
    );
    let b = upstream_json(&up);
    assert_eq!(
        b["input"]["messages"],
        json!([{"role": "system", "content": "Be brief."},
               {"role": "system", "content": "Answer in English."},
               {"role": "user", "content": "Hi"},
               {"role": "assistant", "content": "Hello!"},
               {"role": "user", "content": "Who are you?"}])
    );
}

// Mirrors the seed README's multimodal example (qwen-vl-plus) and DashScope's
// multimodal-generation response, whose content is a list of {"text"} parts and whose usage
// has no total for image input (help.aliyun.com/zh/model-studio/qwen-vl-api).
#[test]
fn images_use_the_multimodal_api() {
    let c = cfg("");
    let (mut ex, up) = chat(
        &c,
        json!({"model": "gpt-4o", "temperature": 0.3, "messages": [
        {"role": "system", "content": "You describe photos."},
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://dashscope.oss-cn-beijing.aliyuncs.com/images/dog_and_girl.jpeg"}},
            {"type": "text", "text": "Where is this picture from?"}]}]}),
    );
    assert_eq!(
        up.path,
        "/api/v1/services/aigc/multimodal-generation/generation"
    );
    let b = upstream_json(&up);
    assert_eq!(b["model"], "qwen-vl-plus");
    assert_eq!(
        b["input"]["messages"],
        json!([{"role": "system", "content": [{"text": "You describe photos."}]},
               {"role": "user", "content": [
                   {"image": "https://dashscope.oss-cn-beijing.aliyuncs.com/images/dog_and_girl.jpeg"},
                   {"text": "Where is this picture from?"}]}])
    );
    let resp =
        br#"{"output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant",
        "content": [{"text": "This photo depicts a woman and a dog "}, {"text": "on a beach."}]}}]},
        "usage": {"output_tokens": 78, "input_tokens": 1279, "image_tokens": 1200},
        "request_id": "17c5955d-af9c-9f28-bbde-293a9c9a3515"}"#;
    let v = testutil::buffered_completion(&mut ex, resp);
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "This photo depicts a woman and a dog on a beach."
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 1279, "completion_tokens": 78, "total_tokens": 1357})
    );
}

#[test]
fn image_for_a_text_model_is_unsupported() {
    let (status, v) = local_error(
        &cfg(""),
        "/v1/chat/completions",
        json!({"model": "gpt-3", "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
    );
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "unsupported_feature");
    assert!(crate::testutil::error_message(&v).contains("image input"));
}

#[test]
fn unsupported_openai_features_are_400s() {
    for (field, value) in [
        ("frequency_penalty", json!(0.5)),
        ("logprobs", json!(true)),
        ("logit_bias", json!({"50256": -100})),
        ("functions", json!([{"name": "f"}])),
        ("audio", json!({"voice": "alloy", "format": "wav"})),
    ] {
        let mut body = json!({"model": "gpt-3", "messages": [{"role": "user", "content": "x"}]});
        body[field] = value;
        let (status, v) = local_error(&cfg(""), "/v1/chat/completions", body);
        assert_eq!(status, 400, "{field}");
        assert_eq!(v["error"]["code"], "unsupported_feature", "{field}");
        assert_eq!(v["error"]["param"], field);
    }
    // Harmless defaults are not rejected.
    let (_, up) = chat(
        &cfg(""),
        json!({"model": "gpt-3", "frequency_penalty": 0, "logprobs": false,
        "messages": [{"role": "user", "content": "x"}]}),
    );
    assert!(upstream_json(&up)["parameters"].get("logprobs").is_none());
}

const WEATHER_TOOL: &str = r#"{"type": "function", "function": {"name": "get_current_weather",
    "description": "Weather of a city", "parameters": {"type": "object",
    "properties": {"location": {"type": "string"}}, "required": ["location"]}}}"#;

// Tool calling in DashScope's message format (alibabacloud.com/help/en/model-studio/qwen-function-calling):
// the assistant turn carries OpenAI-shaped tool_calls and the tool turn a tool_call_id.
#[test]
fn tool_calls_buffered() {
    let c = cfg("");
    let tool: Value = serde_json::from_str(WEATHER_TOOL).unwrap();
    let (mut ex, up) = chat(
        &c,
        json!({"model": "gpt-3", "tools": [tool.clone()], "tool_choice": "auto",
        "parallel_tool_calls": true, "messages": [
            {"role": "user", "content": "Weather in Hangzhou?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "get_current_weather", "arguments": "{\"location\":\"Hangzhou\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 25C"},
            {"role": "user", "content": "And Shanghai?"}]}),
    );
    let b = upstream_json(&up);
    assert_eq!(b["parameters"]["tools"], json!([tool]));
    assert_eq!(b["parameters"]["tool_choice"], "auto");
    assert_eq!(b["parameters"]["parallel_tool_calls"], true);
    assert_eq!(b["input"]["messages"][1]["content"], "");
    assert_eq!(b["input"]["messages"][1]["tool_calls"][0]["id"], "call_1");
    assert_eq!(
        b["input"]["messages"][2],
        json!({"role": "tool", "content": "Sunny, 25C", "tool_call_id": "call_1"})
    );
    let resp = br#"{"output": {"choices": [{"finish_reason": "tool_calls", "message": {"role": "assistant",
        "content": "", "tool_calls": [{"index": 0, "id": "call_30817ba5d0b349ed88ddcc", "type": "function",
        "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Shanghai\"}"}}]}}]},
        "usage": {"total_tokens": 250, "output_tokens": 54, "input_tokens": 196},
        "request_id": "a75a1b22-e512-957d-891b-37db858ae738"}"#;
    let v = testutil::buffered_completion(&mut ex, resp);
    testutil::assert_tool_call_reply(
        &v,
        json!([{"id": "call_30817ba5d0b349ed88ddcc", "type": "function",
                "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Shanghai\"}"}}]),
    );
}

// The older result format (output.text / output.finish_reason) from the DashScope reference.
#[test]
fn older_text_result_format() {
    let (mut ex, _) = chat(
        &cfg(""),
        json!({"model": "gpt-3", "messages": [{"role": "user", "content": "hi"}]}),
    );
    let resp = br#"{"output": {"text": "Hello there", "finish_reason": "length"},
        "usage": {"input_tokens": 3, "output_tokens": 2}, "request_id": "r-1"}"#;
    let v = testutil::buffered_completion(&mut ex, resp);
    assert_eq!(v["choices"][0]["message"]["content"], "Hello there");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["total_tokens"], 5);
}

// DashScope SSE as documented for streaming output (alibabacloud.com/help/en/model-studio/stream):
// id / event:result / :HTTP_STATUS/200 / data:{...}, "null" finish_reason until the end,
// incremental text, cumulative usage.
const TEXT_STREAM: &str = "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"I am\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":26,\"input_tokens\":25,\"output_tokens\":1},\"request_id\":\"5bef2386-ce2c-9a1f-8b56-a1e7a7bc3b74\"}\n\n\
id:2\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\" Qwen, \",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":29,\"input_tokens\":25,\"output_tokens\":4},\"request_id\":\"5bef2386-ce2c-9a1f-8b56-a1e7a7bc3b74\"}\n\n\
id:3\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"nice to meet you.\",\"role\":\"assistant\"},\"finish_reason\":\"stop\"}]},\"usage\":{\"total_tokens\":33,\"input_tokens\":25,\"output_tokens\":8},\"request_id\":\"5bef2386-ce2c-9a1f-8b56-a1e7a7bc3b74\"}\n\n";

fn stream_exchange(include_usage: bool) -> Exchange {
    let (ex, up) = chat(
        &cfg(""),
        json!({"model": "gpt-3", "stream": true,
        "stream_options": {"include_usage": include_usage},
        "messages": [{"role": "user", "content": "Who are you?"}]}),
    );
    assert_eq!(header(&up, "x-dashscope-sse"), Some("enable"));
    assert_eq!(header(&up, "accept"), Some("text/event-stream"));
    let b = upstream_json(&up);
    assert_eq!(b["parameters"]["incremental_output"], true);
    assert!(b.get("stream").is_none() && b.get("stream_options").is_none());
    ex
}

#[test]
fn stream_text_with_usage() {
    let mut ex = stream_exchange(true);
    let (status, out, mode) = respond(
        &mut ex,
        200,
        "text/event-stream;charset=UTF-8",
        TEXT_STREAM.as_bytes(),
    );
    assert_eq!((status, mode), (200, ResponseMode::Stream));
    let events = testutil::validate_sse_stream(&out);
    assert_eq!(
        testutil::stream_text(&events),
        "I am Qwen, nice to meet you."
    );
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(events[0]["id"], "5bef2386-ce2c-9a1f-8b56-a1e7a7bc3b74");
    assert!(events
        .iter()
        .all(|e| e["id"] == events[0]["id"] && e["model"] == "qwen-turbo"));
    assert_eq!(testutil::stream_finishes(&events), vec!["stop"]);
    testutil::assert_usage_chunk(&events, 25, 8, 33);
    assert_eq!(ex.usage().unwrap().total_tokens, 33);
}

#[test]
fn stream_without_include_usage_still_records_usage() {
    let mut ex = stream_exchange(false);
    let events = testutil::stream_events(&mut ex, TEXT_STREAM.as_bytes());
    assert!(events.iter().all(|e| e.get("usage").is_none()));
    assert_eq!(ex.usage().unwrap().completion_tokens, 8);
}

// Incremental tool-call streaming as shown in the DashScope SDK documentation: the first piece
// of each call carries index, id and name; later pieces only more arguments (id ""); the last
// event has an empty function and finish_reason "tool_calls".
const TOOL_STREAM: &str = "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"tool_calls\":[{\"index\":0,\"id\":\"call_30817ba5d0b349ed88ddcc\",\"type\":\"function\",\"function\":{\"name\":\"get_current_weather\",\"arguments\":\"{\\\"location\\\":\"}}],\"role\":\"assistant\"},\"index\":0,\"finish_reason\":\"null\"}]},\"usage\":{\"input_tokens\":196,\"output_tokens\":10,\"total_tokens\":206},\"request_id\":\"r-tools\"}\n\n\
id:2\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"tool_calls\":[{\"index\":0,\"id\":\"\",\"type\":\"function\",\"function\":{\"arguments\":\" \\\"Hangzhou\\\"}\"}}],\"role\":\"assistant\"},\"index\":0,\"finish_reason\":\"null\"}]},\"usage\":{\"input_tokens\":196,\"output_tokens\":20,\"total_tokens\":216},\"request_id\":\"r-tools\"}\n\n\
id:3\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"tool_calls\":[{\"index\":1,\"id\":\"call_566994452aec418d930430\",\"type\":\"function\",\"function\":{\"name\":\"get_current_weather\",\"arguments\":\"{\\\"location\\\": \\\"Shanghai\\\"}\"}}],\"role\":\"assistant\"},\"index\":0,\"finish_reason\":\"null\"}]},\"usage\":{\"input_tokens\":196,\"output_tokens\":40,\"total_tokens\":236},\"request_id\":\"r-tools\"}\n\n\
id:4\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"tool_calls\":[{\"index\":1,\"id\":\"\",\"type\":\"function\",\"function\":{}}],\"role\":\"assistant\"},\"index\":0,\"finish_reason\":\"tool_calls\"}]},\"usage\":{\"input_tokens\":196,\"output_tokens\":54,\"total_tokens\":250},\"request_id\":\"r-tools\"}\n\n";

fn tool_stream_exchange() -> Exchange {
    let tool: Value = serde_json::from_str(WEATHER_TOOL).unwrap();
    let (ex, up) = chat(
        &cfg(""),
        json!({"model": "gpt-3", "stream": true, "tools": [tool],
        "messages": [{"role": "user", "content": "Weather in Hangzhou and Shanghai?"}]}),
    );
    assert_eq!(upstream_json(&up)["parameters"]["incremental_output"], true);
    ex
}

#[test]
fn stream_tool_calls() {
    let mut ex = tool_stream_exchange();
    let events = testutil::stream_events(&mut ex, TOOL_STREAM.as_bytes());
    // Reassemble the calls the way OpenAI clients do.
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for e in &events {
        let Some(tcs) = e["choices"]
            .get(0)
            .and_then(|c| c["delta"]["tool_calls"].as_array())
        else {
            continue;
        };
        for tc in tcs {
            let i = tc["index"].as_u64().unwrap() as usize;
            if calls.len() <= i {
                calls.resize(i + 1, Default::default());
            }
            if let Some(id) = tc["id"].as_str() {
                calls[i].0 = id.to_string();
            }
            if let Some(n) = tc["function"]["name"].as_str() {
                calls[i].1.push_str(n);
            }
            if let Some(a) = tc["function"]["arguments"].as_str() {
                calls[i].2.push_str(a);
            }
        }
    }
    assert_eq!(
        calls,
        vec![
            (
                "call_30817ba5d0b349ed88ddcc".into(),
                "get_current_weather".into(),
                "{\"location\": \"Hangzhou\"}".into()
            ),
            (
                "call_566994452aec418d930430".into(),
                "get_current_weather".into(),
                "{\"location\": \"Shanghai\"}".into()
            ),
        ]
    );
    let last_choice = events
        .iter()
        .rev()
        .find_map(|e| e["choices"].get(0))
        .unwrap();
    assert_eq!(last_choice["finish_reason"], "tool_calls");
    assert_eq!(testutil::stream_text(&events), "");
    assert_eq!(ex.usage().unwrap().total_tokens, 250);
}

// A multimodal stream: content is a list of {"text"} parts per event (erda-project's recorded
// qwen-vl stream, in incremental form).
#[test]
fn stream_multimodal_parts() {
    let (mut ex, _) = chat(
        &cfg(""),
        json!({"model": "gpt-4o", "stream": true, "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                                      {"type": "text", "text": "What is it?"}]}]}),
    );
    let body = "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":[{\"text\":\"Hello\"}],\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"input_tokens\":92,\"output_tokens\":1},\"request_id\":\"e2edfd5d\"}\n\n\
id:2\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":[{\"text\":\"! A dog.\"}],\"role\":\"assistant\"},\"finish_reason\":\"stop\"}]},\"usage\":{\"input_tokens\":92,\"output_tokens\":10},\"request_id\":\"e2edfd5d\"}\n\n";
    let events = testutil::stream_events(&mut ex, body.as_bytes());
    assert_eq!(testutil::stream_text(&events), "Hello! A dog.");
    assert_eq!(ex.usage().unwrap().total_tokens, 102);
}

#[test]
fn stream_chunking_invariance() {
    testutil::assert_chunking_invariant(
        || stream_exchange(true),
        "text/event-stream",
        TEXT_STREAM.as_bytes(),
    );
    testutil::assert_chunking_invariant(
        tool_stream_exchange,
        "text/event-stream",
        TOOL_STREAM.as_bytes(),
    );
}

// In-stream error as DashScope sends it after a 200 (event:error, :HTTP_STATUS/400, data with
// code/message/request_id; sample in alibaba/higress ai-proxy qwen.go).
#[test]
fn stream_error_event() {
    let mut ex = stream_exchange(true);
    let body = "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"Par\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":3,\"input_tokens\":2,\"output_tokens\":1},\"request_id\":\"r-err\"}\n\n\
id:2\nevent:error\n:HTTP_STATUS/400\ndata:{\"code\":\"DataInspectionFailed\",\"message\":\"Output data may contain inappropriate content.\",\"request_id\":\"r-err\"}\n\n";
    let events = testutil::stream_events(&mut ex, body.as_bytes());
    let err = events.last().unwrap();
    assert_eq!(err["error"]["code"], "DataInspectionFailed");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert_eq!(
        err["error"]["message"],
        "Output data may contain inappropriate content."
    );
    assert_eq!(testutil::stream_text(&events), "Par");
}

// DashScope error bodies ({"code","message","request_id"} with the HTTP status), per the
// error-code reference (help.aliyun.com/zh/model-studio/error-code).
#[test]
fn buffered_errors_keep_status_and_code() {
    for (status, code, kind) in [
        (401, "InvalidApiKey", "authentication_error"),
        (429, "Throttling.RateQuota", "rate_limit_error"),
        (400, "InvalidParameter", "invalid_request_error"),
        (500, "InternalError", "api_error"),
    ] {
        let (mut ex, _) = chat(
            &cfg(""),
            json!({"model": "gpt-3", "stream": true,
            "messages": [{"role": "user", "content": "x"}]}),
        );
        let body =
            format!(r#"{{"code":"{code}","message":"Mock {code}.","request_id":"0cbe6006-faec"}}"#);
        let (st, out, mode) = respond(&mut ex, status, "application/json", body.as_bytes());
        assert_eq!((st, mode), (status, ResponseMode::Buffer));
        let v = json_of(&out);
        testutil::validate_error(&v);
        assert_eq!(v["error"]["code"], code);
        assert_eq!(v["error"]["type"], kind);
        assert_eq!(v["error"]["message"], format!("Mock {code}."));
        assert!(!String::from_utf8_lossy(&out).contains(TOKEN));
    }
    // An error code inside a 2xx body.
    let (mut ex, _) = chat(
        &cfg(""),
        json!({"model": "gpt-3", "messages": [{"role": "user", "content": "x"}]}),
    );
    let (st, out, _) = respond(
        &mut ex,
        200,
        "application/json",
        br#"{"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":"r"}"#,
    );
    assert_eq!(st, 401);
    testutil::validate_error(&json_of(&out));
}

// text-embedding request/response per the synchronous API reference
// (alibabacloud.com/help/en/model-studio/text-embedding-synchronous-api), rows out of order.
#[test]
fn embeddings() {
    let c = cfg("");
    let (mut ex, up) = testutil::forward(
        &c,
        "/v1/embeddings",
        &json!({"model": "text-embedding-v1", "input": ["Hello", "World"], "dimensions": 512,
                "encoding_format": "float"})
        .to_string(),
    );
    assert_eq!(up.authority, "dashscope.aliyuncs.com");
    assert_eq!(
        up.path,
        "/api/v1/services/embeddings/text-embedding/text-embedding"
    );
    assert_eq!(
        header(&up, "authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        upstream_json(&up),
        json!({"model": "text-embedding-v1", "input": {"texts": ["Hello", "World"]},
               "parameters": {"dimension": 512}})
    );
    let resp = br#"{"output": {"embeddings": [{"text_index": 1, "embedding": [0.5, -0.25]},
        {"text_index": 0, "embedding": [-1.04, 5.2]}]}, "usage": {"total_tokens": 2},
        "request_id": "b5e87f2b"}"#;
    let (_, v) = testutil::respond_json(&mut ex, 200, resp);
    testutil::validate_embeddings(&v);
    assert_eq!(v["data"][0]["embedding"], json!([-1.04, 5.2]));
    assert_eq!(v["data"][1]["embedding"], json!([0.5, -0.25]));
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["model"], "text-embedding-v1");
    assert_eq!(v["usage"], json!({"prompt_tokens": 2, "total_tokens": 2}));
    assert_eq!(ex.usage().unwrap().prompt_tokens, 2);

    let (_, up) = testutil::forward(
        &c,
        "/v1/embeddings",
        r#"{"model": "text-embedding-v1", "input": "Hello"}"#,
    );
    assert_eq!(
        upstream_json(&up),
        json!({"model": "text-embedding-v1", "input": {"texts": ["Hello"]}})
    );
    testutil::assert_unsupported(&local_error(
        &c,
        "/v1/embeddings",
        json!({"model": "text-embedding-v1", "input": [[1, 2, 3]]}),
    ));
}

#[test]
fn protocol_original_passthrough() {
    let c = cfg(r#", "protocol": "original""#);
    let mut ex = Exchange::new(Arc::clone(&c));
    let body = br#"{"model":"qwen-max","input":{"messages":[]}}"#;
    let up = match ex
        .on_request(
            "POST",
            "/api/v1/services/aigc/text-generation/generation",
            &[],
            body,
        )
        .unwrap()
    {
        RequestAction::Forward(up) => up,
        other => panic!("{other:?}"),
    };
    assert_eq!(up.authority, "dashscope.aliyuncs.com");
    assert_eq!(up.path, "/api/v1/services/aigc/text-generation/generation");
    assert_eq!(
        header(&up, "authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert!(up.body.is_none());
    let rh = ex
        .on_response_headers(200, &[("content-type", "application/json")])
        .unwrap();
    assert_eq!(rh.mode, ResponseMode::Passthrough);
}

// customSettings go under `parameters` for qwen (seed README: "For the qwen protocol,
// ai-proxy configures under the parameters subpath").
#[test]
fn custom_settings_under_parameters() {
    let c = cfg(r#", "customSettings": [
        {"name": "max_tokens", "value": 99},
        {"name": "top_k", "value": 5},
        {"name": "temperature", "value": 0.9, "overwrite": false},
        {"name": "enable_thinking", "value": false, "mode": "raw"}]"#);
    let (_, up) = chat(
        &c,
        json!({"model": "gpt-3", "max_tokens": 10, "temperature": 0.1,
        "messages": [{"role": "user", "content": "x"}]}),
    );
    let p = &upstream_json(&up)["parameters"];
    assert_eq!(p["max_tokens"], 99);
    assert_eq!(p["temperature"], 0.1);
    assert!(
        p.get("top_k").is_none(),
        "top_k is 'none' in the seed's qwen column"
    );
    assert_eq!(p["enable_thinking"], false);
    assert_eq!(p["result_format"], "message");
}

// qwen-long file context: one system message "fileid://a,fileid://b" after the role-setting
// system message (help.aliyun.com/zh/model-studio/user-guide/long-context-qwen-long).
#[test]
fn search_and_file_ids() {
    let c = testutil::config(&format!(
        r#"{{"provider": {{"type": "qwen", "apiTokens": ["{TOKEN}"], "modelMapping": {{"*": "qwen-long"}},
            "qwenEnableSearch": true, "qwenFileIds": ["file-fe-xxx", "file-fe-yyy"]}}}}"#
    ));
    let (_, up) = chat(
        &c,
        json!({"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "Please summarize the content"}]}),
    );
    let b = upstream_json(&up);
    assert_eq!(b["model"], "qwen-long");
    assert_eq!(b["parameters"]["enable_search"], true);
    assert_eq!(
        b["input"]["messages"],
        json!([{"role": "system", "content": "fileid://file-fe-xxx,fileid://file-fe-yyy"},
               {"role": "user", "content": "Please summarize the content"}])
    );
    let (_, up) = chat(
        &c,
        json!({"model": "x", "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Summarize"}]}),
    );
    let msgs = &upstream_json(&up)["input"]["messages"];
    assert_eq!(msgs[0]["content"], "You are a helpful assistant.");
    assert_eq!(
        msgs[1]["content"],
        "fileid://file-fe-xxx,fileid://file-fe-yyy"
    );
    assert_eq!(msgs[2]["role"], "user");
    // Without the option, enable_search is not sent.
    let (_, up) = chat(
        &cfg(""),
        json!({"model": "gpt-3", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert!(upstream_json(&up)["parameters"]
        .get("enable_search")
        .is_none());
}

// The writer's rules for what DashScope leaves out: a stream cut before any finish_reason ends
// with an error event (the client could not tell it from a whole reply), and a buffered reply
// with no choices is a 502.
#[test]
fn cut_streams_and_empty_replies_are_errors() {
    let cut = TEXT_STREAM.rfind("id:3").unwrap();
    let mut ex = stream_exchange(true);
    let (status, out, _) = respond(
        &mut ex,
        200,
        "text/event-stream",
        &TEXT_STREAM.as_bytes()[..cut],
    );
    assert_eq!(status, 200);
    let events = testutil::validate_sse_stream(&out);
    assert_eq!(testutil::stream_text(&events), "I am Qwen, ");
    let last = events.last().unwrap();
    assert_eq!(last["error"]["type"], "upstream_error");
    assert!(events.iter().all(|e| e.get("usage").is_none()));

    let (mut ex, _) = chat(
        &cfg(""),
        json!({"model": "gpt-3", "messages": [{"role": "user", "content": "x"}]}),
    );
    let (status, _) = testutil::respond_error(
        &mut ex,
        200,
        br#"{"output": {"choices": []}, "request_id": "r"}"#,
    );
    assert_eq!(status, 502);
}

// A streamed call whose first piece has no id gets a fresh `call_` id, different per reply.
#[test]
fn stream_tool_call_without_an_id_gets_a_fresh_one() {
    let body = "id:1\nevent:result\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"tool_calls\":[{\"index\":0,\"id\":\"\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}],\"role\":\"assistant\"},\"finish_reason\":\"tool_calls\"}]},\"request_id\":\"r\"}\n\n";
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let mut ex = tool_stream_exchange();
            let events = testutil::stream_events(&mut ex, body.as_bytes());
            let call = events
                .iter()
                .find_map(|e| e["choices"][0]["delta"]["tool_calls"].get(0))
                .unwrap()
                .clone();
            assert_eq!(call["function"]["name"], "f");
            assert_eq!(
                events.last().unwrap()["choices"][0]["finish_reason"],
                "tool_calls"
            );
            call["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(ids
        .iter()
        .all(|id| id.starts_with("call_") && id.len() > 20));
    assert_ne!(ids[0], ids[1]);
}

// Thinking models (Model Studio "Deep thinking"): `reasoning_content` beside `content` in
// buffered messages and incremental stream events; usage `output_tokens_details.reasoning_tokens`
// and `prompt_tokens_details.cached_tokens` (Model Studio "Context cache").
#[test]
fn reasoning_content_and_usage_details() {
    let (mut ex, _) = chat(
        &cfg(""),
        json!({"model": "gpt-3", "messages": [{"role": "user", "content": "hi"}]}),
    );
    let reply = json!({"output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant",
        "content": "hello", "reasoning_content": "the user greets"}}]},
        "usage": {"input_tokens": 10, "output_tokens": 7, "total_tokens": 17,
                  "output_tokens_details": {"reasoning_tokens": 3},
                  "prompt_tokens_details": {"cached_tokens": 4}},
        "request_id": "r1"});
    let v = testutil::buffered_completion(&mut ex, reply.to_string().as_bytes());
    assert_eq!(
        v["choices"][0]["message"]["reasoning_content"],
        "the user greets"
    );
    assert_eq!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"],
        3
    );
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    let u = ex.usage().unwrap();
    assert_eq!((u.cached_tokens, u.reasoning_tokens), (Some(4), Some(3)));

    let mut ex = stream_exchange(true);
    let event = |reasoning: &str, content: &str, finish: &str| {
        let data = json!({"output": {"choices": [{"finish_reason": finish, "message": {"role": "assistant",
            "content": content, "reasoning_content": reasoning}}]},
            "usage": {"input_tokens": 10, "output_tokens": 7, "total_tokens": 17,
                      "output_tokens_details": {"reasoning_tokens": 3}}, "request_id": "r2"});
        format!("id:1\nevent:result\n:HTTP_STATUS/200\ndata:{data}\n\n")
    };
    let stream = [
        event("the user", "", "null"),
        event(" greets", "", "null"),
        event("", "hello", "stop"),
    ]
    .concat();
    let events = testutil::stream_events(&mut ex, stream.as_bytes());
    let reasoning: String = events
        .iter()
        .filter_map(|e| e["choices"].get(0))
        .filter_map(|c| c["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "the user greets");
    assert_eq!(testutil::stream_text(&events), "hello");
    let last = events.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"]["completion_tokens_details"]["reasoning_tokens"],
        3
    );
}

// `reasoning_effort` → DashScope's hybrid-thinking parameters (Model Studio "Deep thinking",
// help.aliyun.com/en/model-studio/deep-thinking: `enable_thinking` switches thinking on or off,
// `thinking_budget` caps its tokens; both sit in `parameters` in the DashScope API).
#[test]
fn reasoning_effort_maps_to_enable_thinking_and_budget() {
    let c = cfg("");
    let params = |extra: Value| {
        let mut body = json!({"model": "gpt-3", "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (_, up) = chat(&c, body);
        upstream_json(&up)["parameters"].clone()
    };
    for (effort, budget) in [
        ("minimal", 1024),
        ("low", 1024),
        ("medium", 8192),
        ("high", 24576),
    ] {
        let p = params(json!({"reasoning_effort": effort}));
        assert_eq!(p["enable_thinking"], true, "{effort}");
        assert_eq!(p["thinking_budget"], budget, "{effort}");
        assert!(p.get("reasoning_effort").is_none());
    }
    let p = params(json!({"reasoning_effort": "none"}));
    assert_eq!(p["enable_thinking"], false);
    assert!(p.get("thinking_budget").is_none());
    // The client's own DashScope fields win over the mapping.
    let p = params(json!({"reasoning_effort": "high", "thinking_budget": 500}));
    assert_eq!(
        (p["enable_thinking"].clone(), p["thinking_budget"].clone()),
        (json!(true), json!(500))
    );
    let p = params(json!({"reasoning_effort": "low", "enable_thinking": false}));
    assert_eq!(p["enable_thinking"], false);
    // Without reasoning_effort nothing is added (the model's default applies).
    let p = params(json!({}));
    assert!(p.get("enable_thinking").is_none() && p.get("thinking_budget").is_none());

    let (status, err) = local_error(
        &c,
        "/v1/chat/completions",
        json!({"model": "gpt-3", "reasoning_effort": "extreme",
               "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(status, 400);
    assert_eq!(err["error"]["param"], "reasoning_effort");
    assert!(crate::testutil::error_message(&err).contains("extreme"));
}
