"""Probe: the uverbs device and RDMA_VERBS_IOCTL framing on a real RDMA device.

Discovery (/sys/class/infiniband*, /dev/infiniband), the uverbs file's own file
operations, RDMA_VERBS_IOCTL before GET_CONTEXT, the ioctl header checks
(length, num_attrs, reserved fields, driver_id, bad pointers, an attribute array
running into an unreadable page), unknown objects and methods, attribute checks
on UVERBS_METHOD_QUERY_PORT (lengths, reserved, flags, mandatory / unknown /
duplicate attributes, inline vs pointer data, output pointers, VALID_OUTPUT) and
GET_CONTEXT through the ioctl (outputs, driver udata, a failing output copy).

The device is /dev/infiniband/uverbs0; its driver id (which every ioctl header
must carry) is taken from the ibdev name (rxe -> RDMA_DRIVER_RXE 14, mlx5_ -> 1).
Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  No raw fds, handles, keys or addresses.
Standard library only; root is not needed for uverbs (the node is 0666).
"""

import ctypes
import fcntl
import mmap
import os
import re
import select
import stat
import struct
import termios

import _probe
from _probe import (
    A_CORE_IN, A_CORE_OUT, A_DMAH_HANDLE, A_GC_CORE_SUPPORT, A_GC_NUM_COMP_VECTORS, A_QP_PORT_NUM,
    A_QP_RESP, A_UHW_IN, A_UHW_OUT, A_WRITE_CMD, ATTR_FMT, CMD_ALLOC_PD, CMD_GET_CONTEXT, HDR_FMT,
    M_DMAH_ALLOC, M_GET_CONTEXT, M_INVOKE_WRITE, M_MR_DESTROY, M_PD_DESTROY, M_QUERY_PORT,
    OBJ_DEVICE, OBJ_DMAH, OBJ_MR, OBJ_PD, PAGE, RDMA_VERBS_IOCTL, SYS_IB, SYS_VERBS,
    UVERBS_ATTR_F_MANDATORY, UVERBS_ATTR_F_VALID_OUTPUT, UVERBS_DEV, A, A_idr, A_in8, A_out, Bufs,
    Res, addr, alloc_pd, call, cloexec, ctx, destroy, device_driver_id, get_context, ibdev_name,
    libc, link, lowest_free, mmap_addr, no_ctx, open_ctx, open_uverbs, out_flags, port_resp_fields,
    read_sysfs, reg_mr_ioctl, run_all, tail_state, u32, u64, verbs, write_cmd,
)

# --- discovery: sysfs and the device node --------------------------------------


def sysfs_class_dirs():
    return {
        "infiniband": sorted(os.listdir(SYS_IB)),
        "infiniband_verbs": sorted(os.listdir(SYS_VERBS)),
        "abi_version": read_sysfs(SYS_VERBS + "/abi_version"),
    }


def sysfs_uverbs0():
    base = SYS_VERBS + "/uverbs0"
    major, minor = (int(x) for x in read_sysfs(base + "/dev").split(":"))
    st = os.stat(UVERBS_DEV)
    return {
        "entries": sorted(os.listdir(base)),
        "ibdev": read_sysfs(base + "/ibdev"),
        "abi_version": read_sysfs(base + "/abi_version"),
        "dev_matches_node": os.makedev(major, minor) == st.st_rdev,
        "has_device_link": os.path.exists(base + "/device"),
    }


def sysfs_ibdev():
    base = SYS_IB + "/" + ibdev_name()
    guid = read_sysfs(base + "/node_guid")
    port = base + "/ports/1"
    return {
        "entries": sorted(os.listdir(base)),
        "node_type": read_sysfs(base + "/node_type"),
        "node_guid_format": bool(re.fullmatch(r"[0-9a-f]{4}(:[0-9a-f]{4}){3}", guid)),
        "ports": sorted(os.listdir(base + "/ports")),
        "port1_entries": sorted(os.listdir(port)),
        "port1_state": read_sysfs(port + "/state"),
        "port1_phys_state": read_sysfs(port + "/phys_state"),
        "port1_link_layer": read_sysfs(port + "/link_layer"),
        "port1_lid": read_sysfs(port + "/lid"),
    }


def dev_node():
    st = os.stat(UVERBS_DEV)
    return {
        "dev_infiniband": sorted(os.listdir("/dev/infiniband")),
        "is_char": stat.S_ISCHR(st.st_mode),
        "perm": oct(stat.S_IMODE(st.st_mode)),
    }


# --- the uverbs file itself ------------------------------------------------------


def open_rdwr():
    with Res() as r:
        low = lowest_free()
        fd = open_uverbs(r)
        return {
            "new_fd_is_lowest_free": fd == low,
            "cloexec": cloexec(fd),
            "accmode": fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE,
            "readlink": link(fd),
        }


def open_rdonly_ioctl_get_context():
    with Res() as r:
        fd = open_uverbs(r, os.O_RDONLY)
        get_context(fd)
        return True


def file_op(op):
    def step():
        with Res() as r:
            fd = open_uverbs(r)
            return op(fd)

    return step


def op_read(fd):
    return len(os.read(fd, 64))


def op_lseek(fd):
    return os.lseek(fd, 0, os.SEEK_SET)


def op_poll(fd):
    p = select.poll()
    p.register(fd, select.POLLIN | select.POLLOUT)
    return [ev for _, ev in p.poll(0)]


def op_fstat(fd):
    st = os.fstat(fd)
    return {
        "is_char": stat.S_ISCHR(st.st_mode),
        "rdev_is_node": st.st_rdev == os.stat(UVERBS_DEV).st_rdev,
    }


def op_mmap(fd):
    m = mmap.mmap(fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    m.close()
    return True


def op_ioctl(cmd, arg=0):
    def op(fd):
        return fcntl.ioctl(fd, cmd, arg)

    return op


def op_ioctl_buf(cmd, size):
    def op(fd):
        return fcntl.ioctl(fd, cmd, bytearray(size))

    return op


def mmap_after_context():
    with Res() as r:
        fd = open_ctx(r)
        return op_mmap(fd)


# --- RDMA_VERBS_IOCTL before GET_CONTEXT ----------------------------------------


def qp_attrs(b, port=1, resp_len=48):
    return [A_in8(A_QP_PORT_NUM, port), A_out(A_QP_RESP, b.out(resp_len))]


def nc_query_port(fd, b):
    verbs(fd, OBJ_DEVICE, M_QUERY_PORT, qp_attrs(b))
    return True


def nc_pd_destroy(fd, b):
    destroy(fd, OBJ_PD, M_PD_DESTROY, 0)
    return True


def nc_mr_destroy(fd, b):
    destroy(fd, OBJ_MR, M_MR_DESTROY, 0)
    return True


def nc_reg_mr(fd, b):
    reg_mr_ioctl(fd, b, 0, PAGE, 0, 0, addr_=0)
    return True


def nc_dmah_alloc(fd, b):
    verbs(fd, OBJ_DMAH, M_DMAH_ALLOC, [A_idr(A_DMAH_HANDLE, 0)])
    return True


def nc_invoke_write_alloc_pd(fd, b):
    resp = b.out(4)
    verbs(
        fd,
        OBJ_DEVICE,
        M_INVOKE_WRITE,
        [A_in8(A_CORE_IN, 0), A_out(A_CORE_OUT, resp), A_in8(A_WRITE_CMD, CMD_ALLOC_PD)],
    )
    return True


# --- header checks ------------------------------------------------------------------


def hdr_case(**kw):
    """GET_CONTEXT (all attributes optional) on a fresh fd with a tweaked header."""

    def step():
        with Res() as r:
            fd = open_uverbs(r)
            verbs(fd, OBJ_DEVICE, M_GET_CONTEXT, [], **kw)
            return True

    return step


def hdr_attrs_case(attrs_fn, **kw):
    def step():
        with Res() as r, Bufs() as b:
            fd = open_uverbs(r)
            verbs(fd, OBJ_DEVICE, M_GET_CONTEXT, attrs_fn(b), **kw)
            return True

    return step


def unknown_attrs(n, flags=0):
    return lambda b: [A(0x0F00 + i, 0, 0, flags) for i in range(n)]


def hdr_pointer_16():
    with Res() as r:
        fd = open_uverbs(r)
        return fcntl.ioctl(fd, RDMA_VERBS_IOCTL, 16)


def hdr_pointer_null():
    with Res() as r:
        fd = open_uverbs(r)
        return fcntl.ioctl(fd, RDMA_VERBS_IOCTL, 0)


def attrs_cross_into_prot_none():
    """Header readable, attribute array running into a PROT_NONE page -> ?"""
    with Res() as r:
        fd = open_uverbs(r)
        m = r.map(mmap.mmap(-1, 2 * PAGE))
        base = mmap_addr(m)
        n = 64  # 24 + 64*16 = 1048 bytes
        off = PAGE - 24 - 16 * (n - 1)  # the last attribute is in page 2
        hdr = struct.pack(
            HDR_FMT, 24 + 16 * n, OBJ_DEVICE, M_GET_CONTEXT, n, 0, _probe.DRIVER_ID, 0
        )
        m[off : off + 24] = hdr
        for i in range(n - 1):
            m[off + 24 + 16 * i : off + 40 + 16 * i] = struct.pack(ATTR_FMT, 0x0F00 + i, 0, 0, 0, 0)
        if libc.mprotect(base + PAGE, PAGE, 0) != 0:
            raise OSError(ctypes.get_errno(), "mprotect")
        try:
            # > 1024 bytes: CPython passes the buffer itself, not a copy
            fcntl.ioctl(fd, RDMA_VERBS_IOCTL, memoryview(m)[off : off + 24 + 16 * n])
        finally:
            libc.mprotect(base + PAGE, PAGE, mmap.PROT_READ | mmap.PROT_WRITE)
        return True


def attrs_all_readable_in_mmap():
    """Control for the step above: the same call with the whole array readable."""
    with Res() as r:
        fd = open_uverbs(r)
        m = r.map(mmap.mmap(-1, 2 * PAGE))
        n = 64
        off = PAGE - 24 - 16 * (n - 1)
        m[off : off + 24] = struct.pack(
            HDR_FMT, 24 + 16 * n, OBJ_DEVICE, M_GET_CONTEXT, n, 0, _probe.DRIVER_ID, 0
        )
        for i in range(n):
            m[off + 24 + 16 * i : off + 40 + 16 * i] = struct.pack(ATTR_FMT, 0x0F00 + i, 0, 0, 0, 0)
        fcntl.ioctl(fd, RDMA_VERBS_IOCTL, memoryview(m)[off : off + 24 + 16 * n])
        return True


def ioctl_returns_int():
    with Res() as r:
        fd = open_uverbs(r)
        hdr = struct.pack(HDR_FMT, 24, OBJ_DEVICE, M_GET_CONTEXT, 0, 0, _probe.DRIVER_ID, 0)
        buf = bytearray(hdr)
        return fcntl.ioctl(fd, RDMA_VERBS_IOCTL, buf)


# --- attributes (on UVERBS_METHOD_QUERY_PORT after GET_CONTEXT) ---------------------


def port_resp(buf):
    raw = buf.raw
    out = port_resp_fields(raw)
    if len(raw) >= 48:
        out["port_cap_flags2"], out["ex_reserved"], out["active_speed_ex"] = struct.unpack_from(
            "=HHI", raw, 40
        )
    return out


def qp_ok(fd, b):
    resp = b.out(48)
    after = verbs(fd, OBJ_DEVICE, M_QUERY_PORT, [A_in8(A_QP_PORT_NUM, 1), A_out(A_QP_RESP, resp)])
    return {
        "resp": port_resp(resp),
        "flags_after": out_flags(after),
        "port_attr_data_after": after[0][4],
    }


def qp_resp_len(n):
    def fn(fd, b):
        resp = b.out(n)
        after = verbs(
            fd, OBJ_DEVICE, M_QUERY_PORT, [A_in8(A_QP_PORT_NUM, 1), A_out(A_QP_RESP, resp)]
        )
        raw = resp.raw
        return {
            "flags_after": out_flags(after),
            "first_40_written": b"\xaa" * 8 not in raw[:40],
            "bytes_40_to_48": raw[40:48].hex(),
            "after_48": tail_state(raw[48:]),
        }

    return fn


def qp_attrs_case(attrs_fn):
    def fn(fd, b):
        after = verbs(fd, OBJ_DEVICE, M_QUERY_PORT, attrs_fn(b))
        return {"flags_after": out_flags(after)}

    return fn


def port(n=1, length=8, flags=0, reserved=0):
    """PORT_NUM is a CONST_IN: an inline u64."""
    return A(A_QP_PORT_NUM, n, length, flags, reserved)


def resp(b, n=48, flags=0):
    return A_out(A_QP_RESP, b.out(n), flags)


def qp_port_by_pointer(fd, b):
    """PORT_NUM (len 8) with data = a pointer to a u64 1: data is the value, not a pointer."""
    one = b.inp(struct.pack("=Q", 1))
    verbs(fd, OBJ_DEVICE, M_QUERY_PORT, [A(A_QP_PORT_NUM, addr(one), 8), resp(b)])
    return True


def qp_resp_pointer(ptr):
    def fn(fd, b):
        verbs(fd, OBJ_DEVICE, M_QUERY_PORT, [port(), A(A_QP_RESP, ptr, 48)])
        return True

    return fn


def qp_many_unknown(n_unknown):
    def fn(fd, b):
        attrs = [*(A(0x0F00 + i, 0, 0, 0) for i in range(n_unknown)), port(), resp(b)]
        after = verbs(fd, OBJ_DEVICE, M_QUERY_PORT, attrs)
        return {"num_attrs": len(attrs), "resp_flags_after": after[-1][2]}

    return fn


# --- GET_CONTEXT through the ioctl -------------------------------------------------------


def gc_outputs():
    with Res() as r, Bufs() as b:
        fd = open_uverbs(r)
        ncv, core = b.out(4), b.out(8)
        after = verbs(
            fd,
            OBJ_DEVICE,
            M_GET_CONTEXT,
            [A_out(A_GC_NUM_COMP_VECTORS, ncv), A_out(A_GC_CORE_SUPPORT, core)],
        )
        return {
            "num_comp_vectors": u32(ncv),
            "core_support": u64(core),
            "flags_after": out_flags(after),
        }


def gc_twice():
    with Res() as r:
        fd = open_ctx(r)
        get_context(fd)
        return True


def gc_then_write_get_context():
    with Res() as r, Bufs() as b:
        fd = open_ctx(r)
        resp = b.out(8)
        write_cmd(fd, CMD_GET_CONTEXT, struct.pack("=Q", addr(resp)), out_words=2)
        return True


def gc_out_len(n):
    def step():
        with Res() as r, Bufs() as b:
            fd = open_uverbs(r)
            verbs(fd, OBJ_DEVICE, M_GET_CONTEXT, [A_out(A_GC_NUM_COMP_VECTORS, b.out(n))])
            return True

    return step


def gc_bad_out_pointer_then():
    """The output copy fails: is a context left behind?"""
    with Res() as r:
        fd = open_uverbs(r)
        first = call(verbs, fd, OBJ_DEVICE, M_GET_CONTEXT, [A(A_GC_NUM_COMP_VECTORS, 16, 4)])
        second = call(verbs, fd, OBJ_DEVICE, M_GET_CONTEXT, [])
        pd = call(alloc_pd, fd)
        return {
            "first": "ok" if isinstance(first, list) else first,
            "second": "ok" if isinstance(second, list) else second,
            "alloc_pd": "ok" if isinstance(pd, int) else pd,
        }


def gc_uhw(in_len, in_ptr, out_len):
    """Driver udata (UHW_IN/UHW_OUT) on GET_CONTEXT: rxe takes none."""

    def step():
        with Res() as r, Bufs() as b:
            fd = open_uverbs(r)
            attrs = []
            if in_len is not None:
                data = addr(b.inp(bytes(in_len))) if in_ptr is None else in_ptr
                attrs.append(A(A_UHW_IN, data if in_len > 8 else 0, in_len))
            out = None
            if out_len is not None:
                out = b.out(out_len)
                attrs.append(A_out(A_UHW_OUT, out))
            after = verbs(fd, OBJ_DEVICE, M_GET_CONTEXT, attrs)
            res = {"flags_after": out_flags(after)}
            if out is not None:
                res["out_untouched"] = out.raw == b"\xaa" * out_len
            return res

    return step


def gc_uhw_out_pointer_16():
    with Res() as r:
        fd = open_uverbs(r)
        after = verbs(fd, OBJ_DEVICE, M_GET_CONTEXT, [A(A_UHW_OUT, 16, 16)])
        return {"flags_after": out_flags(after)}


def gc_attr_flags(flags):
    def step():
        with Res() as r, Bufs() as b:
            fd = open_uverbs(r)
            after = verbs(
                fd, OBJ_DEVICE, M_GET_CONTEXT, [A_out(A_GC_NUM_COMP_VECTORS, b.out(4), flags)]
            )
            return {"flags_after": out_flags(after)}

    return step


def main():
    _probe.DRIVER_ID = device_driver_id()  # what verbs() puts in every header
    E = []  # steps

    E += [
        ("sysfs_class_dirs", sysfs_class_dirs),
        ("sysfs_uverbs0", sysfs_uverbs0),
        ("sysfs_ibdev", sysfs_ibdev),
        ("dev_node", dev_node),
        ("open_rdwr", open_rdwr),
        ("open_rdonly_ioctl_get_context", open_rdonly_ioctl_get_context),
        ("read", file_op(op_read)),
        ("lseek", file_op(op_lseek)),
        ("poll", file_op(op_poll)),
        ("fstat", file_op(op_fstat)),
        ("mmap_before_context", file_op(op_mmap)),
        ("mmap_after_context", mmap_after_context),
        ("ioctl_FIONBIO", file_op(op_ioctl_buf(termios.FIONBIO, 4))),
        ("ioctl_FIONREAD", file_op(op_ioctl_buf(termios.FIONREAD, 4))),
        ("ioctl_nr_2", file_op(op_ioctl_buf((3 << 30) | (24 << 16) | (0x1B << 8) | 2, 24))),
        ("ioctl_size_16", file_op(op_ioctl_buf((3 << 30) | (16 << 16) | (0x1B << 8) | 1, 16))),
        ("ioctl_size_32", file_op(op_ioctl_buf((3 << 30) | (32 << 16) | (0x1B << 8) | 1, 32))),
        ("ioctl_dir_write", file_op(op_ioctl_buf((1 << 30) | (24 << 16) | (0x1B << 8) | 1, 24))),
        ("ioctl_dir_none", file_op(op_ioctl((0x1B << 8) | 1))),
        ("ioctl_returns_int", ioctl_returns_int),
    ]
    E += [
        ("no_context_query_port", no_ctx(nc_query_port)),
        ("no_context_pd_destroy", no_ctx(nc_pd_destroy)),
        ("no_context_mr_destroy", no_ctx(nc_mr_destroy)),
        ("no_context_reg_mr", no_ctx(nc_reg_mr)),
        ("no_context_dmah_alloc", no_ctx(nc_dmah_alloc)),
        ("no_context_invoke_write_alloc_pd", no_ctx(nc_invoke_write_alloc_pd)),
    ]
    E += [
        ("hdr_ok_get_context", hdr_case()),
        ("hdr_pointer_16", hdr_pointer_16),
        ("hdr_pointer_null", hdr_pointer_null),
        ("hdr_length_0", hdr_case(length=0)),
        ("hdr_length_23", hdr_case(length=23)),
        ("hdr_length_25", hdr_case(length=25)),
        ("hdr_length_40_no_attrs", hdr_case(length=40)),
        ("hdr_length_short_for_attrs", hdr_attrs_case(unknown_attrs(2), length=24 + 16)),
        ("hdr_num_attrs_1_length_24", hdr_case(num_attrs=1)),
        ("hdr_num_attrs_254_length_4088", hdr_attrs_case(unknown_attrs(254))),
        ("hdr_num_attrs_255_length_4104", hdr_attrs_case(unknown_attrs(255))),
        ("hdr_num_attrs_65535", hdr_case(num_attrs=65535, length=(24 + 16 * 65535) & 0xFFFF)),
        ("hdr_reserved1", hdr_case(reserved1=1)),
        ("hdr_reserved1_high_bit", hdr_case(reserved1=1 << 63)),
        ("hdr_reserved2", hdr_case(reserved2=1)),
        ("hdr_driver_id_0", hdr_case(driver_id=0)),
        ("hdr_driver_id_mlx5", hdr_case(driver_id=1)),
        ("hdr_driver_id_ffffffff", hdr_case(driver_id=0xFFFFFFFF)),
        ("hdr_driver_id_bad_and_reserved1", hdr_case(driver_id=0, reserved1=1)),
        ("hdr_length_bad_and_reserved1", hdr_case(length=25, reserved1=1)),
        ("hdr_attrs_cross_into_prot_none", attrs_cross_into_prot_none),
        ("hdr_attrs_in_mmap_control", attrs_all_readable_in_mmap),
    ]

    def obj_method(obj, method, driver_id=None):
        def step():
            with Res() as r:
                fd = open_uverbs(r)
                verbs(fd, obj, method, [], driver_id=driver_id)
                return True

        return step

    E += [
        ("object_unknown_100", obj_method(100, 0)),
        ("object_dmabuf_18", obj_method(18, 0)),
        ("object_unknown_19", obj_method(19, 0)),
        ("object_driver_ns_0x1000", obj_method(0x1000, 0)),
        ("object_0xffff", obj_method(0xFFFF, 0)),
        ("object_unknown_driver_id_bad", obj_method(100, 0, driver_id=0)),
        ("method_unknown_device_8", obj_method(OBJ_DEVICE, 8)),
        ("method_unknown_device_100", obj_method(OBJ_DEVICE, 100)),
        ("method_driver_ns_device_0x1000", obj_method(OBJ_DEVICE, 0x1000)),
        ("method_unknown_pd_1", obj_method(OBJ_PD, 1)),
        ("method_unknown_mr_6", obj_method(OBJ_MR, 6)),
        ("dmah_alloc_object", obj_method(OBJ_DMAH, M_DMAH_ALLOC)),
    ]
    E += [
        ("query_port_ok", ctx(qp_ok)),
        ("query_port_resp_len_40", ctx(qp_resp_len(40))),
        ("query_port_resp_len_43", ctx(qp_resp_len(43))),
        ("query_port_resp_len_44", ctx(qp_resp_len(44))),
        ("query_port_resp_len_56", ctx(qp_resp_len(56))),
        ("query_port_resp_len_4096", ctx(qp_resp_len(4096))),
        ("query_port_port_0", ctx(qp_attrs_case(lambda b: [port(0), resp(b)]))),
        ("query_port_port_2", ctx(qp_attrs_case(lambda b: [port(2), resp(b)]))),
        ("query_port_port_len_0", ctx(qp_attrs_case(lambda b: [port(length=0), resp(b)]))),
        ("query_port_port_len_1", ctx(qp_attrs_case(lambda b: [port(length=1), resp(b)]))),
        ("query_port_port_len_4", ctx(qp_attrs_case(lambda b: [port(length=4), resp(b)]))),
        (
            "query_port_port_len_16_pointer",
            ctx(
                qp_attrs_case(
                    lambda b: [A(A_QP_PORT_NUM, addr(b.inp(struct.pack("=QQ", 1, 0))), 16), resp(b)]
                )
            ),
        ),
        ("query_port_port_high_bits", ctx(qp_attrs_case(lambda b: [port(1 | (1 << 32)), resp(b)]))),
        ("query_port_port_by_pointer", ctx(qp_port_by_pointer)),
        ("query_port_port_reserved", ctx(qp_attrs_case(lambda b: [port(reserved=1), resp(b)]))),
        (
            "query_port_resp_reserved",
            ctx(qp_attrs_case(lambda b: [port(), A(A_QP_RESP, addr(b.out(48)), 48, 0, 1)])),
        ),
        (
            "query_port_flag_mandatory",
            ctx(
                qp_attrs_case(
                    lambda b: [
                        port(flags=UVERBS_ATTR_F_MANDATORY),
                        resp(b, flags=UVERBS_ATTR_F_MANDATORY),
                    ]
                )
            ),
        ),
        (
            "query_port_flag_valid_output_in",
            ctx(
                qp_attrs_case(
                    lambda b: [
                        port(flags=UVERBS_ATTR_F_VALID_OUTPUT),
                        resp(b, flags=UVERBS_ATTR_F_VALID_OUTPUT),
                    ]
                )
            ),
        ),
        ("query_port_flag_0x4", ctx(qp_attrs_case(lambda b: [port(flags=4), resp(b, flags=4)]))),
        ("query_port_flag_0x8000", ctx(qp_attrs_case(lambda b: [port(flags=0x8000), resp(b)]))),
        ("query_port_flag_0xffff", ctx(qp_attrs_case(lambda b: [port(flags=0xFFFF), resp(b)]))),
        ("query_port_missing_resp", ctx(qp_attrs_case(lambda b: [port()]))),
        ("query_port_missing_port", ctx(qp_attrs_case(lambda b: [resp(b)]))),
        ("query_port_no_attrs", ctx(qp_attrs_case(lambda b: []))),
        ("query_port_duplicate_port", ctx(qp_attrs_case(lambda b: [port(), port(), resp(b)]))),
        (
            "query_port_duplicate_port_different_values",
            ctx(qp_attrs_case(lambda b: [port(1), port(2), resp(b)])),
        ),
        ("query_port_unknown_attr", ctx(qp_attrs_case(lambda b: [port(), A(0x50, 0, 0), resp(b)]))),
        (
            "query_port_duplicate_unknown_attr",
            ctx(qp_attrs_case(lambda b: [port(), A(0x50, 0, 0), A(0x50, 0, 0), resp(b)])),
        ),
        (
            "query_port_unknown_attr_mandatory",
            ctx(qp_attrs_case(lambda b: [port(), A(0x50, 0, 0, UVERBS_ATTR_F_MANDATORY), resp(b)])),
        ),
        (
            "query_port_unknown_attr_mandatory_last",
            ctx(qp_attrs_case(lambda b: [port(), resp(b), A(0x50, 0, 0, UVERBS_ATTR_F_MANDATORY)])),
        ),
        (
            "query_port_unknown_attr_mandatory_before_bad_port",
            ctx(
                qp_attrs_case(
                    lambda b: [A(0x50, 0, 0, UVERBS_ATTR_F_MANDATORY), port(length=4), resp(b)]
                )
            ),
        ),
        (
            "query_port_bad_port_len_before_unknown_mandatory",
            ctx(
                qp_attrs_case(
                    lambda b: [port(length=4), A(0x50, 0, 0, UVERBS_ATTR_F_MANDATORY), resp(b)]
                )
            ),
        ),
        (
            "query_port_unknown_driver_attr",
            ctx(qp_attrs_case(lambda b: [port(), A(0x1005, 0, 0), resp(b)])),
        ),
        (
            "query_port_unknown_driver_attr_mandatory",
            ctx(
                qp_attrs_case(lambda b: [port(), A(0x1005, 0, 0, UVERBS_ATTR_F_MANDATORY), resp(b)])
            ),
        ),
        (
            "query_port_uhw_in_not_a_method_attr",
            ctx(
                qp_attrs_case(
                    lambda b: [port(), A(A_UHW_IN, 0, 4, UVERBS_ATTR_F_MANDATORY), resp(b)]
                )
            ),
        ),
        (
            "query_port_attr_id_0xffff_mandatory",
            ctx(
                qp_attrs_case(lambda b: [port(), A(0xFFFF, 0, 0, UVERBS_ATTR_F_MANDATORY), resp(b)])
            ),
        ),
        ("query_port_resp_pointer_16", ctx(qp_resp_pointer(16))),
        ("query_port_resp_pointer_null", ctx(qp_resp_pointer(0))),
        ("query_port_252_unknown_attrs", ctx(qp_many_unknown(252))),
        (
            "query_port_driver_id_bad",
            ctx(
                lambda fd, b: (
                    verbs(fd, OBJ_DEVICE, M_QUERY_PORT, [port(), resp(b)], driver_id=0) and True
                )
            ),
        ),
    ]
    E += [
        ("get_context_outputs", gc_outputs),
        ("get_context_twice", gc_twice),
        ("get_context_ioctl_then_write", gc_then_write_get_context),
        ("get_context_num_comp_vectors_len_2", gc_out_len(2)),
        ("get_context_num_comp_vectors_len_8", gc_out_len(8)),
        ("get_context_bad_out_pointer_then", gc_bad_out_pointer_then),
        ("get_context_uhw_in_16_valid", gc_uhw(16, None, None)),
        ("get_context_uhw_in_16_pointer_16", gc_uhw(16, 16, None)),
        ("get_context_uhw_in_4_inline", gc_uhw(4, None, None)),
        ("get_context_uhw_out_16", gc_uhw(None, None, 16)),
        ("get_context_uhw_out_pointer_16", gc_uhw_out_pointer_16),
        ("get_context_out_flag_mandatory", gc_attr_flags(UVERBS_ATTR_F_MANDATORY)),
        ("get_context_out_flag_valid_output", gc_attr_flags(UVERBS_ATTR_F_VALID_OUTPUT)),
    ]
    run_all(E)


if __name__ == "__main__":
    main()
