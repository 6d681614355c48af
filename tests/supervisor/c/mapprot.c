/* mprotect, madvise and msync on a udmabuf dma-buf mapping, from C (where Python has no
 * mprotect to redirect): the VM_MAY* bits of a mapping of a SB_I_NOEXEC file, VM_PFNMAP
 * advice, a dma-buf without ->fsync, and the memfd left untouched by MADV_REMOVE. */
#include "common.h"

#define N 2
#ifndef PROT_SEM
#define PROT_SEM 0x8
#endif

static void step(const char *name, long r)
{
	printf("%s: %s\n", name, res(r));
}

int main(void)
{
	int dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	int memfd, buf;
	char *p, *m;

	if (dev < 0)
		die("open /dev/udmabuf");
	buf = make_dmabuf(dev, N, UDMABUF_FLAGS_CLOEXEC, &memfd);
	m = mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	p = mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	if (m == MAP_FAILED || p == MAP_FAILED)
		die("mmap");
	memset(m, 'a', N * PAGE);

	/* mprotect: raw checks first, then the mapping's VM_MAY* bits */
	step("mprotect unaligned", mprotect(p + 1, PAGE, PROT_READ));
	step("mprotect zero length unaligned", mprotect(p + 1, 0, PROT_READ));
	step("mprotect zero length", mprotect(p, 0, PROT_READ | PROT_EXEC));
	step("mprotect unknown bit", mprotect(p, PAGE, PROT_READ | 0x10));
	step("mprotect both grow bits", mprotect(p, PAGE, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP));
	step("mprotect growsdown", mprotect(p, PAGE, PROT_READ | PROT_GROWSDOWN));
	step("mprotect exec", mprotect(p, N * PAGE, PROT_READ | PROT_EXEC));
	step("mprotect exec one page", mprotect(p + PAGE, PAGE, PROT_EXEC));
	step("mprotect read only", mprotect(p, N * PAGE, PROT_READ));
	printf("still readable: %c\n", p[PAGE]);
	step("mprotect read write", mprotect(p, N * PAGE, PROT_READ | PROT_WRITE));
	p[0] = 'b';
	printf("written through: %c\n", m[0]);
	step("mprotect sem", mprotect(p, N * PAGE, PROT_READ | PROT_WRITE | PROT_SEM));
	step("mprotect none", mprotect(p, N * PAGE, PROT_NONE));
	step("mprotect back", mprotect(p, N * PAGE, PROT_READ | PROT_WRITE));

	/* madvise: device memory (VM_PFNMAP | VM_DONTEXPAND) */
	step("madvise normal", madvise(p, PAGE, MADV_NORMAL));
	step("madvise willneed", madvise(p, PAGE, MADV_WILLNEED));
	step("madvise dontneed", madvise(p, PAGE, MADV_DONTNEED));
	step("madvise free", madvise(p, PAGE, MADV_FREE));
	step("madvise remove", madvise(p, PAGE, MADV_REMOVE));
	step("madvise dontfork", madvise(p, PAGE, MADV_DONTFORK));
	step("madvise dofork", madvise(p, PAGE, MADV_DOFORK));
	step("madvise cold", madvise(p, PAGE, MADV_COLD));
	step("madvise unaligned", madvise(p + 1, PAGE, MADV_NORMAL));
	printf("memfd kept its data: %c%c\n", m[0], m[PAGE]);
	printf("dma-buf kept its data: %c%c\n", p[0], p[PAGE]);

	/* msync: no ->fsync on a dma-buf */
	step("msync async", msync(p, PAGE, MS_ASYNC));
	step("msync sync", msync(p, PAGE, MS_SYNC));
	step("msync invalidate", msync(p, PAGE, MS_INVALIDATE));
	step("msync both", msync(p, PAGE, MS_SYNC | MS_ASYNC));
	step("msync unaligned", msync(p + 1, PAGE, MS_ASYNC));

	munmap(p, N * PAGE);
	munmap(m, N * PAGE);
	close(buf);
	close(memfd);
	close(dev);
	return 0;
}
