/**
 * Sockets as Web Streams: a sender pipes a file (or its standard input) into
 * a Unix socket with `readable.pipeTo(conn.writable)`; the server pipes each
 * connection through an upper-casing `TransformStream` into its standard
 * output. Nothing is read into memory whole: `pipeTo` moves one chunk at a
 * time and waits while the other side is slow (back-pressure).
 *
 * ```sh
 * deno run --allow-net --allow-read --allow-write examples/web_streams.ts server PATH [--count N]
 * deno run --allow-net --allow-read --allow-write examples/web_streams.ts send PATH [FILE]
 * # both in one process (a socket in a temporary directory, one file), then exit
 * deno run --allow-net --allow-read --allow-write examples/web_streams.ts [FILE]
 * ```
 *
 * `send` without a file sends its standard input (`echo hi | … send PATH`);
 * the demo without one sends a few built-in lines. `--count N` makes the
 * server stop after N connections.
 *
 * Closing `conn.writable` (which `pipeTo` does when the source ends) closes
 * the whole connection, so this protocol sends in one direction only. To
 * read an answer after sending, pass `{ preventClose: true }` to `pipeTo`,
 * then call `conn.closeWrite()`.
 *
 * @module
 */

import { connectStream, listenStream, type StreamListener } from "@bsd/sockets/stream";

const SAMPLE = "one small step\nfor a socket,\none giant leap for straße names\n";

/** Upper-cases text chunk by chunk (`TextDecoderStream` already joined split characters). */
function upperCase(): TransformStream<string, string> {
  return new TransformStream({ transform: (chunk, out) => out.enqueue(chunk.toUpperCase()) });
}

/** Pipes each connection, upper-cased, to standard output until `count` were served. */
async function serve(listener: StreamListener, count: number): Promise<void> {
  let served = 0;
  for await (const conn of listener) {
    using _conn = conn;
    await conn.readable
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(upperCase())
      .pipeThrough(new TextEncoderStream())
      // Keep standard output open for the next connection and the summary.
      .pipeTo(Deno.stdout.writable, { preventClose: true });
    if (++served >= count) return;
  }
}

/** Pipes `source` into the socket at `path`; the connection closes when the source ends. */
async function send(path: string, source: ReadableStream<Uint8Array>): Promise<void> {
  const conn = await connectStream({ path });
  // pipeTo closes conn.writable at the end, and with it the connection:
  // the server reads to end of stream and finishes.
  await source.pipeTo(conn.writable);
}

/** The file's bytes as a stream, or standard input's without a file. */
async function openSource(file: string | undefined): Promise<ReadableStream<Uint8Array>> {
  if (file === undefined) return Deno.stdin.readable;
  return (await Deno.open(file)).readable; // the stream closes the file when it ends
}

async function main(): Promise<void> {
  const [mode, ...rest] = Deno.args;
  if (mode === "server" || mode === "send") {
    const path = rest[0];
    if (path === undefined) throw new TypeError(`${mode} needs the socket's path`);
    if (mode === "send") return await send(path, await openSource(rest[1]));
    const count = rest[1] === "--count" ? Number(rest[2]) : Infinity;
    using listener = listenStream({ path });
    console.error(`server on ${path}`);
    return await serve(listener, count);
  }
  const dir = Deno.makeTempDirSync({ prefix: "web-streams-" });
  try {
    using listener = listenStream({ path: `${dir}/upper.sock` });
    const serving = serve(listener, 1);
    const source = mode === undefined
      ? ReadableStream.from([SAMPLE]).pipeThrough(new TextEncoderStream())
      : await openSource(mode);
    await send(listener.addr.path, source);
    await serving;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(`web_streams: ${err instanceof Error ? err.message : err}`);
    Deno.exitCode = 1;
  }
}
