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
def cbuild(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], str]:
    """``cbuild(source)``: the program compiled against rdma-core 59 (its ``build/include``
    first, then the newest uAPI headers for ``linux/vfio.h``) and linked with its
    ``-libverbs``."""
    if not BUILT:
        pytest.skip(NOT_BUILT)
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) on this machine")
    out = tmp_path_factory.mktemp("ibv")
    uapi = os.environ.get("MOCKKERNEL_UAPI_INCLUDE")
    inc = [f"-I{B59 / 'include'}"] + ([f"-I{uapi}"] if uapi else [])

    def build(src: Path) -> str:
        exe = out / src.stem
        if not exe.exists():
            r = subprocess.run(
                [cc, "-O1", "-Wall", *inc, "-o", str(exe), str(src), f"-L{B59 / 'lib'}",
                 "-libverbs", f"-Wl,-rpath,{B59 / 'lib'}"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if r.returncode and "vfio" in r.stderr and "DMA_BUF" in r.stderr:
                pytest.skip("these uAPI headers have no VFIO_DEVICE_FEATURE_DMA_BUF: "
                            "set MOCKKERNEL_UAPI_INCLUDE to newer headers")  # fmt: skip
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
}


def _lines(out: str, prefix: str) -> dict[str, str]:
    return {
        ln.split()[1]: " ".join(ln.split()[2:])
        for ln in out.splitlines()
        if ln.startswith(prefix + " ")
    }


@pytest.mark.parametrize("ibdev", ["mlx5_0", "rxe0"])
def test_ibv_reg_mr_pins_the_programs_pages_and_a_remote_write_lands_there(
    mock_kernel: Kernel, cbuild: Callable[[Path], str], tmp_path: Path, ibdev: str
) -> None:
    """A C program, plain ``ibv_reg_mr``: each of ib_umem_get's rules gives Linux's errno
    for the *program's* mappings; then an RDMA WRITE from the network lands in its
    private anonymous memory, which it reads back after the write."""
    exe = cbuild(HERE / "c" / "ibv_user_mr.c")
    results = []

    def serve(line: str) -> None:
        rkey = int(line.split()[0])
        results.append(remote_write(mock_kernel, ibdev, rkey, 0, b"\x11" * 8))
        results.append(remote_write(mock_kernel, ibdev, rkey, 4096 + 4, b"\x22" * 4))
        results.append(remote_write(mock_kernel, ibdev, rkey, 2 * 4096 - 4, b"\x33" * 8))

    r = Peer(mock_kernel, tmp_path).run([exe, ibdev], _env(), serve)
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
ctx = d.Context(name="mlx5_0")
pd = PD(ctx)
mr = MR(pd, 1 << 16, 1 | 2)  # LOCAL_WRITE | REMOTE_WRITE
mr.write(b"\\x55" * (1 << 16), 1 << 16)
reply = os.open(os.environ["FROM_TEST"], os.O_RDWR)
with open(os.environ["TO_TEST"], "w") as f:
    f.write(f"{mr.rkey} {mr.lkey}\\n")
os.read(reply, 16)
print("head", mr.read(8, 0x3000).hex(), mr.read(4, 0x3008).hex())
mr.close()
pd.close()
ctx.close()
"""


def test_pyverbs_mr_of_its_own_memory_takes_a_remote_write(
    mock_kernel: Kernel, tmp_path: Path
) -> None:
    """pyverbs ``MR(pd, len, access)`` (``ibv_reg_mr`` of a buffer pyverbs allocates):
    registered under the supervisor, written by the network peer, read back by pyverbs."""
    env = _pyverbs_env()
    results = []

    def serve(line: str) -> None:
        rkey = int(line.split()[0])
        results.append(remote_write(mock_kernel, "mlx5_0", rkey, 0x3000, b"hi!rdma\0"))

    with mock_kernel.tracer.capture() as events:
        r = Peer(mock_kernel, tmp_path).run([sys.executable, "-c", PYVERBS_MR], env, serve)
    assert r.returncode == 0, r.stderr
    assert [w.status for w in results] == ["IBV_WC_SUCCESS"]
    assert "head " + b"hi!rdma\0".hex() + " 55555555" in r.stdout.splitlines()
    regs = [e for e in events if e["event"] == "rdma.reg_mr"]
    assert [(e["kind"], e["length"]) for e in regs] == [("IbUmem", 1 << 16)]


# -- 2. a VFIO BAR dma-buf with TPH, through pyverbs ----------------------------------------
MLX5_RID = 0x02 << 8 | 0  # 0000:02:00.0
VFIO_BAR0 = "0000:01:00.0:bar0"


def test_pyverbs_dmabuf_mr_of_a_vfio_bar_with_tph_and_a_reset(
    mock_kernel: Kernel, tmp_path: Path
) -> None:
    """pyverbs ``DmaBufMR`` of a VFIO BAR dma-buf whose TPH was set through
    ``VFIO_DEVICE_FEATURE_DMA_BUF_TPH``: the network's write lands in the BAR (the program
    reads it through its own BAR mapping) on TLPs with the exporter's tag and PH; after
    the program sets a new tag and resets the device, the next write faults, re-maps and
    carries the re-queried tag."""
    env = _pyverbs_env()
    writes: dict[str, Any] = {}
    events: list[dict[str, Any]] = []

    def serve(line: str) -> None:
        if line.startswith("mr "):
            writes["rkey"] = rkey = int(line.split()[1])
            with mock_kernel.tracer.capture() as ev:
                writes["first"] = remote_write(mock_kernel, "mlx5_0", rkey, 0x100, bytes(range(16)))
            events.extend(ev)
        elif line == "reset":
            with mock_kernel.tracer.capture() as ev:
                writes["after"] = remote_write(mock_kernel, "mlx5_0", writes["rkey"], 0x200,
                                               b"after reset")  # fmt: skip
            events.extend(ev)

    prog = HERE / "pyverbs_vfio_tph.py"
    with mock_kernel.tracer.capture() as all_events:
        r = Peer(mock_kernel, tmp_path).run([sys.executable, str(prog)], env, serve)
    assert r.returncode == 0, r.stderr
    out = dict(ln.split(" ", 1) for ln in r.stdout.splitlines())
    assert out == {
        "tph": "ok",
        "bar": bytes(range(16)).hex(),
        "tph2": "ok",
        "bar2": b"after reset".hex(),
    }
    first, after = writes["first"], writes["after"]
    assert first.ok and after.ok
    # the exporter's tag: extended (the mlx5 function requests EXT_TPH), and its PH
    assert {(t.requester_id, t.th, t.ph, t.steering_tag, t.target) for t in first.tlps} == {
        (MLX5_RID, True, 1, 0x0112, VFIO_BAR0)
    }
    tlp_events = [e for e in events if e["event"] == "pcie.tlp"]
    assert [(e["ph"], e["st"], e["st_ext"]) for e in tlp_events] == [
        (1, 0x12, 0x01),
        (3, 0xEE, 0x0B),
    ]
    # the reset invalidated the MR's mapping; the write after it re-mapped and re-asked
    names = [e["event"] for e in all_events]
    assert names.index("mlx5.mr_invalidate") < names.index("mlx5.mr_fault")
    assert [(t.ph, t.steering_tag) for t in after.tlps] == [(3, 0x0BEE)]
    assert [e["tag"] for e in all_events if e["event"] == "mlx5.mr_tph"] == [0x0112, 0x0BEE]
