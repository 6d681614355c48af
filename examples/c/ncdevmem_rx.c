/* Receive TCP payload straight into a dma-buf, as the kernel's ncdevmem selftest does:
 * the C twin of ncdevmem_rx.py.
 *
 *     cc -o ncdevmem_rx examples/c/ncdevmem_rx.c
 *     ./ncdevmem_rx IFNAME QUEUE ADDR PORT       # real Linux: devmem NIC, root,
 *                                                # flow steered to QUEUE
 *     mockkernel run --topology T -- ./ncdevmem_rx eth0 0 192.0.2.1 5201
 *
 * Binds a udmabuf to RX queue QUEUE of IFNAME through the netdev generic netlink
 * family (raw netlink sockets, no libynl), listens on ADDR:PORT, accepts one
 * connection and reads it with recvmsg(MSG_SOCK_DEVMEM): each SCM_DEVMEM_DMABUF
 * control message (struct dmabuf_cmsg) says where a fragment landed in the dma-buf;
 * the program reads it from the udmabuf's memfd, prints it and gives it back with
 * SO_DEVMEM_DONTNEED (struct dmabuf_token); SCM_DEVMEM_LINEAR bytes sit in the buffer,
 * a readable skb comes as plain bytes with no control message.  Written against the
 * real uAPI headers only (linux/netdev.h, linux/uio.h, linux/udmabuf.h); prints the
 * same lines as the Python twin.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/genetlink.h>
#include <linux/netdev.h>
#include <linux/netlink.h>
#include <linux/udmabuf.h>
/* struct dmabuf_cmsg and dmabuf_token; its struct iovec is glibc's too */
#define iovec linux_uio_iovec
#include <linux/uio.h>
#undef iovec
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef MSG_SOCK_DEVMEM
#define MSG_SOCK_DEVMEM 0x2000000
#endif

#define SIZE (64 * 4096)
#define RECV_SIZE 65536
#define MAX_FRAGS 32

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* -- generic netlink over a raw socket ------------------------------------------------ */
struct nl {
	int fd;
	unsigned int seq;
	char buf[65536];
};

struct req {
	struct nlmsghdr nlh;
	struct genlmsghdr genl;
	char attrs[256];
};

static void put_attr(struct req *r, int type, const void *data, size_t len)
{
	struct nlattr *a = (struct nlattr *)((char *)r + NLMSG_ALIGN(r->nlh.nlmsg_len));

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
	r->nlh.nlmsg_len = NLMSG_ALIGN(r->nlh.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static void put_u32(struct req *r, int type, uint32_t v)
{
	put_attr(r, type, &v, sizeof(v));
}

static struct nlattr *nest_start(struct req *r, int type)
{
	struct nlattr *a = (struct nlattr *)((char *)r + NLMSG_ALIGN(r->nlh.nlmsg_len));

	a->nla_type = type | NLA_F_NESTED;
	r->nlh.nlmsg_len = NLMSG_ALIGN(r->nlh.nlmsg_len) + NLA_HDRLEN;
	return a;
}

static void nest_end(struct req *r, struct nlattr *a)
{
	a->nla_len = (char *)r + r->nlh.nlmsg_len - (char *)a;
}

static void req_init(struct nl *nl, struct req *r, int family, int cmd)
{
	memset(r, 0, sizeof(*r));
	r->nlh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r->nlh.nlmsg_type = family;
	r->nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	r->nlh.nlmsg_seq = ++nl->seq;
	r->genl.cmd = cmd;
	r->genl.version = 1;
}

/* Send the request; the payload of attribute `want` of its one reply into out
 * (NULL: none wanted); 0, or -errno from the ack. */
static int request(struct nl *nl, struct req *r, int want, void *out, size_t n)
{
	if (send(nl->fd, r, r->nlh.nlmsg_len, 0) < 0)
		die("netlink send");
	for (;;) {
		ssize_t len = recv(nl->fd, nl->buf, sizeof(nl->buf), 0);
		struct nlmsghdr *h;

		if (len < 0)
			die("netlink recv");
		for (h = (struct nlmsghdr *)nl->buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			char *p = (char *)NLMSG_DATA(h) + GENL_HDRLEN;
			int left = h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
			while (want && left >= NLA_HDRLEN) {
				struct nlattr *a = (struct nlattr *)p;
				if ((a->nla_type & NLA_TYPE_MASK) == want) {
					memcpy(out, p + NLA_HDRLEN, n);
					want = 0;
				}
				left -= NLA_ALIGN(a->nla_len);
				p += NLA_ALIGN(a->nla_len);
			}
		}
	}
}

static int family_id(struct nl *nl, const char *name)
{
	struct req r;
	uint16_t id = 0;
	int err;

	req_init(nl, &r, GENL_ID_CTRL, CTRL_CMD_GETFAMILY);
	put_attr(&r, CTRL_ATTR_FAMILY_NAME, name, strlen(name) + 1);
	err = request(nl, &r, CTRL_ATTR_FAMILY_ID, &id, sizeof(id));
	if (err) {
		errno = -err;
		die("CTRL_CMD_GETFAMILY");
	}
	return id;
}

/* -- the udmabuf ------------------------------------------------------------------------ */
static int udmabuf(int *memfd)
{
	struct udmabuf_create create = { .size = SIZE };
	int dev, fd;

	*memfd = memfd_create("rx", MFD_ALLOW_SEALING);
	if (*memfd < 0 || ftruncate(*memfd, SIZE) || fcntl(*memfd, F_ADD_SEALS, F_SEAL_SHRINK))
		die("memfd");
	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("open /dev/udmabuf");
	create.memfd = *memfd;
	fd = ioctl(dev, UDMABUF_CREATE, &create);
	if (fd < 0)
		die("UDMABUF_CREATE");
	close(dev);
	return fd;
}

/* Python's repr() of a str of (mostly) printable ASCII */
static void print_repr(const unsigned char *p, size_t n)
{
	char q = memchr(p, '\'', n) && !memchr(p, '"', n) ? '"' : '\'';

	putchar(q);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		if (c == '\\' || c == q)
			printf("\\%c", c);
		else if (c == '\n')
			printf("\\n");
		else if (c == '\r')
			printf("\\r");
		else if (c == '\t')
			printf("\\t");
		else if (c < 32 || c == 127)
			printf("\\x%02x", c);
		else if (c >= 128)
			printf("\xef\xbf\xbd"); /* U+FFFD: decode(errors="replace") */
		else
			putchar(c);
	}
	putchar(q);
}

int main(int argc, char **argv)
{
	struct sockaddr_nl snl = { .nl_family = AF_NETLINK };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	static unsigned char received[1 << 20], data[RECV_SIZE];
	char ctrl[CMSG_SPACE(sizeof(struct dmabuf_cmsg)) * MAX_FRAGS];
	struct dmabuf_token tokens[MAX_FRAGS];
	size_t total = 0;
	unsigned int ifindex, queue, dmabuf_id = 0;
	int netdev, dmabuf, memfd, server, conn, one = 1, err;
	struct nl *nl;
	struct req r;
	struct nlattr *nest;

	if (argc != 5) {
		fprintf(stderr, "usage: %s IFNAME QUEUE ADDR PORT\n", argv[0]);
		return 2;
	}
	ifindex = argv[1][0] >= '0' && argv[1][0] <= '9' ? atoi(argv[1]) : if_nametoindex(argv[1]);
	if (!ifindex)
		die("if_nametoindex");
	queue = atoi(argv[2]);

	nl = calloc(1, sizeof(*nl));
	nl->fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
	if (nl->fd < 0 || bind(nl->fd, (struct sockaddr *)&snl, sizeof(snl)))
		die("netlink socket");
	netdev = family_id(nl, NETDEV_FAMILY_NAME);
	dmabuf = udmabuf(&memfd);

	req_init(nl, &r, netdev, NETDEV_CMD_BIND_RX);
	put_u32(&r, NETDEV_A_DMABUF_IFINDEX, ifindex);
	put_u32(&r, NETDEV_A_DMABUF_FD, dmabuf);
	nest = nest_start(&r, NETDEV_A_DMABUF_QUEUES);
	put_u32(&r, NETDEV_A_QUEUE_ID, queue);
	put_u32(&r, NETDEV_A_QUEUE_TYPE, NETDEV_QUEUE_TYPE_RX);
	nest_end(&r, nest);
	err = request(nl, &r, NETDEV_A_DMABUF_ID, &dmabuf_id, sizeof(dmabuf_id));
	if (err) {
		errno = -err;
		die("NETDEV_CMD_BIND_RX");
	}
	printf("bound RX queue %u: dmabuf id %u\n", queue, dmabuf_id);

	server = socket(AF_INET, SOCK_STREAM, 0);
	if (server < 0 || setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		die("socket");
	sin.sin_port = htons(atoi(argv[4]));
	if (inet_pton(AF_INET, argv[3], &sin.sin_addr) != 1)
		die("inet_pton");
	if (bind(server, (struct sockaddr *)&sin, sizeof(sin)) || listen(server, 1))
		die("bind/listen");
	conn = accept(server, NULL, NULL);
	if (conn < 0)
		die("accept");

	for (;;) {
		struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl,
				      .msg_controllen = sizeof(ctrl) };
		size_t linear = 0, ntok = 0;
		struct cmsghdr *cm;
		ssize_t n = recvmsg(conn, &msg, MSG_SOCK_DEVMEM);

		if (n < 0)
			die("recvmsg");
		if (n == 0 && msg.msg_controllen == 0)
			break;
		if (msg.msg_controllen == 0) { /* a readable skb: plain bytes */
			memcpy(received + total, data, n);
			total += n;
			continue;
		}
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			struct dmabuf_cmsg *dc = (struct dmabuf_cmsg *)CMSG_DATA(cm);

			if (cm->cmsg_level != SOL_SOCKET)
				continue;
			if (cm->cmsg_type == SCM_DEVMEM_LINEAR) {
				memcpy(received + total, data + linear, dc->frag_size);
				total += dc->frag_size;
				linear += dc->frag_size;
				continue;
			}
			if (cm->cmsg_type != SCM_DEVMEM_DMABUF)
				continue;
			if (pread(memfd, received + total, dc->frag_size, dc->frag_offset) !=
			    (ssize_t)dc->frag_size)
				die("pread");
			total += dc->frag_size;
			printf("frag: dmabuf %u offset 0x%llx size %u token %u\n", dc->dmabuf_id,
			       (unsigned long long)dc->frag_offset, dc->frag_size, dc->frag_token);
			tokens[ntok].token_start = dc->frag_token;
			tokens[ntok].token_count = 1;
			ntok++;
		}
		if (ntok && setsockopt(conn, SOL_SOCKET, SO_DEVMEM_DONTNEED, tokens,
				       ntok * sizeof(tokens[0])) != (int)ntok)
			die("SO_DEVMEM_DONTNEED");
	}
	printf("received %zu bytes: ", total);
	print_repr(received, total < 64 ? total : 64);
	printf("\n");
	close(conn);
	close(server);
	close(nl->fd); /* the binding goes with the socket */
	close(dmabuf);
	close(memfd);
	free(nl);
	return 0;
}
