"""A vfio-pci BAR mapped by a traced child: revoked (``SIGBUS``) while the device does
not decode memory, given back when it does again -- driven by the driver itself
(``sync_bar_mmaps`` zaps every mapping ``file_mappings`` finds, the child's included).
"""

from __future__ import annotations

import fcntl
import os
import signal
import struct

from inject_harness import Tracee

from mockkernel import Kernel
from mockkernel.supervisor import ptrace as pt
from mockkernel.supervisor.mmap import TraceeMapping
from mockkernel.uapi.linux.vfio import (
    VFIO_GROUP_GET_DEVICE_FD,
    VFIO_GROUP_SET_CONTAINER,
    VFIO_SET_IOMMU,
    VFIO_TYPE1v2_IOMMU,
)

BDF = "0000:01:00.0"  # the default topology's vfio-pci device: group 6, BAR0 1 MiB
PAGE = 4096
CONFIG = 7 << 40  # VFIO_PCI_CONFIG_REGION_INDEX << 40


def memory(fd: int, on: bool) -> None:
    cmd = struct.unpack("<H", os.pread(fd, 2, CONFIG + 4))[0]
    os.pwrite(fd, struct.pack("<H", cmd | 2 if on else cmd & ~2), CONFIG + 4)


def test_bar_mapping_in_a_traced_child_is_zapped_and_restored(mock_kernel: Kernel) -> None:
    container = os.open("/dev/vfio/vfio", os.O_RDWR)
    group = os.open("/dev/vfio/6", os.O_RDWR)
    fcntl.ioctl(group, VFIO_GROUP_SET_CONTAINER, struct.pack("<i", container))
    fcntl.ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)
    dev = fcntl.ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bytearray(BDF.encode() + b"\0"), True)
    t = Tracee(mock_kernel)
    try:
        memory(dev, True)
        fd = t.install(mock_kernel.current.files[dev])
        addr = int(t.send(f"mmap {2 * PAGE} 3 1 {fd} {PAGE}").split()[1])
        t.send(f"write {addr + 8} {b'from-kid'.hex()}")
        assert os.pread(dev, 8, PAGE + 8) == b"from-kid"  # BAR0 through the region
        mp = t.proc.mappings[addr]
        assert isinstance(mp, TraceeMapping) and not mp.zapped

        memory(dev, False)  # the driver zaps the child's mapping (the child is interrupted)
        assert mp.zapped
        faults: list[int] = []

        def on_signal(ev: pt.Event) -> int:
            if ev.sig != signal.SIGBUS:
                return ev.sig
            faults.append(ev.sig)
            memory(dev, True)  # the driver restores; the access is retried and succeeds
            return 0

        t.on_signal = on_signal
        assert bytes.fromhex(t.send(f"read {addr + 8} 8")[3:]) == b"from-kid"
        assert faults == [signal.SIGBUS] and not mp.zapped
        assert t.send(f"munmap {addr} {2 * PAGE}") == "ok"

        memory(dev, False)  # a mapping made while memory is off starts zapped
        addr = int(t.send(f"mmap {PAGE} 3 1 {fd} 0").split()[1])
        assert t.proc.mappings[addr].zapped
        faults.clear()
        assert bytes.fromhex(t.send(f"read {addr + PAGE - 4} 4")[3:]) == bytes(4)
        assert faults == [signal.SIGBUS]
        assert t.send(f"munmap {addr} {PAGE}") == "ok"
    finally:
        t.close()
        for n in (dev, group, container):
            os.close(n)
