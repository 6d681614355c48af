"""Random syscall sequences against a model of the fd table (Hypothesis stateful testing).

The system: a booted, installed kernel driven through ``os``/``fcntl``/``mmap`` exactly as a
program drives it -- open /dev/udmabuf, create dma-bufs, dup/dup2/dup3/F_DUPFD, FIOCLEX,
F_SETFD, mmap and munmap, close, and calls on fds that are not open.

The model: which number holds which file, each number's close-on-exec bit, which mappings
exist.  After every step: the mock fd table equals the model; every mock number is open in
the real OS too; each file's ``f_count`` is its fds plus its mappings; a file with no
reference left was released exactly then and is gone from ``kernel.live_files``.  At the end,
with everything closed, shutdown finds no leak and the real fd table is as it was.

As on real Linux, ``mmap.mmap`` holds an fd of its own (CPython dups the fd it maps; that dup
takes the lowest free number and is closed with the map), so a mapping is two references.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import itertools
import mmap
import os
import struct
from dataclasses import dataclass, field

from core_helpers import DEV, PAGE, errno_name, lowest_free, real_fds, sealed_memfd
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import mockkernel
from mockkernel.driver import dma_buf_subsys
from mockkernel.fs import File
from mockkernel.uapi.linux.udmabuf import UDMABUF_CREATE, UDMABUF_FLAGS_CLOEXEC

FIONCLEX = 0x5450
FIOCLEX = 0x5451
_ids = itertools.count()


@dataclass(eq=False)
class MFile:
    """A file in the model."""

    kind: str  # "udmabuf" (the device) or "dmabuf"
    kfile: File  # the kernel's object, to check refcounts on
    released: bool = False
    id: int = field(default_factory=lambda: next(_ids))


@dataclass(eq=False)
class MMap:
    file: MFile
    obj: mmap.mmap | None
    hidden: int  # CPython's own dup of the fd


class FdTable(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.start_fds = real_fds()
        self.kernel = mockkernel.boot()
        self.redir = self.kernel.install()
        self.redir.install()
        self.proc = self.kernel.init_process
        self.memfd = sealed_memfd(2 * PAGE)
        self.fds: dict[int, MFile] = {}
        self.cloexec: dict[int, bool] = {}
        self.maps: list[MMap] = []
        self.all_files: list[MFile] = []

    # -- helpers ---------------------------------------------------------------------------
    def hidden(self) -> set[int]:
        return {m.hidden for m in self.maps}

    def visible(self) -> list[int]:
        """Numbers the program itself holds (not the maps' own dups)."""
        return sorted(set(self.fds) - self.hidden())

    def free_numbers(self) -> list[int]:
        taken = real_fds()
        top = max(taken | set(self.fds) | {0}) + 4
        return [n for n in range(top) if n not in taken][:6]

    def refs(self, f: MFile) -> int:
        return sum(1 for g in self.fds.values() if g is f) + sum(
            1 for m in self.maps if m.file is f
        )

    def drop(self, f: MFile) -> None:
        if not f.released and self.refs(f) == 0:
            f.released = True

    def install(self, fd: int, f: MFile, cloexec: bool) -> None:
        old = self.fds.get(fd)
        self.fds[fd] = f
        self.cloexec[fd] = cloexec
        if old is not None:
            self.drop(old)

    def remove(self, fd: int) -> None:
        f = self.fds.pop(fd)
        del self.cloexec[fd]
        self.drop(f)

    def new_file(self, fd: int, kind: str, cloexec: bool) -> None:
        f = MFile(kind, self.proc.files[fd])
        self.all_files.append(f)
        self.install(fd, f, cloexec)

    # -- rules -----------------------------------------------------------------------------
    @rule()
    def open_device(self) -> None:
        expect = lowest_free()
        fd = os.open(DEV, os.O_RDWR)
        assert fd == expect
        self.new_file(fd, "udmabuf", True)  # Python's os.open adds O_CLOEXEC

    @precondition(lambda self: any(self.fds[n].kind == "udmabuf" for n in self.visible()))
    @rule(data=st.data(), cloexec=st.booleans())
    def create_dma_buf(self, data: st.DataObject, cloexec: bool) -> None:
        dev = data.draw(
            st.sampled_from([n for n in self.visible() if self.fds[n].kind == "udmabuf"])
        )
        flags = UDMABUF_FLAGS_CLOEXEC if cloexec else 0
        expect = lowest_free()
        fd = fcntl.ioctl(
            dev, UDMABUF_CREATE, bytearray(struct.pack("=IIQQ", self.memfd, flags, 0, 2 * PAGE))
        )
        assert fd == expect
        self.new_file(fd, "dmabuf", cloexec)

    @precondition(lambda self: self.visible())
    @rule(data=st.data())
    def dup(self, data: st.DataObject) -> None:
        fd = data.draw(st.sampled_from(self.visible()))
        expect = lowest_free()
        assert os.dup(fd) == expect
        self.install(expect, self.fds[fd], True)

    @precondition(lambda self: self.visible())
    @rule(data=st.data(), cloexec=st.booleans(), above=st.integers(0, 6))
    def fcntl_dupfd(self, data: st.DataObject, cloexec: bool, above: int) -> None:
        fd = data.draw(st.sampled_from(self.visible()))
        minfd = lowest_free() + above - 3
        if minfd < 0:
            assert errno_name(fcntl.fcntl, fd, fcntl.F_DUPFD, minfd) == "EINVAL"
            return
        taken = real_fds()
        expect = next(n for n in itertools.count(minfd) if n not in taken)
        cmd = fcntl.F_DUPFD_CLOEXEC if cloexec else fcntl.F_DUPFD
        assert fcntl.fcntl(fd, cmd, minfd) == expect
        self.install(expect, self.fds[fd], cloexec)

    @rule(data=st.data(), inheritable=st.booleans())
    def dup2(self, data: st.DataObject, inheritable: bool) -> None:
        sources = self.visible() + self.free_numbers()[:2]
        fd = data.draw(st.sampled_from(sources))
        target = data.draw(st.sampled_from(self.visible() + self.free_numbers()))
        if fd == target and not inheritable:  # dup3: the same-fd check comes first
            assert errno_name(os.dup2, fd, target, inheritable) == "EINVAL"
        elif fd not in self.fds:
            assert errno_name(os.dup2, fd, target, inheritable) == "EBADF"
        elif fd == target:
            assert os.dup2(fd, target) == target
        else:
            assert os.dup2(fd, target, inheritable) == target
            self.install(target, self.fds[fd], not inheritable)

    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        fd = data.draw(st.sampled_from(self.visible() + self.free_numbers()[:1]))
        if fd in self.fds:
            f = self.fds[fd]
            with self.kernel.tracer.capture() as ev:
                os.close(fd)
            self.remove(fd)
            assert (
                "file.release" in [e["event"] for e in ev if not e["event"].startswith("sys.")]
            ) is f.released
        else:
            assert errno_name(os.close, fd) == "EBADF"

    @precondition(lambda self: self.visible())
    @rule(data=st.data(), on=st.booleans(), via_ioctl=st.booleans())
    def set_cloexec(self, data: st.DataObject, on: bool, via_ioctl: bool) -> None:
        fd = data.draw(st.sampled_from(self.visible()))
        if via_ioctl:
            assert fcntl.ioctl(fd, FIOCLEX if on else FIONCLEX) == 0
        else:
            value = data.draw(st.sampled_from([0, 2]) if not on else st.sampled_from([1, 3, 0xFF]))
            assert fcntl.fcntl(fd, fcntl.F_SETFD, value) == 0
        self.cloexec[fd] = on

    @precondition(lambda self: self.visible())
    @rule(data=st.data())
    def map(self, data: st.DataObject) -> None:
        fd = data.draw(st.sampled_from(self.visible()))
        f = self.fds[fd]
        if f.kind == "udmabuf":
            assert errno_name(mmap.mmap, fd, PAGE) == "ENODEV"
            return
        hidden = lowest_free()
        m = mmap.mmap(fd, PAGE)
        self.maps.append(MMap(f, m, hidden))
        self.install(hidden, f, True)

    @precondition(lambda self: self.maps)
    @rule(data=st.data(), collect=st.booleans())
    def unmap(self, data: st.DataObject, collect: bool) -> None:
        mp = data.draw(st.sampled_from(self.maps))
        assert mp.obj is not None
        if collect:
            mp.obj = None  # the last reference: the garbage collector unmaps
            gc.collect()
        else:
            mp.obj.close()
        self.maps.remove(mp)
        self.remove(mp.hidden)

    @rule(data=st.data())
    def calls_on_a_closed_fd(self, data: st.DataObject) -> None:
        fd = data.draw(st.sampled_from(self.free_numbers()))
        for call, args in (
            (os.close, (fd,)),
            (os.fstat, (fd,)),
            (os.dup, (fd,)),
            (fcntl.fcntl, (fd, fcntl.F_GETFD)),
            (fcntl.fcntl, (fd, fcntl.F_DUPFD_CLOEXEC, 0)),
            (fcntl.ioctl, (fd, FIOCLEX)),
            (fcntl.ioctl, (fd, UDMABUF_CREATE, bytearray(24))),
            (mmap.mmap, (fd, PAGE)),
        ):
            assert errno_name(call, *args) == "EBADF", call

    # -- invariants --------------------------------------------------------------------------
    @invariant()
    def table_matches_the_model(self) -> None:
        assert set(self.proc.files) == set(self.fds)
        assert set(self.fds) <= real_fds(), "every mock number is held in the real OS"
        for fd, f in self.fds.items():
            assert self.proc.files[fd] is f.kfile
            assert self.proc.fdt.get_cloexec(fd) is self.cloexec[fd], fd
            assert os.get_inheritable(fd) is not self.cloexec[fd]

    @invariant()
    def refcounts_match_the_model(self) -> None:
        live = self.kernel.live_files
        for f in self.all_files:
            if f.released:
                assert f.kfile.released and f.kfile.f_count == 0
                assert f.kfile.id not in live
            else:
                assert not f.kfile.released
                assert f.kfile.f_count == self.refs(f), f
                assert live.get(f.kfile.id) is f.kfile
        dmabufs = sum(1 for f in self.all_files if f.kind == "dmabuf" and not f.released)
        assert len(dma_buf_subsys(self.kernel).dmabufs) == dmabufs

    def teardown(self) -> None:
        try:
            for mp in self.maps:
                if mp.obj is not None:
                    mp.obj.close()
            for fd in self.visible():
                os.close(fd)
            os.close(self.memfd)
        finally:
            self.redir.uninstall()
            leaks = self.kernel.shutdown(check=False)
        assert leaks == []
        assert all(f.kfile.released for f in self.all_files)
        assert real_fds() == self.start_fds, "shutdown must leave the real fd table as found"


FdTable.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestFdTable = FdTable.TestCase

assert errno.EBADF == 9
