# The Python side of tests/reuseport_test.ts.
#
#   reuseport_peer.py serve udp|tcp PORT   a reuse-port member named "python":
#                                          prints "ready", answers until killed
#   reuseport_peer.py client udp|tcp PORT  64 clients, each from its own source
#                                          port: prints "SPORT NAME" per client
import socket
import sys

mode, transport, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM

if mode == "serve":
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", port))
    if transport == "tcp":
        s.listen(128)
    print("ready", flush=True)
    while True:
        if transport == "udp":
            _, addr = s.recvfrom(2048)
            s.sendto(b"python", addr)
        else:
            c, _ = s.accept()
            c.sendall(b"python")
            c.close()

# Every client stays open until all are done, so no source port is used twice.
clients = []
for _ in range(64):
    c = socket.socket(socket.AF_INET, kind)
    c.settimeout(5)
    c.bind(("127.0.0.1", 0))
    sport = c.getsockname()[1]
    if transport == "udp":
        c.sendto(b"hi", ("127.0.0.1", port))
        name = c.recv(64)
    else:
        c.connect(("127.0.0.1", port))
        name = b""
        while True:
            chunk = c.recv(64)
            if not chunk:
                break
            name += chunk
    clients.append(c)
    print(sport, name.decode(), flush=True)
for c in clients:
    c.close()
