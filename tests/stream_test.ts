// Tests for stream.ts: TCP and Unix stream sockets over Deno's built-ins.

import assert from "node:assert/strict";
import {
  connectStream,
  listenStream,
  type StreamConn,
  StreamListener,
  type StreamMessage,
  streamPair,
  type StreamSendOptions,
  type TcpStreamOptions,
  type UnixStreamOptions,
} from "../stream.ts";
import type { NetAddr, Reader, UnixAddr } from "../types.ts";
import { adopterFor, type DescribedFd } from "../_internal/adopt.ts";
import { encodeInet, encodeUnix } from "../ffi/sockaddr.ts";
import {
  closeFd,
  deadline,
  denoJson,
  descriptorCount,
  fdText,
  isOpenFd,
  killOnDispose,
  lines,
  needs,
  nextLine,
  openFd,
  prng,
  procText,
  python,
  randomBytes,
  RunningDigest,
  sha256,
  tempDir,
  withDescriptorRoom,
} from "./_helpers.ts";

const LOOPBACK = "127.0.0.1";

type Transport = "tcp" | "unix";

/** Every behaviour test runs on both engines. */
const BACKENDS = ["builtin", "ffi"] as const;
type Backend = typeof BACKENDS[number];

/** A listener on a fresh address of `transport`, and the options to reach it. */
function listenOn(
  transport: Transport,
  dir: string,
  backend: Backend,
): { listener: StreamListener; target: TcpStreamOptions | UnixStreamOptions } {
  if (transport === "tcp") {
    const listener = listenStream({ hostname: LOOPBACK, port: 0, backend });
    return { listener, target: { hostname: LOOPBACK, port: listener.addr.port, backend } };
  }
  const path = `${dir}/s.sock`;
  return { listener: listenStream({ path, backend }), target: { path, backend } };
}

/** A connected pair: `client` from connectStream, `server` from accept. */
async function pair(
  transport: Transport,
  dir: string,
  backend: Backend,
): Promise<{ listener: StreamListener; client: StreamConn; server: StreamConn }> {
  const { listener, target } = listenOn(transport, dir, backend);
  const accepted = listener.accept();
  const client = await deadline(connectStream(target), 5000, "connect");
  const server = await deadline(accepted, 5000, "accept");
  return { listener, client, server };
}

/** Reads length-prefixed frames (4-byte big-endian length, then the payload). */
class FrameReader {
  #conn: Reader;
  #buf = new Uint8Array(1 << 18);
  #start = 0;
  #end = 0;
  constructor(conn: Reader) {
    this.#conn = conn;
  }
  async #fill(need: number): Promise<boolean> {
    while (this.#end - this.#start < need) {
      if (this.#buf.length - this.#start < need) {
        this.#buf.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      const n = await this.#conn.read(this.#buf.subarray(this.#end));
      if (n === null) return false;
      this.#end += n;
    }
    return true;
  }
  /** The next frame's payload (valid until the next call), or null at a clean EOF. */
  async next(): Promise<Uint8Array | null> {
    if (!await this.#fill(4)) {
      if (this.#end !== this.#start) throw new Error("end of stream inside a frame header");
      return null;
    }
    const len = new DataView(this.#buf.buffer, this.#start, 4).getUint32(0);
    if (len > 65536) throw new Error(`frame length ${len} is over 65,536: the stream is corrupt`);
    if (!await this.#fill(4 + len)) throw new Error(`end of stream inside a ${len} B frame`);
    const frame = this.#buf.subarray(this.#start + 4, this.#start + 4 + len);
    this.#start += 4 + len;
    return frame;
  }
}

/** Everything `conn` yields until end of stream. */
async function readToEnd(conn: Reader): Promise<Uint8Array> {
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  const buf = new Uint8Array(4096);
  for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
    chunks.push(buf.slice(0, n));
  }
  return new Uint8Array(await new Blob(chunks).arrayBuffer());
}

/** Echoes everything it reads until end of stream, then half-closes. */
async function echoServer(conn: StreamConn): Promise<number> {
  const buf = new Uint8Array(1 << 17);
  let total = 0;
  for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
    await conn.write(buf.subarray(0, n));
    total += n;
  }
  await conn.closeWrite();
  return total;
}

const FRAMES = 10_000;

async function echoFrames(transport: Transport, backend: Backend): Promise<void> {
  using dir = tempDir();
  const { listener, client, server } = await pair(transport, dir.path, backend);
  using _l = listener;
  using _c = client;
  using _s = server;
  const rand = prng(0x5eed);
  const pool = randomBytes(rand, (1 << 20) + 65536);
  // Sizes 0–65,536 B, mean ~9.4 KiB, with both extremes certainly present.
  const frames: Uint8Array[] = [];
  for (let i = 0; i < FRAMES; i++) {
    const size = i === 0 ? 0 : i === 1 ? 65536 : Math.floor(rand() ** 6 * 65537);
    const offset = Math.floor(rand() * (pool.length - size));
    frames.push(pool.subarray(offset, offset + size));
  }
  const sent = new RunningDigest();
  for (const f of frames) sent.add(f);

  const echoed = echoServer(server);
  const writer = (async () => {
    // Frames are packed into a staging buffer, so writes cut across frame boundaries.
    const stage = new Uint8Array(1 << 17);
    const view = new DataView(stage.buffer);
    let used = 0;
    for (const f of frames) {
      if (used + 4 + f.length > stage.length) {
        await client.write(stage.subarray(0, used));
        used = 0;
      }
      view.setUint32(used, f.length);
      stage.set(f, used + 4);
      used += 4 + f.length;
    }
    await client.write(stage.subarray(0, used));
    await client.closeWrite();
  })();
  const reader = (async () => {
    const received = new RunningDigest();
    const frames = new FrameReader(client);
    for (let f = await frames.next(); f !== null; f = await frames.next()) {
      received.add(f);
      if (received.count > FRAMES) throw new Error("more frames came back than were sent");
    }
    return received;
  })();
  const [received, , bytesEchoed] = await deadline(
    Promise.all([reader, writer, echoed]),
    60_000,
    `${FRAMES} frames echoed over ${transport}`,
  );
  const expectedBytes = frames.reduce((sum, f) => sum + 4 + f.length, 0);
  assert.equal(bytesEchoed, expectedBytes);
  assert.equal(received.count, FRAMES);
  assert.equal(await received.digest(), await sent.digest());
}

for (const backend of BACKENDS) {
  Deno.test(`StreamConn echoes 10,000 frames of 0-64 KiB both ways concurrently over TCP [${backend}]`, async () => {
    await echoFrames("tcp", backend);
  });

  Deno.test(`StreamConn echoes 10,000 frames of 0-64 KiB both ways concurrently over Unix [${backend}]`, async () => {
    await echoFrames("unix", backend);
  });

  for (const transport of ["tcp", "unix"] as const) {
    Deno.test(`StreamConn.closeWrite() over ${transport}: the peer reads EOF and can still answer [${backend}]`, async () => {
      using dir = tempDir();
      const { listener, client, server } = await pair(transport, dir.path, backend);
      using _l = listener;
      using _c = client;
      using _s = server;
      await client.write(new TextEncoder().encode("question"));
      await client.closeWrite();
      // Not server.readable: Deno closes the whole connection when that stream ends.
      const got = await deadline(readToEnd(server), 5000, "EOF");
      assert.equal(new TextDecoder().decode(got), "question");
      await server.write(new TextEncoder().encode("answer: 42"));
      server.close();
      const buf = new Uint8Array(64);
      const n = await deadline(client.read(buf), 5000, "the answer");
      assert.equal(new TextDecoder().decode(buf.subarray(0, n!)), "answer: 42");
      assert.equal(await deadline(client.read(buf), 5000, "EOF"), null);
      await assert.rejects(client.write(new Uint8Array(1)), Deno.errors.BrokenPipe);
    });
  }

  // The peer binds, accepts one connection, reads one chunk, says "got" and
  // then reads no more, so our writes fill the socket buffers and block.
  const STALLING_PEER = `
import socket, sys, time
if sys.argv[1] == "tcp":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sys.argv[1])
s.listen(1)
print(s.getsockname()[1] if sys.argv[1] == "tcp" else sys.argv[1])
c, _ = s.accept()
c.recv(65536)
print("got")
time.sleep(120)
`;

  const RESET_OR_PIPE = (err: unknown): boolean =>
    err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.ConnectionReset;

  for (const transport of ["tcp", "unix"] as const) {
    Deno.test(
      `StreamConn over ${transport}: a peer killed mid-transfer ends reads and fails writes [${backend}]`,
      needs("python3"),
      async () => {
        using dir = tempDir();
        await using peer = python(
          STALLING_PEER,
          transport === "tcp" ? "tcp" : `${dir.path}/p.sock`,
        );
        const out = lines(peer.stdout);
        try {
          const first = await nextLine(out);
          const target = transport === "tcp" ? { port: Number(first) } : { path: first };
          using conn = await deadline(
            connectStream({ ...target, backend }),
            5000,
            "connect to the peer",
          );
          const pendingRead = conn.read(new Uint8Array(1024)).then(
            (n) => ({ n, err: null as unknown }),
            (err) => ({ n: null, err }),
          );
          let written = 0;
          const writer = (async () => {
            const chunk = new Uint8Array(65536).fill(7);
            for (let i = 0; i < 100_000; i++) {
              try {
                written += await conn.write(chunk);
              } catch (err) {
                return err;
              }
            }
            return new Error("100,000 writes succeeded into a killed peer");
          })();
          assert.equal(await nextLine(out), "got");
          peer.kill("SIGKILL");
          await deadline(peer.status, 5000, "the peer to die");
          const read = await deadline(pendingRead, 5000, "the pending read to settle");
          assert.ok(
            read.n === null || read.err instanceof Deno.errors.ConnectionReset,
            String(read.err),
          );
          const writeErr = await deadline(writer, 5000, "a write to fail");
          assert.ok(RESET_OR_PIPE(writeErr), String(writeErr));
          assert.ok(written >= 65536, `only ${written} B were written before the kill`);
          // Later writes fail too, every time, and the process goes on.
          for (let i = 0; i < 3; i++) {
            await assert.rejects(conn.write(new Uint8Array(16)), RESET_OR_PIPE);
          }
        } finally {
          await out.return?.();
        }
      },
    );
  }

  Deno.test(`listenStream()/connectStream() reject ports outside 0-65535 and non-integers [${backend}]`, async () => {
    for (const port of [-1, 65536]) {
      assert.throws(() => listenStream({ backend, port }), RangeError);
      await assert.rejects(connectStream({ backend, port }), RangeError);
    }
    for (const port of [1.5, NaN, "80" as unknown as number, undefined as unknown as number]) {
      assert.throws(() => listenStream({ backend, port }), TypeError);
      await assert.rejects(connectStream({ backend, port }), TypeError);
    }
    assert.throws(
      () => listenStream({ backend, port: -1 }),
      /^RangeError: listen: port must be between/,
    );
  });

  Deno.test(`listenStream()/connectStream() reject bad Unix paths before creating anything [${backend}]`, async () => {
    using dir = tempDir();
    const long = `${dir.path}/${"x".repeat(108 - dir.path.length - 1)}`;
    assert.equal(new TextEncoder().encode(long).length, 108);
    assert.throws(() => listenStream({ backend, path: long }), (err) => {
      return err instanceof RangeError && /108 bytes, over the limit of 107/.test(err.message);
    });
    await assert.rejects(connectStream({ backend, path: long }), RangeError);
    assert.throws(() => listenStream({ backend, path: "" }), TypeError);
    await assert.rejects(connectStream({ backend, path: "" }), TypeError);
    assert.throws(() => listenStream({ backend, path: `${dir.path}/a\0b` }), TypeError);
    assert.throws(() => listenStream({ backend, path: 5 as unknown as string }), TypeError);
    assert.throws(
      () =>
        listenStream({ backend, path: `${dir.path}/a`, port: 1 } as unknown as UnixStreamOptions),
      TypeError,
    );
    assert.throws(() => listenStream(null as unknown as UnixStreamOptions), TypeError);
    assert.throws(() => listenStream({ backend, path: "\0h\xe9" }), Deno.errors.NotSupported);
    assert.deepEqual([...Deno.readDirSync(dir.path)], []);
  });

  Deno.test(`connectStream() to a missing path is NotFound naming the path [${backend}]`, async () => {
    using dir = tempDir();
    const path = `${dir.path}/missing.sock`;
    await assert.rejects(connectStream({ backend, path }), (err) => {
      assert.ok(err instanceof Deno.errors.NotFound, String(err));
      assert.equal(err.message, `connect ${JSON.stringify(path)}: no such file or directory`);
      assert.equal((err as { code?: string }).code, "ENOENT");
      return true;
    });
  });

  Deno.test(`connectStream() to a closed TCP port is ConnectionRefused naming the address [${backend}]`, async () => {
    const probe = listenStream({ backend, hostname: LOOPBACK, port: 0 });
    const port = probe.addr.port;
    probe.close();
    await assert.rejects(connectStream({ backend, port }), (err) => {
      assert.ok(err instanceof Deno.errors.ConnectionRefused, String(err));
      assert.equal(err.message, `connect "127.0.0.1:${port}": connection refused`);
      return true;
    });
  });

  Deno.test(`listenStream() on a bound path is AddrInUse and leaves the first listener whole [${backend}]`, async () => {
    using dir = tempDir();
    const path = `${dir.path}/taken.sock`;
    using first = listenStream({ backend, path });
    const ino = Deno.lstatSync(path).ino;
    assert.throws(() => listenStream({ backend, path }), (err) => {
      assert.ok(err instanceof Deno.errors.AddrInUse, String(err));
      // The FFI backend names the system call that failed.
      const call = backend === "ffi" ? "bind" : "listen";
      assert.equal(err.message, `${call} ${JSON.stringify(path)}: address already in use`);
      return true;
    });
    assert.equal(Deno.lstatSync(path).ino, ino);
    const accepted = first.accept();
    using client = await deadline(connectStream({ backend, path }), 5000, "connect");
    using server = await deadline(accepted, 5000, "accept");
    await client.write(new Uint8Array([1, 2, 3]));
    const buf = new Uint8Array(8);
    assert.equal(await deadline(server.read(buf), 5000, "read"), 3);
  });

  Deno.test(`StreamConn.write()/read() refuse resizable, shared, detached and non-Uint8Array buffers [${backend}]`, async () => {
    using dir = tempDir();
    const { listener, client, server } = await pair("unix", dir.path, backend);
    using _l = listener;
    using _c = client;
    using _s = server;
    const resizable = new Uint8Array(new ArrayBuffer(8, { maxByteLength: 16 }));
    const shared = new Uint8Array(new SharedArrayBuffer(8));
    const detached = new Uint8Array(8);
    detached.buffer.transfer();
    const cases: [string, unknown][] = [
      ["resizable", resizable],
      ["SharedArrayBuffer", shared],
      ["detached", detached],
      ["Uint8Array", new Uint16Array(4)],
      ["Uint8Array", "text"],
    ];
    for (const [word, buf] of cases) {
      await assert.rejects(client.write(buf as Uint8Array), (err) => {
        assert.ok(err instanceof TypeError, String(err));
        assert.ok(
          err.message.startsWith(`write ${JSON.stringify((client.remoteAddr as UnixAddr).path)}: `),
          err.message,
        );
        assert.ok(err.message.includes(word), err.message);
        return true;
      });
      await assert.rejects(client.read(buf as Uint8Array), TypeError);
    }
    // Nothing was sent by the refused writes.
    await client.write(new Uint8Array([9]));
    client.close();
    assert.deepEqual(
      new Uint8Array(await new Response(server.readable).arrayBuffer()),
      new Uint8Array([9]),
    );
  });

  Deno.test(`StreamConn.close() twice is a no-op; then read is null, write and closeWrite are BadResource [${backend}]`, async () => {
    using dir = tempDir();
    const { listener, client, server } = await pair("tcp", dir.path, backend);
    using _l = listener;
    using _s = server;
    client.close();
    client.close();
    assert.equal(await client.read(new Uint8Array(4)), null);
    await assert.rejects(client.write(new Uint8Array(4)), Deno.errors.BadResource);
    await assert.rejects(client.closeWrite(), Deno.errors.BadResource);
    assert.throws(() => client.setNoDelay(), Deno.errors.BadResource);
    // The peer sees the close.
    assert.equal(await deadline(server.read(new Uint8Array(4)), 5000, "EOF"), null);
  });

  for (const transport of ["tcp", "unix"] as const) {
    Deno.test(`StreamConn.close() over ${transport} settles a pending read with null [${backend}]`, async () => {
      using dir = tempDir();
      const { listener, client, server } = await pair(transport, dir.path, backend);
      using _l = listener;
      using _s = server;
      const pending = client.read(new Uint8Array(16));
      client.close();
      assert.equal(await deadline(pending, 5000, "the pending read"), null);
    });
  }

  Deno.test(`StreamConn.close() rejects a write blocked on a full peer with BadResource [${backend}]`, async () => {
    using dir = tempDir();
    const { listener, client, server } = await pair("unix", dir.path, backend);
    using _l = listener;
    using _s = server;
    const big = new Uint8Array(64 << 20);
    const pending = client.write(big);
    client.close();
    await assert.rejects(deadline(pending, 5000, "the pending write"), Deno.errors.BadResource);
  });

  Deno.test(`StreamListener.close() rejects a pending accept with BadResource and ends iteration [${backend}]`, async () => {
    const listener = listenStream({ backend, hostname: LOOPBACK, port: 0 });
    const pending = listener.accept();
    const iterated: StreamConn[] = [];
    const loop = (async () => {
      for await (const conn of listener) iterated.push(conn);
    })();
    listener.close();
    listener.close();
    await assert.rejects(deadline(pending, 5000, "the pending accept"), (err) => {
      assert.ok(err instanceof Deno.errors.BadResource, String(err));
      assert.match(
        err.message,
        /^accept "127\.0\.0\.1:\d+": socket is closed$/,
      );
      return true;
    });
    await deadline(loop, 5000, "iteration to end");
    assert.equal(iterated.length, 0);
    await assert.rejects(listener.accept(), Deno.errors.BadResource);
  });

  Deno.test(`StreamListener iteration yields each connection in turn [${backend}]`, async () => {
    const listener = listenStream({ backend, hostname: LOOPBACK, port: 0 });
    const seen: number[] = [];
    const loop = (async () => {
      for await (const conn of listener) {
        using c = conn;
        const buf = new Uint8Array(1);
        if (await c.read(buf) === 1) seen.push(buf[0]);
        if (seen.length === 3) break;
      }
    })();
    for (let i = 0; i < 3; i++) {
      using c = await connectStream({ backend, port: listener.addr.port });
      await c.write(new Uint8Array([i]));
    }
    await deadline(loop, 5000, "three connections");
    listener.close();
    assert.deepEqual(seen, [0, 1, 2]);
  });

  Deno.test(`StreamListener.close() removes its own socket file [${backend}]`, () => {
    using dir = tempDir();
    const path = `${dir.path}/own.sock`;
    const listener = listenStream({ backend, path });
    assert.ok(Deno.lstatSync(path).isSocket);
    listener.close();
    assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound);
    assert.deepEqual([...Deno.readDirSync(dir.path)], []);
  });

  Deno.test(`StreamListener.close() leaves a socket file that replaced its own [${backend}]`, async () => {
    using dir = tempDir();
    const path = `${dir.path}/shared.sock`;
    const mine = listenStream({ backend, path });
    Deno.removeSync(path);
    using theirs = listenStream({ backend, path });
    const ino = Deno.lstatSync(path).ino;
    mine.close();
    assert.equal(Deno.lstatSync(path).ino, ino);
    assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), ["shared.sock"]);
    const accepted = theirs.accept();
    using client = await deadline(
      connectStream({ backend, path }),
      5000,
      "connect to the replacement",
    );
    using server = await deadline(accepted, 5000, "accept on the replacement");
    await client.write(new Uint8Array([7]));
    const buf = new Uint8Array(1);
    assert.equal(await deadline(server.read(buf), 5000, "read on the replacement"), 1);
    assert.equal(buf[0], 7);
    theirs.close();
    assert.deepEqual([...Deno.readDirSync(dir.path)], []);
  });

  Deno.test(`StreamListener.close() leaves a regular file that replaced its socket [${backend}]`, () => {
    using dir = tempDir();
    const path = `${dir.path}/x.sock`;
    const listener = listenStream({ backend, path });
    Deno.removeSync(path);
    Deno.writeTextFileSync(path, "not a socket");
    listener.close();
    assert.equal(Deno.readTextFileSync(path), "not a socket");
  });

  Deno.test(`StreamListener.accept() rejects with signal.reason and hands a later connection to the next accept [${backend}]`, async () => {
    const listener = listenStream({ backend, hostname: LOOPBACK, port: 0 });
    try {
      const controller = new AbortController();
      const aborted = listener.accept({ signal: controller.signal });
      const reason = new Error("stop waiting");
      controller.abort(reason);
      await assert.rejects(deadline(aborted, 1000, "the aborted accept"), (err) => err === reason);
      await assert.rejects(listener.accept({ signal: AbortSignal.abort() }), {
        name: "AbortError",
      });
      using client = await connectStream({ backend, port: listener.addr.port });
      using server = await deadline(listener.accept(), 5000, "the next accept");
      assert.equal(server.remoteAddr.port, client.localAddr.port);
      await client.write(new Uint8Array([42]));
      const buf = new Uint8Array(1);
      assert.equal(await server.read(buf), 1);
      assert.equal(buf[0], 42);
    } finally {
      listener.close();
    }
  });

  Deno.test(`StreamListener.accept() calls that overlap each get one connection [${backend}]`, async () => {
    const listener = listenStream({ backend, hostname: LOOPBACK, port: 0 });
    try {
      const accepts = [listener.accept(), listener.accept(), listener.accept()];
      const clients = [];
      for (let i = 0; i < 3; i++) {
        clients.push(await connectStream({ backend, port: listener.addr.port }));
      }
      const servers = await deadline(Promise.all(accepts), 5000, "three accepts");
      const ports = servers.map((s) => s.remoteAddr.port).sort();
      assert.deepEqual(ports, clients.map((c) => c.localAddr.port).sort());
      for (const c of [...clients, ...servers]) c.close();
    } finally {
      listener.close();
    }
  });

  const FULL_BACKLOG_PEER = `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
s.listen(0)
print(s.getsockname()[1])
time.sleep(120)
`;

  Deno.test(
    `connectStream() over TCP rejects with signal.reason when aborted mid-connect [${backend}]`,
    needs("python3"),
    async () => {
      // A listener with backlog 0 that never accepts: once one connection is
      // queued, Linux drops further SYNs, so the next connect hangs.
      await using peer = python(FULL_BACKLOG_PEER);
      const out = lines(peer.stdout);
      try {
        const port = Number(await nextLine(out));
        using _queued = await deadline(connectStream({ backend, port }), 5000, "the first connect");
        const controller = new AbortController();
        const connecting = connectStream({ backend, port, signal: controller.signal });
        const reason = new Error("gave up");
        queueMicrotask(() => controller.abort(reason));
        await assert.rejects(
          deadline(connecting, 2000, "the aborted connect"),
          (err) => err === reason,
        );
      } finally {
        await out.return?.();
      }
    },
  );

  Deno.test(`connectStream() over Unix rejects with signal.reason and closes a late connection [${backend}]`, async () => {
    using dir = tempDir();
    const path = `${dir.path}/late.sock`;
    using listener = listenStream({ backend, path });
    await assert.rejects(connectStream({ backend, path, signal: AbortSignal.abort() }), {
      name: "AbortError",
    });
    const controller = new AbortController();
    const connecting = connectStream({ backend, path, signal: controller.signal });
    controller.abort(new Error("too late"));
    await assert.rejects(connecting, { message: "too late" });
    // Whichever connection reached the listener was closed by us: EOF.
    using server = await deadline(listener.accept(), 5000, "the abandoned connection");
    assert.equal(await deadline(server.read(new Uint8Array(4)), 5000, "EOF"), null);
  });

  Deno.test(`StreamConn reports TCP and Unix addresses in this package's shapes [${backend}]`, async () => {
    using dir = tempDir();
    const tcp = await pair("tcp", dir.path, backend);
    assert.deepEqual(tcp.client.remoteAddr, {
      transport: "tcp",
      hostname: LOOPBACK,
      port: (tcp.listener.addr as NetAddr).port,
    });
    assert.deepEqual(tcp.server.localAddr, tcp.client.remoteAddr);
    assert.deepEqual(tcp.server.remoteAddr, tcp.client.localAddr);
    tcp.client.setNoDelay(false);
    tcp.client.setKeepAlive(true);
    for (const r of [tcp.client, tcp.server, tcp.listener]) r.close();

    const unix = await pair("unix", dir.path, backend);
    const path = `${dir.path}/s.sock`;
    assert.deepEqual(unix.listener.addr, { transport: "unix", path });
    assert.deepEqual(unix.client.remoteAddr, { transport: "unix", path });
    assert.deepEqual(unix.client.localAddr, { transport: "unix", path: "" });
    assert.deepEqual(unix.server.remoteAddr, { transport: "unix", path: "" });
    assert.throws(() => unix.client.setNoDelay(), (err) => {
      assert.ok(err instanceof Deno.errors.NotSupported, String(err));
      assert.match(err.message, /^setNoDelay ".*s\.sock": not supported on a Unix stream socket/);
      return true;
    });
    assert.throws(() => unix.client.setKeepAlive(), Deno.errors.NotSupported);
    for (const r of [unix.client, unix.server, unix.listener]) r.close();
  });

  Deno.test(`listenStream()/connectStream() work with an abstract Unix name [${backend}]`, async () => {
    const name = `\0bsd-stream-test-${Deno.pid}`;
    using listener = listenStream({ backend, path: name });
    assert.deepEqual(listener.addr, { transport: "unix", path: name });
    const accepted = listener.accept();
    using client = await deadline(connectStream({ backend, path: name }), 5000, "connect");
    using server = await deadline(accepted, 5000, "accept");
    assert.equal(client.remoteAddr.path, name);
    await client.write(new Uint8Array([5, 6]));
    const buf = new Uint8Array(2);
    assert.equal(await server.read(buf), 2);
    assert.deepEqual(buf, new Uint8Array([5, 6]));
  });

  Deno.test(`StreamConn.readable and .writable carry the connection's bytes [${backend}]`, async () => {
    using dir = tempDir();
    const { listener, client, server } = await pair("tcp", dir.path, backend);
    using _l = listener;
    using _s = server;
    const writer = client.writable.getWriter();
    await writer.write(new TextEncoder().encode("via streams"));
    await writer.close(); // closes the connection
    const text = await deadline(new Response(server.readable).text(), 5000, "the stream");
    assert.equal(text, "via streams");
    client.close(); // already closed by the writable: still a no-op
  });

  Deno.test(`StreamListener.close() with a relative path removes its own file even after chdir [${backend}]`, () => {
    using dir = tempDir();
    Deno.mkdirSync(`${dir.path}/a`);
    Deno.mkdirSync(`${dir.path}/b`);
    const cwd = Deno.cwd();
    try {
      Deno.chdir(`${dir.path}/a`);
      const listener = listenStream({ backend, path: "rel.sock" });
      // Deno reports "rel.sock" under --allow-all and the absolute path under
      // scoped permissions (it resolves the path to check it); both must work.
      assert.match((listener.addr as UnixAddr).path, /(^|\/a\/)rel\.sock$/);
      // Someone else's file of the same name where the relative path now points.
      Deno.chdir(`${dir.path}/b`);
      Deno.writeTextFileSync("rel.sock", "b's file");
      listener.close();
      assert.equal(Deno.readTextFileSync(`${dir.path}/b/rel.sock`), "b's file");
      assert.deepEqual([...Deno.readDirSync(`${dir.path}/a`)], []);
      assert.deepEqual([...Deno.readDirSync(`${dir.path}/b`)].map((e) => e.name), ["rel.sock"]);
    } finally {
      Deno.chdir(cwd);
    }
  });
}

Deno.test("new StreamListener()/StreamConn wrap Deno's own listener and connection", async () => {
  using listener = new StreamListener(Deno.listen({ hostname: LOOPBACK, port: 0 }));
  const accepted = listener.accept();
  using client = await connectStream({ port: (listener.addr as { port: number }).port });
  using server = await deadline(accepted, 5000, "accept");
  await client.write(new Uint8Array([1]));
  assert.equal(await server.read(new Uint8Array(1)), 1);
});

// ---------------------------------------------------------------------------
// The FFI backend's own part: descriptors, interop, credentials, fromFd.

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The descriptor count with the engine started (its epoll and eventfd are not leaks). */
function fdBaseline(): number {
  for (const end of streamPair()) end.close();
  return descriptorCount();
}

function isCloseOnExec(fd: number): boolean {
  const info = procText(`/proc/${Deno.pid}/fdinfo/${fd}`);
  return (parseInt(/^flags:\s+([0-7]+)/m.exec(info)![1], 8) & 0o2000000) !== 0;
}

/** `n` files holding `${prefix} ${i}`, opened as bare descriptors. */
function openFiles(dir: string, prefix: string, n: number): { paths: string[]; fds: number[] } {
  const paths = [], fds = [];
  for (let i = 0; i < n; i++) {
    const path = `${dir}/${prefix}${i}`;
    Deno.writeTextFileSync(path, `${prefix} ${i}`);
    paths.push(path);
    fds.push(openFd(path));
  }
  return { paths, fds };
}

for (const transport of ["tcp", "unix"] as const) {
  Deno.test(`StreamConn over ${transport}: FFI and built-in ends talk both ways, 1 MiB each, digests equal`, async () => {
    using dir = tempDir();
    for (const [listenWith, connectWith] of [["ffi", "builtin"], ["builtin", "ffi"]] as const) {
      const { listener, target } = listenOn(transport, dir.path, listenWith);
      using _l = listener;
      const accepted = listener.accept();
      using client = await deadline(
        connectStream({ ...target, backend: connectWith }),
        5000,
        "connect",
      );
      using server = await deadline(accepted, 5000, "accept");
      assert.equal(listener.backend, listenWith);
      assert.equal(server.backend, listenWith);
      assert.equal(client.backend, connectWith);
      for (const end of [listener, server, client]) {
        if (end.backend === "ffi") assert.ok(Number.isInteger(end.fd) && end.fd! > 2);
        else assert.equal(end.fd, null);
      }
      const payload = randomBytes(prng(7), 1 << 20);
      const [toServer, toClient] = await deadline(
        Promise.all([
          readToEnd(server),
          readToEnd(client),
          client.write(payload).then(() => client.closeWrite()),
          server.write(payload).then(() => server.closeWrite()),
        ]),
        20_000,
        "1 MiB each way",
      );
      assert.equal(await sha256(toServer), await sha256(payload));
      assert.equal(await sha256(toClient), await sha256(payload));
      if (transport === "unix") rmSock(dir.path);
    }
  });
}

function rmSock(dir: string): void {
  try {
    Deno.removeSync(`${dir}/s.sock`);
  } catch { /* the listener removed it */ }
}

Deno.test("StreamConn.fd and StreamListener.fd are null after close(); the descriptor is closed", () => {
  const listener = listenStream({ hostname: LOOPBACK, port: 0, backend: "ffi" });
  const fd = listener.fd!;
  assert.ok(isOpenFd(fd));
  listener.close();
  assert.equal(listener.fd, null);
  assert.ok(!isOpenFd(fd));
  const [a, b] = streamPair();
  const fds = [a.fd!, b.fd!];
  a.close();
  b.close();
  assert.deepEqual([a.fd, b.fd], [null, null]);
  assert.ok(!fds.some(isOpenFd));
});

Deno.test('StreamConn.receive(): descriptors sent with "ab" come with exactly "ab", not with a later "cd"', async () => {
  using dir = tempDir();
  const before = fdBaseline();
  const [a, b] = streamPair();
  try {
    const { fds } = openFiles(dir.path, "f", 2);
    await a.send(enc.encode("ab"), { fds });
    await a.send(enc.encode("cd"));
    for (const fd of fds) closeFd(fd);
    const first = await deadline(b.receive(), 5000, "the first receive");
    assert.equal(dec.decode(first?.data), "ab");
    assert.equal(first?.fds?.length, 2);
    assert.equal(first?.controlTruncated, undefined);
    assert.deepEqual(first!.fds!.map(fdText), ["f 0", "f 1"]);
    assert.ok(first!.fds!.every(isCloseOnExec), "received descriptors are close-on-exec");
    for (const fd of first!.fds!) closeFd(fd);
    const second = await deadline(b.receive(), 5000, "the second receive");
    assert.deepEqual(second, { data: enc.encode("cd") } satisfies StreamMessage);
    // Plain bytes written before the descriptors may share their receive.
    const one = openFd(`${dir.path}/f0`);
    await a.write(enc.encode("xy"));
    await a.send(enc.encode("z"), { fds: [one] });
    await a.write(enc.encode("later"));
    closeFd(one);
    const merged = await b.receive();
    assert.ok(["xyz", "xy"].includes(dec.decode(merged?.data)), dec.decode(merged?.data));
    const fdsMessage = merged?.fds ? merged : await b.receive({ maxSize: 1 });
    assert.equal(dec.decode(fdsMessage?.data).at(-1), "z");
    assert.equal(fdsMessage?.fds?.length, 1);
    closeFd(fdsMessage!.fds![0]);
    assert.equal(dec.decode((await b.receive())?.data), "later");
  } finally {
    a.close();
    b.close();
  }
  assert.equal(descriptorCount(), before);
});

Deno.test("StreamConn.receive() with a small maxSize returns descriptors with the first bytes of their write", async () => {
  using dir = tempDir();
  const [a, b] = streamPair();
  try {
    const { fds } = openFiles(dir.path, "m", 1);
    await a.send(enc.encode("0123456789"), { fds });
    closeFd(fds[0]);
    const head = await b.receive({ maxSize: 4 });
    assert.equal(dec.decode(head?.data), "0123");
    assert.equal(head?.fds?.length, 1);
    closeFd(head!.fds![0]);
    assert.deepEqual(await b.receive(), { data: enc.encode("456789") });
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("StreamConn.read() closes descriptors that come with its bytes; close() closes unread ones", async () => {
  using dir = tempDir();
  const before = fdBaseline();
  const { fds } = openFiles(dir.path, "r", 3);
  {
    const [a, b] = streamPair();
    await a.send(enc.encode("abc"), { fds });
    const buf = new Uint8Array(16);
    assert.equal(await b.read(buf), 3);
    assert.equal(dec.decode(buf.subarray(0, 3)), "abc");
    assert.equal(descriptorCount(), before + 2 + 3, "only the pair and our own three are open");
    // Descriptors in flight, never received, when both ends close.
    await a.send(enc.encode("unread"), { fds });
    a.close();
    b.close();
  }
  for (const fd of fds) closeFd(fd);
  assert.equal(descriptorCount(), before);
});

// Test-only libc calls: bare sockets for fromFd.
const testLibc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
}).symbols;

Deno.test("StreamConn.receive() out of descriptors: controlTruncated, the ones that fit, no leak", async () => {
  using dir = tempDir();
  const before = fdBaseline();
  const [a, b] = streamPair();
  const { fds } = openFiles(dir.path, "t", 1);
  try {
    await a.send(enc.encode("five"), { fds: [fds[0], fds[0], fds[0], fds[0], fds[0]] });
    closeFd(fds[0]);
    const queued = descriptorCount();
    // The bytes are queued, so this receive completes synchronously, under the limit.
    const m = await withDescriptorRoom(2, () => b.receive());
    assert.equal(dec.decode(m?.data), "five");
    assert.equal(m?.controlTruncated, true);
    assert.equal(m?.fds?.length, 2, "the two that fit were delivered");
    assert.deepEqual(m!.fds!.map(fdText), ["t 0", "t 0"]);
    assert.equal(descriptorCount(), queued + 2);
    for (const fd of m!.fds!) closeFd(fd);
  } finally {
    a.close();
    b.close();
  }
  assert.equal(descriptorCount(), before, "the three that did not fit were not installed");
});

Deno.test("StreamConn.receive({ signal }) rejects with signal.reason and consumes nothing; close() settles it with null", async () => {
  const [a, b] = streamPair();
  try {
    const controller = new AbortController();
    const pending = b.receive({ signal: controller.signal });
    const reason = new Error("enough");
    controller.abort(reason);
    await assert.rejects(deadline(pending, 1000, "the aborted receive"), (err) => err === reason);
    await a.write(enc.encode("kept"));
    assert.equal(dec.decode((await b.receive())?.data), "kept");
    const waiting = b.receive();
    b.close();
    assert.equal(await deadline(waiting, 1000, "receive after close"), null);
    assert.equal(await b.receive(), null);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test('StreamConn on the built-in backend: send with fds, receive and peerCredentials are NotSupported naming backend: "ffi"', async () => {
  using dir = tempDir();
  const { listener, client, server } = await pair("unix", dir.path, "builtin");
  using _l = listener;
  using _c = client;
  using _s = server;
  const isNotSupported = (err: unknown): boolean => {
    assert.ok(err instanceof Deno.errors.NotSupported, String(err));
    assert.match(err.message, /backend: "ffi"/);
    return true;
  };
  await assert.rejects(client.send(enc.encode("x"), { fds: [0] }), isNotSupported);
  await assert.rejects(client.receive(), isNotSupported);
  assert.throws(() => client.peerCredentials(), isNotSupported);
  // Without descriptors, send is write.
  assert.equal(await client.send(enc.encode("ok")), 2);
  const buf = new Uint8Array(2);
  assert.equal(await server.read(buf), 2);
});

Deno.test("StreamConn.send()/receive() check their arguments before any system call", async () => {
  const before = fdBaseline();
  const [a, b] = streamPair();
  try {
    await assert.rejects(a.send(new Uint8Array(0), { fds: [0] }), RangeError);
    await assert.rejects(a.send(enc.encode("x"), { fds: "0" as unknown as number[] }), TypeError);
    await assert.rejects(a.send(enc.encode("x"), { fds: [1.5] }), TypeError);
    await assert.rejects(a.send(enc.encode("x"), { fds: [-1] }), RangeError);
    await assert.rejects(a.send(enc.encode("x"), { fds: new Array(254).fill(0) }), RangeError);
    await assert.rejects(a.send(enc.encode("x"), null as unknown as StreamSendOptions), TypeError);
    for (const maxSize of [0, -1, (1 << 30) + 1]) {
      await assert.rejects(b.receive({ maxSize }), RangeError);
    }
    await assert.rejects(b.receive({ maxSize: 1.5 }), TypeError);
    // A descriptor that is not open: the kernel refuses, nothing is sent.
    await assert.rejects(a.send(enc.encode("x"), { fds: [999_999] }), Deno.errors.BadResource);
    await a.write(enc.encode("only"));
    assert.deepEqual(await b.receive(), { data: enc.encode("only") });
  } finally {
    a.close();
    b.close();
  }
  using tcp = listenStream({ hostname: LOOPBACK, port: 0, backend: "ffi" });
  const accepted = tcp.accept();
  using client = await connectStream({ port: tcp.addr.port, backend: "ffi" });
  using _server = await accepted;
  await assert.rejects(client.send(enc.encode("x"), { fds: [0] }), Deno.errors.NotSupported);
  assert.throws(() => client.peerCredentials(), Deno.errors.NotSupported);
  client.close();
  _server.close();
  tcp.close();
  assert.equal(descriptorCount(), before);
});

Deno.test("FFI stream sockets leak no descriptor on any failure path", async () => {
  using dir = tempDir();
  const before = fdBaseline();
  const probe = listenStream({ hostname: LOOPBACK, port: 0, backend: "ffi" });
  const port = probe.addr.port;
  assert.throws(
    () => listenStream({ hostname: LOOPBACK, port, backend: "ffi" }),
    Deno.errors.AddrInUse,
  );
  probe.close();
  await assert.rejects(connectStream({ port, backend: "ffi" }), Deno.errors.ConnectionRefused);
  await assert.rejects(
    connectStream({ path: `${dir.path}/none.sock`, backend: "ffi" }),
    Deno.errors.NotFound,
  );
  await assert.rejects(
    connectStream({ port, backend: "ffi", signal: AbortSignal.abort() }),
    { name: "AbortError" },
  );
  assert.throws(
    () => listenStream({ hostname: "example.com", port: 0, backend: "ffi" }),
    TypeError,
  );
  assert.throws(
    () => listenStream({ port: 0, backend: "nope" as "ffi" }),
    /backend must be "builtin" or "ffi"/,
  );
  const listener = listenStream({ path: `${dir.path}/l.sock`, backend: "ffi" });
  const pending = listener.accept();
  listener.close();
  await assert.rejects(pending, Deno.errors.BadResource);
  assert.deepEqual([...Deno.readDirSync(dir.path)], []);
  assert.equal(descriptorCount(), before);
});

Deno.test("streamPair() ends report unnamed Unix addresses and this process as the peer", () => {
  const [a, b] = streamPair();
  try {
    assert.deepEqual(a.localAddr, { transport: "unix", path: "" });
    assert.deepEqual(b.remoteAddr, { transport: "unix", path: "" });
    assert.equal(a.backend, "ffi");
    assert.deepEqual(a.peerCredentials(), { pid: Deno.pid, uid: Deno.uid(), gid: Deno.gid() });
    assert.throws(() => a.setNoDelay(), Deno.errors.NotSupported);
  } finally {
    a.close();
    b.close();
  }
  assert.throws(() => a.peerCredentials(), Deno.errors.BadResource);
});

const FDS_PEER = new URL("./peers/stream_fds_peer.py", import.meta.url).pathname;

Deno.test(
  "StreamConn over Unix passes 3 files each way with a Python peer (socket.send_fds/recv_fds)",
  needs("python3"),
  async () => {
    using dir = tempDir();
    const path = `${dir.path}/py.sock`;
    const theirs = openFiles(dir.path, "py", 3);
    for (const fd of theirs.fds) closeFd(fd);
    fdBaseline();
    await using peer = python(Deno.readTextFileSync(FDS_PEER), path, ...theirs.paths);
    const out = lines(peer.stdout);
    // Counted with the peer's pipes open.
    const before = descriptorCount();
    try {
      assert.equal(await nextLine(out, 10_000), "ready");
      using conn = await deadline(connectStream({ path, backend: "ffi" }), 5000, "connect");
      const ours = openFiles(dir.path, "deno", 3);
      await conn.send(enc.encode("fds"), { fds: ours.fds });
      for (const fd of ours.fds) closeFd(fd);
      let answer = "";
      while (!answer.endsWith("\n")) {
        const m = await deadline(conn.receive(), 5000, "the peer's answer");
        assert.ok(m !== null && m.fds === undefined);
        answer += dec.decode(m.data);
      }
      assert.equal(answer, "fds:deno 0,deno 1,deno 2\n");
      await conn.write(enc.encode("go"));
      const m = await deadline(conn.receive(), 5000, "the peer's files");
      assert.equal(dec.decode(m?.data), "files");
      assert.deepEqual(m?.fds?.map(fdText), ["py 0", "py 1", "py 2"]);
      assert.ok(m!.fds!.every(isCloseOnExec));
      for (const fd of m!.fds!) closeFd(fd);
      await conn.write(enc.encode("bye"));
      conn.close();
      assert.equal(await nextLine(out, 10_000), "done 3");
      assert.equal(descriptorCount(), before);
    } finally {
      await out.return?.();
    }
  },
);

const CREDENTIALS_PEER = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("\\0" + sys.argv[1])
print(os.getpid(), os.getuid(), os.getgid(), flush=True)
s.recv(1)
`;

// The system's python3: nobody cannot reach one installed under /root.
const SYSTEM_PYTHON = "/usr/bin/python3";

function hasSystemPython(): boolean {
  try {
    return Deno.statSync(SYSTEM_PYTHON).isFile;
  } catch {
    return false;
  }
}

Deno.test(
  "StreamConn.peerCredentials() names a Python peer running as nobody (setpriv)",
  { ignore: needs("python3").ignore || !hasSystemPython() },
  async () => {
    const name = `sa-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    using listener = listenStream({ path: `\0${name}`, backend: "ffi" });
    const accepted = listener.accept();
    await using peer = killOnDispose(
      new Deno.Command("setpriv", {
        args: [
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          SYSTEM_PYTHON,
          "-u",
          "-c",
          CREDENTIALS_PEER,
          name,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "inherit",
      }).spawn(),
    );
    const out = lines(peer.stdout);
    try {
      using conn = await deadline(accepted, 10_000, "the Python client");
      const [pid, uid, gid] = (await nextLine(out, 10_000)).split(" ").map(Number);
      assert.equal(pid, peer.pid);
      assert.deepEqual(conn.peerCredentials(), { pid, uid: 65534, gid: 65534 });
      assert.deepEqual([uid, gid], [65534, 65534]);
      assert.deepEqual(conn.remoteAddr, { transport: "unix", path: "" });
      assert.deepEqual(conn.localAddr, { transport: "unix", path: `\0${name}` });
    } finally {
      await out.return?.();
    }
  },
);

// fromFd's part here: the adopter stream.ts registers, given descriptors made with bare libc.
const AF_UNIX = 1, AF_INET = 2, SOCK_STREAM = 1;
const F_GETFL = 3, F_SETFL = 4, F_SETFD = 2, O_NONBLOCK = 0o4000, FD_CLOEXEC = 1;

function described(
  fd: number,
  family: "unix" | "ipv4",
  listening: boolean,
): DescribedFd & { taken: boolean } {
  const d = {
    fd,
    family,
    kind: "stream" as const,
    protocol: family === "ipv4" ? 6 : 0,
    listening,
    taken: false,
    take() {
      d.taken = true;
      testLibc.fcntl(fd, F_SETFL, testLibc.fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
      testLibc.fcntl(fd, F_SETFD, FD_CLOEXEC);
    },
  };
  return d;
}

function adopt(d: DescribedFd): unknown {
  const adopter = adopterFor(d);
  assert.ok(adopter, "stream.ts registers an adopter for stream descriptors");
  return adopter.adopt(d);
}

Deno.test("the stream adopter: a listening TCP descriptor becomes an FFI StreamListener", async () => {
  const fd = testLibc.socket(AF_INET, SOCK_STREAM, 0);
  const addr = encodeInet(LOOPBACK, 0);
  assert.equal(testLibc.bind(fd, addr, addr.length), 0);
  assert.equal(testLibc.listen(fd, 8), 0);
  const d = described(fd, "ipv4", true);
  const listener = adopt(d) as StreamListener<NetAddr>;
  assert.ok(listener instanceof StreamListener);
  assert.ok(d.taken);
  assert.equal(listener.backend, "ffi");
  assert.equal(listener.fd, fd);
  assert.equal(listener.addr.hostname, LOOPBACK);
  const accepted = listener.accept();
  using client = await connectStream({ port: listener.addr.port });
  using server = await deadline(accepted, 5000, "accept on the adopted listener");
  assert.equal(server.backend, "ffi");
  await client.write(enc.encode("hi"));
  const buf = new Uint8Array(2);
  assert.equal(await server.read(buf), 2);
  listener.close();
  assert.ok(!isOpenFd(fd));
});

Deno.test("the stream adopter: connected Unix descriptors become FFI StreamConns; an unconnected one is NotConnected and left alone", async () => {
  using dir = tempDir();
  const fds = new Int32Array(2);
  assert.equal(testLibc.socketpair(AF_UNIX, SOCK_STREAM, 0, new Uint8Array(fds.buffer)), 0);
  const a = adopt(described(fds[0], "unix", false)) as StreamConn<UnixAddr>;
  const b = adopt(described(fds[1], "unix", false)) as StreamConn<UnixAddr>;
  try {
    assert.deepEqual([a.fd, b.backend], [fds[0], "ffi"]);
    assert.deepEqual(a.remoteAddr, { transport: "unix", path: "" });
    await a.write(enc.encode("adopted"));
    assert.deepEqual(await b.receive(), { data: enc.encode("adopted") });
    assert.equal(b.peerCredentials().pid, Deno.pid);
  } finally {
    a.close();
    b.close();
  }
  assert.ok(!isOpenFd(fds[0]) && !isOpenFd(fds[1]));

  // A client connected to a named listener: its peer is the path.
  const path = `${dir.path}/named.sock`;
  using _listener = listenStream({ path, backend: "ffi" });
  const raw = testLibc.socket(AF_UNIX, SOCK_STREAM, 0);
  const target = encodeUnix(path);
  assert.equal(testLibc.connect(raw, target, target.length), 0);
  const client = adopt(described(raw, "unix", false)) as StreamConn<UnixAddr>;
  assert.deepEqual(client.remoteAddr, { transport: "unix", path });
  client.close();

  const loose = testLibc.socket(AF_INET, SOCK_STREAM, 0);
  const d = described(loose, "ipv4", false);
  try {
    assert.throws(() => adopt(d), (err) => {
      assert.ok(err instanceof Deno.errors.NotConnected, String(err));
      assert.match(err.message, new RegExp(`\\b${loose}\\b`));
      return true;
    });
    assert.equal(d.taken, false);
    assert.ok(isOpenFd(loose));
    assert.equal(testLibc.fcntl(loose, F_GETFL, 0) & O_NONBLOCK, 0, "left untouched");
  } finally {
    closeFd(loose);
  }
});

// Permissions and ref/unref of the FFI backend, in a separate Deno process each.
const PERMISSION_PEER = new URL("./peers/stream_permissions.ts", import.meta.url).pathname;

function runPeer(flags: string[], mode: string, addr = ""): Promise<Record<string, unknown>> {
  return denoJson(PERMISSION_PEER, { flags, args: [mode, addr] });
}

Deno.test("the FFI stream backend asks what the built-ins ask, and --allow-ffi, as NotCapable naming the flag", async () => {
  using dir = tempDir();
  const path = `${dir.path}/perm.sock`;
  const all = ["--allow-read", "--allow-write", "--allow-net"];
  const noFfi = await runPeer(all, "listen", "tcp:0");
  assert.equal(noFfi.name, "NotCapable");
  assert.match(String(noFfi.message), /--allow-ffi/);
  const noNet = await runPeer(["--allow-ffi"], "listen", "tcp:0");
  assert.equal(noNet.name, "NotCapable");
  assert.match(String(noNet.message), /net access to "127\.0\.0\.1:0".*--allow-net/);
  const noWrite = await runPeer(["--allow-ffi", "--allow-read", "--allow-net"], "listen", path);
  assert.equal(noWrite.name, "NotCapable");
  assert.match(String(noWrite.message), /--allow-write/);
  const noUnixNet = await runPeer(
    ["--allow-ffi", "--allow-read", "--allow-write"],
    "connect",
    path,
  );
  assert.equal(noUnixNet.name, "NotCapable");
  assert.match(String(noUnixNet.message), /--allow-net/);
  const abstract = await runPeer(["--allow-ffi"], "listen", "@sa-perm");
  assert.equal(abstract.name, "NotCapable");
  assert.match(String(abstract.message), /--allow-net/);
  assert.deepEqual(await runPeer(["--allow-ffi"], "pair"), { name: "ok" });
  assert.deepEqual(await runPeer(["--allow-ffi", "--allow-net=127.0.0.1"], "listen", "tcp:0"), {
    name: "ok",
  });
  assert.deepEqual([...Deno.readDirSync(dir.path)], [], "no socket file was created");
});

Deno.test("StreamConn.unref() and StreamListener.unref() on the FFI backend let a program end while they wait", async () => {
  using dir = tempDir();
  const result = await runPeer(
    ["--allow-ffi", "--allow-read", "--allow-write", "--allow-net"],
    "unref",
    `${dir.path}/u.sock`,
  );
  assert.deepEqual(result, { name: "ok" });
});

Deno.test("StreamListener whose only accept was aborted lets a program end on both backends", async () => {
  const result = await runPeer(["--allow-ffi", "--allow-net"], "aborted", "tcp:0");
  assert.deepEqual(result, { name: "ok" });
});

Deno.test('listenStream()/connectStream() with backend: "ffi" over IPv6 loopback, with a built-in peer', async () => {
  using listener = listenStream({ hostname: "::1", port: 0, backend: "ffi" });
  assert.deepEqual(listener.addr, { transport: "tcp", hostname: "::1", port: listener.addr.port });
  for (const backend of BACKENDS) {
    const accepted = listener.accept();
    using client = await connectStream({ hostname: "::1", port: listener.addr.port, backend });
    using server = await deadline(accepted, 5000, "accept over IPv6");
    assert.deepEqual(server.remoteAddr, client.localAddr);
    assert.deepEqual(client.remoteAddr, listener.addr);
    await server.write(enc.encode(backend));
    const buf = new Uint8Array(16);
    const n = await deadline(client.read(buf), 5000, "read over IPv6");
    assert.equal(dec.decode(buf.subarray(0, n!)), backend);
  }
});
