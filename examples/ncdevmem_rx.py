"""Receive TCP payload straight into a dma-buf, as the kernel's ``ncdevmem`` selftest does.

    python3 examples/ncdevmem_rx.py IFNAME QUEUE ADDR PORT   # real Linux: devmem NIC, root,
                                                             # flow steered to QUEUE
    mockkernel run --topology T examples/ncdevmem_rx.py eth0 0 192.0.2.1 5201

Binds a udmabuf to RX queue QUEUE of IFNAME (``socket.if_nametoindex``; an ifindex
works too) through the netdev netlink family,
listens on ADDR:PORT, accepts one connection and reads it with
``recvmsg(..., MSG_SOCK_DEVMEM)``: each ``SCM_DEVMEM_DMABUF`` control message
(``struct dmabuf_cmsg``) says where a fragment landed in the dma-buf; the program
reads it from the udmabuf's memfd, prints it and gives the fragment back with
``SO_DEVMEM_DONTNEED``; payload that header split left in the linear head comes as
``SCM_DEVMEM_LINEAR`` bytes in the buffer, a readable skb as plain bytes with no
control message.  Under mockkernel the topology's ``peer_port``/``peer_data``
NIC options make the remote peer.  Only the standard library.
"""

import fcntl
import mmap
import os
import socket
import struct
import sys

NETLINK_GENERIC = 16
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR, NLMSG_DONE = 2, 3
GENL_ID_CTRL, CTRL_CMD_GETFAMILY = 0x10, 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 1, 2
NETDEV_CMD_BIND_RX = 13
NETDEV_A_QUEUE_ID, NETDEV_A_QUEUE_TYPE = 1, 3
NETDEV_A_DMABUF_IFINDEX, NETDEV_A_DMABUF_QUEUES, NETDEV_A_DMABUF_FD = 1, 2, 3
NETDEV_A_DMABUF_ID = 4
NLA_F_NESTED = 0x8000
F_ADD_SEALS, F_SEAL_SHRINK = 1033, 0x0002
UDMABUF_CREATE = 0x40187542
SO_DEVMEM_LINEAR, SO_DEVMEM_DMABUF, SO_DEVMEM_DONTNEED = 78, 79, 80
MSG_SOCK_DEVMEM = 0x2000000
DMABUF_CMSG = struct.Struct("=QIIII")  # frag_offset, frag_size, frag_token, dmabuf_id, flags
SIZE = 64 * mmap.PAGESIZE


def attr(atype, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, atype) + payload + bytes(-n % 4)


def u32(atype, value):
    return attr(atype, struct.pack("=I", value))


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

    def request(self, family, cmd, payload):
        self.seq += 1
        body = struct.pack("=BBH", cmd, 1, 0) + payload
        flags = NLM_F_REQUEST | NLM_F_ACK
        self.sock.send(struct.pack("=IHHII", 16 + len(body), family, flags, self.seq, 0) + body)
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
    """(dma-buf fd, memfd): the memfd is kept to read what the NIC wrote."""
    memfd = os.memfd_create("rx", os.MFD_ALLOW_SEALING)
    os.ftruncate(memfd, size)
    fcntl.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK)
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    try:
        arg = bytearray(struct.pack("=IIQQ", memfd, 0, 0, size))
        return fcntl.ioctl(dev, UDMABUF_CREATE, arg), memfd
    finally:
        os.close(dev)


def main():
    dev = sys.argv[1]
    ifindex = int(dev) if dev.isdigit() else socket.if_nametoindex(dev)
    queue = int(sys.argv[2])
    addr, port = sys.argv[3], int(sys.argv[4])
    nl = Genl()
    netdev = nl.family("netdev")
    dmabuf, memfd = udmabuf(SIZE)
    q = attr(
        NETDEV_A_DMABUF_QUEUES | NLA_F_NESTED,
        u32(NETDEV_A_QUEUE_ID, queue) + u32(NETDEV_A_QUEUE_TYPE, 0),
    )
    (reply,) = nl.request(
        netdev,
        NETDEV_CMD_BIND_RX,
        u32(NETDEV_A_DMABUF_IFINDEX, ifindex) + u32(NETDEV_A_DMABUF_FD, dmabuf) + q,
    )
    print(f"bound RX queue {queue}: dmabuf id {struct.unpack('=I', reply[NETDEV_A_DMABUF_ID])[0]}")

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((addr, port))
    server.listen(1)
    conn, _peer = server.accept()
    received = bytearray()
    while True:
        data, ancdata, _flags, _addr = conn.recvmsg(
            65536, socket.CMSG_SPACE(24) * 32, MSG_SOCK_DEVMEM
        )
        if not data and not ancdata:
            break
        if not ancdata:  # a readable skb: plain bytes, as a normal recv
            received += data
            continue
        tokens = b""
        linear = 0  # SCM_DEVMEM_LINEAR bytes sit packed at the start of the buffer
        for level, ctype, cdata in ancdata:
            if level != socket.SOL_SOCKET:
                continue
            offset, size, token, dmabuf_id, _ = DMABUF_CMSG.unpack_from(cdata)
            if ctype == SO_DEVMEM_LINEAR:
                received += data[linear : linear + size]
                linear += size
                continue
            if ctype != SO_DEVMEM_DMABUF:
                continue
            chunk = os.pread(memfd, size, offset)
            received += chunk
            print(f"frag: dmabuf {dmabuf_id} offset {offset:#x} size {size} token {token}")
            tokens += struct.pack("=II", token, 1)
        if tokens:
            conn.setsockopt(socket.SOL_SOCKET, SO_DEVMEM_DONTNEED, tokens)
    print(f"received {len(received)} bytes: {bytes(received[:64]).decode(errors='replace')!r}")
    conn.close()
    server.close()
    nl.sock.close()  # the binding goes with the socket
    os.close(dmabuf)
    os.close(memfd)


if __name__ == "__main__":
    main()
