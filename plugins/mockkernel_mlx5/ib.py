"""mlx5_ib: the RDMA side of a ConnectX function (``drivers/infiniband/hw/mlx5``).

MRs, as ``mr.c``/``odp.c`` do them (Mellanox nic-kernel tree), with the DMAH code of
``dmah.c`` and the TPH series' mlx5 patch (v7-v11, plus the re-query on re-map the
v11 review asked for):

* user memory: ``ib_umem_get`` (pinned), or ``ON_DEMAND`` (not pinned; with a DMAH:
  ``EOPNOTSUPP``);
* dma-buf, *dynamic* (the default): ``ib_umem_dmabuf_get`` with
  ``allow_peer2peer`` and ``invalidate_mappings``; mapped at registration (so a
  revoked vfio-pci buffer fails with ``ENODEV``); the invalidation zaps the mkey's
  translation and unmaps; the next access faults and maps again (``ENODEV`` while
  revoked: the RDMA WRITE completes in error);
* dma-buf, *data direct* (``MLX5_IB_UAPI_REG_DMABUF_ACCESS_DATA_DIRECT``): pinned,
  not revocable -- vfio-pci refuses the attachment (``EOPNOTSUPP``).

TPH of an mkey: a DMAH always wins (its PH, and its ST index when it has a CPU);
otherwise, for a dma-buf MR, the exporter's tag and PH (``dma_buf_get_pci_tph`` under
the reservation lock, or ``dma_buf_get_tph`` where the uAPI profile's op is ``get_tph``),
in the namespace of the function's enabled requester type (TPH-only: 8-bit, extended:
16-bit), turned into an ST index.  Any error: no TPH, and an ``mlx5.mr_tph`` trace
event says why.  The query runs again after every invalidation, at the re-map.
"""

from __future__ import annotations

import errno as _errno
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mockkernel.driver import (
    IB_DMAH_CPU_ID_EXISTS,
    IB_DMAH_MEM_TYPE_EXISTS,
    IB_DMAH_PH_EXISTS,
    PCI_TPH_REQ_EXT_TPH,
    PCI_TPH_REQ_TPH_ONLY,
    Attachment,
    AttrBundle,
    DmaBuf,
    DmaBufAttachOps,
    IbCq,
    IbDeviceOps,
    IbDmah,
    IbMr,
    IbPd,
    IbQp,
    IbQpAttr,
    IbUcontext,
    IbUmem,
    MrWriteResult,
    RoceAck,
    RocePacket,
    Udata,
    UmemDmabuf,
    Vma,
    current_mm,
    flags_in,
    ib_umem_dmabuf_get,
    ib_umem_dmabuf_get_pinned,
    ib_umem_get,
    kerr,
    pci_fabric,
    pcie_tph_enabled_req_type,
)
from mockkernel.uapi.rdma.ib_user_ioctl_cmds import UVERBS_METHOD_REG_DMABUF_MR, UVERBS_OBJECT_MR
from mockkernel.uapi.rdma.ib_user_ioctl_verbs import (
    IB_UVERBS_ACCESS_ON_DEMAND,
    IB_UVERBS_ACCESS_RELAXED_ORDERING,
    IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH,
    IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
    IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
)
from mockkernel.uapi.rdma.mlx5_user_ioctl_cmds import MLX5_IB_ATTR_REG_DMABUF_MR_ACCESS_FLAGS
from mockkernel.uapi.rdma.mlx5_user_ioctl_verbs import MLX5_IB_UAPI_REG_DMABUF_ACCESS_DATA_DIRECT

from .qp import Mlx5Verbs
from .st import MLX5_MKC_PCIE_TPH_NO_STEERING_TAG_INDEX
from .ucontext import (
    MLX5_DRIVER_OBJECTS,
    mlx5_alloc_ucontext,
    mlx5_dealloc_ucontext,
    mlx5_ib_mmap,
)

if TYPE_CHECKING:
    from . import Mlx5Dev

__all__ = ["MLX5_IB_NO_PH", "Mlx5IbOps", "Mlx5Mr"]

MLX5_IB_NO_PH = 0xFF
_PAGE = 4096
_IB_MR_REREG_PD = 2
_IB_MR_REREG_ACCESS = 4


@dataclass
class Mlx5Mr:
    """The driver's side of an MR: its mkey's translation and TPH fields."""

    kind: str  # "user", "odp", "dmabuf" (dynamic) or "data_direct" (pinned dma-buf)
    start: int = 0  # user address (user/odp)
    #: ODP: the address space the MR was made in (``umem_odp->umem.owning_mm``); a
    #: device fault reaches that, whichever task is current when the write arrives
    mm: Any = None
    ph: int = MLX5_IB_NO_PH
    st_index: int = MLX5_MKC_PCIE_TPH_NO_STEERING_TAG_INDEX
    st_ref: bool = False  # this MR holds a reference on st_index
    tph_source: str = "none"  # "dmah", "dmabuf" or "none"
    tph_reason: str = ""
    tph_queries: int = 0  # how many times the exporter was asked (re-queried per re-map)
    translation_valid: bool = False  # the mkey's PAS (zapped by an invalidation)
    invalidations: int = 0
    faults: int = 0


def _errname(e: OSError) -> str:
    if e.errno == _errno.EOPNOTSUPP:
        return "EOPNOTSUPP"  # errorcode says ENOTSUP, the same number
    return _errno.errorcode.get(e.errno or 0, str(e.errno))


class _DmabufAttachOps(DmaBufAttachOps):
    """``mlx5_ib_dmabuf_attach_ops``: peer-to-peer, revocable."""

    allow_peer2peer = True

    def __init__(self, ops: Mlx5IbOps) -> None:
        self._ops = ops

    def invalidate_mappings(self, attach: Attachment) -> None:
        self._ops.dmabuf_invalidate(attach)


class Mlx5IbOps(IbDeviceOps):
    """``mlx5_ib_dev_ops`` of one function (the state lives in :class:`Mlx5Dev`)."""

    uverbs_abi_ver = 1  # MLX5_IB_UVERBS_ABI_VERSION
    driver_attrs = {
        (UVERBS_OBJECT_MR, UVERBS_METHOD_REG_DMABUF_MR): [
            flags_in(MLX5_IB_ATTR_REG_DMABUF_MR_ACCESS_FLAGS)
        ],
    }
    driver_objects = MLX5_DRIVER_OBJECTS

    def __init__(self, mdev: Mlx5Dev) -> None:
        self.mdev = mdev
        self._key = 0
        self._index = 0
        self._lock = threading.Lock()
        self.attach_ops = _DmabufAttachOps(self)
        self.verbs = Mlx5Verbs(mdev)

    # -- keys --------------------------------------------------------------------------
    def _new_mkey(self) -> int:
        """``mlx5_idx_to_mkey(index) | key``: a 24-bit index and an 8-bit variant."""
        with self._lock:
            self._index += 1
            self._key = (self._key + 1) & 0xFF
            return (self._index & 0xFFFFFF) << 8 | self._key

    def _trace(self, event: str, **fields: Any) -> None:
        self.mdev.kernel.tracer.emit(event, ibdev=self.mdev.ibdev.name, **fields)  # (fields vary)

    # -- context, PD ---------------------------------------------------------------------
    def alloc_ucontext(self, uctx: IbUcontext, udata: Udata) -> None:
        """``mlx5_ib_alloc_ucontext``: the request as ``mlx5_ib_alloc_ucontext_req_v2``,
        the response as ``mlx5_ib_alloc_ucontext_resp`` (see :mod:`.ucontext`)."""
        mlx5_alloc_ucontext(self.mdev, uctx, udata)

    def mmap(self, uctx: IbUcontext, vma: Vma) -> None:
        """``mlx5_ib_mmap``: the page the offset's command names (:mod:`.ucontext`)."""
        mlx5_ib_mmap(self.mdev, uctx, vma)

    def dealloc_ucontext(self, uctx: IbUcontext) -> None:
        mlx5_dealloc_ucontext(self.mdev, uctx)

    def alloc_pd(self, pd: IbPd) -> None:
        pass

    def dealloc_pd(self, pd: IbPd) -> None:
        pass

    # -- CQs, QPs and the RoCE responder (qp.py) -------------------------------------------
    def create_cq(self, cq: IbCq, udata: Udata) -> None:
        """``mlx5_ib_create_cq``: the provider's buffer and doorbell (``mlx5_ib_create_cq``)."""
        self.verbs.create_cq(cq, udata)

    def destroy_cq(self, cq: IbCq) -> None:
        self.verbs.destroy_cq(cq)

    def create_qp(self, qp: IbQp, udata: Udata) -> None:
        """``mlx5_ib_create_qp``: the provider's buffer and doorbell (``mlx5_ib_create_qp``)."""
        self.verbs.create_qp(qp, udata)

    def modify_qp(self, qp: IbQp, attr: IbQpAttr, mask: int, udata: Udata) -> None:
        self.verbs.modify_qp(qp, attr, mask, udata)

    def destroy_qp(self, qp: IbQp) -> None:
        self.verbs.destroy_qp(qp)

    def roce_rcv(self, pkt: RocePacket) -> RoceAck | None:
        """The port's responder: an RDMA WRITE from the segment into an mkey."""
        return self.verbs.roce_rcv(pkt)

    # -- DMAH (dmah.c) -------------------------------------------------------------------
    def alloc_dmah(self, dmah: IbDmah, bundle: AttrBundle) -> None:
        """``mlx5_ib_alloc_dmah``: PH is required; CPU and memory type come together and
        get an ST index (``mlx5_st_alloc_index``'s errors pass through)."""
        if not dmah.has(IB_DMAH_PH_EXISTS):
            raise kerr(_errno.EINVAL)
        cpu, mem = dmah.has(IB_DMAH_CPU_ID_EXISTS), dmah.has(IB_DMAH_MEM_TYPE_EXISTS)
        if cpu or mem:
            if not (cpu and mem):
                raise kerr(_errno.EINVAL)
            st = self.mdev.st
            if st is None:
                raise kerr(_errno.EOPNOTSUPP)
            dmah.priv = st.alloc_index(dmah.mem_type, dmah.cpu_id)
        else:
            dmah.priv = MLX5_MKC_PCIE_TPH_NO_STEERING_TAG_INDEX

    def dealloc_dmah(self, dmah: IbDmah) -> None:
        st = self.mdev.st
        if dmah.has(IB_DMAH_CPU_ID_EXISTS) and st is not None:
            st.dealloc_index(dmah.priv)

    # -- TPH of an mkey --------------------------------------------------------------------
    def _release_st(self, m: Mlx5Mr) -> None:
        if m.st_ref and self.mdev.st is not None:
            self.mdev.st.dealloc_index(m.st_index)
        m.st_ref = False
        m.st_index = MLX5_MKC_PCIE_TPH_NO_STEERING_TAG_INDEX
        m.ph = MLX5_IB_NO_PH

    def _tph_from_dmah(self, m: Mlx5Mr, dmah: IbDmah) -> None:
        """The DMAH's PH, and its ST index (one more reference) when it has a CPU."""
        self._release_st(m)
        m.ph = dmah.ph
        m.tph_source = "dmah"
        m.tph_reason = ""
        st = self.mdev.st
        if dmah.has(IB_DMAH_CPU_ID_EXISTS) and st is not None:
            st.get_index(dmah.priv)
            m.st_index = dmah.priv
            m.st_ref = True

    def _tph_from_dmabuf(self, m: Mlx5Mr, dmabuf: DmaBuf) -> None:
        """The series' ``get_tph_from_dmabuf`` (resv held): any failure means no TPH."""
        self._release_st(m)
        m.tph_source = "none"
        pdev = self.mdev.pdev
        req = pcie_tph_enabled_req_type(pdev)
        uapi = self.mdev.kernel.uapi
        if uapi.tph_op is None:
            m.tph_reason = f"no TPH hook in the dma-buf core (uapi {uapi.name})"
            return
        if req == PCI_TPH_REQ_TPH_ONLY:
            extended = False
        elif req == PCI_TPH_REQ_EXT_TPH:
            extended = True
        else:
            m.tph_reason = "TPH requester disabled on the function"
            return
        m.tph_queries += 1
        try:  # resv held, which get_pci_tph needs and get_tph does not mind
            tag, ph = uapi.importer_get_tph(dmabuf, extended)
        except OSError as e:
            m.tph_reason = f"exporter: {_errname(e)}"
            return
        st = self.mdev.st
        try:
            if st is None:
                raise kerr(_errno.EOPNOTSUPP)
            index = st.alloc_index_by_tag(tag)
        except OSError as e:
            m.tph_reason = f"ST index for tag {tag:#x}: {_errname(e)}"
            return
        m.ph = ph
        m.st_index = index
        m.st_ref = not st.direct_mode
        m.tph_source = "dmabuf"
        m.tph_reason = ""

    def _trace_tph(self, mr: IbMr, m: Mlx5Mr) -> None:
        st = self.mdev.st
        self._trace(
            "mlx5.mr_tph",
            mkey=mr.lkey,
            source=m.tph_source,
            reason=m.tph_reason,
            ph=None if m.ph == MLX5_IB_NO_PH else m.ph,
            st_index=m.st_index,
            tag=st.tag_of(m.st_index) if st is not None and m.ph != MLX5_IB_NO_PH else None,
        )

    def tlp_hints(self, m: Mlx5Mr) -> tuple[int | None, int]:
        """(PH, steering tag) the function puts on its TLPs for this mkey now."""
        if m.ph == MLX5_IB_NO_PH or not self.mdev.pdev.tph_enabled:
            return None, 0
        st = self.mdev.st
        tag = st.tag_of(m.st_index) if st is not None else 0
        if pcie_tph_enabled_req_type(self.mdev.pdev) == PCI_TPH_REQ_TPH_ONLY:
            tag &= 0xFF
        return m.ph, tag

    # -- user MRs --------------------------------------------------------------------------
    def reg_user_mr(
        self, pd: IbPd, start: int, length: int, iova: int, access: int, dmah: IbDmah | None
    ) -> IbMr:
        """``mlx5_ib_reg_user_mr``."""
        if access & IB_UVERBS_ACCESS_ON_DEMAND:
            if dmah is not None or not self.mdev.odp:
                raise kerr(_errno.EOPNOTSUPP)
            m = Mlx5Mr("odp", start=start, translation_valid=True, mm=current_mm())
            umem = None
        else:
            umem = ib_umem_get(pd.device, start, length, access)
            m = Mlx5Mr("user", start=start, translation_valid=True)
        key = self._new_mkey()
        mr = IbMr(lkey=key, rkey=key, umem=umem, priv=m)
        if dmah is not None:
            self._tph_from_dmah(m, dmah)
        self._trace_tph(mr, m)
        return mr

    # -- dma-buf MRs -----------------------------------------------------------------------
    def reg_user_mr_dmabuf(
        self,
        pd: IbPd,
        offset: int,
        length: int,
        iova: int,
        fd: int,
        access: int,
        dmah: IbDmah | None,
        bundle: AttrBundle,
    ) -> IbMr:
        """``mlx5_ib_reg_user_mr_dmabuf``: dynamic unless DATA_DIRECT is asked for."""
        if not self.mdev.odp:
            raise kerr(_errno.EOPNOTSUPP)
        mlx5_access = 0
        if bundle.is_valid(MLX5_IB_ATTR_REG_DMABUF_MR_ACCESS_FLAGS):
            mlx5_access = bundle.get_flags32(
                MLX5_IB_ATTR_REG_DMABUF_MR_ACCESS_FLAGS, MLX5_IB_UAPI_REG_DMABUF_ACCESS_DATA_DIRECT
            )
        if mlx5_access & MLX5_IB_UAPI_REG_DMABUF_ACCESS_DATA_DIRECT:
            return self._reg_data_direct(offset, length, iova, fd, access)
        ibdev = self.mdev.ibdev
        umem = ib_umem_dmabuf_get(ibdev, offset, length, fd, access, self.attach_ops)
        key = self._new_mkey()
        m = Mlx5Mr("dmabuf")
        mr = IbMr(lkey=key, rkey=key, umem=umem, priv=m)
        mr.dmah = dmah  # the core sets it too; the fault path needs it
        umem.private = mr
        try:
            with umem.dmabuf.resv:
                self._map_dmabuf(mr, m, umem, dmah)  # mlx5_ib_init_dmabuf_mr
        except BaseException:
            umem.private = None
            self._release_st(m)
            umem.release()
            raise
        return mr

    def _reg_data_direct(self, offset: int, length: int, iova: int, fd: int, access: int) -> IbMr:
        """``reg_user_mr_dmabuf_by_data_direct``: a pinned (KSM) MR."""
        if iova % _PAGE or access & IB_UVERBS_ACCESS_ON_DEMAND:
            raise kerr(_errno.EOPNOTSUPP)
        if not self.mdev.data_direct:
            raise kerr(_errno.EINVAL)
        access &= ~IB_UVERBS_ACCESS_RELAXED_ORDERING
        umem = ib_umem_dmabuf_get_pinned(self.mdev.ibdev, offset, length, fd, access)
        key = self._new_mkey()
        m = Mlx5Mr("data_direct", translation_valid=True)
        mr = IbMr(lkey=key, rkey=key, umem=umem, priv=m)
        with umem.dmabuf.resv:
            self._tph_from_dmabuf(m, umem.dmabuf)
        umem.private = mr
        self._trace_tph(mr, m)
        return mr

    def _map_dmabuf(self, mr: IbMr, m: Mlx5Mr, umem: UmemDmabuf, dmah: IbDmah | None) -> None:
        """``pagefault_dmabuf_mr`` (resv held): map, choose TPH (again), load the PAS."""
        umem.map_pages()
        if dmah is not None:
            self._tph_from_dmah(m, dmah)
        else:
            self._tph_from_dmabuf(m, umem.dmabuf)
        m.translation_valid = True
        self._trace_tph(mr, m)

    def dmabuf_invalidate(self, attach: Attachment) -> None:
        """``mlx5_ib_dmabuf_invalidate_cb`` (resv held): zap the translation, unmap."""
        umem: UmemDmabuf = attach.importer_priv
        mr: IbMr | None = umem.private
        attach.dmabuf.resv.assert_held()
        if umem.sgt is None or mr is None:
            return
        m: Mlx5Mr = mr.priv
        m.translation_valid = False  # mlx5r_umr_update_mr_pas(mr, MLX5_IB_UPD_XLT_ZAP)
        m.invalidations += 1
        umem.unmap_pages()
        self._trace("mlx5.mr_invalidate", mkey=mr.lkey, dmabuf=attach.dmabuf.id)

    # -- dereg, rereg, advise ---------------------------------------------------------------
    def dereg_mr(self, mr: IbMr) -> None:
        """``mlx5_ib_dereg_mr``: revoke the mkey, release the umem and the ST reference."""
        m: Mlx5Mr = mr.priv
        m.translation_valid = False
        umem = mr.umem
        if isinstance(umem, UmemDmabuf):
            umem.private = None
            umem.release()
        elif isinstance(umem, IbUmem):
            umem.release()
        self._release_st(m)

    def rereg_user_mr(self, mr: IbMr, flags: int, pd: IbPd | None, access: int) -> None:
        m: Mlx5Mr = mr.priv
        if m.kind in ("dmabuf", "data_direct") or flags & ~(_IB_MR_REREG_PD | _IB_MR_REREG_ACCESS):
            raise kerr(_errno.EOPNOTSUPP)

    def advise_mr(
        self,
        pd: IbPd,
        advice: int,
        flags: int,
        sges: list[tuple[int, int, int]],
        bundle: AttrBundle,
    ) -> None:
        """``mlx5_ib_advise_mr``: prefetch into ODP MRs (and dma-buf ones: a fault)."""
        if advice not in (
            IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH,
            IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
            IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
        ):
            raise kerr(_errno.EOPNOTSUPP)
        for _addr, _length, lkey in sges:
            mr = pd.device.mrs.get(lkey)
            if mr is None or mr.pd is not pd:
                raise kerr(_errno.ENOENT)
            m: Mlx5Mr = mr.priv
            if m.kind == "dmabuf" and isinstance(mr.umem, UmemDmabuf):
                with mr.umem.dmabuf.resv:
                    if mr.umem.sgt is None:
                        self._map_dmabuf(mr, m, mr.umem, mr.dmah)
            elif m.kind != "odp":
                raise kerr(_errno.EINVAL)

    # -- the device model: an incoming RDMA WRITE ----------------------------------------------
    def mr_write(self, mr: IbMr, offset: int, data: bytes) -> MrWriteResult:
        m: Mlx5Mr = mr.priv
        umem = mr.umem
        if isinstance(umem, UmemDmabuf):
            return self._dmabuf_write(mr, m, umem, offset, data)
        ph, tag = self.tlp_hints(m)
        if isinstance(umem, IbUmem):
            umem.write(offset, data)
        else:  # ODP user memory: a fault at the address the MR was made over
            try:
                if m.mm is None or m.mm.exited:
                    raise OSError(_errno.EFAULT, "the address space is gone")
                m.mm.write(m.start + offset, data)
            except OSError as e:
                return MrWriteResult(
                    "IBV_WC_REM_ACCESS_ERR", "ODP page fault failed", errno=e.errno or 0
                )
        return MrWriteResult("IBV_WC_SUCCESS", ph=ph, steering_tag=tag if ph is not None else None)

    def _dmabuf_write(
        self, mr: IbMr, m: Mlx5Mr, umem: UmemDmabuf, offset: int, data: bytes
    ) -> MrWriteResult:
        fabric = pci_fabric(self.mdev.kernel)
        pdev = self.mdev.pdev
        with umem.dmabuf.resv:
            if not m.translation_valid or umem.sgt is None:
                m.faults += 1
                try:
                    self._map_dmabuf(mr, m, umem, mr.dmah)
                except OSError as e:
                    self._trace("mlx5.mr_fault", mkey=mr.lkey, ok=False, errno=_errname(e))
                    return MrWriteResult(
                        "IBV_WC_REM_ACCESS_ERR",
                        f"page fault: {_errname(e)}",
                        errno=e.errno or 0,
                    )
                self._trace("mlx5.mr_fault", mkey=mr.lkey, ok=True, errno=None)
            ph, tag = self.tlp_hints(m)
            segs = umem.translate(offset, len(data))
            if len(segs) == 1:  # (most writes: one piece, whose TLPs are the write's)
                seg = segs[0]
                tlps = fabric.memory_write(
                    pdev, seg.dma_address, data, ph=ph, steering_tag=tag
                ).tlps
            else:
                pieces: list[Any] = []
                pos = 0
                for seg in segs:
                    chunk = data[pos : pos + seg.length]
                    res = fabric.memory_write(pdev, seg.dma_address, chunk, ph=ph, steering_tag=tag)
                    pieces.extend(res.tlps)
                    pos += seg.length
                tlps = tuple(pieces)
        return MrWriteResult("IBV_WC_SUCCESS", "", tlps, 0, ph, tag if ph is not None else None)
