//! The translating providers' request fast path against the full path (the reference), through
//! the whole exchange, on realistic requests and thousands of random edits of them (malformed
//! JSON, escapes, unicode, odd and huge numbers, duplicate, null and added keys): whatever the
//! fast path takes, the host sees exactly what the full path gives (upstream bytes, headers,
//! recorded state, and the reply a short stream gets), and errors always come from the full path.

use super::*;
use crate::exchange::{Config, Exchange, RequestAction};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::json;
use std::sync::Arc;

const CHAT: &str = "/v1/chat/completions";

fn config(json: &str) -> Arc<Config> {
    Config::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
}

/// Everything a host sees of one request, and whether the fast path took it.
fn outcome(cfg: &Arc<Config>, body: &[u8], reply: &[u8], full: bool) -> (String, bool) {
    FULL_PATH_ONLY.with(|x| x.set(full));
    let before = TAKEN.with(std::cell::Cell::get);
    let mut ex = Exchange::new(Arc::clone(cfg));
    let action = ex.on_request("POST", CHAT, &[], body).unwrap();
    FULL_PATH_ONLY.with(|x| x.set(false));
    let took = TAKEN.with(std::cell::Cell::get) != before;
    // The upstream body as text (it is always UTF-8: both paths write it from Rust strings).
    let shown = match &action {
        RequestAction::Forward(up) => {
            let mut up = up.clone();
            let body = up.body.take().map(|b| String::from_utf8(b).unwrap());
            format!("{up:?} body={body:?}")
        }
        other => format!("{other:?}"),
    };
    let mut seen = format!(
        "{shown} {:?} {:?} {} {:?}",
        ex.model_requested(),
        ex.model_sent(),
        ex.is_stream(),
        ex.api()
    );
    if matches!(action, RequestAction::Forward(_)) {
        let ct = if ex.is_stream() {
            "text/event-stream"
        } else {
            "application/json"
        };
        ex.on_response_headers(200, &[("content-type", ct)])
            .unwrap();
        let out = ex.on_response_body(reply, true).unwrap();
        let text = String::from_utf8_lossy(out.data).to_string();
        seen.push_str(&blank_created(&text));
        seen.push_str(&format!("{:?}", ex.usage()));
    }
    (seen, took)
}

/// `"created":<secs>` differs when the two runs straddle a second, and ids we make up
/// (`chatcmpl-<random hex>`, for providers that send none) always differ.
fn blank_created(s: &str) -> String {
    let mut s = s.to_string();
    for marker in ["\"created\":", "\"chatcmpl-"] {
        let mut out = String::with_capacity(s.len());
        let mut rest = s.as_str();
        while let Some(i) = rest.find(marker) {
            let (head, tail) = rest.split_at(i + marker.len());
            out.push_str(head);
            rest = tail.trim_start_matches(|c: char| c.is_ascii_hexdigit());
        }
        out.push_str(rest);
        s = out;
    }
    s
}

/// Realistic chat requests: every field and message shape the fast path handles, and a few it
/// leaves to the full path.
fn seeds() -> Vec<String> {
    let filler = "The quick brown fox jumps over the lazy dog. ".repeat(3);
    let png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let mut v = vec![
        json!({"model": "gpt-4o", "temperature": 0.7, "top_p": 0.9, "stream": false, "messages": [
            {"role": "system", "content": format!("You are a helpful assistant. {filler}")},
            {"role": "user", "content": format!("First question: {filler}")},
            {"role": "assistant", "content": "A first answer."},
            {"role": "user", "content": format!("Follow-up: {filler}")}]}),
        json!({"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
            "max_tokens": 100, "stop": ["\n\n", "END"], "user": "u-1", "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use \"quotes\" and \\ and \u{e9}\u{1F600}."}]},
            {"role": "user", "content": [{"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": png, "detail": "low"}},
                {"type": "image_url", "image_url": "https://example.com/a.png", "cache_control": {"type": "ephemeral"}}]}]}),
        json!({"model": "gpt-4.1", "max_completion_tokens": 12345678901u64, "stop": "STOP", "top_k": 40,
            "temperature": 1e-7, "safety_identifier": "s-9", "parallel_tool_calls": false,
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "maximum": 1e3}}, "required": ["city"]}, "strict": true}},
                {"type": "function", "function": {"name": "noargs"}}],
            "tool_choice": "auto", "messages": [
            {"role": "user", "content": "Weather in Paris and Z\u{fc}rich?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"days\":2}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": " "}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21.5}"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "12 C"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Paris 21.5"}, {"type": "refusal", "refusal": "no"}, {"type": "text", "text": ""}]},
            {"role": "user", "name": "bob", "content": "thanks"}]}),
        json!({"model": "gpt-4o", "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object", "properties": {"a": {"type": "number"}}}}},
            "tool_choice": {"type": "function", "function": {"name": "f"}}, "tools": [{"function": {"name": "f", "parameters": {"type": "object"}}}],
            "presence_penalty": 0, "frequency_penalty": 0.0, "messages": [
            {"role": "system", "content": "one"}, {"role": "system", "content": "two"},
            {"role": "user", "content": "a"}, {"role": "user", "content": [{"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {"x": [1, 2.5, -3]}}}]},
            {"role": "tool", "tool_call_id": "c"}]}),
        json!({"model": "claude-x", "response_format": {"type": "text"}, "tool_choice": "none", "messages": [{"role": "user", "content": "hi"}]}),
        json!({"top_k": 5, "model": "gpt-4o", "seed": 42, "presence_penalty": 0.5, "stop": "x", "temperature": 0.1,
            "frequency_penalty": -1, "parallel_tool_calls": true, "user": "u", "max_completion_tokens": 9, "messages": [
            {"role": "system", "content": [{"type": "text", "text": "sys \u{2028}"}]},
            {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": png}}]},
            {"role": "user", "content": []},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}, {"type": "text", "text": ""}]},
            {"role": "assistant", "content": "again"}, {"role": "user", "content": "ok"}]}),
        json!({"model": null, "messages": [{"role": "user", "content": ""}], "stream": true}),
        json!({"messages": [{"role": "assistant", "content": ""}], "stream_options": {"include_usage": false}, "temperature": 2}),
        // Agent requests: tools, tool calls and their results, `reasoning_effort`, neutral `n`
        // and `logprobs` (8 to 11).
        json!({"model": "gpt-4o", "reasoning_effort": "low", "tool_choice": "auto", "n": 1, "logprobs": false,
            "parallel_tool_calls": true, "tools": [
                {"type": "function", "function": {"name": "get_weather", "description": "Weather.",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}, "strict": true}},
                {"type": "function", "function": {"name": "now", "description": null, "parameters": {"type": "object", "properties": {}}}},
                {"type": "function", "function": {"name": "ping", "parameters": null, "strict": false}}],
            "messages": [
                {"role": "system", "content": "Use tools."},
                {"role": "user", "content": "Weather in Paris? And the time."},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": ""}}]},
                {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp\": 18, \"sky\": \"cloudy\"}"},
                {"role": "tool", "tool_call_id": "call_b", "name": "now", "content": [{"type": "text", "text": "12:"}, {"type": "text", "text": "30"}]},
                {"role": "assistant", "content": "18 C, 12:30."},
                {"role": "user", "content": "thanks"}]}),
        json!({"logprobs": false, "temperature": 0.3, "model": "gpt-4o", "reasoning_effort": "none", "n": 2, "seed": 1,
            "response_format": {"type": "json_object"}, "max_tokens": 50, "tool_choice": "required", "top_p": 0.5, "tools": [
                {"function": {"parameters": {"properties": {"q": {"type": "string"}}, "type": "object"}, "name": "search", "strict": false, "description": "d"}, "type": "function"}],
            "messages": [
                {"role": "user", "content": "find x"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"function": {"arguments": "{\"q\": \"x\", \"n\": [1, 2.50, 1e2]}", "name": "search"}, "id": "s1", "type": "function"}]},
                {"role": "tool", "tool_call_id": "s1", "content": "not json"},
                {"role": "tool", "tool_call_id": "s1", "content": "[1, 2]"},
                {"role": "user", "content": "and y?"}]}),
        json!({"model": "gpt-4o", "reasoning_effort": "high", "max_completion_tokens": 100, "stream": true,
            "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}},
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}],
            "messages": [
                {"role": "developer", "content": "json only"},
                {"role": "user", "content": "go"},
                {"role": "assistant", "tool_calls": [{"id": "f1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}},
                    {"id": "f2", "function": {"name": "f", "arguments": null}}]},
                {"role": "tool", "tool_call_id": "f2", "content": "{}"},
                {"role": "tool", "tool_call_id": "f1"}]}),
        json!({"model": "gpt-4o", "reasoning_effort": "medium", "max_tokens": 4096, "n": 1.0, "logprobs": null,
            "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "a"}}]}},
            "tools": [{"type": "function", "function": {"name": "a", "description": "A \"quoted\" \u{e9} tool"}}, {"type": "function", "function": {"name": "b"}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "use a"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "ok"}], "tool_calls": []},
                {"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {"name": "a", "arguments": "{}"}}]},
                {"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {"name": "b", "arguments": " {\"k\": {}} "}}]},
                {"role": "tool", "tool_call_id": "x", "content": "{\"r\": \"\\u00e9\"}"},
                {"role": "user", "content": "next"}]}),
        // Refused or left to the full path by some providers (Claude refuses `seed` and `n: 2`).
        json!({"model": "gpt-4o", "seed": 7, "messages": [{"role": "user", "content": "x"}]}),
        json!({"model": "gpt-4o", "n": 2, "messages": [{"role": "user", "content": "x"}]}),
        json!({"model": "gpt-4o", "reasoning_effort": "low", "messages": [{"role": "user", "content": "x"}]}),
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA"}}]}]}),
        json!({"model": "gpt-4o", "response_format": {"type": "json_object"}, "messages": [{"role": "user", "content": "x"}]}),
    ]
    .into_iter()
    .map(|v| v.to_string())
    .collect::<Vec<_>>();
    // Hand-written: escapes the serializer would write differently, and odd spacing.
    v.push(r#" { "model" : "gpt\u002d4o", "messages" : [ { "role" : "user" , "content" : "a\/b \ud83d\ude00 \u0007" } ] , "temperature" : 1.0e0 , "top_p": -0 } "#.into());
    v.push(r#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":18446744073709551616,"temperature":1E400}"#.into());
    v.push(r#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"model":"dup"}"#.into());
    // Tool schemas and arguments kept as JSON bytes: numbers of every kind, escapes, nesting, and
    // repeated keys (which the `Value` reading takes, keeping the last).
    v.push(r#"{"model":"gpt-4o","tools":[{"type":"function","function":{"name":"n","parameters":{"type":"object","properties":{"a":{"enum":[-0,-1,1.5e3,0.1,-2.50E-3,18446744073709551615,18446744073709551616,-9223372036854775808,-9223372036854775809,1e308,true,null,"\u00e9\n\/"]},"b":{"type":["string","null"],"default":{}}},"required":[]}}}],"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"i","type":"function","function":{"name":"n","arguments":"{\"a\": [-0, 1E2, \"\\u00e9\"], \"b\": {\"c\": []}}"}}]},{"role":"tool","tool_call_id":"i","content":"{\"r\": -0.0, \"s\": [{}]}"}]}"#.into());
    v.push(r#"{"model":"gpt-4o","tools":[{"type":"function","function":{"name":"d","parameters":{"type":"object","properties":{"a":{}},"type":"object"}}}],"messages":[{"role":"user","content":"x"}]}"#.into());
    v.push(r#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"i","function":{"name":"n","arguments":"{\"a\":1,\"a\":2}"}}]},{"role":"tool","tool_call_id":"i","content":"{\"r\":1,\"r\":2}"}]}"#.into());
    v.push(r#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"i","function":{"name":"n","arguments":{"a":1,"b":{"a":1,"a":[]}}}}]},{"role":"tool","tool_call_id":"i","content":"{\"r\":1,\"r\":2"}]}"#.into());
    v
}

const CLAUDE_CONFIGS: &[&str] = &[
    // The bench's.
    r#"{"provider":{"type":"claude","apiTokens":["sk-bench"],"modelMapping":{"gpt-4*":"bench-model"},"customSettings":[{"name":"max_tokens","value":256,"overwrite":false}]}}"#,
    r#"{"provider":{"type":"claude","apiTokens":["sk-1"],"claudeVersion":"2024-01-01"}}"#,
    r#"{"provider":{"type":"claude","apiTokens":["sk-1"],"modelMapping":{"*":"m-\u00e9\"x"},"customSettings":[{"name":"temperature","value":0.25},{"name":"max_tokens","value":9,"overwrite":true},{"name":"top_k","value":3,"overwrite":false},{"name":"stop_sequences","value":"raw\"v","mode":"raw"},{"name":"model","value":"forced","mode":"raw"},{"name":"seed","value":1}]}}"#,
    // Adaptive thinking (4.6), and adaptive only with `max_tokens` from customSettings (4.7).
    r#"{"provider":{"type":"claude","apiTokens":["sk-1"],"modelMapping":{"*":"claude-sonnet-4-6"}}}"#,
    r#"{"provider":{"type":"claude","apiTokens":["sk-1"],"modelMapping":{"*":"claude-opus-4-7"},"customSettings":[{"name":"max_tokens","value":99,"overwrite":false},{"name":"thinking","value":"t","mode":"raw","overwrite":true}]}}"#,
    r#"{"provider":{"type":"claude","apiTokens":["sk-1"],"modelMapping":{"*":""}}}"#,
    r#"{"provider":{"type":"claude","apiTokens":["sk-1"],"responseJsonSchema":{"type":"object"}}}"#,
    r#"{"provider":{"type":"claude","apiTokens":["sk-1"],"retryOnFailure":{"enabled":true}}}"#,
];

const CLAUDE_REPLY: &[u8] = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

/// Bytes the random edits insert: JSON punctuation, escapes, digits, unicode.
const ALPHABET: &[u8] = b"{}[],:\"\\ 0123456789.eE+-tfnulaxu\xc3\xa9";

/// Larger edits: snippets that keep the JSON valid more often than byte edits do.
const SNIPPETS: &[&str] = &[
    r#""model":"gpt-4o","#,
    r#""stream":true,"#,
    r#""stream_options":{"include_usage":true},"#,
    r#""temperature":null,"#,
    r#""max_tokens":1e400,"#,
    r#""top_k":123456789012345678901234567890,"#,
    r#""user":"\u00e9\ud800","#,
    r#""stop":[],"#,
    r#""tools":[],"#,
    r#""parallel_tool_calls":false,"#,
    r#""seed":null,"#,
    r#""unknown":1,"#,
    r#""type":"object","#,
    r#""x":[-0,-1,1.5e3,18446744073709551615,-9223372036854775808,0.1,{}],"#,
    r#""reasoning_effort":"medium","#,
    r#""reasoning_effort":"xhigh","#,
    r#""n":1,"#,
    r#""logprobs":true,"#,
    r#""tool_choice":"required","#,
    r#""tool_choice":"none","#,
    r#""tools":[{"type":"function","function":{"name":"t","parameters":{"type":"object","properties":{"p":{}}}}}],"#,
    r#"{"role":"assistant","tool_calls":[{"id":"x","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"#,
    r#"{"role":"tool","tool_call_id":"call_a","content":"{\"ok\":true}"},"#,
    r#"{"role":"user","content":"\u2028"},"#,
    r#"{"role":"tool","tool_call_id":"x","content":[]},"#,
    r#"{"role":"assistant","content":[]},"#,
    r#""enable_thinking":true,"#,
    r#""enable_thinking":null,"#,
    r#""thinking_budget":512,"#,
    r#""repetition_penalty":1.1e0,"#,
    r#""enable_search":false,"#,
    r#""search_options":{"forced_search":true,"a":[1,-0,1e2]},"#,
    r#""vl_high_resolution_images":true,"#,
    r#""translation_options":{"source_lang":"auto","target_lang":"\u00e9"},"#,
    r#""logit_bias":{"1":0},"#,
    r#"{"type":"image_url","image_url":{"url":"https://x/y.png"}},"#,
    r#"{"type":"image_url","image_url":"https://x/z.png"},"#,
    r#"{"type":"text","text":"p\u00e9"},"#,
    r#"{"type":"input_audio","input_audio":{"data":"AA","format":"wav"}},"#,
    "\"\\ud83d\\ude00\"",
    "null",
];

/// Escapes and characters put inside strings (after an opening quote): the request stays valid.
const IN_STRING: &[&str] = &[
    "\\n",
    "\\\"",
    "\\u00e9",
    "\u{1F600}",
    "\\/",
    "\\ud83d\\ude00",
    "\\u0000",
    "\u{e9}",
    "\\t",
];

fn insert_snippet(rng: &mut StdRng, b: &mut Vec<u8>) {
    let s = SNIPPETS[rng.gen_range(0..SNIPPETS.len())].as_bytes();
    // After a `{` or `[` when there is one, so the snippet lands where a member may.
    let starts: Vec<usize> = (0..b.len())
        .filter(|&i| b[i] == b'{' || b[i] == b'[')
        .collect();
    let at = match starts.len() {
        0 => rng.gen_range(0..=b.len()),
        n => starts[rng.gen_range(0..n)] + 1,
    };
    b.splice(at..at, s.iter().copied());
}

fn insert_in_string(rng: &mut StdRng, b: &mut Vec<u8>) {
    let s = IN_STRING[rng.gen_range(0..IN_STRING.len())].as_bytes();
    let starts: Vec<usize> = (1..b.len())
        .filter(|&i| i >= 2 && b[i - 1] == b'"' && matches!(b[i - 2], b':' | b'['))
        .collect();
    if starts.is_empty() {
        return;
    }
    let at = starts[rng.gen_range(0..starts.len())];
    b.splice(at..at, s.iter().copied());
}

fn mutate(rng: &mut StdRng, body: &mut Vec<u8>) {
    if rng.gen_bool(0.5) {
        crate::testutil::random_edits_with(rng, body, ALPHABET, 5, insert_snippet);
    } else {
        // Edits that keep the JSON valid, so the fast path's own checks are what is tested.
        for _ in 0..rng.gen_range(1..4) {
            if rng.gen_bool(0.85) {
                insert_in_string(rng, body);
            } else {
                insert_snippet(rng, body);
            }
        }
    }
}

/// The configs that come first: the ones the fast paths take.
const LIKELY_CONFIGS: usize = 5;

/// The seeds that come first: the ones the fast paths take (most edits start from these).
const LIKELY_SEEDS: usize = 12;

/// Runs the seeds and `cases` random edits of them under each config through both paths.
/// `must_take`: (config, seed) pairs the fast path takes; `min_taken`: how many of the edited
/// requests it must take (so the comparison is not vacuous).
fn agree(
    configs: &[&str],
    reply: &[u8],
    (seeds, likely_seeds): (Vec<String>, usize),
    cases: usize,
    seed: u64,
    must_take: &[(usize, usize)],
    min_taken: usize,
) {
    let configs: Vec<_> = configs.iter().map(|c| config(c)).collect();
    // Vertex's service-account mode takes the fast path only with a cached access token (the
    // token callout holds the parsed body); the other providers ignore this.
    for cfg in &configs {
        cfg.imp
            .on_auth_response(200, br#"{"access_token":"ya29.t","expires_in":3600}"#)
            .unwrap();
    }
    let mut taken = 0;
    for cfg in &configs {
        for s in &seeds {
            let (fast, _) = outcome(cfg, s.as_bytes(), reply, false);
            let (full, _) = outcome(cfg, s.as_bytes(), reply, true);
            assert_eq!(fast, full, "seed {s}");
        }
    }
    for &(c, i) in must_take {
        let s = &seeds[i];
        assert!(
            outcome(&configs[c], s.as_bytes(), reply, false).1,
            "config {c}: {s}"
        );
    }
    let mut rng = StdRng::seed_from_u64(seed);
    for case in 0..cases {
        // Mostly configs and seeds the fast path can take, so its own checks are what is tested.
        let pick = |rng: &mut StdRng, n: usize, likely: usize| {
            if rng.gen_bool(0.8) {
                rng.gen_range(0..likely.min(n))
            } else {
                rng.gen_range(0..n)
            }
        };
        let cfg = &configs[pick(&mut rng, configs.len(), LIKELY_CONFIGS)];
        let mut body = seeds[pick(&mut rng, seeds.len(), likely_seeds)]
            .clone()
            .into_bytes();
        mutate(&mut rng, &mut body);
        let (fast, took) = outcome(cfg, &body, reply, false);
        let (full, _) = outcome(cfg, &body, reply, true);
        assert_eq!(
            fast,
            full,
            "case {case}: {}",
            String::from_utf8_lossy(&body)
        );
        taken += usize::from(took);
    }
    assert!(taken >= min_taken, "fast path took {taken} of {cases}");
}

#[test]
fn claude_fast_request_matches_full_path() {
    agree(
        CLAUDE_CONFIGS,
        CLAUDE_REPLY,
        (seeds(), LIKELY_SEEDS),
        6000,
        13,
        &[
            (0, 0),
            (0, 1),
            (0, 2),
            (0, 3),
            (0, 4),
            (0, 8),
            (0, 10),
            (3, 8),
            (3, 10),
            (4, 8),
            (4, 10),
            (0, 20),
        ],
        600,
    );
}

const GEMINI_CONFIGS: &[&str] = &[
    // The bench's.
    r#"{"provider":{"type":"gemini","apiTokens":["sk-bench"],"modelMapping":{"gpt-4*":"bench-model"},"customSettings":[{"name":"max_tokens","value":256,"overwrite":false}]}}"#,
    r#"{"provider":{"type":"gemini","apiTokens":["k"],"modelMapping":{"*":"gemini-2.5-flash"},"geminiSafetySetting":{"HARM_CATEGORY_HATE_SPEECH":"BLOCK_NONE","HARM_CATEGORY_HARASSMENT":"BLOCK_ONLY_HIGH"},"customSettings":[{"name":"temperature","value":0.25},{"name":"top_k","value":3,"overwrite":false},{"name":"max_tokens","value":7,"overwrite":true},{"name":"candidateCount","value":1,"mode":"raw"}]}}"#,
    r#"{"provider":{"type":"gemini","apiTokens":["k"],"customSettings":[{"name":"top_p","value":0.5,"overwrite":false},{"name":"seed","value":3}]}}"#,
    // Gemini 3: replayed tool calls get the placeholder thought signature.
    r#"{"provider":{"type":"gemini","apiTokens":["k"],"modelMapping":{"*":"gemini-3-pro-preview"}}}"#,
    r#"{"provider":{"type":"gemini","apiTokens":["k"],"modelMapping":{"*":"bad model/x"}}}"#,
    r#"{"provider":{"type":"gemini","apiTokens":["k"],"retryOnFailure":{"enabled":true}}}"#,
];

const GEMINI_REPLY: &[u8] = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"hi\"}],\"role\": \"model\"},\"finishReason\": \"STOP\", \"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 5,\"candidatesTokenCount\": 1,\"totalTokenCount\": 6},\"modelVersion\": \"m\"}\r\n\r\n";

#[test]
fn gemini_fast_request_matches_full_path() {
    agree(
        GEMINI_CONFIGS,
        GEMINI_REPLY,
        (seeds(), LIKELY_SEEDS),
        6000,
        14,
        &[
            (0, 0),
            (0, 5),
            (0, 8),
            (0, 9),
            (0, 10),
            (0, 11),
            (3, 8),
            (3, 10),
            (3, 11),
            (0, 20),
        ],
        200,
    );
}

/// Vertex: express mode (an API key) and service-account mode (`region`; `vertexAuthKey` and
/// the rest are added by `vertex_configs`).
fn vertex_configs(configs: &[(&str, &str)]) -> Vec<String> {
    configs
        .iter()
        .map(|(mode, rest)| {
            let auth = match *mode {
                "express" => r#""apiTokens":["k"]"#.to_string(),
                region => format!(
                    r#""vertexAuthKey":{},"vertexRegion":"{region}","vertexProjectId":"p-1","vertexAuthServiceName":"oauth""#,
                    serde_json::Value::from(crate::providers::vertex::tests::sa_json())
                ),
            };
            format!(r#"{{"provider":{{"type":"vertex",{auth}{rest}}}}}"#)
        })
        .collect()
}

#[test]
fn vertex_gemini_fast_request_matches_full_path() {
    let configs = vertex_configs(&[
        // The bench's.
        (
            "express",
            r#","modelMapping":{"gpt-4*":"bench-model"},"customSettings":[{"name":"max_tokens","value":256,"overwrite":false}]"#,
        ),
        (
            "us-central1",
            r#","modelMapping":{"*":"gemini-2.5-flash"},"geminiSafetySetting":{"HARM_CATEGORY_HATE_SPEECH":"BLOCK_NONE","HARM_CATEGORY_HARASSMENT":"BLOCK_ONLY_HIGH"},"customSettings":[{"name":"temperature","value":0.25},{"name":"top_k","value":3,"overwrite":false},{"name":"max_tokens","value":7,"overwrite":true},{"name":"candidateCount","value":1,"mode":"raw"}]"#,
        ),
        (
            "express",
            r#","modelMapping":{"*":"models/gemini-2.0-flash-001"},"vertexGeminiSafetySetting":{"HARM_CATEGORY_DANGEROUS_CONTENT":"OFF"},"customSettings":[{"name":"top_p","value":0.5,"overwrite":false},{"name":"seed","value":3}]"#,
        ),
        // Gemini 3: replayed tool calls get the placeholder thought signature.
        ("global", r#","modelMapping":{"*":"gemini-3-pro-preview"}"#),
        ("express", r#","modelMapping":{"*":"gemini-3-flash"}"#),
        // Refused: Claude in express mode, a model that cannot go in the path.
        ("express", r#","modelMapping":{"*":"claude-sonnet-4-5"}"#),
        ("europe-west4", r#","modelMapping":{"*":"bad model/x"}"#),
        ("express", r#","retryOnFailure":{"enabled":true}"#),
    ]);
    let configs: Vec<&str> = configs.iter().map(String::as_str).collect();
    agree(
        &configs,
        GEMINI_REPLY,
        (seeds(), LIKELY_SEEDS),
        6000,
        16,
        &[
            (0, 0),
            (0, 5),
            (0, 8),
            (0, 9),
            (0, 10),
            (0, 11),
            (1, 0),
            (1, 8),
            (2, 8),
            (3, 8),
            (3, 10),
            (3, 11),
            (4, 10),
        ],
        200,
    );
}

#[test]
fn vertex_claude_fast_request_matches_full_path() {
    let configs = vertex_configs(&[
        (
            "us-east5",
            r#","modelMapping":{"gpt-4*":"claude-sonnet-4-5@20250929"},"customSettings":[{"name":"max_tokens","value":256,"overwrite":false}]"#,
        ),
        // customSettings after Vertex's edits: `model` comes back last, `anthropic_version`
        // can be overwritten.
        (
            "global",
            r#","modelMapping":{"*":"claude-haiku-4-5"},"customSettings":[{"name":"temperature","value":0.25},{"name":"max_tokens","value":9,"overwrite":true},{"name":"top_k","value":3,"overwrite":false},{"name":"model","value":"forced","mode":"raw"},{"name":"anthropic_version","value":"v","mode":"raw","overwrite":true},{"name":"seed","value":1}]"#,
        ),
        // Adaptive thinking (4.6), and adaptive only with `max_tokens` from customSettings (4.7).
        ("us-east5", r#","modelMapping":{"*":"claude-sonnet-4-6"}"#),
        (
            "us-east5",
            r#","modelMapping":{"*":"claude-opus-4-7"},"customSettings":[{"name":"max_tokens","value":99,"overwrite":false},{"name":"thinking","value":"t","mode":"raw","overwrite":true}]"#,
        ),
        (
            "europe-west1",
            r#","modelMapping":{"*":"claude-3-7-sonnet@20250219"},"geminiSafetySetting":{"HARM_CATEGORY_HATE_SPEECH":"BLOCK_NONE"}"#,
        ),
        // Left to the full path: a `models/` Claude (Gemini's customSettings apply), retries.
        (
            "us-east5",
            r#","modelMapping":{"*":"models/claude-x"},"customSettings":[{"name":"max_tokens","value":5}]"#,
        ),
        ("us-east5", r#","retryOnFailure":{"enabled":true}"#),
        ("us-east5", r#","modelMapping":{"*":"claude-x@"}"#),
    ]);
    let configs: Vec<&str> = configs.iter().map(String::as_str).collect();
    agree(
        &configs,
        CLAUDE_REPLY,
        (seeds(), LIKELY_SEEDS),
        6000,
        17,
        &[
            (0, 0),
            (0, 1),
            (0, 2),
            (0, 3),
            (0, 4),
            (0, 8),
            (0, 10),
            (1, 8),
            (2, 8),
            (2, 10),
            (3, 8),
            (3, 10),
            (4, 0),
            (0, 20),
        ],
        600,
    );
}

const QWEN_CONFIGS: &[&str] = &[
    // The bench's.
    r#"{"provider":{"type":"qwen","apiTokens":["sk-bench"],"modelMapping":{"gpt-4*":"bench-model"},"customSettings":[{"name":"max_tokens","value":256,"overwrite":false}]}}"#,
    r#"{"provider":{"type":"qwen","apiTokens":["k"],"modelMapping":{"*":"qwen-max"},"qwenEnableSearch":true,"customSettings":[{"name":"temperature","value":0.25},{"name":"seed","value":3,"overwrite":false},{"name":"max_tokens","value":7,"overwrite":true},{"name":"enable_thinking","value":false,"mode":"raw"}]}}"#,
    r#"{"provider":{"type":"qwen","apiTokens":["k"],"customSettings":[{"name":"top_p","value":0.5,"overwrite":false}]}}"#,
    r#"{"provider":{"type":"qwen","apiTokens":["k"],"modelMapping":{"*":"qwen-vl-max"}}}"#,
    r#"{"provider":{"type":"qwen","apiTokens":["k"],"qwenFileIds":["f1"]}}"#,
    // A multimodal model with file ids, search on, and settings for DashScope's own parameters.
    r#"{"provider":{"type":"qwen","apiTokens":["k"],"modelMapping":{"gpt-4*":"qwen3-vl-plus"},"qwenEnableSearch":true,"qwenFileIds":["a","b\"c"],"customSettings":[{"name":"vl_high_resolution_images","value":false,"mode":"raw","overwrite":true},{"name":"thinking_budget","value":64,"mode":"raw","overwrite":false},{"name":"top_k","value":2}]}}"#,
];

/// Qwen traffic beyond OpenAI's fields: DashScope's own parameters (with and without
/// `reasoning_effort`, null, odd numbers, nested objects), and multimodal requests (`qwen-vl`,
/// `qvq` models) with text, refusal and image parts; then a few the fast path leaves alone.
fn qwen_seeds() -> Vec<String> {
    let png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let mut v = vec![
        json!({"model": "gpt-4o", "enable_thinking": true, "thinking_budget": 2048, "top_k": 20, "repetition_penalty": 1.05,
            "temperature": 0.6, "top_p": 0.95, "messages": [
            {"role": "system", "content": "Think first."}, {"role": "user", "content": "Why is the sky blue?"}]}),
        json!({"model": "qwen-plus", "reasoning_effort": "high", "enable_thinking": false, "enable_search": true,
            "search_options": {"forced_search": true, "search_strategy": "pro", "citation_format": "[<number>]"},
            "stream": true, "stream_options": {"include_usage": true}, "messages": [
            {"role": "developer", "content": "Cite."}, {"role": "user", "content": "News on \u{e9}clipses?"}]}),
        json!({"model": "gpt-4o", "thinking_budget": 100, "reasoning_effort": "medium", "enable_search": false, "max_tokens": 10,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}),
        json!({"model": "qwen-mt-turbo", "translation_options": {"source_lang": "auto", "target_lang": "English",
            "terms": [{"source": "\u{4f60}\u{597d}", "target": "hello"}], "domains": null},
            "messages": [{"role": "user", "content": "\u{4f60}\u{597d}"}]}),
        json!({"model": "qwen-vl-max", "vl_high_resolution_images": true, "temperature": 0.2, "messages": [
            {"role": "system", "content": "Describe images."},
            {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": png, "detail": "high"}},
                {"type": "image_url", "image_url": "https://example.com/b.jpg", "cache_control": {"type": "ephemeral"}},
                {"image_url": {"url": "https://example.com/c.jpg"}, "type": "image_url"}]},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}, {"type": "text", "text": ""}]},
            {"role": "assistant", "content": null},
            {"role": "user", "content": []},
            {"content": "again", "role": "user"}]}),
        json!({"model": "qvq-max", "stream": true, "reasoning_effort": "low", "tools": [{"type": "function", "function": {"name": "zoom",
            "parameters": {"type": "object", "properties": {"x": {"type": "number"}}}}}],
            "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": png}, {"text": "solve"}]},
            {"role": "assistant", "content": "Zooming.", "tool_calls": [{"id": "z1", "type": "function", "function": {"name": "zoom", "arguments": "{\"x\":2}"}}]},
            {"role": "tool", "tool_call_id": "z1", "name": "zoom", "content": [{"type": "text", "text": "zoomed"}]},
            {"role": "tool", "tool_call_id": "z1", "content": "plain"}]}),
        json!({"model": "gpt-4o", "enable_thinking": null, "search_options": null, "repetition_penalty": 1,
            "vl_high_resolution_images": false, "messages": [{"role": "user", "content": "x"}]}),
        json!({"model": "qwen3-vl-235b-a22b", "enable_thinking": true, "thinking_budget": 1e3, "top_k": -0,
            "search_options": {"nested": {"a": [1, -2.5, 1.0e2, "\u{2028}"], "b": {}}, "c": []},
            "messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]},
                {"role": "user", "name": "bob", "content": "and?"}]}),
        // Left to the full path: refused parts, an image for a text model, another parameter.
        json!({"model": "qwen-vl-plus", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}]}),
        json!({"model": "qwen-vl-plus", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"detail": "low"}}]}]}),
        json!({"model": "qwen-max", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": png}]}]}),
        json!({"model": "qwen-max", "logit_bias": {"1": 0}, "enable_thinking": true, "messages": [{"role": "user", "content": "x"}]}),
    ]
    .into_iter()
    .map(|v| v.to_string())
    .collect::<Vec<_>>();
    // Hand-written: duplicate DashScope keys, repeated keys inside their values, escapes.
    v.push(r#"{"model":"gpt-4o","enable_thinking":true,"messages":[{"role":"user","content":"x"}],"enable_thinking":false}"#.into());
    v.push(r#"{"model":"gpt-4o","search_options":{"a":1,"a":2},"messages":[{"role":"user","content":"x"}]}"#.into());
    v.push(r#"{"model":"qwen-vl-max","enable\u005fsearch":true,"translation_options":{"t":"\u00e9\/\ud83d\ude00"},"messages":[{"role":"user","content":[{"type":"text","text":"\u2028"}]}],"repetition_penalty":1.10}"#.into());
    v
}

/// Qwen's seeds: its own first (all likely), then the shared ones.
const QWEN_SEEDS: usize = 15;

#[test]
fn qwen_seed_count() {
    assert_eq!(qwen_seeds().len(), QWEN_SEEDS);
}

const QWEN_REPLY: &[u8] = b"id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"hi\",\"role\":\"assistant\"},\"finish_reason\":\"stop\"}]},\"usage\":{\"total_tokens\":6,\"output_tokens\":1,\"input_tokens\":5},\"request_id\":\"r1\"}\n\n";

#[test]
fn qwen_fast_request_matches_full_path() {
    agree(
        QWEN_CONFIGS,
        QWEN_REPLY,
        (
            qwen_seeds().into_iter().chain(seeds()).collect(),
            QWEN_SEEDS + LIKELY_SEEDS,
        ),
        8000,
        15,
        &[
            (0, QWEN_SEEDS),
            (0, QWEN_SEEDS + 4),
            (0, QWEN_SEEDS + 8),
            (0, QWEN_SEEDS + 9),
            (0, QWEN_SEEDS + 10),
            (0, QWEN_SEEDS + 11),
            (0, QWEN_SEEDS + 20),
            (0, QWEN_SEEDS + 22),
            // DashScope's parameters, on text and multimodal models.
            (0, 0),
            (0, 1),
            (0, 2),
            (0, 3),
            (0, 4),
            (0, 5),
            (0, 6),
            (0, 7),
            (1, 0),
            (1, 1),
            (2, 14),
            // Multimodal models (every request under configs 3 and 5), qwenFileIds.
            (3, 0),
            (3, 2),
            (3, QWEN_SEEDS + 1),
            (3, QWEN_SEEDS + 8),
            (4, 0),
            (4, 4),
            (4, QWEN_SEEDS + 3),
            (5, 0),
            (5, 1),
            (5, QWEN_SEEDS),
            (5, QWEN_SEEDS + 8),
        ],
        1000,
    );
}

#[test]
fn reader_refuses_what_it_cannot_vouch_for() {
    for body in [
        r#"["model"]"#,
        r#"{"messages":[["user","x"]]}"#,
        r#"{"messages":[],"model":"a","model":"b"}"#,
        r#"{"messages":[],"extra":1}"#,
        r#"{"messages":[],"enable_thinking":true,"enable_thinking":null}"#,
        r#"{"messages":[],"search_options":{"a":1,"a":2}}"#,
        r#"{"messages":[],"temperature":"1"}"#,
        r#"{"messages":[]} x"#,
        r#"{"messages":[{"role":"user","content":"\ud800"}]}"#,
    ] {
        assert!(read(body.as_bytes()).is_none(), "{body}");
    }
    let r = read(br#"{"model":"a\"b","messages":[{"role":"user","content":"plain"}],"stop":"s"}"#)
        .unwrap();
    assert_eq!(r.model(), "a\"b");
    let Some(Content::Text(Cow::Borrowed("plain"))) = &r.messages.as_ref().unwrap()[0].0.content
    else {
        panic!("content is borrowed from the body");
    };
}
