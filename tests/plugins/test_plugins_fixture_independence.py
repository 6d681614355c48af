"""Every test's ``mock_kernel`` is its own: what one test changes in its kernel -- PCI
config space, driver binding and ``/dev/vfio``, VFIO group state, net devices, RDMA
devices, dma-buf state, the fd table, trace sinks, an armed ``fail-nth``, the id
counter -- is never seen by the next test's kernel, whether that kernel is booted for
the test or comes up lazily at its first use (the fixture after a topology's first
boot in the session).

An inner pytest session runs, in order: a test that records what a fresh kernel looks
like, one test per subsystem that changes it (and leaves nothing open: no leak), and a
last test that records a fresh kernel again; the two records must be equal.  Each
mutation test also checks that its change took (so the comparison can fail).
"""

from __future__ import annotations

import json

import pytest

import mockkernel

_INNER = r'''
import json
import os
import pathlib

import pytest

from mockkernel.fault_inject import FaultInject
from mockkernel.net import dev_get_by_name, net_state
from mockkernel.pci.core import PciCore
from mockkernel.rdma.device import ib_core
from mockkernel.vfs import Vfs

OUT = pathlib.Path(os.environ["FIXTURE_INDEPENDENCE_OUT"])
VFIO_BDF, MLX5_BDF, NIC_BDF = "0000:01:00.0", "0000:02:00.0", "0000:03:00.0"


def record(k):
    """What a test can see of a kernel, as JSON-able data."""
    pci = k.subsys(PciCore)
    net = net_state(k).netdev
    ib = ib_core(k)
    config = {}
    for bdf in (VFIO_BDF, MLX5_BDF, NIC_BDF):
        fd = os.open(f"/sys/bus/pci/devices/{bdf}/config", os.O_RDONLY)
        try:
            config[bdf] = os.pread(fd, 64, 0).hex()
        finally:
            os.close(fd)
    fd = os.open("/proc/self/fail-nth", os.O_RDONLY)
    try:
        fail_nth = os.read(fd, 32).decode()
    finally:
        os.close(fd)
    with open("/sys/kernel/debug/dma_buf/bufinfo") as f:
        bufinfo = f.read()
    fd = os.open("/dev/udmabuf", os.O_RDWR)
    os.close(fd)
    return {
        "config": config,
        "bound": sorted(pci.bound),
        "override": {p.bdf: p.driver_override for p in pci.bus.devices},
        "dev_vfio": sorted(os.listdir("/dev/vfio")),
        "netdevs": sorted(
            (d.name, d.ifindex, d.mtu, d.running, d.ipv4, len(d.rx))
            for d in net.devices.values()
        ),
        "ib": sorted((name, d.node_desc) for name, d in ib.devices.items()),
        "bufinfo": bufinfo,
        "fds": sorted(k.init_process.files),
        "fd_number": fd,
        "tracing": k.tracer.enabled,
        "fail_nth": fail_nth,
        "injected": list(k.subsys(FaultInject).injected),
        "next_id": k.new_id(),
        "vfs_sys_bus": sorted(k.subsys(Vfs).listdir("/sys/bus/pci/devices") or ()),
    }



def test_0_record_a_fresh_kernel(mock_kernel):
    OUT.with_suffix(".first").write_text(json.dumps(record(mock_kernel)))


def test_1_pci_config_write(mock_kernel):
    fd = os.open(f"/sys/bus/pci/devices/{MLX5_BDF}/config", os.O_RDWR)
    try:
        os.pwrite(fd, b"\x06\x05", 4)  # PCI_COMMAND: memory, bus master, SERR
        assert os.pread(fd, 2, 4) == b"\x06\x05"
    finally:
        os.close(fd)


def test_2_unbind_from_vfio(mock_kernel):
    with open("/sys/bus/pci/drivers/vfio-pci/unbind", "w") as f:
        f.write(VFIO_BDF)
    with open(f"/sys/bus/pci/devices/{NIC_BDF}/driver_override", "w") as f:
        f.write("vfio-pci")
    assert VFIO_BDF not in mock_kernel.subsys(PciCore).bound


def test_3_remove_a_function(mock_kernel):
    with open(f"/sys/bus/pci/devices/{NIC_BDF}/remove", "w") as f:
        f.write("1")
    assert NIC_BDF not in os.listdir("/sys/bus/pci/devices")


def test_4_net_devices(mock_kernel):
    for dev in net_state(mock_kernel).netdev.devices.values():
        dev.mtu, dev.running, dev.ipv4 = 9000, False, "10.9.9.9"
        assert dev_get_by_name(mock_kernel, dev.name) is dev


def test_5_rdma_device(mock_kernel):
    for dev in ib_core(mock_kernel).devices.values():
        dev.node_desc = "changed by test 5"


def test_6_dma_buf_name_and_ids(mock_kernel):
    import fcntl

    from mockkernel.testing.rdma import udmabuf
    from mockkernel.uapi.linux.dma_buf import DMA_BUF_SET_NAME_B

    buf, memfd = udmabuf(4096)
    try:
        fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, b"named-by-test-6\0")
        with open("/sys/kernel/debug/dma_buf/bufinfo") as f:
            assert "named-by-test-6" in f.read()
    finally:
        os.close(buf)
        os.close(memfd)
    for _ in range(100):
        mock_kernel.new_id()


def test_7_fd_table(mock_kernel):
    fds = [os.open("/dev/udmabuf", os.O_RDWR) for _ in range(5)]
    high = os.dup2(fds[0], 200)
    assert high in mock_kernel.init_process.files
    for fd in (*fds, high):
        os.close(fd)


def test_8_trace_sink_left_on(mock_kernel):
    mock_kernel.tracer.add_sink(lambda event: None)
    assert mock_kernel.tracer.enabled


def test_9_fail_nth_armed(mock_kernel):
    fd = os.open("/proc/self/fail-nth", os.O_WRONLY)
    try:
        os.write(fd, b"50")
    finally:
        os.close(fd)


def test_z_record_a_fresh_kernel_again(mock_kernel):
    OUT.with_suffix(".last").write_text(json.dumps(record(mock_kernel)))
'''


@pytest.fixture(autouse=True, scope="module")
def _imports_done_out_here() -> None:
    """Boot once in this process before ``pytester`` snapshots ``sys.modules``: the
    modules a boot imports (the plugins' included) are then this process's, and not
    unloaded with what the in-process inner session imported -- a module imported again
    later would be a second copy of its classes beside the plugins' references to the
    first."""
    mockkernel.boot().shutdown()


def test_no_test_sees_what_an_earlier_test_changed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = pytester.path / "record"
    monkeypatch.setenv("FIXTURE_INDEPENDENCE_OUT", str(out))
    pytester.makepyfile(test_inner=_INNER)
    result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=11)
    first = json.loads(out.with_suffix(".first").read_text())
    last = json.loads(out.with_suffix(".last").read_text())
    assert last == first
