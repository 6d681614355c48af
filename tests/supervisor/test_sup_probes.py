"""Every Python probe of ``tests/real_linux/probes`` run *supervised* prints what real Linux
7.2 printed (``tests/real_linux/golden``).

The same probes run in-process in ``tests/real_linux/test_goldens.py``,
``tests/vfio/test_real_linux_vfio.py`` and ``tests/rdma/test_rdma_goldens.py``; here each
is a separate process (``python3 PROBE.py`` under ``Kernel.run``), so every call it makes
reaches the kernel through the supervisor: the fd numbers are the child's, its buffers are
read with ``process_vm_readv``, the eventfds it hands VFIO are its own (``pidfd_getfd``),
its ``epoll`` sees the mirrors of ``epollsys.py``.  A probe written for real Linux is
exactly the outside program the supervisor is for.

``KNOWN_DIFFERENCES`` lists the steps the supervisor cannot reproduce, with the reason; a
listed step that starts to match fails the test, so the list cannot go stale.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import mockkernel
from mockkernel.topology import load_topology

TESTS = Path(__file__).resolve().parent.parent
REAL = TESTS / "real_linux"
VFIO = TESTS / "vfio" / "real_linux_guest.toml"
RXE = TESTS / "rdma" / "rxe_guest.toml"

#: probe -> the topology of the guest it needs (None: the default machine)
PROBES: dict[str, Path | None] = {
    "fd_table": None,
    "udmabuf": None,
    "dma_buf_fops": None,
    "lifetime": None,
    "proc_debugfs": None,
    "poll": None,
    "sync_file": None,
    "netlink": None,
    "rtnetlink": None,
    "dirs": None,
    "generic_file": None,
    "vfio_container": VFIO,
    "vfio_device": VFIO,
    "vfio_dmabuf": VFIO,
    "pci_caps": VFIO,
    "vfio_config": VFIO,
    "vfio_irqs": VFIO,
    "uverbs_ioctl": RXE,
    "uverbs_write": RXE,
    "uverbs_objects": RXE,
    "rdma_nldev": RXE,
}

#: probe -> {step: why the supervised run cannot give real Linux's result}
KNOWN_DIFFERENCES: dict[str, dict[str, str]] = {p: {} for p in PROBES}
KNOWN_DIFFERENCES["netlink"] = {
    "getfamily_nlctrl_ops": "nlctrl has no CTRL_CMD_GETPOLICY (as in-process)",
    "getfamily_netdev_ops": "the netdev family has no QUEUE_CREATE (as in-process)",
}
KNOWN_DIFFERENCES["rtnetlink"] = {"link_af_spec": "IFLA_AF_SPEC is not modelled (as in-process)"}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"sup_probes_{name}", REAL / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _steps(lines: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "step" in obj:
            out.setdefault(str(obj["step"]), obj)
    return out


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_probe_supervised_matches_real_linux(probe: str, tmp_path: Path) -> None:
    topology = PROBES[probe]
    k = mockkernel.boot(load_topology(topology) if topology is not None else None)
    try:
        r = k.run([sys.executable, str(REAL / "probes" / f"{probe}.py")], cwd=tmp_path,
                  capture_output=True, text=True, timeout=300)  # fmt: skip
        leaks = k.leaks()
    finally:
        k.shutdown(check=False)
    assert r.returncode == 0, r.stderr
    assert leaks == []
    golden = (REAL / "golden" / f"{probe}.jsonl").read_text().splitlines()
    actual = r.stdout.splitlines()
    known = KNOWN_DIFFERENCES[probe]
    differing = _load("compare").diff_jsonl(golden, actual)
    unexplained = [m for m in differing if m.split(":", 1)[0] not in known]
    exp, act = _steps(golden), _steps(actual)
    stale = [s for s in known if s in exp and s in act and exp[s] == act[s]]
    assert not unexplained, f"{probe} supervised differs from Linux 7.2:\n" + "\n".join(unexplained)
    assert not stale, f"{probe}: listed as known differences but now match: {stale}"
    assert set(known) <= set(exp), f"{probe}: known differences name unknown steps"


@pytest.mark.parametrize("prog", ["outsider", "asyncio_netlink"])
def test_an_outsiders_python_program_matches_real_linux(prog: str, tmp_path: Path) -> None:
    """``py/outsider.py``: subprocess with ``pass_fds``, multiprocessing ``spawn`` and
    ``forkserver`` pools, threads and a ``selectors`` loop over a dma-buf and a pipe;
    ``py/asyncio_netlink.py``: an asyncio loop reading a NETLINK_ROUTE dump through
    ``add_reader`` (epoll), a dma-buf reader and a subprocess awaited together -- the
    output real Linux 7.2 gave (``golden/py_*.txt``, ``real-linux/run``)."""
    k = mockkernel.boot()
    try:
        r = k.run([sys.executable, str(Path(__file__).parent / "py" / f"{prog}.py")],
                  cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
        leaks = k.leaks()
    finally:
        k.shutdown(check=False)
    assert r.returncode == 0, r.stderr
    assert leaks == []
    assert r.stdout == (REAL / "golden" / f"py_{prog}.txt").read_text()


def test_an_outsiders_shell_session_matches_real_linux(tmp_path: Path) -> None:
    """``sh/outsider.sh``: coreutils over the mock's /dev and /sys as one would type them
    (``ls``, ``stat`` -- sysfs files and links have no blocks, a link no size, a procfs fd
    link 64 bytes --, ``test``, ``find``, ``du``, ``wc``, a mock fd held by the shell):
    the output real Linux 7.2 gave (``golden/sh_outsider.txt``)."""
    script = Path(__file__).parent / "sh" / "outsider.sh"
    k = mockkernel.boot(load_topology(VFIO))
    try:
        r = k.run(["sh", str(script)], cwd=tmp_path, capture_output=True, text=True,
                  timeout=300)  # fmt: skip
        leaks = k.leaks()
    finally:
        k.shutdown(check=False)
    assert r.returncode == 0, r.stderr
    assert leaks == []
    assert r.stdout == (REAL / "golden" / "sh_outsider.txt").read_text()
