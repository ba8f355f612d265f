// Every program in examples/ runs here as a user would run it: a separate
// Deno process with the permissions its header documents, against a local
// peer, stopping by itself. Each test checks what the program printed, not
// only its exit status. ping.ts and sniff.ts do their jobs in tests/raw_test.ts
// (they need raw sockets and a namespace); their failure paths are here.

import assert from "node:assert/strict";
import {
  deadline,
  denoRun,
  DROP_NET_RAW,
  hasCapNetRaw,
  killOnDispose,
  lines,
  needs,
  nextLine,
  prng,
  randomBytes,
  sha256,
  tempDir,
} from "./_helpers.ts";
import { NetNs } from "./_netns.ts";
import { listenDatagram } from "../datagram.ts";

const EXAMPLES = new URL("../examples/", import.meta.url).pathname;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** How long one example may run before its test fails. */
const RUN_MS = 30_000;

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `examples/<name>` to completion with exactly `flags`, `input` on its
 * stdin; kills it and fails after {@linkcode RUN_MS}.
 */
async function runExample(
  name: string,
  flags: string[],
  args: string[] = [],
  options: { input?: Uint8Array; prefix?: string[]; env?: Record<string, string> } = {},
): Promise<Ran> {
  const command = denoRun(`${EXAMPLES}${name}`, {
    flags,
    args,
    prefix: [
      ...(options.prefix ?? []),
      ...Object.entries(options.env ?? {}).flatMap(([k, v]) => ["env", `${k}=${v}`]),
    ],
    stdin: options.input === undefined ? "null" : "piped",
    stderr: "piped",
  });
  await using child = killOnDispose(command.spawn());
  if (options.input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(options.input);
    await writer.close();
  }
  const out = await deadline(child.output(), RUN_MS, `examples/${name} ${args.join(" ")}`);
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** Asserts a clean exit, showing what the program printed when it was not. */
function assertSuccess(ran: Ran): void {
  assert.equal(ran.code, 0, `exit ${ran.code}\nstdout:\n${ran.stdout}\nstderr:\n${ran.stderr}`);
}

// ---------------------------------------------------------------------------
// Coverage

Deno.test("examples/: every program is run by a test named after it", () => {
  const programs = [...Deno.readDirSync(EXAMPLES)]
    .filter((e) => e.isFile && e.name.endsWith(".ts"))
    .map((e) => e.name)
    .sort();
  assert.ok(programs.length >= 9, `only ${programs.length} examples found`);
  const testsDir = new URL(".", import.meta.url).pathname;
  let names = "";
  for (const e of Deno.readDirSync(testsDir)) {
    if (!e.name.endsWith("_test.ts")) continue;
    const text = Deno.readTextFileSync(`${testsDir}${e.name}`);
    // Test names only: a mention in a comment does not count.
    for (const m of text.matchAll(/(?:name:\s*|Deno\.test\(\s*)["`](examples\/[^"`]*)["`]/g)) {
      names += `${m[1]}\n`;
    }
  }
  const untested = programs.filter((p) => !names.includes(`examples/${p} `));
  assert.deepEqual(untested, [], "examples without a test");
});

// ---------------------------------------------------------------------------
// tour.ts

/**
 * The permission flags of `deno task demo`, read from deno.json so the test runs what users run.
 */
function demoFlags(): string[] {
  const config = JSON.parse(
    Deno.readTextFileSync(new URL("../deno.json", import.meta.url)),
  ) as { tasks: Record<string, string> };
  const task = config.tasks.demo;
  assert.match(task, /examples\/tour\.ts$/);
  return task.split(/\s+/).filter((word) => word.startsWith("--"));
}

/** Why the tour skips its ICMP row. */
const PING_SKIP = "needs CAP_NET_RAW, or a group inside net.ipv4.ping_group_range";

interface TourRow {
  socket: string;
  transport: string;
  sent: string;
  back: string;
  time: string;
}

/** Splits the tour's table into cells, checking that every line is aligned under the header. */
function parseTour(stdout: string): TourRow[] {
  const [header, rule, ...body] = stdout.trimEnd().split("\n");
  const titles = ["socket", "transport", "sent", "came back", "round trip"];
  const starts = titles.map((t) => header.indexOf(t));
  assert.ok(starts.every((s, i) => s >= 0 && (i === 0 || s > starts[i - 1])), header);
  assert.match(rule, /^-+( +-+){4}$/);
  return body.map((line) => {
    for (const s of starts.slice(1)) {
      assert.equal(line.slice(s - 2, s), "  ", `column at ${s} not aligned: ${line}`);
      assert.notEqual(line[s], " ", `column at ${s} not aligned: ${line}`);
    }
    const cells = starts.map((s, i) => line.slice(s, starts[i + 1]).trim());
    return {
      socket: cells[0],
      transport: cells[1],
      sent: cells[2],
      back: cells[3],
      time: cells[4],
    };
  });
}

/** Asserts the row worked: what came back is what was sent, and a time was measured. */
function assertEcho(row: TourRow | undefined, text: string): void {
  assert.ok(row, `no row for ${JSON.stringify(text)}`);
  assert.equal(row.sent, JSON.stringify(text));
  assert.equal(row.back, JSON.stringify(text));
  assert.match(row.time, /^\d+(\.\d+)? (µs|ms)$/);
}

function find(rows: TourRow[], socket: string, transport: RegExp): TourRow | undefined {
  return rows.find((r) => r.socket === socket && transport.test(r.transport));
}

/** What every run of the tour shows, whatever its ICMP row says. */
function assertTourRows(rows: TourRow[]): void {
  assert.equal(rows.length, 8, rows.map((r) => r.transport).join(", "));
  assertEcho(find(rows, "stream", /^tcp$/), "hello over TCP");
  assertEcho(find(rows, "stream", /^unix$/), "hello over a Unix stream");
  assertEcho(find(rows, "stream", /^unix, abstract name$/), "hello, nameless");
  assertEcho(find(rows, "datagram", /^udp, builtin backend$/), "hello over UDP");
  assertEcho(find(rows, "datagram", /^unixgram, ffi backend$/), "hello over a Unix datagram");
  const records = find(rows, "seqpacket", /^unix pair, 3 records$/);
  assert.equal(records?.sent, `"one" "" "three"`);
  assert.equal(records?.back, `"one" "" "three"`);
  const fd = find(rows, "seqpacket", /^unix pair, fd passing$/);
  assert.match(fd?.sent ?? "", /^"a file" \+ fd (\d+) of a deleted file$/);
  assert.match(fd?.back ?? "", /^fd (\d+), reads "only this fd reaches me"$/);
  const [sentFd, backFd] = [fd!.sent, fd!.back].map((c) => /fd (\d+)/.exec(c)![1]);
  assert.notEqual(sentFd, backFd, "the receiver got a descriptor of its own");
  for (const row of rows) {
    assert.doesNotMatch(row.back, /^failed|\(wrong\)$/, `${row.socket} ${row.transport}`);
  }
}

Deno.test("examples/tour.ts prints every socket type's exchange in one aligned table and exits 0", async () => {
  const ran = await runExample("tour.ts", demoFlags());
  assertSuccess(ran);
  const rows = parseTour(ran.stdout);
  assertTourRows(rows);
  // The ICMP row depends on privilege: the namespace tests below pin each case.
  const icmp = rows.find((r) => r.socket === "raw");
  assert.ok(icmp);
  if (icmp.back.startsWith("skipped: ")) {
    assert.equal(icmp.back, `skipped: ${PING_SKIP}`);
  } else {
    const kind = hasCapNetRaw() ? "raw" : "ping";
    assert.equal(icmp.transport, `icmp to 127.0.0.1, ${kind} socket`);
    assert.equal(icmp.sent, `echo request "ping from the tour"`);
    assert.equal(icmp.back, `echo reply "ping from the tour"`);
    assert.match(icmp.time, /^\d+(\.\d+)? (µs|ms)$/);
  }
});

/**
 * Runs the tour without CAP_NET_RAW in a namespace of its own, whose
 * `net.ipv4.ping_group_range` is `pingGroups` whatever this host's is, and
 * returns its rows, checked as every run's are.
 */
async function tourWithoutCapNetRaw(pingGroups: string): Promise<TourRow[]> {
  using ns = new NetNs({ pingGroups });
  const ran = await runExample("tour.ts", demoFlags(), [], { prefix: ns.wrap(DROP_NET_RAW) });
  assertSuccess(ran);
  const rows = parseTour(ran.stdout);
  assertTourRows(rows);
  return rows;
}

Deno.test({
  name:
    "examples/tour.ts without CAP_NET_RAW or ping sockets skips its ICMP row, saying why, and exits 0",
  ...needs("CAP_NET_ADMIN"),
  async fn() {
    const rows = await tourWithoutCapNetRaw("1 0");
    const icmp = find(rows, "raw", /^icmp to 127\.0\.0\.1$/);
    assert.equal(icmp?.back, `skipped: ${PING_SKIP}`);
    assert.equal(icmp.sent, "—");
  },
});

Deno.test({
  name: "examples/tour.ts without CAP_NET_RAW pings over an unprivileged ping socket",
  ...needs("CAP_NET_ADMIN"),
  async fn() {
    const rows = await tourWithoutCapNetRaw("0 2147483647");
    const icmp = find(rows, "raw", /^icmp to 127\.0\.0\.1, ping socket$/);
    assert.equal(icmp?.back, `echo reply "ping from the tour"`);
  },
});

Deno.test("examples/tour.ts exits 1 and names the failure when a row cannot run (no --allow-ffi)", async () => {
  const ran = await runExample("tour.ts", demoFlags().filter((f) => f !== "--allow-ffi"));
  assert.equal(ran.code, 1, ran.stdout);
  const rows = parseTour(ran.stdout);
  assert.equal(rows.length, 8);
  // The built-ins still work; the FFI socket types say what they lack.
  assertEcho(find(rows, "stream", /^tcp$/), "hello over TCP");
  assertEcho(find(rows, "datagram", /^udp, builtin backend$/), "hello over UDP");
  const failed = rows.filter((r) => r.back.startsWith("failed: "));
  assert.deepEqual(failed.map((r) => r.socket), ["seqpacket", "seqpacket", "raw"]);
  for (const row of failed) assert.match(row.back, /^failed: NotCapable: .*--allow-ffi/);
  assert.match(ran.stderr, /^3 of 8 exchanges failed$/m);
});

// ---------------------------------------------------------------------------
// stream_echo.ts

Deno.test("examples/stream_echo.ts echoes each message over TCP and the server counts the bytes", async () => {
  const ran = await runExample("stream_echo.ts", ["--allow-net"], ["one", "two words", "ünï"]);
  assertSuccess(ran);
  const out = ran.stdout.trimEnd().split("\n");
  assert.match(out[0], /^echo server on 127\.0\.0\.1:\d+$/);
  assert.match(out[1], /^"one" in \d+\.\d{3} ms$/);
  assert.match(out[2], /^"two words" in \d+\.\d{3} ms$/);
  assert.match(out[3], /^"ünï" in \d+\.\d{3} ms$/);
  // 3 + 9 + 5 bytes: ü and ï are two bytes each in UTF-8.
  assert.match(out[4], /^server: echoed 17 bytes to 127\.0\.0\.1:\d+$/);
  assert.equal(out.length, 5);
});

Deno.test("examples/stream_echo.ts --unix echoes over a Unix socket and leaves no socket file", async () => {
  using dir = tempDir();
  const path = `${dir.path}/echo.sock`;
  const ran = await runExample(
    "stream_echo.ts",
    ["--allow-net", `--allow-read=${dir.path}`, `--allow-write=${dir.path}`],
    ["--unix", path, "hi", "there"],
  );
  assertSuccess(ran);
  assert.equal(
    ran.stdout.replace(/ in \d+\.\d{3} ms/g, ""),
    `echo server on ${path}\n"hi"\n"there"\nserver: echoed 7 bytes to a Unix client\n`,
  );
  assert.deepEqual([...Deno.readDirSync(dir.path)], []);
});

Deno.test("examples/stream_echo.ts server and client run as two processes; --count stops the server", async () => {
  await using server = killOnDispose(
    denoRun(`${EXAMPLES}stream_echo.ts`, {
      flags: ["--allow-net=127.0.0.1"],
      args: ["server", "--port", "0", "--count", "1"],
    }).spawn(),
  );
  const out = lines(server.stdout);
  const port = /^echo server on 127\.0\.0\.1:(\d+)$/.exec(await nextLine(out, RUN_MS))?.[1];
  assert.ok(port, "the server printed its port");
  const client = await runExample("stream_echo.ts", ["--allow-net=127.0.0.1"], [
    "client",
    "--port",
    port,
    "ping",
  ]);
  assertSuccess(client);
  assert.match(client.stdout, /^"ping" in \d+\.\d{3} ms\n$/);
  assert.match(await nextLine(out), /^server: echoed 4 bytes to 127\.0\.0\.1:\d+$/);
  assert.equal((await deadline(server.status, RUN_MS, "the server's exit")).code, 0);
});

Deno.test("examples/stream_echo.ts client exits 1 naming the address when nothing listens", async () => {
  using dir = tempDir();
  const path = `${dir.path}/nobody.sock`;
  const ran = await runExample(
    "stream_echo.ts",
    ["--allow-net", `--allow-read=${dir.path}`, `--allow-write=${dir.path}`],
    ["client", "--unix", path, "x"],
  );
  assert.equal(ran.code, 1);
  assert.equal(ran.stdout, "");
  assert.equal(ran.stderr, `stream_echo: connect "${path}": no such file or directory\n`);
});

// ---------------------------------------------------------------------------
// udp_echo.ts

for (
  const [backend, flags] of [["ffi", ["--allow-net", "--allow-ffi"]], ["builtin", [
    "--unstable-net",
    "--allow-net",
  ]]] as const
) {
  Deno.test(`examples/udp_echo.ts echoes three datagrams on the ${backend} backend`, async () => {
    const ran = await runExample("udp_echo.ts", [...flags]);
    assertSuccess(ran);
    const out = ran.stdout.trimEnd().split("\n");
    assert.match(
      out[0],
      new RegExp(`^echo server on 127\\.0\\.0\\.1:\\d+ \\(${backend} backend\\)$`),
    );
    assert.match(out[1], new RegExp(`^client 127\\.0\\.0\\.1:\\d+ \\(${backend} backend\\)$`));
    assert.deepEqual(out.slice(2).map((l) => l.replace(/ in \d+\.\d{3} ms$/, "")), [
      `"hello"`,
      `"datagram"`,
      `"world"`,
    ]);
  });
}

// ---------------------------------------------------------------------------
// seqpacket_echo.ts

const SEQPACKET_FLAGS = ["--allow-ffi", "--allow-net", "--allow-read", "--allow-write"];

Deno.test("examples/seqpacket_echo.ts gets back as many records as it sent, the empty one included", async () => {
  const ran = await runExample("seqpacket_echo.ts", SEQPACKET_FLAGS, ["a", "", "", "bcd"]);
  assertSuccess(ran);
  const out = ran.stdout.trimEnd().split("\n");
  assert.match(out[0], /^echo server on \/.*\/echo\.sock$/);
  assert.deepEqual(out.slice(1, 5), [
    `record 1: "a" (1 B)`,
    `record 2: "" (0 B)`,
    `record 3: "" (0 B)`,
    `record 4: "bcd" (3 B)`,
  ]);
  assert.match(out[5], /^4 records in \d+\.\d{3} ms$/);
  assert.match(out[6], /^server: echoed 4 records to pid \d+$/);
  assert.equal(out.length, 7);
});

Deno.test("examples/seqpacket_echo.ts server names the client process by its kernel-recorded pid", async () => {
  using dir = tempDir();
  const path = `${dir.path}/echo.sock`;
  await using server = killOnDispose(
    denoRun(`${EXAMPLES}seqpacket_echo.ts`, {
      flags: SEQPACKET_FLAGS,
      args: ["server", path, "--count", "1"],
    }).spawn(),
  );
  const out = lines(server.stdout);
  assert.equal(await nextLine(out, RUN_MS), `echo server on ${path}`);
  await using client = killOnDispose(
    denoRun(`${EXAMPLES}seqpacket_echo.ts`, {
      flags: SEQPACKET_FLAGS,
      args: ["client", path, "x", "yz"],
    }).spawn(),
  );
  const done = await deadline(client.output(), RUN_MS, "the client");
  assert.equal(done.code, 0);
  assert.match(decoder.decode(done.stdout), /^record 1: "x" \(1 B\)\nrecord 2: "yz" \(2 B\)\n/);
  assert.equal(await nextLine(out), `server: echoed 2 records to pid ${client.pid}`);
  assert.equal((await deadline(server.status, RUN_MS, "the server's exit")).code, 0);
  assert.deepEqual([...Deno.readDirSync(dir.path)], [], "the server removed its socket file");
});

// ---------------------------------------------------------------------------
// seqpacket_fd_server.ts

Deno.test("examples/seqpacket_fd_server.ts clients write to the server's stdout through the descriptor they got", async () => {
  const ran = await runExample("seqpacket_fd_server.ts", [
    "--allow-ffi",
    "--allow-read",
    "--allow-write",
    "--allow-net",
    "--allow-run",
    "--allow-sys=uid",
  ]);
  assertSuccess(ran);
  // The clients' own stdout goes nowhere: these lines came through the passed descriptor.
  const printed = ran.stdout.trimEnd().split("\n").sort();
  assert.equal(printed.length, 2, ran.stdout);
  for (const [i, line] of printed.entries()) {
    const m = /^client (\d) \(pid (\d+)\): "hello pid (\d+), here is my stdout"$/.exec(line);
    assert.ok(m, line);
    assert.equal(m[1], String(i + 1));
    assert.equal(m[2], m[3], "the server greeted the pid the kernel reported");
    assert.match(ran.stderr, new RegExp(`client ${m[2]} says "client ${i + 1} wrote its line"`));
  }
});

// ---------------------------------------------------------------------------
// notify.ts

const NOTIFY_FLAGS = ["--allow-ffi", "--allow-env", "--allow-read", "--allow-write", "--allow-net"];

Deno.test("examples/notify.ts --demo sends READY=1 and a status, each as one datagram from an unnamed socket", async () => {
  const ran = await runExample("notify.ts", NOTIFY_FLAGS, ["--demo"]);
  assertSuccess(ran);
  const out = ran.stdout.trimEnd().split("\n");
  assert.match(out[0], /^listening on "\/.*\/notify\.sock" \(ffi backend\)$/);
  // The kernel names an unnamed sender with an abstract name of five hex digits.
  assert.match(out[1], /^from "\\u0000[0-9a-f]{5}": READY=1$/);
  assert.match(out[2], /^from "\\u0000[0-9a-f]{5}": STATUS=Serving 3 clients, MAINPID=\d+$/);
  assert.equal(out.length, 3);
});

Deno.test("examples/notify.ts sends to the abstract name a $NOTIFY_SOCKET of @… names", async () => {
  const name = `bsd-notify-test-${Deno.pid}`;
  using sock = listenDatagram({ path: `\0${name}` });
  const sent = await runExample("notify.ts", NOTIFY_FLAGS, ["READY=1", "STATUS=up"], {
    env: { NOTIFY_SOCKET: `@${name}` },
  });
  assertSuccess(sent);
  assert.equal(sent.stdout, "");
  const m = await deadline(sock.receive(), RUN_MS, "the notification");
  // Both assignments in one datagram, newline-separated, as sd_notify sends them.
  assert.equal(decoder.decode(m?.data), "READY=1\nSTATUS=up");
  assert.match(m?.from?.path ?? "", /^\0[0-9a-f]{5}$/);
});

Deno.test("examples/notify.ts exits 1 and says so when NOTIFY_SOCKET is not set", async () => {
  const ran = await runExample("notify.ts", NOTIFY_FLAGS, ["READY=1"], {
    prefix: ["env", "-u", "NOTIFY_SOCKET"],
  });
  assert.equal(ran.code, 1);
  assert.equal(ran.stderr, "notify: NOTIFY_SOCKET is not set; nothing to notify\n");
});

// ---------------------------------------------------------------------------
// web_streams.ts

const WEB_FLAGS = ["--allow-net", "--allow-read", "--allow-write"];

Deno.test("examples/web_streams.ts pipes a 1 MiB file through a Unix socket, upper-cased, byte for byte", async () => {
  using dir = tempDir();
  // Two-byte characters across chunk borders, and ß, which upper-cases to two letters.
  const rand = prng(7);
  const alphabet = ["a", "b", "z", " ", "\n", "é", "ß", "ж"];
  const text = Array.from(
    randomBytes(rand, 1 << 20),
    (b) => alphabet[b % alphabet.length],
  ).join("");
  Deno.writeTextFileSync(`${dir.path}/in.txt`, text);
  const ran = await runExample("web_streams.ts", WEB_FLAGS, [`${dir.path}/in.txt`]);
  assertSuccess(ran);
  const expected = encoder.encode(text.toUpperCase());
  const got = encoder.encode(ran.stdout);
  assert.equal(got.length, expected.length);
  assert.equal(await sha256(got), await sha256(expected));
});

Deno.test("examples/web_streams.ts demo upper-cases its built-in lines", async () => {
  const ran = await runExample("web_streams.ts", WEB_FLAGS);
  assertSuccess(ran);
  assert.equal(
    ran.stdout,
    "ONE SMALL STEP\nFOR A SOCKET,\nONE GIANT LEAP FOR STRASSE NAMES\n",
  );
});

Deno.test("examples/web_streams.ts send pipes stdin to a server in another process, which stops after --count", async () => {
  using dir = tempDir();
  const path = `${dir.path}/upper.sock`;
  await using server = killOnDispose(
    denoRun(`${EXAMPLES}web_streams.ts`, {
      flags: WEB_FLAGS,
      args: ["server", path, "--count", "2"],
      stderr: "piped",
    }).spawn(),
  );
  const status = lines(server.stderr);
  assert.equal(await nextLine(status, RUN_MS), `server on ${path}`);
  // One after the other: the server prints each connection whole before the next.
  for (const input of ["first\n", "second, from stdin\n"]) {
    const sent = await runExample("web_streams.ts", WEB_FLAGS, ["send", path], {
      input: encoder.encode(input),
    });
    assertSuccess(sent);
  }
  const out = await deadline(new Response(server.stdout).text(), RUN_MS, "the server's output");
  assert.equal(out, "FIRST\nSECOND, FROM STDIN\n");
  assert.equal((await server.status).code, 0);
});

// ---------------------------------------------------------------------------
// ping.ts and sniff.ts: their failure paths (tests/raw_test.ts runs their jobs)

Deno.test({
  name:
    "examples/ping.ts exits 2 naming the sysctl when neither a raw nor a ping socket is allowed",
  ...needs("CAP_NET_ADMIN"),
  async fn() {
    using ns = new NetNs({ pingGroups: "1 0" });
    const ran = await runExample("ping.ts", ["--allow-ffi", "--allow-net=127.0.0.1"], ["-c", "1"], {
      prefix: ns.wrap(DROP_NET_RAW),
    });
    assert.equal(ran.code, 2, ran.stderr);
    assert.equal(ran.stdout, "");
    assert.match(ran.stderr, /^no CAP_NET_RAW: using an unprivileged ping socket$/m);
    assert.match(ran.stderr, /^ping: .*net\.ipv4\.ping_group_range/m);
  },
});

Deno.test({
  name: "examples/sniff.ts exits 2 naming an interface that does not exist",
  ...needs("CAP_NET_RAW"),
  async fn() {
    const ran = await runExample("sniff.ts", ["--allow-ffi", "--allow-net"], ["-i", "nosuch0"]);
    assert.equal(ran.code, 2, ran.stderr);
    assert.equal(ran.stdout, "");
    assert.match(ran.stderr, /^sniff: .*"nosuch0"/m);
  },
});

// ---------------------------------------------------------------------------
// activated_server.ts

const ACTIVATED_FLAGS = [
  "--allow-ffi",
  "--allow-env",
  "--allow-read",
  "--allow-write",
  "--allow-net",
];

/**
 * Starts activated_server.ts (under systemd-socket-activate when `tool`
 * holds its arguments) with a notification socket of ours, talks to `web`
 * (a TCP port) and `local` (a Unix path) with Deno's own sockets, stops it
 * with SIGTERM, and returns what it told the manager and what each socket
 * answered.
 */
async function runActivated(
  dir: string,
  web: number,
  local: string,
  options: { tool?: string[]; args?: string[]; managerGoneAtStop?: boolean },
): Promise<{ notes: string[]; answers: string[]; stdout: string; code: number }> {
  using notifications = listenDatagram({ path: `${dir}/notify.sock` });
  const tool = options.tool ? ["systemd-socket-activate", ...options.tool] : [];
  const command = denoRun(`${EXAMPLES}activated_server.ts`, {
    flags: ACTIVATED_FLAGS,
    args: options.args,
    prefix: ["env", `NOTIFY_SOCKET=${dir}/notify.sock`, ...tool],
    stderr: "piped",
  });
  await using child = killOnDispose(command.spawn());
  const stdout = new Response(child.stdout).text();
  const notes: string[] = [];
  const note = async () => {
    const m = await deadline(notifications.receive(), RUN_MS, "a notification");
    notes.push(decoder.decode(m?.data));
  };
  const talk = async (conn: Deno.Conn) => {
    using _conn = conn;
    await conn.write(encoder.encode("hello"));
    const buf = new Uint8Array(256);
    const n = await deadline(conn.read(buf), RUN_MS, "an answer");
    return decoder.decode(buf.subarray(0, n ?? 0));
  };
  if (options.tool) {
    // The tool listens first and starts the service on the first connection.
    const said = lines(child.stderr);
    for (let seen = 0, read = 0; seen < 2; read++) {
      assert.ok(read < 10, "systemd-socket-activate did not say it listens");
      if ((await nextLine(said, RUN_MS)).startsWith("Listening on ")) seen++;
    }
  } else {
    await note();
  }
  const [first] = await Promise.all([
    talk(await Deno.connect({ hostname: "127.0.0.1", port: web })),
    options.tool ? note() : undefined,
  ]);
  const answers = [first, await talk(await Deno.connect({ path: local, transport: "unix" }))];
  // Closing it removes its socket file: the STOPPING=1 send then fails with NotFound.
  if (options.managerGoneAtStop) notifications.close();
  child.kill("SIGTERM");
  if (!options.managerGoneAtStop) await note();
  const status = await deadline(child.status, RUN_MS, "activated_server.ts to stop");
  return { notes, answers, stdout: await stdout, code: status.code };
}

/** A TCP port on 127.0.0.1 that was free a moment ago (systemd-socket-activate refuses 0). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr;
  l.close();
  return port;
}

Deno.test(
  "examples/activated_server.ts serves the TCP and Unix sockets systemd-socket-activate passes, says READY and STOPPING",
  {
    ignore: needs("python3").ignore || !new Deno.Command("sh", {
      args: ["-c", "command -v systemd-socket-activate"],
      stdout: "null",
    }).outputSync().success,
  },
  async () => {
    using dir = tempDir("sd-example-");
    const port = freePort();
    const path = `${dir.path}/local.sock`;
    const ran = await runActivated(dir.path, port, path, {
      tool: ["-l", `127.0.0.1:${port}`, "-l", path, "--fdname=web:local", "-E", "NOTIFY_SOCKET"],
    });
    assert.equal(ran.code, 0, ran.stdout);
    assert.deepEqual(ran.answers, ["web: hello", "local: hello"]);
    assert.deepEqual(ran.notes, [
      "READY=1\nSTATUS=serving 2 sockets from the manager",
      "STOPPING=1\nSTATUS=closing its sockets",
    ]);
    assert.equal(ran.stdout, "serving web (StreamListener)\nserving local (StreamListener)\n");
  },
);

Deno.test("examples/activated_server.ts listens itself when started by hand", async () => {
  using dir = tempDir("sd-example-");
  const port = freePort();
  const path = `${dir.path}/local.sock`;
  const ran = await runActivated(dir.path, port, path, {
    args: ["--port", String(port), "--path", path],
  });
  assert.equal(ran.code, 0, ran.stdout);
  assert.deepEqual(ran.answers, ["web: hello", "local: hello"]);
  assert.deepEqual(ran.notes, [
    "READY=1\nSTATUS=serving 2 sockets of its own",
    "STOPPING=1\nSTATUS=closing its sockets",
  ]);
});

Deno.test(
  "examples/activated_server.ts still closes its sockets and exits when STOPPING=1 cannot be sent",
  async () => {
    using dir = tempDir("sd-example-");
    const port = freePort();
    const path = `${dir.path}/local.sock`;
    const ran = await runActivated(dir.path, port, path, {
      args: ["--port", String(port), "--path", path],
      managerGoneAtStop: true,
    });
    assert.equal(ran.code, 0, ran.stdout);
    assert.deepEqual(ran.notes, ["READY=1\nSTATUS=serving 2 sockets of its own"]);
  },
);

Deno.test(
  "examples/activated_server.ts keeps answering on a datagram socket after a reply fails",
  {
    ignore: !new Deno.Command("sh", {
      args: ["-c", "command -v systemd-socket-activate"],
      stdout: "null",
    }).outputSync().success,
  },
  async () => {
    using dir = tempDir("sd-example-");
    const path = `${dir.path}/dgram.sock`;
    using notifications = listenDatagram({ path: `${dir.path}/notify.sock` });
    const command = denoRun(`${EXAMPLES}activated_server.ts`, {
      flags: ACTIVATED_FLAGS,
      prefix: [
        "env",
        `NOTIFY_SOCKET=${dir.path}/notify.sock`,
        ..."systemd-socket-activate --datagram --fdname=dgram -E NOTIFY_SOCKET -l".split(" "),
        path,
      ],
      stderr: "piped",
    });
    await using child = killOnDispose(command.spawn());
    const said = lines(child.stderr);
    assert.ok((await nextLine(said, RUN_MS)).startsWith("Listening on "));
    // A sender that is gone before its answer: the reply to it fails.
    const gone = listenDatagram({ path: `${dir.path}/gone.sock` });
    await gone.send(encoder.encode("one"), { transport: "unixgram", path });
    gone.close();
    await deadline(notifications.receive(), RUN_MS, "READY=1");
    using client = listenDatagram({ path: `${dir.path}/client.sock` });
    await client.send(encoder.encode("two"), { transport: "unixgram", path });
    const reply = await deadline(client.receive(), RUN_MS, "the answer to the second sender");
    assert.equal(decoder.decode(reply?.data), "dgram: two");
  },
);

// ---------------------------------------------------------------------------
// ip.ts and watch_links.ts, in a namespace of the test's own

/** A namespace with a veth pair up, addresses, a route via a gateway, and a link down. */
function netlinkNamespace(): NetNs {
  const ns = new NetNs({ prefix: "nl-" });
  try {
    ns.ip("link", "add", "nle0", "type", "veth", "peer", "name", "nle1");
    ns.ip("link", "add", "nle2", "type", "veth", "peer", "name", "nle3");
    ns.ip("addr", "add", "10.30.0.1/24", "dev", "nle0");
    ns.ip("link", "set", "nle0", "up");
    ns.ip("link", "set", "nle1", "up");
    ns.ip("route", "add", "10.31.0.0/16", "via", "10.30.0.2", "metric", "5");
    return ns;
  } catch (err) {
    ns[Symbol.dispose]();
    throw err;
  }
}

Deno.test({
  name: "examples/ip.ts prints links as ip -j link does and routes as ip route does",
  ...needs("CAP_NET_ADMIN"),
  async fn() {
    using ns = netlinkNamespace();
    const inNs = ["ip", "netns", "exec", ns.name];
    const links = await runExample("ip.ts", ["--allow-ffi"], ["-j", "link"], { prefix: inNs });
    assertSuccess(links);
    const names = (json: string) =>
      (JSON.parse(json) as { ifindex: number; ifname: string; operstate: string }[])
        .map((l) => `${l.ifindex} ${l.ifname} ${l.operstate}`);
    assert.deepEqual(names(links.stdout), names(ns.ip("-j", "link")));
    const routes = await runExample("ip.ts", ["--allow-ffi"], ["route"], { prefix: inNs });
    assertSuccess(routes);
    const text = (s: string) => s.trim().split("\n").map((l) => l.trim());
    assert.deepEqual(text(routes.stdout), text(ns.ip("route")));
    assert.ok(routes.stdout.includes("10.31.0.0/16 via 10.30.0.2 dev nle0 metric 5"));
  },
});

Deno.test({
  name: "examples/watch_links.ts prints one line per link change and stops after -c",
  ...needs("CAP_NET_ADMIN"),
  async fn() {
    using ns = netlinkNamespace();
    const command = denoRun(`${EXAMPLES}watch_links.ts`, {
      flags: ["--allow-ffi"],
      args: ["-c", "2", "-t", "20"],
      prefix: ["ip", "netns", "exec", ns.name],
    });
    await using child = killOnDispose(command.spawn());
    const out = lines(child.stdout);
    assert.equal(await nextLine(out, 10_000), "watching");
    ns.ip("link", "set", "nle2", "up");
    assert.match(await nextLine(out, 2000), /^\S+ new \d+ nle2 \S+ <.*UP.*>$/);
    ns.ip("link", "del", "nle3");
    assert.match(await nextLine(out, 2000), / nle[23] /);
    const status = await deadline(child.status, 5000, "watch_links.ts to stop after 2 changes");
    assert.equal(status.code, 0);
  },
});

// ---------------------------------------------------------------------------
// dbus_fd.ts and handoff.ts: descriptors doing a real protocol's job

/** The system python, which has python3-dbus and python3-gi (the pyenv one on PATH may not). */
const SYSTEM_PYTHON = "/usr/bin/python3";

/** Whether dbus-daemon and the system python's dbus and gi modules are here. */
function hasDbus(): boolean {
  try {
    const daemon = new Deno.Command("dbus-daemon", { args: ["--version"], stdout: "null" });
    const modules = new Deno.Command(SYSTEM_PYTHON, {
      args: ["-c", "import dbus, dbus.mainloop.glib, gi.repository.GLib"],
      stdout: "null",
      stderr: "null",
    });
    return daemon.outputSync().success && modules.outputSync().success;
  } catch {
    return false;
  }
}

const DBUS_PEER = new URL("./peers/dbus_service.py", import.meta.url).pathname;

Deno.test({
  name:
    "examples/dbus_fd.ts passes its stdin as an `h` argument through a private dbus-daemon to a python3-dbus service that reads it back",
  ignore: !hasDbus(),
  async fn() {
    using dir = tempDir("dbus-");
    const bus = `${dir.path}/bus`;
    Deno.writeTextFileSync(
      `${dir.path}/bus.conf`,
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${bus}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
`,
    );
    await using daemon = killOnDispose(
      new Deno.Command("dbus-daemon", {
        args: [`--config-file=${dir.path}/bus.conf`, "--nofork", "--print-address"],
        stdout: "piped",
        stderr: "inherit",
      }).spawn(),
    );
    assert.match(await nextLine(lines(daemon.stdout), 10_000), /^unix:path=/);
    await using service = killOnDispose(
      new Deno.Command(SYSTEM_PYTHON, {
        args: ["-u", DBUS_PEER, bus],
        stdout: "piped",
        stderr: "inherit",
      }).spawn(),
    );
    assert.equal(await nextLine(lines(service.stdout), 10_000), "ready");

    const rand = prng(0xdb05);
    const content = Array.from({ length: 200 }, () => Math.floor(rand() * 1e9).toString(36))
      .join(" ");
    const file = `${dir.path}/input.txt`;
    Deno.writeTextFileSync(file, content);
    const ran = await runExample(
      "dbus_fd.ts",
      ["--allow-ffi", "--allow-read", "--allow-write", "--allow-net", "--allow-sys=uid"],
      [bus, "org.bsd.Test", "/org/bsd/Test", "org.bsd.Test.ReadFd"],
      // A shell puts the file on the example's stdin: the descriptor it passes.
      { prefix: ["sh", "-c", `exec "$0" "$@" < "${file}"`] },
    );
    assertSuccess(ran);
    assert.equal(ran.stdout, `${content}\n`);
    assert.match(ran.stderr, /connected as :\d+\.\d+/);
  },
});

Deno.test("examples/handoff.ts hands its listening socket to a new process with no refused or reset connection", async () => {
  const ran = await runExample("handoff.ts", [
    "--allow-ffi",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-run",
  ]);
  assertSuccess(ran);
  const m =
    /^connections: (\d+), refused: 0, reset: 0, other failures: 0, served by generation 1: (\d+), generation 2: (\d+)$/m
      .exec(ran.stdout);
  assert.ok(m, ran.stdout);
  const [total, one, two] = m.slice(1).map(Number);
  assert.equal(one + two, total, "every connection was served");
  assert.ok(one >= 200 && two >= 100, ran.stdout);
  assert.match(ran.stdout, /^generation 1 exited with 0$/m);
});
