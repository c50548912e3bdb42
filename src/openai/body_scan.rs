//! The body fast paths of the OpenAI family, next to [`super::chunk_scan`]'s for stream events:
//! - [`splice_request`]: a client's chat or embeddings request that the provider sends as it is
//!   except for `model` and customSettings, copied with those spliced in, instead of parsed into a
//!   `Value`, edited and serialised;
//! - [`scan_completion`]: a buffered chat completion that `normalize_completion` would change
//!   only where this scan can (a missing `object`, `refusal`, ..., usage in OpenAI's form),
//!   copied with those changes instead of parsed, normalised and serialised.
//!
//! Both are written with [`crate::json_write::Copier`], whose output is byte for byte what
//! serialising serde_json's parse gives, and both answer `None` ("take the full path") for
//! anything they cannot vouch for: every error, and every edit they do not make themselves. The
//! full path stays the reference; the tests below check that the two agree on many generated
//! and mutated inputs.

use super::FINISH_REASONS;
use crate::custom_settings::{self, CustomSetting, SettingsProtocol};
use crate::json_write::{write_str, write_u64, write_value, Copier};
use crate::model_mapping::ModelMapping;
use crate::providers::Api;
use crate::usage::Usage;

/// What a provider allows the request fast path to do (see `Provider::request_splice`).
#[derive(Debug, Clone, Copy)]
pub struct SpliceRules {
    /// The customSettings column.
    pub protocol: SettingsProtocol,
    /// Top-level request keys the provider rewrites itself: their presence takes the full path.
    pub blockers: &'static [&'static str],
}

/// A request the fast path took: the upstream body, and what the exchange records from it.
#[derive(Debug)]
pub struct SplicedRequest<'a> {
    pub body: Vec<u8>,
    /// The client's `model` ("" when absent or null).
    pub requested: &'a str,
    /// The model sent upstream (after `modelMapping`).
    pub sent: &'a str,
    pub stream: bool,
    pub include_usage: bool,
    pub embeddings_base64: bool,
}

/// Keys the splice reads itself: a customSetting with one of these names takes the full path.
const READ_KEYS: &[&str] = &[
    "model",
    "messages",
    "input",
    "encoding_format",
    "stream",
    "stream_options",
];

#[cfg(test)]
thread_local! {
    /// Tests: every body takes the full path (the reference the fast paths are compared with).
    pub(crate) static FULL_PATH_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn full_path_only() -> bool {
    #[cfg(test)]
    return FULL_PATH_ONLY.with(std::cell::Cell::get);
    #[cfg(not(test))]
    false
}

/// Most customSettings the splice handles (more take the full path).
const MAX_SETTINGS: usize = 8;

/// The upstream body for an OpenAI-family provider whose `translate_request` only sets `model`
/// (the mapped one) on a body without `rules.blockers`, followed by `custom_settings::apply`
/// (chat only; `settings` is empty for embeddings): the same bytes as parsing the request,
/// making those edits and serialising with `json_write`. `None` for anything else, including
/// every request the full path refuses.
pub fn splice_request<'a>(
    body: &'a [u8],
    api: Api,
    mapping: &'a ModelMapping,
    settings: &[CustomSetting],
    rules: &SpliceRules,
) -> Option<SplicedRequest<'a>> {
    if full_path_only() || rules.protocol.subpath().is_some() || settings.len() > MAX_SETTINGS {
        return None;
    }
    // Each setting's field name; two settings on one field, or one on a field read here, take
    // the full path (their order of application matters there).
    let mut names: [&str; MAX_SETTINGS] = [""; MAX_SETTINGS];
    let mut active = 0u32;
    for (k, s) in settings.iter().enumerate() {
        if let Some(name) = custom_settings::resolve_name(s, rules.protocol) {
            if READ_KEYS.contains(&name)
                || rules.blockers.contains(&name)
                || names[..k].contains(&name)
            {
                return None;
            }
            names[k] = name;
            active |= 1 << k;
        }
    }
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut c = Copier::new(body, &mut out)?;
    let mut obj = c.begin_object()?;
    let mut requested = None;
    let mut sent_model = "";
    let mut required = false;
    let mut stream = false;
    let mut include_usage = false;
    let mut embeddings_base64 = false;
    let mut present = 0u32;
    while let Some(key) = c.key(&mut obj)? {
        if rules.blockers.iter().any(|b| b.as_bytes() == key) {
            return None;
        }
        match key {
            b"model" => {
                let model = match c.peek()? {
                    b'n' => {
                        c.skip()?;
                        ""
                    }
                    b'"' => {
                        let mark = c.out().len();
                        let s = c.string()?;
                        c.out().truncate(mark);
                        s.plain()?
                    }
                    // "'model' must be a string": the full path says so.
                    _ => return None,
                };
                let sent = mapping.map(model);
                if sent.is_empty() {
                    return None;
                }
                write_str(c.out(), sent);
                requested = Some(model);
                sent_model = sent;
            }
            b"messages" if api == Api::ChatCompletions => {
                if c.peek()? != b'[' {
                    return None;
                }
                c.value()?;
                required = true;
            }
            b"input" if api == Api::Embeddings => {
                if !matches!(c.peek()?, b'"' | b'[') {
                    return None;
                }
                c.value()?;
                required = true;
            }
            b"encoding_format" if api == Api::Embeddings => match c.peek()? {
                b'n' => c.value()?,
                b'"' => match c.string()?.raw {
                    b"float" => {}
                    b"base64" => embeddings_base64 = true,
                    _ => return None,
                },
                _ => return None,
            },
            b"stream" => {
                stream = c.peek()? == b't';
                c.value()?;
            }
            b"stream_options" if c.peek()? == b'{' => {
                let mut opts = c.begin_object()?;
                while let Some(k) = c.key(&mut opts)? {
                    if k == b"include_usage" {
                        include_usage = c.peek()? == b't';
                    }
                    c.value()?;
                }
                c.end_object(opts);
            }
            _ => match names[..settings.len()]
                .iter()
                .position(|n| n.as_bytes() == key)
            {
                Some(k) if active & (1 << k) != 0 => {
                    present |= 1 << k;
                    if settings[k].overwrite {
                        c.skip()?;
                        write_value(c.out(), &settings[k].value);
                    } else {
                        c.value()?;
                    }
                }
                _ => c.value()?,
            },
        }
    }
    if !required {
        return None;
    }
    if requested.is_none() {
        // No `model`: the mapping may still name one (`*`); it goes last, as `insert` puts it.
        let sent = mapping.map("");
        if sent.is_empty() {
            return None;
        }
        c.append_key(&mut obj, "model");
        write_str(c.out(), sent);
        sent_model = sent;
    }
    for (k, s) in settings.iter().enumerate() {
        if active & (1 << k) != 0 && present & (1 << k) == 0 {
            c.append_key(&mut obj, names[k]);
            write_value(c.out(), &s.value);
        }
    }
    c.end_object(obj);
    c.finish()?;
    Some(SplicedRequest {
        body: out,
        requested: requested.unwrap_or(""),
        sent: sent_model,
        stream: stream && api == Api::ChatCompletions,
        include_usage,
        embeddings_base64,
    })
}

/// Writes a buffered chat completion into `out` as `CompatTranslator::on_body` would (parse,
/// `normalize_completion`, `apply_reasoning_mode`, serialise), when the reply is in OpenAI's
/// shape but for what this scan fills in itself: a missing `object`, `created` or `model`
/// (appended, like `insert` does), a missing `index`, `finish_reason` (`stop`) or `logprobs` of
/// a choice, a missing `role`, `content` or `refusal` of a message, and usage rewritten in
/// OpenAI's form. Returns the usage found. `None` (with `out` as it was) for anything else:
/// errors in the body, usage elsewhere than at the top, content blocks, reasoning text to
/// rewrite, missing ids, finish reasons to map, `null`s to drop, ...
pub fn scan_completion(
    body: &[u8],
    model: &str,
    rewrite_reasoning: bool,
    out: &mut Vec<u8>,
) -> Option<Option<Usage>> {
    if full_path_only() {
        return None;
    }
    let mark = out.len();
    let got = completion(body, model, rewrite_reasoning, out);
    if got.is_none() {
        out.truncate(mark);
    }
    got
}

const T_ID: u8 = 1;
const T_OBJECT: u8 = 1 << 1;
const T_CREATED: u8 = 1 << 2;
const T_MODEL: u8 = 1 << 3;
const T_CHOICES: u8 = 1 << 4;

fn completion(
    body: &[u8],
    model: &str,
    rewrite_reasoning: bool,
    out: &mut Vec<u8>,
) -> Option<Option<Usage>> {
    out.reserve(body.len() + 64);
    let mut c = Copier::new(body, out)?;
    let mut obj = c.begin_object()?;
    let mut seen = 0u8;
    let mut usage = None;
    while let Some(key) = c.key(&mut obj)? {
        match key {
            b"id" => {
                // Missing or empty: a new random id (full path).
                if c.string()?.raw.is_empty() {
                    return None;
                }
                seen |= T_ID;
            }
            b"object" => {
                c.skip()?;
                c.out().extend_from_slice(b"\"chat.completion\"");
                seen |= T_OBJECT;
            }
            b"created" => {
                c.number()??;
                seen |= T_CREATED;
            }
            b"model" => {
                if c.string()?.raw.is_empty() {
                    return None;
                }
                seen |= T_MODEL;
            }
            b"system_fingerprint" => {
                if c.peek()? == b'n' {
                    return None;
                }
                c.value()?;
            }
            b"choices" => {
                let mut arr = c.begin_array()?;
                let mut i = 0;
                while c.next_item(&mut arr)? {
                    choice(&mut c, i, rewrite_reasoning)?;
                    i += 1;
                }
                if i == 0 {
                    return None;
                }
                seen |= T_CHOICES;
            }
            b"usage" => {
                let mark = c.out().len();
                usage = usage_value(&mut c)?;
                if let Some(u) = &usage {
                    c.out().truncate(mark);
                    write_usage(c.out(), u);
                }
            }
            // The translator acts on these (errors, usage elsewhere): full path.
            b"base_resp" | b"x_groq" => return None,
            _ => c.value()?,
        }
    }
    if seen & (T_ID | T_CHOICES) != T_ID | T_CHOICES {
        return None;
    }
    c.append_missing(
        &mut obj,
        seen,
        &[(T_OBJECT, "object", b"\"chat.completion\"")],
    );
    if seen & T_CREATED == 0 {
        c.append_key(&mut obj, "created");
        write_u64(c.out(), super::now_secs());
    }
    if seen & T_MODEL == 0 {
        c.append_key(&mut obj, "model");
        write_str(c.out(), model);
    }
    c.end_object(obj);
    c.finish()?;
    Some(usage)
}

const C_INDEX: u8 = 1;
const C_FINISH: u8 = 1 << 1;
const C_LOGPROBS: u8 = 1 << 2;
const C_MESSAGE: u8 = 1 << 3;

fn choice(c: &mut Copier<'_, '_>, i: usize, rewrite_reasoning: bool) -> Option<()> {
    let mut obj = c.begin_object()?;
    let mut seen = 0u8;
    while let Some(key) = c.key(&mut obj)? {
        match key {
            b"index" => {
                c.number()??;
                seen |= C_INDEX;
            }
            b"finish_reason" => {
                let r = c.string()?;
                if !FINISH_REASONS.iter().any(|f| f.as_bytes() == r.raw) {
                    return None;
                }
                seen |= C_FINISH;
            }
            b"logprobs" => {
                c.value()?;
                seen |= C_LOGPROBS;
            }
            b"message" => {
                message(c, rewrite_reasoning)?;
                seen |= C_MESSAGE;
            }
            // Removed or moved by the normalisation: full path.
            b"usage" | b"delta" => return None,
            _ => c.value()?,
        }
    }
    if seen & C_MESSAGE == 0 {
        return None;
    }
    if seen & C_INDEX == 0 {
        c.append_key(&mut obj, "index");
        write_u64(c.out(), i as u64);
    }
    c.append_missing(
        &mut obj,
        seen,
        &[
            (C_FINISH, "finish_reason", b"\"stop\""),
            (C_LOGPROBS, "logprobs", b"null"),
        ],
    );
    c.end_object(obj);
    Some(())
}

const M_ROLE: u8 = 1;
const M_CONTENT: u8 = 1 << 1;
const M_REFUSAL: u8 = 1 << 2;

fn message(c: &mut Copier<'_, '_>, rewrite_reasoning: bool) -> Option<()> {
    let mut obj = c.begin_object()?;
    let mut seen = 0u8;
    while let Some(key) = c.key(&mut obj)? {
        match key {
            b"role" => {
                c.string()?;
                seen |= M_ROLE;
            }
            b"content" | b"refusal" => {
                if c.peek()? == b'n' {
                    c.value()?;
                } else {
                    c.string()?;
                }
                seen |= if key == b"content" {
                    M_CONTENT
                } else {
                    M_REFUSAL
                };
            }
            b"reasoning_content" if rewrite_reasoning => return None,
            _ => c.value()?,
        }
    }
    c.append_missing(
        &mut obj,
        seen,
        &[
            (M_ROLE, "role", b"\"assistant\""),
            (M_CONTENT, "content", b"null"),
            (M_REFUSAL, "refusal", b"null"),
        ],
    );
    c.end_object(obj);
    Some(())
}

/// A top-level `usage` value, copied; what `Usage::from_openai` reads from it.
fn usage_value(c: &mut Copier<'_, '_>) -> Option<Option<Usage>> {
    if c.peek()? != b'{' {
        c.value()?;
        return Some(None);
    }
    let mut obj = c.begin_object()?;
    let (mut p, mut comp, mut t, mut cached, mut reasoning) = (None, None, None, None, None);
    while let Some(key) = c.key(&mut obj)? {
        match key {
            b"prompt_tokens" => p = count(c)?,
            b"completion_tokens" => comp = count(c)?,
            b"total_tokens" => t = count(c)?,
            b"prompt_tokens_details" => cached = detail(c, b"cached_tokens")?,
            b"completion_tokens_details" => reasoning = detail(c, b"reasoning_tokens")?,
            _ => c.value()?,
        }
    }
    c.end_object(obj);
    if p.is_none() && comp.is_none() && t.is_none() {
        return Some(None);
    }
    Some(Some(
        Usage::new(p.unwrap_or(0), comp.unwrap_or(0), t)
            .with_cached(cached)
            .with_reasoning(reasoning),
    ))
}

/// A value copied; its `as_u64`.
fn count(c: &mut Copier<'_, '_>) -> Option<Option<u64>> {
    match c.peek()? {
        b'-' | b'0'..=b'9' => c.number(),
        _ => c.value().map(|()| None),
    }
}

/// A details object copied; the `as_u64` of its member `inner`.
fn detail(c: &mut Copier<'_, '_>, inner: &[u8]) -> Option<Option<u64>> {
    if c.peek()? != b'{' {
        return c.value().map(|()| None);
    }
    let mut obj = c.begin_object()?;
    let mut got = None;
    while let Some(key) = c.key(&mut obj)? {
        if key == inner {
            got = count(c)?;
        } else {
            c.value()?;
        }
    }
    c.end_object(obj);
    Some(got)
}

/// `Usage::to_json` as `json_write` writes it.
pub(crate) fn write_usage(out: &mut Vec<u8>, u: &Usage) {
    out.extend_from_slice(b"{\"prompt_tokens\":");
    write_u64(out, u.prompt_tokens);
    out.extend_from_slice(b",\"completion_tokens\":");
    write_u64(out, u.completion_tokens);
    out.extend_from_slice(b",\"total_tokens\":");
    write_u64(out, u.total_tokens);
    if let Some(n) = u.cached_tokens {
        out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
        write_u64(out, n);
        out.push(b'}');
    }
    if let Some(n) = u.reasoning_tokens {
        out.extend_from_slice(b",\"completion_tokens_details\":{\"reasoning_tokens\":");
        write_u64(out, n);
        out.push(b'}');
    }
    out.push(b'}');
}

#[cfg(test)]
#[path = "body_scan_tests.rs"]
mod tests;
