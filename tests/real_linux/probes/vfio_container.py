"""Probe: VFIO container and group ioctls (/dev/vfio/vfio, /dev/vfio/GROUP).

VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION (ids 0..11 and bogus ones, before a
group, with a group, after SET_IOMMU), VFIO_SET_IOMMU, VFIO_IOMMU_GET_INFO,
VFIO_IOMMU_MAP_DMA/UNMAP_DMA, VFIO_GROUP_GET_STATUS, VFIO_GROUP_SET_CONTAINER,
VFIO_GROUP_UNSET_CONTAINER, VFIO_GROUP_GET_DEVICE_FD, unknown and misdirected
ioctls, opening a group twice and the effects of closing order.

The devices are found by scanning sysfs for vfio-pci bound devices with known
ids (edu 1234:11e8, ivshmem 1af4:1110); the group is the device's iommu_group.
Most steps use the first found (edu); steps with two groups need both.

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  No raw fd numbers, addresses or inode
numbers: only relations.  Standard library only.  On real Linux the group
nodes are 0600 root:root, so the golden run is as root.
"""
import fcntl
import mmap
import os
import stat
import struct

from _probe import (
    CAP_HDR_FMT, DEVICE_INFO_FMT, DMA_MAP_FMT, DMA_UNMAP_FMT, GROUP_STATUS_FMT, IOMMU_INFO_FMT,
    PAGE, PCI_VENDOR_ID, SYS_PCI, VFIO_CHECK_EXTENSION, VFIO_DEVICE_GET_INFO,
    VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VFIO_GET_API_VERSION,
    VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_GET_STATUS, VFIO_GROUP_SET_CONTAINER,
    VFIO_GROUP_UNSET_CONTAINER, VFIO_IOMMU_GET_INFO, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA,
    VFIO_NOIOMMU_IOMMU, VFIO_TYPE1_IOMMU, Res, VFIO_TYPE1v2_IOMMU, call, cfg_read, cloexec,
    closed_fd, device_info, find_devices, get_device_fd, group_status, ioc, ioctl_buf, is_open,
    lowest_free, mmap_addr, open_container, open_device, open_group, run_all, set_container,
    set_iommu, vfio_io,
)

# --- the probe ------------------------------------------------------------------

DEVS = find_devices()
EDU = DEVS.get("edu")
IVSHMEM = DEVS.get("ivshmem")
FIRST = EDU or IVSHMEM
VFIO_UNKNOWN = vfio_io(50)                  # _IO(';', 150): no VFIO ioctl has this number
OTHER_TYPE_IOCTL = ioc(0, "x", 1, 0)        # _IO('x', 1)
NOT_A_CONTAINER = "/dev/null"


def devices_found():
    return sorted(DEVS)


def container_node():
    st = os.stat("/dev/vfio/vfio")
    return {"S_ISCHR": stat.S_ISCHR(st.st_mode), "perm": oct(st.st_mode & 0o777)}


def group_node():
    st = os.stat(FIRST["group"])
    return {"S_ISCHR": stat.S_ISCHR(st.st_mode), "perm": oct(st.st_mode & 0o777),
            "name_is_sysfs_iommu_group": os.path.basename(FIRST["group"]) == os.path.basename(
                os.readlink(os.path.join(SYS_PCI, FIRST["bdf"], "iommu_group")))}


def api_version():
    with Res() as r:
        return fcntl.ioctl(open_container(r), VFIO_GET_API_VERSION)


def api_version_with_arg():
    with Res() as r:
        return fcntl.ioctl(open_container(r), VFIO_GET_API_VERSION, 12345)


def check_extension(ext, phase):
    def step():
        with Res() as r:
            c = open_container(r)
            if phase in ("group_set", "iommu_set"):
                g = open_group(r, FIRST)
                set_container(g, c)
                if phase == "iommu_set":
                    set_iommu(c)
            return fcntl.ioctl(c, VFIO_CHECK_EXTENSION, ext)
    return step


def check_extension_after_type1_v1(ext):
    def step():
        with Res() as r:
            c = open_container(r)
            g = open_group(r, FIRST)
            set_container(g, c)
            set_iommu(c, VFIO_TYPE1_IOMMU)
            return fcntl.ioctl(c, VFIO_CHECK_EXTENSION, ext)
    return step


def container_ioctl(cmd, phase, data=None):
    def step():
        with Res() as r:
            c = open_container(r)
            if phase in ("group_set", "iommu_set"):
                g = open_group(r, FIRST)
                set_container(g, c)
                if phase == "iommu_set":
                    set_iommu(c)
            if data is None:
                return fcntl.ioctl(c, cmd, 0)
            ret, buf = ioctl_buf(c, cmd, data)
            return ret
    return step


def iommu_info(argsz, extra=0, phase="iommu_set", iommu=VFIO_TYPE1v2_IOMMU):
    def step():
        with Res() as r:
            c = open_container(r)
            if phase in ("group_set", "iommu_set"):
                g = open_group(r, FIRST)
                set_container(g, c)
                if phase == "iommu_set":
                    set_iommu(c, iommu)
            ret, buf = ioctl_buf(c, VFIO_IOMMU_GET_INFO,
                                 struct.pack(IOMMU_INFO_FMT, argsz, 0, 0, 0, 0) + bytes(extra))
            a, flags, pgsizes, cap_offset, pad = struct.unpack_from(IOMMU_INFO_FMT, buf)
            out = {"ret": ret, "argsz": a, "flags": flags, "iova_pgsizes": hex(pgsizes),
                   "cap_offset": cap_offset}
            caps = []
            off = cap_offset
            while off and off + 8 <= len(buf) and len(caps) < 16:
                cid, ver, nxt = struct.unpack_from(CAP_HDR_FMT, buf, off)
                caps.append({"id": cid, "version": ver})
                off = nxt
            out["caps"] = caps
            return out
    return step


def iommu_info_caps_decoded():
    """The type1 capability chain, decoded: IOVA_RANGE (1), MIGRATION (2), DMA_AVAIL (3).

    The IOVA ranges are the IOMMU aperture minus reserved regions (the MSI window):
    properties of the machine, not of a process."""
    with Res() as r:
        c = open_container(r)
        g = open_group(r, FIRST)
        set_container(g, c)
        set_iommu(c)
        ret, buf = ioctl_buf(c, VFIO_IOMMU_GET_INFO,
                             struct.pack(IOMMU_INFO_FMT, 1024, 0, 0, 0, 0) + bytes(1024))
        a, flags, pgsizes, off, pad = struct.unpack_from(IOMMU_INFO_FMT, buf)
        out = {}
        while off:
            cid, ver, nxt = struct.unpack_from(CAP_HDR_FMT, buf, off)
            if cid == 1:
                nr, rsv = struct.unpack_from("=II", buf, off + 8)
                out["iova_range"] = {"offset": off, "nr_iovas": nr, "ranges": [
                    [hex(x) for x in struct.unpack_from("=QQ", buf, off + 16 + 16 * i)]
                    for i in range(nr)]}
            elif cid == 2:
                fl, pgsz, maxsz = struct.unpack_from("=I4xQQ", buf, off + 8)
                out["migration"] = {"offset": off, "flags": fl, "pgsize_bitmap": hex(pgsz),
                                    "max_dirty_bitmap_size": hex(maxsz)}
            elif cid == 3:
                (avail,) = struct.unpack_from("=I", buf, off + 8)
                out["dma_avail"] = {"offset": off, "avail": avail}
            else:
                out["cap_%d" % cid] = {"offset": off}
            off = nxt
        return out


def iommu_info_dma_avail_after_map():
    """DMA_AVAIL counts down by one per mapping."""
    with Res() as r:
        c = open_container(r)
        g = open_group(r, FIRST)
        set_container(g, c)
        set_iommu(c)

        def avail():
            ret, buf = ioctl_buf(c, VFIO_IOMMU_GET_INFO,
                                 struct.pack(IOMMU_INFO_FMT, 1024, 0, 0, 0, 0) + bytes(1024))
            off = struct.unpack_from(IOMMU_INFO_FMT, buf)[3]
            while off:
                cid, ver, nxt = struct.unpack_from(CAP_HDR_FMT, buf, off)
                if cid == 3:
                    return struct.unpack_from("=I", buf, off + 8)[0]
                off = nxt
        before = avail()
        m, va = anon_page(r, 2 * PAGE)
        dma_map(c, va, IOVA, PAGE)
        dma_map(c, va + PAGE, IOVA + PAGE, PAGE)
        after = avail()
        dma_unmap(c, IOVA, 2 * PAGE)
        return {"used_by_two_maps": before - after, "after_unmap_restored": avail() == before}


def anon_page(r, size=PAGE):
    m = r.map(mmap.mmap(-1, size))
    m[0:4] = b"DMA!"
    return m, mmap_addr(m)


def dma_map(c, vaddr, iova, size, flags=VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
            argsz=32):
    ret, buf = ioctl_buf(c, VFIO_IOMMU_MAP_DMA, struct.pack(DMA_MAP_FMT, argsz, flags, vaddr,
                                                            iova, size))
    return ret


def dma_unmap(c, iova, size, flags=0, argsz=24):
    ret, buf = ioctl_buf(c, VFIO_IOMMU_UNMAP_DMA, struct.pack(DMA_UNMAP_FMT, argsz, flags,
                                                              iova, size))
    a, fl, i, s = struct.unpack_from(DMA_UNMAP_FMT, buf)
    return {"ret": ret, "unmapped_size": s}


def with_iommu(fn, phase="iommu_set"):
    def step():
        with Res() as r:
            c = open_container(r)
            g = open_group(r, FIRST)
            set_container(g, c)
            if phase == "iommu_set":
                set_iommu(c)
            return fn(r, c, g)
    return step


IOVA = 1 << 20


def map_and_unmap(r, c, g):
    m, va = anon_page(r)
    return {"map": dma_map(c, va, IOVA, PAGE), "unmap": dma_unmap(c, IOVA, PAGE)}


def map_twice(r, c, g):
    m, va = anon_page(r)
    first = dma_map(c, va, IOVA, PAGE)
    return {"first": first, "second": call(dma_map, c, va, IOVA, PAGE)}


def map_unaligned_iova(r, c, g):
    m, va = anon_page(r)
    return dma_map(c, va, IOVA + 1, PAGE)


def map_unaligned_size(r, c, g):
    m, va = anon_page(r)
    return dma_map(c, va, IOVA, 100)


def map_size_0(r, c, g):
    m, va = anon_page(r)
    return dma_map(c, va, IOVA, 0)


def map_no_rw_flags(r, c, g):
    m, va = anon_page(r)
    return dma_map(c, va, IOVA, PAGE, flags=0)


def map_argsz_small(r, c, g):
    m, va = anon_page(r)
    return dma_map(c, va, IOVA, PAGE, argsz=16)


def map_bad_vaddr(r, c, g):
    return dma_map(c, PAGE, IOVA, PAGE)


def unmap_not_mapped(r, c, g):
    return dma_unmap(c, IOVA, PAGE)


U64_PAGE = (1 << 64) - PAGE  # the last page of the 64-bit IOVA space


def map_iova_wraps(r, c, g):
    """The kernel's vfio_dma_mapping_test overflow: iova + size - 1 passes 2**64."""
    m, va = anon_page(r, 2 * PAGE)
    return {
        "map": call(dma_map, c, va, U64_PAGE, 2 * PAGE),
        "unmap": call(dma_unmap, c, U64_PAGE, 2 * PAGE),
    }


def map_vaddr_wraps(r, c, g):
    return dma_map(c, U64_PAGE, IOVA, 2 * PAGE)


def map_top_of_iova_ranges(r, c, g):
    """The kernel's vfio_dma_map_limit_test: one page at the last usable IOVA page."""
    m, va = anon_page(r)
    top = 0x7FFFFFFFFF & ~(PAGE - 1)
    return {"map": dma_map(c, va, top, PAGE), "unmap": dma_unmap(c, top, PAGE)}


def set_iommu_case(kind, before=None, groups=1):
    """SET_IOMMU(kind) after SET_CONTAINER of `groups` groups, optionally after SET_IOMMU(before)."""
    def step():
        with Res() as r:
            c = open_container(r)
            devs = [d for d in (EDU, IVSHMEM) if d][:groups]
            for d in devs:
                set_container(open_group(r, d), c)
            if before is not None:
                set_iommu(c, before)
            return set_iommu(c, kind)
    return step


def set_iommu_second_container_same_type():
    """Two containers, one group each: both can be set to TYPE1v2."""
    with Res() as r:
        c1, c2 = open_container(r), open_container(r)
        set_container(open_group(r, EDU), c1)
        set_container(open_group(r, IVSHMEM), c2)
        return {"first": set_iommu(c1), "second": set_iommu(c2)}


def group_status_case(argsz, phase):
    def step():
        with Res() as r:
            g = open_group(r, FIRST)
            if phase in ("container_set", "iommu_set", "unset"):
                c = open_container(r)
                set_container(g, c)
                if phase == "iommu_set":
                    set_iommu(c)
                if phase == "unset":
                    fcntl.ioctl(g, VFIO_GROUP_UNSET_CONTAINER)
            ret, buf = ioctl_buf(g, VFIO_GROUP_GET_STATUS,
                                 struct.pack(GROUP_STATUS_FMT, argsz, 0) + bytes(16))
            a, flags = struct.unpack_from(GROUP_STATUS_FMT, buf)
            return {"ret": ret, "argsz": a, "flags": flags}
    return step


def group_status_flags_preset():
    """flags is output only: garbage passed in is overwritten."""
    with Res() as r:
        g = open_group(r, FIRST)
        ret, buf = ioctl_buf(g, VFIO_GROUP_GET_STATUS,
                             struct.pack(GROUP_STATUS_FMT, 8, 0xFFFFFFF0))
        return struct.unpack_from(GROUP_STATUS_FMT, buf)[1]


def group_status_bad_pointer():
    with Res() as r:
        return fcntl.ioctl(open_group(r, FIRST), VFIO_GROUP_GET_STATUS, 16)


def set_container_with(make_fd):
    def step():
        with Res() as r:
            g = open_group(r, FIRST)
            return set_container(g, make_fd(r, g))
    return step


def fd_closed(r, g):
    return closed_fd()


def fd_minus_one(r, g):
    return -1


def fd_dev_null(r, g):
    return r.fd(os.open(NOT_A_CONTAINER, os.O_RDWR))


def fd_group_itself(r, g):
    return g


def fd_other_group(r, g):
    return open_group(r, IVSHMEM if FIRST is EDU else EDU)


def fd_container_rdonly(r, g):
    return r.fd(os.open("/dev/vfio/vfio", os.O_RDONLY))


def fd_container_after_iommu_set_without_group(r, g):
    c = open_container(r)
    call(set_iommu, c)
    return c


def set_container_twice_same():
    with Res() as r:
        g = open_group(r, FIRST)
        c = open_container(r)
        return {"first": set_container(g, c), "second": call(set_container, g, c)}


def set_container_twice_other():
    with Res() as r:
        g = open_group(r, FIRST)
        c1, c2 = open_container(r), open_container(r)
        return {"first": set_container(g, c1), "second": call(set_container, g, c2)}


def set_container_bad_pointer():
    with Res() as r:
        return fcntl.ioctl(open_group(r, FIRST), VFIO_GROUP_SET_CONTAINER, 16)


def set_container_int_arg():
    """The argument is a pointer to an int fd, not the fd itself."""
    with Res() as r:
        g = open_group(r, FIRST)
        c = open_container(r)
        return fcntl.ioctl(g, VFIO_GROUP_SET_CONTAINER, c)


def two_groups_one_container():
    with Res() as r:
        c = open_container(r)
        g1, g2 = open_group(r, EDU), open_group(r, IVSHMEM)
        out = {"set_1": set_container(g1, c), "set_2": set_container(g2, c),
               "set_iommu": set_iommu(c)}
        d1 = r.fd(get_device_fd(g1, EDU["bdf"]))
        d2 = r.fd(get_device_fd(g2, IVSHMEM["bdf"]))
        out["both_devices_open"] = is_open(d1) and is_open(d2)
        out["status_1"] = group_status(g1)
        out["status_2"] = group_status(g2)
        return out


def group_added_after_set_iommu():
    with Res() as r:
        c = open_container(r)
        g1, g2 = open_group(r, EDU), open_group(r, IVSHMEM)
        set_container(g1, c)
        set_iommu(c)
        out = {"set_2_after_iommu": call(set_container, g2, c)}
        out["status_2"] = group_status(g2)
        out["device_2"] = "fd" if isinstance(call(lambda: r.fd(get_device_fd(
            g2, IVSHMEM["bdf"]))), int) else "error"
        return out


def unset_container_case(phase):
    def step():
        with Res() as r:
            g = open_group(r, FIRST)
            if phase == "not_set":
                return fcntl.ioctl(g, VFIO_GROUP_UNSET_CONTAINER)
            c = open_container(r)
            set_container(g, c)
            if phase in ("iommu_set", "device_open", "device_closed"):
                set_iommu(c)
            if phase in ("device_open", "device_closed"):
                d = r.fd(get_device_fd(g, FIRST["bdf"]))
                if phase == "device_closed":
                    r.close(d)
            ret = fcntl.ioctl(g, VFIO_GROUP_UNSET_CONTAINER)
            return {"ret": ret, "status": group_status(g),
                    "set_again": call(set_container, g, c)}
    return step


def unset_container_twice():
    with Res() as r:
        g = open_group(r, FIRST)
        c = open_container(r)
        set_container(g, c)
        return {"first": fcntl.ioctl(g, VFIO_GROUP_UNSET_CONTAINER),
                "second": call(fcntl.ioctl, g, VFIO_GROUP_UNSET_CONTAINER)}


def container_after_last_group_unset():
    """The container drops its IOMMU driver when its last group leaves."""
    with Res() as r:
        g = open_group(r, FIRST)
        c = open_container(r)
        set_container(g, c)
        set_iommu(c)
        fcntl.ioctl(g, VFIO_GROUP_UNSET_CONTAINER)
        out = {"check_extension_type1v2": call(fcntl.ioctl, c, VFIO_CHECK_EXTENSION,
                                               VFIO_TYPE1v2_IOMMU),
               "iommu_get_info": call(ioctl_buf, c, VFIO_IOMMU_GET_INFO,
                                      struct.pack(IOMMU_INFO_FMT, 24, 0, 0, 0, 0)),
               "set_container_again": call(set_container, g, c)}
        out["iommu_get_info"] = "ok" if isinstance(out["iommu_get_info"], tuple) \
            else out["iommu_get_info"]
        out["set_iommu_again"] = call(set_iommu, c)
        return out


def get_device_case(phase, name=None):
    def step():
        with Res() as r:
            g = open_group(r, FIRST)
            if phase in ("container_set", "iommu_set", "iommu_set_type1"):
                c = open_container(r)
                set_container(g, c)
                if phase == "iommu_set":
                    set_iommu(c)
                if phase == "iommu_set_type1":
                    set_iommu(c, VFIO_TYPE1_IOMMU)
            n = FIRST["bdf"] if name is None else name(FIRST)
            low = lowest_free()
            d = r.fd(get_device_fd(g, n))
            return {"fd_is_lowest_free": d == low, "cloexec": cloexec(d),
                    "accmode_rdwr": fcntl.fcntl(d, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR,
                    "link": os.readlink("/proc/self/fd/%d" % d)}
    return step


def name_other_group(dev):
    return (IVSHMEM if dev is EDU else EDU)["bdf"]


def name_no_domain(dev):
    return dev["bdf"][5:]


def name_trailing_space(dev):
    return dev["bdf"] + " "


def name_empty(dev):
    return ""


def name_bogus(dev):
    return "0000:ff:1f.7"


def name_vf_token(dev):
    return dev["bdf"] + " vf_token=00000000-0000-0000-0000-000000000000"


def get_device_bad_pointer():
    with Res() as r:
        c, g, d = open_device(r, FIRST)
        return fcntl.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, 16)


def get_device_twice():
    with Res() as r:
        c, g, d = open_device(r, FIRST)
        d2 = call(get_device_fd, g, FIRST["bdf"])
        if isinstance(d2, int):
            r.fd(d2)
            return {"second": "fd", "both_work": device_info(d)["flags"] == device_info(d2)["flags"]}
        return {"second": d2}


def device_fd_fstat():
    with Res() as r:
        c, g, d = open_device(r, FIRST)
        st = os.fstat(d)
        return {"mode": oct(st.st_mode), "size": st.st_size}


def group_fd_link():
    with Res() as r:
        g = open_group(r, FIRST)
        return os.readlink("/proc/self/fd/%d" % g) == FIRST["group"]


def container_fd_link():
    with Res() as r:
        return os.readlink("/proc/self/fd/%d" % open_container(r))


def unknown_ioctl(target, cmd):
    def step():
        with Res() as r:
            if target == "container_no_iommu":
                fd = open_container(r)
            elif target == "container_iommu_set":
                fd, g, d = open_device(r, FIRST)
            elif target == "group":
                fd = open_group(r, FIRST)
            else:
                c, g, fd = open_device(r, FIRST)
            return fcntl.ioctl(fd, cmd, 0)
    return step


def wrong_fd_ioctl(target, cmd, data=None):
    """A VFIO ioctl sent to the wrong kind of VFIO fd."""
    def step():
        with Res() as r:
            c, g, d = open_device(r, FIRST)
            fd = {"container": c, "group": g, "device": d}[target]
            if data is None:
                return fcntl.ioctl(fd, cmd, 0)
            return ioctl_buf(fd, cmd, data)[0]
    return step


def open_group_twice():
    with Res() as r:
        open_group(r, FIRST)
        return r.fd(os.open(FIRST["group"], os.O_RDWR)) >= 0


def open_group_rdonly():
    with Res() as r:
        g = r.fd(os.open(FIRST["group"], os.O_RDONLY))
        return {"status": group_status(g)}


def open_group_after_close():
    with Res() as r:
        g = open_group(r, FIRST)
        r.close(g)
        g = open_group(r, FIRST)
        return group_status(g)


def open_two_containers():
    with Res() as r:
        c1, c2 = open_container(r), open_container(r)
        return {"both_version_0": fcntl.ioctl(c1, VFIO_GET_API_VERSION) == 0 and
                fcntl.ioctl(c2, VFIO_GET_API_VERSION) == 0}


def close_container_keep_group():
    """Close the container fd while a group holds it: the group keeps the container."""
    with Res() as r:
        c = open_container(r)
        g = open_group(r, FIRST)
        set_container(g, c)
        set_iommu(c)
        r.close(c)
        out = {"status": group_status(g)}
        d = call(get_device_fd, g, FIRST["bdf"])
        if isinstance(d, int):
            r.fd(d)
            out["get_device_fd"] = "fd"
            out["device_info_flags"] = device_info(d)["flags"]
        else:
            out["get_device_fd"] = d
        out["unset_while_device_open"] = call(fcntl.ioctl, g, VFIO_GROUP_UNSET_CONTAINER)
        return out


def close_container_then_unset():
    """Close the container fd, then UNSET: the group is free for a new container."""
    with Res() as r:
        c = open_container(r)
        g = open_group(r, FIRST)
        set_container(g, c)
        set_iommu(c)
        r.close(c)
        out = {"unset": fcntl.ioctl(g, VFIO_GROUP_UNSET_CONTAINER),
               "status_after_unset": group_status(g)}
        c2 = open_container(r)
        out["set_new_container"] = set_container(g, c2)
        out["set_iommu_new_container"] = set_iommu(c2)
        return out


def close_group_keep_device():
    with Res() as r:
        c, g, d = open_device(r, FIRST)
        r.close(g)
        out = {"device_get_info": device_info(d)["num_regions"],
               "container_get_info": call(lambda: ioctl_buf(
                   c, VFIO_IOMMU_GET_INFO, struct.pack(IOMMU_INFO_FMT, 24, 0, 0, 0, 0))[0])}
        g2 = call(os.open, FIRST["group"], os.O_RDWR)
        if isinstance(g2, int):
            r.fd(g2)
            out["reopen_group"] = "fd"
            out["reopened_status"] = group_status(g2)
            out["reopened_get_device_fd"] = call(lambda: "fd" if r.fd(get_device_fd(
                g2, FIRST["bdf"])) >= 0 else None)
        else:
            out["reopen_group"] = g2
        return out


def close_group_then_device_then_reopen():
    with Res() as r:
        c, g, d = open_device(r, FIRST)
        r.close(g)
        r.close(d)
        g2 = r.fd(os.open(FIRST["group"], os.O_RDWR))
        return {"status": group_status(g2),
                "container_check_type1v2": fcntl.ioctl(c, VFIO_CHECK_EXTENSION,
                                                       VFIO_TYPE1v2_IOMMU)}


def close_container_and_group_keep_device():
    with Res() as r:
        c, g, d = open_device(r, FIRST)
        r.close(c)
        r.close(g)
        out = {"device_get_info_regions": device_info(d)["num_regions"],
               "config_vendor_readable": cfg_read(d, PCI_VENDOR_ID, 2) != 0xFFFF}
        out["reopen_group"] = call(lambda: "fd" if r.fd(os.open(FIRST["group"], os.O_RDWR))
                                   >= 0 else None)
        return out


def close_device_then_reopen():
    with Res() as r:
        c, g, d = open_device(r, FIRST)
        r.close(d)
        d2 = r.fd(get_device_fd(g, FIRST["bdf"]))
        return device_info(d2)["num_regions"]


def device_keeps_group_status():
    """Group status while a device fd is open: still viable + container set."""
    with Res() as r:
        c, g, d = open_device(r, FIRST)
        return group_status(g)


def main():
    steps = [
        ("devices_found", devices_found),
        ("container_node", container_node),
        ("group_node", group_node),
        ("api_version", api_version),
        ("api_version_with_arg", api_version_with_arg),
    ]
    for phase in ("no_group", "group_set", "iommu_set"):
        for ext in list(range(0, 12)) + [0xFFFF, 0x7FFFFFFF]:
            steps.append(("check_extension_%s_%d" % (phase, ext), check_extension(ext, phase)))
    for ext in (VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, 4, 9, 10):
        steps.append(("check_extension_after_type1_v1_%d" % ext,
                      check_extension_after_type1_v1(ext)))
    steps += [
        ("iommu_get_info_no_group", iommu_info(24, phase="no_group")),
        ("iommu_get_info_group_set_no_iommu", iommu_info(24, phase="group_set")),
        ("map_dma_no_iommu", container_ioctl(VFIO_IOMMU_MAP_DMA, "group_set",
                                             struct.pack(DMA_MAP_FMT, 32, 3, 0, 0, PAGE))),
        ("unknown_vfio_ioctl_container_no_group", container_ioctl(VFIO_UNKNOWN, "no_group")),
        ("unknown_vfio_ioctl_container_group_set", container_ioctl(VFIO_UNKNOWN, "group_set")),
        ("unknown_vfio_ioctl_container_iommu_set", container_ioctl(VFIO_UNKNOWN, "iommu_set")),
        ("other_type_ioctl_container_no_group", container_ioctl(OTHER_TYPE_IOCTL, "no_group")),
        ("other_type_ioctl_container_iommu_set", container_ioctl(OTHER_TYPE_IOCTL, "iommu_set")),
        ("iommu_get_info_argsz_0", iommu_info(0)),
        ("iommu_get_info_argsz_8", iommu_info(8)),
        ("iommu_get_info_argsz_15", iommu_info(15)),
        ("iommu_get_info_argsz_16", iommu_info(16)),
        ("iommu_get_info_argsz_24", iommu_info(24)),
        ("iommu_get_info_argsz_1024", iommu_info(1024, extra=1024)),
        ("iommu_get_info_type1_v1_argsz_1024", iommu_info(1024, extra=1024,
                                                          iommu=VFIO_TYPE1_IOMMU)),
        ("iommu_get_info_argsz_exact_needed", iommu_info(120, extra=1024)),
        ("iommu_get_info_argsz_needed_minus_1", iommu_info(119, extra=1024)),
        ("iommu_get_info_caps_decoded", iommu_info_caps_decoded),
        ("iommu_get_info_dma_avail_after_map", iommu_info_dma_avail_after_map),
        ("map_dma_and_unmap", with_iommu(map_and_unmap)),
        ("map_dma_twice", with_iommu(map_twice)),
        ("map_dma_unaligned_iova", with_iommu(map_unaligned_iova)),
        ("map_dma_unaligned_size", with_iommu(map_unaligned_size)),
        ("map_dma_size_0", with_iommu(map_size_0)),
        ("map_dma_no_rw_flags", with_iommu(map_no_rw_flags)),
        ("map_dma_argsz_16", with_iommu(map_argsz_small)),
        ("map_dma_bad_vaddr", with_iommu(map_bad_vaddr)),
        ("unmap_dma_not_mapped", with_iommu(unmap_not_mapped)),
        ("map_dma_iova_wraps", with_iommu(map_iova_wraps)),
        ("map_dma_vaddr_wraps", with_iommu(map_vaddr_wraps)),
        ("map_dma_top_of_iova_ranges", with_iommu(map_top_of_iova_ranges)),
        ("set_iommu_before_any_group", set_iommu_case(VFIO_TYPE1v2_IOMMU, groups=0)),
        ("set_iommu_type1v2", set_iommu_case(VFIO_TYPE1v2_IOMMU)),
        ("set_iommu_type1", set_iommu_case(VFIO_TYPE1_IOMMU)),
        ("set_iommu_type_0", set_iommu_case(0)),
        ("set_iommu_spapr_tce", set_iommu_case(2)),
        ("set_iommu_dma_cc", set_iommu_case(4)),
        ("set_iommu_noiommu", set_iommu_case(VFIO_NOIOMMU_IOMMU)),
        ("set_iommu_bogus_99", set_iommu_case(99)),
        ("set_iommu_twice_same", set_iommu_case(VFIO_TYPE1v2_IOMMU, before=VFIO_TYPE1v2_IOMMU)),
        ("set_iommu_twice_other", set_iommu_case(VFIO_TYPE1_IOMMU, before=VFIO_TYPE1v2_IOMMU)),
        ("set_iommu_two_groups", set_iommu_case(VFIO_TYPE1v2_IOMMU, groups=2)),
        ("set_iommu_two_containers", set_iommu_second_container_same_type),
        ("group_status_argsz_0", group_status_case(0, "fresh")),
        ("group_status_argsz_4", group_status_case(4, "fresh")),
        ("group_status_argsz_7", group_status_case(7, "fresh")),
        ("group_status_argsz_8", group_status_case(8, "fresh")),
        ("group_status_argsz_16", group_status_case(16, "fresh")),
        ("group_status_container_set", group_status_case(8, "container_set")),
        ("group_status_iommu_set", group_status_case(8, "iommu_set")),
        ("group_status_after_unset", group_status_case(8, "unset")),
        ("group_status_flags_in_ignored", group_status_flags_preset),
        ("group_status_bad_pointer", group_status_bad_pointer),
        ("set_container_closed_fd", set_container_with(fd_closed)),
        ("set_container_fd_minus_1", set_container_with(fd_minus_one)),
        ("set_container_dev_null", set_container_with(fd_dev_null)),
        ("set_container_group_itself", set_container_with(fd_group_itself)),
        ("set_container_other_group_fd", set_container_with(fd_other_group)),
        ("set_container_container_rdonly", set_container_with(fd_container_rdonly)),
        ("set_container_container_iommu_set_without_group",
         set_container_with(fd_container_after_iommu_set_without_group)),
        ("set_container_twice_same", set_container_twice_same),
        ("set_container_twice_other", set_container_twice_other),
        ("set_container_bad_pointer", set_container_bad_pointer),
        ("set_container_int_arg", set_container_int_arg),
        ("two_groups_one_container", two_groups_one_container),
        ("group_added_after_set_iommu", group_added_after_set_iommu),
        ("unset_container_not_set", unset_container_case("not_set")),
        ("unset_container_set", unset_container_case("container_set")),
        ("unset_container_iommu_set", unset_container_case("iommu_set")),
        ("unset_container_device_open", unset_container_case("device_open")),
        ("unset_container_device_closed", unset_container_case("device_closed")),
        ("unset_container_twice", unset_container_twice),
        ("container_after_last_group_unset", container_after_last_group_unset),
        ("get_device_fd_no_container", get_device_case("fresh")),
        ("get_device_fd_no_iommu", get_device_case("container_set")),
        ("get_device_fd_ok", get_device_case("iommu_set")),
        ("get_device_fd_ok_type1_v1", get_device_case("iommu_set_type1")),
        ("get_device_fd_other_groups_device", get_device_case("iommu_set", name_other_group)),
        ("get_device_fd_name_no_domain", get_device_case("iommu_set", name_no_domain)),
        ("get_device_fd_name_trailing_space", get_device_case("iommu_set", name_trailing_space)),
        ("get_device_fd_name_empty", get_device_case("iommu_set", name_empty)),
        ("get_device_fd_name_bogus", get_device_case("iommu_set", name_bogus)),
        ("get_device_fd_name_vf_token", get_device_case("iommu_set", name_vf_token)),
        ("get_device_fd_bad_pointer", get_device_bad_pointer),
        ("get_device_fd_twice", get_device_twice),
        ("device_fd_fstat", device_fd_fstat),
        ("group_fd_link_is_group_node", group_fd_link),
        ("container_fd_link", container_fd_link),
        ("unknown_vfio_ioctl_group", unknown_ioctl("group", VFIO_UNKNOWN)),
        ("other_type_ioctl_group", unknown_ioctl("group", OTHER_TYPE_IOCTL)),
        ("unknown_vfio_ioctl_device", unknown_ioctl("device", VFIO_UNKNOWN)),
        ("other_type_ioctl_device", unknown_ioctl("device", OTHER_TYPE_IOCTL)),
        ("get_api_version_on_group", wrong_fd_ioctl("group", VFIO_GET_API_VERSION)),
        ("get_api_version_on_device", wrong_fd_ioctl("device", VFIO_GET_API_VERSION)),
        ("check_extension_on_group", wrong_fd_ioctl("group", VFIO_CHECK_EXTENSION)),
        ("group_get_status_on_container", wrong_fd_ioctl(
            "container", VFIO_GROUP_GET_STATUS, struct.pack(GROUP_STATUS_FMT, 8, 0))),
        ("group_get_status_on_device", wrong_fd_ioctl(
            "device", VFIO_GROUP_GET_STATUS, struct.pack(GROUP_STATUS_FMT, 8, 0))),
        ("device_get_info_on_group", wrong_fd_ioctl(
            "group", VFIO_DEVICE_GET_INFO, struct.pack(DEVICE_INFO_FMT, 24, 0, 0, 0, 0, 0))),
        ("device_get_info_on_container", wrong_fd_ioctl(
            "container", VFIO_DEVICE_GET_INFO, struct.pack(DEVICE_INFO_FMT, 24, 0, 0, 0, 0, 0))),
        ("iommu_get_info_number_on_device_is_hot_reset_info", wrong_fd_ioctl(
            "device", VFIO_IOMMU_GET_INFO, struct.pack(IOMMU_INFO_FMT, 24, 0, 0, 0, 0))),
        ("iommu_map_dma_number_on_device_is_hot_reset", wrong_fd_ioctl(
            "device", VFIO_IOMMU_MAP_DMA, struct.pack(DMA_MAP_FMT, 32, 0, 0, 0, 0))),
        ("set_container_on_container", wrong_fd_ioctl(
            "container", VFIO_GROUP_SET_CONTAINER, struct.pack("=i", -1))),
        ("open_group_twice", open_group_twice),
        ("open_group_rdonly", open_group_rdonly),
        ("open_group_after_close", open_group_after_close),
        ("open_two_containers", open_two_containers),
        ("device_open_group_status", device_keeps_group_status),
        ("close_container_keep_group", close_container_keep_group),
        ("close_container_then_unset", close_container_then_unset),
        ("close_group_keep_device", close_group_keep_device),
        ("close_group_then_device_then_reopen", close_group_then_device_then_reopen),
        ("close_container_and_group_keep_device", close_container_and_group_keep_device),
        ("close_device_then_reopen", close_device_then_reopen),
    ]
    run_all(steps)


if __name__ == "__main__":
    main()
