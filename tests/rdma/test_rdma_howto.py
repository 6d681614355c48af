"""``docs/importer-howto.md`` works as written: its plugin, installed through the entry-point
group (a ``.dist-info`` with its ``pyproject.toml``'s entry points, on ``PYTHONPATH``), is
found by ``mockkernel plugins`` and passes the conformance suite with its test file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "importer-howto.md"


def _files() -> dict[str, str]:
    out = {}
    for block in re.findall(r"```(?:python|toml)\n(.*?)```", DOC.read_text(), re.S):
        first, _, rest = block.partition("\n")
        m = re.fullmatch(r"# file: (\S+)", first.strip())
        if m:
            out[m.group(1)] = rest
    return out


def _install(files: dict[str, str], site: Path) -> None:
    """What ``pip install`` leaves behind: the module and its ``.dist-info``."""
    site.mkdir()
    (site / "mockkernel_dmaengine.py").write_text(files["mockkernel_dmaengine.py"])
    project = tomllib.loads(files["pyproject.toml"])["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    eps = project["entry-points"]["mockkernel"]
    (info / "entry_points.txt").write_text(
        "[mockkernel]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
    )


def test_howto_plugin_installs_and_conforms(tmp_path: Path) -> None:
    files = _files()
    assert set(files) == {"mockkernel_dmaengine.py", "pyproject.toml", "test_dmaengine.py"}
    site = tmp_path / "site"
    _install(files, site)
    (tmp_path / "test_dmaengine.py").write_text(files["test_dmaengine.py"])
    # the tree under test comes first (an editable install may point at another checkout)
    path = os.pathsep.join([str(site), str(REPO), str(REPO / "plugins")])
    env = dict(os.environ, PYTHONPATH=path)
    env.pop("MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD", None)
    env.pop("MOCKKERNEL_PLUGINS", None)
    plugins = subprocess.run(
        [sys.executable, "-m", "mockkernel", "plugins"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "dmaengine\tmockkernel-dmaengine 0.1.0" in plugins.stdout
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "test_dmaengine.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    expected = re.search(r"prints, for this engine:\n\n```\n(.*?)```", DOC.read_text(), re.S)
    assert expected is not None
    assert expected.group(1) in run.stdout


def test_the_howtos_pyproject_builds_as_setuptools_reads_it(tmp_path: Path) -> None:
    """``pip install -e .`` of the how-to's directory: setuptools' metadata step (the one
    that refused the flat layout of a plugin beside its test) succeeds and declares the
    entry point; the test file is not installed."""
    import importlib.util

    import pytest

    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed (pip fetches it in a real install)")
    for name, text in _files().items():
        (tmp_path / name).write_text(text)
    done = subprocess.run(  # (egg_info: the metadata step, without the wheel package)
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "egg_info"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    info = tmp_path / "mockkernel_dmaengine.egg-info"
    assert (info / "entry_points.txt").read_text().split() == [
        "[mockkernel]",
        "dmaengine",
        "=",
        "mockkernel_dmaengine",
    ]
    assert (info / "top_level.txt").read_text().split() == ["mockkernel_dmaengine"]
