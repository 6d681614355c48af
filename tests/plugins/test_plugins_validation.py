"""Plugin mistakes surface when the plugin is registered (or its class defined), in one line
naming the plugin, the class and the mistake; a broken third-party plugin is skipped and
listed by ``mockkernel plugins`` while the others load; the conformance kit records a
harness's exception as that check's failure."""

from __future__ import annotations

import errno
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mockkernel
from mockkernel.dma_buf import (
    DmaBufAttachOps,
    DmaBufOps,
    dma_buf_detach,
    dma_buf_dynamic_attach,
    dma_buf_export,
    dma_buf_get,
    dma_buf_put,
)
from mockkernel.driver import DriverRegistry, Kernel
from mockkernel.plugins import ENTRY_POINT_GROUP, PluginError, get_plugin_manager
from mockkernel.testing.conformance import CHECKS, DmaResult, run_conformance

pytestmark = pytest.mark.usefixtures("clean_plugin_env")

EnvFactory = Callable[..., dict[str, str]]


def _one_line(e: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(e.value)
    assert "\n" not in text, text
    return text


def test_a_misspelled_hook_names_the_plugin_and_the_hook_meant() -> None:
    class Typo:
        def mockkernel_regster(self, registry: DriverRegistry) -> None:  # sic, not even marked
            raise AssertionError("never called")

    with pytest.raises(PluginError) as e:
        get_plugin_manager([Typo()])
    line = _one_line(e)
    assert "Typo" in line and "'mockkernel_regster'" in line
    assert "did you mean 'mockkernel_register'" in line


def test_a_wrong_hook_signature_is_one_line() -> None:
    class WrongArg:
        @mockkernel.hookimpl
        def mockkernel_shutdown(self, kernal: Kernel) -> None:  # sic
            raise AssertionError("never called")

    with pytest.raises(PluginError) as e:
        mockkernel.boot(plugins=[WrongArg()])
    line = _one_line(e)
    assert "WrongArg" in line and "'kernal'" in line and "did you mean 'kernel'" in line


class _NoRemove:
    name = "noremove"

    def probe(self, kernel: Kernel, pdev: Any) -> None:
        pass

    def remve(self, kernel: Kernel, pdev: Any) -> None:  # sic
        pass


class _BadProbe:
    name = "badprobe"

    def probe(self, kernel: Kernel) -> None:
        pass

    def remove(self, kernel: Kernel, pdev: Any) -> None:
        pass


class _Registers:
    def __init__(self, driver: object) -> None:
        self.driver = driver

    @mockkernel.hookimpl
    def mockkernel_register(self, registry: DriverRegistry) -> None:
        registry.add_pci_driver(self.driver)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("driver", "expect"),
    [
        (_NoRemove(), "no remove(kernel, pdev) method (did you mean 'remve'?)"),
        (_BadProbe(), "probe(kernel) cannot be called as probe(kernel, pdev)"),
    ],
)
def test_a_pci_driver_that_could_not_work_fails_at_boot(driver: object, expect: str) -> None:
    with pytest.raises(PluginError) as e:
        mockkernel.boot(plugins=[_Registers(driver)])
    line = _one_line(e)
    assert expect in line, line
    assert type(driver).__qualname__ in line and "plugin '" in line, line


def test_an_exporter_without_map_dma_buf_is_einval_naming_the_class() -> None:
    class NoMap(DmaBufOps):
        def unmap_dma_buf(self, attach: Any, sgt: Any, direction: int) -> None:
            pass

        def release(self, dmabuf: Any) -> None:
            pass

    with mockkernel.boot() as kernel:
        with pytest.raises(OSError) as e:
            dma_buf_export(kernel, NoMap(), 4096, object(), "noexp")
        assert e.value.errno == errno.EINVAL
        assert "NoMap" in str(e.value) and "missing map_dma_buf" in str(e.value)
        kernel.warnings.clear()  # (the WARN is the kernel's; it is what was tested)


def test_a_misspelled_op_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(
        TypeError, match=r"'invalidate_mapping' is not an op .*'invalidate_mappings'"
    ):

        class Importer(DmaBufAttachOps):
            allow_peer2peer = True

            def invalidate_mapping(self, attach: Any) -> None:  # sic
                pass

    with pytest.raises(TypeError, match="did you mean 'map_dma_buf'"):

        class Exporter(DmaBufOps):
            def map_dmabuf(self, attach: Any, direction: int) -> None:  # sic
                pass

    class Fine(DmaBufAttachOps):  # helpers that are no near-miss stay allowed
        def invalidate_all(self) -> None:
            pass


BROKEN = "raise ImportError('needs libfoo')\n"


def test_a_broken_third_party_plugin_is_skipped_and_listed(
    tmp_path: Path, subprocess_env: EnvFactory
) -> None:
    site = tmp_path / "site"
    (site / "mk_broken_plugin").mkdir(parents=True)
    (site / "mk_broken_plugin" / "__init__.py").write_text(BROKEN)
    info = site / "mk_broken_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mk-broken-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nmkbroken = mk_broken_plugin\n")
    env = subprocess_env(path=str(site))
    listing = subprocess.run(
        [sys.executable, "-m", "mockkernel", "plugins"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 1
    lines = dict(line.split("\t", 1) for line in listing.stdout.splitlines())
    assert lines["mkbroken"] == "NOT LOADED: ImportError: needs libfoo"
    assert lines["udmabuf"].startswith("mockkernel "), "the others still load"
    boot = subprocess.run(
        [sys.executable, "-c", "import mockkernel; mockkernel.boot().shutdown(); print('ok')"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert boot.stdout.strip() == "ok", boot.stderr
    assert len(boot.stderr.splitlines()) == 1, boot.stderr  # one line, no source under it
    assert "'mkbroken' not loaded: ImportError: needs libfoo" in boot.stderr


class _BuggyHarness:
    """A harness whose import raises a plain Python error."""

    name = "buggy"
    revocable = True

    def setup(self, kernel: Kernel) -> None:
        pass

    def import_fd(self, fd: int, length: int) -> Any:
        return {}["no such key"]

    def dma_write(self, handle: Any, offset: int, data: bytes) -> DmaResult:
        return DmaResult(False)

    def release(self, handle: Any) -> None:
        pass

    def teardown(self) -> None:
        pass


def test_a_harness_exception_is_that_checks_failure(mock_kernel: Kernel) -> None:
    report = run_conformance(mock_kernel, _BuggyHarness())
    assert set(report.results) == set(CHECKS), "every check ran"
    sym = report.results["attach_detach_symmetry"]
    assert sym.startswith("FAIL: the harness raised KeyError: 'no such key'"), sym
    assert "in import_fd" in sym and "test_plugins_validation.py" in sym


class _NoInvalidate(DmaBufAttachOps):
    """A dynamic importer that forgot ``invalidate_mappings`` (not misspelled: absent)."""

    allow_peer2peer = True


class _Dev:
    name = "0000:05:00.0"


class _ForgotInvalidate:
    """Says it is revocable; its attachment passes no ``invalidate_mappings``."""

    name = "forgot"
    revocable = True

    def setup(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def import_fd(self, fd: int, length: int) -> Any:
        dmabuf = dma_buf_get(fd, self.kernel.init_process)
        try:
            return dma_buf_dynamic_attach(dmabuf, _Dev(), _NoInvalidate())
        finally:
            dma_buf_put(dmabuf)

    def dma_write(self, handle: Any, offset: int, data: bytes) -> DmaResult:
        return DmaResult(False)

    def release(self, handle: Any) -> None:
        dma_buf_detach(handle.dmabuf, handle)

    def teardown(self) -> None:
        pass


def test_a_revocable_importer_without_invalidate_mappings_is_named(mock_kernel: Kernel) -> None:
    """The refusal the exporter gives (``EOPNOTSUPP``) comes with what to look at."""
    report = run_conformance(mock_kernel, _ForgotInvalidate())
    sym = report.results["attach_detach_symmetry"]
    assert sym.startswith("FAIL: unexpected OSError: [Errno 95]"), sym
    assert sym.endswith(
        "-- the harness says revocable=True, but the exporter found no invalidate_mappings"
        " (or no allow_peer2peer) on the importer's DmaBufAttachOps: is the op misspelled?"
    ), sym
    assert "\n" not in sym
