use super::*;
use crate::exchange::{Exchange, RequestAction};
use std::collections::HashMap;
use std::sync::Arc;

fn pattern(s: &str) -> StatusPattern {
    StatusPattern::parse(s).unwrap()
}

fn cfg(enabled: bool, failure: u32, success: u32) -> FailoverConfig {
    FailoverConfig {
        enabled,
        failure_threshold: failure,
        success_threshold: success,
        health_check_interval_ms: 1000,
        health_check_timeout_ms: 500,
        health_check_model: "gpt-4o-mini".into(),
        failover_on_status: default_patterns(),
    }
}

fn pick(index: usize) -> Pick {
    Pick {
        index,
        trial: false,
    }
}

#[test]
fn patterns_match_the_whole_status() {
    let p4 = pattern("4.*");
    assert!(p4.matches(400) && p4.matches(429) && p4.matches(499));
    // Anchored: Higress's unanchored "4.*" would also take 504 and 304.
    assert!(!p4.matches(504) && !p4.matches(304) && !p4.matches(200));
    let p = pattern("5[0-9][0-9]");
    assert!(p.matches(503) && !p.matches(403));
    let alt = pattern("429|50[23]");
    assert!(alt.matches(429) && alt.matches(502) && alt.matches(503) && !alt.matches(500));
    assert!(pattern("^429$").matches(429));
    assert!(pattern("4[^0]9").matches(429) && !pattern("4[^0]9").matches(409));
    assert!(pattern("5?0+").matches(500) && pattern("5.?3").matches(53));
    for bad in ["", "4(2)9", "4\\d", "[12", "a|", "4{2}"] {
        assert!(StatusPattern::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn parse_defaults_and_higress_zero_means_default() {
    let obj: Map<String, Value> = serde_json::from_str(
        r#"{"failover": {"enabled": true, "healthCheckModel": "m", "failureThreshold": 0},
            "retryOnFailure": {"enabled": true}}"#,
    )
    .unwrap();
    let (f, r) = parse(&obj).unwrap();
    assert!(f.enabled);
    assert_eq!(f.failure_threshold, 3);
    assert_eq!(f.success_threshold, 1);
    assert_eq!(f.health_check_interval_ms, 5000);
    assert_eq!(f.health_check_timeout_ms, 5000);
    assert_eq!(
        f.failover_on_status
            .iter()
            .map(StatusPattern::as_str)
            .collect::<Vec<_>>(),
        ["4.*", "5.*"]
    );
    assert!(r.enabled);
    assert_eq!(r.max_retries, 1);
    assert_eq!(r.retry_timeout_ms, 30_000);
    let (f, r) = parse(&Map::new()).unwrap();
    assert!(!f.enabled && !r.enabled);
}

#[test]
fn parse_errors_name_the_field() {
    let cases = [
        (
            r#"{"failover": {"enabled": true}}"#,
            "provider.failover.healthCheckModel",
        ),
        (r#"{"failover": []}"#, "provider.failover"),
        (
            r#"{"failover": {"enabled": "yes"}}"#,
            "provider.failover.enabled",
        ),
        (
            r#"{"failover": {"failureThreshold": -1}}"#,
            "provider.failover.failureThreshold",
        ),
        (
            r#"{"failover": {"failoverOnStatus": ["4.*", "4(0)"]}}"#,
            "provider.failover.failoverOnStatus[1]",
        ),
        (
            r#"{"retryOnFailure": {"retryOnStatus": "5.*"}}"#,
            "provider.retryOnFailure.retryOnStatus",
        ),
        (
            r#"{"retryOnFailure": {"retryTimeout": "1s"}}"#,
            "provider.retryOnFailure.retryTimeout",
        ),
    ];
    for (json, path) in cases {
        let obj: Map<String, Value> = serde_json::from_str(json).unwrap();
        assert_eq!(parse(&obj).unwrap_err().path, path, "{json}");
    }
}

#[test]
fn config_parses_the_blocks_through_provider_config() {
    let err = crate::config::ProviderConfig::from_json(
        br#"{"provider": {"type": "openai", "apiTokens": ["a"], "failover": {"enabled": true}}}"#,
    )
    .unwrap_err();
    assert_eq!(err.path, "provider.failover.healthCheckModel");
    let c = crate::config::ProviderConfig::from_json(
        br#"{"provider": {"type": "openai", "apiTokens": ["a"],
             "retryOnFailure": {"enabled": true, "maxRetries": 2, "retryOnStatus": ["503"]}}}"#,
    )
    .unwrap();
    assert_eq!(c.retry_on_failure.max_retries, 2);
    assert!(c.retry_on_failure.retry_on_status[0].matches(503));
}

#[test]
fn consecutive_failures_take_a_token_out_and_success_resets() {
    let pool = TokenPool::new(2, &cfg(true, 3, 1));
    pool.report_at(pick(0), 429, 10);
    pool.report_at(pick(0), 429, 11);
    pool.report_at(pick(0), 200, 12); // resets the run
    pool.report_at(pick(0), 429, 13);
    pool.report_at(pick(0), 400, 14);
    assert!(!pool.is_out(0));
    pool.report_at(pick(0), 302, 15); // neither success nor a failover status: no change
    pool.report_at(pick(0), 503, 16);
    assert!(pool.is_out(0));
    assert_eq!(pool.tokens_out(), 1);
    assert_eq!(pool.failovers_total(), 1);
    assert_eq!(pool.take_events(), (1, 0));
    assert_eq!(pool.take_events(), (0, 0));
    // Only the healthy token is chosen now.
    for _ in 0..50 {
        assert_eq!(pool.pick_at(20, &[]).map(|p| p.index), Some(1));
    }
}

#[test]
fn custom_failover_status_only() {
    let mut c = cfg(true, 1, 1);
    c.failover_on_status = vec![pattern("429")];
    let pool = TokenPool::new(2, &c);
    pool.report_at(pick(0), 500, 1);
    assert!(!pool.is_out(0));
    pool.report_at(pick(0), 429, 2);
    assert!(pool.is_out(0));
}

#[test]
fn disabled_pool_never_takes_tokens_out_and_stays_uniform() {
    let pool = TokenPool::new(3, &cfg(false, 1, 1));
    for _ in 0..10 {
        pool.report_at(pick(1), 500, 1);
    }
    assert!(!pool.is_out(1));
    let mut seen = [0u32; 3];
    for _ in 0..3000 {
        seen[pool.pick_at(1, &[]).unwrap().index] += 1;
    }
    assert!(seen.iter().all(|n| *n > 800), "{seen:?}");
}

#[test]
fn health_checks_bring_a_token_back_after_success_threshold() {
    let pool = TokenPool::new(2, &cfg(true, 1, 2));
    pool.set_host_health_checks(true);
    pool.report_at(pick(0), 500, 100);
    assert!(pool.is_out(0));
    assert!(!pool.checks_due_at(500));
    assert!(pool.claim_due_at(500).is_empty());
    assert!(pool.checks_due_at(1100));
    assert_eq!(pool.claim_due_at(1100), vec![0]);
    // Claimed: not handed out again before its result or timeout.
    assert!(pool.claim_due_at(1200).is_empty());
    pool.check_result_at(0, true, 1300);
    assert!(pool.is_out(0), "successThreshold is 2");
    assert!(pool.claim_due_at(1400).is_empty());
    assert_eq!(pool.claim_due_at(2300), vec![0]);
    pool.check_result_at(0, false, 2400); // a failure resets the run
    assert_eq!(pool.claim_due_at(3400), vec![0]);
    pool.check_result_at(0, true, 3500);
    assert_eq!(pool.claim_due_at(4500), vec![0]);
    pool.check_result_at(0, true, 4600);
    assert!(!pool.is_out(0));
    assert_eq!(pool.tokens_out(), 0);
    assert_eq!(pool.restores_total(), 1);
    // A lost result: the claim expires after the check timeout.
    pool.report_at(pick(1), 500, 5000);
    assert_eq!(pool.claim_due_at(6000), vec![1]);
    assert!(pool.claim_due_at(6400).is_empty());
    assert_eq!(pool.claim_due_at(6500), vec![1]);
}

#[test]
fn half_open_trial_when_the_host_sends_no_checks() {
    let pool = TokenPool::new(2, &cfg(true, 1, 1));
    pool.report_at(pick(0), 429, 0);
    assert_eq!(pool.pick_at(500, &[]), Some(pick(1)));
    let trial = pool.pick_at(1000, &[]).unwrap();
    assert_eq!(
        trial,
        Pick {
            index: 0,
            trial: true
        }
    );
    // One trial at a time.
    assert_eq!(pool.pick_at(1001, &[]), Some(pick(1)));
    pool.report_at(trial, 429, 1100);
    assert!(pool.is_out(0));
    assert_eq!(pool.pick_at(1500, &[]), Some(pick(1)));
    let trial = pool.pick_at(2100, &[]).unwrap();
    assert!(trial.trial);
    pool.report_at(trial, 200, 2200);
    assert!(!pool.is_out(0));
    // With host checks on, no trials.
    pool.set_host_health_checks(true);
    pool.report_at(pick(0), 429, 3000);
    for _ in 0..20 {
        assert_eq!(pool.pick_at(9000, &[]), Some(pick(1)));
    }
}

#[test]
fn every_token_out_picks_the_least_recently_failed() {
    let pool = TokenPool::new(3, &cfg(true, 1, 1));
    pool.set_host_health_checks(true);
    pool.report_at(pick(1), 500, 10);
    pool.report_at(pick(0), 500, 20);
    pool.report_at(pick(2), 500, 30);
    assert_eq!(pool.tokens_out(), 3);
    assert_eq!(pool.pick_at(40, &[]), Some(pick(1)));
    assert_eq!(pool.pick_at(40, &[1]), Some(pick(0)));
    assert_eq!(pool.pick_at(40, &[0, 1, 2]), None);
    // A failed check refreshes the failure time.
    pool.check_result_at(1, false, 50);
    assert_eq!(pool.pick_at(60, &[]), Some(pick(0)));
}

#[test]
fn health_state_is_consistent_under_threads() {
    let pool = Arc::new(TokenPool::new(4, &cfg(true, 5, 1)));
    pool.set_host_health_checks(true);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                let mut picks = HashMap::new();
                for i in 0..20_000u64 {
                    let p = pool.pick_at(i, &[]).unwrap();
                    *picks.entry(p.index).or_insert(0u32) += 1;
                    // Token 3 always fails; the others always succeed.
                    let status = if p.index == 3 { 503 } else { 200 };
                    pool.report_at(p, status, i);
                    if t == 0 && i % 1000 == 0 {
                        for idx in pool.claim_due_at(i) {
                            pool.check_result_at(idx, idx != 3, i);
                        }
                    }
                }
                picks
            })
        })
        .collect();
    let mut total = HashMap::new();
    for t in threads {
        for (k, v) in t.join().unwrap() {
            *total.entry(k).or_insert(0u32) += v;
        }
    }
    assert!(pool.is_out(3));
    assert_eq!(pool.tokens_out(), 1);
    assert_eq!(pool.failovers_total(), 1, "left the rotation exactly once");
    assert_eq!(pool.restores_total(), 0);
    // Token 3 got at most a few requests per thread before the threshold (racing reports).
    assert!(total.get(&3).copied().unwrap_or(0) < 8 * 20, "{total:?}");
    // The three healthy tokens share the rest about evenly.
    for i in 0..3 {
        let n = total[&i];
        assert!((45_000..=62_000).contains(&n), "{total:?}");
    }
}

#[test]
fn threads_racing_on_checks_restore_once() {
    let pool = Arc::new(TokenPool::new(2, &cfg(true, 1, 3)));
    pool.report_at(pick(0), 500, 0);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    pool.check_result_at(0, true, 10);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(!pool.is_out(0));
    assert_eq!(pool.tokens_out(), 0);
    assert_eq!(pool.restores_total(), 1);
}

fn config(extra: &str) -> Arc<Config> {
    let json =
        format!(r#"{{"provider": {{"type": "openai", "apiTokens": ["tok-a", "tok-b"]{extra}}}}}"#);
    Config::from_json(json.as_bytes()).unwrap()
}

const BODY: &[u8] = br#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#;

fn bearer(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn forward(ex: &mut Exchange, stream: bool) -> crate::exchange::UpstreamRequest {
    let body = if stream {
        br#"{"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}"#
            .as_slice()
    } else {
        BODY
    };
    match ex
        .on_request("POST", "/v1/chat/completions", &[], body)
        .unwrap()
    {
        RequestAction::Forward(up) => up,
        other => panic!("{other:?}"),
    }
}

#[test]
fn exchange_retries_with_the_other_token_and_translates_the_answer() {
    let cfg = config(r#", "retryOnFailure": {"enabled": true, "maxRetries": 3}"#);
    let mut ex = Exchange::new(Arc::clone(&cfg));
    let first = forward(&mut ex, false);
    let retry = ex.retry_request(503).expect("503 is retryable");
    assert_ne!(bearer(&first.set_headers), bearer(&retry.set_headers));
    assert_eq!(retry.authority, first.authority);
    assert_eq!(retry.path, first.path);
    assert_eq!(retry.body, first.body);
    assert_eq!(ex.retries(), 1);
    // Both tokens tried: no third attempt even though maxRetries allows it.
    assert_eq!(ex.retry_request(503), None);
    let rh = ex
        .on_response_headers(503, &[("content-type", "application/json")])
        .unwrap();
    assert_eq!(rh.mode, crate::exchange::ResponseMode::Buffer);
    let out = ex
        .on_response_body(br#"{"error": {"message": "overloaded"}}"#, true)
        .unwrap();
    assert_eq!(out.status, Some(503));
}

#[test]
fn exchange_does_not_retry_non_retryable_or_disabled_or_after_headers() {
    let cfg = config(r#", "retryOnFailure": {"enabled": true, "retryOnStatus": ["5.*"]}"#);
    let mut ex = Exchange::new(Arc::clone(&cfg));
    forward(&mut ex, false);
    assert_eq!(ex.retry_request(400), None);
    assert_eq!(ex.retry_request(200), None);
    ex.on_response_headers(400, &[("content-type", "application/json")])
        .unwrap();
    assert_eq!(ex.retry_request(503), None, "after the response headers");

    let cfg = config("");
    let mut ex = Exchange::new(cfg);
    forward(&mut ex, false);
    assert_eq!(ex.retry_request(503), None, "retryOnFailure disabled");

    // maxRetries 1 with three tokens: one retry only.
    let cfg = Config::from_json(
        br#"{"provider": {"type": "openai", "apiTokens": ["a", "b", "c"],
             "retryOnFailure": {"enabled": true}}}"#,
    )
    .unwrap();
    let mut ex = Exchange::new(cfg);
    forward(&mut ex, true);
    assert!(ex.retry_request(429).is_some());
    assert_eq!(ex.retry_request(429), None);
}

#[test]
fn exchange_retry_of_a_stream_yields_one_clean_stream() {
    let cfg = config(r#", "retryOnFailure": {"enabled": true}"#);
    let mut ex = Exchange::new(cfg);
    forward(&mut ex, true);
    assert!(ex.retry_request(503).is_some());
    assert_eq!(ex.retry_request(200), None);
    let rh = ex
        .on_response_headers(200, &[("content-type", "text/event-stream")])
        .unwrap();
    assert_eq!(rh.mode, crate::exchange::ResponseMode::Stream);
    let sse = b"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n";
    let out = ex.on_response_body(sse, true).unwrap();
    let text = String::from_utf8_lossy(out.data).to_string();
    assert!(text.contains("\"content\":\"hi\""), "{text}");
    assert_eq!(text.matches("[DONE]").count(), 1, "{text}");
}

#[test]
fn exchange_reports_statuses_to_the_pool() {
    let cfg = config(
        r#", "failover": {"enabled": true, "healthCheckModel": "gpt-4o-mini", "failureThreshold": 2}"#,
    );
    cfg.token_pool().set_host_health_checks(true);
    let mut bad = None;
    // Drive exchanges until one token has failed twice in a row.
    for _ in 0..200 {
        let mut ex = Exchange::new(Arc::clone(&cfg));
        let up = forward(&mut ex, false);
        let token = bearer(&up.set_headers);
        let status = if token.ends_with("tok-a") { 429 } else { 200 };
        ex.on_response_headers(status, &[("content-type", "application/json")])
            .unwrap();
        if cfg.token_pool().tokens_out() == 1 {
            bad = Some(token);
            break;
        }
    }
    assert_eq!(bad.as_deref(), Some("Bearer tok-a"));
    assert!(cfg.token_pool().is_out(0));
    for _ in 0..20 {
        let mut ex = Exchange::new(Arc::clone(&cfg));
        assert_eq!(bearer(&forward(&mut ex, false).set_headers), "Bearer tok-b");
    }
}

#[test]
fn health_check_request_is_built_by_the_provider() {
    let cfg = config(
        r#", "failover": {"enabled": true, "healthCheckModel": "probe", "failureThreshold": 1,
             "healthCheckInterval": 1}, "modelMapping": {"probe": "gpt-4o-mini"}"#,
    );
    cfg.token_pool().report_at(pick(1), 401, 0);
    let checks = cfg.due_health_checks_at(10);
    assert_eq!(checks.len(), 1);
    let c = &checks[0];
    assert_eq!(c.token_index, 1);
    assert_eq!(c.authority, "api.openai.com");
    assert_eq!(c.path, "/v1/chat/completions");
    assert_eq!(bearer(&c.headers), "Bearer tok-b");
    assert_eq!(c.timeout_ms, 5000);
    let body: Value = serde_json::from_slice(&c.body).unwrap();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["messages"][0]["content"], HEALTH_CHECK_PROMPT);
    cfg.on_health_check_result(1, 200);
    assert!(!cfg.token_pool().is_out(1));
    // Health-check requests must not leak the token into Debug output.
    assert!(!format!("{:?}", cfg.token_pool()).contains("tok-"));
}
