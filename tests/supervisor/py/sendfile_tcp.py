"""sendfile(2) from files, pipes and directories into a TCP socket: what each answers.

Recorded on real Linux 7.2 with the loopback address (golden:
tests/real_linux/golden/sendfile_tcp.txt): ``run --sh 'ip link set lo up; python3
sendfile_tcp.py'``; the mockkernel tests run it on the mock NIC's address, supervised
and in-process."""

import errno
import os
import socket
import sys
import tempfile
from typing import Any


def e(f: Any, *a: Any) -> Any:
    try:
        return f(*a)
    except OSError as x:
        return errno.errorcode[x.errno or 0]


def main() -> None:
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    srv = socket.socket()
    srv.bind((addr, 0))
    srv.listen(1)
    c = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()
    fd, path = tempfile.mkstemp()
    os.write(fd, b"0123456789abcdef")
    os.lseek(fd, 0, 0)
    out = [
        ("no offset", e(os.sendfile, c.fileno(), fd, None, 4), os.lseek(fd, 0, 1)),
        ("offset", e(os.sendfile, c.fileno(), fd, 10, 3), os.lseek(fd, 0, 1)),
        ("count 0", e(os.sendfile, c.fileno(), fd, None, 0)),
        ("past end", e(os.sendfile, c.fileno(), fd, 100, 5)),
    ]
    wo = os.open(path, os.O_WRONLY)
    out.append(("write-only in", e(os.sendfile, c.fileno(), wo, None, 4)))
    r, w = os.pipe()
    os.write(w, b"pp")
    out.append(("pipe in", e(os.sendfile, c.fileno(), r, None, 2)))
    out.append(("dir in", e(os.sendfile, c.fileno(), os.open("/", os.O_RDONLY), None, 2)))
    out.append(("negative offset", e(os.sendfile, c.fileno(), fd, -1, 2)))
    out.append(("bad in fd", e(os.sendfile, c.fileno(), 999, None, 2)))
    out.append(("received", conn.recv(100)))
    for line in out:
        print(*line)
    os.unlink(path)


if __name__ == "__main__":
    main()
