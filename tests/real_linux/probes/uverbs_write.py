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
import fcntl
import mmap
import os
import select
import struct

import _probe
from _probe import (
    A_CORE_IN, A_CORE_OUT, A_WRITE_CMD, CMD_ALLOC_PD, CMD_DEALLOC_PD, CMD_DEREG_MR,
    CMD_FLAG_EXTENDED, CMD_GET_CONTEXT, CMD_HDR_FMT, CMD_QUERY_DEVICE, CMD_QUERY_MR,
    CMD_QUERY_PORT, CMD_REG_MR, CMD_REG_SMR, CMD_REREG_MR, EX_HDR_FMT, HUGETLB, LOCAL_WRITE,
    M_INVOKE_WRITE, MW_BIND, OBJ_DEVICE, ON_DEMAND, PAGE, RDMA_VERBS_IOCTL, RELAXED_ORDERING,
    REMOTE_ATOMIC, REMOTE_READ, REMOTE_WRITE, SYS_IB, ZERO_BASED, A, A_in8, A_out, Bufs, Res, addr,
    alloc_pd, anon_pages, call, cloexec, ctx, dealloc_pd, dereg_mr, device_driver_id, get_context,
    ibdev_name, is_open, libc, link, lowest_free, make_dmabuf, mmap_addr, no_ctx, open_uverbs,
    out_flags, port_resp_fields, read_sysfs, reg_mr, run_all, tail_state, verbs, write_cmd,
)

# --- framing --------------------------------------------------------------------


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
            "async_fd_target": link(async_fd),
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
    sysfs = read_sysfs(SYS_IB + "/" + ibdev_name() + "/node_guid").replace(":", "")
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
    return {"returned": n, "resp": port_resp_fields(resp.raw)}


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


_mmap_fn = libc.mmap
_mmap_fn.restype = ctypes.c_void_p
_mmap_fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                     ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_RW, _PRIV, _SHARED, _ANON, _FIXED = 3, 0x02, 0x01, 0x20, 0x10


def _mmap_fixed(a, n, prot, flags, fd=-1):
    got = _mmap_fn(a, n * PAGE, prot, flags | (_FIXED if a else 0), fd, 0)
    if got in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap")
    return got


def span_case(third, access=LOCAL_WRITE):
    """REG_MR of 3 pages: 2 private anonymous pages, then a third page laid by ``third``
    (into a 4-page PROT_NONE reservation, so the neighbour is known): pin_user_pages
    walks into the next VMA (check_vma_flags decides)."""

    def fn(fd, b):
        with Res() as r:
            p = alloc_pd(fd)
            base = _mmap_fixed(None, 4, 0, _PRIV | _ANON)
            try:
                _mmap_fixed(base, 2, _RW, _PRIV | _ANON)
                ctypes.memset(base, 1, 2 * PAGE)
                third(r, base + 2 * PAGE)
                mr, lkey, rkey = reg_mr(fd, p, base, 3 * PAGE, base, access)
                return {"rkey_zero": rkey == 0, "rkey_eq_lkey": rkey == lkey,
                        "dereg": dereg_mr(fd, mr)}
            finally:
                libc.munmap(base, 4 * PAGE)

    return fn


def _third_shared_anon(r, a):
    _mmap_fixed(a, 1, _RW, _SHARED | _ANON)
    ctypes.memset(a, 1, PAGE)


def _third_memfd(r, a):
    m = r.fd(os.memfd_create("span"))
    os.ftruncate(m, PAGE)
    _mmap_fixed(a, 1, _RW, _SHARED, m)


def _third_read_only(r, a):
    _mmap_fixed(a, 1, 1, _PRIV | _ANON)


def _third_hole(r, a):
    libc.munmap(a, PAGE)


def reg_mr_of_dmabuf_mapping(access):
    """REG_MR of a udmabuf dma-buf's mapping: VM_PFNMAP, never pinned (EFAULT)."""

    def fn(fd, b):
        with Res() as r:
            p = alloc_pd(fd)
            _, buf = make_dmabuf(r, size=2 * PAGE)
            m = r.map(mmap.mmap(buf, 2 * PAGE))
            start = mmap_addr(m)
            mr, _, _ = reg_mr(fd, p, start, 2 * PAGE, start, access)
            return {"dereg": dereg_mr(fd, mr)}

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
    _probe.DRIVER_ID = device_driver_id()  # what verbs() puts in every header
    hdr_only = struct.pack(CMD_HDR_FMT, CMD_GET_CONTEXT, 2, 2)
    E = [
        ("write_count_0", no_ctx(raw_write(b""))),
        ("write_count_4", no_ctx(raw_write(b"\0" * 4))),
        ("write_count_7", no_ctx(raw_write(b"\0" * 7))),
        ("write_header_only_get_context", no_ctx(raw_write(hdr_only))),
        ("write_in_words_3_count_16", no_ctx(cmd(CMD_GET_CONTEXT, gc_body, 2, in_words=3))),
        ("write_in_words_5_count_16", no_ctx(cmd(CMD_GET_CONTEXT, gc_body, 2, in_words=5))),
        ("write_in_words_0_count_16", no_ctx(cmd(CMD_GET_CONTEXT, gc_body, 2, in_words=0))),
        (
            "write_get_context_extra_in_words",
            no_ctx(cmd(CMD_GET_CONTEXT, lambda b: gc_body(b) + bytes(8), 2)),
        ),
        ("write_cmd_11_rereg_mr_no_context", no_ctx(cmd(CMD_REREG_MR, lambda b: bytes(48), 0))),
        ("write_cmd_10_reg_smr", no_ctx(cmd(CMD_REG_SMR, lambda b: bytes(8), 0))),
        ("write_cmd_12_query_mr", no_ctx(cmd(CMD_QUERY_MR, lambda b: bytes(8), 0))),
        ("write_cmd_40_open_qp_short", no_ctx(cmd(40, lambda b: bytes(8), 0))),
        ("write_cmd_41", no_ctx(cmd(41, lambda b: bytes(8), 0))),
        ("write_cmd_45", no_ctx(cmd(45, lambda b: bytes(8), 0))),
        ("write_cmd_255", no_ctx(cmd(255, lambda b: bytes(8), 0))),
        ("write_cmd_45_in_words_mismatch", no_ctx(cmd(45, lambda b: bytes(8), 0, in_words=9))),
        ("write_cmd_0x100", no_ctx(cmd(0x100, gc_body, 2))),
        ("write_cmd_0x40000000", no_ctx(cmd(0x40000000, gc_body, 2))),
        ("write_ex_cmd_100", no_ctx(cmd(CMD_FLAG_EXTENDED | 100, lambda b: bytes(24), 0))),
        ("write_ex_cmd_0_get_context", no_ctx(cmd(CMD_FLAG_EXTENDED | 0, lambda b: bytes(24), 0))),
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
        ("no_context_query_device", no_ctx(cmd(CMD_QUERY_DEVICE, gc_body, 44))),
        ("no_context_query_port", no_ctx(cmd(CMD_QUERY_PORT, query_port_body, 10))),
        ("no_context_alloc_pd", no_ctx(cmd(CMD_ALLOC_PD, gc_body, 1))),
        ("no_context_dealloc_pd", no_ctx(cmd(CMD_DEALLOC_PD, lambda b: struct.pack("=I", 0)))),
        ("no_context_dereg_mr", no_ctx(cmd(CMD_DEREG_MR, lambda b: struct.pack("=I", 0)))),
        ("no_context_ex_query_device", no_ctx(ex_query_device())),
    ]
    E += [
        ("query_device_ok", ctx(query_device_ok)),
        ("query_device_out_words_43", ctx(query_device_out_words(43))),
        ("query_device_out_words_50", ctx(query_device_out_words(50))),
        ("query_device_in_words_short", ctx(cmd(CMD_QUERY_DEVICE, lambda b: bytes(4), 44))),
        (
            "query_device_response_16",
            ctx(cmd(CMD_QUERY_DEVICE, lambda b: struct.pack("=Q", 16), 44)),
        ),
        ("query_port_ok", ctx(query_port_ok)),
        (
            "query_port_port_0",
            ctx(cmd(CMD_QUERY_PORT, lambda b: query_port_body(b, port=0), 10)),
        ),
        (
            "query_port_port_2",
            ctx(cmd(CMD_QUERY_PORT, lambda b: query_port_body(b, port=2), 10)),
        ),
        (
            "query_port_reserved_nonzero",
            ctx(cmd(CMD_QUERY_PORT, lambda b: query_port_body(b, reserved=b"\xff" * 7), 10)),
        ),
        ("query_port_out_words_9", ctx(cmd(CMD_QUERY_PORT, query_port_body, 9))),
    ]
    E += [
        ("alloc_pd_ok", ctx(alloc_pd_ok)),
        ("alloc_pd_out_words_0", ctx(cmd(CMD_ALLOC_PD, gc_body, 0))),
        ("alloc_pd_bad_response_then", ctx(alloc_pd_bad_response_then)),
        (
            "alloc_pd_driver_words",
            ctx(cmd(CMD_ALLOC_PD, lambda b: gc_body(b, 16) + bytes(8), 4)),
        ),
        ("dealloc_pd_ok", ctx(dealloc_pd_ok)),
        ("dealloc_pd_twice", ctx(dealloc_pd_twice)),
        ("dealloc_pd_never_allocated", ctx(dealloc_pd_never_allocated)),
        ("dealloc_pd_with_mr", ctx(dealloc_pd_with_mr)),
        ("dealloc_pd_with_mr_handle", ctx(dealloc_pd_with_mr_handle)),
        ("dealloc_pd_short", ctx(cmd(CMD_DEALLOC_PD, lambda b: b"", 0))),
        ("reg_mr_returned", ctx(reg_mr_returned)),
        ("reg_mr_out_words_2", ctx(reg_mr_out_words(2))),
        ("reg_mr_local_write", ctx(mr_case())),
        ("reg_mr_access_0", ctx(mr_case(access=0))),
        ("reg_mr_remote_rw", ctx(mr_case(access=LOCAL_WRITE | REMOTE_WRITE | REMOTE_READ))),
        ("reg_mr_remote_read_only", ctx(mr_case(access=REMOTE_READ))),
        ("reg_mr_remote_write_no_local", ctx(mr_case(access=REMOTE_WRITE))),
        ("reg_mr_remote_atomic_no_local", ctx(mr_case(access=REMOTE_ATOMIC))),
        ("reg_mr_mw_bind", ctx(mr_case(access=LOCAL_WRITE | MW_BIND))),
        ("reg_mr_zero_based", ctx(mr_case(access=LOCAL_WRITE | ZERO_BASED))),
        ("reg_mr_on_demand", ctx(mr_case(access=LOCAL_WRITE | ON_DEMAND))),
        ("reg_mr_hugetlb", ctx(mr_case(access=LOCAL_WRITE | HUGETLB))),
        ("reg_mr_flush_global", ctx(mr_case(access=LOCAL_WRITE | (1 << 8)))),
        ("reg_mr_relaxed_ordering", ctx(mr_case(access=LOCAL_WRITE | RELAXED_ORDERING))),
        ("reg_mr_optional_bit_25", ctx(mr_case(access=LOCAL_WRITE | (1 << 25)))),
        ("reg_mr_optional_bit_29", ctx(mr_case(access=LOCAL_WRITE | (1 << 29)))),
        ("reg_mr_unknown_bit_15", ctx(mr_case(access=LOCAL_WRITE | (1 << 15)))),
        ("reg_mr_unknown_bit_30", ctx(mr_case(access=LOCAL_WRITE | (1 << 30)))),
        ("reg_mr_unknown_bit_31", ctx(mr_case(access=LOCAL_WRITE | (1 << 31)))),
        ("reg_mr_length_0", ctx(mr_case(length=0))),
        ("reg_mr_length_1", ctx(mr_case(length=1))),
        ("reg_mr_unaligned_start_same_iova_offset", ctx(mr_case(start_off=100))),
        ("reg_mr_iova_offset_differs", ctx(mr_case(iova=0x100000 + 100))),
        ("reg_mr_iova_other_page_same_offset", ctx(mr_case(iova=0x7000000))),
        ("reg_mr_iova_0", ctx(mr_case(iova=0))),
        ("reg_mr_beyond_mapping", ctx(span_case(_third_hole))),
        ("reg_mr_span_into_shared_anon", ctx(span_case(_third_shared_anon))),
        ("reg_mr_span_into_memfd", ctx(span_case(_third_memfd))),
        ("reg_mr_span_into_read_only_local_write", ctx(span_case(_third_read_only))),
        ("reg_mr_span_into_read_only_access_0", ctx(span_case(_third_read_only, 0))),
        ("reg_mr_span_into_prot_none", ctx(span_case(lambda r, a: None))),
        ("reg_mr_dmabuf_mapping_local_write", ctx(reg_mr_of_dmabuf_mapping(LOCAL_WRITE))),
        ("reg_mr_dmabuf_mapping_access_0", ctx(reg_mr_of_dmabuf_mapping(0))),
        ("reg_mr_unmapped", ctx(mr_case(unmapped=True))),
        ("reg_mr_read_only_map_local_write", ctx(mr_case(prot=mmap.PROT_READ))),
        ("reg_mr_read_only_map_access_0", ctx(mr_case(prot=mmap.PROT_READ, access=0))),
        ("reg_mr_bad_pd", ctx(mr_case(pd=7))),
        (
            "reg_mr_start_0",
            ctx(lambda fd, b: reg_mr(fd, alloc_pd(fd), 0, PAGE, 0, 0) and True),
        ),
        ("dereg_mr_twice", ctx(dereg_mr_twice)),
        ("dereg_mr_with_pd_handle", ctx(dereg_mr_with_pd_handle)),
        ("dereg_mr_never_allocated", ctx(cmd(CMD_DEREG_MR, lambda b: struct.pack("=I", 9)))),
    ]
    E += [
        ("ex_query_device_ok", ctx(ex_query_device())),
        ("ex_query_device_out_words_1", ctx(ex_query_device(out_words=1))),
        ("ex_query_device_out_words_21", ctx(ex_query_device(out_words=21))),
        ("ex_query_device_out_words_22", ctx(ex_query_device(out_words=22))),
        ("ex_query_device_out_words_23", ctx(ex_query_device(out_words=23))),
        ("ex_query_device_out_words_50", ctx(ex_query_device(out_words=50))),
        ("ex_query_device_comp_mask_1", ctx(ex_query_device(comp_mask=1))),
        ("ex_query_device_cmd_reserved", ctx(ex_query_device(cmd_reserved=1))),
        ("ex_query_device_hdr_reserved", ctx(ex_query_device(reserved=1))),
        ("ex_query_device_in_words_0", ctx(ex_query_device(in_words=0))),
        (
            "ex_query_device_in_words_2_extra_zero",
            ctx(ex_query_device(in_words=2, extra=bytes(8))),
        ),
        (
            "ex_query_device_in_words_2_extra_nonzero",
            ctx(ex_query_device(in_words=2, extra=b"\x01" + bytes(7))),
        ),
        ("ex_query_device_no_response", ctx(ex_query_device(response=False))),
        (
            "ex_query_device_no_response_no_out",
            ctx(ex_query_device(response=False, out_words=0)),
        ),
        ("ex_query_device_provider_out_words", ctx(ex_query_device(provider_out=1))),
        (
            "ex_query_device_response_16",
            ctx(
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
            ctx(ex_raw(CMD_FLAG_EXTENDED | CMD_QUERY_DEVICE, 1, 38, b"", b"")),
        ),
    ]
    E += [
        ("invoke_write_alloc_pd", ctx(invoke(CMD_ALLOC_PD, struct.pack("=Q", 0), 4))),
        (
            "invoke_write_alloc_pd_no_core_out",
            ctx(invoke(CMD_ALLOC_PD, struct.pack("=Q", 0), 0)),
        ),
        (
            "invoke_write_query_device",
            ctx(invoke(CMD_QUERY_DEVICE, struct.pack("=Q", 0), 176)),
        ),
        (
            "invoke_write_query_device_out_100",
            ctx(invoke(CMD_QUERY_DEVICE, struct.pack("=Q", 0), 100)),
        ),
        (
            "invoke_write_query_port",
            ctx(invoke(CMD_QUERY_PORT, struct.pack("=QB", 0, 1) + bytes(7), 40)),
        ),
        ("invoke_write_get_context", no_ctx(invoke(CMD_GET_CONTEXT, struct.pack("=Q", 0), 8))),
        ("invoke_write_cmd_45", ctx(invoke(45, struct.pack("=Q", 0), 8))),
        ("invoke_write_core_in_missing", ctx(invoke(CMD_ALLOC_PD, None, 4))),
        (
            "invoke_write_ex_query_device",
            ctx(invoke(CMD_FLAG_EXTENDED | CMD_QUERY_DEVICE, struct.pack("=II", 0, 0), 304)),
        ),
    ]
    run_all(E)


def write_rdonly():
    with Res() as r, Bufs() as b:
        fd = open_uverbs(r, os.O_RDONLY)
        return write_cmd(fd, CMD_GET_CONTEXT, gc_body(b), 2)


if __name__ == "__main__":
    main()
