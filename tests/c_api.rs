//! The C API through its Rust symbols: the full flow, every error path (null pointers, invalid
//! UTF-8, config errors with field paths, wrong call order), and concurrent use of one config.

use aiproxy::ffi::*;
use std::ffi::CStr;
use std::ptr::{null, null_mut};

fn s(x: &str) -> AiproxyStr {
    AiproxyStr {
        ptr: x.as_ptr(),
        len: x.len(),
    }
}

unsafe fn view(v: AiproxyStr) -> &'static [u8] {
    if v.len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(v.ptr, v.len)
    }
}

unsafe fn text(v: AiproxyStr) -> String {
    String::from_utf8(view(v).to_vec()).unwrap()
}

unsafe fn take_err(err: *mut AiproxyError) -> (i32, String, String) {
    assert!(!err.is_null());
    let r = (
        aiproxy_error_code(err),
        CStr::from_ptr(aiproxy_error_message(err))
            .to_string_lossy()
            .into_owned(),
        CStr::from_ptr(aiproxy_error_field(err))
            .to_string_lossy()
            .into_owned(),
    );
    aiproxy_error_free(err);
    r
}

unsafe fn config(json: &str) -> *mut AiproxyConfig {
    let mut err = null_mut();
    let c = aiproxy_config_new(json.as_ptr(), json.len(), &mut err);
    assert!(!c.is_null(), "{:?}", take_err(err));
    assert!(err.is_null());
    c
}

fn empty_request_result() -> AiproxyRequestResult {
    unsafe { std::mem::zeroed() }
}

const CFG: &str = r#"{"provider": {"type": "openai", "apiTokens": ["sk-SECRET"], "modelMapping": {"*": "gpt-4o-mini"}}}"#;
const CHAT: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;

#[test]
fn version_is_the_crate_version() {
    let v = unsafe { CStr::from_ptr(aiproxy_version()) };
    assert_eq!(v.to_str().unwrap(), aiproxy::VERSION);
}

#[test]
fn config_errors_carry_code_message_and_field() {
    unsafe {
        let mut err = null_mut();
        let bad = r#"{"provider": {"type": "azure", "apiTokens": ["sk-SECRET"]}}"#;
        assert!(aiproxy_config_new(bad.as_ptr(), bad.len(), &mut err).is_null());
        let (code, msg, field) = take_err(err);
        assert_eq!(code, AIPROXY_ERR_CONFIG_INVALID);
        assert_eq!(field, "provider.azureServiceUrl");
        assert!(
            msg.contains("provider.azureServiceUrl") && !msg.contains("SECRET"),
            "{msg}"
        );

        let mut err = null_mut();
        assert!(aiproxy_config_new(b"{x".as_ptr(), 2, &mut err).is_null());
        assert_eq!(take_err(err).0, AIPROXY_ERR_CONFIG_JSON);

        let mut err = null_mut();
        assert!(aiproxy_config_new(null(), 5, &mut err).is_null());
        assert_eq!(take_err(err).0, AIPROXY_ERR_NULL_POINTER);
        // A null err out-parameter is allowed.
        assert!(aiproxy_config_new(null(), 5, null_mut()).is_null());
        // Error accessors tolerate null.
        assert_eq!(aiproxy_error_code(null()), AIPROXY_ERR_NULL_POINTER);
        assert_eq!(
            CStr::from_ptr(aiproxy_error_message(null())).to_bytes(),
            b""
        );
        aiproxy_error_free(null_mut());
        aiproxy_config_free(null_mut());
        aiproxy_exchange_free(null_mut());
    }
}

#[test]
fn full_buffered_flow_and_usage() {
    unsafe {
        let cfg = config(CFG);
        let mut err = null_mut();
        let ex = aiproxy_exchange_new(cfg, &mut err);
        aiproxy_config_free(cfg); // the exchange keeps the config alive
        assert!(!ex.is_null());
        let hdrs = [AiproxyHeader {
            name: s("content-type"),
            value: s("application/json"),
        }];
        let mut r = empty_request_result();
        let m = "POST";
        let p = "/v1/chat/completions";
        let rc = aiproxy_exchange_on_request(
            ex,
            m.as_ptr(),
            m.len(),
            p.as_ptr(),
            p.len(),
            hdrs.as_ptr(),
            1,
            CHAT.as_ptr(),
            CHAT.len(),
            &mut r,
            &mut err,
        );
        assert_eq!(rc, AIPROXY_OK);
        assert_eq!(r.action, AIPROXY_ACTION_FORWARD);
        assert_eq!(text(r.authority), "api.openai.com");
        assert_eq!(text(r.path), "/v1/chat/completions");
        assert_eq!(text(r.model), "gpt-4o-mini");
        assert!(r.body_replaced);
        let body: serde_json::Value = serde_json::from_slice(view(r.body)).unwrap();
        assert_eq!(body["model"], "gpt-4o-mini");
        let set: Vec<(String, String)> = std::slice::from_raw_parts(r.headers, r.headers_len)
            .iter()
            .map(|h| (text(h.name), text(h.value)))
            .collect();
        assert!(set.contains(&("authorization".into(), "Bearer sk-SECRET".into())));
        let removed: Vec<String> =
            std::slice::from_raw_parts(r.remove_headers, r.remove_headers_len)
                .iter()
                .map(|h| text(*h))
                .collect();
        assert!(removed.contains(&"content-length".to_string()));

        let rh_in = [AiproxyHeader {
            name: s("Content-Type"),
            value: s("application/json"),
        }];
        let mut rh: AiproxyResponseHeadersResult = std::mem::zeroed();
        assert_eq!(
            aiproxy_exchange_on_response_headers(ex, 200, rh_in.as_ptr(), 1, &mut rh, &mut err),
            AIPROXY_OK
        );
        assert_eq!(rh.mode, AIPROXY_MODE_BUFFER);
        let upstream = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3,"prompt_tokens_details":{"cached_tokens":1}}}"#;
        let (a, b) = upstream.split_at(40);
        let mut out: AiproxyBodyResult = std::mem::zeroed();
        assert_eq!(
            aiproxy_exchange_on_response_body(ex, a.as_ptr(), a.len(), false, &mut out, &mut err),
            AIPROXY_OK
        );
        assert_eq!((out.unchanged, out.data.len, out.status), (false, 0, 0));
        assert_eq!(
            aiproxy_exchange_on_response_body(ex, b.as_ptr(), b.len(), true, &mut out, &mut err),
            AIPROXY_OK
        );
        assert_eq!(out.status, 200);
        let v: serde_json::Value = serde_json::from_slice(view(out.data)).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "hello");
        let mut u: AiproxyUsage = std::mem::zeroed();
        assert_eq!(aiproxy_exchange_usage(ex, &mut u), AIPROXY_OK);
        assert!(u.present);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (2, 1, 3)
        );
        // Usage details: cached tokens reported, reasoning tokens not.
        let mut d: AiproxyUsageDetails = std::mem::zeroed();
        d.struct_size = std::mem::size_of::<AiproxyUsageDetails>();
        d.reasoning_tokens = 77;
        assert_eq!(aiproxy_exchange_usage_details(ex, &mut d), AIPROXY_OK);
        assert!(d.cached_tokens_present && !d.reasoning_tokens_present);
        assert_eq!((d.cached_tokens, d.reasoning_tokens), (1, 0));
        // An older caller's smaller struct: only the fields that fit are written.
        #[repr(C)]
        struct Older {
            struct_size: usize,
            cached_tokens_present: bool,
            cached_tokens: u64,
            sentinel: u64,
        }
        let mut old = Older {
            struct_size: std::mem::offset_of!(Older, sentinel),
            cached_tokens_present: false,
            cached_tokens: 0,
            sentinel: u64::MAX,
        };
        assert_eq!(
            aiproxy_exchange_usage_details(ex, (&mut old as *mut Older).cast()),
            AIPROXY_OK
        );
        assert!(old.cached_tokens_present && old.cached_tokens == 1);
        assert_eq!(old.sentinel, u64::MAX);
        let mut tiny: usize = 0;
        assert_eq!(
            aiproxy_exchange_usage_details(ex, (&mut tiny as *mut usize).cast()),
            AIPROXY_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            aiproxy_exchange_usage_details(ex, null_mut()),
            AIPROXY_ERR_NULL_POINTER
        );
        assert_eq!(
            aiproxy_exchange_usage_details(null(), &mut d),
            AIPROXY_ERR_NULL_POINTER
        );
        aiproxy_exchange_free(ex);
    }
}

#[test]
fn local_reply_for_invalid_client_json() {
    unsafe {
        let cfg = config(CFG);
        let ex = aiproxy_exchange_new(cfg, null_mut());
        let mut r = empty_request_result();
        let (m, p, b) = ("POST", "/v1/chat/completions", "{oops");
        assert_eq!(
            aiproxy_exchange_on_request(
                ex,
                m.as_ptr(),
                m.len(),
                p.as_ptr(),
                p.len(),
                null(),
                0,
                b.as_ptr(),
                b.len(),
                &mut r,
                null_mut()
            ),
            AIPROXY_OK
        );
        assert_eq!(r.action, AIPROXY_ACTION_LOCAL_REPLY);
        assert_eq!(r.status, 400);
        let v: serde_json::Value = serde_json::from_slice(view(r.body)).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        aiproxy_exchange_free(ex);
        aiproxy_config_free(cfg);
    }
}

#[test]
fn pointer_utf8_and_order_errors() {
    unsafe {
        let cfg = config(CFG);
        let mut err = null_mut();
        assert!(aiproxy_exchange_new(null(), &mut err).is_null());
        assert_eq!(take_err(err).0, AIPROXY_ERR_NULL_POINTER);

        let ex = aiproxy_exchange_new(cfg, null_mut());
        let mut r = empty_request_result();
        let (m, p) = ("POST", "/v1/chat/completions");
        let mut err = null_mut();
        // Null exchange, null out, null path, null body with a length.
        assert_eq!(
            aiproxy_exchange_on_request(
                null_mut(),
                m.as_ptr(),
                m.len(),
                p.as_ptr(),
                p.len(),
                null(),
                0,
                null(),
                0,
                &mut r,
                &mut err
            ),
            AIPROXY_ERR_NULL_POINTER
        );
        take_err(err);
        assert_eq!(
            aiproxy_exchange_on_request(
                ex,
                m.as_ptr(),
                m.len(),
                p.as_ptr(),
                p.len(),
                null(),
                0,
                null(),
                0,
                null_mut(),
                null_mut()
            ),
            AIPROXY_ERR_NULL_POINTER
        );
        assert_eq!(
            aiproxy_exchange_on_request(
                ex,
                m.as_ptr(),
                m.len(),
                null(),
                3,
                null(),
                0,
                null(),
                0,
                &mut r,
                null_mut()
            ),
            AIPROXY_ERR_NULL_POINTER
        );
        assert_eq!(
            aiproxy_exchange_on_request(
                ex,
                m.as_ptr(),
                m.len(),
                p.as_ptr(),
                p.len(),
                null(),
                0,
                null(),
                10,
                &mut r,
                null_mut()
            ),
            AIPROXY_ERR_NULL_POINTER
        );
        assert_eq!(
            aiproxy_exchange_on_request(
                ex,
                m.as_ptr(),
                m.len(),
                p.as_ptr(),
                p.len(),
                null(),
                2,
                null(),
                0,
                &mut r,
                null_mut()
            ),
            AIPROXY_ERR_NULL_POINTER
        );
        // Invalid UTF-8 in the path and in a header.
        let bad = [0x2f_u8, 0xff, 0xfe];
        let mut err = null_mut();
        assert_eq!(
            aiproxy_exchange_on_request(
                ex,
                m.as_ptr(),
                m.len(),
                bad.as_ptr(),
                bad.len(),
                null(),
                0,
                null(),
                0,
                &mut r,
                &mut err
            ),
            AIPROXY_ERR_INVALID_UTF8
        );
        assert!(take_err(err).1.contains("path"));
        let h = [AiproxyHeader {
            name: AiproxyStr {
                ptr: bad.as_ptr(),
                len: 3,
            },
            value: s("v"),
        }];
        assert_eq!(
            aiproxy_exchange_on_request(
                ex,
                m.as_ptr(),
                m.len(),
                p.as_ptr(),
                p.len(),
                h.as_ptr(),
                1,
                null(),
                0,
                &mut r,
                null_mut()
            ),
            AIPROXY_ERR_INVALID_UTF8
        );
        // Wrong order: body before headers, headers before the request.
        let mut out: AiproxyBodyResult = std::mem::zeroed();
        let mut err = null_mut();
        assert_eq!(
            aiproxy_exchange_on_response_body(ex, null(), 0, true, &mut out, &mut err),
            AIPROXY_ERR_BAD_STATE
        );
        assert!(!take_err(err).1.is_empty());
        let mut rh: AiproxyResponseHeadersResult = std::mem::zeroed();
        assert_eq!(
            aiproxy_exchange_on_response_headers(ex, 200, null(), 0, &mut rh, null_mut()),
            AIPROXY_ERR_BAD_STATE
        );
        // The exchange still works after errors.
        assert_eq!(
            aiproxy_exchange_on_request(
                ex,
                m.as_ptr(),
                m.len(),
                p.as_ptr(),
                p.len(),
                null(),
                0,
                CHAT.as_ptr(),
                CHAT.len(),
                &mut r,
                null_mut()
            ),
            AIPROXY_OK
        );
        assert_eq!(
            aiproxy_exchange_on_request(
                ex,
                m.as_ptr(),
                m.len(),
                p.as_ptr(),
                p.len(),
                null(),
                0,
                CHAT.as_ptr(),
                CHAT.len(),
                &mut r,
                null_mut()
            ),
            AIPROXY_ERR_BAD_STATE
        );
        let mut u: AiproxyUsage = std::mem::zeroed();
        assert_eq!(
            aiproxy_exchange_usage(null(), &mut u),
            AIPROXY_ERR_NULL_POINTER
        );
        assert_eq!(aiproxy_exchange_usage(ex, &mut u), AIPROXY_OK);
        assert!(!u.present);
        aiproxy_exchange_free(ex);
        aiproxy_config_free(cfg);
    }
}

struct SendPtr(*const AiproxyConfig);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

#[test]
fn one_config_shared_by_many_threads() {
    let cfg = unsafe { config(CFG) };
    let shared = std::sync::Arc::new(SendPtr(cfg));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let shared = std::sync::Arc::clone(&shared);
            std::thread::spawn(move || unsafe {
                for _ in 0..200 {
                    let ex = aiproxy_exchange_new(shared.0, null_mut());
                    assert!(!ex.is_null());
                    let mut r = empty_request_result();
                    let (m, p) = ("POST", "/v1/chat/completions");
                    assert_eq!(
                        aiproxy_exchange_on_request(
                            ex,
                            m.as_ptr(),
                            m.len(),
                            p.as_ptr(),
                            p.len(),
                            null(),
                            0,
                            CHAT.as_ptr(),
                            CHAT.len(),
                            &mut r,
                            null_mut()
                        ),
                        AIPROXY_OK
                    );
                    assert_eq!(text(r.model), "gpt-4o-mini");
                    aiproxy_exchange_free(ex);
                    let mut t = false;
                    assert_eq!(
                        aiproxy_config_needs_request_body(
                            shared.0,
                            m.as_ptr(),
                            m.len(),
                            p.as_ptr(),
                            p.len(),
                            &mut t,
                            null_mut()
                        ),
                        AIPROXY_OK
                    );
                    assert!(t);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    unsafe { aiproxy_config_free(cfg) };
}

/// The header's rule for byte strings: NULL with length 0 is empty. For the config that is an
/// empty document (CONFIG_JSON), not a null-pointer error.
#[test]
fn config_new_null_zero_is_an_empty_document() {
    unsafe {
        let mut err = null_mut();
        assert!(aiproxy_config_new(null(), 0, &mut err).is_null());
        assert_eq!(take_err(err).0, AIPROXY_ERR_CONFIG_JSON);
        let mut err = null_mut();
        assert!(aiproxy_config_new(null(), 1, &mut err).is_null());
        assert_eq!(take_err(err).0, AIPROXY_ERR_NULL_POINTER);
    }
}

/// The config questions answer what the core decides (`Config::translates` /
/// `Config::needs_request_body`).
#[test]
fn config_questions_match_the_core() {
    unsafe {
        let cfg = config(CFG);
        let core = aiproxy::Config::from_json(CFG.as_bytes()).unwrap();
        for (m, p) in [
            ("POST", "/v1/chat/completions"),
            ("POST", "/v1/embeddings"),
            ("GET", "/v1/models"),
            ("POST", "/v1/files"),
            ("post", "/v1/chat/completions?x=1"),
        ] {
            let (mut t, mut n) = (false, false);
            let mut err = null_mut();
            assert_eq!(
                aiproxy_config_translates(
                    cfg,
                    m.as_ptr(),
                    m.len(),
                    p.as_ptr(),
                    p.len(),
                    &mut t,
                    &mut err
                ),
                AIPROXY_OK
            );
            assert!(err.is_null());
            assert_eq!(
                aiproxy_config_needs_request_body(
                    cfg,
                    m.as_ptr(),
                    m.len(),
                    p.as_ptr(),
                    p.len(),
                    &mut n,
                    null_mut()
                ),
                AIPROXY_OK
            );
            assert_eq!(
                (t, n),
                (core.translates(m, p), core.needs_request_body(m, p)),
                "{m} {p}"
            );
        }
        // An empty method (NULL, 0) is valid and never translated.
        let mut t = true;
        let mut err = null_mut();
        let p = "/v1/chat/completions";
        assert_eq!(
            aiproxy_config_translates(cfg, null(), 0, p.as_ptr(), p.len(), &mut t, &mut err),
            AIPROXY_OK
        );
        assert!(err.is_null() && !t);
        aiproxy_config_free(cfg);
    }
}
