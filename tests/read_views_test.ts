// read(p) on a flooded socket takes records read ahead as views into the
// shared receive arena: each must still reach p, receive() and receiveMany()
// whole and unchanged, in order, however reads and receives of this and
// other sockets interleave.

import assert from "node:assert/strict";
import { seqpacketPair } from "../seqpacket.ts";
import { deadline } from "./_helpers.ts";

/** Record `i`: 20 + i bytes, each saying which record and which byte it is. */
function record(i: number): Uint8Array {
  const out = new Uint8Array(20 + i);
  for (let k = 0; k < out.length; k++) out[k] = (i * 31 + k) & 0xff;
  return out;
}

Deno.test("SeqpacketConn.read(p) from read-ahead: mixed with receive, receiveMany and another socket", async () => {
  const [a0, a1] = seqpacketPair();
  const [b0, b1] = seqpacketPair();
  try {
    const count = 60;
    for (let i = 0; i < count; i++) await a0.send(record(i));
    const p = new Uint8Array(16);
    let i = 0;
    // Enough reads for the batch to grow, so later ones come from read-ahead.
    for (; i < 10; i++) {
      const n = await deadline(a1.read(p), 5000, `read ${i}`);
      assert.equal(n, 16, `record ${i} is cut to p`);
      assert.deepEqual(p.subarray(0, 16), record(i).subarray(0, 16));
    }
    // Another socket fills the same arena: what a1 read ahead must survive it.
    for (let k = 0; k < 5; k++) await b0.send(new Uint8Array(40).fill(0xee));
    for (let k = 0; k < 5; k++) {
      assert.deepEqual(
        (await deadline(b1.receive(), 5000, "b1"))?.data,
        new Uint8Array(40).fill(0xee),
      );
    }
    const kept: { i: number; data: Uint8Array }[] = [];
    // Alternate: a receive is whole although the reads before it asked for 16 bytes.
    for (; i < 30; i++) {
      if (i % 2 === 0) {
        const m = await deadline(a1.receive(), 5000, `receive ${i}`);
        assert.equal(m?.truncated, false);
        assert.deepEqual(m?.data, record(i));
        kept.push({ i, data: m!.data });
      } else {
        const big = new Uint8Array(100);
        const n = await deadline(a1.read(big), 5000, `read ${i}`);
        assert.equal(n, record(i).length);
        assert.deepEqual(big.subarray(0, n!), record(i));
      }
    }
    // A batch leaves records queued; read(p) then takes the next one.
    const batch = await deadline(a1.receiveMany({ max: 3 }), 5000, "receiveMany");
    assert.deepEqual(batch?.map((m) => m.data), [record(30), record(31), record(32)]);
    for (const [k, m] of batch!.entries()) kept.push({ i: 30 + k, data: m.data });
    i = 33;
    const n = await deadline(a1.read(p), 5000, "read after receiveMany");
    assert.equal(n, 16);
    assert.deepEqual(p.subarray(0, 16), record(i).subarray(0, 16));
    i++;
    while (i < count) {
      const rest = await deadline(a1.receiveMany({ max: 64 }), 5000, "the rest");
      assert.ok(rest !== null && rest.length > 0);
      for (const m of rest) {
        assert.deepEqual(m.data, record(i), `record ${i}`);
        kept.push({ i: i++, data: m.data });
      }
    }
    // Every record handed out is still its own bytes after all later fills.
    for (let k = 0; k < 5; k++) await b0.send(new Uint8Array(200).fill(0x55));
    for (let k = 0; k < 5; k++) await deadline(b1.receive(), 5000, "b1 again");
    for (const { i, data } of kept) assert.deepEqual(data, record(i), `kept record ${i}`);
    // A 0-byte record from read-ahead is not the end; the end is null.
    await a0.send(new Uint8Array(0));
    await a0.send(record(1));
    a0.close();
    assert.equal(await deadline(a1.read(p), 5000, "0-byte record"), 0);
    assert.equal(await deadline(a1.read(p), 5000, "last record"), 16);
    assert.equal(await deadline(a1.read(p), 5000, "end"), null);
  } finally {
    a0.close();
    a1.close();
    b0.close();
    b1.close();
  }
});
