"""Plugin discovery and the hooks: entry points, the environment switches, ``boot(plugins=)``.

A third-party plugin is a real distribution here: a package plus a ``*.dist-info``
with ``entry_points.txt`` in a directory on ``sys.path`` of a child process, which
``importlib.metadata`` finds exactly as it finds a ``pip install``-ed one.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

import mockkernel
from mockkernel.driver import DriverRegistry, File, FileOperations, Kernel, put_user_u32
from mockkernel.ioctl import _IOR
from mockkernel.plugins import ENTRY_POINT_GROUP, get_plugin_manager

pytestmark = pytest.mark.usefixtures("clean_plugin_env")

EnvFactory = Callable[..., dict[str, str]]

DEMO_GET_MAGIC = _IOR("Z", 1, 4)
DEMO_MAGIC = 0x600DF00D


def has_dev(kernel: Kernel, name: str) -> bool:
    return kernel.vfs.peek(f"/dev/{name}") is not None  # (a missing /dev name: ENOENT)


def plugin_names(kernel: Kernel) -> set[str]:
    return {str(name) for name, _ in kernel.plugin_manager.list_name_plugin()}


# -- the environment switches --------------------------------------------------------------
def test_bundled_udmabuf_is_found_through_the_entry_point_group() -> None:
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert eps.get("udmabuf") == "mockkernel_udmabuf"
    kernel = mockkernel.boot()
    try:
        assert "udmabuf" in plugin_names(kernel)
        assert has_dev(kernel, "udmabuf")
    finally:
        kernel.shutdown()


def test_disable_autoload_loads_no_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD", "1")
    kernel = mockkernel.boot()
    try:
        assert plugin_names(kernel) == set()
        assert not has_dev(kernel, "udmabuf")
        with kernel.install(), pytest.raises(FileNotFoundError):
            os.open("/dev/udmabuf", os.O_RDWR)
    finally:
        kernel.shutdown()


def test_named_plugins_come_back_when_autoload_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("MOCKKERNEL_PLUGINS", "udmabuf")
    kernel = mockkernel.boot()
    try:
        assert plugin_names(kernel) == {"udmabuf"}
        assert has_dev(kernel, "udmabuf")
    finally:
        kernel.shutdown()


def test_an_unknown_named_plugin_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("MOCKKERNEL_PLUGINS", "udmabuf,no-such-driver")
    with pytest.raises(LookupError, match="no-such-driver"):
        mockkernel.boot()


def test_switches_are_read_at_each_boot(monkeypatch: pytest.MonkeyPatch) -> None:
    """The manager is cached per environment, never across a change of it."""
    monkeypatch.setenv("MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD", "1")
    off = mockkernel.boot()
    off.shutdown()
    monkeypatch.delenv("MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD")
    on = mockkernel.boot()
    try:
        assert has_dev(on, "udmabuf") and not has_dev(off, "udmabuf")
    finally:
        on.shutdown()


# -- boot(plugins=[obj]) ---------------------------------------------------------------------
def _get_magic(file: File, cmd: int, arg: int) -> int:
    put_user_u32(arg, DEMO_MAGIC)
    return 0


class DemoOps(FileOperations):
    name = "mkdemo"
    ioctls = {DEMO_GET_MAGIC: _get_magic}


class Recorder:
    """A plugin object: a module that makes ``/dev/mkdemo``, and every hook recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.kernels: list[Kernel] = []

    @mockkernel.hookimpl
    def mockkernel_register(self, registry: DriverRegistry) -> None:
        self.calls.append("register")
        assert not has_dev(registry.kernel, "mkdemo")
        registry.add_module("mkdemo", self._init, self._exit)

    def _init(self, kernel: Kernel) -> None:
        self.calls.append("init")
        kernel.misc_register("mkdemo", DemoOps())

    def _exit(self, kernel: Kernel) -> None:
        self.calls.append("exit")
        kernel.misc_deregister("mkdemo")

    @mockkernel.hookimpl
    def mockkernel_boot(self, kernel: Kernel) -> None:
        self.calls.append("boot")
        self.kernels.append(kernel)
        assert has_dev(kernel, "mkdemo")

    @mockkernel.hookimpl
    def mockkernel_shutdown(self, kernel: Kernel) -> None:
        self.calls.append("shutdown")
        assert kernel is self.kernels[-1]
        assert has_dev(kernel, "mkdemo")  # before module exit


def test_boot_registers_an_extra_plugin_object() -> None:
    rec = Recorder()
    kernel = mockkernel.boot(plugins=[rec])
    assert rec.calls == ["register", "init", "boot"]
    assert rec.kernels == [kernel]
    assert "udmabuf" in plugin_names(kernel)  # the entry-point plugins stay
    try:
        with kernel.install():
            fd = os.open("/dev/mkdemo", os.O_RDWR)
            try:
                buf = bytearray(4)
                assert fcntl.ioctl(fd, DEMO_GET_MAGIC, buf) == 0
                assert int.from_bytes(buf, "little") == DEMO_MAGIC
            finally:
                os.close(fd)
    finally:
        kernel.shutdown()
    assert rec.calls == ["register", "init", "boot", "shutdown", "exit"]
    kernel.shutdown()  # a second shutdown runs no hook
    assert rec.calls.count("shutdown") == 1
    assert not has_dev(kernel, "mkdemo")


def test_an_extra_plugin_is_only_in_its_own_boot() -> None:
    rec = Recorder()
    with_it = mockkernel.boot(plugins=[rec])
    without = mockkernel.boot()
    try:
        assert has_dev(with_it, "mkdemo")
        assert not has_dev(without, "mkdemo")
        assert rec.calls == ["register", "init", "boot"]
    finally:
        without.shutdown()
        with_it.shutdown()


def test_a_module_can_be_a_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mk_modplugin.py").write_text(
        textwrap.dedent(
            """
            import mockkernel

            seen = []

            @mockkernel.hookimpl
            def mockkernel_boot(kernel):
                seen.append(kernel)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import mk_modplugin  # type: ignore[import-not-found]

    kernel = mockkernel.boot(plugins=[mk_modplugin])
    try:
        assert mk_modplugin.seen == [kernel]
    finally:
        kernel.shutdown()


def test_plugin_with_a_typod_hook_name_is_rejected() -> None:
    class Typo:
        @mockkernel.hookimpl
        def mockkernel_regster(self, registry: DriverRegistry) -> None:  # sic
            raise AssertionError("never called")

    with pytest.raises(pluggy.PluginValidationError, match="unknown hook 'mockkernel_regster'"):
        mockkernel.boot(plugins=[Typo()])
    with pytest.raises(pluggy.PluginValidationError):
        get_plugin_manager([Typo()])


def test_plugin_asking_for_an_argument_the_hook_lacks_is_rejected() -> None:
    class WrongArg:
        @mockkernel.hookimpl
        def mockkernel_boot(self, krnl: Kernel) -> None:  # sic
            raise AssertionError("never called")

    with pytest.raises(pluggy.PluginValidationError, match="krnl"):
        mockkernel.boot(plugins=[WrongArg()])


def test_a_failing_boot_hook_fails_boot_and_shuts_down() -> None:
    class Broken(Recorder):
        @mockkernel.hookimpl
        def mockkernel_boot(self, kernel: Kernel) -> None:
            super().mockkernel_boot(kernel)
            raise RuntimeError("boot hook failed")

    rec = Broken()
    with pytest.raises(RuntimeError, match="boot hook failed"):
        mockkernel.boot(plugins=[rec])
    # the half-booted kernel was shut down: hooks and module exit ran
    assert rec.calls == ["register", "init", "boot", "shutdown", "exit"]
    assert rec.kernels[0].is_shut_down


# -- a third-party plugin, installed -----------------------------------------------------------
DEMO_PLUGIN = '''
"""A third-party mockkernel driver: /dev/mkdemo answers one ioctl."""
import mockkernel
from mockkernel.driver import FileOperations, put_user_u32
from mockkernel.ioctl import _IOR

DEMO_GET_MAGIC = _IOR("Z", 1, 4)


def get_magic(file, cmd, arg):
    put_user_u32(arg, 0x600DF00D)
    return 0


class DemoOps(FileOperations):
    name = "mkdemo"
    ioctls = {DEMO_GET_MAGIC: get_magic}


@mockkernel.hookimpl
def mockkernel_register(registry):
    registry.add_module(
        "mkdemo",
        lambda k: k.misc_register("mkdemo", DemoOps()),
        lambda k: k.misc_deregister("mkdemo"),
    )
'''

USE_DEMO = """
import fcntl, os
import mockkernel
from mk_demo_plugin import DEMO_GET_MAGIC

k = mockkernel.boot()
with k.install():
    fd = os.open("/dev/mkdemo", os.O_RDWR)
    buf = bytearray(4)
    fcntl.ioctl(fd, DEMO_GET_MAGIC, buf)
    os.close(fd)
k.shutdown()
print(hex(int.from_bytes(buf, "little")))
"""


@pytest.fixture
def demo_site(tmp_path: Path) -> Path:
    """A directory holding an "installed" distribution ``mk-demo-plugin`` 1.0."""
    site = tmp_path / "site"
    pkg = site / "mk_demo_plugin"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(DEMO_PLUGIN)
    info = site / "mk_demo_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mk-demo-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nmkdemo = mk_demo_plugin\n")
    (info / "top_level.txt").write_text("mk_demo_plugin\n")
    return site


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def _listed(stdout: str) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in stdout.splitlines() if "\t" in line)


def test_third_party_plugin_is_discovered(demo_site: Path, subprocess_env: EnvFactory) -> None:
    listed = _listed(
        _run(["-m", "mockkernel", "plugins"], subprocess_env(path=str(demo_site))).stdout
    )
    assert listed.get("mkdemo") == "mk-demo-plugin 1.0"
    assert listed.get("udmabuf", "").startswith("mockkernel ")
    # and without it on the path, it is not there
    assert "mkdemo" not in _listed(_run(["-m", "mockkernel", "plugins"], subprocess_env()).stdout)


def test_third_party_plugin_drives_a_device(demo_site: Path, subprocess_env: EnvFactory) -> None:
    out = _run(["-c", USE_DEMO], subprocess_env(path=str(demo_site))).stdout
    assert out.strip() == hex(DEMO_MAGIC)


def test_third_party_plugin_obeys_the_switches(demo_site: Path, subprocess_env: EnvFactory) -> None:
    off = _run(
        ["-m", "mockkernel", "plugins"],
        subprocess_env(path=str(demo_site), MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD="1"),
    )
    assert "no plugins loaded" in off.stdout
    assert not _listed(off.stdout)
    only = _run(
        ["-m", "mockkernel", "plugins"],
        subprocess_env(
            path=str(demo_site), MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD="1", MOCKKERNEL_PLUGINS="mkdemo"
        ),
    )
    assert set(_listed(only.stdout)) == {"mkdemo"}
