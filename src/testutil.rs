//! Test support shared by every module's tests: validation of what we emit against OpenAI's
//! published schema (`../shared/spec/openai-openapi.yaml`), and a driver for whole exchanges.

use crate::exchange::{Config, Exchange, RequestAction, ResponseMode, UpstreamRequest};
use jsonschema::JSONSchema;
use once_cell::sync::Lazy;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

fn spec_path() -> PathBuf {
    std::env::var_os("AIPROXY_OPENAI_SPEC")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/spec/openai-openapi.yaml")
        })
}

/// OpenAPI 3.0 `nullable: true` → JSON Schema null, as the spec's README prescribes.
fn rewrite_nullable(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(rewrite_nullable),
        Value::Object(obj) => {
            for child in obj.values_mut() {
                rewrite_nullable(child);
            }
            if obj.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(t) = obj.get_mut("type") {
                    match t {
                        Value::String(s) => {
                            *t = Value::Array(vec![Value::String(s.clone()), "null".into()])
                        }
                        Value::Array(a) if !a.contains(&"null".into()) => a.push("null".into()),
                        _ => {}
                    }
                    if let Some(Value::Array(e)) = obj.get_mut("enum") {
                        e.push(Value::Null);
                    }
                } else if ["$ref", "anyOf", "oneOf", "allOf"]
                    .iter()
                    .any(|k| obj.contains_key(*k))
                {
                    let inner = Value::Object(std::mem::take(obj));
                    obj.insert(
                        "anyOf".into(),
                        Value::Array(vec![inner, serde_json::json!({"type": "null"})]),
                    );
                }
            }
        }
        _ => {}
    }
}

static SCHEMAS: Lazy<Value> = Lazy::new(|| {
    let text = std::fs::read_to_string(spec_path())
        .expect("read OpenAI spec (../shared/spec/openai-openapi.yaml)");
    // The YAML parser cannot hold integers beyond 64 bits (the spec has a few bounds like that):
    // write those as floats.
    let text: String = text
        .lines()
        .map(|line| match line.rsplit_once(": ") {
            Some((k, v))
                if v.len() >= 19
                    && v.trim_start_matches('-')
                        .bytes()
                        .all(|b| b.is_ascii_digit()) =>
            {
                format!("{k}: {v}.0\n")
            }
            _ => format!("{line}\n"),
        })
        .collect();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("parse OpenAI spec");
    let doc = yaml_to_json(doc);
    let mut schemas = doc["components"]["schemas"].clone();
    rewrite_nullable(&mut schemas);
    schemas
});

/// YAML → JSON, keeping numbers JSON cannot hold as integers (the spec has some) as floats.
fn yaml_to_json(v: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_u64().map(Value::from))
            .or_else(|| {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
            })
            .unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_yaml::to_string(&other)
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(t) => yaml_to_json(t.value),
    }
}

static COMPILED: Lazy<parking_lot::Mutex<HashMap<&'static str, Arc<JSONSchema>>>> =
    Lazy::new(Default::default);

fn schema(name: &'static str) -> Arc<JSONSchema> {
    let mut cache = COMPILED.lock();
    cache
        .entry(name)
        .or_insert_with(|| {
            let mut root = Map::new();
            root.insert("$ref".into(), format!("#/components/schemas/{name}").into());
            root.insert(
                "components".into(),
                serde_json::json!({"schemas": SCHEMAS.clone()}),
            );
            Arc::new(
                JSONSchema::options()
                    .should_validate_formats(false)
                    .compile(&Value::Object(root))
                    .unwrap_or_else(|e| panic!("compile schema {name}: {e}")),
            )
        })
        .clone()
}

fn validate(name: &'static str, v: &Value) {
    let s = schema(name);
    if let Err(errors) = s.validate(v) {
        let msgs: Vec<String> = errors
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        panic!(
            "not a valid {name}: {msgs:?}\n{}",
            serde_json::to_string_pretty(v).unwrap()
        );
    };
}

pub fn validate_chat_completion(v: &Value) {
    validate("CreateChatCompletionResponse", v);
}

pub fn validate_chunk(v: &Value) {
    validate("CreateChatCompletionStreamResponse", v);
}

pub fn validate_embeddings(v: &Value) {
    validate("CreateEmbeddingResponse", v);
}

pub fn validate_error(v: &Value) {
    validate("ErrorResponse", v);
}

/// Parses an emitted OpenAI SSE stream: every event is `data: <chunk or error>` followed by a
/// blank line, the last is `data: [DONE]`. Validates each; returns the JSON events.
pub fn validate_sse_stream(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).expect("stream is UTF-8");
    assert!(
        text.ends_with("data: [DONE]\n\n"),
        "stream must end with data: [DONE]: {text:?}"
    );
    let mut events = Vec::new();
    for block in text.split_terminator("\n\n") {
        let data = block
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not a data event: {block:?}"));
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data)
            .unwrap_or_else(|e| panic!("event is not JSON ({e}): {data}"));
        if v.get("error").is_some() {
            validate_error(&v);
        } else {
            validate_chunk(&v);
        }
        events.push(v);
    }
    assert_eq!(
        text.matches("data: [DONE]").count(),
        1,
        "exactly one [DONE]"
    );
    events
}

/// Concatenated `delta.content` of choice 0 over a stream's chunks.
pub fn stream_text(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"].get(0)?.get("delta")?.get("content")?.as_str())
        .collect()
}

/// The non-null `finish_reason`s of choice 0 over a stream's chunks, in order.
pub fn stream_finishes(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter_map(|e| e["choices"].get(0))
        .map(|c| &c["finish_reason"])
        .filter(|f| !f.is_null())
        .collect()
}

/// The stream's last chunk is the usage chunk (no choices) with these counts.
pub fn assert_usage_chunk(events: &[Value], prompt: u64, completion: u64, total: u64) {
    let last = events.last().expect("a chunk");
    assert_eq!(last["choices"], serde_json::json!([]));
    assert_eq!(
        last["usage"],
        serde_json::json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total})
    );
}

pub fn config(json: &str) -> Arc<Config> {
    Config::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("config rejected: {e}"))
}

/// A config for provider `kind` with one API token; `extra` is appended to the provider
/// object (`, "field": value, ...`).
pub fn token_config(kind: &str, token: &str, extra: &str) -> Arc<Config> {
    config(&format!(
        r#"{{"provider": {{"type": "{kind}", "apiTokens": ["{token}"]{extra}}}}}"#
    ))
}

/// The content type every JSON request of the tests carries.
pub const JSON_HEADERS: &[(&str, &str)] = &[("content-type", "application/json")];

/// Runs the request step of a new exchange.
pub fn request_with(
    cfg: &Arc<Config>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (Exchange, RequestAction) {
    let mut ex = Exchange::new(Arc::clone(cfg));
    let action = ex.on_request(method, path, headers, body).unwrap();
    (ex, action)
}

/// Runs the request step of a JSON `POST`.
pub fn request(cfg: &Arc<Config>, path: &str, body: &str) -> (Exchange, RequestAction) {
    request_with(cfg, "POST", path, JSON_HEADERS, body.as_bytes())
}

/// The forward a request step returned; panics on any other action.
pub fn expect_forward((ex, action): (Exchange, RequestAction)) -> (Exchange, UpstreamRequest) {
    match action {
        RequestAction::Forward(up) => (ex, up),
        other => panic!("expected a forward, got {other:?}"),
    }
}

/// The local reply a request step returned: its status and its (validated) error body; panics
/// on any other action.
pub fn expect_local_reply(action: RequestAction) -> (u16, Value) {
    match action {
        RequestAction::LocalReply(r) => {
            let v: Value = serde_json::from_slice(&r.body).expect("local reply is JSON");
            validate_error(&v);
            (r.status, v)
        }
        other => panic!("expected a local reply, got {other:?}"),
    }
}

/// Runs the request step and expects a forward.
pub fn forward(cfg: &Arc<Config>, path: &str, body: &str) -> (Exchange, UpstreamRequest) {
    expect_forward(request(cfg, path, body))
}

/// Runs the request step and expects a local reply: its status and its (validated) error body.
pub fn local_reply(cfg: &Arc<Config>, path: &str, body: &str) -> (u16, Value) {
    expect_local_reply(request(cfg, path, body).1)
}

/// The `error.message` of an OpenAI-shaped error body.
pub fn error_message(v: &Value) -> &str {
    v["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {v}"))
}

/// A chat completions request that must be answered locally with a 400; its error body.
pub fn rejected_chat(cfg: &Arc<Config>, body: &str) -> Value {
    let (status, v) = local_reply(cfg, "/v1/chat/completions", body);
    assert_eq!(status, 400, "{v}");
    v
}

/// The upstream body a forward carries, parsed.
pub fn upstream_json(up: &UpstreamRequest) -> Value {
    serde_json::from_slice(up.body.as_deref().expect("body replaced"))
        .expect("upstream body is JSON")
}

pub fn header<'a>(up: &'a UpstreamRequest, name: &str) -> Option<&'a str> {
    up.set_headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Feeds a response whole (one chunk) and returns (status, output, mode).
pub fn respond(
    ex: &mut Exchange,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> (u16, Vec<u8>, ResponseMode) {
    respond_split(ex, status, content_type, body, &[])
}

/// Feeds a JSON response whole; returns (status, output parsed as JSON).
pub fn respond_json(ex: &mut Exchange, status: u16, body: &[u8]) -> (u16, Value) {
    let (status, out, _) = respond(ex, status, "application/json", body);
    let v = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out)));
    (status, v)
}

/// Feeds a JSON body (status 200) that must reach the client unchanged (passthrough mode).
pub fn assert_passthrough(ex: &mut Exchange, body: &[u8]) {
    let (_, out, mode) = respond(ex, 200, "application/json", body);
    assert_eq!((mode, out.as_slice()), (ResponseMode::Passthrough, body));
}

/// Feeds a JSON chat completion (status 200) that must be buffered; returns the translated body,
/// validated against OpenAI's schema.
pub fn buffered_completion(ex: &mut Exchange, body: &[u8]) -> Value {
    let (status, out, mode) = respond(ex, 200, "application/json", body);
    assert_eq!((status, mode), (200, ResponseMode::Buffer));
    let v = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out)));
    validate_chat_completion(&v);
    v
}

/// A buffered reply whose choice 0 is a finished (`stop`) text turn with this content.
pub fn assert_text_reply(v: &Value, content: &str) {
    assert_eq!(v["choices"][0]["message"]["content"], content);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

/// A local reply (status, error body) that refuses a feature the provider lacks: a 400 with
/// code `unsupported_feature`.
pub fn assert_unsupported((status, v): &(u16, Value)) {
    assert_eq!(
        (*status, v["error"]["code"].as_str()),
        (400, Some("unsupported_feature")),
        "{v}"
    );
}

/// A buffered reply whose choice 0 is a tool-call turn: finish reason `tool_calls`, no content,
/// and these `tool_calls`.
pub fn assert_tool_call_reply(v: &Value, tool_calls: Value) {
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    assert_eq!(choice["message"]["tool_calls"], tool_calls);
}

/// The usage of a translated body and the exchange's usage counts both say
/// (prompt, completion, total).
pub fn assert_usage(v: &Value, ex: &Exchange, prompt: u64, completion: u64, total: u64) {
    assert_eq!(
        v["usage"],
        serde_json::json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total})
    );
    let u = ex.usage().expect("usage seen");
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (prompt, completion, total)
    );
}

/// Feeds a JSON response whole that must come out as a (valid) OpenAI error body; returns
/// (status sent, error body).
pub fn respond_error(ex: &mut Exchange, status: u16, body: &[u8]) -> (u16, Value) {
    let (status, v) = respond_json(ex, status, body);
    validate_error(&v);
    (status, v)
}

/// Feeds an upstream event stream whole (status 200); returns the (validated) chunks sent to
/// the client.
pub fn stream_events(ex: &mut Exchange, sse: &[u8]) -> Vec<Value> {
    let (_, out, _) = respond(ex, 200, "text/event-stream", sse);
    validate_sse_stream(&out)
}

/// Feeds an upstream event stream (status 200) that must be streamed and come out as exactly one
/// (valid) in-stream error event; returns its `error` object.
pub fn stream_error(ex: &mut Exchange, sse: &[u8]) -> Value {
    let (_, out, mode) = respond(ex, 200, "text/event-stream", sse);
    assert_eq!(mode, ResponseMode::Stream);
    let mut events = validate_sse_stream(&out);
    assert_eq!(events.len(), 1, "{events:?}");
    let error = events[0]["error"].take();
    assert!(!error.is_null(), "not an error event: {events:?}");
    error
}

/// Feeds a response split at the given byte offsets; returns (final status, concatenated output, mode).
pub fn respond_split(
    ex: &mut Exchange,
    status: u16,
    content_type: &str,
    body: &[u8],
    splits: &[usize],
) -> (u16, Vec<u8>, ResponseMode) {
    let rh = ex
        .on_response_headers(status, &[("content-type", content_type)])
        .unwrap();
    let mut out = Vec::new();
    let mut final_status = status;
    let mut start = 0;
    let mut cuts: Vec<usize> = splits
        .iter()
        .copied()
        .filter(|&s| s <= body.len())
        .collect();
    cuts.push(body.len());
    for (i, &end) in cuts.iter().enumerate() {
        let end = end.max(start);
        let last = i + 1 == cuts.len();
        let r = ex.on_response_body(&body[start..end], last).unwrap();
        if r.unchanged {
            out.extend_from_slice(&body[start..end]);
        } else {
            out.extend_from_slice(r.data);
        }
        if let Some(s) = r.status {
            final_status = s;
        }
        start = end;
    }
    (final_status, out, rh.mode)
}

/// Chunking invariance: the same upstream stream split at every byte boundary (and byte by byte)
/// gives the same client-visible events as fed whole. `make` builds a fresh forwarded exchange.
/// Ids/created are compared after being blanked, since they may be generated per exchange.
pub fn assert_chunking_invariant(
    mut make: impl FnMut() -> Exchange,
    content_type: &str,
    body: &[u8],
) {
    fn canon(out: &[u8]) -> Vec<Value> {
        let mut evs = validate_sse_stream(out);
        for e in &mut evs {
            if let Some(o) = e.as_object_mut() {
                o.remove("id");
                o.remove("created");
            }
            // Generated tool-call ids are random per exchange.
            for c in e["choices"].as_array_mut().into_iter().flatten() {
                for t in c["delta"]["tool_calls"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                {
                    if t.get("id").is_some() {
                        t["id"] = "call_*".into();
                    }
                }
            }
        }
        evs
    }
    let (_, whole, mode) = respond(&mut make(), 200, content_type, body);
    assert_eq!(mode, ResponseMode::Stream);
    let want = canon(&whole);
    for i in 0..=body.len() {
        let (_, out, _) = respond_split(&mut make(), 200, content_type, body, &[i]);
        assert_eq!(canon(&out), want, "split at byte {i}");
    }
    let all: Vec<usize> = (1..body.len()).collect();
    let (_, out, _) = respond_split(&mut make(), 200, content_type, body, &all);
    assert_eq!(canon(&out), want, "byte by byte");
}

/// Contents for the free strings of random-edit tests: plain text, UTF-8 of every width (some cut
/// short), every escape (valid, lone surrogate, malformed), control bytes, invalid bytes, and a
/// raw quote or backslash.
pub const STRING_PIECES: [&[u8]; 22] = [
    b"a",
    b"word ",
    b"\xc3\xa9",
    b"\xe4\xb8\xad",
    b"\xf0\x9f\x98\x80",
    br"\n",
    br#"\""#,
    br"\\",
    br"\/",
    br"\u00e9",
    br"\uD83D\uDE00",
    br"\ud800",
    b"\x01",
    b"\x1f",
    b"\t",
    b"\xff",
    b"\xc3",
    b"\xe4\xb8",
    b"\"",
    b"\\",
    br"\x",
    br"\u12",
];

/// Appends random contents for a free string to `b`: a plain run, then up to three pieces of
/// [`STRING_PIECES`] (mostly the first six: text and valid UTF-8) with plain runs between.
pub fn push_random_string_content(rng: &mut rand::rngs::StdRng, b: &mut Vec<u8>) {
    use rand::Rng;
    b.extend((0..rng.gen_range(0..9)).map(|_| b'x'));
    for _ in 0..rng.gen_range(0..4) {
        let piece = if rng.gen_bool(0.8) {
            &STRING_PIECES[..6]
        } else {
            &STRING_PIECES[..]
        };
        b.extend_from_slice(piece[rng.gen_range(0..piece.len())]);
        b.extend((0..rng.gen_range(0..3)).map(|_| b'y'));
    }
}

/// One random edit of `b` anywhere: a byte removed, the first byte of a [`STRING_PIECES`] entry
/// inserted, or a byte replaced by JSON punctuation, a digit or a letter.
pub fn random_structural_edit(rng: &mut rand::rngs::StdRng, b: &mut Vec<u8>) {
    use rand::Rng;
    let at = rng.gen_range(0..b.len());
    match rng.gen_range(0..3) {
        0 => {
            b.remove(at);
        }
        1 => b.insert(at, STRING_PIECES[rng.gen_range(0..STRING_PIECES.len())][0]),
        _ => b[at] = b"{}[]\":,0ex "[rng.gen_range(0..11)],
    }
}

/// One to three random byte edits of `b` for the property tests: a byte removed, inserted or
/// replaced (from `alphabet`), or, for a kind in `3..kinds`, whatever `other` does at that
/// offset. The draws from `rng` are always in this order, so seeded tests stay reproducible.
pub fn random_edits_with(
    rng: &mut rand::rngs::StdRng,
    b: &mut Vec<u8>,
    alphabet: &[u8],
    kinds: u32,
    mut other: impl FnMut(&mut rand::rngs::StdRng, &mut Vec<u8>),
) {
    use rand::Rng;
    for _ in 0..rng.gen_range(1..4) {
        let at = rng.gen_range(0..b.len());
        match rng.gen_range(0..kinds) {
            0 => {
                b.remove(at);
            }
            1 => b.insert(at, alphabet[rng.gen_range(0..alphabet.len())]),
            2 => b[at] = alphabet[rng.gen_range(0..alphabet.len())],
            _ => other(rng, b),
        }
    }
}

/// [`random_edits_with`] with only the three byte edits.
pub fn random_edits(rng: &mut rand::rngs::StdRng, b: &mut Vec<u8>, alphabet: &[u8]) {
    random_edits_with(rng, b, alphabet, 3, |_, _| {});
}
