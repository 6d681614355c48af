"""MRs through rdma-core 59's libibverbs and pyverbs, unchanged, under the supervisor
(issue 14).

* user memory (``ibv_reg_mr``, pyverbs ``MR``): ``ib_umem_get`` checks and pins the pages
  of the *calling program's* address space (not the mock kernel's), with the errnos
  ``pin_user_pages`` gives, and a remote write into the MR lands in the program's memory;
* a VFIO BAR dma-buf with TPH (``VFIO_DEVICE_FEATURE_DMA_BUF_TPH``) as a pyverbs
  ``DmaBufMR`` on ``mlx5_0``: the remote write reaches the BAR with the exporter's tag;
* ``examples/c/rdma_dmah_mr.c``: ``ibv_alloc_dmah`` + ``ibv_reg_mr_ex`` on the dma-buf fd;
* the same programs on the ``linux-7.2`` uAPI profile, failing as upstream would.

A program and the test talk through two FIFOs (``$TO_TEST``, ``$FROM_TEST``): the
program hands over its rkey (and what it registered), the test plays the network peer
(``mockkernel.testing.rdma.remote_write``) while the program waits, then the program
reports what it sees in its memory.  Everything skips in one line without the build.
"""

from __future__ import annotations

import dataclasses
import importlib.machinery
import os
import select
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mockkernel import Kernel
from mockkernel.testing.rdma import remote_write
from mockkernel.topology import RdmaSpec, RxeSpec, default_topology

MLX5_RXE = dataclasses.replace(default_topology(), rdma=RdmaSpec(rxe=(RxeSpec("enp0s2"),)))
pytestmark = pytest.mark.mockkernel(topology=MLX5_RXE)

HERE = Path(__file__).parent
REPO = HERE.parent.parent


def _build59() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    base = Path(os.environ.get("MOCKKERNEL_RDMA_CORE_DIR", cache / "mockkernel" / "rdma-core-59"))
    return base / "src" / "rdma-core" / "build"


B59 = _build59()
BUILT = (B59.parent.parent.parent / ".built").exists()
NOT_BUILT = "rdma-core 59 is not built (.ci/build-rdma-core builds it)"


@pytest.fixture(autouse=True)
def _affinity() -> None:
    """The programs here run with their real CPU affinity, which ``DMAH_ALLOC`` checks:
    conftest's ``os.sched_getaffinity`` stand-in stays off."""


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "LD_LIBRARY_PATH": str(B59 / "lib"), **extra}


def _pyverbs_env(**extra: str) -> dict[str, str]:
    if not BUILT:
        pytest.skip(NOT_BUILT)
    pkg = B59 / "python" / "pyverbs"
    if not any(pkg.glob(f"device{importlib.machinery.EXTENSION_SUFFIXES[0]}")):
        pytest.skip(f"no pyverbs built for this interpreter under {pkg}")
    return _env(PYTHONPATH=str(B59 / "python"), **extra)


@pytest.fixture(scope="module")
def cbuild(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """``cbuild(source)``: the program compiled against the newest uAPI headers
    (``$MOCKKERNEL_UAPI_INCLUDE``, for ``linux/vfio.h``) and rdma-core 59's
    ``build/include``, linked with its ``-libverbs`` (``rpath=False``: found at run time
    on the library path, e.g. Debian's ``libibverbs.so.1``)."""
    if not BUILT:
        pytest.skip(NOT_BUILT)
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) on this machine")
    out = tmp_path_factory.mktemp("ibv")
    # the uAPI headers first: build/include has rdma-core's own (older) linux/vfio.h
    uapi = os.environ.get("MOCKKERNEL_UAPI_INCLUDE")
    inc = ([f"-I{uapi}"] if uapi else []) + [f"-I{B59 / 'include'}"]
    vfio_h = Path(uapi or "/usr/include") / "linux" / "vfio.h"
    new_vfio = vfio_h.is_file() and "VFIO_DEVICE_FEATURE_DMA_BUF" in vfio_h.read_text("latin-1")

    def build(src: Path, rpath: bool = True) -> str:
        if "<linux/vfio.h>" in src.read_text() and not new_vfio:
            pytest.skip(f"{vfio_h} has no VFIO_DEVICE_FEATURE_DMA_BUF: "
                        "set MOCKKERNEL_UAPI_INCLUDE to newer uAPI headers")  # fmt: skip
        exe = out / (src.stem + ("" if rpath else "-norpath"))
        if not exe.exists():
            r = subprocess.run(
                [cc, "-O1", "-Wall", *inc, "-o", str(exe), str(src), f"-L{B59 / 'lib'}",
                 "-libverbs", *([f"-Wl,-rpath,{B59 / 'lib'}"] if rpath else [])],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert r.returncode == 0, r.stderr
        return str(exe)

    return build


class Peer:
    """Runs a supervised program that hands the test lines through ``$TO_TEST``, each
    time waiting for the test's word on ``$FROM_TEST``; ``serve(line)`` is the test's
    turn (an assertion failing in it is raised after the program ends)."""

    def __init__(self, kernel: Kernel, tmp: Path) -> None:
        self.kernel = kernel
        self.to_test, self.from_test = tmp / "to_test", tmp / "from_test"
        os.mkfifo(self.to_test)
        os.mkfifo(self.from_test)

    def run(
        self, argv: list[str], env: dict[str, str], serve: Callable[[str], None]
    ) -> subprocess.CompletedProcess[str]:
        env = {**env, "TO_TEST": str(self.to_test), "FROM_TEST": str(self.from_test)}
        done: list[Any] = []
        failed: list[BaseException] = []

        def child() -> None:
            try:
                done.append(self.kernel.run(argv, capture_output=True, text=True, env=env,
                                            timeout=120))  # fmt: skip
            except BaseException as e:  # (reported below)
                done.append(e)

        t = threading.Thread(target=child)
        t.start()
        rfd = os.open(self.to_test, os.O_RDONLY | os.O_NONBLOCK)
        wfd = -1
        try:
            got = b""
            while True:
                if not select.select([rfd], [], [], 0.1)[0]:
                    if t.is_alive():
                        continue
                    break
                chunk = os.read(rfd, 4096)
                if not chunk:  # the program closed its end
                    break
                got += chunk
                while b"\n" in got:
                    line, got = got.split(b"\n", 1)
                    try:
                        serve(line.decode())
                    except BaseException as e:
                        failed.append(e)
                    if wfd < 0:  # (the program holds it open for reading: never blocks)
                        wfd = os.open(self.from_test, os.O_WRONLY)
                    os.write(wfd, b"go\n")
        finally:
            os.close(rfd)
            if wfd >= 0:
                os.close(wfd)
            t.join()
        result = done[0]
        if isinstance(result, BaseException):
            raise result
        if failed:
            raise failed[0]
        assert isinstance(result, subprocess.CompletedProcess)
        return result


# -- 1. user memory ---------------------------------------------------------------------------
#: what real Linux 7.2 answers on soft-RoCE (rxe0 in tools/real-linux's guest), case by case
CASES = {
    "rw": 0,
    "unaligned": 0,
    "into_hole": 14,  # EFAULT: a page is not mapped
    "unmapped": 14,
    "readonly_for_write": 14,  # EFAULT: FOLL_WRITE on a read-only VMA
    "readonly_for_read": 0,
    "two_vmas": 0,  # pin_user_pages walks several VMAs
    "zero_length": 22,  # EINVAL: no pages
    "zero_length_unaligned": 0,  # ib_umem_num_pages() counts the page addr is in
}


def _lines(out: str, prefix: str) -> dict[str, str]:
    return {
        ln.split()[1]: " ".join(ln.split()[2:])
        for ln in out.splitlines()
        if ln.startswith(prefix + " ")
    }


DEBIAN_LIBIBVERBS = Path("/usr/lib/x86_64-linux-gnu/libibverbs.so.1")


@pytest.mark.parametrize("lib", ["59", "44"])
@pytest.mark.parametrize("ibdev", ["mlx5_0", "rxe0"])
def test_ibv_reg_mr_pins_the_programs_pages_and_a_remote_write_lands_there(
    mock_kernel: Kernel, cbuild: Callable[..., str], tmp_path: Path, ibdev: str, lib: str
) -> None:
    """A C program, plain ``ibv_reg_mr``: each of ib_umem_get's rules gives Linux's errno
    for the *program's* mappings; then an RDMA WRITE from the network lands in its
    private anonymous memory, which it reads back after the write.  Linked with rdma-core
    59, and run with Debian 12's libibverbs (rdma-core 44) and its providers."""
    if lib == "44" and not DEBIAN_LIBIBVERBS.exists():
        pytest.skip("Debian's libibverbs (rdma-core 44) is not installed (ibverbs-providers)")
    exe = cbuild(HERE / "c" / "ibv_user_mr.c", rpath=lib == "59")
    results = []

    def serve(line: str) -> None:
        rkey = int(line.split()[0])
        results.append(remote_write(mock_kernel, ibdev, rkey, 0, b"\x11" * 8))
        results.append(remote_write(mock_kernel, ibdev, rkey, 4096 + 4, b"\x22" * 4))
        results.append(remote_write(mock_kernel, ibdev, rkey, 2 * 4096 - 4, b"\x33" * 8))

    env = _env() if lib == "59" else {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    r = Peer(mock_kernel, tmp_path).run([exe, ibdev], env, serve)
    assert r.returncode == 0, r.stderr
    assert {k: int(v) for k, v in _lines(r.stdout, "case").items()} == CASES
    assert [w.status for w in results] == ["IBV_WC_SUCCESS"] * 2 + ["IBV_WC_REM_ACCESS_ERR"]
    pages = _lines(r.stdout, "page")
    assert pages == {"0": "11" * 8, "1": "aa" * 4 + "22" * 4}


PYVERBS_MR = """
import os
import pyverbs.device as d
from pyverbs.mr import MR
from pyverbs.pd import PD
ctx = d.Context(name=os.environ["IBDEV"])
pd = PD(ctx)
mr = MR(pd, 1 << 16, 1 | 2)  # LOCAL_WRITE | REMOTE_WRITE: pinned
odp = MR(pd, 1 << 16, 1 | 2 | 64)  # ... | ON_DEMAND: not pinned, faulted at each access
for m in (mr, odp):
    m.write(b"\\x55" * (1 << 16), 1 << 16)
reply = os.open(os.environ["FROM_TEST"], os.O_RDWR)
with open(os.environ["TO_TEST"], "w") as f:
    f.write(f"{mr.rkey} {odp.rkey}\\n")
os.read(reply, 16)
for name, m in (("head", mr), ("odp", odp)):
    print(name, m.read(8, 0x3000).hex(), m.read(4, 0x3008).hex())
odp.close()
mr.close()
pd.close()
ctx.close()
"""


@pytest.mark.parametrize("ibdev", ["mlx5_0", "rxe0"])
def test_pyverbs_mr_of_its_own_memory_takes_a_remote_write(
    mock_kernel: Kernel, tmp_path: Path, ibdev: str
) -> None:
    """pyverbs ``MR(pd, len, access)`` (``ibv_reg_mr`` of a buffer pyverbs allocates), pinned
    and ``ON_DEMAND``: registered under the supervisor, written by the network peer (the
    ODP fault reaches the program's memory, not the test's), read back by pyverbs."""
    env = {**_pyverbs_env(), "IBDEV": ibdev}
    results = []

    def serve(line: str) -> None:
        for rkey in map(int, line.split()):
            results.append(remote_write(mock_kernel, ibdev, rkey, 0x3000, b"hi!rdma\0"))

    with mock_kernel.tracer.capture() as events:
        r = Peer(mock_kernel, tmp_path).run([sys.executable, "-c", PYVERBS_MR], env, serve)
    assert r.returncode == 0, r.stderr
    assert [w.status for w in results] == ["IBV_WC_SUCCESS"] * 2
    lines = r.stdout.splitlines()
    for name in ("head", "odp"):
        assert f"{name} " + b"hi!rdma\0".hex() + " 55555555" in lines
    regs = [e for e in events if e["event"] == "rdma.reg_mr"]
    assert [(e["kind"], e["length"]) for e in regs] == [("IbUmem", 1 << 16), ("odp", 1 << 16)]


# -- 2. a VFIO BAR dma-buf with TPH, through pyverbs (and 4: on linux-7.2) -----------------
MLX5_RID = 0x02 << 8 | 0  # 0000:02:00.0
VFIO_BAR0 = "0000:01:00.0:bar0"


def _on(uapi: str) -> Any:
    return pytest.param(uapi, marks=pytest.mark.mockkernel(topology=MLX5_RXE, uapi=uapi), id=uapi)


def _tph_events(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["source"], e["ph"], e["tag"]) for e in events if e["event"] == "mlx5.mr_tph"]


@pytest.mark.parametrize("uapi", [_on("tph-v11"), _on("linux-7.2")])
def test_pyverbs_dmabuf_mr_of_a_vfio_bar_with_tph_and_a_reset(
    mock_kernel: Kernel, tmp_path: Path, uapi: str
) -> None:
    """pyverbs ``DmaBufMR`` of a VFIO BAR dma-buf whose TPH was set through
    ``VFIO_DEVICE_FEATURE_DMA_BUF_TPH``: the network's write lands in the BAR (the program
    reads it through its own BAR mapping) on TLPs with the exporter's tag and PH; after
    the program sets a new tag and resets the device, the next write faults, re-maps and
    carries the re-queried tag.

    On ``linux-7.2`` (the series is not merged) the same program's TPH ioctls are
    ``ENOTTY`` (no feature 13), the MR registers and takes the writes -- across the reset
    too -- on TLPs without TPH: mlx5 has no exporter hook to ask."""
    env = _pyverbs_env()
    writes: dict[str, Any] = {}

    def serve(line: str) -> None:
        if line.startswith("mr "):
            writes["rkey"] = rkey = int(line.split()[1])
            writes["first"] = remote_write(mock_kernel, "mlx5_0", rkey, 0x100, bytes(range(16)))
        elif line == "reset":
            writes["after"] = remote_write(mock_kernel, "mlx5_0", writes["rkey"], 0x200,
                                           b"after reset")  # fmt: skip

    prog = HERE / "pyverbs_vfio_tph.py"
    with mock_kernel.tracer.capture() as events:
        r = Peer(mock_kernel, tmp_path).run([sys.executable, str(prog)], env, serve)
    assert r.returncode == 0, r.stderr
    tph = "ok" if uapi == "tph-v11" else "ENOTTY"
    out = dict(ln.split(" ", 1) for ln in r.stdout.splitlines())
    assert out == {
        "tph": tph,
        "bar": bytes(range(16)).hex(),
        "tph2": tph,
        "bar2": b"after reset".hex(),
    }
    first, after = writes["first"], writes["after"]
    assert first.ok and after.ok
    assert {(t.requester_id, t.target) for t in first.tlps + after.tlps} == {(MLX5_RID, VFIO_BAR0)}
    # the reset invalidated the MR's mapping; the write after it re-mapped and re-asked
    names = [e["event"] for e in events]
    assert names.index("mlx5.mr_invalidate") < names.index("mlx5.mr_fault")
    tlps = [e for e in events if e["event"] == "pcie.tlp"]
    if uapi == "tph-v11":
        # the exporter's tags: extended (the function requests EXT_TPH), and their PH
        assert [(t.th, t.ph, t.steering_tag) for t in first.tlps + after.tlps] == [
            (True, 1, 0x0112),
            (True, 3, 0x0BEE),
        ]
        assert [(e["ph"], e["st"], e["st_ext"]) for e in tlps] == [(1, 0x12, 0x01), (3, 0xEE, 0x0B)]
        assert _tph_events(events) == [("dmabuf", 1, 0x0112), ("dmabuf", 3, 0x0BEE)]
    else:
        assert [t.th for t in first.tlps + after.tlps] == [False, False]
        assert _tph_events(events) == [("none", None, None)] * 2


# -- 3. examples/c/rdma_dmah_mr.c: ibv_alloc_dmah + ibv_reg_mr_ex on the dma-buf fd ---------
DMAH_EXAMPLE = REPO / "examples" / "c" / "rdma_dmah_mr.c"


def _cpu_tag(kernel: Kernel, cpu: int) -> int:
    """The extended steering tag the root port's ``_DSM`` gives ``cpu`` (volatile memory)."""
    (rp,) = kernel.topology.root_ports
    (entry,) = [e for e in rp.cpu_st if e.cpu == cpu]
    assert entry.vm_xst is not None
    return entry.vm_xst


@pytest.mark.parametrize("uapi", [_on("tph-v11"), _on("linux-7.2")])
def test_dmah_example_writes_reach_the_bar_with_the_cpus_tag(
    mock_kernel: Kernel, cbuild: Callable[..., str], tmp_path: Path, uapi: str
) -> None:
    """The C example, linked with rdma-core 59: ``ibv_alloc_dmah`` (a CPU it may run on,
    PH 2) and ``ibv_reg_mr_ex(FD | FD_OFFSET | IOVA | DMAH)`` on the BAR's dma-buf.  The
    DMAH wins over the exporter's tag: the write lands in the BAR on TLPs with the CPU's
    tag and the DMAH's PH.  ``linux-7.2`` has DMAH (6.17+) but not the exporter's TPH
    feature: that ioctl is ``ENOTTY`` and everything else is the same, as upstream."""
    exe = cbuild(DMAH_EXAMPLE)
    cpu = min(os.sched_getaffinity(0))
    writes = []

    def serve(line: str) -> None:
        rkey = int(line.split()[1])
        writes.append(remote_write(mock_kernel, "mlx5_0", rkey, 0, b"dmah-tagged TLP!"))

    with mock_kernel.tracer.capture() as events:
        r = Peer(mock_kernel, tmp_path).run([exe, "mlx5_0", str(cpu), "2"], _env(), serve)
    assert r.returncode == 0, r.stdout + r.stderr
    exporter = "st 0x12, st_ext 0x0112, ph 1" if uapi == "tph-v11" else "ENOTTY"
    lines = r.stdout.splitlines()
    assert lines == [
        "vfio device 0000:01:00.0: dma-buf of BAR0 [0x1000, +0x4000)",
        f"exporter TPH: {exporter}",
        f"DMAH: cpu {cpu}, ph 2, volatile memory",
        "MR on mlx5_0: lkey 0x101, rkey 0x101, length 0x4000",
        "BAR0[0x1000]: " + " ".join(f"{b:02x}" for b in b"dmah-tagged TLP!"),
        "released",
    ]
    (w,) = writes
    assert w.ok
    assert [(t.th, t.ph, t.steering_tag, t.target) for t in w.tlps] == [
        (True, 2, _cpu_tag(mock_kernel, cpu), VFIO_BAR0)
    ]
    assert _tph_events(events) == [("dmah", 2, _cpu_tag(mock_kernel, cpu))]
    assert [e["event"] for e in events if e["event"].startswith("rdma.dmah")] == [
        "rdma.dmah_alloc",
        "rdma.dmah_free",
    ]


def test_dmah_cpu_must_be_in_the_calling_threads_affinity(
    mock_kernel: Kernel, cbuild: Callable[..., str]
) -> None:
    """``ibv_alloc_dmah`` of a CPU the *program* may not run on is ``EPERM`` (its own
    affinity, not the mock kernel's); one it may run on is granted."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs to pin the program to one of them")
    exe = cbuild(DMAH_EXAMPLE)
    pin = f"import os, sys; os.sched_setaffinity(0, {{{cpus[1]}}}); os.execv(sys.argv[1], sys.argv[1:])"  # noqa: E501
    for cpu, want in (
        (cpus[0], "ibv_alloc_dmah: EPERM"),
        (cpus[1], f"DMAH: cpu {cpus[1]}, ph 2, volatile memory"),
    ):
        r = mock_kernel.run([sys.executable, "-c", pin, exe, "mlx5_0", str(cpu)],
                            capture_output=True, text=True, env=_env(), timeout=120)  # fmt: skip
        assert want in r.stdout.splitlines(), r.stdout + r.stderr


def test_dmah_on_rxe_is_eopnotsupp(mock_kernel: Kernel, cbuild: Callable[..., str]) -> None:
    """rxe has no DMAH: libibverbs' rxe provider has no ``alloc_dmah`` (``EOPNOTSUPP``)."""
    exe = cbuild(DMAH_EXAMPLE)
    r = mock_kernel.run([exe, "rxe0"], capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 1
    assert r.stdout.splitlines()[-1] == "ibv_alloc_dmah: EOPNOTSUPP"
