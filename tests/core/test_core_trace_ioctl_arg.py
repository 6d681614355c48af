"""A traced ioctl records the argument its driver reads (``arg_data``), and the trace
views show it as its ``mockkernel.uapi`` struct, each field by name."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockkernel import Kernel
from mockkernel.fault_inject import FaultInject
from mockkernel.syscalls import ioctl as ioctl_layer
from mockkernel.traceview.decode import arg_struct_text, syscall_text
from mockkernel.uapi.linux.dma_buf import (
    DMA_BUF_IOCTL_SYNC,
    DMA_BUF_SYNC_END,
    DMA_BUF_SYNC_READ,
    DMA_BUF_SYNC_RW,
    DMA_BUF_SYNC_WRITE,
    dma_buf_sync,
)
from mockkernel.uapi.linux.udmabuf import UDMABUF_CREATE, UDMABUF_FLAGS_CLOEXEC, udmabuf_create
from mockkernel.uapi.linux.vfio import (
    VFIO_DEVICE_BIND_IOMMUFD,
    VFIO_DEVICE_FEATURE,
    VFIO_DEVICE_FEATURE_GET,
    VFIO_DEVICE_FEATURE_PROBE,
    VFIO_DEVICE_FEATURE_SET,
    VFIO_PCI_BAR0_REGION_INDEX,
    vfio_device_bind_iommufd,
    vfio_device_feature,
    vfio_device_feature_dma_buf,
)
from mockkernel.uapi.linux.vfio_tph import VFIO_DEVICE_FEATURE_DMA_BUF_TPH
from mockkernel.uapi.rdma.ib_user_ioctl_cmds import UVERBS_METHOD_REG_DMABUF_MR, UVERBS_OBJECT_MR
from mockkernel.uapi.rdma.rdma_user_ioctl_cmds import RDMA_VERBS_IOCTL, ib_uverbs_ioctl_hdr

UNMAPPED = 0x10  # the zero page: no user mapping


def _errno(fn: Any, *args: Any) -> str | int:
    try:
        return int(fn(*args))
    except OSError as e:
        return errno.errorcode[e.errno or 0]


def _ioctls(events: Any) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "sys.ioctl"]


def test_an_iow_ioctl_records_the_struct_the_driver_reads(mock_kernel: Kernel) -> None:
    proc = mock_kernel.init_process
    fd = proc.sys_open("/dev/udmabuf", os.O_RDWR)
    try:
        arg = udmabuf_create(memfd=9999, flags=UDMABUF_FLAGS_CLOEXEC, offset=0, size=4096)
        with mock_kernel.tracer.capture() as events:
            got = _errno(proc.sys_ioctl, fd, UDMABUF_CREATE, ctypes.addressof(arg))
        assert got == "EBADFD"  # no such memfd: the argument was read all the same
        (ev,) = _ioctls(events)
        assert ev["arg_data"] == bytes(arg).hex()
        assert list(ev)[:6] == ["pid", "fd", "cmd", "arg", "file", "arg_data"]
        text = syscall_text(ev, {ev["file"]: "udmabuf"})
        assert text == (
            f"ioctl(fd={fd}, cmd=UDMABUF_CREATE, arg={{memfd=9999, "
            "flags=UDMABUF_FLAGS_CLOEXEC, offset=0, size=4096}) = -1 EBADFD"
        )
    finally:
        proc.sys_close(fd)


def test_by_keyword_the_event_is_the_same(mock_kernel: Kernel) -> None:
    proc = mock_kernel.init_process
    fd = proc.sys_open("/dev/udmabuf", os.O_RDWR)
    try:
        arg = udmabuf_create(memfd=9999, size=4096)
        with mock_kernel.tracer.capture() as events:
            _errno(proc.sys_ioctl, fd, UDMABUF_CREATE, ctypes.addressof(arg))
            _errno(lambda: proc.sys_ioctl(fd=fd, cmd=UDMABUF_CREATE, arg=ctypes.addressof(arg)))
        positional, keyword = ({k: v for k, v in e.items() if k != "seq"} for e in _ioctls(events))
        assert positional == keyword and keyword["arg_data"] == bytes(arg).hex()
    finally:
        proc.sys_close(fd)


def test_a_bad_pointer_records_nothing_and_keeps_the_errno(mock_kernel: Kernel) -> None:
    proc = mock_kernel.init_process
    fd = proc.sys_open("/dev/udmabuf", os.O_RDWR)
    try:
        untraced = _errno(proc.sys_ioctl, fd, UDMABUF_CREATE, UNMAPPED)
        with mock_kernel.tracer.capture() as events:
            traced = _errno(proc.sys_ioctl, fd, UDMABUF_CREATE, UNMAPPED)
        assert untraced == traced == "EFAULT"
        (ev,) = _ioctls(events)
        assert "arg_data" not in ev and ev["errno"] == "EFAULT"
        assert f"arg={UNMAPPED}" in syscall_text(ev)  # the address, as before
    finally:
        proc.sys_close(fd)


def test_commands_the_kernel_does_not_read_record_nothing(mock_kernel: Kernel) -> None:
    proc = mock_kernel.init_process
    fd = proc.sys_open("/dev/udmabuf", os.O_RDWR)
    buf = ctypes.create_string_buffer(64)
    try:
        with mock_kernel.tracer.capture() as events:
            _errno(proc.sys_ioctl, fd, 0x1234, ctypes.addressof(buf))  # _IO: no size
            _errno(proc.sys_ioctl, fd, 0x80087542, ctypes.addressof(buf))  # _IOR only
            _errno(proc.sys_ioctl, fd, 0x50017542, ctypes.addressof(buf))  # 4097 bytes
        assert [("arg_data" in e) for e in _ioctls(events)] == [False, False, False]
    finally:
        proc.sys_close(fd)


def test_tracing_off_reads_no_argument(
    mock_kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy happens only for a traced call: with tracing off neither the layer's
    ``sys_ioctl`` nor the redirected ``fcntl.ioctl`` asks for it."""
    calls: list[int] = []
    real = ioctl_layer.ioctl_arg_bytes

    def counting(proc: Any, cmd: int, arg: int) -> bytes | None:
        calls.append(cmd)
        return real(proc, cmd, arg)

    monkeypatch.setattr(ioctl_layer, "ioctl_arg_bytes", counting)
    proc = mock_kernel.init_process
    fd = os.open("/dev/udmabuf", os.O_RDWR)
    try:
        arg = udmabuf_create(memfd=9999, size=4096)
        assert _errno(fcntl.ioctl, fd, UDMABUF_CREATE, arg) == "EBADFD"
        assert _errno(proc.sys_ioctl, fd, UDMABUF_CREATE, ctypes.addressof(arg)) == "EBADFD"
        assert calls == []
        with mock_kernel.tracer.capture() as events:
            assert _errno(fcntl.ioctl, fd, UDMABUF_CREATE, arg) == "EBADFD"
        assert calls == [UDMABUF_CREATE]
        assert _ioctls(events)[0]["arg_data"] == bytes(arg).hex()
    finally:
        os.close(fd)


def test_the_trace_read_spends_no_fault_point(mock_kernel: Kernel) -> None:
    """fail-nth counts the driver's own accesses: a traced call fails at the same point
    as an untraced one (the trace reads without fault points)."""

    def run() -> tuple[object, list[tuple[str, int]]]:
        fi = mock_kernel.subsys(FaultInject)
        fi.injected.clear()
        fd = os.open("/dev/udmabuf", os.O_RDWR)
        fnth = os.open("/proc/thread-self/fail-nth", os.O_RDWR)
        try:
            os.write(fnth, b"1")
            got = _errno(fcntl.ioctl, fd, UDMABUF_CREATE, udmabuf_create(memfd=9999, size=4096))
            os.write(fnth, b"0")
        finally:
            os.close(fnth)
            os.close(fd)
        return got, list(fi.injected)

    untraced = run()
    with mock_kernel.tracer.capture() as events:
        traced = run()
    assert traced == untraced and traced[1]  # a point was failed, the same one
    assert "arg_data" in _ioctls(events)[0]


@given(st.integers(0, 0xFFFFFFFF))
def test_dma_buf_sync_flags_decode_by_name(flags: int) -> None:
    text = arg_struct_text(hex(DMA_BUF_IOCTL_SYNC), bytes(dma_buf_sync(flags=flags)).hex())
    assert text is not None and text.startswith("{flags=") and text.endswith("}")
    parts = text[len("{flags=") : -1].split("|")
    assert parts[0] == ("DMA_BUF_SYNC_END" if flags & DMA_BUF_SYNC_END else "DMA_BUF_SYNC_START")
    rw = {
        DMA_BUF_SYNC_READ: ["DMA_BUF_SYNC_READ"],
        DMA_BUF_SYNC_WRITE: ["DMA_BUF_SYNC_WRITE"],
        DMA_BUF_SYNC_RW: ["DMA_BUF_SYNC_RW"],
        0: [],
    }[flags & DMA_BUF_SYNC_RW]
    rest = flags & ~(DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW)
    assert parts[1:] == rw + ([hex(rest)] if rest else [])


def test_a_header_struct_decodes_its_ids_and_leaves_out_zero_padding() -> None:
    hdr = ib_uverbs_ioctl_hdr(
        length=24,
        object_id=UVERBS_OBJECT_MR,
        method_id=UVERBS_METHOD_REG_DMABUF_MR,
        num_attrs=0,
    )
    assert arg_struct_text(RDMA_VERBS_IOCTL, bytes(hdr).hex()) == (
        "{length=24, object_id=UVERBS_OBJECT_MR, method_id=UVERBS_METHOD_REG_DMABUF_MR, "
        "num_attrs=0, driver_id=RDMA_DRIVER_UNKNOWN}"
    )


@pytest.mark.parametrize(
    ("cmd", "data"),
    [
        (UDMABUF_CREATE, "00" * 23),  # short
        (UDMABUF_CREATE, "00" * 25),  # long
        (UDMABUF_CREATE, "zz"),  # not hex
        (UDMABUF_CREATE, None),  # not recorded
        (0x1234, "00" * 24),  # no struct known
        ("not a number", "00" * 24),
    ],
)
def test_bytes_that_are_not_the_struct_are_not_decoded(cmd: object, data: object) -> None:
    assert arg_struct_text(cmd, data) is None


def _feature(flags: int, payload: bytes = b"", argsz: int | None = None) -> bytes:
    hdr = vfio_device_feature(
        argsz=ctypes.sizeof(vfio_device_feature) + len(payload) if argsz is None else argsz,
        flags=flags,
    )
    return bytes(hdr) + payload


@pytest.mark.parametrize(
    ("data", "recorded"),
    [
        (_feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_BUF_TPH, b"\1" * 8), 16),
        (_feature(VFIO_DEVICE_FEATURE_PROBE, argsz=3), None),  # no struct is that short
        (_feature(VFIO_DEVICE_FEATURE_PROBE, argsz=4097), None),  # over the bound
        (b"0000:01:00.0\0", None),  # VFIO_GROUP_GET_DEVICE_FD's string: not a size
    ],
)
def test_a_vfio_ioctl_records_argsz_bytes(
    mock_kernel: Kernel, data: bytes, recorded: int | None
) -> None:
    """VFIO's and iommufd's ``_IO`` commands: the struct says its own size."""
    proc = mock_kernel.init_process
    fd = proc.sys_open("/dev/udmabuf", os.O_RDWR)
    buf = ctypes.create_string_buffer(data + b"\xff" * 4200)  # more memory after it
    try:
        with mock_kernel.tracer.capture() as events:
            assert _errno(proc.sys_ioctl, fd, VFIO_DEVICE_FEATURE, ctypes.addressof(buf)) == (
                "ENOTTY"  # (a udmabuf fd: what is recorded depends on the command alone)
            )
        (ev,) = _ioctls(events)
        if recorded is None:
            assert "arg_data" not in ev
        else:
            assert ev["arg_data"] == data[:recorded].hex()
    finally:
        proc.sys_close(fd)


def test_vfio_device_feature_shows_the_feature_and_its_data_by_name() -> None:
    dma_buf_get = bytes(
        vfio_device_feature_dma_buf(
            region_index=VFIO_PCI_BAR0_REGION_INDEX, open_flags=os.O_RDWR, nr_ranges=1
        )
    ) + struct.pack("=QQ", 0x1000, 0x4000)  # one vfio_region_dma_range
    text = arg_struct_text(
        VFIO_DEVICE_FEATURE, _feature(VFIO_DEVICE_FEATURE_GET | 11, dma_buf_get).hex()
    )
    assert text == (
        "{argsz=40, flags=VFIO_DEVICE_FEATURE_GET|VFIO_DEVICE_FEATURE_DMA_BUF, "
        "data={region_index=VFIO_PCI_BAR0_REGION_INDEX, open_flags=O_RDWR, flags=0, "
        "nr_ranges=1, dma_ranges=[{offset=4096, length=16384}]}}"
    )
    tph = _feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_BUF_TPH, bytes(7))
    assert arg_struct_text(VFIO_DEVICE_FEATURE, tph.hex()) == (
        "{argsz=15, flags=VFIO_DEVICE_FEATURE_SET|VFIO_DEVICE_FEATURE_DMA_BUF_TPH, data=<7 bytes>}"
    )
    assert arg_struct_text(VFIO_DEVICE_FEATURE, _feature(0xFFFF).hex()) == (
        "{argsz=8, flags=65535}"
    )


def test_a_shorter_argsz_shows_the_fields_that_fit() -> None:
    """A program built against older headers passes its older ``argsz`` (the kernel
    reads its ``minsz``): the fields in it are shown, the newer ones are not."""
    full = vfio_device_bind_iommufd(argsz=16, iommufd=3)
    assert arg_struct_text(VFIO_DEVICE_BIND_IOMMUFD, bytes(full)[:16].hex()) == (
        "{argsz=16, flags=0, iommufd=3, out_devid=0}"
    )
    assert arg_struct_text(VFIO_DEVICE_BIND_IOMMUFD, bytes(full).hex()) == (
        "{argsz=16, flags=0, iommufd=3, out_devid=0, token_uuid_ptr=0}"
    )
    assert arg_struct_text(VFIO_DEVICE_BIND_IOMMUFD, "0300") is None  # not even argsz


@pytest.mark.parametrize(
    ("payload", "want"),
    [
        (
            struct.pack("=iIHBB", 5, 3, 0x112, 0x12, 1),  # tph-v11: 12 bytes
            "data={dmabuf_fd=5, flags=VFIO_DMA_BUF_TPH_ST|VFIO_DMA_BUF_TPH_ST_EXT, "
            "steering_tag_ext=274, steering_tag=18, ph=1 (requester)}",
        ),
        (
            struct.pack("=iHBB", 5, 0x12, 2, 0),  # tph-v2: 8 bytes
            "data={dmabuf_fd=5, steering_tag=18, ph=2 (target)}",
        ),
    ],
)
def test_the_tph_feature_data_is_decoded_by_its_profiles_size(payload: bytes, want: str) -> None:
    """``VFIO_DEVICE_FEATURE_DMA_BUF_TPH`` (13, proposed) has one struct per uAPI
    profile: the view reads the data as the struct of its size."""
    from mockkernel.traceview.decode import arg_struct_text
    from mockkernel.uapi.linux import vfio, vfio_tph

    hdr = struct.pack(
        "=II",
        8 + len(payload),
        vfio.VFIO_DEVICE_FEATURE_SET | vfio_tph.VFIO_DEVICE_FEATURE_DMA_BUF_TPH,
    )
    text = arg_struct_text(vfio.VFIO_DEVICE_FEATURE, (hdr + payload).hex())
    assert text is not None and text.endswith(want + "}")
    assert arg_struct_text(vfio.VFIO_DEVICE_FEATURE, (hdr + payload[:5]).hex()).endswith(  # type: ignore[union-attr]
        "data=<5 bytes>}"
    )


def test_set_name_records_no_struct(mock_kernel: Kernel) -> None:
    """``DMA_BUF_SET_NAME`` is ``_IOW`` of a ``const char *``: the 8 bytes of its "size"
    are a string's, not a struct's; its own event shows the name."""
    from mockkernel.syscalls.ioctl import ioctl_arg_bytes
    from mockkernel.uapi.linux.dma_buf import DMA_BUF_SET_NAME_A, DMA_BUF_SET_NAME_B

    buf = ctypes.create_string_buffer(b"a-name-longer-than-8")
    proc = mock_kernel.init_process
    for cmd in (DMA_BUF_SET_NAME_A, DMA_BUF_SET_NAME_B):
        assert ioctl_arg_bytes(proc, cmd, ctypes.addressof(buf)) is None


def _dma_buf_get(ranges: list[tuple[int, int]], nr_ranges: int | None = None) -> bytes:
    payload = bytes(
        vfio_device_feature_dma_buf(
            region_index=VFIO_PCI_BAR0_REGION_INDEX,
            open_flags=os.O_RDWR,
            nr_ranges=len(ranges) if nr_ranges is None else nr_ranges,
        )
    ) + b"".join(struct.pack("=QQ", o, n) for o, n in ranges)
    return _feature(VFIO_DEVICE_FEATURE_GET | 11, payload)


def test_dma_ranges_are_shown_as_many_as_nr_ranges_says() -> None:
    two = [(0, 0x1000), (0x2000, 0x3000)]
    text = arg_struct_text(VFIO_DEVICE_FEATURE, _dma_buf_get(two).hex())
    assert text is not None and text.endswith(
        "nr_ranges=2, dma_ranges=[{offset=0, length=4096}, {offset=8192, length=12288}]}}"
    )
    # nr_ranges says more than argsz holds: what is there, then "..."
    text = arg_struct_text(VFIO_DEVICE_FEATURE, _dma_buf_get(two, nr_ranges=3).hex())
    assert text is not None and text.endswith(", {offset=8192, length=12288}, ...]}}")
    # fewer: only nr_ranges of them (the rest is not the array)
    text = arg_struct_text(VFIO_DEVICE_FEATURE, _dma_buf_get(two, nr_ranges=1).hex())
    assert text is not None and text.endswith("dma_ranges=[{offset=0, length=4096}]}}")
    text = arg_struct_text(VFIO_DEVICE_FEATURE, _dma_buf_get([]).hex())
    assert text is not None and text.endswith("nr_ranges=0, dma_ranges=[]}}")


def test_a_traced_vfio_dma_buf_request_records_all_its_ranges(mock_kernel: Kernel) -> None:
    """Twenty ranges: 344 bytes, over the bound of old (256); each range is recorded."""
    ranges = [(i * 0x1000, 0x1000) for i in range(20)]
    data = _dma_buf_get(ranges)
    assert len(data) == 8 + 16 + 20 * 16
    proc = mock_kernel.init_process
    fd = proc.sys_open("/dev/udmabuf", os.O_RDWR)
    buf = ctypes.create_string_buffer(data)
    try:
        with mock_kernel.tracer.capture() as events:
            _errno(proc.sys_ioctl, fd, VFIO_DEVICE_FEATURE, ctypes.addressof(buf))
        (ev,) = _ioctls(events)
        assert ev["arg_data"] == data.hex()
        text = syscall_text(ev)
        assert text.count("{offset=") == 20 and "{offset=77824, length=4096}]" in text
    finally:
        proc.sys_close(fd)


def _attr(attr_id: int, length: int, data: int, flags: int = 0, elem: int = 0) -> bytes:
    return struct.pack("<HHHBBQ", attr_id, length, flags, elem, 0, data & (1 << 64) - 1)


def _uverbs(obj: int, method: int, attrs: list[bytes], length: int | None = None) -> bytes:
    size = 24 + 16 * len(attrs)
    hdr = ib_uverbs_ioctl_hdr(
        length=size if length is None else length,
        object_id=obj,
        method_id=method,
        num_attrs=len(attrs),
    )
    return bytes(hdr) + b"".join(attrs)


def test_uverbs_attributes_are_named_by_their_method() -> None:
    from mockkernel.uapi.rdma import ib_user_ioctl_cmds as C

    attrs = [
        _attr(C.UVERBS_ATTR_REG_DMABUF_MR_HANDLE, 0, 3, flags=1),
        _attr(C.UVERBS_ATTR_REG_DMABUF_MR_LENGTH, 8, 16384),
        _attr(C.UVERBS_ATTR_REG_DMABUF_MR_FD, 4, -1),
        _attr(C.UVERBS_ATTR_REG_DMABUF_MR_RESP_LKEY, 4, 0x7F0000001000),  # output: a pointer
        _attr(C.UVERBS_ATTR_UHW_IN, 32, 0x7F0000002000),  # more than 8 bytes: a pointer
        _attr(C.UVERBS_ID_DRIVER_NS + 5, 8, 1, flags=3, elem=2),  # a driver's own
        _attr(99, 8, 7),  # not in the method's enum
    ]
    data = _uverbs(C.UVERBS_OBJECT_MR, C.UVERBS_METHOD_REG_DMABUF_MR, attrs)
    text = arg_struct_text(RDMA_VERBS_IOCTL, data.hex())
    assert text == (
        "{length=136, object_id=UVERBS_OBJECT_MR, method_id=UVERBS_METHOD_REG_DMABUF_MR, "
        "num_attrs=7, driver_id=RDMA_DRIVER_UNKNOWN, attrs=["
        "{attr_id=UVERBS_ATTR_REG_DMABUF_MR_HANDLE, len=0, flags=UVERBS_ATTR_F_MANDATORY, "
        "data=3}, "
        "{attr_id=UVERBS_ATTR_REG_DMABUF_MR_LENGTH, len=8, flags=0, data=16384}, "
        "{attr_id=UVERBS_ATTR_REG_DMABUF_MR_FD, len=4, flags=0, data=-1}, "
        "{attr_id=UVERBS_ATTR_REG_DMABUF_MR_RESP_LKEY, len=4, flags=0, data=0x7f0000001000}, "
        "{attr_id=UVERBS_ATTR_UHW_IN, len=32, flags=0, data=0x7f0000002000}, "
        "{attr_id=UVERBS_ID_DRIVER_NS+5, len=8, "
        "flags=UVERBS_ATTR_F_MANDATORY|UVERBS_ATTR_F_VALID_OUTPUT, elem_id=2, data=1}, "
        "{attr_id=99, len=8, flags=0, data=7}]}"
    )
    # without addresses (the diagram): pointers are left out, values stay
    short = arg_struct_text(RDMA_VERBS_IOCTL, data.hex(), addresses=False)
    assert short is not None and "0x7f" not in short and "data=16384" in short
    # the same ids under another method are that method's names
    other = _uverbs(C.UVERBS_OBJECT_MR, C.UVERBS_METHOD_QUERY_MR, attrs[:1])
    assert "attr_id=UVERBS_ATTR_QUERY_MR_HANDLE," in (
        arg_struct_text(RDMA_VERBS_IOCTL, other.hex()) or ""
    )
    # fewer attributes recorded than num_attrs: "..."
    cut = arg_struct_text(RDMA_VERBS_IOCTL, data[: 24 + 16].hex())
    assert cut is not None and cut.endswith("data=3}, ...]}")


@pytest.mark.parametrize(
    ("length", "recorded"),
    [
        (None, 24 + 3 * 16),  # the header's length: header and attributes
        (8, 24),  # shorter than the header: the header (the call refuses it)
        (4097 + 24, 24),  # over the bound: the header
    ],
)
def test_a_traced_uverbs_ioctl_records_its_attributes(
    mock_kernel: Kernel, length: int | None, recorded: int
) -> None:
    from mockkernel.uapi.rdma import ib_user_ioctl_cmds as C

    attrs = [_attr(C.UVERBS_ATTR_QUERY_MR_HANDLE, 0, i) for i in range(3)]
    data = _uverbs(C.UVERBS_OBJECT_MR, C.UVERBS_METHOD_QUERY_MR, attrs, length)
    proc = mock_kernel.init_process
    fd = proc.sys_open("/dev/udmabuf", os.O_RDWR)
    buf = ctypes.create_string_buffer(data + b"\xee" * 4200)
    try:
        with mock_kernel.tracer.capture() as events:
            assert _errno(proc.sys_ioctl, fd, RDMA_VERBS_IOCTL, ctypes.addressof(buf)) == "ENOTTY"
        (ev,) = _ioctls(events)
        assert ev["arg_data"] == (data + b"\xee" * 4200)[:recorded].hex()
    finally:
        proc.sys_close(fd)
