"""uAPI profiles: which TPH uAPI the driver speaks, as one table of data.

The TPH series changed its uAPI between revisions (see ``docs/uapi-profiles.md``).
A profile is not a copy of the driver: it is a row saying

* which bits of ``vfio_device_feature_dma_buf.flags`` ``VFIO_DEVICE_FEATURE_DMA_BUF``
  accepts, and whether ``VFIO_DMABUF_FLAG_TPH`` makes it read one trailing
  ``entries[]`` element as TPH metadata (``tph-v1``);
* which extra ``VFIO_DEVICE_FEATURE`` indexes exist and their handler (the adapters
  in :mod:`.tph`); an index that is absent answers ``ENOTTY`` like any unknown one;
* which TPH op the exporter's ``dma_buf_ops`` carries (``get_tph`` or ``get_pci_tph``).

``kernel.uapi`` (topology ``[kernel] uapi``, ``mockkernel run --uapi``, the fixture
marker ``@pytest.mark.mockkernel(uapi=...)``) picks the row.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from mockkernel.driver import DmaBuf
from mockkernel.uapi.linux.vfio_tph import (
    VFIO_DEVICE_FEATURE_DMA_BUF_TPH,
    VFIO_DMABUF_FLAG_TPH,
    vfio_device_feature_dma_buf_tph,
    vfio_device_feature_dma_buf_tph_v2,
    vfio_device_feature_dma_buf_v1,
)

from .core import FeatureHandler
from .tph import feature_dma_buf_tph_v2, feature_dma_buf_tph_v11, get_pci_tph, get_tph

__all__ = ["DEFAULT_PROFILE", "PROFILES", "UapiProfile", "get_profile"]

TphOp = Callable[[DmaBuf, bool], tuple[int, int]] | Callable[[DmaBuf, int], tuple[int, int]]


@dataclass(frozen=True)
class UapiProfile:
    """One row of the profile table."""

    name: str
    #: one line for ``mockkernel`` users
    summary: str
    #: bits of ``vfio_device_feature_dma_buf.flags`` accepted (any other -> EINVAL)
    dma_buf_flags: int = 0
    #: the flag that means "one more entries[] element carries TPH" (0: no such flag)
    dma_buf_tph_flag: int = 0
    #: extra VFIO_DEVICE_FEATURE indexes of this profile
    features: Mapping[int, FeatureHandler] = field(default_factory=dict)
    #: TPH op(s) of the exporter's dma_buf_ops, by member name
    dma_buf_ops: Mapping[str, TphOp] = field(default_factory=dict)
    #: the uAPI structs userspace fills, by C name (documentation and tests)
    structs: Mapping[str, type[ctypes.Structure]] = field(default_factory=dict)


PROFILES: Mapping[str, UapiProfile] = MappingProxyType(
    {
        p.name: p
        for p in (
            UapiProfile(
                name="linux-7.2",
                summary="released Linux 7.2: no TPH; feature 13 is ENOTTY like any unknown index",
            ),
            UapiProfile(
                name="tph-v1",
                summary="TPH v1 (2026-04-20): VFIO_DMABUF_FLAG_TPH plus one trailing entries[] "
                "element; dma_buf_ops.get_tph(st_width)",
                dma_buf_flags=VFIO_DMABUF_FLAG_TPH,
                dma_buf_tph_flag=VFIO_DMABUF_FLAG_TPH,
                dma_buf_ops={"get_tph": get_tph},
                structs={"vfio_device_feature_dma_buf": vfio_device_feature_dma_buf_v1},
            ),
            UapiProfile(
                name="tph-v2",
                summary="TPH v2 (2026-04-30): SET-only feature 13 with an 8-byte "
                "{fd, steering_tag, ph, reserved}; dma_buf_ops.get_tph(st_width)",
                features={VFIO_DEVICE_FEATURE_DMA_BUF_TPH: feature_dma_buf_tph_v2},
                dma_buf_ops={"get_tph": get_tph},
                structs={"vfio_device_feature_dma_buf_tph": vfio_device_feature_dma_buf_tph_v2},
            ),
            UapiProfile(
                name="tph-v11",
                summary="TPH v11 (2026-07-02, uAPI as v7): SET-only feature 13 with a 12-byte "
                "{fd, flags ST|ST_EXT, st_ext, st, ph}; dma_buf_ops.get_pci_tph(extended)",
                features={VFIO_DEVICE_FEATURE_DMA_BUF_TPH: feature_dma_buf_tph_v11},
                dma_buf_ops={"get_pci_tph": get_pci_tph},
                structs={"vfio_device_feature_dma_buf_tph": vfio_device_feature_dma_buf_tph},
            ),
        )
    }
)

DEFAULT_PROFILE = "tph-v11"


def get_profile(name: str) -> UapiProfile:
    """The profile called ``name``; ``ValueError`` names the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown uAPI profile {name!r}: one of {', '.join(PROFILES)}") from None
