//! Failover and retries in Envoy.
//!
//! * Health checks: a request that ends while a check of an out token is due commits an event
//!   to the configuration scheduler; on the main thread the configuration sends the checks the
//!   core builds ([`Config::due_health_checks`]) as configuration-level callouts to the cluster
//!   of the most recent request, and reports each answer. Checks are therefore driven by
//!   traffic: with no requests, no token needs to come back.
//! * Counters (label `provider`): `aiproxy_retries_total` (retries sent),
//!   `aiproxy_failovers_total` (tokens that left the rotation), `aiproxy_tokens_restored_total`
//!   (tokens that came back), and the gauge `aiproxy_tokens_out`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use aiproxy::Config;

use crate::filter::{
    log, CalloutResponse, CalloutResult, ConfigScheduler, CounterVecId, EnvoyConfigHandle,
    EnvoyFilterConfig, EnvoyHttpFilter, GaugeVecId, LogLevel,
};

const LABELS: [&str; 1] = ["provider"];

/// Per filter configuration.
pub struct Failover {
    scheduler: Option<ConfigScheduler>,
    /// An event is committed and not yet run.
    scheduled: AtomicBool,
    /// Cluster of the most recent forwarded request: where health checks go.
    cluster: Mutex<String>,
    /// Outstanding health-check callouts: callout id -> token index.
    pending: Mutex<HashMap<u64, usize>>,
    retries: CounterVecId,
    failovers: CounterVecId,
    restores: CounterVecId,
    tokens_out: GaugeVecId,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Failover {
    pub fn define(envoy: &mut EnvoyFilterConfig, core: &Config) -> Result<Self, String> {
        let mut define = |name: &str| {
            envoy
                .define_counter_vec(name, &LABELS)
                .map_err(|e| format!("cannot define counter {name}: {e:?}"))
        };
        let retries = define("aiproxy_retries_total")?;
        let failovers = define("aiproxy_failovers_total")?;
        let restores = define("aiproxy_tokens_restored_total")?;
        let tokens_out = envoy
            .define_gauge_vec("aiproxy_tokens_out", &LABELS)
            .map_err(|e| format!("cannot define gauge aiproxy_tokens_out: {e:?}"))?;
        let scheduler = if core.token_pool().enabled() {
            envoy.new_scheduler()
        } else {
            None
        };
        if scheduler.is_some() {
            // This host sends health checks: no half-open trials on live traffic.
            core.token_pool().set_host_health_checks(true);
        }
        Ok(Self {
            scheduler,
            scheduled: AtomicBool::new(false),
            cluster: Mutex::new(String::new()),
            pending: Mutex::new(HashMap::new()),
            retries,
            failovers,
            restores,
            tokens_out,
        })
    }

    /// At the end of each stream: counters, the cluster for checks, and scheduling of due checks.
    pub fn on_stream_end(
        &self,
        envoy: &mut EnvoyHttpFilter,
        core: &Config,
        provider: &str,
        retries: u32,
    ) {
        let labels = [provider];
        if retries > 0 {
            let _ = envoy.increment_counter_vec(self.retries, &labels, u64::from(retries));
        }
        let pool = core.token_pool();
        if !pool.enabled() {
            return;
        }
        let (out, back) = pool.take_events();
        if out > 0 {
            let _ = envoy.increment_counter_vec(self.failovers, &labels, out);
        }
        if back > 0 {
            let _ = envoy.increment_counter_vec(self.restores, &labels, back);
        }
        if out > 0 || back > 0 {
            let _ = envoy.set_gauge_vec(self.tokens_out, &labels, pool.tokens_out() as u64);
        }
        let Some(scheduler) = &self.scheduler else {
            return;
        };
        if pool.tokens_out() == 0 {
            return;
        }
        if let Some(cluster) = envoy.cluster_name() {
            let mut c = lock(&self.cluster);
            if *c != cluster {
                *c = cluster;
            }
        }
        if pool.checks_due() && !self.scheduled.swap(true, Ordering::AcqRel) {
            scheduler.commit(0);
        }
    }

    /// Main thread: send the due checks.
    pub fn on_scheduled(&self, envoy: &mut EnvoyConfigHandle, core: &Config) {
        self.scheduled.store(false, Ordering::Release);
        let cluster = lock(&self.cluster).clone();
        if cluster.is_empty() {
            return;
        }
        for check in core.due_health_checks() {
            let mut headers: Vec<(&str, &[u8])> = vec![
                (":method", b"POST"),
                (":path", check.path.as_bytes()),
                (":authority", check.authority.as_bytes()),
                ("host", check.authority.as_bytes()),
            ];
            let len = check.body.len().to_string();
            headers.push(("content-length", len.as_bytes()));
            headers.extend(
                check
                    .headers
                    .iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
                    .map(|(k, v)| (k.as_str(), v.as_bytes())),
            );
            match envoy.callout(&cluster, &headers, &check.body, check.timeout_ms) {
                Ok(id) => {
                    lock(&self.pending).insert(id, check.token_index);
                }
                Err(e) => {
                    log(
                        LogLevel::Warn,
                        &format!(
                            "aiproxy: cannot start a health check to cluster '{cluster}': {e:?}"
                        ),
                    );
                    core.on_health_check_result(check.token_index, 0);
                }
            }
        }
    }

    /// Main thread: a health check's answer. Returns false when the callout is not ours.
    pub fn on_callout_done(&self, id: u64, response: &CalloutResponse, core: &Config) -> bool {
        let Some(index) = lock(&self.pending).remove(&id) else {
            return false;
        };
        let status = match response.result {
            CalloutResult::Success => response
                .header(":status")
                .and_then(|s| std::str::from_utf8(s).ok()?.parse::<u16>().ok())
                .unwrap_or(0),
            _ => 0,
        };
        log(
            LogLevel::Debug,
            &format!("aiproxy: health check of token #{index} answered {status}"),
        );
        core.on_health_check_result(index, status);
        true
    }
}
