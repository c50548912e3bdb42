"""One end-to-end case per seed provider type (and the issue-14 subset at the end): its configuration, what the mock upstream must
receive (host, path, auth, body), and a broken variant of the configuration.

The hosts and paths are the providers' documented ones (see src/providers/*.rs); every case runs
behind its own Envoy listener, routed by ``examples/envoy/envoy.yaml`` with the clusters pointed at
the loopback mock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

JSON = Any
BodyCheck = Callable[[JSON, str, str], None]
"""``check(upstream_json, prompt_or_input, model_sent)`` raises AssertionError on a mismatch."""


def _dump(value: JSON) -> str:
    return json.dumps(value, ensure_ascii=False)


def openai_chat_body(body: JSON, prompt: str, model: str) -> None:
    assert body["model"] == model, body
    assert body["messages"][-1] == {"role": "user", "content": prompt}, body


def openai_embeddings_body(body: JSON, text: str, model: str) -> None:
    assert body["model"] == model, body
    assert text in _dump(body["input"]), body


def claude_body(body: JSON, prompt: str, model: str) -> None:
    assert body["model"] == model, body
    assert isinstance(body["max_tokens"], int), body
    assert body["messages"][-1]["role"] == "user" and prompt in _dump(body["messages"][-1]["content"]), body


def gemini_body(body: JSON, prompt: str, model: str) -> None:
    assert "model" not in body or model in str(body["model"]), body
    assert body["contents"][-1]["role"] == "user" and prompt in _dump(body["contents"][-1]["parts"]), body


def gemini_embeddings_body(body: JSON, text: str, model: str) -> None:
    assert body["requests"][0]["model"] == f"models/{model}", body
    assert text in _dump(body["requests"][0]["content"]), body


def qwen_body(body: JSON, prompt: str, model: str) -> None:
    assert body["model"] == model, body
    assert prompt in _dump(body["input"]["messages"][-1]), body


def qwen_embeddings_body(body: JSON, text: str, model: str) -> None:
    assert body["model"] == model, body
    assert text in _dump(body["input"]["texts"]), body


def hunyuan_body(body: JSON, prompt: str, model: str) -> None:
    assert body["Model"] == model, body
    assert prompt in _dump(body["Messages"][-1]), body


def hunyuan_embeddings_body(body: JSON, text: str, model: str) -> None:
    assert text in _dump(body.get("Input")) or text in _dump(body.get("InputList")), body


def minimax_pro_body(body: JSON, prompt: str, model: str) -> None:
    assert body["model"] == model, body
    assert body["bot_setting"], body
    assert body["messages"][-1]["sender_type"] == "USER" and body["messages"][-1]["text"] == prompt, body


def deepl_body(body: JSON, prompt: str, model: str) -> None:
    assert body["target_lang"] == "ZH", body
    assert prompt in body["text"], body


def cohere_body(body: JSON, prompt: str, model: str) -> None:
    assert body["model"] == model, body
    assert body["messages"][-1] == {"role": "user", "content": prompt}, body


def cohere_embed_body(body: JSON, text: str, model: str) -> None:
    assert body["model"] == model, body
    assert body["texts"] == [text] and body["input_type"] and body["embedding_types"] == ["float"], body


def bedrock_body(body: JSON, prompt: str, model: str) -> None:
    # Converse: the model is in the path, not the body.
    assert "model" not in body, body
    assert body["messages"][-1] == {"role": "user", "content": [{"text": prompt}]}, body


def vertex_gemini_body(body: JSON, prompt: str, model: str) -> None:
    assert "model" not in body, body
    assert body["contents"][-1] == {"role": "user", "parts": [{"text": prompt}]}, body


@dataclass(frozen=True)
class Upstream:
    """What the mock must see for one API call."""

    host: str
    path: str
    check: BodyCheck
    stream_path: str | None = None  # when a streamed call goes elsewhere


@dataclass(frozen=True)
class ProviderCase:
    name: str
    config: dict[str, Any]
    model: str  # what the client asks for
    model_sent: str  # what must go upstream (after modelMapping)
    chat: Upstream
    auth_header: str | None  # header carrying the credential upstream (None: no auth)
    auth_value: str  # its exact value, or its prefix when auth_prefix
    broken: dict[str, Any]  # an invalid variant of config
    broken_path: str  # field path the validation message must name
    auth_prefix: bool = False
    embeddings: Upstream | None = None  # None: the provider has no embeddings API
    embedding_model: str = ""
    embedding_model_sent: str = ""
    extra_headers: dict[str, str] = field(default_factory=dict)  # also expected upstream
    reply_contains: str = "mock reply to:"

    @property
    def config_json(self) -> str:
        return json.dumps(self.config)

    @property
    def secrets(self) -> list[str]:
        """Credential values that must never appear in a log line."""
        values: list[str] = [t for t in self.config["provider"].get("apiTokens", []) if t]
        provider = self.config["provider"]
        values += [provider[k] for k in ("hunyuanAuthKey", "awsSecretKey") if k in provider]
        return values


def _compat(
    name: str,
    host: str,
    chat_path: str,
    embeddings_path: str | None = None,
    embedding_model: str = "",
    model: str = "mock-chat-model",
    **extra: Any,
) -> ProviderCase:
    token = f"sk-secret-{name}"
    config: dict[str, Any] = {"provider": {"type": name, "apiTokens": [token], **extra}}
    return ProviderCase(
        name=name,
        config=config,
        model=model,
        model_sent=model,
        chat=Upstream(host, chat_path, openai_chat_body),
        auth_header="authorization",
        auth_value=f"Bearer {token}",
        broken={"provider": {"type": name, "apiTokens": [], **extra}},
        broken_path="provider.apiTokens",
        embeddings=Upstream(host, embeddings_path, openai_embeddings_body) if embeddings_path else None,
        embedding_model=embedding_model,
        embedding_model_sent=embedding_model,
    )


AZURE_URL: Final = (
    "https://aiproxy-test.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-02-15-preview"
)

BEDROCK_ACCESS_KEY: Final = "AKIDMOCKBEDROCK"
BEDROCK_SECRET_KEY: Final = "secret-bedrock-signing-key"
BEDROCK_HOST: Final = "bedrock-runtime.us-east-1.amazonaws.com"
BEDROCK_MODEL: Final = "anthropic.claude-3-haiku-20240307-v1:0"
BEDROCK_MODEL_PATH: Final = "anthropic.claude-3-haiku-20240307-v1%3A0"  # URI-encoded in the path

CASES: Final[list[ProviderCase]] = [
    # openai, with modelMapping: the client's model is replaced before it goes upstream.
    ProviderCase(
        name="openai",
        config={"provider": {"type": "openai", "apiTokens": ["sk-secret-openai"], "modelMapping": {"gpt-4o-mini": "gpt-4o"}}},
        model="gpt-4o-mini",
        model_sent="gpt-4o",
        chat=Upstream("api.openai.com", "/v1/chat/completions", openai_chat_body),
        auth_header="authorization",
        auth_value="Bearer sk-secret-openai",
        broken={"provider": {"type": "openai"}},
        broken_path="provider.apiTokens",
        embeddings=Upstream("api.openai.com", "/v1/embeddings", openai_embeddings_body),
        embedding_model="text-embedding-3-small",
        embedding_model_sent="text-embedding-3-small",
    ),
    ProviderCase(
        name="azure",
        config={"provider": {"type": "azure", "apiTokens": ["sk-secret-azure"], "azureServiceUrl": AZURE_URL}},
        model="gpt-4o",
        model_sent="gpt-4o",
        chat=Upstream(
            "aiproxy-test.openai.azure.com",
            "/openai/deployments/gpt-4o/chat/completions?api-version=2024-02-15-preview",
            openai_chat_body,
        ),
        auth_header="api-key",
        auth_value="sk-secret-azure",
        broken={
            "provider": {
                "type": "azure",
                "apiTokens": ["sk-secret-azure"],
                "azureServiceUrl": AZURE_URL.split("?")[0],
            }
        },
        broken_path="provider.azureServiceUrl",
        embeddings=Upstream(
            "aiproxy-test.openai.azure.com",
            "/openai/deployments/gpt-4o/embeddings?api-version=2024-02-15-preview",
            openai_embeddings_body,
        ),
        embedding_model="text-embedding-3-small",
        embedding_model_sent="text-embedding-3-small",
    ),
    ProviderCase(
        name="moonshot",
        config={"provider": {"type": "moonshot", "apiTokens": ["sk-secret-moonshot"]}},
        model="moonshot-v1-8k",
        model_sent="moonshot-v1-8k",
        chat=Upstream("api.moonshot.cn", "/v1/chat/completions", openai_chat_body),
        auth_header="authorization",
        auth_value="Bearer sk-secret-moonshot",
        broken={
            "provider": {
                "type": "moonshot",
                "apiTokens": ["sk-secret-moonshot"],
                "moonshotFileId": "file-1",
                "context": {"fileUrl": "http://ctx/a.txt", "serviceName": "ctx", "servicePort": 80},
            }
        },
        broken_path="provider.context",
    ),
    ProviderCase(
        name="qwen",
        config={"provider": {"type": "qwen", "apiTokens": ["sk-secret-qwen"]}},
        model="qwen-max",
        model_sent="qwen-max",
        chat=Upstream("dashscope.aliyuncs.com", "/api/v1/services/aigc/text-generation/generation", qwen_body),
        auth_header="authorization",
        auth_value="Bearer sk-secret-qwen",
        broken={
            "provider": {
                "type": "qwen",
                "apiTokens": ["sk-secret-qwen"],
                "qwenFileIds": ["file-1"],
                "context": {"fileUrl": "http://ctx/a.txt", "serviceName": "ctx", "servicePort": 80},
            }
        },
        broken_path="provider.context",
        embeddings=Upstream(
            "dashscope.aliyuncs.com", "/api/v1/services/embeddings/text-embedding/text-embedding", qwen_embeddings_body
        ),
        embedding_model="text-embedding-v3",
        embedding_model_sent="text-embedding-v3",
    ),
    _compat("baichuan", "api.baichuan-ai.com", "/v1/chat/completions", "/v1/embeddings", "Baichuan-Text-Embedding"),
    _compat("yi", "api.lingyiwanwu.com", "/v1/chat/completions"),
    _compat("zhipuai", "open.bigmodel.cn", "/api/paas/v4/chat/completions", "/api/paas/v4/embeddings", "embedding-3"),
    ProviderCase(
        name="deepseek",
        config={"provider": {"type": "deepseek", "apiTokens": ["sk-secret-deepseek"]}},
        model="deepseek-chat",
        model_sent="deepseek-chat",
        chat=Upstream("api.deepseek.com", "/chat/completions", openai_chat_body),
        auth_header="authorization",
        auth_value="Bearer sk-secret-deepseek",
        broken={"provider": {"type": "deepseek", "apiTokens": ["sk-secret-deepseek"], "modelMapping": {"a": 1}}},
        broken_path="provider.modelMapping.a",
    ),
    ProviderCase(
        name="groq",
        config={"provider": {"type": "groq", "apiTokens": ["sk-secret-groq"]}},
        model="llama-3.1-8b-instant",
        model_sent="llama-3.1-8b-instant",
        chat=Upstream("api.groq.com", "/openai/v1/chat/completions", openai_chat_body),
        auth_header="authorization",
        auth_value="Bearer sk-secret-groq",
        broken={"provider": {"type": "groq", "apiTokens": ["sk-secret-groq"], "protocol": "grpc"}},
        broken_path="provider.protocol",
    ),
    _compat("baidu", "qianfan.baidubce.com", "/v2/chat/completions", "/v2/embeddings", "embedding-v1", model="ernie-4.0-8k"),
    _compat("ai360", "api.360.cn", "/v1/chat/completions", "/v1/embeddings", "embedding_s1_v1", model="360gpt-pro"),
    ProviderCase(
        name="mistral",
        config={"provider": {"type": "mistral", "apiTokens": ["sk-secret-mistral"]}},
        model="mistral-small-latest",
        model_sent="mistral-small-latest",
        chat=Upstream("api.mistral.ai", "/v1/chat/completions", openai_chat_body),
        auth_header="authorization",
        auth_value="Bearer sk-secret-mistral",
        broken={"provider": {"type": "mistral", "apiTokens": ["sk-secret-mistral"], "customSettings": [{"name": "max_tokens"}]}},
        broken_path="provider.customSettings[0].value",
        embeddings=Upstream("api.mistral.ai", "/v1/embeddings", openai_embeddings_body),
        embedding_model="mistral-embed",
        embedding_model_sent="mistral-embed",
    ),
    # minimax: abab6.5s-chat is a ChatCompletion Pro model (translated, GroupId in the query).
    ProviderCase(
        name="minimax",
        config={"provider": {"type": "minimax", "apiTokens": ["sk-secret-minimax"], "minimaxGroupId": "g-1234"}},
        model="abab6.5s-chat",
        model_sent="abab6.5s-chat",
        chat=Upstream("api.minimax.chat", "/v1/text/chatcompletion_pro?GroupId=g-1234", minimax_pro_body),
        auth_header="authorization",
        auth_value="Bearer sk-secret-minimax",
        broken={
            "provider": {"type": "minimax", "apiTokens": ["sk-secret-minimax"], "modelMapping": {"*": "abab6.5s-chat"}}
        },
        broken_path="provider.minimaxGroupId",
    ),
    ProviderCase(
        name="claude",
        config={"provider": {"type": "claude", "apiTokens": ["sk-secret-claude"]}},
        model="claude-3-5-sonnet-20241022",
        model_sent="claude-3-5-sonnet-20241022",
        chat=Upstream("api.anthropic.com", "/v1/messages", claude_body),
        auth_header="x-api-key",
        auth_value="sk-secret-claude",
        extra_headers={"anthropic-version": "2023-06-01"},
        broken={"provider": {"type": "claude", "apiTokens": ["sk-secret-claude"], "timeout": 0}},
        broken_path="provider.timeout",
    ),
    ProviderCase(
        name="ollama",
        config={"provider": {"type": "ollama", "ollamaServerHost": "ollama.internal", "ollamaServerPort": 11434}},
        model="llama3.2",
        model_sent="llama3.2",
        chat=Upstream("ollama.internal:11434", "/v1/chat/completions", openai_chat_body),
        auth_header=None,
        auth_value="",
        broken={"provider": {"type": "ollama", "ollamaServerPort": 11434}},
        broken_path="provider.ollamaServerHost",
        embeddings=Upstream("ollama.internal:11434", "/v1/embeddings", openai_embeddings_body),
        embedding_model="nomic-embed-text",
        embedding_model_sent="nomic-embed-text",
    ),
    ProviderCase(
        name="hunyuan",
        config={"provider": {"type": "hunyuan", "hunyuanAuthId": "AKIDmockid", "hunyuanAuthKey": "secret-hunyuan-key"}},
        model="hunyuan-lite",
        model_sent="hunyuan-lite",
        chat=Upstream("hunyuan.tencentcloudapi.com", "/", hunyuan_body),
        auth_header="authorization",
        auth_value="TC3-HMAC-SHA256 Credential=AKIDmockid/",
        auth_prefix=True,
        extra_headers={"x-tc-action": "ChatCompletions", "x-tc-version": "2023-09-01"},
        broken={"provider": {"type": "hunyuan", "hunyuanAuthId": "AKIDmockid"}},
        broken_path="provider.hunyuanAuthKey",
        embeddings=Upstream("hunyuan.tencentcloudapi.com", "/", hunyuan_embeddings_body),
        embedding_model="hunyuan-embedding",
        embedding_model_sent="hunyuan-embedding",
    ),
    _compat("stepfun", "api.stepfun.com", "/v1/chat/completions", model="step-1-8k"),
    ProviderCase(
        name="cloudflare",
        config={"provider": {"type": "cloudflare", "apiTokens": ["sk-secret-cloudflare"], "cloudflareAccountId": "acct42"}},
        model="@cf/meta/llama-3.1-8b-instruct",
        model_sent="@cf/meta/llama-3.1-8b-instruct",
        chat=Upstream("api.cloudflare.com", "/client/v4/accounts/acct42/ai/v1/chat/completions", openai_chat_body),
        auth_header="authorization",
        auth_value="Bearer sk-secret-cloudflare",
        broken={"provider": {"type": "cloudflare", "apiTokens": ["sk-secret-cloudflare"]}},
        broken_path="provider.cloudflareAccountId",
        embeddings=Upstream(
            "api.cloudflare.com", "/client/v4/accounts/acct42/ai/v1/embeddings", openai_embeddings_body
        ),
        embedding_model="@cf/baai/bge-base-en-v1.5",
        embedding_model_sent="@cf/baai/bge-base-en-v1.5",
    ),
    ProviderCase(
        name="spark",
        config={"provider": {"type": "spark", "apiTokens": ["sparkkey:sparksecret"]}},
        model="generalv3.5",
        model_sent="generalv3.5",
        chat=Upstream("spark-api-open.xf-yun.com", "/v1/chat/completions", openai_chat_body),
        auth_header="authorization",
        auth_value="Bearer sparkkey:sparksecret",
        broken={"provider": {"type": "spark", "apiTokens": [""]}},
        broken_path="provider.apiTokens",
    ),
    ProviderCase(
        name="gemini",
        config={"provider": {"type": "gemini", "apiTokens": ["sk-secret-gemini"]}},
        model="gemini-2.0-flash",
        model_sent="gemini-2.0-flash",
        chat=Upstream(
            "generativelanguage.googleapis.com",
            "/v1beta/models/gemini-2.0-flash:generateContent",
            gemini_body,
            stream_path="/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        ),
        auth_header="x-goog-api-key",
        auth_value="sk-secret-gemini",
        broken={
            "provider": {"type": "gemini", "apiTokens": ["sk-secret-gemini"], "geminiSafetySetting": {"HARM_CATEGORY_HARASSMENT": 3}}
        },
        broken_path="provider.geminiSafetySetting.HARM_CATEGORY_HARASSMENT",
        embeddings=Upstream(
            "generativelanguage.googleapis.com",
            "/v1beta/models/text-embedding-004:batchEmbedContents",
            gemini_embeddings_body,
        ),
        embedding_model="text-embedding-004",
        embedding_model_sent="text-embedding-004",
    ),
    # deepl: the model picks the tier (Free: api-free.deepl.com); the reply is the translation.
    ProviderCase(
        name="deepl",
        config={"provider": {"type": "deepl", "apiTokens": ["secret-deepl-key:fx"], "targetLang": "ZH"}},
        model="Free",
        model_sent="Free",
        chat=Upstream("api-free.deepl.com", "/v2/translate", deepl_body),
        auth_header="authorization",
        auth_value="DeepL-Auth-Key secret-deepl-key:fx",
        broken={"provider": {"type": "deepl", "apiTokens": ["secret-deepl-key:fx"]}},
        broken_path="provider.targetLang",
        reply_contains="mock translation (ZH):",
    ),
    # Issue 14: a representative subset of the types today's Higress adds (OpenAI-compatible rows
    # and Cohere v2, translated). Hosts and paths from each provider's docs (src/providers/).
    _compat("grok", "api.x.ai", "/v1/chat/completions", model="grok-3-mini"),
    ProviderCase(
        name="openrouter",
        # Higress's README example configuration, unchanged.
        config={
            "provider": {
                "type": "openrouter",
                "apiTokens": ["sk-secret-openrouter"],
                "modelMapping": {
                    "gpt-4": "openai/gpt-4-turbo-preview",
                    "gpt-3.5-turbo": "openai/gpt-3.5-turbo",
                    "claude-3": "anthropic/claude-3-opus",
                    "*": "openai/gpt-3.5-turbo",
                },
            }
        },
        model="claude-3",
        model_sent="anthropic/claude-3-opus",
        chat=Upstream("openrouter.ai", "/api/v1/chat/completions", openai_chat_body),
        auth_header="authorization",
        auth_value="Bearer sk-secret-openrouter",
        broken={"provider": {"type": "openrouter", "apiTokens": ["sk-secret-openrouter"], "basePath": "api"}},
        broken_path="provider.basePath",
    ),
    _compat(
        "together-ai",
        "api.together.xyz",
        "/v1/chat/completions",
        "/v1/embeddings",
        "BAAI/bge-base-en-v1.5",
        model="meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
    ),
    ProviderCase(
        name="cohere",
        config={"provider": {"type": "cohere", "apiTokens": ["sk-secret-cohere"]}},
        model="command-a-03-2025",
        model_sent="command-a-03-2025",
        chat=Upstream("api.cohere.com", "/v2/chat", cohere_body),
        auth_header="authorization",
        auth_value="Bearer sk-secret-cohere",
        broken={"provider": {"type": "cohere", "apiTokens": ["sk-secret-cohere"], "responseJsonSchema": "x"}},
        broken_path="provider.responseJsonSchema",
        embeddings=Upstream("api.cohere.com", "/v2/embed", cohere_embed_body),
        embedding_model="embed-v4.0",
        embedding_model_sent="embed-v4.0",
    ),
    # The other OpenAI-compatible rows of issue 14 (src/providers/openai_compat.rs names each one's
    # docs): fixed hosts, then vllm and generic, whose host comes from the configuration (routed by
    # the example's catch-all virtual host) and which send a bearer token only when apiTokens are set.
    _compat(
        "github",
        "models.github.ai",
        "/inference/chat/completions",
        "/inference/embeddings",
        "openai/text-embedding-3-small",
        model="openai/gpt-4.1-mini",
    ),
    _compat(
        "doubao",
        "ark.cn-beijing.volces.com",
        "/api/v3/chat/completions",
        "/api/v3/embeddings",
        "doubao-embedding-text-240715",
        model="doubao-seed-1-6-250615",
    ),
    _compat(
        "fireworks",
        "api.fireworks.ai",
        "/inference/v1/chat/completions",
        "/inference/v1/embeddings",
        "nomic-ai/nomic-embed-text-v1.5",
        model="accounts/fireworks/models/llama-v3p1-8b-instruct",
    ),
    _compat("longcat", "api.longcat.chat", "/openai/v1/chat/completions", model="LongCat-Flash-Chat"),
    ProviderCase(
        name="vllm",
        config={"provider": {"type": "vllm", "vllmServerHost": "vllm.internal:8000"}},
        model="Qwen/Qwen2.5-7B-Instruct",
        model_sent="Qwen/Qwen2.5-7B-Instruct",
        chat=Upstream("vllm.internal:8000", "/v1/chat/completions", openai_chat_body),
        auth_header=None,
        auth_value="",
        broken={"provider": {"type": "vllm", "vllmServerHost": 8000}},
        broken_path="provider.vllmServerHost",
        embeddings=Upstream("vllm.internal:8000", "/v1/embeddings", openai_embeddings_body),
        embedding_model="BAAI/bge-m3",
        embedding_model_sent="BAAI/bge-m3",
    ),
    # vllm behind vllmCustomUrl (openai_compat.rs, Higress's rule): the URL gives the host and a
    # base path; a path not ending in /completions gets each API's path without its /v1, and the
    # query is kept. (A path ending in /completions is used as is: test_envoy_features.py.)
    ProviderCase(
        name="vllm_custom",
        config={
            "provider": {
                "type": "vllm",
                "apiTokens": ["sk-secret-vllm-custom"],
                "vllmCustomUrl": "https://vllm-gw.internal:9443/tenants/t1/v1?route=blue",
            }
        },
        model="Qwen/Qwen2.5-7B-Instruct",
        model_sent="Qwen/Qwen2.5-7B-Instruct",
        chat=Upstream("vllm-gw.internal:9443", "/tenants/t1/v1/chat/completions?route=blue", openai_chat_body),
        auth_header="authorization",
        auth_value="Bearer sk-secret-vllm-custom",
        broken={"provider": {"type": "vllm", "vllmCustomUrl": "https://vllm gw.internal/v1"}},
        broken_path="provider.vllmCustomUrl",
        embeddings=Upstream("vllm-gw.internal:9443", "/tenants/t1/v1/embeddings?route=blue", openai_embeddings_body),
        embedding_model="BAAI/bge-m3",
        embedding_model_sent="BAAI/bge-m3",
    ),
    ProviderCase(
        name="generic",
        config={"provider": {"type": "generic", "apiTokens": ["sk-secret-generic"], "genericHost": "llm.internal"}},
        model="any-model",
        model_sent="any-model",
        chat=Upstream("llm.internal", "/v1/chat/completions", openai_chat_body),
        auth_header="authorization",
        auth_value="Bearer sk-secret-generic",
        broken={"provider": {"type": "generic", "apiTokens": ["sk-secret-generic"], "genericHost": 42}},
        broken_path="provider.genericHost",
        embeddings=Upstream("llm.internal", "/v1/embeddings", openai_embeddings_body),
        embedding_model="any-embedding-model",
        embedding_model_sent="any-embedding-model",
    ),
    # bedrock: Converse / ConverseStream signed with SigV4 (the signature is verified in
    # test_envoy_cloud.py), and the bearer-token mode (a Bedrock API key in apiTokens).
    ProviderCase(
        name="bedrock",
        config={
            "provider": {
                "type": "bedrock",
                "awsAccessKey": BEDROCK_ACCESS_KEY,
                "awsSecretKey": BEDROCK_SECRET_KEY,
                "awsRegion": "us-east-1",
            }
        },
        model=BEDROCK_MODEL,
        model_sent=BEDROCK_MODEL,
        chat=Upstream(
            BEDROCK_HOST,
            f"/model/{BEDROCK_MODEL_PATH}/converse",
            bedrock_body,
            stream_path=f"/model/{BEDROCK_MODEL_PATH}/converse-stream",
        ),
        auth_header="authorization",
        auth_value=f"AWS4-HMAC-SHA256 Credential={BEDROCK_ACCESS_KEY}/",
        auth_prefix=True,
        broken={"provider": {"type": "bedrock", "awsAccessKey": BEDROCK_ACCESS_KEY, "awsRegion": "us-east-1"}},
        broken_path="provider.awsAccessKey",
    ),
    ProviderCase(
        name="bedrock_apikey",
        config={"provider": {"type": "bedrock", "apiTokens": ["sk-secret-bedrock-apikey"], "awsRegion": "eu-west-3"}},
        model=BEDROCK_MODEL,
        model_sent=BEDROCK_MODEL,
        chat=Upstream(
            "bedrock-runtime.eu-west-3.amazonaws.com",
            f"/model/{BEDROCK_MODEL_PATH}/converse",
            bedrock_body,
            stream_path=f"/model/{BEDROCK_MODEL_PATH}/converse-stream",
        ),
        auth_header="authorization",
        auth_value="Bearer sk-secret-bedrock-apikey",
        broken={"provider": {"type": "bedrock", "apiTokens": ["sk-secret-bedrock-apikey"], "awsRegion": "EU West"}},
        broken_path="provider.awsRegion",
    ),
    # vertex in express mode (an API key in apiTokens, Gemini models); the service-account mode
    # (token callout) and Claude on Vertex run in test_envoy_cloud.py.
    ProviderCase(
        name="vertex",
        config={"provider": {"type": "vertex", "apiTokens": ["sk-secret-vertex-express"]}},
        model="gemini-2.0-flash",
        model_sent="gemini-2.0-flash",
        chat=Upstream(
            "aiplatform.googleapis.com",
            "/v1/publishers/google/models/gemini-2.0-flash:generateContent",
            vertex_gemini_body,
            stream_path="/v1/publishers/google/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        ),
        auth_header="x-goog-api-key",
        auth_value="sk-secret-vertex-express",
        broken={"provider": {"type": "vertex", "vertexOpenAICompatible": True, "apiTokens": ["sk-secret-vertex-express"]}},
        broken_path="provider.vertexOpenAICompatible",
    ),
]

CASE_NAMES: Final = [c.name for c in CASES]
assert len(set(CASE_NAMES)) == len(CASE_NAMES) == 35, CASE_NAMES
