# A real AF_UNIX SOCK_SEQPACKET peer for tests/seqpacket_test.ts, written
# against Python's socket module only.
#
#   seqpacket_peer.py server PATH          accept one connection and echo each
#                                           record; a record with descriptors
#                                           is answered with their contents
#   seqpacket_peer.py client PATH SIZE...  send records of these sizes, then
#                                           read the same records back
#   seqpacket_peer.py sendfds PATH FILE... send one record "files" with the
#                                           files open as descriptors
#
# It prints "ready PID UID GID" once it can be talked to and, at the end, one
# JSON line with what it saw. Every socket sets SO_PASSCRED, so a 0-byte read
# without credentials is end of stream and a 0-byte record is a record.

import array
import json
import os
import socket
import struct
import sys

CRED = struct.calcsize("3i")
CONTROL = socket.CMSG_SPACE(CRED) + socket.CMSG_SPACE(253 * 4)


def pattern(index, size):
    return bytes((i * 7 + index) & 0xFF for i in range(size))


def open_socket():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    return s


def ready():
    print("ready", os.getpid(), os.getuid(), os.getgid(), flush=True)


def receive(s):
    """One record as (data, fds), or None at end of stream."""
    data, ancillary, _flags, _addr = s.recvmsg(1 << 20, CONTROL)
    fds, creds = [], None
    for level, kind, body in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            a = array.array("i")
            a.frombytes(body[: len(body) - len(body) % a.itemsize])
            fds.extend(a)
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            creds = struct.unpack("3i", body)
    if not data and creds is None:
        return None
    return data, fds


def peer_credentials(s):
    return list(struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, CRED)))


def server(path):
    listener = open_socket()
    listener.bind(path)
    listener.listen(1)
    ready()
    conn, _ = listener.accept()
    sizes = []
    while True:
        record = receive(conn)
        if record is None:
            break
        data, fds = record
        sizes.append(len(data))
        if fds:
            contents = []
            for fd in fds:
                contents.append(os.pread(fd, 64, 0).decode())
                os.close(fd)
            conn.send(",".join(contents).encode())
        else:
            conn.send(data)
    result = {"sizes": sizes, "peer": peer_credentials(conn)}
    conn.close()
    listener.close()
    print(json.dumps(result), flush=True)


def client(path, sizes):
    s = open_socket()
    s.connect(path)
    ready()
    for i, size in enumerate(sizes):
        s.send(pattern(i, size))
    echoed, intact = [], True
    for i, size in enumerate(sizes):
        record = receive(s)
        if record is None:
            break
        echoed.append(len(record[0]))
        intact = intact and record[0] == pattern(i, size)
    eof = receive(s) is None
    print(json.dumps({"echoed": echoed, "intact": intact, "eof": eof,
                      "peer": peer_credentials(s)}), flush=True)


def sendfds(path, files):
    s = open_socket()
    s.connect(path)
    ready()
    fds = [os.open(f, os.O_RDONLY) for f in files]
    s.sendmsg([b"files"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    for fd in fds:
        os.close(fd)
    reply = receive(s)
    print(json.dumps({"reply": reply[0].decode() if reply else None}), flush=True)


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "server":
        server(path)
    elif mode == "client":
        client(path, [int(x) for x in sys.argv[3:]])
    elif mode == "sendfds":
        sendfds(path, sys.argv[3:])
    else:
        sys.exit("unknown mode " + mode)


main()
