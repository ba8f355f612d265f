/**
 * `deno task demo`: one exchange over each kind of socket this package
 * offers, shown as one table.
 *
 * ```sh
 * deno run --unstable-net --allow-net --allow-read --allow-write --allow-ffi \
 *   --allow-run --allow-env examples/tour.ts
 * ```
 *
 * Each row is produced by a small async function in {@linkcode ROWS}: it
 * sets up both ends on loopback or in a temporary directory, sends one
 * message, and reports what it sent, what came back and how long the round
 * trip took, or that it was skipped and why. The program exits with status 1
 * when any exchange fails.
 *
 * @module
 */

import {
  connectStream,
  listenStream,
  type StreamConn,
  type StreamListener,
} from "@bsd/sockets/stream";

/** What a row producer reports after a successful exchange. */
interface Exchange {
  /** What was sent, as shown in the table. */
  sent: string;
  /** What came back, as shown in the table. */
  received: string;
  /** The round-trip time, ms. */
  ms: number;
  /** Whether the exchange worked; defaults to `received === sent` (an echo). */
  ok?: boolean;
}

/** A row that could not run here, and why (a missing privilege, say). */
interface Skip {
  skipped: string;
}

/** One row of the tour: the socket it shows and the function that runs it. */
interface RowProducer {
  /** The socket type: stream, datagram, raw, seqpacket. */
  socket: string;
  /** The transport: tcp, unix, udp, icmp, … */
  transport: string;
  /** Does the exchange; `dir` is a private temporary directory for socket files. */
  run(dir: string): Promise<Exchange | Skip>;
}

/** A row producer's way to say it cannot run here. */
function skip(reason: string): Skip {
  return { skipped: reason };
}

/** How long one row may take before it counts as failed. */
const ROW_TIMEOUT_MS = 5000;

// ---------------------------------------------------------------------------
// Rows. To add one, write a function like these and list it in ROWS.

/** Accepts one connection, echoes what it reads until end of stream. */
async function echoOnce(listener: StreamListener): Promise<void> {
  using conn = await listener.accept();
  const buf = new Uint8Array(1024);
  for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
    await conn.write(buf.subarray(0, n));
  }
}

/** Sends `text` over `conn` and reads back as many bytes. */
async function roundTrip(conn: StreamConn, text: string): Promise<Exchange> {
  const out = new TextEncoder().encode(text);
  const back = new Uint8Array(out.length);
  const start = performance.now();
  await conn.write(out);
  let got = 0;
  while (got < back.length) {
    const n = await conn.read(back.subarray(got));
    if (n === null) break;
    got += n;
  }
  const ms = performance.now() - start;
  return { sent: text, received: new TextDecoder().decode(back.subarray(0, got)), ms };
}

async function streamEcho(listener: StreamListener, text: string): Promise<Exchange> {
  using _listener = listener;
  const served = echoOnce(listener);
  const addr = listener.addr;
  using conn = await connectStream(
    "path" in addr ? { path: addr.path } : { port: addr.port },
  );
  const exchange = await roundTrip(conn, text);
  await conn.closeWrite();
  await served;
  return exchange;
}

const tcpStream: RowProducer = {
  socket: "stream",
  transport: "tcp",
  run: () => streamEcho(listenStream({ hostname: "127.0.0.1", port: 0 }), "hello over TCP"),
};

const unixStream: RowProducer = {
  socket: "stream",
  transport: "unix",
  run: (dir) =>
    streamEcho(listenStream({ path: `${dir}/stream.sock` }), "hello over a Unix stream"),
};

const abstractStream: RowProducer = {
  socket: "stream",
  transport: "unix, abstract name",
  run: async () => {
    if (Deno.build.os !== "linux") return skip("abstract Unix names exist on Linux only");
    return await streamEcho(listenStream({ path: `\0bsd-tour-${Deno.pid}` }), "hello, nameless");
  },
};

/** Every row of the tour, in the order shown. */
const ROWS: RowProducer[] = [tcpStream, unixStream, abstractStream];

// ---------------------------------------------------------------------------

interface Line {
  cells: string[];
  failed: boolean;
}

async function runRow(row: RowProducer, dir: string): Promise<Line> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${ROW_TIMEOUT_MS} ms`)),
      ROW_TIMEOUT_MS,
    );
  });
  try {
    const result = await Promise.race([row.run(dir), timeout]);
    if ("skipped" in result) {
      return {
        cells: [row.socket, row.transport, "—", `skipped: ${result.skipped}`, "—"],
        failed: false,
      };
    }
    const ok = result.ok ?? result.received === result.sent;
    const received = ok ? show(result.received) : `${show(result.received)} (wrong)`;
    return {
      cells: [row.socket, row.transport, show(result.sent), received, formatMs(result.ms)],
      failed: !ok,
    };
  } catch (err) {
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return { cells: [row.socket, row.transport, "—", `failed: ${reason}`, "—"], failed: true };
  } finally {
    clearTimeout(timer);
  }
}

function show(text: string): string {
  return JSON.stringify(text);
}

function formatMs(ms: number): string {
  return ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`;
}

function printTable(lines: Line[]): void {
  const header = ["socket", "transport", "sent", "came back", "round trip"];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l.cells[i].length)));
  const format = (cells: string[]): string =>
    cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i])).join("  ");
  console.log(format(header));
  console.log(format(widths.map((w) => "-".repeat(w))));
  for (const line of lines) console.log(format(line.cells));
}

if (import.meta.main) {
  const dir = Deno.makeTempDirSync({ prefix: "bsd-tour-" });
  const lines: Line[] = [];
  try {
    for (const row of ROWS) lines.push(await runRow(row, dir));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  printTable(lines);
  const failed = lines.filter((l) => l.failed).length;
  if (failed > 0) {
    console.error(`\n${failed} of ${lines.length} exchanges failed`);
    Deno.exit(1);
  }
}
