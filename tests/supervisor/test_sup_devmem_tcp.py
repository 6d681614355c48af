"""Devmem TCP for supervised programs: a TCP socket bound to a mock NIC address becomes
the mock's (``supervisor/tcpsock.py``), sharing ``net/tcp_sock.py`` with the in-process
front-end.  ``examples/c/ncdevmem_rx.c`` prints what ``examples/ncdevmem_rx.py`` prints;
the error cases; a socket on a host address stays the host's."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path

import pytest

import mockkernel
from mockkernel.kernel import Kernel

HERE = Path(__file__).parent
REPO = HERE.parent.parent
EXAMPLE = REPO / "examples" / "ncdevmem_rx.py"
PAYLOAD = "devmem " * 1000  # 7000 bytes: two fragments
ARGS = ["eth0", "0", "192.0.2.1", "5201"]


def topology(tmp_path: Path, extra: str = "") -> Path:
    """The default topology with a scripted peer that sends ``PAYLOAD`` to port 5201."""
    text = (files("mockkernel") / "default_topology.toml").read_text()
    nic = text.index('driver = "mock_nic"')
    end = text.index("\n[[devices.bars]]", nic)
    options = f'\n[devices.options]\npeer_port = 5201\npeer_data = "{PAYLOAD}"\n{extra}'
    path = tmp_path / f"topology{len(extra)}.toml"
    path.write_text(text[:end] + options + text[end:])
    return path


def cli(topo: Path, *argv: str) -> list[str]:
    r = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", "--check-leaks", "--topology", str(topo),
         *argv],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (r.returncode, r.stderr) == (0, "")
    return r.stdout.splitlines()


@pytest.fixture
def nic_kernel(tmp_path: Path) -> Iterator[Kernel]:
    k = mockkernel.boot(topology(tmp_path))
    try:
        yield k
    finally:
        k.shutdown(check=True)


@pytest.mark.parametrize("extra", ["", "linear_payload = 100\n"])
def test_the_c_twin_prints_what_the_python_twin_prints(
    tmp_path: Path, build_uapi: Callable[[str], str], extra: str
) -> None:
    """In-process Python (``mockkernel run prog.py``) and the C binary under the
    supervisor (``mockkernel run -- ./prog``) print the same lines; with a linear
    payload the first 100 bytes come as ``SCM_DEVMEM_LINEAR``."""
    topo = topology(tmp_path, extra)
    want = cli(topo, str(EXAMPLE), *ARGS)
    first = 4096 - 100 if extra else 4096
    assert want[1] == f"frag: dmabuf 1 offset 0x0 size {first} token 1" or extra
    assert want[-1] == f"received 7000 bytes: {PAYLOAD[:64]!r}"
    assert cli(topo, "--", build_uapi("ncdevmem_rx"), *ARGS) == want


@pytest.mark.parametrize("program", ["c", "python"])
def test_kernel_run_of_both_twins(
    nic_kernel: Kernel, build_uapi: Callable[[str], str], program: str
) -> None:
    """Under ``Kernel.run`` the C binary and the Python program (supervised too: plain
    syscalls) are served by the same rules; the bind swaps one fd, traced."""
    argv = [build_uapi("ncdevmem_rx")] if program == "c" else [sys.executable, str(EXAMPLE)]
    with nic_kernel.tracer.capture() as events:
        r = nic_kernel.run([*argv, *ARGS], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    swaps = [e for e in events if e["event"] == "sup.tcp_socket"]
    assert [(e["addr"], e["port"]) for e in swaps] == [("192.0.2.1", 5201)]
    names = [e["event"] for e in events]
    assert "devmem_tcp.recvmsg" in names and "tcp.accept" in names
    assert r.stdout.splitlines() == [
        "bound RX queue 0: dmabuf id 1",
        "frag: dmabuf 1 offset 0x0 size 4096 token 1",
        "frag: dmabuf 1 offset 0x1000 size 2904 token 2",
        f"received 7000 bytes: {PAYLOAD[:64]!r}",
    ]
    assert nic_kernel.leaks() == []


def test_error_cases(nic_kernel: Kernel) -> None:
    """Bad tokens, bad lengths, recv without ``MSG_SOCK_DEVMEM``, a control buffer too
    small, bind twice, accept4 flags; host addresses and UDP stay the host's."""
    probe = HERE / "py" / "devmem_errors.py"
    with nic_kernel.tracer.capture() as events:
        r = nic_kernel.run(
            [sys.executable, str(probe), str(REPO / "examples"), "192.0.2.1", "5201"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "host bind: socket 127.0.0.1 EAGAIN",
        "udp bind to the NIC: EADDRNOTAVAIL",
        "connect, no listener: ECONNREFUSED",
        "mock bind: socket True False ('192.0.2.1', 5201)",
        "bind again: EINVAL",
        "recv before listen: ENOTCONN",
        "accept4 bad flags: EINVAL",
        "accepted: socket ('192.0.2.254', 40000)",
        "recvmsg without MSG_SOCK_DEVMEM: EFAULT",
        "recv without MSG_SOCK_DEVMEM: EFAULT",
        "control buffer too small: 525",  # ETOOSMALL, put_cmsg_notrunc
        "SO_RCVLOWAT: ENOTSUP",
        "first recvmsg: 100 [(0, 100, 1)]",
        "dontneed bad token: 0",
        "dontneed odd length: EINVAL",
        "dontneed 129 tokens: EINVAL",
        "dontneed the token: 1",
        "total: 7000 then read(): b''",
    ]
    # only the socket bound to the NIC address became the mock's
    swaps = [(e["addr"], e["port"]) for e in events if e["event"] == "sup.tcp_socket"]
    assert swaps == [("192.0.2.1", 5201)]
    assert [e["what"] for e in events if e["event"] == "devmem_tcp.not_modelled"] == ["SO_RCVLOWAT"]


def test_a_connecting_program_is_the_peer(nic_kernel: Kernel) -> None:
    """A supervised program connecting to a listener on the NIC address (another
    process of the tree) is that connection's remote peer: a readable flow when no
    queue is bound, both directions; the listener's close ends the client's stream."""
    script = r"""
import os, select, socket
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("192.0.2.1", 0))
srv.listen(1)
port = srv.getsockname()[1]
cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
cli.connect(("192.0.2.1", port))
conn, _ = srv.accept()
print(select.select([conn, srv], [cli], [], 0)[:2] == ([], [cli]))
cli.sendall(b"ping")
print(select.select([conn, srv], [], [], 0)[0] == [conn])
print(conn.recv(10), cli.getpeername() == ("192.0.2.1", port))
conn.send(b"pong")
print(cli.recv(10))
pid = os.fork()
if pid == 0:  # the child's copy of cli is the same socket
    cli.send(b"from the child")
    os._exit(0)
os.waitpid(pid, 0)
print(conn.recv(100))
cli.close()
print(conn.recv(10))
conn.close()
srv.close()
"""
    r = nic_kernel.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "True",
        "True",
        "b'ping' True",
        "b'pong'",
        "b'from the child'",
        "b''",
    ]
    assert nic_kernel.leaks() == []


def test_a_host_tcp_socket_is_not_touched(kernel: Kernel) -> None:
    """A TCP connection over loopback works as on the host (its bind, connect,
    listen, accept, send and recv are the real kernel's)."""
    script = r"""
import socket
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
cli = socket.create_connection(srv.getsockname())
conn, _ = srv.accept()
cli.sendall(b"x" * 100000)
cli.close()
got = b""
while chunk := conn.recv(65536):
    got += chunk
print(len(got))
"""
    with kernel.tracer.capture() as events:
        r = kernel.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["100000"]
    assert not [e for e in events if e["event"].startswith(("sup.tcp", "tcp."))]


TCP_CONNECT = [
    "shutdown before listen: ENOTCONN",
    "acceptconn: 0 1",
    "connect again: EISCONN",
    "ready: True",
    "ready: True",
    "b'ping' True",
    "b'pong'",
    "shutdown 7: EINVAL",
    "after SHUT_WR: b'' EPIPE",
    "after SHUT_RD: b''",
    "acceptconn after SHUT_RD: 0",
]


def test_both_front_ends_give_the_same_answers(kernel: Kernel, tmp_path: Path) -> None:
    """One program (``py/tcp_connect.py``: connect, select, shutdown, SO_ACCEPTCONN)
    in-process and supervised: the same lines, from the one ``TcpSocket``."""
    probe = str(HERE / "py" / "tcp_connect.py")
    r = kernel.run([sys.executable, probe], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == TCP_CONNECT
    inproc = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", "--check-leaks", probe],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert (inproc.returncode, inproc.stderr) == (0, "")
    assert inproc.stdout.splitlines() == TCP_CONNECT


def test_an_inet6_socket_on_a_v4_mapped_nic_address(nic_kernel: Kernel) -> None:
    """Upstream ``ncdevmem`` listens with ``AF_INET6`` on ``::ffff:<NIC address>``: the
    socket becomes the mock's and names its addresses as ``sockaddr_in6``; the
    scripted peer's bytes (no binding: a readable flow) arrive; ``::1`` stays the
    host's."""
    script = r"""
import socket
host = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
host.bind(("::1", 0))
print(host.getsockname()[0])
host.close()
srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
srv.bind(("::ffff:192.0.2.1", 5201))
srv.listen(1)
print(srv.getsockname())
conn, peer = srv.accept()
print(peer, conn.getsockname()[:2])
got = b""
while chunk := conn.recv(65536):
    got += chunk
print(len(got))
conn.close()
srv.close()
"""
    with nic_kernel.tracer.capture() as events:
        r = nic_kernel.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "::1",
        "('::ffff:192.0.2.1', 5201, 0, 0)",
        "('::ffff:192.0.2.254', 40000, 0, 0) ('::ffff:192.0.2.1', 5201)",
        "7000",
    ]
    assert [e["addr"] for e in events if e["event"] == "sup.tcp_socket"] == ["192.0.2.1"]
