//! OpenAI chat completion chunks (the pipeline's SSE output) → Anthropic stream events, event by
//! event as they arrive.
//!
//! Order produced (Anthropic "Streaming Messages"): `message_start`; per content block
//! `content_block_start`, `content_block_delta` (`thinking_delta` from `reasoning_content`,
//! `text_delta` from `content`, `input_json_delta` from tool-call `arguments`),
//! `content_block_stop`; then `message_delta` (stop reason, usage) and `message_stop` once the
//! OpenAI stream ends (`[DONE]`), since OpenAI's usage chunk follows the finish reason. An OpenAI
//! error event becomes an `error` event and ends the stream.
//!
//! State is bounded: the SSE parser's partial event, the open block, the OpenAI indexes of the
//! tool calls seen (at most [`MAX_TOOL_CALLS`]), the stop reason and the usage counts.

use super::response::{message_id, stop_reason, tool_use_id};
use super::{error_type_for_openai_kind, write_event};
use crate::sse::{SseError, SseEvent, SseParser};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::borrow::Cow;

/// Most tool calls one streamed reply may open.
pub const MAX_TOOL_CALLS: usize = 256;

#[derive(Deserialize)]
struct ChunkIn<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    choices: Option<Vec<ChoiceIn<'a>>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChoiceIn<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow, default)]
    delta: Option<DeltaIn<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    /// vLLM's matched stop string (may also be a token id).
    #[serde(default)]
    stop_reason: Option<Value>,
    /// SGLang's matched stop string.
    #[serde(default)]
    matched_stop: Option<Value>,
}

#[derive(Deserialize)]
struct DeltaIn<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolDeltaIn<'a>>>,
}

#[derive(Deserialize)]
struct ToolDeltaIn<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<FunctionIn<'a>>,
}

#[derive(Deserialize)]
struct FunctionIn<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum DeltaOut<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "input_json_delta")]
    Json { partial_json: &'a str },
}

#[derive(Serialize)]
struct BlockDeltaOut<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    index: u32,
    delta: DeltaOut<'a>,
}

#[derive(Serialize)]
struct BlockStopOut {
    #[serde(rename = "type")]
    ty: &'static str,
    index: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    /// A tool call, by its OpenAI `index`.
    Tool(u32),
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    prompt: u64,
    completion: u64,
    cached: u64,
}

#[derive(Debug)]
pub struct StreamConverter {
    parser: SseParser,
    stop_sequences: Vec<String>,
    /// The model we sent upstream, for a stream whose chunks name none.
    model: String,
    started: bool,
    ended: bool,
    open: Option<(Block, u32)>,
    next_index: u32,
    tools_seen: Vec<u32>,
    stop: Option<(&'static str, Option<String>)>,
    usage: Option<Counts>,
}

impl StreamConverter {
    pub fn new(model: &str, stop_sequences: Vec<String>) -> Self {
        Self {
            parser: SseParser::default(),
            stop_sequences,
            model: model.to_string(),
            started: false,
            ended: false,
            open: None,
            next_index: 0,
            tools_seen: Vec::new(),
            stop: None,
            usage: None,
        }
    }

    /// Feeds OpenAI SSE bytes (any split); appends the Anthropic events they complete to `out`.
    pub fn feed(&mut self, openai: &[u8], end_of_stream: bool, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        let mut parser = std::mem::take(&mut self.parser);
        let mut on_event = |ev: SseEvent<'_>| -> Result<(), SseError> {
            self.on_data(ev.data, out);
            Ok(())
        };
        let mut r = parser.feed(openai, &mut on_event);
        if r.is_ok() && end_of_stream {
            r = parser.finish(&mut on_event);
        }
        self.parser = parser;
        if let Err(e) = r {
            self.fail(out, "api_error", &e.message);
        }
        if end_of_stream && !self.ended {
            if self.started && self.stop.is_some() {
                self.finish(out);
            } else {
                self.fail(
                    out,
                    "api_error",
                    "the upstream stream ended before the reply was complete",
                );
            }
        }
    }

    /// Whether the Anthropic stream is complete (`message_stop` or `error` written).
    pub fn ended(&self) -> bool {
        self.ended
    }

    fn fail(&mut self, out: &mut Vec<u8>, kind: &str, message: &str) {
        write_event(
            out,
            "error",
            &json!({"type": "error", "error": {"type": kind, "message": message}}),
        );
        self.ended = true;
    }

    fn on_data(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        let trimmed = data.trim_ascii();
        if trimmed.is_empty() {
            return;
        }
        if trimmed == b"[DONE]" {
            if self.started {
                self.finish(out);
            } else {
                self.fail(
                    out,
                    "api_error",
                    "the upstream stream ended without a reply",
                );
            }
            return;
        }
        let chunk: ChunkIn<'_> = match serde_json::from_slice(trimmed) {
            Ok(c) => c,
            Err(e) => {
                self.fail(out, "api_error", &format!("malformed upstream chunk: {e}"));
                return;
            }
        };
        if let Some(err) = chunk.error.as_ref() {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| err.to_string(), str::to_string);
            let kind =
                error_type_for_openai_kind(err.get("type").and_then(Value::as_str).unwrap_or(""));
            self.fail(out, kind, &message);
            return;
        }
        if !self.started {
            self.start(chunk.id.as_deref(), chunk.model.as_deref(), out);
        }
        if let Some(u) = chunk.usage.as_ref().filter(|u| u.is_object()) {
            let get = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
            self.usage = Some(Counts {
                prompt: get("prompt_tokens"),
                completion: get("completion_tokens"),
                cached: u
                    .get("prompt_tokens_details")
                    .and_then(|d| d.get("cached_tokens"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            });
        }
        for choice in chunk.choices.iter().flatten().filter(|c| c.index == 0) {
            if let Some(d) = &choice.delta {
                let reasoning = d.reasoning_content.as_deref().or(d.reasoning.as_deref());
                if let Some(t) = reasoning.filter(|t| !t.is_empty()) {
                    self.delta(Block::Thinking, DeltaOut::Thinking { thinking: t }, out);
                }
                if let Some(t) = d.content.as_deref().filter(|t| !t.is_empty()) {
                    self.delta(Block::Text, DeltaOut::Text { text: t }, out);
                }
                for tc in d.tool_calls.iter().flatten() {
                    if !self.tool_delta(tc, out) {
                        return;
                    }
                }
            }
            if let Some(fr) = choice.finish_reason.as_deref() {
                let matched = choice
                    .stop_reason
                    .as_ref()
                    .or(choice.matched_stop.as_ref())
                    .and_then(Value::as_str);
                self.stop = Some(stop_reason(Some(fr), matched, &self.stop_sequences));
                self.close_block(out);
            }
        }
    }

    fn start(&mut self, id: Option<&str>, model: Option<&str>, out: &mut Vec<u8>) {
        self.started = true;
        let model = model.filter(|m| !m.is_empty()).unwrap_or(&self.model);
        write_event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": message_id(id),
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": model,
                "stop_reason": null,
                "stop_sequence": null,
                // OpenAI reports usage at the end; message_delta carries the real counts.
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }}),
        );
    }

    fn open_block(&mut self, block: Block, content_block: Value, out: &mut Vec<u8>) -> u32 {
        self.close_block(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((block, index));
        write_event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": content_block}),
        );
        index
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            write_event(
                out,
                "content_block_stop",
                &BlockStopOut {
                    ty: "content_block_stop",
                    index,
                },
            );
        }
    }

    fn delta(&mut self, block: Block, delta: DeltaOut<'_>, out: &mut Vec<u8>) {
        let index = match self.open {
            Some((b, i)) if b == block => i,
            _ => {
                let start = match block {
                    Block::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
                    _ => json!({"type": "text", "text": ""}),
                };
                self.open_block(block, start, out)
            }
        };
        write_event(
            out,
            "content_block_delta",
            &BlockDeltaOut {
                ty: "content_block_delta",
                index,
                delta,
            },
        );
    }

    /// One tool-call fragment; `false` when it ended the stream with an error.
    fn tool_delta(&mut self, tc: &ToolDeltaIn<'_>, out: &mut Vec<u8>) -> bool {
        let oi = tc.index.unwrap_or(0);
        let index = match self.open {
            Some((Block::Tool(i), index)) if i == oi => index,
            _ => {
                if self.tools_seen.contains(&oi) {
                    // Anthropic blocks are sequential; a call cannot be reopened.
                    self.fail(
                        out,
                        "api_error",
                        "the upstream interleaved tool call arguments, which cannot be streamed in order",
                    );
                    return false;
                }
                if self.tools_seen.len() >= MAX_TOOL_CALLS {
                    self.fail(out, "api_error", "too many tool calls in one reply");
                    return false;
                }
                self.tools_seen.push(oi);
                let id = tc
                    .id
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .map_or_else(tool_use_id, str::to_string);
                let name = tc
                    .function
                    .as_ref()
                    .and_then(|f| f.name.as_deref())
                    .unwrap_or_default();
                self.open_block(
                    Block::Tool(oi),
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    out,
                )
            }
        };
        if let Some(args) = tc
            .function
            .as_ref()
            .and_then(|f| f.arguments.as_deref())
            .filter(|a| !a.is_empty())
        {
            write_event(
                out,
                "content_block_delta",
                &BlockDeltaOut {
                    ty: "content_block_delta",
                    index,
                    delta: DeltaOut::Json { partial_json: args },
                },
            );
        }
        true
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.close_block(out);
        let (reason, seq) = self.stop.take().unwrap_or(("end_turn", None));
        let c = self.usage.unwrap_or_default();
        write_event(
            out,
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": seq},
                "usage": {
                    "input_tokens": c.prompt.saturating_sub(c.cached),
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": c.cached,
                    "output_tokens": c.completion,
                },
            }),
        );
        write_event(out, "message_stop", &json!({"type": "message_stop"}));
        self.ended = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenAI chunk shapes: "The chat completion chunk object" (OpenAI API reference), with the
    /// `include_usage` final chunk and `reasoning_content` as DeepSeek documents it.
    fn openai_stream() -> String {
        let c = |delta: Value, finish: Value| {
            format!(
                "data: {}\n\n",
                json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "deepseek-reasoner",
                       "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
            )
        };
        let mut s = String::new();
        s += &c(json!({"role": "assistant", "content": ""}), Value::Null);
        s += &c(json!({"reasoning_content": "Let me "}), Value::Null);
        s += &c(json!({"reasoning_content": "think."}), Value::Null);
        s += &c(json!({"content": "Héllo "}), Value::Null);
        s += &c(json!({"content": "wörld"}), Value::Null);
        s += &c(
            json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        );
        s += &c(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            Value::Null,
        );
        s += &c(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            Value::Null,
        );
        s += &c(
            json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]}),
            Value::Null,
        );
        s += &c(json!({}), json!("tool_calls"));
        s += &format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "deepseek-reasoner",
                   "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21,
                                             "prompt_tokens_details": {"cached_tokens": 2}}})
        );
        s += "data: [DONE]\n\n";
        s
    }

    fn events(out: &[u8]) -> Vec<(String, Value)> {
        let text = std::str::from_utf8(out).unwrap();
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (name, data) = e.split_once('\n').unwrap();
                let name = name.strip_prefix("event: ").unwrap().to_string();
                let data: Value =
                    serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(data["type"], name.as_str(), "event name matches data.type");
                (name, data)
            })
            .collect()
    }

    fn convert(input: &[u8], split: usize) -> Vec<u8> {
        let mut conv = StreamConverter::new("sent-model", vec![]);
        let mut out = Vec::new();
        let chunks: Vec<&[u8]> = input.chunks(split.max(1)).collect();
        for (i, c) in chunks.iter().enumerate() {
            conv.feed(c, i + 1 == chunks.len(), &mut out);
        }
        assert!(conv.ended());
        assert!(conv.parser.buffered_len() == 0);
        out
    }

    #[test]
    fn full_stream_sequence() {
        let out = convert(openai_stream().as_bytes(), usize::MAX);
        let ev = events(&out);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(ev[0].1["message"]["id"], "msg_1");
        assert_eq!(ev[0].1["message"]["model"], "deepseek-reasoner");
        assert_eq!(
            ev[1].1["content_block"],
            json!({"type": "thinking", "thinking": "", "signature": ""})
        );
        assert_eq!(
            ev[2].1["delta"],
            json!({"type": "thinking_delta", "thinking": "Let me "})
        );
        assert_eq!(
            ev[5].1,
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}})
        );
        assert_eq!(
            ev[7].1["delta"],
            json!({"type": "text_delta", "text": "wörld"})
        );
        assert_eq!(
            ev[9].1["content_block"],
            json!({"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {}})
        );
        let partial: String = [&ev[10].1, &ev[11].1]
            .iter()
            .map(|e| e["delta"]["partial_json"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(partial, "{\"city\":\"Paris\"}");
        assert_eq!(ev[13].1["index"], 3);
        assert_eq!(
            ev[16].1,
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                   "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2, "output_tokens": 9}})
        );
    }

    #[test]
    fn output_is_the_same_for_every_chunk_split() {
        let input = openai_stream();
        let whole = convert(input.as_bytes(), usize::MAX);
        for split in [1, 2, 3, 5, 7, 13, 64, 200] {
            let got = convert(input.as_bytes(), split);
            // Only the random parts could differ; there are none here (ids come from upstream).
            assert_eq!(got, whole, "split {split}");
        }
    }

    #[test]
    fn stop_reasons_and_stop_sequence() {
        let s = "data: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\",\"stop_reason\":\"END\"}]}\n\ndata: [DONE]\n\n";
        let mut conv = StreamConverter::new("m", vec!["END".into()]);
        let mut out = Vec::new();
        conv.feed(s.as_bytes(), true, &mut out);
        let ev = events(&out);
        let md = &ev[ev.len() - 2].1;
        assert_eq!(
            md["delta"],
            json!({"stop_reason": "stop_sequence", "stop_sequence": "END"})
        );
        let s = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n";
        let mut conv = StreamConverter::new("fallback", vec![]);
        let mut out = Vec::new();
        conv.feed(s.as_bytes(), true, &mut out);
        let ev = events(&out);
        assert_eq!(ev[0].1["message"]["model"], "fallback");
        assert!(ev[0].1["message"]["id"]
            .as_str()
            .unwrap()
            .starts_with("msg_"));
        assert_eq!(ev[ev.len() - 2].1["delta"]["stop_reason"], "max_tokens");
    }

    #[test]
    fn errors_become_error_events_and_end_the_stream() {
        // An in-stream OpenAI error (what the pipeline writes for an upstream error after the 200).
        let s = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}\n\n\
data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":null}}\n\ndata: [DONE]\n\n";
        let mut conv = StreamConverter::new("m", vec![]);
        let mut out = Vec::new();
        conv.feed(s.as_bytes(), true, &mut out);
        let ev = events(&out);
        let last = &ev.last().unwrap().1;
        assert_eq!(
            last,
            &json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Overloaded"}})
        );
        assert!(!ev.iter().any(|(n, _)| n == "message_stop"));
        // Truncated upstream: no finish reason and no [DONE].
        let mut conv = StreamConverter::new("m", vec![]);
        let mut out = Vec::new();
        conv.feed(
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n",
            true,
            &mut out,
        );
        assert_eq!(events(&out).last().unwrap().0, "error");
        // Garbage.
        let mut conv = StreamConverter::new("m", vec![]);
        let mut out = Vec::new();
        conv.feed(b"data: {not json\n\n", false, &mut out);
        assert!(conv.ended());
        assert_eq!(events(&out)[0].1["error"]["type"], "api_error");
        // Nothing after the end.
        conv.feed(b"data: [DONE]\n\n", true, &mut out);
        assert_eq!(events(&out).len(), 1);
    }

    #[test]
    fn interleaved_tool_arguments_are_an_error_not_a_corrupt_stream() {
        let t = |i: u32, id: Option<&str>, args: &str| {
            let mut tc = json!({"index": i, "function": {"arguments": args}});
            if let Some(id) = id {
                tc["id"] = id.into();
                tc["function"]["name"] = "f".into();
            }
            format!(
                "data: {}\n\n",
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [tc]}}]})
            )
        };
        let s = t(0, Some("a"), "{") + &t(1, Some("b"), "{") + &t(0, None, "}");
        let mut conv = StreamConverter::new("m", vec![]);
        let mut out = Vec::new();
        conv.feed(s.as_bytes(), false, &mut out);
        assert_eq!(events(&out).last().unwrap().0, "error");
    }
}
