// Tests for seqpacket.ts: AF_UNIX SOCK_SEQPACKET records, descriptors and
// credentials, against ourselves and against a real Python peer.

import assert from "node:assert/strict";
import {
  closeFds,
  connectSeqpacket,
  listenSeqpacket,
  type SeqpacketConn,
  type SeqpacketListener,
  seqpacketPair,
  type SeqpacketSocketOptions,
} from "../seqpacket.ts";
import { SocketError } from "../errors.ts";
import { openSocketCount } from "../ffi/socket.ts";
import {
  assertBusyPollSparesWaits,
  closeFd,
  deadline,
  denoJson,
  descriptorCount,
  engineEventsOnSeparateCpus,
  fdText,
  isCloseOnExec,
  isOpenFd,
  lines,
  needs,
  nextLine,
  openFd,
  prng,
  python,
  randomBytes,
  RunningDigest,
  tempDir,
  withDescriptorRoom,
} from "./_helpers.ts";

const PEER = Deno.readTextFileSync(new URL("./peers/seqpacket_peer.py", import.meta.url));
const PERMISSION_PEER = new URL("./peers/seqpacket_permissions.ts", import.meta.url).pathname;

/**
 * The descriptor count with the engine started (its epoll and eventfd are
 * opened by the first socket of the process, which must not count as a leak).
 */
function fdBaseline(): number {
  for (const conn of seqpacketPair()) conn.close();
  return descriptorCount();
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The record the Python peer sends and expects as record `index` of `size` bytes. */
function pattern(index: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 7 + index) & 0xff;
  return out;
}

/** Both ends of a fresh pair, closed together on dispose. */
function openPair(
  options?: SeqpacketSocketOptions,
): { a: SeqpacketConn; b: SeqpacketConn } & Disposable {
  const [a, b] = seqpacketPair(options);
  return {
    a,
    b,
    [Symbol.dispose]() {
      a.close();
      b.close();
    },
  };
}

/** A listener in `dir`, a connected client and the accepted end. */
async function connected(
  dir: string,
  options: { sendBufferSize?: number } = {},
): Promise<{ listener: SeqpacketListener; client: SeqpacketConn; server: SeqpacketConn }> {
  const listener = listenSeqpacket({ path: `${dir}/s.sock`, ...options });
  const client = await connectSeqpacket({ path: listener.addr.path, ...options });
  const server = await deadline(listener.accept(), 5000, "accept");
  return { listener, client, server };
}

/** Resolves "parked" when `p` has not settled after one turn of the event loop. */
function settlesAtOnce(p: Promise<unknown>): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 0);
    p.then(() => {
      clearTimeout(timer);
      resolve(true);
    }, () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

// ---------------------------------------------------------------------------
// Records

Deno.test("seqpacketPair() keeps record boundaries for 0 B, 1 B, 4 KiB and 200 KiB", async () => {
  using pair = openPair({ sendBufferSize: 512 * 1024 });
  const { a, b } = pair;
  const rand = prng(1);
  const sizes = [0, 1, 4096, 200 * 1024, 0, 1];
  const records = sizes.map((n) => randomBytes(rand, n));
  const sending = Promise.all(records.map((r) => a.send(r)));
  for (const [i, r] of records.entries()) {
    const m = await deadline(b.receive({ maxSize: 256 * 1024 }), 5000, `record ${i}`);
    assert.ok(m !== null, `record ${i} (${r.length} B) came back as end of stream`);
    assert.equal(m.truncated, false);
    assert.equal(m.data.length, r.length, `record ${i}`);
    assert.deepEqual(m.data, r);
    assert.equal(m.from, null);
  }
  assert.deepEqual(await sending, sizes);
});

Deno.test("SeqpacketConn.send() of a record over the send buffer is EMSGSIZE naming its size, nothing sent", async () => {
  using pair = openPair();
  const { a, b } = pair;
  const big = new Uint8Array(300 * 1024);
  await assert.rejects(
    a.send(big),
    (err: unknown) =>
      err instanceof SocketError && err.code === "EMSGSIZE" && err.message.includes("307200"),
  );
  await a.send(new Uint8Array([9]));
  const m = await b.receive();
  assert.deepEqual(m?.data, new Uint8Array([9]), "the next record is the first one queued");
});

Deno.test("listenSeqpacket()/connectSeqpacket() carry 100,000 records of 0-8 KiB to a slow reader, in order", async () => {
  using dir = tempDir();
  const { listener, client, server } = await connected(dir.path);
  try {
    const N = 100_000;
    const rand = prng(42);
    const pool = randomBytes(rand, 1 << 20);
    const sent = new RunningDigest();
    const got = new RunningDigest();
    const sender = (async () => {
      for (let i = 0; i < N; i++) {
        const size = Math.floor(rand() * 8193);
        const off = Math.floor(rand() * (pool.length - size));
        const record = pool.subarray(off, off + size);
        sent.add(record);
        await client.send(record);
      }
      await client.closeWrite();
    })();
    const reader = (async () => {
      for (let i = 0; i <= N; i++) {
        // A slow reader: it stops now and then, so the sender meets a full queue.
        if (i % 1000 === 999) await new Promise((r) => setTimeout(r, 2));
        const m = await server.receive({ maxSize: 8192 });
        if (m === null) return;
        assert.equal(m.truncated, false);
        got.add(m.data);
      }
    })();
    await deadline(Promise.all([sender, reader]), 120_000, "100,000 records");
    assert.equal(got.count, N);
    assert.equal(await got.digest(), await sent.digest());
  } finally {
    client.close();
    server.close();
    listener.close();
  }
});

Deno.test("SeqpacketConn.receive() truncates a 4 KiB record into 16 bytes, then returns the next intact", async () => {
  using pair = openPair();
  const { a, b } = pair;
  const rand = prng(7);
  const big = randomBytes(rand, 4096), next = randomBytes(rand, 100);
  await a.send(big);
  await a.send(next);
  await a.send(big);
  await a.send(next);
  const cut = await b.receive({ maxSize: 16 });
  assert.equal(cut?.truncated, true);
  assert.deepEqual(cut?.data, big.subarray(0, 16));
  const whole = await b.receive({ maxSize: 16_384 });
  assert.equal(whole?.truncated, false);
  assert.deepEqual(whole?.data, next);
  // read() does the same with its buffer's length.
  const buf = new Uint8Array(16);
  assert.equal(await b.read(buf), 16);
  assert.deepEqual(buf, big.subarray(0, 16));
  const buf2 = new Uint8Array(200);
  assert.equal(await b.read(buf2), 100);
  assert.deepEqual(buf2.subarray(0, 100), next);
});

Deno.test("SeqpacketConn: a 0-byte record sent before accept() is a record, not end of stream", async () => {
  using dir = tempDir();
  const listener = listenSeqpacket({ path: `${dir.path}/early.sock` });
  const client = await connectSeqpacket({ path: listener.addr.path });
  try {
    // Everything is queued before the server side exists in this process.
    await client.send(new Uint8Array(0));
    await client.send(new Uint8Array([1]));
    await client.send(new Uint8Array(0));
    client.close();
    using server = await listener.accept();
    const sizes: number[] = [];
    for (let i = 0; i < 10; i++) {
      const m = await deadline(server.receive(), 5000, `record ${i}`);
      if (m === null) break;
      sizes.push(m.data.length);
    }
    assert.deepEqual(sizes, [0, 1, 0]);
    assert.equal(await server.receive(), null, "end of stream stays end of stream");
  } finally {
    client.close();
    listener.close();
  }
});

Deno.test("seqpacketPair(): a 0-byte record is data.length 0 in both directions, null only at close", async () => {
  const [a, b] = seqpacketPair();
  await b.send(new Uint8Array(0));
  await a.send(new Uint8Array(0));
  const fromB = await a.receive();
  const fromA = await b.receive();
  assert.ok(fromA !== null && fromB !== null);
  assert.equal(fromA.data.length, 0);
  assert.equal(fromB.data.length, 0);
  assert.equal(fromA.credentials?.pid, Deno.pid);
  a.close();
  assert.equal(await b.receive(), null);
  b.close();
});

Deno.test("SeqpacketConn.closeWrite(): the peer reads null after the records, this end still receives", async () => {
  using pair = openPair();
  const { a, b } = pair;
  await a.send(enc.encode("last"));
  await a.closeWrite();
  assert.equal(dec.decode((await b.receive())?.data), "last");
  assert.equal(await b.receive(), null);
  await assert.rejects(a.send(enc.encode("more")), Deno.errors.BrokenPipe);
  await b.send(enc.encode("answer"));
  assert.equal(dec.decode((await a.receive())?.data), "answer");
});

Deno.test("SeqpacketConn.receive() aborted by a signal rejects with its reason and consumes no record", async () => {
  using pair = openPair();
  const { a, b } = pair;
  const controller = new AbortController();
  const pending = b.receive({ signal: controller.signal });
  controller.abort(new Error("stop"));
  await assert.rejects(pending, { message: "stop" });
  await assert.rejects(b.receive({ signal: AbortSignal.abort(new Error("early")) }), {
    message: "early",
  });
  await a.send(enc.encode("kept"));
  assert.equal(dec.decode((await b.receive())?.data), "kept");
});

Deno.test("SeqpacketConn.send()/receive()/read() refuse bad arguments before any call", async () => {
  using pair = openPair();
  const { a, b } = pair;
  const resizable = new Uint8Array(new ArrayBuffer(8, { maxByteLength: 16 }));
  const shared = new Uint8Array(new SharedArrayBuffer(8));
  await assert.rejects(a.send(resizable), TypeError);
  await assert.rejects(a.send(shared), TypeError);
  await assert.rejects(a.send("text" as unknown as Uint8Array), TypeError);
  await assert.rejects(b.read(shared), TypeError);
  await assert.rejects(b.receive({ maxSize: -1 }), RangeError);
  await assert.rejects(b.receive({ maxSize: 1.5 }), TypeError);
  await assert.rejects(a.send(new Uint8Array(1), { fds: [1.5] }), TypeError);
  await assert.rejects(a.send(new Uint8Array(1), { fds: ["1" as unknown as number] }), TypeError);
  await assert.rejects(a.send(new Uint8Array(1), { fds: [-1] }), RangeError);
  await assert.rejects(a.send(new Uint8Array(1), { fds: 1 as unknown as number[] }), TypeError);
  await assert.rejects(
    a.send(new Uint8Array(1), { signal: "x" as unknown as AbortSignal }),
    TypeError,
  );
  // Nothing reached the peer.
  await a.send(new Uint8Array([5]));
  assert.deepEqual((await b.receive())?.data, new Uint8Array([5]));
  assert.throws(() => seqpacketPair({ sendBufferSize: 0 }), RangeError);
  assert.throws(() => seqpacketPair({ sendBufferSize: 1.5 }), TypeError);
});

Deno.test("busyPoll outside 0-10,000 or not an integer is refused before any socket opens", async () => {
  using dir = tempDir();
  const path = `${dir.path}/never.sock`;
  const before = openSocketCount();
  for (
    const [busyPoll, error] of [[-1, RangeError], [10_001, RangeError], [1.5, TypeError]] as const
  ) {
    assert.throws(() => seqpacketPair({ busyPoll }), error, `pair, busyPoll ${busyPoll}`);
    assert.throws(() => listenSeqpacket({ path, busyPoll }), error, `listen, busyPoll ${busyPoll}`);
    await assert.rejects(connectSeqpacket({ path, busyPoll }), error, `connect, ${busyPoll}`);
  }
  assert.throws(
    () => seqpacketPair({ busyPoll: "50" as unknown as number }),
    /busyPoll \(microseconds\) must be an integer, got "50"/,
  );
  assert.equal(openSocketCount(), before);
  assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound);
});

// ---------------------------------------------------------------------------
// Descriptors

Deno.test("SeqpacketConn.send() passes three temp files; the receiver reads each back and the fd count returns", async () => {
  using dir = tempDir();
  const before = fdBaseline();
  const [a, b] = seqpacketPair();
  const mine: number[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      Deno.writeTextFileSync(`${dir.path}/f${i}`, `file ${i}`);
      mine.push(openFd(`${dir.path}/f${i}`));
    }
    await a.send(enc.encode("three files"), { fds: mine });
    const m = await b.receive();
    assert.ok(m?.fds, "descriptors arrived");
    assert.equal(m.fds.length, 3);
    assert.equal(m.controlTruncated, undefined);
    assert.equal(dec.decode(m.data), "three files");
    for (const [i, fd] of m.fds.entries()) {
      assert.ok(!mine.includes(fd), "the receiver got new descriptors");
      assert.equal(fdText(fd), `file ${i}`);
      assert.ok(isCloseOnExec(fd), `received descriptor ${fd} is close-on-exec`);
    }
    closeFds(m.fds);
  } finally {
    for (const fd of mine) closeFd(fd);
    a.close();
    b.close();
  }
  assert.equal(descriptorCount(), before);
});

Deno.test("SeqpacketConn.send() passes 253 descriptors; 254 is RangeError before any call", async () => {
  using dir = tempDir();
  const before = fdBaseline();
  const [a, b] = seqpacketPair();
  Deno.writeTextFileSync(`${dir.path}/f`, "same file");
  const fd = openFd(`${dir.path}/f`);
  try {
    await assert.rejects(
      a.send(new Uint8Array(1), { fds: new Array(254).fill(fd) }),
      (err: unknown) => err instanceof RangeError && err.message.includes("253"),
    );
    await a.send(new Uint8Array([1]), { fds: new Array(253).fill(fd) });
    const m = await b.receive();
    assert.deepEqual(m?.data, new Uint8Array([1]), "the refused record was never sent");
    assert.equal(m?.fds?.length, 253);
    assert.equal(new Set(m.fds).size, 253, "each is a descriptor of its own");
    assert.equal(fdText(m.fds[252]), "same file");
    closeFds(m.fds);
  } finally {
    closeFd(fd);
    a.close();
    b.close();
  }
  assert.equal(descriptorCount(), before);
});

Deno.test("SeqpacketConn.send() with a descriptor that is not open is BadResource, nothing sent", async () => {
  using pair = openPair();
  const { a, b } = pair;
  let unused = 1000;
  while (isOpenFd(unused)) unused++;
  await assert.rejects(a.send(new Uint8Array(1), { fds: [unused] }), Deno.errors.BadResource);
  await a.send(new Uint8Array([2]));
  assert.deepEqual((await b.receive())?.data, new Uint8Array([2]));
});

Deno.test("SeqpacketConn.receive() reports controlTruncated when out of descriptors, and leaks none", async () => {
  using dir = tempDir();
  Deno.writeTextFileSync(`${dir.path}/f`, "x");
  const [a, b] = seqpacketPair();
  const fd = openFd(`${dir.path}/f`);
  try {
    await a.send(enc.encode("five"), { fds: [fd, fd, fd, fd, fd] });
    closeFd(fd);
    const before = descriptorCount();
    // Room for exactly two more descriptors: the lowest two free numbers.
    const m = await withDescriptorRoom(2, () => b.receive());
    assert.equal(dec.decode(m?.data), "five");
    assert.equal(m?.controlTruncated, true);
    assert.equal(m?.fds?.length, 2, "the two that fit were delivered");
    for (const got of m.fds) assert.equal(fdText(got), "x");
    assert.equal(descriptorCount(), before + 2);
    closeFds(m.fds);
    assert.equal(descriptorCount(), before, "the three that did not fit were not installed");
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("SeqpacketConn.read() closes descriptors it cannot hand over; close() closes unread ones", async () => {
  using dir = tempDir();
  Deno.writeTextFileSync(`${dir.path}/f`, "x");
  const fd = openFd(`${dir.path}/f`);
  const before = fdBaseline();
  {
    using pair = openPair();
    const { a, b } = pair;
    await a.send(new Uint8Array(3), { fds: [fd, fd] });
    assert.equal(await b.read(new Uint8Array(8)), 3);
    assert.equal(descriptorCount(), before + 2, "only the pair's two sockets are new");
    // One receive reads both records ahead, installing the second's descriptors.
    await a.send(new Uint8Array(4), { fds: [fd] });
    await a.send(new Uint8Array(5), { fds: [fd, fd, fd] });
    const first = await b.receive();
    assert.equal(first?.fds?.length, 1);
    closeFds(first.fds);
    assert.equal(descriptorCount(), before + 5, "the unread record's three are installed");
  }
  assert.equal(
    descriptorCount(),
    before,
    "closing the socket closed the unread record's descriptors",
  );
  closeFd(fd);
});

// ---------------------------------------------------------------------------
// A real peer: Python's socket module

/** Starts the Python peer and returns it with its ready line's pid, uid and gid. */
async function startPeer(...args: string[]) {
  const peer = python(PEER, ...args);
  const out = lines(peer.stdout);
  const ready = await nextLine(out, 10_000);
  const m = /^ready (\d+) (\d+) (\d+)$/.exec(ready);
  assert.ok(m, `the peer said ${JSON.stringify(ready)}`);
  return { peer, out, creds: { pid: Number(m[1]), uid: Number(m[2]), gid: Number(m[3]) } };
}

Deno.test(
  "busyPoll takes a Python echo's replies without waiting on the engine; without it every reply is waited for",
  needs("python3"),
  async (t) => {
    using dir = tempDir();
    // Engine events during 50 round trips to a fresh Python echo server.
    const eventsDuring = async (name: string, busyPoll?: number): Promise<number | null> => {
      const path = `${dir.path}/${name}.sock`;
      const { peer, out, creds } = await startPeer("server", path);
      await using _peer = peer;
      try {
        using conn = await connectSeqpacket({ path, busyPoll });
        return await engineEventsOnSeparateCpus(creds.pid, async () => {
          for (let i = 0; i < 50; i++) {
            const record = pattern(i, 64);
            await conn.send(record);
            const m = await deadline(conn.receive(), 5000, `echo ${i}`);
            assert.deepEqual(m?.data, record);
          }
        });
      } finally {
        await out.return?.();
      }
    };
    await assertBusyPollSparesWaits(t, 50, (busyPoll) => eventsDuring(`p${busyPoll}`, busyPoll));
  },
);

Deno.test("busyPoll: a receive that spins in vain then waits as usual; records, end of stream and close() still reach it", async () => {
  using pair = openPair({ busyPoll: 1000 });
  const { a, b } = pair;
  // Nothing comes within the budget: the receive waits, and the JS thread is free again.
  const pending = b.receive();
  assert.equal(await settlesAtOnce(pending), false);
  await a.send(enc.encode("late"));
  assert.equal(dec.decode((await deadline(pending, 5000, "the late record"))?.data), "late");
  // A 0-byte record and end of stream are still told apart.
  await a.send(new Uint8Array(0));
  assert.equal((await b.receive())?.data.length, 0);
  const atEnd = b.receive();
  await a.closeWrite();
  assert.equal(await deadline(atEnd, 5000, "end of stream"), null);
  // close() settles a waiting receive with null.
  const waiting = a.receive();
  assert.equal(await settlesAtOnce(waiting), false);
  a.close();
  assert.equal(await deadline(waiting, 100, "receive after close"), null);
});

const INTEROP_SIZES = [0, 1, 4096, 0, 60_000, 17, 0];

Deno.test(
  "connectSeqpacket() talks to a Python SOCK_SEQPACKET server; boundaries and 0-byte records kept both ways",
  needs("python3"),
  async () => {
    using dir = tempDir();
    const path = `${dir.path}/py.sock`;
    const { peer, out, creds } = await startPeer("server", path);
    await using _peer = peer;
    try {
      const conn = await connectSeqpacket({ path });
      try {
        assert.deepEqual(conn.peerCredentials(), creds);
        assert.deepEqual(conn.remoteAddr, { transport: "seqpacket", path });
        const records = INTEROP_SIZES.map((n, i) => pattern(i, n));
        // Queue them all before reading any echo, so boundaries matter.
        for (const r of records) await conn.send(r);
        for (const [i, r] of records.entries()) {
          const m = await deadline(conn.receive(), 5000, `echo ${i}`);
          assert.ok(m !== null, `echo ${i} (${r.length} B) came back as end of stream`);
          assert.deepEqual(m.data, r);
          assert.equal(m.credentials?.pid, creds.pid);
        }
        // A record with descriptors: the peer answers with their contents.
        const fds: number[] = [];
        for (let i = 0; i < 3; i++) {
          Deno.writeTextFileSync(`${dir.path}/f${i}`, `py ${i}`);
          fds.push(openFd(`${dir.path}/f${i}`));
        }
        await conn.send(enc.encode("fds"), { fds });
        for (const fd of fds) closeFd(fd);
        assert.equal(dec.decode((await conn.receive())?.data), "py 0,py 1,py 2");
      } finally {
        conn.close();
      }
      const result = JSON.parse(await nextLine(out, 10_000));
      assert.deepEqual(result.sizes, [...INTEROP_SIZES, 3]);
      assert.deepEqual(result.peer, [Deno.pid, Deno.uid(), Deno.gid()]);
    } finally {
      await out.return?.();
    }
  },
);

Deno.test(
  "listenSeqpacket() serves a Python SOCK_SEQPACKET client; boundaries and 0-byte records kept both ways",
  needs("python3"),
  async () => {
    using dir = tempDir();
    using listener = listenSeqpacket({ path: `${dir.path}/ours.sock` });
    const { peer, out, creds } = await startPeer(
      "client",
      listener.addr.path,
      ...INTEROP_SIZES.map(String),
    );
    await using _peer = peer;
    try {
      const conn = await deadline(listener.accept(), 5000, "the Python client");
      try {
        assert.deepEqual(conn.peerCredentials(), creds);
        assert.equal(conn.localAddr.path, listener.addr.path);
        const got: Uint8Array[] = [];
        for (let i = 0; i < INTEROP_SIZES.length; i++) {
          const m = await deadline(conn.receive(), 5000, `record ${i}`);
          assert.ok(m !== null, `record ${i} came back as end of stream`);
          assert.deepEqual(m.data, pattern(i, INTEROP_SIZES[i]));
          got.push(m.data);
        }
        for (const r of got) await conn.send(r);
      } finally {
        conn.close();
      }
      const result = JSON.parse(await nextLine(out, 10_000));
      assert.deepEqual(result, {
        echoed: INTEROP_SIZES,
        intact: true,
        eof: true,
        peer: [Deno.pid, Deno.uid(), Deno.gid()],
      });
    } finally {
      await out.return?.();
    }
  },
);

Deno.test(
  "SeqpacketConn.receive() gets descriptors a Python peer passed, close-on-exec",
  needs("python3"),
  async () => {
    using dir = tempDir();
    using listener = listenSeqpacket({ path: `${dir.path}/fds.sock` });
    const files = [0, 1, 2].map((i) => {
      Deno.writeTextFileSync(`${dir.path}/p${i}`, `from python ${i}`);
      return `${dir.path}/p${i}`;
    });
    const { peer, out } = await startPeer("sendfds", listener.addr.path, ...files);
    await using _peer = peer;
    try {
      using conn = await deadline(listener.accept(), 5000, "the Python client");
      const before = descriptorCount();
      const m = await deadline(conn.receive(), 5000, "the record with descriptors");
      assert.equal(dec.decode(m?.data), "files");
      assert.equal(m?.fds?.length, 3);
      const contents = m.fds.map((fd) => fdText(fd));
      assert.deepEqual(contents, ["from python 0", "from python 1", "from python 2"]);
      assert.ok(m.fds.every(isCloseOnExec));
      closeFds(m.fds);
      assert.equal(descriptorCount(), before);
      await conn.send(enc.encode("thanks"));
      assert.deepEqual(JSON.parse(await nextLine(out, 10_000)), { reply: "thanks" });
    } finally {
      await out.return?.();
    }
  },
);

// ---------------------------------------------------------------------------
// Addresses and the socket file

Deno.test("listenSeqpacket() takes a 107-byte path; 108 bytes is RangeError and creates no file", async () => {
  using dir = tempDir();
  const base = `${dir.path}/`;
  const ok = base + "a".repeat(107 - base.length);
  const tooLong = base + "b".repeat(108 - base.length);
  assert.equal(enc.encode(ok).length, 107);
  {
    using listener = listenSeqpacket({ path: ok });
    assert.equal(listener.addr.path, ok);
    using client = await connectSeqpacket({ path: ok });
    using server = await listener.accept();
    await client.send(enc.encode("x"));
    assert.equal(dec.decode((await server.receive())?.data), "x");
    assert.equal(server.localAddr.path, ok);
  }
  assert.throws(
    () => listenSeqpacket({ path: tooLong }),
    (err: unknown) => err instanceof RangeError && /108 bytes.*107/.test(err.message),
  );
  await assert.rejects(connectSeqpacket({ path: tooLong }), RangeError);
  assert.throws(() => Deno.lstatSync(tooLong), Deno.errors.NotFound);
  assert.deepEqual([...Deno.readDirSync(dir.path)], [], "nothing left in the directory");
});

Deno.test("listenSeqpacket()/connectSeqpacket() refuse an empty path and a NUL in a filesystem path", async () => {
  assert.throws(() => listenSeqpacket({ path: "" }), TypeError);
  await assert.rejects(connectSeqpacket({ path: "" }), TypeError);
  assert.throws(() => listenSeqpacket({ path: "/tmp/a\0b" }), TypeError);
  assert.throws(() => listenSeqpacket(undefined as unknown as { path: string }), TypeError);
  assert.throws(() => listenSeqpacket({ path: 5 as unknown as string }), TypeError);
});

Deno.test("listenSeqpacket() abstract names with embedded \\0 and \\xff round-trip byte-exact", async () => {
  const name = `\0bsd-seq\0\xff${Deno.pid}\xfe`;
  using listener = listenSeqpacket({ path: name });
  assert.deepEqual(listener.addr, { transport: "seqpacket", path: name });
  using client = await connectSeqpacket({ path: name });
  using server = await listener.accept();
  assert.equal(client.remoteAddr.path, name);
  assert.equal(server.localAddr.path, name);
  // The kernel bound the client an abstract name of its own; the server sees it.
  assert.ok(client.localAddr.path.startsWith("\0"));
  assert.equal(server.remoteAddr.path, client.localAddr.path);
  // A name differing only after the embedded NUL is another socket.
  await assert.rejects(
    connectSeqpacket({ path: `\0bsd-seq\0\xfe${Deno.pid}\xfe` }),
    Deno.errors.ConnectionRefused,
  );
  await client.send(enc.encode("abstract"));
  assert.equal(dec.decode((await server.receive())?.data), "abstract");
});

Deno.test("listenSeqpacket() on a bound path is AddrInUse and the first listener keeps working", async () => {
  using dir = tempDir();
  const path = `${dir.path}/taken.sock`;
  using first = listenSeqpacket({ path });
  const ledger = openSocketCount();
  assert.throws(
    () => listenSeqpacket({ path }),
    (err: unknown) =>
      err instanceof Deno.errors.AddrInUse && err.message.includes(JSON.stringify(path)),
  );
  assert.equal(openSocketCount(), ledger, "the failed listener closed its socket");
  using client = await connectSeqpacket({ path });
  using server = await first.accept();
  await client.send(enc.encode("still here"));
  assert.equal(dec.decode((await server.receive())?.data), "still here");
});

Deno.test("connectSeqpacket() to a missing path is NotFound, to a dead socket file ConnectionRefused", async () => {
  using dir = tempDir();
  const missing = `${dir.path}/missing.sock`;
  await assert.rejects(
    connectSeqpacket({ path: missing }),
    (err: unknown) =>
      err instanceof Deno.errors.NotFound && err.message.includes(JSON.stringify(missing)),
  );
  // A socket file nobody listens on any more: a second name for a closed listener's file.
  const stale = `${dir.path}/stale.sock`;
  const listener = listenSeqpacket({ path: stale });
  Deno.linkSync(stale, `${dir.path}/alias.sock`);
  listener.close();
  await assert.rejects(
    connectSeqpacket({ path: `${dir.path}/alias.sock` }),
    (err: unknown) =>
      err instanceof Deno.errors.ConnectionRefused && err.message.includes("alias.sock"),
  );
});

Deno.test("SeqpacketListener.close() removes its own socket file and leaves one that replaced it", () => {
  using dir = tempDir();
  const path = `${dir.path}/own.sock`;
  const listener = listenSeqpacket({ path });
  assert.ok(Deno.lstatSync(path).isSocket);
  listener.close();
  assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound);
  listener.close();

  const second = listenSeqpacket({ path });
  Deno.removeSync(path);
  Deno.writeTextFileSync(path, "someone else's");
  second.close();
  assert.equal(Deno.readTextFileSync(path), "someone else's");
});

Deno.test("listenSeqpacket() with a relative path removes the right file even after chdir", async () => {
  using dir = tempDir();
  const cwd = Deno.cwd();
  Deno.chdir(dir.path);
  let listener: SeqpacketListener;
  try {
    listener = listenSeqpacket({ path: "rel.sock" });
    assert.equal(listener.addr.path, "rel.sock");
  } finally {
    Deno.chdir(cwd);
  }
  using _client = await connectSeqpacket({ path: `${dir.path}/rel.sock` });
  using server = await listener.accept();
  assert.equal(server.localAddr.path, "rel.sock");
  listener.close();
  assert.throws(() => Deno.lstatSync(`${dir.path}/rel.sock`), Deno.errors.NotFound);
});

// ---------------------------------------------------------------------------
// Close, back-pressure and the descriptor ledger

Deno.test("SeqpacketConn.close(): a pending receive resolves null within 100 ms, then the peer reads null", async () => {
  using dir = tempDir();
  const { listener, client, server } = await connected(dir.path);
  try {
    const pending = server.receive();
    assert.equal(await settlesAtOnce(pending), false, "the receive is waiting");
    server.close();
    assert.equal(await deadline(pending, 100, "the pending receive after close()"), null);
    assert.equal(await deadline(client.receive(), 1000, "the peer's receive"), null);
    assert.equal(await server.receive(), null);
    assert.equal(await server.read(new Uint8Array(4)), null);
  } finally {
    client.close();
    listener.close();
  }
});

Deno.test("SeqpacketConn after close(): send, write and closeWrite are BadResource; close is a no-op", async () => {
  const [a, b] = seqpacketPair();
  a.close();
  a.close();
  await assert.rejects(a.send(new Uint8Array(1)), Deno.errors.BadResource);
  await assert.rejects(a.write(new Uint8Array(1)), Deno.errors.BadResource);
  await assert.rejects(a.closeWrite(), Deno.errors.BadResource);
  assert.throws(() => a.peerCredentials(), Deno.errors.BadResource);
  assert.equal(await a.receive(), null);
  await assert.rejects(b.send(new Uint8Array(1)), Deno.errors.BrokenPipe);
  b.close();
});

Deno.test("SeqpacketConn.close() wakes a send waiting on a full peer with BadResource", async () => {
  using pair = openPair();
  const { a } = pair;
  const record = new Uint8Array(1024);
  let waiting: Promise<number> | undefined;
  for (let i = 0; i < 10_000 && waiting === undefined; i++) {
    const p = a.send(record);
    if (!(await settlesAtOnce(p))) waiting = p;
    else await p;
  }
  assert.ok(waiting, "the peer's queue never filled");
  a.close();
  await assert.rejects(
    deadline(waiting, 100, "the waiting send after close()"),
    Deno.errors.BadResource,
  );
});

Deno.test("SeqpacketConn.send() waits for room and then delivers, never dropping a record", async () => {
  using pair = openPair();
  const { a, b } = pair;
  const sends: Promise<number>[] = [];
  for (let i = 0; i < 200; i++) {
    const r = new Uint8Array(512).fill(i);
    sends.push(a.send(r));
  }
  assert.equal(await settlesAtOnce(sends[199]), false, "the last send waits for room");
  for (let i = 0; i < 200; i++) {
    const m = await deadline(b.receive(), 5000, `record ${i}`);
    assert.equal(m?.data[0], i);
    assert.equal(m?.data.length, 512);
  }
  assert.deepEqual(await Promise.all(sends), new Array(200).fill(512));
});

Deno.test("SeqpacketListener.close() rejects a pending accept with BadResource and ends iteration", async () => {
  using dir = tempDir();
  const listener = listenSeqpacket({ path: `${dir.path}/l.sock` });
  const pending = listener.accept();
  const iterating = (async () => {
    let n = 0;
    for await (const conn of listener) {
      n++;
      conn.close();
    }
    return n;
  })();
  const client = await connectSeqpacket({ path: listener.addr.path });
  const first = await deadline(pending, 5000, "the first accept");
  first.close();
  client.close();
  listener.close();
  assert.equal(await deadline(iterating, 1000, "the iteration to end"), 0);
  await assert.rejects(listener.accept(), Deno.errors.BadResource);
});

Deno.test("connectSeqpacket() waits while the listener's backlog is full; abort and accept each end the wait", async () => {
  using dir = tempDir();
  const path = `${dir.path}/busy.sock`;
  using listener = listenSeqpacket({ path, backlog: 1 });
  const early: SeqpacketConn[] = [];
  let waiting: Promise<SeqpacketConn> | undefined;
  for (let i = 0; i < 10 && waiting === undefined; i++) {
    const attempt = connectSeqpacket({ path });
    if (await settlesAtOnce(attempt)) early.push(await attempt);
    else waiting = attempt;
  }
  try {
    assert.ok(waiting, "the backlog never filled");
    const controller = new AbortController();
    const abandoned = connectSeqpacket({ path, signal: controller.signal });
    assert.equal(await settlesAtOnce(abandoned), false);
    controller.abort(new Error("gave up"));
    await assert.rejects(deadline(abandoned, 1000, "the aborted connect"), /gave up/);
    // Accepting one makes room: the waiting connect completes and talks.
    using first = await deadline(listener.accept(), 5000, "accept");
    using conn = await deadline(waiting, 5000, "the waiting connect");
    await conn.send(enc.encode("made it"));
    const accepted: SeqpacketConn[] = [first];
    for (let i = 0; i < early.length; i++) {
      accepted.push(await deadline(listener.accept(), 5000, "accept"));
    }
    let heard = "";
    for (const server of accepted) {
      const m = await deadline(
        server.receive({ signal: AbortSignal.timeout(100) }),
        1000,
        "a record",
      )
        .catch(() => null);
      if (m) heard = dec.decode(m.data);
      if (server !== first) server.close();
    }
    assert.equal(heard, "made it");
  } finally {
    for (const c of early) c.close();
  }
});

Deno.test("SeqpacketListener.accept() aborted keeps the connection for the next accept", async () => {
  using dir = tempDir();
  using listener = listenSeqpacket({ path: `${dir.path}/a.sock` });
  const controller = new AbortController();
  const aborted = listener.accept({ signal: controller.signal });
  controller.abort(new Error("gave up"));
  await assert.rejects(aborted, { message: "gave up" });
  using client = await connectSeqpacket({ path: listener.addr.path });
  using server = await deadline(listener.accept(), 5000, "the next accept");
  await client.send(enc.encode("late"));
  assert.equal(dec.decode((await server.receive())?.data), "late");
});

Deno.test("seqpacket sockets leave the fd ledger and /proc/self/fd where they started", async () => {
  const fds = fdBaseline();
  const ledger = openSocketCount();
  {
    using dir = tempDir();
    for (let round = 0; round < 3; round++) {
      const { listener, client, server } = await connected(dir.path);
      const [a, b] = seqpacketPair();
      await client.send(new Uint8Array(10), { fds: [0, 1, 2] });
      await a.send(new Uint8Array(1), { fds: [0] });
      // Unread descriptors are closed with their socket.
      const pending = server.receive({ maxSize: 1 });
      closeFds((await pending)?.fds ?? []);
      assert.ok(openSocketCount() >= ledger + 5);
      client.close();
      server.close();
      listener.close();
      a.close();
      b.close();
    }
  }
  assert.equal(openSocketCount(), ledger);
  assert.equal(descriptorCount(), fds);
});

// ---------------------------------------------------------------------------
// Permissions and ref/unref, in a separate Deno process each

function runPeer(flags: string[], mode: string, path = ""): Promise<Record<string, unknown>> {
  return denoJson(PERMISSION_PEER, { flags, args: [mode, path] });
}

Deno.test("seqpacket needs --allow-ffi, and read, write and net access to a path, as NotCapable naming the flag", async () => {
  using dir = tempDir();
  const path = `${dir.path}/perm.sock`;
  const noFfi = await runPeer(["--allow-read", "--allow-write", "--allow-net"], "pair");
  assert.equal(noFfi.name, "NotCapable");
  assert.match(String(noFfi.message), /--allow-ffi/);
  const noWrite = await runPeer(["--allow-ffi", "--allow-read", "--allow-net"], "listen", path);
  assert.equal(noWrite.name, "NotCapable");
  assert.match(String(noWrite.message), /--allow-write/);
  const noNet = await runPeer(["--allow-ffi", "--allow-read", "--allow-write"], "connect", path);
  assert.equal(noNet.name, "NotCapable");
  assert.match(String(noNet.message), /--allow-net/);
  const abstract = await runPeer(["--allow-ffi"], "listen", "@bsd-perm");
  assert.equal(abstract.name, "NotCapable");
  assert.match(String(abstract.message), /--allow-net/);
  const pairOnly = await runPeer(["--allow-ffi"], "pair");
  assert.deepEqual(pairOnly, { name: "ok" });
  assert.deepEqual([...Deno.readDirSync(dir.path)], [], "no socket file was created");
});

Deno.test("SeqpacketConn.unref() and SeqpacketListener.unref() let a program end while they wait", async () => {
  using dir = tempDir();
  const result = await runPeer(
    ["--allow-ffi", "--allow-read", "--allow-write", "--allow-net"],
    "unref",
    `${dir.path}/u.sock`,
  );
  assert.deepEqual(result, { name: "ok" });
});
