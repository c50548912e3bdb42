//! The SSE parser: no panic, state bounded by the limit, and the same events (and the same
//! error, if any) whatever the chunk split.
//!
//! Input: `[limit, split_seed]`, then the stream, then optionally `SEP` and explicit chunk
//! lengths (one byte each).
#![no_main]

mod common;

use aiproxy::sse::{SseError, SseParser, DEFAULT_MAX_EVENT_BYTES};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
enum Out {
    Event(String, Vec<u8>),
    Error(String),
}

struct E(String);
impl From<SseError> for E {
    fn from(e: SseError) -> Self {
        E(e.message)
    }
}

fn parse(limit: usize, input: &[u8], lens: &[usize]) -> Vec<Out> {
    let mut p = SseParser::new(limit);
    let mut out = Vec::new();
    let mut start = 0;
    let push = |ev: aiproxy::sse::SseEvent<'_>, out: &mut Vec<Out>| {
        out.push(Out::Event(ev.event.to_string(), ev.data.to_vec()));
        Ok::<(), E>(())
    };
    for &n in lens {
        let chunk = &input[start..start + n];
        start += n;
        let r = p.feed(chunk, |ev| push(ev, &mut out));
        assert!(
            p.buffered_len() <= limit,
            "parser holds {} bytes, limit {limit}",
            p.buffered_len()
        );
        if let Err(E(m)) = r {
            out.push(Out::Error(m));
            return out;
        }
    }
    if let Err(E(m)) = p.finish(|ev| push(ev, &mut out)) {
        out.push(Out::Error(m));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let (ctl, sections) = common::frame::<2>(data);
    // 0: the default limit (never reached here: parser logic alone); otherwise a small one, so
    // the limit itself is exercised.
    let limit = match ctl[0] {
        0 => DEFAULT_MAX_EVENT_BYTES,
        n => n as usize * 3,
    };
    let input = sections[0];
    let whole = parse(limit, input, &[input.len()]);
    let lens = common::split_lengths(input.len(), sections.get(1).copied(), ctl[1]);
    let split = parse(limit, input, &lens);
    assert_eq!(whole, split, "split {lens:?} changes the result");
});
