//! Criterion suite: request translation of a ~1 KB chat request, buffered response translation,
//! and stream translation of a 1,000-event stream fed whole and in small slices, with throughput
//! in bytes/s. Uses only the public API (what hosts call).

use aiproxy::{Config, Exchange, RequestAction};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::sync::Arc;

const CONFIG: &str = r#"{"provider": {"type": "openai", "apiTokens": ["sk-bench"], "modelMapping": {"gpt-4*": "gpt-4o-mini"},
  "customSettings": [{"name": "max_tokens", "value": 256, "overwrite": false}]}}"#;

fn chat_request() -> String {
    // ~1 KB: a system prompt, a short history and sampling options.
    let filler = "The quick brown fox jumps over the lazy dog. ".repeat(5);
    let body = serde_json::json!({
        "model": "gpt-4o",
        "temperature": 0.7,
        "top_p": 0.9,
        "stream": false,
        "messages": [
            {"role": "system", "content": format!("You are a helpful assistant. {filler}")},
            {"role": "user", "content": format!("First question: {filler}")},
            {"role": "assistant", "content": "A first answer."},
            {"role": "user", "content": format!("Follow-up: {filler}")}
        ]
    })
    .to_string();
    assert!(
        (900..1400).contains(&body.len()),
        "request is {} bytes",
        body.len()
    );
    body
}

fn buffered_response() -> String {
    serde_json::json!({
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "word ".repeat(200)}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 250, "completion_tokens": 200, "total_tokens": 450}
    })
    .to_string()
}

fn stream_1000_events() -> Vec<u8> {
    let mut s = String::new();
    for i in 0..1000 {
        s.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
        ));
    }
    s.push_str("data: [DONE]\n\n");
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

fn benches(c: &mut Criterion) {
    let cfg = Config::from_json(CONFIG.as_bytes()).unwrap();
    let req = chat_request();

    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Bytes(req.len() as u64));
    g.bench_function("chat_1kb", |b| {
        b.iter(|| {
            let mut ex = Exchange::new(Arc::clone(&cfg));
            black_box(
                ex.on_request(
                    "POST",
                    "/v1/chat/completions",
                    &[],
                    black_box(req.as_bytes()),
                )
                .unwrap(),
            );
        })
    });
    g.finish();

    let resp = buffered_response();
    let mut g = c.benchmark_group("response_buffered");
    g.throughput(Throughput::Bytes(resp.len() as u64));
    g.bench_function("chat_completion", |b| {
        b.iter_batched(
            || forwarded(&cfg, &req),
            |mut ex| {
                ex.on_response_headers(200, &[("content-type", "application/json")])
                    .unwrap();
                black_box(
                    ex.on_response_body(resp.as_bytes(), true)
                        .unwrap()
                        .data
                        .len(),
                );
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let stream = stream_1000_events();
    let stream_req = req.replace("\"stream\":false", "\"stream\":true");
    let mut g = c.benchmark_group("response_stream_1000_events");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    for slice in [usize::MAX, 4096, 64] {
        let name = if slice == usize::MAX {
            "whole".to_string()
        } else {
            format!("slices_{slice}b")
        };
        g.bench_function(name, |b| {
            b.iter_batched(
                || forwarded(&cfg, &stream_req),
                |mut ex| {
                    ex.on_response_headers(200, &[("content-type", "text/event-stream")])
                        .unwrap();
                    let mut n = 0;
                    let mut chunks = stream.chunks(slice.min(stream.len())).peekable();
                    while let Some(chunk) = chunks.next() {
                        n += ex
                            .on_response_body(chunk, chunks.peek().is_none())
                            .unwrap()
                            .data
                            .len();
                    }
                    black_box(n);
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(translate, benches);
criterion_main!(translate);
