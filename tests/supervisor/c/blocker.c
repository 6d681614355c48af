/* One thread blocks in a mock ioctl; another must still be served meanwhile. */
#include "common.h"
#include <pthread.h>

static int fd_a, fd_b;
static long waited;

static void *blocked(void *arg)
{
	waited = ioctl(fd_a, 0xb001, 0); /* returns 1 when released, 0 on the driver's timeout */
	return arg;
}

int main(void)
{
	pthread_t t;
	long seen = 0, served = 0;

	fd_a = open("/dev/blocker", O_RDWR);
	fd_b = open("/dev/blocker", O_RDWR);
	if (fd_a < 0 || fd_b < 0)
		die("open /dev/blocker");
	pthread_create(&t, NULL, blocked, NULL);
	for (long i = 0; i < 1000000 && !seen; i++)
		seen = ioctl(fd_b, 0xb003, 0); /* 1 once the other thread waits in the kernel */
	for (int i = 0; i < 50; i++)
		served += ioctl(fd_b, 0xb003, 0) == 1;
	ioctl(fd_b, 0xb002, 0); /* release it */
	pthread_join(t, NULL);
	printf("saw the waiter: %ld, served while it waited: %ld, released: %ld\n", seen, served,
	       waited);
	return 0;
}
