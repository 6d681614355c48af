"""Topology errors a user can act on: the file is named, every error is reported at once,
hints say what to change, a marker's relative path is relative to the test file, and a
``driver`` no plugin registered is an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import mockkernel
from mockkernel.topology import TopologyError, load_topology

DEVICE = """
[[devices]]
bdf = "{bdf}"
vendor = 0x1af4
device = 0x1041
class = 0x020000
iommu_group = {group}
{extra}
"""


def _topo(*devices: str) -> str:
    return "".join(devices)


def test_the_file_is_named_and_every_error_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "machine.toml"
    path.write_text(
        _topo(
            DEVICE.format(bdf="0000:0A:00.0", group=1, extra=""),
            DEVICE.format(bdf="0000:02:00.0", group=2, extra="vendr = 1"),
            DEVICE.format(bdf="02:00.0", group=3, extra='pcie_type = "endpont"'),
        )
    )
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    e = info.value
    assert e.file == str(path) and len(e.errors) == 3
    text = str(e)
    assert text.startswith(f"{path}: 3 errors:\n"), text
    assert "devices[0].bdf: '0000:0A:00.0' is not a PCI address" in text
    assert "(hex digits are lower case, as in sysfs: '0000:0a:00.0')" in text
    assert "devices[1].vendr: unknown key (did you mean 'vendor'?)" in text
    assert "devices[2].bdf: '02:00.0' is not a PCI address" in text
    assert "(the domain is needed: '0000:02:00.0')" in text


def test_one_error_in_a_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "one.toml"
    path.write_text(DEVICE.format(bdf="0000:0A:00.0", group=1, extra=""))
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    assert "\n" not in str(info.value) and str(info.value).startswith(f"{path}: devices[0].bdf")


def test_an_unknown_driver_is_an_error_with_the_names_registered() -> None:
    text = DEVICE.format(bdf="0000:01:00.0", group=1, extra='driver = "vfio_pci"')
    with pytest.raises(TopologyError) as info:
        mockkernel.boot(text)
    msg = str(info.value)
    assert msg.startswith("devices[0].driver: 'vfio_pci' is no registered PCI driver"), msg
    assert "(did you mean 'vfio-pci'?)" in msg and "registered: " in msg


def test_an_unknown_driver_in_a_file_names_the_file(tmp_path: Path) -> None:
    """Found at boot, after the file was read: still named, every driver at once."""
    path = tmp_path / "drivers.toml"
    path.write_text(
        _topo(
            DEVICE.format(bdf="0000:01:00.0", group=1, extra='driver = "vfio_pci"'),
            DEVICE.format(bdf="0000:02:00.0", group=2, extra='driver = "nosuch"'),
        )
    )
    with pytest.raises(TopologyError) as info:
        mockkernel.boot(path)
    assert info.value.file == str(path) and len(info.value.errors) == 2
    assert str(info.value).startswith(f"{path}: 2 errors:\n  devices[0].driver: 'vfio_pci'")


def test_an_unknown_driver_comes_with_the_files_other_errors(tmp_path: Path) -> None:
    """One report: the reading's errors and the drivers no plugin registered (those are
    known only from the plugins' modules: a kernel without devices is asked for them)."""
    path = tmp_path / "both.toml"
    path.write_text(
        _topo(
            DEVICE.format(bdf="0000:01:00.0", group=1, extra='driver = "vfio_pci"\nvendr = 1'),
            DEVICE.format(bdf="0000:02:00.0", group=2, extra='driver = "mlx5_core"'),
        )
    )
    with pytest.raises(TopologyError) as info:
        mockkernel.boot(path)
    assert info.value.file == str(path)
    assert [e.key for e in info.value.errors] == ["devices[0].vendr", "devices[0].driver"]
    assert "(did you mean 'vfio-pci'?)" in str(info.value)


def test_without_autoload_an_unknown_driver_is_not_one_of_the_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD", "1")
    path = tmp_path / "both.toml"
    path.write_text(
        DEVICE.format(bdf="0000:01:00.0", group=1, extra='driver = "nosuch"\nvendr = 1')
    )
    with pytest.raises(TopologyError) as info:
        mockkernel.boot(path)
    assert [e.key for e in info.value.errors] == ["devices[0].vendr"]


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--topology", "{path}", "{program}"],
        ["topology", "--file", "{path}"],
    ],
    ids=["run", "topology"],
)
def test_the_command_says_an_unknown_driver_in_one_message(tmp_path: Path, argv: list[str]) -> None:
    """``mockkernel run --topology`` and ``mockkernel topology --file``: exit 2 with the
    file and the drivers named, no traceback (as for the errors found reading it)."""
    path = tmp_path / "drivers.toml"
    path.write_text(DEVICE.format(bdf="0000:01:00.0", group=1, extra='driver = "vfio_pci"'))
    program = tmp_path / "prog.py"
    program.write_text("print('ran')\n")
    args = [a.format(path=path, program=program) for a in argv]
    done = subprocess.run(
        [sys.executable, "-m", "mockkernel", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr.startswith(
        f"mockkernel: error: bad topology: {path}: devices[0].driver: 'vfio_pci' is no"
        " registered PCI driver (did you mean 'vfio-pci'?); registered: "
    ), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_without_autoload_a_device_may_stay_unbound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD", "1")
    text = DEVICE.format(bdf="0000:01:00.0", group=1, extra='driver = "vfio-pci"')
    with mockkernel.boot(text) as kernel:
        assert not kernel.bound


INNER = """
import pytest

@pytest.mark.mockkernel(topology="machines/one.toml")
def test_relative(mock_kernel):
    assert [d.bdf for d in mock_kernel.topology.devices] == ["0000:07:00.0"]
"""


def test_a_marker_path_is_relative_to_the_test_file(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    (tests / "machines").mkdir(parents=True)
    (tests / "machines" / "one.toml").write_text(
        DEVICE.format(bdf="0000:07:00.0", group=1, extra="")
    )
    (tests / "test_inner.py").write_text(INNER)
    run = subprocess.run(  # from elsewhere: the cwd does not matter
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "1 passed" in run.stdout, run.stdout + run.stderr


BAD_INNER = """
import pytest

@pytest.mark.mockkernel(topology="sub/../machines/bad.toml")
def test_bad(mock_kernel):
    pass
"""


def test_a_marker_paths_error_names_the_file_normalised(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    (tests / "machines").mkdir(parents=True)
    (tests / "sub").mkdir()
    (tests / "machines" / "bad.toml").write_text(
        DEVICE.format(bdf="0000:07:00.0", group=1, extra="vendr = 1")
    )
    (tests / "test_bad.py").write_text(BAD_INNER)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout + run.stderr
    assert f"{tests / 'machines' / 'bad.toml'}: devices[0].vendr" in out, out
    assert "/../" not in out, out
