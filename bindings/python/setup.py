"""Build hook: bundle ``libaiproxy.so`` into the package when it has been built.

The library is taken from ``$AIPROXY_LIB`` if set, else from ``<repo>/target/release`` (run
``cargo build --release`` first). When found, it is copied next to the package's modules and the
wheel is tagged for this platform; when not, the package installs without it and loads the library
named by ``$AIPROXY_LIB`` at run time.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
LIB_NAME = "libaiproxy.so"


def find_library() -> Path | None:
    env = os.environ.get("AIPROXY_LIB")
    candidates = [Path(env)] if env else []
    candidates.append(HERE.parent.parent / "target" / "release" / LIB_NAME)
    return next((c for c in candidates if c.is_file()), None)


LIBRARY = find_library()


class BuildPyWithLibrary(build_py):
    def run(self) -> None:
        super().run()
        if LIBRARY is not None:
            target = Path(self.build_lib) / "aiproxy" / LIB_NAME
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(LIBRARY, target)
            print(f"aiproxy: bundled {LIBRARY}")
        else:
            print("aiproxy: libaiproxy.so not found; set AIPROXY_LIB at run time")


class PlatformDistribution(Distribution):
    """A wheel holding the native library is platform-specific."""

    def has_ext_modules(self) -> bool:
        return LIBRARY is not None


cmdclass: dict[str, type] = {"build_py": BuildPyWithLibrary}
try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    try:
        from wheel.bdist_wheel import bdist_wheel
    except ImportError:
        bdist_wheel = None

if bdist_wheel is not None:

    class PlatformWheel(bdist_wheel):
        """No Python extension inside: any Python 3, but only this platform."""

        def get_tag(self) -> tuple[str, str, str]:
            python, abi, plat = super().get_tag()
            if LIBRARY is not None:
                return "py3", "none", plat
            return python, abi, plat

    cmdclass["bdist_wheel"] = PlatformWheel

setup(cmdclass=cmdclass, distclass=PlatformDistribution)
