/* One process, both ends, any libibverbs since rdma-core 34 (no DMAH): the test runs it
 * with rdma-core 59's and with Debian 12's (rdma-core 44, its own mlx5 and rxe providers).
 *
 * A vfio-pci BAR0 [0x1000, +0x4000) as a dma-buf with the exporter's TPH, registered on
 * mlx5_0 with ibv_reg_dmabuf_mr; an RC QP there in RTR, one on rxe0 in RTS connected to
 * it; rxe0 RDMA WRITEs 16 bytes at offset 0x100; the program prints the completion and
 * what its own mapping of BAR0 shows.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <libgen.h>
#include <limits.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef VFIO_DEVICE_FEATURE_DMA_BUF
#error "these uAPI headers have no VFIO_DEVICE_FEATURE_DMA_BUF (Linux 6.19+): pass -I <newer>"
#endif

/* -- proposed, not merged: the TPH series' additions to linux/vfio.h (tph-v11) ---------- */
#define VFIO_DEVICE_FEATURE_DMA_BUF_TPH 13
#define VFIO_DMA_BUF_TPH_ST (1 << 0)
#define VFIO_DMA_BUF_TPH_ST_EXT (1 << 1)

struct vfio_device_feature_dma_buf_tph { /* 12 bytes, no padding */
	__s32 dmabuf_fd;
	__u32 flags;
	__u16 steering_tag_ext;
	__u8 steering_tag;
	__u8 ph;
};

#define BAR_OFFSET 0x1000
#define LENGTH 0x4000

static int fail(const char *what)
{
	printf("%s: %s\n", what, strerrorname_np(errno));
	return 1;
}

/* the first function bound to vfio-pci (by name, as Python's sorted()) and its vfio-dev */
static int find_vfio_device(char *bdf, char *vfio_name, size_t n)
{
	const char *base = "/sys/bus/pci/devices";
	char path[PATH_MAX], target[PATH_MAX];
	struct dirent **devs, **names;
	int k = scandir(base, &devs, NULL, alphasort), found = -1;

	for (int i = 0; i < k; i++) {
		ssize_t len;
		int m;

		snprintf(path, sizeof(path), "%s/%s/driver", base, devs[i]->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (!found || len < 0)
			goto next;
		target[len] = 0;
		if (strcmp(basename(target), "vfio-pci"))
			goto next;
		snprintf(path, sizeof(path), "%s/%s/vfio-dev", base, devs[i]->d_name);
		m = scandir(path, &names, NULL, alphasort);
		for (int j = 0; j < m; j++) {
			if (found && names[j]->d_name[0] != '.') {
				snprintf(vfio_name, n, "%s", names[j]->d_name);
				snprintf(bdf, n, "%s", devs[i]->d_name);
				found = 0;
			}
			free(names[j]);
		}
		if (m >= 0)
			free(names);
next:
		free(devs[i]);
	}
	if (k >= 0)
		free(devs);
	return found;
}

/* 1: the device fd and its BAR0 dma-buf; -1 with errno set */
static int export_bar(const char *vfio_name, int *iommufd, int *device)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_dma_buf dma_buf;
		struct vfio_region_dma_range range;
	} req = { .hdr = { .argsz = sizeof(req),
			   .flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF },
		  .dma_buf = { .region_index = VFIO_PCI_BAR0_REGION_INDEX,
			       .open_flags = O_RDWR | O_CLOEXEC, .nr_ranges = 1 },
		  .range = { .offset = BAR_OFFSET, .length = LENGTH } };
	char path[PATH_MAX];

	*iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", vfio_name);
	*device = open(path, O_RDWR | O_CLOEXEC);
	if (*iommufd < 0 || *device < 0)
		return -1;
	bind.iommufd = *iommufd;
	if (ioctl(*device, VFIO_DEVICE_BIND_IOMMUFD, &bind) ||
	    ioctl(*iommufd, IOMMU_IOAS_ALLOC, &alloc))
		return -1;
	attach.pt_id = alloc.out_ioas_id;
	if (ioctl(*device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		return -1;
	return ioctl(*device, VFIO_DEVICE_FEATURE, &req);
}

/* 2: the exporter's tag for importers that take it (0, or -1 with errno set) */
static int set_exporter_tph(int device, int dmabuf)
{
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_dma_buf_tph tph;
	} tph = { .hdr = { .argsz = sizeof(tph),
			   .flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_BUF_TPH },
		  .tph = { .dmabuf_fd = dmabuf, .flags = VFIO_DMA_BUF_TPH_ST | VFIO_DMA_BUF_TPH_ST_EXT,
			   .steering_tag_ext = 0x0112, .steering_tag = 0x12, .ph = 1 } };

	return ioctl(device, VFIO_DEVICE_FEATURE, &tph);
}

static struct ibv_context *open_device(const char *name)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_context *ctx = NULL;

	errno = ENODEV;
	for (int i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			ctx = ibv_open_device(list[i]);
	if (list)
		ibv_free_device_list(list);
	return ctx;
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
