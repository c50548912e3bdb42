//! Response translation, buffered and streamed, for every provider type. The same upstream
//! response is fed whole and split into fuzzer-chosen chunks (empty chunks included); the
//! client-visible result (mode, headers, status, bytes after blanking generated ids/timestamps,
//! usage) must not depend on the split. Also checks the output's shape: a stream is `data:` JSON
//! events ending in exactly one `[DONE]`; a buffered error is an OpenAI error body.
//!
//! Input: `[config, flags, status, split_seed]`, then the upstream body, then optionally `SEP`
//! and explicit chunk lengths (one byte each).
//! flags: bit 0 stream request, bit 1 include_usage, bit 2 embeddings, bits 3-5 content type,
//! bit 6 end of stream on a separate empty call, bit 7 `content-encoding: gzip`.
#![no_main]

mod common;

use aiproxy::{Exchange, ResponseMode};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const STATUS: [u16; 16] = [
    200, 200, 200, 201, 204, 299, 400, 401, 403, 404, 429, 500, 502, 503, 302, 600,
];
const CONTENT_TYPES: [&str; 8] = [
    "text/event-stream",
    "application/json",
    "text/event-stream; charset=utf-8",
    "",
    "text/html",
    "application/x-ndjson",
    "application/json; charset=utf-8",
    "TEXT/EVENT-STREAM",
];

#[derive(Debug, PartialEq)]
struct Outcome {
    mode: ResponseMode,
    set_headers: Vec<(String, String)>,
    status: Option<u16>,
    body: Vec<u8>,
    usage: Option<aiproxy::Usage>,
}

fn respond(
    mut ex: Exchange,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    lens: &[usize],
    eos_apart: bool,
) -> Outcome {
    let rh = ex
        .on_response_headers(status, headers)
        .expect("headers after a forward");
    let mut out = Vec::new();
    let mut final_status = None;
    let mut start = 0;
    for (i, &n) in lens.iter().enumerate() {
        let chunk = &body[start..start + n];
        start += n;
        let last = i + 1 == lens.len() && !eos_apart;
        let r = ex.on_response_body(chunk, last).expect("body in order");
        if r.unchanged {
            assert_eq!(rh.mode, ResponseMode::Passthrough);
            out.extend_from_slice(chunk);
        } else {
            out.extend_from_slice(r.data);
        }
        if r.status.is_some() {
            assert!(last, "a status before the end");
            final_status = r.status;
        }
    }
    if eos_apart {
        let r = ex.on_response_body(b"", true).expect("end of stream");
        out.extend_from_slice(r.data);
        final_status = r.status.or(final_status);
    }
    assert!(
        ex.on_response_body(b"", true).is_err(),
        "body accepted after the end"
    );
    if rh.mode == ResponseMode::Buffer {
        assert!(final_status.is_some(), "buffer mode ended without a status");
    }
    Outcome {
        mode: rh.mode,
        set_headers: rh.set_headers,
        status: final_status,
        body: out,
        usage: ex.usage(),
    }
}

fn check_shape(o: &Outcome) {
    let sse_out = o
        .set_headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "text/event-stream");
    match o.mode {
        ResponseMode::Passthrough => {}
        ResponseMode::Stream => common::check_sse_output(&o.body),
        ResponseMode::Buffer if sse_out => common::check_sse_output(&o.body),
        ResponseMode::Buffer => {
            let status = o.status.unwrap();
            let v: Value = serde_json::from_slice(&o.body).unwrap_or_else(|e| {
                panic!(
                    "buffered reply ({status}) is not JSON ({e}): {:?}",
                    String::from_utf8_lossy(&o.body)
                )
            });
            if !(200..300).contains(&status) {
                common::check_error_json(&v);
            }
            if v.get("error").is_some() {
                assert!(status >= 400, "an error body with status {status}: {v}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (ctl, sections) = common::frame::<4>(data);
    let cfg = common::config(ctl[0]);
    let flags = ctl[1];
    let stream = flags & 1 != 0;
    let embeddings = flags & 4 != 0;
    let (path, req) = if embeddings {
        (
            "/v1/embeddings",
            r#"{"model":"text-embedding-v1","input":["Hello","world"]}"#.to_string(),
        )
    } else {
        (
            "/v1/chat/completions",
            format!(
                r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"Hi"}}],"stream":{stream},"stream_options":{{"include_usage":{}}}}}"#,
                flags & 2 != 0
            ),
        )
    };
    let make = || {
        common::run_request(
            &cfg,
            "POST",
            path,
            &[("content-type", "application/json")],
            req.as_bytes(),
            (200, b"context"),
        )
    };
    let Some((first, _)) = make() else {
        return; // the provider does not offer this API
    };
    let status = STATUS[ctl[2] as usize % STATUS.len()];
    let mut headers = vec![("content-type", CONTENT_TYPES[((flags >> 3) & 7) as usize])];
    if flags & 0x80 != 0 {
        headers.push(("content-encoding", "gzip"));
    }
    let eos_apart = flags & 0x40 != 0;
    let body = sections[0];

    let whole = respond(first, status, &headers, body, &[body.len()], false);
    check_shape(&whole);
    let lens = common::split_lengths(body.len(), sections.get(1).copied(), ctl[3]);
    let (second, _) = make().expect("forwarded once, forwarded again");
    let split = respond(second, status, &headers, body, &lens, eos_apart);
    let norm = |o: Outcome| Outcome {
        body: common::normalise(&o.body),
        ..o
    };
    let (whole, split) = (norm(whole), norm(split));
    assert!(
        whole == split,
        "the split {lens:?} (eos apart: {eos_apart}) changes the result:\nwhole: {:?} {:?}\n{}\nsplit: {:?} {:?}\n{}",
        whole.mode,
        whole.status,
        String::from_utf8_lossy(&whole.body),
        split.mode,
        split.status,
        String::from_utf8_lossy(&split.body)
    );
});
