"""Decoding a trace event's numbers into the names a kernel reader knows.

``open(flags=524290)`` becomes ``open(flags=O_RDWR|O_CLOEXEC)``, ``cmd=0x3b75`` becomes
``VFIO_DEVICE_FEATURE``, ``dma_buf.sync flags=6`` becomes
``flags=DMA_BUF_SYNC_END|DMA_BUF_SYNC_WRITE``, ``rdma.ioctl object=7 method=4`` becomes
``UVERBS_OBJECT_MR`` / ``UVERBS_METHOD_REG_DMABUF_MR``.  Every name is read from where
the project keeps it checked: :mod:`mockkernel.uapi` (whose names ``tests/test_abi.py``
compiles against the real headers), the core's own constants (``AT_*``, ``DMA_*`` data
directions) and Python's ``os``/``fcntl``/``mmap`` modules (this host's values); none is
retyped here.  The one table without a C name is the PCIe processing hint, which the
spec names in words.

:func:`fields` gives an event's fields as ``(key, text)`` pairs, decoded where a decoder
is known for that ``(event, key)`` and as JSON-ish text otherwise; :func:`syscall_text`
writes a ``sys.*`` event as a call, strace style.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType, ModuleType
from typing import Any

__all__ = ["META", "arg_struct_text", "field_text", "fields", "ioctl_name", "syscall_text"]

#: keys every event may carry that are not its own fields
META = frozenset({"event", "seq", "pid", "tid", "nested"})

#: the PCIe TPH processing hint (2 bits), as the PCIe spec names it; no header has names
_PH_WORDS = ("bidirectional", "requester", "target", "target with priority")


@dataclass(frozen=True)
class _Names:
    """The decoding tables, read once from :mod:`mockkernel.uapi` and the core."""

    ioctls: Mapping[int, tuple[str, ...]]
    #: ioctl number -> the ``mockkernel.uapi`` struct of its argument (``arg_data``)
    arg_structs: Mapping[int, type[ctypes.Structure]]
    #: ``VFIO_DEVICE_FEATURE_*`` index -> the struct of the data after the header
    feature_data: Mapping[int, type[ctypes.Structure]]
    #: (feature, data size) -> struct, for the proposed ``VFIO_DEVICE_FEATURE_DMA_BUF_TPH``
    #: whose struct is the uAPI profile's (tph-v11's 12 bytes, tph-v2's 8)
    tph_feature_data: Mapping[tuple[int, int], type[ctypes.Structure]]
    #: (struct name, field) -> decoder(value, the struct's fields) -> text, or None
    struct_fields: Mapping[tuple[str, str], Callable[[Any, Mapping[str, Any]], str | None]]
    #: (event, key) -> decoder(value, event) -> text, or None to show the value plainly
    decoders: Mapping[tuple[str, str], Callable[[Any, Mapping[str, Any]], str | None]]
    #: (object id, method id) -> attribute id -> ``UVERBS_ATTR_*`` name
    uverbs_attrs: Mapping[tuple[int, int], Mapping[int, str]]
    #: (object id, method id) -> attribute id -> is its ``data`` a pointer the kernel
    #: writes (``UVERBS_ATTR_PTR_OUT``), from the core's method specs
    uverbs_outputs: Mapping[tuple[int, int], frozenset[int]]
    #: an inline attribute's value decoder, by the attribute's name
    uverbs_values: Mapping[str, Callable[[Any, Mapping[str, Any]], str | None]]


def _consts(mod: ModuleType, prefix: str, skip: tuple[str, ...] = ()) -> list[tuple[int, str]]:
    """``(value, name)`` of ``mod``'s int constants named ``prefix*``, in definition order."""
    return [
        (v, k)
        for k, v in vars(mod).items()
        if k.startswith(prefix) and type(v) is int and not k.endswith(skip or ("\0",))
    ]


def _enum(pairs: Iterable[tuple[int, str]]) -> dict[int, str]:
    """value -> the first name defined for it."""
    out: dict[int, str] = {}
    for value, name in pairs:
        out.setdefault(value, name)
    return out


def _bits(value: int, pairs: Iterable[tuple[int, str]], zero: str = "0") -> str:
    """``A|B|0x40``: the named single bits of ``value`` (the rest in hex)."""
    parts: list[str] = []
    rest = value
    for bit, name in pairs:
        if bit and bit & (bit - 1) == 0 and rest & bit:
            parts.append(name)
            rest &= ~bit
    if rest:
        parts.append(hex(rest))
    return "|".join(parts) or zero


def _as_int(value: Any) -> int | None:
    """An int, or an int written as text (``"0x3"``); else None."""
    if type(value) is int:
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return None
    return None


def _ioctl_table() -> dict[int, tuple[str, ...]]:
    """Ioctl numbers of ``mockkernel.uapi`` (and the generic ``FIO*``) -> their names."""
    import termios

    from .. import uapi

    names: dict[int, set[str]] = {}
    for n in ("FIOCLEX", "FIONCLEX", "FIONBIO", "FIOASYNC", "FIONREAD"):
        if hasattr(termios, n):
            names.setdefault(getattr(termios, n), set()).add(n)
    for info in pkgutil.walk_packages(uapi.__path__, uapi.__name__ + "."):
        mod = importlib.import_module(info.name)
        for name in getattr(mod, "__all__", ()):
            value = getattr(mod, name, None)
            if (
                type(value) is int
                and 0xFF < value < 1 << 32
                and (value >> 8) & 0xFF in (0x3B, 0x62, 0x75, 0x1B)  # VFIO/iommufd, dma-buf,
                and not name.endswith(("_FLAGS", "_MASK"))  # udmabuf, RDMA_VERBS_IOCTL
            ):
                names.setdefault(value, set()).add(name)
    return {k: tuple(sorted(v)) for k, v in names.items()}


@cache
def _names() -> _Names:
    """Build the tables (once: immutable facts of the uapi modules and this host)."""
    import fcntl
    import mmap

    from .. import syscalls
    from ..dma_buf import core as dma_buf_core
    from ..uapi.linux import (
        dma_buf,
        iommufd,
        netdev,
        pci_regs,
        sync_file,
        udmabuf,
        vfio,
        vfio_tph,
    )
    from ..uapi.rdma import ib_user_ioctl_cmds as cmds
    from ..uapi.rdma import ib_user_ioctl_verbs, ib_user_verbs, rdma_user_ioctl_cmds

    o_flags = [
        (getattr(os, n), n)
        for n in ("O_CREAT", "O_EXCL", "O_NOCTTY", "O_TRUNC", "O_APPEND", "O_NONBLOCK",
                  "O_DSYNC", "O_DIRECT", "O_LARGEFILE", "O_DIRECTORY", "O_NOFOLLOW",
                  "O_NOATIME", "O_CLOEXEC", "O_PATH", "O_TMPFILE")
        if hasattr(os, n) and getattr(os, n)
    ]  # fmt: skip

    def open_flags(v: Any, _ev: Mapping[str, Any]) -> str | None:
        if type(v) is not int:
            return None
        access = ("O_RDONLY", "O_WRONLY", "O_RDWR", "3")[v & 3]
        rest = _bits(v & ~3, o_flags, zero="")
        return f"{access}|{rest}" if rest else access

    at_flags = _consts(syscalls, "AT_", skip=("AT_FDCWD", "_SYNC_TYPE"))

    def dirfd(v: Any, _ev: Mapping[str, Any]) -> str | None:
        return "AT_FDCWD" if v == syscalls.AT_FDCWD else None

    def at(v: Any, _ev: Mapping[str, Any]) -> str | None:
        return _bits(v, at_flags) if type(v) is int else None

    fcntl_cmds = _enum(_consts(fcntl, "F_", skip=("LCK", "_RDLCK", "_WRLCK", "_UNLCK")))
    fcntl_cmds = {
        v: k for v, k in fcntl_cmds.items() if not k.startswith(("F_SEAL_", "F_EXLCK", "F_SHLCK"))
    }

    def fcntl_cmd(v: Any, _ev: Mapping[str, Any]) -> str | None:
        return fcntl_cmds.get(v) if type(v) is int else None

    def fcntl_arg(v: Any, ev: Mapping[str, Any]) -> str | None:
        cmd = ev.get("cmd")
        if cmd == fcntl.F_SETFL:
            return open_flags(v, ev)
        if cmd == fcntl.F_SETFD and type(v) is int:
            return _bits(v, [(fcntl.FD_CLOEXEC, "FD_CLOEXEC")])
        return None

    def fcntl_ret(v: Any, ev: Mapping[str, Any]) -> str | None:
        cmd = ev.get("cmd")
        if cmd == fcntl.F_GETFL:
            return open_flags(v, ev)
        if cmd == fcntl.F_GETFD and type(v) is int:
            return _bits(v, [(fcntl.FD_CLOEXEC, "FD_CLOEXEC")])
        return None

    def enum_of(table: Mapping[int, str]) -> Callable[[Any, Mapping[str, Any]], str | None]:
        def decode(v: Any, _ev: Mapping[str, Any]) -> str | None:
            n = _as_int(v)
            return None if n is None else table.get(n)

        return decode

    def bits_of(
        pairs: list[tuple[int, str]], zero: str = "0"
    ) -> Callable[[Any, Mapping[str, Any]], str | None]:
        def decode(v: Any, _ev: Mapping[str, Any]) -> str | None:
            n = _as_int(v)
            return None if n is None else _bits(n, pairs, zero)

        return decode

    seek = enum_of(_enum(_consts(os, "SEEK_")))
    lock_ops = bits_of(
        [(fcntl.LOCK_SH, "LOCK_SH"), (fcntl.LOCK_EX, "LOCK_EX"), (fcntl.LOCK_NB, "LOCK_NB"),
         (fcntl.LOCK_UN, "LOCK_UN")]
    )  # fmt: skip
    mmap_prot = bits_of(_consts(mmap, "PROT_"), zero="PROT_NONE")
    map_flags = bits_of(_consts(mmap, "MAP_", skip=("MAP_ANON",)))
    mmap_access = enum_of(_enum(_consts(mmap, "ACCESS_")))
    madvise = enum_of(_enum(_consts(mmap, "MADV_")))

    def dma_buf_sync(v: Any, _ev: Mapping[str, Any]) -> str | None:
        n = _as_int(v)
        if n is None:
            return None
        end = "DMA_BUF_SYNC_END" if n & dma_buf.DMA_BUF_SYNC_END else "DMA_BUF_SYNC_START"
        rw = {
            dma_buf.DMA_BUF_SYNC_READ: "DMA_BUF_SYNC_READ",
            dma_buf.DMA_BUF_SYNC_WRITE: "DMA_BUF_SYNC_WRITE",
            dma_buf.DMA_BUF_SYNC_RW: "DMA_BUF_SYNC_RW",
        }.get(n & dma_buf.DMA_BUF_SYNC_RW)
        rest = n & ~dma_buf.DMA_BUF_SYNC_VALID_FLAGS_MASK
        parts = [end, *([rw] if rw else []), *([hex(rest)] if rest else [])]
        return "|".join(parts)

    directions = enum_of(
        {
            dma_buf_core.DMA_BIDIRECTIONAL: "DMA_BIDIRECTIONAL",
            dma_buf_core.DMA_TO_DEVICE: "DMA_TO_DEVICE",
            dma_buf_core.DMA_FROM_DEVICE: "DMA_FROM_DEVICE",
        }
    )

    def ph(v: Any, _ev: Mapping[str, Any]) -> str | None:
        return f"{v} ({_PH_WORDS[v]})" if type(v) is int and 0 <= v < 4 else None

    def tph_flags(v: Any, ev: Mapping[str, Any]) -> str | None:
        if type(v) is not int:
            return None
        if ev.get("uapi") == "tph-v1":
            return _bits(v, [(vfio_tph.VFIO_DMABUF_FLAG_TPH, "VFIO_DMABUF_FLAG_TPH")])
        return _bits(v, _consts(vfio_tph, "VFIO_DMA_BUF_TPH_ST"))

    regions = enum_of(
        _enum((v, k) for v, k in _consts(vfio, "VFIO_PCI_") if k.endswith("_REGION_INDEX"))
    )
    tph_modes = enum_of({v: k for v, k in _consts(pci_regs, "PCI_TPH_ST_") if k.endswith("_MODE")})
    tph_req = enum_of(_enum(_consts(pci_regs, "PCI_TPH_REQ_")))
    pci_command = bits_of([(v, k) for v, k in _consts(pci_regs, "PCI_COMMAND_")], zero="0")

    def where(v: Any, _ev: Mapping[str, Any]) -> str | None:
        return "PCI_COMMAND" if v == pci_regs.PCI_COMMAND else None

    def command_bits(v: Any, ev: Mapping[str, Any]) -> str | None:
        return pci_command(v, ev) if ev.get("where") == pci_regs.PCI_COMMAND else None

    netdev_cmds = enum_of(_enum(_consts(netdev, "NETDEV_CMD_", skip=("_MAX",))))
    access = bits_of(
        [(v, k) for v, k in _consts(ib_user_ioctl_verbs, "IB_UVERBS_ACCESS_")
         if "OPTIONAL" not in k]
    )  # fmt: skip
    objects = _enum(_consts(cmds, "UVERBS_OBJECT_"))
    methods = {
        objects_id: _enum((getattr(cmds, m), m) for m in names)
        for objects_id, names in _uverbs_methods(cmds).items()
    }

    def uverbs_object(v: Any, _ev: Mapping[str, Any]) -> str | None:
        return objects.get(v) if type(v) is int else None

    def uverbs_method(v: Any, ev: Mapping[str, Any]) -> str | None:
        table = methods.get(ev.get("object"))  # type: ignore[arg-type]
        return table.get(v) if table is not None and type(v) is int else None

    write_cmds = _enum(
        _consts(ib_user_verbs, "IB_USER_VERBS_CMD_", skip=("_FLAG_EXTENDED", "_THRESHOLD",
                                                           "_COMMAND_MASK", "_MASK"))
    )  # fmt: skip
    ex_cmds = _enum(_consts(ib_user_verbs, "IB_USER_VERBS_EX_CMD_"))
    extended = ib_user_verbs.IB_USER_VERBS_CMD_FLAG_EXTENDED

    def write_cmd(v: Any, _ev: Mapping[str, Any]) -> str | None:
        n = _as_int(v)
        if n is None:
            return None
        if n & extended:
            return ex_cmds.get(n & ib_user_verbs.IB_USER_VERBS_CMD_COMMAND_MASK)
        return write_cmds.get(n)

    decoders: dict[tuple[str, str], Callable[[Any, Mapping[str, Any]], str | None]] = {
        ("sys.open", "flags"): open_flags,
        ("sys.openat", "flags"): open_flags,
        ("sys.openat", "dirfd"): dirfd,
        ("sys.dup3", "flags"): open_flags,
        ("sys.newfstatat", "dirfd"): dirfd,
        ("sys.newfstatat", "flags"): at,
        ("sys.statx", "dirfd"): dirfd,
        ("sys.statx", "flags"): at,
        ("sys.faccessat", "dirfd"): dirfd,
        ("sys.faccessat", "flags"): at,
        ("sys.readlinkat", "dirfd"): dirfd,
        ("sys.fcntl", "cmd"): fcntl_cmd,
        ("sys.fcntl", "arg"): fcntl_arg,
        ("sys.fcntl", "ret"): fcntl_ret,
        ("sys.flock", "operation"): lock_ops,
        ("sys.lseek", "whence"): seek,
        ("sys.mmap", "flags"): map_flags,
        ("sys.mmap", "prot"): mmap_prot,
        ("sys.mmap", "access"): mmap_access,
        ("sys.madvise", "advice"): madvise,
        ("dma_buf.sync", "flags"): dma_buf_sync,
        ("dma_buf.map", "direction"): directions,
        ("vfio_pci.dma_buf_tph_set", "flags"): tph_flags,
        ("vfio_pci.dma_buf_tph_set", "ph"): ph,
        ("vfio_pci.dma_buf_export", "region"): regions,
        ("pci.tph_enable", "mode"): tph_modes,
        ("pci.tph_enable", "req_type"): tph_req,
        ("mlx5.probe", "req_type"): tph_req,
        ("pci.config_write", "where"): where,
        ("pci.config_write", "old"): command_bits,
        ("pci.config_write", "new"): command_bits,
        ("pcie.tlp", "ph"): ph,
        ("mlx5.mr_tph", "ph"): ph,
        ("rdma.dmah_alloc", "ph"): ph,
        ("rdma.reg_mr", "access"): access,
        ("rdma.ioctl", "object"): uverbs_object,
        ("rdma.ioctl", "method"): uverbs_method,
        ("rdma.write", "command"): write_cmd,
        ("netdev.notify", "cmd"): netdev_cmds,
    }
    # the argument structs of the _IOW/_IOWR commands a trace records (``arg_data``)
    arg_structs: dict[int, type[ctypes.Structure]] = {
        udmabuf.UDMABUF_CREATE: udmabuf.udmabuf_create,
        udmabuf.UDMABUF_CREATE_LIST: udmabuf.udmabuf_create_list,
        dma_buf.DMA_BUF_IOCTL_SYNC: dma_buf.dma_buf_sync,
        dma_buf.DMA_BUF_IOCTL_EXPORT_SYNC_FILE: dma_buf.dma_buf_export_sync_file,
        dma_buf.DMA_BUF_IOCTL_IMPORT_SYNC_FILE: dma_buf.dma_buf_import_sync_file,
        sync_file.SYNC_IOC_MERGE: sync_file.sync_merge_data,
        sync_file.SYNC_IOC_FILE_INFO: sync_file.sync_file_info,
        sync_file.SYNC_IOC_SET_DEADLINE: sync_file.sync_set_deadline,
        rdma_user_ioctl_cmds.RDMA_VERBS_IOCTL: rdma_user_ioctl_cmds.ib_uverbs_ioctl_hdr,
        # (_IO commands of VFIO and iommufd: the struct begins with its own size)
        vfio.VFIO_DEVICE_FEATURE: vfio.vfio_device_feature,
        vfio.VFIO_DEVICE_GET_INFO: vfio.vfio_device_info,
        vfio.VFIO_DEVICE_GET_REGION_INFO: vfio.vfio_region_info,
        vfio.VFIO_DEVICE_BIND_IOMMUFD: vfio.vfio_device_bind_iommufd,
        vfio.VFIO_DEVICE_ATTACH_IOMMUFD_PT: vfio.vfio_device_attach_iommufd_pt,
        vfio.VFIO_DEVICE_DETACH_IOMMUFD_PT: vfio.vfio_device_detach_iommufd_pt,
        iommufd.IOMMU_DESTROY: iommufd.iommu_destroy,
        iommufd.IOMMU_IOAS_ALLOC: iommufd.iommu_ioas_alloc,
        iommufd.IOMMU_IOAS_IOVA_RANGES: iommufd.iommu_ioas_iova_ranges,
        iommufd.IOMMU_IOAS_ALLOW_IOVAS: iommufd.iommu_ioas_allow_iovas,
        iommufd.IOMMU_IOAS_MAP: iommufd.iommu_ioas_map,
        iommufd.IOMMU_IOAS_MAP_FILE: iommufd.iommu_ioas_map_file,
        iommufd.IOMMU_IOAS_COPY: iommufd.iommu_ioas_copy,
        iommufd.IOMMU_IOAS_UNMAP: iommufd.iommu_ioas_unmap,
        iommufd.IOMMU_OPTION: iommufd.iommu_option,
        iommufd.IOMMU_VFIO_IOAS: iommufd.iommu_vfio_ioas,
    }
    ioas_map_flags = bits_of(_consts(iommufd, "IOMMU_IOAS_MAP_", skip=("_FILE",)))
    # VFIO_DEVICE_FEATURE: the feature index in ``flags``' low bits, and the struct of
    # the data that follows the header, for the features with one fixed struct
    features = _enum(
        (v, k)
        for mod in (vfio, vfio_tph)
        for v, k in _consts(mod, "VFIO_DEVICE_FEATURE_")
        if v <= vfio.VFIO_DEVICE_FEATURE_MASK
        and k not in ("VFIO_DEVICE_FEATURE_MASK", "VFIO_DEVICE_FEATURE_CLEAR_MASTER",
                      "VFIO_DEVICE_FEATURE_SET_MASTER")
    )  # fmt: skip
    feature_ops = [
        (vfio.VFIO_DEVICE_FEATURE_GET, "VFIO_DEVICE_FEATURE_GET"),
        (vfio.VFIO_DEVICE_FEATURE_SET, "VFIO_DEVICE_FEATURE_SET"),
        (vfio.VFIO_DEVICE_FEATURE_PROBE, "VFIO_DEVICE_FEATURE_PROBE"),
    ]

    def feature_flags(v: Any, _st: Mapping[str, Any]) -> str | None:
        if type(v) is not int:
            return None
        index = v & vfio.VFIO_DEVICE_FEATURE_MASK
        ops = _bits(v & ~vfio.VFIO_DEVICE_FEATURE_MASK, feature_ops, zero="")
        name = features.get(index, str(index))
        return f"{ops}|{name}" if ops else name

    feature_data: dict[int, type[ctypes.Structure]] = {
        vfio.VFIO_DEVICE_FEATURE_DMA_BUF: vfio.vfio_device_feature_dma_buf,
        vfio.VFIO_DEVICE_FEATURE_BUS_MASTER: vfio.vfio_device_feature_bus_master,
        vfio.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: vfio.vfio_device_feature_mig_state,
    }
    udmabuf_flags = bits_of([(udmabuf.UDMABUF_FLAGS_CLOEXEC, "UDMABUF_FLAGS_CLOEXEC")])
    rw_bits = bits_of(
        [(dma_buf.DMA_BUF_SYNC_READ, "DMA_BUF_SYNC_READ"),
         (dma_buf.DMA_BUF_SYNC_WRITE, "DMA_BUF_SYNC_WRITE")]
    )  # fmt: skip

    def tph_ph(v: Any, _st: Mapping[str, Any]) -> str | None:
        return f"{v} ({_PH_WORDS[v]})" if type(v) is int and 0 <= v < 4 else None

    def hdr_method(v: Any, st: Mapping[str, Any]) -> str | None:
        return uverbs_method(v, {"object": st.get("object_id")})

    struct_fields: dict[tuple[str, str], Callable[[Any, Mapping[str, Any]], str | None]] = {
        ("vfio_device_feature", "flags"): feature_flags,
        ("vfio_device_info", "flags"): bits_of(_consts(vfio, "VFIO_DEVICE_FLAGS_")),
        ("vfio_region_info", "index"): regions,
        ("vfio_region_info", "flags"): bits_of(_consts(vfio, "VFIO_REGION_INFO_FLAG_")),
        ("iommu_ioas_map", "flags"): ioas_map_flags,
        ("iommu_ioas_map_file", "flags"): ioas_map_flags,
        ("vfio_device_feature_dma_buf", "region_index"): regions,
        ("vfio_device_feature_dma_buf", "open_flags"): open_flags,
        ("vfio_device_feature_dma_buf_tph", "flags"): bits_of(
            _consts(vfio_tph, "VFIO_DMA_BUF_TPH_")
        ),
        ("vfio_device_feature_dma_buf_tph", "ph"): tph_ph,
        ("vfio_device_feature_dma_buf_tph_v2", "ph"): tph_ph,
        ("udmabuf_create", "flags"): udmabuf_flags,
        ("udmabuf_create_list", "flags"): udmabuf_flags,
        ("dma_buf_sync", "flags"): dma_buf_sync,
        ("dma_buf_export_sync_file", "flags"): rw_bits,
        ("dma_buf_import_sync_file", "flags"): rw_bits,
        ("ib_uverbs_ioctl_hdr", "object_id"): uverbs_object,
        ("ib_uverbs_ioctl_hdr", "method_id"): hdr_method,
        ("ib_uverbs_ioctl_hdr", "driver_id"): enum_of(
            _enum(_consts(ib_user_ioctl_verbs, "RDMA_DRIVER_"))
        ),
    }
    return _Names(
        MappingProxyType(_ioctl_table()),
        MappingProxyType(arg_structs),
        MappingProxyType(feature_data),
        MappingProxyType(
            {
                (vfio_tph.VFIO_DEVICE_FEATURE_DMA_BUF_TPH, ctypes.sizeof(st)): st
                for st in (
                    vfio_tph.vfio_device_feature_dma_buf_tph,
                    vfio_tph.vfio_device_feature_dma_buf_tph_v2,
                )
            }
        ),
        MappingProxyType(struct_fields),
        MappingProxyType(decoders),
        MappingProxyType(_uverbs_attr_names(cmds)),
        MappingProxyType(_uverbs_outputs()),
        MappingProxyType(
            {
                name: access
                for name in vars(cmds)
                if name.startswith("UVERBS_ATTR_") and name.endswith("_ACCESS_FLAGS")
            }
        ),
    )


def arg_struct_text(cmd: Any, data: Any, addresses: bool = True) -> str | None:
    """``{memfd=3, flags=UDMABUF_FLAGS_CLOEXEC, offset=0, size=16384}``: an ioctl's
    recorded argument (``arg_data``, hex) read as its ``mockkernel.uapi`` struct, each
    field by name, flags decoded; padding (``pad``, ``__pad``, ``reserved*``) left out
    while zero.  A ``VFIO_DEVICE_FEATURE`` header is followed by ``data``: the feature's
    own struct where it has one fixed struct, else its size.  A flexible array after a
    struct is shown as a list where the trace recorded it: the ``dma_ranges[]`` of a
    ``VFIO_DEVICE_FEATURE_DMA_BUF`` request (``nr_ranges`` of them), the ``attrs[]`` of a
    uverbs ioctl (``num_attrs``: each attribute's id named by the method's attribute
    enum, its ``len``, ``UVERBS_ATTR_F_*`` flags and inline value; a pointer's address
    only with ``addresses``).  None when the command's struct is not known or the bytes
    are not its size (at least its size, for a struct that begins with its own
    ``argsz``/``size``/``length``: VFIO's, iommufd's and the uverbs header)."""
    number = _as_int(cmd)
    if number is None or not isinstance(data, str):
        return None
    names = _names()
    struct = names.arg_structs.get(number)
    if struct is None:
        return None
    try:
        raw = bytes.fromhex(data)
    except ValueError:
        return None
    size = ctypes.sizeof(struct)
    first = struct._fields_[0][0]
    sized = first in ("argsz", "size")  # begins with its own size
    if (
        len(raw) != size
        and not (sized and len(raw) >= 4)
        and not (first == "length" and len(raw) > size)
    ):
        return None
    # (an older, shorter argsz -- a program built against older headers -- has the
    # fields that fit in it: the kernel reads its ``minsz`` and no more)
    text = _struct_text(struct, raw[:size], names)
    if struct.__name__ == "ib_uverbs_ioctl_hdr" and len(raw) >= size:
        hdr = struct.from_buffer_copy(raw[:size])
        attrs = _uverbs_attrs_text(hdr, raw[size:], names, addresses)
        if attrs is not None:
            text = f"{text[:-1]}, attrs={attrs}}}"
    if struct.__name__ == "vfio_device_feature" and len(raw) >= size:
        rest = raw[size:]
        feature = struct.from_buffer_copy(raw[:size]).flags & 0xFFFF
        payload = names.feature_data.get(feature)
        if payload is None:  # a feature whose struct is the uAPI profile's: by its size
            payload = names.tph_feature_data.get((feature, len(rest)))
        if payload is not None and len(rest) >= ctypes.sizeof(payload):
            n = ctypes.sizeof(payload)
            inner = _struct_text(payload, rest[:n], names)
            tail = _flex_text(payload, rest[:n], rest[n:], names)
            if tail is not None:
                inner = f"{inner[:-1]}, {tail}}}"
            text = f"{text[:-1]}, data={inner}}}"
        elif rest:
            text = f"{text[:-1]}, data=<{len(rest)} bytes>}}"
    return text


#: (struct, its flexible array) -> the field that counts the array's elements
_FLEX_COUNTS = MappingProxyType({("vfio_device_feature_dma_buf", "dma_ranges"): "nr_ranges"})


def _flex_text(
    struct: type[ctypes.Structure], head: bytes, tail: bytes, names: _Names
) -> str | None:
    """``dma_ranges=[{offset=0, length=4096}, ...]``: ``struct``'s flexible array, read
    from the bytes after it (as many elements as its count field says and the bytes
    hold; ``...`` when the trace holds fewer).  None: no such array, or no count."""
    field, elem = struct._fields_[-1][0], struct._fields_[-1][1]
    count_field = _FLEX_COUNTS.get((struct.__name__, field))
    if count_field is None or not isinstance(elem, type) or not issubclass(elem, ctypes.Array):
        return None
    item = elem._type_
    if not (isinstance(item, type) and issubclass(item, ctypes.Structure)):
        return None
    count = getattr(struct.from_buffer_copy(head), count_field)
    step = ctypes.sizeof(item)
    got = min(count, len(tail) // step)
    parts = [_struct_text(item, tail[i * step : (i + 1) * step], names) for i in range(got)]
    if got < count:
        parts.append("...")
    return f"{field}=[{', '.join(parts)}]"


def _uverbs_attrs_text(
    hdr: ctypes.Structure, tail: bytes, names: _Names, addresses: bool
) -> str | None:
    """``[{attr_id=UVERBS_ATTR_REG_DMABUF_MR_HANDLE, len=0, flags=..., data=1}, ...]``:
    the ``ib_uverbs_attr`` entries after a uverbs ioctl header."""
    from ..uapi.rdma import ib_user_ioctl_cmds as cmds
    from ..uapi.rdma.rdma_user_ioctl_cmds import (
        UVERBS_ATTR_F_MANDATORY,
        UVERBS_ATTR_F_VALID_OUTPUT,
        ib_uverbs_attr,
    )

    count = hdr.num_attrs
    if not count:
        return None
    ids = names.uverbs_attrs.get((hdr.object_id, hdr.method_id), {})
    outputs = names.uverbs_outputs.get((hdr.object_id, hdr.method_id), frozenset())
    flag_names = [
        (UVERBS_ATTR_F_MANDATORY, "UVERBS_ATTR_F_MANDATORY"),
        (UVERBS_ATTR_F_VALID_OUTPUT, "UVERBS_ATTR_F_VALID_OUTPUT"),
    ]
    step = ctypes.sizeof(ib_uverbs_attr)
    got = min(count, len(tail) // step)
    parts = []
    for i in range(got):
        a = ib_uverbs_attr.from_buffer_copy(tail[i * step : (i + 1) * step])
        name = ids.get(a.attr_id)
        if name is None and a.attr_id & cmds.UVERBS_ID_NS_MASK:
            ns = a.attr_id - cmds.UVERBS_ID_DRIVER_NS
            name = "UVERBS_ID_DRIVER_NS" + (f"+{ns}" if ns else "")
        fields = [f"attr_id={name or a.attr_id}", f"len={a.len}"]
        fields.append(f"flags={_bits(a.flags, flag_names)}")
        if a.attr_data.enum_data.elem_id:
            fields.append(f"elem_id={a.attr_data.enum_data.elem_id}")
        if a.len > 8 or a.attr_id in outputs:  # a pointer: the value, or where it goes
            if addresses:
                fields.append(f"data={a.data:#x}")
        else:  # the value inline, a handle or an fd
            decode = names.uverbs_values.get(name or "")
            text = decode(a.data, {}) if decode is not None else None
            fields.append(f"data={text or (a.data_s64 if a.data_s64 < 0 else a.data)}")
        parts.append("{" + ", ".join(fields) + "}")
    if got < count:
        parts.append("...")
    return "[" + ", ".join(parts) + "]"


def _struct_text(struct: type[ctypes.Structure], raw: bytes, names: _Names) -> str:
    """``{field=value, ...}`` of ``raw`` read as ``struct``: the fields that fit in it
    (all of them when ``raw`` is the struct's size)."""
    n = len(raw)
    st = struct.from_buffer_copy(raw.ljust(ctypes.sizeof(struct), b"\0"))
    values = {name: getattr(st, name) for name, *_ in struct._fields_}
    parts: list[str] = []
    for name, ctype, *_ in struct._fields_:
        if ctypes.sizeof(ctype) == 0:
            continue  # a flexible array: what follows the header is not shown
        if getattr(struct, name).offset + ctypes.sizeof(ctype) > n:
            break  # past the end of what the program passed
        v = values[name]
        if (name.lstrip("_").startswith(("pad", "reserved"))) and not v:
            continue
        decode = names.struct_fields.get((struct.__name__, name))
        text = decode(v, values) if decode is not None else None
        if text is None:
            if isinstance(v, bytes):  # a char array: the string in it
                text = json.dumps(v.split(b"\0", 1)[0].decode(errors="replace"))
            elif isinstance(v, int):
                text = str(v)
            else:  # a nested struct or an array
                text = "{...}"
        parts.append(f"{name}={text}")
    return "{" + ", ".join(parts) + "}"


def _uverbs_methods(cmds: ModuleType) -> dict[int, tuple[str, ...]]:
    """``UVERBS_OBJECT_*`` -> the ``UVERBS_METHOD_*`` names of its method enum (C has one
    enum per object, all numbered from 0; rdma/ib_user_ioctl_cmds.h names them so)."""
    return {
        cmds.UVERBS_OBJECT_DEVICE: (
            "UVERBS_METHOD_INVOKE_WRITE", "UVERBS_METHOD_INFO_HANDLES",
            "UVERBS_METHOD_QUERY_PORT", "UVERBS_METHOD_GET_CONTEXT",
            "UVERBS_METHOD_QUERY_CONTEXT", "UVERBS_METHOD_QUERY_GID_TABLE",
            "UVERBS_METHOD_QUERY_GID_ENTRY", "UVERBS_METHOD_QUERY_PORT_SPEED",
        ),
        cmds.UVERBS_OBJECT_PD: ("UVERBS_METHOD_PD_DESTROY",),
        cmds.UVERBS_OBJECT_MR: (
            "UVERBS_METHOD_DM_MR_REG", "UVERBS_METHOD_MR_DESTROY", "UVERBS_METHOD_ADVISE_MR",
            "UVERBS_METHOD_QUERY_MR", "UVERBS_METHOD_REG_DMABUF_MR", "UVERBS_METHOD_REG_MR",
        ),
        cmds.UVERBS_OBJECT_CQ: ("UVERBS_METHOD_CQ_CREATE", "UVERBS_METHOD_CQ_DESTROY"),
        cmds.UVERBS_OBJECT_QP: ("UVERBS_METHOD_QP_CREATE", "UVERBS_METHOD_QP_DESTROY"),
        cmds.UVERBS_OBJECT_ASYNC_EVENT: ("UVERBS_METHOD_ASYNC_EVENT_ALLOC",),
        cmds.UVERBS_OBJECT_DMAH: ("UVERBS_METHOD_DMAH_ALLOC", "UVERBS_METHOD_DMAH_FREE"),
        cmds.UVERBS_OBJECT_DMABUF: ("UVERBS_METHOD_DMABUF_ALLOC",),
    }  # fmt: skip


#: ``UVERBS_METHOD_*`` -> the enum of its attribute ids in rdma/ib_user_ioctl_cmds.h
#: (the kernel's ``DECLARE_UVERBS_NAMED_METHOD`` pairs them; no header says which)
_METHOD_ATTR_ENUMS = MappingProxyType({
    ("UVERBS_OBJECT_DEVICE", "UVERBS_METHOD_INVOKE_WRITE"):
        "uverbs_attrs_invoke_write_cmd_attr_ids",
    ("UVERBS_OBJECT_DEVICE", "UVERBS_METHOD_INFO_HANDLES"): "uverbs_attrs_info_handles_id",
    ("UVERBS_OBJECT_DEVICE", "UVERBS_METHOD_QUERY_PORT"): "uverbs_attrs_query_port_cmd_attr_ids",
    ("UVERBS_OBJECT_DEVICE", "UVERBS_METHOD_GET_CONTEXT"): "uverbs_attrs_get_context_attr_ids",
    ("UVERBS_OBJECT_DEVICE", "UVERBS_METHOD_QUERY_CONTEXT"): "uverbs_attrs_query_context_attr_ids",
    ("UVERBS_OBJECT_DEVICE", "UVERBS_METHOD_QUERY_GID_TABLE"):
        "uverbs_attrs_query_gid_table_cmd_attr_ids",
    ("UVERBS_OBJECT_DEVICE", "UVERBS_METHOD_QUERY_GID_ENTRY"):
        "uverbs_attrs_query_gid_entry_cmd_attr_ids",
    ("UVERBS_OBJECT_DEVICE", "UVERBS_METHOD_QUERY_PORT_SPEED"):
        "uverbs_attrs_query_port_speed_cmd_attr_ids",
    ("UVERBS_OBJECT_PD", "UVERBS_METHOD_PD_DESTROY"): "uverbs_attrs_pd_destroy_ids",
    ("UVERBS_OBJECT_MR", "UVERBS_METHOD_DM_MR_REG"): "uverbs_attrs_reg_dm_mr_cmd_attr_ids",
    ("UVERBS_OBJECT_MR", "UVERBS_METHOD_MR_DESTROY"): "uverbs_attrs_mr_destroy_ids",
    ("UVERBS_OBJECT_MR", "UVERBS_METHOD_ADVISE_MR"): "uverbs_attrs_advise_mr_cmd_attr_ids",
    ("UVERBS_OBJECT_MR", "UVERBS_METHOD_QUERY_MR"): "uverbs_attrs_query_mr_cmd_attr_ids",
    ("UVERBS_OBJECT_MR", "UVERBS_METHOD_REG_DMABUF_MR"): "uverbs_attrs_reg_dmabuf_mr_cmd_attr_ids",
    ("UVERBS_OBJECT_MR", "UVERBS_METHOD_REG_MR"): "uverbs_attrs_reg_mr_cmd_attr_ids",
    ("UVERBS_OBJECT_CQ", "UVERBS_METHOD_CQ_CREATE"): "uverbs_attrs_create_cq_cmd_attr_ids",
    ("UVERBS_OBJECT_CQ", "UVERBS_METHOD_CQ_DESTROY"): "uverbs_attrs_destroy_cq_cmd_attr_ids",
    ("UVERBS_OBJECT_QP", "UVERBS_METHOD_QP_CREATE"): "uverbs_attrs_create_qp_cmd_attr_ids",
    ("UVERBS_OBJECT_QP", "UVERBS_METHOD_QP_DESTROY"): "uverbs_attrs_destroy_qp_cmd_attr_ids",
    ("UVERBS_OBJECT_ASYNC_EVENT", "UVERBS_METHOD_ASYNC_EVENT_ALLOC"):
        "uverbs_attrs_async_event_create",
    ("UVERBS_OBJECT_DMAH", "UVERBS_METHOD_DMAH_ALLOC"): "uverbs_attrs_alloc_dmah_cmd_attr_ids",
    ("UVERBS_OBJECT_DMAH", "UVERBS_METHOD_DMAH_FREE"): "uverbs_attrs_free_dmah_cmd_attr_ids",
    ("UVERBS_OBJECT_DMABUF", "UVERBS_METHOD_DMABUF_ALLOC"):
        "uverbs_attrs_alloc_dmabuf_cmd_attr_ids",
})  # fmt: skip


def _uverbs_attr_names(cmds: ModuleType) -> dict[tuple[int, int], dict[int, str]]:
    """(object id, method id) -> attribute id -> name: each method's attribute enum, as
    the uapi module groups its constants (its ``# enum <name>`` lines, the header's
    enums), and the core's ``UVERBS_ATTR_UHW_IN``/``_OUT`` every method may carry."""
    import inspect

    enums: dict[str, dict[int, str]] = {}
    current: dict[int, str] | None = None
    try:
        source = inspect.getsource(cmds)
    except (OSError, TypeError):  # no source shipped: the ids stay numbers
        source = ""
    for line in source.splitlines():
        if line.startswith("# enum "):
            current = enums.setdefault(line.split()[2], {})
        elif current is not None and line.startswith("UVERBS_ATTR_") and " = " in line:
            name = line.split(" = ", 1)[0]
            value = getattr(cmds, name, None)
            if type(value) is int:
                current.setdefault(value, name)
    uhw = {cmds.UVERBS_ATTR_UHW_IN: "UVERBS_ATTR_UHW_IN", cmds.UVERBS_ATTR_UHW_OUT:
           "UVERBS_ATTR_UHW_OUT"}  # fmt: skip
    out: dict[tuple[int, int], dict[int, str]] = {}
    for (obj, method), enum in _METHOD_ATTR_ENUMS.items():
        out[(getattr(cmds, obj), getattr(cmds, method))] = {**enums.get(enum, {}), **uhw}
    return out


def _uverbs_outputs() -> dict[tuple[int, int], frozenset[int]]:
    """(object id, method id) -> the ids of its output attributes (``PTR_OUT``: ``data``
    is where the kernel writes, whatever ``len``), from the core's ``OBJECTS``."""
    from ..rdma import uverbs

    return {
        (obj.id, method.id): frozenset(
            a.id for a in method.attrs.values() if a.kind == uverbs.PTR_OUT
        )
        for obj in uverbs.OBJECTS
        for method in obj.methods
    }


def ioctl_name(cmd: Any, kind: str | None = None) -> str:
    """The name of ioctl number ``cmd`` (an int or ``"0x..."``) on a file of ``kind``
    (numbers shared by several families are told apart by the file's kind)."""
    number = _as_int(cmd)
    if number is None:
        return str(cmd)
    names = _names().ioctls.get(number, ())
    if kind == "[vfio-device]":
        names = tuple(n for n in names if n.startswith("VFIO_DEVICE_")) or names
    elif kind in ("vfio", "vfio-group"):
        names = tuple(n for n in names if not n.startswith("VFIO_DEVICE_")) or names
    names = tuple(n for n in names if "SPAPR" not in n and "EEH" not in n) or names
    if "DMA_BUF_SET_NAME" in names:
        names = ("DMA_BUF_SET_NAME",)
    return "|".join(names) if names else hex(number)


def field_text(v: Any) -> str:
    """A field's value as the timeline shows it: text bare unless it has spaces."""
    if isinstance(v, str):
        return json.dumps(v) if (not v or " " in v or '"' in v) else v
    return json.dumps(v, default=str)


def fields(ev: Mapping[str, Any], skip: Iterable[str] = ()) -> list[tuple[str, str]]:
    """``(key, text)`` of an event's own fields, each decoded where a decoder is known."""
    name = str(ev.get("event", ""))
    decoders = _names().decoders
    drop = META | set(skip)
    out: list[tuple[str, str]] = []
    for k, v in ev.items():
        if k in drop:
            continue
        decode = decoders.get((name, k))
        text = decode(v, ev) if decode is not None else None
        out.append((k, field_text(v) if text is None else text))
    return out


def syscall_text(
    ev: Mapping[str, Any], kinds: Mapping[Any, str] | None = None, addresses: bool = True
) -> str:
    """``ioctl(fd=4, cmd=VFIO_DEVICE_FEATURE, arg=0x...) = 0`` for a ``sys.*`` event
    (``addresses=False`` leaves out an ioctl's user address).  An ioctl whose argument
    the trace recorded (``arg_data``) shows it as its struct instead:
    ``arg={flags=DMA_BUF_SYNC_START|DMA_BUF_SYNC_READ}``."""
    name = str(ev["event"]).removeprefix("sys.")
    flags = ev.get("flags")
    args = []
    struct = (
        arg_struct_text(ev.get("cmd"), ev.get("arg_data"), addresses) if name == "ioctl" else None
    )
    for k, text in fields(ev, skip=("ret", "errno", "file", "arg_data")):
        v = ev[k]
        if k == "cmd" and name == "ioctl":
            text = ioctl_name(v, (kinds or {}).get(ev.get("file")))
        elif k == "arg" and struct is not None:
            text = struct  # the argument as the driver read it
        elif k == "arg" and name == "ioctl" and isinstance(v, int) and v > 0xFFFF:
            if not addresses:
                continue
            text = f"{v:#x}"  # a user address
        elif k == "mode" and name in ("open", "openat"):
            if not (isinstance(flags, int) and flags & os.O_CREAT):  # only with O_CREAT
                continue
            text = f"{v:#o}" if isinstance(v, int) else text
        args.append(f"{k}={text}")
    return f"{name}({', '.join(args)}) = {result_text(ev)}"


def result_text(ev: Mapping[str, Any]) -> str:
    """What a ``sys.*`` event returned: ``-1 ENOENT``, ``0``, ``5``, a decoded value."""
    if "errno" in ev:
        return f"-1 {ev['errno']}"
    ret = ev.get("ret")
    if ret is None:
        return "0"
    decode = _names().decoders.get((str(ev.get("event")), "ret"))
    text = decode(ret, ev) if decode is not None else None
    return field_text(ret) if text is None else text
