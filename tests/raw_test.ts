import assert from "node:assert/strict";
import { decodeEcho, decodeIPv4Header, type Echo, encodeEcho, type IPv4Header } from "../icmp.ts";
import { openSocketCount } from "../ffi/socket.ts";
import {
  BPF,
  bpfJump,
  type BpfProgram,
  bpfStatement,
  compileFilter,
  type LinkSocket,
  openPacket,
  openRaw,
  type RawSocket,
} from "../raw.ts";
import type { IpAddr, LinkAddr, Message } from "../types.ts";
import {
  deadline,
  denoJson,
  denoRun,
  DROP_NET_RAW,
  lines,
  needs,
  nextLine,
  socketFdCount,
  tempDir,
  toHex,
} from "./_helpers.ts";
import { NetNs, VethPair } from "./_netns.ts";

const LOOP4: IpAddr = { transport: "ip", hostname: "127.0.0.1" };
const LOOP6: IpAddr = { transport: "ip", hostname: "::1" };
const RAW_URL = new URL("../raw.ts", import.meta.url).href;
const ICMP_URL = new URL("../icmp.ts", import.meta.url).href;
const SOCKET_URL = new URL("../ffi/socket.ts", import.meta.url).href;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The sockets this process holds: the engine's ledger and the socket descriptors. */
function socketCounts(): { ledger: number; fds: number } {
  return { ledger: openSocketCount(), fds: socketFdCount() };
}

/** An echo id no other test (or a concurrent run) is likely to use. */
function freshId(): number {
  return (Deno.pid * 31 + Math.floor(Math.random() * 65536)) & 0xffff;
}

/**
 * Receives until a record satisfies `pick` (which returns what it found, or
 * undefined to skip the record); fails after 5 s. Every record seen is kept.
 */
async function receiveUntil<A, T>(
  sock: { receive(o?: { signal?: AbortSignal }): Promise<Message<A> | null> },
  pick: (m: Message<A>) => T | undefined,
  what: string,
  seen: Message<A>[] = [],
): Promise<{ message: Message<A>; found: T }> {
  const signal = AbortSignal.timeout(5000);
  for (;;) {
    const m = await deadline(sock.receive({ signal }), 6000, what);
    if (m === null) throw new Error(`the socket closed while waiting for ${what}`);
    seen.push(m);
    const found = pick(m);
    if (found !== undefined) return { message: m, found };
  }
}

/** The ICMPv4 echo inside a raw IPv4 record, or undefined when it holds another message. */
function echoIn4(data: Uint8Array): { ip: IPv4Header; echo: Echo } | undefined {
  const ip = decodeIPv4Header(data);
  const echo = ip.protocol === 1 ? decodeEcho(ip.payload) : null;
  return echo ? { ip, echo } : undefined;
}

// ---------------------------------------------------------------------------
// Raw ICMP over loopback

Deno.test({
  name: "openRaw() ICMPv4 to 127.0.0.1: replies match id and sequence, checksums verify, " +
    "the IPv4 header decodes with the right total length",
  ...needs("CAP_NET_RAW"),
  async fn() {
    using sock = openRaw({ family: "ipv4", protocol: "icmp" });
    assert.deepEqual(sock.localAddr, { transport: "ip", hostname: "0.0.0.0" });
    assert.equal(sock.echoId, null);
    assert.equal(sock.unprivileged, false);
    const id = freshId();
    const data = encoder.encode("raw ICMPv4 echo over loopback, odd length.");
    for (let sequence = 1; sequence <= 3; sequence++) {
      const request = encodeEcho({ id, sequence, data });
      assert.equal(await sock.send(request, LOOP4), request.length);
      const seen: Message<IpAddr>[] = [];
      const { message, found } = await receiveUntil(
        sock,
        (m) => {
          const e = echoIn4(m.data);
          return e?.echo.type === "reply" && e.echo.id === id && e.echo.sequence === sequence
            ? e
            : undefined;
        },
        `echo reply ${sequence}`,
        seen,
      );
      assert.deepEqual(message.from, LOOP4);
      assert.equal(message.truncated, false);
      const { ip, echo } = found;
      assert.equal(ip.version, 4);
      assert.equal(ip.headerLength, 20);
      assert.equal(ip.totalLength, 20 + 8 + data.length);
      assert.equal(ip.totalLength, message.data.length);
      assert.equal(ip.checksumValid, true);
      assert.equal(ip.protocol, 1);
      assert.equal(ip.source, "127.0.0.1");
      assert.equal(ip.destination, "127.0.0.1");
      assert.equal(echo.checksumValid, true);
      assert.deepEqual(echo.data, data);
      // A raw socket also sees the request the kernel answered (documented).
      assert.ok(
        seen.some((m) => {
          const e = echoIn4(m.data);
          return e?.echo.type === "request" && e.echo.id === id && e.echo.sequence === sequence;
        }),
        "the request was not seen before its reply",
      );
    }
  },
});

Deno.test({
  name: "openRaw() ICMPv6 to ::1: the reply arrives without an IP header, matched and verified",
  ...needs("CAP_NET_RAW"),
  async fn() {
    using sock = openRaw({ family: "ipv6", protocol: "icmpv6" });
    assert.deepEqual(sock.localAddr, { transport: "ip", hostname: "::" });
    const id = freshId();
    const data = encoder.encode("raw ICMPv6 echo");
    const loopback = { source: "::1", destination: "::1" };
    for (let sequence = 100; sequence < 103; sequence++) {
      // The checksum is left 0: Linux computes it for raw ICMPv6 sockets.
      await sock.send(encodeEcho({ family: "ipv6", id, sequence, data }), LOOP6);
      const { message, found } = await receiveUntil(sock, (m) => {
        const e = decodeEcho(m.data, "ipv6", loopback);
        return e?.type === "reply" && e.id === id && e.sequence === sequence ? e : undefined;
      }, `ICMPv6 echo reply ${sequence}`);
      assert.deepEqual(message.from, LOOP6);
      assert.equal(message.data.length, 8 + data.length, "an IPv6 record has no IP header");
      assert.deepEqual(found, { type: "reply", id, sequence, data, checksumValid: true });
    }
  },
});

Deno.test({
  name: 'openRaw({ protocol: "icmp" }) on ipv6 is ICMPv6, and interface binds to a device',
  ...needs("CAP_NET_RAW"),
  async fn() {
    using sock = openRaw({ family: "ipv6", protocol: "icmp", interface: "lo" });
    const id = freshId();
    await sock.send(encodeEcho({ family: "ipv6", id, sequence: 1 }), LOOP6);
    const { found } = await receiveUntil(sock, (m) => {
      const e = decodeEcho(m.data, "ipv6");
      return e?.type === "reply" && e.id === id ? e : undefined;
    }, "ICMPv6 reply on lo");
    assert.equal(found.sequence, 1);
    assert.throws(
      () => openRaw({ family: "ipv4", protocol: "icmp", interface: "bsdnosuch0" }),
      (e) =>
        e instanceof Deno.errors.NotFound &&
        /openRaw "bsdnosuch0": no such network/.test(e.message),
    );
  },
});

Deno.test({
  name: "openRaw({ headerIncluded }) sends the caller's IPv4 header: the reply goes to its source",
  ...needs("CAP_NET_RAW"),
  async fn() {
    using sock = openRaw({ family: "ipv4", protocol: "icmp", headerIncluded: true });
    const id = freshId();
    const icmp = encodeEcho({ id, sequence: 9, data: encoder.encode("hdrincl") });
    const packet = new Uint8Array(20 + icmp.length);
    const v = new DataView(packet.buffer);
    packet[0] = 0x45;
    v.setUint16(2, packet.length);
    v.setUint16(6, 0x4000); // don't fragment
    packet[8] = 64;
    packet[9] = 1;
    packet.set([127, 0, 0, 2], 12); // a source the kernel would not have picked
    packet.set([127, 0, 0, 1], 16);
    packet.set(icmp, 20);
    await sock.send(packet, LOOP4);
    const { found } = await receiveUntil(sock, (m) => {
      const e = echoIn4(m.data);
      return e?.echo.type === "reply" && e.echo.id === id ? e : undefined;
    }, "the reply to a hand-built header");
    assert.equal(found.ip.destination, "127.0.0.2");
    assert.equal(found.echo.sequence, 9);
  },
});

Deno.test({
  name: "RawSocket.receive({ maxSize }) cuts a longer packet and says truncated",
  ...needs("CAP_NET_RAW"),
  async fn() {
    using sock = openRaw({ family: "ipv4", protocol: "icmp" });
    sock.setFilter(compileFilter({ ipProtocol: "icmp", icmpType: 0 }, { link: "ip" }));
    await sock.send(encodeEcho({ id: freshId(), sequence: 1, data: new Uint8Array(100) }), LOOP4);
    const m = await deadline(sock.receive({ maxSize: 24 }), 5000, "a reply");
    assert.equal(m?.data.length, 24);
    assert.equal(m?.truncated, true);
    assert.equal(m?.data[20], 0, "the cut record starts with the IPv4 header, then the reply");
  },
});

// ---------------------------------------------------------------------------
// Filters

const BAD_PROGRAMS: [string, BpfProgram][] = [
  ["a jump out of range", [
    bpfJump(BPF.JMP | BPF.JEQ | BPF.K, 0, 5, 0),
    bpfStatement(BPF.RET | BPF.K, 0xffffffff),
  ]],
  ["an empty program", []],
  [
    "4,097 instructions",
    Array.from({ length: 4097 }, () => bpfStatement(BPF.RET | BPF.K, 0xffffffff)),
  ],
];

Deno.test({
  name: "RawSocket.setFilter() drops what the program rejects; bad programs throw RangeError " +
    "and leave the attached filter in place",
  ...needs("CAP_NET_RAW"),
  async fn() {
    using sock = openRaw({ family: "ipv4", protocol: "icmp" });
    sock.setFilter(compileFilter({ ipProtocol: "icmp", icmpType: 0 }, { link: "ip" }));
    const before = socketCounts();
    for (const [what, program] of BAD_PROGRAMS) {
      assert.throws(() => sock.setFilter(program), RangeError, what);
    }
    assert.deepEqual(socketCounts(), before);
    const id = freshId();
    for (let sequence = 1; sequence <= 2; sequence++) {
      await sock.send(encodeEcho({ id, sequence }), LOOP4);
      const m = await deadline(sock.receive(), 5000, `reply ${sequence}`);
      // The request arrives first; the filter (still the good one) dropped it.
      const e = echoIn4(m!.data);
      assert.equal(e?.echo.type, "reply");
      assert.equal(e?.echo.id, id);
      assert.equal(e?.echo.sequence, sequence);
    }
  },
});

Deno.test("openPacket({ filter }) with a bad program throws RangeError before any system call", () => {
  const before = socketCounts();
  for (const [what, program] of BAD_PROGRAMS) {
    assert.throws(() => openPacket({ interface: "lo", filter: program }), RangeError, what);
  }
  assert.deepEqual(socketCounts(), before);
});

// ---------------------------------------------------------------------------
// Two raw IPv6 sockets on an experimental protocol

Deno.test({
  name: "openRaw() IPv6 protocol 253: two connected sockets exchange records with read/write",
  ...needs("CAP_NET_RAW"),
  async fn() {
    using a = openRaw({ family: "ipv6", protocol: 253 });
    using b = openRaw({ family: "ipv6", protocol: 253 });
    await a.connect(LOOP6);
    await b.connect(LOOP6);
    assert.deepEqual(a.remoteAddr, LOOP6);
    assert.deepEqual(a.localAddr, LOOP6, "connecting picks the source address");
    const tag = `${Deno.pid}-${freshId()}`;
    // Each socket sees every protocol-253 packet on ::1, its own included.
    const readFrom = async (sock: RawSocket, prefix: string): Promise<string> => {
      const buf = new Uint8Array(256);
      for (let i = 0; i < 50; i++) {
        const n = await deadline(sock.read(buf), 5000, `a record from ${prefix}`);
        assert.notEqual(n, null);
        const text = decoder.decode(buf.subarray(0, n!));
        if (text.startsWith(`${prefix} ${tag}`)) return text;
      }
      throw new Error(`no record from ${prefix}`);
    };
    for (let i = 0; i < 5; i++) {
      const ping = encoder.encode(`a ${tag} ping ${i} ${"x".repeat(i * 37)}`);
      assert.equal(await a.write(ping), ping.length);
      assert.equal(await readFrom(b, "a"), decoder.decode(ping));
      const pong = encoder.encode(`b ${tag} pong ${i}`);
      assert.equal(await b.write(pong), pong.length);
      assert.equal(await readFrom(a, "b"), decoder.decode(pong));
    }
    // One read is one record: a 3-byte buffer takes the head of one record
    // only, and the rest of that record is gone, not left for the next read.
    await a.write(encoder.encode(`a ${tag} last`));
    const head = new Uint8Array(3);
    const lastHead = `a ${tag[0]}`;
    let seen = "";
    for (let i = 0; i < 50 && seen !== lastHead; i++) {
      const n = await deadline(b.read(head), 5000, "head");
      assert.equal(n, 3);
      seen = decoder.decode(head);
    }
    assert.equal(seen, lastHead);
    await a.write(encoder.encode(`a ${tag} after`));
    const next = new Uint8Array(256);
    const n = await deadline(b.read(next), 5000, "the record after");
    assert.match(decoder.decode(next.subarray(0, n!)), /^[ab] /);
  },
});

// ---------------------------------------------------------------------------
// Closing, argument checks, permissions

Deno.test({
  name: "RawSocket.close() ends a pending receive with null and fails later sends with BadResource",
  ...needs("CAP_NET_RAW"),
  async fn() {
    const ledger = openSocketCount();
    const sock = openRaw({ family: "ipv6", protocol: 253 });
    assert.equal(openSocketCount(), ledger + 1);
    sock.setFilter([bpfStatement(BPF.RET | BPF.K, 0)]); // nothing arrives
    const pending = sock.receive();
    sock.close();
    assert.equal(await deadline(pending, 1000, "the pending receive"), null);
    assert.equal(await sock.receive(), null);
    await assert.rejects(sock.send(new Uint8Array(1), LOOP6), Deno.errors.BadResource);
    await assert.rejects(sock.write(new Uint8Array(1)), Deno.errors.BadResource);
    sock.close();
    assert.equal(openSocketCount(), ledger);
  },
});

Deno.test("openRaw() and openPacket() check their options before any system call", () => {
  const before = socketCounts();
  const bad: [unknown, ErrorConstructor | RangeErrorConstructor][] = [
    [null, TypeError],
    [{ family: "ipv5", protocol: "icmp" }, TypeError],
    [{ family: "ipv4", protocol: "sctp" }, TypeError],
    [{ family: "ipv4", protocol: 256 }, RangeError],
    [{ family: "ipv4", protocol: 1.5 }, TypeError],
    [{ family: "ipv4", protocol: "icmpv6" }, TypeError],
    [{ family: "ipv4", protocol: "udp", unprivileged: true }, TypeError],
    [{ family: "ipv6", protocol: "icmp", headerIncluded: true }, TypeError],
    [{ family: "ipv4", protocol: "icmp", headerIncluded: true, unprivileged: true }, TypeError],
    [{ family: "ipv4", protocol: "icmp", headerIncluded: "yes" }, TypeError],
    [{ family: "ipv4", protocol: "icmp", interface: "" }, TypeError],
    [{ family: "ipv4", protocol: "icmp", interface: "a/b" }, TypeError],
    [{ family: "ipv4", protocol: "icmp", interface: "x".repeat(16) }, RangeError],
    [{ family: "ipv4", protocol: "icmp", busyPoll: -1 }, RangeError],
    [{ family: "ipv4", protocol: "icmp", busyPoll: 10_001 }, RangeError],
    [{ family: "ipv4", protocol: "icmp", busyPoll: 2.5 }, TypeError],
  ];
  for (const [options, Class] of bad) {
    assert.throws(() => openRaw(options as never), Class, JSON.stringify(options));
  }
  const badPacket: [unknown, ErrorConstructor | RangeErrorConstructor][] = [
    [undefined, TypeError],
    [{}, TypeError],
    [{ interface: "x".repeat(16) }, RangeError],
    [{ interface: "lo", protocol: 0 }, RangeError],
    [{ interface: "lo", protocol: 0x10000 }, RangeError],
    [{ interface: "lo", protocol: "ip" }, TypeError],
    [{ interface: "lo", cooked: 1 }, TypeError],
    [{ interface: "lo", filter: "udp" }, TypeError],
    [{ interface: "lo", immediate: "yes" }, TypeError],
    [{ interface: "lo", bufferSize: 0 }, RangeError],
    [{ interface: "lo", bufferSize: 1.5 }, TypeError],
    [{ interface: "lo", busyPoll: -1 }, RangeError],
    [{ interface: "lo", busyPoll: "50" }, TypeError],
  ];
  for (const [options, Class] of badPacket) {
    assert.throws(() => openPacket(options as never), Class, JSON.stringify(options));
  }
  assert.deepEqual(socketCounts(), before);
});

Deno.test({
  name: "RawSocket.send() checks the buffer and the destination's shape and family",
  ...needs("CAP_NET_RAW"),
  async fn() {
    using sock = openRaw({ family: "ipv4", protocol: 253 });
    await assert.rejects(sock.send(new Uint8Array(1), LOOP6), TypeError);
    await assert.rejects(sock.send(new Uint8Array(1), { hostname: 1 } as never), TypeError);
    await assert.rejects(
      sock.send(new Uint8Array(1), { transport: "udp", hostname: "127.0.0.1" } as never),
      TypeError,
    );
    await assert.rejects(
      sock.send(new Uint8Array(1), { transport: "ip", hostname: "x" }),
      TypeError,
    );
    await assert.rejects(
      sock.send(new Uint8Array(new SharedArrayBuffer(4)), LOOP4),
      TypeError,
    );
    await assert.rejects(
      sock.send(new Uint8Array(new ArrayBuffer(4, { maxByteLength: 8 })), LOOP4),
      TypeError,
    );
    // Unconnected and no destination: NotConnected, as on every type, the socket named.
    await assert.rejects(sock.write(new Uint8Array(1)), (e: Error) => {
      assert.ok(e instanceof Deno.errors.NotConnected);
      assert.match(e.message, /^send "ipv4\/253": socket is not connected/);
      return true;
    });
    await assert.rejects(
      sock.send(new Uint8Array(70000), LOOP4),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, "EMSGSIZE");
        assert.match(e.message, /70000 bytes/);
        return true;
      },
    );
  },
});

/** Writes `source` to a fresh temporary file and returns its path and the directory. */
function script(dir: string, name: string, source: string): string {
  const path = `${dir}/${name}`;
  Deno.writeTextFileSync(path, source);
  return path;
}

const PERMISSION_CHILD = `
const { openRaw, openPacket } = await import(Deno.args[0]);
const out = {};
async function attempt(name, f) {
  try { await f(); out[name] = "ok"; } catch (e) { out[name] = e.name + ": " + e.message; }
}
const sock = openRaw({ family: "ipv4", protocol: 253 });
await attempt("send4", () => sock.send(new Uint8Array(1), { transport: "ip", hostname: "127.0.0.1" }));
await attempt("connect4", () => sock.connect({ transport: "ip", hostname: "127.0.0.1" }));
const six = openRaw({ family: "ipv6", protocol: 253 });
await attempt("send6", () => six.send(new Uint8Array(1), { transport: "ip", hostname: "::1" }));
await attempt("packet", () => openPacket({ interface: "lo" }).close());
console.log(JSON.stringify(out));
`;

Deno.test({
  name: "raw sockets honour --allow-net: destinations need net access, packet sockets all of it",
  ...needs("CAP_NET_RAW"),
  async fn() {
    using dir = tempDir();
    const path = script(dir.path, "child.ts", PERMISSION_CHILD);
    // deno-lint-ignore no-explicit-any
    const runWith = (flags: string[]): Promise<any> => denoJson(path, { flags, args: [RAW_URL] });
    const none = await runWith(["--allow-ffi", "--allow-read"]);
    assert.match(none.send4, /^NotCapable: .*net access to "127\.0\.0\.1".*--allow-net/);
    assert.match(none.connect4, /^NotCapable: .*"127\.0\.0\.1"/);
    assert.match(none.send6, /^NotCapable: .*"\[::1\]"/);
    assert.match(none.packet, /^NotCapable: .*--allow-net/);
    const scoped = await runWith(["--allow-ffi", "--allow-read", "--allow-net=127.0.0.1"]);
    assert.deepEqual(
      { ...scoped, send6: scoped.send6.split(":")[0], packet: scoped.packet.split(":")[0] },
      { send4: "ok", connect4: "ok", send6: "NotCapable", packet: "NotCapable" },
    );
  },
});

const NO_CAP_CHILD = `
const { openRaw, openPacket } = await import(Deno.args[0]);
const { openSocketCount } = await import(Deno.args[1]);
const fds = () => new TextDecoder().decode(
  new Deno.Command("ls", { args: ["-l", "/proc/" + Deno.pid + "/fd"] }).outputSync().stdout,
).split("\\n").filter((l) => l.includes("socket:[")).length;
const out = { before: { fds: fds(), ledger: openSocketCount() }, errors: {} };
for (const [name, open] of [
  ["icmp", () => openRaw({ family: "ipv4", protocol: "icmp" })],
  ["icmpv6", () => openRaw({ family: "ipv6", protocol: "icmpv6" })],
  ["udp", () => openRaw({ family: "ipv4", protocol: "udp" })],
  ["packet", () => openPacket({ interface: "lo" })],
]) {
  try { open().close(); out.errors[name] = "opened"; }
  catch (e) { out.errors[name] = { name: e.name, code: e.code, message: e.message }; }
}
out.after = { fds: fds(), ledger: openSocketCount() };
console.log(JSON.stringify(out));
`;

Deno.test({
  name: "without CAP_NET_RAW, openRaw() and openPacket() throw PermissionDenied with a hint " +
    "and leave no descriptor behind",
  ...needs("CAP_NET_RAW"), // only a process that has it can drop it
  async fn() {
    using dir = tempDir();
    const path = script(dir.path, "child.ts", NO_CAP_CHILD);
    const drop = [...DROP_NET_RAW];
    const out = await denoRun(path, {
      flags: ["--allow-ffi", "--allow-read", "--allow-net", "--allow-run=ls"],
      args: [RAW_URL, SOCKET_URL],
      prefix: drop,
    }).output();
    assert.equal(out.code, 0);
    const r = JSON.parse(decoder.decode(out.stdout));
    assert.deepEqual(r.after, r.before);
    for (const name of ["icmp", "icmpv6", "udp", "packet"]) {
      assert.equal(r.errors[name].name, "PermissionDenied", name);
      assert.equal(r.errors[name].code, "EPERM", name);
      assert.match(r.errors[name].message, /CAP_NET_RAW/, name);
    }
    assert.match(r.errors.icmp.message, /^socket "ipv4\/icmp": operation not permitted: /);
    assert.match(r.errors.icmp.message, /unprivileged: true/);
    assert.match(r.errors.icmpv6.message, /unprivileged: true/);
    assert.doesNotMatch(r.errors.udp.message, /unprivileged/, "ping sockets carry only ICMP");
  },
});

// ---------------------------------------------------------------------------
// Unprivileged ICMP in a network namespace

const PING_CHILD = `
const { openRaw } = await import(Deno.args[0]);
const { decodeEcho, encodeEcho } = await import(Deno.args[1]);
const uid = Deno.uid();
const out = { uid };
for (const [family, hostname] of [["ipv4", "127.0.0.1"], ["ipv6", "::1"]]) {
  try {
    using sock = openRaw({ family, protocol: "icmp", unprivileged: true });
    const data = new TextEncoder().encode("unprivileged " + family);
    // Not the socket's identifier: the kernel replaces it.
    const sent = (sock.echoId + 1) & 0xffff;
    await sock.send(encodeEcho({ family, id: sent, sequence: 5, data }), { transport: "ip", hostname });
    const m = await sock.receive({ signal: AbortSignal.timeout(5000) });
    const e = decodeEcho(m.data, family, family === "ipv6" ? { source: "::1", destination: "::1" } : undefined);
    out[family] = {
      echoId: sock.echoId, sent, id: e.id, sequence: e.sequence, type: e.type,
      checksumValid: e.checksumValid, data: new TextDecoder().decode(e.data),
      length: m.data.length, from: m.from, unprivileged: sock.unprivileged,
    };
  } catch (e) {
    out[family] = { error: e.name, message: e.message };
  }
}
console.log(JSON.stringify(out));
`;

/** Runs the ping child inside `ns`, as root or as nobody, and returns its report. */
async function pingInNamespace(
  ns: NetNs,
  dir: string,
  as: "root" | "nobody",
): Promise<Record<string, Record<string, unknown>> & { uid: number }> {
  const path = script(dir, "ping.ts", PING_CHILD);
  let deno = Deno.execPath();
  const env: Record<string, string> = {};
  const prefix = ns.wrap([]);
  if (as === "nobody") {
    // The test's deno may sit where nobody cannot reach it (under /root):
    // give nobody a link to it, and a cache directory of its own.
    deno = `${dir}/deno`;
    try {
      Deno.linkSync(Deno.execPath(), deno);
    } catch {
      Deno.copyFileSync(Deno.execPath(), deno);
    }
    Deno.mkdirSync(`${dir}/cache`);
    Deno.chownSync(`${dir}/cache`, 65534, 65534);
    env.DENO_DIR = `${dir}/cache`;
    env.HOME = dir;
    prefix.push("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups");
  }
  Deno.chmodSync(dir, 0o755);
  Deno.chmodSync(path, 0o644);
  const child = new Deno.Command(prefix[0], {
    args: [
      ...prefix.slice(1),
      deno,
      "run",
      "--quiet",
      "--no-prompt",
      "--allow-ffi",
      "--allow-read",
      "--allow-sys=uid",
      "--allow-net=127.0.0.1,[::1]",
      path,
      RAW_URL,
      ICMP_URL,
    ],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  });
  const out = await deadline(child.output(), 60_000, "the ping child");
  assert.equal(out.code, 0, "the ping child failed");
  return JSON.parse(decoder.decode(out.stdout));
}

function assertPinged(report: Record<string, Record<string, unknown>>, family: string): void {
  const r = report[family];
  assert.equal(r.error, undefined, `${family}: ${r.message}`);
  assert.equal(r.type, "reply");
  assert.equal(r.id, r.echoId, "the reply carries the socket's identifier");
  assert.notEqual(r.id, r.sent, "the kernel replaced the identifier sent");
  assert.equal(r.sequence, 5);
  assert.equal(r.checksumValid, true);
  assert.equal(r.data, `unprivileged ${family}`);
  assert.equal(r.length, 8 + `unprivileged ${family}`.length, "no IP header on ping sockets");
  assert.equal(r.unprivileged, true);
  assert.deepEqual(r.from, family === "ipv4" ? LOOP4 : LOOP6);
}

Deno.test({
  name: "openRaw({ unprivileged }) pings its namespace's loopback when ping_group_range admits " +
    "the group, as root and as nobody",
  ...needs("CAP_NET_ADMIN"),
  async fn() {
    using ns = new NetNs({ pingGroups: "0 2147483647" });
    using dir = tempDir();
    const root = await pingInNamespace(ns, dir.path, "root");
    assert.equal(root.uid, 0);
    assertPinged(root, "ipv4");
    assertPinged(root, "ipv6");
    const nobody = await pingInNamespace(ns, dir.path, "nobody");
    assert.equal(nobody.uid, 65534);
    assertPinged(nobody, "ipv4");
    assertPinged(nobody, "ipv6");
  },
});

Deno.test({
  name:
    "openRaw({ unprivileged }) outside ping_group_range throws PermissionDenied naming the sysctl",
  ...needs("CAP_NET_ADMIN"),
  async fn() {
    using ns = new NetNs({ pingGroups: "1 0" }); // no group at all, root's included
    using dir = tempDir();
    const report = await pingInNamespace(ns, dir.path, "root");
    for (const family of ["ipv4", "ipv6"]) {
      assert.equal(report[family].error, "PermissionDenied", family);
      assert.match(String(report[family].message), /net\.ipv4\.ping_group_range/);
    }
  },
});

// ---------------------------------------------------------------------------
// AF_PACKET on a veth pair

const SEND_UDP_PY = `
import socket, sys
dst, match, other = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
for payload, port in [(b"other-1", other), (b"match-1", match), (b"other-2", other), (b"match-2", match)]:
    s.sendto(payload, (dst, port))
print(s.getsockname()[1])
`;

const CAPTURE_PY = `
import json, select, socket, sys, time
ifname, marker = sys.argv[1], bytes.fromhex(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
s.bind((ifname, 0x88b5))
print("ready", flush=True)
limit = time.monotonic() + 10
while time.monotonic() < limit:
    if not select.select([s], [], [], 0.5)[0]:
        continue
    data, addr = s.recvfrom(65535)
    if marker in data:
        print(json.dumps({"frame": data.hex(), "ifname": addr[0], "protocol": addr[1], "pkttype": addr[2]}))
        break
else:
    print(json.dumps({"timeout": True}))
`;

/** The UDP payload of an Ethernet frame carrying IPv4 (`offset` 14) or of a cooked packet (0). */
function udpPayload(data: Uint8Array, offset: number): { port: number; text: string } | undefined {
  if (offset === 14 && (data[12] !== 0x08 || data[13] !== 0x00)) return undefined;
  const ip = decodeIPv4Header(data.subarray(offset));
  if (ip.protocol !== 17) return undefined;
  const view = new DataView(ip.payload.buffer, ip.payload.byteOffset);
  return { port: view.getUint16(2), text: decoder.decode(ip.payload.subarray(8)) };
}

Deno.test({
  name: "openPacket() on a veth pair: captures with the right LinkAddr, filters by UDP port, " +
    "and injects a frame the peer receives",
  ...needs("CAP_NET_RAW", "CAP_NET_ADMIN", "python3"),
  async fn() {
    using ns = new NetNs();
    using veth = new VethPair(ns);
    const subnet = 64 + (Deno.pid % 128);
    const peerIp = `10.${subnet}.0.1`, ourIp = `10.${subnet}.0.2`;
    ns.ip("addr", "add", `${peerIp}/24`, "dev", veth.b.name);
    // Our end has no address: a static neighbour lets the peer send to it
    // without ARP, and our kernel drops the datagrams after capture.
    ns.ip(
      "neigh",
      "add",
      ourIp,
      "lladdr",
      [...veth.a.mac].map((b) => b.toString(16).padStart(2, "0")).join(":"),
      "dev",
      veth.b.name,
      "nud",
      "permanent",
    );
    const matchPort = 40000 + (Deno.pid % 10000), otherPort = matchPort + 1;
    const filter = compileFilter({ ipProtocol: "udp", port: matchPort }, { link: "ethernet" });

    using all = openPacket({ interface: veth.a.name });
    using filtered = openPacket({ interface: veth.a.name, filter });
    using later = openPacket({ interface: veth.a.name, protocol: "ipv4", immediate: true });
    later.setFilter(filter);
    using cooked = openPacket({ interface: veth.a.name, protocol: "ipv4", cooked: true });
    using watch = openPacket({
      interface: veth.a.name,
      filter: compileFilter({ etherType: 0x88b5 }, { link: "ethernet" }),
    });
    assert.deepEqual(all.localAddr, {
      transport: "packet",
      interface: veth.a.name,
      ifindex: veth.a.ifindex,
      protocol: 0x0003,
      address: veth.a.mac,
      packetType: "host",
    });
    assert.equal(later.localAddr.protocol, 0x0800);

    const sourcePort = Number(
      ns.exec(["python3", "-c", SEND_UDP_PY, ourIp, `${matchPort}`, `${otherPort}`]),
    );

    // The unfiltered socket sees everything, "other" datagrams included.
    const seen: string[] = [];
    const { message } = await receiveUntil(all, (m) => {
      const udp = udpPayload(m.data, 14);
      if (udp) seen.push(udp.text);
      return udp?.text === "match-2" ? udp : undefined;
    }, "match-2 on the unfiltered socket");
    assert.deepEqual(seen.filter((t) => /^(other|match)-/.test(t)), [
      "other-1",
      "match-1",
      "other-2",
      "match-2",
    ]);
    const from = message.from as LinkAddr;
    assert.deepEqual(from, {
      transport: "packet",
      interface: veth.a.name,
      ifindex: veth.a.ifindex,
      protocol: 0x0800,
      address: veth.b.mac,
      packetType: "host",
    });
    assert.deepEqual(message.data.subarray(0, 6), veth.a.mac, "destination MAC");
    assert.deepEqual(message.data.subarray(6, 12), veth.b.mac, "source MAC");

    // The filtered sockets see exactly the two matching datagrams, in order.
    for (const sock of [filtered, later]) {
      const texts: string[] = [];
      for (let i = 0; i < 2; i++) {
        const m = await deadline(sock.receive(), 5000, "a matching datagram");
        const udp = udpPayload(m!.data, 14);
        assert.equal(udp?.port, matchPort);
        texts.push(udp!.text);
      }
      assert.deepEqual(texts, ["match-1", "match-2"]);
      assert.deepEqual(sock.statistics(), { received: 2, dropped: 0 });
      assert.deepEqual(sock.statistics(), { received: 0, dropped: 0 }, "reading resets them");
    }

    // A cooked socket starts at the IPv4 header.
    const cookedTexts: string[] = [];
    while (cookedTexts.length < 4) {
      const m = await deadline(cooked.receive(), 5000, "a cooked packet");
      assert.equal(m!.data[0] >> 4, 4);
      assert.equal(m!.from?.protocol, 0x0800);
      const udp = udpPayload(m!.data, 0);
      if (
        udp && new DataView(m!.data.buffer, m!.data.byteOffset + 20).getUint16(0) === sourcePort
      ) {
        cookedTexts.push(udp.text);
      }
    }
    assert.deepEqual(cookedTexts, ["other-1", "match-1", "other-2", "match-2"]);

    // Inject a frame on our end; Python captures it on the peer's.
    const marker = crypto.getRandomValues(new Uint8Array(16));
    const frame = new Uint8Array(80);
    frame.set(veth.b.mac, 0);
    frame.set(veth.a.mac, 6);
    frame.set([0x88, 0xb5], 12); // IEEE local experimental EtherType
    frame.set(marker, 20);
    await using child = ns.spawn([
      "python3",
      "-u",
      "-c",
      CAPTURE_PY,
      veth.b.name,
      toHex(marker),
    ]);
    const out = lines(child.stdout);
    assert.equal(await nextLine(out, 10_000), "ready");
    assert.equal(await all.send(frame), frame.length);
    const got = JSON.parse(await nextLine(out, 15_000));
    assert.deepEqual(got, {
      frame: toHex(frame),
      ifname: veth.b.name,
      protocol: 0x88b5,
      pkttype: 0, // PACKET_HOST: addressed to the peer's MAC
    });
    // Another socket on the interface sees it leave; the sender itself does not.
    const outgoing = await deadline(watch.receive(), 5000, "our frame, outgoing");
    assert.equal(toHex(outgoing!.data), toHex(frame));
    assert.equal(outgoing!.from?.packetType, "outgoing");
    assert.equal(outgoing!.from?.protocol, 0x88b5);
    assert.deepEqual(outgoing!.from?.address, veth.a.mac);
  },
});

Deno.test({
  name:
    "openPacket() ring: a full ring drops the tail and counts it; what was kept arrives in order",
  ...needs("CAP_NET_RAW", "CAP_NET_ADMIN"),
  async fn() {
    using ns = new NetNs();
    using veth = new VethPair(ns);
    const etherType = 0x88b5;
    // Frames this process sends are seen leaving by its other sockets on
    // the interface: the capture socket reads nothing until all are sent.
    using capture = openPacket({
      interface: veth.a.name,
      filter: compileFilter({ etherType }, { link: "ethernet" }),
      bufferSize: 1, // the minimum: 4 MiB, about 29,000 frames of 60 bytes
    });
    using tx = openPacket({ interface: veth.a.name, protocol: etherType });
    const total = 40_000;
    const frame = new Uint8Array(60);
    frame.set(veth.b.mac, 0);
    frame.set(veth.a.mac, 6);
    frame.set([etherType >> 8, etherType & 0xff], 12);
    const view = new DataView(frame.buffer);
    for (let i = 0; i < total; i++) {
      view.setUint32(14, i);
      await tx.send(frame);
    }
    const big = new Uint8Array(1000);
    big.set(frame.subarray(0, 14));
    const { received, dropped } = capture.statistics();
    assert.equal(received + dropped, total);
    assert.ok(dropped > 0, "the ring never filled");
    for (let i = 0; i < received; i++) {
      const m = await deadline(capture.receive({ maxSize: 64 }), 5000, `frame ${i}`);
      assert.equal(new DataView(m!.data.buffer, m!.data.byteOffset).getUint32(14), i);
    }
    // Room again: a long frame arrives, cut to maxSize and marked so.
    await tx.send(big);
    const cut = await deadline(capture.receive({ maxSize: 100 }), 5000, "the long frame");
    assert.equal(cut?.data.length, 100);
    assert.equal(cut?.truncated, true);
    assert.deepEqual(capture.statistics(), { received: 1, dropped: 0 });
  },
});

Deno.test({
  name:
    "openPacket() on a missing interface throws NotFound; a cooked send without one is NotConnected",
  ...needs("CAP_NET_RAW"),
  async fn() {
    const before = openSocketCount();
    assert.throws(
      () => openPacket({ interface: "bsdnosuch0" }),
      (e) =>
        e instanceof Deno.errors.NotFound &&
        e.message === 'openPacket "bsdnosuch0": no such network interface',
    );
    assert.equal(openSocketCount(), before);
    using cooked: LinkSocket = openPacket({ interface: "lo", protocol: 0x88b5, cooked: true });
    await assert.rejects(cooked.write(new Uint8Array(20)), Deno.errors.NotConnected);
    await assert.rejects(cooked.send(new Uint8Array(20), "lo" as never), TypeError);
  },
});

// ---------------------------------------------------------------------------
// Examples

const EXAMPLES = new URL("../examples/", import.meta.url).pathname;

Deno.test({
  name: "examples/ping.ts pings 127.0.0.1 and prints ping's summary",
  ...needs("CAP_NET_RAW"),
  async fn() {
    const out = await denoRun(`${EXAMPLES}ping.ts`, {
      flags: ["--allow-ffi", "--allow-net=127.0.0.1"],
      args: ["-c", "3", "-i", "0", "-s", "20"],
    }).output();
    const text = decoder.decode(out.stdout);
    assert.equal(out.code, 0, text);
    for (let seq = 1; seq <= 3; seq++) {
      assert.match(
        text,
        new RegExp(`^28 bytes from 127\\.0\\.0\\.1: icmp_seq=${seq} ttl=64 `, "m"),
      );
    }
    assert.match(text, /^3 packets transmitted, 3 received, 0% packet loss/m);
    assert.match(text, /^rtt min\/avg\/max\/mdev = [\d.]+\/[\d.]+\/[\d.]+\/[\d.]+ ms$/m);
  },
});

Deno.test({
  name: "examples/ping.ts --unprivileged pings ::1 over a ping socket in a namespace",
  ...needs("CAP_NET_ADMIN"),
  async fn() {
    using ns = new NetNs({ pingGroups: "0 2147483647" });
    const out = await denoRun(`${EXAMPLES}ping.ts`, {
      flags: ["--allow-ffi", "--allow-net=[::1]"],
      args: ["-c", "2", "-i", "0", "--unprivileged", "::1"],
      prefix: ns.wrap([]),
    }).output();
    const text = decoder.decode(out.stdout);
    assert.equal(out.code, 0, text);
    assert.match(text, /^PING ::1: 56 data bytes \(ping socket\)$/m);
    assert.match(text, /^64 bytes from ::1: icmp_seq=2 ttl=64 time=/m);
    assert.match(text, /^2 packets transmitted, 2 received, 0% packet loss/m);
  },
});

Deno.test({
  name: "examples/sniff.ts prints one line per packet on its port, and none for another port",
  ...needs("CAP_NET_ADMIN", "python3"),
  async fn() {
    using ns = new NetNs(); // a loopback of its own: only this test's traffic
    await using child = ns.spawn([
      Deno.execPath(),
      "run",
      "--quiet",
      "--allow-ffi",
      "--allow-net",
      `${EXAMPLES}sniff.ts`,
      "-i",
      "lo",
      "-p",
      "45000",
      "-c",
      "2",
      "-t",
      "20",
    ], { stderr: "piped" });
    const status = lines(child.stderr);
    assert.match(await nextLine(status, 15_000), /^capturing on lo, port 45000/);
    ns.exec([
      "python3",
      "-c",
      "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); " +
      "s.sendto(b'no', ('127.0.0.1', 45001)); s.sendto(b'yes', ('127.0.0.1', 45000))",
    ]);
    const stdout = await deadline(new Response(child.stdout).text(), 20_000, "sniff.ts output");
    assert.equal((await child.status).code, 0);
    const printed = stdout.trim().split("\n");
    assert.equal(printed.length, 2, printed.join("\n"));
    // Loopback shows each datagram leaving and arriving.
    assert.deepEqual(printed.map((l) => l.split(" ")[2]).sort(), ["host", "outgoing"]);
    for (const line of printed) {
      assert.match(line, / lo (host|outgoing) 00:00:00:00:00:00 > 00:00:00:00:00:00 UDP /);
      assert.match(line, /127\.0\.0\.1:\d+ > 127\.0\.0\.1:45000 45 B$/);
    }
  },
});
