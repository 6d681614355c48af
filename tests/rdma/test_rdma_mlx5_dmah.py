"""DMA handles on mlx5: the core's checks (kernel.md section 7), mlx5's, and the ST library.

The default machine: 4 CPUs whose root port ``_DSM`` gives ``vm_xst = 0x110 + cpu``
(``pm_xst = 0x220 + cpu``; 8-bit ``vm_st = 0x10 + cpu``), and a ConnectX function with a
64-entry ST table in its TPH capability, extended requester.
"""

from __future__ import annotations

import dataclasses

import pytest
from rdma_testing import (
    LOCAL_WRITE,
    MLX5_BDF,
    ON_DEMAND,
    PAGE,
    RW,
    anon,
    call,
    mlx5_tph,
    mlx5_variant,
)

from mockkernel import Kernel
from mockkernel.testing.rdma import Verbs, VfioDevice, attr, idr, remote_write
from mockkernel.topology import default_topology
from mockkernel.uapi.rdma import ib_user_ioctl_cmds as C

VM, PM = 0, 1


def _st_entry(kernel: Kernel, index: int) -> int:
    assert kernel.pci is not None
    pdev = kernel.pci.get(MLX5_BDF)
    return pdev.pci_read_config_word(pdev.tph_cap + 0xC + 2 * index)


def _st(kernel: Kernel) -> dict[int, list[int]]:
    from mockkernel_mlx5 import mlx5_dev

    st = mlx5_dev(kernel, "mlx5_0").st
    assert st is not None
    return st.entries


def dmah_raw(v: Verbs, *attrs: tuple[int, int, int, int, int]) -> int:
    after = v.ioctl(
        C.UVERBS_OBJECT_DMAH,
        C.UVERBS_METHOD_DMAH_ALLOC,
        [idr(C.UVERBS_ATTR_ALLOC_DMAH_HANDLE, 0), *attrs],
    )
    return after[0][4]


@pytest.mark.parametrize(
    ("kwargs", "err"),
    [
        ({}, "EINVAL"),  # mlx5: PH is required
        ({"cpu_id": 0, "ph": 0}, "EINVAL"),  # CPU without memory type
        ({"mem_type": VM, "ph": 0}, "EINVAL"),  # memory type without CPU
        ({"cpu_id": 4, "mem_type": VM, "ph": 0}, "EINVAL"),  # cpu_id >= nr_cpu_ids
        ({"cpu_id": 1 << 31, "ph": 0}, "EINVAL"),
        ({"ph": 4}, "EINVAL"),  # ph & 0xFC
        ({"ph": 0xFF}, "EINVAL"),
        ({"cpu_id": 0, "mem_type": 2, "ph": 0}, "EOPNOTSUPP"),  # enum element out of range
    ],
)
def test_dmah_alloc_errnos(verbs: Verbs, kwargs: dict[str, int], err: str) -> None:
    assert call(verbs.dmah_alloc, **kwargs) == err


def test_dmah_attribute_shapes(verbs: Verbs) -> None:
    ph = attr(C.UVERBS_ATTR_ALLOC_DMAH_PH, 1, 1)
    cpu4 = attr(C.UVERBS_ATTR_ALLOC_DMAH_CPU_ID, 0, 4)
    # the memory type is an ENUM_IN: the value in attr_data.elem_id, no data
    assert call(dmah_raw, verbs, cpu4, attr(C.UVERBS_ATTR_ALLOC_DMAH_TPH_MEM_TYPE, 0, 8), ph) == (
        "EINVAL"
    )
    enum_reserved = attr(C.UVERBS_ATTR_ALLOC_DMAH_TPH_MEM_TYPE, reserved=0x100)
    assert call(dmah_raw, verbs, cpu4, enum_reserved, ph) == "EINVAL"
    assert call(dmah_raw, verbs, attr(C.UVERBS_ATTR_ALLOC_DMAH_CPU_ID, 0, 8), ph) == "EINVAL"
    assert call(dmah_raw, verbs, attr(C.UVERBS_ATTR_ALLOC_DMAH_PH, 1, 2)) == "EINVAL"
    assert call(dmah_raw, verbs, attr(C.UVERBS_ATTR_ALLOC_DMAH_PH, 1, 1, reserved=1)) == "EINVAL"
    h = dmah_raw(verbs, cpu4, attr(C.UVERBS_ATTR_ALLOC_DMAH_TPH_MEM_TYPE, reserved=PM), ph)
    verbs.dmah_free(h)


def test_cpu_outside_the_callers_affinity(verbs: Verbs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {1, 2})
    assert call(verbs.dmah_alloc, cpu_id=0, mem_type=VM, ph=0) == "EPERM"
    verbs.dmah_free(verbs.dmah_alloc(cpu_id=1, mem_type=VM, ph=0))


def test_st_indexes_are_refcounted_and_index_0_reserved(mock_kernel: Kernel, verbs: Verbs) -> None:
    a = verbs.dmah_alloc(cpu_id=0, mem_type=VM, ph=1)
    b = verbs.dmah_alloc(cpu_id=0, mem_type=VM, ph=2)  # same tag: same index
    c = verbs.dmah_alloc(cpu_id=0, mem_type=PM, ph=0)
    assert _st(mock_kernel) == {1: [0x110, 2], 2: [0x220, 1]}
    assert (_st_entry(mock_kernel, 1), _st_entry(mock_kernel, 2)) == (0x110, 0x220)
    assert _st_entry(mock_kernel, 0) == 0
    for h in (a, c):
        verbs.dmah_free(h)
    assert _st(mock_kernel) == {1: [0x110, 1]}
    verbs.dmah_free(b)
    assert _st(mock_kernel) == {}
    assert _st_entry(mock_kernel, 1) == 0x110  # config space is left as it was
    assert verbs.dmah_alloc(ph=3) >= 0  # no CPU: no ST index at all
    assert _st(mock_kernel) == {}
    assert call(verbs.dmah_free, 77) == "ENOENT"


def test_dmah_busy_while_an_mr_uses_it(mock_kernel: Kernel, verbs: Verbs) -> None:
    m, a = anon(1)
    try:
        pd = verbs.alloc_pd()
        h = verbs.dmah_alloc(cpu_id=2, mem_type=VM, ph=2)
        mr = verbs.reg_mr(pd, PAGE, a, RW, addr=a, dmah=h)
        assert call(verbs.dmah_free, h) == "EBUSY"
        res = remote_write(mock_kernel, "mlx5_0", mr.rkey, 8, b"hint")
        assert (res.ok, res.ph, res.steering_tag) == (True, 2, 0x112)
        assert m[8:12] == b"hint"
        assert _st(mock_kernel) == {1: [0x112, 2]}  # the DMAH's and the MR's reference
        verbs.dereg_mr(mr)
        assert _st(mock_kernel) == {1: [0x112, 1]}
        verbs.dmah_free(h)
        # closing with both alive works too: the MR goes first
        h = verbs.dmah_alloc(cpu_id=2, mem_type=VM, ph=2)
        verbs.reg_mr(pd, PAGE, a, RW, addr=a, dmah=h)
        with mock_kernel.tracer.capture() as events:
            verbs.close()
        kinds = [e["type"] for e in events if e["event"] == "rdma.destroy"]
        assert kinds == ["mr", "dmah", "pd"]
        assert _st(mock_kernel) == {}
    finally:
        m.close()


def test_odp_mr_with_dmah_is_eopnotsupp(verbs: Verbs) -> None:
    m, a = anon(1)
    try:
        pd = verbs.alloc_pd()
        h = verbs.dmah_alloc(ph=1)
        assert call(verbs.reg_mr, pd, PAGE, a, LOCAL_WRITE | ON_DEMAND, addr=a, dmah=h) == (
            "EOPNOTSUPP"
        )
        verbs.dereg_mr(verbs.reg_mr(pd, PAGE, a, LOCAL_WRITE | ON_DEMAND, addr=a))
    finally:
        m.close()


def test_dmah_wins_over_the_exporters_tph(mock_kernel: Kernel, verbs: Verbs) -> None:
    with VfioDevice("0000:01:00.0") as dev:
        fd = dev.export(0, 2 * PAGE)
        try:
            dev.set_tph(fd, 3, xst=0x0BEE, st=0xEE, ph=3)
            pd = verbs.alloc_pd()
            h = verbs.dmah_alloc(cpu_id=3, mem_type=PM, ph=1)
            mr = verbs.reg_mr(pd, 2 * PAGE, 0, RW, fd=fd, fd_offset=0, dmah=h)
            res = remote_write(mock_kernel, "mlx5_0", mr.rkey, 0, b"x")
            assert (res.ph, res.steering_tag) == (1, 0x223)
            (tlp,) = res.tlps
            assert (tlp.th, tlp.ph, tlp.steering_tag) == (True, 1, 0x223)
            verbs.dereg_mr(mr)
            verbs.dmah_free(h)
        finally:
            import os

            os.close(fd)


@pytest.mark.mockkernel(topology=mlx5_tph(st_table_size=2))
def test_st_table_full_is_ebusy(mock_kernel: Kernel, verbs: Verbs) -> None:
    a = verbs.dmah_alloc(cpu_id=0, mem_type=VM, ph=0)  # index 1: the only one
    assert call(verbs.dmah_alloc, cpu_id=1, mem_type=VM, ph=0) == "EBUSY"
    b = verbs.dmah_alloc(cpu_id=0, mem_type=VM, ph=0)  # same tag: shares index 1
    verbs.dmah_free(a)
    verbs.dmah_free(b)


@pytest.mark.mockkernel(topology=mlx5_tph(st_table="none", st_table_size=0))
def test_direct_mode_index_is_the_tag(mock_kernel: Kernel, verbs: Verbs) -> None:
    from mockkernel_mlx5 import mlx5_dev

    st = mlx5_dev(mock_kernel, "mlx5_0").st
    assert st is not None and st.direct_mode
    m, a = anon(1)
    try:
        pd = verbs.alloc_pd()
        h = verbs.dmah_alloc(cpu_id=1, mem_type=VM, ph=2)
        mr = verbs.reg_mr(pd, PAGE, a, RW, addr=a, dmah=h)
        res = remote_write(mock_kernel, "mlx5_0", mr.rkey, 0, b"x")
        assert (res.ph, res.steering_tag) == (2, 0x111)
        assert st.entries == {}
        verbs.dereg_mr(mr)
        verbs.dmah_free(h)
    finally:
        m.close()


@pytest.mark.mockkernel(topology=mlx5_tph(st_table_size=1))
def test_one_entry_table_means_no_st(mock_kernel: Kernel, verbs: Verbs) -> None:
    """``mlx5_st_create`` needs >= 2 entries (0 is reserved): no ST, TPH stays disabled."""
    assert mock_kernel.pci is not None
    assert not mock_kernel.pci.get(MLX5_BDF).tph_enabled
    assert call(verbs.dmah_alloc, cpu_id=0, mem_type=VM, ph=0) == "EOPNOTSUPP"
    verbs.dmah_free(verbs.dmah_alloc(ph=0))


@pytest.mark.mockkernel(topology=mlx5_variant(options={"mkey_pcie_tph": False}))
def test_no_mkey_pcie_tph_cap(mock_kernel: Kernel, verbs: Verbs) -> None:
    assert call(verbs.dmah_alloc, cpu_id=0, mem_type=VM, ph=0) == "EOPNOTSUPP"


def _no_dsm_for_cpu3() -> object:
    topo = default_topology()
    (rp,) = topo.root_ports
    rp = dataclasses.replace(rp, cpu_st=tuple(e for e in rp.cpu_st if e.cpu != 3))
    return dataclasses.replace(topo, root_ports=(rp,))


@pytest.mark.mockkernel(topology=_no_dsm_for_cpu3())
def test_dsm_failure_is_einval(verbs: Verbs) -> None:
    assert call(verbs.dmah_alloc, cpu_id=3, mem_type=VM, ph=0) == "EINVAL"
    verbs.dmah_free(verbs.dmah_alloc(cpu_id=2, mem_type=VM, ph=0))


@pytest.mark.mockkernel(topology=mlx5_variant(root_port=None, pcie_type="rc-integrated"))
def test_no_root_port_is_enodev(mock_kernel: Kernel, verbs: Verbs) -> None:
    """An RC-integrated function enables TPH without a root port, but the CPU's tag comes
    from the root port's ``_DSM``: ``pcie_tph_get_cpu_st`` answers ``ENODEV``."""
    assert mock_kernel.pci is not None and mock_kernel.pci.get(MLX5_BDF).tph_enabled
    assert call(verbs.dmah_alloc, cpu_id=0, mem_type=VM, ph=0) == "ENODEV"
