/**
 * Netlink against `ip`: a dump of every route of a namespace holding 10,000
 * routes (added by this bench with `ip -batch`), decoded into the `ip -j`
 * shape by `listRoutes()` in a Deno process inside the namespace, against
 * `ip -j route` doing the same, in the same run, the two alternating.
 *
 * `ip` is timed as a user of it pays: one `ip -n NS -j route show table
 * all` process per dump, wall clock from spawn to exit with its output
 * read. Ours is timed inside a long-lived Deno process: one `listRoutes({
 * table: "all" })` call (a link dump for the names, then the route dump).
 *
 * Needs root (CAP_NET_ADMIN). `--json` prints rows for `bench/run.ts`.
 *
 * ```sh
 * deno run -A bench/netlink_bench.ts [--json] [--reps=N]
 * ```
 *
 * Run with `dump REPS` it is instead the Deno peer: it dumps REPS times and
 * prints the durations.
 *
 * @module
 */

import { listRoutes } from "../netlink.ts";
import { NetNs } from "../tests/_netns.ts";
import { denoArgv, emit, median, OURS, peerResult } from "./_harness.ts";

const ROUTES = 10_000;
const IP = "ip -j route";

async function dumpPeer(reps: number): Promise<void> {
  const ms: number[] = [];
  let count = 0;
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    count = (await listRoutes({ table: "all" })).length;
    ms.push(performance.now() - start);
  }
  peerResult({ role: "dump", n: count, ms } as never);
}

function setUp(): NetNs {
  const ns = new NetNs({ prefix: "nl-" });
  try {
    ns.ip("link", "add", "nlb0", "type", "veth", "peer", "name", "nlb1");
    ns.ip("addr", "add", "10.255.0.1/16", "dev", "nlb0");
    ns.ip("link", "set", "nlb0", "up");
    ns.ip("link", "set", "nlb1", "up");
    const batch = Array.from(
      { length: ROUTES },
      (_, i) => `route add 172.${16 + (i >> 8)}.${i & 255}.0/24 via 10.255.0.2 dev nlb0`,
    ).join("\n");
    const file = Deno.makeTempFileSync({ prefix: "nl-routes-" });
    try {
      Deno.writeTextFileSync(file, batch + "\n");
      ns.ip("-batch", file);
    } finally {
      Deno.removeSync(file);
    }
    return ns;
  } catch (err) {
    ns[Symbol.dispose]();
    throw err;
  }
}

async function timeIp(ns: NetNs): Promise<{ ms: number; count: number }> {
  const start = performance.now();
  const out = await new Deno.Command("ip", {
    args: ["-n", ns.name, "-j", "route", "show", "table", "all"],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const ms = performance.now() - start;
  if (!out.success) throw new Error("ip -j route failed");
  return { ms, count: JSON.parse(new TextDecoder().decode(out.stdout)).length };
}

async function oursIn(ns: NetNs, reps: number): Promise<{ ms: number[]; count: number }> {
  const [cmd, ...args] = ns.wrap(denoArgv(new URL(import.meta.url), ["dump", String(reps)]));
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "inherit" }).output();
  if (!out.success) throw new Error(`the dump peer exited with ${out.code}`);
  const last = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
  const result = JSON.parse(last) as { n: number; ms: number[] };
  return { ms: result.ms, count: result.n };
}

async function main(): Promise<void> {
  const repsArg = Deno.args.find((a) => a.startsWith("--reps="));
  const reps = repsArg ? Number(repsArg.slice(7)) : 5;
  using ns = setUp();
  const ours: number[] = [], theirs: number[] = [];
  let oursCount = 0, ipCount = 0;
  // Alternate: one Deno peer of one warm-up and one timed dump, one ip run, each rep.
  for (let i = 0; i < reps; i++) {
    const o = await oursIn(ns, 2);
    ours.push(o.ms[1]);
    oursCount = o.count;
    const t = await timeIp(ns);
    theirs.push(t.ms);
    ipCount = t.count;
  }
  if (oursCount !== ipCount) throw new Error(`ours listed ${oursCount} routes, ip ${ipCount}`);
  emit({
    group: "netlink",
    case: `route dump, ${ROUTES.toLocaleString("en-US")} routes, decoded to ip -j shape`,
    unit: "ms",
    better: "lower",
    values: { [OURS]: median(ours), [IP]: median(theirs) },
    note: `${ipCount} routes each; median of ${reps}; ip timed per process (spawn to exit), ` +
      "ours per call in a running process",
  });
}

if (Deno.args[0] === "dump") await dumpPeer(Number(Deno.args[1]));
else await main();
