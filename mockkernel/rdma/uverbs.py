"""``/dev/infiniband/uverbsN``: ``RDMA_VERBS_IOCTL`` and the legacy ``write()`` commands.

Mostly argument checking, in the kernel's order (``rdma_core.c``, ``uverbs_ioctl.c``,
``uverbs_main.c``, ``uverbs_cmd.c``, ``uverbs_std_types*.c``), as real Linux 7.2 showed
it on soft-RoCE (``tests/real_linux/golden/uverbs_*.jsonl``).

DOC: one ``RDMA_VERBS_IOCTL``

1. The 24-byte ``ib_uverbs_ioctl_hdr`` is copied (``EFAULT``); ``length`` must be
   ``24 + 16 * num_attrs`` and at most a page (``EINVAL``); ``reserved1``/``reserved2``
   must be 0 (``EPROTONOSUPPORT``).
2. ``driver_id`` must be the device's (``EINVAL``); the object and method must exist in
   the device's uAPI (``EPROTONOSUPPORT``) -- which depends on its ops table.
3. The attribute array is copied (``EFAULT``) and each attribute processed in array
   order, the first error winning: an unknown id is ignored unless it is
   ``UVERBS_ATTR_F_MANDATORY`` (``EPROTONOSUPPORT``); a known id twice is ``EINVAL``;
   then the rules of its type (lengths, ``attr_data.reserved``, handles: ``NEW``
   handles are allocated here and written back into ``data``).
4. A mandatory attribute missing is ``EINVAL``.  A destroy method destroys its object
   (``EBUSY`` while in use) before the handler runs; then the handler.
5. On success the new objects are committed; on failure they are destroyed and their
   handles freed.  Outputs are marked ``UVERBS_ATTR_F_VALID_OUTPUT`` in the user's
   array as they are written.

The legacy ``write()`` path (``ib_uverbs_write``) shares the handlers of the commands
it has; ``UVERBS_METHOD_INVOKE_WRITE`` runs those through the ioctl.
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from errno import (
    EACCES,
    EBADF,
    EINVAL,
    EIO,
    ENODATA,
    ENODEV,
    ENOENT,
    ENOMEM,
    ENOSPC,
    EOPNOTSUPP,
    EPERM,
    EPROTONOSUPPORT,
    errorcode,
)
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import kerr
from ..fault_inject import should_fail
from ..fs import FMODE_LSEEK, FMODE_PREAD, FMODE_PWRITE, File, FileOperations
from ..mm import PAGE_SIZE
from ..trace import TracePoint
from ..uaccess import LOCAL, copy_from_user, copy_to_user, current_mm
from ..uapi.rdma import ib_user_ioctl_cmds as C
from ..uapi.rdma import ib_user_verbs as V
from ..uapi.rdma.ib_user_ioctl_verbs import (
    IB_UVERBS_ACCESS_FLUSH_GLOBAL,
    IB_UVERBS_ACCESS_FLUSH_PERSISTENT,
    IB_UVERBS_ACCESS_LOCAL_WRITE,
    IB_UVERBS_ACCESS_ON_DEMAND,
    IB_UVERBS_ACCESS_OPTIONAL_RANGE,
    IB_UVERBS_ACCESS_RELAXED_ORDERING,
    IB_UVERBS_ACCESS_REMOTE_ATOMIC,
    IB_UVERBS_ACCESS_REMOTE_READ,
    IB_UVERBS_ACCESS_REMOTE_WRITE,
    IB_UVERBS_ADVISE_MR_FLAG_FLUSH,
    IB_UVERBS_CORE_SUPPORT_OPTIONAL_MR_ACCESS,
    IB_UVERBS_QPF_GRH_REQUIRED,
    ib_uverbs_gid_entry,
    ib_uverbs_query_port_resp_ex,
)
from ..uapi.rdma.rdma_user_ioctl_cmds import (
    RDMA_VERBS_IOCTL,
    UVERBS_ATTR_F_MANDATORY,
    UVERBS_ATTR_F_VALID_OUTPUT,
)
from . import qp as _qp
from .ah import AH_TYPE, w_create_ah, w_destroy_ah
from .events import EventFile, new_event_file
from .objects import (
    ASYNC_EVENT_TYPE,
    COMP_CHANNEL_TYPE,
    DMAH_TYPE,
    IB_DMAH_CPU_ID_EXISTS,
    IB_DMAH_MEM_TYPE_EXISTS,
    IB_DMAH_PH_EXISTS,
    MR_TYPE,
    PD_TYPE,
    RDMA_REMOVE_ABORT,
    RDMA_REMOVE_DESTROY,
    IbDmah,
    IbMr,
    IbPd,
    IbUcontext,
    Uobject,
    UobjType,
    UverbsFile,
)
from .srq import SRQ_TYPE, w_create_srq, w_destroy_srq, w_modify_srq, w_query_srq

if TYPE_CHECKING:
    from ..process import Process
    from .device import IbDevice, RdmaContext

__all__ = [
    "ACCESS_DESTROY",
    "ACCESS_NEW",
    "ACCESS_READ",
    "IB_ACCESS_SUPPORTED",
    "AttrBundle",
    "AttrSpec",
    "MrWriteResult",
    "ObjectDef",
    "Udata",
    "UverbsFops",
    "build_uapi",
    "const_in",
    "flags_in",
    "ib_check_mr_access",
    "ib_dereg_mr_user",
    "idr",
    "ptr_in",
    "ptr_out",
    "uverbs_method",
]

trace_rdma_ioctl = TracePoint("rdma.ioctl", "ibdev", "object", "method", "num_attrs", "ok")
trace_rdma_write = TracePoint("rdma.write", "ibdev", "command", "ok", hex_keys=("command",))
trace_rdma_get_context = TracePoint("rdma.get_context", "ibdev")
trace_rdma_unsafe_write = TracePoint("rdma.unsafe_write", "ibdev", "pid")
trace_rdma_reg_mr = TracePoint(
    "rdma.reg_mr",
    *("ibdev", "handle", "lkey", "rkey", "iova", "length", "access", "kind", "dmah"),
    hex_keys=("iova",),
)
trace_rdma_dereg_mr = TracePoint("rdma.dereg_mr", "ibdev", "handle", "lkey")
trace_rdma_dmah_alloc = TracePoint("rdma.dmah_alloc", "ibdev", "handle", "cpu_id", "mem_type", "ph")

_HDR = struct.Struct("<HHHHQII")
_ATTR = struct.Struct("<HHHHQ")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_HDR_SIZE = 24
_ATTR_SIZE = 16
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1

IB_ACCESS_SUPPORTED = (
    (IB_UVERBS_ACCESS_FLUSH_PERSISTENT << 1) - 1
) | IB_UVERBS_ACCESS_OPTIONAL_RANGE
IB_DEVICE_FLUSH_GLOBAL = 1 << 38
IB_DEVICE_FLUSH_PERSISTENT = 1 << 39
_DMABUF_ACCESS = (
    IB_UVERBS_ACCESS_LOCAL_WRITE
    | IB_UVERBS_ACCESS_REMOTE_READ
    | IB_UVERBS_ACCESS_REMOTE_WRITE
    | IB_UVERBS_ACCESS_REMOTE_ATOMIC
    | IB_UVERBS_ACCESS_RELAXED_ORDERING
)
# ib_mr_rereg_flags
IB_MR_REREG_TRANS = 1
IB_MR_REREG_PD = 2
IB_MR_REREG_ACCESS = 4
IB_MR_REREG_SUPPORTED = 7


def _clear_user(addr: int, n: int) -> None:
    if n > 0:
        copy_to_user(addr, bytes(n))


# -- attribute specs -----------------------------------------------------------------------------
PTR_IN, PTR_OUT, ENUM_IN, IDR, FD, RAW_FD = range(6)
ACCESS_READ, ACCESS_WRITE, ACCESS_NEW, ACCESS_DESTROY = range(4)


@dataclass(frozen=True)
class AttrSpec:
    """``struct uverbs_attr_spec``: one attribute of a method.

    ``min_len``/``max_len`` bound ``len`` for pointer attributes (``zero_trailing``:
    longer is fine, the extra input must be zero / the extra output is zeroed);
    ``alloc_copy`` copies a pointer input at parse time (``UA_ALLOC_AND_COPY``).
    """

    id: int
    kind: int
    mandatory: bool = False
    min_len: int = 0
    max_len: int = 0
    zero_trailing: bool = False
    alloc_copy: bool = False
    obj_type: UobjType | None = None
    access: int = ACCESS_READ
    num_elems: int = 0
    is_udata: bool = False


def ptr_in(aid: int, size: int | tuple[int, int], mandatory: bool = False, **kw: Any) -> AttrSpec:
    lo, hi = (size, size) if isinstance(size, int) else size
    return AttrSpec(aid, PTR_IN, mandatory, lo, hi, **kw)


def ptr_out(aid: int, size: int | tuple[int, int], mandatory: bool = False, **kw: Any) -> AttrSpec:
    lo, hi = (size, size) if isinstance(size, int) else size
    return AttrSpec(aid, PTR_OUT, mandatory, lo, hi, **kw)


def const_in(aid: int, mandatory: bool = False) -> AttrSpec:
    """``UVERBS_ATTR_CONST_IN``: an inline u64 (exactly 8 bytes)."""
    return ptr_in(aid, 8, mandatory)


def flags_in(aid: int, mandatory: bool = False) -> AttrSpec:
    """``UVERBS_ATTR_FLAGS_IN``: 4 or 8 bytes."""
    return ptr_in(aid, (4, 8), mandatory)


def idr(aid: int, utype: UobjType, access: int, mandatory: bool = False) -> AttrSpec:
    return AttrSpec(aid, IDR, mandatory, obj_type=utype, access=access)


def _uhw() -> list[AttrSpec]:
    return [
        ptr_in(C.UVERBS_ATTR_UHW_IN, (0, 0xFFFF), is_udata=True),
        ptr_out(C.UVERBS_ATTR_UHW_OUT, (0, 0xFFFF), is_udata=True),
    ]


Handler = Callable[["AttrBundle"], None]


@dataclass(frozen=True)
class MethodDef:
    """A method of an object (``DECLARE_UVERBS_NAMED_METHOD``); its attribute table is
    read-only (one definition serves every kernel)."""

    id: int
    attrs: Mapping[int, AttrSpec]
    handler: Handler
    has_udata: bool = False
    destroy_attr: int | None = None
    needs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "attrs", MappingProxyType(dict(self.attrs)))


def uverbs_method(
    mid: int,
    handler: Handler,
    *attrs: AttrSpec,
    udata: bool = False,
    needs: tuple[str, ...] = (),
) -> MethodDef:
    specs = list(attrs) + (_uhw() if udata else [])
    destroy = next((a.id for a in specs if a.kind == IDR and a.access == ACCESS_DESTROY), None)
    """``DECLARE_UVERBS_NAMED_METHOD``: method ``mid`` with its attributes (a destroy
    method has an ``idr(..., ACCESS_DESTROY)`` one: the core destroys before ``handler``)."""
    return MethodDef(mid, {a.id: a for a in specs}, handler, udata, destroy, needs)


_method = uverbs_method


@dataclass(frozen=True, eq=False)
class ObjectDef:
    """An object type of the uAPI and its methods (``DECLARE_UVERBS_NAMED_OBJECT``);
    ``needs`` names the ops without which it is absent.  Compared by identity: a
    driver's object definitions are module constants."""

    id: int
    utype: UobjType | None
    methods: tuple[MethodDef, ...]
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class WriteDef:
    """A legacy ``write()`` command (``DECLARE_UVERBS_WRITE``)."""

    handler: Handler
    req_size: int
    resp_size: int = 0
    has_resp: bool = False
    has_udata: bool = False
    is_ex: bool = False
    needs: tuple[str, ...] = ()
    ioctl_disabled: bool = False  # GET_CONTEXT through INVOKE_WRITE: EBADF


@dataclass
class Uapi:
    """A device's uAPI: which objects, methods and write commands it has."""

    objects: dict[int, dict[int, MethodDef]] = field(default_factory=dict)
    types: dict[int, UobjType] = field(default_factory=dict)
    write: dict[int, WriteDef] = field(default_factory=dict)
    write_ex: dict[int, WriteDef] = field(default_factory=dict)


# -- the bundle ----------------------------------------------------------------------------------
class Attr:
    """A parsed attribute (``struct uverbs_attr``)."""

    __slots__ = ("data", "enum_id", "idx", "length", "ptr", "uobj")

    def __init__(self, idx: int, length: int, data: int) -> None:
        self.idx = idx
        self.length = length
        self.data = data
        self.ptr: bytes | None = None
        self.uobj: Uobject | None = None
        self.enum_id = 0


class Udata:
    """``struct ib_udata``: an input (bytes, or a user address) and an output address."""

    __slots__ = ("in_addr", "in_data", "inlen", "out_addr", "outlen")

    def __init__(
        self,
        in_data: bytes | None = None,
        in_addr: int = 0,
        inlen: int = 0,
        out_addr: int = 0,
        outlen: int = 0,
    ) -> None:
        self.in_data = in_data
        self.in_addr = in_addr
        self.inlen = inlen
        self.out_addr = out_addr
        self.outlen = outlen

    def read(self) -> bytes:
        if self.in_data is not None:
            return self.in_data[: self.inlen]
        return copy_from_user(self.in_addr, self.inlen) if self.inlen else b""


class AttrBundle:
    """``struct uverbs_attr_bundle``: what a handler (and a driver op) works with.

    Accessors keep the kernel's names and errnos: :meth:`copy_from`, :meth:`get_const`,
    :meth:`get_flags32`, :meth:`copy_to`, :meth:`get_obj`, :meth:`is_valid`, ...
    """

    def __init__(
        self,
        ufile: UverbsFile,
        attrs_addr: int = 0,
        uattrs: Sequence[tuple[int, int, int, int, int]] = (),
    ) -> None:
        self.ufile = ufile
        self.device = ufile.device
        self.kernel = ufile.kernel
        self.attrs: dict[int, Attr] = {}
        self.attrs_addr = attrs_addr
        self.uattrs = uattrs
        self.context: IbUcontext | None = None
        self.new: list[tuple[Uobject, int]] = []  # NEW uobjects and their attr ids
        self.ucore = Udata()
        self.driver_udata = Udata()
        self.write_uobj: Uobject | None = None  # the write path's one NEW object

    # -- presence and inputs --------------------------------------------------------
    def is_valid(self, aid: int) -> bool:
        return aid in self.attrs

    def attr(self, aid: int) -> Attr:
        a = self.attrs.get(aid)
        if a is None:
            raise kerr(ENOENT)
        return a

    def copy_from(self, aid: int, size: int) -> bytes:
        """``uverbs_copy_from`` of an exact-size attribute: its ``size`` bytes."""
        a = self.attr(aid)
        if size < a.length:
            raise kerr(EINVAL)
        if a.length <= 8:
            return a.data.to_bytes(8, "little")[: a.length].ljust(size, b"\0")
        return copy_from_user(a.data, a.length).ljust(size, b"\0")

    def copy_from_u64(self, aid: int) -> int:
        return int.from_bytes(self.copy_from(aid, 8), "little")

    def copy_from_u32(self, aid: int) -> int:
        return int.from_bytes(self.copy_from(aid, 4), "little")

    def get_const(self, aid: int, maximum: int, default: int | None = None) -> int:
        """``uverbs_get_const``: the inline value; ``EINVAL`` above ``maximum``."""
        a = self.attrs.get(aid)
        if a is None:
            if default is not None:
                return default
            raise kerr(ENOENT)
        if a.data > maximum:
            raise kerr(EINVAL)
        return a.data

    def get_flags64(self, aid: int, allowed: int) -> int:
        """``uverbs_get_flags64``: 0 when absent; 4 or 8 bytes; ``EINVAL`` for other bits."""
        a = self.attrs.get(aid)
        if a is None:
            return 0
        if a.length == 8:
            flags = a.data
        elif a.length == 4:
            flags = a.data & 0xFFFFFFFF
        else:
            raise kerr(EINVAL)
        if flags & ~allowed:
            raise kerr(EINVAL)
        return flags

    def get_flags32(self, aid: int, allowed: int) -> int:
        flags = self.get_flags64(aid, allowed)
        if flags > 0xFFFFFFFF:
            raise kerr(EINVAL)
        return flags

    def get_raw_fd(self, aid: int) -> int:
        d = self.attr(aid).data
        return d - (1 << 64) if d >> 63 else d

    def enum_id(self, aid: int) -> int:
        return self.attr(aid).enum_id

    def get_uobject(self, aid: int) -> Uobject:
        uobj = self.attr(aid).uobj
        assert uobj is not None
        return uobj

    def get_obj(self, aid: int) -> Any:
        return self.get_uobject(aid).object

    def array_size(self, aid: int, elem: int) -> int:
        """``uverbs_attr_ptr_get_array_size``: ``EINVAL`` unless a whole number of elements."""
        a = self.attrs.get(aid)
        if a is None:
            return 0
        if a.length % elem:
            raise kerr(EINVAL)
        return a.length // elem

    # -- outputs --------------------------------------------------------------------
    def set_output(self, aid: int) -> None:
        """``uverbs_set_output``: mark the user's copy of the attribute ``VALID_OUTPUT``."""
        a = self.attrs[aid]
        flags = self.uattrs[a.idx][2] | UVERBS_ATTR_F_VALID_OUTPUT
        copy_to_user(self.attrs_addr + _ATTR_SIZE * a.idx + 4, _U16.pack(flags))

    def copy_to(self, aid: int, data: bytes) -> bool:
        """``uverbs_copy_to``: ``min(len, size)`` bytes to the output; ``False`` when the
        attribute is absent (``-ENOENT``, which callers usually ignore)."""
        a = self.attrs.get(aid)
        if a is None:
            return False
        n = min(a.length, len(data))
        copy_to_user(a.data, data[:n])
        self.set_output(aid)
        return True

    def copy_to_struct_or_zero(self, aid: int, data: bytes) -> None:
        a = self.attr(aid)
        if len(data) < a.length:
            _clear_user(a.data + len(data), a.length - len(data))
        self.copy_to(aid, data)

    def finalize_uobj_create(self, aid: int) -> None:
        """``uverbs_finalize_uobj_create``: the hardware object exists (abort destroys it)."""
        self.get_uobject(aid).hw_valid = True

    # -- context --------------------------------------------------------------------
    def get_ucontext(self) -> IbUcontext:
        """``ib_uverbs_get_ucontext``: ``EINVAL`` before ``GET_CONTEXT``."""
        uctx = self.ufile.ucontext
        if uctx is None:
            raise kerr(EINVAL)
        return uctx

    # -- the write path's helpers ---------------------------------------------------
    def request(self, req_len: int) -> bytes:
        """``uverbs_request``: the command; missing bytes are 0, extra ones must be 0."""
        data = self.ucore.read()
        if len(data) < req_len:
            return data + bytes(req_len - len(data))
        if any(data[req_len:]):
            raise kerr(EOPNOTSUPP)
        return data[:req_len]

    def response(self, resp: bytes) -> None:
        """``uverbs_response``: to ``CORE_OUT`` or the command's response buffer; the
        rest of a bigger buffer is zeroed."""
        if C.UVERBS_ATTR_CORE_OUT in self.attrs:
            self.copy_to_struct_or_zero(C.UVERBS_ATTR_CORE_OUT, resp)
            return
        uc = self.ucore
        n = min(uc.outlen, len(resp))
        if n:
            copy_to_user(uc.out_addr, resp[:n])
        if len(resp) < uc.outlen:
            _clear_user(uc.out_addr + len(resp), uc.outlen - len(resp))

    def uobj_alloc(self, utype: UobjType) -> Uobject:
        """``uobj_alloc`` for the write path (and ``NEW`` attributes): needs a context."""
        uapi: Uapi = self.device.uapi
        if utype.obj_id not in uapi.types:
            raise kerr(EINVAL)
        if self.context is None:
            self.context = self.get_ucontext()
        return _alloc_uobject(self, utype)

    def lookup(self, utype: UobjType, handle: int, access: int) -> Uobject:
        """``uobj_get_*``: the committed object ``handle`` of type ``utype``.

        ``EINVAL`` if the device has no such type or ``handle`` is negative; ``ENOENT`` if
        there is no such handle; ``EINVAL`` if it is another type.
        """
        uapi: Uapi = self.device.uapi
        if utype.obj_id not in uapi.types:
            raise kerr(EINVAL)
        if handle < 0:
            raise kerr(EINVAL)
        uobj = self.ufile.objects.get(handle)
        if uobj is None:
            raise kerr(ENOENT)
        if uobj.type is not utype:
            raise kerr(EINVAL)
        self.context = self.ufile.ucontext
        return uobj


def _alloc_uobject(bundle: AttrBundle, utype: UobjType) -> Uobject:
    ufile = bundle.ufile
    if should_fail(ufile.kernel, "uverbs_obj"):
        raise kerr(ENOMEM)  # alloc_uobj's kzalloc
    if utype.is_fd:
        proc: Process = ufile.kernel.current
        fd = proc.get_unused_fd(cloexec=True, label="[infinibandevent]")
        uobj = Uobject(ufile, utype, fd)
    else:
        uobj = Uobject(ufile, utype, ufile.alloc_id())
    return uobj


def _commit(bundle: AttrBundle, uobj: Uobject) -> None:
    ufile = bundle.ufile
    if uobj.type.is_fd:
        proc: Process = ufile.kernel.current
        assert uobj.file is not None
        proc.fd_install(uobj.id, uobj.file)
    ufile.commit(uobj)


def _abort(bundle: AttrBundle, uobj: Uobject) -> None:
    ufile = bundle.ufile
    if uobj.type.is_fd:
        proc: Process = ufile.kernel.current
        proc.fdt.put_unused(uobj.id)
        if uobj.file is not None:
            uobj.file.put()
        return
    try:
        if uobj.hw_valid:
            uobj.type.destroy(uobj, RDMA_REMOVE_ABORT)
            uobj.hw_valid = False
    finally:
        ufile.free_id(uobj.id)


# -- MR helpers ------------------------------------------------------------------------------------
def ib_check_mr_access(dev: IbDevice, flags: int) -> None:
    """``ib_check_mr_access``: remote write/atomic need local write; known bits only;
    ``ON_DEMAND`` and ``FLUSH_*`` need the device capability (``EOPNOTSUPP``)."""
    if flags & (IB_UVERBS_ACCESS_REMOTE_ATOMIC | IB_UVERBS_ACCESS_REMOTE_WRITE) and not (
        flags & IB_UVERBS_ACCESS_LOCAL_WRITE
    ):
        raise kerr(EINVAL)
    if flags & ~IB_ACCESS_SUPPORTED:
        raise kerr(EINVAL)
    if flags & IB_UVERBS_ACCESS_ON_DEMAND and not dev.attrs.on_demand_paging:
        raise kerr(EOPNOTSUPP)
    cap = dev.attrs.device_cap_flags
    if (flags & IB_UVERBS_ACCESS_FLUSH_GLOBAL and not cap & IB_DEVICE_FLUSH_GLOBAL) or (
        flags & IB_UVERBS_ACCESS_FLUSH_PERSISTENT and not cap & IB_DEVICE_FLUSH_PERSISTENT
    ):
        raise kerr(EOPNOTSUPP)


def _mr_created(
    bundle: AttrBundle,
    uobj: Uobject,
    mr: IbMr,
    pd: IbPd,
    iova: int,
    length: int,
    access: int,
    dmah: IbDmah | None,
) -> None:
    dev = bundle.device
    mr.device = dev
    mr.pd = pd
    mr.iova = iova
    mr.length = length
    mr.access = access
    mr.dmah = dmah
    mr.handle = uobj.id
    pd.usecnt += 1
    if dmah is not None:
        dmah.usecnt += 1
    uobj.object = mr
    uobj.hw_valid = True
    dev.mrs[mr.rkey] = mr
    if mr.lkey != mr.rkey:
        dev.mrs.setdefault(mr.lkey, mr)
    tracer = dev.kernel.tracer
    if tracer.enabled:  # (the kind is work: none while off)
        trace_rdma_reg_mr(
            tracer,
            dev.name,
            uobj.id,
            mr.lkey,
            mr.rkey,
            iova,
            length,
            access,
            type(mr.umem).__name__ if mr.umem is not None else "odp",
            dmah.handle if dmah is not None else None,
        )


def ib_dereg_mr_user(mr: IbMr) -> None:
    """``ib_dereg_mr_user``: the driver's ``dereg_mr``, then the core's bookkeeping."""
    if mr.destroyed:
        return
    dev = mr.device
    assert dev.ops.dereg_mr is not None
    dev.ops.dereg_mr(mr)
    mr.destroyed = True
    if dev.mrs.get(mr.rkey) is mr:
        del dev.mrs[mr.rkey]
    if dev.mrs.get(mr.lkey) is mr:
        del dev.mrs[mr.lkey]
    mr.pd.usecnt -= 1
    if mr.dmah is not None:
        mr.dmah.usecnt -= 1
    trace_rdma_dereg_mr(dev.kernel.tracer, dev.name, mr.handle, mr.lkey)


# -- handlers: device -----------------------------------------------------------------------------
def _copy_query_dev(dev: IbDevice) -> V.ib_uverbs_query_device_resp:
    a = dev.attrs
    r = V.ib_uverbs_query_device_resp()
    r.fw_ver = a.fw_ver
    r.node_guid = int.from_bytes(dev.node_guid.to_bytes(8, "big"), "little")
    sys_guid = dev.node_guid if a.sys_image_guid is None else a.sys_image_guid
    r.sys_image_guid = int.from_bytes(sys_guid.to_bytes(8, "big"), "little")
    for name in (
        "max_mr_size",
        "page_size_cap",
        "vendor_id",
        "vendor_part_id",
        "hw_ver",
        "max_qp",
        "max_qp_wr",
        "max_sge_rd",
        "max_cq",
        "max_cqe",
        "max_mr",
        "max_pd",
        "max_qp_rd_atom",
        "max_ee_rd_atom",
        "max_res_rd_atom",
        "max_qp_init_rd_atom",
        "max_ee_init_rd_atom",
        "atomic_cap",
        "max_ee",
        "max_rdd",
        "max_mw",
        "max_raw_ipv6_qp",
        "max_raw_ethy_qp",
        "max_mcast_grp",
        "max_mcast_qp_attach",
        "max_total_mcast_qp_attach",
        "max_ah",
        "max_srq",
        "max_srq_wr",
        "max_srq_sge",
        "max_pkeys",
        "local_ca_ack_delay",
    ):
        setattr(r, name, getattr(a, name))
    r.device_cap_flags = a.device_cap_flags & 0xFFFFFFFF
    r.max_sge = min(a.max_send_sge, a.max_recv_sge)
    r.phys_port_cnt = min(dev.phys_port_cnt, 0xFF)
    return r


def _port_resp(dev: IbDevice, port_num: int) -> V.ib_uverbs_query_port_resp:
    p = dev.port(port_num)
    r = V.ib_uverbs_query_port_resp()
    for name in (
        "port_cap_flags",
        "max_msg_sz",
        "bad_pkey_cntr",
        "qkey_viol_cntr",
        "gid_tbl_len",
        "pkey_tbl_len",
        "lid",
        "sm_lid",
        "state",
        "max_mtu",
        "active_mtu",
        "lmc",
        "max_vl_num",
        "sm_sl",
        "subnet_timeout",
        "init_type_reply",
        "active_width",
        "active_speed",
        "phys_state",
        "link_layer",
    ):
        setattr(r, name, getattr(p, name))
    r.flags = IB_UVERBS_QPF_GRH_REQUIRED if p.grh_required else 0
    return r


def _ib_alloc_ucontext(bundle: AttrBundle) -> IbUcontext:
    if bundle.ufile.ucontext is not None:
        raise kerr(EINVAL)
    uctx = IbUcontext(bundle.device, bundle.ufile)
    bundle.context = uctx
    return uctx


def _ib_init_ucontext(bundle: AttrBundle, uctx: IbUcontext) -> None:
    op = bundle.device.ops.alloc_ucontext
    if op is not None:
        op(uctx, bundle.driver_udata)
    bundle.ufile.ucontext = uctx
    trace_rdma_get_context(bundle.kernel.tracer, bundle.device.name)


def _h_get_context(bundle: AttrBundle) -> None:
    uctx = _ib_alloc_ucontext(bundle)
    dev = bundle.device
    bundle.copy_to(C.UVERBS_ATTR_GET_CONTEXT_NUM_COMP_VECTORS, _U32.pack(dev.num_comp_vectors))
    bundle.copy_to(
        C.UVERBS_ATTR_GET_CONTEXT_CORE_SUPPORT, _U64.pack(IB_UVERBS_CORE_SUPPORT_OPTIONAL_MR_ACCESS)
    )
    _ib_init_ucontext(bundle, uctx)


def _h_query_context(bundle: AttrBundle) -> None:
    bundle.get_ucontext()
    dev = bundle.device
    bundle.copy_to(C.UVERBS_ATTR_QUERY_CONTEXT_NUM_COMP_VECTORS, _U32.pack(dev.num_comp_vectors))
    bundle.copy_to(
        C.UVERBS_ATTR_QUERY_CONTEXT_CORE_SUPPORT,
        _U64.pack(IB_UVERBS_CORE_SUPPORT_OPTIONAL_MR_ACCESS),
    )


def _h_query_port(bundle: AttrBundle) -> None:
    dev = bundle.get_ucontext().device
    port_num = bundle.get_const(C.UVERBS_ATTR_QUERY_PORT_PORT_NUM, 0xFF)
    legacy = _port_resp(dev, port_num)
    p = dev.port(port_num)
    resp = ib_uverbs_query_port_resp_ex()
    resp.legacy_resp = legacy
    resp.port_cap_flags2 = p.port_cap_flags2
    resp.active_speed_ex = p.active_speed
    bundle.copy_to_struct_or_zero(C.UVERBS_ATTR_QUERY_PORT_RESP, bytes(resp))


def _h_query_port_speed(bundle: AttrBundle) -> None:
    bundle.get_ucontext()
    raise kerr(EOPNOTSUPP)


def _h_info_handles(bundle: AttrBundle) -> None:
    object_id = bundle.get_const(C.UVERBS_ATTR_INFO_OBJECT_ID, 0xFFFF)
    max_count = bundle.array_size(C.UVERBS_ATTR_INFO_HANDLES_LIST, 4)
    uapi: Uapi = bundle.device.uapi
    utype = uapi.types.get(object_id)
    if utype is None:
        raise kerr(ENOENT)
    handles = [h for h, u in sorted(bundle.ufile.objects.items()) if u.type is utype]
    total = min(len(handles), max_count) if max_count else len(handles)
    bundle.copy_to(C.UVERBS_ATTR_INFO_TOTAL_HANDLES, _U32.pack(total))
    if max_count:
        data = b"".join(_U32.pack(h) for h in handles[:max_count])
        bundle.copy_to(C.UVERBS_ATTR_INFO_HANDLES_LIST, data)


_GID_ENTRY = ctypes.sizeof(ib_uverbs_gid_entry)


def _gid_entry(dev: IbDevice, port_num: int, index: int) -> bytes:
    port = dev.port(port_num)
    e = ib_uverbs_gid_entry()
    gid = port.gids[index]
    e.gid[0] = int.from_bytes(gid[:8], "little")
    e.gid[1] = int.from_bytes(gid[8:], "little")
    e.gid_index = index
    e.port_num = port_num
    e.gid_type = 2  # IB_UVERBS_GID_TYPE_ROCE_V2
    e.netdev_ifindex = 2 if dev.netdev is not None or dev.parent is not None else 0
    return bytes(e)


def _h_query_gid_table(bundle: AttrBundle) -> None:
    dev = bundle.get_ucontext().device
    entry_size = bundle.get_const(C.UVERBS_ATTR_QUERY_GID_TABLE_ENTRY_SIZE, (1 << 64) - 1)
    bundle.get_flags64(C.UVERBS_ATTR_QUERY_GID_TABLE_FLAGS, 0)
    max_entries = bundle.array_size(C.UVERBS_ATTR_QUERY_GID_TABLE_RESP_ENTRIES, entry_size or 1)
    if not max_entries or entry_size < _GID_ENTRY:
        raise kerr(EINVAL)
    out = b""
    n = 0
    for p in range(1, dev.phys_port_cnt + 1):
        for i in range(len(dev.port(p).gids)):
            if n >= max_entries:
                break
            out += _gid_entry(dev, p, i).ljust(entry_size, b"\0")
            n += 1
    bundle.copy_to(C.UVERBS_ATTR_QUERY_GID_TABLE_RESP_ENTRIES, out)
    bundle.copy_to(C.UVERBS_ATTR_QUERY_GID_TABLE_RESP_NUM_ENTRIES, _U64.pack(n))


def _h_query_gid_entry(bundle: AttrBundle) -> None:
    dev = bundle.get_ucontext().device
    port_num = bundle.get_const(C.UVERBS_ATTR_QUERY_GID_ENTRY_PORT, 0xFFFFFFFF)
    index = bundle.get_const(C.UVERBS_ATTR_QUERY_GID_ENTRY_GID_INDEX, 0xFFFFFFFF)
    bundle.get_flags32(C.UVERBS_ATTR_QUERY_GID_ENTRY_FLAGS, 0)
    port = dev.port(port_num)
    if index >= len(port.gids):
        # rdma_get_gid_attr: an empty slot of the table is ENODATA (libibverbs'
        # ibv_query_gid reads it as the zero GID), past the table EINVAL
        raise kerr(ENODATA) if index < port.gid_tbl_len else kerr(EINVAL)
    bundle.copy_to(C.UVERBS_ATTR_QUERY_GID_ENTRY_RESP_ENTRY, _gid_entry(dev, port_num, index))


def _h_invoke_write(bundle: AttrBundle) -> None:
    cmd = bundle.get_const(C.UVERBS_ATTR_WRITE_CMD, 0xFFFFFFFF)
    wdef = _write_method(bundle.device.uapi, cmd)
    if wdef.ioctl_disabled:
        raise kerr(EBADF)
    core_in = bundle.attrs.get(C.UVERBS_ATTR_CORE_IN)
    core_out = bundle.attrs.get(C.UVERBS_ATTR_CORE_OUT)
    uc = bundle.ucore
    if core_in is not None:
        uc.inlen = core_in.length
        if core_in.length <= 8:
            uc.in_data = core_in.data.to_bytes(8, "little")[: core_in.length]
        else:
            uc.in_addr = core_in.data
    if core_out is not None:
        uc.out_addr, uc.outlen = core_out.data, core_out.length
    if uc.inlen < wdef.req_size or uc.outlen < wdef.resp_size:
        raise kerr(ENOSPC)
    bundle.write_uobj = None
    ok = False
    try:
        wdef.handler(bundle)
        ok = True
    finally:
        _finalize_write_uobj(bundle, ok)


# -- handlers: PD ---------------------------------------------------------------------------------
def _h_destroy_noop(bundle: AttrBundle) -> None:
    """The object was destroyed before the handler (``DECLARE_UVERBS_NAMED_METHOD_DESTROY``)."""


def _alloc_pd_obj(bundle: AttrBundle, uobj: Uobject) -> IbPd:
    assert bundle.context is not None
    pd = IbPd(bundle.device, bundle.context, handle=uobj.id)
    op = bundle.device.ops.alloc_pd
    if op is not None:
        op(pd)
    uobj.object = pd
    uobj.hw_valid = True
    return pd


# -- handlers: MR ---------------------------------------------------------------------------------
def _h_query_mr(bundle: AttrBundle) -> None:
    mr: IbMr = bundle.get_obj(C.UVERBS_ATTR_QUERY_MR_HANDLE)
    bundle.copy_to(C.UVERBS_ATTR_QUERY_MR_RESP_LKEY, _U32.pack(mr.lkey))
    bundle.copy_to(C.UVERBS_ATTR_QUERY_MR_RESP_RKEY, _U32.pack(mr.rkey))
    bundle.copy_to(C.UVERBS_ATTR_QUERY_MR_RESP_LENGTH, _U64.pack(mr.length))
    bundle.copy_to(C.UVERBS_ATTR_QUERY_MR_RESP_IOVA, _U64.pack(mr.iova))


def _h_advise_mr(bundle: AttrBundle) -> None:
    pd: IbPd = bundle.get_obj(C.UVERBS_ATTR_ADVISE_MR_PD_HANDLE)
    advice = bundle.get_const(C.UVERBS_ATTR_ADVISE_MR_ADVICE, _INT_MAX)
    flags = bundle.get_flags32(C.UVERBS_ATTR_ADVISE_MR_FLAGS, IB_UVERBS_ADVISE_MR_FLAG_FLUSH)
    num = bundle.array_size(C.UVERBS_ATTR_ADVISE_MR_SGE_LIST, 16)
    a = bundle.attr(C.UVERBS_ATTR_ADVISE_MR_SGE_LIST)
    raw = a.ptr if a.ptr is not None else a.data.to_bytes(8, "little")[: a.length]
    sges = [struct.unpack_from("<QII", raw, 16 * i) for i in range(num)]
    op = pd.device.ops.advise_mr
    assert op is not None
    op(pd, advice, flags, [(s[0], s[1], s[2]) for s in sges], bundle)


def _h_reg_dmabuf_mr(bundle: AttrBundle) -> None:
    uobj = bundle.get_uobject(C.UVERBS_ATTR_REG_DMABUF_MR_HANDLE)
    pd: IbPd = bundle.get_obj(C.UVERBS_ATTR_REG_DMABUF_MR_PD_HANDLE)
    dev = pd.device
    op = dev.ops.reg_user_mr_dmabuf
    if op is None:
        raise kerr(EOPNOTSUPP)
    offset = bundle.copy_from_u64(C.UVERBS_ATTR_REG_DMABUF_MR_OFFSET)
    length = bundle.copy_from_u64(C.UVERBS_ATTR_REG_DMABUF_MR_LENGTH)
    iova = bundle.copy_from_u64(C.UVERBS_ATTR_REG_DMABUF_MR_IOVA)
    if (offset ^ iova) & (PAGE_SIZE - 1):
        raise kerr(EINVAL)
    fd = bundle.copy_from_u32(C.UVERBS_ATTR_REG_DMABUF_MR_FD)
    access = bundle.get_flags32(C.UVERBS_ATTR_REG_DMABUF_MR_ACCESS_FLAGS, _DMABUF_ACCESS)
    ib_check_mr_access(dev, access)
    mr = op(pd, offset, length, iova, fd, access, None, bundle)
    _mr_created(bundle, uobj, mr, pd, iova, length, access, None)
    bundle.copy_to(C.UVERBS_ATTR_REG_DMABUF_MR_RESP_LKEY, _U32.pack(mr.lkey))
    bundle.copy_to(C.UVERBS_ATTR_REG_DMABUF_MR_RESP_RKEY, _U32.pack(mr.rkey))


def _h_reg_mr(bundle: AttrBundle) -> None:
    uobj = bundle.get_uobject(C.UVERBS_ATTR_REG_MR_HANDLE)
    pd: IbPd = bundle.get_obj(C.UVERBS_ATTR_REG_MR_PD_HANDLE)
    dev = pd.device
    iova = bundle.copy_from_u64(C.UVERBS_ATTR_REG_MR_IOVA)
    length = bundle.copy_from_u64(C.UVERBS_ATTR_REG_MR_LENGTH)
    has_addr = bundle.is_valid(C.UVERBS_ATTR_REG_MR_ADDR)
    addr = bundle.copy_from_u64(C.UVERBS_ATTR_REG_MR_ADDR) if has_addr else 0
    has_off = bundle.is_valid(C.UVERBS_ATTR_REG_MR_FD_OFFSET)
    fd_offset = bundle.copy_from_u64(C.UVERBS_ATTR_REG_MR_FD_OFFSET) if has_off else 0
    has_fd = bundle.is_valid(C.UVERBS_ATTR_REG_MR_FD)
    fd = bundle.get_raw_fd(C.UVERBS_ATTR_REG_MR_FD) if has_fd else -1
    valid = IB_ACCESS_SUPPORTED
    if has_fd:
        if dev.ops.reg_user_mr_dmabuf is None:
            raise kerr(EOPNOTSUPP)
        if not has_off or has_addr:
            raise kerr(EINVAL)
        if (fd_offset ^ iova) & (PAGE_SIZE - 1):
            raise kerr(EINVAL)
        valid = _DMABUF_ACCESS
    else:
        if not has_addr or has_off:
            raise kerr(EINVAL)
        if (addr ^ iova) & (PAGE_SIZE - 1):
            raise kerr(EINVAL)
    dmah: IbDmah | None = None
    if bundle.is_valid(C.UVERBS_ATTR_REG_MR_DMA_HANDLE):
        dmah = bundle.get_obj(C.UVERBS_ATTR_REG_MR_DMA_HANDLE)
    access = bundle.get_flags32(C.UVERBS_ATTR_REG_MR_ACCESS_FLAGS, valid)
    ib_check_mr_access(dev, access)
    if has_fd:
        op = dev.ops.reg_user_mr_dmabuf
        assert op is not None
        mr = op(pd, fd_offset, length, iova, fd & 0xFFFFFFFF, access, dmah, bundle)
    else:
        reg = dev.ops.reg_user_mr
        if reg is None:
            raise kerr(EOPNOTSUPP)
        mr = reg(pd, addr, length, iova, access, dmah)
    _mr_created(bundle, uobj, mr, pd, iova, length, access, dmah)
    bundle.copy_to(C.UVERBS_ATTR_REG_MR_RESP_LKEY, _U32.pack(mr.lkey))
    bundle.copy_to(C.UVERBS_ATTR_REG_MR_RESP_RKEY, _U32.pack(mr.rkey))


# -- handlers: DMAH -------------------------------------------------------------------------------
def _caller_cpus(kernel: RdmaContext) -> set[int]:
    """``current->cpus_ptr``: the CPUs the calling thread may run on -- a supervised
    program's thread (by its tid: its own ``sched_setaffinity``/``taskset``), else this
    Python thread, which is the caller in-process."""
    tid = kernel.current_tid
    if tid is not None and current_mm() is not LOCAL:
        try:
            return os.sched_getaffinity(tid)
        except OSError:  # (the thread is gone: it cannot be waiting for this answer)
            pass
    return os.sched_getaffinity(0)


def _h_dmah_alloc(bundle: AttrBundle) -> None:
    uobj = bundle.get_uobject(C.UVERBS_ATTR_ALLOC_DMAH_HANDLE)
    dev = bundle.device
    dmah = IbDmah(dev, handle=uobj.id)
    if bundle.is_valid(C.UVERBS_ATTR_ALLOC_DMAH_CPU_ID):
        dmah.cpu_id = bundle.copy_from_u32(C.UVERBS_ATTR_ALLOC_DMAH_CPU_ID)
        if dmah.cpu_id >= dev.kernel.topology.kernel.nr_cpus:
            raise kerr(EINVAL)
        if dmah.cpu_id not in _caller_cpus(dev.kernel):
            raise kerr(EPERM)
        dmah.valid_fields |= 1 << IB_DMAH_CPU_ID_EXISTS
    if bundle.is_valid(C.UVERBS_ATTR_ALLOC_DMAH_TPH_MEM_TYPE):
        dmah.mem_type = bundle.enum_id(C.UVERBS_ATTR_ALLOC_DMAH_TPH_MEM_TYPE)
        dmah.valid_fields |= 1 << IB_DMAH_MEM_TYPE_EXISTS
    if bundle.is_valid(C.UVERBS_ATTR_ALLOC_DMAH_PH):
        dmah.ph = bundle.copy_from(C.UVERBS_ATTR_ALLOC_DMAH_PH, 1)[0]
        if dmah.ph & 0xFC:
            raise kerr(EINVAL)
        dmah.valid_fields |= 1 << IB_DMAH_PH_EXISTS
    op = dev.ops.alloc_dmah
    assert op is not None
    op(dmah, bundle)
    uobj.object = dmah
    bundle.finalize_uobj_create(C.UVERBS_ATTR_ALLOC_DMAH_HANDLE)
    tracer = dev.kernel.tracer
    if tracer.enabled:  # (the fields are work: none while off)
        trace_rdma_dmah_alloc(
            tracer,
            dev.name,
            uobj.id,
            dmah.cpu_id if dmah.has(IB_DMAH_CPU_ID_EXISTS) else None,
            dmah.mem_type if dmah.has(IB_DMAH_MEM_TYPE_EXISTS) else None,
            dmah.ph if dmah.has(IB_DMAH_PH_EXISTS) else None,
        )


# -- handlers: async event ------------------------------------------------------------------------
def _h_async_event_alloc(bundle: AttrBundle) -> None:
    uobj = bundle.get_uobject(C.UVERBS_ATTR_ASYNC_EVENT_ALLOC_FD_HANDLE)
    uobj.file = _async_event_file(bundle.ufile)
    uobj.hw_valid = True


def _w_create_comp_channel(bundle: AttrBundle) -> None:
    """``ib_uverbs_create_comp_channel``: a new ``[infinibandevent]`` fd CQs may name."""
    bundle.request(8)
    uobj = bundle.write_uobj = bundle.uobj_alloc(COMP_CHANNEL_TYPE)
    uobj.file = new_event_file(bundle.ufile, comp=True)
    uobj.hw_valid = True
    bundle.response(_U32.pack(uobj.id))


# -- the ioctl methods -----------------------------------------------------------------------------
_R, _W, _N, _D = ACCESS_READ, ACCESS_WRITE, ACCESS_NEW, ACCESS_DESTROY

OBJECTS: tuple[ObjectDef, ...] = (
    ObjectDef(
        C.UVERBS_OBJECT_DEVICE,
        None,
        (
            _method(
                C.UVERBS_METHOD_INVOKE_WRITE,
                _h_invoke_write,
                const_in(C.UVERBS_ATTR_WRITE_CMD, True),
                ptr_in(C.UVERBS_ATTR_CORE_IN, (4, 0xFFFF)),
                ptr_out(C.UVERBS_ATTR_CORE_OUT, (0, 0xFFFF)),
                udata=True,
            ),
            _method(
                C.UVERBS_METHOD_INFO_HANDLES,
                _h_info_handles,
                const_in(C.UVERBS_ATTR_INFO_OBJECT_ID, True),
                ptr_out(C.UVERBS_ATTR_INFO_TOTAL_HANDLES, 4),
                ptr_out(C.UVERBS_ATTR_INFO_HANDLES_LIST, (4, 0xFFFF)),
            ),
            _method(
                C.UVERBS_METHOD_QUERY_PORT,
                _h_query_port,
                const_in(C.UVERBS_ATTR_QUERY_PORT_PORT_NUM, True),
                ptr_out(
                    C.UVERBS_ATTR_QUERY_PORT_RESP,
                    (48, ctypes.sizeof(ib_uverbs_query_port_resp_ex)),
                    True,
                    zero_trailing=True,
                ),
            ),
            _method(
                C.UVERBS_METHOD_GET_CONTEXT,
                _h_get_context,
                ptr_out(C.UVERBS_ATTR_GET_CONTEXT_NUM_COMP_VECTORS, 4),
                ptr_out(C.UVERBS_ATTR_GET_CONTEXT_CORE_SUPPORT, 8),
                udata=True,
            ),
            _method(
                C.UVERBS_METHOD_QUERY_CONTEXT,
                _h_query_context,
                ptr_out(C.UVERBS_ATTR_QUERY_CONTEXT_NUM_COMP_VECTORS, 4),
                ptr_out(C.UVERBS_ATTR_QUERY_CONTEXT_CORE_SUPPORT, 8),
            ),
            _method(
                C.UVERBS_METHOD_QUERY_GID_TABLE,
                _h_query_gid_table,
                const_in(C.UVERBS_ATTR_QUERY_GID_TABLE_ENTRY_SIZE, True),
                flags_in(C.UVERBS_ATTR_QUERY_GID_TABLE_FLAGS),
                ptr_out(C.UVERBS_ATTR_QUERY_GID_TABLE_RESP_ENTRIES, (0, 0xFFFF), True),
                ptr_out(C.UVERBS_ATTR_QUERY_GID_TABLE_RESP_NUM_ENTRIES, 8, True),
            ),
            _method(
                C.UVERBS_METHOD_QUERY_GID_ENTRY,
                _h_query_gid_entry,
                const_in(C.UVERBS_ATTR_QUERY_GID_ENTRY_PORT, True),
                const_in(C.UVERBS_ATTR_QUERY_GID_ENTRY_GID_INDEX, True),
                flags_in(C.UVERBS_ATTR_QUERY_GID_ENTRY_FLAGS, True),
                ptr_out(C.UVERBS_ATTR_QUERY_GID_ENTRY_RESP_ENTRY, _GID_ENTRY, True),
            ),
            _method(
                C.UVERBS_METHOD_QUERY_PORT_SPEED,
                _h_query_port_speed,
                const_in(C.UVERBS_ATTR_QUERY_PORT_SPEED_PORT_NUM, True),
                ptr_out(C.UVERBS_ATTR_QUERY_PORT_SPEED_RESP, 8, True),
            ),
        ),
    ),
    ObjectDef(
        C.UVERBS_OBJECT_PD,
        PD_TYPE,
        (
            _method(
                C.UVERBS_METHOD_PD_DESTROY,
                _h_destroy_noop,
                idr(C.UVERBS_ATTR_DESTROY_PD_HANDLE, PD_TYPE, _D, True),
            ),
        ),
    ),
    ObjectDef(
        C.UVERBS_OBJECT_MR,
        MR_TYPE,
        (
            _method(
                C.UVERBS_METHOD_MR_DESTROY,
                _h_destroy_noop,
                idr(C.UVERBS_ATTR_DESTROY_MR_HANDLE, MR_TYPE, _D, True),
            ),
            _method(
                C.UVERBS_METHOD_ADVISE_MR,
                _h_advise_mr,
                idr(C.UVERBS_ATTR_ADVISE_MR_PD_HANDLE, PD_TYPE, _R, True),
                const_in(C.UVERBS_ATTR_ADVISE_MR_ADVICE, True),
                flags_in(C.UVERBS_ATTR_ADVISE_MR_FLAGS, True),
                ptr_in(C.UVERBS_ATTR_ADVISE_MR_SGE_LIST, (16, 0xFFFF), True, alloc_copy=True),
                needs=("advise_mr",),
            ),
            _method(
                C.UVERBS_METHOD_QUERY_MR,
                _h_query_mr,
                idr(C.UVERBS_ATTR_QUERY_MR_HANDLE, MR_TYPE, _R, True),
                ptr_out(C.UVERBS_ATTR_QUERY_MR_RESP_RKEY, 4, True),
                ptr_out(C.UVERBS_ATTR_QUERY_MR_RESP_LKEY, 4, True),
                ptr_out(C.UVERBS_ATTR_QUERY_MR_RESP_LENGTH, 8, True),
                ptr_out(C.UVERBS_ATTR_QUERY_MR_RESP_IOVA, 8),
            ),
            _method(
                C.UVERBS_METHOD_REG_DMABUF_MR,
                _h_reg_dmabuf_mr,
                idr(C.UVERBS_ATTR_REG_DMABUF_MR_HANDLE, MR_TYPE, _N, True),
                idr(C.UVERBS_ATTR_REG_DMABUF_MR_PD_HANDLE, PD_TYPE, _R, True),
                ptr_in(C.UVERBS_ATTR_REG_DMABUF_MR_OFFSET, 8, True),
                ptr_in(C.UVERBS_ATTR_REG_DMABUF_MR_LENGTH, 8, True),
                ptr_in(C.UVERBS_ATTR_REG_DMABUF_MR_IOVA, 8, True),
                ptr_in(C.UVERBS_ATTR_REG_DMABUF_MR_FD, 4, True),
                flags_in(C.UVERBS_ATTR_REG_DMABUF_MR_ACCESS_FLAGS),
                ptr_out(C.UVERBS_ATTR_REG_DMABUF_MR_RESP_LKEY, 4, True),
                ptr_out(C.UVERBS_ATTR_REG_DMABUF_MR_RESP_RKEY, 4, True),
            ),
            _method(
                C.UVERBS_METHOD_REG_MR,
                _h_reg_mr,
                idr(C.UVERBS_ATTR_REG_MR_HANDLE, MR_TYPE, _N, True),
                idr(C.UVERBS_ATTR_REG_MR_PD_HANDLE, PD_TYPE, _R, True),
                idr(C.UVERBS_ATTR_REG_MR_DMA_HANDLE, DMAH_TYPE, _R),
                ptr_in(C.UVERBS_ATTR_REG_MR_IOVA, 8, True),
                ptr_in(C.UVERBS_ATTR_REG_MR_LENGTH, 8, True),
                ptr_in(C.UVERBS_ATTR_REG_MR_ADDR, 8),
                flags_in(C.UVERBS_ATTR_REG_MR_ACCESS_FLAGS, True),
                AttrSpec(C.UVERBS_ATTR_REG_MR_FD, RAW_FD),
                ptr_in(C.UVERBS_ATTR_REG_MR_FD_OFFSET, 8),
                ptr_out(C.UVERBS_ATTR_REG_MR_RESP_LKEY, 4, True),
                ptr_out(C.UVERBS_ATTR_REG_MR_RESP_RKEY, 4, True),
                udata=True,
            ),
        ),
    ),
    ObjectDef(
        C.UVERBS_OBJECT_ASYNC_EVENT,
        ASYNC_EVENT_TYPE,
        (
            _method(
                C.UVERBS_METHOD_ASYNC_EVENT_ALLOC,
                _h_async_event_alloc,
                AttrSpec(
                    C.UVERBS_ATTR_ASYNC_EVENT_ALLOC_FD_HANDLE,
                    FD,
                    True,
                    obj_type=ASYNC_EVENT_TYPE,
                    access=_N,
                ),
            ),
        ),
    ),
    ObjectDef(
        C.UVERBS_OBJECT_DMAH,
        DMAH_TYPE,
        (
            _method(
                C.UVERBS_METHOD_DMAH_ALLOC,
                _h_dmah_alloc,
                idr(C.UVERBS_ATTR_ALLOC_DMAH_HANDLE, DMAH_TYPE, _N, True),
                ptr_in(C.UVERBS_ATTR_ALLOC_DMAH_CPU_ID, 4),
                AttrSpec(C.UVERBS_ATTR_ALLOC_DMAH_TPH_MEM_TYPE, ENUM_IN, num_elems=2),
                ptr_in(C.UVERBS_ATTR_ALLOC_DMAH_PH, 1),
            ),
            _method(
                C.UVERBS_METHOD_DMAH_FREE,
                _h_destroy_noop,
                idr(C.UVERBS_ATTR_FREE_DMA_HANDLE, DMAH_TYPE, _D, True),
            ),
        ),
        needs=("alloc_dmah", "dealloc_dmah"),
    ),
    # CQs and QPs: objects of the uAPI (the write commands make them); their ioctl
    # methods are not modelled, so rdma-core falls back to the write commands
    ObjectDef(C.UVERBS_OBJECT_COMP_CHANNEL, COMP_CHANNEL_TYPE, ()),
    ObjectDef(C.UVERBS_OBJECT_AH, AH_TYPE, (), needs=("create_ah", "destroy_ah")),
    ObjectDef(C.UVERBS_OBJECT_SRQ, SRQ_TYPE, (), needs=("create_srq", "destroy_srq")),
    ObjectDef(C.UVERBS_OBJECT_CQ, _qp.CQ_TYPE, (), needs=("create_cq", "destroy_cq")),
    ObjectDef(C.UVERBS_OBJECT_QP, _qp.QP_TYPE, (), needs=("create_qp", "destroy_qp")),
)


# -- the legacy write() commands -------------------------------------------------------------------
def _finalize_write_uobj(bundle: AttrBundle, ok: bool) -> None:
    uobj = bundle.write_uobj
    bundle.write_uobj = None
    if uobj is None:
        return
    if ok:
        _commit(bundle, uobj)
    else:
        _abort(bundle, uobj)


def _w_get_context(bundle: AttrBundle) -> None:
    bundle.request(8)
    uctx = _ib_alloc_ucontext(bundle)
    uobj = bundle.uobj_alloc(ASYNC_EVENT_TYPE)
    try:
        uobj.file = _async_event_file(bundle.ufile)
        resp = V.ib_uverbs_get_context_resp()
        resp.async_fd = uobj.id
        resp.num_comp_vectors = bundle.device.num_comp_vectors
        bundle.response(bytes(resp)[:8])
        _ib_init_ucontext(bundle, uctx)
    except BaseException:
        _abort(bundle, uobj)
        bundle.context = None
        raise
    uobj.hw_valid = True
    _commit(bundle, uobj)


def _w_query_device(bundle: AttrBundle) -> None:
    uctx = bundle.get_ucontext()
    bundle.request(8)
    bundle.response(bytes(_copy_query_dev(uctx.device)))


def _w_query_port(bundle: AttrBundle) -> None:
    uctx = bundle.get_ucontext()
    cmd = V.ib_uverbs_query_port.from_buffer_copy(bundle.request(16))
    bundle.response(bytes(_port_resp(uctx.device, cmd.port_num)))


def _w_alloc_pd(bundle: AttrBundle) -> None:
    bundle.request(8)
    uobj = bundle.write_uobj = bundle.uobj_alloc(PD_TYPE)
    _alloc_pd_obj(bundle, uobj)
    bundle.response(_U32.pack(uobj.id))


def _w_dealloc_pd(bundle: AttrBundle) -> None:
    (handle,) = _U32.unpack(bundle.request(4))
    _perform_destroy(bundle, PD_TYPE, handle)


def _w_reg_mr(bundle: AttrBundle) -> None:
    cmd = V.ib_uverbs_reg_mr.from_buffer_copy(bundle.request(40))
    if (cmd.start ^ cmd.hca_va) & (PAGE_SIZE - 1):
        raise kerr(EINVAL)
    uobj = bundle.write_uobj = bundle.uobj_alloc(MR_TYPE)
    dev = bundle.device
    ib_check_mr_access(dev, cmd.access_flags)
    pd: IbPd = bundle.lookup(PD_TYPE, cmd.pd_handle, ACCESS_READ).object
    reg = dev.ops.reg_user_mr
    assert reg is not None
    mr = reg(pd, cmd.start, cmd.length, cmd.hca_va, cmd.access_flags, None)
    _mr_created(bundle, uobj, mr, pd, cmd.hca_va, cmd.length, cmd.access_flags, None)
    bundle.response(struct.pack("<III", uobj.id, mr.lkey, mr.rkey))


def _w_rereg_mr(bundle: AttrBundle) -> None:
    cmd = V.ib_uverbs_rereg_mr.from_buffer_copy(bundle.request(48))
    if not cmd.flags or cmd.flags & ~IB_MR_REREG_SUPPORTED:
        raise kerr(EINVAL)
    if cmd.flags & IB_MR_REREG_TRANS and (
        not cmd.start or not cmd.hca_va or not cmd.length or (cmd.start ^ cmd.hca_va) & 0xFFF
    ):
        raise kerr(EINVAL)
    mr: IbMr = bundle.lookup(MR_TYPE, cmd.mr_handle, ACCESS_WRITE).object
    if cmd.flags & IB_MR_REREG_ACCESS:
        ib_check_mr_access(bundle.device, cmd.access_flags)
    new_pd: IbPd | None = None
    if cmd.flags & IB_MR_REREG_PD:
        new_pd = bundle.lookup(PD_TYPE, cmd.pd_handle, ACCESS_READ).object
    op = bundle.device.ops.rereg_user_mr
    assert op is not None
    op(mr, cmd.flags, new_pd, cmd.access_flags)
    if new_pd is not None and new_pd is not mr.pd:
        mr.pd.usecnt -= 1
        new_pd.usecnt += 1
        mr.pd = new_pd
    if cmd.flags & IB_MR_REREG_ACCESS:
        mr.access = cmd.access_flags
    bundle.response(struct.pack("<II", mr.lkey, mr.rkey))


def _w_dereg_mr(bundle: AttrBundle) -> None:
    (handle,) = _U32.unpack(bundle.request(4))
    _perform_destroy(bundle, MR_TYPE, handle)


def _w_ex_query_device(bundle: AttrBundle) -> None:
    uctx = bundle.get_ucontext()
    cmd = V.ib_uverbs_ex_query_device.from_buffer_copy(bundle.request(8))
    if cmd.comp_mask or cmd.reserved:
        raise kerr(EINVAL)
    dev = uctx.device
    a = dev.attrs
    resp = V.ib_uverbs_ex_query_device_resp()
    resp.base = _copy_query_dev(dev)
    resp.odp_caps.general_caps = a.odp_general_caps
    resp.odp_caps.per_transport_caps.rc_odp_caps = a.odp_rc_caps
    resp.odp_caps.per_transport_caps.uc_odp_caps = a.odp_uc_caps
    resp.odp_caps.per_transport_caps.ud_odp_caps = a.odp_ud_caps
    resp.xrc_odp_caps = a.odp_xrc_caps
    resp.timestamp_mask = a.timestamp_mask
    resp.hca_core_clock = a.hca_core_clock
    resp.device_cap_flags_ex = a.device_cap_flags
    resp.max_dm_size = a.max_dm_size
    size = ctypes.sizeof(resp)
    outlen = (
        bundle.attrs[C.UVERBS_ATTR_CORE_OUT].length
        if C.UVERBS_ATTR_CORE_OUT in bundle.attrs
        else bundle.ucore.outlen
    )
    resp.response_length = min(outlen, size)
    bundle.response(bytes(resp))


def _perform_destroy(bundle: AttrBundle, utype: UobjType, handle: int) -> None:
    uobj = bundle.lookup(utype, handle, ACCESS_DESTROY)
    bundle.ufile.destroy_uobject(uobj, RDMA_REMOVE_DESTROY)


WRITE: Mapping[int, WriteDef] = MappingProxyType(
    {
        V.IB_USER_VERBS_CMD_GET_CONTEXT: WriteDef(
            _w_get_context, 8, 8, has_resp=True, has_udata=True, ioctl_disabled=True
        ),
        V.IB_USER_VERBS_CMD_QUERY_DEVICE: WriteDef(_w_query_device, 8, 176, has_resp=True),
        V.IB_USER_VERBS_CMD_QUERY_PORT: WriteDef(_w_query_port, 16, 40, has_resp=True),
        V.IB_USER_VERBS_CMD_ALLOC_PD: WriteDef(_w_alloc_pd, 8, 4, has_resp=True, has_udata=True),
        V.IB_USER_VERBS_CMD_DEALLOC_PD: WriteDef(_w_dealloc_pd, 4),
        V.IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL: WriteDef(
            _w_create_comp_channel, 8, 4, has_resp=True
        ),
        V.IB_USER_VERBS_CMD_REQ_NOTIFY_CQ: WriteDef(
            _qp.w_req_notify_cq, 8, needs=("req_notify_cq",)
        ),
        V.IB_USER_VERBS_CMD_CREATE_AH: WriteDef(
            w_create_ah, 56, 4, has_resp=True, has_udata=True, needs=("create_ah",)
        ),
        V.IB_USER_VERBS_CMD_DESTROY_AH: WriteDef(w_destroy_ah, 4, needs=("destroy_ah",)),
        V.IB_USER_VERBS_CMD_CREATE_SRQ: WriteDef(
            w_create_srq, 32, 16, has_resp=True, has_udata=True, needs=("create_srq",)
        ),
        V.IB_USER_VERBS_CMD_MODIFY_SRQ: WriteDef(
            w_modify_srq, 16, has_udata=True, needs=("modify_srq",)
        ),
        V.IB_USER_VERBS_CMD_QUERY_SRQ: WriteDef(
            w_query_srq, 16, 16, has_resp=True, needs=("query_srq",)
        ),
        V.IB_USER_VERBS_CMD_DESTROY_SRQ: WriteDef(
            w_destroy_srq, 16, 4, has_resp=True, needs=("destroy_srq",)
        ),
        V.IB_USER_VERBS_CMD_REG_MR: WriteDef(
            _w_reg_mr, 40, 12, has_resp=True, has_udata=True, needs=("reg_user_mr",)
        ),
        V.IB_USER_VERBS_CMD_REREG_MR: WriteDef(
            _w_rereg_mr, 48, 8, has_resp=True, has_udata=True, needs=("rereg_user_mr",)
        ),
        V.IB_USER_VERBS_CMD_DEREG_MR: WriteDef(_w_dereg_mr, 4),
        V.IB_USER_VERBS_CMD_CREATE_CQ: WriteDef(
            _qp.w_create_cq, 32, 8, has_resp=True, has_udata=True, needs=("create_cq",)
        ),
        V.IB_USER_VERBS_CMD_DESTROY_CQ: WriteDef(
            _qp.w_destroy_cq, 16, 8, has_resp=True, needs=("destroy_cq",)
        ),
        V.IB_USER_VERBS_CMD_CREATE_QP: WriteDef(
            _qp.w_create_qp, 56, 32, has_resp=True, has_udata=True, needs=("create_qp",)
        ),
        V.IB_USER_VERBS_CMD_MODIFY_QP: WriteDef(_qp.w_modify_qp, 112, needs=("modify_qp",)),
        V.IB_USER_VERBS_CMD_DESTROY_QP: WriteDef(
            _qp.w_destroy_qp, 16, 4, has_resp=True, needs=("destroy_qp",)
        ),
        V.IB_USER_VERBS_CMD_POST_SEND: WriteDef(
            _qp.w_post_send, 24, 4, has_resp=True, needs=("post_send",)
        ),
    }
)
WRITE_EX: Mapping[int, WriteDef] = MappingProxyType(
    {
        V.IB_USER_VERBS_EX_CMD_QUERY_DEVICE: WriteDef(_w_ex_query_device, 8, 0, is_ex=True),
    }
)


def _write_method(uapi: Uapi, command: int) -> WriteDef:
    """``uapi_get_method``: ``EINVAL`` for bits outside the mask, ``EOPNOTSUPP`` unknown."""
    if command & ~(V.IB_USER_VERBS_CMD_FLAG_EXTENDED | V.IB_USER_VERBS_CMD_COMMAND_MASK):
        raise kerr(EINVAL)
    idx = command & V.IB_USER_VERBS_CMD_COMMAND_MASK
    table = uapi.write_ex if command & V.IB_USER_VERBS_CMD_FLAG_EXTENDED else uapi.write
    wdef = table.get(idx)
    if wdef is None:
        raise kerr(EOPNOTSUPP)
    return wdef


def _unsupported(ufile: UverbsFile, how: str, errno: int, **what: object) -> OSError:
    """A command or method this device's uAPI does not have: the errno the uverbs core
    gives (``EOPNOTSUPP`` for a write command, ``EPROTONOSUPPORT`` for an ioctl method),
    and one ``rdma.unsupported`` event naming it, so a provider's unmodelled call (an
    ``MLX5_IB_METHOD_*`` of the driver namespace, a write command) shows in the trace."""
    # (its fields vary with what is unsupported: Tracer.emit, no TracePoint)
    ufile.kernel.tracer.emit("rdma.unsupported", ibdev=ufile.device.name, via=how,
                             errno=errorcode[errno], **what)  # fmt: skip
    return kerr(errno)


# -- the uAPI of one device ------------------------------------------------------------------------
def build_uapi(dev: IbDevice) -> Uapi:
    """The objects/methods/commands ``dev``'s ops table supports, plus its driver attributes.

    A pure function of which ops are present and of the driver attributes, so it is
    built once per process for each such combination (:func:`_uapi_for`) and shared by
    the devices that have it: nothing changes a ``Uapi`` after it is built.
    """
    ops = dev.ops
    present = frozenset(n for n in _ALL_NEEDS if getattr(ops, n, None) is not None)
    attrs = tuple(sorted((k, tuple(v)) for k, v in ops.driver_attrs.items()))
    objects = tuple(ops.driver_objects)
    try:
        return _uapi_for(present, attrs, objects)
    except TypeError:  # unhashable driver attributes: built for this device alone
        return _uapi_for.__wrapped__(present, attrs, objects)


#: every op name some object, method or write command needs
_ALL_NEEDS: tuple[str, ...] = tuple(
    sorted(
        {n for o in OBJECTS for n in o.needs}
        | {n for o in OBJECTS for m in o.methods for n in m.needs}
        | {n for w in (*WRITE.values(), *WRITE_EX.values()) for n in w.needs}
    )
)


@functools.lru_cache(maxsize=16)
def _uapi_for(
    present: frozenset[str],
    attrs: tuple[tuple[tuple[int, int], tuple[Any, ...]], ...],
    driver_objects: tuple[ObjectDef, ...] = (),
) -> Uapi:
    """The ``Uapi`` of an ops table with the ops ``present``, driver attributes
    ``attrs`` and the driver's own objects (``UAPI_DEF_CHAIN`` of its namespace) -- a
    cache of immutable facts: it holds no device and no kernel."""
    driver_attrs = dict(attrs)

    def has(names: tuple[str, ...]) -> bool:
        return all(n in present for n in names)

    uapi = Uapi()
    for obj in (*OBJECTS, *driver_objects):
        if not has(obj.needs):
            continue
        methods = {}
        for m in obj.methods:
            if not has(m.needs):
                continue
            extra = driver_attrs.get((obj.id, m.id), ())
            if extra:
                m = replace(m, attrs={**m.attrs, **{a.id: a for a in extra}})
            methods[m.id] = m
        uapi.objects[obj.id] = methods
        if obj.utype is not None:
            uapi.types[obj.id] = obj.utype
    uapi.write = {k: w for k, w in WRITE.items() if has(w.needs)}
    uapi.write_ex = {k: w for k, w in WRITE_EX.items() if has(w.needs)}
    return uapi


# -- RDMA_VERBS_IOCTL ----------------------------------------------------------------------------
def _process_attr(
    bundle: AttrBundle, spec: AttrSpec, idx: int, length: int, flags: int, reserved: int, data: int
) -> Attr:
    a = Attr(idx, length, data)
    kind = spec.kind
    if kind in (PTR_IN, PTR_OUT, ENUM_IN):
        min_len, max_len, zero_trailing = spec.min_len, spec.max_len, spec.zero_trailing
        if kind == ENUM_IN:
            elem, enum_reserved = reserved & 0xFF, reserved >> 8
            if elem >= spec.num_elems:
                raise kerr(EOPNOTSUPP)
            if enum_reserved:
                raise kerr(EINVAL)
            a.enum_id = elem
            min_len = max_len = 0  # UVERBS_ATTR_NO_DATA
            zero_trailing = False
        if kind == PTR_IN and length > max_len and zero_trailing:
            extra = (
                copy_from_user(data + max_len, length - max_len)
                if length > 8
                else data.to_bytes(8, "little")[max_len:length]
            )
            if any(extra):
                raise kerr(EOPNOTSUPP)
        if length < min_len or (not zero_trailing and length > max_len):
            raise kerr(EINVAL)
        if kind != ENUM_IN and reserved:
            raise kerr(EINVAL)
        if spec.alloc_copy and length > 8:
            a.ptr = copy_from_user(data, length)
        return a
    if kind in (IDR, FD):
        if reserved or length:
            raise kerr(EINVAL)
        utype = spec.obj_type
        assert utype is not None
        if spec.access == ACCESS_NEW:
            uobj = bundle.uobj_alloc(utype)
            bundle.new.append((uobj, spec.id))
            copy_to_user(bundle.attrs_addr + _ATTR_SIZE * idx + 8, _U64.pack(uobj.id))
        else:
            sdata = data - (1 << 64) if data >> 63 else data
            uobj = bundle.lookup(utype, sdata, spec.access)
        a.uobj = uobj
        return a
    if kind == RAW_FD:
        sdata = data - (1 << 64) if data >> 63 else data
        if reserved or length or not _INT_MIN <= sdata <= _INT_MAX:
            raise kerr(EINVAL)
        return a
    raise kerr(EOPNOTSUPP)


def _run_method(bundle: AttrBundle, method: MethodDef) -> None:
    attrs = bundle.attrs
    specs = method.attrs
    for idx, (aid, length, flags, reserved, data) in enumerate(bundle.uattrs):
        spec = specs.get(aid)
        if spec is None:
            if flags & UVERBS_ATTR_F_MANDATORY:
                raise kerr(EPROTONOSUPPORT)
            continue
        if aid in attrs:
            raise kerr(EINVAL)
        attrs[aid] = _process_attr(bundle, spec, idx, length, flags, reserved, data)
    for spec in specs.values():
        if spec.mandatory and spec.id not in attrs:
            raise kerr(EINVAL)
    if method.has_udata:
        uin = attrs.get(C.UVERBS_ATTR_UHW_IN)
        uout = attrs.get(C.UVERBS_ATTR_UHW_OUT)
        bundle.driver_udata = Udata(
            in_data=uin.data.to_bytes(8, "little")[: uin.length]
            if uin is not None and uin.length <= 8
            else None,
            in_addr=uin.data if uin is not None and uin.length > 8 else 0,
            inlen=uin.length if uin is not None else 0,
            out_addr=uout.data if uout is not None else 0,
            outlen=uout.length if uout is not None else 0,
        )
    if method.destroy_attr is not None:
        uobj = bundle.get_uobject(method.destroy_attr)
        bundle.ufile.destroy_uobject(uobj, RDMA_REMOVE_DESTROY)
    try:
        method.handler(bundle)
    except OSError as e:
        if e.errno == EPROTONOSUPPORT:  # only the framework may say it (WARN_ON_ONCE)
            raise kerr(EINVAL) from None
        raise
    if method.has_udata and C.UVERBS_ATTR_UHW_OUT in attrs:
        bundle.set_output(C.UVERBS_ATTR_UHW_OUT)


def _verbs_ioctl(file: File[UverbsFile], cmd: int, arg: int) -> int:
    ufile = file.private_data
    raw = copy_from_user(arg, _HDR_SIZE)
    length, object_id, method_id, num_attrs, reserved1, driver_id, reserved2 = _HDR.unpack(raw)
    if length > PAGE_SIZE or length != _HDR_SIZE + _ATTR_SIZE * num_attrs:
        raise kerr(EINVAL)
    if reserved1 or reserved2:
        raise kerr(EPROTONOSUPPORT)
    dev = ufile.device
    if ufile.disassociated:  # srcu_dereference(file->device->ib_dev) is NULL
        raise kerr(EIO)
    if driver_id != dev.driver_id:
        raise kerr(EINVAL)
    uapi: Uapi = dev.uapi
    methods = uapi.objects.get(object_id)
    method = methods.get(method_id) if methods is not None else None
    if method is None:
        ns = bool((object_id | method_id) & C.UVERBS_ID_NS_MASK)  # a driver's (MLX5_IB_*)
        raise _unsupported(ufile, "ioctl", EPROTONOSUPPORT, object=hex(object_id),
                           method=hex(method_id), driver_ns=ns)  # fmt: skip
    attrs_addr = arg + _HDR_SIZE
    raw_attrs = copy_from_user(attrs_addr, _ATTR_SIZE * num_attrs)
    uattrs = [_ATTR.unpack_from(raw_attrs, _ATTR_SIZE * i) for i in range(num_attrs)]
    kernel = ufile.kernel
    with ufile.lock:
        bundle = AttrBundle(ufile, attrs_addr, uattrs)
        ok = False
        try:
            _run_method(bundle, method)
            ok = True
        finally:
            for uobj, _aid in bundle.new:
                if ok:
                    _commit(bundle, uobj)
                else:
                    _abort(bundle, uobj)
            if kernel.tracer.enabled:  # (a hot path: no call while off)
                trace_rdma_ioctl(kernel.tracer, dev.name, object_id, method_id, num_attrs, ok)
    return 0


def ib_safe_file_access(file: File) -> bool:
    """``include/rdma/ib.h``: the legacy ``write()`` interface is a bidirectional ioctl, so
    only the task that opened the file, with the same credentials, may use it
    (``filp->f_cred == current_cred()``)."""
    return file.f_cred is file.kernel.current.cred


def _verbs_write(file: File[UverbsFile], data: bytes, pos: int) -> int:
    """``ib_uverbs_write``: a legacy command (``ib_uverbs_cmd_hdr`` + body)."""
    ufile = file.private_data
    count = len(data)
    if count < 8:
        raise kerr(EINVAL)
    command, in_words, out_words = struct.unpack_from("<IHH", data)
    dev = ufile.device
    if ufile.disassociated:  # ib_uverbs_write: the device was disassociated
        raise kerr(EIO)
    try:
        wdef = _write_method(dev.uapi, command)
    except OSError as e:
        if e.errno != EOPNOTSUPP:
            raise
        raise _unsupported(ufile, "write", EOPNOTSUPP, command=hex(command)) from None
    bundle = AttrBundle(ufile)
    body = data[8:]
    if wdef.is_ex:
        if count < 8 + 16:
            raise kerr(EINVAL)
        response, p_in, p_out, hdr_reserved = struct.unpack_from("<QHHI", data, 8)
        if (in_words + p_in) * 8 != count - 24:
            raise kerr(EINVAL)
        if in_words * 8 < wdef.req_size:
            raise kerr(ENOSPC)
        if hdr_reserved:
            raise kerr(EINVAL)
        if response:
            if not out_words and not p_out:
                raise kerr(EINVAL)
            if out_words * 8 < wdef.resp_size:
                raise kerr(ENOSPC)
        elif out_words or p_out:
            raise kerr(EINVAL)
        body = data[24:]
        bundle.ucore = Udata(body[: in_words * 8], 0, in_words * 8, response, out_words * 8)
        p_addr = response + out_words * 8 if response else 0
        bundle.driver_udata = Udata(body[in_words * 8 :], 0, p_in * 8, p_addr, p_out * 8)
    else:
        if in_words * 4 != count:
            raise kerr(EINVAL)
        if count < wdef.req_size + 8:
            raise kerr(ENOSPC)
        if out_words * 4 < wdef.resp_size:
            raise kerr(ENOSPC)
        in_len = in_words * 4 - 8
        out_len = out_words * 4
        response = 0
        if wdef.has_udata:
            bundle.driver_udata = Udata(body[wdef.req_size :], 0, in_len - wdef.req_size)
            in_len = wdef.req_size
        if wdef.has_resp:
            (response,) = _U64.unpack_from(body)
            if wdef.has_udata:
                bundle.driver_udata.outlen = out_len - wdef.resp_size
                bundle.driver_udata.out_addr = response + wdef.resp_size
                out_len = wdef.resp_size
        else:
            out_len = 0
        bundle.ucore = Udata(body[:in_len], 0, in_len, response, out_len)
    with ufile.lock:
        ok = False
        try:
            wdef.handler(bundle)
            ok = True
        finally:
            _finalize_write_uobj(bundle, ok)
            tracer = ufile.kernel.tracer
            if tracer.enabled:  # (a hot path: no call while off)
                trace_rdma_write(tracer, dev.name, command, ok)
    return count


# -- the files -----------------------------------------------------------------------------------
def _async_event_file(ufile: UverbsFile) -> File[EventFile]:
    """``ib_uverbs_init_async_event_file``: a new ``[infinibandevent]`` file that takes
    the device's events; the first one of a uverbs file also takes its objects'."""
    file = new_event_file(ufile, comp=False)
    ev = file.private_data
    if ufile.default_async_file is None:
        ufile.default_async_file = ev
    ufile.device.event_handlers.add(ev)
    return file


@dataclass(frozen=True, init=False)
class MrWriteResult:
    """How an incoming RDMA WRITE ended (what the remote peer's completion says).

    ``status`` is an ``ibv_wc_status`` name (``"IBV_WC_SUCCESS"``,
    ``"IBV_WC_REM_ACCESS_ERR"``, ...); ``reason`` says why it failed; ``tlps`` are
    the PCIe memory writes the DMA made (``mockkernel.pci.fabric.Tlp``; none for a
    software device or host memory the fabric does not model).
    """

    status: str
    reason: str = ""
    tlps: tuple[Any, ...] = ()
    errno: int = 0
    #: the processing hint and steering tag the device used (``None``: no TPH)
    ph: int | None = None
    steering_tag: int | None = None

    def __init__(
        self,
        status: str,
        reason: str = "",
        tlps: tuple[Any, ...] = (),
        errno: int = 0,
        ph: int | None = None,
        steering_tag: int | None = None,
    ) -> None:
        # What the frozen dataclass's __init__ does, without its object.__setattr__ per
        # field: one of these ends every RDMA WRITE a device model answers.
        d = self.__dict__
        d["status"] = status
        d["reason"] = reason
        d["tlps"] = tlps
        d["errno"] = errno
        d["ph"] = ph
        d["steering_tag"] = steering_tag

    @property
    def ok(self) -> bool:
        return self.status == "IBV_WC_SUCCESS"


class UverbsFops(FileOperations):
    """``uverbs_fops`` / ``uverbs_mmap_fops`` of one device's ``uverbsN`` node."""

    name = "uverbs"
    ioctls = {RDMA_VERBS_IOCTL: _verbs_ioctl}

    def __init__(self, device: IbDevice) -> None:
        self.device = device

    def open(self, file: File) -> None:
        """``ib_uverbs_open``: a new ``ib_uverbs_file``; the file is not seekable."""
        file.f_mode &= ~(FMODE_LSEEK | FMODE_PREAD | FMODE_PWRITE)
        file.private_data = UverbsFile(self.device)

    def release(self, file: File[UverbsFile]) -> None:
        ufile = file.private_data
        ufile.close()

    def write_check(self, file: File, count: int) -> None:
        """``ib_uverbs_write``'s checks before it reads the buffer (so before a bad
        pointer's ``EFAULT``): refused (``EACCES``) to a caller whose credentials are
        not the opener's -- a forked child, a receiver of the fd over ``SCM_RIGHTS``,
        the opener itself after an exec (``ib_safe_file_access``; the ioctl interface
        has no such check); then ``EINVAL`` for less than a command header."""
        if not ib_safe_file_access(file):
            kernel = file.kernel
            if kernel.tracer.enabled:
                trace_rdma_unsafe_write(kernel.tracer, self.device.name, kernel.current.pid)
            raise kerr(EACCES)
        if count < 8:  # sizeof(struct ib_uverbs_cmd_hdr)
            raise kerr(EINVAL)

    def write(self, file: File, data: bytes, pos: int) -> int:
        """``ib_uverbs_write`` past ``write_check`` (``vfs_write`` ran it)."""
        return _verbs_write(file, data, pos)

    def mmap(self, file: File, vma: Any) -> None:
        """``ib_uverbs_mmap``: ``EIO`` once disassociated, ``ENODEV`` for a driver
        without an ``mmap`` op (the file has no ``mmap``: ``uverbs_fops``), ``EINVAL``
        without a context; else the driver maps what the offset names (queue buffers,
        UAR or clock pages)."""
        ufile: UverbsFile = file.private_data
        if ufile.disassociated:
            raise kerr(EIO)  # srcu_dereference(file->device->ib_dev) is NULL
        if self.device.ops.mmap is None:
            raise kerr(ENODEV)
        with ufile.lock:
            uctx = ufile.ucontext
            if uctx is None:
                raise kerr(EINVAL)
            _qp.uverbs_mmap(uctx, vma)
