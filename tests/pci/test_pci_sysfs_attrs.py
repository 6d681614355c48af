"""The generic attributes of a PCI device's sysfs directory (``drivers/pci/pci-sysfs.c``):
what a shell script, ``lspci -vvv`` or DPDK's bus scan read, with the values and write
errors real Linux 7.2 gives (``tests/real_linux/golden/pci_attrs.txt``: the guest's edu
device behind its root port, bound to vfio-pci)."""

from __future__ import annotations

import dataclasses
import errno
import os
from pathlib import Path

import pytest
from pci_testing import EDU

from mockkernel import Kernel
from mockkernel.sysfs import cpumask_text
from mockkernel.topology import KernelSpec, RootPortSpec, Topology

PROBE = Path(__file__).parent.parent / "real_linux" / "probes" / "pci_attrs.sh"
GOLDEN = Path(__file__).parent.parent / "real_linux" / "golden" / "pci_attrs.txt"

#: the guest's edu as lspci and sysfs show it: behind root port 00:03.0, IRQ 11, 2 CPUs
GUEST_EDU = Topology(
    kernel=KernelSpec(nr_cpus=2),
    root_ports=(RootPortSpec("0000:00:03.0"),),
    devices=(
        dataclasses.replace(
            EDU,
            root_port="0000:00:03.0",
            interrupt_line=11,
            subsystem_vendor=0x1AF4,
            subsystem_device=0x1100,
            driver="vfio-pci",
        ),
    ),
)
D = "/sys/bus/pci/devices/0000:01:00.0"


@pytest.mark.parametrize(
    ("nbits", "text"),
    [(1, "1"), (2, "3"), (4, "f"), (5, "1f"), (32, "ffffffff"), (33, "1,ffffffff"),
     (40, "ff,ffffffff"), (64, "ffffffff,ffffffff")],
)  # fmt: skip
def test_cpumask_text_is_the_kernels_bitmap_format(nbits: int, text: str) -> None:
    assert cpumask_text(nbits) == text + "\n"


def test_a_shell_probe_prints_what_real_linux_printed(mock_kernel_factory: object) -> None:
    """The probe runs unchanged under the supervisor (``cat``, ``tr``, ``readlink``, and
    ``bash -c 'echo ... > attr'``: a write at fd 1)."""
    kernel: Kernel = mock_kernel_factory(GUEST_EDU)  # type: ignore[operator]
    r = kernel.run(["sh", str(PROBE)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == GOLDEN.read_text().splitlines()


def _write(path: str, data: bytes) -> str:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    except OSError as e:
        return errno.errorcode[e.errno or 0]
    finally:
        os.close(fd)
    return "ok"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


@pytest.mark.usefixtures("mock_kernel")
def test_drivers_set_enable_and_dma_masks() -> None:
    """mlx5 and the NIC enable their device and set a 64-bit mask in ``probe``; vfio-pci
    enables only while the device is open."""
    for bdf in ("0000:02:00.0", "0000:03:00.0"):
        d = f"/sys/bus/pci/devices/{bdf}"
        assert (_read(f"{d}/enable"), _read(f"{d}/dma_mask_bits")) == ("1\n", "64\n")
        assert _read(f"{d}/consistent_dma_mask_bits") == "64\n"
    d = "/sys/bus/pci/devices/0000:01:00.0"
    assert (_read(f"{d}/enable"), _read(f"{d}/dma_mask_bits")) == ("0\n", "32\n")


@pytest.mark.usefixtures("mock_kernel")
def test_pcie_link_attributes_and_uevent_of_a_bound_nic() -> None:
    d = "/sys/bus/pci/devices/0000:02:00.0"
    assert _read(f"{d}/current_link_speed") == "Unknown\n"  # LNKSTA is zero in the model
    assert _read(f"{d}/max_link_width") == "0\n"
    assert _read(f"{d}/uevent").splitlines()[0] == "DRIVER=mlx5_core"
    assert os.path.realpath(f"{d}/subsystem") == "/sys/bus/pci"


@pytest.mark.mockkernel(topology=GUEST_EDU)
@pytest.mark.usefixtures("mock_kernel")
def test_no_link_attributes_without_a_pcie_capability() -> None:
    assert not os.path.exists(f"{D}/current_link_speed")  # conventional PCI
    assert _read(f"{D}/local_cpus") == "3\n"


@pytest.mark.mockkernel(topology=GUEST_EDU)
@pytest.mark.usefixtures("mock_kernel")
def test_writes_as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("sysfs attribute writes need root (0644 root:root)")
    assert _write(f"{D}/enable", b"1\n") == "EBUSY"  # a driver is bound
    assert _write(f"{D}/enable", b"one") == "EINVAL"
    assert _write(f"{D}/numa_node", b"0\n") == "ok"
    assert _read(f"{D}/numa_node") == "0\n"
    assert _write(f"{D}/numa_node", b"-1") == "ok"
    assert _write(f"{D}/d3cold_allowed", b"0x1") == "ok"
    assert _read(f"{D}/d3cold_allowed") == "1\n"
    assert _write(f"{D}/broken_parity_status", b"010\n") == "ok"
    assert _read(f"{D}/broken_parity_status") == "1\n"
    assert _write(f"{D}/uevent", b"add") == "ok"
    assert _write(f"{D}/uevent", b"") == "ok"  # sysfs_kf_write: nothing to store
    assert _write(f"{D}/uevent", b"bogus") == "EINVAL"


@pytest.mark.mockkernel(topology=GUEST_EDU)
@pytest.mark.usefixtures("mock_kernel")
def test_writes_take_kstrtoul_numbers() -> None:
    if os.geteuid() != 0:
        pytest.skip("sysfs attribute writes need root (0644 root:root)")
    for bad in (b"", b"x", b"1 ", b"-1", b"0x", b"1\n\n", b"18446744073709551616"):
        got = _write(f"{D}/msi_bus", bad)
        assert got == ("ok" if bad == b"" else "ERANGE" if bad[:2] == b"18" else "EINVAL"), bad
    for good, want in ((b"+1", "1\n"), (b"0\n", "0\n"), (b"0x10", "1\n"), (b"00", "0\n")):
        assert _write(f"{D}/msi_bus", good) == "ok"
        assert _read(f"{D}/msi_bus") == want
