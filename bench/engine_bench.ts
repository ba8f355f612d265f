/**
 * The FFI engine's benchmark, measured through seqpacket sockets (which no
 * built-in offers, so nothing but the engine stands between the caller and
 * the kernel): `@bsd/sockets` against the C reference (`bench/c/`, built with
 * gcc in the same run) and against Deno's nearest built-in, the Unix datagram
 * socket (`Deno.listenDatagram({ transport: "unixpacket" })`).
 *
 * Every case runs two processes and reports the median of three runs:
 * - ping-pong of 64-byte records, one outstanding, timed per round trip by
 *   the client: pinned (both processes under `taskset -c 0`, which shows
 *   the code's own cost) and unpinned (which adds the cost of waking a
 *   thread on the other CPU); ours is the client against the C echo server,
 *   the built-in is the client against the C Unix datagram echo server;
 * - the echo turnaround of our server, timed by the C client;
 * - one-way throughput at 64 B and 8 KiB, sender on CPU 0 and receiver on
 *   CPU 1: "send" is our sender into the C sink, "receive" is the C sender
 *   into our receiver; C is C into C.
 *
 * Other programs are contenders in the pinned and unpinned round trips and
 * the receive rates, against the same C peers: CPython's `socket` module
 * (`bench/py/`) and Node with node-unix-socket (`bench/node/`, installed with
 * npm into a temporary directory for the run; its rows are skipped, with a
 * line saying why, when node, npm or the registry is unavailable).
 *
 * Run: `deno run --unstable-net -A bench/engine_bench.ts [--json]`
 * (or `deno task bench engine`). The same file is also the peer program:
 * `bench/engine_bench.ts peer ROLE ...` (see {@linkcode runPeer}).
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
  peerOrMain,
  peerReady,
  type PeerResult,
  peerResult,
  record,
  spawnC,
  spawnDeno,
  spawnPeer,
} from "./_harness.ts";
import { connectSeqpacket, listenSeqpacket, seqpacketPair } from "../seqpacket.ts";
import { listenDatagram } from "../datagram.ts";
import { configureReactor, type ReactorOptions } from "../ffi/reactor.ts";
import { runFloor } from "./_ffi_floor.ts";
import process from "node:process";
import { installNodePackage, nodeArgv, type NodeInstall } from "./_node.ts";

const RUNS = 3;
const PING_N = 10_000;
const SIZES = [
  { size: 64, n: 200_000, label: "64 B" },
  { size: 8192, n: 30_000, label: "8 KiB" },
] as const;
/** The column of the least a Deno program can do through FFI (bench/_ffi_floor.ts). */
const FLOOR = "Deno FFI floor";
/** The floor receiving as seqpacket must: with a control buffer and SO_PASSCRED. */
const FLOOR_CMSG = "Deno FFI floor + cmsg";
/** Ours receiving with `read(p)` into a buffer of the caller's. */
const READ = `${OURS} read(p)`;
/** Ours receiving with `receiveMany({ max: 64 })`: one await per batch. */
const MANY = `${OURS} receiveMany`;
/** The busy-poll budget, µs, of the rows that use one. */
const BUSY_POLL = 50;
const SENDER = [0];
const RECEIVER = [1];
const BUILTIN_PEER: Deno.UnixAddr = { transport: "unixpacket", path: "" };

// ---------------------------------------------------------------------------
// Peer roles, run in a child Deno by the main program.

/**
 * Times `n` round trips of a `size`-byte record after a warm-up, checking
 * each reply, and returns the client's result line.
 */
async function roundTrips(
  n: number,
  size: number,
  trip: (msg: Uint8Array) => Promise<Uint8Array | null>,
): Promise<PeerResult> {
  const msg = record(size);
  const samples: number[] = [];
  const warmup = Math.min(1000, n / 10);
  let started = 0;
  let cpu = process.cpuUsage();
  for (let i = -warmup; i < n; i++) {
    if (i === 0) {
      started = performance.now();
      cpu = process.cpuUsage();
    }
    msg[0] = i & 0xff;
    const t0 = performance.now();
    const reply = await trip(msg);
    const t1 = performance.now();
    if (reply === null || reply.length !== size || reply[0] !== msg[0]) {
      throw new Error(`round trip ${i}: wrong reply`);
    }
    if (i >= 0) samples.push(t1 - t0);
  }
  const used = process.cpuUsage(cpu);
  const sorted = samples.toSorted((x, y) => x - y);
  return {
    role: "client",
    n,
    rtt_us_median: median(samples) * 1000,
    rtt_us_p90: sorted[Math.floor(sorted.length * 0.9)] * 1000,
    // The client's CPU time, all its threads (the pool's too), per round trip.
    cpu_us_per_trip: (used.user + used.system) / n,
    elapsed_s: (performance.now() - started) / 1000,
  };
}

/**
 * Runs one benchmark role and prints its result line. Roles:
 * `client PATH N SIZE [BUSY_POLL_US]`, `server PATH [BUSY_POLL_US]`,
 * `sink PATH N`, `flood PATH N SIZE` (ours), `client-read`, `sink-read`
 * (ours with `read(p)` instead of `receive()`), `sink-many` (ours with
 * `receiveMany({ max: 64 })`), `builtin-client`, `builtin-sink`,
 * `builtin-flood` with the same arguments (Deno's Unix datagram socket), and
 * `floor-client`,
 * `floor-sink`, `floor-flood` (bare FFI calls, see `bench/_ffi_floor.ts`),
 * `dgram-client PATH N SIZE`, `dgram-server PATH COUNT` (ours, Unix
 * datagram; the server echoes COUNT records) and `builtin-server PATH COUNT`
 * (the same with Deno's Unix datagram socket), `pair-ping N` (both ends of a
 * `seqpacketPair()` in this one process: each wait is the engine's alone,
 * no other process is scheduled in between). A last argument
 * `--engine=WORDS` configures the engine first, as BSD_SOCKETS_ENGINE does.
 *
 * @param role The role name.
 * @param args Its arguments.
 */
export async function runPeer(role: string, args: string[]): Promise<void> {
  const [path, a, b, c] = args;
  const n = Number(a), size = Number(b);
  switch (role) {
    case "client": {
      using conn = await connectSeqpacket({ path, busyPoll: Number(c ?? 0) });
      peerReady();
      return peerResult(
        await roundTrips(n, size, async (msg) => {
          await conn.send(msg);
          return (await conn.receive())?.data ?? null;
        }),
      );
    }
    case "client-read": {
      using conn = await connectSeqpacket({ path });
      peerReady();
      const buf = new Uint8Array(65536);
      return peerResult(
        await roundTrips(n, size, async (msg) => {
          await conn.send(msg);
          const got = await conn.read(buf);
          return got === null ? null : buf.subarray(0, got);
        }),
      );
    }
    case "sink-read":
    case "sink-many":
    case "sink": {
      using listener = listenSeqpacket({ path });
      peerReady();
      using conn = await listener.accept();
      const buf = new Uint8Array(65536);
      // How many records the next call returned (0 at the end).
      const next = role === "sink"
        ? async () => (await conn.receive()) !== null ? 1 : 0
        : role === "sink-read"
        ? async () => (await conn.read(buf)) !== null ? 1 : 0
        : async () => (await conn.receiveMany({ max: 64 }))?.length ?? 0;
      let records = 0, first = 0, last = 0;
      for (let got = await next(); got > 0; got = await next()) {
        last = performance.now();
        if (records === 0) first = last;
        records += got;
      }
      if (records !== n) throw new Error(`sink: ${records} records, expected ${n}`);
      return peerResult({
        role: "sink",
        n: records,
        msgs_per_s: (records - 1) / ((last - first) / 1000),
      });
    }
    case "server": {
      using listener = listenSeqpacket({ path, busyPoll: Number(a ?? 0) });
      peerReady();
      using conn = await listener.accept();
      let records = 0;
      for (let m = await conn.receive(); m !== null; m = await conn.receive()) {
        await conn.send(m.data);
        records++;
      }
      return peerResult({ role: "server", n: records });
    }
    case "flood": {
      using conn = await connectSeqpacket({ path });
      peerReady();
      const msg = record(size);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await conn.send(msg);
      const t1 = performance.now();
      return peerResult({ role: "flood", n, msgs_per_s: n / ((t1 - t0) / 1000) });
    }
    case "builtin-client": {
      const sock = Deno.listenDatagram({ transport: "unixpacket", path: `${path}.client` });
      peerReady();
      const to = { ...BUILTIN_PEER, path };
      const buf = new Uint8Array(65536);
      const result = await roundTrips(n, size, async (msg) => {
        await sock.send(msg, to);
        return (await sock.receive(buf))[0];
      });
      sock.close();
      return peerResult(result);
    }
    case "builtin-sink": {
      const sock = Deno.listenDatagram({ transport: "unixpacket", path });
      peerReady();
      const buf = new Uint8Array(65536);
      let first = 0, last = 0;
      for (let i = 0; i < n; i++) {
        await sock.receive(buf);
        last = performance.now();
        if (i === 0) first = last;
      }
      sock.close();
      return peerResult({ role: "sink", n, msgs_per_s: (n - 1) / ((last - first) / 1000) });
    }
    case "builtin-flood": {
      const sock = Deno.listenDatagram({ transport: "unixpacket", path: `${path}.flood` });
      peerReady();
      const to = { ...BUILTIN_PEER, path };
      const msg = record(size);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await sock.send(msg, to);
      const t1 = performance.now();
      sock.close();
      return peerResult({ role: "flood", n, msgs_per_s: n / ((t1 - t0) / 1000) });
    }
    case "dgram-client": {
      using sock = listenDatagram({ path: `${path}.client`, backend: "ffi" });
      peerReady();
      const to = { transport: "unixgram", path } as const;
      return peerResult(
        await roundTrips(n, size, async (msg) => {
          await sock.send(msg, to);
          return (await sock.receive())?.data ?? null;
        }),
      );
    }
    case "dgram-server": {
      using sock = listenDatagram({ path, backend: "ffi" });
      peerReady();
      for (let i = 0; i < n; i++) {
        const m = await sock.receive();
        if (m === null) break;
        await sock.send(m.data, m.from!);
      }
      return peerResult({ role: "server", n });
    }
    case "pair-ping": {
      const [a, b] = seqpacketPair();
      peerReady();
      try {
        return peerResult(
          await roundTrips(Number(path), 64, async (msg) => {
            // Both receives park before the sends: two engine wake-ups a trip.
            const there = b.receive(), back = a.receive();
            await a.send(msg);
            await b.send((await there)!.data);
            return (await back)?.data ?? null;
          }),
        );
      } finally {
        a.close();
        b.close();
      }
    }
    case "builtin-server": {
      const sock = Deno.listenDatagram({ transport: "unixpacket", path });
      peerReady();
      const buf = new Uint8Array(65536);
      for (let i = 0; i < n; i++) {
        const [data, from] = await sock.receive(buf);
        await sock.send(data, from);
      }
      sock.close();
      return peerResult({ role: "server", n });
    }
    case "floor-client":
    case "floor-flood":
    case "floor-sink":
      return peerResult(
        await runFloor(role, args, peerReady, (trip) => roundTrips(n, size || 64, trip)),
      );
    default:
      throw new Error(`unknown role ${role}`);
  }
}

// ---------------------------------------------------------------------------
// The main program: start peers in pairs, collect, emit rows.

const SELF = new URL(import.meta.url);

function ours(role: string, args: (string | number)[], pin?: number[]): Promise<Peer> {
  return spawnDeno(SELF, ["peer", role, ...args.map(String)], { pin });
}

function c(args: (string | number)[], pin?: number[]): Promise<Peer> {
  return spawnC(args.map(String), { pin });
}

/** CPython's socket module as a contender (bench/py/seqpacket_peer.py). */
const PYTHON = "CPython socket";
const PY_PEER = new URL("./py/seqpacket_peer.py", import.meta.url).pathname;
let pythonChecked: boolean | undefined;

/** Whether python3 runs here; says so once when it does not. */
function hasPython(): boolean {
  if (pythonChecked !== undefined) return pythonChecked;
  try {
    pythonChecked = new Deno.Command("python3", { args: ["-c", "import socket"] }).outputSync()
      .success;
  } catch {
    pythonChecked = false;
  }
  if (!pythonChecked) console.error("CPython rows skipped: python3 is not available");
  return pythonChecked;
}

function py(args: (string | number)[], pin?: number[]): Promise<Peer> {
  return spawnPeer(["python3", PY_PEER, ...args.map(String)], { pin });
}

/** Node + node-unix-socket as a contender (bench/node/seqpacket_peer.mjs). */
const NODE = "Node + node-unix-socket";
const NODE_PEER = new URL("./node/seqpacket_peer.mjs", import.meta.url).pathname;
let nodeInstall: Promise<NodeInstall | null> | undefined;

/**
 * node-unix-socket installed with npm into a temporary directory, once per
 * run; null (its rows shown as missing) when that fails, said once.
 */
function nodePackage(): Promise<NodeInstall | null> {
  nodeInstall ??= installNodePackage("node-unix-socket").then((got) => {
    if ("skipped" in got) {
      console.error(`Node rows skipped: ${got.skipped}`);
      return null;
    }
    console.error(`Node rows: node-unix-socket ${got.version} installed in ${got.dir}`);
    return got;
  });
  return nodeInstall;
}

/**
 * `medianRun` with the Node peer as the client (`client PATH N SIZE`, against
 * `other`) or as the server side (`sink PATH N`, fed by `other`); null (shown
 * as missing) without it.
 */
async function nodeRun(
  dir: string,
  args: (path: string) => (string | number)[],
  pin: number[] | undefined,
  other: Start,
  pick: (server: PeerResult, client: PeerResult) => number,
): Promise<number | null> {
  const install = await nodePackage();
  if (install === null) return null;
  const node: Start = (p) => spawnPeer(nodeArgv(install, NODE_PEER, args(p).map(String)), { pin });
  try {
    return args("")[0] === "client"
      ? await medianRun(dir, other, node, pick)
      : await medianRun(dir, node, other, pick);
  } catch (err) {
    // A contender that breaks costs its own value, not the rows of the others.
    console.error(`Node row skipped: ${err instanceof Error ? err.message : err}`);
    return null;
  }
}

/** Deletes the run's Node install, if there is one. */
async function removeNodePackage(): Promise<void> {
  (await nodeInstall)?.remove();
}

/** `medianRun` for a CPython contender; null (shown as missing) without python3. */
function pyRun(
  dir: string,
  server: Start,
  client: Start,
  pick: (server: PeerResult, client: PeerResult) => number,
): Promise<number | null> {
  return hasPython() ? medianRun(dir, server, client, pick) : Promise.resolve(null);
}

/** Starts the server side, then the client side; returns both results. */
async function pair(
  server: () => Promise<Peer>,
  client: () => Promise<Peer>,
): Promise<[PeerResult, PeerResult]> {
  await using s = await server();
  await using k = await client();
  const [sr, kr] = await Promise.all([s.result(120_000), k.result(120_000)]);
  return [sr, kr];
}

let counter = 0;
function freshPath(dir: string): string {
  return `${dir}/s${++counter}.sock`;
}

type Start = (path: string) => Promise<Peer>;

/**
 * Runs a server and a client on a fresh path `RUNS` times and returns the
 * median of what `pick` takes from their results.
 */
async function medianRun(
  dir: string,
  server: Start,
  client: Start,
  pick: (server: PeerResult, client: PeerResult) => number,
): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const path = freshPath(dir);
    const [s, k] = await pair(() => server(path), () => client(path));
    values.push(pick(s, k));
  }
  return median(values);
}

const rtt = (_: PeerResult, client: PeerResult): number => client.rtt_us_median!;
const sent = (_: PeerResult, flood: PeerResult): number => flood.msgs_per_s!;
const received = (sink: PeerResult): number => sink.msgs_per_s!;

async function pingPong(
  dir: string,
  pin: number[] | undefined,
): Promise<Record<string, number | null>> {
  const cServer: Start = (p) => c(["seqpacket", "server", p], pin);
  const cClient: Start = (p) => c(["seqpacket", "client", p, "-n", PING_N], pin);
  return {
    cc: await medianRun(dir, cServer, cClient, rtt),
    oc: await medianRun(dir, cServer, (p) => ours("client", [p, PING_N, 64], pin), rtt),
    ocRead: await medianRun(dir, cServer, (p) => ours("client-read", [p, PING_N, 64], pin), rtt),
    oo: await medianRun(
      dir,
      (p) => ours("server", [p], pin),
      (p) => ours("client", [p, PING_N, 64], pin),
      rtt,
    ),
    // Our echo server timed by the C client: pinned only, where it shows our own cost.
    co: pin === undefined
      ? NaN
      : await medianRun(dir, (p) => ours("server", [p], pin), cClient, rtt),
    // The least a Deno program can do through FFI (bench/_ffi_floor.ts).
    fc: await medianRun(dir, cServer, (p) => ours("floor-client", [p, PING_N, 64], pin), rtt),
    pc: await pyRun(dir, cServer, (p) => py(["client", p, PING_N, 64], pin), rtt),
    nc: await nodeRun(dir, (p) => ["client", p, PING_N, 64], pin, cServer, rtt),
    fcc: await medianRun(
      dir,
      cServer,
      (p) => ours("floor-client", [p, PING_N, 64, "cmsg"], pin),
      rtt,
    ),
    // The same two with busyPoll (spin before waiting for each reply).
    ocSpin: await medianRun(
      dir,
      cServer,
      (p) => ours("client", [p, PING_N, 64, BUSY_POLL], pin),
      rtt,
    ),
    ooSpin: await medianRun(
      dir,
      (p) => ours("server", [p, BUSY_POLL], pin),
      (p) => ours("client", [p, PING_N, 64, BUSY_POLL], pin),
      rtt,
    ),
    bc: await medianRun(
      dir,
      (p) => c(["unixgram", "server", p], pin),
      (p) => ours("builtin-client", [p, PING_N, 64], pin),
      rtt,
    ),
  };
}

async function throughput(
  dir: string,
  size: number,
  n: number,
): Promise<{ send: Record<string, number | null>; receive: Record<string, number | null> }> {
  const args = ["-n", n, "-s", size];
  // The receiver on CPU 1, the sender on CPU 0: the kernel queues at most
  // about ten records, so the rate depends on where the two run, and leaving
  // that to the scheduler made runs differ by 3× on the 2-CPU machines.
  const cSink: Start = (p) => c(["seqpacket", "sink", p, ...args], RECEIVER);
  const cFlood: Start = (p) => c(["seqpacket", "flood", p, ...args], SENDER);
  // C into C gives both rates at once.
  const cc = { send: [] as number[], receive: [] as number[] };
  await medianRun(dir, cSink, cFlood, (sink, flood) => {
    cc.send.push(flood.msgs_per_s!);
    cc.receive.push(sink.msgs_per_s!);
    return 0;
  });
  return {
    send: {
      [OURS]: await medianRun(dir, cSink, (p) => ours("flood", [p, n, size], SENDER), sent),
      [C]: median(cc.send),
      [BUILTIN]: await medianRun(
        dir,
        (p) => c(["unixgram", "sink", p, ...args], RECEIVER),
        (p) => ours("builtin-flood", [p, n, size], SENDER),
        sent,
      ),
      [FLOOR]: await medianRun(dir, cSink, (p) => ours("floor-flood", [p, n, size], SENDER), sent),
    },
    receive: {
      [OURS]: await medianRun(dir, (p) => ours("sink", [p, n], RECEIVER), cFlood, received),
      [READ]: await medianRun(dir, (p) => ours("sink-read", [p, n], RECEIVER), cFlood, received),
      [MANY]: await medianRun(dir, (p) => ours("sink-many", [p, n], RECEIVER), cFlood, received),
      [C]: median(cc.receive),
      [PYTHON]: await pyRun(dir, (p) => py(["sink", p, n], RECEIVER), cFlood, received),
      [NODE]: await nodeRun(dir, (p) => ["sink", p, n], RECEIVER, cFlood, received),
      [BUILTIN]: await medianRun(
        dir,
        (p) => ours("builtin-sink", [p, n], RECEIVER),
        (p) => c(["unixgram", "flood", p, ...args], SENDER),
        received,
      ),
      [FLOOR]: await medianRun(dir, (p) => ours("floor-sink", [p, n], RECEIVER), cFlood, received),
      [FLOOR_CMSG]: await medianRun(
        dir,
        (p) => ours("floor-sink", [p, n, "cmsg"], RECEIVER),
        cFlood,
        received,
      ),
    },
  };
}

/**
 * `--read`: only `read(p)` against `receive()`, C and CPython side by side,
 * pinned round trip and 64 B receive rate (a quick look at the receive paths).
 */
async function readOnly(dir: string): Promise<void> {
  const pin = [0];
  const cServer: Start = (p) => c(["seqpacket", "server", p], pin);
  const cClient: Start = (p) => c(["seqpacket", "client", p, "-n", PING_N], pin);
  emit({
    group: "seqpacket",
    case: "ping-pong 64 B, pinned, against the C echo server: receive() and read(p)",
    unit: "µs",
    better: "lower",
    values: {
      [OURS]: await medianRun(dir, cServer, (p) => ours("client", [p, PING_N, 64], pin), rtt),
      [READ]: await medianRun(
        dir,
        cServer,
        (p) => ours("client-read", [p, PING_N, 64], pin),
        rtt,
      ),
      [C]: await medianRun(dir, cServer, cClient, rtt),
      [PYTHON]: await pyRun(dir, cServer, (p) => py(["client", p, PING_N, 64], pin), rtt),
      [NODE]: await nodeRun(dir, (p) => ["client", p, PING_N, 64], pin, cServer, rtt),
    },
    note: `median round trip of ${PING_N}, median of ${RUNS} runs`,
  });
  const { n } = SIZES[0];
  const args = ["-n", n, "-s", 64];
  const cFlood: Start = (p) => c(["seqpacket", "flood", p, ...args], SENDER);
  const cc: number[] = [];
  await medianRun(dir, (p) => c(["seqpacket", "sink", p, ...args], RECEIVER), cFlood, (s) => {
    cc.push(s.msgs_per_s!);
    return 0;
  });
  emit({
    group: "seqpacket",
    case: "receive 64 B from a C sender: receive(), read(p) and receiveMany()",
    unit: "msg/s",
    better: "higher",
    values: {
      [OURS]: await medianRun(dir, (p) => ours("sink", [p, n], RECEIVER), cFlood, received),
      [READ]: await medianRun(dir, (p) => ours("sink-read", [p, n], RECEIVER), cFlood, received),
      [MANY]: await medianRun(dir, (p) => ours("sink-many", [p, n], RECEIVER), cFlood, received),
      [C]: median(cc),
      [PYTHON]: await pyRun(dir, (p) => py(["sink", p, n], RECEIVER), cFlood, received),
      [NODE]: await nodeRun(dir, (p) => ["sink", p, n], RECEIVER, cFlood, received),
    },
    note: `${n} records, median of ${RUNS}`,
  });
}

/** The engine's wait paths and registrations `--wake` compares, oldest first. */
const ENGINES = [
  { label: "pool, one-shot", arg: "pool,oneshot" },
  { label: "pool, edge", arg: "pool" },
  { label: "uring, one-shot", arg: "oneshot" },
  { label: "uring, edge", arg: "" },
] as const;

/** The `--engine=` argument's options (see {@linkcode runPeer}). */
function engineOptions(words: string): ReactorOptions {
  const list = words.split(",");
  return {
    wait: list.includes("pool") ? "pool" : "uring",
    registration: list.includes("oneshot") ? "oneshot" : "edge",
  };
}

/**
 * `--wake [ROUNDS]`: the engine's wait paths and registrations against each
 * other (and the references), in alternated rounds, each case once per round
 * and each round in a rotated order; the medians over the rounds. Deno to
 * Deno round trips (seqpacket, Unix datagram) pinned and unpinned, ours
 * against the C echo server pinned, and the 64 B receive rate.
 */
async function wakeOnly(dir: string): Promise<void> {
  const rounds = Number(Deno.args[Deno.args.indexOf("--wake") + 1]) || 5;
  const n = PING_N, count = n + Math.min(1000, n / 10);
  const { n: records } = SIZES[0];
  const flood = ["-n", records, "-s", 64];
  type Values = [median: number, p90: number, cpu: number];
  type Case = { row: string; run: (engine: string) => Promise<Values> };
  const trip = (s: Start, k: Start) => async (): Promise<Values> => {
    const path = freshPath(dir);
    const [, client] = await pair(() => s(path), () => k(path));
    const extra = (key: string) => typeof client[key] === "number" ? client[key] as number : NaN;
    return [client.rtt_us_median!, extra("rtt_us_p90"), extra("cpu_us_per_trip")];
  };
  const cases: Case[] = [];
  for (const [pin, how] of [[[0], "pinned"], [undefined, "unpinned"]] as const) {
    const p = pin ? [...pin] : undefined;
    const e = (engine: string) => `--engine=${engine}`;
    cases.push(
      {
        row: `seqpacket ping-pong 64 B, ${how}, Deno to Deno`,
        run: (g) =>
          trip(
            (path) => ours("server", [path, 0, e(g)], p),
            (path) => ours("client", [path, n, 64, 0, e(g)], p),
          )(),
      },
      {
        row: `unix datagram ping-pong 64 B, ${how}, Deno to Deno`,
        run: (g) =>
          trip(
            (path) => ours("dgram-server", [path, count, e(g)], p),
            (path) => ours("dgram-client", [path, n, 64, e(g)], p),
          )(),
      },
    );
    if (pin) {
      cases.push({
        row: `seqpacket ping-pong 64 B, ${how}, against the C echo server`,
        run: (g) =>
          trip(
            (path) => c(["seqpacket", "server", path], p),
            (path) => ours("client", [path, n, 64, 0, e(g)], p),
          )(),
      });
    }
  }
  cases.push({
    row: "seqpacket ping-pong 64 B, pinned, both ends in one process",
    run: async (g) => {
      await using peer = await ours("pair-ping", [n, `--engine=${g}`], [0]);
      const r = await peer.result(120_000);
      return [r.rtt_us_median!, r.rtt_us_p90 as number, r.cpu_us_per_trip as number];
    },
  });
  cases.push({
    row: "seqpacket receive 64 B from a C sender",
    run: async (g) => {
      const path = freshPath(dir);
      const [sink] = await pair(
        () => ours("sink", [path, records, `--engine=${g}`], RECEIVER),
        () => c(["seqpacket", "flood", path, ...flood], SENDER),
      );
      return [sink.msgs_per_s!, NaN, NaN];
    },
  });
  // References, the same whatever the engine does.
  const refs: Record<string, (() => Promise<Values>) | undefined> = {};
  for (const [pin, how] of [[[0], "pinned"], [undefined, "unpinned"]] as const) {
    const p = pin ? [...pin] : undefined;
    refs[`seqpacket ping-pong 64 B, ${how}, Deno to Deno`] = trip(
      (path) => c(["seqpacket", "server", path], p),
      (path) => c(["seqpacket", "client", path, "-n", n], p),
    );
    refs[`unix datagram ping-pong 64 B, ${how}, Deno to Deno`] = trip(
      (path) => ours("builtin-server", [path, count], p),
      (path) => ours("builtin-client", [path, n, 64], p),
    );
  }
  const values = new Map<string, Map<string, Values[]>>();
  const push = (row: string, col: string, v: Values): void => {
    if (!values.has(row)) values.set(row, new Map());
    const m = values.get(row)!;
    if (!m.has(col)) m.set(col, []);
    m.get(col)!.push(v);
  };
  for (let r = 0; r < rounds; r++) {
    const order = ENGINES.map((_, i) => ENGINES[(i + r) % ENGINES.length]);
    for (const k of cases) {
      for (const engine of order) push(k.row, engine.label, await k.run(engine.arg));
      const ref = refs[k.row];
      if (ref) {
        const col = k.row.includes("datagram") ? `${BUILTIN} (Deno to Deno)` : `${C} (C to C)`;
        push(k.row, col, await ref());
      }
    }
  }
  for (const [row, cols] of values) {
    const rate = row.includes("receive");
    const pick = (i: number) =>
      Object.fromEntries(
        [...cols].map(([col, vs]) => {
          const m = median(vs.map((v) => v[i]));
          return [col, Number.isNaN(m) ? null : m];
        }),
      );
    emit({
      group: "engine wake-up",
      case: row,
      unit: rate ? "msg/s" : "µs",
      better: rate ? "higher" : "lower",
      values: pick(0),
      note: `median over ${rounds} alternated rounds` +
        (rate ? `, ${records} records` : ` of each run's median of ${n} round trips`),
    });
    if (!rate) {
      emit({
        group: "engine wake-up",
        case: `${row}, p90`,
        unit: "µs",
        better: "lower",
        values: pick(1),
        note: `median over ${rounds} alternated rounds of each run's p90`,
      });
      emit({
        group: "engine wake-up",
        case: `${row}, client CPU per round trip`,
        unit: "µs",
        better: "lower",
        values: pick(2),
        note: `median over ${rounds} alternated rounds; user + system, every thread`,
      });
    }
  }
}

async function main(): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "bsd-seqbench-" });
  if (Deno.args.includes("--wake")) {
    try {
      return await wakeOnly(dir);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  }
  if (Deno.args.includes("--read")) {
    try {
      return await readOnly(dir);
    } finally {
      await removeNodePackage();
      Deno.removeSync(dir, { recursive: true });
    }
  }
  try {
    for (const [pin, how] of [[[0], "pinned"], [undefined, "unpinned"]] as const) {
      const r = await pingPong(dir, pin ? [...pin] : undefined);
      emit({
        group: "seqpacket",
        case: `ping-pong 64 B, ${how}, each client against the C echo server`,
        unit: "µs",
        better: "lower",
        values: {
          [OURS]: r.oc,
          [READ]: r.ocRead,
          [C]: r.cc,
          [PYTHON]: r.pc,
          [NODE]: r.nc,
          [BUILTIN]: r.bc,
          [FLOOR]: r.fc,
          [FLOOR_CMSG]: r.fcc,
        },
        note: `median round trip of ${PING_N}, median of ${RUNS} runs` +
          (pin ? "; goal: within 1.25× C" : ""),
      });
      const more = [
        ["both ends the same", r.oo],
        [`busyPoll ${BUSY_POLL} µs, against the C echo server`, r.ocSpin],
        [`busyPoll ${BUSY_POLL} µs, both ends the same`, r.ooSpin],
      ] as const;
      for (const [what, ours] of more) {
        emit({
          group: "seqpacket",
          case: `ping-pong 64 B, ${how}, ${what}`,
          unit: "µs",
          better: "lower",
          values: { [OURS]: ours, [C]: r.cc },
          note: `median round trip of ${PING_N}, median of ${RUNS} runs`,
        });
      }
      if (pin) {
        emit({
          group: "seqpacket",
          case: `echo server turnaround 64 B, ${how}`,
          unit: "µs",
          better: "lower",
          values: { [OURS]: r.co, [C]: r.cc },
          note: "C client timing; ours is the echo server",
        });
      }
    }
    for (const { size, n, label } of SIZES) {
      const r = await throughput(dir, size, n);
      const directions = [
        ["send", "into a C receiver", "≥70%"],
        ["receive", "from a C sender", "≥85%"],
      ] as const;
      for (const [direction, how, share] of directions) {
        emit({
          group: "seqpacket",
          case: `${direction} ${label}`,
          unit: "msg/s",
          better: "higher",
          values: r[direction],
          note: `${n} records ${how}, median of ${RUNS}` +
            (size === 64 ? `; goal: ${share} of C, ≥2× built-in` : ""),
        });
      }
    }
  } finally {
    await removeNodePackage();
    Deno.removeSync(dir, { recursive: true });
  }
}

if (import.meta.main) {
  // A peer may be told which wait path its engine uses (the --wake comparison).
  const engine = Deno.args.find((a) => a.startsWith("--engine="));
  if (Deno.args[0] === "peer" && engine !== undefined) {
    configureReactor(engineOptions(engine.slice("--engine=".length)));
    Deno.args.splice(Deno.args.indexOf(engine), 1);
  }
  await peerOrMain(runPeer, main);
}
