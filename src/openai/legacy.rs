//! The hand-written output helpers translators used before [`super::writer`]; kept only while
//! the last translators move over.

use super::writer::StreamMeta;
use crate::error::ProxyError;
use crate::sse;
use crate::usage::Usage;
use serde::Serialize;
use serde_json::{Map, Value};

/// The `delta` of a chunk; `None` fields are omitted.
#[derive(Debug, Default, Serialize)]
pub struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<&'a Value>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: &'a Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct UsageJson {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

#[derive(Serialize)]
struct Chunk<'a, C: Serialize> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: C,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageJson>,
}

impl StreamMeta {
    /// Appends one `chat.completion.chunk` event with a single choice. Serialised straight into
    /// `out`: no intermediate JSON tree.
    pub fn write_chunk(
        &self,
        out: &mut Vec<u8>,
        index: u32,
        delta: &Delta<'_>,
        finish_reason: Option<&str>,
    ) {
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: [ChunkChoice {
                index,
                delta,
                logprobs: None,
                finish_reason,
            }],
            usage: None,
        };
        sse::write_data(out, &chunk);
    }

    /// Appends the usage chunk OpenAI sends for `stream_options.include_usage` (empty choices).
    pub fn write_usage_chunk(&self, out: &mut Vec<u8>, usage: &Usage) {
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: [(); 0],
            usage: Some(UsageJson {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
                total_tokens: usage.total_tokens,
            }),
        };
        sse::write_data(out, &chunk);
    }
}

/// An error event inside a stream: the openai SDKs raise on a `data:` event carrying `error`.
pub fn write_stream_error(out: &mut Vec<u8>, err: &ProxyError) {
    sse::write_data(out, &err.to_json());
}

/// One choice of a buffered chat completion, as translating providers produce it.
pub fn completion_choice(index: usize, message: Value, finish_reason: &str) -> Value {
    serde_json::json!({
        "index": index,
        "message": message,
        "logprobs": null,
        "finish_reason": finish_reason,
    })
}

/// An assistant message with content (possibly null) and optional tool calls.
pub fn assistant_message(content: Option<String>, tool_calls: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("role".into(), "assistant".into());
    m.insert("content".into(), content.map_or(Value::Null, Value::String));
    m.insert("refusal".into(), Value::Null);
    if let Some(tc) = tool_calls {
        m.insert("tool_calls".into(), tc);
    }
    Value::Object(m)
}

/// A whole chat completion body.
pub fn completion(
    id: String,
    created: u64,
    model: &str,
    choices: Vec<Value>,
    usage: Option<&Usage>,
) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), id.into());
    m.insert("object".into(), "chat.completion".into());
    m.insert("created".into(), created.into());
    m.insert("model".into(), model.into());
    m.insert("choices".into(), Value::Array(choices));
    if let Some(u) = usage {
        m.insert("usage".into(), u.to_json());
    }
    Value::Object(m)
}

/// An embeddings list body.
pub fn embedding_list(model: &str, vectors: Vec<Value>, usage: &Usage) -> Value {
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| serde_json::json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    serde_json::json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_writer_shape() {
        let meta = StreamMeta {
            id: "chatcmpl-1".into(),
            created: 5,
            model: "m".into(),
        };
        let mut out = Vec::new();
        meta.write_chunk(
            &mut out,
            0,
            &Delta {
                content: Some("hi"),
                ..Default::default()
            },
            None,
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        );
    }
}
