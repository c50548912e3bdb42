//! Provider types accepted by the configuration whose translation has not landed yet: every
//! request gets a clear 501 instead of a silent failure.

use super::{Provider, ProviderType, RequestInfo, ResponseTranslator, Upstream};
use crate::config::ProviderConfig;
use crate::error::ProxyError;
use serde_json::Value;

pub struct Pending(pub ProviderType);

impl Pending {
    fn error(&self) -> ProxyError {
        ProxyError::new(
            501,
            "invalid_request_error",
            format!("provider '{}' is not implemented yet", self.0.name()),
        )
        .with_code("provider_not_implemented")
    }
}

impl Provider for Pending {
    fn kind(&self) -> ProviderType {
        self.0
    }

    fn translate_request(
        &self,
        _: &RequestInfo<'_>,
        _: &mut Value,
    ) -> Result<Upstream, ProxyError> {
        Err(self.error())
    }

    fn passthrough_target(
        &self,
        _: &ProviderConfig,
        _: &str,
        _: &str,
    ) -> Result<Upstream, ProxyError> {
        Err(self.error())
    }

    fn response_translator(&self, _: &RequestInfo<'_>) -> Box<dyn ResponseTranslator> {
        unreachable!("no request is ever forwarded for a pending provider")
    }
}
