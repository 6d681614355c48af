/* MSI through eventfds, as the kernel's vfio selftests (vfio_pci_device_test's
 * vfio_pci_irq_test) drive it: the group/container path to edu (0000:01:00.0, group 6,
 * one MSI vector), an eventfd per vector handed to VFIO_DEVICE_SET_IRQS, a DATA_NONE
 * trigger that must reach the program's own eventfd, and the errors for an fd that is
 * not an eventfd.  The eventfd numbers are the program's: a supervisor that looked them
 * up in its own table instead would fail (EINVAL) or signal the wrong file.
 * The golden (tests/real_linux/golden/c_vfiomsi.txt) is this program's output on real
 * Linux 7.2; under the supervisor it runs on tests/vfio/real_linux_guest.toml. */
#include "common.h"
#include <linux/vfio.h>
#include <sys/eventfd.h>

#define BDF "0000:01:00.0"

static const char *said(long ret)
{
	return ret >= 0 ? "ok" : strerrorname_np(errno);
}

/* VFIO_DEVICE_SET_IRQS on the MSI index: `count` eventfds from `fds`, or DATA_NONE */
static long set_irqs(int dev, __u32 flags, __u32 start, __u32 count, const int *fds)
{
	char buf[sizeof(struct vfio_irq_set) + 4 * sizeof(int)] = { 0 };
	struct vfio_irq_set *irq = (void *)buf;

	irq->argsz = sizeof(*irq) + (fds ? count * sizeof(int) : 0);
	irq->flags = VFIO_IRQ_SET_ACTION_TRIGGER | flags;
	irq->index = VFIO_PCI_MSI_IRQ_INDEX;
	irq->start = start;
	irq->count = count;
	if (fds)
		memcpy(irq->data, fds, count * sizeof(int));
	return ioctl(dev, VFIO_DEVICE_SET_IRQS, irq);
}

static const char *counter(int efd)
{
	static char out[32];
	__u64 v = 0;

	if (read(efd, &v, 8) != 8)
		return strerrorname_np(errno);
	snprintf(out, sizeof(out), "%llu", (unsigned long long)v);
	return out;
}

int main(void)
{
	struct vfio_irq_info info = { .argsz = sizeof(info), .index = VFIO_PCI_MSI_IRQ_INDEX };
	int container = open("/dev/vfio/vfio", O_RDWR), group = open("/dev/vfio/6", O_RDWR);
	int dev, efd, pipefd[2], bad;
	long ret;

	if (container < 0 || group < 0)
		die("open vfio");
	if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) ||
	    ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		die("container");
	dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, BDF);
	if (dev < 0)
		die("GET_DEVICE_FD");
	ret = ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &info);
	printf("MSI irq info: %s, count %u, flags %#x\n", said(ret), info.count, info.flags);

	/* a few fds first, so the eventfd's number is unlike the supervisor's own */
	if (pipe(pipefd))
		die("pipe");
	efd = eventfd(0, EFD_NONBLOCK);
	printf("eventfd is fd %d\n", efd);
	printf("enable with a pipe: %s\n", said(set_irqs(dev, VFIO_IRQ_SET_DATA_EVENTFD, 0, 1,
							  &pipefd[0])));
	bad = 999;
	printf("enable with a closed fd: %s\n", said(set_irqs(dev, VFIO_IRQ_SET_DATA_EVENTFD, 0, 1,
							       &bad)));
	printf("enable with the eventfd: %s\n", said(set_irqs(dev, VFIO_IRQ_SET_DATA_EVENTFD, 0, 1,
							       &efd)));
	printf("before a trigger: %s\n", counter(efd));
	printf("trigger: %s\n", said(set_irqs(dev, VFIO_IRQ_SET_DATA_NONE, 0, 1, NULL)));
	printf("after a trigger: %s\n", counter(efd));
	printf("trigger twice: %s %s\n", said(set_irqs(dev, VFIO_IRQ_SET_DATA_NONE, 0, 1, NULL)),
	       said(set_irqs(dev, VFIO_IRQ_SET_DATA_NONE, 0, 1, NULL)));
	printf("after two triggers: %s\n", counter(efd));
	/* the eventfd is the device's own reference: closing ours does not stop it */
	close(efd);
	printf("trigger after close(eventfd): %s\n",
	       said(set_irqs(dev, VFIO_IRQ_SET_DATA_NONE, 0, 1, NULL)));
	printf("disable: %s\n", said(set_irqs(dev, VFIO_IRQ_SET_DATA_NONE, 0, 0, NULL)));
	printf("trigger when disabled: %s\n", said(set_irqs(dev, VFIO_IRQ_SET_DATA_NONE, 0, 1,
								NULL)));
	close(pipefd[0]);
	close(pipefd[1]);
	close(dev);
	close(group);
	close(container);
	printf("done\n");
	return 0;
}
