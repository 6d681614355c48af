"""uAPI profiles: which revision of the vfio dma-buf TPH uAPI a kernel speaks.

The PCIe TPH dma-buf series (Zhiping Zhang; proposed, not merged) changed its uAPI
between revisions, and released Linux 7.2 has none of it.  A kernel boots with one
**profile** (topology ``[kernel] uapi``, ``mockkernel run --uapi``, the pytest marker
``@pytest.mark.mockkernel(uapi=...)``, ``boot(uapi=...)``); ``kernel.uapi`` is its
:class:`UapiProfile`.  Everything the code asks of a profile is a field or a method
here, so no driver compares profile names:

* :attr:`UapiProfile.dma_buf_tph_flag` -- v1 bundled TPH into
  ``VFIO_DEVICE_FEATURE_DMA_BUF`` (a flag plus one trailing ``entries[]`` element);
* :attr:`UapiProfile.tph_feature` / :attr:`UapiProfile.tph_feature_struct` -- v2 on:
  a SET-only ``VFIO_DEVICE_FEATURE_DMA_BUF_TPH`` index and the struct it takes;
* :attr:`UapiProfile.tph_op` -- the ``dma_buf_ops`` TPH callback the exporter carries
  and importers call (:class:`DmaBufTphOp`: v1/v2 ``get_tph(st_width)``, v8+
  ``get_pci_tph(extended)``); :meth:`UapiProfile.importer_get_tph` makes that call.

**Adding a profile** is one :class:`UapiProfile` value: a built-in one goes into
:data:`BUILTIN_UAPI_PROFILES` below (with a section in ``docs/uapi-profiles.md``,
whose table a test checks against this module), a plugin's is returned through the
``mockkernel_register_uapi_profiles`` hook.  A profile made of the existing pieces
(a feature number, one of the SET structs vfio-pci knows, one of the two ops) needs
nothing else; a new struct or op also needs its handler in the exporter
(``plugins/mockkernel_vfio_pci/profiles.py``).

The registry, :class:`UapiProfiles`, belongs to one kernel (``kernel.uapi_profiles``):
the built-in profiles, then the ones the kernel's plugins registered.
"""

from __future__ import annotations

import ctypes
import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from errno import EOPNOTSUPP
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from .dma_buf import dma_buf_get_pci_tph, dma_buf_get_tph
from .errors import kerr
from .uapi.linux.vfio import VFIO_DEVICE_FEATURE_DMA_BUF, VFIO_DEVICE_FEATURE_MASK
from .uapi.linux.vfio_tph import (
    PROFILES as VFIO_TPH_NAMES,
)
from .uapi.linux.vfio_tph import (
    VFIO_DEVICE_FEATURE_DMA_BUF_TPH,
    VFIO_DMABUF_FLAG_TPH,
    ProfileNames,
    vfio_device_feature_dma_buf_tph,
    vfio_device_feature_dma_buf_tph_v2,
)

if TYPE_CHECKING:
    import pluggy

    from .dma_buf import DmaBuf

__all__ = [
    "BUILTIN_UAPI_PROFILES",
    "DEFAULT_UAPI_PROFILE",
    "LINUX_7_2",
    "TPH_V1",
    "TPH_V2",
    "TPH_V11",
    "DmaBufTphOp",
    "UapiProfile",
    "UapiProfiles",
    "UnknownUapiProfile",
    "markdown_table",
]


class DmaBufTphOp(enum.Enum):
    """The ``dma_buf_ops`` TPH callback of a profile: what exporters carry, importers call.

    The value is the ``DmaBufOps`` member's name.  Both answer ``(steering_tag, ph)``
    and ``EOPNOTSUPP`` when the exporter has no such op or no TPH for the buffer.
    """

    #: v1/v2 ``get_tph(dmabuf, &st, &ph, st_width)``, reached through the core's
    #: ``dma_buf_get_tph(dmabuf, st_width)``: one tag, ``EINVAL`` if it does not fit in
    #: ``st_width`` bits (< 16).  No lock rule was stated (v2's mlx5 called it unlocked).
    GET_TPH = "get_tph"
    #: v8+ ``get_pci_tph(dmabuf, extended, &st, &ph)``, reached through the core's
    #: ``dma_buf_get_pci_tph(dmabuf, extended)``: the 16-bit extended ST when
    #: ``extended``, else the 8-bit ST, each only if valid.  Called with the reservation
    #: lock held (the core asserts it); the value is valid until the exporter's next
    #: ``invalidate_mappings``.
    GET_PCI_TPH = "get_pci_tph"

    @property
    def resv_held(self) -> bool:
        """Whether importers hold ``dmabuf.resv`` around the call (the core asserts it)."""
        return self is DmaBufTphOp.GET_PCI_TPH

    @property
    def signature(self) -> str:
        """The op as the series' ``dma_buf_ops`` spells it (for documentation)."""
        if self is DmaBufTphOp.GET_TPH:
            return "get_tph(dmabuf, st_width)"
        return "get_pci_tph(dmabuf, extended)"

    def call(self, dmabuf: DmaBuf, extended: bool) -> tuple[int, int]:
        """The core entry point of this op, for an importer whose requester is ``extended``.

        ``get_tph`` takes a width: 16 for an extended-TPH requester, 8 otherwise (what
        v2's mlx5 passed).  The caller holds ``dmabuf.resv`` iff :attr:`resv_held`.
        """
        if self is DmaBufTphOp.GET_TPH:
            return dma_buf_get_tph(dmabuf, 16 if extended else 8)
        return dma_buf_get_pci_tph(dmabuf, extended)


@dataclass(frozen=True, eq=False)
class UapiProfile:
    """One uAPI a kernel can speak: what the TPH uAPI and the dma-buf TPH op mean under it.

    Frozen data; each profile is one constant, so profiles compare by identity.  For
    code written when ``kernel.uapi`` was a string, a profile also compares equal to
    its name (``kernel.uapi == "tph-v2"``) and prints as it; new code uses ``.name``
    and the fields below.
    """

    #: what ``[kernel] uapi``, ``--uapi`` and ``boot(uapi=...)`` call it
    name: str
    #: one line for users (``mockkernel run --help``, docs)
    summary: str
    #: the TPH series revision this profile models; ``None``: a released kernel
    #: without the series
    revision: int | None = None
    #: when that revision was posted (``YYYY-MM-DD``; documentation)
    posted: str = ""
    #: the bit of ``vfio_device_feature_dma_buf.flags`` that bundles TPH into
    #: ``VFIO_DEVICE_FEATURE_DMA_BUF`` (v1's ``VFIO_DMABUF_FLAG_TPH``): with it set the
    #: kernel reads ``nr_ranges + 1`` entries and the last is a ``vfio_region_dma_tph``.
    #: 0: nothing is bundled and ``flags`` must be 0, as in Linux 7.2.
    dma_buf_tph_flag: int = 0
    #: the ``VFIO_DEVICE_FEATURE`` index of ``VFIO_DEVICE_FEATURE_DMA_BUF_TPH`` (SET only);
    #: ``None``: no such feature, the index answers ``ENOTTY`` like any unknown one
    tph_feature: int | None = None
    #: the struct that feature's SET takes (after ``struct vfio_device_feature``); the
    #: exporter's handler is chosen by it (v2's 8-byte or v7-v11's 12-byte struct)
    tph_feature_struct: type[ctypes.Structure] | None = None
    #: the ``dma_buf_ops`` TPH callback exporters carry and importers call; ``None``:
    #: the dma-buf core has no TPH hook, importers use no TPH from an exporter
    tph_op: DmaBufTphOp | None = None
    #: the profile's uAPI names as its C diff spells them (constants and ctypes structs
    #: of :mod:`mockkernel.uapi.linux.vfio_tph`), for programs and tests
    c_names: ProfileNames = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip():
            raise ValueError(f"a uAPI profile needs a name, got {self.name!r}")
        if (self.tph_feature is None) != (self.tph_feature_struct is None):
            raise ValueError(f"uAPI profile {self.name!r}: tph_feature and its struct go together")
        if self.tph_feature is not None and not (
            VFIO_DEVICE_FEATURE_DMA_BUF < self.tph_feature <= VFIO_DEVICE_FEATURE_MASK
        ):
            raise ValueError(
                f"uAPI profile {self.name!r}: tph_feature {self.tph_feature} is not an index "
                f"Linux 7.2 leaves free ({VFIO_DEVICE_FEATURE_DMA_BUF + 1}.."
                f"{VFIO_DEVICE_FEATURE_MASK})"
            )
        if self.dma_buf_tph_flag & (self.dma_buf_tph_flag - 1) or self.dma_buf_tph_flag >> 32:
            raise ValueError(f"uAPI profile {self.name!r}: dma_buf_tph_flag is not one u32 bit")
        object.__setattr__(self, "c_names", MappingProxyType(dict(self.c_names)))

    # -- what the vfio-pci exporter asks ----------------------------------------------------
    @property
    def dma_buf_flags(self) -> int:
        """The bits ``vfio_device_feature_dma_buf.flags`` accepts (any other: ``EINVAL``)."""
        return self.dma_buf_tph_flag

    @property
    def tph_bundled(self) -> bool:
        """Whether ``VFIO_DEVICE_FEATURE_DMA_BUF`` itself carries TPH (v1)."""
        return bool(self.dma_buf_tph_flag)

    # -- what importers ask -----------------------------------------------------------------
    def importer_get_tph(self, dmabuf: DmaBuf, extended: bool) -> tuple[int, int]:
        """The exporter's ``(steering_tag, ph)`` for an importer, the way this profile's
        importers ask (:meth:`DmaBufTphOp.call`); ``EOPNOTSUPP`` if the profile has no op.

        Hold ``dmabuf.resv`` iff ``tph_op.resv_held``.
        """
        if self.tph_op is None:
            raise kerr(EOPNOTSUPP)  # no TPH hook in this dma-buf core
        return self.tph_op.call(dmabuf, extended)

    # -- a name for old code ----------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return other == self.name
        return self is other

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name


def _names(name: str) -> ProfileNames:
    return VFIO_TPH_NAMES.get(name, MappingProxyType({}))


LINUX_7_2: Final = UapiProfile(
    name="linux-7.2",
    summary="released Linux 7.2: no TPH; feature 13 is ENOTTY like any unknown index",
)
TPH_V1: Final = UapiProfile(
    name="tph-v1",
    summary="TPH v1 (2026-04-20): VFIO_DMABUF_FLAG_TPH plus one trailing entries[] "
    "element; dma_buf_ops.get_tph(st_width)",
    revision=1,
    posted="2026-04-20",
    dma_buf_tph_flag=VFIO_DMABUF_FLAG_TPH,
    tph_op=DmaBufTphOp.GET_TPH,
    c_names=_names("tph-v1"),
)
TPH_V2: Final = UapiProfile(
    name="tph-v2",
    summary="TPH v2 (2026-04-30): SET-only feature 13 with an 8-byte "
    "{fd, steering_tag, ph, reserved}; dma_buf_ops.get_tph(st_width)",
    revision=2,
    posted="2026-04-30",
    tph_feature=VFIO_DEVICE_FEATURE_DMA_BUF_TPH,
    tph_feature_struct=vfio_device_feature_dma_buf_tph_v2,
    tph_op=DmaBufTphOp.GET_TPH,
    c_names=_names("tph-v2"),
)
TPH_V11: Final = UapiProfile(
    name="tph-v11",
    summary="TPH v11 (2026-07-02, uAPI as v7): SET-only feature 13 with a 12-byte "
    "{fd, flags ST|ST_EXT, st_ext, st, ph}; dma_buf_ops.get_pci_tph(extended)",
    revision=11,
    posted="2026-07-02",
    tph_feature=VFIO_DEVICE_FEATURE_DMA_BUF_TPH,
    tph_feature_struct=vfio_device_feature_dma_buf_tph,
    tph_op=DmaBufTphOp.GET_PCI_TPH,
    c_names=_names("tph-v11"),
)

#: The profiles every kernel has, in documentation order.  A new built-in profile is
#: one more constant here (and its section in ``docs/uapi-profiles.md``).
BUILTIN_UAPI_PROFILES: Final[tuple[UapiProfile, ...]] = (LINUX_7_2, TPH_V1, TPH_V2, TPH_V11)

#: What a kernel boots with when nothing names a profile (``[kernel] uapi`` default).
DEFAULT_UAPI_PROFILE: Final = TPH_V11.name


class UnknownUapiProfile(ValueError):
    """No profile has this name; the message lists the ones that exist."""


class UapiProfiles:
    """The uAPI profiles one kernel can boot with: the built-in ones, then plugins' ones.

    Read-only once made.  ``get(name)`` is the one place a profile name is looked up.
    """

    def __init__(self, extra: Iterable[UapiProfile] = ()) -> None:
        by_name: dict[str, UapiProfile] = {}
        for profile in (*BUILTIN_UAPI_PROFILES, *extra):
            if not isinstance(profile, UapiProfile):
                raise TypeError(f"not a UapiProfile: {profile!r}")
            if profile.name in by_name:
                raise ValueError(f"uAPI profile {profile.name!r} registered twice")
            by_name[profile.name] = profile
        self._by_name: Mapping[str, UapiProfile] = MappingProxyType(by_name)

    @classmethod
    def from_plugins(cls, pm: pluggy.PluginManager) -> UapiProfiles:
        """The built-in profiles plus each ``mockkernel_register_uapi_profiles`` one."""
        extra: list[UapiProfile] = []
        register: Callable[[UapiProfile], None] = extra.append
        pm.hook.mockkernel_register_uapi_profiles(register=register)
        return cls(extra)

    def get(self, name: str) -> UapiProfile:
        """The profile called ``name``; :class:`UnknownUapiProfile` names the known ones."""
        profile = self._by_name.get(name) if isinstance(name, str) else None
        if profile is None:
            raise UnknownUapiProfile(f"unknown uAPI profile {name!r}: one of {', '.join(self)}")
        return profile

    def names(self) -> tuple[str, ...]:
        """Every profile's name: the built-in ones first, then in registration order."""
        return tuple(self._by_name)

    @property
    def default(self) -> UapiProfile:
        """The profile a kernel boots with when nothing names one."""
        return self._by_name[DEFAULT_UAPI_PROFILE]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def profiles(self) -> tuple[UapiProfile, ...]:
        """Every profile, in the order of :meth:`names`."""
        return tuple(self._by_name.values())

    def __repr__(self) -> str:
        return f"<UapiProfiles {', '.join(self)}>"


# -- documentation --------------------------------------------------------------------------
def _feature_cell(p: UapiProfile) -> str:
    if p.tph_feature is None or p.tph_feature_struct is None:
        return "none (`ENOTTY`)"
    size = ctypes.sizeof(p.tph_feature_struct)
    return f"{p.tph_feature}, SET only, {size}-byte struct"


def _row(p: UapiProfile) -> str:
    name = f"`{p.name}`" + (" (default)" if p.name == DEFAULT_UAPI_PROFILE else "")
    series = "none (released)" if p.revision is None else f"v{p.revision}, {p.posted}"
    bundled = "no"
    if p.tph_bundled:
        flag = next(
            (f"`{k}`" for k, v in p.c_names.items() if "FLAG" in k and v == p.dma_buf_tph_flag),
            f"flag `{p.dma_buf_tph_flag:#x}`",
        )
        bundled = f"{flag} + one trailing `entries[]` element"
    if p.tph_op is None:
        op = "none"
    else:
        lock = "resv held" if p.tph_op.resv_held else "no lock rule"
        op = f"`{p.tph_op.signature}`, {lock}"
    return f"| {name} | {series} | {_feature_cell(p)} | {bundled} | {op} |"


def markdown_table(profiles: Iterable[UapiProfile]) -> str:
    """The profile table of ``docs/uapi-profiles.md``, made from the profiles' fields."""
    head = (
        "| profile | TPH series | `VFIO_DEVICE_FEATURE_DMA_BUF_TPH` "
        "| TPH in `VFIO_DEVICE_FEATURE_DMA_BUF` | `dma_buf_ops` TPH op importers call |\n"
        "|---|---|---|---|---|\n"
    )
    return head + "".join(_row(p) + "\n" for p in profiles)
