/* An interrupt loop as a VFIO user-space driver writes it: eventfds handed to
 * VFIO_DEVICE_SET_IRQS (INTx and MSI of QEMU's edu), waited for with epoll; the loopback
 * triggers (DATA_NONE, DATA_BOOL) fired by the process itself and by a forked child
 * through the shared device fd; INTx unmask; disabling. */
#include "common.h"
#include <linux/vfio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

static int edu_group(char *bdf, size_t len)
{
	struct dirent **names;
	int n = scandir("/sys/bus/pci/devices", &names, NULL, alphasort), group = -1;

	for (int i = 0; i < n; i++) {
		char path[512], buf[64], link[256];
		int fd;
		ssize_t l;

		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", names[i]->d_name);
		fd = open(path, O_RDONLY);
		l = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		buf[l < 0 ? 0 : l] = 0;
		if (group < 0 && !strncmp(buf, "0x11e8", 6)) {
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

static int set_irqs(int dev, unsigned flags, unsigned index, unsigned count, const int *fds)
{
	char buf[sizeof(struct vfio_irq_set) + 4 * sizeof(int)];
	struct vfio_irq_set *s = (void *)buf;

	s->argsz = sizeof(*s) + (flags & VFIO_IRQ_SET_DATA_EVENTFD ? count * sizeof(int) :
				 flags & VFIO_IRQ_SET_DATA_BOOL ? count : 0);
	s->flags = flags;
	s->index = index;
	s->start = 0;
	s->count = count;
	if (fds)
		memcpy(s->data, fds, count * sizeof(int));
	return ioctl(dev, VFIO_DEVICE_SET_IRQS, s);
}

/* events epoll reports within 200 ms, and the counter read */
static void wait_for(const char *what, int ep, int efd)
{
	struct epoll_event ev;
	uint64_t v = 0;
	int n = epoll_wait(ep, &ev, 1, 200);

	if (n > 0 && read(efd, &v, sizeof(v)) != sizeof(v))
		v = 0;
	printf("%s: %d event(s), count %llu\n", what, n, (unsigned long long)v);
}

int main(void)
{
	char bdf[256], path[64];
	int group, container, grp, dev, efd, ep, status;
	unsigned char yes = 1;
	struct epoll_event ev = { .events = EPOLLIN };
	pid_t pid;

	group = edu_group(bdf, sizeof(bdf));
	if (group < 0) {
		printf("FAIL no edu device\n");
		return 1;
	}
	container = open("/dev/vfio/vfio", O_RDWR);
	snprintf(path, sizeof(path), "/dev/vfio/%d", group);
	grp = open(path, O_RDWR);
	if (container < 0 || grp < 0 || ioctl(grp, VFIO_GROUP_SET_CONTAINER, &container) ||
	    ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		die("vfio setup");
	dev = ioctl(grp, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (dev < 0)
		die("GET_DEVICE_FD");
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = efd;
	epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);

	printf("intx eventfd: %s\n", res(set_irqs(dev, VFIO_IRQ_SET_DATA_EVENTFD |
						  VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1, &efd)));
	wait_for("before any trigger", ep, efd);
	printf("intx trigger: %s\n",
	       res(set_irqs(dev, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1, NULL)));
	wait_for("after the trigger", ep, efd);
	printf("intx trigger while masked: %s\n",
	       res(set_irqs(dev, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1, NULL)));
	wait_for("masked", ep, efd);
	printf("intx unmask: %s\n",
	       res(set_irqs(dev, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, 0, 1, NULL)));
	wait_for("after the unmask", ep, efd);
	fflush(stdout);
	pid = fork();
	if (pid == 0) { /* the child fires through the shared device fd */
		set_irqs(dev, VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1,
			 (const int *)&yes);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	wait_for("the child's trigger", ep, efd);
	printf("intx disable: %s\n",
	       res(set_irqs(dev, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL)));

	printf("msi eventfd: %s\n", res(set_irqs(dev, VFIO_IRQ_SET_DATA_EVENTFD |
						 VFIO_IRQ_SET_ACTION_TRIGGER, 1, 1, &efd)));
	printf("msi trigger: %s\n",
	       res(set_irqs(dev, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 1, 1, NULL)));
	wait_for("msi", ep, efd);
	printf("msi pipe fd: %s\n", res(set_irqs(dev, VFIO_IRQ_SET_DATA_EVENTFD |
						 VFIO_IRQ_SET_ACTION_TRIGGER, 1, 1, &ep)));
	printf("msi disable: %s\n",
	       res(set_irqs(dev, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 1, 0, NULL)));
	printf("msi trigger disabled: %s\n",
	       res(set_irqs(dev, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 1, 1, NULL)));
	close(ep);
	close(efd);
	close(dev);
	close(grp);
	close(container);
	return 0;
}
