/* poll/ppoll over a dma-buf fd, a pipe, a negative and a closed fd together. */
#include "common.h"
#include <poll.h>
#include <time.h>

static void show(const char *what, int n, struct pollfd *p, int cnt)
{
	printf("%s: %d", what, n);
	for (int i = 0; i < cnt; i++)
		printf(" %#x", p[i].revents);
	printf("\n");
}

int main(void)
{
	int memfd, dev, buf, p[2], n;
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	struct pollfd fds[4], *volatile bad = (struct pollfd *)8;

	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("open /dev/udmabuf");
	buf = make_dmabuf(dev, 1, 0, &memfd);
	if (pipe(p))
		die("pipe");
	fds[0] = (struct pollfd){ .fd = buf, .events = POLLIN | POLLOUT | POLLPRI };
	fds[1] = (struct pollfd){ .fd = p[0], .events = POLLIN };
	fds[2] = (struct pollfd){ .fd = -1, .events = POLLIN };
	fds[3] = (struct pollfd){ .fd = 500, .events = POLLIN };
	n = poll(fds, 4, 0);
	show("poll", n, fds, 4);
	write(p[1], "x", 1);
	n = poll(fds, 4, 100);
	show("poll after a write to the pipe", n, fds, 4);
	fds[0].events = POLLPRI;
	n = ppoll(fds, 2, &ts, NULL);
	show("ppoll, POLLPRI on the dma-buf", n, fds, 2);
	fds[1].events = 0;
	n = ppoll(fds, 2, &ts, NULL);
	show("ppoll, nothing asked that is ready, 20 ms", n, fds, 2);
	ts.tv_nsec = 2000000000L;
	n = ppoll(fds, 2, &ts, NULL);
	printf("ppoll, bad timespec: %s\n", res(n));
	n = poll(bad, 1, 0);
	printf("poll, bad pointer: %s\n", res(n));
	close(buf);
	close(memfd);
	close(dev);
	return 0;
}
