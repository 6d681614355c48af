r"""Test-side devmem TCP helpers: the remote peer of a connection into a mock NIC.

* :meth:`TcpPeer.connect` -- connect to a socket the program listens with on a mock
  NIC's address (``socket.socket(AF_INET, SOCK_STREAM)`` bound to ``NetDevice.ipv4``);
  the program ``accept()``\ s it; :meth:`TcpPeer.send` puts bytes on the wire.
* :func:`connect` -- no program socket at all: a connection steered to RX ``queue`` of
  ``dev``, returning the peer and a :class:`DevmemSocket` with the receive calls a
  devmem program makes (``recvmsg``, ``recv``, ``recv_into``,
  ``setsockopt(SO_DEVMEM_DONTNEED)``, ``close``), for driver-level tests.

A queue without a devmem binding carries an ordinary readable flow (plain bytes); the
NIC's ``linear_payload`` leaves that many bytes of each segment in the linear head
(``SCM_DEVMEM_LINEAR``); the peer's ``mss`` cuts its bytes into segments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..net.devmem_tcp import DevmemTcpSock

if TYPE_CHECKING:
    from ..kernel import Kernel
    from ..net.netdev import NetDevice

__all__ = ["DevmemSocket", "TcpPeer", "connect"]


class DevmemSocket:
    """The program's end: the ``socket.socket`` receive calls of a devmem TCP socket."""

    def __init__(self, sk: DevmemTcpSock) -> None:
        self.sk = sk

    def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, tuple[str, int]]:
        data, anc, msg_flags = self.sk.recvmsg(bufsize, ancbufsize, flags)
        return data, anc, msg_flags, ("0.0.0.0", 0)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        return self.sk.recvmsg(bufsize, 0, flags)[0]

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        data = self.sk.recvmsg(nbytes or len(view), 0, flags)[0]
        view[: len(data)] = data
        return len(data)

    def setsockopt(self, level: int, optname: int, value: Any, optlen: int | None = None) -> int:
        return self.sk.setsockopt(level, optname, value)

    def close(self) -> None:
        self.sk.close()

    def __enter__(self) -> DevmemSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TcpPeer:
    """The remote sender: its bytes arrive on the NIC's queue (``send`` never blocks: it
    returns how many bytes the receiver took now; the rest goes when niovs come back)."""

    def __init__(self, sk: DevmemTcpSock) -> None:
        self.sk = sk
        self.sent = 0

    @classmethod
    def connect(cls, kernel: Kernel, addr: str, port: int, mss: int = 0) -> TcpPeer:
        """Connect to a listening mock socket (``ECONNREFUSED`` when none); ``mss``: the
        segment size the sent bytes are cut into (0: all pending bytes as one segment)."""
        from ..net import net_state

        return cls(net_state(kernel).tcp.connect(addr, port, mss))

    @property
    def mss(self) -> int:
        """The segment size (0: everything pending as one segment); settable."""
        return self.sk.mss

    @mss.setter
    def mss(self, value: int) -> None:
        self.sk.mss = value

    def send(self, data: bytes) -> int:
        self.sent += len(data)
        return self.sk.deliver(bytes(data))

    def recv(self, n: int = -1) -> bytes:
        """What the program sent (``send``/``sendall``/``os.write`` on its socket), up to
        ``n`` bytes (all with -1), consumed."""
        tx = self.sk.tx
        k = len(tx) if n < 0 else min(n, len(tx))
        out = bytes(tx[:k])
        del tx[:k]
        return out

    @property
    def pending(self) -> int:
        """Bytes sent but not yet taken by the NIC (back-pressure)."""
        return len(self.sk.pending)

    def close(self) -> None:
        """FIN: once the queue drains the receiver reads end of stream."""
        self.sk.peer_closed = True


def connect(
    kernel: Kernel, dev: NetDevice, queue: int, mss: int = 0
) -> tuple[TcpPeer, DevmemSocket]:
    """A connection whose packets land on RX ``queue`` of ``dev``: (peer, socket)."""
    sk = DevmemTcpSock(kernel, dev, queue, mss)
    return TcpPeer(sk), DevmemSocket(sk)
