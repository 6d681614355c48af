"""Generic netlink: families, commands, ``nlctrl`` (``net/netlink/genetlink.c``).

A family is a :class:`GenlFamily` with a table of :class:`GenlOp`; registering it
gives it an id (``nlctrl`` is ``GENL_ID_CTRL``, the rest from ``GENL_START_ALLOC``).
``genl_rcv_msg`` checks, in the kernel's order: the family id (``ENOENT``), the
header length (``EINVAL``), the command for a do or a dump (``EOPNOTSUPP``),
``GENL_ADMIN_PERM`` (the mock's programs hold ``CAP_NET_ADMIN``), then the
attributes against the op's policy.  A ``doit`` returns the reply's attributes (or
``None`` for no reply); a ``dumpit`` returns one attribute blob per message.
Per-socket family data (``genl_sk_priv_get``) is made on first use and destroyed
when the socket is released.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from errno import EINVAL, ENOENT, EOPNOTSUPP
from typing import Any

from ..uapi.linux.genetlink import (
    CTRL_ATTR_FAMILY_ID,
    CTRL_ATTR_FAMILY_NAME,
    CTRL_ATTR_HDRSIZE,
    CTRL_ATTR_MAX,
    CTRL_ATTR_MAXATTR,
    CTRL_ATTR_MCAST_GROUPS,
    CTRL_ATTR_MCAST_GRP_ID,
    CTRL_ATTR_MCAST_GRP_NAME,
    CTRL_ATTR_OP_FLAGS,
    CTRL_ATTR_OP_ID,
    CTRL_ATTR_OPS,
    CTRL_ATTR_VERSION,
    CTRL_CMD_GETFAMILY,
    CTRL_CMD_NEWFAMILY,
    GENL_CMD_CAP_DO,
    GENL_CMD_CAP_DUMP,
    GENL_CMD_CAP_HASPOL,
    GENL_HDRLEN,
    GENL_ID_CTRL,
    GENL_NAMSIZ,
    GENL_START_ALLOC,
)
from ..uapi.linux.netlink import NETLINK_GENERIC, NLM_F_DUMP, NLM_F_MULTI, NLMSG_HDRLEN
from .netlink import (
    AttrSet,
    Msg,
    NetlinkSock,
    NetlinkTable,
    Nla,
    NlaType,
    NlError,
    Policy,
    nla_put_nested_noflag,
    nla_put_string,
    nla_put_u16,
    nla_put_u32,
    nlmsg_put,
    parse_attrs,
)

__all__ = ["GenlFamily", "GenlInfo", "GenlOp", "GenlRegistry", "genlmsg_multicast"]

_GENLHDR = struct.Struct("=BBH")
_RESERVED_GROUPS = frozenset({GENL_ID_CTRL, GENL_ID_CTRL + 1, GENL_ID_CTRL + 2})
#: an op without a policy: strict parsing rejects every attribute ("Unknown attribute type")
_NO_ATTRS = Policy(0)


@dataclass
class GenlInfo:
    """``struct genl_info``: the request, its attributes and the sender's socket."""

    family: GenlFamily
    msg: Msg
    cmd: int
    version: int
    attrs: AttrSet

    @property
    def sock(self) -> NetlinkSock:
        return self.msg.sock

    def sk_priv(self) -> Any:
        """``genl_sk_priv_get``: this family's data for the sender's socket."""
        sock = self.msg.sock
        fam = self.family
        priv = sock.priv.get(fam.name)
        if priv is None:
            assert fam.sock_priv_init is not None and fam.sock_priv_destroy is not None
            priv = fam.sock_priv_init(sock)
            sock.priv[fam.name] = priv
            sock.destructors[fam.name] = fam.sock_priv_destroy
        return priv


DoIt = Callable[[GenlInfo], bytes | bytearray | None]
DumpIt = Callable[[GenlInfo], list[bytes]]


@dataclass
class GenlOp:
    """One command (``struct genl_split_ops``, the do and the dump side together)."""

    cmd: int
    doit: DoIt | None = None
    dumpit: DumpIt | None = None
    policy: Policy | None = None
    dump_policy: Policy | None = None
    flags: int = 0  # GENL_ADMIN_PERM, ...
    strict: bool = True  # False: GENL_DONT_VALIDATE_STRICT (liberal parsing)
    reply_cmd: int | None = None  # the command of the replies (default: cmd)
    #: the dump's messages carry ``NLM_F_MULTI`` (``genlmsg_put``); the YNL-generated
    #: families (netdev) put them with ``genlmsg_iput``: flags 0, only ``NLMSG_DONE``
    #: is ``NLM_F_MULTI``
    dump_multi: bool = True


@dataclass
class GenlFamily:
    name: str
    version: int
    maxattr: int
    ops: dict[int, GenlOp]
    hdrsize: int = 0
    mcgrps: tuple[str, ...] = ()
    #: indexes into ``mcgrps`` whose notifications the mock never sends: joining one is
    #: refused with ``EOPNOTSUPP`` (not modelled) rather than left silent
    mcgrps_not_modelled: frozenset[int] = frozenset()
    sock_priv_init: Callable[[NetlinkSock], Any] | None = None
    sock_priv_destroy: Callable[[Any], None] | None = None
    id: int = 0
    mcgrp_offset: int = 0


class GenlRegistry:
    """The kernel's generic netlink families (``genl_fam_idr``)."""

    def __init__(self) -> None:
        self.by_id: dict[int, GenlFamily] = {}
        self.by_name: dict[str, GenlFamily] = {}
        self._next_id = GENL_START_ALLOC
        self._next_grp = 2  # mc_group_start: 0, 1 and nlctrl's GENL_ID_CTRL are taken
        #: group id -> what is not modelled (NetlinkSock refuses to join these)
        self.unmodelled_groups: dict[int, str] = {}
        self.register(_ctrl_family(self))

    def register(self, family: GenlFamily) -> GenlFamily:
        """``genl_register_family``: ``EEXIST`` on a duplicate name."""
        if family.name in self.by_name:
            raise NlError(17, f"family {family.name!r} exists")  # EEXIST
        if family.name == "nlctrl":
            family.id = GENL_ID_CTRL
            family.mcgrp_offset = GENL_ID_CTRL  # genl_ctrl's "notify" group is 0x10
        else:
            family.id = self._next_id
            self._next_id += 1
            # genl_allocate_reserve_groups: a run of free group ids, past the reserved
            # ones (GENL_ID_CTRL, GENL_ID_VFS_DQUOT, GENL_ID_PMCRAID)
            n = len(family.mcgrps)
            while n and set(range(self._next_grp, self._next_grp + n)) & _RESERVED_GROUPS:
                self._next_grp += 1
            family.mcgrp_offset = self._next_grp
            self._next_grp += n
        for index in family.mcgrps_not_modelled:
            gid = family.mcgrp_offset + index
            self.unmodelled_groups[gid] = f"{family.name} {family.mcgrps[index]} notifications"
        self.by_id[family.id] = family
        self.by_name[family.name] = family
        return family

    def rcv_msg(self, msg: Msg) -> bool:
        """``genl_rcv_msg``: True when a dump was queued (its ``NLMSG_DONE`` ends it)."""
        family = self.by_id.get(msg.type)
        if family is None:
            raise NlError(ENOENT)
        hdrlen = GENL_HDRLEN + family.hdrsize
        if len(msg.data) < NLMSG_HDRLEN + hdrlen:
            raise NlError(EINVAL)
        cmd, version, _reserved = _GENLHDR.unpack_from(msg.data, NLMSG_HDRLEN)
        dump = msg.flags & NLM_F_DUMP == NLM_F_DUMP
        op = family.ops.get(cmd)
        if op is None or (op.dumpit if dump else op.doit) is None:
            raise NlError(EOPNOTSUPP)
        # GENL_ADMIN_PERM: the mock's programs run with CAP_NET_ADMIN.
        policy = op.dump_policy if dump else op.policy
        base = NLMSG_HDRLEN + hdrlen
        if dump and not op.strict:
            attrs = AttrSet(offset=base)  # GENL_DONT_VALIDATE_DUMP
        else:
            # genl_family_rcv_msg_attrs_parse: without a policy the op takes no attribute
            attrs = parse_attrs(msg.data[base:], base, policy or _NO_ATTRS, op.strict)
            msg.extack_msg = attrs.warning
        info = GenlInfo(family, msg, cmd, version, attrs)
        reply_cmd = op.reply_cmd if op.reply_cmd is not None else cmd
        sock = msg.sock
        if dump:
            assert op.dumpit is not None
            # netlink_dump: an error of the dump callback ends it in NLMSG_DONE's errno
            done_err: NlError | None = None
            try:
                blobs = op.dumpit(info)
            except NlError as e:
                blobs, done_err = [], e
            hdr = _GENLHDR.pack(reply_cmd, family.version, 0)
            mflags = NLM_F_MULTI if op.dump_multi else 0
            sock.queue_dump(
                [nlmsg_put(family.id, mflags, msg.seq, msg.portid, hdr + b) for b in blobs],
                msg.seq,
                done_err,
            )
            return True
        assert op.doit is not None
        reply = op.doit(info)
        if reply is not None:
            hdr = _GENLHDR.pack(reply_cmd, family.version, 0)
            sock.queue(nlmsg_put(family.id, 0, msg.seq, msg.portid, hdr + bytes(reply)))
        return False


def genlmsg_multicast(
    table: NetlinkTable, family: GenlFamily, group: int, cmd: int, payload: bytes
) -> int:
    """``genlmsg_multicast``: one notification to every generic netlink socket that is a
    member of ``family``'s multicast group ``group`` (an index into ``mcgrps``); returns
    how many sockets got it.  Notifications carry seq 0 and port 0."""
    gid = family.mcgrp_offset + group
    msg = nlmsg_put(family.id, 0, 0, 0, _GENLHDR.pack(cmd, family.version, 0) + payload)
    return table.broadcast(NETLINK_GENERIC, gid, msg)


# -- nlctrl --
_CTRL_POLICY = Policy(
    CTRL_ATTR_MAX,
    {
        CTRL_ATTR_FAMILY_ID: Nla(NlaType.U16),
        CTRL_ATTR_FAMILY_NAME: Nla(NlaType.NUL_STRING, len=GENL_NAMSIZ - 1),
        CTRL_ATTR_VERSION: Nla(NlaType.U32),
        CTRL_ATTR_HDRSIZE: Nla(NlaType.U32),
        CTRL_ATTR_MAXATTR: Nla(NlaType.U32),
        CTRL_ATTR_OPS: Nla(NlaType.NESTED),
        CTRL_ATTR_MCAST_GROUPS: Nla(NlaType.NESTED),
    },
)


def ctrl_fill_info(family: GenlFamily) -> bytes:
    """``ctrl_fill_info``: name, id, version, hdrsize, maxattr, ops, multicast groups."""
    out = bytearray()
    nla_put_string(out, CTRL_ATTR_FAMILY_NAME, family.name)
    nla_put_u16(out, CTRL_ATTR_FAMILY_ID, family.id)
    nla_put_u32(out, CTRL_ATTR_VERSION, family.version)
    nla_put_u32(out, CTRL_ATTR_HDRSIZE, family.hdrsize)
    nla_put_u32(out, CTRL_ATTR_MAXATTR, family.maxattr)
    # the ops and groups nests are opened with nla_nest_start_noflag (no NLA_F_NESTED)
    if family.ops:
        ops = bytearray()
        for i, op in enumerate(sorted(family.ops.values(), key=lambda o: o.cmd), start=1):
            flags = op.flags
            if op.doit is not None:
                flags |= GENL_CMD_CAP_DO
            if op.dumpit is not None:
                flags |= GENL_CMD_CAP_DUMP
            if op.policy is not None or op.dump_policy is not None:
                flags |= GENL_CMD_CAP_HASPOL
            one = bytearray()
            nla_put_u32(one, CTRL_ATTR_OP_ID, op.cmd)
            nla_put_u32(one, CTRL_ATTR_OP_FLAGS, flags)
            nla_put_nested_noflag(ops, i, bytes(one))
        nla_put_nested_noflag(out, CTRL_ATTR_OPS, bytes(ops))
    if family.mcgrps:
        grps = bytearray()
        for i, name in enumerate(family.mcgrps):
            one = bytearray()
            nla_put_u32(one, CTRL_ATTR_MCAST_GRP_ID, family.mcgrp_offset + i)
            nla_put_string(one, CTRL_ATTR_MCAST_GRP_NAME, name)
            nla_put_nested_noflag(grps, i + 1, bytes(one))
        nla_put_nested_noflag(out, CTRL_ATTR_MCAST_GROUPS, bytes(grps))
    return bytes(out)


def _ctrl_family(reg: GenlRegistry) -> GenlFamily:
    def getfamily(info: GenlInfo) -> bytes:
        # ctrl_getfamily: the id is looked up, then the name (when given) replaces it
        attrs = info.attrs
        family: GenlFamily | None = None
        err = EINVAL
        if CTRL_ATTR_FAMILY_ID in attrs:
            family = reg.by_id.get(attrs.get(CTRL_ATTR_FAMILY_ID))
            err = ENOENT
        if CTRL_ATTR_FAMILY_NAME in attrs:
            family = reg.by_name.get(attrs.get(CTRL_ATTR_FAMILY_NAME))
            err = ENOENT
        if family is None:
            raise NlError(err)
        return ctrl_fill_info(family)

    def dumpfamily(info: GenlInfo) -> list[bytes]:
        return [ctrl_fill_info(f) for f in sorted(reg.by_id.values(), key=lambda f: f.id)]

    return GenlFamily(
        name="nlctrl",
        version=2,
        maxattr=0,  # per-op policies: the family has none (CTRL_ATTR_MAXATTR 0)
        ops={
            CTRL_CMD_GETFAMILY: GenlOp(
                CTRL_CMD_GETFAMILY,
                doit=getfamily,
                dumpit=dumpfamily,
                policy=_CTRL_POLICY,
                strict=False,
                reply_cmd=CTRL_CMD_NEWFAMILY,
            )
        },
        mcgrps=("notify",),
    )
