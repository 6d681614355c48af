/* The fd calls beyond read/write on a udmabuf dma-buf: flock, fchmod, fchown,
 * posix_fadvise, and the page-cache/pipe movers (sendfile, splice, tee, copy_file_range,
 * sync_file_range, readahead) that no dma-buf supports. */
#include "common.h"
#include <sys/file.h>
#include <sys/sendfile.h>

static void step(const char *name, long r)
{
	printf("%s: %s\n", name, res(r));
}

int main(void)
{
	int dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC), memfd, buf, p[2], q[2];
	loff_t off = 0;

	if (dev < 0)
		die("open /dev/udmabuf");
	buf = make_dmabuf(dev, 1, 0, &memfd);
	if (pipe(p) || pipe(q))
		die("pipe");
	step("flock LOCK_EX|LOCK_NB", flock(buf, LOCK_EX | LOCK_NB));
	step("flock LOCK_UN", flock(buf, LOCK_UN));
	step("flock bad op", flock(buf, 0x40));
	errno = posix_fadvise(buf, 0, 4096, POSIX_FADV_WILLNEED);
	step("posix_fadvise WILLNEED", errno ? -1 : 0);
	errno = posix_fadvise(buf, 0, 4096, 77);
	step("posix_fadvise bad advice", errno ? -1 : 0);
	step("sendfile from the dma-buf", sendfile(p[1], buf, NULL, 16));
	step("sendfile into the dma-buf", sendfile(buf, memfd, &off, 16));
	step("splice from the dma-buf", splice(buf, NULL, p[1], NULL, 16, 0));
	step("splice into the dma-buf", splice(p[0], NULL, buf, NULL, 16, SPLICE_F_NONBLOCK));
	step("copy_file_range", copy_file_range(buf, NULL, memfd, NULL, 16, 0));
	step("sync_file_range", sync_file_range(buf, 0, 4096, SYNC_FILE_RANGE_WRITE));
	step("readahead", readahead(buf, 0, 4096));
	step("flock of a closed fd", flock(999, LOCK_SH));
	close(buf);
	close(memfd);
	close(dev);
	return 0;
}
