/* unshare(CLONE_FILES) and close_range(CLOSE_RANGE_UNSHARE) in a clone(CLONE_FILES)
 * child: the child gets its own copy of the table (the same files), so its closes and
 * opens no longer reach the parent's; without the unshare they do. */
#define _GNU_SOURCE
#include "common.h"
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>

static int dev, buf, base, mode;

static void show(const char *who)
{
	for (int fd = base; fd < base + 4; fd++) {
		char link[64], path[64];
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, link, sizeof(link) - 1);
		link[n < 0 ? 0 : n] = 0;
		if (n > 0 && !strncmp(link, "/memfd:", 7))
			snprintf(link, sizeof(link), "memfd");
		printf("%s: fd base+%d: %s, name %s\n", who, fd - base, n < 0 ? "-" : link,
		       fdinfo("self", fd, "name"));
	}
}

static int child(void *arg)
{
	int memfd, mine;
	long r;

	(void)arg;
	if (mode == 0)
		r = unshare(CLONE_FILES);
	else if (mode == 1)
		r = syscall(SYS_close_range, buf, buf, CLOSE_RANGE_UNSHARE);
	else
		r = 0;
	printf("child: unshare: %s\n", res(r));
	if (mode != 1)
		close(buf);
	printf("child: the dma-buf fd after close: %s\n", res(fcntl(buf, F_GETFD)));
	mine = make_dmabuf(dev, 1, 0, &memfd);
	if (ioctl(mine, DMA_BUF_SET_NAME_B, "child"))
		die("SET_NAME");
	printf("child: its dma-buf at base+%d\n", mine - base);
	show("child");
	fflush(stdout);
	return 0;
}

int main(void)
{
	static char stack[64 * 1024];
	static const char *what[] = { "unshare(CLONE_FILES)", "close_range UNSHARE", "shared" };
	int status, memfd;

	base = lowest_free();
	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("open /dev/udmabuf");
	for (mode = 0; mode < 3; mode++) {
		buf = make_dmabuf(dev, 1, 0, &memfd);
		close(memfd);
		if (ioctl(buf, DMA_BUF_SET_NAME_B, "parent"))
			die("SET_NAME");
		printf("== %s\n", what[mode]);
		fflush(stdout);
		pid_t pid = clone(child, stack + sizeof(stack), CLONE_FILES | SIGCHLD, NULL);
		if (pid < 0)
			die("clone");
		waitpid(pid, &status, 0);
		printf("parent: the dma-buf fd: %s, name %s\n", res(fcntl(buf, F_GETFD)),
		       fdinfo("self", buf, "name"));
		show("parent");
		for (int fd = base + 1; fd < base + 8; fd++)
			close(fd);
	}
	return 0;
}
