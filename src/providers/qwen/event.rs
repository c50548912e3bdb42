//! The stream's fast path: one DashScope `event:result` read straight into borrowed, typed fields
//! instead of a `serde_json::Value` (no map of every key, no owned strings unless a string has
//! escapes). Two readings, tried in turn: [`scan`], the allocation-free walk of the JSON text
//! with the shared byte scanner (`openai::json_scan`, as Gemini's), which answers `None` for
//! anything it is not sure serde_json reads the same (escaped keys, content part lists, numbers
//! near `f64`'s range, surrogate escapes, ...); then serde into the same types.
//!
//! Both are strict where the `Value` path is lenient: a field of an unexpected type, a duplicate
//! key it reads, an error body (`code` without `output`) or anything else unusual makes it fail,
//! and the caller then takes the `Value` path, which stays the reference for every behaviour.
//! Keys it does not read are still parsed by `deserialize_any` ([`Checked`]), so the JSON it
//! accepts is exactly the JSON `serde_json::Value` accepts (UTF-8, escapes, surrogates, number
//! range, nesting depth), unlike `IgnoredAny`, which only skips.

use crate::openai::json_scan::{Cursor, Items, List};
use crate::typed_json::{fields, object_reader, Str};
use crate::usage::Usage;
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// One event, as far as the stream reads it.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Event<'a> {
    pub request_id: Option<Cow<'a, str>>,
    pub usage: Option<Usage>,
    /// `None` when absent or `null`.
    pub output: Option<Output<'a>>,
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct Output<'a> {
    /// `output.choices` when it is an array.
    pub choices: Option<List<Choice<'a>>>,
    /// The older form: `output.text` is present (a `null` text counts: empty content).
    pub has_text: bool,
    pub text: Option<Cow<'a, str>>,
    pub finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct Choice<'a> {
    pub index: Option<u64>,
    pub message: Option<Msg<'a>>,
    pub finish_reason: Option<Cow<'a, str>>,
}

/// A message's pieces, shared with the `Value` path (which builds it from a `Value`).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Msg<'a> {
    /// `reasoning_content` as sent (may be empty).
    pub reasoning: Option<Cow<'a, str>>,
    /// `content` as text (a part list concatenated); `None` when absent, `null` or not text.
    pub content: Option<Cow<'a, str>>,
    pub tool_calls: Vec<Call<'a>>,
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct Call<'a> {
    pub index: Option<u64>,
    pub id: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    /// `function.arguments` as text (the `Value` path also encodes non-string JSON).
    pub arguments: Option<Cow<'a, str>>,
}

/// Parses `data` on the fast path (the scan, else serde into the same types); `None` sends the
/// event to the `Value` path.
pub(super) fn parse(data: &[u8]) -> Option<Event<'_>> {
    scan(data).or_else(|| parse_serde(data))
}

/// The serde typed reading alone.
pub(super) fn parse_serde(data: &[u8]) -> Option<Event<'_>> {
    // One UTF-8 check of the whole event instead of one per string (`from_slice` checks each
    // string it decodes; outside strings, non-ASCII is a syntax error either way).
    let text = std::str::from_utf8(data).ok()?;
    let top = serde_json::from_str::<Top<'_>>(text).ok()?;
    // An error body (see `response::error_in_body`) is the `Value` path's.
    if top.has_code && !top.has_output {
        return None;
    }
    Some(top.event)
}

/// The scan: what [`parse_serde`] reads, or `None` where it is not sure serde_json would read
/// the same (see the module doc).
pub(super) fn scan(data: &[u8]) -> Option<Event<'_>> {
    let mut s = Cursor::plain(data);
    let mut ev = Event::default();
    let (mut has_code, mut has_output) = (false, false);
    s.fields(&[b"request_id", b"usage", b"output", b"code"], |s, at| {
        match at {
            0 => ev.request_id = s.opt_str()?,
            1 => ev.usage = nullable(s, usage)?.flatten(),
            2 => {
                has_output = true;
                ev.output = nullable(s, output)?;
            }
            _ => has_code = s.opt_str()?.is_some_and(|c| !c.is_empty()),
        }
        Some(())
    })?;
    // An error body (see `response::error_in_body`) is the `Value` path's.
    ((has_output || !has_code) && s.at_end()).then_some(ev)
}

/// `null` (`Some(None)`) or what `read` reads.
fn nullable<'a, T>(
    s: &mut Cursor<'a>,
    read: impl FnOnce(&mut Cursor<'a>) -> Option<T>,
) -> Option<Option<T>> {
    if s.is_null() {
        return Some(None);
    }
    read(s).map(Some)
}

fn usage(s: &mut Cursor<'_>) -> Option<Option<Usage>> {
    let mut u = UsageIn::default();
    let names: [&[u8]; 5] = [
        b"input_tokens",
        b"output_tokens",
        b"total_tokens",
        b"prompt_tokens_details",
        b"output_tokens_details",
    ];
    s.fields(&names, |s, at| {
        match at {
            0 => u.input = s.opt_count()?,
            1 => u.output = s.opt_count()?,
            2 => u.total = s.opt_count()?,
            3 => u.cached = nullable(s, detail)?.and_then(|d| d.cached_tokens),
            _ => u.reasoning = nullable(s, detail)?.and_then(|d| d.reasoning_tokens),
        }
        Some(())
    })?;
    Some(u.usage())
}

/// A `*_tokens_details` object.
fn detail(s: &mut Cursor<'_>) -> Option<DetailCounts> {
    let mut c = DetailCounts::default();
    let names: [&[u8]; 2] = [b"cached_tokens", b"reasoning_tokens"];
    s.two(
        names,
        &mut c.cached_tokens,
        &mut c.reasoning_tokens,
        Cursor::opt_count,
    )?;
    Some(c)
}

fn output<'a>(s: &mut Cursor<'a>) -> Option<Output<'a>> {
    let mut o = Output::default();
    s.fields(&[b"choices", b"text", b"finish_reason"], |s, at| {
        match at {
            0 => {
                if !s.is_null() {
                    let list = o.choices.insert(List::default());
                    s.array(|s| choice(s, list.push_default()))?;
                }
            }
            1 => {
                o.has_text = true;
                o.text = s.opt_str()?;
            }
            _ => o.finish_reason = s.opt_str()?,
        }
        Some(())
    })?;
    Some(o)
}

fn choice<'a>(s: &mut Cursor<'a>, c: &mut Choice<'a>) -> Option<()> {
    s.fields(&[b"index", b"message", b"finish_reason"], |s, at| {
        match at {
            0 => c.index = s.opt_count()?,
            1 => c.message = nullable(s, msg)?,
            _ => c.finish_reason = s.opt_str()?,
        }
        Some(())
    })
    .map(drop)
}

fn msg<'a>(s: &mut Cursor<'a>) -> Option<Msg<'a>> {
    let mut m = Msg::default();
    s.fields(
        &[b"reasoning_content", b"content", b"tool_calls"],
        |s, at| {
            match at {
                0 => m.reasoning = s.opt_str()?,
                // A part list is concatenated by the serde reading.
                1 => m.content = s.opt_str()?,
                _ => {
                    if !s.is_null() {
                        s.array(|s| {
                            m.tool_calls.push(call(s)?);
                            Some(())
                        })?;
                    }
                }
            }
            Some(())
        },
    )?;
    Some(m)
}

fn call<'a>(s: &mut Cursor<'a>) -> Option<Call<'a>> {
    let mut c = Call::default();
    s.fields(&[b"index", b"id", b"function"], |s, at| {
        match at {
            0 => c.index = s.opt_count()?,
            1 => c.id = s.opt_str()?,
            _ => {
                if !s.is_null() {
                    let names: [&[u8]; 2] = [b"name", b"arguments"];
                    s.two(names, &mut c.name, &mut c.arguments, Cursor::opt_str)?;
                }
            }
        }
        Some(())
    })?;
    Some(c)
}

struct Top<'a> {
    event: Event<'a>,
    /// `code` is a non-empty string.
    has_code: bool,
    has_output: bool,
}

/// Optional string fields: `null` is `None`, anything but a string an error.
type OptStr<'a> = Option<Str<'a>>;

fn cow(s: OptStr<'_>) -> Option<Cow<'_, str>> {
    s.map(|s| s.0)
}

object_reader!(Top<'de>, "a DashScope event", |map| {
    let mut t = Top {
        event: Event::default(),
        has_code: false,
        has_output: false,
    };
    let names = ["request_id", "usage", "output", "code"];
    fields(&mut map, &names, |i, map| {
        match i {
            0 => t.event.request_id = cow(map.next_value::<OptStr<'de>>()?),
            1 => {
                t.event.usage = map
                    .next_value::<Option<UsageIn>>()?
                    .and_then(UsageIn::usage)
            }
            2 => {
                t.has_output = true;
                t.event.output = map.next_value::<Option<Output<'de>>>()?;
            }
            _ => t.has_code = cow(map.next_value::<OptStr<'de>>()?).is_some_and(|c| !c.is_empty()),
        }
        Ok(())
    })?;
    Ok(t)
});

object_reader!(Output<'de>, "a DashScope output", |map| {
    let mut o = Output::default();
    let names = ["choices", "text", "finish_reason"];
    fields(&mut map, &names, |i, map| {
        match i {
            0 => o.choices = map.next_value::<Option<Items<Choice<'de>>>>()?.map(|c| c.0),
            1 => {
                o.has_text = true;
                o.text = cow(map.next_value::<OptStr<'de>>()?);
            }
            _ => o.finish_reason = cow(map.next_value::<OptStr<'de>>()?),
        }
        Ok(())
    })?;
    Ok(o)
});

object_reader!(Choice<'de>, "a DashScope choice", |map| {
    let mut c = Choice::default();
    let names = ["index", "message", "finish_reason"];
    fields(&mut map, &names, |i, map| {
        match i {
            0 => c.index = map.next_value::<Option<u64>>()?,
            1 => c.message = map.next_value::<Option<Msg<'de>>>()?,
            _ => c.finish_reason = cow(map.next_value::<OptStr<'de>>()?),
        }
        Ok(())
    })?;
    Ok(c)
});

object_reader!(Msg<'de>, "a DashScope message", |map| {
    let mut m = Msg::default();
    let names = ["reasoning_content", "content", "tool_calls"];
    fields(&mut map, &names, |i, map| {
        match i {
            0 => m.reasoning = cow(map.next_value::<OptStr<'de>>()?),
            1 => m.content = map.next_value::<Content<'de>>()?.0,
            _ => {
                m.tool_calls = map
                    .next_value::<Option<Vec<Call<'de>>>>()?
                    .unwrap_or_default()
            }
        }
        Ok(())
    })?;
    Ok(m)
});

object_reader!(Call<'de>, "a DashScope tool call", |map| {
    let mut c = Call::default();
    let names = ["index", "id", "function"];
    fields(&mut map, &names, |i, map| {
        match i {
            0 => c.index = map.next_value::<Option<u64>>()?,
            1 => c.id = cow(map.next_value::<OptStr<'de>>()?),
            _ => {
                if let Some(f) = map.next_value::<Option<Function<'de>>>()? {
                    c.name = f.name;
                    c.arguments = f.arguments;
                }
            }
        }
        Ok(())
    })?;
    Ok(c)
});

#[derive(Default)]
struct Function<'a> {
    name: Option<Cow<'a, str>>,
    arguments: Option<Cow<'a, str>>,
}

object_reader!(Function<'de>, "a DashScope function call", |map| {
    let mut f = Function::default();
    fields(&mut map, &["name", "arguments"], |i, map| {
        let s = cow(map.next_value::<OptStr<'de>>()?);
        if i == 0 {
            f.name = s;
        } else {
            f.arguments = s;
        }
        Ok(())
    })?;
    Ok(f)
});

/// A part of multimodal content: its `text`, if any.
struct Part<'a>(Option<Cow<'a, str>>);

object_reader!(Part<'de>, "a content part", |map| {
    let mut text = None;
    fields(&mut map, &["text"], |_, map| {
        text = cow(map.next_value::<OptStr<'de>>()?);
        Ok(())
    })?;
    Ok(Part(text))
});

/// `usage` with the counts `response::usage_of` reads.
#[derive(Default)]
struct UsageIn {
    input: Option<u64>,
    output: Option<u64>,
    total: Option<u64>,
    cached: Option<u64>,
    reasoning: Option<u64>,
}

impl UsageIn {
    /// As `response::usage_of`: nothing without any of the three counts.
    fn usage(self) -> Option<Usage> {
        if self.input.is_none() && self.output.is_none() && self.total.is_none() {
            return None;
        }
        Some(
            Usage::new(
                self.input.unwrap_or(0),
                self.output.unwrap_or(0),
                self.total,
            )
            .with_cached(self.cached)
            .with_reasoning(self.reasoning),
        )
    }
}

object_reader!(UsageIn, "DashScope usage", |map| {
    let mut u = UsageIn::default();
    let names = [
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "prompt_tokens_details",
        "output_tokens_details",
    ];
    fields(&mut map, &names, |i, map| {
        match i {
            0 => u.input = map.next_value()?,
            1 => u.output = map.next_value()?,
            2 => u.total = map.next_value()?,
            3 => {
                u.cached = map
                    .next_value::<Option<Detail>>()?
                    .and_then(|d| d.0.cached_tokens)
            }
            _ => {
                u.reasoning = map
                    .next_value::<Option<Detail>>()?
                    .and_then(|d| d.0.reasoning_tokens)
            }
        }
        Ok(())
    })?;
    Ok(u)
});

/// A `*_tokens_details` object: the two counts read from either.
#[derive(Default)]
struct DetailCounts {
    cached_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
}

struct Detail(DetailCounts);

object_reader!(Detail, "token details", |map| {
    let mut c = DetailCounts::default();
    fields(
        &mut map,
        &["cached_tokens", "reasoning_tokens"],
        |i, map| {
            let n = map.next_value::<Option<u64>>()?;
            if i == 0 {
                c.cached_tokens = n;
            } else {
                c.reasoning_tokens = n;
            }
            Ok(())
        },
    )?;
    Ok(Detail(c))
});

/// Message content: a string, `null`, or a list of parts whose texts are concatenated (as
/// `response::content_text`). Other shapes are errors (the `Value` path's).
struct Content<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Content<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Content<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("content")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Content<'de>, E> {
                Ok(Content(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Content<'de>, E> {
                Ok(Content(Some(Cow::Owned(s.to_owned()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Content<'de>, E> {
                Ok(Content(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content<'de>, A::Error> {
                let mut text = String::new();
                while let Some(Part(t)) = seq.next_element::<Part<'de>>()? {
                    text.push_str(t.as_deref().unwrap_or(""));
                }
                Ok(Content(Some(Cow::Owned(text))))
            }
        }
        d.deserialize_any(V)
    }
}
