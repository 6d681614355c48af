/* Export a slice of a VFIO device's BAR as a dma-buf and attach TPH steering hints to it:
 * the C twin of vfio_tph_demo.py.
 *
 *     cc -I /path/to/uapi/include -o vfio_tph_demo examples/c/vfio_tph_demo.c
 *     ./vfio_tph_demo                               # real Linux: root, iommufd, vfio cdev
 *     mockkernel run -- ./vfio_tph_demo            # the same binary, mock kernel
 *
 * Written against the real uAPI headers (linux/vfio.h with VFIO_DEVICE_FEATURE_DMA_BUF,
 * linux/iommufd.h); prints the same lines as the Python twin.  The TPH feature is the
 * proposed uAPI of the "vfio dma-buf TPH" series (v7-v11), which no released kernel has:
 * its struct is defined below exactly as mockkernel/uapi/linux/vfio_tph.py states it.  A
 * kernel without it answers ENOTTY, which the demo reports and survives.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef VFIO_DEVICE_FEATURE_DMA_BUF
#error "these uAPI headers have no VFIO_DEVICE_FEATURE_DMA_BUF (Linux 6.19+): pass -I <newer>"
#endif

/* -- proposed, not merged: the TPH series' additions to linux/vfio.h (tph-v11) ---------- */
#define VFIO_DEVICE_FEATURE_DMA_BUF_TPH 13
#define VFIO_DMA_BUF_TPH_ST (1 << 0)     /* steering_tag (8-bit ST) valid */
#define VFIO_DMA_BUF_TPH_ST_EXT (1 << 1) /* steering_tag_ext (16-bit extended ST) valid */

struct vfio_device_feature_dma_buf_tph { /* 12 bytes, no padding */
	__s32 dmabuf_fd;
	__u32 flags;
	__u16 steering_tag_ext;
	__u8 steering_tag;
	__u8 ph;
};

#define PAGE 4096

/* struct vfio_device_feature + its payload, as one ioctl argument */
struct dma_buf_request {
	struct vfio_device_feature hdr;
	struct vfio_device_feature_dma_buf dma_buf;
	struct vfio_region_dma_range range;
};

struct dma_buf_tph_request {
	struct vfio_device_feature hdr;
	struct vfio_device_feature_dma_buf_tph tph;
};

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name); /* Python's sorted() */
}

/* the names in dir, sorted, without . and ..; NULL (and *n = 0) if it does not open */
static struct dirent **list_dir(const char *dir, int *n)
{
	struct dirent **names;

	*n = scandir(dir, &names, NULL, by_name);
	if (*n < 0) {
		*n = 0;
		return NULL;
	}
	return names;
}

static int dots(const char *name)
{
	return !strcmp(name, ".") || !strcmp(name, "..");
}

static void free_list(struct dirent **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* the basename of the symlink at path into out; -1 if it is not a symlink */
static int link_base(const char *path, char *out, size_t n)
{
	char target[PATH_MAX];
	ssize_t len = readlink(path, target, sizeof(target) - 1);

	if (len < 0)
		return -1;
	target[len] = 0;
	snprintf(out, n, "%s", basename(target));
	return 0;
}

/* (bdf, vfioN) of the first PCI function bound to vfio-pci that has a cdev */
static int find_vfio_device(char *bdf, char *vfio_name, size_t n)
{
	const char *base = "/sys/bus/pci/devices";
	char path[PATH_MAX], driver[256];
	struct dirent **devs, **names;
	int ndev, nnames, found = -1;

	devs = list_dir(base, &ndev);
	for (int i = 0; i < ndev && found < 0; i++) {
		if (dots(devs[i]->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s/driver", base, devs[i]->d_name);
		if (link_base(path, driver, sizeof(driver)) || strcmp(driver, "vfio-pci"))
			continue;
		snprintf(path, sizeof(path), "%s/%s/vfio-dev", base, devs[i]->d_name);
		names = list_dir(path, &nnames);
		for (int j = 0; j < nnames; j++) {
			if (!dots(names[j]->d_name)) {
				snprintf(bdf, n, "%s", devs[i]->d_name);
				snprintf(vfio_name, n, "%s", names[j]->d_name);
				found = 0;
				break;
			}
		}
		free_list(names, nnames);
	}
	free_list(devs, ndev);
	return found;
}

static void die(const char *what)
{
	fprintf(stderr, "%s: %s\n", what, strerror(errno));
	exit(1);
}

int main(void)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct dma_buf_tph_request tph = {
		.hdr = { .argsz = sizeof(tph),
			 .flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_BUF_TPH },
		.tph = { .flags = VFIO_DMA_BUF_TPH_ST | VFIO_DMA_BUF_TPH_ST_EXT,
			 .steering_tag_ext = 0x0112, /* extended (16-bit) steering tag */
			 .steering_tag = 0x12,       /* 8-bit steering tag */
			 .ph = 1 },                  /* processing hint: requester */
	};
	char bdf[256], vfio_name[256], path[PATH_MAX], group[256], cdev[PATH_MAX];
	int iommufd, device, dmabuf = -1;
	struct stat st;

	if (find_vfio_device(bdf, vfio_name, sizeof(bdf))) {
		printf("no PCI function bound to vfio-pci with a vfio-dev cdev\n");
		return 1;
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	if (link_base(path, group, sizeof(group)))
		die("readlink iommu_group");
	printf("device %s: %s, IOMMU group %s\n", bdf, vfio_name, group);

	snprintf(cdev, sizeof(cdev), "/dev/vfio/devices/%s", vfio_name);
	if (stat("/dev/iommu", &st) || stat(cdev, &st)) {
		printf("this kernel has no /dev/iommu or no vfio cdev: the cdev path needs "
		       "CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV\n");
		return 1;
	}
	iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (iommufd < 0)
		die("open /dev/iommu");
	device = open(cdev, O_RDWR | O_CLOEXEC);
	if (device < 0)
		die("open the vfio cdev");

	bind.iommufd = iommufd;
	if (ioctl(device, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		die("VFIO_DEVICE_BIND_IOMMUFD");
	printf("bound to iommufd: devid %u\n", bind.out_devid);

	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc))
		die("IOMMU_IOAS_ALLOC");
	attach.pt_id = alloc.out_ioas_id;
	if (ioctl(device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		die("VFIO_DEVICE_ATTACH_IOMMUFD_PT");
	printf("attached to IOAS %u\n", attach.pt_id);

	if (ioctl(device, VFIO_DEVICE_GET_INFO, &info))
		die("VFIO_DEVICE_GET_INFO");
	printf("device info: flags %#x, %u regions, %u irqs\n", info.flags, info.num_regions,
	       info.num_irqs);

	/* export the second page of the first BAR that can be exported (p2p-capable) */
	for (unsigned index = 0; index <= VFIO_PCI_BAR5_REGION_INDEX; index++) {
		struct vfio_region_info region = { .argsz = sizeof(region), .index = index };
		struct dma_buf_request req = {
			.hdr = { .argsz = sizeof(req),
				 .flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF },
			.dma_buf = { .region_index = index, .open_flags = O_RDWR | O_CLOEXEC,
				     .nr_ranges = 1 },
			.range = { .offset = PAGE, .length = PAGE },
		};
		off_t size;

		if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &region))
			die("VFIO_DEVICE_GET_REGION_INFO");
		if (!(region.flags & VFIO_REGION_INFO_FLAG_MMAP) || region.size < 2 * PAGE)
			continue;
		dmabuf = ioctl(device, VFIO_DEVICE_FEATURE, &req);
		if (dmabuf < 0) {
			printf("BAR%u (%#llx bytes): no dma-buf (%s)\n", index,
			       (unsigned long long)region.size, strerrorname_np(errno));
			continue;
		}
		size = lseek(dmabuf, 0, SEEK_END);
		printf("BAR%u (%#llx bytes): dma-buf fd %d of %lld bytes at BAR offset %#x\n",
		       index, (unsigned long long)region.size, dmabuf, (long long)size, PAGE);
		break;
	}
	if (dmabuf < 0) {
		printf("no BAR could be exported as a dma-buf\n");
		return 1;
	}

	tph.tph.dmabuf_fd = dmabuf;
	if (ioctl(device, VFIO_DEVICE_FEATURE, &tph))
		printf("TPH not set: %s (this kernel has no VFIO_DEVICE_FEATURE_DMA_BUF_TPH)\n",
		       strerrorname_np(errno));
	else
		printf("TPH set on dma-buf fd %d: st %#x, st_ext %#x, ph %u\n", dmabuf,
		       tph.tph.steering_tag, tph.tph.steering_tag_ext, tph.tph.ph);
	printf("the dma-buf can now be passed to an importer (e.g. an RDMA NIC)\n");
	close(dmabuf);
	close(device);
	close(iommufd);
	return 0;
}
