/* The seccomp and BPF uAPI as the real headers define it: sizes, offsets, numbers. */
#include <linux/filter.h>
#include <linux/ioctl.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>

#define SZ(t) printf("sizeof %s %zu\n", #t, sizeof(struct t))
#define OFF(t, f) printf("offsetof %s.%s %zu\n", #t, #f, offsetof(struct t, f))
#define NUM(n) printf("%s %lu\n", #n, (unsigned long)(n))

int main(void)
{
	SZ(seccomp_data); SZ(seccomp_notif); SZ(seccomp_notif_resp);
	SZ(seccomp_notif_addfd); SZ(seccomp_notif_sizes); SZ(sock_filter); SZ(sock_fprog);
	OFF(seccomp_data, nr); OFF(seccomp_data, arch);
	OFF(seccomp_data, instruction_pointer); OFF(seccomp_data, args);
	OFF(seccomp_notif, id); OFF(seccomp_notif, pid); OFF(seccomp_notif, flags);
	OFF(seccomp_notif, data);
	OFF(seccomp_notif_resp, id); OFF(seccomp_notif_resp, val);
	OFF(seccomp_notif_resp, error); OFF(seccomp_notif_resp, flags);
	OFF(seccomp_notif_addfd, id); OFF(seccomp_notif_addfd, flags);
	OFF(seccomp_notif_addfd, srcfd); OFF(seccomp_notif_addfd, newfd);
	OFF(seccomp_notif_addfd, newfd_flags);
	NUM(SECCOMP_IOCTL_NOTIF_RECV); NUM(SECCOMP_IOCTL_NOTIF_SEND);
	NUM(SECCOMP_IOCTL_NOTIF_ID_VALID); NUM(SECCOMP_IOCTL_NOTIF_ADDFD);
#ifdef SECCOMP_IOCTL_NOTIF_SET_FLAGS /* Linux 6.6 */
	NUM(SECCOMP_IOCTL_NOTIF_SET_FLAGS); NUM(SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
#endif
	NUM(SECCOMP_RET_USER_NOTIF); NUM(SECCOMP_RET_TRACE); NUM(SECCOMP_RET_ALLOW);
	NUM(SECCOMP_RET_ERRNO); NUM(SECCOMP_USER_NOTIF_FLAG_CONTINUE);
	NUM(SECCOMP_ADDFD_FLAG_SETFD); NUM(SECCOMP_ADDFD_FLAG_SEND);
	NUM(SECCOMP_FILTER_FLAG_NEW_LISTENER); NUM(SECCOMP_SET_MODE_FILTER);
	return 0;
}
