/* Register a VFIO device's BAR as an RDMA memory region, with a PCIe steering tag:
 * the C twin of rdma_dmabuf_mr.py, over the raw uverbs ABI (no libibverbs).
 *
 *     cc -I /path/to/uapi/include -o rdma_dmabuf_mr examples/c/rdma_dmabuf_mr.c
 *     ./rdma_dmabuf_mr                              # real Linux: root, vfio-pci + an RDMA NIC
 *     mockkernel run -- ./rdma_dmabuf_mr           # the same binary, mock kernel
 *
 * 1. find a PCI function bound to vfio-pci and open it through its cdev + iommufd;
 * 2. VFIO_DEVICE_FEATURE_DMA_BUF: a dma-buf of 16 KiB of its BAR0;
 * 3. VFIO_DEVICE_FEATURE_DMA_BUF_TPH (proposed, not merged; defined below as
 *    mockkernel/uapi/linux/vfio_tph.py states the v7-v11 layout);
 * 4. find an RDMA device in /sys/class/infiniband_verbs and open its uverbs node;
 * 5. UVERBS_METHOD_GET_CONTEXT (RDMA_VERBS_IOCTL), IB_USER_VERBS_CMD_ALLOC_PD (a write())
 *    and UVERBS_METHOD_REG_DMABUF_MR (RDMA_VERBS_IOCTL with the
 *    rdma/ib_user_ioctl_cmds.h attributes): the MR;
 * 6. UVERBS_METHOD_QUERY_MR, then everything is released.
 *
 * Prints the same lines as the Python twin.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>
#include <rdma/ib_user_ioctl_cmds.h>
#include <rdma/ib_user_ioctl_verbs.h>
#include <rdma/ib_user_verbs.h>
#include <rdma/mlx5-abi.h>
#include <rdma/rdma_user_ioctl_cmds.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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
#define STEERING_TAG_EXT 0x0112
#define STEERING_TAG 0x12
#define PH 1 /* requester */

static const struct {
	const char *prefix;
	__u32 driver_id;
} driver_ids[] = { { "mlx5_", RDMA_DRIVER_MLX5 }, { "rxe", RDMA_DRIVER_RXE },
		   { "siw", RDMA_DRIVER_SIW } };

struct registration {
	char bdf[256], ibdev[256];
	__u32 driver_id, mr_handle, lkey, rkey;
	int fds[4], nfds, device, dmabuf, uverbs, tph;
};

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name); /* Python's sorted() */
}

static void free_list(struct dirent **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int first_entry(const char *dir, char *out, size_t n)
{
	struct dirent **names;
	int k = scandir(dir, &names, NULL, by_name), found = -1;

	for (int i = 0; i < k && found; i++) {
		if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
			snprintf(out, n, "%s", names[i]->d_name);
			found = 0;
		}
	}
	if (k >= 0)
		free_list(names, k);
	return found;
}

static int find_vfio_device(char *bdf, char *vfio_name, size_t n)
{
	const char *base = "/sys/bus/pci/devices";
	char path[PATH_MAX], target[PATH_MAX];
	struct dirent **devs;
	int k = scandir(base, &devs, NULL, by_name), found = -1;

	for (int i = 0; i < k && found; i++) {
		ssize_t len;

		snprintf(path, sizeof(path), "%s/%s/driver", base, devs[i]->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = 0;
		if (strcmp(basename(target), "vfio-pci"))
			continue;
		snprintf(path, sizeof(path), "%s/%s/vfio-dev", base, devs[i]->d_name);
		if (!first_entry(path, vfio_name, n)) {
			snprintf(bdf, n, "%s", devs[i]->d_name);
			found = 0;
		}
	}
	if (k >= 0)
		free_list(devs, k);
	return found;
}

static int find_rdma_device(char *uverbs, char *ibdev, size_t n, __u32 *driver_id)
{
	const char *base = "/sys/class/infiniband_verbs";
	char path[PATH_MAX];
	struct dirent **names;
	int k = scandir(base, &names, NULL, by_name), found = -1;

	for (int i = 0; i < k && found; i++) {
		FILE *f;

		if (strncmp(names[i]->d_name, "uverbs", 6))
			continue;
		snprintf(path, sizeof(path), "%s/%s/ibdev", base, names[i]->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(ibdev, n, f))
			ibdev[0] = 0;
		fclose(f);
		ibdev[strcspn(ibdev, "\n")] = 0;
		for (size_t j = 0; j < sizeof(driver_ids) / sizeof(driver_ids[0]); j++) {
			if (!strncmp(ibdev, driver_ids[j].prefix, strlen(driver_ids[j].prefix))) {
				snprintf(uverbs, n, "%s", names[i]->d_name);
				*driver_id = driver_ids[j].driver_id;
				found = 0;
				break;
			}
		}
	}
	if (k >= 0)
		free_list(names, k);
	return found;
}

/* RDMA_VERBS_IOCTL: ib_uverbs_ioctl_hdr + ib_uverbs_attr[]; the attributes as left */
static int verbs(int fd, __u32 driver_id, __u16 object, __u16 method,
		 struct ib_uverbs_attr *attrs, __u16 n)
{
	struct {
		struct ib_uverbs_ioctl_hdr hdr;
		struct ib_uverbs_attr attrs[16];
	} buf = { .hdr = { .length = sizeof(buf.hdr) + n * sizeof(attrs[0]), .object_id = object,
			   .method_id = method, .num_attrs = n, .driver_id = driver_id } };
	int ret;

	memcpy(buf.attrs, attrs, n * sizeof(attrs[0]));
	ret = ioctl(fd, RDMA_VERBS_IOCTL, &buf);
	memcpy(attrs, buf.attrs, n * sizeof(attrs[0]));
	return ret;
}

static struct ib_uverbs_attr attr(__u16 id, __u16 len, __u64 data)
{
	return (struct ib_uverbs_attr){ .attr_id = id, .len = len, .data = data };
}

static void reg_close(struct registration *reg)
{
	while (reg->nfds > 0)
		close(reg->fds[--reg->nfds]);
}

static int keep(struct registration *reg, int fd)
{
	if (fd >= 0)
		reg->fds[reg->nfds++] = fd;
	return fd;
}

/* steps 1-5; 0, or -1 with errno set and nothing left open (-2: no such devices) */
static int reg_register(struct registration *reg)
{
	char vfio_name[256], uverbs_name[256], path[PATH_MAX];
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
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_dma_buf_tph tph;
	} tph = { .hdr = { .argsz = sizeof(tph),
			   .flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_BUF_TPH },
		  .tph = { .flags = VFIO_DMA_BUF_TPH_ST | VFIO_DMA_BUF_TPH_ST_EXT,
			   .steering_tag_ext = STEERING_TAG_EXT, .steering_tag = STEERING_TAG,
			   .ph = PH } };
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		struct ib_uverbs_alloc_pd cmd;
	} pd_cmd = { .hdr = { .command = IB_USER_VERBS_CMD_ALLOC_PD,
			      .in_words = sizeof(pd_cmd) / 4,
			      .out_words = sizeof(struct ib_uverbs_alloc_pd_resp) / 4 } };
	struct ib_uverbs_alloc_pd_resp pd_resp;
	__u32 lkey, rkey, access;
	struct ib_uverbs_attr a[9];
	/* mlx5's driver data, as libmlx5 sends it: 16 bfregs (4 low latency), CQE v1,
	 * 4K and dynamic UARs */
	struct mlx5_ib_alloc_ucontext_req_v2 uctx_req = {
		.total_num_bfregs = 16, .num_low_latency_bfregs = 4, .max_cqe_version = 1,
		.lib_caps = MLX5_LIB_CAP_4K_UAR | MLX5_LIB_CAP_DYN_UAR };
	struct mlx5_ib_alloc_ucontext_resp uctx_resp;
	int iommufd, err, n_uhw = 0;

	if (find_vfio_device(reg->bdf, vfio_name, sizeof(vfio_name)) ||
	    find_rdma_device(uverbs_name, reg->ibdev, sizeof(reg->ibdev), &reg->driver_id)) {
		errno = ENODEV;
		return -2;
	}
	iommufd = keep(reg, open("/dev/iommu", O_RDWR | O_CLOEXEC));
	if (iommufd < 0)
		goto fail;
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", vfio_name);
	reg->device = keep(reg, open(path, O_RDWR | O_CLOEXEC));
	if (reg->device < 0)
		goto fail;
	bind.iommufd = iommufd;
	if (ioctl(reg->device, VFIO_DEVICE_BIND_IOMMUFD, &bind) ||
	    ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc))
		goto fail;
	attach.pt_id = alloc.out_ioas_id;
	if (ioctl(reg->device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		goto fail;

	/* 2. the dma-buf: region 0 (BAR0), one range */
	reg->dmabuf = keep(reg, ioctl(reg->device, VFIO_DEVICE_FEATURE, &req));
	if (reg->dmabuf < 0)
		goto fail;

	/* 3. TPH for importers: both namespaces (8-bit ST and 16-bit extended ST) */
	tph.tph.dmabuf_fd = reg->dmabuf;
	if (ioctl(reg->device, VFIO_DEVICE_FEATURE, &tph) == 0)
		reg->tph = 1;
	else if (errno != ENOTTY && errno != EOPNOTSUPP && errno != EINVAL)
		goto fail;

	/* 4.-5. the RDMA side, as libibverbs does it */
	snprintf(path, sizeof(path), "/dev/infiniband/%s", uverbs_name);
	reg->uverbs = keep(reg, open(path, O_RDWR | O_CLOEXEC));
	if (reg->driver_id == RDMA_DRIVER_MLX5) {
		a[0] = attr(UVERBS_ATTR_UHW_IN, sizeof(uctx_req), (uintptr_t)&uctx_req);
		a[1] = attr(UVERBS_ATTR_UHW_OUT, sizeof(uctx_resp), (uintptr_t)&uctx_resp);
		n_uhw = 2;
	}
	if (reg->uverbs < 0 ||
	    verbs(reg->uverbs, reg->driver_id, UVERBS_OBJECT_DEVICE, UVERBS_METHOD_GET_CONTEXT,
		  n_uhw ? a : NULL, n_uhw))
		goto fail;
	pd_cmd.cmd.response = (uintptr_t)&pd_resp;
	if (write(reg->uverbs, &pd_cmd, sizeof(pd_cmd)) != sizeof(pd_cmd))
		goto fail;
	access = IB_UVERBS_ACCESS_LOCAL_WRITE | IB_UVERBS_ACCESS_REMOTE_WRITE |
		 IB_UVERBS_ACCESS_REMOTE_READ;
	a[0] = attr(UVERBS_ATTR_REG_DMABUF_MR_HANDLE, 0, 0); /* new: the kernel writes it */
	a[1] = attr(UVERBS_ATTR_REG_DMABUF_MR_PD_HANDLE, 0, pd_resp.pd_handle);
	a[2] = attr(UVERBS_ATTR_REG_DMABUF_MR_OFFSET, 8, 0);
	a[3] = attr(UVERBS_ATTR_REG_DMABUF_MR_LENGTH, 8, LENGTH);
	a[4] = attr(UVERBS_ATTR_REG_DMABUF_MR_IOVA, 8, 0);
	a[5] = attr(UVERBS_ATTR_REG_DMABUF_MR_FD, 4, reg->dmabuf); /* a 4-byte inline u32 */
	a[6] = attr(UVERBS_ATTR_REG_DMABUF_MR_ACCESS_FLAGS, 4, access);
	a[7] = attr(UVERBS_ATTR_REG_DMABUF_MR_RESP_LKEY, 4, (uintptr_t)&lkey);
	a[8] = attr(UVERBS_ATTR_REG_DMABUF_MR_RESP_RKEY, 4, (uintptr_t)&rkey);
	if (verbs(reg->uverbs, reg->driver_id, UVERBS_OBJECT_MR, UVERBS_METHOD_REG_DMABUF_MR, a,
		  9))
		goto fail;
	reg->mr_handle = a[0].data;
	reg->lkey = lkey;
	reg->rkey = rkey;
	return 0;
fail:
	err = errno;
	reg_close(reg);
	errno = err;
	return -1;
}

int main(void)
{
	struct registration reg = { .device = -1, .dmabuf = -1, .uverbs = -1 };
	__u32 q_lkey, q_rkey;
	__u64 q_length, q_iova;
	struct ib_uverbs_attr a[5];

	int ret = reg_register(&reg);

	if (ret) {
		printf("could not register the MR: %s (%s)\n", strerrorname_np(errno),
		       ret == -2 ? "no vfio-pci function or no RDMA device" : strerror(errno));
		return 1;
	}
	printf("vfio device %s: dma-buf of BAR0 [0x%x, +0x%x)\n", reg.bdf, BAR_OFFSET, LENGTH);
	if (reg.tph)
		printf("TPH set: st 0x%x, st_ext 0x%04x, ph %d\n", STEERING_TAG, STEERING_TAG_EXT,
		       PH);
	else
		printf("TPH not set: this kernel has no VFIO_DEVICE_FEATURE_DMA_BUF_TPH\n");
	printf("RDMA device %s: MR handle %u, lkey 0x%x, rkey 0x%x\n", reg.ibdev, reg.mr_handle,
	       reg.lkey, reg.rkey);

	a[0] = attr(UVERBS_ATTR_QUERY_MR_HANDLE, 0, reg.mr_handle);
	a[1] = attr(UVERBS_ATTR_QUERY_MR_RESP_LKEY, 4, (uintptr_t)&q_lkey);
	a[2] = attr(UVERBS_ATTR_QUERY_MR_RESP_RKEY, 4, (uintptr_t)&q_rkey);
	a[3] = attr(UVERBS_ATTR_QUERY_MR_RESP_LENGTH, 8, (uintptr_t)&q_length);
	a[4] = attr(UVERBS_ATTR_QUERY_MR_RESP_IOVA, 8, (uintptr_t)&q_iova);
	if (verbs(reg.uverbs, reg.driver_id, UVERBS_OBJECT_MR, UVERBS_METHOD_QUERY_MR, a, 5)) {
		perror("UVERBS_METHOD_QUERY_MR");
		reg_close(&reg);
		return 1;
	}
	printf("QUERY_MR: length 0x%llx, iova 0x%llx, keys match: %s\n",
	       (unsigned long long)q_length, (unsigned long long)q_iova,
	       q_lkey == reg.lkey && q_rkey == reg.rkey ? "True" : "False");
	printf("a peer can now RDMA WRITE into the device's BAR with this rkey\n");
	reg_close(&reg);
	return 0;
}
