"""Deferred driver probes (``boot(lazy=True, probe_ids=N)``, ``Kernel.defer_probes``).

The pytest fixture boots a topology's later kernels with their PCI driver probes
deferred until something could see them.  Such a kernel must be, to everything a test
can observe, the kernel an eager boot makes: the same sysfs and ``/dev`` trees (names,
inode numbers, modes, device numbers, contents), the same ids and fd numbers, the same
bound drivers and subsystems, the same trace events.  Each test here runs one sequence
of observations on an eagerly booted kernel and on a lazily probed one of the same
topology, and compares them -- for the default topology and every topology of
``examples/`` and of the tests.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mockkernel import boot
from mockkernel.fault_inject import FaultInject
from mockkernel.kernel import Kernel
from mockkernel.pci.core import PciCore
from mockkernel.vfs import ChrDev, Dir, Symlink

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGIES: list[Any] = [
    None,
    *sorted(str(p) for p in (ROOT / "examples").glob("*.toml")),
    str(ROOT / "tests/vfio/real_linux_guest.toml"),
    str(ROOT / "tests/rdma/rxe_guest.toml"),
]
IDS = ["default", *(Path(t).stem for t in TOPOLOGIES[1:])]


def _tree(kernel: Kernel, top: str) -> list[tuple[Any, ...]]:
    """Every node under ``top`` of the mock tree: path, kind, inode, mode, rdev, target,
    and what a read of a regular file gives (bytes or an errno), in listing order."""
    out: list[tuple[Any, ...]] = []
    vfs = kernel.vfs

    def walk(path: str, node: Any) -> None:
        ino = node.inode()
        entry: tuple[Any, ...] = (path, type(node).__name__, ino.ino, ino.mode, ino.rdev)
        if isinstance(node, Symlink):
            entry += (node.target,)
        elif not isinstance(node, (Dir, ChrDev)) and ino.mode & 0o444:
            try:
                with open(path, "rb") as f:
                    entry += (f.read(4096),)
            except OSError as e:
                entry += (errno.errorcode.get(e.errno or 0, e.errno),)
        out.append(entry)
        if isinstance(node, Dir):
            for name, child in list(node.children.items()):
                walk(f"{path}/{name}", child)

    walk(top, vfs.lookup(top))
    return out


def _files(kernel: Kernel) -> list[tuple[int, str]]:
    return [(fid, type(f.f_op).__name__) for fid, f in kernel.live_files.items()]


Step = Callable[[Kernel, dict[str, Any]], None]


def _open_udmabuf(kernel: Kernel, seen: dict[str, Any]) -> None:
    fd = os.open("/dev/udmabuf", os.O_RDWR)
    seen.setdefault("udmabuf", []).append((fd, _files(kernel)))
    os.close(fd)


def _list_sys(kernel: Kernel, seen: dict[str, Any]) -> None:
    seen["sys"] = _tree(kernel, "/sys")


def _list_dev(kernel: Kernel, seen: dict[str, Any]) -> None:
    seen["dev"] = _tree(kernel, "/dev")
    seen["dev_names"] = sorted(os.listdir("/dev"))


def _pci_bound(kernel: Kernel, seen: dict[str, Any]) -> None:
    seen["bound"] = {bdf: d.name for bdf, d in kernel.subsys(PciCore).bound.items()}


def _subsystems(kernel: Kernel, seen: dict[str, Any]) -> None:
    seen["subsystems"] = [type(s).__name__ for s in kernel.subsystems.values()]


def _traced(kernel: Kernel, seen: dict[str, Any]) -> None:
    with kernel.tracer.capture() as events:
        fd = os.open("/dev/udmabuf", os.O_RDWR)
        os.close(fd)
        os.listdir("/sys/bus/pci/devices")
    seen["events"] = [dict(e) for e in events]


def _missing_dev(kernel: Kernel, seen: dict[str, Any]) -> None:
    try:
        os.open("/dev/infiniband/uverbs0", os.O_RDWR)
    except OSError as e:
        seen["uverbs0"] = e.errno
    else:
        raise AssertionError("no uverbs0 expected")


def _uverbs(kernel: Kernel, seen: dict[str, Any]) -> None:
    if not os.path.exists("/dev/infiniband"):
        seen["uverbs"] = None
        return
    names = sorted(os.listdir("/dev/infiniband"))
    seen["uverbs"] = names
    for name in names:
        if name.startswith("uverbs"):
            fd = os.open(f"/dev/infiniband/{name}", os.O_RDWR)
            seen.setdefault("uverbs_fd", []).append((fd, _files(kernel)))
            os.close(fd)


#: orders in which a test first looks at its kernel (the first step is what runs the
#: probes, unless it is an open of a node the core made)
SEQUENCES: dict[str, list[Step]] = {
    "open-then-list": [_open_udmabuf, _open_udmabuf, _list_sys, _list_dev, _pci_bound],
    "list-dev-first": [_list_dev, _open_udmabuf, _list_sys, _subsystems],
    "bound-first": [_pci_bound, _open_udmabuf, _list_dev, _uverbs],
    "traced-first": [_traced, _open_udmabuf, _list_sys],
    "open-then-traced": [_open_udmabuf, _traced, _subsystems, _uverbs],
    "missing-node": [_open_udmabuf, _uverbs, _list_dev],
    "subsystems-first": [_subsystems, _open_udmabuf, _list_sys],
}


def _observe(kernel: Kernel, steps: list[Step]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    with kernel.installed():
        for step in steps:
            step(kernel, seen)
        seen["last_id"] = kernel.new_id()
    seen["leaks"] = kernel.shutdown(check=False)
    return seen


def _template(topology: Any) -> tuple[Any, int]:
    first = boot(topology)
    try:
        assert first.probe_ids is not None
        return first.topology, first.probe_ids
    finally:
        first.shutdown()


@pytest.mark.parametrize("topology", TOPOLOGIES, ids=IDS)
@pytest.mark.parametrize("sequence", list(SEQUENCES))
def test_lazily_probed_kernel_is_the_eager_one(topology: Any, sequence: str) -> None:
    topo, probe_ids = _template(topology)
    steps = SEQUENCES[sequence]
    eager = _observe(boot(topo), steps)
    lazy = _observe(boot(topo, lazy=True, probe_ids=probe_ids), steps)
    assert lazy.keys() == eager.keys()
    for key in eager:
        assert lazy[key] == eager[key], key
    assert eager["leaks"] == []


@pytest.mark.parametrize("topology", TOPOLOGIES, ids=IDS)
def test_an_open_of_a_core_node_does_not_probe(topology: Any) -> None:
    """The point of it: opening ``/dev/udmabuf`` builds none of what the probes make."""
    topo, probe_ids = _template(topology)
    kernel = boot(topo, lazy=True, probe_ids=probe_ids)
    with kernel.installed():
        os.close(os.open("/dev/udmabuf", os.O_RDWR))
        assert kernel.probes_pending
        os.listdir("/dev")  # a listing could show what they make: they run
        assert not kernel.probes_pending
    assert kernel.shutdown() == []


def test_a_kernel_shut_down_unprobed_cleans_up() -> None:
    topo, probe_ids = _template(None)
    before = sorted(os.listdir("/proc/self/fd"))
    kernel = boot(topo, lazy=True, probe_ids=probe_ids)
    with kernel.installed():
        os.close(os.open("/dev/udmabuf", os.O_RDWR))
    assert kernel.probes_pending
    assert kernel.shutdown() == []
    assert not kernel.probes_pending
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_probe_ids_are_recorded_by_an_eager_boot() -> None:
    kernel = boot()
    try:
        assert kernel.probe_ids is not None and kernel.probe_ids > 0
    finally:
        kernel.shutdown()


@pytest.mark.parametrize("how", ["lookup", "subsys", "subsystems"])
def test_two_threads_run_the_probes_once(how: str) -> None:
    topo, probe_ids = _template(None)
    eager = boot(topo)
    want = (_tree(eager, "/sys"), {b: d.name for b, d in eager.bound.items()})
    eager.shutdown()
    kernel = boot(topo, lazy=True, probe_ids=probe_ids)
    kernel.finish_start()  # (the core boots; the probes wait)
    assert kernel.probes_pending
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def use() -> None:
        try:
            barrier.wait()
            if how == "lookup":
                kernel.vfs.lookup("/sys/bus/pci/devices")
            elif how == "subsys":
                kernel.subsys(PciCore)
            else:
                kernel.subsystems  # noqa: B018
        except BaseException as e:  # (reported below)
            errors.append(e)

    threads = [threading.Thread(target=use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert not kernel.probes_pending
    got = (_tree(kernel, "/sys"), {b: d.name for b, d in kernel.bound.items()})
    assert got == want
    assert kernel.shutdown() == []


def test_an_armed_fail_nth_is_not_spent_by_the_probes() -> None:
    """A ``fail-nth`` count is the test's syscalls', as at an eager boot: the probes
    never spend it (arming one asks for the fault-injection subsystem, which runs them
    first; and they run with no count armed)."""
    topo, probe_ids = _template(None)

    def run(kernel: Kernel) -> list[tuple[str, int]]:
        with kernel.installed():
            os.close(os.open("/dev/udmabuf", os.O_RDWR))
            inject = kernel.subsys(FaultInject)
            inject.arm(kernel.current, 1)
            with contextlib.suppress(OSError):
                os.close(os.open("/dev/udmabuf", os.O_RDWR))
            inject.arm(kernel.current, 0)
            got = list(inject.injected)
        kernel.shutdown(check=False)
        return got

    assert run(boot(topo, lazy=True, probe_ids=probe_ids)) == run(boot(topo))


def test_probes_that_outrun_their_ids_are_reported() -> None:
    """Too few ids set aside (a template of another topology): the kernel says so at
    shutdown rather than silently giving an id twice."""
    topo, probe_ids = _template(None)
    kernel = boot(topo, lazy=True, probe_ids=probe_ids - 1)
    kernel.finish_probes()
    leaks = kernel.shutdown(check=False)
    assert any("deferred probes took more ids" in line for line in leaks)
    exact = boot(topo, lazy=True, probe_ids=probe_ids)
    exact.finish_probes()
    assert exact.shutdown() == []
