/* clone(CLONE_FILES) without CLONE_THREAD: parent and child share one fd table.  The
 * child closes the parent's udmabuf fd and opens a dma-buf at a number the parent then
 * uses; a plain fork's table is a copy. */
#include "common.h"
#include <sched.h>
#include <signal.h>

static int dev, base;
static int child_buf = -1, child_memfd = -1;

static int child(void *arg)
{
	(void)arg;
	close(dev); /* the parent's fd: gone for both */
	child_buf = make_dmabuf(open("/dev/udmabuf", O_RDWR), 2, 0, &child_memfd);
	if (ioctl(child_buf, DMA_BUF_SET_NAME_B, "made-by-clone-child"))
		die("SET_NAME");
	return 0;
}

int main(int argc, char **argv)
{
	static char stack[64 * 1024];
	int flags = argc > 1 ? 0 : CLONE_FILES, status, fd;
	pid_t pid;

	base = lowest_free();
	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("open /dev/udmabuf");
	pid = clone(child, stack + sizeof(stack), flags | SIGCHLD, NULL);
	if (pid < 0)
		die("clone");
	waitpid(pid, &status, 0);
	printf("%s: child exit %d\n", flags ? "CLONE_FILES" : "no CLONE_FILES", WEXITSTATUS(status));
	printf("the parent's udmabuf fd after the child closed it: %s\n",
	       res(fcntl(dev, F_GETFD)));
	/* the child's fds, at the numbers it got (the same variables: not CLONE_VM, so
	 * the parent reads them back from the table instead) */
	for (fd = base; fd < base + 4; fd++) {
		char link[64], path[64];
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, link, sizeof(link) - 1);
		link[n < 0 ? 0 : n] = 0;
		if (n > 0 && !strncmp(link, "/memfd:", 7))
			snprintf(link, sizeof(link), "memfd");
		printf("fd base+%d: %s, name %s\n", fd - base, n < 0 ? "-" : link,
		       fdinfo("self", fd, "name"));
	}
	return 0;
}
