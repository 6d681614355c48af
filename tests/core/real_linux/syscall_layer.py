"""Probe: the syscall layer around mock files -- paths, device-node fds, ioctl arguments.

What the goldens of tests/real_linux/probes do not already settle: stat/lstat/
readlink/access/open on /dev/udmabuf, sysfs and debugfs paths (trailing slashes,
O_DIRECTORY, O_CREAT|O_EXCL, missing names), the generic VFS ioctls and fcntls on
a misc-device fd, /proc/self/fd and fdinfo of mock-looking fds, and fcntl.ioctl's
argument conventions (int/bytes/bytearray/str/ctypes, request masking, > 1024-byte
buffers) on real fds and dma-bufs.

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  No raw fd numbers, inode numbers, minors or
ids: only relations.  Standard library only.  Needs root on real Linux (the
guest of /work/shared/tools/real-linux) with the PCI device 0000:01:00.0 in IOMMU
group 6 -- as the default mockkernel topology has.

Regenerate the golden (about 15 s):
    /work/shared/tools/real-linux/run tests/core/real_linux/syscall_layer.py \
        > tests/core/real_linux/syscall_layer.golden.jsonl
"""

# The harness is tests/real_linux/probes/_probe.py; steps open and close fds by hand on
# purpose.
# ruff: noqa: UP031, SIM115, E741
import ctypes
import errno
import fcntl
import io
import mmap
import os
import re
import stat
import struct
import sys

# --- probe harness: the one shared by tests/real_linux/probes ------------------
# (this file lives outside that directory: put it on the path, on the VM as here)
sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "real_linux", "probes")
)
from _probe import (
    call,
    close_all,
    lowest_free,
    run,
)

# --- constants ---------------------------------------------------------------

PAGE = 4096
SIZE = 2 * PAGE
UDMABUF_CREATE = 0x40187542
MFD_ALLOW_SEALING = 0x0002
F_ADD_SEALS = 1033
F_SEAL_SHRINK = 0x0002
DMA_BUF_IOCTL_SYNC = 0x40086200
DMA_BUF_SET_NAME_B = 0x40086201
DMA_BUF_SYNC_RW = 3
FIONCLEX = 0x5450
FIOCLEX = 0x5451
FIONBIO = 0x5421
FIOASYNC = 0x5452
FIONREAD = 0x541B
FIGETBSZ = 2
DEV = "/dev/udmabuf"
BDF = "0000:01:00.0"
PCI_DEV = "/sys/bus/pci/devices/" + BDF
GROUP_DEVS = "/sys/kernel/iommu_groups/6/devices"
BUFINFO = "/sys/kernel/debug/dma_buf/bufinfo"


class udmabuf_create(ctypes.Structure):
    _fields_ = [
        ("memfd", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("offset", ctypes.c_uint64),
        ("size", ctypes.c_uint64),
    ]


class Res:
    """fds opened in one step, closed at its end."""

    def __init__(self):
        self.fds = []

    def fd(self, fd):
        self.fds.append(fd)
        return fd

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        close_all(*reversed(self.fds))
        return False


def make_dmabuf(r):
    dev = os.open(DEV, os.O_RDWR)
    try:
        memfd = r.fd(os.memfd_create("probe", MFD_ALLOW_SEALING))
        os.ftruncate(memfd, SIZE)
        fcntl.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK)
        arg = bytearray(struct.pack("=IIQQ", memfd, 0, 0, SIZE))
        return r.fd(fcntl.ioctl(dev, UDMABUF_CREATE, arg))
    finally:
        os.close(dev)


def with_dev(fn, flags=os.O_RDWR):
    def step():
        with Res() as r:
            return fn(r, r.fd(os.open(DEV, flags)))

    return step


def with_dmabuf(fn):
    def step():
        with Res() as r:
            return fn(r, make_dmabuf(r))

    return step


def with_pipe(fn):
    def step():
        with Res() as r:
            rd, wr = os.pipe()
            r.fd(rd)
            r.fd(wr)
            os.write(wr, b"hello")
            return fn(r, rd)

    return step


def fdinfo(fd):
    out = []
    with open("/proc/self/fdinfo/%d" % fd) as f:
        for line in f.read().splitlines():
            key = line.partition(":")[0]
            if key in ("mnt_id", "ino"):
                line = key + ":\t<" + key + ">"
            out.append(line)
    return out


def attempt(fn, *args):
    """fn(*args), or the errno name / exception type it raised (for sub-results)."""
    try:
        return fn(*args)
    except OSError as e:
        if e.errno is None:
            return type(e).__name__
        return errno.errorcode.get(e.errno, str(e.errno))
    except Exception as e:
        return type(e).__name__


def mode_of(st):
    return {"type": oct(stat.S_IFMT(st.st_mode)), "perm": oct(stat.S_IMODE(st.st_mode))}


# --- paths: the device node --------------------------------------------------------------


def dev_stat():
    st = os.stat(DEV)
    lst = os.lstat(DEV)
    return {
        **mode_of(st),
        "major": os.major(st.st_rdev),
        "size": st.st_size,
        "nlink": st.st_nlink,
        "lstat_same_mode": lst.st_mode == st.st_mode,
        "exists": os.path.exists(DEV),
        "isfile": os.path.isfile(DEV),
        "isdir": os.path.isdir(DEV),
        "islink": os.path.islink(DEV),
    }


def dev_access():
    return {
        m: os.access(DEV, v)
        for m, v in (("F_OK", os.F_OK), ("R_OK", os.R_OK), ("W_OK", os.W_OK), ("X_OK", os.X_OK))
    }


def dev_listed_in_dev():
    return {
        "listdir": "udmabuf" in os.listdir("/dev"),
        "scandir": [
            e.is_char_device() if hasattr(e, "is_char_device") else stat.S_ISCHR(e.stat().st_mode)
            for e in os.scandir("/dev")
            if e.name == "udmabuf"
        ],
    }


def open_mode(fn):
    def step():
        fd = fn()
        os.close(fd)
        return True

    return step


# --- paths: sysfs and debugfs ------------------------------------------------------------


def sysfs_device_link():
    lst = os.lstat(PCI_DEV)
    st = os.stat(PCI_DEV)
    return {
        "lstat": mode_of(lst)["type"],
        "stat": mode_of(st)["type"],
        "readlink_shape": bool(
            re.fullmatch(r"(\.\./){3}devices/pci0000:00/(\S+/)?" + BDF, os.readlink(PCI_DEV))
        ),
        "realpath_shape": bool(
            re.fullmatch(r"/sys/devices/pci0000:00/(\S+/)?" + BDF, os.path.realpath(PCI_DEV))
        ),
        "islink": os.path.islink(PCI_DEV),
        "isdir": os.path.isdir(PCI_DEV),
    }


def sysfs_device_link_trailing_slash():
    return {
        "lstat": mode_of(os.lstat(PCI_DEV + "/"))["type"],
        "readlink": call(os.readlink, PCI_DEV + "/"),
    }


def sysfs_vendor():
    p = PCI_DEV + "/vendor"
    st = os.stat(p)
    with open(p) as f:
        text = f.read()
    with open(p, "rb") as f:
        raw = f.read()
    return {
        **mode_of(st),
        "size": st.st_size,
        "text_format": bool(re.fullmatch(r"0x[0-9a-f]{4}\n", text)),
        "binary_equals_text": raw == text.encode(),
        "access_W_OK": os.access(p, os.W_OK),
        "access_X_OK": os.access(p, os.X_OK),
    }


def sysfs_group_devices():
    return {
        "listdir": os.listdir(GROUP_DEVS),
        "readlink_relative": os.readlink(GROUP_DEVS + "/" + BDF).startswith("../"),
        "realpath_equals_device": os.path.realpath(GROUP_DEVS + "/" + BDF)
        == os.path.realpath(PCI_DEV),
        "iommu_group_link_target": os.path.basename(os.readlink(PCI_DEV + "/iommu_group")),
    }


def sysfs_missing(fn):
    def step():
        try:
            fn()
        except OSError as e:
            return {
                "errno": errno.errorcode[e.errno],
                "type": type(e).__name__,
                "has_filename": e.filename is not None,
            }
        return "no error"

    return step


def bufinfo_stat():
    st = os.stat(BUFINFO)
    with open(BUFINFO) as f:
        head = f.read().splitlines()[:3]
    return {
        **mode_of(st),
        "size": st.st_size,
        "head": head,
        "dir_listed": "bufinfo" in os.listdir(os.path.dirname(BUFINFO)),
    }


def dirs_access():
    return {
        p: {"W_OK": os.access(p, os.W_OK), "X_OK": os.access(p, os.X_OK)}
        for p in ("/sys/bus/pci/devices", PCI_DEV, "/sys/kernel/debug/dma_buf")
    }


# --- a /dev/udmabuf fd ------------------------------------------------------------


def dev_fd_io(r, fd):
    return {
        "read": call(os.read, fd, 16),
        "read_0": call(os.read, fd, 0),
        "write": call(os.write, fd, b"ab"),
        "pread": call(os.pread, fd, 16, 0),
        "pwrite": call(os.pwrite, fd, b"ab", 0),
        "lseek": call(os.lseek, fd, 0, os.SEEK_SET),
        "fstat_chr": stat.S_ISCHR(os.fstat(fd).st_mode),
        "mmap": call(lambda: type(mmap.mmap(fd, PAGE)).__name__),
    }


def dev_fd_flags(r, fd):
    return {
        "getfd": fcntl.fcntl(fd, fcntl.F_GETFD),
        "getfl": oct(fcntl.fcntl(fd, fcntl.F_GETFL)),
        "fdinfo": fdinfo(fd),
        "link": os.readlink("/proc/self/fd/%d" % fd),
    }


def dev_fd_setfl(r, fd):
    out = {}
    for name, v in (
        ("O_NONBLOCK", os.O_NONBLOCK),
        ("O_ASYNC", os.O_ASYNC),
        ("O_DIRECT", os.O_DIRECT),
        ("O_APPEND", os.O_APPEND),
        ("0", 0),
        ("minus_1", -1),
    ):
        out["setfl_" + name] = call(fcntl.fcntl, fd, fcntl.F_SETFL, v)
        out["getfl_after_" + name] = oct(fcntl.fcntl(fd, fcntl.F_GETFL))
    return out


def dev_fd_generic_ioctls(r, fd):
    bsz = bytearray(struct.pack("i", -1))
    return {
        "fioasync_on": call(fcntl.ioctl, fd, FIOASYNC, bytearray(struct.pack("i", 1))),
        "getfl_after_fioasync_on": oct(fcntl.fcntl(fd, fcntl.F_GETFL)),
        "fioasync_off": call(fcntl.ioctl, fd, FIOASYNC, bytearray(struct.pack("i", 0))),
        "figetbsz": call(fcntl.ioctl, fd, FIGETBSZ, bsz),
        "figetbsz_value": struct.unpack("i", bsz)[0],
        "figetbsz_bad_pointer": call(fcntl.ioctl, fd, FIGETBSZ, 16),
        "fionread": call(fcntl.ioctl, fd, FIONREAD, bytearray(4)),
        "fionbio_bad_pointer": call(fcntl.ioctl, fd, FIONBIO, 16),
        "fioclex": call(fcntl.ioctl, fd, FIOCLEX),
        "getfd_after_fioclex": fcntl.fcntl(fd, fcntl.F_GETFD),
        "fionclex": call(fcntl.ioctl, fd, FIONCLEX),
        "getfd_after_fionclex": fcntl.fcntl(fd, fcntl.F_GETFD),
        "unknown": call(fcntl.ioctl, fd, 0x7542),
        "create_int_arg_16": call(fcntl.ioctl, fd, UDMABUF_CREATE, 16),
    }


def dev_proc_fd(r, fd):
    p = "/proc/self/fd/%d" % fd
    return {
        "lstat": mode_of(os.lstat(p)),
        "stat_chr": stat.S_ISCHR(os.stat(p).st_mode),
        "fdinfo_stat": mode_of(os.stat("/proc/self/fdinfo/%d" % fd)),
    }


def dev_reopen_via_proc(r, fd):
    d = r.fd(os.open("/proc/self/fd/%d" % fd, os.O_RDONLY))
    fcntl.fcntl(d, fcntl.F_SETFL, os.O_NONBLOCK)
    return {
        "link": os.readlink("/proc/self/fd/%d" % d),
        "getfl_new": oct(fcntl.fcntl(d, fcntl.F_GETFL)),
        "getfl_old_unaffected": oct(fcntl.fcntl(fd, fcntl.F_GETFL)),
    }


def dev_builtin_open(r, fd):
    with open(DEV, "rb", buffering=0) as f:
        n = f.fileno()
        out = {
            "is_fileio": isinstance(f, io.FileIO),
            "name": f.name,
            "mode": f.mode,
            "getfl": oct(fcntl.fcntl(n, fcntl.F_GETFL)),
            "cloexec": fcntl.fcntl(n, fcntl.F_GETFD),
            "read": attempt(f.read, 4),
            "seekable": f.seekable(),
        }
    out["closed_after_with"] = attempt(fcntl.fcntl, n, fcntl.F_GETFD)
    low = lowest_free()
    out["open_r_plus_b"] = attempt(lambda: open(DEV, "r+b"))
    with open(DEV, "wb") as f:
        out["buffered_type"] = type(f).__name__
        out["buffered_getfl"] = oct(fcntl.fcntl(f.fileno(), fcntl.F_GETFL))
    with open(DEV, "rb") as f:
        out["rb_type"] = type(f).__name__
        out["rb_read"] = attempt(f.read, 4)
    out["open_binary_with_encoding"] = attempt(lambda: open(DEV, "rb", encoding="utf-8"))
    out["text_unbuffered"] = attempt(lambda: open(DEV, buffering=0))
    out["no_fd_leaked"] = lowest_free() == low
    return out


# --- a dma-buf fd ---------------------------------------------------------------------


def dmabuf_proc_fd(r, buf):
    p = "/proc/self/fd/%d" % buf
    return {
        "lstat": mode_of(os.lstat(p)),
        "stat": mode_of(os.stat(p)),
        "reopen": call(lambda: r.fd(os.open(p, os.O_RDWR)) and "opened"),
        "reopen_rdonly": call(lambda: r.fd(os.open(p, os.O_RDONLY)) and "opened"),
    }


def dmabuf_mmap_errors(r, buf):
    return {
        "length_0": attempt(lambda: len(mmap.mmap(buf, 0))),
        "offset_unaligned": attempt(lambda: len(mmap.mmap(buf, PAGE, offset=100))),
        "beyond_size": attempt(lambda: len(mmap.mmap(buf, SIZE + PAGE))),
        "private": attempt(lambda: len(mmap.mmap(buf, PAGE, flags=mmap.MAP_PRIVATE))),
        "access_copy": attempt(lambda: len(mmap.mmap(buf, PAGE, access=mmap.ACCESS_COPY))),
        "access_read_write_raises": type(_write_ro(buf)).__name__,
    }


def _write_ro(buf):
    m = mmap.mmap(buf, PAGE, access=mmap.ACCESS_READ)
    try:
        m[0:1] = b"x"
    except Exception as e:
        return e
    finally:
        m.close()
    return None


def dmabuf_dup_dup3(r, buf):
    a = r.fd(os.open("/dev/null", os.O_RDONLY))
    libc = ctypes.CDLL(None, use_errno=True)

    def dup3(o, n, fl):
        res = libc.dup3(o, n, fl)
        if res < 0:
            raise OSError(ctypes.get_errno(), "dup3")
        return res

    return {
        "dup3_same": call(os.dup2, buf, buf, False),
        "dup3_same_libc": call(dup3, buf, buf, os.O_CLOEXEC),
        "dup3_bad_flags": call(dup3, buf, a, os.O_NONBLOCK),
        "dup3_negative": call(dup3, buf, -1, 0),
        "dup2_same": os.dup2(buf, buf) == buf,
        "dup3_onto_devnull_link": (os.dup2(buf, a, inheritable=False) == a)
        and os.readlink("/proc/self/fd/%d" % a) == os.readlink("/proc/self/fd/%d" % buf),
        "cloexec_after_dup3": fcntl.fcntl(a, fcntl.F_GETFD),
    }


# --- fcntl.ioctl argument conventions ----------------------------------------------------


def pipe_ioctl_args(r, rd):
    out = {}
    out["int_0"] = attempt(fcntl.ioctl, rd, FIONREAD, 0)
    out["int_16"] = attempt(fcntl.ioctl, rd, FIONREAD, 16)
    res = fcntl.ioctl(rd, FIONREAD, b"\xff\xff\xff\xff")
    out["bytes"] = {"type": type(res).__name__, "value": struct.unpack("i", res)[0]}
    res = fcntl.ioctl(rd, FIONREAD, b"\xff\xff\xff\xff\x01\x02")
    out["bytes_longer"] = {"len": len(res), "tail": list(res[4:])}
    res = fcntl.ioctl(rd, FIONREAD, "abcd")
    out["str"] = {"type": type(res).__name__, "value": struct.unpack("i", res)[0]}
    b = bytearray(4)
    res = fcntl.ioctl(rd, FIONREAD, b)
    out["bytearray"] = {"returns": res, "value": struct.unpack("i", b)[0]}
    b = bytearray(4)
    res = fcntl.ioctl(rd, FIONREAD, b, False)
    out["bytearray_no_mutate"] = {
        "type": type(res).__name__,
        "value": struct.unpack("i", res)[0],
        "buffer_unchanged": b == bytearray(4),
    }
    b = bytearray(2000)
    res = fcntl.ioctl(rd, FIONREAD, b)
    out["bytearray_2000"] = {"returns": res, "value": struct.unpack("i", b[:4])[0]}
    out["bytearray_2000_no_mutate"] = attempt(
        lambda: fcntl.ioctl(rd, FIONREAD, bytearray(2000), False)
    )
    out["bytes_2000"] = attempt(lambda: fcntl.ioctl(rd, FIONREAD, bytes(2000)))
    b = bytearray(1024)
    out["bytearray_1024"] = fcntl.ioctl(rd, FIONREAD, b)
    out["bytes_1024"] = len(fcntl.ioctl(rd, FIONREAD, bytes(1024)))
    c = ctypes.c_int(-1)
    out["ctypes_int"] = {"returns": fcntl.ioctl(rd, FIONREAD, c), "value": c.value}
    out["request_negative"] = attempt(lambda: len(fcntl.ioctl(rd, FIONREAD - (1 << 32), bytes(4))))
    out["request_above_32_bits"] = attempt(
        lambda: len(fcntl.ioctl(rd, FIONREAD | (1 << 40), bytes(4)))
    )
    out["int_overflow"] = attempt(lambda: fcntl.ioctl(rd, FIONREAD, 1 << 31))
    out["int_underflow"] = attempt(lambda: fcntl.ioctl(rd, FIONREAD, -(1 << 31) - 1))
    out["float"] = attempt(lambda: fcntl.ioctl(rd, FIONREAD, 1.0))
    out["none"] = attempt(lambda: fcntl.ioctl(rd, FIONREAD, None))

    class F:
        def fileno(self):
            return rd

    out["fileno_object"] = struct.unpack("i", fcntl.ioctl(F(), FIONREAD, bytes(4)))[0]
    return out


def dmabuf_ioctl_args(r, buf):
    sync = struct.pack("=Q", DMA_BUF_SYNC_RW)
    out = {}
    out["sync_bytes"] = fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC, sync) == sync
    out["sync_request_negative"] = fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC - (1 << 32), bytearray(sync))
    out["sync_request_above_32_bits"] = fcntl.ioctl(
        buf, DMA_BUF_IOCTL_SYNC | (1 << 36), bytearray(sync)
    )
    out["set_name_int_16"] = attempt(fcntl.ioctl, buf, DMA_BUF_SET_NAME_B, 16)
    big = bytearray(b"big\0" + bytes(1996))
    out["set_name_2000_mutable"] = attempt(fcntl.ioctl, buf, DMA_BUF_SET_NAME_B, big)
    out["name_after_2000"] = [l for l in fdinfo(buf) if l.startswith("name:")]
    out["set_name_2000_bytes"] = attempt(lambda: fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, b"x" * 2000))
    out["set_name_short_str"] = attempt(
        lambda: type(fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, "short")).__name__
    )
    out["name_after_str"] = [l for l in fdinfo(buf) if l.startswith("name:")]
    out["unknown"] = attempt(fcntl.ioctl, buf, 0x6299)
    return out


def ctypes_struct_create(r, buf):
    dev = r.fd(os.open(DEV, os.O_RDWR))
    memfd = r.fd(os.memfd_create("probe2", MFD_ALLOW_SEALING))
    os.ftruncate(memfd, PAGE)
    fcntl.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK)
    c = udmabuf_create(memfd=memfd, flags=0, offset=0, size=PAGE)
    fd = r.fd(fcntl.ioctl(dev, UDMABUF_CREATE, c))
    return {
        "size": os.fstat(fd).st_size,
        "struct_unchanged": c.size == PAGE and c.memfd == memfd,
        "immutable_copy": immutable_create(dev, bytes(c)),
    }


def immutable_create(dev, arg):
    low = lowest_free()
    res = fcntl.ioctl(dev, UDMABUF_CREATE, arg)
    os.close(low)  # the new dma-buf got the lowest free number
    return {"type": type(res).__name__, "unchanged": res == arg}


def main():
    steps = [
        ("dev_stat", dev_stat),
        ("dev_stat_trailing_slash", lambda: mode_of(os.stat(DEV + "/"))),
        ("dev_subpath", lambda: mode_of(os.stat(DEV + "/x"))),
        ("dev_access", dev_access),
        ("dev_listed_in_dev", dev_listed_in_dev),
        ("dev_open_o_directory", open_mode(lambda: os.open(DEV, os.O_RDONLY | os.O_DIRECTORY))),
        (
            "dev_open_creat_excl",
            open_mode(lambda: os.open(DEV, os.O_RDWR | os.O_CREAT | os.O_EXCL)),
        ),
        ("dev_open_creat", open_mode(lambda: os.open(DEV, os.O_RDWR | os.O_CREAT))),
        ("dev_open_wronly_trunc", open_mode(lambda: os.open(DEV, os.O_WRONLY | os.O_TRUNC))),
        ("sysfs_device_link", sysfs_device_link),
        ("sysfs_device_link_trailing_slash", sysfs_device_link_trailing_slash),
        ("sysfs_vendor", sysfs_vendor),
        ("sysfs_vendor_trailing_slash", lambda: mode_of(os.stat(PCI_DEV + "/vendor/"))),
        ("sysfs_vendor_open_wronly", open_mode(lambda: os.open(PCI_DEV + "/vendor", os.O_WRONLY))),
        ("sysfs_group_devices", sysfs_group_devices),
        ("sysfs_missing_stat", sysfs_missing(lambda: os.stat("/sys/bus/pci/devices/0000:7f:1f.7"))),
        (
            "sysfs_missing_open",
            sysfs_missing(lambda: open("/sys/bus/pci/devices/0000:7f:1f.7/vendor")),
        ),
        ("sysfs_missing_listdir", sysfs_missing(lambda: os.listdir(GROUP_DEVS + "/nope"))),
        (
            "sysfs_missing_creat",
            sysfs_missing(
                lambda: os.close(os.open("/sys/bus/pci/devices/newfile", os.O_WRONLY | os.O_CREAT))
            ),
        ),
        ("sysfs_open_dir", open_mode(lambda: os.open("/sys/bus/pci/devices", os.O_RDONLY))),
        ("bufinfo_stat", bufinfo_stat),
        ("bufinfo_open_wronly", open_mode(lambda: os.open(BUFINFO, os.O_WRONLY))),
        ("bufinfo_trailing_slash", lambda: mode_of(os.stat(BUFINFO + "/"))),
        ("dirs_access", dirs_access),
        ("dev_fd_io", with_dev(dev_fd_io)),
        ("dev_fd_flags", with_dev(dev_fd_flags)),
        ("dev_fd_flags_rdonly_nonblock", with_dev(dev_fd_flags, os.O_RDONLY | os.O_NONBLOCK)),
        ("dev_fd_setfl", with_dev(dev_fd_setfl)),
        ("dev_fd_generic_ioctls", with_dev(dev_fd_generic_ioctls)),
        ("dev_proc_fd", with_dev(dev_proc_fd)),
        ("dev_reopen_via_proc", with_dev(dev_reopen_via_proc)),
        ("dev_builtin_open", with_dev(dev_builtin_open)),
        ("dmabuf_proc_fd", with_dmabuf(dmabuf_proc_fd)),
        ("dmabuf_mmap_errors", with_dmabuf(dmabuf_mmap_errors)),
        ("dmabuf_dup_dup3", with_dmabuf(dmabuf_dup_dup3)),
        ("pipe_ioctl_args", with_pipe(pipe_ioctl_args)),
        ("dmabuf_ioctl_args", with_dmabuf(dmabuf_ioctl_args)),
        ("ctypes_struct_create", with_dmabuf(ctypes_struct_create)),
    ]
    for name, fn in steps:
        run(name, fn)


if __name__ == "__main__":
    main()
