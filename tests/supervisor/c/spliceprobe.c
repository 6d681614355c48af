/* splice(2), tee(2) and vmsplice(2) with a TCP socket on a local address (the mock NIC's
 * 192.0.2.1; in the real guest the same address on lo) and a PCI device's sysfs config:
 * the offsets a splice reads and writes back (and the EFAULT/ESPIPE order of bad ones),
 * a blocking splice that a signal interrupts (EINTR; restarted with SA_RESTART, but not
 * while SO_RCVTIMEO is set), the checks of tee and vmsplice before their errno. */
#include "common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

static volatile sig_atomic_t handled;
static pthread_t main_thread;

static const char *said(long r)
{
	static char buf[32];

	if (r >= 0) {
		snprintf(buf, sizeof(buf), "%ld", r);
		return buf;
	}
	switch (errno) {
	case EAGAIN: return "EAGAIN";
	case EINTR: return "EINTR";
	case EPIPE: return "EPIPE";
	default: return res(r);
	}
}

static void step(const char *name, long r)
{
	printf("%s: %s\n", name, said(r));
}

static void on_usr1(int sig)
{
	(void)sig;
	handled++;
}

static void on_signal(int restart)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = restart ? SA_RESTART : 0 };

	sigaction(SIGUSR1, &sa, NULL);
	handled = 0;
}

struct later {
	int fd;          /* where to write msg (after the signal) */
	const char *msg; /* NULL: only the signal */
};

/* after 150 ms SIGUSR1 to the main thread, after 150 ms more msg into fd */
static void *later_fn(void *arg)
{
	struct later *l = arg;

	usleep(150000);
	pthread_kill(main_thread, SIGUSR1);
	if (l->msg) {
		usleep(150000);
		if (write(l->fd, l->msg, strlen(l->msg)) < 0)
			die("write");
	}
	return NULL;
}

static long with_later(int fd, const char *msg, long (*call)(void *), void *arg)
{
	struct later l = { fd, msg };
	pthread_t t;
	long r;

	if (pthread_create(&t, NULL, later_fn, &l))
		die("pthread_create");
	r = call(arg);
	pthread_join(t, NULL);
	return r;
}

struct sp {
	int in, out;
};

static long do_splice(void *arg)
{
	struct sp *s = arg;

	return splice(s->in, NULL, s->out, NULL, 100, 0);
}

static void tcp_pair(int *c, int *a)
{
	struct sockaddr_in s = { .sin_family = AF_INET };
	socklen_t n = sizeof(s);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "192.0.2.1", &s.sin_addr);
	if (l < 0 || bind(l, (struct sockaddr *)&s, sizeof(s)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&s, &n))
		die("listener");
	*c = socket(AF_INET, SOCK_STREAM, 0);
	if (*c < 0 || connect(*c, (struct sockaddr *)&s, sizeof(s)))
		die("connect");
	*a = accept(l, NULL, NULL);
	if (*a < 0)
		die("accept");
	close(l);
}

static long drain(int fd)
{
	char buf[256];
	int fl = fcntl(fd, F_GETFL);
	long n;

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	n = read(fd, buf, sizeof(buf));
	fcntl(fd, F_SETFL, fl);
	return n < 0 ? 0 : n;
}

int main(void)
{
	int c, a, p[2], cfg, r;
	char bdf[64], path[256], buf[64];
	loff_t off;
	struct iovec iov = { buf, 4 };
	struct timeval tv = { 0, 0 };

	main_thread = pthread_self();
	setvbuf(stdout, NULL, _IOLBF, 0);
	tcp_pair(&c, &a);
	if (pipe(p))
		die("pipe");

	/* offsets: ESPIPE for a pipe before the pointer is read; EFAULT for the socket's */
	step("pipe->sock, off_in a bad pointer", splice(p[0], (loff_t *)8, c, NULL, 4, 0));
	step("pipe->sock, off_out a bad pointer", splice(p[0], NULL, c, (loff_t *)8, 4, 0));
	off = 0;
	step("pipe->sock, off_out given", splice(p[0], NULL, c, &off, 4, 0));
	step("write end as in, off_in given", splice(p[1], &off, c, NULL, 4, 0));
	step("sock->pipe, off_in a bad pointer", splice(c, (loff_t *)8, p[1], NULL, 4, 0));
	step("sock->pipe, off_out a bad pointer", splice(c, NULL, p[1], (loff_t *)8, 4, 0));
	step("sock->pipe, flags 0x10, len 0", splice(c, NULL, p[1], NULL, 0, 0x10));
	step("sock->pipe, flags 0x10", splice(c, NULL, p[1], NULL, 4, 0x10));
	step("closed in, flags 0x10", splice(999, NULL, p[1], NULL, 4, 0x10));

	/* a sysfs file splices at an offset, which is written back; its position stays */
	if (vfio_pci_group(bdf, sizeof(bdf)) < 0)
		die("no vfio-pci device");
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", bdf);
	cfg = open(path, O_RDWR);
	if (cfg < 0)
		die("open config");
	off = 8;
	r = splice(cfg, &off, p[1], NULL, 4, 0);
	printf("config->pipe at 8: %s, off %lld, pos %lld, piped %ld\n", said(r), (long long)off,
	       (long long)lseek(cfg, 0, SEEK_CUR), drain(p[0]));
	if (write(p[1], "\0\0\0\0", 4) != 4)
		die("write");
	off = 0;
	r = splice(p[0], NULL, cfg, &off, 4, 0);
	printf("pipe->config at 0: %s, off %lld, pos %lld\n", said(r), (long long)off,
	       (long long)lseek(cfg, 0, SEEK_CUR));
	off = 8;
	step("config->pipe, off_out given", splice(cfg, NULL, p[1], &off, 4, 0));
	r = splice(cfg, NULL, p[1], NULL, 6, 0);
	printf("config->pipe: %s, pos %lld, piped %ld\n", said(r),
	       (long long)lseek(cfg, 0, SEEK_CUR), drain(p[0]));
	step("config->config", splice(cfg, NULL, cfg, NULL, 4, 0));
	close(cfg);

	/* blocking: a signal ends the sleep (EINTR) or restarts the call (SA_RESTART) */
	struct sp from_sock = { c, p[1] }, from_pipe = { p[0], c };
	on_signal(0);
	step("sock->pipe blocking, signal", with_later(a, "ab", do_splice, &from_sock));
	printf("  handled %d\n", handled);
	step("  then", splice(c, NULL, p[1], NULL, 100, 0));
	printf("  piped %ld\n", drain(p[0]));
	on_signal(1);
	step("sock->pipe blocking, SA_RESTART", with_later(a, "cde", do_splice, &from_sock));
	printf("  handled %d, piped %ld\n", handled, drain(p[0]));
	tv.tv_sec = 5;
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	on_signal(1);
	step("sock->pipe blocking, SA_RESTART, SO_RCVTIMEO", with_later(a, "fghi", do_splice, &from_sock));
	printf("  handled %d\n", handled);
	step("  then", splice(c, NULL, p[1], NULL, 100, 0));
	printf("  piped %ld\n", drain(p[0]));
	tv.tv_sec = 0;
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	on_signal(0);
	step("pipe->sock blocking, signal", with_later(p[1], "jk", do_splice, &from_pipe));
	printf("  handled %d, in the pipe %ld\n", handled, drain(p[0]));
	on_signal(1);
	step("pipe->sock blocking, SA_RESTART", with_later(p[1], "lmn", do_splice, &from_pipe));
	printf("  handled %d\n", handled);
	r = recv(a, buf, sizeof(buf), MSG_DONTWAIT);
	printf("peer received %d\n", r);

	/* a pipe without readers: EPIPE and SIGPIPE, which ends a process that keeps the
	 * default action */
	for (int ignore = 0; ignore < 2; ignore++) {
		int q[2], status;
		pid_t pid;

		if (pipe(q))
			die("pipe");
		close(q[0]);
		if (write(a, "op", 2) != 2)
			die("write");
		usleep(50000);
		pid = fork();
		if (pid == 0) {
			signal(SIGPIPE, ignore ? SIG_IGN : SIG_DFL);
			r = splice(c, NULL, q[1], NULL, 100, 0);
			printf("sock->pipe without readers, SIGPIPE %s: %s\n",
			       ignore ? "ignored" : "default", said(r));
			_exit(0);
		}
		waitpid(pid, &status, 0);
		printf("  child %s\n", WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE ?
		       "killed by SIGPIPE" : "exited");
		close(q[1]);
	}
	step("  the bytes stay queued", splice(c, NULL, p[1], NULL, 100, 0));
	printf("  piped %ld\n", drain(p[0]));

	/* tee and vmsplice: their checks before their errno */
	step("tee sock->pipe, flags 0x10, len 0", tee(c, p[1], 0, 0x10));
	step("tee sock->pipe, len 0", tee(c, p[1], 0, 0));
	step("tee closed in", tee(999, p[1], 4, 0));
	step("tee sock->closed", tee(c, 999, 4, 0));
	step("tee pipe->sock", tee(p[0], c, 4, 0));
	step("vmsplice sock, flags 0x10", vmsplice(c, &iov, 1, 0x10));
	step("vmsplice sock, 1025 iovecs", vmsplice(c, &iov, 1025, 0));
	step("vmsplice sock, a bad iovec pointer", vmsplice(c, (struct iovec *)8, 1, 0));
	step("vmsplice sock, no iovecs", vmsplice(c, &iov, 0, 0));
	step("vmsplice sock", vmsplice(c, &iov, 1, 0));
	step("vmsplice closed fd", vmsplice(999, &iov, 1, 0));
	close(a);
	close(c);
	close(p[0]);
	close(p[1]);
	return 0;
}
