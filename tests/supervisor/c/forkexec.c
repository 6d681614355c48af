/* fork and exec semantics of mock fds: what a forked child does to a shared dma-buf
 * the parent sees (name, fdinfo count, O_NONBLOCK); exec drops only O_CLOEXEC fds. */
#include "common.h"

static int after_exec(char **argv)
{
	int keep = atoi(argv[2]), gone = atoi(argv[3]), base = atoi(argv[4]);
	struct stat st;

	printf("after exec: cloexec fd F_GETFD: %s\n", res(fcntl(gone, F_GETFD)));
	printf("after exec: kept fd F_GETFD: %d\n", fcntl(keep, F_GETFD));
	printf("after exec: kept fd fstat: %s", res(fstat(keep, &st)));
	printf(" size %lld\n", (long long)st.st_size);
	printf("after exec: kept fd exp_name: %s\n", fdinfo("self", keep, "exp_name"));
	printf("after exec: kept fd name: %s\n", fdinfo("self", keep, "name"));
	printf("after exec: ioctl on the dropped fd: %s\n", res(ioctl(gone, DMA_BUF_IOCTL_SYNC, 0)));
	printf("after exec: lowest free fd: base+%d\n", lowest_free() - base);
	return 0;
}

int main(int argc, char **argv)
{
	int memfd, dev, buf, gone, status, base;
	char a[16], b[16], c[16];
	pid_t pid;

	if (argc > 1 && !strcmp(argv[1], "after-exec"))
		return after_exec(argv);
	base = lowest_free();
	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("open /dev/udmabuf");
	buf = make_dmabuf(dev, 1, 0, &memfd);
	printf("parent: count before fork: %s\n", fdinfo("self", buf, "count"));
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		printf("child: count: %s\n", fdinfo("self", buf, "count"));
		printf("child: SET_NAME: %s\n", res(ioctl(buf, DMA_BUF_SET_NAME_B, "from-child")));
		printf("child: F_SETFL O_NONBLOCK: %s\n", res(fcntl(buf, F_SETFL, O_NONBLOCK)));
		printf("child: own fdinfo name: %s\n", fdinfo("self", buf, "name"));
		fflush(stdout);
		_exit(7);
	}
	waitpid(pid, &status, 0);
	printf("parent: child exit status: %d\n", WEXITSTATUS(status));
	printf("parent: name: %s\n", fdinfo("self", buf, "name"));
	printf("parent: count after the child exited: %s\n", fdinfo("self", buf, "count"));
	printf("parent: O_NONBLOCK: %d\n", !!(fcntl(buf, F_GETFL) & O_NONBLOCK));
	gone = fcntl(buf, F_DUPFD_CLOEXEC, 0);
	printf("parent: cloexec dup: base+%d, count %s\n", gone - base, fdinfo("self", buf, "count"));
	fflush(stdout);
	snprintf(a, sizeof(a), "%d", buf);
	snprintf(b, sizeof(b), "%d", gone);
	snprintf(c, sizeof(c), "%d", base);
	execl("/proc/self/exe", argv[0], "after-exec", a, b, c, (char *)NULL);
	die("execl");
}
