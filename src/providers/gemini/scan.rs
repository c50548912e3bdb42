//! The fastest reading of a `GenerateContentResponse`: a validating, allocation-free walk of the
//! JSON text (the same approach as `openai::chunk_scan`) into the borrowed [`typed::Event`].
//!
//! Conservative like that scan: it answers `None` ("read it another way") for anything it is not
//! sure serde_json would read the same, e.g. escaped keys, duplicate keys it looks at, numbers
//! near `f64`'s range, deep nesting, `\u` escapes of surrogates, function calls (read by the
//! serde typed reading), an `error` key. Strings with escapes are decoded by serde_json.

use super::typed::{Candidate, Event, Part, UsageCounts};
use crate::openai::json_scan::Cursor;

/// Reads one event's data (or a whole reply body); `None` when another reading must decide.
pub(super) fn scan(data: &[u8]) -> Option<Event<'_>> {
    let mut s = Cursor::plain(data);
    let ev = event(&mut s)?;
    s.at_end().then_some(ev)
}

fn event<'a>(s: &mut Cursor<'a>) -> Option<Event<'a>> {
    let mut ev = Event::default();
    let names: [&[u8]; 4] = [b"candidates", b"usageMetadata", b"modelVersion", b"error"];
    s.fields(&names, |s, at| {
        match at {
            0 => s.array(|s| candidate(s, ev.candidates.push_default()))?,
            1 => ev.usage = Some(usage(s)?),
            2 => ev.model_version = Some(s.str_value()?),
            // Google's error model: the reference reports it.
            _ => return None,
        }
        Some(())
    })?;
    Some(ev)
}

fn candidate<'a>(s: &mut Cursor<'a>, c: &mut Candidate<'a>) -> Option<()> {
    s.fields(&[b"index", b"content", b"finishReason"], |s, at| {
        match at {
            0 => c.index = Some(s.count()?),
            1 => {
                s.fields(&[b"parts"], |s, _| {
                    s.array(|s| part(s, c.parts.push_default()))
                })?;
            }
            _ => c.finish_reason = Some(s.str_value()?),
        }
        Some(())
    })
    .map(drop)
}

fn part<'a>(s: &mut Cursor<'a>, p: &mut Part<'a>) -> Option<()> {
    let names: [&[u8]; 4] = [b"text", b"thought", b"thoughtSignature", b"functionCall"];
    s.fields(&names, |s, at| {
        match at {
            0 => p.text = Some(s.str_value()?),
            1 => p.thought = Some(s.boolean()?),
            2 => p.thought_signature = Some(s.str_value()?),
            // Read by the serde typed reading.
            _ => return None,
        }
        Some(())
    })
    .map(drop)
}

fn usage(s: &mut Cursor<'_>) -> Option<UsageCounts> {
    let mut u = UsageCounts::default();
    let names: [&[u8]; 5] = [
        b"promptTokenCount",
        b"candidatesTokenCount",
        b"thoughtsTokenCount",
        b"totalTokenCount",
        b"cachedContentTokenCount",
    ];
    s.fields(&names, |s, at| {
        let slot = match at {
            0 => &mut u.prompt,
            1 => &mut u.candidates,
            2 => &mut u.thoughts,
            3 => &mut u.total,
            _ => &mut u.cached,
        };
        *slot = Some(s.count()?);
        Some(())
    })?;
    Some(u)
}

#[cfg(test)]
mod tests {
    use super::super::response::GeminiTranslator;
    use super::super::stream::StreamState;
    use super::super::typed::read_serde;
    use super::*;
    use crate::openai::writer::OpenAiWriter;
    use crate::providers::{Api, ResponseTranslator};
    use rand::{rngs::StdRng, SeedableRng};
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
