/* fd-table semantics of mock fds: dup family, fcntl, fstat, read/write, bad input. */
#include "common.h"

int main(void)
{
	int memfd, dev;
	int buf, d, d2, d3, d4, real, base;
	struct stat st;
	char c, link[128];
	ssize_t n;

	base = lowest_free();
	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("open /dev/udmabuf");
	printf("dev fd: base+%d\n", dev - base);
	buf = make_dmabuf(dev, 2, 0, &memfd);
	printf("dmabuf fd: base+%d (memfd base+%d)\n", buf - base, memfd - base);
	d = dup(buf);
	d2 = dup2(buf, 10);
	d3 = dup3(buf, 11, O_CLOEXEC);
	d4 = fcntl(buf, F_DUPFD_CLOEXEC, 20);
	printf("dup: base+%d dup2: %d dup3: %d F_DUPFD_CLOEXEC: %d\n", d - base, d2, d3, d4);
	printf("F_GETFD: %d %d %d %d\n", fcntl(d, F_GETFD), fcntl(d2, F_GETFD),
	       fcntl(d3, F_GETFD), fcntl(d4, F_GETFD));
	printf("dup3 same fd: %s\n", res(dup3(buf, buf, 0)));
	printf("dup2 same fd returns it: %d\n", dup2(buf, buf) == buf);
	printf("F_SETFL O_NONBLOCK: %s\n", res(fcntl(buf, F_SETFL, O_NONBLOCK)));
	printf("F_GETFL on the dup has O_NONBLOCK: %d\n", !!(fcntl(d, F_GETFL) & O_NONBLOCK));
	printf("F_SETFD on dup3: %s", res(fcntl(d3, F_SETFD, 0)));
	printf(" -> %d\n", fcntl(d3, F_GETFD));
	printf("FIOCLEX on dup: %s", res(ioctl(d, FIOCLEX)));
	printf(" -> %d\n", fcntl(d, F_GETFD));
	printf("fdinfo count: %s\n", fdinfo("self", buf, "count"));
	fstat(d2, &st);
	printf("fstat size: %lld mode: %o\n", (long long)st.st_size, st.st_mode);
	printf("lseek end: %lld\n", (long long)lseek(buf, 0, SEEK_END));
	n = read(buf, &c, 1);
	printf("read: %s\n", res(n));
	n = write(buf, &c, 1);
	printf("write: %s\n", res(n));
	n = readlink("/proc/self/fd/10", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	printf("readlink: %.9s\n", link);
	printf("ioctl garbage pointer: %s\n", res(ioctl(buf, DMA_BUF_IOCTL_SYNC, (void *)8)));
	printf("ioctl unknown: %s\n", res(ioctl(buf, _IO('b', 0x7f), 0)));
	printf("UDMABUF_CREATE garbage: %s\n", res(ioctl(dev, UDMABUF_CREATE, (void *)16)));
	printf("UDMABUF_CREATE of a mock fd: %s\n", res(({
		struct udmabuf_create cr = { .memfd = buf, .size = PAGE };
		ioctl(dev, UDMABUF_CREATE, &cr); })));
	printf("close: %s", res(close(d)));
	printf(" %s", res(close(d2)));
	printf(" %s", res(close(d3)));
	printf(" %s\n", res(close(d4)));
	printf("close again: %s\n", res(close(d2)));
	printf("ioctl on closed: %s\n", res(ioctl(d2, DMA_BUF_IOCTL_SYNC, 0)));
	real = open("/dev/null", O_RDONLY);
	printf("next real fd: base+%d\n", real - base);
	printf("fdinfo count after closes: %s\n", fdinfo("self", buf, "count"));
	close(real);
	close(buf);
	close(memfd);
	close(dev);
	printf("done\n");
	return 0;
}
