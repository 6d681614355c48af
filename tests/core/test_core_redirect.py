"""The redirection itself: what install/uninstall patch and restore, rebinding of names bound
at import, one redirection at a time, threads, and the cost of tracing when it is off."""

from __future__ import annotations

import builtins
import fcntl
import io
import mmap
import os
import struct
import threading
import types
from collections.abc import Callable
from typing import Any

import pytest
from core_helpers import (
    CMD_FILL8,
    DEV,
    DMA_BUF_IOCTL_SYNC,
    FIONREAD,
    NR_READ,
    PAGE,
    ProbeOps,
    close_probe_device,
    make_udmabuf,
    probe_cmd,
    register_probe_device,
)

from mockkernel.driver import dma_buf_subsys
from mockkernel.kernel import Kernel
from mockkernel.realfd import REAL
from mockkernel.trace import Tracer
from mockkernel.userspace.redirect import _TARGETS, Redirection

Factory = Callable[..., Kernel]


def patched() -> dict[str, Any]:
    return {f"{m.__name__}.{attr}": getattr(m, attr) for m, attr, _key in _TARGETS}


@pytest.fixture
def factory(mock_kernel_factory: Factory) -> Factory:
    return mock_kernel_factory


def test_install_patches_and_uninstall_restores_every_function(factory: Factory) -> None:
    originals = patched()
    assert originals["os.open"] is REAL.open and originals["fcntl.ioctl"] is REAL.ioctl
    kernel = factory()
    redir = Redirection(kernel)
    assert not redir.installed and patched() == originals
    with kernel.tracer.capture() as ev, redir:
        for module, attr, key in _TARGETS:
            fn = getattr(module, attr)
            assert fn is not originals[f"{module.__name__}.{attr}"], attr
            assert fn is redir.funcs[key], attr
        assert builtins.open is io.open  # both are the same dispatcher
        assert kernel.installed_process is kernel.init_process
        assert Redirection.active is redir
    for name, fn in patched().items():
        assert fn is originals[name], f"{name} not restored"
    assert kernel.installed_process is None and Redirection.active is None
    assert [e["event"] for e in ev if not e["event"].startswith("sys.")] == [
        "userspace.install",
        "userspace.uninstall",
    ]
    # and again: a redirection can be installed once more after it was removed
    with redir:
        assert os.open is not originals["os.open"]
    assert patched() == originals


def test_a_second_installation_raises(factory: Factory) -> None:
    originals = patched()
    a = factory()
    b = factory()
    ra = a.install()
    with ra:
        inside = patched()
        with pytest.raises(RuntimeError, match="already installed"), ra:
            pass  # nested: the same redirection again
        assert ra.installed and patched() == inside, "the failed nesting changed nothing"
        with pytest.raises(RuntimeError, match="already installed"):
            b.install().install()  # another kernel's
        with pytest.raises(RuntimeError, match="already installed"):
            a.install().install()  # another redirection of the same kernel
        assert patched() == inside
        fd = os.open(DEV, os.O_RDWR)
        assert fd in a.init_process.files and not b.init_process.files
        os.close(fd)
    assert patched() == originals
    assert b.installed_process is None


def test_uninstall_without_install_is_harmless(factory: Factory) -> None:
    originals = patched()
    redir = factory().install()
    redir.uninstall()
    assert patched() == originals


def test_rebind_of_names_bound_at_import(factory: Factory) -> None:
    mod = types.ModuleType("mk_program")
    exec("from fcntl import ioctl\nfrom os import open as os_open, close\nimport os", mod.__dict__)
    other = types.ModuleType("mk_other")
    exec("from fcntl import ioctl", other.__dict__)
    kernel = factory()
    redir = kernel.install(rebind=[mod])
    with redir:
        assert mod.ioctl is fcntl.ioctl is redir.funcs["ioctl"]
        assert mod.os_open is redir.funcs["open"] and mod.close is redir.funcs["close"]
        assert other.ioctl is REAL.ioctl, "a module not named keeps its early binding"
        # the program's own names reach the mock
        fd = mod.os_open(DEV, os.O_RDWR)
        assert fd in kernel.init_process.files
        memfd, buf = make_udmabuf()
        assert mod.ioctl(buf, DMA_BUF_IOCTL_SYNC, struct.pack("=Q", 3)) == struct.pack("=Q", 3)
        mod.close(buf)
        mod.close(fd)
        os.close(memfd)
    assert mod.ioctl is REAL.ioctl and mod.os_open is REAL.open and mod.close is REAL.close
    assert mod.os is os


def test_isinstance_of_a_mapping_after_uninstall(factory: Factory) -> None:
    kernel = factory()
    with kernel.install():
        memfd, buf = make_udmabuf()
        m = mmap.mmap(buf, PAGE)
        os.close(buf)
        os.close(memfd)
    assert mmap.mmap is REAL.mmap
    assert isinstance(m, mmap.mmap)
    m.close()
    assert not dma_buf_subsys(kernel).dmabufs


def test_threads_doing_ioctls_concurrently(mock_kernel: Kernel, probe: ProbeOps) -> None:
    """Mock and real ioctls from several threads at once: every answer is the caller's own."""
    rounds = 300
    dev = os.open("/dev/mkprobe", os.O_RDWR)
    memfd, buf = make_udmabuf()
    pipes = [os.pipe() for _ in range(2)]
    for i, (_r, w) in enumerate(pipes):
        os.write(w, b"x" * (i + 3))
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def mock_worker(tag: int) -> None:
        try:
            barrier.wait()
            for i in range(rounds):
                payload = bytes([tag]) * 7 + bytes([i % 256])
                # the driver reads 8 bytes through this thread's copy of the argument
                assert fcntl.ioctl(dev, probe_cmd(NR_READ, 8), payload) == payload
                big = bytearray([tag]) * 1500
                assert fcntl.ioctl(dev, probe_cmd(3, 1500), big) == 3  # NR_FILL, in place
                assert big == (b"ABCDEFGH" * 188)[:1500]
                assert fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC, bytearray(struct.pack("=Q", 3))) == 0
        except BaseException as e:
            errors.append(e)

    def real_worker(index: int) -> None:
        try:
            r, _w = pipes[index]
            barrier.wait()
            for _ in range(rounds):
                out = fcntl.ioctl(r, FIONREAD, bytes(4))
                assert struct.unpack("i", out)[0] == index + 3
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=mock_worker, args=(t,)) for t in (1, 2)]
    threads += [threading.Thread(target=real_worker, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    seen = [c[2] for c in probe.calls if c[0] == probe_cmd(NR_READ, 8)]
    assert len(seen) == 2 * rounds
    assert sorted({s[:7] for s in seen}) == [b"\x01" * 7, b"\x02" * 7]
    for r, w in pipes:
        os.close(r)
        os.close(w)
    for fd in (dev, buf, memfd):
        os.close(fd)


def test_with_tracing_off_no_sink_and_no_emit_is_reached(
    factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = factory()
    calls: list[dict[str, Any]] = []
    sink = calls.append
    kernel.tracer.add_sink(sink)
    kernel.tracer.remove_sink(sink)
    assert kernel.tracer.enabled is False

    def no_emit(self: Tracer, event: str, **fields: Any) -> None:
        raise AssertionError(f"emit({event!r}) called with tracing off")

    monkeypatch.setattr(Tracer, "emit", no_emit)
    ops = register_probe_device(kernel)
    try:
        with kernel.install():
            fd = os.open("/dev/mkprobe", os.O_RDWR)
            assert fcntl.ioctl(fd, CMD_FILL8, bytearray(8)) == 3
            fcntl.ioctl(fd, 0x5451)  # FIOCLEX
            fcntl.fcntl(fd, fcntl.F_SETFD, 0)
            d = os.dup(fd)
            os.dup2(fd, d)
            m = mmap.mmap(fd, PAGE)
            m.close()
            os.close(d)
            os.close(fd)
            memfd, buf = make_udmabuf()
            fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC, struct.pack("=Q", 3))
            os.close(buf)
            os.close(memfd)
            with open(DEV, "rb", buffering=0):
                pass
    finally:
        close_probe_device(ops)
    assert calls == []


def test_the_mock_kernel_fixture_installs_for_the_test(mock_kernel: Kernel) -> None:
    assert Redirection.active is not None and Redirection.active.kernel is mock_kernel
    assert os.open is not REAL.open and fcntl.ioctl is not REAL.ioctl


def test_closerange_closes_mock_fds_through_the_kernel(mock_kernel: Kernel) -> None:
    r1, w1 = os.pipe()
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    r2, w2 = os.pipe()
    lo, hi = min(r1, w1, dev, r2, w2), max(r1, w1, dev, r2, w2) + 1
    with mock_kernel.tracer.capture() as events:
        os.closerange(lo, hi)
    assert dev not in mock_kernel.init_process.files
    assert [e["fd"] for e in events if e["event"] == "fd.close"] == [dev]
    for fd in (r1, w1, r2, w2, dev):
        with pytest.raises(OSError):
            os.fstat(fd)


def test_get_set_blocking_on_a_mock_fd(mock_kernel: Kernel) -> None:
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    try:
        assert os.get_blocking(dev)
        os.set_blocking(dev, False)
        assert not os.get_blocking(dev)
        assert mock_kernel.init_process.files[dev].f_flags & os.O_NONBLOCK
        os.set_blocking(dev, True)
        assert os.get_blocking(dev)
    finally:
        os.close(dev)


def test_every_syscall_on_a_mock_fd_is_one_trace_event(mock_kernel: Kernel) -> None:
    with mock_kernel.tracer.capture() as events:
        dev = os.open("/dev/udmabuf", os.O_RDWR)
        os.fstat(dev)
        dup = os.dup(dev)
        fcntl.fcntl(dup, fcntl.F_GETFD)
        with pytest.raises(OSError):
            os.read(dev, 1)
        with pytest.raises(OSError):
            fcntl.ioctl(dev, 0x1234, 0)
        os.close(dup)
        os.close(dev)
    sys_events = [e for e in events if e["event"].startswith("sys.")]
    assert [e["event"] for e in sys_events] == [
        "sys.open",
        "sys.fstat",
        "sys.fcntl",  # os.dup is F_DUPFD_CLOEXEC, as CPython does it
        "sys.fcntl",
        "sys.read",
        "sys.ioctl",
        "sys.close",
        "sys.close",
    ]
    assert sys_events[0]["path"] == "/dev/udmabuf" and sys_events[0]["ret"] == dev
    assert sys_events[4]["errno"] == "EINVAL" and "ret" not in sys_events[4]
    assert sys_events[5]["cmd"] == "0x1234" and sys_events[5]["errno"] == "ENOTTY"
    assert all(e["pid"] == mock_kernel.init_process.pid for e in sys_events)
