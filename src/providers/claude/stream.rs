//! Claude's stream events (message_start, content_block_*, message_delta, message_stop, error)
//! → calls on the OpenAI writer. Bounded state lives in `ClaudeTranslator`.

use super::response::{claude_error, finish_reason, ClaudeTranslator};
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
                self.read_usage(m.get("usage"), w);
                w.identify(m["id"].as_str(), m["model"].as_str());
                w.begin(0);
            }
            "content_block_start" => {
                let block = &v["content_block"];
                let index = v["index"].as_u64().unwrap_or(0);
                match block["type"].as_str() {
                    Some("text") => w.text(0, block["text"].as_str().unwrap_or("")),
                    Some("tool_use") => {
                        let ti = self.next_tool;
                        self.next_tool += 1;
                        self.open_tools.push((index, ti));
                        // The input normally streams as input_json_delta; a block that starts
                        // with a non-empty input carries it whole.
                        let args = match &block["input"] {
                            Value::Object(o) if !o.is_empty() => block["input"].to_string(),
                            _ => String::new(),
                        };
                        let id = block["id"].as_str().unwrap_or("");
                        let name = block["name"].as_str().unwrap_or("");
                        w.tool_calls(0, &[ToolCallDelta::start(ti, id, name, &args)]);
                    }
                    Some("thinking") => w.reasoning(0, block["thinking"].as_str().unwrap_or("")),
                    // redacted_thinking, server tool blocks: not part of OpenAI's chat
                    // completion shape.
                    _ => {}
                }
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
            "message_delta" => {
                self.read_usage(v.get("usage"), w);
                if let Some(reason) = v["delta"]["stop_reason"].as_str() {
                    w.finish(0, finish_reason(Some(reason)));
                }
            }
            "message_stop" => {
                self.stopped = true;
                // A message that stopped without a message_delta still finished.
                w.finish(0, "stop");
                w.end();
            }
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
