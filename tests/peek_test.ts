import assert from "node:assert/strict";
import { listenDatagram } from "../datagram.ts";
import { closeFds, seqpacketPair } from "../seqpacket.ts";
import { streamPair } from "../stream.ts";
import { deadline, descriptorCount } from "./_helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("receive({ peek }) (UDP): a 100-byte record peeked with maxSize 10 reports recordLength 100, then comes whole", async () => {
  using a = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
  using b = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
  const record = new Uint8Array(100).map((_, i) => i);
  await b.send(record, a.localAddr);
  const peeked = await deadline(a.receive({ peek: true, maxSize: 10 }), 5000, "peek");
  assert.ok(peeked);
  assert.deepEqual(peeked.data, record.subarray(0, 10));
  assert.equal(peeked.truncated, true);
  assert.equal(peeked.recordLength, 100);
  assert.deepEqual(peeked.from, b.localAddr);
  const again = await a.receive({ peek: true });
  assert.deepEqual(again?.data, record);
  assert.equal(again?.truncated, false);
  const taken = await a.receive();
  assert.deepEqual(taken?.data, record);
  assert.equal(taken?.truncated, false);
  assert.equal(taken?.recordLength, undefined);
});

Deno.test("receive({ peek }) (UDP): a record read ahead is peeked in order; a pending peek waits; abort consumes nothing", async () => {
  using a = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
  using b = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
  for (const text of ["one", "two", "three", "four"]) await b.send(enc.encode(text), a.localAddr);
  // The second receive asks the kernel for two records: "three" waits read ahead.
  assert.equal(dec.decode((await a.receive())!.data), "one");
  assert.equal(dec.decode((await a.receive())!.data), "two");
  const ahead = await a.receive({ peek: true, maxSize: 2 });
  assert.equal(dec.decode(ahead!.data), "th");
  assert.equal(ahead!.recordLength, 5);
  assert.equal(dec.decode((await a.receive())!.data), "three");
  assert.equal(dec.decode((await a.receive())!.data), "four");
  const aborted = new AbortController();
  const gone = a.receive({ peek: true, signal: aborted.signal });
  aborted.abort(new Error("stop"));
  await assert.rejects(gone, /stop/);
  const waiting = a.receive({ peek: true });
  await b.send(enc.encode("five"), a.localAddr);
  assert.equal(dec.decode((await deadline(waiting, 5000, "peek"))!.data), "five");
  assert.equal(dec.decode((await a.receive())!.data), "five");
});

Deno.test("receive({ peek }) (seqpacket): no descriptors on the peek, the originals on the receive; null at end", async () => {
  const before = descriptorCount();
  const [a, b] = seqpacketPair();
  const [c, d] = seqpacketPair();
  try {
    await a.send(enc.encode("with fds"), { fds: [c.fd!, d.fd!] });
    const peeked = await b.receive({ peek: true });
    assert.equal(dec.decode(peeked!.data), "with fds");
    assert.equal(peeked!.fds, undefined);
    assert.equal(peeked!.recordLength, 8);
    const taken = await b.receive();
    assert.equal(taken!.fds?.length, 2);
    closeFds(taken!.fds!);
    await a.send(new Uint8Array(0));
    const empty = await b.receive({ peek: true });
    assert.equal(empty?.data.length, 0);
    assert.equal((await b.receive())?.data.length, 0);
    a.close();
    assert.equal(await deadline(b.receive({ peek: true }), 5000, "end"), null);
  } finally {
    for (const s of [a, b, c, d]) s.close();
  }
  assert.equal(descriptorCount(), before);
});

Deno.test("StreamConn.receive({ peek }) (FFI): bytes peeked are read again", async () => {
  const [a, b] = streamPair();
  try {
    await a.write(enc.encode("hello"));
    const peeked = await deadline(b.receive({ peek: true }), 5000, "peek");
    assert.equal(dec.decode(peeked!.data), "hello");
    const buf = new Uint8Array(16);
    const n = await b.read(buf);
    assert.equal(dec.decode(buf.subarray(0, n!)), "hello");
    a.close();
    assert.equal(await deadline(b.receive({ peek: true }), 5000, "end"), null);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test('receive({ peek }) on the built-in backend is NotSupported naming backend: "ffi"', async () => {
  using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "builtin" });
  await assert.rejects(
    sock.receive({ peek: true }),
    (e: Error) => e instanceof Deno.errors.NotSupported && /backend: "ffi"/.test(e.message),
  );
  await assert.rejects(sock.receive({ peek: 1 as unknown as boolean }), TypeError);
});
