// fromFd(): the argument checks, each error of the contract with the
// descriptor left open and untouched, and adoption of descriptors a real
// Python peer made and passed in over SCM_RIGHTS.

import assert from "node:assert/strict";
import { fromFd } from "../fd.ts";
import { SocketError } from "../errors.ts";
import { listenSeqpacket, type SeqpacketConn, seqpacketPair } from "../seqpacket.ts";
import { StreamConn, type StreamListener } from "../stream.ts";
import type { DatagramSocket } from "../datagram.ts";
import { NetlinkSocket, openNetlink } from "../netlink.ts";
import { openPacket, openRaw } from "../raw.ts";
import { closeFds } from "../ffi/socket.ts";
import { deadline, fdTable, isOpenFd, killOnDispose, needs, tempDir } from "./_helpers.ts";

const PEER = new URL("./peers/fd_peer.py", import.meta.url).pathname;

/** What the peer says about each descriptor it passed, in order. */
interface PeerInfo {
  kind: string;
  hostname?: string;
  port?: number;
  peer?: number;
  pid?: number;
  path?: string;
}

/** Descriptors of `kinds` made by the Python peer, received here; closes all on dispose. */
async function fromPeer(...kinds: string[]): Promise<
  { fds: number[]; info: PeerInfo[]; conn: SeqpacketConn } & AsyncDisposable
> {
  const dir = tempDir("sd-fd-");
  const path = `${dir.path}/peer.sock`;
  const listener = listenSeqpacket({ path });
  const peer = killOnDispose(
    new Deno.Command("python3", { args: [PEER, path, ...kinds], stdin: "null" }).spawn(),
  );
  try {
    const conn = await deadline(listener.accept(), 5000, "the Python peer to connect");
    const m = await deadline(conn.receive(), 5000, "the peer's descriptors");
    assert.ok(m);
    const info = JSON.parse(new TextDecoder().decode(m.data)) as PeerInfo[];
    const fds = m.fds ?? [];
    assert.equal(fds.length, kinds.length);
    return {
      fds,
      info,
      conn,
      async [Symbol.asyncDispose]() {
        conn.close();
        await peer.status;
        closeFds(fds.filter((fd) => isOpenFd(fd) && !owned.has(fd)));
        dir[Symbol.dispose]();
      },
    };
  } catch (err) {
    await peer[Symbol.asyncDispose]();
    dir[Symbol.dispose]();
    throw err;
  } finally {
    listener.close();
  }
}

/** Descriptors a test adopted: their sockets close them. */
const owned = new Set<number>();

/**
 * `flags:` of /proc/self/fdinfo/N (octal, O_NONBLOCK and O_CLOEXEC among them), read by a child.
 */
function fdFlags(fd: number): string {
  const out = new Deno.Command("sh", {
    args: ["-c", `grep '^flags:' /proc/${Deno.pid}/fdinfo/${fd}`],
    stderr: "null",
  }).outputSync();
  assert.ok(out.success, `fd ${fd} is not open`);
  return new TextDecoder().decode(out.stdout).trim();
}

/** Asserts that `fd` is now nonblocking and close-on-exec, as the engine's own sockets are. */
function assertNonblockingCloexec(fd: number): void {
  const flags = parseInt(fdFlags(fd).replace(/^flags:\s*/, ""), 8);
  const O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000;
  assert.equal(flags & O_NONBLOCK, O_NONBLOCK, `fd ${fd} is not O_NONBLOCK`);
  assert.equal(flags & O_CLOEXEC, O_CLOEXEC, `fd ${fd} is not close-on-exec`);
}

/** Runs `fromFd(fd)`, expecting `check` of its error, and that fd stayed open with its flags. */
function assertRefused(fd: number, check: (err: unknown) => boolean): void {
  const before = fdFlags(fd);
  assert.throws(() => fromFd(fd), check);
  assert.ok(isOpenFd(fd), `fd ${fd} was closed`);
  assert.equal(fdFlags(fd), before, `fd ${fd}'s flags changed`);
}

Deno.test("fromFd() refuses what is not a descriptor number before any system call", () => {
  for (const bad of ["3", 3n, null, undefined, {}, [3]]) {
    assert.throws(() => fromFd(bad as unknown as number), TypeError, String(bad));
  }
  for (const bad of [1.5, NaN, Infinity]) {
    assert.throws(() => fromFd(bad), TypeError);
  }
  for (const bad of [-1, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
    assert.throws(() => fromFd(bad), RangeError);
  }
});

/** Whether stdin is a socket, which a test must not adopt from the runner. */
function stdinIsSocket(): boolean {
  try {
    return Deno.readLinkSync("/proc/self/fd/0").startsWith("socket:");
  } catch {
    return false;
  }
}

Deno.test({
  name: "fromFd(-0) is fromFd(0): -0 is an integer in range, not an FFI type error",
  ignore: stdinIsSocket(),
}, () => {
  let expected: unknown;
  try {
    fromFd(0);
  } catch (err) {
    expected = err;
  }
  assert.throws(
    () => fromFd(-0),
    (err) => err instanceof (expected as Error).constructor && /fd 0\b/.test(String(err)),
  );
});

Deno.test("fromFd() of a descriptor that is not open is BadResource naming it", () => {
  // Far above any descriptor limit, so nothing can open it meanwhile.
  const fd = 1_000_000;
  assert.ok(!isOpenFd(fd));
  assert.throws(
    () => fromFd(fd),
    (err) => err instanceof Deno.errors.BadResource && /fd 1000000/.test(err.message),
  );
});

Deno.test("fromFd() of a socket this module owns is Busy, and the socket keeps working", async () => {
  const before = fdTable();
  const [a, b] = seqpacketPair();
  try {
    const mine = [...fdTable()].filter(([fd, target]) =>
      before.get(fd) !== target && target.startsWith("socket:")
    ).map(([fd]) => fd);
    assert.equal(mine.length, 2);
    for (const fd of mine) {
      assertRefused(
        fd,
        (err) => err instanceof Deno.errors.Busy && err.message.includes(`fd ${fd}`),
      );
    }
    await a.send(Uint8Array.of(1, 2, 3));
    assert.deepEqual((await b.receive())?.data, Uint8Array.of(1, 2, 3));
  } finally {
    a.close();
    b.close();
  }
});

Deno.test(
  "fromFd() of a pipe, an unconnected TCP socket and a vsock leaves each open and as it was",
  needs("python3"),
  async () => {
    await using got = await fromPeer("pipe", "tcp-unbound", "vsock");
    const [pipe, unbound, vsock] = got.fds;
    assertRefused(
      pipe,
      (err) =>
        err instanceof SocketError && err.code === "ENOTSOCK" && err.message.includes(`fd ${pipe}`),
    );
    assertRefused(
      unbound,
      (err) => err instanceof Deno.errors.NotConnected && err.message.includes(`fd ${unbound}`),
    );
    assertRefused(
      vsock,
      (err) =>
        err instanceof Deno.errors.NotSupported && /family 40, type stream/.test(err.message),
    );
  },
);

Deno.test(
  "fromFd() adopts a netlink socket a Python peer bound, with its port id, and owns it",
  needs("python3"),
  async () => {
    await using got = await fromPeer("netlink");
    const [fd] = got.fds;
    const socket = fromFd(fd);
    owned.add(fd);
    try {
      assert.ok(socket instanceof NetlinkSocket, socket.constructor.name);
      assert.equal(socket.fd, fd);
      assert.equal(socket.localAddr.pid, got.info[0].pid);
      assertNonblockingCloexec(fd);
      assert.throws(() => fromFd(fd), Deno.errors.Busy);
    } finally {
      socket.close();
    }
    assert.ok(!isOpenFd(fd), "close() did not close the adopted descriptor");
  },
);

/** A socket as fromFd returns it, seen through what every class has. */
type Adopted = ReturnType<typeof fromFd>;

/** One round trip on a connected socket the peer echoes on: bytes out, the same bytes back. */
async function roundTrip(socket: Adopted): Promise<string> {
  const hello = new TextEncoder().encode("hello from deno");
  if (socket instanceof StreamConn) {
    await socket.write(hello);
    const buf = new Uint8Array(64);
    const n = await deadline(socket.read(buf), 5000, "the echo");
    return new TextDecoder().decode(buf.subarray(0, n ?? 0));
  }
  const packets = socket as SeqpacketConn | DatagramSocket;
  await (packets as { write(p: Uint8Array): Promise<number> }).write(hello);
  const m = await deadline(packets.receive(), 5000, "the echo");
  return new TextDecoder().decode(m?.data);
}

/**
 * A check that the socket's own address (a listener's `addr`, else `localAddr`) is `want(info)`.
 */
function localIs(want: (info: PeerInfo) => unknown) {
  return (s: Adopted, info: PeerInfo) =>
    assert.deepEqual("addr" in s ? s.addr : (s as { localAddr: unknown }).localAddr, want(info));
}

const echoes = async (s: Adopted) => assert.equal(await roundTrip(s), "hello from deno");

const KINDS: {
  kind: string;
  class: string;
  check: (socket: Adopted, info: PeerInfo) => void | Promise<void>;
}[] = [
  {
    kind: "tcp-listener",
    class: "StreamListener",
    check: localIs((i) => ({ transport: "tcp", hostname: "127.0.0.1", port: i.port })),
  },
  {
    kind: "tcp6-listener",
    class: "StreamListener",
    check: localIs((i) => ({ transport: "tcp", hostname: "::1", port: i.port })),
  },
  {
    kind: "tcp-conn",
    class: "StreamConn",
    check: async (s, info) => {
      const conn = s as StreamConn;
      assert.equal((conn.localAddr as { port: number }).port, info.port);
      assert.equal((conn.remoteAddr as { port: number }).port, info.peer);
      await echoes(s);
    },
  },
  {
    kind: "unix-listener",
    class: "StreamListener",
    check: async (s, info) => {
      localIs((i) => ({ transport: "unix", path: i.path }))(s, info);
      using client = await Deno.connect({ transport: "unix", path: info.path! });
      using conn = await deadline((s as StreamListener).accept(), 5000, "a connection");
      await client.write(Uint8Array.of(7));
      const buf = new Uint8Array(4);
      assert.equal(await conn.read(buf), 1);
      assert.equal(buf[0], 7);
    },
  },
  { kind: "unix-stream-pair", class: "StreamConn", check: echoes },
  {
    kind: "udp",
    class: "DatagramSocket",
    check: localIs((i) => ({ transport: "udp", hostname: "127.0.0.1", port: i.port })),
  },
  {
    kind: "unix-dgram",
    class: "DatagramSocket",
    check: localIs((i) => ({ transport: "unixgram", path: i.path })),
  },
  { kind: "unix-dgram-pair", class: "DatagramSocket", check: echoes },
  {
    kind: "seqpacket-listener",
    class: "SeqpacketListener",
    check: localIs((i) => ({ transport: "seqpacket", path: i.path })),
  },
  { kind: "seqpacket-pair", class: "SeqpacketConn", check: echoes },
];

Deno.test(
  "fromFd() adopts every stream, datagram and seqpacket kind a Python peer made, addresses from the kernel",
  needs("python3"),
  async (t) => {
    await using got = await fromPeer(...KINDS.map((k) => k.kind));
    for (const [i, k] of KINDS.entries()) {
      await t.step(k.kind, async () => {
        const fd = got.fds[i];
        const socket = fromFd(fd);
        owned.add(fd);
        try {
          assert.equal(socket.constructor.name, k.class);
          assert.equal((socket as { fd: number | null }).fd, fd);
          assertNonblockingCloexec(fd);
          assert.throws(() => fromFd(fd), Deno.errors.Busy);
          await k.check(socket, got.info[i]);
        } finally {
          socket.close();
        }
        assert.ok(!isOpenFd(fd), `close() did not close fd ${fd}`);
      });
    }
  },
);

Deno.test('backend is "ffi" on every class that has no built-in engine, as fromFd\'s callers read it', () => {
  using dir = tempDir("bsd-backend-");
  const [a, b] = seqpacketPair();
  const listener = listenSeqpacket({ path: `${dir.path}/s.sock` });
  const netlink = openNetlink({ protocol: "route" });
  try {
    for (const s of [a, b, listener, netlink]) assert.equal(s.backend, "ffi");
  } finally {
    for (const s of [a, b, listener, netlink]) s.close();
  }
});

Deno.test({
  name: 'backend is "ffi" on raw and packet sockets',
  ...needs("CAP_NET_RAW"),
  fn() {
    using raw = openRaw({ family: "ipv4", protocol: "icmp" });
    using link = openPacket({ interface: "lo" });
    assert.equal(raw.backend, "ffi");
    assert.equal(link.backend, "ffi");
  },
});
