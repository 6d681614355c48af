"""Probe: uverbs objects end to end: PD, MR (REG_MR by write and by ioctl,
REG_DMABUF_MR with a udmabuf dma-buf), QUERY_MR, DMAH, destroy paths, handles,
use counts (a PD with an MR), failed outputs, and what closing the uverbs fd
does to live objects (seen through the pins an MR holds on memfd pages:
F_SEAL_WRITE fails with EBUSY while pages are pinned).

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  No raw fds, handles, keys or addresses.
Standard library only; /dev/udmabuf needs root on real Linux.
"""

import ctypes
import errno
import fcntl
import json
import mmap
import os
import struct
import sys

# --- probe harness (kept identical in every probe file) ---------------------


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


def call(fn, *args):
    """Run fn(*args); return its result or the errno name (for sub-results)."""
    try:
        return fn(*args)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


# --- uverbs helpers (kept identical in every uverbs_* probe file) -------------
#
# Layouts and numbers from the Linux 7.2 uapi (rdma/rdma_user_ioctl_cmds.h,
# rdma/ib_user_ioctl_cmds.h, rdma/ib_user_verbs.h), written out by hand so the
# probe needs no mockkernel import.

PAGE = 4096
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

# access flags (IB_UVERBS_ACCESS_*)
LOCAL_WRITE, REMOTE_WRITE, REMOTE_READ, REMOTE_ATOMIC = 1, 2, 4, 8
MW_BIND, ZERO_BASED, ON_DEMAND, HUGETLB = 1 << 4, 1 << 5, 1 << 6, 1 << 7
RELAXED_ORDERING = 1 << 20

# enum rdma_driver_id, by ibdev name prefix (the ioctl header must carry the device's id)
DRIVER_IDS = (("rxe", 14), ("mlx5_", 1), ("siw", 18))

libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def read_text(path):
    with open(path) as f:
        return f.read().strip()


def ibdev_name():
    return read_text(SYS_VERBS + "/uverbs0/ibdev")


def device_driver_id():
    name = ibdev_name()
    for prefix, did in DRIVER_IDS:
        if name.startswith(prefix):
            return did
    raise RuntimeError(f"unknown RDMA device {name!r}")


DRIVER_ID = None  # set in main()


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
    return ctypes.addressof(ctypes.c_char.from_buffer(m))


def mmap_addr(m):
    return ctypes.addressof(ctypes.c_char.from_buffer(m))


def fd_target(fd):
    return os.readlink(f"/proc/self/fd/{fd}")


# --- helpers ---------------------------------------------------------------------

MFD_ALLOW_SEALING = 0x0002
F_ADD_SEALS = 1033
F_SEAL_SHRINK = 0x0002
F_SEAL_WRITE = 0x0008
UDMABUF_CREATE = (1 << 30) | (24 << 16) | (ord("u") << 8) | 0x42  # 0x40187542


def with_ctx(fn):
    def step():
        with Res() as r, Bufs() as b:
            fd = open_ctx(r)
            return fn(r, fd, b)

    return step


def with_pd(fn):
    def step():
        with Res() as r, Bufs() as b:
            fd = open_ctx(r)
            return fn(r, fd, b, alloc_pd(fd))

    return step


def ok(fn, *args):
    """Sub-result: "ok" or the errno name."""
    res = call(fn, *args)
    return res if isinstance(res, str) else "ok"


def memfd_pages(r, pages=2):
    fd = r.fd(os.memfd_create("probe", MFD_ALLOW_SEALING))
    os.ftruncate(fd, pages * PAGE)
    return fd


def seal_write(memfd):
    """F_SEAL_WRITE: EBUSY while someone holds extra references (pins) on the pages."""
    return ok(fcntl.fcntl, memfd, F_ADD_SEALS, F_SEAL_WRITE)


def pin_memfd_with_mr(r, fd, pd, memfd, pages=2, access=LOCAL_WRITE):
    """Register an MR over a shared mapping of memfd, then unmap it (the MR keeps the pins)."""
    m = mmap.mmap(memfd, pages * PAGE)
    a = mmap_addr(m)
    mr = reg_mr(fd, pd, a, pages * PAGE, a, access)[0]
    m.close()
    return mr


def make_udmabuf(r, pages=2):
    memfd = memfd_pages(r, pages)
    fcntl.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK)
    dev = r.fd(os.open("/dev/udmabuf", os.O_RDWR))
    arg = bytearray(struct.pack("=IIQQ", memfd, 0, 0, pages * PAGE))
    return r.fd(fcntl.ioctl(dev, UDMABUF_CREATE, arg))


# --- the flow a dma-buf MR program runs ---------------------------------------------------


def flow():
    """open → GET_CONTEXT → QUERY_DEVICE → QUERY_PORT → ALLOC_PD → REG_DMABUF_MR (udmabuf)
    → REG_MR (user memory) → QUERY_MR → DEREG_MR → DEALLOC_PD → close."""
    out = {}
    with Res() as r, Bufs() as b:
        fd = open_uverbs(r)
        out["get_context"] = ok(get_context, fd)
        qd = b.out(176)
        out["query_device"] = ok(write_cmd, fd, CMD_QUERY_DEVICE, struct.pack("=Q", addr(qd)), 44)
        out["phys_port_cnt"] = qd.raw[171]
        qp = b.out(48)
        out["query_port"] = ok(
            verbs, fd, OBJ_DEVICE, M_QUERY_PORT, [A_in8(A_QP_PORT_NUM, 1), A_out(A_QP_RESP, qp)]
        )
        out["port_state"] = qp.raw[26]
        out["port_link_layer"] = qp.raw[37]
        pd = alloc_pd(fd)
        out["alloc_pd"] = "ok"
        dmabuf = make_udmabuf(r)
        out["reg_dmabuf_mr"] = ok(reg_dmabuf_mr, fd, b, pd, 0, 2 * PAGE, 0, dmabuf, LOCAL_WRITE)
        a = anon_pages(r, 2)
        mr, lkey, rkey = reg_mr(fd, pd, a, 2 * PAGE, 0x10000, LOCAL_WRITE | REMOTE_WRITE)
        out["reg_mr"] = "ok"
        ql, qr, qlen, qiova = b.out(4), b.out(4), b.out(8), b.out(8)
        after = verbs(
            fd,
            OBJ_MR,
            M_QUERY_MR,
            [
                A_idr(A_QMR_HANDLE, mr),
                A_out(A_QMR_LKEY, ql),
                A_out(A_QMR_RKEY, qr),
                A_out(A_QMR_LENGTH, qlen),
                A_out(A_QMR_IOVA, qiova),
            ],
        )
        out["query_mr"] = {
            "lkey_matches": u32(ql) == lkey,
            "rkey_matches": u32(qr) == rkey,
            "length": u64(qlen),
            "iova": hex(u64(qiova)),
            "flags_after": out_flags(after),
        }
        out["dereg_mr"] = ok(dereg_mr, fd, mr)
        out["dealloc_pd"] = ok(dealloc_pd, fd, pd)
    return out


# --- handles ---------------------------------------------------------------------------------


def handles_in_one_file():
    with Res() as r:
        fd = open_ctx(r)
        p0, p1 = alloc_pd(fd), alloc_pd(fd)
        a = anon_pages(r, 1)
        m0 = reg_mr(fd, p0, a, PAGE, a, LOCAL_WRITE)[0]
        dealloc_pd(fd, p1)
        p2 = alloc_pd(fd)
        dereg_mr(fd, m0)
        m1 = reg_mr(fd, p0, a, PAGE, a, LOCAL_WRITE)[0]
        return {
            "first_handle_is_0": p0 == 0,
            "second_pd_is_next": p1 == p0 + 1,
            "mr_shares_the_counter": m0 == p1 + 1,
            "freed_pd_handle_reused": p2 == p1,
            "freed_mr_handle_reused_by_mr": m1 == m0,
        }


def handles_per_file():
    with Res() as r:
        fa, fb = open_ctx(r), open_ctx(r)
        pa = alloc_pd(fa)
        pb_none = call(dealloc_pd, fb, pa)
        pb = alloc_pd(fb)
        return {
            "other_file_dealloc": pb_none,
            "same_number_in_both": pa == pb,
            "dealloc_a": ok(dealloc_pd, fa, pa),
            "dealloc_b": ok(dealloc_pd, fb, pb),
        }


def handle_of_wrong_type(how):
    def fn(r, fd, b, pd):
        a = anon_pages(r, 1)
        mr = reg_mr(fd, pd, a, PAGE, a, LOCAL_WRITE)[0]
        return how(fd, b, pd, mr)

    return with_pd(fn)


def hw_destroy_mr_with_pd(fd, b, pd, mr):
    destroy(fd, OBJ_MR, M_MR_DESTROY, pd)
    return True


def hw_destroy_pd_with_mr(fd, b, pd, mr):
    destroy(fd, OBJ_PD, M_PD_DESTROY, mr)
    return True


def hw_reg_mr_pd_is_mr(fd, b, pd, mr):
    with Res() as r:
        a = anon_pages(r, 1)
        reg_mr_ioctl(fd, b, mr, PAGE, a, LOCAL_WRITE, addr_=a)
        return True


def hw_query_mr_with_pd(fd, b, pd, mr):
    verbs(
        fd,
        OBJ_MR,
        M_QUERY_MR,
        [
            A_idr(A_QMR_HANDLE, pd),
            A_out(A_QMR_LKEY, b.out(4)),
            A_out(A_QMR_RKEY, b.out(4)),
            A_out(A_QMR_LENGTH, b.out(8)),
        ],
    )
    return True


def idr_value(value, length=0, reserved=0):
    def fn(r, fd, b, pd):
        verbs(
            fd,
            OBJ_MR,
            M_QUERY_MR,
            [
                A(A_QMR_HANDLE, value, length, 0, reserved),
                A_out(A_QMR_LKEY, b.out(4)),
                A_out(A_QMR_RKEY, b.out(4)),
                A_out(A_QMR_LENGTH, b.out(8)),
            ],
        )
        return True

    return with_pd(fn)


# --- destroy paths ------------------------------------------------------------------------------


def destroy_ioctl_ok(r, fd, b, pd):
    a = anon_pages(r, 1)
    mr = reg_mr(fd, pd, a, PAGE, a, LOCAL_WRITE)[0]
    return {
        "mr_destroy": ok(destroy, fd, OBJ_MR, M_MR_DESTROY, mr),
        "mr_destroy_again": ok(destroy, fd, OBJ_MR, M_MR_DESTROY, mr),
        "pd_destroy": ok(destroy, fd, OBJ_PD, M_PD_DESTROY, pd),
        "pd_destroy_again": ok(destroy, fd, OBJ_PD, M_PD_DESTROY, pd),
        "pd_dealloc_write_after": ok(dealloc_pd, fd, pd),
    }


def pd_destroy_with_mr(r, fd, b, pd):
    a = anon_pages(r, 1)
    mr = reg_mr(fd, pd, a, PAGE, a, LOCAL_WRITE)[0]
    return {
        "pd_destroy_ioctl": ok(destroy, fd, OBJ_PD, M_PD_DESTROY, pd),
        "pd_dealloc_write": ok(dealloc_pd, fd, pd),
        "mr_still_queryable": ok(
            verbs,
            fd,
            OBJ_MR,
            M_QUERY_MR,
            [
                A_idr(A_QMR_HANDLE, mr),
                A_out(A_QMR_LKEY, b.out(4)),
                A_out(A_QMR_RKEY, b.out(4)),
                A_out(A_QMR_LENGTH, b.out(8)),
            ],
        ),
        "dereg": ok(dereg_mr, fd, mr),
        "pd_destroy_after_dereg": ok(destroy, fd, OBJ_PD, M_PD_DESTROY, pd),
    }


def destroy_attr_variants(r, fd, b, pd):
    out = {}
    for name, attrs in (
        ("no_attrs", []),
        ("handle_len_4", [A(A_PD_DESTROY_HANDLE, pd, 4)]),
        ("handle_reserved", [A(A_PD_DESTROY_HANDLE, pd, 0, 0, 1)]),
        ("handle_negative", [A(A_PD_DESTROY_HANDLE, -1, 0)]),
        ("handle_2_pow_32", [A(A_PD_DESTROY_HANDLE, 1 << 32, 0)]),
        ("handle_2_pow_32_plus_pd", [A(A_PD_DESTROY_HANDLE, (1 << 32) + pd, 0)]),
    ):
        out[name] = ok(verbs, fd, OBJ_PD, M_PD_DESTROY, attrs)
    out["still_there"] = ok(dealloc_pd, fd, pd)
    return out


# --- REG_MR through the ioctl -------------------------------------------------------------------


def rmi(
    access=LOCAL_WRITE,
    addr_off=0,
    iova=None,
    length=PAGE,
    with_addr=True,
    fd_=None,
    fd_offset=None,
    extra=(),
    bad_lkey=False,
    pd=None,
):
    def fn(r, fd, b, p):
        base = anon_pages(r, 2)
        start = base + addr_off
        v = start if iova is None else iova
        if bad_lkey:
            attrs = [
                A_idr(A_RM_HANDLE, 0),
                A_idr(A_RM_PD, p),
                A_in8(A_RM_IOVA, v),
                A_in8(A_RM_LENGTH, length),
                A(A_RM_ACCESS, access, 4),
                A_in8(A_RM_ADDR, start),
                A(A_RM_LKEY, 16, 4),
                A_out(A_RM_RKEY, b.out(4)),
            ]
            first = call(verbs, fd, OBJ_MR, M_REG_MR, attrs)
            return {
                "reg": first if isinstance(first, str) else "ok",
                "pd_dealloc_after": ok(dealloc_pd, fd, p),
            }
        dfd = fd_(r) if callable(fd_) else fd_
        h, lkey, rkey = reg_mr_ioctl(
            fd,
            b,
            p if pd is None else pd,
            length,
            v,
            access,
            addr_=start if with_addr else None,
            fd_=dfd,
            fd_offset=fd_offset,
            extra=extra,
        )
        return {
            "rkey_zero": rkey == 0,
            "rkey_eq_lkey": rkey == lkey,
            "pd_dealloc_busy": call(dealloc_pd, fd, p),
            "destroy": ok(destroy, fd, OBJ_MR, M_MR_DESTROY, h),
        }

    return with_pd(fn)


def rmi_handle_in_value():
    """The NEW handle attribute's input value is ignored; the kernel writes the new id."""

    def fn(r, fd, b, p):
        a = anon_pages(r, 1)
        lkey, rkey = b.out(4), b.out(4)
        after = verbs(
            fd,
            OBJ_MR,
            M_REG_MR,
            [
                A_idr(A_RM_HANDLE, 12345),
                A_idr(A_RM_PD, p),
                A_in8(A_RM_IOVA, a),
                A_in8(A_RM_LENGTH, PAGE),
                A(A_RM_ACCESS, LOCAL_WRITE, 4),
                A_in8(A_RM_ADDR, a),
                A_out(A_RM_LKEY, lkey),
                A_out(A_RM_RKEY, rkey),
            ],
        )
        return {"written_handle_is_next": after[0][4] == p + 1, "flags_after": out_flags(after)}

    return with_pd(fn)


def access_attr(length, value):
    return (A(A_RM_ACCESS, value, length),)


def rmi_access(length, value):
    """REG_MR with an ACCESS_FLAGS attribute of a given length (replacing the 4-byte one)."""

    def fn(r, fd, b, p):
        a = anon_pages(r, 1)
        attrs = [
            A_idr(A_RM_HANDLE, 0),
            A_idr(A_RM_PD, p),
            A_in8(A_RM_IOVA, a),
            A_in8(A_RM_LENGTH, PAGE),
            A(A_RM_ACCESS, value, length),
            A_in8(A_RM_ADDR, a),
            A_out(A_RM_LKEY, b.out(4)),
            A_out(A_RM_RKEY, b.out(4)),
        ]
        after = verbs(fd, OBJ_MR, M_REG_MR, attrs)
        destroy(fd, OBJ_MR, M_MR_DESTROY, after[0][4])
        return True

    return with_pd(fn)


def rmi_missing(drop):
    def fn(r, fd, b, p):
        a = anon_pages(r, 1)
        attrs = [
            A_idr(A_RM_HANDLE, 0),
            A_idr(A_RM_PD, p),
            A_in8(A_RM_IOVA, a),
            A_in8(A_RM_LENGTH, PAGE),
            A(A_RM_ACCESS, LOCAL_WRITE, 4),
            A_in8(A_RM_ADDR, a),
            A_out(A_RM_LKEY, b.out(4)),
            A_out(A_RM_RKEY, b.out(4)),
        ]
        attrs = [x for x in attrs if x[0] != drop]
        verbs(fd, OBJ_MR, M_REG_MR, attrs)
        return True

    return with_pd(fn)


def udmabuf_fd(r):
    return make_udmabuf(r)


def memfd_fd(r):
    return memfd_pages(r)


# --- REG_DMABUF_MR ------------------------------------------------------------------------------


def rdm(
    offset=0,
    length=2 * PAGE,
    iova=0,
    access=LOCAL_WRITE,
    fd_=udmabuf_fd,
    fd_len=4,
    extra=(),
    pd=None,
    drop=None,
):
    def fn(r, fd, b, p):
        dfd = fd_(r) if callable(fd_) else fd_
        lkey, rkey = b.out(4), b.out(4)
        attrs = [
            A_idr(A_DB_HANDLE, 0),
            A_idr(A_DB_PD, p if pd is None else pd),
            A_in8(A_DB_OFFSET, offset),
            A_in8(A_DB_LENGTH, length),
            A_in8(A_DB_IOVA, iova),
            A(A_DB_FD, dfd & 0xFFFFFFFF, fd_len),
            A(A_DB_ACCESS, access, 4),
            A_out(A_DB_LKEY, lkey),
            A_out(A_DB_RKEY, rkey),
            *extra,
        ]
        if drop is not None:
            attrs = [x for x in attrs if x[0] != drop]
        after = verbs(fd, OBJ_MR, M_REG_DMABUF_MR, attrs)
        return {
            "flags_after": out_flags(after),
            "destroy": ok(destroy, fd, OBJ_MR, M_MR_DESTROY, after[0][4]),
        }

    return with_pd(fn)


# --- QUERY_MR / ADVISE_MR ---------------------------------------------------------------------


def query_mr_case(drop=(), extra_len=None):
    def fn(r, fd, b, p):
        a = anon_pages(r, 1)
        mr = reg_mr(fd, p, a, PAGE, 0x5000, LOCAL_WRITE)[0]
        attrs = [
            A_idr(A_QMR_HANDLE, mr),
            A_out(A_QMR_LKEY, b.out(4)),
            A_out(A_QMR_RKEY, b.out(4)),
            A_out(A_QMR_LENGTH, b.out(8)),
            A_out(A_QMR_IOVA, b.out(8)),
        ]
        attrs = [x for x in attrs if x[0] not in drop]
        if extra_len is not None:
            attrs = [A(x[0], x[4], extra_len) if x[0] == A_QMR_LKEY else x for x in attrs]
        after = verbs(fd, OBJ_MR, M_QUERY_MR, attrs)
        return {"flags_after": out_flags(after)}

    return with_pd(fn)


def advise(sge_ptr=None, advice=0, flags=1, access=LOCAL_WRITE):
    """ADVISE_MR (PREFETCH, FLUSH) over one page of a fresh MR."""

    def fn(r, fd, b, p):
        a = anon_pages(r, 1)
        _, lkey, _ = reg_mr(fd, p, a, PAGE, a, access)
        sge = b.inp(struct.pack("=QII", a, PAGE, lkey))
        verbs(
            fd,
            OBJ_MR,
            M_ADVISE_MR,
            [
                A_idr(A_ADVISE_PD, p),
                A_in8(A_ADVISE_ADVICE, advice),
                A(A_ADVISE_FLAGS, flags, 4),
                A(A_ADVISE_SGE_LIST, addr(sge) if sge_ptr is None else sge_ptr, 16),
            ],
        )
        return True

    return with_pd(fn)


# --- DMAH ---------------------------------------------------------------------------------------


def dmah(attrs_fn, method=M_DMAH_ALLOC):
    def fn(r, fd, b, p):
        verbs(fd, OBJ_DMAH, method, attrs_fn(p))
        return True

    return with_pd(fn)


# --- output copies that fail -----------------------------------------------------------------


def reg_dmabuf_mr_bad_lkey(r, fd, b, p):
    dfd = make_udmabuf(r)
    res = call(
        verbs,
        fd,
        OBJ_MR,
        M_REG_DMABUF_MR,
        [
            A_idr(A_DB_HANDLE, 0),
            A_idr(A_DB_PD, p),
            A_in8(A_DB_OFFSET, 0),
            A_in8(A_DB_LENGTH, PAGE),
            A_in8(A_DB_IOVA, 0),
            A(A_DB_FD, dfd, 4),
            A(A_DB_ACCESS, LOCAL_WRITE, 4),
            A(A_DB_LKEY, 16, 4),
            A_out(A_DB_RKEY, b.out(4)),
        ],
    )
    return {"reg": res if isinstance(res, str) else "ok", "pd_dealloc_after": ok(dealloc_pd, fd, p)}


# --- lifetimes: pins seen through memfd seals -------------------------------------------------


def pins_after_dereg():
    with Res() as r:
        fd = open_ctx(r)
        pd = alloc_pd(fd)
        memfd = memfd_pages(r)
        mr = pin_memfd_with_mr(r, fd, pd, memfd)
        busy = seal_write(memfd)
        dereg_mr(fd, mr)
        return {"while_registered": busy, "after_dereg": seal_write(memfd)}


def pins_after_close():
    with Res() as r:
        fd = open_ctx(r)
        pd = alloc_pd(fd)
        memfd = memfd_pages(r)
        pin_memfd_with_mr(r, fd, pd, memfd)
        busy = seal_write(memfd)
        os.close(fd)
        r.fds.remove(fd)
        return {"while_registered": busy, "after_close_uverbs_fd": seal_write(memfd)}


def pins_after_close_with_dup():
    with Res() as r:
        fd = open_ctx(r)
        pd = alloc_pd(fd)
        memfd = memfd_pages(r)
        pin_memfd_with_mr(r, fd, pd, memfd)
        dup = r.fd(os.dup(fd))
        os.close(fd)
        r.fds.remove(fd)
        mid = seal_write(memfd)
        usable = ok(alloc_pd, dup)
        os.close(dup)
        r.fds.remove(dup)
        return {
            "after_closing_one_of_two": mid,
            "dup_still_usable": usable,
            "after_closing_both": seal_write(memfd),
        }


def pins_after_close_async_fd_open():
    """GET_CONTEXT by write makes an async event fd; it does not keep the objects alive."""
    with Res() as r, Bufs() as b:
        fd = open_uverbs(r)
        resp = b.out(8)
        write_cmd(fd, CMD_GET_CONTEXT, struct.pack("=Q", addr(resp)), out_words=2)
        afd = r.fd(struct.unpack("=i", resp.raw[:4])[0])
        pd = alloc_pd(fd)
        memfd = memfd_pages(r)
        pin_memfd_with_mr(r, fd, pd, memfd)
        os.close(fd)
        r.fds.remove(fd)
        return {"after_close_uverbs_fd": seal_write(memfd), "async_fd_open": is_open(afd)}


def pins_pd_dealloc_busy_keeps_mr():
    with Res() as r:
        fd = open_ctx(r)
        pd = alloc_pd(fd)
        memfd = memfd_pages(r)
        pin_memfd_with_mr(r, fd, pd, memfd)
        busy = call(dealloc_pd, fd, pd)
        return {"dealloc_pd": busy, "pages_still_pinned": seal_write(memfd)}


def pins_reg_mr_readonly_access():
    """An MR without LOCAL_WRITE pins too (read-only pin)."""
    with Res() as r:
        fd = open_ctx(r)
        pd = alloc_pd(fd)
        memfd = memfd_pages(r)
        mr = pin_memfd_with_mr(r, fd, pd, memfd, access=0)
        busy = seal_write(memfd)
        dereg_mr(fd, mr)
        return {"while_registered": busy, "after_dereg": seal_write(memfd)}


def close_with_many_objects():
    with Res() as r:
        fd = open_ctx(r)
        a = anon_pages(r, 1)
        for _ in range(3):
            pd = alloc_pd(fd)
            for _ in range(2):
                reg_mr(fd, pd, a, PAGE, a, LOCAL_WRITE)
        os.close(fd)
        r.fds.remove(fd)
        fd2 = open_ctx(r)
        return {"new_file_first_handle_is_0": alloc_pd(fd2) == 0}


def main():
    global DRIVER_ID
    DRIVER_ID = device_driver_id()
    E = [
        ("flow", flow),
        ("handles_in_one_file", handles_in_one_file),
        ("handles_per_file", handles_per_file),
        ("destroy_mr_with_pd_handle", handle_of_wrong_type(hw_destroy_mr_with_pd)),
        ("destroy_pd_with_mr_handle", handle_of_wrong_type(hw_destroy_pd_with_mr)),
        ("reg_mr_ioctl_pd_handle_is_mr", handle_of_wrong_type(hw_reg_mr_pd_is_mr)),
        ("query_mr_with_pd_handle", handle_of_wrong_type(hw_query_mr_with_pd)),
        ("query_mr_handle_never_allocated", idr_value(77)),
        ("query_mr_handle_negative", idr_value(-1)),
        ("query_mr_handle_2_pow_32", idr_value(1 << 32)),
        ("query_mr_handle_len_4", idr_value(0, length=4)),
        ("query_mr_handle_reserved", idr_value(0, reserved=1)),
        ("destroy_ioctl_paths", with_pd(destroy_ioctl_ok)),
        ("pd_destroy_with_mr", with_pd(pd_destroy_with_mr)),
        ("pd_destroy_attr_variants", with_pd(destroy_attr_variants)),
    ]
    E += [
        ("reg_mr_ioctl_ok", rmi()),
        ("reg_mr_ioctl_remote", rmi(access=LOCAL_WRITE | REMOTE_WRITE | REMOTE_READ)),
        ("reg_mr_ioctl_handle_input_ignored", rmi_handle_in_value()),
        ("reg_mr_ioctl_no_addr_no_fd", rmi(with_addr=False)),
        ("reg_mr_ioctl_addr_and_fd_offset", rmi(fd_offset=0)),
        ("reg_mr_ioctl_addr_iova_offset_differs", rmi(iova=0x10000 + 8)),
        ("reg_mr_ioctl_iova_other_page", rmi(iova=0x10000)),
        ("reg_mr_ioctl_unaligned_addr", rmi(addr_off=8)),
        ("reg_mr_ioctl_remote_write_no_local", rmi(access=REMOTE_WRITE)),
        ("reg_mr_ioctl_unknown_access_bit", rmi(access=LOCAL_WRITE | (1 << 15))),
        ("reg_mr_ioctl_optional_access_bit_25", rmi(access=LOCAL_WRITE | (1 << 25))),
        ("reg_mr_ioctl_access_len_8", rmi_access(8, LOCAL_WRITE)),
        ("reg_mr_ioctl_access_len_8_high_bit", rmi_access(8, LOCAL_WRITE | (1 << 40))),
        ("reg_mr_ioctl_access_len_2", rmi_access(2, LOCAL_WRITE)),
        ("reg_mr_ioctl_access_len_16", rmi_access(16, LOCAL_WRITE)),
        ("reg_mr_ioctl_missing_access", rmi_missing(A_RM_ACCESS)),
        ("reg_mr_ioctl_missing_iova", rmi_missing(A_RM_IOVA)),
        ("reg_mr_ioctl_missing_lkey_out", rmi_missing(A_RM_LKEY)),
        ("reg_mr_ioctl_missing_handle", rmi_missing(A_RM_HANDLE)),
        ("reg_mr_ioctl_bad_pd", rmi(pd=99)),
        ("reg_mr_ioctl_fd_udmabuf", rmi(with_addr=False, fd_=udmabuf_fd, fd_offset=0)),
        ("reg_mr_ioctl_fd_udmabuf_no_offset", rmi(with_addr=False, fd_=udmabuf_fd)),
        ("reg_mr_ioctl_fd_with_addr", rmi(fd_=udmabuf_fd, fd_offset=0)),
        ("reg_mr_ioctl_fd_memfd", rmi(with_addr=False, fd_=memfd_fd, fd_offset=0)),
        ("reg_mr_ioctl_fd_len_4", rmi(with_addr=False, fd_offset=0, extra=(A(A_RM_FD, 0, 4),))),
        (
            "reg_mr_ioctl_fd_too_big",
            rmi(with_addr=False, fd_offset=0, extra=(A(A_RM_FD, 1 << 31, 0),)),
        ),
        ("reg_mr_ioctl_dmah_attr", rmi(extra=(A_idr(A_RM_DMAH, 0),))),
        ("reg_mr_ioctl_dmah_attr_unallocated", rmi(extra=(A_idr(A_RM_DMAH, 50),))),
        (
            "reg_mr_ioctl_dmah_attr_mandatory",
            rmi(extra=(A_idr(A_RM_DMAH, 0, UVERBS_ATTR_F_MANDATORY),)),
        ),
        ("reg_mr_ioctl_bad_lkey_pointer", rmi(bad_lkey=True)),
        (
            "reg_mr_ioctl_uhw",
            rmi(extra=(A(A_UHW_IN, 0, 4), A_out(A_UHW_OUT, ctypes.create_string_buffer(8)))),
        ),
    ]
    E += [
        ("reg_dmabuf_mr_udmabuf", rdm()),
        ("reg_dmabuf_mr_remote_access", rdm(access=LOCAL_WRITE | REMOTE_WRITE | REMOTE_READ)),
        ("reg_dmabuf_mr_bad_pd", rdm(pd=99)),
        ("reg_dmabuf_mr_fd_closed", rdm(fd_=lambda r: closed_fd())),
        ("reg_dmabuf_mr_fd_minus_1", rdm(fd_=-1)),
        ("reg_dmabuf_mr_fd_memfd", rdm(fd_=memfd_fd)),
        ("reg_dmabuf_mr_fd_len_8", rdm(fd_len=8)),
        ("reg_dmabuf_mr_fd_len_0", rdm(fd_len=0)),
        ("reg_dmabuf_mr_missing_fd", rdm(drop=A_DB_FD)),
        ("reg_dmabuf_mr_missing_access", rdm(drop=A_DB_ACCESS)),
        ("reg_dmabuf_mr_missing_iova", rdm(drop=A_DB_IOVA)),
        ("reg_dmabuf_mr_offset_iova_mismatch", rdm(offset=0, iova=8)),
        ("reg_dmabuf_mr_length_beyond", rdm(length=3 * PAGE)),
        ("reg_dmabuf_mr_length_0", rdm(length=0)),
        ("reg_dmabuf_mr_access_mw_bind", rdm(access=LOCAL_WRITE | MW_BIND)),
        ("reg_dmabuf_mr_access_on_demand", rdm(access=LOCAL_WRITE | ON_DEMAND)),
        ("reg_dmabuf_mr_mlx5_access_attr", rdm(extra=(A(0x1000, 1, 4),))),
        (
            "reg_dmabuf_mr_mlx5_access_attr_mandatory",
            rdm(extra=(A(0x1000, 1, 4, UVERBS_ATTR_F_MANDATORY),)),
        ),
        ("reg_dmabuf_mr_bad_lkey_pointer", with_pd(reg_dmabuf_mr_bad_lkey)),
    ]
    E += [
        ("query_mr_ok", query_mr_case()),
        ("query_mr_no_iova", query_mr_case(drop=(A_QMR_IOVA,))),
        ("query_mr_missing_lkey", query_mr_case(drop=(A_QMR_LKEY,))),
        ("query_mr_missing_length", query_mr_case(drop=(A_QMR_LENGTH,))),
        ("query_mr_lkey_len_8", query_mr_case(extra_len=8)),
        ("query_mr_lkey_len_2", query_mr_case(extra_len=2)),
        ("advise_mr_sge_pointer_16", advise(sge_ptr=16)),
        ("advise_mr_bad_advice", advise(advice=7)),
        ("advise_mr_bad_advice_sge_pointer_16", advise(advice=7, sge_ptr=16)),
        ("advise_mr_odp_mr", advise(access=LOCAL_WRITE | ON_DEMAND)),
    ]
    E += [
        ("dmah_alloc", dmah(lambda p: [A_idr(A_DMAH_HANDLE, 0)])),
        (
            "dmah_alloc_full",
            dmah(
                lambda p: [
                    A_idr(A_DMAH_HANDLE, 0),
                    A(A_DMAH_CPU_ID, 0, 4),
                    A_in8(A_DMAH_TPH_MEM_TYPE, 0),
                    A(A_DMAH_PH, 0, 1),
                ]
            ),
        ),
        ("dmah_free_handle_0", dmah(lambda p: [A_idr(A_DMAH_FREE_HANDLE, p)], M_DMAH_FREE)),
    ]
    E += [
        ("pins_after_dereg", pins_after_dereg),
        ("pins_after_close", pins_after_close),
        ("pins_after_close_with_dup", pins_after_close_with_dup),
        ("pins_after_close_async_fd_open", pins_after_close_async_fd_open),
        ("pins_pd_dealloc_busy_keeps_mr", pins_pd_dealloc_busy_keeps_mr),
        ("pins_reg_mr_access_0", pins_reg_mr_readonly_access),
        ("close_with_many_objects", close_with_many_objects),
    ]
    for name, fn in E:
        run(name, fn)


if __name__ == "__main__":
    main()
