use super::signing::{tc3_sign, utc_date, Tc3Request};
use super::*;
use crate::exchange::{Exchange, ResponseMode};
use crate::testutil::{self, forward, header, respond, upstream_json};
use crate::usage::Usage;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

const SECRET_ID: &str = "AKIDhunyuanTestSecretId0000000000000";
const SECRET_KEY: &str = "hunyuanTestSecretKey000000000000";

fn cfg_with(extra: &str) -> Arc<crate::exchange::Config> {
    testutil::config(&format!(
        r#"{{"provider": {{"type": "hunyuan", "hunyuanAuthId": "{SECRET_ID}",
            "hunyuanAuthKey": "{SECRET_KEY}", "modelMapping": {{"*": "hunyuan-lite"}}{extra}}}}}"#
    ))
}

fn cfg() -> Arc<crate::exchange::Config> {
    cfg_with("")
}

fn chat(body: &str) -> (Exchange, crate::exchange::UpstreamRequest) {
    forward(&cfg(), "/v1/chat/completions", body)
}

/// Independent TC3-HMAC-SHA256 reference, written from Tencent's "Signature v3" page and run
/// with Python's own `hmac`/`hashlib`: argv = secret id, secret key, service, host,
/// content type, timestamp; stdin = payload. Prints the Authorization header.
const PY_TC3: &str = r#"
import sys, hmac, hashlib, datetime
sid, skey, service, host, ctype, ts = sys.argv[1:7]
payload = sys.stdin.buffer.read()
date = datetime.datetime.fromtimestamp(int(ts), datetime.timezone.utc).strftime('%Y-%m-%d')
canonical = '\n'.join(['POST', '/', '', 'content-type:' + ctype + '\nhost:' + host + '\n',
                   'content-type;host', hashlib.sha256(payload).hexdigest()])
scope = date + '/' + service + '/tc3_request'
to_sign = '\n'.join(['TC3-HMAC-SHA256', ts, scope, hashlib.sha256(canonical.encode()).hexdigest()])
def mac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()
k = mac(mac(mac(('TC3' + skey).encode(), date), service), 'tc3_request')
sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
sys.stdout.write('TC3-HMAC-SHA256 Credential=' + sid + '/' + scope
             + ', SignedHeaders=content-type;host, Signature=' + sig)
"#;

fn python_authorization(
    id: &str,
    key: &str,
    service: &str,
    host: &str,
    ctype: &str,
    ts: &str,
    payload: &[u8],
) -> String {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(PY_TC3)
        .args([id, key, service, host, ctype, ts])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the independent signature check");
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python reference failed");
    String::from_utf8(out.stdout).unwrap()
}

// Tencent Cloud "Signature v3" worked example (CVM DescribeInstances; e.g.
// tencentcloud.com/document/api/1150/49447, values also reproduced by several SDK test suites):
// SecretId/SecretKey below are the docs' masked example credentials.
const DOC_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******";
const DOC_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3*******";
const DOC_PAYLOAD: &str =
    r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
const DOC_TS: u64 = 1_551_113_065;

#[test]
fn signature_matches_tencent_documentation_example() {
    let s = tc3_sign(
        DOC_ID,
        DOC_KEY,
        "cvm",
        DOC_TS,
        &Tc3Request {
            host: "cvm.tencentcloudapi.com",
            content_type: "application/json; charset=utf-8",
            payload: DOC_PAYLOAD.as_bytes(),
        },
    );
    assert_eq!(
        s.canonical_request,
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    );
    assert_eq!(
        s.string_to_sign,
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    );
    assert_eq!(
        s.signature,
        "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    );
    assert_eq!(
        s.authorization,
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    );
    // The Python reference agrees with the published example too.
    assert_eq!(
        python_authorization(
            DOC_ID,
            DOC_KEY,
            "cvm",
            "cvm.tencentcloudapi.com",
            "application/json; charset=utf-8",
            "1551113065",
            DOC_PAYLOAD.as_bytes()
        ),
        s.authorization
    );
}

#[test]
fn signature_matches_python_reference_for_hunyuan_inputs() {
    let payload =
        r#"{"Model":"hunyuan-lite","Messages":[{"Role":"user","Content":"你好"}],"Stream":false}"#;
    // Around a UTC midnight, a leap day and "now": the date in the scope follows the timestamp.
    for ts in [
        1_709_164_799u64,
        1_709_164_800,
        1_717_493_117,
        openai::now_secs(),
    ] {
        let ours = tc3_sign(
            SECRET_ID,
            SECRET_KEY,
            SERVICE,
            ts,
            &Tc3Request {
                host: HOST,
                content_type: CONTENT_TYPE,
                payload: payload.as_bytes(),
            },
        );
        let reference = python_authorization(
            SECRET_ID,
            SECRET_KEY,
            SERVICE,
            HOST,
            CONTENT_TYPE,
            &ts.to_string(),
            payload.as_bytes(),
        );
        assert_eq!(ours.authorization, reference, "timestamp {ts}");
    }
}

#[test]
fn utc_dates() {
    for (ts, date) in [
        (0, "1970-01-01"),
        (DOC_TS, "2019-02-25"),
        (951_782_400, "2000-02-29"),
        (1_709_164_799, "2024-02-28"),
        (1_709_164_800, "2024-02-29"),
        (4_102_444_800, "2100-01-01"),
    ] {
        assert_eq!(utc_date(ts), date, "{ts}");
    }
}

/// The forwarded request carries a timestamp from the clock and a signature over exactly the
/// body sent, as recomputed by the Python reference.
fn assert_signed(up: &crate::exchange::UpstreamRequest, payload: &[u8]) {
    let ts = header(up, "x-tc-timestamp").expect("timestamp header");
    let now = openai::now_secs();
    let t: u64 = ts.parse().unwrap();
    assert!(
        t <= now && now - t < 60,
        "timestamp {t} is not from the clock"
    );
    assert_eq!(header(up, "content-type"), Some(CONTENT_TYPE));
    let expected = python_authorization(
        SECRET_ID,
        SECRET_KEY,
        SERVICE,
        HOST,
        CONTENT_TYPE,
        ts,
        payload,
    );
    assert_eq!(header(up, "authorization"), Some(expected.as_str()));
    assert!(!expected.contains(SECRET_KEY));
}

#[test]
fn chat_request_is_translated_and_signed() {
    let (_, up) = chat(
        r#"{"model": "gpt-3", "messages": [{"role": "user", "content": "Hello, who are you?"}],
            "temperature": 0.3, "top_p": 0.9, "stream": false, "user": "u1"}"#,
    );
    assert_eq!(up.authority, HOST);
    assert_eq!(up.path, "/");
    assert_eq!(header(&up, "x-tc-action"), Some("ChatCompletions"));
    assert_eq!(header(&up, "x-tc-version"), Some("2023-09-01"));
    assert!(up.remove_headers.contains(&"authorization"));
    assert_eq!(
        upstream_json(&up),
        json!({"Model": "hunyuan-lite", "Messages": [{"Role": "user", "Content": "Hello, who are you?"}],
               "Stream": false, "Temperature": 0.3, "TopP": 0.9})
    );
    assert_signed(&up, up.body.as_deref().unwrap());
}

#[test]
fn multi_turn_with_system_messages() {
    let (_, up) = chat(
        r#"{"model": "m", "messages": [
            {"role": "system", "content": "You are a professional developer!"},
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": [{"type": "text", "text": "Who"}, {"type": "text", "text": "are you?"}]}],
            "seed": 42, "stop": "END"}"#,
    );
    let body = upstream_json(&up);
    assert_eq!(
        body["Messages"],
        json!([
            {"Role": "system", "Content": "You are a professional developer!\n\nBe brief."},
            {"Role": "user", "Content": "Hi"},
            {"Role": "assistant", "Content": "Hello!"},
            {"Role": "user", "Content": "Who\nare you?"}
        ])
    );
    assert_eq!(
        (body["Seed"].clone(), body["Stop"].clone()),
        (json!(42), json!(["END"]))
    );
    let err = testutil::rejected_chat(
        &cfg(),
        r#"{"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]}"#,
    );
    assert!(crate::testutil::error_message(&err).contains("system messages"));
}

#[test]
fn images_become_contents() {
    let (_, up) = chat(
        r#"{"model": "hunyuan-vision", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/1.png", "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}]}]}"#,
    );
    assert_eq!(
        upstream_json(&up)["Messages"],
        json!([{"Role": "user", "Contents": [
            {"Type": "text", "Text": "What is this?"},
            {"Type": "image_url", "ImageUrl": {"Url": "https://example.com/1.png"}},
            {"Type": "image_url", "ImageUrl": {"Url": "data:image/jpeg;base64,AAAA"}}]}])
    );
    let err = testutil::rejected_chat(
        &cfg(),
        r#"{"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}"#,
    );
    assert_eq!(err["error"]["code"], "unsupported_feature");
}

#[test]
fn unsupported_parameters_are_400_naming_them() {
    for (param, extra) in [
        ("max_tokens", r#""max_tokens": 100"#),
        ("n", r#""n": 2"#),
        (
            "response_format",
            r#""response_format": {"type": "json_object"}"#,
        ),
        ("presence_penalty", r#""presence_penalty": 0.5"#),
        // ChatCompletions' request parameters (Tencent Cloud API 2023-09-01, as in
        // tencentcloud-sdk-go hunyuan/v20230901 ChatCompletionsRequest) have no thinking
        // switch or budget, so any effort is refused rather than silently ignored.
        ("reasoning_effort", r#""reasoning_effort": "low""#),
        ("reasoning_effort", r#""reasoning_effort": "none""#),
        (
            "tool_choice 'required'",
            r#""tool_choice": "required", "tools": []"#,
        ),
    ] {
        let err = testutil::rejected_chat(
            &cfg(),
            &format!(
                r#"{{"model": "m", "messages": [{{"role": "user", "content": "x"}}], {extra}}}"#
            ),
        );
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(msg.contains(param) && msg.contains("hunyuan"), "{msg}");
    }
    // Defaults are accepted.
    chat(
        r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 1,
             "presence_penalty": 0, "response_format": {"type": "text"}, "logprobs": false}"#,
    );
}

const TOOLS: &str = r#"[{"type": "function", "function": {"name": "get_weather",
    "description": "Weather of a city", "parameters": {"type": "object",
    "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]"#;

#[test]
fn tools_and_tool_messages_are_translated() {
    let (_, up) = chat(&format!(
        r#"{{"model": "hunyuan-functioncall", "tools": {TOOLS},
            "tool_choice": {{"type": "function", "function": {{"name": "get_weather"}}}},
            "messages": [
            {{"role": "user", "content": "Weather in Paris?"}},
            {{"role": "assistant", "content": null, "tool_calls": [{{"id": "call_1", "type": "function",
               "function": {{"name": "get_weather", "arguments": "{{\"city\":\"Paris\"}}"}}}}]}},
            {{"role": "tool", "tool_call_id": "call_1", "content": "sunny"}}]}}"#
    ));
    let body = upstream_json(&up);
    let tool = json!({"Type": "function", "Function": {"Name": "get_weather",
        "Parameters": "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}",
        "Description": "Weather of a city"}});
    assert_eq!(body["Tools"], json!([tool.clone()]));
    assert_eq!(body["ToolChoice"], "custom");
    assert_eq!(body["CustomTool"], tool);
    assert_eq!(
        body["Messages"],
        json!([
            {"Role": "user", "Content": "Weather in Paris?"},
            {"Role": "assistant", "Content": "", "ToolCalls": [{"Id": "call_1", "Type": "function",
              "Function": {"Name": "get_weather", "Arguments": "{\"city\":\"Paris\"}"}}]},
            {"Role": "tool", "Content": "sunny", "ToolCallId": "call_1"}
        ])
    );
    let (_, up) = chat(&format!(
        r#"{{"model": "m", "tools": {TOOLS}, "tool_choice": "auto", "messages": [{{"role": "user", "content": "x"}}]}}"#
    ));
    assert_eq!(upstream_json(&up)["ToolChoice"], "auto");
}

// Mirrors the ChatCompletions non-streamed answer of cloud.tencent.com/document/api/1729/101837
// (Response{Id, Created, Note, Choices[{Index, Message{Role, Content}, FinishReason}], Usage,
// RequestId}); the text is the seed README's Hunyuan example.
const BUFFERED: &str = r#"{"Response": {"RequestId": "fd140c3e-0b69-4b19-849b-d354d32a6162",
    "Note": "以上内容为AI生成，不代表开发者立场，请勿删除或修改本标记",
    "Choices": [{"Index": 0, "Message": {"Role": "assistant", "Content": "你好！我是腾讯混元大模型。"},
    "FinishReason": "stop"}], "Created": 1717493117, "Id": "fd140c3e-0b69-4b19-849b-d354d32a6162",
    "Usage": {"PromptTokens": 15, "CompletionTokens": 9, "TotalTokens": 24}}}"#;

#[test]
fn buffered_response_and_usage() {
    let (mut ex, _) =
        chat(r#"{"model": "gpt-3", "messages": [{"role": "user", "content": "Hello"}]}"#);
    let v = testutil::buffered_completion(&mut ex, BUFFERED.as_bytes());
    assert_eq!(v["id"], "fd140c3e-0b69-4b19-849b-d354d32a6162");
    assert_eq!(v["created"], 1717493117);
    assert_eq!(v["model"], "hunyuan-lite");
    testutil::assert_text_reply(&v, "你好！我是腾讯混元大模型。");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 15, "completion_tokens": 9, "total_tokens": 24})
    );
    assert_eq!(ex.usage(), Some(Usage::new(15, 9, Some(24))));
}

// Mirrors the function-calling answer shape (Message.ToolCalls[{Id, Type, Function{Name,
// Arguments}}], FinishReason "tool_calls") of the tencentcloud-sdk-go hunyuan models.
const TOOL_ANSWER: &str = r#"{"Response": {"Id": "t1", "Created": 1717493117, "Choices": [{"Index": 0,
    "Message": {"Role": "assistant", "Content": "", "ToolCalls": [{"Id": "call_abc", "Type": "function",
    "Function": {"Name": "get_weather", "Arguments": "{\"city\":\"Paris\"}"}, "Index": 0}]},
    "FinishReason": "tool_calls"}], "Usage": {"PromptTokens": 50, "CompletionTokens": 10, "TotalTokens": 60},
    "RequestId": "r1"}}"#;

#[test]
fn buffered_tool_calls() {
    let (mut ex, _) = chat(&format!(
        r#"{{"model": "m", "tools": {TOOLS}, "messages": [{{"role": "user", "content": "Paris?"}}]}}"#
    ));
    let v = testutil::buffered_completion(&mut ex, TOOL_ANSWER.as_bytes());
    testutil::assert_tool_call_reply(
        &v,
        json!([{"id": "call_abc", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]),
    );
}

// Mirrors the streamed ChatCompletions events (SSE "data: {...}" with Choices[].Delta,
// cumulative Usage, FinishReason "" until "stop"), as in the sample quoted in alibaba/higress
// ai-proxy provider/hunyuan.go and the SDK's Choice/Delta models.
const STREAM: &str = "data: {\"Note\":\"以上内容为AI生成，不代表开发者立场，请勿删除或修改本标记\",\"Choices\":[{\"Index\":0,\"Delta\":{\"Role\":\"assistant\",\"Content\":\"你好\"},\"FinishReason\":\"\"}],\"Created\":1716359713,\"Id\":\"086b6b19-8b2c-4def-a65c-db6a7bc86acd\",\"Usage\":{\"PromptTokens\":7,\"CompletionTokens\":1,\"TotalTokens\":8}}\n\n\
data: {\"Note\":\"以上内容为AI生成，不代表开发者立场，请勿删除或修改本标记\",\"Choices\":[{\"Index\":0,\"Delta\":{\"Role\":\"assistant\",\"Content\":\"，世界！\"},\"FinishReason\":\"\"}],\"Created\":1716359713,\"Id\":\"086b6b19-8b2c-4def-a65c-db6a7bc86acd\",\"Usage\":{\"PromptTokens\":7,\"CompletionTokens\":3,\"TotalTokens\":10}}\n\n\
data: {\"Note\":\"以上内容为AI生成，不代表开发者立场，请勿删除或修改本标记\",\"Choices\":[{\"Index\":0,\"Delta\":{\"Role\":\"assistant\",\"Content\":\"\"},\"FinishReason\":\"stop\"}],\"Created\":1716359713,\"Id\":\"086b6b19-8b2c-4def-a65c-db6a7bc86acd\",\"Usage\":{\"PromptTokens\":7,\"CompletionTokens\":4,\"TotalTokens\":11}}\n\n";

fn stream_request(include_usage: bool) -> (Exchange, crate::exchange::UpstreamRequest) {
    chat(&format!(
        r#"{{"model": "gpt-3", "stream": true, "stream_options": {{"include_usage": {include_usage}}},
            "messages": [{{"role": "user", "content": "Hello"}}]}}"#
    ))
}

#[test]
fn streamed_response_with_and_without_usage_chunk() {
    let (mut ex, up) = stream_request(true);
    assert_eq!(upstream_json(&up)["Stream"], true);
    let (status, out, mode) = respond(&mut ex, 200, "text/event-stream", STREAM.as_bytes());
    assert_eq!((status, mode), (200, ResponseMode::Stream));
    let events = testutil::validate_sse_stream(&out);
    assert_eq!(testutil::stream_text(&events), "你好，世界！");
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(events[0]["id"], "086b6b19-8b2c-4def-a65c-db6a7bc86acd");
    assert_eq!(testutil::stream_finishes(&events), vec!["stop"]);
    testutil::assert_usage_chunk(&events, 7, 4, 11);
    assert_eq!(ex.usage(), Some(Usage::new(7, 4, Some(11))));

    let (mut ex, _) = stream_request(false);
    let events = testutil::stream_events(&mut ex, STREAM.as_bytes());
    assert!(events.iter().all(|e| e.get("usage").is_none()));
    assert_eq!(
        ex.usage(),
        Some(Usage::new(7, 4, Some(11))),
        "usage is recorded anyway"
    );
}

#[test]
fn stream_translation_is_chunking_invariant() {
    testutil::assert_chunking_invariant(
        || stream_request(true).0,
        "text/event-stream",
        STREAM.as_bytes(),
    );
}

// Streamed function call and Hunyuan-T1 reasoning (Delta.ToolCalls merged by Id and
// Delta.ReasoningContent, per the SDK's Delta model).
const TOOL_STREAM: &str = "data: {\"Choices\":[{\"Index\":0,\"Delta\":{\"Role\":\"assistant\",\"Content\":\"\",\"ReasoningContent\":\"需要查天气\"},\"FinishReason\":\"\"}],\"Created\":1,\"Id\":\"s2\",\"Usage\":{\"PromptTokens\":5,\"CompletionTokens\":1,\"TotalTokens\":6}}\n\n\
data: {\"Choices\":[{\"Index\":0,\"Delta\":{\"Role\":\"assistant\",\"Content\":\"\",\"ToolCalls\":[{\"Id\":\"call_x\",\"Type\":\"function\",\"Function\":{\"Name\":\"get_weather\",\"Arguments\":\"{\\\"city\\\":\"},\"Index\":0}]},\"FinishReason\":\"\"}],\"Created\":1,\"Id\":\"s2\"}\n\n\
data: {\"Choices\":[{\"Index\":0,\"Delta\":{\"Role\":\"assistant\",\"Content\":\"\",\"ToolCalls\":[{\"Id\":\"call_x\",\"Type\":\"function\",\"Function\":{\"Name\":\"get_weather\",\"Arguments\":\"\\\"Paris\\\"}\"},\"Index\":0}]},\"FinishReason\":\"\"}],\"Created\":1,\"Id\":\"s2\"}\n\n\
data: {\"Choices\":[{\"Index\":0,\"Delta\":{\"Role\":\"assistant\",\"Content\":\"\"},\"FinishReason\":\"tool_calls\"}],\"Created\":1,\"Id\":\"s2\",\"Usage\":{\"PromptTokens\":5,\"CompletionTokens\":9,\"TotalTokens\":14}}\n\n";

#[test]
fn streamed_tool_calls_and_reasoning() {
    let (mut ex, _) = chat(&format!(
        r#"{{"model": "m", "stream": true, "tools": {TOOLS}, "messages": [{{"role": "user", "content": "Paris?"}}]}}"#
    ));
    let events = testutil::stream_events(&mut ex, TOOL_STREAM.as_bytes());
    assert_eq!(
        events[0]["choices"][0]["delta"]["reasoning_content"],
        "需要查天气"
    );
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    let calls: Vec<&Value> = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0],
        &json!([{"index": 0, "id": "call_x", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":"}}])
    );
    assert_eq!(
        calls[1],
        &json!([{"index": 0, "function": {"arguments": "\"Paris\"}"}}])
    );
    assert_eq!(
        events.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
    testutil::assert_chunking_invariant(
        || {
            chat(
                r#"{"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}"#,
            )
            .0
        },
        "text/event-stream",
        TOOL_STREAM.as_bytes(),
    );
}

// Tencent Cloud API 3.0 error envelope (HTTP 200; common error codes page, e.g.
// cloud.tencent.com/document/api/1729/101839).
fn api_error(code: &str) -> String {
    format!(
        r#"{{"Response": {{"Error": {{"Code": "{code}", "Message": "something failed"}}, "RequestId": "req-1"}}}}"#
    )
}

#[test]
fn upstream_errors_in_a_200_and_in_error_statuses() {
    for (code, status, kind) in [
        ("AuthFailure.SignatureFailure", 401, "authentication_error"),
        ("AuthFailure.SecretIdNotFound", 401, "authentication_error"),
        ("RequestLimitExceeded", 429, "rate_limit_error"),
        ("LimitExceeded", 429, "rate_limit_error"),
        ("UnauthorizedOperation", 403, "permission_error"),
        ("InternalError", 500, "api_error"),
        ("InvalidParameter", 400, "invalid_request_error"),
    ] {
        let (mut ex, _) = chat(r#"{"model": "m", "messages": [{"role": "user", "content": "x"}]}"#);
        let (got, out, _) = respond(&mut ex, 200, "application/json", api_error(code).as_bytes());
        let v: Value = serde_json::from_slice(&out).unwrap();
        testutil::validate_error(&v);
        assert_eq!(
            (got, v["error"]["type"].as_str()),
            (status, Some(kind)),
            "{code}"
        );
        assert_eq!(v["error"]["code"], code);
        assert_eq!(v["error"]["message"], "something failed (RequestId: req-1)");
    }
    // An error status keeps the status and still reads the envelope.
    let (mut ex, _) = chat(r#"{"model": "m", "messages": [{"role": "user", "content": "x"}]}"#);
    let (got, out, _) = respond(
        &mut ex,
        503,
        "application/json",
        api_error("InternalError").as_bytes(),
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    testutil::validate_error(&v);
    assert_eq!(
        (got, v["error"]["code"].as_str()),
        (503, Some("InternalError"))
    );
    // A streamed request answered with a JSON error body.
    let (mut ex, _) = stream_request(false);
    let (got, out, mode) = respond(
        &mut ex,
        200,
        "application/json",
        api_error("AuthFailure.SignatureExpire").as_bytes(),
    );
    assert_eq!((got, mode), (401, ResponseMode::Buffer));
    testutil::validate_error(&serde_json::from_slice(&out).unwrap());
}

#[test]
fn in_stream_errors_end_the_stream() {
    // ErrorMsg{Msg, Code} inside a streamed answer (SDK ChatCompletionsResponseParams.ErrorMsg).
    let body = format!(
        "{}data: {{\"Choices\":[],\"ErrorMsg\":{{\"Msg\":\"请求模型超时\",\"Code\":4001}},\"Id\":\"x\",\"Created\":1}}\n\n{}",
        STREAM.split("\n\n").next().unwrap().to_string() + "\n\n",
        STREAM
    );
    let (mut ex, _) = stream_request(true);
    let events = testutil::stream_events(&mut ex, body.as_bytes());
    let err = events
        .iter()
        .find(|e| e.get("error").is_some())
        .expect("error event");
    assert_eq!(err["error"]["code"], "4001");
    assert_eq!(err["error"]["message"], "请求模型超时");
    assert!(
        events.last().unwrap().get("error").is_some(),
        "nothing after the error"
    );
    // An API 3.0 envelope as an event.
    let body = format!("data: {}\n\n", api_error("InternalError").replace('\n', ""));
    let (mut ex, _) = stream_request(false);
    let error = testutil::stream_error(&mut ex, body.as_bytes());
    assert_eq!(error["code"], "InternalError");
}

// Mirrors GetEmbedding (SDK GetEmbeddingResponseParams: Data[{Embedding, Index, Object}],
// Usage{PromptTokens, TotalTokens}, RequestId).
const EMBEDDINGS: &str = r#"{"Response": {"Data": [
    {"Embedding": [0.3, 0.4], "Index": 1, "Object": "embedding"},
    {"Embedding": [0.1, 0.2], "Index": 0, "Object": "embedding"}],
    "Usage": {"PromptTokens": 6, "TotalTokens": 6}, "RequestId": "e1"}}"#;

#[test]
fn embeddings() {
    let cfg = cfg();
    let (_, up) = forward(
        &cfg,
        "/v1/embeddings",
        r#"{"model": "text-embedding-3-small", "input": "hi"}"#,
    );
    assert_eq!(header(&up, "x-tc-action"), Some("GetEmbedding"));
    assert_eq!(upstream_json(&up), json!({"Input": "hi"}));
    assert_signed(&up, up.body.as_deref().unwrap());
    let (mut ex, up) = forward(
        &cfg,
        "/v1/embeddings",
        r#"{"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "float"}"#,
    );
    assert_eq!(upstream_json(&up), json!({"InputList": ["a", "b"]}));
    let (status, v) = testutil::respond_json(&mut ex, 200, EMBEDDINGS.as_bytes());
    assert_eq!(status, 200);
    testutil::validate_embeddings(&v);
    assert_eq!(v["data"][0]["embedding"], json!([0.1, 0.2]));
    assert_eq!(v["data"][1]["embedding"], json!([0.3, 0.4]));
    assert_eq!(v["usage"], json!({"prompt_tokens": 6, "total_tokens": 6}));
    assert_eq!(ex.usage().map(|u| u.total_tokens), Some(6));
    let (status, err) = testutil::local_reply(
        &cfg,
        "/v1/embeddings",
        r#"{"model": "m", "input": "x", "dimensions": 256}"#,
    );
    assert_eq!(status, 400);
    assert!(crate::testutil::error_message(&err).contains("dimensions"));
    let (status, _) = testutil::local_reply(
        &cfg,
        "/v1/embeddings",
        r#"{"model": "m", "input": [[1, 2]]}"#,
    );
    assert_eq!(status, 400);
}

#[test]
fn original_protocol_signs_the_clients_body() {
    let cfg = cfg_with(r#", "protocol": "original""#);
    let body = r#"{"Model":"hunyuan-lite","Messages":[{"Role":"user","Content":"你好"}]}"#;
    let (mut ex, up) = testutil::expect_forward(testutil::request_with(
        &cfg,
        "POST",
        "/",
        &[
            ("content-type", "application/json"),
            ("x-tc-action", "ChatCompletions"),
        ],
        body.as_bytes(),
    ));
    assert_eq!((up.authority.as_str(), up.path.as_str()), (HOST, "/"));
    assert!(up.body.is_none(), "the client's body is sent untouched");
    assert!(
        header(&up, "x-tc-action").is_none(),
        "the client's own X-TC-Action is kept"
    );
    assert_signed(&up, body.as_bytes());
    // Responses pass through untranslated.
    testutil::assert_passthrough(&mut ex, BUFFERED.as_bytes());
}

#[test]
fn custom_settings_use_the_hunyuan_column() {
    let cfg = cfg_with(
        r#", "customSettings": [{"name": "temperature", "value": 0.2},
            {"name": "top_p", "value": 0.7, "overwrite": false},
            {"name": "max_tokens", "value": 100},
            {"name": "EnableEnhancement", "value": false, "mode": "raw"}]"#,
    );
    let (_, up) = forward(
        &cfg,
        "/v1/chat/completions",
        r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.9, "top_p": 0.5}"#,
    );
    let body = upstream_json(&up);
    assert_eq!(body["Temperature"], 0.2);
    assert_eq!(
        body["TopP"], 0.5,
        "overwrite: false keeps the request's value"
    );
    assert_eq!(body["EnableEnhancement"], false);
    assert!(body.get("max_tokens").is_none() && body.get("temperature").is_none());
    // The signature covers the body after customSettings.
    assert_signed(&up, up.body.as_deref().unwrap());
}

#[test]
fn missing_credentials_are_a_clear_error_without_secrets() {
    // A configuration without the key is refused at load time, naming the field only.
    let json = format!(r#"{{"provider":{{"type":"hunyuan","hunyuanAuthId":"{SECRET_ID}"}}}}"#);
    let err = crate::Config::from_json(json.as_bytes()).unwrap_err();
    assert_eq!(err.path, "provider.hunyuanAuthKey");
    assert!(err.to_string().contains("hunyuanAuthKey"));
    assert!(!err.to_string().contains(SECRET_ID));
}

// The writer's rules, which the hand-written stream did not apply: a stream that breaks off
// without a FinishReason ends with an error event, and a reply with no choices is a 502.
#[test]
fn a_stream_cut_before_its_finish_reason_ends_with_an_error() {
    let cut: String = STREAM.split_inclusive("\n\n").take(2).collect();
    let (mut ex, _) = stream_request(true);
    let events = testutil::stream_events(&mut ex, cut.as_bytes());
    assert_eq!(testutil::stream_text(&events), "你好，世界！");
    let last = events.last().unwrap();
    assert_eq!(last["error"]["type"], "upstream_error", "{last}");
    assert!(events.iter().all(|e| e.get("usage").is_none()));
}

#[test]
fn stream_identity_comes_from_the_first_event() {
    let (mut ex, _) = stream_request(false);
    let events = testutil::stream_events(&mut ex, STREAM.as_bytes());
    assert!(events
        .iter()
        .all(|e| e["id"] == "086b6b19-8b2c-4def-a65c-db6a7bc86acd"
            && e["created"] == 1716359713
            && e["model"] == "hunyuan-lite"));
}

#[test]
fn an_empty_reply_is_a_502() {
    for body in [
        r#"{"Response": {"Id": "e", "Choices": [], "RequestId": "r"}}"#,
        r#"{"Response": {"Id": "e", "Choices": [{"Index": 0, "Message": {"Role": "assistant", "Content": ""}, "FinishReason": ""}]}}"#,
    ] {
        let (mut ex, _) = chat(r#"{"model": "m", "messages": [{"role": "user", "content": "x"}]}"#);
        let (status, v) = testutil::respond_json(&mut ex, 200, body.as_bytes());
        testutil::validate_error(&v);
        assert_eq!(status, 502, "{body}");
    }
}

// Hunyuan-T1 buffered answer: Message.ReasoningContent (SDK Message model).
#[test]
fn buffered_reasoning_content() {
    let body = r#"{"Response": {"Id": "t", "Created": 1, "Choices": [{"Index": 0,
        "Message": {"Role": "assistant", "Content": "42", "ReasoningContent": "6 x 7"},
        "FinishReason": "stop"}], "Usage": {"PromptTokens": 3, "CompletionTokens": 4, "TotalTokens": 7}}}"#;
    let (mut ex, _) = chat(r#"{"model": "m", "messages": [{"role": "user", "content": "x"}]}"#);
    let v = testutil::buffered_completion(&mut ex, body.as_bytes());
    assert_eq!(v["choices"][0]["message"]["content"], "42");
    assert_eq!(v["choices"][0]["message"]["reasoning_content"], "6 x 7");
}

#[test]
fn tool_choice_and_image_urls_use_the_toolkit_rules() {
    for (needle, extra) in [
        (
            "allowed_tools",
            r#""tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}"#,
        ),
        ("sometimes", r#""tool_choice": "sometimes""#),
        ("stop", r#""stop": [1]"#),
    ] {
        let err = testutil::rejected_chat(
            &cfg(),
            &format!(
                r#"{{"model": "m", "messages": [{{"role": "user", "content": "x"}}], {extra}}}"#
            ),
        );
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg}");
    }
    // A data URL that is not base64 cannot be an image.
    let err = testutil::rejected_chat(
        &cfg(),
        r#"{"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}]}]}"#,
    );
    assert_eq!(err["error"]["param"], "messages[0].content");
    // A refusal in an earlier assistant turn is that turn's text.
    let (_, up) = chat(
        r#"{"model": "m", "messages": [{"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
            {"role": "user", "content": "y"}]}"#,
    );
    assert_eq!(upstream_json(&up)["Messages"][1]["Content"], "No.");
}

// `encoding_format: base64`: GetEmbedding answers floats; the client gets OpenAI's base64 form.
#[test]
fn embeddings_as_base64() {
    let (mut ex, up) = forward(
        &cfg(),
        "/v1/embeddings",
        r#"{"model": "m", "input": ["a", "b"], "encoding_format": "base64"}"#,
    );
    assert_eq!(upstream_json(&up), json!({"InputList": ["a", "b"]}));
    let (status, v) = testutil::respond_json(&mut ex, 200, EMBEDDINGS.as_bytes());
    assert_eq!(status, 200);
    assert_eq!(
        v["data"][0]["embedding"],
        crate::openai::writer::embedding_base64(&json!([0.1, 0.2])).unwrap()
    );
}

// Hunyuan-T1's reasoning goes through the writer, so reasoningContentMode applies to it.
#[test]
fn reasoning_content_mode_applies_to_streamed_reasoning() {
    let cfg = cfg_with(r#", "reasoningContentMode": "concat""#);
    let (mut ex, _) = forward(
        &cfg,
        "/v1/chat/completions",
        r#"{"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}"#,
    );
    let events = testutil::stream_events(&mut ex, TOOL_STREAM.as_bytes());
    assert_eq!(testutil::stream_text(&events), "需要查天气");
    assert!(events
        .iter()
        .all(|e| e["choices"][0]["delta"].get("reasoning_content").is_none()));
}

// Hunyuan keeps the stop sequence it stopped at in the text (ChatCompletions `Stop`,
// cloud.tencent.com/document/api/1729/105701); OpenAI's `stop` never shows it.
#[test]
fn the_stop_sequence_is_trimmed_buffered_and_streamed() {
    let body =
        r#"{"model": "m", "stop": ["END"], "messages": [{"role": "user", "content": "hi"}]}"#;
    let (mut ex, up) = chat(body);
    assert_eq!(upstream_json(&up)["Stop"], json!(["END"]));
    let reply = r#"{"Response": {"Id": "a", "Created": 1, "Choices": [{"Index": 0, "Message":
        {"Role": "assistant", "Content": "one two END"}, "FinishReason": "stop"}], "RequestId": "r"}}"#;
    let (_, v) = testutil::respond_json(&mut ex, 200, reply.as_bytes());
    assert_eq!(v["choices"][0]["message"]["content"], "one two ");

    // Cut at the length limit: nothing is trimmed ("END" here is text, not the stop).
    let (mut ex, _) = chat(body);
    let cut = reply.replace(r#""FinishReason": "stop""#, r#""FinishReason": "length""#);
    let (_, out, _) = respond(&mut ex, 200, "application/json", cut.as_bytes());
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "one two END");

    // Streamed, the stop sequence split over events; an "E" that turns out not to start it is
    // sent once the next piece shows it.
    let event = |content: &str, finish: &str| {
        format!(
            "data: {}\n\n",
            json!({"Choices": [{"Index": 0, "Delta": {"Role": "assistant", "Content": content},
                "FinishReason": finish}], "Created": 1, "Id": "s"})
        )
    };
    let stream = [
        event("one E", ""),
        event("xtra EN", ""),
        event("D", ""),
        event("", "stop"),
    ]
    .concat();
    let streamed = |stream: &str| {
        let (mut ex, _) =
            chat(&body.replace(r#""model": "m","#, r#""model": "m", "stream": true,"#));
        let (_, out, _) = respond(&mut ex, 200, "text/event-stream", stream.as_bytes());
        testutil::stream_text(&testutil::validate_sse_stream(&out))
    };
    assert_eq!(streamed(&stream), "one Extra ");
    testutil::assert_chunking_invariant(
        || chat(&body.replace(r#""model": "m","#, r#""model": "m", "stream": true,"#)).0,
        "text/event-stream",
        stream.as_bytes(),
    );
    // A held-back prefix is sent when the reply ends for another reason.
    let other = [event("one EN", ""), event("", "length")].concat();
    assert_eq!(streamed(&other), "one EN");
}
