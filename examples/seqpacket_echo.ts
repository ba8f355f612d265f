/**
 * A sequenced-packet echo server and client over a Unix socket: the server
 * sends every record back as one record; the client sends all its messages
 * first, then receives the echoes, and they come back as many records as were
 * sent, an empty one included. Over a stream, the same writes could arrive
 * merged into one read.
 *
 * ```sh
 * deno run --allow-ffi --allow-net --allow-read --allow-write examples/seqpacket_echo.ts \
 *   server PATH [--count N]
 * deno run --allow-ffi --allow-net --allow-read --allow-write examples/seqpacket_echo.ts \
 *   client PATH MESSAGE...
 * # both in one process, on a socket in a temporary directory, then exit
 * deno run --allow-ffi --allow-net --allow-read --allow-write examples/seqpacket_echo.ts \
 *   [MESSAGE...]
 * ```
 *
 * The server names each client by the process id the kernel recorded when
 * it connected. `--count N` makes it stop after N connections. Linux only.
 *
 * @module
 */

import {
  connectSeqpacket,
  listenSeqpacket,
  type SeqpacketConn,
  type SeqpacketListener,
} from "@bsd/sockets/seqpacket";

interface Options {
  mode: "server" | "client" | "demo";
  path: string;
  count: number;
  messages: string[];
}

function parseArgs(args: string[]): Options {
  const o: Options = { mode: "demo", path: "", count: Infinity, messages: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if ((arg === "server" || arg === "client") && i === 0) {
      o.mode = arg;
      o.path = args[++i] ?? "";
      if (o.path === "") throw new TypeError(`${arg} needs the socket's path`);
    } else if (arg === "--count") o.count = Number(args[++i]);
    else if (arg.startsWith("--")) throw new TypeError(`unknown option ${arg}`);
    else o.messages.push(arg);
  }
  if (o.messages.length === 0) o.messages = ["hello", "", "seqpacket", "world"];
  return o;
}

/** Sends each record back as it came, until the client closes its side. */
async function echo(conn: SeqpacketConn): Promise<number> {
  using c = conn;
  let records = 0;
  // Iteration ends at end of stream; an empty record is a record, not the end.
  for await (const message of c) {
    await c.send(message.data);
    records++;
  }
  return records;
}

/** Serves connections one after another until `count` were served. */
async function serve(listener: SeqpacketListener, count: number): Promise<void> {
  let served = 0;
  for await (const conn of listener) {
    const { pid } = conn.peerCredentials();
    const records = await echo(conn);
    console.log(`server: echoed ${records} records to pid ${pid}`);
    if (++served >= count) return;
  }
}

/** Sends every message as one record, then reads the echoes back, one record each. */
async function ask(path: string, messages: string[]): Promise<void> {
  using conn = await connectSeqpacket({ path });
  const encoder = new TextEncoder(), decoder = new TextDecoder();
  const started = performance.now();
  for (const text of messages) await conn.send(encoder.encode(text));
  for (let i = 1; i <= messages.length; i++) {
    const reply = await conn.receive({ signal: AbortSignal.timeout(5000) });
    if (reply === null) throw new Error(`the server closed after ${i - 1} records`);
    const text = decoder.decode(reply.data);
    console.log(`record ${i}: ${JSON.stringify(text)} (${reply.data.length} B)`);
  }
  console.log(`${messages.length} records in ${(performance.now() - started).toFixed(3)} ms`);
  // The server sees end of stream, ends its loop and closes: receive gives null.
  await conn.closeWrite();
  if (await conn.receive({ signal: AbortSignal.timeout(5000) }) !== null) {
    throw new Error("the server sent an extra record");
  }
}

async function main(): Promise<void> {
  const o = parseArgs(Deno.args);
  if (o.mode === "client") return await ask(o.path, o.messages);
  const dir = o.mode === "demo" ? Deno.makeTempDirSync({ prefix: "seqpacket-echo-" }) : undefined;
  try {
    // The listener removes its socket file when it closes.
    using listener = listenSeqpacket({ path: dir === undefined ? o.path : `${dir}/echo.sock` });
    console.log(`echo server on ${listener.addr.path}`);
    if (o.mode === "server") return await serve(listener, o.count);
    const serving = serve(listener, 1);
    await ask(listener.addr.path, o.messages);
    await serving;
  } finally {
    if (dir !== undefined) Deno.removeSync(dir, { recursive: true });
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(`seqpacket_echo: ${err instanceof Error ? err.message : err}`);
    Deno.exitCode = 1;
  }
}
