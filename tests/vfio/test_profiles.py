"""The uAPI profiles: ``linux-7.2``, ``tph-v1``, ``tph-v2``, ``tph-v11``; how each is selected."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest
from vfio_helpers import (
    PAGE,
    Device,
    call,
    dma_buf_data,
    export,
    feature,
    tph_v2,
    tph_v11,
)

import mockkernel
from mockkernel import Kernel
from mockkernel.driver import dma_buf_get, dma_buf_get_pci_tph, dma_buf_get_tph, dma_buf_put
from mockkernel.profiles import UapiProfiles
from mockkernel.topology import UAPI_PROFILES
from mockkernel.uapi.linux.vfio import (
    VFIO_DEVICE_FEATURE_DMA_BUF,
    VFIO_DEVICE_FEATURE_GET,
    VFIO_DEVICE_FEATURE_PROBE,
    VFIO_DEVICE_FEATURE_SET,
)
from mockkernel.uapi.linux.vfio_tph import (
    PROFILES as UAPI_STRUCTS,
)
from mockkernel.uapi.linux.vfio_tph import (
    VFIO_DEVICE_FEATURE_DMA_BUF_TPH,
    VFIO_DMABUF_FLAG_TPH,
    vfio_region_dma_tph,
)

ROOT = Path(__file__).resolve().parents[2]
GET11 = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF
TPH = VFIO_DEVICE_FEATURE_DMA_BUF_TPH


def _with_dmabuf(kernel: Kernel, fd: int, fn, *args):  # type: ignore[no-untyped-def]
    """``fn(dmabuf, *args)`` on the buffer behind ``fd`` (errno name on failure)."""
    dmabuf = dma_buf_get(fd, kernel.current)
    try:
        return call(fn, dmabuf, *args)
    finally:
        dma_buf_put(dmabuf)


def test_table_covers_the_topology_profiles() -> None:
    profiles = UapiProfiles()
    assert profiles.names() == UAPI_PROFILES
    for name in UAPI_PROFILES:
        assert profiles.get(name).name == name
        for cname, value in profiles.get(name).c_names.items():
            assert UAPI_STRUCTS[name][cname] is value  # the marked uapi module's names
    with pytest.raises(ValueError, match="tph-v11"):
        profiles.get("tph-v3")


# -- linux-7.2 ---------------------------------------------------------------------------------
@pytest.mark.mockkernel(uapi="linux-7.2")
def test_linux_7_2(dev: Device, mock_kernel: Kernel) -> None:
    for flags in (
        VFIO_DEVICE_FEATURE_PROBE,
        VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET,
        VFIO_DEVICE_FEATURE_SET,
        VFIO_DEVICE_FEATURE_GET,
    ):
        assert call(feature, dev.fd, flags | TPH, bytes(12)) == "ENOTTY"
    assert call(export, dev.fd, flags=VFIO_DMABUF_FLAG_TPH) == "EINVAL"
    fd = export(dev.fd)
    try:
        assert _with_dmabuf(mock_kernel, fd, dma_buf_get_tph, 16) == "EOPNOTSUPP"
        dmabuf = dma_buf_get(fd, mock_kernel.current)
        with dmabuf.resv:
            assert call(dma_buf_get_pci_tph, dmabuf, True) == "EOPNOTSUPP"
        dma_buf_put(dmabuf)
    finally:
        os.close(fd)


# -- tph-v1: a flag and one trailing entries[] element ----------------------------------------
def _v1_request(ranges: list[tuple[int, int]], tag: int, ph: int, nr: int | None = None) -> bytes:
    data = dma_buf_data(0, ranges, flags=VFIO_DMABUF_FLAG_TPH, nr=nr)
    entry = vfio_region_dma_tph(steering_tag=tag, ph=ph)
    return data + bytes(entry) + bytes(16 - ctypes.sizeof(entry))


@pytest.mark.mockkernel(uapi="tph-v1")
def test_tph_v1(dev: Device, mock_kernel: Kernel) -> None:
    assert call(feature, dev.fd, VFIO_DEVICE_FEATURE_PROBE | TPH) == "ENOTTY"  # no feature 13
    assert call(export, dev.fd, flags=2) == "EINVAL"  # only VFIO_DMABUF_FLAG_TPH is defined
    fd = feature(dev.fd, GET11, _v1_request([(0, PAGE), (PAGE, PAGE)], 0x1234, 2))
    plain = export(dev.fd)
    try:
        assert os.fstat(fd).st_size == 2 * PAGE  # the trailing entry is not a range
        assert _with_dmabuf(mock_kernel, fd, dma_buf_get_tph, 16) == (0x1234, 2)
        assert _with_dmabuf(mock_kernel, fd, dma_buf_get_tph, 8) == "EINVAL"  # > 0xff
        assert _with_dmabuf(mock_kernel, plain, dma_buf_get_tph, 16) == "EOPNOTSUPP"
        dmabuf = dma_buf_get(fd, mock_kernel.current)
        with dmabuf.resv:  # v1 has no get_pci_tph
            assert call(dma_buf_get_pci_tph, dmabuf, False) == "EOPNOTSUPP"
        dma_buf_put(dmabuf)
    finally:
        os.close(fd)
        os.close(plain)
    # argsz says one range, the kernel reads nr_ranges + 1 entries anyway
    req = _v1_request([(0, PAGE)], 0x12, 1)
    fd = feature(dev.fd, GET11, req, 8 + 16 + 16)
    assert _with_dmabuf(mock_kernel, fd, dma_buf_get_tph, 8) == (0x12, 1)
    os.close(fd)
    # the TPH entry is not range-checked, but the ranges still are
    assert call(feature, dev.fd, GET11, _v1_request([(1, PAGE)], 0, 0)) == "EINVAL"


@pytest.mark.mockkernel(uapi="tph-v1")
def test_tph_v1_u32_wrap(dev: Device, mock_kernel: Kernel) -> None:
    """v1 computed ``nr_ranges + 1`` in u32: 0xffffffff wraps to a zero-byte copy, then the
    ranges are read through ZERO_SIZE_PTR (an oops upstream).  The mock warns and fails."""
    data = dma_buf_data(0, [(0, PAGE)], flags=VFIO_DMABUF_FLAG_TPH, nr=0xFFFFFFFF)
    assert call(feature, dev.fd, GET11, data) == "EFAULT"
    assert any("ZERO_SIZE_PTR" in w for w in mock_kernel.warnings)
    mock_kernel.warnings.clear()


# -- tph-v2: feature 13 with an 8-byte struct ------------------------------------------------------
@pytest.mark.mockkernel(uapi="tph-v2")
def test_tph_v2(dev: Device, mock_kernel: Kernel) -> None:
    fd = export(dev.fd)
    try:
        assert feature(dev.fd, VFIO_DEVICE_FEATURE_PROBE | TPH) == 0
        assert call(feature, dev.fd, VFIO_DEVICE_FEATURE_GET | TPH, bytes(8)) == "EINVAL"
        assert call(feature, dev.fd, VFIO_DEVICE_FEATURE_SET | TPH, bytes(7)) == "EINVAL"
        assert call(tph_v2, dev.fd, fd, 0x10, 1, reserved=1) == "EINVAL"
        assert call(tph_v2, dev.fd, -1, 0x10, 1) == "EBADF"
        assert call(tph_v2, dev.fd, dev.fd, 0x10, 1) == "EINVAL"  # not a dma-buf
        assert _with_dmabuf(mock_kernel, fd, dma_buf_get_tph, 16) == "EOPNOTSUPP"
        assert tph_v2(dev.fd, fd, 0x0123, 3) == 0
        # get_tph needs no lock (v2's mlx5 called it unlocked)
        assert _with_dmabuf(mock_kernel, fd, dma_buf_get_tph, 16) == (0x0123, 3)
        assert _with_dmabuf(mock_kernel, fd, dma_buf_get_tph, 8) == "EINVAL"
        assert tph_v2(dev.fd, fd, 0xFF, 0) == 0
        assert _with_dmabuf(mock_kernel, fd, dma_buf_get_tph, 8) == (0xFF, 0)
        # a v11 program on a v2 kernel: its 12-byte struct read as the 8-byte one
        assert tph_v11(dev.fd, fd, 3, xst=0x1234, st=0x56, ph=1) == 0
        assert _with_dmabuf(mock_kernel, fd, dma_buf_get_tph, 16) == (3, 0)
    finally:
        os.close(fd)


# -- selection -----------------------------------------------------------------------------------
def test_default_profile_is_tph_v11(mock_kernel: Kernel) -> None:
    assert mock_kernel.uapi == "tph-v11"


@pytest.mark.parametrize("uapi", UAPI_PROFILES)
def test_boot_argument_selects_the_profile(uapi: str) -> None:
    kernel = mockkernel.boot(uapi=uapi)
    try:
        drv = kernel.bound["0000:01:00.0"]
        assert drv.profile.name == uapi  # type: ignore[attr-defined]
        ops = drv.dmabuf_ops  # type: ignore[attr-defined]
        assert (ops.get_pci_tph is not None) == (uapi == "tph-v11")
        assert (ops.get_tph is not None) == (uapi in ("tph-v1", "tph-v2"))
    finally:
        kernel.shutdown()


def test_topology_selects_the_profile() -> None:
    from mockkernel.topology import default_topology, dumps

    text = dumps(default_topology()).replace('uapi = "tph-v11"', 'uapi = "tph-v2"')
    kernel = mockkernel.boot(text)
    try:
        assert kernel.bound["0000:01:00.0"].profile.name == "tph-v2"  # type: ignore[attr-defined]
    finally:
        kernel.shutdown()


@pytest.mark.parametrize(
    ("uapi", "line"),
    [
        (None, "TPH set on dma-buf"),
        ("tph-v11", "TPH set on dma-buf"),
        ("linux-7.2", "TPH not set: ENOTTY"),
        ("tph-v1", "TPH not set: ENOTTY"),
    ],
)
def test_demo_under_mockkernel_run(uapi: str | None, line: str) -> None:
    cmd = [sys.executable, "-m", "mockkernel", "run", "--check-leaks"]
    if uapi is not None:
        cmd += ["--uapi", uapi]
    cmd.append(str(ROOT / "examples" / "vfio_tph_demo.py"))
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert line in res.stdout
    assert "dma-buf fd" in res.stdout
