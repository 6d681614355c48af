"""Probe: the VFIO config region beyond the standard header, as vfio-pci virtualises it.

For each vfio-pci device (edu, ivshmem-plain): header bytes and capability bytes as
the config region shows them; writes and read-backs (through the region and, for the
device's own register, through sysfs ``config``) at the MSI capability (flags,
address, upper address, data, every byte 0x40..0x4f, a dword at the capability
start), at bytes no capability covers (0x50, 0xfc), at INTERRUPT_LINE (virtualised),
the cache line size, the latency timer, the status register, the class code and
the capability pointer; and what survives a VFIO_DEVICE_RESET and a reopen.

Every step that writes a byte the device keeps (raw, unvirtualised bytes) writes the
old value back before it ends, so the steps do not depend on each other.

Steps are prefixed with the device kind (edu_, ivshmem_).  Prints one JSON object per
line: {"step": NAME, "ok": RESULT} or {"step": NAME, "errno": "ENAME"}.  Standard
library only.  On real Linux the group nodes are 0600 root:root, so the golden run is
as root.
"""
import fcntl
import os

from _probe import (
    SYS_PCI, VFIO_DEVICE_RESET, Res, call, cfg_read, cfg_write, find_devices, open_device,
    run_all, with_device,
)

PCI_STATUS = 0x06
PCI_CLASS_PROG = 0x09
PCI_CACHE_LINE_SIZE = 0x0C
PCI_LATENCY_TIMER = 0x0D
PCI_CAPABILITY_LIST = 0x34
PCI_INTERRUPT_LINE = 0x3C
PCI_INTERRUPT_PIN = 0x3D
CAP = 0x40  # edu: MSI (64-bit, 1 vector); ivshmem: no capability, unassigned space


def h(v):
    return hex(v)


def sysfs_read(dev, off, n):
    fd = os.open(os.path.join(SYS_PCI, dev["bdf"], "config"), os.O_RDONLY)
    try:
        return int.from_bytes(os.pread(fd, n, off), "little")
    finally:
        os.close(fd)


def write_read(d, dev, off, n, value):
    """Write value, read it back through VFIO and sysfs; then write the old value back."""
    old = cfg_read(d, off, n)
    ret = call(cfg_write, d, off, n, value)
    out = {"before": h(old), "ret": ret, "vfio": h(cfg_read(d, off, n)),
           "sysfs": h(sysfs_read(dev, off, n))}
    cfg_write(d, off, n, old)
    out["restored"] = h(cfg_read(d, off, n))
    return out


def wr(off, n, value):
    def fn(r, dev, d):
        return write_read(d, dev, off, n, value)
    return fn


def header_bytes(r, dev, d):
    """Every header byte outside the BARs and the ROM BAR (which hold addresses)."""
    offs = list(range(0x00, 0x10)) + list(range(0x28, 0x30)) + list(range(0x34, 0x40))
    return {h(o): h(cfg_read(d, o, 1)) for o in offs}


def header_vs_sysfs(r, dev, d):
    """Offsets (outside the BARs) where the VFIO view differs from the device's register."""
    offs = list(range(0x00, 0x10)) + list(range(0x28, 0x30)) + list(range(0x34, 0x40))
    return [h(o) for o in offs if cfg_read(d, o, 1) != sysfs_read(dev, o, 1)]


def cap_bytes(r, dev, d):
    return [h(cfg_read(d, o, 1)) for o in range(CAP, CAP + 0x14)]


def cap_words(r, dev, d):
    return [h(cfg_read(d, o, 2)) for o in range(CAP, CAP + 0x14, 2)]


def cap_dwords(r, dev, d):
    return [h(cfg_read(d, o, 4)) for o in range(CAP, CAP + 0x14, 4)]


def cap_block_read(r, dev, d):
    """One 16-byte pread across the capability and the byte after it."""
    data = os.pread(d, 20, (7 << 40) + CAP)
    return data.hex()


def cap_vs_sysfs(r, dev, d):
    return [h(o) for o in range(CAP, 0x100) if cfg_read(d, o, 1) != sysfs_read(dev, o, 1)]


def each_cap_byte(r, dev, d):
    """Write 0xff to each byte 0x40..0x4f alone, read it back (VFIO, sysfs), restore."""
    out = []
    for o in range(CAP, CAP + 0x10):
        res = write_read(d, dev, o, 1, 0xFF)
        out.append([h(o), res["before"], res["vfio"], res["sysfs"], res["restored"]])
    return out


def msi_dword_at_cap(r, dev, d):
    return write_read(d, dev, CAP, 4, 0xFFFFFFFF)


def msi_enable_write(r, dev, d):
    return write_read(d, dev, CAP + 2, 2, 0x0001)


def msi_qsize_write(r, dev, d):
    return write_read(d, dev, CAP + 2, 2, 0x0070)


def interrupt_line_initial(r, dev, d):
    return {"vfio": h(cfg_read(d, PCI_INTERRUPT_LINE, 1)),
            "sysfs": h(sysfs_read(dev, PCI_INTERRUPT_LINE, 1)),
            "pin": h(cfg_read(d, PCI_INTERRUPT_PIN, 1))}


def interrupt_line_reopen(dev):
    """The written INTERRUPT_LINE lives in the open device's vconfig only."""
    def step():
        with Res() as r:
            c, g, d = open_device(r, dev)
            cfg_write(d, PCI_INTERRUPT_LINE, 1, 0x55)
            first = cfg_read(d, PCI_INTERRUPT_LINE, 1)
        with Res() as r:
            c, g, d = open_device(r, dev)
            return {"written": h(first), "after_reopen": h(cfg_read(d, PCI_INTERRUPT_LINE, 1)),
                    "sysfs": h(sysfs_read(dev, PCI_INTERRUPT_LINE, 1))}
    return step


def raw_reopen(dev):
    """A raw byte the device keeps survives closing and reopening the device."""
    def step():
        with Res() as r:
            c, g, d = open_device(r, dev)
            old = cfg_read(d, 0x50, 4)
            cfg_write(d, 0x50, 4, 0x12345678)
        with Res() as r:
            c, g, d = open_device(r, dev)
            out = {"after_reopen": h(cfg_read(d, 0x50, 4))}
            cfg_write(d, 0x50, 4, old)
            out["restored"] = h(cfg_read(d, 0x50, 4))
            return out
    return step


def after_reset(r, dev, d):
    """Write virtual and raw bytes, VFIO_DEVICE_RESET, read them back; restore raw ones."""
    regs = [(CAP + 2, 2, 0xFFFF), (CAP + 4, 4, 0xFFFFFFFF), (CAP + 0xC, 2, 0xFFFF),
            (0x50, 4, 0x12345678), (PCI_INTERRUPT_LINE, 1, 0x55),
            (PCI_CACHE_LINE_SIZE, 1, 0x10)]
    old = {off: cfg_read(d, off, n) for off, n, _ in regs}
    for off, n, v in regs:
        cfg_write(d, off, n, v)
    written = {h(off): h(cfg_read(d, off, n)) for off, n, _ in regs}
    ret = call(fcntl.ioctl, d, VFIO_DEVICE_RESET)
    out = {"ret": ret, "written": written,
           "vfio": {h(off): h(cfg_read(d, off, n)) for off, n, _ in regs},
           "sysfs": {h(off): h(sysfs_read(dev, off, n)) for off, n, _ in regs}}
    for off, n, _ in regs:
        cfg_write(d, off, n, old[off])
    out["restored"] = {h(off): h(cfg_read(d, off, n)) for off, n, _ in regs}
    return out


steps = []
for kind, dev in sorted(find_devices().items()):
    def add(name, fn):
        steps.append((kind + "_" + name, with_device(dev, fn)))

    add("header_bytes", header_bytes)
    add("header_vs_sysfs", header_vs_sysfs)
    add("cap_bytes", cap_bytes)
    add("cap_words", cap_words)
    add("cap_dwords", cap_dwords)
    add("cap_block_read", cap_block_read)
    add("cap_vs_sysfs", cap_vs_sysfs)
    add("msi_flags_write", wr(CAP + 2, 2, 0xFFFF))
    add("msi_flags_byte_write", wr(CAP + 2, 1, 0xFF))
    add("msi_enable_write", msi_enable_write)
    add("msi_qsize_write", msi_qsize_write)
    add("msi_addr_write", wr(CAP + 4, 4, 0xFFFFFFFF))
    add("msi_addr_hi_write", wr(CAP + 8, 4, 0xFFFFFFFF))
    add("msi_data_write", wr(CAP + 0xC, 2, 0xFFFF))
    add("msi_dword_at_cap", msi_dword_at_cap)
    add("msi_tail_write", wr(CAP + 0xC, 4, 0xFFFFFFFF))
    add("each_cap_byte", each_cap_byte)
    add("unassigned_50", wr(0x50, 4, 0x12345678))
    add("unassigned_fc", wr(0xFC, 4, 0x12345678))
    add("unassigned_byte_a1", wr(0xA1, 1, 0x5A))
    add("interrupt_line_initial", interrupt_line_initial)
    add("interrupt_line_write", wr(PCI_INTERRUPT_LINE, 1, 0x55))
    add("interrupt_pin_write", wr(PCI_INTERRUPT_PIN, 1, 0x02))
    add("cache_line_write", wr(PCI_CACHE_LINE_SIZE, 1, 0x10))
    add("latency_timer_write", wr(PCI_LATENCY_TIMER, 1, 0x40))
    add("status_write", wr(PCI_STATUS, 2, 0xFFFF))
    add("class_prog_write", wr(PCI_CLASS_PROG, 1, 0xFF))
    add("cap_pointer_write", wr(PCI_CAPABILITY_LIST, 1, 0x80))
    add("after_reset", after_reset)
    steps.append((kind + "_interrupt_line_reopen", interrupt_line_reopen(dev)))
    steps.append((kind + "_raw_reopen", raw_reopen(dev)))
run_all(steps)
