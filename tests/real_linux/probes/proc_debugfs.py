"""Probe: debugfs /sys/kernel/debug/dma_buf/bufinfo and /proc/self/maps for dma-bufs.

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  The probe's own buffers are found in
bufinfo by inode number; inode numbers are printed as <ino>, addresses and
device numbers never.  If debugfs is not mounted and the probe runs as root it
mounts it (mount -t debugfs none /sys/kernel/debug) and says nothing about it.
Standard library only.
"""
import errno
import fcntl
import mmap
import os
import struct

from _probe import (
    DMA_BUF_IOCTL_EXPORT_SYNC_FILE, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, DMA_BUF_IOCTL_SYNC,
    DMA_BUF_SET_NAME_B, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_WRITE, FIONBIO, PAGE,
    SIZE, UDMABUF_CREATE_LIST, UDMABUF_FLAGS_CLOEXEC, Res, libc, make_dmabuf, make_memfd, open_fds,
    read_text, run_all, with_dmabuf,
)

# --- bufinfo -----------------------------------------------------------------------

BUFINFO = "/sys/kernel/debug/dma_buf/bufinfo"


def ensure_debugfs():
    try:
        os.close(os.open(BUFINFO, os.O_RDONLY))
        return
    except OSError as e:
        if e.errno != errno.ENOENT or os.geteuid() != 0:
            return
    libc.mount(b"none", b"/sys/kernel/debug", b"debugfs", 0, None)


def is_buffer_line(line):
    head = line.split("\t", 1)[0]
    return len(head) >= 8 and head.isdigit() and "\t" in line


def is_footer(line):
    return line.startswith("Total ") and line.endswith(" bytes") and " objects, " in line


def bufinfo_lines():
    return read_text(BUFINFO).split("\n")


def normalize_buffer_line(line):
    f = line.split("\t")
    if len(f) >= 6:
        f[5] = "<ino>"
    return "\t".join(f)


def own_block(fd, lines=None):
    """The bufinfo lines of the buffer behind fd: its buffer line (ino shown as
    <ino>) and every line up to the next buffer line or the footer."""
    ino = os.fstat(fd).st_ino
    lines = bufinfo_lines() if lines is None else lines
    out = None
    for line in lines:
        if out is not None:
            if is_buffer_line(line) or is_footer(line):
                break
            out.append(line)
        elif is_buffer_line(line) and line.split("\t")[5].strip() == "%08d" % ino:
            out = [normalize_buffer_line(line)]
    return out


def own_line(fd):
    block = own_block(fd)
    return None if block is None else block[0]


def footer():
    for line in bufinfo_lines():
        if is_footer(line):
            words = line.split()
            return int(words[1]), int(words[3])
    return None


def bufinfo_header(r, memfd, buf):
    lines = bufinfo_lines()
    out = []
    for line in lines:
        if is_buffer_line(line) or is_footer(line):
            break
        out.append(line)
    return out


def bufinfo_readable():
    text = read_text(BUFINFO)
    return {"nonempty": bool(text), "ends_with_newline": text.endswith("\n")}


def bufinfo_block(r, memfd, buf):
    return own_block(buf)


def bufinfo_named(r, memfd, buf):
    fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, b"probe-name\0")
    return own_line(buf)


def bufinfo_name_31(r, memfd, buf):
    fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, b"n" * 31 + b"\0")
    return own_line(buf)


def bufinfo_empty_name(r, memfd, buf):
    fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, b"\0")
    return own_line(buf)


def bufinfo_nonblock(r, memfd, buf):
    fcntl.ioctl(buf, FIONBIO, bytearray(struct.pack("i", 1)))
    return own_line(buf)


def bufinfo_count(r, memfd, buf):
    out = {"initial": own_line(buf).split("\t")[3]}
    d = r.fd(os.dup(buf))
    out["after_dup"] = own_line(buf).split("\t")[3]
    r.close(d)
    m = r.map(mmap.mmap(buf, SIZE))
    out["with_python_mmap"] = own_line(buf).split("\t")[3]
    r.unmap(m)
    out["after_mmap_close"] = own_line(buf).split("\t")[3]
    return out


def export_sync(r, buf, flags):
    arg = bytearray(struct.pack("=Ii", flags, -1))
    fcntl.ioctl(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, arg)
    return r.fd(struct.unpack("=Ii", arg)[1])


def bufinfo_fence(flags_list):
    def step(r, memfd, buf):
        for flags in flags_list:
            sf = export_sync(r, buf, DMA_BUF_SYNC_RW)
            fcntl.ioctl(buf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, bytearray(struct.pack("=Ii", flags, sf)))
        return own_block(buf)
    return step


def bufinfo_export_only(r, memfd, buf):
    export_sync(r, buf, DMA_BUF_SYNC_RW)
    return own_block(buf)


def bufinfo_after_sync(r, memfd, buf):
    fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC, bytearray(struct.pack("=Q", DMA_BUF_SYNC_RW)))
    return own_block(buf)


def bufinfo_order(r, memfd, buf):
    memfd2, buf2 = make_dmabuf(r, 3 * PAGE)
    lines = bufinfo_lines()
    inos = ["%08d" % os.fstat(b).st_ino for b in (buf, buf2)]
    pos = []
    for i, line in enumerate(lines):
        if is_buffer_line(line) and line.split("\t")[5] in inos:
            pos.append((i, inos.index(line.split("\t")[5])))
    order = [which for i, which in sorted(pos)]
    return {"listed": len(order), "newest_first": order == [1, 0]}


def bufinfo_footer(r, memfd, buf):
    before = footer()
    memfd2, buf2 = make_dmabuf(r, 3 * PAGE)
    after = footer()
    r.close(buf2)
    closed = footer()
    lines = bufinfo_lines()
    tail = lines[lines.index(next(l for l in lines if is_footer(l))) - 1:]
    return {"objects_delta": after[0] - before[0], "bytes_delta": after[1] - before[1],
            "after_close_equals_before": closed == before,
            "tail": [("Total <n> objects, <bytes> bytes" if is_footer(l) else l) for l in tail]}


def bufinfo_released_after_close(r, memfd, buf):
    ino = "%08d" % os.fstat(buf).st_ino

    def listed():
        return any(is_buffer_line(l) and l.split("\t")[5] == ino for l in bufinfo_lines())

    d = r.fd(os.dup(buf))
    r.close(buf)
    listed_with_dup = listed()
    before = open_fds()
    m = r.map(mmap.mmap(d, SIZE))
    hidden = sorted(open_fds() - before)   # Python's mmap keeps its own dup of the fd
    r.close(d)
    for h in hidden:                       # drop it: the mapping is then the only reference
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, h)
        os.close(null)
    listed_with_mapping_only = listed()
    count_with_mapping_only = [l.split("\t")[3] for l in bufinfo_lines()
                               if is_buffer_line(l) and l.split("\t")[5] == ino]
    r.unmap(m)
    return {"listed_with_dup_only": listed_with_dup,
            "listed_with_mapping_only": listed_with_mapping_only,
            "count_with_mapping_only": count_with_mapping_only,
            "listed_after_everything_closed": listed()}


def bufinfo_list_buffer():
    with Res() as r:
        dev = r.fd(os.open("/dev/udmabuf", os.O_RDWR))
        a, b = make_memfd(r), make_memfd(r, 3 * PAGE)
        arg = bytearray(struct.pack("=II", 0, 2))
        arg += struct.pack("=IIQQ", a, 0, 0, SIZE) + struct.pack("=IIQQ", b, 0, PAGE, 2 * PAGE)
        buf = r.fd(fcntl.ioctl(dev, UDMABUF_CREATE_LIST, arg))
        return own_line(buf)


# --- /proc/self/maps -------------------------------------------------------------


def maps_lines():
    return read_text("/proc/self/maps").splitlines()


def maps_entry(before, after):
    """The shared mapping that appeared in /proc/self/maps between two reads."""
    new = [l for l in after if l not in set(before) and l.split()[1].endswith("s")]
    if len(new) != 1:
        return {"new_shared_mappings": len(new)}
    f = new[0].split(None, 5)
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    return {"len": hi - lo, "perms": f[1], "offset": f[2], "_inode": int(f[4]),
            "path": f[5] if len(f) > 5 else ""}


def maps_case(length=SIZE, offset=0, prot=mmap.PROT_READ | mmap.PROT_WRITE, name=None,
              rename=None):
    def step(r, memfd, buf):
        if name is not None:
            fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, name)
        before = maps_lines()
        r.map(mmap.mmap(buf, length, mmap.MAP_SHARED, prot, offset=offset))
        if rename is not None:
            fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, rename)
        e = maps_entry(before, maps_lines())
        if "_inode" in e:
            e["inode_is_dmabuf_ino"] = e.pop("_inode") == os.fstat(buf).st_ino
        return e
    return step


def main():
    ensure_debugfs()
    steps = [
        ("bufinfo_readable", bufinfo_readable),
        ("bufinfo_header", with_dmabuf(bufinfo_header)),
        ("bufinfo_block", with_dmabuf(bufinfo_block)),
        ("bufinfo_block_cloexec_buffer", with_dmabuf(bufinfo_block, flags=UDMABUF_FLAGS_CLOEXEC)),
        ("bufinfo_named", with_dmabuf(bufinfo_named)),
        ("bufinfo_name_31", with_dmabuf(bufinfo_name_31)),
        ("bufinfo_empty_name", with_dmabuf(bufinfo_empty_name)),
        ("bufinfo_nonblock", with_dmabuf(bufinfo_nonblock)),
        ("bufinfo_count", with_dmabuf(bufinfo_count)),
        ("bufinfo_export_only", with_dmabuf(bufinfo_export_only)),
        ("bufinfo_after_sync", with_dmabuf(bufinfo_after_sync)),
        ("bufinfo_fence_import_write", with_dmabuf(bufinfo_fence([DMA_BUF_SYNC_WRITE]))),
        ("bufinfo_fence_import_read", with_dmabuf(bufinfo_fence([DMA_BUF_SYNC_READ]))),
        ("bufinfo_fence_import_rw", with_dmabuf(bufinfo_fence([DMA_BUF_SYNC_RW]))),
        ("bufinfo_fence_import_read_then_write",
         with_dmabuf(bufinfo_fence([DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE]))),
        ("bufinfo_fence_import_write_twice",
         with_dmabuf(bufinfo_fence([DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_WRITE]))),
        ("bufinfo_order", with_dmabuf(bufinfo_order)),
        ("bufinfo_footer", with_dmabuf(bufinfo_footer)),
        ("bufinfo_released_after_close", with_dmabuf(bufinfo_released_after_close)),
        ("bufinfo_list_buffer", bufinfo_list_buffer),
        ("maps_rw", with_dmabuf(maps_case())),
        ("maps_read_only", with_dmabuf(maps_case(prot=mmap.PROT_READ))),
        ("maps_offset_page_1", with_dmabuf(maps_case(length=PAGE, offset=PAGE))),
        ("maps_named", with_dmabuf(maps_case(name=b"probe-name\0"))),
        ("maps_renamed_after_mmap", with_dmabuf(maps_case(name=b"old\0", rename=b"new\0"))),
    ]
    run_all(steps)


if __name__ == "__main__":
    main()
