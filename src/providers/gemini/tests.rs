use crate::exchange::{Config, Exchange, RequestAction, ResponseMode};
use crate::testutil::*;
use serde_json::{json, Value};
use std::sync::Arc;

const KEY: &str = "AIza-test-secret-key";

fn cfg(extra: Value) -> Arc<Config> {
    let mut p = json!({
        "type": "gemini",
        "apiTokens": [KEY],
        "modelMapping": {"*": "gemini-2.0-flash"},
    });
    p.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    config(&json!({ "provider": p }).to_string())
}

fn chat(body: Value) -> (Exchange, crate::exchange::UpstreamRequest, Value) {
    let (ex, up) = forward(&cfg(json!({})), "/v1/chat/completions", &body.to_string());
    let b = upstream_json(&up);
    (ex, up, b)
}

/// The request's local reply (an OpenAI error), validated.
fn rejected(c: &Arc<Config>, path: &str, body: Value) -> (u16, Value) {
    let (status, v) = crate::testutil::local_reply(c, path, &body.to_string());
    assert!(!v.to_string().contains(KEY));
    (status, v)
}

fn parse(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap()
}

// Mirrors GenerateContentResponse in https://ai.google.dev/api/generate-content (REST
// "Response body" and the text-generation guide's curl output).
const TEXT_RESPONSE: &str = r#"{
  "candidates": [{
    "content": {"parts": [{"text": "I am a large language model, "}, {"text": "trained by Google."}], "role": "model"},
    "finishReason": "STOP",
    "index": 0,
    "safetyRatings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"}]
  }],
  "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 29, "totalTokenCount": 34},
  "modelVersion": "gemini-2.0-flash-001",
  "responseId": "abc123"
}"#;

// Mirrors the function-calling guide's REST response (https://ai.google.dev/gemini-api/docs/
// function-calling): a model turn whose part is {"functionCall": {"name", "args"}}, plus the
// Gemini 3 `thoughtSignature` sibling (https://ai.google.dev/gemini-api/docs/thought-signatures).
const CALL_RESPONSE: &str = r#"{
  "candidates": [{
    "content": {"role": "model", "parts": [
      {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "c"}}, "thoughtSignature": "c2lnLTE="},
      {"functionCall": {"name": "get_time", "args": {"tz": "CET"}}}
    ]},
    "finishReason": "STOP",
    "index": 0
  }],
  "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 12, "thoughtsTokenCount": 8, "totalTokenCount": 60}
}"#;

// Mirrors streamGenerateContent?alt=sse as shown in the REST streaming quickstart
// (google-gemini/cookbook quickstarts/rest/Streaming_REST): one GenerateContentResponse per
// `data:` event, CRLF framing, usageMetadata cumulative on every event, no [DONE].
const STREAM: &str = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 3,\"candidatesTokenCount\": 1,\"totalTokenCount\": 4},\"modelVersion\": \"gemini-2.0-flash-001\"}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"lo, wörld\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 3,\"candidatesTokenCount\": 3,\"totalTokenCount\": 6},\"modelVersion\": \"gemini-2.0-flash-001\"}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"!\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 3,\"candidatesTokenCount\": 4,\"totalTokenCount\": 7},\"modelVersion\": \"gemini-2.0-flash-001\"}\r\n\r\n";

// Same framing, with a whole functionCall part in the last event (the function-calling guide's
// streaming behaviour: calls arrive complete, never split across events).
const STREAM_CALL: &str = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Checking.\"}],\"role\": \"model\"},\"index\": 0}]}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\",\"args\": {\"city\": \"Paris\"}},\"thoughtSignature\": \"c2ln\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 20,\"candidatesTokenCount\": 6,\"totalTokenCount\": 26}}\r\n\r\n";

// Google's error model as the Gemini troubleshooting page documents it
// (https://ai.google.dev/gemini-api/docs/troubleshooting).
const ERROR_400: &str = r#"{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}"#;

#[test]
fn chat_text_request_host_path_auth_and_generation_config() {
    let c = cfg(json!({"geminiSafetySetting": {
        "HARM_CATEGORY_SEXUALLY_EXPLICIT": "BLOCK_NONE",
        "HARM_CATEGORY_HATE_SPEECH": "BLOCK_ONLY_HIGH",
        "HARM_CATEGORY_HARASSMENT": "BLOCK_NONE"
    }}));
    let body = json!({
        "model": "gpt-4o", "messages": [{"role": "user", "content": "Who are you?"}],
        "temperature": 0.2, "top_p": 0.9, "top_k": 40, "max_tokens": 100, "stop": "END",
        "n": 2, "seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.25, "user": "u1",
        "stream": false
    });
    let (ex, up) = forward(&c, "/v1/chat/completions", &body.to_string());
    assert_eq!(up.authority, "generativelanguage.googleapis.com");
    assert_eq!(up.path, "/v1beta/models/gemini-2.0-flash:generateContent");
    assert_eq!(header(&up, "x-goog-api-key"), Some(KEY));
    assert!(header(&up, "authorization").is_none());
    assert!(up.remove_headers.contains(&"authorization"));
    assert_eq!(ex.model_sent(), "gemini-2.0-flash");
    let b = upstream_json(&up);
    assert_eq!(
        b["contents"],
        json!([{"role": "user", "parts": [{"text": "Who are you?"}]}])
    );
    assert_eq!(
        b["generation_config"],
        json!({"temperature": 0.2, "topP": 0.9, "topK": 40, "stopSequences": ["END"],
               "candidateCount": 2, "seed": 7, "presencePenalty": 0.5,
               "frequencyPenalty": 0.25, "maxOutputTokens": 100})
    );
    assert_eq!(
        b["safetySettings"],
        json!([
            {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "threshold": "BLOCK_NONE"},
            {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"},
            {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
        ])
    );
    assert!(b.get("model").is_none() && b.get("messages").is_none());

    // max_completion_tokens wins over max_tokens; stop arrays pass through; streaming path.
    let (_, up, b) = chat(json!({"model": "m", "stream": true, "max_tokens": 5,
        "max_completion_tokens": 9, "stop": ["a", "b"],
        "messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(
        up.path,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(b["generation_config"]["maxOutputTokens"], 9);
    assert_eq!(b["generation_config"]["stopSequences"], json!(["a", "b"]));
    assert!(b.get("safetySettings").is_none());
}

#[test]
fn model_names_become_resource_paths() {
    for (mapped, path) in [
        (
            "models/gemini-1.5-pro",
            "/v1beta/models/gemini-1.5-pro:generateContent",
        ),
        (
            "tunedModels/my-tune-01",
            "/v1beta/tunedModels/my-tune-01:generateContent",
        ),
    ] {
        let c = cfg(json!({"modelMapping": {"*": mapped}}));
        let (_, up) = forward(
            &c,
            "/v1/chat/completions",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
        );
        assert_eq!(up.path, path);
    }
    for bad in ["../files", "gemini:generateContent?x=1", "a/b", "models/"] {
        let c = cfg(json!({"modelMapping": {"*": bad}}));
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        let (status, err) = rejected(&c, "/v1/chat/completions", body);
        assert_eq!(
            (status, err["error"]["param"].as_str()),
            (400, Some("model")),
            "{bad}"
        );
    }
}

#[test]
fn multi_turn_with_system_and_developer_messages() {
    let (_, _, b) = chat(json!({"model": "m", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Bonjour !"},
        {"role": "user", "content": "How are you?"},
        {"role": "user", "content": [{"type": "text", "text": "And the weather?"}]}
    ]}));
    assert_eq!(
        b["system_instruction"],
        json!({"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]})
    );
    assert_eq!(
        b["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Bonjour !"}]},
            {"role": "user", "parts": [{"text": "How are you?"}, {"text": "And the weather?"}]}
        ])
    );
    let (status, err) = rejected(
        &cfg(json!({})),
        "/v1/chat/completions",
        json!({"model": "m", "messages": [{"role": "system", "content": "only"}]}),
    );
    assert_eq!(status, 400);
    assert!(crate::testutil::error_message(&err).contains("user or assistant"));
}

#[test]
fn images_and_audio_become_inline_data() {
    let (_, _, b) = chat(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://generativelanguage.googleapis.com/v1beta/files/abc123"}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}}
        ]}]}),
    );
    assert_eq!(
        b["contents"][0]["parts"],
        json!([
            {"text": "What is this?"},
            {"inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgo="}},
            {"file_data": {"file_uri": "https://generativelanguage.googleapis.com/v1beta/files/abc123"}},
            {"inline_data": {"mime_type": "audio/wav", "data": "UklGRg=="}},
            {"inline_data": {"mime_type": "application/pdf", "data": "JVBERi0="}}
        ])
    );
    let c = cfg(json!({}));
    let (status, err) = rejected(
        &c,
        "/v1/chat/completions",
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}),
    );
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "unsupported_feature");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("image_url with an http(s) URL") && msg.contains("gemini"),
        "{msg}"
    );
    let (status, _) = rejected(
        &c,
        "/v1/chat/completions",
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}}]}]}),
    );
    assert_eq!(status, 400);
}

#[test]
fn tools_tool_choice_calls_and_results() {
    let (_, _, b) = chat(json!({"model": "m",
    "tools": [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
    ],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "messages": [
        {"role": "user", "content": "Weather in Paris and time?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": ""}}
        ]},
        {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp\": 21}"},
        {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
        {"role": "user", "content": "Thanks"}
    ]}));
    assert_eq!(
        b["tools"],
        json!([{"function_declarations": [
            {"name": "get_weather", "description": "Weather",
             "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
            {"name": "now"}
        ]}])
    );
    assert_eq!(
        b["tool_config"],
        json!({"function_calling_config": {"mode": "ANY", "allowed_function_names": ["get_weather"]}})
    );
    assert_eq!(
        b["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather in Paris and time?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "now", "args": {}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"functionResponse": {"name": "now", "response": {"output": "12:00"}}},
                {"text": "Thanks"}
            ]}
        ])
    );
    for (choice, want) in [
        (json!("auto"), json!({"mode": "AUTO"})),
        (json!("none"), json!({"mode": "NONE"})),
        (json!("required"), json!({"mode": "ANY"})),
    ] {
        let (_, _, b) = chat(json!({"model": "m", "tool_choice": choice,
            "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(b["tool_config"]["function_calling_config"], want);
    }
    let (status, err) = rejected(
        &cfg(json!({})),
        "/v1/chat/completions",
        json!({"model": "m", "messages": [
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "nope", "content": "1"}]}),
    );
    assert_eq!(status, 400);
    assert!(crate::testutil::error_message(&err).contains("nope"));
}

#[test]
fn thought_signatures_round_trip_and_gemini3_sentinel() {
    let msgs = json!([
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{}"},
             "extra_content": {"google": {"thought_signature": "c2lnLTE="}}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "assistant", "tool_calls": [
            {"id": "call_2", "type": "function", "function": {"name": "w", "arguments": "{}"}},
            {"id": "call_3", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
        {"role": "tool", "tool_call_id": "call_3", "content": "snow"}
    ]);
    let c3 = cfg(json!({"modelMapping": {"*": "gemini-3-pro-preview"}}));
    let (_, up) = forward(
        &c3,
        "/v1/chat/completions",
        &json!({"model": "m", "messages": msgs}).to_string(),
    );
    let b = upstream_json(&up);
    assert_eq!(b["contents"][1]["parts"][0]["thoughtSignature"], "c2lnLTE=");
    assert_eq!(
        b["contents"][3]["parts"][0]["thoughtSignature"],
        "skip_thought_signature_validator"
    );
    assert!(b["contents"][3]["parts"][1]
        .get("thoughtSignature")
        .is_none());
    // Older models get only what the client sent back.
    let (_, _, b) = chat(json!({"model": "m", "messages": msgs}));
    assert_eq!(b["contents"][1]["parts"][0]["thoughtSignature"], "c2lnLTE=");
    assert!(b["contents"][3]["parts"][0]
        .get("thoughtSignature")
        .is_none());
}

#[test]
fn response_format_maps_to_json_mime_type_and_schema() {
    let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}},
        "required": ["a"], "additionalProperties": false});
    let (_, _, b) = chat(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": true, "schema": schema}}}),
    );
    assert_eq!(
        b["generation_config"],
        json!({"responseMimeType": "application/json", "responseJsonSchema": schema})
    );
    let (_, _, b) = chat(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_object"}}),
    );
    assert_eq!(
        b["generation_config"],
        json!({"responseMimeType": "application/json"})
    );
}

#[test]
fn unsupported_parameters_are_400s_naming_the_feature() {
    let c = cfg(json!({}));
    let base = |extra: Value| {
        let mut b = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    for (extra, needle) in [
        (json!({"logprobs": true}), "logprobs"),
        (json!({"top_logprobs": 2}), "top_logprobs"),
        (json!({"logit_bias": {"50256": -100}}), "logit_bias"),
        (json!({"parallel_tool_calls": false}), "parallel_tool_calls"),
        (json!({"functions": [{"name": "f"}]}), "functions"),
        (json!({"modalities": ["text", "audio"]}), "modalities"),
        (
            json!({"tools": [{"type": "custom", "custom": {"name": "c"}}]}),
            "tools of type 'custom'",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f1"}}]}]}),
            "file_id",
        ),
    ] {
        let (status, err) = rejected(&c, "/v1/chat/completions", base(extra.clone()));
        assert_eq!(status, 400, "{extra}");
        assert_eq!(err["error"]["code"], "unsupported_feature", "{extra}");
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle) && msg.contains("'gemini'"), "{msg}");
    }
    // Harmless defaults are accepted.
    let (_, _, b) = chat(base(json!({"logprobs": false, "parallel_tool_calls": true,
        "logit_bias": {}, "modalities": ["text"], "store": false, "metadata": {"k": "v"}})));
    assert!(b.get("generation_config").is_none());
}

#[test]
fn buffered_text_response() {
    let (mut ex, _, _) =
        chat(json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Who are you?"}]}));
    let (status, out, mode) = respond(
        &mut ex,
        200,
        "application/json; charset=UTF-8",
        TEXT_RESPONSE.as_bytes(),
    );
    assert_eq!((status, mode), (200, ResponseMode::Buffer));
    let v = parse(&out);
    validate_chat_completion(&v);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gemini-2.0-flash-001");
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": "I am a large language model, trained by Google.", "refusal": null})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["choices"][0]["logprobs"], Value::Null);
    assert_usage(&v, &ex, 5, 29, 34);
}

/// Replaces generated tool-call ids with `call_*` after checking their form; returns them.
fn take_call_ids(calls: &mut Value) -> Vec<String> {
    let mut ids = Vec::new();
    for c in calls.as_array_mut().into_iter().flatten() {
        let id = c["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("call_") && id.len() == 29, "{id}");
        c["id"] = "call_*".into();
        ids.push(id);
    }
    ids
}

#[test]
fn buffered_tool_calls_multiple_candidates_and_finish_reasons() {
    let (mut ex, _, _) =
        chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
    let (_, out, _) = respond(&mut ex, 200, "application/json", CALL_RESPONSE.as_bytes());
    let mut v = parse(&out);
    validate_chat_completion(&v);
    let ids = take_call_ids(&mut v["choices"][0]["message"]["tool_calls"]);
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    // A second reply to the same upstream answer gets other ids: agents key turns on them.
    let (mut ex2, _, _) =
        chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
    let (_, out2, _) = respond(&mut ex2, 200, "application/json", CALL_RESPONSE.as_bytes());
    let mut v2 = parse(&out2);
    let ids2 = take_call_ids(&mut v2["choices"][0]["message"]["tool_calls"]);
    assert!(ids.iter().all(|i| !ids2.contains(i)), "{ids:?} {ids2:?}");
    let msg = &v["choices"][0]["message"];
    assert_eq!(msg["content"], Value::Null);
    assert_eq!(
        msg["tool_calls"],
        json!([
            {"id": "call_*", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"unit\":\"c\"}"},
             "extra_content": {"google": {"thought_signature": "c2lnLTE="}}},
            {"id": "call_*", "type": "function", "function": {"name": "get_time", "arguments": "{\"tz\":\"CET\"}"}}
        ])
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(v["model"], "gemini-2.0-flash");
    // Thinking tokens are completion tokens and OpenAI's reasoning_tokens; the total is Gemini's.
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60,
               "completion_tokens_details": {"reasoning_tokens": 8}})
    );

    // n=2: candidates by index (given out of order); a safety stop is content_filter.
    let two = r#"{"candidates": [
        {"content": {"parts": [{"text": "B"}], "role": "model"}, "finishReason": "MAX_TOKENS", "index": 1},
        {"finishReason": "SAFETY", "index": 0, "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": true}]}
    ], "usageMetadata": {"promptTokenCount": 2, "totalTokenCount": 2}}"#;
    let (mut ex, _, _) =
        chat(json!({"model": "m", "n": 2, "messages": [{"role": "user", "content": "x"}]}));
    let (_, out, _) = respond(&mut ex, 200, "application/json", two.as_bytes());
    let v = parse(&out);
    validate_chat_completion(&v);
    assert_eq!(v["choices"][0]["index"], 0);
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(v["choices"][0]["message"]["content"], "");
    assert_eq!(v["choices"][1]["message"]["content"], "B");
    assert_eq!(v["choices"][1]["finish_reason"], "length");
}

#[test]
fn finish_reason_table() {
    for (g, want) in [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("OTHER", "stop"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
    ] {
        assert_eq!(super::response::finish_reason(g, false), want, "{g}");
        assert_eq!(super::response::finish_reason(g, true), "tool_calls", "{g}");
    }
}

#[test]
fn blocked_prompt_is_an_openai_error() {
    // Mirrors GenerateContentResponse.promptFeedback (https://ai.google.dev/api/generate-content
    // #PromptFeedback): no candidates, blockReason set.
    let blocked = r#"{"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]}, "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}}"#;
    let (mut ex, _, _) =
        chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
    let (status, out, _) = respond(&mut ex, 200, "application/json", blocked.as_bytes());
    assert_eq!(status, 400);
    let v = parse(&out);
    validate_error(&v);
    assert_eq!(v["error"]["code"], "prompt_blocked");
    assert!(crate::testutil::error_message(&v).contains("SAFETY"));

    let (mut ex, _, _) =
        chat(json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}));
    let sse = format!("data: {blocked}\r\n\r\n");
    let error = stream_error(&mut ex, sse.as_bytes());
    assert_eq!(error["code"], "prompt_blocked");
}

#[test]
fn streamed_text_with_and_without_usage_chunk() {
    let (mut ex, _, _) = chat(json!({"model": "m", "stream": true,
        "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Hi"}]}));
    let (status, out, mode) = respond(&mut ex, 200, "text/event-stream", STREAM.as_bytes());
    assert_eq!((status, mode), (200, ResponseMode::Stream));
    let evs = validate_sse_stream(&out);
    assert_eq!(
        evs[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(stream_text(&evs), "Hello, wörld!");
    let finish: Vec<&Value> = evs
        .iter()
        .filter(|e| !e["choices"][0]["finish_reason"].is_null())
        .collect();
    assert_eq!(finish.len(), 1);
    assert_eq!(finish[0]["choices"][0]["finish_reason"], "stop");
    let last = evs.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
    );
    assert!(evs.iter().all(|e| e["model"] == "gemini-2.0-flash-001"));
    let id = evs[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-") && evs.iter().all(|e| e["id"] == id));

    let (mut ex, _, _) = chat(
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    );
    let evs = stream_events(&mut ex, STREAM.as_bytes());
    assert!(evs.iter().all(|e| e.get("usage").is_none()));
    assert_eq!(
        ex.usage().unwrap().total_tokens,
        7,
        "usage is recorded anyway"
    );
}

#[test]
fn streamed_tool_call_is_one_complete_delta() {
    let (mut ex, _, _) =
        chat(json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}));
    let evs = stream_events(&mut ex, STREAM_CALL.as_bytes());
    assert_eq!(stream_text(&evs), "Checking.");
    let mut calls: Vec<Value> = evs
        .iter()
        .filter_map(|e| e["choices"][0]["delta"].get("tool_calls").cloned())
        .collect();
    for c in &mut calls {
        take_call_ids(c);
    }
    let calls: Vec<&Value> = calls.iter().collect();
    assert_eq!(
        calls,
        vec![&json!([{"index": 0, "id": "call_*", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            "extra_content": {"google": {"thought_signature": "c2ln"}}}])]
    );
    assert_eq!(
        evs.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
    assert_eq!(ex.usage().unwrap().total_tokens, 26);
}

#[test]
fn stream_chunking_invariance() {
    let c = cfg(json!({}));
    let body = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Hi"}]})
    .to_string();
    for upstream in [STREAM, STREAM_CALL] {
        assert_chunking_invariant(
            || forward(&c, "/v1/chat/completions", &body).0,
            "text/event-stream",
            upstream.as_bytes(),
        );
    }
}

#[test]
fn upstream_errors_keep_status_and_use_google_status_as_code() {
    let (mut ex, _, _) =
        chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
    let (status, out, mode) = respond(&mut ex, 400, "application/json", ERROR_400.as_bytes());
    assert_eq!((status, mode), (400, ResponseMode::Buffer));
    let v = parse(&out);
    validate_error(&v);
    assert_eq!(v["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(
        v["error"]["message"],
        "API key not valid. Please pass a valid API key."
    );

    // A stream request answered with an error status is buffered and translated the same
    // way; the streaming endpoint may wrap the error in an array.
    let wrapped = r#"[{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}]"#;
    let (mut ex, _, _) =
        chat(json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}));
    let (status, out, mode) = respond(&mut ex, 429, "application/json", wrapped.as_bytes());
    assert_eq!((status, mode), (429, ResponseMode::Buffer));
    let v = parse(&out);
    validate_error(&v);
    assert_eq!(
        (v["error"]["code"].as_str(), v["error"]["type"].as_str()),
        (Some("RESOURCE_EXHAUSTED"), Some("rate_limit_error"))
    );

    let (mut ex, _, _) =
        chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
    let (status, out, _) = respond(&mut ex, 503, "text/html", b"<html>overloaded</html>");
    assert_eq!(status, 503);
    validate_error(&parse(&out));

    // An error inside a 200 body keeps its own code as the status.
    let (mut ex, _, _) =
        chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
    let in_200 = r#"{"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}"#;
    let (status, out, _) = respond(&mut ex, 200, "application/json", in_200.as_bytes());
    assert_eq!(status, 500);
    assert_eq!(parse(&out)["error"]["code"], "INTERNAL");
}

#[test]
fn in_stream_error_then_done() {
    let err = r#"{"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}"#;
    let sse = format!(
        "data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"text\": \"Hi\"}}],\"role\": \"model\"}},\"index\": 0}}]}}\r\n\r\ndata: {err}\r\n\r\n"
    );
    let (mut ex, _, _) =
        chat(json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}));
    let (status, out, _) = respond(&mut ex, 200, "text/event-stream", sse.as_bytes());
    assert_eq!(status, 200);
    let evs = validate_sse_stream(&out);
    assert_eq!(stream_text(&evs), "Hi");
    let last = evs.last().unwrap();
    assert_eq!(last["error"]["code"], "UNAVAILABLE");
    assert_eq!(last["error"]["type"], "api_error");

    // Garbage mid-stream: an error event and a single [DONE].
    let (mut ex, _, _) =
        chat(json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}));
    stream_error(&mut ex, b"data: {not json\r\n\r\n");
}

#[test]
fn embeddings_request_and_response() {
    let c = cfg(json!({"modelMapping": {"*": "text-embedding-004"}}));
    let body = json!({"model": "text-embedding-3-small", "input": ["Hello", "World"],
        "dimensions": 256, "encoding_format": "float"});
    let (mut ex, up) = forward(&c, "/v1/embeddings", &body.to_string());
    assert_eq!(up.authority, "generativelanguage.googleapis.com");
    assert_eq!(
        up.path,
        "/v1beta/models/text-embedding-004:batchEmbedContents"
    );
    assert_eq!(header(&up, "x-goog-api-key"), Some(KEY));
    assert_eq!(
        upstream_json(&up),
        json!({"requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "Hello"}]}, "outputDimensionality": 256},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "World"}]}, "outputDimensionality": 256}
        ]})
    );
    // Mirrors BatchEmbedContentsResponse (https://ai.google.dev/api/embeddings): embeddings[].values.
    let resp = r#"{"embeddings": [{"values": [0.1, -0.2, 0.3]}, {"values": [0.4, 0.5, -0.6]}]}"#;
    let (status, out, _) = respond(&mut ex, 200, "application/json", resp.as_bytes());
    assert_eq!(status, 200);
    let v = parse(&out);
    validate_embeddings(&v);
    assert_eq!(v["data"][1]["embedding"], json!([0.4, 0.5, -0.6]));
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["model"], "text-embedding-004");
    assert_eq!(v["usage"], json!({"prompt_tokens": 0, "total_tokens": 0}));
    assert!(ex.usage().is_none(), "Gemini reports no embeddings usage");

    let (_, up) = forward(&c, "/v1/embeddings", r#"{"model":"e","input":"one"}"#);
    assert_eq!(
        upstream_json(&up)["requests"],
        json!([{"model": "models/text-embedding-004", "content": {"parts": [{"text": "one"}]}}])
    );
    assert_unsupported(&rejected(
        &c,
        "/v1/embeddings",
        json!({"model": "e", "input": [[1, 2, 3]]}),
    ));

    let (mut ex, _) = forward(&c, "/v1/embeddings", r#"{"model":"e","input":"one"}"#);
    let (status, out, _) = respond(&mut ex, 404, "application/json",
        br#"{"error": {"code": 404, "message": "models/x is not found for API version v1beta.", "status": "NOT_FOUND"}}"#);
    assert_eq!(status, 404);
    assert_eq!(parse(&out)["error"]["code"], "NOT_FOUND");
}

#[test]
fn protocol_original_passes_the_client_path_with_the_key() {
    let c = cfg(json!({"protocol": "original"}));
    let native = r#"{"contents":[{"role":"user","parts":[{"text":"Hi"}]}]}"#;
    let mut ex = Exchange::new(Arc::clone(&c));
    let path = "/v1beta/models/gemini-2.0-flash:generateContent";
    let RequestAction::Forward(up) = ex
        .on_request(
            "POST",
            path,
            &[("authorization", "Bearer client")],
            native.as_bytes(),
        )
        .unwrap()
    else {
        panic!("expected a forward")
    };
    assert_eq!(up.authority, "generativelanguage.googleapis.com");
    assert_eq!(up.path, path);
    assert_eq!(header(&up, "x-goog-api-key"), Some(KEY));
    assert!(up.body.is_none());
    assert!(up.remove_headers.contains(&"authorization"));
    let rh = ex
        .on_response_headers(200, &[("content-type", "application/json")])
        .unwrap();
    assert_eq!(rh.mode, ResponseMode::Passthrough);

    // protocol openai with an untranslated path passes through too.
    let mut ex = Exchange::new(cfg(json!({})));
    let RequestAction::Forward(up) = ex
        .on_request(
            "POST",
            "/v1beta/models/gemini-2.0-flash:countTokens",
            &[],
            native.as_bytes(),
        )
        .unwrap()
    else {
        panic!("expected a forward")
    };
    assert_eq!(up.path, "/v1beta/models/gemini-2.0-flash:countTokens");
    assert_eq!(header(&up, "x-goog-api-key"), Some(KEY));
}

#[test]
fn custom_settings_land_under_generation_config() {
    let c = cfg(json!({"customSettings": [
        {"name": "max_tokens", "value": 2048},
        {"name": "top_p", "value": 0.5, "overwrite": false},
        {"name": "top_k", "value": 20},
        {"name": "seed", "value": 3},
        {"name": "responseMimeType", "value": "text/plain", "mode": "raw"}
    ]}));
    let body = json!({"model": "m", "top_p": 0.9, "max_tokens": 10,
        "messages": [{"role": "user", "content": "x"}]});
    let (_, up) = forward(&c, "/v1/chat/completions", &body.to_string());
    let b = upstream_json(&up);
    assert_eq!(
        b["generation_config"],
        json!({"topP": 0.9, "maxOutputTokens": 2048, "topK": 20, "responseMimeType": "text/plain"})
    );
    assert!(b.get("seed").is_none() && b["generation_config"].get("seed").is_none());
}

// Gemini's stream has no end marker, so a stream cut before any finishReason ends with the
// writer's error event; parts a candidate sends after its finish are ignored.
#[test]
fn cut_stream_ends_with_an_error_and_nothing_follows_a_finish() {
    let cut = STREAM.rfind("data:").unwrap();
    let (mut ex, _, _) = chat(json!({"model": "m", "stream": true,
        "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Hi"}]}));
    let (status, out, _) = respond(&mut ex, 200, "text/event-stream", &STREAM.as_bytes()[..cut]);
    assert_eq!(status, 200);
    let evs = validate_sse_stream(&out);
    assert_eq!(stream_text(&evs), "Hello, wörld");
    assert_eq!(evs.last().unwrap()["error"]["type"], "upstream_error");
    assert!(evs.iter().all(|e| e.get("usage").is_none()));

    let late = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"late\"}],\"role\": \"model\"},\"index\": 0}]}\r\n\r\n";
    let (mut ex, _, _) = chat(
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    );
    let evs = stream_events(&mut ex, format!("{STREAM}{late}").as_bytes());
    assert_eq!(stream_text(&evs), "Hello, wörld!");
    assert_eq!(evs.last().unwrap()["choices"][0]["finish_reason"], "stop");
}

// The streaming endpoint's array-wrapped error model, inside a 200 body or a stream event.
#[test]
fn array_wrapped_errors_after_a_200() {
    let wrapped = r#"[{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}]"#;
    let (mut ex, _, _) =
        chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
    let (status, out, _) = respond(&mut ex, 200, "application/json", wrapped.as_bytes());
    assert_eq!(status, 429);
    assert_eq!(parse(&out)["error"]["code"], "RESOURCE_EXHAUSTED");

    let (mut ex, _, _) =
        chat(json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}));
    let sse = format!("data: {wrapped}\r\n\r\n");
    let error = stream_error(&mut ex, sse.as_bytes());
    assert_eq!(error["code"], "RESOURCE_EXHAUSTED");
    assert_eq!(error["type"], "rate_limit_error");
}

/// A strict tool as the openai SDKs' `pydantic_function_tool` writes it: `strict: true` and
/// `additionalProperties: false`. It goes to Gemini's JSON-Schema field unchanged.
#[test]
fn strict_tools_use_the_json_schema_field() {
    let (_, _, up) = chat(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "lookup", "strict": true, "parameters": {
            "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"],
            "additionalProperties": false}}}]}),
    );
    let decl = &up["tools"][0]["function_declarations"][0];
    assert_eq!(decl["parametersJsonSchema"]["additionalProperties"], false);
    assert!(decl.get("parameters").is_none());
}

// reasoning_effort → thinkingConfig (budgets as in ai.google.dev/gemini-api/docs/openai, with
// thought summaries included); "none" turns thinking off.
#[test]
fn reasoning_effort_maps_to_thinking_config() {
    for (effort, expected) in [
        (
            "low",
            json!({"thinkingBudget": 1024, "includeThoughts": true}),
        ),
        (
            "high",
            json!({"thinkingBudget": 24576, "includeThoughts": true}),
        ),
        ("none", json!({"thinkingBudget": 0})),
    ] {
        let (_, _, b) = chat(
            json!({"model": "gemini-2.5-flash", "reasoning_effort": effort,
            "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert_eq!(
            b["generation_config"]["thinkingConfig"], expected,
            "{effort}"
        );
    }
    let (status, v) = rejected(
        &cfg(json!({})),
        "/v1/chat/completions",
        json!({"model": "m", "reasoning_effort": "extreme", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(
        (status, &v["error"]["param"]),
        (400, &json!("reasoning_effort"))
    );
}
