/* A program written for real Linux, as an outsider would write one: threads, fork, exec
 * and posix_spawn mixing mock fds (udmabuf, dma-buf) with real ones (pipes, memfds).
 *  - two threads issue DMA_BUF_IOCTL_SYNC and SET_NAME while the main thread forks
 *  - the forked child dup2()s the dma-buf onto fd 20 and execs /bin/sh, which reads its
 *    fdinfo through /proc/self and writes it into a pipe (dup2 onto its own number, as
 *    buf is here, would keep close-on-exec: gone at the exec, as the guest showed)
 *  - posix_spawn of `cat` with the dma-buf's fdinfo as its argument
 *  - poll over the dma-buf and the pipe; the parent's view afterwards */
#include "common.h"
#include <poll.h>
#include <pthread.h>
#include <spawn.h>

extern char **environ;
static int buf;
static long okcount[2];

static void *worker(void *arg)
{
	long id = (long)arg;
	char name[16];

	for (int i = 0; i < 100; i++) {
		struct dma_buf_sync s = { .flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW };
		if (ioctl(buf, DMA_BUF_IOCTL_SYNC, &s) == 0) {
			s.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW;
			okcount[id] += ioctl(buf, DMA_BUF_IOCTL_SYNC, &s) == 0;
		}
	}
	snprintf(name, sizeof(name), "thread%ld", id);
	ioctl(buf, DMA_BUF_SET_NAME_B, name);
	return NULL;
}

int main(void)
{
	int dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC), memfd, p[2], status;
	pthread_t t[2];
	char line[256], path[64];
	ssize_t n;
	pid_t pid;

	if (dev < 0)
		die("open /dev/udmabuf");
	buf = make_dmabuf(dev, 2, UDMABUF_FLAGS_CLOEXEC, &memfd);
	if (pipe2(p, O_CLOEXEC))
		die("pipe");
	for (long i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		dup2(buf, 20); /* not close-on-exec: survives the exec */
		dup2(p[1], 1);
		execl("/bin/sh", "sh", "-c",
		      "grep -E '^(size|count|exp_name)' /proc/self/fdinfo/20; "
		      "ls -l /proc/self/fd/ | grep -c dmabuf; "
		      "test -e /proc/self/fd/3 && echo fd3-open || echo fd3-closed", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("syncs: %ld %ld\n", okcount[0], okcount[1]);
	while ((n = read(p[0], line, sizeof(line) - 1)) > 0) {
		line[n] = 0;
		fputs(line, stdout);
	}
	waitpid(pid, &status, 0);
	printf("child exit %d\n", WEXITSTATUS(status));
	printf("name after threads: %s\n",
	       !strcmp(fdinfo("self", buf, "name"), "thread0") ||
	       !strcmp(fdinfo("self", buf, "name"), "thread1") ? "a thread's" : "other");
	printf("count after child: %s\n", fdinfo("self", buf, "count"));

	/* posix_spawn: the child gets the dma-buf at the same number (not close-on-exec) */
	{
		int d = dup(buf);
		char *argv[] = { "grep", "-c", "^exp_name:\tudmabuf", path, NULL };
		posix_spawn_file_actions_t fa;

		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", d);
		posix_spawn_file_actions_init(&fa);
		fflush(stdout);
		if (posix_spawnp(&pid, "grep", &fa, NULL, argv, environ))
			die("posix_spawn");
		waitpid(pid, &status, 0);
		printf("spawned grep exit %d\n", WEXITSTATUS(status));
		close(d);
	}

	/* poll: a dma-buf without fences is readable and writable; an empty pipe is not */
	{
		int q[2];
		struct pollfd pf[2];

		if (pipe(q))
			die("pipe");
		pf[0] = (struct pollfd){ .fd = buf, .events = POLLIN | POLLOUT };
		pf[1] = (struct pollfd){ .fd = q[0], .events = POLLIN };
		n = poll(pf, 2, 0);
		printf("poll %zd: %#x %#x\n", n, pf[0].revents, pf[1].revents);
		close(q[0]);
		close(q[1]);
	}
	close(buf);
	close(memfd);
	close(dev);
	printf("done\n");
	return 0;
}
