//! The stream's fast path: one DashScope `event:result` read straight into borrowed, typed fields
//! instead of a `serde_json::Value` (no map of every key, no owned strings unless a string has
//! escapes). Readings, tried in turn: the stream's [`Layout`], which reads only the values of an
//! event laid out as the last scanned one; [`scan`], the allocation-free walk of the JSON text
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

use crate::openai::json_scan::{Cursor, Items, List, Mode, Template, Token};
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
#[cfg(test)]
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
#[cfg(test)]
pub(super) fn scan(data: &[u8]) -> Option<Event<'_>> {
    scan_noting(&mut Cursor::new(data, Holes::default())).map(|(ev, _)| ev)
}

/// [`scan`] with the cursor's [`Holes`] left to the caller; also answers whether `output` was
/// present.
fn scan_noting<'a>(s: &mut Cur<'a>) -> Option<(Event<'a>, bool)> {
    let mut ev = Event::default();
    let (mut has_code, mut has_output) = (false, false);
    s.fields(&[b"request_id", b"usage", b"output", b"code"], |s, at| {
        match at {
            0 => ev.request_id = opt_str(s, Slot::RequestId)?,
            1 => ev.usage = nullable(s, usage)?.flatten(),
            2 => {
                has_output = true;
                ev.output = nullable(s, output)?;
            }
            _ => has_code = opt_str(s, Slot::Code)?.is_some_and(|c| !c.is_empty()),
        }
        Some(())
    })?;
    // An error body (see `response::error_in_body`) is the `Value` path's.
    ((has_output || !has_code) && s.at_end()).then_some((ev, has_output))
}

/// The scan's cursor: plain JSON, noting its holes.
type Cur<'a> = Cursor<'a, Holes>;

/// What a value the scan reads becomes in a [`Layout`]: the field it fills.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Slot {
    /// Validated, not kept: a string of a key the scan skips, a count it discards.
    #[default]
    Skip,
    RequestId,
    Code,
    /// `UsageIn`'s counts by position: input, output, total, cached, reasoning.
    Usage(u8),
    Text,
    OutFinish,
    // The (only) choice's fields.
    Index,
    Finish,
    Reasoning,
    Content,
    // Its message's tool calls', by position.
    CallIndex(u8),
    CallId(u8),
    CallName(u8),
    CallArgs(u8),
}

/// The token a hole holds, checked by the scan's own rules when the layout is reused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Kind {
    /// A string only validated.
    #[default]
    Free,
    /// A string value (decoded when escaped).
    Str,
    /// A count (`Cursor::count`).
    Count,
}

/// A value's span in the event (the string with its quotes, the number).
#[derive(Debug, Clone, Copy, Default)]
struct Hole {
    start: u32,
    end: u32,
    kind: Kind,
    slot: Slot,
}

/// Holes a layout takes; an event with more is scanned, not kept.
const MAX_HOLES: usize = 24;

/// The scan's [`Mode`]: plain JSON (`\n` is whitespace, as `Plain`), noting the span of every
/// value it reads or validates, in order: a [`Layout`]'s holes.
#[derive(Default)]
pub(super) struct Holes {
    holes: [Hole; MAX_HOLES],
    n: usize,
    /// Some value could not be noted (too many, a call position beyond `u8`).
    over: bool,
}

impl Holes {
    fn note(&mut self, start: usize, end: usize, kind: Kind, slot: Slot) {
        match (self.holes.get_mut(self.n), u32::try_from(end)) {
            (Some(h), Ok(end)) => {
                *h = Hole {
                    start: start as u32,
                    end,
                    kind,
                    slot,
                };
                self.n += 1;
            }
            _ => self.over = true,
        }
    }
}

impl Mode for Holes {
    const NL: bool = true;

    #[inline]
    fn free(&mut self, s: Token) {
        self.note(s.start - 1, s.end + 1, Kind::Free, Slot::Skip);
    }
}

/// `null` (`Some(None)`) or a string value, noted for `slot`.
fn opt_str<'a>(s: &mut Cur<'a>, slot: Slot) -> Option<Option<Cow<'a, str>>> {
    s.ws();
    let start = s.i;
    let v = s.opt_str()?;
    if v.is_some() {
        s.mode.note(start, s.i, Kind::Str, slot);
    }
    Some(v)
}

/// `null` (`Some(None)`) or a count, noted for `slot`.
fn opt_count(s: &mut Cur<'_>, slot: Slot) -> Option<Option<u64>> {
    s.ws();
    let start = s.i;
    let n = s.opt_count()?;
    if n.is_some() {
        s.mode.note(start, s.i, Kind::Count, slot);
    }
    Some(n)
}

/// `null` (`Some(None)`) or what `read` reads.
fn nullable<'a, T>(
    s: &mut Cur<'a>,
    read: impl FnOnce(&mut Cur<'a>) -> Option<T>,
) -> Option<Option<T>> {
    if s.is_null() {
        return Some(None);
    }
    read(s).map(Some)
}

fn usage(s: &mut Cur<'_>) -> Option<Option<Usage>> {
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
            0 => u.input = opt_count(s, Slot::Usage(0))?,
            1 => u.output = opt_count(s, Slot::Usage(1))?,
            2 => u.total = opt_count(s, Slot::Usage(2))?,
            3 => u.cached = nullable(s, |s| detail(s, 0))?.flatten(),
            _ => u.reasoning = nullable(s, |s| detail(s, 1))?.flatten(),
        }
        Some(())
    })?;
    Some(u.usage())
}

/// A `*_tokens_details` object: both counts are read, the one at `keep` (0 cached, 1 reasoning)
/// is answered.
fn detail(s: &mut Cur<'_>, keep: usize) -> Option<Option<u64>> {
    let mut kept = None;
    let names: [&[u8]; 2] = [b"cached_tokens", b"reasoning_tokens"];
    s.fields(&names, |s, at| {
        let slot = if at != keep {
            Slot::Skip
        } else {
            Slot::Usage(3 + keep as u8)
        };
        let n = opt_count(s, slot)?;
        if at == keep {
            kept = n;
        }
        Some(())
    })?;
    Some(kept)
}

fn output<'a>(s: &mut Cur<'a>) -> Option<Output<'a>> {
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
                o.text = opt_str(s, Slot::Text)?;
            }
            _ => o.finish_reason = opt_str(s, Slot::OutFinish)?,
        }
        Some(())
    })?;
    Some(o)
}

fn choice<'a>(s: &mut Cur<'a>, c: &mut Choice<'a>) -> Option<()> {
    s.fields(&[b"index", b"message", b"finish_reason"], |s, at| {
        match at {
            0 => c.index = opt_count(s, Slot::Index)?,
            1 => c.message = nullable(s, msg)?,
            _ => c.finish_reason = opt_str(s, Slot::Finish)?,
        }
        Some(())
    })
    .map(drop)
}

fn msg<'a>(s: &mut Cur<'a>) -> Option<Msg<'a>> {
    let mut m = Msg::default();
    s.fields(
        &[b"reasoning_content", b"content", b"tool_calls"],
        |s, at| {
            match at {
                0 => m.reasoning = opt_str(s, Slot::Reasoning)?,
                // A part list is concatenated by the serde reading.
                1 => m.content = opt_str(s, Slot::Content)?,
                _ => {
                    if !s.is_null() {
                        s.array(|s| {
                            let pos = u8::try_from(m.tool_calls.len()).unwrap_or_else(|_| {
                                s.mode.over = true;
                                0
                            });
                            m.tool_calls.push(call(s, pos)?);
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

/// The tool call at position `pos` of its message.
fn call<'a>(s: &mut Cur<'a>, pos: u8) -> Option<Call<'a>> {
    let mut c = Call::default();
    s.fields(&[b"index", b"id", b"function"], |s, at| {
        match at {
            0 => c.index = opt_count(s, Slot::CallIndex(pos))?,
            1 => c.id = opt_str(s, Slot::CallId(pos))?,
            _ => {
                if !s.is_null() {
                    s.fields(&[b"name", b"arguments"], |s, at| {
                        if at == 0 {
                            c.name = opt_str(s, Slot::CallName(pos))?;
                        } else {
                            c.arguments = opt_str(s, Slot::CallArgs(pos))?;
                        }
                        Some(())
                    })?;
                }
            }
        }
        Some(())
    })?;
    Some(c)
}

/// Largest set of fixed bytes a layout keeps: bounds the memory a stream holds.
#[cfg(test)]
pub(super) const LAYOUT_MAX_BYTES: usize = Template::<()>::MAX_FIXED;

/// [`scan`] for the events of one stream, which mostly repeat one layout: DashScope sends the
/// same keys in the same order in every event, with the same `request_id` and `role`, and only
/// the new text, the finish reason and the usage counts change. The last scanned event is kept as
/// its bytes outside the values the scan reads or validates (its *holes*), each hole with its
/// token kind and the field it fills. An event with the same bytes outside its holes, and in each
/// hole a token the scan accepts there, is one the scan reads along the same path to the same
/// structure: the scan's steps depend on the bytes around the holes, and at a hole only on the
/// token being valid (a string, a count). So only the holes are read, with the scan's own token
/// rules, and the structure is the kept one. Anything else is scanned, and a scanned event
/// becomes the layout (at most one choice, at most [`MAX_HOLES`] holes, at most
/// `Template::MAX_FIXED` fixed bytes: otherwise the stream scans every event, as without one).
#[derive(Debug, Default)]
pub(super) struct Layout {
    /// The kept event; each hole's tag is its token kind and its field.
    template: Template<(Kind, Slot)>,
    /// `output` was present (an error body needs its absence).
    has_output: bool,
    /// `output` as an object: whether it had `text`, and its `choices` when an array (empty, or
    /// the one choice with no value read: the holes fill them in).
    output: Option<(bool, Option<Option<Choice<'static>>>)>,
}

impl Layout {
    /// The fast path's reading of `data` into `ev` (a default one): the layout's, else the
    /// scan's (which may become the layout), else the serde reading's; `false` sends the event
    /// to the `Value` path. In place: an event is a few hundred bytes, and moving it through
    /// the calls cost more than reading its values.
    pub fn read<'a>(&mut self, data: &'a [u8], ev: &mut Event<'a>) -> bool {
        if self.reuse(data, ev) {
            return true;
        }
        let mut s = Cursor::new(data, Holes::default());
        let read = match scan_noting(&mut s) {
            Some((scanned, has_output)) => {
                self.keep(data, &s.mode, &scanned, has_output);
                Some(scanned)
            }
            // The kept layout still serves the events after this one.
            None => parse_serde(data),
        };
        match read {
            Some(read) => {
                *ev = read;
                true
            }
            None => false,
        }
    }

    /// [`Layout::read`] as a value.
    #[cfg(test)]
    pub fn parse<'a>(&mut self, data: &'a [u8]) -> Option<Event<'a>> {
        let mut ev = Event::default();
        self.read(data, &mut ev).then_some(ev)
    }

    /// [`Layout::reuse`] as a value.
    #[cfg(test)]
    pub fn reused<'a>(&self, data: &'a [u8]) -> Option<Event<'a>> {
        let mut ev = Event::default();
        self.reuse(data, &mut ev).then_some(ev)
    }

    /// Memory held between events.
    pub fn held_capacity(&self) -> usize {
        self.template.held_capacity()
    }

    /// Keeps a scanned event as the layout, when it fits one.
    fn keep(&mut self, data: &[u8], h: &Holes, ev: &Event<'_>, has_output: bool) {
        let choices = ev.output.as_ref().and_then(|o| o.choices.as_ref());
        let holes = h.holes[..h.n]
            .iter()
            .map(|h| (h.start, h.end, (h.kind, h.slot)));
        if h.over
            || choices.is_some_and(|l| l.iter().nth(1).is_some())
            || !self.template.keep(data, holes, MAX_HOLES)
        {
            self.template.clear();
            return;
        }
        self.has_output = has_output;
        self.output = ev.output.as_ref().map(|o| {
            let choices = o.choices.as_ref().map(|l| l.iter().next().map(bare_choice));
            (o.has_text, choices)
        });
    }

    /// Reads `d` into `ev` (a default one) when `d` has the layout (see the type's doc): the
    /// kept structure first, then each hole's value into its field. On `false`, `ev` holds
    /// whatever was read before the difference.
    #[inline]
    fn reuse<'a>(&self, d: &'a [u8], ev: &mut Event<'a>) -> bool {
        self.reuse_in(d, ev).is_some()
    }

    #[inline(always)]
    fn reuse_in<'a>(&self, d: &'a [u8], ev: &mut Event<'a>) -> Option<()> {
        if self.template.is_empty() {
            return None;
        }
        let (mut text, mut out_finish, mut choice) = (None, None, None);
        if let Some((has_text, choices)) = &self.output {
            let o = ev.output.insert(Output {
                has_text: *has_text,
                ..Output::default()
            });
            text = Some(&mut o.text);
            out_finish = Some(&mut o.finish_reason);
            if let Some(one) = choices {
                let list = o.choices.insert(List::default());
                if let Some(kept) = one {
                    let c = list.push_default();
                    c.message = kept.message.as_ref().map(|m| Msg {
                        tool_calls: m.tool_calls.iter().map(|_| Call::default()).collect(),
                        ..Msg::default()
                    });
                    choice = Some(c);
                }
            }
        }
        let mut fill = Fill {
            request_id: &mut ev.request_id,
            text,
            out_finish,
            choice,
            usage: UsageIn::default(),
            has_code: false,
        };
        self.template.walk(d, |s, (kind, slot)| match kind {
            Kind::Free => s.plain_str_value().map(drop),
            Kind::Str => fill.str(slot, s.plain_str_value()?),
            Kind::Count => fill.count(slot, s.short_count()?),
        })?;
        let Fill {
            usage, has_code, ..
        } = fill;
        // An error body (see `response::error_in_body`) is the `Value` path's, as in the scan.
        if has_code && !self.has_output {
            return None;
        }
        ev.usage = usage.usage();
        Some(())
    }
}

/// The one choice of a layout, with no value read: its message and the message's tool calls.
fn bare_choice(c: &Choice<'_>) -> Choice<'static> {
    Choice {
        message: c.message.as_ref().map(|m| Msg {
            tool_calls: m.tool_calls.iter().map(|_| Call::default()).collect(),
            ..Msg::default()
        }),
        ..Choice::default()
    }
}

/// The fields of an event being read from a layout's holes.
struct Fill<'e, 'a> {
    request_id: &'e mut Option<Cow<'a, str>>,
    /// `output.text` and `output.finish_reason`, when `output` is an object.
    text: Option<&'e mut Option<Cow<'a, str>>>,
    out_finish: Option<&'e mut Option<Cow<'a, str>>>,
    choice: Option<&'e mut Choice<'a>>,
    usage: UsageIn,
    has_code: bool,
}

impl<'a> Fill<'_, 'a> {
    /// `None` for a slot the structure has no field for (never for a hole the scan noted).
    #[inline(always)]
    fn str(&mut self, slot: Slot, v: Cow<'a, str>) -> Option<()> {
        let v = Some(v);
        match slot {
            Slot::RequestId => *self.request_id = v,
            Slot::Code => self.has_code = v.is_some_and(|c| !c.is_empty()),
            Slot::Text => **self.text.as_mut()? = v,
            Slot::OutFinish => **self.out_finish.as_mut()? = v,
            Slot::Finish => self.choice.as_mut()?.finish_reason = v,
            Slot::Reasoning => self.msg()?.reasoning = v,
            Slot::Content => self.msg()?.content = v,
            Slot::CallId(k) => self.call(k)?.id = v,
            Slot::CallName(k) => self.call(k)?.name = v,
            Slot::CallArgs(k) => self.call(k)?.arguments = v,
            _ => {}
        }
        Some(())
    }

    #[inline(always)]
    fn count(&mut self, slot: Slot, n: u64) -> Option<()> {
        let n = Some(n);
        match slot {
            Slot::Usage(0) => self.usage.input = n,
            Slot::Usage(1) => self.usage.output = n,
            Slot::Usage(2) => self.usage.total = n,
            Slot::Usage(3) => self.usage.cached = n,
            Slot::Usage(_) => self.usage.reasoning = n,
            Slot::Index => self.choice.as_mut()?.index = n,
            Slot::CallIndex(k) => self.call(k)?.index = n,
            _ => {}
        }
        Some(())
    }

    fn msg(&mut self) -> Option<&mut Msg<'a>> {
        self.choice.as_mut()?.message.as_mut()
    }

    fn call(&mut self, k: u8) -> Option<&mut Call<'a>> {
        self.msg()?.tool_calls.get_mut(usize::from(k))
    }
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
