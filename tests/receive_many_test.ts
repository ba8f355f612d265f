// Tests for receiveMany() on every packet socket: datagram (both backends,
// UDP and Unix), seqpacket, raw IPv6 and packet sockets. Each runs the same
// checks through one harness: counts, order, max, maxSize per record, an
// abort that consumes nothing, null after close, descriptors back to baseline.

import assert from "node:assert/strict";
import { listenDatagram } from "../datagram.ts";
import { seqpacketPair } from "../seqpacket.ts";
import { openPacket, openRaw } from "../raw.ts";
import type { Message, PacketSocket } from "../types.ts";
import { openSocketCount } from "../ffi/socket.ts";
import { deadline, needs, socketFdCount, tempDir } from "./_helpers.ts";

/** A receiver and a way to send it one record; `skip` bytes of each record are not ours. */
interface Subject {
  receiver: PacketSocket<unknown>;
  send(payload: Uint8Array): Promise<unknown>;
  /** Bytes before the payload in what the receiver gets (a link-layer header). */
  skip: number;
  /** A packet ring hands frames over per block, which may close between two of them. */
  blocks?: boolean;
  close(): void;
}

/** Sockets `a` (the sender) and `b` (the receiver) as a Subject that closes both. */
function subject(
  a: { close(): void },
  b: PacketSocket<unknown>,
  send: (payload: Uint8Array) => Promise<unknown>,
  more: { skip?: number; blocks?: boolean } = {},
): Subject {
  return {
    receiver: b,
    send,
    skip: more.skip ?? 0,
    blocks: more.blocks,
    close() {
      a.close();
      b.close();
    },
  };
}

/** A record whose every byte is `tag`, `size` bytes long. */
function record(tag: number, size: number): Uint8Array {
  return new Uint8Array(size).fill(tag);
}

function payloadOf(m: Message<unknown>, skip: number): Uint8Array {
  return m.data.subarray(skip);
}

/** Sends records and waits until all of them are queued at the receiver, as one batch sees them. */
async function sendAll(s: Subject, records: Uint8Array[]): Promise<void> {
  for (const r of records) await s.send(r);
}

/** receiveMany until `count` records came: with one call, unless the socket hands over blocks. */
async function collect(s: Subject, count: number): Promise<Message<unknown>[]> {
  const out: Message<unknown>[] = [];
  let calls = 0;
  for (; out.length < count && calls < count; calls++) {
    const batch = await deadline(s.receiver.receiveMany({ max: 1024 }), 5000, "receiveMany");
    assert.ok(batch !== null && batch.length >= 1, "a batch holds at least one record");
    out.push(...batch);
  }
  if (!s.blocks) assert.equal(calls, 1, "every queued record came with the first call");
  return out;
}

async function checkAll(t: Deno.TestContext, make: () => Subject): Promise<void> {
  const sockets = openSocketCount();
  const fds = socketFdCount();
  /** A step with a fresh subject, closed whatever the step does. */
  const withSubject = (t: Deno.TestContext, name: string, body: (s: Subject) => Promise<void>) =>
    t.step(name, async () => {
      const s = make();
      try {
        await body(s);
      } finally {
        s.close();
      }
    });

  await withSubject(t, "returns every queued record, in order, with one call", async (s) => {
    const sizes = [1, 0, 7, 300, 1200];
    await sendAll(s, sizes.map((n, i) => record(i + 1, n)));
    const got = await collect(s, sizes.length);
    assert.deepEqual(got.map((m) => payloadOf(m, s.skip).length), sizes);
    got.forEach((m, i) => {
      assert.ok(payloadOf(m, s.skip).every((b) => b === i + 1), `record ${i} intact`);
      assert.equal(m.truncated, false);
    });
  });

  await withSubject(t, "max caps the batch; the rest waits for the next call", async (s) => {
    await sendAll(s, [1, 2, 3, 4, 5].map((tag) => record(tag, 4)));
    const all: number[] = [];
    let sawTwo = false;
    while (all.length < 5) {
      const batch = await deadline(s.receiver.receiveMany({ max: 2 }), 5000, "receiveMany");
      assert.ok(batch !== null && batch.length >= 1 && batch.length <= 2, "1 or 2 records");
      if (batch.length === 2) sawTwo = true;
      all.push(...batch.map((m) => payloadOf(m, s.skip)[0]));
    }
    assert.deepEqual(all, [1, 2, 3, 4, 5]);
    assert.ok(sawTwo, "queued records come two at a time");
    const one = await deadline(s.receiver.receiveMany({ max: 1 }).then((b) => b), 50, "max 1")
      .catch((err) => err);
    assert.ok(one instanceof Error, "nothing is left: the call waits");
  });

  await withSubject(t, "maxSize cuts each record on its own", async (s) => {
    await sendAll(s, [record(1, 10), record(2, 3), record(3, 5), record(4, 6)]);
    const got: Message<unknown>[] = [];
    while (got.length < 4) {
      const batch = await s.receiver.receiveMany({ maxSize: s.skip + 5 });
      assert.ok(batch !== null);
      got.push(...batch);
    }
    assert.deepEqual(
      got.map((m) => [payloadOf(m, s.skip).length, m.truncated, payloadOf(m, s.skip)[0]]),
      [[5, true, 1], [3, false, 2], [5, false, 3], [5, true, 4]],
    );
  });

  await withSubject(t, "never waits for a second record", async (s) => {
    await s.send(record(9, 2));
    const batch = await deadline(s.receiver.receiveMany(), 5000, "receiveMany");
    assert.equal(batch?.length, 1);
    assert.deepEqual(payloadOf(batch![0], s.skip), record(9, 2));
  });

  await withSubject(t, "an abort rejects with the reason and consumes nothing", async (s) => {
    const controller = new AbortController();
    const pending = s.receiver.receiveMany({ signal: controller.signal });
    const reason = new Error("stop");
    controller.abort(reason);
    await assert.rejects(pending, (e) => e === reason);
    await assert.rejects(
      s.receiver.receiveMany({ signal: controller.signal }),
      (e) => e === reason,
    );
    await s.send(record(5, 3));
    const m = await deadline(s.receiver.receive(), 5000, "receive");
    assert.deepEqual(payloadOf(m!, s.skip), record(5, 3));
  });

  await withSubject(t, "bad options are refused before anything is consumed", async (s) => {
    await s.send(record(6, 1));
    await assert.rejects(s.receiver.receiveMany({ max: 0 }), RangeError);
    await assert.rejects(s.receiver.receiveMany({ max: 1025 }), RangeError);
    await assert.rejects(s.receiver.receiveMany({ max: 1.5 }), TypeError);
    await assert.rejects(s.receiver.receiveMany({ maxSize: -1 }), RangeError);
    await assert.rejects(s.receiver.receiveMany(null as never), TypeError);
    const batch = await deadline(s.receiver.receiveMany({ max: 1024 }), 5000, "receiveMany");
    assert.deepEqual(batch?.map((m) => payloadOf(m, s.skip)[0]), [6]);
  });

  await t.step("null when closed, for a pending call and after", async () => {
    const s = make();
    const pending = s.receiver.receiveMany();
    s.close();
    assert.equal(await deadline(pending, 1000, "pending receiveMany"), null);
    assert.equal(await s.receiver.receiveMany(), null);
  });

  assert.equal(openSocketCount(), sockets, "the engine's ledger is back to where it was");
  assert.equal(socketFdCount(), fds, "no socket descriptor is left open");
}

Deno.test("receiveMany() on seqpacketPair()", async (t) => {
  await checkAll(t, () => {
    const [a, b] = seqpacketPair();
    return subject(a, b, (p) => a.send(p));
  });
});

Deno.test("receiveMany() on a seqpacket connection resolves null at end of stream", async () => {
  const [a, b] = seqpacketPair();
  try {
    await a.send(record(1, 1));
    await a.send(record(2, 0));
    a.close();
    const batch = await b.receiveMany();
    assert.deepEqual(batch?.map((m) => m.data.length), [1, 0]);
    assert.equal(await b.receiveMany(), null);
    assert.equal(await b.receive(), null);
  } finally {
    b.close();
  }
});

for (const backend of ["builtin", "ffi"] as const) {
  Deno.test(`receiveMany() on UDP, ${backend} backend`, async (t) => {
    await checkAll(t, () => {
      const a = listenDatagram({ hostname: "127.0.0.1", port: 0, backend });
      const b = listenDatagram({ hostname: "127.0.0.1", port: 0, backend });
      return subject(a, b, (p) => a.send(p, b.localAddr));
    });
  });
}

Deno.test("receiveMany() on Unix datagram sockets, ffi backend", async (t) => {
  using dir = tempDir();
  let n = 0;
  await checkAll(t, () => {
    const a = listenDatagram({ path: "", backend: "ffi" });
    const b = listenDatagram({ path: `${dir.path}/b${n++}.sock`, backend: "ffi" });
    return subject(a, b, (p) => a.send(p, b.localAddr));
  });
});

/** An IP protocol number no other test uses at the same moment (144–252 are unassigned). */
function spareProtocol(): number {
  return 144 + Math.floor(Math.random() * 109);
}

Deno.test({
  name: "receiveMany() on raw IPv6 sockets",
  ...needs("CAP_NET_RAW"),
  async fn(t) {
    await checkAll(t, () => {
      const protocol = spareProtocol();
      const a = openRaw({ family: "ipv6", protocol });
      const b = openRaw({ family: "ipv6", protocol });
      return subject(a, b, (p) => a.send(p, { transport: "ip", hostname: "::1" }));
    });
  },
});

for (const immediate of [false, true]) {
  Deno.test({
    name: `receiveMany() on packet sockets on lo, ${immediate ? "immediate" : "ring"}`,
    ...needs("CAP_NET_RAW"),
    async fn(t) {
      await checkAll(t, () => {
        // A local-range EtherType of its own, so no other frame reaches the receiver.
        const protocol = 0xb000 + Math.floor(Math.random() * 0x1000);
        const a = openPacket({ interface: "lo", protocol, immediate: true });
        const b = openPacket({ interface: "lo", protocol, immediate });
        const header = new Uint8Array(14);
        new DataView(header.buffer).setUint16(12, protocol);
        return subject(a, b, (p) => {
          const frame = new Uint8Array(14 + p.length);
          frame.set(header);
          frame.set(p, 14);
          return a.send(frame);
        }, { skip: 14, blocks: !immediate });
      });
    },
  });
}

Deno.test("receiveMany() on a built-in Unix datagram socket leaves no receive pending: a send still works", async () => {
  using dir = tempDir();
  using a = listenDatagram({ path: `${dir.path}/a.sock`, backend: "builtin" });
  using b = listenDatagram({ path: `${dir.path}/b.sock`, backend: "builtin" });
  await a.send(record(1, 1), b.localAddr);
  const batch = await deadline(b.receiveMany(), 5000, "receiveMany");
  assert.deepEqual(batch?.map((m) => m.data[0]), [1]);
  // Deno refuses a send while a receive is pending on the socket.
  await b.send(record(3, 1), a.localAddr);
  assert.deepEqual((await a.receive())?.data, record(3, 1));
});
