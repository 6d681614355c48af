"""Probe: mock directories as files -- open, fstat, list through the fd, O_PATH, openat.

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  Directories used: /dev/vfio (devtmpfs: the
container and a group node; real Linux 7.2 in the guest, owned by the mock under
mockkernel) and /sys/bus/pci/devices (sysfs: symlinks to the devices).  Names are
compared as relations (the same set through the fd as through the path), never
printed, except "vfio", which both have.  Standard library only.
"""
import fcntl
import mmap
import os
import stat

from _probe import FIOCLEX, FIONREAD, Res, call, link, run_all

VFIO = "/dev/vfio"
CONTAINER = "/dev/vfio/vfio"
PCI = "/sys/bus/pci/devices"
O_LARGEFILE = 0o100000  # the kernel's x86-64 value (os.O_LARGEFILE is 0)


def flags_text(fd):
    return oct(fcntl.fcntl(fd, fcntl.F_GETFL))


def open_dir_flags(flags):
    def step():
        with Res() as r:
            fd = r.fd(os.open(VFIO, flags))
            st = os.fstat(fd)
            return {
                "isdir": stat.S_ISDIR(st.st_mode),
                "perm": oct(stat.S_IMODE(st.st_mode)),
                "getfl": flags_text(fd),
                "cloexec": bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC),
                "link": link(fd),
                "same_ino_as_stat": st.st_ino == os.stat(VFIO).st_ino,
            }

    return step


def open_errno(path, flags):
    def step():
        with Res() as r:
            r.fd(os.open(path, flags))
            return "opened"

    return step


def listdir_fd():
    with Res() as r:
        fd = r.fd(os.open(VFIO, os.O_RDONLY | os.O_DIRECTORY))
        names = os.listdir(fd)
        again = os.listdir(fd)
        return {
            "same_as_path": sorted(names) == sorted(os.listdir(VFIO)),
            "has_vfio": "vfio" in names,
            "no_dots": "." not in names and ".." not in names,
            "second_listing_same": sorted(again) == sorted(names),
            "pos_after": os.lseek(fd, 0, os.SEEK_CUR),
        }


def scandir_fd():
    with Res() as r:
        fd = r.fd(os.open(VFIO, os.O_RDONLY | os.O_DIRECTORY))
        with os.scandir(fd) as it:
            entries = {e.name: e for e in it}
        e = entries["vfio"]
        st = e.stat()
        return {
            "same_as_path": sorted(entries) == sorted(os.listdir(VFIO)),
            "path": e.path,
            "is_dir": e.is_dir(),
            "is_file": e.is_file(),
            "is_symlink": e.is_symlink(),
            "stat_chr": stat.S_ISCHR(st.st_mode),
            "inode_matches": e.inode() == os.stat(CONTAINER).st_ino,
        }


def io_on_dir():
    with Res() as r:
        fd = r.fd(os.open(VFIO, os.O_RDONLY | os.O_DIRECTORY))
        out = {
            "read": call(os.read, fd, 16),
            "pread": call(os.pread, fd, 16, 0),
            "write": call(os.write, fd, b"x"),
            "lseek_set0": call(os.lseek, fd, 0, os.SEEK_SET),
            "lseek_end": call(os.lseek, fd, 0, os.SEEK_END),
            "lseek_neg": call(os.lseek, fd, -1, os.SEEK_SET),
            "fionread": call(fcntl.ioctl, fd, FIONREAD, bytearray(4)),
            "fioclex": call(fcntl.ioctl, fd, FIOCLEX, 0),
            "cloexec_after": bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC),
            "fsync": call(os.fsync, fd),
        }
        try:
            mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ).close()
            out["mmap"] = "mapped"
        except OSError as e:
            out["mmap"] = os.strerror(e.errno)
        return out


def o_path_dir():
    with Res() as r:
        fd = r.fd(os.open(VFIO, os.O_PATH))
        st = os.fstat(fd)
        dup = r.fd(os.dup(fd))
        return {
            "isdir": stat.S_ISDIR(st.st_mode),
            "getfl": flags_text(fd),
            "setfl": call(fcntl.fcntl, fd, fcntl.F_SETFL, os.O_NONBLOCK),
            "read": call(os.read, fd, 1),
            "listdir": call(os.listdir, fd),
            "ioctl_fioclex": call(fcntl.ioctl, fd, FIOCLEX, 0),
            "lseek": call(os.lseek, fd, 0, os.SEEK_SET),
            "dup_isdir": stat.S_ISDIR(os.fstat(dup).st_mode),
            "link": link(fd),
            "openat_child": stat.S_ISCHR(
                os.fstat(r.fd(os.open("vfio", os.O_PATH, dir_fd=fd))).st_mode
            ),
        }


def o_path_chrdev():
    with Res() as r:
        fd = r.fd(os.open(CONTAINER, os.O_PATH | os.O_CLOEXEC))
        return {
            "ischr": stat.S_ISCHR(os.fstat(fd).st_mode),
            "getfl": flags_text(fd),
            "read": call(os.read, fd, 1),
            "write": call(os.write, fd, b"x"),
            "ioctl": call(fcntl.ioctl, fd, FIONREAD, bytearray(4)),
            "getfd": fcntl.fcntl(fd, fcntl.F_GETFD),
            "link": link(fd),
        }


def openat_in_dir():
    with Res() as r:
        dfd = r.fd(os.open(VFIO, os.O_RDONLY | os.O_DIRECTORY))
        chr_fd = r.fd(os.open("vfio", os.O_RDWR, dir_fd=dfd))
        closed = r.fd(os.open(VFIO, os.O_RDONLY | os.O_DIRECTORY))
        r.close(closed)

        def open_at(path, flags, at):
            return os.close(os.open(path, flags, dir_fd=at)) or "opened"

        return {
            "child_chr": stat.S_ISCHR(os.fstat(chr_fd).st_mode),
            "child_link": link(chr_fd),
            "stat_at": stat.S_ISCHR(os.stat("vfio", dir_fd=dfd).st_mode),
            "lstat_at": stat.S_ISCHR(os.stat("vfio", dir_fd=dfd, follow_symlinks=False).st_mode),
            "stat_missing": call(lambda: os.stat("nope", dir_fd=dfd)),
            "stat_empty": call(lambda: os.stat("", dir_fd=dfd)),
            "access_at": os.access("vfio", os.F_OK, dir_fd=dfd),
            "access_missing": os.access("nope", os.F_OK, dir_fd=dfd),
            "open_missing": call(open_at, "nope", os.O_RDONLY, dfd),
            "open_dot": call(open_at, ".", os.O_RDONLY, dfd),
            "open_dotdot_null": call(open_at, "../null", os.O_RDONLY, dfd),
            "dirfd_not_dir": call(open_at, "vfio", os.O_RDONLY, chr_fd),
            "dirfd_closed": call(open_at, "vfio", os.O_RDONLY, closed),
            "absolute_ignores_dirfd": call(open_at, CONTAINER, os.O_RDWR, chr_fd),
        }


def first_pci_link():
    return sorted(os.listdir(PCI))[0]


def nofollow_symlink():
    with Res() as r:
        path = PCI + "/" + first_pci_link()
        out = {
            "rdonly_nofollow": call(open_errno(path, os.O_RDONLY | os.O_NOFOLLOW)),
            "dir_nofollow": call(open_errno(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)),
            "follow_dir": call(open_errno(path, os.O_RDONLY | os.O_DIRECTORY)),
        }
        fd = r.fd(os.open(path, os.O_PATH | os.O_NOFOLLOW))
        st = os.fstat(fd)
        out["opath_nofollow_islnk"] = stat.S_ISLNK(st.st_mode)
        out["opath_nofollow_getfl"] = flags_text(fd)
        return out


def sysfs_dir_fd():
    with Res() as r:
        fd = r.fd(os.open(PCI, os.O_RDONLY | os.O_DIRECTORY))
        with os.scandir(fd) as it:
            links = [e.is_symlink() for e in it]
        return {
            "same_as_path": sorted(os.listdir(fd)) == sorted(os.listdir(PCI)),
            "all_symlinks": all(links) and bool(links),
            "link": link(fd),
        }


def proc_fd_of_dir():
    with Res() as r:
        fd = r.fd(os.open(VFIO, os.O_RDONLY | os.O_DIRECTORY))
        again = r.fd(os.open("/proc/self/fd/%d" % fd, os.O_RDONLY))
        return {
            "stat_isdir": stat.S_ISDIR(os.stat("/proc/self/fd/%d" % fd).st_mode),
            "reopened_isdir": stat.S_ISDIR(os.fstat(again).st_mode),
            "reopened_link": link(again),
            "reopened_lists": "vfio" in os.listdir(again),
        }


run_all(
    [
        ("open_rdonly_directory", open_dir_flags(os.O_RDONLY | os.O_DIRECTORY)),
        ("open_rdonly", open_dir_flags(os.O_RDONLY)),
        ("open_trailing_slash", open_errno(VFIO + "/", os.O_RDONLY)),
        ("open_cloexec_nonblock", open_dir_flags(os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)),
        ("open_wronly", open_errno(VFIO, os.O_WRONLY)),
        ("open_rdwr", open_errno(VFIO, os.O_RDWR)),
        ("open_rdwr_directory", open_errno(VFIO, os.O_RDWR | os.O_DIRECTORY)),
        ("open_creat", open_errno(VFIO, os.O_RDONLY | os.O_CREAT)),
        ("open_creat_directory", open_errno(VFIO, os.O_RDONLY | os.O_CREAT | os.O_DIRECTORY)),
        ("open_chrdev_directory", open_errno(CONTAINER, os.O_RDWR | os.O_DIRECTORY)),
        ("open_chrdev_trailing_slash", open_errno(CONTAINER + "/", os.O_RDWR)),
        ("open_missing_directory", open_errno(VFIO + "/nope", os.O_RDONLY | os.O_DIRECTORY)),
        ("listdir_fd", listdir_fd),
        ("scandir_fd", scandir_fd),
        ("io_on_dir", io_on_dir),
        ("o_path_dir", o_path_dir),
        ("o_path_chrdev", o_path_chrdev),
        ("openat_in_dir", openat_in_dir),
        ("nofollow_symlink", nofollow_symlink),
        ("sysfs_dir_fd", sysfs_dir_fd),
        ("proc_fd_of_dir", proc_fd_of_dir),
    ]
)
