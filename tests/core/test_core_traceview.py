"""``mockkernel trace``: a ``--trace`` file as a timeline or a Mermaid sequence diagram."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mockkernel.traceview import (
    LANES,
    TraceError,
    load,
    render_mermaid,
    render_timeline,
    split_shutdown,
    steps,
    tree,
)
from mockkernel.traceview.html import svg_of

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
DOCS_IMG = ROOT / "docs" / "img"


def _mk(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mockkernel", *argv],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out: dict[str, Path] = {}
    d = tmp_path_factory.mktemp("traces")
    for name, argv in {
        "udmabuf": ["examples/udmabuf_demo.py"],
        "rdma": ["examples/rdma_dmabuf_mr.py"],
        "netdev": ["examples/netdev_bind_rx.py", "eth0", "2"],
    }.items():
        path = d / f"{name}.jsonl"
        proc = _mk("run", "--trace", str(path), *argv)
        assert proc.returncode == 0, proc.stderr
        out[name] = path
    return out


def _ev(seq: int, event: str, **kw: object) -> dict[str, object]:
    return {"event": event, "seq": seq, **kw}


def test_tree_nests_each_syscalls_events_under_it() -> None:
    events = [
        _ev(1, "pci.probe"),  # outside any syscall (boot)
        _ev(2, "vfs.open"),
        _ev(3, "fd.install"),
        _ev(4, "sys.open", nested=2, ret=3),
        _ev(5, "dma_buf.attach"),
        _ev(6, "fd.close"),
        _ev(7, "sys.close", nested=1, ret=None),  # a syscall made by the kernel itself
        _ev(8, "sys.ioctl", nested=3, ret=0),  # ... inside this one (5, 6, 7)
        _ev(9, "sys.close", nested=0, ret=None),
    ]
    nodes = tree(events)
    assert [n.name for n in nodes] == ["pci.probe", "sys.open", "sys.ioctl", "sys.close"]
    assert [c.name for c in nodes[1].children] == ["vfs.open", "fd.install"]
    assert [c.name for c in nodes[2].children] == ["dma_buf.attach", "sys.close"]
    assert [c.name for c in nodes[2].children[1].children] == ["fd.close"]
    assert nodes[3].children == []


def test_timeline_of_the_udmabuf_demo(traces: dict[str, Path]) -> None:
    proc = _mk("trace", str(traces["udmabuf"]))
    assert proc.returncode == 0 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    create = next(i for i, line in enumerate(lines) if "cmd=UDMABUF_CREATE" in line)
    assert "program   ioctl(fd=" in lines[create] and lines[create].endswith("= 5")
    nested = lines[create + 1 : create + 4]
    assert any("dma_buf.export" in line for line in nested)
    assert lines[-1].lstrip().startswith("…") and "shutdown event(s)" in lines[-1]
    assert all(line.split()[1] in {lane for lane, _ in LANES} for line in lines[:-1])
    assert any("open(path=/dev/udmabuf, flags=O_RDWR|O_CLOEXEC)" in line for line in lines)


def test_every_event_of_the_examples_has_a_lane(traces: dict[str, Path]) -> None:
    prefixes = tuple(p for _lane, ps in LANES for p in ps)
    for path in traces.values():
        names = {e["event"] for e in load(path.read_text().splitlines())}
        assert not {n for n in names if not n.startswith(prefixes)}, path.name


def test_nesting_matches_the_nested_counts(traces: dict[str, Path]) -> None:
    for path in traces.values():
        events = load(path.read_text().splitlines())

        def count(nodes: list) -> int:  # type: ignore[type-arg]
            return sum(1 + count(n.children) for n in nodes)

        nodes = tree(events)
        assert count(nodes) == len(events)
        for node in nodes:
            if node.name.startswith("sys."):
                assert count(node.children) == node.event["nested"]


def test_mermaid_is_a_balanced_sequence_diagram(traces: dict[str, Path]) -> None:
    text = render_mermaid(load(traces["rdma"].read_text().splitlines()))
    lines = text.splitlines()
    assert lines[0] == "sequenceDiagram"
    calls = [line for line in lines if "->>+" in line]
    returns = [line for line in lines if "-->>-program:" in line or "--x-program:" in line]
    assert calls and len(calls) == len(returns)
    assert all(line.startswith("    program->>+") for line in calls)
    body = [line for line in lines[1:] if not line.strip().startswith(("participant", "%%"))]
    assert all(not set(";#<>") & set(line.split(":", 1)[-1]) for line in body)
    assert any("\u203916 bytes\u203a" in line for line in body)  # write(fd, data=<16 bytes>)
    # arrows between the lanes, by the kernel's roles
    assert any(line.startswith("    importer->>dmabuf: dma_buf.attach ") for line in lines)
    assert any(line.startswith("    importer->>dmabuf: dma_buf.map ") for line in lines)
    assert any(line.startswith("    exporter->>dmabuf: dma_buf.export ") for line in lines)
    assert any(line.startswith("    importer->>pci: pci.tph_set_st ") for line in lines)
    assert any(
        "program->>+importer: ioctl(fd=6, cmd=RDMA_VERBS_IOCTL, arg={length=168, "
        "object_id=UVERBS_OBJECT_MR, method_id=UVERBS_METHOD_REG_DMABUF_MR, num_attrs=9, "
        "driver_id=RDMA_DRIVER_MLX5, attrs=[{attr_id=UVERBS_ATTR_REG_DMABUF_MR_HANDLE, len=0, "
        "flags=0, data=0}, "
        in line
        and "{attr_id=UVERBS_ATTR_REG_DMABUF_MR_LENGTH, len=8, flags=0, data=16384}" in line
        and "data=IB_UVERBS_ACCESS_LOCAL_WRITE|IB_UVERBS_ACCESS_REMOTE_WRITE|" in line
        and "{attr_id=UVERBS_ATTR_REG_DMABUF_MR_RESP_LKEY, len=4, flags=0}" in line
        for line in calls
    )  # the header the driver read, each field by name; its attributes (no addresses)
    assert any(
        "program->>+exporter: ioctl(fd=4, cmd=VFIO_DEVICE_FEATURE, arg={argsz=20, "
        "flags=VFIO_DEVICE_FEATURE_SET|VFIO_DEVICE_FEATURE_DMA_BUF_TPH, " in line
        for line in calls
    )


def test_mermaid_numbers_are_the_trace_seq_and_no_lane_is_empty(
    traces: dict[str, Path],
) -> None:
    """Every numbered arrow carries its event's ``seq`` (``autonumber N`` right before
    it); every event of the (shutdown-trimmed) trace has exactly one; no participant
    is without an arrow."""
    events = load(traces["rdma"].read_text().splitlines())
    kept, hidden = split_shutdown(events)
    assert hidden > 0
    lines = render_mermaid(events).splitlines()
    numbers = [
        int(line.split()[1])
        for line in lines
        if line.startswith("    autonumber ") and line.split()[1] != "off"
    ]
    assert numbers == sorted(numbers)  # the syscall's own number is on its return
    assert sorted(numbers) == [e["seq"] for e in kept]
    for i, line in enumerate(lines):
        if line.startswith("    autonumber ") and line.split()[1] != "off":
            assert "->>" in lines[i + 1] or "--x" in lines[i + 1]
    participants = [line.split()[1] for line in lines if line.startswith("    participant ")]
    arrows = [line for line in lines if "->>" in line or "--x" in line]
    for p in participants:
        assert any(
            f" {p}-" in a or f">{p}:" in a or f"+{p}:" in a or f"-{p}:" in a for a in arrows
        ), p
    assert "importer" in participants and "pci" in participants


def test_shutdown_of_unused_devices_is_hidden_unless_asked(traces: dict[str, Path]) -> None:
    path = str(traces["udmabuf"])
    default = _mk("trace", "--mermaid", path)
    full = _mk("trace", "--mermaid", "--shutdown", path)
    assert default.returncode == full.returncode == 0
    assert "page_pool.destroy" not in default.stdout and "page_pool.destroy" in full.stdout
    assert "rdma.unregister" not in default.stdout and "rdma.unregister" in full.stdout
    # the program's own device, and the leak count, stay
    assert "chrdev.unregister path=/dev/udmabuf" in default.stdout
    assert "kernel.shutdown leaks=0" in default.stdout
    assert "shutdown event(s) of devices the program did not use" in default.stdout
    assert "%%" not in full.stdout
    timeline = _mk("trace", "--shutdown", path).stdout
    assert "page_pool.destroy" in timeline and "…" not in timeline


def test_udmabuf_demo_golden(traces: dict[str, Path]) -> None:
    """The udmabuf demo's diagram and timeline, as a learner sees them (user addresses
    masked).  ``MOCKKERNEL_REGOLD=1`` rewrites the files after a deliberate change."""
    events = load(traces["udmabuf"].read_text().splitlines())
    got = {
        "udmabuf_demo.mmd": render_mermaid(events),
        "udmabuf_demo.timeline": re.sub(r"arg=0x[0-9a-f]+", "arg=0xADDR", render_timeline(events)),
    }
    _check_golden(got)


def _check_golden(got: dict[Path | str, str]) -> None:
    for name, text in got.items():
        path = GOLDEN / name
        if os.environ.get("MOCKKERNEL_REGOLD"):
            path.write_text(text)
        assert text == path.read_text(), f"{name} differs (MOCKKERNEL_REGOLD=1 to accept)"


def test_the_learners_pictures_are_current(traces: dict[str, Path]) -> None:
    """docs/trace-views.md shows two diagrams as SVG files drawn by the HTML view's own
    renderer; they are what the examples trace today."""
    udmabuf = load(traces["udmabuf"].read_text().splitlines())
    rdma = load(traces["rdma"].read_text().splitlines())
    only = ("dma_buf.", "vfio_pci.", "pci.", "mlx5.")
    _check_golden(
        {
            DOCS_IMG / "trace-udmabuf.svg": svg_of(steps(udmabuf, ("dma_buf.",)), standalone=True),
            DOCS_IMG / "trace-rdma-tph.svg": svg_of(steps(rdma, only), standalone=True),
        }
    )


def test_only_keeps_the_named_events_and_their_syscalls(traces: dict[str, Path]) -> None:
    proc = _mk("trace", "--only", "dma_buf.", str(traces["rdma"]))
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines and all("dma_buf." in line or line.split()[1] == "program" for line in lines), (
        lines
    )
    assert any("dma_buf.map" in line for line in lines)
    assert not any("vfs.open" in line for line in lines)


@pytest.mark.parametrize(
    "content,message",
    [
        ("not json\n", "line 1: not JSON"),
        ('{"event": "x", "seq": 1}\n[1, 2]\n', "line 2: not a trace event"),
        ('{"seq": 1}\n', "line 1: not a trace event"),
    ],
)
def test_bad_trace_files_are_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(content)
    proc = _mk("trace", str(path))
    assert proc.returncode == 2 and proc.stdout == ""
    assert message in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(TraceError):
        load(content.splitlines())


def test_missing_file_and_stdin(tmp_path: Path) -> None:
    proc = _mk("trace", str(tmp_path / "nope.jsonl"))
    assert proc.returncode == 2 and "No such file or directory" in proc.stderr
    events = [_ev(1, "vfs.open", path="/dev/x"), _ev(2, "sys.open", nested=1, ret=3, flags=2)]
    proc = subprocess.run(
        [sys.executable, "-m", "mockkernel", "trace", "-"],
        input="".join(json.dumps(e) + "\n" for e in events),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == [
        "    2  program   open(flags=O_RDWR) = 3",
        "    1  core        vfs.open path=/dev/x",
    ]


def test_empty_trace_renders_empty() -> None:
    assert render_timeline([]) == ""
    assert render_mermaid([]).startswith("sequenceDiagram")


def test_skip_core_leaves_out_discovery_and_keeps_every_driver_event(
    traces: dict[str, Path],
) -> None:
    """``--skip-core``: the syscalls only the core saw (the program listing sysfs,
    reading links, ``stat``) go; every event outside the core stays, and so does each
    syscall that entered a driver or touched a driver's file (``open`` of a device
    node, ``close`` of a dma-buf fd)."""
    events = load(traces["rdma"].read_text().splitlines())
    full = render_timeline(events).splitlines()
    brief = render_timeline(events, skip_core=True).splitlines()
    assert len(brief) < len(full)
    for gone in ("getdents64(", "readlinkat(", "lseek(fd=3"):
        assert any(gone in line for line in full) and not any(gone in line for line in brief)
    outside = [line for line in full if line.split()[1] not in ("core", "program", "…")]
    assert outside and [line for line in brief if line in outside] == outside
    for kept in (
        "open(path=/dev/vfio/devices/vfio0",
        "open(path=/dev/infiniband/uverbs0",
        "close(fd=5) = 0",
    ):
        assert any(kept in line for line in brief), kept
    diagram = render_mermaid(events, skip_core=True)
    assert "getdents64" not in diagram and "dma_buf.attach" in diagram
    proc = _mk("trace", "--skip-core", "--html", str(traces["rdma"]))
    assert proc.returncode == 0 and "getdents64" not in proc.stdout
