// The benchmark machinery: the C references compile and interoperate, the
// peer protocol works both ways, and the runner reports rows and failures.
// Tiny counts only: these check that the bench works, not how fast it is.

import assert from "node:assert/strict";
import {
  BENCH_DIR,
  buildC,
  BUILTIN,
  C,
  emit,
  formatNumber,
  median,
  OURS,
  pinned,
  pinSelf,
  type Row,
  spawnC,
  spawnDeno,
  spawnPeer,
} from "../bench/_harness.ts";
import { benchFiles, type FileOutcome, formatTable, ratio, runBenchFile } from "../bench/run.ts";
import { installNodePackage, nodeArgv, type NodeInstall } from "../bench/_node.ts";
import { lineChart } from "../bench/_svg.ts";
import { scaleChart } from "../bench/scale_bench.ts";
import { deadline, needs, tempDir } from "./_helpers.ts";

const LOSSLESS = ["seqpacket", "unixgram", "unix", "tcp"] as const;
const ALL_KINDS = [...LOSSLESS, "udp"] as const;

/** The ADDR a server or sink binds, and the one a client or flood then uses. */
function addresses(kind: string, dir: string): { bind: string; reach(ready: string): string } {
  if (kind === "udp" || kind === "tcp") return { bind: "0", reach: (port) => port };
  const path = `${dir}/${kind}.sock`;
  return { bind: path, reach: () => path };
}

Deno.test("buildC() compiles bench/c into an executable and rebuilds a stale binary", async () => {
  const dir = await buildC();
  const bin = dir + "sockbench";
  const info = Deno.statSync(bin);
  assert.ok(info.isFile && (info.mode! & 0o111) !== 0, "sockbench is executable");
  assert.equal(await buildC(), dir);
  assert.equal(Deno.statSync(bin).mtime!.getTime(), info.mtime!.getTime(), "fresh: not rebuilt");

  const old = new Date(Deno.statSync(BENCH_DIR + "c/sockbench.c").mtime!.getTime() - 60_000);
  Deno.utimeSync(bin, old, old);
  await buildC();
  assert.ok(Deno.statSync(bin).mtime!.getTime() > old.getTime(), "stale: rebuilt");
});

Deno.test("buildC() says how to install gcc when it is missing", async () => {
  const bin = (await buildC()) + "sockbench";
  const old = new Date(Deno.statSync(BENCH_DIR + "c/sockbench.c").mtime!.getTime() - 60_000);
  Deno.utimeSync(bin, old, old);
  const harness = new URL("../bench/_harness.ts", import.meta.url).href;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", `import { buildC } from "${harness}"; await buildC();`],
    env: { PATH: "/nonexistent" },
    stdin: "null",
  }).output();
  assert.equal(out.code, 1);
  assert.match(
    new TextDecoder().decode(out.stderr),
    /buildC: gcc not found on PATH; install it \(apt-get install gcc libc6-dev\)/,
  );
  await buildC();
  assert.ok(Deno.statSync(bin).mtime!.getTime() > old.getTime(), "rebuilt once gcc is back");
});

for (const kind of ALL_KINDS) {
  Deno.test(`sockbench ${kind}: C client and C echo server agree on the round-trip count`, async () => {
    using tmp = tempDir();
    const addr = addresses(kind, tmp.path);
    await using server = await spawnC([
      kind,
      "server",
      addr.bind,
      "-s",
      "100", // a stream server counts records of this size
      "-n",
      "320", // warm-up + timed: a datagram server then need not wait for quiet
      "-t",
      "20",
    ]);
    if (kind === "udp" || kind === "tcp") assert.match(server.ready, /^[1-9]\d*$/);
    else assert.equal(server.ready, "");
    await using client = await spawnC([
      kind,
      "client",
      addr.reach(server.ready),
      "-n",
      "300",
      "-w",
      "20",
      "-s",
      "100",
      "-t",
      "20",
    ]);
    const r = await client.result(20_000);
    assert.equal(r.role, "client");
    assert.equal(r.kind, kind);
    assert.equal(r.n, 300);
    assert.equal(r.size, 100);
    assert.ok(r.rtt_us_min! > 0);
    assert.ok(r.rtt_us_min! <= r.rtt_us_median! && r.rtt_us_median! <= r.rtt_us_p99!);
    assert.ok(r.rtt_us_p99! <= r.rtt_us_max!);
    const s = await server.result(20_000);
    assert.equal(s.n, 320, "warm-up and timed round trips were all echoed");
    assert.equal(s.bytes, 320 * 100);
  });

  Deno.test(`sockbench ${kind}: C sink counts what the C flood sent`, async () => {
    using tmp = tempDir();
    const addr = addresses(kind, tmp.path);
    const n = 5000;
    await using sink = await spawnC([kind, "sink", addr.bind, "-n", String(n), "-t", "20"]);
    await using flood = await spawnC([kind, "flood", addr.reach(sink.ready), "-n", String(n)]);
    const f = await flood.result(20_000);
    assert.equal(f.n, n);
    assert.ok(f.msgs_per_s! > 0);
    const s = await sink.result(20_000);
    assert.equal(s.role, "sink");
    if (kind === "udp") {
      // Loopback UDP may drop when the sink falls behind; it must say how many.
      assert.ok(s.n! > 0 && s.n! <= n);
      assert.equal(s.lost, n - s.n!);
    } else {
      assert.equal(s.n, n);
      assert.equal(s.lost, 0);
      assert.equal(s.bytes, n * 64);
    }
    assert.ok(s.msgs_per_s! > 0 && s.first_to_last_s! > 0);
  });
}

Deno.test("sockbench seqpacket sink stops at end of stream when the flood sends fewer", async () => {
  using tmp = tempDir();
  const path = `${tmp.path}/eof.sock`;
  await using sink = await spawnC(["seqpacket", "sink", path, "-n", "1000", "-t", "20"]);
  await using flood = await spawnC(["seqpacket", "flood", path, "-n", "10"]);
  await flood.result(20_000);
  const s = await sink.result(20_000);
  assert.equal(s.n, 10);
  assert.equal(s.eof, true);
  assert.equal(s.lost, 990);
});

Deno.test("sockbench udp sink stops after a quiet period, not at its timeout", async () => {
  await using sink = await spawnC(["udp", "sink", "0", "-q", "300", "-t", "20"]);
  await using flood = await spawnC(["udp", "flood", sink.ready, "-n", "50"]);
  await flood.result(20_000);
  const s = await deadline(sink.result(20_000), 10_000, "the sink's result");
  assert.ok(s.n! > 0 && s.n! <= 50);
  assert.equal(s.eof, false);
});

Deno.test(
  "sockbench icmp client times echo requests to 127.0.0.1",
  needs("CAP_NET_RAW"),
  async () => {
    await using ping = await spawnC(["icmp", "client", "127.0.0.1", "-n", "200", "-t", "20"]);
    const r = await ping.result(20_000);
    assert.equal(r.kind, "icmp");
    assert.equal(r.n, 200);
    assert.equal(r.size, 56);
    assert.ok(r.rtt_us_median! > 0);
  },
);

Deno.test("spawnC() rejects with the connect error when no server listens", async () => {
  using tmp = tempDir();
  const path = `${tmp.path}/nobody.sock`;
  await assert.rejects(
    spawnC(["seqpacket", "client", path, "-n", "1"]),
    (err: Error) => {
      assert.match(err.message, /^sockbench seqpacket client: exited with status 1 before/);
      assert.ok(err.message.includes(`connect "${path}": no such file or directory`));
      return true;
    },
  );
});

Deno.test("spawnC() rejects a usage error with sockbench's reason", async () => {
  await assert.rejects(
    spawnC(["sctp", "server", "0"]),
    /status 64 before printing ready.*unknown kind/,
  );
});

Deno.test("Peer.result() rejects when the C role hits its timeout", async () => {
  using tmp = tempDir();
  await using server = await spawnC(["unix", "server", `${tmp.path}/idle.sock`, "-t", "0.2"]);
  await assert.rejects(server.result(10_000), /sockbench unix server: timed out after 0\.2 s/);
});

Deno.test("Peer.result() kills a peer that overruns its time and says so", async () => {
  await using peer = await spawnPeer(["sh", "-c", "echo ready; exec sleep 30"]);
  await assert.rejects(
    peer.result(100),
    /sh -c echo ready; exec sleep 30: no result within 100 ms/,
  );
});

Deno.test("spawnPeer() rejects a command that never prints ready", async () => {
  await assert.rejects(
    spawnPeer(["sh", "-c", "echo starting; exec sleep 30"], { readyTimeoutMs: 200 }),
    /printed no ready line within 200 ms/,
  );
});

Deno.test("spawnPeer() pins with taskset and passes the ready detail on", async () => {
  assert.deepEqual(pinned(["echo", "hi"], "0"), ["taskset", "-c", "0", "echo", "hi"]);
  const script = 'echo "ready 4242"; ' +
    'echo "{\\"cpus\\":\\"$(sed -n "s/^Cpus_allowed_list:\\t//p" /proc/self/status)\\"}"';
  await using peer = await spawnPeer(["sh", "-c", script], { pin: [0] });
  assert.equal(peer.ready, "4242");
  assert.deepEqual(await peer.result(10_000), { cpus: "0" });
});

Deno.test("pinSelf() pins every thread of this process and undoes it", async () => {
  // One line per distinct CPU list over all of this process's threads.
  const affinity = async (): Promise<string> => {
    const out = await new Deno.Command("sh", {
      args: ["-c", `sed -n "s/^Cpus_allowed_list:\t//p" /proc/${Deno.pid}/task/*/status | sort -u`],
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  };
  const before = await affinity();
  const undo = pinSelf("0");
  try {
    assert.equal(await affinity(), "0");
  } finally {
    undo();
  }
  assert.equal(await affinity(), before);
  assert.throws(() => pinSelf("9999"), /taskset -a -p -c 9999/);
});

Deno.test("spawnDeno() runs a Deno peer that speaks the ready/result protocol", async () => {
  using tmp = tempDir();
  const script = `${tmp.path}/peer.ts`;
  const harness = new URL("../bench/_harness.ts", import.meta.url).href;
  Deno.writeTextFileSync(
    script,
    `import { peerReady, peerResult } from "${harness}";\n` +
      `peerReady(Deno.args[0]);\npeerResult({ role: "echo", n: Deno.args.length });\n`,
  );
  await using peer = await spawnDeno(script, ["7", "x"]);
  assert.equal(peer.ready, "7");
  assert.deepEqual(await peer.result(20_000), { role: "echo", n: 2 });
});

Deno.test("median() takes the middle value, or the mean of the middle two", () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
  const xs = [3, 1, 2];
  median(xs);
  assert.deepEqual(xs, [3, 1, 2], "input left unsorted");
  assert.throws(() => median([]), RangeError);
});

const SAMPLE: Row = {
  group: "seqpacket",
  case: "ping-pong 64 B, pinned",
  unit: "µs",
  better: "lower",
  values: { [OURS]: 10, [BUILTIN]: 15, [C]: 8 },
};

Deno.test("emit() prints one JSON row with --json and a readable line without", () => {
  const printed: string[] = [];
  const log = console.log;
  console.log = (line: string) => printed.push(line);
  try {
    emit(SAMPLE, true);
    emit({ ...SAMPLE, values: { [OURS]: 123456.7, [C]: null }, note: "3 lost" }, false);
  } finally {
    console.log = log;
  }
  assert.deepEqual(JSON.parse(printed[0]), SAMPLE);
  assert.equal(
    printed[1],
    "seqpacket | ping-pong 64 B, pinned (3 lost) | µs, lower is better | @bsd/sockets 123,457, C —",
  );
  assert.throws(() => emit({ ...SAMPLE, values: { [OURS]: NaN } }, true), TypeError);
  assert.throws(() => emit({ ...SAMPLE, better: "more" } as unknown as Row, true), TypeError);
});

Deno.test("ratio() is above 1 when ours is better, for either direction", () => {
  assert.equal(ratio(SAMPLE, BUILTIN), 1.5);
  assert.equal(ratio(SAMPLE, C), 0.8);
  const rate: Row = { ...SAMPLE, better: "higher", values: { [OURS]: 600, [C]: 1200 } };
  assert.equal(ratio(rate, C), 0.5);
  assert.equal(ratio(rate, BUILTIN), null, "a missing contender gives no ratio");
  assert.equal(ratio({ ...SAMPLE, values: { [OURS]: null, [C]: 8 } }, C), null);
});

Deno.test("formatTable() lists every row with ratios and marks a failed file", () => {
  const outcomes: FileOutcome[] = [
    { file: "engine_bench.ts", seconds: 1, rows: [SAMPLE] },
    {
      file: "raw_bench.ts",
      seconds: 2,
      rows: [{ ...SAMPLE, group: "raw", values: { [OURS]: 7.7, Python: 9 } }],
      failure: "exit status 1: boom",
    },
  ];
  const info = { date: "D", deno: "deno X", cpu: "CPU Y", cores: 2, kernel: "linux Z" };
  const md = formatTable(outcomes, info);
  const lines = md.split("\n");
  assert.ok(lines.includes("D · deno X · CPU Y, 2 cores · linux Z"));
  const header = lines.find((l) => l.startsWith("| group"))!;
  assert.equal(
    header,
    "| group | case | unit | @bsd/sockets | Deno built-in | C | Python | @bsd/sockets vs C | @bsd/sockets vs built-in |",
  );
  assert.ok(
    lines.includes(
      "| seqpacket | ping-pong 64 B, pinned | µs ↓ | 10 | 15 | 8 | — | 0.80× | 1.50× |",
    ),
  );
  assert.ok(lines.includes("| raw | ping-pong 64 B, pinned | µs ↓ | 7.7 | — | — | 9 | — | — |"));
  assert.ok(
    lines.includes("| raw_bench.ts | **FAILED**: exit status 1: boom |  |  |  |  |  |  |  |"),
  );
  assert.ok(!md.includes("No bench files matched"));
  assert.ok(formatTable([], info).includes("No bench files matched."));
});

Deno.test("formatNumber() keeps three significant digits and groups thousands", () => {
  assert.equal(formatNumber(8.234), "8.23");
  assert.equal(formatNumber(0.5), "0.5");
  assert.equal(formatNumber(99.96), "100");
  assert.equal(formatNumber(1052345.6), "1,052,346");
});

Deno.test("runBenchFile() collects rows and reports crashes, silence and overruns", async () => {
  using tmp = tempDir();
  const harness = new URL("../bench/_harness.ts", import.meta.url).href;
  const write = (name: string, body: string): string => {
    Deno.writeTextFileSync(`${tmp.path}/${name}`, `import { emit } from "${harness}";\n${body}\n`);
    return `${tmp.path}/${name}`;
  };
  const good = write("a_bench.ts", `console.log("chatter"); emit(${JSON.stringify(SAMPLE)});`);
  const crash = write(
    "b_bench.ts",
    `emit(${JSON.stringify(SAMPLE)}); throw new Error("socket gone");`,
  );
  const silent = write("c_bench.ts", "void emit;");
  const slow = write("d_bench.ts", "void emit; await new Promise((r) => setTimeout(r, 30_000));");
  write("helper.ts", "void emit;");
  assert.deepEqual(benchFiles(tmp.path), ["a_bench.ts", "b_bench.ts", "c_bench.ts", "d_bench.ts"]);
  assert.deepEqual(benchFiles(tmp.path, ["c_", "d_"]), ["c_bench.ts", "d_bench.ts"]);

  const a = await runBenchFile(good, 30);
  assert.equal(a.failure, undefined);
  assert.deepEqual(a.rows, [SAMPLE]);
  const b = await runBenchFile(crash, 30);
  assert.deepEqual(b.rows, [SAMPLE], "rows printed before the crash are kept");
  assert.match(b.failure!, /^exit status 1: .*socket gone/);
  const c = await runBenchFile(silent, 30);
  assert.equal(c.failure, "printed no rows");
  const d = await runBenchFile(slow, 1);
  assert.equal(d.failure, "killed after the 1 s time limit");
  assert.ok(d.seconds < 10);

  // A file that draws a chart learns `--out`'s directory (scale_bench.ts writes scale.svg there).
  const chart = write(
    "e_bench.ts",
    `emit({ ...${JSON.stringify(SAMPLE)}, case: Deno.env.get("BSD_BENCH_OUT") ?? "unset" });`,
  );
  const e = await runBenchFile(chart, 30, `${tmp.path}/charts`);
  assert.equal(e.failure, undefined);
  assert.equal(e.rows[0]?.case, `${tmp.path}/charts/`);
});

Deno.test("bench/run.ts writes results.md and results.json even with no bench files", async () => {
  using tmp = tempDir();
  const out = `${tmp.path}/out`;
  const run = new URL("../bench/run.ts", import.meta.url).pathname;
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", run, "no-such-bench", `--out=${out}`],
    stdin: "null",
  }).output();
  assert.equal(res.code, 0, new TextDecoder().decode(res.stderr));
  const md = Deno.readTextFileSync(`${out}/results.md`);
  assert.equal(new TextDecoder().decode(res.stdout), md + "\n");
  assert.ok(md.includes("No bench files matched."));
  const json = JSON.parse(Deno.readTextFileSync(`${out}/results.json`));
  assert.deepEqual(json.outcomes, []);
  assert.equal(json.cores, navigator.hardwareConcurrency);

  const bad = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", run, "--bogus"],
    stdin: "null",
  }).output();
  assert.equal(bad.code, 1);
  assert.match(new TextDecoder().decode(bad.stderr), /unknown option "--bogus"/);
});

// ---------------------------------------------------------------------------
// Node contenders (bench/_node.ts, bench/node/), the SVG writer (bench/_svg.ts)
// and the scale group (bench/scale_bench.ts, bench/c/epollbench.c).

Deno.test("installNodePackage() says why when node or npm is missing", async () => {
  const noNode = await installNodePackage("node-unix-socket", { node: "/nonexistent/node" });
  assert.deepEqual(noNode, {
    skipped: "node is not available (/nonexistent/node not found on PATH)",
  });
  const noNpm = await installNodePackage("node-unix-socket", { npm: "/nonexistent/npm" });
  if (!("skipped" in noNpm)) noNpm.remove();
  // Without node the first check already fails; with it, the npm check does.
  assert.ok("skipped" in noNpm);
  assert.match(noNpm.skipped, /^(node|npm) is not available \(.*not found on PATH\)$/);
});

Deno.test(
  "installNodePackage() reports a failed install and leaves no directory behind",
  needs("node", "npm"),
  async () => {
    const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
    const before = new Set([...Deno.readDirSync(tmp)].map((e) => e.name));
    // --offline: npm answers from its cache, so the test sends nothing to the registry.
    const got = await installNodePackage("bsd-sockets-no-such-package", { offline: true });
    assert.ok("skipped" in got);
    assert.match(got.skipped, /^npm install bsd-sockets-no-such-package failed \(exit status \d+/);
    const left = [...Deno.readDirSync(tmp)].map((e) => e.name)
      .filter((n) => n.startsWith("bsd-bench-node-") && !before.has(n));
    assert.deepEqual(left, []);
  },
);

// node-unix-socket from npm's cache, when an earlier bench run put it there;
// the test below is ignored otherwise (never installed from the network here).
const cachedNode = needs("node", "npm").ignore
  ? null
  : await installNodePackage("node-unix-socket", { offline: true });
if (cachedNode && "skipped" in cachedNode) {
  console.error(`skipping the Node peer test: ${cachedNode.skipped}`);
}
globalThis.addEventListener("unload", () => {
  if (cachedNode && !("skipped" in cachedNode)) cachedNode.remove();
});

Deno.test(
  "the Node peer runs round trips against the C echo server and counts a C flood",
  { ignore: cachedNode === null || "skipped" in cachedNode },
  async () => {
    const install = cachedNode as NodeInstall;
    const peer = BENCH_DIR + "node/seqpacket_peer.mjs";
    using tmp = tempDir();
    const path = `${tmp.path}/echo.sock`;
    await using server = await spawnC(["seqpacket", "server", path, "-t", "20"]);
    await using client = await spawnPeer(nodeArgv(install, peer, ["client", path, "200", "100"]));
    const trips = await client.result(20_000);
    assert.equal(trips.n, 200);
    assert.ok(trips.rtt_us_median! > 0);
    assert.equal((await server.result(20_000)).n, 220, "20 warm-up and 200 timed round trips");

    const sinkPath = `${tmp.path}/sink.sock`;
    await using sink = await spawnPeer(nodeArgv(install, peer, ["sink", sinkPath, "500"]));
    await using flood = await spawnC(["seqpacket", "flood", sinkPath, "-n", "500", "-s", "64"]);
    await flood.result(20_000);
    const got = await sink.result(20_000);
    assert.equal(got.n, 500);
    assert.ok(got.msgs_per_s! > 0);
  },
);

/** Checks that every tag of `xml` is closed in order; returns the element names seen. */
function wellFormed(xml: string): string[] {
  assert.ok(xml.startsWith(`<?xml version="1.0" encoding="UTF-8"?>\n<svg `));
  const body = xml.slice(xml.indexOf("?>") + 2);
  const open: string[] = [];
  const seen: string[] = [];
  const tag = /<(\/?)([a-z]+)((?:\s+[a-zA-Z][\w:-]*="[^"<>]*")*)\s*(\/?)>/g;
  for (const m of body.matchAll(tag)) {
    const [, closing, name, , selfClosing] = m;
    if (closing) assert.equal(open.pop(), name, `</${name}> closes what was opened`);
    else {
      seen.push(name);
      if (!selfClosing) open.push(name);
    }
  }
  assert.deepEqual(open, [], "every element closed");
  // What is left once the tags are gone is text: no markup or bare & in it.
  assert.doesNotMatch(body.replace(tag, ""), /[<>]|&(?!(amp|lt|gt|quot|apos);)/, "text escaped");
  return seen;
}

Deno.test("lineChart() writes a well-formed SVG with one line per series through its points", () => {
  const svg = lineChart({
    title: "Rate & <memory>",
    xLabel: "sockets",
    panels: [
      {
        yLabel: "round trips/s",
        series: [
          { name: "ours", points: [[1000, 30], [1, 10], [10, NaN], [100, 20]] },
          { name: 'C "epoll"', points: [[1, 40], [10_000, 50]], dashed: true },
        ],
      },
      { yLabel: "B/socket", yLog: true, series: [{ name: "mem", points: [[10, 0], [10, 500]] }] },
    ],
  });
  const elements = wellFormed(svg);
  assert.equal(elements.filter((e) => e === "polyline").length, 3);
  assert.equal(elements.filter((e) => e === "circle").length, 3 + 2 + 1, "a dot per drawn point");
  assert.ok(svg.includes("<title>Rate &amp; &lt;memory&gt;</title>"));
  assert.ok(svg.includes('data-name="C &quot;epoll&quot;"'));
  const polylines = [...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) =>
    m[1].split(" ").map((p) => p.split(",").map(Number))
  );
  // NaN left out, points in x order; on the log axis 1, 10, 100, 1,000 are evenly spaced.
  const ours = polylines[0];
  assert.equal(ours.length, 3);
  const [x1, x100, x1000] = ours.map(([x]) => x);
  assert.ok(Math.abs((x1000 - x100) - (x100 - x1) / 2) < 0.2, `log x: ${ours}`);
  assert.ok(ours[0][1] > ours[1][1] && ours[1][1] > ours[2][1], "higher values drawn higher");
  assert.equal(polylines[2].length, 1, "a value of 0 is left out of a log axis");
  for (const label of ["1", "10", "100", "1k", "10k"]) {
    assert.ok(svg.includes(`>${label}</text>`), `x tick ${label}`);
  }
  assert.throws(
    () => lineChart({ title: "t", xLabel: "x", panels: [{ yLabel: "y", series: [] }] }),
    RangeError,
  );
});

Deno.test("scaleChart() draws the rate and the memory curves, ours and C", () => {
  const svg = scaleChart(
    [{ sockets: 1, ours: 20_000, c: 40_000 }, { sockets: 1000, ours: 30_000, c: 35_000 }],
    [{ sockets: 2, ours: 5000, c: 10 }, { sockets: 10_000, ours: 4000, c: 4 }],
  );
  const elements = wellFormed(svg);
  assert.equal(elements.filter((e) => e === "polyline").length, 4);
  assert.equal(elements.filter((e) => e === "circle").length, 8);
  assert.ok(svg.includes("aggregate round trips/s") && svg.includes("C epoll client"));
});

Deno.test("epollbench: the C epoll client and server agree; idle reports its threads", async () => {
  using tmp = tempDir();
  const dir = await buildC();
  const path = `${tmp.path}/epoll.sock`;
  await using server = await spawnPeer([dir + "epollbench", "server", path, "-k", "3", "-t", "20"]);
  await using client = await spawnPeer([
    dir + "epollbench",
    "client",
    path,
    ...["-k", "3", "-w", "20", "-d", "0.1"],
  ]);
  const got = await client.result(20_000);
  assert.equal(got.k, 3);
  assert.ok(got.n! > 0 && got.msgs_per_s! > 0);
  const served = await server.result(20_000);
  assert.ok(served.n! >= got.n!, `${served.n} echoed, ${got.n} counted`);

  await using idle = await spawnPeer([dir + "epollbench", "idle", "20", "-d", "0.05"]);
  const quiet = await idle.result(20_000);
  assert.equal(quiet.n, 20);
  assert.equal(quiet.threads_before, 1);
  assert.equal(quiet.threads_after, 1);
  assert.equal(quiet.wakeups, 0, "no socket became ready");
  await assert.rejects(
    spawnPeer([dir + "epollbench", "client", `${tmp.path}/none.sock`, "-k", "1"]),
    /connect: No such file or directory/,
  );
});

Deno.test("scale_bench peers: idle pairs settle with null on close; active connections count", async () => {
  const script = BENCH_DIR + "scale_bench.ts";
  await using idle = await spawnPeer([
    Deno.execPath(),
    ...["run", "--quiet", "--allow-all", "--v8-flags=--expose-gc", script],
    ...["peer", "idle", "3", "0.05"],
  ]);
  const r = await idle.result(30_000);
  assert.equal(r.n, 3);
  assert.equal(r.settled_null, 6, "every pending receive settled with null");
  assert.ok((r.threads_after as number) >= (r.threads_before as number));
  assert.ok((r.rss_after_kb as number) > 0 && (r.cpu_us as number) >= 0);

  using tmp = tempDir();
  const path = `${tmp.path}/echo.sock`;
  const dir = await buildC();
  await using server = await spawnPeer([dir + "epollbench", "server", path, "-k", "4", "-t", "20"]);
  await using client = await spawnDeno(script, ["peer", "active", path, "4", "20", "0.2"]);
  const got = await client.result(30_000);
  assert.equal(got.k, 4);
  assert.ok(got.n! > 0, "round trips were counted");
  const served = await server.result(20_000);
  assert.ok(served.n! >= got.n!, `${served.n} echoed, ${got.n} counted`);
});
