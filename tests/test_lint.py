"""The code is lint-clean under the project's ruff configuration (pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).with_name("ruff")
    ruff = str(ruff) if ruff.exists() else shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (setup.sh installs it into .venv)")
    result = subprocess.run([ruff, "check", "--no-cache", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing():
    """mypy with the configuration in pyproject.toml (check_untyped_defs) over provision/ and plugins/."""
    mypy = Path(sys.executable).with_name("mypy")
    if not mypy.exists():
        pytest.skip("mypy is not installed (setup.sh installs it into .venv)")
    result = subprocess.run([str(mypy), "--no-incremental", "--cache-dir", "/dev/null"], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)  # no cache: the suite may run as a user who cannot write here
    assert result.returncode == 0, result.stdout + result.stderr
