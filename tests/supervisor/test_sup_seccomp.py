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
