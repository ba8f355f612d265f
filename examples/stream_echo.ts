/**
 * A stream echo server and client, over TCP or a Unix socket: the server
 * sends back every byte it reads until the client half-closes; the client
 * writes each message, reads the echo back and prints it with its round-trip
 * time.
 *
 * ```sh
 * # TCP (default port 7007)
 * deno run --allow-net examples/stream_echo.ts server [--port P] [--count N]
 * deno run --allow-net examples/stream_echo.ts client [--port P] MESSAGE...
 * # a Unix socket
 * deno run --allow-net --allow-read --allow-write examples/stream_echo.ts \
 *   server --unix /tmp/echo.sock
 * deno run --allow-net --allow-read --allow-write examples/stream_echo.ts \
 *   client --unix /tmp/echo.sock hi
 * # both in one process, then exit: TCP on a free port, or a Unix socket
 * # (at PATH, or in a temporary directory without one)
 * deno run --allow-net --allow-read --allow-write examples/stream_echo.ts \
 *   [--unix [PATH]] [MESSAGE...]
 * ```
 *
 * `--count N` makes the server stop after N connections. A stream keeps no
 * message boundaries, so the client reads until it has as many bytes as it
 * sent: one write may arrive in several reads, or two in one.
 *
 * @module
 */

import {
  connectStream,
  type ConnectStreamOptions,
  listenStream,
  type StreamConn,
  type StreamListener,
} from "@bsd/sockets/stream";

interface Options {
  mode: "server" | "client" | "demo";
  port: number;
  /** A Unix socket path; `""` asks the demo for a temporary one. */
  unix?: string;
  count: number;
  messages: string[];
}

function parseArgs(args: string[]): Options {
  const o: Options = { mode: "demo", port: 7007, count: Infinity, messages: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "server" || arg === "client") o.mode = arg;
    else if (arg === "--port") o.port = Number(args[++i]);
    else if (arg === "--count") o.count = Number(args[++i]);
    else if (arg === "--unix") {
      // The demo makes its own path; the server and client need one given.
      o.unix = args[i + 1] !== undefined && !args[i + 1].startsWith("--") ? args[++i] : "";
    } else if (arg.startsWith("--")) throw new TypeError(`unknown option ${arg}`);
    else o.messages.push(arg);
  }
  if (o.mode !== "demo" && o.unix === "") throw new TypeError("--unix needs a path");
  if (o.messages.length === 0) o.messages = ["hello", "stream", "world"];
  return o;
}

/** Echoes one connection until the client half-closes, then closes it. */
async function echo(conn: StreamConn): Promise<number> {
  using c = conn;
  const buf = new Uint8Array(16 * 1024);
  let total = 0;
  for (let n = await c.read(buf); n !== null; n = await c.read(buf)) {
    await c.write(buf.subarray(0, n));
    total += n;
  }
  return total;
}

/** Serves connections one after another until `count` were served. */
async function serve(listener: StreamListener, count: number): Promise<void> {
  let served = 0;
  for await (const conn of listener) {
    const peer = "path" in conn.remoteAddr
      ? "a Unix client"
      : `${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`;
    const bytes = await echo(conn);
    console.log(`server: echoed ${bytes} bytes to ${peer}`);
    if (++served >= count) return;
  }
}

/** Writes each message, reads its echo back in full, prints it with the round-trip time. */
async function ask(to: ConnectStreamOptions, messages: string[]): Promise<void> {
  using conn = await connectStream(to);
  const encoder = new TextEncoder(), decoder = new TextDecoder();
  for (const text of messages) {
    const out = encoder.encode(text);
    const back = new Uint8Array(out.length);
    const started = performance.now();
    await conn.write(out);
    let got = 0;
    while (got < back.length) {
      const n = await conn.read(back.subarray(got));
      if (n === null) throw new Error(`the server closed after ${got} of ${back.length} bytes`);
      got += n;
    }
    const ms = (performance.now() - started).toFixed(3);
    console.log(`${JSON.stringify(decoder.decode(back))} in ${ms} ms`);
  }
  // Half-close: the server sees end of stream and closes its side, so this
  // read returns null once everything sent has been echoed.
  await conn.closeWrite();
  if (await conn.read(new Uint8Array(1)) !== null) throw new Error("the server sent extra bytes");
}

async function main(): Promise<void> {
  const o = parseArgs(Deno.args);
  if (o.mode === "client") {
    await ask(o.unix !== undefined ? { path: o.unix } : { port: o.port }, o.messages);
    return;
  }
  const dir = o.mode === "demo" && o.unix === "" ? Deno.makeTempDirSync() : undefined;
  try {
    // The listener removes its own socket file when it closes.
    using listener = o.unix !== undefined
      ? listenStream({ path: dir === undefined ? o.unix : `${dir}/echo.sock` })
      : listenStream({ hostname: "127.0.0.1", port: o.mode === "demo" ? 0 : o.port });
    const addr = listener.addr;
    console.log(`echo server on ${"path" in addr ? addr.path : `${addr.hostname}:${addr.port}`}`);
    if (o.mode === "server") return await serve(listener, o.count);
    const serving = serve(listener, 1);
    await ask("path" in addr ? { path: addr.path } : { port: addr.port }, o.messages);
    await serving;
  } finally {
    if (dir !== undefined) Deno.removeSync(dir, { recursive: true });
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(`stream_echo: ${err instanceof Error ? err.message : err}`);
    Deno.exitCode = 1;
  }
}
