"""Blocking mock TCP sockets under the supervisor: a sleeping ``accept``/``recv`` is a
worker waiting on the kernel's wait queue (the pool hands the lead on), woken by another
process or thread of the tree; a signal or a kill ends the sleep with nothing leaked.
``c/sockblock.c`` (its real-Linux golden: ``test_sup_real_linux.py``) covers the rules
call by call; ``c/sockthreads.c`` the other threads being served meanwhile."""

from __future__ import annotations

import sys
from collections.abc import Callable

from mockkernel.kernel import Kernel

SERVER = r"""
import socket, subprocess, sys
srv = socket.socket()
srv.bind(("0.0.0.0", 0))  # INADDR_ANY: one kernel, the NIC's address reaches it
srv.listen(1)
port = srv.getsockname()[1]
client = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(port)])
conn, _ = srv.accept()  # sleeps until the other process connects
print(conn.getsockname()[0], conn.recv(100).decode())
conn.sendall(b"bye")
client.wait()
print("client exit", client.returncode)
"""
CLIENT = r"""
import socket, sys
c = socket.create_connection(("192.0.2.1", int(sys.argv[1])))
c.sendall(b"hello from another process")
assert c.recv(10) == b"bye"
"""


def test_server_and_client_in_two_processes(kernel: Kernel) -> None:
    """A Python server on 0.0.0.0 and a client connecting to the NIC's address, two
    supervised processes of one tree: the server's accept sleeps until the client
    (started after it) connects; the accepted connection names the NIC address."""
    with kernel.tracer.capture() as events:
        r = kernel.run(
            [sys.executable, "-c", SERVER, CLIENT], capture_output=True, text=True, timeout=60
        )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["192.0.2.1 hello from another process", "client exit 0"]
    assert [e["addr"] for e in events if e["event"] == "tcp.listen"] == ["0.0.0.0"]
    sleeps = [(e["why"], e["result"]) for e in events if e["event"] == "tcp.sleep"]
    assert ("accept", "ready") in sleeps  # (the client may have sent before the recv)
    assert kernel.leaks() == []


def test_other_threads_are_served_while_one_sleeps_in_recv(
    kernel: Kernel, build: Callable[[str], str]
) -> None:
    """Without the hand-off the 50 UDMABUF_CREATE calls would never be served (the
    reader sleeps until the main thread's send after them)."""
    r = kernel.run([build("sockthreads")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "reader slept: 1, served meanwhile: 50, still asleep: 1, then read: wake\n"
    assert kernel.leaks() == []


KILLED = r"""
import os, signal, socket, time
def listener():
    s = socket.socket()
    s.bind(("192.0.2.1", 0))
    s.listen(1)
    return s
srv, other = listener(), listener()
pids = []
for how in ("accept", "recv"):
    pid = os.fork()
    if pid == 0:
        if how == "accept":
            srv.accept()
        else:
            c = socket.create_connection(other.getsockname())
            c.recv(10)
        os._exit(1)
    pids.append(pid)
conn, _ = other.accept()  # the "recv" child's connection
def asleep(pid, nr):  # is it in the call (/proc/<pid>/syscall)?
    with open(f"/proc/{pid}/syscall") as f:
        return f.read().split()[0] == str(nr)
for pid, nr in zip(pids, (288, 45)):  # accept4, recvfrom
    for _ in range(5000):
        if asleep(pid, nr):
            break
        time.sleep(0.001)
    print("asleep", asleep(pid, nr))
    os.kill(pid, signal.SIGKILL)
    print("killed", os.waitpid(pid, 0)[1] == signal.SIGKILL)
conn.close()
srv.close()
other.close()
"""


def test_killed_while_asleep_leaks_nothing(kernel: Kernel) -> None:
    """Children killed while sleeping in accept and recv: the workers serving them
    give up (their notifications are no longer valid), the files go with the tree."""
    r = kernel.run([sys.executable, "-c", KILLED], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["asleep", "True", "killed", "True"] * 2
    assert kernel.leaks() == []
