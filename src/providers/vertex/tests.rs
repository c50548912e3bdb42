//! Vertex: the RS256 JWT checked against the public key (with the `rsa` crate's verifier and,
//! independently, the `openssl` command line), the token callout and its cache, Gemini and Claude
//! on Vertex, express mode. Fixture shapes: Vertex AI REST reference (`generateContent`,
//! `rawPredict`), Google's OAuth 2.0 server-to-server guide (token request and answer).

use super::auth::ServiceAccount;
use crate::exchange::{Config, Exchange, RequestAction, ResponseMode};
use crate::testutil::{self, header, respond, upstream_json, validate_sse_stream};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::sync::Arc;

/// A 2048-bit RSA key generated for these tests only (`openssl genpkey -algorithm RSA`).
const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCXO3qDpSTl2ZYW\nosRuvmo37PVWWHdPqIKJwOA9HSEYi8SBTj7/pTkynOJGcnNxGjhshiqHkFY+iqcI\nQeHospWHaY73g8zQq45Of8fkXnbH6UcZWNQVyWpozehUEu8P+X/RpZ5/QEwyOHcI\nYXamwA5du+ww+7EsCDfQSin4rrkcFrJzj3A6B1r90c3IBD1CcLzbx00R4rjqRhDu\nbfReTwu0jtBfko/wd++VDeGyZ6q4txWSeYqAxgx8idbwfDjbOqdWsqu3r0X5V8o5\nb/+EPUecd5gcxL+c88O6MT2R6F2M2rMoFkIwal6uqrdGqFSIlASaDa9zz7+5SpYT\npSJM3lIBAgMBAAECggEAA9zN3b6M3olRTIW0DPy0W3ZOs88G8764NXV6z1ocRh4N\nEvJhKIgF7yAo+qdMrIGrbut5pZm5oiz0uYDD7idgK05hC5BPCFtWrfQ/MjrOv39a\nmgVLRr0ssxLjPAEkdZzSjL5f+ccLddLnCLdDNQdoYTDTW6g/V60OuTVTtMQdpTUj\nJPHPl5fbW64gt23QpRnmx/L+aa2ijpa3OuzD3EChCJT3VeCxpcbOkIOQ/ofex/yE\nv0WVihLoL6jNn2H3U+I0UCpWzwhMYCU6AHbx1zaf3dAf94BF2R+wDw1iDHsuuBO3\nkRkHEjiUnxztlmI8nWPXxAj4B+ppp5J5fOu8VIB2+wKBgQDFXNEGpL9tBrNDg6c7\ndPiFASw9W5r5I/FA9PYFDjCUDwhmHDCvPB48np5N9POY9lDL8nQ2+UdLSuKGhifF\nNtfOcYGhCXBJBHTaGcncYUffslvm+R4s9PpttpilY4PXqJZyrzlnSbGwuRn9qH8W\nA3blVg73CSIT4qjBMhi4Fh0n2wKBgQDEKgv/457pA7a1QrojO7vjP6iXpsZZcpRC\nm9fPwNBLqzwmEyZnoTBGp+fJ3eXcm7xbwVzQDRk2T+mLx49ngZY7NMZXyIKg0ULC\nY96Tx6hJB5oU3SiY0K04IMqd3GFU4osEREL4IE51rB6zjezVC/1p64713cAqoULR\n1pQzuucSUwKBgEqRI+RnsG+H3Yj/n9qF+jN+WvGfv7Cr1MXfB2inkNEP0POLaRV8\nGEx8/YCksLi1L5euthvjGP2ogGelHjeT3fuAxSJLx6G+zkts/OiH1Lj+0Vw1+SGx\nOUDkgU3TiIediaIw8/ZDUKBdfyVoWQO/MVe6qRLK35Y1x96eh9pdeIyLAoGACQxj\nd085kkgAkoXcbimgNhBGp5Ai0Bdv7U6g+s1LDmJ8qMjzWY5e2rN+Bpq8sptgad8W\nd+ZSxmWTQUZYQA8DLgH2MDBojiB48tyGdMyd35iBK/szlzDw/IjOr89tkevNO8om\nSKm81MK2u9ONHBqseslJ09+BsLW1jlZWibhSVk8CgYBZTU38DJrI2/m8yPvrISew\nt7JcM5clxflfInEF6WtBLzdZgNjDRH5F1Unzwt2JEIuEfQerSHuLYntJvtAzkllx\nHiaITD9yFPqeyvkj0+Rh8PrRrlSKWLbLa9mK7gCGd42RAwxja4FnD3o7EWcXdUsS\nXL+t8mY6LOipdTXqHYED1g==\n-----END PRIVATE KEY-----\n";
const TEST_PUB: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAlzt6g6Uk5dmWFqLEbr5q\nN+z1Vlh3T6iCicDgPR0hGIvEgU4+/6U5MpziRnJzcRo4bIYqh5BWPoqnCEHh6LKV\nh2mO94PM0KuOTn/H5F52x+lHGVjUFclqaM3oVBLvD/l/0aWef0BMMjh3CGF2psAO\nXbvsMPuxLAg30Eop+K65HBayc49wOgda/dHNyAQ9QnC828dNEeK46kYQ7m30Xk8L\ntI7QX5KP8HfvlQ3hsmequLcVknmKgMYMfInW8Hw42zqnVrKrt69F+VfKOW//hD1H\nnHeYHMS/nPPDujE9kehdjNqzKBZCMGperqq3RqhUiJQEmg2vc8+/uUqWE6UiTN5S\nAQIDAQAB\n-----END PUBLIC KEY-----\n";

/// A service account key (also `openai::chat_read_tests`' Vertex configs).
pub(crate) fn sa_json() -> String {
    json!({
        "type": "service_account",
        "project_id": "your-project-id",
        "private_key_id": "key-id-1",
        "private_key": TEST_KEY,
        "client_email": "svc@your-project-id.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token"
    })
    .to_string()
}

fn sa_cfg() -> Arc<Config> {
    let provider = json!({
        "type": "vertex",
        "vertexAuthKey": sa_json(),
        "vertexRegion": "us-central1",
        "vertexProjectId": "your-project-id",
        "vertexAuthServiceName": "google-oauth",
    });
    testutil::config(&json!({ "provider": provider }).to_string())
}

fn request(cfg: &Arc<Config>, body: &str) -> (Exchange, RequestAction) {
    testutil::request(cfg, "/v1/chat/completions", body)
}

const HELLO: &str =
    r#"{"model":"gemini-2.0-flash-001","messages":[{"role":"user","content":"Hello"}]}"#;

/// Checks an RS256 JWT with `openssl dgst -sha256 -verify`, an implementation independent of ours.
fn openssl_verifies(signing_input: &[u8], sig: &[u8]) -> bool {
    let dir = std::env::temp_dir().join(format!(
        "aiproxy-vertex-jwt-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (p, d, s) = (dir.join("pub.pem"), dir.join("data"), dir.join("sig"));
    std::fs::write(&p, TEST_PUB).unwrap();
    std::fs::write(&d, signing_input).unwrap();
    std::fs::write(&s, sig).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&p)
        .arg("-signature")
        .arg(&s)
        .arg(&d)
        .output()
        .expect("the openssl command line is installed");
    let _ = std::fs::remove_dir_all(&dir);
    out.status.success()
}

#[test]
fn jwt_is_rs256_signed_by_the_service_account_key() {
    let sa = ServiceAccount::parse(&sa_json(), "provider.vertexAuthKey").unwrap();
    let jwt = sa.assertion(1_700_000_000);
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let dec =
        |s: &str| -> Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap() };
    assert_eq!(
        dec(parts[0]),
        json!({"alg": "RS256", "typ": "JWT", "kid": "key-id-1"})
    );
    assert_eq!(
        dec(parts[1]),
        json!({
            "iss": "svc@your-project-id.iam.gserviceaccount.com",
            "scope": "https://www.googleapis.com/auth/cloud-platform",
            "aud": "https://oauth2.googleapis.com/token",
            "iat": 1_700_000_000u64,
            "exp": 1_700_003_600u64,
        })
    );
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    assert_eq!(sig.len(), 256);
    assert!(openssl_verifies(signing_input.as_bytes(), &sig));
    // The rsa crate's verifier agrees; a changed claim does not verify.
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(
        rsa::RsaPublicKey::from_public_key_pem(TEST_PUB).unwrap(),
    );
    let signature = rsa::pkcs1v15::Signature::try_from(sig.as_slice()).unwrap();
    vk.verify(signing_input.as_bytes(), &signature).unwrap();
    let mut tampered = signing_input.clone().into_bytes();
    tampered[5] ^= 1;
    assert!(vk.verify(&tampered, &signature).is_err());
    assert!(!openssl_verifies(&tampered, &sig));
}

#[test]
fn token_callout_then_cached_token() {
    let cfg = sa_cfg();
    let (mut ex, action) = request(&cfg, HELLO);
    let RequestAction::Callout(c) = action else {
        panic!("expected the token callout, got {action:?}");
    };
    assert_eq!(
        (
            c.cluster.as_str(),
            c.authority.as_str(),
            c.path.as_str(),
            c.method
        ),
        ("google-oauth", "oauth2.googleapis.com", "/token", "POST")
    );
    let form = String::from_utf8(c.body.clone()).unwrap();
    let assertion = form
        .strip_prefix("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=")
        .expect("jwt-bearer grant");
    let parts: Vec<&str> = assertion.split('.').collect();
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    assert!(openssl_verifies(
        format!("{}.{}", parts[0], parts[1]).as_bytes(),
        &sig
    ));
    // Google's token answer.
    let answer = br#"{"access_token":"ya29.test-token","expires_in":3599,"token_type":"Bearer"}"#;
    let RequestAction::Forward(up) = ex.on_callout_response(200, answer).unwrap() else {
        panic!("expected a forward");
    };
    assert_eq!(up.authority, "us-central1-aiplatform.googleapis.com");
    assert_eq!(
        up.path,
        "/v1/projects/your-project-id/locations/us-central1/publishers/google/models/gemini-2.0-flash-001:generateContent"
    );
    assert_eq!(header(&up, "authorization"), Some("Bearer ya29.test-token"));
    assert_eq!(
        upstream_json(&up)["contents"],
        json!([{"role": "user", "parts": [{"text": "Hello"}]}])
    );
    // Vertex answers in Gemini's shape.
    let reply = json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi there"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
        "modelVersion": "gemini-2.0-flash-001"
    });
    let (status, v) = testutil::respond_json(&mut ex, 200, reply.to_string().as_bytes());
    assert_eq!(status, 200);
    testutil::validate_chat_completion(&v);
    assert_eq!(v["choices"][0]["message"]["content"], "Hi there");

    // The next request of this config uses the cached token: no callout.
    let (_, action) = request(&cfg, HELLO);
    let RequestAction::Forward(up) = action else {
        panic!("expected a forward from the cache, got {action:?}");
    };
    assert_eq!(header(&up, "authorization"), Some("Bearer ya29.test-token"));
    // A token about to expire is fetched again (refresh ahead).
    let cfg2 = sa_cfg();
    let (mut ex, _) = request(&cfg2, HELLO);
    ex.on_callout_response(200, br#"{"access_token":"short","expires_in":30}"#)
        .unwrap();
    let (_, action) = request(&cfg2, HELLO);
    assert!(matches!(action, RequestAction::Callout(_)), "{action:?}");
}

#[test]
fn token_failure_is_a_502_without_secrets() {
    let (mut ex, action) = request(&sa_cfg(), HELLO);
    let RequestAction::Callout(c) = action else {
        panic!("expected a callout");
    };
    let assertion = String::from_utf8(c.body).unwrap();
    let RequestAction::LocalReply(r) = ex
        .on_callout_response(
            400,
            br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
        )
        .unwrap()
    else {
        panic!("expected a local reply");
    };
    assert_eq!(r.status, 502);
    let body = String::from_utf8(r.body).unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    testutil::validate_error(&v);
    assert_eq!(v["error"]["code"], "vertex_token_failed");
    assert!(body.contains("invalid_grant"));
    let jwt = assertion.rsplit('=').next().unwrap();
    assert!(!body.contains(jwt) && !body.contains("PRIVATE KEY"));
}

#[test]
fn claude_on_vertex_streams_through_stream_raw_predict() {
    let cfg = sa_cfg();
    let body = r#"{"model":"claude-3-5-sonnet-v2@20241022","stream":true,"messages":[{"role":"user","content":"Hello"}]}"#;
    let (mut ex, action) = request(&cfg, body);
    let up = match action {
        RequestAction::Callout(_) => match ex
            .on_callout_response(200, br#"{"access_token":"ya29.c","expires_in":3599}"#)
            .unwrap()
        {
            RequestAction::Forward(up) => up,
            other => panic!("{other:?}"),
        },
        RequestAction::Forward(up) => up,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        up.path,
        "/v1/projects/your-project-id/locations/us-central1/publishers/anthropic/models/claude-3-5-sonnet-v2@20241022:streamRawPredict"
    );
    let b = upstream_json(&up);
    assert_eq!(b["anthropic_version"], "vertex-2023-10-16");
    assert!(b.get("model").is_none());
    assert_eq!(b["stream"], true);
    assert!(b["max_tokens"].is_u64());
    // Anthropic's stream events, as Vertex relays them.
    let sse = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_vrtx_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-3-5-sonnet-v2-20241022\",\"content\":[],\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi!\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let (_, out, mode) = respond(&mut ex, 200, "text/event-stream", sse.as_bytes());
    assert_eq!(mode, ResponseMode::Stream);
    let events = validate_sse_stream(&out);
    assert_eq!(testutil::stream_text(&events), "Hi!");
}

#[test]
fn express_mode_uses_the_api_key() {
    let cfg = testutil::config(
        r#"{"provider": {"type": "vertex", "apiTokens": ["AQ.express-key"],
            "vertexGeminiSafetySetting": {"HARM_CATEGORY_HARASSMENT": "BLOCK_NONE"}}}"#,
    );
    let stream = r#"{"model":"gemini-2.5-flash","stream":true,"messages":[{"role":"user","content":"Hello"}]}"#;
    let (_, action) = request(&cfg, stream);
    let RequestAction::Forward(up) = action else {
        panic!("express mode needs no callout: {action:?}");
    };
    assert_eq!(up.authority, "aiplatform.googleapis.com");
    assert_eq!(
        up.path,
        "/v1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(header(&up, "x-goog-api-key"), Some("AQ.express-key"));
    assert_eq!(
        upstream_json(&up)["safetySettings"],
        json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}])
    );
    let v = testutil::rejected_chat(
        &cfg,
        r#"{"model":"claude-3-5-haiku@20241022","messages":[{"role":"user","content":"x"}]}"#,
    );
    assert!(crate::testutil::error_message(&v).contains("express"));
}

/// Higress's "Vertex image generation" example, unchanged: its `geminiSafetySetting` (the field
/// Higress's vertex provider reads) reaches Vertex; with the other spelling too it is refused.
#[test]
fn higress_gemini_safety_setting_example_applies() {
    let example = r#"{"provider": {"type": "vertex", "apiTokens": ["YOUR_API_KEY"],
        "modelMapping": {"dall-e-3": "gemini-2.0-flash-exp"},
        "geminiSafetySetting": {"HARM_CATEGORY_HARASSMENT": "OFF", "HARM_CATEGORY_HATE_SPEECH": "OFF",
            "HARM_CATEGORY_SEXUALLY_EXPLICIT": "OFF", "HARM_CATEGORY_DANGEROUS_CONTENT": "OFF"}}}"#;
    let cfg = testutil::config(example);
    assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
    let chat = r#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"Hello"}]}"#;
    let (_, action) = request(&cfg, chat);
    let RequestAction::Forward(up) = action else {
        panic!("express mode needs no callout: {action:?}");
    };
    let settings = upstream_json(&up)["safetySettings"].clone();
    assert_eq!(settings.as_array().map(Vec::len), Some(4), "{settings}");
    assert!(settings
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["threshold"] == "OFF"));
    assert_eq!(
        settings[0],
        json!({"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"})
    );
    let both = r#"{"provider": {"type": "vertex", "apiTokens": ["k"],
        "geminiSafetySetting": {"HARM_CATEGORY_HARASSMENT": "OFF"},
        "vertexGeminiSafetySetting": {"HARM_CATEGORY_HARASSMENT": "OFF"}}}"#;
    let e = Config::from_json(both.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("provider.vertexGeminiSafetySetting"), "{e}");
}

#[test]
fn configs() {
    // Higress's README examples ("Google Vertex AI": standard mode, with a real key in place of
    // the elided one, and express mode) load.
    sa_cfg();
    Config::from_json(br#"{"provider": {"type": "vertex", "apiTokens": ["YOUR_API_KEY"]}}"#)
        .unwrap();
    let err = |j: Value| {
        Config::from_json(json!({ "provider": j }).to_string().as_bytes())
            .unwrap_err()
            .to_string()
    };
    assert!(err(json!({"type": "vertex"})).contains("vertexAuthKey"));
    let e = err(
        json!({"type": "vertex", "vertexAuthKey": sa_json(), "vertexRegion": "us-central1",
        "vertexProjectId": "p"}),
    );
    assert!(e.contains("vertexAuthServiceName"), "{e}");
    // A broken key is refused without echoing it.
    let e = err(
        json!({"type": "vertex", "vertexAuthKey": "{\"client_email\":\"a@b\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nSECRETSTUFF\\n-----END PRIVATE KEY-----\\n\"}",
        "vertexRegion": "us-central1", "vertexProjectId": "p", "vertexAuthServiceName": "s"}),
    );
    assert!(e.contains("PKCS#8") && !e.contains("SECRETSTUFF"), "{e}");
    let e = err(
        json!({"type": "vertex", "vertexAuthKey": sa_json(), "vertexRegion": "us-central1.evil",
        "vertexProjectId": "p", "vertexAuthServiceName": "s"}),
    );
    assert!(e.contains("vertexRegion"), "{e}");
    let e =
        err(json!({"type": "vertex", "vertexOpenAICompatible": true, "vertexAuthKey": sa_json()}));
    assert!(e.contains("vertexOpenAICompatible"), "{e}");
}
