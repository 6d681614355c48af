"""Probe: the sync_file ioctls (linux/sync_file.h) on sync files of a udmabuf dma-buf.

SYNC_IOC_MERGE, SYNC_IOC_FILE_INFO and SYNC_IOC_SET_DEADLINE on sync files exported
with DMA_BUF_IOCTL_EXPORT_SYNC_FILE (READ and WRITE: a udmabuf has no unsignalled
fences, so each export holds the signalled stub fence), on merges of them (of two, of
one with itself, of a merge), their names, FILE_INFO shapes and errors, unknown ioctls,
and the merged file itself (fd flags, fstat, fdinfo, link, poll, import into a buffer).

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  No raw fd numbers, contexts or timestamps: only
relations ("timestamp_nonzero") and names with a fence context shown as <context>.
Standard library only.  On real Linux /dev/udmabuf needs root.
"""
import ctypes
import fcntl
import os
import re
import resource
import select
import stat
import struct

from _probe import (
    DMA_BUF_IOCTL_EXPORT_SYNC_FILE, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, DMA_BUF_IOCTL_SYNC,
    DMA_BUF_SYNC_READ, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_WRITE, Res, call, cloexec, closed_fd, fdinfo,
    ioc, link, lowest_free, make_dmabuf, run_all, with_dmabuf,
)

# linux/sync_file.h
# struct sync_merge_data {char name[32]; s32 fd2; s32 fence; u32 flags; u32 pad;}     48 bytes
# struct sync_fence_info {char obj_name[32]; char driver_name[32]; s32 status; u32 flags;
#                         u64 timestamp_ns;}                                        80 bytes
# struct sync_file_info {char name[32]; s32 status; u32 flags; u32 num_fences; u32 pad;
#                        u64 sync_fence_info;}                                      56 bytes
# struct sync_set_deadline {u64 deadline_ns; u64 pad;}                              16 bytes
MERGE_FMT = "=32siiII"
FENCE_INFO_FMT = "=32s32siIQ"
FILE_INFO_FMT = "=32siIIIQ"
DEADLINE_FMT = "=QQ"
SYNC_IOC_MERGE = ioc(3, ">", 3, 48)          # 0xC0303E03
SYNC_IOC_FILE_INFO = ioc(3, ">", 4, 56)      # 0xC0383E04
SYNC_IOC_SET_DEADLINE = ioc(1, ">", 5, 16)   # 0x40103E05
FENCE_INFO_SIZE = struct.calcsize(FENCE_INFO_FMT)


def cstr(b):
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


def norm_name(name):
    """A sync file name "<driver>-<timeline><context>-<seqno>": a context other than 0
    (the stub's) is allocated at run time, so it is shown as <context>."""
    m = re.match(r"^(.*?)(\d+)-(-?\d+)$", name)
    if m and m.group(2) != "0":
        return "%s<context>-%s" % (m.group(1), m.group(3))
    return name


def export(r, buf, flags):
    arg = bytearray(struct.pack("=Ii", flags, -1))
    fcntl.ioctl(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, arg)
    return r.fd(struct.unpack("=Ii", arg)[1])


def merge(r, fd, fd2, name=b"", flags=0, pad=0):
    """SYNC_IOC_MERGE; returns (new fd, the struct as the kernel left it)."""
    arg = bytearray(struct.pack(MERGE_FMT, name, fd2, -1, flags, pad))
    fcntl.ioctl(fd, SYNC_IOC_MERGE, arg)
    out = struct.unpack(MERGE_FMT, arg)
    return r.fd(out[2]), out


class FenceArray:
    """A user buffer of n struct sync_fence_info, prefilled with 0xa5."""

    def __init__(self, n):
        self.n = n
        self.buf = ctypes.create_string_buffer(b"\xa5" * (FENCE_INFO_SIZE * max(n, 1)))

    @property
    def addr(self):
        return ctypes.addressof(self.buf)

    def entries(self):
        raw = self.buf.raw
        out = []
        for i in range(self.n):
            chunk = raw[i * FENCE_INFO_SIZE:(i + 1) * FENCE_INFO_SIZE]
            if chunk == b"\xa5" * FENCE_INFO_SIZE:
                out.append("untouched")
                continue
            obj, drv, status, flags, ts = struct.unpack(FENCE_INFO_FMT, chunk)
            out.append({"obj_name": cstr(obj), "driver_name": cstr(drv), "status": status,
                        "flags": flags, "timestamp_nonzero": ts != 0})
        return out

    def timestamps(self):
        return [struct.unpack_from(FENCE_INFO_FMT, self.buf.raw, i * FENCE_INFO_SIZE)[4]
                for i in range(self.n)]


def file_info_raw(fd, num_fences=0, ptr=0, flags=0, pad=0, name=b""):
    arg = bytearray(struct.pack(FILE_INFO_FMT, name, 7, flags, num_fences, pad, ptr))
    fcntl.ioctl(fd, SYNC_IOC_FILE_INFO, arg)
    name, status, flags, n, pad, ptr_out = struct.unpack(FILE_INFO_FMT, arg)
    return {"name": norm_name(cstr(name)), "status": status, "flags": flags, "num_fences": n,
            "pad": pad, "ptr_unchanged": ptr_out == ptr}


def file_info(fd, n=None):
    """FILE_INFO with a count query first, then with an array of that size (or n)."""
    count = file_info_raw(fd)
    arr = FenceArray(count["num_fences"] if n is None else n)
    full = file_info_raw(fd, arr.n, arr.addr)
    full["fences"] = arr.entries()
    return {"count_query": count, "full": full}


def fence_timestamps(fd):
    arr = FenceArray(file_info_raw(fd)["num_fences"])
    file_info_raw(fd, arr.n, arr.addr)
    return arr.timestamps()


def new_fd_props(fd, low):
    st = os.fstat(fd)
    return {"is_lowest_free": fd == low, "cloexec": cloexec(fd), "link": link(fd),
            "F_GETFL": oct(fcntl.fcntl(fd, fcntl.F_GETFL)), "mode": oct(st.st_mode),
            "S_IFMT": oct(stat.S_IFMT(st.st_mode)), "size": st.st_size}


# --- FILE_INFO on exported sync files ---------------------------------------------


def info_export(flags, n=None):
    def fn(r, memfd, buf):
        return file_info(export(r, buf, flags), n)
    return fn


def info_fill_extra_slots(r, memfd, buf):
    """num_fences larger than needed: the extra entries are not written."""
    return file_info(export(r, buf, DMA_BUF_SYNC_READ), 3)["full"]


def info_struct(r, memfd, buf, **kw):
    return file_info_raw(export(r, buf, DMA_BUF_SYNC_RW), **kw)


def info_kw(**kw):
    return lambda r, memfd, buf: info_struct(r, memfd, buf, **kw)


def info_error_leaves_arg(r, memfd, buf):
    sf = export(r, buf, DMA_BUF_SYNC_RW)
    arg = bytearray(struct.pack(FILE_INFO_FMT, b"user", 7, 1, 0, 0, 0))
    res = call(fcntl.ioctl, sf, SYNC_IOC_FILE_INFO, arg)
    return {"ioctl": res, "arg_unchanged": bytes(arg) == struct.pack(FILE_INFO_FMT, b"user", 7,
                                                                     1, 0, 0, 0)}


def info_bad_arg_pointer(r, memfd, buf):
    return fcntl.ioctl(export(r, buf, DMA_BUF_SYNC_RW), SYNC_IOC_FILE_INFO, 16)


def info_bad_array_pointer(ptr):
    def fn(r, memfd, buf):
        sf = export(r, buf, DMA_BUF_SYNC_RW)
        arg = bytearray(struct.pack(FILE_INFO_FMT, b"", 7, 0, 1, 0, ptr))
        res = call(fcntl.ioctl, sf, SYNC_IOC_FILE_INFO, arg)
        return {"ioctl": res, "arg_unchanged":
                bytes(arg) == struct.pack(FILE_INFO_FMT, b"", 7, 0, 1, 0, ptr)}
    return fn


def info_bytes_arg(r, memfd, buf):
    sf = export(r, buf, DMA_BUF_SYNC_RW)
    res = fcntl.ioctl(sf, SYNC_IOC_FILE_INFO, struct.pack(FILE_INFO_FMT, b"", 0, 0, 0, 0, 0))
    name, status, flags, n, pad, ptr = struct.unpack(FILE_INFO_FMT, res)
    return {"type": type(res).__name__, "name": cstr(name), "status": status, "num_fences": n}


def info_stub_timestamps(r, memfd, buf):
    """Every export of a fence-less buffer holds the same stub fence."""
    a = fence_timestamps(export(r, buf, DMA_BUF_SYNC_READ))
    b = fence_timestamps(export(r, buf, DMA_BUF_SYNC_WRITE))
    memfd2, buf2 = make_dmabuf(r)
    c = fence_timestamps(export(r, buf2, DMA_BUF_SYNC_RW))
    return {"same_buffer_equal": a == b, "other_buffer_equal": a == c, "nonzero": a[0] != 0}


def info_via_dup(r, memfd, buf):
    sf = export(r, buf, DMA_BUF_SYNC_RW)
    return file_info(r.fd(os.dup(sf)))


# --- MERGE ---------------------------------------------------------------------------


def merge_two(r, memfd, buf):
    a = export(r, buf, DMA_BUF_SYNC_READ)
    b = export(r, buf, DMA_BUF_SYNC_WRITE)
    low = lowest_free()
    m, out = merge(r, a, b, b"merged")
    return {"struct": {"name": cstr(out[0]), "fd2_unchanged": out[1] == b, "flags": out[3],
                       "pad": out[4]},
            "new_fd": new_fd_props(m, low), "differs_from_inputs": m not in (a, b),
            "info": file_info(m), "inputs_after": [file_info_raw(a), file_info_raw(b)]}


def merge_two_buffers(r, memfd, buf):
    memfd2, buf2 = make_dmabuf(r)
    m, out = merge(r, export(r, buf, DMA_BUF_SYNC_RW), export(r, buf2, DMA_BUF_SYNC_RW),
                   b"two-buffers")
    return file_info(m)


def merge_self(r, memfd, buf):
    a = export(r, buf, DMA_BUF_SYNC_RW)
    m, out = merge(r, a, a, b"self")
    return file_info(m)


def merge_timestamps(r, memfd, buf):
    """A merge of signalled fences: a new signalled fence with the latest timestamp."""
    a = export(r, buf, DMA_BUF_SYNC_READ)
    m, out = merge(r, a, a, b"ts")
    m2, out = merge(r, m, a, b"ts2")
    ta, tm, tm2 = fence_timestamps(a), fence_timestamps(m), fence_timestamps(m2)
    return {"merge_equals_input": tm == ta, "merge_of_merge_equals_input": tm2 == ta}


def merge_unnamed(r, memfd, buf):
    """An empty name: the merged fence's generated name."""
    a = export(r, buf, DMA_BUF_SYNC_RW)
    m, out = merge(r, a, a, b"")
    return {"struct_name": cstr(out[0]), "info": file_info(m)}


def merge_unnamed_names(r, memfd, buf):
    """Unnamed merges get a fence name "<driver>-<timeline><context>-<seqno>" cut to 31
    bytes: each merge of signalled fences is a new stub of its own context, but the cut
    hides it, so their names are equal."""
    a = export(r, buf, DMA_BUF_SYNC_RW)
    m1, out = merge(r, a, a, b"")
    m2, out = merge(r, a, a, b"")
    m3, out = merge(r, m1, m1, b"")

    def raw_name(fd):
        arg = bytearray(struct.pack(FILE_INFO_FMT, b"", 0, 0, 0, 0, 0))
        fcntl.ioctl(fd, SYNC_IOC_FILE_INFO, arg)
        return cstr(struct.unpack(FILE_INFO_FMT, arg)[0])

    n1, n2, n3 = raw_name(m1), raw_name(m2), raw_name(m3)
    return {"m1_m2_equal": n1 == n2, "merge_of_merge_equal": n3 == n1, "length": len(n1)}


def info_name_field_tail(r, memfd, buf):
    """FILE_INFO writes the name and its NUL into the user's name field; the bytes after
    the NUL stay as the user left them."""
    a = export(r, buf, DMA_BUF_SYNC_RW)
    m, out = merge(r, a, a, b"ab")
    arg = bytearray(struct.pack(FILE_INFO_FMT, b"X" * 32, 0, 0, 0, 0, 0))
    fcntl.ioctl(m, SYNC_IOC_FILE_INFO, arg)
    return struct.unpack(FILE_INFO_FMT, arg)[0].decode("latin-1")


def merge_name(name):
    def fn(r, memfd, buf):
        a = export(r, buf, DMA_BUF_SYNC_RW)
        m, out = merge(r, a, a, name)
        return {"struct_name": out[0].decode("latin-1"),
                "info_name": file_info_raw(m)["name"]}
    return fn


def merge_of_merge(r, memfd, buf):
    a = export(r, buf, DMA_BUF_SYNC_READ)
    b = export(r, buf, DMA_BUF_SYNC_WRITE)
    m1, out = merge(r, a, b, b"first")
    m2, out = merge(r, m1, a, b"second")
    m3, out = merge(r, m2, m1, b"third")
    return {"second": file_info(m2), "third": file_info(m3), "first_after": file_info_raw(m1)}


def merge_struct(**kw):
    def fn(r, memfd, buf):
        a = export(r, buf, DMA_BUF_SYNC_RW)
        low = lowest_free()
        fd2 = kw.get("fd2", a)
        arg = bytearray(struct.pack(MERGE_FMT, b"x", fd2, -1, kw.get("flags", 0),
                                    kw.get("pad", 0)))
        before = bytes(arg)
        res = call(fcntl.ioctl, a, SYNC_IOC_MERGE, arg)
        out = struct.unpack(MERGE_FMT, arg)
        if res == 0:
            r.fd(out[2])
        return {"ioctl": res, "arg_unchanged": bytes(arg) == before,
                "no_fd_allocated": lowest_free() == low}
    return fn


def merge_fd2(kind):
    def fn(r, memfd, buf):
        a = export(r, buf, DMA_BUF_SYNC_RW)
        if kind == "closed":
            fd2 = closed_fd()
        elif kind == "minus_one":
            fd2 = -1
        elif kind == "dmabuf":
            fd2 = buf
        elif kind == "memfd":
            fd2 = memfd
        elif kind == "pipe":
            rd, wr = os.pipe()
            r.fd(rd)
            r.fd(wr)
            fd2 = rd
        else:
            fd2 = r.fd(os.open("/dev/null", os.O_RDONLY))
        low = lowest_free()
        arg = bytearray(struct.pack(MERGE_FMT, b"x", fd2, -1, 0, 0))
        before = bytes(arg)
        res = call(fcntl.ioctl, a, SYNC_IOC_MERGE, arg)
        if res == 0:
            r.fd(struct.unpack(MERGE_FMT, arg)[2])
        return {"ioctl": res, "arg_unchanged": bytes(arg) == before,
                "no_fd_allocated": lowest_free() == low}
    return fn


def merge_bad_pointer(r, memfd, buf):
    a = export(r, buf, DMA_BUF_SYNC_RW)
    low = lowest_free()
    return {"ioctl": call(fcntl.ioctl, a, SYNC_IOC_MERGE, 16),
            "no_fd_allocated": lowest_free() == low}


def merge_emfile(r, memfd, buf):
    a = export(r, buf, DMA_BUF_SYNC_RW)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free(), hard))
    try:
        # fd2 is not a sync file either: the fd is allocated first
        emfile = call(fcntl.ioctl, a, SYNC_IOC_MERGE,
                      bytearray(struct.pack(MERGE_FMT, b"x", -1, -1, 0, 0)))
        emfile_flags = call(fcntl.ioctl, a, SYNC_IOC_MERGE,
                            bytearray(struct.pack(MERGE_FMT, b"x", a, -1, 1, 0)))
        emfile_badptr = call(fcntl.ioctl, a, SYNC_IOC_MERGE, 16)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    m, out = merge(r, a, a, b"retry")
    return {"fd2_bad": emfile, "flags_bad": emfile_flags, "bad_pointer": emfile_badptr,
            "retry": file_info_raw(m)["name"]}


def merged_file(r, memfd, buf):
    a = export(r, buf, DMA_BUF_SYNC_RW)
    m, out = merge(r, a, a, b"props")
    p = select.poll()
    p.register(m, select.POLLIN | select.POLLOUT)
    return {"fdinfo": fdinfo(m), "poll": p.poll(0)[0][1], "read": call(os.read, m, 8),
            "write": call(os.write, m, b"x"), "lseek": call(os.lseek, m, 0, os.SEEK_SET),
            "dma_buf_sync": call(fcntl.ioctl, m, DMA_BUF_IOCTL_SYNC,
                                 bytearray(struct.pack("=Q", DMA_BUF_SYNC_RW)))}


def merged_import(r, memfd, buf):
    """A merged sync file imported into a buffer, then the buffer exported again."""
    memfd2, buf2 = make_dmabuf(r)
    a = export(r, buf, DMA_BUF_SYNC_RW)
    m, out = merge(r, a, a, b"to-import")
    res = {}
    for name, flags in (("read", DMA_BUF_SYNC_READ), ("write", DMA_BUF_SYNC_WRITE)):
        res["import_" + name] = call(fcntl.ioctl, buf2, DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
                                     bytearray(struct.pack("=Ii", flags, m)))
    res["export_after"] = file_info(export(r, buf2, DMA_BUF_SYNC_RW))
    res["sync_after"] = call(fcntl.ioctl, buf2, DMA_BUF_IOCTL_SYNC,
                             bytearray(struct.pack("=Q", DMA_BUF_SYNC_RW)))
    return res


def merge_after_close_of_source(r, memfd, buf):
    """The merged file outlives its sources and the buffer."""
    with Res() as inner:
        memfd2, buf2 = make_dmabuf(inner)
        a = export(inner, buf2, DMA_BUF_SYNC_RW)
        m, out = merge(inner, a, a, b"survivor")
        inner.fds.remove(m)
    r.fd(m)
    return file_info(m)


# --- SET_DEADLINE ----------------------------------------------------------------------


def deadline(value, pad=0, merged=False):
    def fn(r, memfd, buf):
        sf = export(r, buf, DMA_BUF_SYNC_RW)
        if merged:
            sf, out = merge(r, sf, sf, b"dl")
        arg = bytearray(struct.pack(DEADLINE_FMT, value, pad))
        res = fcntl.ioctl(sf, SYNC_IOC_SET_DEADLINE, arg)
        return {"ioctl": res, "arg_unchanged": bytes(arg) == struct.pack(DEADLINE_FMT, value, pad),
                "info_after": file_info_raw(sf)}
    return fn


def deadline_bad_pointer(r, memfd, buf):
    return fcntl.ioctl(export(r, buf, DMA_BUF_SYNC_RW), SYNC_IOC_SET_DEADLINE, 16)


# --- other ioctl numbers -----------------------------------------------------------------


def ioctl_on_sync_file(cmd, size):
    def fn(r, memfd, buf):
        return fcntl.ioctl(export(r, buf, DMA_BUF_SYNC_RW), cmd, bytearray(size))
    return fn


def sync_ioctl_on_dmabuf(cmd, size):
    def fn(r, memfd, buf):
        return fcntl.ioctl(buf, cmd, bytearray(size))
    return fn


def main():
    R, W, RW = DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_RW
    steps = [
        ("info_export_read", with_dmabuf(info_export(R))),
        ("info_export_write", with_dmabuf(info_export(W))),
        ("info_export_rw", with_dmabuf(info_export(RW))),
        ("info_fill_extra_slots", with_dmabuf(info_fill_extra_slots)),
        ("info_count_query_keeps_pointer", with_dmabuf(info_kw(num_fences=0, ptr=16))),
        ("info_flags_nonzero", with_dmabuf(info_kw(flags=1))),
        ("info_flags_bit31", with_dmabuf(info_kw(flags=1 << 31))),
        ("info_pad_nonzero", with_dmabuf(info_kw(pad=1))),
        ("info_flags_nonzero_with_array", with_dmabuf(info_kw(flags=1, num_fences=1, ptr=16))),
        ("info_user_name_ignored", with_dmabuf(info_kw(name=b"ignored"))),
        ("info_error_leaves_arg", with_dmabuf(info_error_leaves_arg)),
        ("info_bad_arg_pointer", with_dmabuf(info_bad_arg_pointer)),
        ("info_array_pointer_16", with_dmabuf(info_bad_array_pointer(16))),
        ("info_array_pointer_null", with_dmabuf(info_bad_array_pointer(0))),
        ("info_bytes_arg", with_dmabuf(info_bytes_arg)),
        ("info_stub_timestamps", with_dmabuf(info_stub_timestamps)),
        ("info_via_dup", with_dmabuf(info_via_dup)),
        ("merge_two", with_dmabuf(merge_two)),
        ("merge_two_buffers", with_dmabuf(merge_two_buffers)),
        ("merge_self", with_dmabuf(merge_self)),
        ("merge_timestamps", with_dmabuf(merge_timestamps)),
        ("merge_unnamed", with_dmabuf(merge_unnamed)),
        ("merge_unnamed_names", with_dmabuf(merge_unnamed_names)),
        ("info_name_field_tail", with_dmabuf(info_name_field_tail)),
        ("merge_name_31", with_dmabuf(merge_name(b"n" * 31))),
        ("merge_name_32_truncated", with_dmabuf(merge_name(b"N" * 32))),
        ("merge_name_stops_at_nul", with_dmabuf(merge_name(b"ab\0cd"))),
        ("merge_name_newline", with_dmabuf(merge_name(b"a\nb"))),
        ("merge_of_merge", with_dmabuf(merge_of_merge)),
        ("merge_flags_nonzero", with_dmabuf(merge_struct(flags=1))),
        ("merge_flags_bit31", with_dmabuf(merge_struct(flags=1 << 31))),
        ("merge_pad_nonzero", with_dmabuf(merge_struct(pad=1))),
        ("merge_flags_and_bad_fd2", with_dmabuf(merge_struct(flags=1, fd2=-1))),
        ("merge_fd2_closed", with_dmabuf(merge_fd2("closed"))),
        ("merge_fd2_minus_one", with_dmabuf(merge_fd2("minus_one"))),
        ("merge_fd2_dmabuf", with_dmabuf(merge_fd2("dmabuf"))),
        ("merge_fd2_memfd", with_dmabuf(merge_fd2("memfd"))),
        ("merge_fd2_pipe", with_dmabuf(merge_fd2("pipe"))),
        ("merge_fd2_dev_null", with_dmabuf(merge_fd2("dev_null"))),
        ("merge_bad_pointer", with_dmabuf(merge_bad_pointer)),
        ("merge_emfile", with_dmabuf(merge_emfile)),
        ("merged_file", with_dmabuf(merged_file)),
        ("merged_import", with_dmabuf(merged_import)),
        ("merged_outlives_sources", with_dmabuf(merge_after_close_of_source)),
        ("deadline_zero", with_dmabuf(deadline(0))),
        ("deadline_max", with_dmabuf(deadline((1 << 64) - 1))),
        ("deadline_merged", with_dmabuf(deadline(1000, merged=True))),
        ("deadline_pad_nonzero", with_dmabuf(deadline(0, pad=1))),
        ("deadline_bad_pointer", with_dmabuf(deadline_bad_pointer)),
        ("ioctl_nr0_burned", with_dmabuf(ioctl_on_sync_file(ioc(3, ">", 0, 48), 48))),
        ("ioctl_nr1_burned", with_dmabuf(ioctl_on_sync_file(ioc(3, ">", 1, 48), 48))),
        ("ioctl_nr2_burned", with_dmabuf(ioctl_on_sync_file(ioc(3, ">", 2, 48), 48))),
        ("ioctl_nr6", with_dmabuf(ioctl_on_sync_file(ioc(3, ">", 6, 16), 16))),
        ("ioctl_merge_as_iow", with_dmabuf(ioctl_on_sync_file(ioc(1, ">", 3, 48), 48))),
        ("ioctl_merge_size_40", with_dmabuf(ioctl_on_sync_file(ioc(3, ">", 3, 40), 48))),
        ("ioctl_info_as_ior", with_dmabuf(ioctl_on_sync_file(ioc(2, ">", 4, 56), 56))),
        ("ioctl_deadline_as_iowr", with_dmabuf(ioctl_on_sync_file(ioc(3, ">", 5, 16), 16))),
        ("ioctl_import_on_sync_file",
         with_dmabuf(ioctl_on_sync_file(DMA_BUF_IOCTL_IMPORT_SYNC_FILE, 8))),
        ("merge_on_dmabuf", with_dmabuf(sync_ioctl_on_dmabuf(SYNC_IOC_MERGE, 48))),
        ("info_on_dmabuf", with_dmabuf(sync_ioctl_on_dmabuf(SYNC_IOC_FILE_INFO, 56))),
        ("deadline_on_dmabuf", with_dmabuf(sync_ioctl_on_dmabuf(SYNC_IOC_SET_DEADLINE, 16))),
    ]
    run_all(steps)


if __name__ == "__main__":
    main()
