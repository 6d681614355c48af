r"""Netlink and devmem RX costs: genl request round-trips and driver-level devmem receive.

    python benchmarks/bench_netdev.py [--repeat N] [--requests N]

On the default topology (``eth0``: the mock NIC at 0000:03:00.0):

* netlink round-trips from a plain-Python client: ``nlctrl`` ``GETFAMILY`` by name,
  ``netdev`` ``QUEUE_GET`` (do) and a ``QUEUE_GET`` dump of 16 queues;
* ``BIND_RX`` of a udmabuf + unbind (the socket's close);
* devmem receive into a bound udmabuf, 64 KiB payloads, tracing off and on (a sink
  that drops the events), two ways side by side: the NIC's side (``MockNic.receive``:
  niov allocation, the fabric's TLPs, the bytes landing in the buffer, then the niovs
  returned) and the whole socket path (a ``TcpPeer`` sends into a program socket bound
  to the NIC's address; ``recvmsg(MSG_SOCK_DEVMEM)`` with its 16 ``dmabuf_cmsg``\ s, then
  ``setsockopt(SO_DEVMEM_DONTNEED)`` of the tokens).

Best of ``--repeat`` runs, garbage collector off while timing.  A report: exit status 0.
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from mockkernel_nic import nic_dev

import mockkernel
from mockkernel.net.devmem_tcp import MSG_SOCK_DEVMEM
from mockkernel.testing.net import TcpPeer
from mockkernel.testing.rdma import udmabuf
from mockkernel.uapi.linux.devmem_socket import SO_DEVMEM_DONTNEED

NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
PAGE = 4096
#: the payload of one devmem receive: 64 KiB, 16 niovs of 4 KiB, 256 TLPs at MPS 256
PAYLOAD = 65536


def _best(fn: Callable[[], None], n: int, repeat: int) -> float:
    best = float("inf")
    gc.disable()
    try:
        for _ in range(repeat):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            best = min(best, (time.perf_counter() - t) / n)
    finally:
        gc.enable()
    return best


def _drop(event: dict[str, object]) -> None:
    """A trace sink that keeps nothing."""


def _attr(atype: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return struct.pack("=HH", n, atype) + payload + bytes(-n % 4)


def _u32(atype: int, v: int) -> bytes:
    return _attr(atype, struct.pack("=I", v))


def _msg(family: int, cmd: int, flags: int, payload: bytes) -> bytes:
    body = struct.pack("=BBH", cmd, 1, 0) + payload
    return struct.pack("=IHHII", 16 + len(body), family, NLM_F_REQUEST | flags, 1, 0) + body


def _roundtrip(sock: socket.socket, req: bytes, replies: int) -> Callable[[], None]:
    def run() -> None:
        sock.send(req)
        for _ in range(replies):
            sock.recv(65536)

    return run


def _genl_family(sock: socket.socket, name: bytes) -> int:
    """``CTRL_CMD_GETFAMILY`` by name: the family id."""
    sock.send(_msg(0x10, 3, 0, _attr(2, name + b"\0")))
    reply = sock.recv(65536)
    # the reply: nlmsghdr (16), genlmsghdr (4), CTRL_ATTR_FAMILY_NAME, CTRL_ATTR_FAMILY_ID
    name_attr = 4 + len(name) + 1
    assert reply[16 + 4 + 4 : 16 + 4 + name_attr] == name + b"\0", reply
    return int(struct.unpack_from("=H", reply, 16 + 4 + (name_attr + 3) // 4 * 4 + 4)[0])


def _bind_rx(fid: int, ufd: int) -> bytes:
    """``NETDEV_CMD_BIND_RX`` of the dma-buf ``ufd`` to RX queue 0 of ifindex 2."""
    queues = _attr(2 | 0x8000, _u32(1, 0) + _u32(3, 0))
    return _msg(fid, 13, 0, _u32(1, 2) + _u32(3, ufd) + queues)


class DevmemRx(NamedTuple):
    """A 64 KiB devmem receive, two ways: ``nic()`` (the NIC's side alone) and
    ``socket()`` (a peer's send, ``recvmsg(MSG_SOCK_DEVMEM)``, ``SO_DEVMEM_DONTNEED``)."""

    nic: Callable[[], None]
    socket: Callable[[], None]


@contextmanager
def devmem_rx(kernel: mockkernel.Kernel) -> Iterator[DevmemRx]:
    """A udmabuf bound to ``eth0``'s RX queue 0 and a TCP connection from a test-side
    peer to a program socket on the NIC's address (the redirection installed); closed
    and unbound on exit.  ``benchmarks/run.py`` measures its ``socket`` row too."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
    ufd, memfd = udmabuf(64 * PAGE)
    try:
        fid = _genl_family(sock, b"netdev")
        sock.send(_bind_rx(fid, ufd))
        assert struct.unpack_from("=H", sock.recv(65536), 4)[0] == fid  # not an error
        nic = nic_dev(kernel)
        payload = bytes(PAYLOAD)

        def rx() -> None:
            nic.dontneed(nic.receive(0, payload))

        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            server.bind((nic.netdev.ipv4, 0))
            server.listen(1)
            peer = TcpPeer.connect(kernel, *server.getsockname())
            conn, _ = server.accept()
        except BaseException:
            server.close()
            raise
        ancsize = socket.CMSG_SPACE(24) * 16

        def rx_socket() -> None:
            assert peer.send(payload) == len(payload)
            data, anc, _flags, _addr = conn.recvmsg(1 << 17, ancsize, MSG_SOCK_DEVMEM)
            assert len(data) == len(payload) and len(anc) == 16
            tokens = b"".join(
                struct.pack("=II", struct.unpack_from("=I", c, 12)[0], 1) for _, _, c in anc
            )
            conn.setsockopt(socket.SOL_SOCKET, SO_DEVMEM_DONTNEED, tokens)

        try:
            yield DevmemRx(rx, rx_socket)
        finally:
            peer.close()
            conn.close()
            server.close()
    finally:
        sock.close()
        os.close(ufd)
        os.close(memfd)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--requests", type=int, default=2000)
    ns = ap.parse_args(argv)
    rows: list[tuple[str, float, str]] = []
    kernel = mockkernel.boot()
    try:
        with kernel.install():
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
            ufd, memfd = udmabuf(64 * PAGE)
            try:
                getfam = _msg(0x10, 3, 0, _attr(2, b"netdev\0"))
                fid = _genl_family(sock, b"netdev")
                qget = _msg(fid, 10, 0, _u32(1, 0) + _u32(2, 2) + _u32(3, 0))
                qdump = _msg(fid, 10, NLM_F_DUMP, _u32(2, 2))
                n = ns.requests
                for label, fn, count in (
                    ("nlctrl GETFAMILY by name", _roundtrip(sock, getfam, 1), n),
                    ("netdev QUEUE_GET (do)", _roundtrip(sock, qget, 1), n),
                    ("netdev QUEUE_GET dump (16 queues)", _roundtrip(sock, qdump, 1), n // 4),
                ):
                    t = _best(fn, max(count, 10), ns.repeat)
                    rows.append((label, t, f"{1 / t:>10,.0f} round-trips/s"))
                bind = _bind_rx(fid, ufd)

                def bind_unbind() -> None:
                    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
                    s.send(bind)
                    s.recv(65536)
                    s.close()

                t = _best(bind_unbind, max(n // 10, 10), ns.repeat)
                rows.append(("socket + BIND_RX (udmabuf) + close (unbind)", t, ""))
            finally:
                sock.close()
                os.close(ufd)
                os.close(memfd)
            with devmem_rx(kernel) as rx:
                for tracing in (False, True):
                    state = "on " if tracing else "off"
                    for label, fn in (
                        ("devmem receive 64 KiB (16 niovs, 256 TLPs)", rx.nic),
                        ("  same via socket (send, recvmsg, DONTNEED)", rx.socket),
                    ):
                        if tracing:
                            kernel.tracer.add_sink(_drop)
                        try:
                            t = _best(fn, max(n // 20, 10), ns.repeat)
                        finally:
                            if tracing:
                                kernel.tracer.remove_sink(_drop)
                        rows.append(
                            (f"{label}, tracing {state}", t, f"{PAYLOAD / t / 1e6:>8.1f} MB/s")
                        )
    finally:
        kernel.shutdown()

    print(
        f"netdev netlink / devmem RX benchmark (python {sys.version.split()[0]}, "
        f"best of {ns.repeat})"
    )
    print()
    width = max(len(r[0]) for r in rows)
    print(f"  {'operation':<{width}}  {'us/op':>9}")
    for label, t, extra in rows:
        print(f"  {label:<{width}}  {t * 1e6:>9.2f}  {extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
