//! Criterion suite for issue 13's targets, through the public API only (what hosts call):
//! - a ~1 KB chat request for the OpenAI family (openai) and for translating providers (claude,
//!   gemini, qwen, vertex): client request to upstream request; and a ~2 KB agent request
//!   (tools, tool calls and results, `reasoning_effort`) the same way (`request_tools`);
//! - a buffered chat completion response (openai, claude);
//! - 1,000-event streams: the OpenAI family with usage extraction (`include_usage`, final usage
//!   chunk), and Claude, Gemini and Qwen in their native formats, each fed whole, in 4 KB and
//!   64-byte slices and one byte at a time; throughput in bytes/s of upstream stream.
//!
//! `cargo bench --bench translate`; `-- --quick` style filters work as usual (`-- stream/claude`).
//! The bound on a live stream's memory is a unit test (`exchange::held_tests`), not a bench.

use aiproxy::{Config, Exchange, RequestAction};
use criterion::{black_box, criterion_group, BatchSize, Criterion, Throughput};
use std::sync::Arc;
use std::time::Duration;

fn config(kind: &str) -> Arc<Config> {
    Config::from_json(
        format!(
            r#"{{"provider": {{"type": "{kind}", "apiTokens": ["sk-bench"], "modelMapping": {{"gpt-4*": "bench-model"}},
              "customSettings": [{{"name": "max_tokens", "value": 256, "overwrite": false}}]}}}}"#
        )
        .as_bytes(),
    )
    .unwrap()
}

fn chat_request(stream: bool) -> String {
    // ~1 KB: a system prompt, a short history and sampling options.
    let filler = "The quick brown fox jumps over the lazy dog. ".repeat(5);
    let mut body = serde_json::json!({
        "model": "gpt-4o",
        "temperature": 0.7,
        "top_p": 0.9,
        "stream": stream,
        "messages": [
            {"role": "system", "content": format!("You are a helpful assistant. {filler}")},
            {"role": "user", "content": format!("First question: {filler}")},
            {"role": "assistant", "content": "A first answer."},
            {"role": "user", "content": format!("Follow-up: {filler}")}
        ]
    });
    if stream {
        body["stream_options"] = serde_json::json!({"include_usage": true});
    }
    let body = body.to_string();
    assert!(
        (900..1400).contains(&body.len()),
        "request is {} bytes",
        body.len()
    );
    body
}

/// An agent turn (~2 KB): tools with JSON schemas, `tool_choice`, `reasoning_effort`, an
/// assistant message with two tool calls and their `tool` results.
fn agent_request() -> String {
    let body = serde_json::json!({
        "model": "gpt-4o",
        "reasoning_effort": "low",
        "tool_choice": "auto",
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city.",
                "parameters": {"type": "object", "properties": {
                    "city": {"type": "string", "description": "City name, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                    "required": ["city"], "additionalProperties": false}, "strict": true}},
            {"type": "function", "function": {"name": "search_docs", "description": "Full-text search over the project documentation.",
                "parameters": {"type": "object", "properties": {
                    "query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 50}},
                    "required": ["query"]}}},
            {"type": "function", "function": {"name": "read_file", "description": "Reads a file of the workspace.",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}
        ],
        "messages": [
            {"role": "system", "content": "You are a coding assistant. Use the tools when they help; answer briefly and cite the files you read."},
            {"role": "user", "content": "What's the weather in Paris, and where do the docs describe the request fast path?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"unit\":\"celsius\"}"}},
                {"id": "call_s1", "type": "function", "function": {"name": "search_docs", "arguments": "{\"query\":\"request fast path\",\"limit\":3}"}}]},
            {"role": "tool", "tool_call_id": "call_w1", "content": "{\"temperature\":18,\"condition\":\"cloudy\"}"},
            {"role": "tool", "tool_call_id": "call_s1", "content": "docs/architecture.md: One request, step 3 (fast paths); README: Performance"},
            {"role": "assistant", "content": "Paris is 18 C and cloudy. Let me open the architecture notes."},
            {"role": "user", "content": "Yes, read it and summarise step 3."}
        ]
    })
    .to_string();
    assert!(
        (1800..3000).contains(&body.len()),
        "agent request is {} bytes",
        body.len()
    );
    body
}

/// Qwen traffic with DashScope's own parameters (`thinking`: `enable_thinking`,
/// `thinking_budget`, `top_k`, `repetition_penalty`) or a multimodal turn (`vl`: text and image
/// parts for a qwen-vl model), for `request_qwen/<thinking|vl>`.
fn qwen_request(case: &str) -> String {
    let filler = "The quick brown fox jumps over the lazy dog. ".repeat(5);
    let body = match case {
        "thinking" => serde_json::json!({
            "model": "gpt-4o", "temperature": 0.7, "top_p": 0.9, "top_k": 20,
            "enable_thinking": true, "thinking_budget": 4096, "repetition_penalty": 1.05,
            "messages": [
                {"role": "system", "content": format!("You are a helpful assistant. {filler}")},
                {"role": "user", "content": format!("First question: {filler}")},
                {"role": "assistant", "content": "A first answer."},
                {"role": "user", "content": format!("Follow-up: {filler}")}
            ]
        }),
        "vl" => serde_json::json!({
            "model": "qwen-vl-max", "vl_high_resolution_images": true,
            "messages": [
                {"role": "system", "content": format!("You describe images. {filler}")},
                {"role": "user", "content": [
                    {"type": "text", "text": format!("What is in this picture? {filler}")},
                    {"type": "image_url", "image_url": {"url": "https://example.com/images/street-scene-at-night.jpg"}}]},
                {"role": "assistant", "content": "A street at night, with wet asphalt reflecting neon signs."},
                {"role": "user", "content": [{"type": "text", "text": "And the sign on the left?"}]}
            ]
        }),
        other => panic!("unknown qwen request {other}"),
    }
    .to_string();
    assert!(
        (900..1600).contains(&body.len()),
        "qwen request is {} bytes",
        body.len()
    );
    body
}

fn openai_completion_value() -> serde_json::Value {
    serde_json::json!({
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 1700000000, "model": "bench-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "word ".repeat(200)}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 250, "completion_tokens": 200, "total_tokens": 450}
    })
}

fn openai_completion() -> String {
    openai_completion_value().to_string()
}

/// The same reply indented as api.openai.com sends buffered replies (two spaces, one member per
/// line).
fn openai_completion_pretty() -> String {
    serde_json::to_string_pretty(&openai_completion_value()).expect("serialisable")
}

fn claude_message() -> String {
    serde_json::json!({
        "id": "msg_abc", "type": "message", "role": "assistant", "model": "bench-model",
        "content": [{"type": "text", "text": "word ".repeat(200)}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 250, "output_tokens": 200}
    })
    .to_string()
}

const EVENTS: usize = 1000;
/// A short answer's stream (~50 events, like the Envoy benchmark's): the per-stream costs.
const SHORT_EVENTS: usize = 50;

/// OpenAI chunks as api.openai.com sends them, with the final usage chunk of `include_usage`.
fn openai_stream() -> Vec<u8> {
    let mut s = String::new();
    for i in 0..EVENTS {
        s.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"system_fingerprint\":\"fp_b\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
        ));
    }
    s.push_str("data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"system_fingerprint\":\"fp_b\",\"choices\":[],\"usage\":{\"prompt_tokens\":250,\"completion_tokens\":1000,\"total_tokens\":1250}}\n\n");
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

/// A short OpenAI stream as the Envoy comparison's mock sends it (~50 chunks: the role chunk,
/// content, a finishing chunk, then the usage chunk with no choices): what one stream costs
/// besides its events, which the 1,000-event stream hides.
fn openai_short_stream() -> Vec<u8> {
    let head = r#"{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","system_fingerprint":"fp_bench","choices":[{"index":0,"delta":"#;
    let mut s = format!(
        "data: {head}{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
    );
    for i in 0..47 {
        s.push_str(&format!(
            "data: {head}{{\"content\":\" word{i}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
        ));
    }
    s.push_str(&format!(
        "data: {head}{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}]}}\n\n"
    ));
    s.push_str("data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":25,\"completion_tokens\":46,\"total_tokens\":71}}\n\n");
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

/// Anthropic Messages streaming events (docs.anthropic.com, "Streaming Messages").
fn claude_stream() -> Vec<u8> {
    claude_stream_of(EVENTS)
}

fn claude_stream_of(events: usize) -> Vec<u8> {
    let mut s = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_abc\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"bench-model\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":250,\"output_tokens\":1}}}\n\n\
         event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    );
    for i in 0..events {
        s.push_str(&format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"tok{i} \"}}}}\n\n"
        ));
    }
    s.push_str(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
         event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":1000}}\n\n\
         event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    s.into_bytes()
}

/// Gemini `streamGenerateContent?alt=sse`: every event a whole GenerateContentResponse.
fn gemini_stream() -> Vec<u8> {
    gemini_stream_of(EVENTS)
}

fn gemini_stream_of(events: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..events {
        let last = i + 1 == events;
        s.push_str(&format!(
            "data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"text\": \"tok{i} \"}}],\"role\": \"model\"}}{}, \"index\": 0}}],\"usageMetadata\": {{\"promptTokenCount\": 250,\"candidatesTokenCount\": {},\"totalTokenCount\": {}}},\"modelVersion\": \"bench-model\"}}\r\n\r\n",
            if last { ",\"finishReason\": \"STOP\"" } else { "" },
            i + 1,
            251 + i
        ));
    }
    s.into_bytes()
}

/// DashScope text generation with `incremental_output` (id / event / :HTTP_STATUS / data).
fn qwen_stream() -> Vec<u8> {
    qwen_stream_of(EVENTS)
}

fn qwen_stream_of(events: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..events {
        let finish = if i + 1 == events { "stop" } else { "null" };
        s.push_str(&format!(
            "id:{}\nevent:result\n:HTTP_STATUS/200\ndata:{{\"output\":{{\"choices\":[{{\"message\":{{\"content\":\"tok{i} \",\"role\":\"assistant\"}},\"finish_reason\":\"{finish}\"}}]}},\"usage\":{{\"total_tokens\":{},\"input_tokens\":250,\"output_tokens\":{}}},\"request_id\":\"5bef2386-ce2c-9a1f-8b56-a1e7a7bc3b74\"}}\n\n",
            i + 1,
            251 + i,
            i + 1
        ));
    }
    s.into_bytes()
}

fn forwarded(cfg: &Arc<Config>, body: &str) -> Exchange {
    let mut ex = Exchange::new(Arc::clone(cfg));
    match ex
        .on_request("POST", "/v1/chat/completions", &[], body.as_bytes())
        .unwrap()
    {
        RequestAction::Forward(_) => ex,
        other => panic!("{other:?}"),
    }
}

/// Runs a whole stream through a fresh exchange in `slice`-byte pieces; returns output bytes.
fn run_stream(mut ex: Exchange, stream: &[u8], slice: usize) -> usize {
    ex.on_response_headers(200, &[("content-type", "text/event-stream")])
        .unwrap();
    let mut n = 0;
    for chunk in stream.chunks(slice.min(stream.len())) {
        n += ex.on_response_body(chunk, false).unwrap().data.len();
    }
    n += ex.on_response_body(&[], true).unwrap().data.len();
    assert!(ex.usage().is_some(), "usage not extracted");
    n
}

fn quick<'c>(
    c: &'c mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.sample_size(30);
    g
}

fn benches(c: &mut Criterion) {
    let req = chat_request(false);
    let stream_req = chat_request(true);

    let agent = agent_request();
    for (group, body) in [("request_1kb", &req), ("request_tools", &agent)] {
        let mut g = quick(c, group);
        g.throughput(Throughput::Bytes(body.len() as u64));
        // vertex: express mode (the API key) with a Gemini model.
        for kind in ["openai", "claude", "gemini", "qwen", "vertex"] {
            let cfg = config(kind);
            g.bench_function(kind, |b| {
                b.iter(|| {
                    let mut ex = Exchange::new(Arc::clone(&cfg));
                    black_box(
                        ex.on_request(
                            "POST",
                            "/v1/chat/completions",
                            &[],
                            black_box(body.as_bytes()),
                        )
                        .unwrap(),
                    );
                })
            });
        }
        g.finish();
    }

    let mut g = quick(c, "response_buffered");
    for (name, body) in [
        ("openai", openai_completion()),
        ("openai_pretty", openai_completion_pretty()),
        ("claude", claude_message()),
    ] {
        let kind = name.trim_end_matches("_pretty");
        let cfg = config(kind);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| {
            b.iter_batched(
                || forwarded(&cfg, &req),
                |mut ex| {
                    ex.on_response_headers(200, &[("content-type", "application/json")])
                        .unwrap();
                    black_box(
                        ex.on_response_body(body.as_bytes(), true)
                            .unwrap()
                            .data
                            .len(),
                    );
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    for (kind, stream) in [
        ("openai_usage", openai_stream()),
        ("claude", claude_stream()),
        ("gemini", gemini_stream()),
        ("qwen", qwen_stream()),
    ] {
        let cfg = config(kind.trim_end_matches("_usage"));
        let mut g = quick(c, &format!("stream_1000_events/{kind}"));
        g.throughput(Throughput::Bytes(stream.len() as u64));
        for (name, slice) in [
            ("whole", usize::MAX),
            ("slices_4kb", 4096),
            ("slices_64b", 64),
            ("bytes_1", 1),
        ] {
            g.bench_function(name, |b| {
                b.iter_batched(
                    || forwarded(&cfg, &stream_req),
                    |ex| black_box(run_stream(ex, &stream, slice)),
                    BatchSize::SmallInput,
                )
            });
        }
        g.finish();
    }

    let stream = openai_short_stream();
    let cfg = config("openai");
    let mut g = quick(c, "stream_50_events/openai_usage");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("whole", |b| {
        b.iter_batched(
            || forwarded(&cfg, &stream_req),
            |ex| black_box(run_stream(ex, &stream, usize::MAX)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(translate, benches);

/// `AIPROXY_PROFILE=<case>:<iterations>` runs one case that many times without criterion, for
/// instruction counts under callgrind (stable on a loaded machine, unlike wall clock). Cases:
/// `request/<kind>`, `request_tools/<kind>` (the agent request), `request_qwen/<thinking|vl>`, `response/<openai|openai_pretty|claude>`, `stream/<openai_usage|claude|gemini|qwen>/<slice>`
/// with slice `whole`, `4096`, `64` or `1`, and `stream_short/<kind>/<slice>` (the ~50-event
/// stream with a usage chunk: the per-stream cost). Instructions per iteration: run with N and 1 and
/// divide the difference by N - 1 (this strips start-up and fixture building).
fn profile(spec: &str) {
    let (case, n) = spec.rsplit_once(':').expect("<case>:<iterations>");
    let n: usize = n.parse().expect("iterations");
    let parts: Vec<&str> = case.split('/').collect();
    let req = chat_request(false);
    let stream_req = chat_request(true);
    match parts.as_slice() {
        [group @ ("request" | "request_tools" | "request_qwen"), which] => {
            let (cfg, body) = match *group {
                "request" => (config(which), req),
                "request_tools" => (config(which), agent_request()),
                _ => (config("qwen"), qwen_request(which)),
            };
            for _ in 0..n {
                let mut ex = Exchange::new(Arc::clone(&cfg));
                match black_box(ex.on_request("POST", "/v1/chat/completions", &[], body.as_bytes()))
                    .unwrap()
                {
                    RequestAction::Forward(_) => {}
                    other => panic!("{other:?}"),
                }
            }
        }
        ["response", name] => {
            let cfg = config(name.trim_end_matches("_pretty"));
            let body = match *name {
                "claude" => claude_message(),
                "openai_pretty" => openai_completion_pretty(),
                _ => openai_completion(),
            };
            for _ in 0..n {
                let mut ex = forwarded(&cfg, &req);
                ex.on_response_headers(200, &[("content-type", "application/json")])
                    .unwrap();
                black_box(
                    ex.on_response_body(body.as_bytes(), true)
                        .unwrap()
                        .data
                        .len(),
                );
            }
        }
        [group @ ("stream" | "stream_short"), kind, slice] => {
            let stream = match *kind {
                "openai_usage" if *group == "stream_short" => openai_short_stream(),
                "claude" if *group == "stream_short" => claude_stream_of(SHORT_EVENTS),
                "gemini" if *group == "stream_short" => gemini_stream_of(SHORT_EVENTS),
                "qwen" if *group == "stream_short" => qwen_stream_of(SHORT_EVENTS),
                _ if *group == "stream_short" => panic!("no short stream {kind}"),
                "openai_usage" => openai_stream(),
                "claude" => claude_stream(),
                "gemini" => gemini_stream(),
                "qwen" => qwen_stream(),
                other => panic!("unknown stream {other}"),
            };
            let slice = if *slice == "whole" {
                usize::MAX
            } else {
                slice.parse().expect("slice size")
            };
            let cfg = config(kind.trim_end_matches("_usage"));
            for _ in 0..n {
                black_box(run_stream(forwarded(&cfg, &stream_req), &stream, slice));
            }
        }
        _ => panic!("unknown case {case}"),
    }
}

fn main() {
    if let Ok(spec) = std::env::var("AIPROXY_PROFILE") {
        profile(&spec);
        return;
    }
    translate();
    Criterion::default().configure_from_args().final_summary();
}
