"""Mirrors of ``include/uapi/linux/*.h`` (Linux 7.2), one module per header.

``dma_buf`` (linux/dma-buf.h), ``udmabuf``, ``ioctls`` (asm-generic/ioctls.h),
``vfio``, ``iommufd``, ``pci_regs``; ``vfio_tph`` holds the proposed, unmerged
TPH additions to linux/vfio.h, one section per patch-series profile.
"""
