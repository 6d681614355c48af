"""Bind a udmabuf to a NIC RX queue over the netdev netlink family, as ``ncdevmem`` does.

    python3 examples/netdev_bind_rx.py IFNAME QUEUE    # real Linux: devmem-capable NIC, root
    mockkernel run examples/netdev_bind_rx.py eth0 1   # the same program, mock kernel

IFNAME goes through ``socket.if_nametoindex`` (an ifindex works too).
Resolves the "netdev" generic netlink family through nlctrl, lists the device's RX
queues (QUEUE_GET dump), makes a udmabuf and binds it to one queue (BIND_RX); the
binding lasts as long as the netlink socket.  Only the standard library.
"""

import fcntl
import mmap
import os
import socket
import struct
import sys

NETLINK_GENERIC = 16
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
GENL_ID_CTRL, CTRL_CMD_GETFAMILY = 0x10, 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 1, 2
NETDEV_CMD_QUEUE_GET, NETDEV_CMD_BIND_RX = 10, 13
NETDEV_A_QUEUE_ID, NETDEV_A_QUEUE_IFINDEX, NETDEV_A_QUEUE_TYPE = 1, 2, 3
NETDEV_A_QUEUE_DMABUF = 5
NETDEV_A_DMABUF_IFINDEX, NETDEV_A_DMABUF_QUEUES, NETDEV_A_DMABUF_FD = 1, 2, 3
NETDEV_A_DMABUF_ID = 4
NLA_F_NESTED = 0x8000
F_ADD_SEALS, F_SEAL_SHRINK = 1033, 0x0002
UDMABUF_CREATE = 0x40187542
SIZE = 64 * mmap.PAGESIZE


def attr(atype, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, atype) + payload + bytes(-n % 4)


def attrs(data):
    out, pos = {}, 0
    while pos + 4 <= len(data):
        n, t = struct.unpack_from("=HH", data, pos)
        out[t & 0x3FFF] = data[pos + 4 : pos + n]
        pos += (n + 3) & ~3
    return out


class Genl:
    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.sock.bind((0, 0))
        self.seq = 0

    def request(self, family, cmd, payload, flags=NLM_F_ACK):
        self.seq += 1
        body = struct.pack("=BBH", cmd, 1, 0) + payload
        self.sock.send(
            struct.pack("=IHHII", 16 + len(body), family, NLM_F_REQUEST | flags, self.seq, 0) + body
        )
        replies = []
        while True:
            data = self.sock.recv(65536)
            pos = 0
            while pos + 16 <= len(data):
                n, mtype, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, pos)
                msg = data[pos + 16 : pos + n]
                pos += (n + 3) & ~3
                if mtype == NLMSG_ERROR:
                    err = struct.unpack_from("=i", msg)[0]
                    if err:
                        raise OSError(-err, os.strerror(-err))
                    return replies
                if mtype == NLMSG_DONE:
                    return replies
                replies.append(attrs(msg[4:]))

    def family(self, name):
        (reply,) = self.request(
            GENL_ID_CTRL, CTRL_CMD_GETFAMILY, attr(CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0")
        )
        return struct.unpack("=H", reply[CTRL_ATTR_FAMILY_ID])[0]


def udmabuf(size):
    memfd = os.memfd_create("rx", os.MFD_ALLOW_SEALING)
    os.ftruncate(memfd, size)
    fcntl.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK)
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    try:
        return fcntl.ioctl(dev, UDMABUF_CREATE, bytearray(struct.pack("=IIQQ", memfd, 1, 0, size)))
    finally:
        os.close(dev)
        os.close(memfd)


def main():
    dev = sys.argv[1] if len(sys.argv) > 1 else "eth0"
    ifindex = int(dev) if dev.isdigit() else socket.if_nametoindex(dev)
    queue = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    nl = Genl()
    netdev = nl.family("netdev")
    print(f"netdev family id {netdev}")
    u32 = lambda t, v: attr(t, struct.pack("=I", v))  # noqa: E731
    rx = [
        q
        for q in nl.request(
            netdev, NETDEV_CMD_QUEUE_GET, u32(NETDEV_A_QUEUE_IFINDEX, ifindex), flags=NLM_F_DUMP
        )
        if q[NETDEV_A_QUEUE_TYPE] == bytes(4)
    ]
    print(f"ifindex {ifindex}: {len(rx)} RX queues")
    dmabuf = udmabuf(SIZE)
    q = attr(
        NETDEV_A_DMABUF_QUEUES | NLA_F_NESTED,
        u32(NETDEV_A_QUEUE_ID, queue) + u32(NETDEV_A_QUEUE_TYPE, 0),
    )
    (reply,) = nl.request(
        netdev,
        NETDEV_CMD_BIND_RX,
        u32(NETDEV_A_DMABUF_IFINDEX, ifindex) + u32(NETDEV_A_DMABUF_FD, dmabuf) + q,
    )
    bid = struct.unpack("=I", reply[NETDEV_A_DMABUF_ID])[0]
    print(f"bound dma-buf fd {dmabuf} to RX queue {queue}: binding id {bid}")
    (info,) = nl.request(
        netdev,
        NETDEV_CMD_QUEUE_GET,
        u32(NETDEV_A_QUEUE_ID, queue)
        + u32(NETDEV_A_QUEUE_IFINDEX, ifindex)
        + u32(NETDEV_A_QUEUE_TYPE, 0),
    )
    print(f"QUEUE_GET: queue {queue} dmabuf {struct.unpack('=I', info[NETDEV_A_QUEUE_DMABUF])[0]}")
    try:
        nl.request(
            netdev,
            NETDEV_CMD_BIND_RX,
            u32(NETDEV_A_DMABUF_IFINDEX, ifindex) + u32(NETDEV_A_DMABUF_FD, dmabuf) + q,
        )
    except OSError as e:
        print(f"binding the same queue again: {os.strerror(e.errno)}")
    nl.sock.close()  # the binding goes with the socket
    os.close(dmabuf)
    print("socket closed: binding undone")


if __name__ == "__main__":
    main()
