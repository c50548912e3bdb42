//! `libaiproxy_envoy.so`: aiproxy as an Envoy 1.40 dynamic-module HTTP filter.
//!
//! Envoy config: `dynamic_module_config: {name: aiproxy_envoy}`, `filter_name: aiproxy`,
//! `filter_config`: a `google.protobuf.StringValue` holding JSON.
//!
//! For now the filter only proves the plumbing (see [`DemoFilter`]); the translating filter
//! replaces it once the core is ready, with the same shape: hold request headers
//! (`StopIteration`), buffer the body (`StopIterationAndBuffer`), at end of stream translate and
//! call `set_request_header(":authority"|":path"|...)`, `set_request_body`, `clear_route_cache`;
//! then translate each response chunk in `on_response_body` with `replace_response_chunk`.

mod abi;
pub mod filter;

use filter::{
    log, BodyStatus, CalloutResponse, CounterId, EnvoyFilterConfig, EnvoyHttpFilter, HeadersStatus,
    HttpFilter, HttpFilterConfig, LogLevel,
};

/// The only filter name this module serves (`filter_name` in the Envoy config).
pub const FILTER_NAME: &str = "aiproxy";

/// Entry point used by the hook runtime for `on_http_filter_config_new`. An `Err` makes Envoy
/// reject the configuration.
pub(crate) fn new_filter_config(
    envoy: &mut EnvoyFilterConfig,
    name: &str,
    config: &[u8],
) -> Result<Box<dyn HttpFilterConfig>, String> {
    if name != FILTER_NAME {
        return Err(format!(
            "unknown filter_name {name:?}, expected {FILTER_NAME:?}"
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(config)
        .map_err(|e| format!("filter_config is not valid JSON: {e}"))?;
    let demo = json.get("demo").cloned().unwrap_or(serde_json::Value::Null);
    let s = |k: &str| demo.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let b = |k: &str| demo.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
    let requests = envoy
        .define_counter("aiproxy_requests_total")
        .map_err(|e| format!("define_counter: {e:?}"))?;
    log(LogLevel::Info, "aiproxy: filter config accepted");
    Ok(Box::new(DemoConfig {
        requests,
        body_len_header: b("body_len_header"),
        rewrite_request_body: s("rewrite_request_body"),
        rewrite_response_chunks: b("rewrite_response_chunks"),
        local_reply_path: s("local_reply_path"),
        callout_path: s("callout_path"),
        callout_cluster: s("callout_cluster"),
        panic_path: s("panic_path"),
    }))
}

/// Plumbing demonstration. Always: `x-aiproxy-seen: 1` on the upstream request, a counter, and
/// dynamic metadata `aiproxy.seen`. Optional `"demo"` knobs exercise the rest of the wrapper.
struct DemoConfig {
    requests: CounterId,
    body_len_header: bool,
    rewrite_request_body: Option<String>,
    rewrite_response_chunks: bool,
    local_reply_path: Option<String>,
    callout_path: Option<String>,
    callout_cluster: Option<String>,
    panic_path: Option<String>,
}

impl HttpFilterConfig for DemoConfig {
    fn new_filter(&self) -> Box<dyn HttpFilter> {
        Box::new(DemoFilter {
            requests: self.requests,
            body_len_header: self.body_len_header,
            rewrite_request_body: self.rewrite_request_body.clone(),
            rewrite_response_chunks: self.rewrite_response_chunks,
            local_reply_path: self.local_reply_path.clone(),
            callout_path: self.callout_path.clone(),
            callout_cluster: self.callout_cluster.clone(),
            panic_path: self.panic_path.clone(),
        })
    }
}

struct DemoFilter {
    requests: CounterId,
    body_len_header: bool,
    rewrite_request_body: Option<String>,
    rewrite_response_chunks: bool,
    local_reply_path: Option<String>,
    callout_path: Option<String>,
    callout_cluster: Option<String>,
    panic_path: Option<String>,
}

impl DemoFilter {
    fn wants_body(&self) -> bool {
        self.body_len_header || self.rewrite_request_body.is_some()
    }
}

impl HttpFilter for DemoFilter {
    fn on_request_headers(
        &mut self,
        envoy: &mut EnvoyHttpFilter,
        end_of_stream: bool,
    ) -> HeadersStatus {
        envoy.set_request_header("x-aiproxy-seen", "1");
        let _ = envoy.increment_counter(self.requests, 1);
        envoy.set_metadata_string("aiproxy", "seen", "1");
        envoy.set_metadata_number("aiproxy", "seen_n", 1.0);
        let path = envoy.request_header_str(":path").unwrap_or_default();
        if self.panic_path.as_deref() == Some(path.as_str()) {
            panic!("demo panic requested");
        }
        if self.local_reply_path.as_deref() == Some(path.as_str()) {
            envoy.send_local_reply(
                418,
                &[("x-aiproxy-local", b"1")],
                b"aiproxy local reply\n",
                Some("aiproxy_demo"),
            );
            return HeadersStatus::StopIteration;
        }
        if let (Some(p), Some(cluster)) = (&self.callout_path, &self.callout_cluster) {
            if *p == path {
                let headers: [(&str, &[u8]); 3] = [
                    (":method", b"GET"),
                    (":path", b"/callout"),
                    ("host", b"callout"),
                ];
                return match envoy.callout(cluster, &headers, b"", 5000) {
                    Ok(_) => HeadersStatus::StopAllIterationAndBuffer,
                    Err(e) => {
                        envoy.send_local_reply(
                            502,
                            &[],
                            format!("callout failed: {e:?}\n").as_bytes(),
                            None,
                        );
                        HeadersStatus::StopIteration
                    }
                };
            }
        }
        if self.wants_body() && !end_of_stream {
            // Keep headers mutable until the whole body is seen.
            return HeadersStatus::StopIteration;
        }
        HeadersStatus::Continue
    }

    fn on_request_body(&mut self, envoy: &mut EnvoyHttpFilter, end_of_stream: bool) -> BodyStatus {
        if !self.wants_body() {
            return BodyStatus::Continue;
        }
        if !end_of_stream {
            return BodyStatus::StopIterationAndBuffer;
        }
        let body = envoy.request_body();
        if self.body_len_header {
            envoy.set_request_header("x-aiproxy-body-len", body.len().to_string());
        }
        if let Some(new_body) = &self.rewrite_request_body {
            envoy.set_request_body(new_body.as_bytes());
            envoy.set_request_header(":path", "/rewritten");
            envoy.clear_route_cache();
        }
        BodyStatus::Continue
    }

    fn on_response_headers(
        &mut self,
        envoy: &mut EnvoyHttpFilter,
        _end_of_stream: bool,
    ) -> HeadersStatus {
        if self.rewrite_response_chunks {
            // Chunk rewriting changes the length: drop it so Envoy re-frames the body.
            envoy.remove_response_header("content-length");
        }
        HeadersStatus::Continue
    }

    fn on_response_body(
        &mut self,
        envoy: &mut EnvoyHttpFilter,
        _end_of_stream: bool,
    ) -> BodyStatus {
        if self.rewrite_response_chunks {
            // Each chunk is replaced in place as it passes: upper-cased and bracketed.
            let chunk = envoy.response_chunk();
            if !chunk.is_empty() {
                let mut out = Vec::with_capacity(chunk.len() + 2);
                out.push(b'[');
                out.extend_from_slice(&chunk.to_ascii_uppercase());
                out.push(b']');
                envoy.replace_response_chunk(&out);
            }
        }
        BodyStatus::Continue
    }

    fn on_callout_done(
        &mut self,
        envoy: &mut EnvoyHttpFilter,
        _callout_id: u64,
        response: CalloutResponse,
    ) {
        let mut body = b"callout: ".to_vec();
        body.extend_from_slice(&response.body);
        let status = response.header(":status").unwrap_or(b"?").to_vec();
        envoy.send_local_reply(200, &[("x-aiproxy-callout-status", &status)], &body, None);
    }
}
