"""sysfs of PCI devices: ``config``, ``resource``, ``resource<N>``; zapping a mapping.

``config`` and ``resource<N>`` are binary attributes: every access is live, unlike the
text attributes (snapshots taken at open).  The last tests use ``resource<N>`` mappings
to exercise the mm API drivers revoke mappings with (:func:`file_mappings`,
``Mapping.zap``/``restore``).
"""

from __future__ import annotations

import errno
import faulthandler
import mmap
import os
import signal
import stat

import pytest
from pci_testing import EDU, GUEST, IVSHMEM, VFIO_BDF

from mockkernel import Kernel
from mockkernel.driver import file_mappings
from mockkernel.mm import MappedFile
from mockkernel.pci import _regs as r

PAGE = mmap.PAGESIZE


def _dir(bdf: str) -> str:
    return f"/sys/bus/pci/devices/{bdf}"


def _addr(m: mmap.mmap) -> int:
    """Where a mapping of a mock file starts."""
    assert isinstance(m, MappedFile)
    return m._mk_addr


def _errno(fn: object, *args: object, **kwargs: object) -> str:
    try:
        fn(*args, **kwargs)  # type: ignore[operator]
    except OSError as e:
        return errno.errorcode[e.errno or 0]
    return "ok"


def touch_in_child(m: mmap.mmap) -> str:
    """Read ``m`` in a forked child: ``"exit 0"`` or the signal that killed the child."""
    pid = os.fork()
    if pid == 0:  # the child: die of the access, or exit 0
        try:
            faulthandler.disable()
            signal.signal(signal.SIGBUS, signal.SIG_DFL)
            m[0:4]
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    return f"exit {os.WEXITSTATUS(status)}"


def _as_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the caller an unprivileged user (no CAP_SYS_ADMIN, not in group root)."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "getegid", lambda: 1000)
    monkeypatch.setattr(os, "getgroups", lambda: [1000])


# -- config -------------------------------------------------------------------------------


@pytest.mark.mockkernel(topology=GUEST)
def test_config_is_the_device_config_space(mock_kernel: Kernel) -> None:
    assert mock_kernel.pci is not None
    edu = mock_kernel.pci.get(EDU.bdf)
    path = f"{_dir(EDU.bdf)}/config"
    st = os.stat(path)
    assert (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size) == (
        stat.S_IFREG,
        0o644,
        256,  # conventional PCI
    )
    fd = os.open(path, os.O_RDONLY)
    try:
        whole = os.read(fd, 4096)
        assert whole == bytes(edu.pci_read_config_byte(i) for i in range(256))
        assert os.read(fd, 4096) == b""  # at the end
        assert os.pread(fd, 16, 250) == whole[250:]
        assert os.pread(fd, 4, 256) == b""
        assert os.lseek(fd, -4, os.SEEK_END) == 252
        # live, not a snapshot: what a write to the device changed shows at once
        edu.pci_write_config_word(r.PCI_COMMAND, r.PCI_COMMAND_IO | r.PCI_COMMAND_MASTER)
        assert os.pread(fd, 2, r.PCI_COMMAND) == b"\x05\x00"
        assert _errno(mmap.mmap, fd, 256, prot=mmap.PROT_READ) == "ENODEV"
    finally:
        os.close(fd)


@pytest.mark.usefixtures("mock_kernel")
def test_config_of_a_pcie_function_is_4096_bytes() -> None:
    assert os.stat(f"{_dir(VFIO_BDF)}/config").st_size == 4096
    with open(f"{_dir(VFIO_BDF)}/config", "rb") as f:
        data = f.read()
    assert len(data) == (4096 if os.geteuid() == 0 else 64)
    if os.geteuid() == 0:
        assert data[0x100:0x102] == b"\x03\x00"  # the DSN extended capability


@pytest.mark.mockkernel(topology=GUEST)
def test_config_unprivileged_sees_the_header(
    mock_kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = f"{_dir(EDU.bdf)}/config"
    _as_user(monkeypatch)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert len(os.read(fd, 4096)) == 64  # pci_read_config without CAP_SYS_ADMIN
        assert os.pread(fd, 8, 60) == os.pread(fd, 4, 60)
        assert os.pread(fd, 4, 64) == b""
    finally:
        os.close(fd)
    assert _errno(os.open, path, os.O_RDWR) == "EACCES"  # 0644 root:root


@pytest.mark.mockkernel(topology=GUEST)
def test_config_size_is_judged_by_the_opener(
    mock_kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pci_read_config`` asks ``file_ns_capable``: the credentials of whoever opened
    the file, not of whoever reads it now."""
    if os.geteuid() != 0:
        pytest.skip("the privileged half opens as root")
    path = f"{_dir(EDU.bdf)}/config"
    as_root = os.open(path, os.O_RDONLY)
    try:
        with monkeypatch.context() as m:
            _as_user(m)
            as_user = os.open(path, os.O_RDONLY)
            try:
                assert len(os.pread(as_root, 4096, 0)) == 256  # opened with CAP_SYS_ADMIN
                assert len(os.pread(as_user, 4096, 0)) == 64
            finally:
                os.close(as_user)
    finally:
        os.close(as_root)


@pytest.mark.mockkernel(topology=GUEST)
def test_config_write_as_root(mock_kernel: Kernel) -> None:
    if os.geteuid() != 0:
        pytest.skip("writing config needs root")
    assert mock_kernel.pci is not None
    edu = mock_kernel.pci.get(EDU.bdf)
    fd = os.open(f"{_dir(EDU.bdf)}/config", os.O_RDWR)
    try:
        assert os.pwrite(fd, b"\xcd\xab", r.PCI_VENDOR_ID) == 2  # read-only: dropped
        assert edu.vendor == edu.pci_read_config_word(r.PCI_VENDOR_ID) == 0x1234
        # split as pci_write_config does: byte, word, then dwords
        assert os.pwrite(fd, b"\x00\x06\x00\x00\x00\x00\x00", 3) == 7  # 3, 4-5, 6-9
        assert (
            edu.pci_read_config_word(r.PCI_COMMAND) == r.PCI_COMMAND_MEMORY | r.PCI_COMMAND_MASTER
        )
        assert os.pwrite(fd, b"\x10", r.PCI_CACHE_LINE_SIZE) == 1
        assert edu.pci_read_config_byte(r.PCI_CACHE_LINE_SIZE) == 0x10
        assert os.pwrite(fd, b"\0" * 8, 252) == 4  # clamped to the end
        assert _errno(os.pwrite, fd, b"\0", 256) == "EFBIG"
    finally:
        os.close(fd)


# -- resource -----------------------------------------------------------------------------


@pytest.mark.mockkernel(topology=GUEST)
@pytest.mark.usefixtures("mock_kernel")
def test_resource_lists_every_resource() -> None:
    zero = "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
    with open(f"{_dir(IVSHMEM.bdf)}/resource") as f:
        lines = f.read().splitlines(keepends=True)
    assert len(lines) == 13  # 6 BARs, the ROM, 6 SR-IOV BARs
    assert lines[0] == "0x00000000e0000000 0x00000000e00000ff 0x0000000000040200\n"
    assert lines[2] == "0x0000380000000000 0x00003800000fffff 0x000000000014220c\n"
    assert [i for i, line in enumerate(lines) if line != zero] == [0, 2]
    with open(f"{_dir(EDU.bdf)}/resource") as f:
        edu = f.read().splitlines()
    assert edu[0] == "0x00000000e0100000 0x00000000e01fffff 0x0000000000040200"


@pytest.mark.mockkernel(topology=GUEST)
def test_resource_n_maps_the_bar(mock_kernel: Kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    assert mock_kernel.pci is not None
    ivshmem = mock_kernel.pci.get(IVSHMEM.bdf)
    d = _dir(IVSHMEM.bdf)
    assert sorted(n for n in os.listdir(d) if n.startswith("resource")) == [
        "resource",
        "resource0",
        "resource2",
        "resource2_wc",  # prefetchable
    ]
    st = os.stat(f"{d}/resource0")
    assert (stat.S_IMODE(st.st_mode), st.st_size) == (0o600, 0x100)
    assert os.stat(f"{d}/resource2").st_size == 0x100000
    fd = os.open(f"{d}/resource0", os.O_RDWR)
    try:
        assert _errno(os.read, fd, 4) == "EIO"  # memory BARs: mmap only
        assert _errno(os.pwrite, fd, b"x", 0) == "EIO"
        # the 256-byte BAR maps one page; CPython itself refuses a length past st_size
        m = mmap.mmap(fd, 0x100)
        try:
            m[0:4] = b"ab\0\1"
            assert ivshmem.bars[0].map.read(0, 4) == b"ab\0\1"
            (mp,) = mock_kernel.init_process.mappings.values()
            assert (mp.start, mp.length) == (_addr(m), PAGE)
        finally:
            m.close()
        with pytest.raises(ValueError, match="greater than file size"):
            mmap.mmap(fd, 2 * PAGE)
        # what CPython lets through never fails pci_mmap_fits; a C program's mmap(2) can
        proc = mock_kernel.init_process
        shared, rw = mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
        for length, offset in ((2 * PAGE, 0), (PAGE, PAGE)):
            args = (fd, length, shared, rw, mmap.ACCESS_DEFAULT, offset)
            assert _errno(proc.sys_mmap, *args) == "EINVAL"
    finally:
        os.close(fd)
    _as_user(monkeypatch)
    assert _errno(os.open, f"{d}/resource0", os.O_RDONLY) == "EACCES"


# -- the mm API: zapping a mapping ----------------------------------------------------------


@pytest.mark.mockkernel(topology=GUEST)
def test_zapped_mapping_faults_until_restored(mock_kernel: Kernel) -> None:
    assert mock_kernel.pci is not None
    bar = mock_kernel.pci.get(IVSHMEM.bdf).bars[2]
    bar.map.write(0, b"RAM!")
    fd = os.open(f"{_dir(IVSHMEM.bdf)}/resource2", os.O_RDWR)
    try:
        m = mmap.mmap(fd, 2 * PAGE, offset=PAGE)
        n = mmap.mmap(fd, PAGE)
        try:
            file = mock_kernel.init_process.files[fd]
            mps = {mp.start: mp for mp in file_mappings(mock_kernel, lambda f: f is file)}
            assert len(mps) == 2
            mp = mps[_addr(m)]
            assert (mp.length, mp.pgoff, mp.zapped) == (2 * PAGE, 1, False)
            assert touch_in_child(m) == "exit 0"
            mp.zap()
            mp.zap()  # idempotent
            assert mp.zapped
            assert touch_in_child(m) == "SIGBUS"
            assert n[0:4] == b"RAM!"  # another mapping of the same file is untouched
            with open("/proc/self/maps") as f:  # still one line, as before
                assert sum(f"{mp.start:08x}-{mp.end:08x}" in line for line in f) == 1
            bar.map.write(PAGE, b"back")
            mp.restore()
            mp.restore()
            assert not mp.zapped
            assert m[0:4] == b"back" and touch_in_child(m) == "exit 0"
            m[8:12] = b"sees"
            assert bar.map.read(PAGE + 8, 4) == b"sees"
            mp.zap()  # closing a zapped mapping is an ordinary munmap
        finally:
            m.close()
            n.close()
        assert file_mappings(mock_kernel, lambda f: True) == []
    finally:
        os.close(fd)


@pytest.mark.mockkernel(topology=GUEST)
@pytest.mark.usefixtures("mock_kernel")
def test_open_binary_attribute_names_its_canonical_path() -> None:
    fd = os.open(f"/sys/bus/pci/devices/{EDU.bdf}/../{EDU.bdf}/config", os.O_RDONLY)
    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
        assert link == f"/sys/devices/pci0000:00/{EDU.bdf}/config"
    finally:
        os.close(fd)
