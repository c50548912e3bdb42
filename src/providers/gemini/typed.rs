//! The fast reading of a `GenerateContentResponse`: borrowed, typed, no `serde_json::Value`.
//!
//! It covers the common shape only (candidates with text, thought and functionCall parts,
//! finishReason, index; usageMetadata; modelVersion) and refuses anything else, so the caller
//! falls back to the `Value` reading, which stays the reference: a key of an unexpected type
//! (`null` included), a key given twice, an `error` key, a top level that is not an object. What
//! it does not read is still parsed as `Value` parsing would (numbers, strings and their UTF-8,
//! nesting depth), so it never accepts an event the reference refuses.

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

use crate::openai::json_scan::Items;
pub(super) use crate::openai::json_scan::List;

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

use crate::typed_json::{Checked, Str};

/// Marks `bit` in `seen`; a key given twice is refused (the reference keeps the last one).
fn once<E: de::Error>(seen: &mut u8, bit: u8) -> Result<(), E> {
    if *seen & bit != 0 {
        return Err(E::custom("duplicate key"));
    }
    *seen |= bit;
    Ok(())
}

/// Implements `Deserialize` for a struct read from a JSON object, key by key: `$body` handles
/// one key (`$key`, `$map`, `$seen`, `$out` in scope) and returns whether it knew it.
macro_rules! object {
    ($ty:ident, $what:literal, |$out:ident, $key:ident, $map:ident, $seen:ident| $body:block) => {
        impl<'de> Deserialize<'de> for $ty<'de> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty<'de>;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_map<A: MapAccess<'de>>(
                        self,
                        mut $map: A,
                    ) -> Result<Self::Value, A::Error> {
                        let mut $out = $ty::default();
                        let mut $seen = 0u8;
                        while let Some(Str($key)) = $map.next_key::<Str>()? {
                            let known: bool = $body;
                            if !known {
                                $map.next_value::<Checked>()?;
                            }
                        }
                        Ok($out)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

object!(Event, "a GenerateContentResponse", |out, key, map, seen| {
    match &*key {
        "candidates" => {
            once(&mut seen, 1)?;
            out.candidates = map.next_value::<Items<Candidate>>()?.0;
            true
        }
        "usageMetadata" => {
            once(&mut seen, 2)?;
            out.usage = Some(map.next_value::<Usage>()?.0);
            true
        }
        "modelVersion" => {
            once(&mut seen, 4)?;
            out.model_version = Some(map.next_value::<Str>()?.0);
            true
        }
        // Google's error model: the reference reports it.
        "error" => return Err(de::Error::custom("error object")),
        _ => false,
    }
});

object!(Candidate, "a candidate", |out, key, map, seen| {
    match &*key {
        "index" => {
            once(&mut seen, 1)?;
            out.index = Some(map.next_value::<u64>()?);
            true
        }
        "content" => {
            once(&mut seen, 2)?;
            out.parts = map.next_value::<Content>()?.parts;
            true
        }
        "finishReason" => {
            once(&mut seen, 4)?;
            out.finish_reason = Some(map.next_value::<Str>()?.0);
            true
        }
        _ => false,
    }
});

#[derive(Default)]
struct Content<'a> {
    parts: List<Part<'a>>,
}

object!(Content, "a content object", |out, key, map, seen| {
    match &*key {
        "parts" => {
            once(&mut seen, 1)?;
            out.parts = map.next_value::<Items<Part>>()?.0;
            true
        }
        _ => false,
    }
});

object!(Part, "a part", |out, key, map, seen| {
    match &*key {
        "text" => {
            once(&mut seen, 1)?;
            out.text = Some(map.next_value::<Str>()?.0);
            true
        }
        "thought" => {
            once(&mut seen, 2)?;
            out.thought = Some(map.next_value::<bool>()?);
            true
        }
        "thoughtSignature" => {
            once(&mut seen, 4)?;
            out.thought_signature = Some(map.next_value::<Str>()?.0);
            true
        }
        "functionCall" => {
            once(&mut seen, 8)?;
            out.function_call = Some(Box::new(map.next_value::<Value>()?));
            true
        }
        _ => false,
    }
});

/// `usageMetadata` (the lifetime only fits the macro).
#[derive(Default)]
struct Usage<'a>(UsageCounts, std::marker::PhantomData<&'a ()>);

object!(Usage, "usageMetadata", |out, key, map, seen| {
    let field = match &*key {
        "promptTokenCount" => Some((1, &mut out.0.prompt)),
        "candidatesTokenCount" => Some((2, &mut out.0.candidates)),
        "thoughtsTokenCount" => Some((4, &mut out.0.thoughts)),
        "totalTokenCount" => Some((8, &mut out.0.total)),
        "cachedContentTokenCount" => Some((16, &mut out.0.cached)),
        _ => None,
    };
    match field {
        Some((bit, slot)) => {
            once(&mut seen, bit)?;
            *slot = Some(map.next_value::<u64>()?);
            true
        }
        None => false,
    }
});
