/* A process killed while one of its threads waits in a mock ioctl. */
#include "common.h"
#include <pthread.h>
#include <signal.h>

static int fd;

static void *blocked(void *arg)
{
	ioctl(fd, 0xb001, 0);
	return arg;
}

int main(void)
{
	pthread_t t;
	int memfd, dev = open("/dev/udmabuf", O_RDWR);

	make_dmabuf(dev, 1, 0, &memfd); /* mock fds the exit must release */
	fd = open("/dev/blocker", O_RDWR);
	pthread_create(&t, NULL, blocked, NULL);
	while (ioctl(fd, 0xb003, 0) != 1) /* until the thread waits in the kernel */
		;
	kill(getpid(), SIGKILL);
	return 0;
}
