/* Shared by the supervisor's C probes: a udmabuf-backed dma-buf and fdinfo lookups. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/dma-buf.h>
#include <linux/udmabuf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

/* the lowest BDF bound to vfio-pci (into bdf) and its IOMMU group number (-1: none) */
static inline int vfio_pci_group(char *bdf, size_t len)
{
	struct dirent **names;
	int n = scandir("/sys/bus/pci/devices", &names, NULL, alphasort), group = -1;

	for (int i = 0; i < n; i++) {
		char path[512], link[256];
		ssize_t l;

		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", names[i]->d_name);
		l = readlink(path, link, sizeof(link) - 1);
		link[l < 0 ? 0 : l] = 0;
		if (group < 0 && l > 0 && !strcmp(strrchr(link, '/') + 1, "vfio-pci")) {
			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group",
				 names[i]->d_name);
			l = readlink(path, link, sizeof(link) - 1);
			link[l < 0 ? 0 : l] = 0;
			if (l > 0) {
				group = atoi(strrchr(link, '/') + 1);
				snprintf(bdf, len, "%s", names[i]->d_name);
			}
		}
		free(names[i]);
	}
	free(names);
	return group;
}

static inline void die(const char *what)
{
	printf("FAIL %s: %s\n", what, strerror(errno));
	exit(1);
}

/* a dma-buf of `pages` pages over a fresh sealed memfd; *memfd_out keeps the memfd */
static inline int make_dmabuf(int dev, int pages, unsigned flags, int *memfd_out)
{
	struct udmabuf_create c = { .flags = flags, .size = (unsigned long long)pages * PAGE };
	int memfd = memfd_create("probe", MFD_ALLOW_SEALING);
	int fd;

	if (memfd < 0 || ftruncate(memfd, c.size) || fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK))
		die("memfd");
	c.memfd = memfd;
	fd = ioctl(dev, UDMABUF_CREATE, &c);
	if (fd < 0)
		die("UDMABUF_CREATE");
	*memfd_out = memfd;
	return fd;
}

/* the value of "key:" in /proc/<who>/fdinfo/<fd> ("-" when absent) */
static inline const char *fdinfo(const char *who, int fd, const char *key)
{
	static char out[128];
	char path[64], line[256];
	size_t k = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/fdinfo/%d", who, fd);
	f = fopen(path, "r");
	snprintf(out, sizeof(out), "-");
	if (!f)
		return out;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, k) && line[k] == ':') {
			char *v = line + k + 1;
			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = 0;
			snprintf(out, sizeof(out), "%s", v);
			break;
		}
	}
	fclose(f);
	return out;
}

/* the lowest free fd now: probes print fd numbers relative to it, so the output does not
 * depend on what the runner left open */
static inline int lowest_free(void)
{
	int fd = dup(0);
	close(fd);
	return fd;
}

/* "ok" or the errno name of a failed call */
static inline const char *res(long r)
{
	static char buf[32];
	if (r >= 0)
		return "ok";
	switch (errno) {
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case ENOTTY: return "ENOTTY";
	case ENODEV: return "ENODEV";
	case ENXIO: return "ENXIO";
	case EACCES: return "EACCES";
	case ESPIPE: return "ESPIPE";
	case EBADFD: return "EBADFD";
	case EMFILE: return "EMFILE";
	case EEXIST: return "EEXIST";
	case ENOENT: return "ENOENT";
	case EPERM: return "EPERM";
	}
	snprintf(buf, sizeof(buf), "errno%d", errno);
	return buf;
}
