/* A vfio-pci function's BAR0 [0x1000, +0x4000) as a dma-buf with the exporter's TPH,
 * and an RDMA device opened by name: what examples/c/rdma_rxe_write_bar.c and the
 * test program tests/rdma/c/rxe_to_mlx5_dmabuf.c share (static functions: include it
 * once, after #define _GNU_SOURCE).  The TPH uAPI is the series' proposal (tph-v11).
 */
#ifndef MOCKKERNEL_EXAMPLES_VFIO_BAR_DMABUF_H
#define MOCKKERNEL_EXAMPLES_VFIO_BAR_DMABUF_H

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

#endif
