# A service manager's notification socket for tests/systemd_test.ts, written
# against Python's socket module only: an AF_UNIX datagram socket with
# SO_PASSCRED, as systemd's own.
#
#   notify_receiver.py ADDRESS COUNT
#
# ADDRESS is a path, or @name for an abstract name. It prints "ready" once
# bound, then for each of COUNT datagrams one JSON line: the bytes (hex), the
# sender's pid from SCM_CREDENTIALS, what each passed descriptor points at
# (readlink of /proc/self/fd/N), and CLOCK_MONOTONIC in microseconds when it
# arrived.

import array
import json
import os
import socket
import struct
import sys
import time

address, count = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind("\0" + address[1:] if address.startswith("@") else address)
print("ready", flush=True)
CONTROL = socket.CMSG_SPACE(12) + socket.CMSG_SPACE(253 * 4)
for _ in range(count):
    data, ancillary, _flags, _addr = s.recvmsg(1 << 16, CONTROL)
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    pid, fds = None, []
    for level, kind, body in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            a = array.array("i")
            a.frombytes(body[: len(body) - len(body) % a.itemsize])
            fds.extend(a)
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("3i", body)[0]
    targets = [os.readlink(f"/proc/self/fd/{fd}") for fd in fds]
    for fd in fds:
        os.close(fd)
    print(json.dumps({"data": data.hex(), "pid": pid, "fds": targets, "monotonic": now}),
          flush=True)
