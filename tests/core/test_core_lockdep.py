"""The lock validator: an order inversion or a lock held across the return to userspace
is a ``KernelBug`` naming the stacks (``mockkernel.locks.LockDep``)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

import mockkernel
from mockkernel.errors import KernelBug
from mockkernel.kernel import Kernel
from mockkernel.locks import HeldLocks, Mutex, RwSem, lock_class_of


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = mockkernel.boot()
    k.subsys(HeldLocks).enable_lockdep()
    yield k
    k.shutdown(check=False)


def _take_a_then_b(a: Mutex, b: Mutex) -> None:
    with a, b:
        pass


def test_inversion_is_a_kernel_bug_with_both_stacks(kernel: Kernel) -> None:
    a, b = Mutex(kernel, "lock-a"), Mutex(kernel, "lock-b")
    _take_a_then_b(a, b)
    with pytest.raises(KernelBug) as exc, b:
        a.lock()  # (never taken: reported before it could deadlock)
    text = str(exc.value)
    assert "circular locking dependency" in text
    assert "Mutex:lock-a" in text and "Mutex:lock-b" in text
    assert "_take_a_then_b" in text  # the stack of the first order
    assert "test_inversion_is_a_kernel_bug_with_both_stacks" in text  # and of this one
    assert not a.held and kernel.subsys(HeldLocks).held == {}


def test_inversion_through_a_chain_and_across_threads(kernel: Kernel) -> None:
    a, b, c = (Mutex(kernel, f"chain-{n}") for n in "abc")
    sem = RwSem(kernel, "chain-sem")
    t = threading.Thread(target=lambda: _take_a_then_b(a, b))
    t.start()
    t.join()
    with b, c:
        pass
    sem.down_read()
    with c:
        pass
    sem.up_read()
    with pytest.raises(KernelBug, match="circular"), c:
        a.lock()  # a -> b -> c known; c -> a closes the cycle


def test_instances_share_a_class(kernel: Kernel) -> None:
    one = Mutex(kernel, "vfio-pci 0000:01:00.0 memory_lock")
    two = Mutex(kernel, "vfio-pci 0000:02:00.0 memory_lock")
    assert lock_class_of(one) == lock_class_of(two)
    with one, two:  # the same class nested: not validated (ww_mutex contexts)
        pass


def test_lock_held_across_return_to_user(kernel: Kernel) -> None:
    held = Mutex(kernel, "leaked-by-a-driver")
    with kernel.install():
        fd = os.open("/dev/udmabuf", os.O_RDWR)
        held.lock()
        with pytest.raises(KernelBug, match=r"returning to user space from sys\.close"):
            os.close(fd)
        held.unlock()


def test_every_example_runs_clean_under_lockdep(kernel: Kernel) -> None:
    import io
    import runpy
    from contextlib import redirect_stdout
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "examples"
    with kernel.install(), redirect_stdout(io.StringIO()):
        for name in ("udmabuf_demo.py", "vfio_tph_demo.py", "rdma_dmabuf_mr.py"):
            try:
                runpy.run_path(str(examples / name), run_name="__main__")
            except SystemExit as e:
                assert e.code in (None, 0)
    dep = kernel.subsys(HeldLocks).lockdep
    assert dep is not None and dep.order  # orders were recorded, none inverted
