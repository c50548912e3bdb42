//! DashScope's SSE stream (`X-DashScope-SSE: enable`, `incremental_output`): each `event:result`
//! carries the new text of each choice, the new pieces of its tool calls (the first piece of a
//! call has its id and name, later ones only more arguments), cumulative usage, and a
//! `finish_reason` that is the string `"null"` until the end. Errors after the 200 arrive as
//! `event:error`.

use super::new_call_id;
use super::response::{
    arguments_of, content_text, dashscope_error, error_in_body, finish_reason, reasoning_of,
    usage_of,
};
use crate::error::ProxyError;
use crate::openai;
use crate::openai::writer::{Delta, FunctionDelta, OpenAiWriter, ToolCallDelta};
use crate::sse::SseEvent;
use serde_json::{json, Value};
use std::borrow::Cow;

/// Bounded: the (choice, tool-call index) pairs that have started.
#[derive(Debug, Default)]
pub(super) struct StreamState {
    tools_seen: Vec<(u32, u32)>,
}

/// One tool-call piece of an event, owned where DashScope's JSON does not hold it as text.
struct Piece<'a> {
    index: u32,
    /// The id of a call's first piece (DashScope's, or a fresh one).
    start: Option<Cow<'a, str>>,
    name: Option<&'a str>,
    arguments: Cow<'a, str>,
}

impl StreamState {
    pub fn on_event(
        &mut self,
        event: SseEvent<'_>,
        w: &mut OpenAiWriter,
    ) -> Result<(), ProxyError> {
        let data = event.data.trim_ascii();
        if data.is_empty() || data == b"[DONE]" {
            return Ok(());
        }
        let v = openai::parse_event(data)?;
        let Some(obj) = v.as_object() else {
            return Ok(());
        };
        let error = if event.event == "error" {
            Some(dashscope_error(0, obj))
        } else {
            error_in_body(obj)
        };
        if let Some(err) = error {
            w.error(&err);
            return Ok(());
        }
        let request_id = obj.get("request_id").and_then(Value::as_str);
        w.identify(request_id, None);
        if let Some(u) = usage_of(obj.get("usage")) {
            w.set_usage(u);
        }
        let Some(output) = obj.get("output") else {
            return Ok(());
        };
        if let Some(Value::Array(choices)) = output.get("choices") {
            for (i, c) in choices.iter().enumerate() {
                let index = c
                    .get("index")
                    .and_then(Value::as_u64)
                    .map_or(i as u32, |n| n as u32);
                self.choice(w, index, c.get("message"), c.get("finish_reason"));
            }
        } else if let Some(text) = output.get("text") {
            // The older `output.text` format: the output object itself carries content/finish.
            let msg = json!({ "content": text });
            self.choice(w, 0, Some(&msg), output.get("finish_reason"));
        }
        Ok(())
    }

    fn choice(
        &mut self,
        w: &mut OpenAiWriter,
        index: u32,
        msg: Option<&Value>,
        raw_finish: Option<&Value>,
    ) {
        if let Some(r) = reasoning_of(msg) {
            w.reasoning(index, r);
        }
        let text = content_text(msg.and_then(|m| m.get("content"))).unwrap_or_default();
        let pieces = self.tool_pieces(index, msg.and_then(|m| m.get("tool_calls")));
        let calls: Vec<ToolCallDelta<'_>> = pieces
            .iter()
            .map(|p| match &p.start {
                Some(id) => ToolCallDelta::start(p.index, id, p.name.unwrap_or(""), &p.arguments),
                None => ToolCallDelta {
                    index: p.index,
                    function: FunctionDelta {
                        name: p.name,
                        arguments: &p.arguments,
                    },
                    ..ToolCallDelta::default()
                },
            })
            .collect();
        if !text.is_empty() || !calls.is_empty() {
            w.delta(
                index,
                Delta {
                    content: (!text.is_empty()).then_some(&*text),
                    tool_calls: (!calls.is_empty()).then_some(&calls[..]),
                    ..Delta::default()
                },
            );
        }
        let has_tools = self.tools_seen.iter().any(|(c, _)| *c == index);
        if let Some(reason) = finish_reason(raw_finish, has_tools) {
            w.finish(index, reason);
        }
    }

    /// The pieces of one event's `tool_calls` for choice `choice` that carry something: a call's
    /// first piece, or a later one with a name or more arguments.
    fn tool_pieces<'a>(&mut self, choice: u32, calls: Option<&'a Value>) -> Vec<Piece<'a>> {
        let Some(calls) = calls.and_then(Value::as_array) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (pos, tc) in calls.iter().enumerate() {
            let index = tc
                .get("index")
                .and_then(Value::as_u64)
                .map_or(pos as u32, |n| n as u32);
            let f = tc.get("function");
            let name = f
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            let arguments = arguments_of(f).unwrap_or_default();
            let start = if self.tools_seen.contains(&(choice, index)) {
                if name.is_none() && arguments.is_empty() {
                    continue;
                }
                None
            } else {
                self.tools_seen.push((choice, index));
                Some(
                    tc.get("id")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map_or_else(|| Cow::Owned(new_call_id()), Cow::Borrowed),
                )
            };
            out.push(Piece {
                index,
                start,
                name,
                arguments,
            });
        }
        out
    }
}
