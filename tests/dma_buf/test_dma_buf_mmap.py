"""``mmap`` of a dma-buf as a Python program does it: ``mmap.mmap`` keeps a hidden dup of
the fd (CPython's), the mapping holds its own reference, ``/proc/self/maps`` shows the
dma-buf, and the core's checks (noexec, bounds) come first.

Also the maps rewriting itself (``mm.proc_maps``) on made-up maps text.
"""

from __future__ import annotations

import fcntl
import gc
import mmap
import os
import resource
from collections.abc import Iterator

import pytest
from dmabuf_testing import PAGE, TestExporter, errno_name, export

from mockkernel import Kernel
from mockkernel.driver import DmaBuf, dma_buf_fd, dma_buf_subsys
from mockkernel.fs import File, FileOperations, Inode
from mockkernel.mm import Mapping, proc_maps

SET_NAME_B = 0x40086201


def lowest_free() -> int:
    fd = os.open("/dev/null", os.O_RDONLY)
    os.close(fd)
    return fd


def open_fds() -> set[int]:
    out = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            os.fstat(int(name))
            out.add(int(name))
        except OSError:
            pass
    return out


def maps_lines() -> list[str]:
    with open("/proc/self/maps") as f:
        return f.read().splitlines()


@pytest.fixture
def buf(mock_kernel: Kernel) -> Iterator[tuple[int, DmaBuf]]:
    data = bytes(range(256)) * (2 * PAGE // 256)
    dmabuf, _ = export(mock_kernel, fill=data)
    fd = dma_buf_fd(dmabuf, 0)
    yield fd, dmabuf
    if fd in mock_kernel.init_process.files:
        os.close(fd)


def test_python_mmap_keeps_a_hidden_dup(buf: tuple[int, DmaBuf]) -> None:
    fd, dmabuf = buf
    low = lowest_free()
    before = open_fds()
    m = mmap.mmap(fd, 2 * PAGE)
    try:
        hidden = sorted(open_fds() - before)
        assert hidden == [low]  # F_DUPFD_CLOEXEC: the lowest free number, close-on-exec
        assert fcntl.fcntl(low, fcntl.F_GETFD) == fcntl.FD_CLOEXEC
        assert os.readlink(f"/proc/self/fd/{low}") == "/dmabuf:"
        assert os.fstat(low).st_ino == os.fstat(fd).st_ino
        assert dmabuf.file.f_count == 3  # the fd, the hidden dup, the mapping
        assert m.size() == 2 * PAGE  # fstat of the hidden dup, as CPython's size()
        assert m[:256] == bytes(range(256))
    finally:
        m.close()
    assert open_fds() == before and dmabuf.file.f_count == 1
    m.close()  # twice is fine


def test_collected_map_closes_its_dup(buf: tuple[int, DmaBuf]) -> None:
    fd, dmabuf = buf
    before = open_fds()
    mmap.mmap(fd, PAGE)  # dropped at once
    gc.collect()
    assert open_fds() == before and dmabuf.file.f_count == 1


def test_map_outlives_every_fd(mock_kernel: Kernel, buf: tuple[int, DmaBuf]) -> None:
    fd, dmabuf = buf
    before = open_fds()
    m = mmap.mmap(fd, 2 * PAGE)
    (hidden,) = open_fds() - before
    os.close(fd)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, hidden)  # the program drops the hidden dup too
    os.close(null)
    assert dmabuf.file.f_count == 1 and dmabuf.id in dma_buf_subsys(mock_kernel).dmabufs
    m[0:4] = b"LIVE"
    assert m[0:4] == b"LIVE" and dmabuf.priv.view.read(0, 4) == b"LIVE"
    m.close()  # closes the hidden number, as CPython would (now /dev/null)
    assert dmabuf.id not in dma_buf_subsys(mock_kernel).dmabufs
    assert errno_name(os.fstat, hidden) == "EBADF"


def test_failed_mmap_leaks_no_fd(buf: tuple[int, DmaBuf]) -> None:
    fd, dmabuf = buf
    low = lowest_free()
    for args in (
        (3 * PAGE,),  # past the end
        (PAGE, mmap.MAP_SHARED, mmap.PROT_READ, mmap.ACCESS_DEFAULT, 2 * PAGE),
        (PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_EXEC),  # noexec
        (0,),  # not S_ISREG: length 0 reaches the kernel
    ):
        with pytest.raises(OSError):
            mmap.mmap(fd, *args)
        assert lowest_free() == low and dmabuf.file.f_count == 1


def test_mmap_errno_order(mock_kernel: Kernel) -> None:
    """do_mmap: EACCES (write to a read-only file, then no read), EPERM (noexec), then the
    exporter's checks; a hidden-dup EMFILE comes before all of them."""
    dmabuf, _ = export(mock_kernel, flags=os.O_RDONLY)
    ro = dma_buf_fd(dmabuf, 0)
    try:
        assert errno_name(mmap.mmap, ro, PAGE) == "EACCES"
        rwx = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
        assert errno_name(mmap.mmap, ro, 9 * PAGE, mmap.MAP_SHARED, rwx) == "EACCES"
        px = mmap.PROT_READ | mmap.PROT_EXEC
        assert errno_name(mmap.mmap, ro, 9 * PAGE, mmap.MAP_SHARED, px) == "EPERM"
        assert errno_name(mmap.mmap, ro, 9 * PAGE, mmap.MAP_SHARED, mmap.PROT_READ) == "EINVAL"
        m = mmap.mmap(ro, PAGE, access=mmap.ACCESS_READ)
        with pytest.raises(TypeError):
            m[0:1] = b"x"
        m.close()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free(), hard))
        try:
            assert errno_name(mmap.mmap, ro, PAGE, access=mmap.ACCESS_READ) == "EMFILE"
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    finally:
        os.close(ro)


def test_mmap_without_an_mmap_op(mock_kernel: Kernel) -> None:
    dmabuf, _ = export(mock_kernel, TestExporter(with_mmap=False))
    fd = dma_buf_fd(dmabuf, 0)
    try:
        assert errno_name(mmap.mmap, fd, PAGE) == "EINVAL"  # dma_buf_mmap_internal
    finally:
        os.close(fd)


def test_mmap_bounds_count_whole_pages(mock_kernel: Kernel) -> None:
    """``vm_pgoff + vma_pages > size >> PAGE_SHIFT``: a buffer of 1.5 pages maps 1 page."""
    dmabuf, _ = export(mock_kernel, size=PAGE + PAGE // 2)
    fd = dma_buf_fd(dmabuf, 0)
    try:
        assert errno_name(mmap.mmap, fd, PAGE + 1) == "EINVAL"
        m = mmap.mmap(fd, 100)
        assert len(m) == 100
        m.close()
        assert errno_name(mmap.mmap, fd, 100, offset=PAGE) == "EINVAL"
    finally:
        os.close(fd)


def test_resize_is_refused(buf: tuple[int, DmaBuf]) -> None:
    fd, _ = buf
    m = mmap.mmap(fd, PAGE)
    ro = mmap.mmap(fd, PAGE, access=mmap.ACCESS_READ)
    try:
        assert errno_name(m.resize, 2 * PAGE) == "EINVAL"
        with pytest.raises(TypeError):
            ro.resize(2 * PAGE)
    finally:
        m.close()
        ro.close()


# -- /proc/self/maps ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("length", "offset", "prot", "perms"),
    [
        (2 * PAGE, 0, mmap.PROT_READ | mmap.PROT_WRITE, "rw-s"),
        (2 * PAGE, 0, mmap.PROT_READ, "r--s"),
        (PAGE, PAGE, mmap.PROT_READ | mmap.PROT_WRITE, "rw-s"),
        (100, PAGE, mmap.PROT_WRITE, "-w-s"),
    ],
)
def test_maps_line(
    buf: tuple[int, DmaBuf], length: int, offset: int, prot: int, perms: str
) -> None:
    fd, _ = buf
    fcntl.ioctl(fd, SET_NAME_B, b"before\0")
    before = maps_lines()
    m = mmap.mmap(fd, length, mmap.MAP_SHARED, prot, offset=offset)
    try:
        fcntl.ioctl(fd, SET_NAME_B, b"after rename\0")
        # only the dma-buf's own line: the heap and anonymous lines move on their own
        new = [line for line in maps_lines() if line not in before and "/dmabuf:" in line]
        assert len(new) == 1, new
        fields = new[0].split(None, 5)
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        st = os.fstat(fd)
        assert hi - lo == -(-length // PAGE) * PAGE
        assert fields[1:5] == [
            perms,
            f"{offset:08x}",
            f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}",
            str(st.st_ino),
        ]
        assert fields[5] == "/dmabuf:after rename"
        assert new[0].index("/dmabuf:") == 73  # the path column of show_map_vma
    finally:
        m.close()
    assert [line for line in maps_lines() if "/dmabuf:" in line] == [
        line for line in before if "/dmabuf:" in line
    ]


def test_maps_hides_the_backing_memfd(buf: tuple[int, DmaBuf]) -> None:
    fd, _ = buf
    m = mmap.mmap(fd, 2 * PAGE)
    try:
        assert not any("dmabuf-test" in line for line in maps_lines())
        with open(f"/proc/{os.getpid()}/maps") as f:
            assert sum("/dmabuf:" in line for line in f.read().splitlines()) == 1
    finally:
        m.close()


class _Anon(FileOperations):
    name = "x"


def _mapping(kernel: Kernel, start: int, length: int, pgoff: int = 0) -> Mapping:
    file = File(kernel, _Anon(), Inode(4242, 0o600, dev=0x10), os.O_RDWR, 3)
    file.put()
    return Mapping(start, length, pgoff, mmap.PROT_READ, True, file)


def test_proc_maps_rewrite(kernel: Kernel) -> None:
    pad = " " * 20
    real = (
        "00400000-00401000 r-xp 00000000 08:01 12 /bin/x\n"
        "7f0000000000-7f0000004000 rw-s 00002000 00:01 77" + pad + " /memfd:m (deleted)\n"
        "7f0000004000-7f0000005000 rw-p 00000000 00:00 0 \n"
    )
    mp = _mapping(kernel, 0x7F0000001000, 0x2000, pgoff=3)
    out = proc_maps(real, [mp], hidden=[]).splitlines()
    assert out[0] == "00400000-00401000 r-xp 00000000 08:01 12 /bin/x"
    # the merged memfd area keeps its parts outside the mapping, offsets moved along
    assert out[1].split() == ["7f0000000000-7f0000001000", "rw-s", "00002000", "00:01", "77",
                              "/memfd:m", "(deleted)"]  # fmt: skip
    assert out[2].split() == ["7f0000001000-7f0000003000", "r--s", "00003000", "00:10",
                              "4242", "anon_inode:x"]  # fmt: skip
    assert out[3].split() == ["7f0000003000-7f0000004000", "rw-s", "00005000", "00:01", "77",
                              "/memfd:m", "(deleted)"]  # fmt: skip
    assert out[4] == "7f0000004000-7f0000005000 rw-p 00000000 00:00 0 "
    assert len(out) == 5
    assert proc_maps(real, [], hidden=[]) == real
    # kernel memory (a KernelMap) is cut out of whatever real line holds it
    hidden = proc_maps(real, [], hidden=[(0x7F0000000000, 0x7F0000003000)]).splitlines()
    assert [line.split()[0] for line in hidden] == [
        "00400000-00401000",
        "7f0000003000-7f0000004000",
        "7f0000004000-7f0000005000",
    ]
