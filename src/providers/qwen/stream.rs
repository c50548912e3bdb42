//! DashScope's SSE stream (`X-DashScope-SSE: enable`, `incremental_output`): each `event:result`
//! carries the new text of each choice, the new pieces of its tool calls (the first piece of a
//! call has its id and name, later ones only more arguments), cumulative usage, and a
//! `finish_reason` that is the string `"null"` until the end. Errors after the 200 arrive as
//! `event:error`.

use super::event::{self as fast, Call, Msg};
use super::new_call_id;
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
    /// The last scanned event's layout, which the next ones usually share.
    layout: fast::Layout,
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
    /// Memory held between events.
    pub fn held_capacity(&self) -> usize {
        self.layout.held_capacity()
    }

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
            let mut ev = fast::Event::default();
            if self.layout.read(data, &mut ev) {
                self.on_typed(&ev, w);
                return Ok(());
            }
        }
        self.on_value(event.event == "error", data, w)
    }

    fn on_typed(&mut self, ev: &fast::Event<'_>, w: &mut OpenAiWriter) {
        w.identify(ev.request_id.as_deref(), None);
        if let Some(u) = ev.usage {
            w.set_usage(u);
        }
        let Some(output) = &ev.output else {
            return;
        };
        if let Some(choices) = &output.choices {
            for (i, c) in choices.iter().enumerate() {
                let index = c.index.map_or(i as u32, |n| n as u32);
                self.choice(w, index, c.message.as_ref(), c.finish_reason.as_deref());
            }
        } else if output.has_text {
            let msg = Msg {
                content: output.text.as_deref().map(Cow::Borrowed),
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

    fn choice(
        &mut self,
        w: &mut OpenAiWriter,
        index: u32,
        msg: Option<&Msg<'_>>,
        raw_finish: Option<&str>,
    ) {
        if let Some(r) = msg
            .and_then(|m| m.reasoning.as_deref())
            .filter(|s| !s.is_empty())
        {
            w.reasoning(index, r);
        }
        let text = msg.and_then(|m| m.content.as_deref()).unwrap_or_default();
        let calls_in = msg.map_or(&[][..], |m| &m.tool_calls[..]);
        // The usual event has text only: no pieces to build.
        let pieces = if calls_in.is_empty() {
            Vec::new()
        } else {
            self.tool_pieces(index, calls_in)
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// What a writer shows after `events`: its output (generated tool-call ids masked), usage,
    /// and whether each event was accepted. `reference` forces the `Value` path.
    fn run(events: &[&[u8]], reference: bool) -> (String, Option<crate::usage::Usage>, Vec<bool>) {
        let mut w = OpenAiWriter::new("m", true);
        w.identify(Some("fixed"), None);
        w.set_created(1);
        let mut st = StreamState::default();
        let ok = events
            .iter()
            .map(|data| {
                if reference {
                    st.on_value(false, data.trim_ascii(), &mut w).is_ok()
                } else {
                    let ev = SseEvent {
                        event: "result",
                        data,
                    };
                    st.on_event(ev, &mut w).is_ok()
                }
            })
            .collect();
        w.end();
        let out = String::from_utf8_lossy(w.output()).into_owned();
        // Calls without an id get a random one on either path.
        let mut masked = String::new();
        let mut rest = out.as_str();
        while let Some(at) = rest.find("call_") {
            masked.push_str(&rest[..at + 5]);
            rest = rest[at + 5..].trim_start_matches(|c: char| c.is_ascii_alphanumeric());
            masked.push('*');
        }
        masked.push_str(rest);
        (masked, w.usage(), ok)
    }

    const TEXT: &str = r#"{"output":{"choices":[{"message":{"content":"tok ","role":"assistant"},"finish_reason":"null"}]},"usage":{"total_tokens":251,"input_tokens":250,"output_tokens":1},"request_id":"5bef2386"}"#;
    const THINK: &str = r#"{"output":{"choices":[{"index":0,"message":{"content":"","reasoning_content":"hm\u00e9 \"q\"","role":"assistant"},"finish_reason":"stop"}]},"usage":{"input_tokens":5,"output_tokens":7,"prompt_tokens_details":{"cached_tokens":2},"output_tokens_details":{"reasoning_tokens":4}},"request_id":"r-2"}"#;
    const TOOL1: &str = r#"{"output":{"choices":[{"message":{"content":"","role":"assistant","tool_calls":[{"index":0,"id":"tc_1","type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}]},"finish_reason":"null"}]},"usage":{"input_tokens":9,"output_tokens":1,"total_tokens":10},"request_id":"r-3"}"#;
    const TOOL2: &str = r#"{"output":{"choices":[{"message":{"content":"","role":"assistant","tool_calls":[{"index":0,"id":"","type":"function","function":{"arguments":"ty\": 1}"}}]},"finish_reason":"tool_calls"}]},"usage":{"input_tokens":9,"output_tokens":3,"total_tokens":12},"request_id":"r-3"}"#;
    const PARTS: &str = r#"{"output":{"choices":[{"message":{"content":[{"text":"Hel"},{"text":"lo"},{"image":"x"}],"role":"assistant"},"finish_reason":"length"}]},"usage":{"input_tokens":1,"output_tokens":1},"request_id":"r-4"}"#;
    const OLD: &str = r#"{"output":{"text":"old form","finish_reason":"stop"},"usage":{"input_tokens":1,"output_tokens":2,"total_tokens":3},"request_id":"r-5"}"#;

    #[test]
    fn fast_path_takes_ordinary_events_and_agrees() {
        for data in [TEXT, THINK, TOOL1, TOOL2, PARTS, OLD] {
            assert!(fast::parse(data.as_bytes()).is_some(), "declined: {data}");
            // The scan takes all but content part lists (left to the serde reading).
            let scanned = fast::scan(data.as_bytes());
            assert_eq!(scanned.is_some(), data != PARTS, "{data}");
            if let Some(ev) = scanned {
                assert_eq!(Some(ev), fast::parse_serde(data.as_bytes()), "{data}");
            }
            assert_eq!(
                run(&[data.as_bytes()], false),
                run(&[data.as_bytes()], true),
                "{data}"
            );
        }
        let seq = [TOOL1.as_bytes(), TOOL2.as_bytes()];
        assert_eq!(run(&seq, false), run(&seq, true));
        assert!(run(&seq, false).0.contains(r#""id":"tc_1""#));
        // A layout kept from one event reads the next as the scan does, or declines it.
        for a in [TEXT, THINK, TOOL1, TOOL2, PARTS, OLD] {
            for b in [TEXT, THINK, TOOL1, TOOL2, PARTS, OLD] {
                let mut layout = fast::Layout::default();
                layout.parse(a.as_bytes());
                if let Some(ev) = layout.reused(b.as_bytes()) {
                    assert_eq!(Some(ev), fast::scan(b.as_bytes()), "{a} then {b}");
                }
                assert_eq!(layout.parse(b.as_bytes()), fast::parse(b.as_bytes()));
                let seq = [a.as_bytes(), b.as_bytes()];
                assert_eq!(run(&seq, false), run(&seq, true), "{a} then {b}");
            }
        }
    }

    /// The layout of the stream's usual event: the next events differ in their text, counts and
    /// finish reason, and are read from the layout's holes; anything else is scanned.
    #[test]
    fn a_kept_layout_reads_the_events_that_share_it() {
        let reused = [
            TEXT.to_string(),
            TEXT.replace("tok ", "longer text, \\u00e9 \\\"quoted\\\" é"),
            TEXT.replace("tok ", ""),
            TEXT.replace(r#""finish_reason":"null""#, r#""finish_reason":"stop""#),
            TEXT.replace(
                r#""total_tokens":251"#,
                r#""total_tokens":18446744073709551615"#,
            ),
            TEXT.replace(r#""input_tokens":250"#, r#""input_tokens": 0"#),
            TEXT.replace(r#""role":"assistant""#, r#""role":"x\\ny""#),
            TEXT.replace("5bef2386", "other-id"),
        ];
        let scanned = [
            TEXT.replace(r#""content":"tok ""#, r#""content":null"#),
            TEXT.replace(r#""content":"tok ""#, r#""content":7"#),
            TEXT.replace(r#""content":"tok ""#, r#""content":["a"]"#),
            TEXT.replace(r#""input_tokens":250"#, r#""input_tokens":null"#),
            TEXT.replace(r#""input_tokens":250"#, r#""input_tokens":2.5"#),
            TEXT.replace(r#""input_tokens":250"#, r#""input_tokens":-1"#),
            TEXT.replace(
                r#""input_tokens":250"#,
                r#""input_tokens":18446744073709551616"#,
            ),
            TEXT.replace(r#""role":"assistant""#, r#""role":1"#),
            TEXT.replace(r#""role":"assistant""#, r#""role":"\ud800""#),
            TEXT.replace(
                r#""request_id":"5bef2386""#,
                r#""request_id":"a","code":"x""#,
            ),
            TEXT.replace(r#","request_id""#, r#" ,"request_id""#),
            format!("{TEXT} x"),
            format!("{TEXT} "),
        ];
        for (data, reuse) in reused
            .iter()
            .map(|d| (d, true))
            .chain(scanned.iter().map(|d| (d, false)))
        {
            let mut layout = fast::Layout::default();
            assert!(layout.parse(TEXT.as_bytes()).is_some());
            let got = layout.reused(data.as_bytes());
            assert_eq!(got.is_some(), reuse, "{data}");
            if let Some(ev) = got {
                assert_eq!(Some(ev), fast::scan(data.as_bytes()), "{data}");
            }
            assert_eq!(layout.parse(data.as_bytes()), fast::parse(data.as_bytes()));
            let seq = [TEXT.as_bytes(), data.as_bytes()];
            assert_eq!(run(&seq, false), run(&seq, true), "{data}");
        }
        // Too many holes, two choices or too many fixed bytes: scanned, never kept.
        let two = TEXT.replace(
            r#""finish_reason":"null"}]"#,
            r#""finish_reason":"null"},{"index":1,"message":{"content":"b"},"finish_reason":"null"}]"#,
        );
        let many = TEXT.replace(
            r#""role":"assistant""#,
            r#""r":"a","#.repeat(30).trim_end_matches(','),
        );
        let long = TEXT.replace(
            r#""role":"assistant""#,
            &format!(r#""r{}":1"#, "x".repeat(2000)),
        );
        for data in [two, many, long] {
            let mut layout = fast::Layout::default();
            assert!(layout.parse(data.as_bytes()).is_some());
            assert!(layout.reused(data.as_bytes()).is_none(), "{data}");
            assert!(layout.held_capacity() == 0);
        }
        let mut layout = fast::Layout::default();
        layout.parse(TEXT.as_bytes());
        assert!(layout.held_capacity() <= 2 * fast::LAYOUT_MAX_BYTES);
    }

    /// What the fast path must leave to the `Value` path (it answers `None`).
    #[test]
    fn unusual_events_take_the_value_path() {
        let declined = [
            // Error bodies, duplicate keys (the `Value` path keeps the last), odd types.
            r#"{"code":"Throttling","message":"slow down","request_id":"x"}"#.to_string(),
            TEXT.replace(r#","request_id""#, r#","request_id":"a","request_id""#),
            TEXT.replace(
                r#""finish_reason":"null""#,
                r#""finish_reason":"null","finish_reason":"stop""#,
            ),
            TEXT.replace(r#""input_tokens":250"#, r#""input_tokens":-1"#),
            TEXT.replace(r#""input_tokens":250"#, r#""input_tokens":2.5"#),
            TEXT.replace(
                r#""input_tokens":250"#,
                r#""input_tokens":18446744073709551616"#,
            ),
            TEXT.replace(r#""content":"tok ""#, r#""content":7"#),
            TEXT.replace(r#""content":"tok ""#, r#""content":["a"]"#),
            TEXT.replace(r#""message":{"#, r#""message":{"tool_calls":{},"#),
            TOOL1.replace(r#""arguments":"{\"ci""#, r#""arguments":{"city":1}"#),
            TEXT.replace(r#""request_id":"5bef2386""#, r#""request_id":5"#),
            // JSON the `Value` parse refuses, in fields the fast path does not read.
            TEXT.replace(r#""role":"assistant""#, r#""role":1e400"#),
            TEXT.replace(r#""role":"assistant""#, r#""role":"\ud800""#),
            TEXT.replace(
                r#""role":"assistant""#,
                &format!(r#""role":{}1{}"#, "[".repeat(130), "]".repeat(130)),
            ),
            format!("{TEXT} x"),
        ];
        for data in &declined {
            assert!(fast::parse(data.as_bytes()).is_none(), "accepted: {data}");
            assert_eq!(
                run(&[data.as_bytes()], false),
                run(&[data.as_bytes()], true)
            );
        }
        let mut bad = TEXT.as_bytes().to_vec();
        let at = TEXT.find("tok").unwrap();
        bad.splice(at..at, [0xc3u8]);
        assert!(fast::parse(&bad).is_none());
        // Keys escaped, `null`s and an unknown nested object: accepted, same output.
        let accepted = [
            TEXT.replace(r#""output":"#, r#""outp\u0075t":"#),
            TEXT.replace(
                r#""usage":{"#,
                r#""usage":{"input_tokens_details":{"image_tokens":[1,{"a":null}]},"#,
            ),
            TEXT.replace(
                r#""request_id":"5bef2386""#,
                r#""request_id":null,"output_tokens_details":null"#,
            ),
            TEXT.replace(
                r#""message":{"#,
                r#""message":{"tool_calls":null,"reasoning_content":null,"#,
            ),
            r#"{"output":null,"usage":{"total_tokens":3}}"#.to_string(),
            r#"{"output":{"text":null,"finish_reason":"stop"}}"#.to_string(),
            r#"{"code":"","output":{"choices":[]}}"#.to_string(),
        ];
        for data in &accepted {
            assert!(fast::parse(data.as_bytes()).is_some(), "declined: {data}");
            assert_eq!(
                run(&[data.as_bytes()], false),
                run(&[data.as_bytes()], true),
                "{data}"
            );
        }
    }

    /// Random edits of real-shaped events: both paths give the same output, usage and outcome,
    /// and a good share of the edits still takes the fast path.
    #[test]
    fn fast_path_agrees_with_the_value_path_on_random_edits() {
        let alphabet: &[u8] = b"{}[]\":,\\ \tnulltrue0123456789-+.eEabcdefu\x01\xc3\xa9";
        // Mostly what keeps a value a value, some of what does not.
        let in_values: &[u8] = b"0123456789 abcdefu0123456789 xyz.-+eE\\\"\x01\xc3\xa9";
        let mut rng = StdRng::seed_from_u64(13);
        let (mut fast_taken, mut scanned, mut reused, mut total) = (0, 0, 0, 0);
        for seed in [TEXT, THINK, TOOL1, TOOL2, PARTS, OLD] {
            // Where string and number values start (after `":`): half the edits fall just
            // inside one, so that many change only values and meet the seed's layout.
            let values: Vec<usize> = seed
                .as_bytes()
                .windows(3)
                .enumerate()
                .filter(|(_, w)| w[..2] == *b"\":" && (w[2] == b'"' || w[2].is_ascii_digit()))
                .map(|(i, _)| i + 2)
                .collect();
            for round in 0..4_000 {
                let mut b = seed.as_bytes().to_vec();
                if round % 2 == 0 {
                    crate::testutil::random_edits(&mut rng, &mut b, alphabet);
                } else {
                    for _ in 0..rng.gen_range(1..4) {
                        let at = (values[rng.gen_range(0..values.len())] + rng.gen_range(1..6))
                            .min(b.len() - 1);
                        let c = in_values[rng.gen_range(0..in_values.len())];
                        match rng.gen_range(0..3) {
                            0 => drop(b.remove(at)),
                            1 => b.insert(at, c),
                            _ => b[at] = c,
                        }
                    }
                }
                total += 1;
                if fast::parse(&b).is_some() {
                    fast_taken += 1;
                }
                // Whatever the scan reads, the serde reading reads the same.
                if let Some(ev) = fast::scan(&b) {
                    scanned += 1;
                    assert_eq!(
                        Some(ev),
                        fast::parse_serde(&b),
                        "{}",
                        String::from_utf8_lossy(&b)
                    );
                }
                // A layout kept from the seed reads the edit as the scan does, or declines it.
                let mut layout = fast::Layout::default();
                layout.parse(seed.as_bytes());
                if let Some(ev) = layout.reused(&b) {
                    reused += 1;
                    assert_eq!(Some(ev), fast::scan(&b), "{}", String::from_utf8_lossy(&b));
                }
                // After TOOL1 so that tool-call state is exercised too, and after the seed so
                // that the edit meets its layout.
                let seq = [TOOL1.as_bytes(), seed.as_bytes(), &b[..]];
                assert_eq!(
                    run(&seq, false),
                    run(&seq, true),
                    "{}",
                    String::from_utf8_lossy(&b)
                );
            }
        }
        assert!(fast_taken > total / 10, "{fast_taken} of {total}");
        assert!(scanned > total / 10, "{scanned} scanned of {total}");
        assert!(reused > total / 10, "{reused} reused of {total}");
    }
}
