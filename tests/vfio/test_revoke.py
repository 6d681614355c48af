"""Revocation: every trigger, with importers attached, and the trace it leaves.

Protocol (kernel.md section 4): ``memory_lock`` for write, then each buffer's ``resv``;
``revoked`` set, importers' ``invalidate_mappings`` called, and the revoke completes only
once every importer has unmapped.  Nothing can block in this model, so an importer that
keeps its mapping makes the exporter record a kernel warning (upstream would wait forever).
"""

from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Callable

import pytest
from mockkernel_vfio_pci.core import VfioPciDevice
from mockkernel_vfio_pci.dmabuf import VfioPciDmaBuf
from vfio_helpers import BDF, CONFIG, PAGE, Device, TestImporter, call, export, feature, tph_v11

from mockkernel import Kernel
from mockkernel.driver import Attachment
from mockkernel.uapi.linux.vfio import VFIO_DEVICE_FEATURE_SET, VFIO_DEVICE_RESET


def _vdev(kernel: Kernel) -> VfioPciDevice:
    vdev: VfioPciDevice = kernel.bound[BDF].devices[BDF]  # type: ignore[attr-defined]
    return vdev


def _priv(kernel: Kernel, fd: int) -> VfioPciDmaBuf:
    priv: VfioPciDmaBuf = kernel.init_process.files[fd].private_data.priv
    return priv


def _memory(fd: int, on: bool) -> None:
    cmd = struct.unpack("<H", os.pread(fd, 2, CONFIG + 4))[0]
    cmd = cmd | 2 if on else cmd & ~2
    os.pwrite(fd, struct.pack("<H", cmd), CONFIG + 4)


class LockCheckingImporter(TestImporter):
    """Also checks the lock order: memory_lock (write) is held, then resv."""

    __test__ = False

    def __init__(self, kernel: Kernel, vdev: VfioPciDevice) -> None:
        super().__init__(kernel)
        self.vdev = vdev

    def invalidate_mappings(self, attach: Attachment) -> None:
        self.vdev.memory_lock.assert_write_held()
        super().invalidate_mappings(attach)


def _reset(dev: Device) -> None:
    fcntl.ioctl(dev.fd, VFIO_DEVICE_RESET)


def _low_power(dev: Device) -> None:
    feature(dev.fd, VFIO_DEVICE_FEATURE_SET | 3)


@pytest.mark.parametrize(
    ("revoke", "stays_revoked"),
    [
        (lambda dev: _memory(dev.fd, False), True),  # until memory is enabled again
        (_reset, False),  # revoke, reset, un-revoke (memory is on)
        (_low_power, True),  # until LOW_POWER_EXIT
    ],
    ids=["memory_disable", "reset", "low_power"],
)
def test_trigger_revokes_every_buffer(
    dev: Device, mock_kernel: Kernel, revoke: Callable[[Device], None], stays_revoked: bool
) -> None:
    vdev = _vdev(mock_kernel)
    fds = [export(dev.fd, [(i * PAGE, PAGE)]) for i in range(3)]
    importers = [LockCheckingImporter(mock_kernel, vdev) for _ in fds]
    try:
        for imp, fd in zip(importers, fds, strict=True):
            imp.import_fd(fd)
        with mock_kernel.tracer.capture() as events:
            revoke(dev)
        assert [imp.invalidations for imp in importers] == [1, 1, 1]
        assert all(imp.sgt is None for imp in importers)  # every importer unmapped
        assert all(_priv(mock_kernel, fd).revoked == stays_revoked for fd in fds)
        names = [e["event"] for e in events if not e["event"].startswith("sys.")]
        assert names.count("vfio_pci.dma_buf_revoke") == 3
        assert names.count("dma_buf.invalidate") == 3
        if stays_revoked:
            assert call(importers[0].map) == "ENODEV"
            if revoke is _low_power:
                feature(dev.fd, VFIO_DEVICE_FEATURE_SET | 5)
            else:
                _memory(dev.fd, True)
        assert not any(_priv(mock_kernel, fd).revoked for fd in fds)
        for imp in importers:  # un-revoke notifies nobody: importers re-map lazily
            assert imp.invalidations == 1
            imp.map()
    finally:
        for imp in importers:
            imp.release()
        for fd in fds:
            os.close(fd)
    assert not mock_kernel.warnings


def test_importer_that_does_not_unmap_is_a_warning(dev: Device, mock_kernel: Kernel) -> None:
    fd = export(dev.fd)
    bad = TestImporter(mock_kernel, unmap_on_invalidate=False)
    bad.import_fd(fd)
    try:
        _memory(dev.fd, False)
        assert bad.invalidations == 1 and bad.sgt is not None
        assert len(mock_kernel.warnings) == 1
        assert "still present after invalidate_mappings" in mock_kernel.warnings[0]
        assert _priv(mock_kernel, fd).revoked  # the revoke went on (nothing can wait here)
        _memory(dev.fd, True)
    finally:
        bad.release()  # its late unmap is accepted
        os.close(fd)
        mock_kernel.warnings.clear()  # expected: keep the fixture's leak check green


def test_memory_toggles_without_importers(dev: Device, mock_kernel: Kernel) -> None:
    fd = export(dev.fd)
    try:
        for _ in range(3):
            _memory(dev.fd, False)
            assert _priv(mock_kernel, fd).revoked
            _memory(dev.fd, True)
            assert not _priv(mock_kernel, fd).revoked
        # a write that keeps memory off twice does not revoke twice
        _memory(dev.fd, False)
        with mock_kernel.tracer.capture() as events:
            _memory(dev.fd, False)
        assert not [e for e in events if e["event"] == "vfio_pci.dma_buf_revoke"]
        _memory(dev.fd, True)
    finally:
        os.close(fd)


@pytest.mark.parametrize("importer_first", [True, False])
def test_last_device_close_revokes_for_good(mock_kernel: Kernel, importer_first: bool) -> None:
    from vfio_helpers import open_group_path

    dev = open_group_path()
    fd = export(dev.fd)
    imp = TestImporter(mock_kernel)
    imp.import_fd(fd)
    if importer_first:
        imp.release()
    with mock_kernel.tracer.capture() as events:
        dev.close()
    names = [e["event"] for e in events if not e["event"].startswith("sys.")]
    assert "vfio_pci.dma_buf_cleanup" in names
    assert ("vfio_pci.dma_buf_revoke" in names) is True
    assert imp.invalidations == (0 if importer_first else 1)
    assert _priv(mock_kernel, fd).revoked
    imp.release()
    os.close(fd)


def test_second_device_fd_keeps_buffers_alive(mock_kernel: Kernel) -> None:
    """Group path: closing one of two device fds is not the last close."""
    from vfio_helpers import open_group_path

    from mockkernel.uapi.linux.vfio import VFIO_GROUP_GET_DEVICE_FD

    dev = open_group_path()
    second = fcntl.ioctl(
        dev.others[0], VFIO_GROUP_GET_DEVICE_FD, bytearray(BDF.encode() + b"\0"), True
    )
    fd = export(dev.fd)
    os.close(dev.fd)
    dev.fd = second
    try:
        assert not _priv(mock_kernel, fd).revoked
    finally:
        dev.close()
    assert _priv(mock_kernel, fd).revoked
    os.close(fd)


def test_trace_events(dev: Device, mock_kernel: Kernel) -> None:
    with mock_kernel.tracer.capture() as events:
        fd = export(dev.fd, [(0, PAGE), (PAGE, PAGE)])
        imp = TestImporter(mock_kernel)
        imp.import_fd(fd)
        tph_v11(dev.fd, fd, 3, xst=0x1234, st=0x56, ph=2)
        _memory(dev.fd, False)
        _memory(dev.fd, True)
        imp.release()
        os.close(fd)
    by = {e["event"]: e for e in events}
    export_ev = by["vfio_pci.dma_buf_export"]
    assert (export_ev["bdf"], export_ev["nr_ranges"], export_ev["size"]) == (BDF, 2, 2 * PAGE)
    assert export_ev["revoked"] is False
    assert by["vfio_pci.dma_buf_revoke"]["reason"] == "memory_disable"
    assert by["vfio_pci.dma_buf_revoke"]["attachments"] == 1
    assert by["vfio_pci.dma_buf_unrevoke"]["reason"] == "memory_enable"
    tph = by["vfio_pci.dma_buf_tph_set"]
    assert (tph["flags"], tph["st"], tph["xst"], tph["ph"]) == (3, 0x56, 0x1234, 2)
    order = [e["event"] for e in events if e["event"].startswith("vfio_pci.")]
    assert order == [
        "vfio_pci.dma_buf_export",
        "vfio_pci.dma_buf_tph_set",
        "vfio_pci.dma_buf_revoke",
        "vfio_pci.dma_buf_unrevoke",
    ]


def test_command_write_widths(dev: Device, mock_kernel: Kernel) -> None:
    """The revoke protocol runs for a write that starts at PCI_COMMAND, of any width."""
    fd = export(dev.fd)
    try:
        low = os.pread(dev.fd, 1, CONFIG + 4)[0]
        os.pwrite(dev.fd, bytes([low & ~2]), CONFIG + 4)  # 1 byte at PCI_COMMAND
        assert _priv(mock_kernel, fd).revoked
        os.pwrite(dev.fd, bytes([low]), CONFIG + 4)
        assert not _priv(mock_kernel, fd).revoked
        word = struct.unpack("<I", os.pread(dev.fd, 4, CONFIG + 4))[0]
        os.pwrite(dev.fd, struct.pack("<I", word & ~2), CONFIG + 4)  # command + status
        assert _priv(mock_kernel, fd).revoked
        os.pwrite(dev.fd, struct.pack("<I", word & 0xFFFF), CONFIG + 4)
        assert not _priv(mock_kernel, fd).revoked
        os.pwrite(dev.fd, os.pread(dev.fd, 1, CONFIG + 5), CONFIG + 5)  # the high byte only
        assert not _priv(mock_kernel, fd).revoked
    finally:
        os.close(fd)


def test_a_revoke_as_a_diagram(dev: Device, mock_kernel: Kernel) -> None:
    """``mockkernel trace --mermaid`` of a revocation: the config write enters the
    exporter, which revokes and invalidates (an arrow into the dma-buf core); the
    importer unmaps (its arrow into the dma-buf core); the syscall returns."""
    from mockkernel.traceview import render_mermaid

    with mock_kernel.tracer.capture() as events:
        fd = export(dev.fd, [(0, PAGE)])
        imp = TestImporter(mock_kernel)
        imp.import_fd(fd)
        _memory(dev.fd, False)
        imp.release()
        os.close(fd)
    lines = [line.strip() for line in render_mermaid(list(events)).splitlines()]
    write = lines.index(next(x for x in lines if x.startswith("program->>+exporter: pwrite(")))
    inside = lines[write + 1 : lines.index("autonumber off", write)]
    arrows = [x.split(":")[0] + ": " + x.split(": ")[1].split()[0] for x in inside if "->>" in x]
    assert "exporter->>pci: pci.config_write" in arrows  # fd 6 opened before the trace
    assert "exporter->>exporter: vfio_pci.dma_buf_revoke" in arrows
    assert "exporter->>dmabuf: dma_buf.invalidate" in arrows
    assert "importer->>dmabuf: dma_buf.unmap" in arrows
    assert arrows.index("exporter->>dmabuf: dma_buf.invalidate") < arrows.index(
        "importer->>dmabuf: dma_buf.unmap"
    )
    assert any(x.startswith("exporter-->>-program: ") for x in inside)
