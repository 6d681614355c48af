"""Topology: TOML loading, validation messages, the default machine, dumps round trip."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockkernel.topology import (
    DEFAULT_TOPOLOGY_TOML,
    BarSpec,
    CpuSteeringTag,
    DeviceSpec,
    KernelSpec,
    MsiSpec,
    MsixSpec,
    RootPortSpec,
    Topology,
    TopologyError,
    TphSpec,
    default_topology,
    dumps,
    load_topology,
)

DEVICE = """
[[root_ports]]
bdf = "0000:00:01.0"
tph_completer = "ext"

[[root_ports.cpu_st]]
cpu = 0
vm_st = 0x10

[[devices]]
bdf = "0000:01:00.0"
vendor = 0x15b3
device = 0x1021
class = 0x020000
iommu_group = 1
root_port = "0000:00:01.0"

[[devices.bars]]
index = 0
size = 0x10000
mem64 = true
"""


def test_default_topology_round_trips() -> None:
    t = default_topology()
    text = dumps(t)
    assert load_topology(text) == t
    assert dumps(load_topology(text)) == text
    assert load_topology(DEFAULT_TOPOLOGY_TOML) == t


def test_default_topology_describes_the_brief_machine() -> None:
    t = default_topology()
    assert t.kernel == KernelSpec(uapi="tph-v11", rlimit_nofile=1024, nr_cpus=4)
    (rp,) = t.root_ports
    assert rp.tph_completer == "ext"
    assert [e.cpu for e in rp.cpu_st] == [0, 1, 2, 3]
    vfio, mlx5, nic = t.devices
    assert (vfio.driver, vfio.iommu_group, vfio.tph_completer) == ("vfio-pci", 6, "ext")
    assert vfio.bars == (
        BarSpec(0, 0x100000, mem64=True, prefetch=True, p2pdma=True),
        BarSpec(2, 0x10000),
    )
    assert (mlx5.vendor, mlx5.driver) == (0x15B3, "mlx5_core")
    assert mlx5.tph == TphSpec(modes=("ns", "ds"), ext=True, st_table="cap", st_table_size=64)
    assert nic.driver == "mock_nic"
    assert nic.tph is not None and nic.msix is not None
    assert (nic.tph.ext, nic.tph.st_table, nic.tph.st_table_size) == (False, "msix", 64)
    assert t.iommu_groups() == {6: (vfio.bdf,), 7: (mlx5.bdf,), 8: (nic.bdf,)}


def test_minimal_and_empty_topologies() -> None:
    assert load_topology("") == Topology()
    t = load_topology(DEVICE)
    dev = t.device("0000:01:00.0")
    assert (dev.driver, dev.memory_enabled, dev.pcie_type, dev.tph) == (
        None,
        True,
        "endpoint",
        None,
    )
    assert dict(dev.options) == {}
    assert t.root_port("0000:00:01.0").cpu_st == (CpuSteeringTag(0, vm_st=0x10),)
    with pytest.raises(KeyError):
        t.device("0000:09:00.0")


def test_python_built_topology_equals_loaded() -> None:
    port = RootPortSpec("0000:00:01.0", tph_completer="ext", cpu_st=(CpuSteeringTag(0, 0x10),))
    dev = DeviceSpec(
        bdf="0000:01:00.0",
        vendor=0x15B3,
        device=0x1021,
        class_code=0x020000,
        iommu_group=1,
        root_port="0000:00:01.0",
        bars=(BarSpec(0, 0x10000, mem64=True),),
    )
    built = Topology(root_ports=(port,), devices=(dev,))
    assert built == load_topology(DEVICE)
    assert hash(built) == hash(load_topology(DEVICE))
    # Lists are accepted and stored as tuples.
    from_lists = Topology(root_ports=[port], devices=[dev])  # type: ignore[arg-type]
    assert from_lists == built and isinstance(from_lists.devices, tuple)


def test_load_from_paths(tmp_path: Path) -> None:
    path = tmp_path / "machine.toml"
    path.write_text(DEVICE)
    assert load_topology(path) == load_topology(DEVICE)
    assert load_topology(str(path)) == load_topology(DEVICE)
    with pytest.raises(TopologyError, match=r"missing\.toml: No such file or directory"):
        load_topology(str(tmp_path / "missing.toml"))


def test_options_are_passed_through_and_frozen() -> None:
    t = load_topology(DEVICE + '\n[devices.options]\nmode = "pinned"\nqueues = [1, 2]\n')
    opts = t.devices[0].options
    assert opts == {"mode": "pinned", "queues": (1, 2)}
    with pytest.raises(TypeError):
        opts["mode"] = "dynamic"  # type: ignore[index]
    assert load_topology(dumps(t)) == t


def test_msix_pba_defaults_to_after_the_table() -> None:
    assert MsixSpec(vectors=64, bar=0, table_offset=0x2000).pba_offset == 0x2400
    assert MsixSpec(vectors=65, bar=0).pba_end == 65 * 16 + 16


def _replace_line(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


BAD: list[tuple[str, str]] = [
    ("bogus = 1\n" + DEVICE, "bogus: unknown key"),
    ("[kernel]\nfoo = 1\n", "kernel.foo: unknown key"),
    (
        '[kernel]\nuapi = "linux-6.0"\n',
        "kernel.uapi: 'linux-6.0' is not one of 'linux-7.2', 'tph-v1', 'tph-v2', 'tph-v11'"
        " (did you mean 'linux-7.2'?)",
    ),
    ("[kernel]\nnr_cpus = 0\n", "kernel.nr_cpus: 0 is out of range [1, 8192]"),
    ("[kernel]\nrlimit_nofile = true\n", "kernel.rlimit_nofile: expected an integer, got boolean"),
    ("devices = 3\n", "devices: expected an array of tables, got integer"),
    ("kernel = 3\n", "kernel: expected a table, got integer"),
    ("[[devices]\n", "TOML syntax error: "),
    (
        _replace_line(DEVICE, 'bdf = "0000:01:00.0"', 'bdf = "0000:01:00"'),
        "devices[0].bdf: '0000:01:00' is not a PCI address like '0000:01:00.0'",
    ),
    (
        _replace_line(DEVICE, 'bdf = "0000:01:00.0"', 'bdf = "0000:0A:00.0"'),
        "devices[0].bdf: '0000:0A:00.0' is not a PCI address like '0000:01:00.0'"
        " (hex digits are lower case, as in sysfs: '0000:0a:00.0')",
    ),
    (
        _replace_line(DEVICE, 'bdf = "0000:01:00.0"', 'bdf = "0000:00:01.0"'),
        "devices[0].bdf: duplicate '0000:00:01.0' (also root_ports[0])",
    ),
    (
        DEVICE + '\n[[devices]]\nbdf = "0000:01:00.0"\nvendor = 1\ndevice = 2\nclass = 3\n'
        "iommu_group = 1\n",
        "devices[1].bdf: duplicate '0000:01:00.0' (also devices[0])",
    ),
    (
        _replace_line(DEVICE, "vendor = 0x15b3\n", ""),
        "devices[0].vendor: missing required key",
    ),
    (
        _replace_line(DEVICE, "vendor = 0x15b3", 'vendor = "mellanox"'),
        "devices[0].vendor: expected an integer, got string",
    ),
    (
        _replace_line(DEVICE, "vendor = 0x15b3", "vendor = 0xffff"),
        "devices[0].vendor: 0xffff is out of range [0x0, 0xfffe]",
    ),
    (
        _replace_line(DEVICE, "class = 0x020000", "class = 0x1000000"),
        "devices[0].class: 0x1000000 is out of range [0x0, 0xffffff]",
    ),
    (
        _replace_line(DEVICE, "iommu_group = 1\n", "iommu_group = 1\nfirmware = 1\n"),
        "devices[0].firmware: unknown key",
    ),
    (
        _replace_line(DEVICE, 'root_port = "0000:00:01.0"', 'root_port = "0000:00:02.0"'),
        "devices[0].root_port: no root port '0000:00:02.0'",
    ),
    (
        _replace_line(
            DEVICE, "iommu_group = 1\n", 'iommu_group = 1\npcie_type = "rc-integrated"\n'
        ),
        "devices[0].root_port: an rc-integrated endpoint has no root port",
    ),
    (
        _replace_line(DEVICE, "iommu_group = 1\n", 'iommu_group = 1\ntph_completer = "yes"\n'),
        "devices[0].tph_completer: 'yes' is not one of 'none', 'tph-only', 'ext'",
    ),
    (
        _replace_line(DEVICE, "iommu_group = 1\n", 'iommu_group = 1\ndriver = ""\n'),
        "devices[0].driver: expected a non-empty string",
    ),
    (
        _replace_line(DEVICE, "size = 0x10000", "size = 0x3000"),
        "devices[0].bars[0].size: 0x3000 is not a power of two",
    ),
    (
        _replace_line(DEVICE, "size = 0x10000", "size = 0x8"),
        "devices[0].bars[0].size: 0x8 is out of range [0x10, 0x10000000000]",
    ),
    (
        _replace_line(DEVICE, "iommu_group = 1\n", 'iommu_group = 1\npcie_type = "pci-x"\n'),
        "devices[0].pcie_type: 'pci-x' is not one of 'endpoint', 'rc-integrated', 'conventional'",
    ),
    (
        _replace_line(
            DEVICE,
            "iommu_group = 1\n",
            'iommu_group = 1\npcie_type = "conventional"\ntph_completer = "ext"\n',
        ),
        "devices[0].tph_completer: a conventional PCI function has none",
    ),
    (
        _replace_line(DEVICE, "iommu_group = 1\n", 'iommu_group = 1\npcie_type = "conventional"\n')
        + "\n[devices.tph]\n",
        "devices[0].tph: a conventional PCI function has no extended capability",
    ),
    (
        _replace_line(DEVICE, "iommu_group = 1\n", "iommu_group = 1\ninterrupt_pin = 5\n"),
        "devices[0].interrupt_pin: 5 is out of range [0, 4]",
    ),
    (
        _replace_line(DEVICE, "iommu_group = 1\n", "iommu_group = 1\nio_enabled = 1\n"),
        "devices[0].io_enabled: expected a boolean, got integer",
    ),
    (DEVICE + "\n[devices.msi]\nvectors = 3\n", "devices[0].msi.vectors: 3 is not a power of two"),
    (
        DEVICE + "\n[devices.msi]\nvectors = 64\n",
        "devices[0].msi.vectors: 64 is out of range [1, 32]",
    ),
    (DEVICE + "\n[devices.msi]\nmasked = true\n", "devices[0].msi.masked: unknown key"),
    (
        _replace_line(DEVICE, "index = 0", "index = 5"),
        "devices[0].bars[0].index: 5 is out of range [0, 4]",
    ),
    (
        _replace_line(DEVICE, "mem64 = true", "mem64 = true\nsise = 4096"),
        "devices[0].bars[0].sise: unknown key (did you mean 'size'?)",
    ),
    (
        DEVICE + "\n[[devices.bars]]\nindex = 1\nsize = 0x1000\n",
        "devices[0].bars[1].index: BAR register 1 is already used by bars[0]",
    ),
    (
        _replace_line(DEVICE, "size = 0x10000\nmem64 = true", "size = 0x20000000"),
        "devices[0].bars[0].size: the 32-bit MMIO window 0xe0000000-0xfebfffff is exhausted",
    ),
    (
        DEVICE + '\n[devices.tph]\nmodes = ["ns", "xx"]\n',
        "devices[0].tph.modes[1]: 'xx' is not one of 'ns', 'iv', 'ds'",
    ),
    (
        DEVICE + '\n[devices.tph]\nmodes = ["ns", "ns"]\n',
        "devices[0].tph.modes[1]: duplicate mode 'ns'",
    ),
    (
        DEVICE + '\n[devices.tph]\nmodes = ["ns", 2]\n',
        "devices[0].tph.modes[1]: expected a string, got integer",
    ),
    (
        DEVICE + '\n[devices.tph]\nst_table = "cap"\n',
        "devices[0].tph.st_table_size: 0 is out of range [1, 64]",
    ),
    (
        DEVICE + '\n[devices.tph]\nst_table = "cap"\nst_table_size = 65\n',
        "devices[0].tph.st_table_size: 65 is out of range [1, 64]",
    ),
    (
        DEVICE + "\n[devices.tph]\nst_table_size = 4\n",
        "devices[0].tph.st_table_size: must be 0 when st_table = 'none'",
    ),
    (
        DEVICE + '\n[devices.tph]\nst_table = "msix"\n',
        "devices[0].tph.st_table: 'msix' needs an [msix] table",
    ),
    (
        DEVICE + '\n[devices.msix]\nvectors = 8\nbar = 0\n[devices.tph]\nst_table = "msix"\n'
        "st_table_size = 4\n",
        "devices[0].tph.st_table_size: 4 differs from the MSI-X table size (8)",
    ),
    (
        DEVICE + "\n[devices.msix]\nvectors = 8\nbar = 4\n",
        "devices[0].msix.bar: there is no BAR 4",
    ),
    (
        DEVICE + "\n[devices.msix]\nvectors = 8\nbar = 0\ntable_offset = 0xff80\n",
        "devices[0].msix: table and PBA end at 0x10008, past the end of BAR 0",
    ),
    (
        DEVICE + "\n[devices.msix]\nvectors = 8\nbar = 0\ntable_offset = 4\n",
        "devices[0].msix.table_offset: 0x4 is not 8-byte aligned",
    ),
    (
        DEVICE + "\n[devices.msix]\nvectors = 8\nbar = 0\npba_offset = 0x40\n",
        "devices[0].msix.pba_offset: the PBA overlaps the MSI-X table",
    ),
    (
        DEVICE + "\n[devices.msix]\nvectors = 0\nbar = 0\n",
        "devices[0].msix.vectors: 0 is out of range [1, 2048]",
    ),
    (
        _replace_line(DEVICE, "cpu = 0", "cpu = 9"),
        "root_ports[0].cpu_st[0].cpu: cpu 9 does not exist (kernel.nr_cpus = 4)",
    ),
    (
        _replace_line(DEVICE, "vm_st = 0x10", "vm_st = 0x100"),
        "root_ports[0].cpu_st[0].vm_st: 0x100 is out of range [0x0, 0xff]",
    ),
    (
        _replace_line(DEVICE, "vm_st = 0x10", "vm_xst = 0x10000"),
        "root_ports[0].cpu_st[0].vm_xst: 0x10000 is out of range [0x0, 0xffff]",
    ),
    (
        _replace_line(DEVICE, "vm_st = 0x10", "vm_st = 0x10\n\n[[root_ports.cpu_st]]\ncpu = 0"),
        "root_ports[0].cpu_st[1].cpu: duplicate cpu 0 (also cpu_st[0])",
    ),
    (
        _replace_line(DEVICE, 'tph_completer = "ext"', 'tph_completer = "ext"\ndsm = false'),
        "root_ports[0].dsm: unknown key",
    ),
    (
        DEVICE + "\n[devices.options]\nwhen = 1979-05-27\n",
        "devices[0].options.when: unsupported option value type date",
    ),
    (
        DEVICE + "\n[devices.options]\nnested = { deep = [1979-05-27] }\n",
        "devices[0].options.nested.deep[0]: unsupported option value type date",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_validation_errors_name_key_and_problem(text: str, message: str) -> None:
    with pytest.raises(TopologyError) as info:
        load_topology(text)
    assert isinstance(info.value, ValueError)
    if message.endswith(": "):
        assert str(info.value).startswith(message)
    else:
        assert str(info.value) == message


def test_python_construction_is_validated_too() -> None:
    with pytest.raises(TopologyError, match=r"^size: 0x3000 is not a power of two$"):
        BarSpec(0, 0x3000)
    dev = DeviceSpec("0000:01:00.0", 1, 2, 3, iommu_group=0)
    with pytest.raises(TopologyError, match=r"^devices\[1\]\.bdf: duplicate"):
        Topology(devices=(dev, dev))
    with pytest.raises(TopologyError, match=r"^vendor: expected an integer, got string$"):
        DeviceSpec("0000:01:00.0", "x", 2, 3, iommu_group=0)  # type: ignore[arg-type]


# -- round trip of arbitrary topologies ------------------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=8)
_option_values = st.recursive(
    st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_u8 = st.none() | st.integers(0, 0xFF)
_u16 = st.none() | st.integers(0, 0xFFFF)


@st.composite
def _topologies(draw: st.DrawFn) -> Topology:
    nr_cpus = draw(st.integers(1, 8))
    ports = []
    for i in range(draw(st.integers(0, 2))):
        cpus = draw(st.lists(st.integers(0, nr_cpus - 1), unique=True, max_size=nr_cpus))
        ports.append(
            RootPortSpec(
                f"0000:00:0{i + 1}.0",
                tph_completer=draw(st.sampled_from(("none", "tph-only", "ext"))),
                cpu_st=tuple(
                    CpuSteeringTag(c, draw(_u8), draw(_u8), draw(_u16), draw(_u16)) for c in cpus
                ),
            )
        )
    devices = []
    for i in range(draw(st.integers(0, 3))):
        bar_size = 1 << draw(st.integers(12, 20))
        bars = [BarSpec(0, bar_size, mem64=True, prefetch=draw(st.booleans()), p2pdma=True)]
        if draw(st.booleans()):
            bars.append(BarSpec(2, 1 << draw(st.integers(4, 12))))
        pcie_type = draw(st.sampled_from(("endpoint", "conventional")))
        msi = msix = tph = None
        if draw(st.booleans()):
            msi = MsiSpec(
                vectors=draw(st.sampled_from((1, 2, 4, 8, 16, 32))),
                addr64=draw(st.booleans()),
                per_vector_mask=draw(st.booleans()),
            )
        if draw(st.booleans()):
            msix = MsixSpec(vectors=draw(st.integers(1, 64)), bar=0)
        if pcie_type != "conventional" and draw(st.booleans()):
            loc = draw(st.sampled_from(("none", "cap") + (("msix",) if msix else ())))
            tph = TphSpec(
                modes=tuple(draw(st.lists(st.sampled_from(("ns", "iv", "ds")), unique=True))),
                ext=draw(st.booleans()),
                st_table=loc,
                st_table_size=draw(st.integers(1, 64)) if loc == "cap" else 0,
            )
        devices.append(
            DeviceSpec(
                bdf=f"0000:{i + 1:02x}:00.{draw(st.integers(0, 7))}",
                vendor=draw(st.integers(0, 0xFFFE)),
                device=draw(st.integers(0, 0xFFFF)),
                class_code=draw(st.integers(0, 0xFFFFFF)),
                iommu_group=draw(st.integers(0, 3)),
                revision=draw(st.integers(0, 0xFF)),
                subsystem_vendor=draw(_u16),
                subsystem_device=draw(_u16),
                driver=draw(st.none() | _text.filter(bool)),
                root_port=draw(st.sampled_from([None] + [p.bdf for p in ports])),
                pcie_type=pcie_type,
                memory_enabled=draw(st.booleans()),
                io_enabled=draw(st.booleans()),
                interrupt_pin=draw(st.integers(0, 4)),
                tph_completer=draw(st.sampled_from(("none", "tph-only", "ext")))
                if pcie_type != "conventional"
                else "none",
                bars=tuple(bars),
                msi=msi,
                msix=msix,
                tph=tph,
                options=draw(st.dictionaries(_text, _option_values, max_size=3)),
            )
        )
    kernel = KernelSpec(
        uapi=draw(st.sampled_from(("linux-7.2", "tph-v1", "tph-v2", "tph-v11"))),
        rlimit_nofile=draw(st.integers(1, 1 << 20)),
        nr_cpus=nr_cpus,
    )
    return Topology(kernel=kernel, root_ports=tuple(ports), devices=tuple(devices))


@settings(max_examples=60, deadline=None)
@given(_topologies())
def test_dumps_round_trips(t: Topology) -> None:
    text = dumps(t)
    tomllib.loads(text)  # valid TOML on its own
    assert load_topology(text) == t


def test_dumps_escapes_strings() -> None:
    weird = 'a "quoted"\\ line\nwith\ttab\x00\x7f and ünïcode'
    dev = DeviceSpec(
        "0000:01:00.0", 1, 2, 3, iommu_group=0, driver=weird, options={weird: {weird: [weird]}}
    )
    t = Topology(devices=(dev,))
    assert load_topology(dumps(t)) == t


def test_replace_revalidates() -> None:
    t = default_topology()
    with pytest.raises(TopologyError, match=r"^nr_cpus: 0 is out of range"):
        dataclasses.replace(t.kernel, nr_cpus=0)
    with pytest.raises(TopologyError, match=r"^root_ports\[0\]\.cpu_st\[2\]\.cpu: cpu 2 does not"):
        dataclasses.replace(t, kernel=KernelSpec(nr_cpus=2))


def test_one_line_strings_that_are_not_toml_are_paths() -> None:
    with pytest.raises(TopologyError, match=r"^machine\.conf: No such file or directory$"):
        load_topology("machine.conf")
    assert load_topology("[kernel]") == load_topology("# nothing") == Topology()


def test_reference_documents_every_key() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "topology.md").read_text()
    for cls in (
        KernelSpec,
        RootPortSpec,
        CpuSteeringTag,
        DeviceSpec,
        BarSpec,
        MsiSpec,
        MsixSpec,
        TphSpec,
    ):
        for f in dataclasses.fields(cls):
            if f.init:
                name = "class" if f.name == "class_code" else f.name
                assert f"`{name}`" in doc, f"docs/topology.md lacks {cls.__name__}.{name}"
