//! Criterion suite for the Anthropic Messages front: a ~1 KB Messages request converted and
//! translated, and a 1,000-event OpenAI stream converted to Anthropic events (whole and in 64-byte
//! slices), next to `translate`'s plain OpenAI numbers. Public API only.

use aiproxy::{Config, Exchange, RequestAction};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::sync::Arc;

const CONFIG: &str = r#"{"provider": {"type": "openai", "apiTokens": ["sk-bench"], "modelMapping": {"claude-*": "gpt-4o-mini"}}}"#;

fn messages_request(stream: bool) -> String {
    let filler = "The quick brown fox jumps over the lazy dog. ".repeat(5);
    serde_json::json!({
        "model": "claude-sonnet-5-5",
        "max_tokens": 1024,
        "stream": stream,
        "system": [{"type": "text", "text": format!("You are helpful. {filler}"), "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": format!("First question: {filler}")},
            {"role": "assistant", "content": [{"type": "text", "text": "A first answer."}]},
            {"role": "user", "content": [{"type": "text", "text": format!("Follow-up: {filler}")}]}
        ]
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
    s.push_str("data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n");
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

fn forwarded(cfg: &Arc<Config>, body: &str) -> Exchange {
    let mut ex = Exchange::new(Arc::clone(cfg));
    match ex
        .on_request("POST", "/v1/messages", &[], body.as_bytes())
        .unwrap()
    {
        RequestAction::Forward(_) => ex,
        other => panic!("{other:?}"),
    }
}

fn benches(c: &mut Criterion) {
    let cfg = Config::from_json(CONFIG.as_bytes()).unwrap();
    let req = messages_request(false);
    let mut g = c.benchmark_group("anthropic_request");
    g.throughput(Throughput::Bytes(req.len() as u64));
    g.bench_function("messages_1kb", |b| {
        b.iter(|| {
            let mut ex = Exchange::new(Arc::clone(&cfg));
            black_box(
                ex.on_request("POST", "/v1/messages", &[], black_box(req.as_bytes()))
                    .unwrap(),
            );
        })
    });
    g.finish();

    let stream = stream_1000_events();
    let stream_req = messages_request(true);
    let mut g = c.benchmark_group("anthropic_stream_1000_events");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    for slice in [usize::MAX, 64] {
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

criterion_group!(anthropic_front, benches);
criterion_main!(anthropic_front);
