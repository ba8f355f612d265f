// The engine's wait paths and registrations: which one runs, no epoll_ctl
// per wait with edge registration, no lost wake-up when a record arrives
// between a failed try and the wait (after the engine disarmed the socket,
// and while it is armed), and a synchronous sleep on the JS thread that
// socket traffic does not interrupt. `deno task test` runs this file once
// as configured (the doorbell where it works, edge), once with
// BSD_SOCKETS_ENGINE=pool and once with BSD_SOCKETS_ENGINE=pool,oneshot.

import assert from "node:assert/strict";
import {
  AF_UNIX,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLLIN,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_SEQPACKET,
} from "../ffi/constants.ts";
import { errno, libc } from "../ffi/libc.ts";
import { type ReadyHandler, theReactor } from "../ffi/reactor.ts";
import { FdSocket } from "../ffi/socket.ts";
import { encodeUnix } from "../ffi/sockaddr.ts";
import {
  deadline,
  killOnDispose,
  lines,
  needs,
  nextLine,
  tempDir,
  uringExpected,
} from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const asked = Deno.env.get("BSD_SOCKETS_ENGINE")?.split(",") ?? [];

Deno.test("the engine waits and registers as BSD_SOCKETS_ENGINE asks, the doorbell and edge by default", () => {
  const reactor = theReactor();
  assert.equal(reactor.registration, asked.includes("oneshot") ? "oneshot" : "edge");
  if (asked.includes("pool")) assert.equal(reactor.waitPath, "pool");
  else assert.equal(reactor.waitPath, uringExpected() ? "uring" : "pool");
});

Deno.test("the engine: 200 parked receives cost no epoll_ctl each with edge registration", async () => {
  const reactor = theReactor();
  const [a, b] = FdSocket.pair("seqpacket", { label: "" });
  try {
    // The first wait of each end joins the set.
    const first = [a.receive(100), b.receive(100)];
    await a.send(encoder.encode("b"), null);
    await b.send(encoder.encode("a"), null);
    await Promise.all(first);
    const before = reactor.controlCount;
    for (let i = 0; i < 100; i++) {
      const there = b.receive(100);
      await a.send(encoder.encode(`ping ${i}`), null);
      assert.equal(decoder.decode((await there)!.data), `ping ${i}`);
      const back = a.receive(100);
      await b.send(encoder.encode(`pong ${i}`), null);
      assert.equal(decoder.decode((await back)!.data), `pong ${i}`);
    }
    const calls = reactor.controlCount - before;
    if (reactor.registration === "edge") assert.ok(calls <= 2, `${calls} epoll_ctl calls`);
    else assert.ok(calls >= 200, `one-shot made only ${calls} epoll_ctl calls for 200 waits`);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("the engine keeps no watch for a closed socket, closed waiting or idle", async () => {
  const reactor = theReactor();
  const before = reactor.watchCount;
  const pairs = Array.from({ length: 50 }, () => FdSocket.pair("seqpacket", { label: "" }));
  // Every end waits once; the second ends then get a record, so they are idle when closed.
  const pending = pairs.flatMap(([a, b]) => [a.receive(100), b.receive(100)]);
  assert.equal(reactor.watchCount, before + 100);
  for (const [a] of pairs) await a.send(encoder.encode("x"), null);
  const got = await deadline(Promise.all(pending.filter((_, i) => i % 2 === 1)), 5000, "records");
  assert.deepEqual(got.map((r) => r?.data.length), pairs.map(() => 1));
  // Idle but still in the epoll set: their watches stay until close.
  assert.equal(reactor.watchCount, before + 100);
  for (const [a, b] of pairs) {
    a.close();
    b.close();
  }
  assert.deepEqual(await Promise.all(pending.filter((_, i) => i % 2 === 0)), pairs.map(() => null));
  assert.equal(reactor.watchCount, before);
});

/** A raw nonblocking seqpacket pair, closed on dispose. */
function rawPair(): { fds: Int32Array } & Disposable {
  const fds = new Int32Array(2);
  const rc = libc().socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
  assert.equal(rc, 0);
  return { fds, [Symbol.dispose]: () => fds.forEach((fd) => libc().close(fd)) };
}

/** One macrotask, for the engine to deliver what it has. */
function turn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

Deno.test("the engine: a record sent between a failed try and the wait wakes it, disarmed or armed", async () => {
  const reactor = theReactor();
  using pair = rawPair();
  const [mine, peer] = pair.fds;
  const buf = new Uint8Array(64);
  const recv = (): number => libc().read(mine, buf, 64n);
  const send = (text: string): void => {
    const bytes = encoder.encode(text);
    assert.equal(libc().write(peer, bytes, BigInt(bytes.length)), bytes.length);
  };
  let ready: () => void = () => {};
  const handler: ReadyHandler = { onReady: (readable) => readable && ready() };
  const token = reactor.token();
  // Something else waits (unref'd), so that a wait on the pool runs too.
  const bystander = reactor.token();
  reactor.busy(bystander, { onReady() {} }, false);
  reactor.arm(mine, token, true, false, true);
  try {
    // An arrival while nothing waits on this socket: the engine is told of
    // it, finds no waiter and (edge) disarms the socket.
    const events = reactor.eventCount;
    send("unwaited");
    for (let i = 0; i < 200 && reactor.eventCount === events; i++) await turn();
    assert.equal(reactor.eventCount, events + 1, "the engine never reported the arrival");
    for (const [what, disarmed] of [["after a disarm", true], ["while armed", false]] as const) {
      if (disarmed) assert.equal(decoder.decode(buf.subarray(0, recv())), "unwaited");
      assert.equal(recv(), -1, `${what}: the try found a record`);
      send(`late ${what}`);
      const woken = new Promise<void>((resolve) => ready = resolve);
      reactor.arm(mine, token, true, false, false);
      reactor.busy(token, handler, true);
      await deadline(woken, 2000, `the wake-up for a record sent ${what}`);
      reactor.idle(token);
      assert.equal(decoder.decode(buf.subarray(0, recv())), `late ${what}`);
    }
  } finally {
    reactor.idle(token);
    reactor.idle(bystander);
    reactor.unwatch(mine);
  }
});

const SENDER = `
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sys.stdin.readline()
s.sendto(b"engine", sys.argv[1])
time.sleep(0.05)
s.sendto(b"private", sys.argv[2])
print("sent", flush=True)
sys.stdin.readline()
`;

Deno.test({
  name: "the engine: a record for a parked receive does not interrupt a synchronous sleep (EINTR)",
  ...needs("python3"),
  async fn() {
    using dir = tempDir();
    const paths = [`${dir.path}/engine.sock`, `${dir.path}/private.sock`];
    const [engine, other] = paths.map((path) => {
      const s = FdSocket.open("unix", "datagram", 0, { label: JSON.stringify(path) });
      s.bind(encodeUnix(path));
      return s;
    });
    const epfd = libc().epoll_create1(EPOLL_CLOEXEC);
    try {
      const ev = new Uint8Array(16);
      new DataView(ev.buffer).setUint32(0, EPOLLIN, true);
      assert.equal(libc().epoll_ctl(epfd, EPOLL_CTL_ADD, other.fd, ev), 0);
      const pending = engine.receive(100);
      await using child = killOnDispose(
        new Deno.Command("python3", {
          args: ["-c", SENDER, ...paths],
          stdin: "piped",
          stdout: "piped",
        }).spawn(),
      );
      const out = lines(child.stdout);
      const stdin = child.stdin.getWriter();
      await stdin.write(encoder.encode("go\n"));
      // The sender wakes the engine's wait, then ends this one. Its pause in
      // between only gives an interruption the time to show: this call
      // returns the same way, whenever the second record comes.
      const n = libc().epoll_wait_now(epfd, ev, 1, 5000);
      const e = errno();
      assert.equal(n, 1, `the synchronous epoll_wait returned ${n} (errno ${e})`);
      assert.equal(await nextLine(out), "sent");
      assert.equal(
        decoder.decode((await deadline(pending, 2000, "the engine's record"))!.data),
        "engine",
      );
      assert.equal(decoder.decode((await other.receive(100))!.data), "private");
      await stdin.close();
    } finally {
      libc().close(epfd);
      engine.close();
      other.close();
    }
  },
});

const FLOOD = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for i in range(int(sys.argv[2])):
    s.sendto(i.to_bytes(4, "little"), sys.argv[1])
`;

Deno.test({
  name: "the engine: 20,000 records from another process arrive in order, the wait path unchanged",
  ...needs("python3"),
  async fn() {
    const reactor = theReactor();
    const path = reactor.waitPath;
    using dir = tempDir();
    const at = `${dir.path}/flood.sock`;
    const sock = FdSocket.open("unix", "datagram", 0, { label: JSON.stringify(at) });
    try {
      sock.bind(encodeUnix(at));
      const count = 20_000;
      await using _child = killOnDispose(
        new Deno.Command("python3", { args: ["-c", FLOOD, at, String(count)] }).spawn(),
      );
      for (let i = 0; i < count; i++) {
        const r = await deadline(sock.receive(100), 5000, `record ${i}`);
        assert.equal(new DataView(r!.data.buffer, r!.data.byteOffset).getUint32(0, true), i);
      }
      // A doorbell that gave up under the flood would have left the pool in charge.
      assert.equal(reactor.waitPath, path);
    } finally {
      sock.close();
    }
  },
});
