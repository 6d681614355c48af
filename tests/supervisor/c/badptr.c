/* Garbage pointers on mock files: which check answers first, EBADF, EINVAL, EACCES or
 * EFAULT.  fs/read_write.c's vfs_write checks FMODE_WRITE (EBADF), then that the file
 * has a ->write (EINVAL), then access_ok (EFAULT for a kernel address) before the
 * driver's ->write reads the buffer -- so uverbs' ib_safe_file_access (EACCES, for a
 * forked child) comes before a fault on an unmapped user pointer; ioctls read their
 * argument in the driver, after the fd lookup (EBADF) and the command's dispatch
 * (ENOTTY).
 * usage: badptr [dmabuf|vfio|uverbs]   (no argument: all three, each under "== NAME") */
#include "common.h"
#include <linux/vfio.h>
#include <rdma/ib_user_ioctl_cmds.h>
#include <rdma/ib_user_verbs.h>
#include <rdma/rdma_user_ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>

/* volatile: the compiler must not see through them (nor warn) */
static char *volatile bad_user = (char *)16L;                  /* unmapped */
static char *volatile bad_kernel = (char *)0xffff888000000000UL; /* access_ok fails */
#define BAD ((void *)bad_user)
#define KBAD ((void *)bad_kernel)

static void *ro_page; /* mapped PROT_READ: a write into it faults */

static void say(const char *what, long ret)
{
	printf("%s: %s\n", what, ret >= 0 ? "ok" : strerrorname_np(errno));
}

static pid_t child(void)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork");
	return pid;
}

static void reap(pid_t pid)
{
	waitpid(pid, NULL, 0);
}

static void dmabuf(void)
{
	struct iovec bad_base = { .iov_base = BAD, .iov_len = 8 };
	int dev = open("/dev/udmabuf", O_RDWR), memfd, buf, info, closed;
	char path[64];
	struct stat st;

	if (dev < 0)
		die("open /dev/udmabuf");
	buf = make_dmabuf(dev, 1, 0, &memfd);
	closed = dup(buf);
	close(closed);
	say("dma-buf write from a bad pointer", write(buf, BAD, 8));
	say("dma-buf write from a kernel pointer", write(buf, KBAD, 8));
	say("dma-buf read into a bad pointer", read(buf, BAD, 8));
	say("dma-buf pwrite from a bad pointer", pwrite(buf, BAD, 8, 0));
	say("dma-buf writev of a bad iovec array", writev(buf, BAD, 1));
	say("dma-buf writev of a bad base", writev(buf, &bad_base, 1));
	say("dma-buf readv of a bad iovec array", readv(buf, BAD, 1));
	say("dma-buf SYNC from a bad pointer", ioctl(buf, DMA_BUF_IOCTL_SYNC, BAD));
	say("dma-buf SYNC from a kernel pointer", ioctl(buf, DMA_BUF_IOCTL_SYNC, KBAD));
	say("dma-buf SET_NAME from a bad pointer", ioctl(buf, DMA_BUF_SET_NAME_B, BAD));
	say("dma-buf EXPORT_SYNC_FILE into a bad pointer",
	    ioctl(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, BAD));
	say("dma-buf unknown command, bad pointer", ioctl(buf, _IOW('b', 0x7f, __u64), BAD));
	say("closed fd SYNC from a bad pointer", ioctl(closed, DMA_BUF_IOCTL_SYNC, BAD));
	say("UDMABUF_CREATE from a bad pointer", ioctl(dev, UDMABUF_CREATE, BAD));
	say("UDMABUF_CREATE_LIST from a bad pointer", ioctl(dev, UDMABUF_CREATE_LIST, BAD));
	say("dma-buf fstat into a bad pointer", syscall(SYS_fstat, buf, BAD));
	say("dma-buf fstatat(AT_EMPTY_PATH) into a bad pointer",
	    syscall(SYS_newfstatat, buf, "", BAD, AT_EMPTY_PATH));
	say("dma-buf fstatat with a bad path", syscall(SYS_newfstatat, buf, BAD, &st, 0));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", buf);
	say("readlink of the fd into a bad pointer", readlink(path, BAD, 64));
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", buf);
	info = open(path, O_RDONLY);
	say("fdinfo (read-only) write from a bad pointer", write(info, BAD, 8));
	say("fdinfo read into a bad pointer", read(info, BAD, 64));
	say("fdinfo read into a read-only page", read(info, ro_page, 64));
	say("fdinfo readv of a bad iovec array", readv(info, BAD, 1));
	say("fdinfo readv into a bad base", readv(info, &bad_base, 1));
	close(info);
	close(buf);
	close(memfd);
	close(dev);
}

static void vfio(void)
{
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	char bdf[256], path[64];
	int gnum = vfio_pci_group(bdf, sizeof(bdf)), container, group, dev;

	if (gnum < 0) {
		printf("no device bound to vfio-pci\n");
		return;
	}
	snprintf(path, sizeof(path), "/dev/vfio/%d", gnum);
	container = open("/dev/vfio/vfio", O_RDWR);
	group = open(path, O_RDWR);
	if (container < 0 || group < 0)
		die("open vfio");
	say("GET_API_VERSION with a bad pointer", ioctl(container, VFIO_GET_API_VERSION, BAD));
	say("GROUP_GET_STATUS into a bad pointer", ioctl(group, VFIO_GROUP_GET_STATUS, BAD));
	say("GROUP_SET_CONTAINER from a bad pointer", ioctl(group, VFIO_GROUP_SET_CONTAINER, BAD));
	say("GROUP_GET_DEVICE_FD before a container, bad pointer",
	    ioctl(group, VFIO_GROUP_GET_DEVICE_FD, BAD));
	if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) ||
	    ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		die("container");
	say("GROUP_GET_DEVICE_FD from a bad pointer", ioctl(group, VFIO_GROUP_GET_DEVICE_FD, BAD));
	say("IOMMU_GET_INFO into a bad pointer", ioctl(container, VFIO_IOMMU_GET_INFO, BAD));
	say("IOMMU_MAP_DMA from a bad pointer", ioctl(container, VFIO_IOMMU_MAP_DMA, BAD));
	say("IOMMU_MAP_DMA from a kernel pointer", ioctl(container, VFIO_IOMMU_MAP_DMA, KBAD));
	dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (dev < 0 || ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri))
		die("device");
	say("DEVICE_GET_INFO into a bad pointer", ioctl(dev, VFIO_DEVICE_GET_INFO, BAD));
	say("DEVICE_GET_REGION_INFO from a bad pointer",
	    ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, BAD));
	say("DEVICE_GET_IRQ_INFO from a kernel pointer",
	    ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, KBAD));
	say("DEVICE_FEATURE from a bad pointer", ioctl(dev, VFIO_DEVICE_FEATURE, BAD));
	say("device unknown command, bad pointer", ioctl(dev, _IO(VFIO_TYPE, VFIO_BASE + 60), BAD));
	say("config pread into a bad pointer", pread(dev, BAD, 2, (off_t)ri.offset));
	say("config pread into a read-only page", pread(dev, ro_page, 2, (off_t)ri.offset));
	say("config pwrite from a bad pointer", pwrite(dev, BAD, 2, (off_t)ri.offset + 4));
	say("config pwrite from a kernel pointer", pwrite(dev, KBAD, 2, (off_t)ri.offset + 4));
	close(dev);
	ioctl(group, VFIO_GROUP_UNSET_CONTAINER);
	close(group);
	close(container);
}

/* a legacy write(): a header for `command` and a body whose response pointer is `resp` */
static long verbs_write(int fd, __u32 command, void *resp)
{
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		struct ib_uverbs_get_context c;
	} w = { .hdr = { .command = command, .in_words = sizeof(w) / 4,
			 .out_words = sizeof(struct ib_uverbs_get_context_resp) / 4 },
		.c = { .response = (__u64)(unsigned long)resp } };

	return write(fd, &w, sizeof(w));
}

static void uverbs_writes(const char *who, int fd)
{
	struct iovec bad_base = { .iov_base = BAD, .iov_len = 24 };
	char what[128];

#define SAY(text, call)                                                   \
	do {                                                                \
		snprintf(what, sizeof(what), "%s: %s", who, text);          \
		say(what, call);                                            \
	} while (0)
	SAY("write of 4 bytes from a bad pointer", write(fd, BAD, 4));
	SAY("write from a bad pointer", write(fd, BAD, 24));
	SAY("write from a kernel pointer", write(fd, KBAD, 24));
	SAY("writev of a bad iovec array", writev(fd, BAD, 1));
	SAY("writev of a bad base", writev(fd, &bad_base, 1));
	SAY("read into a bad pointer", read(fd, BAD, 8));
	SAY("GET_CONTEXT by write, response to a bad pointer",
	    verbs_write(fd, IB_USER_VERBS_CMD_GET_CONTEXT, BAD));
	SAY("RDMA_VERBS_IOCTL from a bad pointer", ioctl(fd, RDMA_VERBS_IOCTL, BAD));
	SAY("RDMA_VERBS_IOCTL from a kernel pointer", ioctl(fd, RDMA_VERBS_IOCTL, KBAD));
	SAY("unknown command, bad pointer", ioctl(fd, _IOWR(RDMA_IOCTL_MAGIC, 2, __u64), BAD));
#undef SAY
}

static void uverbs(void)
{
	struct ib_uverbs_get_context_resp resp;
	int fd = open("/dev/infiniband/uverbs0", O_RDWR);
	pid_t pid;

	if (fd < 0) {
		printf("no /dev/infiniband/uverbs0\n");
		return;
	}
	pid = child();
	if (pid == 0) {
		uverbs_writes("fork child", fd);
		fflush(stdout);
		_exit(0);
	}
	reap(pid);
	uverbs_writes("opener", fd);
	say("opener: GET_CONTEXT by write", verbs_write(fd, IB_USER_VERBS_CMD_GET_CONTEXT, &resp));
	if (verbs_write(fd, IB_USER_VERBS_CMD_GET_CONTEXT, &resp) < 0) /* (a second: EINVAL) */
		printf("opener: a second GET_CONTEXT: %s\n", strerrorname_np(errno));
	close(fd);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} parts[] = { { "dmabuf", dmabuf }, { "vfio", vfio }, { "uverbs", uverbs } };

	ro_page = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ro_page == MAP_FAILED)
		die("mmap");
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (argc > 1 && strcmp(argv[1], parts[i].name))
			continue;
		if (argc < 2)
			printf("== %s\n", parts[i].name);
		parts[i].fn();
	}
	return 0;
}
