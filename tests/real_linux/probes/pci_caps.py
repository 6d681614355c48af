"""Probe: the capability lists of the vfio-pci devices (edu, ivshmem-plain).

What sysfs ``config`` and the VFIO config region show: the status register's
capability bit, the capability pointer, each capability's id and offset, and the
first dword of each capability as VFIO presents it.

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or {"step": NAME,
"errno": "ENAME"}.  Standard library only; on real Linux the group nodes need root.
"""
import os

from _probe import SYS_PCI, cfg_read, find_devices, run_all, with_device

PCI_STATUS = 0x06
PCI_STATUS_CAP_LIST = 0x10
PCI_CAPABILITY_LIST = 0x34


def walk(read):
    """[(offset, id, first dword)] of the standard capability list, via read(off, n)."""
    if not read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST:
        return {"cap_list": False, "caps": []}
    caps = []
    pos = read(PCI_CAPABILITY_LIST, 1) & ~3
    while pos >= 0x40 and len(caps) < 48:
        caps.append([hex(pos), hex(read(pos, 1)), hex(read(pos, 4))])
        pos = read(pos + 1, 1) & ~3
    return {"cap_list": True, "caps": caps}


def sysfs_caps(dev):
    def step():
        with open(os.path.join(SYS_PCI, dev["bdf"], "config"), "rb") as f:
            cfg = f.read()

        def read(off, n):
            return int.from_bytes(cfg[off:off + n], "little")
        return {"size": len(cfg), **walk(read)}
    return step


def vfio_caps(r, dev, device):
    return walk(lambda off, n: cfg_read(device, off, n))


steps = []
for kind, dev in sorted(find_devices().items()):
    steps += [
        (kind + "_sysfs_caps", sysfs_caps(dev)),
        (kind + "_vfio_caps", with_device(dev, vfio_caps)),
    ]
run_all(steps)
