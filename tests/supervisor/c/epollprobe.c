/* epoll over a dma-buf fd and a pipe: events and data of the mock fd, MOD, DEL, the
 * errors of ADD twice and of DEL/MOD of an fd not registered. */
#include "common.h"
#include <sys/epoll.h>

static void wait_show(int ep, const char *what)
{
	struct epoll_event ev[4];
	int n = epoll_wait(ep, ev, 4, 50);

	printf("%s: %d", what, n);
	for (int i = 0; i < n; i++)
		printf(" [data %llu events %#x]", (unsigned long long)ev[i].data.u64, ev[i].events);
	printf("\n");
}

int main(void)
{
	int memfd, dev, buf, p[2], ep;
	struct epoll_event ev;

	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("open /dev/udmabuf");
	buf = make_dmabuf(dev, 1, 0, &memfd);
	if (pipe(p))
		die("pipe");
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev = (struct epoll_event){ .events = EPOLLIN | EPOLLOUT, .data.u64 = 111 };
	printf("add the dma-buf: %s\n", res(epoll_ctl(ep, EPOLL_CTL_ADD, buf, &ev)));
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 222 };
	printf("add the pipe: %s\n", res(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev)));
	wait_show(ep, "wait");
	printf("add the dma-buf again: %s\n", res(epoll_ctl(ep, EPOLL_CTL_ADD, buf, &ev)));
	ev = (struct epoll_event){ .events = EPOLLOUT, .data.u64 = 333 };
	printf("mod the dma-buf: %s\n", res(epoll_ctl(ep, EPOLL_CTL_MOD, buf, &ev)));
	write(p[1], "x", 1);
	wait_show(ep, "wait after a write to the pipe");
	printf("del the dma-buf: %s\n", res(epoll_ctl(ep, EPOLL_CTL_DEL, buf, NULL)));
	printf("del it again: %s\n", res(epoll_ctl(ep, EPOLL_CTL_DEL, buf, NULL)));
	printf("mod it: %s\n", res(epoll_ctl(ep, EPOLL_CTL_MOD, buf, &ev)));
	wait_show(ep, "wait after the del");
	printf("the dma-buf as the epoll fd: %s\n", res(epoll_ctl(buf, EPOLL_CTL_ADD, p[0], &ev)));
	ev = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u64 = 444 };
	printf("add it edge-triggered: %s\n", res(epoll_ctl(ep, EPOLL_CTL_ADD, buf, &ev)));
	wait_show(ep, "first edge wait");
	close(buf);
	wait_show(ep, "after closing the dma-buf");
	close(ep);
	close(memfd);
	close(dev);
	return 0;
}
