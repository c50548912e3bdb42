//! The fastest reading of a `GenerateContentResponse`: a validating, allocation-free walk of the
//! JSON text (the same approach as `openai::chunk_scan`) into the borrowed [`typed::Event`].
//!
//! Conservative like that scan: it answers `None` ("read it another way") for anything it is not
//! sure serde_json would read the same, e.g. escaped keys, duplicate keys it looks at, numbers
//! near `f64`'s range, deep nesting, `\u` escapes of surrogates, function calls (read by the
//! serde typed reading), an `error` key. Strings with escapes are decoded by serde_json.
//!
//! A stream's events mostly repeat one layout (the text and the token counts change, little
//! else): [`Layout`] keeps the last scanned event's bytes outside the values the scan reads, and
//! reads an event with those bytes by comparing them and reading only those values.

use super::typed::{Candidate, Event, Part, UsageCounts};
use crate::openai::json_scan::{Cursor, Template};

/// Values (read strings and counts) a layout leaves open; an event with more is not kept.
const MAX_SLOTS: usize = 16;
/// Candidates, and parts per candidate, a layout describes.
const MAX_CANDS: usize = 4;
const MAX_PARTS: usize = 4;
/// Largest fixed part kept (tests).
#[cfg(test)]
const LAYOUT_MAX_BYTES: usize = Template::<()>::MAX_FIXED;
/// Most memory a stream's layout holds: its fixed bytes and its holes (tests).
#[cfg(test)]
const LAYOUT_HELD_MAX: usize =
    LAYOUT_MAX_BYTES + MAX_SLOTS * std::mem::size_of::<(u32, (Field, u8, u8))>();

/// What a slot's value is in the [`Event`].
#[derive(Debug, Clone, Copy, Default)]
enum Field {
    #[default]
    Text,
    Signature,
    Finish,
    Index,
    Model,
    Usage(u8),
}

/// One value the scan read: where it lies (in the event while scanning, then its cut in the
/// layout's fixed bytes) and where it goes.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    start: u32,
    end: u32,
    field: Field,
    cand: u8,
    part: u8,
}

/// The scan's record of the values it read, in the order of the text.
struct Rec {
    slots: [Slot; MAX_SLOTS],
    n: usize,
    /// More slots, candidates or parts than a layout holds.
    over: bool,
}

impl Rec {
    fn new() -> Self {
        Self {
            slots: [Slot::default(); MAX_SLOTS],
            n: 0,
            over: false,
        }
    }

    #[inline]
    fn note(&mut self, start: usize, end: usize, field: Field, cand: usize, part: usize) {
        if self.n == MAX_SLOTS {
            self.over = true;
            return;
        }
        self.slots[self.n] = Slot {
            start: start as u32,
            end: end as u32,
            field,
            cand: cand as u8,
            part: part as u8,
        };
        self.n += 1;
    }
}

/// Reads one event's data (or a whole reply body); `None` when another reading must decide.
pub(super) fn scan(data: &[u8]) -> Option<Event<'_>> {
    scan_recorded(data, &mut Rec::new())
}

fn scan_recorded<'a>(data: &'a [u8], rec: &mut Rec) -> Option<Event<'a>> {
    let mut s = Cursor::plain(data);
    let ev = event(&mut s, rec)?;
    s.at_end().then_some(ev)
}

/// A string value, noted in `rec`.
#[inline]
fn str_slot<'a>(
    s: &mut Cursor<'a>,
    rec: &mut Rec,
    field: Field,
    cand: usize,
    part: usize,
) -> Option<std::borrow::Cow<'a, str>> {
    s.ws();
    let start = s.i;
    let v = s.str_value()?;
    rec.note(start, s.i, field, cand, part);
    Some(v)
}

/// A count, noted in `rec`.
#[inline]
fn count_slot(s: &mut Cursor<'_>, rec: &mut Rec, field: Field, cand: usize) -> Option<u64> {
    s.ws();
    let start = s.i;
    let v = s.count()?;
    rec.note(start, s.i, field, cand, 0);
    Some(v)
}

fn event<'a>(s: &mut Cursor<'a>, rec: &mut Rec) -> Option<Event<'a>> {
    let mut ev = Event::default();
    let names: [&[u8]; 4] = [b"candidates", b"usageMetadata", b"modelVersion", b"error"];
    s.fields(&names, |s, at| {
        match at {
            0 => {
                let mut c = 0;
                s.array(|s| {
                    rec.over |= c >= MAX_CANDS;
                    candidate(s, ev.candidates.push_default(), c, rec)?;
                    c += 1;
                    Some(())
                })?
            }
            1 => ev.usage = Some(usage(s, rec)?),
            2 => ev.model_version = Some(str_slot(s, rec, Field::Model, 0, 0)?),
            // Google's error model: the reference reports it.
            _ => return None,
        }
        Some(())
    })?;
    Some(ev)
}

fn candidate<'a>(
    s: &mut Cursor<'a>,
    c: &mut Candidate<'a>,
    at: usize,
    rec: &mut Rec,
) -> Option<()> {
    s.fields(&[b"index", b"content", b"finishReason"], |s, field| {
        match field {
            0 => c.index = Some(count_slot(s, rec, Field::Index, at)?),
            1 => {
                s.fields(&[b"parts"], |s, _| {
                    let mut p = 0;
                    s.array(|s| {
                        rec.over |= p >= MAX_PARTS;
                        part(s, c.parts.push_default(), at, p, rec)?;
                        p += 1;
                        Some(())
                    })
                })?;
            }
            _ => c.finish_reason = Some(str_slot(s, rec, Field::Finish, at, 0)?),
        }
        Some(())
    })
    .map(drop)
}

fn part<'a>(
    s: &mut Cursor<'a>,
    p: &mut Part<'a>,
    cand: usize,
    at: usize,
    rec: &mut Rec,
) -> Option<()> {
    let names: [&[u8]; 4] = [b"text", b"thought", b"thoughtSignature", b"functionCall"];
    s.fields(&names, |s, field| {
        match field {
            0 => p.text = Some(str_slot(s, rec, Field::Text, cand, at)?),
            1 => p.thought = Some(s.boolean()?),
            2 => p.thought_signature = Some(str_slot(s, rec, Field::Signature, cand, at)?),
            // Read by the serde typed reading.
            _ => return None,
        }
        Some(())
    })
    .map(drop)
}

fn usage(s: &mut Cursor<'_>, rec: &mut Rec) -> Option<UsageCounts> {
    let mut u = UsageCounts::default();
    let names: [&[u8]; 5] = [
        b"promptTokenCount",
        b"candidatesTokenCount",
        b"thoughtsTokenCount",
        b"totalTokenCount",
        b"cachedContentTokenCount",
    ];
    s.fields(&names, |s, at| {
        *usage_slot(&mut u, at) = Some(count_slot(s, rec, Field::Usage(at as u8), 0)?);
        Some(())
    })?;
    Some(u)
}

/// The count of `usageMetadata`'s `names[at]` (see [`usage`]).
#[inline]
fn usage_slot(u: &mut UsageCounts, at: usize) -> &mut Option<u64> {
    match at {
        0 => &mut u.prompt,
        1 => &mut u.candidates,
        2 => &mut u.thoughts,
        3 => &mut u.total,
        _ => &mut u.cached,
    }
}

/// The last scanned event of a stream with its read values cut out (see the module doc). An
/// event with the same bytes outside those values, and values the scan reads in them, is one the
/// scan reads the same way: it walks the same keys in the same order and decides nothing on the
/// values but their type, so it would give the layout's event with these values.
#[derive(Debug, Default)]
pub(super) struct Layout {
    /// The kept event; each hole's tag is where its value goes.
    template: Template<(Field, u8, u8)>,
    /// Parts per candidate (`n_cands` of them), each part's `thought`.
    parts: [u8; MAX_CANDS],
    n_cands: usize,
    thought: [[Option<bool>; MAX_PARTS]; MAX_CANDS],
    usage: bool,
}

impl Layout {
    /// What [`scan`] answers for `data`, into `ev` (a default event; filled in place, as the
    /// event is large to move): whether it read it. A scanned event becomes the layout.
    pub fn read_into<'a>(&mut self, data: &'a [u8], ev: &mut Event<'a>) -> bool {
        if !self.template.is_empty() {
            if self.matched(data, ev).is_some() {
                return true;
            }
            *ev = Event::default();
        }
        let mut rec = Rec::new();
        let Some(scanned) = scan_recorded(data, &mut rec) else {
            return false;
        };
        self.keep(data, &scanned, &rec);
        *ev = scanned;
        true
    }

    /// [`Layout::read_into`] as a value.
    #[cfg(test)]
    fn read<'a>(&mut self, data: &'a [u8]) -> Option<Event<'a>> {
        let mut ev = Event::default();
        self.read_into(data, &mut ev).then_some(ev)
    }

    /// Memory held between events.
    pub fn held_capacity(&self) -> usize {
        self.template.held_capacity()
    }

    fn keep(&mut self, data: &[u8], ev: &Event<'_>, rec: &Rec) {
        let slots = rec.slots[..rec.n]
            .iter()
            .map(|s| (s.start, s.end, (s.field, s.cand, s.part)));
        if rec.over || !self.template.keep(data, slots, MAX_SLOTS) {
            self.template.clear();
            return;
        }
        self.n_cands = 0;
        for (c, cand) in ev.candidates.iter().enumerate() {
            let mut n = 0;
            for (p, part) in cand.parts.iter().enumerate() {
                self.thought[c][p] = part.thought;
                n += 1;
            }
            self.parts[c] = n;
            self.n_cands += 1;
        }
        self.usage = ev.usage.is_some();
    }

    /// `data` read by the layout into `ev` (a default event), or `None` when it has other fixed
    /// bytes or values the scan refuses (`ev` is then partly filled).
    fn matched<'a>(&self, data: &'a [u8], ev: &mut Event<'a>) -> Option<()> {
        for c in 0..self.n_cands {
            let cand = ev.candidates.push_default();
            for p in 0..self.parts[c] as usize {
                cand.parts.push_default().thought = self.thought[c][p];
            }
        }
        if self.usage {
            ev.usage = Some(UsageCounts::default());
        }
        self.template.walk(data, |s, (field, c, p)| {
            let (c, p) = (c as usize, p as usize);
            match field {
                Field::Text => part_mut(ev, c, p)?.text = Some(s.plain_str_value()?),
                Field::Signature => {
                    part_mut(ev, c, p)?.thought_signature = Some(s.plain_str_value()?)
                }
                Field::Finish => {
                    ev.candidates.get_mut(c)?.finish_reason = Some(s.plain_str_value()?)
                }
                Field::Index => ev.candidates.get_mut(c)?.index = Some(s.short_count()?),
                Field::Model => ev.model_version = Some(s.plain_str_value()?),
                Field::Usage(at) => {
                    *usage_slot(ev.usage.as_mut()?, at as usize) = Some(s.short_count()?)
                }
            }
            Some(())
        })
    }
}

fn part_mut<'e, 'a>(ev: &'e mut Event<'a>, c: usize, p: usize) -> Option<&'e mut Part<'a>> {
    ev.candidates.get_mut(c)?.parts.get_mut(p)
}
#[cfg(test)]
mod tests {
    use super::super::response::GeminiTranslator;
    use super::super::stream::StreamState;
    use super::super::typed::read_serde;
    use super::*;
    use crate::openai::writer::OpenAiWriter;
    use crate::providers::{Api, ResponseTranslator};
    use crate::testutil::{push_random_string_content, random_structural_edit};
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use std::borrow::Cow;

    /// Output with the random and clock-dependent bits (completion and call ids, `created`)
    /// replaced, so two runs over the same input compare equal.
    fn normalized(out: &[u8]) -> String {
        let mut s = String::from_utf8(out.to_vec()).expect("UTF-8 output");
        for prefix in ["chatcmpl-", "call_"] {
            let mut from = 0;
            while let Some(at) = s[from..].find(prefix) {
                let start = from + at + prefix.len();
                let end = start + s[start..].bytes().take_while(u8::is_ascii_hexdigit).count();
                s.replace_range(start..end, "X");
                from = start;
            }
        }
        let mut from = 0;
        while let Some(at) = s[from..].find("\"created\":") {
            let start = from + at + "\"created\":".len();
            let end = start + s[start..].bytes().take_while(u8::is_ascii_digit).count();
            s.replace_range(start..end, "0");
            from = start;
        }
        s
    }

    /// One event through the stream translator, fast path allowed or not: output and outcome.
    fn stream(data: &[u8], fast: bool) -> (String, String, Option<crate::usage::Usage>, bool) {
        let mut state = StreamState::default();
        let mut w = OpenAiWriter::new("m", true);
        let first = state.on_data(data, &mut w, fast);
        // A second event after it: the state the first left must be the same too.
        let second = state.on_data(data, &mut w, fast);
        (
            normalized(w.output()),
            format!("{first:?} {second:?}"),
            w.usage(),
            w.finished(),
        )
    }

    /// The data as a whole buffered reply: fast path (`on_body`) against the `Value` reading.
    fn buffered(data: &[u8]) -> [(String, String); 2] {
        let mut fast_w = OpenAiWriter::new("m", true);
        let fast = GeminiTranslator::new(Api::ChatCompletions).on_body(data, &mut fast_w);
        let mut ref_w = OpenAiWriter::new("m", true);
        let reference = super::super::response::reference_body(data, &mut ref_w);
        [
            (normalized(fast_w.output()), format!("{fast:?}")),
            (normalized(ref_w.output()), format!("{reference:?}")),
        ]
    }

    /// Checks one input: the scan reads what serde into the same types reads, and the stream and
    /// buffered translations with the fast paths are those of the `Value` reading.
    fn check(data: &[u8]) -> bool {
        let scanned = scan(data);
        if let Some(ev) = &scanned {
            assert_eq!(
                Some(ev),
                read_serde(data).as_ref(),
                "{}",
                String::from_utf8_lossy(data)
            );
        }
        assert_eq!(
            stream(data, true),
            stream(data, false),
            "{}",
            String::from_utf8_lossy(data)
        );
        let [fast, reference] = buffered(data);
        assert_eq!(fast, reference, "{}", String::from_utf8_lossy(data));
        scanned.is_some()
    }

    const BENCH: &str = r#"{"candidates": [{"content": {"parts": [{"text": "tok1 "}],"role": "model"}, "index": 0}],"usageMetadata": {"promptTokenCount": 250,"candidatesTokenCount": 1,"totalTokenCount": 251},"modelVersion": "bench-model"}"#;

    const SEEDS: &[&str] = &[
        BENCH,
        r#"{"candidates": [{"content": {"parts": [{"text": "Hi \"there\"\n\u00e9 — ü 中"}, {"text": "thinking", "thought": true}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}],"role": "model"}, "finishReason": "STOP", "index": 0, "safetyRatings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"}]}],"usageMetadata": {"promptTokenCount": 5,"candidatesTokenCount": 29,"thoughtsTokenCount": 8,"cachedContentTokenCount": 2,"totalTokenCount": 44, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}]},"modelVersion": "gemini-2.5-flash","responseId": "abc"}"#,
        r#"{"candidates": [{"content": {"parts": [{"text": "a", "thought": false, "thoughtSignature": "c2ln"}]}, "index": 1}, {"content": {"parts": [{"text": "b"}]}, "finishReason": "MAX_TOKENS"}]}"#,
        r#"{"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"b": 1, "a": [1.5e3, null]}}, "thoughtSignature": "c2ln"}, {"functionCall": {"id": "x", "name": "g"}}]}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 1}}"#,
        r#"{"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": [{"blocked": true}]}], "promptFeedback": {"safetyRatings": []}}"#,
        r#"{"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3}}"#,
    ];

    #[test]
    fn usual_events_take_the_scan() {
        for seed in SEEDS[..3].iter() {
            assert!(check(seed.as_bytes()), "not scanned: {seed}");
        }
        let ev = scan(BENCH.as_bytes()).unwrap();
        let part = ev
            .candidates
            .iter()
            .next()
            .unwrap()
            .parts
            .iter()
            .next()
            .unwrap();
        assert!(matches!(part.text, Some(Cow::Borrowed("tok1 "))));
        assert_eq!(ev.usage.unwrap().total, Some(251));
    }

    /// Edge cases by hand: each agrees with the reference, whichever reading takes it.
    #[test]
    fn edge_cases_agree_with_the_value_reading() {
        let b = BENCH;
        let cases = [
            SEEDS[3].to_string(),
            SEEDS[4].to_string(),
            SEEDS[5].to_string(),
            // Duplicate keys: the last wins in the reference.
            b.replace(r#""index": 0"#, r#""index": 0, "index": 3"#),
            b.replace(r#""modelVersion""#, r#""modelVersion": "a", "modelVersion""#),
            b.replace(r#""text": "tok1 ""#, r#""text": "a", "text": "b""#),
            b.replace(r#""promptTokenCount": 250"#, r#""promptTokenCount": 250, "promptTokenCount": 1"#),
            b.replace(r#""candidates""#, r#""candidates": [], "candidates""#),
            // Escaped keys and values, unicode, surrogate pairs, lone surrogates.
            b.replace(r#""text""#, r#""te\u0078t""#),
            b.replace(r#""tok1 ""#, r#""\ud83d\ude00 \u00e9\n\t\"\\\/""#),
            b.replace(r#""tok1 ""#, r#""\ud800""#),
            b.replace(r#""tok1 ""#, "\"t\u{1}\""),
            // Odd types, nulls, numbers.
            b.replace(r#""index": 0"#, r#""index": -1"#),
            b.replace(r#""index": 0"#, r#""index": 1e2"#),
            b.replace(r#""index": 0"#, r#""index": 1.0"#),
            b.replace(r#""index": 0"#, r#""index": 200"#),
            b.replace(r#""index": 0"#, r#""index": 18446744073709551616"#),
            b.replace(r#""index": 0"#, r#""index": null"#),
            b.replace(r#""index": 0"#, r#""index": "0""#),
            b.replace(r#""promptTokenCount": 250"#, r#""promptTokenCount": 1e400"#),
            b.replace(r#""promptTokenCount": 250"#, r#""promptTokenCount": 2.5"#),
            b.replace(r#""promptTokenCount": 250"#, r#""promptTokenCount": 99999999999999999999"#),
            b.replace(r#""role": "model""#, r#""role": 1e400"#),
            b.replace(r#""role": "model""#, r#""role": 123456789012345678901234567890e-300"#),
            b.replace(r#""text": "tok1 ""#, r#""text": null"#),
            b.replace(r#""text": "tok1 ""#, r#""text": "t", "thought": null"#),
            b.replace(r#""text": "tok1 ""#, r#""functionCall": null"#),
            b.replace(r#""modelVersion": "bench-model""#, r#""modelVersion": 5"#),
            b.replace(r#""usageMetadata""#, r#""usageMetadata": null, "x""#),
            b.replace(r#""candidates""#, r#""candidates": null, "x""#),
            b.replace(r#"{"text": "tok1 "}"#, r#"5"#),
            b.replace(r#""content": {"#, r#""content": {"parts": null, "#),
            // Errors: in the object, wrapped in an array, not an object error.
            b.replace(r#""modelVersion""#, r#""error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}, "modelVersion""#),
            b.replace(r#""modelVersion""#, r#""error": "text", "modelVersion""#),
            format!("[{b}]"),
            r#"[{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}]"#.to_string(),
            // Malformed JSON, trailing bytes, nesting, whitespace.
            b[..b.len() - 1].to_string(),
            format!("{b} x"),
            format!(" \n{b}\r\n "),
            b.replace(r#""role": "model""#, &format!(r#""role": {}1{}"#, "[".repeat(70), "]".repeat(70))),
            b.replace(r#""role": "model""#, &format!(r#""role": {}1{}"#, "[".repeat(130), "]".repeat(130))),
            b.replace(r#""role": "model""#, r#""role": [1,]"#),
            b.replace(r#""role": "model""#, r#""role": 01"#),
            "{}".to_string(),
            "5".to_string(),
        ];
        for case in &cases {
            check(case.as_bytes());
        }
        // Invalid UTF-8 in a string the readings skip and in one they read.
        for at in [b.find("model\"}").unwrap(), b.find("tok1").unwrap()] {
            for bad in [&b"\xff"[..], b"\xc3", b"\xed\xa0\x80", b"abcdefgh\xc3("] {
                let mut data = b.as_bytes().to_vec();
                data.splice(at..at, bad.iter().copied());
                assert!(scan(&data).is_none());
                check(&data);
            }
        }
    }

    /// One event through a stream whose previous event was `prev` (so the layout is `prev`'s),
    /// fast path allowed or not.
    fn stream_after(
        prev: &[u8],
        data: &[u8],
        fast: bool,
    ) -> (String, String, Option<crate::usage::Usage>) {
        let mut state = StreamState::default();
        let mut w = OpenAiWriter::new("m", true);
        let first = state.on_data(prev, &mut w, fast);
        let second = state.on_data(data, &mut w, fast);
        (
            normalized(w.output()),
            format!("{first:?} {second:?}"),
            w.usage(),
        )
    }

    /// Events of one layout whose values (texts, signatures, counts, model, finish) take every
    /// kind of content: escapes, UTF-8 across word boundaries, invalid UTF-8, control bytes,
    /// lone surrogates, raw quotes, numbers of every shape, other types; sometimes a random edit
    /// anywhere, sometimes another layout. The layout reads what the scan reads for every event,
    /// and a stream after it translates as the reference does.
    #[test]
    fn layouts_agree_with_the_scan_on_varied_values() {
        let seeds = [
            BENCH.to_string(),
            SEEDS[1].to_string(),
            SEEDS[2].to_string(),
            // Thinking: a thought part, then text with a signature, two candidates.
            r#"{"candidates": [{"content": {"parts": [{"text": "hmm", "thought": true}, {"text": "a", "thoughtSignature": "c2ln"}]}, "index": 0}, {"index": 1, "content": {"parts": []}, "finishReason": "STOP"}], "modelVersion": "g", "usageMetadata": {"thoughtsTokenCount": 3}}"#.to_string(),
            // Whitespace around every value, usage first.
            "{ \"usageMetadata\" : { \"totalTokenCount\" :\t7 } ,\n \"candidates\" : [ { \"content\" : { \"parts\" : [ { \"text\" : \"x\" } ] } } ] }".to_string(),
        ];
        let numbers: [&[u8]; 14] = [
            b"0",
            b"7",
            b"1234",
            b"18446744073709551615",
            b"18446744073709551616",
            b"-1",
            b"1.5",
            b"1e2",
            b"01",
            b"null",
            b"\"3\"",
            b"true",
            b" 5",
            b"5 ",
        ];
        let mut rng = StdRng::seed_from_u64(21);
        let mut layout = Layout::default();
        let (mut hits, mut scanned, mut total) = (0, 0, 0);
        let mut seed = 0;
        let mut prev = seeds[0].as_bytes().to_vec();
        for round in 0..30_000 {
            if rng.gen_range(0..300) == 0 {
                seed = rng.gen_range(0..seeds.len());
            }
            let text = seeds[seed].as_bytes();
            let mut rec = Rec::new();
            scan_recorded(text, &mut rec).expect("seeds are scanned");
            let mut b = Vec::new();
            let mut at = 0;
            for slot in &rec.slots[..rec.n] {
                let (start, end) = (slot.start as usize, slot.end as usize);
                b.extend_from_slice(&text[at..start]);
                let string = text[start] == b'"';
                if !rng.gen_bool(0.6) {
                    b.extend_from_slice(&text[start..end]);
                } else if string && rng.gen_bool(0.95) {
                    b.push(b'"');
                    push_random_string_content(&mut rng, &mut b);
                    b.push(b'"');
                } else if !string && rng.gen_bool(0.7) {
                    b.extend_from_slice(rng.gen_range(0..100_000u64).to_string().as_bytes());
                } else {
                    b.extend_from_slice(numbers[rng.gen_range(0..numbers.len())]);
                }
                at = end;
            }
            b.extend_from_slice(&text[at..]);
            if round % 10 == 0 {
                random_structural_edit(&mut rng, &mut b);
            }
            total += 1;
            let from_layout =
                !layout.template.is_empty() && layout.matched(&b, &mut Event::default()).is_some();
            let got = layout.read(&b);
            let want = scan(&b);
            assert_eq!(got, want, "{}", String::from_utf8_lossy(&b));
            assert!(layout.held_capacity() <= LAYOUT_HELD_MAX);
            hits += usize::from(from_layout);
            if want.is_some() {
                scanned += 1;
                assert_eq!(want, read_serde(&b), "{}", String::from_utf8_lossy(&b));
            }
            if round % 4 == 0 {
                assert_eq!(
                    stream_after(&prev, &b, true),
                    stream_after(&prev, &b, false),
                    "{}\n{}",
                    String::from_utf8_lossy(&prev),
                    String::from_utf8_lossy(&b)
                );
            }
            prev = b;
        }
        // Every path is taken often: the layout, the scan, refusals.
        assert!(hits > total / 3, "{hits} layout hits of {total}");
        assert!(
            scanned > hits + total / 50,
            "{scanned} scanned, {hits} hits"
        );
        assert!(scanned < total * 9 / 10, "{scanned} of {total} scanned");
    }

    /// The layout is bounded: a larger event is scanned and not kept; the values do not count.
    #[test]
    fn the_layout_is_bounded() {
        let mut layout = Layout::default();
        let long_text = BENCH.replace("tok1 ", &"x".repeat(3 * LAYOUT_MAX_BYTES));
        assert_eq!(
            layout.read(long_text.as_bytes()),
            scan(long_text.as_bytes())
        );
        assert!(layout
            .matched(BENCH.as_bytes(), &mut Event::default())
            .is_some());
        let wide = BENCH.replace(
            r#""role": "model""#,
            &format!(r#""role": "{}""#, "m".repeat(LAYOUT_MAX_BYTES)),
        );
        assert_eq!(layout.read(wide.as_bytes()), scan(wide.as_bytes()));
        assert!(layout.template.is_empty());
        assert!(layout.held_capacity() <= LAYOUT_HELD_MAX);
        // More values than a layout holds: read by the scan each time.
        let parts = format!(
            r#"{{"candidates": [{{"content": {{"parts": [{}]}}}}]}}"#,
            vec![r#"{"text": "a"}"#; 20].join(",")
        );
        assert_eq!(layout.read(parts.as_bytes()), scan(parts.as_bytes()));
        assert!(layout.template.is_empty());
    }

    /// Random edits of usual events: whatever reading takes them, the translation is the
    /// reference's.
    #[test]
    fn fast_readings_agree_with_the_value_reading_on_random_edits() {
        let alphabet: &[u8] = b"{}[]\":,\\ \tnulltrue0123456789-+.eEabcdefu\x01\xc3\xa9";
        let mut rng = StdRng::seed_from_u64(9);
        let (mut scanned, mut total) = (0, 0);
        for seed in SEEDS {
            for _ in 0..3_000 {
                let mut b = seed.as_bytes().to_vec();
                crate::testutil::random_edits(&mut rng, &mut b, alphabet);
                total += 1;
                if check(&b) {
                    scanned += 1;
                }
            }
        }
        // The edits are not all rejections: the comparison covers scanned variants too.
        assert!(scanned > total / 50, "{scanned} of {total}");
    }
}
