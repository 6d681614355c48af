"""select / poll / epoll with mock fds: what the real-Linux probe (``probes/poll.py``)
cannot show — waiting across threads, timeouts, argument errors as CPython gives them,
what is refused as not modelled, and the trace."""

from __future__ import annotations

import errno
import os
import select
import selectors
import socket
import struct
import threading
import time
from typing import Any

import pytest
from core_helpers import make_udmabuf

from mockkernel.kernel import Kernel
from mockkernel.userspace.redirect import _REAL_MORE

REAL_POLL = _REAL_MORE["poll"]


def _netlink() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)


def _getfamily(nl: Any) -> None:
    name = b"nlctrl\0"
    attr = struct.pack("=HH", 4 + len(name), 2) + name + b"\0"
    msg = struct.pack("=BBH", 3, 1, 0) + attr
    nl.send(struct.pack("=IHHII", 16 + len(msg), 0x10, 1 | 4, 1, 0) + msg)


def _outcome(fn: Any, *args: Any) -> tuple[str, str]:
    try:
        return ("ok", repr(fn(*args)))
    except Exception as e:
        return (type(e).__name__, str(e))


def test_a_blocking_select_wakes_when_another_thread_makes_a_mock_fd_ready(
    mock_kernel: Kernel,
) -> None:
    with _netlink() as nl:
        timer = threading.Timer(0.05, _getfamily, (nl,))
        t0 = time.monotonic()
        timer.start()
        try:
            r, _w, _x = select.select([nl], [], [], 5)
        finally:
            timer.join()
        waited = time.monotonic() - t0
        assert r == [nl]
        assert 0.04 <= waited < 1.0


def test_blocking_poll_and_epoll_wake_too(mock_kernel: Kernel) -> None:
    with _netlink() as nl:
        p = select.poll()
        p.register(nl, select.POLLIN)
        timer = threading.Timer(0.03, _getfamily, (nl,))
        timer.start()
        try:
            assert p.poll() == [(nl.fileno(), select.POLLIN)]  # no timeout: until ready
        finally:
            timer.join()
        nl.recv(65536)
        nl.recv(65536)
        with select.epoll() as ep:
            ep.register(nl.fileno(), select.EPOLLIN)
            timer = threading.Timer(0.03, _getfamily, (nl,))
            timer.start()
            try:
                assert ep.poll(5) == [(nl.fileno(), select.EPOLLIN)]
            finally:
                timer.join()


def test_timeouts_with_only_unready_mock_fds_are_honoured(mock_kernel: Kernel) -> None:
    with _netlink() as nl:
        for wait in (
            lambda: select.select([nl], [], [], 0.05),
            lambda: _poll_in(nl, 50),
            lambda: _epoll_in(nl, 0.05),
        ):
            t0 = time.monotonic()
            result = wait()
            took = time.monotonic() - t0
            assert not any(result)
            assert 0.05 <= took < 2.0  # returns at the timeout (slices of SLICE), not never


def _poll_in(nl: Any, ms: int) -> list[tuple[int, int]]:
    p = select.poll()
    p.register(nl, select.POLLIN)
    return list(p.poll(ms))


def _epoll_in(nl: Any, s: float) -> list[tuple[int, int]]:
    with select.epoll() as ep:
        ep.register(nl.fileno(), select.EPOLLIN)
        return list(ep.poll(s))


def test_a_ready_mock_fd_does_not_wait_for_the_real_ones(mock_kernel: Kernel) -> None:
    memfd, buf = make_udmabuf()
    r, w = os.pipe()
    try:
        t0 = time.monotonic()
        rl, _wl, _xl = select.select([r, buf], [], [], 10)
        assert rl == [buf] and time.monotonic() - t0 < 1.0
    finally:
        for fd in (r, w, buf, memfd):
            os.close(fd)


@pytest.mark.parametrize(
    "args",
    [
        ([], [], [], "x"),
        ([], [], [], -1),
        ([], [], [], float("nan")),
        ([-1], [], [], 0),
        ([5000], [], [], 0),
        ([object()], [], [], 0),
    ],
    ids=[
        "timeout-str",
        "timeout-negative",
        "timeout-nan",
        "fd-negative",
        "fd-setsize",
        "no-fileno",
    ],
)
def test_select_argument_errors_are_cpythons_with_a_mock_fd(
    mock_kernel: Kernel, args: tuple[Any, ...]
) -> None:
    memfd, buf = make_udmabuf()
    try:
        with_mock = (args[0] + [buf], args[1], args[2], args[3])
        real_r, real_w = os.pipe()
        try:
            real_only = (args[0] + [real_r], args[1], args[2], args[3])
            expected = _outcome(select.select, *real_only)  # the real function decides
        finally:
            os.close(real_r)
            os.close(real_w)
        assert expected[0] != "ok"
        assert _outcome(select.select, *with_mock)[0] == expected[0]
    finally:
        os.close(buf)
        os.close(memfd)


def test_poll_object_argument_errors_match_cpython(mock_kernel: Kernel) -> None:
    memfd, buf = make_udmabuf()
    try:
        for mask in (-1, 70000, "x"):
            ours = select.poll()
            real = REAL_POLL()
            assert _outcome(ours.register, buf, mask) == _outcome(real.register, buf, mask)
        p = select.poll()
        with pytest.raises(FileNotFoundError):
            p.modify(buf, select.POLLIN)
        with pytest.raises(KeyError):
            p.unregister(buf)
        with pytest.raises(TypeError, match="timeout must be an integer or None"):
            p.poll("x")
        with pytest.raises(ValueError):
            p.register(-1)
    finally:
        os.close(buf)
        os.close(memfd)


def test_edge_triggered_epoll_on_a_mock_fd_is_refused_not_faked(mock_kernel: Kernel) -> None:
    memfd, buf = make_udmabuf()
    try:
        with mock_kernel.tracer.capture() as events, select.epoll() as ep:
            with pytest.raises(OSError) as exc:
                ep.register(buf, select.EPOLLIN | select.EPOLLET)
            assert exc.value.errno == errno.EOPNOTSUPP
            assert "not modelled" in str(exc.value)
            ep.register(buf, select.EPOLLIN)  # nothing was registered by the refusal
            with pytest.raises(OSError) as exc:
                ep.modify(buf, select.EPOLLIN | select.EPOLLET)
            assert exc.value.errno == errno.EOPNOTSUPP
        assert any(e["event"] == "poll.unsupported" for e in events)
        # a real fd keeps full epoll semantics, EPOLLET included
        r, w = os.pipe()
        try:
            with select.epoll() as ep:
                ep.register(r, select.EPOLLIN | select.EPOLLET)
                os.write(w, b"x")
                assert ep.poll(0) == [(r, select.EPOLLIN)]
                assert ep.poll(0) == []  # edge-triggered: once
        finally:
            os.close(r)
            os.close(w)
    finally:
        os.close(buf)
        os.close(memfd)


def test_a_closed_epoll_refuses_every_call(mock_kernel: Kernel) -> None:
    memfd, buf = make_udmabuf()
    try:
        ep = select.epoll()
        ep.register(buf, select.EPOLLIN)
        assert ep.fileno() >= 0 and not ep.closed
        ep.close()
        assert ep.closed
        for fn, args in ((ep.poll, (0,)), (ep.register, (buf,)), (ep.unregister, (buf,))):
            with pytest.raises(ValueError, match="closed epoll"):
                fn(*args)
        with pytest.raises(ValueError, match="maxevents"):
            select.epoll().poll(0, 0)
    finally:
        os.close(buf)
        os.close(memfd)


def test_selectors_with_mock_and_real_fds(mock_kernel: Kernel) -> None:
    memfd, buf = make_udmabuf()
    r, w = os.pipe()
    try:
        for cls in (selectors.DefaultSelector, selectors.PollSelector, selectors.SelectSelector):
            with cls() as s, _netlink() as nl:
                s.register(nl, selectors.EVENT_READ, "nl")
                s.register(r, selectors.EVENT_READ, "pipe")
                s.register(buf, selectors.EVENT_WRITE, "dmabuf")
                assert sorted(k.data for k, _ in s.select(0)) == ["dmabuf"], cls
                _getfamily(nl)
                os.write(w, b"x")
                assert sorted(k.data for k, _ in s.select(0)) == ["dmabuf", "nl", "pipe"], cls
                os.read(r, 1)
    finally:
        for fd in (r, w, buf, memfd):
            os.close(fd)


def test_a_wait_on_mock_fds_is_one_trace_event(mock_kernel: Kernel) -> None:
    memfd, buf = make_udmabuf()
    try:
        with mock_kernel.tracer.capture() as events:
            select.select([buf], [], [], 0)
            p = select.poll()
            p.register(buf)
            p.poll(0)
        names = [e["event"] for e in events]
        assert names == ["sys.select", "sys.poll"]
        assert events[0]["nfds"] == 1 and events[0]["ret"] == 1
    finally:
        os.close(buf)
        os.close(memfd)


def test_real_only_waits_emit_nothing(mock_kernel: Kernel) -> None:
    r, w = os.pipe()
    try:
        with mock_kernel.tracer.capture() as events:
            os.write(w, b"x")
            assert select.select([r], [], [], 0)[0] == [r]
        assert events == []
    finally:
        os.close(r)
        os.close(w)


def test_classes_kept_past_uninstall_are_the_real_ones(mock_kernel_factory: Any) -> None:
    """``select.poll``/``select.epoll``/``socket.socket`` are made once per interpreter and
    find the installed redirection when called; a reference kept after ``uninstall``
    gives real objects, as the real functions would."""
    kernel = mock_kernel_factory()
    with kernel.install():
        poll_cls, epoll_cls, socket_cls = select.poll, select.epoll, socket.socket
        with socket_cls(socket.AF_NETLINK, socket.SOCK_RAW, 16) as nl:
            assert nl.fileno() in kernel.init_process.files  # mock while installed
    r, w = os.pipe()
    try:
        os.write(w, b"x")
        p = poll_cls()
        p.register(r, select.POLLIN)
        assert p.poll(0) == [(r, select.POLLIN)]
        with epoll_cls() as ep:
            ep.register(r, select.EPOLLIN | select.EPOLLET)  # real: edge-triggered is fine
            assert ep.poll(0) == [(r, select.EPOLLIN)]
        with socket_cls(socket.AF_NETLINK, socket.SOCK_RAW, 16) as real_nl:
            assert type(real_nl) is socket.socket
            assert real_nl.fileno() not in kernel.init_process.files
    finally:
        os.close(r)
        os.close(w)
