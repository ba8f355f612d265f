/**
 * Datagram sockets: ping-pong and one-way throughput at 64 B and 1,400 B,
 * over UDP and Unix datagram sockets, for the FFI backend of `@bsd/sockets`,
 * Deno's built-in `Deno.listenDatagram` and the C reference, in one run.
 *
 * - ping-pong: one datagram out, the echo back, one outstanding; both ends
 *   pinned to CPU 0 and of the same kind (an FFI client talks to an FFI echo
 *   server in a second Deno, the built-in to the built-in, C to C). The median
 *   round trip.
 * - send: datagrams sent per second into a C sink, one `send` each; and for
 *   the FFI backend a second row with `sendMany` (one `sendmmsg` per 64).
 * - receive: datagrams received per second from a C flood, first to last.
 *   Over UDP the flood outruns a slow receiver and the kernel drops the rest:
 *   the rate is still what the receiver took, and the note gives the loss.
 *
 * Usage: `deno run --unstable-net --allow-all bench/datagram_bench.ts [--json]`
 * (or `deno task bench datagram`).
 *
 * @module
 */

import {
  BUILTIN,
  C,
  emit,
  median,
  OURS,
  type Peer,
  peerReady,
  peerResult,
  pinSelf,
  spawnC,
  spawnDeno,
} from "./_harness.ts";
import { type DatagramSocket, listenDatagram } from "../datagram.ts";
import type { NetAddr, UnixAddr } from "../types.ts";

type Kind = "udp" | "unixgram";
/**
 * The Deno contenders: this package on its FFI backend, this package on the
 * built-in backend (what `listenDatagram()` picks under `--unstable-net`),
 * and `Deno.listenDatagram` itself.
 */
type Impl = "ffi" | "wrapped" | "builtin";
/** The column of this package on the built-in backend. */
const WRAPPED = `${OURS} on built-in`;

const KINDS: readonly Kind[] = ["udp", "unixgram"];
const SIZES = [64, 1400] as const;
const ROUND_TRIPS = 5000;
const WARMUP = 500;
const FLOOD = 50_000;
const BATCH = 64;
const GROUP: Record<Kind, string> = { udp: "udp", unixgram: "unix datagram" };

/** One Deno endpoint, whichever implementation: enough for an echo and a flood. */
interface Endpoint {
  /** Where peers send to: a port (UDP) or a path. */
  readonly where: string;
  send(data: Uint8Array, to: unknown): Promise<number>;
  sendBatch(data: Uint8Array, to: unknown, count: number): Promise<number>;
  /** The next datagram and its sender, or `null` once closed; `data` is valid until the next receive. */
  receive(): Promise<{ data: Uint8Array; from: unknown } | null>;
  close(): void;
}

function open(kind: Kind, impl: Impl, path?: string): Endpoint {
  return impl === "builtin" ? openBuiltin(kind, path) : openOurs(kind, impl, path);
}

function openOurs(kind: Kind, impl: "ffi" | "wrapped", path?: string): Endpoint {
  // The built-in backend cannot size its buffer; the FFI one gets the C sink's.
  const options = impl === "ffi"
    ? { backend: "ffi", receiveBufferSize: 8 << 20 } as const
    : { backend: "builtin" } as const;
  const sock: DatagramSocket = kind === "udp"
    ? listenDatagram({ hostname: "127.0.0.1", port: 0, ...options })
    : listenDatagram({ path: path ?? "", ...options });
  const local = sock.localAddr;
  return {
    where: "port" in local ? String(local.port) : local.path,
    send: (data, to) => sock.send(data, to as NetAddr | UnixAddr),
    sendBatch: (data, to, count) =>
      sock.sendMany(Array.from({ length: count }, () => ({ data, to: to as NetAddr | UnixAddr }))),
    async receive() {
      const m = await sock.receive();
      return m && { data: m.data, from: m.from };
    },
    close: () => sock.close(),
  };
}

function openBuiltin(kind: Kind, path?: string): Endpoint {
  const conn = kind === "udp"
    ? Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 })
    : Deno.listenDatagram({ transport: "unixpacket", path: path! });
  const buf = new Uint8Array(65536);
  const local = conn.addr;
  return {
    where: "port" in local ? String(local.port) : local.path,
    send: (data, to) => conn.send(data, to as Deno.Addr),
    async sendBatch(data, to, count) {
      for (let i = 0; i < count; i++) await conn.send(data, to as Deno.Addr);
      return count;
    },
    async receive() {
      try {
        const [data, from] = await conn.receive(buf);
        return { data, from };
      } catch {
        return null; // closed
      }
    },
    close: () => conn.close(),
  };
}

/** The address a Deno endpoint sends to, for a peer at `where`. */
function target(kind: Kind, impl: Impl, where: string): unknown {
  if (kind === "udp") return { transport: "udp", hostname: "127.0.0.1", port: Number(where) };
  return { transport: impl === "builtin" ? "unixpacket" : "unixgram", path: where };
}

function tempDir(): string {
  return Deno.makeTempDirSync({ prefix: "bsd-dgram-bench-" });
}

// ---------------------------------------------------------------------------
// Ping-pong

/** Runs in the peer process: echoes `count` datagrams, then reports. */
async function serve(kind: Kind, impl: Impl, path: string, count: number): Promise<void> {
  const ep = open(kind, impl, kind === "udp" ? undefined : path);
  peerReady(kind === "udp" ? ep.where : undefined);
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const m = await ep.receive();
    if (m === null) break;
    await ep.send(m.data, m.from);
    bytes += m.data.length;
  }
  ep.close();
  peerResult({ role: "server", kind, n: count, bytes });
}

/** An echo server pinned to CPU 0: the C reference, or a Deno one of `impl`. */
async function echoServer(kind: Kind, impl: Impl | "c", path: string): Promise<Peer> {
  const count = String(ROUND_TRIPS + WARMUP);
  if (impl === "c") {
    return await spawnC([kind, "server", kind === "udp" ? "127.0.0.1:0" : path, "-n", count], {
      pin: [0],
    });
  }
  return await spawnDeno(new URL(import.meta.url), ["--peer", kind, impl, path, count], {
    pin: [0],
  });
}

/** The median round trip of a Deno client of `impl`, pinned to CPU 0 with the server. */
async function pingPongDeno(
  kind: Kind,
  impl: Impl,
  server: Impl | "c",
  size: number,
): Promise<number> {
  const dir = tempDir();
  try {
    const serverPath = `${dir}/server.sock`;
    await using peer = await echoServer(kind, server, serverPath);
    const to = target(kind, impl, kind === "udp" ? peer.ready : serverPath);
    const unpin = pinSelf("0");
    const client = open(kind, impl, impl === "ffi" ? "" : `${dir}/client.sock`);
    const rtts: number[] = [];
    try {
      const msg = new Uint8Array(size);
      for (let i = -WARMUP; i < ROUND_TRIPS; i++) {
        const t0 = performance.now();
        await client.send(msg, to);
        const reply = await client.receive();
        const t1 = performance.now();
        if (reply?.data.length !== size) {
          throw new Error(`ping-pong: reply of ${reply?.data.length} B`);
        }
        if (i >= 0) rtts.push((t1 - t0) * 1000);
      }
    } finally {
      client.close();
      unpin();
    }
    await peer.result();
    return median(rtts);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** The C client's median round trip against the C server, both pinned to CPU 0. */
async function pingPongC(kind: Kind, size: number): Promise<number> {
  const dir = tempDir();
  try {
    const path = `${dir}/server.sock`;
    await using server = await echoServer(kind, "c", path);
    const to = kind === "udp" ? `127.0.0.1:${server.ready}` : path;
    const args = [kind, "client", to, "-n", String(ROUND_TRIPS), "-w", String(WARMUP)];
    await using client = await spawnC([...args, "-s", String(size)], { pin: [0] });
    const result = await client.result();
    await server.result();
    return result.rtt_us_median!;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

// ---------------------------------------------------------------------------
// One way

/** A C sink for `kind` at a fresh address, and the address to send to. */
async function cSink(kind: Kind, dir: string): Promise<{ sink: Peer; to: string }> {
  const addr = kind === "udp" ? "127.0.0.1:0" : `${dir}/sink.sock`;
  const sink = await spawnC([kind, "sink", addr, "-n", String(FLOOD), "-q", "300"]);
  return { sink, to: kind === "udp" ? sink.ready : addr };
}

function cFlood(kind: Kind, to: string, size: number): Promise<Peer> {
  const addr = kind === "udp" ? `127.0.0.1:${to}` : to;
  return spawnC([kind, "flood", addr, "-n", String(FLOOD), "-s", String(size)]);
}

async function sendRate(kind: Kind, impl: Impl, size: number, batch: boolean): Promise<number> {
  const dir = tempDir();
  try {
    const { sink, to } = await cSink(kind, dir);
    await using _sink = sink;
    const sender = open(kind, impl, impl === "ffi" ? "" : `${dir}/sender.sock`);
    const dest = target(kind, impl, to);
    const msg = new Uint8Array(size);
    let seconds: number;
    try {
      const t0 = performance.now();
      if (batch) {
        for (let sent = 0; sent < FLOOD; sent += BATCH) {
          await sender.sendBatch(msg, dest, Math.min(BATCH, FLOOD - sent));
        }
      } else {
        for (let i = 0; i < FLOOD; i++) await sender.send(msg, dest);
      }
      seconds = (performance.now() - t0) / 1000;
    } finally {
      sender.close();
    }
    await sink.result();
    return FLOOD / seconds;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

interface ReceiveResult {
  rate: number;
  lost: number;
}

async function receiveRate(kind: Kind, impl: Impl, size: number): Promise<ReceiveResult> {
  const dir = tempDir();
  try {
    const receiver = open(kind, impl, `${dir}/receiver.sock`);
    let count = 0, first = 0, last = 0;
    const draining = (async () => {
      while (count < FLOOD) {
        const m = await receiver.receive();
        if (m === null) return;
        last = performance.now();
        if (count++ === 0) first = last;
      }
    })();
    try {
      await using flood = await cFlood(kind, receiver.where, size);
      await flood.result();
      // The flood is done; stop once no datagram has arrived for 200 ms.
      for (let seen = -1; seen !== count && count < FLOOD;) {
        seen = count;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    } finally {
      receiver.close();
    }
    await draining;
    return { rate: (count - 1) / ((last - first) / 1000), lost: FLOOD - count };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** C into C: the flood's send rate and the sink's receive rate, from one run. */
async function floodC(kind: Kind, size: number): Promise<{ send: number } & ReceiveResult> {
  const dir = tempDir();
  try {
    const { sink, to } = await cSink(kind, dir);
    await using _sink = sink;
    await using flood = await cFlood(kind, to, size);
    const sent = await flood.result();
    const got = await sink.result();
    return { send: sent.msgs_per_s!, rate: got.msgs_per_s!, lost: got.lost ?? 0 };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

function lossNote(results: Record<string, ReceiveResult>): string | undefined {
  if (Object.values(results).every((r) => r.lost === 0)) return undefined;
  const each = Object.entries(results).map(([who, r]) =>
    `${who} ${r.lost.toLocaleString("en-US")}`
  );
  return `lost of ${FLOOD.toLocaleString("en-US")}: ${each.join(", ")}`;
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  for (const kind of KINDS) {
    const group = GROUP[kind];
    let c64 = 0;
    for (const size of SIZES) {
      const c = await pingPongC(kind, size);
      if (size === 64) c64 = c;
      emit({
        group,
        case: `ping-pong ${size} B, pinned, against the C echo server`,
        unit: "µs",
        better: "lower",
        values: {
          [OURS]: await pingPongDeno(kind, "ffi", "c", size),
          [BUILTIN]: await pingPongDeno(kind, "builtin", "c", size),
          [C]: c,
          [WRAPPED]: await pingPongDeno(kind, "wrapped", "c", size),
        },
      });
    }
    emit({
      group,
      case: "ping-pong 64 B, pinned, both ends the same",
      unit: "µs",
      better: "lower",
      values: {
        [OURS]: await pingPongDeno(kind, "ffi", "ffi", 64),
        [BUILTIN]: await pingPongDeno(kind, "builtin", "builtin", 64),
        [C]: c64,
      },
    });
    for (const size of SIZES) {
      const c = await floodC(kind, size);
      const builtinSend = await sendRate(kind, "builtin", size, false);
      emit({
        group,
        case: `send ${size} B, send() each`,
        unit: "msg/s",
        better: "higher",
        values: {
          [OURS]: await sendRate(kind, "ffi", size, false),
          [BUILTIN]: builtinSend,
          [C]: c.send,
          [WRAPPED]: await sendRate(kind, "wrapped", size, false),
        },
      });
      emit({
        group,
        case: `send ${size} B, sendMany() by ${BATCH} (built-in, C: one call each)`,
        unit: "msg/s",
        better: "higher",
        values: {
          [OURS]: await sendRate(kind, "ffi", size, true),
          [BUILTIN]: builtinSend,
          [C]: c.send,
        },
      });
      const results = {
        [OURS]: await receiveRate(kind, "ffi", size),
        [BUILTIN]: await receiveRate(kind, "builtin", size),
        [C]: c,
        [WRAPPED]: await receiveRate(kind, "wrapped", size),
      };
      const note = lossNote(results);
      emit({
        group,
        case: `receive ${size} B`,
        unit: "msg/s",
        better: "higher",
        values: Object.fromEntries(Object.entries(results).map(([k, r]) => [k, r.rate])),
        ...(note ? { note } : {}),
      });
    }
  }
}

if (import.meta.main) {
  const peer = Deno.args.indexOf("--peer");
  if (peer >= 0) {
    const [kind, impl, path, count] = Deno.args.slice(peer + 1);
    await serve(kind as Kind, impl as Impl, path, Number(count));
  } else {
    await main();
  }
}
