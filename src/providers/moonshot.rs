//! moonshot's own piece beside its table row: `moonshotFileId`, a file uploaded to Moonshot's
//! files API whose extracted content becomes the conversation context.
//!
//! Facts used (Moonshot's public API docs): `GET https://api.moonshot.cn/v1/files/{file_id}/content`
//! with Bearer auth returns the file's extracted text; deployed versions wrap it as JSON with a
//! `content` field.

use crate::context::Callout;
use serde_json::Value;

/// Moonshot's files API host (the same host as its chat API).
const HOST: &str = "api.moonshot.cn";

/// The fetch of the file's content, made by the host before each chat request.
pub fn file_callout(file_id: &str, token: &str, timeout_ms: u64) -> Callout {
    Callout {
        cluster: HOST.to_string(),
        port: 443,
        authority: HOST.to_string(),
        path: format!("/v1/files/{file_id}/content"),
        method: "GET",
        headers: vec![("authorization".into(), format!("Bearer {token}"))],
        body: Vec::new(),
        timeout_ms,
    }
}

/// The context text of the answer: the JSON `content` field when present, else the raw text.
pub fn file_text(text: &str) -> String {
    if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text) {
        if let Some(Value::String(c)) = o.get("content") {
            return c.clone();
        }
    }
    text.to_string()
}
