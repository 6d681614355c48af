"""The out-of-tree bytecode cache (``mockkernel/bytecache.py``): it serves mockkernel's
modules with ``PYTHONDONTWRITEBYTECODE=1``, notices an edited source, writes atomically,
and is switched off by ``MOCKKERNEL_BYTECODE_CACHE=off``."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mockkernel.bytecache import CachingLoader, MockkernelFinder, cache_dir

PROBE = """
import sys
import mockkernel_bcprobe
print(type(mockkernel_bcprobe.__spec__.loader).__name__, mockkernel_bcprobe.VALUE)
"""


def _run(tmp_path: Path, cache: str, probe: str = PROBE, first: str = "import mockkernel") -> str:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", MOCKKERNEL_BYTECODE_CACHE=cache)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", first + "\n" + probe],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def test_a_module_is_compiled_once_and_served_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    src = tmp_path / "mockkernel_bcprobe.py"
    src.write_text("VALUE = 1\n")
    assert _run(tmp_path, str(cache)) == "CachingLoader 1"
    entries = list(cache.rglob("*mockkernel_bcprobe.pyc"))
    assert len(entries) == 1 and not (tmp_path / "__pycache__").exists()
    # the entry is what the next interpreter runs: replace its code, keep its header
    header = entries[0].read_bytes()[:20]  # magic number, mtime_ns, size

    entries[0].write_bytes(header + marshal.dumps(compile("VALUE = 'cached'", str(src), "exec")))
    assert _run(tmp_path, str(cache)) == "CachingLoader cached"


def test_an_edited_source_is_compiled_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    src = tmp_path / "mockkernel_bcprobe.py"
    src.write_text("VALUE = 1\n")
    assert _run(tmp_path, str(cache)) == "CachingLoader 1"
    src.write_text("VALUE = 22\n")  # another size (and mtime)
    assert _run(tmp_path, str(cache)) == "CachingLoader 22"
    st = src.stat()
    src.write_text("VALUE = 33\n")  # same size, the mtime alone differs
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert _run(tmp_path, str(cache)) == "CachingLoader 33"


def test_a_corrupt_entry_is_replaced(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (tmp_path / "mockkernel_bcprobe.py").write_text("VALUE = 5\n")
    assert _run(tmp_path, str(cache)) == "CachingLoader 5"
    (entry,) = cache.rglob("*mockkernel_bcprobe.pyc")
    entry.write_bytes(entry.read_bytes()[:30])  # the header, then garbage
    assert _run(tmp_path, str(cache)) == "CachingLoader 5"
    assert entry.stat().st_size > 30


def test_switched_off_python_loads_as_usual(tmp_path: Path) -> None:
    (tmp_path / "mockkernel_bcprobe.py").write_text("VALUE = 7\n")
    assert _run(tmp_path, "off") == "SourceFileLoader 7"


def test_an_unwritable_cache_only_means_no_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    (tmp_path / "mockkernel_bcprobe.py").write_text("VALUE = 8\n")
    assert _run(tmp_path, str(blocker / "cache")) == "CachingLoader 8"


def test_other_modules_and_the_pytest_plugin_are_not_ours(tmp_path: Path) -> None:
    finder = MockkernelFinder(str(tmp_path))
    assert finder.find_spec("json", None) is None
    assert finder.find_spec("mockkernel.testing.pytest_plugin", None) is None
    spec = finder.find_spec("mockkernel_udmabuf", None)
    assert spec is not None and isinstance(spec.loader, CachingLoader)


def test_writes_are_atomic_renames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader never sees a half-written entry: the data goes to a private temporary
    file first, and only a rename makes it the entry."""
    src = tmp_path / "mockkernel_probe2.py"
    src.write_text("X = 1\n")
    loader = CachingLoader("mockkernel_probe2", str(src), str(tmp_path / "c"))
    seen: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(a: str, b: str) -> None:
        assert not os.path.exists(b)  # the entry appears only by the rename
        seen.append((a, b))
        real_replace(a, b)

    monkeypatch.setattr("mockkernel.bytecache._replace", replace)
    code = loader.get_code("mockkernel_probe2")
    assert code is not None
    ((tmp, entry),) = seen
    assert tmp != entry and str(os.getpid()) in tmp and not os.path.exists(tmp)
    assert entry == loader.entry(str(src)) and os.path.exists(entry)


def test_the_directory_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCKKERNEL_BYTECODE_CACHE", "/x/y")
    assert cache_dir() == os.path.join("/x/y", sys.implementation.cache_tag)
    monkeypatch.setenv("MOCKKERNEL_BYTECODE_CACHE", "OFF")
    assert cache_dir() is None
    monkeypatch.delenv("MOCKKERNEL_BYTECODE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert cache_dir() == os.path.join("/xdg/mockkernel/bytecode", sys.implementation.cache_tag)


def test_a_mockkernel_module_runs_from_the_cache_in_a_fresh_interpreter(tmp_path: Path) -> None:
    probe = textwrap.dedent("""
        import mockkernel.kernel as k
        print(type(k.__spec__.loader).__name__, k.__spec__.cached.endswith("kernel.pyc"))
    """)
    cache = str(tmp_path / "cache")
    _run(tmp_path, cache, probe)
    assert _run(tmp_path, cache, probe) == "CachingLoader True"


LIST_PLUGINS = """
import sys
from mockkernel.plugins import get_plugin_manager, plugin_names
names = [n for n, _ in plugin_names(get_plugin_manager())]
print(",".join(sorted(names)), "importlib.metadata" in sys.modules)
"""


def _site_with(tmp_path: Path, name: str) -> None:
    """An "installed" distribution ``name`` 1.0 providing one plugin in ``tmp_path``."""
    (tmp_path / f"{name}.py").write_text("def mockkernel_register(registry):\n    pass\n")
    info = tmp_path / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[mockkernel]\n{name} = {name}\n")


def test_plugin_discovery_is_cached_and_notices_installs(tmp_path: Path) -> None:
    """The second interpreter finds the plugins without ``importlib.metadata``; a
    distribution installed on the path, or an edited ``entry_points.txt`` of a listed
    one, is noticed."""
    cache = str(tmp_path / "cache")
    first = _run(tmp_path, cache, LIST_PLUGINS)
    assert first.endswith(" True") and "udmabuf" in first
    assert _run(tmp_path, cache, LIST_PLUGINS) == first.replace(" True", " False")
    _site_with(tmp_path, "mkcached_one")  # installed: a new dist-info on sys.path
    got = _run(tmp_path, cache, LIST_PLUGINS)
    assert "mkcached_one" in got and got.endswith(" True")
    assert _run(tmp_path, cache, LIST_PLUGINS).endswith(" False")
    (tmp_path / "unrelated.txt").write_text("")  # a file written on the path: still valid
    assert _run(tmp_path, cache, LIST_PLUGINS).endswith(" False")
    eps = tmp_path / "mkcached_one-1.0.dist-info" / "entry_points.txt"
    eps.write_text("[mockkernel]\nmkcached_two = mkcached_one\n")  # edited in place
    st = eps.stat()
    os.utime(eps, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    got = _run(tmp_path, cache, LIST_PLUGINS)
    assert "mkcached_two" in got and "mkcached_one" not in got.split()[0].split(",")
    assert _run(tmp_path, cache, LIST_PLUGINS).split()[0] == got.split()[0]
    assert "udmabuf" in _run(tmp_path, "off", LIST_PLUGINS)


COUNT_COMPILES = """
import builtins, sys
compiled = []
real = builtins.compile
def counting(src, name, *a, **k):
    compiled.append(isinstance(src, str) and src.startswith("def __create_fn__("))
    return real(src, name, *a, **k)
builtins.compile = counting
import mockkernel
builtins.compile = real
import dataclasses
from mockkernel.topology import KernelSpec
init = KernelSpec.__init__.__code__
print(sum(compiled), "exec" in vars(dataclasses), init.co_filename)
"""


def test_dataclass_methods_are_compiled_once(tmp_path: Path) -> None:
    """The methods ``dataclasses`` generates at import come from the cache the second
    time (nothing compiled), are the same code, and ``dataclasses`` is left as it was."""
    cache = str(tmp_path / "cache")
    first = _run(tmp_path, cache, COUNT_COMPILES, "").split()
    assert int(first[0]) > 50 and first[1:] == ["False", "<string>"]
    assert list(Path(cache).rglob("import.dataclasses"))
    second = _run(tmp_path, cache, COUNT_COMPILES, "").split()
    assert second == ["0", "False", "<string>"]
    (entry,) = Path(cache).rglob("import.dataclasses")
    entry.write_bytes(b"garbage")  # a broken file: compiled again, and rewritten
    assert int(_run(tmp_path, cache, COUNT_COMPILES, "").split()[0]) > 50
    assert _run(tmp_path, cache, COUNT_COMPILES, "").split()[0] == "0"
    _run(tmp_path, "off", COUNT_COMPILES, "")  # off: dataclasses' own exec, no file
    assert sorted(p.name for p in Path(cache).rglob("*.dataclasses")) == ["import.dataclasses"]


def test_classes_made_in_a_burst_behave_as_dataclasses_made_without(tmp_path: Path) -> None:
    from dataclasses import dataclass, field

    from mockkernel.bytecache import import_burst

    def make() -> type:
        @dataclass(frozen=True, order=True)
        class Point:
            x: int
            y: int = 2
            tags: tuple[str, ...] = field(default=())

        return Point

    import dataclasses

    plain = make()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOCKKERNEL_BYTECODE_CACHE", str(tmp_path))
        for _ in range(2):  # compiled, then from the file
            with import_burst("probe"):
                assert "exec" in vars(dataclasses)
                cached = make()
            assert "exec" not in vars(dataclasses)
    for cls in (plain, cached):
        p = cls(1)
        assert (
            repr(p).rpartition(".")[2],
            p == cls(1, 2),
            p < cls(2),
            hash(p) == hash(cls(1)),
        ) == (
            "Point(x=1, y=2, tags=())",
            True,
            True,
            True,
        )
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.x = 3  # type: ignore[misc]
    assert list(tmp_path.rglob("probe.dataclasses"))


def test_a_burst_restores_dataclasses_after_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from mockkernel.bytecache import import_burst

    monkeypatch.setenv("MOCKKERNEL_BYTECODE_CACHE", str(tmp_path))
    with pytest.raises(ZeroDivisionError), import_burst("probe"):
        assert "exec" in vars(dataclasses)
        1 / 0  # noqa: B018
    assert "exec" not in vars(dataclasses)


def test_a_nested_burst_leaves_the_outer_ones_exec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from mockkernel.bytecache import import_burst

    monkeypatch.setenv("MOCKKERNEL_BYTECODE_CACHE", str(tmp_path))
    with import_burst("outer"):
        outer = vars(dataclasses)["exec"]
        with import_burst("inner"):
            assert vars(dataclasses)["exec"] is outer
        assert vars(dataclasses)["exec"] is outer  # the inner one did not restore it
    assert "exec" not in vars(dataclasses)
    assert not list(tmp_path.rglob("inner.dataclasses"))


def test_an_exec_put_there_by_other_code_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins
    import dataclasses

    from mockkernel.bytecache import import_burst

    monkeypatch.setenv("MOCKKERNEL_BYTECODE_CACHE", str(tmp_path))
    theirs = builtins.exec
    monkeypatch.setitem(vars(dataclasses), "exec", theirs)
    with import_burst("probe"):
        assert vars(dataclasses)["exec"] is theirs
    assert vars(dataclasses)["exec"] is theirs


def test_dataclasses_made_by_another_thread_during_bursts_are_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """User code defining dataclasses on another thread while mockkernel's bursts run
    gets classes whose generated methods are the code ``dataclasses`` makes alone."""
    import dataclasses
    import threading

    from mockkernel.bytecache import import_burst

    def make(n: int) -> type:
        cls = dataclasses.make_dataclass(
            f"User{n}",
            [(f"f{n}", int), ("tag", str, dataclasses.field(default="t"))],
            order=True,
            frozen=bool(n % 2),
        )
        return cls

    methods = ("__init__", "__repr__", "__eq__", "__lt__")
    alone = {n: make(n) for n in range(40)}
    monkeypatch.setenv("MOCKKERNEL_BYTECODE_CACHE", str(tmp_path))
    made: dict[int, type] = {}
    stop = threading.Event()

    def user() -> None:
        n = 0
        while not stop.is_set() or n < 40:
            made[n % 40] = make(n % 40)
            n += 1

    t = threading.Thread(target=user)
    t.start()
    try:
        for i in range(30):
            with import_burst(f"probe{i % 2}"):
                make(1000 + i)  # mockkernel's own classes meanwhile
    finally:
        stop.set()
        t.join()
    assert "exec" not in vars(dataclasses)
    for n, cls in made.items():
        for name in methods:
            got, want = getattr(cls, name).__code__, getattr(alone[n], name).__code__
            assert (got.co_code, got.co_consts, got.co_names) == (
                want.co_code,
                want.co_consts,
                want.co_names,
            ), (n, name)
        obj = cls(n)
        assert repr(obj).endswith(f"(f{n}={n}, tag='t')") and obj == cls(n) and obj < cls(n + 1)
