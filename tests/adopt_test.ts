// Tests for the adopters this branch registers (datagram, seqpacket, raw,
// packet): descriptors a Python peer made and passed over a Unix datagram
// socket become the matching class, with their addresses read from the kernel.
// fromFd (fd.ts) drives the same adopters through the kernel's description.

import assert from "node:assert/strict";
import { type DatagramSocket, listenDatagram } from "../datagram.ts";
import { connectSeqpacket, SeqpacketConn, SeqpacketListener, seqpacketPair } from "../seqpacket.ts";
import { LinkSocket, RawSocket } from "../raw.ts";
import { adopterFor, type DescribedFd } from "../_internal/adopt.ts";
import { isOwnedFd } from "../ffi/socket.ts";
import type { NetAddr, UnixAddr } from "../types.ts";
import {
  deadline,
  denoJson,
  descriptorCount,
  hasCapNetRaw,
  isCloseOnExec,
  isOpenFd,
  needs,
  procText,
  pythonOutput,
  tempDir,
} from "./_helpers.ts";

const PEER = Deno.readTextFileSync(new URL("./peers/unixgram_peer.py", import.meta.url));
const enc = new TextEncoder();
const dec = new TextDecoder();

const fcntl = Deno.dlopen("libc.so.6", {
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
}).symbols.fcntl;
const [F_SETFD, F_GETFL, F_SETFL, O_NONBLOCK] = [2, 3, 4, 0o4000];

/** What the kernel would say of each kind the peer makes (SO_DOMAIN, SO_TYPE, ...). */
const KINDS: Record<string, Omit<DescribedFd, "fd" | "take">> = {
  "unix-datagram": { family: "unix", kind: "datagram", protocol: 0, listening: false },
  udp: { family: "ipv4", kind: "datagram", protocol: 17, listening: false },
  "seqpacket-listener": { family: "unix", kind: "seqpacket", protocol: 0, listening: true },
  "seqpacket-conn": { family: "unix", kind: "seqpacket", protocol: 0, listening: false },
  raw: { family: "ipv4", kind: "raw", protocol: 1, listening: false },
  ping: { family: "ipv4", kind: "datagram", protocol: 1, listening: false },
  packet: { family: "packet", kind: "datagram", protocol: 0xb588, listening: false },
};

/** A description as fromFd builds it; `take` sets what fromFd's does, and counts. */
function described(fd: number, kind: string): DescribedFd & { taken: number } {
  const d = {
    fd,
    ...KINDS[kind],
    taken: 0,
    take() {
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
      fcntl(fd, F_SETFD, 1);
      d.taken++;
    },
  };
  return d;
}

function adopt(fd: number, kind: string): unknown {
  const d = described(fd, kind);
  const adopter = adopterFor(d);
  assert.ok(adopter, `an adopter for ${kind}`);
  const socket = adopter.adopt(d);
  assert.equal(d.taken, 1, `${kind}: taken once`);
  return socket;
}

function isNonblocking(fd: number): boolean {
  const info = procText(`/proc/${Deno.pid}/fdinfo/${fd}`);
  return (parseInt(/^flags:\s+([0-7]+)/m.exec(info)![1], 8) & O_NONBLOCK) !== 0;
}

Deno.test({
  name: "adopters: every kind a Python peer passes becomes its class, addresses from the kernel",
  ...needs("python3"),
  async fn() {
    using dir = tempDir();
    for (const end of seqpacketPair()) end.close();
    const before = descriptorCount();
    const closers: { close(): void }[] = [];
    try {
      using inbox = listenDatagram({ path: `${dir.path}/inbox.sock` });
      using us = listenDatagram({ hostname: "127.0.0.1", port: 0 });
      const out = JSON.parse(
        await pythonOutput(PEER, [
          "kinds",
          inbox.localAddr.path,
          dir.path,
          String(us.localAddr.port),
        ]),
      );
      const m = await deadline(inbox.receive(), 5000, "the descriptors");
      const kinds: string[] = JSON.parse(dec.decode(m!.data));
      assert.deepEqual(kinds, out.kinds);
      assert.equal(m!.fds?.length, kinds.length);
      const got = new Map<string, unknown>();
      for (const [i, kind] of kinds.entries()) {
        const fd: number = m!.fds![i];
        assert.ok(!isNonblocking(fd), `${kind} arrives blocking`);
        const socket = adopt(fd, kind) as { close(): void; fd: number | null };
        closers.push(socket);
        got.set(kind, socket);
        assert.equal(socket.fd, fd, `${kind}: the object shows its descriptor`);
        assert.ok(isOwnedFd(fd), `${kind}: owned`);
        assert.ok(isNonblocking(fd) && isCloseOnExec(fd), `${kind}: nonblocking, close-on-exec`);
      }

      const dgram = got.get("unix-datagram") as DatagramSocket<UnixAddr>;
      assert.equal(dgram.backend, "ffi");
      assert.deepEqual(dgram.localAddr, { transport: "unixgram", path: `${dir.path}/dgram.sock` });
      assert.equal(dgram.remoteAddr, null);
      await inbox.send(enc.encode("to adopted"), dgram.localAddr);
      const r = await deadline(dgram.receive(), 5000, "adopted unix receive");
      assert.deepEqual([dec.decode(r!.data), r!.from], ["to adopted", inbox.localAddr]);

      const udp = got.get("udp") as DatagramSocket<NetAddr>;
      assert.deepEqual(udp.localAddr, { transport: "udp", hostname: "127.0.0.1", port: out.udp });
      assert.deepEqual(udp.remoteAddr, us.localAddr);
      await udp.write(enc.encode("connected"));
      const u = await deadline(us.receive(), 5000, "from the adopted UDP socket");
      assert.deepEqual([dec.decode(u!.data), u!.from], ["connected", udp.localAddr]);

      const listener = got.get("seqpacket-listener") as SeqpacketListener;
      assert.ok(listener instanceof SeqpacketListener);
      assert.equal(listener.addr.path, `${dir.path}/seqpacket.sock`);
      using client = await connectSeqpacket({ path: listener.addr.path });
      using served = await deadline(listener.accept(), 5000, "accept");
      await client.send(new Uint8Array(0));
      const zero = await deadline(served.receive(), 5000, "a 0-byte record");
      assert.equal(zero?.data.length, 0, "a 0-byte record is a record, not end of stream");

      const conn = got.get("seqpacket-conn") as SeqpacketConn;
      assert.ok(conn instanceof SeqpacketConn);
      assert.equal(dec.decode((await conn.receive())!.data), "from python");
      assert.equal(await deadline(conn.receive(), 5000, "end of stream"), null);

      if (hasCapNetRaw()) assert.ok(got.has("raw") && got.has("packet"), "root made them");
      for (const [kind, unprivileged] of [["raw", false], ["ping", true]] as const) {
        const raw = got.get(kind) as RawSocket | undefined;
        if (raw === undefined) continue; // the peer was not allowed to make one
        assert.ok(raw instanceof RawSocket);
        assert.equal(raw.unprivileged, unprivileged);
        assert.equal(typeof raw.echoId, unprivileged ? "number" : "object");
      }
      const link = got.get("packet") as LinkSocket | undefined;
      if (link !== undefined) {
        assert.ok(link instanceof LinkSocket);
        assert.equal(link.localAddr.interface, "lo");
        assert.equal(link.localAddr.protocol, 0x88b5);
      }
    } finally {
      for (const c of closers) c.close();
    }
    assert.equal(descriptorCount(), before, "every adopted descriptor is closed with its object");
  },
});

Deno.test({
  name: "the raw adopter makes an ICMP datagram descriptor a ping RawSocket with its echoId",
  ...needs("python3", "CAP_NET_ADMIN"),
  async fn() {
    using dir = tempDir();
    using inbox = listenDatagram({ path: `${dir.path}/inbox.sock` });
    // A namespace of the peer's own, where ping sockets are allowed; the
    // descriptor keeps working here, bound to that namespace.
    await pythonOutput(PEER, ["ping", inbox.localAddr.path], {
      netns: "ip link set lo up && sysctl -qw net.ipv4.ping_group_range='0 2147483647'",
    });
    const m = await deadline(inbox.receive(), 5000, "the ping socket");
    assert.equal(m!.fds?.length, 1);
    using ping = adopt(m!.fds![0], "ping") as RawSocket;
    assert.ok(ping instanceof RawSocket);
    assert.equal(ping.unprivileged, true);
    assert.equal(typeof ping.echoId, "number");
  },
});

Deno.test("the seqpacket adopter refuses an unconnected socket before taking it", () => {
  const lib = Deno.dlopen("libc.so.6", {
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
  });
  const fd = lib.symbols.socket(1, 5, 0); // AF_UNIX, SOCK_SEQPACKET
  try {
    const d = described(fd, "seqpacket-conn");
    assert.throws(() => adopterFor(d)!.adopt(d), Deno.errors.NotConnected);
    assert.equal(d.taken, 0);
    assert.ok(isOpenFd(fd) && !isNonblocking(fd), "left open and as it was");
    assert.ok(!isOwnedFd(fd));
  } finally {
    lib.symbols.close(fd);
    lib.close();
  }
});

const PERMISSION_CHILD = `
const { adopterFor } = await import(Deno.args[0]);
await import(Deno.args[1]);
const lib = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
}).symbols;
const fd = lib.socket(1, 2, 0); // AF_UNIX, SOCK_DGRAM
const path = new TextEncoder().encode(Deno.args[2]);
const addr = new Uint8Array(110);
addr[0] = 1;
addr.set(path, 2);
if (lib.bind(fd, addr, 2 + path.length + 1) !== 0) throw new Error("bind failed");
let taken = 0;
const d = { fd, family: "unix", kind: "datagram", protocol: 0, listening: false, take() { taken++; } };
let error = "none";
try { adopterFor(d).adopt(d); } catch (e) { error = e.name + ": " + e.message; }
console.log(JSON.stringify({ error, taken, open: lib.fcntl(fd, 1, 0) >= 0, flags: lib.fcntl(fd, 3, 0) }));
`;

Deno.test("an adopter checks Deno's permissions for the kernel's address before taking the descriptor", async () => {
  using dir = tempDir();
  const script = `${dir.path}/child.ts`;
  Deno.writeTextFileSync(script, PERMISSION_CHILD);
  const args = [
    new URL("../_internal/adopt.ts", import.meta.url).href,
    new URL("../datagram.ts", import.meta.url).href,
    `${dir.path}/bound.sock`,
  ];
  const r = await denoJson(script, { flags: ["--allow-ffi", `--allow-read`], args });
  assert.match(String(r.error), /^NotCapable: .*--allow-write/);
  assert.deepEqual([r.taken, r.open, (r.flags as number) & O_NONBLOCK], [0, true, 0]);
});
