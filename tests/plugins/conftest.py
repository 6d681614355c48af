"""The plugin-system tests: ``pytester`` here, and nowhere else in the suite.

``pytest_plugins = ["pytester"]`` is only allowed in the rootdir's conftest (pytest
refuses it in a conftest below the rootdir when the whole suite runs), so this conftest
loads the plugin itself when pytest imports it -- that is, only when a test under
``tests/plugins/`` is collected.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # conftests imported during collection get pytest_configure at import (historic hook)
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


@pytest.fixture
def clean_plugin_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ``MOCKKERNEL_*`` plugin switches from the outer environment."""
    monkeypatch.delenv("MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("MOCKKERNEL_PLUGINS", raising=False)
    yield


@pytest.fixture
def subprocess_env() -> Callable[..., dict[str, str]]:
    """A factory for a child's environment: this one without the plugin switches.

    ``make(path=DIR, NAME=VALUE, ...)``: ``DIR`` goes first on ``PYTHONPATH``; the
    keyword arguments are set as variables.
    """

    def make(path: str | None = None, **extra: str) -> dict[str, str]:
        drop = ("MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD", "MOCKKERNEL_PLUGINS")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        if path is not None:
            old = env.get("PYTHONPATH")
            env["PYTHONPATH"] = path if not old else path + os.pathsep + old
        env.update(extra)
        return env

    return make
