"""Probe: VFIO_DEVICE_FEATURE_DMA_BUF (index 11) on vfio-pci devices (edu, ivshmem).

PROBE/GET/SET framing, argsz (including argsz shorter than nr_ranges implies),
nr_ranges, flags, region_index (ROM, config, VGA, out of range, a missing BAR),
range checks (alignment, length 0, beyond the BAR, offset and total overflow,
overlapping and unordered ranges), open_flags, which BARs are p2p-capable, the
exported dma-buf (fstat, fdinfo, read/write/lseek/mmap, DMA_BUF_IOCTL_SYNC,
SET_NAME), a buffer exported while PCI_COMMAND.MEMORY is clear ("born
revoked"), revocation by the memory bit and by reset, the buffer after the
device fd is closed, and feature 13 (DMA_BUF_TPH, unassigned in 7.2).

Steps are prefixed with the device kind (edu_, ivshmem_).  The range checks use
the device's largest BAR (edu BAR0, ivshmem BAR2).

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  No raw fd numbers, addresses or inode
numbers (fdinfo mnt_id/ino are normalized).  Standard library only.  On real
Linux the group nodes are 0600 root:root, so the golden run is as root.
"""
import fcntl
import mmap
import os
import stat
import struct

from _probe import (
    DEVICE_INFO_FMT, DMA_BUF_FMT, DMA_BUF_IOCTL_SYNC, DMA_BUF_SET_NAME_B, DMA_BUF_SYNC_END,
    DMA_BUF_SYNC_RW, DMA_RANGE_FMT, FEATURE_HDR_FMT, PAGE, REGION_NAMES, VFIO_DEVICE_FEATURE,
    VFIO_DEVICE_FEATURE_DMA_BUF, VFIO_DEVICE_FEATURE_DMA_BUF_TPH, VFIO_DEVICE_FEATURE_GET,
    VFIO_DEVICE_FEATURE_PROBE, VFIO_DEVICE_FEATURE_SET, VFIO_DEVICE_GET_INFO, VFIO_DEVICE_RESET,
    call, cloexec, device_info, fdinfo, fdinfo_field, feature, find_devices, group_status, ioc,
    is_open, lowest_free, open_device, open_group, region_info, run_all, set_container,
    set_memory_enable, udmabuf_create, with_device,
)

# --- the probe ------------------------------------------------------------------

DEVS = find_devices()
G, S, P = VFIO_DEVICE_FEATURE_GET, VFIO_DEVICE_FEATURE_SET, VFIO_DEVICE_FEATURE_PROBE
ACCMODES = {os.O_RDONLY: "O_RDONLY", os.O_WRONLY: "O_WRONLY", os.O_RDWR: "O_RDWR", 3: "3"}


def dma_buf_arg(region_index, ranges, open_flags=0, flags=0, nr=None, argsz=None,
                feature_flags=G | VFIO_DEVICE_FEATURE_DMA_BUF, pad=0):
    """The VFIO_DEVICE_FEATURE buffer for FEATURE_DMA_BUF (header + dma_buf + ranges)."""
    body = struct.pack(DMA_BUF_FMT, region_index, open_flags, flags,
                       len(ranges) if nr is None else nr)
    for off, length in ranges:
        body += struct.pack(DMA_RANGE_FMT, off & (2 ** 64 - 1), length & (2 ** 64 - 1))
    if argsz is None:
        argsz = 8 + len(body)
    return bytearray(struct.pack(FEATURE_HDR_FMT, argsz, feature_flags) + body + bytes(pad))


def export(r, d, region_index, ranges, **kw):
    """Returns the new dma-buf fd (tracked in r)."""
    ret = fcntl.ioctl(d, VFIO_DEVICE_FEATURE, dma_buf_arg(region_index, ranges, **kw), True)
    return r.fd(ret)


def bars_present(d):
    return [i for i in range(6) if region_info(d, i)["size"]]


def big_bar(d):
    """The largest BAR (edu BAR0, ivshmem BAR2): the one the range checks use."""
    sizes = {i: region_info(d, i)["size"] for i in range(6)}
    return max(sizes, key=lambda i: (sizes[i], -i))


def missing_bar(d):
    return [i for i in range(6) if not region_info(d, i)["size"]][0]


def describe(fd, low=None):
    st = os.fstat(fd)
    out = {"size": st.st_size, "cloexec": cloexec(fd)}
    if low is not None:
        out["fd_is_lowest_free"] = fd == low
    return out


# --- feature framing ------------------------------------------------------------------


def feat_flags(flags, ranges=((0, PAGE),), **kw):
    def fn(r, dev, d):
        ret = fcntl.ioctl(d, VFIO_DEVICE_FEATURE,
                          dma_buf_arg(big_bar(d), list(ranges), feature_flags=flags, **kw), True)
        if flags & G and not flags & P and ret > 0:
            r.fd(ret)
            return "fd"
        return ret
    return fn


def case(ranges_fn, region_fn=big_bar, **kw):
    """GET with ranges_fn(size) on region region_fn(d): "fd" + size, or the errno."""
    def fn(r, dev, d):
        index = region_fn(d)
        size = region_info(d, index)["size"] if index < 6 else 0
        buf = export(r, d, index, ranges_fn(size), **kw)
        return {"fd": True, "size": os.fstat(buf).st_size}
    return fn


def one_page(size):
    return [(0, PAGE)]


def fixed(index):
    return lambda d: index


def p2p_capability(r, dev, d):
    """Export one page of every present BAR: fd (p2p provider exists) or the errno."""
    out = {}
    for index in bars_present(d):
        size = region_info(d, index)["size"]
        res = call(export, r, d, index, [(0, min(PAGE, size) if size >= PAGE else PAGE)])
        out[REGION_NAMES[index]] = "fd" if isinstance(res, int) else res
    return out


def argsz_short_of_ranges(valid_range):
    """argsz covers the dma_buf header only, nr_ranges=1, the range sits past argsz."""
    def fn(r, dev, d):
        rng = (0, PAGE) if valid_range else (0, 0)
        buf = export(r, d, big_bar(d), [rng], argsz=8 + 16)
        return {"fd": True, "size": os.fstat(buf).st_size}
    return fn


def nr_ranges_exceeds_buffer(r, dev, d):
    """nr_ranges=2 but only one range given; the second reads the zeroed padding (len 0)."""
    buf = export(r, d, big_bar(d), [(0, PAGE)], nr=2, pad=16)
    return {"fd": True, "size": os.fstat(buf).st_size}


def nr_ranges_huge(nr):
    def fn(r, dev, d):
        buf = export(r, d, big_bar(d), [(0, PAGE)], nr=nr, pad=64)
        return {"fd": True, "size": os.fstat(buf).st_size}
    return fn


def bad_pointer(r, dev, d):
    return fcntl.ioctl(d, VFIO_DEVICE_FEATURE, 16)


def open_flags_case(open_flags):
    def fn(r, dev, d):
        buf = export(r, d, big_bar(d), [(0, PAGE)], open_flags=open_flags)
        fl = fcntl.fcntl(buf, fcntl.F_GETFL)
        return {"cloexec": cloexec(buf), "accmode": ACCMODES[fl & os.O_ACCMODE],
                "nonblock": bool(fl & os.O_NONBLOCK), "fdinfo_flags": fdinfo_field(buf, "flags")}
    return fn


# --- a successful export ---------------------------------------------------------------


def with_buf(fn, pages=2, open_flags=0):
    def step(r, dev, d):
        index = big_bar(d)
        low = lowest_free()
        buf = export(r, d, index, [(0, pages * PAGE)], open_flags=open_flags)
        return fn(r, dev, d, buf, low)
    return step


def ok_describe(r, dev, d, buf, low):
    return describe(buf, low)


def ok_fstat(r, dev, d, buf, low):
    st = os.fstat(buf)
    return {"mode": oct(st.st_mode), "S_IFMT": oct(stat.S_IFMT(st.st_mode)), "size": st.st_size,
            "nlink": st.st_nlink, "uid_is_euid": st.st_uid == os.geteuid(), "rdev": st.st_rdev,
            "blksize": st.st_blksize, "blocks": st.st_blocks}


def ok_fdinfo(r, dev, d, buf, low):
    return fdinfo(buf)


def ok_link(r, dev, d, buf, low):
    return os.readlink("/proc/self/fd/%d" % buf)


def ok_two_exports(r, dev, d, buf, low):
    buf2 = export(r, d, big_bar(d), [(0, PAGE)])
    return {"distinct_inodes": os.fstat(buf).st_ino != os.fstat(buf2).st_ino,
            "sizes": [os.fstat(buf).st_size, os.fstat(buf2).st_size]}


def ok_io(r, dev, d, buf, low):
    return {"read": call(lambda: os.read(buf, 16)),
            "write": call(os.write, buf, b"x"),
            "pread": call(lambda: os.pread(buf, 16, 0)),
            "lseek_end_0": call(os.lseek, buf, 0, os.SEEK_END),
            "lseek_set_0": call(os.lseek, buf, 0, os.SEEK_SET),
            "lseek_cur_0": call(os.lseek, buf, 0, os.SEEK_CUR),
            "lseek_set_page": call(os.lseek, buf, PAGE, os.SEEK_SET)}


def ok_mmap(flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE):
    def fn(r, dev, d, buf, low):
        m = r.map(mmap.mmap(buf, PAGE, flags, prot))
        return {"len": len(m)}
    return fn


def ok_sync(r, dev, d, buf, low):
    def sync(flags):
        return fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC, bytearray(struct.pack("=Q", flags)))
    return {"start_rw": call(sync, DMA_BUF_SYNC_RW), "end_rw": call(sync, DMA_BUF_SYNC_RW |
                                                                   DMA_BUF_SYNC_END),
            "flags_0": call(sync, 0)}


def ok_set_name(r, dev, d, buf, low):
    ret = fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, b"vfio-probe\0")
    return {"fdinfo_name": fdinfo_field(buf, "name"),
            "link": os.readlink("/proc/self/fd/%d" % buf)}


def ok_unknown_ioctl(r, dev, d, buf, low):
    return fcntl.ioctl(buf, ioc(0, "b", 0x7F, 0))


def ok_vfio_ioctl_on_dmabuf(r, dev, d, buf, low):
    return fcntl.ioctl(buf, VFIO_DEVICE_GET_INFO, bytearray(struct.pack(DEVICE_INFO_FMT, 24, 0, 0, 0,
                                                                        0, 0)))


def ok_as_udmabuf_source(r, dev, d, buf, low):
    """A vfio dma-buf fd given to UDMABUF_CREATE as the memfd."""
    ud = r.fd(os.open("/dev/udmabuf", os.O_RDWR))
    return udmabuf_create(ud, buf, 0, PAGE)


def ok_as_set_container(r, dev, d, buf, low):
    """A dma-buf fd given to VFIO_GROUP_SET_CONTAINER of the other device's group."""
    other = [k for k in DEVS if DEVS[k]["group"] != dev["group"]]
    if not other:
        return "no_other_group"
    g = open_group(r, DEVS[other[0]])
    return set_container(g, buf)


def ok_dup_survives_close(r, dev, d, buf, low):
    dup = r.fd(os.dup(buf))
    r.close(buf)
    return os.fstat(dup).st_size


# --- revocation, lifetime ---------------------------------------------------------------


def born_revoked(r, dev, d):
    """Export while PCI_COMMAND.MEMORY is clear: what userspace can see of the buffer."""
    index = big_bar(d)
    live = export(r, d, index, [(0, PAGE)])
    set_memory_enable(d, False)
    try:
        res = call(export, r, d, index, [(0, PAGE)])
        if not isinstance(res, int):
            return {"export": res}
        dead = res
        out = {"export": "fd", "size": os.fstat(dead).st_size,
               "fdinfo_like_live": [l for l in fdinfo(dead) if not l.startswith("count")] ==
               [l for l in fdinfo(live) if not l.startswith("count")],
               "sync": call(fcntl.ioctl, dead, DMA_BUF_IOCTL_SYNC,
                            bytearray(struct.pack("=Q", DMA_BUF_SYNC_RW))),
               "mmap": call(lambda: mmap.mmap(dead, PAGE) and "mapped")}
    finally:
        set_memory_enable(d, True)
    out["after_memory_enabled_size"] = os.fstat(dead).st_size
    return out


def revoke_while_exported(r, dev, d):
    """Clear and set PCI_COMMAND.MEMORY while a dma-buf exists (no importer attached)."""
    buf = export(r, d, big_bar(d), [(0, PAGE)])
    cleared = set_memory_enable(d, False)
    out = {"memory_after_clear": cleared, "fstat_while_revoked": os.fstat(buf).st_size}
    out["memory_after_set"] = set_memory_enable(d, True)
    out["fstat_after"] = os.fstat(buf).st_size
    return out


def reset_while_exported(r, dev, d):
    buf = export(r, d, big_bar(d), [(0, PAGE)])
    return {"reset": call(fcntl.ioctl, d, VFIO_DEVICE_RESET), "fstat_after": os.fstat(buf).st_size}


def after_device_close(r, dev, d):
    """Close the device fd (then group and container): the dma-buf fd lives on."""
    buf = export(r, d, big_bar(d), [(0, 2 * PAGE)])
    for fd in list(r.fds):
        if fd != buf:
            r.close(fd)
    out = {"fstat_size": os.fstat(buf).st_size, "fdinfo": fdinfo(buf),
           "sync": call(fcntl.ioctl, buf, DMA_BUF_IOCTL_SYNC,
                        bytearray(struct.pack("=Q", DMA_BUF_SYNC_RW))),
           "mmap": call(lambda: mmap.mmap(buf, PAGE) and "mapped")}
    # the group can be opened again, and the device re-exported, while the old buffer lives
    c, g, d2 = open_device(r, dev)
    buf2 = export(r, d2, big_bar(d2), [(0, PAGE)])
    out["reopen_and_export_again"] = os.fstat(buf2).st_size
    out["old_buffer_still_open"] = is_open(buf)
    return out


def device_close_with_buffer_group_reopen(r, dev, d):
    """Close device, group and container: is the group free while the dma-buf lives?"""
    buf = export(r, d, big_bar(d), [(0, PAGE)])
    for fd in list(r.fds):
        if fd != buf:
            r.close(fd)
    g = r.fd(os.open(dev["group"], os.O_RDWR))
    return group_status(g)


def close_buffer_then_device(r, dev, d):
    buf = export(r, d, big_bar(d), [(0, PAGE)])
    r.close(buf)
    return device_info(d)["num_regions"]


def tph(flags, with_buf=True):
    """Feature 13 (DMA_BUF_TPH in the TPH series, unassigned in 7.2)."""
    def fn(r, dev, d):
        fd = export(r, d, big_bar(d), [(0, PAGE)]) if with_buf else -1
        data = struct.pack("=iIHBB", fd, 1, 0, 0x12, 0)
        return feature(d, flags | VFIO_DEVICE_FEATURE_DMA_BUF_TPH, data, pad=16)[0]
    return fn


def main():
    steps = [("devices_found", lambda: sorted(DEVS))]
    for kind in sorted(DEVS):
        dev = DEVS[kind]
        D = VFIO_DEVICE_FEATURE_DMA_BUF
        s = [
            ("p2p_capability", p2p_capability),
            ("probe", feat_flags(P | D)),
            ("probe_get", feat_flags(P | G | D)),
            ("probe_set", feat_flags(P | S | D)),
            ("probe_get_argsz_8", feat_flags(P | G | D, argsz=8)),
            ("set", feat_flags(S | D)),
            ("get_set", feat_flags(G | S | D)),
            ("get_ok", feat_flags(G | D)),
            ("get_argsz_8", feat_flags(G | D, argsz=8)),
            ("get_argsz_23", feat_flags(G | D, argsz=23)),
            ("get_argsz_24_range_past_argsz", with_device(dev, argsz_short_of_ranges(True))),
            ("get_argsz_24_bad_range_past_argsz", with_device(dev, argsz_short_of_ranges(False))),
            ("nr_ranges_0", case(lambda size: [])),
            ("nr_ranges_2_one_given", nr_ranges_exceeds_buffer),
            ("nr_ranges_0x10000000", nr_ranges_huge(0x10000000)),
            ("nr_ranges_0xffffffff", nr_ranges_huge(0xFFFFFFFF)),
            ("flags_1", case(one_page, flags=1)),
            ("flags_0x80000000", case(one_page, flags=0x80000000)),
            ("region_rom_6", case(one_page, fixed(6))),
            ("region_config_7", case(one_page, fixed(7))),
            ("region_vga_8", case(one_page, fixed(8))),
            ("region_9", case(one_page, fixed(9))),
            ("region_100", case(one_page, fixed(100))),
            ("region_missing_bar", case(one_page, missing_bar)),
            ("region_missing_bar_bad_range", case(lambda size: [(1, 0)], missing_bar)),
            ("region_rom_bad_range", case(lambda size: [(1, 0)], fixed(6))),
            ("flags_1_bad_region", case(one_page, fixed(100), flags=1)),
            ("offset_unaligned", case(lambda size: [(100, PAGE)])),
            ("length_unaligned", case(lambda size: [(0, 100)])),
            ("length_0", case(lambda size: [(0, 0)])),
            ("second_range_length_0", case(lambda size: [(0, PAGE), (PAGE, 0)])),
            ("whole_bar", case(lambda size: [(0, size)])),
            ("last_page", case(lambda size: [(size - PAGE, PAGE)])),
            ("offset_at_end", case(lambda size: [(size, PAGE)])),
            ("crossing_end", case(lambda size: [(size - PAGE, 2 * PAGE)])),
            ("length_bar_plus_page", case(lambda size: [(0, size + PAGE)])),
            ("offset_far_beyond", case(lambda size: [(1 << 40, PAGE)])),
            ("offset_overflow", case(lambda size: [(0xFFFFFFFFFFFFF000, PAGE)])),
            ("length_overflow", case(lambda size: [(PAGE, 0xFFFFFFFFFFFFF000)])),
            ("length_bit63", case(lambda size: [(0, 1 << 63)])),
            ("total_bit63", case(lambda size: [(0, 1 << 62), (0, 1 << 62)])),
            ("total_overflow", case(lambda size: [(0, 0xFFFFFFFFFFFFF000),
                                                  (0, 0xFFFFFFFFFFFFF000)])),
            ("total_over_bar_valid_ranges", case(lambda size: [(0, size), (0, size)])),
            ("overlapping_ranges", case(lambda size: [(0, 2 * PAGE), (PAGE, 2 * PAGE)])),
            ("duplicate_ranges", case(lambda size: [(0, PAGE), (0, PAGE)])),
            ("unordered_ranges", case(lambda size: [(2 * PAGE, PAGE), (0, PAGE)])),
            ("bad_range_after_good", case(lambda size: [(0, PAGE), (size, PAGE)])),
            ("bad_pointer", bad_pointer),
            ("open_flags_0", open_flags_case(0)),
            ("open_flags_cloexec", open_flags_case(os.O_CLOEXEC)),
            ("open_flags_rdwr", open_flags_case(os.O_RDWR)),
            ("open_flags_wronly", open_flags_case(os.O_WRONLY)),
            ("open_flags_rdwr_cloexec", open_flags_case(os.O_RDWR | os.O_CLOEXEC)),
            ("open_flags_nonblock", open_flags_case(os.O_NONBLOCK)),
            ("open_flags_accmode_3", open_flags_case(3)),
            ("open_flags_append_trunc", open_flags_case(os.O_APPEND | os.O_TRUNC)),
            ("open_flags_all_bits", open_flags_case(0xFFFFFFFF)),
            ("ok_describe", with_buf(ok_describe)),
            ("ok_fstat", with_buf(ok_fstat)),
            ("ok_fdinfo", with_buf(ok_fdinfo)),
            ("ok_link", with_buf(ok_link)),
            ("ok_two_exports", with_buf(ok_two_exports)),
            ("ok_io", with_buf(ok_io)),
            ("ok_mmap_shared", with_buf(ok_mmap())),
            ("ok_mmap_private", with_buf(ok_mmap(mmap.MAP_PRIVATE))),
            ("ok_mmap_shared_read_only", with_buf(ok_mmap(prot=mmap.PROT_READ))),
            ("ok_rdwr_io", with_buf(ok_io, open_flags=os.O_RDWR)),
            ("ok_rdwr_mmap_shared", with_buf(ok_mmap(), open_flags=os.O_RDWR)),
            ("ok_rdwr_mmap_private", with_buf(ok_mmap(mmap.MAP_PRIVATE), open_flags=os.O_RDWR)),
            ("ok_wronly_io", with_buf(ok_io, open_flags=os.O_WRONLY)),
            ("ok_sync", with_buf(ok_sync)),
            ("ok_set_name", with_buf(ok_set_name)),
            ("ok_unknown_ioctl", with_buf(ok_unknown_ioctl)),
            ("ok_vfio_ioctl_on_dmabuf", with_buf(ok_vfio_ioctl_on_dmabuf)),
            ("ok_as_udmabuf_source", with_buf(ok_as_udmabuf_source)),
            ("ok_as_set_container_fd", with_buf(ok_as_set_container)),
            ("ok_dup_survives_close", with_buf(ok_dup_survives_close)),
            ("born_revoked", born_revoked),
            ("revoke_while_exported", revoke_while_exported),
            ("reset_while_exported", reset_while_exported),
            ("after_device_close", after_device_close),
            ("group_reopen_while_buffer_lives", device_close_with_buffer_group_reopen),
            ("close_buffer_then_device", close_buffer_then_device),
            ("tph_13_probe", tph(P, with_buf=False)),
            ("tph_13_probe_set", tph(P | S, with_buf=False)),
            ("tph_13_probe_get", tph(P | G, with_buf=False)),
            ("tph_13_set", tph(S)),
            ("tph_13_get", tph(G)),
        ]
        for name, fn in s:
            if name.startswith("get_argsz_24"):
                steps.append((kind + "_" + name, fn))
            else:
                steps.append((kind + "_" + name, with_device(dev, fn)))
    run_all(steps)


if __name__ == "__main__":
    main()
