/* A child's exit releases its files before anyone can learn of the exit: a parent that
 * saw the exit -- by a pipe's end-of-file (the child held the write end), a pidfd turning
 * readable, /proc/<pid> showing a zombie, SIGCHLD, waitpid -- finds the child's
 * reference to a shared dma-buf gone (fdinfo count 1) and, with VFIO, the device fd the
 * child held released (VFIO_GROUP_UNSET_CONTAINER succeeds).  On Linux the file counts
 * drop in exit_files (close_files -> fput) and a pipe's writer goes in the deferred
 * __fput that follows; pidfd, the zombie state and SIGCHLD come in exit_notify, later
 * still.  Each way is tried ROUNDS times: a race shows as a round that saw count 2.
 * usage: exitorder [ROUNDS [WAY]] */
#include "common.h"
#include <linux/vfio.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

static int rounds = 25;

static int count(int buf)
{
	return atoi(fdinfo("self", buf, "count"));
}

static void *block(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static void *quit(void *arg)
{
	(void)arg;
	return NULL;
}

static void *last(void *arg)
{
	(void)arg;
	usleep(2000);
	return NULL; /* the last thread's exit is the process's */
}

static void drain(int fd)
{
	char c[16];

	while (read(fd, c, sizeof(c)) > 0)
		;
}

static pid_t child(void)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork");
	return pid;
}

/* one round of `way`: what count the parent reads right after it learnt of the exit */
static int once(const char *way, int buf)
{
	int p[2], go[2], seen, status;
	pthread_t t;
	sigset_t chld;
	pid_t pid;
	char c;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (pipe(p) || pipe(go))
		die("pipe");
	if (!strcmp(way, "sigchld"))
		sigprocmask(SIG_BLOCK, &chld, NULL);
	pid = child();
	if (pid == 0) {
		close(p[0]);
		close(go[1]);
		if (!strcmp(way, "exec")) {
			fcntl(buf, F_SETFD, FD_CLOEXEC);
			fcntl(p[1], F_SETFD, FD_CLOEXEC);
			execl("/bin/sleep", "sleep", "30", (char *)NULL);
			_exit(127);
		}
		if (!strcmp(way, "kill")) {
			write(p[1], "r", 1);
			for (;;)
				pause();
		}
		if (!strcmp(way, "threads")) { /* one thread joined, one still running */
			pthread_create(&t, NULL, quit, NULL);
			pthread_join(t, NULL);
			pthread_create(&t, NULL, block, NULL);
		}
		if (!strcmp(way, "lastthread")) { /* the leader goes first, its thread last */
			pthread_create(&t, NULL, last, NULL);
			pthread_exit(NULL);
		}
		if (strcmp(way, "eof") && strcmp(way, "threads"))
			read(go[0], &c, 1); /* the parent is watching */
		_exit(0);
	}
	close(p[1]);
	close(go[0]);
	if (!strcmp(way, "kill")) {
		read(p[0], &c, 1);
		kill(pid, SIGKILL);
	}
	if (!strcmp(way, "pidfd")) {
		struct pollfd pfd = { .fd = (int)syscall(SYS_pidfd_open, pid, 0), .events = POLLIN };

		if (pfd.fd < 0)
			die("pidfd_open");
		write(go[1], "g", 1);
		poll(&pfd, 1, -1);
		seen = count(buf);
		close(pfd.fd);
	} else if (!strcmp(way, "proc")) {
		char path[64], stat[256] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		write(go[1], "g", 1);
		for (;;) { /* until the state field says zombie */
			f = fopen(path, "r");
			if (!f)
				break;
			stat[0] = 0;
			fgets(stat, sizeof(stat), f);
			fclose(f);
			if (strstr(stat, ") Z ") || strstr(stat, ") X "))
				break;
			usleep(50);
		}
		seen = count(buf);
	} else if (!strcmp(way, "sigchld")) {
		write(go[1], "g", 1);
		sigwaitinfo(&chld, NULL);
		seen = count(buf);
		sigprocmask(SIG_UNBLOCK, &chld, NULL);
	} else if (!strcmp(way, "wait")) {
		write(go[1], "g", 1);
		waitpid(pid, &status, 0);
		seen = count(buf);
		pid = 0;
	} else { /* the pipe's end-of-file */
		write(go[1], "g", 1);
		drain(p[0]);
		seen = count(buf);
	}
	if (!strcmp(way, "exec"))
		kill(pid, SIGKILL);
	if (pid)
		waitpid(pid, &status, 0);
	close(p[0]);
	close(go[1]);
	return seen;
}

static void by(const char *way, int buf)
{
	int ones = 0;

	for (int i = 0; i < rounds; i++) {
		int seen = once(way, buf);

		ones += seen == 1;
		if (seen != 1 && getenv("EXITORDER_DEBUG"))
			printf("%s round %d: count %d\n", way, i, seen);
	}
	printf("%s: count 1 in %d of %d rounds\n", way, ones, rounds);
}

/* a child holds the only device fd and a pipe's write end: once the parent reads the
 * end-of-file, the group has no user but the container (UNSET_CONTAINER works) */
static void vfio_rounds(void)
{
	char bdf[256], path[64];
	int gnum = vfio_pci_group(bdf, sizeof(bdf)), ok = 0, busy = 0;

	if (gnum < 0) {
		printf("vfio: no device bound to vfio-pci\n");
		return;
	}
	snprintf(path, sizeof(path), "/dev/vfio/%d", gnum);
	for (int i = 0; i < rounds; i++) {
		int container = open("/dev/vfio/vfio", O_RDWR), group = open(path, O_RDWR);
		int p[2], dev, status;
		pid_t pid;
		long r;

		if (container < 0 || group < 0)
			die("open vfio");
		if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container))
			die("SET_CONTAINER");
		if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
			die("SET_IOMMU");
		if (pipe(p))
			die("pipe");
		dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf); /* above the pipe's fds */
		if (dev < 0)
			die("GET_DEVICE_FD");
		pid = child();
		if (pid == 0) {
			close(p[0]);
			_exit(0);
		}
		close(dev);
		close(p[1]);
		drain(p[0]);
		r = ioctl(group, VFIO_GROUP_UNSET_CONTAINER);
		ok += r == 0;
		busy += r < 0 && errno == EBUSY;
		if (r && getenv("EXITORDER_DEBUG"))
			printf("round %d: %s\n", i, strerrorname_np(errno));
		waitpid(pid, &status, 0);
		if (r)
			ioctl(group, VFIO_GROUP_UNSET_CONTAINER);
		close(p[0]);
		close(group);
		close(container);
	}
	printf("vfio eof: UNSET_CONTAINER ok in %d of %d rounds (EBUSY in %d)\n", ok, rounds,
	       busy);
}

int main(int argc, char **argv)
{
	static const char *ways[] = { "eof", "kill", "threads", "lastthread", "exec",
				      "pidfd", "proc", "sigchld", "wait" };
	int dev, memfd, buf;

	if (argc > 1)
		rounds = atoi(argv[1]);
	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("open /dev/udmabuf");
	buf = make_dmabuf(dev, 1, 0, &memfd);
	printf("before: count %d\n", count(buf));
	for (size_t i = 0; i < sizeof(ways) / sizeof(ways[0]); i++)
		if (argc < 3 || !strcmp(argv[2], ways[i]))
			by(ways[i], buf);
	printf("after: count %d\n", count(buf));
	close(buf);
	close(memfd);
	close(dev);
	if (argc < 3 || !strcmp(argv[2], "vfio"))
		vfio_rounds();
	return 0;
}
