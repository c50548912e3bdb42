//! Token failover (`failover`) and request retries (`retryOnFailure`), configured with the field
//! names and defaults of Higress's ai-proxy plugin.
//!
//! * [`TokenPool`]: the health of every API token of one configuration, shared by all exchanges
//!   and threads (atomics only). A token whose replies match `failoverOnStatus`
//!   `failureThreshold` times in a row leaves the rotation; it comes back after `successThreshold`
//!   passed health checks. Health checks are minimal chat requests with `healthCheckModel` that
//!   the host sends ([`Config::due_health_checks`], [`Config::on_health_check_result`]); a host
//!   that never sends them gets half-open trials instead: once per `healthCheckInterval` one live
//!   request goes to the out token and its answer counts as the check. With every token out,
//!   requests go to the least recently failed one.
//! * [`Attempt`]: per-exchange bookkeeping (which token, which were tried, the body kept for a
//!   retry).
//!
//! Status patterns are anchored regular expressions over the three-digit status (`"4.*"`,
//! `"5.*"`, `"429"`, `"5[0-9][0-9]"`, `"502|503"`); the subset is literals, `.`, classes `[..]`,
//! the quantifiers `* + ?`, and top-level `|`. Higress matches them unanchored; anchoring keeps
//! `"4.*"` from also matching `504`.

use crate::config::{type_name, Fields, ProviderConfig};
use crate::error::{ConfigError, ProxyError};
use crate::exchange::Config;
use crate::providers::{Api, RequestInfo};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
pub const DEFAULT_SUCCESS_THRESHOLD: u32 = 1;
pub const DEFAULT_HEALTH_CHECK_INTERVAL_MS: u64 = 5000;
pub const DEFAULT_HEALTH_CHECK_TIMEOUT_MS: u64 = 5000;
pub const DEFAULT_MAX_RETRIES: u32 = 1;
/// Higress documents 30000 ms for `retryTimeout`.
pub const DEFAULT_RETRY_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_STATUS_PATTERNS: [&str; 2] = ["4.*", "5.*"];
/// The user message of a health check (what Higress sends).
pub const HEALTH_CHECK_PROMPT: &str = "who are you?";

// ------------------------------------------------------------------------------------------
// Configuration
// ------------------------------------------------------------------------------------------

/// `provider.failover`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverConfig {
    pub enabled: bool,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub health_check_interval_ms: u64,
    pub health_check_timeout_ms: u64,
    pub health_check_model: String,
    pub failover_on_status: Vec<StatusPattern>,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            success_threshold: DEFAULT_SUCCESS_THRESHOLD,
            health_check_interval_ms: DEFAULT_HEALTH_CHECK_INTERVAL_MS,
            health_check_timeout_ms: DEFAULT_HEALTH_CHECK_TIMEOUT_MS,
            health_check_model: String::new(),
            failover_on_status: default_patterns(),
        }
    }
}

/// `provider.retryOnFailure`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    pub enabled: bool,
    pub max_retries: u32,
    pub retry_timeout_ms: u64,
    pub retry_on_status: Vec<StatusPattern>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_timeout_ms: DEFAULT_RETRY_TIMEOUT_MS,
            retry_on_status: default_patterns(),
        }
    }
}

fn default_patterns() -> Vec<StatusPattern> {
    DEFAULT_STATUS_PATTERNS
        .iter()
        .map(|p| StatusPattern::parse(p).expect("default patterns are valid"))
        .collect()
}

/// Parses `failover` and `retryOnFailure` out of the `provider` object.
pub fn parse(provider: &Map<String, Value>) -> Result<(FailoverConfig, RetryConfig), ConfigError> {
    let mut failover = FailoverConfig::default();
    if let Some(obj) = object(provider, "failover")? {
        let f = Fields::new(obj, "provider.failover");
        failover.enabled = f.bool("enabled")?.unwrap_or(false);
        // Like Higress, 0 (or absent) means the default.
        failover.failure_threshold = f.count("failureThreshold", DEFAULT_FAILURE_THRESHOLD)?;
        failover.success_threshold = f.count("successThreshold", DEFAULT_SUCCESS_THRESHOLD)?;
        failover.health_check_interval_ms =
            f.millis("healthCheckInterval", DEFAULT_HEALTH_CHECK_INTERVAL_MS)?;
        failover.health_check_timeout_ms =
            f.millis("healthCheckTimeout", DEFAULT_HEALTH_CHECK_TIMEOUT_MS)?;
        failover.health_check_model = f.str("healthCheckModel")?.unwrap_or_default().to_string();
        if let Some(p) = f.patterns("failoverOnStatus")? {
            failover.failover_on_status = p;
        }
        if failover.enabled && failover.health_check_model.is_empty() {
            return Err(ConfigError::invalid(
                f.at("healthCheckModel"),
                "required when failover is enabled",
            ));
        }
    }
    let mut retry = RetryConfig::default();
    if let Some(obj) = object(provider, "retryOnFailure")? {
        let f = Fields::new(obj, "provider.retryOnFailure");
        retry.enabled = f.bool("enabled")?.unwrap_or(false);
        retry.max_retries = f.count("maxRetries", DEFAULT_MAX_RETRIES)?;
        retry.retry_timeout_ms = f.millis("retryTimeout", DEFAULT_RETRY_TIMEOUT_MS)?;
        if let Some(p) = f.patterns("retryOnStatus")? {
            retry.retry_on_status = p;
        }
    }
    Ok((failover, retry))
}

fn object<'a>(
    provider: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, ConfigError> {
    match provider.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(v) => Err(Fields::new(provider, "provider").wrong(key, "an object", v)),
    }
}

/// The readers `failover` and `retryOnFailure` add to the shared [`Fields`].
trait FailoverFields {
    fn count(&self, key: &str, default: u32) -> Result<u32, ConfigError>;
    fn millis(&self, key: &str, default: u64) -> Result<u64, ConfigError>;
    fn patterns(&self, key: &str) -> Result<Option<Vec<StatusPattern>>, ConfigError>;
}

impl FailoverFields for Fields<'_> {
    fn count(&self, key: &str, default: u32) -> Result<u32, ConfigError> {
        Ok(match self.u64_at_most(key, 1_000_000)? {
            None | Some(0) => default,
            Some(n) => n as u32,
        })
    }

    /// Milliseconds, at most a day.
    fn millis(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        Ok(match self.u64_at_most(key, 86_400_000)? {
            None | Some(0) => default,
            Some(n) => n,
        })
    }

    /// `None` when absent or empty (Higress then uses the default patterns).
    fn patterns(&self, key: &str) -> Result<Option<Vec<StatusPattern>>, ConfigError> {
        let items = match self.get(key) {
            None => return Ok(None),
            Some(Value::Array(items)) => items,
            Some(v) => return Err(self.wrong(key, "an array of strings", v)),
        };
        if items.is_empty() {
            return Ok(None);
        }
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let path = format!("{}[{i}]", self.at(key));
                match v {
                    Value::String(s) => StatusPattern::parse(s)
                        .map_err(|why| ConfigError::invalid(path, format!("'{s}': {why}"))),
                    other => Err(ConfigError::invalid(
                        path,
                        format!("expected a string, found {}", type_name(other)),
                    )),
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

// ------------------------------------------------------------------------------------------
// Status patterns
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    Any,
    Byte(u8),
    /// Inclusive ranges; `negated` for `[^..]`.
    Class {
        ranges: Vec<(u8, u8)>,
        negated: bool,
    },
}

impl Atom {
    fn matches(&self, c: u8) -> bool {
        match self {
            Atom::Any => true,
            Atom::Byte(b) => *b == c,
            Atom::Class { ranges, negated } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rep {
    One,
    ZeroOrOne,
    ZeroOrMore,
    OneOrMore,
}

/// One `failoverOnStatus` / `retryOnStatus` entry, matched against the whole status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusPattern {
    source: String,
    /// Alternatives, each a sequence of quantified atoms.
    alts: Vec<Vec<(Atom, Rep)>>,
}

impl StatusPattern {
    pub fn parse(src: &str) -> Result<Self, String> {
        let body = src.strip_prefix('^').unwrap_or(src);
        let body = body.strip_suffix('$').unwrap_or(body);
        if body.is_empty() {
            return Err("empty pattern".into());
        }
        let mut alts = Vec::new();
        for alt in body.split('|') {
            let b = alt.as_bytes();
            let mut seq: Vec<(Atom, Rep)> = Vec::new();
            let mut i = 0;
            while i < b.len() {
                let atom = match b[i] {
                    b'.' => Atom::Any,
                    b'[' => {
                        let end = b[i..]
                            .iter()
                            .position(|c| *c == b']')
                            .ok_or("unclosed '['")?
                            + i;
                        let mut inner = &b[i + 1..end];
                        let negated = inner.first() == Some(&b'^');
                        if negated {
                            inner = &inner[1..];
                        }
                        if inner.is_empty() {
                            return Err("empty character class".into());
                        }
                        let mut ranges = Vec::new();
                        let mut k = 0;
                        while k < inner.len() {
                            if k + 2 < inner.len() && inner[k + 1] == b'-' {
                                ranges.push((inner[k], inner[k + 2]));
                                k += 3;
                            } else {
                                ranges.push((inner[k], inner[k]));
                                k += 1;
                            }
                        }
                        i = end;
                        Atom::Class { ranges, negated }
                    }
                    c if c.is_ascii_alphanumeric() => Atom::Byte(c),
                    c => {
                        return Err(format!(
                            "unsupported character '{}' (supported: digits, '.', '[..]', '*', '+', '?', '|')",
                            c as char
                        ))
                    }
                };
                i += 1;
                let rep = match b.get(i) {
                    Some(b'*') => Rep::ZeroOrMore,
                    Some(b'+') => Rep::OneOrMore,
                    Some(b'?') => Rep::ZeroOrOne,
                    _ => Rep::One,
                };
                if rep != Rep::One {
                    i += 1;
                }
                seq.push((atom, rep));
            }
            if seq.is_empty() {
                return Err("empty alternative".into());
            }
            alts.push(seq);
        }
        Ok(Self {
            source: src.to_string(),
            alts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn matches(&self, status: u16) -> bool {
        let mut buf = [0u8; 20];
        let s = crate::json_write::digits(u64::from(status), &mut buf);
        self.alts.iter().any(|seq| match_seq(seq, s))
    }
}

fn match_seq(seq: &[(Atom, Rep)], s: &[u8]) -> bool {
    let Some(((atom, rep), rest)) = seq.split_first() else {
        return s.is_empty();
    };
    match rep {
        Rep::One => !s.is_empty() && atom.matches(s[0]) && match_seq(rest, &s[1..]),
        Rep::ZeroOrOne => {
            (!s.is_empty() && atom.matches(s[0]) && match_seq(rest, &s[1..])) || match_seq(rest, s)
        }
        Rep::ZeroOrMore | Rep::OneOrMore => {
            let min = usize::from(*rep == Rep::OneOrMore);
            let run = s.iter().take_while(|c| atom.matches(**c)).count();
            (min..=run).rev().any(|k| match_seq(rest, &s[k..]))
        }
    }
}

/// Whether any pattern matches `status`.
pub fn any_matches(patterns: &[StatusPattern], status: u16) -> bool {
    patterns.iter().any(|p| p.matches(status))
}

// ------------------------------------------------------------------------------------------
// Token health
// ------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Slot {
    out: AtomicBool,
    /// Consecutive matching failures while in the rotation.
    failures: AtomicU32,
    /// Consecutive passed checks while out.
    successes: AtomicU32,
    /// When the token last failed (left the rotation or failed a check), in pool milliseconds.
    failed_at: AtomicU64,
    /// When the next check or trial may start; a started one pushes it by the check timeout, so
    /// a lost result only delays the next check.
    next_check: AtomicU64,
}

/// The chosen token of one upstream attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub index: usize,
    /// A half-open trial of an out token: its answer counts as a health check.
    pub trial: bool,
}

/// Health of every API token of one configuration. `Send + Sync`, lock-free.
#[derive(Debug)]
pub struct TokenPool {
    enabled: bool,
    failure_threshold: u32,
    success_threshold: u32,
    interval_ms: u64,
    timeout_ms: u64,
    patterns: Vec<StatusPattern>,
    slots: Box<[Slot]>,
    out_count: AtomicUsize,
    /// The host sends health checks; no half-open trials on live traffic.
    host_checks: AtomicBool,
    epoch: Instant,
    failovers: AtomicU64,
    restores: AtomicU64,
    /// Events not yet collected by [`TokenPool::take_events`].
    failovers_pending: AtomicU64,
    restores_pending: AtomicU64,
}

impl TokenPool {
    pub fn new(tokens: usize, cfg: &FailoverConfig) -> Self {
        Self {
            enabled: cfg.enabled && tokens > 0,
            failure_threshold: cfg.failure_threshold.max(1),
            success_threshold: cfg.success_threshold.max(1),
            interval_ms: cfg.health_check_interval_ms,
            timeout_ms: cfg.health_check_timeout_ms,
            patterns: cfg.failover_on_status.clone(),
            slots: (0..tokens).map(|_| Slot::default()).collect(),
            out_count: AtomicUsize::new(0),
            host_checks: AtomicBool::new(false),
            epoch: Instant::now(),
            failovers: AtomicU64::new(0),
            restores: AtomicU64::new(0),
            failovers_pending: AtomicU64::new(0),
            restores_pending: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Milliseconds since the pool was created (the clock of every `*_at` method).
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The host sends health checks ([`Config::due_health_checks`]): turns half-open trials off.
    pub fn set_host_health_checks(&self, on: bool) {
        self.host_checks.store(on, Ordering::Relaxed);
    }

    pub fn is_out(&self, index: usize) -> bool {
        self.slots
            .get(index)
            .is_some_and(|s| s.out.load(Ordering::Acquire))
    }

    pub fn tokens_out(&self) -> usize {
        self.out_count.load(Ordering::Relaxed)
    }

    /// Tokens that left the rotation / came back, since the pool was created.
    pub fn failovers_total(&self) -> u64 {
        self.failovers.load(Ordering::Relaxed)
    }

    pub fn restores_total(&self) -> u64 {
        self.restores.load(Ordering::Relaxed)
    }

    /// Failovers and restores since the previous call (for hosts that export counters).
    pub fn take_events(&self) -> (u64, u64) {
        if self.failovers_pending.load(Ordering::Relaxed) == 0
            && self.restores_pending.load(Ordering::Relaxed) == 0
        {
            return (0, 0);
        }
        (
            self.failovers_pending.swap(0, Ordering::Relaxed),
            self.restores_pending.swap(0, Ordering::Relaxed),
        )
    }

    /// A token for a new request; `None` when the configuration has none.
    pub fn pick(&self) -> Option<Pick> {
        self.pick_at(self.now_ms(), &[])
    }

    /// A token for a new attempt at `now`, not one of `exclude` if any other exists: uniform over
    /// healthy tokens; else a due half-open trial; else the least recently failed token.
    pub fn pick_at(&self, now: u64, exclude: &[u32]) -> Option<Pick> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let allowed = |i: usize| !exclude.contains(&(i as u32));
        if !self.enabled || self.out_count.load(Ordering::Relaxed) == 0 {
            if let Some(i) = uniform(n, allowed) {
                return Some(Pick {
                    index: i,
                    trial: false,
                });
            }
        }
        if self.enabled && !self.host_checks.load(Ordering::Relaxed) {
            // Half-open: at most one live trial per out token per interval.
            for (i, s) in self.slots.iter().enumerate() {
                if allowed(i) && s.out.load(Ordering::Acquire) && self.claim_check(s, now) {
                    return Some(Pick {
                        index: i,
                        trial: true,
                    });
                }
            }
        }
        let healthy = |i: usize| allowed(i) && !self.slots[i].out.load(Ordering::Acquire);
        if let Some(i) = uniform(n, healthy) {
            return Some(Pick {
                index: i,
                trial: false,
            });
        }
        // Every allowed token is out: the one that failed longest ago.
        (0..n)
            .filter(|i| allowed(*i))
            .min_by_key(|i| self.slots[*i].failed_at.load(Ordering::Relaxed))
            .map(|index| Pick {
                index,
                trial: false,
            })
    }

    /// Claims the next check of slot `s` if it is due.
    fn claim_check(&self, s: &Slot, now: u64) -> bool {
        let due = s.next_check.load(Ordering::Acquire);
        due <= now
            && s.next_check
                .compare_exchange(
                    due,
                    now + self.timeout_ms.max(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// The upstream's status for a request sent with token `pick`.
    pub fn report(&self, pick: Pick, status: u16) {
        self.report_at(pick, status, self.now_ms());
    }

    pub fn report_at(&self, pick: Pick, status: u16, now: u64) {
        if !self.enabled {
            return;
        }
        let Some(s) = self.slots.get(pick.index) else {
            return;
        };
        if pick.trial {
            let ok = (200..300).contains(&status);
            // A trial only judges the token by what failover cares about.
            if ok || any_matches(&self.patterns, status) {
                self.check_result_at(pick.index, ok, now);
            }
            return;
        }
        if s.out.load(Ordering::Acquire) {
            // Sent before it left the rotation: the checks decide now.
            return;
        }
        if (200..300).contains(&status) {
            if s.failures.load(Ordering::Relaxed) != 0 {
                s.failures.store(0, Ordering::Relaxed);
            }
        } else if any_matches(&self.patterns, status) {
            let failures = s.failures.fetch_add(1, Ordering::AcqRel) + 1;
            if failures >= self.failure_threshold {
                self.take_out(s, now);
            }
        }
    }

    fn take_out(&self, s: &Slot, now: u64) {
        if s.out
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            s.failures.store(0, Ordering::Relaxed);
            s.successes.store(0, Ordering::Relaxed);
            s.failed_at.store(now, Ordering::Relaxed);
            s.next_check
                .store(now + self.interval_ms, Ordering::Release);
            self.out_count.fetch_add(1, Ordering::AcqRel);
            self.failovers.fetch_add(1, Ordering::Relaxed);
            self.failovers_pending.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether a host-sent check is due for some out token (cheap; for deciding to schedule).
    pub fn checks_due(&self) -> bool {
        self.checks_due_at(self.now_ms())
    }

    pub fn checks_due_at(&self, now: u64) -> bool {
        self.enabled
            && self.out_count.load(Ordering::Relaxed) > 0
            && self.slots.iter().any(|s| {
                s.out.load(Ordering::Acquire) && s.next_check.load(Ordering::Acquire) <= now
            })
    }

    /// Claims and returns the out tokens whose check is due at `now`.
    pub fn claim_due_at(&self, now: u64) -> Vec<usize> {
        if !self.enabled || self.out_count.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.out.load(Ordering::Acquire) && self.claim_check(s, now))
            .map(|(i, _)| i)
            .collect()
    }

    /// The outcome of a health check (or trial) of token `index`.
    pub fn check_result_at(&self, index: usize, ok: bool, now: u64) {
        let Some(s) = self.slots.get(index) else {
            return;
        };
        if !s.out.load(Ordering::Acquire) {
            return;
        }
        if ok {
            let passed = s.successes.fetch_add(1, Ordering::AcqRel) + 1;
            if passed >= self.success_threshold {
                if s.out
                    .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    s.failures.store(0, Ordering::Relaxed);
                    s.successes.store(0, Ordering::Relaxed);
                    self.out_count.fetch_sub(1, Ordering::AcqRel);
                    self.restores.fetch_add(1, Ordering::Relaxed);
                    self.restores_pending.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        } else {
            s.successes.store(0, Ordering::Relaxed);
            s.failed_at.store(now, Ordering::Relaxed);
        }
        s.next_check
            .store(now + self.interval_ms, Ordering::Release);
    }
}

/// A uniformly random index in `0..n` among those `ok` accepts, without allocating.
fn uniform(n: usize, ok: impl Fn(usize) -> bool) -> Option<usize> {
    use rand::Rng;
    let count = (0..n).filter(|i| ok(*i)).count();
    match count {
        0 => None,
        1 => (0..n).find(|i| ok(*i)),
        c => {
            let k = rand::thread_rng().gen_range(0..c);
            (0..n).filter(|i| ok(*i)).nth(k)
        }
    }
}

// ------------------------------------------------------------------------------------------
// Per-exchange state
// ------------------------------------------------------------------------------------------

/// The token bookkeeping of one exchange.
#[derive(Debug, Default)]
pub struct Attempt {
    pick: Option<Pick>,
    /// The current attempt's status was reported to the pool.
    reported: bool,
    /// Tokens already used by this exchange.
    tried: Vec<u32>,
    pub(crate) retries: u32,
    /// The parsed request (after context), kept for a retry.
    pub(crate) body: Option<Value>,
}

impl Attempt {
    /// Chooses the token of the first attempt; "" when the configuration has none.
    pub(crate) fn first<'c>(&mut self, cfg: &'c Config) -> &'c str {
        self.pick = cfg.tokens.pick();
        self.token(cfg)
    }

    fn token<'c>(&self, cfg: &'c Config) -> &'c str {
        match self.pick {
            Some(p) => {
                let idx = p.index;
                cfg.provider.api_tokens[idx].expose()
            }
            None => "",
        }
    }

    /// Keeps the request for a retry when retries are on.
    pub(crate) fn keep_body(&mut self, cfg: &Config, body: &Value) {
        if cfg.provider.retry_on_failure.enabled && self.body.is_none() {
            self.body = Some(body.clone());
        }
    }

    /// Reports the current attempt's upstream status once.
    pub(crate) fn report(&mut self, cfg: &Config, status: u16) {
        if !self.reported {
            self.reported = true;
            if let Some(p) = self.pick {
                cfg.tokens.report(p, status);
            }
        }
    }

    /// The host did not send the retry it was given: the response it has is the previous
    /// attempt's, which was already reported.
    pub(crate) fn retry_not_sent(&mut self) {
        self.reported = true;
    }

    /// Whether `status` allows another attempt; if so switches to a new token and returns it.
    pub(crate) fn next<'c>(&mut self, cfg: &'c Config, status: u16) -> Option<&'c str> {
        let r = &cfg.provider.retry_on_failure;
        if !r.enabled
            || self.retries >= r.max_retries
            || self.body.is_none()
            || !any_matches(&r.retry_on_status, status)
        {
            return None;
        }
        if let Some(p) = self.pick {
            if !self.tried.contains(&(p.index as u32)) {
                self.tried.push(p.index as u32);
            }
        }
        let pool = &cfg.tokens;
        // Another token, as Higress does: never the ones this exchange already used.
        let next = pool.pick_at(pool.now_ms(), &self.tried)?;
        if self.tried.contains(&(next.index as u32)) {
            return None;
        }
        self.pick = Some(next);
        self.reported = false;
        self.retries += 1;
        Some(self.token(cfg))
    }
}

// ------------------------------------------------------------------------------------------
// Health checks through the host
// ------------------------------------------------------------------------------------------

/// A health-check request for the host to send (POST); report the outcome with
/// [`Config::on_health_check_result`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub token_index: usize,
    pub authority: String,
    /// Path with query.
    pub path: String,
    /// Every header to send besides `:method`, `:path` and `:authority`.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u64,
}

impl Config {
    /// The token pool of this configuration.
    pub fn token_pool(&self) -> &TokenPool {
        &self.tokens
    }

    /// Health checks due now, one per out token whose interval has passed. Each returned check
    /// is claimed: it is not returned again before its result or its timeout. Calling this tells
    /// the core that the host sends checks, which turns half-open trials on live traffic off.
    pub fn due_health_checks(&self) -> Vec<HealthCheck> {
        self.due_health_checks_at(self.tokens.now_ms())
    }

    pub fn due_health_checks_at(&self, now: u64) -> Vec<HealthCheck> {
        self.tokens.set_host_health_checks(true);
        self.tokens
            .claim_due_at(now)
            .into_iter()
            .filter_map(|i| match self.health_check_request(i) {
                Ok(c) => Some(c),
                Err(_) => {
                    // Cannot be built: count it as failed so the token is retried later.
                    self.tokens.check_result_at(i, false, now);
                    None
                }
            })
            .collect()
    }

    /// The outcome of a check returned by [`Config::due_health_checks`]: the HTTP status, or 0
    /// when it failed without one. Only 200 passes (as in Higress).
    pub fn on_health_check_result(&self, token_index: usize, status: u16) {
        self.tokens
            .check_result_at(token_index, status == 200, self.tokens.now_ms());
    }

    /// A minimal chat request with `healthCheckModel` and token `index`, built by the provider
    /// like any other request.
    pub fn health_check_request(&self, index: usize) -> Result<HealthCheck, ProxyError> {
        let pc: &ProviderConfig = &self.provider;
        let token = pc
            .api_tokens
            .get(index)
            .ok_or_else(|| ProxyError::bad_request("no such token"))?;
        let model = pc.model_mapping.map(&pc.failover.health_check_model);
        let mut body = json!({
            "model": model,
            "messages": [{"role": "user", "content": HEALTH_CHECK_PROMPT}],
        });
        let info = RequestInfo {
            config: pc,
            api: Api::ChatCompletions,
            model,
            stream: false,
            include_usage: false,
            token: token.expose(),
            path: "/v1/chat/completions",
        };
        let mut up = self.imp.translate_request(&info, &mut body)?;
        crate::exchange::route(pc, Some(Api::ChatCompletions), &mut up, "");
        let bytes = serde_json::to_vec(&body).expect("serialising a JSON value cannot fail");
        self.imp.finalize(pc, &mut up, &bytes)?;
        let mut headers = up.headers;
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("content-type".into(), "application/json".into()));
        }
        Ok(HealthCheck {
            token_index: index,
            authority: up.authority,
            path: up.path,
            headers,
            body: bytes,
            timeout_ms: pc.failover.health_check_timeout_ms,
        })
    }
}

#[cfg(test)]
#[path = "failover_tests.rs"]
mod tests;
