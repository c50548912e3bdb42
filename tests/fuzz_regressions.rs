//! Findings of the fuzz targets (fuzz/, see fuzz/README.md), minimised, kept as regression tests.
//! Each test names the target that found it and what was wrong.

use aiproxy::sse::{SseError, SseParser};

#[derive(Debug, PartialEq)]
enum Sse {
    Event(String, Vec<u8>),
    Error,
}

struct E;
impl From<SseError> for E {
    fn from(_: SseError) -> Self {
        E
    }
}

/// Parses `input` fed in chunks ending at `cuts`; the events, then an `Error` if one stopped it.
fn sse_parse(limit: usize, input: &[u8], cuts: &[usize]) -> Vec<Sse> {
    let mut p = SseParser::new(limit);
    let mut out = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([input.len()]) {
        let r = p.feed(&input[start..end], |ev| {
            out.push(Sse::Event(ev.event.to_string(), ev.data.to_vec()));
            Ok::<(), E>(())
        });
        start = end;
        if r.is_err() {
            out.push(Sse::Error);
            return out;
        }
    }
    if p.finish(|ev| {
        out.push(Sse::Event(ev.event.to_string(), ev.data.to_vec()));
        Ok::<(), E>(())
    })
    .is_err()
    {
        out.push(Sse::Error);
    }
    out
}

/// Target `sse`: a line that arrived whole was not counted against the event size limit, the
/// same line split across chunks was, so `data:x\ndata:y` passed whole and failed split (and a
/// 4-byte unknown field line failed only when split). The limit is now counted per line either way.
#[test]
fn sse_limit_does_not_depend_on_the_split() {
    let cases: [(usize, &[u8]); 4] = [
        (3, b"\0\0\0\0\n"),
        (6, b"data:x\ndata:y\n\nid: 1\nretry: 5\n\n"),
        (8, b"event: abcdefgh\ndata: 1\n\n"),
        (12, b"data: 12345\r\ndata: 6\r\n\r\n"),
    ];
    for (limit, input) in cases {
        let whole = sse_parse(limit, input, &[]);
        for i in 0..=input.len() {
            assert_eq!(
                sse_parse(limit, input, &[i]),
                whole,
                "limit {limit}, {input:?} split at {i}"
            );
        }
        let bytewise: Vec<usize> = (1..input.len()).collect();
        assert_eq!(sse_parse(limit, input, &bytewise), whole, "byte by byte");
    }
}
