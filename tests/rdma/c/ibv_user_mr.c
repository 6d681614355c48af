/* ibv_reg_mr of the program's own memory, through rdma-core's libibverbs (issue 14).
 *
 *     cc -I $B/include -o ibv_user_mr ibv_user_mr.c -L $B/lib -libverbs
 *     mockkernel run -- env LD_LIBRARY_PATH=$B/lib ./ibv_user_mr mlx5_0
 *
 * Prints one "case NAME ERRNO" line per registration rule ib_umem_get enforces
 * (0: registered), then registers 2 pages of an anonymous private mapping for
 * REMOTE_WRITE.  With $TO_TEST and $FROM_TEST (two FIFOs) it hands "rkey addr" to
 * the test, waits for its word (after the test's remote writes) and prints the first
 * bytes of each page as "page N HEX".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define RW (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE)

static struct ibv_pd *pd;

static void try_reg(const char *name, void *addr, size_t len, int access)
{
	struct ibv_mr *mr = ibv_reg_mr(pd, addr, len, access);

	printf("case %s %d\n", name, mr ? 0 : errno);
	if (mr)
		ibv_dereg_mr(mr);
}

static struct ibv_context *open_device(const char *name)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_context *ctx = NULL;

	for (int i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			ctx = ibv_open_device(list[i]);
	if (list)
		ibv_free_device_list(list);
	return ctx;
}

int main(int argc, char **argv)
{
	struct ibv_context *ctx = open_device(argc > 1 ? argv[1] : "mlx5_0");
	const char *to_test = getenv("TO_TEST"), *from_test = getenv("FROM_TEST");
	unsigned char *buf, *ro, *two;
	struct ibv_mr *mr;

	if (!ctx || !(pd = ibv_alloc_pd(ctx))) {
		perror("device");
		return 1;
	}
	buf = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	two = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED || ro == MAP_FAILED || two == MAP_FAILED)
		return 1;
	/* the second page of "two" becomes another (shared) mapping: two VMAs, both rw */
	if (mmap(two + PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0) == MAP_FAILED)
		return 1;
	munmap(buf + 3 * PAGE, PAGE); /* a hole after 3 pages */

	try_reg("rw", buf, 2 * PAGE, RW);
	try_reg("unaligned", buf + 100, PAGE, RW);
	try_reg("into_hole", buf + 2 * PAGE, 2 * PAGE, RW);
	try_reg("unmapped", (void *)0x1000, PAGE, RW);
	try_reg("readonly_for_write", ro, PAGE, RW);
	try_reg("readonly_for_read", ro, PAGE, IBV_ACCESS_REMOTE_READ);
	try_reg("two_vmas", two, 2 * PAGE, RW);
	try_reg("zero_length", buf, 0, RW);
	try_reg("zero_length_unaligned", buf + 100, 0, RW);
	fflush(stdout);

	memset(buf, 0xaa, 2 * PAGE);
	mr = ibv_reg_mr(pd, buf, 2 * PAGE, RW);
	if (!mr) {
		perror("ibv_reg_mr");
		return 1;
	}
	printf("mr %u %u\n", mr->lkey, mr->rkey);
	fflush(stdout);
	if (to_test && from_test) {
		int reply = open(from_test, O_RDWR); /* never blocks: we are a reader too */
		FILE *f = fopen(to_test, "w");
		char word[16];

		if (reply < 0 || !f)
			return 1;
		fprintf(f, "%u %lu\n", mr->rkey, (unsigned long)buf);
		fclose(f);
		if (read(reply, word, sizeof(word)) <= 0)
			return 1;
		for (int p = 0; p < 2; p++) {
			printf("page %d ", p);
			for (int i = 0; i < 8; i++)
				printf("%02x", buf[p * PAGE + i]);
			printf("\n");
		}
	}
	ibv_dereg_mr(mr);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	return 0;
}
