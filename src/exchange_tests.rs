//! The exchange state machine on its own: call order, the host-facing decisions, the three
//! response modes, callouts, limits and usage. Provider behaviour is tested with each provider.

use super::*;
use crate::testutil::{config, forward, respond, validate_error, validate_sse_stream};
use serde_json::json;

const OPENAI: &str = r#"{"provider":{"type":"openai","apiTokens":["sk-exchange-test"]}}"#;
const CHAT: &str = "/v1/chat/completions";
const BODY: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;

fn new_exchange() -> Exchange {
    Exchange::new(config(OPENAI))
}

#[test]
fn host_decisions_come_from_the_core() {
    let c = config(OPENAI);
    assert!(c.translates("POST", "/v1/chat/completions"));
    assert!(c.translates("post", "/proxy/v1/embeddings?x=1"));
    assert!(!c.translates("GET", "/v1/chat/completions"));
    assert!(!c.translates("POST", "/v1/models"));
    assert!(c.needs_request_body("POST", CHAT));
    assert!(!c.needs_request_body("POST", "/v1/files"));
    let original =
        config(r#"{"provider":{"type":"openai","apiTokens":["k"],"protocol":"original"}}"#);
    assert!(!original.translates("POST", CHAT));
    // Hunyuan signs every request over its body, translated or not.
    let hunyuan =
        config(r#"{"provider":{"type":"hunyuan","hunyuanAuthId":"id","hunyuanAuthKey":"key"}}"#);
    assert!(hunyuan.needs_request_body("POST", "/anything"));
}

#[test]
fn calls_out_of_order_are_state_errors() {
    let mut ex = new_exchange();
    assert!(ex.on_response_headers(200, &[]).is_err());
    assert!(ex.on_response_body(b"x", true).is_err());
    assert!(ex.on_callout_response(200, b"").is_err());
    let (mut ex, _) = forward(&config(OPENAI), CHAT, BODY);
    assert!(ex.on_request("POST", CHAT, &[], BODY.as_bytes()).is_err());
    assert!(
        ex.on_response_body(b"x", false).is_err(),
        "body before headers"
    );
    ex.on_response_headers(200, &[("content-type", "application/json")])
        .unwrap();
    assert!(ex.on_response_headers(200, &[]).is_err(), "headers twice");
    ex.on_response_body(br#"{"choices":[{"message":{"content":"x"}}]}"#, true)
        .unwrap();
    assert!(
        ex.on_response_body(b"", true).is_err(),
        "body after the end"
    );
}

#[test]
fn untranslated_paths_pass_through_with_host_and_auth() {
    let mut ex = new_exchange();
    let RequestAction::Forward(up) = ex.on_request("GET", "/v1/models", &[], b"").unwrap() else {
        panic!("expected a forward");
    };
    assert_eq!(
        (up.authority.as_str(), up.path.as_str()),
        ("api.openai.com", "/v1/models")
    );
    assert!(up.body.is_none());
    assert!(up
        .set_headers
        .contains(&("authorization".into(), "Bearer sk-exchange-test".into())));
    let rh = ex
        .on_response_headers(200, &[("content-type", "application/json")])
        .unwrap();
    assert_eq!(rh.mode, ResponseMode::Passthrough);
    let out = ex.on_response_body(b"{\"data\":[]}", true).unwrap();
    assert!(out.unchanged && out.data.is_empty());
    assert_eq!(ex.api(), None);
    assert_eq!(ex.usage(), None);
}

#[test]
fn a_local_reply_then_passthrough_of_whatever_follows() {
    let mut ex = new_exchange();
    let RequestAction::LocalReply(r) = ex.on_request("POST", CHAT, &[], b"{oops").unwrap() else {
        panic!("expected a local reply");
    };
    assert_eq!(r.status, 400);
    validate_error(&serde_json::from_slice(&r.body).unwrap());
    // A host that still runs the response phase sees the reply's bytes left alone.
    assert_eq!(
        ex.on_response_headers(400, &[]).unwrap().mode,
        ResponseMode::Passthrough
    );
}

#[test]
fn buffered_reply_is_held_until_the_end_and_carries_usage() {
    let (mut ex, _) = forward(&config(OPENAI), CHAT, BODY);
    assert_eq!(ex.model_requested(), "gpt-4o");
    assert_eq!(ex.model_sent(), "gpt-4o");
    assert!(!ex.is_stream());
    let rh = ex
        .on_response_headers(200, &[("content-type", "application/json")])
        .unwrap();
    assert_eq!(rh.mode, ResponseMode::Buffer);
    let body = br#"{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
    let (a, b) = body.split_at(40);
    let first = ex.on_response_body(a, false).unwrap();
    assert!(first.data.is_empty() && first.status.is_none());
    let last = ex.on_response_body(b, true).unwrap();
    assert_eq!(last.status, Some(200));
    let v: Value = serde_json::from_slice(last.data).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "hello");
    assert_eq!(ex.usage(), Some(Usage::new(3, 2, Some(5))));
}

#[test]
fn upstream_errors_keep_their_status_and_become_openai_errors() {
    let (mut ex, _) = forward(&config(OPENAI), CHAT, BODY);
    let (status, out, mode) = respond(
        &mut ex,
        429,
        "application/json",
        br#"{"error":{"message":"slow down","type":"rate_limit"}}"#,
    );
    assert_eq!((status, mode), (429, ResponseMode::Buffer));
    let v: Value = serde_json::from_slice(&out).unwrap();
    validate_error(&v);
    assert_eq!(v["error"]["message"], "slow down");
}

#[test]
fn oversized_buffered_bodies_are_502_without_holding_them() {
    let c = config(OPENAI);
    let mut cfg = Config::new(c.provider.clone()).unwrap();
    cfg.max_response_bytes = 16;
    let cfg = Arc::new(cfg);
    let (mut ex, _) = forward(&cfg, CHAT, BODY);
    ex.on_response_headers(200, &[("content-type", "application/json")])
        .unwrap();
    ex.on_response_body(&[b' '; 10], false).unwrap();
    ex.on_response_body(&[b' '; 10], false).unwrap();
    let out = ex.on_response_body(b"", true).unwrap();
    assert_eq!(out.status, Some(502));
    let v: Value = serde_json::from_slice(out.data).unwrap();
    assert!(crate::testutil::error_message(&v).contains("exceeds 16 bytes"));
}

#[test]
fn streams_are_translated_per_chunk_and_end_once() {
    let stream_body = r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;
    let (mut ex, _) = forward(&config(OPENAI), CHAT, stream_body);
    assert!(ex.is_stream());
    let rh = ex
        .on_response_headers(200, &[("content-type", "text/event-stream")])
        .unwrap();
    assert_eq!(rh.mode, ResponseMode::Stream);
    let ev1 = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"he\"},\"finish_reason\":null}]}\n\n";
    let ev2 = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    let usage = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n";
    let mut out = Vec::new();
    // A partial event yields nothing until its blank line arrives.
    let (a, b) = ev1.split_at(20);
    assert!(ex
        .on_response_body(a.as_bytes(), false)
        .unwrap()
        .data
        .is_empty());
    out.extend_from_slice(ex.on_response_body(b.as_bytes(), false).unwrap().data);
    assert_eq!(
        out,
        ev1.as_bytes(),
        "conformant events pass through as they are"
    );
    out.extend_from_slice(ex.on_response_body(ev2.as_bytes(), false).unwrap().data);
    out.extend_from_slice(ex.on_response_body(usage.as_bytes(), false).unwrap().data);
    // The upstream closes without [DONE]: the exchange ends the stream itself, once.
    out.extend_from_slice(ex.on_response_body(b"", true).unwrap().data);
    let events = validate_sse_stream(&out);
    assert_eq!(events.len(), 3);
    assert_eq!(String::from_utf8(out).unwrap().matches("[DONE]").count(), 1);
    assert_eq!(ex.usage(), Some(Usage::new(1, 2, Some(3))));
}

#[test]
fn malformed_stream_data_becomes_one_error_event() {
    let stream_body =
        r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let (mut ex, _) = forward(&config(OPENAI), CHAT, stream_body);
    let (_, out, mode) = respond(
        &mut ex,
        200,
        "text/event-stream",
        b"data: {not json\n\ndata: {\"more\":1}\n\n",
    );
    assert_eq!(mode, ResponseMode::Stream);
    let events = validate_sse_stream(&out);
    assert_eq!(events.len(), 1, "{}", String::from_utf8_lossy(&out));
    assert_eq!(events[0]["error"]["type"], "upstream_error");
}

#[test]
fn context_callout_then_forward_with_the_text_prepended() {
    let cfg = config(
        r#"{"provider":{"type":"openai","apiTokens":["k"],"context":{"fileUrl":"http://files.svc/ctx.txt","serviceName":"files","servicePort":8080}}}"#,
    );
    let mut ex = Exchange::new(Arc::clone(&cfg));
    let RequestAction::Callout(c) = ex.on_request("POST", CHAT, &[], BODY.as_bytes()).unwrap()
    else {
        panic!("expected a callout");
    };
    assert_eq!(
        (
            c.cluster.as_str(),
            c.port,
            c.authority.as_str(),
            c.path.as_str()
        ),
        ("files", 8080, "files.svc", "/ctx.txt")
    );
    assert!(ex.on_request("POST", CHAT, &[], BODY.as_bytes()).is_err());
    let RequestAction::Forward(up) = ex.on_callout_response(200, b"Be brief.").unwrap() else {
        panic!("expected a forward");
    };
    let sent: Value = serde_json::from_slice(up.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    // A failed fetch is the client's 502, not a silent request without its context.
    let mut ex = Exchange::new(cfg);
    ex.on_request("POST", CHAT, &[], BODY.as_bytes()).unwrap();
    let RequestAction::LocalReply(r) = ex.on_callout_response(503, b"").unwrap() else {
        panic!("expected a local reply");
    };
    assert_eq!(r.status, 502);
}

#[test]
fn moonshot_file_fetch_is_the_providers_callout() {
    let cfg = config(
        r#"{"provider":{"type":"moonshot","apiTokens":["sk-moon"],"moonshotFileId":"f-1"}}"#,
    );
    let mut ex = Exchange::new(cfg);
    let RequestAction::Callout(c) = ex.on_request("POST", CHAT, &[], BODY.as_bytes()).unwrap()
    else {
        panic!("expected a callout");
    };
    assert_eq!(c.path, "/v1/files/f-1/content");
    let RequestAction::Forward(up) = ex
        .on_callout_response(200, br#"{"content":"file text","file_type":"txt"}"#)
        .unwrap()
    else {
        panic!("expected a forward");
    };
    let sent: Value = serde_json::from_slice(up.body.as_deref().unwrap()).unwrap();
    assert_eq!(sent["messages"][0]["content"], "file text");
}

#[test]
fn base64_embeddings_for_providers_that_only_send_floats() {
    use base64::Engine;
    let cfg = config(r#"{"provider":{"type":"gemini","apiTokens":["g-key"]}}"#);
    let (mut ex, up) = forward(
        &cfg,
        "/v1/embeddings",
        r#"{"model":"text-embedding-004","input":["a"],"encoding_format":"base64"}"#,
    );
    let sent: Value = serde_json::from_slice(up.body.as_deref().unwrap()).unwrap();
    assert!(sent.get("encoding_format").is_none(), "{sent}");
    // Gemini batchEmbedContents answer (ai.google.dev, "Embeddings").
    let (status, out, _) = respond(
        &mut ex,
        200,
        "application/json",
        br#"{"embeddings":[{"values":[0.5,-2.0]}]}"#,
    );
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&out).unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        bytes,
        [0.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat()
    );
    // OpenAI-family: the field reaches the provider, and a float answer is still encoded.
    let (mut ex, up) = forward(
        &config(OPENAI),
        "/v1/embeddings",
        r#"{"model":"text-embedding-3-small","input":"a","encoding_format":"base64"}"#,
    );
    let sent: Value = serde_json::from_slice(up.body.as_deref().unwrap()).unwrap();
    assert_eq!(sent["encoding_format"], "base64");
    let (_, out, _) = respond(
        &mut ex,
        200,
        "application/json",
        br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1.0]}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}"#,
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["data"][0]["embedding"], "AACAPw==");
    let c = config(OPENAI);
    let mut ex = Exchange::new(c);
    let RequestAction::LocalReply(r) = ex
        .on_request(
            "POST",
            "/v1/embeddings",
            &[],
            br#"{"model":"m","input":"a","encoding_format":"int8"}"#,
        )
        .unwrap()
    else {
        panic!("expected a local reply");
    };
    assert_eq!(r.status, 400);
}

#[test]
fn reasoning_content_mode_applies_to_openai_family_replies() {
    let cfg = config(
        r#"{"provider":{"type":"deepseek","apiTokens":["k"],"reasoningContentMode":"concat"}}"#,
    );
    let (mut ex, _) = forward(&cfg, CHAT, BODY);
    // DeepSeek's reasoner reply shape (api-docs.deepseek.com, "Reasoning Model").
    let (_, out, _) = respond(
        &mut ex,
        200,
        "application/json",
        br#"{"id":"d1","object":"chat.completion","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"message":{"role":"assistant","content":"42","reasoning_content":"think"},"finish_reason":"stop"}]}"#,
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "think\n\n42");
    let cfg = config(
        r#"{"provider":{"type":"deepseek","apiTokens":["k"],"reasoningContentMode":"ignore"}}"#,
    );
    let (mut ex, _) = forward(
        &cfg,
        CHAT,
        r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    let stream = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hmm\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    let (_, out, _) = respond(&mut ex, 200, "text/event-stream", stream.as_bytes());
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("hmm"), "{text}");
    assert!(text.contains("\"ok\""));
    let bad = Config::from_json(
        br#"{"provider":{"type":"openai","apiTokens":["k"],"reasoningContentMode":"loud"}}"#,
    )
    .unwrap_err();
    assert_eq!(bad.path, "provider.reasoningContentMode");
}
