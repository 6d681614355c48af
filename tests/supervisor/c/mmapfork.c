/* mmap of a dma-buf across fork and exit: the child's mapping is the parent's pages;
 * the mapping holds the buffer after every fd is closed. */
#include "common.h"

int main(void)
{
	int memfd, dev, buf, status;
	char *m, back[16] = { 0 };
	pid_t pid;

	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("open /dev/udmabuf");
	buf = make_dmabuf(dev, 4, 0, &memfd);
	m = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	if (m == MAP_FAILED)
		die("mmap");
	memcpy(m + PAGE, "parent", 6);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		printf("child reads: %.6s\n", m + PAGE);
		memcpy(m + 2 * PAGE, "child", 5);
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	pread(memfd, back, 5, 2 * PAGE);
	printf("memfd after the child wrote through its mapping: %s\n", back);
	close(buf);
	printf("after the dma-buf fd is closed the mapping reads: %.6s\n", m + PAGE);
	printf("munmap: %s\n", res(munmap(m, 4 * PAGE)));
	printf("second mmap at an offset: %s\n",
	       res((m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, memfd, PAGE)) == MAP_FAILED ? -1 : 0));
	printf("reads: %.6s\n", m);
	munmap(m, PAGE);
	close(memfd);
	close(dev);
	printf("done\n");
	return 0;
}
