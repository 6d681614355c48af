"""``Kernel.run(..., timeout=)`` and ``mockkernel run --timeout``: the whole tree is
killed, the output so far comes with the exception, nothing leaks, the kernel serves
the next run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mockkernel.kernel import Kernel

#: a shell that writes to both streams, holds mock fds in itself and in a background
#: grandchild, then sleeps past any timeout
TREE = (
    "echo start; echo err >&2; exec 3</dev/udmabuf; "
    "(exec 4</dev/udmabuf; sleep 60) & echo forked; sleep 60"
)


def test_a_timeout_carries_the_output_and_kills_the_tree(kernel: Kernel) -> None:
    with pytest.raises(subprocess.TimeoutExpired) as got:
        kernel.run(["sh", "-c", TREE], capture_output=True, text=True, timeout=2)
    e = got.value
    assert e.timeout == 2
    # as subprocess.run: what was captured so far, bytes even with text=True
    assert e.stdout == e.output == b"start\nforked\n"
    assert e.stderr == b"err\n"
    assert kernel.leaks() == []  # every process's files released, the grandchild's too
    r = kernel.run(["sh", "-c", "exec 3</dev/udmabuf; echo again"], capture_output=True,
                   text=True, timeout=60)  # fmt: skip
    assert (r.returncode, r.stdout) == (0, "again\n")
    assert kernel.leaks() == []


def test_a_timeout_without_capture(kernel: Kernel) -> None:
    with pytest.raises(subprocess.TimeoutExpired) as got:
        kernel.run(["sleep", "60"], stdout=subprocess.DEVNULL, timeout=1)
    assert got.value.stdout is None and got.value.stderr is None
    assert kernel.leaks() == []


def test_cli_timeout() -> None:
    """``mockkernel run --timeout``: exit 124 and a line saying so; in-process it is a
    usage error (the program runs in mockkernel's own interpreter)."""
    r = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", "--check-leaks", "--timeout", "1", "--",
         "sh", "-c", "echo hi; exec 3</dev/udmabuf; sleep 60"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 124, r.stderr
    assert r.stdout == "hi\n"
    assert "timed out after 1 s: every process of the tree was killed" in r.stderr
    assert "leak" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", "--timeout", "1", "prog.py"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2
    assert "argument --timeout: needs a supervised run" in r.stderr
