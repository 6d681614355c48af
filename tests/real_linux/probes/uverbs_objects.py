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
import fcntl
import mmap
import os
import struct

import _probe
from _probe import (
    A_ADVISE_ADVICE, A_ADVISE_FLAGS, A_ADVISE_PD, A_ADVISE_SGE_LIST, A_DB_ACCESS, A_DB_FD,
    A_DB_HANDLE, A_DB_IOVA, A_DB_LENGTH, A_DB_LKEY, A_DB_OFFSET, A_DB_PD, A_DB_RKEY, A_DMAH_CPU_ID,
    A_DMAH_FREE_HANDLE, A_DMAH_HANDLE, A_DMAH_PH, A_DMAH_TPH_MEM_TYPE, A_PD_DESTROY_HANDLE,
    A_QMR_HANDLE, A_QMR_IOVA, A_QMR_LENGTH, A_QMR_LKEY, A_QMR_RKEY, A_QP_PORT_NUM, A_QP_RESP,
    A_RM_ACCESS, A_RM_ADDR, A_RM_DMAH, A_RM_FD, A_RM_HANDLE, A_RM_IOVA, A_RM_LENGTH, A_RM_LKEY,
    A_RM_PD, A_RM_RKEY, A_UHW_IN, A_UHW_OUT, CMD_GET_CONTEXT, CMD_QUERY_DEVICE, F_ADD_SEALS,
    F_SEAL_SHRINK, F_SEAL_WRITE, LOCAL_WRITE, M_ADVISE_MR, M_DMAH_ALLOC, M_DMAH_FREE, M_MR_DESTROY,
    M_PD_DESTROY, M_QUERY_MR, M_QUERY_PORT, M_REG_DMABUF_MR, M_REG_MR, MFD_ALLOW_SEALING, MW_BIND,
    OBJ_DEVICE, OBJ_DMAH, OBJ_MR, OBJ_PD, ON_DEMAND, PAGE, REMOTE_READ, REMOTE_WRITE,
    UVERBS_ATTR_F_MANDATORY, A, A_idr, A_in8, A_out, Bufs, Res, addr, alloc_pd, anon_pages, call,
    closed_fd, dealloc_pd, dereg_mr, destroy, device_driver_id, get_context, is_open, mmap_addr,
    open_ctx, open_uverbs, out_flags, reg_dmabuf_mr, reg_mr, reg_mr_ioctl, run_all, u32, u64,
    udmabuf_create, verbs, write_cmd,
)

# --- helpers ---------------------------------------------------------------------


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
    return r.fd(udmabuf_create(dev, memfd, 0, pages * PAGE))


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
    _probe.DRIVER_ID = device_driver_id()  # what verbs() puts in every header
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
    run_all(E)


if __name__ == "__main__":
    main()
