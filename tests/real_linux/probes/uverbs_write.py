"""Probe: the legacy write() command path of /dev/infiniband/uverbs0.

ib_uverbs_cmd_hdr framing (count vs in_words, short commands and responses,
command bits, unknown and unsupported commands), GET_CONTEXT by write (the async
event fd), QUERY_DEVICE, QUERY_PORT, ALLOC_PD / DEALLOC_PD, REG_MR / DEREG_MR
and their argument checks, the extended-command header (EX_QUERY_DEVICE), the
same commands through UVERBS_METHOD_INVOKE_WRITE, and commands before
GET_CONTEXT.

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  No raw fds, handles, keys or addresses.
Standard library only.
"""

import ctypes
import errno
import fcntl
import json
import mmap
import os
import select
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


# --- framing --------------------------------------------------------------------


def fresh(fn):
    """fn(fd, b) on a fresh uverbs fd without a context."""

    def step():
        with Res() as r, Bufs() as b:
            fd = open_uverbs(r)
            return fn(fd, b)

    return step


def with_ctx(fn):
    """fn(fd, b) on a fresh uverbs fd after GET_CONTEXT (by ioctl)."""

    def step():
        with Res() as r, Bufs() as b:
            fd = open_ctx(r)
            return fn(fd, b)

    return step


def raw_write(data):
    def fn(fd, b):
        return os.write(fd, data)

    return fn


def gc_body(b, n=8):
    return struct.pack("=Q", addr(b.out(n)))


def cmd(command, body_fn, out_words=0, in_words=None):
    """write_cmd with a body built from the step's buffers; returns write()'s count."""

    def fn(fd, b):
        return write_cmd(fd, command, body_fn(b), out_words, in_words)

    return fn


# --- GET_CONTEXT by write ------------------------------------------------------


def write_get_context_ok():
    with Res() as r, Bufs() as b:
        fd = open_uverbs(r)
        low = lowest_free()
        resp = b.out(8)
        n = write_cmd(fd, CMD_GET_CONTEXT, struct.pack("=Q", addr(resp)), out_words=2)
        async_fd, ncv = struct.unpack("=iI", resp.raw)
        r.fd(async_fd)
        return {
            "returned": n,
            "async_fd_is_lowest_free": async_fd == low,
            "async_fd_cloexec": cloexec(async_fd),
            "async_fd_target": fd_target(async_fd),
            "async_fd_accmode": fcntl.fcntl(async_fd, fcntl.F_GETFL) & os.O_ACCMODE,
            "num_comp_vectors": ncv,
        }


def write_get_context_then(second):
    def step():
        with Res() as r, Bufs() as b:
            fd = open_uverbs(r)
            resp = b.out(8)
            write_cmd(fd, CMD_GET_CONTEXT, struct.pack("=Q", addr(resp)), out_words=2)
            r.fd(struct.unpack("=i", resp.raw[:4])[0])
            return second(fd, b)

    return step


def second_write_gc(fd, b):
    return write_cmd(fd, CMD_GET_CONTEXT, gc_body(b), out_words=2)


def second_ioctl_gc(fd, b):
    get_context(fd)
    return True


def write_get_context_out_words(n):
    def step():
        with Res() as r, Bufs() as b:
            fd = open_uverbs(r)
            low = lowest_free()
            resp = b.out(4 * max(n, 2))
            ret = write_cmd(fd, CMD_GET_CONTEXT, struct.pack("=Q", addr(resp)), out_words=n)
            async_fd = struct.unpack("=i", resp.raw[:4])[0]
            if async_fd == low:
                r.fd(async_fd)
            return {
                "returned": ret,
                "async_fd_is_lowest_free": async_fd == low,
                "bytes_after_8": tail_state(resp.raw[8:]),
            }

    return step


def write_get_context_bad_response(ptr):
    """The response copy fails: is there a context, an async fd?"""

    def step():
        with Res() as r, Bufs() as b:
            fd = open_uverbs(r)
            low = lowest_free()
            first = call(write_cmd, fd, CMD_GET_CONTEXT, struct.pack("=Q", ptr), 2)
            fd_leaked = is_open(low)
            if fd_leaked:
                r.fd(low)
            resp = b.out(8)
            second = call(write_cmd, fd, CMD_GET_CONTEXT, struct.pack("=Q", addr(resp)), 2)
            if isinstance(second, int):
                r.fd(struct.unpack("=i", resp.raw[:4])[0])
            return {"first": first, "fd_left_open": fd_leaked, "second": second}

    return step


def tail_state(raw):
    if not raw:
        return None
    if raw == bytes(len(raw)):
        return "zeroed"
    if raw == b"\xaa" * len(raw):
        return "untouched"
    return "mixed"


def close_async_fd_first():
    """Close the async event fd, keep the uverbs fd: the context still works."""
    with Res() as r, Bufs() as b:
        fd = open_uverbs(r)
        resp = b.out(8)
        write_cmd(fd, CMD_GET_CONTEXT, struct.pack("=Q", addr(resp)), out_words=2)
        os.close(struct.unpack("=i", resp.raw[:4])[0])
        return {
            "alloc_pd": "ok" if isinstance(call(alloc_pd, fd), int) else "failed",
            "get_context_again": call(write_cmd, fd, CMD_GET_CONTEXT, gc_body(b), 2),
        }


def async_fd_ops():
    with Res() as r, Bufs() as b:
        fd = open_uverbs(r)
        resp = b.out(8)
        write_cmd(fd, CMD_GET_CONTEXT, struct.pack("=Q", addr(resp)), out_words=2)
        afd = r.fd(struct.unpack("=i", resp.raw[:4])[0])
        os.set_blocking(afd, False)
        p = select.poll()
        p.register(afd, select.POLLIN | select.POLLOUT)
        return {
            "read_nonblock": call(os.read, afd, 16),
            "write": call(os.write, afd, b"x" * 16),
            "poll": [ev for _, ev in p.poll(0)],
            "ioctl_verbs": call(fcntl.ioctl, afd, RDMA_VERBS_IOCTL, bytearray(24)),
        }


# --- QUERY_DEVICE / QUERY_PORT by write ---------------------------------------------


QD_FIELDS = (
    ("fw_ver", "Q", 0),
    ("max_mr_size", "Q", 24),
    ("page_size_cap", "Q", 32),
    ("vendor_id", "I", 40),
    ("vendor_part_id", "I", 44),
    ("hw_ver", "I", 48),
    ("max_qp", "I", 52),
    ("max_qp_wr", "I", 56),
    ("device_cap_flags", "I", 60),
    ("max_sge", "I", 64),
    ("max_cq", "I", 72),
    ("max_mr", "I", 80),
    ("max_pd", "I", 84),
    ("atomic_cap", "I", 108),
    ("max_mw", "I", 120),
    ("max_ah", "I", 144),
    ("max_srq", "I", 156),
    ("max_pkeys", "H", 168),
    ("local_ca_ack_delay", "B", 170),
    ("phys_port_cnt", "B", 171),
)


def query_device_fields(raw):
    out = {name: struct.unpack_from("=" + f, raw, off)[0] for name, f, off in QD_FIELDS}
    guid = raw[8:16].hex()
    sysfs = read_text(SYS_IB + "/" + ibdev_name() + "/node_guid").replace(":", "")
    out["node_guid_matches_sysfs"] = guid == sysfs
    out["sys_image_guid_eq_node_guid"] = raw[16:24] == raw[8:16]
    out["reserved"] = raw[172:176].hex()
    return out


def query_device_ok(fd, b):
    resp = b.out(176)
    n = write_cmd(fd, CMD_QUERY_DEVICE, struct.pack("=Q", addr(resp)), out_words=44)
    return {"returned": n, "resp": query_device_fields(resp.raw)}


def query_device_out_words(n):
    def fn(fd, b):
        resp = b.out(4 * max(n, 44))
        write_cmd(fd, CMD_QUERY_DEVICE, struct.pack("=Q", addr(resp)), out_words=n)
        return {"bytes_after_176": tail_state(resp.raw[176:])}

    return fn


def query_port_body(b, port=1, reserved=b"\0" * 7, n=40):
    return struct.pack("=QB", addr(b.out(n)), port) + reserved


def query_port_ok(fd, b):
    resp = b.out(40)
    n = write_cmd(fd, CMD_QUERY_PORT, struct.pack("=QB", addr(resp), 1) + bytes(7), out_words=10)
    f = struct.unpack_from("=IIIIIHHHBBBBBBBBBBBBBB", resp.raw, 0)
    names = (
        "port_cap_flags",
        "max_msg_sz",
        "bad_pkey_cntr",
        "qkey_viol_cntr",
        "gid_tbl_len",
        "pkey_tbl_len",
        "lid",
        "sm_lid",
        "state",
        "max_mtu",
        "active_mtu",
        "lmc",
        "max_vl_num",
        "sm_sl",
        "subnet_timeout",
        "init_type_reply",
        "active_width",
        "active_speed",
        "phys_state",
        "link_layer",
        "flags",
        "reserved",
    )
    return {"returned": n, "resp": dict(zip(names, f, strict=True))}


# --- PD / MR by write -----------------------------------------------------------------


def alloc_pd_ok(fd, b):
    resp = b.out(4)
    n = write_cmd(fd, CMD_ALLOC_PD, struct.pack("=Q", addr(resp)), out_words=1)
    return {"returned": n, "handle_written": resp.raw != b"\xaa" * 4}


def alloc_pd_bad_response_then(fd, b):
    """ALLOC_PD whose response copy fails; then a good one: was the first PD kept?"""
    first = call(write_cmd, fd, CMD_ALLOC_PD, struct.pack("=Q", 16), 1)
    a = alloc_pd(fd)
    return {"first": first, "next_handle_is_0": a == 0}


def dealloc_pd_ok(fd, b):
    pd = alloc_pd(fd)
    return dealloc_pd(fd, pd)


def dealloc_pd_twice(fd, b):
    pd = alloc_pd(fd)
    dealloc_pd(fd, pd)
    return dealloc_pd(fd, pd)


def dealloc_pd_never_allocated(fd, b):
    return dealloc_pd(fd, 5)


def dealloc_pd_with_mr(fd, b):
    with Res() as r:
        pd = alloc_pd(fd)
        a = anon_pages(r, 1)
        mr, _, _ = reg_mr(fd, pd, a, PAGE, a, LOCAL_WRITE)
        busy = call(dealloc_pd, fd, pd)
        dereg_mr(fd, mr)
        return {"with_mr": busy, "after_dereg": call(dealloc_pd, fd, pd)}


def mr_case(
    access=LOCAL_WRITE,
    length=PAGE,
    start_off=0,
    iova=None,
    pd=None,
    prot=None,
    pages=2,
    unmapped=False,
):
    def fn(fd, b):
        with Res() as r:
            p = alloc_pd(fd)
            base = anon_pages(r, pages)
            if prot is not None and libc.mprotect(base, pages * PAGE, prot) != 0:
                raise OSError(ctypes.get_errno(), "mprotect")
            if unmapped:
                m2 = mmap.mmap(-1, pages * PAGE)
                base = mmap_addr(m2)
                m2.close()
            start = base + start_off
            v = start if iova is None else iova
            mr, lkey, rkey = reg_mr(fd, p if pd is None else pd, start, length, v, access)
            return {"rkey_zero": rkey == 0, "rkey_eq_lkey": rkey == lkey, "dereg": dereg_mr(fd, mr)}

    return fn


def reg_mr_returned(fd, b):
    with Res() as r:
        pd = alloc_pd(fd)
        a = anon_pages(r, 1)
        resp = b.out(12)
        body = struct.pack("=QQQQII", addr(resp), a, PAGE, a, pd, LOCAL_WRITE)
        n = write_cmd(fd, CMD_REG_MR, body, out_words=3)
        mr = struct.unpack("=III", resp.raw)[0]
        return {
            "returned": n,
            "mr_handle_follows_pd": mr == pd + 1,
            "dereg_returned": dereg_mr(fd, mr),
        }


def reg_mr_out_words(n):
    def fn(fd, b):
        with Res() as r:
            pd = alloc_pd(fd)
            a = anon_pages(r, 1)
            resp = b.out(4 * max(n, 3))
            body = struct.pack("=QQQQII", addr(resp), a, PAGE, a, pd, LOCAL_WRITE)
            return write_cmd(fd, CMD_REG_MR, body, out_words=n)

    return fn


def dereg_mr_twice(fd, b):
    with Res() as r:
        pd = alloc_pd(fd)
        a = anon_pages(r, 1)
        mr, _, _ = reg_mr(fd, pd, a, PAGE, a, LOCAL_WRITE)
        dereg_mr(fd, mr)
        return dereg_mr(fd, mr)


def dereg_mr_with_pd_handle(fd, b):
    pd = alloc_pd(fd)
    return dereg_mr(fd, pd)


def dealloc_pd_with_mr_handle(fd, b):
    with Res() as r:
        pd = alloc_pd(fd)
        a = anon_pages(r, 1)
        mr, _, _ = reg_mr(fd, pd, a, PAGE, a, LOCAL_WRITE)
        return dealloc_pd(fd, mr)


# --- extended commands -----------------------------------------------------------------


def ex_query_device(
    out_words=38,
    comp_mask=0,
    reserved=0,
    cmd_reserved=0,
    in_words=1,
    response=True,
    provider_out=0,
    extra=b"",
):
    def fn(fd, b):
        resp = b.out(8 * max(out_words, 38))
        ex = struct.pack(EX_HDR_FMT, addr(resp) if response else 0, 0, provider_out, reserved)
        body = ex + struct.pack("=II", comp_mask, cmd_reserved) + extra
        data = (
            struct.pack(CMD_HDR_FMT, CMD_FLAG_EXTENDED | CMD_QUERY_DEVICE, in_words, out_words)
            + body
        )
        n = os.write(fd, data)
        raw = resp.raw
        comp, rlen = struct.unpack_from("=II", raw, 176)
        return {
            "returned": n,
            "comp_mask": comp,
            "response_length": rlen,
            "base_vendor_id_matches": struct.unpack_from("=I", raw, 40)[0] == vendor_id(fd, b),
            "bytes_after_response_length": tail_state(raw[rlen : 8 * out_words]),
        }

    return fn


def vendor_id(fd, b):
    resp = b.out(176)
    write_cmd(fd, CMD_QUERY_DEVICE, struct.pack("=Q", addr(resp)), out_words=44)
    return struct.unpack_from("=I", resp.raw, 40)[0]


def ex_raw(command, in_words, out_words, ex, body):
    def fn(fd, b):
        return os.write(fd, struct.pack(CMD_HDR_FMT, command, in_words, out_words) + ex + body)

    return fn


# --- UVERBS_METHOD_INVOKE_WRITE --------------------------------------------------------------


def invoke(write_cmd_id, core_in, core_out_len, extra=()):
    def fn(fd, b):
        out = b.out(core_out_len) if core_out_len else None
        attrs = []
        if core_in is not None:
            data = core_in(b) if callable(core_in) else core_in
            if len(data) <= 8:
                attrs.append(
                    A(A_CORE_IN, int.from_bytes(data.ljust(8, b"\0"), "little"), len(data))
                )
            else:
                attrs.append(A(A_CORE_IN, addr(b.inp(data)), len(data)))
        if out is not None:
            attrs.append(A_out(A_CORE_OUT, out))
        attrs.append(A_in8(A_WRITE_CMD, write_cmd_id))
        attrs += list(extra)
        after = verbs(fd, OBJ_DEVICE, M_INVOKE_WRITE, attrs)
        res = {"flags_after": out_flags(after)}
        if write_cmd_id == CMD_QUERY_DEVICE and out is not None and core_out_len >= 44:
            res["vendor_id_matches"] = struct.unpack_from("=I", out.raw, 40)[0] == vendor_id(fd, b)
        if write_cmd_id == CMD_ALLOC_PD and out is not None:
            res["handle_written"] = out.raw[:4] != b"\xaa" * 4
        return res

    return fn


def main():
    global DRIVER_ID
    DRIVER_ID = device_driver_id()
    hdr_only = struct.pack(CMD_HDR_FMT, CMD_GET_CONTEXT, 2, 2)
    E = [
        ("write_count_0", fresh(raw_write(b""))),
        ("write_count_4", fresh(raw_write(b"\0" * 4))),
        ("write_count_7", fresh(raw_write(b"\0" * 7))),
        ("write_header_only_get_context", fresh(raw_write(hdr_only))),
        ("write_in_words_3_count_16", fresh(cmd(CMD_GET_CONTEXT, gc_body, 2, in_words=3))),
        ("write_in_words_5_count_16", fresh(cmd(CMD_GET_CONTEXT, gc_body, 2, in_words=5))),
        ("write_in_words_0_count_16", fresh(cmd(CMD_GET_CONTEXT, gc_body, 2, in_words=0))),
        (
            "write_get_context_extra_in_words",
            fresh(cmd(CMD_GET_CONTEXT, lambda b: gc_body(b) + bytes(8), 2)),
        ),
        ("write_cmd_11_rereg_mr_no_context", fresh(cmd(CMD_REREG_MR, lambda b: bytes(48), 0))),
        ("write_cmd_10_reg_smr", fresh(cmd(CMD_REG_SMR, lambda b: bytes(8), 0))),
        ("write_cmd_12_query_mr", fresh(cmd(CMD_QUERY_MR, lambda b: bytes(8), 0))),
        ("write_cmd_40_open_qp_short", fresh(cmd(40, lambda b: bytes(8), 0))),
        ("write_cmd_41", fresh(cmd(41, lambda b: bytes(8), 0))),
        ("write_cmd_45", fresh(cmd(45, lambda b: bytes(8), 0))),
        ("write_cmd_255", fresh(cmd(255, lambda b: bytes(8), 0))),
        ("write_cmd_45_in_words_mismatch", fresh(cmd(45, lambda b: bytes(8), 0, in_words=9))),
        ("write_cmd_0x100", fresh(cmd(0x100, gc_body, 2))),
        ("write_cmd_0x40000000", fresh(cmd(0x40000000, gc_body, 2))),
        ("write_ex_cmd_100", fresh(cmd(CMD_FLAG_EXTENDED | 100, lambda b: bytes(24), 0))),
        ("write_ex_cmd_0_get_context", fresh(cmd(CMD_FLAG_EXTENDED | 0, lambda b: bytes(24), 0))),
        ("write_rdonly_fd", write_rdonly),
    ]
    E += [
        ("get_context_ok", write_get_context_ok),
        ("get_context_twice", write_get_context_then(second_write_gc)),
        ("get_context_write_then_ioctl", write_get_context_then(second_ioctl_gc)),
        ("get_context_out_words_0", write_get_context_out_words(0)),
        ("get_context_out_words_1", write_get_context_out_words(1)),
        ("get_context_out_words_4", write_get_context_out_words(4)),
        ("get_context_response_null", write_get_context_bad_response(0)),
        ("get_context_response_16", write_get_context_bad_response(16)),
        ("close_async_fd_first", close_async_fd_first),
        ("async_fd_ops", async_fd_ops),
    ]
    E += [
        ("no_context_query_device", fresh(cmd(CMD_QUERY_DEVICE, gc_body, 44))),
        ("no_context_query_port", fresh(cmd(CMD_QUERY_PORT, query_port_body, 10))),
        ("no_context_alloc_pd", fresh(cmd(CMD_ALLOC_PD, gc_body, 1))),
        ("no_context_dealloc_pd", fresh(cmd(CMD_DEALLOC_PD, lambda b: struct.pack("=I", 0)))),
        ("no_context_dereg_mr", fresh(cmd(CMD_DEREG_MR, lambda b: struct.pack("=I", 0)))),
        ("no_context_ex_query_device", fresh(ex_query_device())),
    ]
    E += [
        ("query_device_ok", with_ctx(query_device_ok)),
        ("query_device_out_words_43", with_ctx(query_device_out_words(43))),
        ("query_device_out_words_50", with_ctx(query_device_out_words(50))),
        ("query_device_in_words_short", with_ctx(cmd(CMD_QUERY_DEVICE, lambda b: bytes(4), 44))),
        (
            "query_device_response_16",
            with_ctx(cmd(CMD_QUERY_DEVICE, lambda b: struct.pack("=Q", 16), 44)),
        ),
        ("query_port_ok", with_ctx(query_port_ok)),
        (
            "query_port_port_0",
            with_ctx(cmd(CMD_QUERY_PORT, lambda b: query_port_body(b, port=0), 10)),
        ),
        (
            "query_port_port_2",
            with_ctx(cmd(CMD_QUERY_PORT, lambda b: query_port_body(b, port=2), 10)),
        ),
        (
            "query_port_reserved_nonzero",
            with_ctx(cmd(CMD_QUERY_PORT, lambda b: query_port_body(b, reserved=b"\xff" * 7), 10)),
        ),
        ("query_port_out_words_9", with_ctx(cmd(CMD_QUERY_PORT, query_port_body, 9))),
    ]
    E += [
        ("alloc_pd_ok", with_ctx(alloc_pd_ok)),
        ("alloc_pd_out_words_0", with_ctx(cmd(CMD_ALLOC_PD, gc_body, 0))),
        ("alloc_pd_bad_response_then", with_ctx(alloc_pd_bad_response_then)),
        (
            "alloc_pd_driver_words",
            with_ctx(cmd(CMD_ALLOC_PD, lambda b: gc_body(b, 16) + bytes(8), 4)),
        ),
        ("dealloc_pd_ok", with_ctx(dealloc_pd_ok)),
        ("dealloc_pd_twice", with_ctx(dealloc_pd_twice)),
        ("dealloc_pd_never_allocated", with_ctx(dealloc_pd_never_allocated)),
        ("dealloc_pd_with_mr", with_ctx(dealloc_pd_with_mr)),
        ("dealloc_pd_with_mr_handle", with_ctx(dealloc_pd_with_mr_handle)),
        ("dealloc_pd_short", with_ctx(cmd(CMD_DEALLOC_PD, lambda b: b"", 0))),
        ("reg_mr_returned", with_ctx(reg_mr_returned)),
        ("reg_mr_out_words_2", with_ctx(reg_mr_out_words(2))),
        ("reg_mr_local_write", with_ctx(mr_case())),
        ("reg_mr_access_0", with_ctx(mr_case(access=0))),
        ("reg_mr_remote_rw", with_ctx(mr_case(access=LOCAL_WRITE | REMOTE_WRITE | REMOTE_READ))),
        ("reg_mr_remote_read_only", with_ctx(mr_case(access=REMOTE_READ))),
        ("reg_mr_remote_write_no_local", with_ctx(mr_case(access=REMOTE_WRITE))),
        ("reg_mr_remote_atomic_no_local", with_ctx(mr_case(access=REMOTE_ATOMIC))),
        ("reg_mr_mw_bind", with_ctx(mr_case(access=LOCAL_WRITE | MW_BIND))),
        ("reg_mr_zero_based", with_ctx(mr_case(access=LOCAL_WRITE | ZERO_BASED))),
        ("reg_mr_on_demand", with_ctx(mr_case(access=LOCAL_WRITE | ON_DEMAND))),
        ("reg_mr_hugetlb", with_ctx(mr_case(access=LOCAL_WRITE | HUGETLB))),
        ("reg_mr_flush_global", with_ctx(mr_case(access=LOCAL_WRITE | (1 << 8)))),
        ("reg_mr_relaxed_ordering", with_ctx(mr_case(access=LOCAL_WRITE | RELAXED_ORDERING))),
        ("reg_mr_optional_bit_25", with_ctx(mr_case(access=LOCAL_WRITE | (1 << 25)))),
        ("reg_mr_optional_bit_29", with_ctx(mr_case(access=LOCAL_WRITE | (1 << 29)))),
        ("reg_mr_unknown_bit_15", with_ctx(mr_case(access=LOCAL_WRITE | (1 << 15)))),
        ("reg_mr_unknown_bit_30", with_ctx(mr_case(access=LOCAL_WRITE | (1 << 30)))),
        ("reg_mr_unknown_bit_31", with_ctx(mr_case(access=LOCAL_WRITE | (1 << 31)))),
        ("reg_mr_length_0", with_ctx(mr_case(length=0))),
        ("reg_mr_length_1", with_ctx(mr_case(length=1))),
        ("reg_mr_unaligned_start_same_iova_offset", with_ctx(mr_case(start_off=100))),
        ("reg_mr_iova_offset_differs", with_ctx(mr_case(iova=0x100000 + 100))),
        ("reg_mr_iova_other_page_same_offset", with_ctx(mr_case(iova=0x7000000))),
        ("reg_mr_iova_0", with_ctx(mr_case(iova=0))),
        ("reg_mr_beyond_mapping", with_ctx(mr_case(length=3 * PAGE))),
        ("reg_mr_unmapped", with_ctx(mr_case(unmapped=True))),
        ("reg_mr_read_only_map_local_write", with_ctx(mr_case(prot=mmap.PROT_READ))),
        ("reg_mr_read_only_map_access_0", with_ctx(mr_case(prot=mmap.PROT_READ, access=0))),
        ("reg_mr_bad_pd", with_ctx(mr_case(pd=7))),
        (
            "reg_mr_start_0",
            with_ctx(lambda fd, b: reg_mr(fd, alloc_pd(fd), 0, PAGE, 0, 0) and True),
        ),
        ("dereg_mr_twice", with_ctx(dereg_mr_twice)),
        ("dereg_mr_with_pd_handle", with_ctx(dereg_mr_with_pd_handle)),
        ("dereg_mr_never_allocated", with_ctx(cmd(CMD_DEREG_MR, lambda b: struct.pack("=I", 9)))),
    ]
    E += [
        ("ex_query_device_ok", with_ctx(ex_query_device())),
        ("ex_query_device_out_words_1", with_ctx(ex_query_device(out_words=1))),
        ("ex_query_device_out_words_21", with_ctx(ex_query_device(out_words=21))),
        ("ex_query_device_out_words_22", with_ctx(ex_query_device(out_words=22))),
        ("ex_query_device_out_words_23", with_ctx(ex_query_device(out_words=23))),
        ("ex_query_device_out_words_50", with_ctx(ex_query_device(out_words=50))),
        ("ex_query_device_comp_mask_1", with_ctx(ex_query_device(comp_mask=1))),
        ("ex_query_device_cmd_reserved", with_ctx(ex_query_device(cmd_reserved=1))),
        ("ex_query_device_hdr_reserved", with_ctx(ex_query_device(reserved=1))),
        ("ex_query_device_in_words_0", with_ctx(ex_query_device(in_words=0))),
        (
            "ex_query_device_in_words_2_extra_zero",
            with_ctx(ex_query_device(in_words=2, extra=bytes(8))),
        ),
        (
            "ex_query_device_in_words_2_extra_nonzero",
            with_ctx(ex_query_device(in_words=2, extra=b"\x01" + bytes(7))),
        ),
        ("ex_query_device_no_response", with_ctx(ex_query_device(response=False))),
        (
            "ex_query_device_no_response_no_out",
            with_ctx(ex_query_device(response=False, out_words=0)),
        ),
        ("ex_query_device_provider_out_words", with_ctx(ex_query_device(provider_out=1))),
        (
            "ex_query_device_response_16",
            with_ctx(
                ex_raw(
                    CMD_FLAG_EXTENDED | CMD_QUERY_DEVICE,
                    1,
                    38,
                    struct.pack(EX_HDR_FMT, 16, 0, 0, 0),
                    bytes(8),
                )
            ),
        ),
        (
            "ex_query_device_short_count",
            with_ctx(ex_raw(CMD_FLAG_EXTENDED | CMD_QUERY_DEVICE, 1, 38, b"", b"")),
        ),
    ]
    E += [
        ("invoke_write_alloc_pd", with_ctx(invoke(CMD_ALLOC_PD, struct.pack("=Q", 0), 4))),
        (
            "invoke_write_alloc_pd_no_core_out",
            with_ctx(invoke(CMD_ALLOC_PD, struct.pack("=Q", 0), 0)),
        ),
        (
            "invoke_write_query_device",
            with_ctx(invoke(CMD_QUERY_DEVICE, struct.pack("=Q", 0), 176)),
        ),
        (
            "invoke_write_query_device_out_100",
            with_ctx(invoke(CMD_QUERY_DEVICE, struct.pack("=Q", 0), 100)),
        ),
        (
            "invoke_write_query_port",
            with_ctx(invoke(CMD_QUERY_PORT, struct.pack("=QB", 0, 1) + bytes(7), 40)),
        ),
        ("invoke_write_get_context", fresh(invoke(CMD_GET_CONTEXT, struct.pack("=Q", 0), 8))),
        ("invoke_write_cmd_45", with_ctx(invoke(45, struct.pack("=Q", 0), 8))),
        ("invoke_write_core_in_missing", with_ctx(invoke(CMD_ALLOC_PD, None, 4))),
        (
            "invoke_write_ex_query_device",
            with_ctx(invoke(CMD_FLAG_EXTENDED | CMD_QUERY_DEVICE, struct.pack("=II", 0, 0), 304)),
        ),
    ]
    for name, fn in E:
        run(name, fn)


def write_rdonly():
    with Res() as r, Bufs() as b:
        fd = open_uverbs(r, os.O_RDONLY)
        return write_cmd(fd, CMD_GET_CONTEXT, gc_body(b), 2)


if __name__ == "__main__":
    main()
