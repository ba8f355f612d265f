/**
 * `deno task demo`: one exchange over each kind of socket this package
 * offers, shown as one table.
 *
 * ```sh
 * deno run --unstable-net --allow-net --allow-read --allow-write --allow-ffi \
 *   --allow-run --allow-env examples/tour.ts
 * ```
 *
 * Each row is produced by a small async function listed in `ROWS`: it sets up
 * both ends on loopback or in a temporary directory, sends one message, and
 * reports what it sent, what came back and how long the round trip took, or
 * that it was skipped and why. Nothing leaves the machine. The program exits
 * with status 1 when any exchange fails.
 *
 * The rows: TCP, Unix and abstract-name stream echoes; UDP and Unix datagram
 * echoes (naming the backend that served them); seqpacket records, an empty
 * one included, and a file descriptor passed with a record; an ICMP echo to
 * 127.0.0.1 over a raw socket with `CAP_NET_RAW`, over an unprivileged ping
 * socket without it, or a skipped row saying why neither is allowed.
 *
 * @module
 */

import {
  connectStream,
  listenStream,
  type StreamConn,
  type StreamListener,
} from "@bsd/sockets/stream";
import { type DatagramSocket, listenDatagram } from "@bsd/sockets/datagram";
import { closeFds, seqpacketPair } from "@bsd/sockets/seqpacket";
import { openRaw, type RawSocket } from "@bsd/sockets/raw";
import { decodeEcho, decodeIPv4Header, encodeEcho } from "@bsd/sockets/icmp";
import type { IpAddr, NetAddr, UnixAddr } from "@bsd/sockets";

/** What a row producer reports after an exchange. */
interface Exchange {
  /** What was sent, as shown in the table. */
  sent: string;
  /** What came back, as shown in the table. */
  received: string;
  /** The round-trip time, ms. */
  ms: number;
  /** Whether the exchange worked; defaults to `received === sent` (an echo). */
  ok?: boolean;
  /** Replaces the row's transport when the run learned more, such as the backend that served it. */
  transport?: string;
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

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Text as the table shows it: quoted, so an empty message is visible. */
function quote(text: string | Uint8Array): string {
  return JSON.stringify(typeof text === "string" ? text : decoder.decode(text));
}

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
  const out = encoder.encode(text);
  const back = new Uint8Array(out.length);
  const start = performance.now();
  await conn.write(out);
  // A stream keeps no message boundaries: the echo may come back in pieces.
  let got = 0;
  while (got < back.length) {
    const n = await conn.read(back.subarray(got));
    if (n === null) break;
    got += n;
  }
  const ms = performance.now() - start;
  return { sent: quote(text), received: quote(back.subarray(0, got)), ms };
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

/**
 * `client` sends `text` to `server`, which sends the datagram back to
 * whoever sent it; both sockets are closed afterwards.
 */
async function datagramEcho<A extends NetAddr | UnixAddr>(
  server: DatagramSocket<A>,
  client: DatagramSocket<A>,
  text: string,
): Promise<Exchange> {
  using _server = server;
  using _client = client;
  const start = performance.now();
  await client.send(encoder.encode(text), server.localAddr);
  const request = await server.receive();
  if (!request?.from) throw new Error("the request came without a sender to answer");
  await server.send(request.data, request.from);
  const reply = await client.receive();
  const ms = performance.now() - start;
  return {
    sent: quote(text),
    received: reply === null ? "nothing" : quote(reply.data),
    ms,
    // Deno's own UDP socket needs --unstable-net; without it the FFI engine serves.
    transport: `${server.localAddr.transport}, ${server.backend} backend`,
  };
}

const udpDatagram: RowProducer = {
  socket: "datagram",
  transport: "udp",
  run: () =>
    datagramEcho(
      listenDatagram({ hostname: "127.0.0.1", port: 0 }),
      listenDatagram({ hostname: "127.0.0.1", port: 0 }),
      "hello over UDP",
    ),
};

const unixDatagram: RowProducer = {
  socket: "datagram",
  transport: "unixgram",
  run: (dir) =>
    datagramEcho(
      listenDatagram({ path: `${dir}/dgram-server.sock` }),
      // The client needs a name of its own, or the server could not answer.
      listenDatagram({ path: `${dir}/dgram-client.sock` }),
      "hello over a Unix datagram",
    ),
};

const seqpacketRecords: RowProducer = {
  socket: "seqpacket",
  transport: "unix pair, 3 records",
  run: async () => {
    const records = ["one", "", "three"];
    const [a, b] = seqpacketPair();
    using _a = a;
    using _b = b;
    const start = performance.now();
    for (const r of records) await a.send(encoder.encode(r));
    // One receive is one record: the empty one arrives as a record of its
    // own, neither merged into its neighbours nor taken for end of stream.
    const back: string[] = [];
    for (let i = 0; i < records.length; i++) {
      const m = await b.receive();
      if (m === null) break;
      back.push(quote(m.data));
    }
    const ms = performance.now() - start;
    return { sent: records.map(quote).join(" "), received: back.join(" "), ms };
  },
};

/**
 * Deno's file API neither hands out descriptor numbers nor reads from a
 * descriptor it did not open, so the descriptor row asks libc for both (the
 * tour holds --allow-ffi already). glibc's name: Linux only, as seqpacket is.
 */
function openLibc() {
  return Deno.dlopen("libc.so.6", {
    open: { parameters: ["buffer", "i32"], result: "i32" },
    pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
    close: { parameters: ["i32"], result: "i32" },
  });
}

const O_RDONLY_CLOEXEC = 0o2000000;

const seqpacketFd: RowProducer = {
  socket: "seqpacket",
  transport: "unix pair, fd passing",
  run: async (dir) => {
    const path = `${dir}/passed.txt`;
    const secret = "only this fd reaches me";
    Deno.writeTextFileSync(path, secret);
    const libc = openLibc();
    const [a, b] = seqpacketPair();
    let fd = -1;
    let received: number[] = [];
    try {
      fd = libc.symbols.open(encoder.encode(`${path}\0`), O_RDONLY_CLOEXEC);
      if (fd < 0) throw new Error(`open ${quote(path)}: failed`);
      // With the name gone, the file can only be reached through the descriptor.
      Deno.removeSync(path);
      const start = performance.now();
      await a.send(encoder.encode("a file"), { fds: [fd] });
      const m = await b.receive();
      const ms = performance.now() - start;
      received = m?.fds ?? [];
      if (m === null || received.length !== 1) {
        return { sent: `fd ${fd}`, received: "no descriptor", ms, ok: false };
      }
      // The receiver's descriptor is a new number for the same open file.
      const buf = new Uint8Array(256);
      const n = Number(libc.symbols.pread(received[0], buf, BigInt(buf.length), 0n));
      const text = n < 0 ? "" : decoder.decode(buf.subarray(0, n));
      return {
        sent: `${quote(m.data)} + fd ${fd} of a deleted file`,
        received: `fd ${received[0]}, reads ${quote(text)}`,
        ms,
        ok: text === secret,
      };
    } finally {
      closeFds(received);
      if (fd >= 0) libc.symbols.close(fd);
      a.close();
      b.close();
      libc.close();
    }
  },
};

/**
 * Opens an ICMP socket: raw with CAP_NET_RAW, a ping socket without; `null` if neither is allowed.
 */
function openIcmp(): RawSocket | null {
  try {
    return openRaw({ family: "ipv4", protocol: "icmp" });
  } catch (err) {
    if (!(err instanceof Deno.errors.PermissionDenied)) throw err;
  }
  try {
    return openRaw({ family: "ipv4", protocol: "icmp", unprivileged: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.PermissionDenied)) throw err;
    return null;
  }
}

const icmpPing: RowProducer = {
  socket: "raw",
  transport: "icmp to 127.0.0.1",
  run: async () => {
    if (Deno.build.os !== "linux") return skip("raw and ping sockets are Linux only here");
    using sock = openIcmp();
    if (sock === null) {
      return skip("needs CAP_NET_RAW, or a group inside net.ipv4.ping_group_range");
    }
    const to: IpAddr = { transport: "ip", hostname: "127.0.0.1" };
    const data = encoder.encode("ping from the tour");
    const id = Deno.pid & 0xffff;
    const start = performance.now();
    await sock.send(encodeEcho({ id, sequence: 1, data }), to);
    // A raw socket also sees its own request and other programs' ICMP: match
    // the reply on identifier and sequence, reading at most 50 packets. A ping
    // socket rewrites the identifier to its own and sees only its replies.
    const expectedId = sock.echoId ?? id;
    const signal = AbortSignal.timeout(2000);
    for (let i = 0; i < 50; i++) {
      const m = await sock.receive({ signal });
      if (m === null) break;
      const icmp = sock.unprivileged ? m.data : decodeIPv4Header(m.data).payload;
      const echo = decodeEcho(icmp);
      if (echo?.type !== "reply" || echo.id !== expectedId || echo.sequence !== 1) continue;
      return {
        sent: `echo request ${quote(data)}`,
        received: `echo reply ${quote(echo.data)}`,
        ms: performance.now() - start,
        ok: decoder.decode(echo.data) === decoder.decode(data),
        transport: `icmp to 127.0.0.1, ${sock.unprivileged ? "ping" : "raw"} socket`,
      };
    }
    throw new Error("no echo reply among the packets received");
  },
};

/** Every row of the tour, in the order shown. */
const ROWS: RowProducer[] = [
  tcpStream,
  unixStream,
  abstractStream,
  udpDatagram,
  unixDatagram,
  seqpacketRecords,
  seqpacketFd,
  icmpPing,
];

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
    return {
      cells: [
        row.socket,
        result.transport ?? row.transport,
        result.sent,
        ok ? result.received : `${result.received} (wrong)`,
        formatMs(result.ms),
      ],
      failed: !ok,
    };
  } catch (err) {
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return { cells: [row.socket, row.transport, "—", `failed: ${reason}`, "—"], failed: true };
  } finally {
    clearTimeout(timer);
  }
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
