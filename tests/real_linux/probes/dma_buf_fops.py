"""Probe: dma-buf file operations on a udmabuf dma-buf.

fstat, read/write/pread, lseek, DMA_BUF_IOCTL_SYNC, DMA_BUF_SET_NAME_A/_B,
EXPORT/IMPORT_SYNC_FILE, unknown ioctls, generic ioctls and fcntls,
/proc/self/fdinfo and /proc/self/fd.

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  No raw fd numbers, inode numbers or mount
ids: only relations and normalized text.  Standard library only.  On real
Linux /dev/udmabuf needs root; under mockkernel it runs as a normal user.
"""
import fcntl
import mmap
import os
import stat
import struct

from _probe import (
    DMA_BUF_IOCTL_EXPORT_SYNC_FILE, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, DMA_BUF_IOCTL_SYNC,
    DMA_BUF_SET_NAME_A, DMA_BUF_SET_NAME_B, DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_RW,
    DMA_BUF_SYNC_START, DMA_BUF_SYNC_WRITE, F_GET_SEALS, FIGETBSZ, FIOASYNC, FIOCLEX, FIONBIO,
    FIONCLEX, FIONREAD, FIOQSIZE, FS_IOC_GETFLAGS, PAGE, SIZE, TCGETS, UDMABUF_CREATE,
    UDMABUF_FLAGS_CLOEXEC, call, cloexec, closed_fd, fdinfo, fdinfo_field, ioc, link, lowest_free,
    make_dmabuf, run_all, with_dmabuf,
)

# --- fstat, read, write, lseek -------------------------------------------------


def fstat_(r, memfd, buf):
    st = os.fstat(buf)
    return {"mode": oct(st.st_mode), "S_IFMT": oct(stat.S_IFMT(st.st_mode)),
            "S_ISCHR": stat.S_ISCHR(st.st_mode), "S_ISREG": stat.S_ISREG(st.st_mode),
            "size": st.st_size, "nlink": st.st_nlink, "uid_is_euid": st.st_uid == os.geteuid(),
            "gid_is_egid": st.st_gid == os.getegid(), "rdev": st.st_rdev,
            "blksize": st.st_blksize, "blocks": st.st_blocks,
            "dev_differs_from_memfd": st.st_dev != os.fstat(memfd).st_dev}


def fstat_cloexec_buf(r, memfd, buf):
    st = os.fstat(buf)
    return {"mode": oct(st.st_mode), "size": st.st_size}


def io(fn):
    def step(r, memfd, buf):
        return fn(buf)
    return step


def lseek(offset, whence):
    def step(r, memfd, buf):
        return os.lseek(buf, offset, whence)
    return step


def lseek_pos_after_seek_end(r, memfd, buf):
    res = os.lseek(buf, 0, os.SEEK_END)
    return {"seek_end_returns": res, "fdinfo_pos": fdinfo_field(buf, "pos")}


# --- DMA_BUF_IOCTL_SYNC ----------------------------------------------------------


def sync(flags):
    def step(r, memfd, buf):
        return fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC, bytearray(struct.pack("=Q", flags)))
    return step


def sync_end_after_start(start, end):
    def step(r, memfd, buf):
        s = fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC, bytearray(struct.pack("=Q", start)))
        e = fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC, bytearray(struct.pack("=Q", end | DMA_BUF_SYNC_END)))
        return {"start": s, "end": e}
    return step


def sync_end_after_start_via_other_fd(r, memfd, buf):
    # the START state belongs to the buffer, not to the fd
    d = r.fd(os.dup(buf))
    fcntl.ioctl(d, DMA_BUF_IOCTL_SYNC, bytearray(struct.pack("=Q", DMA_BUF_SYNC_READ)))
    return fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC,
                       bytearray(struct.pack("=Q", DMA_BUF_SYNC_READ | DMA_BUF_SYNC_END)))


def sync_bytes_arg(r, memfd, buf):
    # immutable bytes: fcntl.ioctl returns the (unchanged) buffer copy, not the int
    res = fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC, struct.pack("=Q", DMA_BUF_SYNC_RW))
    return {"type": type(res).__name__, "unchanged": res == struct.pack("=Q", DMA_BUF_SYNC_RW)}


def sync_bad_pointer(r, memfd, buf):
    return fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC, 16)


def sync_sequence(r, memfd, buf):
    # END without START, START twice, END twice: no state is checked
    out = {}
    for name, flags in (("end_first", DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END),
                        ("start", DMA_BUF_SYNC_RW), ("start_again", DMA_BUF_SYNC_RW),
                        ("end", DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END),
                        ("end_again", DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END),
                        ("start_read_end_write_1", DMA_BUF_SYNC_READ),
                        ("start_read_end_write_2", DMA_BUF_SYNC_WRITE | DMA_BUF_SYNC_END)):
        out[name] = call(fcntl.ioctl, buf, DMA_BUF_IOCTL_SYNC, bytearray(struct.pack("=Q", flags)))
    return out


# --- DMA_BUF_SET_NAME ---------------------------------------------------------------


def set_name(cmd, name):
    def step(r, memfd, buf):
        res = fcntl.ioctl(buf, cmd, name)
        return {"returns": res if isinstance(res, int) else type(res).__name__,
                "fdinfo_name": fdinfo_field(buf, "name"), "link": link(buf)}
    return step


def set_name_ptr(cmd, ptr):
    def step(r, memfd, buf):
        return fcntl.ioctl(buf, cmd, ptr)
    return step


def set_name_failure_keeps_old(r, memfd, buf):
    fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, b"first\0")
    res = call(fcntl.ioctl, buf, DMA_BUF_SET_NAME_B, b"x" * 40 + b"\0")
    return {"second": res, "fdinfo_name": fdinfo_field(buf, "name"), "link": link(buf)}


def set_name_replace(r, memfd, buf):
    fcntl.ioctl(buf, DMA_BUF_SET_NAME_A, b"first\0")
    fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, b"second\0")
    return {"fdinfo_name": fdinfo_field(buf, "name"), "link": link(buf)}


def set_name_then_empty(r, memfd, buf):
    fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, b"first\0")
    fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, b"\0")
    return {"fdinfo_name": fdinfo_field(buf, "name"), "fdinfo_has_name_line":
            any(l.startswith("name:") for l in fdinfo(buf)), "link": link(buf)}


def set_name_via_dup_seen_by_original(r, memfd, buf):
    d = r.fd(os.dup(buf))
    fcntl.ioctl(d, DMA_BUF_SET_NAME_B, b"viadup\0")
    return {"fdinfo_name": fdinfo_field(buf, "name"), "link": link(buf)}


def set_name_while_mmapped(r, memfd, buf):
    r.map(mmap.mmap(buf, SIZE))
    return {"set_name": call(fcntl.ioctl, buf, DMA_BUF_SET_NAME_B, bytearray(b"mapped\0")),
            "fdinfo_name": fdinfo_field(buf, "name")}


def name_initial(r, memfd, buf):
    return {"fdinfo_name": fdinfo_field(buf, "name"), "link": link(buf)}


# --- EXPORT / IMPORT_SYNC_FILE ------------------------------------------------------


def export_sync(r, buf, flags):
    arg = bytearray(struct.pack("=Ii", flags, -1))
    low = lowest_free()
    res = fcntl.ioctl(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, arg)
    fl, fd = struct.unpack("=Ii", arg)
    if fd >= 0:
        r.fd(fd)
    return res, fl, fd, low


def export(flags):
    def step(r, memfd, buf):
        res, fl, fd, low = export_sync(r, buf, flags)
        return {"returns": res, "flags_field_after": fl, "fd_is_lowest_free": fd == low,
                "link": link(fd), "cloexec": cloexec(fd), "getfl": oct(fcntl.fcntl(fd, fcntl.F_GETFL)),
                "fdinfo": fdinfo(fd)}
    return step


def export_fd_field_on_error(r, memfd, buf):
    arg = bytearray(struct.pack("=Ii", 0, -7))
    res = call(fcntl.ioctl, buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, arg)
    return {"result": res, "fd_field_after": struct.unpack("=Ii", arg)[1]}


def export_bad_pointer(r, memfd, buf):
    return fcntl.ioctl(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, 16)


def export_sync_file_fstat(r, memfd, buf):
    res, fl, fd, low = export_sync(r, buf, DMA_BUF_SYNC_RW)
    st = os.fstat(fd)
    return {"mode": oct(st.st_mode), "size": st.st_size,
            "read": call(os.read, fd, 8), "sync_ioctl_on_sync_file":
            call(fcntl.ioctl, fd, DMA_BUF_IOCTL_SYNC, bytearray(struct.pack("=Q", 3)))}


def import_(flags, source):
    def step(r, memfd, buf):
        fd = source(r, buf)
        return fcntl.ioctl(buf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
                           bytearray(struct.pack("=Ii", flags, fd)))
    return step


def src_exported(r, buf):
    return export_sync(r, buf, DMA_BUF_SYNC_RW)[2]


def src_exported_from_other(r, buf):
    memfd2, buf2 = make_dmabuf(r, seed=3)
    return export_sync(r, buf2, DMA_BUF_SYNC_READ)[2]


def src_closed(r, buf):
    return closed_fd()


def src_minus_one(r, buf):
    return -1


def src_pipe(r, buf):
    rd, wr = os.pipe()
    r.fd(wr)
    return r.fd(rd)


def src_self(r, buf):
    return buf


def import_bad_pointer(r, memfd, buf):
    return fcntl.ioctl(buf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, 16)


def import_then_export(r, memfd, buf):
    sf = src_exported(r, buf)
    out = {"import_write": call(fcntl.ioctl, buf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
                                bytearray(struct.pack("=Ii", DMA_BUF_SYNC_WRITE, sf)))}
    res, fl, fd, low = export_sync(r, buf, DMA_BUF_SYNC_READ)
    out["export_read_after"] = {"returns": res, "link": link(fd)}
    out["sync_rw_after"] = call(fcntl.ioctl, buf, DMA_BUF_IOCTL_SYNC,
                                bytearray(struct.pack("=Q", DMA_BUF_SYNC_RW)))
    return out


# --- other ioctls ---------------------------------------------------------------------


def ioctl_(cmd, arg_factory=lambda: bytearray(8)):
    def step(r, memfd, buf):
        res = fcntl.ioctl(buf, cmd, arg_factory())
        return res if isinstance(res, int) else type(res).__name__
    return step


def ioctl_closed_dmabuf(r, memfd, buf):
    n = buf
    r.close(buf)
    return fcntl.ioctl(n, DMA_BUF_IOCTL_SYNC, bytearray(struct.pack("=Q", DMA_BUF_SYNC_RW)))


def generic_fionbio(r, memfd, buf):
    before = oct(fcntl.fcntl(buf, fcntl.F_GETFL))
    on = fcntl.ioctl(buf, FIONBIO, bytearray(struct.pack("i", 1)))
    after_on = oct(fcntl.fcntl(buf, fcntl.F_GETFL))
    fi_on = fdinfo_field(buf, "flags")
    off = fcntl.ioctl(buf, FIONBIO, bytearray(struct.pack("i", 0)))
    return {"getfl_before": before, "on_returns": on, "getfl_after_on": after_on,
            "fdinfo_flags_after_on": fi_on, "off_returns": off,
            "getfl_after_off": oct(fcntl.fcntl(buf, fcntl.F_GETFL))}


def generic_fioclex(r, memfd, buf):
    before = fcntl.fcntl(buf, fcntl.F_GETFD)
    r1 = fcntl.ioctl(buf, FIOCLEX)
    a1 = fcntl.fcntl(buf, fcntl.F_GETFD)
    fi = fdinfo_field(buf, "flags")
    r2 = fcntl.ioctl(buf, FIONCLEX)
    return {"getfd_before": before, "fioclex_returns": r1, "getfd_after_fioclex": a1,
            "fdinfo_flags_after_fioclex": fi, "fionclex_returns": r2,
            "getfd_after_fionclex": fcntl.fcntl(buf, fcntl.F_GETFD)}


def generic_fioasync(r, memfd, buf):
    return {"on": call(fcntl.ioctl, buf, FIOASYNC, bytearray(struct.pack("i", 1))),
            "getfl_after": oct(fcntl.fcntl(buf, fcntl.F_GETFL)),
            "off": call(fcntl.ioctl, buf, FIOASYNC, bytearray(struct.pack("i", 0)))}


def generic_int_ioctl(cmd, fmt):
    def step(r, memfd, buf):
        arg = bytearray(struct.pack(fmt, -1))
        res = fcntl.ioctl(buf, cmd, arg)
        return {"returns": res, "value": struct.unpack(fmt, arg)[0]}
    return step


def isatty_(r, memfd, buf):
    return os.isatty(buf)


# --- fcntl and misc syscalls -------------------------------------------------------


def fcntl_flags(r, memfd, buf):
    out = {"getfd": fcntl.fcntl(buf, fcntl.F_GETFD), "getfl": oct(fcntl.fcntl(buf, fcntl.F_GETFL))}
    for name, v in (("O_NONBLOCK", os.O_NONBLOCK), ("O_APPEND", os.O_APPEND),
                    ("O_ASYNC", os.O_ASYNC), ("O_RDONLY_ignored", os.O_RDONLY),
                    ("O_DIRECT", os.O_DIRECT), ("O_NOATIME", os.O_NOATIME)):
        out["setfl_" + name] = call(fcntl.fcntl, buf, fcntl.F_SETFL, v)
        out["getfl_after_" + name] = oct(fcntl.fcntl(buf, fcntl.F_GETFL))
    return out


def fcntl_get_seals(r, memfd, buf):
    return fcntl.fcntl(buf, F_GET_SEALS)


def fcntl_dupfd(r, memfd, buf):
    low = lowest_free()
    d = r.fd(fcntl.fcntl(buf, fcntl.F_DUPFD, 0))
    dc = r.fd(fcntl.fcntl(buf, fcntl.F_DUPFD_CLOEXEC, 0))
    od = r.fd(os.dup(buf))
    return {"f_dupfd_is_lowest_free": d == low, "f_dupfd_cloexec": cloexec(d),
            "f_dupfd_cloexec_cloexec": cloexec(dc), "os_dup_cloexec": cloexec(od),
            "same_inode": os.fstat(d).st_ino == os.fstat(buf).st_ino == os.fstat(od).st_ino,
            "link_of_dup": link(od), "fdinfo_count_with_3_dups": fdinfo_field(buf, "count")}


def fsync_(r, memfd, buf):
    return {"fsync": call(os.fsync, buf), "fdatasync": call(os.fdatasync, buf),
            "ftruncate": call(os.ftruncate, buf, PAGE),
            "size_after": os.fstat(buf).st_size}


def poll_(r, memfd, buf):
    import select
    p = select.poll()
    p.register(buf, select.POLLIN | select.POLLOUT | select.POLLPRI)
    return [ev for fd, ev in p.poll(0)]


# --- fdinfo and /proc/self/fd ---------------------------------------------------------


def fdinfo_initial(r, memfd, buf):
    return fdinfo(buf)


def fdinfo_named(r, memfd, buf):
    fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, b"probe-name\0")
    return fdinfo(buf)


def fdinfo_count(r, memfd, buf):
    out = {"initial": fdinfo_field(buf, "count")}
    d = r.fd(os.dup(buf))
    out["after_dup"] = fdinfo_field(buf, "count")
    out["via_dup"] = fdinfo_field(d, "count")
    r.close(d)
    out["after_close_dup"] = fdinfo_field(buf, "count")
    m = r.map(mmap.mmap(buf, SIZE))
    out["with_python_mmap"] = fdinfo_field(buf, "count")
    r.unmap(m)
    out["after_mmap_close"] = fdinfo_field(buf, "count")
    return out


def proc_fd_links(r, memfd, buf):
    dev = r.fd(os.open("/dev/udmabuf", os.O_RDWR))
    return {"dmabuf": link(buf), "udmabuf_dev": link(dev),
            "memfd": link(memfd)}


def main():
    steps = [
        ("fstat", with_dmabuf(fstat_)),
        ("fstat_cloexec_buffer", with_dmabuf(fstat_cloexec_buf, flags=UDMABUF_FLAGS_CLOEXEC)),
        ("read", with_dmabuf(io(lambda b: os.read(b, 16)))),
        ("read_0_bytes", with_dmabuf(io(lambda b: os.read(b, 0)))),
        ("write", with_dmabuf(io(lambda b: os.write(b, b"abcd")))),
        ("write_0_bytes", with_dmabuf(io(lambda b: os.write(b, b"")))),
        ("pread", with_dmabuf(io(lambda b: os.pread(b, 16, 0)))),
        ("pwrite", with_dmabuf(io(lambda b: os.pwrite(b, b"abcd", 0)))),
        ("readv", with_dmabuf(io(lambda b: os.readv(b, [bytearray(16)])))),
        ("lseek_set_0", with_dmabuf(lseek(0, os.SEEK_SET))),
        ("lseek_end_0", with_dmabuf(lseek(0, os.SEEK_END))),
        ("lseek_cur_0", with_dmabuf(lseek(0, os.SEEK_CUR))),
        ("lseek_set_5", with_dmabuf(lseek(5, os.SEEK_SET))),
        ("lseek_set_size", with_dmabuf(lseek(SIZE, os.SEEK_SET))),
        ("lseek_end_minus_1", with_dmabuf(lseek(-1, os.SEEK_END))),
        ("lseek_end_1", with_dmabuf(lseek(1, os.SEEK_END))),
        ("lseek_cur_5", with_dmabuf(lseek(5, os.SEEK_CUR))),
        ("lseek_set_minus_1", with_dmabuf(lseek(-1, os.SEEK_SET))),
        ("lseek_data_0", with_dmabuf(lseek(0, os.SEEK_DATA))),
        ("lseek_hole_0", with_dmabuf(lseek(0, os.SEEK_HOLE))),
        ("lseek_whence_5", with_dmabuf(lseek(0, 5))),
        ("lseek_pos_after_seek_end", with_dmabuf(lseek_pos_after_seek_end)),
        ("sync_flags_0", with_dmabuf(sync(0))),
        ("sync_read_start", with_dmabuf(sync(DMA_BUF_SYNC_READ | DMA_BUF_SYNC_START))),
        ("sync_write_start", with_dmabuf(sync(DMA_BUF_SYNC_WRITE | DMA_BUF_SYNC_START))),
        ("sync_rw_start", with_dmabuf(sync(DMA_BUF_SYNC_RW | DMA_BUF_SYNC_START))),
        ("sync_read_end", with_dmabuf(sync(DMA_BUF_SYNC_READ | DMA_BUF_SYNC_END))),
        ("sync_write_end", with_dmabuf(sync(DMA_BUF_SYNC_WRITE | DMA_BUF_SYNC_END))),
        ("sync_rw_end", with_dmabuf(sync(DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END))),
        ("sync_end_only", with_dmabuf(sync(DMA_BUF_SYNC_END))),
        ("sync_read_end_after_read_start", with_dmabuf(sync_end_after_start(1, 1))),
        ("sync_write_end_after_read_start", with_dmabuf(sync_end_after_start(1, 2))),
        ("sync_rw_end_after_write_start", with_dmabuf(sync_end_after_start(2, 3))),
        ("sync_end_only_after_start", with_dmabuf(sync_end_after_start(3, 0))),
        ("sync_end_after_start_via_other_fd", with_dmabuf(sync_end_after_start_via_other_fd)),
        ("sync_bit3", with_dmabuf(sync(0x8))),
        ("sync_read_bit3", with_dmabuf(sync(DMA_BUF_SYNC_READ | 0x8))),
        ("sync_read_bit32", with_dmabuf(sync(DMA_BUF_SYNC_READ | (1 << 32)))),
        ("sync_read_bit63", with_dmabuf(sync(DMA_BUF_SYNC_READ | (1 << 63)))),
        ("sync_bytes_arg", with_dmabuf(sync_bytes_arg)),
        ("sync_bad_pointer", with_dmabuf(sync_bad_pointer)),
        ("sync_sequence", with_dmabuf(sync_sequence)),
        ("name_initial", with_dmabuf(name_initial)),
        ("set_name_a_len_0", with_dmabuf(set_name(DMA_BUF_SET_NAME_A, b"\0"))),
        ("set_name_a_len_5", with_dmabuf(set_name(DMA_BUF_SET_NAME_A, b"hello\0"))),
        ("set_name_a_len_31", with_dmabuf(set_name(DMA_BUF_SET_NAME_A, b"a" * 31 + b"\0"))),
        ("set_name_a_len_32", with_dmabuf(set_name(DMA_BUF_SET_NAME_A, b"a" * 32 + b"\0"))),
        ("set_name_a_len_40", with_dmabuf(set_name(DMA_BUF_SET_NAME_A, b"a" * 40 + b"\0"))),
        ("set_name_a_bad_pointer", with_dmabuf(set_name_ptr(DMA_BUF_SET_NAME_A, 16))),
        ("set_name_a_null", with_dmabuf(set_name_ptr(DMA_BUF_SET_NAME_A, 0))),
        ("set_name_b_len_0", with_dmabuf(set_name(DMA_BUF_SET_NAME_B, b"\0"))),
        ("set_name_b_len_5", with_dmabuf(set_name(DMA_BUF_SET_NAME_B, b"hello\0"))),
        ("set_name_b_len_31", with_dmabuf(set_name(DMA_BUF_SET_NAME_B, b"b" * 31 + b"\0"))),
        ("set_name_b_len_32", with_dmabuf(set_name(DMA_BUF_SET_NAME_B, b"b" * 32 + b"\0"))),
        ("set_name_b_len_40", with_dmabuf(set_name(DMA_BUF_SET_NAME_B, b"b" * 40 + b"\0"))),
        ("set_name_b_bad_pointer", with_dmabuf(set_name_ptr(DMA_BUF_SET_NAME_B, 16))),
        ("set_name_b_null", with_dmabuf(set_name_ptr(DMA_BUF_SET_NAME_B, 0))),
        ("set_name_no_explicit_nul", with_dmabuf(set_name(DMA_BUF_SET_NAME_B, b"implicit"))),
        ("set_name_bytearray", with_dmabuf(set_name(DMA_BUF_SET_NAME_B, bytearray(b"mutable\0")))),
        ("set_name_stops_at_nul", with_dmabuf(set_name(DMA_BUF_SET_NAME_B, b"ab\0cd\0"))),
        ("set_name_slash_space", with_dmabuf(set_name(DMA_BUF_SET_NAME_B, b"a/b c\0"))),
        ("set_name_newline", with_dmabuf(set_name(DMA_BUF_SET_NAME_B, b"x\ny\0"))),
        ("set_name_failure_keeps_old", with_dmabuf(set_name_failure_keeps_old)),
        ("set_name_replace", with_dmabuf(set_name_replace)),
        ("set_name_then_empty", with_dmabuf(set_name_then_empty)),
        ("set_name_via_dup_seen_by_original", with_dmabuf(set_name_via_dup_seen_by_original)),
        ("set_name_while_mmapped", with_dmabuf(set_name_while_mmapped)),
        ("set_name_wrong_size_bits", with_dmabuf(set_name_ptr(ioc(1, "b", 1, 16), 0))),
        ("export_flags_0", with_dmabuf(export(0))),
        ("export_read", with_dmabuf(export(DMA_BUF_SYNC_READ))),
        ("export_write", with_dmabuf(export(DMA_BUF_SYNC_WRITE))),
        ("export_rw", with_dmabuf(export(DMA_BUF_SYNC_RW))),
        ("export_end_bit", with_dmabuf(export(DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END))),
        ("export_bit31", with_dmabuf(export(DMA_BUF_SYNC_READ | 0x80000000))),
        ("export_fd_field_on_error", with_dmabuf(export_fd_field_on_error)),
        ("export_bad_pointer", with_dmabuf(export_bad_pointer)),
        ("export_sync_file_fstat", with_dmabuf(export_sync_file_fstat)),
        ("import_read_exported", with_dmabuf(import_(DMA_BUF_SYNC_READ, src_exported))),
        ("import_write_exported", with_dmabuf(import_(DMA_BUF_SYNC_WRITE, src_exported))),
        ("import_rw_exported", with_dmabuf(import_(DMA_BUF_SYNC_RW, src_exported))),
        ("import_from_other_buffer", with_dmabuf(import_(DMA_BUF_SYNC_RW, src_exported_from_other))),
        ("import_flags_0", with_dmabuf(import_(0, src_exported))),
        ("import_end_bit", with_dmabuf(import_(DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END, src_exported))),
        ("import_closed_fd", with_dmabuf(import_(DMA_BUF_SYNC_RW, src_closed))),
        ("import_fd_minus_1", with_dmabuf(import_(DMA_BUF_SYNC_RW, src_minus_one))),
        ("import_pipe_fd", with_dmabuf(import_(DMA_BUF_SYNC_RW, src_pipe))),
        ("import_dmabuf_fd", with_dmabuf(import_(DMA_BUF_SYNC_RW, src_self))),
        ("import_flags_0_bad_fd", with_dmabuf(import_(0, src_closed))),
        ("import_bad_pointer", with_dmabuf(import_bad_pointer)),
        ("import_then_export", with_dmabuf(import_then_export)),
        ("ioctl_unknown_nr_4", with_dmabuf(ioctl_(ioc(1, "b", 4, 8)))),
        ("ioctl_unknown_type", with_dmabuf(ioctl_(ioc(1, "c", 0, 8)))),
        ("ioctl_sync_dir_read", with_dmabuf(ioctl_(ioc(2, "b", 0, 8)))),
        ("ioctl_sync_dir_rw", with_dmabuf(ioctl_(ioc(3, "b", 0, 8)))),
        ("ioctl_sync_dir_none", with_dmabuf(ioctl_(ioc(0, "b", 0, 0), lambda: 0))),
        ("ioctl_sync_size_16", with_dmabuf(ioctl_(ioc(1, "b", 0, 16), lambda: bytearray(16)))),
        ("ioctl_sync_size_4", with_dmabuf(ioctl_(ioc(1, "b", 0, 4), lambda: bytearray(4)))),
        ("ioctl_export_dir_write", with_dmabuf(ioctl_(ioc(1, "b", 2, 8)))),
        ("ioctl_import_dir_rw", with_dmabuf(ioctl_(ioc(3, "b", 3, 8)))),
        ("ioctl_on_closed_dmabuf", with_dmabuf(ioctl_closed_dmabuf)),
        ("ioctl_udmabuf_create_on_dmabuf", with_dmabuf(ioctl_(UDMABUF_CREATE,
                                                              lambda: bytearray(24)))),
        ("generic_fionbio", with_dmabuf(generic_fionbio)),
        ("generic_fioclex", with_dmabuf(generic_fioclex)),
        ("generic_fioasync", with_dmabuf(generic_fioasync)),
        ("generic_fionread", with_dmabuf(generic_int_ioctl(FIONREAD, "=i"))),
        ("generic_fioqsize", with_dmabuf(generic_int_ioctl(FIOQSIZE, "=q"))),
        ("generic_figetbsz", with_dmabuf(generic_int_ioctl(FIGETBSZ, "=i"))),
        ("generic_tcgets", with_dmabuf(ioctl_(TCGETS, lambda: bytearray(64)))),
        ("generic_fs_ioc_getflags", with_dmabuf(ioctl_(FS_IOC_GETFLAGS))),
        ("isatty", with_dmabuf(isatty_)),
        ("fcntl_flags", with_dmabuf(fcntl_flags)),
        ("fcntl_get_seals", with_dmabuf(fcntl_get_seals)),
        ("fcntl_dupfd", with_dmabuf(fcntl_dupfd)),
        ("fsync_ftruncate", with_dmabuf(fsync_)),
        ("poll", with_dmabuf(poll_)),
        ("fdinfo_initial", with_dmabuf(fdinfo_initial)),
        ("fdinfo_cloexec_buffer", with_dmabuf(fdinfo_initial, flags=UDMABUF_FLAGS_CLOEXEC)),
        ("fdinfo_named", with_dmabuf(fdinfo_named)),
        ("fdinfo_count", with_dmabuf(fdinfo_count)),
        ("proc_fd_links", with_dmabuf(proc_fd_links)),
    ]
    run_all(steps)


if __name__ == "__main__":
    main()
