"""Probe: the generic file behaviour around a udmabuf dma-buf -- O_PATH, fcntl beyond
dup/fd/fl (record and OFD locks, leases, notify, pipe size, RW hints, owner and signal,
seals), flock/lockf, fchmod/fchown, posix_fallocate, fsync, fstatvfs; mmap flags
(MAP_SHARED_VALIDATE, MAP_SYNC, unknown bits), madvise/msync/mprotect on a udmabuf
mapping; the udmabuf module parameters.

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  Standard library only; needs /dev/udmabuf.
"""
import ctypes
import fcntl
import mmap
import os
import struct

from _probe import (
    DMA_BUF_IOCTL_SYNC, DMA_BUF_SYNC_START, DMA_BUF_SYNC_READ, PAGE, SIZE, Res, call,
    libc, make_dmabuf, mmap_addr, read_text, with_dmabuf, run_all,
)

F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
F_SETLEASE, F_GETLEASE, F_NOTIFY = 1024, 1025, 1026
F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032
F_ADD_SEALS, F_GET_SEALS = 1033, 1034
F_GET_RW_HINT, F_SET_RW_HINT = 1035, 1036
F_GET_FILE_RW_HINT, F_SET_FILE_RW_HINT = 1037, 1038
F_SETOWN_EX, F_GETOWN_EX = 15, 16
F_SETSIG, F_GETSIG = 10, 11
DN_ACCESS = 1
MAP_SHARED_VALIDATE = 0x03
MAP_SYNC = 0x80000
MADV_NORMAL, MADV_WILLNEED, MADV_DONTNEED, MADV_REMOVE = 0, 3, 4, 9
MADV_DONTFORK, MADV_DOFORK = 10, 11
MORE_ADVICE = (1, 2, 8, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 25, 102, 999)
FLOCK = "=hh4xqqi4x"  # struct flock: l_type, l_whence, l_start, l_len, l_pid


def flock_arg(typ, start=0, length=0):
    return struct.pack(FLOCK, typ, os.SEEK_SET, start, length, 0)


def getlk(fd, cmd, typ):
    out = fcntl.fcntl(fd, cmd, flock_arg(typ))
    t, w, s, n, pid = struct.unpack(FLOCK, out)
    return {"type": t, "start": s, "len": n, "pid_is_zero_or_me": pid in (0, os.getpid())}


# --- O_PATH ----------------------------------------------------------------------

def o_path_proc_fd(r, memfd, buf):
    fd = r.fd(os.open("/proc/self/fd/%d" % buf, os.O_PATH))
    return {
        "same_inode": os.fstat(fd).st_ino == os.fstat(buf).st_ino,
        "getfl_is_o_path": fcntl.fcntl(fd, fcntl.F_GETFL) == os.O_PATH,
        "ioctl": call(fcntl.ioctl, fd, DMA_BUF_IOCTL_SYNC,
                      struct.pack("Q", DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ)),
        "read": call(os.read, fd, 1),
        "write": call(os.write, fd, b"x"),
        "setfl": call(fcntl.fcntl, fd, fcntl.F_SETFL, os.O_NONBLOCK),
        "setlk": call(fcntl.fcntl, fd, fcntl.F_SETLK, flock_arg(fcntl.F_RDLCK)),
        "flock": call(fcntl.flock, fd, fcntl.LOCK_SH),
        "fchmod": call(os.fchmod, fd, 0o600),
        "fchown": call(os.fchown, fd, -1, -1),
        "fsync": call(os.fsync, fd),
        "fstatvfs": type(call(os.fstatvfs, fd)).__name__,
        "mmap": call(lambda: mmap.mmap(fd, PAGE).close()),
        "getfd": fcntl.fcntl(fd, fcntl.F_GETFD),
    }


def o_path_getfl_flags(r, memfd, buf):
    fd = r.fd(os.open("/proc/self/fd/%d" % buf, os.O_PATH | os.O_RDWR | os.O_NONBLOCK))
    return fcntl.fcntl(fd, fcntl.F_GETFL) == os.O_PATH


def reopen_proc_fd(r, memfd, buf):
    return call(lambda: r.fd(os.open("/proc/self/fd/%d" % buf, os.O_RDWR)) and "opened")


# --- fcntl -----------------------------------------------------------------------

def fcntl_locks(r, memfd, buf):
    return {
        "getlk_rd": call(getlk, buf, fcntl.F_GETLK, fcntl.F_RDLCK),
        "getlk_wr": call(getlk, buf, fcntl.F_GETLK, fcntl.F_WRLCK),
        "setlk_wr": call(lambda: fcntl.fcntl(buf, fcntl.F_SETLK, flock_arg(fcntl.F_WRLCK)) and 0),
        "setlkw_rd": call(lambda: fcntl.fcntl(buf, fcntl.F_SETLKW, flock_arg(fcntl.F_RDLCK)) and 0),
        "getlk_after": call(getlk, buf, fcntl.F_GETLK, fcntl.F_WRLCK),
        "setlk_un": call(lambda: fcntl.fcntl(buf, fcntl.F_SETLK, flock_arg(fcntl.F_UNLCK)) and 0),
        "getlk_bad_type": call(getlk, buf, fcntl.F_GETLK, 7),
        "setlk_bad_type": call(lambda: fcntl.fcntl(buf, fcntl.F_SETLK, flock_arg(7)) and 0),
        "setlk_neg_len": call(lambda: fcntl.fcntl(buf, fcntl.F_SETLK, flock_arg(fcntl.F_RDLCK, 10, -20)) and 0),
        "ofd_getlk": call(getlk, buf, F_OFD_GETLK, fcntl.F_WRLCK),
        "ofd_setlk": call(lambda: fcntl.fcntl(buf, F_OFD_SETLK, flock_arg(fcntl.F_WRLCK)) and 0),
        "ofd_setlkw": call(lambda: fcntl.fcntl(buf, F_OFD_SETLKW, flock_arg(fcntl.F_RDLCK)) and 0),
        "ofd_getlk_after": call(getlk, buf, F_OFD_GETLK, fcntl.F_WRLCK),
    }


def posix_vs_ofd_conflict(r, memfd, buf):
    # a POSIX write lock of this process conflicts with an OFD lock (other owner)
    fcntl.fcntl(buf, fcntl.F_SETLK, flock_arg(fcntl.F_WRLCK, 0, 100))
    return {
        "ofd_setlk": call(lambda: fcntl.fcntl(buf, F_OFD_SETLK, flock_arg(fcntl.F_RDLCK, 50, 10)) and 0),
        "ofd_getlk": call(getlk, buf, F_OFD_GETLK, fcntl.F_RDLCK),
        "ofd_beyond": call(lambda: fcntl.fcntl(buf, F_OFD_SETLK, flock_arg(fcntl.F_RDLCK, 100, 10)) and 0),
        "posix_getlk_sees_ofd": call(getlk, buf, fcntl.F_GETLK, fcntl.F_WRLCK),
    }


def lock_released_on_close(r, memfd, buf):
    dup = r.fd(os.dup(buf))
    fcntl.fcntl(buf, fcntl.F_SETLK, flock_arg(fcntl.F_WRLCK))
    r.close(dup)  # closing any fd of the file drops this process's POSIX locks
    return call(lambda: fcntl.fcntl(buf, F_OFD_SETLK, flock_arg(fcntl.F_WRLCK)) and 0)


def fcntl_misc(r, memfd, buf):
    return {
        "getlease": call(fcntl.fcntl, buf, F_GETLEASE),
        "setlease_rd": call(fcntl.fcntl, buf, F_SETLEASE, fcntl.F_RDLCK),
        "setlease_un": call(fcntl.fcntl, buf, F_SETLEASE, fcntl.F_UNLCK),
        "setlease_bad": call(fcntl.fcntl, buf, F_SETLEASE, 7),
        "notify": call(fcntl.fcntl, buf, F_NOTIFY, DN_ACCESS),
        "notify_off": call(fcntl.fcntl, buf, F_NOTIFY, 0),
        "getpipe_sz": call(fcntl.fcntl, buf, F_GETPIPE_SZ),
        "setpipe_sz": call(fcntl.fcntl, buf, F_SETPIPE_SZ, 65536),
        "add_seals": call(fcntl.fcntl, buf, F_ADD_SEALS, 1),
        "get_seals": call(fcntl.fcntl, buf, F_GET_SEALS),
        "getown": call(fcntl.fcntl, buf, fcntl.F_GETOWN),
        "setown_me": call(fcntl.fcntl, buf, fcntl.F_SETOWN, os.getpid()),
        "getown_after": call(fcntl.fcntl, buf, fcntl.F_GETOWN) == os.getpid(),
        "getown_ex": call(lambda: struct.unpack("ii", fcntl.fcntl(buf, F_GETOWN_EX, bytes(8)))[0]),
        "setown_ex_bad": call(fcntl.fcntl, buf, F_SETOWN_EX, struct.pack("ii", 9, 0)),
        "setown_ex_tid": call(fcntl.fcntl, buf, F_SETOWN_EX, struct.pack("ii", 0, os.getpid())),
        "setown_zero": call(fcntl.fcntl, buf, fcntl.F_SETOWN, 0),
        "getsig": call(fcntl.fcntl, buf, F_GETSIG),
        "setsig": call(fcntl.fcntl, buf, F_SETSIG, 10),
        "getsig_after": call(fcntl.fcntl, buf, F_GETSIG),
        "setsig_bad": call(fcntl.fcntl, buf, F_SETSIG, 65),
        "unknown": call(fcntl.fcntl, buf, 9999),
    }


def fcntl_rw_hint(r, memfd, buf):
    return {
        "get": call(lambda: struct.unpack("Q", fcntl.fcntl(buf, F_GET_RW_HINT, bytes(8)))[0]),
        "set": call(lambda: fcntl.fcntl(buf, F_SET_RW_HINT, struct.pack("Q", 2)) and 0),
        "get_after": call(lambda: struct.unpack("Q", fcntl.fcntl(buf, F_GET_RW_HINT, bytes(8)))[0]),
        "set_bad": call(lambda: fcntl.fcntl(buf, F_SET_RW_HINT, struct.pack("Q", 99)) and 0),
        "file_get": call(lambda: struct.unpack("Q", fcntl.fcntl(buf, F_GET_FILE_RW_HINT, bytes(8)))[0]),
    }


def flock_lockf(r, memfd, buf):
    return {
        "flock_ex": call(fcntl.flock, buf, fcntl.LOCK_EX),
        "flock_sh_nb": call(fcntl.flock, buf, fcntl.LOCK_SH | fcntl.LOCK_NB),
        "flock_un": call(fcntl.flock, buf, fcntl.LOCK_UN),
        "flock_bad": call(fcntl.flock, buf, 0),
        "lockf_lock": call(fcntl.lockf, buf, fcntl.LOCK_EX | fcntl.LOCK_NB),
        "lockf_un": call(fcntl.lockf, buf, fcntl.LOCK_UN),
        "os_lockf_test": call(os.lockf, buf, os.F_TEST, 0),
        "os_lockf_tlock": call(os.lockf, buf, os.F_TLOCK, 0),
        "os_lockf_ulock": call(os.lockf, buf, os.F_ULOCK, 0),
    }


def attrs(r, memfd, buf):
    st = os.fstat(buf)
    out = {
        "fchmod": call(os.fchmod, buf, 0o600),
        "fchown_noop": call(os.fchown, buf, -1, -1),
        "fchown_same": call(os.fchown, buf, st.st_uid, st.st_gid),
        "fallocate": call(os.posix_fallocate, buf, 0, PAGE),
        "fadvise": call(os.posix_fadvise, buf, 0, PAGE, os.POSIX_FADV_WILLNEED),
        "fsync": call(os.fsync, buf),
        "fdatasync": call(os.fdatasync, buf),
        "ftruncate": call(os.ftruncate, buf, PAGE),
    }
    v = call(os.fstatvfs, buf)
    out["fstatvfs"] = v if isinstance(v, str) else {
        "bsize": v.f_bsize, "frsize": v.f_frsize, "blocks": v.f_blocks, "bfree": v.f_bfree,
        "files": v.f_files, "namemax": v.f_namemax, "flag": v.f_flag,
    }
    return out


# --- mappings --------------------------------------------------------------------

def map_flags(r, memfd, buf):
    def m(flags):
        def go():
            mm = mmap.mmap(buf, SIZE, flags, mmap.PROT_READ | mmap.PROT_WRITE)
            try:
                return mm[:4] == os.pread(memfd, 4, 0)
            finally:
                mm.close()
        return call(go)
    return {
        "validate": m(MAP_SHARED_VALIDATE),
        "validate_sync": m(MAP_SHARED_VALIDATE | MAP_SYNC),
        "validate_unknown": m(MAP_SHARED_VALIDATE | 0x200000),
        "validate_32bit": m(MAP_SHARED_VALIDATE | 0x40),
        "validate_populate": m(MAP_SHARED_VALIDATE | mmap.MAP_POPULATE),
        "shared_sync": m(mmap.MAP_SHARED | MAP_SYNC),
        "shared_unknown": m(mmap.MAP_SHARED | 0x200000),
        "private": m(mmap.MAP_PRIVATE),
    }


def map_exec(r, memfd, buf):
    return call(lambda: mmap.mmap(buf, SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_EXEC).close())


def udmabuf_madvise(r, memfd, buf):
    mm = r.map(mmap.mmap(buf, SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE))
    out = {
        "normal": call(mm.madvise, MADV_NORMAL),
        "willneed": call(mm.madvise, MADV_WILLNEED),
        "dontneed": call(mm.madvise, MADV_DONTNEED),
        "remove": call(mm.madvise, MADV_REMOVE),
        "dontfork": call(mm.madvise, MADV_DONTFORK),
        "dofork": call(mm.madvise, MADV_DOFORK),
        "more": {str(a): call(mm.madvise, a) for a in MORE_ADVICE},
        "flush": call(mm.flush),
        "flush_range": call(mm.flush, 0, PAGE),
        "data_intact": mm[:SIZE] == os.pread(memfd, SIZE, 0),
    }
    return out


def udmabuf_mprotect(r, memfd, buf):
    mm = r.map(mmap.mmap(buf, SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE))
    addr = mmap_addr(mm)

    def mprotect(prot):
        if libc.mprotect(addr, SIZE, prot) != 0:
            raise OSError(ctypes.get_errno(), "mprotect")
        return 0
    return {
        "r": call(mprotect, mmap.PROT_READ),
        "rw": call(mprotect, mmap.PROT_READ | mmap.PROT_WRITE),
        "rwx": call(mprotect, mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC),
    }


def notify_dir():
    with Res() as r:
        fd = r.fd(os.open("/dev/vfio", os.O_RDONLY | os.O_DIRECTORY))
        return {
            "notify": call(fcntl.fcntl, fd, F_NOTIFY, DN_ACCESS),
            "notify_off": call(fcntl.fcntl, fd, F_NOTIFY, 0),
            "getlease": call(fcntl.fcntl, fd, F_GETLEASE),
            "setpipe_sz": call(fcntl.fcntl, fd, F_SETPIPE_SZ, 4096),
        }


def two_descriptions():
    # two opens of one device node: two open file descriptions of one inode
    with Res() as r:
        a = r.fd(os.open("/dev/udmabuf", os.O_RDWR))
        b = r.fd(os.open("/dev/udmabuf", os.O_RDWR))
        out = {
            "ofd_a": call(lambda: fcntl.fcntl(a, F_OFD_SETLK, flock_arg(fcntl.F_WRLCK, 0, 10)) and 0),
            "ofd_b": call(lambda: fcntl.fcntl(b, F_OFD_SETLK, flock_arg(fcntl.F_RDLCK)) and 0),
            "ofd_b_getlk": call(getlk, b, F_OFD_GETLK, fcntl.F_RDLCK),
            "ofd_b_beyond": call(lambda: fcntl.fcntl(b, F_OFD_SETLK, flock_arg(fcntl.F_RDLCK, 10, 5)) and 0),
            "posix_vs_both": call(lambda: fcntl.fcntl(a, fcntl.F_SETLK, flock_arg(fcntl.F_RDLCK)) and 0),
            "flock_a": call(fcntl.flock, a, fcntl.LOCK_EX),
            "flock_b_nb": call(fcntl.flock, b, fcntl.LOCK_SH | fcntl.LOCK_NB),
            "flock_a_sh": call(fcntl.flock, a, fcntl.LOCK_SH),
            "flock_b_sh": call(fcntl.flock, b, fcntl.LOCK_SH | fcntl.LOCK_NB),
            "flock_b_ex": call(fcntl.flock, b, fcntl.LOCK_EX | fcntl.LOCK_NB),
        }
        r.close(a)  # the description's last reference: its OFD and flock locks go
        out["ofd_b_after_close"] = call(lambda: fcntl.fcntl(b, F_OFD_SETLK, flock_arg(fcntl.F_WRLCK, 0, 10)) and 0)
        out["flock_b_after_close"] = call(fcntl.flock, b, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return out


def udmabuf_params():
    out = {}
    for name in ("list_limit", "size_limit_mb"):
        out[name] = call(read_text, "/sys/module/udmabuf/parameters/" + name)
    return out


def udmabuf_params_write():
    """Root writes the module parameters (param_set_int: kstrtoint) and the limits
    written are enforced; a negative list_limit compares as unsigned (no limit).  The
    defaults are written back at the end."""
    base = "/sys/module/udmabuf/parameters/"

    def write(name, text):
        fd = os.open(base + name, os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        return read_text(base + name)

    memfd = os.memfd_create("params", os.MFD_ALLOW_SEALING)
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    out = {}
    try:
        os.ftruncate(memfd, 2 * 1024 * 1024)
        fcntl.fcntl(memfd, F_ADD_SEALS, 0x0002)  # F_SEAL_SHRINK

        def create_list(n, size=PAGE, step=PAGE):
            items = b"".join(struct.pack("=IIQQ", memfd, 0, i * step, size) for i in range(n))
            arg = bytearray(struct.pack("=II", 0, n) + items)
            fd = fcntl.ioctl(dev, 0x40087543, arg)  # UDMABUF_CREATE_LIST
            os.close(fd)
            return "ok"

        for text in ("2", "2\n", "0x10", "010", "+7", "-1", "abc", " 5", "5\n\n", "-+5",
                     "2147483648", "-2147483649"):
            out["list_limit " + repr(text)] = call(write, "list_limit", text)
        call(write, "list_limit", "2")
        out["list_3_at_2"] = call(create_list, 3)
        out["list_2_at_2"] = call(create_list, 2)
        call(write, "list_limit", "-1")
        out["list_1025_at_minus_1"] = call(create_list, 1025, PAGE, 0)  # one page, aliased
        out["list_2_at_minus_1"] = call(create_list, 2)
        call(write, "size_limit_mb", "1")
        out["size_1m_plus_page_at_1"] = call(create_list, 1, 1024 * 1024 + PAGE)
        out["size_1m_at_1"] = call(create_list, 1, 1024 * 1024)
        call(write, "size_limit_mb", "0")
        out["size_page_at_0"] = call(create_list, 1)
        call(write, "size_limit_mb", "-1")
        out["size_2m_at_minus_1"] = call(create_list, 1, 2 * 1024 * 1024)
    finally:
        write("list_limit", "1024")
        write("size_limit_mb", "64")
        os.close(dev)
        os.close(memfd)
    return out


run_all([
    ("o_path_proc_fd", with_dmabuf(o_path_proc_fd)),
    ("o_path_getfl_flags", with_dmabuf(o_path_getfl_flags)),
    ("reopen_proc_fd", with_dmabuf(reopen_proc_fd)),
    ("fcntl_locks", with_dmabuf(fcntl_locks)),
    ("posix_vs_ofd_conflict", with_dmabuf(posix_vs_ofd_conflict)),
    ("lock_released_on_close", with_dmabuf(lock_released_on_close)),
    ("fcntl_misc", with_dmabuf(fcntl_misc)),
    ("fcntl_rw_hint", with_dmabuf(fcntl_rw_hint)),
    ("flock_lockf", with_dmabuf(flock_lockf)),
    ("attrs", with_dmabuf(attrs)),
    ("map_flags", with_dmabuf(map_flags)),
    ("map_exec", with_dmabuf(map_exec)),
    ("udmabuf_madvise", with_dmabuf(udmabuf_madvise)),
    ("udmabuf_mprotect", with_dmabuf(udmabuf_mprotect)),
    ("udmabuf_params", udmabuf_params),
    ("notify_dir", notify_dir),
    ("two_descriptions", two_descriptions),
    ("udmabuf_params_write", udmabuf_params_write),
])
