"""PROPOSED, NOT MERGED: the TPH additions to linux/vfio.h of the "vfio dma-buf TPH" series.

Zhiping Zhang's series lets a VFIO user attach PCIe TPH metadata (a steering
tag and a processing hint) to a dma-buf exported with
``VFIO_DEVICE_FEATURE_DMA_BUF``, for importers such as mlx5 to use when they
DMA into the device.  No released kernel has any of this (status 2026-07-13:
v11 posted, not queued; feature index 13 is unassigned in 7.2), and the uAPI
changed shape between revisions, so each revision the mock can speak is a
*profile* with its own clearly marked section below:

``tph-v1`` (2026-04-20, ``20260420183920.3626389-*``)
    ``VFIO_DMABUF_FLAG_TPH`` in ``vfio_device_feature_dma_buf.flags``; the
    ``dma_ranges[]`` member is renamed ``entries[]`` and one extra entry after
    the ``nr_ranges`` DMA ranges carries the TPH values, through a
    ``vfio_region_dma_tph`` view that overlays ``vfio_region_dma_range``.
    Rejected in review (Alex Williamson: an array "implicitly one-off from
    what's actually there").
``tph-v2`` (2026-04-30, ``20260430200704.352228-*``)
    A separate SET-only feature ``VFIO_DEVICE_FEATURE_DMA_BUF_TPH`` (13) with
    an 8-byte ``{__s32 dmabuf_fd; __u16 steering_tag; __u8 ph; __u8 reserved;}``.
``tph-v11`` (2026-07-02, ``20260702181025.2694961-*``; the layout is the same
from v7 on)
    Feature 13 with a 12-byte struct carrying the 8-bit ST and the 16-bit
    extended ST separately, each with a validity bit in ``flags``
    (``VFIO_DMA_BUF_TPH_ST``, ``VFIO_DMA_BUF_TPH_ST_EXT``).

Python names: C names are kept where they are unique.  Where a profile reuses a
C struct name that upstream linux/vfio.h or another profile also defines, the
class gets the profile as a suffix:

=================================== ========= =====================================
C name                              profile   Python class
=================================== ========= =====================================
``vfio_region_dma_range``           tph-v1    ``vfio_region_dma_range_v1``
``vfio_device_feature_dma_buf``     tph-v1    ``vfio_device_feature_dma_buf_v1``
``vfio_device_feature_dma_buf_tph`` tph-v2    ``vfio_device_feature_dma_buf_tph_v2``
``vfio_device_feature_dma_buf_tph`` tph-v11   ``vfio_device_feature_dma_buf_tph``
=================================== ========= =====================================

``PROFILES`` maps each profile to its names *as C spells them*, so a driver
configured for a profile can look up ``PROFILES["tph-v2"]
["vfio_device_feature_dma_buf_tph"]``.  There is no header to compile against:
``tests/test_abi.py`` checks these layouts against the sizes and offsets stated
in the patches and in the project's kernel reference, and against the patch
text compiled as C.
"""

import ctypes
from collections.abc import Mapping
from ctypes import c_int32, c_uint8, c_uint16, c_uint32, c_uint64
from types import MappingProxyType
from typing import Final, TypeAlias

__all__ = [
    "PROFILES",
    "VFIO_DEVICE_FEATURE_DMA_BUF_TPH",
    "VFIO_DMABUF_FLAG_TPH",
    "VFIO_DMA_BUF_TPH_ST",
    "VFIO_DMA_BUF_TPH_ST_EXT",
    "ProfileNames",
    "vfio_device_feature_dma_buf_tph",
    "vfio_device_feature_dma_buf_tph_v2",
    "vfio_device_feature_dma_buf_v1",
    "vfio_region_dma_range_v1",
    "vfio_region_dma_tph",
]

#: No upstream header: tests/test_abi.py checks this module against the patches.
_HEADER = None

# =====================================================================================
# Profile tph-v1: "[PATCH v1 1/2] vfio: add callback to get tph info for dma-buf"
# (2026-04-20).  A flag plus one trailing entries[] element; diff of linux/vfio.h:
#
#   enum vfio_device_feature_dma_buf_flags { VFIO_DMABUF_FLAG_TPH = 1 << 0, };
#   struct vfio_region_dma_tph { __u16 steering_tag; __u8 ph; __u8 reserved;
#                                __u32 reserved2; };
#   struct vfio_region_dma_range { union { __u64 offset;
#                                          struct vfio_region_dma_tph tph; };
#                                  union { __u64 length; __u64 reserved; }; };
#   struct vfio_device_feature_dma_buf { ...; struct vfio_region_dma_range entries[]; };
#
# With VFIO_DMABUF_FLAG_TPH set the kernel reads nr_ranges + 1 entries and takes
# steering_tag and ph from entries[nr_ranges].tph.
# =====================================================================================

# enum vfio_device_feature_dma_buf_flags
VFIO_DMABUF_FLAG_TPH = 1 << 0


class vfio_region_dma_tph(ctypes.Structure):
    """tph-v1: the TPH view of the extra trailing ``entries[]`` element (8 bytes)."""

    _fields_ = [
        ("steering_tag", c_uint16),
        ("ph", c_uint8),
        ("reserved", c_uint8),
        ("reserved2", c_uint32),
    ]


class _vfio_region_dma_range_v1_u0(ctypes.Union):
    _fields_ = [
        ("offset", c_uint64),
        ("tph", vfio_region_dma_tph),
    ]


class _vfio_region_dma_range_v1_u1(ctypes.Union):
    _fields_ = [
        ("length", c_uint64),
        ("reserved", c_uint64),
    ]


class vfio_region_dma_range_v1(ctypes.Structure):
    """tph-v1 ``struct vfio_region_dma_range``: a DMA range, or the TPH entry (16 bytes)."""

    _anonymous_ = ("_u0", "_u1")
    _fields_ = [
        ("_u0", _vfio_region_dma_range_v1_u0),  # union { offset; tph; }
        ("_u1", _vfio_region_dma_range_v1_u1),  # union { length; reserved; }
    ]


class vfio_device_feature_dma_buf_v1(ctypes.Structure):
    """tph-v1 ``struct vfio_device_feature_dma_buf``: ``dma_ranges`` renamed ``entries``."""

    _fields_ = [
        ("region_index", c_uint32),
        ("open_flags", c_uint32),
        ("flags", c_uint32),  # 0 or VFIO_DMABUF_FLAG_TPH
        ("nr_ranges", c_uint32),  # DMA ranges; the TPH entry is not counted
        ("entries", vfio_region_dma_range_v1 * 0),
    ]


# =====================================================================================
# Profiles tph-v2 and tph-v11 share the feature index.
# =====================================================================================

VFIO_DEVICE_FEATURE_DMA_BUF_TPH = 13

# =====================================================================================
# Profile tph-v2: "[PATCH v2 1/2] vfio: add dma-buf get_tph callback and DMA_BUF_TPH
# feature" (2026-04-30).  SET-only feature 13; reserved must be 0 (else -EINVAL).
# =====================================================================================


class vfio_device_feature_dma_buf_tph_v2(ctypes.Structure):
    """tph-v2 ``struct vfio_device_feature_dma_buf_tph`` (8 bytes)."""

    _fields_ = [
        ("dmabuf_fd", c_int32),
        ("steering_tag", c_uint16),
        ("ph", c_uint8),
        ("reserved", c_uint8),
    ]


# =====================================================================================
# Profile tph-v11: the series' v11 (2026-07-02; the uAPI is unchanged since v7).
# SET-only feature 13; each SET replaces both namespaces, a clear bit invalidates
# that one; undefined flag bits must be 0.
# =====================================================================================

VFIO_DMA_BUF_TPH_ST = 1 << 0  # steering_tag (8-bit ST) valid
VFIO_DMA_BUF_TPH_ST_EXT = 1 << 1  # steering_tag_ext (16-bit extended ST) valid


class vfio_device_feature_dma_buf_tph(ctypes.Structure):
    """tph-v11 ``struct vfio_device_feature_dma_buf_tph`` (12 bytes, no padding)."""

    _fields_ = [
        ("dmabuf_fd", c_int32),
        ("flags", c_uint32),  # VFIO_DMA_BUF_TPH_ST | VFIO_DMA_BUF_TPH_ST_EXT
        ("steering_tag_ext", c_uint16),  # 16-bit extended ST
        ("steering_tag", c_uint8),  # 8-bit ST
        ("ph", c_uint8),  # 2-bit processing hint
    ]


# =====================================================================================
# The profiles, by the names C gives them.
# =====================================================================================

ProfileNames: TypeAlias = Mapping[str, int | type[ctypes.Structure]]
"""One profile's names, keyed as spelled in its C diff."""

PROFILES: Final[Mapping[str, ProfileNames]] = MappingProxyType(
    {
        "tph-v1": MappingProxyType(
            {
                "VFIO_DMABUF_FLAG_TPH": VFIO_DMABUF_FLAG_TPH,
                "vfio_region_dma_tph": vfio_region_dma_tph,
                "vfio_region_dma_range": vfio_region_dma_range_v1,
                "vfio_device_feature_dma_buf": vfio_device_feature_dma_buf_v1,
            }
        ),
        "tph-v2": MappingProxyType(
            {
                "VFIO_DEVICE_FEATURE_DMA_BUF_TPH": VFIO_DEVICE_FEATURE_DMA_BUF_TPH,
                "vfio_device_feature_dma_buf_tph": vfio_device_feature_dma_buf_tph_v2,
            }
        ),
        "tph-v11": MappingProxyType(
            {
                "VFIO_DEVICE_FEATURE_DMA_BUF_TPH": VFIO_DEVICE_FEATURE_DMA_BUF_TPH,
                "VFIO_DMA_BUF_TPH_ST": VFIO_DMA_BUF_TPH_ST,
                "VFIO_DMA_BUF_TPH_ST_EXT": VFIO_DMA_BUF_TPH_ST_EXT,
                "vfio_device_feature_dma_buf_tph": vfio_device_feature_dma_buf_tph,
            }
        ),
    }
)
"""Profile name (``"tph-v1"``, ``"tph-v2"``, ``"tph-v11"``) to its names."""
