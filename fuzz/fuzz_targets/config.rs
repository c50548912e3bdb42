//! Configuration loading. Each input is tried twice: as the raw configuration bytes, and as
//! fuzzed fields inside a valid skeleton for one provider type (so the per-provider validation
//! and the values' later use are reached). Every accepted configuration then serves a chat
//! request, an embeddings request and a passthrough request without panicking, and every local
//! reply is an OpenAI error.
//!
//! Input: `[provider, key]`, then the field value(s): a JSON object merged into the skeleton's
//! `provider`, any other JSON value set at key `KEYS[key]`, or else the text as a string there.
#![no_main]

mod common;

use aiproxy::Config;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use std::sync::Arc;

const KEYS: &[&str] = &[
    "type",
    "apiTokens",
    "timeout",
    "modelMapping",
    "protocol",
    "context",
    "customSettings",
    "openaiCustomUrl",
    "responseJsonSchema",
    "azureServiceUrl",
    "moonshotFileId",
    "qwenEnableSearch",
    "qwenFileIds",
    "minimaxGroupId",
    "claudeVersion",
    "version",
    "ollamaServerHost",
    "ollamaServerPort",
    "hunyuanAuthId",
    "hunyuanAuthKey",
    "cloudflareAccountId",
    "geminiSafetySetting",
    "targetLang",
];

fn exercise(cfg: &Arc<Config>) {
    let chat =
        br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"temperature":0.5}"#;
    let emb = br#"{"model":"text-embedding-3-small","input":["Hello"]}"#;
    let h: &[(&str, &str)] = &[("content-type", "application/json")];
    common::run_request(
        cfg,
        "POST",
        "/v1/chat/completions",
        h,
        chat,
        (200, b"context"),
    );
    common::run_request(cfg, "POST", "/v1/embeddings", h, emb, (200, b"context"));
    common::run_request(cfg, "GET", "/v1/models?x=1", h, b"", (200, b""));
    let _ = cfg.needs_request_body("POST", "/v1/chat/completions");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(cfg) = Config::from_json(data) {
        exercise(&cfg);
    }

    let (ctl, sections) = common::frame::<2>(data);
    let skeleton: Value = serde_json::from_str(common::CONFIGS[ctl[0] as usize % 21]).unwrap();
    let mut root = skeleton;
    let provider: &mut Map<String, Value> = root["provider"].as_object_mut().unwrap();
    let text = sections[0];
    match serde_json::from_slice::<Value>(text) {
        Ok(Value::Object(fields)) => provider.extend(fields),
        Ok(v) => {
            provider.insert(KEYS[ctl[1] as usize % KEYS.len()].into(), v);
        }
        Err(_) => {
            provider.insert(
                KEYS[ctl[1] as usize % KEYS.len()].into(),
                String::from_utf8_lossy(text).into_owned().into(),
            );
        }
    }
    let bytes = serde_json::to_vec(&root).unwrap();
    match Config::from_json(&bytes) {
        Ok(cfg) => exercise(&cfg),
        Err(e) => {
            let shown = e.to_string();
            for k in common::SECRETS {
                assert!(!shown.contains(k), "config error shows a secret: {shown}");
            }
        }
    }
});
