"""Hypothesis over every ioctl of every file a program can get an fd for.

The project standard: malformed input is rejected with the errno the real kernel uses --
never a Python traceback, a crash of the interpreter, or a leaked file, attachment or
lock.  For each kind of mock file (the device nodes found by listing ``/dev``, and the
fds derived from them: dma-bufs of both exporters, a sync_file, the uverbs async event
file, a netlink socket, a sysfs binary attribute) this draws ioctl requests from the
numbers the drivers know (their ``ioctls`` tables and every ``mockkernel.uapi``
constant), those numbers with the size/direction/number bits changed, and random 32-bit
numbers; and arguments that are ints (including values CPython rejects) or buffers of
0..2048 bytes.  Each call must return, or raise ``OSError`` or one of the argument errors
CPython's own ``fcntl.ioctl`` raises.  After each example every new fd is closed and the
kernel must hold no lock, have no warning and find no leak.

Safety: drivers read and *write* through user pointers found in the argument.  Buffers
are built from 8-byte slots that are small numbers, all-ones values, addresses inside a
scratch mapping the test owns, or addresses inside a ``PROT_NONE`` reservation -- never a
raw random 64-bit value.  And because an int argument may happen to be a mapped address
and a lying length field may reach past the ioctl buffer, every write ``mockkernel.uaccess``
makes outside the ioctl windows while a fuzzed call runs is refused (``EFAULT``) unless it
lands in the scratch mapping: nothing can scribble over the interpreter.

``FUZZ_EXAMPLES=2000 python -m pytest -n auto tests/test_fuzz_ioctls.py`` runs a longer
campaign (the default, 60 examples per kind, keeps the file under ten seconds).
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import errno
import fcntl
import importlib
import os
import pkgutil
import socket
import struct
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mockkernel.uapi
from mockkernel import Kernel
from mockkernel import uaccess as ua
from mockkernel.errors import kerr
from mockkernel.fs import FileOperations
from mockkernel.mm import _load_libc
from mockkernel.testing import sealed_memfd
from mockkernel.testing.rdma import Verbs, VfioDevice
from mockkernel.uapi.linux.dma_buf import DMA_BUF_IOCTL_EXPORT_SYNC_FILE
from mockkernel.uapi.linux.vfio import (
    VFIO_GROUP_GET_DEVICE_FD,
    VFIO_GROUP_SET_CONTAINER,
    VFIO_SET_IOMMU,
    VFIO_TYPE1_IOMMU,
    VFIO_TYPE1v2_IOMMU,
)
from mockkernel.uapi.rdma.ib_user_verbs import IB_USER_VERBS_CMD_GET_CONTEXT
from mockkernel.vfs import ChrDev

SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ARENA = 1 << 16
HOLE = 1 << 16
PAGE = 4096
BDF = "0000:01:00.0"
_U64 = (1 << 64) - 1
_write_mem = ua.UserMemory.write


# -- the numbers the kernel knows ------------------------------------------------------------
def _uapi_numbers() -> set[int]:
    out: set[int] = set()
    for info in pkgutil.walk_packages(mockkernel.uapi.__path__, "mockkernel.uapi."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if name.isupper() and type(value) is int and 0xFF < value <= 0xFFFFFFFF:
                out.add(value)
    return out


def _fops_numbers() -> set[int]:
    for ep in entry_points(group="mockkernel"):  # the bundled drivers' ops tables
        ep.load()
    out: set[int] = set()
    todo: list[type] = [FileOperations]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        out |= set(getattr(cls, "ioctls", {}))
    return out


FOPS_NUMBERS = sorted(_fops_numbers())
_VFS = {0x5450, 0x5451, 0x5421, 0x5452, 0x5460}  # FIONCLEX FIOCLEX FIONBIO FIOASYNC FIOQSIZE
#: ioctl "types" (the second byte) the drivers use: ';' vfio/iommufd, 'b' dma-buf, 'u'
#: udmabuf, 0x1b RDMA; uapi constants of another type are not ioctl numbers
_TYPES = {(n >> 8) & 0xFF for n in FOPS_NUMBERS} | {ord(";")}
KNOWN = sorted({n for n in _uapi_numbers() if (n >> 8) & 0xFF in _TYPES} | set(FOPS_NUMBERS) | _VFS)


@st.composite
def _mutated(draw: st.DrawFn) -> int:
    """A known number with its size, direction, number or type field changed."""
    base = draw(st.sampled_from(KNOWN))
    what = draw(st.sampled_from(["size", "dir", "nr", "type"]))
    if what == "size":
        return (base & ~(0x3FFF << 16)) | draw(st.integers(0, 0x3FFF)) << 16
    if what == "dir":
        return (base & 0x3FFFFFFF) | draw(st.integers(0, 3)) << 30
    if what == "nr":
        return (base & ~0xFF) | (base + draw(st.integers(-3, 3))) & 0xFF
    return (base & ~0xFF00) | draw(st.integers(0, 0xFF)) << 8


def requests(own: list[int]) -> st.SearchStrategy[int]:
    strategies = [st.sampled_from(KNOWN), _mutated(), st.integers(0, 0xFFFFFFFF)]
    if own:
        strategies[:0] = [st.sampled_from(own)] * 2
    return st.one_of(*strategies)


# -- memory the pointers may name ------------------------------------------------------------
class Arena:
    """A scratch buffer pointers may name, a ``PROT_NONE`` reservation, and the guard."""

    def __init__(self) -> None:
        libc = _load_libc()  # mmap/munmap with their C types (the mm layer's)
        self._libc = libc
        # page-aligned, so a payload can name whole pages (MAP_DMA, REG_MR)
        base = libc.mmap(None, ARENA, 3, 0x22, -1, 0)  # PROT_READ|PROT_WRITE, private anon
        hole = libc.mmap(None, HOLE, 0, 0x22, -1, 0)  # PROT_NONE
        assert None not in (base, hole) and ctypes.c_void_p(-1).value not in (base, hole)
        self.base = int(base)
        self.hole = int(hole)
        self.armed = False
        self.refused = 0

    def close(self) -> None:
        self._libc.munmap(self.base, ARENA)
        self._libc.munmap(self.hole, HOLE)

    def write_mem(self, mm: ua.UserMemory, addr: int, data: bytes | bytearray | memoryview) -> None:
        """``mockkernel.uaccess``'s write outside the ioctl windows, while a fuzzed call runs:
        only into the scratch buffer (anything else is ``EFAULT``, as if unmapped)."""
        if self.armed and not (self.base <= addr and addr + len(data) <= self.base + ARENA):
            self.refused += 1
            raise kerr(errno.EFAULT)
        _write_mem(mm, addr, data)


@pytest.fixture
def arena(monkeypatch: pytest.MonkeyPatch) -> Iterator[Arena]:
    a = Arena()

    def write(mm: ua.UserMemory, addr: int, data: bytes | bytearray | memoryview) -> None:
        a.write_mem(mm, addr, data)

    monkeypatch.setattr(ua.UserMemory, "write", write)
    yield a
    monkeypatch.undo()
    a.close()


_SMALL = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 40, 48, 56, 64, 0x80, 0x100]
_SMALL += [0x1000, 0x2000, 0x4000, 0x10000, 0x100000, 0x7FFFFFFF, 0x80000000]
_SMALL += [0xFFFFFFFE, 0xFFFFFFFF]
_SMALL += [f | n for f in (1 << 16, 1 << 17, 1 << 18, 3 << 16) for n in range(0, 16)]
_small_u32 = st.sampled_from(_SMALL) | st.integers(0, 0xFFFF)


def slots(arena: Arena, fds: list[int]) -> st.SearchStrategy[int]:
    """One 8-byte slot of a payload: never an address outside the test's own memory."""
    small = _small_u32 | st.sampled_from(fds)  # an fd the example holds: memfd, dma-buf...
    return st.one_of(
        st.builds(lambda lo, hi: (lo & 0xFFFFFFFF) | (hi & 0xFFFFFFFF) << 32, small, small),
        st.sampled_from([0, _U64, 0xFFFFFFFF, 1 << 63, (1 << 63) - 1, 1 << 32]),
        st.integers(0, ARENA - 1).map(lambda off: arena.base + off),
        st.integers(0, ARENA // PAGE - 1).map(lambda page: arena.base + page * PAGE),
        st.integers(0, HOLE - 1).map(lambda off: arena.hole + off),
    )


_NAMES = st.sampled_from(
    [
        BDF.encode() + b"\0",
        BDF.encode(),
        BDF.encode() + b" \0",
        BDF.encode() + b" vf_token=01234567-89ab-cdef-0123-456789abcdef\0",
        BDF.encode() + b" vf_token=0123\0",
        BDF.encode() + b" bogus\0",
        b"0000:02:00.0\0",
        b"\xff\xfe\0",
    ]
)


@st.composite
def buffers(draw: st.DrawFn, arena: Arena, fds: list[int]) -> bytes:
    if draw(st.integers(0, 9)) == 0:  # a device name (VFIO_GROUP_GET_DEVICE_FD)
        name = draw(_NAMES)
        return name + draw(st.binary(max_size=16)) if draw(st.booleans()) else name
    length = draw(
        st.sampled_from([0, 1, 4, 8, 12, 16, 24, 32, 40, 48, 64, 128, 1023, 1024, 1025, 2048])
        | st.integers(0, 2048)
    )
    given_slots = draw(st.lists(slots(arena, fds), max_size=min(length // 8, 24)))
    n = length // 8
    if given_slots and draw(st.booleans()):  # repeat the pattern, else zero-fill
        body = (given_slots * (n // len(given_slots) + 1))[:n]
    else:
        body = given_slots + [0] * (n - len(given_slots))
    raw = bytearray(struct.pack(f"<{n}Q", *body))
    raw += draw(st.binary(min_size=length % 8, max_size=length % 8))
    if length >= 4 and draw(st.booleans()):  # an argsz/length field that tells the truth
        struct.pack_into("<I", raw, 0, length)
        if length >= 8 and draw(st.booleans()):
            struct.pack_into("<i", raw, 4, draw(st.sampled_from(fds)))
        elif length >= 8 and draw(st.booleans()):  # and vfio-style flags: a feature, an index
            struct.pack_into("<I", raw, 4, draw(st.sampled_from(_SMALL)))
    return bytes(raw)


_int_args = st.one_of(
    st.integers(-0x80000000, 0x7FFFFFFF),
    st.sampled_from([0, 1, -1, 0x7FFFFFFF, -0x80000000, 0x80000000, -0x80000001, 1 << 63]),
    st.integers(0x80000000, 1 << 80),
    st.integers(-(1 << 80), -0x80000001),
)


# -- the files -------------------------------------------------------------------------------
@dataclass
class Target:
    fd: int
    real_fds: list[int] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)


def _mock_nodes(kernel: Kernel) -> list[str]:
    """Every mock device node, found by listing /dev under the redirection."""
    out = []
    for root, _dirs, files in os.walk("/dev"):
        for name in files:
            path = f"{root}/{name}"
            if isinstance(kernel.vfs.lookup(path), ChrDev):
                out.append(path)
    return sorted(out)


def _open(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CLOEXEC)


def _node(kernel: Kernel, want: Callable[[str], bool]) -> str:
    paths = [p for p in _mock_nodes(kernel) if want(p)]
    assert paths, "no such node in the default topology"
    return paths[0]


def _udmabuf_dev(kernel: Kernel, data: st.DataObject) -> Target:
    t = Target(_open(_node(kernel, lambda p: p == "/dev/udmabuf")))
    t.real_fds.append(sealed_memfd(4 * PAGE))  # a memfd whose number a payload may name
    return t


def _container(kernel: Kernel, data: st.DataObject) -> Target:
    return Target(_open(_node(kernel, lambda p: p == "/dev/vfio/vfio")))


def _group_path(kernel: Kernel) -> str:
    return _node(kernel, lambda p: os.path.dirname(p) == "/dev/vfio" and p[10:].isdigit())


def _container_type1(kernel: Kernel, data: st.DataObject) -> Target:
    """A container with the group in it and a type1 IOMMU (v1 or v2) set: MAP/UNMAP_DMA."""
    group = _open(_group_path(kernel))
    container = _open("/dev/vfio/vfio")
    fcntl.ioctl(group, VFIO_GROUP_SET_CONTAINER, bytearray(struct.pack("<i", container)))
    iommu = data.draw(st.sampled_from([VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU]), label="iommu")
    fcntl.ioctl(container, VFIO_SET_IOMMU, iommu)
    return Target(container)


def _group(kernel: Kernel, data: st.DataObject) -> Target:
    group = _open(_group_path(kernel))
    if data.draw(st.booleans(), label="with container"):
        container = _open("/dev/vfio/vfio")
        fcntl.ioctl(group, VFIO_GROUP_SET_CONTAINER, bytearray(struct.pack("<i", container)))
        fcntl.ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)
    return Target(group)


def _group_device(kernel: Kernel, data: st.DataObject) -> Target:
    group = _open(_group_path(kernel))
    container = _open("/dev/vfio/vfio")
    fcntl.ioctl(group, VFIO_GROUP_SET_CONTAINER, bytearray(struct.pack("<i", container)))
    fcntl.ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)
    fd = fcntl.ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bytearray(BDF.encode() + b"\0"))
    return Target(fd)


def _cdev(kernel: Kernel, data: st.DataObject) -> Target:
    path = _node(kernel, lambda p: p.startswith("/dev/vfio/devices/"))
    if data.draw(st.booleans(), label="bound to iommufd"):
        dev = VfioDevice(BDF)
        return Target(dev.fd, closers=[dev.close])
    return Target(_open(path))


def _iommu(kernel: Kernel, data: st.DataObject) -> Target:
    return Target(_open(_node(kernel, lambda p: p == "/dev/iommu")))


def _uverbs(kernel: Kernel, data: st.DataObject) -> Target:
    paths = [p for p in _mock_nodes(kernel) if p.startswith("/dev/infiniband/uverbs")]
    node = os.path.basename(data.draw(st.sampled_from(paths), label="uverbs node"))
    with open(f"/sys/class/infiniband_verbs/{node}/ibdev") as f:
        ibdev = f.read().strip()
    v = Verbs(ibdev, context=data.draw(st.booleans(), label="with context"))
    assert v.uverbs == node
    return Target(v.fd, closers=[v.close])


def _async_event(kernel: Kernel, data: st.DataObject) -> Target:
    v = Verbs("mlx5_0", context=False)
    addr, buf = v.out(8 + 72)  # ib_uverbs_get_context_resp + mlx5_ib_alloc_ucontext_resp
    # mlx5's driver data: mlx5_ib_alloc_ucontext_req_v2 (16 bfregs, 4K and dynamic UARs)
    req = struct.pack("<IIIIBBHIQ", 16, 4, 0, 0, 1, 0, 0, 0, 3)
    v.write_cmd(IB_USER_VERBS_CMD_GET_CONTEXT, struct.pack("<Q", addr) + req, 20)
    (async_fd,) = struct.unpack_from("<I", buf.raw)
    return Target(async_fd, closers=[v.close])


def _udmabuf(kernel: Kernel, data: st.DataObject) -> Target:
    memfd = sealed_memfd(4 * PAGE)
    dev = _open("/dev/udmabuf")
    try:
        fd = fcntl.ioctl(dev, 0x40187542, bytearray(struct.pack("<IIQQ", memfd, 0, 0, 4 * PAGE)))
    finally:
        os.close(dev)
    return Target(fd, real_fds=[memfd])


def _vfio_dmabuf(kernel: Kernel, data: st.DataObject) -> Target:
    dev = VfioDevice(BDF)
    fd = dev.export(0, 4 * PAGE)
    if data.draw(st.booleans(), label="device closed"):
        dev.close()
    return Target(fd, closers=[dev.close])


def _sync_file(kernel: Kernel, data: st.DataObject) -> Target:
    t = _udmabuf(kernel, data)
    arg = bytearray(struct.pack("<Ii", 3, -1))  # DMA_BUF_SYNC_RW
    fcntl.ioctl(t.fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, arg)
    os.close(t.fd)
    t.fd = struct.unpack_from("<i", arg, 4)[0]
    return t


def _netlink(kernel: Kernel, data: st.DataObject) -> Target:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)  # NETLINK_GENERIC
    return Target(sock.fileno(), closers=[sock.close])


def _sysfs_config(kernel: Kernel, data: st.DataObject) -> Target:
    return Target(_open(f"/sys/bus/pci/devices/{BDF}/config"))


KINDS: dict[str, Callable[[Kernel, st.DataObject], Target]] = {
    "udmabuf-dev": _udmabuf_dev,
    "vfio-container": _container,
    "vfio-container-type1": _container_type1,
    "vfio-group": _group,
    "vfio-group-device": _group_device,
    "vfio-cdev": _cdev,
    "iommufd": _iommu,
    "uverbs": _uverbs,
    "uverbs-async-event": _async_event,
    "udmabuf-dmabuf": _udmabuf,
    "vfio-dmabuf": _vfio_dmabuf,
    "sync-file": _sync_file,
    "netlink": _netlink,
    "sysfs-config": _sysfs_config,
}


# -- the calls -----------------------------------------------------------------------------
#: how the argument is passed: most often as programs do (an int, a bytearray, bytes), but
#: also as every other object CPython's ``fcntl.ioctl`` takes or refuses
SHAPES = ["int"] * 4 + ["bytearray"] * 6 + ["bytes"] * 2
SHAPES += ["str", "array", "ctypes", "memoryview", "strided", "other"]


def _shaped(shape: str, raw: bytes) -> Any:
    if shape == "bytearray":
        return bytearray(raw)
    if shape == "bytes":
        return raw
    if shape == "str":
        return raw.decode("latin-1")
    if shape == "array":
        return array.array("B", raw)
    if shape == "ctypes":
        return (ctypes.c_char * len(raw)).from_buffer_copy(raw)
    if shape == "memoryview":
        mv = memoryview(bytearray(raw))
        return mv.cast("I") if raw and not len(raw) % 4 else mv  # a format other than "B"
    return memoryview(bytearray(raw) * 2)[::2]  # not contiguous


def _call(fd: int, request: int, arg: Any, mutate: bool | None) -> None:
    args = (arg,) if mutate is None else (arg, mutate)  # mutate_flag left out: its default
    got = fcntl.ioctl(fd, request, *args)
    assert type(got) in (int, bytes), f"ioctl returned {got!r}"


def _allowed(e: BaseException) -> bool:
    if isinstance(e, OSError):
        return True
    if isinstance(e, ValueError):
        return str(e) == "ioctl string arg too long"
    return isinstance(e, (OverflowError, TypeError))


def test_every_kind_has_a_node(mock_kernel: Kernel) -> None:
    """The device nodes the kinds fuzz are the mock nodes /dev lists, all of them."""
    nodes = _mock_nodes(mock_kernel)
    assert "/dev/udmabuf" in nodes and "/dev/iommu" in nodes and "/dev/vfio/vfio" in nodes
    assert any(p.startswith("/dev/infiniband/uverbs") for p in nodes)
    assert any(p.startswith("/dev/vfio/devices/") for p in nodes)
    covered = {"/dev/udmabuf", "/dev/vfio/vfio", "/dev/iommu", _group_path(mock_kernel)}
    covered |= {p for p in nodes if p.startswith(("/dev/infiniband/", "/dev/vfio/devices/"))}
    assert set(nodes) == covered, f"a mock node no kind fuzzes: {set(nodes) - covered}"


@pytest.mark.parametrize("kind", sorted(KINDS))
@SETTINGS
@given(data=st.data())
def test_ioctl_fuzz(mock_kernel: Kernel, arena: Arena, kind: str, data: st.DataObject) -> None:
    proc = mock_kernel.init_process
    before = set(proc.files)
    companions = []  # other files whose numbers a payload may name
    if data.draw(st.booleans(), label="iommufd companion"):
        companions.append(_open("/dev/iommu"))
    if data.draw(st.booleans(), label="container companion"):
        companions.append(_open("/dev/vfio/vfio"))
    target = KINDS[kind](mock_kernel, data)
    if data.draw(st.booleans(), label="dma-buf companion"):
        extra = _udmabuf(mock_kernel, data)
        target.real_fds += extra.real_fds
    own = sorted(set(type(proc.files[target.fd].f_op).ioctls) | set(FOPS_NUMBERS))
    try:
        for _ in range(data.draw(st.integers(1, 3), label="calls")):
            request = data.draw(requests(own), label="request")
            arg: Any
            mutate: bool | None = None
            shape = data.draw(st.sampled_from(SHAPES), label="arg kind")
            if shape == "int":
                arg = data.draw(_int_args, label="arg")
            elif shape == "other":
                arg = data.draw(st.sampled_from([None, 1.5, True, False, "", object()]))
            else:
                fds = sorted({*proc.files, *target.real_fds, -1})
                arg = _shaped(shape, data.draw(buffers(arena, fds), label="arg"))
                mutate = data.draw(st.sampled_from([None, True, False]), label="mutate_flag")
            traced = data.draw(st.booleans(), label="traced")  # the syscall layer's path
            arena.armed = True
            try:
                with mock_kernel.tracer.capture() if traced else contextlib.nullcontext():
                    _call(target.fd, request, arg, mutate)
            except BaseException as e:
                if not _allowed(e):
                    shown = arg if shape in ("int", "other") else bytes(memoryview(arg)[:64])
                    raise AssertionError(
                        f"{kind}: ioctl({request:#010x}, {shape} {shown!r}) raised "
                        f"{type(e).__name__}: {e}\n{''.join(traceback.format_exception(e))}"
                    ) from e
            finally:
                arena.armed = False
            assert not mock_kernel.held_locks, f"{kind}: lock left held: {mock_kernel.held_locks}"
    finally:
        for close in target.closers:
            close()
        for fd in sorted(set(proc.files) - before):
            os.close(fd)
        for fd in target.real_fds:
            os.close(fd)
    assert mock_kernel.leaks() == []
