"""The package installs with pip and, once installed, finds the bundled ``libaiproxy.so`` without
``AIPROXY_LIB``. Offline: the wheel is built without build isolation from the packages of the
running environment (setuptools and wheel, listed in tests/requirements.txt)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PACKAGE_ROOT = REPO / "bindings" / "python"
PIP_TIMEOUT_S = 300


def pip(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args, "--no-index", "--no-deps", "--disable-pip-version-check", "-q"],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
        env=env,
    )


def test_wheel_bundles_the_library_and_installs(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    source = tmp_path / "src"
    shutil.copytree(PACKAGE_ROOT, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests", "bench"))
    lib = Path(os.environ["AIPROXY_LIB"]).resolve()
    # The copy is outside the repo, so name the library to bundle.
    built = pip(
        "wheel", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source), env=dict(os.environ, AIPROXY_LIB=str(lib))
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("aiproxy-*.whl")
    assert wheel.name.endswith("-py3-none-linux_x86_64.whl") or sys.platform != "linux"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"aiproxy/__init__.py", "aiproxy/py.typed", "aiproxy/libaiproxy.so"} <= names

    target = tmp_path / "site"
    installed = pip("install", "--target", str(target), str(wheel))
    assert installed.returncode == 0, installed.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("AIPROXY_LIB", "PYTHONPATH")}
    env["PYTHONPATH"] = str(target)
    code = (
        "import aiproxy, pathlib\n"
        "print(aiproxy.library_path())\n"
        "c = aiproxy.Config.from_dict({'provider': {'type': 'openai', 'apiTokens': ['k']}})\n"
        "a = c.exchange().on_request('POST', '/v1/chat/completions', {}, b'{\"model\":\"m\",\"messages\":[]}')\n"
        "print(type(a).__name__, aiproxy.version())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lib_line, result_line = out.stdout.splitlines()
    assert Path(lib_line).resolve() == (target / "aiproxy" / "libaiproxy.so").resolve()
    assert result_line.startswith("Forward ")
