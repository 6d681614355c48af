/* The newer path calls and the mapping calls beyond mmap on mock files: openat2 (struct
 * open_how's size, flag and resolve checks; RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH,
 * RESOLVE_NO_MAGICLINKS, RESOLVE_NO_XDEV, RESOLVE_IN_ROOT; a PCI function's sysfs link), statx (a device node, a dma-buf fd by AT_EMPTY_PATH, bad
 * flags and mask), faccessat2 (modes, flags, AT_EACCESS after seteuid in a child) and
 * mremap of a udmabuf dma-buf mapping (shrink, grow, move, MREMAP_DONTUNMAP), statfs and
 * fstatfs of mock files (the dma-buf's own pseudo filesystem). */
#include "common.h"
#include <linux/openat2.h>
#include <linux/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

static const char *err(long r)
{
	static char buf[48];
	if (r >= 0)
		return "ok";
	snprintf(buf, sizeof(buf), "%s", strerrorname_np(errno));
	return buf;
}

static long openat2_(int dirfd, const char *path, struct open_how *how, size_t size)
{
	return syscall(SYS_openat2, dirfd, path, how, size);
}

static void try_openat2(const char *what, int dirfd, const char *path, unsigned long long flags,
			unsigned long long mode, unsigned long long resolve)
{
	struct open_how how = { .flags = flags, .mode = mode, .resolve = resolve };
	long fd = openat2_(dirfd, path, &how, sizeof(how));
	printf("openat2 %s: %s\n", what, err(fd));
	if (fd >= 0)
		close(fd);
}

static char link_[300], attr_[320]; /* /sys/bus/pci/devices/<bdf> (a symlink), its vendor */

static void openat2_probe(void)
{
	struct { struct open_how how; unsigned long long extra; } big = { { O_RDWR, 0, 0 }, 0 };
	struct open_how how = { .flags = O_RDWR };
	int dev = open("/dev", O_RDONLY | O_DIRECTORY);
	int sys = open("/sys", O_RDONLY | O_DIRECTORY);
	long fd;
	struct stat st;

	fd = openat2_(AT_FDCWD, "/dev/udmabuf", &how, sizeof(how));
	printf("openat2 udmabuf: %s", err(fd));
	if (fd >= 0) {
		fstat(fd, &st);
		printf(" chr %d getfl %#o", S_ISCHR(st.st_mode), fcntl(fd, F_GETFL) & 3);
		close(fd);
	}
	printf("\n");
	fd = openat2_(AT_FDCWD, "/dev/udmabuf", &how, 8);
	printf("openat2 size 8: %s\n", err(fd));
	fd = openat2_(AT_FDCWD, "/dev/udmabuf", &big.how, sizeof(big));
	printf("openat2 size 32 zero tail: %s\n", err(fd));
	if (fd >= 0)
		close(fd);
	big.extra = 1;
	fd = openat2_(AT_FDCWD, "/dev/udmabuf", &big.how, sizeof(big));
	printf("openat2 size 32 nonzero tail: %s\n", err(fd));
	fd = openat2_(AT_FDCWD, "/dev/udmabuf", NULL, sizeof(how));
	printf("openat2 NULL how: %s\n", err(fd));
	try_openat2("unknown flag", AT_FDCWD, "/dev/udmabuf", O_RDWR | (1ULL << 40), 0, 0);
	try_openat2("mode without O_CREAT", AT_FDCWD, "/dev/udmabuf", O_RDWR, 0600, 0);
	try_openat2("unknown resolve", AT_FDCWD, "/dev/udmabuf", O_RDWR, 0, 1ULL << 20);
	try_openat2("BENEATH|IN_ROOT", AT_FDCWD, "/dev/udmabuf", O_RDWR, 0,
		    RESOLVE_BENEATH | RESOLVE_IN_ROOT);
	try_openat2("NO_SYMLINKS of a sysfs link", AT_FDCWD, attr_, O_RDONLY, 0,
		    RESOLVE_NO_SYMLINKS);
	try_openat2("sysfs link followed", AT_FDCWD, attr_, O_RDONLY, 0, 0);
	try_openat2("NO_SYMLINKS O_PATH|O_NOFOLLOW link", AT_FDCWD, link_, O_PATH | O_NOFOLLOW, 0,
		    RESOLVE_NO_SYMLINKS);
	try_openat2("NO_SYMLINKS O_NOFOLLOW link", AT_FDCWD, link_, O_RDONLY | O_NOFOLLOW, 0,
		    RESOLVE_NO_SYMLINKS);
	try_openat2("BENEATH of an absolute link", AT_FDCWD, "/sys/bus/pci/devices", O_RDONLY, 0,
		    RESOLVE_BENEATH);
	try_openat2("BENEATH in /dev", dev, "udmabuf", O_RDWR, 0, RESOLVE_BENEATH);
	try_openat2("BENEATH dotdot", dev, "../dev/udmabuf", O_RDWR, 0, RESOLVE_BENEATH);
	try_openat2("BENEATH absolute", dev, "/dev/udmabuf", O_RDWR, 0, RESOLVE_BENEATH);
	try_openat2("NO_MAGICLINKS proc fd", AT_FDCWD, "/proc/self/fd/0", O_RDONLY, 0,
		    RESOLVE_NO_MAGICLINKS);
	try_openat2("NO_XDEV in /dev", dev, "udmabuf", O_RDWR, 0, RESOLVE_NO_XDEV);
	try_openat2("NO_XDEV absolute into /dev", AT_FDCWD, "/dev/udmabuf", O_RDWR, 0,
		    RESOLVE_NO_XDEV);
	try_openat2("NO_XDEV dotdot out of /dev", dev, "../dev/udmabuf", O_RDWR, 0,
		    RESOLVE_NO_XDEV);
	try_openat2("NO_XDEV sysfs link from /", AT_FDCWD, attr_, O_RDONLY, 0, RESOLVE_NO_XDEV);
	try_openat2("NO_XDEV sysfs link from /sys", sys, attr_ + 5, O_RDONLY, 0, RESOLVE_NO_XDEV);
	try_openat2("IN_ROOT absolute", dev, "/udmabuf", O_RDWR, 0, RESOLVE_IN_ROOT);
	try_openat2("IN_ROOT dotdot clamped", dev, "../../udmabuf", O_RDWR, 0, RESOLVE_IN_ROOT);
	try_openat2("IN_ROOT absolute missing", dev, "/dev/udmabuf", O_RDWR, 0, RESOLVE_IN_ROOT);
	try_openat2("IN_ROOT sysfs link from /sys", sys, attr_ + 4, O_RDONLY, 0, RESOLVE_IN_ROOT);
	try_openat2("O_CREAT on devtmpfs node", AT_FDCWD, "/dev/udmabuf", O_RDWR | O_CREAT, 0600,
		    0);
	try_openat2("O_CREAT|O_EXCL on devtmpfs node", AT_FDCWD, "/dev/udmabuf",
		    O_RDWR | O_CREAT | O_EXCL, 0600, 0);
	try_openat2("O_DIRECTORY of a device", AT_FDCWD, "/dev/udmabuf", O_RDONLY | O_DIRECTORY,
		    0, 0);
	close(sys);
	close(dev);
}

static long statx_(int dirfd, const char *path, int flags, unsigned mask, struct statx *stx)
{
	return syscall(SYS_statx, dirfd, path, flags, mask, stx);
}

static void statx_probe(int buf)
{
	struct statx stx;
	long r;

	memset(&stx, 0xff, sizeof(stx));
	r = statx_(AT_FDCWD, "/dev/udmabuf", 0, STATX_BASIC_STATS, &stx);
	printf("statx udmabuf: %s basic %#x chr %d rdev_major %u nlink %u\n", err(r),
	       stx.stx_mask & STATX_BASIC_STATS, S_ISCHR(stx.stx_mode), stx.stx_rdev_major,
	       stx.stx_nlink);
	memset(&stx, 0xff, sizeof(stx));
	r = statx_(buf, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx);
	printf("statx dma-buf: %s basic %#x fmt %#o size %llu blocks %llu\n", err(r),
	       stx.stx_mask & STATX_BASIC_STATS, stx.stx_mode & S_IFMT,
	       (unsigned long long)stx.stx_size, (unsigned long long)stx.stx_blocks);
	r = statx_(buf, "", AT_EMPTY_PATH, 0, &stx);
	printf("statx dma-buf mask 0: %s\n", err(r));
	r = statx_(AT_FDCWD, "/dev/udmabuf", 0x6000, STATX_BASIC_STATS, &stx);
	printf("statx sync type 0x6000: %s\n", err(r));
	r = statx_(AT_FDCWD, "/dev/udmabuf", 0, 0x80000000u, &stx);
	printf("statx reserved mask: %s\n", err(r));
	r = statx_(AT_FDCWD, "/dev/udmabuf", 0x40000, STATX_BASIC_STATS, &stx);
	printf("statx unknown flag: %s\n", err(r));
	r = statx_(AT_FDCWD, "/dev/udmabuf", 0, STATX_BASIC_STATS, (struct statx *)8);
	printf("statx bad buffer: %s\n", err(r));
	memset(&stx, 0xff, sizeof(stx));
	r = statx_(AT_FDCWD, link_, AT_SYMLINK_NOFOLLOW, STATX_TYPE, &stx);
	printf("statx nofollow link: %s lnk %d\n", err(r), S_ISLNK(stx.stx_mode));
	r = statx_(AT_FDCWD, "/dev/udmabuf/x", 0, STATX_BASIC_STATS, &stx);
	printf("statx under a device: %s\n", err(r));
}

static long faccessat2_(int dirfd, const char *path, int mode, int flags)
{
	return syscall(SYS_faccessat2, dirfd, path, mode, flags);
}

static void faccessat2_probe(int buf)
{
	pid_t pid;
	int status;

	printf("faccessat2 RW: %s\n", err(faccessat2_(AT_FDCWD, "/dev/udmabuf", R_OK | W_OK, 0)));
	printf("faccessat2 X: %s\n", err(faccessat2_(AT_FDCWD, "/dev/udmabuf", X_OK, 0)));
	printf("faccessat2 F: %s\n", err(faccessat2_(AT_FDCWD, "/dev/udmabuf", F_OK, 0)));
	printf("faccessat2 bad mode: %s\n", err(faccessat2_(AT_FDCWD, "/dev/udmabuf", 8, 0)));
	printf("faccessat2 bad flag: %s\n",
	       err(faccessat2_(AT_FDCWD, "/dev/udmabuf", R_OK, 0x1)));
	printf("faccessat2 EACCESS: %s\n",
	       err(faccessat2_(AT_FDCWD, "/dev/udmabuf", R_OK, AT_EACCESS)));
	printf("faccessat2 nofollow link: %s\n",
	       err(faccessat2_(AT_FDCWD, link_, F_OK, AT_SYMLINK_NOFOLLOW)));
	printf("faccessat2 empty path of a dma-buf: %s\n",
	       err(faccessat2_(buf, "", R_OK | W_OK, AT_EMPTY_PATH)));
	printf("faccessat2 empty path without the flag: %s\n", err(faccessat2_(buf, "", R_OK, 0)));
	printf("faccessat2 missing: %s\n", err(faccessat2_(AT_FDCWD, "/dev/udmabuf2", F_OK, 0)));
	fflush(stdout);
	pid = fork();
	if (pid == 0) { /* effective 65534, real 0: AT_EACCESS decides */
		if (setegid(65534) || seteuid(65534))
			die("seteuid");
		printf("child faccessat2 real ids: %s\n",
		       err(faccessat2_(AT_FDCWD, "/dev/udmabuf", R_OK, 0)));
		printf("child faccessat2 AT_EACCESS: %s\n",
		       err(faccessat2_(AT_FDCWD, "/dev/udmabuf", R_OK, AT_EACCESS)));
		printf("child access: %s\n", err(access("/dev/udmabuf", R_OK)));
		printf("child open: %s\n", err(open("/dev/udmabuf", O_RDONLY)));
		exit(0);
	}
	waitpid(pid, &status, 0);
}

static void mremap_probe(int memfd, int buf)
{
	char *p, *q, *r;
	long n;

	p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	if (p == MAP_FAILED)
		die("mmap");
	p[0] = 'a';
	p[3 * PAGE] = 'd';
	q = mremap(p, 4 * PAGE, 2 * PAGE, 0);
	printf("mremap shrink: %s same %d\n", err(q == MAP_FAILED ? -1 : 0), q == p);
	q = mremap(p, 2 * PAGE, 4 * PAGE, 0);
	printf("mremap grow in place: %s\n", err(q == MAP_FAILED ? -1 : 0));
	q = mremap(p, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE);
	printf("mremap grow maymove: %s\n", err(q == MAP_FAILED ? -1 : 0));
	if (q != MAP_FAILED)
		p = q;
	r = mmap(NULL, 8 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	q = mremap(p, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, r + 4 * PAGE);
	printf("mremap move: %s at %d\n", err(q == MAP_FAILED ? -1 : 0), q == r + 4 * PAGE);
	if (q != MAP_FAILED) {
		char c = 0;
		q[PAGE] = 'b';
		n = pread(memfd, &c, 1, PAGE);
		printf("moved mapping: old data %c, write reaches the memfd %d\n", q[0],
		       n == 1 && c == 'b');
		p = q;
	}
	q = mremap(p, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
	printf("mremap dontunmap: %s\n", err(q == MAP_FAILED ? -1 : 0));
	q = mremap(p, 2 * PAGE, 2 * PAGE, MREMAP_FIXED, r);
	printf("mremap fixed without maymove: %s\n", err(q == MAP_FAILED ? -1 : 0));
	q = mremap(p + 1, PAGE, PAGE, 0);
	printf("mremap unaligned: %s\n", err(q == MAP_FAILED ? -1 : 0));
	printf("munmap: %s\n", err(munmap(p, 2 * PAGE)));
	munmap(r, 8 * PAGE);
}

static void show_statfs(const char *what, long r, struct statfs *sf)
{
	printf("%s: %s type %#lx bsize %ld namelen %ld blocks %lu\n", what, err(r),
	       (long)sf->f_type, (long)sf->f_bsize, (long)sf->f_namelen,
	       (unsigned long)sf->f_blocks);
}

static void statfs_probe(int dev, int buf)
{
	struct statfs sf;
	int fd = open(attr_, O_RDONLY);
	long r;

	memset(&sf, 0, sizeof(sf));
	r = fstatfs(buf, &sf);
	show_statfs("fstatfs dma-buf", r, &sf);
	memset(&sf, 0, sizeof(sf));
	r = fstatfs(dev, &sf);
	printf("fstatfs /dev/udmabuf: %s type %#lx\n", err(r), (long)sf.f_type);
	memset(&sf, 0, sizeof(sf));
	r = fstatfs(fd, &sf);
	printf("fstatfs sysfs attribute: %s type %#lx\n", err(r), (long)sf.f_type);
	memset(&sf, 0, sizeof(sf));
	r = statfs(attr_, &sf);
	printf("statfs sysfs attribute: %s type %#lx\n", err(r), (long)sf.f_type);
	memset(&sf, 0, sizeof(sf));
	r = statfs("/dev/udmabuf", &sf);
	printf("statfs /dev/udmabuf: %s type %#lx\n", err(r), (long)sf.f_type);
	printf("statfs missing: %s\n", err(statfs("/dev/udmabuf/x", &sf)));
	printf("fstatfs bad buffer: %s\n", err(fstatfs(buf, (struct statfs *)8)));
	close(fd);
}

int main(void)
{
	int dev = open("/dev/udmabuf", O_RDWR), memfd, buf;
	char bdf[64];

	if (vfio_pci_group(bdf, sizeof(bdf)) < 0) {
		printf("FAIL no vfio-pci device\n");
		return 1;
	}
	snprintf(link_, sizeof(link_), "/sys/bus/pci/devices/%s", bdf);
	snprintf(attr_, sizeof(attr_), "%s/vendor", link_);
	if (dev < 0)
		die("open /dev/udmabuf");
	buf = make_dmabuf(dev, 4, UDMABUF_FLAGS_CLOEXEC, &memfd);
	openat2_probe();
	statx_probe(buf);
	faccessat2_probe(buf);
	mremap_probe(memfd, buf);
	statfs_probe(dev, buf);
	close(buf);
	close(memfd);
	close(dev);
	return 0;
}
