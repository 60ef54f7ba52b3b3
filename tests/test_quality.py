"""The code stays lint-clean and type-clean: ruff on everything, mypy (strict) on bot/ and cogs/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


# The virtual environment's own ruff first: the one the test extras pinned.
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (pip install -e '.[test]')")
def test_ruff_check_and_format() -> None:
    assert RUFF is not None
    lint = run(RUFF, "check", "bot", "cogs", "tests")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    formatting = run(RUFF, "format", "--check", "bot", "cogs", "tests")
    assert formatting.returncode == 0, formatting.stdout + formatting.stderr


def test_mypy_strict_on_the_product() -> None:
    pytest.importorskip("mypy")
    result = run(sys.executable, "-m", "mypy", "bot", "cogs")
    assert result.returncode == 0, result.stdout + result.stderr
