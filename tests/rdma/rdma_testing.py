"""Helpers shared by the RDMA tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mockkernel.testing.rdma import Verbs
from mockkernel.topology import Topology, load_topology

HERE = Path(__file__).resolve().parent
#: the real-Linux guest of the uverbs goldens: 2 CPUs, rxe0 over enp0s2, no mlx5
RXE_TOPOLOGY: Topology = load_topology(HERE / "rxe_guest.toml")
VFIO_BDF = "0000:01:00.0"
MLX5_BDF = "0000:02:00.0"
PAGE = 4096
LOCAL_WRITE, REMOTE_WRITE, REMOTE_READ, REMOTE_ATOMIC = 1, 2, 4, 8
MW_BIND, ZERO_BASED, ON_DEMAND = 1 << 4, 1 << 5, 1 << 6
RW = LOCAL_WRITE | REMOTE_WRITE | REMOTE_READ


def errname(e: OSError) -> str:
    if e.errno == errno.EOPNOTSUPP:
        return "EOPNOTSUPP"
    return errno.errorcode.get(e.errno or 0, str(e.errno))


def call(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """``fn(*args)``, or the name of the errno it raised."""
    try:
        return fn(*args, **kw)
    except OSError as e:
        return errname(e)


def anon(pages: int) -> tuple[mmap.mmap, int]:
    """Fresh anonymous pages and their address."""
    import ctypes

    m = mmap.mmap(-1, pages * PAGE)
    return m, ctypes.addressof(ctypes.c_char.from_buffer(m))


def open_verbs(name: str = "mlx5_0") -> Verbs:
    return Verbs(name)


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def mlx5_variant(
    options: dict[str, Any] | None = None, uapi: str | None = None, **changes: Any
) -> Topology:
    """The default topology with the ConnectX function changed (fields, ``tph=``, options)."""
    import dataclasses

    from mockkernel.topology import default_topology

    topo = default_topology()
    devices = []
    for d in topo.devices:
        if d.bdf == MLX5_BDF:
            if options is not None:
                changes["options"] = options
            d = dataclasses.replace(d, **changes)
        devices.append(d)
    kernel = topo.kernel if uapi is None else dataclasses.replace(topo.kernel, uapi=uapi)
    return dataclasses.replace(topo, devices=tuple(devices), kernel=kernel)


def mlx5_tph(**changes: Any) -> Topology:
    """The default topology with the ConnectX function's TPH capability changed."""
    import dataclasses

    from mockkernel.topology import TphSpec, default_topology

    tph = default_topology().device(MLX5_BDF).tph
    assert tph is not None
    new: TphSpec | None = dataclasses.replace(tph, **changes)
    return mlx5_variant(tph=new)
