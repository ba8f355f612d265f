// SeqpacketConn.read(p) receives straight into p when nothing is read
// ahead, and through the inbox when a batch read ahead: either way each call
// returns one record, cut to p, in order; a 0-byte record is a record, not
// the end of the stream; descriptors that come along are closed.

import assert from "node:assert/strict";
import { seqpacketPair } from "../seqpacket.ts";
import { deadline, socketFdCount } from "./_helpers.ts";

/** Record `i`: `i % 50` bytes (so some are empty), each byte naming it. */
function record(i: number): Uint8Array {
  return new Uint8Array(i % 50).fill(i & 0xff);
}

Deno.test("SeqpacketConn.read(p): records in order, cut to p, 0 bytes not EOF, then null", async () => {
  const fds = socketFdCount();
  const [a, b] = seqpacketPair();
  try {
    // One at a time (each read finds one record: the direct path).
    for (let i = 0; i < 60; i++) {
      const buf = new Uint8Array(32);
      const read = b.read(buf);
      await a.send(record(i), i % 7 === 0 ? { fds: [a.fd!] } : undefined);
      const n = await deadline(read, 5000, `record ${i}`);
      assert.equal(n, Math.min(32, i % 50), `record ${i}`);
      assert.deepEqual(buf.subarray(0, n!), record(i).subarray(0, 32));
    }
    // A flood first (the engine switches to batches and reads ahead).
    for (let i = 0; i < 200; i++) await a.send(record(i));
    for (let i = 0; i < 200; i++) {
      const buf = new Uint8Array(40);
      const n = await b.read(buf);
      assert.equal(n, Math.min(40, i % 50), `flooded record ${i}`);
      assert.deepEqual(buf.subarray(0, n!), record(i).subarray(0, 40));
    }
    await a.send(new Uint8Array(0));
    assert.equal(await b.read(new Uint8Array(8)), 0, "a 0-byte record is a record");
    a.close();
    assert.equal(await deadline(b.read(new Uint8Array(8)), 5000, "end"), null);
    assert.equal(await b.read(new Uint8Array(8)), null);
  } finally {
    a.close();
    b.close();
  }
  assert.equal(socketFdCount(), fds, "descriptors leaked");
});
