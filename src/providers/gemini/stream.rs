//! `streamGenerateContent?alt=sse`: every event is a whole `GenerateContentResponse` carrying the
//! new parts of each candidate, cumulative usage, and a `finishReason` on a candidate's last
//! event. Function calls arrive whole, never split across events. There is no end marker.

use super::response::{
    answer_parts, candidate_index, candidates, finish_reason, is_thought, parse_checked,
    prompt_blocked, usage_of, FunctionCall,
};
use crate::error::ProxyError;
use crate::openai;
use crate::openai::writer::{OpenAiWriter, ToolCallDelta};
use crate::sse::SseEvent;
use serde_json::Value;

/// Upper bound on candidate indexes we track in a stream (OpenAI's `n` is at most 128).
const MAX_CANDIDATES: usize = 128;

#[derive(Debug, Default, Clone, Copy)]
struct Candidate {
    tool_calls: u32,
    /// Its finish went out: later parts for it are ignored.
    finished: bool,
}

/// Bounded: one small record per candidate, never the stream's content.
#[derive(Debug, Default)]
pub(super) struct StreamState {
    candidates: Vec<Candidate>,
    /// Function calls so far over all candidates, for their ids.
    calls: u32,
}

impl StreamState {
    pub fn on_event(
        &mut self,
        event: SseEvent<'_>,
        w: &mut OpenAiWriter,
    ) -> Result<(), ProxyError> {
        let Some(data) = openai::event_data(&event).filter(|d| *d != b"[DONE]") else {
            return Ok(());
        };
        let v = parse_checked(data, openai::parse_event)?;
        if let Some(u) = usage_of(&v) {
            w.set_usage(u);
        }
        w.identify(None, v.get("modelVersion").and_then(Value::as_str));
        let candidates = candidates(&v);
        if candidates.is_empty() {
            return match prompt_blocked(&v) {
                Some(err) => Err(err),
                // A usage-only event.
                None => Ok(()),
            };
        }
        for (pos, cand) in candidates.iter().enumerate() {
            let index = candidate_index(cand, pos);
            if index >= MAX_CANDIDATES {
                return Err(ProxyError::bad_upstream(format!(
                    "Gemini stream candidate index {index} is out of range"
                )));
            }
            if self.candidates.len() <= index {
                self.candidates.resize(index + 1, Candidate::default());
            }
            let state = &mut self.candidates[index];
            if state.finished {
                continue;
            }
            let choice = index as u32;
            w.begin(choice);
            for part in answer_parts(cand) {
                if let Some(t) = part
                    .get("text")
                    .and_then(Value::as_str)
                    .filter(|_| is_thought(part))
                {
                    w.reasoning(choice, t);
                } else if let Some(t) = part.get("text").and_then(Value::as_str) {
                    w.text(choice, t);
                } else if let Some(call) = part.get("functionCall") {
                    self.calls += 1;
                    let call = FunctionCall::read(part, call, self.calls);
                    let delta = ToolCallDelta::start(
                        state.tool_calls,
                        &call.id,
                        call.name,
                        &call.arguments,
                    )
                    .with_extra_content(call.extra_content.as_ref());
                    w.tool_calls(choice, &[delta]);
                    state.tool_calls += 1;
                }
            }
            if let Some(reason) = cand.get("finishReason").and_then(Value::as_str) {
                state.finished = true;
                w.finish(choice, finish_reason(reason, state.tool_calls > 0));
            }
        }
        Ok(())
    }
}
