"""``VFIO_DEVICE_FEATURE``: the core's checks, ``vfio_check_feature``, and every index.

kernel.md section 3 gives the order; the per-index table is what Linux 7.2 answered on
the real-Linux guest (tests/real_linux ``vfio_device`` golden), the same on both paths.
"""

from __future__ import annotations

import pytest
from mockkernel_vfio_pci.core import vfio_check_feature
from vfio_helpers import Device, call, feature, open_device

from mockkernel import Kernel
from mockkernel.uapi.linux.vfio import (
    VFIO_DEVICE_FEATURE_GET as GET,
)
from mockkernel.uapi.linux.vfio import (
    VFIO_DEVICE_FEATURE_PROBE as PROBE,
)
from mockkernel.uapi.linux.vfio import (
    VFIO_DEVICE_FEATURE_SET as SET,
)

COMBOS = {
    "probe": PROBE,
    "probe_get": PROBE | GET,
    "probe_set": PROBE | SET,
    "all": PROBE | GET | SET,
}

#: Linux 7.2, per index: (PROBE, PROBE|GET, PROBE|SET, PROBE|GET|SET)
LINUX_7_2 = {
    0: ("ENOTTY",) * 4,  # PCI_VF_TOKEN: not an SR-IOV PF
    1: ("ENOTTY",) * 4,  # MIGRATION: no mig_ops
    2: ("ENOTTY",) * 4,
    3: (0, "EINVAL", 0, "EINVAL"),  # LOW_POWER_ENTRY: SET only
    4: (0, "EINVAL", 0, "EINVAL"),
    5: (0, "EINVAL", 0, "EINVAL"),
    6: ("ENOTTY",) * 4,  # DMA_LOGGING_*: no log_ops
    7: ("ENOTTY",) * 4,
    8: ("ENOTTY",) * 4,
    9: ("ENOTTY",) * 4,  # MIG_DATA_SIZE
    10: ("ENOTTY",) * 4,  # BUS_MASTER: not vfio-pci's
    11: (0, 0, "EINVAL", "EINVAL"),  # DMA_BUF: GET only
    12: ("EINVAL",) * 4,  # MIG_PRECOPY_INFOv2: EINVAL, not ENOTTY
    13: ("ENOTTY",) * 4,  # unassigned in 7.2
    14: ("ENOTTY",) * 4,
    0xFFFF: ("ENOTTY",) * 4,
}


def _table(fd: int) -> dict[int, tuple[int | str, ...]]:
    return {
        index: tuple(call(feature, fd, flags | index, bytes(32)) for flags in COMBOS.values())
        for index in LINUX_7_2
    }


@pytest.mark.mockkernel(uapi="linux-7.2")
def test_every_index_linux_7_2(dev: Device) -> None:
    assert _table(dev.fd) == LINUX_7_2


def test_every_index_tph_v11(dev: Device) -> None:
    expected = dict(LINUX_7_2)
    expected[13] = (0, "EINVAL", 0, "EINVAL")  # DMA_BUF_TPH: SET only
    assert _table(dev.fd) == expected


def test_core_checks_in_order(dev: Device) -> None:
    fd = dev.fd
    # 2. argsz < 8
    for argsz in (0, 7):
        assert call(feature, fd, PROBE | GET | 11, b"", argsz) == "EINVAL"
    # 3. unknown flag bits, whatever the index
    for bit in (1 << 19, 1 << 31):
        assert call(feature, fd, bit | PROBE | 11) == "EINVAL"
        assert call(feature, fd, bit | 0x1234) == "EINVAL"  # before the unknown index
    # 4. GET and SET without PROBE, even for an unknown index
    assert call(feature, fd, GET | SET | 11) == "EINVAL"
    assert call(feature, fd, GET | SET | 0x1234) == "EINVAL"
    # 5. dispatch: no GET/SET/PROBE goes to the handler (vfio_check_feature: EINVAL)
    assert call(feature, fd, 11) == "EINVAL"
    assert call(feature, fd, 10) == "ENOTTY"
    # plain GET/SET of an unsupported index
    assert call(feature, fd, GET | 0x1234) == "ENOTTY"
    # bad pointer for the header
    import fcntl

    from mockkernel.uapi.linux.vfio import VFIO_DEVICE_FEATURE

    assert call(fcntl.ioctl, fd, VFIO_DEVICE_FEATURE, 16) == "EFAULT"


def test_low_power_features(dev: Device) -> None:
    assert feature(dev.fd, SET | 3) == 0
    assert call(feature, dev.fd, SET | 3) == "EINVAL"  # already in low power
    assert feature(dev.fd, SET | 5) == 0
    assert feature(dev.fd, SET | 5) == 0  # leaving twice is fine
    import os
    import struct

    assert call(feature, dev.fd, SET | 4, struct.pack("<iI", -1, 0)) == "EINVAL"
    assert call(feature, dev.fd, SET | 4, struct.pack("<iI", 999, 0)) == "EBADF"
    nul = os.open("/dev/null", os.O_RDONLY)
    try:
        assert call(feature, dev.fd, SET | 4, struct.pack("<iI", nul, 0)) == "EINVAL"
    finally:
        os.close(nul)
    assert call(feature, dev.fd, SET | 4, b"\0\0") == "EINVAL"  # argsz < 8 + 8
    efd = os.eventfd(0)
    try:
        assert feature(dev.fd, SET | 4, struct.pack("<iI", efd, 0)) == 0
        # any access wakes the device: the eventfd is signalled, low power is left
        feature(dev.fd, PROBE | 11)
        assert os.eventfd_read(efd) == 1
        assert feature(dev.fd, SET | 3) == 0
        assert feature(dev.fd, SET | 5) == 0
    finally:
        os.close(efd)


@pytest.mark.parametrize(
    ("flags", "argsz", "supported", "minsz", "expected"),
    [
        (GET, 16, SET, 8, "EINVAL"),  # 1. GET not supported
        (SET | PROBE, 0, GET, 8, "EINVAL"),  # 1. before PROBE
        (GET | PROBE, 0, GET, 8, 0),  # 2. PROBE answers, argsz not checked
        (0, 16, GET, 8, "EINVAL"),  # 3. neither GET nor SET
        (GET, 7, GET, 8, "EINVAL"),  # 4. argsz < minsz
        (GET, 8, GET, 8, 1),  # 5. execute
        (SET, 100, GET | SET, 12, 1),
    ],
)
def test_vfio_check_feature(
    flags: int, argsz: int, supported: int, minsz: int, expected: int | str
) -> None:
    assert call(vfio_check_feature, flags, argsz, supported, minsz) == expected


def test_same_answers_on_both_paths(mock_kernel: Kernel) -> None:
    a = open_device("group")
    try:
        via_group = _table(a.fd)
    finally:
        a.close()
    b = open_device("cdev")
    try:
        assert _table(b.fd) == via_group
    finally:
        b.close()
