//! `libaiproxy_envoy.so`: aiproxy as an Envoy 1.40 dynamic-module HTTP filter.
//!
//! Envoy config: `dynamic_module_config: {name: aiproxy_envoy}` (the file is found through
//! `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`), `filter_name: aiproxy`, and `filter_config`: a
//! `google.protobuf.StringValue` holding the seed's plugin configuration JSON, unchanged
//! (`{"provider": {...}}`). A configuration the core rejects makes Envoy refuse the listener; the
//! validation message (`field.path: reason`) is in Envoy's log.
//!
//! Per stream the filter drives one [`aiproxy::Exchange`] (see [`proxy`]).

mod abi;
mod failover;
pub mod filter;
mod hooks;
mod metrics;
mod proxy;

use filter::{log, EnvoyFilterConfig, HttpFilterConfig, LogLevel};

/// The only filter name this module serves (`filter_name` in the Envoy config).
pub const FILTER_NAME: &str = "aiproxy";

/// Entry point used by the hook runtime for `on_http_filter_config_new`. An `Err` makes Envoy
/// reject the configuration; its text is logged (it never contains configuration values).
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
    let core = aiproxy::Config::from_json(config)
        .map_err(|e| format!("invalid aiproxy configuration: {e}"))?;
    let metrics = metrics::Metrics::define(envoy, core.provider.kind.name())?;
    let failover = failover::Failover::define(envoy, &core)?;
    log(
        LogLevel::Info,
        &format!(
            "aiproxy: filter configured for provider '{}' (aiproxy {})",
            core.provider.kind.name(),
            aiproxy::VERSION
        ),
    );
    // Fields that load but do nothing are named (never their values) rather than ignored
    // silently. `firstByteTimeout` (core.first_byte_timeout_ms()) is not applied here: a dynamic
    // module filter has no per-request first-byte timeout to set; route/cluster timeouts do that.
    for w in core.warnings() {
        log(LogLevel::Warn, &format!("aiproxy: configuration: {w}"));
    }
    Ok(Box::new(proxy::ProxyConfig::new(core, metrics, failover)))
}
