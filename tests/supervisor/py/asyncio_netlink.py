"""An asyncio program written for real Linux (standard library only): a NETLINK_ROUTE
dump of the links read through ``loop.add_reader`` (epoll), a dma-buf registered with
the same loop, and a subprocess awaited alongside.  Prints what does not depend on the
machine's links: the message types and that the dump ended."""

import asyncio
import fcntl
import os
import socket
import struct
import sys

NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
RTM_GETLINK, RTM_NEWLINK, NLMSG_DONE = 18, 16, 3
UDMABUF_CREATE = 0x40187542


async def dump_links() -> list[int]:
    loop = asyncio.get_running_loop()
    sock = socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.NETLINK_ROUTE
    )
    sock.bind((0, 0))
    req = struct.pack("=IHHII", 32, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
    sock.send(req + struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0))
    types: list[int] = []
    done = loop.create_future()

    def readable() -> None:
        data = sock.recv(65536)
        off = 0
        while off + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, off)
            types.append(kind)
            if kind == NLMSG_DONE and not done.done():
                done.set_result(None)
            off += (length + 3) & ~3

    loop.add_reader(sock.fileno(), readable)
    try:
        await asyncio.wait_for(done, 5)
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
    return types


async def dmabuf_readable() -> bool:
    """A dma-buf without fences is readable: add_reader fires at once."""
    memfd = os.memfd_create("asyncio", os.MFD_ALLOW_SEALING)
    os.ftruncate(memfd, 4096)
    fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
    dev = os.open("/dev/udmabuf", os.O_RDWR | os.O_CLOEXEC)
    buf = fcntl.ioctl(dev, UDMABUF_CREATE, bytearray(struct.pack("=IIQQ", memfd, 1, 0, 4096)), True)
    loop = asyncio.get_running_loop()
    fired = loop.create_future()
    loop.add_reader(buf, lambda: fired.done() or fired.set_result(True))
    try:
        return await asyncio.wait_for(fired, 5)
    finally:
        loop.remove_reader(buf)
        for fd in (buf, dev, memfd):
            os.close(fd)


async def main() -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import os; print(os.path.exists('/dev/udmabuf'))",
        stdout=asyncio.subprocess.PIPE,
    )
    types, ready, (out, _) = await asyncio.gather(
        dump_links(), dmabuf_readable(), child.communicate()
    )
    print("link messages:", set(types[:-1]) == {RTM_NEWLINK}, "last:", types[-1])
    print("dma-buf readable:", ready)
    print("subprocess sees /dev/udmabuf:", out.decode().strip())


asyncio.run(main())
