//! ConverseStream events (messageStart, contentBlockStart, contentBlockDelta, contentBlockStop,
//! messageStop, metadata, and exceptions) → calls on the OpenAI writer.

use super::eventstream::Message;
use super::response::{aws_error, finish_reason, usage, BedrockTranslator};
use crate::error::ProxyError;
use crate::openai;
use crate::openai::writer::{OpenAiWriter, ToolCallDelta};
use serde_json::Value;

impl BedrockTranslator {
    pub(super) fn feed(&mut self, chunk: &[u8], w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        let Self {
            decoder,
            open_tools,
            next_tool,
            stopped,
        } = self;
        decoder.feed(chunk, &mut |m| {
            if w.is_closed() {
                return Ok(());
            }
            event(m, open_tools, next_tool, stopped, w)
        })
    }
}

fn event(
    m: Message<'_>,
    open_tools: &mut Vec<(u64, u32)>,
    next_tool: &mut u32,
    stopped: &mut bool,
    w: &mut OpenAiWriter,
) -> Result<(), ProxyError> {
    match m.message_type {
        "exception" | "error" => {
            w.error(&aws_error(None, m.exception_type, m.payload));
            return Ok(());
        }
        "event" | "" => {}
        // Message types added later.
        _ => return Ok(()),
    }
    let v = openai::parse_event(m.payload)?;
    let index = v["contentBlockIndex"].as_u64().unwrap_or(0);
    match m.event_type {
        "messageStart" => {
            w.identify(None, None);
            w.begin(0);
        }
        "contentBlockStart" => {
            if let Some(tu) = v.pointer("/start/toolUse") {
                let ti = *next_tool;
                *next_tool += 1;
                open_tools.push((index, ti));
                let id = tu["toolUseId"].as_str().unwrap_or("");
                let name = tu["name"].as_str().unwrap_or("");
                w.tool_calls(0, &[ToolCallDelta::start(ti, id, name, "")]);
            }
        }
        "contentBlockDelta" => {
            let d = &v["delta"];
            if let Some(t) = d.get("text").and_then(Value::as_str) {
                w.text(0, t);
            } else if let Some(input) = d.pointer("/toolUse/input").and_then(Value::as_str) {
                let tool = open_tools.iter().find(|(b, _)| *b == index).map(|t| t.1);
                if let (Some(ti), false) = (tool, input.is_empty()) {
                    w.tool_calls(0, &[ToolCallDelta::args(ti, input)]);
                }
            } else if let Some(r) = d.get("reasoningContent") {
                // `text` streams the reasoning; `signature` / `redactedContent` have no OpenAI
                // counterpart.
                w.reasoning(0, r["text"].as_str().unwrap_or(""));
            }
        }
        "contentBlockStop" => open_tools.retain(|(b, _)| *b != index),
        "messageStop" => {
            *stopped = true;
            w.finish(0, finish_reason(v["stopReason"].as_str().unwrap_or("")));
        }
        // Usage comes after messageStop; the core's end writes the usage chunk.
        "metadata" => {
            if let Some(u) = v.get("usage").and_then(usage) {
                w.set_usage(u);
            }
        }
        _ => {}
    }
    Ok(())
}
