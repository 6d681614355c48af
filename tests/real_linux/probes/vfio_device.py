"""Probe: a vfio-pci device fd (edu and ivshmem-plain, found through sysfs).

VFIO_DEVICE_GET_INFO (argsz variants), VFIO_DEVICE_GET_REGION_INFO (every index,
bad indexes, argsz variants, capabilities), VFIO_DEVICE_GET_IRQ_INFO,
VFIO_DEVICE_RESET, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, pread/pwrite of the
config region (ids, PCI_COMMAND memory and master bits, BAR sizing, reads past
the end), pread/pwrite of BAR regions, mmap of BARs and of regions that cannot
be mapped, and the VFIO_DEVICE_FEATURE core checks (argsz, flag bits, PROBE of
every index 0..14).

Steps are prefixed with the device kind (edu_, ivshmem_).  Exact numbers are
printed where they define the ABI (argsz, flags, counts, region sizes and
offsets); everything else is printed as a device-neutral fact.

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  No raw fd numbers or addresses.  Standard
library only.  On real Linux the group nodes are 0600 root:root, so the golden
run is as root.
"""
import fcntl
import mmap
import os
import struct

from _probe import (
    CAP_HDR_FMT, DEVICE_INFO_FMT, IRQ_INFO_FMT, IRQ_NAMES, PAGE, PCI_COMMAND,
    PCI_COMMAND_INTX_DISABLE, PCI_COMMAND_IO, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY,
    PCI_VENDOR_ID, REGION_INFO_FMT, REGION_NAMES, SYS_PCI, VFIO_DEVICE_FEATURE,
    VFIO_DEVICE_FEATURE_BUS_MASTER, VFIO_DEVICE_FEATURE_GET, VFIO_DEVICE_FEATURE_PROBE,
    VFIO_DEVICE_FEATURE_SET, VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_IRQ_INFO, VFIO_DEVICE_RESET,
    VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS,
    VFIO_PCI_ROM_REGION_INDEX, VFIO_PCI_VGA_REGION_INDEX, call, cfg_read, cfg_write, feature,
    find_devices, ioctl_buf, read_text, region_info, region_info_raw, region_offset, run_all,
    set_memory_enable, vfio_io, with_device,
)

# --- the probe ------------------------------------------------------------------

DEVS = find_devices()
VFIO_DEVICE_GET_PCI_HOT_RESET_INFO = vfio_io(12)   # device fd; same number as IOMMU_GET_INFO
HOT_RESET_INFO_FMT = "=III"                          # {argsz, flags, count} + devices[]
HOT_RESET_DEV_FMT = "=iHBB"                          # {group_id/devid, segment, bus, devfn} 8 B
PCI_BASE_ADDRESS_0 = 0x10
PCI_ROM_ADDRESS = 0x30


def info_argsz(argsz, extra=64):
    def fn(r, dev, d):
        ret, buf = ioctl_buf(d, VFIO_DEVICE_GET_INFO,
                             struct.pack(DEVICE_INFO_FMT, argsz, 0, 0, 0, 0, 0) + bytes(extra))
        a, flags, nreg, nirq, cap, pad = struct.unpack_from(DEVICE_INFO_FMT, buf)
        return {"ret": ret, "argsz": a, "flags": flags, "num_regions": nreg, "num_irqs": nirq,
                "cap_offset": cap}
    return fn


def info_flags_in_ignored(r, dev, d):
    ret, buf = ioctl_buf(d, VFIO_DEVICE_GET_INFO,
                         struct.pack(DEVICE_INFO_FMT, 24, 0xFFFFFFFF, 99, 99, 99, 0))
    return list(struct.unpack_from(DEVICE_INFO_FMT, buf)[1:5])


def info_bad_pointer(r, dev, d):
    return fcntl.ioctl(d, VFIO_DEVICE_GET_INFO, 16)


def region(index, argsz=32, extra=0):
    def fn(r, dev, d):
        buf = region_info_raw(d, index, argsz, extra)
        a, flags, idx, cap, size, offset = struct.unpack_from(REGION_INFO_FMT, buf)
        return {"argsz": a, "flags": flags, "index": idx, "cap_offset": cap, "size": hex(size),
                "offset": hex(offset)}
    return fn


def region_caps(r, dev, d):
    """Every region with argsz 512: the capability ids of those that have caps."""
    out = {}
    for index in range(VFIO_PCI_NUM_REGIONS):
        buf = call(region_info_raw, d, index, 512, 512)
        if isinstance(buf, str):
            out[REGION_NAMES[index]] = buf
            continue
        a, flags, idx, off, size, offset = struct.unpack_from(REGION_INFO_FMT, buf)
        caps = []
        while off and len(caps) < 16:
            cid, ver, nxt = struct.unpack_from(CAP_HDR_FMT, buf, off)
            caps.append(cid)
            off = nxt
        out[REGION_NAMES[index]] = {"argsz": a, "flags": flags, "caps": caps}
    return out


def region_bar_sizes(r, dev, d):
    """Device-neutral facts about the BARs' regions."""
    out = {}
    for index in range(6):
        info = region_info(d, index)
        if info["size"]:
            out[REGION_NAMES[index]] = {
                "size_is_power_of_two": info["size"] & (info["size"] - 1) == 0,
                "offset_is_index_shl_40": info["offset"] == region_offset(index),
                "size_matches_sysfs": info["size"] == sysfs_bar_size(dev, index)}
    return out


def sysfs_bar_size(dev, index):
    lines = read_text(os.path.join(SYS_PCI, dev["bdf"], "resource")).splitlines()
    start, end, flags = (int(x, 16) for x in lines[index].split())
    return end - start + 1 if end else 0


def irq(index, argsz=16):
    def fn(r, dev, d):
        ret, buf = ioctl_buf(d, VFIO_DEVICE_GET_IRQ_INFO,
                             struct.pack(IRQ_INFO_FMT, argsz, 0, index, 0) + bytes(16))
        a, flags, idx, count = struct.unpack_from(IRQ_INFO_FMT, buf)
        return {"argsz": a, "flags": flags, "index": idx, "count": count}
    return fn


def reset(r, dev, d):
    before = cfg_read(d, PCI_COMMAND, 2)
    ret = call(fcntl.ioctl, d, VFIO_DEVICE_RESET)
    after = cfg_read(d, PCI_COMMAND, 2)
    return {"ret": ret, "command_unchanged": before == after,
            "memory_enabled_after": bool(after & PCI_COMMAND_MEMORY)}


def reset_with_memory_disabled(r, dev, d):
    set_memory_enable(d, False)
    ret = call(fcntl.ioctl, d, VFIO_DEVICE_RESET)
    out = {"ret": ret, "memory_enabled_after": bool(cfg_read(d, PCI_COMMAND, 2)
                                                      & PCI_COMMAND_MEMORY)}
    set_memory_enable(d, True)
    return out


def hot_reset_info(argsz):
    """The header is copied back even on ENOSPC (count = devices needed)."""
    def fn(r, dev, d):
        buf = bytearray(struct.pack(HOT_RESET_INFO_FMT, argsz, 0, 0) + bytes(256))
        ret = call(fcntl.ioctl, d, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, buf, True)
        a, flags, count = struct.unpack_from(HOT_RESET_INFO_FMT, buf)
        out = {"ret": ret, "argsz": a, "flags": flags, "count": count}
        if ret == 0 and count:
            devs = []
            for i in range(count):
                gid, seg, bus, devfn = struct.unpack_from(HOT_RESET_DEV_FMT, buf, 12 + 8 * i)
                bdf = "%04x:%02x:%02x.%x" % (seg, bus, devfn >> 3, devfn & 7)
                devs.append({"is_this_device": bdf == dev["bdf"],
                             "group_id_matches": "/dev/vfio/%d" % gid == dev["group"]})
            out["devices"] = devs
        return out
    return fn


# --- config space ------------------------------------------------------------------


def cfg_ids(r, dev, d):
    data = os.pread(d, 4, region_offset(VFIO_PCI_CONFIG_REGION_INDEX))
    vendor = int(read_text(os.path.join(SYS_PCI, dev["bdf"], "vendor")), 16)
    device = int(read_text(os.path.join(SYS_PCI, dev["bdf"], "device")), 16)
    return {"len": len(data), "ids_match_sysfs": data == struct.pack("=HH", vendor, device)}


def cfg_read_len(off, n):
    def fn(r, dev, d):
        return len(os.pread(d, n, region_offset(VFIO_PCI_CONFIG_REGION_INDEX) + off))
    return fn


def cfg_read_at_size(delta, n):
    """pread n bytes at (config size + delta)."""
    def fn(r, dev, d):
        size = region_info(d, VFIO_PCI_CONFIG_REGION_INDEX)["size"]
        return len(os.pread(d, n, region_offset(VFIO_PCI_CONFIG_REGION_INDEX) + size + delta))
    return fn


def cfg_whole_matches_sysfs_header(r, dev, d):
    """The first 16 bytes (ids, command/status aside, class, header type) vs sysfs config."""
    ours = os.pread(d, 64, region_offset(VFIO_PCI_CONFIG_REGION_INDEX))
    fd = os.open(os.path.join(SYS_PCI, dev["bdf"], "config"), os.O_RDONLY)
    try:
        real = os.pread(fd, 64, 0)
    finally:
        os.close(fd)
    return {"ids": ours[0:4] == real[0:4], "class_rev": ours[8:12] == real[8:12],
            "header_type": ours[14] == real[14], "subsystem_ids": ours[0x2C:0x30] == real[0x2C:0x30],
            "interrupt_pin": ours[0x3D] == real[0x3D]}


def cfg_command_initial(r, dev, d):
    cmd = cfg_read(d, PCI_COMMAND, 2)
    return {"io": bool(cmd & PCI_COMMAND_IO), "memory": bool(cmd & PCI_COMMAND_MEMORY),
            "master": bool(cmd & PCI_COMMAND_MASTER),
            "intx_disable": bool(cmd & PCI_COMMAND_INTX_DISABLE)}


def cfg_command_memory_toggle(r, dev, d):
    cleared = set_memory_enable(d, False)
    sysfs_fd = os.open(os.path.join(SYS_PCI, dev["bdf"], "config"), os.O_RDONLY)
    try:
        hw = int.from_bytes(os.pread(sysfs_fd, 2, PCI_COMMAND), "little")
        set_ = set_memory_enable(d, True)
        hw2 = int.from_bytes(os.pread(sysfs_fd, 2, PCI_COMMAND), "little")
    finally:
        os.close(sysfs_fd)
    return {"after_clear": cleared, "hw_after_clear": bool(hw & PCI_COMMAND_MEMORY),
            "after_set": set_, "hw_after_set": bool(hw2 & PCI_COMMAND_MEMORY)}


def cfg_command_write_returns(r, dev, d):
    cmd = cfg_read(d, PCI_COMMAND, 2)
    return {"pwrite_2": cfg_write(d, PCI_COMMAND, 2, cmd),
            "pwrite_4": cfg_write(d, PCI_COMMAND, 4, cfg_read(d, PCI_COMMAND, 4))}


def cfg_master_toggle(r, dev, d):
    cmd = cfg_read(d, PCI_COMMAND, 2)
    cfg_write(d, PCI_COMMAND, 2, cmd | PCI_COMMAND_MASTER)
    on = bool(cfg_read(d, PCI_COMMAND, 2) & PCI_COMMAND_MASTER)
    cfg_write(d, PCI_COMMAND, 2, cmd & ~PCI_COMMAND_MASTER)
    off = bool(cfg_read(d, PCI_COMMAND, 2) & PCI_COMMAND_MASTER)
    cfg_write(d, PCI_COMMAND, 2, cmd)
    return {"after_set": on, "after_clear": off}


def cfg_write_vendor_id(r, dev, d):
    before = cfg_read(d, PCI_VENDOR_ID, 2)
    n = call(cfg_write, d, PCI_VENDOR_ID, 2, 0xABCD)
    return {"pwrite": n, "unchanged": cfg_read(d, PCI_VENDOR_ID, 2) == before}


def cfg_bar_sizing(index):
    """Write all-ones to a BAR register, read it back (virtualized sizing), restore."""
    def fn(r, dev, d):
        off = PCI_BASE_ADDRESS_0 + 4 * index
        orig = cfg_read(d, off, 4)
        cfg_write(d, off, 4, 0xFFFFFFFF)
        sized = cfg_read(d, off, 4)
        cfg_write(d, off, 4, orig)
        return {"sized": hex(sized), "restored": cfg_read(d, off, 4) == orig}
    return fn


def cfg_bar_reads_vs_sysfs(r, dev, d):
    """Does the BAR register read through vfio equal the hardware value?"""
    ours = os.pread(d, 24, region_offset(VFIO_PCI_CONFIG_REGION_INDEX) + PCI_BASE_ADDRESS_0)
    fd = os.open(os.path.join(SYS_PCI, dev["bdf"], "config"), os.O_RDONLY)
    try:
        real = os.pread(fd, 24, PCI_BASE_ADDRESS_0)
    finally:
        os.close(fd)
    return [ours[4 * i:4 * i + 4] == real[4 * i:4 * i + 4] for i in range(6)]


def cfg_pwrite_past_end(r, dev, d):
    size = region_info(d, VFIO_PCI_CONFIG_REGION_INDEX)["size"]
    return os.pwrite(d, b"\0\0\0\0", region_offset(VFIO_PCI_CONFIG_REGION_INDEX) + size)


# --- BAR regions ------------------------------------------------------------------


def bars_present(dev, d):
    return [i for i in range(6) if region_info(d, i)["size"]]


def bar_read(index_fn, off_fn, n):
    """pread n bytes of a BAR region; index_fn(d) picks the BAR, off_fn(size) the offset."""
    def fn(r, dev, d):
        index = index_fn(dev, d)
        size = region_info(d, index)["size"]
        return len(os.pread(d, n, region_offset(index) + off_fn(size)))
    return fn


def first_bar(dev, d):
    return bars_present(dev, d)[0]


def last_bar(dev, d):
    return bars_present(dev, d)[-1]


def missing_bar(dev, d):
    return [i for i in range(6) if not region_info(d, i)["size"]][0]


def bar_read_memory_disabled(r, dev, d):
    index = first_bar(dev, d)
    set_memory_enable(d, False)
    try:
        return call(lambda: len(os.pread(d, 4, region_offset(index))))
    finally:
        set_memory_enable(d, True)


def ram_bar(dev):
    """The first prefetchable memory BAR (sysfs resource flag IORESOURCE_PREFETCH), if any.

    Only such a BAR (ivshmem BAR2: shared RAM) has memory semantics; a register BAR
    (edu BAR0) does not read back what was written, so RAM steps skip it."""
    lines = read_text(os.path.join(SYS_PCI, dev["bdf"], "resource")).splitlines()
    for index in range(6):
        start, end, flags = (int(x, 16) for x in lines[index].split())
        if end and flags & 0x200 and flags & 0x2000:
            return index
    return None


def bar_write_read_back(r, dev, d):
    """pwrite + pread on the RAM BAR at offset 0x100."""
    index = ram_bar(dev)
    if index is None:
        return "no_ram_bar"
    base = region_offset(index) + 0x100
    n = os.pwrite(d, b"PROBE-12", base)
    return {"pwrite": n, "read_back_equal": os.pread(d, 8, base) == b"PROBE-12"}


def region_read(index, n=4):
    def fn(r, dev, d):
        return len(os.pread(d, n, region_offset(index)))
    return fn


def region_write(index, n=4):
    def fn(r, dev, d):
        return os.pwrite(d, bytes(n), region_offset(index))
    return fn


# --- mmap ------------------------------------------------------------------------


def mmap_region(index_fn, length_fn, off=0, flags=mmap.MAP_SHARED,
                prot=mmap.PROT_READ | mmap.PROT_WRITE):
    def fn(r, dev, d):
        index = index_fn(dev, d) if callable(index_fn) else index_fn
        size = region_info(d, index)["size"]
        m = r.map(mmap.mmap(d, length_fn(size), flags, prot, offset=region_offset(index) + off))
        return {"len": len(m)}
    return fn


def mmap_reads_like_pread(r, dev, d):
    index = first_bar(dev, d)
    size = region_info(d, index)["size"]
    m = r.map(mmap.mmap(d, max(size, PAGE), offset=region_offset(index)))
    return m[0:4] == os.pread(d, 4, region_offset(index))


def mmap_write_then_pread(r, dev, d):
    index = ram_bar(dev)
    if index is None:
        return "no_ram_bar"
    size = region_info(d, index)["size"]
    m = r.map(mmap.mmap(d, size, offset=region_offset(index)))
    m[PAGE:PAGE + 8] = b"MMAPWRIT"
    seen = os.pread(d, 8, region_offset(index) + PAGE) == b"MMAPWRIT"
    os.pwrite(d, b"PWRITE!!", region_offset(index) + PAGE + 16)
    return {"pread_sees_mmap_write": seen,
            "mmap_sees_pwrite": m[PAGE + 16:PAGE + 24] == b"PWRITE!!"}


def mmap_two_maps_coherent(r, dev, d):
    index = ram_bar(dev)
    if index is None:
        return "no_ram_bar"
    size = region_info(d, index)["size"]
    a = r.map(mmap.mmap(d, size, offset=region_offset(index)))
    b = r.map(mmap.mmap(d, PAGE, offset=region_offset(index) + PAGE))
    a[PAGE + 32:PAGE + 36] = b"SAME"
    return b[32:36] == b"SAME"


def mmap_touch_memory_disabled(r, dev, d):
    """A child touches the BAR mapping while PCI_COMMAND.MEMORY is clear: its fate."""
    index = first_bar(dev, d)
    size = region_info(d, index)["size"]
    m = r.map(mmap.mmap(d, max(size, PAGE), offset=region_offset(index)))
    set_memory_enable(d, False)
    try:
        pid = os.fork()
        if pid == 0:
            try:
                m[0:4]
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
    finally:
        set_memory_enable(d, True)
    after = m[0:4] == os.pread(d, 4, region_offset(index))
    if os.WIFSIGNALED(status):
        import signal
        return {"child": signal.Signals(os.WTERMSIG(status)).name, "works_after_reenable": after}
    return {"child": "exit %d" % os.WEXITSTATUS(status), "works_after_reenable": after}


# --- VFIO_DEVICE_FEATURE ----------------------------------------------------------


def feat(flags, data=b"", argsz=None):
    def fn(r, dev, d):
        return feature(d, flags, data, argsz)[0]
    return fn


def feat_bad_pointer(r, dev, d):
    return fcntl.ioctl(d, VFIO_DEVICE_FEATURE, 16)


def feat_probe_index(index):
    def fn(r, dev, d):
        G, S, P = VFIO_DEVICE_FEATURE_GET, VFIO_DEVICE_FEATURE_SET, VFIO_DEVICE_FEATURE_PROBE
        out = {}
        for name, fl in (("probe", P), ("probe_get", P | G), ("probe_set", P | S),
                         ("probe_get_set", P | G | S)):
            out[name] = call(lambda: feature(d, fl | index, pad=64)[0])
        return out
    return fn


def bus_master(op, argsz=9):
    def fn(r, dev, d):
        ret = feature(d, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_BUS_MASTER,
                      struct.pack("=B", op) + bytes(7), argsz=argsz)[0]
        return {"ret": ret, "master": bool(cfg_read(d, PCI_COMMAND, 2) & PCI_COMMAND_MASTER)}
    return fn


def main():
    G, S, P = VFIO_DEVICE_FEATURE_GET, VFIO_DEVICE_FEATURE_SET, VFIO_DEVICE_FEATURE_PROBE
    steps = [("devices_found", lambda: sorted(DEVS))]
    for kind in sorted(DEVS):
        dev = DEVS[kind]
        k = kind + "_"
        s = [
            ("device_info_argsz_0", info_argsz(0)),
            ("device_info_argsz_8", info_argsz(8)),
            ("device_info_argsz_15", info_argsz(15)),
            ("device_info_argsz_16", info_argsz(16)),
            ("device_info_argsz_24", info_argsz(24)),
            ("device_info_argsz_256", info_argsz(256, extra=256)),
            ("device_info_flags_in_ignored", info_flags_in_ignored),
            ("device_info_bad_pointer", info_bad_pointer),
        ]
        for index in range(VFIO_PCI_NUM_REGIONS):
            s.append(("region_info_%d_%s" % (index, REGION_NAMES[index]), region(index)))
        s += [
            ("region_info_9", region(9)),
            ("region_info_10", region(10)),
            ("region_info_0xffffffff", region(0xFFFFFFFF)),
            ("region_info_argsz_0", region(0, argsz=0)),
            ("region_info_argsz_16", region(0, argsz=16)),
            ("region_info_argsz_31", region(0, argsz=31)),
            ("region_info_argsz_512", region(0, argsz=512, extra=512)),
            ("region_caps", region_caps),
            ("region_bar_facts", region_bar_sizes),
        ]
        for index in range(VFIO_PCI_NUM_IRQS):
            s.append(("irq_info_%d_%s" % (index, IRQ_NAMES[index]), irq(index)))
        s += [
            ("irq_info_5", irq(5)),
            ("irq_info_0xffffffff", irq(0xFFFFFFFF)),
            ("irq_info_argsz_0", irq(0, argsz=0)),
            ("irq_info_argsz_15", irq(0, argsz=15)),
            ("irq_info_argsz_64", irq(0, argsz=64)),
            ("reset", reset),
            ("reset_with_memory_disabled", reset_with_memory_disabled),
            ("hot_reset_info_argsz_0", hot_reset_info(0)),
            ("hot_reset_info_argsz_12", hot_reset_info(12)),
            ("hot_reset_info_argsz_256", hot_reset_info(256)),
            ("cfg_ids", cfg_ids),
            ("cfg_header_matches_sysfs", cfg_whole_matches_sysfs_header),
            ("cfg_read_1", cfg_read_len(0, 1)),
            ("cfg_read_2", cfg_read_len(0, 2)),
            ("cfg_read_3", cfg_read_len(0, 3)),
            ("cfg_read_8", cfg_read_len(0, 8)),
            ("cfg_read_64", cfg_read_len(0, 64)),
            ("cfg_read_256", cfg_read_len(0, 256)),
            ("cfg_read_4096", cfg_read_len(0, 4096)),
            ("cfg_read_2_at_1", cfg_read_len(1, 2)),
            ("cfg_read_4_at_2", cfg_read_len(2, 4)),
            ("cfg_read_at_end", cfg_read_at_size(0, 4)),
            ("cfg_read_crossing_end", cfg_read_at_size(-2, 4)),
            ("cfg_read_last_4", cfg_read_at_size(-4, 4)),
            ("cfg_read_past_4096", cfg_read_len(4096, 4)),
            ("cfg_write_past_end", cfg_pwrite_past_end),
            ("cfg_command_initial", cfg_command_initial),
            ("cfg_command_write_returns", cfg_command_write_returns),
            ("cfg_command_memory_toggle", cfg_command_memory_toggle),
            ("cfg_command_master_toggle", cfg_master_toggle),
            ("cfg_write_vendor_id", cfg_write_vendor_id),
            ("cfg_bar_registers_equal_hw", cfg_bar_reads_vs_sysfs),
        ]
        for index in range(6):
            s.append(("cfg_bar%d_sizing" % index, cfg_bar_sizing(index)))
        s += [
            ("bar_read_4", bar_read(first_bar, lambda size: 0, 4)),
            ("bar_read_8", bar_read(first_bar, lambda size: 0, 8)),
            ("bar_read_3", bar_read(first_bar, lambda size: 0, 3)),
            ("bar_read_4_at_1", bar_read(first_bar, lambda size: 1, 4)),
            ("bar_read_256", bar_read(first_bar, lambda size: 0, 256)),
            ("bar_read_at_end", bar_read(first_bar, lambda size: size, 4)),
            ("bar_read_crossing_end", bar_read(first_bar, lambda size: size - 2, 4)),
            ("bar_read_last_4", bar_read(first_bar, lambda size: size - 4, 4)),
            ("bar_read_last_bar_64k", bar_read(last_bar, lambda size: 0, 65536)),
            ("bar_read_missing_bar", bar_read(missing_bar, lambda size: 0, 4)),
            ("bar_read_memory_disabled", bar_read_memory_disabled),
            ("ram_bar", lambda r, dev, d: ram_bar(dev)),
            ("bar_write_read_back", bar_write_read_back),
            ("rom_read", region_read(VFIO_PCI_ROM_REGION_INDEX)),
            ("vga_read", region_read(VFIO_PCI_VGA_REGION_INDEX)),
            ("region_9_read", region_read(9)),
            ("rom_write", region_write(VFIO_PCI_ROM_REGION_INDEX)),
            ("mmap_first_bar_full", mmap_region(first_bar, lambda size: max(size, PAGE))),
            ("mmap_first_bar_one_page", mmap_region(first_bar, lambda size: PAGE)),
            ("mmap_first_bar_beyond_size", mmap_region(first_bar,
                                                       lambda size: max(size, PAGE) + PAGE)),
            ("mmap_first_bar_offset_page_1", mmap_region(first_bar, lambda size: PAGE, off=PAGE)),
            ("mmap_first_bar_private", mmap_region(first_bar, lambda size: PAGE,
                                                   flags=mmap.MAP_PRIVATE)),
            ("mmap_first_bar_read_only", mmap_region(first_bar, lambda size: PAGE,
                                                     prot=mmap.PROT_READ)),
            ("mmap_last_bar_full", mmap_region(last_bar, lambda size: max(size, PAGE))),
            ("mmap_missing_bar", mmap_region(missing_bar, lambda size: PAGE)),
            ("mmap_config", mmap_region(VFIO_PCI_CONFIG_REGION_INDEX, lambda size: PAGE)),
            ("mmap_rom", mmap_region(VFIO_PCI_ROM_REGION_INDEX, lambda size: PAGE)),
            ("mmap_region_9", mmap_region(9, lambda size: PAGE)),
            ("mmap_reads_like_pread", mmap_reads_like_pread),
            ("mmap_write_then_pread", mmap_write_then_pread),
            ("mmap_two_maps_coherent", mmap_two_maps_coherent),
            ("mmap_touch_memory_disabled", mmap_touch_memory_disabled),
            ("feature_argsz_0", feat(P | G | VFIO_DEVICE_FEATURE_BUS_MASTER, argsz=0)),
            ("feature_argsz_7", feat(P | G | VFIO_DEVICE_FEATURE_BUS_MASTER, argsz=7)),
            ("feature_argsz_8_probe_set_bus_master", feat(P | S | VFIO_DEVICE_FEATURE_BUS_MASTER)),
            ("feature_unknown_flag_bit19", feat(P | S | (1 << 19) | VFIO_DEVICE_FEATURE_BUS_MASTER)),
            ("feature_unknown_flag_bit31", feat(P | S | (1 << 31) | VFIO_DEVICE_FEATURE_BUS_MASTER)),
            ("feature_get_and_set", feat(G | S | VFIO_DEVICE_FEATURE_BUS_MASTER, bytes(8))),
            ("feature_no_get_set_probe", feat(VFIO_DEVICE_FEATURE_BUS_MASTER, bytes(8))),
            ("feature_bad_pointer", feat_bad_pointer),
        ]
        for index in range(15):
            s.append(("feature_probe_%d" % index, feat_probe_index(index)))
        s += [
            ("feature_probe_0xffff", feat_probe_index(0xFFFF)),
            ("feature_get_unsupported_14", feat(G | 14, bytes(64))),
            ("feature_set_unsupported_14", feat(S | 14, bytes(64))),
            ("feature_get_unsupported_0xffff", feat(G | 0xFFFF, bytes(64))),
            ("feature_get_migration", feat(G | 1, bytes(64))),
            ("feature_get_dma_logging_report", feat(G | 8, bytes(64))),
            ("feature_get_bus_master", feat(G | VFIO_DEVICE_FEATURE_BUS_MASTER, bytes(8))),
            ("feature_set_bus_master_set", bus_master(1)),
            ("feature_set_bus_master_clear", bus_master(0)),
            ("feature_set_bus_master_op_2", bus_master(2)),
            ("feature_set_bus_master_argsz_8", bus_master(1, argsz=8)),
            ("feature_set_vf_token", feat(S | 0, bytes(16))),
        ]
        for name, fn in s:
            steps.append((k + name, with_device(dev, fn)))
    run_all(steps)


if __name__ == "__main__":
    main()
