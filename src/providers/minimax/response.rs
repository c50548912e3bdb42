//! ChatCompletion Pro answers → OpenAI: the finish-reason mapping, usage, the BOT messages'
//! text and function calls, buffered replies, and the translator the exchange drives.

use super::stream::StreamState;
use crate::error::ProxyError;
use crate::openai;
use crate::openai::writer::{tool_call, Choice, Completion, OpenAiWriter};
use crate::providers::ResponseTranslator;
use crate::sse::SseEvent;
use crate::usage::{Usage, UsageKeys};
use serde_json::{Map, Value};

/// OpenAI's finish reason for a Pro choice. A function call wins, then `output_sensitive`.
pub(super) fn finish_reason(
    upstream: &str,
    had_tool_calls: bool,
    output_sensitive: bool,
) -> &'static str {
    if had_tool_calls {
        return "tool_calls";
    }
    if output_sensitive {
        return "content_filter";
    }
    match upstream {
        "length" | "max_output" | "max_tokens" => "length",
        "sensitive" | "content_filter" => "content_filter",
        "function_call" | "tool_calls" => "tool_calls",
        _ => "stop",
    }
}

pub(super) fn output_sensitive(obj: &Map<String, Value>) -> bool {
    obj.get("output_sensitive")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// OpenAI's names without the details objects. Pro reports only the total; the split stays 0
/// when unknown.
const USAGE: UsageKeys = UsageKeys {
    cached: None,
    reasoning: None,
    ..UsageKeys::OPENAI
};

pub(super) fn usage_of(obj: &Map<String, Value>) -> Option<Usage> {
    USAGE.read(obj.get("usage")?.as_object()?)
}

pub(super) fn bot_messages(choice: &Value) -> impl Iterator<Item = &Map<String, Value>> {
    choice
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter_map(Value::as_object)
        .filter(|m| {
            m.get("sender_type")
                .and_then(Value::as_str)
                .unwrap_or("BOT")
                == "BOT"
        })
}

/// The BOT messages' `function_call`s as (name, arguments).
pub(super) fn function_calls(choice: &Value) -> impl Iterator<Item = (&str, String)> {
    bot_messages(choice)
        .filter_map(|m| m.get("function_call").and_then(Value::as_object))
        .map(|fc| {
            let args = match fc.get("arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (fc.get("name").and_then(Value::as_str).unwrap_or(""), args)
        })
}

/// Pro gives function calls no id: one is made up, in OpenAI's `call_` form.
pub(super) fn new_call_id() -> String {
    format!("call_{}", &openai::new_completion_id()[9..])
}

/// The answer's text: the last BOT message without a function call, else `reply`.
pub(super) fn answer_text<'a>(choice: &'a Value, reply: &'a str) -> &'a str {
    bot_messages(choice)
        .filter(|m| m.get("function_call").is_none_or(Value::is_null))
        .filter_map(|m| m.get("text").and_then(Value::as_str))
        .last()
        .filter(|t| !t.is_empty())
        .unwrap_or(reply)
}

fn completion(obj: &Map<String, Value>) -> Completion {
    let reply = obj.get("reply").and_then(Value::as_str).unwrap_or("");
    let sensitive = output_sensitive(obj);
    let choice_of = |index: u32, choice: &Value, reply: &str| {
        let tool_calls: Vec<Value> = function_calls(choice)
            .map(|(name, args)| tool_call(&new_call_id(), name, args))
            .collect();
        let had_calls = !tool_calls.is_empty();
        let reason = choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .unwrap_or("");
        let text = answer_text(choice, reply);
        Choice {
            index,
            content: (!text.is_empty()).then(|| text.to_string()),
            tool_calls,
            // Without a finish reason, text or a call, the writer refuses the reply.
            finish_reason: (!reason.is_empty() || had_calls || sensitive)
                .then(|| finish_reason(reason, had_calls, sensitive)),
            ..Choice::default()
        }
    };
    let mut choices: Vec<Choice> = obj
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, choice)| {
            let index = choice
                .get("index")
                .and_then(Value::as_u64)
                .map_or(i as u32, |n| n as u32);
            choice_of(index, choice, if i == 0 { reply } else { "" })
        })
        .collect();
    if choices.is_empty() && !reply.is_empty() {
        choices.push(choice_of(0, &Value::Null, reply));
    }
    Completion {
        id: obj
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        created: obj
            .get("created")
            .and_then(Value::as_u64)
            .filter(|c| *c > 0),
        // The requested model, as before (Pro echoes it).
        model: None,
        choices,
        usage: usage_of(obj),
    }
}

/// One Pro exchange: buffered replies need no state; streams keep [`StreamState`].
#[derive(Default)]
pub(super) struct ProTranslator {
    stream: StreamState,
}

impl ResponseTranslator for ProTranslator {
    fn on_event(&mut self, event: SseEvent<'_>, w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        let data = event.data.trim_ascii();
        // The final event repeats the whole answer: nothing after it counts.
        if data.is_empty() || data == b"[DONE]" || w.finished() {
            return Ok(());
        }
        let v = openai::parse_event(data)?;
        let obj = v.as_object().expect("parse_event returns objects");
        self.stream.event(obj, w);
        Ok(())
    }

    fn on_body(&mut self, body: &[u8], w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        let v = openai::parse_body(body)?;
        let obj = v.as_object().expect("parse_body returns objects");
        if let Some(err) = openai::error_in_success_body(obj) {
            return Err(err);
        }
        w.completion(completion(obj))
    }
}
