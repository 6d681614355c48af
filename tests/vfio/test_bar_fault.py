"""BAR mappings fault (``SIGBUS``) while the device cannot be accessed, as on Linux 7.2.

vfio-pci zaps every mapping of a device when memory decoding is turned off, on reset
and on low-power entry, and its fault handler refuses while memory decoding is off or
the device is in low power; once it can be accessed again the next access maps the BAR
again.  Each access is made by a forked child (the fault kills it), as the real-Linux
probe does.
"""

from __future__ import annotations

import faulthandler
import fcntl
import mmap
import os
import signal
import struct
from pathlib import Path

import pytest
from vfio_helpers import CONFIG, PAGE, Device, call, feature, open_device

from mockkernel import Kernel
from mockkernel.driver import file_mappings
from mockkernel.topology import load_topology
from mockkernel.uapi.linux.vfio import (
    VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
    VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
    VFIO_DEVICE_FEATURE_SET,
    VFIO_DEVICE_RESET,
)

GUEST = load_topology(Path(__file__).parent / "real_linux_guest.toml")


def touch_in_child(m: mmap.mmap, write: bool = False) -> str:
    """Access ``m`` in a forked child: ``"exit 0"`` or the signal that killed the child."""
    pid = os.fork()
    if pid == 0:  # the child: die of the access, or exit 0
        try:
            faulthandler.disable()
            signal.signal(signal.SIGBUS, signal.SIG_DFL)
            if write:
                m[0:4] = b"kid!"
            else:
                m[0:4]
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    return f"exit {os.WEXITSTATUS(status)}"


def _memory(fd: int, on: bool) -> None:
    cmd = struct.unpack("<H", os.pread(fd, 2, CONFIG + 4))[0]
    cmd = cmd | 2 if on else cmd & ~2
    os.pwrite(fd, struct.pack("<H", cmd), CONFIG + 4)


def test_memory_disable_faults_and_enable_restores(dev: Device, mock_kernel: Kernel) -> None:
    assert mock_kernel.pci is not None
    bar = mock_kernel.pci.get("0000:01:00.0").bars[0]
    whole = mmap.mmap(dev.fd, 1 << 20)
    page = mmap.mmap(dev.fd, PAGE, offset=PAGE)
    try:
        assert touch_in_child(whole) == touch_in_child(page) == "exit 0"
        _memory(dev.fd, False)
        for m in (whole, page):
            assert touch_in_child(m) == "SIGBUS"
            assert touch_in_child(m, write=True) == "SIGBUS"
        assert call(os.pread, dev.fd, 4, 0) == "EIO"
        assert all(mp.zapped for mp in file_mappings(mock_kernel, lambda f: True))
        bar.map.write(PAGE, b"kept")  # the BAR's memory itself is untouched
        _memory(dev.fd, True)
        assert touch_in_child(whole, write=True) == "exit 0"
        assert page[0:4] == b"kept"  # the child wrote at 0, the page starts at PAGE
        whole[PAGE + 8 : PAGE + 12] = b"both"
        assert page[8:12] == b"both" == os.pread(dev.fd, 4, PAGE + 8)
        assert bar.map.read(0, 4) == b"kid!"  # a child's write lands in the shared BAR
    finally:
        whole.close()
        page.close()


@pytest.mark.parametrize("memory_on", [True, False])
def test_reset(dev: Device, mock_kernel: Kernel, memory_on: bool) -> None:
    m = mmap.mmap(dev.fd, PAGE)
    try:
        if not memory_on:
            _memory(dev.fd, False)
        assert fcntl.ioctl(dev.fd, VFIO_DEVICE_RESET) == 0
        assert touch_in_child(m) == ("exit 0" if memory_on else "SIGBUS")
        _memory(dev.fd, True)
        assert touch_in_child(m) == "exit 0"
    finally:
        m.close()


def test_low_power(dev: Device, mock_kernel: Kernel) -> None:
    m = mmap.mmap(dev.fd, PAGE)
    try:
        feature(dev.fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY)
        assert touch_in_child(m) == "SIGBUS"  # memory decoding is on: low power alone
        feature(dev.fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT)
        assert touch_in_child(m) == "exit 0"
    finally:
        m.close()


def test_mapping_made_while_disabled_starts_zapped(dev: Device, mock_kernel: Kernel) -> None:
    _memory(dev.fd, False)
    m = mmap.mmap(dev.fd, 2 * PAGE)  # vfio inserts no page until the first access
    try:
        (mp,) = file_mappings(mock_kernel, lambda f: True)
        assert mp.zapped
        assert touch_in_child(m) == "SIGBUS"
        _memory(dev.fd, True)
        assert not mp.zapped and touch_in_child(m) == "exit 0"
    finally:
        m.close()


def test_closing_a_zapped_mapping(dev: Device, mock_kernel: Kernel) -> None:
    m = mmap.mmap(dev.fd, PAGE)
    _memory(dev.fd, False)
    m.close()
    assert file_mappings(mock_kernel, lambda f: True) == []
    _memory(dev.fd, True)  # nothing left to restore
    m = mmap.mmap(dev.fd, PAGE)
    try:
        assert touch_in_child(m) == "exit 0"
    finally:
        m.close()


@pytest.mark.mockkernel(topology=GUEST)
@pytest.mark.usefixtures("mock_kernel")
def test_only_the_device_that_stopped_decoding_faults() -> None:
    edu = open_device("group", "0000:01:00.0", 6)
    ivshmem = open_device("cdev", "0000:00:04.0", 4)
    maps = []
    try:
        e = mmap.mmap(edu.fd, PAGE)
        maps.append(e)
        i0 = mmap.mmap(ivshmem.fd, PAGE)  # the 256-byte BAR0
        maps.append(i0)
        i2 = mmap.mmap(ivshmem.fd, PAGE, offset=2 << 40)
        maps.append(i2)
        _memory(ivshmem.fd, False)
        assert [touch_in_child(m) for m in maps] == ["exit 0", "SIGBUS", "SIGBUS"]
        _memory(edu.fd, False)
        _memory(ivshmem.fd, True)
        assert [touch_in_child(m) for m in maps] == ["SIGBUS", "exit 0", "exit 0"]
        _memory(edu.fd, True)
        assert [touch_in_child(m) for m in maps] == ["exit 0"] * 3
    finally:
        for m in maps:
            m.close()
        edu.close()
        ivshmem.close()
