# A Unix stream peer for tests/stream_test.ts: it reads the files behind the
# descriptors it is sent, answers with their text, then sends descriptors of
# its own files. Usage: stream_fds_peer.py PATH FILE...
import os
import socket
import sys

path, files = sys.argv[1], sys.argv[2:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(1)
print("ready", flush=True)
conn, _ = s.accept()
msg, fds, flags, _ = socket.recv_fds(conn, 1024, 10)
texts = []
for fd in fds:
    os.lseek(fd, 0, os.SEEK_SET)
    texts.append(os.read(fd, 100).decode())
    os.close(fd)
conn.sendall((msg.decode() + ":" + ",".join(texts) + "\n").encode())
assert conn.recv(2) == b"go"
mine = [os.open(f, os.O_RDONLY) for f in files]
socket.send_fds(conn, [b"files"], mine)
for fd in mine:
    os.close(fd)
# Wait for the end of stream, then report what was seen.
rest = b""
while True:
    chunk = conn.recv(65536)
    if not chunk:
        break
    rest += chunk
print("done", len(rest), flush=True)
