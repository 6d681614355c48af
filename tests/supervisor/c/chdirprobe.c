/* chdir/fchdir into a mock directory: getcwd answers it, relative paths resolve in it. */
#include "common.h"
#include <dirent.h>

static void here(const char *what)
{
	char cwd[256], small[8], buf[16] = "";
	int fd = open("abi_version", O_RDONLY);
	struct stat st;

	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		buf[n < 0 ? 0 : n] = 0;
		buf[strcspn(buf, "\n")] = 0;
		close(fd);
	}
	printf("%s: getcwd %s", what, getcwd(cwd, sizeof(cwd)) ? cwd : strerrorname_np(errno));
	printf(", small getcwd %s", getcwd(small, sizeof(small)) ? small : strerrorname_np(errno));
	printf(", open abi_version %s %s", fd >= 0 ? "ok" : strerrorname_np(errno), buf);
	printf(", stat uverbs0 %s", res(lstat("uverbs0", &st)));
	printf(", stat none %s", res(stat("no-such-entry", &st)));
	printf(", access abi_version %s\n", res(access("abi_version", R_OK)));
}

int main(void)
{
	int dir, file;

	printf("chdir mock dir: %s\n", res(chdir("/sys/class/infiniband_verbs")));
	here("in it");
	dir = open(".", O_RDONLY | O_DIRECTORY);
	printf("open . : %s\n", res(dir));
	printf("chdir a mock file: %s\n", res(chdir("abi_version")));
	printf("chdir /: %s\n", res(chdir("/")));
	here("at /");
	printf("fchdir mock dir fd: %s\n", res(fchdir(dir)));
	here("after fchdir");
	file = open("abi_version", O_RDONLY);
	printf("fchdir a mock file fd: %s\n", res(fchdir(file)));
	printf("chdir /tmp: %s\n", res(chdir("/tmp")));
	here("at /tmp");
	fflush(stdout);
	if (fork() == 0) {
		fchdir(dir);
		if (fork() == 0) {
			here("a forked child after fchdir, its child");
			fflush(stdout);
			_exit(0);
		}
		wait(NULL);
		_exit(0);
	}
	wait(NULL);
	here("the parent");
	printf("chdir /dev/infiniband: %s\n", res(chdir("/dev/infiniband")));
	printf("open uverbs0: %s\n", res(open("uverbs0", O_RDWR)));
	return 0;
}
