"""The supervisor's C probes print on the mock what they printed on real Linux 7.2.

The goldens (``tests/real_linux/golden/c_*.txt``) are the probes' output in the QEMU
guest, as root, built with the guest's ``cc`` (``tests/real_linux/regen_c.sh``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import mockkernel
from mockkernel.kernel import Kernel
from mockkernel.topology import load_topology

TESTS = Path(__file__).parent.parent
GOLDEN = TESTS / "real_linux" / "golden"

#: the machine each probe needs, as the guest has it (the default topology otherwise)
GUESTS = {
    "vfioshare": TESTS / "vfio" / "real_linux_guest.toml",
    "vfiomsi": TESTS / "vfio" / "real_linux_guest.toml",
    "exitorder": TESTS / "vfio" / "real_linux_guest.toml",
    "verbsshare": TESTS / "rdma" / "rxe_guest.toml",
    "newcalls": TESTS / "vfio" / "real_linux_guest.toml",  # (a PCI function's sysfs link)
    "irqloop": TESTS / "vfio" / "real_linux_guest.toml",  # (QEMU's edu: INTx and MSI)
}

#: (probe, golden line) -> what the mock prints instead, and why
KNOWN_DIFFERENCES: dict[tuple[str, str], tuple[str]] = {}


@pytest.mark.parametrize(
    "probe",
    [
        "fdops",
        "forkexec",
        "mmapfork",
        "pollprobe",
        "selectprobe",
        "udmabuf_selftest",
        "scmprobe",
        "cloneprobe",
        "epollprobe",
        "mapprot",
        "fdcalls",
        "pinprobe",
        "vfioshare",
        "vfiomsi",
        "verbsshare",
        "sockblock",
        "sockthreads",
        "spliceprobe",
        "attrprobe",
        "inotifyprobe",
        "exitorder",
        "newcalls",
        "outsider",
        "irqloop",
    ],
)
def test_probe_matches_real_linux(kernel: Kernel, build: Callable[[str], str], probe: str) -> None:
    guest = GUESTS.get(probe)
    k = kernel if guest is None else mockkernel.boot(load_topology(guest))
    try:
        r = k.run([build(probe)], capture_output=True, text=True, timeout=120)
    finally:
        if k is not kernel:
            assert k.shutdown(check=False) == []
    assert r.returncode == 0, r.stdout + r.stderr
    want = [KNOWN_DIFFERENCES.get((probe, line), (line,))[0]
            for line in (GOLDEN / f"c_{probe}.txt").read_text().splitlines()]  # fmt: skip
    assert r.stdout.splitlines() == want


#: the sections of ``badptr`` and the machine each needs
BADPTR = {
    "dmabuf": None,
    "vfio": TESTS / "vfio" / "real_linux_guest.toml",
    "uverbs": TESTS / "rdma" / "rxe_guest.toml",
}


@pytest.mark.parametrize("part", sorted(BADPTR))
def test_bad_pointers_get_linuxs_errno_order(build: Callable[[str], str], part: str) -> None:
    """Garbage pointers on dma-buf, VFIO and uverbs fds (``badptr.c``): EBADF, EINVAL,
    ESPIPE and uverbs' EACCES come before EFAULT where Linux checks them first (the
    supervisor passes ``write``'s buffer unread: ``mockkernel.uaccess.UserBuffer``)."""
    guest = BADPTR[part]
    k = mockkernel.boot(load_topology(guest) if guest is not None else None)
    try:
        r = k.run([build("badptr"), part], capture_output=True, text=True, timeout=120)
    finally:
        assert k.shutdown(check=False) == []
    assert r.returncode == 0, r.stdout + r.stderr
    sections: dict[str, list[str]] = {}
    for line in (GOLDEN / "c_badptr.txt").read_text().splitlines():
        if line.startswith("== "):
            sections[line[3:]] = []
        else:
            sections[next(reversed(sections))].append(line)
    assert r.stdout.splitlines() == sections[part]
