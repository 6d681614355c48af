/* One thread sleeps in recv on a mock TCP connection while the others' mock calls
 * (UDMABUF_CREATE) are served; a send from the main thread wakes it. */
#include "common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static int conn;
static volatile pid_t reader_tid;
static char got[32];

static void *reader(void *arg)
{
	reader_tid = (pid_t)syscall(SYS_gettid);
	long n = recv(conn, got, sizeof(got) - 1, 0);
	got[n > 0 ? n : 0] = 0;
	return arg;
}

/* is thread tid sleeping in recvfrom (/proc/self/task/<tid>/syscall)? */
static int sleeping(pid_t tid)
{
	char path[64], line[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	fclose(f);
	return strncmp(line, "45 ", 3) == 0; /* __NR_recvfrom */
}

int main(int argc, char **argv)
{
	const char *addr = argc > 1 ? argv[1] : "192.0.2.1";
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t n = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), cli = socket(AF_INET, SOCK_STREAM, 0);
	int dev = open("/dev/udmabuf", O_RDWR), served = 0, asleep = 0;
	pthread_t t;

	inet_pton(AF_INET, addr, &sin.sin_addr);
	if (lfd < 0 || cli < 0 || dev < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    listen(lfd, 1) || getsockname(lfd, (struct sockaddr *)&sin, &n) ||
	    connect(cli, (struct sockaddr *)&sin, sizeof(sin)))
		die("setup");
	conn = accept(lfd, NULL, NULL);
	if (conn < 0)
		die("accept");
	pthread_create(&t, NULL, reader, NULL);
	for (int i = 0; i < 5000 && !asleep; i++) {
		usleep(1000);
		asleep = reader_tid && sleeping(reader_tid);
	}
	for (int i = 0; i < 50; i++) {
		int memfd, fd = make_dmabuf(dev, 1, 0, &memfd);

		served += fd >= 0;
		close(fd);
		close(memfd);
	}
	int still = sleeping(reader_tid);
	write(cli, "wake", 4);
	pthread_join(t, NULL);
	printf("reader slept: %d, served meanwhile: %d, still asleep: %d, then read: %s\n", asleep,
	       served, still, got);
	return 0;
}
