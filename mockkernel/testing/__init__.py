"""Testing helpers for programs and plugins (the pytest plugin lives in ``pytest_plugin``).

* :mod:`mockkernel.testing.rdma` -- the RDMA network peer (``remote_write``), a raw verbs
  client, udmabuf and vfio-pci dma-buf makers;
* :mod:`mockkernel.testing.conformance` -- the dma-buf importer conformance suite;
* :class:`MockKernelTestCase` / :class:`MockKernelMixin` (:mod:`mockkernel.testing.case`)
  -- unittest support: a fresh installed kernel as ``self.kernel`` in every test.
"""

from __future__ import annotations

import fcntl
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .case import MockKernelMixin, MockKernelTestCase

__all__ = ["MockKernelMixin", "MockKernelTestCase", "sealed_memfd"]


def __getattr__(name: str) -> Any:
    """``MockKernelTestCase``/``MockKernelMixin`` imported on first use (and unittest with them)."""
    if name in ("MockKernelTestCase", "MockKernelMixin"):
        from . import case

        return getattr(case, name)
    raise AttributeError(name)


F_ADD_SEALS = 1033
F_SEAL_SHRINK = 0x0002


def sealed_memfd(size: int, data: bytes = b"", name: str = "mockkernel-test") -> int:
    """A real memfd of ``size`` bytes, sealed with ``F_SEAL_SHRINK`` as udmabuf wants."""
    fd = os.memfd_create(name, os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, size)
        if data:
            os.pwrite(fd, data, 0)
        fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK)
    except BaseException:
        os.close(fd)
        raise
    return fd
