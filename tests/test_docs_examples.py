"""The test examples in the README and the tutorial run as written (with the installed fixture)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _block(doc: str, pattern: str) -> str:
    m = re.search(pattern, (ROOT / doc).read_text(), re.S)
    assert m is not None, f"{doc}: example not found"
    return m.group(1)


def test_readme_and_tutorial_examples_pass(tmp_path: Path) -> None:
    (tmp_path / "test_readme.py").write_text(
        _block("README.md", r"## In tests\n\n```python\n(.*?)```")
    )
    (tmp_path / "test_tutorial.py").write_text(
        _block("docs/tutorial.md", r"```python\n(import errno.*?)```")
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout


def test_testing_guide_examples_pass(tmp_path: Path) -> None:
    """Every Python block of docs/testing.md is a test file that passes as written."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs/testing.md").read_text(), re.S)
    assert len(blocks) == 5, "docs/testing.md: the five entry points"
    for i, block in enumerate(blocks):
        (tmp_path / f"test_testing_{i}.py").write_text(block)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "6 passed" in run.stdout, run.stdout
