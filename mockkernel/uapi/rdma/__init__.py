"""Mirrors of ``include/uapi/rdma/*.h`` (Linux 7.2) and of rdma-core 65's DMAH names.

The uverbs ABI a dma-buf MR program speaks, one module per header:

``rdma_user_ioctl_cmds``
    ``RDMA_VERBS_IOCTL`` framing: ``ib_uverbs_ioctl_hdr`` + ``ib_uverbs_attr``,
    ``UVERBS_ATTR_F_*``.
``ib_user_ioctl_cmds``
    Object, method and attribute ids (``UVERBS_OBJECT_*``, ``UVERBS_METHOD_*``,
    ``UVERBS_ATTR_*``).
``ib_user_ioctl_verbs``
    Enums and structs passed as attributes (``IB_UVERBS_ACCESS_*``,
    ``rdma_driver_id``, ``ib_uverbs_query_port_resp_ex``, ...).
``ib_user_verbs``
    The legacy ``write()`` commands (``IB_USER_VERBS_CMD_*``, ``ib_uverbs_cmd_hdr``,
    ``ib_uverbs_get_context``, ``ib_uverbs_reg_mr``, ...); also used as the
    ``UVERBS_ATTR_CORE_IN``/``OUT`` payloads of ``UVERBS_METHOD_INVOKE_WRITE``.
``mlx5_user_ioctl_cmds`` / ``mlx5_user_ioctl_verbs``
    mlx5's driver-namespace ids (``MLX5_IB_ATTR_REG_DMABUF_MR_ACCESS_FLAGS``) and
    enums (``MLX5_IB_UAPI_REG_DMABUF_ACCESS_DATA_DIRECT``).
``rdma_core``
    Not a kernel header: the userspace names from rdma-core 65's
    ``infiniband/verbs.h`` for DMA handles (``ibv_dmah_init_attr``,
    ``IBV_DMAH_INIT_ATTR_MASK_*``, ``IBV_TPH_MEM_TYPE_*``).  The 7.2 kernel uapi
    has no names for the TPH memory types: the kernel's ``enum tph_mem_type`` is
    internal (``include/rdma/ib_verbs.h``).
"""
