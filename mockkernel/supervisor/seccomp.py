"""seccomp user notification: the uAPI structs, ioctls, a BPF assembler and the filter.

The structs are byte-identical to ``include/uapi/linux/seccomp.h`` and
``linux/filter.h`` (``tests/supervisor/test_seccomp.py`` checks their sizes and
offsets against the real header).  The filter (:func:`build_filter`) is the one
program every supervised task runs on each syscall: ``SECCOMP_RET_USER_NOTIF`` for
the calls that may touch a mock fd or path, ``SECCOMP_RET_TRACE`` for ``mmap`` of
an fd (the tracer lays mock mappings; one filter, because across filters
``USER_NOTIF`` beats ``TRACE``), ``SECCOMP_RET_ALLOW`` for everything else.
"""

from __future__ import annotations

import ctypes
import errno
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from ..ioctl import _IOW, _IOWR

__all__ = [
    "AUDIT_ARCH_X86_64",
    "NR",
    "SECCOMP_ADDFD_FLAG_SEND",
    "SECCOMP_ADDFD_FLAG_SETFD",
    "SECCOMP_IOCTL_NOTIF_ADDFD",
    "SECCOMP_IOCTL_NOTIF_ID_VALID",
    "SECCOMP_IOCTL_NOTIF_RECV",
    "SECCOMP_IOCTL_NOTIF_SEND",
    "SECCOMP_USER_NOTIF_FLAG_CONTINUE",
    "Insn",
    "SeccompData",
    "SeccompNotif",
    "SeccompNotifAddfd",
    "SeccompNotifResp",
    "SeccompNotifSizes",
    "SockFilter",
    "SockFprog",
    "build_filter",
]

# -- include/uapi/linux/seccomp.h ---------------------------------------------------------
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_NOTIF_SIZES = 3
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_USER_NOTIF = 0x7FC00000
SECCOMP_RET_TRACE = 0x7FF00000
SECCOMP_RET_ALLOW = 0x7FFF0000
#: the ``SECCOMP_RET_DATA`` of a traced call other than ``mmap`` (its stop's event
#: message, which is 0 for ``mmap``)
TRACE_CALL = 1
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
SECCOMP_ADDFD_FLAG_SETFD = 1 << 0
SECCOMP_ADDFD_FLAG_SEND = 1 << 1
AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
#: refused with ENOSYS for the whole tree, as by a kernel built without io_uring: its
#: operations run in the kernel without a syscall seccomp could see, so on a mock fd they
#: would reach the placeholder (and IORING_OP_CLOSE would unhook a mock fd unseen)
NR_IO_URING_SETUP = 425
PR_SET_NO_NEW_PRIVS = 38
NR_SECCOMP = 317


class SeccompData(ctypes.Structure):
    """``struct seccomp_data``: what the filter and a notification see of a syscall."""

    _fields_ = [
        ("nr", ctypes.c_int),
        ("arch", ctypes.c_uint32),
        ("instruction_pointer", ctypes.c_uint64),
        ("args", ctypes.c_uint64 * 6),
    ]


class SeccompNotif(ctypes.Structure):
    """``struct seccomp_notif``: one trapped syscall (``pid`` is the thread's tid)."""

    _fields_ = [
        ("id", ctypes.c_uint64),
        ("pid", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("data", SeccompData),
    ]


class SeccompNotifResp(ctypes.Structure):
    """``struct seccomp_notif_resp``: the answer (``val``, or ``-error``, or CONTINUE)."""

    _fields_ = [
        ("id", ctypes.c_uint64),
        ("val", ctypes.c_int64),
        ("error", ctypes.c_int32),
        ("flags", ctypes.c_uint32),
    ]


class SeccompNotifAddfd(ctypes.Structure):
    """``struct seccomp_notif_addfd``: install one of our fds into the trapped task."""

    _fields_ = [
        ("id", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),
        ("srcfd", ctypes.c_uint32),
        ("newfd", ctypes.c_uint32),
        ("newfd_flags", ctypes.c_uint32),
    ]


class SeccompNotifSizes(ctypes.Structure):
    """``struct seccomp_notif_sizes`` (``SECCOMP_GET_NOTIF_SIZES``)."""

    _fields_ = [
        ("seccomp_notif", ctypes.c_uint16),
        ("seccomp_notif_resp", ctypes.c_uint16),
        ("seccomp_data", ctypes.c_uint16),
    ]


SECCOMP_IOC_MAGIC = "!"
SECCOMP_IOCTL_NOTIF_RECV = _IOWR(SECCOMP_IOC_MAGIC, 0, SeccompNotif)
SECCOMP_IOCTL_NOTIF_SEND = _IOWR(SECCOMP_IOC_MAGIC, 1, SeccompNotifResp)
SECCOMP_IOCTL_NOTIF_ID_VALID = _IOW(SECCOMP_IOC_MAGIC, 2, ctypes.c_uint64)
SECCOMP_IOCTL_NOTIF_ADDFD = _IOW(SECCOMP_IOC_MAGIC, 3, SeccompNotifAddfd)
SECCOMP_IOCTL_NOTIF_SET_FLAGS = _IOW(SECCOMP_IOC_MAGIC, 4, ctypes.c_uint64)
SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP = 1


# -- include/uapi/linux/filter.h and bpf_common.h -----------------------------------------
class SockFilter(ctypes.Structure):
    """``struct sock_filter``: one classic-BPF instruction."""

    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class SockFprog(ctypes.Structure):
    """``struct sock_fprog``: a BPF program."""

    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]


BPF_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
BPF_JGT_K = 0x25
BPF_JGE_K = 0x35
BPF_JSET_K = 0x45
BPF_JA = 0x05  # BPF_JMP | BPF_JA
BPF_RET_K = 0x06

_OFF_NR = SeccompData.nr.offset
_OFF_ARCH = SeccompData.arch.offset


def _arg_lo(i: int) -> int:
    return SeccompData.args.offset + 8 * i  # little endian: the low 32 bits first


def _arg_hi(i: int) -> int:
    return _arg_lo(i) + 4


# -- the assembler: labels instead of hand-counted jump offsets ---------------------------
@dataclass(frozen=True)
class Insn:
    """One instruction; ``jt``/``jf`` name a label (or ``None``: fall through)."""

    code: int
    k: int = 0
    jt: str | None = None
    jf: str | None = None
    label: str | None = None  # a label placed *at* this instruction


def ld(off: int, label: str | None = None) -> Insn:
    return Insn(BPF_LD_W_ABS, off, label=label)


def jeq(k: int, jt: str | None = None, jf: str | None = None) -> Insn:
    return Insn(BPF_JEQ_K, k, jt, jf)


def jge(k: int, jt: str | None = None, jf: str | None = None) -> Insn:
    return Insn(BPF_JGE_K, k, jt, jf)


def jset(k: int, jt: str | None = None, jf: str | None = None) -> Insn:
    return Insn(BPF_JSET_K, k, jt, jf)


def ret(action: int, label: str | None = None) -> Insn:
    return Insn(BPF_RET_K, action, label=label)


def assemble(prog: Sequence[Insn]) -> list[tuple[int, int, int, int]]:
    """Resolve labels into relative jumps; ``ValueError`` for a jump out of range."""
    where = {i.label: n for n, i in enumerate(prog) if i.label is not None}
    out = []
    for n, insn in enumerate(prog):
        if insn.code == BPF_JA:
            out.append((BPF_JA, 0, 0, where[insn.jt] - n - 1 if insn.jt else insn.k))
            continue
        offs = []
        for target in (insn.jt, insn.jf):
            off = 0 if target is None else where[target] - n - 1
            if not 0 <= off <= 255:
                raise ValueError(f"jump to {target!r} from {n} out of range")
            offs.append(off)
        out.append((insn.code, offs[0], offs[1], insn.k))
    return out


def to_fprog(
    code: Sequence[tuple[int, int, int, int]],
) -> tuple[SockFprog, ctypes.Array[SockFilter]]:
    """A ``sock_fprog`` for ``code`` (keep the array alive while the fprog is used)."""
    n = len(code)
    packed = struct.pack("<" + "HBBI" * n, *[v for insn in code for v in insn])
    arr = (SockFilter * n).from_buffer_copy(packed)  # (one copy: ~100x faster than n structs)
    return SockFprog(n, ctypes.cast(arr, ctypes.POINTER(SockFilter))), arr


# -- the filter ---------------------------------------------------------------------------
#: x86-64 syscall numbers the filter looks at (arch/x86/entry/syscalls/syscall_64.tbl)
NR = MappingProxyType({
    "read": 0, "write": 1, "open": 2, "close": 3, "stat": 4, "fstat": 5, "lstat": 6,
    "poll": 7, "lseek": 8, "mmap": 9, "mprotect": 10, "munmap": 11, "ioctl": 16,
    "pread64": 17, "pwrite64": 18, "readv": 19, "writev": 20, "access": 21, "select": 23,
    "mremap": 25, "msync": 26, "madvise": 28, "dup": 32, "dup2": 33, "sendmsg": 46,
    "recvmsg": 47, "socket": 41, "connect": 42, "accept": 43, "shutdown": 48, "listen": 50,
    "sendto": 44, "recvfrom": 45,
    "bind": 49, "getsockname": 51, "getpeername": 52, "setsockopt": 54, "getsockopt": 55,
    "execve": 59, "fcntl": 72, "fsync": 74, "fdatasync": 75,
    "ftruncate": 77, "getdents": 78, "getcwd": 79, "chdir": 80, "fchdir": 81,
    "readlink": 89, "statfs": 137, "fstatfs": 138,
    "getxattr": 191, "lgetxattr": 192, "fgetxattr": 193,
    "listxattr": 194, "llistxattr": 195, "flistxattr": 196, "getdents64": 217,
    "epoll_ctl": 233,
    "openat": 257, "newfstatat": 262, "readlinkat": 267, "faccessat": 269,
    "pselect6": 270, "ppoll": 271, "unshare": 272, "dup3": 292, "preadv": 295, "pwritev": 296,
    "accept4": 288,
    "recvmmsg": 299, "sendmmsg": 307, "execveat": 322, "rename": 82, "mkdir": 83,
    "rmdir": 84, "unlink": 87, "mkdirat": 258, "unlinkat": 263, "renameat": 264,
    "renameat2": 316, "sendfile": 40, "flock": 73, "fchmod": 91, "fchown": 93,
    "readahead": 187, "fadvise64": 221, "splice": 275, "tee": 276, "sync_file_range": 277,
    "vmsplice": 278,
    "copy_file_range": 326, "preadv2": 327, "pwritev2": 328,
    "statx": 332, "close_range": 436, "fallocate": 285,
    "openat2": 437, "faccessat2": 439,
    # attributes of paths and fds (attrs.py)
    "truncate": 76, "chmod": 90, "chown": 92, "lchown": 94, "utime": 132, "setxattr": 188,
    "lsetxattr": 189, "fsetxattr": 190, "removexattr": 197, "lremovexattr": 198,
    "fremovexattr": 199, "utimes": 235, "inotify_add_watch": 254, "inotify_rm_watch": 255,
    "fchownat": 260,
    "futimesat": 261, "fchmodat": 268, "utimensat": 280, "fanotify_mark": 301,
    "fchmodat2": 452, "setxattrat": 463, "getxattrat": 464, "listxattrat": 465,
    "removexattrat": 466,
})  # fmt: skip

MAP_ANONYMOUS = 0x20
#: ``madvise`` with this advice is trapped anywhere, not only in the window: it punches
#: a hole in the file mapped there, which may be a memfd whose pages a driver pinned
MADV_REMOVE = 9
#: calls about an address range: trapped only inside the window mock mappings are laid in
IN_WINDOW = ("mprotect", "madvise", "msync")
#: where the supervisor lays mock mappings (``mmap.py``), far from the ranges the host
#: kernel picks (top-down from below the stack, and the binary's brk area): an address
#: argument whose high 32 bits fall in ``[WINDOW[0] >> 32, WINDOW[1] >> 32)`` is the
#: window's, checked in the filter at no cost to every other call
WINDOW = (0x6000_0000_0000, 0x6100_0000_0000)


def marker_prefix(mark: int, mmap_word: int, other_word: int) -> list[Insn]:
    """ALLOW a syscall carrying the supervisor's injection marker (``ptrace.INJECT_MARK``
    in the high half of ``fd`` for ``mmap``, of the sixth argument otherwise); fall
    through for every other call.  It comes first: after a tracer rewrites a syscall
    seccomp checks it again, and a notification from the very thread the tracer
    injects into would deadlock."""
    return [
        ld(_OFF_NR),
        jeq(NR["mmap"], jt="mark_mmap"),
        ld(other_word),
        jeq(mark, jt="allow", jf="marked"),
        ld(mmap_word, label="mark_mmap"),
        jeq(mark, jt="allow", jf="marked"),
    ]


#: at most this many syscall numbers are compared one by one at a leaf of the search
_LEAF = 4


def _dispatch(cases: Sequence[tuple[int, str]], name: str) -> list[Insn]:
    """Jump to the label of the syscall number in the accumulator (``cases``: sorted
    ``(nr, label)``), else ``ret(ALLOW)``: a binary search over the numbers, so an
    untrapped call -- most calls a program makes -- runs ~7 comparisons, not one per
    trapped syscall (~60)."""
    if len(cases) <= _LEAF:
        return [*(jeq(nr, jt=label) for nr, label in cases), ret(SECCOMP_RET_ALLOW)]
    mid = len(cases) // 2
    upper = f"{name}.{cases[mid][0]}"
    low = _dispatch(cases[:mid], f"{name}<")
    high = _dispatch(cases[mid:], f"{name}>")
    first = high[0]
    high[0] = Insn(first.code, first.k, first.jt, first.jf, label=upper)
    return [jge(cases[mid][0], jt=upper), *low, *high]


def build_filter(
    notify: Iterable[str],
    trace_mmap: bool,
    allow_prefix: Sequence[Insn] = (),
    trace: Iterable[str] = (),
) -> list[tuple[int, int, int, int]]:
    """The supervisor's filter, assembled.

    ``allow_prefix`` comes first: instructions that end in ``ret(ALLOW)`` for the
    supervisor's own injected syscalls (their marker) and fall through otherwise.
    Then: a non-x86-64 ABI (i386 ``int 0x80``, x32) gets ``ENOSYS`` -- the supervisor
    decodes only the 64-bit ABI, and a call it cannot see must not reach a mock fd's
    placeholder; so does ``io_uring_setup`` (``NR_IO_URING_SETUP``).  The syscall
    number is found by a binary search (:func:`_dispatch`).  ``mmap`` of an fd (not
    ``MAP_ANONYMOUS``, fd not -1) is ``TRACE`` (or ``USER_NOTIF`` until the tracer
    maps); the calls in :data:`IN_WINDOW` outside :data:`WINDOW` are allowed at once
    (but ``madvise`` with ``MADV_REMOVE``); the rest of ``notify`` is ``USER_NOTIF`` --
    fds 0-2 included: a shell's ``echo 1 > /sys/...`` writes to a mock file at fd 1.
    The calls in ``trace`` are ``TRACE`` with :data:`TRACE_CALL` as the stop's data
    (``execve``: the tracer orders the real close-on-exec closes, ``execsys.py``).
    """
    names = sorted(set(notify) - {"mmap"})
    ranged = [n for n in names if n in IN_WINDOW]
    slow = [n for n in names if n not in IN_WINDOW]
    p: list[Insn] = [*allow_prefix]
    p += [ld(_OFF_ARCH, label="marked"), jeq(AUDIT_ARCH_X86_64, jf="enosys"), ld(_OFF_NR)]
    p += [jge(X32_SYSCALL_BIT, jt="enosys"), jeq(NR_IO_URING_SETUP, jt="enosys")]
    cases = [(NR["mmap"], "mmap")] + [(NR[n], "notify") for n in slow]
    cases += [(NR[n], "trace") for n in sorted(set(trace))]
    cases += [(NR[n], "madvise" if n == "madvise" else "window") for n in ranged]
    p += _dispatch(sorted(cases), "nr")
    if "madvise" in ranged:  # MADV_REMOVE anywhere: a punch of a memfd (punch.py)
        p += [ld(_arg_lo(2), label="madvise"), jeq(MADV_REMOVE, jt="notify", jf="window")]
    if ranged:
        p += [ld(_arg_hi(0), label="window"), jge(WINDOW[0] >> 32, jf="allow")]
        p += [jge(WINDOW[1] >> 32, jt="allow", jf="notify")]
    mmap_action = SECCOMP_RET_TRACE if trace_mmap else SECCOMP_RET_USER_NOTIF
    p += [ld(_arg_lo(3), label="mmap"), jset(MAP_ANONYMOUS, jt="allow")]
    p += [ld(_arg_lo(4)), jeq(0xFFFFFFFF, jt="allow"), ret(mmap_action)]
    p += [ret(SECCOMP_RET_ALLOW, label="allow")]
    p += [ret(SECCOMP_RET_USER_NOTIF, label="notify")]
    if trace:
        p += [ret(SECCOMP_RET_TRACE | TRACE_CALL, label="trace")]
    p += [ret(SECCOMP_RET_ERRNO | errno.ENOSYS, label="enosys")]
    return assemble(p)
