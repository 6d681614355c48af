"""Interrupts of a vfio-pci device: ``VFIO_DEVICE_SET_IRQS`` and device-raised interrupts.

Modelled on Linux 7.2's ``vfio_main.c`` (``vfio_set_irqs_validate_and_prepare``),
``vfio_pci_core.c`` (``vfio_pci_ioctl_set_irqs``, ``vfio_pci_core_close_device``) and
``vfio_pci_intrs.c`` (``vfio_pci_set_irqs_ioctl`` and its per-index handlers), checked
against the ``vfio_irqs`` real-Linux probe (QEMU edu and ivshmem-plain):

* The ioctl copies the 20-byte header (``EFAULT``), takes the index's IRQ count
  (``vfio_pci_get_irq_count``: what ``GET_IRQ_INFO`` answers; ERR has 0 on a
  conventional function) and validates, every failure ``EINVAL``: ``argsz < 20``, an
  index past ``VFIO_PCI_NUM_IRQS``, ``count >= U32_MAX - start``, a flag outside the
  data and action masks; ``start >= count of the index`` (so every call on an index
  with no IRQ, even a disable) or ``start + count`` past it; no or more than one
  DATA_* bit; ``argsz - 20`` smaller than ``count`` u8s (BOOL) or s32s (EVENTFD).
  Then the data is copied (``EFAULT``) and the index/action pair dispatched: no or
  several ACTION_* bits, MASK/UNMASK on anything but INTx, ERR on a conventional
  function -> ``ENOTTY``.
* An eventfd is taken with ``eventfd_ctx_fdget``: ``EBADF`` for a closed fd,
  ``EINVAL`` for an fd that is not an eventfd.  The kernel keeps its own reference
  (here a kernel-held ``dup`` of the real eventfd), dropped when the eventfd is
  replaced or unregistered, the index disabled, or the device closed.
* INTx (``vfio_pci_set_intx_trigger``/``_mask``/``_unmask``): an EVENTFD trigger enables
  INTx (an fd < 0 enables it with no eventfd), or replaces the eventfd when enabled;
  DATA_NONE with count 0 disables it (``EINVAL`` if INTx is not enabled); NONE/BOOL
  with count 1 signal the eventfd (masked or not).  MASK/UNMASK need INTx enabled,
  start 0 and count 1; an EVENTFD MASK is ``ENOTTY``; an EVENTFD UNMASK registers a
  resample eventfd (``vfio_virqfd_enable``: ``EBUSY`` if one is registered) whose
  writes unmask INTx.  A device interrupt (:func:`raise_irq`) masks INTx
  (``VFIO_IRQ_INFO_AUTOMASKED``) and signals the eventfd; raised while masked it stays
  pending and is signalled at the unmask, which leaves INTx masked.
* MSI/MSI-X (``vfio_pci_set_msi_trigger``): EVENTFD enables the index with
  ``start + count`` vectors (``vfio_msi_enable``; ``msi_qmax`` becomes
  ``log2(vectors)``), an fd < 0 leaving the vector without an eventfd, and if any
  eventfd fails MSI is disabled again; while enabled EVENTFD sets a block of vectors;
  NONE/BOOL signal the vectors that have an eventfd; DATA_NONE with count 0 disables.
  Another IRQ type enabled -> ``EINVAL``.  The config region's MSI enable bit is
  virtual: ``SET_IRQS`` does not change what it reads, but a write setting it sticks
  only while MSI is enabled (``vfio_msi_config_write``).
* ERR (PCI Express only) and REQ (``vfio_pci_set_ctx_trigger_single``): EVENTFD
  registers (fd -1 unregisters, any other negative fd is ``EINVAL``), NONE/BOOL with
  count 1 signal, NONE with count 0 unregisters; NONE with nothing registered and
  BOOL/EVENTFD with count 0 are ``EINVAL``.
* ``VFIO_DEVICE_RESET`` leaves every IRQ as it is; closing the device disables the
  enabled IRQ type and drops the ERR/REQ eventfds (``vfio_pci_core_close_device``).
* [I] ``virq_disabled`` (INTx masked through ``PCI_COMMAND_INTX_DISABLE`` in the config
  region) and the physical DisINTx bit are not modelled; MSI-X allocates vectors
  dynamically (x86's ``has_dyn_msix``).

Trace events (one per state change): ``vfio_pci.irq_enable`` (index, vectors),
``vfio_pci.irq_disable`` (index), ``vfio_pci.irq_eventfd`` (index, vector, set),
``vfio_pci.intx_mask`` (masked, by: ``ioctl``/``irq``/``unmask_fd``) and
``vfio_pci.intx_unmask_fd`` (set).
"""

from __future__ import annotations

import os
import select
import struct
from collections.abc import Callable
from errno import EBUSY, EINVAL, ENOTTY
from typing import TYPE_CHECKING

from mockkernel.driver import copy_from_user, fdget, fget_real, kernel_close, kerr
from mockkernel.uapi.linux.pci_regs import (
    PCI_INTERRUPT_PIN,
    PCI_MSI_FLAGS,
    PCI_MSI_FLAGS_ENABLE,
    PCI_MSI_FLAGS_QMASK,
    PCI_MSIX_FLAGS,
    PCI_MSIX_FLAGS_ENABLE,
    PCI_MSIX_FLAGS_QSIZE,
)
from mockkernel.uapi.linux.vfio import (
    VFIO_IRQ_SET_ACTION_MASK,
    VFIO_IRQ_SET_ACTION_TRIGGER,
    VFIO_IRQ_SET_ACTION_TYPE_MASK,
    VFIO_IRQ_SET_ACTION_UNMASK,
    VFIO_IRQ_SET_DATA_BOOL,
    VFIO_IRQ_SET_DATA_EVENTFD,
    VFIO_IRQ_SET_DATA_NONE,
    VFIO_IRQ_SET_DATA_TYPE_MASK,
    VFIO_PCI_ERR_IRQ_INDEX,
    VFIO_PCI_INTX_IRQ_INDEX,
    VFIO_PCI_MSI_IRQ_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX,
    VFIO_PCI_NUM_IRQS,
    VFIO_PCI_REQ_IRQ_INDEX,
)

if TYPE_CHECKING:
    from .core import VfioPciDevice

__all__ = [
    "IrqCtx",
    "eventfd_ctx_fdget",
    "irq_count",
    "irqs_close",
    "raise_irq",
    "set_irqs",
]

_EVENTFD_LINK = "anon_inode:[eventfd]"
_MINSZ = 20  # offsetofend(struct vfio_irq_set, count)
_U32_MAX = 0xFFFF_FFFF


class IrqCtx:
    """``struct vfio_pci_irq_ctx``: one vector's eventfd (a kernel-held fd) and INTx state."""

    __slots__ = ("masked", "pending", "trigger", "unmask")

    def __init__(self, trigger: int | None) -> None:
        self.trigger = trigger
        self.masked = False
        self.pending = False  # INTx raised while masked: signalled at the unmask
        self.unmask: int | None = None  # the INTx resample (unmask) eventfd


def _trace(vdev: VfioPciDevice, event: str, **fields: object) -> None:
    vdev.kernel.tracer.emit(event, bdf=vdev.pdev.bdf, **fields)  # (fields vary: no TracePoint)


def eventfd_ctx_fdget(vdev: VfioPciDevice, fd: int) -> int:
    """``eventfd_ctx_fdget``: ``EBADF`` without a file, ``EINVAL`` if it is not an eventfd;
    else a kernel-held duplicate of the caller's eventfd."""
    if fdget(vdev.kernel, fd) is not None:  # EBADF: no file at all
        raise kerr(EINVAL)  # a mock file: never an eventfd
    # the caller's file, fetched from its own table: a supervised process's fd numbers
    # are not this process's (its eventfd 5 is not our fd 5)
    real = fget_real(vdev.kernel, fd)
    try:
        if os.readlink(f"/proc/self/fd/{real}") != _EVENTFD_LINK:
            raise kerr(EINVAL)
    except BaseException:
        kernel_close(vdev.kernel, real)
        raise
    return real


def _signal(fd: int) -> None:
    """``eventfd_signal``: add 1 to the counter."""
    os.write(fd, (1).to_bytes(8, "little"))


def _put(vdev: VfioPciDevice, fd: int | None) -> None:
    """``eventfd_ctx_put``."""
    if fd is not None:
        kernel_close(vdev.kernel, fd)


def _readable(fd: int) -> bool:
    """The eventfd's counter is not 0 (``poll``: ``select`` cannot take the kernel's high fds)."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(0))


def irq_count(vdev: VfioPciDevice, index: int) -> int:
    """``vfio_pci_get_irq_count``."""
    pdev = vdev.pdev
    if index == VFIO_PCI_INTX_IRQ_INDEX:
        return 1 if pdev.pci_read_config_byte(PCI_INTERRUPT_PIN) else 0
    if index == VFIO_PCI_MSI_IRQ_INDEX:
        if not pdev.msi_cap:
            return 0
        flags = pdev.pci_read_config_word(pdev.msi_cap + PCI_MSI_FLAGS)
        return 1 << ((flags & PCI_MSI_FLAGS_QMASK) >> 1)  # Multiple Message Capable
    if index == VFIO_PCI_MSIX_IRQ_INDEX:
        if not pdev.msix_cap:
            return 0
        qsize = pdev.pci_read_config_word(pdev.msix_cap + PCI_MSIX_FLAGS)
        return (qsize & PCI_MSIX_FLAGS_QSIZE) + 1
    if index == VFIO_PCI_ERR_IRQ_INDEX:
        return 1 if pdev.pci_is_pcie() else 0
    if index == VFIO_PCI_REQ_IRQ_INDEX:
        return 1
    return 0


def _is_irq_none(vdev: VfioPciDevice) -> bool:
    return vdev.irq_type not in (
        VFIO_PCI_INTX_IRQ_INDEX,
        VFIO_PCI_MSI_IRQ_INDEX,
        VFIO_PCI_MSIX_IRQ_INDEX,
    )


def _is_intx(vdev: VfioPciDevice) -> bool:
    return vdev.irq_type == VFIO_PCI_INTX_IRQ_INDEX


def _fd_at(data: bytes, i: int) -> int:
    value: int = struct.unpack_from("<i", data, 4 * i)[0]
    return value


# -- INTx ---------------------------------------------------------------------------------
def _send_intx(vdev: VfioPciDevice) -> bool:
    """``vfio_send_intx_eventfd``."""
    ctx = vdev.irq_ctx.get(0)
    if _is_intx(vdev) and ctx is not None and ctx.trigger is not None:
        _signal(ctx.trigger)
        return True
    return False


def _intx_mask(vdev: VfioPciDevice, by: str) -> None:
    """``__vfio_pci_intx_mask``."""
    ctx = vdev.irq_ctx.get(0)
    if _is_intx(vdev) and ctx is not None and not ctx.masked:
        ctx.masked = True
        _trace(vdev, "vfio_pci.intx_mask", masked=True, by=by)


def _intx_unmask(vdev: VfioPciDevice, by: str) -> None:
    """``__vfio_pci_intx_unmask``: a pending interrupt is sent again, INTx stays masked."""
    ctx = vdev.irq_ctx.get(0)
    if not _is_intx(vdev) or ctx is None or not ctx.masked:
        return
    if ctx.pending:  # pci_check_and_unmask_intx found it asserted
        ctx.pending = False
        _send_intx(vdev)
        return
    ctx.masked = False
    _trace(vdev, "vfio_pci.intx_mask", masked=False, by=by)


def _poll_unmask_fd(vdev: VfioPciDevice) -> None:
    """The resample eventfd's wakeup (``virqfd_wakeup`` -> ``vfio_pci_intx_unmask_handler``),
    run when the kernel next looks at INTx: the counter is consumed, INTx unmasked."""
    ctx = vdev.irq_ctx.get(0)
    if not _is_intx(vdev) or ctx is None or ctx.unmask is None:
        return
    if _readable(ctx.unmask):
        os.read(ctx.unmask, 8)
        _intx_unmask(vdev, "unmask_fd")


def _intx_enable(vdev: VfioPciDevice, trigger: int | None) -> None:
    """``vfio_intx_enable`` (``virq_disabled`` is never set here: starts unmasked)."""
    if not _is_irq_none(vdev):
        raise kerr(EINVAL)
    vdev.irq_ctx[0] = IrqCtx(trigger)
    vdev.irq_type = VFIO_PCI_INTX_IRQ_INDEX
    _trace(vdev, "vfio_pci.irq_enable", index=VFIO_PCI_INTX_IRQ_INDEX, vectors=1)
    if trigger is not None:
        _trace(vdev, "vfio_pci.irq_eventfd", index=VFIO_PCI_INTX_IRQ_INDEX, vector=0, set=True)


def _intx_set_signal(vdev: VfioPciDevice, trigger: int | None) -> None:
    ctx = vdev.irq_ctx[0]
    old, ctx.trigger = ctx.trigger, trigger
    _put(vdev, old)
    if old is not None or trigger is not None:
        _trace(
            vdev,
            "vfio_pci.irq_eventfd",
            index=VFIO_PCI_INTX_IRQ_INDEX,
            vector=0,
            set=trigger is not None,
        )


def _set_unmask_fd(vdev: VfioPciDevice, ctx: IrqCtx, fd: int | None) -> None:
    old, ctx.unmask = ctx.unmask, fd
    _put(vdev, old)
    if old is not None or fd is not None:
        _trace(vdev, "vfio_pci.intx_unmask_fd", set=fd is not None)


def _intx_disable(vdev: VfioPciDevice) -> None:
    """``vfio_intx_disable``."""
    ctx = vdev.irq_ctx.pop(0, None)
    if ctx is not None:
        _set_unmask_fd(vdev, ctx, None)
        if ctx.trigger is not None:
            _put(vdev, ctx.trigger)
            _trace(vdev, "vfio_pci.irq_eventfd", index=VFIO_PCI_INTX_IRQ_INDEX, vector=0, set=False)
    vdev.irq_type = VFIO_PCI_NUM_IRQS
    _trace(vdev, "vfio_pci.irq_disable", index=VFIO_PCI_INTX_IRQ_INDEX)


def _intx_action(
    vdev: VfioPciDevice,
    start: int,
    count: int,
    flags: int,
    data: bytes,
    act: Callable[[VfioPciDevice, str], None],
) -> bool:
    """What INTx MASK and UNMASK share: the checks, and DATA_NONE / DATA_BOOL doing
    ``act``; True when the data is an eventfd (each action handles that itself)."""
    if not _is_intx(vdev) or start != 0 or count != 1:
        raise kerr(EINVAL)
    _poll_unmask_fd(vdev)
    if flags & VFIO_IRQ_SET_DATA_NONE or (flags & VFIO_IRQ_SET_DATA_BOOL and data[0]):
        act(vdev, "ioctl")
    return bool(flags & VFIO_IRQ_SET_DATA_EVENTFD)


def _set_intx_unmask(
    vdev: VfioPciDevice, index: int, start: int, count: int, flags: int, data: bytes
) -> None:
    if _intx_action(vdev, start, count, flags, data, _intx_unmask):
        ctx = vdev.irq_ctx[0]
        fd = _fd_at(data, 0)
        if fd >= 0:  # vfio_virqfd_enable
            new = eventfd_ctx_fdget(vdev, fd)
            if ctx.unmask is not None:
                _put(vdev, new)
                raise kerr(EBUSY)
            _set_unmask_fd(vdev, ctx, new)
            return
        _set_unmask_fd(vdev, ctx, None)  # vfio_virqfd_disable


def _set_intx_mask(
    vdev: VfioPciDevice, index: int, start: int, count: int, flags: int, data: bytes
) -> None:
    if _intx_action(vdev, start, count, flags, data, _intx_mask):
        raise kerr(ENOTTY)  # "XXX implement me" upstream


def _set_intx_trigger(
    vdev: VfioPciDevice, index: int, start: int, count: int, flags: int, data: bytes
) -> None:
    if _is_intx(vdev) and not count and flags & VFIO_IRQ_SET_DATA_NONE:
        _intx_disable(vdev)
        return
    if not (_is_intx(vdev) or _is_irq_none(vdev)) or start != 0 or count != 1:
        raise kerr(EINVAL)
    if flags & VFIO_IRQ_SET_DATA_EVENTFD:
        fd = _fd_at(data, 0)
        trigger = eventfd_ctx_fdget(vdev, fd) if fd >= 0 else None
        if _is_intx(vdev):
            _intx_set_signal(vdev, trigger)
        else:
            _intx_enable(vdev, trigger)
        return
    if not _is_intx(vdev):
        raise kerr(EINVAL)
    if flags & VFIO_IRQ_SET_DATA_NONE or (flags & VFIO_IRQ_SET_DATA_BOOL and data[0]):
        _send_intx(vdev)


# -- MSI / MSI-X ---------------------------------------------------------------------------
def _msi_phys_enable(vdev: VfioPciDevice, msix: bool, on: bool) -> None:
    """What ``pci_alloc_irq_vectors``/``pci_free_irq_vectors`` do to the function's own
    enable bit (the config region shows the virtual one)."""
    pdev = vdev.pdev
    cap, bit = (
        (pdev.msix_cap + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE)
        if msix
        else (pdev.msi_cap + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE)
    )
    flags = pdev.pci_read_config_word(cap)
    pdev.pci_write_config_word(cap, flags | bit if on else flags & ~bit)


def _msi_enable(vdev: VfioPciDevice, nvec: int, msix: bool) -> None:
    """``vfio_msi_enable``."""
    if not _is_irq_none(vdev):
        raise kerr(EINVAL)
    _msi_phys_enable(vdev, msix, True)
    vdev.irq_nvec = nvec
    index = VFIO_PCI_MSIX_IRQ_INDEX if msix else VFIO_PCI_MSI_IRQ_INDEX
    vdev.irq_type = index
    if not msix:
        vdev.msi_qmax = (nvec * 2 - 1).bit_length() - 1  # fls(nvec * 2 - 1) - 1
    _trace(vdev, "vfio_pci.irq_enable", index=index, vectors=nvec)


def _msi_set_vector_signal(vdev: VfioPciDevice, vector: int, fd: int, msix: bool) -> None:
    """``vfio_msi_set_vector_signal``."""
    index = VFIO_PCI_MSIX_IRQ_INDEX if msix else VFIO_PCI_MSI_IRQ_INDEX
    ctx = vdev.irq_ctx.pop(vector, None)
    if ctx is not None:
        _put(vdev, ctx.trigger)
        _trace(vdev, "vfio_pci.irq_eventfd", index=index, vector=vector, set=False)
    if fd < 0:
        return
    if vector >= vdev.irq_nvec:  # vfio_msi_alloc_irq: pci_irq_vector has no such vector
        if not msix:
            raise kerr(EINVAL)
        vdev.irq_nvec = vector + 1  # pci_msix_alloc_irq_at (dynamic MSI-X)
    trigger = eventfd_ctx_fdget(vdev, fd)
    vdev.irq_ctx[vector] = IrqCtx(trigger)
    _trace(vdev, "vfio_pci.irq_eventfd", index=index, vector=vector, set=True)


def _msi_set_block(
    vdev: VfioPciDevice, start: int, count: int, data: bytes | None, msix: bool
) -> None:
    """``vfio_msi_set_block``: on a failure the vectors set so far are cleared again."""
    j = start
    try:
        for i in range(count):
            fd = _fd_at(data, i) if data is not None else -1
            j = start + i + 1
            _msi_set_vector_signal(vdev, start + i, fd, msix)
    except OSError:
        for k in range(start, j):
            _msi_set_vector_signal(vdev, k, -1, msix)
        raise


def _msi_disable(vdev: VfioPciDevice, msix: bool) -> None:
    """``vfio_msi_disable``."""
    for vector in sorted(vdev.irq_ctx):
        _msi_set_vector_signal(vdev, vector, -1, msix)
    _msi_phys_enable(vdev, msix, False)
    index = vdev.irq_type
    vdev.irq_type = VFIO_PCI_NUM_IRQS
    vdev.irq_nvec = 0
    _trace(vdev, "vfio_pci.irq_disable", index=index)


def _set_msi_trigger(
    vdev: VfioPciDevice, index: int, start: int, count: int, flags: int, data: bytes
) -> None:
    msix = index == VFIO_PCI_MSIX_IRQ_INDEX
    if vdev.irq_type == index and not count and flags & VFIO_IRQ_SET_DATA_NONE:
        _msi_disable(vdev, msix)
        return
    if not (vdev.irq_type == index or _is_irq_none(vdev)):
        raise kerr(EINVAL)
    if flags & VFIO_IRQ_SET_DATA_EVENTFD:
        if vdev.irq_type == index:
            _msi_set_block(vdev, start, count, data, msix)
            return
        _msi_enable(vdev, start + count, msix)
        try:
            _msi_set_block(vdev, start, count, data, msix)
        except OSError:
            _msi_disable(vdev, msix)
            raise
        return
    if vdev.irq_type != index:
        raise kerr(EINVAL)
    for i in range(start, start + count):
        ctx = vdev.irq_ctx.get(i)
        if ctx is None or ctx.trigger is None:
            continue
        if flags & VFIO_IRQ_SET_DATA_NONE or (flags & VFIO_IRQ_SET_DATA_BOOL and data[i - start]):
            _signal(ctx.trigger)


# -- ERR / REQ -----------------------------------------------------------------------------
def _set_ctx_trigger_single(
    vdev: VfioPciDevice, index: int, count: int, flags: int, data: bytes
) -> None:
    """``vfio_pci_set_ctx_trigger_single`` on ``vdev.err_trigger``/``req_trigger``."""
    attr = "err_trigger" if index == VFIO_PCI_ERR_IRQ_INDEX else "req_trigger"
    cur: int | None = getattr(vdev, attr)
    if flags & VFIO_IRQ_SET_DATA_NONE:
        if cur is not None:
            if count:
                _signal(cur)
            else:
                _put(vdev, cur)
                setattr(vdev, attr, None)
                _trace(vdev, "vfio_pci.irq_eventfd", index=index, vector=0, set=False)
            return
    elif flags & VFIO_IRQ_SET_DATA_BOOL:
        if not count:
            raise kerr(EINVAL)
        if data[0] and cur is not None:
            _signal(cur)
        return
    elif flags & VFIO_IRQ_SET_DATA_EVENTFD:
        if not count:
            raise kerr(EINVAL)
        fd = _fd_at(data, 0)
        if fd == -1:
            _put(vdev, cur)
            setattr(vdev, attr, None)
            if cur is not None:
                _trace(vdev, "vfio_pci.irq_eventfd", index=index, vector=0, set=False)
            return
        if fd >= 0:
            new = eventfd_ctx_fdget(vdev, fd)
            _put(vdev, cur)
            setattr(vdev, attr, new)
            _trace(vdev, "vfio_pci.irq_eventfd", index=index, vector=0, set=True)
            return
    raise kerr(EINVAL)  # NONE with nothing registered; a negative fd other than -1 (7.2)


def _set_err_req_trigger(
    vdev: VfioPciDevice, index: int, start: int, count: int, flags: int, data: bytes
) -> None:
    if start != 0 or count > 1:
        raise kerr(EINVAL)
    _set_ctx_trigger_single(vdev, index, count, flags, data)


# -- dispatch ------------------------------------------------------------------------------
def set_irqs_ioctl(
    vdev: VfioPciDevice, flags: int, index: int, start: int, count: int, data: bytes
) -> None:
    """``vfio_pci_set_irqs_ioctl``: the handler of an index/action pair, else ``ENOTTY``."""
    action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK
    func = None
    if index == VFIO_PCI_INTX_IRQ_INDEX:
        func = {
            VFIO_IRQ_SET_ACTION_MASK: _set_intx_mask,
            VFIO_IRQ_SET_ACTION_UNMASK: _set_intx_unmask,
            VFIO_IRQ_SET_ACTION_TRIGGER: _set_intx_trigger,
        }.get(action)
    elif index in (VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX):
        if action == VFIO_IRQ_SET_ACTION_TRIGGER:
            func = _set_msi_trigger
    elif index == VFIO_PCI_ERR_IRQ_INDEX:
        if action == VFIO_IRQ_SET_ACTION_TRIGGER and vdev.pdev.pci_is_pcie():
            func = _set_err_req_trigger
    elif index == VFIO_PCI_REQ_IRQ_INDEX and action == VFIO_IRQ_SET_ACTION_TRIGGER:
        func = _set_err_req_trigger
    if func is None:
        raise kerr(ENOTTY)
    func(vdev, index, start, count, flags, data)


def _validate_and_prepare(
    argsz: int, flags: int, index: int, start: int, count: int, num_irqs: int
) -> int:
    """``vfio_set_irqs_validate_and_prepare``: the size of the data that follows."""
    if (
        argsz < _MINSZ
        or index >= VFIO_PCI_NUM_IRQS
        or count >= _U32_MAX - start
        or flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)
    ):
        raise kerr(EINVAL)
    if start >= num_irqs or start + count > num_irqs:
        raise kerr(EINVAL)
    data_type = flags & VFIO_IRQ_SET_DATA_TYPE_MASK
    if data_type == VFIO_IRQ_SET_DATA_NONE:
        size = 0
    elif data_type == VFIO_IRQ_SET_DATA_BOOL:
        size = 1
    elif data_type == VFIO_IRQ_SET_DATA_EVENTFD:
        size = 4
    else:
        raise kerr(EINVAL)
    if size and argsz - _MINSZ < count * size:
        raise kerr(EINVAL)
    return count * size


def set_irqs(vdev: VfioPciDevice, arg: int) -> int:
    """``vfio_pci_ioctl_set_irqs``."""
    argsz, flags, index, start, count = struct.unpack("<IIIII", copy_from_user(arg, _MINSZ))
    num_irqs = irq_count(vdev, index) if index < VFIO_PCI_NUM_IRQS else 0
    data_size = _validate_and_prepare(argsz, flags, index, start, count, num_irqs)
    data = copy_from_user(arg + _MINSZ, data_size) if data_size else b""
    set_irqs_ioctl(vdev, flags, index, start, count, data)
    return 0


def irqs_close(vdev: VfioPciDevice) -> None:
    """``vfio_pci_core_close_device``: disable the enabled IRQ type, drop ERR/REQ eventfds."""
    if not _is_irq_none(vdev):
        set_irqs_ioctl(
            vdev, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, vdev.irq_type, 0, 0, b""
        )
    for index, attr in (
        (VFIO_PCI_ERR_IRQ_INDEX, "err_trigger"),
        (VFIO_PCI_REQ_IRQ_INDEX, "req_trigger"),
    ):
        cur: int | None = getattr(vdev, attr)
        if cur is not None:
            _put(vdev, cur)
            setattr(vdev, attr, None)
            _trace(vdev, "vfio_pci.irq_eventfd", index=index, vector=0, set=False)


def raise_irq(vdev: VfioPciDevice, index: int, vector: int = 0) -> bool:
    """The device raises interrupt ``vector`` of ``index``: what the host IRQ handler does.

    INTx (``vfio_intx_handler``): if INTx is enabled and unmasked it is masked and the
    eventfd signalled; if masked, the interrupt stays pending until the unmask.  MSI/MSI-X
    (``vfio_msihandler``): the vector's eventfd is signalled if the index is enabled and
    the vector has one.  ERR/REQ: the registered eventfd is signalled.  Returns whether an
    eventfd was signalled.
    """
    if not 0 <= index < VFIO_PCI_NUM_IRQS:
        raise ValueError(f"no IRQ index {index}")
    if index == VFIO_PCI_INTX_IRQ_INDEX:
        _poll_unmask_fd(vdev)
        ctx = vdev.irq_ctx.get(0)
        if not _is_intx(vdev) or ctx is None:
            return False
        if ctx.masked:
            ctx.pending = True
            return False
        ctx.masked = True
        _trace(vdev, "vfio_pci.intx_mask", masked=True, by="irq")
        return _send_intx(vdev)
    if index in (VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX):
        ctx = vdev.irq_ctx.get(vector)
        if vdev.irq_type != index or ctx is None or ctx.trigger is None:
            return False
        _signal(ctx.trigger)
        return True
    cur: int | None = vdev.err_trigger if index == VFIO_PCI_ERR_IRQ_INDEX else vdev.req_trigger
    if cur is None:
        return False
    _signal(cur)
    return True
