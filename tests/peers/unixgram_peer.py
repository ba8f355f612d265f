# A real AF_UNIX SOCK_DGRAM peer for tests/unix_datagram_test.ts, written
# against Python's socket module only (sendmsg with SCM_RIGHTS, recv_fds).
#
#   unixgram_peer.py sendfds TO FILE...   send one datagram "files" to TO with
#                                          the files open as descriptors
#   unixgram_peer.py recvfds PATH          bind PATH, print "ready", receive one
#                                          datagram with descriptors and read
#                                          each file back through its descriptor
#   unixgram_peer.py hello TO              send one datagram "hello" to TO
#
# A TO or PATH starting with "@" is an abstract name (argv cannot hold the NUL).
# Every mode ends with one JSON line: what it sent or saw, and who it is.

import array
import json
import os
import socket
import sys


def who():
    return {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()}


def main():
    mode, target = sys.argv[1], sys.argv[2]
    if target.startswith("@"):
        target = "\0" + target[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if mode == "sendfds":
        files = [os.open(path, os.O_RDONLY) for path in sys.argv[3:]]
        # socket.send_fds drops its address argument before Python 3.12.
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", files))]
        s.sendmsg([b"files"], rights, 0, target)
        print(json.dumps({"sent": len(files), **who()}), flush=True)
    elif mode == "recvfds":
        s.bind(target)
        print("ready", flush=True)
        data, fds, _flags, _addr = socket.recv_fds(s, 1 << 16, 253)
        contents = []
        for fd in fds:
            os.lseek(fd, 0, os.SEEK_SET)
            contents.append(os.read(fd, 1 << 16).decode())
            os.close(fd)
        print(json.dumps({"data": data.decode(), "contents": contents}), flush=True)
    elif mode == "hello":
        s.sendto(b"hello", target)
        print(json.dumps(who()), flush=True)
    else:
        raise SystemExit("unknown mode " + mode)


main()
