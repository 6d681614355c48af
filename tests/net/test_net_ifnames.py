"""``socket.if_nametoindex``/``if_indextoname``/``if_nameindex`` answer from the mock
kernel's network namespace (``lo`` and the NICs' net devices), with CPython's argument
conventions and the errors glibc gives on real Linux."""

from __future__ import annotations

import errno
import pathlib
import socket
from typing import Any

import pytest
from nlclient import GenlClient, u32

from mockkernel import Kernel
from mockkernel.net import net_state
from mockkernel.uapi.linux.netdev import NETDEV_A_DEV_IFINDEX, NETDEV_CMD_DEV_GET

# (through the module: a name bound here to a real function is rebound while installed)
from mockkernel.userspace import sockets as mk_sockets


def _outcome(fn: Any, *args: Any) -> tuple[str, str]:
    try:
        return ("ok", repr(fn(*args)))
    except Exception as e:
        return (type(e).__name__, str(e))


def test_names_and_indexes_are_the_mock_namespace(mock_kernel: Kernel) -> None:
    devices = net_state(mock_kernel).netdev.devices
    expected = sorted((i, d.name) for i, d in devices.items())
    assert expected[0] == (1, "lo") and len(expected) >= 2
    assert socket.if_nameindex() == expected
    for ifindex, name in expected:
        assert socket.if_nametoindex(name) == ifindex
        assert socket.if_nametoindex(name.encode()) == ifindex
        assert socket.if_nametoindex(pathlib.PurePosixPath(name)) == ifindex
        assert socket.if_indextoname(ifindex) == name
        assert socket.if_indextoname(ifindex + (1 << 32)) == name  # (unsigned int), as glibc


def test_the_ifindex_matches_what_netlink_reports(mock_kernel: Kernel, nl: GenlClient) -> None:
    netdev = nl.family("netdev")
    ifindex = socket.if_nametoindex("eth0")
    reply, ack = nl.request(netdev, NETDEV_CMD_DEV_GET, u32(NETDEV_A_DEV_IFINDEX, ifindex))
    assert reply.u32(NETDEV_A_DEV_IFINDEX) == ifindex
    assert ack.type == 2  # NLMSG_ERROR carrying 0


@pytest.mark.parametrize("name", ["nope0", "", "eth0 ", "x" * 40])
def test_unknown_names_fail_as_cpython_does(mock_kernel: Kernel, name: str) -> None:
    with pytest.raises(OSError) as exc:
        socket.if_nametoindex(name)
    assert exc.value.errno is None and str(exc.value) == "no interface with this name"


@pytest.mark.parametrize("bad", [5, None, 1.5])
def test_name_of_the_wrong_type_is_cpythons_typeerror(mock_kernel: Kernel, bad: Any) -> None:
    assert _outcome(socket.if_nametoindex, bad) == _outcome(mk_sockets.REAL_IF_NAMETOINDEX, bad)
    assert _outcome(socket.if_nametoindex, bad)[0] == "TypeError"


def test_unknown_index_is_enxio(mock_kernel: Kernel) -> None:
    for index in (0, 999, 1 << 40):
        with pytest.raises(OSError) as exc:
            socket.if_indextoname(index)
        assert exc.value.errno == errno.ENXIO


@pytest.mark.parametrize("bad", [-1, 1 << 64, "1", 1.0])
def test_bad_index_is_cpythons_error(mock_kernel: Kernel, bad: Any) -> None:
    assert _outcome(socket.if_indextoname, bad) == _outcome(mk_sockets.REAL_IF_INDEXTONAME, bad)
    assert _outcome(socket.if_indextoname, bad)[0] in ("OverflowError", "TypeError")


def test_a_netdev_that_goes_away_goes_from_the_names(mock_kernel: Kernel) -> None:
    from mockkernel.net import register_netdev, unregister_netdev
    from mockkernel.net.netdev import NetDevice

    dev = NetDevice("mk9", 1, 1)
    ifindex = register_netdev(mock_kernel, dev)
    assert socket.if_nametoindex("mk9") == ifindex
    assert (ifindex, "mk9") in socket.if_nameindex()
    unregister_netdev(mock_kernel, dev)
    with pytest.raises(OSError):
        socket.if_nametoindex("mk9")
    with pytest.raises(OSError) as exc:
        socket.if_indextoname(ifindex)
    assert exc.value.errno == errno.ENXIO


def test_uninstalled_the_real_functions_are_back(mock_kernel_factory: Any) -> None:
    kernel = mock_kernel_factory()
    redir = kernel.install()
    with redir:
        assert socket.if_nametoindex is not mk_sockets.REAL_IF_NAMETOINDEX
    assert socket.if_nametoindex is mk_sockets.REAL_IF_NAMETOINDEX
