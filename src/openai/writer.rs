//! The one OpenAI response writer. Translators parse their upstream's events and bodies and call
//! it; it owns everything OpenAI-side: the stream's identity, the role-first delta of each choice,
//! content / reasoning / tool-call deltas, finish chunks, the usage chunk, in-stream errors, and
//! the single `data: [DONE]` that ends every stream — also when the upstream stream breaks off
//! without a finish. Buffered replies go through [`OpenAiWriter::completion`], which refuses to call
//! a reply with nothing in it a success.
//!
//! State is bounded: the identity, a few flags, two 128-bit choice masks and the usage.

use super::{new_completion_id, now_secs, FINISH_REASONS};
use crate::error::ProxyError;
use crate::json_write::{needs_escape, write_array, write_str, write_u64};
use crate::sse;
use crate::usage::Usage;
use serde::Serialize;
use serde_json::{Map, Value};

/// Identity shared by every chunk of one streamed completion.
#[derive(Debug, Clone)]
pub struct StreamMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
}

impl StreamMeta {
    pub fn new(model: &str) -> Self {
        Self::with_id(model, None)
    }

    /// With the upstream's id when it gives a non-empty one (none is generated then).
    pub fn with_id(model: &str, id: Option<&str>) -> Self {
        Self {
            id: id
                .filter(|s| !s.is_empty())
                .map_or_else(new_completion_id, str::to_string),
            created: now_secs(),
            model: model.to_string(),
        }
    }
}

/// The `delta` of a chunk; `None` fields are omitted.
#[derive(Debug, Default, Serialize)]
pub struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    /// DeepSeek's and DashScope's field for reasoning text, which OpenAI-compatible clients read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<&'a [ToolCallDelta<'a>]>,
}

/// One entry of a delta's `tool_calls`: the first for a call carries `id`, `type` and the name.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct ToolCallDelta<'a> {
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: FunctionDelta<'a>,
    /// Provider data a client hands back with the call when it replays it (Gemini's thought
    /// signature, as `{"google": {"thought_signature"}}`, the way Gemini's own OpenAI layer
    /// sends it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_content: Option<&'a Value>,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub arguments: &'a str,
}

impl<'a> ToolCallDelta<'a> {
    /// The opening delta of a call: id, type, name and whatever arguments came with it.
    pub fn start(index: u32, id: &'a str, name: &'a str, arguments: &'a str) -> Self {
        Self {
            index,
            id: Some(id),
            kind: Some("function"),
            function: FunctionDelta {
                name: Some(name),
                arguments,
            },
            extra_content: None,
        }
    }

    /// The same call with provider data for the client to hand back (see `extra_content`).
    pub fn with_extra_content(mut self, extra: Option<&'a Value>) -> Self {
        self.extra_content = extra;
        self
    }

    /// A later fragment of a call's arguments.
    pub fn args(index: u32, arguments: &'a str) -> Self {
        Self {
            index,
            function: FunctionDelta {
                name: None,
                arguments,
            },
            ..Self::default()
        }
    }
}

#[cfg(test)]
#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: &'a Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct Chunk<'a, C: Serialize> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: C,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Value>,
}

/// A JSON string as `write_str` writes it, for the short texts of stream deltas: checked and
/// copied whole when nothing needs escaping (`write_str`'s word-at-a-time scan pays off on
/// longer strings).
fn write_text(out: &mut Vec<u8>, s: &str) {
    if s.len() <= 32 && !s.bytes().any(needs_escape) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        write_str(out, s);
    }
}

/// `data: ` + the `Chunk` of one choice up to and including the `{` that opens its delta.
fn write_chunk_head(out: &mut Vec<u8>, meta: &StreamMeta, index: u32) {
    out.extend_from_slice(b"data: {\"id\":");
    write_str(out, &meta.id);
    out.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
    write_u64(out, meta.created);
    out.extend_from_slice(b",\"model\":");
    write_str(out, &meta.model);
    out.extend_from_slice(b",\"choices\":[{\"index\":");
    write_u64(out, u64::from(index));
    out.extend_from_slice(b",\"delta\":{");
}

/// The rest of a chunk after its head: the delta's fields, the choice's finish reason and the
/// blank line. With the head, byte for byte what `sse::write_data` gives for the `Chunk` (a
/// test compares them).
fn write_chunk_tail(out: &mut Vec<u8>, delta: &Delta<'_>, finish_reason: Option<&str>) {
    let mut sep = false;
    for (key, value) in [
        (&b"\"role\":"[..], delta.role),
        (b"\"content\":", delta.content),
        (b"\"reasoning_content\":", delta.reasoning_content),
    ] {
        if let Some(v) = value {
            if sep {
                out.push(b',');
            }
            sep = true;
            out.extend_from_slice(key);
            write_str(out, v);
        }
    }
    if let Some(calls) = delta.tool_calls {
        if sep {
            out.push(b',');
        }
        out.extend_from_slice(b"\"tool_calls\":");
        write_array(out, calls, write_tool_call);
    }
    out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":");
    match finish_reason {
        Some(r) => write_str(out, r),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}]}\n\n");
}

/// One `ToolCallDelta` as serde_json writes it.
fn write_tool_call(out: &mut Vec<u8>, call: &ToolCallDelta<'_>) {
    out.extend_from_slice(b"{\"index\":");
    write_u64(out, u64::from(call.index));
    if let Some(id) = call.id {
        out.extend_from_slice(b",\"id\":");
        write_str(out, id);
    }
    if let Some(kind) = call.kind {
        out.extend_from_slice(b",\"type\":");
        write_str(out, kind);
    }
    out.extend_from_slice(b",\"function\":{");
    if let Some(name) = call.function.name {
        out.extend_from_slice(b"\"name\":");
        write_str(out, name);
        out.push(b',');
    }
    out.extend_from_slice(b"\"arguments\":");
    write_str(out, call.function.arguments);
    out.push(b'}');
    if let Some(extra) = call.extra_content {
        out.extend_from_slice(b",\"extra_content\":");
        crate::json_write::write_value(out, extra);
    }
    out.push(b'}');
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// An error event was written; the rest of the upstream stream is ignored.
    Failed,
    /// `[DONE]` was written.
    Done,
}

/// Choice indexes are tracked in a 128-bit mask: OpenAI's own limit for `n` is 128.
const MAX_TRACKED_CHOICES: u32 = 128;

fn bit(index: u32) -> u128 {
    if index < MAX_TRACKED_CHOICES {
        1u128 << index
    } else {
        0
    }
}

/// Writes one exchange's OpenAI output (stream or buffered) into a reused buffer.
#[derive(Debug)]
pub struct OpenAiWriter {
    out: Vec<u8>,
    /// The model named when the upstream does not say (the one sent upstream).
    model: String,
    include_usage: bool,
    meta: Option<StreamMeta>,
    /// `write_chunk_head(meta, 0)`, made once per identity: every delta of choice 0 starts with
    /// it. Empty until first needed and whenever the identity changes.
    head0: Vec<u8>,
    role_sent: u128,
    finished: u128,
    /// A finish was seen for some choice (also through raw pass-through events).
    any_finish: bool,
    usage: Option<Usage>,
    /// A chunk carrying usage already went out (forwarded from an OpenAI-family upstream).
    usage_sent: bool,
    state: State,
    /// The client asked for embeddings as base64 (little-endian float32, as OpenAI sends them).
    embeddings_base64: bool,
    /// `reasoningContentMode`: what reasoning text becomes in the output.
    reasoning_mode: ReasoningMode,
}

/// `reasoningContentMode` (as in today's Higress): reasoning text as `reasoning_content`
/// (passthrough), dropped (ignore), or put before the answer in `content` (concat).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReasoningMode {
    #[default]
    Passthrough,
    Ignore,
    Concat,
}

impl OpenAiWriter {
    pub fn new(model: &str, include_usage: bool) -> Self {
        Self {
            out: Vec::new(),
            model: model.to_string(),
            include_usage,
            meta: None,
            head0: Vec::new(),
            role_sent: 0,
            finished: 0,
            any_finish: false,
            usage: None,
            usage_sent: false,
            state: State::Open,
            embeddings_base64: false,
            reasoning_mode: ReasoningMode::Passthrough,
        }
    }

    /// Embeddings go out base64-encoded (the client sent `encoding_format: base64`).
    pub fn set_embeddings_base64(&mut self, on: bool) {
        self.embeddings_base64 = on;
    }

    pub fn set_reasoning_mode(&mut self, mode: ReasoningMode) {
        self.reasoning_mode = mode;
    }

    pub fn embeddings_base64(&self) -> bool {
        self.embeddings_base64
    }

    pub fn reasoning_mode(&self) -> ReasoningMode {
        self.reasoning_mode
    }

    /// The bytes written since the last [`OpenAiWriter::clear`].
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// The model (as [`OpenAiWriter::model`]) and the output buffer, for a buffered body a fast
    /// path writes itself (`body_scan::scan_completion`).
    pub(crate) fn model_and_output(&mut self) -> (&str, &mut Vec<u8>) {
        (&self.model, &mut self.out)
    }

    pub fn clear(&mut self) {
        self.out.clear();
    }

    /// Room for `additional` more output bytes, in one allocation rather than a series of
    /// doublings (a stream chunk's output is about its size).
    pub fn reserve(&mut self, additional: usize) {
        self.out.reserve(additional);
    }

    /// The requested model (after `modelMapping`), for replies that do not name one.
    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn include_usage(&self) -> bool {
        self.include_usage
    }

    /// Usage recorded so far.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Records usage (counts are cumulative: the last report wins).
    pub fn set_usage(&mut self, usage: Usage) {
        self.usage = Some(usage);
    }

    /// The stream has ended or failed: further upstream events are ignored.
    pub fn is_closed(&self) -> bool {
        self.state != State::Open
    }

    /// A finish reason was written (or forwarded) for at least one choice.
    pub fn finished(&self) -> bool {
        self.any_finish
    }

    // ---- streams -------------------------------------------------------------------------

    /// Fixes the stream identity from the upstream's first event (id, model) if not yet fixed.
    /// Empty values are ignored; a later, different upstream id replaces ours (Azure sends empty
    /// ids first).
    pub fn identify(&mut self, id: Option<&str>, model: Option<&str>) -> &StreamMeta {
        // The upstream's id would replace a generated one at once: none is generated.
        let ours = &self.model;
        let meta = self
            .meta
            .get_or_insert_with(|| StreamMeta::with_id(ours, id));
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            if meta.id != id {
                meta.id = id.to_string();
                self.head0.clear();
            }
        }
        if let Some(m) = model.filter(|s| !s.is_empty()) {
            if meta.model != m {
                meta.model = m.to_string();
                self.head0.clear();
            }
        }
        meta
    }

    /// Takes the upstream's `created` (Unix seconds) for the stream identity, for providers that
    /// send one; 0 is ignored.
    pub fn set_created(&mut self, created: u64) {
        if created > 0 {
            let model = &self.model;
            self.meta
                .get_or_insert_with(|| StreamMeta::new(model))
                .created = created;
            self.head0.clear();
        }
    }

    /// Opens choice `index` with OpenAI's role-first delta (`role: assistant`, empty content),
    /// unless it is open already. Content deltas open their choice themselves.
    pub fn begin(&mut self, index: u32) {
        if self.state != State::Open || self.role_sent & bit(index) != 0 {
            return;
        }
        self.role_sent |= bit(index);
        self.chunk(
            index,
            &Delta {
                role: Some("assistant"),
                content: Some(""),
                ..Delta::default()
            },
            None,
        );
    }

    /// A chunk for choice `index` with this delta. The role goes on the first delta of a choice.
    pub fn delta(&mut self, index: u32, delta: Delta<'_>) {
        if self.state != State::Open {
            return;
        }
        let mut delta = delta;
        if self.role_sent & bit(index) == 0 {
            self.role_sent |= bit(index);
            delta.role = Some("assistant");
        }
        self.chunk(index, &delta, None);
    }

    pub fn text(&mut self, index: u32, text: &str) {
        if !text.is_empty() {
            self.delta(
                index,
                Delta {
                    content: Some(text),
                    ..Delta::default()
                },
            );
        }
    }

    pub fn reasoning(&mut self, index: u32, text: &str) {
        if text.is_empty() {
            return;
        }
        match self.reasoning_mode {
            ReasoningMode::Passthrough => self.delta(
                index,
                Delta {
                    reasoning_content: Some(text),
                    ..Delta::default()
                },
            ),
            ReasoningMode::Ignore => {}
            ReasoningMode::Concat => self.text(index, text),
        }
    }

    pub fn tool_calls(&mut self, index: u32, calls: &[ToolCallDelta<'_>]) {
        if !calls.is_empty() {
            self.delta(
                index,
                Delta {
                    tool_calls: Some(calls),
                    ..Delta::default()
                },
            );
        }
    }

    /// The finish chunk of choice `index`, once per choice; `reason` must be one of OpenAI's.
    pub fn finish(&mut self, index: u32, reason: &str) {
        if self.state != State::Open || self.finished & bit(index) != 0 {
            return;
        }
        debug_assert!(FINISH_REASONS.contains(&reason), "{reason}");
        self.begin(index);
        self.finished |= bit(index);
        self.any_finish = true;
        self.chunk(index, &Delta::default(), Some(reason));
    }

    /// An event an OpenAI-family upstream sent already in OpenAI's exact shape: forwarded as it
    /// is. The caller says whether it carried a finish reason and usage.
    pub fn raw_event(&mut self, data: &[u8], has_finish: bool, usage: Option<Usage>) {
        if self.state != State::Open {
            return;
        }
        self.any_finish |= has_finish;
        if let Some(u) = usage {
            self.usage = Some(u);
            self.usage_sent = true;
        }
        self.out.extend_from_slice(b"data: ");
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(b"\n\n");
    }

    /// A chunk an OpenAI-family upstream sent, normalised to OpenAI's shape by the caller.
    pub fn json_event(&mut self, chunk: &Value) {
        if self.state != State::Open {
            return;
        }
        let choices = chunk.get("choices").and_then(Value::as_array);
        for c in choices.into_iter().flatten() {
            if c.get("finish_reason").is_some_and(Value::is_string) {
                self.any_finish = true;
            }
        }
        if let Some(u) = chunk.get("usage").and_then(Usage::from_openai) {
            self.usage = Some(u);
            self.usage_sent = true;
        }
        sse::write_data(&mut self.out, chunk);
    }

    /// Reports an error inside the stream (the openai SDKs raise on a `data:` event carrying
    /// `error`) and ends it with `[DONE]`. Later events are ignored.
    pub fn error(&mut self, err: &ProxyError) {
        if self.state != State::Open {
            return;
        }
        sse::write_data(&mut self.out, &err.to_json());
        self.state = State::Failed;
        self.done();
    }

    /// Ends the stream; safe to call more than once. A stream that ends without any finish
    /// reason is reported as an error, since the client cannot tell it from a cut-off reply.
    /// With `stream_options.include_usage`, a final usage chunk (empty `choices`) precedes
    /// `[DONE]` unless the upstream already sent one.
    pub fn end(&mut self) {
        if self.state != State::Open {
            return;
        }
        if !self.any_finish {
            self.error(&ProxyError::bad_upstream(
                "upstream stream ended without a finish reason",
            ));
            return;
        }
        if self.include_usage && !self.usage_sent {
            if let Some(u) = self.usage {
                self.usage_chunk(&u);
            }
        }
        self.done();
    }

    fn done(&mut self) {
        if self.state == State::Done {
            return;
        }
        sse::write_done(&mut self.out);
        self.state = State::Done;
    }

    fn usage_chunk(&mut self, usage: &Usage) {
        self.write_chunk([(); 0], Some(usage.to_json()));
        self.usage_sent = true;
    }

    /// The chunk of every translated stream event, written directly: the same bytes serde_json
    /// writes for `Chunk`, without its per-field serialiser calls, and for choice 0 with the
    /// identity part copied from `head0`.
    fn chunk(&mut self, index: u32, delta: &Delta<'_>, finish_reason: Option<&str>) {
        self.identify(None, None);
        let meta = self.meta.as_ref().expect("identified above");
        if index == 0 {
            if self.head0.is_empty() {
                write_chunk_head(&mut self.head0, meta, 0);
            }
            // The usual event: one text or reasoning delta, no role, no finish.
            let one_text = match (delta.content, delta.reasoning_content) {
                (Some(t), None) => Some((&b"\"content\":"[..], t)),
                (None, Some(t)) => Some((&b"\"reasoning_content\":"[..], t)),
                _ => None,
            };
            if let (Some((key, text)), None, None, None) =
                (one_text, delta.role, delta.tool_calls, finish_reason)
            {
                const TAIL: &[u8] = b"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
                let out = &mut self.out;
                out.reserve(self.head0.len() + key.len() + text.len() + 2 + TAIL.len());
                out.extend_from_slice(&self.head0);
                out.extend_from_slice(key);
                write_text(out, text);
                out.extend_from_slice(TAIL);
                return;
            }
            self.out.extend_from_slice(&self.head0);
        } else {
            write_chunk_head(&mut self.out, meta, index);
        }
        write_chunk_tail(&mut self.out, delta, finish_reason);
    }

    /// One `chat.completion.chunk` event under the stream's identity.
    fn write_chunk<C: Serialize>(&mut self, choices: C, usage: Option<Value>) {
        self.identify(None, None);
        let meta = self.meta.as_ref().expect("identified above");
        let chunk = Chunk {
            id: &meta.id,
            object: "chat.completion.chunk",
            created: meta.created,
            model: &meta.model,
            choices,
            usage,
        };
        sse::write_data(&mut self.out, &chunk);
    }

    /// What `chunk` wrote before its direct path, for the test that compares the two.
    #[cfg(test)]
    fn chunk_via_serde(&mut self, index: u32, delta: &Delta<'_>, finish_reason: Option<&str>) {
        let choice = ChunkChoice {
            index,
            delta,
            logprobs: None,
            finish_reason,
        };
        self.write_chunk([choice], None);
    }

    // ---- buffered replies ----------------------------------------------------------------

    /// A whole `chat.completion`. A reply is a success only when every choice has content, a
    /// tool call or a finish reason and there is at least one choice; otherwise it is a 502
    /// naming what is missing, so a client never takes an empty reply for an answer.
    pub fn completion(&mut self, reply: Completion) -> Result<(), ProxyError> {
        if reply.choices.is_empty() {
            return Err(ProxyError::bad_upstream("upstream reply has no choices"));
        }
        if let Some(c) = reply.choices.iter().find(|c| {
            c.content.is_none()
                && c.reasoning.is_none()
                && c.tool_calls.is_empty()
                && c.finish_reason.is_none()
        }) {
            return Err(ProxyError::bad_upstream(format!(
                "upstream reply has neither content nor a finish reason (choice {})",
                c.index
            )));
        }
        if let Some(u) = reply.usage {
            self.usage = Some(u);
        }
        self.write_completion(reply);
        Ok(())
    }

    /// The `chat.completion` body, written directly: byte for byte what `completion_via_value`
    /// (the `Value` it was built as before, kept for the test that compares them) writes.
    fn write_completion(&mut self, reply: Completion) {
        let out = &mut self.out;
        // Room for the texts (escapes aside) and the fixed fields, so the body grows once.
        let texts: usize = reply
            .choices
            .iter()
            .map(|c| {
                c.content.as_ref().map_or(0, String::len)
                    + c.reasoning.as_ref().map_or(0, String::len)
            })
            .sum();
        out.reserve(texts + 384);
        out.extend_from_slice(b"{\"id\":");
        match reply.id.filter(|s| !s.is_empty()) {
            Some(id) => write_str(out, &id),
            None => write_str(out, &new_completion_id()),
        }
        out.extend_from_slice(b",\"object\":\"chat.completion\",\"created\":");
        write_u64(out, reply.created.unwrap_or_else(now_secs));
        out.extend_from_slice(b",\"model\":");
        match reply.model.as_deref().filter(|s| !s.is_empty()) {
            Some(m) => write_str(out, m),
            None => write_str(out, &self.model),
        }
        out.extend_from_slice(b",\"choices\":[");
        for (i, c) in reply.choices.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            c.write(out, self.reasoning_mode);
        }
        out.push(b']');
        if let Some(u) = &self.usage {
            out.extend_from_slice(b",\"usage\":");
            u.write_json(out);
        }
        out.push(b'}');
    }

    /// What `completion` wrote before its direct path (after the same checks).
    #[cfg(test)]
    fn completion_via_value(&mut self, reply: Completion) {
        if let Some(u) = reply.usage {
            self.usage = Some(u);
        }
        let mode = self.reasoning_mode;
        let choices: Vec<Value> = reply
            .choices
            .into_iter()
            .map(|c| c.into_json(mode))
            .collect();
        let mut m = Map::new();
        m.insert(
            "id".into(),
            reply
                .id
                .filter(|s| !s.is_empty())
                .unwrap_or_else(new_completion_id)
                .into(),
        );
        m.insert("object".into(), "chat.completion".into());
        m.insert(
            "created".into(),
            reply.created.unwrap_or_else(now_secs).into(),
        );
        m.insert(
            "model".into(),
            reply
                .model
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| self.model.clone())
                .into(),
        );
        m.insert("choices".into(), Value::Array(choices));
        if let Some(u) = &self.usage {
            m.insert("usage".into(), u.to_json());
        }
        self.json(&Value::Object(m));
    }

    /// An OpenAI `list` of embeddings.
    pub fn embeddings(&mut self, vectors: Vec<Value>, usage: Usage) {
        self.usage = Some(usage);
        let data: Vec<Value> = vectors
            .into_iter()
            .enumerate()
            .map(|(i, v)| serde_json::json!({"object": "embedding", "index": i, "embedding": v}))
            .collect();
        let body = serde_json::json!({
            "object": "list",
            "data": data,
            "model": self.model,
            "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens},
        });
        self.json(&body);
    }

    /// An OpenAI `list` of embeddings from an upstream that reports no usage: the body says 0
    /// (OpenAI's schema requires `usage`) while [`OpenAiWriter::usage`] stays unknown.
    pub fn embeddings_without_usage(&mut self, vectors: Vec<Value>) {
        self.embeddings(vectors, Usage::default());
        self.usage = None;
    }

    /// A whole JSON body, already in OpenAI's shape. An embeddings list goes out base64-encoded
    /// when the client asked for that, whatever the upstream sent.
    pub fn json(&mut self, body: &Value) {
        if self.embeddings_base64 && body.get("object").and_then(Value::as_str) == Some("list") {
            let mut body = body.clone();
            for item in body["data"].as_array_mut().into_iter().flatten() {
                if let Some(b64) = item.get("embedding").and_then(embedding_base64) {
                    item["embedding"] = Value::String(b64);
                }
            }
            crate::json_write::write_value(&mut self.out, &body);
            return;
        }
        crate::json_write::write_value(&mut self.out, body);
    }
}

/// Applies `reasoningContentMode` to an OpenAI-shaped message or delta that carries
/// `reasoning_content` (OpenAI-family upstreams such as DeepSeek send it themselves).
pub fn apply_reasoning_mode(msg: &mut Map<String, Value>, mode: ReasoningMode) {
    if mode == ReasoningMode::Passthrough {
        return;
    }
    let Some(Value::String(r)) = msg.remove("reasoning_content") else {
        return;
    };
    if mode == ReasoningMode::Concat && !r.is_empty() {
        let content = match msg.get("content").and_then(Value::as_str) {
            Some(c) if !c.is_empty() => format!("{r}\n\n{c}"),
            _ => r,
        };
        msg.insert("content".into(), content.into());
    }
}

/// A float vector as OpenAI's base64 form: the little-endian float32 bytes, base64-encoded.
/// `None` when it is not an array of numbers (already base64, say).
pub fn embedding_base64(v: &Value) -> Option<String> {
    use base64::Engine;
    let items = v.as_array()?;
    let mut bytes = Vec::with_capacity(items.len() * 4);
    for x in items {
        bytes.extend_from_slice(&(x.as_f64()? as f32).to_le_bytes());
    }
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A buffered chat completion as a translator reads it from its upstream.
#[derive(Debug, Default)]
pub struct Completion {
    pub id: Option<String>,
    pub created: Option<u64>,
    /// The model the upstream names; the requested one when `None`.
    pub model: Option<String>,
    pub choices: Vec<Choice>,
    pub usage: Option<Usage>,
}

/// One choice of a buffered completion.
#[derive(Debug, Default)]
pub struct Choice {
    pub index: u32,
    pub content: Option<String>,
    pub reasoning: Option<String>,
    /// Whole calls: `{"id", "type": "function", "function": {"name", "arguments"}}`.
    pub tool_calls: Vec<Value>,
    /// One of OpenAI's finish reasons.
    pub finish_reason: Option<&'static str>,
    /// The message's `name` (DeepL: the detected source language).
    pub name: Option<String>,
}

impl Choice {
    /// `reasoningContentMode` applied to the reasoning and the answer.
    fn apply_mode(&mut self, mode: ReasoningMode) {
        match mode {
            ReasoningMode::Passthrough => {}
            ReasoningMode::Ignore => self.reasoning = None,
            ReasoningMode::Concat => {
                if let Some(r) = self.reasoning.take() {
                    let answer = self.content.take().unwrap_or_default();
                    self.content = Some(format!("{r}\n\n{answer}"));
                }
            }
        }
    }

    /// The choice as `into_json` gives it, written directly.
    fn write(mut self, out: &mut Vec<u8>, mode: ReasoningMode) {
        self.apply_mode(mode);
        out.extend_from_slice(b"{\"index\":");
        write_u64(out, u64::from(self.index));
        out.extend_from_slice(b",\"message\":{\"role\":\"assistant\",\"content\":");
        // A reply made only of tool calls has null content, as OpenAI's has.
        match (&self.content, self.tool_calls.is_empty()) {
            (Some(c), _) => write_str(out, c),
            (None, true) => out.extend_from_slice(b"\"\""),
            (None, false) => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"refusal\":null");
        if let Some(r) = &self.reasoning {
            out.extend_from_slice(b",\"reasoning_content\":");
            write_str(out, r);
        }
        if let Some(n) = &self.name {
            out.extend_from_slice(b",\"name\":");
            write_str(out, n);
        }
        if !self.tool_calls.is_empty() {
            out.extend_from_slice(b",\"tool_calls\":");
            crate::json_write::write_value(out, &Value::Array(self.tool_calls));
        }
        out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":");
        write_str(out, self.finish_reason.unwrap_or("stop"));
        out.push(b'}');
    }

    #[cfg(test)]
    fn into_json(mut self, mode: ReasoningMode) -> Value {
        self.apply_mode(mode);
        let mut msg = Map::new();
        msg.insert("role".into(), "assistant".into());
        // A reply made only of tool calls has null content, as OpenAI's has.
        let content = match self.content {
            None if self.tool_calls.is_empty() => Some(String::new()),
            other => other,
        };
        msg.insert("content".into(), content.map_or(Value::Null, Value::String));
        msg.insert("refusal".into(), Value::Null);
        if let Some(r) = self.reasoning {
            msg.insert("reasoning_content".into(), r.into());
        }
        if let Some(n) = self.name {
            msg.insert("name".into(), n.into());
        }
        if !self.tool_calls.is_empty() {
            msg.insert("tool_calls".into(), Value::Array(self.tool_calls));
        }
        serde_json::json!({
            "index": self.index,
            "message": msg,
            "logprobs": null,
            "finish_reason": self.finish_reason.unwrap_or("stop"),
        })
    }
}

/// A whole tool call of a buffered reply.
pub fn tool_call(id: &str, name: &str, arguments: String) -> Value {
    serde_json::json!({
        "id": id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events(out: &[u8]) -> Vec<String> {
        std::str::from_utf8(out)
            .unwrap()
            .split("\n\n")
            .filter(|s| !s.is_empty())
            .map(|s| s.strip_prefix("data: ").unwrap().to_string())
            .collect()
    }

    fn writer(include_usage: bool) -> OpenAiWriter {
        let mut w = OpenAiWriter::new("m", include_usage);
        w.meta = Some(StreamMeta {
            id: "chatcmpl-1".into(),
            created: 5,
            model: "m".into(),
        });
        w
    }

    /// The hand-written text chunk is byte for byte what serde_json writes for `Chunk`.
    #[test]
    fn text_chunks_are_serde_json_bytes() {
        let texts = [
            "",
            "plain",
            "q\"uo\\te",
            "ctl\n\t\r\u{1}\u{1f}",
            "é中😀",
            "</script>",
        ];
        for (i, t) in texts.iter().enumerate() {
            for reason in [None, Some("stop"), Some("le\"ngth")] {
                let deltas = [
                    Delta::default(),
                    Delta {
                        role: Some("assistant"),
                        content: Some(t),
                        ..Delta::default()
                    },
                    Delta {
                        content: Some(t),
                        ..Delta::default()
                    },
                    Delta {
                        reasoning_content: Some(t),
                        ..Delta::default()
                    },
                    Delta {
                        role: Some(t),
                        content: Some(t),
                        reasoning_content: Some(t),
                        tool_calls: None,
                    },
                ];
                for d in &deltas {
                    let mut a = writer(false);
                    let mut b = writer(false);
                    a.identify(Some(&format!("id\"{t}")), Some(&format!("m{t}")));
                    b.identify(Some(&format!("id\"{t}")), Some(&format!("m{t}")));
                    b.set_created(a.meta.as_ref().unwrap().created);
                    a.chunk(i as u32 * 1000, d, reason);
                    b.chunk_via_serde(i as u32 * 1000, d, reason);
                    assert_eq!(
                        String::from_utf8(a.output().to_vec()).unwrap(),
                        String::from_utf8(b.output().to_vec()).unwrap()
                    );
                }
            }
        }
    }

    /// Tool-call deltas, choice 0's cached head across identity changes, and many generated
    /// texts: the direct writer gives serde_json's bytes for `Chunk` every time.
    #[test]
    fn direct_chunks_match_serde_json_with_tool_calls_and_identity_changes() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let extra = json!({"google": {"thought_signature": "c2\"ln", "n": [1, 2.5, -3, null]}});
        let mut rng = StdRng::seed_from_u64(13);
        let alphabet = [
            'a', '"', '\\', '\n', '\u{1}', '\u{1f}', ' ', 'é', '中', '😀', '\u{7f}', '/',
        ];
        let text = |rng: &mut StdRng| -> String {
            let len = rng.gen_range(0..20);
            (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect()
        };
        let (mut a, mut b) = (writer(false), writer(false));
        for round in 0..400 {
            let (t1, t2, t3) = (text(&mut rng), text(&mut rng), text(&mut rng));
            match round % 7 {
                // The identity changes mid-stream: the cached head must follow.
                3 => {
                    a.identify(Some(&t1), None);
                    b.identify(Some(&t1), None);
                }
                4 => {
                    a.identify(None, Some(&t2));
                    b.identify(None, Some(&t2));
                }
                5 => {
                    let c = rng.gen_range(1..u64::MAX);
                    a.set_created(c);
                    b.set_created(c);
                }
                _ => {}
            }
            let calls = [
                ToolCallDelta::start(rng.gen_range(0..3), &t1, &t2, &t3),
                ToolCallDelta::args(rng.gen_range(0..300), &t3),
                ToolCallDelta::start(7, &t1, &t2, "").with_extra_content(Some(&extra)),
            ];
            let n = rng.gen_range(1..=calls.len());
            let deltas = [
                Delta {
                    content: Some(&t1),
                    ..Delta::default()
                },
                Delta {
                    reasoning_content: Some(&t2),
                    ..Delta::default()
                },
                Delta {
                    role: Some("assistant"),
                    tool_calls: Some(&calls[..n]),
                    ..Delta::default()
                },
                Delta {
                    tool_calls: Some(&calls[..n]),
                    ..Delta::default()
                },
                Delta {
                    role: Some(&t3),
                    content: Some(&t1),
                    reasoning_content: Some(&t2),
                    tool_calls: Some(&calls[..n]),
                },
            ];
            let index = if rng.gen_bool(0.7) {
                0
            } else {
                rng.gen_range(1..200)
            };
            let reason = [None, Some("stop"), Some("tool_calls")][rng.gen_range(0..3)];
            let d = &deltas[rng.gen_range(0..deltas.len())];
            a.chunk(index, d, reason);
            b.chunk_via_serde(index, d, reason);
            assert_eq!(
                String::from_utf8(a.output().to_vec()).unwrap(),
                String::from_utf8(b.output().to_vec()).unwrap()
            );
            a.clear();
            b.clear();
        }
    }

    /// The direct `chat.completion` writer gives the bytes of the `Value` it replaced, for every
    /// reasoning mode and many generated replies (escapes, unicode, tool calls, names, usage).
    #[test]
    fn direct_completion_matches_the_value_body() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let alphabet = [
            'a', '"', '\\', '\n', '\u{1}', ' ', 'é', '中', '😀', '\u{2028}',
        ];
        let mut rng = StdRng::seed_from_u64(21);
        let text = |rng: &mut StdRng| -> Option<String> {
            rng.gen_bool(0.7).then(|| {
                let len = rng.gen_range(0..12);
                (0..len)
                    .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                    .collect()
            })
        };
        for round in 0..600 {
            let id = text(&mut rng);
            let model = text(&mut rng);
            let created = rng.gen_range(0..u64::MAX);
            let usage = rng.gen_bool(0.5).then(|| {
                let detail = |rng: &mut StdRng| rng.gen_bool(0.5).then(|| rng.gen_range(0..9));
                Usage::new(rng.gen_range(0..9), rng.gen_range(0..9), None)
                    .with_cached(detail(&mut rng))
                    .with_reasoning(detail(&mut rng))
            });
            let choices: Vec<_> = (0..rng.gen_range(1..4))
                .map(|i| {
                    let calls = rng.gen_range(0..3);
                    (
                        i * rng.gen_range(1..3),
                        text(&mut rng),
                        text(&mut rng),
                        text(&mut rng),
                        calls,
                        text(&mut rng).unwrap_or_default(),
                        [None, Some("stop"), Some("tool_calls")][rng.gen_range(0..3)],
                    )
                })
                .collect();
            let build = || Completion {
                id: id.clone(),
                created: Some(created),
                model: model.clone(),
                usage,
                choices: choices
                    .iter()
                    .map(
                        |(index, content, reasoning, name, calls, args, finish)| Choice {
                            index: *index,
                            content: content.clone(),
                            reasoning: reasoning.clone(),
                            name: name.clone(),
                            tool_calls: (0..*calls)
                                .map(|k| tool_call(&format!("c{k}{args}"), args, args.clone()))
                                .collect(),
                            // Every choice needs something for the reply to be accepted.
                            finish_reason: finish.or(Some("length")),
                        },
                    )
                    .collect(),
            };
            let mode = [
                ReasoningMode::Passthrough,
                ReasoningMode::Ignore,
                ReasoningMode::Concat,
            ][round % 3];
            let (mut a, mut b) = (writer(false), writer(false));
            a.set_reasoning_mode(mode);
            b.set_reasoning_mode(mode);
            if round % 5 == 0 {
                let u = Usage::new(1, 1, None);
                a.set_usage(u);
                b.set_usage(u);
            }
            a.completion(build()).unwrap();
            b.completion_via_value(build());
            let (a, b) = (
                String::from_utf8(a.output().to_vec()).unwrap(),
                String::from_utf8(b.output().to_vec()).unwrap(),
            );
            if id.as_deref().is_some_and(|s| !s.is_empty()) {
                assert_eq!(a, b);
            } else {
                // A generated id: the same bytes around it.
                let strip = |s: &str| {
                    let v: Value = serde_json::from_str(s).unwrap();
                    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
                    s[s.find(",\"object\"").unwrap()..].to_string()
                };
                assert_eq!(strip(&a), strip(&b));
            }
        }
    }

    /// The direct usage object is `to_json`'s bytes, details and extreme counts included.
    #[test]
    fn direct_usage_is_the_value_usage() {
        let max = u64::MAX;
        for (p, c, t) in [
            (0, 0, None),
            (3, 4, None),
            (max, 1, None),
            (1, 2, Some(max)),
        ] {
            for cached in [None, Some(0), Some(max)] {
                for reasoning in [None, Some(7)] {
                    let u = Usage::new(p, c, t)
                        .with_cached(cached)
                        .with_reasoning(reasoning);
                    let mut out = Vec::new();
                    u.write_json(&mut out);
                    assert_eq!(out, crate::json_write::to_vec(&u.to_json()), "{u:?}");
                }
            }
        }
    }

    #[test]
    fn chunk_shape_is_exact() {
        let mut w = writer(false);
        w.begin(0);
        w.text(0, "hi");
        assert_eq!(
            events(w.output()),
            vec![
                r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
                r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"logprobs":null,"finish_reason":null}]}"#,
            ]
        );
    }

    #[test]
    fn role_goes_on_the_first_delta_of_each_choice() {
        let mut w = writer(false);
        w.text(0, "a");
        w.text(1, "b");
        w.text(0, "c");
        let ev: Vec<Value> = events(w.output())
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        assert_eq!(
            ev[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": "a"})
        );
        assert_eq!(
            ev[1]["choices"][0]["delta"],
            json!({"role": "assistant", "content": "b"})
        );
        assert_eq!(ev[2]["choices"][0]["delta"], json!({"content": "c"}));
    }

    #[test]
    fn tool_call_deltas_and_reasoning() {
        let mut w = writer(false);
        w.reasoning(0, "think");
        w.tool_calls(0, &[ToolCallDelta::start(0, "call_1", "f", "")]);
        w.tool_calls(0, &[ToolCallDelta::args(0, "{\"a\":1}")]);
        let ev: Vec<Value> = events(w.output())
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        assert_eq!(ev[0]["choices"][0]["delta"]["reasoning_content"], "think");
        assert_eq!(
            ev[1]["choices"][0]["delta"]["tool_calls"],
            json!([{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}])
        );
        assert_eq!(
            ev[2]["choices"][0]["delta"]["tool_calls"],
            json!([{"index": 0, "function": {"arguments": "{\"a\":1}"}}])
        );
    }

    #[test]
    fn tool_call_extra_content_and_embeddings_without_usage() {
        let mut w = writer(false);
        let extra = json!({"google": {"thought_signature": "c2ln"}});
        w.tool_calls(
            0,
            &[ToolCallDelta::start(0, "call_1", "f", "{}").with_extra_content(Some(&extra))],
        );
        w.tool_calls(0, &[ToolCallDelta::args(0, "x")]);
        let ev: Vec<Value> = events(w.output())
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        assert_eq!(
            ev[0]["choices"][0]["delta"]["tool_calls"][0]["extra_content"],
            extra
        );
        assert!(ev[1]["choices"][0]["delta"]["tool_calls"][0]
            .get("extra_content")
            .is_none());

        let mut w = writer(false);
        w.embeddings_without_usage(vec![json!([0.5])]);
        let v: Value = serde_json::from_slice(w.output()).unwrap();
        assert_eq!(v["usage"], json!({"prompt_tokens": 0, "total_tokens": 0}));
        assert_eq!(v["data"][0]["embedding"], json!([0.5]));
        assert_eq!(w.usage(), None);
    }

    #[test]
    fn finish_once_then_usage_then_done_and_end_is_idempotent() {
        let mut w = writer(true);
        w.text(0, "x");
        w.set_usage(Usage::new(1, 2, None));
        w.finish(0, "stop");
        w.finish(0, "length");
        w.end();
        w.end();
        w.text(0, "late");
        let ev = events(w.output());
        assert_eq!(ev.len(), 4, "{ev:?}");
        assert!(ev[1].contains(r#""finish_reason":"stop""#));
        assert!(ev[2].contains(
            r#""choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}"#
        ));
        assert_eq!(ev[3], "[DONE]");
        assert!(w.is_closed());
    }

    #[test]
    fn a_stream_without_a_finish_ends_with_an_error() {
        let mut w = writer(true);
        w.text(0, "cut");
        w.end();
        let ev = events(w.output());
        assert_eq!(ev.len(), 3);
        let err: Value = serde_json::from_str(&ev[1]).unwrap();
        assert_eq!(err["error"]["type"], "upstream_error");
        assert_eq!(ev[2], "[DONE]");
    }

    #[test]
    fn errors_close_the_stream_once() {
        let mut w = writer(false);
        w.error(&ProxyError::bad_upstream("boom"));
        w.error(&ProxyError::bad_upstream("again"));
        w.text(0, "ignored");
        w.end();
        let ev = events(w.output());
        assert_eq!(ev.len(), 2);
        assert!(ev[0].contains("boom"));
    }

    #[test]
    fn raw_events_count_finish_and_usage() {
        let mut w = writer(true);
        w.raw_event(br#"{"x":1}"#, true, Some(Usage::new(1, 1, None)));
        w.end();
        let ev = events(w.output());
        assert_eq!(ev, vec![r#"{"x":1}"#.to_string(), "[DONE]".to_string()]);
    }

    #[test]
    fn embeddings_are_base64_little_endian_float32_when_asked() {
        use base64::Engine;
        let mut w = writer(false);
        w.set_embeddings_base64(true);
        w.embeddings(vec![json!([0.5, -1.0, 0.25])], Usage::new(3, 0, None));
        let v: Value = serde_json::from_slice(w.output()).unwrap();
        let b64 = v["data"][0]["embedding"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let floats: Vec<f32> = bytes
            .chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(floats, vec![0.5, -1.0, 0.25]);
        // Already-encoded vectors are left alone; floats stay floats when not asked.
        assert_eq!(embedding_base64(&json!("AAAA")), None);
        let mut w = writer(false);
        w.embeddings(vec![json!([0.5])], Usage::new(1, 0, None));
        let v: Value = serde_json::from_slice(w.output()).unwrap();
        assert_eq!(v["data"][0]["embedding"], json!([0.5]));
    }

    #[test]
    fn reasoning_modes() {
        let mut w = writer(false);
        w.set_reasoning_mode(ReasoningMode::Ignore);
        w.reasoning(0, "hmm");
        assert!(w.output().is_empty());
        w.set_reasoning_mode(ReasoningMode::Concat);
        w.reasoning(0, "hmm");
        assert!(std::str::from_utf8(w.output())
            .unwrap()
            .contains(r#""content":"hmm""#));
        let mut w = writer(false);
        w.set_reasoning_mode(ReasoningMode::Concat);
        w.completion(Completion {
            choices: vec![Choice {
                content: Some("42".into()),
                reasoning: Some("think".into()),
                finish_reason: Some("stop"),
                ..Choice::default()
            }],
            ..Completion::default()
        })
        .unwrap();
        let v: Value = serde_json::from_slice(w.output()).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "think\n\n42");
        assert!(v["choices"][0]["message"]
            .get("reasoning_content")
            .is_none());
    }

    #[test]
    fn buffered_completion_and_its_validation() {
        let mut w = writer(false);
        let err = w.completion(Completion::default()).unwrap_err();
        assert_eq!(err.status, 502);
        let err = w
            .completion(Completion {
                choices: vec![Choice::default()],
                ..Completion::default()
            })
            .unwrap_err();
        assert!(err.message.contains("neither content nor a finish reason"));
        w.completion(Completion {
            id: Some("id-1".into()),
            created: Some(9),
            model: None,
            choices: vec![Choice {
                index: 0,
                tool_calls: vec![tool_call("c1", "f", "{}".into())],
                finish_reason: Some("tool_calls"),
                ..Choice::default()
            }],
            usage: Some(Usage::new(3, 4, None)),
        })
        .unwrap();
        let v: Value = serde_json::from_slice(w.output()).unwrap();
        assert_eq!(v["model"], "m");
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["usage"]["total_tokens"], 7);
        assert_eq!(w.usage(), Some(Usage::new(3, 4, None)));
    }
}
