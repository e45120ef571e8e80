"""The C core compiles without a warning under -Wall -Wextra; the Python is ruff- and mypy-clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "src" / "pseudonic" / "_engine"
#: Every C source the package builds: the engine, the reference C drivers, the baseline's sender.
C_SOURCES = [
    *sorted(ENGINE.glob("*.c")),
    ENGINE.parent / "drivers" / "e1000.c",
    ENGINE.parent / "drivers" / "virtio_net.c",
    ENGINE.parent / "bench" / "udp_blast.c",
]


@pytest.mark.skipif(not ENGINE.is_dir() or shutil.which("cc") is None, reason="needs the source tree and a C compiler")
def test_c_core_has_no_warnings() -> None:
    include = sysconfig.get_paths()["include"]
    for source in C_SOURCES:
        cmd = ["cc", "-fsyntax-only", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{include}", f"-I{ENGINE}",
               str(source)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "cmd",
    [
        [sys.executable, "-m", "ruff", "check", "src", "tests", "examples"],
        [sys.executable, "-m", "ruff", "format", "--check", "src", "tests", "examples"],
        [sys.executable, "-m", "mypy"],
    ],
    ids=["ruff", "ruff-format", "mypy"],
)
def test_python_is_clean(cmd: list[str]) -> None:
    tool = cmd[2]
    if subprocess.run([sys.executable, "-m", tool, "--version"], capture_output=True).returncode != 0:
        pytest.skip(f"{tool} is not installed (pip install '.[test]')")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
