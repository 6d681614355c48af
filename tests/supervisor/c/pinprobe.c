/* A udmabuf holds the pinned pages (memfd_pin_folios): punching a hole in its memfd --
 * fallocate(PUNCH_HOLE) or MADV_REMOVE on a mapping of the memfd -- takes the pages out
 * of the memfd, but the dma-buf keeps them: its mappings (made before or after the punch)
 * show the old data, and in the punched range the dma-buf and the memfd are no longer
 * coherent.  Pages outside the range (whole pages: a partial page is zeroed in place)
 * stay shared.  A punch that fails changes nothing. */
#include "common.h"
#include <linux/falloc.h>
#include <pthread.h>

static void step(const char *name, long r)
{
	if (r < 0 && errno == EOPNOTSUPP)
		printf("%s: EOPNOTSUPP\n", name);
	else
		printf("%s: %s\n", name, res(r));
}

/* a sealed memfd of `pages` pages, page i filled with 'a' + i */
static int new_memfd(int pages)
{
	int memfd = memfd_create("pin", MFD_ALLOW_SEALING);
	char page[PAGE];

	if (memfd < 0 || ftruncate(memfd, (off_t)pages * PAGE))
		die("memfd");
	for (int i = 0; i < pages; i++) {
		memset(page, 'a' + i, PAGE);
		if (pwrite(memfd, page, PAGE, (off_t)i * PAGE) != PAGE)
			die("pwrite");
	}
	if (fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK))
		die("seal");
	return memfd;
}

/* a dma-buf of the slices (memfd, first page, pages) */
static int new_buf(int dev, int n, const int *memfds, const int *first, const int *pages)
{
	struct {
		struct udmabuf_create_list head;
		struct udmabuf_create_item items[4];
	} l = { .head = { .flags = UDMABUF_FLAGS_CLOEXEC, .count = n } };
	int fd;

	for (int i = 0; i < n; i++) {
		l.items[i].memfd = memfds[i];
		l.items[i].offset = (unsigned long long)first[i] * PAGE;
		l.items[i].size = (unsigned long long)pages[i] * PAGE;
	}
	fd = ioctl(dev, UDMABUF_CREATE_LIST, &l);
	if (fd < 0)
		die("UDMABUF_CREATE_LIST");
	return fd;
}

static int one_buf(int dev, int memfd, int first, int pages)
{
	return new_buf(dev, 1, &memfd, &first, &pages);
}

static char *map(int fd, int pages)
{
	char *p = mmap(NULL, (size_t)pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

/* what a page holds: its first byte, and '*' after it unless every byte is the same
 * ('0' for a zero byte) */
static void show_page(const char *p, char *out)
{
	out[0] = p[0] ? p[0] : '0';
	out[1] = 0;
	for (int i = 1; i < PAGE; i++) {
		if (p[i] != p[0]) {
			out[1] = '*';
			out[2] = 0;
			return;
		}
	}
}

static void show(const char *what, const char *p, int pages)
{
	char b[3];

	printf("%s:", what);
	for (int i = 0; i < pages; i++) {
		show_page(p + (size_t)i * PAGE, b);
		printf(" %s", b);
	}
	printf("\n");
}

/* the memfd's pages as read() sees them */
static void show_fd(const char *what, int fd, int pages)
{
	char page[PAGE], b[3];

	printf("%s:", what);
	for (int i = 0; i < pages; i++) {
		if (pread(fd, page, PAGE, (off_t)i * PAGE) != PAGE)
			die("pread");
		show_page(page, b);
		printf(" %s", b);
	}
	printf("\n");
}

static void fill(int fd, int page, char c)
{
	char buf[PAGE];

	memset(buf, c, PAGE);
	if (pwrite(fd, buf, PAGE, (off_t)page * PAGE) != PAGE)
		die("pwrite");
}

static int punch(int fd, int first, int pages)
{
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)first * PAGE,
			 (off_t)pages * PAGE);
}

/* fallocate and MADV_REMOVE: the dma-buf keeps the old pages, before and after */
static void punch_one(int dev, int by_madvise)
{
	int memfd = new_memfd(3), buf = one_buf(dev, memfd, 0, 3);
	char *before = map(buf, 3), *m = map(memfd, 3), *after;

	printf("== punch page 1 by %s\n", by_madvise ? "MADV_REMOVE" : "fallocate");
	if (by_madvise)
		step("madvise remove", madvise(m + PAGE, PAGE, MADV_REMOVE));
	else
		step("fallocate punch", punch(memfd, 1, 1));
	show_fd("memfd read", memfd, 3);
	show("memfd map", m, 3);
	show("dma-buf map made before", before, 3);
	after = map(buf, 3);
	show("dma-buf map made after", after, 3);

	fill(memfd, 1, 'X');
	fill(memfd, 2, 'Y');
	show("after memfd writes, dma-buf", before, 3);
	show("after memfd writes, memfd map", m, 3);
	before[PAGE] = 'Z';
	before[0] = 'W';
	show_fd("after dma-buf writes, memfd", memfd, 3);
	show("after dma-buf writes, the other dma-buf map", after, 3);

	/* a second punch of the same page: the dma-buf no longer holds the memfd's page */
	step("punch again", punch(memfd, 0, 3));
	show("after the second punch, dma-buf", after, 3);
	show_fd("after the second punch, memfd", memfd, 3);
	munmap(after, 3 * PAGE);
	munmap(before, 3 * PAGE);
	munmap(m, 3 * PAGE);
	close(buf);
	close(memfd);
}

/* UDMABUF_CREATE_LIST of two memfds and of two ranges of one: only what is punched moves */
static void punch_list(int dev)
{
	int m1 = new_memfd(2), m2 = new_memfd(2);
	int memfds[2] = { m1, m2 }, first[2] = { 0, 0 }, pages[2] = { 2, 2 };
	int buf = new_buf(dev, 2, memfds, first, pages);
	char *p = map(buf, 4);
	int same[2] = { m2, m2 }, first2[2] = { 1, 0 }, pages2[2] = { 1, 1 };
	int buf2;
	char *q;

	printf("== two memfds, one punched\n");
	step("punch memfd 1 page 0", punch(m1, 0, 1));
	show("dma-buf", p, 4);
	fill(m1, 0, 'P');
	fill(m1, 1, 'Q');
	fill(m2, 0, 'R');
	fill(m2, 1, 'S');
	show("after memfd writes, dma-buf", p, 4);
	munmap(p, 4 * PAGE);
	close(buf);

	printf("== one memfd twice, reversed, page 1 punched\n");
	buf2 = new_buf(dev, 2, same, first2, pages2);
	q = map(buf2, 2);
	show("dma-buf", q, 2);
	step("punch page 1", punch(m2, 1, 1));
	fill(m2, 0, 'T');
	fill(m2, 1, 'U');
	show("after punch and memfd writes, dma-buf", q, 2);
	munmap(q, 2 * PAGE);
	close(buf2);
	close(m1);
	close(m2);
}

/* two dma-bufs pinning one page: after the punch they still share it */
static void punch_shared(int dev)
{
	int memfd = new_memfd(2), b1 = one_buf(dev, memfd, 0, 2), b2 = one_buf(dev, memfd, 1, 1);
	char *p1 = map(b1, 2), *p2 = map(b2, 1);

	printf("== two dma-bufs of one page\n");
	step("punch both pages", punch(memfd, 0, 2));
	p1[PAGE] = 'K';
	show("second dma-buf sees the first's write", p2, 1);
	p2[0] = 'L';
	show("first dma-buf sees the second's write", p1, 2);
	show_fd("memfd", memfd, 2);
	munmap(p1, 2 * PAGE);
	munmap(p2, PAGE);
	close(b1);
	close(b2);
	close(memfd);
}

/* a partial page is zeroed in place: the dma-buf sees that; whole pages move */
static void punch_partial(int dev)
{
	int memfd = new_memfd(3), buf = one_buf(dev, memfd, 0, 3);
	char *p = map(buf, 3);

	printf("== partial pages\n");
	step("punch inside page 0",
	     fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 200));
	show("dma-buf", p, 3);
	printf("dma-buf bytes 99 100 299 300: %d %d %d %d\n", p[99], p[100], p[299], p[300]);
	step("punch end of page 1 to middle of page 2",
	     fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PAGE + 2048, PAGE));
	show("dma-buf", p, 3);
	fill(memfd, 1, 'M');
	fill(memfd, 2, 'N');
	show("after memfd writes, dma-buf", p, 3);
	munmap(p, 3 * PAGE);
	close(buf);
	close(memfd);
}

/* a forked child's inherited mapping keeps the old page too */
static void punch_fork(int dev)
{
	int memfd = new_memfd(1), buf = one_buf(dev, memfd, 0, 1);
	char *p = map(buf, 1);
	int go[2], status;
	pid_t pid;

	printf("== a forked child's mapping\n");
	fflush(stdout);
	if (pipe(go))
		die("pipe");
	pid = fork();
	if (pid == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		show("child's dma-buf map", p, 1);
		fflush(stdout);
		_exit(0);
	}
	close(go[0]);
	step("punch", punch(memfd, 0, 1));
	fill(memfd, 0, 'F');
	if (write(go[1], "x", 1) != 1)
		die("write");
	close(go[1]);
	waitpid(pid, &status, 0);
	printf("child exit: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	munmap(p, PAGE);
	close(buf);
	close(memfd);
}

/* another thread of the process, blocked meanwhile, sees the old page through its map */
static int thread_pipe[2];
static char *thread_map;

static void *thread_main(void *arg)
{
	char c;

	(void)arg;
	if (read(thread_pipe[0], &c, 1) != 1)
		return NULL;
	show("other thread's dma-buf map", thread_map, 1);
	return NULL;
}

static void punch_thread(int dev)
{
	int memfd = new_memfd(1), buf = one_buf(dev, memfd, 0, 1);
	pthread_t t;

	printf("== another thread\n");
	thread_map = map(buf, 1);
	if (pipe(thread_pipe) || pthread_create(&t, NULL, thread_main, NULL))
		die("thread");
	usleep(20000); /* (let it block in read: the order does not change the output) */
	step("punch", punch(memfd, 0, 1));
	fill(memfd, 0, 'T');
	if (write(thread_pipe[1], "x", 1) != 1)
		die("write");
	pthread_join(t, NULL);
	show_fd("memfd", memfd, 1);
	close(thread_pipe[0]);
	close(thread_pipe[1]);
	munmap(thread_map, PAGE);
	close(buf);
	close(memfd);
}

/* punches that fail move nothing: the dma-buf stays coherent with the memfd */
static void punch_fails(int dev)
{
	int memfd = new_memfd(2), buf = one_buf(dev, memfd, 0, 2);
	char *p = map(buf, 2), *priv, *ro;
	char path[64];
	int rdonly;

	printf("== failed punches\n");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	rdonly = open(path, O_RDONLY | O_CLOEXEC);
	if (rdonly < 0)
		die("reopen");
	step("fallocate without KEEP_SIZE",
	     fallocate(memfd, FALLOC_FL_PUNCH_HOLE, 0, PAGE));
	step("fallocate on a read-only fd", punch(rdonly, 0, 1));
	step("fallocate negative offset",
	     fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, -PAGE, PAGE));
	step("fallocate zero length",
	     fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 0));
	step("fallocate on the dma-buf", fallocate(buf, 0, 0, PAGE));
	step("fallocate punch on the dma-buf", punch(buf, 0, 1));
	priv = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, memfd, 0);
	ro = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, rdonly, 0);
	if (priv == MAP_FAILED || ro == MAP_FAILED)
		die("mmap");
	step("madvise remove on a private map", madvise(priv, PAGE, MADV_REMOVE));
	step("madvise remove on a read-only open's map", madvise(ro, PAGE, MADV_REMOVE));
	step("madvise remove unaligned", madvise(ro + 1, PAGE, MADV_REMOVE));
	fill(memfd, 0, 'G');
	fill(memfd, 1, 'H');
	show("dma-buf follows the memfd", p, 2);
	munmap(priv, 2 * PAGE);
	munmap(ro, 2 * PAGE);

	/* a shared map of an O_RDWR open, mapped read-only: VM_MAYWRITE, the punch works */
	ro = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, memfd, 0);
	if (ro == MAP_FAILED)
		die("mmap");
	step("madvise remove on a PROT_READ map of a writable open", madvise(ro, PAGE, MADV_REMOVE));
	fill(memfd, 0, 'I');
	fill(memfd, 1, 'J');
	show("dma-buf", p, 2);
	munmap(ro, 2 * PAGE);
	munmap(p, 2 * PAGE);
	close(rdonly);
	close(buf);
	close(memfd);
}

int main(void)
{
	int dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);

	if (dev < 0)
		die("open /dev/udmabuf");
	setvbuf(stdout, NULL, _IOLBF, 0);
	punch_one(dev, 0);
	punch_one(dev, 1);
	punch_list(dev);
	punch_shared(dev);
	punch_partial(dev);
	punch_fork(dev);
	punch_thread(dev);
	punch_fails(dev);
	close(dev);
	return 0;
}
