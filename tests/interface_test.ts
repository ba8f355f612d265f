// One interface, shown: a length-prefixed message exchange written only
// against `Reader & Writer` runs unchanged over every socket type: stream
// connections (TCP, Unix), connected datagram sockets (UDP on both backends,
// Unix), a seqpacket pair, and two raw IPv6 sockets speaking experimental
// protocol 253 over ::1.
//
// The framing, and why it works on streams and on record sockets alike:
//
//   frame = tag (u32, big-endian) | body length (u32) | body (≤ MAX_BODY bytes)
//
// - Writing: each frame is built whole and handed to ONE write. A packet
//   socket sends one write as one record and never in part, so every record
//   is exactly one frame. A stream may take a write in part; the loop then
//   writes the rest, which on a stream only continues the byte sequence.
// - Reading: never "read 4 bytes, then the body". On a record socket a read
//   returns one whole record and discards what does not fit, so a 4-byte read
//   would lose the body. Instead every read offers room for at least one
//   whole frame, and the reader parses as many complete frames as its buffer
//   holds, keeping an incomplete tail for the next read. On a record socket
//   each read then returns exactly one frame and no tail remains; on a stream
//   a read may return part of a frame or several, and the tail carries over.
//   Since the room always fits the largest frame, a record is never cut.
// - The tag names the sending side. Streams and connected datagram or
//   seqpacket sockets only ever deliver the peer's frames, so a wrong tag
//   means corruption and fails the exchange. It matters on raw sockets: see
//   `rawPair` below.
//
// The echo side answers every frame; the sending side keeps at most WINDOW
// frames unanswered, so a datagram socket's receive queue (which drops what
// does not fit, unlike a stream) never holds more than WINDOW frames.

import assert from "node:assert/strict";
import { deadline, needs, prng, randomBytes, RunningDigest, tempDir } from "./_helpers.ts";
import type { Reader, Writer } from "../types.ts";
import { connectStream, listenStream, type StreamConn, type StreamListener } from "../stream.ts";
import { type DatagramBackend, listenDatagram } from "../datagram.ts";
import { seqpacketPair } from "../seqpacket.ts";
import { BPF, bpfJump, bpfStatement, openRaw, type RawSocket } from "../raw.ts";

const HEADER = 8;
const MAX_BODY = 4096;
const MAX_FRAME = HEADER + MAX_BODY;
const WINDOW = 8;
const EXCHANGE_MS = 30_000;

// ---------------------------------------------------------------------------
// The generic code: Reader and Writer only.

/** Writes `body` as one frame, with one write (more only if a stream takes it in part). */
async function writeFrame(w: Writer, tag: number, body: Uint8Array): Promise<void> {
  if (body.length > MAX_BODY) {
    throw new RangeError(`a body of ${body.length} B is over ${MAX_BODY}`);
  }
  const frame = new Uint8Array(HEADER + body.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, tag);
  view.setUint32(4, body.length);
  frame.set(body, HEADER);
  for (let done = 0; done < frame.length;) {
    const n = await w.write(frame.subarray(done));
    if (n <= 0) throw new Error(`write took ${n} bytes`);
    done += n;
  }
}

/** Reads frames from the tag `from`, whatever the reads return: parts of frames, or several. */
class FrameReader {
  #reader: Reader;
  #from: number;
  // Twice a frame: after moving an incomplete tail (< one frame) to the
  // front, a read always has room for a whole frame.
  #buf = new Uint8Array(2 * MAX_FRAME);
  #start = 0;
  #end = 0;
  /** How many reads it took so far. */
  reads = 0;

  constructor(reader: Reader, from: number) {
    this.#reader = reader;
    this.#from = from;
  }

  /** The next frame's body, or `null` at end of stream between frames. */
  async next(): Promise<Uint8Array | null> {
    // Every read adds at least one byte, and a frame has at most MAX_FRAME.
    for (let i = 0; i <= MAX_FRAME; i++) {
      const body = this.#parse();
      if (body !== null) return body;
      if (this.#start > 0) {
        this.#buf.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      const n = await this.#reader.read(this.#buf.subarray(this.#end));
      this.reads++;
      if (n === null) {
        if (this.#end > 0) throw new Error(`end of stream inside a frame (${this.#end} B)`);
        return null;
      }
      // A stream never reads 0 bytes into room; a record socket would mean an empty record.
      if (n === 0) throw new Error("an empty read: not a frame");
      this.#end += n;
    }
    throw new Error("no frame after as many reads as a frame has bytes");
  }

  #parse(): Uint8Array | null {
    const available = this.#end - this.#start;
    if (available < HEADER) return null;
    const view = new DataView(this.#buf.buffer, this.#start, HEADER);
    const tag = view.getUint32(0), length = view.getUint32(4);
    if (tag !== this.#from) {
      throw new Error(`a frame tagged ${hex(tag)}, expected ${hex(this.#from)}`);
    }
    if (length > MAX_BODY) throw new Error(`a frame claims ${length} B, over ${MAX_BODY}`);
    if (available < HEADER + length) return null;
    const body = this.#buf.slice(this.#start + HEADER, this.#start + HEADER + length);
    this.#start += HEADER + length;
    return body;
  }
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}

interface Exchanged {
  /** What `b` received, in order. */
  delivered: Uint8Array[];
  /** What came back to `a`, in order. */
  echoed: Uint8Array[];
}

/**
 * `a` sends every message as a frame tagged `tags.a`; `b` sends each back
 * tagged `tags.b`. At most WINDOW frames are unanswered at any time.
 */
async function exchange(
  a: Reader & Writer,
  b: Reader & Writer,
  messages: Uint8Array[],
  tags: { a: number; b: number },
): Promise<Exchanged> {
  const delivered: Uint8Array[] = [];
  const echoing = (async () => {
    const frames = new FrameReader(b, tags.a);
    for (let i = 0; i < messages.length; i++) {
      const body = await frames.next();
      if (body === null) throw new Error(`end of stream after ${i} frames`);
      delivered.push(body);
      await writeFrame(b, tags.b, body);
    }
  })();
  const echoed: Uint8Array[] = [];
  const frames = new FrameReader(a, tags.b);
  let sent = 0;
  try {
    while (echoed.length < messages.length) {
      while (sent < messages.length && sent - echoed.length < WINDOW) {
        await writeFrame(a, tags.a, messages[sent++]);
      }
      const body = await frames.next();
      if (body === null) throw new Error(`end of stream after ${echoed.length} echoes`);
      echoed.push(body);
    }
  } finally {
    // Settle the echo side either way, so a failure there is the one reported.
    await echoing;
  }
  return { delivered, echoed };
}

// ---------------------------------------------------------------------------
// The test data and the assertions every socket type shares

/** 200 messages: empty, one byte, the largest body, and seeded sizes between. */
function messages(seed: number): Uint8Array[] {
  const rand = prng(seed);
  const sizes = [0, 1, MAX_BODY, 0];
  while (sizes.length < 200) sizes.push(Math.floor(rand() * (MAX_BODY + 1)));
  return sizes.map((n) => randomBytes(rand, n));
}

/** Fresh tags, distinct, so frames from another run or process never match. */
function freshTags(): { a: number; b: number } {
  const [a, b] = crypto.getRandomValues(new Uint32Array(2));
  return { a, b: a === b ? (b ^ 1) >>> 0 : b };
}

async function digestOf(records: Uint8Array[]): Promise<string> {
  const d = new RunningDigest();
  for (const r of records) d.add(r);
  return await d.digest();
}

/** Runs the exchange and asserts both directions carried every message unchanged, in order. */
async function assertExchange(
  a: Reader & Writer,
  b: Reader & Writer,
  tags = freshTags(),
): Promise<void> {
  const sent = messages(0x5eed);
  const { delivered, echoed } = await deadline(
    exchange(a, b, sent, tags),
    EXCHANGE_MS,
    "the exchange",
  );
  const expected = await digestOf(sent);
  assert.equal(delivered.length, sent.length);
  assert.equal(echoed.length, sent.length);
  assert.equal(await digestOf(delivered), expected, "a → b");
  assert.equal(await digestOf(echoed), expected, "b → a");
  assert.deepEqual(echoed.map((m) => m.length), sent.map((m) => m.length));
}

// ---------------------------------------------------------------------------
// Streams

/** Both ends of a fresh connection to `listener`: the client's, then the server's. */
async function connectedPair(listener: StreamListener): Promise<[StreamConn, StreamConn]> {
  const accepted = listener.accept();
  const addr = listener.addr;
  const client = await connectStream("path" in addr ? { path: addr.path } : { port: addr.port });
  return [client, await accepted];
}

/** Both ends of a Unix stream connection in a temporary directory; all of it goes on dispose. */
async function unixConnection(): Promise<{ a: StreamConn; b: StreamConn } & Disposable> {
  const dir = tempDir();
  const listener = listenStream({ path: `${dir.path}/x.sock` });
  try {
    const [a, b] = await connectedPair(listener);
    return {
      a,
      b,
      [Symbol.dispose]() {
        a.close();
        b.close();
        dir[Symbol.dispose]();
      },
    };
  } catch (err) {
    dir[Symbol.dispose]();
    throw err;
  } finally {
    listener.close(); // the connection outlives its listener
  }
}

Deno.test("Reader & Writer exchange: 200 framed messages both ways over a TCP connection", async () => {
  using listener = listenStream({ hostname: "127.0.0.1", port: 0 });
  const [a, b] = await connectedPair(listener);
  using _a = a;
  using _b = b;
  await assertExchange(a, b);
});

Deno.test("Reader & Writer exchange: over a Unix stream connection, and end of stream after the last frame is null", async () => {
  using conn = await unixConnection();
  const { a, b } = conn;
  const tags = freshTags();
  await assertExchange(a, b, tags);
  await a.closeWrite();
  assert.equal(await deadline(new FrameReader(b, tags.a).next(), 5000, "end of stream"), null);
});

Deno.test("FrameReader: frames split into 3-byte reads and merged into one read come out whole", async () => {
  using conn = await unixConnection();
  const { a, b } = conn;
  const tag = 0x01020304;
  const sent = messages(7).slice(0, 20).map((m) => m.subarray(0, 100));

  // Merged: all twenty frames wait in the socket before the first read.
  for (const m of sent) await writeFrame(a, tag, m);
  const merged = new FrameReader(b, tag);
  const got: Uint8Array[] = [];
  for (let i = 0; i < sent.length; i++) got.push((await merged.next())!);
  assert.equal(await digestOf(got), await digestOf(sent));
  assert.ok(merged.reads < sent.length, `${merged.reads} reads for ${sent.length} frames`);

  // Split: a reader that hands out at most 3 bytes per read.
  const trickle: Reader = { read: (p) => b.read(p.subarray(0, 3)) };
  for (const m of sent) await writeFrame(a, tag, m);
  const split = new FrameReader(trickle, tag);
  got.length = 0;
  for (let i = 0; i < sent.length; i++) got.push((await split.next())!);
  assert.equal(await digestOf(got), await digestOf(sent));
  const bytes = sent.reduce((n, m) => n + HEADER + m.length, 0);
  assert.equal(split.reads, Math.ceil(bytes / 3));
});

Deno.test("FrameReader: a frame from the wrong tag, an oversized length and a truncated stream fail", async () => {
  const header = (tag: number, length: number): Uint8Array => {
    const h = new Uint8Array(HEADER);
    new DataView(h.buffer).setUint32(0, tag);
    new DataView(h.buffer).setUint32(4, length);
    return h;
  };
  const cases: [Uint8Array, RegExp][] = [
    [header(0xaaaa, 0), /: a frame tagged 0x0000aaaa, expected 0x0000bbbb$/],
    [header(0xbbbb, MAX_BODY + 1), /: a frame claims 4097 B, over 4096$/],
    // 9 bytes announced, 1 sent, then end of stream.
    [new Uint8Array([...header(0xbbbb, 9), 1]), /: end of stream inside a frame \(9 B\)$/],
  ];
  using dir = tempDir();
  using listener = listenStream({ path: `${dir.path}/x.sock` });
  // A connection per case: a failed reader leaves the stream mid-frame.
  for (const [bytes, error] of cases) {
    const [a, b] = await connectedPair(listener);
    using _a = a;
    using _b = b;
    await a.write(bytes);
    await a.closeWrite();
    await assert.rejects(deadline(new FrameReader(b, 0xbbbb).next(), 5000, "the frame"), error);
  }
  const [c, d] = seqpacketPair();
  using _c = c;
  using _d = d;
  await assert.rejects(writeFrame(c, 0, new Uint8Array(MAX_BODY + 1)), RangeError);
});

// ---------------------------------------------------------------------------
// Datagrams: two sockets, each connect()ed to the other, so write() has a
// destination and read() takes only the peer's datagrams.

const backends: DatagramBackend[] = ["ffi", "builtin"];
for (const backend of backends) {
  Deno.test({
    name: `Reader & Writer exchange: over two connected UDP sockets on the ${backend} backend`,
    // Deno's own UDP socket exists only with --unstable-net.
    ignore: backend === "builtin" && !("listenDatagram" in Deno),
    async fn() {
      using a = listenDatagram({ hostname: "127.0.0.1", port: 0, backend });
      using b = listenDatagram({ hostname: "127.0.0.1", port: 0, backend });
      assert.equal(a.backend, backend);
      await a.connect(b.localAddr);
      await b.connect(a.localAddr);
      await assertExchange(a, b);
    },
  });
}

Deno.test("Reader & Writer exchange: over two connected Unix datagram sockets", async () => {
  using dir = tempDir();
  using a = listenDatagram({ path: `${dir.path}/a.sock` });
  using b = listenDatagram({ path: `${dir.path}/b.sock` });
  await a.connect(b.localAddr);
  await b.connect(a.localAddr);
  await assertExchange(a, b);
});

// ---------------------------------------------------------------------------
// Seqpacket

Deno.test("Reader & Writer exchange: over a seqpacket pair, and end of stream after the last frame is null", async () => {
  const [a, b] = seqpacketPair();
  using _a = a;
  using _b = b;
  const tags = freshTags();
  await assertExchange(a, b, tags);
  await a.closeWrite();
  assert.equal(await deadline(new FrameReader(b, tags.a).next(), 5000, "end of stream"), null);
});

// ---------------------------------------------------------------------------
// Raw IPv6, protocol 253 (RFC 3692: for experiments) over ::1

const LOOP6 = { transport: "ip", hostname: "::1" } as const;

/**
 * Two raw IPv6 sockets for protocol 253, each connect()ed to ::1 so `write`
 * has a destination. connect() does not make them a pair: a raw socket
 * receives every packet of its protocol whose source matches the connected
 * address, and on loopback that is ::1 for both, so each socket reads its
 * own frames as well as its peer's (and any other program's protocol-253
 * traffic on ::1); the first test below shows it. The generic reader is
 * strict about tags, so instead of teaching it to skip, with `tags` each
 * socket gets a kernel filter that accepts only packets starting with the
 * peer's tag: a raw IPv6 socket's filter sees the payload, which is our
 * frame, tag first. The filter is attached before any frame is sent.
 */
async function rawPair(tags?: { a: number; b: number }): Promise<[RawSocket, RawSocket]> {
  const onlyFrom = (tag: number) => [
    bpfStatement(BPF.LD | BPF.W | BPF.ABS, 0),
    bpfJump(BPF.JMP | BPF.JEQ | BPF.K, tag, 0, 1),
    bpfStatement(BPF.RET | BPF.K, 0xffffffff),
    bpfStatement(BPF.RET | BPF.K, 0),
  ];
  const a = openRaw({ family: "ipv6", protocol: 253 });
  const b = openRaw({ family: "ipv6", protocol: 253 });
  try {
    if (tags) {
      a.setFilter(onlyFrom(tags.b));
      b.setFilter(onlyFrom(tags.a));
    }
    await a.connect(LOOP6);
    await b.connect(LOOP6);
  } catch (err) {
    a.close();
    b.close();
    throw err;
  }
  return [a, b];
}

Deno.test({
  name:
    "openRaw() IPv6 protocol 253 on ::1: a connected socket reads its own writes too (why the exchange filters)",
  ...needs("CAP_NET_RAW"),
  async fn() {
    const [a, b] = await rawPair();
    using _a = a;
    using _b = b;
    const mark = crypto.getRandomValues(new Uint8Array(16));
    await a.write(mark);
    // Other programs' protocol-253 packets may come by: look at most 50 packets deep.
    const seen = async (sock: RawSocket): Promise<boolean> => {
      const buf = new Uint8Array(2048);
      for (let i = 0; i < 50; i++) {
        const n = await deadline(sock.read(buf), 5000, "a protocol-253 packet");
        if (n === 16 && buf.subarray(0, 16).every((v, j) => v === mark[j])) return true;
      }
      return false;
    };
    assert.ok(await seen(b), "the peer received it");
    assert.ok(await seen(a), "the sender received its own packet");
  },
});

Deno.test({
  name: "Reader & Writer exchange: over two raw IPv6 sockets speaking protocol 253 on ::1",
  ...needs("CAP_NET_RAW"),
  async fn() {
    const tags = freshTags();
    const [a, b] = await rawPair(tags);
    using _a = a;
    using _b = b;
    await assertExchange(a, b, tags);
  },
});
