"""Every ``$ mockkernel ...`` transcript in the README prints what the README says.

A transcript is a ``$ command`` line in a ```` ```sh ```` block followed by its output
lines; commands shown without output (e.g. ``--trace FILE``) are not run.  Commands run
from the repository root with this interpreter's ``mockkernel``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def transcripts() -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        cmd: str | None = None
        lines: list[str] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                if cmd is not None and lines:
                    out.append((cmd, lines))
                cmd, lines = line[2:].split("  #", 1)[0].strip(), []
            elif cmd is not None:
                lines.append(line)
        if cmd is not None and lines:
            out.append((cmd, lines))
    return out


def test_the_readme_has_transcripts() -> None:
    assert len(transcripts()) >= 4


@pytest.mark.parametrize("cmd,expected", transcripts(), ids=[c for c, _ in transcripts()])
def test_transcript(cmd: str, expected: list[str], tmp_path: Path) -> None:
    assert cmd.startswith("mockkernel ")
    runner = f"{shlex.quote(sys.executable)} -m mockkernel"
    shell = runner + cmd[len("mockkernel") :]
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.stderr == ""
    assert proc.stdout.splitlines() == expected
