"""``mockkernel.traceview.decode``: an event's numbers as the names of the uAPI headers.

Every expected name below is built from the module that owns it (``mockkernel.uapi``,
``os``, ``mmap``, ``fcntl``), never from a number typed here, so a test fails when the
decoding picks a wrong name, not when a header renumbers.
"""

from __future__ import annotations

import fcntl
import mmap
import os

from hypothesis import given
from hypothesis import strategies as st

from mockkernel.traceview import fields, ioctl_name, syscall_text
from mockkernel.uapi.linux import dma_buf, vfio, vfio_tph
from mockkernel.uapi.linux import udmabuf as udmabuf_uapi
from mockkernel.uapi.rdma import ib_user_ioctl_cmds as cmds
from mockkernel.uapi.rdma import ib_user_ioctl_verbs, ib_user_verbs
from mockkernel.uapi.rdma.rdma_user_ioctl_cmds import RDMA_VERBS_IOCTL


def _field(ev: dict[str, object], key: str) -> str:
    return dict(fields(ev))[key]


def test_open_flags_are_named() -> None:
    ev = {"event": "sys.open", "seq": 1, "path": "/dev/udmabuf", "flags": os.O_RDWR | os.O_CLOEXEC}
    assert _field(ev, "flags") == "O_RDWR|O_CLOEXEC"
    assert syscall_text({**ev, "ret": 3}) == "open(path=/dev/udmabuf, flags=O_RDWR|O_CLOEXEC) = 3"
    creat = {**ev, "flags": os.O_WRONLY | os.O_CREAT, "mode": 0o644, "errno": "EACCES"}
    assert syscall_text(creat) == (
        "open(path=/dev/udmabuf, flags=O_WRONLY|O_CREAT, mode=0o644) = -1 EACCES"
    )


_O_NAMED = [
    getattr(os, n)
    for n in ("O_CREAT", "O_EXCL", "O_TRUNC", "O_APPEND", "O_NONBLOCK", "O_DIRECTORY",
              "O_NOFOLLOW", "O_CLOEXEC", "O_PATH", "O_DSYNC", "O_NOATIME")
]  # fmt: skip


@given(st.sampled_from([os.O_RDONLY, os.O_WRONLY, os.O_RDWR]), st.sets(st.sampled_from(_O_NAMED)))
def test_open_flags_decode_back_to_the_same_number(access: int, bits: set[int]) -> None:
    """Whatever the combination, the names read back (``getattr(os, name)``) OR to the
    number the program passed: no bit lost, none invented."""
    value = access
    for b in bits:
        value |= b
    text = _field({"event": "sys.openat", "dirfd": -100, "flags": value}, "flags")
    back = 0
    for part in text.split("|"):
        back |= int(part, 0) if part.startswith("0") else getattr(os, part)
    assert back == value


def test_at_fdcwd_fcntl_lseek_mmap() -> None:
    assert _field({"event": "sys.readlinkat", "dirfd": -100, "path": "x"}, "dirfd") == "AT_FDCWD"
    assert _field({"event": "sys.readlinkat", "dirfd": 3, "path": "x"}, "dirfd") == "3"
    ev = {"event": "sys.fcntl", "fd": 5, "cmd": fcntl.F_SETFL, "arg": os.O_NONBLOCK, "ret": 0}
    assert syscall_text(ev) == "fcntl(fd=5, cmd=F_SETFL, arg=O_RDONLY|O_NONBLOCK) = 0"
    ev = {"event": "sys.fcntl", "fd": 5, "cmd": fcntl.F_GETFL, "arg": 0, "ret": os.O_RDWR}
    assert syscall_text(ev) == "fcntl(fd=5, cmd=F_GETFL, arg=0) = O_RDWR"
    ev = {"event": "sys.fcntl", "fd": 5, "cmd": fcntl.F_DUPFD_CLOEXEC, "arg": 0, "ret": 6}
    assert syscall_text(ev) == "fcntl(fd=5, cmd=F_DUPFD_CLOEXEC, arg=0) = 6"
    assert _field({"event": "sys.lseek", "whence": os.SEEK_END}, "whence") == "SEEK_END"
    ev = {
        "event": "sys.mmap",
        "flags": mmap.MAP_SHARED,
        "prot": mmap.PROT_READ | mmap.PROT_WRITE,
        "access": mmap.ACCESS_DEFAULT,
    }
    assert [t for _, t in fields(ev)] == ["MAP_SHARED", "PROT_READ|PROT_WRITE", "ACCESS_DEFAULT"]


def test_ioctl_numbers_by_the_files_kind() -> None:
    feature = hex(vfio.VFIO_DEVICE_FEATURE)
    assert ioctl_name(feature, "[vfio-device]") == "VFIO_DEVICE_FEATURE"
    assert ioctl_name(dma_buf.DMA_BUF_SET_NAME_B) == "DMA_BUF_SET_NAME"
    assert ioctl_name(udmabuf_uapi.UDMABUF_CREATE) == "UDMABUF_CREATE"
    assert ioctl_name(RDMA_VERBS_IOCTL) == "RDMA_VERBS_IOCTL"
    assert ioctl_name(0x12345678) == "0x12345678"  # unknown: the number, in hex
    ev = {"event": "sys.ioctl", "fd": 4, "cmd": feature, "arg": 0x7FFD0000, "file": 9, "ret": 0}
    text = syscall_text(ev, {9: "[vfio-device]"})
    assert text == "ioctl(fd=4, cmd=VFIO_DEVICE_FEATURE, arg=0x7ffd0000) = 0"
    assert syscall_text(ev, {9: "[vfio-device]"}, addresses=False) == (
        "ioctl(fd=4, cmd=VFIO_DEVICE_FEATURE) = 0"
    )


def test_dma_buf_sync_and_direction() -> None:
    end_write = dma_buf.DMA_BUF_SYNC_END | dma_buf.DMA_BUF_SYNC_WRITE
    start_read = dma_buf.DMA_BUF_SYNC_START | dma_buf.DMA_BUF_SYNC_READ
    ev = {"event": "dma_buf.sync", "dmabuf": 1}
    assert _field({**ev, "flags": end_write}, "flags") == "DMA_BUF_SYNC_END|DMA_BUF_SYNC_WRITE"
    assert _field({**ev, "flags": start_read}, "flags") == "DMA_BUF_SYNC_START|DMA_BUF_SYNC_READ"
    assert _field({**ev, "flags": dma_buf.DMA_BUF_SYNC_RW | 0x40}, "flags") == (
        "DMA_BUF_SYNC_START|DMA_BUF_SYNC_RW|0x40"
    )
    from mockkernel.dma_buf import DMA_FROM_DEVICE

    ev = {"event": "dma_buf.map", "direction": DMA_FROM_DEVICE}
    assert _field(ev, "direction") == "DMA_FROM_DEVICE"


def test_tph_fields() -> None:
    ev = {
        "event": "vfio_pci.dma_buf_tph_set",
        "uapi": "tph-v11",
        "flags": vfio_tph.VFIO_DMA_BUF_TPH_ST | vfio_tph.VFIO_DMA_BUF_TPH_ST_EXT,
        "st": 18,
        "xst": 274,
        "ph": 1,
    }
    assert _field(ev, "flags") == "VFIO_DMA_BUF_TPH_ST|VFIO_DMA_BUF_TPH_ST_EXT"
    assert _field(ev, "ph") == "1 (requester)"
    assert _field(ev, "st") == "18"
    v1 = {**ev, "uapi": "tph-v1", "flags": vfio_tph.VFIO_DMABUF_FLAG_TPH}
    assert _field(v1, "flags") == "VFIO_DMABUF_FLAG_TPH"
    assert _field({"event": "pcie.tlp", "ph": 3}, "ph") == "3 (target with priority)"
    assert _field({"event": "mlx5.mr_tph", "ph": None}, "ph") == "null"
    ev = {"event": "vfio_pci.dma_buf_export", "region": vfio.VFIO_PCI_BAR2_REGION_INDEX}
    assert _field(ev, "region") == "VFIO_PCI_BAR2_REGION_INDEX"


def test_rdma_fields() -> None:
    ev = {"event": "rdma.ioctl", "object": cmds.UVERBS_OBJECT_MR}
    ev["method"] = cmds.UVERBS_METHOD_REG_DMABUF_MR
    assert [_field(ev, "object"), _field(ev, "method")] == [
        "UVERBS_OBJECT_MR",
        "UVERBS_METHOD_REG_DMABUF_MR",
    ]
    ev = {"event": "rdma.ioctl", "object": cmds.UVERBS_OBJECT_DEVICE}
    ev["method"] = cmds.UVERBS_METHOD_GET_CONTEXT
    assert _field(ev, "method") == "UVERBS_METHOD_GET_CONTEXT"
    ev = {"event": "rdma.write", "command": hex(ib_user_verbs.IB_USER_VERBS_CMD_ALLOC_PD)}
    assert _field(ev, "command") == "IB_USER_VERBS_CMD_ALLOC_PD"
    access = (
        ib_user_ioctl_verbs.IB_UVERBS_ACCESS_LOCAL_WRITE
        | ib_user_ioctl_verbs.IB_UVERBS_ACCESS_REMOTE_READ
    )
    assert _field({"event": "rdma.reg_mr", "access": access}, "access") == (
        "IB_UVERBS_ACCESS_LOCAL_WRITE|IB_UVERBS_ACCESS_REMOTE_READ"
    )


def test_undecoded_fields_are_shown_as_before() -> None:
    ev = {"event": "x.y", "seq": 3, "pid": 1, "name": "a b", "n": 7, "ok": True, "z": None}
    assert fields(ev) == [("name", '"a b"'), ("n", "7"), ("ok", "true"), ("z", "null")]


def test_pci_command_register() -> None:
    from mockkernel.uapi.linux import pci_regs

    ev = {
        "event": "pci.config_write",
        "where": pci_regs.PCI_COMMAND,
        "old": pci_regs.PCI_COMMAND_MEMORY | pci_regs.PCI_COMMAND_MASTER,
        "new": 0,
    }
    assert [t for _, t in fields(ev)] == [
        "PCI_COMMAND",
        "PCI_COMMAND_MEMORY|PCI_COMMAND_MASTER",
        "0",
    ]
    other = {**ev, "where": pci_regs.PCI_COMMAND + 0x100}  # not the command register
    assert [t for _, t in fields(other)][1:] == [str(ev["old"]), "0"]
