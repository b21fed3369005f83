"""The stubs match the installed module (mypy's stubtest) and type-check real usage."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("mypy")

HERE = os.path.dirname(os.path.abspath(__file__))


def run(*args: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=HERE, timeout=300
    )


def test_stubtest() -> None:
    allowlist = os.path.join(HERE, "stubtest-allowlist.txt")
    args = ["mypy.stubtest", "s3db"]
    if os.path.exists(allowlist):
        args += ["--allowlist", allowlist]
    out = run(*args)
    assert out.returncode == 0, out.stdout + out.stderr


def test_usage_type_checks() -> None:
    out = run("mypy", "--strict", "--no-incremental", "typed_usage.py")
    assert out.returncode == 0, out.stdout + out.stderr
