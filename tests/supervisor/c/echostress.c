/* Two processes x N threads issue /dev/echo ioctls with payloads of their own, at once:
 * each must get its own answer -- the kernel's current pid and tid, its own sequence
 * number and payload -- never another thread's or another process's (a request read
 * from the wrong address space, a reply sent to the wrong notification).  Each thread
 * also gets one new fd from the driver per round and checks it is open in itself. */
#include "common.h"
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>

#define ECHO_IOCTL _IOWR('E', 1, struct echo)
#define ECHO_NEWFD _IO('E', 2)

struct echo {
	uint32_t pid, tid;	/* in: the caller's; out: the kernel's current task */
	uint64_t seq;
	uint8_t data[48];	/* in: the caller's pattern; out: each byte + 1 */
};

static int dev, rounds;

static void *worker(void *arg)
{
	long bad = 0, me = (long)arg;
	uint32_t tid = (uint32_t)syscall(SYS_gettid), pid = (uint32_t)getpid();

	for (int i = 0; i < rounds; i++) {
		struct echo e = { .pid = pid, .tid = tid, .seq = ((uint64_t)tid << 32) | (uint32_t)i };

		for (int b = 0; b < 48; b++)
			e.data[b] = (uint8_t)(tid * 7 + i * 13 + b + me);
		if (ioctl(dev, ECHO_IOCTL, &e)) {
			printf("ioctl %u/%u #%d: %s\n", pid, tid, i, strerror(errno));
			bad++;
			continue;
		}
		int ok = e.pid == pid && e.tid == tid && e.seq == (((uint64_t)tid << 32) | (uint32_t)i);
		for (int b = 0; b < 48; b++)
			ok &= e.data[b] == (uint8_t)(tid * 7 + i * 13 + b + me + 1);
		if (!ok) {
			printf("wrong answer %u/%u #%d: pid %u tid %u seq %llx\n", pid, tid, i, e.pid,
			       e.tid, (unsigned long long)e.seq);
			bad++;
		}
		if (i % 8 == 0) {
			int fd = ioctl(dev, ECHO_NEWFD);

			if (fd < 0 || fcntl(fd, F_GETFD) < 0) {
				printf("newfd %u/%u #%d: %d %s\n", pid, tid, i, fd, strerror(errno));
				bad++;
			} else {
				close(fd);
			}
		}
	}
	return (void *)bad;
}

static long run_threads(int n)
{
	pthread_t t[16];
	long bad = 0;

	for (long i = 0; i < n; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (int i = 0; i < n; i++) {
		void *r;

		pthread_join(t[i], &r);
		bad += (long)r;
	}
	return bad;
}

int main(int argc, char **argv)
{
	int nthreads = argc > 1 ? atoi(argv[1]) : 3, status;
	long bad;
	pid_t child;

	rounds = argc > 2 ? atoi(argv[2]) : 100;
	dev = open("/dev/echo", O_RDWR);
	if (dev < 0)
		die("open /dev/echo");
	child = fork();
	if (child < 0)
		die("fork");
	bad = run_threads(nthreads);
	if (child == 0)
		return bad ? 1 : 0;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		bad++;
	printf("bad %ld\n", bad);
	return 0;
}
