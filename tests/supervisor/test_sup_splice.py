"""``splice`` between a pipe and a mock TCP socket (devmem TCP's socket, on the mock NIC's
address) moves the bytes both ways, with Linux's answers for every other input and for
the other mock files (dma-buf, ``/dev/udmabuf``, sysfs ``config``, ``/proc`` fdinfo,
vfio): the probe ``py/splice_tcp.py`` prints on the mock NIC address, supervised and
in-process, what it printed on real Linux 7.2 over loopback
(``tests/real_linux/golden/splice_tcp.txt``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mockkernel.kernel import Kernel
from mockkernel.realfd import held_fds

HERE = Path(__file__).parent
PROBE = HERE / "py" / "splice_tcp.py"
GOLDEN = (HERE.parent / "real_linux" / "golden" / "splice_tcp.txt").read_text()
NIC = "192.0.2.1"  # the default topology's NIC address

#: in-process, a ``/proc`` text file opens as a real memfd snapshot of its text
#: (``userspace/paths.py``), which the host kernel splices from; Linux's procfs file
#: has no ``splice_read`` (the supervisor's is the mock file: ``EINVAL``, as Linux)
IN_PROCESS_DIFFERS = {
    "fdinfo ->pipe EINVAL 0": "fdinfo ->pipe 16 16",
    "fdinfo off_in ->pipe EINVAL": "fdinfo off_in ->pipe 4",
}


def test_supervised_matches_real_linux(kernel: Kernel) -> None:
    held = held_fds(kernel)
    with kernel.tracer.capture() as events:
        r = kernel.run([sys.executable, str(PROBE), NIC], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == GOLDEN
    moved = [e["bytes"] for e in events if e["event"] == "splice.move"]
    assert moved[:5] == [5, 5, 5, 4, 4]  # pipe->sock three times, then sock->pipe
    assert 16 in moved  # sysfs config -> pipe (kernfs has splice ops)
    refused = {(e["file"], e["op"]) for e in events if e["event"] == "splice.unsupported"}
    assert {("dmabuf", "read"), ("dmabuf", "write"), ("[vfio-device]", "read")} <= refused
    assert {f for f, _op in refused if f.endswith("/config")} == set()
    unsupported = {e["syscall"] for e in events if e["event"] == "sup.unsupported"}
    assert unsupported == {"tee", "vmsplice"}
    assert kernel.leaks() == []
    assert {n for n in held_fds(kernel) - held if not os.path.exists(f"/proc/self/fd/{n}")} == set()


def test_in_process_matches_real_linux() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", str(PROBE), NIC],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    want = "".join(IN_PROCESS_DIFFERS.get(line, line) + "\n" for line in GOLDEN.splitlines())
    assert r.stdout == want
