"""linux/vfio.h: the VFIO container, group, device and type1 IOMMU uAPI (Linux 7.2).

The whole header is mirrored in header order, the s390/POWER-only parts
included, except three function-like helpers of the deprecated v1 migration
region (``VFIO_DEVICE_STATE_VALID``, ``_IS_ERROR``, ``_SET_ERROR``).

Every VFIO ioctl is ``_IO(VFIO_TYPE, VFIO_BASE + n)``: the argument size
travels in the struct's leading ``argsz`` field, not in the command number.
So numbers repeat across fd types: ``VFIO_IOMMU_GET_INFO`` (container fd) and
``VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`` (device fd) are both ``VFIO_BASE + 12``.

Anonymous C unions are ``ctypes.Union`` members listed in ``_anonymous_``, so
their fields read as in C (``dev.devid``).  Flexible array members are
zero-length arrays (``dma_ranges``), so ``ctypes.sizeof`` is the C ``sizeof``
and the ``offset`` of the array field is where the elements start.  ``__u64 *``
pointers are plain ``c_uint64`` addresses.
"""

import ctypes
from ctypes import c_int32, c_uint8, c_uint16, c_uint32, c_uint64
from types import MappingProxyType

from mockkernel.ioctl import _IO

__all__ = [
    "VFIO_API_VERSION",
    "VFIO_AP_CFG_CHG_IRQ_INDEX",
    "VFIO_AP_NUM_IRQS",
    "VFIO_AP_REQ_IRQ_INDEX",
    "VFIO_BASE",
    "VFIO_CCW_CONFIG_REGION_INDEX",
    "VFIO_CCW_CRW_IRQ_INDEX",
    "VFIO_CCW_IO_IRQ_INDEX",
    "VFIO_CCW_NUM_IRQS",
    "VFIO_CCW_NUM_REGIONS",
    "VFIO_CCW_REQ_IRQ_INDEX",
    "VFIO_CHECK_EXTENSION",
    "VFIO_DEVICE_API_AMBA_STRING",
    "VFIO_DEVICE_API_AP_STRING",
    "VFIO_DEVICE_API_CCW_STRING",
    "VFIO_DEVICE_API_PCI_STRING",
    "VFIO_DEVICE_API_PLATFORM_STRING",
    "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
    "VFIO_DEVICE_ATTACH_PASID",
    "VFIO_DEVICE_BIND_FLAG_TOKEN",
    "VFIO_DEVICE_BIND_IOMMUFD",
    "VFIO_DEVICE_DETACH_IOMMUFD_PT",
    "VFIO_DEVICE_DETACH_PASID",
    "VFIO_DEVICE_FEATURE",
    "VFIO_DEVICE_FEATURE_BUS_MASTER",
    "VFIO_DEVICE_FEATURE_CLEAR_MASTER",
    "VFIO_DEVICE_FEATURE_DMA_BUF",
    "VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT",
    "VFIO_DEVICE_FEATURE_DMA_LOGGING_START",
    "VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP",
    "VFIO_DEVICE_FEATURE_GET",
    "VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY",
    "VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP",
    "VFIO_DEVICE_FEATURE_LOW_POWER_EXIT",
    "VFIO_DEVICE_FEATURE_MASK",
    "VFIO_DEVICE_FEATURE_MIGRATION",
    "VFIO_DEVICE_FEATURE_MIG_DATA_SIZE",
    "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE",
    "VFIO_DEVICE_FEATURE_PCI_VF_TOKEN",
    "VFIO_DEVICE_FEATURE_PROBE",
    "VFIO_DEVICE_FEATURE_SET",
    "VFIO_DEVICE_FEATURE_SET_MASTER",
    "VFIO_DEVICE_FLAGS_AMBA",
    "VFIO_DEVICE_FLAGS_AP",
    "VFIO_DEVICE_FLAGS_CAPS",
    "VFIO_DEVICE_FLAGS_CCW",
    "VFIO_DEVICE_FLAGS_CDX",
    "VFIO_DEVICE_FLAGS_FSL_MC",
    "VFIO_DEVICE_FLAGS_PCI",
    "VFIO_DEVICE_FLAGS_PLATFORM",
    "VFIO_DEVICE_FLAGS_RESET",
    "VFIO_DEVICE_GET_GFX_DMABUF",
    "VFIO_DEVICE_GET_INFO",
    "VFIO_DEVICE_GET_IRQ_INFO",
    "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO",
    "VFIO_DEVICE_GET_REGION_INFO",
    "VFIO_DEVICE_GFX_LINK_STATE_DOWN",
    "VFIO_DEVICE_GFX_LINK_STATE_UP",
    "VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP",
    "VFIO_DEVICE_INFO_CAP_ZPCI_BASE",
    "VFIO_DEVICE_INFO_CAP_ZPCI_GROUP",
    "VFIO_DEVICE_INFO_CAP_ZPCI_PFIP",
    "VFIO_DEVICE_INFO_CAP_ZPCI_UTIL",
    "VFIO_DEVICE_IOEVENTFD",
    "VFIO_DEVICE_IOEVENTFD_8",
    "VFIO_DEVICE_IOEVENTFD_16",
    "VFIO_DEVICE_IOEVENTFD_32",
    "VFIO_DEVICE_IOEVENTFD_64",
    "VFIO_DEVICE_IOEVENTFD_SIZE_MASK",
    "VFIO_DEVICE_PCI_HOT_RESET",
    "VFIO_DEVICE_QUERY_GFX_PLANE",
    "VFIO_DEVICE_RESET",
    "VFIO_DEVICE_SET_IRQS",
    "VFIO_DEVICE_STATE_ERROR",
    "VFIO_DEVICE_STATE_MASK",
    "VFIO_DEVICE_STATE_NR",
    "VFIO_DEVICE_STATE_PRE_COPY",
    "VFIO_DEVICE_STATE_PRE_COPY_P2P",
    "VFIO_DEVICE_STATE_RESUMING",
    "VFIO_DEVICE_STATE_RUNNING",
    "VFIO_DEVICE_STATE_RUNNING_P2P",
    "VFIO_DEVICE_STATE_STOP",
    "VFIO_DEVICE_STATE_STOP_COPY",
    "VFIO_DEVICE_STATE_V1_RESUMING",
    "VFIO_DEVICE_STATE_V1_RUNNING",
    "VFIO_DEVICE_STATE_V1_SAVING",
    "VFIO_DEVICE_STATE_V1_STOP",
    "VFIO_DMA_CC_IOMMU",
    "VFIO_DMA_MAP_FLAG_READ",
    "VFIO_DMA_MAP_FLAG_VADDR",
    "VFIO_DMA_MAP_FLAG_WRITE",
    "VFIO_DMA_UNMAP_FLAG_ALL",
    "VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP",
    "VFIO_DMA_UNMAP_FLAG_VADDR",
    "VFIO_EEH",
    "VFIO_EEH_PE_CONFIGURE",
    "VFIO_EEH_PE_DISABLE",
    "VFIO_EEH_PE_ENABLE",
    "VFIO_EEH_PE_GET_STATE",
    "VFIO_EEH_PE_INJECT_ERR",
    "VFIO_EEH_PE_OP",
    "VFIO_EEH_PE_RESET_DEACTIVATE",
    "VFIO_EEH_PE_RESET_FUNDAMENTAL",
    "VFIO_EEH_PE_RESET_HOT",
    "VFIO_EEH_PE_STATE_NORMAL",
    "VFIO_EEH_PE_STATE_RESET",
    "VFIO_EEH_PE_STATE_STOPPED",
    "VFIO_EEH_PE_STATE_STOPPED_DMA",
    "VFIO_EEH_PE_STATE_UNAVAIL",
    "VFIO_EEH_PE_UNFREEZE_DMA",
    "VFIO_EEH_PE_UNFREEZE_IO",
    "VFIO_GET_API_VERSION",
    "VFIO_GFX_PLANE_TYPE_DMABUF",
    "VFIO_GFX_PLANE_TYPE_PROBE",
    "VFIO_GFX_PLANE_TYPE_REGION",
    "VFIO_GROUP_FLAGS_CONTAINER_SET",
    "VFIO_GROUP_FLAGS_VIABLE",
    "VFIO_GROUP_GET_DEVICE_FD",
    "VFIO_GROUP_GET_STATUS",
    "VFIO_GROUP_SET_CONTAINER",
    "VFIO_GROUP_UNSET_CONTAINER",
    "VFIO_IOMMU_DIRTY_PAGES",
    "VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP",
    "VFIO_IOMMU_DIRTY_PAGES_FLAG_START",
    "VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP",
    "VFIO_IOMMU_DISABLE",
    "VFIO_IOMMU_ENABLE",
    "VFIO_IOMMU_GET_INFO",
    "VFIO_IOMMU_INFO_CAPS",
    "VFIO_IOMMU_INFO_PGSIZES",
    "VFIO_IOMMU_MAP_DMA",
    "VFIO_IOMMU_SPAPR_INFO_DDW",
    "VFIO_IOMMU_SPAPR_REGISTER_MEMORY",
    "VFIO_IOMMU_SPAPR_TCE_CREATE",
    "VFIO_IOMMU_SPAPR_TCE_GET_INFO",
    "VFIO_IOMMU_SPAPR_TCE_REMOVE",
    "VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY",
    "VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE",
    "VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION",
    "VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL",
    "VFIO_IOMMU_UNMAP_DMA",
    "VFIO_IRQ_INFO_AUTOMASKED",
    "VFIO_IRQ_INFO_EVENTFD",
    "VFIO_IRQ_INFO_MASKABLE",
    "VFIO_IRQ_INFO_NORESIZE",
    "VFIO_IRQ_SET_ACTION_MASK",
    "VFIO_IRQ_SET_ACTION_TRIGGER",
    "VFIO_IRQ_SET_ACTION_TYPE_MASK",
    "VFIO_IRQ_SET_ACTION_UNMASK",
    "VFIO_IRQ_SET_DATA_BOOL",
    "VFIO_IRQ_SET_DATA_EVENTFD",
    "VFIO_IRQ_SET_DATA_NONE",
    "VFIO_IRQ_SET_DATA_TYPE_MASK",
    "VFIO_MIGRATION_P2P",
    "VFIO_MIGRATION_PRE_COPY",
    "VFIO_MIGRATION_STOP_COPY",
    "VFIO_MIG_GET_PRECOPY_INFO",
    "VFIO_NOIOMMU_IOMMU",
    "VFIO_PCI_ATOMIC_COMP32",
    "VFIO_PCI_ATOMIC_COMP64",
    "VFIO_PCI_ATOMIC_COMP128",
    "VFIO_PCI_BAR0_REGION_INDEX",
    "VFIO_PCI_BAR1_REGION_INDEX",
    "VFIO_PCI_BAR2_REGION_INDEX",
    "VFIO_PCI_BAR3_REGION_INDEX",
    "VFIO_PCI_BAR4_REGION_INDEX",
    "VFIO_PCI_BAR5_REGION_INDEX",
    "VFIO_PCI_CONFIG_REGION_INDEX",
    "VFIO_PCI_DEVID_NOT_OWNED",
    "VFIO_PCI_DEVID_OWNED",
    "VFIO_PCI_ERR_IRQ_INDEX",
    "VFIO_PCI_HOT_RESET_FLAG_DEV_ID",
    "VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED",
    "VFIO_PCI_INTX_IRQ_INDEX",
    "VFIO_PCI_MSIX_IRQ_INDEX",
    "VFIO_PCI_MSI_IRQ_INDEX",
    "VFIO_PCI_NUM_IRQS",
    "VFIO_PCI_NUM_REGIONS",
    "VFIO_PCI_REQ_IRQ_INDEX",
    "VFIO_PCI_ROM_REGION_INDEX",
    "VFIO_PCI_VGA_REGION_INDEX",
    "VFIO_PRECOPY_INFO_REINIT",
    "VFIO_REGION_INFO_CAP_MSIX_MAPPABLE",
    "VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD",
    "VFIO_REGION_INFO_CAP_NVLINK2_SSATGT",
    "VFIO_REGION_INFO_CAP_SPARSE_MMAP",
    "VFIO_REGION_INFO_CAP_TYPE",
    "VFIO_REGION_INFO_FLAG_CAPS",
    "VFIO_REGION_INFO_FLAG_MMAP",
    "VFIO_REGION_INFO_FLAG_READ",
    "VFIO_REGION_INFO_FLAG_WRITE",
    "VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD",
    "VFIO_REGION_SUBTYPE_CCW_CRW",
    "VFIO_REGION_SUBTYPE_CCW_SCHIB",
    "VFIO_REGION_SUBTYPE_GFX_EDID",
    "VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD",
    "VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG",
    "VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG",
    "VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION",
    "VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED",
    "VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM",
    "VFIO_REGION_TYPE_CCW",
    "VFIO_REGION_TYPE_GFX",
    "VFIO_REGION_TYPE_MIGRATION_DEPRECATED",
    "VFIO_REGION_TYPE_PCI_VENDOR_MASK",
    "VFIO_REGION_TYPE_PCI_VENDOR_TYPE",
    "VFIO_SET_IOMMU",
    "VFIO_SPAPR_TCE_IOMMU",
    "VFIO_TYPE",
    "VFIO_TYPE1_IOMMU",
    "VFIO_UNMAP_ALL",
    "VFIO_UPDATE_VADDR",
    "__VFIO_RESERVED_TYPE1_NESTING_IOMMU",
    "VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2",
    "VFIO_SPAPR_TCE_v2_IOMMU",
    "VFIO_TYPE1v2_IOMMU",
    "vfio_bitmap",
    "vfio_device_attach_iommufd_pt",
    "vfio_device_bind_iommufd",
    "vfio_device_detach_iommufd_pt",
    "vfio_device_feature",
    "vfio_device_feature_bus_master",
    "vfio_device_feature_dma_buf",
    "vfio_device_feature_dma_logging_control",
    "vfio_device_feature_dma_logging_range",
    "vfio_device_feature_dma_logging_report",
    "vfio_device_feature_mig_data_size",
    "vfio_device_feature_mig_state",
    "vfio_device_feature_migration",
    "vfio_device_gfx_plane_info",
    "vfio_device_info",
    "vfio_device_info_cap_pci_atomic_comp",
    "vfio_device_ioeventfd",
    "vfio_device_low_power_entry_with_wakeup",
    "vfio_device_migration_info",
    "vfio_eeh_pe_err",
    "vfio_eeh_pe_op",
    "vfio_group_status",
    "vfio_info_cap_header",
    "vfio_iommu_spapr_register_memory",
    "vfio_iommu_spapr_tce_create",
    "vfio_iommu_spapr_tce_ddw_info",
    "vfio_iommu_spapr_tce_info",
    "vfio_iommu_spapr_tce_remove",
    "vfio_iommu_type1_dirty_bitmap",
    "vfio_iommu_type1_dirty_bitmap_get",
    "vfio_iommu_type1_dma_map",
    "vfio_iommu_type1_dma_unmap",
    "vfio_iommu_type1_info",
    "vfio_iommu_type1_info_cap_iova_range",
    "vfio_iommu_type1_info_cap_migration",
    "vfio_iommu_type1_info_dma_avail",
    "vfio_iova_range",
    "vfio_irq_info",
    "vfio_irq_set",
    "vfio_pci_dependent_device",
    "vfio_pci_hot_reset",
    "vfio_pci_hot_reset_info",
    "vfio_precopy_info",
    "vfio_region_dma_range",
    "vfio_region_gfx_edid",
    "vfio_region_info",
    "vfio_region_info_cap_nvlink2_lnkspd",
    "vfio_region_info_cap_nvlink2_ssatgt",
    "vfio_region_info_cap_sparse_mmap",
    "vfio_region_info_cap_type",
    "vfio_region_sparse_mmap_area",
]

_HEADER = "linux/vfio.h"
#: Constants whose C expression is not the value Python should use, and the C type
#: the ABI test casts them to.  ``(1 << 31)`` is the ``int`` INT_MIN in C; it only
#: ever meets the ``__u32`` ``vfio_region_info_cap_type.type``, so Python keeps the
#: unsigned 32-bit value.
_C_CAST = MappingProxyType({"VFIO_REGION_TYPE_PCI_VENDOR_TYPE": "__u32"})

VFIO_API_VERSION = 0

# Kernel & User level defines for VFIO IOCTLs.

# Extensions
VFIO_TYPE1_IOMMU = 1
VFIO_SPAPR_TCE_IOMMU = 2
VFIO_TYPE1v2_IOMMU = 3
VFIO_DMA_CC_IOMMU = 4

# Check if EEH is supported
VFIO_EEH = 5

# Two-stage IOMMU
__VFIO_RESERVED_TYPE1_NESTING_IOMMU = 6  # Implies v2
VFIO_SPAPR_TCE_v2_IOMMU = 7
VFIO_NOIOMMU_IOMMU = 8

# Supports VFIO_DMA_UNMAP_FLAG_ALL
VFIO_UNMAP_ALL = 9
VFIO_UPDATE_VADDR = 10
VFIO_TYPE = ord(";")
VFIO_BASE = 100


class vfio_info_cap_header(ctypes.Structure):
    """Header of each capability in an info struct's chain (``next`` is an offset)."""

    _fields_ = [
        ("id", c_uint16),  # Identifies capability
        ("version", c_uint16),  # Version specific to the capability ID
        ("next", c_uint32),  # Offset of next capability
    ]


# -------- IOCTLs for VFIO file descriptor (/dev/vfio/vfio) --------
VFIO_GET_API_VERSION = _IO(VFIO_TYPE, VFIO_BASE + 0)
VFIO_CHECK_EXTENSION = _IO(VFIO_TYPE, VFIO_BASE + 1)
VFIO_SET_IOMMU = _IO(VFIO_TYPE, VFIO_BASE + 2)

# -------- IOCTLs for GROUP file descriptors (/dev/vfio/$GROUP) --------


class vfio_group_status(ctypes.Structure):
    """VFIO_GROUP_GET_STATUS argument."""

    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
    ]


VFIO_GROUP_FLAGS_VIABLE = 1 << 0
VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1
VFIO_GROUP_GET_STATUS = _IO(VFIO_TYPE, VFIO_BASE + 3)
VFIO_GROUP_SET_CONTAINER = _IO(VFIO_TYPE, VFIO_BASE + 4)
VFIO_GROUP_UNSET_CONTAINER = _IO(VFIO_TYPE, VFIO_BASE + 5)
VFIO_GROUP_GET_DEVICE_FD = _IO(VFIO_TYPE, VFIO_BASE + 6)

# --------------- IOCTLs for DEVICE file descriptors ---------------


class vfio_device_info(ctypes.Structure):
    """VFIO_DEVICE_GET_INFO argument."""

    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("num_regions", c_uint32),  # Max region index + 1
        ("num_irqs", c_uint32),  # Max IRQ index + 1
        ("cap_offset", c_uint32),  # Offset within info struct of first cap
        ("pad", c_uint32),
    ]


VFIO_DEVICE_FLAGS_RESET = 1 << 0  # Device supports reset
VFIO_DEVICE_FLAGS_PCI = 1 << 1  # vfio-pci device
VFIO_DEVICE_FLAGS_PLATFORM = 1 << 2  # vfio-platform device
VFIO_DEVICE_FLAGS_AMBA = 1 << 3  # vfio-amba device
VFIO_DEVICE_FLAGS_CCW = 1 << 4  # vfio-ccw device
VFIO_DEVICE_FLAGS_AP = 1 << 5  # vfio-ap device
VFIO_DEVICE_FLAGS_FSL_MC = 1 << 6  # vfio-fsl-mc device
VFIO_DEVICE_FLAGS_CAPS = 1 << 7  # Info supports caps
VFIO_DEVICE_FLAGS_CDX = 1 << 8  # vfio-cdx device
VFIO_DEVICE_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 7)
VFIO_DEVICE_API_PCI_STRING = "vfio-pci"
VFIO_DEVICE_API_PLATFORM_STRING = "vfio-platform"
VFIO_DEVICE_API_AMBA_STRING = "vfio-amba"
VFIO_DEVICE_API_CCW_STRING = "vfio-ccw"
VFIO_DEVICE_API_AP_STRING = "vfio-ap"
VFIO_DEVICE_INFO_CAP_ZPCI_BASE = 1
VFIO_DEVICE_INFO_CAP_ZPCI_GROUP = 2
VFIO_DEVICE_INFO_CAP_ZPCI_UTIL = 3
VFIO_DEVICE_INFO_CAP_ZPCI_PFIP = 4
VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP = 5


class vfio_device_info_cap_pci_atomic_comp(ctypes.Structure):
    _fields_ = [
        ("header", vfio_info_cap_header),
        ("flags", c_uint32),
        ("reserved", c_uint32),
    ]


VFIO_PCI_ATOMIC_COMP32 = 1 << 0
VFIO_PCI_ATOMIC_COMP64 = 1 << 1
VFIO_PCI_ATOMIC_COMP128 = 1 << 2


class vfio_region_info(ctypes.Structure):
    """VFIO_DEVICE_GET_REGION_INFO argument; capabilities follow at ``cap_offset``."""

    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("index", c_uint32),  # Region index
        ("cap_offset", c_uint32),  # Offset within info struct of first cap
        ("size", c_uint64),  # Region size (bytes)
        ("offset", c_uint64),  # Region offset from start of device fd
    ]


VFIO_REGION_INFO_FLAG_READ = 1 << 0  # Region supports read
VFIO_REGION_INFO_FLAG_WRITE = 1 << 1  # Region supports write
VFIO_REGION_INFO_FLAG_MMAP = 1 << 2  # Region supports mmap
VFIO_REGION_INFO_FLAG_CAPS = 1 << 3  # Info supports caps
VFIO_DEVICE_GET_REGION_INFO = _IO(VFIO_TYPE, VFIO_BASE + 8)
VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1


class vfio_region_sparse_mmap_area(ctypes.Structure):
    _fields_ = [
        ("offset", c_uint64),  # Offset of mmap'able area within region
        ("size", c_uint64),  # Size of mmap'able area
    ]


class vfio_region_info_cap_sparse_mmap(ctypes.Structure):
    """VFIO_REGION_INFO_CAP_SPARSE_MMAP: the mmap'able areas of a region."""

    _fields_ = [
        ("header", vfio_info_cap_header),
        ("nr_areas", c_uint32),
        ("reserved", c_uint32),
        ("areas", vfio_region_sparse_mmap_area * 0),
    ]


VFIO_REGION_INFO_CAP_TYPE = 2


class vfio_region_info_cap_type(ctypes.Structure):
    """VFIO_REGION_INFO_CAP_TYPE: a device-specific region's type and subtype."""

    _fields_ = [
        ("header", vfio_info_cap_header),
        ("type", c_uint32),  # global per bus driver
        ("subtype", c_uint32),  # type specific
    ]


# PCI region type containing a PCI vendor part
VFIO_REGION_TYPE_PCI_VENDOR_TYPE = 1 << 31  # C: (1 << 31), an int; see _C_CAST
VFIO_REGION_TYPE_PCI_VENDOR_MASK = 0xFFFF
VFIO_REGION_TYPE_GFX = 1
VFIO_REGION_TYPE_CCW = 2
VFIO_REGION_TYPE_MIGRATION_DEPRECATED = 3

# sub-types for VFIO_REGION_TYPE_PCI_*

# 8086 vendor PCI sub-types
VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION = 1
VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG = 2
VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG = 3

# 10de vendor PCI sub-types
VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM = 1

# 1014 vendor PCI sub-types
VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD = 1

# sub-types for VFIO_REGION_TYPE_GFX
VFIO_REGION_SUBTYPE_GFX_EDID = 1


class vfio_region_gfx_edid(ctypes.Structure):
    _fields_ = [
        ("edid_offset", c_uint32),
        ("edid_max_size", c_uint32),
        ("edid_size", c_uint32),
        ("max_xres", c_uint32),
        ("max_yres", c_uint32),
        ("link_state", c_uint32),
    ]


VFIO_DEVICE_GFX_LINK_STATE_UP = 1
VFIO_DEVICE_GFX_LINK_STATE_DOWN = 2

# sub-types for VFIO_REGION_TYPE_CCW
VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD = 1
VFIO_REGION_SUBTYPE_CCW_SCHIB = 2
VFIO_REGION_SUBTYPE_CCW_CRW = 3

# sub-types for VFIO_REGION_TYPE_MIGRATION
VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED = 1


class vfio_device_migration_info(ctypes.Structure):
    _fields_ = [
        ("device_state", c_uint32),  # VFIO device state
        ("reserved", c_uint32),
        ("pending_bytes", c_uint64),
        ("data_offset", c_uint64),
        ("data_size", c_uint64),
    ]


VFIO_DEVICE_STATE_V1_STOP = 0
VFIO_DEVICE_STATE_V1_RUNNING = 1 << 0
VFIO_DEVICE_STATE_V1_SAVING = 1 << 1
VFIO_DEVICE_STATE_V1_RESUMING = 1 << 2
VFIO_DEVICE_STATE_MASK = (
    VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING
)
# (The v1 helper macros VFIO_DEVICE_STATE_VALID/IS_ERROR/SET_ERROR are not mirrored.)
VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3
VFIO_REGION_INFO_CAP_NVLINK2_SSATGT = 4


class vfio_region_info_cap_nvlink2_ssatgt(ctypes.Structure):
    _fields_ = [
        ("header", vfio_info_cap_header),
        ("tgt", c_uint64),
    ]


VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD = 5


class vfio_region_info_cap_nvlink2_lnkspd(ctypes.Structure):
    _fields_ = [
        ("header", vfio_info_cap_header),
        ("link_speed", c_uint32),
        ("__pad", c_uint32),
    ]


class vfio_irq_info(ctypes.Structure):
    """VFIO_DEVICE_GET_IRQ_INFO argument."""

    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("index", c_uint32),  # IRQ index
        ("count", c_uint32),  # Number of IRQs within this index
    ]


VFIO_IRQ_INFO_EVENTFD = 1 << 0
VFIO_IRQ_INFO_MASKABLE = 1 << 1
VFIO_IRQ_INFO_AUTOMASKED = 1 << 2
VFIO_IRQ_INFO_NORESIZE = 1 << 3
VFIO_DEVICE_GET_IRQ_INFO = _IO(VFIO_TYPE, VFIO_BASE + 9)


class vfio_irq_set(ctypes.Structure):
    """VFIO_DEVICE_SET_IRQS argument; ``count`` data items follow."""

    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("index", c_uint32),
        ("start", c_uint32),
        ("count", c_uint32),
        ("data", c_uint8 * 0),
    ]


VFIO_IRQ_SET_DATA_NONE = 1 << 0  # Data not present
VFIO_IRQ_SET_DATA_BOOL = 1 << 1  # Data is bool (u8)
VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2  # Data is eventfd (s32)
VFIO_IRQ_SET_ACTION_MASK = 1 << 3  # Mask interrupt
VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4  # Unmask interrupt
VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5  # Trigger interrupt
VFIO_DEVICE_SET_IRQS = _IO(VFIO_TYPE, VFIO_BASE + 10)
VFIO_IRQ_SET_DATA_TYPE_MASK = (
    VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD
)
VFIO_IRQ_SET_ACTION_TYPE_MASK = (
    VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER
)
VFIO_DEVICE_RESET = _IO(VFIO_TYPE, VFIO_BASE + 11)

# enum: vfio-pci region indexes
VFIO_PCI_BAR0_REGION_INDEX = 0
VFIO_PCI_BAR1_REGION_INDEX = 1
VFIO_PCI_BAR2_REGION_INDEX = 2
VFIO_PCI_BAR3_REGION_INDEX = 3
VFIO_PCI_BAR4_REGION_INDEX = 4
VFIO_PCI_BAR5_REGION_INDEX = 5
VFIO_PCI_ROM_REGION_INDEX = 6
VFIO_PCI_CONFIG_REGION_INDEX = 7
VFIO_PCI_VGA_REGION_INDEX = 8
VFIO_PCI_NUM_REGIONS = 9

# enum: vfio-pci IRQ indexes
VFIO_PCI_INTX_IRQ_INDEX = 0
VFIO_PCI_MSI_IRQ_INDEX = 1
VFIO_PCI_MSIX_IRQ_INDEX = 2
VFIO_PCI_ERR_IRQ_INDEX = 3
VFIO_PCI_REQ_IRQ_INDEX = 4
VFIO_PCI_NUM_IRQS = 5

# enum: vfio-ccw region indexes
VFIO_CCW_CONFIG_REGION_INDEX = 0
VFIO_CCW_NUM_REGIONS = 1

# enum: vfio-ccw IRQ indexes
VFIO_CCW_IO_IRQ_INDEX = 0
VFIO_CCW_CRW_IRQ_INDEX = 1
VFIO_CCW_REQ_IRQ_INDEX = 2
VFIO_CCW_NUM_IRQS = 3

# enum: vfio-ap IRQ indexes
VFIO_AP_REQ_IRQ_INDEX = 0
VFIO_AP_CFG_CHG_IRQ_INDEX = 1
VFIO_AP_NUM_IRQS = 2


class _vfio_pci_dependent_device_u(ctypes.Union):
    _fields_ = [
        ("group_id", c_uint32),
        ("devid", c_uint32),
    ]


class vfio_pci_dependent_device(ctypes.Structure):
    """One device affected by a hot reset (VFIO_DEVICE_GET_PCI_HOT_RESET_INFO)."""

    _anonymous_ = ("_u",)
    _fields_ = [
        ("_u", _vfio_pci_dependent_device_u),  # union { group_id; devid; }
        ("segment", c_uint16),
        ("bus", c_uint8),
        ("devfn", c_uint8),  # Use PCI_SLOT/PCI_FUNC
    ]


VFIO_PCI_DEVID_OWNED = 0
VFIO_PCI_DEVID_NOT_OWNED = -1


class vfio_pci_hot_reset_info(ctypes.Structure):
    """VFIO_DEVICE_GET_PCI_HOT_RESET_INFO argument."""

    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("count", c_uint32),
        ("devices", vfio_pci_dependent_device * 0),
    ]


VFIO_PCI_HOT_RESET_FLAG_DEV_ID = 1 << 0
VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED = 1 << 1
VFIO_DEVICE_GET_PCI_HOT_RESET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 12)


class vfio_pci_hot_reset(ctypes.Structure):
    """VFIO_DEVICE_PCI_HOT_RESET argument."""

    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("count", c_uint32),
        ("group_fds", c_int32 * 0),
    ]


VFIO_DEVICE_PCI_HOT_RESET = _IO(VFIO_TYPE, VFIO_BASE + 13)


class _vfio_device_gfx_plane_info_u(ctypes.Union):
    _fields_ = [
        ("region_index", c_uint32),  # region index
        ("dmabuf_id", c_uint32),  # dma-buf id
    ]


class vfio_device_gfx_plane_info(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("drm_plane_type", c_uint32),  # type of plane: DRM_PLANE_TYPE_*
        ("drm_format", c_uint32),  # drm format of plane
        ("drm_format_mod", c_uint64),  # tiled mode
        ("width", c_uint32),  # width of plane
        ("height", c_uint32),  # height of plane
        ("stride", c_uint32),  # stride of plane
        ("size", c_uint32),  # size of plane in bytes, align on page
        ("x_pos", c_uint32),  # horizontal position of cursor plane
        ("y_pos", c_uint32),  # vertical position of cursor plane
        ("x_hot", c_uint32),  # horizontal position of cursor hotspot
        ("y_hot", c_uint32),  # vertical position of cursor hotspot
        ("_u", _vfio_device_gfx_plane_info_u),  # union { region_index; dmabuf_id; }
        ("reserved", c_uint32),
    ]


VFIO_GFX_PLANE_TYPE_PROBE = 1 << 0
VFIO_GFX_PLANE_TYPE_DMABUF = 1 << 1
VFIO_GFX_PLANE_TYPE_REGION = 1 << 2
VFIO_DEVICE_QUERY_GFX_PLANE = _IO(VFIO_TYPE, VFIO_BASE + 14)
VFIO_DEVICE_GET_GFX_DMABUF = _IO(VFIO_TYPE, VFIO_BASE + 15)


class vfio_device_ioeventfd(ctypes.Structure):
    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("offset", c_uint64),  # device fd offset of write
        ("data", c_uint64),  # data to be written
        ("fd", c_int32),  # -1 for de-assignment
        ("reserved", c_uint32),
    ]


VFIO_DEVICE_IOEVENTFD_8 = 1 << 0  # 1-byte write
VFIO_DEVICE_IOEVENTFD_16 = 1 << 1  # 2-byte write
VFIO_DEVICE_IOEVENTFD_32 = 1 << 2  # 4-byte write
VFIO_DEVICE_IOEVENTFD_64 = 1 << 3  # 8-byte write
VFIO_DEVICE_IOEVENTFD_SIZE_MASK = 0xF
VFIO_DEVICE_IOEVENTFD = _IO(VFIO_TYPE, VFIO_BASE + 16)


class vfio_device_feature(ctypes.Structure):
    """VFIO_DEVICE_FEATURE argument: feature index and GET/SET/PROBE in ``flags``."""

    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("data", c_uint8 * 0),
    ]


VFIO_DEVICE_FEATURE_MASK = 0xFFFF  # 16-bit feature index
VFIO_DEVICE_FEATURE_GET = 1 << 16  # Get feature into data[]
VFIO_DEVICE_FEATURE_SET = 1 << 17  # Set feature from data[]
VFIO_DEVICE_FEATURE_PROBE = 1 << 18  # Probe feature support
VFIO_DEVICE_FEATURE = _IO(VFIO_TYPE, VFIO_BASE + 17)


class vfio_device_bind_iommufd(ctypes.Structure):
    """VFIO_DEVICE_BIND_IOMMUFD argument (cdev devices)."""

    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("iommufd", c_int32),
        ("out_devid", c_uint32),
        ("token_uuid_ptr", c_uint64),
    ]


VFIO_DEVICE_BIND_FLAG_TOKEN = 1 << 0
VFIO_DEVICE_BIND_IOMMUFD = _IO(VFIO_TYPE, VFIO_BASE + 18)


class vfio_device_attach_iommufd_pt(ctypes.Structure):
    """VFIO_DEVICE_ATTACH_IOMMUFD_PT argument."""

    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("pt_id", c_uint32),
        ("pasid", c_uint32),
    ]


VFIO_DEVICE_ATTACH_PASID = 1 << 0
VFIO_DEVICE_ATTACH_IOMMUFD_PT = _IO(VFIO_TYPE, VFIO_BASE + 19)


class vfio_device_detach_iommufd_pt(ctypes.Structure):
    """VFIO_DEVICE_DETACH_IOMMUFD_PT argument."""

    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("pasid", c_uint32),
    ]


VFIO_DEVICE_DETACH_PASID = 1 << 0
VFIO_DEVICE_DETACH_IOMMUFD_PT = _IO(VFIO_TYPE, VFIO_BASE + 20)
VFIO_DEVICE_FEATURE_PCI_VF_TOKEN = 0


class vfio_device_feature_migration(ctypes.Structure):
    _fields_ = [
        ("flags", c_uint64),
    ]


VFIO_MIGRATION_STOP_COPY = 1 << 0
VFIO_MIGRATION_P2P = 1 << 1
VFIO_MIGRATION_PRE_COPY = 1 << 2
VFIO_DEVICE_FEATURE_MIGRATION = 1


class vfio_device_feature_mig_state(ctypes.Structure):
    _fields_ = [
        ("device_state", c_uint32),  # From enum vfio_device_mig_state
        ("data_fd", c_int32),
    ]


VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE = 2

# enum vfio_device_mig_state
VFIO_DEVICE_STATE_ERROR = 0
VFIO_DEVICE_STATE_STOP = 1
VFIO_DEVICE_STATE_RUNNING = 2
VFIO_DEVICE_STATE_STOP_COPY = 3
VFIO_DEVICE_STATE_RESUMING = 4
VFIO_DEVICE_STATE_RUNNING_P2P = 5
VFIO_DEVICE_STATE_PRE_COPY = 6
VFIO_DEVICE_STATE_PRE_COPY_P2P = 7
VFIO_DEVICE_STATE_NR = 8


class vfio_precopy_info(ctypes.Structure):
    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("initial_bytes", c_uint64),
        ("dirty_bytes", c_uint64),
    ]


VFIO_PRECOPY_INFO_REINIT = 1 << 0  # output - new initial data is present
VFIO_MIG_GET_PRECOPY_INFO = _IO(VFIO_TYPE, VFIO_BASE + 21)
VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY = 3


class vfio_device_low_power_entry_with_wakeup(ctypes.Structure):
    _fields_ = [
        ("wakeup_eventfd", c_int32),
        ("reserved", c_uint32),
    ]


VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP = 4
VFIO_DEVICE_FEATURE_LOW_POWER_EXIT = 5


class vfio_device_feature_dma_logging_control(ctypes.Structure):
    _fields_ = [
        ("page_size", c_uint64),
        ("num_ranges", c_uint32),
        ("__reserved", c_uint32),
        ("ranges", c_uint64),
    ]


class vfio_device_feature_dma_logging_range(ctypes.Structure):
    _fields_ = [
        ("iova", c_uint64),
        ("length", c_uint64),
    ]


VFIO_DEVICE_FEATURE_DMA_LOGGING_START = 6
VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP = 7


class vfio_device_feature_dma_logging_report(ctypes.Structure):
    _fields_ = [
        ("iova", c_uint64),
        ("length", c_uint64),
        ("page_size", c_uint64),
        ("bitmap", c_uint64),
    ]


VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT = 8


class vfio_device_feature_mig_data_size(ctypes.Structure):
    _fields_ = [
        ("stop_copy_length", c_uint64),
    ]


VFIO_DEVICE_FEATURE_MIG_DATA_SIZE = 9


class vfio_device_feature_bus_master(ctypes.Structure):
    _fields_ = [
        ("op", c_uint32),
    ]


VFIO_DEVICE_FEATURE_CLEAR_MASTER = 0  # Clear Bus Master
VFIO_DEVICE_FEATURE_SET_MASTER = 1  # Set Bus Master
VFIO_DEVICE_FEATURE_BUS_MASTER = 10
VFIO_DEVICE_FEATURE_DMA_BUF = 11


class vfio_region_dma_range(ctypes.Structure):
    """One slice of a region in a VFIO_DEVICE_FEATURE_DMA_BUF request."""

    _fields_ = [
        ("offset", c_uint64),
        ("length", c_uint64),
    ]


class vfio_device_feature_dma_buf(ctypes.Structure):
    """VFIO_DEVICE_FEATURE_DMA_BUF (GET) data: the ioctl returns the new fd."""

    _fields_ = [
        ("region_index", c_uint32),
        ("open_flags", c_uint32),
        ("flags", c_uint32),
        ("nr_ranges", c_uint32),
        ("dma_ranges", vfio_region_dma_range * 0),
    ]


VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 = 12

# -------- API for Type1 VFIO IOMMU --------


class vfio_iommu_type1_info(ctypes.Structure):
    """VFIO_IOMMU_GET_INFO argument (type1 container)."""

    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("iova_pgsizes", c_uint64),  # Bitmap of supported page sizes
        ("cap_offset", c_uint32),  # Offset within info struct of first cap
        ("pad", c_uint32),
    ]


VFIO_IOMMU_INFO_PGSIZES = 1 << 0  # supported page sizes info
VFIO_IOMMU_INFO_CAPS = 1 << 1  # Info supports caps
VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1


class vfio_iova_range(ctypes.Structure):
    _fields_ = [
        ("start", c_uint64),
        ("end", c_uint64),
    ]


class vfio_iommu_type1_info_cap_iova_range(ctypes.Structure):
    _fields_ = [
        ("header", vfio_info_cap_header),
        ("nr_iovas", c_uint32),
        ("reserved", c_uint32),
        ("iova_ranges", vfio_iova_range * 0),
    ]


VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2


class vfio_iommu_type1_info_cap_migration(ctypes.Structure):
    _fields_ = [
        ("header", vfio_info_cap_header),
        ("flags", c_uint32),
        ("pgsize_bitmap", c_uint64),
        ("max_dirty_bitmap_size", c_uint64),  # in bytes
    ]


VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3


class vfio_iommu_type1_info_dma_avail(ctypes.Structure):
    _fields_ = [
        ("header", vfio_info_cap_header),
        ("avail", c_uint32),
    ]


VFIO_IOMMU_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 12)


class vfio_iommu_type1_dma_map(ctypes.Structure):
    """VFIO_IOMMU_MAP_DMA argument."""

    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("vaddr", c_uint64),  # Process virtual address
        ("iova", c_uint64),  # IO virtual address
        ("size", c_uint64),  # Size of mapping (bytes)
    ]


VFIO_DMA_MAP_FLAG_READ = 1 << 0  # readable from device
VFIO_DMA_MAP_FLAG_WRITE = 1 << 1  # writable from device
VFIO_DMA_MAP_FLAG_VADDR = 1 << 2
VFIO_IOMMU_MAP_DMA = _IO(VFIO_TYPE, VFIO_BASE + 13)


class vfio_bitmap(ctypes.Structure):
    _fields_ = [
        ("pgsize", c_uint64),  # page size for bitmap in bytes
        ("size", c_uint64),  # in bytes
        ("data", c_uint64),  # __u64 *: one bit per page
    ]


class vfio_iommu_type1_dma_unmap(ctypes.Structure):
    """VFIO_IOMMU_UNMAP_DMA argument."""

    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("iova", c_uint64),  # IO virtual address
        ("size", c_uint64),  # Size of mapping (bytes)
        ("data", c_uint8 * 0),
    ]


VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0
VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1
VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2
VFIO_IOMMU_UNMAP_DMA = _IO(VFIO_TYPE, VFIO_BASE + 14)
VFIO_IOMMU_ENABLE = _IO(VFIO_TYPE, VFIO_BASE + 15)
VFIO_IOMMU_DISABLE = _IO(VFIO_TYPE, VFIO_BASE + 16)


class vfio_iommu_type1_dirty_bitmap(ctypes.Structure):
    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("data", c_uint8 * 0),
    ]


VFIO_IOMMU_DIRTY_PAGES_FLAG_START = 1 << 0
VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP = 1 << 1
VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP = 1 << 2


class vfio_iommu_type1_dirty_bitmap_get(ctypes.Structure):
    _fields_ = [
        ("iova", c_uint64),  # IO virtual address
        ("size", c_uint64),  # Size of iova range
        ("bitmap", vfio_bitmap),
    ]


VFIO_IOMMU_DIRTY_PAGES = _IO(VFIO_TYPE, VFIO_BASE + 17)

# -------- Additional API for SPAPR TCE (Server POWERPC) IOMMU --------


class vfio_iommu_spapr_tce_ddw_info(ctypes.Structure):
    _fields_ = [
        ("pgsizes", c_uint64),  # Bitmap of supported page sizes
        ("max_dynamic_windows_supported", c_uint32),
        ("levels", c_uint32),
    ]


class vfio_iommu_spapr_tce_info(ctypes.Structure):
    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("dma32_window_start", c_uint32),  # 32 bit window start (bytes)
        ("dma32_window_size", c_uint32),  # 32 bit window size (bytes)
        ("ddw", vfio_iommu_spapr_tce_ddw_info),
    ]


VFIO_IOMMU_SPAPR_INFO_DDW = 1 << 0  # DDW supported
VFIO_IOMMU_SPAPR_TCE_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 12)


class vfio_eeh_pe_err(ctypes.Structure):
    _fields_ = [
        ("type", c_uint32),
        ("func", c_uint32),
        ("addr", c_uint64),
        ("mask", c_uint64),
    ]


class _vfio_eeh_pe_op_u(ctypes.Union):
    _fields_ = [
        ("err", vfio_eeh_pe_err),
    ]


class vfio_eeh_pe_op(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("op", c_uint32),
        ("_u", _vfio_eeh_pe_op_u),  # union { struct vfio_eeh_pe_err err; }
    ]


VFIO_EEH_PE_DISABLE = 0  # Disable EEH functionality
VFIO_EEH_PE_ENABLE = 1  # Enable EEH functionality
VFIO_EEH_PE_UNFREEZE_IO = 2  # Enable IO for frozen PE
VFIO_EEH_PE_UNFREEZE_DMA = 3  # Enable DMA for frozen PE
VFIO_EEH_PE_GET_STATE = 4  # PE state retrieval
VFIO_EEH_PE_STATE_NORMAL = 0  # PE in functional state
VFIO_EEH_PE_STATE_RESET = 1  # PE reset in progress
VFIO_EEH_PE_STATE_STOPPED = 2  # Stopped DMA and IO
VFIO_EEH_PE_STATE_STOPPED_DMA = 4  # Stopped DMA only
VFIO_EEH_PE_STATE_UNAVAIL = 5  # State unavailable
VFIO_EEH_PE_RESET_DEACTIVATE = 5  # Deassert PE reset
VFIO_EEH_PE_RESET_HOT = 6  # Assert hot reset
VFIO_EEH_PE_RESET_FUNDAMENTAL = 7  # Assert fundamental reset
VFIO_EEH_PE_CONFIGURE = 8  # PE configuration
VFIO_EEH_PE_INJECT_ERR = 9  # Inject EEH error
VFIO_EEH_PE_OP = _IO(VFIO_TYPE, VFIO_BASE + 21)


class vfio_iommu_spapr_register_memory(ctypes.Structure):
    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("vaddr", c_uint64),  # Process virtual address
        ("size", c_uint64),  # Size of mapping (bytes)
    ]


VFIO_IOMMU_SPAPR_REGISTER_MEMORY = _IO(VFIO_TYPE, VFIO_BASE + 17)
VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY = _IO(VFIO_TYPE, VFIO_BASE + 18)


class vfio_iommu_spapr_tce_create(ctypes.Structure):
    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("page_shift", c_uint32),
        ("__resv1", c_uint32),
        ("window_size", c_uint64),
        ("levels", c_uint32),
        ("__resv2", c_uint32),
        ("start_addr", c_uint64),
    ]


VFIO_IOMMU_SPAPR_TCE_CREATE = _IO(VFIO_TYPE, VFIO_BASE + 19)


class vfio_iommu_spapr_tce_remove(ctypes.Structure):
    _fields_ = [
        ("argsz", c_uint32),
        ("flags", c_uint32),
        ("start_addr", c_uint64),
    ]


VFIO_IOMMU_SPAPR_TCE_REMOVE = _IO(VFIO_TYPE, VFIO_BASE + 20)
