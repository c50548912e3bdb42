//! Serde helpers shared by the typed (serde-derived) readings of provider replies.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Any JSON value, read the way `serde_json::Value` reads it (so the same inputs are errors:
/// numbers out of range, lone surrogate escapes, too deep nesting) but not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Checked;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_none<E: de::Error>(self) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Checked, D::Error> {
                Checked::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
                while seq.next_element::<Checked>()?.is_some() {}
                Ok(Checked)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
                while map.next_entry::<Checked, Checked>()?.is_some() {}
                Ok(Checked)
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON string, borrowed from the input unless it has escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Str<'a>(pub(crate) Cow<'a, str>);

impl Str<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

// Generic in the two lifetimes (not `Str<'de>` only) so derived structs can hold it.
impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// Walks a JSON object's keys for a typed reading: `on` reads the value of the key at position `i`
/// of `names`; any other key's value is [`Checked`]. A key of `names` given twice is an error: the
/// `Value` reading keeps the last one, and the typed reading leaves that case to it.
pub(crate) fn fields<'de, A: MapAccess<'de>>(
    map: &mut A,
    names: &[&str],
    mut on: impl FnMut(usize, &mut A) -> Result<(), A::Error>,
) -> Result<(), A::Error> {
    let mut seen = 0u32;
    while let Some(key) = map.next_key::<Str<'de>>()? {
        match names.iter().position(|n| *n == key.0) {
            Some(i) => {
                if seen & (1 << i) != 0 {
                    return Err(de::Error::custom("duplicate key"));
                }
                seen |= 1 << i;
                on(i, map)?;
            }
            None => {
                map.next_value::<Checked>()?;
            }
        }
    }
    Ok(())
}

/// Implements `Deserialize` for a type read from a JSON object only (`Name<'de>` for one that
/// borrows from the input, `Name` for one that does not): `$body` is the body of `visit_map`,
/// with the map bound to `$map` (usually walked with [`fields`]).
macro_rules! object_reader {
    ($ty:ident<$de:lifetime>, $expecting:literal, |$map:ident| $body:block) => {
        $crate::typed_json::object_reader!(@impl [$de] $ty<$de>, $expecting, |$map| $body);
    };
    ($ty:ident, $expecting:literal, |$map:ident| $body:block) => {
        $crate::typed_json::object_reader!(@impl ['de] $ty, $expecting, |$map| $body);
    };
    (@impl [$de:lifetime] $ty:ty, $expecting:literal, |$map:ident| $body:block) => {
        impl<$de> ::serde::Deserialize<$de> for $ty {
            fn deserialize<D: ::serde::Deserializer<$de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<$de> ::serde::de::Visitor<$de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: ::serde::de::MapAccess<$de>>(
                        self,
                        mut $map: A,
                    ) -> Result<Self::Value, A::Error> {
                        $body
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}
pub(crate) use object_reader;

/// `bytes` read as `T`, `None` on any error: one UTF-8 check of the whole text up front
/// (`from_slice` would check each string it decodes; outside strings non-ASCII is a syntax
/// error either way).
pub(crate) fn read<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    serde_json::from_str(std::str::from_utf8(bytes).ok()?).ok()
}
