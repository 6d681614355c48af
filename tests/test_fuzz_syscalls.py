"""Stateful fuzzing of the whole syscall surface (Hypothesis ``RuleBasedStateMachine``).

One kernel per run, driven through ``os``/``fcntl``/``mmap``/``select``/``socket`` exactly as
a program drives it: random sequences of open (every mock node, random flags), close,
dup/dup2/dup3/``F_DUPFD``, ``fcntl`` (valid and unknown commands), ioctl (the drivers' own
recipes -- udmabuf create, vfio container/group/device/iommufd/dma-buf export, reset and
memory toggles, uverbs context/PD/dma-buf MR -- with fds drawn from what the program holds,
and garbage requests and arguments), read/write/pread/pwrite, mmap/munmap, poll/select,
netlink sockets, simulated processes (``kernel.spawn``: open, dup, exit), and the PCI sysfs
files that drive probe and remove (``unbind``, ``bind``, ``driver_override``, ``remove``,
``rescan``).

The model is the program's fd table: which number holds which kernel file, and which
mappings exist.  After every step:

* no exception other than ``OSError`` (with an errno) left a call -- and for calls whose
  outcome the model knows (an fd that is not open, an unknown ``fcntl`` command), the errno
  is Linux's;
* the mock fd table is the model's: no fd appeared that no call returned, none vanished,
  each number still names the same file, and every mock number is open in the real OS;
* every file the program holds is live (in ``kernel.live_files``, not released) with at
  least as many references as the program's fds and mappings; a file the model knows has
  no hidden reference (a device node, a socket, a udmabuf) has exactly that many;
* no lock is held and the kernel recorded no warning.

At teardown every fd and mapping is closed and ``kernel.shutdown`` must find no leak, and
the real fd table must be as it was.

Pointers inside fuzzed ioctl buffers only name the test's own scratch memory or a
``PROT_NONE`` hole, and kernel writes outside the ioctl windows are refused unless they
land in the scratch memory (the ``Arena`` of ``tests/test_fuzz_ioctls.py``).

Profiles: the normal suite runs a few short examples.  A campaign::

    FUZZ_EXAMPLES=2000 FUZZ_STEPS=80 python -m pytest -q -p no:randomly tests/test_fuzz_syscalls.py

(``FUZZ_SEED`` fixes the seed; ``FUZZ_REPORT=PATH`` keeps the running totals there:
examples, calls made, errnos seen); its numbers are in docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import gc
import json
import mmap
import os
import select
import socket
import struct
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from mockkernel_vfio_pci import VfioPciDevice
from test_fuzz_ioctls import KNOWN, Arena, _int_args, buffers, requests

import mockkernel
from mockkernel import uaccess as ua
from mockkernel.driver import pci_get_drvdata
from mockkernel.fs import File
from mockkernel.pci.core import PciCore
from mockkernel.realfd import REAL
from mockkernel.testing import sealed_memfd
from mockkernel.testing.rdma import Verbs
from mockkernel.uapi.linux.vfio import (
    VFIO_GROUP_GET_DEVICE_FD,
    VFIO_GROUP_SET_CONTAINER,
    VFIO_GROUP_UNSET_CONTAINER,
    VFIO_SET_IOMMU,
    VFIO_TYPE1_IOMMU,
    VFIO_TYPE1v2_IOMMU,
)

PAGE = mmap.PAGESIZE
BDFS = ["0000:01:00.0", "0000:02:00.0", "0000:03:00.0"]
VFIO_BDF = "0000:01:00.0"
UDMABUF_CREATE = 0x40187542
VFIO_DEVICE_FEATURE = 0x3B75
VFIO_DEVICE_RESET = 0x3B6F
VFIO_DEVICE_BIND_IOMMUFD = 0x3B76
VFIO_DEVICE_ATTACH_IOMMUFD_PT = 0x3B77
IOMMU_IOAS_ALLOC = 0x3B81
_CONFIG_REGION = 7 << 40
#: files with no reference the program cannot see: f_count is exactly fds + mappings
#: (not an iommufd: a device bound to it holds it, as ``iommufd_ctx_get`` does)
EXACT = {"udmabuf-dev", "netlink", "sysfs", "vfio-container", "uverbs"}
ALLOWED_IOCTL_ERRORS = (OSError, OverflowError, TypeError)


def real_fds() -> set[int]:
    """The fd numbers open in the real OS (read past the redirection)."""
    out = set()
    for name in REAL.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            REAL.fcntl(int(name), fcntl.F_GETFD)
            out.add(int(name))
    return out


def _nodes() -> list[tuple[str, str]]:
    return [
        ("udmabuf-dev", "/dev/udmabuf"),
        ("vfio-container", "/dev/vfio/vfio"),
        ("vfio-group", "/dev/vfio/6"),
        ("vfio-cdev", "/dev/vfio/devices/vfio0"),
        ("iommufd", "/dev/iommu"),
        ("uverbs", "/dev/infiniband/uverbs0"),
        ("uverbs", "/dev/infiniband/uverbs1"),
        ("sysfs", f"/sys/bus/pci/devices/{VFIO_BDF}/config"),
        ("none", "/dev/vfio/7"),
        ("none", "/dev/infiniband/uverbs9"),
    ]


#: paths the tree rules change: mock nodes and directories, new names, host files shown
#: through the mock tree, the mock's sysfs and procfs, and a host path
_TREE_PATHS = [
    "/dev/udmabuf",
    "/dev/vfio",
    "/dev/vfio/devices/vfio0",
    "/dev/infiniband/uverbs0",
    "/dev/fuzz",
    "/dev/fuzz/x",
    "/dev/null",
    "/dev/shm",
    "/sys/bus/pci/rescan",
    "/sys/bus/pci/devices/0000:01:00.0",
    "/sys/kernel/fuzz",
    "/proc/bus/pci/01",
    "/proc/sys/fuzz",
]


@dataclass(eq=False)
class MFile:
    """A kernel file in the model: the program's view of it."""

    kind: str
    kfile: File


@dataclass(eq=False)
class MMap:
    file: MFile
    obj: mmap.mmap
    hidden: int  # CPython's own dup of the mapped fd


@dataclass
class Stats:
    """What a campaign counts (per process)."""

    examples: int = 0
    steps: int = 0
    errnos: dict[str, int] = field(default_factory=dict)

    def saw(self, e: OSError) -> None:
        name = errno.errorcode.get(e.errno or 0, str(e.errno))
        self.errnos[name] = self.errnos.get(name, 0) + 1


STATS = Stats()


class Syscalls(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.start_fds = real_fds()
        self.host_dev = sorted(REAL.listdir("/dev"))
        self.kernel = mockkernel.boot()
        self.arena = Arena()
        arena = self.arena
        self._real_write = ua.UserMemory.write

        def write(mm: ua.UserMemory, addr: int, data: bytes | bytearray | memoryview) -> None:
            arena.write_mem(mm, addr, data)

        ua.UserMemory.write = write  # type: ignore[method-assign,assignment]
        self.redir = self.kernel.install()
        self.redir.install()
        self.proc = self.kernel.init_process
        self.memfd = sealed_memfd(4 * PAGE)
        self.fds: dict[int, MFile] = {}
        self.maps: list[MMap] = []
        self.tasks: list[Any] = []
        self.pds: list[tuple[int, int]] = []  # (uverbs fd, pd handle)

    # -- the model -------------------------------------------------------------------------
    def visible(self) -> list[int]:
        return sorted(set(self.fds) - {m.hidden for m in self.maps})

    def of_kind(self, *kinds: str) -> list[int]:
        return [n for n in self.visible() if self.fds[n].kind in kinds]

    def refs(self, f: MFile) -> int:
        return sum(g is f for g in self.fds.values()) + sum(m.file is f for m in self.maps)

    def free_numbers(self) -> list[int]:
        taken = real_fds()
        top = max(taken | set(self.fds) | {0}) + 3
        return [n for n in range(3, top) if n not in taken][:4]

    def fd_arg(self, data: st.DataObject) -> int:
        """An fd argument: usually one the program holds, sometimes any number."""
        pool = [*self.visible(), self.memfd]
        return data.draw(
            st.sampled_from(pool) | st.sampled_from([-1, 0, 1, 999, 1 << 20, *self.free_numbers()])
        )

    def adopt(self, kind: str) -> list[int]:
        """The fds the last call created: into the model under ``kind``."""
        new = sorted(set(self.proc.files) - set(self.fds))
        for fd in new:
            self.fds[fd] = MFile(kind, self.proc.files[fd])
        return new

    @contextlib.contextmanager
    def syscall(
        self, what: str, allowed: tuple[type[BaseException], ...] = (OSError,)
    ) -> Iterator[None]:
        """Run one call: only ``allowed`` may leave it; an ``OSError`` must carry an errno."""
        STATS.steps += 1
        try:
            yield
        except allowed as e:
            if isinstance(e, OSError):
                assert e.errno in errno.errorcode, f"{what}: OSError without a known errno: {e!r}"
                STATS.saw(e)
        except BaseException as e:
            raise AssertionError(
                f"{what} raised {type(e).__name__}: {e}\n{''.join(traceback.format_exception(e))}"
            ) from e

    def expect_errno(self, name: str, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except OSError as e:
            assert errno.errorcode.get(e.errno or 0) == name, (fn, args, e)
            return
        raise AssertionError(f"{fn}{args} succeeded, expected {name}")

    # -- opening ---------------------------------------------------------------------------
    @rule(
        node=st.sampled_from(_nodes()),
        acc=st.sampled_from([os.O_RDWR, os.O_RDONLY, os.O_WRONLY, os.O_PATH]),
        extra=st.sampled_from([0, os.O_NONBLOCK, os.O_CLOEXEC, os.O_EXCL, os.O_TRUNC]),
    )
    def open_node(self, node: tuple[str, str], acc: int, extra: int) -> None:
        kind, path = node
        with self.syscall(f"open({path})"):
            os.open(path, acc | extra)
        self.adopt("path" if acc == os.O_PATH else kind)

    @rule(cloexec=st.booleans())
    def netlink_socket(self, cloexec: bool) -> None:
        with self.syscall("socket(AF_NETLINK)"):
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
            sock.detach()  # the number is the program's from now on (no close at collection)
        self.adopt("netlink")

    @precondition(lambda self: self.of_kind("netlink"))
    @rule(
        data=st.data(), payload=st.binary(max_size=64), family=st.sampled_from([0x10, 0x11, 0x20])
    )
    def netlink_send(self, data: st.DataObject, payload: bytes, family: int) -> None:
        fd = data.draw(st.sampled_from(self.of_kind("netlink")))
        msg = struct.pack("=IHHII", 16 + 4 + len(payload), family, 1 | 4, 1, 0)
        msg += struct.pack("=BBH", 3, 1, 0) + payload
        with self.syscall("sendto(netlink)"):
            sock = socket.socket(fileno=fd)
            try:
                sock.send(msg if data.draw(st.booleans()) else payload)
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    sock.recv(4096)
            finally:
                sock.detach()
        self.adopt("derived")

    # -- udmabuf ---------------------------------------------------------------------------
    @precondition(lambda self: self.of_kind("udmabuf-dev"))
    @rule(
        data=st.data(),
        offset=st.sampled_from([0, PAGE, 1, 4 * PAGE]),
        size=st.sampled_from([PAGE, 2 * PAGE, 4 * PAGE, 0, 5 * PAGE, 3]),
        flags=st.sampled_from([0, 1, 2, 0x80000000]),
    )
    def udmabuf_create(self, data: st.DataObject, offset: int, size: int, flags: int) -> None:
        dev = data.draw(st.sampled_from(self.of_kind("udmabuf-dev")))
        memfd = self.memfd if data.draw(st.integers(0, 3)) else self.fd_arg(data)
        arg = bytearray(struct.pack("<IIQQ", memfd & 0xFFFFFFFF, flags, offset, size))
        with self.syscall("UDMABUF_CREATE"):
            fcntl.ioctl(dev, UDMABUF_CREATE, arg)
        self.adopt("dmabuf")

    # -- vfio ------------------------------------------------------------------------------
    @precondition(lambda self: self.of_kind("vfio-group"))
    @rule(data=st.data())
    def vfio_group_set_container(self, data: st.DataObject) -> None:
        group = data.draw(st.sampled_from(self.of_kind("vfio-group")))
        containers = self.of_kind("vfio-container")
        pick = bool(containers) and data.draw(st.booleans())
        target = data.draw(st.sampled_from(containers)) if pick else self.fd_arg(data)
        with self.syscall("VFIO_GROUP_SET_CONTAINER"):
            fcntl.ioctl(group, VFIO_GROUP_SET_CONTAINER, bytearray(struct.pack("<i", target)))
        self.adopt("derived")

    @precondition(lambda self: self.of_kind("vfio-group"))
    @rule(data=st.data())
    def vfio_group_unset_container(self, data: st.DataObject) -> None:
        group = data.draw(st.sampled_from(self.of_kind("vfio-group")))
        with self.syscall("VFIO_GROUP_UNSET_CONTAINER"):
            fcntl.ioctl(group, VFIO_GROUP_UNSET_CONTAINER)

    @precondition(lambda self: self.of_kind("vfio-container"))
    @rule(data=st.data(), kind=st.sampled_from([VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, 0, 99]))
    def vfio_set_iommu(self, data: st.DataObject, kind: int) -> None:
        c = data.draw(st.sampled_from(self.of_kind("vfio-container")))
        with self.syscall("VFIO_SET_IOMMU"):
            fcntl.ioctl(c, VFIO_SET_IOMMU, kind)

    @precondition(lambda self: self.of_kind("vfio-group"))
    @rule(data=st.data(), name=st.sampled_from([VFIO_BDF, "0000:02:00.0", "", "x" * 40]))
    def vfio_get_device_fd(self, data: st.DataObject, name: str) -> None:
        group = data.draw(st.sampled_from(self.of_kind("vfio-group")))
        with self.syscall("VFIO_GROUP_GET_DEVICE_FD"):
            fcntl.ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bytearray(name.encode() + b"\0"))
        self.adopt("vfio-device")

    @precondition(lambda self: self.of_kind("vfio-cdev"))
    @rule(data=st.data())
    def vfio_bind_iommufd(self, data: st.DataObject) -> None:
        dev = data.draw(st.sampled_from(self.of_kind("vfio-cdev")))
        iommus = self.of_kind("iommufd")
        pick = bool(iommus) and data.draw(st.booleans())
        ictx = data.draw(st.sampled_from(iommus)) if pick else self.fd_arg(data)
        arg = bytearray(struct.pack("<IIiI", 16, 0, ictx, 0))
        with self.syscall("VFIO_DEVICE_BIND_IOMMUFD"):
            fcntl.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, arg)

    @precondition(lambda self: self.of_kind("iommufd") and self.of_kind("vfio-cdev"))
    @rule(data=st.data())
    def vfio_attach_ioas(self, data: st.DataObject) -> None:
        ictx = data.draw(st.sampled_from(self.of_kind("iommufd")))
        dev = data.draw(st.sampled_from(self.of_kind("vfio-cdev")))
        ioas = bytearray(struct.pack("<III", 12, 0, 0))
        with self.syscall("IOMMU_IOAS_ALLOC"):
            fcntl.ioctl(ictx, IOMMU_IOAS_ALLOC, ioas)
        pt = struct.unpack_from("<I", ioas, 8)[0] or data.draw(st.integers(0, 4))
        with self.syscall("VFIO_DEVICE_ATTACH_IOMMUFD_PT"):
            fcntl.ioctl(
                dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, bytearray(struct.pack("<III", 12, 0, pt))
            )

    @precondition(lambda self: self.of_kind("vfio-cdev", "vfio-device"))
    @rule(
        data=st.data(),
        region=st.sampled_from([0, 0, 2, 1, 9]),
        offset=st.sampled_from([0, PAGE, 0x100000, 1]),
        length=st.sampled_from([PAGE, 4 * PAGE, 0, 0x100000, 1 << 40]),
    )
    def vfio_export_dmabuf(
        self, data: st.DataObject, region: int, offset: int, length: int
    ) -> None:
        dev = data.draw(st.sampled_from(self.of_kind("vfio-cdev", "vfio-device")))
        body = struct.pack("<IIII", region, os.O_RDWR | os.O_CLOEXEC, 0, 1)
        body += struct.pack("<QQ", offset, length)
        arg = bytearray(struct.pack("<II", 8 + len(body), (1 << 16) | 11) + body)
        with self.syscall("VFIO_DEVICE_FEATURE_DMA_BUF"):
            fcntl.ioctl(dev, VFIO_DEVICE_FEATURE, arg, True)
        self.adopt("vfio-dmabuf")

    @precondition(lambda self: self.of_kind("vfio-cdev", "vfio-device"))
    @rule(data=st.data(), what=st.sampled_from(["reset", "memory-off", "memory-on"]))
    def vfio_revoke(self, data: st.DataObject, what: str) -> None:
        dev = data.draw(st.sampled_from(self.of_kind("vfio-cdev", "vfio-device")))
        with self.syscall(f"vfio {what}"):
            if what == "reset":
                fcntl.ioctl(dev, VFIO_DEVICE_RESET, 0)
            else:
                cmd = struct.unpack("<H", os.pread(dev, 2, _CONFIG_REGION + 4))[0]
                cmd = cmd | 2 if what == "memory-on" else cmd & ~2
                os.pwrite(dev, struct.pack("<H", cmd), _CONFIG_REGION + 4)

    # -- uverbs ----------------------------------------------------------------------------
    def verbs(self, fd: int) -> Verbs:
        v = Verbs.__new__(Verbs)
        v.fd, v.driver_id, v._keep = fd, 1, []
        return v

    @precondition(lambda self: self.of_kind("uverbs"))
    @rule(data=st.data(), what=st.sampled_from(["context", "pd", "mr", "dereg", "dealloc"]))
    def uverbs(self, data: st.DataObject, what: str) -> None:
        fd = data.draw(st.sampled_from(self.of_kind("uverbs")))
        v = self.verbs(fd)
        with self.syscall(f"uverbs {what}"):
            if what == "context":
                v.get_context()
            elif what == "pd":
                self.pds.append((fd, v.alloc_pd()))
            elif what == "mr":
                pds = [pd for f, pd in self.pds if f == fd] or [0]
                bufs = self.of_kind("dmabuf", "vfio-dmabuf")
                dmabuf = data.draw(st.sampled_from(bufs)) if bufs else self.fd_arg(data)
                v.reg_dmabuf_mr(
                    data.draw(st.sampled_from(pds)),
                    dmabuf,
                    data.draw(st.sampled_from([PAGE, 2 * PAGE, 0, 1 << 30])),
                    offset=data.draw(st.sampled_from([0, PAGE, 3])),
                    access=data.draw(st.sampled_from([0, 1, 7])),
                )
            elif what == "dereg":
                v.dereg_mr(data.draw(st.integers(0, 4)))
            else:
                v.dealloc_pd(data.draw(st.integers(0, 4)))
        self.adopt("derived")

    # -- generic calls on any fd -----------------------------------------------------------
    @precondition(lambda self: self.visible())
    @rule(data=st.data())
    def ioctl_garbage(self, data: st.DataObject) -> None:
        fd = data.draw(st.sampled_from(self.visible()))
        own = sorted(set(type(self.proc.files[fd].f_op).ioctls)) or KNOWN
        request = data.draw(requests(own))
        arg: Any
        if data.draw(st.booleans()):
            arg = data.draw(_int_args)
        else:
            fds = sorted({*self.visible(), self.memfd, -1})
            arg = bytearray(data.draw(buffers(self.arena, fds)))
        self.arena.armed = True
        try:
            with self.syscall(f"ioctl({request:#x})", (*ALLOWED_IOCTL_ERRORS, ValueError)):
                fcntl.ioctl(fd, request, arg)
        finally:
            self.arena.armed = False
        self.adopt("derived")

    @rule(
        data=st.data(), how=st.sampled_from(["read", "pread", "write", "pwrite", "lseek", "fstat"])
    )
    def io(self, data: st.DataObject, how: str) -> None:
        fd = data.draw(st.sampled_from(self.visible() + self.free_numbers()[:1]))
        size = data.draw(st.sampled_from([0, 1, 4, 8, 64, PAGE, 1 << 20]))
        pos = data.draw(st.sampled_from([0, 4, PAGE, 7 << 40, (7 << 40) + 4, 1 << 62]))
        payload = data.draw(st.binary(max_size=64))
        was_open = fd in self.fds
        with self.syscall(how):
            try:
                if how == "read":
                    os.read(fd, size)
                elif how == "pread":
                    os.pread(fd, size, pos)
                elif how == "write":
                    os.write(fd, payload)
                elif how == "pwrite":
                    os.pwrite(fd, payload, pos)
                elif how == "lseek":
                    os.lseek(fd, pos, data.draw(st.integers(0, 4)))
                else:
                    os.fstat(fd)
            except OSError as e:
                if not was_open:
                    assert e.errno == errno.EBADF, e
                raise
        self.adopt("derived")

    @rule(data=st.data())
    def dup(self, data: st.DataObject) -> None:
        fd = data.draw(st.sampled_from(self.visible() + self.free_numbers()[:1]))
        if fd not in self.fds:
            self.expect_errno("EBADF", os.dup, fd)
            return
        new = os.dup(fd)
        self.fds[new] = self.fds[fd]

    @precondition(lambda self: self.visible())
    @rule(data=st.data(), cloexec=st.booleans(), how=st.sampled_from(["dup2", "dup3", "F_DUPFD"]))
    def dup_onto(self, data: st.DataObject, cloexec: bool, how: str) -> None:
        fd = data.draw(st.sampled_from(self.visible()))
        target = data.draw(st.sampled_from(self.visible() + self.free_numbers()))
        if how == "F_DUPFD":
            cmd = fcntl.F_DUPFD_CLOEXEC if cloexec else fcntl.F_DUPFD
            new = fcntl.fcntl(fd, cmd, target)
            assert new >= target and new not in self.fds
            self.fds[new] = self.fds[fd]
            return
        inheritable = how == "dup2" or not cloexec  # os.dup2(..., False) is dup3(O_CLOEXEC)
        if fd == target:
            if not inheritable:
                self.expect_errno("EINVAL", os.dup2, fd, target, inheritable)
            return
        assert os.dup2(fd, target, inheritable) == target
        self.fds[target] = self.fds[fd]

    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        fd = data.draw(st.sampled_from(self.visible() + self.free_numbers()[:1] + [-1]))
        if fd not in self.fds:
            self.expect_errno("EBADF", os.close, fd)
            return
        os.close(fd)
        del self.fds[fd]

    @precondition(lambda self: self.visible())
    @rule(
        data=st.data(),
        cmd=st.sampled_from(
            [fcntl.F_GETFD, fcntl.F_SETFD, fcntl.F_GETFL, fcntl.F_SETFL, 1234, -1, fcntl.F_GETLK]
        ),
        arg=st.sampled_from([0, 1, os.O_NONBLOCK, os.O_APPEND | os.O_NONBLOCK, -1]),
    )
    def fcntl_cmd(self, data: st.DataObject, cmd: int, arg: int) -> None:
        fd = data.draw(st.sampled_from(self.visible()))
        if cmd in (1234, -1):  # an O_PATH file answers only check_fcntl_cmd's commands
            want = "EBADF" if self.fds[fd].kind == "path" else "EINVAL"
            self.expect_errno(want, fcntl.fcntl, fd, cmd, arg)
            return
        with self.syscall(f"fcntl({cmd})", (OSError, TypeError)):
            fcntl.fcntl(fd, cmd, arg)

    @precondition(lambda self: self.visible())
    @rule(
        data=st.data(),
        length=st.sampled_from([PAGE, 2 * PAGE, 1, 0x100000]),
        offset=st.sampled_from([0, PAGE, 7 << 40]),
        prot=st.sampled_from([mmap.PROT_READ, mmap.PROT_READ | mmap.PROT_WRITE]),
    )
    def map(self, data: st.DataObject, length: int, offset: int, prot: int) -> None:
        fd = data.draw(st.sampled_from(self.visible()))
        f = self.fds[fd]
        before = set(self.proc.files)
        # CPython's own checks of a regular file's size are ValueErrors, as on Linux
        with self.syscall("mmap", (OSError, ValueError)):
            m = mmap.mmap(fd, length, prot=prot, offset=offset)
            new = sorted(set(self.proc.files) - before)
            assert len(new) == 1, f"mmap made {new}"
            self.fds[new[0]] = f
            self.maps.append(MMap(f, m, new[0]))
            if data.draw(st.booleans()):
                with contextlib.suppress(OSError):  # SIGBUS is not raised: a revoked map is
                    pass  # not touched here (that would kill the interpreter)
        assert set(self.proc.files) == set(self.fds)

    @precondition(lambda self: self.maps)
    @rule(data=st.data(), collect=st.booleans())
    def unmap(self, data: st.DataObject, collect: bool) -> None:
        mp = data.draw(st.sampled_from(self.maps))
        self.maps.remove(mp)
        if collect:
            obj = mp.obj
            del mp.obj
            del obj
            gc.collect()
        else:
            mp.obj.close()
        del self.fds[mp.hidden]

    @rule(data=st.data(), how=st.sampled_from(["select", "poll"]))
    def wait(self, data: st.DataObject, how: str) -> None:
        fds = data.draw(st.lists(st.sampled_from([*self.visible(), self.memfd]), max_size=4))
        with self.syscall(how, (OSError, ValueError)):
            if how == "select":
                select.select(fds, fds, fds, 0)
            else:
                p = select.poll()
                for fd in fds:
                    p.register(fd, data.draw(st.sampled_from([1, 4, 5, 0x3F])))
                p.poll(0)

    # -- processes without fork ------------------------------------------------------------
    @rule(path=st.sampled_from([p for _k, p in _nodes()]))
    def task_open(self, path: str) -> None:
        if len(self.tasks) < 2:
            self.tasks.append(self.kernel.spawn("fuzz"))
        task = self.tasks[-1]
        with self.syscall(f"task open({path})"):
            fd = task.sys_open(path, os.O_RDWR)
            task.sys_dup(fd)

    @precondition(lambda self: self.tasks)
    @rule()
    def task_exit(self) -> None:
        task = self.tasks.pop(0)
        files = list(task.files.values())
        task.exit()
        assert not task.files
        for f in files:
            if f.f_count == 0:
                assert f.released and f.id not in self.kernel.live_files

    # -- the mock tree: mkdir, unlink, rmdir, rename (never on the host's files) ----------
    @rule(
        how=st.sampled_from(["mkdir", "unlink", "rmdir", "rename"]),
        a=st.sampled_from(_TREE_PATHS),
        b=st.sampled_from(_TREE_PATHS),
    )
    def tree_change(self, how: str, a: str, b: str) -> None:
        with self.syscall(f"{how}({a})"):
            if how == "mkdir":
                os.mkdir(a)
            elif how == "unlink":
                os.unlink(a)
            elif how == "rmdir":
                os.rmdir(a)
            else:
                os.rename(a, b)

    # -- sysfs: probe and remove -----------------------------------------------------------
    @rule(
        bdf=st.sampled_from([*BDFS, "0000:09:00.0", "garbage"]),
        what=st.sampled_from(["unbind", "bind", "override", "override-clear", "remove", "rescan"]),
        drv=st.sampled_from(["vfio-pci", "mlx5_core", "mock_nic", "nope"]),
    )
    def sysfs_pci(self, bdf: str, what: str, drv: str) -> None:
        path = {
            "unbind": f"/sys/bus/pci/drivers/{drv}/unbind",
            "bind": f"/sys/bus/pci/drivers/{drv}/bind",
            "override": f"/sys/bus/pci/devices/{bdf}/driver_override",
            "override-clear": f"/sys/bus/pci/devices/{bdf}/driver_override",
            "remove": f"/sys/bus/pci/devices/{bdf}/remove",
            "rescan": "/sys/bus/pci/rescan",
        }[what]
        value = {"override": drv, "override-clear": "\n", "remove": "1", "rescan": "1"}.get(
            what, bdf
        )

        def write() -> None:
            with self.syscall(f"write {path}"):
                fd = os.open(path, os.O_WRONLY)
                try:
                    os.write(fd, value.encode())
                finally:
                    os.close(fd)

        bus = self.kernel.subsys(PciCore).bus
        pdev = bus.get(VFIO_BDF) if VFIO_BDF in bus else None
        vdev = pci_get_drvdata(pdev) if pdev is not None else None
        if not isinstance(vdev, VfioPciDevice) or not vdev.registrations:
            write()
            self.adopt("derived")
            return
        # vfio-pci's remove waits for the device fds: another thread writes, this one
        # closes them once the driver asks (vfio_unregister_group_dev)
        failure: list[BaseException] = []

        def writer() -> None:
            try:
                write()
            except BaseException as e:  # reported below, in the test's thread
                failure.append(e)

        t = threading.Thread(target=writer)
        t.start()
        while t.is_alive() and not vdev.unregistering:
            time.sleep(0.001)
        if vdev.unregistering:
            self.release_vfio_devices()
        t.join()
        if failure:
            raise failure[0]
        self.adopt("derived")

    def release_vfio_devices(self) -> None:
        """Close every device fd and mapping of the vfio device, the tasks' too."""
        for mp in [m for m in self.maps if m.file.kind in ("vfio-cdev", "vfio-device")]:
            self.maps.remove(mp)
            mp.obj.close()
            del self.fds[mp.hidden]
        for fd in self.of_kind("vfio-cdev", "vfio-device"):
            os.close(fd)
            del self.fds[fd]
        while self.tasks:
            self.tasks.pop().exit()

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def table_matches_the_model(self) -> None:
        assert set(self.proc.files) == set(self.fds), (
            f"appeared {set(self.proc.files) - set(self.fds)}, "
            f"vanished {set(self.fds) - set(self.proc.files)}"
        )
        assert set(self.fds) <= real_fds(), "every mock number is held in the real OS"
        for fd, f in self.fds.items():
            assert self.proc.files[fd] is f.kfile, fd

    @invariant()
    def refcounts_match_the_model(self) -> None:
        live = self.kernel.live_files
        seen = {id(f): f for f in self.fds.values()}
        for f in seen.values():
            k = f.kfile
            assert not k.released and live.get(k.id) is k, (f.kind, k)
            if f.kind in EXACT:
                assert k.f_count == self.refs(f), (f.kind, k.f_count, self.refs(f))
            else:
                assert k.f_count >= self.refs(f), (f.kind, k.f_count, self.refs(f))

    @invariant()
    def no_lock_no_warning(self) -> None:
        assert not self.kernel.held_locks, self.kernel.held_locks
        assert not self.kernel.warnings, self.kernel.warnings

    def teardown(self) -> None:
        try:
            for mp in self.maps:
                mp.obj.close()
            for fd in self.visible():
                os.close(fd)
            for task in self.tasks:
                task.exit()
            os.close(self.memfd)
        finally:
            self.redir.uninstall()
            ua.UserMemory.write = self._real_write  # type: ignore[method-assign]
            self.arena.close()
            leaks = self.kernel.shutdown(check=False)
        assert leaks == []
        assert real_fds() == self.start_fds, "shutdown must leave the real fd table as found"
        assert sorted(REAL.listdir("/dev")) == self.host_dev, "the host's /dev was changed"
        STATS.examples += 1
        report = os.environ.get("FUZZ_REPORT")
        if report:  # a campaign's running totals
            with open(report, "w") as f:
                json.dump(dataclasses.asdict(STATS), f, indent=1, sort_keys=True)


Syscalls.TestCase.settings = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "12")),
    stateful_step_count=int(os.environ.get("FUZZ_STEPS", "30")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
TestSyscalls = Syscalls.TestCase
if os.environ.get("FUZZ_SEED"):
    TestSyscalls = seed(int(os.environ["FUZZ_SEED"]))(TestSyscalls)
