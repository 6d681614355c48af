/* fork, exec and SCM_RIGHTS of a uverbs fd (/dev/infiniband/uverbs0): the context and
 * objects live in the one shared file, so a forked child's ioctls use the parent's
 * context and handles; but the legacy write() interface refuses any caller whose
 * credentials are not the opener's (include/rdma/ib.h ib_safe_file_access(), checked
 * first thing in drivers/infiniband/core/uverbs_main.c ib_uverbs_write()): a forked
 * child, a receiver of SCM_RIGHTS, and the opener itself after exec get EACCES. */
#include "common.h"
#include "scm.h"
#include <rdma/ib_user_ioctl_cmds.h>
#include <rdma/ib_user_ioctl_verbs.h>
#include <rdma/ib_user_verbs.h>
#include <rdma/rdma_user_ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#define DEV "/dev/infiniband/uverbs0"

static const char *said(long ret)
{
	return ret >= 0 ? "ok" : strerrorname_np(errno);
}

/* a legacy write() command: header + body; returns write()'s result */
static long cmd(int fd, __u32 command, const void *body, size_t len, __u16 out_words)
{
	char buf[64];
	struct ib_uverbs_cmd_hdr hdr = { .command = command,
					 .in_words = (__u16)((sizeof(hdr) + len) / 4),
					 .out_words = out_words };

	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), body, len);
	return write(fd, buf, sizeof(hdr) + len);
}

/* GET_CONTEXT by write(): the response's async event fd in *async_fd */
static long get_context_write(int fd, int *async_fd)
{
	struct ib_uverbs_get_context_resp resp = { .async_fd = (__u32)-1 };
	struct ib_uverbs_get_context c = { .response = (__u64)(unsigned long)&resp };
	long r = cmd(fd, IB_USER_VERBS_CMD_GET_CONTEXT, &c, sizeof(c), sizeof(resp) / 4);

	*async_fd = r < 0 ? -1 : (int)resp.async_fd;
	return r;
}

/* ALLOC_PD by write(): "ok handle N" or the errno */
static const char *alloc_pd(int fd)
{
	static char out[64];
	struct ib_uverbs_alloc_pd_resp resp = { .pd_handle = 0xffffffff };
	struct ib_uverbs_alloc_pd c = { .response = (__u64)(unsigned long)&resp };
	long r = cmd(fd, IB_USER_VERBS_CMD_ALLOC_PD, &c, sizeof(c), sizeof(resp) / 4);

	if (r < 0)
		return said(r);
	snprintf(out, sizeof(out), "ok handle %u", resp.pd_handle);
	return out;
}

static const char *dealloc_pd(int fd, __u32 handle)
{
	struct ib_uverbs_dealloc_pd c = { .pd_handle = handle };

	return said(cmd(fd, IB_USER_VERBS_CMD_DEALLOC_PD, &c, sizeof(c), 0));
}

/* RDMA_VERBS_IOCTL with up to two attributes */
static long verbs(int fd, __u16 obj, __u16 method, const struct ib_uverbs_attr *attrs, int n)
{
	struct {
		struct ib_uverbs_ioctl_hdr hdr;
		struct ib_uverbs_attr attrs[2];
	} req = { .hdr = { .length = (__u16)(sizeof(req.hdr) + n * sizeof(*attrs)),
			   .object_id = obj, .method_id = method, .num_attrs = (__u16)n,
			   .driver_id = RDMA_DRIVER_RXE } };

	memcpy(req.attrs, attrs, n * sizeof(*attrs));
	return ioctl(fd, RDMA_VERBS_IOCTL, &req);
}

static const char *query_port(int fd)
{
	static char out[64];
	struct ib_uverbs_query_port_resp_ex resp;
	struct ib_uverbs_attr a[2] = {
		{ .attr_id = UVERBS_ATTR_QUERY_PORT_PORT_NUM, .len = 8, .data = 1 },
		{ .attr_id = UVERBS_ATTR_QUERY_PORT_RESP, .len = sizeof(resp),
		  .data = (__u64)(unsigned long)&resp },
	};
	long r = verbs(fd, UVERBS_OBJECT_DEVICE, UVERBS_METHOD_QUERY_PORT, a, 2);

	if (r < 0)
		return said(r);
	snprintf(out, sizeof(out), "ok state %u", resp.legacy_resp.state);
	return out;
}

static const char *get_context_ioctl(int fd)
{
	return said(verbs(fd, UVERBS_OBJECT_DEVICE, UVERBS_METHOD_GET_CONTEXT, NULL, 0));
}

static const char *pd_destroy(int fd, __u32 handle)
{
	struct ib_uverbs_attr a = { .attr_id = UVERBS_ATTR_DESTROY_PD_HANDLE,
				    .flags = UVERBS_ATTR_F_MANDATORY, .data = handle };

	return said(verbs(fd, UVERBS_OBJECT_PD, UVERBS_METHOD_PD_DESTROY, &a, 1));
}

/* "ino:" of fd in /proc/<who>/fdinfo */
static long ino(const char *who, int fd)
{
	return atol(fdinfo(who, fd, "ino"));
}

static void forked(int fd)
{
	char ppid[16], link[64], path[64];
	int own, async_fd;
	ssize_t n;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid) {
		waitpid(pid, NULL, 0);
		return;
	}
	snprintf(ppid, sizeof(ppid), "%d", getppid());
	printf("fork child: same ino as the parent's fd: %d\n", ino(ppid, fd) == ino("self", fd));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	link[n < 0 ? 0 : n] = 0;
	printf("fork child: link %s\n", link);
	printf("fork child: write of 4 bytes: %s\n", said(write(fd, "abcd", 4)));
	printf("fork child: write from a bad pointer: %s\n", said(syscall(SYS_write, fd, 16L, 8L)));
	printf("fork child: ALLOC_PD by write: %s\n", alloc_pd(fd));
	printf("fork child: DEALLOC_PD by write: %s\n", dealloc_pd(fd, 0));
	printf("fork child: GET_CONTEXT by write: %s\n", said(get_context_write(fd, &async_fd)));
	printf("fork child: GET_CONTEXT by ioctl: %s\n", get_context_ioctl(fd));
	printf("fork child: QUERY_PORT by ioctl: %s\n", query_port(fd));
	printf("fork child: PD_DESTROY of the parent's PD 0 by ioctl: %s\n", pd_destroy(fd, 0));
	own = open(DEV, O_RDWR);
	printf("fork child: its own open: GET_CONTEXT by write: %s", said(get_context_write(own, &async_fd)));
	printf(", ALLOC_PD by write: %s\n", alloc_pd(own));
	fflush(stdout);
	_exit(0);
}

static void passed(int fd)
{
	int sv[2], got;
	char c;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		die("socketpair");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		char ppid[16];

		close(sv[0]);
		got = recv_fd(sv[1], 0);
		snprintf(ppid, sizeof(ppid), "%d", getppid());
		printf("receiver: same ino as the sender's fd: %d\n", ino(ppid, fd) == ino("self", got));
		printf("receiver: ALLOC_PD by write: %s\n", alloc_pd(got));
		printf("receiver: QUERY_PORT by ioctl: %s\n", query_port(got));
		close(got);
		fflush(stdout);
		write(sv[1], "d", 1);
		_exit(0);
	}
	close(sv[1]);
	send_fd(sv[0], fd);
	read(sv[0], &c, 1);
	waitpid(pid, NULL, 0);
	close(sv[0]);
	printf("sender after the receiver closed: ALLOC_PD by write: %s\n", alloc_pd(fd));
}

static int after_exec(char **argv)
{
	int fd = atoi(argv[2]), async_fd = atoi(argv[3]), own, a2;

	printf("after exec: the async event fd (cloexec): %s\n", said(fcntl(async_fd, F_GETFD)));
	printf("after exec: the kept fd F_GETFD: %s\n", said(fcntl(fd, F_GETFD)));
	printf("after exec: ALLOC_PD by write: %s\n", alloc_pd(fd));
	printf("after exec: QUERY_PORT by ioctl: %s\n", query_port(fd));
	printf("after exec: PD_DESTROY of PD 1 by ioctl: %s\n", pd_destroy(fd, 1));
	own = open(DEV, O_RDWR);
	printf("after exec: a new open: GET_CONTEXT by write: %s", said(get_context_write(own, &a2)));
	printf(", ALLOC_PD by write: %s\n", alloc_pd(own));
	return 0;
}

int main(int argc, char **argv)
{
	int fd, async_fd;
	char a[16], b[16];

	if (argc > 1 && !strcmp(argv[1], "after-exec"))
		return after_exec(argv);
	fd = open(DEV, O_RDWR);
	if (fd < 0) {
		printf("no %s: %s\n", DEV, strerrorname_np(errno));
		return 0;
	}
	printf("opener: GET_CONTEXT by write: %s\n", said(get_context_write(fd, &async_fd)));
	printf("opener: async fd cloexec: %d\n", !!(fcntl(async_fd, F_GETFD) & FD_CLOEXEC));
	printf("opener: ALLOC_PD by write: %s\n", alloc_pd(fd));
	forked(fd);
	printf("opener after the fork: DEALLOC_PD 0 (the child destroyed it): %s\n", dealloc_pd(fd, 0));
	printf("opener after the fork: ALLOC_PD by write: %s\n", alloc_pd(fd));
	passed(fd);
	fflush(stdout);
	snprintf(a, sizeof(a), "%d", fd);
	snprintf(b, sizeof(b), "%d", async_fd);
	execl("/proc/self/exe", argv[0], "after-exec", a, b, (char *)NULL);
	die("execl");
}
