"""Shared setup for the Python binding's tests.

The tests exercise the package in this source tree (``bindings/python`` goes first on
``sys.path``) against ``$AIPROXY_LIB``, which defaults to ``<repo>/target/release/libaiproxy.so``;
when that file is missing it is built once with ``cargo build --release``. ``<repo>/tests`` is put
on the path for the provider mock and the OpenAI schema validator.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PACKAGE_ROOT = REPO / "bindings" / "python"
DEFAULT_LIB = REPO / "target" / "release" / "libaiproxy.so"
CARGO_BUILD_TIMEOUT_S = 900

for path in (PACKAGE_ROOT, REPO / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

if not os.environ.get("AIPROXY_LIB"):
    os.environ["AIPROXY_LIB"] = str(DEFAULT_LIB)
    if not DEFAULT_LIB.is_file():
        subprocess.run(
            ["cargo", "build", "--release", "--lib"],
            cwd=REPO,
            check=True,
            timeout=CARGO_BUILD_TIMEOUT_S,
        )

import aiproxy  # noqa: E402  (after the path and library setup above)
from aiproxy_testutil import provider  # noqa: E402


@pytest.fixture(scope="session")
def openai_config() -> Iterator[aiproxy.Config]:
    with aiproxy.Config.from_dict(provider("openai")) as config:
        yield config
