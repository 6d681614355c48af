"""The C twins of the VFIO TPH and RDMA MR demos, written against the real uAPI headers,
print what their Python twins print: under ``mockkernel run --`` and under
``Kernel.run``, with and without the proposed TPH uAPI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import mockkernel
from mockkernel.kernel import Kernel

REPO = Path(__file__).parent.parent.parent
DEMOS = ["vfio_tph_demo", "rdma_dmabuf_mr"]
#: the default profile has the proposed TPH feature; linux-7.2 answers it ENOTTY
PROFILES = [None, "linux-7.2"]


def _uapi(uapi: str | None) -> list[str]:
    return [] if uapi is None else ["--uapi", uapi]


def python_twin(name: str, uapi: str | None) -> list[str]:
    """What ``mockkernel run examples/<name>.py`` prints (in-process mode)."""
    r = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", *_uapi(uapi),
         str(REPO / "examples" / f"{name}.py")],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return r.stdout.splitlines()


@pytest.mark.parametrize("uapi", PROFILES)
@pytest.mark.parametrize("name", DEMOS)
def test_kernel_run_prints_what_the_python_twin_prints(
    name: str, uapi: str | None, build_uapi: Callable[[str], str]
) -> None:
    kernel = mockkernel.boot(uapi=uapi)
    try:
        r = kernel.run([build_uapi(name)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines == python_twin(name, uapi)
        tph = [line for line in lines if line.startswith("TPH")]
        assert tph and ("not set" in tph[0]) == (uapi == "linux-7.2")
    finally:
        kernel.shutdown(check=True)  # nothing the C program opened is left


@pytest.mark.parametrize("name", DEMOS)
def test_cli_run_prints_what_the_python_twin_prints(
    name: str, build_uapi: Callable[[str], str]
) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", "--check-leaks", "--", build_uapi(name)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == python_twin(name, None)


def test_the_mr_demo_releases_everything_it_registered(
    kernel: Kernel, build_uapi: Callable[[str], str]
) -> None:
    """The C program's ioctls and ``write()`` reach the drivers (one trace event each),
    and its exit releases the MR, the PD, the context, the dma-buf and the device."""
    with kernel.tracer.capture() as events:
        r = kernel.run([build_uapi("rdma_dmabuf_mr")], capture_output=True, timeout=120)
    assert r.returncode == 0
    calls = [
        (e["event"], e.get("errno")) for e in events if e["event"] in ("sys.ioctl", "sys.write")
    ]
    # BIND, IOAS_ALLOC, ATTACH, DMA_BUF, TPH, GET_CONTEXT, ALLOC_PD, REG_DMABUF_MR, QUERY_MR
    assert calls.count(("sys.ioctl", None)) == 8 and calls.count(("sys.write", None)) == 1
    assert kernel.leaks() == []


def test_dirs_of_sysfs_list_under_the_supervisor(kernel: Kernel) -> None:
    """Owned mock directories open and list (``getdents64``), also relative to an open
    mock directory fd: what the demos' device discovery needs."""
    script = (
        "import os\n"
        "print(sorted(os.listdir('/sys/bus/pci/devices')))\n"
        "fd = os.open('/sys/bus/pci/devices', os.O_RDONLY | os.O_DIRECTORY)\n"
        "first = sorted(os.listdir(fd))[0]\n"
        "print(os.readlink(first + '/driver', dir_fd=fd).rsplit('/', 1)[1])\n"
        "os.close(fd)\n"
        "try:\n"
        "    os.listdir('/dev/udmabuf')\n"
        "except OSError as e:\n"
        "    print(e.strerror)\n"
    )
    with kernel.install():
        want_devs = sorted(os.listdir("/sys/bus/pci/devices"))
    r = kernel.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(want_devs), "vfio-pci", "Not a directory"]
