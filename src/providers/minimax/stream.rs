//! ChatCompletion Pro stream events → writer calls. Increments carry the new text in
//! `choices[0].messages[].text`; the last event carries `finish_reason`, the whole `reply` again,
//! the function call if any, `usage` and `base_resp`.

use super::response::{
    answer_text, bot_messages, finish_reason, function_calls, new_call_id, output_sensitive,
    usage_of,
};
use crate::openai;
use crate::openai::writer::{OpenAiWriter, ToolCallDelta};
use serde_json::{Map, Value};

/// Bounded: whether the identity was taken, and how many bytes of the reply were sent (the final
/// event's repeat is cut to what is new).
#[derive(Default)]
pub(super) struct StreamState {
    identified: bool,
    emitted: usize,
}

impl StreamState {
    fn text(&mut self, w: &mut OpenAiWriter, text: &str) {
        if text.is_empty() {
            w.begin(0);
        } else {
            w.text(0, text);
            self.emitted += text.len();
        }
    }

    pub(super) fn event(&mut self, obj: &Map<String, Value>, w: &mut OpenAiWriter) {
        if let Some(err) = openai::error_in_success_body(obj) {
            w.error(&err);
            return;
        }
        if let Some(u) = usage_of(obj) {
            w.set_usage(u);
        }
        if !self.identified {
            self.identified = true;
            w.set_created(obj.get("created").and_then(Value::as_u64).unwrap_or(0));
        }
        let choice = obj
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .unwrap_or(&Value::Null);
        let reason = choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .unwrap_or("");
        if reason.is_empty() {
            // An increment: the text of its BOT messages.
            for m in bot_messages(choice) {
                if let Some(t) = m.get("text").and_then(Value::as_str) {
                    self.text(w, t);
                }
            }
            return;
        }
        // The last event repeats the whole answer: send only what was not sent yet.
        let reply = obj.get("reply").and_then(Value::as_str).unwrap_or("");
        let full = if reply.is_empty() {
            answer_text(choice, reply)
        } else {
            reply
        };
        self.text(w, full.get(self.emitted..).unwrap_or(""));
        let mut had_calls = false;
        for (index, (name, args)) in function_calls(choice).enumerate() {
            had_calls = true;
            let id = new_call_id();
            w.tool_calls(0, &[ToolCallDelta::start(index as u32, &id, name, &args)]);
        }
        w.finish(0, finish_reason(reason, had_calls, output_sensitive(obj)));
    }
}
