"""Configuration loading: success paths, and errors carrying the core's code and field path."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiproxy_testutil import UPSTREAM_TOKEN, provider

import aiproxy
from aiproxy import ConfigError, ErrorCode

REPO = Path(__file__).resolve().parents[3]


def config_error(config: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        if isinstance(config, (str, bytes)):
            aiproxy.Config.from_json(config)
        else:
            aiproxy.Config.from_dict(config)
    return info.value


def test_from_dict_json_text_bytes_and_file(tmp_path: Path) -> None:
    cfg = provider("openai")
    text = json.dumps(cfg)
    path = tmp_path / "config.json"
    path.write_text(text)
    for config in (
        aiproxy.Config.from_dict(cfg),
        aiproxy.Config.from_json(text),
        aiproxy.Config.from_json(text.encode()),
        aiproxy.Config(text),
        aiproxy.Config.from_file(path),
    ):
        with config:
            assert not config.closed
            with config.exchange() as ex:
                assert isinstance(ex, aiproxy.Exchange)
        assert config.closed


def test_invalid_json_is_config_json_without_field() -> None:
    err = config_error('{"provider": ')
    assert err.code is ErrorCode.CONFIG_JSON
    assert err.field == ""
    assert "not valid JSON" in err.message
    assert isinstance(err, aiproxy.AiproxyError) and isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("config", "field", "reason"),
    [
        ({}, "provider", "missing"),
        ({"provider": []}, "provider", "expected an object"),
        ({"provider": {}}, "provider.type", "missing"),
        ({"provider": {"type": "nope"}}, "provider.type", "unknown provider type 'nope'"),
        ({"provider": {"type": "openai"}}, "provider.apiTokens", "at least one non-empty token"),
        ({"provider": {"type": "openai", "apiTokens": "sk"}}, "provider.apiTokens", "expected an array"),
        ({"provider": {"type": "openai", "apiTokens": ["a", 7]}}, "provider.apiTokens[1]", "expected a string"),
        (provider("openai", timeout=0), "provider.timeout", "greater than 0"),
        (provider("openai", timeout="soon"), "provider.timeout", "expected a number"),
        (provider("openai", protocol="grpc"), "provider.protocol", "unknown protocol"),
        (provider("openai", modelMapping={"*": 1}), "provider.modelMapping.*", "expected a string"),
        ({"provider": {"type": "azure", "apiTokens": ["k"]}}, "provider.azureServiceUrl", "required"),
        (
            provider("azure", azureServiceUrl="https://x.openai.azure.com/openai/deployments/d/chat/completions"),
            "provider.azureServiceUrl",
            "api-version",
        ),
        (provider("openai", customSettings=[{"name": "max_tokens"}]), "provider.customSettings[0].value", "missing"),
        (
            provider("openai", customSettings=[{"name": "t", "value": 1, "mode": "x"}]),
            "provider.customSettings[0].mode",
            "unknown mode",
        ),
        (
            provider("openai", context={"fileUrl": "http://f/c.txt", "serviceName": "f", "servicePort": 70000}),
            "provider.context.servicePort",
            "between 1 and 65535",
        ),
        ({"provider": {"type": "ollama"}}, "provider.ollamaServerHost", "required"),
        ({"provider": {"type": "deepl", "apiTokens": ["k"]}}, "provider.targetLang", "required"),
    ],
)
def test_invalid_config_names_the_field(config: dict[str, Any], field: str, reason: str) -> None:
    err = config_error(config)
    assert err.code is ErrorCode.CONFIG_INVALID
    assert err.field == field
    assert reason in err.message
    assert str(err) == err.message


def test_error_message_never_contains_the_token() -> None:
    err = config_error(provider("azure", apiTokens=[UPSTREAM_TOKEN, "second-secret-token"]))
    assert err.field == "provider.apiTokens"
    assert UPSTREAM_TOKEN not in err.message and "second-secret-token" not in err.message


def test_error_repr_and_pickle() -> None:
    err = config_error({"provider": {"type": "nope"}})
    assert re.match(r"ConfigError\(code=<ErrorCode.CONFIG_INVALID: 4>, message=.*field='provider.type'\)", repr(err))
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is ConfigError
    assert (clone.code, clone.message, clone.field) == (err.code, err.message, err.field)


def test_wrong_python_types_are_type_errors() -> None:
    with pytest.raises(TypeError):
        aiproxy.Config.from_dict([("provider", {})])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        aiproxy.Config.from_dict({"provider": {"type": "openai", "apiTokens": [object()]}})
    with pytest.raises(TypeError):
        aiproxy.Config.from_json(42)  # type: ignore[arg-type]


def test_version_matches_the_crate() -> None:
    cargo = (REPO / "Cargo.toml").read_text()
    match = re.search(r'^version = "([^"]+)"', cargo, re.M)
    assert match is not None
    assert aiproxy.version() == match.group(1)
    assert aiproxy.__version__


def test_library_path_follows_the_environment() -> None:
    assert aiproxy.library_path() == Path(os.environ[aiproxy.LIB_ENV])


def test_missing_library_is_a_clear_error(tmp_path: Path) -> None:
    code = (
        "import aiproxy\n"
        "try:\n"
        "    aiproxy.Config.from_dict({})\n"
        "except aiproxy.LibraryNotFoundError as e:\n"
        "    print('NOTFOUND', e)\n"
    )
    env = dict(os.environ, AIPROXY_LIB=str(tmp_path / "missing.so"), PYTHONPATH=str(REPO / "bindings" / "python"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("NOTFOUND") and "missing.so" in out.stdout
