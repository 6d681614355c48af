/* The attribute calls on mock paths and fds: chmod/fchmodat/fchmodat2, chown/lchown/
 * fchownat, utimensat/utimes/futimesat, truncate, setxattr/lsetxattr/fsetxattr and
 * removexattr/lremovexattr/fremovexattr, on devtmpfs (/dev/udmabuf), sysfs (a module
 * parameter, a class directory, a class symlink), procfs (/proc/self/maps) and a
 * dma-buf; their bad input; then the same calls, mkdir/unlink/rename and opens, from a
 * child that dropped to uid/gid 65534 (the child's credentials decide, not the
 * caller's parent's). Modes, owners and times are printed only after the probe set
 * them, so the guest's and the mock's defaults never show. Run as root. */
#include "common.h"
#include <grp.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <time.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

static const char *err(long r)
{
	return r < 0 ? strerrorname_np(errno) : "ok";
}

static void step(const char *what, const char *path, long r)
{
	printf("%s %s: %s\n", what, path, err(r));
}

static void show(const char *path, int follow)
{
	struct stat st;
	int r = follow ? stat(path, &st) : lstat(path, &st);

	if (r) {
		printf("  stat %s: %s\n", path, err(r));
		return;
	}
	printf("  %s: mode %04o uid %u gid %u\n", path, st.st_mode & 07777, st.st_uid, st.st_gid);
}

static void times_of(const char *path)
{
	struct stat st;
	time_t now = time(NULL);

	if (stat(path, &st)) {
		printf("  stat %s: %s\n", path, err(-1));
		return;
	}
	printf("  %s: atime %ld.%09ld mtime %ld.%09ld ctime recent %d\n", path,
	       (long)st.st_atim.tv_sec, st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec,
	       st.st_mtim.tv_nsec, st.st_ctim.tv_sec > now - 100 && st.st_ctim.tv_sec <= now + 1);
}

static void recent(const char *path)
{
	struct stat st;
	time_t now = time(NULL);

	if (stat(path, &st))
		return;
	printf("  %s: atime recent %d mtime recent %d\n", path,
	       st.st_atim.tv_sec > now - 100 && st.st_atim.tv_sec <= now + 1,
	       st.st_mtim.tv_sec > now - 100 && st.st_mtim.tv_sec <= now + 1);
}

static void xattrs(const char *path, int follow)
{
	char val[64];
	long n;
	int (*set)(const char *, const char *, const void *, size_t, int) =
		follow ? setxattr : lsetxattr;
	int (*rm)(const char *, const char *) = follow ? removexattr : lremovexattr;
	const char *names[] = { "trusted.probe", "security.probe", "user.probe", "bogus.probe" };

	for (unsigned i = 0; i < sizeof(names) / sizeof(*names); i++) {
		printf("%s %s %s: %s", follow ? "setxattr" : "lsetxattr", path, names[i],
		       err(set(path, names[i], "v1", 2, 0)));
		n = getxattr(path, names[i], val, sizeof(val));
		if (n >= 0)
			printf(", get %.*s", (int)n, val);
		printf(", create again: %s", err(set(path, names[i], "v2", 2, XATTR_CREATE)));
		printf(", replace: %s", err(set(path, names[i], "v3", 2, XATTR_REPLACE)));
		n = getxattr(path, names[i], val, sizeof(val));
		if (n >= 0)
			printf(", get %.*s", (int)n, val);
		printf(", remove: %s", err(rm(path, names[i])));
		printf(", remove again: %s\n", err(rm(path, names[i])));
	}
	printf("  replace missing: %s\n", err(set(path, "trusted.none", "v", 1, XATTR_REPLACE)));
	printf("  listxattr after: %ld\n", listxattr(path, val, sizeof(val)));
}

static void attrs(const char *path)
{
	struct timespec ts[2] = { { 1000000, 5 }, { 2000000, 7 } };
	struct timeval tv[2] = { { 3000000, 11 }, { 4000000, 13 } };

	step("chmod 0640", path, chmod(path, 0640));
	show(path, 1);
	step("chmod 07755", path, chmod(path, 07755));
	show(path, 1);
	step("fchmodat 0600", path, syscall(SYS_fchmodat, AT_FDCWD, path, 0600));
	show(path, 1);
	step("chown 1234:5678", path, chown(path, 1234, 5678));
	show(path, 1);
	step("chown -1:42", path, chown(path, -1, 42));
	show(path, 1);
	step("lchown 0:0", path, lchown(path, 0, 0));
	show(path, 0);
	step("fchownat 7:7 NOFOLLOW", path, fchownat(AT_FDCWD, path, 7, 7, AT_SYMLINK_NOFOLLOW));
	show(path, 0);
	step("chown 0:0", path, chown(path, 0, 0));
	step("utimensat", path, utimensat(AT_FDCWD, path, ts, 0));
	times_of(path);
	step("utimes", path, utimes(path, tv));
	times_of(path);
	step("futimesat", path, syscall(SYS_futimesat, AT_FDCWD, path, tv));
	times_of(path);
	step("utimensat NULL", path, utimensat(AT_FDCWD, path, NULL, 0));
	recent(path);
	step("truncate 0", path, truncate(path, 0));
	step("truncate -1", path, truncate(path, -1));
	xattrs(path, 1);
}

static void bad_input(void)
{
	struct timespec bad_ns[2] = { { 0, 1000000000 }, { 0, 0 } };
	struct timespec omit[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
	char big[65537] = { 0 };
	const char *p = "/dev/udmabuf";

	step("chmod bad pointer", "", chmod((char *)8, 0600));
	step("chmod missing", "/dev/udmabuf-none", chmod("/dev/udmabuf-none", 0600));
	step("chmod missing sysfs", "/sys/class/infiniband_verbs/none",
	     chmod("/sys/class/infiniband_verbs/none", 0600));
	step("fchmodat2 bad flags", p, syscall(SYS_fchmodat2, AT_FDCWD, p, 0600, 0x4));
	step("fchmodat2 NOFOLLOW", p,
	     syscall(SYS_fchmodat2, AT_FDCWD, p, 0600, AT_SYMLINK_NOFOLLOW));
	step("fchmodat2 NOFOLLOW symlink", "/sys/class/infiniband_verbs/uverbs0",
	     syscall(SYS_fchmodat2, AT_FDCWD, "/sys/class/infiniband_verbs/uverbs0", 0600,
		     AT_SYMLINK_NOFOLLOW));
	step("fchownat bad flags", p, fchownat(AT_FDCWD, p, 0, 0, 0x4));
	step("chown bad pointer", "", chown((char *)8, 0, 0));
	step("utimensat bad flags", p, utimensat(AT_FDCWD, p, NULL, 0x4));
	step("utimensat bad nsec", p, utimensat(AT_FDCWD, p, bad_ns, 0));
	step("utimensat bad times pointer", p, syscall(SYS_utimensat, AT_FDCWD, p, 8, 0));
	step("utimensat OMIT both", p, utimensat(AT_FDCWD, p, omit, 0));
	step("utimensat missing", "/dev/udmabuf-none", utimensat(AT_FDCWD, "/dev/udmabuf-none", NULL, 0));
	step("utimes bad usec", p, utimes(p, (struct timeval[2]){ { 0, 1000000 }, { 0, 0 } }));
	step("truncate chrdev", p, truncate(p, 0));
	step("truncate dir", "/sys/class/infiniband_verbs", truncate("/sys/class/infiniband_verbs", 0));
	step("truncate missing", "/dev/udmabuf-none", truncate("/dev/udmabuf-none", 0));
	step("truncate bad pointer", "", truncate((char *)8, 0));
	step("setxattr bad flags", p, setxattr(p, "trusted.x", "v", 1, 4));
	step("setxattr too big", p, setxattr(p, "trusted.x", big, sizeof(big), 0));
	step("setxattr empty name", p, setxattr(p, "", "v", 1, 0));
	step("setxattr bad name pointer", p, setxattr(p, (char *)8, "v", 1, 0));
	step("setxattr bad value pointer", p, syscall(SYS_setxattr, p, "trusted.x", 8, 1, 0));
	step("setxattr missing", "/dev/udmabuf-none", setxattr("/dev/udmabuf-none", "trusted.x", "v", 1, 0));
	step("removexattr empty name", p, removexattr(p, ""));
	step("removexattr missing name", p, removexattr(p, "trusted.none"));
	step("removexattr bogus namespace", p, removexattr(p, "bogus.x"));
	step("fsetxattr bad fd", "999", fsetxattr(999, "trusted.x", "v", 1, 0));
	step("fremovexattr bad fd", "999", fremovexattr(999, "trusted.x"));
}

static void by_fd(void)
{
	const char *attr = "/sys/module/udmabuf/parameters/list_limit";
	struct timespec ts[2] = { { 5000000, 1 }, { 6000000, 2 } };
	int fd = open(attr, O_RDONLY), pfd = open(attr, O_PATH);
	int dev = open("/dev/udmabuf", O_RDWR), memfd, buf;
	char val[16], link[64];
	long n;

	if (fd < 0 || pfd < 0 || dev < 0)
		die("open");
	step("fchownat EMPTY_PATH 3:4", "fd", fchownat(fd, "", 3, 4, AT_EMPTY_PATH));
	show(attr, 1);
	step("futimens", "fd", futimens(fd, ts));
	times_of(attr);
	step("fsetxattr trusted.fd", "fd", fsetxattr(fd, "trusted.fd", "fv", 2, 0));
	n = getxattr(attr, "trusted.fd", val, sizeof(val));
	printf("  getxattr by path: %s %.*s\n", err(n), n > 0 ? (int)n : 0, val);
	step("fremovexattr trusted.fd", "fd", fremovexattr(fd, "trusted.fd"));
	step("fchmodat2 EMPTY_PATH O_PATH 0604", "pfd",
	     syscall(SYS_fchmodat2, pfd, "", 0604, AT_EMPTY_PATH));
	show(attr, 1);
	step("fchownat EMPTY_PATH O_PATH 0:0", "pfd", fchownat(pfd, "", 0, 0, AT_EMPTY_PATH));
	step("utimensat O_PATH fd", "pfd", syscall(SYS_utimensat, pfd, NULL, ts, 0));
	step("fsetxattr O_PATH fd", "pfd", fsetxattr(pfd, "trusted.fd", "fv", 2, 0));
	step("fchmod O_PATH fd", "pfd", fchmod(pfd, 0644));
	step("fchmodat2 EMPTY_PATH 0644", "pfd", syscall(SYS_fchmodat2, pfd, "", 0644, AT_EMPTY_PATH));
	show(attr, 1);
	step("fchmodat relative", "dirfd", fchmodat(AT_FDCWD, "list_limit", 0644, 0));
	close(fd);
	close(pfd);

	buf = make_dmabuf(dev, 1, 0, &memfd);
	step("fsetxattr dma-buf", "buf", fsetxattr(buf, "trusted.x", "v", 1, 0));
	step("fremovexattr dma-buf", "buf", fremovexattr(buf, "trusted.x"));
	step("futimens dma-buf", "buf", futimens(buf, ts));
	step("fsetxattr udmabuf", "dev", fsetxattr(dev, "trusted.fd", "fv", 2, 0));
	step("fremovexattr udmabuf", "dev", fremovexattr(dev, "trusted.fd"));
	step("fremovexattr udmabuf again", "dev", fremovexattr(dev, "trusted.fd"));
	snprintf(link, sizeof(link), "/proc/self/fd/%d", buf);
	step("chmod /proc/self/fd/<dma-buf> 0640", "", chmod(link, 0640));
	step("setxattr /proc/self/fd/<dma-buf>", "", setxattr(link, "trusted.x", "v", 1, 0));
	step("truncate /proc/self/fd/<dma-buf>", "", truncate(link, 0));
	close(buf);
	close(memfd);
	close(dev);
}

/* Linux 6.13's *xattrat calls: struct xattr_args, AT_EMPTY_PATH on an fd */
struct xargs {
	unsigned long long value;
	unsigned int size, flags;
	unsigned long long tail;
};

static void xattrat(void)
{
	const char *attr = "/sys/module/udmabuf/parameters/list_limit";
	char val[64];
	struct xargs set = { (unsigned long)"av", 2, 0, 0 }, get = { (unsigned long)val, 64, 0, 0 };
	struct xargs bad = { (unsigned long)val, 64, 1, 0 }, tail = { (unsigned long)"tv", 2, 0, 7 };
	int fd = open(attr, O_RDONLY), pfd = open(attr, O_PATH);
	long n;

	if (fd < 0 || pfd < 0)
		die("open");
	step("setxattrat", attr, syscall(463, AT_FDCWD, attr, 0, "trusted.at", &set, 16));
	n = syscall(464, AT_FDCWD, attr, 0, "trusted.at", &get, 16);
	printf("getxattrat %s: %s %ld %.*s\n", attr, err(n), n, n > 0 ? (int)n : 0, val);
	step("getxattrat args.flags 1", attr, syscall(464, AT_FDCWD, attr, 0, "trusted.at", &bad, 16));
	step("setxattrat usize 8", attr, syscall(463, AT_FDCWD, attr, 0, "trusted.at", &set, 8));
	step("setxattrat usize 8192", attr, syscall(463, AT_FDCWD, attr, 0, "trusted.at", &set, 8192));
	step("setxattrat non-zero tail", attr, syscall(463, AT_FDCWD, attr, 0, "trusted.at", &tail, 24));
	step("setxattrat zero tail", attr, syscall(463, AT_FDCWD, attr, 0, "trusted.at", &set, 24));
	step("setxattrat bad at_flags", attr, syscall(463, AT_FDCWD, attr, 0x4, "trusted.at", &set, 16));
	step("setxattrat missing", "/dev/udmabuf-none",
	     syscall(463, AT_FDCWD, "/dev/udmabuf-none", 0, "trusted.at", &set, 16));
	step("setxattrat /proc/self/maps", "", syscall(463, AT_FDCWD, "/proc/self/maps", 0, "trusted.at", &set, 16));
	step("setxattrat empty path no flag", "fd", syscall(463, fd, "", 0, "trusted.at", &set, 16));
	n = syscall(465, fd, NULL, AT_EMPTY_PATH, val, sizeof(val));
	printf("listxattrat fd NULL EMPTY_PATH: %s %ld\n", err(n), n);
	step("removexattrat fd EMPTY_PATH", "fd", syscall(466, fd, "", AT_EMPTY_PATH, "trusted.at"));
	step("removexattrat again", "fd", syscall(466, fd, "", AT_EMPTY_PATH, "trusted.at"));
	step("removexattrat O_PATH fd", "pfd", syscall(466, pfd, "", AT_EMPTY_PATH, "trusted.at"));
	step("getxattrat O_PATH fd", "pfd", syscall(464, pfd, NULL, AT_EMPTY_PATH, "trusted.at", &get, 16));
	close(fd);
	close(pfd);
}

static void unprivileged(void)
{
	struct timespec ts[2] = { { 1, 0 }, { 2, 0 } };
	const char *dev = "/dev/udmabuf", *attr = "/sys/module/udmabuf/parameters/list_limit";
	int fd;

	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		die("drop");
	step("[65534] chmod", dev, chmod(dev, 0666));
	step("[65534] chmod", attr, chmod(attr, 0666));
	step("[65534] chown to self", dev, chown(dev, 65534, -1));
	step("[65534] chown -1:-1", dev, chown(dev, -1, -1));
	step("[65534] utimensat times", dev, utimensat(AT_FDCWD, dev, ts, 0));
	step("[65534] utimensat NULL", dev, utimensat(AT_FDCWD, dev, NULL, 0));
	step("[65534] utimensat NULL", attr, utimensat(AT_FDCWD, attr, NULL, 0));
	step("[65534] truncate", attr, truncate(attr, 0));
	step("[65534] setxattr trusted", dev, setxattr(dev, "trusted.x", "v", 1, 0));
	step("[65534] setxattr security", dev, setxattr(dev, "security.x", "v", 1, 0));
	step("[65534] setxattr user", attr, setxattr(attr, "user.x", "v", 1, 0));
	step("[65534] removexattr trusted", attr, removexattr(attr, "trusted.x"));
	step("[65534] mkdir", "/dev/probe-dir", mkdir("/dev/probe-dir", 0755));
	step("[65534] unlink", dev, unlink(dev));
	step("[65534] rename", dev, rename(dev, "/dev/udmabuf-moved"));
	step("[65534] open O_CREAT", "/dev/probe-file", open("/dev/probe-file", O_CREAT | O_WRONLY, 0600));
	step("[65534] open for write", attr, fd = open(attr, O_WRONLY));
	if (fd >= 0)
		close(fd);
	step("[65534] open", dev, fd = open(dev, O_RDWR));
	if (fd >= 0)
		close(fd);
	step("[65534] access W_OK", attr, access(attr, W_OK));
	step("[65534] access R_OK", attr, access(attr, R_OK));
}

int main(void)
{
	struct stat dev_st, attr_st;
	const char *attr = "/sys/module/udmabuf/parameters/list_limit";
	int status;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (stat("/dev/udmabuf", &dev_st) || stat(attr, &attr_st))
		die("stat");
	attrs("/dev/udmabuf");
	attrs(attr);
	attrs("/sys/class/infiniband_verbs");
	attrs("/proc/self/maps");
	step("lchown 5:6", "/sys/class/infiniband_verbs/uverbs0",
	     lchown("/sys/class/infiniband_verbs/uverbs0", 5, 6));
	show("/sys/class/infiniband_verbs/uverbs0", 0);
	xattrs("/sys/class/infiniband_verbs/uverbs0", 0);
	bad_input();
	chdir("/sys/module/udmabuf/parameters");
	by_fd();
	chdir("/");
	xattrat();
	/* the unprivileged child's view: the devtmpfs node root-only, the attribute 0644 */
	chmod("/dev/udmabuf", 0600);
	chown("/dev/udmabuf", 0, 0);
	chmod(attr, 0644);
	chown(attr, 0, 0);
	pid = fork();
	if (pid == 0) {
		unprivileged();
		exit(0);
	}
	waitpid(pid, &status, 0);
	printf("child exit %d\n", WEXITSTATUS(status));
	chmod("/dev/udmabuf", dev_st.st_mode & 07777);
	chmod(attr, attr_st.st_mode & 07777);
	return 0;
}
