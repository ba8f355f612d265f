# A Python datagram peer for tests/datagram_test.ts: another implementation
# of the same sockets, so addresses and bytes are checked against what the
# kernel told someone else, not against ourselves.
#
#   udp-send HOST PORT HEX          send from an unbound socket (the kernel picks a port)
#   udp-send-bound HOST PORT HEX    bind HOST:0 first
#   udp-recv HOST                   print "ready PORT", receive one datagram
#   unix-send PATH HEX [BIND]       send from an unbound socket, or one bound to BIND
#   unix-recv PATH                  bind PATH, print "ready", receive one datagram
#   udp-echo HOST COUNT             print "ready PORT", send COUNT datagrams back
#
# Senders print {"local": ADDR}; receivers print {"data": HEX, "from": ADDR},
# where ADDR is {"host", "port"}, {"path"} or {"abstract": HEX of the name}.
import json
import socket
import sys


def describe(family, addr):
    if family == socket.AF_UNIX:
        if isinstance(addr, bytes):
            if addr.startswith(b"\0"):
                return {"abstract": addr.hex()}
            return {"path": addr.decode()}
        return {"path": addr or ""}
    return {"host": addr[0], "port": addr[1]}


def inet_family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


mode = sys.argv[1]
if mode in ("udp-send", "udp-send-bound"):
    host, port, data = sys.argv[2], int(sys.argv[3]), bytes.fromhex(sys.argv[4])
    family = inet_family(host)
    s = socket.socket(family, socket.SOCK_DGRAM)
    if mode == "udp-send-bound":
        s.bind((host, 0))
    s.sendto(data, (host, port))
    print(json.dumps({"local": describe(family, s.getsockname())}))
elif mode == "udp-recv":
    host = sys.argv[2]
    family = inet_family(host)
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, 0))
    print("ready %d" % s.getsockname()[1], flush=True)
    data, addr = s.recvfrom(70000)
    print(json.dumps({"data": data.hex(), "from": describe(family, addr)}))
elif mode == "udp-echo":
    host, count = sys.argv[2], int(sys.argv[3])
    family = inet_family(host)
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, 0))
    print("ready %d" % s.getsockname()[1], flush=True)
    for _ in range(count):
        data, addr = s.recvfrom(70000)
        s.sendto(data, addr)
    print(json.dumps({"echoed": count}))
elif mode == "unix-send":
    path, data = sys.argv[2], bytes.fromhex(sys.argv[3])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if len(sys.argv) > 4:
        s.bind(sys.argv[4])
    s.sendto(data, path)
    print(json.dumps({"local": describe(socket.AF_UNIX, s.getsockname())}))
elif mode == "unix-recv":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sys.argv[2])
    print("ready", flush=True)
    data, addr = s.recvfrom(70000)
    print(json.dumps({"data": data.hex(), "from": describe(socket.AF_UNIX, addr)}))
else:
    sys.exit("unknown mode " + mode)
