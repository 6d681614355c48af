"""``@mockkernel.with_kernel(...)``: a fresh kernel, installed, for one function call.

The decorated function gets the kernel as its ``kernel`` keyword argument (the
parameter is hidden from the signature pytest sees, so it is not taken for a fixture).
The kernel is shut down afterwards with the leak check -- unless the function raised:
its own error is the report then, the leaks are cleaned up silently.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import Any, TypeVar, overload

from .lifecycle import boot
from .topology import Topology

__all__ = ["with_kernel"]

_F = TypeVar("_F", bound=Callable[..., Any])


@overload
def with_kernel(topology: _F) -> _F: ...


@overload
def with_kernel(
    topology: Topology | str | None = None,
    *,
    uapi: str | None = None,
    plugins: Sequence[object] = (),
    install: bool = True,
    skip: Iterable[str] = (),
    modules: Iterable[ModuleType | str] = (),
) -> Callable[[_F], _F]: ...


def with_kernel(
    topology: Any = None,
    *,
    uapi: str | None = None,
    plugins: Sequence[object] = (),
    install: bool = True,
    skip: Iterable[str] = (),
    modules: Iterable[ModuleType | str] = (),
) -> Any:
    """Decorate a function (or test) to run against a fresh kernel, passed as ``kernel=``.

    :param topology: as :func:`mockkernel.boot` (a ``Topology``, TOML path or text).
    :param install: install the redirection for the call (names bound in loaded
        modules included: ``skip`` and ``modules`` as ``Kernel.install``).

    ``@with_kernel`` without parentheses uses the default topology.
    """
    if callable(topology) and not isinstance(topology, (str, Topology)):
        return with_kernel()(topology)
    skip, modules = tuple(skip), tuple(modules)

    def decorate(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with boot(topology, uapi=uapi, plugins=plugins) as kernel:
                kernel.record_openers = True  # leak reports name the opening line
                if not install:
                    return fn(*args, kernel=kernel, **kwargs)
                with kernel.installed(skip=skip, modules=modules):
                    return fn(*args, kernel=kernel, **kwargs)

        import inspect

        sig = inspect.signature(fn)
        params = [p for name, p in sig.parameters.items() if name != "kernel"]
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
