"""The official ``openai`` Node SDK (tests/e2e/node, ``npm ci``) through Envoy: embeddings by
default (the Node SDK always asks for base64 and decodes it) and float, a streamed strict tool
call with the SDK's stream helper, and ``chat.completions.parse`` with zod (``zodResponseFormat``
and a ``zodFunction`` tool), for several providers. Skipped when node or the installed SDK is
missing (tests/run_all.sh runs ``npm ci`` first)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest
from mock_provider import mock_provider as mock_impl
from provider_cases import CASES



from envoy_harness import envoy_conftest as _envoy_conftest  # noqa: E402


CLIENT_KEY = _envoy_conftest().CLIENT_KEY
Proxy = _envoy_conftest().Proxy
marker = _envoy_conftest().marker


NODE_DIR: Final = Path(__file__).resolve().parents[1] / "node"
MODELS: Final = {c.name: c.model for c in CASES}
EMBEDDING_MODELS: Final = {c.name: c.embedding_model for c in CASES}


def run_node(job: dict[str, Any]) -> Any:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "openai").is_dir():
        pytest.skip("node or tests/e2e/node/node_modules missing (cd tests/e2e/node && npm ci)")
    done = subprocess.run(
        [node, str(NODE_DIR / "agents.mjs"), json.dumps(job)], capture_output=True, text=True, timeout=60, cwd=NODE_DIR
    )
    out = json.loads(done.stdout or "{}")
    assert out.get("ok"), (out, done.stderr[-2000:])
    return out["result"]


def float32(values: list[float]) -> list[float]:
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


@pytest.mark.parametrize("provider", ["openai", "gemini", "qwen", "hunyuan", "mistral"])
def test_node_sdk_embeddings_default_and_float(proxy: Proxy, provider: str) -> None:
    texts = [f"node one {marker()}", f"node two {marker()}"]
    result = run_node(
        {
            "baseURL": f"{proxy.base_url(provider)}/v1",
            "apiKey": CLIENT_KEY,
            "task": "embeddings",
            "model": EMBEDDING_MODELS[provider],
            "input": texts,
        }
    )
    expected = [mock_impl.embedding_vector(t, mock_impl.DEFAULT_EMBEDDING_DIMS) for t in texts]
    assert result["vectors"] == [float32(v) for v in expected]
    assert result["floatVectors"] == expected


@pytest.mark.parametrize("provider", ["openai", "claude", "gemini", "qwen", "hunyuan", "deepseek", "mistral"])
def test_node_sdk_streamed_strict_tool_call(proxy: Proxy, provider: str) -> None:
    word = marker()
    result = run_node(
        {
            "baseURL": f"{proxy.base_url(provider)}/v1",
            "apiKey": CLIENT_KEY,
            "task": "stream_tool",
            "model": MODELS[provider],
            "prompt": f"weather in Kyoto {word}",
        }
    )
    assert result["finishReason"] == "tool_calls"
    assert result["call"]["name"] == "get_weather" and result["call"]["id"]
    assert result["call"]["arguments"] == {"city": "mock", "unit": "celsius"}
    first, rest = result["pieces"][0], result["pieces"][1:]
    assert first["id"] == result["call"]["id"] and first["type"] == "function"
    assert first["function"]["name"] == "get_weather"
    assert all("id" not in p and "name" not in p.get("function", {}) for p in rest), rest
    assert result["lastChunk"]["choices"] == [] and result["lastChunk"]["usage"]["total_tokens"] > 0
    assert proxy.one_upstream(word)


def node_job(proxy: Proxy, provider: str, task: str, prompt: str) -> Any:
    return run_node(
        {
            "baseURL": f"{proxy.base_url(provider)}/v1",
            "apiKey": CLIENT_KEY,
            "task": task,
            "model": MODELS[provider],
            "prompt": prompt,
        }
    )


def upstream_response_schema(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    """Where each provider's docs put the JSON schema of a structured reply."""
    if provider == "claude":
        schema = body["output_config"]["format"]["schema"]
    elif provider == "gemini":
        assert body["generation_config"]["responseMimeType"] == "application/json", body
        schema = body["generation_config"]["responseJsonSchema"]
    elif provider == "qwen":
        schema = body["parameters"]["response_format"]["json_schema"]["schema"]
    else:
        schema = body["response_format"]["json_schema"]["schema"]
    assert isinstance(schema, dict)
    return schema


def upstream_tool_schema(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    """Where each provider's docs put a function tool's parameters."""
    if provider == "claude":
        schema = body["tools"][0]["input_schema"]
    elif provider == "gemini":
        schema = body["tools"][0]["function_declarations"][0]["parametersJsonSchema"]
    elif provider == "qwen":
        schema = body["parameters"]["tools"][0]["function"]["parameters"]
    elif provider == "hunyuan":
        # Tencent's ChatCompletions API: `Tools[].Function.Parameters` is a JSON string.
        schema = json.loads(body["Tools"][0]["Function"]["Parameters"])
    else:
        tool = body["tools"][0]["function"]
        assert tool["strict"] is True, tool
        schema = tool["parameters"]
    assert isinstance(schema, dict)
    return schema


@pytest.mark.parametrize("provider", ["openai", "claude", "gemini", "qwen", "mistral"])
def test_node_sdk_parse_with_zod_response_format(proxy: Proxy, provider: str) -> None:
    word = marker()
    result = node_job(proxy, provider, "zod_parse", f"rate this {word}")
    # The mock answers with the schema it was sent (tests/mock_provider): zod validated it.
    assert result["parsed"] == {"title": "mock", "score": 1, "tags": []}, result
    assert json.loads(result["content"]) == result["parsed"]
    assert result["finishReason"] == "stop"
    schema = upstream_response_schema(provider, proxy.one_upstream(word)["json"])
    assert schema["required"] == ["title", "score", "tags"] and schema["additionalProperties"] is False, schema
    assert schema["properties"]["score"]["type"] == "integer", schema


@pytest.mark.parametrize("provider", ["openai", "claude", "gemini", "qwen", "hunyuan", "deepseek", "mistral"])
def test_node_sdk_parse_with_a_zod_function_tool(proxy: Proxy, provider: str) -> None:
    word = marker()
    result = node_job(proxy, provider, "zod_tool", f"weather in Nara {word}")
    assert result["finishReason"] == "tool_calls", result
    assert result["name"] == "get_weather" and result["id"], result
    assert result["parsedArguments"] == {"city": "mock", "unit": "celsius"}, result
    schema = upstream_tool_schema(provider, proxy.one_upstream(word)["json"])
    assert schema["required"] == ["city", "unit"] and schema["additionalProperties"] is False, schema
    assert schema["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"], schema
