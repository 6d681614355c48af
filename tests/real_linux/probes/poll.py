"""Probe: select / poll / epoll / selectors on dma-buf, udmabuf, sync_file and netlink fds.

What each kind of file reports ready (``->poll``), how select maps it, mixing with real
fds (a pipe), epoll's interest list (EEXIST/ENOENT, EPOLLONESHOT, a closed fd dropping
out), POLLNVAL and EBADF for a closed fd, and ``selectors.DefaultSelector``.

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or {"step": NAME,
"errno": "ENAME"}.  No raw fd numbers: results are event masks and labels.  Standard
library only.  On real Linux /dev/udmabuf needs root; under mockkernel it runs as a
normal user.
"""
import fcntl
import os
import select
import selectors
import socket
import struct

from _probe import (
    DMA_BUF_IOCTL_EXPORT_SYNC_FILE, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, Res, closed_fd,
    make_dmabuf, run_all, with_dmabuf,
)

ALL = select.POLLIN | select.POLLPRI | select.POLLOUT


def revents(fd, events=ALL):
    p = select.poll()
    p.register(fd, events)
    return [ev for _fd, ev in p.poll(0)]


def sel(fd):
    r, w, x = select.select([fd], [fd], [fd], 0)
    return [bool(r), bool(w), bool(x)]


# --- what each file reports ----------------------------------------------------------


def dmabuf_poll(r, memfd, buf):
    return {"all": revents(buf), "in": revents(buf, select.POLLIN),
            "out": revents(buf, select.POLLOUT), "pri": revents(buf, select.POLLPRI),
            "none": revents(buf, 0), "select": sel(buf)}


def udmabuf_dev():
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    try:
        return {"all": revents(dev), "select": sel(dev)}
    finally:
        os.close(dev)


def sync_file(flags):
    def fn(r, memfd, buf):
        arg = bytearray(struct.pack("=Ii", flags, -1))
        fcntl.ioctl(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, arg)
        sf = r.fd(struct.unpack("=Ii", arg)[1])
        return {"all": revents(sf), "select": sel(sf)}
    return fn


def nl_socket():
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)


def getfamily(nl, seq=1):
    name = b"nlctrl\0"
    attr = struct.pack("=HH", 4 + len(name), 2) + name + b"\0" * ((4 - len(name) % 4) % 4)
    msg = struct.pack("=BBH", 3, 1, 0) + attr
    nl.send(struct.pack("=IHHII", 16 + len(msg), 0x10, 1 | 4, seq, 0) + msg)


def netlink_states():
    with nl_socket() as nl:
        fd = nl.fileno()
        out = {"empty": revents(fd), "empty_select": sel(fd)}
        getfamily(nl)
        out["reply"] = revents(fd)
        out["reply_select"] = sel(fd)
        nl.recv(65536)  # the family
        out["after_family"] = revents(fd)
        nl.recv(65536)  # the ack
        out["drained"] = revents(fd)
        return out


# --- mixing, waiting, bad fds --------------------------------------------------------


def mixed_select():
    with Res() as r:
        memfd, buf = make_dmabuf(r)
        pr, pw = os.pipe()
        r.fd(pr), r.fd(pw)
        with nl_socket() as nl:
            names = {buf: "dmabuf", pr: "pipe_r", nl.fileno(): "netlink"}
            before = select.select([buf, pr, nl.fileno()], [], [], 0)[0]
            os.write(pw, b"x")
            getfamily(nl)
            after = select.select([nl.fileno(), pr, buf], [pw], [], 0)
            p = select.poll()
            for fd in (pr, nl.fileno(), buf):
                p.register(fd, select.POLLIN)
            polled = [(names[fd], ev) for fd, ev in p.poll(0)]
            return {"before": [names[fd] for fd in before],
                    "after_r": [names[fd] for fd in after[0]], "after_w": len(after[1]),
                    "poll": polled}


def select_objects():
    with nl_socket() as nl:
        getfamily(nl)
        r, w, x = select.select([nl], [nl], [], 0)
        return {"r_is_sock": r == [nl], "w_is_sock": w == [nl], "x": x}


def select_timeout_not_ready():
    with nl_socket() as nl:
        return select.select([nl.fileno()], [], [], 0.05)


def poll_closed_fd():
    fd = closed_fd()
    p = select.poll()
    p.register(fd, select.POLLIN)
    return [ev for _fd, ev in p.poll(0)]


def select_closed_fd():
    return select.select([closed_fd()], [], [], 0)


def poll_after_close(r, memfd, buf):
    p = select.poll()
    p.register(buf, select.POLLIN)
    r.close(buf)
    return [ev for _fd, ev in p.poll(0)]


def poll_object_errors(r, memfd, buf):
    p = select.poll()
    out = {}
    try:
        p.modify(buf, select.POLLIN)
    except OSError as e:
        out["modify_unregistered"] = e.errno == 2
    try:
        p.unregister(buf)
    except KeyError:
        out["unregister_missing"] = "KeyError"
    p.register(buf, select.POLLIN)
    p.register(buf, select.POLLOUT)  # a second register replaces the mask
    out["reregistered"] = [ev for _fd, ev in p.poll(0)]
    p.modify(buf, select.POLLIN | select.POLLOUT)
    out["modified"] = [ev for _fd, ev in p.poll(0)]
    p.unregister(buf)
    out["unregistered"] = p.poll(0)
    return out


# --- epoll -----------------------------------------------------------------------------


def epoll_basic(r, memfd, buf):
    with select.epoll() as ep, nl_socket() as nl:
        names = {buf: "dmabuf", nl.fileno(): "netlink"}
        ep.register(buf, select.EPOLLIN)
        ep.register(nl.fileno(), select.EPOLLIN)
        out = {"first": sorted((names[fd], ev) for fd, ev in ep.poll(0))}
        getfamily(nl)
        out["reply"] = sorted((names[fd], ev) for fd, ev in ep.poll(0))
        out["maxevents_1"] = len(ep.poll(0, 1))
        ep.modify(buf, select.EPOLLOUT)
        out["modified"] = sorted((names[fd], ev) for fd, ev in ep.poll(0))
        ep.unregister(buf)
        out["unregistered"] = sorted((names[fd], ev) for fd, ev in ep.poll(0))
        return out


def epoll_errors(r, memfd, buf):
    out = {}
    with select.epoll() as ep:
        ep.register(buf, select.EPOLLIN)
        for name, fn in (("register_twice", lambda: ep.register(buf, select.EPOLLIN)),
                         ("modify_unregistered", lambda: ep.modify(memfd, select.EPOLLIN)),
                         ("unregister_unregistered", lambda: ep.unregister(memfd))):
            try:
                fn()
                out[name] = "ok"
            except OSError as e:
                out[name] = os.strerror(e.errno)
    return out


def epoll_oneshot(r, memfd, buf):
    with select.epoll() as ep:
        ep.register(buf, select.EPOLLIN | select.EPOLLONESHOT)
        first = ep.poll(0)
        second = ep.poll(0)
        ep.modify(buf, select.EPOLLIN | select.EPOLLONESHOT)
        third = ep.poll(0)
        return [len(first), len(second), len(third), [ev for _fd, ev in first]]


def epoll_closed_member(r, memfd, buf):
    with select.epoll() as ep:
        ep.register(buf, select.EPOLLIN)
        before = len(ep.poll(0))
        r.close(buf)
        return [before, ep.poll(0)]


def selectors_default():
    with selectors.DefaultSelector() as s, nl_socket() as nl:
        s.register(nl, selectors.EVENT_READ)
        empty = s.select(0)
        getfamily(nl)
        ready = [(key.fileobj is nl, ev) for key, ev in s.select(0)]
        return {"kind": type(s).__name__, "empty": empty, "ready": ready}


run_all([
    ("dmabuf", with_dmabuf(dmabuf_poll)),
    ("udmabuf_dev", udmabuf_dev),
    ("sync_file_read", with_dmabuf(sync_file(DMA_BUF_SYNC_READ))),
    ("sync_file_write", with_dmabuf(sync_file(DMA_BUF_SYNC_WRITE))),
    ("netlink", netlink_states),
    ("mixed_select", mixed_select),
    ("select_objects", select_objects),
    ("select_timeout_not_ready", select_timeout_not_ready),
    ("poll_closed_fd", poll_closed_fd),
    ("select_closed_fd", select_closed_fd),
    ("poll_after_close", with_dmabuf(poll_after_close)),
    ("poll_object_errors", with_dmabuf(poll_object_errors)),
    ("epoll_basic", with_dmabuf(epoll_basic)),
    ("epoll_errors", with_dmabuf(epoll_errors)),
    ("epoll_oneshot", with_dmabuf(epoll_oneshot)),
    ("epoll_closed_member", with_dmabuf(epoll_closed_member)),
    ("selectors_default", selectors_default),
])
