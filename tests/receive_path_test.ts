// The receive paths' shortcuts must not show: read(p) on a datagram socket
// (a plain recv) cuts to p, keeps 0-byte records, closes descriptors and
// fills whichever buffer it is given; records copied out of the receive
// arena together (one buffer per run of short ones) stay whole and
// independent; a run of records from one sender decodes its address once,
// yet every record gets an address object of its own.

import assert from "node:assert/strict";
import { datagramPair, listenDatagram } from "../datagram.ts";
import { seqpacketPair } from "../seqpacket.ts";
import { deadline, socketFdCount, tempDir } from "./_helpers.ts";

/** Record `i` of `size` bytes, each byte saying which record and which byte it is. */
function record(i: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let k = 0; k < size; k++) out[k] = (i * 37 + k) & 0xff;
  return out;
}

Deno.test("DatagramSocket.read(p), FFI backend: cut to p, 0 B kept, descriptors closed, any buffer", async () => {
  const fds = socketFdCount();
  const [a, b] = datagramPair();
  try {
    const buffers = [new Uint8Array(64), new Uint8Array(16), new Uint8Array(64)];
    for (let i = 0; i < 30; i++) {
      // The same buffer twice, then others: the path keeps where it last pointed.
      const p = buffers[Math.floor(i / 2) % buffers.length];
      const size = i % 5 === 0 ? 0 : 10 + i;
      const pending = b.read(p);
      await a.send(record(i, size), undefined, i % 4 === 1 ? { fds: [a.fd!] } : undefined);
      const n = await deadline(pending, 5000, `record ${i}`);
      assert.equal(n, Math.min(size, p.length), `record ${i}`);
      assert.deepEqual(p.subarray(0, n!), record(i, size).subarray(0, p.length));
    }
  } finally {
    a.close();
    b.close();
  }
  assert.equal(socketFdCount(), fds, "descriptors that came with records were not closed");
});

Deno.test("DatagramSocket.read(p) over UDP, FFI backend: each datagram into the buffer given", async () => {
  using r = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
  using s = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
  const small = new Uint8Array(8), large = new Uint8Array(2048);
  for (let i = 0; i < 20; i++) {
    const p = i % 3 === 0 ? small : large;
    const pending = r.read(p);
    await s.send(record(i, 100 + i), r.localAddr);
    const n = await deadline(pending, 5000, `datagram ${i}`);
    assert.equal(n, Math.min(100 + i, p.length));
    assert.deepEqual(p.subarray(0, n!), record(i, 100 + i).subarray(0, p.length));
  }
});

Deno.test("receive() and receiveMany(): records copied out together stay whole and apart", async () => {
  const [a, b] = seqpacketPair();
  const [c, d] = seqpacketPair();
  try {
    // Short and long records mixed, so runs that share a buffer end at long ones.
    const size = (i: number) => i % 9 === 4 ? 5000 + i : i % 7 === 0 ? 0 : 30 + i;
    const kept: { i: number; data: Uint8Array }[] = [];
    let i = 0;
    for (let round = 0; round < 4; round++) {
      for (let k = 0; k < 40; k++) await a.send(record(i + k, size(i + k)));
      const end = i + 40;
      while (i < end) {
        if (i % 3 === 0) {
          const m = await deadline(b.receive(), 5000, `receive ${i}`);
          kept.push({ i: i++, data: m!.data });
        } else {
          const batch = await deadline(b.receiveMany({ max: 64 }), 5000, `batch at ${i}`);
          for (const m of batch!) kept.push({ i: i++, data: m.data });
        }
      }
      // Another socket fills the arena in between.
      await c.send(new Uint8Array(300).fill(0xee));
      assert.deepEqual((await d.receive())?.data, new Uint8Array(300).fill(0xee));
    }
    for (const { i, data } of kept) assert.deepEqual(data, record(i, size(i)), `record ${i}`);
    // Writing into one record changes no other (neighbours may share its buffer).
    for (const { data } of kept) data.fill(0x55);
    for (const { i, data } of kept) {
      assert.equal(data.length, size(i), `record ${i}'s length`);
      assert.ok(data.every((x) => x === 0x55), `record ${i} was overwritten`);
    }
  } finally {
    a.close();
    b.close();
    c.close();
    d.close();
  }
});

Deno.test("DatagramSocket.receive(), FFI backend: every record its sender, in an object of its own", async () => {
  using dir = tempDir();
  const o = { backend: "ffi" } as const;
  using r = listenDatagram({ path: `${dir.path}/r`, ...o });
  using s1 = listenDatagram({ path: `${dir.path}/s1`, ...o });
  using s2 = listenDatagram({ path: `${dir.path}/s2`, ...o });
  using u = listenDatagram({ hostname: "127.0.0.1", port: 0, ...o });
  using u1 = listenDatagram({ hostname: "127.0.0.1", port: 0, ...o });
  using u2 = listenDatagram({ hostname: "127.0.0.1", port: 0, ...o });
  const order = [1, 1, 1, 2, 2, 1, 2, 1, 1];
  for (const [i, who] of order.entries()) {
    await (who === 1 ? s1 : s2).send(record(i, 20), r.localAddr);
    await (who === 1 ? u1 : u2).send(record(i, 20), u.localAddr);
  }
  const unix: unknown[] = [], udp: unknown[] = [];
  for (const [i, who] of order.entries()) {
    const m = await deadline(r.receive(), 5000, `unix ${i}`);
    assert.deepEqual(m!.from, (who === 1 ? s1 : s2).localAddr, `unix record ${i}`);
    assert.ok(!unix.includes(m!.from), `unix record ${i} shares its from`);
    unix.push(m!.from);
    // A caller that changes what it got changes nothing the next record gets.
    (m!.from as { path: string }).path = "changed";
    const n = await deadline(u.receive(), 5000, `udp ${i}`);
    assert.deepEqual(n!.from, (who === 1 ? u1 : u2).localAddr, `udp record ${i}`);
    assert.ok(!udp.includes(n!.from), `udp record ${i} shares its from`);
    udp.push(n!.from);
    (n!.from as { port: number }).port = 1;
  }
});

Deno.test("a record whose shared buffer the caller transferred is an InvalidData error, not an empty record", async () => {
  const [a, b] = seqpacketPair();
  try {
    for (const many of [false, true]) {
      // 64 short records queued at once: one recvmmsg reads them ahead into one shared buffer.
      for (let i = 0; i < 64; i++) await a.send(record(i, 3));
      let whole = 0, lost = 0;
      for (let got = 0; got < 64;) {
        try {
          const batch = many ? (await b.receiveMany({ max: 8 }))! : [(await b.receive())!];
          for (const r of batch) {
            assert.deepEqual(r.data, record(got, 3), `record ${got} arrives whole or not at all`);
            got++;
            whole++;
          }
          // Legal for the caller once it is done with the batch: hand the bytes on
          // (postMessage with a transfer list does this), detaching what shares them.
          for (const r of batch) {
            const buffer = r.data.buffer as ArrayBuffer;
            if (!buffer.detached) buffer.transfer();
          }
        } catch (err) {
          assert.ok(err instanceof Deno.errors.InvalidData, String(err));
          assert.match(err.message, /^receive .*a record read ahead was lost: .*transferred/);
          got++;
          lost++;
        }
      }
      assert.equal(whole + lost, 64);
      if (many) {
        // receiveMany reads no more than it returns: nothing left behind shares a buffer.
        assert.equal(lost, 0);
      } else assert.ok(lost > 0, "records receive() read ahead shared a transferred buffer");
      // The socket goes on: the next record arrives whole.
      await a.send(record(99, 5));
      assert.deepEqual((await b.receive())!.data, record(99, 5));
    }
  } finally {
    a.close();
    b.close();
  }
});
