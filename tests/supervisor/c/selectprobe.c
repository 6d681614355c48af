/* select/pselect6 over a dma-buf fd and a pipe together: readiness, the sets written
 * back, the time left, EBADF for a closed fd, EINVAL for a bad timeout. */
#include "common.h"
#include <sys/select.h>
#include <time.h>

static void show(const char *what, int n, fd_set *r, fd_set *w, fd_set *e, int *fds, int cnt)
{
	printf("%s: %d", what, n);
	for (int i = 0; i < cnt; i++)
		printf(" [%d%d%d]", FD_ISSET(fds[i], r), FD_ISSET(fds[i], w), FD_ISSET(fds[i], e));
	printf("\n");
}

static void ask(fd_set *r, fd_set *w, fd_set *e, int *fds, int cnt)
{
	FD_ZERO(r);
	FD_ZERO(w);
	FD_ZERO(e);
	for (int i = 0; i < cnt; i++) {
		FD_SET(fds[i], r);
		FD_SET(fds[i], e);
	}
	FD_SET(fds[0], w); /* the dma-buf */
	FD_SET(fds[2], w); /* the pipe's write end */
}

int main(void)
{
	int memfd, dev, buf, p[2], n, fds[3], hi;
	fd_set r, w, e;
	struct timeval tv = { 0, 0 };
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("open /dev/udmabuf");
	buf = make_dmabuf(dev, 1, 0, &memfd);
	if (pipe(p))
		die("pipe");
	fds[0] = buf;
	fds[1] = p[0];
	fds[2] = p[1];
	hi = (buf > p[1] ? buf : p[1]) + 1;

	ask(&r, &w, &e, fds, 3);
	n = select(hi, &r, &w, &e, &tv);
	show("select", n, &r, &w, &e, fds, 3);

	write(p[1], "x", 1);
	ask(&r, &w, &e, fds, 3);
	tv.tv_usec = 100000;
	n = select(hi, &r, &w, &e, &tv);
	show("select after a write to the pipe", n, &r, &w, &e, fds, 3);
	printf("time left is less than 100 ms and more than 0: %d\n",
	       tv.tv_sec == 0 && tv.tv_usec > 0 && tv.tv_usec <= 100000);

	FD_ZERO(&r);
	FD_ZERO(&e);
	FD_SET(buf, &e);
	n = pselect(hi, &r, NULL, &e, &ts, NULL);
	printf("pselect, only exceptions of the dma-buf, 20 ms: %d %d\n", n, FD_ISSET(buf, &e));

	FD_ZERO(&r);
	FD_SET(buf, &r);
	FD_SET(hi + 10, &r);
	n = select(hi + 11, &r, NULL, NULL, &tv);
	printf("select with a closed fd: %s\n", res(n));

	FD_ZERO(&r);
	FD_SET(buf, &r);
	tv.tv_usec = 2000000;
	n = select(hi, &r, NULL, NULL, &tv);
	printf("select, bad timeval: %s\n", res(n));

	FD_ZERO(&r);
	FD_SET(buf, &r);
	n = select(buf + 1, &r, NULL, NULL, NULL);
	printf("select, no timeout, dma-buf readable: %d %d\n", n, FD_ISSET(buf, &r));
	close(buf);
	close(memfd);
	close(dev);
	return 0;
}
