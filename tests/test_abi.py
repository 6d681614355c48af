"""ABI test: the uapi mirrors against the real Linux headers, through a C compiler.

Every module under :mod:`mockkernel.uapi` (and :mod:`mockkernel.ioctl`) declares
the header it mirrors in ``_HEADER``.  One C program includes all of them and
prints, for every name in each module's ``__all__``:

* int constants (macros and enum members) as exact integers;
* string constants;
* for each ``ctypes.Structure``/``Union``: ``sizeof``, ``_Alignof`` and, for
  every field (anonymous-union members and flexible array members included),
  ``offsetof``, the field's ``sizeof`` (not for flexible arrays) and whether an
  integer field is signed;
* function-like macros at a few sample arguments.

Each name is one test id, compared with the Python module.  The program is
compiled once per session (once per run under pytest-xdist: the workers share
the result through a locked cache file).  A name the compiler rejects fails on
its own, with the compiler's message; the others still run.

Headers come from ``$MOCKKERNEL_UAPI_INCLUDE`` or else from the project's own
``tools/fetch-uapi-headers.sh`` (Debian's ``linux-libc-dev`` and ``libibverbs-dev``,
fetched without root and cached; ``MOCKKERNEL_UAPI_FETCH=0`` stops it); rdma-core's
``infiniband/*.h`` (for ``mockkernel.uapi.rdma.rdma_core``) are in the same
include dir and are included after the kernel's.  Without a C compiler
or headers the C comparisons are skipped with the reason; the codec and
``vfio_tph`` layout tests need neither.

``mockkernel.uapi.linux.vfio_tph`` (the proposed TPH uAPI) has no header: it is
checked against the sizes and offsets stated in the patches and in
``kernel.md`` §5, and against the patch text compiled as C.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import importlib
import inspect
import json
import os
import pkgutil
import platform
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mockkernel.ioctl
import mockkernel.uapi
from mockkernel.ioctl import (
    _IO,
    _IOC,
    _IOC_DIR,
    _IOC_NR,
    _IOC_SIZE,
    _IOC_TYPE,
    _IOR,
    _IOW,
    _IOWR,
)
from mockkernel.uapi.linux import dma_buf, vfio, vfio_tph

REPO = Path(__file__).resolve().parent.parent
UAPI_HEADERS_TOOL = REPO / "tools" / "fetch-uapi-headers.sh"
#: How to enable the C comparisons, appended to every "no uapi headers" skip reason.
ENABLE_HINT = (
    "set MOCKKERNEL_UAPI_INCLUDE=DIR (the dir with linux/vfio.h) or run "
    "tools/fetch-uapi-headers.sh on Debian/Ubuntu"
)
ARCH_DIR = "x86_64-linux-gnu"

# --------------------------------------------------------------------------------------
# What to check
# --------------------------------------------------------------------------------------

#: Arguments for one-argument function-like macros (register decoders and the like).
_ONE_ARG_SAMPLES: tuple[int, ...] = (0, 1, 0x3B75, 0x40086200, 0xC0181B01, 0x12345678, 0xFFFFFFFF)
#: Arguments for the other macros: (Python args, C argument text).
MACRO_SAMPLES: dict[str, list[tuple[tuple[Any, ...], str]]] = {
    "_IOC": [
        ((0, 0, 0, 0), "_IOC_NONE, 0, 0, 0"),
        ((3, 0xFF, 0xFF, 0x3FFF), "_IOC_READ | _IOC_WRITE, 0xFF, 0xFF, 0x3FFF"),
        ((2, 0x3B, 0x75, 16), "_IOC_READ, 0x3B, 0x75, 16"),
        ((1, ord("b"), 1, 8), "_IOC_WRITE, 'b', 1, 8"),
    ],
    "_IO": [((ord(";"), 117), "';', 117"), ((0xFF, 0xFF), "0xFF, 0xFF")],
    "_IOR": [
        ((0x1B, 1, 24), "0x1B, 1, char[24]"),
        ((0xFF, 0xFF, 0x3FFF), "0xFF, 0xFF, char[0x3FFF]"),
    ],
    "_IOW": [((ord("b"), 0, 8), "'b', 0, __u64"), ((ord("u"), 0x42, 24), "'u', 0x42, char[24]")],
    "_IOWR": [((0x1B, 1, 24), "0x1B, 1, char[24]"), ((ord("b"), 2, 8), "'b', 2, __u64")],
    "RDMA_NL_GET_TYPE": [((5, 1), "5, 1"), ((5, 15), "5, 15"), ((2, 0x3FF), "2, 0x3FF")],
}

#: vfio_tph classes -> the C text of the proposed structs (copied from the patches).
TPH_C_SOURCE = """
/* tph-v1: [PATCH v1 1/2] vfio: add callback to get tph info for dma-buf */
struct tphv1_vfio_region_dma_tph {
	__u16 steering_tag;
	__u8 ph;
	__u8 reserved;
	__u32 reserved2;
};
struct tphv1_vfio_region_dma_range {
	union {
		__u64 offset;
		struct tphv1_vfio_region_dma_tph tph;
	};
	union {
		__u64 length;
		__u64 reserved;
	};
};
struct tphv1_vfio_device_feature_dma_buf {
	__u32	region_index;
	__u32	open_flags;
	__u32   flags;
	__u32   nr_ranges;
	struct tphv1_vfio_region_dma_range entries[];
};
/* tph-v2: [PATCH v2 1/2] vfio: add dma-buf get_tph callback and DMA_BUF_TPH feature */
struct tphv2_vfio_device_feature_dma_buf_tph {
	__s32	dmabuf_fd;
	__u16	steering_tag;
	__u8	ph;
	__u8	reserved;
};
/* tph-v11 (v7..v11) */
struct tphv11_vfio_device_feature_dma_buf_tph {
	__s32	dmabuf_fd;
	__u32	flags;
	__u16	steering_tag_ext;
	__u8	steering_tag;
	__u8	ph;
};
"""
TPH_C_STRUCTS = {
    "vfio_region_dma_tph": "tphv1_vfio_region_dma_tph",
    "vfio_region_dma_range_v1": "tphv1_vfio_region_dma_range",
    "vfio_device_feature_dma_buf_v1": "tphv1_vfio_device_feature_dma_buf",
    "vfio_device_feature_dma_buf_tph_v2": "tphv2_vfio_device_feature_dma_buf_tph",
    "vfio_device_feature_dma_buf_tph": "tphv11_vfio_device_feature_dma_buf_tph",
}


@dataclass
class Check:
    """One name: the C statements that print it and the values Python expects."""

    module: str  # "linux.vfio"
    name: str
    header: str | None
    statements: list[tuple[str, str]] = field(default_factory=list)  # (key, C statement)
    expected: dict[str, int | str] = field(default_factory=dict)
    problem: str | None = None  # a reason the name cannot be checked at all

    @property
    def id(self) -> str:
        return f"{self.module}::{self.name}"

    def add_int(self, what: str, c_expr: str, value: int) -> None:
        key = f"{self.id}:{what}"
        self.statements.append((key, f'P_INT("{key}", {c_expr});'))
        self.expected[key] = value

    def add_str(self, what: str, c_expr: str, value: str) -> None:
        key = f"{self.id}:{what}"
        self.statements.append((key, f'printf("%s\\t%s\\n", "{key}", {c_expr});'))
        self.expected[key] = value


def _c_fields(cls: type[Any]) -> Iterator[tuple[str, type[Any]]]:
    """The fields C can name, with anonymous struct/union members flattened."""
    anonymous = set(getattr(cls, "_anonymous_", ()))
    for entry in cls._fields_:
        name, ftype = entry[0], entry[1]
        if name in anonymous:
            yield from _c_fields(ftype)
        else:
            yield name, ftype


def _is_flexible(ftype: type[Any]) -> bool:
    return issubclass(ftype, ctypes.Array) and getattr(ftype, "_length_", None) == 0


def _signedness(ftype: type[Any]) -> int | None:
    code = getattr(ftype, "_type_", None)
    if issubclass(ftype, ctypes._SimpleCData) and isinstance(code, str) and code in "bBhHiIlLqQ":
        return int(code.islower())
    return None


def _add_record(check: Check, cls: type[Any], c_type: str) -> None:
    check.add_int("sizeof", f"sizeof({c_type})", ctypes.sizeof(cls))
    check.add_int("alignof", f"_Alignof({c_type})", ctypes.alignment(cls))
    for fname, ftype in _c_fields(cls):
        desc = getattr(cls, fname)
        member = f"((({c_type} *)0)->{fname})"
        check.add_int(f"offsetof.{fname}", f"offsetof({c_type}, {fname})", desc.offset)
        if not _is_flexible(ftype):
            check.add_int(f"sizeof.{fname}", f"sizeof{member}", desc.size)
        signed = _signedness(ftype)
        if signed is not None:
            check.add_int(f"signed.{fname}", f"((__typeof__{member})-1 < 0)", signed)


def _uapi_modules() -> list[ModuleType]:
    mods = [mockkernel.ioctl]
    for info in pkgutil.walk_packages(mockkernel.uapi.__path__, "mockkernel.uapi."):
        if not info.ispkg:
            mods.append(importlib.import_module(info.name))
    return mods


def _short(mod: ModuleType) -> str:
    return mod.__name__.removeprefix("mockkernel.uapi.").removeprefix("mockkernel.")


def _checks_for(mod: ModuleType) -> list[Check]:
    short = _short(mod)
    if not hasattr(mod, "_HEADER"):
        problem = f"{mod.__name__} declares no _HEADER (a header path, or None if it has none)"
        return [Check(short, "_HEADER", None, problem=problem)]
    header: str | None = mod._HEADER
    skip: frozenset[str] = frozenset(getattr(mod, "_NOT_IN_HEADER", ()))
    c_casts: dict[str, str] = dict(getattr(mod, "_C_CAST", {}))
    checks = []
    for name in getattr(mod, "__all__", ()):
        if name in skip:
            continue
        obj: Any = getattr(mod, name, None)
        if header is None:
            # No header: only the proposed TPH structs have a C text (from the patches);
            # the rest is checked by the vfio_tph tests below.
            if mod is vfio_tph and name in TPH_C_STRUCTS:
                check = Check(short, name, header)
                _add_record(check, obj, f"struct {TPH_C_STRUCTS[name]}")
                checks.append(check)
            continue
        check = Check(short, name, header)
        checks.append(check)
        if isinstance(obj, bool):
            check.problem = f"{name} is a bool, not a C constant"
        elif isinstance(obj, int):
            cast = c_casts.get(name)
            check.add_int("value", f"(({cast}){name})" if cast else name, obj)
        elif isinstance(obj, str):
            check.add_str("value", name, obj)
        elif inspect.isclass(obj) and issubclass(obj, ctypes.Structure):
            _add_record(check, obj, f"struct {name}")
        elif inspect.isclass(obj) and issubclass(obj, ctypes.Union):
            _add_record(check, obj, f"union {name}")
        elif inspect.isfunction(obj):
            samples = MACRO_SAMPLES.get(name)
            if samples is None and len(inspect.signature(obj).parameters) == 1:
                samples = [((v,), f"{v:#x}U") for v in _ONE_ARG_SAMPLES]
            if samples is None:
                check.problem = f"function {name}: add sample arguments to MACRO_SAMPLES"
            else:
                for args, c_args in samples:
                    check.add_int(f"({c_args})", f"{name}({c_args})", obj(*args))
        else:
            check.problem = (
                f"{name} ({type(obj).__name__}) is neither an int, str, ctypes record nor "
                "function: list it in the module's _NOT_IN_HEADER"
            )
    return checks


ALL_CHECKS: list[Check] = [c for mod in _uapi_modules() for c in _checks_for(mod)]

# --------------------------------------------------------------------------------------
# Compiler and headers
# --------------------------------------------------------------------------------------

C_PRELUDE = """\
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>
{includes}
#define P_INT(key, x) do {{ \\
	if ((x) < 0) printf("%s\\t%lld\\n", key, (long long)(x)); \\
	else printf("%s\\t%llu\\n", key, (unsigned long long)(x)); \\
}} while (0)
{tph}
int main(void)
{{
"""


@dataclass
class CResult:
    values: dict[str, str]  # key -> printed value
    errors: dict[str, str]  # check id -> compiler message


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _compiler() -> str | None:
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and (path := shutil.which(candidate)):
            return path
    return None


def _include_dir() -> tuple[Path | None, str]:
    """The include dir and where it came from, or None and why (one line)."""
    env = os.environ.get("MOCKKERNEL_UAPI_INCLUDE")
    if env:
        return Path(env), "$MOCKKERNEL_UAPI_INCLUDE"
    tool = UAPI_HEADERS_TOOL.relative_to(REPO)
    if os.environ.get("MOCKKERNEL_UAPI_FETCH") == "0":
        return None, f"$MOCKKERNEL_UAPI_INCLUDE is unset and MOCKKERNEL_UAPI_FETCH=0; {ENABLE_HINT}"
    if not UAPI_HEADERS_TOOL.exists():
        return None, f"$MOCKKERNEL_UAPI_INCLUDE is unset and {tool} is not here; {ENABLE_HINT}"
    try:
        proc = subprocess.run(
            ["bash", str(UAPI_HEADERS_TOOL)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{tool} failed: {exc}; {ENABLE_HINT}"
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        why = " ".join(proc.stderr.strip().splitlines()[-1:]) or f"exit status {proc.returncode}"
        return None, f"{why}; {ENABLE_HINT}"
    return Path(lines[-1]), str(tool)


def _header_path(inc: Path, header: str) -> Path | None:
    for base in (inc, inc / ARCH_DIR):
        if (base / header).is_file():
            return base / header
    return None


#: Include dirs of userspace libraries' headers (not kernel uapi): rdma-core 65.
USERSPACE_HEADER_DIRS = ("infiniband/",)


def _userspace_last(header: str) -> tuple[bool, str]:
    return header.startswith(USERSPACE_HEADER_DIRS), header


def _render(checks: list[Check]) -> tuple[str, dict[int, Check]]:
    # Kernel uapi headers first, rdma-core's (infiniband/) after: rdma-core ships its
    # own copy of rdma/ib_user_ioctl_verbs.h under the same include guard, so this
    # order makes the kernel's copy the one the rdma modules are checked against
    # (and keeps the kernel's RDMA_UAPI_PTR, a plain __aligned_u64).
    headers = sorted({c.header for c in checks if c.header}, key=_userspace_last)
    includes = "\n".join(f"#include <{h}>" for h in headers)
    source = C_PRELUDE.format(includes=includes, tph=TPH_C_SOURCE)
    lines = source.splitlines()
    line_map: dict[int, Check] = {}
    for check in checks:
        for _key, stmt in check.statements:
            lines.append("\t" + stmt)
            line_map[len(lines)] = check
    lines += ["\treturn 0;", "}", ""]
    return "\n".join(lines), line_map


def _compile_and_run(cc: str, inc: Path, checks: list[Check], build: Path) -> CResult:
    """Compile; drop the checks whose lines the compiler rejects and retry."""
    errors: dict[str, str] = {}
    for c in checks:
        if c.header and c.statements and _header_path(inc, c.header) is None:
            errors[c.id] = f"<{c.header}> not found under {inc}"
    live = [c for c in checks if c.statements and c.id not in errors]
    for _attempt in range(10):
        source, line_map = _render(live)
        src, exe = build / "abi.c", build / "abi"
        src.write_text(source)
        cmd = [
            cc,
            "-std=gnu11",
            "-o",
            str(exe),
            str(src),
            "-I",
            str(inc),
            "-I",
            str(inc / ARCH_DIR),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode == 0:
            run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=True)
            values = dict(line.split("\t", 1) for line in run.stdout.splitlines())
            return CResult(values, errors)
        bad: dict[str, str] = {}
        for m in re.finditer(r"^.*?abi\.c:(\d+):\d+: error: (.*)$", proc.stderr, re.M):
            check = line_map.get(int(m.group(1)))
            if check is not None:
                bad.setdefault(check.id, f"C compiler: {m.group(2)}")
        if not bad:
            raise RuntimeError(f"the ABI program does not compile:\n{' '.join(cmd)}\n{proc.stderr}")
        errors.update(bad)
        live = [c for c in live if c.id not in bad]
    raise RuntimeError("the ABI program still fails to compile after 10 rounds")


@pytest.fixture(scope="session")
def c_abi(tmp_path_factory: pytest.TempPathFactory) -> CResult:
    """Compile and run the ABI program once; shared by pytest-xdist workers."""
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip(f"the uapi mirrors are x86-64 layouts; this is {platform.machine()}")
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler (set $CC or install cc/gcc/clang)")
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the root all workers share
    with _locked(shared / "abi.lock"):
        inc, origin = _include_dir()
        if inc is None:
            pytest.skip(f"no uapi headers: {origin}")
        if not (inc / "linux" / "vfio.h").is_file():
            pytest.skip(f"no uapi headers: {inc} (from {origin}) has no linux/vfio.h")
        source, _ = _render([c for c in ALL_CHECKS if c.statements])
        digest = hashlib.sha256(f"{cc}\0{inc}\0{source}".encode()).hexdigest()[:16]
        cache = shared / f"abi-{digest}.json"
        if cache.exists():
            data = json.loads(cache.read_text())
            return CResult(data["values"], data["errors"])
        build = tmp_path_factory.mktemp("abi")
        result = _compile_and_run(cc, inc, ALL_CHECKS, build)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({"values": result.values, "errors": result.errors}))
        tmp.replace(cache)
        return result


# --------------------------------------------------------------------------------------
# The per-name ABI comparison
# --------------------------------------------------------------------------------------


@pytest.mark.real_headers
@pytest.mark.parametrize("check", ALL_CHECKS, ids=[c.id for c in ALL_CHECKS])
def test_abi(check: Check, request: pytest.FixtureRequest) -> None:
    if check.problem is not None:
        pytest.fail(check.problem)
    c_abi: CResult = request.getfixturevalue("c_abi")
    if check.id in c_abi.errors:
        pytest.fail(f"{check.name} is not what <{check.header}> defines: {c_abi.errors[check.id]}")
    mismatches = []
    for key, want in check.expected.items():
        got_text = c_abi.values.get(key)
        assert got_text is not None, f"the ABI program printed nothing for {key}"
        got: int | str = got_text if isinstance(want, str) else int(got_text)
        if got != want:
            what = key.removeprefix(check.id + ":")
            if isinstance(got, int) and isinstance(want, int):
                mismatches.append(f"{what}: C {got} ({got:#x}), Python {want} ({want:#x})")
            else:
                mismatches.append(f"{what}: C {got!r}, Python {want!r}")
    assert not mismatches, f"{check.id} differs from C:\n  " + "\n  ".join(mismatches)


def test_abi_covers_every_module() -> None:
    """Every uapi module is checked; the ones without a header are only vfio_tph."""
    short = {_short(m) for m in _uapi_modules()}
    assert {"ioctl", "linux.dma_buf", "linux.udmabuf", "linux.ioctls", "linux.vfio"} <= short
    assert {"linux.iommufd", "linux.pci_regs", "linux.vfio_tph"} <= short
    rdma = {"rdma_user_ioctl_cmds", "ib_user_ioctl_cmds", "ib_user_ioctl_verbs", "ib_user_verbs"}
    rdma |= {"mlx5_user_ioctl_cmds", "mlx5_user_ioctl_verbs", "rdma_core", "rdma_netlink"}
    assert {f"rdma.{m}" for m in rdma} <= short
    headerless = {_short(m) for m in _uapi_modules() if getattr(m, "_HEADER", "") is None}
    assert headerless == {"linux.vfio_tph"}


@pytest.mark.parametrize("mod", _uapi_modules(), ids=_short)
def test_all_lists_every_exported_name(mod: ModuleType) -> None:
    """``__all__`` names exist, and every public constant, record or function is listed."""
    exported = set(mod.__all__)
    missing = sorted(n for n in exported if not hasattr(mod, n))
    assert not missing, f"__all__ names that do not exist: {missing}"
    public = set()
    for name, obj in vars(mod).items():
        if (name.startswith("_") and not name.startswith("__")) or name.endswith("__"):
            continue
        own = (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == mod.__name__
        if own or (isinstance(obj, int | str) and not isinstance(obj, bool)):
            public.add(name)
    assert not sorted(public - exported), f"public names missing from __all__: {public - exported}"


# --------------------------------------------------------------------------------------
# The ioctl codec
# --------------------------------------------------------------------------------------

#: kernel.md §1: values computed against the 7.2 headers.
KERNEL_MD_TABLE: list[tuple[str, Callable[[], int], int]] = [
    ("VFIO_DEVICE_FEATURE", lambda: _IO(";", 117), 0x3B75),
    ("VFIO_DEVICE_FEATURE (module)", lambda: vfio.VFIO_DEVICE_FEATURE, 0x3B75),
    ("VFIO_DEVICE_GET_INFO", lambda: vfio.VFIO_DEVICE_GET_INFO, 0x3B6B),
    ("VFIO_DEVICE_RESET", lambda: vfio.VFIO_DEVICE_RESET, 0x3B6F),
    ("DMA_BUF_IOCTL_SYNC", lambda: _IOW("b", 0, ctypes.c_uint64), 0x40086200),
    ("DMA_BUF_IOCTL_SYNC (module)", lambda: dma_buf.DMA_BUF_IOCTL_SYNC, 0x40086200),
    ("DMA_BUF_SET_NAME_A", lambda: dma_buf.DMA_BUF_SET_NAME_A, 0x40046201),
    ("DMA_BUF_SET_NAME_B", lambda: dma_buf.DMA_BUF_SET_NAME_B, 0x40086201),
    ("DMA_BUF_SET_NAME", lambda: dma_buf.DMA_BUF_SET_NAME, 0x40086201),
    ("DMA_BUF_IOCTL_EXPORT_SYNC_FILE", lambda: dma_buf.DMA_BUF_IOCTL_EXPORT_SYNC_FILE, 0xC0086202),
    ("DMA_BUF_IOCTL_IMPORT_SYNC_FILE", lambda: dma_buf.DMA_BUF_IOCTL_IMPORT_SYNC_FILE, 0x40086203),
    ("RDMA_VERBS_IOCTL", lambda: _IOWR(0x1B, 1, 24), 0xC0181B01),
]


@pytest.mark.parametrize(
    ("expr", "want"),
    [(e, w) for _, e, w in KERNEL_MD_TABLE],
    ids=[n for n, _, _ in KERNEL_MD_TABLE],
)
def test_kernel_md_table(expr: Callable[[], int], want: int) -> None:
    assert expr() == want


def test_kernel_md_feature_framework() -> None:
    """kernel.md §3/§4 statements about the 7.2 uapi, as literal numbers."""
    assert ctypes.sizeof(vfio.vfio_device_feature) == 8
    assert vfio.vfio_device_feature.data.offset == 8
    assert (vfio.VFIO_DEVICE_FEATURE_MASK, vfio.VFIO_DEVICE_FEATURE_GET) == (0xFFFF, 1 << 16)
    assert (vfio.VFIO_DEVICE_FEATURE_SET, vfio.VFIO_DEVICE_FEATURE_PROBE) == (1 << 17, 1 << 18)
    assert vfio.VFIO_DEVICE_FEATURE_BUS_MASTER == 10
    assert vfio.VFIO_DEVICE_FEATURE_DMA_BUF == 11
    assert vfio.VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 == 12
    assert ctypes.sizeof(vfio.vfio_device_feature_dma_buf) == 16
    assert vfio.vfio_device_feature_dma_buf.dma_ranges.offset == 16
    assert ctypes.sizeof(vfio.vfio_region_dma_range) == 16
    assert vfio.VFIO_PCI_ROM_REGION_INDEX == 6
    assert ctypes.sizeof(dma_buf.dma_buf_sync) == 8
    assert dma_buf.DMA_BUF_NAME_LEN == 32


def test_codec_accepts_ctypes_types_and_chars() -> None:
    assert _IOW("b", 0, dma_buf.dma_buf_sync) == _IOW(ord("b"), 0, 8)
    assert _IOR(";", 1, ctypes.c_char * 0x3FFF) == 0xBFFF3B01
    assert _IOC_SIZE(_IOWR("u", 0x43, vfio.vfio_device_feature_dma_buf)) == 16


@given(
    d=st.integers(0, 3),
    t=st.integers(0, 0xFF),
    n=st.integers(0, 0xFF),
    s=st.integers(0, 0x3FFF),
)
def test_codec_round_trips_fields(d: int, t: int, n: int, s: int) -> None:
    cmd = _IOC(d, t, n, s)
    assert 0 <= cmd < 1 << 32
    assert (_IOC_DIR(cmd), _IOC_TYPE(cmd), _IOC_NR(cmd), _IOC_SIZE(cmd)) == (d, t, n, s)
    assert cmd == d << 30 | s << 16 | t << 8 | n  # kernel.md §1


@given(cmd=st.integers(0, 0xFFFFFFFF))
def test_codec_round_trips_commands(cmd: int) -> None:
    assert _IOC(_IOC_DIR(cmd), _IOC_TYPE(cmd), _IOC_NR(cmd), _IOC_SIZE(cmd)) == cmd


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((4, 0, 0, 0), ValueError),
        ((-1, 0, 0, 0), ValueError),
        ((0, 0x100, 0, 0), ValueError),
        ((0, -1, 0, 0), ValueError),
        ((0, "ab", 0, 0), ValueError),
        ((0, "", 0, 0), ValueError),
        ((0, "\u0100", 0, 0), ValueError),
        ((0, 0, 0x100, 0), ValueError),
        ((0, 0, -1, 0), ValueError),
        ((0, 0, 0, 1 << 14), ValueError),
        ((0, 0, 0, -1), ValueError),
        ((0, 0, 0, ctypes.c_char * (1 << 14)), ValueError),
        ((0, 0, 0, 1.0), TypeError),
        ((True, 0, 0, 0), TypeError),
    ],
    ids=repr,
)
def test_ioc_rejects_out_of_range_fields(args: tuple[Any, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        _IOC(*args)


# --------------------------------------------------------------------------------------
# vfio_tph: the proposed uAPI, against the numbers in the patches and kernel.md §5
# --------------------------------------------------------------------------------------


def _layout(cls: type[Any]) -> tuple[int, dict[str, int]]:
    return ctypes.sizeof(cls), {n: getattr(cls, n).offset for n, _ in _c_fields(cls)}


def test_tph_v1_layout() -> None:
    # seed thread: the TPH view is 2+1+1+4 bytes and overlays one 16-byte range.
    assert vfio_tph.VFIO_DMABUF_FLAG_TPH == 1 << 0
    assert _layout(vfio_tph.vfio_region_dma_tph) == (
        8,
        {"steering_tag": 0, "ph": 2, "reserved": 3, "reserved2": 4},
    )
    size, offsets = _layout(vfio_tph.vfio_region_dma_range_v1)
    assert (size, offsets) == (16, {"offset": 0, "tph": 0, "length": 8, "reserved": 8})
    # ... so it is layout-compatible with the upstream range it replaces.
    upstream = vfio.vfio_region_dma_range
    assert size == ctypes.sizeof(upstream)
    assert (upstream.offset.offset, upstream.length.offset) == (0, 8)
    # the feature header is unchanged (16 bytes); the array is renamed entries[].
    assert _layout(vfio_tph.vfio_device_feature_dma_buf_v1) == (
        16,
        {"region_index": 0, "open_flags": 4, "flags": 8, "nr_ranges": 12, "entries": 16},
    )
    assert ctypes.sizeof(vfio.vfio_device_feature_dma_buf) == 16


def test_tph_v1_extra_entry_reads_as_tph() -> None:
    entries = (vfio_tph.vfio_region_dma_range_v1 * 2)()
    entries[1].tph.steering_tag = 0xBEEF
    entries[1].tph.ph = 2
    raw = bytes(entries)[16:]
    assert raw[:4] == b"\xef\xbe\x02\x00"
    assert entries[1].offset == 0x02BEEF


def test_tph_v2_layout() -> None:
    # kernel.md §5: {s32 dmabuf_fd; u16 steering_tag; u8 ph; u8 reserved;} (8 B)
    assert vfio_tph.VFIO_DEVICE_FEATURE_DMA_BUF_TPH == 13
    assert _layout(vfio_tph.vfio_device_feature_dma_buf_tph_v2) == (
        8,
        {"dmabuf_fd": 0, "steering_tag": 4, "ph": 6, "reserved": 7},
    )


def test_tph_v11_layout() -> None:
    # kernel.md §5: 12 bytes, no padding; offsets 0, 4, 8, 10, 11.
    assert vfio_tph.VFIO_DEVICE_FEATURE_DMA_BUF_TPH == 13
    assert (vfio_tph.VFIO_DMA_BUF_TPH_ST, vfio_tph.VFIO_DMA_BUF_TPH_ST_EXT) == (1, 2)
    assert _layout(vfio_tph.vfio_device_feature_dma_buf_tph) == (
        12,
        {"dmabuf_fd": 0, "flags": 4, "steering_tag_ext": 8, "steering_tag": 10, "ph": 11},
    )
    arg = vfio_tph.vfio_device_feature_dma_buf_tph(dmabuf_fd=-1, steering_tag_ext=0x1234)
    assert bytes(arg) == b"\xff\xff\xff\xff\x00\x00\x00\x00\x34\x12\x00\x00"


def test_tph_signed_fd_fields() -> None:
    for cls in (
        vfio_tph.vfio_device_feature_dma_buf_tph_v2,
        vfio_tph.vfio_device_feature_dma_buf_tph,
    ):
        assert cls(dmabuf_fd=-1).dmabuf_fd == -1


def test_tph_feature_index_is_free_upstream() -> None:
    """13 is unassigned in 7.2 (kernel.md §3); the proposal must not collide."""
    indexes = {
        name: value
        for name, value in vars(vfio).items()
        if name.startswith("VFIO_DEVICE_FEATURE_")
        and isinstance(value, int)
        and name not in {"VFIO_DEVICE_FEATURE_MASK", "VFIO_DEVICE_FEATURE_GET"}
        and name not in {"VFIO_DEVICE_FEATURE_SET", "VFIO_DEVICE_FEATURE_PROBE"}
        and name not in {"VFIO_DEVICE_FEATURE_CLEAR_MASTER", "VFIO_DEVICE_FEATURE_SET_MASTER"}
    }
    assert sorted(indexes.values()) == list(range(13))
    assert vfio_tph.VFIO_DEVICE_FEATURE_DMA_BUF_TPH not in indexes.values()


def test_tph_profiles() -> None:
    profiles = vfio_tph.PROFILES
    assert set(profiles) == {"tph-v1", "tph-v2", "tph-v11"}
    v1, v2, v11 = profiles["tph-v1"], profiles["tph-v2"], profiles["tph-v11"]
    assert v1["vfio_region_dma_range"] is vfio_tph.vfio_region_dma_range_v1
    assert v1["vfio_device_feature_dma_buf"] is vfio_tph.vfio_device_feature_dma_buf_v1
    assert "VFIO_DEVICE_FEATURE_DMA_BUF_TPH" not in v1
    assert v2["vfio_device_feature_dma_buf_tph"] is vfio_tph.vfio_device_feature_dma_buf_tph_v2
    assert v11["vfio_device_feature_dma_buf_tph"] is vfio_tph.vfio_device_feature_dma_buf_tph
    assert v2["VFIO_DEVICE_FEATURE_DMA_BUF_TPH"] == v11["VFIO_DEVICE_FEATURE_DMA_BUF_TPH"] == 13
    for names in profiles.values():
        for name, obj in names.items():
            if isinstance(obj, int):
                assert getattr(vfio_tph, name) == obj
            else:
                assert obj.__name__.startswith(name)
