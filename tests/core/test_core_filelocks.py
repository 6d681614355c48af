"""File locks on mock files (``fs/locks.c``): POSIX record locks are the process's, OFD and
``flock`` locks the open file description's; all are per inode, and go on close.

The single-process answers are in the ``generic_file`` golden (real Linux 7.2); what needs
two open file descriptions or two processes is checked here: two opens of
``/dev/udmabuf`` are two descriptions of one inode, and ``kernel.spawn()`` is a second
process.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
import threading

from core_helpers import DEV, udmabuf
from hypothesis import given, settings
from hypothesis import strategies as st

from mockkernel.filelock import FL_POSIX, OFFSET_MAX, FileLock, FileLocks
from mockkernel.fs import Inode
from mockkernel.kernel import Kernel
from mockkernel.syscalls.fd import F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, FLOCK_FMT


def flock_arg(typ: int, start: int = 0, length: int = 0) -> bytes:
    return struct.pack(FLOCK_FMT, typ, os.SEEK_SET, start, length, 0)


def getlk(fd: int, cmd: int, typ: int) -> tuple[int, int, int, int]:
    t, _w, s, n, pid = struct.unpack(FLOCK_FMT, fcntl.fcntl(fd, cmd, flock_arg(typ)))
    return t, s, n, pid


def errno_of(fn: object, *args: object) -> int:
    try:
        fn(*args)  # type: ignore[operator]
    except OSError as e:
        return e.errno or 0
    return 0


def test_ofd_locks_conflict_between_two_opens(mock_kernel: Kernel) -> None:
    a = os.open(DEV, os.O_RDWR)
    b = os.open(DEV, os.O_RDWR)
    try:
        fcntl.fcntl(a, F_OFD_SETLK, flock_arg(fcntl.F_WRLCK, 0, 10))
        assert errno_of(fcntl.fcntl, b, F_OFD_SETLK, flock_arg(fcntl.F_RDLCK)) == errno.EAGAIN
        assert getlk(b, F_OFD_GETLK, fcntl.F_RDLCK) == (fcntl.F_WRLCK, 0, 10, -1)
        fcntl.fcntl(b, F_OFD_SETLK, flock_arg(fcntl.F_RDLCK, 10, 5))  # beyond it: fine
        # a POSIX lock of this process conflicts with the OFD locks, not with itself
        assert errno_of(fcntl.fcntl, a, fcntl.F_SETLK, flock_arg(fcntl.F_RDLCK)) == errno.EAGAIN
        os.close(a)  # the description's last reference: its OFD lock goes
        a = -1
        fcntl.fcntl(b, F_OFD_SETLK, flock_arg(fcntl.F_WRLCK, 0, 10))
    finally:
        for fd in (a, b):
            if fd >= 0:
                os.close(fd)


def test_flock_conflicts_between_descriptions_and_goes_on_close(mock_kernel: Kernel) -> None:
    a = os.open(DEV, os.O_RDWR)
    b = os.open(DEV, os.O_RDWR)
    try:
        fcntl.flock(a, fcntl.LOCK_EX)
        assert errno_of(fcntl.flock, b, fcntl.LOCK_SH | fcntl.LOCK_NB) == errno.EWOULDBLOCK
        dup = os.dup(a)
        fcntl.flock(dup, fcntl.LOCK_SH)  # one description: a conversion, no conflict
        fcntl.flock(b, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared with shared
        assert errno_of(fcntl.flock, b, fcntl.LOCK_EX | fcntl.LOCK_NB) == errno.EWOULDBLOCK
        os.close(dup)
        os.close(a)  # last reference of the description: its lock goes
        a = -1
        fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        for fd in (a, b):
            if fd >= 0:
                os.close(fd)


def test_posix_locks_belong_to_the_process(mock_kernel: Kernel) -> None:
    a = os.open(DEV, os.O_RDWR)
    b = os.open(DEV, os.O_RDWR)
    other = mock_kernel.spawn("locker")
    c = other.sys_open(DEV, os.O_RDWR)
    buf = ctypes.create_string_buffer(struct.calcsize(FLOCK_FMT))
    try:
        fcntl.fcntl(a, fcntl.F_SETLK, flock_arg(fcntl.F_WRLCK))
        fcntl.fcntl(b, fcntl.F_SETLK, flock_arg(fcntl.F_WRLCK))  # same owner: no conflict
        buf.raw = flock_arg(fcntl.F_RDLCK)
        addr = ctypes.addressof(buf)
        assert errno_of(other.sys_fcntl, c, fcntl.F_SETLK, addr) == errno.EAGAIN
        other.sys_fcntl(c, fcntl.F_GETLK, addr)
        t, _w, _s, _n, pid = struct.unpack(FLOCK_FMT, buf.raw)
        assert (t, pid) == (fcntl.F_WRLCK, mock_kernel.init_process.pid)
        os.close(b)  # closing *any* fd of the inode drops this process's POSIX locks
        b = -1
        buf.raw = flock_arg(fcntl.F_RDLCK)
        other.sys_fcntl(c, fcntl.F_SETLK, addr)
        assert errno_of(fcntl.fcntl, a, fcntl.F_SETLK, flock_arg(fcntl.F_WRLCK)) == errno.EAGAIN
    finally:
        other.exit()
        for fd in (a, b):
            if fd >= 0:
                os.close(fd)


def test_setlkw_sleeps_until_the_lock_goes(mock_kernel: Kernel) -> None:
    dev_a = os.open(DEV, os.O_RDWR)
    dev_b = os.open(DEV, os.O_RDWR)
    try:
        fcntl.fcntl(dev_a, F_OFD_SETLK, flock_arg(fcntl.F_WRLCK))
        got = threading.Event()

        def waiter() -> None:
            fcntl.fcntl(dev_b, F_OFD_SETLKW, flock_arg(fcntl.F_WRLCK))
            got.set()

        t = threading.Thread(target=waiter)
        t.start()
        assert not got.is_set()  # (it cannot have the lock: dev_a holds it)
        fcntl.fcntl(dev_a, F_OFD_SETLK, flock_arg(fcntl.F_UNLCK))
        t.join()
        assert got.is_set()
    finally:
        os.close(dev_a)
        os.close(dev_b)


def test_bad_lock_arguments(mock_kernel: Kernel) -> None:
    ro = os.open(DEV, os.O_RDONLY)
    try:
        assert errno_of(fcntl.fcntl, ro, fcntl.F_SETLK, flock_arg(fcntl.F_WRLCK)) == errno.EBADF
        bad_whence = struct.pack(FLOCK_FMT, fcntl.F_RDLCK, 7, 0, 0, 0)
        assert errno_of(fcntl.fcntl, ro, fcntl.F_SETLK, bad_whence) == errno.EINVAL
        ofd_pid = struct.pack(FLOCK_FMT, fcntl.F_RDLCK, 0, 0, 0, 1)
        assert errno_of(fcntl.fcntl, ro, F_OFD_GETLK, ofd_pid) == errno.EINVAL
        too_far = flock_arg(fcntl.F_RDLCK, OFFSET_MAX, 2)
        assert errno_of(fcntl.fcntl, ro, fcntl.F_SETLK, too_far) == errno.EOVERFLOW
    finally:
        os.close(ro)


def test_fchmod_and_fchown_reach_the_inode(mock_kernel: Kernel) -> None:
    with udmabuf() as buf:
        os.fchmod(buf, 0o640)
        assert os.fstat(buf).st_mode & 0o7777 == 0o640
        st = os.fstat(buf)
        os.fchown(buf, -1, -1)
        if os.geteuid() != 0:
            assert errno_of(os.fchown, buf, st.st_uid + 1, -1) == errno.EPERM
        assert errno_of(os.posix_fallocate, buf, 0, 4096) == errno.ENODEV
        assert os.fstatvfs(buf).f_blocks == 0


def test_a_device_nodes_mode_and_rw_hint_are_the_nodes(mock_kernel: Kernel) -> None:
    """devtmpfs keeps one inode per node: an ``fchmod``, ``fchown`` or ``F_SET_RW_HINT``
    through one open is what ``stat`` of the path and every other open see."""
    from mockkernel.syscalls.fd import F_GET_RW_HINT, F_SET_RW_HINT

    a = os.open(DEV, os.O_RDWR)
    try:
        before = os.stat(DEV).st_mode
        if os.geteuid() != 0:
            assert errno_of(os.fchmod, a, 0o644) == errno.EPERM
            return
        os.fchmod(a, 0o640)
        b = os.open(DEV, os.O_RDWR)
        try:
            assert os.stat(DEV).st_mode == (before & ~0o7777) | 0o640
            assert os.fstat(b).st_mode & 0o7777 == 0o640
            hint = ctypes.c_uint64(3)  # RWH_WRITE_LIFE_MEDIUM
            fcntl.fcntl(a, F_SET_RW_HINT, bytes(hint))
            got = fcntl.fcntl(b, F_GET_RW_HINT, bytes(8))
            assert int.from_bytes(got, "little") == 3
        finally:
            os.close(b)
    finally:
        os.close(a)


# -- the range arithmetic, against a byte-by-byte model ---------------------------------

SPAN = 24
OWNERS = ("a", "b")
op = st.tuples(
    st.sampled_from(OWNERS),
    st.sampled_from((fcntl.F_RDLCK, fcntl.F_WRLCK, fcntl.F_UNLCK)),
    st.integers(0, SPAN - 1),
    st.integers(1, SPAN),
)


@given(st.lists(op, max_size=12))
@settings(max_examples=150, deadline=None)
def test_posix_ranges_match_a_byte_model(ops: list[tuple[str, int, int, int]]) -> None:
    """Set, split, merge and unlock of POSIX ranges, checked against a model that keeps
    each owner's lock type per byte: a lock is granted exactly when no other owner holds
    a conflicting byte, and afterwards every byte ``posix_test`` sees is the model's."""
    from mockkernel import boot

    k = boot()
    try:
        locks = k.subsys(FileLocks)
        inode = Inode(1, 0o600, dev=0x77)
        model: dict[str, list[int]] = {o: [fcntl.F_UNLCK] * (SPAN * 2) for o in OWNERS}
        for owner, typ, start, length in ops:
            end = start + length - 1
            other = model[OWNERS[1 - OWNERS.index(owner)]]
            blocked = typ != fcntl.F_UNLCK and any(
                other[i] == fcntl.F_WRLCK or (other[i] == fcntl.F_RDLCK and typ == fcntl.F_WRLCK)
                for i in range(start, end + 1)
            )
            req = FileLock(owner, 0, FL_POSIX, typ, start, end)
            try:
                locks.posix_set(inode, req, wait=False)
                assert not blocked
                for i in range(start, end + 1):
                    model[owner][i] = typ
            except OSError as e:
                assert blocked and e.errno == errno.EAGAIN
            ctx = locks.contexts.get((0x77, 1))
            for lk in ctx.posix if ctx is not None else []:
                same = [m for m in ctx.posix if m.owner == lk.owner and m is not lk]
                # an owner's locks never overlap, and touching ones of one type are merged
                assert all(m.end < lk.start or m.start > lk.end for m in same)
                assert all(
                    m.type != lk.type or (m.end + 1 < lk.start or m.start > lk.end + 1)
                    for m in same
                )
            for who in OWNERS:  # what the other owner would hit, byte by byte
                probe_owner = "probe-" + who
                for i in range(SPAN * 2):
                    hit = locks.posix_test(
                        inode, FileLock(probe_owner, 0, FL_POSIX, fcntl.F_WRLCK, i, i)
                    )
                    held = {model[o][i] for o in OWNERS} - {fcntl.F_UNLCK}
                    assert (hit is not None) == bool(held)
        for owner in OWNERS:
            locks.remove_posix(inode, owner)
        assert not locks.contexts
    finally:
        k.shutdown()


def _wait_until(cond: object) -> None:
    import time

    for _ in range(2000):  # (a wait for another thread to get there, not a timing check)
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.005)
    raise AssertionError("the other thread never got there")


def test_a_wait_that_closes_a_circle_is_edeadlk(mock_kernel: Kernel) -> None:
    """As real Linux 7.2 (a forked child waiting on its parent's lock; the parent's
    ``F_SETLKW`` of the child's range is ``EDEADLK``, its ``F_SETLK`` ``EAGAIN``, an OFD
    request is not checked): ``posix_locks_deadlock``."""
    a = os.open(DEV, os.O_RDWR)
    other = mock_kernel.spawn("locker")
    c = other.sys_open(DEV, os.O_RDWR)
    buf = ctypes.create_string_buffer(struct.calcsize(FLOCK_FMT))
    locks = mock_kernel.subsys(FileLocks)
    result: list[int] = []
    try:
        fcntl.fcntl(a, fcntl.F_SETLK, flock_arg(fcntl.F_WRLCK, 0, 1))
        buf.raw = flock_arg(fcntl.F_WRLCK, 10, 1)
        other.sys_fcntl(c, fcntl.F_SETLK, ctypes.addressof(buf))

        def child_waits() -> None:  # the other process waits for our byte 0
            arg = ctypes.create_string_buffer(flock_arg(fcntl.F_WRLCK, 0, 1))
            result.append(errno_of(other.sys_fcntl, c, fcntl.F_SETLKW, ctypes.addressof(arg)))

        t = threading.Thread(target=child_waits)
        t.start()
        _wait_until(lambda: locks.blocked)
        mine = flock_arg(fcntl.F_WRLCK, 10, 1)
        assert errno_of(fcntl.fcntl, a, fcntl.F_SETLK, mine) == errno.EAGAIN
        assert errno_of(fcntl.fcntl, a, fcntl.F_SETLKW, mine) == errno.EDEADLK
        assert errno_of(fcntl.fcntl, a, F_OFD_SETLK, flock_arg(fcntl.F_RDLCK, 10, 1)) == (
            errno.EAGAIN
        )
        fcntl.fcntl(a, fcntl.F_SETLK, flock_arg(fcntl.F_UNLCK, 0, 1))
        t.join()
        assert result == [0] and locks.blocked == []
    finally:
        other.exit()
        os.close(a)


def test_a_chain_of_three_owners_is_found() -> None:
    locks = FileLocks.__new__(FileLocks)
    locks.blocked = []
    p1, p2, p3 = object(), object(), object()
    held = {p: FileLock(p, i, FL_POSIX, fcntl.F_WRLCK, i, i) for i, p in enumerate((p1, p2, p3))}
    req1 = FileLock(p1, 0, FL_POSIX, fcntl.F_WRLCK, 1, 1)  # p1 waits for p2
    req2 = FileLock(p2, 1, FL_POSIX, fcntl.F_WRLCK, 2, 2)  # p2 waits for p3
    locks.blocked += [(req1, held[p2]), (req2, held[p3])]
    req3 = FileLock(p3, 2, FL_POSIX, fcntl.F_WRLCK, 0, 0)
    assert locks._deadlock(req3, held[p1])  # p3 -> p1 -> p2 -> p3
    assert not locks._deadlock(FileLock(object(), 9, FL_POSIX, fcntl.F_WRLCK), held[p1])
    from mockkernel.filelock import FL_OFDLCK

    assert not locks._deadlock(FileLock(p3, -1, FL_OFDLCK, fcntl.F_WRLCK), held[p1])
