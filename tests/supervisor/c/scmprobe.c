/* SCM_RIGHTS of a dma-buf fd between a parent and its forked child: the receiver gets
 * the same file (fdinfo count, a name set by one seen by the other), close-on-exec from
 * MSG_CMSG_CLOEXEC, and the count falls as each side closes. */
#include "common.h"
#include "scm.h"
#include <sys/socket.h>

static void show(const char *who, int fd)
{
	char name[64], link[64], path[64];
	ssize_t n;

	snprintf(name, sizeof(name), "%s", fdinfo("self", fd, "name"));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	link[n < 0 ? 0 : n] = 0;
	printf("%s: name %s, count %s, cloexec %d, link %s\n", who, name,
	       fdinfo("self", fd, "count"), !!(fcntl(fd, F_GETFD) & FD_CLOEXEC), link);
	fflush(stdout);
}

int main(void)
{
	int sv[2], memfd, dev, buf, got;
	char c;
	pid_t pid;

	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("open /dev/udmabuf");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		die("socketpair");
	pid = fork();
	if (pid == 0) { /* the child: receive, look, rename, report, close */
		close(sv[0]);
		got = recv_fd(sv[1], MSG_CMSG_CLOEXEC);
		show("child received", got);
		if (ioctl(got, DMA_BUF_SET_NAME_B, "named-by-child"))
			die("SET_NAME");
		write(sv[1], "n", 1);
		read(sv[1], &c, 1);
		close(got);
		write(sv[1], "c", 1);
		_exit(0);
	}
	close(sv[1]);
	buf = make_dmabuf(dev, 1, 0, &memfd);
	if (ioctl(buf, DMA_BUF_SET_NAME_B, "named-by-parent"))
		die("SET_NAME");
	show("parent before sending", buf);
	send_fd(sv[0], buf);
	read(sv[0], &c, 1);
	show("parent after the child renamed", buf);
	write(sv[0], "x", 1);
	read(sv[0], &c, 1);
	show("parent after the child closed", buf);
	waitpid(pid, NULL, 0);
	close(buf);
	close(memfd);
	close(dev);
	return 0;
}
