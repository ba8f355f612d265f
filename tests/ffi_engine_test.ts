// The readiness engine through FdSocket: lifetimes and the fd ledger, GC
// safety, idle cost, process exit, many sockets at once, abort, and the
// recvmmsg inbox.

import assert from "node:assert/strict";
import { closeFds, FdSocket, type Kind, openSocketCount, type Received } from "../ffi/socket.ts";
import { confirmed } from "../ffi/errors.ts";
import { theReactor } from "../ffi/reactor.ts";
import { decodeInet, decodeUnix, encodeInet, encodeUnix } from "../ffi/sockaddr.ts";
import type { NetAddr, UnixAddr } from "../types.ts";
import {
  deadline,
  denoRun,
  fdTable,
  killOnDispose,
  lines,
  nextLine,
  prng,
  randomBytes,
  sha256,
  socketFdCount,
  tempDir,
  threadCount,
} from "./_helpers.ts";

const PEERS = new URL("./peers/", import.meta.url);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const collect = (globalThis as { gc?: (options?: { type: "minor" | "major" }) => void }).gc;

function text(r: Received<unknown> | null): string | null {
  return r === null ? null : decoder.decode(r.data);
}

/** Closes `sockets` on dispose. */
function closing(...sockets: FdSocket<unknown>[]): Disposable {
  return { [Symbol.dispose]: () => sockets.forEach((s) => s.close()) };
}

/** One macrotask: whatever the engine had ready has been delivered. */
function turn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Whether `p` settles within the microtasks already queued (no engine round). */
async function settlesNow(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(() => settled = true, () => settled = true);
  await Promise.resolve();
  await Promise.resolve();
  return settled;
}

/** A UDP socket on 127.0.0.1 with an ephemeral port, and that port's sockaddr. */
function udpSocket(): { sock: FdSocket<NetAddr>; addr: Uint8Array; port: number } {
  const sock = FdSocket.open<NetAddr>("ipv4", "datagram", 0, {
    label: '"127.0.0.1:0"',
    decode: (name, length) => decodeInet(name, length, "udp"),
  });
  sock.bind(encodeInet("127.0.0.1", 0));
  const port = sock.localAddress((name, length) => decodeInet(name, length, "udp")).port;
  return { sock, addr: encodeInet("127.0.0.1", port), port };
}

/** Socket descriptors in `after` that `before` did not have (or had for another socket). */
function added(before: Map<number, string>, after: Map<number, string>): number[] {
  return [...after].filter(([fd, target]) =>
    target.startsWith("socket:") && before.get(fd) !== target
  )
    .map(([fd]) => fd);
}

/** A socket to pass along with records, and its descriptor number. */
function carrier(): { sock: FdSocket; fd: number } {
  const before = fdTable();
  const sock = FdSocket.open("unix", "datagram", 0, { label: "" });
  const [fd] = added(before, fdTable());
  return { sock, fd };
}

// ---------------------------------------------------------------------------
// Lifetimes

Deno.test("FdSocket: 10,000 open/use/close cycles leave /proc/self/fd and the ledger unchanged", async () => {
  // Warm up: the engine's epoll and eventfd are opened once, on first use.
  FdSocket.pair("seqpacket", { label: "" }).forEach((s) => s.close());
  const passed = carrier();
  using _closing = closing(passed.sock);
  const fds = socketFdCount();
  const ledger = openSocketCount();
  const payload = encoder.encode("cycle");
  for (let i = 0; i < 10_000; i++) {
    const variant = i % 5;
    if (variant === 0 || variant === 1) {
      // A pair, the receive parked first on odd cycles so the engine's wait runs.
      const [a, b] = FdSocket.pair(variant === 0 ? "seqpacket" : "datagram", { label: "" });
      const got = b.receive(100);
      await a.send(payload, null);
      assert.equal(text(await deadline(got, 5000, `cycle ${i}`)), "cycle");
      a.close();
      b.close();
    } else if (variant === 2) {
      const { sock, addr } = udpSocket();
      await sock.send(payload, addr);
      assert.equal(text(await deadline(sock.receive(100), 5000, `cycle ${i}`)), "cycle");
      sock.close();
    } else if (variant === 3) {
      // Closed with records read ahead into the inbox, one carrying a descriptor.
      const [a, b] = FdSocket.pair("seqpacket", { label: "", zero: "eof-without-credentials" });
      await a.send(payload, null);
      await a.send(payload, null, { fds: [passed.fd] });
      await a.send(payload, null);
      assert.equal(text(await b.receive(100)), "cycle");
      a.close();
      b.close();
    } else {
      // Closed with a receive still pending.
      const [a, b] = FdSocket.pair("seqpacket", { label: "" });
      const got = a.receive(100);
      a.close();
      assert.equal(await got, null);
      b.close();
    }
  }
  assert.equal(openSocketCount(), ledger, "the ledger moved");
  assert.equal(socketFdCount(), fds, "descriptors leaked");
});

Deno.test("FdSocket.close() settles a pending receive with null within 100 ms", async () => {
  const [a, b] = FdSocket.pair("seqpacket", { label: "" });
  using _closing = closing(a, b);
  const got = a.receive(100);
  await turn(); // the engine is now waiting for it
  a.close();
  assert.equal(await deadline(got, 100, "the pending receive after close()"), null);
});

Deno.test("FdSocket.close() three times is harmless and releases the descriptor once", () => {
  const before = openSocketCount();
  const fds = socketFdCount();
  const [a, b] = FdSocket.pair("datagram", { label: "" });
  assert.equal(openSocketCount(), before + 2);
  a.close();
  a.close();
  a.close();
  assert.equal(a.closed, true);
  assert.equal(b.closed, false);
  assert.equal(openSocketCount(), before + 1);
  b.close();
  assert.equal(openSocketCount(), before);
  assert.equal(socketFdCount(), fds);
});

Deno.test("FdSocket after close(): operations reject BadResource naming the call, receive resolves null", async () => {
  const sock = FdSocket.open("unix", "stream", 0, { label: '"/run/x.sock"' });
  sock.close();
  const bad = (call: string) => (err: unknown) => {
    assert.ok(err instanceof Deno.errors.BadResource, `not BadResource: ${String(err)}`);
    assert.equal(err.message, `${call} "/run/x.sock": socket is closed`);
    return true;
  };
  await assert.rejects(sock.send(new Uint8Array(1), null), bad("send"));
  await assert.rejects(sock.sendMany([{ data: new Uint8Array(1), to: null }]), bad("sendmmsg"));
  await assert.rejects(sock.accept((fd) => fd), bad("accept"));
  await assert.rejects(sock.connect(encodeUnix("/run/x.sock")), bad("connect"));
  assert.equal(await sock.receive(100), null);
  assert.throws(() => sock.bind(encodeUnix("/run/x.sock")), bad("bind"));
  assert.throws(() => sock.listen(), bad("listen"));
  assert.throws(() => sock.shutdown("both"), bad("shutdown"));
  assert.throws(() => sock.setOption("reuseAddress", true), bad("setsockopt"));
  assert.throws(() => sock.getOption("type"), bad("getsockopt"));
});

Deno.test("FdSocket after close() never touches the descriptor number's next owner", async () => {
  const options = { label: "", zero: "eof-without-credentials" } as const;
  // The engine's own descriptors are opened on first use: not during the count.
  FdSocket.pair("seqpacket", options).forEach((s) => s.close());
  const t0 = fdTable();
  const [old, oldPeer] = FdSocket.pair("seqpacket", options);
  const t1 = fdTable();
  const pairFds = added(t0, t1);
  assert.equal(pairFds.length, 2);
  // A receive parked on `old` (the engine waits on its number), and a record
  // meant for it still in its queue when it closes: close() runs before the
  // engine's next round can deliver it.
  const pending = old.receive(100);
  await turn();
  await oldPeer.send(encoder.encode("meant for the old socket"), null);
  old.close();
  assert.equal(await pending, null);
  const t2 = fdTable();
  const freed = pairFds.filter((fd) => !t2.has(fd));
  assert.equal(freed.length, 1);
  const oldFd = freed[0];

  // The lowest free number goes to the next descriptor: the new pair gets it.
  const [fresh, freshPeer] = FdSocket.pair("seqpacket", options);
  using _closing = closing(fresh, freshPeer, oldPeer);
  const t3 = fdTable();
  assert.ok(added(t2, t3).includes(oldFd), `the new pair did not reuse fd ${oldFd}`);
  assert.notEqual(t3.get(oldFd), t1.get(oldFd), "the reused number names a new socket");

  // The new owner has data waiting; the old object must not read it...
  await freshPeer.send(encoder.encode("for the new socket"), null);
  assert.equal(await old.receive(100), null);
  // ...nor write through the number it used to have.
  await assert.rejects(old.send(encoder.encode("stale write"), null), Deno.errors.BadResource);
  await assert.rejects(
    old.sendMany([{ data: encoder.encode("stale batch"), to: null }]),
    Deno.errors.BadResource,
  );
  assert.throws(() => old.shutdown("both"), Deno.errors.BadResource);
  assert.throws(() => old.setOption("receiveBufferSize", 1), Deno.errors.BadResource);

  // The new socket sees only its own record, never the old one's.
  assert.equal(
    text(await deadline(fresh.receive(100), 5000, "fresh receive")),
    "for the new socket",
  );
  // Its peer got nothing from the old object: a marker sent now is the first record.
  await fresh.send(encoder.encode("marker"), null);
  assert.equal(text(await deadline(freshPeer.receive(100), 5000, "marker")), "marker");
  // The old peer learns its record was dropped unread (as the kernel says),
  // then sees the end of stream: no stray record in between.
  await assert.rejects(oldPeer.receive(100), Deno.errors.ConnectionReset);
  assert.equal(await deadline(oldPeer.receive(100), 5000, "old peer"), null);
});

// ---------------------------------------------------------------------------
// GC

Deno.test({
  name: "FdSocket survives gc() between 10,000 round trips: every payload's SHA-256 matches",
  ignore: typeof collect !== "function",
  async fn() {
    const rand = prng(0x5eed);
    const [a, b] = FdSocket.pair("seqpacket", { label: "", zero: "eof-without-credentials" });
    using _closing = closing(a, b);
    let trips = 0;
    for (let i = 0; trips < 10_000; i++) {
      // A scavenge every trip moves young objects; a full collection every
      // hundred also compacts. (A full one every trip would take minutes.)
      collect!(i % 100 === 0 ? undefined : { type: "minor" });
      const path = i % 4;
      const payloads = Array.from(
        { length: path === 2 ? 3 : 1 },
        () => randomBytes(rand, 1 + Math.floor(rand() * 2048)),
      );
      const expected = await Promise.all(payloads.map((p) => sha256(p)));
      let received: (Received<unknown> | null)[];
      if (path === 0) {
        // sendmsg: the data and control buffers are reached through pointers.
        await a.send(payloads[0], null, { fds: [2] });
        received = [await b.receive(4096)];
        assert.equal(received[0]!.fds?.length, 1);
        closeFds(received[0]!.fds);
      } else if (path === 1) {
        // Parked first: delivered through the engine's wait.
        const got = b.receive(4096);
        collect!({ type: "minor" });
        await a.send(payloads[0], null);
        received = [await deadline(got, 5000, `trip ${trips}`)];
      } else if (path === 2) {
        // sendmmsg out, recvmmsg in: records wait in the inbox meanwhile.
        assert.equal(await a.sendMany(payloads.map((data) => ({ data, to: null }))), 3);
        received = [];
        for (let k = 0; k < 3; k++) {
          received.push(await b.receive(4096));
          collect!({ type: "minor" });
        }
      } else {
        await b.send(payloads[0], null);
        received = [await a.receive(4096)];
      }
      for (let k = 0; k < payloads.length; k++) {
        assert.ok(received[k] !== null, `trip ${trips}: end of stream`);
        assert.equal(received[k]!.truncated, false);
        assert.equal(await sha256(received[k]!.data), expected[k], `trip ${trips}`);
        trips++;
      }
    }
  },
});

Deno.test({
  name: "FdSocket dropped unclosed is closed by the FinalizationRegistry",
  ignore: typeof collect !== "function",
  async fn() {
    const passed = carrier();
    using _closing = closing(passed.sock);
    const ledger = openSocketCount();
    const fds = socketFdCount();
    (function drop(): void {
      const [a, b] = FdSocket.pair("seqpacket", { label: "", zero: "eof-without-credentials" });
      // The second record, with a descriptor, is read ahead into b's inbox:
      // the finalizer closes that descriptor too.
      void a.send(encoder.encode("one"), null);
      void a.send(encoder.encode("two"), null, { fds: [passed.fd] });
      void b.receive(100);
    })();
    assert.equal(openSocketCount(), ledger + 2);
    for (let i = 0; i < 100 && openSocketCount() > ledger; i++) {
      collect!();
      await turn();
    }
    assert.equal(openSocketCount(), ledger, "the finalizer did not close the dropped pair");
    assert.equal(socketFdCount(), fds);
  },
});

// ---------------------------------------------------------------------------
// Idle and exit (each in its own process)

Deno.test("FdSocket: a receive pending for 2 s costs under 0.1 s of CPU", async () => {
  const out = await denoRun(new URL("engine_idle.ts", PEERS).pathname, {
    flags: ["--allow-ffi"],
  }).output();
  assert.equal(out.code, 0);
  const result = JSON.parse(decoder.decode(out.stdout));
  assert.equal(result.received, "wake");
  assert.ok(result.cpuSeconds < 0.1, `spent ${result.cpuSeconds} s of CPU while idle`);
});

/** tests/peers/engine_exit.ts in `args`' mode, killed on dispose if still running. */
function exitPeer(...args: string[]): {
  child: Deno.ChildProcess;
  out: AsyncIterator<string>;
} & AsyncDisposable {
  const child = denoRun(new URL("engine_exit.ts", PEERS).pathname, {
    flags: ["--allow-ffi"],
    args,
  }).spawn();
  const killing = killOnDispose(child);
  return {
    child,
    out: lines(child.stdout),
    [Symbol.asyncDispose]: () => killing[Symbol.asyncDispose](),
  };
}

for (const mode of ["unref-after", "unref-before"]) {
  Deno.test(`FdSocket.unref() (${mode} the receive parks) lets the process exit 0 within 1 s`, async () => {
    await using peer = exitPeer(mode);
    assert.equal(await nextLine(peer.out, 10_000), "ready");
    const status = await deadline(peer.child.status, 1000, "exit after the script ended");
    assert.equal(status.code, 0);
    const rest = await peer.out.next();
    assert.equal(rest.done, true, `printed ${rest.value}`);
  });
}

// Both with the runtime's op ref/unref (two waits kept in flight) and
// without it (one wait, stopped through the eventfd once nothing waits).
for (const [how, flag] of [["", []], [", without op ref/unref", ["--no-op-ref"]]] as const) {
  Deno.test(`FdSocket: a process whose sockets have nothing pending exits by itself${how}`, async () => {
    await using peer = exitPeer("idle", ...flag);
    assert.equal(await nextLine(peer.out, 10_000), "ready");
    const status = await deadline(peer.child.status, 5000, "exit with idle sockets");
    assert.equal(status.code, 0);
  });

  Deno.test(`FdSocket: a ref'd pending receive keeps the process alive until data arrives${how}`, async () => {
    using dir = tempDir();
    const path = `${dir.path}/ref.sock`;
    await using peer = exitPeer("ref", path, ...flag);
    const sender = FdSocket.open("unix", "datagram", 0, { label: JSON.stringify(path) });
    using _closing = closing(sender);
    assert.equal(await nextLine(peer.out, 10_000), "ready");
    // Still running 300 ms later: the exit must wait for the receive.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const early = await Promise.race([
      peer.child.status.then(() => "exited"),
      new Promise<string>((resolve) => timer = setTimeout(() => resolve("alive"), 300)),
    ]);
    clearTimeout(timer);
    assert.equal(early, "alive", "the process exited with a receive pending");
    await sender.send(encoder.encode("hello from the parent"), encodeUnix(path));
    assert.equal(await nextLine(peer.out), "got hello from the parent");
    const status = await deadline(peer.child.status, 5000, "exit after the data");
    assert.equal(status.code, 0);
  });
}

// ---------------------------------------------------------------------------
// Concurrency

Deno.test("FdSocket: 1,000 pending receives all resolve with their payload, on under 50 threads", async () => {
  const pairs = Array.from({ length: 500 }, () => FdSocket.pair("seqpacket", { label: "" }));
  const sockets = pairs.flat();
  using _closing = closing(...sockets);
  const pending = sockets.map((s) => s.receive(100));
  await turn();
  const parked = threadCount();
  // Each socket gets one message from its peer, naming the socket.
  await Promise.all(pairs.flatMap(([a, b], i) => [
    a.send(encoder.encode(`to ${2 * i + 1}`), null),
    b.send(encoder.encode(`to ${2 * i}`), null),
  ]));
  const got = await deadline(Promise.all(pending), 10_000, "1,000 receives");
  assert.deepEqual(got.map(text), sockets.map((_, i) => `to ${i}`));
  assert.ok(parked < 50, `${parked} threads with 1,000 receives pending`);
  assert.ok(threadCount() < 50, `${threadCount()} threads afterwards`);
});

// ---------------------------------------------------------------------------
// Abort

Deno.test("FdSocket.receive() with a signal rejects with its reason and consumes nothing", async () => {
  const [a, b] = FdSocket.pair("seqpacket", { label: "" });
  using _closing = closing(a, b);
  // Aborted while parked.
  const ac = new AbortController();
  const reason = new Error("stop waiting");
  const got = a.receive(100, ac.signal);
  await turn();
  ac.abort(reason);
  await assert.rejects(deadline(got, 1000, "the aborted receive"), (err) => err === reason);

  // Aborted in the same turn the record arrives, before the engine delivers it.
  const ac2 = new AbortController();
  const got2 = a.receive(100, ac2.signal);
  await turn();
  await b.send(encoder.encode("first"), null);
  ac2.abort("too late");
  await assert.rejects(got2, (err) => err === "too late");
  assert.equal(text(await deadline(a.receive(100), 5000, "first")), "first");

  // Already aborted: a rejected promise, the queued record left for the next receive.
  await b.send(encoder.encode("second"), null);
  const aborted = AbortSignal.abort("already");
  let result: Promise<unknown> | undefined;
  assert.doesNotThrow(() => result = a.receive(100, aborted));
  await assert.rejects(result!, (err) => err === "already");
  assert.equal(text(await a.receive(100)), "second");

  // One of two parked receives aborted: the record goes to the other.
  const ac3 = new AbortController();
  const first = a.receive(100, ac3.signal);
  const second = a.receive(100);
  await turn();
  ac3.abort("no");
  await assert.rejects(first, (err) => err === "no");
  await b.send(encoder.encode("third"), null);
  assert.equal(text(await deadline(second, 5000, "third")), "third");
});

Deno.test("FdSocket.receive() aborted with records in the inbox leaves them in order", async () => {
  const [a, b] = FdSocket.pair("seqpacket", { label: "" });
  using _closing = closing(a, b);
  for (const word of ["r1", "r2", "r3"]) await b.send(encoder.encode(word), null);
  assert.equal(text(await a.receive(100)), "r1");
  await assert.rejects(a.receive(100, AbortSignal.abort("x")), (err) => err === "x");
  assert.equal(text(await a.receive(100)), "r2");
  assert.equal(text(await a.receive(100)), "r3");
});

/** A 1000-byte record numbered `n` in its first four bytes. */
function numbered(n: number): Uint8Array {
  const r = new Uint8Array(1000);
  new DataView(r.buffer).setInt32(0, n);
  return r;
}

function numberOf(r: Received<unknown> | null): number | null {
  return r === null ? null : new DataView(r.data.buffer, r.data.byteOffset).getInt32(0);
}

/**
 * Sends numbered records from `first` on until one has to wait for room;
 * returns how many went at once and the parked send.
 */
async function fill(
  sock: FdSocket,
  first: number,
): Promise<{ sent: number; parked: Promise<number> }> {
  for (let i = first; i < first + 100_000; i++) {
    const p = sock.send(numbered(i), null);
    if (!(await settlesNow(p))) return { sent: i - first, parked: p };
    await p;
  }
  throw new Error("the peer never filled up");
}

for (const kind of ["datagram", "seqpacket"] as Kind[]) {
  Deno.test(`FdSocket.send() to a full ${kind} peer: abort rejects and sends nothing, close() rejects BadResource`, async () => {
    const options = { label: '"full"', zero: "eof-without-credentials" } as const;
    const [a, b] = FdSocket.pair(kind, options);
    using _closing = closing(a, b);
    a.setOption("sendBufferSize", 4096);
    const { sent, parked } = await fill(a, 0);
    assert.ok(sent > 0);

    // Queued behind the parked send, then aborted.
    const ac = new AbortController();
    const abortable = a.send(numbered(-1), null, { signal: ac.signal });
    await turn();
    ac.abort("give up");
    await assert.rejects(
      deadline(abortable, 1000, "the aborted send"),
      (err) => err === "give up",
    );
    // Already aborted: rejected without trying, for send and sendMany alike.
    await assert.rejects(
      a.send(numbered(-2), null, { signal: AbortSignal.abort("late") }),
      (err) => err === "late",
    );
    await assert.rejects(
      deadline(
        a.sendMany([{ data: numbered(-3), to: null }], AbortSignal.abort("late")),
        1000,
        "sendMany() with an aborted signal",
      ),
      (err) => err === "late",
    );

    // Draining the peer lets the parked send through, then a marker: the
    // aborted records never reach the peer.
    const seen: (number | null)[] = [];
    for (let i = 0; i < sent; i++) {
      seen.push(numberOf(await deadline(b.receive(2000), 5000, `record ${i}`)));
    }
    assert.equal(await deadline(parked, 5000, "the parked send once there is room"), 1000);
    seen.push(numberOf(await deadline(b.receive(2000), 5000, "the parked record")));
    await a.send(numbered(1_000_000), null);
    seen.push(numberOf(await deadline(b.receive(2000), 5000, "the marker")));
    assert.deepEqual(seen, [...Array.from({ length: sent + 1 }, (_, i) => i), 1_000_000]);

    // Full again: close() wakes the parked send with BadResource.
    const again = await fill(a, 2_000_000);
    a.close();
    await assert.rejects(deadline(again.parked, 100, "the parked send after close()"), (err) => {
      assert.ok(err instanceof Deno.errors.BadResource, `not BadResource: ${String(err)}`);
      assert.equal((err as Error).message, 'send "full": socket is closed');
      return true;
    });
  });
}

// ---------------------------------------------------------------------------
// Batching: the recvmmsg inbox

/** 100 records of seeded sizes; record 50 is larger than the receive size. */
function hundredRecords(seed: number, maxSize: number): Uint8Array[] {
  const rand = prng(seed);
  return Array.from(
    { length: 100 },
    (_, i) => randomBytes(rand, i === 50 ? maxSize + 1500 : Math.floor(rand() * maxSize)),
  );
}

async function drainAndCheck(
  receiver: FdSocket<unknown>,
  records: Uint8Array[],
  maxSize: number,
  from?: unknown,
): Promise<void> {
  for (let i = 0; i < records.length; i++) {
    const r = await deadline(receiver.receive(maxSize), 5000, `record ${i}`);
    assert.ok(r !== null, `record ${i}: end of stream`);
    if (i === 50) {
      assert.equal(r.truncated, true, "record 50 was not marked truncated");
      assert.deepEqual(r.data, records[i].subarray(0, maxSize));
    } else {
      assert.equal(r.truncated, false, `record ${i} marked truncated`);
      assert.deepEqual(r.data, records[i], `record ${i}`);
    }
    if (from !== undefined) assert.deepEqual(r.from, from);
  }
}

for (const batch of [32, 1]) {
  Deno.test(`FdSocket.receive() (batch ${batch}) drains 100 queued seqpacket records in order, truncating only the big one`, async () => {
    const [a, b] = FdSocket.pair("seqpacket", { label: "", batch });
    using _closing = closing(a, b);
    a.setOption("sendBufferSize", 1 << 20);
    const records = hundredRecords(batch, 1000);
    for (const r of records) await a.send(r, null);
    await drainAndCheck(b, records, 1000);
  });
}

Deno.test("FdSocket.receive() drains 100 queued UDP records with their sender", async () => {
  const receiver = udpSocket();
  const sender = udpSocket();
  using _closing = closing(receiver.sock, sender.sock);
  const records = hundredRecords(7, 1200);
  assert.equal(
    await sender.sock.sendMany(records.map((data) => ({ data, to: receiver.addr }))),
    100,
  );
  await drainAndCheck(receiver.sock, records, 1200, {
    transport: "udp",
    hostname: "127.0.0.1",
    port: sender.port,
  });
});

Deno.test("FdSocket.receive() drains named Unix datagrams with their sender's path", async () => {
  using dir = tempDir();
  const open = (path: string) => {
    const sock = FdSocket.open<UnixAddr>("unix", "datagram", 0, {
      label: JSON.stringify(path),
      decode: (name, length) => decodeUnix(name, length, "unixgram"),
    });
    sock.bind(encodeUnix(path));
    return sock;
  };
  const receiver = open(`${dir.path}/r.sock`);
  const sender = open(`${dir.path}/s.sock`);
  using _closing = closing(receiver, sender);
  // The kernel queues at most net.unix.max_dgram_qlen of these at once, so
  // the sender waits for room while the receiver drains.
  const records = hundredRecords(11, 800);
  const to = encodeUnix(`${dir.path}/r.sock`);
  const sending = Promise.all(records.map((r) => sender.send(r, to)));
  await drainAndCheck(receiver, records, 800, {
    transport: "unixgram",
    path: `${dir.path}/s.sock`,
  });
  await deadline(sending, 5000, "the sends");
});

Deno.test("FdSocket.receive() keeps a record over 64 KiB read ahead behind small receives whole", async () => {
  // A batch grows only after full ones, so four small receives come first to
  // make it read ahead; the Unix arena's slots hold any record a sender
  // without CAP_NET_ADMIN can send, so the big one is not cut in passing.
  const [a, b] = FdSocket.pair("seqpacket", { label: "" });
  using _closing = closing(a, b);
  a.setOption("sendBufferSize", 1 << 20);
  const big = randomBytes(prng(3), 100_000);
  for (const word of ["s1", "s2", "s3", "s4"]) await a.send(encoder.encode(word), null);
  await a.send(big, null);
  await a.send(encoder.encode("after"), null);
  for (const word of ["s1", "s2", "s3", "s4"]) assert.equal(text(await b.receive(100)), word);
  const r = await deadline(b.receive(200_000), 5000, "the big record");
  assert.ok(r !== null);
  assert.equal(r.truncated, false);
  assert.deepEqual(r.data, big);
  assert.equal(text(await b.receive(100)), "after");
});

Deno.test("FdSocket.receive() reads one record at first, so a large receive after a small one gets its record whole", async () => {
  // A batch starts at one record and grows only after full ones: a socket
  // used request-reply never reads ahead, so a large receive that follows a
  // small one reads the large record itself.
  const [a, b] = FdSocket.pair("seqpacket", { label: "" });
  using _closing = closing(a, b);
  a.setOption("sendBufferSize", 1 << 20);
  const big = randomBytes(prng(4), 100_000);
  await a.send(encoder.encode("small"), null);
  await a.send(big, null);
  await a.send(encoder.encode("after"), null);
  // All three are queued, but a socket's first receive asks for one record.
  assert.equal(text(await b.receive(100)), "small");
  const r = await deadline(b.receive(200_000), 5000, "the big record");
  assert.ok(r !== null);
  assert.equal(r.truncated, false);
  assert.deepEqual(r.data, big);
  assert.equal(text(await b.receive(100)), "after");
});

Deno.test("the engine is not woken by records that a receive takes without waiting", async () => {
  // A socket is armed only while something waits on it. One parked receive
  // arms it once; after that every record is taken by a try-first call, and
  // yielding to the event loop after each one gives a wait that any arrival
  // had woken the chance to report it.
  const [a, b] = FdSocket.pair("seqpacket", { label: "" });
  using _closing = closing(a, b);
  const reactor = theReactor();
  const first = b.receive(100);
  await a.send(encoder.encode("arm"), null);
  assert.equal(text(await deadline(first, 5000, "the parked receive")), "arm");
  const before = reactor.eventCount;
  for (let i = 0; i < 100; i++) {
    await a.send(encoder.encode(`r${i}`), null);
    assert.equal(text(await b.receive(100)), `r${i}`);
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  const events = reactor.eventCount - before;
  assert.ok(events <= 1, `${events} engine events for 100 records nobody waited for`);
});

// errno is read right after each call, but the runtime can run code of its
// own in between and leave another errno behind. These tests play that part
// by writing errno themselves.
const errnoCell = (() => {
  const lib = Deno.dlopen("libc.so.6", {
    __errno_location: { parameters: [], result: "pointer" },
  });
  return new Int32Array(Deno.UnsafePointerView.getArrayBuffer(lib.symbols.__errno_location()!, 4));
})();

/** A call that fails with each errno in turn (setting errno as libc does), then returns `ok`. */
function failing(errnos: number[], ok: number): { call: () => number; calls: () => number } {
  let calls = 0;
  return {
    call: () => {
      const e = errnos[calls++];
      if (e === undefined) return ok;
      errnoCell[0] = e;
      return -1;
    },
    calls: () => calls,
  };
}

Deno.test("confirmed() calls again when errno looks misread, and takes the second answer", () => {
  // A receive that found nothing, its EAGAIN overwritten with ENOENT.
  const misread = failing([2], 7);
  assert.equal(confirmed(misread.call), 7);
  assert.equal(misread.calls(), 2);
  const thenEagain = failing([2, 11], 0);
  assert.equal(confirmed(thenEagain.call), -11);
});

Deno.test("confirmed() reports an error that repeats, and calls only once for EAGAIN", () => {
  const real = failing([90, 90], 0);
  assert.equal(confirmed(real.call), -90);
  assert.equal(real.calls(), 2);
  const eagain = failing([11], 0);
  assert.equal(confirmed(eagain.call), -11);
  assert.equal(eagain.calls(), 1);
});

Deno.test("confirmed() keeps a one-shot error (ECONNRESET) without calling again", () => {
  // The kernel clears a reset as it reports it: a second call would lose it.
  const reset = failing([104], 0);
  assert.equal(confirmed(reset.call), -104);
  assert.equal(reset.calls(), 1);
});
