//! The translating providers' request fast path, reading side: one typed, borrowed reading of an
//! OpenAI chat request ([`ChatRequest`]) that every translating provider writes its own body
//! from, instead of parsing the client's body into a `Value`, rewriting it and serialising it.
//!
//! The reading is strict on purpose: it knows a fixed set of fields with the one JSON type each
//! usually has, and anything else (an unknown field, a duplicate key, another type, invalid
//! JSON) makes [`read`] answer `None`, so the exchange takes the full `Value` path, which stays
//! the reference for every byte and every error. Strings are borrowed from the client's body
//! unless they have escapes; numbers are `serde_json::Number`s read by the same parser as
//! `Value`'s, so writing them back gives the bytes serialising the `Value` would.
//!
//! [`ObjectOut`] is the writing side's one shared piece: a top-level object written field by
//! field, then finished with customSettings applied exactly as `custom_settings::apply` edits
//! the `Value` (a key already present keeps its place, a new one goes last).

use crate::custom_settings::{resolve_name, CustomSetting, SettingsProtocol};
use crate::json_write::{write_str, write_u64, write_value};
use crate::typed_json::Str;
use serde::de::{
    self, value::MapAccessDeserializer, Deserialize, Deserializer, MapAccess, Visitor,
};
use serde::Deserialize as DeriveDeserialize;
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

#[cfg(test)]
thread_local! {
    /// Tests: the exchange never tries the fast path (the reference it is compared with).
    pub(crate) static FULL_PATH_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Tests: requests the fast path took, to show a property test exercises it.
    pub(crate) static TAKEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether the exchange may try the fast path (always, outside tests).
pub(crate) fn enabled() -> bool {
    #[cfg(test)]
    return !FULL_PATH_ONLY.with(std::cell::Cell::get);
    #[cfg(not(test))]
    true
}

/// Counts a request the fast path took (tests only).
pub(crate) fn taken() {
    #[cfg(test)]
    TAKEN.with(|t| t.set(t.get() + 1));
}

/// Reads a client's chat request; `None` for anything the typed reading does not vouch for.
pub fn read(body: &[u8]) -> Option<ChatRequest<'_>> {
    // One UTF-8 check of the body, not one per string (agent requests have many small ones).
    crate::typed_json::read(body)
}

/// An OpenAI chat request, as far as the fast paths handle one. `None` fields were absent or
/// `null` (every translator treats `null` as absent). Read by hand rather than derived so the
/// order of the client's keys is kept ([`ChatRequest::keys`]): some translators (Gemini's
/// `generation_config`) write fields in that order.
#[derive(Default)]
pub struct ChatRequest<'a> {
    pub(crate) model: Option<Str<'a>>,
    pub(crate) messages: Option<Vec<Obj<Message<'a>>>>,
    pub(crate) stream: Option<bool>,
    pub(crate) stream_options: Option<Obj<StreamOptions>>,
    pub(crate) temperature: Option<Number>,
    pub(crate) top_p: Option<Number>,
    pub(crate) top_k: Option<Number>,
    pub(crate) max_tokens: Option<Number>,
    pub(crate) max_completion_tokens: Option<Number>,
    pub(crate) seed: Option<Number>,
    pub(crate) presence_penalty: Option<Number>,
    pub(crate) frequency_penalty: Option<Number>,
    pub(crate) n: Option<Number>,
    pub(crate) logprobs: Option<bool>,
    pub(crate) reasoning_effort: Option<Str<'a>>,
    pub(crate) stop: Option<Stop<'a>>,
    pub(crate) user: Option<Str<'a>>,
    pub(crate) safety_identifier: Option<Str<'a>>,
    pub(crate) tools: Option<Vec<Obj<Tool<'a>>>>,
    /// Small and of many shapes: read as a `Value`, for the translators' `Value` helpers.
    pub(crate) tool_choice: Option<Value>,
    pub(crate) parallel_tool_calls: Option<bool>,
    /// Like `tool_choice`: a `Value` (its schema is copied as the full path copies it).
    pub(crate) response_format: Option<Value>,
    /// The keys present, in the client's order (each once: a duplicate is refused).
    order: [Option<Key>; KEY_COUNT],
    /// [`EXTRA_KEYS`]' values, by index (`None` when absent or `null`); boxed, and only made
    /// when one is sent, so requests without any do not carry them.
    extra: Option<Box<[Option<Canon>; EXTRA_KEYS.len()]>>,
    /// Bit `i`: [`EXTRA_KEYS`]`[i]` was sent (even as `null`).
    extra_sent: u8,
}

/// DashScope's own parameters, which clients put in the OpenAI body and the Qwen translator
/// passes through: read as [`Canon`] so a request with them stays typed for it. Only providers
/// whose `chat_fast_extras` says so see a request with any (`ChatRequest::has_extras`); the
/// others leave it to the full path, as when these keys were unknown here.
pub const EXTRA_KEYS: [&str; 7] = [
    "repetition_penalty",
    "enable_thinking",
    "thinking_budget",
    "enable_search",
    "search_options",
    "vl_high_resolution_images",
    "translation_options",
];

/// The top-level keys [`ChatRequest`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Model,
    Messages,
    Stream,
    StreamOptions,
    Temperature,
    TopP,
    TopK,
    MaxTokens,
    MaxCompletionTokens,
    Seed,
    PresencePenalty,
    FrequencyPenalty,
    N,
    Logprobs,
    ReasoningEffort,
    Stop,
    User,
    SafetyIdentifier,
    Tools,
    ToolChoice,
    ParallelToolCalls,
    ResponseFormat,
}

const KEY_COUNT: usize = 22;

impl<'de: 'a, 'a> Deserialize<'de> for ChatRequest<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = ChatRequest<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a chat request object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut r = ChatRequest::default();
                let mut n = 0;
                while let Some(name) = map.next_key::<Str<'a>>()? {
                    let key = match &*name.0 {
                        "model" => Key::Model,
                        "messages" => Key::Messages,
                        "stream" => Key::Stream,
                        "stream_options" => Key::StreamOptions,
                        "temperature" => Key::Temperature,
                        "top_p" => Key::TopP,
                        "top_k" => Key::TopK,
                        "max_tokens" => Key::MaxTokens,
                        "max_completion_tokens" => Key::MaxCompletionTokens,
                        "seed" => Key::Seed,
                        "presence_penalty" => Key::PresencePenalty,
                        "frequency_penalty" => Key::FrequencyPenalty,
                        "n" => Key::N,
                        "logprobs" => Key::Logprobs,
                        "reasoning_effort" => Key::ReasoningEffort,
                        "stop" => Key::Stop,
                        "user" => Key::User,
                        "safety_identifier" => Key::SafetyIdentifier,
                        "tools" => Key::Tools,
                        "tool_choice" => Key::ToolChoice,
                        "parallel_tool_calls" => Key::ParallelToolCalls,
                        "response_format" => Key::ResponseFormat,
                        other => {
                            r.read_extra(other, &mut map)?;
                            continue;
                        }
                    };
                    if r.order[..n].contains(&Some(key)) {
                        return Err(de::Error::custom("duplicate key"));
                    }
                    r.order[n] = Some(key);
                    n += 1;
                    match key {
                        Key::Model => r.model = map.next_value()?,
                        Key::Messages => r.messages = map.next_value()?,
                        Key::Stream => r.stream = map.next_value()?,
                        Key::StreamOptions => r.stream_options = map.next_value()?,
                        Key::Temperature => r.temperature = map.next_value()?,
                        Key::TopP => r.top_p = map.next_value()?,
                        Key::TopK => r.top_k = map.next_value()?,
                        Key::MaxTokens => r.max_tokens = map.next_value()?,
                        Key::MaxCompletionTokens => r.max_completion_tokens = map.next_value()?,
                        Key::Seed => r.seed = map.next_value()?,
                        Key::PresencePenalty => r.presence_penalty = map.next_value()?,
                        Key::FrequencyPenalty => r.frequency_penalty = map.next_value()?,
                        Key::N => r.n = map.next_value()?,
                        Key::Logprobs => r.logprobs = map.next_value()?,
                        Key::ReasoningEffort => r.reasoning_effort = map.next_value()?,
                        Key::Stop => r.stop = map.next_value()?,
                        Key::User => r.user = map.next_value()?,
                        Key::SafetyIdentifier => r.safety_identifier = map.next_value()?,
                        Key::Tools => r.tools = map.next_value()?,
                        Key::ToolChoice => r.tool_choice = map.next_value()?,
                        Key::ParallelToolCalls => r.parallel_tool_calls = map.next_value()?,
                        Key::ResponseFormat => r.response_format = map.next_value()?,
                    }
                }
                Ok(r)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

impl<'a> ChatRequest<'a> {
    /// Reads the value of a key outside [`Key`]: one of [`EXTRA_KEYS`], else an error. Out of
    /// line and cold, so the common request's reading stays as compact as it was.
    #[cold]
    #[inline(never)]
    fn read_extra<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        let Some(i) = EXTRA_KEYS.iter().position(|k| *k == key) else {
            return Err(de::Error::unknown_field(key, &[]));
        };
        if self.extra_sent & (1 << i) != 0 {
            return Err(de::Error::custom("duplicate key"));
        }
        self.extra_sent |= 1 << i;
        self.extra.get_or_insert_with(Box::default)[i] = map.next_value()?;
        Ok(())
    }

    /// Each of `tools` as a function definition `map` reads (with its `type`, when given): the
    /// list of what it gives, empty without tools, `None` when any answer is `None`.
    pub fn map_functions<'r, T>(
        &'r self,
        mut map: impl FnMut(Option<&'r str>, &'r FunctionDef<'a>) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Some(tools) = &self.tools else {
            return Some(Vec::new());
        };
        tools
            .iter()
            .map(|t| map(t.0.kind.as_ref().map(|k| &*k.0), &t.0.function.as_ref()?.0))
            .collect()
    }

    /// The client's `model` ("" when absent or null), as the exchange records it.
    pub fn model(&self) -> &str {
        self.model.as_ref().map_or("", |m| &m.0)
    }

    /// The keys the client sent, in its order.
    pub fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.order.iter().map_while(|k| *k)
    }

    /// The keys left, in order, once a `serde_json::Map` of this request had `removed` taken
    /// out one after another: with `preserve_order`, `Map::remove` is a swap-remove (the last
    /// key moves into the hole), so translators that iterate the map after removing keys see
    /// this order, not the client's.
    pub fn keys_after_removing(&self, removed: &[Key]) -> Vec<Key> {
        let mut keys: Vec<Key> = self.keys().collect();
        for k in removed {
            if let Some(i) = keys.iter().position(|x| x == k) {
                keys.swap_remove(i);
            }
        }
        keys
    }

    /// Whether any of [`EXTRA_KEYS`] was sent (`null` included).
    pub fn has_extras(&self) -> bool {
        self.extra_sent != 0
    }

    /// The value sent for `EXTRA_KEYS[i]` (`None` when absent or `null`).
    pub fn extra(&self, i: usize) -> Option<&Canon> {
        self.extra.as_ref()?[i].as_ref()
    }

    /// `stream_options.include_usage`.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.0.include_usage)
            .unwrap_or(false)
    }
}

#[derive(DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamOptions {
    pub(crate) include_usage: Option<bool>,
}

/// One message.
#[derive(DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct Message<'a> {
    #[serde(borrow)]
    pub(crate) role: Option<Str<'a>>,
    #[serde(borrow)]
    pub(crate) content: Option<Content<'a>>,
    // Read (typed) so requests with it stay on the fast path; not every provider uses it.
    #[allow(dead_code)]
    #[serde(borrow)]
    pub(crate) name: Option<Str<'a>>,
    #[serde(borrow)]
    pub(crate) tool_calls: Option<Vec<Obj<ToolCall<'a>>>>,
    #[serde(borrow)]
    pub(crate) tool_call_id: Option<Str<'a>>,
}

impl Message<'_> {
    pub fn role(&self) -> &str {
        self.role.as_ref().map_or("", |r| &r.0)
    }
}

/// A message's `content`: a string or an array of parts.
pub enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Obj<Part<'a>>>),
}

/// One content part. `kind` is its `type`.
#[derive(DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct Part<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Option<Str<'a>>,
    #[serde(borrow)]
    pub(crate) text: Option<Str<'a>>,
    #[serde(borrow)]
    pub(crate) refusal: Option<Str<'a>>,
    #[serde(borrow)]
    pub(crate) image_url: Option<ImageUrl<'a>>,
    pub(crate) cache_control: Option<Value>,
}

impl Part<'_> {
    pub fn kind(&self) -> &str {
        self.kind.as_ref().map_or("", |k| &k.0)
    }
}

/// `image_url`: a string, or `{"url", "detail"}`. `url` is `None` when the object has none.
pub struct ImageUrl<'a> {
    pub(crate) url: Option<Cow<'a, str>>,
    // Read (typed) so requests with it stay on the fast path; not every provider uses it.
    #[allow(dead_code)]
    pub(crate) detail: Option<Cow<'a, str>>,
}

#[derive(DeriveDeserialize)]
#[serde(deny_unknown_fields)]
struct ImageUrlObject<'a> {
    #[serde(borrow)]
    url: Option<Str<'a>>,
    #[serde(borrow)]
    detail: Option<Str<'a>>,
}

/// The keys a small object was sent with, in the client's order (`null` ones included), as
/// indices into its reader's list of names; each at most once.
#[derive(Default, Clone, Copy)]
pub struct KeyOrder {
    keys: [u8; 4],
    len: u8,
    names: &'static [&'static str],
}

impl KeyOrder {
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.keys[..usize::from(self.len)]
            .iter()
            .map(|&k| usize::from(k))
    }
}

/// Walks an object whose keys are all among `names` (at most 4; another key, or one given twice,
/// is an error: the `Value` reading would keep it, or keep the last), `on` reading the value of
/// key `i`; answers the order the keys came in.
fn ordered_fields<'de, A: MapAccess<'de>>(
    map: &mut A,
    names: &'static [&'static str],
    mut on: impl FnMut(usize, &mut A) -> Result<(), A::Error>,
) -> Result<KeyOrder, A::Error> {
    let mut order = KeyOrder {
        names,
        ..KeyOrder::default()
    };
    while let Some(key) = map.next_key::<Str<'de>>()? {
        let Some(i) = names.iter().position(|n| *n == key.0) else {
            return Err(de::Error::unknown_field(&key.0, &[]));
        };
        let i = i as u8;
        if order.keys[..usize::from(order.len)].contains(&i) {
            return Err(de::Error::custom("duplicate key"));
        }
        order.keys[usize::from(order.len)] = i;
        order.len += 1;
        on(usize::from(i), map)?;
    }
    Ok(order)
}

/// `Deserialize` for a borrowed struct read from an object with [`ordered_fields`]: the JSON
/// names and the fields they go to, in the order [`KeyOrder`] indices count them.
macro_rules! ordered_object {
    ($ty:ident, $expecting:literal, { $($name:literal => $field:ident),+ $(,)? }) => {
        impl<'de: 'a, 'a> Deserialize<'de> for $ty<'a> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V<'a>(PhantomData<&'a ()>);
                impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
                    type Value = $ty<'a>;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                        const NAMES: &[&str] = &[$($name),+];
                        let mut out = $ty::default();
                        let order = ordered_fields(&mut map, NAMES, |i, map| {
                            match NAMES[i] {
                                $($name => out.$field = map.next_value()?,)+
                                _ => unreachable!("a name of NAMES"),
                            }
                            Ok(())
                        })?;
                        out.order = order;
                        Ok(out)
                    }
                }
                d.deserialize_map(V(PhantomData))
            }
        }
    };
}
/// One assistant tool call. Tool calls and tools keep their keys' order ([`KeyOrder`]): Qwen
/// passes them through, as the `Value` path serialises them.
#[derive(Default)]
pub struct ToolCall<'a> {
    pub(crate) id: Option<Str<'a>>,
    pub(crate) kind: Option<Str<'a>>,
    pub(crate) function: Option<Obj<FunctionCall<'a>>>,
    pub(crate) order: KeyOrder,
}

ordered_object!(ToolCall, "a tool call", {"id" => id, "type" => kind, "function" => function});

#[derive(Default)]
pub struct FunctionCall<'a> {
    pub(crate) name: Option<Str<'a>>,
    /// Usually a string of JSON; some clients send the object itself.
    pub(crate) arguments: Option<Arguments<'a>>,
    pub(crate) order: KeyOrder,
}

/// A tool call's `arguments`: a string, or any other value as [`Canon`].
pub enum Arguments<'a> {
    Str(Cow<'a, str>),
    Json(Canon),
}

impl Arguments<'_> {
    /// The arguments object as Claude's `input` and Gemini's `args` take it (as their `Value`
    /// paths build it): none or a blank string is `{}`, a string is parsed and must hold an
    /// object, an object is itself. `None` for anything else, and for a string the `Value`
    /// reading might take differently (duplicate keys).
    pub fn object(args: Option<&Self>) -> Option<Cow<'_, [u8]>> {
        match args {
            None => Some(Cow::Borrowed(b"{}")),
            Some(Arguments::Str(s)) if s.trim().is_empty() => Some(Cow::Borrowed(b"{}")),
            Some(Arguments::Str(s)) => {
                let c = serde_json::from_str::<Canon>(s).ok()?;
                c.shape.object.then_some(Cow::Owned(c.bytes))
            }
            Some(Arguments::Json(c)) => c.shape.object.then_some(Cow::Borrowed(&c.bytes[..])),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Arguments<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Arguments<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Arguments::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Arguments::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                canon(|t| t.visit_bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                canon(|t| t.visit_i64(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                canon(|t| t.visit_u64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                canon(|t| t.visit_f64(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                canon(|t| t.visit_unit())
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                canon(|t| t.visit_seq(seq))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                canon(|t| t.visit_map(map))
            }
        }
        fn canon<'a, E>(
            f: impl FnOnce(Transcode<'_>) -> Result<Shape, E>,
        ) -> Result<Arguments<'a>, E> {
            let mut bytes = Vec::new();
            let shape = f(Transcode {
                out: &mut bytes,
                top: true,
            })?;
            Ok(Arguments::Json(Canon { bytes, shape }))
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Any JSON value, kept as the bytes serialising its `serde_json::Value` would give, without
/// building the `Value` (tool schemas are most of an agent request). An object with a key given
/// twice is refused: the `Value` reading keeps the last value in the first one's place.
pub struct Canon {
    pub(crate) bytes: Vec<u8>,
    pub(crate) shape: Shape,
}

/// What a [`Canon`] value is, as far as the translators ask.
#[derive(Default, Clone, Copy)]
pub struct Shape {
    pub(crate) object: bool,
    /// An object with a non-empty object under `properties` (a JSON schema with arguments).
    pub(crate) properties: bool,
    nonempty: bool,
}

impl<'de> Deserialize<'de> for Canon {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Room for a small tool schema without growing.
        let mut bytes = Vec::with_capacity(256);
        let top = Transcode {
            out: &mut bytes,
            top: true,
        };
        let shape = de::DeserializeSeed::deserialize(top, d)?;
        Ok(Canon { bytes, shape })
    }
}

/// Writes the value it reads as `json_write::write_value` writes the `Value` serde_json would
/// read (numbers as `Number`s, `null` for a float `Value` cannot hold), and says its [`Shape`].
struct Transcode<'o> {
    out: &'o mut Vec<u8>,
    /// The outermost value (where `properties` is looked at).
    top: bool,
}

impl<'de> de::DeserializeSeed<'de> for Transcode<'_> {
    type Value = Shape;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Transcode<'_> {
    type Value = Shape;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Shape, E> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(Shape::default())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Shape, E> {
        if v < 0 {
            self.out.push(b'-');
        }
        write_u64(self.out, v.unsigned_abs());
        Ok(Shape::default())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Shape, E> {
        write_u64(self.out, v);
        Ok(Shape::default())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Shape, E> {
        match Number::from_f64(v) {
            Some(n) => write_number(self.out, &n),
            None => self.out.extend_from_slice(b"null"),
        }
        Ok(Shape::default())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Shape, E> {
        write_str(self.out, v);
        Ok(Shape::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        self.out.extend_from_slice(b"null");
        Ok(Shape::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<Shape, E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        de::DeserializeSeed::deserialize(self, d)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        self.out.push(b'[');
        let mut n = 0;
        loop {
            let at = self.out.len();
            if n > 0 {
                self.out.push(b',');
            }
            let item = Transcode {
                out: &mut *self.out,
                top: false,
            };
            if seq.next_element_seed(item)?.is_none() {
                self.out.truncate(at);
                break;
            }
            n += 1;
        }
        self.out.push(b']');
        Ok(Shape {
            nonempty: n > 0,
            ..Shape::default()
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut shape = Shape {
            object: true,
            ..Shape::default()
        };
        // The written keys (their escaped bytes: escaping is one-to-one), to refuse a repeat;
        // the first few without allocating.
        let mut few = [(0usize, 0usize); 8];
        let mut more: Vec<(usize, usize)> = Vec::new();
        let mut n = 0;
        self.out.push(b'{');
        while let Some(key) = map.next_key::<Str<'de>>()? {
            if shape.nonempty {
                self.out.push(b',');
            }
            shape.nonempty = true;
            let start = self.out.len();
            write_str(self.out, &key.0);
            let end = self.out.len();
            let written = &self.out[start..end];
            if few[..n.min(8)]
                .iter()
                .chain(&more)
                .any(|&(s, e)| self.out[s..e] == *written)
            {
                return Err(de::Error::custom("duplicate key"));
            }
            match few.get_mut(n) {
                Some(slot) => *slot = (start, end),
                None => more.push((start, end)),
            }
            n += 1;
            self.out.push(b':');
            let value = map.next_value_seed(Transcode {
                out: &mut *self.out,
                top: false,
            })?;
            if self.top && key.0 == "properties" {
                shape.properties = value.object && value.nonempty;
            }
        }
        self.out.push(b'}');
        Ok(shape)
    }
}

ordered_object!(FunctionCall, "a function call", {"name" => name, "arguments" => arguments});

/// One entry of `tools`.
#[derive(Default)]
pub struct Tool<'a> {
    pub(crate) kind: Option<Str<'a>>,
    pub(crate) function: Option<Obj<FunctionDef<'a>>>,
    pub(crate) order: KeyOrder,
}

ordered_object!(Tool, "a tool", {"type" => kind, "function" => function});

#[derive(Default)]
pub struct FunctionDef<'a> {
    pub(crate) name: Option<Str<'a>>,
    pub(crate) description: Option<Str<'a>>,
    pub(crate) parameters: Option<Canon>,
    pub(crate) strict: Option<bool>,
    pub(crate) order: KeyOrder,
}

ordered_object!(FunctionDef, "a function", {
    "name" => name,
    "description" => description,
    "parameters" => parameters,
    "strict" => strict,
});

/// `stop`: one string or an array of strings.
pub enum Stop<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

impl Stop<'_> {
    /// The sequences, as `openai::request::stop_sequences` lists them.
    pub fn sequences(&self) -> Vec<&str> {
        match self {
            Stop::One(s) => vec![&**s],
            Stop::Many(items) => items.iter().map(|s| &**s).collect(),
        }
    }
}

// Tools and tool calls written back as serialising their `Value` would: keys in the client's
// order, `null` ones included (Qwen passes them through).

impl ToolCall<'_> {
    pub fn write_as_sent(&self, out: &mut Vec<u8>) {
        write_ordered(out, self.order, |out, k| match k {
            0 => write_opt_str(out, self.id.as_ref()),
            1 => write_opt_str(out, self.kind.as_ref()),
            _ => match &self.function {
                Some(f) => f.0.write_as_sent(out),
                None => out.extend_from_slice(b"null"),
            },
        });
    }
}

impl FunctionCall<'_> {
    pub fn write_as_sent(&self, out: &mut Vec<u8>) {
        write_ordered(out, self.order, |out, k| match k {
            0 => write_opt_str(out, self.name.as_ref()),
            _ => match &self.arguments {
                Some(Arguments::Str(s)) => write_str(out, s),
                Some(Arguments::Json(c)) => out.extend_from_slice(&c.bytes),
                None => out.extend_from_slice(b"null"),
            },
        });
    }
}

impl Tool<'_> {
    pub fn write_as_sent(&self, out: &mut Vec<u8>) {
        write_ordered(out, self.order, |out, k| match k {
            0 => write_opt_str(out, self.kind.as_ref()),
            _ => match &self.function {
                Some(f) => f.0.write_as_sent(out),
                None => out.extend_from_slice(b"null"),
            },
        });
    }
}

impl FunctionDef<'_> {
    pub fn write_as_sent(&self, out: &mut Vec<u8>) {
        write_ordered(out, self.order, |out, k| match k {
            0 => write_opt_str(out, self.name.as_ref()),
            1 => write_opt_str(out, self.description.as_ref()),
            2 => match &self.parameters {
                Some(c) => out.extend_from_slice(&c.bytes),
                None => out.extend_from_slice(b"null"),
            },
            _ => out.extend_from_slice(match self.strict {
                Some(true) => b"true",
                Some(false) => b"false",
                None => b"null",
            }),
        });
    }
}

/// An object of the keys `order` lists, in that order, `value` writing key `k`'s value.
fn write_ordered(out: &mut Vec<u8>, order: KeyOrder, mut value: impl FnMut(&mut Vec<u8>, usize)) {
    out.push(b'{');
    for (j, k) in order.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        write_str(out, order.names[k]);
        out.push(b':');
        value(out, k);
    }
    out.push(b'}');
}

fn write_opt_str(out: &mut Vec<u8>, s: Option<&Str<'_>>) {
    match s {
        Some(s) => write_str(out, &s.0),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON object read into a derived `T`, refusing the array form serde also takes for structs
/// (the full path says "must be an object" to that).
pub struct Obj<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Content<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of parts")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(s.to_owned())))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(p) = seq.next_element()? {
                    parts.push(p);
                }
                Ok(Content::Parts(parts))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Stop<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Stop<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Stop::One(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Stop::One(Cow::Owned(s.to_owned())))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(s) = seq.next_element::<Str<'a>>()? {
                    items.push(s.0);
                }
                Ok(Stop::Many(items))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ImageUrl<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = ImageUrl<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an object")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(ImageUrl {
                    url: Some(Cow::Borrowed(s)),
                    detail: None,
                })
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(ImageUrl {
                    url: Some(Cow::Owned(s.to_owned())),
                    detail: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let o = ImageUrlObject::deserialize(MapAccessDeserializer::new(map))?;
                Ok(ImageUrl {
                    url: o.url.map(|s| s.0),
                    detail: o.detail.map(|s| s.0),
                })
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A top-level JSON object written field by field into one buffer, finished with customSettings
/// applied the way `custom_settings::apply` edits a `Value` with serde_json's `preserve_order`:
/// a setting for a key already written replaces its value in place (when it may overwrite), a
/// new key goes last. Protocols that put settings in a sub-object (`parameters`,
/// `generation_config`) give that sub-object as its own `ObjectOut`.
pub struct ObjectOut<'k> {
    buf: Vec<u8>,
    fields: Vec<(&'k str, Field<'k>)>,
}

enum Field<'k> {
    /// Bytes `start..end` of `buf`.
    Written(usize, usize),
    Setting(&'k Value),
    Object(ObjectOut<'k>),
}

impl<'k> ObjectOut<'k> {
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
            fields: Vec::with_capacity(12),
        }
    }

    /// Writes one field's value with `write`.
    pub fn field(&mut self, key: &'k str, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        write(&mut self.buf);
        self.fields
            .push((key, Field::Written(start, self.buf.len())));
    }

    /// A field whose value is a sub-object (settings may go into it; see [`ObjectOut::finish`]).
    pub fn object(&mut self, key: &'k str, obj: ObjectOut<'k>) {
        self.fields.push((key, Field::Object(obj)));
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Removes `key` as `serde_json::Map::remove` does under `preserve_order` (a swap remove:
    /// the last field takes its place), so the order matches a `Value` edited that way.
    pub fn swap_remove(&mut self, key: &str) {
        if let Some(i) = self.fields.iter().position(|(k, _)| *k == key) {
            self.fields.swap_remove(i);
        }
    }

    /// Applies `settings` under `protocol` and writes the object out.
    pub fn finish(mut self, settings: &'k [CustomSetting], protocol: SettingsProtocol) -> Vec<u8> {
        for setting in settings {
            let Some(name) = resolve_name(setting, protocol) else {
                continue;
            };
            let target = match protocol.subpath() {
                None => &mut self,
                Some(sub) => {
                    let i = match self.fields.iter().position(|(k, _)| *k == sub) {
                        Some(i) => i,
                        None => {
                            self.fields
                                .push((sub, Field::Object(ObjectOut::with_capacity(0))));
                            self.fields.len() - 1
                        }
                    };
                    // A sub-path slot that is not an object becomes an empty one.
                    if !matches!(self.fields[i].1, Field::Object(_)) {
                        self.fields[i].1 = Field::Object(ObjectOut::with_capacity(0));
                    }
                    match &mut self.fields[i].1 {
                        Field::Object(o) => o,
                        _ => unreachable!("just made an object"),
                    }
                }
            };
            match target.fields.iter().position(|(k, _)| *k == name) {
                Some(i) if setting.overwrite => target.fields[i].1 = Field::Setting(&setting.value),
                Some(_) => {}
                None => target.fields.push((name, Field::Setting(&setting.value))),
            }
        }
        let mut out = Vec::with_capacity(self.buf.len() + 16 * self.fields.len() + 64);
        self.write_to(&mut out);
        out
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (key, field)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, key);
            out.push(b':');
            match field {
                Field::Written(s, e) => out.extend_from_slice(&self.buf[*s..*e]),
                Field::Setting(v) => write_value(out, v),
                Field::Object(o) => o.write_to(out),
            }
        }
        out.push(b'}');
    }
}

/// Writes a JSON number as serialising its `Value` would.
pub fn write_number(out: &mut Vec<u8>, n: &Number) {
    serde_json::to_writer(&mut *out, n).expect("serialising to a Vec cannot fail");
}

#[cfg(test)]
#[path = "chat_read_tests.rs"]
mod tests;
