/**
 * Datagram sockets: ping-pong and one-way throughput at 64 B and 1,400 B,
 * over UDP and Unix datagram sockets, for the FFI backend of `@bsd/sockets`,
 * Deno's built-in `Deno.listenDatagram` and the C reference, in one run: every
 * value is the median of three runs, the contenders taking turns.
 *
 * - ping-pong: one datagram out, the echo back, one outstanding, both
 *   processes pinned to CPU 0; the median round trip. Each client (FFI
 *   backend, built-in, this package on the built-in backend, C) against the
 *   C echo server; and at 64 B with both ends of the same kind (an FFI echo
 *   server in a second Deno for the FFI client, and so on), which adds the
 *   server's own cost.
 * - send: datagrams sent per second into a C sink, one `send` each; and for
 *   the FFI backend a second row with `sendMany` (one `sendmmsg` per 64).
 *
 * The FFI backend's sockets get an 8 MiB receive buffer, as the C sink does;
 * the built-in cannot set one. Unix datagram queues hold only
 * `net.unix.max_dgram_qlen` records (10 by default), so a Unix sender waits
 * for the receiver every 11 records whatever its batching.
 * - receive: datagrams received per second from a C flood, from the flood's
 *   start to the last record (C into C: the C sink's first to last). Over UDP
 *   the flood outruns a slow receiver and the kernel drops the rest: the rate
 *   is what the receiver took, and the note gives the loss. The FFI backend
 *   receives once with `receive()` (one await per datagram) and once with
 *   `receiveMany({ max: 64 })` (one await per batch of what is queued).
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
 * The Deno contenders: this package on its FFI backend (`"spin"`: with
 * `busyPoll`; `"many"`: receiving with `receiveMany`), this package on the
 * built-in backend (what `listenDatagram()` picks under `--unstable-net`), and
 * `Deno.listenDatagram` itself.
 */
type Impl = "ffi" | "spin" | "many" | "wrapped" | "builtin";
/** The busy-poll budget, µs, of the `"spin"` contender. */
const BUSY_POLL = 50;
/** The column of this package on the built-in backend. */
const WRAPPED = `${OURS} on built-in`;
/** The column of this package receiving with `receiveMany({ max: BATCH })`. */
const MANY = `${OURS} receiveMany`;

const KINDS: readonly Kind[] = ["udp", "unixgram"];
const SIZES = [64, 1400] as const;
const RUNS = 3;
const ROUND_TRIPS = 3000;
const WARMUP = 300;
const FLOOD = 30_000;
const BATCH = 64;
const GROUP: Record<Kind, string> = { udp: "udp", unixgram: "unix datagram" };

/** One Deno endpoint, whichever implementation: enough for an echo and a flood. */
interface Endpoint {
  /** Where peers send to: a port (UDP) or a path. */
  readonly where: string;
  send(data: Uint8Array, to: unknown): Promise<number>;
  sendBatch(data: Uint8Array, to: unknown, count: number): Promise<number>;
  /**
   * The next datagram and its sender, or `null` once closed; `data` is valid until the next
   * receive.
   */
  receive(): Promise<{ data: Uint8Array; from: unknown } | null>;
  /** Receives one datagram or (`"many"`) a batch; how many, 0 once closed. */
  receiveCount(): Promise<number>;
  close(): void;
}

function open(kind: Kind, impl: Impl, path?: string): Endpoint {
  return impl === "builtin" ? openBuiltin(kind, path) : openOurs(kind, impl, path);
}

function openOurs(kind: Kind, impl: Exclude<Impl, "builtin">, path?: string): Endpoint {
  // The built-in backend cannot size its buffer; the FFI one gets the C sink's.
  const options = impl === "wrapped" ? { backend: "builtin" } as const : {
    backend: "ffi",
    receiveBufferSize: 8 << 20,
    busyPoll: impl === "spin" ? BUSY_POLL : 0,
  } as const;
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
    receiveCount: impl === "many"
      ? async () => (await sock.receiveMany({ max: BATCH }))?.length ?? 0
      : async () => (await sock.receive()) === null ? 0 : 1,
    close: () => sock.close(),
  };
}

function openBuiltin(kind: Kind, path?: string): Endpoint {
  const conn = kind === "udp"
    ? Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 })
    : Deno.listenDatagram({ transport: "unixpacket", path: path! });
  const buf = new Uint8Array(65536);
  const local = conn.addr;
  const receive = async () => {
    try {
      const [data, from] = await conn.receive(buf);
      return { data, from };
    } catch {
      return null; // closed
    }
  };
  return {
    where: "port" in local ? String(local.port) : local.path,
    send: (data, to) => conn.send(data, to as Deno.Addr),
    async sendBatch(data, to, count) {
      for (let i = 0; i < count; i++) await conn.send(data, to as Deno.Addr);
      return count;
    },
    receive,
    receiveCount: async () => (await receive()) === null ? 0 : 1,
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
    const client = open(kind, impl, impl === "ffi" || impl === "spin" ? "" : `${dir}/client.sock`);
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
    let count = 0, last = 0;
    const draining = (async () => {
      while (count < FLOOD) {
        const got = await receiver.receiveCount();
        if (got === 0) return;
        last = performance.now();
        count += got;
      }
    })();
    // Timed from the flood's ready line, not from the first record: a
    // receiver that got the CPU late then drains a backlog, and timing from
    // its first record would credit it with the flood's head start.
    let start = 0, atStart = 0;
    try {
      await using flood = await cFlood(kind, receiver.where, size);
      start = performance.now();
      atStart = count;
      await flood.result();
      // The flood is done; stop once no datagram has arrived for 100 ms.
      for (let seen = -1; seen !== count && count < FLOOD;) {
        seen = count;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      receiver.close();
    }
    await draining;
    return { rate: (count - atStart) / ((last - start) / 1000), lost: FLOOD - count };
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

/** The records lost over all runs, when any were. */
function lossNote(lost: Record<string, number>): string | undefined {
  if (Object.values(lost).every((n) => n === 0)) return undefined;
  const each = Object.entries(lost).map(([who, n]) => `${who} ${n.toLocaleString("en-US")}`);
  return `lost of ${RUNS} × ${FLOOD.toLocaleString("en-US")}: ${each.join(", ")}`;
}

// ---------------------------------------------------------------------------

/**
 * Runs every contender `RUNS` times, taking turns so that load which comes
 * and goes on the machine falls on all of them alike; returns the medians.
 */
async function medians(
  contenders: Record<string, () => Promise<number>>,
): Promise<Record<string, number>> {
  const samples: Record<string, number[]> = {};
  for (let run = 0; run < RUNS; run++) {
    for (const [name, measure] of Object.entries(contenders)) {
      (samples[name] ??= []).push(await measure());
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, xs]) => [name, median(xs)]));
}

async function main(): Promise<void> {
  for (const kind of KINDS) {
    const group = GROUP[kind];
    const pingPong: Record<number, Record<string, number>> = {};
    for (const size of SIZES) {
      pingPong[size] = await medians({
        [OURS]: () => pingPongDeno(kind, "ffi", "c", size),
        [BUILTIN]: () => pingPongDeno(kind, "builtin", "c", size),
        [C]: () => pingPongC(kind, size),
        [WRAPPED]: () => pingPongDeno(kind, "wrapped", "c", size),
      });
      emit({
        group,
        case: `ping-pong ${size} B, pinned, against the C echo server`,
        unit: "µs",
        better: "lower",
        values: pingPong[size],
      });
    }
    const sameEnds = await medians({
      [OURS]: () => pingPongDeno(kind, "ffi", "ffi", 64),
      [BUILTIN]: () => pingPongDeno(kind, "builtin", "builtin", 64),
    });
    emit({
      group,
      case: "ping-pong 64 B, pinned, both ends the same",
      unit: "µs",
      better: "lower",
      values: { ...sameEnds, [C]: pingPong[64][C] },
    });
    const spinning = await medians({ [OURS]: () => pingPongDeno(kind, "spin", "spin", 64) });
    emit({
      group,
      case: `ping-pong 64 B, pinned, both ends the same, ours with busyPoll ${BUSY_POLL} µs`,
      unit: "µs",
      better: "lower",
      values: { ...spinning, [BUILTIN]: sameEnds[BUILTIN], [C]: pingPong[64][C] },
    });
    for (const size of SIZES) {
      const cRuns: Awaited<ReturnType<typeof floodC>>[] = [];
      const sends = await medians({
        [OURS]: () => sendRate(kind, "ffi", size, false),
        [BUILTIN]: () => sendRate(kind, "builtin", size, false),
        [C]: async () => {
          cRuns.push(await floodC(kind, size));
          return cRuns[cRuns.length - 1].send;
        },
        [WRAPPED]: () => sendRate(kind, "wrapped", size, false),
        many: () => sendRate(kind, "ffi", size, true),
      });
      const { many, ...each } = sends;
      emit({
        group,
        case: `send ${size} B, send() each`,
        unit: "msg/s",
        better: "higher",
        values: each,
      });
      emit({
        group,
        case: `send ${size} B, sendMany() by ${BATCH} (built-in, C: one call each)`,
        unit: "msg/s",
        better: "higher",
        values: { [OURS]: many, [BUILTIN]: each[BUILTIN], [C]: each[C] },
      });
      const lost: Record<string, number> = {};
      const receiving = (impl: Impl, name: string) => async () => {
        const r = await receiveRate(kind, impl, size);
        lost[name] = (lost[name] ?? 0) + r.lost;
        return r.rate;
      };
      const receives = await medians({
        [OURS]: receiving("ffi", OURS),
        [BUILTIN]: receiving("builtin", BUILTIN),
        [WRAPPED]: receiving("wrapped", WRAPPED),
        [MANY]: receiving("many", MANY),
      });
      lost[C] = cRuns.reduce((sum, r) => sum + r.lost, 0);
      const note = lossNote(lost);
      emit({
        group,
        case: `receive ${size} B`,
        unit: "msg/s",
        better: "higher",
        values: { ...receives, [C]: median(cRuns.map((r) => r.rate)) },
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
