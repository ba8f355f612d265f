# A real AF_UNIX SOCK_DGRAM peer for tests/unix_datagram_test.ts, written
# against Python's socket module only (sendmsg with SCM_RIGHTS, recv_fds).
#
#   unixgram_peer.py sendfds TO FILE...   send one datagram "files" to TO with
#                                          the files open as descriptors
#   unixgram_peer.py recvfds PATH          bind PATH, print "ready", receive one
#                                          datagram with descriptors and read
#                                          each file back through its descriptor
#   unixgram_peer.py hello TO              send one datagram "hello" to TO
#   unixgram_peer.py kinds TO DIR PORT     make one socket of each kind fromFd
#                                          adopts (names under DIR, a UDP socket
#                                          connected to 127.0.0.1:PORT) and send
#                                          them all to TO in one datagram
#   unixgram_peer.py ping TO               send TO an ICMP ping socket (run it
#                                          where ping_group_range allows one)
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
    elif mode == "ping":
        ping = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        fds = array.array("i", [ping.fileno()])
        s.sendmsg([b"ping"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)], 0, target)
        print(json.dumps({"sent": 1}), flush=True)
    elif mode == "kinds":
        send_kinds(s, target, sys.argv[3], int(sys.argv[4]))
    else:
        raise SystemExit("unknown mode " + mode)


def send_kinds(s, target, directory, port):
    made, kinds = [], []

    def add(kind, sock):
        made.append(sock)
        kinds.append(kind)

    dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dgram.bind(directory + "/dgram.sock")
    add("unix-datagram", dgram)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.connect(("127.0.0.1", port))
    add("udp", udp)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(directory + "/seqpacket.sock")
    listener.listen()
    add("seqpacket-listener", listener)
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    mine.send(b"from python")
    add("seqpacket-conn", theirs)
    for kind, make in [
        ("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)),
        ("ping", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)),
        ("packet", lambda: packet_socket()),
    ]:
        try:
            add(kind, make())
        except OSError:
            pass  # not allowed here: the test skips that kind
    fds = array.array("i", [m.fileno() for m in made])
    s.sendmsg([json.dumps(kinds).encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)], 0, target)
    print(json.dumps({"kinds": kinds, "udp": udp.getsockname()[1]}), flush=True)


def packet_socket():
    p = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM)
    p.bind(("lo", 0x88B5))
    return p


main()
