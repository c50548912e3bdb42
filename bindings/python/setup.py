"""Build hook: compile and bundle ``libaiproxy.so`` into the package.

The library is ``$AIPROXY_LIB`` if set; otherwise, in a checkout of the repository, this runs
``cargo build --release -p aiproxy`` (a no-op when the build is current; skipped with
``AIPROXY_NO_CARGO=1``) and takes ``<repo>/target/release/libaiproxy.so``. The library is copied
next to the package's modules and the wheel is tagged for this platform (``py3-none-<platform>``:
no Python extension inside, so any Python 3). Without a library (no ``AIPROXY_LIB``, no checkout
or no cargo) the package installs without it and loads ``$AIPROXY_LIB`` or the system's
``libaiproxy`` (``scripts/install.sh``) at run time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
LIB_NAME = "libaiproxy.so"


REPO = HERE.parent.parent


def cargo_build() -> None:
    """Builds the library when this is a checkout of the repository and cargo is available."""
    if os.environ.get("AIPROXY_NO_CARGO") or not (REPO / "Cargo.toml").is_file() or not (REPO / "src" / "ffi.rs").is_file():
        return
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    if not Path(cargo).is_file():
        print("aiproxy: cargo not found; not building libaiproxy.so", file=sys.stderr)
        return
    print("aiproxy: cargo build --release -p aiproxy", file=sys.stderr)
    subprocess.run([cargo, "build", "--release", "-p", "aiproxy"], cwd=REPO, check=True)


def find_library() -> Path | None:
    env = os.environ.get("AIPROXY_LIB")
    if env:
        return Path(env) if Path(env).is_file() else None
    cargo_build()
    built = REPO / "target" / "release" / LIB_NAME
    return built if built.is_file() else None


LIBRARY = find_library()


class BuildPyWithLibrary(build_py):
    def run(self) -> None:
        super().run()
        if LIBRARY is not None:
            target = Path(self.build_lib) / "aiproxy" / LIB_NAME
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(LIBRARY, target)  # the file itself, not a symlink
            target.chmod(0o755)
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
