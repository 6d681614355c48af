/* Share a memfd as a dma-buf through /dev/udmabuf: the C twin of udmabuf_demo.py.
 *
 *     cc -o udmabuf_demo examples/c/udmabuf_demo.c
 *     ./udmabuf_demo                                  # real Linux with /dev/udmabuf
 *     mockkernel run -- ./udmabuf_demo               # the same binary, mock kernel
 *
 * Written against the real uAPI headers only; prints the same lines as the Python twin.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/dma-buf.h>
#include <linux/udmabuf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE (4 * 4096)

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* the value of "key:\t..." in /proc/self/fdinfo/<fd>, into out */
static int fdinfo(int fd, const char *key, char *out, size_t n)
{
	char path[64], line[256];
	size_t k = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		die("fopen fdinfo");
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, k) && line[k] == ':' && line[k + 1] == '\t') {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, n, "%s", line + k + 2);
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	snprintf(out, n, "None");
	return -1;
}

/* Python's repr() of a bytes object of printable ASCII: b'...' */
static void print_bytes(const char *prefix, const unsigned char *p, size_t n)
{
	printf("%sb'", prefix);
	for (size_t i = 0; i < n; i++)
		printf(p[i] >= 32 && p[i] < 127 && p[i] != '\'' && p[i] != '\\' ? "%c" : "\\x%02x",
		       p[i]);
	printf("'\n");
}

int main(void)
{
	struct udmabuf_create create = { .flags = UDMABUF_FLAGS_CLOEXEC, .size = SIZE };
	struct dma_buf_sync sync = { .flags = DMA_BUF_SYNC_READ };
	char exp_name[64], name[64], size[64];
	unsigned char back[20];
	struct stat st;
	int memfd, dev, dmabuf;
	unsigned char *m;

	memfd = memfd_create("demo", MFD_ALLOW_SEALING);
	if (memfd < 0 || ftruncate(memfd, SIZE) || fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK))
		die("memfd");
	if (pwrite(memfd, "hello from the memfd", 20, 0) != 20)
		die("pwrite");

	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("open /dev/udmabuf");
	create.memfd = memfd;
	dmabuf = ioctl(dev, UDMABUF_CREATE, &create);
	if (dmabuf < 0 || fstat(dmabuf, &st))
		die("UDMABUF_CREATE");
	printf("udmabuf: dma-buf fd %d, size %lld\n", dmabuf, (long long)st.st_size);

	if (ioctl(dmabuf, DMA_BUF_SET_NAME_B, "demo-buffer"))
		die("DMA_BUF_SET_NAME_B");
	fdinfo(dmabuf, "exp_name", exp_name, sizeof(exp_name));
	fdinfo(dmabuf, "name", name, sizeof(name));
	fdinfo(dmabuf, "size", size, sizeof(size));
	printf("fdinfo: exp_name=%s name=%s size=%s\n", exp_name, name, size);

	m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, dmabuf, 0);
	if (m == MAP_FAILED) {
		printf("mmap of the dma-buf: %s\n", strerror(errno));
	} else {
		if (ioctl(dmabuf, DMA_BUF_IOCTL_SYNC, &sync))
			die("DMA_BUF_IOCTL_SYNC");
		print_bytes("mmap of the dma-buf reads: ", m, 20);
		memcpy(m, "HELLO", 5);
		sync.flags = DMA_BUF_SYNC_WRITE | DMA_BUF_SYNC_END;
		if (ioctl(dmabuf, DMA_BUF_IOCTL_SYNC, &sync))
			die("DMA_BUF_IOCTL_SYNC");
		if (pread(memfd, back, 20, 0) != 20)
			die("pread");
		print_bytes("after writing through the dma-buf, the memfd reads: ", back, 20);
		munmap(m, SIZE);
	}
	close(dmabuf);
	close(dev);
	close(memfd);
	printf("done\n");
	return 0;
}
