/* Blocking TCP socket calls on a local address (the mock NIC's 192.0.2.1; in the real
 * guest the same address on lo): accept/recv/read/recvmsg block until another process
 * connects or sends, SO_RCVTIMEO times out with EAGAIN, a signal interrupts (EINTR, or a
 * restart with SA_RESTART unless a timeout is set), O_NONBLOCK/MSG_DONTWAIT say EAGAIN,
 * a non-blocking connect says EINPROGRESS, and a listener on INADDR_ANY or :: is reached
 * at the address.  Only relations are printed (no ports, no peer addresses). */
#include "common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

static const char *addr = "192.0.2.1";
static volatile sig_atomic_t handled;
static int hold = -1; /* the write end of the pipe the helper waits on before it closes */

static void on_usr1(int sig)
{
	(void)sig;
	handled++;
}

static const char *err(long r)
{
	static char buf[32];

	if (r >= 0) {
		snprintf(buf, sizeof(buf), "%ld", r);
		return buf;
	}
	switch (errno) {
	case EAGAIN: return "EAGAIN";
	case EINTR: return "EINTR";
	case EINPROGRESS: return "EINPROGRESS";
	case EALREADY: return "EALREADY";
	case EISCONN: return "EISCONN";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNABORTED: return "ECONNABORTED";
	case EINVAL: return "EINVAL";
	default: return strerror(errno);
	}
}

static struct sockaddr_in sin_of(const char *a, int port)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, a, &s.sin_addr);
	return s;
}

static int port_of(int fd)
{
	struct sockaddr_in6 s;
	socklen_t n = sizeof(s);

	if (getsockname(fd, (struct sockaddr *)&s, &n))
		die("getsockname");
	return ntohs(s.sin6_port); /* (sin_port is at the same offset) */
}

static int listener(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in s = sin_of(addr, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&s, sizeof(s)) || listen(fd, 4))
		die("listener");
	*port = port_of(fd);
	return fd;
}

static int connect_to(const char *a, int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in s = sin_of(a, port);

	if (fd < 0 || connect(fd, (struct sockaddr *)&s, sizeof(s)))
		die("connect");
	return fd;
}

static void rcvtimeo(int fd, long usec)
{
	struct timeval tv = { .tv_sec = usec / 1000000, .tv_usec = usec % 1000000 };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		die("SO_RCVTIMEO");
}

static void on_signal(int restart)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = restart ? SA_RESTART : 0 };

	sigaction(SIGUSR1, &sa, NULL);
	handled = 0;
}

/* a child that (after usleep) signals the parent, then (after usleep) connects to port
 * and sends msg (NULL: connects and sends nothing; port 0: only signals, every sig_us
 * until reap()); it keeps the connection until reap() */
static pid_t helper(int sig_us, int conn_us, int port, const char *msg)
{
	pid_t parent = getpid(), pid;
	int p[2];

	if (pipe(p))
		die("pipe");
	pid = fork();
	if (pid) {
		close(p[0]);
		hold = p[1];
		return pid;
	}
	close(p[1]);
	if (sig_us >= 0) {
		struct pollfd pf = { p[0], POLLIN, 0 };

		usleep(sig_us);
		kill(parent, SIGUSR1);
		/* only a signal: again until the parent is done (it may not sleep yet) */
		while (!port && poll(&pf, 1, sig_us / 1000) == 0)
			kill(parent, SIGUSR1);
	}
	if (port) {
		usleep(conn_us);
		int fd = connect_to(addr, port);
		if (msg)
			write(fd, msg, strlen(msg));
		read(p[0], &pid, 1); /* until the parent is done with the connection */
		close(fd);
	}
	_exit(0);
}

static void reap(pid_t pid)
{
	close(hold);
	waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
	int port, lfd, c, r;
	char buf[64];
	pid_t h;

	if (argc > 1)
		addr = argv[1];
	setvbuf(stdout, NULL, _IONBF, 0);

	lfd = listener(&port);
	fcntl(lfd, F_SETFL, O_NONBLOCK);
	printf("accept O_NONBLOCK: %s\n", err(accept(lfd, NULL, NULL)));
	fcntl(lfd, F_SETFL, 0);
	rcvtimeo(lfd, 100000);
	printf("accept SO_RCVTIMEO: %s\n", err(accept(lfd, NULL, NULL)));
	rcvtimeo(lfd, 0);

	/* a blocking accept is woken by another process's connect */
	h = helper(-1, 100000, port, "hello");
	c = accept(lfd, NULL, NULL);
	printf("accept woken by a connect: %d\n", c >= 0);
	r = recv(c, buf, sizeof(buf), MSG_DONTWAIT);
	/* the helper may have sent already: either EAGAIN or its bytes */
	if (r < 0)
		r = recv(c, buf, sizeof(buf), 0); /* blocks until the helper sends */
	printf("recv blocking: %.*s\n", r > 0 ? r : 0, buf);
	printf("recv MSG_DONTWAIT: %s\n", err(recv(c, buf, sizeof(buf), MSG_DONTWAIT)));
	rcvtimeo(c, 100000);
	printf("recv SO_RCVTIMEO: %s\n", err(recv(c, buf, sizeof(buf), 0)));
	printf("read SO_RCVTIMEO: %s\n", err(read(c, buf, sizeof(buf))));
	rcvtimeo(c, 0);
	reap(h);
	printf("read after the peer closed: %s\n", err(read(c, buf, sizeof(buf))));
	close(c);

	/* read and recvmsg block too */
	h = helper(-1, 0, port, "via read");
	c = accept(lfd, NULL, NULL);
	r = read(c, buf, sizeof(buf));
	printf("read blocking: %.*s\n", r > 0 ? r : 0, buf);
	close(c);
	reap(h);
	h = helper(-1, 0, port, "via recvmsg");
	c = accept(lfd, NULL, NULL);
	{
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

		r = recvmsg(c, &m, 0);
	}
	printf("recvmsg blocking: %.*s\n", r > 0 ? r : 0, buf);
	close(c);
	reap(h);

	/* a poll with no timeout is woken by a connect */
	h = helper(-1, 100000, port, NULL);
	{
		struct pollfd p = { lfd, POLLIN, 0 };

		r = poll(&p, 1, -1);
		printf("poll woken by a connect: %d %#x\n", r, p.revents);
	}
	c = accept(lfd, NULL, NULL);
	close(c);
	reap(h);

	/* signals */
	on_signal(0);
	h = helper(100000, 0, 0, NULL);
	printf("accept, a signal without SA_RESTART: %s", err(accept(lfd, NULL, NULL)));
	printf(" (handled %d)\n", handled > 0);
	reap(h);
	on_signal(1);
	h = helper(100000, 200000, port, NULL);
	c = accept(lfd, NULL, NULL);
	printf("accept, a signal with SA_RESTART: restarted %d (handled %d)\n", c >= 0, handled > 0);
	/* (the helper keeps c's peer open until the recv below is done) */
	{
		pid_t keep = h;
		int keep_hold = hold;
	on_signal(1);
	rcvtimeo(lfd, 3000000);
	h = helper(100000, 0, 0, NULL);
	printf("accept, SA_RESTART and SO_RCVTIMEO: %s", err(accept(lfd, NULL, NULL)));
	printf(" (handled %d)\n", handled > 0);
	reap(h);
	rcvtimeo(lfd, 0);
	on_signal(0);
	h = helper(100000, 0, 0, NULL);
	printf("recv, a signal without SA_RESTART: %s", err(recv(c, buf, sizeof(buf), 0)));
	printf(" (handled %d)\n", handled > 0);
	reap(h);
	hold = keep_hold;
	reap(keep);
	}
	close(c);
	signal(SIGUSR1, SIG_DFL);

	/* connect */
	{
		int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), e = -1;
		struct sockaddr_in to = sin_of(addr, port);
		socklen_t n = sizeof(e);
		struct pollfd p = { s, POLLOUT, 0 };

		printf("nonblocking connect: %s\n", err(connect(s, (struct sockaddr *)&to, sizeof(to))));
		r = poll(&p, 1, -1);
		getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &n);
		printf("then: poll %d %#x, SO_ERROR %d\n", r, p.revents, e);
		printf("connect again: %s\n", err(connect(s, (struct sockaddr *)&to, sizeof(to))));
		printf("and again: %s\n", err(connect(s, (struct sockaddr *)&to, sizeof(to))));
		c = accept(lfd, NULL, NULL);
		printf("accepted: %d\n", c >= 0);
		write(s, "x", 1);
		printf("recv: %s\n", err(recv(c, buf, 1, 0)));
		close(c);
		close(s);
	}
	close(lfd);
	{
		int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), e = -1;
		struct sockaddr_in to = sin_of(addr, port);
		socklen_t n = sizeof(e);
		struct pollfd p = { s, POLLOUT, 0 };

		printf("nonblocking connect, closed port: %s\n",
		       err(connect(s, (struct sockaddr *)&to, sizeof(to))));
		r = poll(&p, 1, -1);
		getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &n);
		printf("then: poll %d %#x, SO_ERROR %s\n", r, p.revents, e ? strerror(e) : "0");
		getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &n);
		printf("SO_ERROR again: %d\n", e);
		close(s);
		s = socket(AF_INET, SOCK_STREAM, 0);
		printf("blocking connect, closed port: %s\n",
		       err(connect(s, (struct sockaddr *)&to, sizeof(to))));
		close(s);
	}

	/* a listener on INADDR_ANY / :: is reached at the address */
	for (int six = 0; six < 2; six++) {
		int l = socket(six ? AF_INET6 : AF_INET, SOCK_STREAM, 0), s, a;
		struct sockaddr_in any = sin_of("0.0.0.0", 0);
		struct sockaddr_in6 any6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
		struct sockaddr_in6 local;
		socklen_t n = sizeof(local);
		char name[64];

		if (six ? bind(l, (struct sockaddr *)&any6, sizeof(any6))
			: bind(l, (struct sockaddr *)&any, sizeof(any)))
			die("bind any");
		listen(l, 4);
		port = port_of(l);
		h = helper(-1, 100000, port, six ? "to ::" : "to 0.0.0.0");
		a = accept(l, NULL, NULL);
		r = recv(a, buf, sizeof(buf), 0);
		getsockname(a, (struct sockaddr *)&local, &n);
		if (six)
			inet_ntop(AF_INET6, &local.sin6_addr, name, sizeof(name));
		else
			inet_ntop(AF_INET, &((struct sockaddr_in *)&local)->sin_addr, name, sizeof(name));
		printf("%s listener: accepted %d, got %.*s, local address is the connected one: %d\n",
		       six ? "::" : "0.0.0.0", a >= 0, r > 0 ? r : 0, buf, strstr(name, addr) != NULL);
		close(a);
		reap(h);
		s = connect_to("127.0.0.1", port); /* loopback reaches it too */
		a = accept(l, NULL, NULL);
		write(s, "lo", 2);
		r = recv(a, buf, sizeof(buf), 0);
		printf("%s listener over loopback: %.*s\n", six ? "::" : "0.0.0.0", r > 0 ? r : 0, buf);
		close(a);
		close(s);
		close(l);
	}
	return 0;
}
