//! The fast paths against the full path (the reference), through the whole exchange, on seeds
//! and many random edits of them (malformed JSON, escapes, unicode, odd numbers, duplicate and
//! added keys): whatever a fast path accepts, the host sees exactly what the full path gives.

use super::*;
use crate::exchange::{Config, Exchange, RequestAction};
use crate::testutil::validate_chat_completion;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};
use std::sync::Arc;

fn full_path<T>(f: impl FnOnce() -> T) -> T {
    FULL_PATH_ONLY.with(|x| x.set(true));
    let r = f();
    FULL_PATH_ONLY.with(|x| x.set(false));
    r
}

fn config(json: &str) -> Arc<Config> {
    Config::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
}

const CHAT: &str = "/v1/chat/completions";
const EMBEDDINGS: &str = "/v1/embeddings";

/// Everything a host sees of a request: the action, what the exchange recorded, and what it
/// makes of a short SSE reply (stream, include_usage and the model reach the writer).
fn request_outcome(cfg: &Arc<Config>, path: &str, body: &[u8]) -> String {
    let mut ex = Exchange::new(Arc::clone(cfg));
    let action = ex.on_request("POST", path, &[], body).unwrap();
    let mut seen = format!(
        "{action:?} {:?} {:?} {} {:?}",
        ex.model_requested(),
        ex.model_sent(),
        ex.is_stream(),
        ex.api()
    );
    if matches!(action, RequestAction::Forward(_)) && path == CHAT {
        ex.on_response_headers(200, &[("content-type", "text/event-stream")])
            .unwrap();
        let reply = b"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\ndata: [DONE]\n\n";
        let out = ex.on_response_body(reply, true).unwrap();
        seen.push_str(&String::from_utf8_lossy(out.data));
        seen.push_str(&format!("{:?}", ex.usage()));
    }
    seen
}

/// Whether the fast path takes `body` under `cfg` (it may still be refused later, e.g. by a
/// callout; the comparison covers both).
fn spliced(cfg: &Config, path: &str, body: &[u8]) -> bool {
    let api = Api::from_path(path).unwrap();
    let Some(rules) = cfg.imp.request_splice(api) else {
        return false;
    };
    let settings = match api {
        Api::ChatCompletions => cfg.provider.custom_settings.as_slice(),
        Api::Embeddings => &[],
    };
    splice_request(body, api, &cfg.provider.model_mapping, settings, &rules).is_some()
}

const CONFIGS: &[&str] = &[
    // The bench's.
    r#"{"provider":{"type":"openai","apiTokens":["sk-1"],"modelMapping":{"gpt-4*":"bench-model"},"customSettings":[{"name":"max_tokens","value":256,"overwrite":false}]}}"#,
    r#"{"provider":{"type":"openai","apiTokens":["sk-1"],"modelMapping":{"*":"m-\u00e9\"x","gpt-4o":"exact"},"customSettings":[{"name":"temperature","value":0.25},{"name":"seed","value":"x\n\"\u00e9","mode":"raw"},{"name":"top_k","value":3},{"name":"top_p","value":1e300,"overwrite":false}]}}"#,
    r#"{"provider":{"type":"openai","apiTokens":["sk-1"],"modelMapping":{"*":""}}}"#,
    r#"{"provider":{"type":"openai","apiTokens":["sk-1"],"customSettings":[{"name":"model","value":"forced","mode":"raw"}]}}"#,
    r#"{"provider":{"type":"openai","apiTokens":["sk-1"],"customSettings":[{"name":"max_tokens","value":1},{"name":"max_tokens","value":2,"overwrite":false}]}}"#,
    r#"{"provider":{"type":"mistral","apiTokens":["sk-1"],"customSettings":[{"name":"max_tokens","value":9,"overwrite":true}]}}"#,
    r#"{"provider":{"type":"deepseek","apiTokens":["sk-1"],"modelMapping":{"gpt-4o":"deepseek-chat"}}}"#,
    r#"{"provider":{"type":"openrouter","apiTokens":["sk-1"]}}"#,
    r#"{"provider":{"type":"azure","apiTokens":["sk-1"],"azureServiceUrl":"https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-02-15-preview"}}"#,
    r#"{"provider":{"type":"spark","apiTokens":["k:s"],"customSettings":[{"name":"top_p","value":0.5},{"name":"max_tokens","value":7,"overwrite":false}]}}"#,
    r#"{"provider":{"type":"baidu","apiTokens":["k"],"customSettings":[{"name":"max_tokens","value":7,"overwrite":false}]}}"#,
    r#"{"provider":{"type":"groq","apiTokens":["k"],"retryOnFailure":{"enabled":true}}}"#,
    r#"{"provider":{"type":"openai","apiTokens":["k"],"capabilities":{"openai/v1/chatcompletions":"/custom/chat"}}}"#,
];

fn chat_seeds() -> Vec<String> {
    let filler = "The quick brown fox jumps over the lazy dog. ".repeat(3);
    let bench = json!({
        "model": "gpt-4o", "temperature": 0.7, "top_p": 0.9, "stream": false,
        "messages": [
            {"role": "system", "content": format!("You are a helpful assistant. {filler}")},
            {"role": "user", "content": "h\u{e9} \"q\" \\ \n \u{1} 中 😀"},
        ]
    });
    let mut seeds = vec![
        bench.to_string(),
        serde_json::to_string_pretty(&bench).unwrap(),
        r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"max_tokens":12,"messages":[{"role":"user","content":"hi"}]}"#.into(),
        r#"{"messages":[{"role":"user","content":"no model"}],"temperature":1.0,"n":1e2}"#.into(),
        r#"{"model":null,"messages":[],"seed":-0,"top_p":0.10}"#.into(),
        r#"{"model":"gpt-4-turbo","messages":[{"role":"user","content":[{"type":"text","text":"\u00e9\u4e2d\ud83d\ude00\/"}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}}}],"tool_choice":"auto"}"#.into(),
        r#"{"model":"deepseek-reasoner","reasoning_effort":"none","response_format":{"type":"json_schema"},"reasoning_max_tokens":100,"messages":[{"role":"user","content":"x"}]}"#.into(),
        r#"{"model":"gpt-4o","stream_options":{"include_usage":false},"stream":true,"messages":[{"role":"user","content":"x"}],"max_tokens":null}"#.into(),
        " { \"model\" : \"mod\u{e9}l\" ,\r\n\t\"messages\" : [ { \"role\" : \"user\" , \"content\" : \"x\" } ] } ".into(),
    ];
    seeds.push(format!(
        r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"{}"}}],"big":123456789012345678901234567890,"neg":-9223372036854775809,"f":[0.5,1.25e-7,3.14159265358979323846]}}"#,
        "long text ".repeat(20)
    ));
    seeds
}

const EMBEDDING_SEEDS: &[&str] = &[
    r#"{"model":"text-embedding-3-small","input":["a","b"],"encoding_format":"base64"}"#,
    r#"{"model":"text-embedding-3-small","input":"one","encoding_format":"float","dimensions":256}"#,
    r#"{"input":[[1,2,3]],"model":"gpt-4o","encoding_format":null}"#,
];

const KEYS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "max_tokens",
    "temperature",
    "seed",
    "top_p",
    "reasoning_effort",
    "response_format",
    "reasoning_max_tokens",
    "input",
    "encoding_format",
    "x",
];
const VALUES: &[&str] = &[
    "null",
    "true",
    "false",
    "1",
    "-2.5",
    "\"gpt-4o\"",
    "\"base64\"",
    "\"g\\u0070t\"",
    "[]",
    "{}",
    "{\"include_usage\":true}",
    "[{\"role\":\"user\",\"content\":\"x\"}]",
];

/// One to three random edits: bytes removed, inserted or replaced, or a whole member inserted
/// after some `{` (known keys, so duplicates and the keys the paths act on come up often).
fn mutate(rng: &mut StdRng, seed: &str) -> Vec<u8> {
    let alphabet: &[u8] = b"{}[]\":,\\ \t\nnulltrue0123456789-+.eEabcdefu/\x01\xc3\xa9";
    let mut b = seed.as_bytes().to_vec();
    crate::testutil::random_edits_with(rng, &mut b, alphabet, 5, |rng, b| {
        let opens: Vec<usize> = (0..b.len()).filter(|&i| b[i] == b'{').collect();
        if let Some(&o) = opens.get(rng.gen_range(0..opens.len().max(1))) {
            let member = format!(
                "\"{}\":{},",
                KEYS[rng.gen_range(0..KEYS.len())],
                VALUES[rng.gen_range(0..VALUES.len())]
            );
            b.splice(o + 1..o + 1, member.bytes());
        }
    });
    b
}

#[test]
fn requests_the_fast_path_takes_are_exactly_the_full_paths() {
    let mut rng = StdRng::seed_from_u64(13);
    let chat = chat_seeds();
    let (mut accepted, mut total) = (0, 0);
    for cfg_json in CONFIGS {
        let cfg = config(cfg_json);
        let seeds = chat
            .iter()
            .map(|s| (CHAT, s.as_str()))
            .chain(EMBEDDING_SEEDS.iter().map(|s| (EMBEDDINGS, *s)));
        for (path, seed) in seeds {
            let seed_fast = spliced(&cfg, path, seed.as_bytes());
            for n in 0..150 {
                let body = if n == 0 {
                    seed.as_bytes().to_vec()
                } else {
                    mutate(&mut rng, seed)
                };
                total += 1;
                let fast = spliced(&cfg, path, &body);
                accepted += usize::from(fast);
                let mut got = request_outcome(&cfg, path, &body);
                let want = full_path(|| request_outcome(&cfg, path, &body));
                if got != want {
                    // The usage chunk the writer adds has the current second: once more if it
                    // just turned.
                    got = request_outcome(&cfg, path, &body);
                }
                assert_eq!(
                    got,
                    want,
                    "config {cfg_json}\nbody {}",
                    String::from_utf8_lossy(&body)
                );
            }
            let _ = seed_fast;
        }
    }
    assert!(
        accepted * 4 > total,
        "{accepted} of {total} took the fast path"
    );
}

#[test]
fn which_requests_take_the_fast_path() {
    let openai = config(CONFIGS[0]);
    let bench = chat_seeds()[0].clone();
    assert!(spliced(&openai, CHAT, bench.as_bytes()));
    assert!(spliced(&openai, CHAT, chat_seeds()[1].as_bytes()), "pretty");
    assert!(spliced(&openai, EMBEDDINGS, EMBEDDING_SEEDS[0].as_bytes()));
    // The keys a row acts on, settings on fields read here, retries, bad requests: full path.
    let seeds = chat_seeds();
    for (cfg, seed) in [(5, 2), (6, 6), (7, 6), (11, 0)] {
        assert!(spliced(&openai, CHAT, seeds[seed].as_bytes()));
        let cfg = config(CONFIGS[cfg]);
        let took = spliced(&cfg, CHAT, seeds[seed].as_bytes());
        assert!(!took || cfg.provider.retry_on_failure.enabled, "{seed}");
    }
    assert!(!spliced(&config(CONFIGS[3]), CHAT, bench.as_bytes()));
    assert!(!spliced(&config(CONFIGS[4]), CHAT, bench.as_bytes()));
    for bad in [
        r#"{"model":1,"messages":[]}"#,
        r#"{"model":"m","messages":{}}"#,
        r#"{"model":"m"}"#,
        r#"{"model":"m","messages":[],"model":"n"}"#,
        r#"{"model":"m\u00e9","messages":[]}"#,
        r#"[{"model":"m","messages":[]}]"#,
        r#"{"model":"m","messages":[]} {}"#,
    ] {
        assert!(!spliced(&openai, CHAT, bad.as_bytes()), "{bad}");
    }
    // The bench request: the model mapped in place, the default appended.
    let mut ex = Exchange::new(Arc::clone(&openai));
    let RequestAction::Forward(up) = ex
        .on_request("POST", CHAT, &[], br#"{"model":"gpt-4o","messages":[]}"#)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        up.body.as_deref(),
        Some(&br#"{"model":"bench-model","messages":[],"max_tokens":256}"#[..])
    );
}

fn response_config(extra: &str) -> Arc<Config> {
    config(&format!(
        r#"{{"provider":{{"type":"openai","apiTokens":["sk-1"],"modelMapping":{{"*":"mapped"}}{extra}}}}}"#
    ))
}

/// Status, body and usage of a buffered reply.
fn response_outcome(cfg: &Arc<Config>, body: &[u8]) -> (Option<u16>, Vec<u8>, String) {
    let mut ex = Exchange::new(Arc::clone(cfg));
    let action = ex
        .on_request(
            "POST",
            CHAT,
            &[],
            br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
    assert!(matches!(action, RequestAction::Forward(_)));
    ex.on_response_headers(200, &[("content-type", "application/json")])
        .unwrap();
    let out = ex.on_response_body(body, true).unwrap();
    let (status, data) = (out.status, out.data.to_vec());
    (status, data, format!("{:?}", ex.usage()))
}

fn completion_seeds() -> Vec<String> {
    let bench = json!({
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "word ".repeat(20)}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 250, "completion_tokens": 200, "total_tokens": 450}
    });
    // As api.openai.com sends it (pretty-printed, every field).
    let full = json!({
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion", "created": 1741570283u64,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "The image shows \"x\" \u{e9} 中\n", "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
        "service_tier": "default", "system_fingerprint": "fp_fc9f1d7035"
    });
    vec![
        bench.to_string(),
        serde_json::to_string_pretty(&full).unwrap(),
        full.to_string(),
        // What compatible providers leave out: object, created, model, logprobs, refusal, index, finish.
        r#"{"id":"x","choices":[{"message":{"content":"hi"}},{"index":1,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"finish_reason":"tool_calls"}],"usage":{"total_tokens":5}}"#.into(),
        r#"{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"\u00e9\ud83d\ude00\/","reasoning_content":"think"},"finish_reason":"length","logprobs":{"content":[{"token":"a","logprob":-0.25,"bytes":[97],"top_logprobs":[]}],"refusal":null}}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#.into(),
        r#"{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"a"},"finish_reason":"stop"}],"usage":null,"system_fingerprint":null}"#.into(),
        r#"{"id":"x","choices":[{"index":0,"message":{"content":[{"type":"text","text":"a"}]},"finish_reason":"end_turn","usage":{"total_tokens":1}}],"base_resp":{"status_code":0}}"#.into(),
    ]
}

#[test]
fn replies_the_fast_path_takes_are_exactly_the_full_paths() {
    let cfgs = [
        response_config(""),
        response_config(r#","reasoningContentMode":"concat""#),
    ];
    let mut rng = StdRng::seed_from_u64(14);
    let (mut accepted, mut total) = (0, 0);
    for cfg in &cfgs {
        for seed in completion_seeds() {
            for n in 0..400 {
                let body = if n == 0 {
                    seed.as_bytes().to_vec()
                } else {
                    mutate(&mut rng, &seed)
                };
                total += 1;
                if scan_completion(&body, "mapped", false, &mut Vec::new()).is_none() {
                    continue;
                }
                accepted += 1;
                let mut got = response_outcome(cfg, &body);
                let want = full_path(|| response_outcome(cfg, &body));
                if got != want {
                    // An appended `created` is the current second: once more if it just turned.
                    got = response_outcome(cfg, &body);
                }
                assert_eq!(
                    got,
                    want,
                    "body {}\ngot  {}\nwant {}",
                    String::from_utf8_lossy(&body),
                    String::from_utf8_lossy(&got.1),
                    String::from_utf8_lossy(&want.1)
                );
            }
        }
    }
    assert!(
        accepted * 5 > total,
        "{accepted} of {total} took the fast path"
    );
}

#[test]
fn which_replies_take_the_fast_path() {
    let seeds = completion_seeds();
    let cfg = response_config("");
    for (i, seed) in seeds.iter().enumerate() {
        let fast = scan_completion(seed.as_bytes(), "mapped", false, &mut Vec::new()).is_some();
        assert_eq!(fast, i < 5, "seed {i}");
        let (status, out, usage) = response_outcome(&cfg, seed.as_bytes());
        if fast {
            assert_eq!(status, Some(200));
            validate_chat_completion(&serde_json::from_slice::<Value>(&out).unwrap());
            assert_ne!(usage, "None");
        }
    }
    // Reasoning text to rewrite takes the full path.
    assert!(scan_completion(seeds[4].as_bytes(), "m", true, &mut Vec::new()).is_none());
    // A refused body leaves the output as it was.
    let mut out = b"kept".to_vec();
    assert!(scan_completion(seeds[5].as_bytes(), "m", false, &mut out).is_none());
    assert_eq!(out, b"kept");
    // Usage in OpenAI's form, details kept only where it has them.
    let (_, out, usage) = response_outcome(&cfg, seeds[1].as_bytes());
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
            "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}})
    );
    assert!(usage.contains("1163"));
}
