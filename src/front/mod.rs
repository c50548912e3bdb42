//! Client-protocol fronts: the API dialect the client speaks to us. OpenAI's is the native one;
//! Anthropic's Messages API is a layer around the OpenAI pipeline (request converted on the way in,
//! OpenAI output converted on the way out), so it never depends on a provider's internals.

pub mod anthropic;

/// The API dialect a request was served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub enum ClientProtocol {
    /// OpenAI's API (`/v1/chat/completions`, `/v1/embeddings`, or a passthrough path).
    #[default]
    OpenAi = 0,
    /// Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`).
    Anthropic = 1,
}

impl ClientProtocol {
    /// The protocol a request path asks for (suffix match; the query is ignored).
    pub fn from_path(path: &str) -> Self {
        if anthropic::Endpoint::from_path(path).is_some() {
            Self::Anthropic
        } else {
            Self::OpenAi
        }
    }

    /// Label for metrics and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_from_path_suffix() {
        for (path, want) in [
            ("/v1/messages", ClientProtocol::Anthropic),
            ("/gw/v1/messages?beta=true", ClientProtocol::Anthropic),
            ("/v1/messages/count_tokens", ClientProtocol::Anthropic),
            ("/v1/chat/completions", ClientProtocol::OpenAi),
            ("/v1/messages/batches", ClientProtocol::OpenAi),
        ] {
            assert_eq!(ClientProtocol::from_path(path), want, "{path}");
        }
        assert_eq!(ClientProtocol::Anthropic.name(), "anthropic");
    }
}
