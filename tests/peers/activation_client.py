# The client side of tests/systemd_test.ts's socket-activation tests, written
# against Python's socket module only: talks once to each socket a service
# started by systemd-socket-activate serves.
#
#   activation_client.py DIR KIND:ADDRESS...
#
# KIND is tcp (ADDRESS host:port), unix, seqpacket or unixgram (ADDRESS a
# path). Each sends "ping N" and reads the answer; a datagram client binds a
# path in DIR so the answer can come back. Prints one JSON list of answers.

import json
import os
import socket
import sys

tmp, targets = sys.argv[1], sys.argv[2:]
answers = []
for i, target in enumerate(targets):
    kind, address = target.split(":", 1)
    message = f"ping {i}".encode()
    if kind == "tcp":
        host, port = address.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=10)
    elif kind in ("unix", "seqpacket"):
        t = socket.SOCK_STREAM if kind == "unix" else socket.SOCK_SEQPACKET
        s = socket.socket(socket.AF_UNIX, t)
        s.settimeout(10)
        s.connect(address)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.settimeout(10)
        s.bind(os.path.join(tmp, f"client-{i}.sock"))
        s.connect(address)
    s.send(message)
    answers.append(s.recv(1024).decode())
    s.close()
print(json.dumps(answers), flush=True)
