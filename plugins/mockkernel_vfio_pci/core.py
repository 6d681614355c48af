"""The vfio objects: a vfio-pci device, its IOMMU group, and the feature-flag checks.

``VfioPciDevice`` is ``struct vfio_pci_core_device`` with its embedded
``struct vfio_device``: the PCI function, its ``memory_lock`` (an ``RwSem``
that serialises revocation and protects the list of dma-bufs), the dma-bufs
exported from it, its open count and the virtualised config space of an open
device.  ``VfioGroup`` is ``struct vfio_group``: one per IOMMU group that has a
vfio-bound function, the object behind ``/dev/vfio/<n>``.

Lock order, as upstream: ``memory_lock`` then a dma-buf's ``resv``.  Files
whose last reference is dropped while ``memory_lock`` is held are put after
it is released (the kernel defers such ``fput`` to task work).

BAR mappings: upstream zaps every mapping of the device (``unmap_mapping_range``)
whenever it takes ``memory_lock`` for a change of memory access (memory decoding
cleared, reset, low power), and its fault handler refuses (``SIGBUS``) while memory
decoding is off or the device is in low power, and inserts the pages again otherwise.
Here, as ``memory_lock`` is released after a write section, each BAR mapping is zapped
if the device is then inaccessible and restored if it is accessible: the same thing
seen from userspace, with the re-insertion done eagerly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from errno import EINVAL, ENODEV
from typing import TYPE_CHECKING

from mockkernel.driver import (
    File,
    Kernel,
    PciDev,
    RwSem,
    TracePoint,
    UapiProfile,
    file_mappings,
    kernel_close,
    kerr,
)
from mockkernel.uapi.linux.pci_regs import PCI_PM_CTRL, PCI_PM_CTRL_STATE_MASK
from mockkernel.uapi.linux.vfio import (
    VFIO_DEVICE_FEATURE_GET,
    VFIO_DEVICE_FEATURE_PROBE,
    VFIO_DEVICE_FEATURE_SET,
    VFIO_PCI_NUM_IRQS,
    VFIO_PCI_REQ_IRQ_INDEX,
)

from .intrs import IrqCtx, raise_irq

if TYPE_CHECKING:
    from .config import VConfig
    from .container import VfioContainer
    from .device import VfioDeviceFops
    from .dmabuf import VfioPciDmaBuf, VfioPciDmaBufOps
    from .iommufd import Ioas, IommufdCtx, IommufdDevice

__all__ = ["FeatureHandler", "VfioGroup", "VfioPciDevice", "vfio_check_feature"]

trace_vfio_pci_unregister = TracePoint("vfio_pci.unregister", "bdf", "requests")
trace_vfio_pci_request = TracePoint("vfio_pci.request", "bdf", "count", "relayed", "open")

FeatureHandler = Callable[["VfioPciDevice", int, int, int], int]
"""``handler(vdev, flags, data_addr, data_size)``: a ``VFIO_DEVICE_FEATURE`` index."""


def vfio_check_feature(flags: int, argsz: int, supported_ops: int, minsz: int) -> int:
    """``vfio_check_feature`` (include/linux/vfio.h): 1 = execute, 0 = PROBE answered.

    In order: a GET/SET bit the feature does not support -> ``EINVAL``; PROBE -> 0;
    neither GET nor SET -> ``EINVAL``; ``argsz < minsz`` -> ``EINVAL``.
    """
    if (flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET)) & ~supported_ops:
        raise kerr(EINVAL)
    if flags & VFIO_DEVICE_FEATURE_PROBE:
        return 0
    if not flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET):
        raise kerr(EINVAL)
    if argsz < minsz:
        raise kerr(EINVAL)
    return 1


class VfioGroup:
    """``struct vfio_group``: the devices of one IOMMU group and who holds ``/dev/vfio/<n>``."""

    def __init__(self, number: int, rdev: int) -> None:
        self.number = number
        self.rdev = rdev
        self.devices: list[VfioPciDevice] = []
        self.opened_file: File | None = None
        self.container: VfioContainer | None = None
        self.container_users = 0
        self.iommufd: IommufdCtx | None = None
        self.iommufd_file: File | None = None  # the reference group->iommufd holds
        self.cdev_device_open_cnt = 0

    def has_iommu(self) -> bool:
        """``vfio_group_has_iommu``: a container or an iommufd is set."""
        return self.container is not None or self.iommufd is not None

    def __repr__(self) -> str:
        return f"<VfioGroup {self.number} devices={[d.pdev.bdf for d in self.devices]}>"


class VfioPciDevice:
    """``struct vfio_pci_core_device``: one PCI function bound to vfio-pci."""

    def __init__(
        self,
        kernel: Kernel,
        pdev: PciDev,
        index: int,
        group: VfioGroup,
        profile: UapiProfile,
        dmabuf_ops: VfioPciDmaBufOps,
        features: dict[int, FeatureHandler],
    ) -> None:
        self.kernel = kernel
        self.pdev = pdev
        self.index = index  # the N of vfioN
        self.group = group
        self.profile = profile
        self.dmabuf_ops = dmabuf_ops
        self.features = features
        self.memory_lock = RwSem(kernel, f"vfio-pci {pdev.bdf} memory_lock")
        self.dmabufs: dict[int, VfioPciDmaBuf] = {}  # vdev->dmabufs, by dma-buf id
        self.open_count = 0
        self.cdev_opened = False
        self.reset_works = bool(pdev.options.get("reset", True))
        #: pci_ops->get_dmabuf_phys: plain vfio-pci has it; a variant driver may not
        self.get_dmabuf_phys = bool(pdev.options.get("dma_buf", True))
        self.vconfig: VConfig | None = None  # while open
        self.saved_command = 0  # pci_save_state at enable, restored at disable
        self.pm_runtime_engaged = False
        self.pm_wake_fd: int | None = None  # a kernel dup of the wakeup eventfd
        self.iommufd_device: IommufdDevice | None = None  # while bound (cdev or group+iommufd)
        self.iommufd_ioas: Ioas | None = None  # the attached IOAS
        self.fops: VfioDeviceFops  # set by the driver at probe
        self.all_devices: dict[str, VfioPciDevice] = {}  # the driver's devices, by BDF
        # interrupts (intrs.py): the enabled IRQ type (VFIO_PCI_NUM_IRQS: none), its
        # vectors' contexts, how many vectors are allocated, and the ERR/REQ eventfds
        self.irq_type = VFIO_PCI_NUM_IRQS
        self.irq_ctx: dict[int, IrqCtx] = {}
        self.irq_nvec = 0
        self.msi_qmax = 0  # log2 of the MSI vectors SET_IRQS enabled (vdev->msi_qmax)
        self.err_trigger: int | None = None  # kernel-held eventfds
        self.req_trigger: int | None = None
        self._deferred_fput: list[File] = []
        #: device files open on it (cdev opens, group device fds): the references
        #: ``vfio_device_try_get_registration`` takes; remove waits until they are gone
        self.registrations = 0
        self.unregistering = False
        self._registration_gone = threading.Condition()

    # -- registration (vfio_main.c) --------------------------------------------------------
    def try_get_registration(self) -> None:
        """``vfio_device_try_get_registration`` for a new device file: ``ENODEV`` once
        the driver is being removed."""
        with self._registration_gone:
            if self.unregistering:
                raise kerr(ENODEV)
            self.registrations += 1

    def put_registration(self) -> None:
        """``vfio_device_put_registration``: the last one completes a waiting remove."""
        with self._registration_gone:
            self.registrations -= 1
            if not self.registrations:
                self._registration_gone.notify_all()

    def unregister(self, interval: float = 10.0) -> None:
        """``vfio_unregister_group_dev``: no new device file from now on; then wait until
        every open one is closed, asking userspace through the REQ eventfd
        (``vfio_pci_core_request``) now and again every ``interval`` seconds (Linux:
        ``HZ * 10``).  Blocks for as long as a program keeps its device fds: as on
        Linux, unbinding a device a program holds and never releases hangs."""
        with self._registration_gone:
            self.unregistering = True
            count = 0
            while self.registrations:
                self.request(count)
                count += 1
                self._registration_gone.wait(interval)
        trace_vfio_pci_unregister(self.kernel.tracer, self.pdev.bdf, count)

    def request(self, count: int) -> None:
        """``vfio_pci_core_request``: signal the REQ eventfd if one is registered."""
        relayed = raise_irq(self, VFIO_PCI_REQ_IRQ_INDEX)
        trace_vfio_pci_request(
            self.kernel.tracer, self.pdev.bdf, count, relayed, self.registrations
        )

    @property
    def name(self) -> str:
        """``dev_name`` of the vfio device (``vfioN``)."""
        return f"vfio{self.index}"

    def __repr__(self) -> str:
        return f"<VfioPciDevice {self.pdev.bdf} {self.name} open={self.open_count}>"

    def memory_enabled(self) -> bool:
        """``__vfio_pci_memory_enabled``: ``PCI_COMMAND_MEMORY`` of the function, and the
        function not in D3hot (``pdev->current_state < PCI_D3hot``).

        Linux 7.2 writes the user's ``PCI_COMMAND`` through to the device (the
        physical and the virtual bit agree, as ``/sys/.../config`` shows), so the
        device's own register is the answer.  The power state is the PM capability's
        PMCSR (set through the config region, ``vfio_pm_config_write``).
        """
        pdev = self.pdev
        pm = pdev.pm_cap
        if pm and pdev.pci_read_config_word(pm + PCI_PM_CTRL) & PCI_PM_CTRL_STATE_MASK == 3:
            return False  # PCI_D3hot
        return pdev.memory_enabled

    # -- memory_lock held for write, with deferred fput -----------------------------------
    @contextmanager
    def memory_write(self) -> Iterator[None]:
        """``down_write(&vdev->memory_lock)``; files dropped inside are put after ``up_write``."""
        self.memory_lock.down_write()
        try:
            yield
        finally:
            try:
                self.sync_bar_mmaps()
            finally:
                self.memory_lock.up_write()
                self.drain_fput()

    def bar_mmaps_accessible(self) -> bool:
        """What ``vfio_pci_mmap_huge_fault`` checks: memory decoding on, not in low power."""
        return self.memory_enabled() and not self.pm_runtime_engaged

    def sync_bar_mmaps(self) -> None:
        """Zap every userspace BAR mapping of the device, or give them back (``memory_lock``
        held for write): ``SIGBUS`` on access while :meth:`bar_mmaps_accessible` is false."""
        fops = getattr(self, "fops", None)
        if fops is None or self.pdev.closed:
            return
        accessible = self.bar_mmaps_accessible()
        for mp in file_mappings(self.kernel, lambda f: f.f_op is fops):
            if accessible:
                mp.restore()
            else:
                mp.zap()

    def defer_fput(self, file: File) -> None:
        self._deferred_fput.append(file)

    def drain_fput(self) -> None:
        while self._deferred_fput:
            self._deferred_fput.pop().put()

    # -- interrupts ------------------------------------------------------------------------
    def raise_irq(self, index: int, vector: int = 0) -> bool:
        """The device raises an interrupt (a test-side API): see :func:`.intrs.raise_irq`.

        Signals the eventfd registered with ``VFIO_DEVICE_SET_IRQS`` for ``index``/``vector``
        (INTx: only when unmasked, and masks it); returns whether an eventfd was signalled.
        """
        return raise_irq(self, index, vector)

    # -- runtime PM (VFIO_DEVICE_FEATURE_LOW_POWER_*) --------------------------------------
    def pm_close_wake_fd(self) -> None:
        if self.pm_wake_fd is not None:
            kernel_close(self.kernel, self.pm_wake_fd)
            self.pm_wake_fd = None
