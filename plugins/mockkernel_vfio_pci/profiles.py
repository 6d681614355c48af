"""What vfio-pci does under the booted uAPI profile (``kernel.uapi``).

A profile (:class:`mockkernel.driver.UapiProfile`, defined and documented in
``mockkernel/profiles.py`` and ``docs/uapi-profiles.md``) is data; this module turns
it into the driver's pieces:

* ``VFIO_DEVICE_FEATURE_DMA_BUF`` accepts ``profile.dma_buf_flags`` and reads one
  trailing ``entries[]`` element as TPH when ``profile.dma_buf_tph_flag`` is set
  (:mod:`.dmabuf`, v1);
* :func:`profile_features`: ``profile.tph_feature`` gets the SET handler of
  ``profile.tph_feature_struct`` (the adapters of :mod:`.tph`, one per struct); an
  index the profile does not have answers ``ENOTTY`` like any unknown one;
* :func:`profile_dma_buf_ops`: the exporter's ``dma_buf_ops`` carries the adapter of
  ``profile.tph_op`` (``get_tph`` or ``get_pci_tph``).

A profile whose struct or op has no adapter here cannot be spoken by this driver:
``ValueError`` at boot, naming the profile.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from mockkernel.driver import DmaBuf, DmaBufTphOp, UapiProfile
from mockkernel.uapi.linux.vfio_tph import (
    vfio_device_feature_dma_buf_tph,
    vfio_device_feature_dma_buf_tph_v2,
)

from .core import FeatureHandler
from .tph import feature_dma_buf_tph_v2, feature_dma_buf_tph_v11, get_pci_tph, get_tph

__all__ = ["TPH_FEATURE_HANDLERS", "TPH_OPS", "profile_dma_buf_ops", "profile_features"]

TphOp = Callable[[DmaBuf, bool], tuple[int, int]] | Callable[[DmaBuf, int], tuple[int, int]]

#: the ``VFIO_DEVICE_FEATURE_DMA_BUF_TPH`` SET handler for each struct it may take
TPH_FEATURE_HANDLERS: Final[Mapping[type[ctypes.Structure], FeatureHandler]] = MappingProxyType(
    {
        vfio_device_feature_dma_buf_tph_v2: feature_dma_buf_tph_v2,  # v2, 8 bytes
        vfio_device_feature_dma_buf_tph: feature_dma_buf_tph_v11,  # v7-v11, 12 bytes
    }
)

#: the exporter's implementation of each ``dma_buf_ops`` TPH op
TPH_OPS: Final[Mapping[DmaBufTphOp, TphOp]] = MappingProxyType(
    {DmaBufTphOp.GET_TPH: get_tph, DmaBufTphOp.GET_PCI_TPH: get_pci_tph}
)


def profile_features(profile: UapiProfile) -> dict[int, FeatureHandler]:
    """The extra ``VFIO_DEVICE_FEATURE`` indexes of ``profile``: its TPH feature, if any."""
    if profile.tph_feature is None or profile.tph_feature_struct is None:
        return {}
    handler = TPH_FEATURE_HANDLERS.get(profile.tph_feature_struct)
    if handler is None:
        raise ValueError(
            f"vfio-pci cannot speak uAPI profile {profile.name!r}: no handler for "
            f"VFIO_DEVICE_FEATURE_DMA_BUF_TPH taking {profile.tph_feature_struct.__name__}"
        )
    return {profile.tph_feature: handler}


def profile_dma_buf_ops(profile: UapiProfile) -> dict[str, TphOp]:
    """The TPH op of ``profile`` for the exporter's ``dma_buf_ops``, by member name."""
    if profile.tph_op is None:
        return {}
    return {profile.tph_op.value: TPH_OPS[profile.tph_op]}
