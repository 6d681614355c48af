"""Every row of the NIC table in ``docs/matrix.md``, run through the syscall path.

Netlink ``BIND_RX`` from a plain-Python client, a program socket bound to the NIC's
address that ``accept()``\\ s a :class:`TcpPeer`, ``recvmsg(MSG_SOCK_DEVMEM)`` and
``SO_DEVMEM_DONTNEED``: the documented answer is the answer.
"""

from __future__ import annotations

import dataclasses
import errno
import mmap
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mockkernel_nic import nic_dev
from nlclient import GenlClient, nest, u32

from mockkernel import Kernel
from mockkernel.net.devmem_tcp import MSG_SOCK_DEVMEM
from mockkernel.testing.net import TcpPeer
from mockkernel.testing.rdma import (
    VFIO_DMA_BUF_TPH_ST,
    VFIO_DMA_BUF_TPH_ST_EXT,
    VfioDevice,
    udmabuf,
)
from mockkernel.topology import Topology, default_topology
from mockkernel.uapi.linux.devmem_socket import SCM_DEVMEM_DMABUF, SO_DEVMEM_DONTNEED
from mockkernel.uapi.linux.netdev import (
    NETDEV_A_DMABUF_FD,
    NETDEV_A_DMABUF_IFINDEX,
    NETDEV_A_DMABUF_QUEUES,
    NETDEV_A_QUEUE_ID,
    NETDEV_A_QUEUE_TYPE,
    NETDEV_CMD_BIND_RX,
    NETDEV_QUEUE_TYPE_RX,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "matrix.md"
NIC_BDF = "0000:03:00.0"
VFIO_BDF = "0000:01:00.0"
SIZE = 0x4000
QUEUE = 2
CMSG = struct.Struct("=QIIII")
COLUMNS = (
    "exporter",
    "NIC mode",
    "profile",
    "BIND_RX",
    "TLP PH",
    "TLP ST",
    "payload while revoked",
    "payload after un-revoke",
)


def _rows() -> list[dict[str, str]]:
    text = DOC.read_text()
    table = text.split("<!-- nic-matrix:begin -->")[1].split("<!-- nic-matrix:end -->")[0]
    lines = [line.strip() for line in table.strip().splitlines()]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert tuple(header) == COLUMNS
    return [
        dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
        for line in lines[2:]
    ]


ROWS = _rows()


def _topology(mode: str) -> Topology:
    topo = default_topology()
    return dataclasses.replace(
        topo,
        devices=tuple(
            dataclasses.replace(d, options={**(d.options or {}), "devmem": mode})
            if d.bdf == NIC_BDF
            else d
            for d in topo.devices
        ),
    )


def test_the_table_covers_the_whole_matrix() -> None:
    keys = {(r["exporter"], r["NIC mode"], r["profile"]) for r in ROWS}
    assert len(keys) == len(ROWS) == 2 * 2 * 4


def _bind(nl: GenlClient, fd: int) -> str:
    replies = nl.request(
        nl.family("netdev"),
        NETDEV_CMD_BIND_RX,
        u32(NETDEV_A_DMABUF_IFINDEX, 2),
        u32(NETDEV_A_DMABUF_FD, fd),
        nest(
            NETDEV_A_DMABUF_QUEUES,
            u32(NETDEV_A_QUEUE_ID, QUEUE),
            u32(NETDEV_A_QUEUE_TYPE, NETDEV_QUEUE_TYPE_RX),
        ),
    )
    err = replies[-1].error
    if err:
        return "EOPNOTSUPP" if -err == errno.EOPNOTSUPP else errno.errorcode[-err]
    assert err == 0 and len(replies) == 2  # the BIND_RX reply (the binding's id), the ack
    return "ok"


def _recv_all(conn: Any, read: Callable[[int, int], bytes]) -> bytes:
    """``recvmsg(MSG_SOCK_DEVMEM)`` until nothing is queued; each fragment read from the
    dma-buf at its cmsg offset and given back with ``SO_DEVMEM_DONTNEED``."""
    out = b""
    while True:
        try:
            _data, anc, _flags, _addr = conn.recvmsg(
                1 << 16, socket.CMSG_SPACE(CMSG.size) * 16, MSG_SOCK_DEVMEM
            )
        except BlockingIOError:
            return out
        if not anc:
            return out
        tokens = b""
        for level, ctype, cdata in anc:
            assert (level, ctype) == (socket.SOL_SOCKET, SCM_DEVMEM_DMABUF)
            offset, size, token, _id, _fl = CMSG.unpack(cdata)
            out += read(offset, size)
            tokens += struct.pack("=II", token, 1)
        conn.setsockopt(socket.SOL_SOCKET, SO_DEVMEM_DONTNEED, tokens)


def _tag(events: list[dict[str, Any]]) -> tuple[str, str]:
    tlps = [e for e in events if e["event"] == "pcie.tlp"]
    assert tlps and all(e["status"] == "ok" for e in tlps)
    assert len({(e["th"], e["ph"], e["st"]) for e in tlps}) == 1
    if not tlps[0]["th"]:
        return "none", "none"
    return str(tlps[0]["ph"]), f"{tlps[0]['st']:#06x}"


def run_row(
    factory: Callable[..., Kernel], row: dict[str, str], tag: int = 0x0112
) -> dict[str, str]:
    """What the row's setup gives, in the table's words (``tag``: what v1/v2 userspace sets)."""
    kernel = factory(topology=_topology(row["NIC mode"]), uapi=row["profile"], install=True)
    nic = nic_dev(kernel)
    got = dict.fromkeys(COLUMNS[3:], "-")
    fds: list[int] = []
    dev = VfioDevice(VFIO_BDF) if row["exporter"] == "vfio-pci" else None
    bar: mmap.mmap | None = None
    nl = GenlClient()
    server = conn = None
    try:
        if dev is not None:
            profile = row["profile"]
            if profile == "tph-v1":
                fd = dev.export(0, SIZE, tph_v1=(tag, 1))
            else:
                fd = dev.export(0, SIZE)
                if profile == "tph-v2":
                    dev.set_tph_v2(fd, tag, 1)
                elif profile == "tph-v11":
                    dev.set_tph(fd, VFIO_DMA_BUF_TPH_ST | VFIO_DMA_BUF_TPH_ST_EXT, 0x0112, 0x12, 1)
            fds.append(fd)
            bar = mmap.mmap(dev.fd, 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
            view = bar

            def read(off: int, size: int) -> bytes:
                return bytes(view[off : off + size])
        else:
            fd, memfd = udmabuf(SIZE)
            fds += [fd, memfd]

            def read(off: int, size: int) -> bytes:
                return os.pread(memfd, size, off)

        got["BIND_RX"] = _bind(nl, fd)
        if got["BIND_RX"] != "ok":
            return got
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind((nic.netdev.ipv4, 0))
        server.listen(1)
        peer = TcpPeer.connect(kernel, *server.getsockname())
        assert peer.sk.queue == QUEUE
        conn, _ = server.accept()
        conn.setblocking(False)
        first = os.urandom(64)
        with kernel.tracer.capture() as events:
            assert peer.send(first) == len(first)
        got["TLP PH"], got["TLP ST"] = tag = _tag(events)
        assert _recv_all(conn, read) == first
        if dev is None:
            got["payload while revoked"] = got["payload after un-revoke"] = "n/a"
            return got
        dev.memory(False)
        held = os.urandom(64)
        with kernel.tracer.capture() as events:
            taken = peer.send(held)
        tlps = [e for e in events if e["event"] == "pcie.tlp"]
        if taken == 0 and not tlps and QUEUE in nic.quiesced:
            got["payload while revoked"] = "held, queue quiesced"
        else:
            got["payload while revoked"] = f"{taken} bytes, {len(tlps)} TLPs"
        dev.memory(True)
        more = os.urandom(64)
        with kernel.tracer.capture() as events:
            taken = peer.send(more)
        landed = _recv_all(conn, read)
        if taken == 128 and landed == held + more and _tag(events) == tag:
            got["payload after un-revoke"] = "ok, held bytes first"
        else:
            got["payload after un-revoke"] = f"{taken} bytes taken, {len(landed)} landed"
        return got
    finally:
        if conn is not None:
            conn.close()
        if server is not None:
            server.close()
        nl.close()
        if bar is not None:
            bar.close()
        for f in fds:
            os.close(f)
        if dev is not None:
            dev.close()


@pytest.mark.parametrize(
    "row", ROWS, ids=lambda r: f"{r['exporter']}-{r['NIC mode']}-{r['profile']}"
)
def test_matrix_row(mock_kernel_factory: Callable[..., Kernel], row: dict[str, str]) -> None:
    got = run_row(mock_kernel_factory, row)
    assert got == {k: row[k] for k in COLUMNS[3:]}


@pytest.mark.parametrize("profile", ["tph-v1", "tph-v2"])
def test_nic_asks_with_the_profiles_query(
    mock_kernel_factory: Callable[..., Kernel], profile: str
) -> None:
    """On v1/v2 the NIC asks ``get_tph(st_width=8)``: an 8-bit tag is taken (the table's
    16-bit one is refused)."""
    row = {"exporter": "vfio-pci", "NIC mode": "revocable", "profile": profile}
    got = run_row(mock_kernel_factory, row, tag=0x12)
    assert (got["BIND_RX"], got["TLP PH"], got["TLP ST"]) == ("ok", "1", "0x0012")
