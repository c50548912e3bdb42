//! Cohere v2 chat stream events (message-start, content-*, tool-plan-delta, tool-call-*,
//! message-end) → calls on the OpenAI writer. Bounded state lives in `CohereTranslator`.

use super::response::{finish_reason, generation_failed, usage, CohereTranslator};
use crate::error::ProxyError;
use crate::openai;
use crate::openai::writer::{OpenAiWriter, ToolCallDelta};
use crate::sse::SseEvent;

impl CohereTranslator {
    pub(super) fn stream_event(
        &mut self,
        event: SseEvent<'_>,
        w: &mut OpenAiWriter,
    ) -> Result<(), ProxyError> {
        let Some(data) = openai::event_data(&event).filter(|_| !self.ended) else {
            return Ok(());
        };
        let v = openai::parse_event(data)?;
        let kind = openai::event_type(&v, event.event);
        let msg = &v["delta"]["message"];
        match kind {
            "message-start" => {
                w.identify(v["id"].as_str(), None);
                w.begin(0);
            }
            "content-start" | "content-delta" => {
                let c = &msg["content"];
                if let Some(t) = c["text"].as_str().filter(|t| !t.is_empty()) {
                    w.text(0, t);
                }
                if let Some(t) = c["thinking"].as_str().filter(|t| !t.is_empty()) {
                    w.reasoning(0, t);
                }
            }
            "tool-plan-delta" => {
                if let Some(p) = msg["tool_plan"].as_str().filter(|p| !p.is_empty()) {
                    w.reasoning(0, p);
                }
            }
            "tool-call-start" => {
                let call = &msg["tool_calls"];
                let index = v["index"].as_u64().unwrap_or(0);
                let ti = self.next_tool;
                self.next_tool += 1;
                self.tools.retain(|(i, _)| *i != index);
                self.tools.push((index, ti));
                let f = &call["function"];
                w.tool_calls(
                    0,
                    &[ToolCallDelta::start(
                        ti,
                        call["id"].as_str().unwrap_or(""),
                        f["name"].as_str().unwrap_or(""),
                        f["arguments"].as_str().unwrap_or(""),
                    )],
                );
            }
            "tool-call-delta" => {
                let index = v["index"].as_u64().unwrap_or(0);
                let part = msg["tool_calls"]["function"]["arguments"]
                    .as_str()
                    .unwrap_or("");
                let tool = self.tools.iter().find(|(i, _)| *i == index).map(|t| t.1);
                if let (Some(ti), false) = (tool, part.is_empty()) {
                    w.tool_calls(0, &[ToolCallDelta::args(ti, part)]);
                }
            }
            "tool-call-end" => {
                let index = v["index"].as_u64().unwrap_or(0);
                self.tools.retain(|(i, _)| *i != index);
            }
            "message-end" => {
                self.ended = true;
                let d = &v["delta"];
                if let Some(u) = usage(d.get("usage")) {
                    w.set_usage(u);
                }
                let reason = d["finish_reason"].as_str().unwrap_or("COMPLETE");
                match finish_reason(reason) {
                    Some(f) => {
                        w.finish(0, f);
                        w.end();
                    }
                    None => w.error(&generation_failed(reason)),
                }
            }
            // content-end, citation-start/end, debug, and event types added later.
            _ => {}
        }
        Ok(())
    }
}
