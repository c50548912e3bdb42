//! The per-request counters (`aiproxy_requests_total`, `aiproxy_input_tokens_total`,
//! `aiproxy_output_tokens_total` by `provider` and `model`; `aiproxy_client_requests_total` by
//! `provider` and `protocol`), counted on the worker and handed to Envoy in batches.
//!
//! Why batches: Envoy 1.40 resolves a labelled counter's label values on every increment (a
//! symbol-table encoding and a scope lookup, ~3.7 k instructions), and its ABI has no
//! pre-resolved form. Four increments per request were a fifth of the module's time on a
//! buffered OpenAI request. Here a request costs a few atomic additions; a module thread wakes
//! every [`FLUSH_EVERY`] and, when something was counted, commits an event to the configuration's
//! scheduler. On Envoy's main thread that event sends each (labels, sum) once. So the counters
//! lag by at most about [`FLUSH_EVERY`], and nothing is lost: when Envoy destroys the
//! configuration, whatever is still pending is sent from the destroy hook, while the
//! configuration's stats scope still exists.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use aiproxy::front::ClientProtocol;

use crate::filter::{
    log, ConfigScheduler, CounterVecId, EnvoyConfigHandle, EnvoyFilterConfig, LogLevel,
};

/// How long a count may wait before it is sent to Envoy.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Name of a diagnostic environment variable: the flush interval in milliseconds instead of
/// [`FLUSH_EVERY`] (the e2e test sets a long one to see counts sent at teardown).
pub const FLUSH_MS_ENV: &str = "AIPROXY_ENVOY_METRICS_FLUSH_MS";
/// The configuration scheduler's event id for "send the pending counts" (failover uses 0).
pub const FLUSH_EVENT: u64 = 1;

/// Label names of the per-model counters.
const LABELS: [&str; 2] = ["provider", "model"];
/// Model label when the request named none (or was rejected before it was read).
pub const UNKNOWN_MODEL: &str = "unknown";
/// Model label once a configuration has counted [`MAX_MODEL_LABELS`] distinct models, or for a
/// model name longer than [`MAX_MODEL_LABEL_LEN`]: clients choose model names, and every label
/// value is a new Envoy stat that lives as long as the process.
pub const OTHER_MODEL: &str = "other";
const MAX_MODEL_LABELS: usize = 256;
const MAX_MODEL_LABEL_LEN: usize = 128;
/// Client protocols, indexed by `ClientProtocol as usize`.
const PROTOCOLS: [ClientProtocol; 2] = [ClientProtocol::OpenAi, ClientProtocol::Anthropic];

/// Envoy's ids of the four counters.
#[derive(Clone, Copy, Debug)]
pub struct CounterIds {
    pub requests: CounterVecId,
    pub input_tokens: CounterVecId,
    pub output_tokens: CounterVecId,
    pub client_requests: CounterVecId,
}

/// Counts of one model label not yet sent to Envoy.
#[derive(Default, Debug)]
struct ModelCounts {
    requests: AtomicU64,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
}

/// Model label values handed out so far: name -> slot, and slot -> name.
#[derive(Default, Debug)]
struct ModelTable {
    slots: HashMap<Box<str>, usize>,
    names: Vec<Box<str>>,
}

/// One filter configuration's counters.
pub struct Metrics {
    ids: CounterIds,
    provider: &'static str,
    models: Mutex<ModelTable>,
    /// One per model label in `models.names` order; the last one is [`OTHER_MODEL`].
    counts: Box<[ModelCounts]>,
    /// Requests by client protocol.
    protocols: [AtomicU64; PROTOCOLS.len()],
    /// Something was counted since the flusher last looked.
    dirty: AtomicBool,
    /// Taken (and so deleted on the main thread) when the configuration is destroyed.
    scheduler: Mutex<Option<ConfigScheduler>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    /// Defines the counters (only possible while Envoy creates the configuration) and registers
    /// the configuration with the flusher.
    pub fn define(
        envoy: &mut EnvoyFilterConfig,
        provider: &'static str,
    ) -> Result<Arc<Self>, String> {
        let mut define = |name: &str, labels: &[&str]| {
            envoy
                .define_counter_vec(name, labels)
                .map_err(|e| format!("cannot define counter {name}: {e:?}"))
        };
        let ids = CounterIds {
            requests: define("aiproxy_requests_total", &LABELS)?,
            input_tokens: define("aiproxy_input_tokens_total", &LABELS)?,
            output_tokens: define("aiproxy_output_tokens_total", &LABELS)?,
            client_requests: define("aiproxy_client_requests_total", &["provider", "protocol"])?,
        };
        let scheduler = envoy
            .new_scheduler()
            .ok_or("Envoy gave no configuration scheduler for the counters")?;
        let metrics = Arc::new(Self::new(ids, provider, Some(scheduler)));
        flusher::register(&metrics);
        Ok(metrics)
    }

    fn new(ids: CounterIds, provider: &'static str, scheduler: Option<ConfigScheduler>) -> Self {
        Self {
            ids,
            provider,
            models: Mutex::new(ModelTable::default()),
            counts: (0..=MAX_MODEL_LABELS)
                .map(|_| ModelCounts::default())
                .collect(),
            protocols: Default::default(),
            dirty: AtomicBool::new(false),
            scheduler: Mutex::new(scheduler),
        }
    }

    /// Worker: one finished request, with the usage read from its reply (prompt and completion
    /// tokens) when there was one.
    pub fn record(&self, model: &str, usage: Option<(u64, u64)>, protocol: ClientProtocol) {
        let counts = &self.counts[self.slot(model)];
        counts.requests.fetch_add(1, Ordering::SeqCst);
        if let Some((input, output)) = usage {
            counts.input_tokens.fetch_add(input, Ordering::SeqCst);
            counts.output_tokens.fetch_add(output, Ordering::SeqCst);
        }
        self.protocols[protocol as usize].fetch_add(1, Ordering::SeqCst);
        // A load first: under load the flag is nearly always set, and a load keeps the cache
        // line shared between workers where a store would not.
        if !self.dirty.load(Ordering::SeqCst) {
            self.dirty.store(true, Ordering::SeqCst);
        }
    }

    fn slot(&self, model: &str) -> usize {
        if model.len() > MAX_MODEL_LABEL_LEN {
            return MAX_MODEL_LABELS;
        }
        let mut table = lock(&self.models);
        if let Some(&slot) = table.slots.get(model) {
            return slot;
        }
        let slot = table.names.len();
        if slot == MAX_MODEL_LABELS {
            return MAX_MODEL_LABELS;
        }
        table.names.push(model.into());
        table.slots.insert(model.into(), slot);
        slot
    }

    /// Takes every pending count and passes each non-zero one to `emit` as (counter, label
    /// values, amount).
    fn drain(&self, mut emit: impl FnMut(CounterVecId, &[&str], u64)) {
        let take = |c: &ModelCounts| {
            [&c.requests, &c.input_tokens, &c.output_tokens].map(|a| a.swap(0, Ordering::SeqCst))
        };
        // Taken under the table's lock (quick: no call into Envoy), with a copy of the names of
        // the models that have counts; sent to Envoy after the lock is released, as workers take
        // it on every request.
        let mut pending: Vec<(Option<Box<str>>, [u64; 3])> = Vec::new();
        {
            let table = lock(&self.models);
            for (name, counts) in table.names.iter().zip(self.counts.iter()) {
                let n = take(counts);
                if n != [0; 3] {
                    pending.push((Some(name.clone()), n));
                }
            }
        }
        let other = self.counts.last().map_or([0; 3], take);
        if other != [0; 3] {
            pending.push((None, other));
        }
        let ids = [
            self.ids.requests,
            self.ids.input_tokens,
            self.ids.output_tokens,
        ];
        for (name, n) in &pending {
            let model = name.as_deref().unwrap_or(OTHER_MODEL);
            for (id, n) in ids.iter().zip(n) {
                if *n > 0 {
                    emit(*id, &[self.provider, model], *n);
                }
            }
        }
        for (protocol, pending) in PROTOCOLS.iter().zip(&self.protocols) {
            let n = pending.swap(0, Ordering::SeqCst);
            if n > 0 {
                emit(
                    self.ids.client_requests,
                    &[self.provider, protocol.name()],
                    n,
                );
            }
        }
    }

    /// Main thread (the scheduled event): sends the pending counts to Envoy.
    pub fn flush(&self, envoy: &mut EnvoyConfigHandle) -> usize {
        let mut sent = 0;
        self.drain(|id, labels, n| {
            sent += usize::from(envoy.increment_counter_vec(id, labels, n).is_ok());
        });
        sent
    }

    /// The configuration is being destroyed: no more events (the scheduler is deleted here, on
    /// Envoy's thread), and what is pending is sent now.
    pub fn close(&self, envoy: &mut EnvoyConfigHandle) {
        drop(lock(&self.scheduler).take());
        let sent = self.flush(envoy);
        log(
            LogLevel::Debug,
            &format!("aiproxy: configuration closed, {sent} pending counter updates sent"),
        );
    }

    /// Flusher thread: asks for a flush on the main thread when something was counted.
    fn commit_if_dirty(&self) {
        if self.dirty.load(Ordering::SeqCst) && self.dirty.swap(false, Ordering::SeqCst) {
            if let Some(s) = lock(&self.scheduler).as_ref() {
                s.commit(FLUSH_EVENT);
            }
        }
    }
}

/// The module's one flusher thread, started with the first configuration.
mod flusher {
    use super::*;

    static LIVE: OnceLock<Mutex<Vec<Weak<Metrics>>>> = OnceLock::new();

    pub(super) fn register(metrics: &Arc<Metrics>) {
        let live = LIVE.get_or_init(|| {
            pin_module();
            std::thread::Builder::new()
                .name("aiproxy-metrics".into())
                .spawn(run)
                .expect("cannot start the aiproxy metrics thread");
            Mutex::new(Vec::new())
        });
        lock(live).push(Arc::downgrade(metrics));
    }

    fn run() {
        let Some(live) = LIVE.get() else { return };
        let every = std::env::var(FLUSH_MS_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(FLUSH_EVERY, Duration::from_millis);
        loop {
            std::thread::sleep(every);
            let configs: Vec<Arc<Metrics>> = {
                let mut list = lock(live);
                list.retain(|w| w.strong_count() > 0);
                list.iter().filter_map(Weak::upgrade).collect()
            };
            for m in &configs {
                m.commit_if_dirty();
            }
        }
    }

    /// Keeps this library loaded for the life of the process: the flusher thread runs its code,
    /// and Envoy may close a module whose last configuration is gone.
    fn pin_module() {
        // SAFETY: dladdr on an address inside this library; dlopen with RTLD_NOLOAD only takes
        // another reference to the already-loaded object (never released), which together with
        // RTLD_NODELETE keeps it mapped.
        unsafe {
            let mut info: libc::Dl_info = std::mem::zeroed();
            let here = pin_module as *const libc::c_void;
            if libc::dladdr(here, &mut info) != 0 && !info.dli_fname.is_null() {
                libc::dlopen(
                    info.dli_fname,
                    libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> CounterIds {
        CounterIds {
            requests: CounterVecId::for_test(1, 2),
            input_tokens: CounterVecId::for_test(2, 2),
            output_tokens: CounterVecId::for_test(3, 2),
            client_requests: CounterVecId::for_test(4, 2),
        }
    }

    fn drained(m: &Metrics) -> HashMap<(usize, String, String), u64> {
        let mut out = HashMap::new();
        m.drain(|id, labels, n| {
            let key = (id.raw(), labels[0].to_string(), labels[1].to_string());
            assert!(
                out.insert(key, n).is_none(),
                "one emit per counter and labels"
            );
        });
        out
    }

    #[test]
    fn counts_are_summed_per_labels_and_taken_once() {
        let m = Metrics::new(ids(), "openai", None);
        m.record("gpt-4o", Some((10, 5)), ClientProtocol::OpenAi);
        m.record("gpt-4o", Some((1, 2)), ClientProtocol::Anthropic);
        m.record("o3", None, ClientProtocol::OpenAi);
        let got = drained(&m);
        let key = |id: usize, a: &str| (id, "openai".to_string(), a.to_string());
        let want: HashMap<_, _> = [
            (key(1, "gpt-4o"), 2),
            (key(2, "gpt-4o"), 11),
            (key(3, "gpt-4o"), 7),
            (key(1, "o3"), 1),
            (key(4, "openai"), 2),
            (key(4, "anthropic"), 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
        assert!(drained(&m).is_empty(), "a second drain sends nothing");
        assert!(m.dirty.load(Ordering::SeqCst));
        m.commit_if_dirty();
        assert!(!m.dirty.load(Ordering::SeqCst));
    }

    #[test]
    fn model_labels_stay_bounded() {
        let m = Metrics::new(ids(), "groq", None);
        for i in 0..MAX_MODEL_LABELS + 10 {
            m.record(&format!("m{i}"), Some((1, 1)), ClientProtocol::OpenAi);
        }
        let long = "x".repeat(MAX_MODEL_LABEL_LEN + 1);
        m.record(&long, None, ClientProtocol::OpenAi);
        let got = drained(&m);
        assert_eq!(got[&(1, "groq".into(), "m0".into())], 1);
        assert!(!got.contains_key(&(1, "groq".into(), format!("m{MAX_MODEL_LABELS}"))));
        let requests: Vec<_> = got.iter().filter(|(k, _)| k.0 == 1).collect();
        assert_eq!(requests.len(), MAX_MODEL_LABELS + 1);
        assert_eq!(got[&(1, "groq".into(), OTHER_MODEL.into())], 11);
        assert_eq!(got[&(2, "groq".into(), OTHER_MODEL.into())], 10);
    }

    #[test]
    fn concurrent_records_and_drains_lose_nothing() {
        let m = Arc::new(Metrics::new(ids(), "openai", None));
        let per_thread = 20_000u64;
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    for i in 0..per_thread {
                        let model = if (i + t) % 3 == 0 { "a" } else { "b" };
                        m.record(model, Some((2, 3)), ClientProtocol::OpenAi);
                    }
                })
            })
            .collect();
        let mut total: HashMap<usize, u64> = HashMap::new();
        let mut add = |m: &Metrics| {
            m.drain(|id, _, n| *total.entry(id.raw()).or_default() += n);
        };
        while workers.iter().any(|w| !w.is_finished()) {
            add(&m);
        }
        for w in workers {
            w.join().unwrap();
        }
        add(&m);
        let n = 4 * per_thread;
        assert_eq!(total[&1], n);
        assert_eq!(total[&2], 2 * n);
        assert_eq!(total[&3], 3 * n);
        assert_eq!(total[&4], n);
    }
}
