"""The library as a user outside this repository gets it: the Python wheel installed into a fresh
virtual environment, and a Go program built against the library installed by scripts/install.sh
(into a temporary PREFIX, found through pkg-config). Both work from a temporary directory with no
AIPROXY_LIB, PYTHONPATH or LD_LIBRARY_PATH.

    .venv/bin/python -m pytest -c tests/pytest.ini --rootdir . tests/packaging -q
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path
from typing import Final

import pytest

REPO: Final = Path(__file__).resolve().parents[2]
VERSION: Final = re.search(r'^version = "([^"]+)"', (REPO / "Cargo.toml").read_text(), re.M).group(1)  # type: ignore[union-attr]
TIMEOUT_S: Final = 900


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user: none of the repository's overrides."""
    env = {k: v for k, v in os.environ.items() if k not in ("AIPROXY_LIB", "PYTHONPATH", "LD_LIBRARY_PATH", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result  # type: ignore[no-any-return]


def test_python_wheel_in_a_fresh_venv(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    # Built from the checkout as `pip wheel ./bindings/python` does it: setup.py runs cargo build
    # (a no-op when target/release is current) and bundles the library.
    dist = tmp_path / "dist"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
         "--disable-pip-version-check", "-q", "-w", str(dist), str(REPO / "bindings" / "python")],
        env=clean_env(),
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("aiproxy-*.whl")
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    assert wheel.name == f"aiproxy-{VERSION}-py3-none-{platform}.whl", wheel.name
    with zipfile.ZipFile(wheel) as archive:
        assert "aiproxy/libaiproxy.so" in archive.namelist()

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], env=clean_env())
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--no-index", "--no-deps", "--disable-pip-version-check", "-q", str(wheel)], env=clean_env())
    code = textwrap.dedent(
        """
        import aiproxy, json
        from aiproxy import _ffi
        cfg = aiproxy.Config.from_dict({"provider": {"type": "claude", "apiTokens": ["sk-venv"]}})
        with cfg.exchange() as ex:
            body = json.dumps({"model": "claude-3-5-haiku", "messages": [{"role": "user", "content": "hi"}]})
            action = ex.on_request("POST", "/v1/chat/completions", {"content-type": "application/json"}, body)
        print(aiproxy.library_path())
        print(aiproxy.version(), aiproxy.__version__)
        print(type(action).__name__, action.authority, action.path)
        try:
            _ffi.check_version("9.9.0")
        except aiproxy.LibraryVersionError as e:
            print("MISMATCH", e)
        """
    )
    out = run([str(python), "-c", code], env=clean_env(), cwd=tmp_path).stdout.splitlines()
    assert Path(out[0]).resolve().is_relative_to(venv.resolve()), out
    assert out[1] == f"{VERSION} {VERSION}", out
    assert out[2] == "Forward api.anthropic.com /v1/messages", out
    assert out[3].startswith("MISMATCH") and "9.9.0" in out[3], out


def go_binary() -> str | None:
    return shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None)


def test_go_program_against_the_installed_library(tmp_path: Path) -> None:
    go = go_binary()
    if go is None or shutil.which("pkg-config") is None:
        pytest.skip("go or pkg-config not installed")
    prefix = tmp_path / "prefix"
    run([str(REPO / "scripts" / "install.sh")], env=clean_env(PREFIX=str(prefix)))
    lib = prefix / "lib"
    assert (lib / f"libaiproxy.so.{VERSION}").is_file()
    assert os.readlink(lib / "libaiproxy.so.0") == f"libaiproxy.so.{VERSION}"
    assert os.readlink(lib / "libaiproxy.so") == "libaiproxy.so.0"
    assert (prefix / "include" / "aiproxy.h").read_bytes() == (REPO / "include" / "aiproxy.h").read_bytes()
    assert (prefix / "share" / "lua" / "5.1" / "aiproxy" / "nginx.lua").is_file()
    soname = run(["readelf", "-d", str(lib / f"libaiproxy.so.{VERSION}")]).stdout
    assert "Library soname: [libaiproxy.so.0]" in soname, soname
    pc_env = clean_env(PKG_CONFIG_PATH=str(lib / "pkgconfig"))
    assert run(["pkg-config", "--modversion", "aiproxy"], env=pc_env).stdout.strip() == VERSION

    app = tmp_path / "app"
    app.mkdir()
    (app / "go.mod").write_text(
        "module example.com/app\n\ngo 1.24\n\n"
        "require github.com/aiproxy/aiproxy/bindings/go v0.0.0\n\n"
        f"replace github.com/aiproxy/aiproxy/bindings/go => {REPO / 'bindings' / 'go'}\n"
    )
    (app / "main.go").write_text(
        textwrap.dedent(
            """
            package main

            import (
                "fmt"
                "os"

                aiproxy "github.com/aiproxy/aiproxy/bindings/go"
            )

            func main() {
                cfg, err := aiproxy.NewConfig([]byte(`{"provider": {"type": "gemini", "apiTokens": ["k"]}}`))
                if err != nil {
                    fmt.Println(err)
                    os.Exit(1)
                }
                defer cfg.Close()
                ex, err := cfg.NewExchange()
                if err != nil {
                    fmt.Println(err)
                    os.Exit(1)
                }
                defer ex.Close()
                body := []byte(`{"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "hi"}]}`)
                res, err := ex.OnRequest("POST", "/v1/chat/completions", nil, body)
                if err != nil {
                    fmt.Println(err)
                    os.Exit(1)
                }
                fmt.Println(aiproxy.Version(), res.Action, res.Authority, res.Path)
            }
            """
        )
    )
    go_env = clean_env(
        PKG_CONFIG_PATH=str(lib / "pkgconfig"), CGO_ENABLED="1", GOFLAGS="-mod=mod", GOPROXY="off", GOTOOLCHAIN="local"
    )
    go_env["PATH"] = f"{Path(go).parent}:{go_env.get('PATH', '')}"
    # Go's build cache does not key cgo packages on pkg-config's answer (only on the environment's
    # CGO_* flags): name this PREFIX in CGO_CFLAGS so a cached build for another PREFIX is not reused.
    go_env["CGO_CFLAGS"] = f"-g -O2 -DAIPROXY_TEST_PREFIX={tmp_path.name}_{os.getpid()}"
    run([go, "build", "-tags", "aiproxy_system", "-o", "app", "."], env=go_env, cwd=app)
    dynamic = run(["readelf", "-d", str(app / "app")]).stdout
    assert "Shared library: [libaiproxy.so.0]" in dynamic, dynamic
    assert str(lib) in dynamic and "target/release" not in dynamic, dynamic  # rpath to PREFIX only
    out = run([str(app / "app")], env=clean_env(), cwd=tmp_path).stdout.strip()
    assert out == f"{VERSION} forward generativelanguage.googleapis.com /v1beta/models/gemini-2.0-flash:generateContent", out
