//! DashScope's SSE stream (`X-DashScope-SSE: enable`, `incremental_output`): each `event:result`
//! carries the new text of each choice, the new pieces of its tool calls (the first piece of a
//! call has its id and name, later ones only more arguments), cumulative usage, and a
//! `finish_reason` that is the string `"null"` until the end. Errors after the 200 arrive as
//! `event:error`.

use super::new_call_id;
use super::event::{self as fast, Call, Msg};
use super::response::{
    arguments_of, content_text, dashscope_error, error_in_body, finish_reason_of, reasoning_of,
    usage_of,
};
use crate::error::ProxyError;
use crate::openai;
use crate::openai::writer::{Delta, FunctionDelta, OpenAiWriter, ToolCallDelta};
use crate::sse::SseEvent;
use serde_json::Value;
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
    arguments: &'a str,
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
        // The fast path takes ordinary result events; errors and anything unusual take the
        // `Value` path below, the reference.
        if event.event != "error" {
            if let Some(ev) = fast::parse(data) {
                self.on_typed(ev, w);
                return Ok(());
            }
        }
        self.on_value(event.event == "error", data, w)
    }

    fn on_typed(&mut self, ev: fast::Event<'_>, w: &mut OpenAiWriter) {
        w.identify(ev.request_id.as_deref(), None);
        if let Some(u) = ev.usage {
            w.set_usage(u);
        }
        let Some(output) = ev.output else {
            return;
        };
        if let Some(choices) = &output.choices {
            for (i, c) in choices.iter().enumerate() {
                let index = c.index.map_or(i as u32, |n| n as u32);
                self.choice(w, index, c.message.as_ref(), c.finish_reason.as_deref());
            }
        } else if output.has_text {
            let msg = Msg {
                content: output.text,
                ..Msg::default()
            };
            self.choice(w, 0, Some(&msg), output.finish_reason.as_deref());
        }
    }

    /// The reference path: the event as a `serde_json::Value`.
    fn on_value(
        &mut self,
        is_error: bool,
        data: &[u8],
        w: &mut OpenAiWriter,
    ) -> Result<(), ProxyError> {
        let v = openai::parse_event(data)?;
        let Some(obj) = v.as_object() else {
            return Ok(());
        };
        let error = if is_error {
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
                let msg = c.get("message").map(msg_of);
                let finish = c.get("finish_reason").and_then(Value::as_str);
                self.choice(w, index, msg.as_ref(), finish);
            }
        } else if let Some(text) = output.get("text") {
            // The older `output.text` format: the output object itself carries content/finish.
            let msg = Msg {
                content: content_text(Some(text)),
                ..Msg::default()
            };
            let finish = output.get("finish_reason").and_then(Value::as_str);
            self.choice(w, 0, Some(&msg), finish);
        }
        Ok(())
    }

    fn choice(&mut self, w: &mut OpenAiWriter, index: u32, msg: Option<&Msg<'_>>, raw_finish: Option<&str>) {
        if let Some(r) = msg.and_then(|m| m.reasoning.as_deref()).filter(|s| !s.is_empty()) {
            w.reasoning(index, r);
        }
        let text = msg.and_then(|m| m.content.as_deref()).unwrap_or_default();
        let pieces = self.tool_pieces(index, msg.map_or(&[][..], |m| &m.tool_calls[..]));
        let calls: Vec<ToolCallDelta<'_>> = pieces
            .iter()
            .map(|p| match &p.start {
                Some(id) => ToolCallDelta::start(p.index, id, p.name.unwrap_or(""), p.arguments),
                None => ToolCallDelta {
                    index: p.index,
                    function: FunctionDelta {
                        name: p.name,
                        arguments: p.arguments,
                    },
                    ..ToolCallDelta::default()
                },
            })
            .collect();
        if !text.is_empty() || !calls.is_empty() {
            w.delta(
                index,
                Delta {
                    content: (!text.is_empty()).then_some(text),
                    tool_calls: (!calls.is_empty()).then_some(&calls[..]),
                    ..Delta::default()
                },
            );
        }
        let has_tools = self.tools_seen.iter().any(|(c, _)| *c == index);
        if let Some(reason) = finish_reason_of(raw_finish, has_tools) {
            w.finish(index, reason);
        }
    }

    /// The pieces of one event's `tool_calls` for choice `choice` that carry something: a call's
    /// first piece, or a later one with a name or more arguments.
    fn tool_pieces<'a>(&mut self, choice: u32, calls: &'a [Call<'a>]) -> Vec<Piece<'a>> {
        let mut out = Vec::new();
        for (pos, tc) in calls.iter().enumerate() {
            let index = tc.index.map_or(pos as u32, |n| n as u32);
            let name = tc.name.as_deref().filter(|s| !s.is_empty());
            let arguments = tc.arguments.as_deref().unwrap_or_default();
            let start = if self.tools_seen.contains(&(choice, index)) {
                if name.is_none() && arguments.is_empty() {
                    continue;
                }
                None
            } else {
                self.tools_seen.push((choice, index));
                Some(
                    tc.id
                        .as_deref()
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

/// A message `Value` as the pieces the stream reads (`Value::get` on a non-object is `None`,
/// so a message that is not an object is an empty one).
fn msg_of(m: &Value) -> Msg<'_> {
    let calls = m.get("tool_calls").and_then(Value::as_array);
    Msg {
        reasoning: reasoning_of(Some(m)).map(Cow::Borrowed),
        content: content_text(m.get("content")),
        tool_calls: calls.map_or_else(Vec::new, |calls| {
            calls
                .iter()
                .map(|tc| {
                    let f = tc.get("function");
                    Call {
                        index: tc.get("index").and_then(Value::as_u64),
                        id: tc.get("id").and_then(Value::as_str).map(Cow::Borrowed),
                        name: f
                            .and_then(|f| f.get("name"))
                            .and_then(Value::as_str)
                            .map(Cow::Borrowed),
                        arguments: arguments_of(f),
                    }
                })
                .collect()
        }),
    }
}
