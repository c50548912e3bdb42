//! Request translation for every provider type: arbitrary path, headers, body and callout answer.
//! Asserts no panic, every local reply a 4xx/5xx with an OpenAI error body and no secret in it,
//! and every forward well-formed (no CR/LF/NUL in header values or translated paths, a JSON body).
//!
//! Input: `[config, flags, callout_status]`, then the body, then optionally `SEP` path, `SEP`
//! headers (`name: value` lines), `SEP` callout body.
//! flags: bits 0-1 method, bits 2-4 path, bit 5 `content-encoding: gzip`, bit 6 no content-type.
#![no_main]

mod common;

use aiproxy::{ClientProtocol, ProviderType};
use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 4] = ["POST", "post", "GET", "PUT"];
const PATHS: [&str; 7] = [
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/chat/completions?api-version=2024-02-15-preview",
    "/openai/v1/embeddings",
    "/v1/models",
    "/v1/messages",
    "/compatible-mode/v1/chat/completions",
];
const CALLOUT_STATUS: [u16; 8] = [200, 200, 204, 299, 404, 500, 0, 199];

fuzz_target!(|data: &[u8]| {
    let (ctl, sections) = common::frame::<3>(data);
    let cfg = common::config(ctl[0]);
    let flags = ctl[1];
    let method = METHODS[(flags & 3) as usize];
    let owned_path;
    let path = match ((flags >> 2) & 7) as usize {
        7 => {
            owned_path =
                String::from_utf8_lossy(sections.get(1).copied().unwrap_or(b"/")).into_owned();
            owned_path.as_str()
        }
        i => PATHS[i],
    };
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if flags & 0x40 == 0 {
        headers.push(("content-type", "application/json"));
    }
    if flags & 0x20 != 0 {
        headers.push(("content-encoding", "gzip"));
    }
    let header_text;
    if let Some(h) = sections.get(2) {
        header_text = String::from_utf8_lossy(h).into_owned();
        for line in header_text.lines() {
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim(), v.trim()));
            }
        }
    }
    let callout_body = sections.get(3).copied().unwrap_or(b"conversation context");
    let callout_status = CALLOUT_STATUS[ctl[2] as usize % CALLOUT_STATUS.len()];
    let translates = cfg.translates(method, path);
    if let Some((ex, translated)) = common::run_request(
        &cfg,
        method,
        path,
        &headers,
        sections[0],
        (callout_status, callout_body),
    ) {
        // Messages to provider claude go natively: the client's bytes are kept unless the model
        // is mapped, so there a translating request may keep its body.
        let native = ex.client_protocol() == ClientProtocol::Anthropic
            && cfg.provider.kind == ProviderType::Claude;
        if native {
            assert!(
                translates || !translated,
                "body replaced on a passthrough path"
            );
        } else {
            assert_eq!(translated, translates, "body replaced iff translated");
        }
    }
});
