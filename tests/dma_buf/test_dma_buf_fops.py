"""The dma-buf file, as a program reaches it: ``fcntl.ioctl`` (SYNC, SET_NAME, the sync-file
pair), ``/proc/self/fd`` and ``fdinfo``, debugfs ``bufinfo`` and the read/write family.

The buffers come from the test exporter (``dmabuf_testing``), installed in the kernel's
process with ``dma_buf_fd``; the calls go through the installed redirection.
"""

from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from dmabuf_testing import PAGE, TestExporter, errno_name, export
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockkernel import Kernel
from mockkernel.driver import DmaBuf, DmaFence, dma_buf_fd, dma_buf_subsys

SYNC = 0x40086200
SET_NAME_A = 0x40046201
SET_NAME_B = 0x40086201
EXPORT_SYNC_FILE = 0xC0086202
IMPORT_SYNC_FILE = 0x40086203
READ, WRITE, RW, END = 1, 2, 3, 4
BUFINFO = "/sys/kernel/debug/dma_buf/bufinfo"
_fixture_ok = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=150
)


@dataclass
class Buf:
    fd: int
    dmabuf: DmaBuf
    ops: TestExporter


class CpuAccessExporter(TestExporter):
    """Records begin/end_cpu_access with their direction."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.begin_cpu_access = self._begin  # type: ignore[assignment]
        self.end_cpu_access = self._end  # type: ignore[assignment]

    def _begin(self, dmabuf: DmaBuf, direction: int) -> None:
        self.calls.append((f"begin:{direction}", dmabuf.resv.held))

    def _end(self, dmabuf: DmaBuf, direction: int) -> None:
        self.calls.append((f"end:{direction}", dmabuf.resv.held))


def new_buf(kernel: Kernel, ops: TestExporter | None = None, flags: int = os.O_RDWR) -> Buf:
    dmabuf, ops = export(kernel, ops, flags=flags)
    return Buf(dma_buf_fd(dmabuf, flags & os.O_CLOEXEC), dmabuf, ops)


@pytest.fixture
def buf(mock_kernel: Kernel) -> Iterator[Buf]:
    b = new_buf(mock_kernel, CpuAccessExporter())
    yield b
    if b.fd in mock_kernel.init_process.files:
        os.close(b.fd)


def read_text(path: str) -> str:
    with open(path) as f:
        return f.read()


def fdinfo(fd: int) -> dict[str, str]:
    out = {}
    for line in read_text(f"/proc/self/fdinfo/{fd}").splitlines():
        key, _, value = line.partition(":\t")
        out[key] = value
    return out


def sync(fd: int, flags: int) -> int:
    res: int = fcntl.ioctl(fd, SYNC, bytearray(struct.pack("=Q", flags)))
    return res


# -- DMA_BUF_IOCTL_SYNC ------------------------------------------------------------------
@_fixture_ok
@given(flags=st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 15)))
def test_sync_flags(buf: Buf, flags: int) -> None:
    """Every u64: ``EINVAL`` for a bit outside READ|WRITE|END or no READ/WRITE bit, else 0."""
    valid = flags & ~(RW | END) == 0 and flags & RW != 0
    assert errno_name(sync, buf.fd, flags) == (None if valid else "EINVAL")


def test_sync_calls_the_exporter_unlocked_with_the_direction(buf: Buf) -> None:
    buf.ops.calls.clear()
    for flags in (READ, WRITE, RW, READ | END, WRITE | END, RW | END):
        assert sync(buf.fd, flags) == 0
    # READ -> DMA_FROM_DEVICE (2), WRITE -> DMA_TO_DEVICE (1), RW -> BIDIRECTIONAL (0)
    assert buf.ops.calls == [
        ("begin:2", False),
        ("begin:1", False),
        ("begin:0", False),
        ("end:2", False),
        ("end:1", False),
        ("end:0", False),
    ]


def test_sync_bad_pointer_and_immutable_argument(buf: Buf) -> None:
    assert errno_name(fcntl.ioctl, buf.fd, SYNC, 16) == "EFAULT"
    assert errno_name(fcntl.ioctl, buf.fd, SYNC, 0) == "EFAULT"
    packed = struct.pack("=Q", RW)
    assert fcntl.ioctl(buf.fd, SYNC, packed) == packed  # bytes in, bytes back


def test_sync_waits_for_fences(mock_kernel: Kernel, buf: Buf) -> None:
    """A START waits: a reader for the writers' fences, a writer for every fence."""
    import threading

    fence = DmaFence("drv", "tl", 1, context=mock_kernel.new_id())
    with buf.dmabuf.resv:
        buf.dmabuf.resv.add_fence(fence, 2)  # READ usage: only a writer waits for it
    assert sync(buf.fd, READ) == 0 and not fence.signaled
    assert sync(buf.fd, RW | END) == 0
    threading.Timer(0.05, fence.signal).start()
    assert sync(buf.fd, WRITE) == 0
    assert fence.signaled


# -- SET_NAME ----------------------------------------------------------------------------
@pytest.mark.parametrize("cmd", [SET_NAME_A, SET_NAME_B])
@pytest.mark.parametrize(("length", "result"), [(0, None), (31, None), (32, "EINVAL")])
def test_set_name_lengths(buf: Buf, cmd: int, length: int, result: str | None) -> None:
    name = b"n" * length
    assert errno_name(fcntl.ioctl, buf.fd, cmd, name + b"\0") == result
    info = fdinfo(buf.fd)
    link = os.readlink(f"/proc/self/fd/{buf.fd}")
    if result is None:
        assert info["name"] == name.decode() and link == "/dmabuf:" + name.decode()
        assert buf.dmabuf.name == name.decode()
    else:
        assert "name" not in info and link == "/dmabuf:" and buf.dmabuf.name is None


@pytest.mark.parametrize("cmd", [SET_NAME_A, SET_NAME_B])
def test_set_name_bad_pointer(buf: Buf, cmd: int) -> None:
    fcntl.ioctl(buf.fd, cmd, b"kept\0")
    assert errno_name(fcntl.ioctl, buf.fd, cmd, 16) == "EFAULT"
    assert errno_name(fcntl.ioctl, buf.fd, cmd, 0) == "EFAULT"
    assert buf.dmabuf.name == "kept"
    assert errno_name(fcntl.ioctl, buf.fd, (cmd & ~(0x3FFF << 16)) | (16 << 16), 0) == "ENOTTY"


def test_empty_name_is_not_no_name(buf: Buf) -> None:
    assert "name" not in fdinfo(buf.fd)
    assert bufinfo_line(buf.fd).endswith("\t<none>")
    fcntl.ioctl(buf.fd, SET_NAME_B, b"\0")
    assert fdinfo(buf.fd)["name"] == ""
    assert bufinfo_line(buf.fd).endswith("\t")
    assert os.readlink(f"/proc/self/fd/{buf.fd}") == "/dmabuf:"
    fcntl.ioctl(buf.fd, SET_NAME_A, bytearray(b"x\ny\0"))
    assert os.readlink(f"/proc/self/fd/{buf.fd}") == "/dmabuf:x\ny"


# -- EXPORT_SYNC_FILE / IMPORT_SYNC_FILE -------------------------------------------------
def export_sync(fd: int, flags: int) -> tuple[str | None, int, int]:
    arg = bytearray(struct.pack("=Ii", flags, -7))
    res = errno_name(fcntl.ioctl, fd, EXPORT_SYNC_FILE, arg)
    fl, sfd = struct.unpack("=Ii", arg)
    return res, fl, sfd


def lowest_free() -> int:
    fd = os.open("/dev/null", os.O_RDONLY)
    os.close(fd)
    return fd


@pytest.mark.parametrize("flags", [*range(16), 0x80000001, 0x80000000 | RW])
def test_export_sync_file_flags(buf: Buf, flags: int) -> None:
    low = lowest_free()
    res, fl, sfd = export_sync(buf.fd, flags)
    assert fl == flags  # the flags field is written back unchanged
    if flags not in (READ, WRITE, RW):
        assert (res, sfd) == ("EINVAL", -7)  # on error the fd field is untouched
        assert lowest_free() == low
        return
    try:
        assert res is None and sfd == low
        assert os.readlink(f"/proc/self/fd/{sfd}") == "anon_inode:sync_file"
        assert fcntl.fcntl(sfd, fcntl.F_GETFD) == fcntl.FD_CLOEXEC
        assert fcntl.fcntl(sfd, fcntl.F_GETFL) == 0
        assert fdinfo(sfd) == {
            "pos": "0",
            "flags": "02000000",
            "mnt_id": "15",
            "ino": fdinfo(sfd)["ino"],
        }
        st_ = os.fstat(sfd)
        assert (st_.st_mode, st_.st_size) == (0o600, 0)
        assert errno_name(os.read, sfd, 8) == "EINVAL"
        assert errno_name(sync, sfd, RW) == "ENOTTY"
    finally:
        os.close(sfd)


def test_export_sync_file_bad_pointer_and_emfile(mock_kernel: Kernel, buf: Buf) -> None:
    assert errno_name(fcntl.ioctl, buf.fd, EXPORT_SYNC_FILE, 16) == "EFAULT"
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free(), hard))
    try:
        res, _, sfd = export_sync(buf.fd, RW)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert (res, sfd) == ("EMFILE", -7)


def import_sync(fd: int, flags: int, sfd: int) -> str | None:
    return errno_name(fcntl.ioctl, fd, IMPORT_SYNC_FILE, bytearray(struct.pack("=Ii", flags, sfd)))


@pytest.mark.parametrize("flags", [*range(16), 0x80000000 | RW])
def test_import_sync_file_flags(buf: Buf, flags: int) -> None:
    _, _, sfd = export_sync(buf.fd, RW)
    try:
        valid = flags in (READ, WRITE, RW)
        assert import_sync(buf.fd, flags, sfd) == (None if valid else "EINVAL")
        assert sync(buf.fd, RW) == 0  # a stub fence: nothing to wait for
    finally:
        os.close(sfd)


def test_import_sync_file_bad_fds(mock_kernel: Kernel, buf: Buf) -> None:
    rd, wr = os.pipe()
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    other = new_buf(mock_kernel)
    try:
        for bad in (lowest_free(), -1, rd, buf.fd, other.fd, dev):
            assert import_sync(buf.fd, RW, bad) == "EINVAL", bad
        assert errno_name(fcntl.ioctl, buf.fd, IMPORT_SYNC_FILE, 16) == "EFAULT"
        # a sync file of another buffer is fine
        _, _, sfd = export_sync(other.fd, READ)
        assert import_sync(buf.fd, WRITE, sfd) is None
        os.close(sfd)
    finally:
        for fd in (rd, wr, dev, other.fd):
            os.close(fd)


# -- fences and bufinfo ------------------------------------------------------------------
def bufinfo_block(fd: int) -> list[str]:
    ino = f"{os.fstat(fd).st_ino:08d}"
    lines = read_text(BUFINFO).split("\n")
    for i, line in enumerate(lines):
        fields = line.split("\t")
        if len(fields) == 7 and fields[5] == ino:
            end = i + 1
            while end < len(lines) and lines[end] != "":
                end += 1
            return lines[i:end]
    raise AssertionError(f"no bufinfo line for inode {ino}")


def bufinfo_line(fd: int) -> str:
    return bufinfo_block(fd)[0]


def test_bufinfo_layout(mock_kernel: Kernel, buf: Buf) -> None:
    text = read_text(BUFINFO)
    assert text.startswith(
        "\nDma-buf Objects:\nsize    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n"
    )
    assert text.endswith(
        f"\nTotal {len(dma_buf_subsys(mock_kernel).dmabufs)} objects, {2 * PAGE} bytes\n"
    )
    ino = f"{os.fstat(buf.fd).st_ino:08d}"
    assert bufinfo_block(buf.fd) == [
        f"00008192\t00000002\t02080007\t00000001\ttest-exp\t{ino}\t<none>",
        "\tAttached Devices:",
        "Total 0 devices attached",
    ]
    d = os.dup(buf.fd)
    fcntl.ioctl(buf.fd, 0x5421, bytearray(struct.pack("i", 1)))  # FIONBIO
    assert bufinfo_line(buf.fd).split("\t")[1:4] == ["00000802", "02080007", "00000002"]
    os.close(d)
    ro = new_buf(mock_kernel, flags=os.O_RDONLY)
    try:
        assert bufinfo_line(ro.fd).split("\t")[1:3] == ["00000000", "02080005"]
        # newest first
        order = [
            line.split("\t")[5] for line in read_text(BUFINFO).split("\n") if line.count("\t") == 6
        ]
        assert order.index(f"{os.fstat(ro.fd).st_ino:08d}") < order.index(ino)
    finally:
        os.close(ro.fd)


def test_bufinfo_fence_lines(mock_kernel: Kernel, buf: Buf) -> None:
    def fences() -> list[str]:
        return [line for line in bufinfo_block(buf.fd) if "fence:" in line]

    _, _, sfd = export_sync(buf.fd, RW)
    try:
        assert fences() == []  # exporting adds nothing
        import_sync(buf.fd, READ, sfd)
        assert fences() == ["\tread fence:0:0   signalled"]
        import_sync(buf.fd, WRITE, sfd)  # a signalled fence's slot is reused
        assert fences() == ["\twrite fence:0:0   signalled"]
        import_sync(buf.fd, WRITE, sfd)
        assert fences() == ["\twrite fence:0:0   signalled"]
    finally:
        os.close(sfd)
    ctx = mock_kernel.new_id()
    pending = DmaFence("drv", "tl", 7, context=ctx)
    hidden = DmaFence("drv", "tl", 1, context=mock_kernel.new_id())
    with buf.dmabuf.resv:
        buf.dmabuf.resv.add_fence(pending, 1)  # replaces the signalled stub
        buf.dmabuf.resv.add_fence(hidden, 3)  # BOOKKEEP: not shown
    assert fences() == [f"\twrite fence:{ctx}:7 tl drv unsignalled"]
    # exporting an unsignalled fence gives a sync file of it; importing it adds nothing new
    _, _, sfd = export_sync(buf.fd, READ)
    try:
        assert mock_kernel.init_process.files[sfd].private_data.fence is pending
    finally:
        os.close(sfd)
    pending.signal()
    hidden.signal()
    assert fences() == [f"\twrite fence:{ctx}:7   signalled"]


def test_fence_replacement_rule(mock_kernel: Kernel, buf: Buf) -> None:
    """``dma_resv_add_fence``: a later fence of the same context replaces an entry whose
    usage is the same or weaker (KERNEL 0 < WRITE 1 < READ 2 < BOOKKEEP 3), and any
    signalled entry; otherwise it is added."""
    resv = buf.dmabuf.resv
    ctx = mock_kernel.new_id()
    f1, f2, f3 = (DmaFence("d", "t", n, ctx) for n in (1, 2, 3))
    other = DmaFence("d", "t", 1, mock_kernel.new_id())
    with resv:
        resv.add_fence(f1, 2)
        resv.add_fence(f2, 1)  # later, and WRITE replaces a READ entry
        assert resv.fences == [(f2, 1)]
        resv.add_fence(f3, 2)  # READ does not replace a WRITE entry
        assert resv.fences == [(f2, 1), (f3, 2)]
        resv.add_fence(f1, 1)  # an earlier fence replaces nothing
        assert resv.fences == [(f2, 1), (f3, 2), (f1, 1)]
        resv.add_fence(other, 2)
        assert resv.fences == [(f2, 1), (f3, 2), (f1, 1), (other, 2)]
        f3.signal()
        resv.add_fence(other, 0)  # takes the first signalled entry's slot
        assert resv.fences == [(f2, 1), (other, 0), (f1, 1), (other, 2)]
    with pytest.raises(Exception, match="must be held"):
        resv.add_fence(f1, 2)
    for f in (f1, f2, other):
        f.signal()


# -- fdinfo and /proc/self/fd -------------------------------------------------------------
def test_fdinfo(mock_kernel: Kernel, buf: Buf) -> None:
    info = fdinfo(buf.fd)
    assert list(info) == ["pos", "flags", "mnt_id", "ino", "size", "count", "exp_name"]
    assert (info["flags"], info["size"], info["count"], info["exp_name"]) == (
        "02",
        "8192",
        "1",
        "test-exp",
    )
    d = os.dup(buf.fd)
    assert fdinfo(buf.fd)["count"] == fdinfo(d)["count"] == "2"
    assert fdinfo(d)["flags"] == "02000002"  # os.dup sets FD_CLOEXEC
    os.close(d)
    assert fdinfo(buf.fd)["count"] == "1"


# -- read, write, vectored I/O, fsync, ftruncate -----------------------------------------
def test_io_syscalls(buf: Buf) -> None:
    fd = buf.fd
    assert errno_name(os.read, fd, 16) == "EINVAL"
    assert errno_name(os.write, fd, b"x") == "EINVAL"
    assert errno_name(os.pread, fd, 16, 0) == "ESPIPE"
    assert errno_name(os.pwrite, fd, b"x", 0) == "ESPIPE"
    assert errno_name(os.readv, fd, [bytearray(16)]) == "EINVAL"
    assert errno_name(os.readv, fd, []) == "EINVAL"  # no ->read: even an empty vector
    assert errno_name(os.writev, fd, [b"abc"]) == "EINVAL"
    assert errno_name(os.preadv, fd, [bytearray(16)], 0) == "ESPIPE"
    assert errno_name(os.preadv, fd, [bytearray(16)], -1) == "EINVAL"
    assert errno_name(os.pwritev, fd, [b"abc"], 0) == "ESPIPE"
    assert errno_name(os.fsync, fd) == "EINVAL"
    assert errno_name(os.fdatasync, fd) == "EINVAL"
    assert errno_name(os.ftruncate, fd, PAGE) == "EINVAL"
    assert errno_name(os.ftruncate, fd, -1) == "EINVAL"
    assert os.fstat(fd).st_size == 2 * PAGE
    with pytest.raises(TypeError):
        os.readv(fd, [b"immutable"])
    with pytest.raises(TypeError):
        os.readv(fd, 42)


def test_vectored_io_on_a_readable_mock_file(mock_kernel: Kernel) -> None:
    """readv of a mock file with ->read scatters into the buffers in order."""
    proc = mock_kernel.init_process
    whole = read_text(BUFINFO).encode()
    mfd = proc.sys_open(BUFINFO, os.O_RDONLY)  # the mock seq file itself (not a snapshot)
    try:
        a, b = bytearray(3), bytearray(4)
        assert os.readv(mfd, [a, b]) == 7 and bytes(a + b) == whole[:7]
        assert os.readv(mfd, []) == 0
        rest = bytearray(1 << 16)
        assert os.readv(mfd, [memoryview(rest)]) == len(whole) - 7
        assert bytes(rest[: len(whole) - 7]) == whole[7:]
        assert errno_name(os.writev, mfd, [b"x"]) == "EBADF"  # opened read-only
        assert errno_name(os.writev, mfd, []) == "EBADF"
    finally:
        proc.sys_close(mfd)
