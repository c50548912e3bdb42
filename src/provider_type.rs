//! The provider types a configuration can name. A leaf: it depends on nothing, so the
//! configuration and the providers can both use it.

/// The 21 provider types of the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderType {
    OpenAi,
    Azure,
    Moonshot,
    Qwen,
    Baichuan,
    Yi,
    Zhipuai,
    Deepseek,
    Groq,
    Baidu,
    Ai360,
    Mistral,
    Minimax,
    Claude,
    Ollama,
    Hunyuan,
    Stepfun,
    Cloudflare,
    Spark,
    Gemini,
    Deepl,
    Bedrock,
    Vertex,
}

impl ProviderType {
    pub const ALL: [ProviderType; 23] = [
        Self::OpenAi,
        Self::Azure,
        Self::Moonshot,
        Self::Qwen,
        Self::Baichuan,
        Self::Yi,
        Self::Zhipuai,
        Self::Deepseek,
        Self::Groq,
        Self::Baidu,
        Self::Ai360,
        Self::Mistral,
        Self::Minimax,
        Self::Claude,
        Self::Ollama,
        Self::Hunyuan,
        Self::Stepfun,
        Self::Cloudflare,
        Self::Spark,
        Self::Gemini,
        Self::Deepl,
        Self::Bedrock,
        Self::Vertex,
    ];

    /// The `type` string of the configuration.
    pub const fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Azure => "azure",
            Self::Moonshot => "moonshot",
            Self::Qwen => "qwen",
            Self::Baichuan => "baichuan",
            Self::Yi => "yi",
            Self::Zhipuai => "zhipuai",
            Self::Deepseek => "deepseek",
            Self::Groq => "groq",
            Self::Baidu => "baidu",
            Self::Ai360 => "ai360",
            Self::Mistral => "mistral",
            Self::Minimax => "minimax",
            Self::Claude => "claude",
            Self::Ollama => "ollama",
            Self::Hunyuan => "hunyuan",
            Self::Stepfun => "stepfun",
            Self::Cloudflare => "cloudflare",
            Self::Spark => "spark",
            Self::Gemini => "gemini",
            Self::Deepl => "deepl",
            Self::Bedrock => "bedrock",
            Self::Vertex => "vertex",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }
}
