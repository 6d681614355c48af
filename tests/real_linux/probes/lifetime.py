"""Probe: lifetimes and closing order around a udmabuf dma-buf.

dup'ed dma-buf fds, closing the fd while an mmap lives, closing the memfd or
/dev/udmabuf while the dma-buf lives, seals on the memfd while its pages are
pinned, dup2 over the last dma-buf fd.

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  No raw fd numbers: only relations.
Standard library only.  On real Linux /dev/udmabuf needs root.
"""
import fcntl
import mmap
import os
import struct

from _probe import (
    DMA_BUF_IOCTL_SYNC, DMA_BUF_SET_NAME_B, DMA_BUF_SYNC_RW, F_ADD_SEALS, F_GET_SEALS,
    F_SEAL_WRITE, PAGE, SIZE, Res, call, cloexec, fdinfo_field, link, lowest_free, make_dmabuf,
    open_fds, run_all, udmabuf_create, with_dmabuf,
)

# --- helpers -----------------------------------------------------------------


def fd_count():
    return len(open_fds())


def hide_python_mmap_fd(r, buf, length):
    """mmap buf with Python's mmap, which keeps its own dup of the fd; return the
    mapping and that hidden fd number."""
    before = open_fds()
    m = r.map(mmap.mmap(buf, length))
    hidden = sorted(open_fds() - before)
    return m, hidden


def drop_hidden(hidden):
    """Point the hidden fds at /dev/null: the mapping is then the only reference."""
    for h in hidden:
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, h)
        os.close(null)


def dup_close_original(r, memfd, buf):
    d = r.fd(os.dup(buf))
    r.close(buf)
    m = r.map(mmap.mmap(d, SIZE))
    return {"size": os.fstat(d).st_size, "contents_equal_memfd": m[:] == os.pread(memfd, SIZE, 0),
            "link": link(d), "sync": fcntl.ioctl(d, DMA_BUF_IOCTL_SYNC,
                                                 bytearray(struct.pack("=Q", DMA_BUF_SYNC_RW)))}


def dup_close_dup(r, memfd, buf):
    d = r.fd(os.dup(buf))
    r.close(d)
    return {"size": os.fstat(buf).st_size, "fdinfo_count": fdinfo_field(buf, "count"),
            "closed_dup_is_closed": call(os.fstat, d) == "EBADF"}


def python_mmap_holds_extra_fd(r, memfd, buf):
    before = fd_count()
    m = r.map(mmap.mmap(buf, SIZE))
    during = fd_count()
    r.unmap(m)
    return {"extra_fds_while_mapped": during - before, "extra_fds_after_close": fd_count() - before}


def mmap_survives_fd_close(r, memfd, buf):
    m = r.map(mmap.mmap(buf, SIZE))
    r.close(buf)
    ok_read = m[:] == os.pread(memfd, SIZE, 0)
    m[0:5] = b"AFTER"
    return {"read_after_close": ok_read, "memfd_sees_write_after_close": os.pread(memfd, 5, 0) == b"AFTER",
            "fd_is_closed": call(os.fstat, buf) == "EBADF"}


def mmap_survives_fd_close_via_dup(r, memfd, buf):
    # Python's mmap object keeps its own dup of the fd: drop it too, by dup2'ing /dev/null over it
    m, hidden = hide_python_mmap_fd(r, buf, SIZE)
    hidden_is_dmabuf = [link(h) == "/dmabuf:" for h in hidden]
    r.close(buf)
    drop_hidden(hidden)
    ok_read = m[:] == os.pread(memfd, SIZE, 0)
    m[0:5] = b"NOFDS"
    return {"hidden_fds_are_dmabuf": hidden_is_dmabuf, "read_with_no_fd_left": ok_read,
            "memfd_sees_write": os.pread(memfd, 5, 0) == b"NOFDS"}


def memfd_closed_mmap_reads(r, memfd, buf):
    saved = os.pread(memfd, SIZE, 0)
    r.close(memfd)
    m = r.map(mmap.mmap(buf, SIZE))
    same = m[:] == saved
    m[0:4] = b"GONE"
    return {"contents_equal_old_memfd": same, "write_read_back": m[0:4] == b"GONE",
            "size": os.fstat(buf).st_size}


def memfd_closed_mappings_coherent(r, memfd, buf):
    mm = r.map(mmap.mmap(memfd, SIZE))
    r.close(memfd)
    m = r.map(mmap.mmap(buf, SIZE))
    mm[10:14] = b"FROM"
    seen_in_dmabuf = m[10:14] == b"FROM"
    m[PAGE:PAGE + 4] = b"BACK"
    return {"memfd_mapping_write_seen_in_dmabuf": seen_in_dmabuf,
            "dmabuf_write_seen_in_memfd_mapping": mm[PAGE:PAGE + 4] == b"BACK"}


def memfd_and_dev_closed_usable():
    with Res() as r:
        memfd, buf = make_dmabuf(r)     # /dev/udmabuf is already closed here
        saved = os.pread(memfd, SIZE, 0)
        r.close(memfd)
        m = r.map(mmap.mmap(buf, SIZE))
        return {"size": os.fstat(buf).st_size, "contents": m[:] == saved,
                "sync": fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC, bytearray(struct.pack("=Q", 3))),
                "set_name": fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, bytearray(b"orphan\0")),
                "link": link(buf)}


def memfd_grow(r, memfd, buf):
    saved = os.pread(memfd, SIZE, 0)
    os.ftruncate(memfd, 4 * SIZE)
    m = r.map(mmap.mmap(buf, SIZE))
    big = call(mmap.mmap, buf, 2 * SIZE)
    if isinstance(big, mmap.mmap):
        r.map(big)
        big = len(big)
    return {"dmabuf_size": os.fstat(buf).st_size, "contents_unchanged": m[:] == saved,
            "mmap_memfd_new_size": big}


def memfd_shrink(r, memfd, buf):
    os.ftruncate(memfd, PAGE)


def memfd_seal_write_while_alive(r, memfd, buf):
    return fcntl.fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE)


def memfd_seal_write_after_close(r, memfd, buf):
    r.close(buf)
    res = fcntl.fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE)
    return {"add_seals": res, "seals": fcntl.fcntl(memfd, F_GET_SEALS)}


def memfd_seal_write_with_dup_alive(r, memfd, buf):
    d = r.fd(os.dup(buf))
    r.close(buf)
    return fcntl.fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE)


def memfd_seal_write_with_only_mapping_alive(r, memfd, buf):
    m, hidden = hide_python_mmap_fd(r, buf, SIZE)
    r.close(buf)
    drop_hidden(hidden)
    return {"hidden_fds": len(hidden),
            "add_seal_write": call(fcntl.fcntl, memfd, F_ADD_SEALS, F_SEAL_WRITE)}


def dup2_over_last_dmabuf_fd(r, memfd, buf):
    rd, wr = os.pipe()
    r.fd(rd)
    r.fd(wr)
    res = os.dup2(rd, buf)
    return {"returns_newfd": res == buf, "link_is_pipe": link(buf).startswith("pipe:"),
            "memfd_seal_write_now": call(fcntl.fcntl, memfd, F_ADD_SEALS, F_SEAL_WRITE)}


def dup2_dmabuf_over_pipe(r, memfd, buf):
    rd, wr = os.pipe()
    r.fd(rd)
    r.fd(wr)
    res = os.dup2(buf, rd)
    return {"returns_newfd": res == rd, "link": link(rd), "size": os.fstat(rd).st_size,
            "fdinfo_count": fdinfo_field(buf, "count"),
            "cloexec": cloexec(rd)}


def close_dmabuf_twice(r, memfd, buf):
    r.close(buf)
    os.close(buf)


def dmabuf_number_reused(r, memfd, buf):
    # fill every hole below the dma-buf's number first, so that it becomes the lowest free one
    while lowest_free() < buf:
        r.fd(os.open("/dev/null", os.O_RDONLY))
    r.close(buf)
    fd = r.fd(os.open("/dev/null", os.O_RDONLY))
    return {"reused": fd == buf}


def recreate_after_close(r, memfd, buf):
    # a second dma-buf from the same memfd after the first one is gone
    r.close(buf)
    dev = r.fd(os.open("/dev/udmabuf", os.O_RDWR))
    low = lowest_free()
    b2 = r.fd(udmabuf_create(dev, memfd, 0, SIZE))
    return {"is_lowest_free": b2 == low, "size": os.fstat(b2).st_size}


def main():
    steps = [
        ("dup_close_original", with_dmabuf(dup_close_original)),
        ("dup_close_dup", with_dmabuf(dup_close_dup)),
        ("python_mmap_holds_extra_fd", with_dmabuf(python_mmap_holds_extra_fd)),
        ("mmap_survives_fd_close", with_dmabuf(mmap_survives_fd_close)),
        ("mmap_survives_all_fds_closed", with_dmabuf(mmap_survives_fd_close_via_dup)),
        ("memfd_closed_mmap_reads", with_dmabuf(memfd_closed_mmap_reads)),
        ("memfd_closed_mappings_coherent", with_dmabuf(memfd_closed_mappings_coherent)),
        ("memfd_and_dev_closed_usable", memfd_and_dev_closed_usable),
        ("memfd_grow_while_dmabuf_alive", with_dmabuf(memfd_grow)),
        ("memfd_shrink_while_dmabuf_alive", with_dmabuf(memfd_shrink)),
        ("memfd_seal_write_while_dmabuf_alive", with_dmabuf(memfd_seal_write_while_alive)),
        ("memfd_seal_write_after_dmabuf_closed", with_dmabuf(memfd_seal_write_after_close)),
        ("memfd_seal_write_with_dup_alive", with_dmabuf(memfd_seal_write_with_dup_alive)),
        ("memfd_seal_write_with_only_mapping_alive",
         with_dmabuf(memfd_seal_write_with_only_mapping_alive)),
        ("dup2_over_last_dmabuf_fd", with_dmabuf(dup2_over_last_dmabuf_fd)),
        ("dup2_dmabuf_over_pipe", with_dmabuf(dup2_dmabuf_over_pipe)),
        ("close_dmabuf_twice", with_dmabuf(close_dmabuf_twice)),
        ("dmabuf_number_reused", with_dmabuf(dmabuf_number_reused)),
        ("recreate_after_close", with_dmabuf(recreate_after_close)),
    ]
    run_all(steps)


if __name__ == "__main__":
    main()
