"""``UDMABUF_CREATE`` and ``UDMABUF_CREATE_LIST``: every errno, in the kernel's order, and
no fd allocated by a failure (``drivers/dma-buf/udmabuf.c``, Linux 7.2)."""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import struct

import pytest
from udmabuf_testing import (
    F_SEAL_FUTURE_WRITE,
    F_SEAL_GROW,
    F_SEAL_SEAL,
    F_SEAL_SHRINK,
    F_SEAL_WRITE,
    LIST_LIMIT,
    PAGE,
    SIZE_LIMIT,
    UDMABUF_CREATE,
    UDMABUF_CREATE_LIST,
    create,
    create_list,
    errno_name,
    lowest_free,
    make_memfd,
)

from mockkernel import Kernel


def created(fds: list[int], fd: int) -> int:
    fds.append(fd)
    return fd


def check_fails(fds: list[int], expected: str, fn: object, *args: object) -> None:
    """``fn(*args)`` fails with ``expected`` and allocates no fd."""
    low = lowest_free()
    try:
        res = fn(*args)  # type: ignore[operator]
    except OSError as e:
        import errno

        assert e.errno is not None
        assert errno.errorcode[e.errno] == expected
    else:
        fds.append(res)
        raise AssertionError(f"expected {expected}, got fd {res}")
    assert lowest_free() == low, "a failed create left an fd behind"


# -- the memfd ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("seals", "sealing", "result"),
    [
        (F_SEAL_SHRINK, True, None),
        (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, True, None),
        (0, True, "EINVAL"),
        (0, False, "EINVAL"),  # no MFD_ALLOW_SEALING: seals read as F_SEAL_SEAL
        (F_SEAL_SHRINK | F_SEAL_WRITE, True, "EINVAL"),
        (F_SEAL_SHRINK | F_SEAL_FUTURE_WRITE, True, "EINVAL"),
        (F_SEAL_GROW, True, "EINVAL"),
        (F_SEAL_WRITE, True, "EINVAL"),
    ],
)
def test_seals(dev: int, fds: list[int], seals: int, sealing: bool, result: str | None) -> None:
    memfd = created(fds, make_memfd(2 * PAGE, seals, sealing))
    if result is None:
        low = lowest_free()
        buf = created(fds, create(dev, memfd, 0, 2 * PAGE))
        assert buf == low and os.fstat(buf).st_size == 2 * PAGE
    else:
        check_fails(fds, result, create, dev, memfd, 0, 2 * PAGE)


def _pipe(fds: list[int]) -> int:
    rd, wr = os.pipe()
    fds += [rd, wr]
    return rd


def _dmabuf(fds: list[int]) -> int:
    dev = created(fds, os.open("/dev/udmabuf", os.O_RDWR))
    memfd = created(fds, make_memfd())
    return created(fds, create(dev, memfd, 0, PAGE))


def _tmpfs(fds: list[int]) -> int:
    fd = created(fds, os.open("/dev/shm", os.O_TMPFILE | os.O_RDWR, 0o600))
    os.ftruncate(fd, 2 * PAGE)
    return fd


SOURCES = {
    "closed": (lambda fds: lowest_free(), "EBADFD"),
    "minus_one": (lambda fds: -1, "EBADFD"),
    "huge": (lambda fds: 0x7FFFFFF0, "EBADFD"),
    "pipe": (_pipe, "EBADFD"),
    "dev_null": (lambda fds: created(fds, os.open("/dev/null", os.O_RDWR)), "EBADFD"),
    "regular_file": (lambda fds: created(fds, os.open(__file__, os.O_RDONLY)), "EBADFD"),
    "udmabuf_dev": (lambda fds: created(fds, os.open("/dev/udmabuf", os.O_RDWR)), "EBADFD"),
    "dmabuf": (_dmabuf, "EBADFD"),
    "tmpfs_file": (_tmpfs, "EINVAL"),  # shmem, but not a memfd: seals read F_SEAL_SEAL
}


@pytest.mark.parametrize("source", list(SOURCES))
def test_not_a_memfd(dev: int, fds: list[int], source: str) -> None:
    make_source, result = SOURCES[source]
    fd = make_source(fds)
    check_fails(fds, result, create, dev, fd, 0, PAGE)
    check_fails(fds, result, create_list, dev, [(fd, 0, PAGE)])


def test_memfd_reopened_read_only(dev: int, fds: list[int]) -> None:
    memfd = created(fds, make_memfd())
    ro = created(fds, os.open(f"/proc/self/fd/{memfd}", os.O_RDONLY))
    buf = created(fds, create(dev, ro, 0, 2 * PAGE))
    import mmap

    m = mmap.mmap(buf, 2 * PAGE)
    m[0:3] = b"abc"  # the buffer's pages are writable whatever the fd it came from
    assert os.pread(memfd, 3, 0) == b"abc"
    m.close()


# -- offset and size ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("memfd_size", "offset", "size"),
    [
        (2 * PAGE, 100, PAGE),  # offset not page aligned
        (2 * PAGE, 0, 100),  # size not page aligned
        (2 * PAGE, 0, PAGE + 100),
        (2 * PAGE, 0, 0),  # no pages
        (2 * PAGE, PAGE, 2 * PAGE),  # past the end
        (2 * PAGE, 2 * PAGE, PAGE),  # at the end
        (2 * PAGE, 1 << 40, PAGE),
        (2 * PAGE, 0, 3 * PAGE),
        (2 * PAGE, 0, 1 << 62),  # over the size limit
        (2 * PAGE, (1 << 64) - PAGE, 2 * PAGE),  # negative as a loff_t; u64 overflow
        (2 * PAGE, 1 << 63, PAGE),
        (SIZE_LIMIT + PAGE, 0, SIZE_LIMIT + PAGE),
    ],
)
def test_bad_ranges(dev: int, fds: list[int], memfd_size: int, offset: int, size: int) -> None:
    memfd = created(fds, make_memfd(memfd_size))
    check_fails(fds, "EINVAL", create, dev, memfd, offset, size)


def test_size_limit_exactly(dev: int, fds: list[int]) -> None:
    memfd = created(fds, make_memfd(SIZE_LIMIT))
    buf = created(fds, create(dev, memfd, 0, SIZE_LIMIT))
    assert os.fstat(buf).st_size == SIZE_LIMIT
    half = SIZE_LIMIT // 2 + PAGE
    a, b = created(fds, make_memfd(half)), created(fds, make_memfd(half))
    check_fails(fds, "EINVAL", create_list, dev, [(a, 0, half), (b, 0, half)])


# -- flags -------------------------------------------------------------------------------
@pytest.mark.parametrize("flags", [0, 1, 2, 3, 0x80000000, 0xFFFFFFFF])
def test_flags_only_cloexec_matters(dev: int, fds: list[int], flags: int) -> None:
    memfd = created(fds, make_memfd())
    for make in (
        lambda: create(dev, memfd, 0, PAGE, flags),
        lambda: create_list(dev, [(memfd, 0, PAGE)], flags),
    ):
        low = lowest_free()
        buf = created(fds, make())
        assert buf == low
        assert fcntl.fcntl(buf, fcntl.F_GETFD) == (fcntl.FD_CLOEXEC if flags & 1 else 0)
        assert fcntl.fcntl(buf, fcntl.F_GETFL) == os.O_RDWR


# -- the ioctl itself --------------------------------------------------------------------
def ioc(d: int, t: str, nr: int, size: int) -> int:
    return (d << 30) | (size << 16) | (ord(t) << 8) | nr


@pytest.mark.parametrize("cmd", [UDMABUF_CREATE, UDMABUF_CREATE_LIST])
def test_bad_pointers(dev: int, fds: list[int], cmd: int) -> None:
    check_fails(fds, "EFAULT", fcntl.ioctl, dev, cmd, 16)
    check_fails(fds, "EFAULT", fcntl.ioctl, dev, cmd, 0)


@pytest.mark.parametrize(
    "cmd",
    [
        ioc(1, "u", 0x42, 16),  # CREATE with another size
        ioc(2, "u", 0x42, 24),  # _IOR
        ioc(3, "u", 0x42, 24),  # _IOWR
        ioc(1, "u", 0x44, 24),  # another nr
        ioc(1, "v", 0x42, 24),  # another type
        0x40086200,  # DMA_BUF_IOCTL_SYNC
    ],
)
def test_unknown_commands(dev: int, fds: list[int], cmd: int) -> None:
    memfd = created(fds, make_memfd())
    check_fails(
        fds, "ENOTTY", fcntl.ioctl, dev, cmd, bytearray(struct.pack("=IIQQ", memfd, 0, 0, PAGE))
    )


def test_dev_opened_read_only_works(fds: list[int]) -> None:
    dev = created(fds, os.open("/dev/udmabuf", os.O_RDONLY))
    memfd = created(fds, make_memfd())
    assert os.fstat(created(fds, create(dev, memfd, 0, PAGE))).st_size == PAGE


def test_emfile(dev: int, fds: list[int]) -> None:
    memfd = created(fds, make_memfd())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free(), hard))
    try:
        assert errno_name(create, dev, memfd, 0, PAGE) == "EMFILE"
        assert errno_name(create_list, dev, [(memfd, 0, PAGE)] * 3) == "EMFILE"
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert os.fstat(created(fds, create(dev, memfd, 0, PAGE))).st_size == PAGE


# -- CREATE_LIST -------------------------------------------------------------------------
def test_list_count_limits(mock_kernel: Kernel, dev: int, fds: list[int]) -> None:
    memfd = created(fds, make_memfd(PAGE))
    check_fails(fds, "EINVAL", create_list, dev, [])
    check_fails(fds, "EINVAL", create_list, dev, [(memfd, 0, PAGE)] * (LIST_LIMIT + 1))
    # count > limit is refused before the items are read
    check_fails(fds, "EINVAL", create_list, dev, [], 0, LIST_LIMIT + 1)
    low = lowest_free()
    buf = created(fds, create_list(dev, [(memfd, 0, PAGE)] * LIST_LIMIT))
    assert buf == low and os.fstat(buf).st_size == LIST_LIMIT * PAGE
    # the kernel keeps one fd of the memfd, not one per item
    node = mock_kernel.vfs.lookup("/dev/udmabuf")
    assert len(node.fops.memfds) == 1  # type: ignore[union-attr]
    os.close(fds.pop())
    assert len(node.fops.memfds) == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bad_fd_middle", "EBADFD"),
        ("unaligned_middle", "EINVAL"),
        ("unsealed_middle", "EINVAL"),
        ("size_zero_middle", "EINVAL"),
        ("beyond_end_last", "EINVAL"),
        ("bad_fd_then_unaligned", "EINVAL"),  # every item's alignment is checked first
        ("unsealed_then_bad_fd", "EINVAL"),  # then item by item
        ("size_zero_then_bad_fd", "EINVAL"),
    ],
)
def test_list_fails_as_a_whole(dev: int, fds: list[int], name: str, expected: str) -> None:
    a, b = created(fds, make_memfd()), created(fds, make_memfd())
    unsealed = created(fds, make_memfd(seals=0))
    closed = lowest_free()
    items = {
        "bad_fd_middle": [(a, 0, PAGE), (closed, 0, PAGE), (b, 0, PAGE)],
        "unaligned_middle": [(a, 0, PAGE), (b, 100, PAGE), (a, PAGE, PAGE)],
        "unsealed_middle": [(a, 0, PAGE), (unsealed, 0, PAGE), (a, PAGE, PAGE)],
        "size_zero_middle": [(a, 0, PAGE), (a, 0, 0), (a, PAGE, PAGE)],
        "beyond_end_last": [(a, 0, PAGE), (a, PAGE, 2 * PAGE)],
        "bad_fd_then_unaligned": [(closed, 0, PAGE), (a, 0, 100)],
        "unsealed_then_bad_fd": [(unsealed, 0, PAGE), (closed, 0, PAGE)],
        "size_zero_then_bad_fd": [(a, 0, 0), (closed, 0, PAGE)],
    }[name]
    check_fails(fds, expected, create_list, dev, items)


def test_module_parameters_show_and_set_the_limits(
    mock_kernel: Kernel, dev: int, fds: list[int]
) -> None:
    """``/sys/module/udmabuf/parameters/{list_limit,size_limit_mb}`` (1024 and 64 on real
    Linux 7.2, the ``generic_file`` golden), and the limits come from those values."""
    params = "/sys/module/udmabuf/parameters"
    with open(f"{params}/list_limit") as f:
        assert f.read() == f"{LIST_LIMIT}\n"
    with open(f"{params}/size_limit_mb") as f:
        assert f.read() == f"{SIZE_LIMIT // (1024 * 1024)}\n"
    ops = mock_kernel.vfs.lookup("/dev/udmabuf").fops  # type: ignore[union-attr]
    ops.list_limit, ops.size_limit_mb = 2, 1  # what a write as root would set
    with open(f"{params}/list_limit") as f:
        assert f.read() == "2\n"
    memfd = created(fds, make_memfd(2 * 1024 * 1024))
    check_fails(fds, "EINVAL", create_list, dev, [(memfd, 0, PAGE)] * 3)
    created(fds, create_list(dev, [(memfd, 0, PAGE)] * 2))
    check_fails(fds, "EINVAL", create, dev, memfd, 0, 1024 * 1024 + PAGE)
    created(fds, create(dev, memfd, 0, 1024 * 1024))


def _write_param(name: str, text: str) -> str | None:
    """Write ``text`` to the module parameter as one ``write(2)``: None, or the errno."""
    fd = os.open(f"/sys/module/udmabuf/parameters/{name}", os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    except OSError as e:
        return errno.errorcode[e.errno]
    finally:
        os.close(fd)
    return None


@pytest.mark.parametrize(
    ("text", "result", "value"),
    [
        ("2", None, 2),
        ("2\n", None, 2),
        ("0x10", None, 16),
        ("010", None, 8),
        ("+7", None, 7),
        ("-1", None, -1),
        ("abc", "EINVAL", LIST_LIMIT),
        (" 5", "EINVAL", LIST_LIMIT),
        ("5\n\n", "EINVAL", LIST_LIMIT),
        ("-+5", "EINVAL", LIST_LIMIT),
        ("2147483648", "ERANGE", LIST_LIMIT),
        ("-2147483649", "ERANGE", LIST_LIMIT),
    ],
)
def test_a_module_parameter_is_set_as_param_set_int_parses(
    mock_kernel: Kernel, text: str, result: str | None, value: int
) -> None:
    """``module_param(list_limit, int, 0644)``: root writes it; ``kstrtoint(buf, 0)``."""
    assert _write_param("list_limit", text) == result
    with open("/sys/module/udmabuf/parameters/list_limit") as f:
        assert f.read() == f"{value}\n"


def test_limits_written_through_sysfs_are_enforced(dev: int, fds: list[int]) -> None:
    memfd = created(fds, make_memfd(2 * 1024 * 1024))
    assert _write_param("list_limit", "2") is None
    check_fails(fds, "EINVAL", create_list, dev, [(memfd, 0, PAGE)] * 3)
    created(fds, create_list(dev, [(memfd, 0, PAGE)] * 2))
    # (__u32 count > int list_limit compares as unsigned: -1 is no limit at all)
    assert _write_param("list_limit", "-1") is None
    created(fds, create_list(dev, [(memfd, 0, PAGE)] * (LIST_LIMIT + 1)))
    assert _write_param("size_limit_mb", "1") is None
    check_fails(fds, "EINVAL", create, dev, memfd, 0, 1024 * 1024 + PAGE)
    created(fds, create(dev, memfd, 0, 1024 * 1024))
    assert _write_param("size_limit_mb", "0") is None
    check_fails(fds, "EINVAL", create, dev, memfd, 0, PAGE)
    # ((u64)size_limit_mb * SZ_1M) >> PAGE_SHIFT: a negative limit is a huge one
    assert _write_param("size_limit_mb", "-1") is None
    created(fds, create(dev, memfd, 0, 2 * 1024 * 1024))
