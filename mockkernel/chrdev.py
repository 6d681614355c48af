"""Character devices as drivers make them: ``fs/char_dev.c``, ``drivers/char/misc.c``
and the ``/dev`` nodes devtmpfs creates for them.

A driver gets its device numbers one of two ways, as in Linux:

* a **misc device** (:func:`misc_register`): major :data:`MISC_MAJOR`, a fixed minor
  (``/dev/vfio/vfio`` is 10:196) or a dynamic one, and one node under ``/dev``;
* a **region** of its own major (:func:`register_chrdev_region`), whose numbers it
  hands to nodes it adds with :func:`cdev_device_add` (``/dev/vfio/<group>``).

Nodes may sit in subdirectories (``nodename="vfio/vfio"``): devtmpfs makes the
directories (mock-only: listing them shows just the mock nodes) and removes each one
the last node leaves empty, as ``devtmpfs_delete_node`` does.  The bookkeeping (minors
and regions in use) is the :class:`ChrdevState` subsystem of each kernel.
"""

from __future__ import annotations

import itertools
import os
from errno import EBUSY, EEXIST, EINVAL, ENOENT
from typing import TYPE_CHECKING

from .context import Subsystem
from .errors import KernelBug, kerr
from .trace import TracePoint
from .vfs import ChrDev, Dir, Vfs

if TYPE_CHECKING:
    from .context import KernelContext
    from .fs import FileOperations

__all__ = [
    "MINORBITS",
    "MINORMASK",
    "MISC_DYNAMIC_MINOR",
    "MISC_MAJOR",
    "MKDEV",
    "ChrdevState",
    "cdev_device_add",
    "cdev_device_del",
    "misc_deregister",
    "misc_register",
    "register_chrdev_region",
    "unregister_chrdev_region",
]

trace_chrdev_register = TracePoint("chrdev.register", "path", "rdev")
trace_chrdev_unregister = TracePoint("chrdev.unregister", "path")

#: ``include/uapi/linux/major.h``
MISC_MAJOR = 10
#: ``include/linux/miscdevice.h``: "give me any free minor"
MISC_DYNAMIC_MINOR = 255
#: ``include/linux/kdev_t.h``: the kernel's ``dev_t`` has 20 minor bits
MINORBITS = 20
MINORMASK = (1 << MINORBITS) - 1
#: the first dynamic misc minor handed out here (then upwards, skipping used ones)
_FIRST_DYNAMIC_MINOR = 120


def MKDEV(major: int, minor: int) -> int:
    """``MKDEV(ma, mi)``: the device number userspace sees in ``st_rdev``."""
    return os.makedev(major, minor)


class ChrdevState(Subsystem):
    """The misc minors and the char regions in use in one kernel (``misc_list``,
    ``chrdevs[]``)."""

    name = "chrdev"

    def __init__(self, kernel: KernelContext) -> None:
        super().__init__(kernel)
        #: misc device name -> (minor, /dev path)
        self.misc: dict[str, tuple[int, str]] = {}
        self._dynamic = itertools.count(_FIRST_DYNAMIC_MINOR)
        #: (major, first minor, count, name) of each registered region
        self.regions: list[tuple[int, int, int, str]] = []

    def misc_minor(self, minor: int | None) -> int:
        used = {m for m, _ in self.misc.values()}
        if minor is None or minor == MISC_DYNAMIC_MINOR:
            minor = next(self._dynamic)
            while minor in used:
                minor = next(self._dynamic)
            return minor
        if minor in used:
            raise kerr(EBUSY)
        return minor

    def region_of(self, devt: int) -> str | None:
        major, minor = os.major(devt), os.minor(devt)
        for ma, first, count, name in self.regions:
            if ma == major and first <= minor < first + count:
                return name
        return None


def _devtmpfs_create_node(
    kernel: KernelContext, nodename: str, fops: FileOperations, devt: int, mode: int
) -> str:
    """``devtmpfs_create_node``: ``/dev/<nodename>``, making its directories."""
    if not nodename or nodename.startswith("/") or ".." in nodename.split("/"):
        raise KernelBug(f"bad device node name {nodename!r}")
    vfs = kernel.subsys(Vfs)
    parts = nodename.split("/")
    for i in range(1, len(parts)):
        vfs.mkdir("/dev/" + "/".join(parts[:i]), owned=True)
    path = f"/dev/{nodename}"
    try:
        vfs.register_chrdev(path, fops, devt, mode & 0o7777)
    except FileExistsError:
        raise kerr(EEXIST) from None
    trace_chrdev_register(kernel.tracer, path, devt)
    return path


def _devtmpfs_delete_node(kernel: KernelContext, path: str) -> None:
    """``devtmpfs_delete_node``: the node, then each directory it leaves empty."""
    vfs = kernel.subsys(Vfs)
    vfs.unlink(path)
    trace_chrdev_unregister(kernel.tracer, path)
    head = path.rpartition("/")[0]
    while head.startswith("/dev/"):
        d = vfs.peek(head)
        if not isinstance(d, Dir) or d.entries:
            break
        vfs.unlink(head)
        head = head.rpartition("/")[0]


def misc_register(
    kernel: KernelContext,
    name: str,
    fops: FileOperations,
    *,
    minor: int | None = None,
    mode: int = 0o666,
    nodename: str | None = None,
) -> int:
    """``misc_register``: the misc device ``name`` and its node ``/dev/<nodename>``.

    Called by a driver's module ``init`` (or ``probe``).  ``minor`` is a fixed minor
    (``None`` or :data:`MISC_DYNAMIC_MINOR`: the next free dynamic one); ``nodename``
    is the path under ``/dev`` (default ``name``; ``"vfio/vfio"`` makes ``/dev/vfio``).
    Returns the device number (major :data:`MISC_MAJOR`).  ``EBUSY`` when the minor is
    taken, ``EEXIST`` when the name or the node exists.
    """
    state = kernel.subsys(ChrdevState)
    if name in state.misc:
        raise kerr(EEXIST)
    devt = MKDEV(MISC_MAJOR, state.misc_minor(minor))
    path = _devtmpfs_create_node(kernel, nodename or name, fops, devt, mode)
    state.misc[name] = (os.minor(devt), path)
    return devt


def misc_deregister(kernel: KernelContext, name: str) -> None:
    """``misc_deregister``: remove the misc device ``name`` and its node.

    Called by the module ``exit`` that registered it; open files of the device stay
    usable until closed, as in Linux.  ``KernelBug`` if ``name`` is not registered.
    """
    state = kernel.subsys(ChrdevState)
    entry = state.misc.pop(name, None)
    if entry is None:
        raise KernelBug(f"misc_deregister of {name!r}, which is not registered")
    _devtmpfs_delete_node(kernel, entry[1])


def register_chrdev_region(kernel: KernelContext, first: int, count: int, name: str) -> None:
    """``register_chrdev_region``: claim ``count`` device numbers from ``first`` (a
    ``MKDEV(major, minor)``) for the driver ``name``.

    Called by a module ``init`` before it adds nodes with :func:`cdev_device_add`.
    ``EINVAL`` for a bad range (``count`` < 1, past :data:`MINORMASK`); ``EBUSY`` when
    it overlaps a region already registered (all of :data:`MISC_MAJOR` is misc's).
    Returns nothing.
    """
    major, minor = os.major(first), os.minor(first)
    if count < 1 or minor + count - 1 > MINORMASK:
        raise kerr(EINVAL)
    if major == MISC_MAJOR:
        raise kerr(EBUSY)  # misc owns all of its major
    state = kernel.subsys(ChrdevState)
    for ma, lo, n, _ in state.regions:
        if ma == major and lo < minor + count and minor < lo + n:
            raise kerr(EBUSY)
    state.regions.append((major, minor, count, name))


def unregister_chrdev_region(kernel: KernelContext, first: int, count: int) -> None:
    """``unregister_chrdev_region``: give back a region :func:`register_chrdev_region`
    claimed (called by the module ``exit``).  ``KernelBug`` for a region never claimed."""
    state = kernel.subsys(ChrdevState)
    key = (os.major(first), os.minor(first), count)
    for region in state.regions:
        if region[:3] == key:
            state.regions.remove(region)
            return
    raise KernelBug(f"unregister_chrdev_region of {key}, which is not registered")


def cdev_device_add(
    kernel: KernelContext, devt: int, fops: FileOperations, nodename: str, *, mode: int = 0o600
) -> None:
    """``cdev_device_add``: the device number ``devt`` opens with ``fops``, through the
    node ``/dev/<nodename>`` (directories made as needed).

    Called by a driver's ``probe`` for a number in a region it registered (a number
    outside every region is a ``KernelBug``: ``cdev_add`` would bind fops nobody owns).
    ``EEXIST`` when the node exists.  Returns nothing; undo with :func:`cdev_device_del`.
    """
    if kernel.subsys(ChrdevState).region_of(devt) is None:
        raise KernelBug(f"cdev_device_add of {os.major(devt)}:{os.minor(devt)}: no region")
    _devtmpfs_create_node(kernel, nodename, fops, devt, mode)


def cdev_device_del(kernel: KernelContext, nodename: str) -> None:
    """``cdev_device_del``: remove the node ``/dev/<nodename>`` (and directories it
    leaves empty).  Called by a driver's ``remove``; ``ENOENT`` if there is no node."""
    path = f"/dev/{nodename}"
    if not isinstance(kernel.subsys(Vfs).peek(path), ChrDev):
        raise kerr(ENOENT)
    _devtmpfs_delete_node(kernel, path)
