//! deepl: OpenAI chat completions → DeepL's text translation API.
//!
//! Facts used (DeepL developer docs: "Your first API request"
//! developers.deepl.com/docs/getting-started/your-first-api-request, "Access and authentication"
//! developers.deepl.com/docs/getting-started/auth, "Translate text"
//! developers.deepl.com/api-reference/translate, "Error handling"
//! developers.deepl.com/docs/best-practices/error-handling; the seed README's DeepL example):
//! - `POST /v2/translate` on `api-free.deepl.com` (API Free) or `api.deepl.com` (API Pro);
//!   header `Authorization: DeepL-Auth-Key <key>`; JSON body `{"text": [...], "target_lang",
//!   "context"?, ...}`. Free keys are recognisable by the suffix `:fx`.
//! - The seed maps OpenAI's request onto it: `model` is the tier (`Free` or `Pro`), every
//!   non-system message's content is one `text` entry, the system message is `context` (text
//!   that steers the translation without being translated), `targetLang` is `target_lang`.
//! - Response `{"translations": [{"detected_source_language", "text"}]}`: one choice per
//!   translation, message `{"role": "assistant", "content": text, "name":
//!   detected_source_language}` (the seed's example). DeepL reports characters, not tokens, so
//!   usage is all zeros.
//! - Errors: standard statuses with `{"message": ...}` (sometimes with `detail`); 403 bad key
//!   (often with an empty body), 413 body too large (128 KiB limit), 429 too many requests,
//!   456 quota exceeded, 5xx/529 temporary.
//! - DeepL has no streaming and no embeddings. A `stream: true` request is sent unstreamed and
//!   its single answer is replayed as an OpenAI chunk stream (see `on_body`).

use super::{Api, Auth, Profile, Provider, ProviderType};
use super::{RequestInfo, ResponseTranslator, Upstream};
use crate::config::ProviderConfig;
use crate::custom_settings::SettingsProtocol;
use crate::error::{error_type_for_status, ConfigError, ProxyError};
use crate::openai;
use crate::openai::request::{body_object, content_parts, Param, ParamTable, Part};
use crate::openai::writer::{Choice, Completion, OpenAiWriter};
use crate::sse::SseEvent;
use crate::usage::Usage;
use serde_json::{json, Map, Value};
use std::borrow::Cow;

const NAME: &str = "deepl";
const FREE_HOST: &str = "api-free.deepl.com";
const PRO_HOST: &str = "api.deepl.com";
const TRANSLATE_PATH: &str = "/v2/translate";

/// deepl's own configuration fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `targetLang`: the language every request is translated into.
    pub target_lang: String,
}

impl Settings {
    pub fn parse(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let f = config.fields();
        config.require_token()?;
        let target_lang = f.require(
            "targetLang",
            f.nonempty_str("targetLang")?,
            "for provider type 'deepl'",
        )?;
        Ok(Self {
            target_lang: target_lang.to_string(),
        })
    }
}

/// The host for the requested tier (the OpenAI `model`).
fn tier_host(model: &str) -> Result<&'static str, ProxyError> {
    if model.eq_ignore_ascii_case("free") {
        Ok(FREE_HOST)
    } else if model.eq_ignore_ascii_case("pro") {
        Ok(PRO_HOST)
    } else {
        Err(ProxyError::bad_request(format!(
            "model '{model}' is not a DeepL tier: use 'Free' (api-free.deepl.com) or 'Pro' (api.deepl.com)"
        ))
        .with_param("model")
        .with_code("model_not_found"))
    }
}

const PROFILE: Profile = Profile {
    kind: ProviderType::Deepl,
    settings: SettingsProtocol::OpenAi,
    host: "",
    auth: Auth::Scheme("DeepL-Auth-Key"),
    unsupported: &[(Api::Embeddings, "the embeddings API")],
};

/// DeepL's whole state is its settings.
impl Provider for Settings {
    fn profile(&self) -> Profile {
        PROFILE
    }

    /// For a client's own path no model is known: DeepL's key convention picks the host
    /// (`:fx` = API Free).
    fn host(&self, token: &str) -> Cow<'_, str> {
        Cow::Borrowed(if token.ends_with(":fx") {
            FREE_HOST
        } else {
            PRO_HOST
        })
    }

    fn translate_request(
        &self,
        req: &RequestInfo<'_>,
        body: &mut Value,
    ) -> Result<Upstream, ProxyError> {
        let host = tier_host(req.model)?;
        translate_chat(self, body)?;
        self.authorize(Upstream::new(host, TRANSLATE_PATH), req.token)
    }

    fn response_translator(&self, req: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        Box::new(DeeplTranslator { stream: req.stream })
    }
}

/// Features a translation service cannot honour. Sampling parameters (temperature, top_p,
/// max_tokens, ...) have no meaning for translation and are ignored.
const PARAMS: ParamTable = ParamTable(&[
    ("tools", Param::Reject("tool calls")),
    ("functions", Param::Reject("function calls")),
    (
        "response_format",
        Param::RejectUnlessNeutral("response_format"),
    ),
    ("logprobs", Param::RejectUnlessNeutral("logprobs")),
    ("audio", Param::Reject("audio output")),
    ("n", Param::RejectUnlessNeutral("n > 1")),
]);

/// A message's text: a string, or the concatenated text parts; other parts are unsupported.
fn message_text(m: &Map<String, Value>, i: usize) -> Result<String, ProxyError> {
    let param = format!("messages[{i}].content");
    let content = m.get("content");
    let raw = content.and_then(Value::as_array);
    let mut text = String::new();
    for (j, part) in content_parts(content, &param)?.into_iter().enumerate() {
        match part {
            Part::Text(t) => text.push_str(t),
            // A part without a type is read as text, as it always was here.
            Part::Other("") => match raw.and_then(|r| r[j].get("text")).and_then(Value::as_str) {
                Some(t) => text.push_str(t),
                None => {
                    return Err(ProxyError::bad_request(format!(
                        "{param}: a text part needs 'text'"
                    ))
                    .with_param(param))
                }
            },
            Part::Image { .. } => {
                return Err(ProxyError::unsupported("image input", NAME).with_param(param))
            }
            Part::File { .. } | Part::InputAudio { .. } | Part::Other(_) => {
                let kind = part.type_name();
                return Err(
                    ProxyError::unsupported(&format!("content part type '{kind}'"), NAME)
                        .with_param(param),
                );
            }
        }
    }
    Ok(text)
}

fn translate_chat(settings: &Settings, body: &mut Value) -> Result<(), ProxyError> {
    let obj = body_object(body)?;
    // Empty tool lists ask for nothing.
    for key in ["tools", "functions"] {
        if obj
            .get(key)
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            obj.remove(key);
        }
    }
    PARAMS.apply(obj, NAME)?;
    let Some(Value::Array(messages)) = obj.get("messages") else {
        return Err(ProxyError::bad_request("'messages' must be an array").with_param("messages"));
    };
    let mut texts = Vec::with_capacity(messages.len());
    let mut context: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let m = m.as_object().ok_or_else(|| {
            ProxyError::bad_request(format!("messages[{i}] must be an object"))
                .with_param(format!("messages[{i}]"))
        })?;
        let text = message_text(m, i)?;
        // The seed's example sends messages without a role: those are text to translate.
        match m.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => context.push(text),
            _ => texts.push(Value::String(text)),
        }
    }
    if texts.is_empty() {
        return Err(ProxyError::bad_request(
            "DeepL needs at least one non-system message with the text to translate",
        )
        .with_param("messages"));
    }
    let target_lang = settings.target_lang.as_str();
    let mut out = json!({"text": texts, "target_lang": target_lang});
    if !context.is_empty() {
        out["context"] = Value::String(context.join("\n"));
    }
    *body = out;
    Ok(())
}

fn text_of(t: &Value) -> &str {
    t.get("text").and_then(Value::as_str).unwrap_or_default()
}

/// Replies to one DeepL request; nothing to keep between events (DeepL never streams).
struct DeeplTranslator {
    stream: bool,
}

impl ResponseTranslator for DeeplTranslator {
    fn buffered_as_stream(&self) -> bool {
        self.stream
    }

    fn on_event(&mut self, _event: SseEvent<'_>, _w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        Err(ProxyError::bad_upstream(
            "DeepL answered with an event stream, which its API does not define",
        ))
    }

    /// A buffered DeepL answer: one choice per translation. For `stream: true` requests the
    /// translations are written as an OpenAI chunk stream (content, finish, end).
    fn on_body(&mut self, body: &[u8], w: &mut OpenAiWriter) -> Result<(), ProxyError> {
        let v = openai::parse_body(body)?;
        let Some(items) = v.get("translations").and_then(Value::as_array) else {
            return Err(match v.get("message") {
                Some(_) => openai::upstream_error(502, body),
                None => ProxyError::bad_upstream("upstream body has no 'translations'"),
            });
        };
        // DeepL counts characters, not tokens.
        w.set_usage(Usage::default());
        if self.stream {
            for (i, t) in items.iter().enumerate() {
                w.text(i as u32, text_of(t));
                w.finish(i as u32, "stop");
            }
            w.end();
            return Ok(());
        }
        let choices = items
            .iter()
            .enumerate()
            .map(|(i, t)| Choice {
                index: i as u32,
                content: Some(text_of(t).to_string()),
                finish_reason: Some("stop"),
                name: t
                    .get("detected_source_language")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                ..Choice::default()
            })
            .collect();
        w.completion(Completion {
            choices,
            usage: Some(Usage::default()),
            ..Completion::default()
        })
    }

    fn on_error(&mut self, status: u16, body: &[u8]) -> ProxyError {
        let mut e = openai::upstream_error(status, body);
        let empty = body.iter().all(u8::is_ascii_whitespace);
        match status {
            403 if empty => {
                e.message = "DeepL rejected the API key (403): check apiTokens and that Free keys \
                             (ending in ':fx') use model 'Free' and Pro keys model 'Pro'"
                    .into();
            }
            456 => {
                e.kind = "insufficient_quota";
                e.code = Some("quota_exceeded".into());
                if empty {
                    e.message = "DeepL quota exceeded (456)".into();
                }
            }
            429 | 529 => {
                e.kind = error_type_for_status(429);
            }
            _ => {}
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use crate::exchange::{Config, Exchange, RequestAction, ResponseMode, UpstreamRequest};
    use crate::testutil::{self, header, respond, upstream_json};
    use serde_json::{json, Value};
    use std::sync::Arc;

    const TOKEN: &str = "0b1c2d3e-secret-deepl-key";

    fn cfg(token: &str, extra: &str) -> Arc<Config> {
        testutil::token_config("deepl", token, &format!(r#", "targetLang": "ZH"{extra}"#))
    }

    fn local_error(cfg: &Arc<Config>, path: &str, body: Value) -> (u16, Value) {
        testutil::local_reply(cfg, path, &body.to_string())
    }

    /// The seed README's DeepL request example.
    fn seed_request(model: &str, stream: bool) -> Value {
        json!({"model": model, "stream": stream, "stream_options": {"include_usage": stream},
               "temperature": 0.2,
               "messages": [{"role": "system", "content": "money"},
                            {"content": "sit by the bank"},
                            {"content": "a bank in China"}]})
    }

    fn forward(c: &Arc<Config>, body: &Value) -> (Exchange, UpstreamRequest) {
        testutil::forward(c, "/v1/chat/completions", &body.to_string())
    }

    // The documented /v2/translate response (developers.deepl.com "Your first API request"),
    // with the seed README's translations.
    const RESPONSE: &str = r#"{"translations": [
        {"detected_source_language": "EN", "text": "operate a gambling establishment"},
        {"detected_source_language": "EN", "text": "Bank of China"}]}"#;

    #[test]
    fn seed_example_free_tier() {
        let c = cfg(TOKEN, "");
        let (mut ex, up) = forward(&c, &seed_request("Free", false));
        assert_eq!(up.authority, "api-free.deepl.com");
        assert_eq!(up.path, "/v2/translate");
        assert_eq!(
            header(&up, "authorization"),
            Some(format!("DeepL-Auth-Key {TOKEN}").as_str())
        );
        assert_eq!(header(&up, "content-type"), Some("application/json"));
        assert_eq!(
            upstream_json(&up),
            json!({"text": ["sit by the bank", "a bank in China"], "target_lang": "ZH", "context": "money"})
        );
        let v = testutil::buffered_completion(&mut ex, RESPONSE.as_bytes());
        assert_eq!(v["model"], "Free");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"].as_array().unwrap().len(), 2);
        for (i, text) in ["operate a gambling establishment", "Bank of China"]
            .iter()
            .enumerate()
        {
            let ch = &v["choices"][i];
            assert_eq!(ch["index"], i);
            assert_eq!(ch["finish_reason"], "stop");
            assert_eq!(ch["message"]["role"], "assistant");
            assert_eq!(ch["message"]["content"], *text);
            assert_eq!(ch["message"]["name"], "EN");
        }
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
        );
        assert_eq!(ex.usage().unwrap().total_tokens, 0);
    }

    #[test]
    fn pro_tier_and_text_parts() {
        let c = cfg(TOKEN, "");
        let (_, up) = forward(
            &c,
            &json!({"model": "Pro", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "world!"}]}]}),
        );
        assert_eq!(up.authority, "api.deepl.com");
        assert_eq!(
            upstream_json(&up),
            json!({"text": ["Hello, world!"], "target_lang": "ZH"})
        );
    }

    #[test]
    fn unknown_tier_is_a_400_naming_the_tiers() {
        let (status, v) = local_error(
            &cfg(TOKEN, ""),
            "/v1/chat/completions",
            json!({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(status, 400);
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("'Free'") && msg.contains("'Pro'"), "{msg}");
        assert_eq!(v["error"]["param"], "model");
    }

    #[test]
    fn unsupported_features() {
        let c = cfg(TOKEN, "");
        testutil::assert_unsupported(&local_error(
            &c,
            "/v1/embeddings",
            json!({"model": "Free", "input": "x"}),
        ));
        for body in [
            json!({"model": "Free", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
            json!({"model": "Free", "tools": [{"type": "function", "function": {"name": "f"}}],
                   "messages": [{"role": "user", "content": "x"}]}),
            json!({"model": "Free", "n": 2, "messages": [{"role": "user", "content": "x"}]}),
        ] {
            testutil::assert_unsupported(&local_error(&c, "/v1/chat/completions", body));
        }
        let (status, _) = local_error(
            &c,
            "/v1/chat/completions",
            json!({"model": "Free", "messages": [{"role": "system", "content": "only context"}]}),
        );
        assert_eq!(status, 400);
    }

    /// DeepL never streams: a stream request gets the buffered answer replayed as chunks.
    #[test]
    fn stream_request_is_replayed_as_chunks() {
        let c = cfg(TOKEN, "");
        let (mut ex, up) = forward(&c, &seed_request("Free", true));
        assert!(upstream_json(&up).get("stream").is_none());
        // The client asked for a stream: the reply is labelled as one.
        let (mut probe, _) = forward(&c, &seed_request("Free", true));
        let rh = probe
            .on_response_headers(200, &[("content-type", "application/json")])
            .unwrap();
        assert!(rh
            .set_headers
            .contains(&("content-type".to_string(), "text/event-stream".to_string())));
        let (status, out, mode) = respond(&mut ex, 200, "application/json", RESPONSE.as_bytes());
        assert_eq!((status, mode), (200, ResponseMode::Buffer));
        let events = testutil::validate_sse_stream(&out);
        let text_of = |i: u64| -> String {
            events
                .iter()
                .filter(|e| e["choices"].get(0).is_some_and(|c| c["index"] == i))
                .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
                .collect()
        };
        assert_eq!(text_of(0), "operate a gambling establishment");
        assert_eq!(text_of(1), "Bank of China");
        let finishes = events
            .iter()
            .filter(|e| {
                e["choices"]
                    .get(0)
                    .is_some_and(|c| c["finish_reason"] == "stop")
            })
            .count();
        assert_eq!(finishes, 2);
        let last = events.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(last["usage"]["total_tokens"], 0);
        assert!(events
            .iter()
            .all(|e| e["model"] == "Free" && e["id"] == events[0]["id"]));
    }

    /// An upstream that (against DeepL's API) answers with SSE gets a clean in-stream error.
    #[test]
    fn unexpected_event_stream_is_an_error() {
        let c = cfg(TOKEN, "");
        let (mut ex, _) = forward(&c, &seed_request("Free", true));
        let (_, out, mode) = respond(&mut ex, 200, "text/event-stream", b"data: {}\n\n");
        assert_eq!(mode, ResponseMode::Stream);
        let events = testutil::validate_sse_stream(&out);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["error"]["type"], "upstream_error");
    }

    // Error statuses from DeepL's "Error handling" page: {"message"} bodies, 403 often empty,
    // 456 quota exceeded.
    #[test]
    fn errors() {
        let c = cfg(TOKEN, "");
        let cases: [(u16, &[u8], &str, Option<&str>); 4] = [
            (
                456,
                br#"{"message":"Quota Exceeded"}"#,
                "insufficient_quota",
                Some("quota_exceeded"),
            ),
            (403, b"", "permission_error", None),
            (
                400,
                br#"{"message":"Value for 'target_lang' not supported."}"#,
                "invalid_request_error",
                None,
            ),
            (
                429,
                br#"{"message":"Too many requests"}"#,
                "rate_limit_error",
                None,
            ),
        ];
        for (status, body, kind, code) in cases {
            let (mut ex, _) = forward(&c, &seed_request("Free", false));
            let (st, out, _) = respond(&mut ex, status, "application/json", body);
            assert_eq!(st, status);
            let v: Value = serde_json::from_slice(&out).unwrap();
            testutil::validate_error(&v);
            assert_eq!(v["error"]["type"], kind, "{status}");
            assert_eq!(v["error"]["code"].as_str(), code, "{status}");
            assert!(!v["error"]["message"].as_str().unwrap().is_empty());
            assert!(!String::from_utf8_lossy(&out).contains(TOKEN));
        }
    }

    #[test]
    fn protocol_original_picks_host_by_key_suffix() {
        for (token, host) in [("abc:fx", "api-free.deepl.com"), ("abc", "api.deepl.com")] {
            let c = cfg(token, r#", "protocol": "original""#);
            let mut ex = Exchange::new(Arc::clone(&c));
            let body = br#"{"text":["Hello"],"target_lang":"DE"}"#;
            let up = match ex.on_request("POST", "/v2/translate", &[], body).unwrap() {
                RequestAction::Forward(up) => up,
                other => panic!("{other:?}"),
            };
            assert_eq!(up.authority, host);
            assert_eq!(up.path, "/v2/translate");
            assert_eq!(
                header(&up, "authorization"),
                Some(format!("DeepL-Auth-Key {token}").as_str())
            );
            assert!(up.body.is_none());
        }
    }

    // customSettings use the root of the body (DeepL has no column of its own); raw mode lets
    // operators set DeepL options such as formality.
    #[test]
    fn custom_settings_at_root() {
        let c = cfg(
            TOKEN,
            r#", "customSettings": [{"name": "formality", "value": "more", "mode": "raw"}]"#,
        );
        let (_, up) = forward(&c, &seed_request("Pro", false));
        let b = upstream_json(&up);
        assert_eq!(b["formality"], "more");
        assert_eq!(b["target_lang"], "ZH");
    }

    // The writer's rules: no translations is no answer (502 buffered, an error event streamed).
    #[test]
    fn no_translations_is_an_error() {
        let c = cfg(TOKEN, "");
        let empty = br#"{"translations": []}"#;
        let (mut ex, _) = forward(&c, &seed_request("Free", false));
        let (status, _) = testutil::respond_error(&mut ex, 200, empty);
        assert_eq!(status, 502);
        let (mut ex, _) = forward(&c, &seed_request("Free", true));
        let (_, out, _) = respond(&mut ex, 200, "application/json", empty);
        let events = testutil::validate_sse_stream(&out);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["error"]["type"], "upstream_error");
    }

    #[test]
    fn untyped_parts_are_text_and_neutral_parameters_pass() {
        let c = cfg(TOKEN, "");
        let (_, up) = forward(
            &c,
            &json!({"model": "Free", "tools": [], "n": 1, "logprobs": false,
                    "messages": [{"role": "user", "content": [{"text": "Hi"}]}]}),
        );
        assert_eq!(upstream_json(&up)["text"], json!(["Hi"]));
        let (status, v) = local_error(
            &c,
            "/v1/chat/completions",
            json!({"model": "Free", "response_format": {"type": "json_object"},
                   "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(
            (status, v["error"]["param"].as_str()),
            (400, Some("response_format"))
        );
    }
}
