/* Faults a supervised tree may commit, one per mode (argv[1]); each prints what it saw.
 *   closeall   close_range(3, ~0) with a dma-buf mapped: the mock fds and the
 *              supervisor's backing fds kept in the process go; the mapping stays,
 *              and a new dma-buf maps again
 *   killchild  the parent SIGKILLs a child blocked in a mock ioctl (/dev/blocker)
 *   killparent a child SIGKILLs its parent (the root), then goes on with the mock fds
 *   iouring    io_uring_setup (the supervisor cannot see io_uring's operations)
 *   abi        i386 (int 0x80) and x32 syscalls on a mock fd
 *   leak       a grandchild opens /dev/leaky (a test driver that leaks the file)
 *   failnth    /proc/thread-self/fail-nth of a supervised task
 */
#include "common.h"
#include <signal.h>
#include <sys/syscall.h>

static const char *said(long ret)
{
	return ret >= 0 ? "ok" : strerrorname_np(errno);
}

static int closeall(void)
{
	int memfd, dev = open("/dev/udmabuf", O_RDWR), buf = make_dmabuf(dev, 2, 0, &memfd);
	char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);

	if (m == MAP_FAILED)
		die("mmap");
	m[PAGE] = 'x';
	printf("close_range(3, ~0): %s\n", said(syscall(SYS_close_range, 3, ~0U, 0)));
	printf("the dma-buf fd after: %s\n", said(fcntl(buf, F_GETFD)));
	printf("the mapping after: %c\n", m[PAGE]);
	printf("munmap: %s\n", said(munmap(m, 2 * PAGE)));
	dev = open("/dev/udmabuf", O_RDWR);
	buf = make_dmabuf(dev, 2, 0, &memfd);
	m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	printf("a new dma-buf maps: %s\n", said(m == MAP_FAILED ? -1 : 0));
	m[0] = 'y';
	printf("its memfd sees the write: %d\n", ({ char c = 0; pread(memfd, &c, 1, 0); c == 'y'; }));
	printf("munmap: %s\n", said(munmap(m, 2 * PAGE)));
	close(buf);
	close(memfd);
	close(dev);
	return 0;
}

static int killchild(void)
{
	int memfd, dev = open("/dev/udmabuf", O_RDWR), buf = make_dmabuf(dev, 1, 0, &memfd);
	int blocker = open("/dev/blocker", O_RDWR), status;
	pid_t pid;

	if (blocker < 0)
		die("open /dev/blocker");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		ioctl(blocker, 0xb001, 0); /* waits in the driver */
		_exit(0);
	}
	while (ioctl(blocker, 0xb003, 0) != 1) /* until the child waits in the kernel */
		;
	printf("count while the child lives: %s\n", fdinfo("self", buf, "count"));
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	printf("child: killed by signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	printf("SET_NAME after: %s\n", said(ioctl(buf, DMA_BUF_SET_NAME_B, "survivor")));
	printf("name: %s\n", fdinfo("self", buf, "name"));
	close(blocker);
	close(buf);
	close(memfd);
	close(dev);
	return 0;
}

static int killparent(void)
{
	int memfd, dev = open("/dev/udmabuf", O_RDWR), buf = make_dmabuf(dev, 1, 0, &memfd);
	pid_t parent = getpid();

	fflush(stdout);
	if (fork() == 0) {
		kill(parent, SIGKILL);
		while (getppid() == parent)
			usleep(1000);
		printf("orphan: count %s\n", fdinfo("self", buf, "count"));
		printf("orphan: SET_NAME: %s\n", said(ioctl(buf, DMA_BUF_SET_NAME_B, "orphan")));
		printf("orphan: name %s\n", fdinfo("self", buf, "name"));
		close(buf);
		close(memfd);
		close(dev);
		return 0;
	}
	for (;;)
		pause();
}

static int iouring(void)
{
	char params[120] = { 0 }; /* struct io_uring_params */
	int memfd, dev = open("/dev/udmabuf", O_RDWR), buf = make_dmabuf(dev, 1, 0, &memfd);
	long r = syscall(425 /* __NR_io_uring_setup */, 8, params);

	printf("io_uring_setup: %s\n", said(r));
	if (r >= 0)
		close((int)r);
	printf("the dma-buf after: %s\n", said(ioctl(buf, DMA_BUF_SET_NAME_B, "still")));
	close(buf);
	close(memfd);
	close(dev);
	return 0;
}

static long int80(long nr, long a, long b, long c)
{
	long ret;

	asm volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
	return ret;
}

static int abi(void)
{
	int memfd, dev = open("/dev/udmabuf", O_RDWR), buf = make_dmabuf(dev, 1, 0, &memfd);
	/* the i386 ABI passes 32-bit pointers: the name below 4 GiB */
	char *name = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
			  -1, 0);
	long r;

	if (name == MAP_FAILED)
		die("mmap MAP_32BIT");
	strcpy(name, "via-int80");

	/* i386 ioctl (54) and getpid (20): the 32-bit ABI, from a 64-bit process */
	r = int80(54, buf, DMA_BUF_SET_NAME_B, (long)(unsigned long)name);
	printf("int 0x80 ioctl on the dma-buf: %s\n", r < 0 ? strerrorname_np((int)-r) : "ok");
	r = int80(20, 0, 0, 0);
	printf("int 0x80 getpid: %s\n", r < 0 ? strerrorname_np((int)-r) : "ok");
	printf("name after: %s\n", fdinfo("self", buf, "name"));
	strcpy(name, "via-x32");
	printf("x32 ioctl on the dma-buf: %s\n",
	       said(syscall(0x40000000 | 514 /* x32 ioctl */, buf, DMA_BUF_SET_NAME_B, name)));
	printf("name after: %s\n", fdinfo("self", buf, "name"));
	printf("x86-64 ioctl: %s\n", said(ioctl(buf, DMA_BUF_SET_NAME_B, "via-syscall")));
	printf("name after: %s\n", fdinfo("self", buf, "name"));
	munmap(name, PAGE);
	close(buf);
	close(memfd);
	close(dev);
	return 0;
}

static int leak(void)
{
	int status;

	fflush(stdout);
	if (fork() == 0) {
		if (fork() == 0) {
			int fd = open("/dev/leaky", O_RDWR);

			printf("grandchild %d: open /dev/leaky: %s\n", getpid(), said(fd));
			close(fd);
			fflush(stdout);
			_exit(0);
		}
		wait(&status);
		_exit(0);
	}
	wait(&status);
	return 0;
}

static const char *remaining(int f)
{
	static char buf[32];
	ssize_t n = pread(f, buf, sizeof(buf) - 1, 0);

	buf[n < 0 ? 0 : n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

static int failnth(void)
{
	int f = open("/proc/thread-self/fail-nth", O_RDWR), fd;

	printf("open fail-nth: %s\n", said(f));
	printf("write 1: %s\n", said(write(f, "1", 1)));
	fd = open("/dev/udmabuf", O_RDWR);
	printf("open /dev/udmabuf: %s\n", said(fd));
	printf("left: %s\n", remaining(f));
	printf("write 100: %s\n", said(write(f, "100", 3)));
	fd = open("/dev/udmabuf", O_RDWR);
	printf("open /dev/udmabuf: %s\n", said(fd));
	printf("left: %s\n", remaining(f));
	printf("write 0: %s\n", said(write(f, "0", 1)));
	printf("write x: %s\n", said(write(f, "x", 1)));
	close(fd);
	close(f);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	if (!strcmp(mode, "closeall"))
		return closeall();
	if (!strcmp(mode, "killchild"))
		return killchild();
	if (!strcmp(mode, "killparent"))
		return killparent();
	if (!strcmp(mode, "iouring"))
		return iouring();
	if (!strcmp(mode, "abi"))
		return abi();
	if (!strcmp(mode, "leak"))
		return leak();
	if (!strcmp(mode, "failnth"))
		return failnth();
	printf("usage: faults closeall|killchild|killparent|iouring|abi|leak|failnth\n");
	return 2;
}
