//! Converse replies → OpenAI: buffered responses, usage, stop reasons and errors. The
//! ConverseStream events are read in `stream.rs`.

use super::super::ResponseTranslator;
use super::eventstream::Decoder;
use crate::error::{error_type_for_status, ProxyError};
use crate::openai;
use crate::openai::writer::{tool_call, Choice, Completion, OpenAiWriter};
use crate::sse::SseEvent;
use crate::usage::Usage;
use serde_json::Value;

/// Converse's `stopReason` as OpenAI's finish_reason.
pub(super) fn finish_reason(stop: &str) -> &'static str {
    match stop {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        // end_turn, stop_sequence, or anything new.
        _ => "stop",
    }
}

/// Converse's `usage` (`inputTokens`, `outputTokens`, `totalTokens`, `cacheReadInputTokens`,
/// `cacheWriteInputTokens`): OpenAI's prompt tokens include the cached ones, which Bedrock
/// counts apart from `inputTokens`.
pub(super) fn usage(u: &Value) -> Option<Usage> {
    let o = u.as_object()?;
    let n = |k: &str| o.get(k).and_then(Value::as_u64);
    let (input, output) = (n("inputTokens"), n("outputTokens"));
    if input.is_none() && output.is_none() {
        return None;
    }
    let read = n("cacheReadInputTokens");
    let write = n("cacheWriteInputTokens").unwrap_or(0);
    Some(
        Usage::saturating(
            &[input.unwrap_or(0), read.unwrap_or(0), write],
            &[output.unwrap_or(0)],
            None,
        )
        .with_cached(read),
    )
}

/// An AWS error by its exception name (the `x-amzn-ErrorType` / `:exception-type`), with the
/// HTTP status the Bedrock Runtime API reference documents for it.
pub(super) fn aws_error(status: Option<u16>, exception: &str, payload: &[u8]) -> ProxyError {
    // `ThrottlingException:http://internal...` carries a suffix in the header form.
    let name = exception.split(':').next().unwrap_or("");
    let lower = name.to_ascii_lowercase();
    let documented = match lower.trim_end_matches("exception") {
        "validation" => 400,
        "accessdenied" => 403,
        "resourcenotfound" => 404,
        "modeltimeout" => 408,
        "modelnotready" => 429,
        "throttling" | "servicequotaexceeded" => 429,
        "modelstreamerror" | "modelerror" => 424,
        "serviceunavailable" => 503,
        _ => 500,
    };
    let status = status.unwrap_or(documented);
    let message = serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("Message"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            format!(
                "upstream reported {}",
                if name.is_empty() { "an error" } else { name }
            )
        });
    let mut err = ProxyError::new(status, error_type_for_status(status), message);
    if !name.is_empty() {
        err = err.with_code(name);
    }
    err
}

/// Bounded state: the event-stream decoder (one partial message at most), the open toolUse
/// blocks, and whether messageStop came.
pub(super) struct BedrockTranslator {
    pub(super) decoder: Decoder,
    /// (Converse content block index, OpenAI tool_calls index) of toolUse blocks.
    pub(super) open_tools: Vec<(u64, u32)>,
    pub(super) next_tool: u32,
    pub(super) stopped: bool,
}

impl BedrockTranslator {
    pub(super) fn new() -> Self {
        Self {
            decoder: Decoder::default(),
            open_tools: Vec::new(),
            next_tool: 0,
            stopped: false,
        }
    }
}

impl ResponseTranslator for BedrockTranslator {
    fn on_event(&mut self, _event: SseEvent<'_>, _w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        // ConverseStream is never SSE (see `raw_stream`).
        Err(ProxyError::bad_upstream(
            "upstream sent an SSE stream; Bedrock streams application/vnd.amazon.eventstream",
        ))
    }

    fn raw_stream(&self) -> bool {
        true
    }

    fn on_raw_chunk(&mut self, chunk: &[u8], w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        self.feed(chunk, w)
    }

    fn on_stream_end(&mut self, _w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        if self.decoder.pending() > 0 {
            return Err(ProxyError::bad_upstream(
                "upstream stream ended inside an event-stream message",
            ));
        }
        openai::require_end(self.stopped, "messageStop")
    }

    fn on_body(&mut self, body: &[u8], w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        let v = openai::parse_body(body)?;
        let blocks = v
            .pointer("/output/message/content")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                ProxyError::bad_upstream("upstream reply has no 'output.message.content' array")
            })?;
        let mut choice = Choice {
            finish_reason: v["stopReason"].as_str().map(finish_reason),
            ..Choice::default()
        };
        for block in blocks {
            if let Some(t) = block.get("text").and_then(Value::as_str) {
                choice.content.get_or_insert_with(String::new).push_str(t);
            } else if let Some(tu) = block.get("toolUse") {
                choice.tool_calls.push(tool_call(
                    tu["toolUseId"].as_str().unwrap_or(""),
                    tu["name"].as_str().unwrap_or(""),
                    tu.get("input")
                        .map_or_else(|| "{}".to_string(), Value::to_string),
                ));
            } else if let Some(r) = block.pointer("/reasoningContent/reasoningText/text") {
                choice
                    .reasoning
                    .get_or_insert_with(String::new)
                    .push_str(r.as_str().unwrap_or(""));
            }
        }
        let usage = v.get("usage").and_then(usage);
        if let Some(u) = usage {
            w.set_usage(u);
        }
        w.completion(Completion {
            choices: vec![choice],
            usage,
            ..Completion::default()
        })
    }

    fn on_error(&mut self, status: u16, body: &[u8]) -> ProxyError {
        // The exception name is in a header we do not see; the status and message suffice.
        match serde_json::from_slice::<Value>(body) {
            Ok(v) if v.get("message").is_some_and(Value::is_string) => {
                aws_error(Some(status), v["__type"].as_str().unwrap_or(""), body)
            }
            _ => openai::upstream_error(status, body),
        }
    }
}
