/* fork, exec and SCM_RIGHTS of VFIO fds (the group/container path): the container,
 * group and device are shared files, so what a forked child sets (the group's container,
 * the IOMMU, a DMA mapping, PCI_COMMAND) is the parent's too, a device fd held only by a
 * child keeps the group busy (UNSET_CONTAINER: EBUSY), exec keeps every fd but the
 * close-on-exec ones, and a device fd passed with SCM_RIGHTS is the same file. */
#include "common.h"
#include "scm.h"
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <sys/socket.h>

#define IOVA 0x100000

static const char *said(long ret)
{
	return ret >= 0 ? "ok" : strerrorname_np(errno);
}

static __u32 group_flags(int group)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };

	if (ioctl(group, VFIO_GROUP_GET_STATUS, &st))
		return 0xffffffff;
	return st.flags;
}

static off_t config_offset(int dev)
{
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_CONFIG_REGION_INDEX };

	if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri))
		die("GET_REGION_INFO");
	return (off_t)ri.offset;
}

static int cfg16(int dev, int where)
{
	__u16 v = 0;

	if (pread(dev, &v, 2, config_offset(dev) + where) != 2)
		return -1;
	return v;
}

static long set_cfg16(int dev, int where, __u16 v)
{
	return pwrite(dev, &v, 2, config_offset(dev) + where);
}

static long map_dma(int container, void *vaddr)
{
	struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (__u64)(unsigned long)vaddr, .iova = IOVA, .size = PAGE };

	return ioctl(container, VFIO_IOMMU_MAP_DMA, &m);
}

static long ino(const char *who, int fd)
{
	return atol(fdinfo(who, fd, "ino"));
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

static int reap(pid_t pid)
{
	int status;

	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void pass_device(int dev)
{
	int sv[2], got;
	char c, ppid[16], link[64], path[64];
	ssize_t n;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		die("socketpair");
	pid = child();
	if (pid == 0) {
		close(sv[0]);
		got = recv_fd(sv[1], 0);
		snprintf(ppid, sizeof(ppid), "%d", getppid());
		printf("receiver: same ino as the sender's device fd: %d\n",
		       ino(ppid, dev) == ino("self", got));
		snprintf(path, sizeof(path), "/proc/self/fd/%d", got);
		n = readlink(path, link, sizeof(link) - 1);
		link[n < 0 ? 0 : n] = 0;
		printf("receiver: link %s, flags %s\n", link, fdinfo("self", got, "flags"));
		printf("receiver: vendor %#x through the received fd\n", cfg16(got, PCI_VENDOR_ID));
		close(got);
		fflush(stdout);
		write(sv[1], "d", 1);
		_exit(0);
	}
	close(sv[1]);
	send_fd(sv[0], dev);
	read(sv[0], &c, 1);
	reap(pid);
	close(sv[0]);
}

static int after_exec(char **argv)
{
	int container = atoi(argv[2]), group = atoi(argv[3]), dev = atoi(argv[4]);
	int gone = atoi(argv[5]), go[2];
	char c;
	pid_t pid;

	printf("after exec: the cloexec dup of the device: %s\n", said(fcntl(gone, F_GETFD)));
	printf("after exec: vendor %#x through the kept device fd\n", cfg16(dev, PCI_VENDOR_ID));
	printf("after exec: group flags %#x\n", group_flags(group));
	if (pipe(go))
		die("pipe");
	pid = child();
	if (pid == 0) { /* hold the device until told */
		close(go[1]);
		read(go[0], &c, 1);
		printf("holder: vendor %#x, then closes\n", cfg16(dev, PCI_VENDOR_ID));
		close(dev);
		fflush(stdout);
		_exit(0);
	}
	close(go[0]);
	close(dev);
	printf("after exec: UNSET_CONTAINER while a child holds the device: %s\n",
	       said(ioctl(group, VFIO_GROUP_UNSET_CONTAINER)));
	printf("after exec: group flags %#x\n", group_flags(group));
	fflush(stdout);
	write(go[1], "x", 1);
	close(go[1]);
	reap(pid);
	printf("after exec: UNSET_CONTAINER after the holder exited: %s\n",
	       said(ioctl(group, VFIO_GROUP_UNSET_CONTAINER)));
	printf("after exec: group flags %#x\n", group_flags(group));
	close(group);
	close(container);
	return 0;
}

int main(int argc, char **argv)
{
	int container, group, dev, gone, status, cmd;
	char bdf[256], path[64], a[16], b[16], c[16], d[16];
	void *page;
	pid_t pid;

	if (argc > 1 && !strcmp(argv[1], "after-exec"))
		return after_exec(argv);
	status = vfio_pci_group(bdf, sizeof(bdf));
	if (status < 0) {
		printf("no device bound to vfio-pci\n");
		return 0;
	}
	snprintf(path, sizeof(path), "/dev/vfio/%d", status);
	container = open("/dev/vfio/vfio", O_RDWR);
	group = open(path, O_RDWR);
	if (container < 0 || group < 0)
		die("open");
	printf("group flags before: %#x\n", group_flags(group));

	pid = child();
	if (pid == 0) {
		printf("child: SET_CONTAINER: %s\n", said(ioctl(group, VFIO_GROUP_SET_CONTAINER, &container)));
		printf("child: SET_IOMMU: %s\n", said(ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)));
		fflush(stdout);
		_exit(0);
	}
	reap(pid);
	printf("parent: group flags after the child set the container: %#x\n", group_flags(group));
	printf("parent: SET_CONTAINER again: %s\n", said(ioctl(group, VFIO_GROUP_SET_CONTAINER, &container)));
	printf("parent: SET_IOMMU again: %s\n", said(ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)));
	dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (dev < 0)
		die("GET_DEVICE_FD");
	printf("parent: the device fd is close-on-exec: %d\n", !!(fcntl(dev, F_GETFD) & FD_CLOEXEC));

	cmd = cfg16(dev, PCI_COMMAND);
	pid = child();
	if (pid == 0) {
		printf("child: PCI_COMMAND write: %s\n",
		       said(set_cfg16(dev, PCI_COMMAND, (__u16)(cmd ^ PCI_COMMAND_INTX_DISABLE))));
		fflush(stdout);
		_exit(0);
	}
	reap(pid);
	printf("parent: sees the child's PCI_COMMAND write: %d\n",
	       cfg16(dev, PCI_COMMAND) == (cmd ^ PCI_COMMAND_INTX_DISABLE));
	set_cfg16(dev, PCI_COMMAND, (__u16)cmd);

	pid = child();
	if (pid == 0) {
		void *mine = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		memset(mine, 1, PAGE);
		printf("child: MAP_DMA at iova %#x: %s\n", IOVA, said(map_dma(container, mine)));
		fflush(stdout);
		_exit(0);
	}
	reap(pid);
	page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(page, 2, PAGE);
	printf("parent: MAP_DMA at the child's iova: %s\n", said(map_dma(container, page)));
	{
		struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u), .iova = IOVA, .size = PAGE };
		long r = ioctl(container, VFIO_IOMMU_UNMAP_DMA, &u);

		printf("parent: UNMAP_DMA of the child's mapping: %s, size %llu\n", said(r),
		       (unsigned long long)u.size);
	}
	printf("parent: MAP_DMA after that: %s\n", said(map_dma(container, page)));

	pass_device(dev);

	gone = fcntl(dev, F_DUPFD_CLOEXEC, 0);
	fcntl(dev, F_SETFD, 0); /* kept across the exec */
	fflush(stdout);
	snprintf(a, sizeof(a), "%d", container);
	snprintf(b, sizeof(b), "%d", group);
	snprintf(c, sizeof(c), "%d", dev);
	snprintf(d, sizeof(d), "%d", gone);
	execl("/proc/self/exe", argv[0], "after-exec", a, b, c, d, (char *)NULL);
	die("execl");
}
