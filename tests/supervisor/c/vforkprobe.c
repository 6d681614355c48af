/* vfork and posix_spawn (clone CLONE_VM|CLONE_VFORK): the child borrows the parent's
 * address space (a munmap there unmaps the parent's dma-buf mapping, a mapping it makes
 * stays the parent's) and has its own copy of the fd table (its closes and dup2s are
 * its own; exec keeps what is not close-on-exec). */
#include "common.h"
#include <spawn.h>

extern char **environ;
/* set by a vfork child in the shared address space: memory, never a register */
static char *volatile m2;

static int maps_lines(const char *what)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, what) != NULL;
	if (f)
		fclose(f);
	return n;
}

static void report(const char *when, int buf)
{
	printf("%s: fd %s", when, res(fcntl(buf, F_GETFD)));
	printf(", count %s", fdinfo("self", buf, "count"));
	printf(", name %s, dmabuf maps %d\n", fdinfo("self", buf, "name"), maps_lines("dmabuf"));
}

int main(int argc, char **argv)
{
	int dev, buf, memfd, base, status, extra;
	char *m, arg[32];
	pid_t pid;

	if (argc > 2) { /* the exec'd child: argv[2] is the inherited dma-buf fd */
		int fd = atoi(argv[2]);
		printf("exec'd child: inherited dma-buf %s", res(fcntl(fd, F_GETFD)));
		printf(", name %s", fdinfo("self", fd, "name"));
		printf(", count %s", fdinfo("self", fd, "count"));
		printf("; moved at +10: %s\n", fdinfo("self", atoi(argv[1]), "name"));
		return 0;
	}
	base = lowest_free();
	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("open /dev/udmabuf");
	buf = make_dmabuf(dev, 2, 0, &memfd);
	if (ioctl(buf, DMA_BUF_SET_NAME_B, "parent"))
		die("SET_NAME");
	m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	if (m == MAP_FAILED)
		die("mmap");
	strcpy(m, "hello");
	report("mapped", buf);

	/* 1: the vfork child unmaps the parent's mapping and exits */
	pid = vfork();
	if (pid == 0) {
		munmap(m, 2 * PAGE);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	report("after a vfork child's munmap", buf);

	/* 2: the vfork child maps the dma-buf and exits: the mapping is the parent's */
	m2 = NULL;
	pid = vfork();
	if (pid == 0) {
		m2 = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
		_exit(m2 == MAP_FAILED);
	}
	waitpid(pid, &status, 0);
	printf("vfork child's mmap: exit %d, contents %s\n", WEXITSTATUS(status),
	       m2 && m2 != MAP_FAILED ? m2 : "-");
	report("after a vfork child's mmap", buf);
	if (m2 && m2 != MAP_FAILED)
		munmap(m2, PAGE);
	report("after the parent's munmap", buf);

	/* 3: vfork, close the dma-buf in the child, exec: the parent's fd is untouched */
	extra = make_dmabuf(dev, 1, 0, &memfd);
	if (ioctl(extra, DMA_BUF_SET_NAME_B, "extra"))
		die("SET_NAME");
	fflush(stdout);
	pid = vfork();
	if (pid == 0) {
		char a1[16], a2[16];

		close(buf);
		dup2(extra, base + 10);
		snprintf(a1, sizeof(a1), "%d", base + 10);
		snprintf(a2, sizeof(a2), "%d", extra);
		execl("/proc/self/exe", argv[0], a1, a2, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	printf("vfork+exec child: exit %d\n", WEXITSTATUS(status));
	report("after vfork+exec", buf);
	printf("extra: count %s, +10: %s\n", fdinfo("self", extra, "count"),
	       res(fcntl(base + 10, F_GETFD)));

	/* 4: posix_spawn with file actions (glibc: clone CLONE_VM|CLONE_VFORK) */
	{
		posix_spawn_file_actions_t fa;
		char a1[16], *args[4];

		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, extra, base + 10);
		posix_spawn_file_actions_addclose(&fa, buf);
		snprintf(a1, sizeof(a1), "%d", base + 10);
		snprintf(arg, sizeof(arg), "%d", extra);
		args[0] = argv[0];
		args[1] = a1;
		args[2] = arg;
		args[3] = NULL;
		fflush(stdout);
		if (posix_spawn(&pid, "/proc/self/exe", &fa, NULL, args, environ))
			die("posix_spawn");
		waitpid(pid, &status, 0);
		printf("posix_spawn child: exit %d\n", WEXITSTATUS(status));
		report("after posix_spawn", buf);
	}
	return 0;
}
