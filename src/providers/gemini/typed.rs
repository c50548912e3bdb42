//! The fast reading of a `GenerateContentResponse`: borrowed, typed, no `serde_json::Value`.
//!
//! It covers the common shape only (candidates with text, thought and functionCall parts,
//! finishReason, index; usageMetadata; modelVersion) and refuses anything else, so the caller
//! falls back to the `Value` reading, which stays the reference: a key of an unexpected type
//! (`null` included), a key given twice, an `error` key, a top level that is not an object. What
//! it does not read is still parsed as `Value` parsing would (numbers, strings and their UTF-8,
//! nesting depth), so it never accepts an event the reference refuses.

use serde::de;
use serde_json::Value;
use std::borrow::Cow;

use crate::openai::json_scan::Items;
pub(super) use crate::openai::json_scan::List;
use crate::typed_json::{fields, object_reader, Str};

/// `usageMetadata`'s counts (each absent unless an unsigned integer).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct UsageCounts {
    pub prompt: Option<u64>,
    pub candidates: Option<u64>,
    pub thoughts: Option<u64>,
    pub total: Option<u64>,
    pub cached: Option<u64>,
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct Event<'a> {
    pub candidates: List<Candidate<'a>>,
    pub usage: Option<UsageCounts>,
    pub model_version: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct Candidate<'a> {
    pub index: Option<u64>,
    pub parts: List<Part<'a>>,
    pub finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct Part<'a> {
    pub text: Option<Cow<'a, str>>,
    pub thought: Option<bool>,
    pub thought_signature: Option<Cow<'a, str>>,
    /// Any JSON value (a `null` one included), read as the reference reads it; boxed to keep
    /// parts small (they are moved while being read).
    pub function_call: Option<Box<Value>>,
}

/// Reads `bytes` the fast way (the scan, else serde into these types); `None` when the caller
/// must use the `Value` reading.
pub(super) fn read(bytes: &[u8]) -> Option<Event<'_>> {
    super::scan::scan(bytes).or_else(|| read_serde(bytes))
}

/// The serde typed reading alone.
pub(super) fn read_serde(bytes: &[u8]) -> Option<Event<'_>> {
    serde_json::from_slice(bytes).ok()
}

object_reader!(Event<'de>, "a GenerateContentResponse", |map| {
    let mut out = Event::default();
    let names = ["candidates", "usageMetadata", "modelVersion", "error"];
    fields(&mut map, &names, |i, map| {
        match i {
            0 => out.candidates = map.next_value::<Items<Candidate>>()?.0,
            1 => out.usage = Some(map.next_value::<Usage>()?.0),
            2 => out.model_version = Some(map.next_value::<Str>()?.0),
            // Google's error model: the reference reports it.
            _ => return Err(de::Error::custom("error object")),
        }
        Ok(())
    })?;
    Ok(out)
});

object_reader!(Candidate<'de>, "a candidate", |map| {
    let mut out = Candidate::default();
    fields(&mut map, &["index", "content", "finishReason"], |i, map| {
        match i {
            0 => out.index = Some(map.next_value::<u64>()?),
            1 => out.parts = map.next_value::<Content>()?.parts,
            _ => out.finish_reason = Some(map.next_value::<Str>()?.0),
        }
        Ok(())
    })?;
    Ok(out)
});

#[derive(Default)]
struct Content<'a> {
    parts: List<Part<'a>>,
}

object_reader!(Content<'de>, "a content object", |map| {
    let mut out = Content::default();
    fields(&mut map, &["parts"], |_, map| {
        out.parts = map.next_value::<Items<Part>>()?.0;
        Ok(())
    })?;
    Ok(out)
});

object_reader!(Part<'de>, "a part", |map| {
    let mut out = Part::default();
    let names = ["text", "thought", "thoughtSignature", "functionCall"];
    fields(&mut map, &names, |i, map| {
        match i {
            0 => out.text = Some(map.next_value::<Str>()?.0),
            1 => out.thought = Some(map.next_value::<bool>()?),
            2 => out.thought_signature = Some(map.next_value::<Str>()?.0),
            _ => out.function_call = Some(Box::new(map.next_value::<Value>()?)),
        }
        Ok(())
    })?;
    Ok(out)
});

/// `usageMetadata`.
struct Usage(UsageCounts);

object_reader!(Usage, "usageMetadata", |map| {
    let mut out = UsageCounts::default();
    let names = [
        "promptTokenCount",
        "candidatesTokenCount",
        "thoughtsTokenCount",
        "totalTokenCount",
        "cachedContentTokenCount",
    ];
    fields(&mut map, &names, |i, map| {
        let n = Some(map.next_value::<u64>()?);
        match i {
            0 => out.prompt = n,
            1 => out.candidates = n,
            2 => out.thoughts = n,
            3 => out.total = n,
            _ => out.cached = n,
        }
        Ok(())
    })?;
    Ok(Usage(out))
});
