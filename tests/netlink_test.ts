import assert from "node:assert/strict";
import {
  listSockets,
  type NetlinkMessage,
  NetlinkSocket,
  openNetlink,
  type SocketEntry,
} from "../netlink.ts";
import {
  classifyReply,
  decodeAddress,
  decodeAttributes,
  decodeInetSocket,
  decodeLink,
  decodeMessages,
  decodeRoute,
  decodeUnixSocket,
  encodeAttribute,
  encodeMessage,
  IFINFOMSG,
  NLMSGHDR,
  RTMSG,
} from "../_internal/netlink_codec.ts";
import { adopterFor, type DescribedFd } from "../_internal/adopt.ts";
import { SocketError } from "../errors.ts";
import { NetNs } from "./_netns.ts";
import {
  deadline,
  denoJson,
  denoRun,
  isOpenFd,
  lines,
  needs,
  nextLine,
  prng,
  randomBytes,
  socketFdCount,
  tempDir,
} from "./_helpers.ts";

const CHILD = new URL("./peers/netlink_child.ts", import.meta.url).pathname;
const RTM_NEWLINK = 16, RTM_GETLINK = 18;
const noLookup = () => undefined;

// ---------------------------------------------------------------------------
// The codec

Deno.test("encodeMessage() and decodeMessages() round-trip headers, padding and payloads", () => {
  const a = encodeMessage({ type: 18, flags: 0x301, seq: 7, payload: new Uint8Array([1, 2, 3]) });
  assert.equal(a.length, 20); // 16 + 3, padded to 4
  const b = encodeMessage({ type: 3, flags: 2, seq: 7, pid: 99, payload: new Uint8Array(4) });
  const both = new Uint8Array([...a, ...b]);
  const [m1, m2] = decodeMessages(both);
  assert.deepEqual([m1.type, m1.flags, m1.seq, m1.pid], [18, 0x301, 7, 0]);
  assert.deepEqual([...m1.payload], [1, 2, 3]);
  assert.deepEqual([m2.type, m2.pid, m2.payload.length], [3, 99, 4]);
  assert.equal(decodeMessages(new Uint8Array(0)).length, 0);
});

Deno.test("decodeMessages() refuses a length below the header or past the record", () => {
  const m = encodeMessage({ type: 16, flags: 0, seq: 1, payload: new Uint8Array(8) });
  const v = new DataView(m.buffer);
  v.setUint32(0, 15, true);
  assert.throws(() => decodeMessages(m), RangeError);
  v.setUint32(0, 25, true);
  assert.throws(() => decodeMessages(m), RangeError);
  assert.throws(() => decodeMessages(m.subarray(0, 10)), RangeError);
});

Deno.test("decodeAttributes() reads nested attributes and keeps each within its length", () => {
  const inner = new Uint8Array([
    ...encodeAttribute(53, new TextEncoder().encode("alt0\0")),
    ...encodeAttribute(53, new TextEncoder().encode("alt1\0")),
  ]);
  const outer = new Uint8Array([
    ...encodeAttribute(3, new TextEncoder().encode("eth0\0")),
    ...encodeAttribute(52 | 0x8000, inner),
  ]);
  const [name, props] = decodeAttributes(outer);
  assert.deepEqual([name.type, name.nested, name.data.length], [3, false, 5]);
  assert.deepEqual([props.type, props.nested], [52, true]);
  assert.deepEqual(decodeAttributes(props.data).map((a) => a.data.length), [5, 5]);
  const bad = encodeAttribute(3, new Uint8Array(4));
  new DataView(bad.buffer).setUint16(0, 3, true);
  assert.throws(() => decodeAttributes(bad), RangeError);
  new DataView(bad.buffer).setUint16(0, 9, true);
  assert.throws(() => decodeAttributes(bad), RangeError);
  assert.throws(() => decodeAttributes(new Uint8Array(3)), RangeError);
});

Deno.test("decodeLink() prints flags, names and addresses as ip -j link does", () => {
  const ifi = IFINFOMSG.encode({ type: 1, index: 5, flags: 0x1003 }); // UP|BROADCAST|MULTICAST
  const attrs = [
    encodeAttribute(3, new TextEncoder().encode("veth0\0")),
    encodeAttribute(4, new Uint8Array(new Uint32Array([1500]).buffer)),
    encodeAttribute(5, new Uint8Array(new Uint32Array([6]).buffer)),
    encodeAttribute(16, new Uint8Array([2])),
    encodeAttribute(1, new Uint8Array([2, 0, 0, 0, 0, 0xab])),
  ];
  const payload = new Uint8Array([...ifi, ...attrs.flatMap((a) => [...a])]);
  const m = { type: RTM_NEWLINK, flags: 0, seq: 0, pid: 0, payload };
  const link = decodeLink(m, (i) => i === 6 ? { name: "veth1", up: false } : undefined);
  assert.deepEqual(link, {
    ifindex: 5,
    link: "veth1",
    ifname: "veth0",
    flags: ["NO-CARRIER", "BROADCAST", "MULTICAST", "UP", "M-DOWN"],
    mtu: 1500,
    operstate: "DOWN",
    link_type: "ether",
    address: "02:00:00:00:00:ab",
  });
});

Deno.test("decodeRoute() prints dst, gateway and the non-default fields as ip -j route does", () => {
  const route = (dstLen: number, table: number, attrs: Uint8Array[]) => ({
    type: 24,
    flags: 0,
    seq: 0,
    pid: 0,
    payload: new Uint8Array([
      ...RTMSG.encode({ family: 2, dstLen, table, protocol: 4, scope: 0, type: 1 }),
      ...attrs.flatMap((a) => [...a]),
    ]),
  });
  const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
  const lookup = (i: number) => i === 2 ? { name: "eth0", up: true } : undefined;
  const viaGateway = decodeRoute(
    route(8, 252, [
      encodeAttribute(1, new Uint8Array([10, 0, 0, 0])),
      encodeAttribute(5, new Uint8Array([192, 0, 2, 1])),
      encodeAttribute(4, u32(2)),
      encodeAttribute(15, u32(100)),
    ]),
    lookup,
  );
  assert.deepEqual(viaGateway, {
    route: {
      dst: "10.0.0.0/8",
      gateway: "192.0.2.1",
      dev: "eth0",
      table: "100",
      protocol: "static",
      flags: [],
    },
    table: 100,
    family: "inet",
  });
  const host = decodeRoute(
    route(32, 254, [encodeAttribute(1, new Uint8Array([10, 0, 0, 9]))]),
    lookup,
  );
  assert.equal(host?.route.dst, "10.0.0.9");
  assert.equal(decodeRoute(route(0, 254, [encodeAttribute(4, u32(3))]), lookup)?.route.dev, "if3");
  assert.equal(decodeRoute(route(0, 254, []), lookup)?.route.dst, "default");
});

Deno.test("classifyReply() reads errors, their extended ack message, and the end of a dump", () => {
  const request = encodeMessage({ type: 16, flags: 5, seq: 3, payload: new Uint8Array(0) });
  const message = encodeAttribute(1, new TextEncoder().encode("Unknown device type\0"));
  const errPayload = new Uint8Array(4 + 16 + message.length);
  new DataView(errPayload.buffer).setInt32(0, -95, true);
  errPayload.set(request.subarray(0, 16), 4);
  errPayload.set(message, 20);
  const reply = classifyReply({ type: 2, flags: 0x300, seq: 3, pid: 0, payload: errPayload });
  assert.deepEqual(reply, { kind: "ack", errno: 95, extack: "Unknown device type" });
  const done = classifyReply({ type: 3, flags: 2, seq: 3, pid: 0, payload: new Uint8Array(4) });
  assert.deepEqual(done, { kind: "done", errno: 0, extack: undefined });
  assert.throws(
    () => classifyReply({ type: 2, flags: 0, seq: 3, pid: 0, payload: new Uint8Array(3) }),
    RangeError,
  );
});

Deno.test("the codec's decoders give only RangeError or TypeError for 100,000 random buffers", () => {
  const rand = prng(15);
  const decoders: ((b: Uint8Array) => unknown)[] = [
    decodeMessages,
    decodeAttributes,
    (b) => NLMSGHDR.decode(b),
    (b) => classifyReply(msg(2, b)),
    (b) => classifyReply(msg(3, b)),
    (b) => decodeLink(msg(16, b), noLookup),
    (b) => decodeAddress(msg(20, b), noLookup),
    (b) => decodeRoute(msg(24, b), noLookup),
    (b) => decodeInetSocket(msg(20, b), "tcp"),
    (b) => decodeUnixSocket(msg(20, b)),
  ];
  let decoded = 0, refused = 0;
  for (let i = 0; i < 100_000; i++) {
    const bytes = randomBytes(rand, Math.floor(rand() * 96));
    // Plausible headers and attribute lengths make the fuzz reach past the first check.
    if (bytes.length >= 20 && rand() < 0.5) {
      new DataView(bytes.buffer).setUint16(16, 4 + Math.floor(rand() * (bytes.length - 16)), true);
    }
    const decode = decoders[i % decoders.length];
    try {
      decode(bytes);
      decoded++;
    } catch (err) {
      if (!(err instanceof RangeError || err instanceof TypeError)) throw err;
      refused++;
    }
  }
  assert.equal(decoded + refused, 100_000);
  assert.ok(decoded > 1000 && refused > 1000, `${decoded} decoded, ${refused} refused`);

  function msg(type: number, payload: Uint8Array): NetlinkMessage {
    return { type, flags: 0x200, seq: 0, pid: 0, payload };
  }
});

// ---------------------------------------------------------------------------
// The socket

Deno.test("openNetlink() checks its options before any system call", () => {
  const before = socketFdCount();
  assert.throws(() => openNetlink(undefined as never), TypeError);
  assert.throws(() => openNetlink({ protocol: "routes" as never }), TypeError);
  assert.throws(() => openNetlink({ protocol: 32 }), RangeError);
  assert.throws(() => openNetlink({ protocol: "route", groups: -1 }), RangeError);
  assert.throws(() => openNetlink({ protocol: "route", groups: 1.5 }), TypeError);
  assert.equal(socketFdCount(), before);
});

Deno.test("NetlinkSocket.request() answers one link, and ENODEV for an index none has", async () => {
  using sock = openNetlink({ protocol: "route" });
  assert.ok(sock.localAddr.pid > 0);
  assert.equal(sock.localAddr.transport, "netlink");
  assert.equal(typeof sock.fd, "number");
  assert.equal(sock.backend, "ffi");
  const replies = await sock.request({
    type: RTM_GETLINK,
    payload: IFINFOMSG.encode({ index: 1 }),
  });
  assert.equal(replies.length, 1);
  assert.equal(replies[0].type, RTM_NEWLINK);
  assert.equal(decodeLink(replies[0], noLookup).ifname, "lo");
  await assert.rejects(
    sock.request({ type: RTM_GETLINK, payload: IFINFOMSG.encode({ index: 0x7ffffff0 }) }),
    (err: unknown) => err instanceof SocketError && err.code === "ENODEV",
  );
  const links = await sock.request({ type: RTM_GETLINK, payload: IFINFOMSG.encode({}) }, {
    dump: true,
  });
  assert.ok(links.length >= 1 && links.every((m) => m.type === RTM_NEWLINK));
  sock.close();
  assert.equal(sock.fd, null);
  assert.equal(sock.backend, "ffi");
});

Deno.test(
  "NetlinkSocket.request() carries the kernel's extended ack message in its error",
  needs("CAP_NET_ADMIN"),
  async () => {
    using sock = openNetlink({ protocol: "route" });
    const kind = encodeAttribute(1, new TextEncoder().encode("nosuchkind\0"));
    const payload = new Uint8Array([
      ...IFINFOMSG.encode({}),
      ...encodeAttribute(3, new TextEncoder().encode("nlnokind0\0")),
      ...encodeAttribute(18 | 0x8000, kind),
    ]);
    await assert.rejects(
      sock.request({ type: RTM_NEWLINK, flags: 0x600, payload }),
      (err: unknown) =>
        err instanceof Deno.errors.NotSupported && /\(Unknown device type\)$/.test(err.message),
    );
  },
);

Deno.test("NetlinkSocket.request() is cut by its timeout and by its signal", async () => {
  using sock = openNetlink({ protocol: "route" });
  // A NOOP without NLM_F_ACK is one the kernel never answers.
  await assert.rejects(
    sock.request({ type: 1 }, { dump: true, timeout: 50 }),
    Deno.errors.TimedOut,
  );
  const reason = new Error("stop");
  await assert.rejects(
    sock.request({ type: 1 }, { dump: true, signal: AbortSignal.abort(reason) }),
    (err) => err === reason,
  );
  // The socket still answers the next request.
  const [reply] = await sock.request({
    type: RTM_GETLINK,
    payload: IFINFOMSG.encode({ index: 1 }),
  });
  assert.equal(reply.type, RTM_NEWLINK);
  await assert.rejects(sock.request({ type: 70_000 }), RangeError);
  await assert.rejects(sock.request({ type: 18 }, { timeout: 0 }), RangeError);
});

Deno.test("NetlinkSocket.send(to) reaches another socket; receive and iteration read it", async () => {
  using a = openNetlink({ protocol: "route" });
  using b = openNetlink({ protocol: "route" });
  for (const n of [1, 2, 3]) {
    const m = encodeMessage({ type: 0x7ff0, flags: 0, seq: n, payload: new Uint8Array(n) });
    assert.equal(await a.send(m, b.localAddr), m.length);
  }
  const first = await deadline(b.receive(), 1000, "the first record");
  assert.equal(first?.from?.pid, a.localAddr.pid);
  assert.equal(decodeMessages(first!.data)[0].seq, 1);
  let seq = 1;
  for await (const record of b) {
    assert.equal(decodeMessages(record.data)[0].seq, ++seq);
    if (seq === 3) break;
  }
  await assert.rejects(a.send(new Uint8Array(16), { transport: "ip" } as never), TypeError);
});

Deno.test("NetlinkSocket.receiveMany() returns every record queued, in order, with one wait", async () => {
  using a = openNetlink({ protocol: "route" });
  using b = openNetlink({ protocol: "route" });
  for (let n = 1; n <= 5; n++) {
    await a.send(
      encodeMessage({ type: 0x7ff0, flags: 0, seq: n, payload: new Uint8Array(4) }),
      b.localAddr,
    );
  }
  const batch = await deadline(b.receiveMany({ max: 16 }), 1000, "the batch");
  assert.deepEqual(batch?.map((r) => decodeMessages(r.data)[0].seq), [1, 2, 3, 4, 5]);
  assert.ok(batch?.every((r) => r.from?.pid === a.localAddr.pid && !r.truncated));
  await a.send(
    encodeMessage({ type: 0x7ff0, flags: 0, seq: 6, payload: new Uint8Array(4) }),
    b.localAddr,
  );
  const [cut] = (await b.receiveMany({ max: 1, maxSize: 8 }))!;
  assert.deepEqual([cut.data.length, cut.truncated], [8, true]);
  b.close();
  assert.equal(await b.receiveMany(), null);
});

Deno.test("the netlink adopter takes a raw netlink descriptor and it works as a NetlinkSocket", async () => {
  const lib = Deno.dlopen("libc.so.6", {
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  });
  try {
    const fd = lib.symbols.socket(16, 3, 0); // AF_NETLINK, SOCK_RAW, NETLINK_ROUTE
    assert.ok(fd >= 0);
    let taken = false;
    const d: DescribedFd = {
      fd,
      family: "netlink",
      kind: "raw",
      protocol: 0,
      listening: false,
      take: () => taken = true,
    };
    const adopter = adopterFor(d);
    assert.ok(adopter);
    const sock = adopter.adopt(d) as NetlinkSocket;
    assert.ok(sock instanceof NetlinkSocket && taken);
    assert.equal(sock.fd, fd);
    assert.ok(sock.localAddr.pid > 0);
    const links = await sock.request({ type: RTM_GETLINK, payload: IFINFOMSG.encode({}) }, {
      dump: true,
    });
    assert.ok(links.length >= 1);
    sock.close();
    assert.equal(isOpenFd(fd), false);
  } finally {
    lib.close();
  }
});

// ---------------------------------------------------------------------------
// Listings and changes, against ip in a namespace of the test's own

/** A namespace with a veth pair up (v4, v6, routes via a gateway, another table) and one down. */
function testNamespace(): NetNs {
  const ns = new NetNs({ prefix: "nl-" });
  try {
    // No duplicate address detection: no address flag changes while ip and we look.
    ns.exec(["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"]);
    ns.exec(["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
    ns.ip("link", "add", "nlv0", "type", "veth", "peer", "name", "nlv1");
    ns.ip("link", "add", "nlv2", "type", "veth", "peer", "name", "nlv3");
    ns.ip("addr", "add", "10.9.0.1/24", "dev", "nlv0");
    ns.ip("addr", "add", "10.9.0.3/24", "dev", "nlv0", "label", "nlv0:1");
    ns.ip("addr", "add", "fd09::1/64", "dev", "nlv0", "nodad");
    ns.ip("link", "set", "nlv0", "up");
    ns.ip("link", "set", "nlv1", "up");
    ns.ip("route", "add", "10.10.0.0/16", "via", "10.9.0.2");
    ns.ip("route", "add", "10.11.0.0/16", "via", "10.9.0.2", "table", "100", "proto", "static");
    ns.ip("route", "add", "10.12.0.5", "dev", "nlv0", "metric", "7");
    ns.ip("route", "add", "unreachable", "10.13.0.0/24");
    ns.ip("-6", "route", "add", "fd10::/48", "via", "fd09::2");
    // Multipath: ip prints the paths as "nexthops".
    ns.ip(
      "route",
      "add",
      "10.14.0.0/16",
      "nexthop",
      "via",
      "10.9.0.2",
      "weight",
      "1",
      "nexthop",
      "via",
      "10.9.0.4",
      "dev",
      "nlv0",
      "weight",
      "3",
      "onlink",
    );
    ns.ip(
      "-6",
      "route",
      "add",
      "fd11::/48",
      "nexthop",
      "via",
      "fd09::2",
      "nexthop",
      "via",
      "fd09::4",
    );
    // Metrics, realms and an expiring IPv6 route: ip prints "metrics", "flow" and "expires".
    ns.ip(
      ..."route add 10.15.0.0/16 dev nlv0 mtu lock 1400 advmss 1300 rtt 80ms rttvar 20ms".split(
        " ",
      ),
      ..."hoplimit 64 congctl cubic features ecn realm 5".split(" "),
    );
    ns.ip("-6", "route", "add", "fd12::/48", "dev", "nlv0", "expires", "3000");
    return ns;
  } catch (err) {
    ns[Symbol.dispose]();
    throw err;
  }
}

// deno-lint-ignore no-explicit-any
type Json = any;

/** Ours, and ip's before and after, until ip's two agree (the kernel may still be settling). */
async function snapshot(ns: NetNs): Promise<{ ours: Json; ip: Json }> {
  const ipNow = () => ({
    links: JSON.parse(ns.ip("-j", "link")),
    addresses: JSON.parse(ns.ip("-j", "addr")).flatMap((l: Json) =>
      l.addr_info.map((a: Json) => ({ ifindex: l.ifindex, ifname: l.ifname, ...a }))
    ),
    routes: dedupe([
      ...JSON.parse(ns.ip("-j", "route", "show", "table", "all")),
      ...JSON.parse(ns.ip("-6", "-j", "route", "show", "table", "all")),
    ]),
  });
  for (let attempt = 0; attempt < 5; attempt++) {
    const before = ipNow();
    const ours = await denoJson(CHILD, {
      flags: ["--allow-ffi"],
      args: ["dump"],
      prefix: ["ip", "netns", "exec", ns.name],
    });
    const after = ipNow();
    if (JSON.stringify(before) === JSON.stringify(after)) return { ours, ip: after };
  }
  throw new Error("ip's view of the namespace kept changing");
}

function dedupe(list: Json[]): Json[] {
  return [...new Map(list.map((x) => [JSON.stringify(x), x])).values()];
}

/** Sorted canonical JSON: the comparison is by value, whatever the order of keys or entries. */
function canonical(list: Json[]): string[] {
  const sortKeys = (x: Json): Json =>
    Array.isArray(x)
      ? x.map(sortKeys)
      : x !== null && typeof x === "object"
      ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sortKeys(x[k])]))
      : x;
  return list.map((x) => JSON.stringify(sortKeys(x))).sort();
}

/**
 * The fields installed iproute2 (6.1) does not print yet and we do: an
 * address's `protocol` (IFA_PROTO, printed from iproute2 6.3).
 */
function withoutNewerFields(addresses: Json[]): Json[] {
  return addresses.map(({ protocol: _, ...rest }: Json) => rest);
}

Deno.test(
  'listLinks(), listAddresses() and listRoutes({ table: "all" }) print what ip -j prints',
  needs("CAP_NET_ADMIN"),
  async () => {
    using ns = testNamespace();
    const { ours, ip } = await snapshot(ns);
    assert.equal(ours.links.length, 5);
    assert.deepEqual(canonical(ours.links), canonical(ip.links));
    const down = ours.links.find((l: Json) => l.ifname === "nlv2");
    assert.equal(down.operstate, "DOWN");
    // Its peer is down too: ip marks that M-DOWN.
    assert.deepEqual(down.flags, ["BROADCAST", "MULTICAST", "M-DOWN"]);
    assert.equal(ours.links.find((l: Json) => l.ifname === "nlv0").link, "nlv1");
    assert.deepEqual(
      canonical(withoutNewerFields(ours.addresses)),
      canonical(withoutNewerFields(ip.addresses)),
    );
    assert.ok(ours.addresses.some((a: Json) => a.label === "nlv0:1" && a.local === "10.9.0.3"));
    assert.deepEqual(canonical(ours.routes), canonical(ip.routes));
    const via = ours.routes.find((r: Json) => r.dst === "10.11.0.0/16");
    assert.deepEqual(
      [via.gateway, via.table, via.protocol, via.dev],
      ["10.9.0.2", "100", "static", "nlv0"],
    );
    assert.ok(ours.routes.some((r: Json) => r.dst === "10.12.0.5" && r.metric === 7));
    assert.ok(ours.routes.some((r: Json) => r.dst === "fd10::/48" && r.gateway === "fd09::2"));
    const multipath = ours.routes.find((r: Json) => r.dst === "10.14.0.0/16");
    assert.deepEqual(multipath.nexthops, [
      { gateway: "10.9.0.2", dev: "nlv0", weight: 1, flags: [] },
      { gateway: "10.9.0.4", dev: "nlv0", weight: 3, flags: ["onlink"] },
    ]);
    const metered = ours.routes.find((r: Json) => r.dst === "10.15.0.0/16");
    assert.deepEqual(metered.metrics, [
      {
        mtu: 1400,
        advmss: 1300,
        rtt: 80,
        rttvar: 20,
        hoplimit: 64,
        ecn: null,
        congestion: "cubic",
      },
    ]);
    assert.deepEqual(metered.flow, { to: "5" });
    const expiring = ours.routes.find((r: Json) => r.dst === "fd12::/48");
    assert.ok(expiring.expires > 2900 && expiring.expires <= 3000, String(expiring.expires));
  },
);

Deno.test(
  "watchNetwork() reports link up/down and address add/remove in order within 1 s",
  needs("CAP_NET_ADMIN"),
  async () => {
    using ns = testNamespace();
    await using child = ns.spawn(denoArgv(["watch", "4"]));
    const out = lines(child.stdout);
    assert.equal(await nextLine(out, 10_000), "ready");
    const expect = async (what: string, matches: (c: Json) => boolean) => {
      for (;;) {
        const change = JSON.parse(await nextLine(out, 1000));
        if (matches(change)) return change;
        // Other changes of the same action (an operstate update) may come first.
        assert.ok(change.type === "link", `unexpected while waiting for ${what}: ${change}`);
      }
    };
    ns.ip("link", "set", "nlv2", "up");
    await expect(
      "nlv2 up",
      (c) =>
        c.type === "link" && c.change === "new" && c.link.ifname === "nlv2" &&
        c.link.flags.includes("UP"),
    );
    ns.ip("link", "set", "nlv2", "down");
    await expect(
      "nlv2 down",
      (c) => c.type === "link" && c.link.ifname === "nlv2" && !c.link.flags.includes("UP"),
    );
    ns.ip("addr", "add", "10.20.0.1/24", "dev", "nlv0");
    const added = await expect("the address added", (c) => c.type === "address");
    assert.deepEqual(
      [added.change, added.address.local, added.address.prefixlen, added.address.ifname],
      ["new", "10.20.0.1", 24, "nlv0"],
    );
    ns.ip("addr", "del", "10.20.0.1/24", "dev", "nlv0");
    const removed = await expect("the address removed", (c) => c.type === "address");
    assert.deepEqual([removed.change, removed.address.local], ["delete", "10.20.0.1"]);
  },
);

Deno.test(
  "setLinkUp() sets a link up and down as ip link set does",
  needs("CAP_NET_ADMIN"),
  async () => {
    using ns = testNamespace();
    const set = (state: string) =>
      denoJson(CHILD, {
        flags: ["--allow-ffi"],
        args: ["set", "nlv2", state],
        prefix: ["ip", "netns", "exec", ns.name],
      }) as unknown as Promise<string[]>;
    const flags = () => (JSON.parse(ns.ip("-j", "link", "show", "nlv2"))[0].flags as string[]);
    const upFlags = await set("up");
    assert.ok(upFlags.includes("UP") && flags().includes("UP"), String(upFlags));
    const downFlags = await set("down");
    assert.ok(!downFlags.includes("UP") && !flags().includes("UP"), String(downFlags));
    const { setLinkUp } = await import("../netlink.ts");
    await assert.rejects(setLinkUp("nlnosuch0", true), Deno.errors.NotFound);
    await assert.rejects(setLinkUp(0, true), RangeError);
    await assert.rejects(setLinkUp("lo", "yes" as never), TypeError);
  },
);

function denoArgv(args: string[]): string[] {
  return [Deno.execPath(), "run", "--quiet", "--no-prompt", "--allow-ffi", CHILD, ...args];
}

// ---------------------------------------------------------------------------
// Socket diagnostics, against ss

/** ss's lines, split into columns; `-e` adds `ino:N` to inet lines. */
function ss(args: string[]): string[][] {
  const out = new Deno.Command("ss", { args: [...args, "-H"], stdout: "piped" }).outputSync();
  assert.ok(out.success, `ss ${args.join(" ")} failed`);
  return new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => l.trim().split(/\s+/));
}

function splitEndpoint(text: string): [string, number] {
  const at = text.lastIndexOf(":");
  const port = text.slice(at + 1);
  return [text.slice(0, at).replace(/^\[|\]$/g, ""), port === "*" ? 0 : Number(port)];
}

function inode(columns: string[]): number {
  return Number(columns.find((c) => c.startsWith("ino:"))?.slice(4) ?? 0);
}

Deno.test("listSockets() shows TCP and UDP sockets as ss -tane and ss -uane do", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  using client = await Deno.connect({ hostname: "127.0.0.1", port });
  using _served = await listener.accept();
  const udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  using _udp = { [Symbol.dispose]: () => udp.close() };
  const udpPort = (udp.addr as Deno.NetAddr).port;
  const clientPort = (client.localAddr as Deno.NetAddr).port;

  const tcp = await listSockets({ protocol: "tcp", family: "inet" });
  const mine = (s: SocketEntry) => s.localPort === port || s.peerPort === port;
  const ours = tcp.filter(mine).map((s) =>
    `${s.state} ${s.localAddress}:${s.localPort} ${s.peerAddress}:${s.peerPort} ${s.inode}`
  ).sort();
  const theirs = ss(["-tane", "-4"]).map((c) => {
    const [la, lp] = splitEndpoint(c[3]), [pa, pp] = splitEndpoint(c[4]);
    return { line: `${c[0]} ${la}:${lp} ${pa}:${pp} ${inode(c)}`, lp, pp };
  }).filter((e) => e.lp === port || e.pp === port).map((e) => e.line).sort();
  assert.equal(ours.length, 3);
  assert.deepEqual(ours, theirs);
  assert.ok(tcp.some((s) => s.state === "ESTAB" && s.localPort === clientPort && s.inode > 0));
  assert.ok(tcp.some((s) => s.state === "LISTEN" && s.localPort === port && s.uid === Deno.uid()));

  const udps = (await listSockets({ protocol: "udp" })).filter((s) => s.localPort === udpPort);
  const udpLine = ss(["-uane"]).find((c) => splitEndpoint(c[3])[1] === udpPort);
  assert.ok(udpLine);
  assert.equal(udps.length, 1);
  assert.deepEqual(
    [udps[0].state, udps[0].localAddress, udps[0].inode, udps[0].recvQ],
    [udpLine[0], "127.0.0.1", inode(udpLine), Number(udpLine[1])],
  );
  await assert.rejects(listSockets({ protocol: "sctp" as never }), TypeError);
  await assert.rejects(listSockets({ protocol: "unix", family: "inet" }), TypeError);
});

Deno.test('listSockets({ protocol: "unix" }) shows paths, states and inodes as ss -xa does', async () => {
  using dir = tempDir("nl-");
  const path = `${dir.path}/listen.sock`;
  using listener = Deno.listen({ transport: "unix", path });
  using client = await Deno.connect({ transport: "unix", path });
  using _served = await listener.accept();
  void client;
  const entries = await listSockets({ protocol: "unix" });
  const listening = entries.find((e) => e.localAddress === path && e.state === "LISTEN");
  assert.ok(listening);
  assert.equal(listening.netid, "u_str");
  const ssLine = ss(["-xa"]).find((c) => c[4] === path && c[1] === "LISTEN");
  assert.ok(ssLine, `ss -xa shows ${path}`);
  assert.deepEqual(
    [ssLine[0], ssLine[1], Number(ssLine[5])],
    [listening.netid, listening.state, listening.inode],
  );
  // The accepted end carries the listener's path; its peer is the client's inode.
  const served = entries.find((e) => e.localAddress === path && e.state === "ESTAB");
  assert.ok(served);
  const peer = entries.find((e) => e.inode === served.peerPort);
  assert.ok(peer && peer.peerPort === served.inode && peer.peerAddress === path);
  const ssServed = ss(["-xa"]).find((c) => Number(c[5]) === served.inode);
  assert.ok(ssServed);
  assert.deepEqual([ssServed[1], Number(ssServed[7])], ["ESTAB", served.peerPort]);
});

Deno.test("the listings need --allow-ffi and say so, and leave no socket open", async () => {
  const out = await denoRun(CHILD, { args: ["dump"], stderr: "piped" }).output();
  assert.equal(out.success, false);
  assert.match(new TextDecoder().decode(out.stderr), /NotCapable.*--allow-ffi/);
  const { listAddresses, listLinks, listRoutes } = await import("../netlink.ts");
  const before = socketFdCount();
  const [links, addresses, routes] = await Promise.all([
    listLinks(),
    listAddresses(),
    listRoutes({ table: "local" }),
  ]);
  assert.ok(links.some((l) => l.ifname === "lo" && l.link_type === "loopback"));
  assert.ok(addresses.some((a) => a.local === "127.0.0.1" && a.prefixlen === 8));
  assert.ok(routes.some((r) => r.dst === "127.0.0.1" && r.type === "local" && r.table === "local"));
  assert.equal(socketFdCount(), before);
});

Deno.test("listRoutes() and listSockets() check their options", async () => {
  const { listRoutes, watchNetwork } = await import("../netlink.ts");
  await assert.rejects(listRoutes({ family: "ipv4" as never }), TypeError);
  await assert.rejects(listRoutes({ table: "nat" as never }), TypeError);
  await assert.rejects(listRoutes({ table: 0 }), RangeError);
  assert.throws(() => watchNetwork({ types: ["neighbour" as never] }), TypeError);
  assert.throws(() => watchNetwork({ types: [] }), TypeError);
  // An aborted watch ends at once and leaves no socket open.
  const before = socketFdCount();
  const changes = watchNetwork({ signal: AbortSignal.abort() });
  assert.equal((await deadline(changes.next(), 1000, "the aborted watch")).done, true);
  assert.equal(socketFdCount(), before);
});
