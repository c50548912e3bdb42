//! Hunyuan stream events → writer calls. Each event is a whole `{Id, Created, Choices[{Index,
//! Delta{Content, ReasoningContent, ToolCalls}, FinishReason}], Usage}` object; `FinishReason` is
//! "" until the last; `Usage` is cumulative.

use super::response::{error_in, finish_reason, function_of, message_of, nonempty_str, usage_of};
use crate::openai;
use crate::openai::writer::{Delta, OpenAiWriter, ToolCallDelta};
use serde_json::{Map, Value};

/// Bounded by the answer: whether the identity was taken, and the keys of the tool calls seen
/// (their position is the OpenAI `index`).
#[derive(Default)]
pub(super) struct StreamState {
    identified: bool,
    tool_keys: Vec<String>,
    /// The request's `Stop` sequences, and per choice the tail of the text that may be (the
    /// start of) one: held back until the next piece or the finish, since Hunyuan keeps the
    /// stop sequence in the text and OpenAI does not. Bounded by the longest stop sequence.
    stops: Vec<String>,
    held: Vec<(u32, String)>,
}

/// Length of the longest suffix of `text` that is a stop sequence or the start of one.
fn stop_tail(text: &str, stops: &[String]) -> usize {
    let mut best = 0;
    for stop in stops {
        for (at, _) in text.char_indices().rev().take(stop.chars().count()) {
            let tail = &text[at..];
            if stop.starts_with(tail) && tail.len() > best {
                best = tail.len();
            }
        }
    }
    best
}

/// One call of an event's `ToolCalls`, resolved to its OpenAI index; `id` is set on a call's
/// first appearance.
struct CallPart<'a> {
    index: u32,
    id: Option<String>,
    name: &'a str,
    args: &'a str,
}

impl StreamState {
    pub(super) fn with_stops(stops: Vec<String>) -> Self {
        Self {
            stops,
            ..Self::default()
        }
    }

    /// The text of this piece to send now: held text first; the stop sequence dropped when the
    /// choice stops here; a possible stop-sequence start held back otherwise.
    fn visible(&mut self, index: u32, content: &str, finish: Option<&str>) -> String {
        if self.stops.is_empty() {
            return content.to_string();
        }
        let pos = self.held.iter().position(|(i, _)| *i == index);
        let mut text = pos.map(|p| self.held.swap_remove(p).1).unwrap_or_default();
        text.push_str(content);
        match finish {
            Some("stop") => {
                let keep = super::response::trim_stop(&text, &self.stops).len();
                text.truncate(keep);
            }
            Some(_) => {}
            None => {
                let tail = stop_tail(&text, &self.stops);
                if tail > 0 {
                    let at = text.len() - tail;
                    self.held.push((index, text[at..].to_string()));
                    text.truncate(at);
                }
            }
        }
        text
    }

    pub(super) fn event(&mut self, obj: &Map<String, Value>, w: &mut OpenAiWriter) {
        if let Some(err) = error_in(obj) {
            w.error(&err);
            return;
        }
        if let Some(u) = usage_of(obj.get("Usage")) {
            w.set_usage(u);
        }
        if !self.identified {
            self.identified = true;
            w.identify(nonempty_str(obj, "Id"), None);
            w.set_created(obj.get("Created").and_then(Value::as_u64).unwrap_or(0));
        }
        let choices = obj.get("Choices").and_then(Value::as_array);
        for (i, c) in choices.into_iter().flatten().enumerate() {
            let Some(c) = c.as_object() else { continue };
            let index = c
                .get("Index")
                .and_then(Value::as_u64)
                .map_or(i as u32, |n| n as u32);
            let delta = message_of(c, "Delta", "Message");
            if let Some(r) = nonempty_str(delta, "ReasoningContent") {
                w.reasoning(index, r);
            }
            let parts: Vec<CallPart<'_>> = delta
                .get("ToolCalls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| self.call_part(c))
                .collect();
            let calls: Vec<ToolCallDelta<'_>> = parts
                .iter()
                .map(|p| match &p.id {
                    Some(id) => ToolCallDelta::start(p.index, id, p.name, p.args),
                    None => ToolCallDelta::args(p.index, p.args),
                })
                .collect();
            let raw = delta.get("Content").and_then(Value::as_str).unwrap_or("");
            let finish = nonempty_str(c, "FinishReason");
            let content = self.visible(index, raw, finish);
            let content = content.as_str();
            if content.is_empty() && calls.is_empty() {
                w.begin(index);
            } else {
                w.delta(
                    index,
                    Delta {
                        content: (!content.is_empty()).then_some(content),
                        tool_calls: (!calls.is_empty()).then_some(&calls[..]),
                        ..Delta::default()
                    },
                );
            }
            if let Some(reason) = nonempty_str(c, "FinishReason") {
                w.finish(index, finish_reason(reason, !self.tool_keys.is_empty()));
            }
        }
    }

    /// Resolves a streamed call by `Id` (or its `Index` when it has none), as the docs prescribe
    /// for merging fragments.
    fn call_part<'a>(&mut self, c: &'a Value) -> CallPart<'a> {
        let (name, args) = function_of(c);
        let id = c.get("Id").and_then(Value::as_str).unwrap_or("");
        let key = if id.is_empty() {
            format!("#{}", c.get("Index").and_then(Value::as_u64).unwrap_or(0))
        } else {
            id.to_string()
        };
        if let Some(index) = self.tool_keys.iter().position(|k| *k == key) {
            return CallPart {
                index: index as u32,
                id: None,
                name,
                args,
            };
        }
        let index = self.tool_keys.len() as u32;
        self.tool_keys.push(key);
        let id = if id.is_empty() {
            format!("call_{}", &openai::new_completion_id()[9..])
        } else {
            id.to_string()
        };
        CallPart {
            index,
            id: Some(id),
            name,
            args,
        }
    }
}
