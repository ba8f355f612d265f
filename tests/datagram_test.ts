// Tests for datagram.ts: UDP and Unix datagram sockets, run once per backend
// (the FFI engine and Deno's built-in), against each other and against Python.

import assert from "node:assert/strict";
import {
  type DatagramBackend,
  type DatagramSocket,
  listenDatagram,
  type UdpDatagramOptions,
} from "../datagram.ts";
import type { Message, NetAddr, UnixAddr } from "../types.ts";
import { openSocketCount } from "../ffi/socket.ts";
import {
  assertBusyPollSparesWaits,
  deadline,
  denoJson,
  descriptorCount,
  engineEventsOnSeparateCpus,
  fromHex,
  hasCapNetAdmin,
  lines,
  needs,
  nextLine,
  prng,
  python,
  pythonOutput,
  randomBytes,
  RunningDigest,
  sha256,
  tempDir,
  toHex,
} from "./_helpers.ts";
import { NetNs } from "./_netns.ts";

const PEER = Deno.readTextFileSync(new URL("./peers/datagram_peer.py", import.meta.url));
const CHILD = new URL("./peers/datagram_child.ts", import.meta.url).pathname;

const enc = new TextEncoder();
const dec = new TextDecoder();

const BUILTIN_PRESENT =
  typeof (Deno as unknown as { listenDatagram?: unknown }).listenDatagram === "function";
if (!BUILTIN_PRESENT) {
  console.error(
    "datagram tests: skipping the built-in backend half, since Deno.listenDatagram exists " +
      "only with --unstable-net (deno task test passes it)",
  );
}
const BACKENDS: readonly DatagramBackend[] = ["ffi", "builtin"];

/**
 * Registers `fn` once per backend. The built-in half is ignored (counted as
 * skipped) when the runtime lacks it; `ffiOnly` registers the FFI half only.
 */
function eachBackend(
  name: string,
  fn: (backend: DatagramBackend) => Promise<void> | void,
  options: { ignore?: boolean } = {},
): void {
  for (const backend of BACKENDS) {
    Deno.test({
      name: `[${backend}] ${name}`,
      ignore: options.ignore || (backend === "builtin" && !BUILTIN_PRESENT),
      fn: () => fn(backend),
    });
  }
}

function udp(backend: DatagramBackend, options: Partial<UdpDatagramOptions> = {}) {
  return listenDatagram({ hostname: "127.0.0.1", port: 0, backend, ...options });
}

function receive<A extends NetAddr | UnixAddr>(sock: DatagramSocket<A>, maxSize?: number) {
  return deadline(
    sock.receive(maxSize === undefined ? undefined : { maxSize }),
    5000,
    "a datagram",
  );
}

/** Sends a sentinel and checks it is the next thing `to` receives: nothing else came first. */
async function expectOnlySentinel<A extends NetAddr | UnixAddr>(
  from: DatagramSocket<A>,
  to: DatagramSocket<A>,
): Promise<void> {
  await from.send(enc.encode("sentinel"), to.localAddr);
  const m = await receive(to);
  assert.equal(dec.decode(m!.data), "sentinel");
}

// ---------------------------------------------------------------------------
// Sizes and boundaries

eachBackend(
  "DatagramSocket.send()/receive() carry UDP datagrams of 0, 1, 1472 and 65507 bytes exactly",
  async (backend) => {
    using a = udp(backend);
    using b = udp(backend);
    const rand = prng(5);
    for (const size of [0, 1, 1472, 65507]) {
      const data = randomBytes(rand, size);
      assert.equal(await a.send(data, b.localAddr), size);
      const m = await receive(b);
      assert.equal(m!.data.length, size);
      assert.equal(await sha256(m!.data), await sha256(data));
      assert.equal(m!.truncated, false);
      assert.deepEqual(m!.from, a.localAddr);
    }
  },
);

eachBackend(
  "DatagramSocket over IPv6 carries 65527 bytes; 65528 is RangeError naming both, nothing sent",
  async (backend) => {
    using a = listenDatagram({ hostname: "::1", port: 0, backend });
    using b = listenDatagram({ hostname: "::1", port: 0, backend });
    assert.deepEqual(a.localAddr.hostname, "::1");
    const data = randomBytes(prng(6), 65527);
    await a.send(data, b.localAddr);
    const m = await receive(b);
    assert.equal(await sha256(m!.data), await sha256(data));
    assert.deepEqual(m!.from, a.localAddr);
    await assert.rejects(a.send(new Uint8Array(65528), b.localAddr), (err: Error) => {
      assert.ok(err instanceof RangeError);
      assert.match(err.message, /65528 bytes/);
      assert.match(err.message, /limit of 65527 bytes over IPv6/);
      return true;
    });
    await expectOnlySentinel(a, b);
  },
);

eachBackend(
  "DatagramSocket.send() of 65508 bytes over IPv4 is RangeError naming size and limit; nothing is sent",
  async (backend) => {
    using a = udp(backend);
    using b = udp(backend);
    await assert.rejects(a.send(new Uint8Array(65508), b.localAddr), (err: Error) => {
      assert.ok(err instanceof RangeError);
      assert.match(err.message, /^send "127\.0\.0\.1:\d+": a datagram of 65508 bytes/);
      assert.match(err.message, /limit of 65507 bytes over IPv4/);
      return true;
    });
    // sendMany checks every record first: one too long sends none of them.
    const batch = [1, 65508, 1].map((n) => ({ data: new Uint8Array(n), to: b.localAddr }));
    await assert.rejects(a.sendMany(batch), RangeError);
    await expectOnlySentinel(a, b);
  },
);

eachBackend(
  "DatagramSocket.receive(): a 0-byte datagram is an empty message, not end of stream",
  async (backend) => {
    using a = udp(backend);
    using b = udp(backend);
    await a.send(new Uint8Array(0), b.localAddr);
    const m = await receive(b);
    assert.notEqual(m, null);
    assert.equal(m!.data.length, 0);
    assert.equal(m!.truncated, false);
    await a.send(new Uint8Array(0), b.localAddr);
    assert.equal(await deadline(b.read(new Uint8Array(8)), 5000, "read"), 0);
  },
);

eachBackend(
  "DatagramSocket.receive() cuts 1,500 bytes to maxSize 100 with truncated: true",
  async (backend) => {
    using a = udp(backend);
    using b = udp(backend);
    const data = randomBytes(prng(7), 1500);
    await a.send(data, b.localAddr);
    const m = await receive(b, 100);
    assert.equal(m!.truncated, true);
    assert.deepEqual(m!.data, data.subarray(0, 100));
    // read() keeps the first bytes too and moves on to the next record.
    await a.send(data, b.localAddr);
    await a.send(enc.encode("next"), b.localAddr);
    const buf = new Uint8Array(100);
    assert.equal(await b.read(buf), 100);
    assert.deepEqual(buf, data.subarray(0, 100));
    assert.equal(dec.decode((await receive(b))!.data), "next");
  },
);

eachBackend(
  "DatagramSocket over Unix datagram reports a 100,000-byte record as truncated at 65,536",
  async (backend) => {
    using dir = tempDir();
    using a = listenDatagram({ path: `${dir.path}/a.sock`, backend });
    using b = listenDatagram({ path: `${dir.path}/b.sock`, backend });
    const data = randomBytes(prng(8), 100_000);
    await a.send(data, b.localAddr);
    const m = await receive(b);
    assert.equal(m!.truncated, true);
    assert.equal(m!.data.length, 65536);
    assert.deepEqual(m!.data, data.subarray(0, 65536));
  },
);

Deno.test("[ffi] DatagramSocket.receive({ maxSize: 200000 }) gets a 100,000-byte Unix record whole", async () => {
  using dir = tempDir();
  using a = listenDatagram({ path: `${dir.path}/a.sock`, backend: "ffi" });
  using b = listenDatagram({ path: `${dir.path}/b.sock`, backend: "ffi" });
  const data = randomBytes(prng(9), 100_000);
  await a.send(data, b.localAddr);
  const m = await receive(b, 200_000);
  assert.equal(m!.truncated, false);
  assert.equal(await sha256(m!.data), await sha256(data));
});

// ---------------------------------------------------------------------------
// Volume

eachBackend(
  "20,000 sequenced Unix datagrams reach a reader that keeps up: none missing, digest matches",
  async (backend) => {
    using dir = tempDir();
    using receiver = listenDatagram({ path: `${dir.path}/r.sock`, backend });
    using sender = listenDatagram({ path: `${dir.path}/s.sock`, backend });
    const count = 20_000;
    const rand = prng(10);
    const sent = new RunningDigest();
    const got = new RunningDigest();
    const reading = (async () => {
      for (let i = 0; i < count; i++) {
        const m = await receiver.receive();
        assert.notEqual(m, null);
        assert.equal(new DataView(m!.data.buffer, m!.data.byteOffset).getUint32(0), i);
        got.add(m!.data);
      }
    })();
    for (let i = 0; i < count; i++) {
      const record = randomBytes(rand, 4 + (i % 200));
      new DataView(record.buffer).setUint32(0, i);
      sent.add(record);
      // send() waits while the receiver's queue is full, so nothing is dropped.
      await sender.send(record, receiver.localAddr);
    }
    await deadline(reading, 60_000, "20,000 datagrams");
    assert.equal(got.count, count);
    assert.equal(await got.digest(), await sent.digest());
  },
);

eachBackend(
  "20,000 UDP datagrams into a large receive buffer: the count received equals the count sent",
  async (backend) => {
    // The receiver is on the FFI backend, which can raise SO_RCVBUF (past
    // rmem_max as root); the sender is the backend under test.
    using receiver = udp("ffi", { receiveBufferSize: 64 << 20 });
    using sender = udp(backend);
    const count = 20_000;
    const record = new Uint8Array(64);
    for (let i = 0; i < count; i++) {
      new DataView(record.buffer).setUint32(0, i);
      await sender.send(record, receiver.localAddr);
    }
    await sender.send(enc.encode("end"), receiver.localAddr);
    let received = 0;
    let expected = 0;
    for (;;) {
      const m = await receive(receiver);
      if (m!.data.length === 3) break;
      assert.equal(new DataView(m!.data.buffer, m!.data.byteOffset).getUint32(0), expected++);
      received++;
    }
    assert.equal(received, count);
  },
  needs("CAP_NET_ADMIN"),
);

// ---------------------------------------------------------------------------
// Interop with Python

eachBackend(
  "Python UDP senders, bound and unbound, are reported by their exact address",
  async (backend) => {
    using sock = udp(backend);
    for (const mode of ["udp-send-bound", "udp-send"]) {
      const data = randomBytes(prng(11), 300);
      const out = await pythonOutput(PEER, [
        mode,
        "127.0.0.1",
        String(sock.localAddr.port),
        toHex(data),
      ]);
      const local = JSON.parse(out).local;
      const m = await receive(sock);
      assert.deepEqual(m!.data, data);
      // An unbound sender's name is 0.0.0.0 and the port the kernel picked;
      // its datagram leaves from 127.0.0.1.
      assert.equal(local.host, mode === "udp-send" ? "0.0.0.0" : "127.0.0.1");
      assert.deepEqual(m!.from, { transport: "udp", hostname: "127.0.0.1", port: local.port });
    }
  },
  needs("python3"),
);

eachBackend(
  "a Python UDP receiver gets our datagram and our exact address (IPv4 and IPv6)",
  async (backend) => {
    for (const host of ["127.0.0.1", "::1"]) {
      using sock = listenDatagram({ hostname: host, port: 0, backend });
      await using peer = python(PEER, "udp-recv", host);
      const out = lines(peer.stdout);
      const port = Number((await nextLine(out)).split(" ")[1]);
      const data = randomBytes(prng(12), 1000);
      await sock.send(data, { transport: "udp", hostname: host, port });
      const report = JSON.parse(await nextLine(out));
      assert.equal(report.data, toHex(data));
      assert.deepEqual(report.from, { host, port: sock.localAddr.port });
    }
  },
  needs("python3"),
);

Deno.test("[ffi] listenDatagram() refuses a busyPoll outside 0-10,000 or not an integer before any socket opens", () => {
  using dir = tempDir();
  const before = openSocketCount();
  for (
    const [busyPoll, error] of [[-1, RangeError], [10_001, RangeError], [0.5, TypeError]] as const
  ) {
    assert.throws(() => listenDatagram({ port: 0, busyPoll }), error);
    assert.throws(() => listenDatagram({ path: `${dir.path}/x.sock`, busyPoll }), error);
  }
  assert.equal(openSocketCount(), before);
  assert.deepEqual([...Deno.readDirSync(dir.path)], []);
});

Deno.test(
  "[ffi] busyPoll takes a Python UDP echo's replies without waiting on the engine",
  needs("python3"),
  async (t) => {
    const trips = 50;
    // Engine events during the round trips to a fresh Python echo: each
    // receive that waits is woken by one.
    const eventsDuring = async (busyPoll?: number): Promise<number | null> => {
      using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, busyPoll, backend: "ffi" });
      await using peer = python(PEER, "udp-echo", "127.0.0.1", String(trips));
      const out = lines(peer.stdout);
      const port = Number((await nextLine(out)).split(" ")[1]);
      const to: NetAddr = { transport: "udp", hostname: "127.0.0.1", port };
      const events = await engineEventsOnSeparateCpus(peer.pid, async () => {
        for (let i = 0; i < trips; i++) {
          const data = randomBytes(prng(i), 64);
          await sock.send(data, to);
          const m = await deadline(sock.receive(), 5000, `echo ${i}`);
          assert.deepEqual(m?.data, data);
          assert.deepEqual(m?.from, to);
        }
      });
      await out.return?.();
      return events;
    };
    await assertBusyPollSparesWaits(t, trips, eventsDuring);
  },
);

eachBackend(
  "Python Unix datagram senders: a bound one by its path, an unbound one as from: null",
  async (backend) => {
    using dir = tempDir();
    using sock = listenDatagram({ path: `${dir.path}/ours.sock`, backend });
    const bound = `${dir.path}/py.sock`;
    await pythonOutput(PEER, ["unix-send", sock.localAddr.path, "0102", bound]);
    const m1 = await receive(sock);
    assert.deepEqual(m1!.data, fromHex("0102"));
    assert.deepEqual(m1!.from, { transport: "unixgram", path: bound });
    const out = await pythonOutput(PEER, ["unix-send", sock.localAddr.path, "030405"]);
    assert.deepEqual(JSON.parse(out).local, { path: "" });
    const m2 = await receive(sock);
    assert.deepEqual(m2!.data, fromHex("030405"));
    assert.equal(m2!.from, null);
  },
  needs("python3"),
);

eachBackend(
  "a Python Unix datagram receiver gets our datagram and our exact name",
  async (backend) => {
    using dir = tempDir();
    const names = backend === "ffi" ? [`${dir.path}/ours.sock`, ""] : [`${dir.path}/ours.sock`];
    for (const name of names) {
      using sock = listenDatagram({ path: name, backend });
      const path = `${dir.path}/py-${name === "" ? "a" : "b"}.sock`;
      await using peer = python(PEER, "unix-recv", path);
      const out = lines(peer.stdout);
      assert.equal(await nextLine(out), "ready");
      await sock.send(enc.encode("to python"), { transport: "unixgram", path });
      const report = JSON.parse(await nextLine(out));
      assert.equal(report.data, toHex(enc.encode("to python")));
      const ours = sock.localAddr.path;
      if (name === "") {
        // Autobound: the kernel's abstract name, as Python saw it.
        assert.ok(ours.startsWith("\0"));
        assert.deepEqual(report.from, {
          abstract: toHex(Uint8Array.from(ours, (c) => c.charCodeAt(0))),
        });
      } else {
        assert.deepEqual(report.from, { path: ours });
      }
    }
  },
  needs("python3"),
);

// ---------------------------------------------------------------------------
// connect()

eachBackend(
  "DatagramSocket.connect(): a third socket's UDP datagrams are not delivered; write() reaches the peer",
  async (backend) => {
    using a = udp(backend);
    using peer = udp(backend);
    using third = udp(backend);
    await a.connect(peer.localAddr);
    assert.deepEqual(a.remoteAddr, peer.localAddr);
    await third.send(enc.encode("intruder"), a.localAddr);
    await peer.send(enc.encode("from the peer"), a.localAddr);
    const m = await receive(a);
    assert.equal(dec.decode(m!.data), "from the peer");
    assert.deepEqual(m!.from, peer.localAddr);
    assert.equal(await a.write(enc.encode("reply")), 5);
    assert.equal(dec.decode((await receive(peer))!.data), "reply");
    await a.send(enc.encode("send() too"));
    assert.equal(dec.decode((await receive(peer))!.data), "send() too");
  },
);

eachBackend(
  "DatagramSocket.connect() on Unix: a third socket's datagrams are not delivered",
  async (backend) => {
    using dir = tempDir();
    using a = listenDatagram({ path: `${dir.path}/a.sock`, backend });
    using peer = listenDatagram({ path: `${dir.path}/peer.sock`, backend });
    using third = listenDatagram({ path: `${dir.path}/third.sock`, backend });
    await a.connect(peer.localAddr);
    // The kernel refuses the FFI backend's connected socket to others outright.
    await third.send(enc.encode("intruder"), a.localAddr).catch((err) => {
      assert.equal(backend, "ffi");
      assert.ok(err instanceof Deno.errors.PermissionDenied, String(err));
    });
    await peer.send(enc.encode("from the peer"), a.localAddr);
    const m = await receive(a);
    assert.equal(dec.decode(m!.data), "from the peer");
    assert.deepEqual(m!.from, peer.localAddr);
    await a.write(enc.encode("reply"));
    assert.equal(dec.decode((await receive(peer))!.data), "reply");
  },
);

eachBackend(
  "DatagramSocket.write() and send(data) without a peer are NotConnected, nothing sent",
  async (backend) => {
    using a = udp(backend);
    using b = udp(backend);
    assert.equal(a.remoteAddr, null);
    await assert.rejects(a.write(enc.encode("x")), Deno.errors.NotConnected);
    await assert.rejects(
      a.send(enc.encode("x")),
      /send "127\.0\.0\.1:\d+": socket is not connected/,
    );
    await assert.rejects(a.sendMany([{ data: enc.encode("x") }]), Deno.errors.NotConnected);
    await expectOnlySentinel(a, b);
  },
);

Deno.test("[ffi] DatagramSocket.connect() to a Unix path nobody binds is NotFound, to a dead file ConnectionRefused", async () => {
  using dir = tempDir();
  using a = listenDatagram({ path: `${dir.path}/a.sock`, backend: "ffi" });
  await assert.rejects(
    a.connect({ transport: "unixgram", path: `${dir.path}/missing.sock` }),
    (err: Error) => err instanceof Deno.errors.NotFound && err.message.includes("missing.sock"),
  );
  const dead = `${dir.path}/dead.sock`;
  listenDatagram({ path: dead, backend: "ffi" }).close();
  Deno.writeFileSync(dead, new Uint8Array(0)); // a plain file where the socket was
  await assert.rejects(
    a.connect({ transport: "unixgram", path: dead }),
    Deno.errors.ConnectionRefused,
  );
});

// ---------------------------------------------------------------------------
// Multicast

/** Whether `ip link show lo` lists MULTICAST. */
function loopbackHasMulticast(): boolean {
  const out = new Deno.Command("ip", { args: ["link", "show", "lo"], stderr: "null" }).outputSync();
  return out.success && /[<,]MULTICAST[,>]/.test(dec.decode(out.stdout));
}

function runChild(
  args: string[],
  options: { flags?: string[]; prefix?: string[] } = {},
): Promise<{ ok?: unknown; error?: string; message?: string }> {
  return denoJson(CHILD, { flags: options.flags ?? [], args, prefix: options.prefix });
}

const CHILD_FLAGS = ["--allow-net", "--allow-read", "--allow-write", "--allow-ffi", "--allow-sys"];

eachBackend(
  "DatagramSocket.joinMulticast() on lo receives the group; after leaveMulticast() it does not",
  async (backend) => {
    // lo without the MULTICAST flag: set it in a namespace of our own, never on the host.
    const onHost = loopbackHasMulticast();
    using ns = onHost ? null : new NetNs();
    ns?.ip("link", "set", "lo", "multicast", "on");
    const result = await runChild(["multicast", backend], {
      flags: ["--unstable-net", ...CHILD_FLAGS],
      prefix: ns?.wrap([]),
    });
    assert.equal(result.error, undefined, result.message);
    const r = result.ok as {
      backend: string;
      joined: string;
      joinedFrom: NetAddr;
      senderAddr: NetAddr;
      next: string;
    };
    assert.equal(r.backend, backend);
    assert.equal(r.joined, "while joined");
    assert.deepEqual(r.joinedFrom, r.senderAddr);
    assert.equal(r.next, "sentinel");
  },
  { ignore: !loopbackHasMulticast() && !hasCapNetAdmin() },
);

eachBackend(
  "DatagramSocket multicast calls refuse bad groups and Unix sockets before any call",
  async (backend) => {
    using sock = udp(backend);
    await assert.rejects(sock.joinMulticast("10.0.0.1"), /not an IPv4 multicast address/);
    await assert.rejects(sock.joinMulticast("ff02::1"), TypeError);
    await assert.rejects(
      sock.joinMulticast("224.0.0.1", { interface: "no-such-if0" }),
      Deno.errors.NotFound,
    );
    assert.throws(() => sock.setMulticastTtl(256), RangeError);
    using dir = tempDir();
    using unix = listenDatagram({ path: `${dir.path}/u.sock`, backend });
    await assert.rejects(unix.joinMulticast("224.0.0.1"), Deno.errors.NotSupported);
    assert.throws(() => unix.setBroadcast(true), Deno.errors.NotSupported);
  },
);

Deno.test("[ffi] DatagramSocket with broadcast off: a send to 255.255.255.255 is PermissionDenied", async () => {
  using sock = udp("ffi", { broadcast: false });
  const to = { transport: "udp" as const, hostname: "255.255.255.255", port: 9 };
  await assert.rejects(sock.send(new Uint8Array(1), to), Deno.errors.PermissionDenied);
  sock.setBroadcast(true);
  sock.setBroadcast(false);
  await assert.rejects(sock.send(new Uint8Array(1), to), Deno.errors.PermissionDenied);
});

// ---------------------------------------------------------------------------
// Backend choice

Deno.test({
  name:
    "listenDatagram() uses the built-in for UDP when it can serve the options, the FFI engine otherwise and for Unix",
  ignore: !BUILTIN_PRESENT,
  fn() {
    using dir = tempDir();
    const cases: [Parameters<typeof listenDatagram>[0], DatagramBackend][] = [
      [{ hostname: "127.0.0.1", port: 0 }, "builtin"],
      [{ hostname: "127.0.0.1", port: 0, reuseAddress: true, multicastLoopback: false }, "builtin"],
      // With --allow-ffi, Unix sockets avoid the built-in's Busy on send-while-receiving.
      [{ path: `${dir.path}/a.sock` }, "ffi"],
      [{ path: `${dir.path}/b.sock`, backend: "builtin" }, "builtin"],
      [{ path: `\0bsd-dgram-${Deno.pid}-ascii`, backend: "builtin" }, "builtin"],
      [{ path: "" }, "ffi"],
      [{ path: `\0bsd-dgram-${Deno.pid}-\xe9` }, "ffi"],
      [{ hostname: "127.0.0.1", port: 0, receiveBufferSize: 1 << 20 }, "ffi"],
      [{ hostname: "127.0.0.1", port: 0, broadcast: false }, "ffi"],
      [{ hostname: "127.0.0.1", port: 0, multicastTtl: 4 }, "ffi"],
      [{ hostname: "127.0.0.1", port: 0, backend: "ffi" }, "ffi"],
      [{ hostname: "127.0.0.1", port: 0, busyPoll: 50 }, "ffi"],
      [{ hostname: "127.0.0.1", port: 0, busyPoll: 0 }, "builtin"],
    ];
    for (const [options, expected] of cases) {
      using sock = listenDatagram(options);
      assert.equal(sock.backend, expected, JSON.stringify(options));
    }
  },
});

Deno.test({
  name: 'listenDatagram({ backend: "builtin" }) with an option it lacks is NotSupported naming it',
  ignore: !BUILTIN_PRESENT,
  fn() {
    const before = openSocketCount();
    for (
      const [options, named] of [
        [{ path: "", backend: "builtin" }, /path: ""/],
        [{ hostname: "127.0.0.1", port: 0, broadcast: false, backend: "builtin" }, /broadcast/],
        [
          { hostname: "127.0.0.1", port: 0, sendBufferSize: 4096, backend: "builtin" },
          /sendBufferSize/,
        ],
        [{ hostname: "127.0.0.1", port: 0, busyPoll: 50, backend: "builtin" }, /busyPoll/],
      ] as const
    ) {
      assert.throws(
        () => listenDatagram(options as Parameters<typeof listenDatagram>[0]),
        (err: Error) =>
          err instanceof Deno.errors.NotSupported && named.test(err.message) &&
          err.message.includes('backend: "ffi"'),
      );
    }
    assert.equal(openSocketCount(), before);
  },
});

Deno.test({
  name: 'listenDatagram({ backend: "builtin" }) refuses each option the built-in lacks, naming it',
  ignore: !BUILTIN_PRESENT,
  fn() {
    const before = openSocketCount();
    const ip = { hostname: "127.0.0.1", port: 0, backend: "builtin" } as const;
    const unix = { path: `/tmp/bsd-dgram-${Deno.pid}-never.sock`, backend: "builtin" } as const;
    const cases: [Record<string, unknown>, string][] = [
      [{ ...ip, receiveInfo: ["ttl"] }, "receiveInfo"],
      [{ ...ip, reusePort: false }, "reusePort"],
      [{ ...ip, hostname: "::1", v6Only: true }, "v6Only"],
      [{ ...ip, interface: "lo" }, "interface"],
      [{ ...ip, broadcast: false }, "broadcast: false"],
      [{ ...ip, multicastTtl: 2 }, "multicastTtl"],
      [{ ...ip, multicastInterface: 1 }, "multicastInterface"],
      [{ ...ip, receiveBufferSize: 4096 }, "receiveBufferSize"],
      [{ ...ip, sendBufferSize: 4096 }, "sendBufferSize"],
      [{ ...ip, busyPoll: 1 }, "busyPoll"],
      [{ ...ip, hostname: "fe80::1%lo" }, "an IPv6 zone given by interface name"],
      // Several at once: the error names the first in the declaration's order.
      [{ ...ip, sendBufferSize: 4096, receiveInfo: ["tos"], busyPoll: 1 }, "receiveInfo"],
      [{ ...unix, path: "" }, 'path: ""'],
      [{ ...unix, path: "\0bsd-\xe9" }, "an abstract name with characters above U+007F"],
      [{ ...unix, receiveBufferSize: 4096 }, "receiveBufferSize"],
      [{ ...unix, sendBufferSize: 4096 }, "sendBufferSize"],
      [{ ...unix, busyPoll: 1 }, "busyPoll"],
      [{ ...unix, passCredentials: true }, "passCredentials"],
    ];
    for (const [options, named] of cases) {
      assert.throws(
        () => listenDatagram(options as unknown as Parameters<typeof listenDatagram>[0]),
        (err: Error) =>
          err instanceof Deno.errors.NotSupported &&
          err.message.startsWith(`listenDatagram: the built-in backend cannot give ${named}`) &&
          err.message.endsWith('use backend: "ffi"'),
        JSON.stringify(options),
      );
    }
    assert.equal(openSocketCount(), before);
    assert.throws(() => Deno.lstatSync(unix.path), Deno.errors.NotFound);
  },
});

Deno.test('without --unstable-net, listenDatagram() serves on the FFI engine; backend: "builtin" names the flag', async () => {
  const served = await runChild(["default-backend"], { flags: CHILD_FLAGS });
  assert.deepEqual(served.error, undefined, served.message);
  const ok = served.ok as { backend: string; data: string; fromPort: number };
  assert.equal(ok.backend, "ffi");
  assert.equal(ok.data, "over ffi");
  assert.ok(ok.fromPort > 0);
  const asked = await runChild(["ask-builtin"], { flags: CHILD_FLAGS });
  assert.equal(asked.error, "NotSupported");
  assert.match(asked.message!, /--unstable-net/);
});

Deno.test({
  name: "without --allow-ffi, a Unix datagram socket is served by the built-in",
  ignore: !BUILTIN_PRESENT,
  async fn() {
    using dir = tempDir();
    const result = await runChild(["auto-unix", `${dir.path}/auto.sock`], {
      flags: ["--unstable-net", "--allow-net", "--allow-read", "--allow-write"],
    });
    assert.equal(result.error, undefined, result.message);
    assert.deepEqual(result.ok, { backend: "builtin", data: "unix" });
  },
});

Deno.test({
  name:
    "[builtin] a Unix send while a receive is pending is Busy naming the FFI backend; UDP is not",
  ignore: !BUILTIN_PRESENT,
  async fn() {
    using dir = tempDir();
    using a = listenDatagram({ path: `${dir.path}/a.sock`, backend: "builtin" });
    using b = listenDatagram({ path: `${dir.path}/b.sock`, backend: "builtin" });
    const pending = a.receive();
    await assert.rejects(
      a.send(enc.encode("x"), b.localAddr),
      (err: Error) => err instanceof Deno.errors.Busy && err.message.includes('backend: "ffi"'),
    );
    await b.send(enc.encode("to a"), a.localAddr);
    assert.equal(dec.decode((await deadline(pending, 5000, "receive"))!.data), "to a");
    // Once nothing is pending, sends go through again.
    await a.send(enc.encode("to b"), b.localAddr);
    assert.equal(dec.decode((await receive(b))!.data), "to b");
    using u = udp("builtin");
    using v = udp("builtin");
    const waiting = u.receive();
    await u.send(enc.encode("while receiving"), v.localAddr);
    assert.equal(dec.decode((await receive(v))!.data), "while receiving");
    await v.send(enc.encode("back"), u.localAddr);
    assert.equal(dec.decode((await deadline(waiting, 5000, "receive"))!.data), "back");
  },
});

// ---------------------------------------------------------------------------
// Bad input, permissions

eachBackend(
  "listenDatagram() refuses bad ports, hostnames and paths before any system call",
  (backend) => {
    using dir = tempDir();
    const before = openSocketCount();
    const bad: [
      unknown,
      ErrorConstructor | RangeErrorConstructor | TypeErrorConstructor,
      RegExp,
    ][] = [
      [{ port: 65536 }, RangeError, /port must be between 0 and 65535, got 65536/],
      [{ port: -1 }, RangeError, /got -1/],
      [{ port: 1.5 }, TypeError, /port must be an integer/],
      [{ port: "53" }, TypeError, /port must be an integer/],
      [{ hostname: "example.com", port: 0 }, TypeError, /hostname must be an IP address/],
      [{ hostname: "256.1.1.1", port: 0 }, TypeError, /256 is over 255/],
      [
        { path: `${dir.path}/${"x".repeat(107 - dir.path.length)}` },
        RangeError,
        /108 bytes, over the limit of 107/,
      ],
      [{ path: "\0" + "y".repeat(108) }, RangeError, /109 bytes, over the limit of 108/],
      [{ path: `${dir.path}/a\0b` }, TypeError, /NUL/],
      [{ path: "/tmp/x", port: 0 }, TypeError, /not both/],
      [{}, TypeError, /neither/],
      [null, TypeError, /options must be an object/],
      [{ port: 0, backend: "kernel" }, TypeError, /backend must be "builtin" or "ffi"/],
      [{ port: 0, receiveBufferSize: 0 }, RangeError, /receiveBufferSize/],
      [{ port: 0, multicastTtl: 300 }, RangeError, /multicastTtl/],
    ];
    for (const [options, Class, message] of bad) {
      const withBackend = options && typeof options === "object"
        ? { backend, ...options as object }
        : options;
      assert.throws(
        () => listenDatagram(withBackend as Parameters<typeof listenDatagram>[0]),
        (err: Error) => err instanceof Class && message.test(err.message),
        JSON.stringify(options),
      );
    }
    assert.equal(openSocketCount(), before);
    assert.deepEqual([...Deno.readDirSync(dir.path)], []);
  },
);

eachBackend(
  "DatagramSocket.send() refuses bad destinations and buffers; nothing is sent",
  async (backend) => {
    using a = udp(backend);
    using b = udp(backend);
    const port = b.localAddr.port;
    const bad: [unknown, unknown, RegExp][] = [
      [new Uint8Array(1), { transport: "udp", hostname: "example.com", port }, /IP address/],
      [new Uint8Array(1), { transport: "udp", hostname: "127.0.0.1", port: 70000 }, /port/],
      [new Uint8Array(1), { transport: "udp", hostname: "127.0.0.1", port: String(port) }, /port/],
      [new Uint8Array(1), { transport: "tcp", hostname: "127.0.0.1", port }, /UDP address/],
      [new Uint8Array(1), null, /address object/],
      [new Uint8Array(new SharedArrayBuffer(4)), b.localAddr, /SharedArrayBuffer/],
      [new Uint8Array(new ArrayBuffer(4, { maxByteLength: 8 })), b.localAddr, /resizable/],
      [[1, 2, 3], b.localAddr, /must be a Uint8Array/],
    ];
    for (const [data, to, message] of bad) {
      await assert.rejects(
        a.send(data as Uint8Array, to as NetAddr),
        (err: Error) =>
          err instanceof TypeError || err instanceof RangeError ? message.test(err.message) : false,
        String(message),
      );
    }
    await expectOnlySentinel(a, b);
    using dir = tempDir();
    using u = listenDatagram({ path: `${dir.path}/u.sock`, backend });
    await assert.rejects(u.send(new Uint8Array(1), { transport: "unixgram", path: "" }), /unnamed/);
  },
);

Deno.test("[ffi] listenDatagram() needs --allow-ffi, --allow-net for the address, and for each destination", async () => {
  const noFfi = await runChild(["listen-udp", "127.0.0.1", "ffi"], { flags: ["--allow-net"] });
  assert.equal(noFfi.error, "NotCapable");
  assert.match(noFfi.message!, /--allow-ffi/);
  const noNet = await runChild(["listen-udp", "127.0.0.1", "ffi"], { flags: ["--allow-ffi"] });
  assert.equal(noNet.error, "NotCapable");
  assert.match(noNet.message!, /"127\.0\.0\.1:0".*--allow-net/);
  const flags = ["--allow-ffi", "--allow-net=127.0.0.1"];
  const allowed = await runChild(["send-udp", "127.0.0.1", "9"], { flags });
  assert.equal(allowed.ok, 1);
  const denied = await runChild(["send-udp", "127.0.0.2", "9"], { flags });
  assert.equal(denied.error, "NotCapable");
  assert.match(denied.message!, /"127\.0\.0\.2:9"/);
  using dir = tempDir();
  const path = `${dir.path}/p.sock`;
  const noWrite = await runChild(["listen-unix", path], {
    flags: ["--allow-ffi", "--allow-net", `--allow-read=${dir.path}`],
  });
  assert.equal(noWrite.error, "NotCapable");
  assert.match(noWrite.message!, /write access/);
  assert.deepEqual([...Deno.readDirSync(dir.path)], []);
});

// ---------------------------------------------------------------------------
// Lifecycle

eachBackend(
  "DatagramSocket.close() resolves a pending receive with null; afterwards send and write are BadResource",
  async (backend) => {
    const sock = udp(backend);
    const pending = sock.receive();
    const iterating = (async () => {
      const seen: Message<NetAddr>[] = [];
      for await (const m of sock) seen.push(m);
      return seen.length;
    })();
    sock.close();
    assert.equal(await deadline(pending, 100, "receive after close"), null);
    assert.equal(await deadline(iterating, 100, "iteration after close"), 0);
    assert.equal(await sock.receive(), null);
    assert.equal(await sock.read(new Uint8Array(4)), null);
    const to = { transport: "udp" as const, hostname: "127.0.0.1", port: 9 };
    await assert.rejects(sock.send(new Uint8Array(1), to), Deno.errors.BadResource);
    await assert.rejects(sock.write(new Uint8Array(1)), Deno.errors.BadResource);
    await assert.rejects(sock.connect(to), Deno.errors.BadResource);
    sock.close();
  },
);

eachBackend(
  "DatagramSocket.receive() aborted rejects with the reason and the datagram goes to the next receive",
  async (backend) => {
    using a = udp(backend);
    using b = udp(backend);
    const controller = new AbortController();
    const aborted = b.receive({ signal: controller.signal });
    controller.abort(new Error("changed my mind"));
    await assert.rejects(aborted, /changed my mind/);
    await assert.rejects(b.receive({ signal: AbortSignal.abort(new Error("already")) }), /already/);
    await a.send(enc.encode("kept"), b.localAddr);
    assert.equal(dec.decode((await receive(b))!.data), "kept");
  },
);

eachBackend(
  "DatagramSocket over Unix: close() removes its own socket file and leaves a replacement",
  (backend) => {
    using dir = tempDir();
    const path = `${dir.path}/own.sock`;
    listenDatagram({ path, backend }).close();
    assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound);
    const sock = listenDatagram({ path, backend });
    assert.throws(() => listenDatagram({ path, backend }), Deno.errors.AddrInUse);
    Deno.removeSync(path);
    Deno.writeTextFileSync(path, "not a socket");
    sock.close();
    assert.equal(Deno.readTextFileSync(path), "not a socket");
  },
);

eachBackend(
  "DatagramSocket abstract Unix names: the receiver reports the sender's name exactly",
  async (backend) => {
    const a = `\0bsd-dgram-${Deno.pid}-${backend}-a`;
    const b = `\0bsd-dgram-${Deno.pid}-${backend}-b\0with nul`;
    using sa = listenDatagram({ path: a, backend });
    using sb = listenDatagram({ path: b, backend });
    await sa.send(enc.encode("abstract"), sb.localAddr);
    const m = await receive(sb);
    assert.deepEqual(m!.from, { transport: "unixgram", path: a });
    await sb.send(enc.encode("back"), m!.from!);
    assert.deepEqual((await receive(sa))!.from, { transport: "unixgram", path: b });
  },
);

Deno.test('[ffi] DatagramSocket with path "" gets a kernel-assigned abstract name that replies reach', async () => {
  using dir = tempDir();
  using server = listenDatagram({ path: `${dir.path}/server.sock`, backend: "ffi" });
  using client = listenDatagram({ path: "", backend: "ffi" });
  assert.match(client.localAddr.path, /^\0[0-9a-f]{5}$/);
  await client.send(enc.encode("hello"), server.localAddr);
  const request = await receive(server);
  assert.deepEqual(request!.from, client.localAddr);
  await server.send(enc.encode("hi"), request!.from!);
  assert.equal(dec.decode((await receive(client))!.data), "hi");
});

eachBackend(
  "DatagramSocket.sendMany() sends 130 records to two peers, in order",
  async (backend) => {
    using a = udp(backend);
    using b = udp(backend);
    using c = udp(backend);
    const records = Array.from({ length: 130 }, (_, i) => ({
      data: enc.encode(`record ${i}`),
      to: i % 2 === 0 ? b.localAddr : c.localAddr,
    }));
    assert.equal(await a.sendMany(records), 130);
    assert.equal(await a.sendMany([]), 0);
    for (let i = 0; i < 130; i++) {
      const m = await receive(i % 2 === 0 ? b : c);
      assert.equal(dec.decode(m!.data), `record ${i}`);
    }
  },
);

eachBackend(
  "datagram sockets leave the fd ledger and the process's descriptors where they started",
  async (backend) => {
    using dir = tempDir();
    const ledger = openSocketCount();
    const fds = descriptorCount();
    for (let i = 0; i < 20; i++) {
      const a = udp(backend);
      const b = listenDatagram({ path: `${dir.path}/s${i}.sock`, backend });
      const pending = a.receive();
      await b.send(new Uint8Array(1), b.localAddr);
      await receive(b);
      a.close();
      b.close();
      assert.equal(await pending, null);
    }
    assert.equal(openSocketCount(), ledger);
    // Deno closes a built-in socket once its cancelled receive has settled.
    for (let turn = 0; descriptorCount() !== fds && turn < 50; turn++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(descriptorCount(), fds);
  },
);

eachBackend(
  "a receive aborted while in flight does not keep the program running",
  async (backend) => {
    const flags = backend === "builtin" ? ["--unstable-net", ...CHILD_FLAGS] : CHILD_FLAGS;
    const result = await runChild(["abort-exit", backend], { flags });
    assert.equal(result.ok, "aborted");
  },
);

eachBackend(
  "DatagramSocket: receives made at once get the datagrams in order, one each",
  async (backend) => {
    using a = udp(backend);
    using b = udp(backend);
    const first = b.receive();
    const second = b.receive({ maxSize: 3 });
    const third = b.receive();
    for (const text of ["one", "two!", "three"]) await a.send(enc.encode(text), b.localAddr);
    const got = await deadline(Promise.all([first, second, third]), 5000, "three datagrams");
    assert.deepEqual(got.map((m) => dec.decode(m!.data)), ["one", "two", "three"]);
    assert.deepEqual(got.map((m) => m!.truncated), [false, true, false]);
  },
);

eachBackend(
  "DatagramSocket: a waiting receive aborted between two others loses no datagram and keeps order",
  async (backend) => {
    using a = udp(backend);
    using b = udp(backend);
    const controller = new AbortController();
    const first = b.receive({ signal: AbortSignal.timeout(5000) });
    const middle = b.receive({ signal: controller.signal });
    const last = b.receive({ maxSize: 4 });
    controller.abort(new Error("middle gave up"));
    await assert.rejects(middle, /middle gave up/);
    for (const text of ["one", "two!", "three"]) await a.send(enc.encode(text), b.localAddr);
    const got = await deadline(Promise.all([first, last]), 5000, "two datagrams");
    assert.deepEqual(got.map((m) => dec.decode(m!.data)), ["one", "two!"]);
    // The third came when nobody waited: the next receive gets it, whole.
    const kept = await receive(b);
    assert.equal(dec.decode(kept!.data), "three");
    assert.equal(kept!.truncated, false);
  },
);

eachBackend("DatagramSocket.unref() lets a program end while a receive waits", async (backend) => {
  const flags = backend === "builtin" ? ["--unstable-net", ...CHILD_FLAGS] : CHILD_FLAGS;
  const result = await runChild(["unref", backend], { flags });
  assert.equal(result.ok, "waiting");
});
