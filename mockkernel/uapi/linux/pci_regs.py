"""linux/pci_regs.h: PCI configuration-space registers (Linux 7.2 uapi), in part.

Mirrored, in header order, with the header's own section titles: the standard
header (type 0 devices and type 1 bridges), the capability list and ids, power
management, MSI and MSI-X, Advanced Features (FLR), the whole PCI Express
capability (``PCI_EXP_DEVCAP2_TPH_COMP_*`` included), the extended capability
header helpers and ids, and the TPH Requester capability (``PCI_TPH_*``).
Not mirrored: CardBus, AGP, VPD, slot id, CompactPCI hot swap, Enhanced
Allocation, PCI-X, HyperTransport and every extended capability other than TPH
(AER, VC, ATS, SR-IOV, ...).

The ``~`` masks are written out with their C type's width: ``(~0x0fUL)`` is the
64-bit ``0xFFFFFFFFFFFFFFF0``, ``(~0x7ffU)`` the 32-bit ``0xFFFFF800``; both
give the same result as C when and-ed with a register value.
"""

__all__ = [
    "PCI_AF_CAP",
    "PCI_AF_CAP_FLR",
    "PCI_AF_CAP_TP",
    "PCI_AF_CTRL",
    "PCI_AF_CTRL_FLR",
    "PCI_AF_LENGTH",
    "PCI_AF_STATUS",
    "PCI_AF_STATUS_TP",
    "PCI_BASE_ADDRESS_0",
    "PCI_BASE_ADDRESS_1",
    "PCI_BASE_ADDRESS_2",
    "PCI_BASE_ADDRESS_3",
    "PCI_BASE_ADDRESS_4",
    "PCI_BASE_ADDRESS_5",
    "PCI_BASE_ADDRESS_IO_MASK",
    "PCI_BASE_ADDRESS_MEM_MASK",
    "PCI_BASE_ADDRESS_MEM_PREFETCH",
    "PCI_BASE_ADDRESS_MEM_TYPE_1M",
    "PCI_BASE_ADDRESS_MEM_TYPE_32",
    "PCI_BASE_ADDRESS_MEM_TYPE_64",
    "PCI_BASE_ADDRESS_MEM_TYPE_MASK",
    "PCI_BASE_ADDRESS_SPACE",
    "PCI_BASE_ADDRESS_SPACE_IO",
    "PCI_BASE_ADDRESS_SPACE_MEMORY",
    "PCI_BIST",
    "PCI_BIST_CAPABLE",
    "PCI_BIST_CODE_MASK",
    "PCI_BIST_START",
    "PCI_BRIDGE_CONTROL",
    "PCI_BRIDGE_CTL_BUS_RESET",
    "PCI_BRIDGE_CTL_FAST_BACK",
    "PCI_BRIDGE_CTL_ISA",
    "PCI_BRIDGE_CTL_MASTER_ABORT",
    "PCI_BRIDGE_CTL_PARITY",
    "PCI_BRIDGE_CTL_SERR",
    "PCI_BRIDGE_CTL_VGA",
    "PCI_CACHE_LINE_SIZE",
    "PCI_CAPABILITY_LIST",
    "PCI_CAP_AF_SIZEOF",
    "PCI_CAP_EXP_ENDPOINT_SIZEOF_V1",
    "PCI_CAP_EXP_ENDPOINT_SIZEOF_V2",
    "PCI_CAP_EXP_RC_ENDPOINT_SIZEOF_V1",
    "PCI_CAP_EXP_RC_ENDPOINT_SIZEOF_V2",
    "PCI_CAP_FLAGS",
    "PCI_CAP_ID_AF",
    "PCI_CAP_ID_AGP",
    "PCI_CAP_ID_AGP3",
    "PCI_CAP_ID_CCRC",
    "PCI_CAP_ID_CHSWP",
    "PCI_CAP_ID_DBG",
    "PCI_CAP_ID_EA",
    "PCI_CAP_ID_EXP",
    "PCI_CAP_ID_HT",
    "PCI_CAP_ID_MASK",
    "PCI_CAP_ID_MAX",
    "PCI_CAP_ID_MSI",
    "PCI_CAP_ID_MSIX",
    "PCI_CAP_ID_PCIX",
    "PCI_CAP_ID_PM",
    "PCI_CAP_ID_SATA",
    "PCI_CAP_ID_SECDEV",
    "PCI_CAP_ID_SHPC",
    "PCI_CAP_ID_SLOTID",
    "PCI_CAP_ID_SSVID",
    "PCI_CAP_ID_VNDR",
    "PCI_CAP_ID_VPD",
    "PCI_CAP_LIST_ID",
    "PCI_CAP_LIST_NEXT",
    "PCI_CAP_LIST_NEXT_MASK",
    "PCI_CAP_MSIX_SIZEOF",
    "PCI_CAP_SIZEOF",
    "PCI_CARDBUS_CIS",
    "PCI_CFG_SPACE_EXP_SIZE",
    "PCI_CFG_SPACE_SIZE",
    "PCI_CLASS_DEVICE",
    "PCI_CLASS_PROG",
    "PCI_CLASS_REVISION",
    "PCI_COMMAND",
    "PCI_COMMAND_FAST_BACK",
    "PCI_COMMAND_INTX_DISABLE",
    "PCI_COMMAND_INVALIDATE",
    "PCI_COMMAND_IO",
    "PCI_COMMAND_MASTER",
    "PCI_COMMAND_MEMORY",
    "PCI_COMMAND_PARITY",
    "PCI_COMMAND_SERR",
    "PCI_COMMAND_SPECIAL",
    "PCI_COMMAND_VGA_PALETTE",
    "PCI_COMMAND_WAIT",
    "PCI_DEVICE_ID",
    "PCI_EXP_DEVCAP",
    "PCI_EXP_DEVCAP2",
    "PCI_EXP_DEVCAP2_ARI",
    "PCI_EXP_DEVCAP2_ATOMIC_COMP32",
    "PCI_EXP_DEVCAP2_ATOMIC_COMP64",
    "PCI_EXP_DEVCAP2_ATOMIC_COMP128",
    "PCI_EXP_DEVCAP2_ATOMIC_ROUTE",
    "PCI_EXP_DEVCAP2_COMP_TMOUT_DIS",
    "PCI_EXP_DEVCAP2_EE_PREFIX",
    "PCI_EXP_DEVCAP2_EE_PREFIX_MAX",
    "PCI_EXP_DEVCAP2_LTR",
    "PCI_EXP_DEVCAP2_OBFF_MASK",
    "PCI_EXP_DEVCAP2_OBFF_MSG",
    "PCI_EXP_DEVCAP2_OBFF_WAKE",
    "PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH",
    "PCI_EXP_DEVCAP2_TPH_COMP_MASK",
    "PCI_EXP_DEVCAP2_TPH_COMP_NONE",
    "PCI_EXP_DEVCAP2_TPH_COMP_TPH_ONLY",
    "PCI_EXP_DEVCAP_ATN_BUT",
    "PCI_EXP_DEVCAP_ATN_IND",
    "PCI_EXP_DEVCAP_EXT_TAG",
    "PCI_EXP_DEVCAP_FLR",
    "PCI_EXP_DEVCAP_L0S",
    "PCI_EXP_DEVCAP_L1",
    "PCI_EXP_DEVCAP_PAYLOAD",
    "PCI_EXP_DEVCAP_PHANTOM",
    "PCI_EXP_DEVCAP_PWR_IND",
    "PCI_EXP_DEVCAP_PWR_SCL",
    "PCI_EXP_DEVCAP_PWR_VAL",
    "PCI_EXP_DEVCAP_RBER",
    "PCI_EXP_DEVCAP_TEE",
    "PCI_EXP_DEVCTL",
    "PCI_EXP_DEVCTL2",
    "PCI_EXP_DEVCTL2_ARI",
    "PCI_EXP_DEVCTL2_ATOMIC_EGRESS_BLOCK",
    "PCI_EXP_DEVCTL2_ATOMIC_REQ",
    "PCI_EXP_DEVCTL2_COMP_TIMEOUT",
    "PCI_EXP_DEVCTL2_COMP_TMOUT_DIS",
    "PCI_EXP_DEVCTL2_IDO_CMP_EN",
    "PCI_EXP_DEVCTL2_IDO_REQ_EN",
    "PCI_EXP_DEVCTL2_LTR_EN",
    "PCI_EXP_DEVCTL2_OBFF_MSGA_EN",
    "PCI_EXP_DEVCTL2_OBFF_MSGB_EN",
    "PCI_EXP_DEVCTL2_OBFF_WAKE_EN",
    "PCI_EXP_DEVCTL_AUX_PME",
    "PCI_EXP_DEVCTL_BCR_FLR",
    "PCI_EXP_DEVCTL_CERE",
    "PCI_EXP_DEVCTL_EXT_TAG",
    "PCI_EXP_DEVCTL_FERE",
    "PCI_EXP_DEVCTL_NFERE",
    "PCI_EXP_DEVCTL_NOSNOOP_EN",
    "PCI_EXP_DEVCTL_PAYLOAD",
    "PCI_EXP_DEVCTL_PAYLOAD_128B",
    "PCI_EXP_DEVCTL_PAYLOAD_256B",
    "PCI_EXP_DEVCTL_PAYLOAD_512B",
    "PCI_EXP_DEVCTL_PAYLOAD_1024B",
    "PCI_EXP_DEVCTL_PAYLOAD_2048B",
    "PCI_EXP_DEVCTL_PAYLOAD_4096B",
    "PCI_EXP_DEVCTL_PHANTOM",
    "PCI_EXP_DEVCTL_READRQ",
    "PCI_EXP_DEVCTL_READRQ_128B",
    "PCI_EXP_DEVCTL_READRQ_256B",
    "PCI_EXP_DEVCTL_READRQ_512B",
    "PCI_EXP_DEVCTL_READRQ_1024B",
    "PCI_EXP_DEVCTL_READRQ_2048B",
    "PCI_EXP_DEVCTL_READRQ_4096B",
    "PCI_EXP_DEVCTL_RELAX_EN",
    "PCI_EXP_DEVCTL_URRE",
    "PCI_EXP_DEVSTA",
    "PCI_EXP_DEVSTA2",
    "PCI_EXP_DEVSTA_AUXPD",
    "PCI_EXP_DEVSTA_CED",
    "PCI_EXP_DEVSTA_FED",
    "PCI_EXP_DEVSTA_NFED",
    "PCI_EXP_DEVSTA_TRPND",
    "PCI_EXP_DEVSTA_URD",
    "PCI_EXP_FLAGS",
    "PCI_EXP_FLAGS_FLIT",
    "PCI_EXP_FLAGS_IRQ",
    "PCI_EXP_FLAGS_SLOT",
    "PCI_EXP_FLAGS_TYPE",
    "PCI_EXP_FLAGS_VERS",
    "PCI_EXP_LNKCAP",
    "PCI_EXP_LNKCAP2",
    "PCI_EXP_LNKCAP2_CROSSLINK",
    "PCI_EXP_LNKCAP2_SLS",
    "PCI_EXP_LNKCAP2_SLS_2_5GB",
    "PCI_EXP_LNKCAP2_SLS_5_0GB",
    "PCI_EXP_LNKCAP2_SLS_8_0GB",
    "PCI_EXP_LNKCAP2_SLS_16_0GB",
    "PCI_EXP_LNKCAP2_SLS_32_0GB",
    "PCI_EXP_LNKCAP2_SLS_64_0GB",
    "PCI_EXP_LNKCAP_ASPMS",
    "PCI_EXP_LNKCAP_ASPM_L0S",
    "PCI_EXP_LNKCAP_ASPM_L1",
    "PCI_EXP_LNKCAP_CLKPM",
    "PCI_EXP_LNKCAP_DLLLARC",
    "PCI_EXP_LNKCAP_L0SEL",
    "PCI_EXP_LNKCAP_L1EL",
    "PCI_EXP_LNKCAP_LBNC",
    "PCI_EXP_LNKCAP_MLW",
    "PCI_EXP_LNKCAP_PN",
    "PCI_EXP_LNKCAP_SDERC",
    "PCI_EXP_LNKCAP_SLS",
    "PCI_EXP_LNKCAP_SLS_2_5GB",
    "PCI_EXP_LNKCAP_SLS_5_0GB",
    "PCI_EXP_LNKCAP_SLS_8_0GB",
    "PCI_EXP_LNKCAP_SLS_16_0GB",
    "PCI_EXP_LNKCAP_SLS_32_0GB",
    "PCI_EXP_LNKCAP_SLS_64_0GB",
    "PCI_EXP_LNKCTL",
    "PCI_EXP_LNKCTL2",
    "PCI_EXP_LNKCTL2_ENTER_COMP",
    "PCI_EXP_LNKCTL2_HASD",
    "PCI_EXP_LNKCTL2_TLS",
    "PCI_EXP_LNKCTL2_TLS_2_5GT",
    "PCI_EXP_LNKCTL2_TLS_5_0GT",
    "PCI_EXP_LNKCTL2_TLS_8_0GT",
    "PCI_EXP_LNKCTL2_TLS_16_0GT",
    "PCI_EXP_LNKCTL2_TLS_32_0GT",
    "PCI_EXP_LNKCTL2_TLS_64_0GT",
    "PCI_EXP_LNKCTL2_TX_MARGIN",
    "PCI_EXP_LNKCTL_ASPMC",
    "PCI_EXP_LNKCTL_ASPM_L0S",
    "PCI_EXP_LNKCTL_ASPM_L1",
    "PCI_EXP_LNKCTL_CCC",
    "PCI_EXP_LNKCTL_CLKREQ_EN",
    "PCI_EXP_LNKCTL_ES",
    "PCI_EXP_LNKCTL_HAWD",
    "PCI_EXP_LNKCTL_LABIE",
    "PCI_EXP_LNKCTL_LBMIE",
    "PCI_EXP_LNKCTL_LD",
    "PCI_EXP_LNKCTL_RCB",
    "PCI_EXP_LNKCTL_RL",
    "PCI_EXP_LNKSTA",
    "PCI_EXP_LNKSTA2",
    "PCI_EXP_LNKSTA2_FLIT",
    "PCI_EXP_LNKSTA_CLS",
    "PCI_EXP_LNKSTA_CLS_2_5GB",
    "PCI_EXP_LNKSTA_CLS_5_0GB",
    "PCI_EXP_LNKSTA_CLS_8_0GB",
    "PCI_EXP_LNKSTA_CLS_16_0GB",
    "PCI_EXP_LNKSTA_CLS_32_0GB",
    "PCI_EXP_LNKSTA_CLS_64_0GB",
    "PCI_EXP_LNKSTA_DLLLA",
    "PCI_EXP_LNKSTA_LABS",
    "PCI_EXP_LNKSTA_LBMS",
    "PCI_EXP_LNKSTA_LT",
    "PCI_EXP_LNKSTA_NLW",
    "PCI_EXP_LNKSTA_NLW_SHIFT",
    "PCI_EXP_LNKSTA_NLW_X1",
    "PCI_EXP_LNKSTA_NLW_X2",
    "PCI_EXP_LNKSTA_NLW_X4",
    "PCI_EXP_LNKSTA_NLW_X8",
    "PCI_EXP_LNKSTA_SLC",
    "PCI_EXP_RTCAP",
    "PCI_EXP_RTCAP_CRSVIS",
    "PCI_EXP_RTCAP_RRS_SV",
    "PCI_EXP_RTCTL",
    "PCI_EXP_RTCTL_CRSSVE",
    "PCI_EXP_RTCTL_PMEIE",
    "PCI_EXP_RTCTL_RRS_SVE",
    "PCI_EXP_RTCTL_SECEE",
    "PCI_EXP_RTCTL_SEFEE",
    "PCI_EXP_RTCTL_SENFEE",
    "PCI_EXP_RTSTA",
    "PCI_EXP_RTSTA_PENDING",
    "PCI_EXP_RTSTA_PME",
    "PCI_EXP_RTSTA_PME_RQ_ID",
    "PCI_EXP_SLTCAP",
    "PCI_EXP_SLTCAP2",
    "PCI_EXP_SLTCAP2_IBPD",
    "PCI_EXP_SLTCAP_ABP",
    "PCI_EXP_SLTCAP_AIP",
    "PCI_EXP_SLTCAP_EIP",
    "PCI_EXP_SLTCAP_HPC",
    "PCI_EXP_SLTCAP_HPS",
    "PCI_EXP_SLTCAP_MRLSP",
    "PCI_EXP_SLTCAP_NCCS",
    "PCI_EXP_SLTCAP_PCP",
    "PCI_EXP_SLTCAP_PIP",
    "PCI_EXP_SLTCAP_PSN",
    "PCI_EXP_SLTCAP_SPLS",
    "PCI_EXP_SLTCAP_SPLV",
    "PCI_EXP_SLTCTL",
    "PCI_EXP_SLTCTL2",
    "PCI_EXP_SLTCTL_ABPE",
    "PCI_EXP_SLTCTL_AIC",
    "PCI_EXP_SLTCTL_ASPL_DISABLE",
    "PCI_EXP_SLTCTL_ATTN_IND_BLINK",
    "PCI_EXP_SLTCTL_ATTN_IND_OFF",
    "PCI_EXP_SLTCTL_ATTN_IND_ON",
    "PCI_EXP_SLTCTL_ATTN_IND_SHIFT",
    "PCI_EXP_SLTCTL_CCIE",
    "PCI_EXP_SLTCTL_DLLSCE",
    "PCI_EXP_SLTCTL_EIC",
    "PCI_EXP_SLTCTL_HPIE",
    "PCI_EXP_SLTCTL_IBPD_DISABLE",
    "PCI_EXP_SLTCTL_MRLSCE",
    "PCI_EXP_SLTCTL_PCC",
    "PCI_EXP_SLTCTL_PDCE",
    "PCI_EXP_SLTCTL_PFDE",
    "PCI_EXP_SLTCTL_PIC",
    "PCI_EXP_SLTCTL_PWR_IND_BLINK",
    "PCI_EXP_SLTCTL_PWR_IND_OFF",
    "PCI_EXP_SLTCTL_PWR_IND_ON",
    "PCI_EXP_SLTCTL_PWR_OFF",
    "PCI_EXP_SLTCTL_PWR_ON",
    "PCI_EXP_SLTSTA",
    "PCI_EXP_SLTSTA2",
    "PCI_EXP_SLTSTA_ABP",
    "PCI_EXP_SLTSTA_CC",
    "PCI_EXP_SLTSTA_DLLSC",
    "PCI_EXP_SLTSTA_EIS",
    "PCI_EXP_SLTSTA_MRLSC",
    "PCI_EXP_SLTSTA_MRLSS",
    "PCI_EXP_SLTSTA_PDC",
    "PCI_EXP_SLTSTA_PDS",
    "PCI_EXP_SLTSTA_PFD",
    "PCI_EXP_TYPE_DOWNSTREAM",
    "PCI_EXP_TYPE_ENDPOINT",
    "PCI_EXP_TYPE_LEG_END",
    "PCI_EXP_TYPE_PCIE_BRIDGE",
    "PCI_EXP_TYPE_PCI_BRIDGE",
    "PCI_EXP_TYPE_RC_EC",
    "PCI_EXP_TYPE_RC_END",
    "PCI_EXP_TYPE_ROOT_PORT",
    "PCI_EXP_TYPE_UPSTREAM",
    "PCI_EXT_CAP_DSN_SIZEOF",
    "PCI_EXT_CAP_ID",
    "PCI_EXT_CAP_ID_ACS",
    "PCI_EXT_CAP_ID_AMD_XXX",
    "PCI_EXT_CAP_ID_ARI",
    "PCI_EXT_CAP_ID_ATS",
    "PCI_EXT_CAP_ID_CAC",
    "PCI_EXT_CAP_ID_DEV3",
    "PCI_EXT_CAP_ID_DLF",
    "PCI_EXT_CAP_ID_DOE",
    "PCI_EXT_CAP_ID_DPA",
    "PCI_EXT_CAP_ID_DPC",
    "PCI_EXT_CAP_ID_DSN",
    "PCI_EXT_CAP_ID_DVSEC",
    "PCI_EXT_CAP_ID_ERR",
    "PCI_EXT_CAP_ID_IDE",
    "PCI_EXT_CAP_ID_L1SS",
    "PCI_EXT_CAP_ID_LTR",
    "PCI_EXT_CAP_ID_MAX",
    "PCI_EXT_CAP_ID_MCAST",
    "PCI_EXT_CAP_ID_MFVC",
    "PCI_EXT_CAP_ID_MRIOV",
    "PCI_EXT_CAP_ID_NPEM",
    "PCI_EXT_CAP_ID_PASID",
    "PCI_EXT_CAP_ID_PL_16GT",
    "PCI_EXT_CAP_ID_PL_32GT",
    "PCI_EXT_CAP_ID_PL_64GT",
    "PCI_EXT_CAP_ID_PMUX",
    "PCI_EXT_CAP_ID_PRI",
    "PCI_EXT_CAP_ID_PTM",
    "PCI_EXT_CAP_ID_PWR",
    "PCI_EXT_CAP_ID_RCEC",
    "PCI_EXT_CAP_ID_RCILC",
    "PCI_EXT_CAP_ID_RCLD",
    "PCI_EXT_CAP_ID_RCRB",
    "PCI_EXT_CAP_ID_REBAR",
    "PCI_EXT_CAP_ID_SECPCI",
    "PCI_EXT_CAP_ID_SRIOV",
    "PCI_EXT_CAP_ID_TPH",
    "PCI_EXT_CAP_ID_VC",
    "PCI_EXT_CAP_ID_VC9",
    "PCI_EXT_CAP_ID_VF_REBAR",
    "PCI_EXT_CAP_ID_VNDR",
    "PCI_EXT_CAP_MCAST_ENDPOINT_SIZEOF",
    "PCI_EXT_CAP_NEXT",
    "PCI_EXT_CAP_VER",
    "PCI_HEADER_TYPE",
    "PCI_HEADER_TYPE_BRIDGE",
    "PCI_HEADER_TYPE_CARDBUS",
    "PCI_HEADER_TYPE_MASK",
    "PCI_HEADER_TYPE_MFD",
    "PCI_HEADER_TYPE_NORMAL",
    "PCI_INTERRUPT_LINE",
    "PCI_INTERRUPT_PIN",
    "PCI_IO_1K_RANGE_MASK",
    "PCI_IO_BASE",
    "PCI_IO_BASE_UPPER16",
    "PCI_IO_LIMIT",
    "PCI_IO_LIMIT_UPPER16",
    "PCI_IO_RANGE_MASK",
    "PCI_IO_RANGE_TYPE_16",
    "PCI_IO_RANGE_TYPE_32",
    "PCI_IO_RANGE_TYPE_MASK",
    "PCI_LATENCY_TIMER",
    "PCI_MAX_LAT",
    "PCI_MEMORY_BASE",
    "PCI_MEMORY_LIMIT",
    "PCI_MEMORY_RANGE_MASK",
    "PCI_MEMORY_RANGE_TYPE_MASK",
    "PCI_MIN_GNT",
    "PCI_MSIX_ENTRY_CTRL_MASKBIT",
    "PCI_MSIX_ENTRY_CTRL_ST",
    "PCI_MSIX_ENTRY_DATA",
    "PCI_MSIX_ENTRY_LOWER_ADDR",
    "PCI_MSIX_ENTRY_SIZE",
    "PCI_MSIX_ENTRY_UPPER_ADDR",
    "PCI_MSIX_ENTRY_VECTOR_CTRL",
    "PCI_MSIX_FLAGS",
    "PCI_MSIX_FLAGS_BIRMASK",
    "PCI_MSIX_FLAGS_ENABLE",
    "PCI_MSIX_FLAGS_MASKALL",
    "PCI_MSIX_FLAGS_QSIZE",
    "PCI_MSIX_PBA",
    "PCI_MSIX_PBA_BIR",
    "PCI_MSIX_PBA_OFFSET",
    "PCI_MSIX_TABLE",
    "PCI_MSIX_TABLE_BIR",
    "PCI_MSIX_TABLE_OFFSET",
    "PCI_MSI_ADDRESS_HI",
    "PCI_MSI_ADDRESS_LO",
    "PCI_MSI_DATA_32",
    "PCI_MSI_DATA_64",
    "PCI_MSI_FLAGS",
    "PCI_MSI_FLAGS_64BIT",
    "PCI_MSI_FLAGS_ENABLE",
    "PCI_MSI_FLAGS_MASKBIT",
    "PCI_MSI_FLAGS_QMASK",
    "PCI_MSI_FLAGS_QSIZE",
    "PCI_MSI_MASK_32",
    "PCI_MSI_MASK_64",
    "PCI_MSI_PENDING_32",
    "PCI_MSI_PENDING_64",
    "PCI_MSI_RFU",
    "PCI_PM_BPCC_ENABLE",
    "PCI_PM_CAP_AUX_POWER",
    "PCI_PM_CAP_D1",
    "PCI_PM_CAP_D2",
    "PCI_PM_CAP_DSI",
    "PCI_PM_CAP_PME",
    "PCI_PM_CAP_PME_CLOCK",
    "PCI_PM_CAP_PME_D0",
    "PCI_PM_CAP_PME_D1",
    "PCI_PM_CAP_PME_D2",
    "PCI_PM_CAP_PME_MASK",
    "PCI_PM_CAP_PME_SHIFT",
    "PCI_PM_CAP_RESERVED",
    "PCI_PM_CAP_VER_MASK",
    "PCI_PM_CTRL",
    "PCI_PM_CTRL_DATA_SCALE_MASK",
    "PCI_PM_CTRL_DATA_SEL_MASK",
    "PCI_PM_CTRL_NO_SOFT_RESET",
    "PCI_PM_CTRL_PME_ENABLE",
    "PCI_PM_CTRL_PME_STATUS",
    "PCI_PM_CTRL_STATE_MASK",
    "PCI_PM_DATA_REGISTER",
    "PCI_PM_PMC",
    "PCI_PM_PPB_B2_B3",
    "PCI_PM_PPB_EXTENSIONS",
    "PCI_PM_SIZEOF",
    "PCI_PREF_BASE_UPPER32",
    "PCI_PREF_LIMIT_UPPER32",
    "PCI_PREF_MEMORY_BASE",
    "PCI_PREF_MEMORY_LIMIT",
    "PCI_PREF_RANGE_MASK",
    "PCI_PREF_RANGE_TYPE_32",
    "PCI_PREF_RANGE_TYPE_64",
    "PCI_PREF_RANGE_TYPE_MASK",
    "PCI_PRIMARY_BUS",
    "PCI_PRIMARY_BUS_MASK",
    "PCI_REVISION_ID",
    "PCI_ROM_ADDRESS",
    "PCI_ROM_ADDRESS1",
    "PCI_ROM_ADDRESS_ENABLE",
    "PCI_ROM_ADDRESS_MASK",
    "PCI_SECONDARY_BUS",
    "PCI_SECONDARY_BUS_MASK",
    "PCI_SEC_LATENCY_TIMER",
    "PCI_SEC_LATENCY_TIMER_MASK",
    "PCI_SEC_STATUS",
    "PCI_STATUS",
    "PCI_STATUS_66MHZ",
    "PCI_STATUS_CAP_LIST",
    "PCI_STATUS_DETECTED_PARITY",
    "PCI_STATUS_DEVSEL_FAST",
    "PCI_STATUS_DEVSEL_MASK",
    "PCI_STATUS_DEVSEL_MEDIUM",
    "PCI_STATUS_DEVSEL_SLOW",
    "PCI_STATUS_FAST_BACK",
    "PCI_STATUS_IMM_READY",
    "PCI_STATUS_INTERRUPT",
    "PCI_STATUS_PARITY",
    "PCI_STATUS_REC_MASTER_ABORT",
    "PCI_STATUS_REC_TARGET_ABORT",
    "PCI_STATUS_SIG_SYSTEM_ERROR",
    "PCI_STATUS_SIG_TARGET_ABORT",
    "PCI_STATUS_UDF",
    "PCI_STD_HEADER_SIZEOF",
    "PCI_STD_NUM_BARS",
    "PCI_SUBORDINATE_BUS",
    "PCI_SUBORDINATE_BUS_MASK",
    "PCI_SUBSYSTEM_ID",
    "PCI_SUBSYSTEM_VENDOR_ID",
    "PCI_TPH_BASE_SIZEOF",
    "PCI_TPH_CAP",
    "PCI_TPH_CAP_EXT_TPH",
    "PCI_TPH_CAP_LOC_MASK",
    "PCI_TPH_CAP_ST_DS",
    "PCI_TPH_CAP_ST_IV",
    "PCI_TPH_CAP_ST_MASK",
    "PCI_TPH_CAP_ST_NS",
    "PCI_TPH_CAP_ST_SHIFT",
    "PCI_TPH_CTRL",
    "PCI_TPH_CTRL_MODE_SEL_MASK",
    "PCI_TPH_CTRL_REQ_EN_MASK",
    "PCI_TPH_LOC_CAP",
    "PCI_TPH_LOC_MSIX",
    "PCI_TPH_LOC_NONE",
    "PCI_TPH_REQ_DISABLE",
    "PCI_TPH_REQ_EXT_TPH",
    "PCI_TPH_REQ_TPH_ONLY",
    "PCI_TPH_ST_DS_MODE",
    "PCI_TPH_ST_IV_MODE",
    "PCI_TPH_ST_NS_MODE",
    "PCI_VENDOR_ID",
    "PCI_PM_CAP_PME_D3cold",
    "PCI_PM_CAP_PME_D3hot",
]

_HEADER = "linux/pci_regs.h"

PCI_CFG_SPACE_SIZE = 256
PCI_CFG_SPACE_EXP_SIZE = 4096
PCI_STD_HEADER_SIZEOF = 64
PCI_STD_NUM_BARS = 6  # Number of standard BARs
PCI_VENDOR_ID = 0x00  # 16 bits
PCI_DEVICE_ID = 0x02  # 16 bits
PCI_COMMAND = 0x04  # 16 bits
PCI_COMMAND_IO = 0x1  # Enable response in I/O space
PCI_COMMAND_MEMORY = 0x2  # Enable response in Memory space
PCI_COMMAND_MASTER = 0x4  # Enable bus mastering
PCI_COMMAND_SPECIAL = 0x8  # Enable response to special cycles
PCI_COMMAND_INVALIDATE = 0x10  # Use memory write and invalidate
PCI_COMMAND_VGA_PALETTE = 0x20  # Enable palette snooping
PCI_COMMAND_PARITY = 0x40  # Enable parity checking
PCI_COMMAND_WAIT = 0x80  # Enable address/data stepping
PCI_COMMAND_SERR = 0x100  # Enable SERR
PCI_COMMAND_FAST_BACK = 0x200  # Enable back-to-back writes
PCI_COMMAND_INTX_DISABLE = 0x400  # INTx Emulation Disable
PCI_STATUS = 0x06  # 16 bits
PCI_STATUS_IMM_READY = 0x01  # Immediate Readiness
PCI_STATUS_INTERRUPT = 0x08  # Interrupt status
PCI_STATUS_CAP_LIST = 0x10  # Support Capability List
PCI_STATUS_66MHZ = 0x20  # Support 66 MHz PCI 2.1 bus
PCI_STATUS_UDF = 0x40  # Support User Definable Features [obsolete]
PCI_STATUS_FAST_BACK = 0x80  # Accept fast-back to back
PCI_STATUS_PARITY = 0x100  # Detected parity error
PCI_STATUS_DEVSEL_MASK = 0x600  # DEVSEL timing
PCI_STATUS_DEVSEL_FAST = 0x000
PCI_STATUS_DEVSEL_MEDIUM = 0x200
PCI_STATUS_DEVSEL_SLOW = 0x400
PCI_STATUS_SIG_TARGET_ABORT = 0x800  # Set on target abort
PCI_STATUS_REC_TARGET_ABORT = 0x1000  # Master ack of "
PCI_STATUS_REC_MASTER_ABORT = 0x2000  # Set on master abort
PCI_STATUS_SIG_SYSTEM_ERROR = 0x4000  # Set when we drive SERR
PCI_STATUS_DETECTED_PARITY = 0x8000  # Set on parity error
PCI_CLASS_REVISION = 0x08  # High 24 bits are class, low 8 revision
PCI_REVISION_ID = 0x08  # Revision ID
PCI_CLASS_PROG = 0x09  # Reg. Level Programming Interface
PCI_CLASS_DEVICE = 0x0A  # Device class
PCI_CACHE_LINE_SIZE = 0x0C  # 8 bits
PCI_LATENCY_TIMER = 0x0D  # 8 bits
PCI_HEADER_TYPE = 0x0E  # 8 bits
PCI_HEADER_TYPE_MASK = 0x7F
PCI_HEADER_TYPE_NORMAL = 0
PCI_HEADER_TYPE_BRIDGE = 1
PCI_HEADER_TYPE_CARDBUS = 2
PCI_HEADER_TYPE_MFD = 0x80  # Multi-Function Device (possible)
PCI_BIST = 0x0F  # 8 bits
PCI_BIST_CODE_MASK = 0x0F  # Return result
PCI_BIST_START = 0x40  # 1 to start BIST, 2 secs or less
PCI_BIST_CAPABLE = 0x80  # 1 if BIST capable
PCI_BASE_ADDRESS_0 = 0x10  # 32 bits
PCI_BASE_ADDRESS_1 = 0x14  # 32 bits [htype 0,1 only]
PCI_BASE_ADDRESS_2 = 0x18  # 32 bits [htype 0 only]
PCI_BASE_ADDRESS_3 = 0x1C  # 32 bits
PCI_BASE_ADDRESS_4 = 0x20  # 32 bits
PCI_BASE_ADDRESS_5 = 0x24  # 32 bits
PCI_BASE_ADDRESS_SPACE = 0x01  # 0 = memory, 1 = I/O
PCI_BASE_ADDRESS_SPACE_IO = 0x01
PCI_BASE_ADDRESS_SPACE_MEMORY = 0x00
PCI_BASE_ADDRESS_MEM_TYPE_MASK = 0x06
PCI_BASE_ADDRESS_MEM_TYPE_32 = 0x00  # 32 bit address
PCI_BASE_ADDRESS_MEM_TYPE_1M = 0x02  # Below 1M [obsolete]
PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04  # 64 bit address
PCI_BASE_ADDRESS_MEM_PREFETCH = 0x08  # prefetchable?
PCI_BASE_ADDRESS_MEM_MASK = 0xFFFFFFFFFFFFFFF0  # (~0x0fUL), an unsigned long
PCI_BASE_ADDRESS_IO_MASK = 0xFFFFFFFFFFFFFFFC  # (~0x03UL), an unsigned long

# bit 1 is reserved if address_space = 1

# Header type 0 (normal devices)
PCI_CARDBUS_CIS = 0x28
PCI_SUBSYSTEM_VENDOR_ID = 0x2C
PCI_SUBSYSTEM_ID = 0x2E
PCI_ROM_ADDRESS = 0x30  # Bits 31..11 are address, 10..1 reserved
PCI_ROM_ADDRESS_ENABLE = 0x01
PCI_ROM_ADDRESS_MASK = 0xFFFFF800  # (~0x7ffU), an unsigned int
PCI_CAPABILITY_LIST = 0x34  # Offset of first capability list entry

# 0x35-0x3b are reserved
PCI_INTERRUPT_LINE = 0x3C  # 8 bits
PCI_INTERRUPT_PIN = 0x3D  # 8 bits
PCI_MIN_GNT = 0x3E  # 8 bits
PCI_MAX_LAT = 0x3F  # 8 bits

# Header type 1 (PCI-to-PCI bridges)
PCI_PRIMARY_BUS = 0x18  # Primary bus number
PCI_SECONDARY_BUS = 0x19  # Secondary bus number
PCI_SUBORDINATE_BUS = 0x1A  # Highest bus number behind the bridge
PCI_SEC_LATENCY_TIMER = 0x1B  # Latency timer for secondary interface

# Masks for dword-sized processing of Bus Number and Sec Latency Timer fields
PCI_PRIMARY_BUS_MASK = 0x000000FF
PCI_SECONDARY_BUS_MASK = 0x0000FF00
PCI_SUBORDINATE_BUS_MASK = 0x00FF0000
PCI_SEC_LATENCY_TIMER_MASK = 0xFF000000
PCI_IO_BASE = 0x1C  # I/O range behind the bridge
PCI_IO_LIMIT = 0x1D
PCI_IO_RANGE_TYPE_MASK = 0x0F  # I/O bridging type
PCI_IO_RANGE_TYPE_16 = 0x00
PCI_IO_RANGE_TYPE_32 = 0x01
PCI_IO_RANGE_MASK = 0xFFFFFFFFFFFFFFF0  # (~0x0fUL): Standard 4K I/O windows
PCI_IO_1K_RANGE_MASK = 0xFFFFFFFFFFFFFFFC  # (~0x03UL): Intel 1K I/O windows
PCI_SEC_STATUS = 0x1E  # Secondary status register, only bit 14 used
PCI_MEMORY_BASE = 0x20  # Memory range behind
PCI_MEMORY_LIMIT = 0x22
PCI_MEMORY_RANGE_TYPE_MASK = 0x0F
PCI_MEMORY_RANGE_MASK = 0xFFFFFFFFFFFFFFF0  # (~0x0fUL)
PCI_PREF_MEMORY_BASE = 0x24  # Prefetchable memory range behind
PCI_PREF_MEMORY_LIMIT = 0x26
PCI_PREF_RANGE_TYPE_MASK = 0x0F
PCI_PREF_RANGE_TYPE_32 = 0x00
PCI_PREF_RANGE_TYPE_64 = 0x01
PCI_PREF_RANGE_MASK = 0xFFFFFFFFFFFFFFF0  # (~0x0fUL)
PCI_PREF_BASE_UPPER32 = 0x28  # Upper half of prefetchable memory range
PCI_PREF_LIMIT_UPPER32 = 0x2C
PCI_IO_BASE_UPPER16 = 0x30  # Upper half of I/O addresses
PCI_IO_LIMIT_UPPER16 = 0x32

# 0x34 same as for htype 0

# 0x35-0x3b is reserved
PCI_ROM_ADDRESS1 = 0x38  # Same as PCI_ROM_ADDRESS, but for htype 1

# 0x3c-0x3d are same as for htype 0
PCI_BRIDGE_CONTROL = 0x3E
PCI_BRIDGE_CTL_PARITY = 0x01  # Enable parity detection on secondary interface
PCI_BRIDGE_CTL_SERR = 0x02  # The same for SERR forwarding
PCI_BRIDGE_CTL_ISA = 0x04  # Enable ISA mode
PCI_BRIDGE_CTL_VGA = 0x08  # Forward VGA addresses
PCI_BRIDGE_CTL_MASTER_ABORT = 0x20  # Report master aborts
PCI_BRIDGE_CTL_BUS_RESET = 0x40  # Secondary bus reset
PCI_BRIDGE_CTL_FAST_BACK = 0x80  # Fast Back2Back enabled on secondary interface

# Capability lists
PCI_CAP_ID_MASK = 0x00FF  # Capability ID mask
PCI_CAP_LIST_NEXT_MASK = 0xFF00  # Next Capability Pointer mask
PCI_CAP_LIST_ID = 0  # Capability ID
PCI_CAP_ID_PM = 0x01  # Power Management
PCI_CAP_ID_AGP = 0x02  # Accelerated Graphics Port
PCI_CAP_ID_VPD = 0x03  # Vital Product Data
PCI_CAP_ID_SLOTID = 0x04  # Slot Identification
PCI_CAP_ID_MSI = 0x05  # Message Signalled Interrupts
PCI_CAP_ID_CHSWP = 0x06  # CompactPCI HotSwap
PCI_CAP_ID_PCIX = 0x07  # PCI-X
PCI_CAP_ID_HT = 0x08  # HyperTransport
PCI_CAP_ID_VNDR = 0x09  # Vendor-Specific
PCI_CAP_ID_DBG = 0x0A  # Debug port
PCI_CAP_ID_CCRC = 0x0B  # CompactPCI Central Resource Control
PCI_CAP_ID_SHPC = 0x0C  # PCI Standard Hot-Plug Controller
PCI_CAP_ID_SSVID = 0x0D  # Bridge subsystem vendor/device ID
PCI_CAP_ID_AGP3 = 0x0E  # AGP Target PCI-PCI bridge
PCI_CAP_ID_SECDEV = 0x0F  # Secure Device
PCI_CAP_ID_EXP = 0x10  # PCI Express
PCI_CAP_ID_MSIX = 0x11  # MSI-X
PCI_CAP_ID_SATA = 0x12  # SATA Data/Index Conf.
PCI_CAP_ID_AF = 0x13  # PCI Advanced Features
PCI_CAP_ID_EA = 0x14  # PCI Enhanced Allocation
PCI_CAP_ID_MAX = PCI_CAP_ID_EA
PCI_CAP_LIST_NEXT = 1  # Next capability in the list
PCI_CAP_FLAGS = 2  # Capability defined flags (16 bits)
PCI_CAP_SIZEOF = 4

# Power Management Registers
PCI_PM_PMC = 2  # PM Capabilities Register
PCI_PM_CAP_VER_MASK = 0x0007  # Version
PCI_PM_CAP_PME_CLOCK = 0x0008  # PME clock required
PCI_PM_CAP_RESERVED = 0x0010  # Reserved field
PCI_PM_CAP_DSI = 0x0020  # Device specific initialization
PCI_PM_CAP_AUX_POWER = 0x01C0  # Auxiliary power support mask
PCI_PM_CAP_D1 = 0x0200  # D1 power state support
PCI_PM_CAP_D2 = 0x0400  # D2 power state support
PCI_PM_CAP_PME = 0x0800  # PME pin supported
PCI_PM_CAP_PME_MASK = 0xF800  # PME Mask of all supported states
PCI_PM_CAP_PME_D0 = 0x0800  # PME# from D0
PCI_PM_CAP_PME_D1 = 0x1000  # PME# from D1
PCI_PM_CAP_PME_D2 = 0x2000  # PME# from D2
PCI_PM_CAP_PME_D3hot = 0x4000  # PME# from D3 (hot)
PCI_PM_CAP_PME_D3cold = 0x8000  # PME# from D3 (cold)
PCI_PM_CAP_PME_SHIFT = 11  # Start of the PME Mask in PMC
PCI_PM_CTRL = 4  # PM control and status register
PCI_PM_CTRL_STATE_MASK = 0x0003  # Current power state (D0 to D3)
PCI_PM_CTRL_NO_SOFT_RESET = 0x0008  # No reset for D3hot->D0
PCI_PM_CTRL_PME_ENABLE = 0x0100  # PME pin enable
PCI_PM_CTRL_DATA_SEL_MASK = 0x1E00  # Data select (??)
PCI_PM_CTRL_DATA_SCALE_MASK = 0x6000  # Data scale (??)
PCI_PM_CTRL_PME_STATUS = 0x8000  # PME pin status
PCI_PM_PPB_EXTENSIONS = 6  # PPB support extensions (??)
PCI_PM_PPB_B2_B3 = 0x40  # Stop clock when in D3hot (??)
PCI_PM_BPCC_ENABLE = 0x80  # Bus power/clock control enable (??)
PCI_PM_DATA_REGISTER = 7  # (??)
PCI_PM_SIZEOF = 8

# Message Signaled Interrupt registers
PCI_MSI_FLAGS = 0x02  # Message Control
PCI_MSI_FLAGS_ENABLE = 0x0001  # MSI feature enabled
PCI_MSI_FLAGS_QMASK = 0x000E  # Maximum queue size available
PCI_MSI_FLAGS_QSIZE = 0x0070  # Message queue size configured
PCI_MSI_FLAGS_64BIT = 0x0080  # 64-bit addresses allowed
PCI_MSI_FLAGS_MASKBIT = 0x0100  # Per-vector masking capable
PCI_MSI_RFU = 3  # Rest of capability flags
PCI_MSI_ADDRESS_LO = 0x04  # Lower 32 bits
PCI_MSI_ADDRESS_HI = 0x08  # Upper 32 bits (if PCI_MSI_FLAGS_64BIT set)
PCI_MSI_DATA_32 = 0x08  # 16 bits of data for 32-bit devices
PCI_MSI_MASK_32 = 0x0C  # Mask bits register for 32-bit devices
PCI_MSI_PENDING_32 = 0x10  # Pending intrs for 32-bit devices
PCI_MSI_DATA_64 = 0x0C  # 16 bits of data for 64-bit devices
PCI_MSI_MASK_64 = 0x10  # Mask bits register for 64-bit devices
PCI_MSI_PENDING_64 = 0x14  # Pending intrs for 64-bit devices

# MSI-X registers (in MSI-X capability)
PCI_MSIX_FLAGS = 2  # Message Control
PCI_MSIX_FLAGS_QSIZE = 0x07FF  # Table size
PCI_MSIX_FLAGS_MASKALL = 0x4000  # Mask all vectors for this function
PCI_MSIX_FLAGS_ENABLE = 0x8000  # MSI-X enable
PCI_MSIX_TABLE = 4  # Table offset
PCI_MSIX_TABLE_BIR = 0x00000007  # BAR index
PCI_MSIX_TABLE_OFFSET = 0xFFFFFFF8  # Offset into specified BAR
PCI_MSIX_PBA = 8  # Pending Bit Array offset
PCI_MSIX_PBA_BIR = 0x00000007  # BAR index
PCI_MSIX_PBA_OFFSET = 0xFFFFFFF8  # Offset into specified BAR
PCI_MSIX_FLAGS_BIRMASK = PCI_MSIX_PBA_BIR  # deprecated
PCI_CAP_MSIX_SIZEOF = 12  # size of MSIX registers

# MSI-X Table entry format (in memory mapped by a BAR)
PCI_MSIX_ENTRY_SIZE = 16
PCI_MSIX_ENTRY_LOWER_ADDR = 0x0  # Message Address
PCI_MSIX_ENTRY_UPPER_ADDR = 0x4  # Message Upper Address
PCI_MSIX_ENTRY_DATA = 0x8  # Message Data
PCI_MSIX_ENTRY_VECTOR_CTRL = 0xC  # Vector Control
PCI_MSIX_ENTRY_CTRL_MASKBIT = 0x00000001  # Mask Bit
PCI_MSIX_ENTRY_CTRL_ST = 0xFFFF0000  # Steering Tag

# PCI Advanced Feature registers
PCI_AF_LENGTH = 2
PCI_AF_CAP = 3
PCI_AF_CAP_TP = 0x01
PCI_AF_CAP_FLR = 0x02
PCI_AF_CTRL = 4
PCI_AF_CTRL_FLR = 0x01
PCI_AF_STATUS = 5
PCI_AF_STATUS_TP = 0x01
PCI_CAP_AF_SIZEOF = 6  # size of AF registers

# PCI Express capability registers
PCI_EXP_FLAGS = 0x02  # Capabilities register
PCI_EXP_FLAGS_VERS = 0x000F  # Capability version
PCI_EXP_FLAGS_TYPE = 0x00F0  # Device/Port type
PCI_EXP_TYPE_ENDPOINT = 0x0  # Express Endpoint
PCI_EXP_TYPE_LEG_END = 0x1  # Legacy Endpoint
PCI_EXP_TYPE_ROOT_PORT = 0x4  # Root Port
PCI_EXP_TYPE_UPSTREAM = 0x5  # Upstream Port
PCI_EXP_TYPE_DOWNSTREAM = 0x6  # Downstream Port
PCI_EXP_TYPE_PCI_BRIDGE = 0x7  # PCIe to PCI/PCI-X Bridge
PCI_EXP_TYPE_PCIE_BRIDGE = 0x8  # PCI/PCI-X to PCIe Bridge
PCI_EXP_TYPE_RC_END = 0x9  # Root Complex Integrated Endpoint
PCI_EXP_TYPE_RC_EC = 0xA  # Root Complex Event Collector
PCI_EXP_FLAGS_SLOT = 0x0100  # Slot implemented
PCI_EXP_FLAGS_IRQ = 0x3E00  # Interrupt message number
PCI_EXP_FLAGS_FLIT = 0x8000  # Flit Mode Supported
PCI_EXP_DEVCAP = 0x04  # Device capabilities
PCI_EXP_DEVCAP_PAYLOAD = 0x00000007  # Max_Payload_Size
PCI_EXP_DEVCAP_PHANTOM = 0x00000018  # Phantom functions
PCI_EXP_DEVCAP_EXT_TAG = 0x00000020  # Extended tags
PCI_EXP_DEVCAP_L0S = 0x000001C0  # L0s Acceptable Latency
PCI_EXP_DEVCAP_L1 = 0x00000E00  # L1 Acceptable Latency
PCI_EXP_DEVCAP_ATN_BUT = 0x00001000  # Attention Button Present
PCI_EXP_DEVCAP_ATN_IND = 0x00002000  # Attention Indicator Present
PCI_EXP_DEVCAP_PWR_IND = 0x00004000  # Power Indicator Present
PCI_EXP_DEVCAP_RBER = 0x00008000  # Role-Based Error Reporting
PCI_EXP_DEVCAP_PWR_VAL = 0x03FC0000  # Slot Power Limit Value
PCI_EXP_DEVCAP_PWR_SCL = 0x0C000000  # Slot Power Limit Scale
PCI_EXP_DEVCAP_FLR = 0x10000000  # Function Level Reset
PCI_EXP_DEVCAP_TEE = 0x40000000  # TEE I/O (TDISP) Support
PCI_EXP_DEVCTL = 0x08  # Device Control
PCI_EXP_DEVCTL_CERE = 0x0001  # Correctable Error Reporting En.
PCI_EXP_DEVCTL_NFERE = 0x0002  # Non-Fatal Error Reporting Enable
PCI_EXP_DEVCTL_FERE = 0x0004  # Fatal Error Reporting Enable
PCI_EXP_DEVCTL_URRE = 0x0008  # Unsupported Request Reporting En.
PCI_EXP_DEVCTL_RELAX_EN = 0x0010  # Enable relaxed ordering
PCI_EXP_DEVCTL_PAYLOAD = 0x00E0  # Max_Payload_Size
PCI_EXP_DEVCTL_PAYLOAD_128B = 0x0000  # 128 Bytes
PCI_EXP_DEVCTL_PAYLOAD_256B = 0x0020  # 256 Bytes
PCI_EXP_DEVCTL_PAYLOAD_512B = 0x0040  # 512 Bytes
PCI_EXP_DEVCTL_PAYLOAD_1024B = 0x0060  # 1024 Bytes
PCI_EXP_DEVCTL_PAYLOAD_2048B = 0x0080  # 2048 Bytes
PCI_EXP_DEVCTL_PAYLOAD_4096B = 0x00A0  # 4096 Bytes
PCI_EXP_DEVCTL_EXT_TAG = 0x0100  # Extended Tag Field Enable
PCI_EXP_DEVCTL_PHANTOM = 0x0200  # Phantom Functions Enable
PCI_EXP_DEVCTL_AUX_PME = 0x0400  # Auxiliary Power PM Enable
PCI_EXP_DEVCTL_NOSNOOP_EN = 0x0800  # Enable No Snoop
PCI_EXP_DEVCTL_READRQ = 0x7000  # Max_Read_Request_Size
PCI_EXP_DEVCTL_READRQ_128B = 0x0000  # 128 Bytes
PCI_EXP_DEVCTL_READRQ_256B = 0x1000  # 256 Bytes
PCI_EXP_DEVCTL_READRQ_512B = 0x2000  # 512 Bytes
PCI_EXP_DEVCTL_READRQ_1024B = 0x3000  # 1024 Bytes
PCI_EXP_DEVCTL_READRQ_2048B = 0x4000  # 2048 Bytes
PCI_EXP_DEVCTL_READRQ_4096B = 0x5000  # 4096 Bytes
PCI_EXP_DEVCTL_BCR_FLR = 0x8000  # Bridge Configuration Retry / FLR
PCI_EXP_DEVSTA = 0x0A  # Device Status
PCI_EXP_DEVSTA_CED = 0x0001  # Correctable Error Detected
PCI_EXP_DEVSTA_NFED = 0x0002  # Non-Fatal Error Detected
PCI_EXP_DEVSTA_FED = 0x0004  # Fatal Error Detected
PCI_EXP_DEVSTA_URD = 0x0008  # Unsupported Request Detected
PCI_EXP_DEVSTA_AUXPD = 0x0010  # AUX Power Detected
PCI_EXP_DEVSTA_TRPND = 0x0020  # Transactions Pending
PCI_CAP_EXP_RC_ENDPOINT_SIZEOF_V1 = 12  # v1 endpoints without link end here
PCI_EXP_LNKCAP = 0x0C  # Link Capabilities
PCI_EXP_LNKCAP_SLS = 0x0000000F  # Max Link Speed (prior to PCIe r3.0: Supported Link Speeds)
PCI_EXP_LNKCAP_SLS_2_5GB = 0x00000001  # LNKCAP2 SLS Vector bit 0
PCI_EXP_LNKCAP_SLS_5_0GB = 0x00000002  # LNKCAP2 SLS Vector bit 1
PCI_EXP_LNKCAP_SLS_8_0GB = 0x00000003  # LNKCAP2 SLS Vector bit 2
PCI_EXP_LNKCAP_SLS_16_0GB = 0x00000004  # LNKCAP2 SLS Vector bit 3
PCI_EXP_LNKCAP_SLS_32_0GB = 0x00000005  # LNKCAP2 SLS Vector bit 4
PCI_EXP_LNKCAP_SLS_64_0GB = 0x00000006  # LNKCAP2 SLS Vector bit 5
PCI_EXP_LNKCAP_MLW = 0x000003F0  # Maximum Link Width
PCI_EXP_LNKCAP_ASPMS = 0x00000C00  # ASPM Support
PCI_EXP_LNKCAP_ASPM_L0S = 0x00000400  # ASPM L0s Support
PCI_EXP_LNKCAP_ASPM_L1 = 0x00000800  # ASPM L1 Support
PCI_EXP_LNKCAP_L0SEL = 0x00007000  # L0s Exit Latency
PCI_EXP_LNKCAP_L1EL = 0x00038000  # L1 Exit Latency
PCI_EXP_LNKCAP_CLKPM = 0x00040000  # Clock Power Management
PCI_EXP_LNKCAP_SDERC = 0x00080000  # Surprise Down Error Reporting Capable
PCI_EXP_LNKCAP_DLLLARC = 0x00100000  # Data Link Layer Link Active Reporting Capable
PCI_EXP_LNKCAP_LBNC = 0x00200000  # Link Bandwidth Notification Capability
PCI_EXP_LNKCAP_PN = 0xFF000000  # Port Number
PCI_EXP_LNKCTL = 0x10  # Link Control
PCI_EXP_LNKCTL_ASPMC = 0x0003  # ASPM Control
PCI_EXP_LNKCTL_ASPM_L0S = 0x0001  # L0s Enable
PCI_EXP_LNKCTL_ASPM_L1 = 0x0002  # L1 Enable
PCI_EXP_LNKCTL_RCB = 0x0008  # Read Completion Boundary
PCI_EXP_LNKCTL_LD = 0x0010  # Link Disable
PCI_EXP_LNKCTL_RL = 0x0020  # Retrain Link
PCI_EXP_LNKCTL_CCC = 0x0040  # Common Clock Configuration
PCI_EXP_LNKCTL_ES = 0x0080  # Extended Synch
PCI_EXP_LNKCTL_CLKREQ_EN = 0x0100  # Enable clkreq
PCI_EXP_LNKCTL_HAWD = 0x0200  # Hardware Autonomous Width Disable
PCI_EXP_LNKCTL_LBMIE = 0x0400  # Link Bandwidth Management Interrupt Enable
PCI_EXP_LNKCTL_LABIE = 0x0800  # Link Autonomous Bandwidth Interrupt Enable
PCI_EXP_LNKSTA = 0x12  # Link Status
PCI_EXP_LNKSTA_CLS = 0x000F  # Current Link Speed
PCI_EXP_LNKSTA_CLS_2_5GB = 0x0001  # Current Link Speed 2.5GT/s
PCI_EXP_LNKSTA_CLS_5_0GB = 0x0002  # Current Link Speed 5.0GT/s
PCI_EXP_LNKSTA_CLS_8_0GB = 0x0003  # Current Link Speed 8.0GT/s
PCI_EXP_LNKSTA_CLS_16_0GB = 0x0004  # Current Link Speed 16.0GT/s
PCI_EXP_LNKSTA_CLS_32_0GB = 0x0005  # Current Link Speed 32.0GT/s
PCI_EXP_LNKSTA_CLS_64_0GB = 0x0006  # Current Link Speed 64.0GT/s
PCI_EXP_LNKSTA_NLW = 0x03F0  # Negotiated Link Width
PCI_EXP_LNKSTA_NLW_X1 = 0x0010  # Current Link Width x1
PCI_EXP_LNKSTA_NLW_X2 = 0x0020  # Current Link Width x2
PCI_EXP_LNKSTA_NLW_X4 = 0x0040  # Current Link Width x4
PCI_EXP_LNKSTA_NLW_X8 = 0x0080  # Current Link Width x8
PCI_EXP_LNKSTA_NLW_SHIFT = 4  # start of NLW mask in link status
PCI_EXP_LNKSTA_LT = 0x0800  # Link Training
PCI_EXP_LNKSTA_SLC = 0x1000  # Slot Clock Configuration
PCI_EXP_LNKSTA_DLLLA = 0x2000  # Data Link Layer Link Active
PCI_EXP_LNKSTA_LBMS = 0x4000  # Link Bandwidth Management Status
PCI_EXP_LNKSTA_LABS = 0x8000  # Link Autonomous Bandwidth Status
PCI_CAP_EXP_ENDPOINT_SIZEOF_V1 = 20  # v1 endpoints with link end here
PCI_EXP_SLTCAP = 0x14  # Slot Capabilities
PCI_EXP_SLTCAP_ABP = 0x00000001  # Attention Button Present
PCI_EXP_SLTCAP_PCP = 0x00000002  # Power Controller Present
PCI_EXP_SLTCAP_MRLSP = 0x00000004  # MRL Sensor Present
PCI_EXP_SLTCAP_AIP = 0x00000008  # Attention Indicator Present
PCI_EXP_SLTCAP_PIP = 0x00000010  # Power Indicator Present
PCI_EXP_SLTCAP_HPS = 0x00000020  # Hot-Plug Surprise
PCI_EXP_SLTCAP_HPC = 0x00000040  # Hot-Plug Capable
PCI_EXP_SLTCAP_SPLV = 0x00007F80  # Slot Power Limit Value
PCI_EXP_SLTCAP_SPLS = 0x00018000  # Slot Power Limit Scale
PCI_EXP_SLTCAP_EIP = 0x00020000  # Electromechanical Interlock Present
PCI_EXP_SLTCAP_NCCS = 0x00040000  # No Command Completed Support
PCI_EXP_SLTCAP_PSN = 0xFFF80000  # Physical Slot Number
PCI_EXP_SLTCTL = 0x18  # Slot Control
PCI_EXP_SLTCTL_ABPE = 0x0001  # Attention Button Pressed Enable
PCI_EXP_SLTCTL_PFDE = 0x0002  # Power Fault Detected Enable
PCI_EXP_SLTCTL_MRLSCE = 0x0004  # MRL Sensor Changed Enable
PCI_EXP_SLTCTL_PDCE = 0x0008  # Presence Detect Changed Enable
PCI_EXP_SLTCTL_CCIE = 0x0010  # Command Completed Interrupt Enable
PCI_EXP_SLTCTL_HPIE = 0x0020  # Hot-Plug Interrupt Enable
PCI_EXP_SLTCTL_AIC = 0x00C0  # Attention Indicator Control
PCI_EXP_SLTCTL_ATTN_IND_SHIFT = 6  # Attention Indicator shift
PCI_EXP_SLTCTL_ATTN_IND_ON = 0x0040  # Attention Indicator on
PCI_EXP_SLTCTL_ATTN_IND_BLINK = 0x0080  # Attention Indicator blinking
PCI_EXP_SLTCTL_ATTN_IND_OFF = 0x00C0  # Attention Indicator off
PCI_EXP_SLTCTL_PIC = 0x0300  # Power Indicator Control
PCI_EXP_SLTCTL_PWR_IND_ON = 0x0100  # Power Indicator on
PCI_EXP_SLTCTL_PWR_IND_BLINK = 0x0200  # Power Indicator blinking
PCI_EXP_SLTCTL_PWR_IND_OFF = 0x0300  # Power Indicator off
PCI_EXP_SLTCTL_PCC = 0x0400  # Power Controller Control
PCI_EXP_SLTCTL_PWR_ON = 0x0000  # Power On
PCI_EXP_SLTCTL_PWR_OFF = 0x0400  # Power Off
PCI_EXP_SLTCTL_EIC = 0x0800  # Electromechanical Interlock Control
PCI_EXP_SLTCTL_DLLSCE = 0x1000  # Data Link Layer State Changed Enable
PCI_EXP_SLTCTL_ASPL_DISABLE = 0x2000  # Auto Slot Power Limit Disable
PCI_EXP_SLTCTL_IBPD_DISABLE = 0x4000  # In-band PD disable
PCI_EXP_SLTSTA = 0x1A  # Slot Status
PCI_EXP_SLTSTA_ABP = 0x0001  # Attention Button Pressed
PCI_EXP_SLTSTA_PFD = 0x0002  # Power Fault Detected
PCI_EXP_SLTSTA_MRLSC = 0x0004  # MRL Sensor Changed
PCI_EXP_SLTSTA_PDC = 0x0008  # Presence Detect Changed
PCI_EXP_SLTSTA_CC = 0x0010  # Command Completed
PCI_EXP_SLTSTA_MRLSS = 0x0020  # MRL Sensor State
PCI_EXP_SLTSTA_PDS = 0x0040  # Presence Detect State
PCI_EXP_SLTSTA_EIS = 0x0080  # Electromechanical Interlock Status
PCI_EXP_SLTSTA_DLLSC = 0x0100  # Data Link Layer State Changed
PCI_EXP_RTCTL = 0x1C  # Root Control
PCI_EXP_RTCTL_SECEE = 0x0001  # System Error on Correctable Error
PCI_EXP_RTCTL_SENFEE = 0x0002  # System Error on Non-Fatal Error
PCI_EXP_RTCTL_SEFEE = 0x0004  # System Error on Fatal Error
PCI_EXP_RTCTL_PMEIE = 0x0008  # PME Interrupt Enable
PCI_EXP_RTCTL_RRS_SVE = 0x0010  # Config RRS Software Visibility Enable
PCI_EXP_RTCTL_CRSSVE = PCI_EXP_RTCTL_RRS_SVE  # compatibility
PCI_EXP_RTCAP = 0x1E  # Root Capabilities
PCI_EXP_RTCAP_RRS_SV = 0x0001  # Config RRS Software Visibility
PCI_EXP_RTCAP_CRSVIS = PCI_EXP_RTCAP_RRS_SV  # compatibility
PCI_EXP_RTSTA = 0x20  # Root Status
PCI_EXP_RTSTA_PME_RQ_ID = 0x0000FFFF  # PME Requester ID
PCI_EXP_RTSTA_PME = 0x00010000  # PME status
PCI_EXP_RTSTA_PENDING = 0x00020000  # PME pending
PCI_EXP_DEVCAP2 = 0x24  # Device Capabilities 2
PCI_EXP_DEVCAP2_COMP_TMOUT_DIS = 0x00000010  # Completion Timeout Disable supported
PCI_EXP_DEVCAP2_ARI = 0x00000020  # Alternative Routing-ID
PCI_EXP_DEVCAP2_ATOMIC_ROUTE = 0x00000040  # Atomic Op routing
PCI_EXP_DEVCAP2_ATOMIC_COMP32 = 0x00000080  # 32b AtomicOp completion
PCI_EXP_DEVCAP2_ATOMIC_COMP64 = 0x00000100  # 64b AtomicOp completion
PCI_EXP_DEVCAP2_ATOMIC_COMP128 = 0x00000200  # 128b AtomicOp completion
PCI_EXP_DEVCAP2_LTR = 0x00000800  # Latency tolerance reporting
PCI_EXP_DEVCAP2_TPH_COMP_MASK = 0x00003000  # TPH completer support
PCI_EXP_DEVCAP2_OBFF_MASK = 0x000C0000  # OBFF support mechanism
PCI_EXP_DEVCAP2_OBFF_MSG = 0x00040000  # New message signaling
PCI_EXP_DEVCAP2_OBFF_WAKE = 0x00080000  # Re-use WAKE# for OBFF
PCI_EXP_DEVCAP2_EE_PREFIX = 0x00200000  # End-End TLP Prefix
PCI_EXP_DEVCAP2_EE_PREFIX_MAX = 0x00C00000  # Max End-End TLP Prefixes
PCI_EXP_DEVCTL2 = 0x28  # Device Control 2
PCI_EXP_DEVCTL2_COMP_TIMEOUT = 0x000F  # Completion Timeout Value
PCI_EXP_DEVCTL2_COMP_TMOUT_DIS = 0x0010  # Completion Timeout Disable
PCI_EXP_DEVCTL2_ARI = 0x0020  # Alternative Routing-ID
PCI_EXP_DEVCTL2_ATOMIC_REQ = 0x0040  # Set Atomic requests
PCI_EXP_DEVCTL2_ATOMIC_EGRESS_BLOCK = 0x0080  # Block atomic egress
PCI_EXP_DEVCTL2_IDO_REQ_EN = 0x0100  # Allow IDO for requests
PCI_EXP_DEVCTL2_IDO_CMP_EN = 0x0200  # Allow IDO for completions
PCI_EXP_DEVCTL2_LTR_EN = 0x0400  # Enable LTR mechanism
PCI_EXP_DEVCTL2_OBFF_MSGA_EN = 0x2000  # Enable OBFF Message type A
PCI_EXP_DEVCTL2_OBFF_MSGB_EN = 0x4000  # Enable OBFF Message type B
PCI_EXP_DEVCTL2_OBFF_WAKE_EN = 0x6000  # OBFF using WAKE# signaling
PCI_EXP_DEVSTA2 = 0x2A  # Device Status 2
PCI_CAP_EXP_RC_ENDPOINT_SIZEOF_V2 = 0x2C  # end of v2 EPs w/o link
PCI_EXP_LNKCAP2 = 0x2C  # Link Capabilities 2
PCI_EXP_LNKCAP2_SLS = 0x000000FE  # Supported Link Speeds Vector
PCI_EXP_LNKCAP2_SLS_2_5GB = 0x00000002  # Supported Speed 2.5GT/s
PCI_EXP_LNKCAP2_SLS_5_0GB = 0x00000004  # Supported Speed 5GT/s
PCI_EXP_LNKCAP2_SLS_8_0GB = 0x00000008  # Supported Speed 8GT/s
PCI_EXP_LNKCAP2_SLS_16_0GB = 0x00000010  # Supported Speed 16GT/s
PCI_EXP_LNKCAP2_SLS_32_0GB = 0x00000020  # Supported Speed 32GT/s
PCI_EXP_LNKCAP2_SLS_64_0GB = 0x00000040  # Supported Speed 64GT/s
PCI_EXP_LNKCAP2_CROSSLINK = 0x00000100  # Crosslink supported
PCI_EXP_LNKCTL2 = 0x30  # Link Control 2
PCI_EXP_LNKCTL2_TLS = 0x000F
PCI_EXP_LNKCTL2_TLS_2_5GT = 0x0001  # Supported Speed 2.5GT/s
PCI_EXP_LNKCTL2_TLS_5_0GT = 0x0002  # Supported Speed 5GT/s
PCI_EXP_LNKCTL2_TLS_8_0GT = 0x0003  # Supported Speed 8GT/s
PCI_EXP_LNKCTL2_TLS_16_0GT = 0x0004  # Supported Speed 16GT/s
PCI_EXP_LNKCTL2_TLS_32_0GT = 0x0005  # Supported Speed 32GT/s
PCI_EXP_LNKCTL2_TLS_64_0GT = 0x0006  # Supported Speed 64GT/s
PCI_EXP_LNKCTL2_ENTER_COMP = 0x0010  # Enter Compliance
PCI_EXP_LNKCTL2_TX_MARGIN = 0x0380  # Transmit Margin
PCI_EXP_LNKCTL2_HASD = 0x0020  # HW Autonomous Speed Disable
PCI_EXP_LNKSTA2 = 0x32  # Link Status 2
PCI_EXP_LNKSTA2_FLIT = 0x0400  # Flit Mode Status
PCI_CAP_EXP_ENDPOINT_SIZEOF_V2 = 0x34  # end of v2 EPs w/ link
PCI_EXP_SLTCAP2 = 0x34  # Slot Capabilities 2
PCI_EXP_SLTCAP2_IBPD = 0x00000001  # In-band PD Disable Supported
PCI_EXP_SLTCTL2 = 0x38  # Slot Control 2
PCI_EXP_SLTSTA2 = 0x3A  # Slot Status 2

# Extended Capabilities (PCI-X 2.0 and Express)


def PCI_EXT_CAP_ID(header: int) -> int:
    """The capability id of an extended capability header dword."""
    return header & 0x0000FFFF


def PCI_EXT_CAP_VER(header: int) -> int:
    """The capability version of an extended capability header dword."""
    return (header >> 16) & 0xF


def PCI_EXT_CAP_NEXT(header: int) -> int:
    """The offset of the next extended capability (0 ends the list)."""
    return (header >> 20) & 0xFFC


PCI_EXT_CAP_ID_ERR = 0x01  # Advanced Error Reporting
PCI_EXT_CAP_ID_VC = 0x02  # Virtual Channel Capability
PCI_EXT_CAP_ID_DSN = 0x03  # Device Serial Number
PCI_EXT_CAP_ID_PWR = 0x04  # Power Budgeting
PCI_EXT_CAP_ID_RCLD = 0x05  # Root Complex Link Declaration
PCI_EXT_CAP_ID_RCILC = 0x06  # Root Complex Internal Link Control
PCI_EXT_CAP_ID_RCEC = 0x07  # Root Complex Event Collector
PCI_EXT_CAP_ID_MFVC = 0x08  # Multi-Function VC Capability
PCI_EXT_CAP_ID_VC9 = 0x09  # same as _VC
PCI_EXT_CAP_ID_RCRB = 0x0A  # Root Complex RB?
PCI_EXT_CAP_ID_VNDR = 0x0B  # Vendor-Specific
PCI_EXT_CAP_ID_CAC = 0x0C  # Config Access - obsolete
PCI_EXT_CAP_ID_ACS = 0x0D  # Access Control Services
PCI_EXT_CAP_ID_ARI = 0x0E  # Alternate Routing ID
PCI_EXT_CAP_ID_ATS = 0x0F  # Address Translation Services
PCI_EXT_CAP_ID_SRIOV = 0x10  # Single Root I/O Virtualization
PCI_EXT_CAP_ID_MRIOV = 0x11  # Multi Root I/O Virtualization
PCI_EXT_CAP_ID_MCAST = 0x12  # Multicast
PCI_EXT_CAP_ID_PRI = 0x13  # Page Request Interface
PCI_EXT_CAP_ID_AMD_XXX = 0x14  # Reserved for AMD
PCI_EXT_CAP_ID_REBAR = 0x15  # Resizable BAR
PCI_EXT_CAP_ID_DPA = 0x16  # Dynamic Power Allocation
PCI_EXT_CAP_ID_TPH = 0x17  # TPH Requester
PCI_EXT_CAP_ID_LTR = 0x18  # Latency Tolerance Reporting
PCI_EXT_CAP_ID_SECPCI = 0x19  # Secondary PCIe Capability
PCI_EXT_CAP_ID_PMUX = 0x1A  # Protocol Multiplexing
PCI_EXT_CAP_ID_PASID = 0x1B  # Process Address Space ID
PCI_EXT_CAP_ID_DPC = 0x1D  # Downstream Port Containment
PCI_EXT_CAP_ID_L1SS = 0x1E  # L1 PM Substates
PCI_EXT_CAP_ID_PTM = 0x1F  # Precision Time Measurement
PCI_EXT_CAP_ID_DVSEC = 0x23  # Designated Vendor-Specific
PCI_EXT_CAP_ID_VF_REBAR = 0x24  # VF Resizable BAR
PCI_EXT_CAP_ID_DLF = 0x25  # Data Link Feature
PCI_EXT_CAP_ID_PL_16GT = 0x26  # Physical Layer 16.0 GT/s
PCI_EXT_CAP_ID_NPEM = 0x29  # Native PCIe Enclosure Management
PCI_EXT_CAP_ID_PL_32GT = 0x2A  # Physical Layer 32.0 GT/s
PCI_EXT_CAP_ID_DOE = 0x2E  # Data Object Exchange
PCI_EXT_CAP_ID_DEV3 = 0x2F  # Device 3 Capability/Control/Status
PCI_EXT_CAP_ID_IDE = 0x30  # Integrity and Data Encryption
PCI_EXT_CAP_ID_PL_64GT = 0x31  # Physical Layer 64.0 GT/s
PCI_EXT_CAP_ID_MAX = PCI_EXT_CAP_ID_PL_64GT
PCI_EXT_CAP_DSN_SIZEOF = 12
PCI_EXT_CAP_MCAST_ENDPOINT_SIZEOF = 40

# TPH Completer Support
PCI_EXP_DEVCAP2_TPH_COMP_NONE = 0x0  # None
PCI_EXP_DEVCAP2_TPH_COMP_TPH_ONLY = 0x1  # TPH only
PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH = 0x3  # TPH and Extended TPH

# TPH Requester
PCI_TPH_CAP = 4  # capability register
PCI_TPH_CAP_ST_NS = 0x00000001  # No ST Mode Supported
PCI_TPH_CAP_ST_IV = 0x00000002  # Interrupt Vector Mode Supported
PCI_TPH_CAP_ST_DS = 0x00000004  # Device Specific Mode Supported
PCI_TPH_CAP_EXT_TPH = 0x00000100  # Ext TPH Requester Supported
PCI_TPH_CAP_LOC_MASK = 0x00000600  # ST Table Location
PCI_TPH_LOC_NONE = 0x00000000  # Not present
PCI_TPH_LOC_CAP = 0x00000200  # In capability
PCI_TPH_LOC_MSIX = 0x00000400  # In MSI-X
PCI_TPH_CAP_ST_MASK = 0x07FF0000  # ST Table Size
PCI_TPH_CAP_ST_SHIFT = 16  # ST Table Size shift
PCI_TPH_BASE_SIZEOF = 0xC  # Size with no ST table
PCI_TPH_CTRL = 8  # control register
PCI_TPH_CTRL_MODE_SEL_MASK = 0x00000007  # ST Mode Select
PCI_TPH_ST_NS_MODE = 0x0  # No ST Mode
PCI_TPH_ST_IV_MODE = 0x1  # Interrupt Vector Mode
PCI_TPH_ST_DS_MODE = 0x2  # Device Specific Mode
PCI_TPH_CTRL_REQ_EN_MASK = 0x00000300  # TPH Requester Enable
PCI_TPH_REQ_DISABLE = 0x0  # No TPH requests allowed
PCI_TPH_REQ_TPH_ONLY = 0x1  # TPH only requests allowed
PCI_TPH_REQ_EXT_TPH = 0x3  # Extended TPH requests allowed
