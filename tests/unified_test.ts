// Tests for the answers every socket type gives alike (issue 11): a send with
// no destination, an unknown interface, the buffer-size option names, sync
// setters, and a permission revoked while a socket is open.

import assert from "node:assert/strict";
import { type DatagramBackend, listenDatagram } from "../datagram.ts";
import { openNetlink, setLinkUp } from "../netlink.ts";
import { openPacket, openRaw } from "../raw.ts";
import { seqpacketPair } from "../seqpacket.ts";
import { connectStream, listenStream } from "../stream.ts";
import { denoJson, denoRun, needs, socketFdCount, tempDir } from "./_helpers.ts";

const BUILTIN_PRESENT = typeof (Deno as { listenDatagram?: unknown }).listenDatagram ===
  "function";
const BACKENDS: DatagramBackend[] = BUILTIN_PRESENT ? ["ffi", "builtin"] : ["ffi"];
const CHILD = new URL("./peers/revoke_child.ts", import.meta.url).pathname;
const NO_SUCH = "unnosuch0";

let sockopt: {
  getsockopt(fd: number, level: number, name: number, out: Uint8Array, len: Uint8Array): number;
} | undefined;

/** An int socket option as the kernel reports it (getsockopt): what the test checks against. */
function intOption(fd: number, level: number, name: number): number {
  sockopt ??= Deno.dlopen("libc.so.6", {
    getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  }).symbols;
  const out = new Uint8Array(4);
  const len = new Uint8Array(new Uint32Array([4]).buffer);
  assert.equal(sockopt.getsockopt(fd, level, name, out, len), 0, "getsockopt failed");
  return new DataView(out.buffer).getInt32(0, true);
}

const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const IPPROTO_IP = 0;
const IP_MULTICAST_TTL = 33;
const IP_MULTICAST_LOOP = 34;

// ---------------------------------------------------------------------------
// A send with no destination

for (const backend of BACKENDS) {
  Deno.test(`[${backend}] datagram: a send with no destination on an unconnected socket is NotConnected`, async () => {
    using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, backend });
    using dir = tempDir();
    using unix = listenDatagram({ path: `${dir.path}/u.sock`, backend });
    for (const s of [sock, unix]) {
      await assert.rejects(s.send(new Uint8Array(64)), Deno.errors.NotConnected);
      await assert.rejects(s.write(new Uint8Array(64)), Deno.errors.NotConnected);
      await assert.rejects(
        s.sendMany([{ data: new Uint8Array(1) }]),
        (e: Error) => e instanceof Deno.errors.NotConnected && /not connected/.test(e.message),
      );
    }
  });
}

Deno.test({
  name:
    "raw and cooked packet: a send with no destination on an unconnected socket is NotConnected",
  ...needs("CAP_NET_RAW"),
  async fn() {
    using raw = openRaw({ family: "ipv6", protocol: 253 });
    await assert.rejects(
      raw.send(new Uint8Array(64)),
      (e: Error) => e instanceof Deno.errors.NotConnected && /^send "ipv6\/253"/.test(e.message),
    );
    await assert.rejects(raw.write(new Uint8Array(64)), Deno.errors.NotConnected);
    using cooked = openPacket({ interface: "lo", protocol: 0x88b5, cooked: true, immediate: true });
    await assert.rejects(
      cooked.send(new Uint8Array(64)),
      (e: Error) => e instanceof Deno.errors.NotConnected && /^send "lo"/.test(e.message),
    );
    await assert.rejects(cooked.write(new Uint8Array(64)), Deno.errors.NotConnected);
    // A destination on an interface that does not exist: NotFound, as everywhere.
    await assert.rejects(
      cooked.send(new Uint8Array(64), { ...cooked.localAddr, ifindex: 0x7ffffff0 }),
      (e: Error) => e instanceof Deno.errors.NotFound && /index 2147483632/.test(e.message),
    );
    // After close the answer is the closed socket's, as on every type.
    raw.close();
    await assert.rejects(raw.write(new Uint8Array(1)), Deno.errors.BadResource);
  },
});

// ---------------------------------------------------------------------------
// An unknown interface

function notFoundNaming(name: string): (e: Error) => boolean {
  return (e) => e instanceof Deno.errors.NotFound && e.message.includes(name);
}

Deno.test("an unknown interface is NotFound naming it, before any socket is made", async () => {
  const before = socketFdCount();
  assert.throws(
    () => listenDatagram({ hostname: "127.0.0.1", port: 0, multicastInterface: NO_SUCH }),
    notFoundNaming(`"${NO_SUCH}"`),
  );
  assert.throws(
    () => listenDatagram({ hostname: "127.0.0.1", port: 0, multicastInterface: 0x7ffffff0 }),
    notFoundNaming("index 2147483632"),
  );
  await assert.rejects(setLinkUp(NO_SUCH, true), notFoundNaming(`"${NO_SUCH}"`));
  await assert.rejects(setLinkUp(0x7ffffff0, true), notFoundNaming("index 2147483632"));
  assert.equal(socketFdCount(), before);
});

Deno.test({
  name: "raw and packet: an unknown interface is NotFound naming it, before any socket is made",
  ...needs("CAP_NET_RAW"),
  fn() {
    const before = socketFdCount();
    assert.throws(
      () => openRaw({ family: "ipv4", protocol: 253, interface: NO_SUCH }),
      notFoundNaming(`openRaw "${NO_SUCH}"`),
    );
    assert.throws(
      () => openPacket({ interface: NO_SUCH }),
      notFoundNaming(`openPacket "${NO_SUCH}"`),
    );
    assert.equal(socketFdCount(), before);
  },
});

Deno.test("[ffi] an IPv6 destination whose zone names no interface is NotFound naming it", async () => {
  using sock = listenDatagram({ hostname: "::1", port: 0, backend: "ffi" });
  await assert.rejects(
    sock.send(new Uint8Array(1), { transport: "udp", hostname: `fe80::1%${NO_SUCH}`, port: 9 }),
    notFoundNaming(`"${NO_SUCH}"`),
  );
});

for (const backend of BACKENDS) {
  Deno.test(`[${backend}] joinMulticast on an unknown interface is NotFound naming it`, async () => {
    using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, backend });
    await assert.rejects(
      sock.joinMulticast("239.255.0.1", { interface: NO_SUCH }),
      notFoundNaming(`"${NO_SUCH}"`),
    );
  });
}

// ---------------------------------------------------------------------------
// Buffer sizes: receiveBufferSize and sendBufferSize on every FFI type

// Linux doubles what it is given for its bookkeeping; as root the FORCE
// options grant sizes past the sysctl limits, so the doubled value is exact.
const RECEIVE = 300_000;
const SEND = 200_000;

function assertSizes(fd: number | null, what: string): void {
  assert.ok(fd !== null, `${what}: no descriptor`);
  assert.equal(intOption(fd, SOL_SOCKET, SO_RCVBUF), 2 * RECEIVE, `${what}: SO_RCVBUF`);
  assert.equal(intOption(fd, SOL_SOCKET, SO_SNDBUF), 2 * SEND, `${what}: SO_SNDBUF`);
}

const SIZES = { receiveBufferSize: RECEIVE, sendBufferSize: SEND };

Deno.test({
  name: "receiveBufferSize and sendBufferSize set both buffers on datagram, seqpacket and netlink",
  ...needs("CAP_NET_ADMIN"),
  fn() {
    using udp = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi", ...SIZES });
    assertSizes(udp.fd, "udp");
    using dir = tempDir();
    using unix = listenDatagram({ path: `${dir.path}/u.sock`, backend: "ffi", ...SIZES });
    assertSizes(unix.fd, "unixgram");
    const [a, b] = seqpacketPair(SIZES);
    try {
      assertSizes(a.fd, "seqpacket");
      assertSizes(b.fd, "seqpacket");
    } finally {
      a.close();
      b.close();
    }
    using netlink = openNetlink({ protocol: "route", ...SIZES });
    assertSizes(netlink.fd, "netlink");
  },
});

Deno.test({
  name: "receiveBufferSize and sendBufferSize on FFI streams: listener, accepted and client",
  ...needs("CAP_NET_ADMIN"),
  async fn() {
    using listener = listenStream({ hostname: "127.0.0.1", port: 0, backend: "ffi", ...SIZES });
    assertSizes(listener.fd, "listener");
    using client = await connectStream({
      hostname: "127.0.0.1",
      port: listener.addr.port,
      backend: "ffi",
      ...SIZES,
    });
    assertSizes(client.fd, "client");
    using accepted = await listener.accept();
    assertSizes(accepted.fd, "accepted");
  },
});

Deno.test("the built-in stream backend refuses buffer sizes, naming the option and the fix", async () => {
  const before = socketFdCount();
  assert.throws(
    () => listenStream({ hostname: "127.0.0.1", port: 0, receiveBufferSize: RECEIVE }),
    (e: Error) =>
      e instanceof Deno.errors.NotSupported &&
      /receiveBufferSize; use backend: "ffi"/.test(e.message),
  );
  await assert.rejects(
    connectStream({ hostname: "127.0.0.1", port: 9, sendBufferSize: SEND }),
    (e: Error) =>
      e instanceof Deno.errors.NotSupported && /sendBufferSize; use backend: "ffi"/.test(e.message),
  );
  assert.equal(socketFdCount(), before);
});

Deno.test({
  name: "receiveBufferSize and sendBufferSize set both buffers on raw and packet sockets",
  ...needs("CAP_NET_RAW", "CAP_NET_ADMIN"),
  fn() {
    using raw = openRaw({ family: "ipv6", protocol: 253, ...SIZES });
    assertSizes(raw.fd, "raw");
    using packet = openPacket({ interface: "lo", immediate: true, ...SIZES });
    assertSizes(packet.fd, "packet");
    // The deprecated name still works, and one name only may be given.
    using old = openPacket({ interface: "lo", immediate: true, bufferSize: RECEIVE });
    assert.equal(intOption(old.fd!, SOL_SOCKET, SO_RCVBUF), 2 * RECEIVE);
    const before = socketFdCount();
    assert.throws(
      () => openPacket({ interface: "lo", bufferSize: RECEIVE, receiveBufferSize: RECEIVE }),
      TypeError,
    );
    assert.equal(socketFdCount(), before);
  },
});

Deno.test("buffer sizes are checked alike on every type, before any system call", () => {
  const before = socketFdCount();
  const opens: [string, (sizes: Record<string, unknown>) => unknown][] = [
    ["listenDatagram", (s) => listenDatagram({ hostname: "127.0.0.1", port: 0, ...s })],
    ["seqpacketPair", (s) => seqpacketPair(s)],
    ["openNetlink", (s) => openNetlink({ protocol: "route", ...s })],
    ["openRaw", (s) => openRaw({ family: "ipv6", protocol: 253, ...s })],
    ["openPacket", (s) => openPacket({ interface: "lo", ...s })],
    ["listen", (s) => listenStream({ hostname: "127.0.0.1", port: 0, backend: "ffi", ...s })],
  ];
  for (const [call, open] of opens) {
    for (const name of ["receiveBufferSize", "sendBufferSize"]) {
      assert.throws(
        () => open({ [name]: 0 }),
        (e: Error) => e instanceof RangeError && e.message.startsWith(`${call}: ${name}`),
        `${call} ${name}: 0`,
      );
      assert.throws(() => open({ [name]: 1.5 }), TypeError, `${call} ${name}: 1.5`);
      assert.throws(() => open({ [name]: "1" }), TypeError, `${call} ${name}: "1"`);
    }
  }
  assert.equal(socketFdCount(), before);
});

// ---------------------------------------------------------------------------
// Setters: sync where the setting is one setsockopt

Deno.test("[ffi] datagram multicast setters are synchronous and set the option at once", () => {
  using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
  assert.equal(sock.setMulticastTtl(7), undefined);
  assert.equal(intOption(sock.fd!, IPPROTO_IP, IP_MULTICAST_TTL), 7);
  assert.equal(sock.setMulticastLoopback(false), undefined);
  assert.equal(intOption(sock.fd!, IPPROTO_IP, IP_MULTICAST_LOOP), 0);
  assert.equal(sock.setBroadcast(false), undefined);
  assert.throws(() => sock.setMulticastTtl(256), RangeError);
  assert.throws(() => sock.setMulticastLoopback(1 as never), TypeError);
});

Deno.test({
  name: "[builtin] datagram multicast setters still return a promise, bad input throws at once",
  ignore: !BUILTIN_PRESENT,
  async fn() {
    using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "builtin" });
    // Without a membership the built-in cannot set them: a rejection, as before.
    const ttl = sock.setMulticastTtl(7);
    assert.ok(ttl instanceof Promise);
    await assert.rejects(ttl, Deno.errors.NotSupported);
    await assert.rejects(
      async () => await sock.setMulticastLoopback(false),
      Deno.errors.NotSupported,
    );
    assert.throws(() => sock.setMulticastTtl(256), RangeError);
    assert.equal(sock.setBroadcast(true), undefined);
  },
});

// ---------------------------------------------------------------------------
// A permission revoked while a socket is open

interface RevokeCase {
  kind: string;
  sync?: boolean;
  /** Grants beyond --allow-ffi; the child revokes the whole of one. */
  flags: (dir: string) => string[];
  needs?: "CAP_NET_RAW";
}

const NET_LOOPBACK = "--allow-net=127.0.0.1,[::1]";
const UNIX = (dir: string) => ["--allow-net", `--allow-read=${dir}`, `--allow-write=${dir}`];
const REVOKE_CASES: RevokeCase[] = [
  { kind: "udp-ffi", flags: () => [NET_LOOPBACK] },
  { kind: "udp-ffi", flags: () => [NET_LOOPBACK], sync: true },
  { kind: "udp-connected", flags: () => [NET_LOOPBACK] },
  { kind: "unixgram", flags: UNIX },
  { kind: "seqpacket", flags: UNIX },
  { kind: "stream-ffi", flags: () => [NET_LOOPBACK] },
  { kind: "stream-builtin", flags: () => [NET_LOOPBACK] },
  { kind: "stream-accepted", flags: () => [NET_LOOPBACK] },
  { kind: "raw", flags: () => [NET_LOOPBACK], needs: "CAP_NET_RAW" },
  { kind: "packet", flags: () => ["--allow-net"], needs: "CAP_NET_RAW" },
];
if (BUILTIN_PRESENT) REVOKE_CASES.push({ kind: "udp-builtin", flags: () => [NET_LOOPBACK] });

for (const c of REVOKE_CASES) {
  Deno.test({
    name: `${c.kind}: a permission revoked${
      c.sync ? " (revokeSync)" : ""
    } while the socket is open fails its next send`,
    ...(c.needs ? needs(c.needs) : {}),
    async fn() {
      using dir = tempDir();
      const result = await denoJson(CHILD, {
        flags: ["--unstable-net", "--allow-ffi", ...c.flags(dir.path)],
        args: [c.kind, dir.path, c.sync ? "sync" : "async"],
      });
      assert.deepEqual(result, { before: 64, after: "NotCapable" });
    },
  });
}

Deno.test("importing mod.ts leaves Deno.permissions as it was: the revocation count starts with the first socket", async () => {
  using dir = tempDir("bsd-import-");
  const file = `${dir.path}/import.ts`;
  Deno.writeTextFileSync(
    file,
    `const revoke = Deno.permissions.revoke;
await import(${JSON.stringify(new URL("../mod.ts", import.meta.url).href)});
console.log(Deno.permissions.revoke === revoke ? "untouched" : "patched");`,
  );
  const out = await denoRun(file, { flags: ["--allow-read"] }).output();
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "untouched");
});
