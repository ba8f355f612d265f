/**
 * Raw sockets against the tools people use today.
 *
 * 1. Capture: a UDP flood crosses a veth pair from a network namespace this
 *    bench makes; on our end, `openPacket` with a port filter and
 *    `tcpdump -w /dev/null` with the same filter take turns capturing it, in
 *    the same run. Packets captured per second of flood, and the kernel's
 *    drop count (`PACKET_STATISTICS` for us, tcpdump's own report for it):
 *    - at the rate Deno's built-in UDP sends (the goal: no drops);
 *    - at the rate the C reference floods (capacity: the goal is 80% of tcpdump).
 * 2. ICMP echo to 127.0.0.1: round-trip time of `openRaw` against the C
 *    reference (`sockbench icmp client`), both pinned to CPU 0.
 *
 * Needs root (CAP_NET_RAW, CAP_NET_ADMIN); installs tcpdump with apt-get when
 * it is missing. `--json` prints rows for `bench/run.ts`.
 *
 * ```sh
 * deno run --unstable-net -A bench/raw_bench.ts [--json] [--reps=N] [--capture-only]
 * ```
 *
 * Every capturer captures the same kind of flood in turn (tcpdump, ours,
 * ours with `immediate`), each its own flood; the rate is frames captured
 * per second of that flood, so while nobody drops it is the flood's rate.
 *
 * Run with `flood HOST PORT COUNT SIZE` it is instead the Deno flood peer.
 *
 * @module
 */

import { decodeEcho, decodeIPv4Header, encodeEcho } from "../icmp.ts";
import { compileFilter, openPacket, openRaw } from "../raw.ts";
import { NetNs, VethPair } from "../tests/_netns.ts";
import {
  buildC,
  C,
  denoArgv,
  emit,
  median,
  OURS,
  peerReady,
  peerResult,
  pinned,
  pinSelf,
  record,
  spawnC,
  spawnPeer,
} from "./_harness.ts";

const TCPDUMP = "tcpdump -w /dev/null";
const PORT = 40999;
const SIZE = 64;
const DENO_FLOOD = 150_000;
const C_FLOOD = 400_000;
/** tcpdump's default buffer is 2 MiB; ours is 8 MiB, in the ring or (immediate) the socket. */
const BUFFER_SIZE = 8 << 20;
const QUIET_MS = 300;
/**
 * The flood (and with it the kernel's work of delivering each frame, done in
 * the sender's softirq) runs on CPU 1, the capturers on CPU 0: each side has
 * a core, so the rate shows what the capturer sustains, not who wins the CPU.
 */
/** The CPU the floods run on. */
const FLOOD_CPU = "1";
const CAPTURE_CPU = "0";

/**
 * The flood peer: `count` datagrams of `size` bytes with Deno's built-in UDP, as fast as it sends.
 */
async function flood([host, port, count, size]: string[]): Promise<void> {
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 });
  const to: Deno.NetAddr = { transport: "udp", hostname: host, port: Number(port) };
  const data = new Uint8Array(Number(size)).fill(0x5a);
  peerReady();
  const n = Number(count);
  const start = performance.now();
  for (let i = 0; i < n; i++) await sock.send(data, to);
  const elapsed = (performance.now() - start) / 1000;
  sock.close();
  peerResult({
    role: "flood",
    kind: "udp",
    n,
    size: data.length,
    msgs_per_s: n / elapsed,
    elapsed_s: elapsed,
  });
}

/** A network for the flood: a namespace, a veth into it, addresses, no ARP. */
function makeNetwork(): { ns: NetNs; veth: VethPair; target: string } & Disposable {
  const ns = new NetNs();
  try {
    const veth = new VethPair(ns);
    const subnet = 64 + (Deno.pid % 128);
    const target = `10.${subnet}.0.2`;
    ns.ip("addr", "add", `10.${subnet}.0.1/24`, "dev", veth.b.name);
    const mac = [...veth.a.mac].map((b) => b.toString(16).padStart(2, "0")).join(":");
    ns.ip("neigh", "add", target, "lladdr", mac, "dev", veth.b.name, "nud", "permanent");
    return {
      ns,
      veth,
      target,
      [Symbol.dispose]() {
        veth[Symbol.dispose]();
        ns[Symbol.dispose]();
      },
    };
  } catch (err) {
    ns[Symbol.dispose]();
    throw err;
  }
}

interface FloodRun {
  sent: number;
  seconds: number;
}

/**
 * Floods from inside the namespace with Deno's built-in UDP; returns what it sent and how long it
 * took.
 */
async function denoFlood(ns: NetNs, target: string): Promise<FloodRun> {
  const argv = denoArgv(new URL(import.meta.url), [
    "flood",
    target,
    `${PORT}`,
    `${DENO_FLOOD}`,
    `${SIZE}`,
  ]);
  await using peer = await spawnPeer(ns.wrap(pinned(argv, FLOOD_CPU)));
  const r = await peer.result();
  return { sent: r.n!, seconds: r.elapsed_s! };
}

/** The same with the C reference (sockbench udp flood), inside the namespace. */
async function cFlood(ns: NetNs, target: string): Promise<FloodRun> {
  const dir = await buildC();
  const argv = [
    `${dir}sockbench`,
    "udp",
    "flood",
    `${target}:${PORT}`,
    "-n",
    `${C_FLOOD}`,
    "-s",
    `${SIZE}`,
  ];
  await using peer = await spawnPeer(ns.wrap(pinned(argv, FLOOD_CPU)));
  const r = await peer.result();
  return { sent: r.n!, seconds: r.elapsed_s! };
}

interface Capture {
  captured: number;
  dropped: number;
  sent: number;
  seconds: number;
}

/** Our capture: openPacket with the port filter, counting frames until the flood is over. */
async function captureOurs(
  net: ReturnType<typeof makeNetwork>,
  start: () => Promise<FloodRun>,
  immediate: boolean,
): Promise<Capture> {
  const unpin = pinSelf(CAPTURE_CPU);
  const sock = openPacket({
    interface: net.veth.a.name,
    filter: compileFilter({ ipProtocol: "udp", dstPort: PORT }, { link: "ethernet" }),
    receiveBufferSize: BUFFER_SIZE,
    immediate,
  });
  let captured = 0;
  const loop = (async () => {
    for (;;) {
      const m = await sock.receive({ maxSize: 2048 });
      if (m === null) return;
      captured++;
    }
  })();
  const run = await start();
  let dropped = 0;
  // Quiet for QUIET_MS after the flood: everything that will arrive has.
  for (let before = -1; before !== captured;) {
    before = captured;
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
  }
  dropped = sock.statistics().dropped;
  sock.close();
  await loop;
  unpin();
  return { captured, dropped, sent: run.sent, seconds: run.seconds };
}

/** tcpdump's capture of the same flood, with the same filter. */
async function captureTcpdump(
  net: ReturnType<typeof makeNetwork>,
  start: () => Promise<FloodRun>,
): Promise<Capture> {
  const child = new Deno.Command("taskset", {
    args: [
      "-c",
      CAPTURE_CPU,
      "tcpdump",
      "-i",
      net.veth.a.name,
      "-p",
      "-n",
      "-w",
      "/dev/null",
      `udp dst port ${PORT}`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("listening on")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`tcpdump exited before listening: ${text.trim()}`);
    text += value;
  }
  const run = await start();
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
  child.kill("SIGINT");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  await child.status;
  const count = (what: string): number => {
    const m = new RegExp(`(\\d+) packets? ${what}`).exec(text);
    if (!m) throw new Error(`tcpdump did not report "${what}": ${text.trim()}`);
    return Number(m[1]);
  };
  return {
    captured: count("captured"),
    dropped: count("dropped by kernel"),
    sent: run.sent,
    seconds: run.seconds,
  };
}

function ensureTcpdump(): void {
  const has = () =>
    new Deno.Command("sh", { args: ["-c", "command -v tcpdump"], stdout: "null" }).outputSync()
      .success;
  if (has()) return;
  console.error("installing tcpdump with apt-get");
  const install = (args: string[]) =>
    new Deno.Command("apt-get", {
      args,
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdout: "null",
    }).outputSync().success;
  if (!install(["install", "-y", "-qq", "tcpdump"])) {
    install(["update", "-qq"]);
    install(["install", "-y", "-qq", "tcpdump"]);
  }
  if (!has()) throw new Error("tcpdump is missing and apt-get could not install it");
}

const IMMEDIATE = `${OURS} immediate`;

type Capturer = (
  net: ReturnType<typeof makeNetwork>,
  start: () => Promise<FloodRun>,
) => Promise<Capture>;

/** Medians over repetitions, the capturers taking turns on the same kind of flood. */
async function benchCapture(reps: number): Promise<void> {
  ensureTcpdump();
  using net = makeNetwork();
  for (const who of ["deno", "c"] as const) {
    const start = () => who === "deno" ? denoFlood(net.ns, net.target) : cFlood(net.ns, net.target);
    const capturers: Record<string, Capturer> = {
      [TCPDUMP]: captureTcpdump,
      [OURS]: (n, s) => captureOurs(n, s, false),
    };
    // Per-frame delivery, at the rate Deno sends: the goal is no drops there too.
    if (who === "deno") capturers[IMMEDIATE] = (n, s) => captureOurs(n, s, true);
    const runs: Record<string, Capture[]> = {};
    for (let i = 0; i < reps; i++) {
      for (const [name, capture] of Object.entries(capturers)) {
        const c = await capture(net, start);
        (runs[name] ??= []).push(c);
        console.error(
          `${who} flood, ${name}: ${c.captured} of ${c.sent} captured, ${c.dropped} dropped, ` +
            `flood ${Math.round(c.sent / c.seconds)}/s`,
        );
      }
    }
    const all = Object.values(runs).flat();
    const floodRate = median(all.map((c) => c.sent / c.seconds));
    const total = (name: string, f: (c: Capture) => number) =>
      runs[name].reduce((a, c) => a + f(c), 0);
    const values = (f: (name: string) => number) =>
      Object.fromEntries(Object.keys(runs).map((name) => [name, f(name)]));
    const flood = who === "deno" ? "Deno" : "C";
    emit({
      group: "raw",
      case: `AF_PACKET capture, UDP ${SIZE} B over veth, ${flood} flood`,
      unit: "packets/s",
      better: "higher",
      values: values((name) => median(runs[name].map((c) => c.captured / c.seconds))),
      note: `flood ${Math.round(floodRate).toLocaleString("en-US")}/s, median of ${reps}; ` +
        "captured of sent: " +
        Object.keys(runs).map((name) =>
          `${name} ${total(name, (c) => c.captured)}/${total(name, (c) => c.sent)}`
        ).join(", "),
    });
    emit({
      group: "raw",
      case: `AF_PACKET kernel drops, ${flood} flood`,
      unit: "packets",
      better: "lower",
      values: values((name) => total(name, (c) => c.dropped)),
      note: `total over ${reps} runs`,
    });
  }
}

/**
 * Our echo round trips to 127.0.0.1, µs, with a filter that passes only replies (the C one's
 * ICMP_FILTER).
 */
async function oursIcmp(n: number, warmup: number): Promise<number[]> {
  using sock = openRaw({ family: "ipv4", protocol: "icmp" });
  sock.setFilter(compileFilter({ ipProtocol: "icmp", icmpType: 0 }, { link: "ip" }));
  // Connected, as the C client is: write() needs no destination check per packet.
  await sock.connect({ transport: "ip", hostname: "127.0.0.1" });
  const id = (Deno.pid * 7) & 0xffff;
  const data = record(56);
  const rtts: number[] = [];
  for (let i = -warmup; i < n; i++) {
    const sequence = (i + warmup) & 0xffff;
    const request = encodeEcho({ id, sequence, data });
    const t0 = performance.now();
    await sock.write(request);
    for (;;) {
      const m = await sock.receive({ maxSize: 256 });
      if (m === null) throw new Error("the socket closed");
      const echo = decodeEcho(decodeIPv4Header(m.data).payload);
      if (echo?.id === id && echo.sequence === sequence) break;
    }
    if (i >= 0) rtts.push((performance.now() - t0) * 1000);
  }
  return rtts;
}

async function benchIcmp(): Promise<void> {
  const n = 5000, warmup = 500;
  await using c = await spawnC(["icmp", "client", "127.0.0.1", "-n", `${n}`, "-w", `${warmup}`], {
    pin: [0],
  });
  const cResult = await c.result();
  const unpin = pinSelf("0");
  let ours: number[];
  try {
    ours = await oursIcmp(n, warmup);
  } finally {
    unpin();
  }
  emit({
    group: "raw",
    case: "ICMP echo to 127.0.0.1, 56 B, pinned",
    unit: "µs",
    better: "lower",
    values: { [OURS]: median(ours), [C]: cResult.rtt_us_median ?? null },
    note: `median of ${n}`,
  });
}

async function main(): Promise<void> {
  const repsArg = Deno.args.find((a) => a.startsWith("--reps="));
  const reps = repsArg ? Number(repsArg.slice("--reps=".length)) : 3;
  if (!Deno.args.includes("--capture-only")) await benchIcmp();
  await benchCapture(reps);
}

if (import.meta.main) {
  if (Deno.args[0] === "flood") await flood(Deno.args.slice(1));
  else await main();
}
