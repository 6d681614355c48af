"""A deferred boot (``boot(lazy=True)``, the fixture after a topology's first boot): the
kernel comes up at its first use, and is then the kernel an eager boot makes -- the same
tree, the same ids, no boot events in a capture opened afterwards -- while a kernel never
used shuts down without ever having booted."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import mockkernel
from mockkernel.kernel import Kernel
from mockkernel.pci.core import PciCore
from mockkernel.vfs import Dir, Vfs


def _tree(kernel: Kernel) -> list[tuple[str, int]]:
    """Every path of the mock tree under /dev and /sys with its node's id (its ino)."""
    vfs = kernel.subsys(Vfs)
    out: list[tuple[str, int]] = []

    def walk(path: str) -> None:
        for name in sorted(vfs.listdir(path) or ()):
            child = f"{path}/{name}"
            node = vfs.lookup(child, False)
            if node is None:  # a real entry of an overlay directory (/dev)
                continue
            out.append((child, node.ino))
            if isinstance(node, Dir):
                walk(child)

    for root in ("/dev", "/sys"):
        walk(root)
    return out


def test_a_lazy_kernel_boots_at_its_first_use_as_an_eager_one_does() -> None:
    eager = mockkernel.boot()
    lazy = mockkernel.boot(lazy=True)
    try:
        assert lazy.start_pending and not eager.start_pending
        assert lazy.subsys(PciCore).bus is not None  # the first use
        assert not lazy.start_pending
        assert _tree(lazy) == _tree(eager)
        assert lazy.new_id() == eager.new_id()  # the boot took the same ids
    finally:
        lazy.shutdown()
        eager.shutdown()


@pytest.mark.parametrize(
    "first_use",
    [
        lambda k: k.subsystems,
        lambda k: k.new_id(),
        lambda k: k.vfs,
        lambda k: k.pci,
        lambda k: k.leaks(),
        lambda k: k.tracer.add_sink(lambda event: None),
    ],
    ids=["subsystems", "new_id", "vfs", "pci", "leaks", "add_sink"],
)
def test_each_way_in_finishes_the_boot(first_use: object) -> None:
    kernel = mockkernel.boot(lazy=True)
    try:
        assert kernel.start_pending
        first_use(kernel)  # type: ignore[operator]
        assert not kernel.start_pending
        assert "udmabuf" in kernel.subsys(Vfs).listdir("/dev")
    finally:
        kernel.shutdown()


def test_installing_and_recording_openers_are_no_use() -> None:
    kernel = mockkernel.boot(lazy=True)
    redir = kernel.install()
    kernel.record_openers = True
    try:
        assert kernel.start_pending
        assert os.path.exists("/tmp")  # a real path: still no use
        assert kernel.start_pending
        fd = os.open("/dev/udmabuf", os.O_RDWR)  # a mock one is
        assert not kernel.start_pending
        assert kernel.opened_at(kernel.init_process.files[fd]) is not None
        os.close(fd)
    finally:
        redir.uninstall()
        kernel.shutdown()


def test_a_capture_opened_before_the_first_use_sees_no_boot_events() -> None:
    eager = mockkernel.boot()
    lazy = mockkernel.boot(lazy=True)
    try:
        with eager.tracer.capture() as e_events, lazy.tracer.capture() as l_events:
            assert not lazy.start_pending  # the capture finished the boot, untraced
            for k in (eager, lazy):
                k.subsys(Vfs).lookup("/dev/udmabuf")
        assert [e["event"] for e in l_events] == [e["event"] for e in e_events]
        assert not any(e["event"].startswith(("pci.", "module.")) for e in l_events)
        assert lazy.tracer.seq == eager.tracer.seq
    finally:
        lazy.shutdown()
        eager.shutdown()


def test_a_kernel_never_used_shuts_down_without_booting() -> None:
    started: list[Kernel] = []
    kernel = Kernel(mockkernel.boot().topology, mockkernel.boot().plugin_manager)
    kernel.defer_start(started.append)
    assert kernel.shutdown() == []
    assert started == []  # never brought up
    assert not kernel.start_pending


def test_a_boot_error_surfaces_at_the_first_use() -> None:
    def start(kernel: Kernel) -> None:
        raise OSError(19, "probe failed")

    kernel = Kernel(mockkernel.boot().topology, mockkernel.boot().plugin_manager)
    kernel.defer_start(start)
    with pytest.raises(OSError, match="probe failed"):
        kernel.subsys(PciCore)
    kernel.shutdown(check=False)


INNER = """
import os

def test_a_first(mock_kernel):
    assert not mock_kernel.start_pending  # the topology's first boot: eager
    os.close(os.open("/dev/udmabuf", os.O_RDWR))

def test_b_untouched(mock_kernel):
    assert mock_kernel.start_pending  # booted before in this session: deferred

def test_c_used(mock_kernel):
    fd = os.open("/dev/udmabuf", os.O_RDWR)
    assert fd in mock_kernel.init_process.files and not mock_kernel.start_pending
    os.close(fd)

def test_d_own_kernel(mock_kernel):
    assert mock_kernel.start_pending and not mock_kernel.init_process.files

def test_e_leak_still_reported(mock_kernel):
    os.open("/dev/udmabuf", os.O_RDWR)
"""


_NO_PLUGINS = ("-p", "no:xdist", "-p", "no:randomly", "-p", "no:cacheprovider")


def test_the_fixture_defers_boots_after_the_first(tmp_path: Path) -> None:
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(textwrap.dedent(INNER))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(test_file), *_NO_PLUGINS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert "5 passed, 1 error" in out, out
    assert "ERROR at teardown of test_e_leak_still_reported" in out, out


def test_threads_that_use_it_first_together_wait_for_one_boot() -> None:
    """The first use from several threads at once: one boots, the others wait for the
    end (none sees a half-booted kernel: /dev/udmabuf is there for all)."""
    from mockkernel.lifecycle import start_kernel

    template = mockkernel.boot()
    template.shutdown()
    booted: list[int] = []

    def slow_start(kernel: Kernel) -> None:
        booted.append(threading.get_ident())
        time.sleep(0.05)  # the others arrive meanwhile
        start_kernel(kernel)

    kernel = Kernel(template.topology, template.plugin_manager)
    kernel.defer_start(slow_start)
    barrier = threading.Barrier(4)
    found: list[object] = []

    def use() -> None:
        barrier.wait()
        found.append(kernel.subsys(Vfs).lookup("/dev/udmabuf"))
        found.append(kernel.new_id())

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(booted) == 1
        nodes, ids = found[0::2], found[1::2]
        assert all(n is not None for n in nodes) and len(set(map(id, nodes))) == 1
        assert len(set(ids)) == 4  # (each its own id, after the boot's)
    finally:
        kernel.shutdown()
