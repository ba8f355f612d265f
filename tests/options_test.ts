import assert from "node:assert/strict";
import { connectStream, listenStream, type StreamConn } from "../stream.ts";
import { listenDatagram } from "../datagram.ts";
import { seqpacketPair } from "../seqpacket.ts";
import { openPacket, openRaw } from "../raw.ts";
import { openNetlink } from "../netlink.ts";
import { getRawOption, setRawOption } from "../raw_option.ts";
import type { NetAddr, SocketOptionName, SocketOptions } from "../types.ts";
import { deadline, lines, needs, nextLine, python, socketFdCount } from "./_helpers.ts";

type Values = Partial<SocketOptions>;

/** Sets every option of `values` on `sock`, then reads each back. */
function roundTrip(
  sock: {
    setOption<K extends SocketOptionName>(n: K, v: SocketOptions[K]): void;
    getOption<K extends SocketOptionName>(n: K): SocketOptions[K];
  },
  values: Values,
): void {
  for (const [name, value] of Object.entries(values) as [SocketOptionName, never][]) {
    sock.setOption(name, value);
  }
  for (const [name, value] of Object.entries(values) as [SocketOptionName, never][]) {
    const expected = name.endsWith("BufferSize") ? (value as number) * 2 : value;
    assert.equal(sock.getOption(name), expected, name);
  }
}

/** A connected FFI TCP pair on loopback. */
async function tcpPair(
  hostname = "127.0.0.1",
): Promise<[StreamConn<NetAddr>, StreamConn<NetAddr>, () => void]> {
  const listener = listenStream({ hostname, port: 0, backend: "ffi" });
  const accepted = listener.accept();
  const client = await connectStream({ hostname, port: listener.addr.port, backend: "ffi" });
  const server = await deadline(accepted, 5000, "accept");
  return [client, server, () => {
    client.close();
    server.close();
    listener.close();
  }];
}

/** `ss -tino` lines for the connection from local port `port`. */
async function ssLine(port: number): Promise<string> {
  const out = await new Deno.Command("ss", {
    args: ["-tino", "state", "established", `( sport = :${port} )`],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout);
}

Deno.test("setOption()/getOption() on a TCP conn: every TCP and IPv4 option reads back", async () => {
  const [client, , done] = await tcpPair();
  try {
    roundTrip(client, {
      keepAlive: true,
      keepAliveIdle: 47,
      keepAliveInterval: 9,
      keepAliveCount: 4,
      noDelay: true,
      userTimeout: 12345,
      ttl: 33,
      tos: 0x10,
      reuseAddress: true,
      reusePort: true,
      receiveBufferSize: 100_000,
      sendBufferSize: 100_000,
      bindToDevice: "lo",
    });
    roundTrip(client, { keepAlive: false, noDelay: false, bindToDevice: "" });
  } finally {
    done();
  }
});

Deno.test("setOption(): ss -tino shows the keep-alive timer from keepAliveIdle", async () => {
  const [client, , done] = await tcpPair();
  try {
    const port = client.localAddr.port;
    assert.doesNotMatch(await ssLine(port), /keepalive/);
    client.setOption("keepAliveIdle", 1234);
    client.setOption("keepAlive", true);
    const line = await ssLine(port);
    // The timer runs from the idle time set: 1234 s, which ss rounds to minutes.
    assert.match(line, /timer:\(keepalive,20min(3[34]sec)?,0\)/, line);
  } finally {
    done();
  }
});

Deno.test("setOption()/getOption() on IPv6 TCP and UDP: hopLimit, trafficClass, v6Only", async () => {
  const [client, , done] = await tcpPair("::1");
  try {
    roundTrip(client, { hopLimit: 17, trafficClass: 0x28 });
    assert.throws(() => client.setOption("ttl", 3), Deno.errors.NotSupported);
  } finally {
    done();
  }
  using udp = listenDatagram({ hostname: "::1", port: 0, backend: "ffi" });
  // Bound to an IPv6 address other than "::", Linux makes the socket v6-only;
  // and once bound, IPV6_V6ONLY is fixed (listenDatagram's v6Only sets it before).
  assert.equal(udp.getOption("v6Only"), true);
  assert.throws(
    () => udp.setOption("v6Only", false),
    (e: Error) => /EINVAL|invalid/.test(e.message),
  );
  roundTrip(udp, {
    hopLimit: 5,
    multicastHops: 3,
    multicastLoop: false,
    multicastInterface: 1,
    trafficClass: 0x20,
  });
});

Deno.test("setOption()/getOption() on UDP: broadcast, multicast and buffer sizes", () => {
  using udp = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
  roundTrip(udp, {
    broadcast: true,
    multicastTtl: 9,
    multicastLoop: false,
    ttl: 200,
    tos: 0xb8,
    receiveBufferSize: 65_536,
    sendBufferSize: 65_536,
    reusePort: true,
  });
  udp.setOption("multicastInterface", 1);
  assert.throws(() => udp.getOption("multicastInterface"), Deno.errors.NotSupported);
});

Deno.test("setOption(): mark needs CAP_NET_ADMIN and reads back", needs("CAP_NET_ADMIN"), () => {
  using udp = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
  roundTrip(udp, { mark: 0xfeedbeef });
});

Deno.test("setOption(): a name that does not apply is NotSupported, before any system call", () => {
  using udp = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
  assert.throws(
    () => udp.setOption("noDelay", true),
    (e: Error) =>
      e instanceof Deno.errors.NotSupported &&
      /noDelay applies to TCP sockets, not to this IPv4 datagram socket/.test(e.message),
  );
  assert.throws(() => udp.getOption("hopLimit"), Deno.errors.NotSupported);
  assert.throws(() => udp.setOption("v6Only", true), Deno.errors.NotSupported);
  assert.throws(
    () => udp.setOption("nagle" as SocketOptionName, true as never),
    (e: Error) => e instanceof TypeError && /unknown socket option "nagle"/.test(e.message),
  );
  assert.throws(() => udp.setOption("broadcast", 1 as never), TypeError);
  assert.throws(() => udp.setOption("ttl", 0), RangeError);
  assert.throws(() => udp.setOption("ttl", 1.5), TypeError);
  assert.throws(() => udp.setOption("bindToDevice", "a/b"), TypeError);
  udp.close();
  assert.throws(() => udp.setOption("ttl", 5), Deno.errors.BadResource);
});

Deno.test('setOption()/getOption()/tcpInfo() on the built-in backend are NotSupported naming backend: "ffi"', async () => {
  using listener = listenStream({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  using client = await connectStream({ hostname: "127.0.0.1", port: listener.addr.port });
  using _server = await accepted;
  const ffi = (e: Error) =>
    e instanceof Deno.errors.NotSupported && /backend: "ffi"/.test(e.message);
  assert.throws(() => client.setOption("keepAlive", true), ffi);
  assert.throws(() => client.getOption("keepAlive"), ffi);
  assert.throws(() => client.tcpInfo(), ffi);
  assert.throws(() => listener.getOption("reusePort"), ffi);
  using udp = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "builtin" });
  assert.throws(() => udp.setOption("ttl", 5), ffi);
});

Deno.test(
  "setOption()/getOption() on seqpacket, listener, raw, packet and netlink sockets",
  needs("CAP_NET_RAW"),
  () => {
    const [a, b] = seqpacketPair();
    try {
      roundTrip(a, { sendBufferSize: 50_000, receiveBufferSize: 50_000 });
      assert.throws(() => a.setOption("ttl", 3), Deno.errors.NotSupported);
    } finally {
      a.close();
      b.close();
    }
    using listener = listenStream({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
    roundTrip(listener, { reusePort: true, receiveBufferSize: 80_000 });
    using raw = openRaw({ family: "ipv4", protocol: "icmp" });
    roundTrip(raw, { ttl: 7, tos: 0x10, broadcast: true, multicastTtl: 2 });
    assert.throws(() => raw.setOption("reusePort", true), Deno.errors.NotSupported);
    using link = openPacket({ interface: "lo" });
    roundTrip(link, { receiveBufferSize: 200_000, bindToDevice: "lo" });
    using netlink = openNetlink({ protocol: "route" });
    roundTrip(netlink, { receiveBufferSize: 300_000 });
    assert.throws(() => netlink.setOption("bindToDevice", "lo"), Deno.errors.NotSupported);
  },
);

Deno.test("tcpInfo() after 1 MiB on loopback: established, bytesAcked ≥ 1 MiB, rtt > 0", async () => {
  const before = socketFdCount();
  const [client, server, done] = await tcpPair();
  try {
    const mib = new Uint8Array(1 << 20).fill(7);
    const drained = (async () => {
      const buf = new Uint8Array(65536);
      let total = 0;
      while (total < mib.length) {
        const n = await server.read(buf);
        if (n === null) break;
        total += n;
      }
      return total;
    })();
    await client.write(mib);
    assert.equal(await deadline(drained, 10_000, "drain"), mib.length);
    const info = client.tcpInfo();
    assert.equal(info.state, "established");
    assert.ok(info.bytesAcked !== undefined && info.bytesAcked >= BigInt(mib.length), "acked");
    assert.ok(info.rtt > 0, "rtt");
    assert.ok(info.cwnd > 0 && info.pmtu > 0 && info.sendMss > 0, "cwnd, pmtu, mss");
    const peer = server.tcpInfo();
    assert.ok(peer.bytesReceived !== undefined && peer.bytesReceived >= BigInt(mib.length));
  } finally {
    done();
  }
  assert.equal(socketFdCount(), before);
  assert.throws(() => client.tcpInfo(), Deno.errors.BadResource);
});

Deno.test("setRawOption()/getRawOption(): SO_RCVBUF by number reads back doubled", () => {
  using udp = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
  const value = new Uint8Array(new Int32Array([40_000]).buffer);
  setRawOption(udp, 1, 8, value);
  const bytes = getRawOption(udp, 1, 8, 4);
  assert.equal(bytes.length, 4);
  assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getInt32(0, true), 80_000);
  assert.equal(udp.getOption("receiveBufferSize"), 80_000);
  assert.throws(() => getRawOption(udp, 1, 8, 0), RangeError);
  assert.throws(() => setRawOption(udp, -1, 8, value), RangeError);
  assert.throws(() => setRawOption({ fd: 0 }, 1, 8, value), TypeError);
  udp.close();
  assert.throws(() => getRawOption(udp, 1, 8, 4), Deno.errors.NotSupported);
});

Deno.test("connectStream({ localAddr }) binds the source address and port before connecting", async () => {
  using listener = listenStream({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
  const accepted = listener.accept();
  using probe = listenStream({ hostname: "127.0.0.2", port: 0, backend: "ffi" });
  const port = probe.addr.port;
  probe.close();
  using client = await connectStream({
    hostname: "127.0.0.1",
    port: listener.addr.port,
    localAddr: { hostname: "127.0.0.2", port },
  });
  using server = await deadline(accepted, 5000, "accept");
  assert.equal(client.backend, "ffi");
  assert.deepEqual(client.localAddr, { transport: "tcp", hostname: "127.0.0.2", port });
  assert.deepEqual(server.remoteAddr, { transport: "tcp", hostname: "127.0.0.2", port });
  await assert.rejects(
    connectStream({ hostname: "127.0.0.1", port: 1, localAddr: { hostname: "::1" } }),
    TypeError,
  );
  await assert.rejects(
    connectStream({ hostname: "127.0.0.1", port: 1, localAddr: {}, backend: "builtin" }),
    Deno.errors.NotSupported,
  );
});

Deno.test("listenDatagram({ v6Only, interface }) sets them before binding", () => {
  using only = listenDatagram({ hostname: "::", port: 0, v6Only: true });
  assert.equal(only.getOption("v6Only"), true);
  using dual = listenDatagram({ hostname: "::", port: 0, v6Only: false });
  assert.equal(dual.getOption("v6Only"), false);
  using lo = listenDatagram({ hostname: "127.0.0.1", port: 0, interface: "lo" });
  assert.equal(lo.backend, "ffi");
  assert.equal(lo.getOption("bindToDevice"), "lo");
  assert.throws(() => listenDatagram({ hostname: "127.0.0.1", port: 0, v6Only: true }), TypeError);
});

/** A Python receiver: prints "TTL TOS" (or "HOPS TCLASS" on IPv6) of the next datagram, as the kernel saw it. */
const RECEIVER = `
import socket, struct, sys
IP_RECVTTL = 12  # Linux; the socket module does not name it
v6 = sys.argv[1] == "6"
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
if v6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
    s.bind(("::1", 0))
else:
    s.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
_, anc, _, _ = s.recvmsg(64, 256)
got = {}
for level, kind, data in anc:
    got[kind] = data[0] if len(data) == 1 else struct.unpack("i", data[:4])[0]
if v6:
    print(got[socket.IPV6_HOPLIMIT], got[socket.IPV6_TCLASS], flush=True)
else:
    print(got[socket.IP_TTL], got[socket.IP_TOS], flush=True)
`;

Deno.test(
  "setOption(ttl, tos / hopLimit, trafficClass): a Python receiver sees them on the packet",
  needs("python3"),
  async () => {
    for (const [family, hostname] of [["4", "127.0.0.1"], ["6", "::1"]] as const) {
      await using peer = python(RECEIVER, family);
      const out = lines(peer.stdout);
      const port = Number(await nextLine(out));
      using sock = listenDatagram({ hostname, port: 0, backend: "ffi" });
      if (family === "4") {
        sock.setOption("ttl", 5);
        sock.setOption("tos", 0x28);
      } else {
        sock.setOption("hopLimit", 6);
        sock.setOption("trafficClass", 0x48);
      }
      await sock.send(new Uint8Array([1]), { transport: "udp", hostname, port });
      assert.equal(await nextLine(out), family === "4" ? "5 40" : "6 72");
    }
  },
);
