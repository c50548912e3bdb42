//! `streamGenerateContent?alt=sse`: every event is a whole `GenerateContentResponse` carrying the
//! new parts of each candidate, cumulative usage, and a `finishReason` on a candidate's last
//! event. Function calls arrive whole, never split across events. There is no end marker.

use super::response::{
    answer_parts, candidate_index, candidates, finish_reason, parse_checked, prompt_blocked,
    usage_of, FunctionCall, PartView,
};
use super::scan::Layout;
use super::typed;
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

/// Bounded: one small record per candidate and the last event's layout (at most 1 KB of fixed
/// bytes and 16 holes), never the stream's content.
#[derive(Debug, Default)]
pub(super) struct StreamState {
    candidates: Vec<Candidate>,
    /// Function calls so far over all candidates, for their ids.
    calls: u32,
    layout: Layout,
}

impl StreamState {
    /// Memory held between events.
    pub fn held_capacity(&self) -> usize {
        self.layout.held_capacity()
    }

    pub fn on_event(
        &mut self,
        event: SseEvent<'_>,
        w: &mut OpenAiWriter,
    ) -> Result<(), ProxyError> {
        let Some(data) = openai::event_data(&event).filter(|d| *d != b"[DONE]") else {
            return Ok(());
        };
        self.on_data(data, w, true)
    }

    /// One event's data; `fast` allows the typed reading (tests compare it with the reference).
    pub(super) fn on_data(
        &mut self,
        data: &[u8],
        w: &mut OpenAiWriter,
        fast: bool,
    ) -> Result<(), ProxyError> {
        // The typed reading (the last event's layout, the scan, serde) takes the usual event;
        // the rest (no candidates, errors, odd types, duplicate keys) is read as `Value`, the
        // reference.
        if fast {
            let mut ev = typed::Event::default();
            let read = self.layout.read_into(data, &mut ev)
                || typed::read_serde(data).map(|e| ev = e).is_some();
            if read && !ev.candidates.is_empty() {
                return self.typed_event(&ev, w);
            }
        }
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
            let parts = answer_parts(cand).map(PartView::of_value);
            let finish = cand.get("finishReason").and_then(Value::as_str);
            self.candidate(w, candidate_index(cand, pos), parts, finish)?;
        }
        Ok(())
    }

    /// An event read the fast way, with candidates.
    fn typed_event(
        &mut self,
        ev: &typed::Event<'_>,
        w: &mut OpenAiWriter,
    ) -> Result<(), ProxyError> {
        if let Some(u) = &ev.usage {
            w.set_usage(u.usage());
        }
        w.identify(None, ev.model_version.as_deref());
        for (pos, cand) in ev.candidates.iter().enumerate() {
            let index = cand
                .index
                .map_or(pos, |i| usize::try_from(i).unwrap_or(usize::MAX));
            let parts = cand.parts.iter().map(PartView::of_typed);
            self.candidate(w, index, parts, cand.finish_reason.as_deref())?;
        }
        Ok(())
    }

    /// One candidate of an event: its parts as deltas, then its finish.
    fn candidate<'a>(
        &mut self,
        w: &mut OpenAiWriter,
        index: usize,
        parts: impl Iterator<Item = PartView<'a>>,
        finish: Option<&str>,
    ) -> Result<(), ProxyError> {
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
            return Ok(());
        }
        let choice = index as u32;
        w.begin(choice);
        for part in parts {
            match part {
                PartView::Reasoning(t) => w.reasoning(choice, t),
                PartView::Text(t) => w.text(choice, t),
                PartView::Call(call, signature) => {
                    self.calls += 1;
                    let call = FunctionCall::read(call, signature);
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
                PartView::Other => {}
            }
        }
        if let Some(reason) = finish {
            state.finished = true;
            w.finish(choice, finish_reason(reason, state.tool_calls > 0));
        }
        Ok(())
    }
}
