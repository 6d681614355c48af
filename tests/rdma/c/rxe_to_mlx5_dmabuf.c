/* One process, both ends, any libibverbs since rdma-core 34 (no DMAH): the test runs it
 * with rdma-core 59's and with Debian 12's (rdma-core 44, its own mlx5 and rxe providers).
 *
 * A vfio-pci BAR0 [0x1000, +0x4000) as a dma-buf with the exporter's TPH, registered on
 * mlx5_0 with ibv_reg_dmabuf_mr; an RC QP there in RTR, one on rxe0 in RTS connected to
 * it; rxe0 RDMA WRITEs 16 bytes at offset 0x100; the program prints the completion and
 * what its own mapping of BAR0 shows.
 */
#define _GNU_SOURCE
#include "../../../examples/c/vfio_bar_dmabuf.h"

/* what the two ends tell each other */
struct endpoint {
	uint32_t qpn;
	uint32_t rkey;
	union ibv_gid gid;
};

struct verbs {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
};

static int make_qp(struct verbs *v, const char *ibdev)
{
	struct ibv_qp_init_attr attr = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 8, .max_recv_wr = 8, .max_send_sge = 1, .max_recv_sge = 1 },
	};

	v->ctx = open_device(ibdev);
	if (!v->ctx)
		return -1;
	v->pd = ibv_alloc_pd(v->ctx);
	v->cq = v->pd ? ibv_create_cq(v->ctx, 16, NULL, NULL, 0) : NULL;
	if (!v->cq)
		return -1;
	attr.send_cq = attr.recv_cq = v->cq;
	v->qp = ibv_create_qp(v->pd, &attr);
	return v->qp ? 0 : -1;
}

/* RESET -> INIT -> RTR (-> RTS): the peer's QP number and GID (RoCE: a GRH) */
static int connect_qp(struct ibv_qp *qp, const struct endpoint *peer, int rts)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1,
				 .qp_access_flags = IBV_ACCESS_LOCAL_WRITE |
						    IBV_ACCESS_REMOTE_WRITE };

	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
				  IBV_QP_ACCESS_FLAGS))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = peer->qpn;
	a.ah_attr.is_global = 1;
	a.ah_attr.port_num = 1;
	a.ah_attr.grh.dgid = peer->gid;
	a.ah_attr.grh.hop_limit = 1;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
				  IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		return -1;
	if (!rts)
		return 0;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 1;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				     IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
}

static void close_verbs(struct verbs *v)
{
	if (v->qp)
		ibv_destroy_qp(v->qp);
	if (v->cq)
		ibv_destroy_cq(v->cq);
	if (v->pd)
		ibv_dealloc_pd(v->pd);
	if (v->ctx)
		ibv_close_device(v->ctx);
}


int main(void)
{
	int iommufd = -1, device = -1, dmabuf, n = 0;
	char bdf[256], vfio_name[256];
	struct endpoint m_end = { 0 }, r_end = { 0 };
	struct verbs m = { 0 }, r = { 0 };
	static char buf[4096] = "through rdma-core";
	struct ibv_mr *dmr, *mr;
	struct ibv_wc wc = { .status = IBV_WC_GENERAL_ERR };
	unsigned char *bar;

	if (find_vfio_device(bdf, vfio_name, sizeof(bdf)))
		return fail("vfio-pci");
	dmabuf = export_bar(vfio_name, &iommufd, &device);
	if (dmabuf < 0)
		return fail("VFIO_DEVICE_FEATURE_DMA_BUF");
	printf("exporter TPH: %s\n", set_exporter_tph(device, dmabuf) ? strerrorname_np(errno) : "ok");
	if (make_qp(&m, "mlx5_0") || make_qp(&r, "rxe0") || ibv_query_gid(m.ctx, 1, 0, &m_end.gid) ||
	    ibv_query_gid(r.ctx, 1, 0, &r_end.gid))
		return fail("verbs");
	dmr = ibv_reg_dmabuf_mr(m.pd, 0, LENGTH, 0, dmabuf,
				IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	mr = ibv_reg_mr(r.pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE);
	if (!dmr || !mr)
		return fail("ibv_reg_(dmabuf_)mr");
	m_end.qpn = m.qp->qp_num;
	r_end.qpn = r.qp->qp_num;
	if (connect_qp(m.qp, &r_end, 0) || connect_qp(r.qp, &m_end, 1))
		return fail("ibv_modify_qp");
	{
		struct ibv_sge sge = { .addr = (uintptr_t)buf, .length = 16, .lkey = mr->lkey };
		struct ibv_send_wr wr = { .wr_id = 7, .sg_list = &sge, .num_sge = 1,
					  .opcode = IBV_WR_RDMA_WRITE,
					  .send_flags = IBV_SEND_SIGNALED }, *bad;

		wr.wr.rdma.remote_addr = 0x100;
		wr.wr.rdma.rkey = dmr->rkey;
		if (ibv_post_send(r.qp, &wr, &bad))
			return fail("ibv_post_send");
	}
	for (int tries = 0; n == 0 && tries < 1000000; tries++)
		n = ibv_poll_cq(r.cq, 1, &wc);
	printf("completion: %s\n", ibv_wc_status_str(wc.status));
	bar = mmap(NULL, BAR_OFFSET + LENGTH, PROT_READ, MAP_SHARED, device, 0);
	if (bar == MAP_FAILED)
		return fail("mmap BAR0");
	printf("BAR0[0x1100]: %.16s\n", (const char *)bar + BAR_OFFSET + 0x100);
	munmap(bar, BAR_OFFSET + LENGTH);
	if (ibv_dereg_mr(mr) || ibv_dereg_mr(dmr))
		return fail("ibv_dereg_mr");
	close_verbs(&r);
	close_verbs(&m);
	close(dmabuf);
	close(device);
	close(iommufd);
	return 0;
}
