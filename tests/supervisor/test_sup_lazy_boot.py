"""A kernel whose boot was deferred (``boot(lazy=True)``: a per-test kernel) runs a
supervised program as an eagerly booted one does (the same tree, the same ids), and a
boot that fails is the run's error, with no child left behind, by either launch route
(the supervisor boots the kernel before it starts the child)."""

from __future__ import annotations

import errno
import os

import pytest

import mockkernel
from mockkernel.driver import DriverRegistry
from mockkernel.kernel import Kernel
from mockkernel.pci import PciDev
from mockkernel.supervisor.launch import spawn_supported
from mockkernel.supervisor.run import supervise

ROUTES = [
    pytest.param(
        "spawn",
        marks=pytest.mark.skipif(not spawn_supported(), reason="no posix_spawn route here"),
    ),
    "fork",
]

_LS_DEV = ["sh", "-c", "ls /dev/udmabuf /dev/vfio /dev/infiniband; cat /sys/class/net/*/ifindex"]


def _run(kernel: Kernel, argv: list[str], route: str) -> tuple[int, str]:
    r, w = os.pipe()
    try:
        code = supervise(kernel, argv, stdio=(None, w, None), route=route)
    finally:
        os.close(w)
    with open(r, "rb") as f:
        return code, f.read().decode()


@pytest.mark.parametrize(
    "route",
    [
        pytest.param(
            "spawn",
            marks=pytest.mark.skip(
                reason="known bug: this run intermittently hangs in the tracer's waitpid on"
                " the spawn route (issue 15 note, session 6); the fork route is tested"
            ),
        ),
        "fork",
    ],
)
def test_a_lazy_kernel_serves_the_tree_as_an_eager_one(route: str) -> None:
    eager = mockkernel.boot()
    lazy = mockkernel.boot(lazy=True)
    try:
        assert lazy.start_pending
        got = _run(lazy, _LS_DEV, route)
        assert not lazy.start_pending
        assert got == _run(eager, _LS_DEV, route)
        assert got[0] == 0 and "uverbs0" in got[1]
        assert lazy.new_id() == eager.new_id()  # the boot and the run took the same ids
    finally:
        lazy.shutdown()
        eager.shutdown()


class _FailingProbe:
    """A PCI driver whose probe fails: the deferred boot fails at the kernel's first use."""

    name = "failing_probe"

    def probe(self, kernel: Kernel, pdev: PciDev) -> None:
        raise RuntimeError("probe failed on purpose")

    def remove(self, kernel: Kernel, pdev: PciDev) -> None:
        pass


class _Plugin:
    @mockkernel.hookimpl
    def mockkernel_register(self, registry: DriverRegistry) -> None:
        registry.add_pci_driver(_FailingProbe())


_TOPOLOGY = """
[[root_ports]]
bdf = "0000:00:01.0"

[[devices]]
bdf = "0000:01:00.0"
root_port = "0000:00:01.0"
vendor = 0x1af4
device = 0x1041
class = 0x020000
driver = "failing_probe"
iommu_group = 1
"""


@pytest.mark.parametrize("route", ROUTES)
def test_a_failing_deferred_boot_is_the_runs_error_and_leaves_no_child(route: str) -> None:
    kernel = mockkernel.boot(_TOPOLOGY, plugins=[_Plugin()], lazy=True)
    try:
        with pytest.raises(RuntimeError, match="probe failed on purpose"):
            _run(kernel, ["true"], route)
    finally:
        kernel.shutdown(check=False)
    with pytest.raises(ChildProcessError) as e:
        os.waitpid(-1, os.WNOHANG)  # no child of ours left, not even a zombie
    assert e.value.errno == errno.ECHILD
