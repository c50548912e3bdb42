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
            let content = delta.get("Content").and_then(Value::as_str).unwrap_or("");
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
