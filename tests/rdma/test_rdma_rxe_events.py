"""Completion channels, ``REQ_NOTIFY_CQ`` and async events (issue 14).

* The raw ABI on ``rxe0``: ``CREATE_COMP_CHANNEL``, a CQ made on the channel, armed
  with ``REQ_NOTIFY_CQ``; one event per arming, read from the channel fd; the
  counters ``DESTROY_CQ`` answers; what closing the uverbs file does to the channel;
  the errnos of bad channels and handles; a CQ overrun as ``IB_EVENT_CQ_ERR``.
* ``mlx5_0`` removed under an open context: ``IB_EVENT_DEVICE_FATAL`` on its async fd.
* pyverbs (rdma-core 59) supervised: two processes, one blocked in ``get_cq_event``
  until the other's SEND lands in its receive queue; and the events probe
  (``pyverbs_events_probe.py``) as real Linux 7.2's rxe answered it
  (``golden_rxe_events.json``).
"""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import select
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdma_testing import errname
from test_rdma_ibv_tools import MLX5_RXE
from test_rdma_rxe_pyverbs import _run
from test_rdma_rxe_queues import (
    CONSUMER,
    LOCAL_WRITE,
    ON_DEMAND,
    WR_SEND,
    Rxe,
    _connect,
    _recv_wqe,
    _send_wqe,
)

from mockkernel import Kernel
from mockkernel.testing.rdma import Verbs, attr
from mockkernel.uapi.rdma import ib_user_ioctl_cmds as C
from mockkernel.uapi.rdma import ib_user_verbs as V

pytestmark = pytest.mark.mockkernel(topology=MLX5_RXE)

HERE = Path(__file__).resolve().parent
IBV_EVENT_CQ_ERR, IBV_EVENT_DEVICE_FATAL = 0, 8


class Events(Rxe):
    """``rxe0`` with the commands of completion channels."""

    def comp_channel(self) -> int:
        """``ibv_create_comp_channel``: ``CREATE_COMP_CHANNEL`` by ``write()``."""
        raw = self.cmd(V.IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL, b"", 4)
        return int.from_bytes(raw[:4], "little")

    def cq_on(self, channel: int, cqe: int = 16, user_handle: int = 0xC0FFEE) -> tuple[int, int]:
        """``CREATE_CQ`` on ``channel``: (handle, the ring's mmap offset)."""
        body = struct.pack("<QIIiI", user_handle, cqe, 0, channel, 0)
        raw = self.cmd(V.IB_USER_VERBS_CMD_CREATE_CQ, body, 24)
        handle, _cqe, offset = struct.unpack_from("<IIQ", raw)
        return handle, offset

    def notify(self, cq: int, solicited_only: int = 0) -> None:
        self.cmd(V.IB_USER_VERBS_CMD_REQ_NOTIFY_CQ, struct.pack("<II", cq, solicited_only))

    def destroy_cq_counts(self, cq: int) -> tuple[int, int]:
        raw = self.cmd(V.IB_USER_VERBS_CMD_DESTROY_CQ, struct.pack("<II", cq, 0), 8)
        comp, async_ = struct.unpack("<II", raw)
        return comp, async_


@pytest.fixture
def ev(mock_kernel: Kernel) -> Iterator[Events]:
    v = Events("rxe0")
    try:
        yield v
    finally:
        v.close()


def _nonblock(fd: int) -> None:
    os.set_blocking(fd, False)


def _ready(fd: int) -> int:
    p = select.poll()
    p.register(fd, select.POLLIN)
    got = p.poll(0)
    return got[0][1] if got else 0


def _read(fd: int, n: int = 64) -> bytes | str:
    try:
        return os.read(fd, n)
    except OSError as e:
        return errname(e)


def _pair(v: Events, cq: int) -> tuple[int, int, object, object, object, int, int]:
    """Two connected RC QPs on ``cq`` and an ODP MR: (qa, qb, sq_a, rq_b, buf, addr, lkey)."""
    pd = v.alloc_pd()
    qa, ra = v.create_qp(pd, cq)
    qb, rb = v.create_qp(pd, cq)
    _connect(v, qa.qp_handle, qb.qp_handle, qb.qpn)
    _connect(v, qb.qp_handle, qa.qp_handle, qa.qpn)
    buf = mmap.mmap(-1, 8192)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    lkey, _ = v.reg_user(pd, addr, 8192, LOCAL_WRITE | ON_DEMAND)
    sq_a = v.map(ra.sq_mi.offset, ra.sq_mi.size)
    rq_b = v.map(rb.rq_mi.offset, rb.rq_mi.size)
    return qa.qp_handle, qb.qp_handle, sq_a, rq_b, buf, addr, lkey


def test_an_armed_cq_reports_one_completion_on_its_channel(ev: Events) -> None:
    ch = ev.comp_channel()
    assert os.readlink(f"/proc/self/fd/{ch}") == "anon_inode:[infinibandevent]"
    _nonblock(ch)
    cq, offset = ev.cq_on(ch)
    ring = ev.map(offset, 4096)
    qa, _qb, sq_a, rq_b, _buf, addr, lkey = _pair(ev, cq)

    def send(wr_id: int, flags: int = 2) -> None:
        rq_b.produce(_recv_wqe(100 + wr_id, [(addr + 4096, 64, lkey)]))  # type: ignore[attr-defined]
        sq_a.produce(_send_wqe(WR_SEND, wr_id, [(addr, 8, lkey)], flags=flags))  # type: ignore[attr-defined]
        ev.post_send(qa)

    send(1)  # not armed: completions, no event
    assert len(ring.poll()) == 2 and _ready(ch) == 0
    assert _read(ch) == "EAGAIN"
    ev.notify(cq)
    assert _ready(ch) == 0  # arming reports nothing already there
    send(2)  # the receive and the send completion: one event (the arm is used up)
    assert _ready(ch) == select.POLLIN
    assert _read(ch, 4) == "EINVAL"  # too small for the event: it stays
    assert _read(ch) == struct.pack("<Q", 0xC0FFEE)  # the CQ's user_handle, one event
    assert _read(ch) == "EAGAIN" and _ready(ch) == 0
    ring.poll()
    ev.notify(cq, 1)  # solicited only: a plain SEND does not report
    send(3)
    assert _ready(ch) == 0
    send(4, flags=2 | 4)  # IBV_SEND_SOLICITED
    assert _read(ch) == struct.pack("<Q", 0xC0FFEE)
    ev.notify(cq)
    send(5)  # one more event, left unread: DESTROY_CQ drops it and does not count it
    assert _ready(ch) == select.POLLIN
    ring.poll()
    for h in (qa, _qb):
        ev.destroy_qp(h)
    assert ev.destroy_cq_counts(cq) == (2, 0)  # comp_events_reported, async_events_reported
    assert _read(ch) == "EAGAIN"
    for m in (ring, sq_a, rq_b):
        m.mem.close()  # type: ignore[attr-defined]
    ev.close()  # the uverbs file goes (its last mapping too): the channel's queue closes
    assert _read(ch) == "EIO"
    assert _ready(ch) == select.POLLERR
    os.close(ch)


def test_bad_channels_and_handles(ev: Events, mock_kernel: Kernel) -> None:
    """``CREATE_CQ`` names a channel by fd: not open, not a channel (the uverbs fd, an
    async event fd), another file's channel -- ``EBADF``; ``REQ_NOTIFY_CQ`` of a handle
    that is no CQ: ``EINVAL``."""
    other = Events("rxe0")
    try:
        theirs = other.comp_channel()
        async_fd = _async_fd(ev)
        for fd in (1 << 20, ev.fd, async_fd, theirs):
            with pytest.raises(OSError) as e:
                ev.cq_on(fd)
            assert errname(e.value) == "EBADF", fd
        pd = ev.alloc_pd()
        for handle in (pd, 77):
            with pytest.raises(OSError) as e:
                ev.notify(handle)
            assert errname(e.value) == "EINVAL"
        os.close(async_fd)
        os.close(theirs)
    finally:
        other.close()
    # mlx5 arms its CQs in userspace: no REQ_NOTIFY_CQ command
    with Verbs("mlx5_0") as m:
        with pytest.raises(OSError) as e:
            m.write_cmd(V.IB_USER_VERBS_CMD_REQ_NOTIFY_CQ, struct.pack("<II", 0, 0))
        assert errname(e.value) == "EOPNOTSUPP"


def _async_fd(v: Verbs) -> int:
    """``UVERBS_METHOD_ASYNC_EVENT_ALLOC``: a new async event fd."""
    out = v.ioctl(
        C.UVERBS_OBJECT_ASYNC_EVENT,
        C.UVERBS_METHOD_ASYNC_EVENT_ALLOC,
        [attr(C.UVERBS_ATTR_ASYNC_EVENT_ALLOC_FD_HANDLE)],
    )
    return int(out[0][4])


def test_a_cq_overrun_is_an_async_event(ev: Events) -> None:
    """``rxe_cq_post`` of a full CQ: nothing written, ``IB_EVENT_CQ_ERR`` (element: the
    CQ's ``user_handle``) to the context's first async event file; reading it counts it
    in ``DESTROY_CQ``'s ``async_events_reported``."""
    first, second = _async_fd(ev), _async_fd(ev)
    _nonblock(first)
    _nonblock(second)
    ch = ev.comp_channel()
    cq, _offset = ev.cq_on(ch, cqe=1, user_handle=0xABC)
    qa, qb, sq_a, rq_b, _buf, addr, lkey = _pair(ev, cq)
    rq_b.produce(_recv_wqe(7, [(addr + 4096, 64, lkey)]))  # type: ignore[attr-defined]
    sq_a.produce(_send_wqe(WR_SEND, 1, [(addr, 8, lkey)]))  # type: ignore[attr-defined]
    ev.post_send(qa)  # two completions for a CQ of one
    assert sq_a.index(CONSUMER) == 1  # type: ignore[attr-defined]
    assert _read(first) == struct.pack("<QII", 0xABC, IBV_EVENT_CQ_ERR, 0)
    assert _read(first) == "EAGAIN"
    assert _read(second) == "EAGAIN"  # the objects' events go to the first one only
    for h in (qa, qb):
        ev.destroy_qp(h)
    assert ev.destroy_cq_counts(cq) == (0, 1)
    for fd in (first, second, ch):
        os.close(fd)
    for m in (sq_a, rq_b):
        m.mem.close()  # type: ignore[attr-defined]


def test_device_removal_is_device_fatal_on_the_async_fd(mock_kernel: Kernel) -> None:
    """``mlx5_0`` removed while a context is open (disassociation): each async event
    file gets ``IB_EVENT_DEVICE_FATAL`` (element 0), then nothing more."""
    v = Verbs("mlx5_0")
    fd = _async_fd(v)
    _nonblock(fd)
    assert _ready(fd) == 0
    with open("/sys/bus/pci/devices/0000:02:00.0/remove", "w") as f:
        f.write("1")
    assert _ready(fd) == select.POLLIN
    assert _read(fd) == struct.pack("<QII", 0, IBV_EVENT_DEVICE_FATAL, 0)
    assert _read(fd) == "EAGAIN"
    os.close(fd)
    v.close()
    with open("/sys/bus/pci/rescan", "w") as f:
        f.write("1")
    assert mock_kernel.warnings == []


BLOCKED = r"""
'''Two processes, one rxe0: the server arms its receive CQ, posts a receive and blocks in
ibv_get_cq_event; the client waits until the server sleeps in that read(), then SENDs.'''
import json, os, subprocess, sys, time
import pyverbs.device as d
import pyverbs.libibverbs_enums as e
from pyverbs.addr import AHAttr, GlobalRoute
from pyverbs.cq import CQ, CompChannel
from pyverbs.mr import MR
from pyverbs.pd import PD
from pyverbs.qp import QP, QPAttr, QPCap, QPInitAttr
from pyverbs.wr import SGE, RecvWR, SendWR

ROLE = sys.argv[1] if len(sys.argv) > 1 else "server"
ACC = e.IBV_ACCESS_LOCAL_WRITE
ctx = d.Context(name="rxe0")
pd = PD(ctx)
ch = CompChannel(ctx)
cq = CQ(ctx, 16, None, ch, 0)
qp = QP(pd, QPInitAttr(qp_type=e.IBV_QPT_RC, scq=cq, rcq=cq,
                       cap=QPCap(max_send_wr=4, max_recv_wr=4, max_send_sge=1, max_recv_sge=1)))
mr = MR(pd, 4096, ACC | e.IBV_ACCESS_ON_DEMAND)

def connect(qpn):
    attr = QPAttr(port_num=1)
    attr.qp_access_flags = ACC
    qp.to_init(attr)
    attr = QPAttr(port_num=1)
    attr.path_mtu = e.IBV_MTU_1024
    attr.dest_qp_num = qpn
    attr.ah_attr = AHAttr(gr=GlobalRoute(dgid=ctx.query_gid(1, 0), sgid_index=0), is_global=1,
                          port_num=1)
    attr.max_dest_rd_atomic = 1
    attr.min_rnr_timer = 12
    qp.to_rtr(attr)
    attr = QPAttr(port_num=1)
    attr.timeout, attr.retry_cnt, attr.rnr_retry, attr.max_rd_atomic = 14, 7, 7, 1
    qp.to_rts(attr)

if ROLE == "server":
    child = subprocess.Popen([sys.executable, __file__, "client"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    peer = json.loads(child.stdout.readline())
    connect(peer["qpn"])
    qp.post_recv(RecvWR(wr_id=7, num_sge=1, sg=[SGE(mr.buf, 64, mr.lkey)]))
    cq.req_notify()
    child.stdin.write(json.dumps({"qpn": qp.qp_num, "fd": ch.fd}) + "\n"); child.stdin.flush()
    ch.get_cq_event(cq)          # blocks until the client's SEND completes here
    cq.ack_events(1)
    n, wcs = cq.poll()
    print("server woke", n, wcs[0].wr_id, int(wcs[0].status), mr.read(11, 0), flush=True)
    print(child.stdout.read().strip(), flush=True)
    print("client exit", child.wait())
else:
    print(json.dumps({"qpn": qp.qp_num}), flush=True)
    peer = json.loads(sys.stdin.readline())
    connect(peer["qpn"])
    # /proc/<server>/syscall: the server is in read(2) (number 0) of its channel fd
    want = "0 " + hex(peer["fd"]) + " "
    while not open(f"/proc/{os.getppid()}/syscall").read().startswith(want):
        time.sleep(0.005)
    print("client saw the server blocked in read", flush=True)
    mr.write(b"wake up now", 11)
    qp.post_send(SendWR(wr_id=1, opcode=e.IBV_WR_SEND, num_sge=1,
                        sg=[SGE(mr.buf, 11, mr.lkey)], send_flags=e.IBV_SEND_SIGNALED))
    while not cq.poll()[0]:
        pass
    print("client sent")
qp.close(); mr.close(); cq.close(); ch.close(); pd.close(); ctx.close()
"""


def test_a_process_blocked_in_get_cq_event_wakes_on_anothers_send(
    mock_kernel: Kernel, tmp_path: Path
) -> None:
    prog = tmp_path / "blocked.py"
    prog.write_text(BLOCKED)
    with mock_kernel.tracer.capture() as events:
        r = _run(mock_kernel, prog)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == [
        "server woke 1 7 0 b'wake up now'",
        "client saw the server blocked in read",
        "client sent",
        "client exit 0",
    ]
    # the event was posted while the server slept in read(): by the client's doorbell
    names = [e["event"] for e in events]
    posted = names.index("rdma.event")
    assert names[posted - 1] == "rxe.cqe"
    assert "rdma.event_read" in names[posted:]


def test_the_events_probe_matches_real_linux(mock_kernel: Kernel) -> None:
    """``pyverbs_events_probe.py``, recorded on real Linux 7.2's rxe."""
    golden = json.loads((HERE / "golden_rxe_events.json").read_text())
    r = _run(mock_kernel, HERE / "pyverbs_events_probe.py")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    for step, want in golden.items():
        assert got[step] == want, step


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("arm"), st.booleans()),  # solicited only?
        st.tuples(st.just("send"), st.booleans()),  # IBV_SEND_SOLICITED?
        st.tuples(st.just("read"), st.just(False)),
    ),
    max_size=12,
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(ops=OPS)
def test_events_follow_the_arming_rules(mock_kernel: Kernel, ops: list[tuple[str, bool]]) -> None:
    """Any sequence of arming, SENDs and reads: an event exactly when a completion finds
    the CQ armed for it -- any completion after ``IB_CQ_NEXT_COMP``, a solicited receive
    after ``IB_CQ_SOLICITED`` (a SEND's receive completes before its send completion) --
    the arming then cleared; reads take them one by one, then ``EAGAIN``."""
    with Events("rxe0") as v:
        ch = v.comp_channel()
        _nonblock(ch)
        cq, offset = v.cq_on(ch)
        ring = v.map(offset, 4096)
        qa, qb, sq_a, rq_b, _buf, addr, lkey = _pair(v, cq)
        notify, queued = 0, 0
        for op, flag in ops:
            if op == "arm":
                v.notify(cq, int(flag))
                notify |= 1 if flag else 2
            elif op == "send":
                rq_b.produce(_recv_wqe(1, [(addr + 4096, 64, lkey)]))  # type: ignore[attr-defined]
                sq_a.produce(_send_wqe(WR_SEND, 2, [(addr, 8, lkey)],  # type: ignore[attr-defined]
                                       flags=2 | (4 if flag else 0)))  # fmt: skip
                v.post_send(qa)
                for solicited in (flag, False):  # the receive, then the send completion
                    if notify & 2 or (notify & 1 and solicited):
                        notify, queued = 0, queued + 1
                assert len(ring.poll()) == 2
            else:
                want: bytes | str = struct.pack("<Q", 0xC0FFEE) if queued else "EAGAIN"
                assert _read(ch) == want
                queued = max(0, queued - 1)
            assert _ready(ch) == (select.POLLIN if queued else 0)
        for h in (qa, qb):
            v.destroy_qp(h)
        v.destroy_cq_counts(cq)
        for m in (ring, sq_a, rq_b):
            m.mem.close()  # type: ignore[attr-defined]
        os.close(ch)


def test_device_events_go_to_every_async_file(mock_kernel: Kernel) -> None:
    """A driver's ``ib_dispatch_event`` (a port going down): each async event file open
    on the device gets it, ``element`` the port; another device's files do not."""
    from mockkernel.driver import IB_EVENT_PORT_ERR, ib_device_by_name, ib_dispatch_event

    files = [Verbs("rxe0"), Verbs("rxe0"), Verbs("mlx5_0")]
    fds = [_async_fd(f) for f in files]
    for fd in fds:
        _nonblock(fd)
    ib_dispatch_event(ib_device_by_name(mock_kernel, "rxe0"), IB_EVENT_PORT_ERR, 1)
    want = struct.pack("<QII", 1, IB_EVENT_PORT_ERR, 0)
    assert [_read(fd) for fd in fds] == [want, want, "EAGAIN"]
    os.close(fds[0])  # a closed async file takes no more events; the others still do
    ib_dispatch_event(ib_device_by_name(mock_kernel, "rxe0"), IB_EVENT_PORT_ERR, 1)
    assert _read(fds[1]) == want
    for fd in fds[1:]:
        os.close(fd)
    for f in files:
        f.close()


def test_an_unmodelled_command_is_eopnotsupp_and_traced(ev: Events, mock_kernel: Kernel) -> None:
    """``RESIZE_CQ`` (``ibv_resize_cq``) and ``QUERY_QP`` are not modelled: the write
    commands answer what a kernel without them does, and the trace names them."""
    with mock_kernel.tracer.capture() as events:
        for cmd in (V.IB_USER_VERBS_CMD_RESIZE_CQ, V.IB_USER_VERBS_CMD_QUERY_QP):
            with pytest.raises(OSError) as e:
                ev.cmd(cmd, bytes(16), 8)
            assert errname(e.value) == "EOPNOTSUPP"
    named = [e["command"] for e in events if e["event"] == "rdma.unsupported"]
    assert named == [hex(V.IB_USER_VERBS_CMD_RESIZE_CQ), hex(V.IB_USER_VERBS_CMD_QUERY_QP)]
