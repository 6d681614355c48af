"""``DMA_BUF_IOCTL_SYNC`` on a vfio-pci dma-buf (no CPU-access ops: nothing to bracket),
live and revoked, answers the same on the hot path (untraced, a ``bytearray``) and the
general one (traced, ``bytes``): a revoked buffer is still a dma-buf file."""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from collections.abc import Callable
from typing import Any

import pytest
from mockkernel_vfio_pci.dmabuf import VfioPciDmaBuf
from vfio_helpers import Device, export

from mockkernel import Kernel
from mockkernel.uapi.linux.dma_buf import DMA_BUF_IOCTL_SYNC

COMMAND = (7 << 40) + 4  # the config space region's PCI_COMMAND


def _outcome(call: Callable[[], Any]) -> object:
    try:
        return call()
    except OSError as e:
        assert e.errno is not None
        return errno.errorcode[e.errno]


def _each_way(kernel: Kernel, fd: int, flags: int) -> tuple[object, object, object]:
    data = struct.pack("=Q", flags)
    fast = _outcome(lambda: fcntl.ioctl(fd, DMA_BUF_IOCTL_SYNC, bytearray(data)))
    immutable = _outcome(lambda: fcntl.ioctl(fd, DMA_BUF_IOCTL_SYNC, data))
    with kernel.tracer.capture():
        traced = _outcome(lambda: fcntl.ioctl(fd, DMA_BUF_IOCTL_SYNC, bytearray(data)))
    return fast, immutable if immutable != data else 0, traced


@pytest.mark.parametrize("flags", [1, 2, 3, 5, 6, 7, 0, 4, 8, 1 << 63])
def test_sync_live_and_revoked(dev: Device, mock_kernel: Kernel, flags: int) -> None:
    want = 0 if flags in (1, 2, 3, 5, 6, 7) else "EINVAL"
    cmd = struct.unpack("<H", os.pread(dev.fd, 2, COMMAND))[0]
    fd = export(dev.fd)
    try:
        priv: VfioPciDmaBuf = mock_kernel.init_process.files[fd].private_data.priv
        assert _each_way(mock_kernel, fd, flags) == (want, want, want)
        os.pwrite(dev.fd, struct.pack("<H", cmd & ~2), COMMAND)  # memory off: revoked
        assert priv.revoked
        assert _each_way(mock_kernel, fd, flags) == (want, want, want)
    finally:
        os.pwrite(dev.fd, struct.pack("<H", cmd), COMMAND)
        os.close(fd)
