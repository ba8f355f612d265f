import assert from "node:assert/strict";
import { listenDatagram } from "../datagram.ts";
import { openRaw } from "../raw.ts";
import { decodeEcho, decodeIPv4Header, encodeEcho } from "../icmp.ts";
import { deadline, denoRun, needs, python } from "./_helpers.ts";
import { NetNs } from "./_netns.ts";

/** A Python sender: one datagram to HOST PORT with the TTL/hop limit and TOS/class given. */
const SENDER = `
import socket, sys
host, port, hops, tos = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
v6 = ":" in host
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
if v6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, hops)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
else:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, hops)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
s.sendto(b"info", (host, port))
`;

Deno.test(
  "receiveInfo (UDP): a Python sender's IP_TTL=7, IP_TOS=0x10 arrive as ttl 7, tos 0x10, with destination and timestamp",
  needs("python3"),
  async () => {
    using sock = listenDatagram({
      hostname: "127.0.0.1",
      port: 0,
      receiveInfo: ["ttl", "tos", "destination", "timestamp"],
    });
    assert.equal(sock.backend, "ffi");
    const before = BigInt(Date.now()) * 1_000_000n;
    const received = sock.receive();
    await using _peer = python(SENDER, "127.0.0.1", String(sock.localAddr.port), "7", "16");
    const m = await deadline(received, 5000, "the datagram");
    const after = BigInt(Date.now() + 1) * 1_000_000n;
    assert.ok(m);
    assert.equal(new TextDecoder().decode(m.data), "info");
    assert.equal(m.ttl, 7);
    assert.equal(m.tos, 0x10);
    assert.equal(m.hopLimit, undefined);
    assert.deepEqual(m.destination, { address: "127.0.0.1", ifindex: 1 });
    assert.equal(typeof m.timestamp, "bigint");
    assert.ok(
      m.timestamp! >= before && m.timestamp! <= after,
      `${before} ≤ ${m.timestamp} ≤ ${after}`,
    );
  },
);

Deno.test(
  "receiveInfo (UDP over IPv6): hop limit 9 and traffic class 0x20 arrive as hopLimit and trafficClass",
  needs("python3"),
  async () => {
    using sock = listenDatagram({
      hostname: "::1",
      port: 0,
      receiveInfo: ["ttl", "tos", "destination"],
    });
    const received = sock.receive();
    await using _peer = python(SENDER, "::1", String(sock.localAddr.port), "9", "32");
    const m = await deadline(received, 5000, "the datagram");
    assert.ok(m);
    assert.equal(m.hopLimit, 9);
    assert.equal(m.trafficClass, 0x20);
    assert.equal(m.ttl, undefined);
    assert.deepEqual(m.destination, { address: "::1", ifindex: 1 });
  },
);

Deno.test("receiveInfo: without it a Message carries none of the fields", async () => {
  using a = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
  using b = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
  await b.send(new Uint8Array([1]), a.localAddr);
  const m = await deadline(a.receive(), 5000, "the datagram");
  assert.ok(m);
  for (const k of ["ttl", "tos", "destination", "timestamp"]) assert.equal(k in m, false, k);
  assert.throws(() => listenDatagram({ port: 0, receiveInfo: ["size" as "ttl"] }), TypeError);
  assert.throws(
    () => listenDatagram({ port: 0, receiveInfo: ["ttl"], backend: "builtin" }),
    Deno.errors.NotSupported,
  );
});

Deno.test(
  "receiveInfo: two addresses in a namespace give each datagram its own destination",
  needs("CAP_NET_ADMIN"),
  async () => {
    using ns = new NetNs({ prefix: "op" });
    ns.ip("addr", "add", "10.99.0.1/32", "dev", "lo");
    ns.ip("addr", "add", "10.99.0.2/32", "dev", "lo");
    const child = new URL("./peers/receive_info_child.ts", import.meta.url).pathname;
    const out = await deadline(
      denoRun(child, { flags: ["--allow-net", "--allow-ffi"], prefix: ns.wrap([]) }).output(),
      20_000,
      "the child in the namespace",
    );
    assert.ok(out.success, `child exited ${out.code}`);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), [
      { data: "to-1", destination: { address: "10.99.0.1", ifindex: 1 } },
      { data: "to-2", destination: { address: "10.99.0.2", ifindex: 1 } },
    ]);
  },
);

Deno.test(
  "receiveInfo (raw IPv4): each packet's ttl is its IP header's: 3 on the request, 64 on the reply",
  needs("CAP_NET_RAW"),
  async () => {
    using sock = openRaw({ family: "ipv4", protocol: "icmp", receiveInfo: ["ttl"] });
    using ping = openRaw({ family: "ipv4", protocol: "icmp" });
    ping.setOption("ttl", 3);
    const id = (Deno.pid ^ 0x7a7a) & 0xffff;
    await ping.send(
      encodeEcho({ family: "ipv4", id, sequence: 1, data: new Uint8Array(8) }),
      { transport: "ip", hostname: "127.0.0.1" },
    );
    const seen = new Map<string, number>();
    while (seen.size < 2) {
      const m = await deadline(sock.receive(), 5000, "the echo request and reply");
      assert.ok(m);
      const ip = decodeIPv4Header(m.data);
      const echo = decodeEcho(ip.payload, "ipv4");
      if (echo?.id !== id) continue;
      assert.equal(m.ttl, ip.ttl);
      seen.set(echo.type, ip.ttl);
    }
    assert.deepEqual(Object.fromEntries(seen), { request: 3, reply: 64 });
  },
);
