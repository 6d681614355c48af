"""Devmem TCP error cases, run as a supervised program (plain syscalls, no redirection).

    devmem_errors.py EXAMPLES_DIR ADDR PORT

Binds a udmabuf to RX queue 0 (the topology's scripted peer sends to ADDR:PORT), then
prints one line per case: a bind to a host address stays the host's, a UDP socket to
the NIC address too, a second bind, a recvmsg without MSG_SOCK_DEVMEM, a control
buffer too small, the fragments' tokens, DONTNEED with bad tokens and bad lengths,
connect with nobody listening, and the end of the stream.
"""

import ctypes
import errno
import os
import socket
import stat
import struct
import sys

sys.path.insert(0, sys.argv[1])
import ncdevmem_rx as nc

ADDR, PORT = sys.argv[2], int(sys.argv[3])
MSG_SOCK_DEVMEM = 0x2000000
SO_DEVMEM_DONTNEED = 80
libc = ctypes.CDLL(None, use_errno=True)


def err(call):
    try:
        call()
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return "ok"


def dontneed(sock, tokens):
    """setsockopt's return value (the count freed) or the errno name."""
    buf = b"".join(struct.pack("=II", t, n) for t, n in tokens)
    r = libc.setsockopt(sock.fileno(), socket.SOL_SOCKET, SO_DEVMEM_DONTNEED, buf, len(buf))
    return r if r >= 0 else errno.errorcode[ctypes.get_errno()]


def kind(fd):
    link = os.readlink(f"/proc/self/fd/{fd}")
    return link.split(":")[0] if link.startswith("socket:") else "placeholder"


def main():
    nl = nc.Genl()
    netdev = nl.family("netdev")
    dmabuf, memfd = nc.udmabuf(nc.SIZE)
    q = nc.attr(
        nc.NETDEV_A_DMABUF_QUEUES | nc.NLA_F_NESTED,
        nc.u32(nc.NETDEV_A_QUEUE_ID, 0) + nc.u32(nc.NETDEV_A_QUEUE_TYPE, 0),
    )
    nl.request(
        netdev,
        nc.NETDEV_CMD_BIND_RX,
        nc.u32(nc.NETDEV_A_DMABUF_IFINDEX, socket.if_nametoindex("eth0"))
        + nc.u32(nc.NETDEV_A_DMABUF_FD, dmabuf)
        + q,
    )

    # a host address: the host's socket, untouched
    host = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    host.bind(("127.0.0.1", 0))
    host.listen(1)
    host.setblocking(False)
    print("host bind:", kind(host.fileno()), host.getsockname()[0], err(host.accept))
    host.close()
    # UDP to the NIC's address: the host's (which lacks it)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    print("udp bind to the NIC:", err(lambda: udp.bind((ADDR, 0))))
    udp.close()
    # nobody listening on the NIC's address
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    print("connect, no listener:", err(lambda: c.connect((ADDR, PORT + 1))))
    c.close()

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    server.bind((ADDR, PORT))
    st = os.fstat(server.fileno())
    print(
        "mock bind:", kind(server.fileno()), stat.S_ISSOCK(st.st_mode),
        os.get_inheritable(server.fileno()), server.getsockname(),
    )  # fmt: skip
    print("bind again:", err(lambda: server.bind((ADDR, PORT))))
    print("recv before listen:", err(lambda: server.recv(10)))
    server.listen(1)
    print("accept4 bad flags:", err(lambda: libc_accept4(server.fileno(), 1)))
    conn, peer = server.accept()
    print("accepted:", kind(conn.fileno()), peer)
    print("recvmsg without MSG_SOCK_DEVMEM:", err(lambda: conn.recvmsg(100, 4096)))
    print("recv without MSG_SOCK_DEVMEM:", err(lambda: conn.recv(100)))
    print("control buffer too small:", err(lambda: conn.recvmsg(100, 16, MSG_SOCK_DEVMEM)))
    print("SO_RCVLOWAT:", err(lambda: conn.setsockopt(socket.SOL_SOCKET, 18, 1)))
    data, anc, _flags, _addr = conn.recvmsg(100, 4096, MSG_SOCK_DEVMEM)
    frags = [nc.DMABUF_CMSG.unpack(d) for _l, t, d in anc if t == nc.SO_DEVMEM_DMABUF]
    print("first recvmsg:", len(data), [(off, size, tok) for off, size, tok, _i, _f in frags])
    print("dontneed bad token:", dontneed(conn, [(999, 1)]))
    print("dontneed odd length:", err(lambda: conn.setsockopt(1, SO_DEVMEM_DONTNEED, b"\0" * 12)))
    print("dontneed 129 tokens:", dontneed(conn, [(1, 1)] * 129))
    print("dontneed the token:", dontneed(conn, [(frags[0][2], 1)]))
    total = len(data)
    while True:
        data, anc, _flags, _addr = conn.recvmsg(1 << 16, 4096, MSG_SOCK_DEVMEM)
        if not data and not anc:
            break
        total += len(data)
        toks = [nc.DMABUF_CMSG.unpack(d)[2] for _l, t, d in anc if t == nc.SO_DEVMEM_DMABUF]
        dontneed(conn, [(t, 1) for t in toks])
    print("total:", total, "then read():", os.read(conn.fileno(), 10))
    conn.close()
    server.close()
    nl.sock.close()
    os.close(dmabuf)
    os.close(memfd)


def libc_accept4(fd, flags):
    r = libc.accept4(fd, None, None, flags)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


if __name__ == "__main__":
    main()
