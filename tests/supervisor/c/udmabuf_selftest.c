/* udmabuf checks in the style of the kernel's tools/testing/selftests/drivers/dma-buf/
 * udmabuf.c: UDMABUF_CREATE's errors, UDMABUF_CREATE_LIST of slices at different memfd
 * offsets, and the dma-buf's mapping compared with the memfd's, both ways.
 *
 * The upstream selftest's test-6 and test-7 run the same on a hugetlb memfd (1024 huge pages
 * of 2 MiB); with no huge pages free (the guest's and these machines' default) only the
 * errors can be compared: hugetlb_no_pages() below.
 *
 * One line per check: its name and what the kernel said (an errno name, or the values
 * seen).  The golden (tests/real_linux/golden/c_udmabuf_selftest.txt) is this program's
 * output on real Linux 7.2; the supervisor must print the same lines.
 */
#include "common.h"

#define MEMFD_PAGES 64
#define NUM_ENTRIES 4

static int dev;

static const char *said(long ret)
{
	static char buf[64];

	if (ret >= 0) {
		snprintf(buf, sizeof(buf), "ok");
		return buf;
	}
	snprintf(buf, sizeof(buf), "%s", strerrorname_np(errno));
	return buf;
}

/* a memfd of `pages` pages with `seals` added (none when 0), or without sealing at all */
static int new_memfd(int pages, int sealing, int seals)
{
	int fd = memfd_create("udmabuf-selftest", sealing ? MFD_ALLOW_SEALING : 0);

	if (fd < 0 || ftruncate(fd, (off_t)pages * PAGE))
		die("memfd");
	if (seals && fcntl(fd, F_ADD_SEALS, seals))
		die("F_ADD_SEALS");
	return fd;
}

/* UDMABUF_CREATE; a created buffer is closed again at once */
static void try_create(const char *what, int memfd, unsigned flags, __u64 offset, __u64 size)
{
	struct udmabuf_create c = { .memfd = memfd, .flags = flags, .offset = offset, .size = size };
	int fd = ioctl(dev, UDMABUF_CREATE, &c);

	printf("create %s: %s\n", what, said(fd));
	if (fd >= 0)
		close(fd);
}

static void create_errors(void)
{
	int sealed = new_memfd(MEMFD_PAGES, 1, F_SEAL_SHRINK);
	int unsealed = new_memfd(MEMFD_PAGES, 1, 0);
	int nosealing = new_memfd(MEMFD_PAGES, 0, 0);
	int write_sealed = new_memfd(MEMFD_PAGES, 1, F_SEAL_SHRINK | F_SEAL_WRITE);
	int pipefd[2];

	if (pipe(pipefd))
		die("pipe");
	try_create("valid", sealed, 0, 0, PAGE);
	try_create("valid, cloexec", sealed, UDMABUF_FLAGS_CLOEXEC, PAGE, 2 * PAGE);
	try_create("bad flags", sealed, 0x2, 0, PAGE);
	try_create("bad flags with CLOEXEC (the selftest's test-unknown-flags)", sealed,
		   UDMABUF_FLAGS_CLOEXEC | 0x2, 0, PAGE);
	try_create("offset half a page (test-1)", sealed, 0, PAGE / 2, PAGE);
	try_create("size half a page (test-2)", sealed, 0, 0, PAGE / 2);
	try_create("stdin (test-3)", 0, 0, 0, PAGE);
	try_create("size 0", sealed, 0, 0, 0);
	try_create("size not page-aligned", sealed, 0, 0, PAGE - 1);
	try_create("offset not page-aligned", sealed, 0, 1, PAGE);
	try_create("beyond the memfd", sealed, 0, (MEMFD_PAGES - 1) * PAGE, 2 * PAGE);
	try_create("memfd without F_SEAL_SHRINK", unsealed, 0, 0, PAGE);
	try_create("memfd without sealing", nosealing, 0, 0, PAGE);
	try_create("memfd with F_SEAL_WRITE", write_sealed, 0, 0, PAGE);
	try_create("not a memfd (a pipe)", pipefd[0], 0, 0, PAGE);
	try_create("the udmabuf device", dev, 0, 0, PAGE);
	try_create("fd -1", -1, 0, 0, PAGE);
	try_create("fd 9999", 9999, 0, 0, PAGE);
	close(pipefd[0]);
	close(pipefd[1]);
	close(write_sealed);
	close(nosealing);
	close(unsealed);
	close(sealed);
}

/* UDMABUF_CREATE_LIST of `count` items of the same memfd */
static int create_list(int memfd, unsigned flags, unsigned count, const __u64 *offsets,
		       const __u64 *sizes)
{
	size_t len = sizeof(struct udmabuf_create_list) + count * sizeof(struct udmabuf_create_item);
	struct udmabuf_create_list *list = calloc(1, len);
	int fd;

	list->flags = flags;
	list->count = count;
	for (unsigned i = 0; i < count; i++)
		list->list[i] = (struct udmabuf_create_item){ .memfd = memfd, .offset = offsets[i],
							       .size = sizes[i] };
	fd = ioctl(dev, UDMABUF_CREATE_LIST, list);
	free(list);
	return fd;
}

static void list_errors(int memfd)
{
	static __u64 offsets[1025], sizes[1025];
	int fd;

	for (int i = 0; i < 1025; i++)
		sizes[i] = PAGE;
	fd = create_list(memfd, 0, 0, offsets, sizes);
	printf("list of 0 items: %s\n", said(fd));
	fd = create_list(memfd, 0, 1025, offsets, sizes);
	printf("list of 1025 items (limit 1024): %s\n", said(fd));
	if (fd >= 0)
		close(fd);
	fd = create_list(memfd, 0, 1024, offsets, sizes);
	printf("list of 1024 items: %s\n", said(fd));
	if (fd >= 0)
		close(fd);
	fd = create_list(memfd, 0x2, 1, offsets, sizes);
	printf("list with bad flags: %s\n", said(fd));
	sizes[1] = PAGE + 1;
	fd = create_list(memfd, 0, 2, offsets, sizes);
	printf("list with an unaligned second item: %s\n", said(fd));
	if (fd >= 0)
		close(fd);
}

/* the first byte of each page of the memfd says which page it is */
static void stamp(unsigned char *m, int pages, unsigned char base)
{
	for (int i = 0; i < pages; i++)
		memset(m + (size_t)i * PAGE, base + i, PAGE);
}

static void list_mmap(int memfd)
{
	/* slices of different sizes at different offsets, not in memfd order */
	const __u64 offsets[NUM_ENTRIES] = { 8 * PAGE, 0, 40 * PAGE, 3 * PAGE };
	const __u64 sizes[NUM_ENTRIES] = { 2 * PAGE, PAGE, 4 * PAGE, PAGE };
	size_t total = 8 * PAGE, at = 0;
	unsigned char *mem, *buf;
	int fd, same = 1;
	off_t size;

	mem = mmap(NULL, MEMFD_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (mem == MAP_FAILED)
		die("mmap memfd");
	stamp(mem, MEMFD_PAGES, 1);
	fd = create_list(memfd, UDMABUF_FLAGS_CLOEXEC, NUM_ENTRIES, offsets, sizes);
	if (fd < 0)
		die("UDMABUF_CREATE_LIST");
	size = lseek(fd, 0, SEEK_END);
	printf("list of %d slices: size %lld, fd cloexec %d\n", NUM_ENTRIES, (long long)size,
	       !!(fcntl(fd, F_GETFD) & FD_CLOEXEC));

	buf = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (buf == MAP_FAILED)
		die("mmap dma-buf");
	for (int i = 0; i < NUM_ENTRIES; i++) {
		same &= !memcmp(buf + at, mem + offsets[i], sizes[i]);
		at += sizes[i];
	}
	printf("dma-buf pages read as memfd pages: %d,%d,%d,%d,%d,%d,%d,%d; slices match %d\n",
	       buf[0], buf[PAGE], buf[2 * PAGE], buf[3 * PAGE], buf[4 * PAGE], buf[5 * PAGE],
	       buf[6 * PAGE], buf[7 * PAGE], same);

	/* the memfd writes, the dma-buf sees it; the dma-buf writes, the memfd sees it */
	mem[40 * PAGE + 5] = 0xaa;
	buf[2 * PAGE + 7] = 0xbb;
	printf("coherent: dma-buf sees %#x, memfd sees %#x\n", buf[3 * PAGE + 5],
	       mem[7]);
	munmap(buf, total);

	/* mappings the dma-buf refuses */
	buf = mmap(NULL, total + PAGE, PROT_READ, MAP_SHARED, fd, 0);
	printf("mmap beyond the buffer: %s\n", said(buf == MAP_FAILED ? -1 : 0));
	if (buf != MAP_FAILED)
		munmap(buf, total + PAGE);
	buf = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	printf("mmap MAP_PRIVATE: %s\n", said(buf == MAP_FAILED ? -1 : 0));
	if (buf != MAP_FAILED)
		munmap(buf, PAGE);
	buf = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 6 * PAGE);
	printf("mmap of the last two pages: %s, first byte %d\n",
	       said(buf == MAP_FAILED ? -1 : 0), buf == MAP_FAILED ? -1 : buf[0]);
	if (buf != MAP_FAILED)
		munmap(buf, 2 * PAGE);
	close(fd);
	munmap(mem, MEMFD_PAGES * PAGE);
}

/* the selftest's test-5 and test-7 with 4 KiB pages: NUM_ENTRIES slices of SLICE_PAGES
 * pages, one at the start of each quarter of a 1024-page memfd; written before (test-5)
 * or only after (test-7: the pages are pinned first) the list is created, then written
 * again; the first byte of every page of each slice must be the memfd's */
#define SELFTEST_PAGES 1024
#define SLICE_PAGES 4

static int selftest_list(int memfd)
{
	struct udmabuf_create_list *list;
	size_t len = sizeof(*list) + NUM_ENTRIES * sizeof(struct udmabuf_create_item);
	int fd;

	list = calloc(1, len);
	for (int i = 0; i < NUM_ENTRIES; i++)
		list->list[i] = (struct udmabuf_create_item){
			.memfd = memfd, .offset = (__u64)i * (SELFTEST_PAGES / NUM_ENTRIES) * PAGE,
			.size = SLICE_PAGES * PAGE };
	list->count = NUM_ENTRIES;
	list->flags = UDMABUF_FLAGS_CLOEXEC;
	fd = ioctl(dev, UDMABUF_CREATE_LIST, list);
	free(list);
	return fd;
}

static void write_pages(unsigned char *m, int pages, unsigned char c)
{
	for (int i = 0; i < pages; i++)
		m[(size_t)i * PAGE] = c;
}

static int compare_chunks(const unsigned char *mem, const unsigned char *buf)
{
	int k = 0;

	for (int i = 0; i < NUM_ENTRIES; i++)
		for (int j = 0; j < SLICE_PAGES; j++, k++)
			if (mem[((size_t)i * (SELFTEST_PAGES / NUM_ENTRIES) + j) * PAGE] !=
			    buf[(size_t)k * PAGE])
				return 0;
	return 1;
}

static void selftest_migration(const char *name, int pin_first)
{
	size_t size = (size_t)SELFTEST_PAGES * PAGE, blen = NUM_ENTRIES * SLICE_PAGES * PAGE;
	int memfd = new_memfd(SELFTEST_PAGES, 1, F_SEAL_SHRINK), fd = -1;
	unsigned char *mem = NULL, *buf;

	if (pin_first)
		fd = selftest_list(memfd);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (mem == MAP_FAILED)
		die("mmap memfd");
	write_pages(mem, SELFTEST_PAGES, 'a');
	if (!pin_first)
		fd = selftest_list(memfd);
	if (fd < 0)
		die("UDMABUF_CREATE_LIST");
	buf = mmap(NULL, blen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (buf == MAP_FAILED)
		die("mmap dma-buf");
	printf("%s: after 'a': %c%c%c%c, chunks match %d\n", name, buf[0], buf[4 * PAGE],
	       buf[8 * PAGE], buf[15 * PAGE], compare_chunks(mem, buf));
	write_pages(mem, SELFTEST_PAGES, 'b');
	printf("%s: after 'b': %c%c%c%c, chunks match %d\n", name, buf[0], buf[4 * PAGE],
	       buf[8 * PAGE], buf[15 * PAGE], compare_chunks(mem, buf));
	munmap(buf, blen);
	munmap(mem, size);
	close(fd);
	close(memfd);
}

/* free huge pages (HugePages_Free of /proc/meminfo), -1 if unknown */
static long free_huge_pages(void)
{
	char line[128];
	long n = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* the selftest's test-6/test-7 set-up on a hugetlb memfd when no huge page is free:
 * creating the buffer must fail as Linux fails it, and so must mapping the memfd */
#define HPAGE (2UL << 20)

static void hugetlb_no_pages(void)
{
	struct udmabuf_create c = { 0 };
	__u64 offsets[NUM_ENTRIES], sizes[NUM_ENTRIES];
	int memfd, fd;
	void *m;

	if (free_huge_pages() != 0) {
		printf("hugetlb memfd: huge pages are free here, not checked\n");
		return;
	}
	memfd = memfd_create("udmabuf-selftest", MFD_ALLOW_SEALING | MFD_HUGETLB);
	if (memfd < 0) {
		printf("hugetlb memfd: %s\n", said(-1));
		return;
	}
	printf("hugetlb memfd: seal %s, ftruncate 4 huge pages %s\n",
	       said(fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK)),
	       said(ftruncate(memfd, 4 * HPAGE)));
	c.memfd = memfd;
	c.size = 4 * PAGE;
	fd = ioctl(dev, UDMABUF_CREATE, &c);
	printf("hugetlb memfd, no free huge page: create %s\n", said(fd));
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < NUM_ENTRIES; i++) {
		offsets[i] = i * HPAGE;
		sizes[i] = 4 * PAGE;
	}
	fd = create_list(memfd, UDMABUF_FLAGS_CLOEXEC, NUM_ENTRIES, offsets, sizes);
	printf("hugetlb memfd, no free huge page: list of %d (test-7, pinned first) %s\n",
	       NUM_ENTRIES, said(fd));
	if (fd >= 0)
		close(fd);
	m = mmap(NULL, 4 * HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	printf("hugetlb memfd, no free huge page: mmap (test-6's first step) %s\n",
	       said(m == MAP_FAILED ? -1 : 0));
	if (m != MAP_FAILED)
		munmap(m, 4 * HPAGE);
	close(memfd);
}

int main(void)
{
	int memfd;

	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0) {
		printf("no /dev/udmabuf: %s\n", strerrorname_np(errno));
		return 0;
	}
	create_errors();
	memfd = new_memfd(MEMFD_PAGES, 1, F_SEAL_SHRINK);
	list_errors(memfd);
	list_mmap(memfd);
	selftest_migration("4k pages, written first (test-5)", 0);
	selftest_migration("4k pages, pinned first (test-7)", 1);
	hugetlb_no_pages();
	close(memfd);
	close(dev);
	printf("done\n");
	return 0;
}
