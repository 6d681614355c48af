/* An RDMA WRITE from soft-RoCE into a VFIO BAR: two processes, one kernel, libibverbs on
 * both ends (rdma-core 59+: ibv_alloc_dmah, ibv_reg_mr_ex).  The C twin of
 * tests/rdma/pyverbs_rxe_to_vfio_bar.py.
 *
 *     B=~/.cache/mockkernel/rdma-core-59/src/rdma-core/build     # .ci/build-rdma-core
 *     cc -I /path/to/uapi/include -I $B/include -o rdma_rxe_write_bar \
 *        examples/c/rdma_rxe_write_bar.c -L $B/lib -libverbs -Wl,-rpath,$B/lib
 *     mockkernel run --topology examples/mlx5_rxe.toml -- ./rdma_rxe_write_bar [CPU [PH]]
 *
 * The responder (this process): a vfio-pci function's BAR0 [0x1000, +0x4000) as a dma-buf
 * with the exporter's TPH (VFIO_DEVICE_FEATURE_DMA_BUF_TPH, the series' uAPI), then on
 * mlx5_0 a PD, ibv_alloc_dmah(CPU, PH, volatile memory), ibv_reg_mr_ex(FD | FD_OFFSET |
 * IOVA | DMAH) on the dma-buf fd, a CQ and an RC QP brought to RTR.  The requester (a
 * child it forks before touching libibverbs): an RC QP on rxe0 brought to RTS.  They swap
 * (QP number, GID, rkey) over two pipes; the child posts IBV_WR_RDMA_WRITEs, the parent
 * reads the bytes through its own mapping of BAR0.  Between two writes the parent resets
 * the device (VFIO_DEVICE_RESET): the MR's mapping is invalidated, the next write faults
 * and re-maps, and the mkey's TPH is chosen again (the DMAH wins: its CPU's tag).
 *
 * On real hardware: an mlx5 port and a soft-RoCE interface on one Ethernet segment, root,
 * a function bound to vfio-pci.  Exit status 1 on the first failure, with its errno name.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <sys/wait.h>

#include "vfio_bar_dmabuf.h"

static int first_cpu(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 0;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set))
			return cpu;
	return 0;
}


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

/* the requester on rxe0: for each (offset, length) it reads, write that many bytes of a
 * pattern to the peer's MR at offset, and answer the completion's status */
static int requester(int in, int out)
{
	struct verbs v = { 0 };
	struct endpoint me = { 0 }, peer;
	static char buf[4096];
	struct ibv_mr *mr;
	uint32_t job[2];

	if (make_qp(&v, "rxe0") || ibv_query_gid(v.ctx, 1, 0, &me.gid))
		return fail("rxe0");
	mr = ibv_reg_mr(v.pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE);
	if (!mr)
		return fail("ibv_reg_mr");
	me.qpn = v.qp->qp_num;
	if (write(out, &me, sizeof(me)) != sizeof(me) || read(in, &peer, sizeof(peer)) != sizeof(peer))
		return fail("pipe");
	if (connect_qp(v.qp, &peer, 1))
		return fail("rxe0: ibv_modify_qp");
	while (read(in, job, sizeof(job)) == sizeof(job)) {
		struct ibv_sge sge = { .addr = (uintptr_t)buf, .length = job[1], .lkey = mr->lkey };
		struct ibv_send_wr wr = { .wr_id = job[0], .sg_list = &sge, .num_sge = 1,
					  .opcode = IBV_WR_RDMA_WRITE,
					  .send_flags = IBV_SEND_SIGNALED }, *bad;
		struct ibv_wc wc = { .status = IBV_WC_GENERAL_ERR };
		int n = 0;

		for (uint32_t i = 0; i < job[1] && i < sizeof(buf); i++)
			buf[i] = (char)((job[0] >> 4) + i);
		wr.wr.rdma.remote_addr = job[0]; /* iova 0: the MR's first byte is address 0 */
		wr.wr.rdma.rkey = peer.rkey;
		if (ibv_post_send(v.qp, &wr, &bad))
			return fail("ibv_post_send");
		for (int tries = 0; n == 0 && tries < 1000000; tries++)
			n = ibv_poll_cq(v.cq, 1, &wc);
		if (write(out, &wc.status, sizeof(wc.status)) != sizeof(wc.status))
			return fail("pipe");
	}
	ibv_dereg_mr(mr);
	close_verbs(&v);
	return 0;
}

/* one write by the child: its completion status */
static int remote_write(int to, int from, uint32_t offset, uint32_t length)
{
	uint32_t job[2] = { offset, length };
	enum ibv_wc_status status;

	if (write(to, job, sizeof(job)) != sizeof(job) ||
	    read(from, &status, sizeof(status)) != sizeof(status))
		return -1;
	printf("write of %u bytes at 0x%x: %s\n", length, offset, ibv_wc_status_str(status));
	return 0;
}

static void show(const unsigned char *bar, uint32_t offset, uint32_t length)
{
	printf("BAR0[0x%x]:", BAR_OFFSET + offset);
	for (uint32_t i = 0; i < length; i++)
		printf(" %02x", bar[BAR_OFFSET + offset + i]);
	printf("\n");
}

int main(int argc, char **argv)
{
	int cpu = argc > 1 ? atoi(argv[1]) : first_cpu(), ph = argc > 2 ? atoi(argv[2]) : 2;
	struct ibv_dmah_init_attr dmah_attr = {
		.comp_mask = IBV_DMAH_INIT_ATTR_MASK_CPU_ID | IBV_DMAH_INIT_ATTR_MASK_PH |
			     IBV_DMAH_INIT_ATTR_MASK_TPH_MEM_TYPE,
		.cpu_id = cpu, .ph = ph, .tph_mem_type = IBV_TPH_MEM_TYPE_VM,
	};
	struct ibv_mr_init_attr mr_attr = {
		.length = LENGTH,
		.access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE,
		.comp_mask = IBV_REG_MR_MASK_FD | IBV_REG_MR_MASK_FD_OFFSET | IBV_REG_MR_MASK_IOVA |
			     IBV_REG_MR_MASK_DMAH,
		.iova = 0, .fd_offset = 0,
	};
	int iommufd = -1, device = -1, dmabuf, down[2], up[2], status;
	char bdf[256], vfio_name[256];
	struct endpoint me = { 0 }, peer;
	struct verbs v = { 0 };
	struct ibv_dmah *dmah;
	unsigned char *bar;
	struct ibv_mr *mr;
	pid_t child;

	if (pipe(down) || pipe(up))
		return fail("pipe");
	child = fork();
	if (child < 0)
		return fail("fork");
	if (child == 0) {
		close(down[1]);
		close(up[0]);
		return requester(down[0], up[1]);
	}
	close(down[0]);
	close(up[1]);

	if (find_vfio_device(bdf, vfio_name, sizeof(bdf))) {
		printf("no PCI function bound to vfio-pci\n");
		return 1;
	}
	dmabuf = export_bar(vfio_name, &iommufd, &device);
	if (dmabuf < 0)
		return fail("VFIO_DEVICE_FEATURE_DMA_BUF");
	printf("vfio device %s: dma-buf of BAR0 [0x%x, +0x%x)\n", bdf, BAR_OFFSET, LENGTH);
	if (set_exporter_tph(device, dmabuf))
		printf("exporter TPH: %s\n", strerrorname_np(errno));
	else
		printf("exporter TPH: st 0x12, st_ext 0x0112, ph 1\n");
	if (make_qp(&v, "mlx5_0") || ibv_query_gid(v.ctx, 1, 0, &me.gid))
		return fail("mlx5_0");
	dmah = ibv_alloc_dmah(v.ctx, &dmah_attr);
	if (!dmah)
		return fail("ibv_alloc_dmah");
	mr_attr.fd = dmabuf;
	mr_attr.dmah = dmah;
	mr = ibv_reg_mr_ex(v.pd, &mr_attr);
	if (!mr)
		return fail("ibv_reg_mr_ex");
	printf("MR on mlx5_0 with a DMAH (cpu %d, ph %d), QP 0x%x\n", cpu, ph, v.qp->qp_num);
	bar = mmap(NULL, BAR_OFFSET + LENGTH, PROT_READ, MAP_SHARED, device, 0);
	if (bar == MAP_FAILED)
		return fail("mmap BAR0");

	if (read(up[0], &peer, sizeof(peer)) != sizeof(peer))
		return fail("pipe");
	me.qpn = v.qp->qp_num;
	me.rkey = mr->rkey;
	if (connect_qp(v.qp, &peer, 0) || write(down[1], &me, sizeof(me)) != sizeof(me))
		return fail("mlx5_0: connect");
	printf("connected to rxe0 QP 0x%x\n", peer.qpn);
	fflush(stdout);
	if (remote_write(down[1], up[0], 0x100, 16))
		return fail("pipe");
	show(bar, 0x100, 16);
	if (ioctl(device, VFIO_DEVICE_RESET))
		return fail("VFIO_DEVICE_RESET");
	printf("device reset\n");
	if (remote_write(down[1], up[0], 0x200, 8))
		return fail("pipe");
	show(bar, 0x200, 8);
	close(down[1]);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		return fail("requester");

	munmap(bar, BAR_OFFSET + LENGTH);
	if (ibv_dereg_mr(mr) || ibv_dealloc_dmah(dmah))
		return fail("teardown");
	close_verbs(&v);
	close(dmabuf);
	close(device);
	close(iommufd);
	printf("released\n");
	return 0;
}
