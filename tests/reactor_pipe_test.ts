// FFI stream sockets wait on Deno's own reactor where the runtime offers
// one (Node compatibility's pipe_wrap.Pipe), and on the engine's epoll wait
// where it does not: both paths carry the same bytes, settle on abort and
// close the same way, and leave no descriptor behind.

import assert from "node:assert/strict";
import { theReactor } from "../ffi/reactor.ts";
import { reactorPipesAvailable, setReactorPipes } from "../ffi/reactor_pipe.ts";
import { FdSocket } from "../ffi/socket.ts";
import { streamPair } from "../stream.ts";
import { closeFd, deadline, prng, randomBytes, sha256, socketFdCount } from "./_helpers.ts";

const available = reactorPipesAvailable();

/** Runs `body` with new stream sockets on the reactor (`on`) or on the engine. */
async function withPipes<T>(on: boolean, body: () => Promise<T>): Promise<T> {
  setReactorPipes(on);
  try {
    return await body();
  } finally {
    setReactorPipes(true);
  }
}

/**
 * Echo round trips whose reads wait (each is asked before its bytes are
 * written), then 4 MiB written at once into a socket that holds far less,
 * read back by digest. Returns the engine events this took.
 */
async function exercise(): Promise<number> {
  const [a, b] = streamPair();
  const reactor = theReactor();
  const before = reactor.eventCount;
  try {
    const buf = new Uint8Array(64), back = new Uint8Array(64);
    for (let i = 0; i < 50; i++) {
      const echoed = b.read(buf).then((n) => b.write(buf.subarray(0, n!)));
      const reply = a.read(back);
      await a.write(new Uint8Array(64).fill(i));
      await echoed;
      assert.equal(await reply, 64);
      assert.deepEqual(back, new Uint8Array(64).fill(i));
    }
    const data = randomBytes(prng(16), 4 << 20);
    const sent = a.write(data);
    const chunks: Uint8Array[] = [];
    let got = 0;
    while (got < data.length) {
      const chunk = new Uint8Array(65536);
      const n = await deadline(b.read(chunk), 5000, "the bulk bytes");
      assert.ok(n !== null, `end of stream after ${got} B`);
      chunks.push(chunk.subarray(0, n));
      got += n;
    }
    assert.equal(await sent, data.length);
    assert.equal(await sha256(...chunks), await sha256(data));
    return reactor.eventCount - before;
  } finally {
    a.close();
    b.close();
  }
}

Deno.test({
  name: "FFI stream reads and writes that wait finish on Deno's reactor: no engine event",
  ignore: !available,
  async fn() {
    const fds = socketFdCount();
    assert.equal(await withPipes(true, exercise), 0);
    assert.equal(socketFdCount(), fds, "descriptors leaked");
  },
});

Deno.test("without the reactor's Pipe, FFI stream reads and writes wait on the engine", async () => {
  const fds = socketFdCount();
  const events = await withPipes(false, exercise);
  assert.ok(events >= 50, `${events} engine events for 50 waited-for replies`);
  assert.equal(socketFdCount(), fds, "descriptors leaked");
});

for (const on of [true, false]) {
  const path = on ? "the reactor" : "the engine";
  Deno.test({
    name: `a read parked on ${path} rejects on abort and consumes nothing`,
    ignore: on && !available,
    async fn() {
      await withPipes(on, async () => {
        const [a, b] = FdSocket.pair("stream", { label: "pair" });
        try {
          const ac = new AbortController();
          const buf = new Uint8Array(8);
          const parked = b.readInto(buf, ac.signal);
          ac.abort(new Error("stop"));
          await assert.rejects(parked, { message: "stop" });
          await a.sendAll(new TextEncoder().encode("xyz"), undefined, "write");
          assert.equal(await deadline(b.readInto(buf), 5000, "read"), 3);
          assert.equal(new TextDecoder().decode(buf.subarray(0, 3)), "xyz");
        } finally {
          a.close();
          b.close();
        }
      });
    },
  });

  Deno.test({
    name: `close() settles a read and a write parked on ${path}; no descriptor leaks`,
    ignore: on && !available,
    async fn() {
      const fds = socketFdCount();
      await withPipes(on, async () => {
        const [a, b] = streamPair();
        const read = a.read(new Uint8Array(16));
        // Far more than the socket holds, so the write waits for room.
        const write = a.write(new Uint8Array(8 << 20));
        a.close();
        assert.equal(await read, null);
        await assert.rejects(write, Deno.errors.BadResource);
        b.close();
      });
      assert.equal(socketFdCount(), fds, "descriptors leaked");
    },
  });

  Deno.test({
    name: `after a read(p) that waited on ${path}, receive() gets descriptors with their bytes`,
    ignore: on && !available,
    async fn() {
      const fds = socketFdCount();
      await withPipes(on, async () => {
        const [a, b] = streamPair();
        try {
          const buf = new Uint8Array(4);
          const first = b.read(buf);
          await a.write(new TextEncoder().encode("head"));
          assert.equal(await first, 4);
          // Let the event loop run, as a program would between the two.
          await new Promise((r) => setTimeout(r, 0));
          await a.send(new TextEncoder().encode("ab"), { fds: [a.fd!] });
          const m = await deadline(b.receive(), 5000, "receive");
          assert.equal(new TextDecoder().decode(m?.data), "ab");
          assert.equal(m?.fds?.length, 1);
          for (const fd of m!.fds!) closeFd(fd);
        } finally {
          a.close();
          b.close();
        }
      });
      assert.equal(socketFdCount(), fds, "descriptors leaked");
    },
  });
}

Deno.test("a receive() asked after a parked read(p) is served after it", async () => {
  const [a, b] = streamPair();
  try {
    const buf = new Uint8Array(4);
    const read = b.read(buf);
    const received = b.receive();
    await a.write(new TextEncoder().encode("abcd"));
    assert.equal(await deadline(read, 5000, "read"), 4);
    assert.equal(new TextDecoder().decode(buf), "abcd");
    await a.write(new TextEncoder().encode("ef"));
    const m = await deadline(received, 5000, "receive");
    assert.equal(new TextDecoder().decode(m?.data), "ef");
  } finally {
    a.close();
    b.close();
  }
});
