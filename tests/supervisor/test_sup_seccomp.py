"""The seccomp structs and numbers are the real header's; the filter assembles right."""

from __future__ import annotations

import ctypes
import subprocess
from collections.abc import Callable

import pytest

from mockkernel.supervisor import seccomp as sc


def test_structs_and_numbers_match_the_real_header(build: Callable[[str], str]) -> None:
    out = subprocess.run([build("seccomp_abi")], capture_output=True, text=True, check=True)
    real = dict(line.rsplit(" ", 1) for line in out.stdout.splitlines())
    structs = {
        "seccomp_data": sc.SeccompData, "seccomp_notif": sc.SeccompNotif,
        "seccomp_notif_resp": sc.SeccompNotifResp, "seccomp_notif_addfd": sc.SeccompNotifAddfd,
        "seccomp_notif_sizes": sc.SeccompNotifSizes, "sock_filter": sc.SockFilter,
        "sock_fprog": sc.SockFprog,
    }  # fmt: skip
    mine: dict[str, int] = {}
    for name, cls in structs.items():
        mine[f"sizeof {name}"] = ctypes.sizeof(cls)
        for field, *_ in cls._fields_:
            key = f"offsetof {name}.{field}"
            if key in real:
                mine[key] = getattr(cls, field).offset
    for key in real:
        if not key.startswith(("sizeof", "offsetof")):
            mine[key] = getattr(sc, key)
    assert {k: int(v) for k, v in real.items()} == mine


def test_assembler_resolves_labels_forward() -> None:
    code = sc.assemble(
        [sc.ld(0), sc.jeq(1, jt="yes", jf="no"), sc.ret(1, label="no"), sc.ret(2, label="yes")]
    )
    assert code[1] == (sc.BPF_JEQ_K, 1, 0, 1)  # jt: skip one (to "yes"), jf: fall through


def test_assembler_refuses_a_jump_out_of_range() -> None:
    prog = [sc.jeq(0, jt="far"), *[sc.ld(0)] * 300, sc.ret(0, label="far")]
    with pytest.raises(ValueError, match="out of range"):
        sc.assemble(prog)


def test_the_filter_notifies_what_the_table_lists() -> None:
    code = sc.build_filter(["openat", "read"], trace_mmap=True)
    ks = {k for c, _jt, _jf, k in code if c == sc.BPF_JEQ_K}
    assert {sc.NR["openat"], sc.NR["read"], sc.NR["mmap"]} <= ks
    assert sc.NR["ioctl"] not in ks
    rets = {k for c, _jt, _jf, k in code if c == sc.BPF_RET_K}
    assert {sc.SECCOMP_RET_TRACE, sc.SECCOMP_RET_USER_NOTIF, sc.SECCOMP_RET_ALLOW} <= rets


def run_filter(
    code: list[tuple[int, int, int, int]], nr: int, *args: int, steps: list[int] | None = None
) -> int:
    """Classic BPF over a ``seccomp_data`` (x86-64): the action the filter returns
    (``steps``: gets one entry per instruction run)."""
    words = [0] * 16
    words[0], words[1] = nr, sc.AUDIT_ARCH_X86_64  # nr, arch; ip at 8
    for i, a in enumerate(args):
        words[4 + 2 * i], words[5 + 2 * i] = a & 0xFFFFFFFF, a >> 32
    acc, pc = 0, 0
    while True:
        c, jt, jf, k = code[pc]
        pc += 1
        if steps is not None:
            steps.append(pc)
        if c == sc.BPF_RET_K:
            return k
        if c == sc.BPF_LD_W_ABS:
            acc = words[k // 4]
        elif c == sc.BPF_JA:
            pc += k
        else:
            hit = {sc.BPF_JEQ_K: acc == k, sc.BPF_JGE_K: acc >= k, sc.BPF_JGT_K: acc > k,
                   sc.BPF_JSET_K: bool(acc & k)}[c]  # fmt: skip
            pc += jt if hit else jf


@pytest.mark.parametrize("name", sc.IN_WINDOW)
def test_range_calls_are_notified_only_inside_the_mapping_window(name: str) -> None:
    code = sc.build_filter(["openat", *sc.IN_WINDOW], trace_mmap=True)
    lo, hi = sc.WINDOW
    notify, allow = sc.SECCOMP_RET_USER_NOTIF, sc.SECCOMP_RET_ALLOW
    assert run_filter(code, sc.NR[name], lo, 4096, 1) == notify
    assert run_filter(code, sc.NR[name], hi - 4096, 4096, 1) == notify
    assert run_filter(code, sc.NR[name], hi, 4096, 1) == allow
    assert run_filter(code, sc.NR[name], lo - 4096, 4096, 1) == allow
    assert run_filter(code, sc.NR[name], 0x7F00_0000_0000, 4096, 1) == allow
    assert run_filter(code, sc.NR[name], 0x5555_0000_0000, 4096, 1) == allow
    assert run_filter(code, sc.NR["openat"], 0, 0, 0) == notify
    assert run_filter(code, sc.NR["mmap"], 0, 4096, 3, 1, 5, 0) == sc.SECCOMP_RET_TRACE


def test_madv_remove_is_notified_anywhere() -> None:
    """``MADV_REMOVE`` may punch a pinned memfd wherever its mapping is: trapped outside
    the window too (the advice is an ``int``: only the low half counts); every other
    advice outside the window costs nothing."""
    code = sc.build_filter(["openat", *sc.IN_WINDOW], trace_mmap=True)
    notify, allow = sc.SECCOMP_RET_USER_NOTIF, sc.SECCOMP_RET_ALLOW
    remove = sc.MADV_REMOVE
    for addr in (0x5555_0000_0000, 0x7F00_0000_0000, sc.WINDOW[0]):
        assert run_filter(code, sc.NR["madvise"], addr, 4096, remove) == notify
    assert run_filter(code, sc.NR["madvise"], 0x7F00_0000_0000, 4096, (1 << 32) | remove) == notify
    for advice in (0, 4, 8, 10, remove + 1, remove << 32):
        assert run_filter(code, sc.NR["madvise"], 0x7F00_0000_0000, 4096, advice) == allow
    # the other range calls keep the window rule whatever their third argument
    assert run_filter(code, sc.NR["mprotect"], 0x7F00_0000_0000, 4096, remove) == allow
    assert run_filter(code, sc.NR["msync"], 0x7F00_0000_0000, 4096, remove) == allow


def test_the_supervisor_filter_notifies_fallocate() -> None:
    from mockkernel.supervisor.handlers import TABLE

    code = sc.build_filter((s.name for s in TABLE.values()), trace_mmap=True)
    assert run_filter(code, sc.NR["fallocate"], 3, 3, 0, 4096) == sc.SECCOMP_RET_USER_NOTIF
    assert run_filter(code, sc.NR["fallocate"], 3, 0, 0, 4096) == sc.SECCOMP_RET_USER_NOTIF


@pytest.mark.parametrize("count", [0, 1, 2, 5, 17, len(sc.NR)])
def test_the_binary_search_traps_exactly_the_listed_calls(count: int) -> None:
    """The filter finds a syscall number by a binary search: every number the table
    lists is notified, every other one allowed (checked for all numbers up to 600)."""
    names = sorted(set(sc.NR) - {"mmap", *sc.IN_WINDOW})[:count]
    code = sc.build_filter(names, trace_mmap=True)
    listed = {sc.NR[n] for n in names}
    for nr in range(600):
        want = sc.SECCOMP_RET_ALLOW
        if nr in listed:
            want = sc.SECCOMP_RET_USER_NOTIF
        elif nr == sc.NR_IO_URING_SETUP:
            want = sc.SECCOMP_RET_ERRNO | 38  # ENOSYS
        elif nr == sc.NR["mmap"]:
            want = sc.SECCOMP_RET_TRACE  # (an fd, not MAP_ANONYMOUS)
        assert run_filter(code, nr, 0, 4096, 3, 1, 5, 0) == want, nr
    # an untrapped call runs a handful of instructions, not one per listed syscall
    steps: list[int] = []
    run_filter(code, 39, steps=steps)  # getpid
    assert len(steps) <= 14 + len(listed).bit_length() * 2
