"""``fcntl.ioctl``'s hot path (``hotpath.m_ioctl``) decides as ``ioctl(2)`` does.

Untraced, a mock fd's ``bytearray`` or ``int`` argument is dispatched from a per-ops
table (``IoctlCalls.ioctl_table``): the driver's ``ioctls`` less the commands
``do_vfs_ioctl`` answers first, and nothing for ops with an ``unlocked_ioctl`` of their
own.  A real fd's call is the real one at once for a command below every interface
ioctl, and otherwise asks whether it is one (by its 32 bits, as the real call reads it).
Each test compares the hot path with the general one (tracing on, or another argument
kind) or with what CPython's own ``fcntl.ioctl`` says.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
import termios
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mockkernel
from mockkernel import Kernel
from mockkernel.driver import DriverRegistry, File, FileOperations
from mockkernel.fs import IoctlU64
from mockkernel.ioctl import _IO, _IOW, _IOWR

PTR = _IOWR("K", 1, 8)
INT = _IO("K", 2)
U64 = _IOW("K", 3, 8)
_fixture_ok = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=100
)


class Calls:
    """What the test driver's handlers saw, shared by its ops tables."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, int]] = []


CALLS = Calls()  # (reset by the fixture; read only through it)


def _ptr(file: File, cmd: int, arg: int) -> int:
    from mockkernel.uaccess import copy_from_user, copy_to_user

    data = copy_from_user(arg, 8)
    CALLS.seen.append(("ptr", cmd, int.from_bytes(data, "little")))
    copy_to_user(arg, (int.from_bytes(data, "little") + 1).to_bytes(8, "little"))
    return 7


def _int(file: File, cmd: int, arg: int) -> int:
    CALLS.seen.append(("int", cmd, arg))
    return arg & 0xFF


def _u64(file: File, cmd: int, value: int) -> int:
    CALLS.seen.append(("u64", cmd, value))
    return value & 0xFF


def _cloexec(file: File, cmd: int, arg: int) -> int:
    CALLS.seen.append(("driver FIOCLEX", cmd, arg))
    return 0


class PlainOps(FileOperations):
    name = "mkfast"
    ioctls = {
        PTR: _ptr,
        INT: _int,
        U64: IoctlU64(_u64),
        termios.FIOCLEX: _cloexec,  # never reached: do_vfs_ioctl answers it first
    }


class OwnIoctlOps(FileOperations):
    """An ``unlocked_ioctl`` of its own: its ``ioctls`` table is not the dispatch."""

    name = "mkown"
    ioctls = {INT: _int}

    def unlocked_ioctl(self, file: File, cmd: int, arg: int) -> int:
        CALLS.seen.append(("own", cmd, arg))
        return 3


class FastPlugin:
    @mockkernel.hookimpl
    def mockkernel_register(self, registry: DriverRegistry) -> None:
        registry.add_module("mkfast", self._init, self._exit)

    @staticmethod
    def _init(kernel: Kernel) -> None:
        kernel.misc_register("mkfast", PlainOps())
        kernel.misc_register("mkown", OwnIoctlOps())

    @staticmethod
    def _exit(kernel: Kernel) -> None:
        kernel.misc_deregister("mkfast")
        kernel.misc_deregister("mkown")


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = mockkernel.boot(plugins=[FastPlugin()])
    redir = k.install()
    CALLS.seen.clear()
    try:
        yield k
    finally:
        redir.uninstall()
        k.shutdown()


@pytest.fixture
def dev(kernel: Kernel) -> Iterator[int]:
    fd = os.open("/dev/mkfast", os.O_RDWR)
    yield fd
    os.close(fd)


def _both(kernel: Kernel, call: Callable[[], Any]) -> list[tuple[object, list[Any]]]:
    """``call`` untraced (the hot path) and traced (the general path): each one's value
    or errno, and what the handlers saw."""
    out = []
    for traced in (False, True):
        CALLS.seen.clear()
        try:
            if traced:
                with kernel.tracer.capture():
                    got: object = call()
            else:
                got = call()
        except OSError as e:
            assert e.errno is not None
            got = errno.errorcode[e.errno]
        out.append((got, list(CALLS.seen)))
    return out


def test_a_pointer_handler_sees_and_writes_the_callers_buffer(kernel: Kernel, dev: int) -> None:
    for traced_result in _both(kernel, lambda: _roundtrip(dev)):
        assert traced_result == ((7, bytearray(struct.pack("<Q", 42))), [("ptr", PTR, 41)])


def _roundtrip(fd: int) -> tuple[int, bytearray]:
    buf = bytearray(struct.pack("<Q", 41))
    return fcntl.ioctl(fd, PTR, buf), buf


@_fixture_ok
@given(arg=st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, -1, 2**31 - 1])))
def test_an_int_argument_is_a_c_int_on_either_path(kernel: Kernel, dev: int, arg: int) -> None:
    fast, traced = _both(kernel, lambda: fcntl.ioctl(dev, INT, arg))
    assert fast == traced == (arg & 0xFF, [("int", INT, arg & 0xFFFFFFFF)])


@pytest.mark.parametrize("arg", [2**31, -(2**31) - 1, 2**63])
def test_an_int_outside_a_c_int_overflows_as_cpython_says(dev: int, arg: int) -> None:
    with pytest.raises(OverflowError) as mine:
        fcntl.ioctl(dev, INT, arg)
    r, w = os.pipe()
    try:
        with pytest.raises(OverflowError) as real:
            fcntl.ioctl(r, termios.FIONREAD, arg)
    finally:
        os.close(r)
        os.close(w)
    assert str(mine.value) == str(real.value)


@_fixture_ok
@given(value=st.integers(0, 2**64 - 1), extra=st.binary(max_size=16))
def test_a_u64_handler_gets_the_same_value_either_way(
    kernel: Kernel, dev: int, value: int, extra: bytes
) -> None:
    data = struct.pack("<Q", value) + extra
    fast, traced = _both(kernel, lambda: fcntl.ioctl(dev, U64, bytearray(data)))
    assert fast == traced == (value & 0xFF, [("u64", U64, value)])
    fast, traced = _both(kernel, lambda: fcntl.ioctl(dev, U64, data))  # bytes: bytes back
    assert fast == traced == (data, [("u64", U64, value)])


def test_a_u64_handler_with_an_int_argument_reads_at_that_address(dev: int) -> None:
    assert errno.errorcode[_errno(lambda: fcntl.ioctl(dev, U64, 16))] == "EFAULT"
    assert CALLS.seen == []


def _errno(call: Callable[[], Any]) -> int:
    with pytest.raises(OSError) as e:
        call()
    assert e.value.errno is not None
    return e.value.errno


def test_vfs_commands_are_the_cores_even_in_a_driver_table(kernel: Kernel, dev: int) -> None:
    os.set_inheritable(dev, True)
    for traced in (False, True):
        os.set_inheritable(dev, True)
        if traced:
            with kernel.tracer.capture():
                assert fcntl.ioctl(dev, termios.FIOCLEX, 0) == 0
        else:
            assert fcntl.ioctl(dev, termios.FIOCLEX, 0) == 0
        assert not os.get_inheritable(dev)
    assert CALLS.seen == []


def test_an_own_unlocked_ioctl_is_called_not_the_table(kernel: Kernel) -> None:
    fd = os.open("/dev/mkown", os.O_RDWR)
    try:
        fast, traced = _both(kernel, lambda: fcntl.ioctl(fd, INT, 5))
        assert fast == traced == (3, [("own", INT, 5)])
        fast, traced = _both(kernel, lambda: fcntl.ioctl(fd, PTR, bytearray(8)))
        assert fast[1] == traced[1] and fast[1][0][:2] == ("own", PTR)
    finally:
        os.close(fd)


def test_unknown_commands_are_enotty_and_leave_the_buffer(kernel: Kernel, dev: int) -> None:
    buf = bytearray(b"12345678")
    for result in _both(kernel, lambda: fcntl.ioctl(dev, _IOWR("K", 99, 8), buf)):
        assert result == ("ENOTTY", [])
    assert buf == b"12345678"


@pytest.mark.parametrize("request_", [float(INT), str(INT), None])
def test_a_request_that_is_not_an_int_is_a_type_error(dev: int, request_: Any) -> None:
    """A float equal to a command must not find its handler (CPython refuses it)."""
    with pytest.raises(TypeError):
        fcntl.ioctl(dev, request_, 0)
    assert CALLS.seen == []


def test_an_int_subclass_fd_and_command_are_their_values(kernel: Kernel, dev: int) -> None:
    class Num(int):
        pass

    assert fcntl.ioctl(Num(dev), INT, 9) == 9
    assert fcntl.ioctl(dev, Num(INT), 10) == 10
    assert [s[0] for s in CALLS.seen] == ["int", "int"]


# -- real fds ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "request_",
    [
        termios.FIONREAD,
        termios.FIONREAD + 2**32,
        termios.FIONREAD - 2**32,
        0x80045430,  # TIOCGPTN: above every interface ioctl
        0x8933,  # SIOCGIFINDEX on a pipe: not a socket, the real call's ENOTTY
        0x89E0,
        2**32 - 1,
        -1,
        "x",
        1.5,
    ],
)
def test_a_real_fds_ioctl_is_the_real_one(kernel: Kernel, request_: Any) -> None:
    """The same answer, and the same error text, as CPython's own ``fcntl.ioctl``."""
    r, w = os.pipe()
    try:
        os.write(w, b"abc")
        want = _outcome(lambda: _real_ioctl()(r, request_, bytearray(4)))
        assert _outcome(lambda: fcntl.ioctl(r, request_, bytearray(4))) == want
    finally:
        os.close(r)
        os.close(w)


def _real_ioctl() -> Callable[..., Any]:
    from mockkernel.realfd import REAL

    fn: Callable[..., Any] = REAL.ioctl
    return fn


def _outcome(call: Callable[[], Any]) -> object:
    try:
        return call()
    except (OSError, TypeError, OverflowError) as e:
        return (type(e), str(e))


@pytest.mark.parametrize("high", [0, 2**32, -(2**32)])
def test_an_interface_ioctl_on_a_real_socket_is_the_kernels_by_its_32_bits(
    kernel: Kernel, high: int
) -> None:
    """``SIOCGIFINDEX`` (a getter: harmless if it went astray) with bits above 32 (the
    real call drops them) still never reaches the host: the mock's ``eth0`` answers with
    its own index (the host's ``eth0``, if any, has another)."""
    from mockkernel.net import net_state

    (index,) = [i for i, d in net_state(kernel).netdev.devices.items() if d.name == "eth0"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        r = fcntl.ioctl(s.fileno(), 0x8933 + high, struct.pack("16s24x", b"eth0"))
        assert struct.unpack_from("=i", r, 16)[0] == index
