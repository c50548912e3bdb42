//! Bedrock: SigV4 against AWS's published test-suite vectors, the event-stream decoder against
//! frames split at every byte, and Converse fixtures shaped like the API reference
//! (docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html and
//! API_runtime_ConverseStream.html: request/response syntax and the stream event members).

use super::eventstream::{crc32, encode, encode_event, Decoder};
use super::sigv4::{amz_date, sign, Credentials, SignRequest};
use crate::exchange::{Config, ResponseMode};
use crate::testutil::{
    self, forward, header, local_reply, respond, respond_split, upstream_json, validate_sse_stream,
};
use serde_json::{json, Value};
use std::sync::Arc;

// ---- SigV4: AWS Signature Version 4 test suite ("get-vanilla", "post-vanilla",
// "get-vanilla-query-order-key-case"), credentials and date as the suite documents them. ------

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SUITE_DATE: &str = "20150830T123600Z";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn suite(method: &str, path: &str) -> super::sigv4::Signed {
    sign(
        &Credentials {
            access_key: AKID,
            secret_key: SECRET,
        },
        &SignRequest {
            method,
            path,
            headers: &[
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", SUITE_DATE),
            ],
            body: b"",
            region: "us-east-1",
            service: "service",
            amz_date: SUITE_DATE,
        },
    )
}

#[test]
fn sigv4_get_vanilla() {
    let s = suite("GET", "/");
    assert_eq!(
        s.canonical_request,
        format!(
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY_SHA256}"
        )
    );
    assert_eq!(
        s.string_to_sign,
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
         bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
    );
    assert_eq!(
        s.signature,
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
    assert_eq!(
        s.authorization,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, \
         Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
}

#[test]
fn sigv4_post_vanilla() {
    let s = suite("POST", "/");
    assert_eq!(
        s.canonical_request,
        format!(
            "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY_SHA256}"
        )
    );
    assert_eq!(
        s.string_to_sign,
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
         553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87"
    );
    assert_eq!(
        s.signature,
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
    );
}

#[test]
fn sigv4_get_vanilla_query_order_key_case() {
    let s = suite("GET", "/?Param2=value2&Param1=value1");
    assert!(s
        .canonical_request
        .starts_with("GET\n/\nParam1=value1&Param2=value2\n"));
    assert_eq!(
        s.signature,
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
    );
}

#[test]
fn amz_date_is_utc() {
    // 2015-08-30T12:36:00Z, the suite's date.
    assert_eq!(amz_date(1_440_938_160), SUITE_DATE);
    assert_eq!(amz_date(0), "19700101T000000Z");
    // A leap day.
    assert_eq!(amz_date(951_782_400), "20000229T000000Z");
}

// ---- configuration and requests --------------------------------------------------------

const KEYS: &str = r#""awsAccessKey": "AKIDEXAMPLE", "awsSecretKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "awsRegion": "us-east-1""#;
const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

fn cfg_with(extra: &str) -> Arc<Config> {
    testutil::config(&format!(
        r#"{{"provider": {{"type": "bedrock", {KEYS}, "modelMapping": {{"*": "{MODEL}"}}{extra}}}}}"#
    ))
}

fn cfg() -> Arc<Config> {
    cfg_with("")
}

fn bearer_cfg() -> Arc<Config> {
    testutil::config(
        r#"{"provider": {"type": "bedrock", "apiTokens": ["bedrock-api-key-1"], "awsRegion": "us-west-2",
            "bedrockAdditionalFields": {"top_k": 200}}}"#,
    )
}

const HELLO: &str = r#"{"model":"m","messages":[{"role":"user","content":"Hello"}]}"#;
const HELLO_STREAM: &str = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hello"}]}"#;

#[test]
fn higress_documentation_configs_load() {
    // The two configs of Higress's ai-proxy README ("AWS Bedrock"), as JSON.
    Config::from_json(
        br#"{"provider": {"type": "bedrock", "awsAccessKey": "YOUR_AWS_ACCESS_KEY_ID",
            "awsSecretKey": "YOUR_AWS_SECRET_ACCESS_KEY", "awsRegion": "us-east-1",
            "bedrockAdditionalFields": {"top_k": 200}}}"#,
    )
    .unwrap();
    Config::from_json(
        br#"{"provider": {"type": "bedrock", "apiTokens": ["YOUR_AWS_BEARER_TOKEN"],
            "awsRegion": "us-east-1", "bedrockAdditionalFields": {"top_k": 200}}}"#,
    )
    .unwrap();
}

#[test]
fn config_errors_name_the_field() {
    let err = |j: &str| Config::from_json(j.as_bytes()).unwrap_err().to_string();
    assert!(err(r#"{"provider": {"type": "bedrock", "apiTokens": ["k"]}}"#).contains("awsRegion"));
    assert!(
        err(r#"{"provider": {"type": "bedrock", "awsRegion": "us-east-1"}}"#).contains("apiTokens")
    );
    assert!(err(
        r#"{"provider": {"type": "bedrock", "awsRegion": "us-east-1", "awsAccessKey": "a"}}"#
    )
    .contains("awsSecretKey"));
    assert!(err(
        r#"{"provider": {"type": "bedrock", "apiTokens": ["k"], "awsRegion": "evil.com/x"}}"#
    )
    .contains("awsRegion"));
    // The secret never shows in an error.
    let e = err(
        r#"{"provider": {"type": "bedrock", "awsSecretKey": "TOPSECRETVALUE", "awsAccessKey": "a", "awsRegion": "us-east-1", "bedrockAdditionalFields": 3}}"#,
    );
    assert!(!e.contains("TOPSECRETVALUE"), "{e}");
}

#[test]
fn sigv4_request_is_signed_over_the_final_body() {
    let (_, up) = forward(&cfg(), "/v1/chat/completions", HELLO);
    assert_eq!(up.authority, "bedrock-runtime.us-east-1.amazonaws.com");
    assert_eq!(
        up.path,
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    let date = header(&up, "x-amz-date").expect("x-amz-date set");
    let auth = header(&up, "authorization").expect("signed");
    // Re-sign independently of the provider: the same inputs give the same header, and the
    // canonical URI encodes the model id's `%` once more (non-S3 services).
    let body = up.body.as_deref().unwrap();
    let again = sign(
        &Credentials {
            access_key: AKID,
            secret_key: SECRET,
        },
        &SignRequest {
            method: "POST",
            path: &up.path,
            headers: &[("host", &up.authority), ("x-amz-date", date)],
            body,
            region: "us-east-1",
            service: "bedrock",
            amz_date: date,
        },
    );
    assert_eq!(auth, again.authorization);
    assert!(again
        .canonical_request
        .starts_with("POST\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n\n"));
    assert!(auth.starts_with(&format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=",
        &date[..8]
    )));
    // A different body gives a different signature: the body is what was signed.
    let (_, up2) = forward(
        &cfg(),
        "/v1/chat/completions",
        r#"{"model":"m","messages":[{"role":"user","content":"Hello!"}]}"#,
    );
    if header(&up2, "x-amz-date") == Some(date) {
        assert_ne!(header(&up2, "authorization"), Some(auth));
    }
}

#[test]
fn bearer_mode_and_stream_path() {
    let (_, up) = forward(&bearer_cfg(), "/v1/chat/completions", HELLO_STREAM);
    assert_eq!(up.authority, "bedrock-runtime.us-west-2.amazonaws.com");
    assert_eq!(up.path, "/model/m/converse-stream");
    assert_eq!(
        header(&up, "authorization"),
        Some("Bearer bedrock-api-key-1")
    );
    assert!(header(&up, "x-amz-date").is_none());
    assert_eq!(
        upstream_json(&up)["additionalModelRequestFields"],
        json!({"top_k": 200})
    );
    assert!(!bearer_cfg().needs_request_body("GET", "/x"));
    assert!(cfg().needs_request_body("POST", "/model/m/converse"));
}

#[test]
fn passthrough_is_signed_too() {
    let cfg = testutil::config(&format!(
        r#"{{"provider": {{"type": "bedrock", {KEYS}, "protocol": "original"}}}}"#
    ));
    let mut ex = crate::exchange::Exchange::new(cfg);
    let body = br#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#;
    match ex
        .on_request("POST", "/model/m/converse", &[], body)
        .unwrap()
    {
        crate::exchange::RequestAction::Forward(up) => {
            assert_eq!(up.authority, "bedrock-runtime.us-east-1.amazonaws.com");
            assert!(up.body.is_none());
            let auth = up
                .set_headers
                .iter()
                .find(|(k, _)| k == "authorization")
                .unwrap();
            assert!(auth
                .1
                .starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn request_fixture_converse_shape() {
    // Source: Converse API reference request syntax (messages/content blocks, system,
    // inferenceConfig, toolConfig with toolSpec.inputSchema.json and toolChoice).
    let body = json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image, and the weather?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "tooluse_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "tooluse_1", "content": "18C"},
            {"role": "user", "content": "Thanks"}
        ],
        "max_tokens": 512,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["END"],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "tool_choice": "required",
        "user": "u1",
        "n": 1
    });
    let (_, up) = forward(&cfg(), "/v1/chat/completions", &body.to_string());
    assert_eq!(
        upstream_json(&up),
        json!({
            "messages": [
                {"role": "user", "content": [
                    {"text": "What is in this image, and the weather?"},
                    {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}
                ]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "18C"}]}},
                    {"text": "Thanks"}
                ]}
            ],
            "system": [{"text": "Be brief."}],
            "inferenceConfig": {"maxTokens": 512, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather by city",
                    "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}}],
                "toolChoice": {"any": {}}
            }
        })
    );
}

/// Claude's extended thinking through Converse (Bedrock user guide "Extended thinking":
/// `additionalModelRequestFields.thinking = {type: enabled, budget_tokens}`, the budget below
/// `maxTokens`); other models have no common field, so `reasoning_effort` is a 400 there.
#[test]
fn reasoning_effort_is_claude_thinking_in_additional_fields() {
    let send = |c: &Arc<Config>, extra: &str| {
        let body =
            format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}]{extra}}}"#);
        upstream_json(&forward(c, "/v1/chat/completions", &body).1)
    };
    let b = send(&cfg(), r#","reasoning_effort":"low","max_tokens":8000"#);
    assert_eq!(
        b["additionalModelRequestFields"]["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert_eq!(b["inferenceConfig"]["maxTokens"], 8000);
    assert!(b.get("reasoning_effort").is_none());
    // maxTokens grows past the budget (Bedrock requires budget_tokens < maxTokens).
    let b = send(&cfg(), r#","reasoning_effort":"high","max_tokens":100"#);
    assert_eq!(
        b["additionalModelRequestFields"]["thinking"]["budget_tokens"],
        16384
    );
    assert_eq!(b["inferenceConfig"]["maxTokens"], 16384 + 4096);
    let b = send(&cfg(), r#","reasoning_effort":"none""#);
    assert_eq!(
        b["additionalModelRequestFields"]["thinking"],
        json!({"type": "disabled"})
    );
    assert!(b.get("inferenceConfig").is_none());
    // bedrockAdditionalFields' own thinking wins.
    let c = cfg_with(
        r#", "bedrockAdditionalFields": {"thinking": {"type": "enabled", "budget_tokens": 2000}}"#,
    );
    let b = send(&c, r#","reasoning_effort":"high""#);
    assert_eq!(
        b["additionalModelRequestFields"]["thinking"]["budget_tokens"],
        2000
    );

    // Opus 4.7 takes adaptive thinking only (Bedrock user guide, "Adaptive thinking"): the
    // depth goes to output_config.effort, maxTokens is left alone, and `none` sends no thinking
    // field at all (`disabled` is a 400 on that model).
    let opus = testutil::config(&format!(
        r#"{{"provider": {{"type": "bedrock", {KEYS}, "modelMapping": {{"*": "us.anthropic.claude-opus-4-7"}}}}}}"#
    ));
    let b = send(&opus, r#","reasoning_effort":"medium","max_tokens":100"#);
    assert_eq!(
        b["additionalModelRequestFields"],
        json!({"thinking": {"type": "adaptive", "display": "summarized"}, "output_config": {"effort": "medium"}})
    );
    assert_eq!(b["inferenceConfig"]["maxTokens"], 100);
    let b = send(&opus, r#","reasoning_effort":"none""#);
    assert!(b.get("additionalModelRequestFields").is_none(), "{b}");
    let v = testutil::rejected_chat(
        &cfg(),
        r#"{"model":"m","reasoning_effort":"extreme","messages":[{"role":"user","content":"x"}]}"#,
    );
    assert_eq!(v["error"]["param"], "reasoning_effort");
    let nova = testutil::config(&format!(
        r#"{{"provider": {{"type": "bedrock", {KEYS}, "modelMapping": {{"*": "amazon.nova-pro-v1:0"}}}}}}"#
    ));
    let v = testutil::rejected_chat(
        &nova,
        r#"{"model":"m","reasoning_effort":"low","messages":[{"role":"user","content":"x"}]}"#,
    );
    assert_eq!(v["error"]["param"], "reasoning_effort");
    assert!(crate::testutil::error_message(&v).contains("bedrockAdditionalFields"));
}

#[test]
fn unsupported_requests_are_400s() {
    let c = cfg();
    for (body, param) in [
        (
            r#"{"model":"m","n":2,"messages":[{"role":"user","content":"x"}]}"#,
            "n",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#,
            "messages[0].content[0]",
        ),
        (
            r#"{"model":"m","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"x"}]}"#,
            "response_format",
        ),
    ] {
        let v = testutil::rejected_chat(&c, body);
        assert_eq!(v["error"]["param"], param, "{body}");
    }
    let (status, _) = local_reply(&c, "/v1/embeddings", r#"{"model":"m","input":"x"}"#);
    assert_eq!(status, 400);
}

// ---- responses ---------------------------------------------------------------------------

#[test]
fn buffered_reply_fixture() {
    // Source: Converse API reference response syntax (output.message.content, stopReason, usage,
    // metrics).
    let reply = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "Need the weather.", "signature": "sig"}}},
            {"text": "Let me check."},
            {"toolUse": {"toolUseId": "tooluse_abc", "name": "get_weather", "input": {"city": "Paris"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 62, "cacheReadInputTokens": 20},
        "metrics": {"latencyMs": 410}
    });
    let (mut ex, _) = forward(&cfg(), "/v1/chat/completions", HELLO);
    let (status, out, mode) = respond(
        &mut ex,
        200,
        "application/json",
        reply.to_string().as_bytes(),
    );
    assert_eq!((status, mode), (200, ResponseMode::Buffer));
    let v: Value = serde_json::from_slice(&out).unwrap();
    testutil::validate_chat_completion(&v);
    let c = &v["choices"][0];
    assert_eq!(c["finish_reason"], "tool_calls");
    assert_eq!(c["message"]["content"], "Let me check.");
    assert_eq!(c["message"]["reasoning_content"], "Need the weather.");
    assert_eq!(c["message"]["tool_calls"][0]["id"], "tooluse_abc");
    assert_eq!(
        c["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );
    assert_eq!(v["usage"]["prompt_tokens"], 50);
    assert_eq!(v["usage"]["completion_tokens"], 12);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 20);
}

#[test]
fn upstream_errors_keep_status_and_message() {
    // Bedrock's error body: {"message": ...} (API reference "Errors"; the type is a header).
    let (mut ex, _) = forward(&cfg(), "/v1/chat/completions", HELLO);
    let body = br#"{"message":"The provided model identifier is invalid."}"#;
    let (status, v) = testutil::respond_json(&mut ex, 400, body);
    assert_eq!(status, 400);
    testutil::validate_error(&v);
    assert_eq!(
        v["error"]["message"],
        "The provided model identifier is invalid."
    );
    let (mut ex, _) = forward(&cfg(), "/v1/chat/completions", HELLO);
    let (status, _, _) = respond(
        &mut ex,
        429,
        "application/json",
        br#"{"message":"Too many requests, please wait before trying again."}"#,
    );
    assert_eq!(status, 429);
}

// ---- event stream ------------------------------------------------------------------------

#[test]
fn crc32_check_value() {
    // The CRC-32/ISO-HDLC check value.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

/// A ConverseStream reply (event names and payload members from the ConverseStream API
/// reference): reasoning, text, a tool call, messageStop, metadata.
fn converse_stream() -> Vec<u8> {
    let mut s = Vec::new();
    for (ev, payload) in [
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Thinking"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "abc"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"text": "Hel"}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"text": "lo"}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 1})),
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tooluse_9", "name": "get_weather"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{\"city\":"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 2})),
        ("messageStop", json!({"stopReason": "tool_use"})),
        (
            "metadata",
            json!({"usage": {"inputTokens": 11, "outputTokens": 7, "totalTokens": 18}, "metrics": {"latencyMs": 100}}),
        ),
    ] {
        s.extend_from_slice(&encode_event(ev, payload.to_string().as_bytes()));
    }
    s
}

const EVENTSTREAM: &str = "application/vnd.amazon.eventstream";

#[test]
fn stream_translates_every_event() {
    let (mut ex, _) = forward(&cfg(), "/v1/chat/completions", HELLO_STREAM);
    let (status, out, mode) = respond(&mut ex, 200, EVENTSTREAM, &converse_stream());
    assert_eq!((status, mode), (200, ResponseMode::Stream));
    let events = validate_sse_stream(&out);
    assert_eq!(testutil::stream_text(&events), "Hello");
    let reasoning: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "Thinking");
    let args: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, "{\"city\":\"Paris\"}");
    let start = events
        .iter()
        .find(|e| e["choices"][0]["delta"]["tool_calls"][0]["id"].is_string())
        .unwrap();
    assert_eq!(
        start["choices"][0]["delta"]["tool_calls"][0]["id"],
        "tooluse_9"
    );
    assert!(events
        .iter()
        .any(|e| e["choices"][0]["finish_reason"] == "tool_calls"));
    let last = events.last().unwrap();
    assert_eq!(last["usage"]["prompt_tokens"], 11);
    assert_eq!(last["usage"]["completion_tokens"], 7);
    assert_eq!(ex.usage().unwrap().total_tokens, 18);
}

#[test]
fn stream_split_at_every_byte_is_the_same() {
    let c = cfg();
    testutil::assert_chunking_invariant(
        || forward(&c, "/v1/chat/completions", HELLO_STREAM).0,
        EVENTSTREAM,
        &converse_stream(),
    );
}

#[test]
fn decoder_split_at_every_byte() {
    let whole = converse_stream();
    let collect = |splits: &[usize]| {
        let mut d = Decoder::default();
        let mut seen = Vec::new();
        let mut start = 0;
        for &cut in splits.iter().chain(std::iter::once(&whole.len())) {
            d.feed(&whole[start..cut], &mut |m| {
                seen.push((m.event_type.to_string(), m.payload.to_vec()));
                Ok(())
            })
            .unwrap();
            start = cut;
        }
        assert_eq!(d.pending(), 0);
        seen
    };
    let want = collect(&[]);
    assert_eq!(want.len(), 13);
    for i in 0..=whole.len() {
        assert_eq!(collect(&[i]), want, "split at {i}");
    }
    let all: Vec<usize> = (1..whole.len()).collect();
    assert_eq!(collect(&all), want);
}

#[test]
fn corrupt_frames_are_refused() {
    let frame = encode_event("messageStart", br#"{"role":"assistant"}"#);
    let feed = |b: &[u8]| {
        Decoder::default()
            .feed(b, &mut |_| Ok(()))
            .map_err(|e| e.message)
    };
    assert!(feed(&frame).is_ok());
    let mut bad = frame.clone();
    bad[8] ^= 1; // prelude CRC
    assert!(feed(&bad).unwrap_err().contains("prelude CRC"));
    let mut bad = frame.clone();
    let n = bad.len();
    bad[n - 6] ^= 1; // payload byte: message CRC
    assert!(feed(&bad).unwrap_err().contains("message CRC"));
    // A prelude announcing more than AWS's 16 MiB is refused before anything is buffered.
    let mut huge = Vec::new();
    huge.extend_from_slice(&(64u32 << 20).to_be_bytes());
    huge.extend_from_slice(&0u32.to_be_bytes());
    let crc = crc32(&huge);
    huge.extend_from_slice(&crc.to_be_bytes());
    assert!(feed(&huge).unwrap_err().contains("length"));
    // Through the exchange: an in-stream error event, then [DONE].
    let (mut ex, _) = forward(&cfg(), "/v1/chat/completions", HELLO_STREAM);
    let mut body = converse_stream();
    body[20] ^= 0xFF;
    let (_, out, _) = respond(&mut ex, 200, EVENTSTREAM, &body);
    let events = validate_sse_stream(&out);
    assert!(events.last().unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("event stream"));
}

#[test]
fn stream_exception_and_cut_stream_are_error_events() {
    let (mut ex, _) = forward(&cfg(), "/v1/chat/completions", HELLO_STREAM);
    let mut body = encode_event("messageStart", br#"{"role":"assistant"}"#);
    body.extend_from_slice(&encode(
        &[
            (":exception-type", "throttlingException"),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        br#"{"message":"Too many tokens, please wait before trying again."}"#,
    ));
    let (_, out, _) = respond(&mut ex, 200, EVENTSTREAM, &body);
    let events = validate_sse_stream(&out);
    let err = &events.last().unwrap()["error"];
    assert_eq!(err["code"], "throttlingException");
    assert_eq!(err["type"], "rate_limit_error");

    // No messageStop: the client learns the reply was cut.
    let (mut ex, _) = forward(&cfg(), "/v1/chat/completions", HELLO_STREAM);
    let whole = converse_stream();
    let cut = whole.len() - 40;
    let (_, out, _) = respond_split(&mut ex, 200, EVENTSTREAM, &whole[..cut], &[]);
    let events = validate_sse_stream(&out);
    assert!(events.last().unwrap()["error"].is_object());
}
