"""CPython's socket module as a seqpacket contender in bench/engine_bench.ts.

Roles, with the harness's protocol (a "ready" line, then one JSON line):
  client PATH N SIZE  N round trips of SIZE bytes against an echo server,
                      recv_into a buffer of its own; median round trip in us
  sink PATH N         listens on PATH, accepts one sender, counts N records
                      received with recv_into until end of stream; rate
"""

import json
import os
import socket
import statistics
import sys
import time


def client(path, n, size):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    print("ready", flush=True)
    msg = bytearray((i * 31 + 7) & 0xFF for i in range(size))
    buf = bytearray(65536)
    view = memoryview(buf)
    warmup = min(1000, n // 10)
    samples = []
    clock = time.perf_counter
    for i in range(-warmup, n):
        msg[0] = i & 0xFF
        t0 = clock()
        s.send(msg)
        got = s.recv_into(view)
        t1 = clock()
        if got != size or buf[0] != msg[0]:
            raise RuntimeError(f"round trip {i}: wrong reply")
        if i >= 0:
            samples.append(t1 - t0)
    s.close()
    return {"role": "client", "n": n, "rtt_us_median": statistics.median(samples) * 1e6}


def sink(path, n):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(1)
    print("ready", flush=True)
    conn, _ = listener.accept()
    view = memoryview(bytearray(65536))
    records = 0
    first = last = 0.0
    clock = time.perf_counter
    while conn.recv_into(view) > 0:
        last = clock()
        if records == 0:
            first = last
        records += 1
    conn.close()
    listener.close()
    os.unlink(path)
    if records != n:
        raise RuntimeError(f"sink: {records} records, expected {n}")
    return {"role": "sink", "n": records, "msgs_per_s": (records - 1) / (last - first)}


def main():
    role, path = sys.argv[1], sys.argv[2]
    try:
        if role == "client":
            result = client(path, int(sys.argv[3]), int(sys.argv[4]))
        elif role == "sink":
            result = sink(path, int(sys.argv[3]))
        else:
            raise RuntimeError(f"unknown role {role}")
    except Exception as err:  # reported to the harness as the result line
        print(json.dumps({"error": str(err)}), flush=True)
        sys.exit(1)
    print(json.dumps(result), flush=True)


main()
