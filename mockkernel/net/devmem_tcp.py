"""The devmem TCP receive path of one connected socket (``net/ipv4/tcp.c``, ``sock.c``).

A :class:`DevmemTcpSock` is the receiving end of a mock TCP connection whose packets
arrive on a devmem-bound RX queue of a NIC.  The NIC driver does the DMA (its
``receive(queue, payload)`` returns the fragments written, each naming its binding,
niov, dma-buf offset and size); the socket queues the fragments and gives them to
the program the way Linux 7.2 does:

* ``recvmsg(bufsize, ancbufsize, MSG_SOCK_DEVMEM)`` (``tcp_recvmsg_dmabuf``): the
  return value counts the fragment bytes but nothing is written to the buffer (the mock
  returns that many zero bytes where CPython returns its untouched buffer; ``b""`` is
  end of stream), one ``SCM_DEVMEM_DMABUF`` control message (``struct dmabuf_cmsg``) per
  fragment, each with a token from the socket's ``sk_user_frags`` (lowest free id from
  1, ``XA_FLAGS_ALLOC1``); at most ``bufsize`` payload bytes are accounted; a control
  buffer too small for the first record is ``ETOOSMALL`` (``put_cmsg_notrunc``).
* ``recvmsg``/``recv`` without ``MSG_SOCK_DEVMEM`` while devmem data is queued:
  ``EFAULT`` (the frags are unreadable).
* ``setsockopt(SOL_SOCKET, SO_DEVMEM_DONTNEED, tokens)`` (``sock_devmem_dontneed``):
  ``optlen`` not a multiple of 8 or above 128 tokens → ``EINVAL``; every token that
  names an outstanding fragment frees it, unknown tokens are skipped silently; the
  number freed is returned (Python's ``socket.setsockopt`` drops that value, the mock
  returns it); more than 1024 fragments in one call stop there.
* Closing the socket returns every outstanding fragment (``tcp_release_user_frags``).

Back-pressure: when the binding has no free niov the NIC accepts no more payload;
what the peer sent stays pending (as an unacknowledged TCP window would) and is
delivered as soon as a ``SO_DEVMEM_DONTNEED`` frees niovs.

Connections (:class:`TcpTable`, ``kernel.net.tcp``): a program's socket listens on
``(address, port)`` where ``address`` is a mock NIC's IPv4 address
(``NetDevice.ipv4``); a peer (:meth:`TcpTable.connect`, test side, or a scripted peer
from the NIC's topology options that connects and sends as soon as the port listens)
lands in the accept queue.  The flow is steered to the NIC's lowest-numbered RX queue
with a devmem binding (what ``ethtool -N ... flow-type tcp4 ... action Q`` sets up
for ``ncdevmem``); with no bound queue the connection is refused (only devmem flows
are modelled).

Only the data path is modelled: no handshake, headers, sequence numbers or
``SCM_DEVMEM_LINEAR`` (header split never fails on the mock NIC).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from errno import EADDRINUSE, EBADF, ECONNREFUSED, EFAULT, EINVAL, ENOPROTOOPT, EPIPE
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import kerr
from ..uapi.linux.devmem_socket import SCM_DEVMEM_DMABUF, SO_DEVMEM_DONTNEED

if TYPE_CHECKING:
    from ..kernel import Kernel
    from .netdev import DevmemBinding, NetDevice

__all__ = [
    "ETOOSMALL",
    "MAX_DONTNEED_FRAGS",
    "MAX_DONTNEED_TOKENS",
    "MSG_SOCK_DEVMEM",
    "DevmemTcpSock",
    "RxFrag",
    "TcpListener",
    "TcpTable",
]

MSG_SOCK_DEVMEM = 0x2000000
ETOOSMALL = 525  # kernel-internal errno that put_cmsg_notrunc lets reach userspace
MAX_DONTNEED_TOKENS = 128
MAX_DONTNEED_FRAGS = 1024
_SOL_SOCKET = 1
_MSG_DONTWAIT = 0x40
_MSG_CTRUNC = 0x8
_CMSG_SPACE = 16 + 24  # CMSG_SPACE(sizeof(struct dmabuf_cmsg)) on 64-bit
_DMABUF_CMSG = struct.Struct("=QIIII")
_TOKEN = struct.Struct("=II")


class RxFrag(Protocol):
    """A fragment the NIC wrote: binding id, niov, dma-buf offset, size."""

    @property
    def binding(self) -> int: ...
    @property
    def niov(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def size(self) -> int: ...


class RxPath(Protocol):
    """What the NIC driver provides: DMA ``payload`` into RX ``queue``'s binding."""

    def receive(self, queue: int, payload: bytes) -> list[Any]: ...


@dataclass
class _Queued:
    binding: int
    niov: int
    offset: int
    size: int
    used: int = 0  # bytes of the fragment already handed out (a partial read)


class DevmemTcpSock:
    """The receive side of one connection steered to ``dev``'s RX ``queue``."""

    def __init__(self, kernel: Kernel, dev: NetDevice, queue: int) -> None:
        self.kernel = kernel
        self.dev = dev
        self.queue = queue
        self.rxq: deque[_Queued] = deque()
        #: ``sk_user_frags``: token → (binding id, niov)
        self.user_frags: dict[int, tuple[int, int]] = {}
        self.pending = bytearray()  # sent by the peer, not yet accepted by the NIC
        self.closed = False
        self.peer_closed = False

    # -- the wire -------------------------------------------------------------------------------
    def _rx(self) -> RxPath:
        rx: RxPath = self.dev.driver_data
        return rx

    def deliver(self, data: bytes) -> int:
        """The peer sends ``data``: the NIC DMAs what fits; the rest waits.  Returns the
        bytes the NIC accepted now (of ``data`` and anything already pending)."""
        if self.closed:
            raise kerr(EPIPE, "connection closed")
        self.pending += data
        return self.flush()

    def flush(self) -> int:
        """Retry the pending bytes (after fragments came back)."""
        if not self.pending:
            return 0
        frags = self._rx().receive(self.queue, bytes(self.pending))
        n = 0
        for f in frags:
            self.rxq.append(_Queued(f.binding, f.niov, f.offset, f.size))
            n += f.size
        del self.pending[:n]
        return n

    # -- the program side -----------------------------------------------------------------------
    def readable(self) -> int:
        return sum(q.size - q.used for q in self.rxq)

    def _alloc_token(self, binding: int, niov: int) -> int:
        token = 1
        while token in self.user_frags:
            token += 1
        self.user_frags[token] = (binding, niov)
        return token

    def recvmsg(
        self, bufsize: int, ancbufsize: int, flags: int
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int]:
        """``tcp_recvmsg``: (data, ancdata, msg_flags); raises ``BlockingIOError`` when
        nothing is queued and the peer is still connected."""
        if self.closed:
            raise kerr(EBADF)
        if bufsize < 0:
            raise ValueError("negative buffersize in recvmsg")
        if not self.rxq:
            if self.peer_closed or bufsize == 0:
                return b"", [], 0
            raise BlockingIOError(11, "Resource temporarily unavailable")
        if not flags & MSG_SOCK_DEVMEM:
            raise kerr(EFAULT, "devmem payload needs MSG_SOCK_DEVMEM")
        anc: list[tuple[int, int, bytes]] = []
        room = ancbufsize
        copied = 0
        while self.rxq and copied < bufsize:
            if room < _CMSG_SPACE:
                if not anc:
                    raise kerr(ETOOSMALL, "control buffer too small for a dmabuf_cmsg")
                break
            q = self.rxq[0]
            n = min(q.size - q.used, bufsize - copied)
            # a fragment read in pieces: each piece takes its own token (one more
            # reference on the niov), the niov is free once every piece came back
            token = self._alloc_token(q.binding, q.niov)
            anc.append(
                (
                    _SOL_SOCKET,
                    SCM_DEVMEM_DMABUF,
                    _DMABUF_CMSG.pack(q.offset + q.used, n, token, q.binding, 0),
                )
            )
            room -= _CMSG_SPACE
            copied += n
            q.used += n
            if q.used == q.size:
                self.rxq.popleft()
        if self.kernel.tracer.enabled:
            self.kernel.tracer.emit("devmem_tcp.recvmsg", bytes=copied, frags=len(anc))
        return bytes(copied), anc, 0

    def setsockopt(self, level: int, optname: int, value: Any) -> int:
        if self.closed:
            raise kerr(EBADF)
        if level != _SOL_SOCKET or optname != SO_DEVMEM_DONTNEED:
            raise kerr(ENOPROTOOPT)
        data = bytes(value)
        if len(data) % _TOKEN.size or len(data) > _TOKEN.size * MAX_DONTNEED_TOKENS:
            raise kerr(EINVAL)
        freed = 0
        frags = 0
        for start, count in _TOKEN.iter_unpack(data):
            for j in range(count):
                frags += 1
                if frags > MAX_DONTNEED_FRAGS:
                    break
                entry = self.user_frags.pop((start + j) & 0xFFFFFFFF, None)
                if entry is None:
                    continue
                self._put_niov(*entry)
                freed += 1
            if frags > MAX_DONTNEED_FRAGS:
                break
        if freed:
            self.flush()
        return freed

    def _put_niov(self, binding_id: int, niov: int) -> None:
        """Drop one user reference; the niov is free when no token nor queued frag holds it."""
        if any(e == (binding_id, niov) for e in self.user_frags.values()):
            return
        if any(q.binding == binding_id and q.niov == niov for q in self.rxq):
            return
        binding = self._binding(binding_id)
        if binding is not None:
            binding.free_niov(niov)

    def _binding(self, binding_id: int) -> DevmemBinding | None:
        from . import net_state

        return net_state(self.kernel).netdev.bindings.get(binding_id)

    def close(self) -> None:
        """``tcp_release_user_frags`` + the receive queue purge."""
        if self.closed:
            return
        held = {(q.binding, q.niov) for q in self.rxq} | set(self.user_frags.values())
        self.rxq.clear()
        self.user_frags.clear()
        self.pending.clear()
        self.closed = True
        for binding_id, niov in sorted(held):
            binding = self._binding(binding_id)
            if binding is not None:
                binding.free_niov(niov)


@dataclass(eq=False)
class TcpListener:
    """A listening socket on a NIC address: its accept queue."""

    dev: NetDevice
    addr: str
    port: int
    backlog: deque[DevmemTcpSock]


class TcpTable:
    """The listening sockets on mock NIC addresses and the scripted peers waiting for them."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.listeners: dict[tuple[str, int], TcpListener] = {}
        self._ephemeral = 32768

    def nic_for(self, addr: str) -> NetDevice | None:
        """The present net device whose IPv4 address is ``addr``."""
        from . import net_state

        for dev in net_state(self.kernel).netdev.devices.values():
            if dev.present and dev.ipv4 is not None and dev.ipv4 == addr:
                return dev
        return None

    def port_for(self, addr: str, port: int) -> int:
        """``inet_csk_get_port``: ``EADDRINUSE`` for a listening port, 0 picks one."""
        if port == 0:
            while (addr, self._ephemeral) in self.listeners:
                self._ephemeral += 1
            return self._ephemeral
        if (addr, port) in self.listeners:
            raise kerr(EADDRINUSE)
        return port

    def listen(self, addr: str, port: int) -> TcpListener:
        dev = self.nic_for(addr)
        if dev is None:
            raise kerr(EINVAL, f"{addr} is not a mock NIC address")
        if (addr, port) in self.listeners:
            raise kerr(EADDRINUSE)
        lsn = TcpListener(dev, addr, port, deque())
        self.listeners[(addr, port)] = lsn
        for data in dev.scripted_peers.pop(port, []):
            sk = self.connect(addr, port)
            sk.deliver(data)
            sk.peer_closed = True
        return lsn

    def unlisten(self, lsn: TcpListener) -> None:
        """Close a listener: connections never accepted are reset."""
        if self.listeners.get((lsn.addr, lsn.port)) is lsn:
            del self.listeners[(lsn.addr, lsn.port)]
        while lsn.backlog:
            lsn.backlog.popleft().close()

    def connect(self, addr: str, port: int) -> DevmemTcpSock:
        """A peer connects to ``(addr, port)``: the new connection's socket, queued for accept."""
        lsn = self.listeners.get((addr, port))
        if lsn is None:
            raise kerr(ECONNREFUSED)
        queue = next((q.index for q in lsn.dev.rx if q.binding is not None), None)
        if queue is None:
            raise kerr(ECONNREFUSED, f"no devmem-bound RX queue on {lsn.dev.name}")
        sk = DevmemTcpSock(self.kernel, lsn.dev, queue)
        lsn.backlog.append(sk)
        return sk
