/* sendmmsg/recvmmsg with SCM_RIGHTS of dma-buf fds: a vector of three messages, the
 * first and third carrying a dma-buf, received by a forked child in one recvmmsg. */
#include "common.h"
#include <sys/socket.h>

static void rights(struct msghdr *m, char *ctl, int fd)
{
	struct cmsghdr *c;

	m->msg_control = ctl;
	m->msg_controllen = CMSG_SPACE(sizeof(int));
	c = CMSG_FIRSTHDR(m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
}

int main(void)
{
	int sv[2], dev, memfd, a, b, base, status;
	char ctl[3][CMSG_SPACE(sizeof(int))], data[3][8] = { "one", "two", "three" };
	struct mmsghdr mm[3];
	struct iovec iov[3];

	base = lowest_free();
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv))
		die("socketpair");
	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("open /dev/udmabuf");
	a = make_dmabuf(dev, 1, 0, &memfd);
	b = make_dmabuf(dev, 2, 0, &memfd);
	ioctl(a, DMA_BUF_SET_NAME_B, "first");
	ioctl(b, DMA_BUF_SET_NAME_B, "third");
	fflush(stdout);
	if (fork() == 0) {
		char rdata[3][8], rctl[3][CMSG_SPACE(sizeof(int))];
		int n, i;

		close(sv[0]);
		memset(mm, 0, sizeof(mm));
		for (i = 0; i < 3; i++) {
			iov[i].iov_base = rdata[i];
			iov[i].iov_len = sizeof(rdata[i]);
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
			mm[i].msg_hdr.msg_control = rctl[i];
			mm[i].msg_hdr.msg_controllen = sizeof(rctl[i]);
		}
		n = recvmmsg(sv[1], mm, 3, 0, NULL);
		printf("recvmmsg: %d\n", n);
		for (i = 0; i < n; i++) {
			struct cmsghdr *c = CMSG_FIRSTHDR(&mm[i].msg_hdr);
			int fd = -1;

			if (c && c->cmsg_type == SCM_RIGHTS)
				memcpy(&fd, CMSG_DATA(c), sizeof(int));
			printf("message %d: len %u, %s", i, mm[i].msg_len, rdata[i]);
			if (fd >= 0) {
				printf(", fd base+%d", fd - base);
				printf(", name %s", fdinfo("self", fd, "name"));
				printf(", size %s\n", fdinfo("self", fd, "size"));
			} else {
				printf(", no fd\n");
			}
		}
		printf("recvmmsg nothing queued: %s\n",
		       res(recvmmsg(sv[1], mm, 3, MSG_DONTWAIT, NULL)));
		fflush(stdout);
		_exit(0);
	}
	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < 3; i++) {
		iov[i].iov_base = data[i];
		iov[i].iov_len = strlen(data[i]) + 1;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	rights(&mm[0].msg_hdr, ctl[0], a);
	rights(&mm[2].msg_hdr, ctl[2], b);
	printf("sendmmsg: %d", sendmmsg(sv[0], mm, 3, 0));
	printf(", lens %u %u %u\n", mm[0].msg_len, mm[1].msg_len, mm[2].msg_len);
	fflush(stdout);
	wait(&status);
	printf("sendmmsg bad vector: %s\n", res(sendmmsg(sv[0], (void *)8, 1, 0)));
	close(a);
	close(b);
	printf("after close: dma-bufs in flight: none\n");
	return 0;
}
