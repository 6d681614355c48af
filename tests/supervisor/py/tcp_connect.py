"""A listener and a connecting socket on a mock NIC address, in one program: run the
same in-process (``mockkernel run tcp_connect.py``) and supervised (``Kernel.run``),
it prints the same lines (both front-ends call ``net/tcp_sock.py``)."""

import errno
import select
import socket


def err(call):
    try:
        return call()
    except OSError as e:
        return errno.errorcode[e.errno]


srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("192.0.2.1", 0))
print("shutdown before listen:", err(lambda: srv.shutdown(socket.SHUT_RDWR)))
print("acceptconn:", srv.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN), end=" ")
srv.listen(1)
print(srv.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
port = srv.getsockname()[1]
cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
cli.connect(("192.0.2.1", port))
print("connect again:", err(lambda: cli.connect(("192.0.2.1", port))))
conn, _ = srv.accept()
print("ready:", select.select([conn, srv], [cli], [], 0)[:2] == ([], [cli]))
cli.sendall(b"ping")
print("ready:", select.select([conn, srv], [], [], 0)[0] == [conn])
print(conn.recv(10), cli.getpeername() == ("192.0.2.1", port))
conn.send(b"pong")
print(cli.recv(10))
print("shutdown 7:", err(lambda: cli.shutdown(7)))
cli.shutdown(socket.SHUT_WR)
print("after SHUT_WR:", conn.recv(10), err(lambda: cli.send(b"x")))
conn.shutdown(socket.SHUT_RD)
print("after SHUT_RD:", conn.recv(10))
cli.close()
conn.close()
srv.shutdown(socket.SHUT_RD)  # a listener shut for reading stops listening
print("acceptconn after SHUT_RD:", srv.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
srv.close()
