"""mkdir/rmdir/unlink/rename of a supervised program in the kernel's trees change the mock
tree only (``syscalls/namei.py``'s rules, shared with the in-process front-end): a shell
script that makes, moves and removes a node under ``/dev`` never touches the host's."""

from __future__ import annotations

import errno
import os
import sys

from mockkernel.kernel import Kernel

SCRIPT = """
mkdir /dev/mk_sup_test && echo made
mv /dev/mk_sup_test /dev/mk_sup_test2 && ls -d /dev/mk_sup_test2
rmdir /dev/mk_sup_test2 && echo removed
ls -d /dev/mk_sup_test2 2>/dev/null || echo absent
mkdir /sys/bus/pci/x 2>/dev/null || echo sysfs refused
rm /dev/null 2>/dev/null || echo null kept
mkdir "$HOSTDIR/d" && rmdir "$HOSTDIR/d" && echo host tree as usual
"""


def test_tree_changes_stay_in_the_mock(kernel: Kernel, tmp_path: os.PathLike[str]) -> None:
    with kernel.tracer.capture() as events:
        r = kernel.run(
            ["sh", "-c", SCRIPT], capture_output=True, text=True, timeout=60,
            env={**os.environ, "HOSTDIR": str(tmp_path)},
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
    want = ["made", "/dev/mk_sup_test2", "removed", "absent"]
    if os.geteuid() == 0:
        want += ["sysfs refused", "null kept"]
    else:  # /dev is root's: EACCES before anything
        want = ["absent", "sysfs refused", "null kept"]
    assert r.stdout.splitlines() == [*want, "host tree as usual"]
    assert not os.path.exists("/dev/mk_sup_test") and not os.path.exists("/dev/mk_sup_test2")
    assert os.path.exists("/dev/null")
    if os.geteuid() == 0:
        names = [e["event"] for e in events if e["event"].startswith("vfs.")]
        assert "vfs.mkdir" in names


def test_rename_between_the_trees_and_a_host_fs_is_exdev(
    kernel: Kernel, tmp_path: os.PathLike[str]
) -> None:
    prog = (
        "import os, sys\n"
        "for a, b in ((sys.argv[1], '/dev/udmabuf'), ('/dev/udmabuf', sys.argv[1])):\n"
        "    try:\n"
        "        os.rename(a, b)\n"
        "    except OSError as e:\n"
        "        print(e.errno)\n"
    )
    host = os.path.join(tmp_path, "f")
    open(host, "w").close()
    r = kernel.run([sys.executable, "-c", prog, host], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(errno.EXDEV)] * 2
    assert os.path.exists(host) and kernel.leaks() == []
