"""``sendfile`` into a mock TCP socket (devmem TCP's socket, on the mock NIC's address)
sends the file's bytes, with Linux's answers for every other input: the probe
``py/sendfile_tcp.py`` prints on the mock NIC address, supervised and in-process, what
it printed on real Linux 7.2 over loopback (``tests/real_linux/golden/sendfile_tcp.txt``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mockkernel.kernel import Kernel
from mockkernel.realfd import held_fds

HERE = Path(__file__).parent
PROBE = HERE / "py" / "sendfile_tcp.py"
GOLDEN = (HERE.parent / "real_linux" / "golden" / "sendfile_tcp.txt").read_text()
NIC = "192.0.2.1"  # the default topology's NIC address


def test_supervised_matches_real_linux(kernel: Kernel) -> None:
    held = held_fds(kernel)
    with kernel.tracer.capture() as events:
        r = kernel.run([sys.executable, str(PROBE), NIC], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == GOLDEN
    sent = [(e["offset"], e["sent"]) for e in events if e["event"] == "tcp.sendfile"]
    assert sent == [(None, 4), (10, 3), (100, 0)]  # (count 0 returns before reading)
    assert kernel.leaks() == []
    # the child's input file, fetched for each call (pidfd_getfd), is no longer held
    assert {n for n in held_fds(kernel) - held if not os.path.exists(f"/proc/self/fd/{n}")} == set()


def test_in_process_matches_real_linux() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", str(PROBE), NIC],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == GOLDEN
