"""Attribute calls of a supervised tree on mock paths and fds, and whose credentials
judge them.  The C probe (``c/attrprobe.c``) is compared with real Linux 7.2 in
``test_sup_real_linux.py``; these add what a golden cannot show: the state lands in the
kernel (not on the host), a Python child that drops its uid is judged by its own ids,
and a watch on a mock path is refused with a trace event."""

from __future__ import annotations

import contextlib
import os
import sys
import textwrap

from mockkernel.kernel import Kernel
from mockkernel.supervisor.handlers import NOT_TRAPPED, TABLE
from mockkernel.vfs import Vfs

ATTR = "/sys/module/udmabuf/parameters/list_limit"


def _py(kernel: Kernel, code: str) -> list[str]:
    r = kernel.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                   text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.splitlines()


def test_a_childs_changes_land_in_the_kernel(kernel: Kernel) -> None:
    out = _py(
        kernel,
        f"""
        import os
        os.chmod("{ATTR}", 0o640)
        os.chown("/dev/udmabuf", 12, 34)
        os.utime("{ATTR}", ns=(10**9 + 5, 2 * 10**9 + 7))
        os.setxattr("/dev/udmabuf", "trusted.who", b"child")
        st = os.stat("{ATTR}")
        print(oct(st.st_mode & 0o7777), st.st_atime_ns, st.st_mtime_ns)
        """,
    )
    assert out == ["0o640 1000000005 2000000007"]
    vfs = kernel.subsys(Vfs)
    attr = vfs.lookup(ATTR)
    dev = vfs.lookup("/dev/udmabuf")
    assert attr is not None and dev is not None
    assert attr.inode().mode & 0o7777 == 0o640
    assert (dev.inode().uid, dev.inode().gid) == (12, 34)
    assert dev.inode().xattrs == {"trusted.who": b"child"}
    # a second process sees what the first left, as on Linux
    assert _py(kernel, 'import os; print(os.getxattr("/dev/udmabuf", "trusted.who"))') == [
        "b'child'"
    ]


def test_host_sysfs_stays_read_only(kernel: Kernel) -> None:
    """A host sysfs file beside the mock's nodes is never changed: ``EROFS``."""
    before = os.stat("/sys/kernel/mm").st_mode
    out = _py(
        kernel,
        """
        import os
        for call in (lambda: os.chmod("/sys/kernel/mm", 0o700),
                     lambda: os.chown("/sys/kernel/mm", 1, 1),
                     lambda: os.utime("/sys/kernel/mm", ns=(1, 1)),
                     lambda: os.setxattr("/sys/kernel/mm", "trusted.x", b"1"),
                     lambda: os.chmod("/sys/kernel/no-such-file", 0o700)):
            try:
                call()
                print("ok")
            except OSError as e:
                print(e.errno)
        """,
    )
    assert out == ["30", "30", "30", "30", "2"]  # EROFS x4, ENOENT
    assert os.stat("/sys/kernel/mm").st_mode == before


def test_a_child_that_drops_its_uid_is_judged_by_it(kernel: Kernel) -> None:
    """``os.setuid`` in a Python child: the supervisor reads the child's credentials,
    not its own (root), for mkdir/unlink/rename/chmod/chown/open."""
    out = _py(
        kernel,
        f"""
        import errno, os
        os.chmod("/dev/udmabuf", 0o600)
        os.mkdir("/dev/as-root"); os.rmdir("/dev/as-root")  # root may
        os.setgroups([]); os.setgid(65534); os.setuid(65534)
        for name, call in (
            ("mkdir", lambda: os.mkdir("/dev/probe")),
            ("unlink", lambda: os.unlink("/dev/udmabuf")),
            ("rename", lambda: os.rename("/dev/udmabuf", "/dev/moved")),
            ("chmod", lambda: os.chmod("{ATTR}", 0o666)),
            ("chown", lambda: os.chown("/dev/udmabuf", 65534, -1)),
            ("open", lambda: os.open("/dev/udmabuf", os.O_RDWR)),
            ("create", lambda: os.open("/dev/new", os.O_CREAT | os.O_WRONLY)),
            ("utime", lambda: os.utime("/dev/udmabuf")),
            ("setxattr", lambda: os.setxattr("{ATTR}", "trusted.x", b"1")),
        ):
            try:
                call()
                print(name, "ok")
            except OSError as e:
                print(name, errno.errorcode[e.errno])
        """,
    )
    assert out == [
        "mkdir EACCES",
        "unlink EACCES",
        "rename EACCES",
        "chmod EPERM",
        "chown EPERM",
        "open EACCES",
        "create EACCES",
        "utime EACCES",
        "setxattr EPERM",
    ]
    assert kernel.subsys(Vfs).lookup("/dev/udmabuf") is not None


def test_inotify_of_a_mock_node_hears_the_mock_vfs(kernel: Kernel) -> None:
    """A watch of a mock node: the instance becomes the mock's and hears what the mock
    VFS does (another process's chmod and write included); mixed with a host file it
    is refused (``EOPNOTSUPP``, ``sup.unsupported``), and a host-only instance stays
    the host's.  Exact event sequences: ``c_inotifyprobe.txt``."""
    code = f"""
        import ctypes, errno, os, struct, subprocess, sys
        libc = ctypes.CDLL(None, use_errno=True)
        def events(fd):
            data = os.read(fd, 4096)
            out = []
            while data:
                wd, mask, cookie, n = struct.unpack_from("iIII", data)
                out.append((wd, hex(mask)))
                data = data[16 + n:]
            return out
        host = libc.inotify_init1(os.O_NONBLOCK)
        print("host", libc.inotify_add_watch(host, b"/tmp", 0x2) > 0,
              os.readlink(f"/proc/self/fd/{{host}}"))
        fd = libc.inotify_init1(os.O_NONBLOCK)
        wd = libc.inotify_add_watch(fd, b"{ATTR}", 0x6)  # IN_MODIFY | IN_ATTRIB
        print("wd", wd, os.readlink(f"/proc/self/fd/{{fd}}"), os.get_blocking(fd))
        subprocess.run([sys.executable, "-c", "import os; os.chmod('{ATTR}', 0o600)"])
        print(events(fd))
        r = libc.inotify_add_watch(fd, b"/tmp", 0x2)
        print("mixed", r, ctypes.get_errno() == errno.EOPNOTSUPP)
        r = libc.inotify_add_watch(host, b"/dev/udmabuf", 0x2)
        print("host instance", r, ctypes.get_errno() == errno.EOPNOTSUPP)
        """
    with kernel.tracer.capture() as events:
        out = _py(kernel, code)
    assert out == [
        "host True anon_inode:inotify",
        "wd 1 anon_inode:inotify False",
        "[(1, '0x4')]",
        "mixed -1 True",
        "host instance -1 True",
    ]
    refused = [e for e in events if e["event"] == "sup.unsupported"]
    assert [e["syscall"] for e in refused] == ["inotify_add_watch"] * 2
    assert [e["event"] for e in events if e["event"] == "sup.inotify"] == ["sup.inotify"]


def test_fanotify_of_a_mock_node_is_refused(kernel: Kernel) -> None:
    """fanotify is not modelled: a mark on a mock node is ``EOPNOTSUPP``."""
    code = """
        import ctypes, errno
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.fanotify_init(0, 0)
        r = libc.fanotify_mark(fd, 1, ctypes.c_uint64(0x2), -100, b"/dev/udmabuf")
        print(r, ctypes.get_errno() == errno.EOPNOTSUPP)
        """
    assert _py(kernel, code) == ["-1 True"]


def test_the_attribute_calls_are_trapped() -> None:
    names = {s.name for s in TABLE.values()}
    assert {"chmod", "fchmodat", "fchmodat2", "chown", "lchown", "fchownat", "utimensat",
            "utimes", "futimesat", "utime", "truncate", "setxattr", "lsetxattr", "fsetxattr",
            "removexattr", "lremovexattr", "fremovexattr", "inotify_add_watch",
            "fanotify_mark"} <= names  # fmt: skip
    assert not any("chmod" in k or "inotify" in k for k in NOT_TRAPPED)


def _status_fds() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            n += os.readlink(f"/proc/self/fd/{fd}").endswith("/status")
    return n


def test_the_credentials_files_go_with_their_threads(kernel: Kernel) -> None:
    """Each calling thread's ``/proc/<tid>/status`` is held open for its checks and
    closed when the thread exits: a tree of short-lived children leaves none open."""
    before = _status_fds()
    out = _py(
        kernel,
        f"""
        import os
        for i in range(12):
            pid = os.fork()
            if pid == 0:
                os.chmod("{ATTR}", 0o644)  # a permission check: the child's ids
                os._exit(0)
            os.waitpid(pid, 0)
        print("done")
        """,
    )
    assert out == ["done"]
    assert _status_fds() == before
