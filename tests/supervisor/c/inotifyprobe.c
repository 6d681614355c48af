/* inotify on mock nodes: a sysfs attribute and its directory, a devtmpfs file and
 * directories; the events of opens, reads, writes, attribute changes, creates,
 * renames and removals made through the VFS; the watch calls' bad input; an
 * unprivileged watcher. Events are printed by watch name, never by number. Run as root. */
#include "common.h"
#include <grp.h>
#include <sys/inotify.h>
#include <sys/xattr.h>

static const char *err(long r)
{
	return r < 0 ? strerrorname_np(errno) : "ok";
}

static int wds[16];
static const char *wd_names[16];
static int nwds;

static void named(int wd, const char *name)
{
	wds[nwds] = wd;
	wd_names[nwds++] = name;
}

static const char *wd_name(int wd)
{
	for (int i = 0; i < nwds; i++)
		if (wds[i] == wd)
			return wd_names[i];
	return "?";
}

static void masks(unsigned m)
{
	static const struct { unsigned bit; const char *name; } bits[] = {
		{ IN_ACCESS, "ACCESS" }, { IN_MODIFY, "MODIFY" }, { IN_ATTRIB, "ATTRIB" },
		{ IN_CLOSE_WRITE, "CLOSE_WRITE" }, { IN_CLOSE_NOWRITE, "CLOSE_NOWRITE" },
		{ IN_OPEN, "OPEN" }, { IN_MOVED_FROM, "MOVED_FROM" }, { IN_MOVED_TO, "MOVED_TO" },
		{ IN_CREATE, "CREATE" }, { IN_DELETE, "DELETE" }, { IN_DELETE_SELF, "DELETE_SELF" },
		{ IN_MOVE_SELF, "MOVE_SELF" }, { IN_UNMOUNT, "UNMOUNT" }, { IN_Q_OVERFLOW, "Q_OVERFLOW" },
		{ IN_IGNORED, "IGNORED" }, { IN_ISDIR, "ISDIR" },
	};
	const char *sep = "";

	for (unsigned i = 0; i < sizeof(bits) / sizeof(*bits); i++)
		if (m & bits[i].bit) {
			printf("%s%s", sep, bits[i].name);
			sep = "|";
		}
}

static unsigned last_cookie;

/* every queued event, then a line saying so */
static void drain(int in, const char *after)
{
	char buf[4096] __attribute__((aligned(8)));
	long n;

	printf("after %s:\n", after);
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			printf("  %s ", wd_name(ev->wd));
			masks(ev->mask);
			if (ev->len)
				printf(" %s", ev->name);
			if (ev->cookie) {
				printf(" cookie %s", ev->cookie == last_cookie ? "same" : "new");
				last_cookie = ev->cookie;
			}
			printf("\n");
			p += sizeof(*ev) + ev->len;
		}
	}
	printf("  (read: %s)\n", err(n));
}

int main(void)
{
	const char *attr = "/sys/module/udmabuf/parameters/list_limit";
	const char *dir = "/sys/module/udmabuf/parameters";
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC), fd, wd, avail, status;
	char buf[64];
	struct inotify_event small;

	if (in < 0)
		die("inotify_init1");
	setvbuf(stdout, NULL, _IOLBF, 0);
	mkdir("/dev/probe-dir", 0755);
	fd = open("/dev/probe-file", O_CREAT | O_RDWR, 0600);
	close(fd);

	named(wd = inotify_add_watch(in, attr, IN_ALL_EVENTS), "attr");
	printf("watch attr: %s\n", err(wd));
	named(wd = inotify_add_watch(in, dir, IN_ALL_EVENTS), "dir");
	printf("watch dir: %s\n", err(wd));
	named(wd = inotify_add_watch(in, "/dev/probe-file", IN_ALL_EVENTS), "file");
	printf("watch file: %s\n", err(wd));
	named(wd = inotify_add_watch(in, "/dev/probe-dir", IN_ALL_EVENTS), "pdir");
	printf("watch pdir: %s\n", err(wd));
	printf("watch attr again, same wd: %d\n", inotify_add_watch(in, attr, IN_ALL_EVENTS) == wds[0]);
	drain(in, "watching");

	fd = open(attr, O_RDONLY);
	read(fd, buf, sizeof(buf));
	close(fd);
	drain(in, "open read close of attr");
	chmod(attr, 0600);
	drain(in, "chmod attr");
	setxattr(attr, "trusted.ino", "v", 1, 0);
	drain(in, "setxattr attr");
	utimensat(AT_FDCWD, attr, NULL, 0);
	drain(in, "utimensat attr");
	truncate(attr, 0);
	drain(in, "truncate attr");
	chmod(attr, 0644);
	removexattr(attr, "trusted.ino");
	drain(in, "chmod, removexattr attr");

	fd = open("/dev/probe-file", O_WRONLY);
	write(fd, "abc", 3);
	write(fd, "def", 3);
	close(fd);
	drain(in, "open write write close of file");
	fd = open("/dev/probe-file", O_WRONLY | O_TRUNC);
	close(fd);
	drain(in, "open O_TRUNC close of file");

	mkdir("/dev/probe-dir/sub", 0755);
	drain(in, "mkdir sub");
	named(inotify_add_watch(in, "/dev/probe-dir/sub", IN_ALL_EVENTS), "sub");
	rename("/dev/probe-dir/sub", "/dev/probe-dir/sub2");
	drain(in, "rename sub sub2");
	rmdir("/dev/probe-dir/sub2");
	drain(in, "rmdir sub2");
	unlink("/dev/probe-file");
	drain(in, "unlink file");
	printf("rm_watch attr: %s\n", err(inotify_rm_watch(in, wds[0])));
	drain(in, "rm_watch attr");
	printf("rm_watch attr again: %s\n", err(inotify_rm_watch(in, wds[0])));

	printf("add_watch mask 0: %s\n", err(inotify_add_watch(in, attr, 0)));
	printf("add_watch ONLYDIR of a file: %s\n", err(inotify_add_watch(in, attr, IN_MODIFY | IN_ONLYDIR)));
	printf("add_watch missing: %s\n", err(inotify_add_watch(in, "/dev/udmabuf-none", IN_MODIFY)));
	printf("add_watch MASK_CREATE existing: %s\n",
	       err(inotify_add_watch(in, dir, IN_MODIFY | IN_MASK_CREATE)));
	printf("add_watch MASK_ADD|MASK_CREATE: %s\n",
	       err(inotify_add_watch(in, dir, IN_MODIFY | IN_MASK_ADD | IN_MASK_CREATE)));
	printf("rm_watch bad wd: %s\n", err(inotify_rm_watch(in, 12345)));
	printf("add_watch bad fd: %s\n", err(inotify_add_watch(999, attr, IN_MODIFY)));
	fd = open(attr, O_RDONLY);
	close(fd);
	ioctl(in, FIONREAD, &avail);
	printf("FIONREAD after open close: %d\n", avail);
	printf("read a too small buffer: %s\n", err(read(in, &small, sizeof(small))));
	drain(in, "the small read");
	rmdir("/dev/probe-dir");
	drain(in, "rmdir pdir");
	close(in);

	chmod("/dev/udmabuf", 0600);
	if (fork() == 0) {
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			die("drop");
		in = inotify_init1(0);
		printf("[65534] watch /dev/udmabuf: %s\n", err(inotify_add_watch(in, "/dev/udmabuf", IN_MODIFY)));
		printf("[65534] watch attr: %s\n", err(inotify_add_watch(in, attr, IN_MODIFY)));
		exit(0);
	}
	wait(&status);
	return 0;
}
