/* Threads: N threads x M ioctls on one dma-buf (and their own dup), all served. */
#include "common.h"
#include <pthread.h>

static int buf, per_thread;

static void *worker(void *arg)
{
	struct dma_buf_sync s = { .flags = DMA_BUF_SYNC_READ };
	long ok = 0;
	int mine = dup(buf);
	char name[32];

	snprintf(name, sizeof(name), "t%ld", (long)arg);
	for (int i = 0; i < per_thread; i++) {
		s.flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ;
		ok += ioctl(mine, DMA_BUF_IOCTL_SYNC, &s) == 0;
		s.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ;
		ok += ioctl(i % 2 ? mine : buf, DMA_BUF_IOCTL_SYNC, &s) == 0;
		ok += ioctl(mine, DMA_BUF_SET_NAME_B, name) == 0;
	}
	close(mine);
	return (void *)ok;
}

int main(int argc, char **argv)
{
	int nthreads = argc > 1 ? atoi(argv[1]) : 4, memfd, dev;
	pthread_t t[64];
	long total = 0;

	per_thread = argc > 2 ? atoi(argv[2]) : 500;
	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("open /dev/udmabuf");
	buf = make_dmabuf(dev, 1, 0, &memfd);
	for (long i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (int i = 0; i < nthreads; i++) {
		void *r;
		pthread_join(t[i], &r);
		total += (long)r;
	}
	printf("ok %ld of %d\n", total, nthreads * per_thread * 3);
	printf("count: %s\n", fdinfo("self", buf, "count"));
	close(buf);
	close(memfd);
	close(dev);
	return 0;
}
