"""pytest plugin (entry point ``pytest11``): fixtures that boot and install a kernel.

* ``mock_kernel`` -- a kernel on the default topology, installed for the test; shut
  down afterwards, and anything leaked fails the test (once: a test that already failed
  is not reported again for its leaks).  Names bound at import in any loaded module
  (``from fcntl import ioctl`` in the library under test) are redirected too, except in
  the standard library, mockkernel's own modules, the test machinery and the modules
  listed in the ``mockkernel_skip_modules`` ini option or the marker's ``skip_modules``.
  ``@pytest.mark.mockkernel(topology=..., uapi=..., modules=[...], skip_modules=[...])``
  changes what it boots and rebinds; a relative ``topology`` path is relative to the
  test file.
* ``mock_kernel_factory`` -- ``factory(topology=None, uapi=None, install=False,
  plugins=())`` boots further kernels (custom topologies, several at once, extra
  plugins such as one that registers a uAPI profile); each is shut down, with the
  leak check, at teardown.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ..errors import LeakError, hide_kernel_frames, kernel_frame
from ..kernel import Kernel
from ..lifecycle import boot
from ..plugins import AUTOLOAD_ENV, NAMES_ENV
from ..topology import Topology, topology_file

_MARKER_KEYS = ("topology", "uapi", "modules", "skip_modules")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "mockkernel_skip_modules",
        "modules (and their submodules) whose names the mock_kernel fixture never rebinds",
        type="linelist",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mockkernel(topology=None, uapi=None, modules=(), skip_modules=()): how the "
        "mock_kernel fixture boots, and which modules' names it rebinds (or leaves)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether the test body failed, so the fixture reports leaks only once; an
    ``OSError`` the mock kernel answered shows the test's frames only (``--full-trace``
    or ``MOCKKERNEL_FULL_TRACEBACK=1`` show everything)."""
    excinfo = call.excinfo
    if (
        excinfo is not None
        and not item.config.getoption("fulltrace", False)
        and hide_kernel_frames(excinfo.value)
    ):
        excinfo.traceback = excinfo.traceback.filter(lambda e: not kernel_frame(e.frame.raw))
    report = yield
    if call.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()
#: the session's boot templates: what the first boot of each topology parsed (see
#: :func:`_boot_for_test`), by :func:`_template_key`, with the topology argument itself
#: (kept alive: a ``Topology`` is keyed by its identity)
_TEMPLATES = pytest.StashKey[dict[Hashable, tuple[object, Topology, int | None]]]()


def _template_key(topology: Any, uapi: str | None) -> Hashable | None:
    """What a boot template is keyed by: the topology's content -- TOML text, or a file's
    name and text (read again for every test: an edited file is a new template); a
    ``Topology`` (deeply frozen) by its identity, which is cheaper than hashing it --
    the ``uapi`` override and the plugin settings (a change of the plugin set makes new
    templates).  ``None``: no template (an unreadable file: ``boot`` says what is
    wrong)."""
    plugins = (os.environ.get(AUTOLOAD_ENV), os.environ.get(NAMES_ENV))
    base: Hashable
    if topology is None:
        base = None
    elif isinstance(topology, Topology):
        base = ("object", id(topology))
    elif isinstance(topology, (str, os.PathLike)):
        file = topology_file(topology)
        if file is None:
            base = ("toml", topology)
        else:
            try:
                base = ("file", file, Path(file).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                return None
    else:
        return None
    return (base, uapi, plugins)


def _boot_for_test(config: pytest.Config, topology: Any, uapi: str | None) -> Kernel:
    """A kernel for one test.  The first time a topology boots in the session it boots
    now (so a topology or driver error fails there, at setup, naming the file) and what
    it parsed becomes that topology's template; afterwards each test boots from the
    template (no file read into a topology again, no TOML parsed) with its boot deferred
    to its first use (``boot(lazy=True)``) and its driver probes deferred until something
    could see them (``probe_ids``, :meth:`Kernel.defer_probes`): a test that never
    touches its kernel does not pay for a boot, one that only opens ``/dev/udmabuf``
    not for the probes, one that does more gets the same kernel, its own."""
    key = _template_key(topology, uapi)
    if key is None:
        return boot(topology, uapi=uapi)
    templates = config.stash.setdefault(_TEMPLATES, {})
    entry = templates.get(key)
    if entry is not None:
        return boot(entry[1], lazy=True, probe_ids=entry[2])
    kernel = boot(topology, uapi=uapi)
    # (the uapi override applied; the ids its probes took, so later boots defer them)
    templates[key] = (topology, kernel.topology, kernel.probe_ids)
    return kernel


def _topology_arg(value: Any, request: pytest.FixtureRequest) -> Any:
    """A relative topology path is relative to the test file (TOML text is left alone;
    a path found only from the current directory still works there)."""
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        is_path = (
            not isinstance(value, str)
            or text.endswith(".toml")
            or not any(c in text for c in "\n=[#")
        )
        if is_path and not os.path.isabs(text):
            beside = Path(os.path.normpath(Path(request.node.path).parent / text))
            if beside.exists() or not os.path.exists(text):
                return beside  # (normalised: errors name "tests/machines/x.toml")
    return value


@pytest.fixture
def mock_kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    marker = request.node.get_closest_marker("mockkernel")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    unknown = sorted(set(kwargs) - set(_MARKER_KEYS))
    if unknown:
        raise TypeError(
            f"unknown mockkernel marker arguments: {unknown} (known: {', '.join(_MARKER_KEYS)})"
        )
    topology, uapi = _topology_arg(kwargs.get("topology"), request), kwargs.get("uapi")
    kernel = _boot_for_test(request.config, topology, uapi)
    skip = [*request.config.getini("mockkernel_skip_modules"), *kwargs.get("skip_modules", ())]
    module = getattr(request, "module", None)
    modules = [*kwargs.get("modules", ()), *([module] if module is not None else [])]
    try:
        redir = kernel.install(skip=skip, modules=modules)
    except BaseException:
        kernel.shutdown(check=False)
        raise
    kernel.record_openers = True
    try:
        yield kernel
    finally:
        redir.uninstall()
        leaks = kernel.shutdown(check=False)
        if leaks:
            message = str(LeakError(leaks))
            if request.node.stash.get(_FAILED, False):  # the failure is the news: once
                request.node.add_report_section("teardown", "mockkernel leaks", message)
            else:  # the message alone: no fixture or shutdown source
                pytest.fail(message, pytrace=False)


@pytest.fixture
def mock_kernel_factory() -> Iterator[Callable[..., Kernel]]:
    made: list[tuple[Kernel, Any]] = []

    def factory(
        topology: Any = None,
        uapi: str | None = None,
        install: bool = False,
        plugins: Sequence[object] = (),
    ) -> Kernel:
        kernel = boot(topology, uapi=uapi, plugins=plugins)
        redir = None
        if install:
            redir = kernel.install()
        made.append((kernel, redir))
        return kernel

    yield factory
    errors: list[BaseException] = []
    for kernel, redir in reversed(made):
        if redir is not None:
            redir.uninstall()
        try:
            kernel.shutdown(check=True)
        except BaseException as e:  # report every kernel, then fail
            errors.append(e)
    if errors:
        raise errors[0]
