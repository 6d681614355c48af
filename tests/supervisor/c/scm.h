/* SCM_RIGHTS of one fd over a connected AF_UNIX socket, for the probes that pass fds
 * between processes (scmprobe.c, vfioshare.c, verbsshare.c). */
#ifndef SCM_H
#define SCM_H
#include <sys/socket.h>

static inline void send_fd(int sock, int fd)
{
	char c = 'F', buf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf,
			    .msg_controllen = sizeof(buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(sock, &m, 0) != 1)
		die("sendmsg");
}

/* the fd a message carries (recvmsg with `flags`, e.g. MSG_CMSG_CLOEXEC) */
static inline int recv_fd(int sock, int flags)
{
	char c, buf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf,
			    .msg_controllen = sizeof(buf) };
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &m, flags) != 1)
		die("recvmsg");
	cm = CMSG_FIRSTHDR(&m);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		die("no SCM_RIGHTS");
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}
#endif
