/* A VFIO device's BAR as an RDMA memory region with a DMA handle (TPH hints for a CPU),
 * through rdma-core's libibverbs (59+: ibv_alloc_dmah, ibv_reg_mr_ex).
 *
 *     B=~/.cache/mockkernel/rdma-core-59/src/rdma-core/build     # .ci/build-rdma-core
 *     cc -I $B/include -I /path/to/uapi/include -o rdma_dmah_mr examples/c/rdma_dmah_mr.c \
 *        -L $B/lib -libverbs -Wl,-rpath,$B/lib
 *     ./rdma_dmah_mr [IBDEV [CPU [PH]]]      # real Linux: root, vfio-pci + an mlx5 NIC
 *     mockkernel run -- ./rdma_dmah_mr       # the same binary, mock kernel
 *
 * 1. find a PCI function bound to vfio-pci, open it through its cdev + iommufd and export
 *    16 KiB of its BAR0 as a dma-buf (VFIO_DEVICE_FEATURE_DMA_BUF);
 * 2. VFIO_DEVICE_FEATURE_DMA_BUF_TPH (the TPH series' uAPI, not merged: v7-v11 layout):
 *    the exporter's own tag -- which a DMA handle overrides (a DMAH always wins);
 * 3. libibverbs: open IBDEV (mlx5_0), a PD, ibv_alloc_dmah(CPU, PH, volatile memory):
 *    the kernel asks the platform (_DSM) for the CPU's steering tag;
 * 4. ibv_reg_mr_ex(FD | FD_OFFSET | IOVA | DMAH) on the dma-buf fd: the mkey carries the
 *    DMAH's PH and steering-tag index; a peer's RDMA WRITE reaches the BAR with them;
 * 5. optional: with $TO_TEST and $FROM_TEST naming two FIFOs, "rkey" goes to the peer,
 *    the program waits for its word, then prints what its own BAR mapping shows;
 * 6. everything is released.
 *
 * CPU defaults to the first CPU the program may run on (ibv_alloc_dmah: EPERM for another),
 * PH to 2 (target).  Exit status 1 on the first failure, with its errno name.
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
#include <sched.h>
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

/* 5: hand the rkey to the test's peer, wait for its word */
static int peer_turn(uint32_t rkey)
{
	const char *to_test = getenv("TO_TEST"), *from_test = getenv("FROM_TEST");
	char word[4];
	int reply;
	FILE *f;

	if (!to_test || !from_test)
		return 0;
	reply = open(from_test, O_RDWR | O_CLOEXEC); /* never blocks: we are a reader too */
	f = fopen(to_test, "we");
	if (reply < 0 || !f)
		return -1;
	fprintf(f, "rkey %u\n", rkey);
	fclose(f);
	if (read(reply, word, sizeof(word)) <= 0)
		return -1;
	close(reply);
	return 1;
}

int main(int argc, char **argv)
{
	const char *ibdev = argc > 1 ? argv[1] : "mlx5_0";
	int cpu = argc > 2 ? atoi(argv[2]) : first_cpu(), ph = argc > 3 ? atoi(argv[3]) : 2;
	char bdf[256], vfio_name[256];
	int iommufd = -1, device = -1, dmabuf, waited;
	struct ibv_dmah_init_attr dmah_attr = {
		.comp_mask = IBV_DMAH_INIT_ATTR_MASK_CPU_ID | IBV_DMAH_INIT_ATTR_MASK_PH |
			     IBV_DMAH_INIT_ATTR_MASK_TPH_MEM_TYPE,
		.cpu_id = cpu, .ph = ph, .tph_mem_type = IBV_TPH_MEM_TYPE_VM,
	};
	struct ibv_mr_init_attr mr_attr = {
		.length = LENGTH,
		.access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ,
		.comp_mask = IBV_REG_MR_MASK_FD | IBV_REG_MR_MASK_FD_OFFSET | IBV_REG_MR_MASK_IOVA |
			     IBV_REG_MR_MASK_DMAH,
		.iova = 0, .fd_offset = 0,
	};
	struct ibv_context *ctx;
	struct ibv_dmah *dmah;
	struct ibv_pd *pd;
	struct ibv_mr *mr;

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

	ctx = open_device(ibdev);
	if (!ctx)
		return fail(ibdev);
	pd = ibv_alloc_pd(ctx);
	if (!pd)
		return fail("ibv_alloc_pd");
	dmah = ibv_alloc_dmah(ctx, &dmah_attr);
	if (!dmah)
		return fail("ibv_alloc_dmah");
	printf("DMAH: cpu %d, ph %d, volatile memory\n", cpu, ph);
	mr_attr.fd = dmabuf;
	mr_attr.dmah = dmah;
	mr = ibv_reg_mr_ex(pd, &mr_attr);
	if (!mr)
		return fail("ibv_reg_mr_ex");
	printf("MR on %s: lkey 0x%x, rkey 0x%x, length 0x%zx\n", ibdev, mr->lkey, mr->rkey,
	       mr->length);
	fflush(stdout);

	waited = peer_turn(mr->rkey);
	if (waited < 0)
		return fail("peer");
	if (waited) {
		unsigned char *bar = mmap(NULL, BAR_OFFSET + LENGTH, PROT_READ, MAP_SHARED, device,
					  0 /* VFIO_PCI_BAR0_REGION_INDEX << 40 */);

		if (bar == MAP_FAILED)
			return fail("mmap BAR0");
		printf("BAR0[0x%x]:", BAR_OFFSET);
		for (int i = 0; i < 16; i++)
			printf(" %02x", bar[BAR_OFFSET + i]);
		printf("\n");
		munmap(bar, BAR_OFFSET + LENGTH);
	}

	if (ibv_dereg_mr(mr) || ibv_dealloc_dmah(dmah) || ibv_dealloc_pd(pd) ||
	    ibv_close_device(ctx))
		return fail("teardown");
	close(dmabuf);
	close(device);
	close(iommufd);
	printf("released\n");
	return 0;
}
