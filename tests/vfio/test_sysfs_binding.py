"""Driver binding from sysfs: ``bind``, ``unbind``, ``driver_override``, ``remove``, ``rescan``.

The errnos and contents are what Linux 7.2 gave in the real-linux guest (edu at
0000:01:00.0 bound to vfio-pci, Dec 2026; docs/reliability.md, "Driver binding from
sysfs"): ``ENODEV`` to bind an unknown name, a function the driver does not match, or to
unbind one bound elsewhere; ``EBUSY`` to bind a bound one; one trailing newline accepted;
``driver_override`` reads ``(null)``, keeps up to the first newline, ``"\\n"`` clears it and
a write of nothing changes nothing; ``remove``/``rescan`` take ``kstrtoul`` (``EINVAL`` for
``x`` or `` 1``, ``0`` does nothing); a removed function's open ``remove`` file is
``ENODEV``; a rescanned function has no override.  Unbinding vfio-pci while a device fd is
open blocks until it is closed (a second ``VFIO_GROUP_GET_DEVICE_FD`` meanwhile is
``ENODEV``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import threading
from collections.abc import Callable

import pytest
from vfio_helpers import (
    TestImporter,
    call,
    export,
    open_cdev_path,
    open_group_path,
)

from mockkernel import Kernel
from mockkernel.testing.rdma import Verbs

VFIO = "/sys/bus/pci/drivers/vfio-pci"
MLX5 = "/sys/bus/pci/drivers/mlx5_core"
BDF = "0000:01:00.0"
NIC = "0000:02:00.0"
DEV = f"/sys/bus/pci/devices/{BDF}"
VFIO_DEVICE_SET_IRQS = 0x3B6E
VFIO_PCI_REQ_IRQ_INDEX = 4
TRIGGER_FD = 1 << 2 | 1 << 5  # VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER


def write(path: str, value: str | bytes) -> str | None:
    """Write ``value`` to the sysfs file ``path`` as ``echo -n`` does: the errno name or None."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode() if isinstance(value, str) else value)
    except OSError as e:
        return errno.errorcode[e.errno or 0]
    finally:
        os.close(fd)
    return None


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def bound(bdf: str) -> str | None:
    link = f"/sys/bus/pci/devices/{bdf}/driver"
    return os.path.basename(os.readlink(link)) if os.path.lexists(link) else None


def events(kernel: Kernel, fn: Callable[[], object]) -> list[dict[str, object]]:
    with kernel.tracer.capture() as ev:
        fn()
    return [e for e in ev if not str(e["event"]).startswith(("sys.", "fd.", "vfs.", "file."))]


@pytest.mark.usefixtures("mock_kernel")
def test_bind_and_unbind_errnos_as_linux() -> None:
    assert sorted(os.listdir(VFIO)) == [BDF, "bind", "uevent", "unbind"]
    assert write(f"{VFIO}/bind", "0000:09:00.0") == "ENODEV"
    assert write(f"{VFIO}/bind", "garbage") == "ENODEV"
    assert write(f"{VFIO}/bind", BDF) == "EBUSY"
    assert write(f"{VFIO}/unbind", "0000:09:00.0") == "ENODEV"
    assert write(f"{VFIO}/unbind", NIC) == "ENODEV", "bound to another driver"
    assert write(f"{VFIO}/unbind", f"{BDF}\n\n") == "ENODEV", "sysfs_streq: one newline"
    assert write(f"{VFIO}/unbind", f"{BDF}\n") is None
    assert bound(BDF) is None and not os.path.exists(f"{VFIO}/{BDF}")
    assert not os.path.exists("/dev/vfio/6") and not os.path.exists(f"{DEV}/vfio-dev")
    assert write(f"{VFIO}/unbind", BDF) == "ENODEV", "not bound any more"
    assert write(f"{VFIO}/bind", f"{BDF}\n") is None
    assert bound(BDF) == "vfio-pci" and os.path.exists("/dev/vfio/6")
    dev = open_cdev_path()  # the new binding works
    dev.close()


def test_driver_override_restricts_matching(mock_kernel: Kernel) -> None:
    ovr = f"/sys/bus/pci/devices/{NIC}/driver_override"
    assert read(ovr) == "(null)\n"
    assert write(ovr, "vfio-pci\nxyz") is None
    assert read(ovr) == "vfio-pci\n"
    assert write(ovr, "") is None and read(ovr) == "vfio-pci\n", "nothing written"
    assert write(ovr, "x" * 5000) == "EINVAL"
    assert bound(NIC) == "mlx5_core", "an override does not unbind"
    assert write(f"{MLX5}/unbind", NIC) is None
    assert write(f"{MLX5}/bind", NIC) == "ENODEV", "the override names another driver"
    ev = events(mock_kernel, lambda: write(f"{VFIO}/bind", NIC))
    assert {"event": "pci.probe", "bdf": NIC, "driver": "vfio-pci"} in [
        {k: e[k] for k in ("event", "bdf", "driver") if k in e} for e in ev
    ]
    assert bound(NIC) == "vfio-pci" and os.path.exists("/dev/vfio/7")
    dev = open_group_path(NIC, 7)
    dev.close()
    assert write(f"{VFIO}/unbind", NIC) is None
    assert write(ovr, "\n") is None and read(ovr) == "(null)\n"
    assert write(f"{MLX5}/bind", NIC) is None
    assert bound(NIC) == "mlx5_core"
    v = Verbs("mlx5_0")  # the RDMA device is back
    v.close()


def test_unbind_waits_for_the_device_fds_and_revokes(mock_kernel: Kernel) -> None:
    """vfio_unregister_group_dev: the REQ eventfd is signalled, no new device fd may be
    opened, and the unbind returns once the program closed its device fd -- closing it
    revoked the dma-bufs (the importer's mapping invalidated)."""
    dev = open_group_path()
    group = dev.others[0]
    req = os.eventfd(0, os.EFD_CLOEXEC)
    arg = struct.pack("<IIIIIi", 24, TRIGGER_FD, VFIO_PCI_REQ_IRQ_INDEX, 0, 1, req)
    fcntl.ioctl(dev.fd, VFIO_DEVICE_SET_IRQS, arg)
    buf = export(dev.fd, [(0, 0x1000)])
    imp = TestImporter(mock_kernel)
    imp.import_fd(buf)
    result: list[str | None] = []
    with mock_kernel.tracer.capture() as ev:
        t = threading.Thread(target=lambda: result.append(write(f"{VFIO}/unbind", BDF)))
        t.start()
        assert os.read(req, 8) == (1).to_bytes(8, "little"), "the driver asks for the device"
        assert t.is_alive() and not result
        name = bytearray(BDF.encode() + b"\0")
        assert call(fcntl.ioctl, group, 0x3B6A, name) == "ENODEV"  # GET_DEVICE_FD
        assert call(os.open, "/dev/vfio/devices/vfio0", os.O_RDWR) == "ENODEV"
        assert imp.invalidations == 0
        os.close(dev.fd)
        t.join()
    assert result == [None]
    assert imp.invalidations == 1 and imp.sgt is None, "the importer was told to unmap"
    names = [e["event"] for e in ev]
    for want in ("vfio_pci.request", "vfio_pci.dma_buf_revoke", "vfio_pci.unregister"):
        assert want in names
    assert names.index("vfio_pci.unregister") < names.index("pci.unbind")
    assert bound(BDF) is None and not os.path.exists("/dev/vfio/devices/vfio0")
    imp.release()
    for fd in (buf, group, dev.others[1], req):
        os.close(fd)
    assert mock_kernel.leaks() == []


def test_remove_and_rescan(mock_kernel: Kernel) -> None:
    ovr = f"{DEV}/driver_override"
    assert write(ovr, "vfio-pci") is None
    assert write(f"{DEV}/remove", "x") == "EINVAL"
    assert write(f"{DEV}/remove", " 1") == "EINVAL"
    assert write(f"{DEV}/remove", "0") is None and bound(BDF) == "vfio-pci"
    fd = os.open(f"{DEV}/remove", os.O_WRONLY)
    ev = events(mock_kernel, lambda: os.write(fd, b"1"))
    assert [e["event"] for e in ev if str(e["event"]).startswith("pci.")] == [
        "pci.unbind",
        "pci.remove_device",
    ]
    assert BDF not in os.listdir("/sys/bus/pci/devices")
    assert not os.path.exists("/dev/vfio/6")
    assert call(os.write, fd, b"1") == "ENODEV", "the removed function's file"
    os.close(fd)
    assert write("/sys/bus/pci/rescan", "x") == "EINVAL"
    assert write("/sys/bus/pci/rescan", "0") is None
    assert BDF not in os.listdir("/sys/bus/pci/devices")
    ev = events(mock_kernel, lambda: write("/sys/bus/pci/rescan", "1"))
    assert next(e for e in ev if e["event"] == "pci.rescan")["found"] == [BDF]
    assert BDF in os.listdir("/sys/bus/pci/devices")
    assert read(ovr) == "(null)\n", "a new pci_dev"
    assert bound(BDF) == "vfio-pci", "probed again (the driver's id table)"
    dev = open_cdev_path()
    dev.close()


def test_remove_with_live_rdma_files_disassociates(mock_kernel: Kernel) -> None:
    """mlx5 removed while a program holds a uverbs fd with a PD: the objects are destroyed
    (ib_uverbs_free_hw_resources), every later command is EIO, the close is clean."""
    v = Verbs("mlx5_0")
    v.alloc_pd()
    ev = events(mock_kernel, lambda: write(f"/sys/bus/pci/devices/{NIC}/remove", "1"))
    assert "rdma.ufile_disassociate" in [e["event"] for e in ev]
    assert call(v.alloc_pd) == "EIO"
    assert call(v.get_context) == "EIO"
    v.close()
    assert mock_kernel.warnings == []
    assert write("/sys/bus/pci/rescan", "1") is None
    v = Verbs("mlx5_0")
    v.alloc_pd()
    v.close()
    assert mock_kernel.leaks() == []


@pytest.mark.usefixtures("mock_kernel")
def test_proc_bus_pci_lists_the_mock_bus() -> None:
    """/proc/bus/pci is the mock's: ``devices`` in show_device's format (bus+devfn,
    vendor+device, irq, BAR starts with their flag bits and sizes, the driver), one config
    file per function; a removed function leaves both, a rescan brings them back."""
    lines = read("/proc/bus/pci/devices").splitlines()
    assert [line.split("\t")[:2] for line in lines] == [
        ["0100", "10ee903f"],
        ["0200", "15b31021"],
        ["0300", "80861593"],
    ]
    first = lines[0].split("\t")
    assert len(first) == 3 + 7 + 7 + 1 and first[-1] == "vfio-pci"
    assert all(len(f) == 16 for f in first[3:17]), "%16llx"
    assert int(first[3], 16) & 0xF == 0xC, "64-bit prefetchable BAR0"
    assert int(first[10], 16) == 0x100000 and int(first[12], 16) == 0x10000
    assert sorted(os.listdir("/proc/bus/pci")) == ["01", "02", "03", "devices"]
    with open("/sys/bus/pci/devices/0000:01:00.0/config", "rb") as f:
        config = f.read()
    with open("/proc/bus/pci/01/00.0", "rb") as f:
        assert f.read() == config
    assert write(f"{DEV}/remove", "1") is None
    assert not os.path.exists("/proc/bus/pci/01/00.0")
    assert [line[:4] for line in read("/proc/bus/pci/devices").splitlines()] == ["0200", "0300"]
    assert write("/sys/bus/pci/rescan", "1") is None
    assert read("/proc/bus/pci/devices").splitlines()[0].endswith("\tvfio-pci")
    assert os.path.exists("/proc/bus/pci/01/00.0")
