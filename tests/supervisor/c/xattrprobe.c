/* getxattr/lgetxattr/fgetxattr and listxattr/llistxattr/flistxattr of mock paths and
 * fds: devtmpfs (/dev/udmabuf), sysfs (a class directory, a file, a symlink), a dma-buf
 * (an anon inode of the dmabuf pseudo fs) and a memfd for contrast. */
#include "common.h"
#include <sys/xattr.h>

static const char *names[] = { "user.x", "security.selinux", "system.posix_acl_access",
			       "trusted.x" };

static const char *err(long r)
{
	static char buf[64];

	if (r >= 0) {
		snprintf(buf, sizeof(buf), "%ld", r);
		return buf;
	}
	return strerrorname_np(errno);
}

static void paths(const char *p)
{
	char buf[256];

	for (unsigned i = 0; i < sizeof(names) / sizeof(*names); i++) {
		printf("%s getxattr %s: %s", p, names[i], err(getxattr(p, names[i], buf, sizeof(buf))));
		printf(", lgetxattr: %s\n", err(lgetxattr(p, names[i], buf, sizeof(buf))));
	}
	printf("%s listxattr 0: %s", p, err(listxattr(p, NULL, 0)));
	printf(", listxattr 256: %s", err(listxattr(p, buf, sizeof(buf))));
	printf(", llistxattr 256: %s\n", err(llistxattr(p, buf, sizeof(buf))));
}

static void fds(const char *what, int fd)
{
	char buf[256];

	for (unsigned i = 0; i < sizeof(names) / sizeof(*names); i++)
		printf("%s fgetxattr %s: %s\n", what, names[i],
		       err(fgetxattr(fd, names[i], buf, sizeof(buf))));
	printf("%s flistxattr 0: %s", what, err(flistxattr(fd, NULL, 0)));
	printf(", flistxattr 256: %s\n", err(flistxattr(fd, buf, sizeof(buf))));
}

int main(void)
{
	int dev = open("/dev/udmabuf", O_RDWR), memfd, buf;
	char small[1];

	if (dev < 0)
		die("open /dev/udmabuf");
	buf = make_dmabuf(dev, 1, 0, &memfd);
	paths("/dev/udmabuf");
	paths("/sys/class/infiniband_verbs");
	paths("/sys/class/infiniband_verbs/abi_version");
	paths("/sys/class/infiniband_verbs/uverbs0");
	fds("udmabuf fd", dev);
	fds("dma-buf fd", buf);
	fds("memfd", memfd);
	printf("getxattr bad name pointer: %s\n", err(getxattr("/dev/udmabuf", NULL, small, 1)));
	printf("getxattr empty name: %s\n", err(getxattr("/dev/udmabuf", "", small, 1)));
	printf("fgetxattr bad fd: %s\n", err(fgetxattr(999, "user.x", small, 1)));
	printf("getxattr missing: %s\n", err(getxattr("/dev/udmabuf-none", "user.x", small, 1)));
	return 0;
}
