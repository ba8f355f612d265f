// The sockaddr codecs: IP text, encoders, decoders. Layouts are checked
// against glibc's headers and the running kernel through a small C probe,
// compiled once per source version and cached in the temp directory.

import { checkLinkAddress, checkPort, checkUnixPath } from "../_internal/checks.ts";
import assert from "node:assert/strict";
import {
  decodeInet,
  decodeIp,
  decodeLink,
  decodeUnix,
  encodeInet,
  encodeLink,
  encodeUnix,
  formatIPv4,
  formatIPv6,
  ipFamily,
  parseIPv4,
  parseIPv6,
} from "../ffi/sockaddr.ts";
import { AF_INET, AF_INET6, AF_PACKET, AF_UNIX } from "../ffi/constants.ts";
import type { LinkAddr } from "../types.ts";
import {
  deadline,
  fromHex,
  needs,
  prng,
  procText,
  randomBytes,
  sha256,
  tempDir,
  toHex,
} from "./_helpers.ts";

// ---------------------------------------------------------------------------
// Helpers

function concat(...parts: ArrayLike<number>[]): Uint8Array {
  return new Uint8Array(parts.flatMap((p) => Array.from(p)));
}

/** Asserts `fn` throws exactly `kind` with `needle` in its message. */
function assertThrowsNaming(
  fn: () => unknown,
  kind: typeof TypeError | typeof RangeError | typeof Deno.errors.NotFound,
  needle: string,
): void {
  assert.throws(fn, (e: unknown) => {
    assert.equal((e as Error).constructor, kind, `wrong class for: ${(e as Error).message}`);
    assert.ok(
      (e as Error).message.includes(needle),
      `message ${JSON.stringify((e as Error).message)} does not name ${JSON.stringify(needle)}`,
    );
    return true;
  });
}

/** A string of `n` bytes when UTF-8 encoded, under `dir`. */
function pathOfBytes(dir: string, n: number): string {
  return dir + "/" + "p".repeat(n - dir.length - 1);
}

const PROBE_C = String.raw`
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void put_hex(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
}

static size_t unhex(const char *s, void *out, size_t cap) {
  unsigned char *o = out;
  size_t n = 0;
  while (s[0] && s[1] && n < cap) {
    unsigned v;
    sscanf(s, "%2x", &v);
    o[n++] = (unsigned char)v;
    s += 2;
  }
  return n;
}

/* Prints "LEN HEX" of what getsockname reports for fd, then closes it. */
static void put_name(int fd) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t n = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &n) < 0) {
    printf("ERR %d", errno);
  } else {
    printf("%u ", (unsigned)n);
    put_hex(&ss, n < sizeof ss ? n : sizeof ss);
  }
  close(fd);
}

/* One command per line, one answer per line; text arguments come as hex, and
   an argument that may be empty comes last, since strtok skips empty fields. */
int main(void) {
  static char line[16384];
  while (fgets(line, sizeof line, stdin)) {
    char *arg[8];
    int argc = 0;
    for (char *t = strtok(line, " \n"); t && argc < 8; t = strtok(NULL, " \n")) arg[argc++] = t;
    while (argc < 8) arg[argc++] = "";
    char text[4096];
    text[unhex(arg[1], text, sizeof text - 1)] = 0;
    if (!strcmp(arg[0], "in")) {
      struct sockaddr_in a;
      memset(&a, 0, sizeof a);
      a.sin_family = AF_INET;
      a.sin_port = htons((uint16_t)strtoul(arg[2], NULL, 10));
      if (inet_pton(AF_INET, text, &a.sin_addr) == 1) put_hex(&a, sizeof a); else printf("ERR");
    } else if (!strcmp(arg[0], "in6")) {
      struct sockaddr_in6 a;
      memset(&a, 0, sizeof a);
      a.sin6_family = AF_INET6;
      a.sin6_port = htons((uint16_t)strtoul(arg[2], NULL, 10));
      a.sin6_flowinfo = htonl((uint32_t)strtoul(arg[3], NULL, 10));
      a.sin6_scope_id = (uint32_t)strtoul(arg[4], NULL, 10);
      if (inet_pton(AF_INET6, text, &a.sin6_addr) == 1) put_hex(&a, sizeof a); else printf("ERR");
    } else if (!strcmp(arg[0], "un")) {
      struct sockaddr_un a;
      memset(&a, 0, sizeof a);
      a.sun_family = AF_UNIX;
      unhex(arg[1], a.sun_path, sizeof a.sun_path);
      printf("%zu %zu ", offsetof(struct sockaddr_un, sun_path), sizeof a);
      put_hex(&a, sizeof a);
    } else if (!strcmp(arg[0], "ll")) {
      struct sockaddr_ll a;
      memset(&a, 0, sizeof a);
      a.sll_family = AF_PACKET;
      a.sll_ifindex = atoi(arg[1]);
      a.sll_protocol = htons((uint16_t)strtoul(arg[2], NULL, 10));
      a.sll_hatype = (unsigned short)strtoul(arg[3], NULL, 10);
      a.sll_pkttype = (unsigned char)strtoul(arg[4], NULL, 10);
      a.sll_halen = (unsigned char)unhex(arg[5], a.sll_addr, sizeof a.sll_addr);
      put_hex(&a, sizeof a);
    } else if (!strcmp(arg[0], "pton4") || !strcmp(arg[0], "pton6")) {
      unsigned char out[16];
      int v6 = arg[0][4] == '6';
      if (inet_pton(v6 ? AF_INET6 : AF_INET, text, out) == 1) put_hex(out, v6 ? 16 : 4);
      else printf("ERR");
    } else if (!strcmp(arg[0], "ntop6")) {
      char s[INET6_ADDRSTRLEN];
      fputs(inet_ntop(AF_INET6, text, s, sizeof s), stdout);
    } else if (!strcmp(arg[0], "bind")) {
      struct sockaddr_storage ss;
      memset(&ss, 0, sizeof ss);
      size_t len = unhex(arg[1], &ss, sizeof ss);
      int family = ((struct sockaddr *)&ss)->sa_family;
      int fd = socket(family, family == AF_PACKET ? SOCK_RAW : SOCK_DGRAM, 0);
      if (fd < 0 || bind(fd, (struct sockaddr *)&ss, (socklen_t)len) < 0) {
        printf("ERR %d", errno);
        if (fd >= 0) close(fd);
      } else {
        put_name(fd);
      }
    } else if (!strcmp(arg[0], "name")) {
      int fd = socket(atoi(arg[2]), SOCK_DGRAM, 0);
      if (fd < 0) printf("ERR %d", errno); else put_name(fd);
    } else {
      printf("?");
    }
    putchar('\n');
  }
  return 0;
}
`;

let probeBinary: Promise<string> | undefined;

/** The compiled probe, built once per source version and kept in the temp dir. */
function compiledProbe(): Promise<string> {
  probeBinary ??= (async () => {
    const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
    const digest = await sha256(new TextEncoder().encode(PROBE_C));
    const bin = `${tmp}/bsd-sockaddr-probe-${digest.slice(0, 16)}`;
    try {
      Deno.statSync(bin);
      return bin;
    } catch { /* not built yet */ }
    const src = `${bin}.${Deno.pid}.c`;
    Deno.writeTextFileSync(src, PROBE_C);
    const out = await new Deno.Command("gcc", {
      args: ["-O1", "-Wall", "-Werror", "-o", `${bin}.${Deno.pid}`, src],
      stderr: "piped",
    }).output();
    Deno.removeSync(src);
    if (!out.success) throw new Error(`gcc failed:\n${new TextDecoder().decode(out.stderr)}`);
    Deno.renameSync(`${bin}.${Deno.pid}`, bin); // atomic, so a parallel run never sees half a file
    return bin;
  })();
  return probeBinary;
}

/** Runs probe commands, one answer line per command. */
async function probe(commands: string[]): Promise<string[]> {
  const child = new Deno.Command(await compiledProbe(), {
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const output = child.output(); // read while writing, so neither pipe fills up
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(commands.map((c) => c + "\n").join("")));
  await writer.close();
  const { success, stdout } = await deadline(output, 30_000, "the sockaddr probe");
  assert.ok(success, "the probe exited with an error");
  const answers = new TextDecoder().decode(stdout).split("\n");
  assert.equal(answers.pop(), "");
  assert.equal(answers.length, commands.length);
  return answers;
}

function textHex(text: string): string {
  return toHex(new TextEncoder().encode(text));
}

/** `[len, bytes]` from a probe's "LEN HEX" answer about a kernel-filled sockaddr. */
function kernelName(answer: string): [number, Uint8Array] {
  assert.match(answer, /^\d+ [0-9a-f]*$/, `the kernel call failed: ${answer}`);
  const [len, hex] = answer.split(" ");
  return [Number(len), fromHex(hex)];
}

// ---------------------------------------------------------------------------
// IP text

Deno.test("parseIPv4() and formatIPv4() round-trip the edge addresses", () => {
  for (
    const [text, bytes] of [
      ["0.0.0.0", [0, 0, 0, 0]],
      ["255.255.255.255", [255, 255, 255, 255]],
      ["127.0.0.1", [127, 0, 0, 1]],
      ["192.0.2.10", [192, 0, 2, 10]],
    ] as const
  ) {
    assert.deepEqual(parseIPv4(text), new Uint8Array(bytes));
    assert.equal(formatIPv4(new Uint8Array(bytes)), text);
  }
});

Deno.test("parseIPv4() refuses malformed text with a TypeError naming it", () => {
  for (
    const text of [
      "1.2.3",
      "256.1.1.1",
      "1.2.3.4.5",
      "01.2.3.4",
      "1.2.3.00",
      "",
      "1..2.3",
      " 1.2.3.4",
      "1.2.3.-4",
      "0x1.2.3.4",
      "1.2.3.4\n",
      "1234.1.1.1",
    ]
  ) {
    assertThrowsNaming(() => parseIPv4(text), TypeError, JSON.stringify(text));
  }
});

// RFC 5952 sections 4 and 5, plus the edges of the zero-run rule.
const RFC5952: readonly [string, string][] = [
  ["2001:0db8::0001", "2001:db8::1"],
  ["2001:db8:0:0:0:0:2:1", "2001:db8::2:1"],
  ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
  ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
  ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
  ["2001:DB8::ABCD", "2001:db8::abcd"],
  ["0:0:0:0:0:ffff:c000:0201", "::ffff:192.0.2.1"],
  ["::ffff:1.2.3.4", "::ffff:1.2.3.4"],
  ["::FFFF:0.0.0.0", "::ffff:0.0.0.0"],
  ["0:0:0:0:0:0:0:0", "::"],
  ["::", "::"],
  ["0:0:0:0:0:0:0:1", "::1"],
  ["1:0:0:0:0:0:0:0", "1::"],
  ["1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"],
  ["0:1:2:3:4:5:6:7", "0:1:2:3:4:5:6:7"],
  ["1:2:3:4:5:6:7:0", "1:2:3:4:5:6:7:0"],
  ["0:0:1:2:3:4:5:6", "::1:2:3:4:5:6"],
  ["1:2:3:4:5:6:0:0", "1:2:3:4:5:6::"],
  ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
  ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
  ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
  ["::1.2.3.4", "::102:304"],
  ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
  ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
  ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
  ["fe80::0:1", "fe80::1"],
];

Deno.test("formatIPv6() writes RFC 5952 canonical text", () => {
  for (const [input, canonical] of RFC5952) {
    const { bytes, zone } = parseIPv6(input);
    assert.equal(zone, undefined);
    assert.equal(formatIPv6(bytes), canonical, input);
    assert.deepEqual(parseIPv6(canonical).bytes, bytes, canonical);
  }
});

Deno.test("parseIPv6() reads the bytes of full, compressed and mixed forms", () => {
  assert.deepEqual(parseIPv6("::").bytes, new Uint8Array(16));
  assert.deepEqual(parseIPv6("::1").bytes, concat(new Uint8Array(15), [1]));
  assert.deepEqual(
    parseIPv6("::ffff:1.2.3.4").bytes,
    concat(new Uint8Array(10), [0xff, 0xff, 1, 2, 3, 4]),
  );
  assert.deepEqual(
    parseIPv6("0102:0304:0506:0708:090a:0b0c:0d0e:0f10").bytes,
    new Uint8Array(Array.from({ length: 16 }, (_, i) => i + 1)),
  );
  assert.deepEqual(
    parseIPv6("fe80::1").bytes,
    concat([0xfe, 0x80], new Uint8Array(13), [1]),
  );
});

Deno.test("parseIPv6() returns the zone, and formatIPv6() appends a non-zero scope id", () => {
  assert.deepEqual(parseIPv6("fe80::1%2"), {
    bytes: concat([0xfe, 0x80], new Uint8Array(13), [1]),
    zone: "2",
  });
  assert.equal(parseIPv6("fe80::1%lo").zone, "lo");
  assert.equal(parseIPv6("::ffff:1.2.3.4%eth0").zone, "eth0");
  assert.equal(formatIPv6(parseIPv6("fe80::1").bytes, 2), "fe80::1%2");
  assert.equal(formatIPv6(parseIPv6("fe80::1").bytes, 0), "fe80::1");
  assert.equal(formatIPv6(parseIPv6("fe80::1").bytes, 0xffffffff), "fe80::1%4294967295");
  assertThrowsNaming(() => formatIPv6(new Uint8Array(15)), RangeError, "15");
  assertThrowsNaming(() => formatIPv4(new Uint8Array(5)), RangeError, "5");
});

Deno.test("parseIPv6() refuses malformed text with a TypeError naming it", () => {
  for (
    const text of [
      "::1::",
      "gggg::",
      ":::",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8::",
      "::1:2:3:4:5:6:7:8",
      "12345::",
      "1.2.3.4::",
      "1.2.3.4:1::",
      "::1.2.3",
      "::256.1.1.1",
      "::01.2.3.4",
      "1:2:3:4:5:6:7:1.2.3.4",
      "fe80::1%",
      "",
      ":",
      ":1::",
      "1::2:",
      ":1:2:3:4:5:6:7",
      "[::1]",
      "1.2.3.4",
      " ::1",
    ]
  ) {
    assertThrowsNaming(() => parseIPv6(text), TypeError, JSON.stringify(text));
  }
});

Deno.test("ipFamily() tells IPv4 from IPv6, takes localhost, and refuses names", () => {
  assert.equal(ipFamily("127.0.0.1"), "ipv4");
  assert.equal(ipFamily("localhost"), "ipv4");
  assert.equal(ipFamily("::"), "ipv6");
  assert.equal(ipFamily("fe80::1%lo"), "ipv6");
  assert.equal(ipFamily("::ffff:1.2.3.4"), "ipv6");
  assert.throws(() => ipFamily("example.com"), {
    name: "TypeError",
    message: 'hostname must be an IP address, got "example.com"',
  });
  for (const text of ["1.2.3", "256.1.1.1", "::1::", "", "LOCALHOST"]) {
    assertThrowsNaming(() => ipFamily(text), TypeError, JSON.stringify(text));
  }
  assertThrowsNaming(() => ipFamily(42 as unknown as string), TypeError, "number");
});

// ---------------------------------------------------------------------------
// Encoders and decoders, by hand-written layout

Deno.test("encodeInet() lays out sockaddr_in and decodeInet() reads it back", () => {
  assert.deepEqual(
    encodeInet("192.0.2.1", 0x1234),
    new Uint8Array([2, 0, 0x12, 0x34, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
  );
  assert.deepEqual(encodeInet("localhost", 80), encodeInet("127.0.0.1", 80));
  for (const hostname of ["0.0.0.0", "255.255.255.255", "127.0.0.1"]) {
    for (const port of [0, 1, 80, 65535]) {
      const buf = encodeInet(hostname, port);
      assert.equal(buf.length, 16);
      assert.deepEqual(decodeInet(buf, 16, "udp"), { transport: "udp", hostname, port });
      assert.deepEqual(decodeIp(buf, 16), { transport: "ip", hostname });
    }
  }
});

Deno.test("encodeInet() lays out sockaddr_in6 with the scope id, and decodeInet() reads it back", () => {
  assert.deepEqual(
    encodeInet("fe80::1%eth0", 443, () => 0x01020304),
    concat([10, 0, 0x01, 0xbb], [0, 0, 0, 0], [0xfe, 0x80], new Uint8Array(13), [1], [
      4,
      3,
      2,
      1,
    ]),
  );
  for (
    const [hostname, canonical] of [
      ["::", "::"],
      ["::1", "::1"],
      ["::ffff:1.2.3.4", "::ffff:1.2.3.4"],
      ["fe80::1%2", "fe80::1%2"],
      ["FE80:0:0:0:0:0:0:1%4294967295", "fe80::1%4294967295"],
      ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["fe80::1%0", "fe80::1"],
    ]
  ) {
    const buf = encodeInet(hostname, 8080);
    assert.equal(buf.length, 28);
    assert.deepEqual(decodeInet(buf, 28, "tcp"), {
      transport: "tcp",
      hostname: canonical,
      port: 8080,
    });
  }
});

Deno.test("encodeInet() resolves a named zone with the resolver, and only with it", () => {
  const asked: string[] = [];
  const resolve = (name: string): number => {
    asked.push(name);
    return name === "lo" ? 1 : 0;
  };
  const buf = encodeInet("fe80::1%lo", 7, resolve);
  assert.deepEqual(asked, ["lo"]);
  assert.equal(decodeInet(buf, 28, "udp").hostname, "fe80::1%1");
  assert.deepEqual(buf, encodeInet("fe80::1%1", 7));
  assertThrowsNaming(() => encodeInet("fe80::1%eth9", 7, resolve), Deno.errors.NotFound, '"eth9"');
  assertThrowsNaming(() => encodeInet("fe80::1%lo", 7), TypeError, '"fe80::1%lo"');
  assertThrowsNaming(
    () => encodeInet("fe80::1%lo", 7, () => -1),
    Deno.errors.NotFound,
    '"lo"',
  );
  assertThrowsNaming(() => encodeInet("fe80::1%4294967296", 7), RangeError, "4294967296");
  // A numeric zone never asks the resolver.
  encodeInet("fe80::1%3", 7, resolve);
  assert.deepEqual(asked, ["lo", "eth9"]);
});

Deno.test("checkPort() refuses bad ports and encodeInet() bad hosts before building anything", () => {
  for (const port of [-1, 65536, 2 ** 31]) {
    assertThrowsNaming(() => checkPort("port", port), RangeError, String(port));
  }
  for (const port of [1.5, NaN, Infinity, "80" as unknown as number]) {
    assertThrowsNaming(() => checkPort("port", port), TypeError, String(port));
  }
  assert.throws(() => checkPort("port", 65536), {
    name: "RangeError",
    message: "port must be between 0 and 65535, got 65536",
  });
  assert.throws(() => checkPort("port", NaN), {
    name: "TypeError",
    message: "port must be an integer, got NaN",
  });
  assertThrowsNaming(() => encodeInet("example.com", 80), TypeError, '"example.com"');
  assertThrowsNaming(() => encodeInet("1.2.3", 80), TypeError, '"1.2.3"');
  assertThrowsNaming(() => encodeInet("::1::", 80), TypeError, '"::1::"');
  assertThrowsNaming(() => encodeInet(undefined as unknown as string, 80), TypeError, "undefined");
});

Deno.test("checkUnixPath() allows a 107-byte path and refuses 108 and 109 with a RangeError", () => {
  const dir = "/tmp/x";
  const ok = pathOfBytes(dir, 107);
  const buf = encodeUnix(ok);
  assert.equal(buf.length, 2 + 107 + 1);
  assert.deepEqual(buf, concat([AF_UNIX, 0], new TextEncoder().encode(ok), [0]));
  assert.deepEqual(decodeUnix(buf, buf.length, "unix"), { transport: "unix", path: ok });
  for (const n of [108, 109]) {
    const path = pathOfBytes(dir, n);
    assertThrowsNaming(
      () => checkUnixPath("bind", path),
      RangeError,
      `${n} bytes, over the limit of 107`,
    );
  }
  // Bytes, not characters: 54 two-byte characters are 108 bytes.
  assertThrowsNaming(() => checkUnixPath("bind", "é".repeat(54)), RangeError, "108 bytes");
  const utf8 = "/tmp/é☃𝄞";
  const encoded = encodeUnix(utf8);
  assert.equal(encoded.length, 2 + new TextEncoder().encode(utf8).length + 1);
  assert.equal(decodeUnix(encoded, encoded.length, "seqpacket").path, utf8);
});

Deno.test("encodeUnix() round-trips abstract names byte for byte, up to 108 bytes", () => {
  const name = "\0a\0\xff";
  const buf = encodeUnix(name);
  assert.deepEqual(buf, new Uint8Array([AF_UNIX, 0, 0, 0x61, 0, 0xff]));
  assert.deepEqual(decodeUnix(buf, buf.length, "unixgram"), { transport: "unixgram", path: name });
  const all = "\0" + String.fromCharCode(...Array.from({ length: 107 }, (_, i) => (i * 7) & 0xff));
  const full = encodeUnix(all);
  assert.equal(full.length, 110);
  assert.equal(decodeUnix(full, 110, "unix").path, all);
  assertThrowsNaming(
    () => checkUnixPath("bind", all + "x"),
    RangeError,
    "109 bytes, over the limit of 108",
  );
  assertThrowsNaming(() => encodeUnix("\0ok\u0100"), TypeError, "U+0100");
  assertThrowsNaming(() => encodeUnix("\0☃"), TypeError, "U+2603");
  // A lone NUL is a one-byte abstract name, not the unnamed address.
  assert.deepEqual(encodeUnix("\0"), new Uint8Array([AF_UNIX, 0, 0]));
  assert.equal(decodeUnix(encodeUnix("\0"), 3, "unix").path, "\0");
});

Deno.test('encodeUnix() gives the 2-byte unnamed address for ""; checkUnixPath() allows it only when asked, and refuses NUL in a path', () => {
  assert.deepEqual(encodeUnix(""), new Uint8Array([AF_UNIX, 0]));
  assertThrowsNaming(() => checkUnixPath("bind", ""), TypeError, "unnamed");
  assertThrowsNaming(
    () => checkUnixPath("bind", "/tmp/a\0b"),
    TypeError,
    JSON.stringify("/tmp/a\0b"),
  );
  assertThrowsNaming(() => checkUnixPath("bind", 7 as unknown as string), TypeError, "number");
});

Deno.test("decodeUnix() reads unnamed, abstract, truncated and odd lengths as the kernel reports them", () => {
  const storage = new Uint8Array(128);
  storage.set([AF_UNIX, 0]);
  assert.equal(decodeUnix(storage, 0, "unixgram").path, "");
  assert.equal(decodeUnix(storage, 2, "unixgram").path, "");
  assertThrowsNaming(() => decodeUnix(storage, 1, "unix"), RangeError, "1");
  // A 108-byte path fills sun_path; the kernel then counts the NUL after it.
  const long = "/" + "q".repeat(107);
  storage.set(new TextEncoder().encode(long), 2);
  assert.equal(decodeUnix(storage, 111, "unix").path, long);
  assert.equal(decodeUnix(storage, 110, "unix").path, long);
  assertThrowsNaming(() => decodeUnix(storage, 112, "unix"), RangeError, "112");
  // The path ends at the first NUL even when len says more.
  storage.set(new TextEncoder().encode("/tmp/s\0junk"), 2);
  assert.equal(decodeUnix(storage, 20, "unix").path, "/tmp/s");
  // A leading U+FEFF is part of the name, not a byte-order mark to drop.
  const bom = encodeUnix("\uFEFF/x");
  assert.equal(decodeUnix(bom, bom.length, "unix").path, "\uFEFF/x");
  // U+FFFD spelt in UTF-8 is a real character, not a decoding error.
  const replacement = encodeUnix("/tmp/\uFFFD");
  assert.equal(decodeUnix(replacement, replacement.length, "unix").path, "/tmp/\uFFFD");
  const bad = new Uint8Array([AF_UNIX, 0, 0x2f, 0xff, 0xfe, 0]);
  assertThrowsNaming(() => decodeUnix(bad, 6, "unix"), TypeError, "not valid UTF-8");
  const abstract = new Uint8Array(111);
  abstract.set([AF_UNIX, 0, 0, 0x61]);
  assertThrowsNaming(() => decodeUnix(abstract, 111, "unix"), RangeError, "111");
  assertThrowsNaming(
    () => decodeUnix(encodeInet("1.2.3.4", 1), 16, "unix"),
    TypeError,
    `family ${AF_INET}`,
  );
});

Deno.test("encodeLink() lays out sockaddr_ll and decodeLink() reads every packet type back", () => {
  const mac = new Uint8Array([0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]);
  assert.deepEqual(
    encodeLink({ ifindex: 0x01020304, protocol: 0x86dd, address: mac, hatype: 1 }),
    concat([AF_PACKET, 0, 0x86, 0xdd, 4, 3, 2, 1, 1, 0, 0, 6], mac, [0, 0]),
  );
  const types: LinkAddr["packetType"][] = [
    "host",
    "broadcast",
    "multicast",
    "otherhost",
    "outgoing",
  ];
  for (const [i, packetType] of types.entries()) {
    for (const address of [new Uint8Array(0), mac, new Uint8Array(8).fill(0xee)]) {
      const buf = encodeLink({ ifindex: 2, protocol: 0x0800, address, packetType });
      assert.equal(buf.length, 20);
      assert.equal(buf[10], i);
      assert.deepEqual(decodeLink(buf, 20), {
        transport: "packet",
        ifindex: 2,
        protocol: 0x0800,
        address,
        packetType,
      });
    }
  }
  assert.deepEqual(
    encodeLink({ ifindex: 1, protocol: 3 }),
    concat([AF_PACKET, 0, 0, 3, 1, 0, 0, 0], new Uint8Array(12)),
  );
});

Deno.test("checkLinkAddress() refuses bad fields, naming each", () => {
  const nine = new Uint8Array(9);
  assertThrowsNaming(
    () => checkLinkAddress("send", { ifindex: 1, protocol: 0, address: nine }),
    RangeError,
    "9 bytes, over the limit of 8",
  );
  for (const ifindex of [0, -1, 2 ** 31]) {
    assertThrowsNaming(
      () => checkLinkAddress("send", { ifindex, protocol: 0 }),
      RangeError,
      String(ifindex),
    );
  }
  assertThrowsNaming(
    () => checkLinkAddress("send", { ifindex: 1.5, protocol: 0 }),
    TypeError,
    "1.5",
  );
  assertThrowsNaming(
    () => checkLinkAddress("send", { ifindex: 1, protocol: 0x10000 }),
    RangeError,
    "65536",
  );
  assertThrowsNaming(
    () => checkLinkAddress("send", { ifindex: 1, protocol: -1 }),
    RangeError,
    "-1",
  );
  assertThrowsNaming(
    () => checkLinkAddress("send", { ifindex: 1, protocol: 0, hatype: 0x10000 }),
    RangeError,
    "65536",
  );
  assertThrowsNaming(
    () =>
      checkLinkAddress("send", {
        ifindex: 1,
        protocol: 0,
        packetType: "loopback" as LinkAddr["packetType"],
      }),
    TypeError,
    '"loopback"',
  );
  assertThrowsNaming(
    () =>
      checkLinkAddress("send", {
        ifindex: 1,
        protocol: 0,
        address: [1, 2] as unknown as Uint8Array,
      }),
    TypeError,
    "Uint8Array",
  );
  assertThrowsNaming(
    () => checkLinkAddress("send", null as unknown as { ifindex: number; protocol: number }),
    TypeError,
    "null",
  );
});

Deno.test("decodeLink() takes getsockname's short length and refuses what it cannot represent", () => {
  const full = encodeLink({ ifindex: 5, protocol: 3, address: new Uint8Array(6).fill(1) });
  assert.deepEqual(decodeLink(full, 18).address, new Uint8Array(6).fill(1));
  assertThrowsNaming(() => decodeLink(full, 17), RangeError, "17");
  assertThrowsNaming(() => decodeLink(full, 11), RangeError, "11");
  // A hardware address longer than sll_addr, when the length covers it.
  const wide = concat(full.subarray(0, 11), [20], new Uint8Array(20).fill(9));
  assert.deepEqual(decodeLink(wide, 32).address, new Uint8Array(20).fill(9));
  const loopback = full.slice();
  loopback[10] = 5; // PACKET_LOOPBACK has no name in LinkAddr
  assertThrowsNaming(() => decodeLink(loopback, 20), RangeError, "5");
  const negative = full.slice();
  new DataView(negative.buffer).setInt32(4, -7, true);
  assertThrowsNaming(() => decodeLink(negative, 20), RangeError, "-7");
  const unbound = full.slice();
  unbound.fill(0, 4, 8);
  assert.equal(decodeLink(unbound, 20).ifindex, 0);
});

Deno.test("decoders refuse wrong families, short lengths and lengths past the buffer", () => {
  const v4 = encodeInet("10.0.0.1", 9);
  const v6 = encodeInet("::1", 9);
  const un = encodeUnix("/tmp/x");
  const ll = encodeLink({ ifindex: 1, protocol: 3 });
  assertThrowsNaming(() => decodeInet(v4, 17, "tcp"), RangeError, "17");
  assertThrowsNaming(() => decodeInet(v4, 15, "tcp"), RangeError, "15");
  assertThrowsNaming(() => decodeInet(v6, 27, "tcp"), RangeError, "27");
  assertThrowsNaming(() => decodeInet(v4, 1, "tcp"), RangeError, "1");
  assertThrowsNaming(() => decodeInet(v4, -1, "tcp"), RangeError, "-1");
  assertThrowsNaming(() => decodeInet(v4, 2.5, "tcp"), TypeError, "2.5");
  assertThrowsNaming(() => decodeIp(un, un.length), TypeError, `family ${AF_UNIX}`);
  assertThrowsNaming(() => decodeInet(ll, 20, "udp"), TypeError, `family ${AF_PACKET}`);
  assertThrowsNaming(() => decodeUnix(un, un.length + 1, "unix"), RangeError, `${un.length + 1}`);
  assertThrowsNaming(() => decodeLink(v6, 28), TypeError, `family ${AF_INET6}`);
  assertThrowsNaming(() => decodeLink(ll, 21), RangeError, "21");
  assertThrowsNaming(
    () => decodeInet([2, 0] as unknown as Uint8Array, 2, "tcp"),
    TypeError,
    "Uint8Array",
  );
  // A view into a larger buffer is read at its own offset.
  const backing = new Uint8Array(64).fill(0xaa);
  backing.set(v6, 7);
  assert.deepEqual(decodeInet(backing.subarray(7, 35), 28, "udp"), {
    transport: "udp",
    hostname: "::1",
    port: 9,
  });
});

// ---------------------------------------------------------------------------
// Against glibc's headers and the running kernel

Deno.test({
  name: "encoders match the structs glibc's headers lay out",
  ...needs("gcc"),
  async fn() {
    const inet: [string, number][] = [
      ["0.0.0.0", 0],
      ["255.255.255.255", 65535],
      ["192.0.2.1", 0x1234],
    ];
    const inet6: [string, number, number][] = [
      ["::", 0, 0],
      ["::1", 1, 0],
      ["fe80::1", 443, 2],
      ["::ffff:1.2.3.4", 80, 0x01020304],
      ["2001:db8::1:0:0:1", 65535, 0xffffffff],
    ];
    const unix = ["/tmp/x.sock", "\0a\0\xff", "/" + "z".repeat(106)];
    const link: [Uint8Array, number, number, number, number][] = [
      [new Uint8Array([1, 2, 3, 4, 5, 6]), 2, 0x0800, 1, 1],
      [new Uint8Array(8).fill(0xab), 0x7fffffff, 0x88cc, 772, 4],
      [new Uint8Array(0), 1, 0x0003, 0, 0],
    ];
    const answers = await probe([
      ...inet.map(([h, p]) => `in ${textHex(h)} ${p}`),
      ...inet6.map(([h, p, scope]) => `in6 ${textHex(h)} ${p} 0 ${scope}`),
      ...unix.map((path) => `un ${toHex(encodeUnix(path).subarray(2))}`),
      ...link.map(([a, ifindex, proto, hatype, pkttype]) =>
        `ll ${ifindex} ${proto} ${hatype} ${pkttype} ${toHex(a)}`
      ),
    ]);
    let i = 0;
    for (const [h, p] of inet) assert.equal(toHex(encodeInet(h, p)), answers[i++], h);
    for (const [h, p, scope] of inet6) {
      assert.equal(toHex(encodeInet(`${h}%${scope}`, p)), answers[i++], h);
    }
    for (const path of unix) {
      const [offset, size, hex] = answers[i++].split(" ");
      assert.equal(Number(offset), 2, "offsetof(sun_path)");
      assert.equal(Number(size), 110, "sizeof(struct sockaddr_un)");
      const ours = toHex(encodeUnix(path));
      assert.equal(hex.slice(0, ours.length), ours, JSON.stringify(path));
      assert.match(hex.slice(ours.length), /^(00)*$/);
    }
    const packetTypes: LinkAddr["packetType"][] = [
      "host",
      "broadcast",
      "multicast",
      "otherhost",
      "outgoing",
    ];
    for (const [address, ifindex, protocol, hatype, pkttype] of link) {
      const ours = encodeLink({
        ifindex,
        protocol,
        address,
        hatype,
        packetType: packetTypes[pkttype],
      });
      assert.equal(toHex(ours), answers[i++]);
    }
  },
});

Deno.test({
  name: "formatIPv6() and parseIPv6() agree with glibc inet_ntop/inet_pton on 5,000 addresses",
  ...needs("gcc"),
  async fn() {
    const rand = prng(5952);
    const addresses: Uint8Array[] = [];
    for (let n = 0; n < 5000; n++) {
      const bytes = new Uint8Array(16);
      const view = new DataView(bytes.buffer);
      // Mostly zero words, so every shape of zero run comes up.
      for (let w = 0; w < 8; w++) {
        const r = rand();
        view.setUint16(2 * w, r < 0.55 ? 0 : r < 0.7 ? (rand() * 16) | 0 : (rand() * 65536) | 0);
      }
      if (n % 10 === 0) bytes.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
      addresses.push(bytes);
    }
    const answers = await probe(addresses.map((b) => `ntop6 ${toHex(b)}`));
    let compared = 0;
    for (const [n, bytes] of addresses.entries()) {
      const ours = formatIPv6(bytes);
      assert.deepEqual(parseIPv6(answers[n]).bytes, bytes, answers[n]);
      assert.deepEqual(parseIPv6(ours).bytes, bytes, ours);
      // glibc also writes IPv4-compatible ::a.b.c.d (deprecated; RFC 5952
      // keeps mixed notation for mapped addresses only).
      if (answers[n].includes(".") && !answers[n].startsWith("::ffff:")) continue;
      assert.equal(ours, answers[n], toHex(bytes));
      compared++;
    }
    assert.ok(compared > 4900, `only ${compared} compared`);
  },
});

Deno.test({
  name: "parseIPv4() and parseIPv6() accept exactly what glibc inet_pton accepts (20,000 strings)",
  ...needs("gcc"),
  async fn() {
    const rand = prng(4291);
    const pick = (s: string): string => s[(rand() * s.length) | 0];
    const seeds = [...RFC5952.flat(), "1.2.3.4", "255.255.255.255", "0.0.0.0", "::1.2.3.4"];
    const texts: string[] = [];
    for (let n = 0; n < 20_000; n++) {
      let text: string;
      if (n % 2 === 0) {
        text = Array.from({ length: (rand() * 20) | 0 }, () => pick("0123456789abcdefABCDEF::..g"))
          .join("");
      } else {
        // A valid address with a few edits: the near misses are where parsers differ.
        const chars = [...seeds[(rand() * seeds.length) | 0]];
        for (let e = 1 + ((rand() * 3) | 0); e > 0; e--) {
          const at = (rand() * (chars.length + 1)) | 0;
          const r = rand();
          if (r < 0.4) chars.splice(at, 1);
          else if (r < 0.8) chars.splice(at, 0, pick("0:.1f9"));
          else chars.splice(at, 1, pick("0:.1F"));
        }
        text = chars.join("");
      }
      texts.push(text);
    }
    const answers = await probe(
      texts.flatMap((t) => [`pton4 ${textHex(t)}`, `pton6 ${textHex(t)}`]),
    );
    const attempt = (f: () => Uint8Array): string => {
      try {
        return toHex(f());
      } catch (e) {
        assert.ok(e instanceof TypeError, String(e));
        return "ERR";
      }
    };
    let accepted = 0;
    for (const [n, text] of texts.entries()) {
      assert.equal(attempt(() => parseIPv4(text)), answers[2 * n], `IPv4 ${JSON.stringify(text)}`);
      assert.equal(
        attempt(() => parseIPv6(text).bytes),
        answers[2 * n + 1],
        `IPv6 ${JSON.stringify(text)}`,
      );
      if (answers[2 * n] !== "ERR" || answers[2 * n + 1] !== "ERR") accepted++;
    }
    assert.ok(accepted > 1000 && accepted < 19_000, `${accepted} of 20,000 accepted`);
  },
});

Deno.test({
  name: "the kernel binds our sockaddr_in, _in6 and _un bytes and reports them back the same",
  ...needs("gcc"),
  async fn() {
    using dir = tempDir("bsd-sockaddr-");
    const path107 = pathOfBytes(dir.path, 107);
    const path108 = pathOfBytes(dir.path, 108);
    const abstract = `\0bsd-sockaddr-${Deno.pid}-\0\xff`;
    // A 108-byte path does not fit our encoder, so the probe binds it from raw bytes.
    const raw108 = concat([AF_UNIX, 0], new TextEncoder().encode(path108));
    const answers = await probe([
      `bind ${toHex(encodeInet("127.0.0.1", 0))}`,
      `bind ${toHex(encodeInet("::1", 0))}`,
      `bind ${toHex(encodeInet("::ffff:127.0.0.1", 0))}`,
      `bind ${toHex(encodeUnix(path107))}`,
      `bind ${toHex(encodeUnix(abstract))}`,
      `bind ${toHex(encodeUnix(""))}`,
      `name x ${AF_UNIX}`,
      `bind ${toHex(raw108)}`,
    ]);
    for (const [i, hostname] of ["127.0.0.1", "::1", "::ffff:127.0.0.1"].entries()) {
      const [len, bytes] = kernelName(answers[i]);
      const addr = decodeInet(bytes, len, "udp");
      assert.equal(addr.hostname, hostname);
      assert.ok(addr.port > 0, "the kernel picked a port");
      assert.deepEqual(encodeInet(addr.hostname, addr.port), bytes, hostname);
    }
    for (const [i, path] of [[3, path107], [4, abstract]] as const) {
      const [len, bytes] = kernelName(answers[i]);
      assert.deepEqual(bytes, encodeUnix(path));
      assert.equal(decodeUnix(bytes, len, "unixgram").path, path);
    }
    const [autoLen, autobound] = kernelName(answers[5]);
    assert.match(decodeUnix(autobound, autoLen, "unixgram").path, /^\0[0-9a-f]{5}$/);
    const [unnamedLen, unnamed] = kernelName(answers[6]);
    assert.equal(unnamedLen, 2);
    assert.equal(decodeUnix(unnamed, unnamedLen, "unixgram").path, "");
    const [len108, bytes108] = kernelName(answers[7]);
    assert.equal(len108, 111, "the kernel counts the NUL past sun_path");
    assert.equal(decodeUnix(bytes108, len108, "unixgram").path, path108);
  },
});

Deno.test({
  name: "the kernel binds our sockaddr_ll on lo and decodeLink() reads its answer",
  ...needs("gcc", "CAP_NET_RAW"),
  async fn() {
    const ifindex = Number(procText("/sys/class/net/lo/ifindex"));
    const [answer] = await probe([`bind ${toHex(encodeLink({ ifindex, protocol: 0x0003 }))}`]);
    const [len, bytes] = kernelName(answer);
    assert.equal(len, 18, "12 + the 6-byte loopback address");
    assert.deepEqual(decodeLink(bytes, len), {
      transport: "packet",
      ifindex,
      protocol: 0x0003,
      address: new Uint8Array(6),
      packetType: "host",
    });
    assert.equal(new DataView(bytes.buffer).getUint16(8, true), 772, "ARPHRD_LOOPBACK");
  },
});

// ---------------------------------------------------------------------------
// Fuzz

const FAMILIES = [AF_INET, AF_INET6, AF_UNIX, AF_PACKET];
const STRUCT_SIZE: Record<number, number> = {
  [AF_INET]: 16,
  [AF_INET6]: 28,
  [AF_UNIX]: 110,
  [AF_PACKET]: 20,
};

/** A random sockaddr: mostly a real family with plausible fields, sometimes noise. */
function randomSockaddr(rand: () => number): { buf: Uint8Array; len: number } {
  const size = (rand() * 131) | 0;
  // A view at an offset inside noise, so a read past `len` or the view shows.
  const offset = (rand() * 8) | 0;
  const backing = randomBytes(rand, size + offset + 8);
  const buf = backing.subarray(offset, offset + size);
  const family = rand() < 0.9 ? FAMILIES[(rand() * 4) | 0] : (rand() * 65536) | 0;
  if (size >= 2) new DataView(backing.buffer).setUint16(offset, family, true);
  if (family === AF_UNIX && size > 2) {
    const r = rand();
    if (r < 0.3) buf[2] = 0;
    else if (r < 0.8) {
      for (let i = 2; i < size; i++) buf[i] = 0x20 + (buf[i] % 0x5f);
      if (rand() < 0.5) buf[2 + ((rand() * (size - 2)) | 0)] = 0;
    }
  }
  if (family === AF_PACKET && size >= 12) {
    buf[7] &= rand() < 0.9 ? 0x7f : 0xff;
    buf[10] = (rand() * 7) | 0;
    buf[11] = (rand() * 11) | 0;
  }
  const r = rand();
  let len: number;
  if (r < 0.35) len = size;
  else if (r < 0.6) len = Math.min(size, STRUCT_SIZE[family] ?? size);
  else if (r < 0.75) len = (rand() * (size + 1)) | 0;
  else if (r < 0.9) len = (rand() * 140) | 0;
  else len = size + 1 + ((rand() * 4) | 0);
  return { buf, len };
}

/** The value of `f()`, or `undefined` when it threw a RangeError or TypeError. */
function outcome<T>(f: () => T, decoder: string): T | undefined {
  try {
    return f();
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) return undefined;
    throw new Error(`${decoder} threw something other than RangeError/TypeError`, { cause: e });
  }
}

type Counts = Record<"inet" | "unix" | "link", number>;

/** Decodes one sockaddr with every decoder and checks each value re-encodes. */
function decodeAndReencode(buf: Uint8Array, len: number, counts: Counts): void {
  const family = len >= 2 ? buf[0] | (buf[1] << 8) : -1;
  const inet = outcome(() => decodeInet(buf, len, "udp"), "decodeInet");
  const ip = outcome(() => decodeIp(buf, len), "decodeIp");
  const unix = outcome(() => decodeUnix(buf, len, "unix"), "decodeUnix");
  const link = outcome(() => decodeLink(buf, len), "decodeLink");
  if (len > buf.length) {
    assert.deepEqual([inet, ip, unix, link], [undefined, undefined, undefined, undefined]);
    return;
  }
  assert.equal(inet === undefined, ip === undefined);
  if (inet !== undefined) {
    counts.inet++;
    // sin_zero and the flow label have no place in NetAddr; all else round-trips.
    const expected = family === AF_INET
      ? concat(buf.subarray(0, 8), new Uint8Array(8))
      : concat(buf.subarray(0, 4), new Uint8Array(4), buf.subarray(8, 28));
    assert.deepEqual(encodeInet(inet.hostname, inet.port), expected);
    expected.fill(0, 2, 4);
    assert.deepEqual(encodeInet(ip!.hostname, 0), expected);
  }
  if (unix !== undefined) {
    counts.unix++;
    let name: Uint8Array = new Uint8Array(0);
    if (unix.path === "") assert.ok(len === 0 || len === 2);
    else if (buf[2] === 0) name = buf.subarray(2, len);
    else {
      name = buf.subarray(2, Math.min(len, 110));
      if (name.includes(0)) name = name.subarray(0, name.indexOf(0));
    }
    if (buf[2] === 0 || name.length <= 107) {
      const terminator = name.length > 0 && name[0] !== 0 ? [0] : [];
      assert.deepEqual(encodeUnix(unix.path), concat([AF_UNIX, 0], name, terminator));
    }
  }
  if (link !== undefined) {
    counts.link++;
    if (link.ifindex > 0 && link.address.length <= 8) {
      const hatype = buf[8] | (buf[9] << 8);
      const expected = buf.subarray(0, 12 + link.address.length);
      assert.deepEqual(
        encodeLink({ ...link, hatype }),
        concat(expected, new Uint8Array(20 - expected.length)),
      );
    }
  }
}

Deno.test("decoders turn 100,000 random sockaddrs into a value or a RangeError/TypeError, and values re-encode", () => {
  const seed = 0x5eed;
  const rand = prng(seed);
  const counts: Counts = { inet: 0, unix: 0, link: 0 };
  for (let n = 0; n < 100_000; n++) {
    const { buf, len } = randomSockaddr(rand);
    try {
      decodeAndReencode(buf, len, counts);
    } catch (e) {
      throw new Error(`seed ${seed} #${n}: len ${len}, buf ${toHex(buf)}`, { cause: e });
    }
  }
  // Enough of each kind decoded that the re-encoding checks were exercised.
  for (const [decoder, count] of Object.entries(counts)) {
    assert.ok(count > 3000, `${decoder}: only ${count} values`);
  }
});
