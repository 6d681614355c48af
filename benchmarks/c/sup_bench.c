/* Per-syscall cost as a program sees it: MODE N THREADS -> the median us/op of batches.
 *   mock-ioctl  DMA_BUF_IOCTL_SYNC on a udmabuf dma-buf (needs /dev/udmabuf)
 *   real-ioctl  FIONREAD on a pipe (fd >= 3)
 *   real-read   read(1 byte) of /dev/zero at fd >= 3
 *   stdio-read  read(0 bytes) of fd 0 (never trapped by the supervisor's filter)
 *   getpid      a syscall the filter does not look at
 *   mock-mmap4  mmap+munmap of a 4-piece udmabuf dma-buf (4 memfds, UDMABUF_CREATE_LIST)
 *   real-mmap4  mmap+munmap of a 4-page memfd
 *   real-msg    sendmsg+recvmsg of 1 byte on an AF_UNIX socketpair, no control buffer
 *   real-cmsg   the same, the recvmsg with room for an SCM_RIGHTS fd (nothing passed)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/dma-buf.h>
#include <linux/udmabuf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BATCH 20
static const char *mode;
static long per_thread;
static int fd, peer;

static void msg_op(int cmsg)
{
	char c = 'x', ctl[CMSG_SPACE(sizeof(int))];
	struct iovec v = { &c, 1 };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };

	if (sendmsg(fd, &m, 0) != 1)
		exit(2);
	if (cmsg) {
		m.msg_control = ctl;
		m.msg_controllen = sizeof(ctl);
	}
	if (recvmsg(peer, &m, 0) != 1)
		exit(2);
}

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void op(void)
{
	struct dma_buf_sync s = { .flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ };
	int n;
	char c;

	if (!strcmp(mode, "mock-ioctl")) {
		if (ioctl(fd, DMA_BUF_IOCTL_SYNC, &s))
			exit(2);
	} else if (!strcmp(mode, "real-ioctl")) {
		if (ioctl(fd, FIONREAD, &n))
			exit(2);
	} else if (!strcmp(mode, "real-read")) {
		if (read(fd, &c, 1) != 1)
			exit(2);
	} else if (!strcmp(mode, "mock-mmap4") || !strcmp(mode, "real-mmap4")) {
		void *m = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED || munmap(m, 4 * 4096))
			exit(2);
	} else if (!strcmp(mode, "real-msg") || !strcmp(mode, "real-cmsg")) {
		msg_op(!strcmp(mode, "real-cmsg"));
	} else if (!strcmp(mode, "stdio-read")) {
		if (read(0, &c, 0))
			exit(2);
	} else {
		syscall(SYS_getpid);
	}
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void *run(void *out)
{
	long batches = per_thread / BATCH;
	double *t = calloc(batches, sizeof(double));

	for (long b = 0; b < batches; b++) {
		double t0 = now_us();
		for (int i = 0; i < BATCH; i++)
			op();
		t[b] = (now_us() - t0) / BATCH;
	}
	qsort(t, batches, sizeof(double), cmp);
	*(double *)out = t[batches / 2];
	free(t);
	return NULL;
}

int main(int argc, char **argv)
{
	int nthreads = argc > 3 ? atoi(argv[3]) : 1, p[2];
	pthread_t th[64];
	double med[64], t0, wall;

	mode = argv[1];
	per_thread = atol(argv[2]);
	if (!strcmp(mode, "mock-ioctl")) {
		struct udmabuf_create c = { .size = 4096 };
		int dev = open("/dev/udmabuf", O_RDWR);
		c.memfd = memfd_create("bench", MFD_ALLOW_SEALING);
		ftruncate(c.memfd, 4096);
		fcntl(c.memfd, F_ADD_SEALS, F_SEAL_SHRINK);
		fd = ioctl(dev, UDMABUF_CREATE, &c);
	} else if (!strcmp(mode, "mock-mmap4")) {
		struct { struct udmabuf_create_list h; struct udmabuf_create_item it[4]; } l = {
			.h = { .count = 4 } };
		int dev = open("/dev/udmabuf", O_RDWR);
		for (int i = 0; i < 4; i++) {
			l.it[i].memfd = memfd_create("bench", MFD_ALLOW_SEALING);
			ftruncate(l.it[i].memfd, 2 * 4096);
			fcntl(l.it[i].memfd, F_ADD_SEALS, F_SEAL_SHRINK);
			l.it[i].offset = 4096;
			l.it[i].size = 4096;
		}
		fd = ioctl(dev, UDMABUF_CREATE_LIST, &l);
	} else if (!strcmp(mode, "real-mmap4")) {
		fd = memfd_create("bench", 0);
		ftruncate(fd, 4 * 4096);
	} else if (!strcmp(mode, "real-ioctl")) {
		pipe(p);
		fd = p[0];
	} else if (!strcmp(mode, "real-read")) {
		fd = open("/dev/zero", O_RDONLY);
	} else if (!strcmp(mode, "real-msg") || !strcmp(mode, "real-cmsg")) {
		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, p))
			return 3;
		fd = p[0];
		peer = p[1];
	}
	if (fd < 0)
		return 3;
	t0 = now_us();
	for (int i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, run, &med[i]);
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	wall = now_us() - t0;
	qsort(med, nthreads, sizeof(double), cmp);
	/* median us/op of one thread's batches; and ops/s of all threads together */
	printf("%.3f %.0f\n", med[nthreads / 2], nthreads * per_thread / wall * 1e6);
	return 0;
}
