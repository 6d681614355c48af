"""``mockkernel run | plugins | topology`` as a user runs them (``python -m mockkernel``).

These start interpreters, so there are few of them; each checks several things."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mockkernel.topology import default_topology, dumps, load_topology

ROOT = Path(__file__).resolve().parents[2]


def mockkernel(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mockkernel", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def program(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_run_the_udmabuf_demo() -> None:
    done = mockkernel("run", "examples/udmabuf_demo.py")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith("udmabuf: dma-buf fd ") and out[0].endswith(", size 16384")
    assert "fdinfo: exp_name=udmabuf name=demo-buffer size=16384" in out
    assert "after writing through the dma-buf, the memfd reads: b'HELLO from the memfd'" in out
    assert out[-1] == "done"
    assert done.stderr == "", "a clean program: no leak report"


def test_exit_status_exceptions_and_fds_left_open(tmp_path: Path) -> None:
    exits = program(tmp_path, "exits.py", "import sys\nprint('before')\nsys.exit(3)\n")
    done = mockkernel("run", exits)
    assert (done.returncode, done.stdout) == (3, "before\n")
    raises = program(tmp_path, "raises.py", "raise KeyError('boom')\n")
    done = mockkernel("run", raises)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "KeyError: 'boom'" in done.stderr
    message = program(tmp_path, "message.py", "import sys\nsys.exit('bad input')\n")
    done = mockkernel("run", message)
    assert (done.returncode, done.stderr) == (1, "bad input\n")
    leaves = program(
        tmp_path,
        "leaves.py",
        """
        import os, sys
        dev = os.open("/dev/udmabuf", os.O_RDWR)
        print(dev, sys.argv[1:])
        """,
    )
    done = mockkernel("run", leaves, "--flag", "x")
    assert done.returncode == 0
    fd = int(done.stdout.split()[0])
    assert done.stdout.split(maxsplit=1)[1] == "['--flag', 'x']\n"
    assert "the program left 1 fd(s) open; closed at exit" in done.stderr
    assert f"  fd {fd}: /dev/udmabuf" in done.stderr
    assert "leak(s) after the program exited" not in done.stderr, "closed at exit: no leak"


def test_trace_file(tmp_path: Path) -> None:
    prog = program(
        tmp_path,
        "first_fd.py",
        """
        import os
        fd = os.open("/dev/udmabuf", os.O_RDWR)
        print(fd)
        os.close(fd)
        """,
    )
    bare = mockkernel("run", prog)
    trace = tmp_path / "trace.jsonl"
    traced = mockkernel("run", "--trace", str(trace), prog)
    assert traced.returncode == bare.returncode == 0
    assert traced.stdout == bare.stdout, "the trace file must not shift the program's fd numbers"
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    assert all("event" in e and "seq" in e for e in events)
    names = [e["event"] for e in events if not e["event"].startswith("sys.")]
    assert names[0] == "userspace.install" and names[-1] == "kernel.shutdown"
    fd = int(bare.stdout)
    assert {"event": "vfs.open", "path": "/dev/udmabuf"}.items() <= next(
        e for e in events if e["event"] == "vfs.open"
    ).items()
    assert any(e["event"] == "fd.install" and e["fd"] == fd for e in events)
    assert any(e["event"] == "fd.close" and e["fd"] == fd for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_plugins_and_topology(tmp_path: Path) -> None:
    plugins = mockkernel("plugins")
    assert plugins.returncode == 0
    assert "udmabuf" in [line.split("\t")[0] for line in plugins.stdout.splitlines()]
    topo = mockkernel("topology")
    assert topo.returncode == 0
    assert topo.stdout == dumps(default_topology())
    assert load_topology(topo.stdout) == default_topology()
    saved = tmp_path / "machine.toml"
    saved.write_text(topo.stdout)
    again = mockkernel("topology", "--file", str(saved))
    assert (again.returncode, again.stdout) == (0, topo.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "--topology", "{bad}", "examples/udmabuf_demo.py"],
            "mockkernel: error: bad topology",
        ),
        (["topology", "--file", "/nonexistent/machine.toml"], "mockkernel: error: bad topology"),
        (["run", "/nonexistent/program.py"], "mockkernel: can't open file"),
        (["run", "--trace", "/nonexistent/dir/t.jsonl", "examples/udmabuf_demo.py"], "error"),
    ],
    ids=["bad-topology", "missing-topology", "missing-program", "bad-trace-path"],
)
def test_usage_errors_are_messages_not_tracebacks(
    tmp_path: Path, args: list[str], message: str
) -> None:
    args = [str(tmp_path / "bad.toml") if a == "{bad}" else a for a in args]
    (tmp_path / "bad.toml").write_text("[kernel]\nrlimit_nofile = 'many'\n")
    done = mockkernel(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_run_program_restores_the_interpreter(tmp_path: Path) -> None:
    """In-process runs (what the CLI calls) leave sys.argv, sys.path and the patches alone."""
    prog = program(tmp_path, "p.py", "import sys\nsys.path.append('/added')\nprint('ran')\n")
    check = textwrap.dedent(
        f"""
        import io, os, sys
        from mockkernel.realfd import REAL
        from mockkernel.userspace.runner import run_program
        sys.path.insert(0, {str(tmp_path)!r})  # the program's own directory, already first
        argv, path = list(sys.argv), list(sys.path)
        report = io.StringIO()
        assert run_program({prog!r}, ["a"], report=report) == 0
        assert run_program({prog!r}, ["b"], report=report) == 0
        assert sys.argv == argv, sys.argv
        assert sys.path == path, sys.path
        assert os.open is REAL.open
        assert report.getvalue() == "", report.getvalue()
        print("restored")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.stdout.split() == ["ran", "ran", "restored"], done.stderr


def test_version_is_the_packages() -> None:
    """``mockkernel --version`` prints ``mockkernel.__version__``, which is the wheel's
    version too (pyproject's ``[tool.hatch.version]`` reads it from there)."""
    import re
    import tomllib

    import mockkernel

    done = subprocess.run(
        [sys.executable, "-m", "mockkernel", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout == f"mockkernel {mockkernel.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", mockkernel.__version__)
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "mockkernel/__init__.py"
