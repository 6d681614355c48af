"""A fork of an in-process program never runs on a silent private copy of the kernel:
the child's mock fds and mock paths raise ``ForkedKernelError`` (ENOSYS, a message that
says to run supervised); its real fds, and the parent's kernel, are untouched."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import struct

from mockkernel.kernel import Kernel
from mockkernel.userspace.redirect import FORKED_MESSAGE, ForkedKernelError

DMA_BUF_SET_NAME_B = 0x40086201


def _try(fn: object, *args: object) -> str:
    try:
        fn(*args)  # type: ignore[operator]
    except ForkedKernelError as e:
        return f"forked {errno.errorcode[e.errno or 0]} {e.strerror == FORKED_MESSAGE}"
    except OSError as e:
        return errno.errorcode[e.errno or 0]
    return "ok"


def _udmabuf(kernel: Kernel) -> tuple[int, int, int]:
    memfd = os.memfd_create("t", os.MFD_ALLOW_SEALING)
    os.ftruncate(memfd, 4096)
    fcntl.fcntl(memfd, 1033, 2)  # F_ADD_SEALS, F_SEAL_SHRINK
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    buf = fcntl.ioctl(dev, 0x40187542, bytearray(struct.pack("=IIQQ", memfd, 0, 0, 4096)))
    return memfd, dev, buf


def test_the_forked_child_is_refused_loudly(mock_kernel: Kernel) -> None:
    memfd, dev, buf = _udmabuf(mock_kernel)
    r, w = os.pipe()
    with mock_kernel.tracer.capture() as events:
        pid = os.fork()
        if pid == 0:  # the child: report what each call did, then leave at once
            try:
                out = {
                    "ioctl": _try(fcntl.ioctl, buf, DMA_BUF_SET_NAME_B, b"child\0"),
                    "read": _try(os.read, dev, 1),
                    "fstat": _try(os.fstat, buf),
                    "open": _try(os.open, "/dev/udmabuf", os.O_RDWR),
                    "close": _try(os.close, buf),
                    "real memfd": _try(os.pread, memfd, 1, 0),
                    # the child's copy of the capture got the hook's event
                    "trace": [e["event"] for e in events if e["event"] == "userspace.forked"],
                }
                os.write(w, json.dumps(out).encode())
            finally:
                os._exit(0)
        os.close(w)
        _, status = os.waitpid(pid, 0)
    got = json.loads(os.read(r, 4096))
    os.close(r)
    assert status == 0
    refused = "forked ENOSYS True"
    assert got == {
        "ioctl": refused,
        "read": refused,
        "fstat": refused,
        "open": refused,
        "close": refused,
        "real memfd": "ok",
        "trace": ["userspace.forked"],
    }
    # the parent's kernel is untouched: its fds work, no name was set by the child
    fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, b"parent\0")
    with open(f"/proc/self/fdinfo/{buf}") as f:
        info = f.read()
    assert "name:\tparent" in info and "count:\t1" in info
    for fd in (buf, dev, memfd):
        os.close(fd)


def test_no_redirection_no_change() -> None:
    """Without an installed redirection the fork hook does nothing."""
    pid = os.fork()
    if pid == 0:
        os._exit(0 if os.getpid() > 0 else 1)
    assert os.waitpid(pid, 0)[1] == 0
