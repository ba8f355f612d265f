import assert from "node:assert/strict";
import {
  checksum,
  decodeEcho,
  decodeIcmp,
  decodeIPv4Header,
  encodeEcho,
  type IPv4Header,
} from "../icmp.ts";
import { fromHex, needs, prng, pythonOutput, randomBytes, toHex } from "./_helpers.ts";

// ---------------------------------------------------------------------------
// checksum

Deno.test("checksum() gives 0x220d for the RFC 1071 example, and 0 over a correct message", () => {
  const data = fromHex("0001f203f4f5f6f7");
  assert.equal(checksum(data), 0x220d); // the sum is 0xddf2, its complement 0x220d
  assert.equal(checksum(fromHex("0001f203f4f5f6f7220d")), 0);
  assert.equal(checksum(new Uint8Array(0)), 0xffff);
});

Deno.test("checksum() pads an odd last byte with zero", () => {
  assert.equal(checksum(new Uint8Array([0x01])), 0xfeff);
  assert.equal(checksum(fromHex("0001f2")), 0xffff - 0xf201);
  // Padding is on the right: [ab] sums as 0xab00, as [ab 00] does.
  assert.equal(checksum(new Uint8Array([0xab])), checksum(new Uint8Array([0xab, 0x00])));
  assert.notEqual(checksum(new Uint8Array([0xab])), checksum(new Uint8Array([0x00, 0xab])));
});

Deno.test("checksum() continues from a partial sum, and folds sums past 2^32", () => {
  const rand = prng(1071);
  for (let i = 0; i < 200; i++) {
    const a = randomBytes(rand, 2 * Math.floor(rand() * 40));
    const b = randomBytes(rand, Math.floor(rand() * 81));
    const whole = new Uint8Array([...a, ...b]);
    // 0xffff - checksum(a) is a's folded sum.
    assert.equal(checksum(b, 0xffff - checksum(a)), checksum(whole));
  }
  assert.equal(checksum(new Uint8Array(0), 0xffffffff), 0);
  // 2 MiB of 0xff: the running sum passes 2^32 (0xffff × 2^20 words).
  assert.equal(checksum(new Uint8Array(2 << 20).fill(0xff)), 0);
  assert.throws(() => checksum(new Uint8Array(2), -1), RangeError);
  assert.throws(() => checksum(new Uint8Array(2), 2 ** 32), RangeError);
  assert.throws(() => checksum(new Uint8Array(2), 0.5), TypeError);
});

Deno.test({
  name: "checksum() equals a Python reference on 500 random strings of 0–300 bytes",
  ...needs("python3"),
  async fn() {
    const rand = prng(7);
    const samples = Array.from({ length: 500 }, () => randomBytes(rand, Math.floor(rand() * 301)));
    const script = `import sys
for line in sys.stdin.read().split():
    b = bytes.fromhex(line[1:])
    if len(b) % 2: b += b"\\0"
    s = sum((b[i] << 8) | b[i + 1] for i in range(0, len(b), 2))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    print(~s & 0xffff)`;
    // Each line is prefixed with "x" so an empty string still makes a line.
    const input = samples.map((s) => "x" + toHex(s)).join("\n");
    const out = await pythonOutput(script, [], { input });
    assert.deepEqual(out.trim().split("\n").map(Number), samples.map((s) => checksum(s)));
  },
});

// ---------------------------------------------------------------------------
// Echo

Deno.test({
  name: "encodeEcho() builds the same ICMPv4 echo request as Python's struct",
  ...needs("python3"),
  async fn() {
    // What Linux ping sends: id, sequence, 8 bytes of timestamp, then 0x10, 0x11, …
    const data = new Uint8Array(56);
    data.set([0x5e, 0x9f, 0x1a, 0x66, 0, 0, 0, 0]);
    for (let i = 8; i < 56; i++) data[i] = i + 8;
    const ours = encodeEcho({ id: 0x1c46, sequence: 1, data });
    assert.equal(ours.length, 64);
    const script = `import struct, sys
data = bytes.fromhex(sys.argv[1])
m = struct.pack("!BBHHH", 8, 0, 0, 0x1c46, 1) + data
s = sum(struct.unpack("!%dH" % (len(m) // 2), m))
while s >> 16: s = (s & 0xffff) + (s >> 16)
m = m[:2] + struct.pack("!H", ~s & 0xffff) + m[4:]
print(m.hex())`;
    assert.equal((await pythonOutput(script, [toHex(data)])).trim(), toHex(ours));
  },
});

Deno.test("encodeEcho() lays out type, code, checksum, id, sequence and data", () => {
  const m = encodeEcho({ id: 0x0102, sequence: 0x0304, data: new Uint8Array([0xaa]) });
  assert.deepEqual(Array.from(m), [8, 0, m[2], m[3], 1, 2, 3, 4, 0xaa]);
  assert.equal(checksum(m), 0);
  assert.equal(encodeEcho({ type: "reply", id: 0, sequence: 0 })[0], 0);
  const v6 = encodeEcho({ family: "ipv6", id: 1, sequence: 2 });
  assert.deepEqual(Array.from(v6), [128, 0, 0, 0, 0, 1, 0, 2]); // checksum left to the kernel
  assert.equal(encodeEcho({ family: "ipv6", type: "reply", id: 1, sequence: 2 })[0], 129);
});

Deno.test("encodeEcho() and decodeEcho() round-trip ICMPv4 and ICMPv6", () => {
  const rand = prng(8);
  const addresses = { source: "fe80::1%eth0", destination: "2001:db8::42" };
  for (const size of [0, 1, 2, 7, 56, 1472, 65507]) {
    const data = randomBytes(rand, size);
    for (const type of ["request", "reply"] as const) {
      const id = Math.floor(rand() * 65536);
      const sequence = Math.floor(rand() * 65536);
      const v4 = decodeEcho(encodeEcho({ type, id, sequence, data }));
      assert.deepEqual(v4, { type, id, sequence, data, checksumValid: true });

      const v6 = encodeEcho({ family: "ipv6", type, id, sequence, data });
      assert.deepEqual(decodeEcho(v6, "ipv6"), { type, id, sequence, data, checksumValid: null });

      const summed = encodeEcho({ family: "ipv6", type, id, sequence, data, ...addresses });
      const back = decodeEcho(summed, "ipv6", addresses);
      assert.deepEqual(back, { type, id, sequence, data, checksumValid: true });
      // The pseudo-header counts: other addresses, or swapped ones, fail.
      const swapped = { source: addresses.destination, destination: "2001:db8::43" };
      assert.equal(decodeEcho(summed, "ipv6", swapped)?.checksumValid, false);
    }
  }
});

Deno.test("decodeEcho() reports a flipped bit as an invalid checksum", () => {
  const m = encodeEcho({ id: 5, sequence: 6, data: new Uint8Array([1, 2, 3]) });
  for (let bit = 0; bit < m.length * 8; bit++) {
    const copy = m.slice();
    copy[bit >> 3] ^= 1 << (bit & 7);
    const echo = decodeEcho(copy);
    // Flipping a type bit makes most of them another message.
    if (echo === null) assert.ok(bit < 8, `bit ${bit}`);
    else assert.equal(echo.checksumValid, false, `bit ${bit}`);
  }
});

Deno.test("decodeEcho() returns views, and decodes from a subarray", () => {
  const frame = new Uint8Array(100);
  const m = encodeEcho({ id: 77, sequence: 78, data: new Uint8Array([9, 8, 7]) });
  frame.set(m, 30);
  const echo = decodeEcho(frame.subarray(30, 30 + m.length))!;
  assert.equal(echo.id, 77);
  assert.equal(echo.sequence, 78);
  assert.equal(echo.checksumValid, true);
  assert.equal(echo.data.buffer, frame.buffer);
  assert.deepEqual(Array.from(echo.data), [9, 8, 7]);
});

Deno.test("decodeEcho() gives null for other messages and RangeError for short ones", () => {
  const unreachable = new Uint8Array(8);
  unreachable[0] = 3;
  assert.equal(decodeEcho(unreachable), null);
  // Echo types belong to their family: 8 is no ICMPv6 echo, 128 no ICMPv4 one.
  assert.equal(decodeEcho(encodeEcho({ id: 1, sequence: 1 }), "ipv6"), null);
  assert.equal(decodeEcho(encodeEcho({ family: "ipv6", id: 1, sequence: 1 }), "ipv4"), null);
  for (let type = 0; type < 256; type++) {
    const m = new Uint8Array(8);
    m[0] = type;
    assert.equal(decodeEcho(m) !== null, type === 0 || type === 8, `ICMPv4 type ${type}`);
    assert.equal(decodeEcho(m, "ipv6") !== null, type === 128 || type === 129, `ICMPv6 ${type}`);
  }
  assert.throws(() => decodeEcho(new Uint8Array(7)), /7 bytes, under the minimum of 8/);
  assert.throws(() => decodeEcho(new Uint8Array(0), "ipv6"), RangeError);
});

Deno.test("encodeEcho() refuses bad ids, sequences, data, families and addresses", () => {
  const cases: [unknown, ErrorConstructor, RegExp][] = [
    [{ id: -1, sequence: 0 }, RangeError, /encodeEcho: id must be between 0 and 65535, got -1/],
    [{ id: 65536, sequence: 0 }, RangeError, /id must be between 0 and 65535, got 65536/],
    [{ id: 0, sequence: 65536 }, RangeError, /sequence must be between 0 and 65535/],
    [{ id: 0, sequence: -5 }, RangeError, /sequence/],
    [{ id: 1.5, sequence: 0 }, TypeError, /id must be an integer, got 1.5/],
    [{ id: NaN, sequence: 0 }, TypeError, /id must be an integer/],
    [{ sequence: 0 }, TypeError, /id must be an integer, got undefined/],
    [{ id: "1", sequence: 0 }, TypeError, /id/],
    [{ id: 0, sequence: 0, data: [1, 2] }, TypeError, /data: buffer must be a Uint8Array/],
    [{ id: 0, sequence: 0, data: new Uint16Array(2) }, TypeError, /Uint8Array/],
    [{ id: 0, sequence: 0, data: "hi" }, TypeError, /Uint8Array/],
    [
      { id: 0, sequence: 0, data: new Uint8Array(65508) },
      RangeError,
      /65508 bytes, over the limit of 65507 for ICMPv4/,
    ],
    [
      { family: "ipv6", id: 0, sequence: 0, data: new Uint8Array(65528) },
      RangeError,
      /65527 for ICMPv6/,
    ],
    [{ family: "ipv5", id: 0, sequence: 0 }, TypeError, /family must be "ipv4" or "ipv6"/],
    [{ type: "ping", id: 0, sequence: 0 }, TypeError, /type must be "request" or "reply"/],
    [{ id: 0, sequence: 0, source: "::1", destination: "::1" }, TypeError, /for ICMPv6/],
    [
      { family: "ipv6", id: 0, sequence: 0, source: "::1" },
      TypeError,
      /both source and destination/,
    ],
    [
      { family: "ipv6", id: 0, sequence: 0, source: "::1", destination: "1.2.3.4" },
      TypeError,
      /IPv6/,
    ],
    [null, TypeError, /options must be an object/],
  ];
  for (const [options, cls, message] of cases) {
    assert.throws(() => encodeEcho(options as Parameters<typeof encodeEcho>[0]), (e: Error) => {
      assert.ok(e instanceof cls, `${JSON.stringify(options)}: ${e.name}: ${e.message}`);
      assert.match(e.message, message);
      return true;
    });
  }
  // At the limits: fine.
  assert.equal(
    encodeEcho({ id: 65535, sequence: 65535, data: new Uint8Array(65507) }).length,
    65515,
  );
});

/** Uint8Arrays every function must refuse with TypeError before reading them. */
function unusableBuffers(): [string, Uint8Array][] {
  const detached = new Uint8Array(new ArrayBuffer(28));
  structuredClone(detached.buffer, { transfer: [detached.buffer] });
  return [
    ["resizable", new Uint8Array(new ArrayBuffer(28, { maxByteLength: 64 }))],
    ["shared", new Uint8Array(new SharedArrayBuffer(28))],
    ["detached", detached],
  ];
}

Deno.test("every function refuses resizable, shared and detached buffers with TypeError", () => {
  for (const [kind, buf] of unusableBuffers()) {
    const calls: [string, () => unknown][] = [
      ["checksum", () => checksum(buf)],
      ["encodeEcho", () => encodeEcho({ id: 0, sequence: 0, data: buf })],
      ["decodeEcho", () => decodeEcho(buf)],
      ["decodeIcmp", () => decodeIcmp(buf, "ipv6")],
      ["decodeIPv4Header", () => decodeIPv4Header(buf)],
    ];
    for (const [name, call] of calls) {
      assert.throws(call, (e: Error) => {
        assert.ok(e instanceof TypeError, `${name} with a ${kind} buffer: ${e}`);
        assert.match(e.message, new RegExp(name));
        return true;
      });
    }
  }
  assert.throws(() => decodeIPv4Header(null as unknown as Uint8Array), TypeError);
  assert.throws(() => decodeEcho([8, 0, 0, 0] as unknown as Uint8Array), TypeError);
});

Deno.test("decodeIcmp() reads type, code, checksum and body of any message", () => {
  const m = fromHex("0303000000000000" + "4500001c");
  const sum = checksum(m);
  m[2] = sum >> 8;
  m[3] = sum & 0xff;
  const d = decodeIcmp(m);
  assert.equal(d.type, 3);
  assert.equal(d.code, 3);
  assert.equal(d.checksum, sum);
  assert.equal(d.checksumValid, true);
  assert.deepEqual(Array.from(d.body), [0, 0, 0, 0, 0x45, 0, 0, 0x1c]);
  assert.equal(decodeIcmp(m.subarray(0, 4)).body.length, 0);
  assert.equal(decodeIcmp(fromHex("8100000000010002"), "ipv6").checksumValid, null);
  assert.throws(() => decodeIcmp(new Uint8Array(3)), /decodeIcmp: the message is 3 bytes/);
  assert.throws(() => decodeIcmp(m, "ip" as "ipv4"), TypeError);
});

// ---------------------------------------------------------------------------
// IPv4 header

// The header from Wikipedia's "IPv4 header checksum" article: its checksum
// 0xb861 is known good.
const TEXTBOOK = "450000730000400040110000c0a80001c0a800c7".replace(
  "40110000",
  "4011b861",
);

function textbookDatagram(): Uint8Array {
  const d = new Uint8Array(0x73);
  d.set(fromHex(TEXTBOOK));
  for (let i = 20; i < d.length; i++) d[i] = i;
  return d;
}

Deno.test("decodeIPv4Header() decodes a textbook header whose checksum is known", () => {
  const d = textbookDatagram();
  const h = decodeIPv4Header(d);
  const { options, payload, ...fields } = h;
  assert.deepEqual(
    fields,
    {
      version: 4,
      headerLength: 20,
      tos: 0,
      totalLength: 115,
      id: 0,
      flags: 2,
      fragmentOffset: 0,
      ttl: 64,
      protocol: 17,
      checksum: 0xb861,
      checksumValid: true,
      source: "192.168.0.1",
      destination: "192.168.0.199",
    } satisfies Omit<IPv4Header, "options" | "payload">,
  );
  assert.equal(options.length, 0);
  assert.equal(payload.length, 95);
  assert.equal(payload[0], 20);
  assert.equal(payload.buffer, d.buffer);
});

Deno.test("decodeIPv4Header() reports a flipped header byte as an invalid checksum", () => {
  for (const at of [1, 4, 5, 8, 10, 11, 12, 19]) {
    const d = textbookDatagram();
    d[at] ^= 0x10;
    assert.equal(decodeIPv4Header(d).checksumValid, false, `byte ${at}`);
  }
  // The payload is not covered.
  const d = textbookDatagram();
  d[50] ^= 0xff;
  assert.equal(decodeIPv4Header(d).checksumValid, true);
});

Deno.test("decodeIPv4Header() handles options, fragments and trailing padding", () => {
  // IHL 6 (4 bytes of options: NOP NOP NOP EOL), MF set, offset 185 × 8 bytes.
  const d = new Uint8Array(64);
  d.set(fromHex("46b8002c1234" + "20b9" + "0706" + "0000" + "0a000001" + "0a000002" + "01010100"));
  d.fill(0xee, 24, 44);
  d.fill(0x55, 44); // padding past the total length (44), as a short Ethernet frame has
  const sum = checksum(d.subarray(0, 24));
  d[10] = sum >> 8;
  d[11] = sum & 0xff;
  const h = decodeIPv4Header(d);
  assert.equal(h.headerLength, 24);
  assert.equal(h.tos, 0xb8);
  assert.equal(h.totalLength, 44);
  assert.equal(h.id, 0x1234);
  assert.equal(h.flags, 1);
  assert.equal(h.fragmentOffset, 185 * 8);
  assert.equal(h.ttl, 7);
  assert.equal(h.protocol, 6);
  assert.equal(h.checksumValid, true);
  assert.equal(h.source, "10.0.0.1");
  assert.equal(h.destination, "10.0.0.2");
  assert.deepEqual(Array.from(h.options), [1, 1, 1, 0]);
  assert.equal(h.payload.length, 20);
  assert.ok(h.payload.every((b) => b === 0xee));
  // The largest header: IHL 15, 40 bytes of options.
  const big = new Uint8Array(60);
  big.set([0x4f, 0, 0, 60]);
  const max = decodeIPv4Header(big);
  assert.equal(max.options.length, 40);
  assert.equal(max.payload.length, 0);
});

Deno.test("decodeIPv4Header() refuses malformed and truncated headers with RangeError", () => {
  const header = (hex: string, length: number): Uint8Array => {
    const d = new Uint8Array(length);
    d.set(fromHex(hex));
    return d;
  };
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(19), /needs at least 20 bytes, got 19/],
    [new Uint8Array(0), /got 0/],
    [header("65000028", 40), /IP version is 6, not 4/],
    [header("44000028", 40), /header length is 16 bytes, under the minimum of 20/],
    [header("4f000028", 40), /header length is 60 bytes, past the 40 received/],
    [header("45000013", 40), /total length 19 is under the header length 20/],
    [
      header("45000073", 100),
      /total length is 115 bytes but only 100 were received: the read was truncated/,
    ],
  ];
  for (const [bytes, message] of cases) {
    assert.throws(() => decodeIPv4Header(bytes), (e: Error) => {
      assert.ok(e instanceof RangeError, `${e}`);
      assert.match(e.message, message);
      return true;
    });
  }
});

// ---------------------------------------------------------------------------
// Random input

Deno.test("decoders return consistent values or throw RangeError/TypeError on 100,000 random inputs", () => {
  const rand = prng(0x1c3f);
  const addresses = { source: "::1", destination: "fe80::2" };
  const counts = { ipv4: 0, echo: 0, notEcho: 0, icmp: 0, errors: 0 };
  const isU = (n: number, max: number) => Number.isInteger(n) && n >= 0 && n <= max;
  const expectBounded = (e: unknown): void => {
    assert.ok(e instanceof RangeError || e instanceof TypeError, `unexpected ${e}`);
    counts.errors++;
  };
  for (let n = 0; n < 100_000; n++) {
    const bytes = randomBytes(rand, Math.floor(rand() * 90));
    // Bias some inputs towards plausible headers and echo messages, so the
    // success paths are walked too.
    const shape = rand();
    if (shape < 0.3 && bytes.length >= 4) {
      bytes[0] = 0x45 + Math.floor(rand() * 3);
      bytes[2] = 0;
      bytes[3] = Math.floor(rand() * (bytes.length + 8));
    } else if (shape < 0.5 && bytes.length >= 1) {
      bytes[0] = [0, 8, 128, 129][Math.floor(rand() * 4)];
    }
    // A view into a larger buffer, so reading past the view would be unnoticed.
    const backing = new Uint8Array(bytes.length + 16).fill(0xa5);
    backing.set(bytes, 8);
    const view = backing.subarray(8, 8 + bytes.length);

    try {
      const h = decodeIPv4Header(view);
      assert.equal(h.version, 4);
      assert.ok(h.headerLength >= 20 && h.headerLength <= 60 && h.headerLength <= view.length);
      assert.ok(h.totalLength >= h.headerLength && h.totalLength <= view.length);
      assert.equal(h.options.length, h.headerLength - 20);
      assert.equal(h.payload.length, h.totalLength - h.headerLength);
      for (const v of [h.tos, h.ttl, h.protocol]) assert.ok(isU(v, 0xff));
      for (const v of [h.id, h.checksum]) assert.ok(isU(v, 0xffff));
      assert.ok(isU(h.flags, 7) && isU(h.fragmentOffset, 0x1fff * 8));
      assert.match(h.source, /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/);
      assert.equal(typeof h.checksumValid, "boolean");
      counts.ipv4++;
    } catch (e) {
      expectBounded(e);
    }
    for (
      const [family, addrs] of [["ipv4", undefined], ["ipv6", undefined], [
        "ipv6",
        addresses,
      ]] as const
    ) {
      try {
        const echo = decodeEcho(view, family, addrs);
        if (echo === null) {
          assert.ok(view.length >= 8);
          counts.notEcho++;
        } else {
          assert.ok(echo.type === "request" || echo.type === "reply");
          assert.ok(isU(echo.id, 0xffff) && isU(echo.sequence, 0xffff));
          assert.equal(echo.data.length, view.length - 8);
          assert.equal(echo.data.byteOffset, view.byteOffset + 8);
          const verdict = family === "ipv6" && !addrs ? "object" : "boolean";
          assert.equal(typeof echo.checksumValid, verdict);
          counts.echo++;
        }
      } catch (e) {
        expectBounded(e);
      }
      try {
        const m = decodeIcmp(view, family, addrs);
        assert.ok(isU(m.type, 0xff) && isU(m.code, 0xff) && isU(m.checksum, 0xffff));
        assert.equal(m.body.length, view.length - 4);
        counts.icmp++;
      } catch (e) {
        expectBounded(e);
      }
    }
  }
  // Every path was walked many times.
  assert.ok(counts.ipv4 > 1000, `ipv4 ${counts.ipv4}`);
  assert.ok(counts.echo > 1000, `echo ${counts.echo}`);
  assert.ok(counts.notEcho > 1000, `not echo ${counts.notEcho}`);
  assert.ok(counts.icmp > 100_000, `icmp ${counts.icmp}`);
  assert.ok(counts.errors > 100_000, `errors ${counts.errors}`);
});

// ---------------------------------------------------------------------------
// The real kernel: ping loopback with our bytes, inside a fresh network
// namespace so no other ICMP traffic is seen.

// argv: hex of an ICMPv4 echo request and of an ICMPv6 one. Sends each on a
// raw socket to the loopback address and prints, per family, the hex of the
// first echo reply with the request's id: for IPv4 the whole datagram (IPv4
// header first), for IPv6 the ICMPv6 message.
const PING_PY = `
import select, socket, sys, time
def ping(family, proto, dest, request, reply_type, skip_ip):
    s = socket.socket(family, socket.SOCK_RAW, proto)
    s.sendto(request, (dest, 0))
    limit = time.monotonic() + 10
    while time.monotonic() < limit:
        if not select.select([s], [], [], 0.5)[0]: continue
        d = s.recv(70000)
        m = d[(d[0] & 15) * 4:] if skip_ip else d
        if m[0] == reply_type and m[4:6] == request[4:6]:
            return d.hex()
    return "timeout"
print(ping(socket.AF_INET, socket.IPPROTO_ICMP, "127.0.0.1", bytes.fromhex(sys.argv[1]), 0, True))
print(ping(socket.AF_INET6, socket.IPPROTO_ICMPV6, "::1", bytes.fromhex(sys.argv[2]), 129, False))
`;

Deno.test({
  name: "the kernel answers encodeEcho() pings, and its replies decode and verify",
  ...needs("CAP_NET_RAW", "CAP_NET_ADMIN", "python3"),
  async fn() {
    const data = new TextEncoder().encode("@bsd/sockets icmp test payload, odd length!");
    assert.equal(data.length % 2, 1);
    const v4 = encodeEcho({ id: 0x4242, sequence: 7, data });
    const v6 = encodeEcho({ family: "ipv6", id: 0x4343, sequence: 8, data });
    const out = await pythonOutput(PING_PY, [toHex(v4), toHex(v6)], {
      netns: "ip link set lo up",
    });
    const [reply4, reply6] = out.trim().split("\n");
    assert.notEqual(reply4, "timeout", "no ICMPv4 echo reply: the kernel dropped our request");
    assert.notEqual(reply6, "timeout", "no ICMPv6 echo reply");

    const ip = decodeIPv4Header(fromHex(reply4));
    assert.equal(ip.checksumValid, true);
    assert.equal(ip.protocol, 1);
    assert.equal(ip.source, "127.0.0.1");
    assert.equal(ip.destination, "127.0.0.1");
    assert.equal(ip.totalLength, 20 + v4.length);
    const echo4 = decodeEcho(ip.payload);
    assert.deepEqual(echo4, { type: "reply", id: 0x4242, sequence: 7, data, checksumValid: true });
    // The kernel's reply is byte for byte the reply encodeEcho builds.
    assert.deepEqual(ip.payload, encodeEcho({ type: "reply", id: 0x4242, sequence: 7, data }));

    const loopback = { source: "::1", destination: "::1" };
    const message6 = fromHex(reply6);
    const echo6 = decodeEcho(message6, "ipv6", loopback);
    assert.deepEqual(echo6, { type: "reply", id: 0x4343, sequence: 8, data, checksumValid: true });
    assert.deepEqual(
      message6,
      encodeEcho({ family: "ipv6", type: "reply", id: 0x4343, sequence: 8, data, ...loopback }),
    );
  },
});
