"""The devmem TCP receive path of one connected socket (``net/ipv4/tcp.c``, ``sock.c``).

A :class:`DevmemTcpSock` is the receiving end of a mock TCP connection steered to one RX
queue of a NIC.  What the peer sends arrives as **skbs** (one per segment), of two kinds,
as ``skb_frags_readable()`` tells them apart upstream:

* **unreadable** (devmem): the queue has a devmem binding; the NIC keeps the first
  ``linear_payload`` bytes of the segment in the skb's linear head (kernel memory: header
  split left them with the headers) and DMAs the rest into the bound dma-buf (its
  ``receive(queue, payload)`` returns the fragments written, each naming its binding,
  niov, dma-buf offset and size);
* **readable**: the queue has no binding (an ordinary flow), or the whole segment fitted in
  the linear head (no net_iov frag, so ``skb->unreadable`` is never set): plain bytes in
  kernel memory.

The program reads them the way Linux 7.2 does (``tcp_recvmsg_locked``):

* a readable skb is copied into the buffer as a normal ``recv``, with no control message,
  with or without ``MSG_SOCK_DEVMEM``;
* an unreadable skb needs ``MSG_SOCK_DEVMEM`` (without it: ``EFAULT`` if nothing was read
  yet in the call) and goes through ``tcp_recvmsg_dmabuf``: the linear payload is copied
  into the buffer and reported by one ``SCM_DEVMEM_LINEAR`` control message
  (``struct dmabuf_cmsg`` with only ``frag_size`` set), then one ``SCM_DEVMEM_DMABUF``
  per fragment (offset, size, a token from the socket's ``sk_user_frags``: lowest free id
  from 1, ``XA_FLAGS_ALLOC1``, and the dmabuf id); the fragment bytes are counted in the
  return value but never written to the buffer (the buffer's cursor only moves for copied
  bytes, so the linear bytes sit packed at its start; the mock returns zero bytes for the
  rest where CPython returns its untouched buffer; ``b""`` is end of stream);
* one call never mixes the two kinds (``last_copied_dmabuf``): it stops at the boundary
  and returns what it has;
* at most ``bufsize`` bytes are accounted; every control message goes through
  ``put_cmsg_notrunc``: a control buffer that cannot hold a whole one
  (``CMSG_LEN(sizeof(struct dmabuf_cmsg))``) is ``ETOOSMALL`` (525) when nothing was
  received yet in the call, else the call returns the bytes so far (no ``MSG_CTRUNC``).
* ``setsockopt(SOL_SOCKET, SO_DEVMEM_DONTNEED, tokens)`` (``sock_devmem_dontneed``):
  ``optlen`` not a multiple of 8 or above 128 tokens → ``EINVAL``; every token that
  names an outstanding fragment frees it, unknown tokens are skipped silently; the
  number freed is returned (Python's ``socket.setsockopt`` drops that value, the mock
  returns it); more than 1024 fragments in one call stop there.
* Closing the socket returns every outstanding fragment (``tcp_release_user_frags``).
* Flags (``tcp_recvmsg``): ``MSG_ERRQUEUE`` → ``EAGAIN`` (``ip_recv_error``: the error
  queue is always empty); ``MSG_OOB`` → ``EINVAL`` (``tcp_recv_urg``: no urgent data);
  ``MSG_PEEK`` reads a copy of the queue (devmem fragments still get real tokens, each a
  reference on its niov, as ``tcp_recvmsg_dmabuf`` takes one under ``MSG_PEEK`` too);
  ``MSG_TRUNC`` consumes and counts without copying, checking kinds or giving tokens
  (skipped fragments' niovs go back); ``MSG_WAITALL`` only matters when the queue runs
  dry first: a blocking caller (``blocking=True``) that could never be satisfied gets
  ``EAGAIN`` with nothing consumed.

A fragment holds its binding object, not just its id: a binding unbound meanwhile
(``net_devmem_unbind_dmabuf``) stays attached and mapped until its last niov comes back.

Segments: the peer's bytes are cut into segments of at most ``mss`` bytes (the
connection's attribute; 0, the default, offers everything pending as one segment, as a
GRO-coalesced skb).  Back-pressure: when the binding has no free niov the NIC accepts no
more payload (a segment needing a niov is not taken at all, its linear part neither);
what the peer sent stays pending (as an unacknowledged TCP window would) and is
delivered as soon as a ``SO_DEVMEM_DONTNEED`` frees niovs.  A readable flow takes
everything at once.  Whether a segment lands in devmem is decided when it arrives: a
binding installed or removed mid-connection switches the kind of the next skbs.

Connections (:class:`TcpTable`, ``kernel.net.tcp``): a program's socket listens on
``(address, port)`` where ``address`` is a mock NIC's IPv4 address
(``NetDevice.ipv4``); a peer (:meth:`TcpTable.connect`, test side, or a scripted peer
from the NIC's topology options that connects and sends as soon as the port listens)
lands in the accept queue -- of the listener on that address, else of a wildcard
listener on the port (``INADDR_ANY``/``::``: :meth:`TcpTable.listen_any`, one kernel);
no listener → ``ECONNREFUSED``.  Each arrival wakes the table's wait queue (``wq``),
where blocking ``accept``/``recv`` calls sleep (``tcp_sock.py``).  The flow is steered to the
NIC's lowest-numbered RX queue with a devmem binding (what ``ethtool -N ... flow-type
tcp4 ... action Q`` sets up for ``ncdevmem``); with no bound queue it goes to queue 0
(the mock's stand-in for RSS) as an ordinary readable flow.

Only the data path is modelled: no handshake, headers, sequence numbers, retransmission
or coalescing of queued skbs.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from errno import (
    EADDRINUSE,
    EAGAIN,
    EBADF,
    ECONNREFUSED,
    EFAULT,
    EINVAL,
    ENOPROTOOPT,
    EOPNOTSUPP,
    EPIPE,
)
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import KernelBug, kerr
from ..trace import TracePoint
from ..uapi.linux.devmem_socket import (
    SCM_DEVMEM_DMABUF,
    SCM_DEVMEM_LINEAR,
    SO_DEVMEM_DONTNEED,
)
from ..wait import WaitQueueHead

if TYPE_CHECKING:
    from ..process import TaskContext
    from .netdev import DevmemBinding, NetDevice

__all__ = [
    "ETOOSMALL",
    "MAX_DONTNEED_FRAGS",
    "MAX_DONTNEED_TOKENS",
    "MSG_ERRQUEUE",
    "MSG_OOB",
    "MSG_PEEK",
    "MSG_SOCK_DEVMEM",
    "MSG_TRUNC",
    "MSG_WAITALL",
    "DevmemTcpSock",
    "RxFrag",
    "TcpListener",
    "TcpTable",
    "WouldBlock",
]

trace_devmem_tcp_rx_skb = TracePoint(
    "devmem_tcp.rx_skb", "dev", "queue", "readable", "linear", "frags", "bytes"
)
trace_devmem_tcp_recvmsg = TracePoint(
    "devmem_tcp.recvmsg", "bytes", "frags", "linear", "readable", "peek", "trunc"
)
trace_devmem_tcp_not_modelled = TracePoint("devmem_tcp.not_modelled", "what")

MSG_SOCK_DEVMEM = 0x2000000
MSG_OOB = 0x1
MSG_PEEK = 0x2
MSG_TRUNC = 0x20
MSG_WAITALL = 0x100
MSG_ERRQUEUE = 0x2000
ETOOSMALL = 525  # kernel-internal errno that put_cmsg_notrunc lets reach userspace
MAX_DONTNEED_TOKENS = 128
MAX_DONTNEED_FRAGS = 1024
_SOL_SOCKET = 1
_MSG_DONTWAIT = 0x40
#: send flags the byte-stream model honours (MSG_DONTWAIT, MSG_NOSIGNAL, MSG_MORE)
_SEND_FLAGS = 0x40 | 0x4000 | 0x8000
_MSG_CTRUNC = 0x8
_CMSG_LEN = 16 + 24  # CMSG_LEN(sizeof(struct dmabuf_cmsg)) on 64-bit: what must fit
_CMSG_SPACE = 16 + 24  # CMSG_SPACE(...): what one takes (24 is already 8-aligned)
_DMABUF_CMSG = struct.Struct("=QIIII")
_TOKEN = struct.Struct("=II")


class WouldBlock(BlockingIOError):
    """``EAGAIN`` because nothing is queued yet (where a caller with a timeout times
    out), as opposed to an ``EAGAIN`` that is the answer (an empty error queue)."""


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
    """What the NIC driver provides: DMA ``payload`` into RX ``queue``'s binding;
    ``linear_payload``: the payload bytes of each segment its header split leaves in the
    skb's linear head (0: full split)."""

    @property
    def linear_payload(self) -> int: ...
    def receive(self, queue: int, payload: bytes) -> list[Any]: ...


@dataclass
class _Queued:
    owner: DevmemBinding  # the niov's binding (it may be unbound since: still valid)
    niov: int
    offset: int
    size: int
    used: int = 0  # bytes of the fragment already handed out (a partial read)

    @property
    def binding(self) -> int:
        return self.owner.id


@dataclass(eq=False)
class _Skb:
    """One received segment: linear payload (kernel memory) then devmem fragments."""

    linear: bytes  # the linear payload (for a readable skb: all of it)
    frags: deque[_Queued]  # the fragments not yet (fully) handed out
    unreadable: bool  # ``!skb_frags_readable()``: it was built with net_iov frags
    pos: int = 0  # linear bytes already read

    def head(self) -> int:
        """Linear bytes not yet read."""
        return len(self.linear) - self.pos

    def take(self, n: int) -> bytes:
        """Read ``n`` linear bytes."""
        out = self.linear[self.pos : self.pos + n]
        self.pos += len(out)
        return out

    def remaining(self) -> int:
        return self.head() + sum(q.size - q.used for q in self.frags)

    def copy(self) -> _Skb:
        """A private copy to read from without consuming (``MSG_PEEK``)."""
        frags = deque(_Queued(q.owner, q.niov, q.offset, q.size, q.used) for q in self.frags)
        return _Skb(self.linear, frags, self.unreadable, self.pos)


class DevmemTcpSock:
    """The receive side of one connection steered to ``dev``'s RX ``queue``."""

    def __init__(
        self,
        kernel: TaskContext,
        dev: NetDevice,
        queue: int,
        mss: int = 0,
        wq: WaitQueueHead | None = None,
    ) -> None:
        self.kernel = kernel
        #: ``sk_sleep(sk)``: woken when bytes arrive, either side closes or the program
        #: sends (its connecting peer may sleep in ``recv``); the table's, shared
        self.wq = wq if wq is not None else WaitQueueHead()
        self.dev = dev
        self.queue = queue
        #: the segment size the peer's bytes are cut into (0: all pending as one)
        self.mss = mss
        self.rxq: deque[_Skb] = deque()
        #: ``sk_user_frags``: token → (binding, niov); a token holds a reference on the
        #: niov, so on its binding too (an unbound binding waits for it)
        self.user_frags: dict[int, tuple[DevmemBinding, int]] = {}
        self.pending = bytearray()  # sent by the peer, not yet accepted by the NIC
        #: what the program sent to the peer (``TcpPeer.recv`` reads it)
        self.tx = bytearray()
        #: the local address the peer connected to (a wildcard listener's connection
        #: names it in ``getsockname``)
        self.laddr: str | None = None
        self._closed = False
        self._peer_closed = False

    @property
    def closed(self) -> bool:
        """The program closed its socket (``tcp_close``)."""
        return self._closed

    @closed.setter
    def closed(self, value: bool) -> None:
        self._closed = value
        self.wq.wake_up()  # its connecting peer reads the end of the stream

    @property
    def peer_closed(self) -> bool:
        """The peer sent its FIN: once the queue drains ``recv`` reads end of stream."""
        return self._peer_closed

    @peer_closed.setter
    def peer_closed(self, value: bool) -> None:
        self._peer_closed = value
        self.wq.wake_up()  # sk_state_change: a sleeping recv reads the end of the stream

    def send(self, data: bytes, flags: int = 0) -> int:
        """The program's ``send``: the bytes go to the peer at once.  Only the byte stream
        is modelled for transmit (no TX queue, no DMA, no TLPs); a peer that closed makes
        it ``EPIPE`` (the mock peer's close is a full close)."""
        if flags & ~_SEND_FLAGS:
            trace_devmem_tcp_not_modelled(self.kernel.tracer, f"send flags {flags:#x}")
            raise kerr(EOPNOTSUPP, f"send flags {flags & ~_SEND_FLAGS:#x} are not modelled")
        if self.closed:
            raise kerr(EBADF)
        if self.peer_closed:
            raise kerr(EPIPE)
        self.tx += data
        self.wq.wake_up()  # the connecting peer's recv
        return len(data)

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
        """Offer the pending bytes, segment by segment (again after fragments came back)."""
        n = 0
        while self.pending:
            seg = bytes(self.pending[: self.mss] if self.mss > 0 else self.pending)
            taken = self._receive_segment(seg)
            del self.pending[:taken]
            n += taken
            if taken < len(seg):
                break
        return n

    def _receive_segment(self, seg: bytes) -> int:
        """One segment on the wire: the skb the NIC builds of it, queued; the bytes taken."""
        rxq = self.dev.rx[self.queue]
        if rxq.binding is None:  # no memory provider: ordinary page-pool pages
            skb = _Skb(seg, deque(), unreadable=False)
        else:
            rx = self._rx()
            linear = min(max(rx.linear_payload, 0), len(seg))
            frags: deque[_Queued] = deque()
            if linear < len(seg):
                for f in rx.receive(self.queue, seg[linear:]):
                    if f.binding != rxq.binding.id:
                        raise KernelBug(f"{self.dev.name}: a frag of binding {f.binding}")
                    frags.append(_Queued(rxq.binding, f.niov, f.offset, f.size))
                if not frags:  # no niov (or revoked): the whole segment waits
                    return 0
            skb = _Skb(seg[:linear], frags, unreadable=bool(frags))
        self.rxq.append(skb)
        self.wq.wake_up()  # sk_data_ready
        taken = skb.remaining()
        rxq.stats_packets += 1  # the queue's counters (netdev qstats-get)
        rxq.stats_bytes += taken
        if self.kernel.tracer.enabled:  # (a hot path: no call while off)
            trace_devmem_tcp_rx_skb(
                self.kernel.tracer,
                self.dev.name,
                self.queue,
                not skb.unreadable,
                len(skb.linear) if skb.unreadable else 0,
                len(skb.frags),
                taken,
            )
        return taken

    # -- the program side -----------------------------------------------------------------------
    def readable(self) -> int:
        return sum(skb.remaining() for skb in self.rxq)

    def _alloc_token(self, binding: DevmemBinding, niov: int) -> int:
        token = 1
        while token in self.user_frags:
            token += 1
        self.user_frags[token] = (binding, niov)
        return token

    def recvmsg(
        self, bufsize: int, ancbufsize: int, flags: int, *, blocking: bool = False
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int]:
        """``tcp_recvmsg`` as CPython's ``recvmsg`` returns it: (data, ancdata,
        msg_flags), the data padded with zero bytes for what was counted but not copied
        (devmem fragments, ``MSG_TRUNC``).  See :meth:`recvmsg_iov`."""
        iov, copied, anc, msg_flags = self.recvmsg_iov(
            bufsize, ancbufsize, flags, blocking=blocking
        )
        return iov + bytes(copied - len(iov)), anc, msg_flags

    def recvmsg_iov(
        self, bufsize: int, ancbufsize: int, flags: int, *, blocking: bool = False
    ) -> tuple[bytes, int, list[tuple[int, int, bytes]], int]:
        """``tcp_recvmsg``: (bytes written to the buffer from its start, the return
        value, ancdata, msg_flags); raises ``BlockingIOError`` (:class:`WouldBlock`)
        when nothing is queued and the peer is still connected.

        ``blocking``: the caller would sleep for more data (a blocking socket, no
        ``MSG_DONTWAIT``): a ``MSG_WAITALL`` that what is queued cannot fill, the peer
        still connected, would never return and raises ``EAGAIN`` instead, consuming
        nothing (as a blocking recv with nothing queued does)."""
        if self.closed:
            raise kerr(EBADF)
        if bufsize < 0:
            raise ValueError("negative buffersize in recvmsg")
        if flags & MSG_ERRQUEUE:  # inet_recv_error -> ip_recv_error: the queue is empty
            raise kerr(EAGAIN, "the socket's error queue is empty")
        if flags & MSG_OOB:  # tcp_recv_urg: no urgent data (the peer never sends any)
            raise kerr(EINVAL, "no urgent data to read")
        if not self.rxq:
            if self.peer_closed or bufsize == 0:
                return b"", 0, [], 0
            raise WouldBlock(EAGAIN, "Resource temporarily unavailable")
        if bufsize == 0:
            skb = self.rxq[0]
            if skb.unreadable and not flags & (MSG_SOCK_DEVMEM | MSG_TRUNC):
                raise kerr(EFAULT, "devmem payload needs MSG_SOCK_DEVMEM")
            return b"", 0, [], 0
        waitall = flags & MSG_WAITALL and blocking and not self.peer_closed
        if waitall and not self.fills(bufsize, ancbufsize, flags):
            raise kerr(
                EAGAIN,
                f"a blocking recv with MSG_WAITALL for {bufsize} bytes, "
                f"{self.readable()} queued, would never return",
            )
        peek = bool(flags & MSG_PEEK)
        queue = deque(skb.copy() for skb in self.rxq) if peek else self.rxq
        copied, iov, anc, last_unreadable, _ran_dry = self._read(
            queue, bufsize, ancbufsize, flags, dry=False
        )
        if self.kernel.tracer.enabled:  # (a hot path: no call while off)
            trace_devmem_tcp_recvmsg(
                self.kernel.tracer,
                copied,
                sum(1 for _l, t, _d in anc if t == SCM_DEVMEM_DMABUF),
                len(iov) if last_unreadable else 0,
                not last_unreadable,
                peek,
                bool(flags & MSG_TRUNC),
            )
        return bytes(iov), copied, anc, 0

    def fills(self, bufsize: int, ancbufsize: int, flags: int) -> bool:
        """Does what is queued fill a ``bufsize`` read, or reach where the read stops (a
        kind boundary, a full control buffer)?  A dry run: nothing is consumed."""
        dry = deque(skb.copy() for skb in self.rxq)
        try:
            copied, _i, _a, _u, ran_dry = self._read(dry, bufsize, ancbufsize, flags, dry=True)
        except OSError:
            return True  # the read fails at once (EFAULT, ETOOSMALL): it does not wait
        return not (ran_dry and copied < bufsize)

    def _read(
        self,
        queue: deque[_Skb],
        bufsize: int,
        ancbufsize: int,
        flags: int,
        *,
        dry: bool,
    ) -> tuple[int, bytearray, list[tuple[int, int, bytes]], bool | None, bool]:
        """The ``tcp_recvmsg_locked`` loop over ``queue`` (the socket's own, or a copy for
        ``MSG_PEEK`` or a dry run): (bytes accounted, buffer bytes, control messages,
        kind of the last skb read, whether the queue ran dry before ``bufsize``).
        ``MSG_TRUNC`` discards without copying: no kind check, no ``MSG_SOCK_DEVMEM``
        needed, no token (the fragments' niovs go back once their skb is gone)."""
        iov = bytearray()  # what reaches the program's buffer, from its start
        anc: list[tuple[int, int, bytes]] = []
        copied = 0
        last_unreadable: bool | None = None  # ``last_copied_dmabuf``
        trunc = bool(flags & MSG_TRUNC)
        dropped: list[tuple[DevmemBinding, int]] = []
        stopped = False  # a boundary, an error: the call returns what it has
        while queue and copied < bufsize:
            skb = queue[0]
            want = min(skb.remaining(), bufsize - copied)
            if trunc:
                used = self._discard(skb, want, dropped)
            else:
                if last_unreadable is not None and last_unreadable != skb.unreadable:
                    stopped = True
                    break  # never readable and devmem bytes in one call
                if not skb.unreadable:
                    iov += skb.take(want)  # skb_copy_datagram_msg
                    used = want
                else:
                    if not flags & MSG_SOCK_DEVMEM:
                        if not copied:
                            raise kerr(EFAULT, "devmem payload needs MSG_SOCK_DEVMEM")
                        stopped = True
                        break
                    used, err = self._recvmsg_dmabuf(skb, want, iov, anc, ancbufsize, dry)
                    if err:
                        if not copied and not used:
                            raise kerr(err, "control buffer too small for a dmabuf_cmsg")
                        copied += used
                        last_unreadable = True
                        if not skb.remaining():
                            queue.popleft()
                        stopped = True
                        break
            last_unreadable = skb.unreadable
            copied += used
            if not skb.remaining():
                queue.popleft()  # tcp_eat_recv_skb
        ran_dry = not stopped and copied < bufsize
        if dropped and queue is self.rxq:
            freed = [e for e in dropped if self._put_niov(*e)]
            if freed:
                self.flush()  # niovs back in the pool: the peer's held bytes move on
        return copied, iov, anc, last_unreadable, ran_dry

    @staticmethod
    def _discard(skb: _Skb, n: int, dropped: list[tuple[DevmemBinding, int]]) -> int:
        """``MSG_TRUNC``: skip ``n`` bytes of ``skb``; frags passed entirely are dropped."""
        left = n
        left -= len(skb.take(min(skb.head(), left)))
        while skb.frags and left:
            q = skb.frags[0]
            k = min(q.size - q.used, left)
            q.used += k
            left -= k
            if q.used == q.size:
                skb.frags.popleft()
                dropped.append((q.owner, q.niov))
        return n

    def _recvmsg_dmabuf(
        self,
        skb: _Skb,
        remaining: int,
        iov: bytearray,
        anc: list[tuple[int, int, bytes]],
        ancbufsize: int,
        dry: bool = False,
    ) -> tuple[int, int]:
        """``tcp_recvmsg_dmabuf``: (bytes accounted, errno that stopped it or 0).  Each
        token takes a reference on its niov (``pp_ref_count``), also under ``MSG_PEEK``:
        a peeked fragment's token must be given back like any other."""
        sent = 0
        if skb.head() and remaining:
            copy = min(skb.head(), remaining)
            if ancbufsize - len(anc) * _CMSG_SPACE < _CMSG_LEN:  # put_cmsg_notrunc
                return sent, ETOOSMALL
            iov += skb.take(copy)  # copy_to_iter: the linear bytes reach the buffer
            anc.append((_SOL_SOCKET, SCM_DEVMEM_LINEAR, _DMABUF_CMSG.pack(0, copy, 0, 0, 0)))
            sent += copy
            remaining -= copy
        while skb.frags and remaining:
            if ancbufsize - len(anc) * _CMSG_SPACE < _CMSG_LEN:
                return sent, ETOOSMALL
            q = skb.frags[0]
            n = min(q.size - q.used, remaining)
            # a fragment read in pieces: each piece takes its own token (one more
            # reference on the niov), the niov is free once every piece came back
            token = 0 if dry else self._alloc_token(q.owner, q.niov)
            anc.append(
                (
                    _SOL_SOCKET,
                    SCM_DEVMEM_DMABUF,
                    _DMABUF_CMSG.pack(q.offset + q.used, n, token, q.binding, 0),
                )
            )
            q.used += n
            sent += n
            remaining -= n
            if q.used == q.size:
                skb.frags.popleft()
        return sent, 0

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

    def _queued_niovs(self) -> set[tuple[DevmemBinding, int]]:
        return {(q.owner, q.niov) for skb in self.rxq for q in skb.frags}

    def _put_niov(self, binding: DevmemBinding, niov: int) -> bool:
        """Drop one reference; the niov is free (True) when no token nor queued frag
        holds it.  An unbound binding is freed with its last niov."""
        if any(b is binding and n == niov for b, n in self.user_frags.values()):
            return False
        if (binding, niov) in self._queued_niovs():
            return False
        binding.free_niov(niov)
        return True

    def close(self) -> None:
        """``tcp_release_user_frags`` + the receive queue purge."""
        if self.closed:
            return
        held = self._queued_niovs() | set(self.user_frags.values())
        self.rxq.clear()
        self.user_frags.clear()
        self.pending.clear()
        self.closed = True
        for binding, niov in sorted(held, key=lambda e: (e[0].id, id(e[0]), e[1])):
            binding.free_niov(niov)


@dataclass(eq=False)
class TcpListener:
    """A listening socket on a NIC address -- or on every address (``INADDR_ANY``/``::``,
    ``dev`` None: a wildcard listener of :meth:`TcpTable.listen_any`): its accept queue."""

    dev: NetDevice | None
    addr: str
    port: int
    backlog: deque[DevmemTcpSock]


class TcpTable:
    """The listening sockets on mock NIC addresses and the scripted peers waiting for them."""

    def __init__(self, kernel: TaskContext) -> None:
        self.kernel = kernel
        self.listeners: dict[tuple[str, int], TcpListener] = {}
        self._ephemeral = 32768
        #: connections accepted so far (the peer's port of the next one is 40000 + it)
        self.accepted = 0
        #: where ``accept``, ``recv`` and ``connect`` sleep (one queue for every mock TCP
        #: socket: a wake-up makes each sleeper look at its own condition)
        self.wq = WaitQueueHead()
        #: listeners on every address (``INADDR_ANY``, ``::``), by port: a connection to
        #: any mock NIC address reaches them when no listener is bound to that address
        self.wildcard: dict[int, TcpListener] = {}

    def nic_for(self, addr: str) -> NetDevice | None:
        """The present net device whose IPv4 address is ``addr``."""
        from . import net_state

        for dev in net_state(self.kernel).netdev.devices.values():
            if dev.present and dev.ipv4 is not None and dev.ipv4 == addr:
                return dev
        return None

    def has_addresses(self) -> bool:
        """Is any mock NIC address present (may a wildcard listener reach one)?"""
        from . import net_state

        devices = net_state(self.kernel).netdev.devices.values()
        return any(d.present and d.ipv4 is not None for d in devices)

    def port_listening(self, port: int) -> bool:
        """Does a mock address, or every address, listen on ``port``?"""
        return port in self.wildcard or any(p == port for _a, p in self.listeners)

    def port_for(self, addr: str, port: int) -> int:
        """``inet_csk_get_port``: ``EADDRINUSE`` for a listening port, 0 picks one."""
        if port == 0:
            while (addr, self._ephemeral) in self.listeners or self._ephemeral in self.wildcard:
                self._ephemeral += 1
            return self._ephemeral
        if (addr, port) in self.listeners or port in self.wildcard:
            raise kerr(EADDRINUSE)  # (a wildcard listener holds the port on every address)
        return port

    def listen(self, addr: str, port: int) -> TcpListener:
        dev = self.nic_for(addr)
        if dev is None:
            raise kerr(EINVAL, f"{addr} is not a mock NIC address")
        if (addr, port) in self.listeners:
            raise kerr(EADDRINUSE)
        if (addr, port) in self.listeners or port in self.wildcard:
            raise kerr(EADDRINUSE)
        lsn = TcpListener(dev, addr, port, deque())
        self.listeners[(addr, port)] = lsn
        self._scripted_peers(dev, port)
        return lsn

    def _scripted_peers(self, dev: NetDevice, port: int) -> None:
        """The NIC's scripted peers of ``port`` connect and send now (it listens)."""
        for data in dev.scripted_peers.pop(port, []):
            assert dev.ipv4 is not None
            sk = self.connect(dev.ipv4, port)
            sk.deliver(data)
            sk.peer_closed = True

    def listen_any(self, addr: str, port: int) -> TcpListener:
        """``inet_csk_listen_start`` of a socket bound to every address (``addr`` is
        ``0.0.0.0`` or ``::``): one kernel, so a connection to a mock NIC address on
        ``port`` reaches it (``EADDRINUSE``: a mock address listens on the port)."""
        if self.port_listening(port):
            raise kerr(EADDRINUSE)
        lsn = TcpListener(None, addr, port, deque())
        self.wildcard[port] = lsn
        from . import net_state

        for dev in list(net_state(self.kernel).netdev.devices.values()):
            if dev.present and dev.ipv4 is not None:
                self._scripted_peers(dev, port)
        return lsn

    def unlisten(self, lsn: TcpListener) -> None:
        """Close a listener: connections never accepted are reset."""
        if lsn.dev is None:
            if self.wildcard.get(lsn.port) is lsn:
                del self.wildcard[lsn.port]
        elif self.listeners.get((lsn.addr, lsn.port)) is lsn:
            del self.listeners[(lsn.addr, lsn.port)]
        while lsn.backlog:
            lsn.backlog.popleft().close()

    def connect(self, addr: str, port: int, mss: int = 0) -> DevmemTcpSock:
        """A peer connects to ``(addr, port)``: the new connection's socket, queued for
        accept (``ECONNREFUSED``: nobody listens there).  Steered to the lowest-numbered
        RX queue with a devmem binding, else to queue 0: an ordinary readable flow."""
        lsn = self.listeners.get((addr, port)) or self.wildcard.get(port)  # exact first
        dev = lsn.dev if lsn is not None and lsn.dev is not None else self.nic_for(addr)
        if lsn is None or dev is None:
            raise kerr(ECONNREFUSED)
        queue = next((q.index for q in dev.rx if q.binding is not None), 0)
        sk = DevmemTcpSock(self.kernel, dev, queue, mss, self.wq)
        sk.laddr = addr
        lsn.backlog.append(sk)
        self.wq.wake_up()  # a sleeping accept
        return sk
