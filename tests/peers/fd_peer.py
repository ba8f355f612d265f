# Makes descriptors of the kinds named on the command line and passes them to
# tests/fd_test.ts over a Unix seqpacket connection, written against Python's
# socket module only.
#
#   fd_peer.py PATH KIND...
#
# It connects to PATH and sends one record: a JSON list with, for each kind,
# what the test needs to check the adopted socket (addresses, ports), and all
# the descriptors in one SCM_RIGHTS message, in the same order. It keeps its
# own ends (and copies) open, echoes each record that arrives on a connected
# end it kept, and exits when the test closes the connection.

import json
import os
import selectors
import socket
import sys

path, kinds = sys.argv[1], sys.argv[2:]
tmp = os.path.dirname(path)
keep, sent, info = [], [], []


def add(kind, fd, **extra):
    sent.append(fd)
    info.append({"kind": kind, **extra})


for i, kind in enumerate(kinds):
    if kind == "pipe":
        r, w = os.pipe()
        keep.append(w)
        add(kind, r)
    elif kind == "tcp-unbound":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        keep.append(s)
        add(kind, s.fileno())
    elif kind == "vsock":
        s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        keep.append(s)
        add(kind, s.fileno())
    elif kind in ("tcp-listener", "tcp6-listener"):
        family = socket.AF_INET if kind == "tcp-listener" else socket.AF_INET6
        host = "127.0.0.1" if kind == "tcp-listener" else "::1"
        s = socket.socket(family, socket.SOCK_STREAM)
        s.bind((host, 0))
        s.listen()
        keep.append(s)
        add(kind, s.fileno(), hostname=host, port=s.getsockname()[1])
    elif kind == "tcp-conn":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        listener.close()
        keep.extend([client, server])
        add(kind, client.fileno(), port=client.getsockname()[1], peer=server.getsockname()[1])
    elif kind == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        keep.append(s)
        add(kind, s.fileno(), port=s.getsockname()[1])
    elif kind in ("unix-stream-pair", "unix-dgram-pair", "seqpacket-pair"):
        t = {"unix-stream-pair": socket.SOCK_STREAM, "unix-dgram-pair": socket.SOCK_DGRAM,
             "seqpacket-pair": socket.SOCK_SEQPACKET}[kind]
        a, b = socket.socketpair(socket.AF_UNIX, t)
        keep.extend([a, b])
        add(kind, a.fileno())
    elif kind in ("unix-listener", "seqpacket-listener", "unix-dgram"):
        t = {"unix-listener": socket.SOCK_STREAM, "seqpacket-listener": socket.SOCK_SEQPACKET,
             "unix-dgram": socket.SOCK_DGRAM}[kind]
        s = socket.socket(socket.AF_UNIX, t)
        name = os.path.join(tmp, f"{kind}-{i}.sock")
        s.bind(name)
        if t != socket.SOCK_DGRAM:
            s.listen()
        keep.append(s)
        add(kind, s.fileno(), path=name)
    elif kind == "netlink":
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        s.bind((0, 0))
        keep.append(s)
        add(kind, s.fileno(), pid=s.getsockname()[0])
    else:
        sys.exit(f"fd_peer.py: unknown kind {kind}")

conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
conn.connect(path)
socket.send_fds(conn, [json.dumps(info).encode()], sent)

# Echo on every connected end kept: what the adopted socket writes comes back.
sel = selectors.DefaultSelector()
sel.register(conn, selectors.EVENT_READ)
for s in keep:
    if not isinstance(s, socket.socket) or s.fileno() in sent:
        continue
    try:
        s.getpeername()
    except OSError:
        continue
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select(timeout=20):
        s = key.fileobj
        if s is conn:
            if not conn.recv(1):
                sys.exit(0)
            continue
        data = s.recv(65536)
        if data:
            s.send(data)
        else:
            sel.unregister(s)
