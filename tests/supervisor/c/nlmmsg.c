/* sendmmsg/recvmmsg on a mock NETLINK_RDMA socket: a dump request of the RDMA devices
 * (RDMA_NLDEV_CMD_GET) and its answer, message by message; nothing queued: EAGAIN. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <rdma/rdma_netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
	struct { struct nlmsghdr h; } req = { .h = {
		.nlmsg_len = sizeof(struct nlmsghdr),
		.nlmsg_type = RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, RDMA_NLDEV_CMD_GET),
		.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 7 } };
	static char bufs[4][8192];
	struct iovec siov = { &req, sizeof(req) }, riov[4];
	struct mmsghdr s = { .msg_hdr = { .msg_iov = &siov, .msg_iovlen = 1 } }, r[4];
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_RDMA), n;

	if (fd < 0) {
		printf("socket: %s\n", strerror(errno));
		return 1;
	}
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 4; i++) {
		riov[i].iov_base = bufs[i];
		riov[i].iov_len = sizeof(bufs[i]);
		r[i].msg_hdr.msg_iov = &riov[i];
		r[i].msg_hdr.msg_iovlen = 1;
	}
	n = recvmmsg(fd, r, 4, MSG_DONTWAIT, NULL);
	printf("recvmmsg empty: %d %s\n", n, n < 0 ? strerrorname_np(errno) : "");
	n = sendmmsg(fd, &s, 1, 0);
	printf("sendmmsg: %d, msg_len %u\n", n, s.msg_len);
	n = recvmmsg(fd, r, 4, MSG_DONTWAIT, NULL);
	printf("recvmmsg: %s\n", n > 0 ? "some" : strerrorname_np(errno));
	for (int i = 0; i < n; i++) {
		struct nlmsghdr *h = (struct nlmsghdr *)bufs[i];
		printf("message %d: len ok %d, seq %u, type %s\n", i,
		       r[i].msg_len >= sizeof(*h) && h->nlmsg_len <= r[i].msg_len, h->nlmsg_seq,
		       h->nlmsg_type == NLMSG_DONE ? "DONE" : "dev");
	}
	printf("sendmmsg empty vector: %d\n", sendmmsg(fd, &s, 0, 0));
	return 0;
}
