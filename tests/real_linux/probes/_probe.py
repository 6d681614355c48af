"""What the probes of this directory share: output, the step runner, fd helpers, uapi.

Every probe imports it with ``from _probe import ...``: Python puts the directory of the
program it runs first on ``sys.path``, both for ``python3 probes/X.py`` on the real-Linux
guest and for ``mockkernel run probes/X.py``, so no path setup is needed.  Like the
probes it is standard library only and never imports mockkernel: it must run unchanged on
real Linux.  Importing it has no side effect (no fd is opened, nothing is printed).

Sections: output and steps; fds and files; generic ioctls, memfd seals; udmabuf and
dma-buf; uverbs (rdma/*.h); VFIO (linux/vfio.h).  Each probe keeps its own steps and the
helpers only it uses.

Output: one JSON object per line, in step order::

    {"step": NAME, "ok": RESULT}            the step's calls succeeded
    {"step": NAME, "errno": "ENAME"}        the step's call failed
    {"step": NAME, "exception": "TypeName"}  Python refused before any syscall
"""
import ctypes
import errno
import fcntl
import json
import mmap
import os
import struct
import sys

# --- output and steps --------------------------------------------------------------


def emit(step, **kw):
    # anything json cannot encode (bytes, ...) is shown by its type name
    line = json.dumps({"step": step, **kw}, default=lambda o: "<%s>" % type(o).__name__)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run(step, fn):
    """Run fn() as one independent step; report its result or its errno."""
    try:
        result = fn()
    except OSError as e:
        emit(step, errno=errno.errorcode.get(e.errno, str(e.errno)))
    except Exception as e:  # a Python-level refusal (ValueError, ...)
        emit(step, exception=type(e).__name__)
    else:
        emit(step, ok=result)


def run_all(steps):
    """Run each (name, fn) of steps in order."""
    for name, fn in steps:
        run(name, fn)


def call(fn, *args):
    """Run fn(*args); return its result or the errno name (for sub-results)."""
    try:
        return fn(*args)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


# --- fds and files -----------------------------------------------------------------


def close_all(*fds):
    for fd in fds:
        if fd is not None and fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


def lowest_free():
    """The lowest free fd number right now (open /dev/null, close it)."""
    fd = os.open("/dev/null", os.O_RDONLY)
    os.close(fd)
    return fd


def closed_fd():
    """A number that is certainly not an open fd."""
    return lowest_free()


def cloexec(fd):
    return bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)


def nonblock(fd):
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK)


def is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def open_fds():
    """The open fd numbers (without the directory fd listdir used for itself)."""
    return {int(n) for n in os.listdir("/proc/self/fd") if is_open(int(n))}


def link(fd):
    """The /proc/self/fd/FD link."""
    return os.readlink("/proc/self/fd/%d" % fd)


class Res:
    """Tracks fds and mmaps opened in one step; closes them all at the end."""

    def __init__(self):
        self.fds = []
        self.maps = []

    def fd(self, fd):
        self.fds.append(fd)
        return fd

    def map(self, m):
        self.maps.append(m)
        return m

    def unmap(self, m):
        self.maps.remove(m)
        m.close()

    def close(self, fd):
        self.fds.remove(fd)
        os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for m in reversed(self.maps):
            try:
                m.close()
            except Exception:
                pass
        close_all(*reversed(self.fds))
        return False


def read_text(path):
    """The whole file, read with os.open/os.read."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


def mmap_addr(m):
    """The address of a Python mmap's first byte."""
    return ctypes.addressof(ctypes.c_char.from_buffer(m))


libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

# --- generic ioctls, memfd seals (asm-generic/ioctls.h, linux/fs.h, linux/fcntl.h) ---

PAGE = 4096


def ioc(d, t, nr, size):
    """_IOC(dir, type, nr, size): dir 0 none, 1 write (_IOW), 2 read (_IOR), 3 both."""
    return (d << 30) | (size << 16) | (ord(t) << 8) | nr


FIONCLEX = 0x5450
FIOCLEX = 0x5451
FIONBIO = 0x5421
FIOASYNC = 0x5452
FIONREAD = 0x541B
FIOQSIZE = 0x5460
FIGETBSZ = 2                      # _IO(0x00, 2)
TCGETS = 0x5401
FS_IOC_GETFLAGS = 0x80086601

MFD_ALLOW_SEALING = 0x0002
F_ADD_SEALS = 1033
F_GET_SEALS = 1034
F_SEAL_SEAL = 0x0001
F_SEAL_SHRINK = 0x0002
F_SEAL_GROW = 0x0004
F_SEAL_WRITE = 0x0008
F_SEAL_FUTURE_WRITE = 0x0010

# --- udmabuf and dma-buf (linux/udmabuf.h, linux/dma-buf.h) ------------------------

# struct udmabuf_create      {u32 memfd; u32 flags; u64 offset; u64 size;}   24 bytes
# struct udmabuf_create_list {u32 flags; u32 count; struct udmabuf_create_item list[];}  8 bytes
# struct udmabuf_create_item {u32 memfd; u32 __pad; u64 offset; u64 size;}   24 bytes
UDMABUF_CREATE = ioc(1, "u", 0x42, 24)                # 0x40187542
UDMABUF_CREATE_LIST = ioc(1, "u", 0x43, 8)            # 0x40087543
UDMABUF_FLAGS_CLOEXEC = 0x01

DMA_BUF_IOCTL_SYNC = ioc(1, "b", 0, 8)                # 0x40086200
DMA_BUF_SET_NAME_A = ioc(1, "b", 1, 4)                # 0x40046201
DMA_BUF_SET_NAME_B = ioc(1, "b", 1, 8)                # 0x40086201
DMA_BUF_IOCTL_EXPORT_SYNC_FILE = ioc(3, "b", 2, 8)    # 0xC0086202
DMA_BUF_IOCTL_IMPORT_SYNC_FILE = ioc(1, "b", 3, 8)    # 0x40086203
DMA_BUF_SYNC_READ = 1
DMA_BUF_SYNC_WRITE = 2
DMA_BUF_SYNC_RW = 3
DMA_BUF_SYNC_START = 0
DMA_BUF_SYNC_END = 4

SIZE = 2 * PAGE  # the default size of a probe's memfd and dma-buf


def udmabuf_create(dev, memfd, offset, size, flags=0):
    """UDMABUF_CREATE on the /dev/udmabuf fd dev; returns the new dma-buf fd."""
    arg = bytearray(struct.pack("=IIQQ", memfd & 0xFFFFFFFF, flags, offset, size))
    return fcntl.ioctl(dev, UDMABUF_CREATE, arg)


def pattern(size, seed=0):
    return bytes((i * 7 + seed + i // PAGE) % 251 for i in range(size))


def make_memfd(r, size=SIZE, seed=0):
    """A memfd of size bytes holding pattern(size, seed), sealed F_SEAL_SHRINK."""
    fd = r.fd(os.memfd_create("probe", MFD_ALLOW_SEALING))
    os.ftruncate(fd, size)
    os.pwrite(fd, pattern(size, seed), 0)
    fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK)
    return fd


def make_dmabuf(r, size=SIZE, flags=0, seed=0):
    """Returns (memfd, dmabuf fd); /dev/udmabuf is closed again at once."""
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    try:
        memfd = make_memfd(r, size, seed)
        return memfd, r.fd(udmabuf_create(dev, memfd, 0, size, flags))
    finally:
        os.close(dev)


def with_dmabuf(fn, **kw):
    """A step running fn(r, memfd, dmabuf) on a fresh udmabuf dma-buf."""
    def step():
        with Res() as r:
            memfd, buf = make_dmabuf(r, **kw)
            return fn(r, memfd, buf)
    return step


NORMALIZE_FDINFO = {"mnt_id": "<mnt_id>", "ino": "<ino>"}


def fdinfo(fd):
    """/proc/self/fdinfo/FD as a list of lines, mnt_id and ino normalized."""
    out = []
    for line in read_text("/proc/self/fdinfo/%d" % fd).splitlines():
        key, sep, value = line.partition(":")
        if key in NORMALIZE_FDINFO:
            line = key + ":\t" + NORMALIZE_FDINFO[key]
        out.append(line)
    return out


def fdinfo_field(fd, key):
    for line in fdinfo(fd):
        k, sep, v = line.partition(":")
        if k == key:
            return v.strip("\t")
    return None


# --- uverbs --------------------------------------------------------------------------
#
# Layouts and numbers from the Linux 7.2 uapi (rdma/rdma_user_ioctl_cmds.h,
# rdma/ib_user_ioctl_cmds.h, rdma/ib_user_verbs.h), written out by hand so the
# probes need no mockkernel import.

MASK64 = (1 << 64) - 1
UVERBS_DEV = "/dev/infiniband/uverbs0"
SYS_VERBS = "/sys/class/infiniband_verbs"
SYS_IB = "/sys/class/infiniband"

# RDMA_VERBS_IOCTL = _IOWR(0x1b, 1, struct ib_uverbs_ioctl_hdr): the size is the 24-byte header
RDMA_VERBS_IOCTL = (3 << 30) | (24 << 16) | (0x1B << 8) | 1  # 0xC0181B01
# struct ib_uverbs_ioctl_hdr {u16 length, object_id, method_id, num_attrs; u64 reserved1;
#                             u32 driver_id, reserved2; struct ib_uverbs_attr attrs[];}
HDR_FMT = "=HHHHQII"
# struct ib_uverbs_attr {u16 attr_id, len, flags; union {u8 elem_id, reserved; u16 reserved}
#                        attr_data; union {u64 data; s64 data_s64};}
ATTR_FMT = "=HHHHQ"
UVERBS_ATTR_F_MANDATORY = 1
UVERBS_ATTR_F_VALID_OUTPUT = 2

# objects
OBJ_DEVICE, OBJ_PD, OBJ_MR, OBJ_DMAH = 0, 1, 7, 17
# UVERBS_OBJECT_DEVICE methods and attributes
M_INVOKE_WRITE, M_INFO_HANDLES, M_QUERY_PORT, M_GET_CONTEXT = 0, 1, 2, 3
A_CORE_IN, A_CORE_OUT, A_WRITE_CMD = 0, 1, 2
A_QP_PORT_NUM, A_QP_RESP = 0, 1
A_GC_NUM_COMP_VECTORS, A_GC_CORE_SUPPORT = 0, 1
A_UHW_IN, A_UHW_OUT = 0x1000, 0x1001
# UVERBS_OBJECT_PD
M_PD_DESTROY, A_PD_DESTROY_HANDLE = 0, 0
# UVERBS_OBJECT_MR methods
M_DM_MR_REG, M_MR_DESTROY, M_ADVISE_MR, M_QUERY_MR, M_REG_DMABUF_MR, M_REG_MR = 0, 1, 2, 3, 4, 5
A_MR_DESTROY_HANDLE = 0
A_ADVISE_PD, A_ADVISE_ADVICE, A_ADVISE_FLAGS, A_ADVISE_SGE_LIST = 0, 1, 2, 3
A_QMR_HANDLE, A_QMR_LKEY, A_QMR_RKEY, A_QMR_LENGTH, A_QMR_IOVA = 0, 1, 2, 3, 4
(
    A_DB_HANDLE,
    A_DB_PD,
    A_DB_OFFSET,
    A_DB_LENGTH,
    A_DB_IOVA,
    A_DB_FD,
    A_DB_ACCESS,
    A_DB_LKEY,
    A_DB_RKEY,
) = range(9)
(
    A_RM_HANDLE,
    A_RM_PD,
    A_RM_DMAH,
    A_RM_IOVA,
    A_RM_ADDR,
    A_RM_LENGTH,
    A_RM_ACCESS,
    A_RM_FD,
    A_RM_FD_OFFSET,
    A_RM_LKEY,
    A_RM_RKEY,
) = range(11)
# UVERBS_OBJECT_DMAH
M_DMAH_ALLOC, M_DMAH_FREE = 0, 1
A_DMAH_HANDLE, A_DMAH_CPU_ID, A_DMAH_TPH_MEM_TYPE, A_DMAH_PH = 0, 1, 2, 3
A_DMAH_FREE_HANDLE = 0

# legacy write() commands (rdma/ib_user_verbs.h)
CMD_GET_CONTEXT, CMD_QUERY_DEVICE, CMD_QUERY_PORT, CMD_ALLOC_PD, CMD_DEALLOC_PD = 0, 1, 2, 3, 4
CMD_REG_MR, CMD_REG_SMR, CMD_REREG_MR, CMD_QUERY_MR, CMD_DEREG_MR = 9, 10, 11, 12, 13
CMD_FLAG_EXTENDED = 0x80000000
CMD_HDR_FMT = "=IHH"  # ib_uverbs_cmd_hdr {u32 command; u16 in_words, out_words;}
EX_HDR_FMT = "=QHHI"  # ib_uverbs_ex_cmd_hdr {u64 response; u16 provider_in/out_words; u32 rsvd}

# struct ib_uverbs_query_port_resp: QUERY_PORT's 40-byte answer (by ioctl or by write)
PORT_RESP_FMT = "=IIIIIHHHBBBBBBBBBBBBBB"
PORT_RESP_FIELDS = (
    "port_cap_flags", "max_msg_sz", "bad_pkey_cntr", "qkey_viol_cntr", "gid_tbl_len",
    "pkey_tbl_len", "lid", "sm_lid", "state", "max_mtu", "active_mtu", "lmc", "max_vl_num",
    "sm_sl", "subnet_timeout", "init_type_reply", "active_width", "active_speed", "phys_state",
    "link_layer", "flags", "reserved",
)

# access flags (IB_UVERBS_ACCESS_*)
LOCAL_WRITE, REMOTE_WRITE, REMOTE_READ, REMOTE_ATOMIC = 1, 2, 4, 8
MW_BIND, ZERO_BASED, ON_DEMAND, HUGETLB = 1 << 4, 1 << 5, 1 << 6, 1 << 7
RELAXED_ORDERING = 1 << 20

# enum rdma_driver_id, by ibdev name prefix (the ioctl header must carry the device's id)
DRIVER_IDS = (("rxe", 14), ("mlx5_", 1), ("siw", 18))


def read_sysfs(path):
    """A sysfs attribute's text, without the trailing newline."""
    with open(path) as f:
        return f.read().strip()


def ibdev_name():
    return read_sysfs(SYS_VERBS + "/uverbs0/ibdev")


def device_driver_id():
    name = ibdev_name()
    for prefix, did in DRIVER_IDS:
        if name.startswith(prefix):
            return did
    raise RuntimeError(f"unknown RDMA device {name!r}")


DRIVER_ID = None  # what verbs() puts in the header: each probe's main() sets it first


class Bufs:
    """ctypes buffers whose addresses go into attributes; kept alive for one step."""

    def __init__(self):
        self.keep = []

    def out(self, n, fill=0xAA):
        b = ctypes.create_string_buffer(bytes([fill]) * n, n)
        self.keep.append(b)
        return b

    def inp(self, data):
        b = ctypes.create_string_buffer(bytes(data), len(data))
        self.keep.append(b)
        return b

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def addr(buf):
    return ctypes.addressof(buf)


def A(attr_id, data=0, length=0, flags=0, reserved=0):
    """One ib_uverbs_attr: (attr_id, len, flags, attr_data.reserved, data)."""
    return (attr_id, length, flags, reserved, data)


def A_in8(attr_id, value, flags=0):
    """An inline PTR_IN of a u64 (len 8: the value travels in data)."""
    return A(attr_id, value, 8, flags)


def A_out(attr_id, buf, flags=0):
    return A(attr_id, addr(buf), len(buf), flags)


def A_idr(attr_id, handle, flags=0):
    return A(attr_id, handle, 0, flags)


def verbs(
    fd, obj, method, attrs, driver_id=None, length=None, num_attrs=None, reserved1=0, reserved2=0
):
    """RDMA_VERBS_IOCTL; returns the attribute array as the kernel left it."""
    n = len(attrs) if num_attrs is None else num_attrs
    hlen = 24 + 16 * len(attrs) if length is None else length
    did = DRIVER_ID if driver_id is None else driver_id
    buf = bytearray(struct.pack(HDR_FMT, hlen, obj, method, n, reserved1, did, reserved2))
    for a in attrs:
        buf += struct.pack(ATTR_FMT, a[0], a[1], a[2], a[3], a[4] & MASK64)
    fcntl.ioctl(fd, RDMA_VERBS_IOCTL, buf)
    return [struct.unpack_from(ATTR_FMT, buf, 24 + 16 * i) for i in range(len(attrs))]


def out_flags(after):
    """The flags of each attribute after the call (VALID_OUTPUT = 2 is kernel output)."""
    return [a[2] for a in after]


def u32(buf, off=0):
    return struct.unpack_from("=I", buf.raw, off)[0]


def u64(buf, off=0):
    return struct.unpack_from("=Q", buf.raw, off)[0]


def port_resp_fields(raw):
    """The ib_uverbs_query_port_resp at the start of raw, as {field: value}."""
    return dict(zip(PORT_RESP_FIELDS, struct.unpack_from(PORT_RESP_FMT, raw, 0), strict=True))


def tail_state(raw):
    """What became of a response's bytes past what the kernel wrote (filled with 0xAA)."""
    if not raw:
        return None
    if raw == bytes(len(raw)):
        return "zeroed"
    if raw == b"\xaa" * len(raw):
        return "untouched"
    return "mixed"


def write_cmd(fd, command, body, out_words=0, in_words=None):
    """A legacy write() command: ib_uverbs_cmd_hdr + body; returns write()'s count."""
    iw = (8 + len(body)) // 4 if in_words is None else in_words
    return os.write(fd, struct.pack(CMD_HDR_FMT, command, iw, out_words) + bytes(body))


def open_uverbs(r, flags=os.O_RDWR):
    return r.fd(os.open(UVERBS_DEV, flags))


def get_context(fd):
    """UVERBS_METHOD_GET_CONTEXT through the ioctl (no async event fd is made)."""
    verbs(fd, OBJ_DEVICE, M_GET_CONTEXT, [])


def open_ctx(r):
    fd = open_uverbs(r)
    get_context(fd)
    return fd


def no_ctx(fn):
    """A step running fn(fd, b) on a fresh uverbs fd without a context."""
    def step():
        with Res() as r, Bufs() as b:
            fd = open_uverbs(r)
            return fn(fd, b)
    return step


def ctx(fn):
    """A step running fn(fd, b) on a fresh uverbs fd after GET_CONTEXT (by ioctl)."""
    def step():
        with Res() as r, Bufs() as b:
            fd = open_ctx(r)
            return fn(fd, b)
    return step


def alloc_pd(fd):
    """IB_USER_VERBS_CMD_ALLOC_PD by write(), as rdma-core does; returns the PD handle."""
    resp = ctypes.create_string_buffer(4)
    write_cmd(fd, CMD_ALLOC_PD, struct.pack("=Q", addr(resp)), out_words=1)
    return u32(resp)


def dealloc_pd(fd, pd):
    return write_cmd(fd, CMD_DEALLOC_PD, struct.pack("=I", pd))


def reg_mr(fd, pd, start, length, iova, access):
    """IB_USER_VERBS_CMD_REG_MR by write(); returns (mr_handle, lkey, rkey)."""
    resp = ctypes.create_string_buffer(12)
    body = struct.pack("=QQQQII", addr(resp), start, length, iova, pd, access)
    write_cmd(fd, CMD_REG_MR, body, out_words=3)
    return struct.unpack("=III", resp.raw)


def dereg_mr(fd, mr):
    return write_cmd(fd, CMD_DEREG_MR, struct.pack("=I", mr))


def reg_mr_ioctl(fd, b, pd, length, iova, access, addr_=None, fd_=None, fd_offset=None, extra=()):
    """UVERBS_METHOD_REG_MR; returns (handle, lkey, rkey)."""
    lkey, rkey = b.out(4), b.out(4)
    attrs = [
        A_idr(A_RM_HANDLE, 0),
        A_idr(A_RM_PD, pd),
        A_in8(A_RM_IOVA, iova),
        A_in8(A_RM_LENGTH, length),
        A(A_RM_ACCESS, access, 4),
    ]
    if addr_ is not None:
        attrs.append(A_in8(A_RM_ADDR, addr_))
    if fd_ is not None:
        attrs.append(A(A_RM_FD, fd_, 0))
    if fd_offset is not None:
        attrs.append(A_in8(A_RM_FD_OFFSET, fd_offset))
    attrs += [A_out(A_RM_LKEY, lkey), A_out(A_RM_RKEY, rkey), *extra]
    after = verbs(fd, OBJ_MR, M_REG_MR, attrs)
    return after[0][4], u32(lkey), u32(rkey)


def reg_dmabuf_mr(fd, b, pd, offset, length, iova, dmabuf_fd, access, extra=()):
    """UVERBS_METHOD_REG_DMABUF_MR; returns (handle, lkey, rkey)."""
    lkey, rkey = b.out(4), b.out(4)
    attrs = [
        A_idr(A_DB_HANDLE, 0),
        A_idr(A_DB_PD, pd),
        A_in8(A_DB_OFFSET, offset),
        A_in8(A_DB_LENGTH, length),
        A_in8(A_DB_IOVA, iova),
        A(A_DB_FD, dmabuf_fd & 0xFFFFFFFF, 4),
        A(A_DB_ACCESS, access, 4),
        A_out(A_DB_LKEY, lkey),
        A_out(A_DB_RKEY, rkey),
        *extra,
    ]
    after = verbs(fd, OBJ_MR, M_REG_DMABUF_MR, attrs)
    return after[0][4], u32(lkey), u32(rkey)


def destroy(fd, obj, method, handle, flags=0):
    verbs(fd, obj, method, [A_idr(0, handle, flags)])


def anon_pages(r, n):
    """n fresh anonymous pages (an mmap kept in r); returns their address."""
    m = r.map(mmap.mmap(-1, n * PAGE))
    m[:] = bytes(n * PAGE)
    return mmap_addr(m)


# --- VFIO ----------------------------------------------------------------------------
# Constants and structs from linux/vfio.h (Linux 7.2), defined inline: probes run
# unchanged on real Linux and must not import mockkernel.

VFIO_TYPE = ord(";")
VFIO_BASE = 100


def vfio_io(n):
    """_IO(VFIO_TYPE, VFIO_BASE + n): VFIO ioctls carry their size in argsz."""
    return (VFIO_TYPE << 8) | (VFIO_BASE + n)


VFIO_GET_API_VERSION = vfio_io(0)          # 0x3B64
VFIO_CHECK_EXTENSION = vfio_io(1)          # 0x3B65
VFIO_SET_IOMMU = vfio_io(2)                # 0x3B66
VFIO_GROUP_GET_STATUS = vfio_io(3)         # 0x3B67
VFIO_GROUP_SET_CONTAINER = vfio_io(4)      # 0x3B68
VFIO_GROUP_UNSET_CONTAINER = vfio_io(5)    # 0x3B69
VFIO_GROUP_GET_DEVICE_FD = vfio_io(6)      # 0x3B6A
VFIO_DEVICE_GET_INFO = vfio_io(7)          # 0x3B6B
VFIO_DEVICE_GET_REGION_INFO = vfio_io(8)   # 0x3B6C
VFIO_DEVICE_GET_IRQ_INFO = vfio_io(9)      # 0x3B6D
VFIO_DEVICE_SET_IRQS = vfio_io(10)         # 0x3B6E
VFIO_DEVICE_RESET = vfio_io(11)            # 0x3B6F
VFIO_IOMMU_GET_INFO = vfio_io(12)          # 0x3B70 (container fd)
VFIO_IOMMU_MAP_DMA = vfio_io(13)           # 0x3B71
VFIO_IOMMU_UNMAP_DMA = vfio_io(14)         # 0x3B72
VFIO_DEVICE_FEATURE = vfio_io(17)          # 0x3B75

VFIO_API_VERSION = 0
VFIO_TYPE1_IOMMU = 1
VFIO_TYPE1v2_IOMMU = 3
VFIO_NOIOMMU_IOMMU = 8
EXTENSIONS = {1: "TYPE1_IOMMU", 2: "SPAPR_TCE_IOMMU", 3: "TYPE1v2_IOMMU", 4: "DMA_CC_IOMMU",
              5: "EEH", 6: "RESERVED_TYPE1_NESTING_IOMMU", 7: "SPAPR_TCE_v2_IOMMU",
              8: "NOIOMMU_IOMMU", 9: "UNMAP_ALL", 10: "UPDATE_VADDR"}

VFIO_GROUP_FLAGS_VIABLE = 1 << 0
VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1

# struct vfio_group_status   {u32 argsz, flags}                                     8 B
# struct vfio_device_info    {u32 argsz, flags, num_regions, num_irqs, cap_offset, pad} 24 B
# struct vfio_region_info    {u32 argsz, flags, index, cap_offset; u64 size, offset}  32 B
# struct vfio_irq_info       {u32 argsz, flags, index, count}                          16 B
# struct vfio_iommu_type1_info {u32 argsz, flags; u64 iova_pgsizes; u32 cap_offset, pad} 24 B
# struct vfio_iommu_type1_dma_map   {u32 argsz, flags; u64 vaddr, iova, size}          32 B
# struct vfio_iommu_type1_dma_unmap {u32 argsz, flags; u64 iova, size}                 24 B
# struct vfio_info_cap_header {u16 id, version; u32 next}                              8 B
# struct vfio_device_feature {u32 argsz, flags; u8 data[]}                             8 B
# struct vfio_device_feature_dma_buf {u32 region_index, open_flags, flags, nr_ranges;
#                                     struct vfio_region_dma_range {u64 offset, length}[]} 16 B
GROUP_STATUS_FMT = "=II"
DEVICE_INFO_FMT = "=IIIIII"
REGION_INFO_FMT = "=IIIIQQ"
IRQ_INFO_FMT = "=IIII"
IOMMU_INFO_FMT = "=IIQII"
DMA_MAP_FMT = "=IIQQQ"
DMA_UNMAP_FMT = "=IIQQ"
CAP_HDR_FMT = "=HHI"
FEATURE_HDR_FMT = "=II"
DMA_BUF_FMT = "=IIII"
DMA_RANGE_FMT = "=QQ"

VFIO_DEVICE_FLAGS_RESET = 1 << 0
VFIO_DEVICE_FLAGS_PCI = 1 << 1
VFIO_DEVICE_FLAGS_CAPS = 1 << 7
VFIO_REGION_INFO_FLAG_READ = 1 << 0
VFIO_REGION_INFO_FLAG_WRITE = 1 << 1
VFIO_REGION_INFO_FLAG_MMAP = 1 << 2
VFIO_REGION_INFO_FLAG_CAPS = 1 << 3
VFIO_IRQ_INFO_EVENTFD = 1 << 0
VFIO_IRQ_INFO_MASKABLE = 1 << 1
VFIO_IRQ_INFO_AUTOMASKED = 1 << 2
VFIO_IRQ_INFO_NORESIZE = 1 << 3
VFIO_DMA_MAP_FLAG_READ = 1 << 0
VFIO_DMA_MAP_FLAG_WRITE = 1 << 1

VFIO_PCI_BAR0_REGION_INDEX = 0
VFIO_PCI_ROM_REGION_INDEX = 6
VFIO_PCI_CONFIG_REGION_INDEX = 7
VFIO_PCI_VGA_REGION_INDEX = 8
VFIO_PCI_NUM_REGIONS = 9
VFIO_PCI_NUM_IRQS = 5
REGION_NAMES = ["bar0", "bar1", "bar2", "bar3", "bar4", "bar5", "rom", "config", "vga"]
IRQ_NAMES = ["intx", "msi", "msix", "err", "req"]

VFIO_DEVICE_FEATURE_MASK = 0xFFFF
VFIO_DEVICE_FEATURE_GET = 1 << 16
VFIO_DEVICE_FEATURE_SET = 1 << 17
VFIO_DEVICE_FEATURE_PROBE = 1 << 18
VFIO_DEVICE_FEATURE_BUS_MASTER = 10
VFIO_DEVICE_FEATURE_DMA_BUF = 11
VFIO_DEVICE_FEATURE_DMA_BUF_TPH = 13    # proposed (TPH series v7-v11), unassigned in 7.2


def region_offset(index):
    """VFIO_PCI_INDEX_TO_OFFSET: vfio-pci puts region N at file offset N << 40."""
    return index << 40


# PCI config space (linux/pci_regs.h)
PCI_VENDOR_ID = 0x00
PCI_DEVICE_ID = 0x02
PCI_COMMAND = 0x04
PCI_COMMAND_IO = 0x1
PCI_COMMAND_MEMORY = 0x2
PCI_COMMAND_MASTER = 0x4
PCI_COMMAND_INTX_DISABLE = 0x400

# The two device kinds the probes know, by PCI vendor:device id.
KINDS = {(0x1234, 0x11E8): "edu", (0x1AF4, 0x1110): "ivshmem"}
SYS_PCI = "/sys/bus/pci/devices"


def find_devices():
    """{kind: {"bdf", "group"}} for every known device bound to vfio-pci (sysfs scan)."""
    found = {}
    for bdf in sorted(os.listdir(SYS_PCI)):
        d = os.path.join(SYS_PCI, bdf)
        try:
            if os.path.basename(os.readlink(d + "/driver")) != "vfio-pci":
                continue
            ids = (int(read_text(d + "/vendor"), 16), int(read_text(d + "/device"), 16))
            group = os.path.basename(os.readlink(d + "/iommu_group"))
        except OSError:
            continue
        kind = KINDS.get(ids)
        if kind and kind not in found:
            found[kind] = {"kind": kind, "bdf": bdf, "group": "/dev/vfio/" + group}
    return found


def ioctl_buf(fd, cmd, data):
    """ioctl with a mutable buffer: returns (ioctl return value, buffer after the call)."""
    buf = bytearray(data)
    ret = fcntl.ioctl(fd, cmd, buf, True)
    return ret, buf


def open_container(r):
    return r.fd(os.open("/dev/vfio/vfio", os.O_RDWR))


def open_group(r, dev):
    return r.fd(os.open(dev["group"], os.O_RDWR))


def set_container(group, container):
    return fcntl.ioctl(group, VFIO_GROUP_SET_CONTAINER, bytearray(struct.pack("=i", container)))


def set_iommu(container, kind=VFIO_TYPE1v2_IOMMU):
    return fcntl.ioctl(container, VFIO_SET_IOMMU, kind)


def get_device_fd(group, name):
    return fcntl.ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bytearray(name.encode() + b"\0"))


def group_status(group, argsz=8):
    ret, buf = ioctl_buf(group, VFIO_GROUP_GET_STATUS,
                         struct.pack(GROUP_STATUS_FMT, argsz, 0) + bytes(8))
    return struct.unpack_from(GROUP_STATUS_FMT, buf)[1]


def open_device(r, dev, iommu=VFIO_TYPE1v2_IOMMU):
    """container + group + SET_CONTAINER + SET_IOMMU + GET_DEVICE_FD: (container, group, device)."""
    container = open_container(r)
    group = open_group(r, dev)
    set_container(group, container)
    set_iommu(container, iommu)
    device = r.fd(get_device_fd(group, dev["bdf"]))
    return container, group, device


def with_device(dev, fn):
    """A step running fn(r, dev, device fd) on a freshly opened device."""
    def step():
        with Res() as r:
            c, g, d = open_device(r, dev)
            return fn(r, dev, d)
    return step


def device_info(device, argsz=24):
    ret, buf = ioctl_buf(device, VFIO_DEVICE_GET_INFO,
                         struct.pack(DEVICE_INFO_FMT, argsz, 0, 0, 0, 0, 0) + bytes(64))
    argsz, flags, num_regions, num_irqs, cap_offset, pad = struct.unpack_from(DEVICE_INFO_FMT, buf)
    return {"argsz": argsz, "flags": flags, "num_regions": num_regions, "num_irqs": num_irqs,
            "cap_offset": cap_offset}


def region_info_raw(device, index, argsz=32, extra=0):
    ret, buf = ioctl_buf(device, VFIO_DEVICE_GET_REGION_INFO,
                         struct.pack(REGION_INFO_FMT, argsz, 0, index, 0, 0, 0) + bytes(extra))
    return buf


def region_info(device, index):
    argsz, flags, idx, cap_offset, size, offset = struct.unpack_from(
        REGION_INFO_FMT, region_info_raw(device, index))
    return {"argsz": argsz, "flags": flags, "cap_offset": cap_offset, "size": size,
            "offset": offset}


def cfg_read(device, off, n):
    data = os.pread(device, n, region_offset(VFIO_PCI_CONFIG_REGION_INDEX) + off)
    return int.from_bytes(data, "little")


def cfg_write(device, off, n, value):
    return os.pwrite(device, value.to_bytes(n, "little"),
                     region_offset(VFIO_PCI_CONFIG_REGION_INDEX) + off)


def set_memory_enable(device, on):
    cmd = cfg_read(device, PCI_COMMAND, 2)
    cmd = (cmd | PCI_COMMAND_MEMORY) if on else (cmd & ~PCI_COMMAND_MEMORY)
    cfg_write(device, PCI_COMMAND, 2, cmd)
    return bool(cfg_read(device, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY)


def feature(device, flags, data=b"", argsz=None, pad=0):
    """VFIO_DEVICE_FEATURE: returns (ioctl return value, buffer after the call)."""
    payload = bytes(data)
    if argsz is None:
        argsz = 8 + len(payload)
    return ioctl_buf(device, VFIO_DEVICE_FEATURE,
                     struct.pack(FEATURE_HDR_FMT, argsz, flags) + payload + bytes(pad))
