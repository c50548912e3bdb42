//! Shared by the fuzz targets: the configurations every provider is exercised with, the input
//! framing, chunk splitting, output normalisation and the shape checks.
//!
//! Input framing (all targets): a few control bytes, then sections separated by [`SEP`]. The first
//! section is always the main payload (a body or a stream), so a fixture file with the control
//! bytes in front is a valid seed as it is.
#![allow(dead_code)]

use aiproxy::{ClientProtocol, Config, Exchange, RequestAction};
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// Section separator: two bytes that never occur in UTF-8 text.
pub const SEP: &[u8] = b"\xfe\xff";

/// Tokens and signing keys of the configurations below: no error body may contain them.
pub const SECRETS: &[&str] = &[
    "sk-fuzz-SECRET-0001",
    "sk-fuzz-SECRET-0002",
    "fuzzSecretId0001",
    "fuzzSecretKey0001",
];

/// One configuration per provider type, plus the variants that change code paths (context
/// callouts, Moonshot files, MiniMax Pro, custom URL, several tokens, `protocol: original`,
/// customSettings, responseJsonSchema).
pub const CONFIGS: &[&str] = &[
    r#"{"provider":{"type":"openai","apiTokens":["sk-fuzz-SECRET-0001"]}}"#,
    r#"{"provider":{"type":"azure","apiTokens":["sk-fuzz-SECRET-0001"],"azureServiceUrl":"https://res.openai.azure.com/openai/deployments/dep/chat/completions?api-version=2024-02-15-preview"}}"#,
    r#"{"provider":{"type":"moonshot","apiTokens":["sk-fuzz-SECRET-0001"]}}"#,
    r#"{"provider":{"type":"qwen","apiTokens":["sk-fuzz-SECRET-0001"],"modelMapping":{"gpt-4o":"qwen-vl-plus","*":"qwen-turbo"}}}"#,
    r#"{"provider":{"type":"baichuan","apiTokens":["sk-fuzz-SECRET-0001"]}}"#,
    r#"{"provider":{"type":"yi","apiTokens":["sk-fuzz-SECRET-0001"]}}"#,
    r#"{"provider":{"type":"zhipuai","apiTokens":["sk-fuzz-SECRET-0001"]}}"#,
    r#"{"provider":{"type":"deepseek","apiTokens":["sk-fuzz-SECRET-0001"]}}"#,
    r#"{"provider":{"type":"groq","apiTokens":["sk-fuzz-SECRET-0001"]}}"#,
    r#"{"provider":{"type":"baidu","apiTokens":["sk-fuzz-SECRET-0001"]}}"#,
    r#"{"provider":{"type":"ai360","apiTokens":["sk-fuzz-SECRET-0001"]}}"#,
    r#"{"provider":{"type":"mistral","apiTokens":["sk-fuzz-SECRET-0001"]}}"#,
    r#"{"provider":{"type":"minimax","apiTokens":["sk-fuzz-SECRET-0001"]}}"#,
    r#"{"provider":{"type":"claude","apiTokens":["sk-fuzz-SECRET-0001"]}}"#,
    r#"{"provider":{"type":"ollama","ollamaServerHost":"10.1.2.3","ollamaServerPort":11434}}"#,
    r#"{"provider":{"type":"hunyuan","hunyuanAuthId":"fuzzSecretId0001","hunyuanAuthKey":"fuzzSecretKey0001","modelMapping":{"*":"hunyuan-lite"}}}"#,
    r#"{"provider":{"type":"stepfun","apiTokens":["sk-fuzz-SECRET-0001"]}}"#,
    r#"{"provider":{"type":"cloudflare","apiTokens":["sk-fuzz-SECRET-0001"],"cloudflareAccountId":"acct123"}}"#,
    r#"{"provider":{"type":"spark","apiTokens":["key:sk-fuzz-SECRET-0001"]}}"#,
    r#"{"provider":{"type":"gemini","apiTokens":["sk-fuzz-SECRET-0001"],"modelMapping":{"*":"gemini-pro"},"geminiSafetySetting":{"HARM_CATEGORY_HATE_SPEECH":"BLOCK_NONE"}}}"#,
    r#"{"provider":{"type":"deepl","apiTokens":["sk-fuzz-SECRET-0001"],"targetLang":"ZH"}}"#,
    // Variants.
    r#"{"provider":{"type":"qwen","apiTokens":["sk-fuzz-SECRET-0001"],"modelMapping":{"*":"qwen-turbo"},"context":{"fileUrl":"http://file.svc/ctx.txt","serviceName":"file.dns","servicePort":80}}}"#,
    r#"{"provider":{"type":"qwen","apiTokens":["sk-fuzz-SECRET-0001"],"modelMapping":{"*":"qwen-long"},"qwenFileIds":["file-fe-1"],"qwenEnableSearch":true}}"#,
    r#"{"provider":{"type":"moonshot","apiTokens":["sk-fuzz-SECRET-0001"],"moonshotFileId":"file-1"}}"#,
    r#"{"provider":{"type":"minimax","apiTokens":["sk-fuzz-SECRET-0001"],"minimaxGroupId":"g1","modelMapping":{"*":"abab6.5s-chat"}}}"#,
    r#"{"provider":{"type":"openai","openaiCustomUrl":"http://127.0.0.1:8080/v1/chat/completions?x=1","responseJsonSchema":{"type":"object"}}}"#,
    r#"{"provider":{"type":"claude","apiTokens":["sk-fuzz-SECRET-0001","sk-fuzz-SECRET-0002"],"claudeVersion":"2024-01-01","responseJsonSchema":{"type":"object"},"customSettings":[{"name":"max_tokens","value":5},{"name":"temperature","value":0.1,"mode":"raw","overwrite":false}]}}"#,
    r#"{"provider":{"type":"gemini","apiTokens":["sk-fuzz-SECRET-0001"],"protocol":"original"}}"#,
    r#"{"provider":{"type":"openai","apiTokens":["sk-fuzz-SECRET-0001"],"modelMapping":{"gpt-*":"gpt-4o-mini","*":""},"customSettings":[{"name":"top_p","value":"0.5"}]}}"#,
];

/// The loaded configurations (parsed once per process).
pub fn config(selector: u8) -> Arc<Config> {
    static LOADED: OnceLock<Vec<Arc<Config>>> = OnceLock::new();
    let all = LOADED.get_or_init(|| {
        CONFIGS
            .iter()
            .map(|c| Config::from_json(c.as_bytes()).unwrap_or_else(|e| panic!("{c}: {e}")))
            .collect()
    });
    Arc::clone(&all[selector as usize % all.len()])
}

/// `(control bytes, sections)`; missing control bytes read as 0.
pub fn frame<const N: usize>(data: &[u8]) -> ([u8; N], Vec<&[u8]>) {
    let mut ctl = [0u8; N];
    let n = data.len().min(N);
    ctl[..n].copy_from_slice(&data[..n]);
    let mut rest = &data[n..];
    let mut sections = Vec::new();
    while let Some(i) = rest.windows(SEP.len()).position(|w| w == SEP) {
        sections.push(&rest[..i]);
        rest = &rest[i + SEP.len()..];
    }
    sections.push(rest);
    (ctl, sections)
}

/// Chunk lengths for `len` bytes: from `explicit` (one byte per chunk, 0 is an empty chunk) when
/// given, otherwise from a small PRNG seeded by `seed`. The last chunk takes what is left.
pub fn split_lengths(len: usize, explicit: Option<&[u8]>, seed: u8) -> Vec<usize> {
    let mut out = Vec::new();
    let mut left = len;
    match explicit {
        Some(lens) if !lens.is_empty() => {
            for &b in lens {
                let n = (b as usize).min(left);
                out.push(n);
                left -= n;
            }
        }
        _ => {
            let max = [1usize, 2, 3, 5, 8, 16, 64, 300][seed as usize % 8];
            let mut x =
                0x9E37_79B9_7F4A_7C15u64 ^ u64::from(seed).wrapping_mul(0xA24B_AED4_963E_E407);
            while left > 0 && out.len() < 1 << 16 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let n = (x % (max as u64 + 1)) as usize;
                let n = n.min(left);
                out.push(n);
                left -= n;
            }
        }
    }
    out.push(left);
    out
}

/// Blanks what translators generate per exchange: `chatcmpl-`/`call_` ids of 24 random hex
/// digits (`openai::new_completion_id`, qwen's `new_call_id`) and serde-written `"created":N`
/// timestamps (`openai::now_secs`). Applied to both sides of a comparison.
pub fn normalise(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    'outer: while i < bytes.len() {
        for prefix in [&b"chatcmpl-"[..], b"call_"] {
            if bytes[i..].starts_with(prefix) {
                let hex = &bytes[i + prefix.len()..];
                if hex.len() >= 24 && hex[..24].iter().all(u8::is_ascii_hexdigit) {
                    out.extend_from_slice(prefix);
                    out.extend_from_slice(b"<ID>");
                    i += prefix.len() + 24;
                    continue 'outer;
                }
            }
        }
        if bytes[i..].starts_with(b"\"created\":") {
            let digits = bytes[i + 10..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits > 0 {
                out.extend_from_slice(b"\"created\":0");
                i += 10 + digits;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn no_secret(text: &[u8], what: &str) {
    let s = String::from_utf8_lossy(text);
    for k in SECRETS {
        assert!(!s.contains(k), "{what} leaks a configured secret: {s}");
    }
}

/// OpenAI's `ErrorResponse`: `{"error": {"message": str, "type": str, "param": str|null,
/// "code": str|null}}`.
pub fn check_error_json(v: &Value) {
    let e = v
        .get("error")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("not an error object: {v}"));
    assert!(e.get("message").is_some_and(Value::is_string), "{v}");
    assert!(e.get("type").is_some_and(Value::is_string), "{v}");
    for k in ["param", "code"] {
        assert!(
            e.get(k).is_some_and(|x| x.is_null() || x.is_string()),
            "error.{k} must be a string or null: {v}"
        );
    }
}

/// Anthropic's error envelope, what the Messages front answers with:
/// `{"type": "error", "error": {"type": str, "message": str}}`.
pub fn check_anthropic_error_json(v: &Value) {
    assert_eq!(v.get("type").and_then(Value::as_str), Some("error"), "{v}");
    let e = v
        .get("error")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("not an error object: {v}"));
    assert!(e.get("message").is_some_and(Value::is_string), "{v}");
    assert!(e.get("type").is_some_and(Value::is_string), "{v}");
}

/// A local reply: 4xx/5xx, JSON content type, an error body in the client's protocol (OpenAI's,
/// or Anthropic's for the Messages front), no secret.
pub fn check_local_reply(
    protocol: ClientProtocol,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) {
    assert!((400..=599).contains(&status), "local reply status {status}");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v.contains("json")),
        "local reply without a JSON content type: {headers:?}"
    );
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "local reply is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    });
    match protocol {
        ClientProtocol::Anthropic => check_anthropic_error_json(&v),
        _ => check_error_json(&v),
    }
    no_secret(body, "local reply");
}

/// An OpenAI event stream as we emit it: `data: <JSON>\n\n` events, each a chunk or an error,
/// and exactly one `data: [DONE]\n\n`, last.
pub fn check_sse_output(bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| {
        panic!(
            "stream output is not UTF-8 ({e}): {:?}",
            String::from_utf8_lossy(bytes)
        )
    });
    assert!(
        text.ends_with("data: [DONE]\n\n"),
        "stream does not end with [DONE]: {text:?}"
    );
    assert_eq!(text.matches("data: [DONE]\n\n").count(), 1, "{text:?}");
    for block in text.split_terminator("\n\n") {
        let data = block
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not a data event: {block:?} in {text:?}"));
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data)
            .unwrap_or_else(|e| panic!("event is not JSON ({e}): {data:?}"));
        if v.get("error").is_some() {
            check_error_json(&v);
        } else {
            assert_eq!(v["object"], "chat.completion.chunk", "{data}");
            assert!(v["choices"].is_array(), "{data}");
            assert!(v["id"].is_string() && v["model"].is_string(), "{data}");
            assert!(v["created"].is_u64(), "{data}");
        }
    }
}

/// Header values and translated paths must not let input smuggle a line break (header
/// injection) or a NUL into what the host sends upstream.
pub fn check_header_safe(what: &str, s: &str) {
    assert!(
        !s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0),
        "{what} carries CR/LF/NUL: {s:?}"
    );
}

/// Drives a request to its end: answers a callout with `callout` (status, body), checks every
/// local reply and forward. Returns the exchange when it was forwarded.
pub fn run_request(
    cfg: &Arc<Config>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    callout: (u16, &[u8]),
) -> Option<(Exchange, bool)> {
    let mut ex = Exchange::new(Arc::clone(cfg));
    let mut action = ex
        .on_request(method, path, headers, body)
        .expect("a new exchange accepts a request");
    assert!(
        ex.on_request(method, path, headers, body).is_err(),
        "second request accepted"
    );
    if let RequestAction::Callout(c) = &action {
        assert!(c.timeout_ms > 0 && c.port > 0);
        for (_, v) in &c.headers {
            check_header_safe("callout header", v);
        }
        action = ex
            .on_callout_response(callout.0, callout.1)
            .expect("the callout is outstanding");
        assert!(
            ex.on_callout_response(200, b"").is_err(),
            "second callout answer accepted"
        );
    }
    match action {
        RequestAction::Callout(c) => panic!("a second callout: {c:?}"),
        RequestAction::LocalReply(r) => {
            check_local_reply(ex.client_protocol(), r.status, &r.headers, &r.body);
            // The host forwards nothing; the response side must then pass the reply through.
            let rh = ex
                .on_response_headers(r.status, &[])
                .expect("headers after a local reply");
            assert_eq!(rh.mode, aiproxy::ResponseMode::Passthrough);
            None
        }
        RequestAction::Forward(up) => {
            assert!(!up.authority.is_empty(), "empty authority");
            check_header_safe("authority", &up.authority);
            for (k, v) in &up.set_headers {
                check_header_safe(k, v);
            }
            let translated = up.body.is_some();
            if let Some(b) = &up.body {
                check_header_safe("translated path", &up.path);
                assert!(up.path.starts_with('/'), "translated path {:?}", up.path);
                // The core serialises every translated body from a JSON value.
                let _: Value = serde_json::from_slice(b).unwrap_or_else(|e| {
                    panic!(
                        "translated body is not JSON ({e}): {:?}",
                        String::from_utf8_lossy(b)
                    )
                });
            }
            Some((ex, translated))
        }
    }
}
