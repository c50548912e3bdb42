//! Claude's stream events (message_start, content_block_*, message_delta, message_stop, error)
//! → calls on the OpenAI writer. Bounded state lives in `ClaudeTranslator`.

use super::response::{claude_error, finish_reason, usage_counts, ClaudeTranslator};
use super::typed;
use crate::error::ProxyError;
use crate::openai;
use crate::openai::writer::{OpenAiWriter, ToolCallDelta};
use crate::sse::SseEvent;
use serde_json::Value;

impl ClaudeTranslator {
    /// The fast path for the per-token events (`content_block_delta`, `content_block_stop`,
    /// `ping`): true when the typed view read and handled the event, false to take the `Value`
    /// path below, which is the reference for every behaviour (a test holds the two equal).
    fn typed_event(&mut self, event_name: &str, data: &[u8], w: &mut OpenAiWriter) -> bool {
        if let Some((kind, index, s)) = typed::canonical_delta(data, &mut self.scratch) {
            match kind {
                typed::DeltaKind::Text => w.text(0, s),
                typed::DeltaKind::Thinking => w.reasoning(0, s),
                typed::DeltaKind::InputJson => input_json(&self.open_tools, index, s, w),
            }
            return true;
        }
        // The few events around the deltas have their own scan (the serde view below refuses
        // their fields, and refusing costs an error message).
        if matches!(
            event_name,
            "message_start" | "content_block_start" | "message_delta" | "message_stop"
        ) || data.starts_with(br#"{"type":"message_"#)
            || data.starts_with(br#"{"type":"content_block_start""#)
        {
            let Some(b) = typed::bookend(data, event_name) else {
                return false;
            };
            match b {
                typed::Bookend::MessageStart { id, model, usage } => {
                    self.message_start(usage, id.as_deref(), model.as_deref(), w)
                }
                typed::Bookend::BlockStart { index, block } => {
                    let b = block.unwrap_or_default();
                    self.block_start(
                        index,
                        b.kind.as_deref(),
                        StartTexts {
                            text: b.text.as_deref().unwrap_or(""),
                            thinking: b.thinking.as_deref().unwrap_or(""),
                            id: b.id.as_deref().unwrap_or(""),
                            name: b.name.as_deref().unwrap_or(""),
                            arguments: &b.arguments,
                        },
                        w,
                    )
                }
                typed::Bookend::MessageDelta { usage, stop_reason } => {
                    self.message_delta(usage, stop_reason.as_deref(), w)
                }
                typed::Bookend::MessageStop => self.message_stop(w),
            }
            return true;
        }
        let Some(ev) = typed::event(data) else {
            return false;
        };
        match ev.kind.as_ref().map_or(event_name, typed::Text::as_str) {
            "content_block_delta" => {
                let Some(delta) = &ev.delta else {
                    return true;
                };
                match delta.kind.as_ref().map(typed::Text::as_str) {
                    Some("text_delta") => w.text(0, typed::text(&delta.text)),
                    Some("thinking_delta") => w.reasoning(0, typed::text(&delta.thinking)),
                    Some("input_json_delta") => input_json(
                        &self.open_tools,
                        ev.index.unwrap_or(0),
                        typed::text(&delta.partial_json),
                        w,
                    ),
                    _ => {}
                }
                true
            }
            "content_block_stop" => {
                let index = ev.index.unwrap_or(0);
                self.open_tools.retain(|(b, _)| *b != index);
                true
            }
            "ping" => true,
            _ => false,
        }
    }

    pub(super) fn stream_event(
        &mut self,
        event: SseEvent<'_>,
        w: &mut OpenAiWriter,
    ) -> Result<(), ProxyError> {
        let Some(data) = openai::event_data(&event).filter(|_| !self.stopped) else {
            return Ok(());
        };
        if self.typed && self.typed_event(event.event, data, w) {
            return Ok(());
        }
        let v = openai::parse_event(data)?;
        let kind = openai::event_type(&v, event.event);
        match kind {
            "message_start" => {
                let m = &v["message"];
                self.message_start(
                    usage_counts(m.get("usage")),
                    m["id"].as_str(),
                    m["model"].as_str(),
                    w,
                );
            }
            "content_block_start" => {
                let block = &v["content_block"];
                // The input normally streams as input_json_delta; a block that starts with a
                // non-empty input carries it whole.
                let arguments = match &block["input"] {
                    Value::Object(o) if !o.is_empty() => block["input"].to_string(),
                    _ => String::new(),
                };
                let text = |key: &str| block[key].as_str().unwrap_or("");
                self.block_start(
                    v["index"].as_u64().unwrap_or(0),
                    block["type"].as_str(),
                    StartTexts {
                        text: text("text"),
                        thinking: text("thinking"),
                        id: text("id"),
                        name: text("name"),
                        arguments: &arguments,
                    },
                    w,
                );
            }
            "content_block_delta" => {
                let delta = &v["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => w.text(0, delta["text"].as_str().unwrap_or("")),
                    // Extended thinking: OpenAI-compatible clients read it as reasoning_content.
                    Some("thinking_delta") => {
                        w.reasoning(0, delta["thinking"].as_str().unwrap_or(""))
                    }
                    Some("input_json_delta") => {
                        let index = v["index"].as_u64().unwrap_or(0);
                        let part = delta["partial_json"].as_str().unwrap_or("");
                        let tool = self
                            .open_tools
                            .iter()
                            .find(|(b, _)| *b == index)
                            .map(|(_, t)| *t);
                        if let (Some(ti), false) = (tool, part.is_empty()) {
                            w.tool_calls(0, &[ToolCallDelta::args(ti, part)]);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                let index = v["index"].as_u64().unwrap_or(0);
                self.open_tools.retain(|(b, _)| *b != index);
            }
            "message_delta" => self.message_delta(
                usage_counts(v.get("usage")),
                v["delta"]["stop_reason"].as_str(),
                w,
            ),
            "message_stop" => self.message_stop(w),
            "error" => {
                let err = claude_error(None, &v).unwrap_or_else(|| {
                    ProxyError::bad_upstream("upstream sent an error event without details")
                });
                w.error(&err);
            }
            // `ping` and event types added later.
            _ => {}
        }
        Ok(())
    }
}

/// A `content_block_start` block's strings (`""` where absent) and its tool input as OpenAI
/// `arguments` (`""` unless the block started with a non-empty input).
struct StartTexts<'a> {
    text: &'a str,
    thinking: &'a str,
    id: &'a str,
    name: &'a str,
    arguments: &'a str,
}

/// The events around the deltas, as both readings (scan and `Value`) hand them over.
impl ClaudeTranslator {
    fn message_start(
        &mut self,
        usage: Option<[Option<u64>; 4]>,
        id: Option<&str>,
        model: Option<&str>,
        w: &mut OpenAiWriter,
    ) {
        self.usage_of(usage, w);
        w.identify(id, model);
        w.begin(0);
    }

    fn block_start(
        &mut self,
        index: u64,
        kind: Option<&str>,
        b: StartTexts<'_>,
        w: &mut OpenAiWriter,
    ) {
        match kind {
            Some("text") => w.text(0, b.text),
            Some("tool_use") => {
                let ti = self.next_tool;
                self.next_tool += 1;
                self.open_tools.push((index, ti));
                w.tool_calls(0, &[ToolCallDelta::start(ti, b.id, b.name, b.arguments)]);
            }
            Some("thinking") => w.reasoning(0, b.thinking),
            // redacted_thinking, server tool blocks: not part of OpenAI's chat completion shape.
            _ => {}
        }
    }

    fn message_delta(
        &mut self,
        usage: Option<[Option<u64>; 4]>,
        stop_reason: Option<&str>,
        w: &mut OpenAiWriter,
    ) {
        self.usage_of(usage, w);
        if let Some(reason) = stop_reason {
            w.finish(0, finish_reason(Some(reason)));
        }
    }

    fn message_stop(&mut self, w: &mut OpenAiWriter) {
        self.stopped = true;
        // A message that stopped without a message_delta still finished.
        w.finish(0, "stop");
        w.end();
    }
}

/// An `input_json_delta` fragment for the tool call open at Claude block `index`.
fn input_json(open_tools: &[(u64, u32)], index: u64, part: &str, w: &mut OpenAiWriter) {
    let tool = open_tools
        .iter()
        .find(|(b, _)| *b == index)
        .map(|(_, t)| *t);
    if let (Some(ti), false) = (tool, part.is_empty()) {
        w.tool_calls(0, &[ToolCallDelta::args(ti, part)]);
    }
}
