"""pytest plugin (entry point ``pytest11``): fixtures that boot and install a kernel.

* ``mock_kernel`` -- a kernel on the default topology, installed for the test
  (the test module's own ``from fcntl import ioctl`` style names are rebound
  too); shut down afterwards, and anything leaked fails the test.
  ``@pytest.mark.mockkernel(topology=..., uapi=...)`` changes what it boots.
* ``mock_kernel_factory`` -- ``factory(topology=None, uapi=None, install=False,
  plugins=())`` boots further kernels (custom topologies, several at once, extra
  plugins such as one that registers a uAPI profile); each is shut down, with the
  leak check, at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from ..kernel import Kernel
from ..lifecycle import boot


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mockkernel(topology=None, uapi=None): how the mock_kernel fixture boots",
    )


@pytest.fixture
def mock_kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    marker = request.node.get_closest_marker("mockkernel")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    kernel = boot(kwargs.pop("topology", None), uapi=kwargs.pop("uapi", None))
    if kwargs:
        kernel.shutdown(check=False)
        raise TypeError(f"unknown mockkernel marker arguments: {sorted(kwargs)}")
    module = getattr(request, "module", None)
    redir = kernel.install(rebind=[module] if module is not None else [])
    redir.install()
    try:
        yield kernel
    finally:
        redir.uninstall()
        kernel.shutdown(check=True)


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
            redir.install()
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
