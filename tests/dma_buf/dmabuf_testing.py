"""A test exporter and a test importer for the dma-buf core, written against
``mockkernel.driver`` only, as a third-party driver would be.

``TestExporter`` records every callback it receives with whether the reservation lock
was held at the time; it is backed by a real memfd so ``mmap`` of its buffers works.
``TestImporter`` records its ``invalidate_mappings`` calls.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mockkernel.driver import (
    PAGE_SIZE,
    Attachment,
    DmaBuf,
    DmaBufAttachOps,
    DmaBufOps,
    Kernel,
    KernelMap,
    SgEntry,
    SgTable,
    Vma,
    dma_buf_export,
    hide,
    kernel_close,
    kerr,
)

__all__ = [
    "PAGE",
    "Dev",
    "Priv",
    "TestExporter",
    "TestImporter",
    "errno_name",
    "export",
]

PAGE = PAGE_SIZE


@dataclass(frozen=True)
class Dev:
    """A device that attaches: only a name is needed."""

    name: str


@dataclass
class Priv:
    """The exporter's per-buffer data: a real memfd and a kernel map of it."""

    memfd: int
    size: int
    view: KernelMap
    released: int = 0


@dataclass
class TestExporter(DmaBufOps):
    """An exporter whose every op records ``(name, resv_held)`` in ``calls``.

    ``refuse_attach`` makes ``attach`` fail with that errno; ``map_none`` makes
    ``map_dma_buf`` return ``None``; ``with_pin`` adds ``pin``/``unpin``;
    ``with_mmap`` (default) adds ``mmap``.
    """

    __test__ = False  # not a pytest test class

    calls: list[tuple[str, bool]] = field(default_factory=list)
    refuse_attach: int | None = None
    map_none: bool = False
    with_pin: bool = False
    with_mmap: bool = True
    tph: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        # optional ops are class attributes set to None on DmaBufOps: present only if asked
        self.attach = self._attach  # type: ignore[assignment]
        self.detach = self._detach  # type: ignore[assignment]
        self.map_dma_buf = self._map  # type: ignore[assignment]
        self.unmap_dma_buf = self._unmap  # type: ignore[assignment]
        self.release = self._release  # type: ignore[assignment]
        if self.with_pin:
            self.pin = self._pin  # type: ignore[assignment]
            self.unpin = self._unpin  # type: ignore[assignment]
        if self.with_mmap:
            self.mmap = self._mmap  # type: ignore[assignment]
        if self.tph is not None:
            self.get_pci_tph = self._get_pci_tph  # type: ignore[assignment]

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    def _rec(self, name: str, dmabuf: DmaBuf) -> None:
        self.calls.append((name, dmabuf.resv.held))

    def _attach(self, dmabuf: DmaBuf, attach: Attachment) -> None:
        self._rec("attach", dmabuf)
        if self.refuse_attach is not None:
            raise kerr(self.refuse_attach)

    def _detach(self, dmabuf: DmaBuf, attach: Attachment) -> None:
        self._rec("detach", dmabuf)

    def _pin(self, attach: Attachment) -> None:
        self._rec("pin", attach.dmabuf)

    def _unpin(self, attach: Attachment) -> None:
        self._rec("unpin", attach.dmabuf)

    def _map(self, attach: Attachment, direction: int) -> SgTable | None:
        self._rec("map", attach.dmabuf)
        if self.map_none:
            return None
        priv: Priv = attach.dmabuf.priv
        return SgTable([SgEntry(0x1000_0000, priv.size, priv.view)])

    def _unmap(self, attach: Attachment, sgt: SgTable, direction: int) -> None:
        self._rec("unmap", attach.dmabuf)

    def _release(self, dmabuf: DmaBuf) -> None:
        self._rec("release", dmabuf)
        priv: Priv = dmabuf.priv
        priv.released += 1
        priv.view.close()
        kernel_close(dmabuf.kernel, priv.memfd)

    def _mmap(self, dmabuf: DmaBuf, vma: Vma) -> None:
        self._rec("mmap", dmabuf)
        priv: Priv = dmabuf.priv
        vma.remap(priv.memfd, vma.offset, vma.length)

    def _get_pci_tph(self, dmabuf: DmaBuf, extended: bool) -> tuple[int, int]:
        self._rec("get_pci_tph", dmabuf)
        assert self.tph is not None
        return self.tph


def make_priv(kernel: Kernel, size: int = 2 * PAGE, fill: bytes = b"") -> Priv:
    memfd = hide(kernel, os.memfd_create("dmabuf-test", os.MFD_CLOEXEC))
    os.ftruncate(memfd, max(size, PAGE))
    if fill:
        os.pwrite(memfd, fill, 0)
    return Priv(memfd, size, KernelMap(kernel, memfd, max(size, PAGE)))


def export(
    kernel: Kernel,
    ops: TestExporter | None = None,
    size: int = 2 * PAGE,
    flags: int = os.O_RDWR,
    fill: bytes = b"",
) -> tuple[DmaBuf, TestExporter]:
    """A buffer of ``ops`` (a fresh ``TestExporter`` by default); the caller owns the ref."""
    ops = ops if ops is not None else TestExporter()
    priv = make_priv(kernel, size, fill)
    try:
        dmabuf = dma_buf_export(kernel, ops, size, priv, "test-exp", flags)
    except BaseException:
        priv.view.close()
        kernel_close(kernel, priv.memfd)
        raise
    return dmabuf, ops


@dataclass
class TestImporter(DmaBufAttachOps):
    """A dynamic importer; ``revocable`` gives it an ``invalidate_mappings`` callback."""

    __test__ = False

    allow_peer2peer: bool = True
    revocable: bool = True
    invalidated: list[Attachment] = field(default_factory=list)
    on_invalidate: Callable[[Attachment], None] | None = None

    def __post_init__(self) -> None:
        if self.revocable:
            self.invalidate_mappings = self._invalidate  # type: ignore[assignment]

    def _invalidate(self, attach: Attachment) -> None:
        assert attach.dmabuf.resv.held, "invalidate_mappings runs with the resv held"
        self.invalidated.append(attach)
        if self.on_invalidate is not None:
            self.on_invalidate(attach)


def errno_name(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
    """The errno name ``fn(*args, **kwargs)`` fails with, or ``None`` on success."""
    try:
        fn(*args, **kwargs)
    except OSError as e:
        assert e.errno is not None
        if e.errno == errno.EOPNOTSUPP:
            return "EOPNOTSUPP"  # errorcode says ENOTSUP: the same number on Linux
        return errno.errorcode[e.errno]
    return None
