"""The uAPI profile registry: one object per profile, built-in ones plus plugins' ones.

A profile registered through ``mockkernel_register_uapi_profiles`` is spoken end to
end (vfio-pci's feature table, the exporter's dma-buf op, the mlx5 importer), and the
documentation's table is the registry's.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mockkernel
from mockkernel.cli import main
from mockkernel.driver import DmaBufTphOp, UapiProfile
from mockkernel.profiles import (
    BUILTIN_UAPI_PROFILES,
    DEFAULT_UAPI_PROFILE,
    TPH_V1,
    TPH_V11,
    UapiProfiles,
    UnknownUapiProfile,
    markdown_table,
)
from mockkernel.testing.rdma import Verbs, VfioDevice, remote_write
from mockkernel.topology import TopologyError, default_topology, dumps, load_topology
from mockkernel.uapi.linux.vfio import VFIO_DEVICE_FEATURE_PROBE, VFIO_DEVICE_FEATURE_SET
from mockkernel.uapi.linux.vfio_tph import (
    VFIO_DEVICE_FEATURE_DMA_BUF_TPH,
    VFIO_DMA_BUF_TPH_ST,
    VFIO_DMA_BUF_TPH_ST_EXT,
    vfio_device_feature_dma_buf_tph,
)
from mockkernel.uapi.rdma.ib_user_ioctl_verbs import (
    IB_UVERBS_ACCESS_LOCAL_WRITE,
    IB_UVERBS_ACCESS_REMOTE_WRITE,
)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "uapi-profiles.md"
VFIO_BDF = "0000:01:00.0"
PAGE = 4096
RW = IB_UVERBS_ACCESS_LOCAL_WRITE | IB_UVERBS_ACCESS_REMOTE_WRITE

#: a hypothetical v12: v11's struct and op, the feature moved to index 14
TPH_V12 = dataclasses.replace(
    TPH_V11,
    name="tph-v12",
    summary="hypothetical v12: v11 with VFIO_DEVICE_FEATURE_DMA_BUF_TPH renumbered to 14",
    revision=12,
    posted="2026-08-01",
    tph_feature=14,
    c_names={**TPH_V11.c_names, "VFIO_DEVICE_FEATURE_DMA_BUF_TPH": 14},
)


class Registers:
    """A plugin that adds ``profiles`` through the hook."""

    def __init__(self, *profiles: object) -> None:
        self.profiles = profiles

    @mockkernel.hookimpl
    def mockkernel_register_uapi_profiles(self, register: Callable[[Any], None]) -> None:
        for profile in self.profiles:
            register(profile)


# -- the built-in profiles ----------------------------------------------------------------------
def test_builtin_fields_agree_with_the_uapi_module() -> None:
    """The typed fields say what the ABI-checked ``vfio_tph`` names of the profile say."""
    for p in BUILTIN_UAPI_PROFILES:
        names = p.c_names
        assert p.tph_feature == names.get("VFIO_DEVICE_FEATURE_DMA_BUF_TPH")
        assert p.tph_feature_struct is names.get("vfio_device_feature_dma_buf_tph")
        assert p.dma_buf_tph_flag == names.get("VFIO_DMABUF_FLAG_TPH", 0)
        assert p.dma_buf_flags == p.dma_buf_tph_flag
        assert p.tph_bundled == (p.revision == 1)
        assert (p.tph_op is None) == (p.revision is None)
    assert UapiProfiles().default.name == DEFAULT_UAPI_PROFILE == "tph-v11"


def test_the_documented_table_is_the_registry() -> None:
    text = DOC.read_text(encoding="utf-8")
    m = re.search(r"<!-- profile table:[^\n]*-->\n(.*?)<!-- end of profile table -->", text, re.S)
    assert m is not None, "docs/uapi-profiles.md lost its profile table markers"
    assert m.group(1) == markdown_table(BUILTIN_UAPI_PROFILES), (
        "regenerate the table with mockkernel.profiles.markdown_table(BUILTIN_UAPI_PROFILES)"
    )
    for p in BUILTIN_UAPI_PROFILES:  # and each one has its section
        assert f"### `{p.name}`" in text


def test_the_documented_plugin_example_runs() -> None:
    text = DOC.read_text(encoding="utf-8")
    m = re.search(r"## Adding a profile\n.*?```python\n(.*?)```", text, re.S)
    assert m is not None
    scope: dict[str, Any] = {}
    exec(compile(m.group(1), str(DOC), "exec"), scope)
    kernel = scope["kernel"]
    try:
        assert kernel.uapi.name == "tph-v12"
        assert kernel.uapi.tph_feature == 14
    finally:
        kernel.shutdown()


# -- the registry ---------------------------------------------------------------------------------
def test_get_names_and_unknown_names() -> None:
    reg = UapiProfiles([TPH_V12])
    assert reg.names() == ("linux-7.2", "tph-v1", "tph-v2", "tph-v11", "tph-v12")
    assert reg.get("tph-v12") is TPH_V12 and reg.get("tph-v1") is TPH_V1
    assert "tph-v12" in reg and "tph-v13" not in reg and len(reg) == 5
    with pytest.raises(UnknownUapiProfile, match=r"'tph-v13': one of linux-7\.2, .*tph-v12$"):
        reg.get("tph-v13")
    with pytest.raises(ValueError, match="unknown uAPI profile"):
        UapiProfiles().get("tph-v12")  # another registry does not have it


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ((TPH_V12, TPH_V12), "'tph-v12' registered twice"),
        ((dataclasses.replace(TPH_V11, summary="mine"),), "'tph-v11' registered twice"),
    ],
)
def test_a_taken_name_fails_the_boot(extra: tuple[UapiProfile, ...], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        mockkernel.boot(plugins=[Registers(*extra)])


def test_register_takes_only_profiles() -> None:
    with pytest.raises(TypeError, match="not a UapiProfile"):
        mockkernel.boot(plugins=[Registers("tph-v12")])


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"name": ""}, "needs a name"),
        ({"tph_feature_struct": None}, "go together"),
        ({"tph_feature": 11}, "not an index Linux 7.2 leaves free"),  # DMA_BUF's
        ({"tph_feature": 0x10000}, "not an index"),
        ({"dma_buf_tph_flag": 3}, "not one u32 bit"),
    ],
)
def test_a_profile_checks_its_fields(changes: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        dataclasses.replace(TPH_V11, **changes)


def test_a_profile_is_its_name_for_older_code(mock_kernel: mockkernel.Kernel) -> None:
    uapi = mock_kernel.uapi
    assert uapi is mock_kernel.uapi_profiles.get("tph-v11")
    assert uapi == "tph-v11" and uapi != "tph-v2" and str(uapi) == "tph-v11"
    assert uapi != TPH_V12 and {uapi, "tph-v11"} == {"tph-v11"}


def test_a_profile_vfio_pci_cannot_speak_fails_the_boot() -> None:
    class Other(vfio_device_feature_dma_buf_tph):
        pass

    odd = dataclasses.replace(TPH_V12, name="tph-odd", tph_feature_struct=Other)
    with pytest.raises(ValueError, match="vfio-pci cannot speak uAPI profile 'tph-odd'"):
        mockkernel.boot(plugins=[Registers(odd)], uapi="tph-odd")


# -- a profile from a plugin, end to end -------------------------------------------------------
def test_a_plugin_profile_renumbering_the_feature(
    mock_kernel_factory: Callable[..., mockkernel.Kernel],
) -> None:
    kernel = mock_kernel_factory(uapi="tph-v12", plugins=[Registers(TPH_V12)], install=True)
    assert kernel.uapi is TPH_V12
    assert kernel.uapi_profiles.names()[-1] == "tph-v12"
    both = VFIO_DMA_BUF_TPH_ST | VFIO_DMA_BUF_TPH_ST_EXT
    with VfioDevice(VFIO_BDF, tph_feature=14) as vfio, Verbs("mlx5_0") as verbs:
        fd = vfio.export(0, PAGE)
        try:
            # a v11 program (feature 13) meets an unknown index; 14 is the feature now
            data = struct.pack("<iIHBB", fd, both, 0x0112, 0x12, 1)
            with pytest.raises(OSError) as e:
                vfio.feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_BUF_TPH, data)
            assert e.value.errno == errno.ENOTTY
            assert vfio.feature(VFIO_DEVICE_FEATURE_PROBE | 14, b"") == 0
            with kernel.tracer.capture() as events:
                vfio.set_tph(fd, both, xst=0x0112, st=0x12, ph=1)
            (ev,) = [e for e in events if e["event"] == "vfio_pci.dma_buf_tph_set"]
            assert ev["uapi"] == "tph-v12"
            # the importer asks through the profile's op: get_pci_tph(extended)
            pd = verbs.alloc_pd()
            mr = verbs.reg_dmabuf_mr(pd, fd, PAGE, access=RW)
            res = remote_write(kernel, "mlx5_0", mr.rkey, 0, b"x")
            assert (res.ph, res.steering_tag) == (1, 0x0112)
            verbs.dereg_mr(mr)
        finally:
            os.close(fd)


def test_a_plugin_profile_named_by_a_topology() -> None:
    text = dumps(default_topology()).replace('uapi = "tph-v11"', 'uapi = "tph-v12"')
    with pytest.raises(TopologyError, match=r"kernel\.uapi: 'tph-v12' is not one of"):
        load_topology(text)  # the built-in profiles only
    assert load_topology(text, uapi_profiles=UapiProfiles([TPH_V12])).kernel.uapi == "tph-v12"
    kernel = mockkernel.boot(text, plugins=[Registers(TPH_V12)])
    try:
        assert kernel.uapi is TPH_V12
        assert kernel.bound[VFIO_BDF].profile is TPH_V12  # type: ignore[attr-defined]
    finally:
        kernel.shutdown()
    with pytest.raises(TopologyError, match="'tph-v12' is not one of"):
        mockkernel.boot(text)  # no plugin, no such profile


def test_boot_names_an_unknown_profile() -> None:
    with pytest.raises(UnknownUapiProfile, match=r"'tph-v3': one of linux-7\.2, tph-v1"):
        mockkernel.boot(uapi="tph-v3")


def test_cli_checks_uapi_against_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prog = tmp_path / "prog.py"
    prog.write_text("print('ran')\n")
    assert main(["run", "--uapi", "tph-v3", str(prog)]) == 2
    err = capsys.readouterr().err
    assert "argument --uapi: invalid choice: 'tph-v3'" in err
    assert "linux-7.2, tph-v1, tph-v2, tph-v11" in err


# -- the ops ----------------------------------------------------------------------------------
def test_op_signatures() -> None:
    assert DmaBufTphOp.GET_TPH.value == "get_tph" and not DmaBufTphOp.GET_TPH.resv_held
    assert DmaBufTphOp.GET_PCI_TPH.value == "get_pci_tph" and DmaBufTphOp.GET_PCI_TPH.resv_held
