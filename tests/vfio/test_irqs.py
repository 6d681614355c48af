"""VFIO_DEVICE_SET_IRQS and device-raised interrupts (``VfioPciDevice.raise_irq``).

The errnos and loopback triggers are checked against Linux 7.2 by the ``vfio_irqs``
probe (``test_real_linux_vfio.py``); these tests cover what the guest cannot show: a
device raising its interrupts, INTx automasking and pending interrupts, MSI-X, ERR,
several MSI vectors, the kernel's eventfd references and the trace.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

import pytest
from mockkernel_vfio_pci.core import VfioPciDevice
from vfio_helpers import BDF, CONFIG, Device, open_device, topology_with

from mockkernel import Kernel
from mockkernel.topology import BarSpec, DeviceSpec, MsiSpec, MsixSpec
from mockkernel.uapi.linux.vfio import (
    VFIO_DEVICE_RESET,
    VFIO_DEVICE_SET_IRQS,
    VFIO_IRQ_SET_ACTION_MASK,
    VFIO_IRQ_SET_ACTION_TRIGGER,
    VFIO_IRQ_SET_ACTION_UNMASK,
    VFIO_IRQ_SET_DATA_BOOL,
    VFIO_IRQ_SET_DATA_EVENTFD,
    VFIO_IRQ_SET_DATA_NONE,
    VFIO_PCI_ERR_IRQ_INDEX,
    VFIO_PCI_INTX_IRQ_INDEX,
    VFIO_PCI_MSI_IRQ_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX,
    VFIO_PCI_NUM_IRQS,
    VFIO_PCI_REQ_IRQ_INDEX,
)

INTX, MSI, MSIX, ERR, REQ = (
    VFIO_PCI_INTX_IRQ_INDEX,
    VFIO_PCI_MSI_IRQ_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX,
    VFIO_PCI_ERR_IRQ_INDEX,
    VFIO_PCI_REQ_IRQ_INDEX,
)
TRIGGER_FD = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER
TRIGGER_NONE = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER
MSI_BDF = "0000:07:00.0"
MSI_GROUP = 12
#: the default device (PCIe, INTx) plus one with 4 MSI vectors and 8 MSI-X vectors
TOPO = topology_with(
    DeviceSpec(
        bdf=MSI_BDF,
        vendor=0x10EE,
        device=0x9040,
        class_code=0x120000,
        iommu_group=MSI_GROUP,
        driver="vfio-pci",
        bars=(BarSpec(0, 0x10000),),
        msi=MsiSpec(vectors=4),
        msix=MsixSpec(vectors=8, bar=0, table_offset=0x2000),
    )
)


def set_irqs(
    fd: int, flags: int, index: int, start: int = 0, count: int = 1, data: bytes = b""
) -> None:
    arg = struct.pack("<IIIII", 20 + len(data), flags, index, start, count) + data
    fcntl.ioctl(fd, VFIO_DEVICE_SET_IRQS, arg)


def register(fd: int, index: int, *efds: int, start: int = 0) -> None:
    set_irqs(fd, TRIGGER_FD, index, start, len(efds), struct.pack(f"<{len(efds)}i", *efds))


def eventfd() -> int:
    return os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)


def counter(efd: int) -> int:
    """The eventfd's counter (reading resets it); 0 if nothing was signalled."""
    try:
        value: int = struct.unpack("<Q", os.read(efd, 8))[0]
    except BlockingIOError:
        return 0
    return value


def vdev_of(kernel: Kernel, bdf: str = BDF) -> VfioPciDevice:
    vdev: VfioPciDevice = kernel.bound[bdf].devices[bdf]  # type: ignore[attr-defined]
    return vdev


def held_fds(vdev: VfioPciDevice) -> list[int]:
    """The eventfd references the kernel holds for the device."""
    fds = [c.trigger for c in vdev.irq_ctx.values() if c.trigger is not None]
    fds += [c.unmask for c in vdev.irq_ctx.values() if c.unmask is not None]
    return fds + [f for f in (vdev.err_trigger, vdev.req_trigger) if f is not None]


# -- INTx ------------------------------------------------------------------------------------
def test_intx_raise_automasks_until_unmask(dev: Device, mock_kernel: Kernel) -> None:
    vdev = vdev_of(mock_kernel)
    efd = eventfd()
    try:
        assert not vdev.raise_irq(INTX)  # not enabled: nobody to tell
        register(dev.fd, INTX, efd)
        assert vdev.raise_irq(INTX)
        assert counter(efd) == 1
        # automasked (VFIO_IRQ_INFO_AUTOMASKED): the next one stays pending
        assert not vdev.raise_irq(INTX)
        assert counter(efd) == 0
        # the unmask delivers the pending interrupt; INTx stays masked
        set_irqs(dev.fd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, INTX)
        assert counter(efd) == 1
        assert not vdev.raise_irq(INTX)
        set_irqs(dev.fd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, INTX)
        assert counter(efd) == 1  # the one raised while masked
        set_irqs(dev.fd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, INTX)
        assert counter(efd) == 0
        assert vdev.raise_irq(INTX)
        assert counter(efd) == 1
    finally:
        os.close(efd)


def test_intx_mask_ioctl_holds_interrupts(dev: Device, mock_kernel: Kernel) -> None:
    vdev = vdev_of(mock_kernel)
    efd = eventfd()
    try:
        register(dev.fd, INTX, efd)
        set_irqs(dev.fd, VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_MASK, INTX, data=b"\1")
        assert not vdev.raise_irq(INTX)
        # a loopback trigger is sent masked or not (vfio_send_intx_eventfd)
        set_irqs(dev.fd, TRIGGER_NONE, INTX)
        assert counter(efd) == 1
        set_irqs(dev.fd, VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_UNMASK, INTX, data=b"\0")
        assert counter(efd) == 0
        set_irqs(dev.fd, VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_UNMASK, INTX, data=b"\1")
        assert counter(efd) == 1  # the pending one
    finally:
        os.close(efd)


def test_intx_unmask_eventfd(dev: Device, mock_kernel: Kernel) -> None:
    """A write to the resample eventfd unmasks INTx (vfio_virqfd_enable)."""
    vdev = vdev_of(mock_kernel)
    efd, unmask = eventfd(), eventfd()
    try:
        register(dev.fd, INTX, efd)
        fd_data = struct.pack("<i", unmask)
        set_irqs(dev.fd, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK, INTX, data=fd_data)
        with pytest.raises(OSError) as e:
            set_irqs(
                dev.fd, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK, INTX, data=fd_data
            )
        assert e.value.errno == errno.EBUSY
        assert vdev.raise_irq(INTX)
        assert not vdev.raise_irq(INTX)  # masked
        assert counter(efd) == 1
        os.write(unmask, (1).to_bytes(8, "little"))
        assert vdev.raise_irq(INTX) is False  # the pending one is re-sent at the unmask
        assert counter(efd) == 1
        assert counter(unmask) == 0  # consumed by the kernel
    finally:
        os.close(efd)
        os.close(unmask)


# -- MSI / MSI-X -------------------------------------------------------------------------------
@pytest.mark.mockkernel(topology=TOPO)
def test_msi_vectors(mock_kernel: Kernel) -> None:
    dev = open_device("group", MSI_BDF, MSI_GROUP)
    vdev = vdev_of(mock_kernel, MSI_BDF)
    efds = [eventfd() for _ in range(3)]
    try:
        register(dev.fd, MSI, *efds[:2])  # vectors 0 and 1: enables 2 vectors
        assert vdev.irq_type == MSI and vdev.msi_qmax == 1
        assert [vdev.raise_irq(MSI, v) for v in range(4)] == [True, True, False, False]
        assert [counter(e) for e in efds] == [1, 1, 0]
        with pytest.raises(OSError):
            register(dev.fd, MSI, efds[2], start=2)  # only 2 vectors were allocated
        register(dev.fd, MSI, -1, start=0)  # vector 0 loses its eventfd
        set_irqs(dev.fd, TRIGGER_NONE, MSI, 0, 2)
        assert [counter(e) for e in efds] == [0, 1, 0]
        set_irqs(dev.fd, VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, MSI, 0, 2, b"\1\0")
        assert [counter(e) for e in efds] == [0, 0, 0]
        # the MSI enable bit sticks in the config region only while MSI is enabled
        cap = vdev.pdev.msi_cap
        flags = struct.unpack("<H", os.pread(dev.fd, 2, CONFIG + cap + 2))[0]
        os.pwrite(dev.fd, struct.pack("<H", flags | 1), CONFIG + cap + 2)
        assert struct.unpack("<H", os.pread(dev.fd, 2, CONFIG + cap + 2))[0] & 1
        set_irqs(dev.fd, TRIGGER_NONE, MSI, 0, 0)
        assert vdev.irq_type == VFIO_PCI_NUM_IRQS and held_fds(vdev) == []
        os.pwrite(dev.fd, struct.pack("<H", flags | 1), CONFIG + cap + 2)
        assert not struct.unpack("<H", os.pread(dev.fd, 2, CONFIG + cap + 2))[0] & 1
    finally:
        for e in efds:
            os.close(e)
        dev.close()


@pytest.mark.mockkernel(topology=TOPO)
def test_msix_grows_dynamically(mock_kernel: Kernel) -> None:
    dev = open_device("group", MSI_BDF, MSI_GROUP)
    vdev = vdev_of(mock_kernel, MSI_BDF)
    a, b = eventfd(), eventfd()
    try:
        register(dev.fd, MSIX, a)
        register(dev.fd, MSIX, b, start=5)  # pci_msix_alloc_irq_at
        assert vdev.raise_irq(MSIX, 0) and vdev.raise_irq(MSIX, 5)
        assert not vdev.raise_irq(MSI, 0)  # not the enabled type
        assert (counter(a), counter(b)) == (1, 1)
        with pytest.raises(OSError):
            register(dev.fd, MSI, a)  # another IRQ type is enabled: EINVAL
    finally:
        os.close(a)
        os.close(b)
        dev.close()
    assert held_fds(vdev) == [] and vdev.irq_type == VFIO_PCI_NUM_IRQS


# -- ERR / REQ ---------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [ERR, REQ])
def test_err_req_raise(dev: Device, mock_kernel: Kernel, index: int) -> None:
    vdev = vdev_of(mock_kernel)
    efd = eventfd()
    try:
        assert not vdev.raise_irq(index)
        register(dev.fd, index, efd)
        assert vdev.raise_irq(index) and vdev.raise_irq(index)
        assert counter(efd) == 2
        register(dev.fd, index, -1)
        assert not vdev.raise_irq(index)
    finally:
        os.close(efd)


def test_raise_irq_bad_index(dev: Device, mock_kernel: Kernel) -> None:
    with pytest.raises(ValueError):
        vdev_of(mock_kernel).raise_irq(VFIO_PCI_NUM_IRQS)


# -- teardown, references, trace ---------------------------------------------------------------
def test_close_tears_down(mock_kernel: Kernel) -> None:
    dev = open_device("group")
    vdev = vdev_of(mock_kernel)
    a, b, c = eventfd(), eventfd(), eventfd()
    try:
        register(dev.fd, INTX, a)
        register(dev.fd, REQ, b)
        register(dev.fd, ERR, c)
        assert len(held_fds(vdev)) == 3
        dev.close()
        assert held_fds(vdev) == [] and vdev.irq_type == VFIO_PCI_NUM_IRQS
        assert not any(vdev.raise_irq(i) for i in (INTX, ERR, REQ))
        assert [counter(e) for e in (a, b, c)] == [0, 0, 0]
    finally:
        for e in (a, b, c):
            os.close(e)


def test_reset_keeps_irqs(dev: Device, mock_kernel: Kernel) -> None:
    vdev = vdev_of(mock_kernel)
    efd = eventfd()
    try:
        register(dev.fd, INTX, efd)
        fcntl.ioctl(dev.fd, VFIO_DEVICE_RESET)
        assert vdev.raise_irq(INTX) and counter(efd) == 1
    finally:
        os.close(efd)


def test_kernel_holds_its_own_reference(dev: Device, mock_kernel: Kernel) -> None:
    """The program may close its eventfd: the kernel's reference still signals the file."""
    vdev = vdev_of(mock_kernel)
    efd = eventfd()
    keep = os.dup(efd)
    register(dev.fd, REQ, efd)
    os.close(efd)
    try:
        assert vdev.raise_irq(REQ)
        assert counter(keep) == 1
    finally:
        os.close(keep)
    # left registered on purpose: closing the device (fixture) must drop it, no leak


def test_trace_events(dev: Device, mock_kernel: Kernel) -> None:
    vdev = vdev_of(mock_kernel)
    efd = eventfd()
    try:
        with mock_kernel.tracer.capture() as events:
            register(dev.fd, INTX, efd)
            vdev.raise_irq(INTX)
            set_irqs(dev.fd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, INTX)
            set_irqs(dev.fd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, INTX)
            set_irqs(dev.fd, TRIGGER_NONE, INTX, 0, 0)
    finally:
        os.close(efd)
    got = [
        (e["event"], {k: v for k, v in e.items() if k not in ("event", "bdf", "ts", "seq")})
        for e in events
        if e["event"].startswith("vfio_pci.i")
    ]
    assert got == [
        ("vfio_pci.irq_enable", {"index": INTX, "vectors": 1}),
        ("vfio_pci.irq_eventfd", {"index": INTX, "vector": 0, "set": True}),
        ("vfio_pci.intx_mask", {"masked": True, "by": "irq"}),
        ("vfio_pci.intx_mask", {"masked": False, "by": "ioctl"}),
        ("vfio_pci.intx_mask", {"masked": True, "by": "ioctl"}),
        ("vfio_pci.irq_eventfd", {"index": INTX, "vector": 0, "set": False}),
        ("vfio_pci.irq_disable", {"index": INTX}),
    ]
    assert all(e["bdf"] == BDF for e in events if e["event"].startswith("vfio_pci.i"))
