/**
 * The scale benchmark: what many seqpacket sockets cost, `@bsd/sockets`
 * against the C epoll references in `bench/c/epollbench.c`, side by side in
 * one run.
 *
 * - idle: N pairs from `seqpacketPair()` with a `receive()` pending on both
 *   ends of each (2N waiting sockets; C: both ends of N `socketpair`s in one
 *   epoll set). Each N runs in a fresh process, which reports the resident
 *   memory (VmRSS, after a GC) it grew by per socket, the threads it has
 *   before and after, and the CPU it uses over two seconds of waiting, in
 *   all and per thread name with each thread's wake-ups (voluntary context
 *   switches), which tells the engine's waits on the blocking pool from the
 *   runtime's own threads. Then it
 *   closes every socket and checks that every pending receive settled with
 *   `null`. Kernel memory for the sockets is outside VmRSS for both.
 * - active: K connections to a C epoll echo server, each with one 64-byte
 *   record in flight (send, await the reply, send again), for a fixed time
 *   slice after a warm-up; the aggregate round trips per second of our client
 *   against the C epoll client doing the same, the contenders taking turns.
 *   Client and server share CPU 0, as the engine bench's pinned rows do, so
 *   the rate is what the two programs' own work allows. The floor columns
 *   run the C client's loop in Deno over bare FFI calls (see
 *   {@linkcode activeFloor}): what any Deno FFI library is bounded by.
 *
 * Every child runs with its open-file limit raised to the hard limit. Points
 * that need more descriptors than that are left out with a line saying so.
 * The curve goes to `scale.svg` in `bench/out/` (or `deno task bench --out=DIR`'s DIR).
 *
 * Run: `deno run --unstable-net -A bench/scale_bench.ts [--json] [--group=idle|active]`
 * (or `deno task bench scale`). The same file is also the peer program:
 * `bench/scale_bench.ts peer ROLE ...` (see {@linkcode runPeer}).
 *
 * @module
 */

import process from "node:process";
import {
  after,
  buildC,
  C,
  emit,
  median,
  OURS,
  OUT_DIR,
  type Peer,
  peerOrMain,
  peerReady,
  type PeerResult,
  peerResult,
  record,
  spawnPeer,
} from "./_harness.ts";
import { lineChart } from "./_svg.ts";
import { theReactor } from "../ffi/reactor.ts";
import {
  AF_UNIX,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_EVENT_DATA_OFFSET,
  EPOLL_EVENT_SIZE,
  EPOLLIN,
  MSG_NOSIGNAL,
  SO_PASSCRED,
  SOCK_CLOEXEC,
  SOCK_SEQPACKET,
  SOL_SOCKET,
} from "../ffi/constants.ts";
import { IOVEC, MSGHDR } from "../ffi/structs.ts";
import { connectSeqpacket, type SeqpacketConn, seqpacketPair } from "../seqpacket.ts";

/** Pairs in the idle group: up to 10,000 waiting sockets. */
const IDLE_PAIRS = [1, 10, 100, 1000, 5000];
/** Connections in the active group. */
const ACTIVE = [1, 10, 100, 1000, 10_000];
/** How long the idle processes wait while their CPU is measured, s. */
const IDLE_S = 2;
/** How long an idle process waits before it measures, ms. */
const SETTLE_MS = 1000;
/** How long it waits after its forced GC before the CPU window, ms. */
const SWEEP_MS = 500;
/** The active time slice, s, and the warm-up before it, ms. */
const SLICE_S = 1;
const WARM_MS = 300;
const RUNS = 3;
/** Past this many seconds into the file, the largest active point is left out. */
const BUDGET_S = 100;
const SIZE = 64;
const CPU = [0];
/** Descriptors a process needs besides its sockets. */
const SPARE_FDS = 64;

const SELF = new URL(import.meta.url).pathname;

// ---------------------------------------------------------------------------
// Peer roles, run in a child Deno (with --expose-gc) by the main program.

/** The fields of /proc/self/status the idle role reads. */
function status(): { rssKb: number; threads: number } {
  const text = Deno.readTextFileSync("/proc/self/status");
  const field = (name: string): number =>
    Number(new RegExp(`^${name}:\\s*(\\d+)`, "m").exec(text)?.[1]);
  return { rssKb: field("VmRSS"), threads: field("Threads") };
}

function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** What a process's threads of one name used so far. */
interface ThreadUse {
  /** CPU time, ns (schedstat). */
  cpuNs: number;
  /** Voluntary context switches: how often they slept and were woken. */
  wakeups: number;
}

/**
 * Use per thread name (the JS thread is "main"), from /proc/self/task: what
 * tells the runtime's own threads (V8's GC workers, tokio's) from the
 * engine's waits on the blocking pool.
 */
function threadUse(): Map<string, ThreadUse> {
  const byName = new Map<string, ThreadUse>();
  for (const entry of Deno.readDirSync("/proc/self/task")) {
    const dir = `/proc/self/task/${entry.name}`;
    let name: string, cpuNs: number, wakeups: number;
    try {
      name = entry.name === String(Deno.pid) ? "main" : Deno.readTextFileSync(`${dir}/comm`).trim();
      cpuNs = Number(Deno.readTextFileSync(`${dir}/schedstat`).split(" ")[0]);
      const status = Deno.readTextFileSync(`${dir}/status`);
      wakeups = Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1]);
    } catch {
      continue; // The thread ended meanwhile.
    }
    const use = byName.get(name) ?? { cpuNs: 0, wakeups: 0 };
    use.cpuNs += cpuNs;
    use.wakeups += wakeups;
    byName.set(name, use);
  }
  return byName;
}

/** Per thread name, the CPU (µs) and wake-ups between two {@linkcode threadUse} readings. */
function threadUseDelta(
  a: Map<string, ThreadUse>,
  b: Map<string, ThreadUse>,
): Record<string, { cpu_us: number; wakeups: number }> {
  const out: Record<string, { cpu_us: number; wakeups: number }> = {};
  for (const [name, use] of b) {
    const was = a.get(name) ?? { cpuNs: 0, wakeups: 0 };
    out[name] = {
      cpu_us: Math.round((use.cpuNs - was.cpuNs) / 1000),
      wakeups: use.wakeups - was.wakeups,
    };
  }
  return out;
}

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --v8-flags=--expose-gc");
  gc();
  gc();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `p`, or a rejection saying `what` was not done within `ms`. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  const late = Symbol("late");
  const timer = after(ms, late);
  const got = await Promise.race([p, timer.promise]);
  timer.cancel();
  if (got === late) throw new Error(`${what}: not within ${ms} ms`);
  return got as T;
}

/** `pairs` pairs, a receive pending on every socket: what they cost while idle. */
async function idle(pairs: number, seconds: number): Promise<PeerResult> {
  peerReady();
  // A pair used once first, so the engine and its threads exist before the baseline.
  let waitingThreads: number;
  {
    const [a, b] = seqpacketPair();
    const got = a.receive();
    await sleep(50);
    waitingThreads = status().threads;
    await b.send(record(SIZE));
    if ((await got)?.data.length !== SIZE) throw new Error("warm-up: wrong record");
    a.close();
    b.close();
  }
  // Deno starts a thread of its own about half a second after start-up,
  // sockets or not: waited out, so the baseline has it.
  await sleep(SETTLE_MS);
  collect();
  const before = status();
  const heapBefore = Deno.memoryUsage().heapUsed;
  const sockets: SeqpacketConn[] = [];
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < pairs; i++) {
    const [a, b] = seqpacketPair();
    sockets.push(a, b);
    pending.push(a.receive(), b.receive());
  }
  // Deno's own start-up work (compiling, caching, GC) goes on for about a
  // second; waiting it out keeps it out of the idle CPU.
  await sleep(SETTLE_MS);
  collect();
  const after = status();
  const heapAfter = Deno.memoryUsage().heapUsed;
  // The GC just forced leaves sweeping to V8's worker threads: waited out
  // too, so the window holds only what waiting itself costs.
  await sleep(SWEEP_MS);
  // Read once first, so their first-call costs stay out of the window.
  threadUse();
  cpuMicros();
  const threads0 = threadUse();
  const cpu0 = cpuMicros(), t0 = performance.now();
  await sleep(seconds * 1000);
  const cpu1 = cpuMicros(), t1 = performance.now();
  const threads1 = threadUse();
  const byThread = threadUseDelta(threads0, threads1);
  // The readings themselves run on the JS thread: its CPU is what getrusage
  // saw over the window less the other threads'.
  const others = Object.entries(byThread).filter(([name]) => name !== "main");
  byThread.main.cpu_us = Math.max(
    0,
    cpu1 - cpu0 - others.reduce((sum, [, use]) => sum + use.cpu_us, 0),
  );
  const during = status();
  const closing = performance.now();
  for (const s of sockets) s.close();
  const settled = await within(10_000, "pending receives after close", Promise.all(pending));
  const closeMs = performance.now() - closing;
  const nulls = settled.filter((r) => r === null).length;
  if (nulls !== sockets.length) {
    throw new Error(`close: ${nulls} of ${sockets.length} pending receives settled with null`);
  }
  return {
    role: "idle",
    n: pairs,
    rss_before_kb: before.rssKb,
    rss_after_kb: after.rssKb,
    heap_bytes: heapAfter - heapBefore,
    threads_before: before.threads,
    threads_one_waiting: waitingThreads,
    threads_after: Math.max(after.threads, during.threads),
    cpu_us: cpu1 - cpu0,
    by_thread: byThread,
    idle_s: (t1 - t0) / 1000,
    close_ms: closeMs,
    settled_null: nulls,
  };
}

/** `k` connections to `path`, each with one record in flight, counted over a slice. */
async function active(
  path: string,
  k: number,
  warmMs: number,
  seconds: number,
): Promise<PeerResult> {
  const conns: SeqpacketConn[] = [];
  try {
    for (let i = 0; i < k; i++) conns.push(await connectSeqpacket({ path }));
    const engine = theReactor();
    const events0 = engine.eventCount, controls0 = engine.controlCount;
    peerReady();
    const msg = record(SIZE);
    // Each loop reads the clock itself: with thousands of loops busy, a timer
    // can fire seconds late, which would stretch the slice.
    const start = performance.now() + warmMs, end = start + seconds * 1000;
    let trips = 0, failure: unknown;
    // The process's CPU over the slice, read by the first loop to cross each end.
    let cpuStart = -1, cpuEnd = -1;
    const loops = conns.map(async (conn) => {
      try {
        for (let now = performance.now(); now < end && failure === undefined;) {
          await conn.send(msg);
          const reply = await conn.receive();
          if (reply?.data.length !== SIZE || reply.data[SIZE - 1] !== msg[SIZE - 1]) {
            throw new Error(`wrong reply after ${trips} round trips`);
          }
          now = performance.now();
          if (now >= start && now < end) {
            trips++;
            if (cpuStart < 0) cpuStart = cpuMicros();
          } else if (now >= end && cpuEnd < 0) cpuEnd = cpuMicros();
        }
      } catch (err) {
        failure ??= err;
      }
    });
    await within(seconds * 1000 + warmMs + 30_000, "the time slice", Promise.all(loops));
    if (failure !== undefined) throw failure;
    return {
      role: "client",
      k,
      n: trips,
      elapsed_s: seconds,
      msgs_per_s: trips / seconds,
      cpu_us_per_trip: (cpuEnd - cpuStart) / trips,
      // How many receives waited for the engine, over warm-up and slice.
      engine_events: engine.eventCount - events0,
      epoll_ctl: engine.controlCount - controls0,
    };
  } finally {
    for (const c of conns) c.close();
  }
}

/** libc as the floor client calls it, opened on first use. */
const FLOOR_SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  epoll_park: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * The floor under the active group: the C client's loop written in Deno
 * over bare FFI calls, with no library around it. One level-triggered epoll
 * set; a synchronous `epoll_wait(…, 0)` first and a `nonblocking: true` one
 * on the pool only when nothing is ready; per event one `recv` and one
 * `send`, synchronous; no promise per record. Each reply is still copied
 * out (`slice`), as what a receive API hands back must be. With `cmsg`, the sockets set
 * `SO_PASSCRED` and receive with `recvmsg` and a control buffer, as a
 * seqpacket socket that tells a 0-byte record from end of stream must.
 * What this reaches bounds any Deno FFI library on this machine.
 */
async function activeFloor(
  path: string,
  k: number,
  warmMs: number,
  seconds: number,
  cmsg: boolean,
): Promise<PeerResult> {
  const lib = Deno.dlopen("libc.so.6", FLOOR_SYMBOLS).symbols;
  const ep = lib.epoll_create1(EPOLL_CLOEXEC);
  const fds: number[] = [];
  // The kernel reaches these only through the header's pointers: referenced
  // until the end (in finally), or a GC may free them mid-run.
  const control = new Uint8Array(64), iov = new Uint8Array(IOVEC.size);
  try {
    const name = new TextEncoder().encode(path);
    const addr = new Uint8Array(2 + name.length + 1);
    addr[0] = AF_UNIX;
    addr.set(name, 2);
    const one = new Uint8Array(new Int32Array([1]).buffer);
    const ev = new Uint8Array(EPOLL_EVENT_SIZE);
    const evView = new DataView(ev.buffer);
    for (let i = 0; i < k; i++) {
      // Blocking connect, as the C client's: a full backlog waits.
      const fd = lib.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
      if (fd < 0) throw new Error("floor: socket failed");
      fds.push(fd);
      if (lib.connect(fd, addr, addr.length) !== 0) throw new Error(`floor: connect ${path}`);
      if (cmsg) lib.setsockopt(fd, SOL_SOCKET, SO_PASSCRED, one, 4);
      evView.setUint32(0, EPOLLIN, true);
      evView.setInt32(EPOLL_EVENT_DATA_OFFSET, fd, true);
      if (lib.epoll_ctl(ep, EPOLL_CTL_ADD, fd, ev) !== 0) throw new Error("floor: epoll_ctl");
    }
    peerReady();
    const msg = record(SIZE), reply = new Uint8Array(65536);
    const size = BigInt(SIZE), room = BigInt(reply.length);
    const header = new Uint8Array(MSGHDR.size);
    const hv = new DataView(header.buffer);
    const at = (b: Uint8Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
    new DataView(iov.buffer).setBigUint64(IOVEC.base, at(reply), true);
    new DataView(iov.buffer).setBigUint64(IOVEC.len, room, true);
    hv.setBigUint64(MSGHDR.iov, at(iov), true);
    hv.setBigUint64(MSGHDR.iovlen, 1n, true);
    hv.setBigUint64(MSGHDR.control, at(control), true);
    for (const fd of fds) {
      if (Number(lib.send(fd, msg, size, MSG_NOSIGNAL)) !== SIZE) throw new Error("floor: send");
    }
    const MAX = 1024;
    const events = new Uint8Array(MAX * EPOLL_EVENT_SIZE), view = new DataView(events.buffer);
    const start = performance.now() + warmMs, end = start + seconds * 1000;
    let trips = 0, cpuStart = -1;
    for (let now = performance.now(); now < end; now = performance.now()) {
      if (now >= start && cpuStart < 0) cpuStart = cpuMicros();
      let n = lib.epoll_wait(ep, events, MAX, 0);
      if (n === 0) n = await lib.epoll_park(ep, events, MAX, 5000);
      if (n === 0) throw new Error("floor: no reply for 5 s");
      const counted = now >= start;
      for (let i = 0; i < n; i++) {
        const fd = view.getInt32(i * EPOLL_EVENT_SIZE + EPOLL_EVENT_DATA_OFFSET, true);
        let r: number;
        if (cmsg) {
          hv.setBigUint64(MSGHDR.controllen, BigInt(control.length), true);
          r = Number(lib.recvmsg(fd, header, 0));
        } else r = Number(lib.recv(fd, reply, room, 0));
        const got = reply.slice(0, r);
        if (r !== SIZE || got[SIZE - 1] !== msg[SIZE - 1]) {
          throw new Error(`floor: wrong reply of ${r} bytes`);
        }
        if (counted) trips++;
        if (Number(lib.send(fd, msg, size, MSG_NOSIGNAL)) !== SIZE) throw new Error("floor: send");
      }
    }
    const cpu = cpuMicros() - cpuStart;
    return {
      role: "client",
      k,
      n: trips,
      elapsed_s: seconds,
      msgs_per_s: trips / seconds,
      cpu_us_per_trip: cpu / trips,
    };
  } finally {
    for (const fd of fds) lib.close(fd);
    lib.close(ep);
    control.fill(0, 0, 0);
    iov.fill(0, 0, 0);
  }
}

/**
 * Runs one benchmark role and prints its result line. Roles:
 * `idle PAIRS SECONDS` and `active PATH K WARM_MS SECONDS`.
 *
 * @param role The role name.
 * @param args Its arguments.
 */
export async function runPeer(role: string, args: string[]): Promise<void> {
  if (role === "idle") return peerResult(await idle(Number(args[0]), Number(args[1])));
  if (role === "active") {
    const [path, k, warm, seconds] = args;
    return peerResult(await active(path, Number(k), Number(warm), Number(seconds)));
  }
  if (role === "floor") {
    const [path, k, warm, seconds, cmsg] = args;
    const run = activeFloor(path, Number(k), Number(warm), Number(seconds), cmsg === "cmsg");
    return peerResult(await run);
  }
  throw new Error(`unknown role ${role}`);
}

// ---------------------------------------------------------------------------
// The main program.

/** `cmd` with its soft open-file limit raised to the hard one (no privilege needed). */
function raisedNofile(cmd: string[]): string[] {
  return ["bash", "-c", 'ulimit -n "$(ulimit -Hn)" && exec "$@"', "raise-nofile", ...cmd];
}

/** The hard open-file limit children can raise theirs to. */
function hardNofile(): number {
  const out = new Deno.Command("bash", { args: ["-c", "ulimit -Hn"], stdin: "null" }).outputSync();
  const text = new TextDecoder().decode(out.stdout).trim();
  return text === "unlimited" ? Infinity : Number(text);
}

function ours(args: (string | number)[], pin?: number[]): Promise<Peer> {
  // -A: Deno reads /proc/self/status only with every permission.
  const argv = [
    Deno.execPath(),
    "run",
    "--quiet",
    "--allow-all",
    "--v8-flags=--expose-gc",
    SELF,
    "peer",
    ...args.map(String),
  ];
  return spawnPeer(raisedNofile(argv), { pin, readyTimeoutMs: 60_000 });
}

async function c(args: (string | number)[], pin?: number[]): Promise<Peer> {
  const dir = await buildC();
  return spawnPeer(raisedNofile([dir + "epollbench", ...args.map(String)]), {
    pin,
    readyTimeoutMs: 60_000,
  });
}

async function runIdle(start: () => Promise<Peer>): Promise<PeerResult> {
  await using peer = await start();
  return await peer.result(120_000);
}

/** One active run: a C echo server and a client, on CPU 0; the client's rate. */
/** The clients of the active group (the floors: {@linkcode activeFloor}). */
type Client = "ours" | "c" | "floor" | "floor-cmsg";

/** One active run: a C echo server and a client, on CPU 0; the client's result. */
async function runActive(dir: string, k: number, client: Client): Promise<PeerResult> {
  const path = `${dir}/active-${k}-${client}-${crypto.randomUUID().slice(0, 8)}.sock`;
  await using server = await c(["server", path, "-k", k, "-t", 90], CPU);
  const timing = [k, WARM_MS, SLICE_S];
  await using peer = client === "ours"
    ? await ours(["active", path, ...timing], CPU)
    : client === "c"
    ? await c(["client", path, "-k", k, "-w", WARM_MS, "-d", SLICE_S, "-s", SIZE], CPU)
    : await ours(["floor", path, ...timing, client === "floor-cmsg" ? "cmsg" : "plain"], CPU);
  const result = await peer.result(120_000);
  await server.result(30_000);
  return result;
}

/** VmRSS growth, bytes, over the measured part of an idle run. */
function growth(r: PeerResult): number {
  return ((r.rss_after_kb as number) - (r.rss_before_kb as number)) * 1024;
}

/** Growth per socket, less `base` (what the same process grew by with no socket). */
function perSocket(r: PeerResult, base = 0): number {
  return Math.max(0, growth(r) - base) / (2 * (r.n as number));
}

function threadsAdded(r: PeerResult): number {
  return (r.threads_after as number) - (r.threads_before as number);
}

function idleCpu(r: PeerResult): number {
  return (r.cpu_us as number) / (r.idle_s as number);
}

/** An idle run's CPU and wake-ups per thread name, as note text. */
function byThread(r: PeerResult): string {
  const use = r.by_thread as Record<string, { cpu_us: number; wakeups: number }>;
  return Object.entries(use)
    .map(([name, u]) => `${name} ${fmt(u.cpu_us)} µs/${fmt(u.wakeups)} wake-ups`)
    .join(", ");
}

/** The columns of the least a Deno program can do through FFI ({@linkcode activeFloor}). */
const FLOOR = "Deno FFI floor";
const FLOOR_CMSG = "Deno FFI floor + cmsg";

/** The column of a Deno process running the idle role with no socket open. */
const NO_SOCKET = "Deno, no socket open";

function fmt(n: number): string {
  return n.toLocaleString("en-US");
}

/** A point of the curve: ours and C at a number of sockets. */
export interface Point {
  sockets: number;
  ours: number;
  c: number;
}

async function idleGroup(hard: number): Promise<Point[]> {
  const memory: Point[] = [];
  // The idle role with no socket: what Deno alone grows by, its threads, its idle CPU.
  const base = await runIdle(() => ours(["idle", 0, IDLE_S]));
  const baseGrowth = Math.max(0, growth(base));
  for (const pairs of IDLE_PAIRS) {
    const sockets = 2 * pairs;
    if (sockets + SPARE_FDS > hard) {
      console.error(`scale: idle ${fmt(pairs)} pairs skipped: the open-file limit is ${hard}`);
      continue;
    }
    const o = await runIdle(() => ours(["idle", pairs, IDLE_S]));
    const k = await runIdle(() => c(["idle", pairs, "-d", IDLE_S]));
    const what = `idle: ${fmt(pairs)} pair${pairs === 1 ? "" : "s"} (${fmt(sockets)} sockets), ` +
      `a receive pending on each`;
    const point = { sockets, ours: perSocket(o, baseGrowth), c: perSocket(k) };
    memory.push(point);
    emit({
      group: "scale",
      case: `${what}: memory`,
      unit: "B/socket",
      better: "lower",
      values: { [OURS]: point.ours, [C]: point.c },
      note: `VmRSS growth after a GC, ours less the ${fmt(Math.round(baseGrowth / 1024))} KiB ` +
        `a process with no socket grew by; ours: JS heap ` +
        `${fmt(Math.round((o.heap_bytes as number) / sockets))} B/socket, ` +
        `all ${fmt(o.settled_null as number)} settled with null ` +
        `${(o.close_ms as number).toFixed(0)} ms after close`,
    });
    emit({
      group: "scale",
      case: `${what}: threads added`,
      unit: "threads",
      better: "lower",
      values: { [OURS]: threadsAdded(o), [C]: threadsAdded(k), [NO_SOCKET]: threadsAdded(base) },
      note: `ours ${o.threads_before} → ${o.threads_after} (${o.threads_one_waiting} with one ` +
        `receive pending), no socket ${base.threads_before} → ${base.threads_after}, ` +
        `C ${k.threads_before} → ${k.threads_after}; goal: unchanged`,
    });
    emit({
      group: "scale",
      case: `${what}: CPU while idle`,
      unit: "µs CPU/s",
      better: "lower",
      values: { [OURS]: idleCpu(o), [C]: idleCpu(k), [NO_SOCKET]: idleCpu(base) },
      note: `over ${IDLE_S} s of waiting, ${SETTLE_MS} ms after start-up and ${SWEEP_MS} ms ` +
        `after a GC; by thread, ours: ${byThread(o)}; no socket: ${byThread(base)}; goal: 0`,
    });
  }
  return memory;
}

async function activeGroup(hard: number, started: number): Promise<Point[]> {
  const curve: Point[] = [];
  const dir = Deno.makeTempDirSync({ prefix: "bsd-scale-bench-" });
  try {
    for (const k of ACTIVE) {
      if (k + SPARE_FDS > hard) {
        console.error(
          `scale: ${fmt(k)} active connections skipped: the open-file limit is ${hard}`,
        );
        continue;
      }
      const elapsed = (performance.now() - started) / 1000;
      if (k === ACTIVE[ACTIVE.length - 1] && elapsed > BUDGET_S) {
        console.error(
          `scale: ${fmt(k)} active connections skipped: ${elapsed.toFixed(0)} s used ` +
            `of a ${BUDGET_S} s budget`,
        );
        continue;
      }
      const clients: Client[] = ["ours", "c", "floor", "floor-cmsg"];
      const runs = new Map<Client, number[]>(clients.map((name) => [name, []]));
      const cpu = new Map<Client, number[]>(clients.map((name) => [name, []]));
      let waited = 0, trips = 0;
      // Taking turns, so load that comes and goes falls on all alike.
      for (let i = 0; i < RUNS; i++) {
        for (const client of clients) {
          const r = await runActive(dir, k, client);
          runs.get(client)!.push(r.msgs_per_s!);
          cpu.get(client)!.push(r.cpu_us_per_trip as number);
          if (client === "ours") {
            waited += r.engine_events as number;
            trips += r.n!;
          }
        }
      }
      const rate = (client: Client) => median(runs.get(client)!);
      const point = { sockets: k, ours: rate("ours"), c: rate("c") };
      curve.push(point);
      emit({
        group: "scale",
        case: `active: ${fmt(k)} connection${k === 1 ? "" : "s"} ping-ponging ${SIZE} B at ` +
          `once, against a C epoll echo server`,
        unit: "round trips/s",
        better: "higher",
        values: {
          [OURS]: point.ours,
          [C]: point.c,
          [FLOOR]: rate("floor"),
          [FLOOR_CMSG]: rate("floor-cmsg"),
        },
        note: `aggregate over ${SLICE_S} s after ${WARM_MS} ms, all on CPU 0, median of ${RUNS}; ` +
          `ours: ${fmt(Math.round(waited / RUNS))} engine events a run for ` +
          `${fmt(Math.round(trips / RUNS))} round trips counted (the other receives found ` +
          `their reply on the first try)` + (k === 1000 ? "; goal: ≥80% of C" : ""),
      });
      const cpuOf = (client: Client) => median(cpu.get(client)!);
      emit({
        group: "scale",
        case: `active: ${fmt(k)} connection${k === 1 ? "" : "s"}: client CPU per round trip`,
        unit: "µs",
        better: "lower",
        values: {
          [OURS]: cpuOf("ours"),
          [C]: cpuOf("c"),
          [FLOOR]: cpuOf("floor"),
          [FLOOR_CMSG]: cpuOf("floor-cmsg"),
        },
        note: `user + system over the slice, median of ${RUNS}; less skewed by other load ` +
          `than the rate`,
      });
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  return curve;
}

async function main(): Promise<void> {
  const started = performance.now();
  const hard = hardNofile();
  const group = Deno.args.find((a) => a.startsWith("--group="))?.slice("--group=".length);
  const memory = group === "active" ? [] : await idleGroup(hard);
  const curve = group === "idle" ? [] : await activeGroup(hard, started);
  if (curve.length + memory.length === 0) return;
  // `deno task bench --out=DIR` puts the chart beside results.md in DIR.
  const out = Deno.env.get("BSD_BENCH_OUT") ?? OUT_DIR;
  Deno.mkdirSync(out, { recursive: true });
  Deno.writeTextFileSync(out + "scale.svg", scaleChart(curve, memory));
  console.error(`scale: wrote ${out}scale.svg`);
}

/**
 * The scale curve: aggregate round trips per second of ours and C against
 * the active connections, and memory per idle socket against the sockets.
 *
 * @param rates Per K: ours and C's aggregate rate.
 * @param memory Per socket count: ours and C's VmRSS growth per socket.
 * @returns The SVG document.
 */
export function scaleChart(rates: readonly Point[], memory: readonly Point[]): string {
  return lineChart({
    title: "@bsd/sockets at scale: seqpacket, against C epoll",
    xLabel: "sockets (log scale): active connections (top), idle sockets with a pending receive " +
      "(bottom)",
    panels: [
      {
        yLabel: "aggregate round trips/s",
        series: [
          {
            name: `${OURS}, 64 B, one in flight each`,
            points: rates.map((p) => [p.sockets, p.ours]),
          },
          { name: "C epoll client", points: rates.map((p) => [p.sockets, p.c]), dashed: true },
        ],
      },
      {
        yLabel: "resident bytes per idle socket",
        yLog: true,
        series: [
          { name: `${OURS} (VmRSS growth)`, points: memory.map((p) => [p.sockets, p.ours]) },
          { name: "C epoll", points: memory.map((p) => [p.sockets, p.c]), dashed: true },
        ],
      },
    ],
  });
}

if (import.meta.main) await peerOrMain(runPeer, main);
